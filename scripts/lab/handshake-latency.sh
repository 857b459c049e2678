#!/usr/bin/env bash
# How long a responder takes to answer a handshake initiation after an idle pause: Debian's
# wireguard-go in namespace fzhl-b initiates, the responder under test in fzhl-a answers. Each try
# waits IDLE seconds, removes and re-adds the responder on wireguard-go's side (so its next packet
# starts a new handshake) and pings once; tshark on the veth times each initiation (148 bytes) to its
# response (92 bytes). Prints every try's time and the median and maximum, in microseconds.
#
#   bash scripts/lab/handshake-latency.sh [RESPONDER_BINARY | wireguard-go] [TRIES] [IDLE]
#                                         (root; defaults: our build, 10 tries, 5 s)
#
# Uses only the two namespaces it creates and removes them, the processes it started (by PID) and its
# files on exit, also on failure. The binary: the argument ("wireguard-go" for Debian's), else
# FIREZONE_TUNNEL, else the repository's Release build, else its Debug build.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
if [[ "${1:-}" == wireguard-go ]]; then RESPONDER=wireguard-go; else pair_find_binary handshake-latency "${1:-}"; RESPONDER=$OURS; fi
TRIES=${2:-10}; IDLE=${3:-5}
A=fzhl-a; B=fzhl-b
pair_begin "$A" "$B" hla0 hlb0
set -e
pair_link hv-a hv-b 192.168.95.1 192.168.95.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
if [[ "$RESPONDER" == wireguard-go ]]; then
  ip netns exec "$A" env WG_PROCESS_FOREGROUND=1 wireguard-go hla0 >/dev/null 2>&1 & PIDS+=($!)
else
  ip netns exec "$A" "$RESPONDER" -f hla0 --log-file "$W/responder.log" >/dev/null 2>&1 & PIDS+=($!)
fi
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go hlb0 >/dev/null 2>&1 & PIDS+=($!)
pair_wait_uapi
PA=$(wg pubkey < "$W/a"); PB=$(wg pubkey < "$W/b")
ip netns exec "$A" wg set hla0 private-key "$W/a" listen-port 51001 peer "$PB" allowed-ips 10.95.0.2/32
ip netns exec "$B" wg set hlb0 private-key "$W/b" listen-port 51002 peer "$PA" endpoint 192.168.95.1:51001 allowed-ips 10.95.0.1/32
ip -n "$A" addr add 10.95.0.1/24 dev hla0; ip -n "$A" link set hla0 up
ip -n "$B" addr add 10.95.0.2/24 dev hlb0; ip -n "$B" link set hlb0 up
# Warm-up: the first handshake and the first packets (a .NET responder compiles its path here).
ip netns exec "$B" ping -c 3 -i 0.2 -W 5 10.95.0.1 >/dev/null
ip netns exec "$B" tshark -i hv-b -l -n -f 'udp and (udp[8]=1 or udp[8]=2)' \
  -T fields -e frame.time_epoch -e udp.length > "$W/capture" 2>/dev/null & PIDS+=($!)
sleep 2
for _ in $(seq "$TRIES"); do
  sleep "$IDLE"
  ip netns exec "$B" wg set hlb0 peer "$PA" remove
  ip netns exec "$B" wg set hlb0 peer "$PA" endpoint 192.168.95.1:51001 allowed-ips 10.95.0.1/32
  ip netns exec "$B" ping -c 1 -W 5 10.95.0.1 >/dev/null || echo "a ping was lost"
done
sleep 1
python3 - "$W/capture" "$RESPONDER" <<'PY'
import sys
initiation = None
times = []
for line in open(sys.argv[1]):
    fields = line.split()
    if len(fields) != 2:
        continue
    at, length = float(fields[0]), int(fields[1]) - 8  # udp.length counts the UDP header
    if length == 148:
        initiation = at
    elif length == 92 and initiation is not None:
        times.append((at - initiation) * 1e6)
        initiation = None
print(f"{sys.argv[2]}: response after initiation, us:", [round(t) for t in times])
if times:
    s = sorted(times)
    print(f"median {round(s[len(s) // 2])} us, max {round(s[-1])} us, {len(s)} handshakes")
PY
