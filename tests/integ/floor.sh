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
$CHECK floor.report "$T/floor.json" "$(nproc)" || fail "floor JSON"
$PCBJSON host_line "$T/floor.json" "$T/floor.out" || fail "floor summary's host line"

# without a usable /dev/kvm the KVM section is not measured, says why, and the floor still exits 0
if [ "$KVM" = --no-kvm ]; then
	"$P" floor --no-demand --no-bulk --no-link --json "$T/nokvm.json" >"$T/nokvm.out" 2>"$T/nokvm.err"
	rc=$?
	[ $rc -eq 0 ] || fail "floor without KVM: exit $rc: $(tail -3 "$T/nokvm.err")"
	grep -q "^KVM demand paging: not measured: cannot open /dev/kvm" "$T/nokvm.out" &&
		grep -q "^KVM demand paging target .*: not judged: cannot open /dev/kvm" "$T/nokvm.out" ||
		fail "floor without KVM: no not-measured / not-judged lines: $(cat "$T/nokvm.out")"
	$CHECK floor.no_kvm "$T/nokvm.json" || fail "floor without KVM: JSON"
fi

# --zero-model=uniform: the pcb_zero rows pull the uniform image (each page zero by a hash), every page verified
"$P" floor --no-demand --no-link --no-kvm --bulk=4M --bulk-reps=1 --zero-model=uniform --json "$T/floor-u.json" >"$T/floor-u.out" 2>"$T/floor-u.err" ||
	fail "floor --zero-model=uniform: $(tail -3 "$T/floor-u.err")"
grep -q -- "--zero-model=uniform) / zero-free image" "$T/floor-u.out" || fail "floor --zero-model=uniform: the zero-page line does not name the model"
$CHECK floor.zero_uniform "$T/floor-u.json" || fail "floor --zero-model=uniform JSON"

# --bulk-variants: only the rows named are measured and written, and no bulk target is judged
"$P" floor --no-demand --no-link --no-kvm --bulk=4M --bulk-reps=1 --bulk-variants=install:copy,transport --json "$T/floor-s.json" >"$T/floor-s.out" 2>"$T/floor-s.err" ||
	fail "floor --bulk-variants: $(tail -3 "$T/floor-s.err")"
grep -q "not judged (--bulk-variants=install:copy,transport" "$T/floor-s.out" || fail "floor --bulk-variants: no 'not judged' verdict"
$CHECK floor.bulk_variants_subset "$T/floor-s.json" || fail "floor --bulk-variants JSON"

for bad in "--zero-model=bogus" "--bulk-variants=nope" "--bulk-variants=install:bogus" "--faults=abc" "--bulk=3" "--rounds=0" "--frobnicate=1" "--kvm-vcpus=0" "--kvm-vcpus=1,x" "--kvm-mem=1"; do
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
$CHECK floor.vcpus_progress "$T/$f.json" $f || fail "$f JSON"
done

finish
