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
SYS=/sys/kernel/mm/hugepages/hugepages-2048kB
NR=/proc/sys/vm/nr_hugepages
[ -d "$SYS" ] || skip "this kernel has no 2 MiB hugetlb pages ($SYS absent)"

exec 9>/tmp/pcbench-hugepages.lock
flock -w 600 9 || die "waited 600 s for /tmp/pcbench-hugepages.lock (another hugepages test)"
OLD=$(cat "$NR")
trap 'echo "$OLD" > "$NR" 2>/dev/null; rm -rf "$T"' EXIT
WANT=$((OLD + 32))
echo "$WANT" > "$NR" 2>/dev/null || skip "cannot write $NR"
[ "$(( $(cat "$SYS/free_hugepages") - $(cat "$SYS/resv_hugepages") ))" -ge 32 ] ||
	skip "only $(cat "$SYS/free_hugepages") free 2 MiB pages after reserving $WANT (memory not there)"

fails=0
for c in "zipf 2 sequential" "random 1 demand"; do
	set -- $c
	name=$1-$2
	json_run "$name" "BPF unavailable" --trace=on --page-size=2M --mem=64M --workload=$1 --vcpus=$2 --policy=$3 --duration=300ms
	$CHECK bpf.hugepage_faults "$T/$name.json" "$name" || fails=$((fails + 1))
done
[ "$fails" = 0 ] || die "$fails configuration(s) failed"
echo PASS
