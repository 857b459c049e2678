"""Where the Gateway's time goes in the many-peers test: a probe, not a benchmark.

Runs the many-peers test of the benchmark (peers.py: N wireguard-go Clients, one Gateway under
test, one peer sending alone and then N at once) for each binary given, alternated over rounds, and
for every phase prints, besides the rate:
- each busy Gateway thread's CPU time, time on the CPU and time waiting in the run queue
  (/proc/PID/task/TID/schedstat), context switches and CPU migrations;
- the Gateway's CPU-seconds per Gbit/s-second (its cost per byte; every thread, also those that
  started or ended in the window);
- how the machine's CPU time was spent (/proc/stat) and the busiest commands still running at the
  end of the window;
- what the rest of the machine (the load generator and the kernel outside the Gateway's threads)
  spent per Gbit/s-second, and so the most the phase could carry with a Gateway that cost nothing
  (the machine's cores over that figure).
All of them cover the same window: from 2 s after the flows start to 1 s before they end. A reader
thread that waits seconds in the run queue is starved by the load generator, not slow.

    python3 -B scripts/bench/phases.py [--rounds N] [--peers N] [--seconds N] BINARY [BINARY ...]

Run as root, on an otherwise idle machine: it creates and removes its own namespaces and stops
every process it started by PID, as the benchmark does (also on Ctrl-C or SIGTERM). The Clients use
GOMAXPROCS=1 and share the probe's session, as in the benchmark. Logs go to artifacts/bench/phases-logs.
"""

import argparse
import glob
import os
import threading
import time

