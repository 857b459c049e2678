#!/usr/bin/env bash
# packaging/firezone-tunnel@.service under a real systemd: boots a minimal Debian 12 in
# systemd-nspawn (its own network namespace, --private-network), installs the published daemon and
# the unit as the README says, and checks every claim of the unit and of README "As a service",
# printing PASS/FAIL lines and a summary. Exit code 0 when every check passed.
#
#   bash scripts/lab/systemd-unit.sh [--rebuild] [--keep]      (root; about 40 s with the cached rootfs, 1.5 min with --rebuild)
#
# --rebuild  debootstrap the Debian rootfs again (cached in $FZ_SYSTEMD_ROOTFS,
#            default /var/tmp/firezone-systemd-rootfs; needs http://deb.debian.org/debian)
# --keep     keep the run directory (container tree, configs, journal export) after the run
#
# Each run boots a fresh copy of the cached rootfs; the copy, the container and everything in it
# (the peer namespace and its veth live inside the container's own network namespace) are gone on
# exit, also on failure or Ctrl-C. No address outside the container's network namespace is used.
#
# Why these nspawn options (systemd 252, host PID 1 not systemd, cgroup v1 "hybrid" host):
#   --register=no --keep-unit    no systemd-machined/D-Bus on the host (else "Failed to open system bus")
#   SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 and --system-call-filter=bpf
#                                 systemd enforces DeviceAllow= with a cgroup v2 BPF device program;
#                                 nspawn's default seccomp filter refuses bpf(2) and a hybrid
#                                 container has no devices controller, so without both DeviceAllow=
#                                 would be silently ignored and the DeviceAllow check meaningless.
#   --bind=/dev/net/tun           the TUN device; --bind-ro of the host's .NET at /usr/share/dotnet,
#                                 where the apphost of a service (no DOTNET_ROOT) looks for it.
set -uo pipefail

REBUILD=0; KEEP=0
for arg in "$@"; do
  case $arg in
    --rebuild) REBUILD=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "run as root" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${FZ_SYSTEMD_ROOTFS:-/var/tmp/firezone-systemd-rootfs}
MIRROR=http://deb.debian.org/debian
# What the daemon and the checks need: ip and nft (the daemon runs them), sysctl (procps), wg and
# wg-quick (wireguard-tools; wg show, the ExecReload), wireguard-go (the peer), ICU and OpenSSL (.NET).
PACKAGES=systemd,systemd-sysv,dbus,iproute2,nftables,wireguard-tools,wireguard-go,procps,iputils-ping,libicu72,libssl3,ca-certificates,zlib1g,libstdc++6,util-linux,resolvconf
START=$(date +%s)
SUFFIX=$(printf '%04x' $((RANDOM % 65536)))
MACHINE=fzsd-$SUFFIX
RUN=$(mktemp -d /var/tmp/fzsd-run.XXXXXX)
ROOT=$RUN/root
NSPAWN_PID=""
LEADER=""
PASSES=0
FAILS=()

