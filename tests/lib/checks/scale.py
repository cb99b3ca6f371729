"""Checks of tests/integ/scale_memory.sh: the pager's own memory as the guest grows."""
import json
import os


def memory(small, large):
    """Two verified migrations (SMALL: 256 MiB, LARGE: 1 GiB); the pager's RSS excluding the guest grows by
    less than 0.001 bytes per guest byte (4.1 bytes a page) between them: the per-page state is 1.5 bytes
    a page (4-bit install kind, three page bitmaps and the background's) plus the install log (12 bytes a
    run of pages installed back to back; one 4-byte install time per page, as before, would be 5.5)."""
    a, b = (json.load(open(f))["results"] for f in (small, large))
    for r in (a, b):
        v = r["verify"]
        assert v["done"] and not v["pages_corrupt"] and not v["pages_missing"], "verify %s" % v
        m = r["pager"]["memory"]
        assert m["measured"] and m["pager_rss_excluding_guest"] > 0, "memory not measured: %s" % m
        assert m["guest_region_rss"] <= m["guest_region_bytes"], "guest RSS above the region size"
        # the vCPU stall lists (harness, not pager): whole pages of one vCPU's list, which starts at
        # 4096 entries of 16 bytes and grows by doubling only past them (2000 accesses never do)
        s = m["vcpu_stall_records_rss"]
        assert s % 4096 == 0 and s <= 4096 * 16, "stall records %d bytes" % s
        # the install log: nothing lost, runs far fewer than pages on a sequential pull (a run ends
        # where the installer refreshes its clock, every 16 pages, or where a job ends)
        pages = m["guest_region_bytes"] // 4096
        assert m["install_log_dropped"] == 0, "install log dropped %d runs" % m["install_log_dropped"]
        assert 0 < m["install_log_runs"] <= pages // 4, "install log %d runs for %d pages" % (m["install_log_runs"], pages)
        assert m["install_log_bytes"] == 12 * m["install_log_runs"], "install log bytes"
    ma, mb = a["pager"]["memory"], b["pager"]["memory"]
    slope = (mb["pager_rss_excluding_guest"] - ma["pager_rss_excluding_guest"]) / (mb["guest_region_bytes"] - ma["guest_region_bytes"])
    print("pager RSS excluding the guest: %.2f MiB at 256 MiB, %.2f MiB at 1 GiB: %.5f bytes per guest byte (%.2f bytes per page)" % (
        ma["pager_rss_excluding_guest"] / 2**20, mb["pager_rss_excluding_guest"] / 2**20, slope, slope * 4096))
    if os.environ.get("BUILD", "").endswith("-san"):
        # ASan's shadow is 1/8 of every byte instrumented code reads (the verification reads the
        # guest); on a kernel without the shared zero page (pvm_no_zero_page=1) reading it
        # populates it: 0.126 seen, the shadow's 1/8.  The plain build's pass judges the slope.
        print("scale memory: slope not judged under ASan (its shadow memory grows with the guest)")
        return
    assert 0 < slope < 0.001, "growth %.5f per guest byte, want below 0.001" % slope
    print("scale memory: ok")


SIZES = {"32M": 32 << 20, "64M": 64 << 20}


PIN = "guest=0,demand=0,source=0,background=1,install=1"
NAMED_PIN = {"same": "guest=0,demand=0,background=0,install=0,source=0",     # pcbench --help, --pin
             "split": "guest=0,demand=0,background=1,install=1,source=1"}


