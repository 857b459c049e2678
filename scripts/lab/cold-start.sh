#!/usr/bin/env bash
# How fast a freshly started daemon is ready and answers its first handshake: for each try a new
# daemon of BINARY starts in namespace fzcs-a (as wg-quick starts it: `BINARY -f IFNAME`), is
# configured with `wg set`, `ip address` and `ip link`, and a wireguard-go peer in fzcs-b pings it
# twice (the first ping waits for the handshake). Prints per try: the time from start to the UAPI
# socket, to the end of the configuration, and both pings' RTT.
#
#   bash scripts/lab/cold-start.sh [BINARY | wireguard-go] [TRIES]   (root; defaults: our build, 5)
#
# Compare a published daemon (`dotnet publish src/Host -c Release -o out`: ReadyToRun) with the
# build output (src/Host/bin/Release/net10.0/firezone-tunnel: compiled at run time) and with
# wireguard-go. Uses only the two namespaces it creates and removes them, the processes it started
# (by PID) and its files on exit, also on failure.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
if [[ "${1:-}" == wireguard-go ]]; then DAEMON=wireguard-go; else pair_find_binary cold-start "${1:-}"; DAEMON=$OURS; fi
TRIES=${2:-5}
A=fzcs-a; B=fzcs-b
pair_begin "$A" "$B" csa0 csb0
set -e
pair_link cv-a cv-b 192.168.96.1 192.168.96.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
PA=$(wg pubkey < "$W/a"); PB=$(wg pubkey < "$W/b")
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go csb0 >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [[ -S /var/run/wireguard/csb0.sock ]] && break; sleep 0.1; done
ip netns exec "$B" wg set csb0 private-key "$W/b" listen-port 51002 peer "$PA" endpoint 192.168.96.1:51001 allowed-ips 10.96.0.1/32
ip -n "$B" addr add 10.96.0.2/24 dev csb0
ip -n "$B" link set csb0 up
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
rtt() { ip netns exec "$B" ping -c 1 -W 5 10.96.0.1 | sed -n 's/.*time=\([0-9.]*\) ms.*/\1 ms/p'; }
for t in $(seq "$TRIES"); do
  start=$(date +%s%N)
  if [[ "$DAEMON" == wireguard-go ]]; then
    ip netns exec "$A" env WG_PROCESS_FOREGROUND=1 wireguard-go csa0 >/dev/null 2>&1 & p=$!
  else
    ip netns exec "$A" "$DAEMON" -f csa0 --log-file "$W/daemon-$t.log" >/dev/null 2>&1 & p=$!
  fi
  PIDS+=("$p")
  for _ in $(seq 2000); do [[ -S /var/run/wireguard/csa0.sock ]] && break; sleep 0.005; done
  socket_ms=$(ms_since "$start")
  ip netns exec "$A" wg set csa0 private-key "$W/a" listen-port 51001 peer "$PB" allowed-ips 10.96.0.2/32
  ip -n "$A" addr add 10.96.0.1/24 dev csa0
  ip -n "$A" link set csa0 up
  configured_ms=$(ms_since "$start")
  # The peer forgets the last daemon's session, so its next packet starts a handshake with this one.
  ip netns exec "$B" wg set csb0 peer "$PA" remove
  ip netns exec "$B" wg set csb0 peer "$PA" endpoint 192.168.96.1:51001 allowed-ips 10.96.0.1/32
  first=$(rtt); second=$(rtt)
  echo "try $t: UAPI socket after ${socket_ms} ms, configured after ${configured_ms} ms, first ping ${first:-lost}, second ${second:-lost}"
  kill "$p"; wait "$p" 2>/dev/null || true
  for _ in $(seq 100); do ip -n "$A" link show csa0 >/dev/null 2>&1 || break; sleep 0.05; done
  rm -f /var/run/wireguard/csa0.sock
  sleep 0.5
done