log() { printf '%s %s\n' "$(date +%T)" "$*"; }
pass() { PASSES=$((PASSES + 1)); printf 'PASS %s\n' "$1"; }
fail() {
  FAILS+=("$1"); printf 'FAIL %s\n' "$1"
  [[ -n ${2:-} ]] && printf '%s\n' "$2" | head -40 | sed 's/^/     | /'
  return 0
}
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with its output.
check() {
  local name=$1 out; shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    log "stopping container $MACHINE (nspawn PID $NSPAWN_PID)"
    # SIGTERM to nspawn asks the container's systemd to power off (SIGRTMIN+4 to its PID 1).
    kill -TERM "$NSPAWN_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      log "container did not power off in 20 s: SIGKILL to its PID 1 ($LEADER) and nspawn"
      [[ -n $LEADER ]] && kill -KILL "$LEADER" 2>/dev/null
      sleep 1; kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  # nspawn leaves its propagation directory when the host's /run is not a tmpfs it may clear.
  rm -rf "/run/systemd/nspawn/propagate/$MACHINE" "/run/systemd/nspawn/unix-export/$MACHINE" 2>/dev/null
  if [[ $KEEP -eq 1 ]]; then log "kept $RUN"; else rm -rf "$RUN"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# 1. Tools, rootfs, daemon
for tool in debootstrap systemd-nspawn; do
  command -v "$tool" >/dev/null || { log "installing debootstrap systemd-container"; apt-get install -y -qq debootstrap systemd-container >/dev/null || exit 1; }
done
command -v wg >/dev/null || { apt-get install -y -qq wireguard-tools >/dev/null || exit 1; }
if [[ $REBUILD -eq 1 || ! -f $CACHE/.fz-packages || $(cat "$CACHE/.fz-packages" 2>/dev/null) != "$PACKAGES" ]]; then
  log "debootstrap bookworm into $CACHE ($MIRROR)"
  rm -rf "$CACHE.new"
  if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$CACHE.new" "$MIRROR" > "$RUN/debootstrap.log" 2>&1; then
    tail -20 "$RUN/debootstrap.log"; exit 1
  fi
  echo "$PACKAGES" > "$CACHE.new/.fz-packages"
  rm -rf "$CACHE"; mv "$CACHE.new" "$CACHE"
fi

DOTNET_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
[[ -x $DOTNET_DIR/dotnet && -d $DOTNET_DIR/shared/Microsoft.NETCore.App ]] || { echo "no .NET runtime found ($DOTNET_DIR)" >&2; exit 1; }
log "dotnet publish src/Host -c Release ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null))"
# Its own bin and obj (--artifacts-path): a publish's restore (ReadyToRun, a RID) would otherwise
# rewrite src/Host/obj/project.assets.json under a build or test running in the same tree.
if ! dotnet publish "$REPO/src/Host" -c Release -o "$RUN/publish" --artifacts-path "$RUN/artifacts" > "$RUN/publish.log" 2>&1; then
  tail -20 "$RUN/publish.log"; exit 1
fi

log "copying the rootfs to $ROOT"
cp -a "$CACHE" "$ROOT"
echo "$MACHINE" > "$ROOT/etc/hostname"
# The install the README gives: the published directory, a symlink in /usr/local/bin, the unit.
cp -r "$RUN/publish" "$ROOT/opt/firezone-tunnel"
ln -sf /opt/firezone-tunnel/firezone-tunnel "$ROOT/usr/local/bin/firezone-tunnel"
install -m 0644 "$REPO/packaging/firezone-tunnel@.service" "$ROOT/etc/systemd/system/"
# Debian's resolvconf is in the rootfs (the package wg-quick's DNS needs on Debian): it keeps its
# records in /run/resolvconf, which the unit lets the service write, and /etc/resolv.conf is its
# /run/resolvconf/resolv.conf. Its interface-order starts with "tun*", so wg-quick's record for wg0
# is "tun.wg0".
mkdir -p "$ROOT/usr/share/dotnet"

# Keys and configurations. Outer: veth 192.168.77.1 (container) <-> 192.168.77.2 (namespace fzpeer,
# wireguard-go "wgp", one peer per instance). Inner: wg0 10.77.0.1 + fd77::1, wg1 10.78.0.1 (a
# gateway, MTU 1380), wgf 10.80.0.1 + fd80::1 (full tunnel); the peer also holds 10.79.0.1 (routed
# to wg0 by its AllowedIPs) and 10.99.0.1 / fd99::1 (reached only through the full tunnel).
umask 077
for k in wg0 wg1 wgf wgp; do wg genkey > "$RUN/$k.key"; wg pubkey < "$RUN/$k.key" > "$RUN/$k.pub"; done
key() { cat "$RUN/$1.key"; }
pub() { cat "$RUN/$1.pub"; }
mkdir -p "$ROOT/etc/wireguard" "$ROOT/root/lab"
cat > "$ROOT/etc/wireguard/wg0.conf" <<EOF
[Interface]
PrivateKey = $(key wg0)
Address = 10.77.0.1/24, fd77::1/64
ListenPort = 51000
DNS = 10.77.0.53
#! EcnMode = normal

[Peer]
PublicKey = $(pub wgp)
Endpoint = 192.168.77.2:51820
AllowedIPs = 10.77.0.2/32, 10.79.0.0/24, fd77::2/128
EOF
cat > "$ROOT/etc/wireguard/wg1.conf" <<EOF
[Interface]
PrivateKey = $(key wg1)
Address = 10.78.0.1/24
ListenPort = 51001
MTU = 1380
#! Role = gateway
PostUp = nft add table inet fzhook_%i; ip route add 10.91.0.0/24 dev %i
PreDown = ip route del 10.91.0.0/24 dev %i
PostDown = nft delete table inet fzhook_%i
SaveConfig = true

[Peer]
PublicKey = $(pub wgp)
Endpoint = 192.168.77.2:51820
AllowedIPs = 10.78.0.2/32
EOF
cat > "$ROOT/etc/wireguard/wgf.conf" <<EOF
[Interface]
PrivateKey = $(key wgf)
Address = 10.80.0.1/24, fd80::1/64
ListenPort = 51002

[Peer]
PublicKey = $(pub wgp)
Endpoint = 192.168.77.2:51820
AllowedIPs = 0.0.0.0/0, ::/0
EOF
# A mistake on line 8: an IPv4 part above 255.
cat > "$ROOT/etc/wireguard/bad0.conf" <<EOF
[Interface]
PrivateKey = $(key wg0)
Address = 10.76.0.1/24
ListenPort = 51003

[Peer]
PublicKey = $(pub wgp)
AllowedIPs = 10.76.0.300/32
EOF
cat > "$ROOT/root/lab/wgp.conf" <<EOF
[Interface]
PrivateKey = $(key wgp)
ListenPort = 51820

[Peer]
PublicKey = $(pub wg0)
AllowedIPs = 10.77.0.1/32, fd77::1/128

[Peer]
PublicKey = $(pub wg1)
AllowedIPs = 10.78.0.1/32

[Peer]
PublicKey = $(pub wgf)
AllowedIPs = 10.80.0.1/32, fd80::1/128
EOF
umask 022

# ---------------------------------------------------------------------------------------------
# 2. Boot
log "booting $MACHINE (systemd-nspawn -b --private-network)"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -b -D "$ROOT" -M "$MACHINE" \
  --private-network --register=no --keep-unit --system-call-filter=bpf \
  --bind=/dev/net/tun --bind-ro="$DOTNET_DIR:/usr/share/dotnet" --console=passive \
  > "$RUN/console.log" 2>&1 < /dev/null &
NSPAWN_PID=$!
for _ in $(seq 1 100); do
  LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1)
  [[ -n $LEADER ]] && break
  kill -0 "$NSPAWN_PID" 2>/dev/null || break
  sleep 0.2
