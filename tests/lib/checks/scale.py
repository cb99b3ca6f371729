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


def bench(outdir, memory="warm", reps="2"):
    """bench/scale.sh at one small size, REPS sweeps: every pull verified (exit 0), every column filled,
    the per-page breakdown consistent with the pull's JSON, each row's floor the floor run of its own sweep,
    a bare first touch measured before and after the sweeps, medians.csv the medians over the sweeps, and
    the table printing the breakdown and the number of sweeps; the memory column says MEMORY, and with warm
    every floor and pull was preceded by a warm-up of the size + 1 GiB (none with settled)."""
    import csv
    import os
    import statistics
    reps = int(reps)
    rows = list(csv.DictReader(open(os.path.join(outdir, "scale.csv"))))
    assert [(r["guest"], r["rep"]) for r in rows] == [(g, str(n)) for n in range(1, reps + 1) for g in ("idle", "running")], \
        "rows %s" % [(r["guest"], r["rep"]) for r in rows]
    assert all(r["memory"] == memory for r in rows), "memory column %s, want %s" % ([r["memory"] for r in rows], memory)
    for n in range(1, reps + 1):
        for step in ("floor", "idle", "running"):
            f = os.path.join(outdir, "64M-r%d-%s-warm.json" % (n, step))
            if memory == "warm":
                w = json.load(open(f))
                assert w["warm_bytes"] == (64 << 20) + (1 << 30) and w["populate_ns"] > 0, "warm-up before %s: %s" % (step, w)
            else:
                assert not os.path.exists(f), "settled run warmed memory before %s" % step
    for r in rows:
        assert r["exit"] == "0", "%s pull exit %s" % (r["guest"], r["exit"])
        assert all(r[k] for k in r), "empty column in %s" % r
        j = json.load(open(os.path.join(outdir, "64M-r%s-%s.json" % (r["rep"], r["guest"]))))["results"]
        ib = j["pager"]["install"]["background"]
        assert abs(float(r["install_us_per_page"]) - ib["install_ns"] / ib["pages"] / 1e3) < 0.002, "install us/page"
        assert abs(float(r["installer_cpu_us_per_page"]) - j["cpu"]["installer_ns"] / ib["pages"] / 1e3) < 0.002, "installer CPU"
        assert abs(float(r["migration_ms"]) - j["time"]["total_migration_ns"] / 1e6) < 0.1, "migration ms"
        assert 0 < float(r["pager_fraction"]) < 1, "pager fraction"
        fl = json.load(open(os.path.join(outdir, "64M-r%s-floor.json" % r["rep"])))["results"]["bulk"]
        fl = [x["gb_per_s"] for x in fl if x["variant"] == "install"][0]
        assert abs(float(r["floor_gbps"]) - fl) < 0.0002, "floor of sweep %s: %s, its floor run %.4f" % (r["rep"], r["floor_gbps"], fl)
    for w in ("before", "after"):
        t = json.load(open(os.path.join(outdir, "64M-touch-%s.json" % w)))
        assert t["pages"] == 16384 and t["pass1_ns"] > t["pass2_ns"] > 0, "first touch %s: %s" % (w, t)
    mean = sum(json.load(open(os.path.join(outdir, "64M-touch-%s.json" % w)))["first_touch_us_per_page"]
               for w in ("before", "after")) / 2
    assert all(abs(float(r["touch_us_per_page"]) - mean) < 0.002 for r in rows), "touch column is not the mean"
    med = {m["guest"]: m for m in csv.DictReader(open(os.path.join(outdir, "medians.csv")))}
    assert sorted(med) == ["idle", "running"], "medians.csv rows %s" % sorted(med)
    for g, m in med.items():
        mine = [r for r in rows if r["guest"] == g]
        assert m["sweeps"] == str(reps), "%s: %s sweeps in medians.csv, want %d" % (g, m["sweeps"], reps)
        for k in ("migration_ms", "pull_gbps", "floor_gbps", "install_us_per_page"):
            want = statistics.median(float(r[k]) for r in mine)
            assert abs(float(m[k]) - want) <= 0.001 * max(1, want), "%s %s: median %s, want %.4f" % (g, k, m[k], want)
    table = open(os.path.join(outdir, "table.txt")).read()
    assert "bare 1st touch" in table and "install ioctls" in table, "table lacks the per-page breakdown"
    assert "pull min-max" in table and ("sweeps: %d," % reps) in table, "table does not give the sweeps' range and count"
    assert ("memory: %s" % memory) in table, "table does not say the memory state"
    print("scale bench: ok (sweeps %d; first touch %.3f us/page, pull %.3f us/page)" %
          (reps, mean, float(rows[0]["migration_ms"]) * 1e3 / 16384))
