#!/usr/bin/env bash
# `pcbench floor` runs every variant for real (bare uffd, bare TCP, bare
# unix, pcbench's pager; both placements; bulk transport, bare batched COPY
# and pcbench with each install path, batched and not) and writes a JSON that
# holds every histogram, the ratios computed from them, and each pcbench bulk
# run verified.  No wall-clock threshold is asserted: the ratios are checked
# for consistency with the histograms, not against targets.  Bad options
# exit 64.  Also: 8 vCPU threads on this machine's cores all make progress
# and the migration completes verified (no deadlock in the demand fast path).
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"

# KVM demand paging (bare handlers vs pcbench's KVM guest) where /dev/kvm can be used
KVM="--kvm-vcpus=1,2 --kvm-mem=4M --kvm-reps=1"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { KVM=--no-kvm; echo "floor: /dev/kvm not usable here: KVM rows not exercised"; }
"$P" floor --faults=400 --rounds=2 --bulk=8M --bulk-reps=2 $KVM --json "$T/floor.json" >"$T/floor.out" 2>"$T/floor.err"
rc=$?
[ $rc -eq 0 ] || fail "floor exit $rc: $(tail -3 "$T/floor.err")"
grep -q "pcbench/bare TCP, paired by round" "$T/floor.out" || fail "floor table has no paired ratio line"
grep -q "floor measured" "$T/floor.out" || fail "floor table has no transport+install floor line"
python3 - "$T/floor.json" "$(nproc)" <<'PY' || fail "floor JSON"
import json, sys
d = json.load(open(sys.argv[1])); ncpu = int(sys.argv[2]); r = d["results"]; errs = []
if d["kind"] != "floor" or "git_revision" not in d or "host" not in d["system"]: errs.append("header")
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
    for k in ("paired_ratio_p50_pcbench_over_bare_tcp", "paired_ratio_p99_pcbench_over_bare_tcp",
              "paired_ratio_p50_process_over_threads", "paired_ratio_p99_process_over_threads"):
        q = x[k]; pr = sorted(q["per_round"])
        if len(pr) != 2 or not all(v > 0 for v in pr): errs.append("%s/%s: per-round ratios %s" % (x["placement"], k, pr))
        elif abs(q["median"] - (pr[0] + pr[1]) / 2) > 1e-6 * q["median"] or abs(q["min"] - pr[0]) > 1e-6 * pr[0] or abs(q["max"] - pr[1]) > 1e-6 * pr[1]: errs.append("%s/%s: median/min/max %s" % (x["placement"], k, q))
bulk = r["bulk"]
kinds = {(b["variant"], b["install"], b["install_batch"]) for b in bulk}
for k in [("transport", "-", 0), ("bare_copy", "copy", 128), ("bare_pipe", "copy", 128)] + \
         [("install", m, 512 if m == "move" else 128) for m in ("copy", "move", "continue")] + \
         [("pcb_proc", m, 128) for m in ("copy", "continue")] + \
         [("pcbench", m, b) for m in ("copy", "move", "continue") for b in (1, 512 if m == "move" else 128)]:
    if k not in kinds: errs.append("bulk row %s missing" % (k,))
for b in bulk:
    if b["gb_per_s"] <= 0: errs.append("bulk %s: no throughput" % b)
    if not (b["gb_per_s_min"] <= b["gb_per_s"] <= b["gb_per_s_max"]): errs.append("bulk %s: median outside min-max" % b)
    if b["variant"] in ("pcbench", "pcb_proc"):
        if not b["verified"] or b["pages"] != 2048: errs.append("bulk %s/%s: %s" % (b["install"], b["install_batch"], b))
        if b["install_batch"] == 1 and b["install_ioctls"] < b["pages"]: errs.append("unbatched with fewer ioctls than pages")
        if b["install_batch"] == 128 and b["install_ioctls"] * 8 > b["pages"]: errs.append("batched %s: %d ioctls for %d pages" % (b["install"], b["install_ioctls"], b["pages"]))
if len(r["bulk_ratio_best_pcbench_over_transport"]) != len(want): errs.append("bulk ratios")
for sm in r["bulk_summary"]:
    rows = [b for b in bulk if b["placement"] == sm["placement"]]
    g = lambda v: max(b["gb_per_s"] for b in rows if b["variant"] == v)
    if abs(sm["floor_gb_per_s"] - max(g("bare_copy"), g("bare_pipe"))) > 1e-6 * sm["floor_gb_per_s"]: errs.append("%s: floor is not the better bare receiver" % sm["placement"])
    if abs(sm["best_pcbench_gb_per_s"] - g("pcbench")) > 1e-6 * sm["best_pcbench_gb_per_s"]: errs.append("%s: best pcbench" % sm["placement"])
    if abs(sm["best_over_floor"] - sm["best_pcbench_gb_per_s"] / sm["floor_gb_per_s"]) > 1e-6: errs.append("%s: best/floor" % sm["placement"])
    if not (sm["paired_best_over_transport_min"] <= sm["paired_best_over_transport_median"] <= sm["paired_best_over_transport_max"]): errs.append("%s: paired bulk ratio order" % sm["placement"])
    if not (0 < sm["paired_best_over_floor_min"] <= sm["paired_best_over_floor_median"] <= sm["paired_best_over_floor_max"]): errs.append("%s: paired floor ratio order" % sm["placement"])
    if abs(sm["best_process_gb_per_s"] - g("pcb_proc")) > 1e-6 * max(sm["best_process_gb_per_s"], 1e-9): errs.append("%s: best process" % sm["placement"])
