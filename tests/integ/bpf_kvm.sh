#!/usr/bin/env bash
# pcbench --guest=kvm --trace=on: the vCPU threads' faults are kernel-side
# userfaultfd faults inside KVM_RUN (exceptions:page_fault_user never fires
# for them).  The kernel side opens them at kvm:kvm_page_fault or, where that
# does not fire (shadow paging; the nested PVM hypervisor here), at
# kvmmmu:kvm_mmu_pagetable_walk, and closes the ones that did not sleep at
# kvmmmu:kvm_mmu_spte_requested.  Checks, for demand/random on 1 vCPU and
# sequential/seq on 2:
#  - bpf.kvm is observable and its fault count (sleeps during which the
#    pager read a fault message of that vCPU) equals the pager's count of
#    userfaultfd messages; the only slack is an explained anomaly (a message
#    matched to no open fault, a missed switch-in, a program run the kernel
#    skipped), printed when non-zero;
#  - bpf_vs_guest compares the KVM histogram with the guest's own (rdtsc)
#    measurement: the kernel median is below the guest's (the guest also sees
#    the VM exit and entry: tens of µs on this nested hypervisor) and not
#    implausibly far below it.
. "$(dirname "$0")/../lib/integ.sh"
[ -x ./pcbench ] || die "./pcbench not built"
[ "$(id -u)" = 0 ] || skip "--trace=on needs root (BPF)"
[ -e /dev/kvm ] || skip "/dev/kvm is absent (no KVM on this machine)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no permission on /dev/kvm"

fails=0
for c in "random 1 demand" "seq 2 sequential"; do
	set -- $c
	name=$1-$2
	json_run "$name" "BPF or KVM unavailable" --guest=kvm --trace=on --mem=16M --workload=$1 --vcpus=$2 --policy=$3 --duration=300ms
	$CHECK bpf.kvm_faults "$T/$name.json" "$name" || fails=$((fails + 1))
done
[ "$fails" = 0 ] || die "$fails configuration(s) failed"
echo PASS
