#!/usr/bin/env bash
# --pager=process: the pager threads run in a process of their own (named
# pcbench-pager, a child of pcbench) that holds the userfaultfd (and, with
# --install=continue, the guest's memfd) it was sent over a unix socket,
# while the guest region stays in pcbench.  Checks: 64 MiB migrations with
# copy and continue, batched and not, 2 vCPUs, verify with 0 corrupt/missing
# and exact accounting; while a run is under way the pager process exists,
# has a userfaultfd open and no mapping of the guest region; a source killed
# or stopped -> exit 74; the pager process killed -> exit 70 naming it; in
# every case no process left behind.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

check_json() {   # check_json NAME MODE
	$CHECK pager.process_run "$T/$1.json" "$1" "$2" || fail "$1: JSON checks"
}

# pager_pid: the pager process (pcbench-pager) of pcbench $PCB_PID
pager_pid() { child_pid pcbench-pager 500; }

# integrity: copy and continue, batched and unbatched, sequential (background pull) and demand
for mode in copy continue; do
	for spec in sequential:128 sequential:1 demand:128; do
		IFS=: read -r pol batch <<<"$spec"
		name=$mode-$pol-b$batch
		pcb "$name" 120 $FAST --pager=process --install=$mode --install-batch=$batch --policy=$pol \
			--workload=random --vcpus=2 --mem=64M --duration=500ms --json="$T/$name.json"
		expect_rc "$name" 0 && check_json "$name" "$mode"
	done
done

# one shared connection (--channels=1) to the source, owned by the pager process
if "$PCBENCH" --help | grep -q -- '--channels='; then
	name=copy-sequential-channels1
	pcb "$name" 120 $FAST --pager=process --channels=1 --policy=sequential --workload=random --vcpus=2 --mem=64M \
		--duration=500ms --json="$T/$name.json"
	expect_rc "$name" 0 && check_json "$name" copy
fi

# the vCPUs of a KVM guest fault through KVM's kernel path; the pager process serves them
if [ -c /dev/kvm ] && "$PCBENCH" --help | grep -q -- '--guest='; then
	name=kvm-sequential
	pcb "$name" 120 $FAST --pager=process --guest=kvm --policy=sequential --workload=random --vcpus=2 --mem=64M \
		--duration=500ms --json="$T/$name.json"
	if [ "$RC" = 69 ] || [ "$RC" = 77 ]; then
		log "note: $name: KVM unusable here (exit $RC): $(head -1 "$T/$name.err")"
	else
		expect_rc "$name" 0 && check_json "$name" copy
	fi
fi

# while it runs: a separate process holds the userfaultfd (continue: and the memfd), not the guest region
for mode in copy continue; do
	name=live-$mode
	pcb_bg "$name" 60 $FAST --pager=process --install=$mode --policy=demand --workload=random --mem=256M \
		--duration=3s --json="$T/$name.json"
	pp=$(pager_pid) || { fail "$name: no pcbench-pager child of $PCB_PID"; pcb_wait "$name"; continue; }
	sleep 0.3
	fds=$(ls -l /proc/"$pp"/fd 2>/dev/null)
	echo "$fds" | grep -q 'anon_inode:\[userfaultfd\]' || fail "$name: pager process $pp has no userfaultfd open: $fds"
	if [ $mode = continue ]; then
		echo "$fds" | grep -q 'memfd:pcbench-guest' || fail "$name: pager process $pp has not got the guest memfd: $fds"
	fi
	# the guest region (256 MiB: anonymous, or the memfd's first mapping) is pcbench's only:
	# exactly one of pcbench's 256 MiB areas is not in the pager process (continue: the
	# pager's own mapping of the memfd is in both; a sanitizer's areas are in both)
	missing=$($CHECK pager.guest_areas_missing "$PCB_PID" "$pp" 2>/dev/null)
	[ "${missing%% *}" = 1 ] || fail "$name: of pcbench's 256 MiB areas, '$missing' (missing in the pager process, total): want exactly the guest region missing"
	pcb_wait "$name"
	expect_rc "$name" 0 && log "$name: pager process $pp held the userfaultfd; ok"
done

# the source dies or stalls: exit 74, the pager process does not outlive pcbench
for sig in KILL STOP; do
	name=source-$sig
	pcb_bg "$name" 60 $FAST --pager=process --policy=demand --workload=random --mem=256M --duration=20s --io-timeout=1s \
		--json="$T/$name.json"
	pager_pid >/dev/null || fail "$name: no pager process"
	src=$(pgrep -P "$PCB_PID" -x pcbench-source)
	sleep 0.3
	kill -"$sig" "$src"
	pcb_wait "$name"
	kill -CONT "$src" 2>/dev/null
	if expect_rc "$name" 74; then
		grep -qi source "$T/$name.err" || fail "$name: stderr does not mention the source: $(cat "$T/$name.err")"
		$PCBJSON failed "$T/$name.json" 74 || fail "$name: bad failure report"
		log "$name: exit 74 after ${ELAPSED_MS} ms, nothing left behind"
	fi
done

# the pager process dies: pcbench notices, names it, exits 70 (internal error), leaves nothing behind
name=pager-killed
pcb_bg "$name" 60 $FAST --pager=process --policy=demand --workload=random --mem=256M --duration=20s --json="$T/$name.json"
pp=$(pager_pid) || fail "$name: no pager process"
sleep 0.3
kill -KILL "$pp"
pcb_wait "$name"
if expect_rc "$name" 70; then
	grep -q "pager process (pid $pp) was killed by signal 9" "$T/$name.err" ||
		fail "$name: stderr does not name the dead pager process: $(cat "$T/$name.err")"
	[ "$ELAPSED_MS" -lt 15000 ] || fail "$name: took ${ELAPSED_MS} ms to notice"
	log "$name: exit 70: $(head -1 "$T/$name.err")"
fi

# pcbench itself is killed (no reaper here: it would kill what is left at once): its
# pager process goes with it (PR_SET_PDEATHSIG)
name=loader-killed
"$PCBENCH" $FAST --pager=process --policy=demand --workload=random --mem=256M --duration=20s \
	>"$T/$name.out" 2>"$T/$name.err" </dev/null &
PCB_PID=$!
if pp=$(pager_pid); then
	src=$(pgrep -P "$PCB_PID" -x pcbench-source)
	sleep 0.3
	kill -KILL "$PCB_PID"
	wait "$PCB_PID" 2>/dev/null
	gone=0
	for i in $(seq 200); do
		st=$(awk '{ print $3 }' /proc/"$pp"/stat 2>/dev/null)
		[ -z "$st" ] || [ "$st" = Z ] && { gone=1; break; }
		sleep 0.01
	done
	[ $gone = 1 ] || { fail "$name: pager process $pp outlived pcbench by 2 s"; kill -KILL "$pp"; }
	[ $gone = 1 ] && log "$name: the pager process died with pcbench"
	[ -n "$src" ] && kill -KILL "$src" 2>/dev/null
else
	fail "$name: no pager process"
	kill -KILL "$PCB_PID"
fi

finish