# zero pages: a pcb_zero row per install path and placement, paired with the zero-free pull
zr = r["zero_pages_paired_ratio"]
if len(zr) != 3 * len(dem) or sorted(set(z["install"] for z in zr)) != ["continue", "copy", "move"]: errs.append("zero ratios %s" % zr)
if any(not (0 < z["min"] <= z["median"] <= z["max"]) for z in zr): errs.append("zero ratio order")
if len([b for b in bulk if b["variant"] == "pcb_zero"]) != 3 * len(dem): errs.append("pcb_zero rows")
# the image of the pcb_zero rows: --zero-model's default, as for `pcbench run`
if d["config"]["zero_model"] != "runs" or d["config"]["zero_run_max"] != 1024 or any(z["zero_model"] != "runs" for z in zr): errs.append("zero model %s" % d["config"])
# KVM demand paging rows: both rates measured, the ratio is theirs
kv = r.get("kvm_demand_paging")
if kv is not None:
    if [x["vcpus"] for x in kv["rows"]] != [1, 2]: errs.append("kvm rows %s" % kv["rows"])
    for x in kv["rows"]:
        b, p, q = x["bare_pages_per_s"]["per_rep"][0], x["pcbench_pages_per_s"]["per_rep"][0], x["paired_ratio"]["per_rep"][0]
        if b <= 0 or p <= 0 or abs(q - p / b) > 1e-6 * q: errs.append("kvm %d vCPUs: %s %s %s" % (x["vcpus"], b, p, q))
    if "kvm_target_met" not in r: errs.append("no kvm verdict")
if errs: print("; ".join(errs)); sys.exit(1)
print("floor: %d demand placements, %d bulk rows; same-CPU p50 ratio %.3f" % (len(dem), len(bulk), dem[0]["ratio_p50_pcbench_over_bare_tcp"]))
PY

# --zero-model=uniform: the pcb_zero rows pull the uniform image (each page zero by a hash), every page verified
"$P" floor --no-demand --no-link --no-kvm --bulk=4M --bulk-reps=1 --zero-model=uniform --json "$T/floor-u.json" >"$T/floor-u.out" 2>"$T/floor-u.err" ||
	fail "floor --zero-model=uniform: $(tail -3 "$T/floor-u.err")"
grep -q -- "--zero-model=uniform) / zero-free image" "$T/floor-u.out" || fail "floor --zero-model=uniform: the zero-page line does not name the model"
python3 - "$T/floor-u.json" <<'PY' || fail "floor --zero-model=uniform JSON"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]
zb = [b for b in r["bulk"] if b["variant"] == "pcb_zero"]
errs = []
if d["config"]["zero_model"] != "uniform" or d["config"]["zero_run_max"] != 0: errs.append("config %s" % d["config"])
if not zb or any(not b["verified"] or b["pages"] <= 0 for b in zb): errs.append("pcb_zero rows %s" % zb)
if any(z["zero_model"] != "uniform" for z in r["zero_pages_paired_ratio"]): errs.append("zero ratios %s" % r["zero_pages_paired_ratio"])
if errs: print("; ".join(errs)); sys.exit(1)
print("floor --zero-model=uniform: %d pcb_zero rows verified" % len(zb))
PY

for bad in "--zero-model=bogus" "--faults=abc" "--bulk=3" "--rounds=0" "--frobnicate=1" "--kvm-vcpus=0" "--kvm-vcpus=1,x" "--kvm-mem=1"; do
	out=$("$P" floor $bad 2>&1); rc=$?
	[ $rc -eq 64 ] || fail "floor $bad: exit $rc, want 64"
	printf '%s' "$out" | grep -qF -- "${bad%%=*}" || fail "floor $bad: message does not name the option: $out"
done

# 8 vCPUs on this machine's cores: everyone makes progress, the migration completes verified
"$P" --mem=64M --vcpus=8 --workload=random --policy=sequential --duration=1s --trace=off --json "$T/v8.json" >/dev/null 2>"$T/v8.err" ||
	fail "8 vCPUs: $(tail -2 "$T/v8.err")"
"$P" --mem=64M --vcpus=8 --workload=random --policy=demand --duration=1s --trace=off --json "$T/v8d.json" >/dev/null 2>"$T/v8d.err" ||
	fail "8 vCPUs demand: $(tail -2 "$T/v8d.err")"
for f in v8 v8d; do
python3 - "$T/$f.json" $f <<'PY' || fail "$f JSON"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; v = r["verify"]
errs = []
if d["exit_code"] != 0 or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 16384: errs.append("verify %s" % v)
stuck = [x["vcpu"] for x in r["guest"]["vcpus"] if x["ops"] == 0]
if len(r["guest"]["vcpus"]) != 8 or stuck: errs.append("vCPUs without progress: %s" % stuck)
if errs: print(sys.argv[2], "; ".join(errs)); sys.exit(1)
print("%s: 8 vCPUs, ops per vCPU %s, verified" % (sys.argv[2], [x["ops"] for x in r["guest"]["vcpus"]]))
PY
done

finish
