"""Checks of tests/integ/floor.sh and floor_link.sh: `pcbench floor`'s JSON."""
import json
import sys


def link(path):
    """`pcbench floor --no-demand --no-bulk --link-rates=500mbit,1gbit --link-rtt=200us`: the
    config echoes the link options; rows loopback, unlimited, 500mbit, 1gbit in order, each
    verified with 4096 pages; frame bytes exactly pages + 24 bytes per frame; the frame size per
    rate; GB/s min <= median <= max; a rate's ratio to the link in (0, 1.1] and consistent with
    wire_bps, host_limited and target_met as defined; the achieved RTT within 0.5x-20x of 200
    us; link_target_met as defined."""
    d = json.load(open(path)); r = d["results"]; errs = []
    if d["kind"] != "floor" or not d["config"].get("link_bulk"): errs.append("config.link_bulk")
    if d["config"].get("link_rates") != ["500mbit", "1gbit"] or d["config"].get("link_rtt_ns") != 200000: errs.append("config link echo")
    if "bulk" in r or "demand" in r: errs.append("--no-bulk/--no-demand sections present")
    rows = r.get("link_bulk", [])
    names = [x["link"] for x in rows]
    if names != ["loopback", "unlimited", "500mbit", "1gbit"]: errs.append("rows %s" % names)
    cfg = r.get("link_bulk_config", {})
    if cfg.get("rtt_ns") != 200000 or "frame bytes" not in cfg.get("rate_counts", ""): errs.append("config %s" % cfg)
    want_frame = {"loopback": 128, "unlimited": 128, "500mbit": 16, "1gbit": 16}
    for x in rows:
        n = x["link"]
        if not x["verified"] or x["pages"] != 4096: errs.append("%s: verified %s, %d pages" % (n, x["verified"], x["pages"]))
        # every frame received after switch-over is a RUN (data) or BATCH_END frame: pages + 24 bytes per frame
        if x["frame_bytes"] != x["pages"] * 4096 + 24 * x["frames"]: errs.append("%s: %d frame bytes for %d pages in %d frames" % (n, x["frame_bytes"], x["pages"], x["frames"]))
        if x["frame_pages"] != want_frame[n]: errs.append("%s: frame of %d pages" % (n, x["frame_pages"]))
        if x["frames"] < x["pages"] // x["frame_pages"]: errs.append("%s: %d frames, larger than %d pages each" % (n, x["frames"], x["frame_pages"]))
        if not (0 < x["gb_per_s_min"] <= x["gb_per_s"] <= x["gb_per_s_max"]): errs.append("%s: GB/s order" % n)
        if len(x["per_rep"]) != 1: errs.append("%s: %d repetitions" % (n, len(x["per_rep"])))
        if x["link_bps"]:
            q = x["ratio_to_link"]
            if not (0 < q <= 1.1): errs.append("%s: ratio to the link %.3f (the emulation let through more than configured?)" % (n, q))
            if abs(q - x["wire_bps"] / x["link_bps"]) > 1e-6 * q: errs.append("%s: ratio inconsistent with wire_bps" % n)
            if x["host_limited"] != (rows[0]["wire_bps"] < x["link_bps"]): errs.append("%s: host_limited" % n)
            if x["target_met"] != (not x["host_limited"] and q >= 0.9): errs.append("%s: target_met" % n)
            if abs(x["paired_ratio_to_loopback"] - x["wire_bps"] / rows[0]["wire_bps"]) > 1e-6: errs.append("%s: ratio to loopback" % n)
        if n != "loopback" and not (0.5 * 200000 < x["rtt_ns_achieved_median"] < 20 * 200000): errs.append("%s: achieved RTT %d ns" % (n, x["rtt_ns_achieved_median"]))
    judged = [x for x in rows if x["link_bps"] and not x["host_limited"]]
    if r.get("link_target_met") != (bool(judged) and all(x["ratio_to_link"] >= 0.9 for x in judged)): errs.append("link_target_met")
    if errs: print("; ".join(errs)); sys.exit(1)
    print("floor link: " + ", ".join("%s %.3f Gbit/s%s" % (x["link"], x["wire_bps"] / 1e9, " (%.3f of the link)" % x["ratio_to_link"] if x["link_bps"] else "") for x in rows))


