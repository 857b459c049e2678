"""One measurement each: iperf3 throughput, ping RTT, CPU ticks and RSS from /proc."""

import json
import os
import re
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")  # the same value `getconf CLK_TCK` prints


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread, including exited ones) in seconds,
    fields 14 and 15 of /proc/PID/stat (proc(5)); the command name may contain spaces, so the
    fields are counted after its closing parenthesis."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def context_switches(pid):
    """{TID: voluntary + involuntary context switches} of the process's live threads (proc(5),
    /proc/PID/task/TID/status): how often each thread was woken or preempted. A thread that exits
    takes its count with it; compare two samples with context_switches_between."""
    counts = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                counts[tid] = sum(int(line.split()[1]) for line in f
                                  if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
        except FileNotFoundError:
            pass  # the thread exited
    return counts


def context_switches_between(before, after):
    """(switches from `before` to `after`, threads that exited in between). A thread started in
    between counts from 0; one that exited is missing from the sum (its last count is unknown), so
    a non-zero second value says the first is low."""
    total = sum(count - before.get(tid, 0) for tid, count in after.items())
    return total, len(set(before) - set(after))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status: no VmRSS line")


def iperf3(lab, ns, server, seconds, streams=1, udp=False, port=5201, bind=None, timeout_extra=30):
    """Runs one iperf3 client in `ns`; returns the parsed JSON (`end.sum_received` is what the
    receiver got, for TCP and UDP alike)."""
    args = ["iperf3", "-c", server, "-p", str(port), "-t", str(seconds), "-J"]
    if streams > 1:
        args += ["-P", str(streams)]
    if udp:
        # 1392-byte datagrams fill the 1420-byte tunnel MTU; 2 Gbit/s is above what either side
        # can carry, so the figure is the tunnel's ceiling and the loss says who gave up.
        args += ["-u", "-b", "2G", "-l", "1392"]
    if bind:
        args += ["-B", bind]
    out = lab.ns(ns, *args, timeout=seconds + timeout_extra, check=False)
    try:
        result = json.loads(out)
    except json.JSONDecodeError:
        raise RuntimeError(f"iperf3 {' '.join(args)}: no JSON output: {out[:200]}")
    if "error" in result:
        raise RuntimeError(f"iperf3 {' '.join(args)}: {result['error']}")
    return result


def received(result):
    """(bits per second, bytes, loss percent or None) as seen by the receiver."""
    r = result["end"]["sum_received"]
    return r["bits_per_second"], r["bytes"], r.get("lost_percent")


def ping_ms(lab, ns, target, count=50, interval=0.05):
    """(min, avg, max) RTT in ms from ping's summary line."""
    args = ["ping", "-q", "-c", str(count), "-i", str(interval), "-W", "2", target]
    out = lab.ns(ns, *args, timeout=count * interval + 30, check=False)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+ ms", out)
    if not m:
        raise RuntimeError(f"ping {target} from {ns}: no RTT line in: {out.strip()[-200:]}")
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def ping_avg_ms(lab, ns, target, count=50, interval=0.05):
    return ping_ms(lab, ns, target, count, interval)[1]


def wait_for_tunnel(lab, ns, target, timeout=20.0, source=None):
    """Pings until the first reply: the first packet starts the handshake."""
    deadline = time.monotonic() + timeout
    args = ["ping", "-q", "-c", "1", "-W", "1"] + (["-I", source] if source else []) + [target]
    while time.monotonic() < deadline:
        out = lab.ns(ns, *args, timeout=10, check=False)
        if " 1 received" in out:
            return
    raise RuntimeError(f"no reply from {target} in {ns} through the tunnel after {timeout} s")


def wait_for_listen(lab, ns, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f":{port} " in lab.ns(ns, "ss", "-Hltn", timeout=10, check=False):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on TCP port {port} in {ns} after {timeout} s")
