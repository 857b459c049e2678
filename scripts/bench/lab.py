"""The two-namespace veth lab: namespaces, veth pair, tunnel daemons and their clean-up.

Everything the lab makes carries one random suffix so several labs (other helpers' tests) can run on
the machine at once. Every process is started here, remembered by PID and stopped by PID; the
namespaces (and with them the veth pair and any TUN device still inside) are deleted on exit, also
when a measurement fails or the run is interrupted (bench.py turns SIGINT/SIGTERM/SIGHUP into
SystemExit so the `finally` runs).
"""

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

UAPI_DIR = "/var/run/wireguard"
FIREZONE_LOG_DIR = "/var/log/firezone-tunnel"

# Addresses live only inside the lab's namespaces (never on the host), so fixed private ranges
# cannot clash with another lab: each lab has its own namespaces.
UNDERLAY_A = "192.168.77.1"
UNDERLAY_B = "192.168.77.2"
TUNNEL_A = "10.77.0.1"
TUNNEL_B = "10.77.0.2"
TUNNEL_MTU = 1420  # wireguard-go's default; 1392-byte UDP payload + 28 bytes of headers fills it
PORT_A = 51820
PORT_B = 51821


def run(args, timeout=60, check=True, input=None):
    """Runs one command with a time bound; returns its stdout. Errors name the command."""
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def exit_on_stop_signals():
    """SIGTERM and SIGHUP end the script through sys.exit, so its `finally: lab.close()` stops every
    process it started and removes its namespaces (Ctrl-C does so already)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))


def is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def random_public_key():
    """A syntactically valid WireGuard public key: 32 random bytes, base64. Configuring a peer
    needs only its public key, so no private key (and no `wg genkey`) is spent per peer."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


