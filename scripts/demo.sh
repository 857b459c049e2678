#!/usr/bin/env bash
# The main job: builds firezone-tunnel, then runs it end to end in the lab (scripts/lab/lab.sh):
#
#   client ns (firezone-tunnel Client) -> router ns (congested, nftables CE marking)
#     -> gateway ns (firezone-tunnel Gateway) -> resource ns (TCP server)
#
# It shows the handshake, pings the resource through the tunnel, transfers data with a checksum,
# then turns on congestion marking on the router and shows where the ECN signal went: outer ECT
# sent by the encapsulator, CE set by the router, CE propagated into the inner packets written to
# the gateway's TUN, and the inner TCP sender's reaction (TcpExtTCPDeliveredCE). Everything is
# removed on exit, also on failure.
#
#   bash scripts/demo.sh                      # firezone-tunnel on both sides
#   IMPL=wireguard-go bash scripts/demo.sh    # the same lab with Debian's wireguard-go
#   DEMO_BYTES=50000000 MARK_PERCENT=10 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages

IMPL=${IMPL:-firezone-tunnel}
BYTES=${DEMO_BYTES:-20000000}
MARK_PERCENT=${MARK_PERCENT:-5}
LAB=scripts/lab/lab.sh
XFER="$PWD/scripts/lab/xfer.py"
PY=/usr/bin/python3; [[ -x $PY ]] || PY=python3

if [[ $IMPL == firezone-tunnel ]]; then
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  dotnet build src/Host/Firezone.Actors.Host.csproj -c Release -nologo -v quiet
fi

P="demo$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
trap 'bash $LAB down $P' EXIT
start=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; }
counter() { awk -v k="$1" '$1 == k { print $2; found=1 } END { if (!found) print 0 }' <<<"$2"; }
delivered_ce() {
  bash $LAB exec "$P" client nstat -asz TcpExtTCPDeliveredCE | awk '/TcpExtTCPDeliveredCE/ { print $2 }'
}
transfer() {                                   # transfer PORT: client -> resource, prints "seconds match|MISMATCH"
  bash $LAB bg "$P" resource "srv$1" "$PY" "$XFER" listen 10.77.3.2 "$1" recv --timeout 30 >/dev/null
  for _ in $(seq 50); do grep -q listening "/run/fzlab/$P/srv$1.err" 2>/dev/null && break; sleep 0.1; done
  local t0 t1 sent got
  t0=$(date +%s.%N)
  sent=$(bash $LAB exec "$P" client "$PY" "$XFER" connect 10.77.3.2 "$1" send "$BYTES" --timeout 30)
  t1=$(date +%s.%N)
  for _ in $(seq 50); do [[ -s "/run/fzlab/$P/srv$1.out" ]] && break; sleep 0.1; done
  got=$(cat "/run/fzlab/$P/srv$1.out")
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $([[ "$sent" == "$got" ]] && echo match || echo MISMATCH) ${got#* }"
}

step "lab $P: client -> router -> gateway -> resource ($IMPL on client and gateway)"
bash $LAB up "$P"
bash $LAB start "$P" gateway "$IMPL"
bash $LAB start "$P" client "$IMPL"
CIF=$(bash $LAB ifname "$P" client); GIF=$(bash $LAB ifname "$P" gateway)

step "ping the resource through the tunnel (IPv4 and IPv6 inner, IPv4 underlay)"
bash $LAB exec "$P" client ping -c3 -i0.2 -W2 10.77.3.2 | tail -2
bash $LAB exec "$P" client ping -c3 -i0.2 -W2 fd77:3::2 | tail -2

step "handshake (wg show on the client)"
bash $LAB exec "$P" client wg show "$CIF"

step "transfer $((BYTES / 1000000)) MB client -> resource, no congestion"
read -r t1 m1 sha1 <<<"$(transfer 5001)"
echo "$t1 s, sha256 $m1 ($sha1)"

before=$(bash $LAB counters "$P")
ce_before=$(delivered_ce)
step "router marks CE on $MARK_PERCENT % of ECT tunnel datagrams; transfer again"
bash $LAB mark "$P" "$MARK_PERCENT"
read -r t2 m2 sha2 <<<"$(transfer 5002)"
echo "$t2 s, sha256 $m2 ($sha2)"
bash $LAB mark "$P" 0
after=$(bash $LAB counters "$P")
ce_after=$(delivered_ce)

if [[ $IMPL == firezone-tunnel ]]; then
  step "firezone-tunnel show (gateway)"
  show_gateway=$(bash $LAB exec "$P" gateway "$(cat "/run/fzlab/$P/impl-gateway")" show "$GIF" || true)
  show_client=$(bash $LAB exec "$P" client "$(cat "/run/fzlab/$P/impl-client")" show "$CIF" || true)
  echo "$show_gateway"
  # "ecn: N ECT sent, N CE received, N CE propagated, N ECN drops, N (!!!) events"
  fz_client_ecn=$(grep -o 'ecn: .*' <<<"$show_client" | sed 's/^ecn: //' || echo "(no ecn line)")
  fz_gateway_ecn=$(grep -o 'ecn: .*' <<<"$show_gateway" | sed 's/^ecn: //' || echo "(no ecn line)")
fi

d() { echo $(($(counter "$1" "$after") - $(counter "$1" "$before"))); }
ect_sent=$(($(d router.sent_c2g_ect0) + $(d router.sent_c2g_ect1)))
notect_sent=$(d router.sent_c2g_notect)
ce_set=$(($(d router.fwd_c2g_ce) - $(d router.sent_c2g_ce)))
ce_inner=$(d gateway.tun_tcp_ce)
ect_inner=$(($(d gateway.tun_tcp_ect0) + $(d gateway.tun_tcp_ect1)))
end=$(date +%s.%N)

step "summary ($IMPL, marking phase, client -> gateway direction)"
printf '  %-62s %s\n' \
  "transfers ($((BYTES / 1000000)) MB each, sha256)" "$m1 in ${t1} s, $m2 in ${t2} s" \
  "outer datagrams sent ECT / Not-ECT (router, before marking)" "$ect_sent / $notect_sent" \
  "outer CE set by the router ($MARK_PERCENT %)" "$ce_set" \
  "inner TCP packets on the gateway's TUN: CE / ECT" "$ce_inner / $ect_inner" \
  "client TCP sender TcpExtTCPDeliveredCE" "$ce_before -> $ce_after" \
  "demo time (without build)" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
if [[ $IMPL == firezone-tunnel ]]; then
  printf '  %-62s %s\n' "firezone-tunnel show, client ecn (whole run)" "$fz_client_ecn" \
    "firezone-tunnel show, gateway ecn (whole run)" "$fz_gateway_ecn"
fi
if ((ect_sent == 0)); then
  echo "  note: $IMPL sent every outer datagram Not-ECT, so the router had nothing to mark and no"
  echo "        congestion signal crossed the tunnel (wireguard-go never copies ECN, see shared ECN notes)."
fi
[[ $m1 == match && $m2 == match ]]
