"""Peer scaling (issue 8, item 4): the cost of 10,000 idle peers, and 100 peers sending at once.

Idle peers: one daemon in namespace B, `wg addconf` of N peers whose public keys are 32 random
bytes (a peer needs no private key to be configured), wall time of the command and VmRSS growth.

Many peers sending: the device under test is the Gateway in namespace B with N peers. The Clients
are N wireguard-go daemons in namespace A (about 5 MB each; the same load generator for every
implementation under test, so only the Gateway changes). Each Client has its own tunnel address
and a policy-routing table that sends that address's traffic into its own tunnel, so N iperf3
clients bound to N addresses are N WireGuard peers from the Gateway's point of view. N iperf3
servers in namespace B (one per port: an iperf3 server serves one test at a time) receive. The
figure is the rate the Gateway delivers into its TUN device while all N send, against one Client
sending alone through the same Gateway.

The Clients run with GOMAXPROCS=1 (CLIENT_GOMAXPROCS; bench.py --load-gomaxprocs). Each Client
stands for a machine of its own, but here all of them share the two cores with the Gateway. With
the Go runtime's default (one P per core) the load generator is the bottleneck: 100 Go schedulers
that each look for work on both cores. Measured with `bench.py --load-only --rounds 3`, 2026-11-25:
with the default, wireguard-go as the Gateway reached 0.68 to 0.93 of its one-peer rate; with
GOMAXPROCS=1 it reached 1.06 to 1.16 (0.78 to 1.16 over 9 phases that day). The setting is the
same for every Gateway under test; it also lowers the one-peer rate (one Client, one core).
"""

import json
import os
import subprocess
import time

import lab as L
import measure as M

GATEWAY_PORT = 51840
GATEWAY_ADDR = "10.78.0.1"
SCALE_PORT = 51850
IPERF_BASE_PORT = 5300
CLIENT_GOMAXPROCS = 1
# The common window of the many-peers test: from WINDOW_START seconds after the first flow was
# started to WINDOW_END_BEFORE seconds before the flows end.
WINDOW_START = 2.0
WINDOW_END_BEFORE = 1.0
MIN_SECONDS = 8


def tun_rx_bytes(lab, ns, ifname):
    link = json.loads(lab.ip(ns, "-j", "-s", "link", "show", "dev", ifname))
    return link[0]["stats64"]["rx"]["bytes"]


def idle_peer_cost(lab, binary, label, npeers):
    ifname = lab.new_ifname("s")
    p = lab.start_daemon(binary, lab.ns_b, ifname, f"{label}-{ifname}.log")
    try:
        priv, _ = lab.genkey()
        lab.configure(lab.ns_b, ifname, priv, SCALE_PORT, "10.79.0.1", 16, [])
        time.sleep(1.0)
        before = M.rss_kb(p.pid)
        conf = os.path.join(lab.tmp, f"{ifname}-peers.conf")
        with open(conf, "w") as f:
            for i in range(npeers):
                # One /32 per peer, as a Gateway gives each Client its own address.
                f.write(f"[Peer]\nPublicKey = {L.random_public_key()}\n"
                        f"AllowedIPs = 10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32\n\n")
        cpu0 = M.cpu_seconds(p.pid)
        t0 = time.monotonic()
        lab.ns(lab.ns_b, "wg", "addconf", ifname, conf, timeout=300)
        addconf_s = time.monotonic() - t0
        cpu = M.cpu_seconds(p.pid) - cpu0
        configured = len(lab.ns(lab.ns_b, "wg", "show", ifname, "peers", timeout=120).split())
        time.sleep(1.0)
        after = M.rss_kb(p.pid)
        os.unlink(conf)
        if configured != npeers:
            raise RuntimeError(f"wg addconf of {npeers} peers left {configured} peers configured")
        return {"addconf_s": addconf_s, "addconf_daemon_cpu_s": cpu, "rss_before_kb": before,
                "rss_after_kb": after, "rss_per_peer_kb": (after - before) / npeers}
    finally:
        lab.stop(p)


def client_addr(i):
    return f"10.78.{1 + i // 250}.{1 + i % 250}"


