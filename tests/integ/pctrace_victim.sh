#!/usr/bin/env bash
# pctrace -p on tests/helpers/uffd_victim (a program that knows nothing about
# pctrace): the fault count must be exact and the median fault -> running
# latency within 10% of (injected delay + measured floor).  Also checks the
# classic-tracepoint fallback, multi-threaded victims (per-thread counts),
# the CSV event stream, the USDT pager breakdown, and (messages are counted by
# default) a victim
# whose background installer resolves some blocked faults before the handler
# reads their messages (pctrace's count must still equal the handler's).
# No retries: counts are exact; latency medians are compared with the
# victim's own measurement of the same faults in the same run.
. "$(dirname "$0")/../lib/integ.sh"
VICTIM=$BUILD/tests/helpers/uffd_victim
PCTRACE=./pctrace
PAGES=${PAGES:-1000}
DELAY_US=${DELAY_US:-200}
CPU=${CPU:-0}
pctrace_setup "$VICTIM"

RT=
chrt -f 10 true 2>/dev/null && RT="chrt -f 10"
echo "victim scheduling: ${RT:-default (chrt -f not permitted)}, handler and touchers on CPU $CPU"

# Floor: the same victim with no delay and no tracer.
$RT "$VICTIM" -n "$PAGES" -d 0 -H "$CPU" -T "$CPU" >"$T/floor.out" || {
	rc=$?; [ $rc = 77 ] && skip "userfaultfd not permitted"; die "victim failed ($rc)"; }
floor=$(sed -n 's/.* median_ns=\([0-9]*\).*/\1/p' "$T/floor.out")
echo "floor: $(cat "$T/floor.out")"

# run NAME VICTIM_ARGS -- PCTRACE_ARGS: start the victim waiting on a fifo,
# attach pctrace, release the victim, collect both outputs.
run() {
	local name=$1; shift
	local vargs=() pargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do vargs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	pargs=("$@")
	local fifo=$T/$name.fifo
	mkfifo "$fifo"
	$RT "$VICTIM" "${vargs[@]}" --wait "$fifo" >"$T/$name.victim" 2>&1 &
	vpid=$!
	for _ in $(seq 100); do grep -q '^ready' "$T/$name.victim" && break; sleep 0.05; done
	grep -q '^ready' "$T/$name.victim" || die "$name: victim did not start: $(cat "$T/$name.victim")"
	pctrace_attach "$T" "$name" "$vpid" "${pargs[@]}"
	echo go >"$fifo"
	wait "$vpid" || die "$name: victim failed: $(cat "$T/$name.victim")"
	vpid=
	pctrace_finish "$T" "$name"
	echo "--- $name"; grep '^victim' "$T/$name.victim"; cat "$T/$name.pctrace"
}

# check NAME THREADS [bg]: count exactness and median agreement.
check() {
	$CHECK pctrace.victim "$T/$1.json" "$T/$1.victim" "$PAGES" "$2" "$DELAY_US" "$floor" "${3:-}"
}

# One run per case, no retries: the counts are exact, and the victim runs
# SCHED_FIFO (where allowed) so that other work on the machine does not
# preempt its handler in the middle of the injected delay.
attempt() {
	local name=$1 threads=$2 mode=${3:-}; shift 3
	rm -f "$T/$name.fifo"
	run "$name" "$@"
	check "$name" "$threads" "$mode" || die "$name"
}

attempt btf 1 "" -n "$PAGES" -d "$DELAY_US" -H "$CPU" -T "$CPU"
grep -q '"page_fault": "tp_btf"' "$T/btf.json" || die "tp_btf programs were not used (pctrace -v shows why)"

attempt classic 1 "" -n "$PAGES" -d "$DELAY_US" -H "$CPU" -T "$CPU" -- --classic
grep -q '"page_fault": "tracepoint"' "$T/classic.json" || die "--classic did not use classic tracepoints"

attempt threads 4 "" -n "$PAGES" -t 4 -d "$DELAY_US" -H "$CPU" -T "$CPU" -- --events "$T/events.csv"
lines=$(grep -vc ',lost,' "$T/events.csv"); lines=$((lines - 1))
lost=$($PCBJSON get "$T/threads.json" bpf.anomalies.lost)
[ "$lines" = $((PAGES - lost)) ] || die "events.csv has $lines completed events, expected $PAGES - $lost lost"
[ "$(grep -c ',lost,' "$T/events.csv")" = "$lost" ] || die "events.csv lost rows != anomalies.lost ($lost)"
echo "ok   events.csv has $lines completed events (+ $lost lost)"
$CHECK pctrace.events "$T/events.csv" "$T/threads.json" || exit 1

# USDT breakdown: the victim fires the pcbench:* probes for every fault.
$CHECK pctrace.usdt "$T/btf.json" "$PAGES" "$DELAY_US" || exit 1
# --null-programs (bpf/overhead.sh's floor) attaches the hooks and measures
# nothing: zero faults, and the JSON says so.
run null -n 200 -d 0 -H "$CPU" -T "$CPU" -- --null-programs --no-usdt
$CHECK pctrace.null_programs "$T/null.json" || exit 1
# A background installer resolves some blocked faults before the handler
# reads their messages: with --messages, pctrace's count is the handler's.
# (Default scheduling: under SCHED_FIFO the spinning handler would starve
# the installer; only counts are checked here.)
RT=
attempt bg 4 bg -n "$PAGES" -t 4 -d 200 -b 100 -H "$CPU" -T "$CPU" -- --wakeup
echo PASS
