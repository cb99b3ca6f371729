"""Checks of tests/integ/validity.sh: that the numbers mean what docs/metrics.md says (CPU time, windowed prefetch, blocktime, in-flight pages, drain, zero model)."""
import json
import os
import statistics
import sys


def cpu_after_completion(local_path, mig_path):
    """1: every cpu.* figure of the migration an int >= 0; the migrated process's CPU at most 1.2 x
    the local run's + the pager threads' + 0.15 s; the main thread under 5 % of the guest time
    while the guest ran (no spinning); with at least 20 buckets after completion, ops per bucket there at least 0.7
    of the local baseline's (one-sided)."""
    L = json.load(open(local_path))["results"]; M = json.load(open(mig_path))["results"]
    lc, mc = L["cpu"], M["cpu"]
    bad = []
    for k in ("process_ns", "vcpus_ns", "demand_ns", "background_ns", "installer_ns", "main_ns", "main_wait_ns", "source_process_ns"):
        if not isinstance(mc[k], int) or mc[k] < 0: bad.append("cpu.%s = %r" % (k, mc[k]))
    pager = mc["demand_ns"] + mc["background_ns"] + mc["installer_ns"]
    limit = 1.2 * lc["process_ns"] + pager + 150e6
    print("local process %.3f s; migrated process %.3f s (vCPUs %.3f, pager %.3f, main %.3f); limit %.3f s"
          % (lc["process_ns"] / 1e9, mc["process_ns"] / 1e9, mc["vcpus_ns"] / 1e9, pager / 1e9, mc["main_ns"] / 1e9, limit / 1e9))
    if mc["process_ns"] > limit: bad.append("migrated process CPU %.3f s > local %.3f s x 1.2 + pager %.3f s + 0.15 s"
                                            % (mc["process_ns"] / 1e9, lc["process_ns"] / 1e9, pager / 1e9))
    # while the guest ran the main thread only waits (a 20 ms poll, then a condition variable):
    # 5 % of the run is ~50x what that costs even under ASan; a spin takes ~100 %.  main_ns
    # also counts setup and verification (0.117 s under ASan in a CI run), so it is not used here.
    print("main thread while the guest ran: %.4f s of %.3f s" % (mc["main_wait_ns"] / 1e9, M["time"]["guest_ns"] / 1e9))
    if mc["main_wait_ns"] > 0.05 * M["time"]["guest_ns"]: bad.append("main thread used %.3f s while the %.3f s guest ran (spinning?)"
                                                                % (mc["main_wait_ns"] / 1e9, M["time"]["guest_ns"] / 1e9))
    # throughput once every page is present, against the local run of the same invocation (--baseline=run)
    p = M["progress"]; b = p["bucket_ms"] * 1e6
    first = int(M["time"]["total_migration_ns"] // b) + 2
    after = p["total"][first:-1]
    if len(after) < 20: bad.append("only %d buckets after completion" % len(after))
    else:
        ratio = (sum(after) / len(after)) / p["baseline_mean_ops_per_bucket"]
        print("ops per bucket after completion: %.0f vs local %.0f (%.2f)" % (sum(after) / len(after), p["baseline_mean_ops_per_bucket"], ratio))
        # one-sided: a spinning thread would slow the guest; a busier machine during the
        # local half can make the migrated guest look faster (1.5x seen at load 10)
        # under ASan (BUILD=*-san) the ratio is printed, not judged: the migrated run's first
        # touches of ASan's shadow cost a fresh page each on a kernel without the shared zero
        # page (0.54 seen there); the plain build's pass judges it
        if ratio < 0.7 and not os.environ.get("BUILD", "").endswith("-san"):
            bad.append("ops/s after completion %.2f of local's" % ratio)
    for x in bad: print("FAIL:", x)
    sys.exit(1 if bad else 0)


def prefetch_window(T):
    """2: T/win-{1s,3s}-{1,2,3}.json: each migration completed while the guest ran, touched at
    least 200 pages during it (hits + faults, zero pages counted apart); the median windowed hit
    rate moves by at most 0.12 between --duration=1s and 3s while the whole-run hit rate grows
    by at least 0.03."""
    def load(d): return [json.load(open("%s/win-%s-%d.json" % (T, d, i)))["results"] for i in (1, 2, 3)]
    bad = []
    res = {}
    for d in ("1s", "3s"):
        rs = load(d)
        for r in rs:
            w = r["prefetch"]["during_migration"]
            if not r["time"]["completed_while_guest_ran"]: bad.append("%s: the migration did not complete while the guest ran" % d)
            if w["pages_touched"] < 200: bad.append("%s: only %d pages touched during the migration" % (d, w["pages_touched"]))
            if w["pages_touched"] != w["hits"] + w["faults"]: bad.append("%s: touched != hits + faults" % d)
            if w["zero_pages_touched"] == 0: bad.append("%s: no zero page touched (counted apart)" % d)
        res[d] = (statistics.median(r["prefetch"]["during_migration"]["hit_rate"] for r in rs),
                  statistics.median(r["prefetch"]["hit_rate"] for r in rs))
        print("%s: hit rate during the migration %.3f, whole run %.3f" % (d, res[d][0], res[d][1]))
    if abs(res["1s"][0] - res["3s"][0]) > 0.12: bad.append("windowed hit rate moved with --duration: %.3f vs %.3f" % (res["1s"][0], res["3s"][0]))
    if res["3s"][1] - res["1s"][1] < 0.03: bad.append("whole-run hit rate did not grow with --duration: %.3f vs %.3f" % (res["1s"][1], res["3s"][1]))
    for x in bad: print("FAIL:", x)
    sys.exit(1 if bad else 0)


def blocktime_vcpus(path, wl):
    """3/4: workload WL with 4 vCPUs: sum_vcpus_ns is the sum of per_vcpu_ns, all_vcpus_ns within
    [0, min per vCPU], fault and undelivered counts add up over the vCPUs; with BPF, guest
    faults within max(1, 1 %) of the kernel's blocked faults and blocktime within [0.95, 1.15] x
    the kernel's fault->running sum."""
    r = json.load(open(path))["results"]
    bt, f, vc = r["blocktime"], r["faults"], r["guest"]["vcpus"]
    bad = []
    if bt["sum_vcpus_ns"] != sum(bt["per_vcpu_ns"]): bad.append("sum_vcpus_ns != sum of per_vcpu_ns")
    if not isinstance(bt["all_vcpus_ns"], int) or not 0 <= bt["all_vcpus_ns"] <= min(bt["per_vcpu_ns"]):
        bad.append("all_vcpus_ns %r not within [0, min per vCPU %d]" % (bt["all_vcpus_ns"], min(bt["per_vcpu_ns"])))
    if f["count"] != sum(x["faults"] for x in vc): bad.append("faults.count != sum of the vCPUs' faults")
    if f["undelivered"] != sum(x["faults_undelivered"] for x in vc): bad.append("faults.undelivered != per vCPU")
    b = r["bpf"]
    if b.get("enabled"):
        kf = b["faults_blocked"]
        kt = b["fault_to_running"]["sum_ns"] + b["messages"]["resolved_before_read_fault_to_running"]["sum_ns"]
        print("%s: guest faults %d (%d undelivered) vs kernel blocked %d (%d resolved before read); blocktime %.1f ms vs "
              "kernel fault->running %.1f ms; all vCPUs at once %.1f ms"
              % (wl, f["count"], f["undelivered"], kf, b["messages"]["blocked_resolved_before_read"], bt["sum_vcpus_ns"] / 1e6,
                 kt / 1e6, bt["all_vcpus_ns"] / 1e6))
        if abs(f["count"] - kf) > max(1, 0.01 * kf): bad.append("guest faults %d vs kernel %d: more than 1 %% apart" % (f["count"], kf))
        # the kernel's interval ends at the switch-in, inside the guest's: the guest's sum may exceed
        # it by the return to the access, which 4 vCPUs on 2 CPUs spend partly preempted (on a machine
        # with PTI and nested PVM, 4-7 %: 2026-12-05-source-own-image.md), and not fall below it
        lo, hi = 0.95 * kt, 1.15 * kt
        if not lo <= bt["sum_vcpus_ns"] <= hi:
            bad.append("blocktime %d vs kernel %d ns: outside [0.95, 1.15] x the kernel's" % (bt["sum_vcpus_ns"], kt))
    for x in bad: print("FAIL:", x)
    sys.exit(1 if bad else 0)


def inflight(wait_path, resend_path):
    """5: --inflight=wait sent no page twice; --inflight=resend waited on no batch and sent some
    page twice (a random guest behind a sequential pull); pages.inflight records the mode."""
    W = json.load(open(wait_path))["results"]; R = json.load(open(resend_path))["results"]
    bad = []
    print("wait: sent twice %d, faults that waited on a batch %d; resend: sent twice %d"
          % (W["pages"]["sent_twice"], W["faults"]["on_queued_page"], R["pages"]["sent_twice"]))
    if W["pages"]["sent_twice"] != 0: bad.append("--inflight=wait sent %d pages twice" % W["pages"]["sent_twice"])
    if W["pages"]["inflight"] != "wait" or R["pages"]["inflight"] != "resend": bad.append("pages.inflight not recorded")
    if R["faults"]["on_queued_page"] != 0: bad.append("--inflight=resend waited on a batch")
    if R["pages"]["sent_twice"] == 0: bad.append("--inflight=resend sent no page twice (a random guest behind a sequential pull)")
    for x in bad: print("FAIL:", x)
    sys.exit(1 if bad else 0)


def drain_start(path):
    """9: the drain was asked for less than 5 ms after the last vCPU ended."""
    t = json.load(open(path))["results"]["time"]
    print("drain asked for %.3f ms after the last vCPU ended" % (t["drain_start_after_guest_end_ns"] / 1e6))
    sys.exit(0 if t["drain_start_after_guest_end_ns"] < 5e6 else 1)


def zero_runs(path):
    """7: --zero-model=runs --zero-run-max=1024 echoed; 4096 zero pages in the image, all installed
    as zero pages, nothing corrupt."""
    d = json.load(open(path)); p = d["results"]["pages"]
    ok = (d["config"]["zero-model"] == "runs" and d["config"]["zero-run-max"] == 1024 and p["image_zero_model"] == "runs"
          and p["image_zero_pages"] == 4096 and p["zero"] == 4096 and d["results"]["verify"]["pages_corrupt"] == 0)
    print("runs model: %d zero pages of %d, %d installed as zero pages" % (p["image_zero_pages"], p["total"], p["zero"]))
    sys.exit(0 if ok else 1)
