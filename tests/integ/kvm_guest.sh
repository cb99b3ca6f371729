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
$CHECK kvm.guest_runs "$T" || exit 1
# the guest runs the same generators: for a seed and an op count, the same
# reads, writes and set of touched pages as the process guest
for w in random stride chase; do
	for g in process kvm; do
		"$P" --guest=$g --mem=64M --policy=demand --workload=$w --ops=5000 --duration=0 --seed=3 --trace=off \
			--json "$T/same-$w-$g.json" >"$T/same.out" 2>&1 || { echo "FAIL: $w on $g: $(tail -2 "$T/same.out")"; exit 1; }
	done
	$CHECK kvm.same_as_process "$T/same-$w-process.json" "$T/same-$w-kvm.json" "$w" || { echo "FAIL: $w differs between the process and the KVM guest"; exit 1; }
done
# idle: the vCPU halts between accesses (an OUT the host turns into a sleep)
"$P" --guest=kvm --mem=64M --workload=idle --workload-opt=interval-us=2000 --duration=500ms --trace=off \
	--json "$T/idle.json" >"$T/idle.out" 2>&1 || { echo "FAIL: idle KVM guest: $(tail -2 "$T/idle.out")"; exit 1; }
$CHECK kvm.idle_pacing "$T/idle.json" || { echo "FAIL: idle KVM guest pacing"; exit 1; }
"$P" --guest=kvm --mem=64M --workload=kv --trace=off >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc -eq 64 ] && grep -q "'kv'" "$T/bad.err" || { echo "FAIL: kv in the KVM guest: exit $rc $(cat "$T/bad.err")"; exit 1; }
"$P" --guest=vmware --trace=off >/dev/null 2>"$T/bad2.err"; rc=$?
[ $rc -eq 64 ] || { echo "FAIL: --guest=vmware: exit $rc"; exit 1; }
echo "all checks passed"
