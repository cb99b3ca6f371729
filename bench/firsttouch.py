#!/usr/bin/env python3
"""Bare first touch of fresh memory (bench/scale.sh): what this machine charges per 4 KiB page the first
time a process writes it, with no pager.  Maps SIZE bytes anonymous and private, MADV_NOHUGEPAGE (as the
guest region of a 4 KiB pull), writes one byte in every page (pass 1: each write faults and allocates a
page, and on a machine that reports freed memory to its host the host may fault too), then writes the
same bytes again (pass 2: every page is present; the loop's own cost and TLB misses).  The first-touch
cost per page is (pass 1 - pass 2) / pages; pass 1 is also timed GiB by GiB (where along the mapping the
cost per page changes).  Prints one JSON object.

With --warm it instead populates SIZE bytes (MADV_POPULATE_WRITE: the kernel allocates every page, and the
host backs it) and frees them at once, so that a measurement started right after takes host-warm memory
(bench/scale.sh, SCALE_MEMORY=warm); it prints the time that took.

    usage: bench/firsttouch.py [--warm] SIZE_BYTES
"""
import json
import mmap
import sys
import time

PAGE = 4096


def touch_pass(m, pages):
    """Total ns, and the ns of each GiB in order (where along the mapping the cost changes)."""
    gib, parts = (1 << 30) // PAGE, []
    t0 = time.perf_counter_ns()
    for first in range(0, pages, gib):
        t = time.perf_counter_ns()
        for off in range(first * PAGE, min(pages, first + gib) * PAGE, PAGE):
            m[off] = 1
        parts.append(time.perf_counter_ns() - t)
    return time.perf_counter_ns() - t0, parts


MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)   # Linux >= 5.14; Python 3.11 lacks the name


def warm(size):
    """Populate SIZE bytes and free them: the allocator hands them out again first."""
    pages = size // PAGE
    m = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_NOHUGEPAGE)
    t = time.perf_counter_ns()
    m.madvise(MADV_POPULATE_WRITE)
    ns = time.perf_counter_ns() - t
    m.close()
    print(json.dumps({"warm_bytes": pages * PAGE, "populate_ns": ns, "populate_us_per_page": ns / pages / 1e3}))


def main():
    if sys.argv[1] == "--warm":
        warm(int(sys.argv[2]))
        return
    size = int(sys.argv[1])
    pages = size // PAGE
    m = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_NOHUGEPAGE)
    first, by_gib = touch_pass(m, pages)
    second, _ = touch_pass(m, pages)
    m.close()
    gib = (1 << 30) // PAGE
    print(json.dumps({"bytes": pages * PAGE, "pages": pages, "pass1_ns": first, "pass2_ns": second,
                      "first_touch_us_per_page": (first - second) / pages / 1e3,
                      "loop_us_per_page": second / pages / 1e3,
                      "pass1_us_per_page_by_gib": [round(ns / min(gib, pages - i * gib) / 1e3, 3) for i, ns in enumerate(by_gib)]}))


if __name__ == "__main__":
    main()
