#!/usr/bin/env python3
"""UAPI connection churn against one socket: full gets, early closes, garbage, partial requests,
and a batch held open concurrently. usage: uapi_churn.py SOCKET REPS"""
import os, random, socket, sys
path = sys.argv[1]; reps = int(sys.argv[2])
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); return s
def drain(s):
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    return data
kinds = {}
for i in range(reps):
    k = i % 9
    s = conn()
    try:
        if k == 0: s.sendall(b"get=1\n\n"); drain(s)
        elif k == 1: s.sendall(b"fz_get=1\n\n"); drain(s)
        elif k == 2: pass                                   # connect, close at once
        elif k == 3: s.sendall(b"get=")                     # a partial operation line, then close
        elif k == 4: s.sendall(b"hello\n"); drain(s)        # an unknown operation: errno reply
        elif k == 5: s.sendall(os.urandom(random.randint(1, 3000)))  # binary garbage, close
        elif k == 6: s.sendall(b"get=1\n")                  # get without its blank line, close
        elif k == 7: s.sendall(b"set=1\nlisten_port=51001\nbogus_key=1\n")  # set without its end, close
        elif k == 8: s.sendall(b"get=1\n\n"); s.shutdown(socket.SHUT_RD)  # close without reading the reply
    except OSError as e:
        kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
    s.close()
print("done", reps, kinds)
