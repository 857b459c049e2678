#!/usr/bin/env bash
# Long-haul churn: does anything in firezone-tunnel grow under repetition? Runs one kind of churn
# against firezone-tunnel in a namespace of its own (a wireguard-go peer in a second one, joined
# by a veth) and prints, every EVERY repetitions and after the same idle time, VmRSS, the anonymous
# memory (smaps_rollup), the GC heap after a full collection (dotnet-gcdump, which forces one:
# bytes/objects), descriptors, threads and the packet buffers outstanding (firezone-tunnel show).
#
#   bash scripts/lab/churn.sh KIND [REPS] [EVERY] [FIREZONE_TUNNEL_BINARY]      (root)
#
# KIND: peers    wg set peer K (fresh key, allowed IPs, endpoint) then remove, no traffic
#       sessions a fresh wireguard-go key each time: add it, ping through (a handshake), remove it
#       addconf  wg addconf of 10,000 peers, then wg syncconf to none (REPS cycles)
#       uapi     wg show, wg show dump, and 3,000 raw UAPI connections (full gets, early closes,
#                garbage, partial requests; scripts/lab/uapi_churn.py) per repetition
#       roam     the wireguard-go Client moves to a new port; every other time also a new handshake
#       flood    40 s of initiations with a valid mac1 from a new source port every 4 (flood_ports.py)
#       rebuild  a new private key and back (each rebuilds the tunnel), a new port and back
# Needs dotnet-gcdump (dotnet tool install --tool-path DIR dotnet-gcdump; DOTNET_TOOLS=DIR).
# Namespaces fzch$$-a/-b and interfaces are unique per run; all is removed on exit, also on failure.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
KIND=${1:?usage: churn.sh KIND [REPS] [EVERY] [BINARY]}; REPS=${2:-400}; EVERY=${3:-100}
pair_find_binary churn "${4:-}"
GCDUMP=${DOTNET_TOOLS:-$HOME/.dotnet/tools}/dotnet-gcdump
[[ -x "$GCDUMP" ]] || { echo "churn: dotnet-gcdump not found (set DOTNET_TOOLS)" >&2; exit 1; }
T=fzch$$; A=$T-a; B=$T-b; IFA=${T}x; IFB=${T}y
pair_begin "$A" "$B" "$IFA" "$IFB"
set -e
pair_link "${T}va" "${T}vb" 192.168.97.1 192.168.97.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b"; wg genkey > "$W/a2")
PUBA=$(wg pubkey < "$W/a"); PUBB=$(wg pubkey < "$W/b")
ip netns exec "$A" "$OURS" -f "$IFA" --log-file "$W/ours.log" >/dev/null 2>&1 & OURPID=$!; PIDS+=($OURPID)
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go "$IFB" >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set "$IFA" private-key "$W/a" listen-port 51001
ip netns exec "$B" wg set "$IFB" private-key "$W/b" listen-port 51002
ip -n "$A" addr add 10.97.0.1/24 dev "$IFA"; ip -n "$A" link set "$IFA" up
ip -n "$B" addr add 10.97.0.2/24 dev "$IFB"; ip -n "$B" link set "$IFB" up
set +e
inA() { ip netns exec "$A" "$@"; }
inB() { ip netns exec "$B" "$@"; }

measure() {
  sleep "${2:-5}"
  "$GCDUMP" collect -p "$OURPID" -o "$W/m.gcdump" >/dev/null 2>&1
  local heap; heap=$("$GCDUMP" report "$W/m.gcdump" 2>/dev/null | awk '/GC Heap bytes/ {gsub(",","",$1); b=$1} /GC Heap objects/ {gsub(",","",$1); o=$1} END {print b "/" o}')
  sleep 1
  printf '%-16s rss=%6s KiB anon=%6s KiB heap=%16s B/objects fds=%3s threads=%2s buffers=%s\n' "$1" \
    "$(awk '/^VmRSS/ {print $2}' /proc/$OURPID/status)" "$(awk '/^Anonymous/ {print $2}' /proc/$OURPID/smaps_rollup)" "$heap" \
    "$(ls /proc/$OURPID/fd | wc -l)" "$(awk '/^Threads/ {print $2}' /proc/$OURPID/status)" \
    "$("$OURS" show "$IFA" 2>/dev/null | sed -n 's/.*packet buffers: \([0-9]*\).*/\1/p')"
}