done
if [[ -z $LEADER ]]; then echo "the container did not start:"; cat "$RUN/console.log"; exit 1; fi
# in_c COMMAND...: run in the container (all its namespaces), with a clean environment.
in_c() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_COLORS=0 SYSTEMD_PAGER= "$@"; }
sh_c() { in_c sh -c "$1"; }
state=$(timeout 60 nsenter -t "$LEADER" -a -- systemctl is-system-running --wait 2>&1)
log "container $MACHINE: PID 1 is host PID $LEADER, system $state"
[[ $state == running || $state == degraded ]] || { echo "boot did not finish: $state"; cat "$RUN/console.log"; exit 1; }
[[ $state == degraded ]] && in_c systemctl --failed --no-pager

# wait_for SECONDS COMMAND...: until the command succeeds (every 0.2 s); 1 on timeout.
wait_for() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) > deadline )) && return 1
    sleep 0.2
  done
}
unit() { echo "firezone-tunnel@$1.service"; }
prop() { in_c systemctl show -P "$2" "$(unit "$1")"; }
mainpid() { prop "$1" MainPID; }
is_active() { [[ $(prop "$1" ActiveState) == "$2" ]]; }
ping_c() { in_c ping -c 3 -i 0.2 -W 2 "$@"; }

# ---------------------------------------------------------------------------------------------
# 3. The peer: wireguard-go in a namespace of the container's own, joined by a veth.
sh_c '
set -e
ip netns add fzpeer
ip link add fzv0 type veth peer name fzv1 netns fzpeer
ip addr add 192.168.77.1/24 dev fzv0; ip link set fzv0 up
ip -n fzpeer addr add 192.168.77.2/24 dev fzv1; ip -n fzpeer link set fzv1 up; ip -n fzpeer link set lo up
ip -n fzpeer addr add 10.79.0.1/32 dev lo; ip -n fzpeer addr add 10.99.0.1/32 dev lo
ip -n fzpeer addr add fd99::1/128 dev lo nodad
systemd-run --quiet --unit=fzpeer-wgp -E WG_PROCESS_FOREGROUND=1 ip netns exec fzpeer wireguard-go wgp
for i in $(seq 1 50); do [ -S /run/wireguard/wgp.sock ] && break; sleep 0.1; done
ip netns exec fzpeer wg setconf wgp /root/lab/wgp.conf
ip -n fzpeer addr add 10.77.0.2/24 dev wgp; ip -n fzpeer addr add 10.78.0.2/24 dev wgp
ip -n fzpeer addr add 10.80.0.2/24 dev wgp
ip -n fzpeer addr add fd77::2/64 dev wgp nodad; ip -n fzpeer addr add fd80::2/64 dev wgp nodad
ip -n fzpeer link set wgp up
' || { echo "peer set-up failed"; exit 1; }
log "peer wgp up in namespace fzpeer (inside the container)"

# ---------------------------------------------------------------------------------------------
# 4. The checks
echo "== unit file"
check "systemd-analyze verify (systemd $(in_c systemctl --version | head -1 | cut -d' ' -f2)) prints nothing for the installed unit" \
  sh_c 'out=$(systemd-analyze verify --man=no firezone-tunnel@wg0.service 2>&1); [ -z "$out" ] || { echo "$out"; exit 1; }'
in_c systemctl daemon-reload
check "systemctl enable firezone-tunnel@wg0: enabled, wanted by multi-user.target (then disabled again)" \
  sh_c "systemctl enable --quiet $(unit wg0) && [ \$(systemctl is-enabled $(unit wg0)) = enabled ] && test -L /etc/systemd/system/multi-user.target.wants/$(unit wg0) && systemctl disable --quiet $(unit wg0) && ! test -e /etc/systemd/system/multi-user.target.wants/$(unit wg0)"
SEC_BEFORE_START=$(date +%s)

# DeviceAllow is enforced in this container (else its checks would prove nothing): a unit without
# /dev/net/tun in DeviceAllow cannot open it.
check "DeviceAllow= is enforced here: DevicePolicy=closed without /dev/net/tun cannot open it" \
  sh_c '! systemd-run --quiet --wait --pipe -p DevicePolicy=closed -p "DeviceAllow=/dev/null rw" sh -c "exec 3<>/dev/net/tun" 2>/dev/null'

