#!/usr/bin/env bash
# A real-time soak of the WireGuard timers (whitepaper section 6: REKEY_AFTER_TIME 120 s,
# REJECT_AFTER_TIME 180 s, KEEPALIVE_TIMEOUT 10 s, persistent keepalive), which the unit tests only
# check with a fake clock. Two namespaces joined by a veth, a daemon in each (firezone-tunnel or
# wireguard-go, configured with `wg set` over the UAPI), three phases:
#   1. soak: `ping -i 0.02` through the tunnel both ways (and on the bare veth, for reference) plus
#      a rate-limited iperf3 TCP stream A->B for SOAK seconds (the default, 430 s, spans three
#      rekeys); the side INITIATOR sends first;
#   2. idle: no traffic for IDLE seconds (past REJECT_AFTER_TIME; past 3 x REJECT_AFTER_TIME, 540 s,
#      the keys are zeroed), then one ping from IDLE_FROM, which must get through after one handshake
#      (`--idle-from both`: 20 pings from each side at once, so that both initiate);
#   3. keepalive: persistent-keepalive 25 on A for KEEPALIVE seconds, no traffic: a 32-byte
#      keepalive from A about every 25 s, and the session renewed.
# Records the handshake messages and keepalives on the wire (dumpcap on the veth), both daemons'
# debug logs, `wg show latest-handshakes` every second, RSS, threads and CPU of every firezone-tunnel
# every second, the pings, iperf3's JSON and `wg show dump` of both sides after each phase, and prints
# a summary (scripts/lab/rekey_soak_report.py; it can be re-run on OUT).
#
#   bash scripts/lab/rekey-soak.sh [--a ours|wg] [--b ours|wg] [--initiator a|b] [--soak S]
#        [--rate R] [--idle S] [--idle-from a|b|both] [--keepalive S] [--out DIR] [BINARY]        (root)
#
# Defaults: A firezone-tunnel, B wireguard-go, A initiates, soak 430 s, iperf3 at 100M, idle 200 s
# then A pings, keepalive 200 s (0 skips a phase), logs kept in /tmp/rekey-soak-SUFFIX. Runs about
# 14 minutes.
# Uses only the two namespaces it creates (fzrkSUFFIX-a/-b, random suffix, so runs can overlap) and
# removes them, the processes it started (by PID) and its key files on exit, also on failure; OUT
# is kept. The binary: BINARY, else FIREZONE_TUNNEL, else the repository's Release build, else Debug.
set -uo pipefail
IMPL_A=ours; IMPL_B=wg; INITIATOR=a; IDLE_FROM=a; SOAK=430; RATE=100M; IDLE=200; KEEPALIVE=200; OUT=""; BIN=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --a) IMPL_A=$2; shift 2 ;;
    --b) IMPL_B=$2; shift 2 ;;
    --initiator) INITIATOR=$2; shift 2 ;;
    --idle-from) IDLE_FROM=$2; shift 2 ;;
    --soak) SOAK=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --keepalive) KEEPALIVE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "rekey-soak: unknown option $1" >&2; exit 2 ;;
    *) BIN=$1; shift ;;
  esac
done
for v in "$IMPL_A" "$IMPL_B"; do
  [[ $v == ours || $v == wg ]] || { echo "rekey-soak: --a/--b take ours or wg, not $v" >&2; exit 2; }
done
[[ $INITIATOR == a || $INITIATOR == b ]] || { echo "rekey-soak: --initiator takes a or b" >&2; exit 2; }
[[ $IDLE_FROM =~ ^(a|b|both)$ ]] || { echo "rekey-soak: --idle-from takes a, b or both" >&2; exit 2; }
source "$(dirname "$0")/pair-lib.sh"
if [[ $IMPL_A == ours || $IMPL_B == ours ]]; then pair_find_binary rekey-soak "$BIN"; fi
S=$(printf %04x $((RANDOM)))
A=fzrk$S-a; B=fzrk$S-b; IFA=rka$S; IFB=rkb$S; VA=rkva$S; VB=rkvb$S
ADDR_A=192.168.94.1; ADDR_B=192.168.94.2; TUN_A=10.94.0.1; TUN_B=10.94.0.2
OUT=${OUT:-/tmp/rekey-soak-$S}
mkdir -p "$OUT"
pair_begin "$A" "$B" "$IFA" "$IFB"
set -e
pair_link "$VA" "$VB" "$ADDR_A" "$ADDR_B" 1500
# Both daemons send with UDP GSO; a veth passes the super-packet whole, and a handshake message or
# keepalive sent as the last segment of one would hide from the capture's filter. Without
# tx-udp-segmentation the kernel splits it before the veth (as for a NIC without USO).
if command -v ethtool > /dev/null; then
  ip netns exec "$A" ethtool -K "$VA" tx-udp-segmentation off
  ip netns exec "$B" ethtool -K "$VB" tx-udp-segmentation off
