#!/usr/bin/env bash
# The end-to-end lab: four network namespaces in Firezone's picture, Client -> Router -> Gateway ->
# Resource, joined by veth pairs, plus the WireGuard launcher and the congested router. Used by
# scripts/demo.sh and by tests/EndToEnd.Tests (which call it through Process and always call `down`).
#
#   client  veth-r ===== veth-c  router  veth-g ===== veth-r  gateway  veth-s ===== veth-g  resource
#           10.77.1.2/24  .1              .1   10.77.2.0/24   .2         .1   10.77.3.0/24   .2
#           fd77:1::2/64  ::1             ::1  fd77:2::/64    ::2        ::1  fd77:3::/64    ::2
#
#   tunnel (inner):  client 10.77.100.2 / fd77:100::2   <->   gateway 10.77.100.1 / fd77:100::1
#   the client routes the resource's subnets (10.77.3.0/24, fd77:3::/64) into the tunnel.
#
# Inner return path: the resource has a route back to the tunnel subnet via the gateway (no
# masquerade), so inner addresses stay the client's end to end and captures on the resource show
# exactly what the client sent. The gateway only forwards.
#
# Only addresses inside these namespaces are used; the root namespace is never touched (veths are
# created directly inside their namespaces). IPv6 DAD is off (sysctl before any interface exists,
# plus `nodad`) so addresses are usable at once.
#
# State (PID files, keys, logs) lives in $LAB_STATE_ROOT/PREFIX (default /run/fzlab/PREFIX).
#
# Subcommands (ROLE is client|gateway for the tunnel, or any of client|router|gateway|resource for exec):
#   up PREFIX                         create namespaces, links, addresses, routes, keys, counters
#   down PREFIX                       stop every process started here (by PID file), delete namespaces; idempotent
#   start PREFIX ROLE [IMPL]          start a WireGuard implementation (wireguard-go | firezone-tunnel | a path)
#                                     in ROLE's namespace, wait for its UAPI socket, configure it with wg and ip
#   stop PREFIX ROLE [--kill]         SIGTERM (then SIGKILL after 5 s) or SIGKILL at once
#   pid PREFIX ROLE                   print the PID of ROLE's tunnel process (exit 1 if not running)
#   ifname PREFIX ROLE                print ROLE's tunnel interface name
#   peer-readd PREFIX ROLE            remove and re-add the peer on ROLE: drops its sessions, forcing a new handshake
#   roam PREFIX                       move the client's underlay addresses (.2 -> .3 and back): endpoint roaming
#   mark PREFIX PERCENT               router sets CE on PERCENT % of forwarded ECT tunnel datagrams (0 = off)
#   force PREFIX ce|ect1|off          router sets outer CE / ECT(1) on EVERY forwarded tunnel datagram, Not-ECT too
#   counters PREFIX                   print "name packets" for every lab counter (router outer ECN, far-TUN inner ECN)
#   bg PREFIX ROLE NAME CMD...        run CMD in ROLE's namespace in the background, PID recorded as NAME
#   kill PREFIX NAME                  stop a background process started with bg
#   exec PREFIX ROLE CMD...           run CMD in ROLE's namespace
#   addr PREFIX ROLE 4|6              print ROLE's underlay address (client, gateway, resource) of that family
#
# Environment for `start`: UNDERLAY=4|6 (endpoint family, default 4), ENDPOINTS=client|gateway|both
# (which side knows the other's endpoint, default both), PSK=1 (use a preshared key), FIREZONE_TUNNEL
# (path of the firezone-tunnel binary; default the repo's Release build, then Debug).
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/../.." && pwd)"
STATE_ROOT="${LAB_STATE_ROOT:-/run/fzlab}"
GATEWAY_PORT=51820
CLIENT_PORT=51821
ROLES=(client router gateway resource)

die() { echo "lab.sh: $*" >&2; exit 1; }