echo "== start wg0 (Type=notify)"
t0=$(date +%s%N)
out=$(in_c systemctl start "$(unit wg0)" 2>&1); rc=$?
t1=$(date +%s%N)
# Right when systemctl start returns: everything READY=1 promises must already be there.
snap_sock=$(sh_c 'test -S /run/wireguard/wg0.sock && echo yes')
snap_addr=$(in_c ip -o addr show dev wg0 2>&1)
snap_route=$(in_c ip route show dev wg0 2>&1)
snap_link=$(in_c ip -o link show wg0 2>&1)
snap_wg=$(in_c wg show wg0 2>&1)
[[ $rc -eq 0 ]] && pass "systemctl start firezone-tunnel@wg0 returns 0 after $(( (t1 - t0) / 1000000 )) ms" || fail "systemctl start wg0" "$out"
st="$(prop wg0 Type) $(prop wg0 NotifyAccess) $(prop wg0 ActiveState) $(prop wg0 SubState)"
check "Type, NotifyAccess, ActiveState, SubState = $st (notify main active running)" test "$st" = "notify main active running"
# systemd enters "active" only on READY=1 for Type=notify: the time from exec to active is the
# daemon's start-up (hundreds of ms for .NET), not zero.
exec_ts=$(prop wg0 ExecMainStartTimestampMonotonic); act_ts=$(prop wg0 ActiveEnterTimestampMonotonic)
check "active entered $(( (act_ts - exec_ts) / 1000 )) ms after exec (waited for READY=1, > 100 ms)" test $(( act_ts - exec_ts )) -gt 100000
check "at READY=1: UAPI socket /run/wireguard/wg0.sock exists" test "$snap_sock" = yes
check "at READY=1: wg show wg0 works (listening port 51000, the peer)" \
  sh_c "printf '%s' '$snap_wg' | grep -q 'listening port: 51000' && printf '%s' '$snap_wg' | grep -q '$(pub wgp)'"
check "at READY=1: addresses 10.77.0.1/24 and fd77::1/64" \
  sh_c "printf '%s' '$snap_addr' | grep -q 'inet 10.77.0.1/24' && printf '%s' '$snap_addr' | grep -q 'inet6 fd77::1/64'"
check "at READY=1: link up, MTU 1420 (default)" sh_c "printf '%s' '$snap_link' | grep -q 'mtu 1420' && printf '%s' '$snap_link' | grep -q ',UP'"
check "at READY=1: route 10.79.0.0/24 dev wg0 (AllowedIPs outside the Address subnet), subnet keeps the kernel's route" \
  sh_c "printf '%s\n' '$snap_route' | grep -q '^10.79.0.0/24' && printf '%s\n' '$snap_route' | grep -q '^10.77.0.0/24 proto kernel' && ! printf '%s\n' '$snap_route' | grep -q '^10.77.0.2 '"
check "ping 10.77.0.2 through the tunnel" ping_c 10.77.0.2
check "ping 10.79.0.1 through the tunnel (the AllowedIPs route)" ping_c 10.79.0.1
check "ping fd77::2 through the tunnel" ping_c fd77::2
check "wg show wg0: latest handshake and transfer" sh_c "wg show wg0 latest-handshakes | awk '{exit !(\$2 > 0)}' && wg show wg0 transfer | awk '{exit !(\$2 > 0 && \$3 > 0)}'"

echo "== sandbox of the running service"
pid0=$(mainpid wg0)
caps=$(sh_c "grep -E '^Cap(Eff|Bnd|Amb)' /proc/$pid0/status")
echo "     main PID $pid0: $(echo $caps)"
# The unit's AmbientCapabilities= as a mask (the bits of linux/capability.h).
declare -A CAPBIT=([CAP_NET_BIND_SERVICE]=10 [CAP_NET_BROADCAST]=11 [CAP_NET_ADMIN]=12 [CAP_NET_RAW]=13 [CAP_SYS_ADMIN]=21)
want=0
for c in $(sed -n 's/^AmbientCapabilities=//p' "$REPO/packaging/firezone-tunnel@.service"); do want=$(( want | (1 << ${CAPBIT[$c]:-63}) )); done
want=$(printf '%016x' "$want")
check "capabilities: effective = bounding = ambient = the unit's AmbientCapabilities ($want)" \
  sh_c "for f in CapEff CapBnd CapAmb; do [ \$(awk -v f=\$f: '\$1 == f {print \$2}' /proc/$pid0/status) = $want ] || exit 1; done"
check "ProtectSystem=strict: /usr and /etc read-only to the service" sh_c "nsenter -t $pid0 -m sh -c '! touch /etc/fz-rw-test 2>/dev/null && ! touch /usr/fz-rw-test 2>/dev/null'"
check "writable to the service: /run/wireguard, /run/firezone-tunnel, /var/log/firezone-tunnel, /proc/sys/net, /tmp" \
  sh_c "nsenter -t $pid0 -m sh -c 'for d in /run/wireguard /run/firezone-tunnel /var/log/firezone-tunnel /tmp; do touch \$d/.fz-rw && rm \$d/.fz-rw || exit 1; done; test -w /proc/sys/net/ipv4/conf/all/src_valid_mark'"
check "ProtectHome: /root is not visible to the service" sh_c "nsenter -t $pid0 -m sh -c '! ls /root/lab >/dev/null 2>&1'"
check ".NET diagnostics socket in the real /tmp (dotnet-counters)" sh_c "ls /tmp/dotnet-diagnostic-$pid0-*-socket"
check "NoNewPrivileges" sh_c "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid0/status"
check "log file /var/log/firezone-tunnel/wg0.log has the start-up line, mode 0600 (UMask=0077)" sh_c "grep -q 'running interface wg0' /var/log/firezone-tunnel/wg0.log && [ \$(stat -c %a /var/log/firezone-tunnel/wg0.log) = 600 ]"
check "ProtectKernelTunables: /proc/sys/kernel and /sys read-only to the service, /proc/sys/net writable" \
  sh_c "nsenter -t $pid0 -m sh -c '! test -w /proc/sys/kernel/hostname && ! test -w /sys/class/net/wg0/mtu && test -w /proc/sys/net/ipv4/ip_forward'"
