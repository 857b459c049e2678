"""Where one ping's time goes through a tunnel: a probe, not a benchmark.

For each binary given, starts a pair of daemons in the benchmark's lab (namespaces A and B, as
bench.py does), warms the tunnel up as the benchmark does (200 pings at 0.01 s), then pings B from A
(--count pings at --interval s) under `perf sched record -a` and reads the scheduler's events back
with `perf sched timehist -w`. Every ping is cut into the steps a packet takes, each measured from
the wake-up of ping by its timer:
- request in TUN: ping wrote the request, which woke a thread of the Client daemon;
- datagram at Gateway: a Client thread's send woke a thread of the Gateway daemon;
- reply datagram at Client: a Gateway thread's send woke a thread of the Client daemon (absent when
  a Client thread was polling for it and nothing had to be woken);
- reply to ping: a Client thread's write into the TUN device woke ping.
It prints the median and 90th percentile of each step over the pings, and ping's own summary.

    python3 -B scripts/bench/pingtrace.py [--count N] [--interval S] BINARY [BINARY ...]

Run as root; needs perf (Debian package linux-perf). The recording is kept in artifacts/bench/
(pingtrace-N.data) for `perf sched timehist -i FILE -w` by hand. It creates and removes its own
namespaces and stops every process it started by PID, also on Ctrl-C or SIGTERM.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import time

import lab as L
import pair

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "artifacts", "bench")
STEPS = ["request in TUN", "datagram at Gateway", "reply datagram at Client", "reply to ping"]

# "   50496.624223 [0000]  ping[26105]    awakened: tun-reader fz0[26087/26045]"; an idle CPU's
# waker is "swapper", without an ID.
EVENT = re.compile(r"^\s*([\d.]+)\s+\[(\d+)\]\s+(\S.*?)\s+awakened: (.+?)\[(\d+)(?:/(\d+))?\]\s*$")
TASK = re.compile(r"^(.+?)\[(\d+)(?:/(\d+))?\]$")


def wake_ups(timehist):
    """[(time s, waker pid or 0, wakee name, wakee pid)] from `perf sched timehist -w` output."""
    events = []
    for line in timehist.splitlines():
        m = EVENT.match(line)
        if m:
            t, _, waker, wakee, wakee_tid, wakee_pid = m.groups()
            w = TASK.match(waker.strip())
            waker_pid = int(w.group(3) or w.group(2)) if w else 0
            events.append((float(t), waker_pid, wakee, int(wakee_pid or wakee_tid)))
    return events


def steps(events, ping_pid, client, gateway):
    """{step: [microseconds from ping's timer wake-up]} over every complete ping."""
    out = {s: [] for s in STEPS}
    start, seen = None, {}
    for t, waker, _, wakee in events:
        if wakee == ping_pid and waker not in (client, gateway):
            start, seen = t, {}  # ping's timer: a new ping starts
        elif start is None:
            continue
        elif waker == ping_pid and wakee == client:
            seen.setdefault(STEPS[0], t)
        elif waker == client and wakee == gateway:
            seen.setdefault(STEPS[1], t)
        elif waker == gateway and wakee == client and STEPS[1] in seen:
            seen.setdefault(STEPS[2], t)
        elif waker == client and wakee == ping_pid:
            seen.setdefault(STEPS[3], t)
            if STEPS[0] in seen and STEPS[1] in seen:
                for step, at in seen.items():
                    out[step].append((at - start) * 1e6)
            start = None
    return out


def trace(lab, binary, label, count, interval, data):
    procs = []
    try:
        pair.start_pair(lab, binary, label, procs)
        pair.warm_up(lab)
        time.sleep(1.0)
        recorder = subprocess.Popen(["perf", "sched", "record", "-a", "-o", data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lab.procs.append(recorder)
        try:
            time.sleep(1.0)  # perf is recording
            ping = lab.spawn(lab.ns_a, ["ping", "-c", str(count), "-i", str(interval), "-W", "2", L.TUNNEL_B], f"{label}-ping.log")
            ping.wait(timeout=count * interval + 30)
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
            lab.procs.remove(recorder)
        timehist = subprocess.run(["perf", "sched", "timehist", "-i", data, "-w"], capture_output=True, text=True, check=True).stdout
        with open(os.path.join(lab.log_dir, f"{label}-ping.log")) as f:
            summary = [line for line in f.read().splitlines() if line.startswith("rtt ")]  # the log is appended to: the last is this run's
        return wake_ups(timehist), ping.pid, procs[0].pid, procs[1].pid, summary
    finally:
        for p in reversed(procs):
            lab.stop(p)


def main():
    L.exit_on_stop_signals()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binaries", nargs="+", help="daemons to trace, run like wireguard-go (BINARY -f IFNAME)")
    p.add_argument("--count", type=int, default=30, help="pings to trace (default 30)")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between pings (default 0.05, as the benchmark)")
    a = p.parse_args()
    if a.count < 1 or a.interval < 0.01:
        p.error("--count must be at least 1 and --interval at least 0.01")
    for path in a.binaries:
        if not L.is_executable(path):
            p.error(f"{path}: not an executable file")
    if not shutil.which("perf"):
        p.error("perf not found: install the Debian package linux-perf")
    if os.geteuid() != 0:
        p.error("run as root: the probe creates network namespaces and records the scheduler")
    os.makedirs(OUT, exist_ok=True)
    lab = L.Lab(os.path.join(OUT, "pingtrace-logs"))
    os.makedirs(lab.log_dir, exist_ok=True)
    try:
        lab.create()
        for i, binary in enumerate(a.binaries):
            data = os.path.join(OUT, f"pingtrace-{i}.data")
            events, ping_pid, client, gateway, summary = trace(lab, binary, f"trace{i}", a.count, a.interval, data)
            by_step = steps(events, ping_pid, client, gateway)
            print(f"{binary}: {summary[-1] if summary else 'no ping summary'} ({data})", flush=True)
            for step in STEPS:
                values = sorted(by_step[step])
                if values:
                    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
                    print(f"  {step:<26} median {statistics.median(values):6.0f} us  p90 {p90:6.0f} us  ({len(values)} pings)", flush=True)
                else:
                    print(f"  {step:<26} not seen", flush=True)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
