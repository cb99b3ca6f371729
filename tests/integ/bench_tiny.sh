#!/usr/bin/env bash
# pcbench bench end to end on the real kernel: a tiny experiment (2 policies x 1 workload x
# 2 reps, 32 MiB) must leave a JSON per run (every page verified), a tidy CSV with exactly
# the expected rows and values equal to the JSON, a summary with merged percentiles, and six
# figures (and the headline) as valid PDF and PNG.  Then: a resumed experiment re-runs nothing; a deleted run is
# re-run alone; an interrupted experiment (SIGINT) exits 130 and resumes where it stopped;
# a bad job file is refused naming file, line and key.
set -u
BUILD=${BUILD:-build}
die() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[ -x ./pcbench ] || die "./pcbench not built"
command -v python3 >/dev/null || die "python3 is needed (make deps)"
command -v gnuplot >/dev/null || die "gnuplot is needed (make deps)"
[ -e /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd in this kernel"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/tiny.conf" <<'CONF'
# integration test job
[experiment]
name      = tiny
policies  = demand, sequential
workloads = random
reps      = 2
mem       = 32M
duration  = 300ms
[link loopback]
CONF

dir=$(./pcbench bench "$tmp/tiny.conf" --results="$tmp/res" 2>"$tmp/bench.err")
rc=$?
[ $rc = 0 ] || { cat "$tmp/bench.err"; die "pcbench bench exited $rc"; }
[ -d "$dir" ] || die "bench printed '$dir', not a directory"
case "$(basename "$dir")" in tiny-20[0-9][0-9][0-1][0-9][0-3][0-9]T*Z-*) ;; *) die "directory name '$dir' is not <name>-<date>-<gitrev>";; esac
[ -L "$tmp/res/tiny-latest" ] || die "no tiny-latest link"
grep -q "4 runs, 4 to do" "$tmp/bench.err" || die "progress does not announce 4 runs: $(head -1 "$tmp/bench.err")"
[ "$(grep -c '^bench: \[[1-4]/4\] .* ok (' "$tmp/bench.err")" = 4 ] || { cat "$tmp/bench.err"; die "expected 4 plain progress lines (stderr is not a terminal)"; }
grep -q 'ETA' "$tmp/bench.err" || die "progress lines lack an ETA"
for f in job.conf system.json manifest.json COMPLETE results.csv summary.csv; do
	[ -e "$dir/$f" ] || die "missing $dir/$f"
done
cmp -s "$tmp/tiny.conf" "$dir/job.conf" || die "job.conf is not a copy of the job file"

# make plots RESULTS=dir draws the figures from the directory alone
make --no-print-directory plots RESULTS="$dir" >"$tmp/plots.out" 2>&1 || { cat "$tmp/plots.out"; die "make plots failed"; }
for f in summary.md summary.tex stats.csv; do [ -s "$dir/$f" ] || die "make plots wrote no $dir/$f"; done

python3 - "$dir" <<'PY' || exit 1
import csv, json, os, sys
d = sys.argv[1]
fail = []
ids = [f"{p}-random-loopback-r{r}" for r in (1, 2) for p in ("demand", "sequential")]
runs = {}
for i in ids:
    j = json.load(open(f"{d}/runs/{i}.json"))
    runs[i] = j
    if j["status"] != "ok": fail.append(f"{i}: status {j['status']}")
    v = j["results"]["verify"]
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 8192:
        fail.append(f"{i}: verification {v}")
    if j["config"]["mem"] != 32 << 20 or j["config"]["duration_ns"] != 300_000_000:
        fail.append(f"{i}: config not from the job file: {j['config']}")
    if not os.path.getsize(f"{d}/runs/{i}.timeline.csv"): fail.append(f"{i}: empty timeline")
    if "git_revision" not in j or "host" not in j["system"]: fail.append(f"{i}: no git revision/system block")
sysj = json.load(open(f"{d}/system.json"))
if "kernel" not in sysj["host"] or "git_revision" not in sysj: fail.append("system.json lacks host/git revision")
man = json.load(open(f"{d}/manifest.json"))
if not man["complete"] or [r["id"] for r in man["runs"]] != ids or any(r["status"] != "ok" for r in man["runs"]):
    fail.append(f"manifest: {man}")

rows = list(csv.reader(open(f"{d}/results.csv")))
if rows[0] != ["run_id", "policy", "workload", "link", "rep", "metric", "stat", "value"]:
    fail.append(f"results.csv header {rows[0]}")
body = rows[1:]
if any(len(r) != 8 for r in body): fail.append("a results.csv row has != 8 fields")
if sorted({r[0] for r in body}) != sorted(ids): fail.append(f"run ids in CSV: {sorted({r[0] for r in body})}")
per = {}
for r in body:
    per.setdefault(r[0], []).append(r)
    key = (r[0], r[5], r[6])
counts = {i: len(v) for i, v in per.items()}
if len(set(counts.values())) != 1: fail.append(f"runs have different row counts: {counts}")
keys = [(r[0], r[5], r[6]) for r in body]
if len(keys) != len(set(keys)): fail.append("duplicate (run_id, metric, stat) rows")
def val(i, m, s="value"):
    hits = [r for r in body if r[0] == i and r[5] == m and r[6] == s]
    if len(hits) != 1:
        fail.append(f"{i} {m} {s}: {len(hits)} rows"); return None
    return hits[0][7]
