#!/usr/bin/env bash
# The pre-paging policies of issue #8, live on the real kernel:
#  1. every policy (and knob variants) migrates 64 MiB with every page
#     verified and installed once, and keeps its own promise;
#  2. on a sequential scan `sequential` and `trend` take >= 10x fewer faults
#     than `demand` (same seed, same accesses);
#  3. `replay` of a recorded run takes >= 90% fewer faults than `demand` on
#     the same seed, and pulls in the recorded order (a descending scan is
#     pulled from the top);
#  4. --replay refuses a missing/bad trace, a page beyond --mem, and misuse,
#     before anything starts, with one line naming the problem;
#  5. replay through the edge cases other tests run for every policy
#     (one page, a partial bitmap word, 2 vCPUs, late demand replies).
# Fault counts are counts, not timings; the settings leave a wide margin and
# every figure is printed.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

J=$T/r.json
run() {   # run NAME ARGS...: a verified migration into $J
	local name=$1
	shift
	pcb "$name" 180 $FAST --json="$J" "$@"
	expect_rc "$name" 0 || return 1
	$PCBJSON migration "$J" || { fail "$name ($*): result checks failed"; return 1; }
}
field() { $PCBJSON get "$J" "$@"; }

# ---- 1. every policy and knob variants, 64 MiB, verified -------------------------
REPLAY=$(pol_args replay)     # a trace recorded from a random 64 MiB guest
for spec in "sequential" "qemu" "qemu preempt=on" "pivot" "pivot pivots=1,step=8" "pivot pivots=16,max-radius=64" \
	"trend" "trend history=8,max-depth=8" "criu" "criu min-chunk=4K,max-chunk=64K" \
	"replay" "replay batch-order=trace" "replay rest=address"; do
	set -- $spec
	p=$1 opt=${2:-}
	for w in random zipf; do
		name=$p-${opt:-default}-$w
		args=(--policy="$p" --workload="$w" --mem=64M --duration=300ms --seed=7)
		[ -n "$opt" ] && args+=(--policy-opt="$opt")
		[ "$p" = replay ] && args+=("$REPLAY")
		run "$name" "${args[@]}" || continue
		read -r dem bg zbg drain zero faults < <(field results.pages.demand results.pages.background \
			results.pages.zero_background results.pages.drain results.pages.zero results.faults.count | tr '\n' ' ')
		[ $((bg + zbg)) -gt 0 ] || fail "$name: no page pulled in the background"
		case "$spec" in
		criu*)
			# CRIU: one transfer outstanding
			im=$(field results.pager.background_inflight_max)
			[ "$im" = 1 ] || fail "$name: $im background batches in flight at once (CRIU keeps one)"
			;;
		"replay"|"replay batch-order=trace")
			# REAP: the working set only; the rest waits for faults or the final drain
			[ "$drain" -gt 0 ] || fail "$name: rest=demand but nothing was drained (working set = whole region?)"
			;;
		*)
			# the background pull covers everything: nothing left to drain when the guest stops
			[ "$drain" = 0 ] || log "note: $name: $drain pages drained (the pull did not finish in 300 ms)"
			;;
		esac
		log "$name: ok ($faults faults; pages: $dem demand, $bg+$zbg background, $drain drain)"
	done
done
# trend without the address-order fill: only its own prefetches, the rest drained (the guest
# scans a quarter of the region: a fast pull could otherwise follow a whole-region scan to its end)
if run trend-fill-none --policy=trend --policy-opt=fill=none --workload=seq --mem=64M --duration=0 --ops=4096 --seed=7; then
	read -r bg zbg drain < <(field results.pages.background results.pages.zero_background results.pages.drain | tr '\n' ' ')
	[ $((bg + zbg)) -gt 0 ] || fail "trend-fill-none: the trend prefetched nothing on a sequential scan"
	[ "$drain" -gt 0 ] || fail "trend-fill-none: nothing drained: did it pull in address order anyway?"
	log "trend-fill-none: $((bg + zbg)) prefetched along the trend, $drain drained"
fi

