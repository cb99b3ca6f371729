#!/usr/bin/python3
"""Statistics of a `pcbench bench` results directory: summary.md, summary.tex, stats.csv.

Usage: analysis/stats.py RESULTS_DIR      (after `pcbench analyze RESULTS_DIR`)

Reads RESULTS_DIR/results.csv (tidy, written by pcbench) and writes
  stats.csv     per cell: n, median, bootstrap 95 % CI of the median; per comparison:
                ratio of medians with its bootstrap 95 % CI, Mann-Whitney U p, Holm-adjusted p
  summary.md    findings (generated from the data), the power estimate, the tables, comparisons
  summary.tex   the headline table as a LaTeX tabular (booktabs)
  plotdata/headline.dat, plotdata/headline.gp   input of analysis/fig7_headline.gp
Statistics (docs/metrics.md, "bench statistics"): SciPy's bootstrap (percentile, 4999
resamples, fixed seed: the same data give the same intervals) and two-sided Mann-Whitney U
(exact for small samples without ties); Holm's step-down over the comparisons of one metric
in one workload x link group.  Latency percentiles stay those of the merged histograms
(summary.csv, from pcbench analyze).
Debian's python3-scipy (make deps); run with /usr/bin/python3 (a pyenv python lacks it).
"""
import csv, math, os, sys
from collections import OrderedDict, defaultdict

try:
    import numpy as np
    from scipy import stats
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"stats: {e}: install python3-scipy and python3-numpy (make deps) and run with /usr/bin/python3")

ALPHA = 0.05
EFFECT = 0.10            # the difference the power estimate is about (10 %)
RESAMPLES = 4999
SEED = 20261204

# (metric in results.csv, title, scale, better: -1 lower, +1 higher); the first present of each
# alternative list is used (newer pcbench builds carry the windowed/two-definition fields).
METRICS = [
    (["stall_pct"], "stalled (% of run)", 1, -1),
    (["blocktime_sum_vcpus_ms", "blocktime_ms"], "blocktime (ms)", 1, -1),
    (["work_vs_local_pct"], "guest work (% of local)", 1, +1),
    (["migration_time_ms"], "migration time (ms)", 1, -1),
    (["faults_migration", "faults"], "faults", 1, -1),
    (["hit_rate_migration", "hit_rate"], "hit rate (%)", 100, +1),
    (["ops_per_sec"], "guest (M ops/s)", 1e-6, +1),
]
HEADLINE = 0             # index into METRICS: the metric of the headline figure and the findings
FORMATS = {"hit rate, whole run (%)": "%.1f", "hit rate, migration window (%)": "%.1f", "faults, migration window": "%.0f",
           "guest work (% of local)": "%.1f", "stalled (% of run)": "%.3g", "blocktime (ms)": "%.0f", "migration time (ms)": "%.0f", "faults": "%.0f",
           "hit rate (%)": "%.1f", "guest (M ops/s)": "%.3g"}
REFERENCES = ("demand", "sequential")
# which definition a column shows, when a build's JSON lacks the newer field (fallback named)
TITLES = {"hit_rate": "hit rate, whole run (%)", "hit_rate_migration": "hit rate, migration window (%)",
          "faults": "faults", "faults_migration": "faults, migration window",
          "blocktime_ms": "blocktime (ms)", "blocktime_sum_vcpus_ms": "blocktime (ms)"}
NOUNS = {"stalled (% of run)": "time stalled", "guest work (% of local)": "guest work"}   # every policy is also compared with these


