#!/usr/bin/env bash
# --page-size=2M: a 64 MiB migration from a hugetlb guest region, every
# fault installing a whole 2 MiB page with one UFFDIO_COPY, for the demand
# and sequential policies and several workloads (every other policy with
# zipf on 2 vCPUs): zero corrupt or missing
# pages, every 4 KiB sub-page verified, the accounting (demand + background
# + drain + zero == total, in 4 KiB pages) true, exactly 32 huge installs.
# A pool too small exits 69 with the command that reserves it; --mem not a
# multiple of 2M and the unsupported combinations exit 64 naming the value.
# The test reserves the huge pages it needs and restores nr_hugepages after.
. "$(dirname "$0")/../lib/integ.sh"

need_hugepages
need_uffd

# bad input first: no reservation needed (refused before anything starts)
pcb bad-mem 30 $FAST --page-size=2M --mem=63M --duration=10ms
expect_rc bad-mem 64 && { grep -q "66060288" "$T/bad-mem.err" || fail "bad-mem: message does not name the value: $(cat "$T/bad-mem.err")"; }
for combo in --install=move --install=continue --guest=kvm --precopy=100ms --policy=local; do
	pcb "bad$combo" 30 $FAST --page-size=2M --mem=64M --duration=10ms "$combo"
	expect_rc "bad$combo" 64 && { grep -q -- "${combo%%=*}" "$T/bad$combo.err" || fail "bad$combo: message does not name the value: $(cat "$T/bad$combo.err")"; }
done
pcb bad-size 30 $FAST --page-size=1G --duration=10ms
expect_rc bad-size 64 && { grep -q "'1G'" "$T/bad-size.err" || fail "bad-size: message does not name '1G'"; }

hugepages_lock
A0=$(hugepages_avail)

# too few: ask for one more 2 MiB page than is available -> 69 with the command
pcb pool-short 30 $FAST --page-size=2M --mem=$(( (A0 + 1) * 2 ))M --duration=10ms --policy=demand
expect_rc pool-short 69 && { grep -q "needs $((A0 + 1)) free 2 MiB huge pages.*echo [0-9]* > /proc/sys/vm/nr_hugepages" "$T/pool-short.err" ||
	fail "pool-short: message lacks the count or the command: $(cat "$T/pool-short.err")"; }
[ "$(cat "$HP_NR")" = "$HP_OLD" ] || fail "pcbench changed nr_hugepages ($HP_OLD -> $(cat "$HP_NR"))"

# reserve 32 more than before the test (64 MiB), restored on exit
hugepages_reserve 32

check() {   # check NAME VCPUS
	$CHECK hugepages.run "$T/$1.json" "$1" "$2" || return 1
}

for run in "demand random 1" "demand seq 1" "sequential random 1" "sequential zipf 2" "demand random 2"; do
	set -- $run
	name=$1-$2-v$3
	pcb "$name" 120 $FAST --page-size=2M --mem=64M --policy=$1 --workload=$2 --vcpus=$3 --duration=500ms --json "$T/$name.json"
	expect_rc "$name" 0 && { check "$name" "$3" || fail "$name: JSON checks"; }
	$PCBJSON migration "$T/$name.json" >/dev/null || fail "$name: not a valid verified migration report"
done
# every other migrating policy works in 4 KiB units with 2 MiB installs too (zipf, 2 vCPUs).
# Huge pages need two channels and a destination-side policy: qemu runs as with
# postcopy-preempt and pivot pulls (--policy-end=destination); criu, whose system
# uses one connection, is refused (exit 64 naming the value).
for pol in $(migrating_policies); do
	extra=
	case $pol in
	demand|sequential) continue ;;
	qemu) extra="--policy-opt=preempt=on --policy-end=destination" ;;
	pivot) extra="--policy-end=destination" ;;
	criu)
		pcb criu-2m 30 $FAST --page-size=2M --mem=64M --policy=criu --duration=10ms
		expect_rc criu-2m 64 && { grep -q -- "--page-size=2M" "$T/criu-2m.err" || fail "criu-2m: refusal does not name --page-size=2M"; }
		continue ;;
	esac
	name=$pol-zipf-v2
	pcb "$name" 120 $FAST --page-size=2M --mem=64M --policy=$pol $extra --workload=zipf --vcpus=2 --duration=300ms --json "$T/$name.json"
	expect_rc "$name" 0 && { check "$name" 2 || fail "$name: JSON checks"; }
	$PCBJSON migration "$T/$name.json" >/dev/null || fail "$name: not a valid verified migration report"
done
# the pager in its own process assembles and installs 2 MiB pages the same way
if "$PCBENCH" --help | grep -q -- '--pager='; then
	name=process-sequential-random-v2
	pcb "$name" 120 $FAST --pager=process --page-size=2M --mem=64M --policy=sequential --workload=random --vcpus=2 \
		--duration=500ms --json "$T/$name.json"
	expect_rc "$name" 0 && { check "$name" 2 || fail "$name: JSON checks"; }
	$PCBJSON migration "$T/$name.json" >/dev/null || fail "$name: not a valid verified migration report"
fi
[ "$(cat "$HP_NR")" = "$HP_WANT" ] || fail "pcbench changed nr_hugepages ($HP_WANT -> $(cat "$HP_NR"))"
finish
