#!/usr/bin/env bash
# firezone-tunnel against Debian's wireguard-go over an adverse path (loss, dropped handshakes,
# duplication, a black hole, a killed peer); figures of one review run in adverse-path.md.
# Uses scripts/lab/lab.sh (client -> router -> gateway namespaces) with a lab PREFIX "lossrv-XXXXX",
# so every namespace is named lossrv-*; the router's nftables table `inet lossrv` does the damage.
#
#   bash scripts/lab/adverse-path.sh SCENARIO CLIENT_IMPL GATEWAY_IMPL [ARG]     (root)
#     IMPL: fz (firezone-tunnel, Release build) | wg (wireguard-go)
#     SCENARIO:
#       loss PCT       PCT % random drop of tunnel datagrams both ways from the start (first handshake too)
#       hsinit SECS    every handshake initiation dropped for SECS s on an up tunnel (after a forced
#                      re-handshake: peer-readd on the client), then restored
#       noresp SECS    every handshake response dropped for SECS s (client initiates, never hears back)
#       oneway SECS    every tunnel datagram gateway -> client dropped for SECS s while the client
#                      pings, then restored (the client's data leaves, nothing comes back)
#       iperfloss PCT  PCT % random loss both ways on an up tunnel, then three 10 s iperf3 TCP runs
#                      (per-second rates printed, to tell a stalled tunnel from TCP backing off)
#       rekeyloss PCT  PCT % random loss both ways from the start, 160 s of ping: the initiator's
#                      REKEY_AFTER_TIME (120 s) handshake happens under loss; replies per 10 s printed
#       dup            every tunnel datagram duplicated by the router (both ways)
#       blackhole SECS idle tunnel, PersistentKeepalive=25 on the client, all tunnel datagrams dropped
#                      for SECS s, then restored
#       kill           gateway killed -9 while the client pings, restarted with the same keys 3 s later
# Output: artifacts/lab/adverse-path/NAME/ (ping log with timestamps, wg show, daemon JSON logs, capture of handshake
# messages on the router as "epoch src dst type"), summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
LAB=scripts/lab/lab.sh
SC=$1; CI=$2; GI=$3; ARG=${4:-}
impl() { case $1 in fz) echo firezone-tunnel ;; wg) echo wireguard-go ;; *) echo "impl fz|wg" >&2; exit 2 ;; esac; }
P="lossrv-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)"
NAME="$SC${ARG:+-$ARG}-c$CI-g$GI-$(date -u +%H%M%S)"
OUT=$PWD/artifacts/lab/adverse-path/$NAME; mkdir -p "$OUT"
ST=/run/fzlab/$P
# Both daemons log at their most verbose non-trace level (wireguard-go reads "debug" as verbose), to
# see whether anything is logged per packet and how often handshake progress is.
export LOG_LEVEL=${LOG_LEVEL:-debug}
BGP=()
cleanup() {
  local rc=$?
  for p in "${BGP[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BGP[@]}"; do wait "$p" 2>/dev/null || true; done
  cp "$ST"/*.jsonl "$ST"/wg-*.log "$OUT"/ 2>/dev/null || true
  bash $LAB down "$P" || true
  exit $rc
}
trap cleanup EXIT
R() { ip netns exec "$P-router" "$@"; }
C() { ip netns exec "$P-client" "$@"; }
G() { ip netns exec "$P-gateway" "$@"; }
now() { date +%s.%N; }
ts() { date -u +%H:%M:%S.%N | cut -c1-12; }
PORTS="{ 51820, 51821 }"
damage() {   # damage RULE...: replace the router's damage chain with these rules (none = clean path)
  local body=""; for r in "$@"; do body+="$r"$'\n'; done
  R nft -f - <<NFT
table inet lossrv
delete table inet lossrv
table inet lossrv {
  chain damage { type filter hook forward priority -100; policy accept;
$body  }
}
NFT
}

bash $LAB up "$P" >/dev/null
damage
# Handshake messages (type 1, 2, 3 = initiation, response, cookie) as the sender put them on the wire.
for pair in "veth-c 10.77.1.2" "veth-g 10.77.2.2"; do
  set -- $pair
  # ip netns exec directly, not the R function: a backgrounded function is a subshell, and its
  # PID in BGP would leave tshark running (orphaned in a deleted namespace) after cleanup.
  ip netns exec "$P-router" tshark -q -l -i "$1" -f "udp and src host $2" -T fields \
    -e frame.time_epoch -e ip.src -e ip.dst -e udp.payload -E separator=' ' 2>/dev/null \
    > >(awk '{ t = substr($4, 1, 2); if (t == "01" || t == "02" || t == "03") { print $1, $2, $3, t; fflush() } }' >"$OUT/hs-$1.txt") &
  BGP+=($!)
done
sleep 2

start_tunnel() {
  bash $LAB start "$P" gateway "$(impl "$GI")"
  bash $LAB start "$P" client "$(impl "$CI")"
  ip netns exec "$P-gateway" iperf3 -s >"$OUT/iperf3-server.log" 2>&1 &
  BGP+=($!)
}
pinger() {   # pinger SECONDS: ping at 5/s, reply lines carry -D epoch stamps
  ip netns exec "$P-client" ping -D -O -i 0.2 -W 1 -w "$1" 10.77.100.1 >"$OUT/ping.txt" 2>&1 &
  BGP+=($!); PINGPID=$!
}
first_reply_after() {   # first_reply_after EPOCH: seconds from EPOCH to the first echo reply after it
  awk -v t="$1" '/bytes from/ { gsub(/[\[\]]/, "", $1); if ($1 + 0 > t) { printf "%.2f", $1 - t; exit } }' "$OUT/ping.txt"
}
replies() { grep -c 'bytes from' "$OUT/ping.txt" || true; }
sent() { grep -c -E 'bytes from|no answer' "$OUT/ping.txt" || true; }
iperf() {   # iperf SECONDS
  C timeout $(( $1 + 20 )) iperf3 -c 10.77.100.1 -t "$1" -J >"$OUT/iperf3.json" 2>&1 || true
  jq -r '"iperf3 TCP: \(.end.sum_received.bits_per_second/1e6|floor) Mbit/s received, \(.end.sum_sent.retransmits) retransmits" ' "$OUT/iperf3.json" 2>/dev/null \
    || echo "iperf3 failed: $(tail -c 300 "$OUT/iperf3.json")"
}
show() {
  { echo "== client ($(impl "$CI"))"; C wg show "$P-c"; echo "== gateway ($(impl "$GI"))"; G wg show "$P-g"; } >"$OUT/wgshow-$1.txt" 2>&1
  awk '/^==/ {w=$2} /latest handshake|transfer/ { print "  " w ": " $0 }' "$OUT/wgshow-$1.txt"
}
logsum() {   # counts of JSON log lines by level and message template, per fz daemon
  for role in client gateway; do
    [[ -f $ST/fz-$role.jsonl ]] || continue
    echo "  log $role: $(wc -l <"$ST/fz-$role.jsonl") lines"
    jq -r '"\(.severity) \(.message | .[0:120])"' "$ST/fz-$role.jsonl" 2>/dev/null | sed -E 's/[0-9]+/N/g' \
      | sort | uniq -c | sort -rn | head -12 | sed 's/^/    /'
  done
}
hs_summary() {   # initiations per sender with the gaps between them
  local since=${1:-0}
  sort -n "$OUT"/hs-veth-*.txt >"$OUT/hs.txt"
  awk -v s="$since" '$1 > s { n[$2" "$4]++; if ($4 == "01") { if (last[$2]) gaps[$2] = gaps[$2] sprintf(" %.2f", $1 - last[$2]); last[$2] = $1 } }
    END { for (k in n) print "  hs msgs " k ": " n[k]; for (k in gaps) print "  initiation gaps from " k ":" substr(gaps[k], 1, 400) }' "$OUT/hs.txt"
}

echo "== $NAME  (lab $P, client $(impl "$CI"), gateway $(impl "$GI"))  $(date -u +%T)"
case $SC in
loss)
  damage "udp dport $PORTS numgen random mod 100 < $ARG counter drop"
  T0=$(now); start_tunnel
  pinger 60
  sleep 60; wait "$PINGPID" || true
  echo "  ping: $(replies)/$(sent) replies in 60 s; first reply $(first_reply_after "$T0") s after start"
  iperf 10
  show end; hs_summary; logsum
  R nft list table inet lossrv | grep -o 'counter packets [0-9]*' | sed 's/^/  dropped: /'
  ;;
hsinit | noresp)
  start_tunnel
  C ping -c3 -i 0.2 -W 2 10.77.100.1 >/dev/null || echo "  WARN no ping before damage"
  type=1; [[ $SC == noresp ]] && type=2
  pinger $((ARG + 40))
  sleep 1
  damage "udp dport $PORTS @th,64,8 $type counter drop"
  TD=$(now)
  # Sessions dropped on the client only: it must handshake again; the gateway still has its keys.
  bash $LAB peer-readd "$P" client
  echo "  $(ts) damage on (type $type dropped), client peer re-added"
  sleep "$ARG"; damage; TR=$(now); echo "  $(ts) restored after $ARG s"
  wait "$PINGPID" || true
  echo "  ping: first reply $(first_reply_after "$TD") s after damage on, $(first_reply_after "$TR") s after restore; $(replies)/$(sent) replies"
  iperf 5
  show end; hs_summary "$TD"; logsum
  ;;
oneway)
  start_tunnel
  C ping -c3 -i 0.2 -W 2 10.77.100.1 >/dev/null || echo "  WARN no ping before damage"
  pinger $((ARG + 30))
  sleep 1
  damage "iifname \"veth-g\" udp sport $PORTS counter drop"
  TD=$(now); echo "  $(ts) damage on (gateway -> client dropped)"
  sleep "$ARG"; damage; TR=$(now); echo "  $(ts) restored after $ARG s"
  wait "$PINGPID" || true
  echo "  ping: first reply $(first_reply_after "$TR") s after restore; $(replies)/$(sent) replies"
  iperf 5
  show end; hs_summary "$TD"; logsum
  ;;
iperfloss)
  start_tunnel
  C ping -c3 -i 0.2 -W 2 10.77.100.1 >/dev/null || echo "  WARN no ping before damage"
  damage "udp dport $PORTS numgen random mod 100 < $ARG counter drop"
  for i in 1 2 3; do
    C timeout 40 iperf3 -c 10.77.100.1 -t 10 -J >"$OUT/iperf3-$i.json" 2>&1 || true
    echo "  iperf3 run $i: $(jq -r '"\(.end.sum_received.bits_per_second/1e6|floor) Mbit/s, \(.end.sum_sent.retransmits) retransmits, per second \([.intervals[].sum.bits_per_second/1e6|floor])"' "$OUT/iperf3-$i.json" 2>/dev/null || echo failed)"
  done
  show end; hs_summary; logsum
  ;;
rekeyloss)
  damage "udp dport $PORTS numgen random mod 100 < $ARG counter drop"
  T0=$(now); start_tunnel
  pinger 160; sleep 161; wait "$PINGPID" || true
  echo "  ping: $(replies)/$(sent) replies; replies per 10 s from start:"
  echo "   $(awk -v t="$T0" '/bytes from/ { gsub(/[\[\]]/, "", $1); b = int(($1 - t) / 10); n[b]++ } END { for (i = 0; i < 17; i++) printf " %d", n[i] }' "$OUT/ping.txt")"
  show end; hs_summary; logsum
  awk '{ printf "  hs %.1f s %s %s\n", $1 - t, $2, $4 }' t="$T0" "$OUT/hs.txt"
  ;;
dup)
  # nf_dup_ipv4: a copy of every tunnel datagram routed to the same next hop (a real duplicate).
  R nft -f - <<NFT
table ip lossrvdup {
  chain pre { type filter hook prerouting priority 0; policy accept;
    iifname "veth-c" udp dport 51820 counter dup to 10.77.2.2 device "veth-g"
    iifname "veth-g" udp dport 51821 counter dup to 10.77.1.2 device "veth-c"
  }
}
NFT
  start_tunnel
  pinger 20; sleep 21; wait "$PINGPID" || true
  echo "  ping: $(replies)/$(sent) replies, DUP lines: $(grep -c DUP "$OUT/ping.txt" || true)"
  iperf 5
  R nft list table ip lossrvdup | grep -o 'counter packets [0-9]*' | sed 's/^/  duplicated: /'
  show end; logsum
  # firezone-tunnel's own status: the replay window's rejections should match the duplicates.
  for role in client gateway; do
    b=$(cat "$ST/impl-$role"); [[ $(basename "$b") == firezone-tunnel ]] || continue
    ip netns exec "$P-$role" "$b" show "$P-${role:0:1}" >"$OUT/fzshow-$role.txt" 2>&1 || true
    grep -iE 'replay|reject|drop' "$OUT/fzshow-$role.txt" | sed "s/^/  fz show $role: /"
  done
  ;;
blackhole)
  start_tunnel
  C wg set "$P-c" peer "$(cat "$ST/gateway.pub")" persistent-keepalive 25
  C ping -c3 -i 0.2 -W 2 10.77.100.1 >/dev/null || echo "  WARN no ping before damage"
  sleep 5
  damage "udp dport $PORTS counter drop"
  TD=$(now); echo "  $(ts) black hole on"
  sleep "$ARG"; show during >/dev/null
  damage; TR=$(now); echo "  $(ts) restored after $ARG s (idle: no traffic but keepalives)"
  # Recovery by itself: the next keepalive from the client should bring it back; no ping yet.
  sleep 30
  show after30 
  pinger 10; sleep 11; wait "$PINGPID" || true
  echo "  ping after: $(replies)/$(sent) replies, first after $(first_reply_after "$TR") s from restore"
  hs_summary "$TD"; logsum
  ;;
kill)
  start_tunnel
  C ping -c3 -i 0.2 -W 2 10.77.100.1 >/dev/null || echo "  WARN no ping before kill"
  pinger 60; sleep 2
  GP=$(bash $LAB pid "$P" gateway)
  kill -9 "$GP"; TK=$(now); echo "  $(ts) gateway PID $GP killed -9"
  for _ in $(seq 50); do kill -0 "$GP" 2>/dev/null || break; sleep 0.1; done
  sleep 3
  # The TUN went with the process; start it again with the same keys and configuration.
  rm -f "$ST/pids/wg-gateway"
  G ip link del "$P-g" 2>/dev/null || true
  bash $LAB start "$P" gateway "$(impl "$GI")"; TR=$(now); echo "  $(ts) gateway restarted"
  sleep 50; wait "$PINGPID" || true
  echo "  ping: first reply $(first_reply_after "$TR") s after restart ($(first_reply_after "$TK") s after kill); $(replies)/$(sent) replies"
  iperf 5
  show end; hs_summary "$TK"; logsum
  ;;
*) echo "unknown scenario $SC" >&2; exit 2 ;;
esac
