"""Checks of tests/integ/hugepages.sh: --page-size=2M (a hugetlb guest region)."""
import json
import sys


def run(path, name, vcpus):
    """A 64 MiB --page-size=2M run on VCPUS vCPUs: exit 0, all 16384 4 KiB pages verified with no
    bad write stamp or read mismatch, page size 2 MiB counted in 4 KiB units, every page
    installed once, exactly 32 huge installs in 32 install ioctls, and 1..32 x VCPUS faults (at
    most one per huge page and vCPU)."""
    d = json.load(open(path)); r = d["results"]; vcpus = int(vcpus)
    errs = []
    v = r["verify"]; pg = r["pages"]
    if d["exit_code"] != 0: errs.append("exit_code %s" % d["exit_code"])
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["bad_write_stamps"]: errs.append("verify %s" % v)
    if v["pages_verified"] != 16384: errs.append("verified %d 4 KiB pages, want 16384" % v["pages_verified"])
    if r["guest"]["read_mismatches"]: errs.append("%d read mismatches" % r["guest"]["read_mismatches"])
    if d["config"]["page-size"] != "2M" or pg["page_size"] != 2097152 or pg["unit_bytes"] != 4096: errs.append("page size %s" % pg)
    if pg["total"] != 16384: errs.append("total %d" % pg["total"])
    if pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] != pg["total"]: errs.append("page accounting %s" % pg)
    if pg["huge_installs"] != 32: errs.append("%d huge installs, want 32" % pg["huge_installs"])
    ins = r["pager"]["install"]
    ioctls = ins["demand"]["ioctls"] + ins["background"]["ioctls"]
    if ioctls != 32: errs.append("%d install ioctls, want 32 (one per 2 MiB page)" % ioctls)
    if r["faults"]["count"] < 1 or r["faults"]["count"] > 32 * vcpus: errs.append("%d faults (want 1..%d: at most one per huge page and vCPU)" % (r["faults"]["count"], 32 * vcpus))
    if errs:
        print("%s: %s" % (name, "; ".join(errs))); sys.exit(1)
    print("%s: ok, %d faults (p50 %.0f us), demand %d, background %d, drain %d, zero %d, %d EEXIST" % (
        name, r["faults"]["count"], r["faults"]["latency"]["p50_ns"] / 1e3 if "latency" in r["faults"] else -1,
        pg["demand"], pg["background"], pg["drain"], pg["zero"], pg["eexist_races"]))
