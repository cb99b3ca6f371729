#!/usr/bin/env bash
# --demand-replies: with several vCPUs faulting at once a reply thread
# receives and installs the demand replies while the demand thread reads
# faults and sends requests (several outstanding on the demand connection);
# or lanes: the region sliced over a userfaultfd, thread and connection per vCPU.
# For the KVM guest (where /dev/kvm can be used) and the process guest, 4
# vCPUs, demand only, workloads seq (disjoint slices) and random (vCPUs fault
# on the same pages: a fault on a page already requested waits for its reply):
#  - every page verified, every guest read checked against the image;
#  - the same guest work (ops, reads, writes, touched pages, demand pages) for
#    a seed with the reply thread, lanes and inline;
#  - fault accounting: userfaultfd messages == requests + faults on in-flight
#    or present pages; KVM: faults == messages; process guest: faults that
#    blocked <= messages and >= requests - max(2, 1 %) (an access preempted
#    before it slept); requests == pages installed on demand;
#    the per-vCPU counts add up (none unattributed);
#  - auto picks lanes for the KVM guest with 2+ vCPUs, inline for the
#    process guest and for 1 vCPU (results.pager.demand_replies); lanes:
#    demand_lanes == vCPUs, every reply counted on the demand channel;
#  - lanes, then the drain: 3 vCPUs touch part of a region whose slices do not
#    end on a batch boundary, and the background thread's drain installs the
#    rest through the slices' userfaultfds (runs cut at a slice's end); and
#    pre-copy's installs go through the slices too (process guest, lanes);
#  - with --trace=on (root, KVM; reply thread and lanes): the kernel's count of
#    KVM faults (bpf.kvm) equals the pager's userfaultfd messages, with
#    bpf_kvm.sh's tolerance.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
GUESTS=process
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then GUESTS="process kvm"; else echo "demand_replies: /dev/kvm not usable: process guest only"; fi

for g in $GUESTS; do
	for w in seq random; do
		for m in thread inline auto lanes; do
			"$P" --guest=$g --vcpus=4 --mem=32M --policy=demand --workload=$w --ops=1500 --duration=0 --seed=5 \
				--zero-pages=0 --trace=off --demand-replies=$m --json "$T/$g-$w-$m.json" >"$T/out" 2>&1 ||
				fail "$g $w --demand-replies=$m: $(tail -3 "$T/out")"
		done
		$CHECK replies.modes "$T" "$g" "$w" || fail "$g $w"
	done
done

# lanes, then the drain through the slices: 3 slices of 2731, 2731 and 2730 pages, batches of 128
if [[ " $GUESTS " == *" kvm "* ]]; then
	"$P" --guest=kvm --vcpus=3 --mem=$((8192 * 4096)) --policy=demand --workload=random --ops=600 --duration=0 --trace=off \
		--json "$T/drain.json" >"$T/out" 2>&1 || fail "lanes then drain: $(tail -3 "$T/out")"
	$CHECK replies.lanes_drain "$T/drain.json" 3 || fail "lanes then drain"
fi

# 4 vCPUs over 5 pages: slices of 2, 2 and 1 pages, so 3 lanes (a fourth had no slice: exit 71)
if [[ " $GUESTS " == *" kvm "* ]]; then
	"$P" --guest=kvm --vcpus=4 --mem=20K --policy=demand --workload=random --ops=50 --duration=0 --trace=off \
		--json "$T/tiny.json" >"$T/out" 2>&1 || fail "lanes over 5 pages: $(tail -3 "$T/out")"
	$CHECK replies.lanes_drain "$T/tiny.json" 3 0 || fail "lanes over 5 pages"
fi

# lanes with pre-copy (process guest, asked for): the pre-copied pages are installed through the
# slices, runs cut at slice 1's start (page 2049 of 4097, not a batch boundary); --precopy=1s: the
# first pass took 54-84 ms plain and 113 ms under ASan (CI, 2 CPUs shared with both vCPUs)
"$P" --guest=process --vcpus=2 --mem=$((4097 * 4096)) --policy=demand --workload=seq --write-ratio=0 --duration=300ms --precopy=1s --trace=off \
	--demand-replies=lanes --json "$T/precopy.json" >"$T/out" 2>&1 || fail "lanes with pre-copy: $(tail -3 "$T/out")"
$CHECK replies.lanes_precopy "$T/precopy.json" || fail "lanes with pre-copy"

# auto with one vCPU stays inline (the KVM guest where it can run: the process guest is inline anyway)
G1=process; [[ " $GUESTS " == *" kvm "* ]] && G1=kvm
"$P" --guest=$G1 --vcpus=1 --mem=8M --policy=demand --workload=seq --ops=500 --duration=0 --trace=off --json "$T/one.json" >"$T/out" 2>&1 ||
	fail "1 vCPU: $(tail -3 "$T/out")"
$CHECK replies.mode "$T/one.json" inline || fail "1 vCPU: auto did not stay inline"

# the kernel's count of KVM faults equals the pager's messages (reply thread, and lanes: one
# userfaultfd per slice; 4 vCPUs)
if [ "$(id -u)" = 0 ] && [[ " $GUESTS " == *" kvm "* ]]; then
	for m in thread lanes; do
		"$P" --guest=kvm --vcpus=4 --mem=16M --policy=demand --workload=random --ops=800 --duration=0 --trace=on \
			--demand-replies=$m --json "$T/bpf-$m.json" >"$T/out" 2>&1; rc=$?
		if [ $rc -eq 77 ]; then
			echo "demand_replies: BPF unavailable: kernel count not compared ($(tail -1 "$T/out"))"
			break
		fi
		[ $rc -eq 0 ] || fail "--trace=on $m: exit $rc: $(tail -3 "$T/out")"
		$CHECK replies.kernel_count "$T/bpf-$m.json" || fail "kernel fault count ($m)"
	done
fi
finish
