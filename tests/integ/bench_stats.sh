#!/usr/bin/env bash
# analysis/stats.py (SciPy) on synthetic tidy data, no runs: Holm's adjustment matches a worked
# example; ranges that do not overlap with 3 repetitions are NOT called a win (the old min-max rule
# would have), a clear difference with 8 repetitions is, with its p and CI; medians sit inside their
# bootstrap CIs; guest work relative to the local baseline; findings and the power estimate are
# generated; the same data give the same file (fixed bootstrap seed).
set -u
die() { echo "FAIL: $*"; exit 1; }
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import scipy.stats' 2>/dev/null || die "python3-scipy is missing (make deps)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" - "$tmp" <<'PY' || exit 1
import csv, random, sys
d = sys.argv[1]
rng = random.Random(7)
hdr = ["run_id", "policy", "workload", "link", "rep", "metric", "stat", "value"]
rows = []
def add(pol, wl, n, blk, ops):
    for r in range(1, n + 1):
        rid = f"{pol}-{wl}-l1-r{r}"
        rows.append([rid, pol, wl, "l1", r, "blocktime_ms", "value", blk[r - 1]])
        rows.append([rid, pol, wl, "l1", r, "guest_ops", "value", ops[r - 1]])
# workload "few": 3 reps, disjoint ranges (100-102 vs 103-105) -> MWU p = 0.1, never significant
add("demand", "few", 3, [200, 201, 202], [50, 51, 52])
add("sequential", "few", 3, [103, 104, 105], [90, 91, 92])
add("trend", "few", 3, [100, 101, 102], [93, 94, 95])
# workload "many": 8 reps, trend ~40 % lower blocktime than sequential, noise ~3 %
add("demand", "many", 8, [300 * (1 + rng.gauss(0, .03)) for _ in range(8)], [40 + rng.random() for _ in range(8)])
add("sequential", "many", 8, [100 * (1 + rng.gauss(0, .03)) for _ in range(8)], [80 + rng.random() for _ in range(8)])
add("trend", "many", 8, [60 * (1 + rng.gauss(0, .03)) for _ in range(8)], [90 + rng.random() for _ in range(8)])
for wl, n in (("few", 3), ("many", 8)):
    for r in range(1, n + 1):
        rows.append([f"local-{wl}-l1-r{r}", "local", wl, "l1", r, "guest_ops", "value", 100 + r * 0.1])
with open(f"{d}/results.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(hdr); w.writerows(rows)
with open(f"{d}/summary.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(hdr)
    for wl in ("few", "many"):
        for p in ("demand", "sequential", "trend", "local"):
            w.writerow([f"{p}-{wl}-l1", p, wl, "l1", "all", "guest_ops", "n", 1])
PY
"$py" analysis/stats.py "$tmp" >/dev/null || die "stats.py failed"
cp "$tmp/summary.md" "$tmp/first.md"
"$py" analysis/stats.py "$tmp" >/dev/null && cmp -s "$tmp/summary.md" "$tmp/first.md" || die "two runs on the same data differ"
"$py" - "$tmp" <<'PY' || exit 1
import csv, sys, importlib.util
d = sys.argv[1]
spec = importlib.util.spec_from_file_location("st", "analysis/stats.py"); st = importlib.util.module_from_spec(spec); spec.loader.exec_module(st)
fail = []
# Holm (1979) worked example: p = .01 .04 .03 .005 -> .03 .06 .06 .02
adj = st.holm([0.01, 0.04, 0.03, 0.005])
if [round(x, 6) for x in adj] != [0.03, 0.06, 0.06, 0.02]: fail.append(f"holm: {adj}")
if st.holm([0.5, 0.9]) != [1.0, 1.0]: fail.append("holm does not cap at 1")
rows = list(csv.DictReader(open(f"{d}/stats.csv")))
def comp(wl, m, a, b):
    for r in rows:
        if r["kind"] == "comparison" and r["workload"] == wl and r["metric"] == m and {r["policy"], r["vs"]} == {a, b}:
            return r
few = comp("few", "blocktime_ms", "trend", "sequential")
if not few or few["significant"] != "0" or abs(float(few["p"]) - 0.1) > 1e-9:
    fail.append(f"3 vs 3 disjoint ranges: want p = 0.1, not significant: {few}")
many = comp("many", "blocktime_ms", "trend", "sequential")
ratio = float(many["median_or_ratio"]) if many else 0
ratio = ratio if many and many["policy"] == "trend" else 1 / ratio if ratio else 0
if not many or many["significant"] != "1" or float(many["p_holm"]) >= 0.05 or not (0.5 < ratio < 0.7):
    fail.append(f"8 vs 8, 40 % apart: want significant with ratio ~0.6: {many}")
elif not (float(many["ci_low"]) <= float(many["median_or_ratio"]) <= float(many["ci_high"])):
    fail.append(f"ratio outside its CI: {many}")
if int(many["family"]) != 3: fail.append(f"family of a 3-policy group should be 3 pairs, is {many['family']}")
for r in rows:
    if r["kind"] == "cell" and int(r["n"]) > 1 and not (float(r["ci_low"]) <= float(r["median_or_ratio"]) <= float(r["ci_high"])):
        fail.append(f"median outside its CI: {r}")
w = [r for r in rows if r["kind"] == "cell" and r["metric"] == "work_vs_local_pct" and r["workload"] == "many" and r["policy"] == "trend"]
if len(w) != 1 or not (88 < float(w[0]["median_or_ratio"]) < 91): fail.append(f"work vs local: {w}")
md = open(f"{d}/summary.md").read()
if "| few | l1 | trend |" not in md or "**" in md.split("| few | l1 | trend |")[1].split("\n")[0]:
    fail.append("the 3-repetition group marks a winner")
line = md.split("| many | l1 | trend |")[1].split("\n")[0]
if line.count("**") < 2: fail.append(f"the clear 8-repetition winner is not bold: {line}")
for s in ("## Findings", "On link `l1`", "Power: with n =", "no significant difference (p = 0.10"):
    if s not in md: fail.append(f"summary.md lacks {s!r}")
if fail:
    print("FAIL:\n  " + "\n  ".join(fail)); sys.exit(1)
print("ok")
PY
echo "PASS: bench_stats"