import lab as L
import measure as M
import peers as P

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CPU_FIELDS = "user nice system idle iowait irq softirq steal".split()


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def threads(pid):
    """{TID: (name, CPU ticks, on-CPU ns, run-queue ns, context switches, migrations)} of the live
    threads of a process. A figure the kernel does not offer (schedstat or sched missing) is 0."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        raw = _read(task + "/stat")
        if raw is None:
            continue  # the thread exited
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        on_cpu = waiting = switches = migrations = 0
        if (schedstat := _read(task + "/schedstat")) is not None:
            on_cpu, waiting = (int(x) for x in schedstat.split()[:2])
        if (status := _read(task + "/status")) is not None:
            switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
        if (sched := _read(task + "/sched")) is not None:
            migrations = next((int(line.split()[-1]) for line in sched.splitlines() if line.startswith("se.nr_migrations")), 0)
        out[os.path.basename(task)] = (name, int(fields[11]) + int(fields[12]), on_cpu, waiting, switches, migrations)
    return out


def commands():
    """{command name: CPU ticks} over every live process of the machine."""
    out = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        raw = _read(stat)
        if raw is None:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def machine_cpu():
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def snapshot(pid):
    return {"at": time.monotonic(), "threads": threads(pid), "gateway_cpu": M.cpu_seconds(pid),
            "commands": commands(), "machine": machine_cpu()}


class ProbedLoad(P.LoadClients):
    """The benchmark's load generator; each phase is also sampled as described above."""

    def _send(self, count, seconds, gw_ifname):
        pid, samples, stop = self.gateway_pid, [], threading.Event()

        def sample():
            # The rate's window: from WINDOW_START after the flows start to WINDOW_END_BEFORE before they end.
            start = time.monotonic()
            if not stop.wait(P.WINDOW_START):
                samples.append(snapshot(pid))
                if not stop.wait(max(0.0, start + seconds - P.WINDOW_END_BEFORE - time.monotonic())):
                    samples.append(snapshot(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = super()._send(count, seconds, gw_ifname)
        finally:
            stop.set()
            sampler.join()
        report(count, result, samples)
        return result


def report(count, result, samples):
    tck = M.CLK_TCK
    print(f"  {count} peer(s): {result['gbps']:.3f} Gbit/s over {result['window_s']:.1f} s", flush=True)
    if len(samples) != 2:
        print("    (the phase ended before its window: no samples)", flush=True)
        return
    first, last = samples
    window = last["at"] - first["at"]
    rows = []
    for tid, (name, cpu, on_cpu, waiting, switches, migrations) in last["threads"].items():
        f = first["threads"].get(tid, (name, 0, 0, 0, 0, 0))  # a thread started in the window counts from 0
        cpu_s = (cpu - f[1]) / tck
        if cpu_s >= 0.05:
            rows.append((cpu_s, name, (on_cpu - f[2]) / 1e9, (waiting - f[3]) / 1e9, switches - f[4], migrations - f[5]))
    for cpu_s, name, on_cpu, waiting, switches, migrations in sorted(rows, reverse=True):
        print(f"    {name:<20} cpu {cpu_s:5.2f} s  on-cpu {on_cpu:5.2f} s  run-queue {waiting:5.2f} s  "
              f"switches {switches:6d}  migrations {migrations:5d}", flush=True)
    gateway_cpu = last["gateway_cpu"] - first["gateway_cpu"]
    per_byte = f", {gateway_cpu / (result['gbps'] * window):.2f} CPU-s per Gbit/s-second" if result["gbps"] else ""
    print(f"    Gateway: {gateway_cpu:.2f} CPU-s in {window:.1f} s{per_byte}", flush=True)
    spent = {n: round((b - a) / tck, 1) for n, a, b in zip(CPU_FIELDS, first["machine"], last["machine"]) if b != a}
    c0, c1 = first["commands"], last["commands"]
    busiest = sorted(((round((c1[k] - c0.get(k, 0)) / tck, 1), k) for k in c1), reverse=True)[:5]
    print(f"    machine CPU-s: {spent}; busiest: {busiest}", flush=True)
    # What the rest of the machine (Clients, iperf3, the kernel's share outside the Gateway's threads)
    # spent per Gbit/s-second, and so the most this phase could carry if the Gateway cost nothing.
    busy = sum(spent.get(n, 0.0) for n in CPU_FIELDS if n not in ("idle", "iowait"))
    rest = busy - gateway_cpu
    if result["gbps"] and rest > 0:
        rest_per = rest / (result["gbps"] * window)
        print(f"    the rest: {rest_per:.2f} CPU-s per Gbit/s-second; with a Gateway that cost nothing, "
              f"at most {os.cpu_count() / rest_per:.2f} Gbit/s", flush=True)


def main():
    L.exit_on_stop_signals()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binaries", nargs="+", help="Gateways to probe, run like wireguard-go (BINARY -f IFNAME)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, each binary once per round, order alternating (default 2)")
    p.add_argument("--peers", type=int, default=100, help="Clients sending at once in the many-peers phase (default 100)")
    p.add_argument("--seconds", type=int, default=10, help=f"seconds per phase, at least {P.MIN_SECONDS} (default 10)")
    p.add_argument("--load-client", default="/usr/bin/wireguard-go", help="the Clients' binary (default /usr/bin/wireguard-go)")
    a = p.parse_args()
    if a.seconds < P.MIN_SECONDS:
        p.error(f"--seconds must be at least {P.MIN_SECONDS}")
    if a.rounds < 1 or a.peers < 2:
        p.error("--rounds must be at least 1 and --peers at least 2")
    for path in a.binaries + [a.load_client]:
        if not L.is_executable(path):
            p.error(f"{path}: not an executable file")
    if os.geteuid() != 0:
        p.error("run as root: the probe creates network namespaces")
    lab = L.Lab(os.path.join(REPO, "artifacts", "bench", "phases-logs"))
    os.makedirs(lab.log_dir, exist_ok=True)
    try:
        lab.create()
        load = ProbedLoad(lab, a.load_client, a.peers, gomaxprocs=P.CLIENT_GOMAXPROCS)
        for r in range(a.rounds):
            for binary in a.binaries if r % 2 == 0 else list(reversed(a.binaries)):
                print(f"round {r + 1}: {binary}", flush=True)
                out = load.measure(binary, f"probe{r}", a.seconds)
                ratio = out["many_over_one"]
                print(f"  {a.peers} peers / 1 peer: " + (f"{ratio:.2f}" if ratio is not None else "n/a (no rate with one peer)"), flush=True)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