else
  echo "rekey-soak: no ethtool; handshake messages inside UDP GSO batches will be missing from wire.pcap" >&2
fi

phase() { echo "$(date +%s.%N) $*" >> "$OUT/phases.txt"; }
{ echo "a=$IMPL_A b=$IMPL_B initiator=$INITIATOR soak=$SOAK rate=$RATE idle=$IDLE idle_from=$IDLE_FROM keepalive=$KEEPALIVE"
  echo "namespaces $A $B interfaces $IFA $IFB binary ${OURS:-none}"
  echo "addresses a=$ADDR_A b=$ADDR_B"; } > "$OUT/setup.txt"

# start_daemon NS IF IMPL NAME: foreground daemon at debug level, its output in OUT/NAME.*
OUR_PIDS=()
start_daemon() {
  if [[ $3 == ours ]]; then
    ip netns exec "$1" "$OURS" -f "$2" --log-level debug --log-file "$OUT/$4.log" >"$OUT/$4.out" 2>&1 &
    OUR_PIDS+=("$4:$!")
  else
    ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=debug wireguard-go "$2" >"$OUT/$4.log" 2>&1 &
  fi
  PIDS+=($!)
}
start_daemon "$A" "$IFA" "$IMPL_A" a
start_daemon "$B" "$IFB" "$IMPL_B" b
pair_wait_uapi
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
PUB_A=$(wg pubkey < "$W/a"); PUB_B=$(wg pubkey < "$W/b")
ip netns exec "$A" wg set "$IFA" private-key "$W/a" listen-port 51001 peer "$PUB_B" endpoint "$ADDR_B:51002" allowed-ips "$TUN_B/32"
ip netns exec "$B" wg set "$IFB" private-key "$W/b" listen-port 51002 peer "$PUB_A" endpoint "$ADDR_A:51001" allowed-ips "$TUN_A/32"
ip -n "$A" addr add "$TUN_A/24" dev "$IFA"; ip -n "$A" link set "$IFA" mtu 1420 up
ip -n "$B" addr add "$TUN_B/24" dev "$IFB"; ip -n "$B" link set "$IFB" mtu 1420 up

# Handshake messages (types 1 to 3) and 32-byte transport messages (keepalives) on the wire.
ip netns exec "$B" timeout $((SOAK + IDLE + KEEPALIVE + 120)) dumpcap -q -P -i "$VB" \
  -f "udp and (udp[8] = 1 or udp[8] = 2 or udp[8] = 3 or udp[4:2] = 40)" -w "$OUT/wire.pcap" 2>"$OUT/dumpcap.err" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $OUT/wire.pcap ]] && break; sleep 0.1; done