check "journalctl -u: the daemon's lines as text (not the log file's JSON), at priority info" \
  sh_c "journalctl -b -o cat -p info -u $(unit wg0) | grep -q '^firezone-tunnel 0.1.0 running interface wg0\$' && ! journalctl -b -o cat -u $(unit wg0) | grep -q '^{'"
check "DNS given to Debian's resolvconf from inside the sandbox: record tun.wg0 (wg-quick's prefix from interface-order) with nameserver 10.77.0.53, in /etc/resolv.conf; nothing at err" \
  sh_c "grep -qx 'nameserver 10.77.0.53' /run/resolvconf/interface/tun.wg0 && grep -qx 'nameserver 10.77.0.53' /etc/resolv.conf && journalctl -b -o cat -u $(unit wg0) | grep -qF '(resolvconf record tun.wg0)' && ! journalctl -b -u $(unit wg0) -p err -o cat | grep -q ."
echo "     journal: $(sh_c "journalctl -b -o cat -u $(unit wg0) | grep -m1 'running interface'")"
echo "     log file: $(sh_c "grep -m1 'running interface' /var/log/firezone-tunnel/wg0.log")"

echo "== a second instance at once: wg1 (gateway, MTU 1380)"
fwd_before=$(in_c sysctl -n net.ipv4.ip_forward)
check "systemctl start firezone-tunnel@wg1" in_c systemctl start "$(unit wg1)"
check "both instances active, both sockets present" sh_c "systemctl is-active --quiet $(unit wg0) $(unit wg1) && test -S /run/wireguard/wg0.sock && test -S /run/wireguard/wg1.sock"
check "wg1: MTU 1380, address 10.78.0.1/24" sh_c "ip -o link show wg1 | grep -q 'mtu 1380' && ip -o addr show dev wg1 | grep -q 'inet 10.78.0.1/24'"
check "wg1 gateway: nftables table inet firezone-tunnel-wg1, ip_forward 1" sh_c "nft list table inet firezone-tunnel-wg1 >/dev/null && [ \$(sysctl -n net.ipv4.ip_forward) = 1 ]"
check "ping 10.78.0.2 through wg1" ping_c 10.78.0.2
check "wg1's PostUp ran inside the unit's sandbox (nft table inet fzhook_wg1, route 10.91.0.0/24 dev wg1) and is in the journal as [#] COMMAND" \
  sh_c "nft list table inet fzhook_wg1 >/dev/null && ip route show 10.91.0.0/24 | grep -q 'dev wg1' && journalctl -b -o cat -u $(unit wg1) | grep -qF '[#] nft add table inet fzhook_wg1; ip route add 10.91.0.0/24 dev wg1 (PostUp on line 7)'"
check "wg1 recorded what outlives it (nftables table, forwarding) in /run/firezone-tunnel/wg1.json, mode 0600" \
  sh_c "test -s /run/firezone-tunnel/wg1.json && [ \$(stat -c %a /run/firezone-tunnel/wg1.json) = 600 ]"
pidg=$(mainpid wg1)
in_c kill -9 "$pidg"
if wait_for 15 sh_c "p=\$(systemctl show -P MainPID $(unit wg1)); [ \$p != 0 ] && [ \$p != $pidg ] && systemctl is-active --quiet $(unit wg1)"; then
  pass "wg1 (gateway) restarted by systemd after SIGKILL (PID $pidg -> $(mainpid wg1))"
else
  fail "wg1 not restarted after SIGKILL" "$(in_c systemctl status --no-pager -n 20 "$(unit wg1)")"
fi
check "after the restart: the killed gateway's leftovers removed (logged), one nftables table, ip_forward 1, ping" \
  sh_c "journalctl -b -o cat -u $(unit wg1) | grep -q 'wg1.json is left by an instance of wg1 that did not stop cleanly' && [ \$(nft list tables | grep -c 'inet firezone-tunnel-wg1\$') = 1 ] && [ \$(sysctl -n net.ipv4.ip_forward) = 1 ] && ping -c 2 -i 0.2 -W 2 10.78.0.2 >/dev/null"
savedpeer=$(wg genkey | wg pubkey)
check "wg set wg1: a peer added at run time (for SaveConfig)" sh_c "wg set wg1 peer $savedpeer allowed-ips 10.78.0.9/32"
check "firezone-tunnel save wg1: the running daemon writes its file from inside the sandbox, with the added peer" \
  sh_c "firezone-tunnel save wg1 | grep -qx 'Saved wg1'\\''s configuration to /etc/wireguard/wg1.conf' && grep -qx 'PublicKey = $savedpeer' /etc/wireguard/wg1.conf && journalctl -b -o cat -u $(unit wg1) | grep -qF '(firezone-tunnel save)'"
