"""Sends WireGuard handshake initiations with a correct mac1 for a receiver's public key (the rest
random) as fast as one process can, for the flood test of scripts/lab/handshake-flood.sh:

    python3 scripts/lab/handshake_flood.py PUBLIC_KEY_BASE64 HOST PORT SECONDS

mac1 is what the receiver checks first (whitepaper section 5.4.4: MAC(HASH("mac1----" || public key),
message up to mac1)); a valid mac1 makes it do the rest of the work (cookie reply under load, or
the static-key decryption).
"""
import hashlib, os, socket, sys, time, base64
# Sends 148-byte WireGuard initiations with a correct mac1 for the receiver's public key (random body).
pub = base64.b64decode(sys.argv[1]); host = sys.argv[2]; port = int(sys.argv[3]); secs = float(sys.argv[4])
key = hashlib.blake2s(b"mac1----" + pub).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
msgs = []
for _ in range(256):
    body = bytes([1, 0, 0, 0]) + os.urandom(112)
    mac1 = hashlib.blake2s(body, key=key, digest_size=16).digest()
    msgs.append(body + mac1 + bytes(16))
end = time.monotonic() + secs; n = 0
while time.monotonic() < end:
    for m in msgs:
        s.sendto(m, (host, port)); n += 1
print("sent", n)