check_prefix() {
  [[ $# -ge 1 && -n "$1" ]] || die "missing PREFIX"
  # Interface names are "<PREFIX>-c"/"<PREFIX>-g" and must fit IFNAMSIZ (15 characters); the UAPI
  # socket /var/run/wireguard/<ifname>.sock is global (not per namespace), so names must be unique.
  [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,11}$ ]] || die "PREFIX '$1' must be 1-12 characters of [a-z0-9-]"
}

ns() { echo "$1-$2"; }                       # ns PREFIX ROLE
state() { echo "$STATE_ROOT/$1"; }
wg_if() {                                    # wg_if PREFIX ROLE
  case "$2" in client) echo "$1-c" ;; gateway) echo "$1-g" ;; *) die "no tunnel on role '$2'" ;; esac
}
in_ns() { local n; n=$(ns "$1" "$2"); shift 2; ip netns exec "$n" "$@"; }

# addr PREFIX ROLE FAMILY: underlay address of a role.
underlay_addr() {
  local st; st=$(state "$1")
  case "$2:$3" in
    client:4) cat "$st/client-addr4" 2>/dev/null || echo 10.77.1.2 ;;
    client:6) cat "$st/client-addr6" 2>/dev/null || echo fd77:1::2 ;;
    gateway:4) echo 10.77.2.2 ;;
    gateway:6) echo fd77:2::2 ;;
    resource:4) echo 10.77.3.2 ;;
    resource:6) echo fd77:3::2 ;;
    *) die "no underlay address for '$2' family '$3'" ;;
  esac
}

new_ns() {                                   # new_ns NAME: namespace with lo up and IPv6 DAD off
  ip netns add "$1"
  # promote_secondaries: `roam` removes the client's first address after adding its new one, which
  # would otherwise take the new (secondary) address with it.
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.default.promote_secondaries=1
  ip -n "$1" link set lo up
}