def no_kvm(path):
    """pcbench floor without a usable /dev/kvm: results.kvm_demand_paging_skipped names the reason,
    and there are no KVM rows and no KVM verdict."""
    r = json.load(open(path))["results"]
    assert r["kvm_demand_paging_skipped"].startswith("cannot open /dev/kvm"), r
    assert "kvm_target_met" not in r and "kvm_demand_paging" not in r, r
    print("floor without KVM:", r["kvm_demand_paging_skipped"])


def no_link(path):
    """`pcbench floor --no-link`: the JSON has no link_bulk results and config.link_bulk is false."""
    d = json.load(open(path))
    sys.exit(0 if 'link_bulk' not in d['results'] and d['config']['link_bulk'] is False else 1)


def report(path, ncpu):
    """A `pcbench floor` JSON: the header; demand rows for each placement this machine has (same,
    and cross with NCPU >= 2), 400 samples per variant with ordered percentiles, the p50 ratio
    consistent with its histograms, the bare TCP minimum not below the bare uffd minimum, paired
    per-round ratios with their median/min/max; every bulk row present with throughput inside
    its min-max, pcbench rows verified with 2048 pages and ioctl counts that match batching; the
    bulk summary computed from the rows; zero-page ratios per install path, from the default
    zero model (runs, 1024); and KVM rows (1 and 2 vCPUs) whose ratio is theirs when present."""
    d = json.load(open(path)); ncpu = int(ncpu); r = d["results"]; errs = []
    if d["kind"] != "floor" or d["schema_version"] != 2 or "git_revision" not in d or "host" not in d["system"]: errs.append("header")
    dem = r["demand"]
    want = ["same", "cross"] if ncpu >= 2 else ["same"]
    if [x["placement"] for x in dem] != want: errs.append("placements %s" % [x["placement"] for x in dem])
    for x in dem:
        for v in ("bare_uffd", "bare_uffd_process", "bare_tcp", "bare_unix", "pcbench_tcp", "pcbench_process_tcp"):
            h = x[v]
            if h["count"] != 400: errs.append("%s/%s: %d samples, want 400" % (x["placement"], v, h["count"]))
            if not (0 < h["min_ns"] <= h["p50_ns"] <= h["p99_ns"] <= h["max_ns"] * 1.01): errs.append("%s/%s order" % (x["placement"], v))
        r50 = x["pcbench_tcp"]["p50_ns"] / x["bare_tcp"]["p50_ns"]
        if abs(r50 - x["ratio_p50_pcbench_over_bare_tcp"]) > 1e-3 * r50: errs.append("p50 ratio inconsistent")
        # a fault served over a socket includes a uffd round trip: end to end cannot beat the bare round trip's minimum
        if x["bare_tcp"]["min_ns"] < x["bare_uffd"]["min_ns"]: errs.append("%s: TCP min below uffd min" % x["placement"])
        for q in (90, 99):
            rq = x["pcbench_tcp"]["p%d_ns" % q] / x["bare_tcp"]["p%d_ns" % q]
            if abs(rq - x["ratio_p%d_pcbench_over_bare_tcp" % q]) > 1e-3 * rq: errs.append("p%d ratio inconsistent" % q)
        for k in ("paired_ratio_p50_pcbench_over_bare_tcp", "paired_ratio_p90_pcbench_over_bare_tcp", "paired_ratio_p99_pcbench_over_bare_tcp",
                  "paired_ratio_p50_process_over_threads", "paired_ratio_p99_process_over_threads"):
            q = x[k]; pr = sorted(q["per_round"])
            if len(pr) != 2 or not all(v > 0 for v in pr): errs.append("%s/%s: per-round ratios %s" % (x["placement"], k, pr))
            elif abs(q["median"] - (pr[0] + pr[1]) / 2) > 1e-6 * q["median"] or abs(q["min"] - pr[0]) > 1e-6 * pr[0] or abs(q["max"] - pr[1]) > 1e-6 * pr[1]: errs.append("%s/%s: median/min/max %s" % (x["placement"], k, q))
    bulk = r["bulk"]
    kinds = {(b["variant"], b["install"], b["install_batch"]) for b in bulk}
    for k in [("transport", "-", 0), ("bare_copy", "copy", 128), ("bare_pipe", "copy", 128), ("bare_mem", "copy", 128), ("bare_splice", "copy", 128),
              ("bare_pipe_splice", "copy", 128),
              ("pcb_thread", "copy", 128), ("pcb_writev", "copy", 128)] + \
             [("install", m, 512 if m == "move" else 128) for m in ("copy", "move", "continue")] + \
             [("pcb_proc", m, 128) for m in ("copy", "continue")] + \
             [("pcbench", m, b) for m in ("copy", "move", "continue") for b in (1, 512 if m == "move" else 128)]:
        if k not in kinds: errs.append("bulk row %s missing" % (k,))
    for b in bulk:
        if b["gb_per_s"] <= 0: errs.append("bulk %s: no throughput" % b)
        if not (b["gb_per_s_min"] <= b["gb_per_s"] <= b["gb_per_s_max"]): errs.append("bulk %s: median outside min-max" % b)
        if b["variant"] in ("pcbench", "pcb_proc", "pcb_thread", "pcb_writev"):
            if not b["verified"] or b["pages"] != 2048: errs.append("bulk %s/%s: %s" % (b["install"], b["install_batch"], b))
            if b["install_batch"] == 1 and b["install_ioctls"] < b["pages"]: errs.append("unbatched with fewer ioctls than pages")
            if b["install_batch"] == 128 and b["install_ioctls"] * 8 > b["pages"]: errs.append("batched %s: %d ioctls for %d pages" % (b["install"], b["install_ioctls"], b["pages"]))
    if len(r["bulk_ratio_best_pcbench_over_transport"]) != len(want): errs.append("bulk ratios")
    for sm in r["bulk_summary"]:
        rows = [b for b in bulk if b["placement"] == sm["placement"]]
        g = lambda v: max(b["gb_per_s"] for b in rows if b["variant"] == v)
        # the floor: the best bare receiver fed from the pull's memory; the hot-buffer ceiling: fed from one cached buffer
        fl = max(("bare_mem", "bare_splice", "bare_pipe_splice"), key=g); hot = max(("bare_copy", "bare_pipe"), key=g)
        if abs(sm["floor_gb_per_s"] - g(fl)) > 1e-6 * sm["floor_gb_per_s"] or sm["floor_variant"] != fl: errs.append("%s: floor is not the best memory-fed bare receiver" % sm["placement"])
        if abs(sm["hot_buffer_ceiling_gb_per_s"] - g(hot)) > 1e-6 * g(hot) or sm["hot_buffer_ceiling_variant"] != hot: errs.append("%s: hot-buffer ceiling" % sm["placement"])
        # a generating source: the hot-buffer ceiling with the generation added (same CPU) or beside it (cross)
        hg = 1 / (1 / g(hot) + 1 / g("source_gen")) if sm["placement"] == "same" else min(g(hot), g("source_gen"))
        if abs(sm["hot_buffer_ceiling_with_source_generation_gb_per_s"] - hg) > 1e-6 * hg or abs(sm["best_pcb_gen_gb_per_s"] - g("pcb_gen")) > 1e-6 * g("pcb_gen"): errs.append("%s: generation figures" % sm["placement"])
        if abs(sm["best_pcbench_gb_per_s"] - g("pcbench")) > 1e-6 * sm["best_pcbench_gb_per_s"]: errs.append("%s: best pcbench" % sm["placement"])
        if abs(sm["best_over_floor"] - sm["best_pcbench_gb_per_s"] / sm["floor_gb_per_s"]) > 1e-6: errs.append("%s: best/floor" % sm["placement"])
        if not (sm["paired_best_over_transport_min"] <= sm["paired_best_over_transport_median"] <= sm["paired_best_over_transport_max"]): errs.append("%s: paired bulk ratio order" % sm["placement"])
        if not (0 < sm["paired_best_over_floor_min"] <= sm["paired_best_over_floor_median"] <= sm["paired_best_over_floor_max"]): errs.append("%s: paired floor ratio order" % sm["placement"])
        if not (0 < sm["paired_best_over_pcb_gen_min"] <= sm["paired_best_over_pcb_gen_median"] <= sm["paired_best_over_pcb_gen_max"]): errs.append("%s: paired pcb_gen ratio order" % sm["placement"])
        # installer inline (the pcbench rows) over an installer thread (pcb_thread), best pcbench over single
        # memory-fed receivers and over the hot-buffer ceiling: paired ratios
        for k in ("paired_inline_over_pcb_thread", "paired_best_over_bare_mem", "paired_copy128_over_pcb_writev",
                  "paired_best_over_bare_splice", "paired_best_over_hot_buffer_ceiling"):
            if not (0 < sm[k + "_min"] <= sm[k + "_median"] <= sm[k + "_max"]): errs.append("%s: %s order" % (sm["placement"], k))
        if abs(sm["best_process_gb_per_s"] - g("pcb_proc")) > 1e-6 * max(sm["best_process_gb_per_s"], 1e-9): errs.append("%s: best process" % sm["placement"])
    # zero pages: a pcb_zero row per install path and placement, paired with the zero-free pull
    zr = r["zero_pages_paired_ratio"]
    if len(zr) != 3 * len(dem) or sorted(set(z["install"] for z in zr)) != ["continue", "copy", "move"]: errs.append("zero ratios %s" % zr)
    if any(not (0 < z["min"] <= z["median"] <= z["max"]) for z in zr): errs.append("zero ratio order")
    if len([b for b in bulk if b["variant"] == "pcb_zero"]) != 3 * len(dem): errs.append("pcb_zero rows")
    # the source's image: held in memory for the pcbench rows (auto, a small image), generated for pcb_gen
    if len([b for b in bulk if b["variant"] == "pcb_gen"]) != 2 * len(dem): errs.append("pcb_gen rows")
    if d["config"]["source_image"] != "auto" or d["config"]["source_image_build_ns_max"] <= 0: errs.append("source image %s" % d["config"])
    # the pcbench rows' source wrote its image by splice (--source-send=auto); pcb_writev is the writev pull
    if d["config"]["source_send"] != "auto" or d["config"]["source_send_used"] != "splice": errs.append("source send %s" % d["config"])
    # the image of the pcb_zero rows: --zero-model's default, as for `pcbench run`
    if d["config"]["zero_model"] != "runs" or d["config"]["zero_run_max"] != 1024 or any(z["zero_model"] != "runs" for z in zr): errs.append("zero model %s" % d["config"])
    # KVM demand paging rows: both rates measured, the ratio is theirs
    kv = r.get("kvm_demand_paging")
    if kv is not None:
        if [x["vcpus"] for x in kv["rows"]] != [1, 2]: errs.append("kvm rows %s" % kv["rows"])
        for x in kv["rows"]:
            # 1 vCPU: the KVM guest again with every thread on CPU 0; its ratio to the unpinned bare rate is its own
            if ("same_cpu" in x) != (x["vcpus"] == 1): errs.append("same_cpu row with %d vCPUs" % x["vcpus"])
            if "same_cpu" in x:
                s = x["same_cpu"]; q = s["pcbench_same_over_bare_unpinned"]["per_rep"][0]
                want = s["pcbench_pages_per_s"]["per_rep"][0] / x["bare_pages_per_s"]["per_rep"][0]
                if abs(q - want) > 1e-6 * want: errs.append("same_cpu over unpinned %s, not %s" % (q, want))
            pairs = (("kvm", x), ("process", x["process_guest"])) + ((("same_cpu", x["same_cpu"]),) if "same_cpu" in x else ())
            for what, y in pairs:   # the process guest and the pinned KVM guest measured the same way
                b, p, q = y["bare_pages_per_s"]["per_rep"][0], y["pcbench_pages_per_s"]["per_rep"][0], y["paired_ratio"]["per_rep"][0]
                if b <= 0 or p <= 0 or abs(q - p / b) > 1e-6 * q: errs.append("%s %d vCPUs: %s %s %s" % (what, x["vcpus"], b, p, q))
                # CPU per page: every vCPU thread ran and the source served (the KVM guest's exits cost CPU too)
                cpu = [y[k]["per_rep"][0] for k in ("bare_cpu_us_per_page", "pcbench_cpu_us_per_page", "source_cpu_us_per_page")]
                if not all(0 < c < 1e5 for c in cpu): errs.append("%s %d vCPUs: CPU per page %s" % (what, x["vcpus"], cpu))
                # the vCPU threads' share: part of each total, and the handlers / pager threads ran too
                vc = [y[k]["per_rep"][0] for k in ("bare_vcpu_cpu_us_per_page", "pcbench_vcpu_cpu_us_per_page")]
                if not (0 < vc[0] < cpu[0] and 0 < vc[1] < cpu[1]): errs.append("%s %d vCPUs: vCPU CPU per page %s of %s" % (what, x["vcpus"], vc, cpu[:2]))
                # bare over TCP: its rate, pcbench's ratio to it, its handlers' and servers' CPU (the servers served every page)
                t, tq = y["bare_tcp_pages_per_s"]["per_rep"][0], y["paired_ratio_over_bare_tcp"]["per_rep"][0]
                if t <= 0 or abs(tq - p / t) > 1e-6 * tq: errs.append("%s %d vCPUs: bare over TCP %s, ratio %s" % (what, x["vcpus"], t, tq))
                tc = [y[k]["per_rep"][0] for k in ("bare_tcp_cpu_us_per_page", "bare_tcp_server_cpu_us_per_page")]
                if not all(0 < c < 1e5 for c in tc): errs.append("%s %d vCPUs: bare over TCP CPU per page %s" % (what, x["vcpus"], tc))
                # the pcbench runs' demand replies with 2-8 vCPUs: a lane per vCPU (--demand-replies=auto
                # for the KVM guest, asked for the process guest); one vCPU: inline
                want = ("lanes", x["vcpus"]) if 2 <= x["vcpus"] <= 8 else ("inline", 0)
                if (y["pcbench_demand_replies"], y["pcbench_demand_lanes"]) != want:
                    errs.append("%s %d vCPUs: demand replies %s/%s, not %s" % (what, x["vcpus"], y["pcbench_demand_replies"], y["pcbench_demand_lanes"], want))
        if "kvm_target_met" not in r: errs.append("no kvm verdict")
    if errs: print("; ".join(errs)); sys.exit(1)
    print("floor: %d demand placements, %d bulk rows; same-CPU p50 ratio %.3f" % (len(dem), len(bulk), dem[0]["ratio_p50_pcbench_over_bare_tcp"]))