class Lab:
    def __init__(self, log_dir):
        self.suffix = secrets.token_hex(3)[:5]
        self.ns_a = f"fzb{self.suffix}-a"
        self.ns_b = f"fzb{self.suffix}-b"
        self.log_dir = log_dir
        self.tmp = tempfile.mkdtemp(prefix=f"fzbench-{self.suffix}-")
        self.procs = []  # every Popen this lab started, stopped by PID on close()
        self.ifnames = []  # every tunnel interface name, for their UAPI sockets
        self.counter = 0
        self.created = False

    # ---- namespaces ---------------------------------------------------------------------------

    def create(self):
        veth_a, veth_b = f"fzb{self.suffix}va", f"fzb{self.suffix}vb"
        run(["ip", "netns", "add", self.ns_a])
        self.created = True
        run(["ip", "netns", "add", self.ns_b])
        # The veth pair is created inside namespace A, so no interface ever appears on the host.
        self.ip(self.ns_a, "link", "add", veth_a, "type", "veth", "peer", "name", veth_b, "netns", self.ns_b)
        for ns, veth, addr in ((self.ns_a, veth_a, UNDERLAY_A), (self.ns_b, veth_b, UNDERLAY_B)):
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", veth)
            self.ip(ns, "link", "set", veth, "up")
            self.ip(ns, "link", "set", "lo", "up")
            # Many tunnel addresses share one namespace in the multi-peer test (policy routing).
            self.ns(ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
            self.ns(ns, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0")

    def ns(self, ns, *args, timeout=60, check=True):
        return run(["ip", "netns", "exec", ns, *args], timeout=timeout, check=check)

    def ip(self, ns, *args, check=True):
        return run(["ip", "-n", ns, *args], check=check)

    # ---- processes ----------------------------------------------------------------------------

    def spawn(self, ns, args, log_name, env=None, group=False, own_session=True):
        """Starts a process in `ns`, in a new process group whose id is its PID. `group`: the
        process starts children of its own (a shell), so stop() signals its whole process group.
        `own_session`: the group is also a new session, so the kernel's autogroup scheduling gives
        the process a CPU share of its own, as a separate service would have; without it, the
        process shares the benchmark's session and so its CPU share (the load generator)."""
        log = open(os.path.join(self.log_dir, log_name), "ab")
        # `ip netns exec` execs the command, so the PID is the daemon's own PID (needed for /proc).
        session = {"start_new_session": True} if own_session else {"process_group": 0}
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, **session)
        log.close()
        p.group = group
        self.procs.append(p)
        return p

    def _signal(self, p, sig):
        if getattr(p, "group", False):
            os.killpg(p.pid, sig)  # the group this lab created, by its id (= the leader's PID)
        else:
            os.kill(p.pid, sig)

    def stop(self, p, grace=5.0):
        """Stops one process by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
        if p.poll() is None:
            try:
                self._signal(p, signal.SIGTERM)
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(p, signal.SIGKILL)
                p.wait(timeout=5)
            except ProcessLookupError:
                pass
        if p in self.procs:
            self.procs.remove(p)

    def new_ifname(self, tag):
        """A tunnel interface name unique on the machine (<= 15 chars): its UAPI socket lives in
        the shared /var/run/wireguard, not in the namespace."""
        self.counter += 1
        name = f"fz{self.suffix}{tag}{self.counter}"
        assert len(name) <= 15, name
        self.ifnames.append(name)
        return name

    # ---- tunnel daemons -----------------------------------------------------------------------

    def start_daemon(self, binary, ns, ifname, log_name, timeout=30.0, extra_env=None, own_session=True):
        """Starts `binary -f IFNAME` (the wireguard-go command line) in `ns` and waits for its UAPI
        socket and TUN device. `extra_env` is added to this process's environment; `own_session`
        as in spawn()."""
        env = dict(os.environ)
        env.setdefault("LOG_LEVEL", "error")
        env.update(extra_env or {})
        p = self.spawn(ns, [binary, "-f", ifname], log_name, env=env, own_session=own_session)
        sock = os.path.join(UAPI_DIR, f"{ifname}.sock")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"{binary} -f {ifname} exited with {p.returncode}; see {self.log_dir}/{log_name}")
            if os.path.exists(sock) and self.ip(ns, "link", "show", ifname, check=False):
                return p
            time.sleep(0.05)
        self.stop(p)
        raise RuntimeError(f"{binary} -f {ifname}: no UAPI socket {sock} after {timeout} s")

    def genkey(self):
        priv = run(["wg", "genkey"]).strip()
        pub = run(["wg", "pubkey"], input=priv + "\n").strip()
        return priv, pub

    def key_file(self, priv):
        fd, path = tempfile.mkstemp(dir=self.tmp, suffix=".key")
        with os.fdopen(fd, "w") as f:
            f.write(priv + "\n")
        return path

    def configure(self, ns, ifname, priv, port, address, prefix_len, peers, mtu=TUNNEL_MTU):
        """Configures a tunnel exactly as one would configure wireguard-go: `wg set` over the UAPI
        socket, then `ip` for address, MTU and link state. `peers` = [(pub, endpoint, allowed_ips)]."""
        args = ["wg", "set", ifname, "private-key", self.key_file(priv), "listen-port", str(port)]
        for pub, endpoint, allowed in peers:
            args += ["peer", pub, "allowed-ips", allowed]
            if endpoint:
                args += ["endpoint", endpoint]
        self.ns(ns, *args)
        self.ip(ns, "addr", "add", f"{address}/{prefix_len}", "dev", ifname)
        self.ip(ns, "link", "set", ifname, "mtu", str(mtu), "up")

    # ---- clean-up -----------------------------------------------------------------------------

    def close(self):
        for p in list(self.procs):
            try:
                self.stop(p)
            except Exception as e:  # keep cleaning up the rest
                print(f"warning: could not stop PID {p.pid}: {e}")
        if self.created:
            for ns in (self.ns_a, self.ns_b):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        for name in self.ifnames:
            sock = os.path.join(UAPI_DIR, f"{name}.sock")
            if os.path.exists(sock):
                os.unlink(sock)
            # firezone-tunnel's default JSON-lines log is named after the interface: keep it with
            # the run's other logs instead of leaving one file per benchmark interface behind.
            fz_log = os.path.join(FIREZONE_LOG_DIR, f"{name}.log")
            if os.path.exists(fz_log):
                shutil.move(fz_log, os.path.join(self.log_dir, f"firezone-{name}.jsonl"))
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)
