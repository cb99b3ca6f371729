#!/usr/bin/env python3
"""The rows and the table of bench/scale.sh (make bench-scale).

    scaletable.py row JSON SIZE_BYTES GUEST EXIT REP FLOOR_JSON MEMORY PIN  one scale.csv row for one pull
    scaletable.py finish OUTDIR [FROM_BYTES]                            fills the first-touch column, writes
                                                                        medians.csv and prints the table

Definitions: docs/metrics.md, "Scale".  A row's floor is the first install row (placement same) of the
`pcbench floor --bulk-variants=install:copy` run of the same size in the same sweep.  The table gives, for
each size and guest, the median over the sweeps of every figure, the range of the pull throughput, and
whether the guest's size changes the pull throughput at all (Kruskal-Wallis over the sweeps' pull
throughputs of the sizes from FROM_BYTES up, default 1 GiB as issue 17 asks, SciPy).  Only pulls that
exited 0 enter the medians.
"""
import csv
import json
import os
import statistics
import sys

COLUMNS = ("size_bytes", "guest", "migration_ms", "pull_gbps", "pager_rss_bytes", "pager_fraction",
           "completed_while_guest_ran", "install_us_per_page", "installer_cpu_us_per_page",
           "receive_cpu_us_per_page", "source_cpu_us_per_page", "exit", "floor_gbps", "touch_us_per_page",
           "memory", "rep", "pin")
NUMERIC = ("migration_ms", "pull_gbps", "pager_rss_bytes", "pager_fraction", "install_us_per_page",
           "installer_cpu_us_per_page", "receive_cpu_us_per_page", "source_cpu_us_per_page", "floor_gbps",
           "touch_us_per_page")
PER_PAGE = (("pull_us", "pull wall"), ("install_us_per_page", "install ioctls"),
            ("installer_cpu_us_per_page", "installer CPU"), ("receive_cpu_us_per_page", "receive CPU"),
            ("source_cpu_us_per_page", "source CPU"), ("touch_us_per_page", "bare 1st touch"))


def floor_gbps(path):
    """The first install row of a floor run (placement same), or '' when the floor failed."""
    try:
        rows = [x["gb_per_s"] for x in json.load(open(path))["results"]["bulk"] if x["variant"] == "install"]
    except (OSError, ValueError, KeyError):
        return ""
    return "%.4f" % rows[0] if rows else ""


def row(path, size, guest, rc, rep, floor_json, memory, pin):
    """One scale.csv row for the pull whose JSON is PATH (the columns after exit only, when it has none)."""
    size, rc = int(size), int(rc)
    fl = floor_gbps(floor_json)
    out = csv.writer(sys.stdout, lineterminator="\n")   # the pin value holds commas: quoted
    try:
        r = json.load(open(path))["results"]
        mig = r["time"]["total_migration_ns"]
        m, ib, c = r["pager"]["memory"], r["pager"]["install"]["background"], r["cpu"]
    except (OSError, ValueError, KeyError, TypeError):
        out.writerow([size, guest] + [""] * 9 + [rc, fl, "", memory, rep, pin])
        return
    bp = ib["pages"] or 1   # per background page: the installer's ioctl wall time and CPU, the receiver's CPU
    out.writerow([size, guest, "%.1f" % (mig / 1e6), "%.4f" % (size / mig if mig else 0), m["pager_rss_excluding_guest"],
                  "%.6f" % m["pager_rss_fraction_of_guest"], str(r["time"]["completed_while_guest_ran"]).lower(),
                  "%.3f" % (ib["install_ns"] / bp / 1e3), "%.3f" % ((c["installer_ns"] or 0) / bp / 1e3),
                  "%.3f" % ((c["background_ns"] or 0) / bp / 1e3), "%.3f" % ((c["source_process_ns"] or 0) / (size / 4096) / 1e3),
                  rc, fl, "", memory, rep, pin])


def name(size):
    return "%dG" % (size >> 30) if size >= 1 << 30 else "%dM" % (size >> 20)


def fill_touch(outdir, rows):
    """The first-touch column: the mean of the size's bare first touch before and after the sweeps."""
    for r in rows:
        t = []
        for w in ("before", "after"):
            try:
                t.append(json.load(open(os.path.join(outdir, "%s-touch-%s.json" % (name(int(r["size_bytes"])), w))))
                         ["first_touch_us_per_page"])
            except (OSError, ValueError, KeyError):
                pass
        r["touch_us_per_page"] = "%.3f" % statistics.mean(t) if t else ""


