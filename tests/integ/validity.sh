#!/usr/bin/env bash
# Numbers a reviewer would accept (issue 13; definitions in docs/metrics.md):
#  1. nothing spins after completion: results.cpu per thread role; a migrated
#     run's process CPU time is within 20 % + 150 ms of the local baseline's
#     plus the pager threads' own; guest ops/s after completion >= 0.7 x local's;
#  2. prefetch.during_migration: its hit rate does not move with --duration
#     (1 s vs 3 s), the whole-run one does;
#  3. blocktime under both definitions (sum over vCPUs, all vCPUs at once);
#  4. every access that blocked is a fault: 4 vCPUs on this 2-CPU machine,
#     guest faults vs the kernel's blocked faults within 1 %, blocktime vs the
#     kernel's fault->running sum within 5 % (needs BPF; skipped without);
#  5. no page crosses the wire twice by default (--inflight=resend does);
#  6. the policy sees the first-touch record only with its oracle knob;
#  7. --zero-model=runs: exactly --zero-pages zero pages, verified end to end;
#  9. the drain starts from the vCPUs' own end, not a 20 ms poll later.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

# ---- 1: CPU time and throughput after completion
pcb local 120 $FAST --policy=local --workload=seq --mem=64M --duration=1s --json="$T/local.json"
expect_rc local 0 || finish
pcb mig 120 $FAST --policy=sequential --workload=seq --mem=64M --duration=1s --baseline=run --json="$T/mig.json"
expect_rc mig 0 || finish
python3 - "$T/local.json" "$T/mig.json" <<'PY' || fail "1: CPU time / throughput after completion"
import json, sys
L = json.load(open(sys.argv[1]))["results"]; M = json.load(open(sys.argv[2]))["results"]
lc, mc = L["cpu"], M["cpu"]
bad = []
for k in ("process_ns", "vcpus_ns", "demand_ns", "background_ns", "installer_ns", "main_ns", "source_process_ns"):
    if not isinstance(mc[k], int) or mc[k] < 0: bad.append("cpu.%s = %r" % (k, mc[k]))
pager = mc["demand_ns"] + mc["background_ns"] + mc["installer_ns"]
limit = 1.2 * lc["process_ns"] + pager + 150e6
print("local process %.3f s; migrated process %.3f s (vCPUs %.3f, pager %.3f, main %.3f); limit %.3f s"
      % (lc["process_ns"] / 1e9, mc["process_ns"] / 1e9, mc["vcpus_ns"] / 1e9, pager / 1e9, mc["main_ns"] / 1e9, limit / 1e9))
if mc["process_ns"] > limit: bad.append("migrated process CPU %.3f s > local %.3f s x 1.2 + pager %.3f s + 0.15 s"
                                        % (mc["process_ns"] / 1e9, lc["process_ns"] / 1e9, pager / 1e9))
if mc["main_ns"] > 0.1 * M["time"]["guest_ns"]: bad.append("main thread used %.3f s in a %.3f s guest run (spinning?)"
                                                     % (mc["main_ns"] / 1e9, M["time"]["guest_ns"] / 1e9))
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
    if ratio < 0.7: bad.append("ops/s after completion %.2f of local's" % ratio)
for x in bad: print("FAIL:", x)
sys.exit(1 if bad else 0)
PY

# ---- 2: the windowed hit rate does not depend on --duration (three runs of each; medians)
# A 3 Gbit/s link makes the pull last about half of the 1 s run whatever the machine's load
# (on loopback a quiet machine finished in ~0.1 s, the whole-run rate was already 0.97 at 1 s
# and could not show its growth with --duration: 0.967 vs 0.986 in a CI run)
for d in 1s 3s; do
	for i in 1 2 3; do
		pcb "win-$d-$i" 120 $FAST --policy=sequential --workload=idle --workload-opt=pages=65536,interval-us=50 \
			--mem=256M --duration=$d --link=3gbit,100us --json="$T/win-$d-$i.json"
		expect_rc "win-$d-$i" 0
	done
done
python3 - "$T" <<'PY' || fail "2: prefetch during the migration"
import json, sys, statistics
T = sys.argv[1]
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
PY

# ---- 3, 4: blocktime definitions; every blocking access is a fault (kernel's count)
trace=--trace=on
pcb bpfprobe 120 --trace=on --policy=demand --mem=1M --duration=10ms
if [ "$RC" != 0 ]; then
	log "SKIP 4: --trace=on does not work here: $(head -n 1 "$T/bpfprobe.err")"
	trace=$FAST
fi
for wl in seq random; do
	pcb "v4-$wl" 180 $trace --policy=sequential --workload=$wl --mem=128M --vcpus=4 --duration=1s --json="$T/v4-$wl.json"
	expect_rc "v4-$wl" 0 || continue
	python3 - "$T/v4-$wl.json" "$wl" <<'PY' || fail "3/4: $wl with 4 vCPUs"
