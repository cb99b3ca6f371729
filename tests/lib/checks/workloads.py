"""Checks of tests/integ/workloads.sh: every workload's guest accounting and progress series."""
import csv
import json
import sys


def run(path, csv_path, name):
    """A 64 MiB run of workload NAME: exit 0, 16384 pages verified with no bad write stamp, ops
    done without read mismatch, the progress series (10 ms buckets, per vCPU adding up to the
    total) and the progress CSV at CSV_PATH add up to the ops, a time to first work, every page
    installed once."""
    d = json.load(open(path)); r = d["results"]
    v = r["verify"]; g = r["guest"]; p = r["progress"]
    errs = []
    if d["exit_code"] != 0: errs.append("exit_code %s" % d["exit_code"])
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["bad_write_stamps"]: errs.append("verify %s" % v)
    if v["pages_verified"] != 16384: errs.append("verified %d pages, want 16384" % v["pages_verified"])
    if g["ops"] <= 0: errs.append("no ops")
    if g["read_mismatches"]: errs.append("%d read mismatches" % g["read_mismatches"])
    if sum(p["total"]) != g["ops"]: errs.append("progress total %d != ops %d" % (sum(p["total"]), g["ops"]))
    if [sum(x) for x in zip(*p["per_vcpu"])] != p["total"]: errs.append("per-vCPU series do not add up to total")
    if p["time_to_first_work_ns"] is None: errs.append("no time to first work")
    if p["bucket_ms"] != 10: errs.append("bucket_ms %s" % p["bucket_ms"])
    rows = [row for row in csv.reader(l for l in open(csv_path) if not l.startswith("#"))]
    if rows[0] != ["t_ms", "vcpu", "ops"]: errs.append("CSV header %s" % rows[0])
    if sum(int(x[2]) for x in rows[1:]) != g["ops"]: errs.append("CSV ops do not add up")
    pg = r["pages"]
    if pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] != pg["total"]: errs.append("page accounting %s" % pg)
    if errs:
        print("%s: %s" % (name, "; ".join(errs))); sys.exit(1)
    print("%s: ok, %d ops, %d faults, first work after %.2f ms" % (name, g["ops"], r["faults"]["count"], p["time_to_first_work_ns"] / 1e6))


def kv_put_mix(path):
    """kv with get=0.5 and record-pages=4: about 2 writes per op (within 0.3), and 5 accesses per
    op (within 10 accesses)."""
    g = json.load(open(path))["results"]["guest"]
    acc = g["reads"] + g["writes"]
    # op = 1 bucket read + 4 record accesses; puts write 4 pages: writes/ops ~ 0.5*4
    ratio = g["writes"] / g["ops"]
    print("kv get=0.5 record-pages=4: %.2f writes per op (want ~2)" % ratio)
    assert abs(ratio - 2.0) < 0.3, ratio
    assert acc == 5 * g["ops"] or abs(acc - 5 * g["ops"]) <= 10, (acc, g["ops"])


def replay_counts(recorded, replay_bin, replay_txt):
    """The recorded run (20000 ops) and its replay from the binary trace have the same ops, reads
    and writes; the text trace replays 500 ops with 1000 accesses."""
    a, b, c = (json.load(open(f))["results"]["guest"] for f in (recorded, replay_bin, replay_txt))
    for k in ("ops", "reads", "writes"):
        assert a[k] == b[k], (k, a[k], b[k])
    assert c["ops"] == 500 and c["reads"] + c["writes"] == 1000, c
    assert a["ops"] == 20000
    print("replay: %d ops, %d reads, %d writes as recorded" % (b["ops"], b["reads"], b["writes"]))
