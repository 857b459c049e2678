#!/usr/bin/env python3
"""What one wake-up of a sleeping thread costs on this machine, after idle as between pings.

Two processes play ping-pong over two pipes: the first writes a byte and blocks reading the answer;
the second, blocked reading, wakes, writes the byte back. Each exchange is two wake-ups. Between
exchanges both sleep `--gap` seconds (ping's 0.05 s by default), so each exchange starts from idle
CPUs, as each ping through the tunnel does. Run once with the two processes on different CPUs and
once on the same CPU; the difference is what waking an idle CPU adds (on a VM: the hypervisor
waking a halted vCPU). A ping through the tunnel has at least three such wake-ups that neither
implementation can avoid without a thread spinning all the time: the Client's TUN reader (woken by
ping's write), the Gateway's socket reader (woken by the datagram) and ping itself (woken by the
reply the Client writes); see the README, "Why the ping target is not met".

Usage: python3 -B scripts/bench/wakeup.py [--count N] [--gap SECONDS]
"""
import argparse
import os
import statistics
import time


def exchange(cpu_a, cpu_b, count, gap):
    """Round-trip times (microseconds) of `count` exchanges, process A on cpu_a, B on cpu_b."""
    a_to_b_r, a_to_b_w = os.pipe()
    b_to_a_r, b_to_a_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {cpu_b})
        for _ in range(count + 1):
            if not os.read(a_to_b_r, 1):
                break
            os.write(b_to_a_w, b"x")
        os._exit(0)
    os.sched_setaffinity(0, {cpu_a})
    times = []
    try:
        for i in range(count + 1):
            time.sleep(gap)
            t0 = time.perf_counter_ns()
            os.write(a_to_b_w, b"x")
            os.read(b_to_a_r, 1)
            if i > 0:  # the first exchange warms up
                times.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        os.close(a_to_b_w)
        os.waitpid(pid, 0)
        for fd in (a_to_b_r, b_to_a_r, b_to_a_w):
            os.close(fd)
    return times


def describe(label, times):
    times = sorted(times)
    p90 = times[int(len(times) * 0.9)]
    print(f"{label:<28} median {statistics.median(times):7.1f} us   mean {statistics.fmean(times):7.1f} us   p90 {p90:7.1f} us")
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="exchanges per placement (default 200)")
    parser.add_argument("--gap", type=float, default=0.05, help="idle seconds before each exchange (default 0.05, as the benchmark's pings)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs")
    print(f"{args.count} exchanges (two wake-ups each) after {args.gap * 1000:.0f} ms idle")
    other = describe(f"CPUs {cpus[0]} and {cpus[1]}", exchange(cpus[0], cpus[1], args.count, args.gap))
    same = describe(f"both on CPU {cpus[0]}", exchange(cpus[0], cpus[0], args.count, args.gap))
    awake = describe(f"CPUs {cpus[0]} and {cpus[1]}, no gap", exchange(cpus[0], cpus[1], args.count, 0))
    # Each exchange is two wake-ups, each with a write and a read (Python and the system calls included).
    print(f"per wake-up: {other / 2:.0f} us to another CPU after idle, {awake / 2:.0f} us to another CPU without idle, "
          f"{same / 2:.0f} us on the same CPU after idle; idle adds {(other - awake) / 2:.0f} us")


if __name__ == "__main__":
    main()
