#!/usr/bin/env bash
# The source goes away or stalls mid-run: pcbench must exit 74 (source
# lost) within a bound, never hang, leave no process behind, and (with
# --json) write a valid failure report.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

BOUND=${PCB_SOURCE_LOSS_BOUND:-10}     # seconds from the event to pcbench's exit

# source_pid: the forked source (named pcbench-source) of pcbench $PCB_PID
source_pid() { child_pid pcbench-source 300; }

# check_lost NAME T_EVENT_MS: exit 74 within BOUND s of the event, one failure report
check_lost() {
	local name=$1 t_event=$2
	expect_rc "$name" 74 || return
	local after=$((ELAPSED_MS - t_event))
	[ "$after" -le $((BOUND * 1000)) ] || fail "$name: exited ${after} ms after the source was lost, bound ${BOUND} s"
	grep -qi 'source' "$T/$name.err" || fail "$name: stderr does not mention the source: $(cat "$T/$name.err")"
	if [ -e "$T/$name.json" ]; then
		$PCBJSON failed "$T/$name.json" 74 || fail "$name: bad failure report"
	else
		fail "$name: no JSON report written for a failed run"
	fi
	log "$name: exit 74, ${after} ms after the event"
}

# stop_lost NAME AFTER: stop (SIGSTOP) the source of the run in the background AFTER
# seconds in, then check_lost; the source is continued once pcbench has exited
stop_lost() {
	local name=$1 src t0 start_ns
	src=$(source_pid) || die "$name: no source process"
	sleep "$2"
	t0=$(date +%s%N)
	kill -STOP "$src"
	pcb_wait "$name"
	kill -CONT "$src" 2>/dev/null
	start_ns=$(( $(date +%s%N) - ELAPSED_MS * 1000000 ))
	check_lost "$name" $(( (t0 - start_ns) / 1000000 ))
}

# kill -9 the source while the guest runs (and, for demand, while pages are still missing)
for p in $(migrating_policies); do
	for sig in KILL TERM; do
		name=kill$sig-$p
		pcb_bg "$name" 60 --policy="$p" --workload=random --mem=256M --duration=20s --json="$T/$name.json"
		src=$(source_pid) || { fail "$name: no pcbench-source child of $PCB_PID"; kill "$PCB_PID"; pcb_wait "$name"; continue; }
		sleep 0.3
		t0=$(date +%s%N)
		kill -"$sig" "$src"
		pcb_wait "$name"
		# ELAPSED_MS is from start; express the event relative to the start as well
		start_ns=$(( $(date +%s%N) - ELAPSED_MS * 1000000 ))
		if grep -Eq "verify +NOT DONE \(([0-9]+) of \1 pages had arrived\)" "$T/$name.out"; then
			# the pull had finished before the kill (a quiet machine): the guest runs on to its
			# end, only verification needed the source (docs/security.md): exit 74 within BOUND
			# of the guest's 20 s, the report saying verification was not done
			expect_rc "$name" 74
			grep -q "verify      NOT DONE" "$T/$name.out" || fail "$name: complete migration, but the report does not say verification was not done"
			[ "$ELAPSED_MS" -le $(( (20 + BOUND) * 1000 )) ] || fail "$name: took ${ELAPSED_MS} ms for a 20 s guest"
			log "$name: every page had arrived before the kill; guest ran to its end, verification not done, reported"
		else
			check_lost "$name" $(( (t0 - start_ns) / 1000000 ))
		fi
	done
done

# a stopped (not dead) source: the connections stay up but nothing arrives
name=stopped
pcb_bg "$name" 60 $FAST --policy=demand --workload=random --mem=256M --duration=20s --io-timeout=1s --json="$T/$name.json"
stop_lost "$name" 0.3

# the source stalls after every page has arrived, while the guest still runs: nothing is
# awaited until the final verification, which must not wait for the digests forever.
# sequential has pulled 64 MiB long before 0.8 s; with demand, 16 pages scanned by the
# guest arrive at once (no background pull: the demand thread takes its fast path)
# (and with --reconnect-timeout: reconnecting to a stopped source must give up in time too)
for spec in sequential:64M:0 demand:64K:0 sequential:64M:2s; do
	IFS=: read -r p mem rt <<<"$spec"
	name=stopped-before-verify-$p-reconnect$rt
	extra=
	"$PCBENCH" --help | grep -q -- '--reconnect-timeout=' && extra=--reconnect-timeout=$rt
	pcb_bg "$name" 60 $FAST --policy="$p" --workload=seq --mem="$mem" --duration=1500ms --io-timeout=1s $extra \
		--json="$T/$name.json"
	stop_lost "$name" 0.8
	grep -q 'digests' "$T/$name.err" || log "note: $name: did not fail at verification: $(cat "$T/$name.err")"
done

# a slow source: every demand reply takes 5 s, the pager gives up after 1 s
for p in $(migrating_policies); do
	name=delay-$p
	pcb "$name" 60 $FAST --policy="$p" --workload=random --mem=64M --duration=2s --source-delay=5s --io-timeout=1s \
		--json="$T/$name.json"
	check_lost "$name" 0
	# it gave up because of the timeout, not because the delayed reply came -- unless the
	# background pull had brought every page first: then the migration is complete, the run
	# goes on, and only the verification (which needs the source) fails (docs/security.md)
	if grep -q "after every page had arrived" "$T/$name.err"; then
		grep -q "verify      NOT DONE" "$T/$name.out" || fail "$name: complete migration, but the report does not say verification was not done"
		log "$name: every page had arrived before the timeout; verification not done, reported"
	else
		[ "$ELAPSED_MS" -lt 5000 ] || fail "$name: took ${ELAPSED_MS} ms: the 1 s io-timeout did not fire before the 5 s reply"
	fi
done

finish
