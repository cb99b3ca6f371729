#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_proto.c (first byte: target 0
parser, 1 destination handshake, 2 source connection; see the target)."""
import os, struct, sys
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)
MAGIC, VER = 0x31424350, 3
HELLO, CONFIG, REQ, RANGES, PAGE, ZERO, BATCH_END, DIGEST_REQ, DIGESTS, BYE, ERROR, RUN, CHALLENGE, AUTH, LINK, PING, PONG = range(1, 18)
NP = 64
def fr(t, payload=b"", arg=0, ln=None):
    return struct.pack("<IHHIIQ", MAGIC, VER, t, len(payload) if ln is None else ln, 0, arg) + payload
def hello(ch, flags=0): return fr(HELLO, struct.pack("<II", ch, flags) + bytes(range(16)))
def challenge(auth): return fr(CHALLENGE, struct.pack("<II", auth, 0) + bytes(16))
def config(np=NP, seed=7, zt=0): return fr(CONFIG, struct.pack("<QQQQII", np * 4096, np, seed, zt, 4096, 0) + bytes(32))
def ranges(bid, rs): return fr(RANGES, b"".join(struct.pack("<QQ", a, n) for a, n in rs), bid)
def link(bps, d): return fr(LINK, struct.pack("<QQ", bps, d))
seeds = {
    # parser
    "p-page": b"\0" + fr(PAGE, bytes(4096), 3),
    "p-run": b"\0" + fr(RUN, bytes(8192), 5),
    "p-mixed": b"\0" + fr(ZERO, arg=1) + fr(BATCH_END, arg=0) + ranges(0, [(0, 4), (10, 2)]) + link(10**9, 50000) + config(),
    "p-truncated": b"\0" + fr(PAGE, bytes(100), 3, ln=4096),
    "p-oversized": b"\0" + fr(DIGESTS, b"", 0, ln=0x7fffffff),
    "p-digests": b"\0" + fr(DIGEST_REQ, struct.pack("<Q", 8), 0) + fr(DIGESTS, bytes(64), 0) + fr(PING, arg=64) + fr(PONG, bytes(64), 64),
    # destination handshake against a source
    "c-noauth": b"\1\0" + challenge(0) + config() + fr(PAGE, bytes(4096), 2),
    "c-auth": b"\1\1" + challenge(1) + config(),
    "c-error": b"\1\0" + fr(ERROR, b"authentication failed: wrong key"),
    "c-badconfig": b"\1\0" + challenge(0) + config(np=3, seed=1),
    # source connection against a destination
    "s-demand": b"\2\0" + hello(0) + fr(REQ, arg=1) + fr(REQ, arg=2) + fr(DIGEST_REQ, struct.pack("<Q", NP), 0) + fr(BYE),
    "s-background": b"\2\0" + hello(1) + ranges(0, [(0, 8)]) + ranges(1, [(8, 8), (30, 3)]) + fr(BYE),
    "s-link": b"\2\0" + hello(0, 1) + link(10**8, 1000) + fr(PING, arg=0) + fr(PING, arg=4096) + fr(REQ, arg=5) + fr(BYE),
    "s-query": b"\2\0" + hello(2),
    "s-auth": b"\2\1" + hello(0) + fr(AUTH, bytes(32)) + fr(REQ, arg=1),
    "s-bad": b"\2\0" + hello(0) + fr(REQ, arg=NP) + fr(RANGES, bytes(16), 0),
    # a 2-byte PONG, then a generated page in the same write: its staging must stay 8-byte
    # aligned (found by make fuzz: a misaligned 64-bit store in pcb_image_fill)
    "s-pong-odd": b"\2\0" + hello(0, 1) + link(0, 1000) + fr(PING, arg=2) + fr(PING, arg=4096) + fr(REQ, arg=5) + fr(BYE),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