veth() {                                     # veth NS_A IF_A NS_B IF_B
  ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

addr() {                                     # addr NS IF ADDR4 ADDR6
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$1" -6 addr add "$4" dev "$2" nodad
}

cmd_up() {
  check_prefix "$@"
  local p=$1 st c r g s
  st=$(state "$p"); c=$(ns "$p" client); r=$(ns "$p" router); g=$(ns "$p" gateway); s=$(ns "$p" resource)
  ip netns list | grep -q "^$c\b" && die "lab '$p' already exists"
  mkdir -p "$st/pids"
  for role in "${ROLES[@]}"; do new_ns "$(ns "$p" "$role")"; done

  veth "$c" veth-r "$r" veth-c
  veth "$r" veth-g "$g" veth-r
  veth "$g" veth-s "$s" veth-g
  # UDP GSO: the tunnel may send one GSO super-packet per batch, and a veth forwards it unsegmented,
  # so the router's nftables would count (and CE-mark) a whole batch as one datagram. gso_max_segs 1
  # makes the kernel segment in software when the packet leaves the client or gateway, so the router
  # sees one datagram per packet, as behind a real NIC that segments in hardware.
  ip -n "$c" link set veth-r gso_max_segs 1
  ip -n "$g" link set veth-r gso_max_segs 1
  addr "$c" veth-r 10.77.1.2/24 fd77:1::2/64
  addr "$r" veth-c 10.77.1.1/24 fd77:1::1/64
  addr "$r" veth-g 10.77.2.1/24 fd77:2::1/64
  addr "$g" veth-r 10.77.2.2/24 fd77:2::2/64
  addr "$g" veth-s 10.77.3.1/24 fd77:3::1/64
  addr "$s" veth-g 10.77.3.2/24 fd77:3::2/64

  # The router forwards the underlay; the gateway forwards inner traffic to the resource.
  for n in "$r" "$g"; do
    ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  done
  # Underlay: client and gateway reach each other only through the router.
  ip -n "$c" route add 10.77.2.0/24 via 10.77.1.1
  ip -n "$c" -6 route add fd77:2::/64 via fd77:1::1
  ip -n "$g" route add 10.77.1.0/24 via 10.77.2.1
  ip -n "$g" -6 route add fd77:1::/64 via fd77:2::1
  # Inner return path: the resource answers the tunnel addresses through the gateway.
  ip -n "$s" route add 10.77.100.0/24 via 10.77.3.1
  ip -n "$s" -6 route add fd77:100::/64 via fd77:3::1
  # ECN-capable TCP on the inner hosts (RFC 3168), so inner TCP segments are ECT(0) and CE is echoed.
  for n in "$c" "$s"; do ip netns exec "$n" sysctl -qw net.ipv4.tcp_ecn=1; done

  umask 077
  for role in client gateway; do
    wg genkey >"$st/$role.key"
    wg pubkey <"$st/$role.key" >"$st/$role.pub"
  done
  wg genpsk >"$st/psk"
  chmod 600 "$st"/*.key "$st/psk"

  install_router_counters "$p"
  install_tun_counters "$p" client
  install_tun_counters "$p" gateway
}

# Router: outer ECN of tunnel datagrams, counted before the congestion chain ("sent", what the
# encapsulator put on the wire) and after it ("fwd", what the decapsulator receives), per direction,
# plus handshake initiations per direction (message type 1, RFC: WireGuard whitepaper 5.4.2) to tell
# which side initiated.
install_router_counters() {
  local p=$1 r ports="{ $GATEWAY_PORT, $CLIENT_PORT }" rules="" counters=""
  r=$(ns "$p" router)
  for stage in sent fwd; do
    local chain="count_$stage" prio=-50
    [[ $stage == fwd ]] && prio=50
    rules+="chain $chain { type filter hook forward priority $prio; policy accept;"$'\n'
    for dir in c2g g2c; do
      local iif=veth-c; [[ $dir == g2c ]] && iif=veth-g
      for e in not-ect ect0 ect1 ce; do
        local name="${stage}_${dir}_${e//-/}"
        counters+="counter $name { }"$'\n'
        rules+="iifname \"$iif\" udp dport $ports ip ecn $e counter name $name"$'\n'
        rules+="iifname \"$iif\" udp dport $ports ip6 ecn $e counter name $name"$'\n'
      done
      if [[ $stage == sent ]]; then
        counters+="counter hsinit_$dir { }"$'\n'
        rules+="iifname \"$iif\" udp dport $ports @th,64,32 0x01000000 counter name hsinit_$dir"$'\n'
      fi
    done
    rules+="}"$'\n'
  done
  ip netns exec "$r" nft -f - <<EOF
table inet fzlab {
$counters
$rules
}
EOF
}

# Far-TUN side: inner ECN of packets the tunnel implementation writes to its TUN (prerouting sees
# them as they arrive from the interface), by protocol, in the client's or gateway's namespace.
install_tun_counters() {
  local p=$1 role=$2 n ifn rules="" counters=""
  n=$(ns "$p" "$role"); ifn=$(wg_if "$p" "$role")
  rules+="chain tun_in { type filter hook prerouting priority -300; policy accept;"$'\n'
  for proto in tcp udp icmp; do
    local match="meta l4proto $proto"
    [[ $proto == icmp ]] && match="meta l4proto { icmp, ipv6-icmp }"
    for e in not-ect ect0 ect1 ce; do
      local name="tun_${proto}_${e//-/}"
      counters+="counter $name { }"$'\n'
      rules+="iifname \"$ifn\" $match ip ecn $e counter name $name"$'\n'
      rules+="iifname \"$ifn\" $match ip6 ecn $e counter name $name"$'\n'
    done
  done
  rules+="}"$'\n'
  ip netns exec "$n" nft -f - <<EOF
table inet fzlab {
$counters
$rules
}
EOF
}

cmd_counters() {
  check_prefix "$@"
  local p=$1
  for role in router client gateway; do
    ip netns exec "$(ns "$p" "$role")" nft -j list counters table inet fzlab 2>/dev/null |
      jq -r --arg role "$role" '.nftables[] | select(.counter) | .counter | "\($role).\(.name) \(.packets)"'
  done
}

# Congestion: one table per mode, replaced atomically. Only tunnel datagrams (the lab's two listen
# ports) are touched. nft patches the IPv4 header checksum when it rewrites the ECN bits.
set_congestion() {
  local p=$1 body=$2 r
  r=$(ns "$p" router)
  ip netns exec "$r" nft -f - <<EOF
table inet fzcongestion
delete table inet fzcongestion
table inet fzcongestion {
  chain forward_chain {
    type filter hook forward priority 0; policy accept;
$body
  }
}
EOF
}

cmd_mark() {
  check_prefix "$@"
  local p=$1 pct=${2:-}
  [[ "$pct" =~ ^[0-9]+$ && $pct -le 100 ]] || die "mark: PERCENT must be 0..100"
  local ports="{ $GATEWAY_PORT, $CLIENT_PORT }" body=""
  local sample="numgen random mod 100 < $pct "
  ((pct == 100)) && sample=""
  if ((pct > 0)); then
    # RFC 3168 section 5: a congested router sets CE only on ECN-capable packets (ECT(0) or ECT(1)).
    body+="udp dport $ports ip ecn { ect0, ect1 } ${sample}ip ecn set ce counter"$'\n'
    body+="udp dport $ports ip6 ecn { ect0, ect1 } ${sample}ip6 ecn set ce counter"$'\n'
  fi
  set_congestion "$p" "$body"
}

cmd_force() {
  check_prefix "$@"
  local p=$1 mode=${2:-} ports="{ $GATEWAY_PORT, $CLIENT_PORT }" body=""
  case "$mode" in
    ce | ect1)
      # Every tunnel datagram, Not-ECT included: exercises the RFC 6040 section 4.2 table rows that
      # a well-behaved router never produces (Not-ECT inner + CE outer must be dropped).
      body+="udp dport $ports ip ecn set $mode counter"$'\n'
      body+="udp dport $ports ip6 ecn set $mode counter"$'\n'
      ;;
    off) ;;
    *) die "force: mode must be ce, ect1 or off" ;;
  esac
  set_congestion "$p" "$body"
}

resolve_impl() {
  case "$1" in
    wireguard-go) command -v wireguard-go || die "wireguard-go is not installed" ;;
    firezone-tunnel)
      local c
      for c in "${FIREZONE_TUNNEL:-}" "$REPO_DIR/src/Host/bin/Release/net10.0/firezone-tunnel" \
        "$REPO_DIR/src/Host/bin/Debug/net10.0/firezone-tunnel"; do
        [[ -n "$c" && -x "$c" ]] && { echo "$c"; return; }
      done
      die "firezone-tunnel binary not found (build src/Host with -c Release, or set FIREZONE_TUNNEL)"
      ;;
    */*) [[ -x "$1" ]] && echo "$1" || die "'$1' is not executable" ;;
    *) die "unknown implementation '$1' (wireguard-go, firezone-tunnel or a path)" ;;
  esac
}

