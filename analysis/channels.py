#!/usr/bin/env python3
"""1 vs 2 channels: demand fault latency under a saturating background pull.

Usage: analysis/channels.py RESULTS_DIR   (a `pcbench bench configs/channels.conf` directory)

Reads RESULTS_DIR/runs/*.json, groups the runs by policy (sequential: a
saturating background pull; demand: none, the reference), emulated link
(--link, or loopback; --socket-buffer) and --channels, pools the guest-side fault latency histograms of the
repetitions (results.faults.latency bins), and prints per setting the pooled
median and p99, the range of the per-run medians, and the ratio of the 1-channel
to the 2-channel median measured in the same invocation.  Also writes
RESULTS_DIR/channels.json and RESULTS_DIR/channels.md.  Exit 1 if a run failed
verification or a setting has no run.
"""
import glob, json, math, os, sys

TARGET_P50_NS, TARGET_P99_NS, TARGET_RATIO = 100e3, 1e6, 5.0


def bin_mid(lower):
    # common/hist.h: exact below 64 ns, then 64 linear sub-buckets per power of two
    if lower < 64:
        return float(lower)
    width = 2 ** int(math.floor(math.log2(lower))) / 64
    return lower + width / 2


def pooled_percentile(bins, q):
    total = sum(c for _, c in bins)
    if not total:
        return None
    want = q / 100 * total
    acc = 0
    for lower, c in sorted(bins):
        acc += c
        if acc >= want:
            return bin_mid(lower)
    return bin_mid(sorted(bins)[-1][0])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    files = sorted(glob.glob(os.path.join(d, "runs", "*.json")))
    if not files:
        sys.exit("channels: no runs in %s/runs" % d)
    groups = {}
    bad = []
    for f in files:
        js = json.load(open(f))
        cfg, r = js["config"], js.get("results", {})
        if js.get("status") != "ok" or r.get("verify", {}).get("pages_corrupt", 1) or r.get("verify", {}).get("pages_missing", 1):
            bad.append(os.path.basename(f))
            continue
        link = cfg.get("link") or "loopback"
        sb = cfg.get("socket-buffer", 4 << 20)
        link += "" if sb == 4 << 20 else ", socket buffers %s" % ("autotuned" if sb == 0 else "%d KiB" % (sb >> 10))
        pol = cfg["policy"]
        g = groups.setdefault((pol, link, cfg["channels"]), {"runs": [], "bins": []})
        lat = r["faults"]["latency"]
        g["bins"] += [tuple(b) for b in lat.get("bins", [])]
        g["runs"].append({"file": os.path.basename(f), "faults": lat["count"], "p50_ns": lat["p50_ns"],
                          "p99_ns": lat["p99_ns"], "demand_cpu": r["pager"]["demand_thread_cpu"],
                          "background_cpu": r["pager"]["background_thread_cpu"],
                          "guest_cpus": sorted({v.get("cpu_end", -1) for v in r["guest"]["vcpus"]}),
                          "migration_ms": r["time"]["total_migration_ns"] / 1e6,
                          "loadavg_1m": js.get("system", {}).get("host", {}).get("loadavg", [None])[0],
                          "git": js.get("git_revision", "")})
    out = {"settings": [], "ratios": [], "failed_runs": bad}
    lines = ["| policy | link | channels | runs | faults | fault p50 (pooled) | p99 (pooled) | per-run p50 range | per-run p99 range | migration ms | load avg at start |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    stats = {}
    order = lambda l: (not l.startswith("loopback"), l != "loopback", l)
    porder = lambda p: (p != "sequential", p)
    for (pol, link, ch), g in sorted(groups.items(), key=lambda kv: (porder(kv[0][0]), order(kv[0][1]), -kv[0][2])):
        p50, p99 = pooled_percentile(g["bins"], 50), pooled_percentile(g["bins"], 99)
        n = sum(x["faults"] for x in g["runs"])
        r50 = [x["p50_ns"] for x in g["runs"]]
        r99 = [x["p99_ns"] for x in g["runs"]]
        la = [x["loadavg_1m"] for x in g["runs"] if x["loadavg_1m"] is not None]
        mig = [x["migration_ms"] for x in g["runs"]]
        stats[(pol, link, ch)] = (p50, p99)
        out["settings"].append({"policy": pol, "link": link, "channels": ch, "runs": g["runs"], "faults": n,
                                "p50_ns": p50, "p99_ns": p99})
        lines.append("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %.0f-%.0f | %s |" % (
            pol, link, ch, len(g["runs"]), n, fmt(p50), fmt(p99),
            "%s-%s" % (fmt(min(r50)), fmt(max(r50))), "%s-%s" % (fmt(min(r99)), fmt(max(r99))), min(mig), max(mig),
            "%.1f-%.1f" % (min(la), max(la)) if la else "-"))
    lines.append("")
    ok = not bad
    for link in sorted({k[1] for k in stats}, key=order):
        one, two = stats.get(("sequential", link, 1)), stats.get(("sequential", link, 2))
        ref = stats.get(("demand", link, 2))
        if not one or not two or not one[0] or not two[0]:
            lines.append("%s: 1 or 2 channels missing" % link)
            ok = False
            continue
        ratio = one[0] / two[0]
        rec = {"link": link, "p50_ratio_1ch_over_2ch": ratio, "p99_ratio_1ch_over_2ch": one[1] / two[1]}
        lines.append("%s, saturating pull: median fault latency 1 channel / 2 channels = %.1fx (p99 %.1fx)%s" % (
            link, ratio, one[1] / two[1], "; target >= %.0fx: %s" % (TARGET_RATIO, "met" if ratio >= TARGET_RATIO else "NOT met")
            if link == "loopback" else ""))
        if link == "loopback":
            rec["targets"] = {"p50_2ch_le_100us": two[0] <= TARGET_P50_NS, "p99_2ch_le_1ms": two[1] <= TARGET_P99_NS,
                              "ratio_ge_5": ratio >= TARGET_RATIO}
            lines.append("loopback, 2 channels: median %s (target <= 100 us: %s), p99 %s (target <= 1 ms: %s)" % (
                fmt(two[0]), "met" if two[0] <= TARGET_P50_NS else "NOT met",
                fmt(two[1]), "met" if two[1] <= TARGET_P99_NS else "NOT met"))
        if ref and ref[0]:
            rec["no_background_2ch"] = {"p50_ns": ref[0], "p99_ns": ref[1]}
            lines.append("%s, 2 channels, no background pull (--policy=demand, same invocation): median %s, p99 %s" % (
                link, fmt(ref[0]), fmt(ref[1])))
        out["ratios"].append(rec)
    if bad:
        lines.append("runs that failed or did not verify: " + ", ".join(bad))
    text = "\n".join(lines)
    print(text)
    json.dump(out, open(os.path.join(d, "channels.json"), "w"), indent=1)
    with open(os.path.join(d, "channels.md"), "w") as f:
        f.write("# Demand fault latency under a saturating background pull: 1 vs 2 channels\n\n" + text + "\n")
    sys.exit(0 if ok else 1)


def fmt(ns):
    if ns is None:
        return "-"
    return "%.1f us" % (ns / 1e3) if ns < 1e6 else "%.2f ms" % (ns / 1e6)


if __name__ == "__main__":
    main()
