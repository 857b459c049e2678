#!/usr/bin/env python3
"""Garbage at a WireGuard listen port, for the fault tests.

  flood.py HOST PORT SECONDS [--sniff IFACE] [--pps N]

With --sniff, first records up to 64 transport messages (type 4) sent to HOST:PORT as they cross
IFACE (an AF_PACKET capture on the router), to replay them later. Then, for SECONDS, sends a mix of:
  random      random bytes of random length
  truncated   a valid message type (1..4) followed by fewer bytes than that message needs
  badmac      well-formed initiations (148 bytes), responses (92) and cookie replies (64) whose
              contents, and so MAC1, are random (WireGuard whitepaper 5.4.4: dropped before any DH)
  transport   well-formed transport headers with random receiver index, counter and payload
  replay      the captured transport messages, sent again (the replay window must reject them,
              whitepaper 5.4.6, and the endpoint must not roam to the replayer)
Prints one JSON object with the count sent of each kind.
"""
import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def sniff(iface, host, port, seconds, limit=64):
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    raw.bind((iface, 0))
    raw.settimeout(0.2)
    v6 = ":" in host
    want = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, host)
    captured = []
    deadline = time.monotonic() + seconds
    while len(captured) < limit and time.monotonic() < deadline:
        try:
            frame = raw.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if v6:
            # IPv6 without extension headers (the lab sends none): next header at 6, destination at 24.
            if len(ip) < 40 + 8 or frame[12:14] != b"\x86\xdd" or ip[6] != 17 or ip[24:40] != want:
                continue
            udp = ip[40:]
        else:
            if len(ip) < 20 + 8 or frame[12:14] != b"\x08\x00":
                continue
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != 17 or ip[16:20] != want:
                continue
            udp = ip[ihl:]
        dport = struct.unpack("!H", udp[2:4])[0]
        payload = udp[8:]
        if dport == port and len(payload) >= 32 and payload[0] == 4:
            captured.append(bytes(payload))
    raw.close()
    return captured


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    iface = None
    pps = 4000.0
    if "--sniff" in argv:
        iface = argv[argv.index("--sniff") + 1]
        args.remove(iface)
    if "--pps" in argv:
        value = argv[argv.index("--pps") + 1]
        args.remove(value)
        pps = float(value)
    if len(args) != 3:
        sys.stderr.write(__doc__)
        return 2
    host, port, seconds = args[0], int(args[1]), float(args[2])
    replay = sniff(iface, host, port, 3.0) if iface else []
    sys.stderr.write(f"captured {len(replay)} transport messages\n")
    sys.stderr.flush()

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    counts = {"random": 0, "truncated": 0, "badmac": 0, "transport": 0, "replay": 0, "errors": 0}
    full = {1: 148, 2: 92, 3: 64, 4: 32}
    kinds = ["random", "truncated", "badmac", "transport"] + (["replay"] if replay else [])
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        kind = kinds[sent % len(kinds)]
        if kind == "random":
            msg = os.urandom(random.randint(1, 1500))
        elif kind == "truncated":
            t = random.randint(1, 4)
            msg = bytes([t, 0, 0, 0]) + os.urandom(random.randint(0, full[t] - 5))
        elif kind == "badmac":
            t = random.randint(1, 3)
            msg = bytes([t, 0, 0, 0]) + os.urandom(full[t] - 4)
        elif kind == "transport":
            msg = bytes([4, 0, 0, 0]) + os.urandom(12 + 16 + random.randint(0, 1400))
        else:
            msg = replay[sent % len(replay)]
        try:
            sock.sendto(msg, (host, port))
            counts[kind] += 1
        except OSError:
            counts["errors"] += 1  # ICMP unreachable from a restarting peer, say: keep going
        sent += 1
        ahead = sent / pps - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