stoppeer=$(wg genkey | wg pubkey)
check "wg set wg1: one more peer, which only the stop's SaveConfig can save" sh_c "wg set wg1 peer $stoppeer allowed-ips 10.78.0.10/32"
t0=$(date +%s%N); out=$(in_c systemctl stop "$(unit wg1)" 2>&1); rc=$?; t1=$(date +%s%N)
check "systemctl stop firezone-tunnel@wg1 ($(( (t1 - t0) / 1000000 )) ms) exits 0, Result=success, main process exit status 0" \
  test "$rc $(prop wg1 Result) $(prop wg1 ExecMainStatus) $(prop wg1 ActiveState)" = "0 success 0 inactive"
check "after stopping wg1: its socket, link, nftables table and wg1.json gone, ip_forward back to $fwd_before (the value before the killed instance)" \
  sh_c "! test -e /run/wireguard/wg1.sock && ! test -e /run/firezone-tunnel/wg1.json && ! ip link show wg1 >/dev/null 2>&1 && ! nft list table inet firezone-tunnel-wg1 >/dev/null 2>&1 && [ \$(sysctl -n net.ipv4.ip_forward) = $fwd_before ]"
check "after stopping wg1: /run/wireguard kept, wg0's socket kept, wg0 still answers and pings" \
  sh_c "test -d /run/wireguard && test -S /run/wireguard/wg0.sock && wg show wg0 >/dev/null && ping -c 2 -i 0.2 -W 2 10.77.0.2 >/dev/null"
check "wg1's PreDown and PostDown ran: route 10.91.0.0/24 and table inet fzhook_wg1 gone, both in the journal" \
  sh_c "! ip route show 10.91.0.0/24 | grep -q . && ! nft list table inet fzhook_wg1 >/dev/null 2>&1 && journalctl -b -o cat -u $(unit wg1) | grep -qF '[#] ip route del 10.91.0.0/24 dev wg1 (PreDown on line 8)' && journalctl -b -o cat -u $(unit wg1) | grep -qF '[#] nft delete table inet fzhook_wg1 (PostDown on line 9)'"
check "wg1's stop logged at Information only (no Error in its journal)" sh_c "! journalctl -b -u $(unit wg1) -p err -o cat | grep -q ."
check "wg1's SaveConfig rewrote /etc/wireguard/wg1.conf on stop from inside the sandbox (mode 0600): both added peers, the hooks, #! Role, ListenPort; logged" \
  sh_c "grep -qx 'PublicKey = $stoppeer' /etc/wireguard/wg1.conf && grep -qx 'AllowedIPs = 10.78.0.10/32' /etc/wireguard/wg1.conf && grep -qx 'PublicKey = $savedpeer' /etc/wireguard/wg1.conf && grep -qx 'AllowedIPs = 10.78.0.9/32' /etc/wireguard/wg1.conf && grep -qx 'PostDown = nft delete table inet fzhook_%i' /etc/wireguard/wg1.conf && grep -qx '#! Role = gateway' /etc/wireguard/wg1.conf && grep -qx 'ListenPort = 51001' /etc/wireguard/wg1.conf && grep -qx 'SaveConfig = true' /etc/wireguard/wg1.conf && [ \$(stat -c %a /etc/wireguard/wg1.conf) = 600 ] && journalctl -b -o cat -u $(unit wg1) | grep -qF 'SaveConfig: saved wg1' && ! test -e /etc/wireguard/wg1.conf.tmp"

echo "== reload (ExecReload: wg syncconf with wg-quick strip, as wg-quick@.service)"
if [[ -n $(prop wg0 ExecReload) ]]; then
  sh_c "printf 'PersistentKeepalive = 7\n' >> /etc/wireguard/wg0.conf"
  check "systemctl reload firezone-tunnel@wg0 returns 0" in_c systemctl reload "$(unit wg0)"
  check "after reload: same main PID, persistent keepalive 7 applied, the #! directive did not upset wg" \
    sh_c "[ \$(systemctl show -P MainPID $(unit wg0)) = $pid0 ] && wg show wg0 persistent-keepalive | grep -q '	7\$' && systemctl is-active --quiet $(unit wg0)"
  check "after reload: addresses and routes kept, ping works" \
    sh_c "ip -o addr show dev wg0 | grep -q 10.77.0.1/24 && ip route show dev wg0 | grep -q '^10.79.0.0/24' && ping -c 2 -i 0.2 -W 2 10.79.0.1 >/dev/null"
else
  fail "the unit has no ExecReload (systemctl reload firezone-tunnel@wg0 is refused)" "$(in_c systemctl reload "$(unit wg0)" 2>&1)"
fi

echo "== restart"
check "systemctl restart firezone-tunnel@wg0" in_c systemctl restart "$(unit wg0)"
pid1=$(mainpid wg0)
check "restarted: new main PID ($pid0 -> $pid1), active, socket, ping" \
  sh_c "[ $pid1 != $pid0 ] && [ $pid1 != 0 ] && systemctl is-active --quiet $(unit wg0) && test -S /run/wireguard/wg0.sock && ping -c 2 -i 0.2 -W 2 10.77.0.2 >/dev/null"

