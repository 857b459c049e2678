"""Where the Gateway's time goes in the many-peers test: a probe, not a benchmark.

Runs the many-peers test of the benchmark (peers.py: N wireguard-go Clients, one Gateway under
test, one peer sending alone and then N at once) for each binary given, alternated over rounds, and
for every phase prints, besides the rate:
- each busy Gateway thread's CPU time, time on the CPU and time waiting in the run queue
  (/proc/PID/task/TID/schedstat), context switches and CPU migrations;
- the Gateway's CPU-seconds per Gbit/s-second of the phase (its cost per byte);
- how the machine's CPU time was spent (/proc/stat) and the busiest commands.
A reader thread that waits seconds in the run queue is starved by the load generator, not slow.

    python3 -B scripts/bench/phases.py [--rounds N] [--peers N] [--seconds N] BINARY [BINARY ...]

Run as root, on an otherwise idle machine (it creates and removes its own namespaces, like the
benchmark). The Clients use GOMAXPROCS=1 and share the probe's session, as in the benchmark.
"""

import argparse
import glob
import os
import threading
import time

import lab as L
import measure as M
import peers as P

SAMPLE_EVERY = 0.05
CPU_FIELDS = "user nice system idle iowait irq softirq steal".split()


def threads(pid):
    """{TID: (name, cpu ticks, on-CPU ns, run-queue ns, context switches, migrations)} of a process."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(task + "/stat") as f:
                raw = f.read()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2:].split()
            with open(task + "/schedstat") as f:
                on_cpu, waiting = (int(x) for x in f.read().split()[:2])
            switches = migrations = 0
            with open(task + "/status") as f:
                switches = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            with open(task + "/sched") as f:
                migrations = next((int(line.split()[-1]) for line in f if line.startswith("se.nr_migrations")), 0)
            out[os.path.basename(task)] = (name, int(fields[11]) + int(fields[12]), on_cpu, waiting, switches, migrations)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass  # the thread exited
    return out


def commands():
    """{command name: CPU ticks} over every process of the machine."""
    out = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                raw = f.read()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2:].split()
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def machine_cpu():
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


class ProbedLoad(P.LoadClients):
    """The benchmark's load generator; each phase is also sampled as described above."""

    def _send(self, count, seconds, gw_ifname):
        pid, samples, stop = self.gateway_pid, [], threading.Event()

        def sample():
            # The same window as the rate: from WINDOW_START after the flows start.
            if not stop.wait(P.WINDOW_START):
                samples.append(threads(pid))
                stop.wait(seconds - P.WINDOW_START - P.WINDOW_END_BEFORE)
                samples.append(threads(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        c0, s0 = commands(), machine_cpu()
        sampler.start()
        result = super()._send(count, seconds, gw_ifname)
        stop.set()
        sampler.join()
        c1, s1 = commands(), machine_cpu()
        report(count, result, samples, c0, c1, s0, s1)
        return result


def report(count, result, samples, c0, c1, s0, s1):
    tck = M.CLK_TCK
    print(f"  {count} peer(s): {result['gbps']:.3f} Gbit/s over {result['window_s']:.1f} s", flush=True)
    if len(samples) == 2:
        first, last = samples
        rows, gateway_cpu = [], 0.0
        for tid, (name, cpu, on_cpu, waiting, switches, migrations) in last.items():
            if tid not in first:
                continue
            f = first[tid]
            cpu_s = (cpu - f[1]) / tck
            gateway_cpu += cpu_s
            if cpu_s >= 0.05:
                rows.append((cpu_s, name, (on_cpu - f[2]) / 1e9, (waiting - f[3]) / 1e9, switches - f[4], migrations - f[5]))
        for cpu_s, name, on_cpu, waiting, switches, migrations in sorted(rows, reverse=True):
            print(f"    {name:<20} cpu {cpu_s:5.2f} s  on-cpu {on_cpu:5.2f} s  run-queue {waiting:5.2f} s  "
                  f"switches {switches:6d}  migrations {migrations:5d}", flush=True)
        if result["gbps"]:
            print(f"    Gateway: {gateway_cpu:.2f} CPU-s in the window, {gateway_cpu / (result['gbps'] * result['window_s']):.2f} "
                  f"CPU-s per Gbit/s-second", flush=True)
    spent = {n: round((b - a) / tck, 1) for n, a, b in zip(CPU_FIELDS, s0, s1) if b - a}
    busiest = sorted(((round((c1.get(k, 0) - c0.get(k, 0)) / tck, 1), k) for k in c1), reverse=True)[:5]
    print(f"    machine CPU-s: {spent}; busiest: {busiest}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binaries", nargs="+", help="Gateways to probe, run like wireguard-go (BINARY -f IFNAME)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--peers", type=int, default=100)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--load-client", default="/usr/bin/wireguard-go")
    a = p.parse_args()
    if a.seconds < P.MIN_SECONDS:
        p.error(f"--seconds must be at least {P.MIN_SECONDS}")
    if os.geteuid() != 0:
        p.error("run as root: the probe creates network namespaces")
    lab = L.Lab(os.path.join("artifacts", "bench", "phases-logs"))
    os.makedirs(lab.log_dir, exist_ok=True)
    try:
        lab.create()
        load = ProbedLoad(lab, a.load_client, a.peers, gomaxprocs=P.CLIENT_GOMAXPROCS)
        for r in range(a.rounds):
            order = a.binaries if r % 2 == 0 else list(reversed(a.binaries))
            for binary in order:
                print(f"round {r + 1}: {binary}", flush=True)
                out = load.measure(binary, f"probe{r}", a.seconds)
                print(f"  {a.peers} peers / 1 peer: {out['many_over_one']:.2f}", flush=True)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
