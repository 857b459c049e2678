#!/usr/bin/env bash
# Reply source address of a multi-homed Gateway. A wireguard-go Client behind a stateful firewall
# (nftables: inbound only "ct state established") reaches the Gateway at its SECOND address, while
# the Gateway's route prefers its first address as source. wireguard-go 0.0.20220316 answers from the
# address it was contacted at (IP_PKTINFO / IPV6_PKTINFO, "sticky sockets", as the kernel's
# WireGuard does); a daemon that lets the kernel choose answers from the first address, the Client's
# conntrack does not match that reply, and the handshake never completes. Runs IPv4 and IPv6 outer.
# Prints one line per family and exits 1 if a family fails.
#
#   bash scripts/lab/reply-source.sh [BINARY | wireguard-go]      (root)
#
# Uses only the two namespaces it creates (fzsrc-a, fzsrc-b) and removes them, the processes it
# started (by PID) and its key files on exit, also on failure. The binary: the argument, else
# FIREZONE_TUNNEL, else the repository's Release build, else its Debug build.
set -euo pipefail
source "$(dirname "$0")/pair-lib.sh"
if [[ "${1:-}" == wireguard-go ]]; then OURS=wireguard-go; else pair_find_binary reply-source "${1:-}"; fi
A=fzsrc-a; B=fzsrc-b
pair_begin "$A" "$B" srca0 srcb0
pair_link sv-a sv-b 192.168.94.1 192.168.94.2 1500
ip -n "$A" addr add 192.168.94.99/24 dev sv-a
ip -n "$A" route replace 192.168.94.0/24 dev sv-a src 192.168.94.1
ip -n "$A" addr add fd94::1/64 dev sv-a nodad
ip -n "$A" addr add fd94::99/64 dev sv-a nodad
ip -n "$B" addr add fd94::2/64 dev sv-b nodad
ip -n "$A" -6 route replace fd94::/64 dev sv-a src fd94::1 metric 256 proto kernel
(umask 077; wg genkey > "$W/a.key"; wg genkey > "$W/b.key")
# Our daemon's JSON log in the lab's directory, not /var/log/firezone-tunnel (where each run appended to srca0.log).
LOG=(); [[ "$OURS" != wireguard-go ]] && LOG=(--log-file "$W/a.jsonl")
ip netns exec "$A" env WG_PROCESS_FOREGROUND=1 "$OURS" -f srca0 "${LOG[@]}" >"$W/a.log" 2>&1 & PIDS+=($!)
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go -f srcb0 >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
ip netns exec "$A" wg set srca0 private-key "$W/a.key" listen-port 51001 peer "$(wg pubkey < "$W/b.key")" \
  allowed-ips 10.94.0.2/32
ip netns exec "$B" wg set srcb0 private-key "$W/b.key" listen-port 51002 peer "$(wg pubkey < "$W/a.key")" \
  allowed-ips 10.94.0.1/32
ip -n "$A" addr add 10.94.0.1/24 dev srca0; ip -n "$A" link set srca0 up
ip -n "$B" addr add 10.94.0.2/24 dev srcb0; ip -n "$B" link set srcb0 up
printf '%s\n' 'table inet fw {' ' chain input_chain {' '  type filter hook input priority 0; policy drop;' \
  '  iif "lo" accept' '  iifname "srcb0" accept' '  ct state established,related accept' \
  '  icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept' ' }' '}' | ip netns exec "$B" nft -f -
failed=0
for endpoint in 192.168.94.99:51001 '[fd94::99]:51001'; do
  ip netns exec "$B" wg set srcb0 peer "$(wg pubkey < "$W/a.key")" endpoint "$endpoint"
  if ip netns exec "$B" ping -c 1 -w 8 10.94.0.1 >/dev/null; then result=ok; else result=FAILED; failed=1; fi
  echo "$OURS contacted at $endpoint: $result (the Client sees it at $(ip netns exec "$B" wg show srcb0 endpoints | cut -f2))"
  # A fresh handshake for the next family: forget the session on both sides.
  ip netns exec "$A" wg set srca0 peer "$(wg pubkey < "$W/b.key")" remove
  ip netns exec "$A" wg set srca0 peer "$(wg pubkey < "$W/b.key")" allowed-ips 10.94.0.2/32
  ip netns exec "$B" wg set srcb0 peer "$(wg pubkey < "$W/a.key")" remove
  ip netns exec "$B" wg set srcb0 peer "$(wg pubkey < "$W/a.key")" allowed-ips 10.94.0.1/32
done
exit "$failed"
