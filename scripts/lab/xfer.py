#!/usr/bin/env python3
"""Checksummed TCP transfer for the lab (the tunnel must deliver every byte intact).

  xfer.py listen HOST PORT recv|send [BYTES] [--timeout S]
  xfer.py connect HOST PORT recv|send [BYTES] [--timeout S] [--rate BYTES_PER_SECOND]
  xfer.py udp HOST PORT COUNT TOS      send COUNT small datagrams with the given TOS / traffic class
                                       byte (its low two bits are the inner ECN codepoint), each
                                       16 bytes longer than the one before (see send_udp)

The sending side streams BYTES pseudo-random bytes (fresh per run), the receiving side reads until
the sender closes. Both print one line: "<bytes> <sha256 hex>". The listener accepts a single
connection and prints "listening" on stderr once bound, so a caller can wait for it.
"""
import hashlib
import os
import socket
import sys
import time

CHUNK = 64 * 1024


def send_all(sock, total, rate):
    h = hashlib.sha256()
    # One random block reused with a changing counter: cheap to generate, not compressible.
    block = bytearray(os.urandom(CHUNK))
    sent = 0
    counter = 0
    start = time.monotonic()
    while sent < total:
        if rate > 0:
            # Pace the sender so a transfer spans a known time (mid-transfer faults need one running).
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        counter += 1
        block[0:8] = counter.to_bytes(8, "little")
        n = min(CHUNK, total - sent)
        view = memoryview(block)[:n]
        sock.sendall(view)
        h.update(view)
        sent += n
    sock.shutdown(socket.SHUT_WR)
    # Wait for the peer to close, so the sender only reports once the receiver has read everything.
    while sock.recv(CHUNK):
        pass
    return sent, h.hexdigest()


def recv_all(sock):
    h = hashlib.sha256()
    got = 0
    while True:
        data = sock.recv(CHUNK)
        if not data:
            break
        h.update(data)
        got += len(data)
    sock.shutdown(socket.SHUT_WR)
    return got, h.hexdigest()


def send_udp(host, port, count, tos):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
    # The lab counts these probes with nftables, which counts packets as the kernel holds them.
    # When a daemon falls behind (a loaded machine) it reads several probes at once, and with
    # offloads on it may merge them: the far TUN's writer into one UDP super-packet (USO), the
    # sender's socket into one GSO send. Either is one packet to nftables, so 11 probes could count
    # as 2. Both merge only runs of equal-sized datagrams (the last one may be shorter), so each
    # probe is 16 bytes longer than the one before (also after padding to 16 bytes in the tunnel)
    # and none can be merged with another: every counter then counts datagrams.
    for i in range(count):
        payload = (b"ecn-probe %d " % i).ljust(16 * (i + 1), b".")
        sock.sendto(payload, (host, port))
        time.sleep(0.01)
    print(f"{count} sent", flush=True)
    return 0


def option(argv, args, name, default):
    if name not in argv:
        return default
    value = argv[argv.index(name) + 1]
    args.remove(value)
    return float(value)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    timeout = option(argv, args, "--timeout", 60.0)
    rate = option(argv, args, "--rate", 0.0)
    if len(args) == 5 and args[0] == "udp":
        return send_udp(args[1], int(args[2]), int(args[3]), int(args[4], 0))
    if len(args) < 4 or args[0] not in ("listen", "connect") or args[3] not in ("recv", "send"):
        sys.stderr.write(__doc__)
        return 2
    role, host, port, mode = args[0], args[1], int(args[2]), args[3]
    total = int(args[4]) if len(args) > 4 else 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if role == "listen":
        srv = socket.socket(family, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(1)
        srv.settimeout(timeout)
        sys.stderr.write("listening\n")
        sys.stderr.flush()
        sock, _ = srv.accept()
        srv.close()
    else:
        sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    n, digest = send_all(sock, total, rate) if mode == "send" else recv_all(sock)
    sock.close()
    print(f"{n} {digest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
