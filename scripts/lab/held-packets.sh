#!/usr/bin/env bash
# A Gateway whose Clients went away: firezone-tunnel (or any binary run like wireguard-go) with N
# peers whose endpoints never answer, 150 datagrams routed to each of them (they wait behind
# handshakes nobody answers), then pings both ways with a live wireguard-go Client. Before the
# staged-packet budget (src/Engine/WireGuard/StagedPacketBudget.cs) 200 such peers held every
# packet buffer and the pings got no answer. Run as root:
#
#     bash scripts/lab/held-packets.sh BINARY [N]     (N: default 200)
#
# Two namespaces of its own (ldA<PID>, ldB<PID>) joined by a veth, interfaces ldg<PID> / ldc<PID>;
# every process it started is stopped by PID and the namespaces deleted on exit, also on failure.
set -u
BIN=${1:?usage: held-packets.sh BINARY [N]}; N=${2:-200}
S=$$; A=ldA$S; B=ldB$S; G=ldg$S; C=ldc$S
LOG=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
  rm -rf "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add $A; ip netns add $B
ip link add ldv${S}a netns $A type veth peer name ldv${S}b netns $B
ip -n $A addr add 10.77.0.1/24 dev ldv${S}a; ip -n $B addr add 10.77.0.2/24 dev ldv${S}b
ip -n $A link set ldv${S}a up; ip -n $B link set ldv${S}b up; ip -n $A link set lo up; ip -n $B link set lo up
gk=$(wg genkey); gp=$(echo "$gk" | wg pubkey); ck=$(wg genkey); cp=$(echo "$ck" | wg pubkey)
ip netns exec $A env WG_PROCESS_FOREGROUND=1 "$BIN" -f $G > "$LOG/gateway.log" 2>&1 & pids+=($!)
ip netns exec $B env WG_PROCESS_FOREGROUND=1 wireguard-go -f $C > "$LOG/client.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do [[ -S /var/run/wireguard/$G.sock && -S /var/run/wireguard/$C.sock ]] && break; sleep 0.1; done
ip netns exec $A wg set $G private-key <(echo "$gk") listen-port 51820 peer "$cp" allowed-ips 10.200.0.2/32
ip netns exec $B wg set $C private-key <(echo "$ck") peer "$gp" allowed-ips 10.200.0.0/16 endpoint 10.77.0.1:51820
for i in $(seq 0 $((N - 1))); do
  # Endpoints in the Client's namespace on ports nobody listens on: the initiations go nowhere.
  printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.201.%d.%d/32\nEndpoint = 10.77.0.2:%d\n' \
    "$(head -c 32 /dev/urandom | base64)" $((i / 250)) $((i % 250 + 1)) $((40000 + i))
done > "$LOG/peers.conf"
ip netns exec $A wg addconf $G "$LOG/peers.conf"
ip -n $A addr add 10.200.0.1/16 dev $G; ip -n $A link set $G up; ip -n $A route add 10.201.0.0/16 dev $G
ip -n $B addr add 10.200.0.2/16 dev $C; ip -n $B link set $C up
echo "before: Client -> Gateway $(ip netns exec $B ping -c 3 -i 0.2 -W 2 10.200.0.1 | grep -o '[0-9]* received')"
ip netns exec $A python3 - "$N" <<'PY'
import socket, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
failed = 0
for r in range(150):
    for i in range(n):
        try:
            s.sendto(b"x" * 100, (f"10.201.{i // 250}.{i % 250 + 1}", 9))
        except OSError:
            failed += 1
        if i % 50 == 0:
            time.sleep(0.002)  # paced, so the TUN device's queue does not drop them
print(f"sent {150 * n - failed} of {150 * n} datagrams to {n} peers nobody answers", flush=True)
PY
sleep 1
echo "after: Client -> Gateway $(ip netns exec $B ping -c 5 -i 0.2 -W 2 10.200.0.1 | grep -o '[0-9]* received')"
echo "after: Gateway -> Client $(ip netns exec $A ping -c 5 -i 0.2 -W 2 10.200.0.2 | grep -o '[0-9]* received')"
echo "Gateway log lines at Warning or above: $(grep -ciE '"(Warning|Error|Fatal)"|\[(WRN|ERR|FTL)\]' "$LOG/gateway.log")"