import json, sys
r = json.load(open(sys.argv[1]))["results"]; wl = sys.argv[2]
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
    if abs(bt["sum_vcpus_ns"] - kt) > 0.05 * kt: bad.append("blocktime %d vs kernel %d ns: more than 5 %% apart" % (bt["sum_vcpus_ns"], kt))
for x in bad: print("FAIL:", x)
sys.exit(1 if bad else 0)
PY
done

# ---- 5: a page crosses the wire once by default
for m in wait resend; do
	pcb "inf-$m" 120 $FAST --policy=sequential --workload=random --mem=128M --vcpus=2 --duration=500ms --inflight=$m \
		--json="$T/inf-$m.json"
	expect_rc "inf-$m" 0
done
python3 - "$T/inf-wait.json" "$T/inf-resend.json" <<'PY' || fail "5: pages sent twice"
import json, sys
W = json.load(open(sys.argv[1]))["results"]; R = json.load(open(sys.argv[2]))["results"]
bad = []
print("wait: sent twice %d, faults that waited on a batch %d; resend: sent twice %d"
      % (W["pages"]["sent_twice"], W["faults"]["on_queued_page"], R["pages"]["sent_twice"]))
if W["pages"]["sent_twice"] != 0: bad.append("--inflight=wait sent %d pages twice" % W["pages"]["sent_twice"])
if W["pages"]["inflight"] != "wait" or R["pages"]["inflight"] != "resend": bad.append("pages.inflight not recorded")
if R["faults"]["on_queued_page"] != 0: bad.append("--inflight=resend waited on a batch")
if R["pages"]["sent_twice"] == 0: bad.append("--inflight=resend sent no page twice (a random guest behind a sequential pull)")
for x in bad: print("FAIL:", x)
sys.exit(1 if bad else 0)
PY

# ---- 6: the first-touch record is an oracle
pcb trend 120 $FAST --policy=trend --workload=seq --mem=32M --duration=200ms --json="$T/trend.json"
expect_rc trend 0 && [ "$($PCBJSON get "$T/trend.json" results.pager.policy_oracle)" = none ] ||
	fail "6: trend without its oracle knob: policy_oracle is not none"
pcb trendo 120 $FAST --policy=trend --policy-opt=oracle=first-touch --workload=seq --mem=32M --duration=200ms \
	--json="$T/trendo.json"
expect_rc trendo 0 && [ "$($PCBJSON get "$T/trendo.json" results.pager.policy_oracle)" = first-touch ] ||
	fail "6: trend with oracle=first-touch: the JSON does not say so"
pcb trendbad 60 $FAST --policy=trend --policy-opt=oracle=maybe --mem=4M --duration=10ms
expect_rc trendbad 64 && grep -q "oracle: 'maybe'" "$T/trendbad.err" || fail "6: a bad oracle value is not refused"

# ---- 9: the drain starts when the last vCPU ends (the demand policy leaves pages to drain)
pcb drain 120 $FAST --policy=demand --workload=idle --mem=32M --duration=300ms --json="$T/drain.json"
expect_rc drain 0 && python3 - "$T/drain.json" <<'PY' || fail "9: the drain did not start at the guest's end"
import json, sys
t = json.load(open(sys.argv[1]))["results"]["time"]
print("drain asked for %.3f ms after the last vCPU ended" % (t["drain_start_after_guest_end_ns"] / 1e6))
sys.exit(0 if t["drain_start_after_guest_end_ns"] < 5e6 else 1)
PY

# ---- 7: the runs image model: exactly --zero-pages of the pages zero, in runs; verified end to end
pcb runs 120 $FAST --zero-model=runs --policy=sequential --workload=random --mem=64M --duration=300ms --json="$T/runs.json"
expect_rc runs 0 && python3 - "$T/runs.json" <<'PY' || fail "7: --zero-model=runs"
import json, sys
d = json.load(open(sys.argv[1])); p = d["results"]["pages"]
ok = (d["config"]["zero-model"] == "runs" and d["config"]["zero-run-max"] == 1024 and p["image_zero_model"] == "runs"
      and p["image_zero_pages"] == 4096 and p["zero"] == 4096 and d["results"]["verify"]["pages_corrupt"] == 0)
print("runs model: %d zero pages of %d, %d installed as zero pages" % (p["image_zero_pages"], p["total"], p["zero"]))
sys.exit(0 if ok else 1)
PY
pcb runsbad 60 $FAST --zero-run-max=1000 --mem=4M --duration=10ms
expect_rc runsbad 64 && grep -q "zero-run-max: '1000'" "$T/runsbad.err" || fail "7: --zero-run-max=1000 not refused"
finish