def holm(pvals):
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    SciPy 1.10 (Debian 12) has no multiple-comparison adjustment; this is the textbook
    procedure: sort ascending, p_(i) * (m - i + 1), running maximum, capped at 1."""
    m = len(pvals)
    order = sorted(range(m), key=lambda i: pvals[i])
    adj, run = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        run = max(run, min(1.0, (m - rank) * pvals[i]))
        adj[i] = run
    return adj


def median_ci(x):
    """Median and percentile-bootstrap 95 % CI (NaN, NaN for n < 2 or a constant sample)."""
    x = np.asarray(x, float)
    med = float(np.median(x))
    if len(x) < 2 or np.all(x == x[0]):
        return med, (med, med) if len(x) >= 2 else (math.nan, math.nan)
    r = stats.bootstrap((x,), np.median, n_resamples=RESAMPLES, method="percentile",
                        confidence_level=0.95, random_state=np.random.default_rng(SEED))
    return med, (float(r.confidence_interval.low), float(r.confidence_interval.high))


def ratio_ci(a, b):
    """Ratio of medians a/b and its two-sample percentile-bootstrap 95 % CI."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    mb = np.median(b)
    ratio = float(np.median(a) / mb) if mb else math.nan
    if len(a) < 2 or len(b) < 2 or not mb or not math.isfinite(ratio):
        return ratio, (math.nan, math.nan)

    def stat(x, y, axis=-1):
        mx, my = np.median(x, axis=axis), np.median(y, axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            # a resample whose denominator median is 0: x/0 is +inf, 0/0 counts as equal (1)
            return np.where(my == 0, np.where(mx == 0, 1.0, np.inf), mx / np.where(my == 0, 1, my))
    with np.errstate(invalid="ignore"):
        r = stats.bootstrap((a, b), stat, n_resamples=RESAMPLES, method="percentile", vectorized=True,
                            confidence_level=0.95, random_state=np.random.default_rng(SEED))
    lo, hi = float(r.confidence_interval.low), float(r.confidence_interval.high)
    return ratio, (lo, hi)


def mwu(a, b):
    """Two-sided Mann-Whitney U p-value (1.0 when both samples are constant and equal)."""
    if len(a) < 1 or len(b) < 1:
        return math.nan
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def load(d):
    """{(link, workload, policy): {metric: [values by rep order]}}, policy/workload/link orders."""
    cells = defaultdict(lambda: defaultdict(list))
    order = {"policy": OrderedDict(), "workload": OrderedDict(), "link": OrderedDict()}
    with open(os.path.join(d, "summary.csv")) as f:      # pcbench's order: job file order
        for r in csv.DictReader(f):
            for k in order:
                order[k][r[k]] = 1
    with open(os.path.join(d, "results.csv")) as f:
        for r in csv.DictReader(f):
            if r["stat"] != "value" or r["value"] in ("NA", ""):
                continue
            cells[(r["link"], r["workload"], r["policy"])][r["metric"]].append(float(r["value"]))
    return cells, [list(order[k]) for k in ("policy", "workload", "link")]


def pick_metric(cells, names):
    for n in names:
        if any(n in m for m in cells.values()):
            return n
    return None


class Analysis:
    def __init__(self, d):
        self.dir = d
        self.cells, (self.policies, self.workloads, self.links) = load(d)
        self.local_ops = {}
        self.baseline = "local" if any(k[2] == "local" for k in self.cells) else None
        self.migrated = [p for p in self.policies if p != self.baseline]
        self.add_work_vs_local()
        self.add_stall_pct()
        self.metrics = []
        for names, title, scale, better in METRICS:
            m = pick_metric(self.cells, names)
            if m:
                self.metrics.append((m, TITLES.get(m, title), scale, better))
        self.cellstats = {}      # (link, wl, pol, metric) -> (n, median, lo, hi)
        self.comps = []          # dicts, see compare()
        self.best = {}           # (link, wl, metric) -> (policy or None, significant vs all)
        self.tier = {}           # (link, wl, metric) -> the best group ([] if the tests do not separate one)

    def add_stall_pct(self):
        """stall_pct of a run: its blocktime (sum over vCPUs) over its guest time x vCPUs, x 100:
        the share of the guest's run its vCPUs spent stalled on faults (the headline metric)."""
        for ms in self.cells.values():
            blk = ms.get("blocktime_sum_vcpus_ms") or ms.get("blocktime_ms")
            gt, nv = ms.get("guest_time_ms"), ms.get("vcpus")
            if blk and gt and len(blk) == len(gt):
                ms["stall_pct"] = [100 * b / g / (nv[i] if nv and i < len(nv) else 1) for i, (b, g) in enumerate(zip(blk, gt)) if g > 0]

    def add_work_vs_local(self):
        """work_vs_local_pct of a run: its guest ops over the median guest ops of the local
        baseline of the same workload (every link: the baseline runs on the first), x 100.
        Over a fixed --duration that is the guest work the migration cost; after the last page
        both run at the same speed, so 100 - it is the work lost during the migration."""
        if not self.baseline:
            return
        for wl in self.workloads:
            base = [v for (l, w, p), ms in self.cells.items() if w == wl and p == self.baseline
                    for v in ms.get("guest_ops", [])]
            if not base:
                continue
            mb = float(np.median(base))
            self.local_ops[wl] = base
            for (l, w, p), ms in list(self.cells.items()):
                if w == wl and p != self.baseline and ms.get("guest_ops") and mb > 0:
                    ms["work_vs_local_pct"] = [100 * v / mb for v in ms["guest_ops"]]

    def values(self, link, wl, pol, metric):
        return self.cells.get((link, wl, pol), {}).get(metric, [])

    def run(self):
        for metric, title, scale, better in self.metrics:
            for link in self.links:
                for wl in self.workloads:
                    self.group(link, wl, metric, better)
        return self

    def group(self, link, wl, metric, better):
        pols = [p for p in self.migrated if self.values(link, wl, p, metric)]
        for p in pols:
            v = self.values(link, wl, p, metric)
            if metric == "work_vs_local_pct":
                ratio, (lo, hi) = ratio_ci(self.values(link, wl, p, "guest_ops"), self.local_ops[wl])
                med, lo, hi = 100 * ratio, 100 * lo, 100 * hi
            else:
                med, (lo, hi) = median_ci(v)
            self.cellstats[(link, wl, p, metric)] = (len(v), med, lo, hi)
        if len(pols) < 2:
            return
        meds = {p: self.cellstats[(link, wl, p, metric)][1] for p in pols}
        best = min(pols, key=lambda p: meds[p] * -better)
        anchors = [best] + [r for r in REFERENCES if r in pols and r != best]
        pairs = []
        for a in anchors:
            for p in pols:
                if p != a and (p, a) not in pairs and (a, p) not in pairs:
                    pairs.append((p, a))
        rows = []
        for p, a in pairs:
            x, y = self.values(link, wl, p, metric), self.values(link, wl, a, metric)
            ratio, (lo, hi) = ratio_ci(x, y)
            rows.append(dict(link=link, workload=wl, metric=metric, a=p, b=a, ratio=ratio, lo=lo, hi=hi,
                             p=mwu(x, y), na=len(x), nb=len(y)))
        for r, adj in zip(rows, holm([r["p"] if math.isfinite(r["p"]) else 1.0 for r in rows])):
            r["p_holm"] = adj
            r["significant"] = adj < ALPHA
            r["family"] = len(rows)
        self.comps += rows
        vs_best = [r for r in rows if r["b"] == best or r["a"] == best]
        self.best[(link, wl, metric)] = (best, bool(vs_best) and all(r["significant"] for r in vs_best))
        # the best group: the best and the policies not significantly different from it; it is
        # reported only when every policy outside it is significantly different from the best
        tier = [best] + [p for p in pols if p != best and not self.comp(link, wl, metric, p, best)["significant"]] \
            if vs_best else [best]
        self.tier[(link, wl, metric)] = tier if len(tier) < len(pols) else []

    def comp(self, link, wl, metric, a, b):
        for r in self.comps:
            if (r["link"], r["workload"], r["metric"]) == (link, wl, metric) and {r["a"], r["b"]} == {a, b}:
                if r["a"] == a:
                    return r
                inv = dict(r, a=a, b=b, ratio=1 / r["ratio"] if r["ratio"] else math.nan,
                           lo=1 / r["hi"] if r["hi"] else math.nan, hi=1 / r["lo"] if r["lo"] else math.nan)
                return inv
        return None

    # ---- power ------------------------------------------------------------------------------
    def noise(self, metric):
        """Within-cell relative residuals log(x / cell median) of every cell with n >= 2."""
        res = []
        for (link, wl, pol), ms in self.cells.items():
            v = np.asarray(ms.get(metric, []), float)
            v = v[v > 0]
            if len(v) >= 2:
                res.extend(np.log(v / np.median(v)))
        return np.asarray(res)

    def power(self, metric, n, alpha, sims=1000):
        """Monte-Carlo power of the two-sided Mann-Whitney U test at level alpha to detect a
        10 % shift, with samples drawn from this experiment's own within-cell noise."""
        res = self.noise(metric)
        if len(res) < 4:
            return math.nan
        rng = np.random.default_rng(SEED)
        hit = 0
        shift = math.log(1 + EFFECT)
        for _ in range(sims):
            a = rng.choice(res, n)
            b = rng.choice(res, n) + shift
            if stats.mannwhitneyu(a, b, alternative="two-sided").pvalue < alpha:
                hit += 1
        return hit / sims

    def reps(self):
        ns = [s[0] for s in self.cellstats.values()]
        return int(np.median(ns)) if ns else 0


def fmt(v, f="%.3g"):
    return "n/a" if v is None or not math.isfinite(v) else f % v


def could_reject(r):
    """Whether a comparison could have been significant at all: the smallest two-sided exact
    Mann-Whitney p for its sample sizes, 2 / C(na + nb, na), is below its Holm threshold alpha/m."""
    return r["na"] >= 1 and r["nb"] >= 1 and 2 / math.comb(r["na"] + r["nb"], r["na"]) < ALPHA / r["family"]


def pct(r):
    return "%.0f %%" % (100 * r) if math.isfinite(r) else "n/a"


def ci_txt(lo, hi, f="%.2f"):
    return "[%s, %s]" % (fmt(lo, f), fmt(hi, f)) if math.isfinite(lo) else "(no CI: n < 2)"


def pv(p):
    return "p < 0.001" if p < 0.001 else "p = %.3f" % p if p < 0.1 else "p = %.2f" % p


def findings(A):
    """3-5 sentences from the headline metric: per link the largest significant gain over
    demand and over sequential, then where the policy does not matter, then the power."""
    if not A.metrics:
        return ["No metric of the headline table is present in results.csv."]
    metric, title, scale, better = A.metrics[0]
    what = NOUNS.get(title, title.split(" (")[0])
    out = []
    for link in A.links:
        parts = []
        for ref in REFERENCES:
            best = None
            for wl in A.workloads:
                for p in A.migrated:
                    if p == ref:
                        continue
                    r = A.comp(link, wl, metric, p, ref)
                    if not r or not r["significant"]:
                        continue
                    gain = -math.log(r["ratio"]) * -better if r["ratio"] > 0 else 0
                    if gain > 0 and (best is None or gain > best[0]):
                        best = (gain, wl, p, r)
            if best:
                _, wl, p, r = best
                parts.append("%s's %s on `%s` is %s of `%s`'s (ratio of medians %.2f, 95 %% CI %s, Holm-adjusted %s)"
                             % (p, what, wl, pct(r["ratio"]), ref, r["ratio"], ci_txt(r["lo"], r["hi"]), pv(r["p_holm"])))
            elif ref in A.migrated:
                rs = [A.comp(link, wl, metric, p, ref) for wl in A.workloads for p in A.migrated if p != ref]
                if any(r and could_reject(r) for r in rs):
                    parts.append("no policy differs significantly from `%s` on any workload" % ref)
                else:
                    parts.append("no comparison with `%s` can reach significance with this few repetitions "
                                 "(smallest possible p = 2/C(2n, n) above α/m)" % ref)
        if parts:
            out.append("On link `%s`, %s." % (link, "; ".join(parts)))
    # where the choice does not matter: groups in which no background policy differs from sequential
    same = []
    for link in A.links:
        for wl in A.workloads:
            rs = [A.comp(link, wl, metric, p, "sequential") for p in A.migrated if p not in ("sequential", "demand")]
            rs = [r for r in rs if r]
            if rs and not any(r["significant"] for r in rs) and all(could_reject(r) for r in rs):
                same.append("`%s`/`%s` (smallest Holm-adjusted p %.2f)" % (wl, link, min(r["p_holm"] for r in rs)))
    if same:
        out.append("The background policies cannot be told apart from `sequential` on %s: there the choice of policy "
                   "does not measurably matter for %s." % (", ".join(same), what))
    unit = " %" if "%" in title else ""
    tiers = []
    for link in A.links:
        for wl in A.workloads:
            tier = A.tier.get((link, wl, metric), [])
            if tier and (len(tier) > 1 or A.best.get((link, wl, metric), (None, False))[1]):
                b = tier[0]
                others = [p for p in A.migrated if p not in tier and A.comp(link, wl, metric, p, b)]
                worst_p = max((A.comp(link, wl, metric, p, b)["p_holm"] for p in others), default=math.nan)
                tiers.append("on `%s`/`%s` %s (Holm-adjusted p ≤ %.3f against each other policy)" % (
                    wl, link, ", ".join("`%s` %s%s" % (p, fmt(A.cellstats[(link, wl, p, metric)][1] * scale, FORMATS.get(title, "%.3g")), unit)
                                        for p in tier), worst_p))
    if tiers:
        out.append("Best by %s (a policy alone, or a group with no significant difference within; every other policy "
                   "significantly %s): %s." % (what, "higher" if better < 0 else "lower", "; ".join(tiers)))
    out.append(power_sentence(A, metric, what))
    return out


def power_sentence(A, metric, what):
    n = A.reps()
    fam = max([r["family"] for r in A.comps if r["metric"] == metric] or [1])
    res = A.noise(metric)
    if n < 2 or len(res) < 4:
        return "Too few repetitions (n = %d) to estimate the power of the tests." % n
    sd = float(np.std(res, ddof=1))
    p_raw = A.power(metric, n, ALPHA)
    p_holm = A.power(metric, n, ALPHA / fam)
    need = next((k for k in range(max(3, n), 21) if A.power(metric, k, ALPHA / fam, 300) >= 0.8), None)
    return ("Power: with n = %d repetitions per cell and this run's own noise in %s (within-cell SD of log values %.3f, "
            "i.e. ~%.0f %%), a two-sided Mann–Whitney U test detects a %d %% difference with probability %.2f at α = 0.05, "
            "and %.2f at the strictest Holm step (α/%d); %s."
            % (n, what, sd, 100 * (math.exp(sd) - 1), 100 * EFFECT, p_raw, p_holm, fam,
               "80 %% power at that step needs n ≥ %d" % need if need else "even n = 20 does not reach 80 % at that step"))


def md_tables(A, f):
    f.write("## Tables\n\nEach cell: **median [bootstrap 95 % CI of the median]** over the repetitions (n per cell in "
            "`stats.csv`).  **Bold**: the best median of its workload × link group, and only when it differs from "
            "every other policy by a two-sided Mann–Whitney U test, Holm-adjusted over the group's comparisons of "
            "that metric, p < 0.05.  Unmarked best medians are not significantly better.  "
            "Fault latency percentiles: `summary.csv` (`merged_*`, from the histograms of all repetitions merged).  "
            "Blocktime is the sum over the vCPUs of their stalls (`results.blocktime.sum_vcpus_ns`; `total_ns`, the same "
            "sum, from builds without it); the hit rate is {}.\n\n".format(
                "over the migration window (`results.prefetch.during_migration`)" if any(m == "hit_rate_migration" for m, _, _, _ in A.metrics)
                else "over the whole run (this build records no `results.prefetch.during_migration`)"))
    f.write("| workload | link | policy | " + " | ".join(t for _, t, _, _ in A.metrics) + " |\n")
    f.write("|---|---|---|" + "---:|" * len(A.metrics) + "\n")
    for link in A.links:
        for wl in A.workloads:
            for p in A.policies:
                cellsv = [A.values(link, wl, p, m) for m, _, _, _ in A.metrics]
                if not any(cellsv):
                    continue
                row = []
                for (m, t, scale, better), v in zip(A.metrics, cellsv):
                    if not v:
                        row.append("—")
                        continue
                    n, med, lo, hi = A.cellstats.get((link, wl, p, m)) or (len(v), *([median_ci(v)[0]] + list(median_ci(v)[1])))
                    ff = FORMATS.get(t, "%.3g")
                    c = "%s [%s–%s]" % (fmt(med * scale, ff), fmt(lo * scale, ff), fmt(hi * scale, ff)) if n > 1 else fmt(med * scale, ff)
                    b, sig = A.best.get((link, wl, m), (None, False))
                    row.append("**%s**" % c if b == p and sig else c)
                f.write("| %s | %s | %s%s | %s |\n" % (wl, link, p, " (baseline)" if p == A.baseline else "", " | ".join(row)))


def md_comparisons(A, f):
    f.write("\n## Comparisons\n\nPer workload × link and metric: each policy against the best one, `demand` and "
            "`sequential`: ratio of medians with its bootstrap 95 % CI, two-sided Mann–Whitney U p and the "
            "Holm-adjusted p over that group's comparisons of that metric (family size m).\n\n")
    for link in A.links:
        for wl in A.workloads:
            lines = []
            for m, t, scale, better in A.metrics:
                for r in A.comps:
                    if (r["link"], r["workload"], r["metric"]) != (link, wl, m):
                        continue
                    verdict = ("%s (%s, Holm %s)" % ("lower" if r["ratio"] < 1 else "higher", pv(r["p"]), pv(r["p_holm"]))
                               if r["significant"] else "no significant difference (%s, Holm-adjusted %s)" % (pv(r["p"]), pv(r["p_holm"])))
                    lines.append("  - %s: %s / %s = %s %s, n = %d/%d, m = %d: %s\n" % (
                        t, r["a"], r["b"], fmt(r["ratio"]), ci_txt(r["lo"], r["hi"], "%.3g"), r["na"], r["nb"], r["family"], verdict))
            if lines:
                f.write("- **%s / %s**\n" % (wl, link) + "".join(lines))


def write_tex(A, path):
    with open(path, "w") as f:
        f.write("%% pcbench: median [bootstrap 95%% CI]; bold: best and significantly different from every other\n"
                "%% policy (two-sided Mann-Whitney U, Holm over the group's comparisons, p < 0.05).  Needs booktabs.\n")
        f.write("\\begin{tabular}{lll%s}\n\\toprule\nworkload & link & policy" % ("r" * len(A.metrics)))
        for _, t, _, _ in A.metrics:
            f.write(" & " + t.replace("%", "\\%"))
        f.write(" \\\\\n\\midrule\n")
        esc = lambda s: "".join("\\" + c if c in "&%$#_{}" else c for c in s)
        for link in A.links:
            for wl in A.workloads:
                for p in A.policies:
                    if not any(A.values(link, wl, p, m) for m, _, _, _ in A.metrics):
                        continue
                    f.write("%s & %s & %s" % (esc(wl), esc(link), esc(p)))
                    for m, t, scale, better in A.metrics:
                        s = A.cellstats.get((link, wl, p, m))
                        if not s:
                            f.write(" & ---")
                            continue
                        ff = FORMATS.get(t, "%.3g")
                        c = "%s {\\scriptsize [%s, %s]}" % (fmt(s[1] * scale, ff), fmt(s[2] * scale, ff), fmt(s[3] * scale, ff))
                        b, sig = A.best.get((link, wl, m), (None, False))
                        f.write(" & " + ("\\textbf{%s}" % c if b == p and sig else c))
                    f.write(" \\\\\n")
                f.write("\\midrule\n")
        f.write("\\bottomrule\n\\end{tabular}\n")


def write_stats_csv(A, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "link", "workload", "metric", "policy", "vs", "n", "n_vs", "median_or_ratio", "ci_low", "ci_high",
                    "p", "p_holm", "family", "significant"])
        for (link, wl, p, m), (n, med, lo, hi) in A.cellstats.items():
            w.writerow(["cell", link, wl, m, p, "", n, "", "%.10g" % med, "%.10g" % lo, "%.10g" % hi, "", "", "", ""])
        for r in A.comps:
            w.writerow(["comparison", r["link"], r["workload"], r["metric"], r["a"], r["b"], r["na"], r["nb"],
                        "%.10g" % r["ratio"], "%.10g" % r["lo"], "%.10g" % r["hi"], "%.6g" % r["p"], "%.6g" % r["p_holm"],
                        r["family"], int(r["significant"])])