# Every second: latest handshakes of both sides; RSS, threads and CPU ticks of each firezone-tunnel.
monitor() {
  local t la lb p name pid rss thr cpu
  while true; do
    t=$(date +%s.%N)
    la=$(ip netns exec "$A" wg show "$IFA" latest-handshakes 2>/dev/null | cut -f2)
    lb=$(ip netns exec "$B" wg show "$IFB" latest-handshakes 2>/dev/null | cut -f2)
    echo "$t hs ${la:-x} ${lb:-x}"
    for p in "${OUR_PIDS[@]}"; do
      name=${p%%:*}; pid=${p#*:}
      [[ -r /proc/$pid/status ]] || continue
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
      thr=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
      cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      echo "$t proc $name $rss $thr $cpu"
    done
    sleep 1
  done
}
monitor > "$OUT/monitor.txt" & PIDS+=($!)

dump() {
  ip netns exec "$A" wg show "$IFA" dump > "$OUT/dump-a-$1.txt"
  ip netns exec "$B" wg show "$IFB" dump > "$OUT/dump-b-$1.txt"
  # UDP drops in each namespace (RcvbufErrors: a receiver that did not keep up)
  ip netns exec "$A" grep '^Udp:' /proc/net/snmp > "$OUT/udp-a-$1.txt"
  ip netns exec "$B" grep '^Udp:' /proc/net/snmp > "$OUT/udp-b-$1.txt"
  # our peer counters (drops, ECN) and the packet buffers outstanding
  if [[ $IMPL_A == ours ]]; then "$OURS" show "$IFA" > "$OUT/show-a-$1.txt" 2>&1 || true; fi
  if [[ $IMPL_B == ours ]]; then "$OURS" show "$IFB" > "$OUT/show-b-$1.txt" 2>&1 || true; fi
}

# 1. soak
if [[ $INITIATOR == a ]]; then FIRST=$A; FIRST_TO=$TUN_B; else FIRST=$B; FIRST_TO=$TUN_A; fi
phase first_ping
ip netns exec "$FIRST" ping -D -c 1 -W 5 "$FIRST_TO" > "$OUT/first-ping.txt" 2>&1 || true
sleep 0.5
ip netns exec "$B" timeout $((SOAK + 30)) iperf3 -s -1 -p 5201 > /dev/null 2>&1 & PIDS+=($!)
sleep 0.5
phase soak_start
ip netns exec "$A" timeout $((SOAK + 15)) ping -D -O -i 0.02 -W 1 -w "$SOAK" "$TUN_B" > "$OUT/ping-a.txt" 2>&1 & PA=$!; PIDS+=($PA)
ip netns exec "$B" timeout $((SOAK + 15)) ping -D -O -i 0.02 -W 1 -w "$SOAK" "$TUN_A" > "$OUT/ping-b.txt" 2>&1 & PB=$!; PIDS+=($PB)
# The bare veth, outside the tunnel: a spike here too is the machine (other load), not the daemons.
ip netns exec "$A" timeout $((SOAK + 15)) ping -D -O -i 0.02 -W 1 -w "$SOAK" "$ADDR_B" > "$OUT/ping-veth.txt" 2>&1 & PV=$!; PIDS+=($PV)
ip netns exec "$A" timeout $((SOAK + 30)) iperf3 -c "$TUN_B" -p 5201 -t $((SOAK - 5)) -b "$RATE" -J > "$OUT/iperf.json" 2>&1 & PI=$!; PIDS+=($PI)
wait "$PA" "$PB" "$PV" "$PI" || true
phase soak_end
dump soak

# 2. idle past REJECT_AFTER_TIME, then one ping from IDLE_FROM
if [[ $IDLE -gt 0 ]]; then
  sleep "$IDLE"
  phase idle_ping
  if [[ $IDLE_FROM == a ]]; then
    ip netns exec "$A" ping -D -c 1 -W 10 "$TUN_B" > "$OUT/idle-ping.txt" 2>&1 || true
  elif [[ $IDLE_FROM == b ]]; then
    ip netns exec "$B" ping -D -c 1 -W 10 "$TUN_A" > "$OUT/idle-ping.txt" 2>&1 || true
  else
    # Both sides at once: both initiate, and the two handshakes cross (whitepaper section 6.1).
    ip netns exec "$A" ping -D -c 20 -i 0.05 -W 10 "$TUN_B" > "$OUT/idle-ping.txt" 2>&1 & P1=$!; PIDS+=($P1)
    ip netns exec "$B" ping -D -c 20 -i 0.05 -W 10 "$TUN_A" > "$OUT/idle-ping-b.txt" 2>&1 & P2=$!; PIDS+=($P2)
    wait "$P1" "$P2" || true
  fi
  sleep 3
  phase idle_end
  dump idle
fi

# 3. persistent keepalive 25 on A, no traffic
if [[ $KEEPALIVE -gt 0 ]]; then
  ip netns exec "$A" wg set "$IFA" peer "$PUB_B" persistent-keepalive 25
  phase keepalive_start
  sleep "$KEEPALIVE"
  phase keepalive_end
  dump keepalive
fi

for p in "${OUR_PIDS[@]}"; do
  pid=${p#*:}
  [[ -d /proc/$pid ]] || echo "rekey-soak: firezone-tunnel ${p%%:*} (PID $pid) is gone before the end" >&2
done
python3 -B "$PAIR_REPO_DIR/scripts/lab/rekey_soak_report.py" "$OUT"
echo "logs: $OUT"
