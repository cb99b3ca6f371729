"""Checks of tests/integ/progress.sh: guest progress over time against a local baseline."""
import csv
import json


def _csv_rows(path):
    """A progress CSV's rows (t_ms, vcpu, ops), the header first, comment lines dropped."""
    with open(path) as f:
        return [r for r in csv.reader(l for l in f if not l.startswith("#"))]


def baseline_run(T):
    """--policy=local (T/local.json) and a migration with --baseline=run (T/mig.json, T/mig.csv,
    T/mig-local.csv): both verified; the local run has 20 ms buckets adding up to its ops, no
    fault and no recovery figures; the migration's first 100 ms run below half the local rate,
    it lost more than 5 buckets' work, and it is back within 95 % no earlier than 100 ms (or
    says it never was); the CSVs add up to the ops and the baseline series."""
    L = json.load(open(T + "/local.json")); M = json.load(open(T + "/mig.json"))
    lr, mr = L["results"], M["results"]
    for name, r in (("local", lr), ("migrated", mr)):
        v = r["verify"]
        assert v["done"] and v["pages_verified"] == 16384 and not v["pages_corrupt"] and not v["pages_missing"], (name, v)
    lp, mp = lr["progress"], mr["progress"]
    assert lp["bucket_ms"] == 20 and mp["bucket_ms"] == 10
    assert sum(lp["total"]) == lr["guest"]["ops"]
    assert lr["pages"]["demand"] == 0 and lr["faults"]["count"] == 0, "a local run has no faults"
    assert lp["time_to_95pct_of_local_ns"] is None and lp["lost_work_ops"] is None
    # migrated against its baseline
    assert mp["time_to_first_work_ns"] > 0
    assert isinstance(mp["lost_work_ops"], int)
    assert len(mp["baseline_total"]) >= 40, len(mp["baseline_total"])
    base = mp["baseline_mean_ops_per_bucket"]
    # demand paging of a random guest over 64 MiB: the first 100 ms cannot run at local speed
    early = sum(mp["total"][:10]) / 10
    assert early < 0.5 * base, (early, base)
    assert mp["lost_work_ops"] > 0.5 * 10 * base, (mp["lost_work_ops"], base)
    if mp["recovered_to_95pct"]:
        assert mp["time_to_95pct_of_local_ns"] >= 100e6, mp["time_to_95pct_of_local_ns"]
    else:
        assert mp["time_to_95pct_of_local_ns"] is None
    rows = _csv_rows(T + "/mig.csv")
    assert rows[0] == ["t_ms", "vcpu", "ops"] and sum(int(r[2]) for r in rows[1:]) == mr["guest"]["ops"]
    rows = _csv_rows(T + "/mig-local.csv")
    assert sum(int(r[2]) for r in rows[1:][:len(mp["baseline_total"])]) >= sum(mp["baseline_total"])
    print("local %.0f ops/bucket; migrated first 100 ms %.0f; lost %d ops (%.1f ms of local); back to 95%%: %s"
          % (base, early, mp["lost_work_ops"], mp["lost_work_s"] * 1e3, mp["time_to_95pct_of_local_ns"]))


def baseline_file(json_path, csv_path):
    """--baseline=FILE: the run's baseline series is the CSV's, bucket by bucket."""
    p = json.load(open(json_path))["results"]["progress"]
    base = {}
    for t, v, o in _csv_rows(csv_path)[1:]:
        base[round(float(t) / 10)] = base.get(round(float(t) / 10), 0) + int(o)
    assert isinstance(p["lost_work_ops"], int) and p["baseline_mean_ops_per_bucket"] > 0
    assert p["baseline_total"] == [base[i] for i in range(len(p["baseline_total"]))], "baseline series differs from the CSV"
    print("--baseline=FILE: lost %d ops, back to 95%%: %s" % (p["lost_work_ops"], p["time_to_95pct_of_local_ns"]))
