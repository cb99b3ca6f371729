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
$CHECK progress.baseline_run "$T"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: progress checks"; exit 1; }
# --baseline=FILE: the progress CSV of the earlier local run (same workload, seed, vCPUs, bucket)
"$P" --policy=local --workload=zipf --mem=64M --duration=500ms --progress-csv "$T/zl.csv" >/dev/null 2>&1 ||
	{ echo "FAIL: local zipf run"; exit 1; }
grep -q "^# .*policy=local workload=zipf seed=1 vcpus=1 bucket_ms=10 complete_buckets=" "$T/zl.csv" ||
	{ echo "FAIL: the progress CSV does not describe its run: $(head -1 "$T/zl.csv")"; exit 1; }
"$P" --policy=sequential --workload=zipf --mem=64M --duration=500ms --baseline="$T/zl.csv" --trace=off \
	--json "$T/zm.json" >"$T/zm.out" 2>&1 || { echo "FAIL: --baseline=FILE run: $(tail -2 "$T/zm.out")"; exit 1; }
$CHECK progress.baseline_file "$T/zm.json" "$T/zl.csv" || { echo "FAIL: --baseline=FILE metrics"; exit 1; }
"$P" --policy=sequential --workload=zipf --seed=2 --mem=64M --baseline="$T/zl.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 64 ] && grep -q "seed differs" "$T/bad.err" || { echo "FAIL: a baseline of another seed: exit $rc $(cat "$T/bad.err")"; exit 1; }
"$P" --baseline="$T/nothere.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 65 ] && grep -q "nothere.csv" "$T/bad.err" || { echo "FAIL: --baseline=missing file: exit $rc"; exit 1; }
printf 'x,y\n' >"$T/junk.csv"
"$P" --baseline="$T/junk.csv" --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 65 ] || { echo "FAIL: --baseline=junk: exit $rc"; exit 1; }
echo "all checks passed"
