#!/usr/bin/env bash
# A peer whose MTU is larger than ours: wireguard-go at MTU 8920 on a 9000-byte veth sends iperf3 UDP
# with 8,000-byte datagrams to firezone-tunnel at MTU 1420 (wireguard-go's default). Each datagram is
# larger than our packet buffers; the socket receives it whole into a large buffer of its own
# (src/Native/LinuxUdpSocket.Oversize.cs) and delivers it, as wireguard-go and the kernel do.
# Prints iperf3's sender and receiver lines (rate, loss) and our transfer counter.
#
#   bash scripts/lab/jumbo-peer.sh [SECONDS] [RATE]      (root; defaults 4 s, 1G)
#
# Uses only the two namespaces it creates (fzjmb-a, fzjmb-b) and removes them, the processes it
# started (by PID) and its key files on exit, also on failure. The binary: FIREZONE_TUNNEL, else the
# repository's Release build, else its Debug build.
set -euo pipefail
SECONDS_RUN=${1:-4}
RATE=${2:-1G}
source "$(dirname "$0")/pair-lib.sh"
pair_find_binary jumbo-peer
A=fzjmb-a; B=fzjmb-b
pair_begin "$A" "$B" jmba0 jmbb0
pair_link jv-a jv-b 192.168.93.1 192.168.93.2 9000
(umask 077; wg genkey > "$W/a.key"; wg genkey > "$W/b.key")
ip netns exec "$A" "$OURS" -f jmba0 --log-file "$W/ours.log" >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go jmbb0 >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set jmba0 private-key "$W/a.key" listen-port 51001 peer "$(wg pubkey < "$W/b.key")" \
  endpoint 192.168.93.2:51002 allowed-ips 10.93.0.2/32
ip netns exec "$B" wg set jmbb0 private-key "$W/b.key" listen-port 51002 peer "$(wg pubkey < "$W/a.key")" \
  endpoint 192.168.93.1:51001 allowed-ips 10.93.0.1/32
ip -n "$A" addr add 10.93.0.1/24 dev jmba0; ip -n "$A" link set jmba0 up
ip -n "$B" addr add 10.93.0.2/24 dev jmbb0; ip -n "$B" link set jmbb0 mtu 8920 up
ip netns exec "$A" ping -c 1 -W 5 10.93.0.2 >/dev/null
ip netns exec "$A" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
ip netns exec "$B" iperf3 -c 10.93.0.1 -p 5201 -u -b "$RATE" -l 8000 -t "$SECONDS_RUN" | grep -E "sender|receiver"
echo "firezone-tunnel (MTU $(ip -n "$A" -o link show jmba0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')) received bytes: $(ip netns exec "$A" wg show jmba0 transfer | cut -f2)"