def medians(rows):
    """{(size, guest): {column: median over the sweeps that exited 0, 'n', 'exits', 'pull_range', 'ratio'}}."""
    groups = {}
    for r in rows:
        groups.setdefault((int(r["size_bytes"]), r["guest"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["exit"] == "0" and r["migration_ms"]]
        g = {"n": len(ok), "exits": ",".join(r["exit"] for r in rs), "rows": ok}
        for k in NUMERIC:
            v = [float(r[k]) for r in ok if r[k]]
            g[k] = statistics.median(v) if v else None
        g["pull_us"] = g["migration_ms"] * 1e3 / (key[0] / 4096) if g["migration_ms"] else None
        p = [float(r["pull_gbps"]) for r in ok]
        g["pull_range"] = (min(p), max(p)) if p else None
        q = [float(r["pull_gbps"]) / float(r["floor_gbps"]) for r in ok if r["floor_gbps"]]
        g["ratio"] = statistics.median(q) if q else None
        out[key] = g
    return out


def f(x, spec="%.3f", none="-"):
    """X formatted by SPEC, or NONE where there is no value ('-' in the table, '' in medians.csv)."""
    return spec % x if x is not None else none


def size_effect(groups):
    """Kruskal-Wallis H test over the sweeps' pull throughputs of each size judged (None: not testable)."""
    samples = [[float(r["pull_gbps"]) for r in g["rows"]] for g in groups]
    if len(samples) < 2 or any(len(s) < 2 for s in samples):
        return None
    try:
        from scipy.stats import kruskal
    except ImportError:
        return "not tested (SciPy missing: make deps)"
    try:
        h, p = kruskal(*samples)
    except ValueError as e:   # every value equal: SciPy refuses to rank them
        return "not testable (%s)" % e
    return "Kruskal-Wallis H %.2f, p %.3f (%s sweeps per size)" % (h, p, "/".join(str(len(s)) for s in samples))


def table(med, sweeps, first):
    """The table of the medians, the per-page breakdown, and the flatness, size-test and pager-memory lines."""
    keys = sorted(med)
    fmt = "%-6s %-8s %12s %9s %17s %10s %10s %13s %10s %6s %s"
    print(fmt % ("size", "guest", "migration ms", "pull GB/s", "pull min-max", "floor GB/s", "pull/floor",
                 "pager RSS MiB", "% of guest", "sweeps", "exits"))
    for k in keys:
        g = med[k]
        rng = "%.3f-%.3f" % g["pull_range"] if g["pull_range"] else "-"
        print(fmt % (name(k[0]), k[1], f(g["migration_ms"], "%.1f"), f(g["pull_gbps"]), rng, f(g["floor_gbps"]),
                     f(g["ratio"]), f(g["pager_rss_bytes"] and g["pager_rss_bytes"] / 2**20, "%.2f"),
                     f(g["pager_fraction"] and 100 * g["pager_fraction"]), g["n"], g["exits"]))
    print()
    print("medians over the sweeps; per 4 KiB page (us): pull wall = migration time / pages; install ioctls = the "
          "installer's install ioctl time (the kernel allocating each fresh page, the host's first touch of it, the "
          "copy) and installer/receive CPU per background page (installer 0 when the installs ran inline, "
          "results.pager.install.installer: receive CPU then includes them); source CPU per guest page; bare 1st "
          "touch = one write per page of fresh memory of that size, no pager, before and after the sweeps "
          "(bench/firsttouch.py)")
    print("%-6s %-8s" % ("size", "guest") + "".join(" %15s" % c[1] for c in PER_PAGE))
    for k in keys:
        if med[k]["n"]:
            print("%-6s %-8s" % (name(k[0]), k[1]) + "".join(" %15s" % f(med[k][c]) for c, _ in PER_PAGE))
    print()
    for guest in ("idle", "running"):
        big = [k for k in keys if k[1] == guest and k[0] >= first and med[k]["n"]]
        if len(big) < 2:
            continue
        gs = [med[k] for k in big]
        t = [g["pull_gbps"] for g in gs]
        frm, last = name(big[0][0]), name(big[-1][0])
        print("%s: pull throughput from %s to %s: min/max of the medians %.3f (target >= 0.9: flat within 10 %%)" %
              (guest, frm, last, min(t) / max(t)))
        effect = size_effect(gs)
        if effect:
            print("%s: does the size change the pull throughput? %s" % (guest, effect))
        for c, what in PER_PAGE:
            v = [g[c] for g in gs]
            if None not in v and min(v) > 0:
                print("%s: %s per page from %s to %s: %s us (min/max %.3f)" %
                      (guest, what, frm, last, " ".join("%.3f" % x for x in v), min(v) / max(v)))
        q = [g["ratio"] for g in gs]
        if None not in q:
            print("%s: pull / floor of the same size from %s to %s: min/max %.3f" % (guest, frm, last, min(q) / max(q)))
    for k in keys:
        if k[0] >= 16 << 30 and med[k]["n"]:
            print("%s at 16 GiB: pager memory %.3f %% of the guest (target <= 0.2 %%)" %
                  (k[1], 100 * med[k]["pager_fraction"]))
    print("sweeps: %d, each over every size in order (the host's drift falls on every size alike)" % sweeps)


def finish(outdir, first=1 << 30):
    """After the sweeps: the first-touch column filled in, medians.csv written, the table printed (flatness and
    the size test judged from FIRST bytes up)."""
    path = os.path.join(outdir, "scale.csv")
    rows = list(csv.DictReader(open(path)))
    fill_touch(outdir, rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    med = medians(rows)
    with open(os.path.join(outdir, "medians.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS[:-2] + ("sweeps", "pin"))
        for (size, guest), g in sorted(med.items()):
            if not g["n"]:
                continue
            w.writerow([size, guest, f(g["migration_ms"], "%.2f", none=""), f(g["pull_gbps"], "%.5f", none=""),
                        "%d" % g["pager_rss_bytes"], f(g["pager_fraction"], "%.6f", none=""), "",
                        f(g["install_us_per_page"], "%.4f", none=""), f(g["installer_cpu_us_per_page"], "%.4f", none=""),
                        f(g["receive_cpu_us_per_page"], none=""), f(g["source_cpu_us_per_page"], none=""), 0,
                        f(g["floor_gbps"], "%.5f", none=""), f(g["touch_us_per_page"], none=""), rows[0]["memory"], g["n"], g["rows"][0]["pin"]])
    sweeps = max((int(r["rep"]) for r in rows), default=0)
    table(med, sweeps, int(first))


def main():
    if len(sys.argv) == 10 and sys.argv[1] == "row":
        row(*sys.argv[2:])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "finish":
        finish(*sys.argv[2:])
    else:
        sys.exit("usage: scaletable.py row JSON SIZE GUEST EXIT REP FLOOR_JSON MEMORY PIN | finish OUTDIR [FROM_BYTES]")


if __name__ == "__main__":
    main()