for i in ids:
    j = runs[i]["results"]
    pol, rep = i.split("-")[0], i[-1]
    r0 = per[i][0]
    if r0[1:5] != [pol, "random", "loopback", rep]: fail.append(f"{i}: columns {r0[1:5]}")
    checks = [("migration_time_ms", "value", j["time"]["total_migration_ns"] / 1e6),
              ("blocktime_ms", "value", j["blocktime"]["total_ns"] / 1e6),
              ("faults", "value", j["faults"]["count"]),
              ("pages_background", "value", j["pages"]["background"]),
              ("fault_latency_us", "p99", j["faults"]["latency"]["p99_ns"] / 1e3),
              ("fault_latency_us", "count", j["faults"]["latency"]["count"])]
    for m, s, want in checks:
        got = val(i, m, s)
        if got is not None and abs(float(got) - want) > 1e-9 * max(1, abs(want)):
            fail.append(f"{i} {m}/{s}: csv {got} json {want}")
    hr = val(i, "hit_rate")
    # demand pulls nothing ahead, so its hits are only accesses that started first, were
    # preempted before reaching the page, and found it brought by another vCPU's fault
    # (first touch = the earliest-starting access, docs/metrics.md): a few per run
    if pol == "demand" and hr is not None and float(hr) > 0.005: fail.append(f"{i}: demand hit rate {hr} > 0.005")
    acc = val(i, "accuracy")
    if pol == "demand" and acc != "NA": fail.append(f"{i}: demand accuracy should be NA (no background pages), is {acc}")

# summary: per cell median/min/max/n and merged latency percentiles
srows = list(csv.reader(open(f"{d}/summary.csv")))[1:]
for pol in ("demand", "sequential"):
    cell = f"{pol}-random-loopback"
    def sval(m, s):
        h = [r for r in srows if r[0] == cell and r[5] == m and r[6] == s]
        return float(h[0][7]) if len(h) == 1 else None
    if sval("migration_time_ms", "n") != 2: fail.append(f"{cell}: n != 2")
    a, b = (runs[f"{cell}-r{r}"]["results"]["time"]["total_migration_ns"] / 1e6 for r in (1, 2))
    if abs(sval("migration_time_ms", "median") - (a + b) / 2) > 1e-6: fail.append(f"{cell}: median of 2 is not their mean")
    if sval("migration_time_ms", "min") != min(a, b) and abs(sval("migration_time_ms", "min") - min(a, b)) > 1e-6: fail.append(f"{cell}: min")
    # merged histogram: count is the sum, p99 lies within the runs' range of values
    cnt = sum(runs[f"{cell}-r{r}"]["results"]["faults"]["latency"]["count"] for r in (1, 2))
    if sval("fault_latency_us", "merged_count") != cnt: fail.append(f"{cell}: merged count {sval('fault_latency_us','merged_count')} != {cnt}")
    # recompute the merged p50 from the bins of both runs
    bins = {}
    for r in (1, 2):
        for lo, c in runs[f"{cell}-r{r}"]["results"]["faults"]["latency"]["bins"]:
            bins[lo] = bins.get(lo, 0) + c
    rank, seen = -(-cnt * 50 // 100), 0
    for lo in sorted(bins):
        seen += bins[lo]
        if seen >= rank:
            break
    p50 = sval("fault_latency_us", "merged_p50") * 1e3
    if not (lo <= p50 <= lo * (1 + 1 / 64) + 1): fail.append(f"{cell}: merged p50 {p50} ns not in the bucket at {lo} ns")
md = open(f"{d}/summary.md").read()
for s in ("## Findings", "median [bootstrap 95 % CI of the median]", "Mann–Whitney", "Holm", "Power: with n = 2",
          "| random | loopback | demand |", "| random | loopback | sequential |", "## Comparisons", "Runs: 4 planned, 4 ok"):
    if s not in md: fail.append(f"summary.md lacks '{s}'")
tex = open(f"{d}/summary.tex").read()
if "\\begin{tabular}" not in tex or "\\end{tabular}" not in tex or tex.count("\\\\\n") != 3:
    fail.append("summary.tex is not a tabular with a header and 2 rows")

# figures: six, each a valid PDF and PNG
figs = ["fig1_latency_cdf", "fig2_throughput", "fig3_pages_present", "fig4_time_bars", "fig5_prefetch", "fig6_fault_map",
        "fig7_headline", "fig8_sensitivity"]
for f in figs:
    pdf = open(f"{d}/figures/{f}.pdf", "rb").read()
    if not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-64:] or len(pdf) < 2000:
        fail.append(f"{f}.pdf is not a valid PDF ({len(pdf)} bytes)")
    png = open(f"{d}/figures/{f}.png", "rb").read()
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or b"IEND" not in png[-12:]:
        fail.append(f"{f}.png is not a valid PNG")
    import struct
    w, h = struct.unpack(">II", png[16:24])
    if w < 300 or h < 200: fail.append(f"{f}.png is {w}x{h}")
