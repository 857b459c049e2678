#!/usr/bin/env bash
# A TCP stream through a pair of daemons while one side's listen port changes again and again
# (wg set listen-port): the tunnel must keep carrying it, and the other side must follow the port.
# The daemon under test in namespaces fzpc-a and fzpc-b, joined by a veth; iperf3 from A to B for
# SECONDS while B's port changes CHANGES times, once a second. Prints iperf3's seconds, B's last
# port and A's endpoint for B, how many moves the log called "sessions kept" (0 for a build that
# rebuilds the tunnel instead), Warning/Error log lines and B's outstanding packet buffers.
#
#   bash scripts/lab/port-churn.sh [FIREZONE_TUNNEL_BINARY] [SECONDS] [CHANGES]   (root; defaults: 10, 8)
#
# Uses only the two namespaces it creates and removes them, the processes it started (by PID) and its
# files on exit, also on failure. The binary: the argument, else FIREZONE_TUNNEL, else the
# repository's Release build, else its Debug build.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
pair_find_binary port-churn "${1:-}"
SECONDS_RUN=${2:-10}; CHANGES=${3:-8}
A=fzpc-a; B=fzpc-b
pair_begin "$A" "$B" pca0 pcb0
set -e
pair_link pv-a pv-b 192.168.93.1 192.168.93.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
ip netns exec "$A" "$OURS" -f pca0 --log-file "$W/a.log" >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$B" "$OURS" -f pcb0 --log-file "$W/b.log" >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set pca0 private-key "$W/a" listen-port 51001 peer "$(wg pubkey < "$W/b")" endpoint 192.168.93.2:51002 allowed-ips 10.93.0.2/32
ip netns exec "$B" wg set pcb0 private-key "$W/b" listen-port 51002 peer "$(wg pubkey < "$W/a")" endpoint 192.168.93.1:51001 allowed-ips 10.93.0.1/32
ip -n "$A" addr add 10.93.0.1/24 dev pca0; ip -n "$A" link set pca0 up
ip -n "$B" addr add 10.93.0.2/24 dev pcb0; ip -n "$B" link set pcb0 up
ip netns exec "$B" iperf3 -s -1 -p 5299 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
ip netns exec "$A" ping -c 2 -W 3 10.93.0.2 >/dev/null
( for i in $(seq "$CHANGES"); do sleep 1; ip netns exec "$B" wg set pcb0 listen-port $((52000 + i)); done ) & CHURN=$!
PIDS+=("$CHURN")
ip netns exec "$A" iperf3 -c 10.93.0.2 -p 5299 -t "$SECONDS_RUN" -i 1 -f m 2>&1 | grep -E "sec" || echo "iperf3 failed"
wait "$CHURN" || true
echo "B's listen port: $(ip netns exec "$B" wg show pcb0 listen-port); A's endpoint for B: $(ip netns exec "$A" wg show pca0 endpoints | cut -f2)"
echo "moves with sessions kept: $(grep -c "sessions kept" "$W/b.log" || true)"
grep -hE '"severity": *"(Warning|Error|Fatal)"' "$W/a.log" "$W/b.log" | head -5 || true
"$OURS" show pcb0 | grep -i "buffers outstanding" || true
