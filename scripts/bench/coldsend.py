#!/usr/bin/env python3
"""What one UDP send through the benchmark's veth costs after a pause, as between pings.

A receiver in namespace B blocks in `recv`; a sender in namespace A sends one 128-byte datagram
(the size of a ping through the tunnel) after each pause of `--gaps` seconds and times the `sendto`
call alone. On a veth the call runs the other namespace's receive path too (IP, UDP, the socket
queue, the receiver's wake-up), so it is the kernel work a tunnel daemon pays for every datagram
it sends. Each gap is measured twice: once with the sender sleeping through the pause (its CPU may
go idle), once with it spinning (its CPU never idles). If the spinning sender's sends are as slow
as the sleeping one's, what makes a send slow after a pause is the time that passed (caches and
TLBs refilled by others), not the sending CPU's idle state, and no daemon can avoid it by waking
sooner. See the README, "Why the ping target is not met".

Usage: python3 -B scripts/bench/coldsend.py [--count N] [--gaps S,S,...]   (root: namespaces)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import lab as L

PORT = 40000

# Runs inside namespace A: prints one line "gap mode median p10 p90" per measurement.
SENDER = r"""
import socket, statistics, sys, time
count, gaps, dst = int(sys.argv[1]), [float(g) for g in sys.argv[2].split(",")], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = b"x" * 128
for gap in gaps:
    for mode in ("sleeping", "spinning"):
        times = []
        for i in range(count + 1):
            if mode == "sleeping":
                time.sleep(gap)
            else:
                end = time.perf_counter() + gap
                while time.perf_counter() < end:
                    pass
            t0 = time.perf_counter_ns()
            s.sendto(data, (dst, %d))
            if i > 0:  # the first send of a series warms up
                times.append((time.perf_counter_ns() - t0) / 1000)
        times.sort()
        print(gap, mode, statistics.median(times), times[len(times) // 10], times[len(times) * 9 // 10], flush=True)
""" % PORT

RECEIVER = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', %d))\nwhile True:\n    s.recv(65536)\n" % PORT


def main():
    L.exit_on_stop_signals()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=200, help="sends per gap and mode (default 200)")
    p.add_argument("--gaps", default="0.0001,0.001,0.005,0.02,0.05", help="pauses in seconds (default 0.0001,0.001,0.005,0.02,0.05)")
    a = p.parse_args()
    try:
        gaps = [float(g) for g in a.gaps.split(",")]
    except ValueError:
        p.error(f"--gaps: not a comma-separated list of seconds: {a.gaps!r}")
    if a.count < 10 or not gaps or min(gaps) < 0:
        p.error("--count must be at least 10 and every gap at least 0")
    if os.geteuid() != 0:
        p.error("run as root: the probe creates network namespaces")
    lab = L.Lab(tempfile.mkdtemp(prefix="fz-coldsend-"))
    try:
        lab.create()
        lab.spawn(lab.ns_b, [sys.executable, "-c", RECEIVER], "receiver.log")
        time.sleep(0.5)
        out = subprocess.run(["ip", "netns", "exec", lab.ns_a, sys.executable, "-c", SENDER,
                              str(a.count), ",".join(str(g) for g in gaps), L.UNDERLAY_B],
                             capture_output=True, text=True, timeout=a.count * sum(gaps) * 2 + 120)
        if out.returncode != 0:
            raise RuntimeError(f"sender failed: {out.stderr.strip()}")
        print(f"{'pause':>8}  {'sender':<9} {'median':>9} {'p10':>9} {'p90':>9}   (us per sendto of 128 bytes)")
        for line in out.stdout.split("\n"):
            if line.strip():
                gap, mode, med, p10, p90 = line.split()
                print(f"{float(gap) * 1000:6.1f} ms  {mode:<9} {float(med):9.1f} {float(p10):9.1f} {float(p90):9.1f}")
    finally:
        lab.close()
        shutil.rmtree(lab.log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
