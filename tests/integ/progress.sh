#!/usr/bin/env bash
# Guest progress over time: --policy=local (no migration, region populated
# first, still verified) and --baseline=run (local reference run first, then
# the migration): the JSON carries the per-bucket series, time to first work,
# time back within 5 % and lost work; the CSVs exist and add up.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH

"$P" --policy=local --workload=random --mem=64M --duration=500ms --bucket-ms=20 --json "$T/local.json" >"$T/local.out" 2>&1 ||
	{ echo "FAIL: local run: $(tail -2 "$T/local.out")"; exit 1; }
grep -q "local baseline (no migration)" "$T/local.out" || { echo "FAIL: local run does not say so"; exit 1; }
"$P" --policy=demand --workload=random --mem=64M --duration=500ms --baseline=run --trace=off \
	--json "$T/mig.json" --progress-csv "$T/mig.csv" >"$T/mig.out" 2>&1 ||
	{ echo "FAIL: migration with baseline: $(tail -2 "$T/mig.out")"; exit 1; }
cat "$T/mig.out"
[ -s "$T/mig-local.csv" ] || { echo "FAIL: no baseline CSV mig-local.csv"; exit 1; }
python3 - "$T" <<'PY'
import json, sys, csv
T = sys.argv[1]
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
rows = [r for r in csv.reader(l for l in open(T + "/mig.csv") if not l.startswith("#"))]
assert rows[0] == ["t_ms", "vcpu", "ops"] and sum(int(r[2]) for r in rows[1:]) == mr["guest"]["ops"]
rows = [r for r in csv.reader(l for l in open(T + "/mig-local.csv") if not l.startswith("#"))]
assert sum(int(r[2]) for r in rows[1:][:len(mp["baseline_total"])]) >= sum(mp["baseline_total"])
print("local %.0f ops/bucket; migrated first 100 ms %.0f; lost %d ops (%.1f ms of local); back to 95%%: %s"
      % (base, early, mp["lost_work_ops"], mp["lost_work_s"] * 1e3, mp["time_to_95pct_of_local_ns"]))
PY
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: progress checks"; exit 1; }
# --baseline=FILE: the progress CSV of the earlier local run (same workload, seed, vCPUs, bucket)
"$P" --policy=local --workload=zipf --mem=64M --duration=500ms --progress-csv "$T/zl.csv" >/dev/null 2>&1 ||
	{ echo "FAIL: local zipf run"; exit 1; }
grep -q "^# .*policy=local workload=zipf seed=1 vcpus=1 bucket_ms=10 complete_buckets=" "$T/zl.csv" ||
	{ echo "FAIL: the progress CSV does not describe its run: $(head -1 "$T/zl.csv")"; exit 1; }
"$P" --policy=sequential --workload=zipf --mem=64M --duration=500ms --baseline="$T/zl.csv" --trace=off \
	--json "$T/zm.json" >"$T/zm.out" 2>&1 || { echo "FAIL: --baseline=FILE run: $(tail -2 "$T/zm.out")"; exit 1; }
python3 - "$T/zm.json" "$T/zl.csv" <<'PY' || { echo "FAIL: --baseline=FILE metrics"; exit 1; }
import json, sys, csv
p = json.load(open(sys.argv[1]))["results"]["progress"]
rows = [r for r in csv.reader(l for l in open(sys.argv[2]) if not l.startswith("#"))][1:]
base = {}
for t, v, o in rows:
    base[round(float(t) / 10)] = base.get(round(float(t) / 10), 0) + int(o)
assert isinstance(p["lost_work_ops"], int) and p["baseline_mean_ops_per_bucket"] > 0
assert p["baseline_total"] == [base[i] for i in range(len(p["baseline_total"]))], "baseline series differs from the CSV"
print("--baseline=FILE: lost %d ops, back to 95%%: %s" % (p["lost_work_ops"], p["time_to_95pct_of_local_ns"]))
PY
"$P" --policy=sequential --workload=zipf --seed=2 --mem=64M --baseline="$T/zl.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 64 ] && grep -q "seed differs" "$T/bad.err" || { echo "FAIL: a baseline of another seed: exit $rc $(cat "$T/bad.err")"; exit 1; }
"$P" --baseline="$T/nothere.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 65 ] && grep -q "nothere.csv" "$T/bad.err" || { echo "FAIL: --baseline=missing file: exit $rc"; exit 1; }
printf 'x,y\n' >"$T/junk.csv"
"$P" --baseline="$T/junk.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 65 ] || { echo "FAIL: --baseline=junk: exit $rc"; exit 1; }
echo "all checks passed"