echo "== Restart=on-failure after kill -9"
in_c kill -9 "$pid1"
if wait_for 15 sh_c "p=\$(systemctl show -P MainPID $(unit wg0)); [ \$p != 0 ] && [ \$p != $pid1 ] && systemctl is-active --quiet $(unit wg0)"; then
  pid2=$(mainpid wg0)
  pass "wg0 restarted by systemd after SIGKILL (PID $pid1 -> $pid2, NRestarts=$(prop wg0 NRestarts))"
else
  fail "wg0 not restarted after SIGKILL" "$(in_c systemctl status --no-pager -n 20 "$(unit wg0)")"
fi
check "after the restart: the stale socket was replaced, wg show and ping work" sh_c "wg show wg0 >/dev/null && ping -c 2 -i 0.2 -W 2 10.77.0.2 >/dev/null"
check "the journal names the SIGKILL" sh_c "journalctl -b -o cat -u $(unit wg0) | grep -q 'status=9/KILL'"
out=$(in_c systemctl stop "$(unit wg0)" 2>&1); rc=$?
check "systemctl stop wg0: exit 0, Result=success, socket and link gone, /run/wireguard kept" \
  sh_c "[ '$rc $(prop wg0 Result) $(prop wg0 ExecMainStatus)' = '0 success 0' ] && ! test -e /run/wireguard/wg0.sock && ! ip link show wg0 >/dev/null 2>&1 && test -d /run/wireguard"
check "systemctl stop wg0 took its DNS back (record tun.wg0 gone, 10.77.0.53 out of /etc/resolv.conf)" sh_c "! test -e /run/resolvconf/interface/tun.wg0 && ! grep -q 10.77.0.53 /etc/resolv.conf"

echo "== full tunnel: wgf, AllowedIPs = 0.0.0.0/0, ::/0"
rules4_before=$(in_c ip -4 rule show); rules6_before=$(in_c ip -6 rule show)
svm_before=$(in_c sysctl -n net.ipv4.conf.all.src_valid_mark)
check "systemctl start firezone-tunnel@wgf" in_c systemctl start "$(unit wgf)"
fullchecks() {
  sh_c '
    t=$(wg show wgf fwmark); [ "$t" != off ] || { echo "no fwmark"; exit 1; }
    table=$(printf "%d" "$t")
    n1=$(ip -4 rule show | grep -c "not from all fwmark $t lookup $table"); n2=$(ip -4 rule show | grep -c "from all lookup main suppress_prefixlength 0")
    n3=$(ip -6 rule show | grep -c "not from all fwmark $t lookup $table"); n4=$(ip -6 rule show | grep -c "from all lookup main suppress_prefixlength 0")
    [ "$n1$n2$n3$n4" = 1111 ] || { echo "rules: $n1 $n2 $n3 $n4"; ip rule; ip -6 rule; exit 1; }
    ip -4 route show table $table | grep -q "^default dev wgf" && ip -6 route show table $table | grep -q "^default dev wgf" || { echo "no default route in table $table"; exit 1; }
    [ $(sysctl -n net.ipv4.conf.all.src_valid_mark) = 1 ] || { echo "src_valid_mark not 1"; exit 1; }
    test -s /run/firezone-tunnel/wgf.json || { echo "no /run/firezone-tunnel/wgf.json"; exit 1; }
    ip route get 10.99.0.1 | grep -q "dev wgf" || { ip route get 10.99.0.1; exit 1; }
    ping -c 3 -i 0.2 -W 2 10.99.0.1 >/dev/null && ping -c 3 -i 0.2 -W 2 fd99::1 >/dev/null || { echo "no ping through the full tunnel"; exit 1; }
    ping -c 1 -W 2 192.168.77.2 >/dev/null || { echo "the endpoint is not reachable outside the tunnel"; exit 1; }'
}
check "wgf: fwmark, one pair of policy rules per family, default in the table, src_valid_mark=1, state record, pings 10.99.0.1 and fd99::1 through the tunnel" fullchecks
pidf=$(mainpid wgf)
in_c kill -9 "$pidf"
if wait_for 15 sh_c "p=\$(systemctl show -P MainPID $(unit wgf)); [ \$p != 0 ] && [ \$p != $pidf ] && systemctl is-active --quiet $(unit wgf)"; then
  pass "wgf restarted by systemd after SIGKILL (PID $pidf -> $(mainpid wgf))"
else
  fail "wgf not restarted after SIGKILL" "$(in_c systemctl status --no-pager -n 20 "$(unit wgf)")"
fi
check "after the restart: the killed instance's rules removed (no second copy), everything as before, pings" fullchecks
check "the restart logged the clean-up of what the killed instance left" sh_c "journalctl -b -o cat -u $(unit wgf) | grep -q 'wgf.json is left by an instance of wgf that did not stop cleanly'"
out=$(in_c systemctl stop "$(unit wgf)" 2>&1); rc=$?
check "systemctl stop wgf: exit 0, Result=success, exit status 0" test "$rc $(prop wgf Result) $(prop wgf ExecMainStatus)" = "0 success 0"
check "after stop: policy rules as before the start, src_valid_mark back to $svm_before, wgf.json removed, link gone" \
  sh_c "[ \"\$(ip -4 rule show)\" = '$rules4_before' ] && [ \"\$(ip -6 rule show)\" = '$rules6_before' ] && [ \$(sysctl -n net.ipv4.conf.all.src_valid_mark) = $svm_before ] && ! test -e /run/firezone-tunnel/wgf.json && ! ip link show wgf >/dev/null 2>&1"

