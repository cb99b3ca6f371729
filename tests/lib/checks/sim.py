"""Checks of tests/integ/simulate.sh: `pcbench simulate` (the discrete-event model) and its traces."""
import json
import os
import re
import statistics
import struct
import sys


def trace_pages(path):
    """Not a check: print how many distinct pages a recorded trace (PCBTRC1) touches; asserts the
    magic."""
    b = open(path, "rb").read()
    magic, ver, nv, npages, count = struct.unpack_from("<8sIIQQ", b, 0)
    assert magic == b"PCBTRC1\n", magic
    pages = {struct.unpack_from("<Q", b, 32 + 24 * i + 8)[0] for i in range(count)}
    print(len(pages))


def report(path, trace):
    """A simulation JSON: kind simulation, the trace's size and xxh3 as the file's, one record per
    guest access, the link echoed (50 Mbit/s, 1 ms), every page installed once, prefetch hits +
    faulted first touches = pages touched, the fault count in its histogram and the per-vCPU
    blocktimes adding up."""
    d = json.load(open(path)); t = d["trace"]; r = d["results"]
    errs = []
    if d["kind"] != "simulation": errs.append("kind %s" % d["kind"])
    if t["size_bytes"] != os.path.getsize(trace): errs.append("trace size %s" % t["size_bytes"])
    if not re.fullmatch("[0-9a-f]{16}", t["xxh3"]): errs.append("xxh3 %s" % t["xxh3"])
    if t["records"] != r["guest"]["accesses"]: errs.append("records %s vs accesses %s" % (t["records"], r["guest"]["accesses"]))
    if d["config"]["link_bps"] != 50000000 or d["config"]["link_rtt_ns"] != 1000000: errs.append("link echo")
    p = r["pages"]
    if p["demand"] + p["background"] + p["drain"] + p["zero"] != p["total"]: errs.append("page accounting %s" % p)
    pf = r["prefetch"]
    if pf["pages_touched"] != pf["hits"] + pf["first_touch_faulted"]: errs.append("prefetch %s" % pf)
    if r["faults"]["count"] != r["faults"]["latency"]["count"]: errs.append("fault count vs histogram")
    if sum(r["blocktime"]["per_vcpu_ns"]) != r["blocktime"]["total_ns"]: errs.append("blocktime")
    if errs: print("; ".join(errs)); sys.exit(1)


def same_results(a_path, b_path):
    """Two simulations of the same trace and options have identical results (apart from the
    simulator's own timing section)."""
    a, b = (json.load(open(f))["results"] for f in (a_path, b_path))
    for x in (a, b): del x["simulator"]
    sys.exit(a != b)


def all_policies(T):
    """T/sim-all.json (--policy=all) holds, for demand, sequential, pivot and trend, exactly the
    results of the single-policy simulations T/sim-POLICY.json (apart from the simulator
    section), and neither local nor replay."""
    d = json.load(open(T + "/sim-all.json"))
    runs = {r["policy"]: r["results"] for r in d["runs"]}
    errs = []
    for pol in ("demand", "sequential", "pivot", "trend"):
        one = json.load(open("%s/sim-%s.json" % (T, pol)))["results"]
        if pol not in runs: errs.append("%s missing" % pol); continue
        a, b = dict(runs[pol]), dict(one)
        del a["simulator"], b["simulator"]
        if a != b: errs.append("%s differs" % pol)
    if "local" in runs or "replay" in runs: errs.append("local/replay should not be in all (no --replay)")
    if errs: print("; ".join(errs)); sys.exit(1)


def write_all_fault_trace(path):
    """Not a check: write a 1,000,000-access trace (one vCPU, each access a new page) to PATH."""
    n = 1000000
    with open(path, "wb") as f:
        f.write(struct.pack("<8sIIQQ", b"PCBTRC1\n", 1, 1, n, n))
        f.write(b"".join(struct.pack("<QQII", i * 1000, i, 0, 0) for i in range(n)))


def within_5pct(a, b):
    """A live run's migration time A (ns) within 5 % of the simulated B: did the host deliver the link?"""
    a, b = int(a), int(b); sys.exit(abs(a - b) > 0.05 * b)


def fault_verdict(s, *live):
    """Not a check: print 'ok' or 'off' (simulated fault count S within 10 % of the median of the
    live counts LIVE...), the signed difference in percent, and the median."""
    s = int(s); lv = [int(x) for x in live]
    m = statistics.median(lv)
    print("ok" if abs(s - m) <= 0.10 * m else "off", "%+.1f%%" % (100.0 * (s - m) / m), m)