def write_headline(A):
    """plotdata/headline.dat: policy x (workload, link) of the headline metric, with its CI and
    the winner mark (significant only).  guest work (% of local) is shown as it is; another
    headline metric is shown relative to demand's median (%).  headline.gp: labels for gnuplot."""
    if not A.metrics:
        return
    metric, title, scale, better = A.metrics[HEADLINE]
    direct = metric in ("work_vs_local_pct", "stall_pct")
    ref = None if direct else "demand" if "demand" in A.migrated else A.migrated[0]
    pd = os.path.join(A.dir, "plotdata")
    os.makedirs(pd, exist_ok=True)
    groups = [(l, w) for l in A.links for w in A.workloads]
    with open(os.path.join(pd, "headline.dat"), "w") as f:
        f.write("# x=group y=policy value ci_lo ci_hi winner(1: best and significantly different from every other) label\n")
        for gi, (l, w) in enumerate(groups):
            for pi, p in enumerate(A.migrated):
                s = A.cellstats.get((l, w, p, metric))
                r = A.comp(l, w, metric, p, ref) if ref and p != ref else None
                if direct and s:
                    v, lo, hi = s[1], s[2], s[3]
                elif ref and p == ref and s:
                    v, lo, hi = 100.0, math.nan, math.nan
                elif r:
                    v, lo, hi = 100 * r["ratio"], 100 * r["lo"], 100 * r["hi"]
                else:
                    f.write("%d %d NaN NaN NaN 0 \"\"\n" % (gi, pi))
                    continue
                b, sig = A.best.get((l, w, metric), (None, False))
                win = 1 if b == p and sig else 2 if p in A.tier.get((l, w, metric), []) else 0
                lab = ("%.0f" % v if abs(v) >= 10 else "%.1f" % v) + ("*" if win == 1 else "")
                f.write("%d %d %.6g %.6g %.6g %d \"%s\"\n" % (gi, pi, v, lo, hi, win, lab))
            f.write("\n")
    what = title if direct else "%s, %% of %s's" % (title.split(" (")[0], ref)
    with open(os.path.join(pd, "headline.gp"), "w") as f:
        f.write("# generated by analysis/stats.py\n")
        f.write("hl_metric = \"%s\"\nhl_better = %d\nhl_ngroups = %d\nhl_npol = %d\nhl_nrep = %d\n"
                % (what, better, len(groups), len(A.migrated), A.reps()))
        f.write("hl_xtics = \"(%s)\"\n" % ", ".join("\\\"%s\\\\n%s\\\" %d" % (w, l, i) for i, (l, w) in enumerate(groups)))
        f.write("hl_ytics = \"(%s)\"\n" % ", ".join("\\\"%s\\\" %d" % (p, i) for i, p in enumerate(A.migrated)))