def bench(outdir, memory="warm", reps="2", sizes="64M", pin=PIN, pin_running="none"):
    """bench/scale.sh at small SIZES (space-separated), REPS sweeps: every pull verified (exit 0), every
    column filled, the per-page breakdown consistent with the pull's JSON, each row's floor the floor run of
    its own sweep, a bare first touch measured before and after the sweeps, medians.csv the medians over the
    sweeps, and the table printing the breakdown and the number of sweeps, and with two sizes and two sweeps
    or more the flatness and a Kruskal-Wallis test (SciPy reached); the memory column says MEMORY, and with
    warm every floor and pull was preceded by a warm-up of the size + 1 GiB (none with settled); every pull
    ran with its placement, idle PIN, running PIN_RUNNING (the CSV's pin column, the JSON's placement, the
    table's last line)."""
    import csv
    import os
    import statistics
    reps, sizes = int(reps), sizes.split()
    rows = list(csv.DictReader(open(os.path.join(outdir, "scale.csv"))))
    want = [(str(SIZES[z]), g, str(n)) for n in range(1, reps + 1) for z in sizes for g in ("idle", "running")]
    got = [(r["size_bytes"], r["guest"], r["rep"]) for r in rows]
    assert got == want, "rows %s, want %s" % (got, want)
    assert all(r["memory"] == memory for r in rows), "memory column %s, want %s" % ([r["memory"] for r in rows], memory)
    for z in sizes:
        for n in range(1, reps + 1):
            for step in ("floor", "idle", "running"):
                f = os.path.join(outdir, "%s-r%d-%s-warm.json" % (z, n, step))
                if memory == "warm":
                    w = json.load(open(f))
                    assert w["warm_bytes"] == SIZES[z] + (1 << 30) and w["populate_ns"] > 0, "warm-up before %s: %s" % (step, w)
                else:
                    assert not os.path.exists(f), "settled run warmed memory before %s" % step
    name = {str(b): z for z, b in SIZES.items()}
    for r in rows:
        z = name[r["size_bytes"]]
        assert r["exit"] == "0", "%s %s pull exit %s" % (z, r["guest"], r["exit"])
        assert all(r[k] for k in r), "empty column in %s" % r
        j = json.load(open(os.path.join(outdir, "%s-r%s-%s.json" % (z, r["rep"], r["guest"]))))["results"]
        ib = j["pager"]["install"]["background"]
        pl = j["pager"]["placement"]
        want_pin = pin if r["guest"] == "idle" else pin_running
        assert r["pin"] == want_pin, "%s pin column %r, want %r" % (r["guest"], r["pin"], want_pin)
        if want_pin == "none":
            assert pl["background_pinned_cpu"] == -1 and pl["source_pinned_cpu"] == -1, "unpinned run pinned: %s" % pl
        else:
            want_pl = dict(x.split("=") for x in NAMED_PIN.get(want_pin, want_pin).split(","))
            assert all(pl["%s_pinned_cpu" % k] == int(v) for k, v in want_pl.items()), "placement %s, want %s" % (pl, want_pin)
        assert abs(float(r["install_us_per_page"]) - ib["install_ns"] / ib["pages"] / 1e3) < 0.002, "install us/page"
        assert abs(float(r["installer_cpu_us_per_page"]) - j["cpu"]["installer_ns"] / ib["pages"] / 1e3) < 0.002, "installer CPU"
        assert abs(float(r["migration_ms"]) - j["time"]["total_migration_ns"] / 1e6) < 0.1, "migration ms"
        assert 0 < float(r["pager_fraction"]) < 1, "pager fraction"
        fl = json.load(open(os.path.join(outdir, "%s-r%s-floor.json" % (z, r["rep"]))))["results"]["bulk"]
        fl = [x["gb_per_s"] for x in fl if x["variant"] == "install"][0]
        assert abs(float(r["floor_gbps"]) - fl) < 0.0002, "floor of sweep %s: %s, its floor run %.4f" % (r["rep"], r["floor_gbps"], fl)
        t = [json.load(open(os.path.join(outdir, "%s-touch-%s.json" % (z, w)))) for w in ("before", "after")]
        for x in t:
            assert x["pages"] == SIZES[z] // 4096 and x["pass1_ns"] > x["pass2_ns"] > 0, "first touch %s: %s" % (z, x)
        mean = sum(x["first_touch_us_per_page"] for x in t) / 2
        assert abs(float(r["touch_us_per_page"]) - mean) < 0.002, "%s: touch column is not the mean" % z
    med = {(m["size_bytes"], m["guest"]): m for m in csv.DictReader(open(os.path.join(outdir, "medians.csv")))}
    assert sorted(med) == sorted(set(x[:2] for x in want)), "medians.csv rows %s" % sorted(med)
    for key, m in med.items():
        mine = [r for r in rows if (r["size_bytes"], r["guest"]) == key]
        assert m["sweeps"] == str(reps), "%s: %s sweeps in medians.csv, want %d" % (key, m["sweeps"], reps)
        for k in ("migration_ms", "pull_gbps", "floor_gbps", "install_us_per_page"):
            want_m = statistics.median(float(r[k]) for r in mine)
            assert abs(float(m[k]) - want_m) <= 0.001 * max(1, want_m), "%s %s: median %s, want %.4f" % (key, k, m[k], want_m)
    table = open(os.path.join(outdir, "table.txt")).read()
    assert "bare 1st touch" in table and "install ioctls" in table, "table lacks the per-page breakdown"
    assert "pull min-max" in table and ("sweeps: %d," % reps) in table, "table does not give the sweeps' range and count"
    assert ("memory: %s" % memory) in table, "table does not say the memory state"
    assert ("placement: idle pulls --pin=%s, running pulls --pin=%s " % (pin, pin_running)) in table, "table does not say the placement"
    if len(sizes) > 1 and reps > 1:
        for g in ("idle", "running"):
            t = [float(med[(str(SIZES[z]), g)]["pull_gbps"]) for z in sizes]
            line = "%s: pull throughput from %s to %s: min/max of the medians %.3f" % (g, sizes[0], sizes[-1], min(t) / max(t))
            assert line in table, "table lacks %r" % line
            assert ("%s: does the size change the pull throughput? Kruskal-Wallis H" % g) in table, "no size test for %s" % g
    print("scale bench: ok (sizes %s, sweeps %d; pull %.3f us/page)" %
          (" ".join(sizes), reps, float(rows[0]["migration_ms"]) * 1e3 / (int(rows[0]["size_bytes"]) // 4096)))
