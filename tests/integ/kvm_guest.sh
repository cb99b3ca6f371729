#!/usr/bin/env bash
# --guest=kvm: the workload runs in a minimal KVM VM whose memory is the
# userfaultfd-registered region; vCPU threads block in KVM_RUN on missing
# pages until the pager installs them.  64 MiB, 2 vCPUs: integrity verified,
# faults and blocktime attributed per vCPU, the guest's TSC agrees with the
# host clock; a local KVM run; a workload the guest lacks exits 64.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/kvm ] || skip "/dev/kvm is absent (no KVM on this machine)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no permission on /dev/kvm"

"$P" --guest=kvm --vcpus=2 --mem=64M --policy=sequential --workload=random --duration=1s --trace=off \
	--json "$T/kvm.json" >"$T/kvm.out" 2>"$T/kvm.err"
rc=$?
cat "$T/kvm.out" "$T/kvm.err"
[ $rc -eq 0 ] || { echo "FAIL: --guest=kvm migration exited $rc"; exit 1; }
"$P" --guest=kvm --vcpus=2 --mem=64M --policy=demand --workload=stride --write-ratio=0.5 --duration=500ms --trace=off \
	--json "$T/kvm-demand.json" >"$T/kvm2.out" 2>&1 || { echo "FAIL: demand/stride: $(tail -3 "$T/kvm2.out")"; exit 1; }
"$P" --guest=kvm --vcpus=2 --mem=64M --policy=local --workload=random --duration=500ms \
	--json "$T/kvm-local.json" >"$T/kvm3.out" 2>&1 || { echo "FAIL: local KVM run: $(tail -3 "$T/kvm3.out")"; exit 1; }
python3 - "$T" <<'PY' || exit 1
import json, sys
T = sys.argv[1]
def load(n): return json.load(open("%s/%s.json" % (T, n)))
for name in ("kvm", "kvm-demand", "kvm-local"):
    d = load(name); r = d["results"]; v = r["verify"]; g = r["guest"]
    assert d["config"]["guest"] == "kvm" and g["kind"] == "kvm", name
    assert v["done"] and v["pages_verified"] == 16384 and not v["pages_corrupt"] and not v["pages_missing"], (name, v)
    assert g["read_mismatches"] == 0, name
    assert g["kvm_tsc_khz"] > 0, name
    for vc in g["vcpus"]:
        assert vc["ops"] > 0, (name, vc)
        w, t = vc["kvm_host_wall_ns"], vc["kvm_guest_tsc_ns"]
        assert abs(t - w) < 0.05 * w + 2e6, ("guest TSC and host clock disagree", name, vc)
    assert sum(r["progress"]["total"]) == g["ops"], name
for name in ("kvm", "kvm-demand"):
    r = load(name)["results"]; g = r["guest"]; pg = r["pages"]
    assert pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] == pg["total"], pg
    # every vCPU took uffd faults through KVM and blocked in KVM_RUN
    for vc in g["vcpus"]:
        assert vc["faults"] > 0 and vc["blocktime_ns"] > 0, (name, vc)
    assert len(r["blocktime"]["per_vcpu_ns"]) == 2 and all(b > 0 for b in r["blocktime"]["per_vcpu_ns"])
    assert r["faults"]["uffd_messages"] >= r["faults"]["count"] > 0
    assert r["faults"]["unattributed"] == 0, "a fault from a thread that is not a vCPU"
    print("%s: %d ops, %d faults (p50 %.1f us), blocktime %s ms per vCPU, uffd opened via %s" % (
        name, g["ops"], r["faults"]["count"], r["faults"]["latency"]["p50_ns"] / 1e3,
        [round(b / 1e6, 1) for b in r["blocktime"]["per_vcpu_ns"]], load(name)["system"]["userfaultfd"]["opened_via"]))
d = load("kvm-demand")["results"]
assert d["pages"]["demand"] > 0 and d["guest"]["writes"] > 0
loc = load("kvm-local")["results"]
assert loc["faults"]["count"] == 0
print("local KVM: %d ops" % loc["guest"]["ops"])
PY
# the guest runs the same generators: for a seed and an op count, the same
# reads, writes and set of touched pages as the process guest
for w in random stride chase; do
	for g in process kvm; do
		"$P" --guest=$g --mem=64M --policy=demand --workload=$w --ops=5000 --duration=0 --seed=3 --trace=off \
			--json "$T/same-$w-$g.json" >"$T/same.out" 2>&1 || { echo "FAIL: $w on $g: $(tail -2 "$T/same.out")"; exit 1; }
	done
	python3 - "$T/same-$w-process.json" "$T/same-$w-kvm.json" "$w" <<'PY' || { echo "FAIL: $w differs between the process and the KVM guest"; exit 1; }
import json, sys
a, b = (json.load(open(f))["results"] for f in sys.argv[1:3])
ka = (a["guest"]["ops"], a["guest"]["reads"], a["guest"]["writes"], a["prefetch"]["pages_touched"], a["pages"]["demand"] + a["pages"]["zero_demand"])
kb = (b["guest"]["ops"], b["guest"]["reads"], b["guest"]["writes"], b["prefetch"]["pages_touched"], b["pages"]["demand"] + b["pages"]["zero_demand"])
assert ka == kb, (sys.argv[3], ka, kb)
assert b["verify"]["pages_corrupt"] == 0 and b["verify"]["pages_missing"] == 0 and b["guest"]["read_mismatches"] == 0
print("%s: process and KVM guest: ops, reads, writes, touched pages, demand pages = %s" % (sys.argv[3], ka))
PY
done
# idle: the vCPU halts between accesses (an OUT the host turns into a sleep)
"$P" --guest=kvm --mem=64M --workload=idle --workload-opt=interval-us=2000 --duration=500ms --trace=off \
	--json "$T/idle.json" >"$T/idle.out" 2>&1 || { echo "FAIL: idle KVM guest: $(tail -2 "$T/idle.out")"; exit 1; }
python3 -c "
import json; r=json.load(open('$T/idle.json'))['results']; ops=r['guest']['ops']
assert 100 <= ops <= 260, ops   # one access per 2 ms for 500 ms, sleeping in between
assert r['verify']['pages_corrupt'] == 0 and r['verify']['pages_missing'] == 0
print('idle KVM guest: %d ops in 500 ms at one per 2 ms' % ops)" || { echo "FAIL: idle KVM guest pacing"; exit 1; }
"$P" --guest=kvm --mem=64M --workload=kv --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 64 ] && grep -q "'kv'" "$T/bad.err" || { echo "FAIL: kv in the KVM guest: exit $rc $(cat "$T/bad.err")"; exit 1; }
"$P" --guest=vmware --trace=off >/dev/null 2>"$T/bad2.err"; rc=$?
[ $rc -eq 64 ] || { echo "FAIL: --guest=vmware: exit $rc"; exit 1; }
echo "all checks passed"