def write_sensitivity(A):
    """plotdata/sens_bw.dat, sens_rtt.dat (simulated curves), sens_live.dat (live medians with CI) and
    sens_simlive.dat (simulated at the live links), blocks per (workload, policy); sens.gp: labels.
    From RESULTS_DIR/sweep/sweep.csv (analysis/sweep.py); the metric is blocktime (ms)."""
    path = os.path.join(A.dir, "sweep", "sweep.csv")
    pd = os.path.join(A.dir, "plotdata")
    if not os.path.exists(path):
        with open(os.path.join(pd, "sens.gp"), "w") as f:
            f.write("have_sweep = 0\n")
        return None
    rows = list(csv.DictReader(open(path)))
    wls = list(OrderedDict((r["workload"], 1) for r in rows))
    pols = [p for p in A.migrated if any(r["policy"] == p for r in rows)]
    sweep = [r for r in rows if "," in r["link"]]          # sweep points are specs; live ones are link names
    rtts = defaultdict(set)
    bws = defaultdict(set)
    for r in sweep:
        rtts[float(r["rtt_us"])].add(float(r["bandwidth_bps"]))
        bws[float(r["bandwidth_bps"])].add(float(r["rtt_us"]))
    curve_rtt = max(rtts, key=lambda k: len(rtts[k])) if rtts else 0
    curve_bw = max(bws, key=lambda k: len(bws[k])) if bws else 0
    blk = A.metrics[[m[1] for m in A.metrics].index("blocktime (ms)")][0] if any(m[1] == "blocktime (ms)" for m in A.metrics) else None
    live_bw = {}
    for r in rows:
        if "," not in r["link"]:
            live_bw[r["link"]] = (float(r["bandwidth_bps"]), float(r["rtt_us"]))
    floor = 0.1                                            # a zero blocktime is drawn at 0.1 ms (log axis)
    with open(os.path.join(pd, "sens_bw.dat"), "w") as fb, open(os.path.join(pd, "sens_rtt.dat"), "w") as fr, \
            open(os.path.join(pd, "sens_live.dat"), "w") as fl, open(os.path.join(pd, "sens_simlive.dat"), "w") as fs:
        for w in wls:
            for p in pols:
                pts = sorted((float(r["bandwidth_bps"]) / 1e9, max(floor, float(r["blocktime_ms"]))) for r in sweep
                             if r["workload"] == w and r["policy"] == p and float(r["rtt_us"]) == curve_rtt)
                fb.write("# %s %s: bandwidth_gbit blocktime_ms (RTT %g us)\n" % (w, p, curve_rtt))
                fb.write("".join("%g %g\n" % x for x in pts) or "NaN NaN\n")
                fb.write("\n\n")
                pts = sorted((float(r["rtt_us"]), max(floor, float(r["blocktime_ms"]))) for r in sweep
                             if r["workload"] == w and r["policy"] == p and float(r["bandwidth_bps"]) == curve_bw)
                fr.write("# %s %s: rtt_us blocktime_ms (%g gbit)\n" % (w, p, curve_bw / 1e9))
                fr.write("".join("%g %g\n" % x for x in pts) or "NaN NaN\n")
                fr.write("\n\n")
                fl.write("# %s %s: live bandwidth_gbit median lo hi rtt_us\n" % (w, p))
                fs.write("# %s %s: simulated at the live links: bandwidth_gbit blocktime_ms rtt_us\n" % (w, p))
                nl = ns = 0
                for ln, (bw, rtt) in live_bw.items():
                    st = A.cellstats.get((ln, w, p, blk)) if blk else None
                    if st:
                        fl.write("%g %g %g %g %g\n" % (bw / 1e9, max(floor, st[1]), max(floor, st[2] if math.isfinite(st[2]) else st[1]),
                                                       max(floor, st[3] if math.isfinite(st[3]) else st[1]), rtt))
                        nl += 1
                    for r in rows:
                        if r["link"] == ln and r["workload"] == w and r["policy"] == p:
                            fs.write("%g %g %g\n" % (bw / 1e9, max(floor, float(r["blocktime_ms"])), rtt))
                            ns += 1
                fl.write("" if nl else "NaN NaN NaN NaN NaN\n")
                fs.write("" if ns else "NaN NaN NaN\n")
                fl.write("\n\n")
                fs.write("\n\n")
    with open(os.path.join(pd, "sens.gp"), "w") as f:
        f.write("have_sweep = 1\nsens_nwl = %d\nsens_npol = %d\nsens_rtt = %g\nsens_bw = %g\n" % (len(wls), len(pols), curve_rtt, curve_bw / 1e9))
        f.write("array sens_wl[%d] = [%s]\n" % (len(wls), ", ".join('"%s"' % w for w in wls)))
        f.write("array sens_pol[%d] = [%s]\n" % (len(pols), ", ".join('"%s"' % p for p in pols)))
    return rows


