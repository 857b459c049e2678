#!/usr/bin/env bash
# What a monitoring agent's polls cost the packet path of a large Gateway: the Gateway (ours, given
# as BINARY) has 10,000 idle peers besides one wireguard-go Client, which sends iperf3 UDP to it at
# RATE for SECONDS while `wg show IF dump` polls the Gateway every POLL seconds and a ping every 10
# ms measures the delay. Prints iperf3's receiver line (loss) and ping's summary, without and with
# the polls. Compacting the heap after each poll stalled every thread 25 to 52 ms
# (src/Host/Uapi/TransientMemory.cs).
#
#   bash scripts/lab/poll-stall.sh [BINARY] [SECONDS] [RATE] [POLL]   (root; defaults: the
#   repository's Release build, 10 s, 500M, 1)
#
# Uses only the two namespaces it creates (fzpst-a, fzpst-b) and removes them, the processes it
# started (by PID) and its files on exit, also on failure.
set -euo pipefail
source "$(dirname "$0")/pair-lib.sh"
pair_find_binary poll-stall "${1:-}"
SECONDS_RUN=${2:-10}
RATE=${3:-500M}
POLL=${4:-1}
A=fzpst-a; B=fzpst-b
pair_begin "$A" "$B" psta0 pstb0
pair_link pv-a pv-b 192.168.94.1 192.168.94.2 1500
(umask 077; wg genkey > "$W/a.key"; wg genkey > "$W/b.key")
ip netns exec "$A" env WG_PROCESS_FOREGROUND=1 wireguard-go psta0 >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$B" "$OURS" -f pstb0 --log-file "$W/ours.log" >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set psta0 private-key "$W/a.key" listen-port 51001 peer "$(wg pubkey < "$W/b.key")" \
  endpoint 192.168.94.2:51002 allowed-ips 10.94.0.2/32
ip netns exec "$B" wg set pstb0 private-key "$W/b.key" listen-port 51002 peer "$(wg pubkey < "$W/a.key")" \
  allowed-ips 10.94.0.1/32
python3 - "$W/peers.conf" <<'PY'
import base64, os, sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        f.write(f"[Peer]\nPublicKey = {base64.b64encode(os.urandom(32)).decode()}\n"
                f"AllowedIPs = 10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32\n\n")
PY
ip netns exec "$B" wg addconf pstb0 "$W/peers.conf"
ip -n "$A" addr add 10.94.0.1/24 dev psta0; ip -n "$A" link set psta0 up
ip -n "$B" addr add 10.94.0.2/24 dev pstb0; ip -n "$B" link set pstb0 up
ip netns exec "$A" ping -c 1 -W 5 10.94.0.2 >/dev/null
sleep 2 # the addconf's compaction is over

run() {
  local label=$1 poller=""
  ip netns exec "$B" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
  sleep 0.5
  if [[ $label == polled ]]; then
    (while true; do ip netns exec "$B" wg show pstb0 dump >/dev/null; sleep "$POLL"; done) & poller=$!; PIDS+=($poller)
  fi
  ip netns exec "$A" ping -q -i 0.01 -w "$SECONDS_RUN" 10.94.0.2 > "$W/ping" 2>&1 & local ping=$!; PIDS+=($ping)
  local loss
  loss=$(ip netns exec "$A" iperf3 -c 10.94.0.2 -p 5201 -u -b "$RATE" -t "$SECONDS_RUN" | grep receiver)
  wait "$ping" || true
  [[ -n $poller ]] && kill "$poller" 2>/dev/null && wait "$poller" 2>/dev/null || true
  echo "$label: iperf3 $loss"
  echo "$label: ping $(grep -E 'rtt|round-trip' "$W/ping")"
}
run quiet
run polled
