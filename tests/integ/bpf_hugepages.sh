#!/usr/bin/env bash
# pcbench --trace=on --page-size=2M (hugetlb guest region): the kernel-side
# fault count equals the pager's count of userfaultfd messages, as on 4 KiB
# pages.  A hugetlb fault's message carries the huge page's address, not the
# faulting 4 KiB page's; the fault-message hook compares addresses in the
# page size of the traced range (its KernelPageSize), which the JSON echoes.
# Before that, every fault off the first 4 KiB of its huge page went
# unmatched and the count was 0 on random workloads.  Runs zipf on 2 vCPUs
# (two vCPUs in one huge page: one message, one fault resolved before it was
# read) and random on 1, and checks the kernel median against the guest's
# (the sums when some guest faults had no delivered message).
# Reserves the huge pages it needs (the lock hugepages.sh takes) and
# restores nr_hugepages after.
. "$(dirname "$0")/../lib/integ.sh"
[ -x ./pcbench ] || die "./pcbench not built"
[ "$(id -u)" = 0 ] || skip "--trace=on needs root (BPF)"
need_hugepages
hugepages_lock
hugepages_reserve 32

fails=0
for c in "zipf 2 sequential" "random 1 demand"; do
	set -- $c
	name=$1-$2
	json_run "$name" "BPF unavailable" --trace=on --page-size=2M --mem=64M --workload=$1 --vcpus=$2 --policy=$3 --duration=300ms
	$CHECK bpf.hugepage_faults "$T/$name.json" "$name" || fails=$((fails + 1))
done
[ "$fails" = 0 ] || die "$fails configuration(s) failed"
echo PASS
