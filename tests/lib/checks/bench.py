"""Checks of tests/integ/bench_*.sh: `pcbench bench` result directories and analysis/*.py."""
import importlib.util
import random
import os
import csv
import json
import sys


def shards_merged(full, merged, s1, s2):
    """Two shards S1 and S2 merged by `pcbench analyze` into MERGED equal the unsharded run FULL:
    the same manifest run ids, the shards partition the runs (3 each, no overlap), and
    results.csv and summary.csv hold the same rows (first 7 columns, sorted)."""
    bad = []
    ids = lambda d: [r["id"] for r in json.load(open(f"{d}/manifest.json"))["runs"]]
    if ids(full) != ids(merged): bad.append(f"manifest ids {ids(merged)} != {ids(full)}")
    a, b = set(ids(s1)), set(ids(s2))
    if a & b or a | b != set(ids(full)) or len(a) != 3: bad.append(f"shards do not partition the runs: {a} {b}")
    def keys(d, f):
        return sorted(tuple(r[:7]) for r in list(csv.reader(open(f"{d}/{f}")))[1:])
    for f in ("results.csv", "summary.csv"):
        kf, km = keys(full, f), keys(merged, f)
        if kf != km: bad.append(f"{f}: {len(km)} rows vs {len(kf)}; first difference {next((x for x in zip(kf, km) if x[0] != x[1]), None)}")
    if bad: print("\n".join(bad)); sys.exit(1)
    print(f"merged = unsharded: {len(ids(full))} runs, {len(keys(full, 'results.csv'))} tidy rows")


def sweep_output(d):
    """A bench directory D after analysis/sweep.py and plots.sh: sweep.csv has 2 workloads x 3
    policies x 3 links, the live link equals its sweep point's simulation, the job's three
    policies, every migration time > 0, blocktime at 1 Gbit/s not below 10 Gbit/s (phase), 3
    live points overlaid in sens_live.dat, the sweep sentence in summary.md and figure 8 (pdf,
    png) at least 2000 bytes."""
    rows = list(csv.DictReader(open(f"{d}/sweep/sweep.csv")))
    bad = []
    if len(rows) != 2 * 3 * 3: bad.append(f"{len(rows)} rows, want 2 workloads x 3 policies x 3 links")
    key = lambda r: (r["workload"], r["policy"])
    live = {key(r): r for r in rows if r["link"] == "fast"}
    swept = {key(r): r for r in rows if r["link"] == "10gbit,100us"}
    for k in live:
        if [live[k][c] for c in ("blocktime_ms", "faults")] != [swept[k][c] for c in ("blocktime_ms", "faults")]:
            bad.append(f"live link {k} not the same simulation as its sweep point")
    pols = {r["policy"] for r in rows}
    if pols != {"sequential", "qemu-1ch", "replay"}: bad.append(f"policies {pols}")
    for r in rows:
        if float(r["migration_ms"]) <= 0: bad.append(f"no migration time: {r}")
    slow = {r["policy"]: float(r["blocktime_ms"]) for r in rows if r["workload"] == "phase" and r["link"] == "1gbit,100us"}
    fast = {r["policy"]: float(r["blocktime_ms"]) for r in rows if r["workload"] == "phase" and r["link"] == "10gbit,100us"}
    if not all(slow[p] >= fast[p] for p in slow): bad.append(f"blocktime at 1 Gbit/s below 10 Gbit/s: {slow} {fast}")
    live = [l for l in open(f"{d}/plotdata/sens_live.dat") if l.strip() and not l.startswith("#") and "NaN" not in l]
    if len(live) != 3: bad.append(f"{len(live)} live points overlaid, want 3 (phase x 3 policies x 1 live link)")
    md = open(f"{d}/summary.md").read()
    if "In the simulated sweep" not in md: bad.append("no sweep sentence in the findings")
    for t in ("pdf", "png"):
        if os.path.getsize(f"{d}/figures/fig8_sensitivity.{t}") < 2000: bad.append(f"figure 8 {t} empty")
    if bad: print("\n".join(bad)); sys.exit(1)


def write_stats_fixture(d):
    """Not a check: write synthetic tidy data (results.csv, summary.csv) into D for
    analysis/stats.py: workload 'few' with 3 repetitions and disjoint ranges, 'many' with 8
    repetitions and trend ~40 % below sequential, and local baselines (random.Random(7), so
    always the same data)."""
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


def stats_tables(d):
    """analysis/stats.py's output in D for write_stats_fixture's data: Holm's adjustment matches
    the worked example (and caps at 1); 3 vs 3 disjoint ranges give p = 0.1, not significant; 8
    vs 8 40 % apart is significant (Holm p < 0.05) with ratio in (0.5, 0.7) inside its CI and a
    family of 3; every cell median inside its CI; trend's work vs local in (88, 91) %;
    summary.md bolds only the clear winner and has the findings, the power line and the p = 0.10
    sentence."""
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


def remote_run_ok(path):
    """One run of a bench against a remote source: status ok and no corrupt page."""
    j = json.load(open(path)); sys.exit(j['status'] != 'ok' or j['results']['verify']['pages_corrupt'] != 0)