class LoadClients:
    """N wireguard-go Clients in namespace A and N iperf3 servers in namespace B, started once and
    shared by every Gateway implementation and round."""

    def __init__(self, lab, client_binary, n, gomaxprocs=None, own_sessions=False):
        """`gomaxprocs`: GOMAXPROCS for every Client (None or 0: the Go runtime's default, one per core).
        `own_sessions`: every Client and iperf3 process in a session of its own, as the lab starts
        the daemons under test. By default they all share the benchmark's session: the kernel's
        autogroup scheduling (on in Debian's kernels) shares the CPU between sessions, so 100
        Clients and 100 iperf3 servers in sessions of their own would have 200 shares against the
        Gateway's one, and the one-peer phase 3. Sharing one session, the load generator has one
        share in both phases and the Gateway the other, as if the Clients ran on other machines."""
        self.lab, self.n, self.own_sessions = lab, n, own_sessions
        self.gateway_pid = None
        extra_env = {"GOMAXPROCS": str(gomaxprocs)} if gomaxprocs else None
        self.gw_priv, self.gw_pub = lab.genkey()
        self.clients = []  # (ifname, pub)
        for i in range(n):
            ifname = lab.new_ifname("c")
            lab.start_daemon(client_binary, lab.ns_a, ifname, "load-clients.log", extra_env=extra_env,
                             own_session=own_sessions)
            priv, pub = lab.genkey()
            addr = client_addr(i)
            lab.configure(lab.ns_a, ifname, priv, 52000 + i, addr, 32, [])
            table = str(1000 + i)
            lab.ip(lab.ns_a, "rule", "add", "from", addr, "lookup", table)
            lab.ip(lab.ns_a, "route", "add", f"{GATEWAY_ADDR}/32", "dev", ifname, "table", table)
            self.clients.append((ifname, pub))
        for i in range(n):
            lab.spawn(lab.ns_b, ["iperf3", "-s", "-p", str(IPERF_BASE_PORT + i)], "load-iperf3-servers.log",
                      own_session=own_sessions)
        for i in range(n):
            M.wait_for_listen(lab, lab.ns_b, IPERF_BASE_PORT + i)

    def _reset_sessions(self):
        """A fresh Gateway knows no session, and a Client would wait 15 s (Keepalive-Timeout +
        Rekey-Timeout, whitepaper section 6.1) before it noticed; re-adding the peer makes the
        next packet start a handshake at once."""
        for ifname, _ in self.clients:
            self.lab.ns(self.lab.ns_a, "wg", "set", ifname, "peer", self.gw_pub, "remove")
            self.lab.ns(self.lab.ns_a, "wg", "set", ifname, "peer", self.gw_pub, "endpoint",
                        f"{L.UNDERLAY_B}:{GATEWAY_PORT}", "allowed-ips", f"{GATEWAY_ADDR}/32")

    def _handshake_all(self):
        pings = [subprocess.Popen(["ip", "netns", "exec", self.lab.ns_a, "ping", "-q", "-c", "3", "-i", "0.3",
                                   "-W", "2", "-I", client_addr(i), GATEWAY_ADDR],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(self.n)]
        self.lab.procs.extend(pings)  # stopped by PID on close() if the run is interrupted
        for p in pings:
            p.wait(timeout=30)
            self.lab.procs.remove(p)
        for i in range(self.n):
            M.wait_for_tunnel(self.lab, self.lab.ns_a, GATEWAY_ADDR, source=client_addr(i))

    def _send(self, count, seconds, gw_ifname):
        """`count` Clients send one TCP stream each, all started at once. The total is read from
        the Gateway's TUN device counters (rx: what the daemon wrote into the kernel, the same
        count for any implementation) over a window in which every flow runs: under load a flow's
        SYN can be lost and retried a second later, so summing iperf3's per-flow rates (each over
        its own window) would overstate the total."""
        # One shell inside the namespace starts every flow: a separate `ip netns exec` per flow
        # takes tens of milliseconds each, long enough to stagger 100 flows by seconds.
        outs = [os.path.join(self.lab.tmp, f"load-{i}.json") for i in range(count)]
        script = "".join(f"iperf3 -c {GATEWAY_ADDR} -B {client_addr(i)} -p {IPERF_BASE_PORT + i} -t {seconds} -J "
                         f">{outs[i]} 2>/dev/null &\n" for i in range(count)) + "wait\n"
        t0 = time.monotonic()
        shell = self.lab.spawn(self.lab.ns_a, ["sh", "-c", script], "load-flows.log", group=True,
                               own_session=self.own_sessions)
        time.sleep(max(0.0, t0 + WINDOW_START - time.monotonic()))
        b0, w0 = tun_rx_bytes(self.lab, self.lab.ns_b, gw_ifname), time.monotonic()
        time.sleep(max(0.0, t0 + seconds - WINDOW_END_BEFORE - time.monotonic()))
        b1, w1 = tun_rx_bytes(self.lab, self.lab.ns_b, gw_ifname), time.monotonic()
        try:
            shell.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            pass
        self.lab.stop(shell)  # also any flow still hanging
        rates, failures = [], 0
        for path in outs:
            try:
                with open(path) as f:
                    rates.append(M.received(json.load(f))[0] / 1e9)
            except Exception:
                failures += 1
            os.unlink(path)
        return {"gbps": (b1 - b0) * 8 / (w1 - w0) / 1e9, "window_s": w1 - w0,
                "sum_of_flow_rates_gbps": sum(rates), "min_flow_gbps": min(rates, default=None),
                "max_flow_gbps": max(rates, default=None), "failed_flows": failures}

    def measure(self, binary, label, seconds):
        lab = self.lab
        ifname = lab.new_ifname("g")
        p = lab.start_daemon(binary, lab.ns_b, ifname, f"{label}-{ifname}.log")
        self.gateway_pid = p.pid  # for probes that look at the Gateway during a phase (phases.py)
        try:
            lab.configure(lab.ns_b, ifname, self.gw_priv, GATEWAY_PORT, GATEWAY_ADDR, 16,
                          [(pub, None, f"{client_addr(i)}/32") for i, (_, pub) in enumerate(self.clients)])
            self._reset_sessions()
            self._handshake_all()
            one = self._send(1, seconds, ifname)
            time.sleep(0.5)
            many = self._send(self.n, seconds, ifname)
            if one["failed_flows"] or many["failed_flows"] == self.n:
                raise RuntimeError(f"iperf3 failed: {one['failed_flows']} of 1, {many['failed_flows']} of {self.n} flows")
            out = {f"one_peer_{k}": v for k, v in one.items()}
            out.update({f"many_peers_{k}": v for k, v in many.items()})
            out["many_over_one"] = many["gbps"] / one["gbps"] if one["gbps"] else None
            return out
        finally:
            lab.stop(p)


GEN_GATEWAY_PORT = 51841
GEN_BASE_PORT = 53000
GEN_SINK_PORT = 9
# The window of an engine-generator phase: from GEN_WINDOW_START seconds after the generator said
# its sessions were up to GEN_WINDOW_END_BEFORE seconds before it stops sending.
GEN_WINDOW_START = 1.0
GEN_WINDOW_END_BEFORE = 0.5


class EngineLoad:
    """N Clients in one process of ours (`Firezone.Actors.Benchmarks load-peers`, our engine as the
    initiator): each its own key, UDP port and tunnel address, taking turns to send a burst of
    MTU-sized IPv4/UDP packets through the Gateway as fast as one core seals them. The same offered
    load for 1 and for N Clients (with N wireguard-go Clients, LoadClients, the Clients' own CPU
    decides the total). A Gateway that delivers much less than is offered (wireguard-go) is measured
    at its limit; ours delivers nearly all of it, so each phase also reports delivered / offered and
    the Gateway's CPU-seconds per GB (what it would carry with a core to itself).
    The packets go to a port that nftables drops in namespace B (no ICMP back), so only the
    Gateway's receive path is measured."""

    def __init__(self, lab, generator_dll, n):
        self.lab, self.n, self.generator = lab, n, generator_dll
        self.gateway_pid = None
        self.gw_priv, self.gw_pub = lab.genkey()
        self.clients = []  # (priv, pub, addr)
        for i in range(n):
            priv, pub = lab.genkey()
            self.clients.append((priv, pub, client_addr(i)))
        nft = ("table ip fzbench_sink {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
               f"  ip daddr {GATEWAY_ADDR} udp dport {GEN_SINK_PORT} drop\n }}\n}}\n")
        L.run(["ip", "netns", "exec", lab.ns_b, "nft", "-f", "-"], input=nft)

    def _send(self, count, seconds, label, gw_ifname):
        keys = os.path.join(self.lab.tmp, f"gen-keys-{count}")
        with open(keys, "w") as f:
            for priv, _, addr in self.clients[:count]:
                f.write(f"{priv} {addr}\n")
        log_name = f"{label}-{gw_ifname}-gen-{count}.log"
        log_path = os.path.join(self.lab.log_dir, log_name)
        start = len(open(log_path, "rb").read()) if os.path.exists(log_path) else 0
        p = self.lab.spawn(self.lab.ns_a, ["dotnet", self.generator, "load-peers",
                                           "--endpoint", f"{L.UNDERLAY_B}:{GEN_GATEWAY_PORT}", "--gateway-key", self.gw_pub,
                                           "--keys", keys, "--base-port", str(GEN_BASE_PORT), "--destination", GATEWAY_ADDR,
                                           "--port", str(GEN_SINK_PORT), "--seconds", str(seconds), "--mtu", str(L.TUNNEL_MTU)],
                           log_name, own_session=False)
        try:
            ready = None
            deadline = time.monotonic() + 30
            while ready is None and time.monotonic() < deadline and p.poll() is None:
                with open(log_path, "rb") as f:
                    f.seek(start)
                    if b"sessions after" in f.read():
                        ready = time.monotonic()
                        break
                time.sleep(0.02)
            if ready is None:
                raise RuntimeError(f"load-peers did not get its sessions up (see {log_path})")
            time.sleep(max(0.0, ready + GEN_WINDOW_START - time.monotonic()))
            b0, c0, w0 = tun_rx_bytes(self.lab, self.lab.ns_b, gw_ifname), M.cpu_seconds(self.gateway_pid), time.monotonic()
            time.sleep(max(0.0, ready + seconds - GEN_WINDOW_END_BEFORE - time.monotonic()))
            b1, c1, w1 = tun_rx_bytes(self.lab, self.lab.ns_b, gw_ifname), M.cpu_seconds(self.gateway_pid), time.monotonic()
            p.wait(timeout=seconds + 30)
        finally:
            self.lab.stop(p)
            os.unlink(keys)
        with open(log_path, "rb") as f:
            f.seek(start)
            lines = [l for l in f.read().decode(errors="replace").splitlines() if l.startswith("{")]
        report = json.loads(lines[-1]) if lines else {}
        if p.returncode != 0 or report.get("sessions") != count:
            raise RuntimeError(f"load-peers: {report.get('sessions')} of {count} sessions, exit {p.returncode} (see {log_path})")
        gbps = (b1 - b0) * 8 / (w1 - w0) / 1e9
        offered = report["sent"] * report["packet_bytes"] * 8 / seconds / 1e9
        # The Gateway's own CPU time per GB it delivered (its process, every thread): what the rate
        # would be with a core to itself. Our Gateway delivers nearly all that one core of this
        # generator offers, so the rates of the two phases are then the generator's, and this shows
        # whether 100 peers cost the Gateway more per byte than one.
        return {"gbps": gbps, "window_s": w1 - w0, "offered_gbps": offered,
                "delivered_share": gbps / offered if offered else None,
                "gateway_cpu_s_per_gb": (c1 - c0) / ((b1 - b0) / 1e9) if b1 > b0 else None}

    def measure(self, binary, label, seconds):
        lab = self.lab
        ifname = lab.new_ifname("g")
        p = lab.start_daemon(binary, lab.ns_b, ifname, f"{label}-{ifname}.log")
        self.gateway_pid = p.pid
        try:
            lab.configure(lab.ns_b, ifname, self.gw_priv, GEN_GATEWAY_PORT, GATEWAY_ADDR, 16,
                          [(pub, None, f"{addr}/32") for _, pub, addr in self.clients])
            one = self._send(1, seconds, label, ifname)
            time.sleep(0.5)
            many = self._send(self.n, seconds, label, ifname)
            out = {f"gen_one_peer_{k}": v for k, v in one.items()}
            out.update({f"gen_many_peers_{k}": v for k, v in many.items()})
            out["gen_many_over_one"] = many["gbps"] / one["gbps"] if one["gbps"] else None
            one_cpu, many_cpu = one["gateway_cpu_s_per_gb"], many["gateway_cpu_s_per_gb"]
            out["gen_many_over_one_per_cpu"] = one_cpu / many_cpu if one_cpu and many_cpu else None
            return out
        finally:
            lab.stop(p)
