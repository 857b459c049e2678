#!/usr/bin/env bash
# A full tunnel (AllowedIPs = 0.0.0.0/0, ::/0) brought up with `firezone-tunnel up` on a Client whose
# reverse-path filter is strict (rp_filter=1, RHEL's default), against a wireguard-go Gateway. The
# Gateway's datagrams come in by the uplink, but the main table routes everything into the tunnel:
# without wg-quick's nftables mark rules (the connection's mark given back to the replies, so the
# filter looks them up in the fwmark's table) the kernel dropped them all. Pings the Gateway's tunnel
# address 5 times, prints the replies, the daemon's nftables tables while it runs and after its stop,
# and exits 1 unless all 5 came back and no table was left.
#
#   bash scripts/lab/full-tunnel-rp-filter.sh [BINARY]     (root; default: the repository's Release build)
#
# Namespaces fzrpc (Client), fzrpr (a router: the Gateway is not on the Client's link, so only the
# default route leads to it) and fzrpg (Gateway); removes them, the processes it started (by PID) and
# its files on exit, also on failure.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OURS=${1:-$REPO/src/Host/bin/Release/net10.0/firezone-tunnel}
C=fzrpc; R=fzrpr; G=fzrpg; CW=fzrpcw; GW=fzrpgw
W=$(mktemp -d); PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in $C $R $G; do ip netns del $p 2>/dev/null || true; done
  rm -f /var/run/wireguard/$CW.sock /var/run/wireguard/$GW.sock /run/firezone-tunnel/$CW.json; rm -rf "$W"
}
trap cleanup EXIT
for n in $C $R $G; do ip netns add $n; ip -n $n link set lo up; done
ip link add fzrpc1 netns $C type veth peer name fzrpr1 netns $R
ip link add fzrpr2 netns $R type veth peer name fzrpg1 netns $G
ip -n $C addr add 10.204.1.2/24 dev fzrpc1; ip -n $R addr add 10.204.1.1/24 dev fzrpr1
ip -n $R addr add 10.204.2.1/24 dev fzrpr2; ip -n $G addr add 10.204.2.2/24 dev fzrpg1
ip -n $C link set fzrpc1 up; ip -n $R link set fzrpr1 up; ip -n $R link set fzrpr2 up; ip -n $G link set fzrpg1 up
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
ip -n $C route add default via 10.204.1.1; ip -n $G route add default via 10.204.2.1
ip netns exec $C sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.fzrpc1.rp_filter=1
(umask 077; wg genkey > "$W/c.key"; wg genkey > "$W/g.key")
ip netns exec $G env WG_PROCESS_FOREGROUND=1 wireguard-go -f $GW >"$W/gw.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [[ -S /var/run/wireguard/$GW.sock ]] && break; sleep 0.1; done
ip netns exec $G wg set $GW private-key "$W/g.key" listen-port 51820 peer "$(wg pubkey < "$W/c.key")" allowed-ips 10.99.0.1/32,fd99::1/128
ip -n $G addr add 10.99.0.2/24 dev $GW; ip -n $G addr add fd99::2/64 dev $GW; ip -n $G link set $GW up
cat > "$W/$CW.conf" <<CONF
[Interface]
PrivateKey = $(cat "$W/c.key")
Address = 10.99.0.1/24, fd99::1/64
ListenPort = 0

[Peer]
PublicKey = $(wg pubkey < "$W/g.key")
Endpoint = 10.204.2.2:51820
AllowedIPs = 0.0.0.0/0, ::/0
CONF
ip netns exec $C "$OURS" up "$W/$CW.conf" --log-file "$W/$CW.jsonl" >"$W/$CW.log" 2>&1 & UP=$!; PIDS+=($UP)
for _ in $(seq 150); do ip -n $C link show $CW 2>/dev/null | grep -q "UP" && [[ -S /var/run/wireguard/$CW.sock ]] && break; sleep 0.1; done
sleep 1
replies=$(ip netns exec $C ping -c 5 -i 0.2 -W 2 10.99.0.2 2>&1 | sed -n 's/.* \([0-9]*\) received.*/\1/p' || true)
echo "pings answered: ${replies:-0} of 5 (rp_filter=1)"
echo "nftables tables while up: $(ip netns exec $C nft list tables | tr '\n' ';')"
kill "$UP"; wait "$UP" 2>/dev/null || true
left=$(ip netns exec $C nft list tables)
echo "nftables tables after the stop: ${left:-none}"
[[ ${replies:-0} == 5 && -z $left ]]