# A process counts as alive until it exits; a zombie (state Z, exited but not yet reaped by whichever
# ancestor inherited it) is already gone for our purposes.
pid_alive() {
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# stop_pid PIDFILE [--kill]: SIGTERM then SIGKILL after 5 s (or SIGKILL at once), waits for exit.
stop_pid() {
  local f=$1 how=${2:-} pid i
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if pid_alive "$pid"; then
    if [[ "$how" == --kill ]]; then kill -KILL "$pid" 2>/dev/null || true
    else
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$f"
}

cmd_start() {
  check_prefix "$@"
  local p=$1 role=${2:-} impl=${3:-${IMPL:-wireguard-go}} st n ifn bin pidf pid i other
  st=$(state "$p"); n=$(ns "$p" "$role"); ifn=$(wg_if "$p" "$role")
  [[ -d "$st" ]] || die "lab '$p' is not up"
  bin=$(resolve_impl "$impl")
  pidf="$st/pids/wg-$role"
  [[ -f "$pidf" ]] && pid_alive "$(cat "$pidf")" && die "$role already runs PID $(cat "$pidf")"
  # A socket left by a killed process would make the UAPI client talk to nobody.
  rm -f "/var/run/wireguard/$ifn.sock"
  # `ip netns exec` execs the command, so $! is the implementation's own PID.
  local extra=()
  # firezone-tunnel's JSON log goes to the lab's state directory rather than /var/log, so `down`
  # leaves nothing behind.
  [[ $(basename "$bin") == firezone-tunnel ]] && extra=(--log-file "$st/fz-$role.jsonl")
  ip netns exec "$n" "$bin" -f "$ifn" "${extra[@]}" </dev/null >>"$st/wg-$role.log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidf"
  for ((i = 0; i < 200; i++)); do
    pid_alive "$pid" || die "$impl exited at start; log $st/wg-$role.log: $(tail -5 "$st/wg-$role.log")"
    [[ -S "/var/run/wireguard/$ifn.sock" ]] && ip -n "$n" link show "$ifn" >/dev/null 2>&1 && break
    sleep 0.05
  done
  [[ -S "/var/run/wireguard/$ifn.sock" ]] || die "$impl did not open /var/run/wireguard/$ifn.sock within 10 s"
  echo "$bin" >"$st/impl-$role"
  configure "$p" "$role"
}

configure() {
  local p=$1 role=$2 st n ifn other fam=${UNDERLAY:-4} ep="" allowed addr4 addr6 port psk=()
  st=$(state "$p"); n=$(ns "$p" "$role"); ifn=$(wg_if "$p" "$role")
  if [[ $role == client ]]; then
    other=gateway; port=$CLIENT_PORT; addr4=10.77.100.2; addr6=fd77:100::2
    allowed="10.77.100.1/32,fd77:100::1/128,10.77.3.0/24,fd77:3::/64"
    [[ ${ENDPOINTS:-both} != gateway ]] && ep=$(underlay_addr "$p" gateway "$fam")
    [[ -n "$ep" ]] && ep=$([[ $fam == 6 ]] && echo "[$ep]:$GATEWAY_PORT" || echo "$ep:$GATEWAY_PORT")
  else
    other=client; port=$GATEWAY_PORT; addr4=10.77.100.1; addr6=fd77:100::1
    allowed="10.77.100.2/32,fd77:100::2/128"
    [[ ${ENDPOINTS:-both} != client ]] && ep=$(underlay_addr "$p" client "$fam")
    [[ -n "$ep" ]] && ep=$([[ $fam == 6 ]] && echo "[$ep]:$CLIENT_PORT" || echo "$ep:$CLIENT_PORT")
  fi
  [[ ${PSK:-0} == 1 ]] && psk=(preshared-key "$st/psk")
  local epargs=()
  [[ -n "$ep" ]] && epargs=(endpoint "$ep")
  ip netns exec "$n" wg set "$ifn" private-key "$st/$role.key" listen-port "$port" \
    peer "$(cat "$st/$other.pub")" allowed-ips "$allowed" "${psk[@]}" "${epargs[@]}"
  ip -n "$n" addr add "$addr4/24" dev "$ifn"
  ip -n "$n" -6 addr add "$addr6/64" dev "$ifn" nodad
  ip -n "$n" link set "$ifn" mtu 1420 up
  if [[ $role == client ]]; then
    ip -n "$n" route add 10.77.3.0/24 dev "$ifn"
    ip -n "$n" -6 route add fd77:3::/64 dev "$ifn"
  fi
  printf '%s\n' "$allowed" >"$st/allowed-$role"
  printf '%s\n' "$ep" >"$st/endpoint-$role"
}

cmd_stop() {
  check_prefix "$@"
  local p=$1 role=${2:-} st ifn
  st=$(state "$p"); ifn=$(wg_if "$p" "$role")
  stop_pid "$st/pids/wg-$role" "${3:-}"
  rm -f "/var/run/wireguard/$ifn.sock"
}

cmd_pid() {
  check_prefix "$@"
  local f; f="$(state "$1")/pids/wg-${2:-}"
  [[ -f "$f" ]] && pid_alive "$(cat "$f")" && cat "$f" && return 0
  return 1
}

cmd_peer_readd() {
  check_prefix "$@"
  local p=$1 role=${2:-} st n ifn other ep psk=()
  st=$(state "$p"); n=$(ns "$p" "$role"); ifn=$(wg_if "$p" "$role")
  other=gateway; [[ $role == gateway ]] && other=client
  # The peer's current endpoint (it may have roamed) is kept, so only its sessions are lost.
  ep=$(ip netns exec "$n" wg show "$ifn" endpoints | awk '{print $2}')
  [[ "$ep" == "(none)" ]] && ep=""
  local epargs=(); [[ -n "$ep" ]] && epargs=(endpoint "$ep")
  [[ -n "$(ip netns exec "$n" wg show "$ifn" preshared-keys | awk '$2 != "(none)"')" ]] && psk=(preshared-key "$st/psk")
  ip netns exec "$n" wg set "$ifn" peer "$(cat "$st/$other.pub")" remove
  ip netns exec "$n" wg set "$ifn" peer "$(cat "$st/$other.pub")" allowed-ips "$(cat "$st/allowed-$role")" \
    "${psk[@]}" "${epargs[@]}"
}

cmd_roam() {
  check_prefix "$@"
  local p=$1 st c old4 old6 new4 new6
  st=$(state "$p"); c=$(ns "$p" client)
  old4=$(underlay_addr "$p" client 4); old6=$(underlay_addr "$p" client 6)
  if [[ $old4 == 10.77.1.2 ]]; then new4=10.77.1.3; new6=fd77:1::3; else new4=10.77.1.2; new6=fd77:1::2; fi
  # Add the new address before removing the old one so the routes via the router survive; the
  # kernel then picks the new source for the tunnel socket's datagrams.
  ip -n "$c" addr add "$new4/24" dev veth-r
  ip -n "$c" -6 addr add "$new6/64" dev veth-r nodad
  ip -n "$c" addr del "$old4/24" dev veth-r
  ip -n "$c" -6 addr del "$old6/64" dev veth-r
  ip -n "$c" route replace 10.77.2.0/24 via 10.77.1.1
  ip -n "$c" -6 route replace fd77:2::/64 via fd77:1::1
  echo "$new4" >"$st/client-addr4"; echo "$new6" >"$st/client-addr6"
  echo "$new4 $new6"
}

cmd_bg() {
  check_prefix "$@"
  local p=$1 role=$2 name=$3 st pid
  shift 3
  st=$(state "$p")
  [[ "$name" =~ ^[a-zA-Z0-9_.-]+$ ]] || die "bg: bad name '$name'"
  ip netns exec "$(ns "$p" "$role")" "$@" </dev/null >"$st/$name.out" 2>"$st/$name.err" &
  pid=$!
  echo "$pid" >"$st/pids/$name"
  echo "$pid"
}

cmd_kill() {
  check_prefix "$@"
  stop_pid "$(state "$1")/pids/${2:-}" "${3:-}"
}

cmd_down() {
  check_prefix "$@"
  local p=$1 st f
  st=$(state "$p")
  if [[ -d "$st/pids" ]]; then
    for f in "$st"/pids/*; do [[ -e "$f" ]] && stop_pid "$f"; done
  fi
  for role in "${ROLES[@]}"; do
    # Deleting a namespace removes its veths; TUN devices went with their processes.
    ip netns del "$(ns "$p" "$role")" 2>/dev/null || true
  done
  rm -f "/var/run/wireguard/$p-c.sock" "/var/run/wireguard/$p-g.sock"
  rm -rf "$st"
}

main() {
  local sub=${1:-}
  shift || true
  case "$sub" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    pid) cmd_pid "$@" ;;
    ifname) check_prefix "$@"; wg_if "$1" "${2:-}" ;;
    peer-readd) cmd_peer_readd "$@" ;;
    roam) cmd_roam "$@" ;;
    mark) cmd_mark "$@" ;;
    force) cmd_force "$@" ;;
    counters) cmd_counters "$@" ;;
    bg) cmd_bg "$@" ;;
    kill) cmd_kill "$@" ;;
    exec) check_prefix "$@"; local p=$1 role=$2; shift 2; in_ns "$p" "$role" "$@" ;;
    addr) check_prefix "$@"; underlay_addr "$1" "${2:-}" "${3:-4}" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [[ -z "$sub" || "$sub" == help ]] ;;
  esac
}

main "$@"