echo "== a configuration with a mistake: bad0 (line 8)"
out=$(in_c systemctl start "$(unit bad0)" 2>&1); rc=$?
check "systemctl start firezone-tunnel@bad0 fails at once" test "$rc" -ne 0
status=$(in_c systemctl status --no-pager "$(unit bad0)" 2>&1)
check "systemctl status (default 10 lines) shows the one line /etc/wireguard/bad0.conf:8: ..." \
  sh_c "systemctl status --no-pager $(unit bad0) | grep -q '/etc/wireguard/bad0.conf:8: '"
echo "     $(echo "$status" | grep -m1 'Active:' | sed 's/^ *//')"
echo "     $(echo "$status" | grep -m1 'bad0.conf:8:' | sed 's/^ *//')"
check "journalctl -u firezone-tunnel@bad0 -p err has it (an error, not info)" \
  sh_c "journalctl -b -u $(unit bad0) -p err -o cat | grep -q '^firezone-tunnel: /etc/wireguard/bad0.conf:8: '"
check "nothing created for bad0 (no link, no socket)" sh_c "! ip link show bad0 >/dev/null 2>&1 && ! test -e /run/wireguard/bad0.sock"
# A mistake does not go away by itself: no restart on EX_CONFIG (RestartPreventExitStatus=78).
sleep 3
st="$(prop bad0 ActiveState) $(prop bad0 ExecMainStatus) $(prop bad0 NRestarts)"
check "bad0 not restarted: after 3 s ActiveState, exit status, NRestarts = $st (failed 78 0)" test "$st" = "failed 78 0"
in_c systemctl reset-failed "$(unit bad0)" 2>/dev/null

echo "== a usage error: an instance name Linux refuses as an interface (19 characters)"
sh_c "cp /etc/wireguard/bad0.conf /etc/wireguard/wgthisnameistoolong.conf"
in_c systemctl start "$(unit wgthisnameistoolong)" >/dev/null 2>&1; sleep 3
st="$(prop wgthisnameistoolong ActiveState) $(prop wgthisnameistoolong ExecMainStatus) $(prop wgthisnameistoolong NRestarts)"
check "not restarted: after 3 s ActiveState, exit status, NRestarts = $st (failed 2 0), the reason in the journal at err" \
  sh_c "[ '$st' = 'failed 2 0' ] && journalctl -b -o cat -p err -u $(unit wgthisnameistoolong) | grep -q 'not a valid interface name'"
in_c systemctl reset-failed "$(unit wgthisnameistoolong)" 2>/dev/null

echo "== an Endpoint host name that does not resolve (yet): retried"
sh_c "sed 's/^Endpoint = .*/Endpoint = nowhere.invalid:51820/' /etc/wireguard/wg0.conf > /etc/wireguard/wgdns.conf"
in_c systemctl start "$(unit wgdns)" >/dev/null 2>&1
if wait_for 15 sh_c "[ \$(systemctl show -P NRestarts $(unit wgdns)) -ge 2 ]"; then
  check "wgdns restarted by systemd (NRestarts $(prop wgdns NRestarts)) after exit status 1 and the FILE:LINE line: the name may resolve later" \
    sh_c "journalctl -b -o cat -u $(unit wgdns) | grep -q 'status=1/FAILURE' && journalctl -b -o cat -p err -u $(unit wgdns) | grep -q '^firezone-tunnel: /etc/wireguard/wgdns.conf:[0-9]*: Endpoint: cannot resolve the host name'"
else
  fail "wgdns not retried" "$(in_c systemctl status --no-pager "$(unit wgdns)")"
fi
check "systemctl stop ends the retries" sh_c "systemctl stop $(unit wgdns) && sleep 3 && [ \"\$(systemctl show -P ActiveState $(unit wgdns))\" != activating ] && ! systemctl is-active --quiet $(unit wgdns)"
in_c systemctl reset-failed "$(unit wgdns)" 2>/dev/null

echo "== systemd-analyze security"
sec=$(in_c systemd-analyze security --no-pager firezone-tunnel@wg0.service 2>&1)
echo "$sec" | grep -E '^→|Overall exposure' | sed 's/^/     /'
exposure=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "exposure level $exposure is at most 3.0 (6.7 before the hardening of this lab)" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 3.0) }'

echo "== the end"
check "no instance left running, no firezone link left" sh_c "! systemctl list-units --no-legend 'firezone-tunnel@*' | grep -q running && ! ip -o link | grep -q -e ' wg0:' -e ' wg1:' -e ' wgf:'"
if [[ $KEEP -eq 1 ]]; then
  in_c journalctl -b --no-pager -o short-monotonic > "$RUN/journal.txt" 2>&1
fi

echo
echo "SUMMARY: ${PASSES} passed, ${#FAILS[@]} failed, $(( $(date +%s) - START )) s (container $MACHINE)"
for f in "${FAILS[@]}"; do echo "  FAIL $f"; done
[[ ${#FAILS[@]} -eq 0 ]]

