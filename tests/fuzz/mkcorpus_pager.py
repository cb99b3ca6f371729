#!/usr/bin/env python3
"""Seed inputs for tests/fuzz/fuzz_pager.c (layout in its header comment):
a whole well-formed migration of the 64-page image (sequential policy,
batches of 16, window 2) on each install path, shared and two connections,
with and without a key and a touching thread; one with a page left out of a
batch; one with a 64-page RUN frame (larger than the receive path's 8 KiB
reads).  Run from the repository root; writes tests/fuzz/corpus-pager/."""
import os
import struct

MAGIC, VER = 0x31424350, 3
PAGE, ZERO, BATCH_END, RUN = 5, 6, 7, 12
URGENT = 1


def fr(t, arg, payload=b"", flags=0):
    return struct.pack("<IHHIIQ", MAGIC, VER, t, len(payload), flags, arg) + payload


def rec(ch, b):
    return bytes([ch]) + struct.pack("<H", len(b)) + b


def batches(skip=None, big=False):
    out = []
    if big:   # one RUN of the whole image in batch 0 (more than one receive read), then empty ends
        b = fr(RUN, 0, bytes([0x5A]) * (64 * 4096))
        for i in range(0, len(b), 65535):
            out.append(rec(1, b[i:i + 65535]))
        for k in range(4):
            out.append(rec(1, fr(BATCH_END, k)))
        return out
    for k in range(4):
        b = b""
        first = 16 * k
        b += fr(RUN, first, bytes([k + 1]) * (2 * 4096))
        for pg in range(first + 2, first + 16):
            if pg != skip:
                b += fr(ZERO, pg)
        b += fr(BATCH_END, k)
        out.append(rec(1, b))
    return out


def demand(shared):
    f = URGENT if shared else 0
    return [rec(0, fr(PAGE, 5, b"\x11" * 4096, f)), rec(0, fr(PAGE, 17, b"\x22" * 4096, f))]


os.makedirs("tests/fuzz/corpus-pager", exist_ok=True)
seeds = {}
for shared in (0, 1):
    for inst in range(3):
        for keyed in (0, 8):
            for touch in (0, 32):
                mode = shared | inst << 1 | keyed | touch
                body = (demand(shared) if touch else []) + batches()
                seeds["m%02x" % mode] = bytes([mode, 5]) + b"".join(body)
seeds["omitted"] = bytes([0, 5]) + b"".join(batches(skip=7))
seeds["omitted-reconnect"] = bytes([64, 5]) + b"".join(batches(skip=7))
seeds["flipped-tag"] = bytes([8 | 16 | 64, 5]) + b"".join(batches())
seeds["big-run"] = bytes([0, 5]) + b"".join(batches(big=True))
seeds["big-run-continue"] = bytes([2, 5]) + b"".join(batches(big=True))
for name, data in seeds.items():
    with open(os.path.join("tests/fuzz/corpus-pager", name), "wb") as f:
        f.write(data)
print("%d seeds" % len(seeds))