def zero_uniform(path):
    """`pcbench floor --zero-model=uniform`: the config echoes uniform (zero_run_max 0), the
    pcb_zero rows are verified with pages, and every zero ratio names the uniform model."""
    d = json.load(open(path)); r = d["results"]
    zb = [b for b in r["bulk"] if b["variant"] == "pcb_zero"]
    errs = []
    if d["config"]["zero_model"] != "uniform" or d["config"]["zero_run_max"] != 0: errs.append("config %s" % d["config"])
    if not zb or any(not b["verified"] or b["pages"] <= 0 for b in zb): errs.append("pcb_zero rows %s" % zb)
    if any(z["zero_model"] != "uniform" for z in r["zero_pages_paired_ratio"]): errs.append("zero ratios %s" % r["zero_pages_paired_ratio"])
    if errs: print("; ".join(errs)); sys.exit(1)
    print("floor --zero-model=uniform: %d pcb_zero rows verified" % len(zb))


def bulk_variants_subset(path):
    """`pcbench floor --bulk-variants=install:copy,transport`: exactly those two rows, each with a
    throughput, no bulk verdict for a subset, and the config echoes the list."""
    d = json.load(open(path)); r = d["results"]
    rows = sorted({(b["variant"], b["install"]) for b in r["bulk"]})
    errs = []
    if rows != [("install", "copy"), ("transport", "-")]: errs.append("rows %s" % rows)
    if any(b["gb_per_s"] <= 0 for b in r["bulk"]): errs.append("a row without throughput")
    if "bulk_target_met" in r or "bulk_summary" in r: errs.append("a subset judged")
    if d["config"]["bulk_variants"] != "install:copy,transport": errs.append("config %s" % d["config"]["bulk_variants"])
    if errs: print("; ".join(errs)); sys.exit(1)


def vcpus_progress(path, tag):
    """A 64 MiB migration with 8 vCPUs: exit 0, 16384 pages verified, none corrupt or missing, and
    every one of the 8 vCPUs did at least one operation."""
    d = json.load(open(path)); r = d["results"]; v = r["verify"]
    errs = []
    if d["exit_code"] != 0 or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 16384: errs.append("verify %s" % v)
    stuck = [x["vcpu"] for x in r["guest"]["vcpus"] if x["ops"] == 0]
    if len(r["guest"]["vcpus"]) != 8 or stuck: errs.append("vCPUs without progress: %s" % stuck)
    if errs: print(tag, "; ".join(errs)); sys.exit(1)
    print("%s: 8 vCPUs, ops per vCPU %s, verified" % (tag, [x["ops"] for x in r["guest"]["vcpus"]]))
