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
REPO_DIR=$(cd "$(dirname "$0")/../.." && pwd)
OURS=""
for c in "${FIREZONE_TUNNEL:-}" "$REPO_DIR/src/Host/bin/Release/net10.0/firezone-tunnel" "$REPO_DIR/src/Host/bin/Debug/net10.0/firezone-tunnel"; do
  if [[ -n "$c" && -x "$c" ]]; then OURS=$c; break; fi
done
[[ -n "$OURS" ]] || { echo "jumbo-peer: firezone-tunnel binary not found (build src/Host with -c Release, or set FIREZONE_TUNNEL)" >&2; exit 1; }
A=fzjmb-a; B=fzjmb-b
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -f /var/run/wireguard/jmba0.sock /var/run/wireguard/jmbb0.sock
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add jv-a netns "$A" type veth peer name jv-b netns "$B"
ip -n "$A" addr add 192.168.93.1/24 dev jv-a; ip -n "$B" addr add 192.168.93.2/24 dev jv-b
ip -n "$A" link set jv-a mtu 9000 up; ip -n "$B" link set jv-b mtu 9000 up
ip -n "$A" link set lo up; ip -n "$B" link set lo up
(umask 077; wg genkey > "$WORK/a.key"; wg genkey > "$WORK/b.key")
ip netns exec "$A" "$OURS" -f jmba0 --log-file "$WORK/ours.log" >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go jmbb0 >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 100); do
  [[ -S /var/run/wireguard/jmba0.sock && -S /var/run/wireguard/jmbb0.sock ]] && break
  sleep 0.1
done
ip netns exec "$A" wg set jmba0 private-key "$WORK/a.key" listen-port 51001 peer "$(wg pubkey < "$WORK/b.key")" \
  endpoint 192.168.93.2:51002 allowed-ips 10.93.0.2/32
ip netns exec "$B" wg set jmbb0 private-key "$WORK/b.key" listen-port 51002 peer "$(wg pubkey < "$WORK/a.key")" \
  endpoint 192.168.93.1:51001 allowed-ips 10.93.0.1/32
ip -n "$A" addr add 10.93.0.1/24 dev jmba0; ip -n "$A" link set jmba0 up
ip -n "$B" addr add 10.93.0.2/24 dev jmbb0; ip -n "$B" link set jmbb0 mtu 8920 up
ip netns exec "$A" ping -c 1 -W 5 10.93.0.2 >/dev/null
ip netns exec "$A" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
ip netns exec "$B" iperf3 -c 10.93.0.1 -p 5201 -u -b "$RATE" -l 8000 -t "$SECONDS_RUN" | grep -E "sender|receiver"
echo "firezone-tunnel (MTU $(ip -n "$A" -o link show jmba0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')) received bytes: $(ip netns exec "$A" wg show jmba0 transfer | cut -f2)"
