#!/usr/bin/env bash
# A roaming Client moves to its second uplink: the default route switches from uplink 1 to uplink 2
# while uplink 1 stays up with its address (a laptop's Wi-Fi still associated when Ethernet takes
# the default route), and the router, as an ISP's would (BCP 38), drops datagrams whose source is
# not of the link they came from (rp_filter=1). wireguard-go 0.0.20220316 listens for route changes
# (device/sticky_linux.go, RTMGRP_IPV4_ROUTE) and drops its sticky source when the route to the
# endpoint leaves by another interface than the one the source was learned on: the next datagram
# leaves from uplink 2's address and the Gateway roams to it (no ping lost). A daemon that keeps
# the old source sends from uplink 1's address through uplink 2 (here the router does not even
# answer its ARP, so the datagrams wait on the neighbour entry and are lost without an error).
#
#   bash scripts/lab/uplink-switch.sh [CLIENT [GATEWAY]]     (root; each BINARY or wireguard-go)
#
# Default: the repository's Release build as Client, wireguard-go as Gateway. Pings through the
# tunnel every 0.1 s, switches the route, and prints the time to the first reply after the switch
# (or none within 25 s) and the endpoint the Gateway's `wg show` reports; exits 1 without a reply.
# Namespaces fzupc (Client), fzupr (router), fzupg (Gateway); removes them, the processes it started
# (by PID) and its files on exit, also on failure.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CLIENT=${1:-$REPO/src/Host/bin/Release/net10.0/firezone-tunnel}
GATEWAY=${2:-wireguard-go}
C=fzupc; R=fzupr; G=fzupg; CW=fzupcw; GW=fzupgw
W=$(mktemp -d); PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in $C $R $G; do ip netns del $p 2>/dev/null || true; done
  rm -f /var/run/wireguard/$CW.sock /var/run/wireguard/$GW.sock; rm -rf "$W"
}
trap cleanup EXIT
for n in $C $R $G; do ip netns add $n; ip -n $n link set lo up; done
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
ip link add fzupc1 netns $C type veth peer name fzupr1 netns $R
ip link add fzupc2 netns $C type veth peer name fzupr2 netns $R
ip link add fzupr3 netns $R type veth peer name fzupg1 netns $G
ip -n $C addr add 10.203.1.2/24 dev fzupc1; ip -n $R addr add 10.203.1.1/24 dev fzupr1
ip -n $C addr add 10.203.2.2/24 dev fzupc2; ip -n $R addr add 10.203.2.1/24 dev fzupr2
ip -n $R addr add 10.203.3.1/24 dev fzupr3; ip -n $G addr add 10.203.3.2/24 dev fzupg1
for i in fzupc1 fzupc2; do ip -n $C link set $i up; done
for i in fzupr1 fzupr2 fzupr3; do ip netns exec $R sysctl -qw net.ipv4.conf.$i.rp_filter=1; ip -n $R link set $i up; done
ip -n $G link set fzupg1 up
ip -n $C route add default via 10.203.1.1 dev fzupc1; ip -n $G route add default via 10.203.3.1
start() { # NS IFNAME BINARY
  if [[ $3 == wireguard-go ]]; then
    ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2" >"$W/$2.log" 2>&1 & PIDS+=($!)
  else
    ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 "$3" -f "$2" --log-file "$W/$2.jsonl" >"$W/$2.log" 2>&1 & PIDS+=($!)
  fi
}
start $C $CW "$CLIENT"; start $G $GW "$GATEWAY"
for _ in $(seq 100); do [[ -S /var/run/wireguard/$CW.sock && -S /var/run/wireguard/$GW.sock ]] && break; sleep 0.1; done
(umask 077; wg genkey > "$W/c.key"; wg genkey > "$W/g.key")
ip netns exec $G wg set $GW private-key "$W/g.key" listen-port 51820 peer "$(wg pubkey < "$W/c.key")" allowed-ips 10.98.0.1/32
ip netns exec $C wg set $CW private-key "$W/c.key" peer "$(wg pubkey < "$W/g.key")" allowed-ips 10.98.0.0/24 endpoint 10.203.3.2:51820
ip -n $C addr add 10.98.0.1/24 dev $CW; ip -n $C link set $CW up
ip -n $G addr add 10.98.0.2/24 dev $GW; ip -n $G link set $GW up
ip netns exec $C ping -c 1 -w 5 10.98.0.2 >/dev/null
ip netns exec $C ping -i 0.1 -D -n 10.98.0.2 >"$W/ping" 2>&1 & PING=$!; PIDS+=($PING)
sleep 2
switched=$(date +%s.%N)
ip -n $C route replace default via 10.203.2.1 dev fzupc2
# Until the first reply after the switch (then 1 s more, for the Gateway's view), 25 s at most.
first=""
for _ in $(seq 250); do
  sleep 0.1
  first=$(awk -v E="$switched" -F'[][]' '/bytes from/ && $2 > E { print $2 - E; exit }' "$W/ping")
  [[ -n "$first" ]] && break
done
[[ -n "$first" ]] && sleep 1
kill -INT $PING 2>/dev/null || true
if [[ -n "$first" ]]; then result="+$first s"; else result="none within 25 s"; fi
echo "Client $(basename "$CLIENT"), Gateway $(basename "$GATEWAY"): first reply after the switch: $result"
echo "  Gateway sees the Client at $(ip netns exec $G wg show $GW endpoints | cut -f2) (uplink 2 is 10.203.2.2)"
[[ -n "$first" ]]