# figure 2 is drawn from data when the runs record guest progress, and says it is absent otherwise
meta = open(f"{d}/plotdata/meta.gp").read()
has_prog = all("progress" in runs[i]["results"] for i in ids)
if ("have_progress = 1" in meta) != has_prog:
    fail.append(f"figure 2: runs {'have' if has_prog else 'lack'} results.progress but meta.gp says otherwise")
if has_prog:
    lines = [l for l in open(f"{d}/plotdata/progress.dat") if l.strip() and not l.startswith("#")]
    if len(lines) < 4 or any("NaN" in l for l in lines): fail.append(f"progress.dat: {len(lines)} rows / NaN")
extra = sorted(set(os.listdir(f"{d}/figures")) - {f + e for f in figs for e in (".pdf", ".png")})
if extra: fail.append(f"unexpected files in figures/ (gnuplot warnings?): {extra}")
if fail:
    print("FAIL:\n  " + "\n  ".join(fail)); sys.exit(1)
print(f"ok: {len(body)} tidy rows for 4 runs, summary and 16 figure files valid")
PY

# resume: nothing to re-run
stamp=$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")
dir2=$(./pcbench bench "$tmp/tiny.conf" --out="$dir" 2>"$tmp/bench2.err") || { cat "$tmp/bench2.err"; die "resume exited $?"; }
grep -q "4 runs, 0 to do" "$tmp/bench2.err" || { cat "$tmp/bench2.err"; die "resume of a complete experiment re-ran runs"; }
[ "$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")" = "$stamp" ] || die "a completed run's JSON was rewritten"
# a lost run is re-run alone
rm "$dir/runs/sequential-random-loopback-r2.json"
./pcbench bench "$tmp/tiny.conf" --out="$dir" >/dev/null 2>"$tmp/bench3.err" || { cat "$tmp/bench3.err"; die "re-run exited $?"; }
grep -q "4 runs, 1 to do" "$tmp/bench3.err" || { cat "$tmp/bench3.err"; die "expected exactly one run to redo"; }
[ -s "$dir/runs/sequential-random-loopback-r2.json" ] || die "the lost run was not re-run"
[ "$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")" = "$stamp" ] || die "an unaffected run was re-run"

# interruption: SIGINT after the first run; exit 130; the same command resumes the rest
sed 's/^reps .*/reps = 3/; s/^name .*/name = intr/' "$tmp/tiny.conf" >"$tmp/intr.conf"
./pcbench bench "$tmp/intr.conf" --results="$tmp/res" >/dev/null 2>"$tmp/intr.err" &
pid=$!
for _ in $(seq 100); do grep -q '\[1/6\].* ok' "$tmp/intr.err" && break; sleep 0.1; done
kill -INT $pid
wait $pid; rc=$?
[ $rc = 130 ] || { cat "$tmp/intr.err"; die "interrupted bench exited $rc, expected 130"; }
grep -q "interrupted; run the same command again to resume" "$tmp/intr.err" || die "no resume hint after interruption"
idir=$(readlink -f "$tmp/res/intr-latest")
done_before=$(ls "$idir"/runs/*.json 2>/dev/null | grep -vc failed)
[ "$done_before" -ge 1 ] && [ "$done_before" -lt 6 ] || die "after interruption $done_before runs are done (want 1..5)"
[ ! -e "$idir/COMPLETE" ] || die "an interrupted experiment is marked complete"
./pcbench bench "$tmp/intr.conf" --results="$tmp/res" >"$tmp/intr2.out" 2>"$tmp/intr2.err" || { cat "$tmp/intr2.err"; die "resume after interruption failed"; }
grep -q "6 runs, $((6 - done_before)) to do (resuming" "$tmp/intr2.err" || { cat "$tmp/intr2.err"; die "resume did not pick up the interrupted directory"; }
[ "$(cat "$tmp/intr2.out")" = "$idir" ] || die "resume wrote to $(cat "$tmp/intr2.out"), not $idir"
[ -e "$idir/COMPLETE" ] || die "resumed experiment not complete"

# a bad job file: exit 65, one line naming file, line and key
printf '[experiment]\npolicies = demand\nworkloads = random\nmem = lots\n' >"$tmp/bad.conf"
./pcbench bench "$tmp/bad.conf" --results="$tmp/res" >/dev/null 2>"$tmp/bad.err"; rc=$?
[ $rc = 65 ] || die "bad job file: exit $rc, expected 65"
grep -q "$tmp/bad.conf:4: key 'mem': invalid value for --mem: 'lots'" "$tmp/bad.err" || die "bad job message: $(cat "$tmp/bad.err")"
[ "$(wc -l <"$tmp/bad.err")" = 1 ] || die "bad job message is not one line"
./pcbench bench "$tmp/missing.conf" 2>/dev/null; [ $? = 64 ] || die "missing job file should exit 64"
./pcbench analyze "$tmp" 2>"$tmp/an.err"; [ $? = 65 ] || die "analyze of a non-results directory should exit 65"
echo "PASS: bench_tiny"
