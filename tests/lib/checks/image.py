"""Checks of tests/integ/image_file.sh: `pcbench image` and --image files."""
import json
import random


def write_pattern(path):
    """Not a check: write the 8192-page test image to PATH: zero pages (every 4th, and every third
    64-page group), fill pages (one byte value, p % 251 + 1) and random pages (seed 7)."""
    random.seed(7)
    with open(path, "wb") as f:
        for p in range(8192):
            if p % 4 == 0 or (p // 64) % 3 == 0: f.write(bytes(4096))
            elif p % 4 == 1: f.write(bytes([p % 251 + 1]) * 4096)
            else: f.write(random.randbytes(4096))


def stats(path):
    """`pcbench image stats` of write_pattern's image: 8192 pages with the expected zero pages;
    zero and data run pages add up, longest zero run 65 and data run 3, 43 zero runs of >= 64
    pages; duplicate pages are the repeated fill values; zlib: exactly the fill pages compress
    under half, overall ratio in (0.5, 0.8)."""
    d = json.load(open(path))
    want_zero = sum(1 for p in range(8192) if p % 4 == 0 or (p // 64) % 3 == 0)
    assert d["pages"] == 8192 and d["zero_pages"] == want_zero, (d["zero_pages"], want_zero)
    # zero runs: single pages between data, and the 64-page groups (with their neighbours)
    runs = {r["min_len"]: r for r in d["runs"]}
    assert sum(r["zero_run_pages"] for r in d["runs"]) == want_zero
    assert sum(r["data_run_pages"] for r in d["runs"]) == 8192 - want_zero
    assert d["longest_zero_run"] == 65 and d["longest_data_run"] == 3, d
    assert runs[64]["zero_runs"] == 43, runs[64]
    data = [p for p in range(8192) if not (p % 4 == 0 or (p // 64) % 3 == 0)]
    fill = [p for p in data if p % 4 == 1]
    assert d["duplicate_pages"] == len(fill) - len({p % 251 for p in fill}), d["duplicate_pages"]
    z = d["zlib_per_page"]
    assert z["pages"] == len(data) and z["pages_under_half"] == len(fill), z   # random pages do not compress
    assert 0.5 < z["ratio"] < 0.8, z


def dump_has_buffer(path):
    """A dump of a Python process holding 8 MiB of 0xab: whole pages, at least 2040 of them the
    buffer's."""
    d = open(path, "rb").read(); pg = b"\xab" * 4096
    n = sum(1 for i in range(0, len(d), 4096) if d[i:i + 4096] == pg)
    print("dump: %d pages, %d of them the buffer's" % (len(d) // 4096, n))
    assert len(d) % 4096 == 0 and n >= 2040, n
