#!/usr/bin/env python3
"""One UDP flow whose ECN codepoint changes in runs, checked datagram by datagram at the receiver.

  ecnflow.py send HOST PORT COUNT SEED       send COUNT numbered datagrams of 1200 bytes; datagram i
                                             carries codepoint pattern(COUNT, SEED)[i] (runs of 1 to 8
                                             of one codepoint), in bursts of 64
  ecnflow.py recv PORT COUNT SEED MARKED     receive until 3 s pass without a datagram, compare each
                                             one's codepoint (IP_RECVTOS / IPV6_RECVTCLASS) with what
                                             was sent, print one JSON line; MARKED=1: a router may
                                             have turned ECT(0) or ECT(1) into CE (RFC 3168)

Runs of one codepoint are what the offloads merge (the Client's UDP GSO sends, the Gateway's UDP GRO
reads, its USO writes to the TUN device); a change of codepoint inside a burst is where a merge that
mixed codepoints would show. The receiver binds one dual-stack socket on PORT, so it takes either
family. It prints "listening" on stderr once bound.
"""
import json
import random
import socket
import struct
import sys
import time

NAMES = ["notect", "ect1", "ect0", "ce"]
SIZE = 1200
BURST = 64


def pattern(count, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        out += [rng.randrange(4)] * rng.randint(1, 8)
    return out[:count]


def send(host, port, count, seed):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    level, option = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS) if family == socket.AF_INET6 else (socket.IPPROTO_IP, socket.IP_TOS)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    padding = bytes(SIZE - 4)
    for i, codepoint in enumerate(pattern(count, seed)):
        sock.sendmsg([struct.pack("!I", i), padding], [(level, option, struct.pack("i", codepoint))], 0, (host, port))
        if i % BURST == BURST - 1:
            time.sleep(0.0015)  # bursts, so a reader finds runs to merge, without overrunning the tunnel
    return 0


def recv(port, count, seed, marked):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    sock.bind(("::", port))
    print("listening", file=sys.stderr, flush=True)
    sent = pattern(count, seed)
    received, wrong, marked_ce, no_codepoint, unknown = {}, {}, 0, 0, 0
    sock.settimeout(30)  # the first datagram
    try:
        while True:
            data, ancillary, _, _ = sock.recvmsg(2048, 256)
            sock.settimeout(3)
            tos = None
            for level, kind, value in ancillary:
                if (level, kind) == (socket.IPPROTO_IP, socket.IP_TOS):
                    tos = value[0]
                elif (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_TCLASS):
                    tos = struct.unpack("i", value[:4])[0]
            if len(data) != SIZE:
                unknown += 1
                continue
            i = struct.unpack("!I", data[:4])[0]
            if i >= count:
                unknown += 1
                continue
            if tos is None:
                no_codepoint += 1
                continue
            got, want = tos & 3, sent[i]
            received[i] = got
            if got == want:
                continue
            if marked and got == 3 and want in (1, 2):
                marked_ce += 1
                continue
            key = f"{NAMES[want]}->{NAMES[got]}"
            wrong[key] = wrong.get(key, 0) + 1
    except socket.timeout:
        pass
    print(json.dumps({"sent": count, "received": len(received), "wrong": wrong, "marked_ce": marked_ce,
                      "no_codepoint": no_codepoint, "unknown": unknown}), flush=True)
    return 0


def main(argv):
    if len(argv) == 5 and argv[0] == "send":
        return send(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    if len(argv) == 5 and argv[0] == "recv":
        return recv(int(argv[1]), int(argv[2]), int(argv[3]), argv[4] == "1")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
