"""Checks of tests/integ/bench_*.sh: `pcbench bench` result directories and analysis/*.py."""
import csv
import importlib.util
import json
import os
import random
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


def tiny(d):
    """The tiny experiment's directory D (demand and sequential x random x 2 reps, 32 MiB, 300 ms):
    every run ok, 8192 pages verified, its config from the job file, a timeline and its system
    block; system.json and a complete manifest; results.csv with the tidy header, 8 fields a
    row, the same rows per run, no duplicate key, values equal to the JSON's (migration time,
    blocktime, faults, background pages, fault p99 and count), demand's hit rate at most 0.005
    and accuracy NA; summary.csv's n, median of 2 (their mean), min, merged count and merged p50
    in the right bucket of both runs' bins; summary.md's sections and summary.tex's tabular;
    figures 1-8 valid PDF and PNG (at least 300x200) and nothing else in figures/; figure 2
    drawn from data exactly when the runs record progress."""
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
