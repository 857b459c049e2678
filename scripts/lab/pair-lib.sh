# Shared by the two-namespace lab scripts (jumbo-peer.sh, handshake-flood.sh); sourced, not run.
#
#   pair_find_binary SCRIPT [PATH]   sets OURS: PATH, else FIREZONE_TUNNEL, else the repository's
#                                    Release build, else its Debug build; exits 1 naming SCRIPT if none
#   pair_begin NS_A NS_B IF_A IF_B   creates the two namespaces (lo up) and W (a temporary directory);
#                                    on exit stops every PID in PIDS, deletes both namespaces, the
#                                    UAPI sockets of IF_A and IF_B and W, also on failure
#   pair_link VETH_A VETH_B ADDR_A ADDR_B MTU
#                                    a veth pair between them with those /24 addresses and MTU
#   pair_wait_uapi                   waits (up to 10 s) until both daemons serve their UAPI sockets

PAIR_REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

pair_find_binary() {
  OURS=""
  local c
  for c in "${2:-}" "${FIREZONE_TUNNEL:-}" "$PAIR_REPO_DIR/src/Host/bin/Release/net10.0/firezone-tunnel" \
    "$PAIR_REPO_DIR/src/Host/bin/Debug/net10.0/firezone-tunnel"; do
    if [[ -n "$c" && -x "$c" ]]; then OURS=$c; return 0; fi
  done
  echo "$1: firezone-tunnel binary not found (build src/Host with -c Release, or give its path or FIREZONE_TUNNEL)" >&2
  exit 1
}

pair_begin() {
  PAIR_A=$1; PAIR_B=$2; PAIR_IF_A=$3; PAIR_IF_B=$4
  W=$(mktemp -d)
  PIDS=()
  trap pair_cleanup EXIT
  ip netns add "$PAIR_A"
  ip netns add "$PAIR_B"
  ip -n "$PAIR_A" link set lo up
  ip -n "$PAIR_B" link set lo up
}

pair_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$PAIR_A" 2>/dev/null || true
  ip netns del "$PAIR_B" 2>/dev/null || true
  rm -f "/var/run/wireguard/$PAIR_IF_A.sock" "/var/run/wireguard/$PAIR_IF_B.sock"
  rm -rf "$W"
}

pair_link() {
  ip link add "$1" netns "$PAIR_A" type veth peer name "$2" netns "$PAIR_B"
  ip -n "$PAIR_A" addr add "$3/24" dev "$1"
  ip -n "$PAIR_B" addr add "$4/24" dev "$2"
  ip -n "$PAIR_A" link set "$1" mtu "$5" up
  ip -n "$PAIR_B" link set "$2" mtu "$5" up
}

pair_wait_uapi() {
  local _
  for _ in $(seq 100); do
    [[ -S "/var/run/wireguard/$PAIR_IF_A.sock" && -S "/var/run/wireguard/$PAIR_IF_B.sock" ]] && return 0
    sleep 0.1
  done
}
