"""Summary of one scripts/lab/rekey-soak.sh run: handshakes and keepalives on the wire, ping loss and
RTT spikes around each handshake, iperf3 retransmits, counters of both sides, Warning/Error lines,
RSS and threads of every firezone-tunnel over time.

    python3 -B scripts/lab/rekey_soak_report.py OUT_DIR
"""
import json
import os
import re
import statistics
import struct
import sys

SPIKE_MS = 20.0  # an RTT above this is listed as a spike
WINDOW = (-1.0, 3.0)  # seconds around a handshake response looked at for loss and spikes


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def wire(path, addr_a):
    """Handshake messages and 32-byte transport messages (keepalives) from a libpcap file of the veth."""
    events = []
    data = open(path, "rb").read()
    if len(data) < 24:
        return events
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if len(pkt) < 14 + 20 + 8 + 1 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 0x0F) * 4
        src = ".".join(str(b) for b in ip[12:16])
        udp = ip[ihl:]
        length = struct.unpack(">H", udp[4:6])[0] - 8
        kind = udp[8]
        name = {1: "initiation", 2: "response", 3: "cookie"}.get(kind)
        if name is None and kind == 4 and length == 32:
            name = "keepalive"
        if name:
            events.append((t, "a" if src == addr_a else "b", name))
    return events


def pings(path):
    """(sent, {seq: (t, rtt)}, {seq: t of 'no answer yet'}, summary line)"""
    got, unanswered, sent, summary = {}, {}, 0, ""
    for line in read(path).splitlines():
        m = re.match(r"\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+) .*time=([\d.]+) ms", line)
        if m:
            got[int(m.group(2))] = (float(m.group(1)), float(m.group(3)))
            continue
        m = re.match(r"\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)", line)
        if m:
            unanswered.setdefault(int(m.group(2)), float(m.group(1)))
            continue
        m = re.match(r"(\d+) packets transmitted", line)
        if m:
            sent = int(m.group(1))
            summary = line
    return sent, got, unanswered, summary


def lost_times(sent, got, unanswered):
    """Seconds of each lost echo: its 'no answer yet' line, else interpolated between neighbours."""
    times = []
    seqs = sorted(got)
    for seq in range(1, sent + 1):
        if seq in got:
            continue
        if seq in unanswered:
            times.append((seq, unanswered[seq]))
            continue
        before = [s for s in seqs if s < seq][-1:] or [None]
        after = [s for s in seqs if s > seq][:1] or [None]
        if before[0] is not None:
            times.append((seq, got[before[0]][0] + 0.02 * (seq - before[0])))
        elif after[0] is not None:
            times.append((seq, got[after[0]][0] - 0.02 * (after[0] - seq)))
    return times


def bursts(lost):
    out = []
    for seq, t in lost:
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq, t])
    return out


def dump_peer(path):
    lines = read(path).strip().splitlines()
    if len(lines) < 2:
        return None
    f = lines[1].split("\t")
    return {"handshake": int(f[4]), "rx": int(f[5]), "tx": int(f[6]), "keepalive": f[7]}


def udp_snmp(path):
    if not os.path.exists(path):
        return {}
    head, values = read(path).strip().splitlines()[:2]
    return dict(zip(head.split()[1:], (int(v) for v in values.split()[1:])))


def fmt_t(t, t0):
    return f"+{t - t0:7.2f}s"


