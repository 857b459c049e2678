"""Side-by-side benchmark of two WireGuard userspace daemons (issue 8, items 1 and 4).

Both are run the way wireguard-go is run (`BINARY -f IFNAME`, configured with `wg` over the UAPI
socket and with `ip`), in a two-namespace veth lab, alternated A B B A, and compared by the ratio
B/A of each figure measured in the same run. Called by scripts/bench/run.sh.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chart  # noqa: E402
import lab as L  # noqa: E402
import measure as M  # noqa: E402
import pair  # noqa: E402
import peers  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIREZONE = os.path.join(REPO, "src/Host/bin/Release/net10.0/firezone-tunnel")
WIREGUARD_GO = shutil.which("wireguard-go") or "/usr/bin/wireguard-go"
GENERATOR = os.path.join(REPO, "benchmarks/Benchmarks/bin/Release/net10.0/Firezone.Actors.Benchmarks.dll")

# key, title, unit, which way is better, target (description, test on (a, b)) from issue 8.
METRICS = [
    ("tcp1_gbps", "TCP, 1 stream", "Gbit/s", "higher", ("B/A >= 3", lambda a, b: b / a >= 3)),
    ("tcp4_gbps", "TCP, 4 streams", "Gbit/s", "higher", None),
    ("udp_gbps", "UDP 1392 B, received", "Gbit/s", "higher", None),
    ("udp_loss_pct", "UDP 1392 B, loss", "%", "lower", ("B < A", lambda a, b: b < a)),
    ("ping_ms", "Ping through the tunnel, avg", "ms", "lower", ("B/A <= 0.5", lambda a, b: b / a <= 0.5)),
    ("ping_min_ms", "Ping through the tunnel, min", "ms", "lower", None),
    ("ping_max_ms", "Ping through the tunnel, max", "ms", "lower", None),
    ("tcp1_cpu_s_per_gb", "CPU per GB, TCP 1 stream", "CPU-s/GB", "lower", ("B/A <= 1/3", lambda a, b: b / a <= 1 / 3)),
    ("tcp4_cpu_s_per_gb", "CPU per GB, TCP 4 streams", "CPU-s/GB", "lower", None),
    ("udp_cpu_s_per_gb", "CPU per GB, UDP", "CPU-s/GB", "lower", None),
    ("rss_pair_kb", "RSS of the pair after traffic", "KB", "lower", None),
    ("idle_cpu_pct", "Idle tunnel: CPU per daemon", "%", "lower", None),
    ("idle_wakeups_per_s", "Idle tunnel: wake-ups per daemon", "per s", "lower", None),
    ("addconf_s", "wg addconf of N peers", "s", "lower", ("B < 2 s", lambda a, b: b < 2)),
    ("rss_per_peer_kb", "RSS per idle peer", "KB", "lower", ("B <= 5 KB", lambda a, b: b <= 5)),
    ("one_peer_gbps", "1 peer sending, TCP", "Gbit/s", "higher", None),
    ("many_peers_gbps", "M peers sending at once, total", "Gbit/s", "higher", None),
    ("many_over_one", "M peers total / 1 peer", "x", "higher", ("B >= 1", lambda a, b: b >= 1)),
    ("many_peers_min_flow_gbps", "M peers: slowest flow", "Gbit/s", "higher", None),
    ("many_peers_max_flow_gbps", "M peers: fastest flow", "Gbit/s", "higher", None),
    ("gen_one_peer_gbps", "1 peer sending, UDP (engine gen.)", "Gbit/s", "higher", None),
    ("gen_many_peers_gbps", "M peers at once, UDP (engine gen.)", "Gbit/s", "higher", None),
    ("gen_many_over_one", "M peers / 1 peer (engine gen.)", "x", "higher", ("B >= 1", lambda a, b: b >= 1)),
    ("gen_one_peer_delivered_share", "1 peer: delivered / offered (engine gen.)", "x", "higher", None),
    ("gen_many_peers_delivered_share", "M peers: delivered / offered (engine gen.)", "x", "higher", None),
    ("gen_one_peer_gateway_cpu_s_per_gb", "1 peer: Gateway CPU per GB (engine gen.)", "CPU-s/GB", "lower", None),
    ("gen_many_peers_gateway_cpu_s_per_gb", "M peers: Gateway CPU per GB (engine gen.)", "CPU-s/GB", "lower", None),
    ("gen_many_over_one_per_cpu", "M peers / 1 peer, per Gateway CPU-s (engine gen.)", "x", "higher", None),
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 s per iperf3 run instead of 10 s")
    p.add_argument("--self-test", action="store_true",
                   help="wireguard-go against wireguard-go, quick: validates the harness (ratios near 1)")
    p.add_argument("--impl-a", default=WIREGUARD_GO, help="implementation A (default: wireguard-go)")
    p.add_argument("--impl-b", default=None, help=f"implementation B (default: {FIREZONE})")
    p.add_argument("--rounds", type=int, default=2, help="rounds, A B then B A (default 2: A B B A)")
    p.add_argument("--seconds", type=int, default=None, help="seconds per iperf3 run (default 10, --quick 3)")
    p.add_argument("--ping-count", type=int, default=50)
    p.add_argument("--ping-interval", type=float, default=0.05,
                   help="seconds between the counted pings (default 0.05; ping's own default is 1)")
    p.add_argument("--peers", type=int, default=10000, help="idle peers added with wg addconf")
    p.add_argument("--load-peers", type=int, default=100, help="peers sending at once (0: skip)")
    p.add_argument("--load-client", default=WIREGUARD_GO, help="the Clients' daemon in the many-peers test")
    p.add_argument("--load-gomaxprocs", type=int, default=peers.CLIENT_GOMAXPROCS,
                   help=f"GOMAXPROCS of every load Client (default {peers.CLIENT_GOMAXPROCS}; 0: the Go runtime's default, one per core)")
    p.add_argument("--load-own-sessions", action="store_true",
                   help="start every load Client and iperf3 process in a session of its own (before 2026-11-26: "
                        "then autogroup scheduling gives the load generator one CPU share per process against the Gateway's one)")
    p.add_argument("--load-generator", choices=("both", "clients", "engine"), default="both",
                   help="the load of the many-peers test: M wireguard-go Clients with iperf3 (clients), M Clients "
                        "in one process of ours sending UDP (engine: scripts/bench/peers.py EngineLoad), or both (default)")
    p.add_argument("--no-peers", action="store_true", help="skip the peer-scaling figures")
    p.add_argument("--ping-only", action="store_true",
                   help="only ping through the tunnel (implies --no-peers); with --ping-count and --rounds for a larger sample")
    p.add_argument("--load-only", action="store_true",
                   help="only the many-peers test (1 peer, then --load-peers peers sending); with --rounds for a larger sample")
    p.add_argument("--out", default=os.path.join(REPO, "artifacts/bench"))
    a = p.parse_args()
    if a.self_test:
        a.quick = True
        a.impl_b = a.impl_b or WIREGUARD_GO
    if a.ping_only and a.load_only:
        p.error("--ping-only and --load-only exclude each other")
    if a.ping_only:
        a.no_peers = True
    if a.load_gomaxprocs < 0:
        p.error("--load-gomaxprocs must be 0 (the Go runtime's default) or more")
    if a.load_only and (a.no_peers or a.load_peers <= 0):
        p.error("--load-only needs the many-peers test: drop --no-peers, and --load-peers must be > 0")
    if a.seconds is None:
        a.seconds = 3 if a.quick else 10
    if a.impl_b is None:
        if not os.access(FIREZONE, os.X_OK):
            sys.exit(f"bench: implementation B {FIREZONE} is not built (dotnet build src/Host -c Release); "
                     f"pass --impl-b PATH or --self-test")
        a.impl_b = FIREZONE
    if not a.no_peers and a.load_peers > 0 and a.load_generator != "clients" and not os.path.isfile(GENERATOR):
        sys.exit(f"bench: the load generator {GENERATOR} is not built (dotnet build benchmarks/Benchmarks -c Release); "
                 f"pass --load-generator clients to do without it")
    for which, path in (("--impl-a", a.impl_a), ("--impl-b", a.impl_b), ("--load-client", a.load_client)):
        if not L.is_executable(path):
            sys.exit(f"bench: {which} {path}: not an executable file")
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (it creates network namespaces and TUN devices)")
    return a


def version(path):
    try:
        p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else None
    except Exception:
        return None


def names(a, b):
    na, nb = os.path.basename(a), os.path.basename(b)
    return (f"{na} (A)", f"{nb} (B)") if na == nb else (na, nb)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def summarize(runs, refs, npeers, nload):
    summary = {}
    for key, title, unit, better, target in METRICS:
        vals = {s: [r["metrics"].get(key) for r in runs if r["impl"] == s] for s in ("A", "B")}
        a, b = mean(vals["A"]), mean(vals["B"])
        met = None
        if target and a is not None and b is not None and a != 0:
            met = bool(target[1](a, b))
        summary[key] = {"title": title.replace("N peers", f"{npeers} peers").replace("M peers", f"{nload} peers"),
                        "unit": unit, "better": better, "A": a, "B": b,
                        "A_rounds": vals["A"], "B_rounds": vals["B"],
                        "ratio_B_over_A": (b / a) if a not in (None, 0) and b is not None else None,
                        "target": target[0] if target else None, "target_met": met}
    summary["bare_veth_ping_ms"] = {"title": "Ping on the bare veth, avg (reference)", "unit": "ms",
                                    "mean": mean(refs), "rounds": refs}
    return summary


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "KB" and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def print_table(summary, name_a, name_b):
    w = max(14, len(name_a), len(name_b))
    head = f"{'figure':40} {'unit':9} {name_a:>{w}} {name_b:>{w}} {'B/A':>7}  target"
    print(head)
    print("-" * len(head))
    for key, *_ in METRICS:
        s = summary[key]
        if s["A"] is None and s["B"] is None:
            continue
        met = "" if s["target_met"] is None else ("  met" if s["target_met"] else "  NOT met")
        ratio = f"{s['ratio_B_over_A']:.2f}" if s["ratio_B_over_A"] is not None else "n/a"
        print(f"{s['title']:40} {s['unit']:9} {fmt(s['A'], s['unit']):>{w}} {fmt(s['B'], s['unit']):>{w}} "
              f"{ratio:>7}  {s['target'] or ''}{met}")
    ref = summary["bare_veth_ping_ms"]
    print(f"{ref['title']:40} {'ms':9} {fmt(ref['mean']):>{w}}")


def write_chart(summary, name_a, name_b, meta, path):
    def bars(key):
        s = summary[key]
        return [(s["A"], s["A_rounds"]), (s["B"], s["B_rounds"])]

    def panel(title, unit, groups, note=None):
        return {"title": title, "unit": unit, "groups": groups, "note": note}

    def ratio_note(*keys):
        parts = [f"B/A {summary[k]['ratio_B_over_A']:.2f}" for k in keys if summary[k]["ratio_B_over_A"] is not None]
        return ", ".join(parts) or None

    ref = summary["bare_veth_ping_ms"]
    panels = [
        panel("TCP throughput", "Gbit/s (higher is better)",
              [("1 stream", bars("tcp1_gbps")), ("4 streams", bars("tcp4_gbps"))], ratio_note("tcp1_gbps", "tcp4_gbps")),
        panel("UDP 1392-byte datagrams, received", "Gbit/s (higher is better)",
              [("received", bars("udp_gbps"))], ratio_note("udp_gbps")),
        panel("UDP loss", "% of datagrams (lower is better)", [("loss", bars("udp_loss_pct"))], ratio_note("udp_loss_pct")),
        panel("Ping RTT, average", "ms (lower is better)",
              [("tunnel", bars("ping_ms")), ("ref:bare veth", [(ref["mean"], ref["rounds"])])], ratio_note("ping_ms")),
        panel("CPU-seconds per GB, both daemons", "CPU-s/GB (lower is better)",
              [("TCP 1", bars("tcp1_cpu_s_per_gb")), ("TCP 4", bars("tcp4_cpu_s_per_gb")), ("UDP", bars("udp_cpu_s_per_gb"))],
              ratio_note("tcp1_cpu_s_per_gb")),
    ]
    panels.append(panel("Idle tunnel, per daemon", "thread wake-ups per second (lower is better)",
                        [("wake-ups", bars("idle_wakeups_per_s"))], ratio_note("idle_wakeups_per_s")))
    # A partial run (--ping-only, --load-only) draws only the panels it measured; a reference
    # bar alone does not count as data.
    panels = [p for p in panels
              if any(mean is not None for label, group in p["groups"] if not label.startswith("ref:") for mean, _ in group)]
    if summary["addconf_s"]["A"] is not None or summary["addconf_s"]["B"] is not None:
        panels += [
            panel(summary["addconf_s"]["title"], "seconds (lower is better)", [("wg addconf", bars("addconf_s"))],
                  ratio_note("addconf_s")),
            panel("RSS growth per idle peer", "KB per peer (lower is better)", [("per peer", bars("rss_per_peer_kb"))],
                  ratio_note("rss_per_peer_kb")),
        ]
    if summary["one_peer_gbps"]["A"] is not None or summary["one_peer_gbps"]["B"] is not None:
        n = meta["load_peers"]
        panels.append(panel("Peers sending at once, total", "Gbit/s, TCP into the Gateway (higher is better)",
                            [("1 peer", bars("one_peer_gbps")), (f"{n} peers", bars("many_peers_gbps"))],
                            ratio_note("many_peers_gbps")))
    if summary["gen_one_peer_gbps"]["A"] is not None or summary["gen_one_peer_gbps"]["B"] is not None:
        n = meta["load_peers"]
        panels.append(panel("Peers sending at once, engine load generator", "Gbit/s, UDP into the Gateway (higher is better)",
                            [("1 peer", bars("gen_one_peer_gbps")), (f"{n} peers", bars("gen_many_peers_gbps"))],
                            ratio_note("gen_many_peers_gbps")))
    subtitle = (f"{meta['time']}  {meta['seconds']} s per iperf3 run, {meta['rounds']} rounds A B / B A alternated; "
                f"bars: mean, dots: rounds; kernel {meta['kernel']}, {meta['cpus']} CPUs")
    chart.render("WireGuard userspace: side by side in a two-namespace veth lab", subtitle,
                 [f"A: {name_a}", f"B: {name_b}", "reference"], panels, path)


def preflight(lab, impls):
    """Starts each implementation once, so one that cannot run at all stops the benchmark in
    seconds with its own words, not after minutes of measuring the other one."""
    for which, binary in impls.items():
        ifname = lab.new_ifname("p")
        log_name = f"preflight-{which}-{ifname}.log"
        try:
            lab.stop(lab.start_daemon(binary, lab.ns_b, ifname, log_name))
        except Exception as e:
            with open(os.path.join(lab.log_dir, log_name), errors="replace") as f:
                tail = f.read().strip().splitlines()[-3:]
            raise SystemExit(f"bench: implementation {which} cannot run: {e}" + "".join(f"\n  | {t}" for t in tail))


def main():
    a = parse_args()
    L.exit_on_stop_signals()
    os.makedirs(a.out, exist_ok=True)
    log_dir = os.path.join(a.out, "logs")
    shutil.rmtree(log_dir, ignore_errors=True)
    os.makedirs(log_dir)
    name_a, name_b = names(a.impl_a, a.impl_b)
    impls = {"A": a.impl_a, "B": a.impl_b}
    meta = {"time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(sys.argv), "seconds": a.seconds, "rounds": a.rounds,
            "ping_count": a.ping_count, "ping_interval_s": a.ping_interval, "idle_peers": 0 if a.no_peers or a.load_only else a.peers,
            "load_peers": 0 if a.no_peers else a.load_peers, "load_client": a.load_client, "load_gomaxprocs": a.load_gomaxprocs,
            "load_own_sessions": a.load_own_sessions, "load_generator": a.load_generator,
            "A": {"name": name_a, "path": a.impl_a, "version": version(a.impl_a)},
            "B": {"name": name_b, "path": a.impl_b, "version": version(a.impl_b)},
            "kernel": platform.release(), "cpus": os.cpu_count(), "clk_tck": M.CLK_TCK,
            "iperf3": subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}
    print(f"bench: A = {a.impl_a}\n       B = {a.impl_b}\n       {a.rounds} rounds, {a.seconds} s per iperf3 run, "
          f"logs in {log_dir}")
    runs, refs = [], []
    lab = L.Lab(log_dir)
    started = time.monotonic()
    try:
        lab.create()
        print(f"bench: lab namespaces {lab.ns_a} and {lab.ns_b}")
        preflight(lab, impls)
        loads = []
        if not a.no_peers and a.load_peers > 0 and a.load_generator in ("both", "clients"):
            print(f"bench: starting {a.load_peers} load Clients ({os.path.basename(a.load_client)})")
            loads.append(peers.LoadClients(lab, a.load_client, a.load_peers, a.load_gomaxprocs, a.load_own_sessions))
        if not a.no_peers and a.load_peers > 0 and a.load_generator in ("both", "engine"):
            loads.append(peers.EngineLoad(lab, GENERATOR, a.load_peers))
        for r in range(1, a.rounds + 1):
            refs.append(M.ping_avg_ms(lab, lab.ns_a, L.UNDERLAY_B, count=a.ping_count, interval=a.ping_interval))
            # Counterbalanced, A B then B A: neither implementation always runs right after the
            # other (the many-peers test shares its load Clients and iperf3 servers between them).
            for which in (("A", "B") if r % 2 == 1 else ("B", "A")):
                binary, label = impls[which], f"r{r}-{which}"
                if a.load_only:
                    metrics, errors = {}, {}
                else:
                    print(f"bench: round {r}, {which} ({os.path.basename(binary)}): pair", flush=True)
                    metrics, errors = pair.run_pair(lab, binary, label, a.seconds, a.ping_count, ping_only=a.ping_only,
                                                    ping_interval=a.ping_interval)
                if not a.no_peers and not a.load_only:
                    print(f"bench: round {r}, {which}: {a.peers} idle peers", flush=True)
                    try:
                        metrics.update(peers.idle_peer_cost(lab, binary, label, a.peers))
                    except Exception as e:
                        errors["idle_peers"] = str(e)
                for load in loads:
                    kind = "engine load generator" if isinstance(load, peers.EngineLoad) else "wireguard-go Clients"
                    print(f"bench: round {r}, {which}: {a.load_peers} peers sending ({kind})", flush=True)
                    try:
                        metrics.update(load.measure(binary, label, max(a.seconds, peers.MIN_SECONDS)))
                    except Exception as e:
                        errors["load_peers_engine" if isinstance(load, peers.EngineLoad) else "load_peers"] = str(e)
                for k, v in errors.items():
                    print(f"bench: round {r}, {which}: {k} failed: {v}")
                runs.append({"round": r, "impl": which, "metrics": metrics, "errors": errors})
    finally:
        lab.close()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(runs, refs, a.peers, a.load_peers)
    results = {"meta": meta, "summary": summary, "runs": runs}
    json_path, svg_path = os.path.join(a.out, "results.json"), os.path.join(a.out, "results.svg")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    write_chart(summary, name_a, name_b, meta, svg_path)
    print()
    print_table(summary, name_a, name_b)
    print()
    print(f"bench: wrote {json_path} and {svg_path} ({meta['duration_s']} s)")
    if shutil.which("rsvg-convert"):
        png = os.path.join(a.out, "results.png")
        subprocess.run(["rsvg-convert", "-o", png, svg_path], check=False, timeout=60)
        print(f"bench: wrote {png}")
    failed = any(r["errors"] for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