case "$KIND" in
  sessions|roam|rebuild)
    inB wg set "$IFB" peer "$PUBA" endpoint 192.168.97.1:51001 allowed-ips 10.97.0.1/32 ;;&
  roam) inA wg set "$IFA" peer "$PUBB" allowed-ips 10.97.0.2/32; inB ping -c 2 -W 2 -q 10.97.0.1 >/dev/null ;;
  rebuild) inA wg set "$IFA" peer "$PUBB" allowed-ips 10.97.0.2/32 endpoint 192.168.97.2:51002; inB ping -c 2 -W 2 -q 10.97.0.1 >/dev/null ;;
  addconf)
    python3 - "$W" <<'PY'
import base64, os, sys
with open(sys.argv[1] + "/big.conf", "w") as f:
    for i in range(10000):
        f.write("[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.0/24, fd99::%x/128\n" % (base64.b64encode(os.urandom(32)).decode(), 100 + i // 256, i % 256, i))
PY
    printf '[Interface]\nPrivateKey = %s\nListenPort = 51001\n' "$(cat "$W/a")" > "$W/none.conf" ;;
  uapi) for i in $(seq 20); do inA wg set "$IFA" peer "$(wg genkey | wg pubkey)" allowed-ips 10.99.$i.0/24; done ;;
esac
measure start 10
for i in $(seq 1 "$REPS"); do
  case "$KIND" in
    peers)
      K=$(head -c 32 /dev/urandom | base64)
      inA wg set "$IFA" peer "$K" allowed-ips 10.98.$((i % 250)).0/24 endpoint 192.168.97.2:$((20000 + i % 40000)) persistent-keepalive 25
      inA wg set "$IFA" peer "$K" remove ;;
    sessions)
      (umask 077; wg genkey > "$W/k"); K=$(wg pubkey < "$W/k")
      inB wg set "$IFB" private-key "$W/k"
      inA wg set "$IFA" peer "$K" allowed-ips 10.97.0.2/32 endpoint 192.168.97.2:51002
      inB ping -c 2 -i 0.05 -W 1 -q 10.97.0.1 >/dev/null
      inA wg set "$IFA" peer "$K" remove ;;
    addconf)
      inA wg addconf "$IFA" "$W/big.conf"
      inA wg syncconf "$IFA" "$W/none.conf" ;;
    uapi)
      inA wg show "$IFA" >/dev/null; inA wg show "$IFA" dump >/dev/null
      python3 "$PAIR_REPO_DIR/scripts/lab/uapi_churn.py" "/var/run/wireguard/$IFA.sock" 3000 >/dev/null ;;
    roam)
      inB wg set "$IFB" listen-port $((30000 + i % 30000))
      if (( i % 2 == 0 )); then
        inB wg set "$IFB" peer "$PUBA" remove
        inB wg set "$IFB" peer "$PUBA" endpoint 192.168.97.1:51001 allowed-ips 10.97.0.1/32
      fi
      # Not faster than 20 ms between initiations: both sides drop the second (whitepaper 5.1 flood guard).
      sleep 0.03; inB ping -c 1 -W 2 -q 10.97.0.1 >/dev/null ;;
    flood) inB python3 "$PAIR_REPO_DIR/scripts/lab/flood_ports.py" "$PUBA" 192.168.97.1 51001 40 4 >/dev/null ;;
    rebuild)
      inA wg set "$IFA" private-key "$W/a2"; inA wg set "$IFA" private-key "$W/a"
      inA wg set "$IFA" listen-port 51003; inA wg set "$IFA" listen-port 51001
      inA ping -c 1 -W 2 -q 10.97.0.2 >/dev/null ;;
    *) echo "churn: unknown KIND $KIND" >&2; exit 2 ;;
  esac
  if (( i % EVERY == 0 )); then measure "$KIND-$i"; fi
done
measure end 30
jq -r 'select(.severity == "Warning" or .severity == "Error") | .message' "$W/ours.log" | sed 's/[0-9]\+/N/g' | sort | uniq -c | head -5