def main(out):
    setup = read(os.path.join(out, "setup.txt"))
    print("== " + setup.splitlines()[0])
    m = re.search(r"addresses a=(\S+)", setup)
    addr_a = m.group(1) if m else "192.168.94.1"
    phases = {}
    for line in read(os.path.join(out, "phases.txt")).splitlines():
        t, name = line.split()[:2]
        phases[name] = float(t)
    t0 = phases["first_ping"]
    impl = dict(re.findall(r"\b([ab])=(ours|wg)\b", setup))
    label = {s: f"{s} ({'firezone-tunnel' if impl.get(s) == 'ours' else 'wireguard-go'})" for s in "ab"}

    ev = wire(os.path.join(out, "wire.pcap"), addr_a)
    soak_end = phases.get("soak_end", float("inf"))
    print("-- handshake messages on the wire (time from the first ping)")
    for t, side, name in ev:
        if name != "keepalive":
            print(f"   {fmt_t(t, t0)} {label[side]:28} {name}")

    def count(side, name, lo, hi):
        return sum(1 for t, s, n in ev if s == side and n == name and lo <= t < hi)

    spans = [("soak", t0, soak_end)]
    if "idle_ping" in phases:
        spans.append(("idle (from soak end to 3 s after the ping)", soak_end, phases["idle_end"]))
    if "keepalive_start" in phases:
        spans.append(("keepalive", phases["keepalive_start"], phases["keepalive_end"] + 1))
    for name, lo, hi in spans:
        print(f"-- {name}: {hi - lo:.0f} s")
        for s in "ab":
            print(f"   {label[s]:28} initiations {count(s, 'initiation', lo, hi)}, responses {count(s, 'response', lo, hi)}, "
                  f"cookies {count(s, 'cookie', lo, hi)}, 32-byte keepalives {count(s, 'keepalive', lo, hi)}")

    # latest-handshakes changes as wg show reports them
    changes = {"a": [], "b": []}
    last = {"a": None, "b": None}
    procs = {}
    for line in read(os.path.join(out, "monitor.txt")).splitlines():
        f = line.split()
        if len(f) == 4 and f[1] == "hs":
            for s, v in (("a", f[2]), ("b", f[3])):
                if v != last[s] and v not in ("x", "0"):
                    changes[s].append((float(f[0]), int(v)))
                last[s] = v
        elif len(f) == 6 and f[1] == "proc":
            procs.setdefault(f[2], []).append((float(f[0]), int(f[3]), int(f[4]), int(f[5])))
    print("-- wg show latest-handshakes: each new value (time seen, value)")
    for s in "ab":
        print(f"   {label[s]:28} " + ", ".join(f"{fmt_t(seen, t0)} ({fmt_t(v, t0)})" for seen, v in changes[s]))

    responses = [t for t, s, n in ev if n == "response"]
    for s, title in (("a", f"{label['a']} -> b"), ("b", f"{label['b']} -> a"), ("veth", "a -> b on the bare veth (reference)")):
        path = os.path.join(out, f"ping-{s}.txt")
        if not os.path.exists(path):
            continue
        sent, got, unanswered, summary = pings(path)
        rtts = [r for _, r in got.values()]
        lost = lost_times(sent, got, unanswered)
        print(f"-- ping {title}: {summary}")
        if rtts:
            q = statistics.quantiles(rtts, n=1000)
            print(f"   RTT median {statistics.median(rtts):.3f} ms, p99 {q[989]:.3f}, p99.9 {q[998]:.3f}, max {max(rtts):.1f} ms; "
                  f"{sum(1 for r in rtts if r > SPIKE_MS)} above {SPIKE_MS:.0f} ms")
        for first, last_seq, t in bursts(lost):
            print(f"   lost icmp_seq {first}-{last_seq} ({last_seq - first + 1}) at {fmt_t(t, t0)}")
        spikes = sorted((t, r) for t, r in got.values() if r > SPIKE_MS)
        episodes = []  # spikes less than a second apart: one stall
        for t, r in spikes:
            if episodes and t - episodes[-1][1] < 1.0:
                episodes[-1][1] = t
                episodes[-1][2] += 1
                episodes[-1][3] = max(episodes[-1][3], r)
            else:
                episodes.append([t, t, 1, r])
        for start, end, n, top in episodes:
            near = min((abs(start - h) for h in responses), default=99)
            print(f"   stall at {fmt_t(start, t0)}: {n} replies above {SPIKE_MS:.0f} ms over {end - start:.1f} s, max {top:.1f} ms"
                  f"{' (within 3 s of a handshake)' if near < 3 else ''}")
        for h in responses:
            if h > soak_end:
                continue
            win = [r for t, r in got.values() if h + WINDOW[0] <= t <= h + WINDOW[1]]
            lw = sum(1 for _, t in lost if h + WINDOW[0] <= t <= h + WINDOW[1])
            print(f"   handshake at {fmt_t(h, t0)}: {len(win)} replies in [{WINDOW[0]:+.0f}, {WINDOW[1]:+.0f}] s, max RTT "
                  f"{max(win, default=0):.1f} ms, {lw} lost")

    path = os.path.join(out, "iperf.json")
    try:
        j = json.loads(read(path))
        start = j["start"]["timestamp"]["timesecs"]
        snd = j["end"]["sum_sent"]
        rcv = j["end"]["sum_received"]
        print(f"-- iperf3 A->B: {snd['bits_per_second'] / 1e6:.1f} Mbit/s sent, {rcv['bits_per_second'] / 1e6:.1f} received, "
              f"{snd.get('retransmits')} retransmits")
        bad = [(start + i["sum"]["start"], i["sum"].get("retransmits", 0), i["sum"]["bits_per_second"])
               for i in j["intervals"] if i["sum"].get("retransmits", 0) > 0]
        rates = [i["sum"]["bits_per_second"] / 1e6 for i in j["intervals"]]
        print(f"   per second: min {min(rates):.1f} Mbit/s, {len(bad)} of {len(rates)} seconds with retransmits")
        for t, n, bps in bad:
            near = min((abs(t - h) for h in responses), default=99)
            if near < 3:
                print(f"   second at {fmt_t(t, t0)}: {n} retransmits, {bps / 1e6:.1f} Mbit/s (within 3 s of a handshake)")
        slow = [(start + i["sum"]["start"], i["sum"]["bits_per_second"] / 1e6) for i in j["intervals"]
                if i["sum"]["bits_per_second"] / 1e6 < 0.5 * statistics.median(rates)]
        for t, r in slow:
            print(f"   slow second at {fmt_t(t, t0)}: {r:.1f} Mbit/s")
    except (OSError, ValueError, KeyError) as e:
        print(f"-- iperf3: no result ({e})")

    for when in ("soak", "idle", "keepalive"):
        pa = os.path.join(out, f"dump-a-{when}.txt")
        if not os.path.exists(pa):
            continue
        a, b = dump_peer(pa), dump_peer(os.path.join(out, f"dump-b-{when}.txt"))
        ua, ub = udp_snmp(os.path.join(out, f"udp-a-{when}.txt")), udp_snmp(os.path.join(out, f"udp-b-{when}.txt"))
        print(f"-- counters after {when}: a sent {a['tx']} / b received {b['rx']} (diff {a['tx'] - b['rx']}), "
              f"b sent {b['tx']} / a received {a['rx']} (diff {b['tx'] - a['rx']}); "
              f"UDP RcvbufErrors a {ua.get('RcvbufErrors')} b {ub.get('RcvbufErrors')}, "
              f"SndbufErrors a {ua.get('SndbufErrors')} b {ub.get('SndbufErrors')}")

    for s in "ab":
        for when in ("soak", "idle", "keepalive"):
            path = os.path.join(out, f"show-{s}-{when}.txt")
            if os.path.exists(path):
                m = re.search(r"packet buffers: (\d+)", read(path))
                print(f"-- {label[s]} after {when}: {m.group(1) if m else '?'} packet buffers outstanding")
    if "idle_ping" in phases:
        for name in ("idle-ping.txt", "idle-ping-b.txt"):
            path = os.path.join(out, name)
            if not os.path.exists(path):
                continue
            lines = read(path).splitlines()
            replies = [l for l in lines if "bytes from" in l]
            print(f"-- {name[:-4]} at {fmt_t(phases['idle_ping'], t0)}: " + "; ".join(replies[:1] + [l for l in lines if "transmitted" in l or "rtt" in l]))
    if "keepalive_start" in phases:
        ka = [t for t, s, n in ev if s == "a" and n == "keepalive" and phases["keepalive_start"] <= t <= phases["keepalive_end"] + 1]
        gaps = [round(y - x, 2) for x, y in zip(ka, ka[1:])]
        print(f"-- keepalives from a during the keepalive phase: {len(ka)}, gaps {gaps}")
        hs = [t for t, s, n in ev if n == "response" and phases["keepalive_start"] <= t]
        print(f"   handshakes in it: {', '.join(fmt_t(t, t0) for t in hs) or 'none'}")

    for s in "ab":
        path = os.path.join(out, f"{s}.log")
        if not os.path.exists(path):
            continue
        lines = read(path).splitlines()
        if impl.get(s) == "ours":
            bad, init, done = [], 0, 0
            for line in lines:
                try:
                    e = json.loads(line)
                except ValueError:
                    bad.append(line)
                    continue
                msg = e.get("message", "")
                if "sending handshake initiation" in msg:
                    init += 1
                if "handshake completed" in msg:
                    done += 1
                if e.get("severity") in ("Warning", "Error", "Fatal"):
                    bad.append(f"{e.get('time')} {e.get('severity')} {msg}")
            print(f"-- log {label[s]}: {init} 'sending handshake initiation' lines, {done} 'handshake completed'; "
                  f"{len(bad)} Warning/Error lines")
            for line in bad[:10]:
                print("   " + line[:300])
        else:
            keys = ["Sending handshake initiation", "Received handshake initiation", "Sending handshake response",
                    "Received handshake response", "Retrying handshake", "Sending keepalive packet"]
            print(f"-- log {label[s]}: " + ", ".join(f"{k} {sum(1 for l in lines if k in l)}" for k in keys))
            odd = [l for l in lines if re.search(r"ERROR|[Ff]ailed|[Ii]nvalid", l)]
            for line in odd[:10]:
                print("   " + line)

    for name, rows in procs.items():
        print(f"-- firezone-tunnel {name}: RSS KiB / threads / CPU s, once a minute")
        first = rows[0][0]
        marks, nxt = [], first
        for row in rows:
            if row[0] >= nxt:
                marks.append(row)
                nxt += 60
        if marks[-1] is not rows[-1]:
            marks.append(rows[-1])
        print("   " + "  ".join(f"{(t - first) / 60:.0f}m {rss}/{thr}/{cpu / 100:.0f}" for t, rss, thr, cpu in marks))
        print(f"   RSS min {min(r[1] for r in rows)} max {max(r[1] for r in rows)} KiB, "
              f"threads min {min(r[2] for r in rows)} max {max(r[2] for r in rows)}")


if __name__ == "__main__":
    main(sys.argv[1])
