"""The side-by-side figures for one implementation: a pair of daemons (one per namespace), the
cost of an idle tunnel, iperf3 TCP 1 and 4 streams, UDP at 1392-byte datagrams, ping RTT and
CPU-seconds per GB."""

import time

import lab as L
import measure as M

IPERF_PORT = 5201
IDLE_SECONDS = 10


def _cpu(pids):
    return sum(M.cpu_seconds(p) for p in pids)


def _throughput(lab, pids, seconds, streams=1, udp=False):
    """One iperf3 run from A to B with the CPU time both daemons spent during it."""
    before = _cpu(pids)
    result = M.iperf3(lab, lab.ns_a, L.TUNNEL_B, seconds, streams=streams, udp=udp, port=IPERF_PORT)
    cpu = _cpu(pids) - before
    bps, nbytes, loss = M.received(result)
    out = {"gbps": bps / 1e9, "bytes": nbytes, "cpu_s": cpu,
           # CPU-seconds of both daemons per GB (1e9 bytes) that arrived at the receiver.
           "cpu_s_per_gb": cpu / (nbytes / 1e9) if nbytes else None}
    if udp:
        out["loss_pct"] = loss
    return out


def start_pair(lab, binary, label, procs):
    """Starts `binary` in namespaces A and B (appended to `procs`, which the caller stops), joins them
    as peers over the veth and waits for the handshake."""
    if_a, if_b = lab.new_ifname("a"), lab.new_ifname("b")
    procs.append(lab.start_daemon(binary, lab.ns_a, if_a, f"{label}-{if_a}.log"))
    procs.append(lab.start_daemon(binary, lab.ns_b, if_b, f"{label}-{if_b}.log"))
    priv_a, pub_a = lab.genkey()
    priv_b, pub_b = lab.genkey()
    lab.configure(lab.ns_a, if_a, priv_a, L.PORT_A, L.TUNNEL_A, 24,
                  [(pub_b, f"{L.UNDERLAY_B}:{L.PORT_B}", f"{L.TUNNEL_B}/32")])
    lab.configure(lab.ns_b, if_b, priv_b, L.PORT_B, L.TUNNEL_B, 24,
                  [(pub_a, f"{L.UNDERLAY_A}:{L.PORT_A}", f"{L.TUNNEL_A}/32")])
    M.wait_for_tunnel(lab, lab.ns_a, L.TUNNEL_B)


def warm_up(lab):
    """Two seconds of pings (200 at 10 ms), not counted: the figure is the steady state, not
    the first packets of a fresh process. A .NET daemon compiles its packet path on first use and
    recompiles it optimized after 30 calls and a short delay (tiered compilation); 20 warm-up pings, as before,
    left the measured ones partly on the first, unoptimized code: with tiering off
    (DOTNET_TieredCompilation=0) the same fresh daemon pinged 0.83 times as long, 2026-11-25."""
    M.ping_ms(lab, lab.ns_a, L.TUNNEL_B, count=200, interval=0.01)


def run_pair(lab, binary, label, seconds, ping_count, ping_only=False, ping_interval=0.05):
    """Starts a fresh pair of `binary`, measures, stops it. Returns (metrics, errors); a failed
    measurement leaves its figure out and says why in errors, the others still run."""
    metrics, errors = {}, {}
    procs = []
    try:
        start_pair(lab, binary, label, procs)
        pids = [p.pid for p in procs]
        procs.append(lab.spawn(lab.ns_b, ["iperf3", "-s", "-B", L.TUNNEL_B, "-p", str(IPERF_PORT)],
                               f"{label}-iperf3-server.log"))
        M.wait_for_listen(lab, lab.ns_b, IPERF_PORT)

        steps = [
            ("idle", lambda: _idle(pids)),
            ("ping", lambda: _ping(lab, ping_count, ping_interval)),
            ("tcp1", lambda: _prefixed("tcp1", _throughput(lab, pids, seconds))),
            ("tcp4", lambda: _prefixed("tcp4", _throughput(lab, pids, seconds, streams=4))),
            ("udp", lambda: _prefixed("udp", _throughput(lab, pids, seconds, udp=True))),
        ]
        if ping_only:
            steps = [step for step in steps if step[0] == "ping"]
        for name, step in steps:
            try:
                metrics.update(step())
            except Exception as e:
                errors[name] = str(e)
            time.sleep(0.5)  # let queues drain before the next figure
        metrics["rss_pair_kb"] = sum(M.rss_kb(p) for p in pids)
    except Exception as e:
        errors["setup"] = str(e)
    finally:
        for p in reversed(procs):
            lab.stop(p)
    return metrics, errors


def _idle(pids):
    """An idle tunnel (session up, no traffic): CPU and thread wake-ups per second of one daemon
    (the mean of the pair), over IDLE_SECONDS after one second to settle."""
    time.sleep(1.0)
    cpu0, ctx0, t0 = _cpu(pids), [M.context_switches(p) for p in pids], time.monotonic()
    time.sleep(IDLE_SECONDS)
    cpu1, ctx1, t1 = _cpu(pids), [M.context_switches(p) for p in pids], time.monotonic()
    n, elapsed = len(pids), t1 - t0
    switches = [M.context_switches_between(a, b) for a, b in zip(ctx0, ctx1)]
    return {"idle_cpu_pct": 100 * (cpu1 - cpu0) / elapsed / n,
            "idle_wakeups_per_s": sum(s for s, _ in switches) / elapsed / n,
            # Threads that exited during the window: their wake-ups are missing from the figure.
            "idle_threads_exited": sum(e for _, e in switches)}


def _ping(lab, count, interval):
    warm_up(lab)
    low, avg, high = M.ping_ms(lab, lab.ns_a, L.TUNNEL_B, count=count, interval=interval)
    return {"ping_ms": avg, "ping_min_ms": low, "ping_max_ms": high}


def _prefixed(prefix, d):
    return {f"{prefix}_{k}": v for k, v in d.items()}