# ---- 2. sequential scan: >= 10x fewer faults than demand ------------------------
# 1 vCPU, 2 sweeps of 64 MiB (--ops), no zero pages: demand faults on every page
# once.  The guest scans faster than the background pull and rides the head
# of the stream, so how often it catches up depends on scheduling on this
# shared 2-CPU machine: --pin=split keeps the guest and the background
# pipeline on different CPUs, and up to 3 runs are made, the best counts (a
# policy that does not pull ahead fails all three; every figure is printed).
SEQ=(--workload=seq --mem=64M --ops=32768 --duration=0 --zero-pages=0 --seed=11 --pin=split)
faults_of() { field results.faults.count; }
# fewer NAME DEMAND_FAULTS ARGS...: the policy run takes <= 1/10 of the demand faults
fewer() {
	local name=$1 fd=$2 try f all=
	shift 2
	for try in 1 2 3; do
		run "$name-$try" "$@" || return
		f=$(faults_of)
		all="$all $f"
		[ $((f * 10)) -le "$fd" ] && break
	done
	log "$name: faults$all vs demand $fd ($($CHECK policies.fewer "$fd" "$f"))"
	[ $((f * 10)) -le "$fd" ] || fail "$name: faults$all in 3 runs, never 10x fewer than demand's $fd"
}
if run seq-demand --policy=demand "${SEQ[@]}" --record="$T/seq.trc"; then
	fd=$(faults_of)
	[ "$fd" -ge 16000 ] || fail "seq-demand: only $fd faults for 16384 pages touched once each"
	fewer seq-sequential "$fd" --policy=sequential "${SEQ[@]}"
	fewer seq-trend "$fd" --policy=trend "${SEQ[@]}"
	fewer seq-replay "$fd" --policy=replay --replay="$T/seq.trc" "${SEQ[@]}"
fi

# ---- 3. replay follows the recorded order: a descending scan ---------------------
DOWN=(--workload=stride --workload-opt=stride=1,dir=down --mem=64M --ops=32768 --duration=0 --zero-pages=0 --seed=12
	--pin=split)
if run down-demand --policy=demand "${DOWN[@]}" --record="$T/down.trc"; then
	fd=$(faults_of)
	fewer down-replay "$fd" --policy=replay --replay="$T/down.trc" "${DOWN[@]}"
	# the first background installs are at the top of the region, where the trace starts
	if run down-replay-tl --policy=replay --replay="$T/down.trc" "${DOWN[@]}" --timeline="$T/down.csv"; then
		$CHECK policies.down_replay_start "$T/down.csv" || fail "down-replay: the background pull did not start where the trace does"
	fi
fi

# ---- 4. --replay errors: before anything starts, one line, distinct codes -------
err1() {   # err1 NAME WANT_RC PATTERN ARGS...
	local name=$1 want=$2 pat=$3
	shift 3
	pcb "$name" 30 $FAST --mem=64M --duration=100ms "$@"
	expect_rc "$name" "$want" || return
	[ "$(wc -l <"$T/$name.err")" = 1 ] || fail "$name: want one line on stderr, got: $(cat "$T/$name.err")"
	grep -q -- "$pat" "$T/$name.err" || fail "$name: message does not name '$pat': $(cat "$T/$name.err")"
	[ ! -s "$T/$name.out" ] || fail "$name: the run started (stdout: $(head -c 200 "$T/$name.out"))"
}
err1 replay-missing 65 "$T/nope.trc" --policy=replay --replay="$T/nope.trc"
printf '1\n2\nnot-a-page\n' >"$T/bad.txt"
err1 replay-bad 65 "bad.txt:3" --policy=replay --replay="$T/bad.txt"
err1 replay-beyond 65 "touches page [0-9]*, beyond --mem" --policy=replay --replay="$T/seq.trc" --mem=32M
err1 replay-nofile 64 "--replay FILE" --policy=replay
err1 replay-otherpol 64 "only --policy=replay" --policy=sequential --replay="$T/seq.trc"
err1 replay-twice 64 "also given" --policy=replay --replay="$T/seq.trc" --policy-opt=file="$T/seq.trc"
err1 replay-knob 64 "'sideways'" --policy=replay --replay="$T/seq.trc" --policy-opt=rest=sideways
err1 criu-knob 64 "'3K'" --policy=criu --policy-opt=min-chunk=3K
err1 pivot-knob 64 "pivots" --policy=pivot --policy-opt=pivots=65
err1 trend-knob 64 "max-depth" --policy=trend --policy-opt=max-depth=0

# ---- 5. replay through the edge cases ------------------------------------------
echo 0 >"$T/one.txt"
run replay-one-page --policy=replay --replay="$T/one.txt" --mem=4K --workload=seq --duration=50ms
printf '64\n0\n3\n64\n17\n' >"$T/word.txt"
run replay-partial-word --policy=replay --replay="$T/word.txt" --mem=260K --workload=random --duration=100ms
run replay-vcpus --policy=replay "$REPLAY" --mem=64M --workload=zipf --vcpus=2 --duration=300ms
awk 'BEGIN { for (i = 0; i < 4096; i++) print (i * 2897) % 4096 }' >"$T/perm.txt"
run replay-late-replies --policy=replay --replay="$T/perm.txt" --mem=16M --source-delay=2ms --vcpus=2 \
	--workload=random --duration=0 --ops=2000

finish
