#!/usr/bin/env python3
"""Bare first touch of fresh memory (bench/scale.sh): what this machine charges per 4 KiB page the first
time a process writes it, with no pager.  Maps SIZE bytes anonymous and private, MADV_NOHUGEPAGE (as the
guest region of a 4 KiB pull), writes one byte in every page (pass 1: each write faults and allocates a
page, and on a machine that reports freed memory to its host the host may fault too), then writes the
same bytes again (pass 2: every page is present; the loop's own cost and TLB misses).  The first-touch
cost per page is (pass 1 - pass 2) / pages.  Prints one JSON object.

    usage: bench/firsttouch.py SIZE_BYTES
"""
import json
import mmap
import sys
import time

PAGE = 4096


def touch_pass(m, pages):
    t = time.perf_counter_ns()
    for off in range(0, pages * PAGE, PAGE):
        m[off] = 1
    return time.perf_counter_ns() - t


def main():
    size = int(sys.argv[1])
    pages = size // PAGE
    m = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_NOHUGEPAGE)
    first = touch_pass(m, pages)
    second = touch_pass(m, pages)
    m.close()
    print(json.dumps({"bytes": pages * PAGE, "pages": pages, "pass1_ns": first, "pass2_ns": second,
                      "first_touch_us_per_page": (first - second) / pages / 1e3,
                      "loop_us_per_page": second / pages / 1e3}))


if __name__ == "__main__":
    main()
