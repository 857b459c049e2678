#!/usr/bin/env bash
# Where the CPU time of a TCP stream through the tunnel goes: `perf record -g` of both daemons
# (every thread) while iperf3 sends from namespace A to B for SECONDS, with DOTNET_PerfMapEnabled=1
# so perf names JIT-compiled frames. Prints iperf3's rate and the samples split by where they
# landed: OpenSSL's libcrypto, the kernel, JIT-compiled code (ours and the libraries'), the .NET
# runtime, glibc, other; then the top symbols. The recording stays in artifacts/lab/profile-tcp.data
# for `perf report -i FILE` by hand.
#
#   bash scripts/lab/profile-tcp.sh [FIREZONE_TUNNEL_BINARY] [SECONDS]   (root; needs perf: linux-perf; default 10 s)
#
# Uses only the two namespaces it creates and removes them, the processes it started (by PID) and its
# files on exit, also on failure. The binary: the argument, else FIREZONE_TUNNEL, else the
# repository's Release build, else its Debug build.
set -uo pipefail
source "$(dirname "$0")/pair-lib.sh"
pair_find_binary profile-tcp "${1:-}"
SECONDS_RUN=${2:-10}
command -v perf >/dev/null || { echo "profile-tcp: perf not found (apt-get install linux-perf)" >&2; exit 1; }
OUT="$PAIR_REPO_DIR/artifacts/lab"; mkdir -p "$OUT"; DATA="$OUT/profile-tcp.data"
A=fzpt-a; B=fzpt-b
pair_begin "$A" "$B" pta0 ptb0
set -e
pair_link pt-a pt-b 192.168.94.1 192.168.94.2 1500
(umask 077; wg genkey > "$W/a"; wg genkey > "$W/b")
export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
ip netns exec "$A" "$OURS" -f pta0 --log-file "$W/a.log" >/dev/null 2>&1 & PA=$!; PIDS+=($PA)
ip netns exec "$B" "$OURS" -f ptb0 --log-file "$W/b.log" >/dev/null 2>&1 & PB=$!; PIDS+=($PB)
pair_wait_uapi
ip netns exec "$A" wg set pta0 private-key "$W/a" listen-port 51101 peer "$(wg pubkey < "$W/b")" endpoint 192.168.94.2:51102 allowed-ips 10.94.0.2/32
ip netns exec "$B" wg set ptb0 private-key "$W/b" listen-port 51102 peer "$(wg pubkey < "$W/a")" endpoint 192.168.94.1:51101 allowed-ips 10.94.0.1/32
ip -n "$A" addr add 10.94.0.1/24 dev pta0; ip -n "$A" link set pta0 mtu 1420 up
ip -n "$B" addr add 10.94.0.2/24 dev ptb0; ip -n "$B" link set ptb0 mtu 1420 up
ip netns exec "$B" iperf3 -s -p 5298 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
ip netns exec "$A" ping -c 2 -W 3 10.94.0.2 >/dev/null
# Warm-up: the JIT recompiles the packet path optimised after its first calls.
ip netns exec "$A" iperf3 -c 10.94.0.2 -p 5298 -t 2 >/dev/null 2>&1
ip netns exec "$A" iperf3 -c 10.94.0.2 -p 5298 -t "$SECONDS_RUN" -f g > "$W/iperf" 2>&1 & IPERF=$!; PIDS+=($IPERF)
sleep 1
perf record -q -g -F 2000 -p "$PA,$PB" -o "$DATA" -- sleep $((SECONDS_RUN - 2)) 2>/dev/null
wait "$IPERF" || true
grep -E "receiver" "$W/iperf" | sed 's/^/iperf3: /' || echo "iperf3 failed"
perf report -i "$DATA" --no-children --sort dso -g none --stdio 2>/dev/null | awk '
  /%/ { p=$1; sub("%","",p); d=$2
        if (d ~ /libcrypto/) k="OpenSSL libcrypto"; else if (d ~ /kernel/) k="kernel"; else if (d ~ /perf-[0-9]+\.map|memfd:doublemapper|JIT/) k="JIT-compiled code"
        else if (d ~ /libcoreclr|libclrjit|System\.Private\.CoreLib|\.dll/) k=".NET runtime and precompiled libraries"; else if (d ~ /libc\.so|libc-/) k="glibc"; else if (d ~ /libSystem/) k=".NET native shims"; else k="other (" d ")"
        s[k]+=p }
  END { for (k in s) printf "%6.1f%%  %s\n", s[k], k }' | sort -rn
echo "top symbols:"
perf report -i "$DATA" --no-children --sort dso,symbol -g none --stdio 2>/dev/null | grep "%" | head -25
