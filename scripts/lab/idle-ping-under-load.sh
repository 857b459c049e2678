#!/bin/bash
# Usage: bash scripts/lab/idle-ping-under-load.sh GATEWAY_BINARY   (root)
# An idle peer's latency while other peers upload in bulk through one Gateway: GATEWAY_BINARY (run
# like wireguard-go: BINARY -f IFNAME) in namespace PREFIXg with 5 peers, each a wireguard-go Client
# in a namespace of its own (PREFIXc1..5, a veth each, 10.66.N.0/24; tunnel 100.64.0.0/16); Clients
# 1 to 4 upload with iperf3 for 7 s while Client 5 pings the Gateway every 0.2 s. Prints the ping
# summary idle and under load, the total upload and the Gateway socket's queue (skmem). Everything it
# made (namespaces, processes by PID, files) is removed on exit. README "The socket's receive queue".
set -u
GW=$1; P=fzl$RANDOM; N=5
cleanup() { for f in /tmp/$P-*.pid; do [ -f "$f" ] && kill $(cat $f) 2>/dev/null; done; sleep 0.5; for i in $(seq 1 $N); do ip netns del ${P}c$i 2>/dev/null; done; ip netns del ${P}g 2>/dev/null; rm -f /tmp/$P-* /var/run/wireguard/${P}*.sock; }
trap cleanup EXIT
ip netns add ${P}g; ip -n ${P}g link set lo up
wg genkey > /tmp/$P-g.key; GPUB=$(wg pubkey < /tmp/$P-g.key)
ip netns exec ${P}g $GW -f ${P}w --log-file /tmp/$P-g.log > /dev/null 2>&1 & echo $! > /tmp/$P-g.pid
sleep 1.5
ip netns exec ${P}g wg set ${P}w private-key /tmp/$P-g.key listen-port 51820
ip -n ${P}g addr add 100.64.0.1/16 dev ${P}w; ip -n ${P}g link set ${P}w up
for i in $(seq 1 $N); do
  ns=${P}c$i; ip netns add $ns; ip -n $ns link set lo up
  ip link add ${P}a$i netns $ns type veth peer name ${P}b$i netns ${P}g
  ip -n $ns addr add 10.66.$i.2/24 dev ${P}a$i; ip -n $ns link set ${P}a$i up
  ip -n ${P}g addr add 10.66.$i.1/24 dev ${P}b$i; ip -n ${P}g link set ${P}b$i up
  wg genkey > /tmp/$P-c$i.key; CPUB=$(wg pubkey < /tmp/$P-c$i.key)
  ip netns exec $ns env WG_PROCESS_FOREGROUND=1 wireguard-go ${P}k$i > /dev/null 2>&1 & echo $! > /tmp/$P-c$i.pid
  sleep 0.3
  ip netns exec $ns wg set ${P}k$i private-key /tmp/$P-c$i.key peer $GPUB endpoint 10.66.$i.1:51820 allowed-ips 100.64.0.0/16
  ip -n $ns addr add 100.64.1.$i/16 dev ${P}k$i; ip -n $ns link set ${P}k$i up
  ip netns exec ${P}g wg set ${P}w peer $CPUB allowed-ips 100.64.1.$i/32
done
for i in 1 2 3 4; do ip netns exec ${P}g iperf3 -s -p 53$i -D --pidfile /tmp/$P-s$i.pid; done
sleep 0.5
for i in $(seq 1 $N); do ip netns exec ${P}c$i ping -c1 -W2 -q 100.64.0.1 > /dev/null || echo "client $i no ping"; done
ip netns exec ${P}c5 ping -c 20 -i 0.1 -q 100.64.0.1 | tail -1 | sed 's/^/idle: /'
IP=""; for i in 1 2 3 4; do timeout -s KILL 12 ip netns exec ${P}c$i iperf3 -c 100.64.0.1 -p 53$i -t 7 -J > /tmp/$P-r$i.json 2>/dev/null & IP="$IP $!"; done
sleep 1.5
ip netns exec ${P}c5 ping -c 25 -i 0.2 -q 100.64.0.1 | tail -1 | sed 's/^/under load: /'
wait $IP
python3 -c "
import json,sys
t=0
for i in range(1,5):
    try: d=json.load(open('/tmp/$P-r%d.json'%i)); t+=d['end']['sum_received']['bits_per_second']
    except Exception as e: print('iperf',i,e)
print('total upload %.2f Gbit/s'%(t/1e9))"
ip netns exec ${P}g ss -uamn sport = :51820 | grep -o "skmem:([^)]*)" | head -1