def sweep_sentence(rows, A):
    """One sentence from the sweep: per workload, the spread of the background policies' simulated
    blocktime at the slowest swept link (where the choice of policy matters, where it does not)."""
    if not rows:
        return None
    sweep = [r for r in rows if "," in r["link"] and r["policy"] != "demand"]
    if not sweep:
        return None
    parts = []
    for w in OrderedDict((r["workload"], 1) for r in sweep):
        rs = [r for r in sweep if r["workload"] == w]
        slow = min(float(r["bandwidth_bps"]) for r in rs)
        rtt = max(float(r["rtt_us"]) for r in rs if float(r["bandwidth_bps"]) == slow)
        at = {r["policy"]: float(r["blocktime_ms"]) for r in rs if float(r["bandwidth_bps"]) == slow and float(r["rtt_us"]) == rtt}
        if len(at) < 2:
            continue
        best, worst = min(at, key=at.get), max(at, key=at.get)
        ratio = at[worst] / at[best] if at[best] > 0 else math.inf
        parts.append("`%s` %s (%s %.0f ms vs %s %.0f ms)" % (w, "×%.1f" % ratio if math.isfinite(ratio) else "from 0", best,
                                                         at[best], worst, at[worst]))
    if not parts:
        return None
    return ("In the simulated sweep (figure 8; one recorded trace per workload, no repetitions) the spread between the best and "
            "worst background policy's blocktime at the slowest swept link (%.3g Gbit/s) is: %s; where it is near ×1 the "
            "choice of background policy does not matter." % (slow / 1e9, "; ".join(parts)))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: analysis/stats.py RESULTS_DIR")
    d = sys.argv[1]
    if not os.path.exists(os.path.join(d, "results.csv")):
        print("stats: %s has no results.csv (run pcbench analyze first)" % d, file=sys.stderr)
        sys.exit(65)
    A = Analysis(d).run()
    write_stats_csv(A, os.path.join(d, "stats.csv"))
    write_tex(A, os.path.join(d, "summary.tex"))
    write_headline(A)
    sweep_rows = write_sensitivity(A)
    hp = os.path.join(d, "plotdata", "summary_head.md")
    head = open(hp).read() if os.path.exists(hp) else ""
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(head.rstrip("\n") + "\n\n" if head else "# Summary\n\n")
        fs = findings(A)
        sw = sweep_sentence(sweep_rows, A)
        if sw:
            fs.insert(len(fs) - 1, sw)
        f.write("## Findings\n\n" + " ".join(fs) + "\n\n")
        md_tables(A, f)
        md_comparisons(A, f)
        f.write("\nData: `results.csv` (tidy, one row per run × metric × statistic), `summary.csv` (per cell, "
                "descriptive; merged latency percentiles), `stats.csv` (intervals and tests).\n")
    print("stats: %s/summary.md, summary.tex, stats.csv (%d cells, %d comparisons)" % (d, len(A.cellstats), len(A.comps)))


if __name__ == "__main__":
    main()
