#!/usr/bin/env bash
# A flood of handshake initiations with a valid mac1 at firezone-tunnel while a real peer pings it.
# firezone-tunnel in namespace fzfl-a, Debian's wireguard-go in fzfl-b, joined by a veth; from fzfl-b
# two senders (scripts/lab/handshake_flood.py) flood our port for 15 s while wireguard-go's side pings
# through the tunnel (120 pings at 0.1 s). Prints the ping summary, the most packet buffers
# outstanding during the flood (firezone-tunnel show), the count after it, and our Warning lines.
#
#   bash scripts/lab/handshake-flood.sh [FIREZONE_TUNNEL_BINARY]      (root)
#
# Uses only the two namespaces it creates and removes them, the processes it started (by PID) and its
# files on exit, also on failure. The binary: the argument, else FIREZONE_TUNNEL, else the
# repository's Release build, else its Debug build.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
pair_find_binary handshake-flood "${1:-}"
A=fzfl-a; B=fzfl-b
pair_begin "$A" "$B" fla0 flb0
set -e
pair_link fv-a fv-b 192.168.94.1 192.168.94.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
ip netns exec "$A" "$OURS" -f fla0 --log-file "$W/ours.log" >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go flb0 >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set fla0 private-key "$W/a" listen-port 51001 peer "$(wg pubkey < "$W/b")" endpoint 192.168.94.2:51002 allowed-ips 10.94.0.2/32
ip netns exec "$B" wg set flb0 private-key "$W/b" listen-port 51002 peer "$(wg pubkey < "$W/a")" endpoint 192.168.94.1:51001 allowed-ips 10.94.0.1/32
ip -n "$A" addr add 10.94.0.1/24 dev fla0; ip -n "$A" link set fla0 up
ip -n "$B" addr add 10.94.0.2/24 dev flb0; ip -n "$B" link set flb0 up
ip netns exec "$B" ping -c 2 -W 3 10.94.0.1 > /dev/null
PUB=$(wg pubkey < "$W/a")
for _ in 1 2; do
  ip netns exec "$B" python3 "$PAIR_REPO_DIR/scripts/lab/handshake_flood.py" "$PUB" 192.168.94.1 51001 15 > /dev/null & PIDS+=($!)
done
sleep 1
ip netns exec "$B" ping -c 120 -i 0.1 -W 1 10.94.0.1 > "$W/ping" 2>&1 & PING=$!; PIDS+=($PING)
most=0
for _ in $(seq 12); do
  b=$("$OURS" show fla0 2>/dev/null | sed -n 's/.*packet buffers: \([0-9]*\).*/\1/p')
  if [[ -n "$b" && "$b" -gt "$most" ]]; then most=$b; fi
  sleep 1
done
wait "$PING" || true
tail -2 "$W/ping"
echo "packet buffers outstanding during the flood, at most: $most"
sleep 3
echo "after it: $("$OURS" show fla0 | sed -n 's/.*packet buffers: //p')"
jq -r 'select(.severity == "Warning" or .severity == "Error") | "\(.severity) \(.message)"' "$W/ours.log" | head -5
