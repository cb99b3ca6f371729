#!/usr/bin/env bash
# pctrace -p on tests/helpers/uffd_cases, an independent userfaultfd program
# (its own handler, no pcbench code, no probes), in the layouts of issue 15.
# In every case pctrace is attached BEFORE the program creates its
# userfaultfd and registers anything, so registrations must be followed as
# they happen.  Checks, per case:
#  - uffd_faults (faults whose message the handler read) == the program's own
#    count of fault messages, exactly;
#  - the median fault -> running within 10 % of the program's own clock
#    (clock_gettime around each access) when there are faults;
#  - method "uffd_messages" (not the scheduler heuristic).
# Cases: missing (2 threads, handler delays 300 us), missing without
# UFFD_FEATURE_THREAD_ID, pagecache (registered shmem whose pages are all in
# the page cache, then a 1 ms sleep: truth 0), syscall (faults inside
# read()), readv (faults inside readv()), handler_readv (the handler reads
# its messages with readv()), register (6 ranges registered then touched at
# once), external (handler in another process, uffd over SCM_RIGHTS, no
# thread ids).
. "$(dirname "$0")/../lib/integ.sh"
CASES=$BUILD/tests/helpers/uffd_cases
PCTRACE=./pctrace
PAGES=${PAGES:-400}
pctrace_setup "$CASES"

# run NAME CASE_ARGS... [-- PCTRACE_ARGS...]: start the program waiting on
# a fifo, attach pctrace, release the program, collect both outputs.
run() {
	local name=$1; shift
	local fifo=$T/$name.fifo cargs=() pargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do cargs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	pargs=("$@")
	mkfifo "$fifo"
	"$CASES" "${cargs[@]}" --wait "$fifo" >"$T/$name.out" 2>&1 &
	vpid=$!
	for _ in $(seq 100); do grep -q '^ready' "$T/$name.out" && break; sleep 0.05; done
	grep -q '^ready' "$T/$name.out" || die "$name: program did not start: $(cat "$T/$name.out")"
	pctrace_attach "$T" "$name" "$vpid" "${pargs[@]}"
	echo go >"$fifo"
	wait "$vpid"; local rc=$?; vpid=
	[ $rc = 77 ] && skip "userfaultfd not permitted: $(cat "$T/$name.out")"
	[ $rc = 0 ] || die "$name: program failed ($rc): $(cat "$T/$name.out")"
	pctrace_finish "$T" "$name"
	echo "--- $name: $(grep '^cases' "$T/$name.out")"
	cat "$T/$name.err" "$T/$name.pctrace"
}

check() {
	$CHECK pctrace.case "$T/$1.json" "$T/$1.out" "$1" || fail "$1"
}

for c in "missing -m missing" "notid -m missing --no-tid" "pagecache -m pagecache" \
	 "syscall -m syscall" "readv -m readv" "handler_readv -m missing --readv" \
	 "register -m register" "external -m external --no-tid"; do
	set -- $c
	name=$1; shift
	n=$PAGES; [ "$name" = register ] && n=$((PAGES / 2))
	run "$name" "$@" -n "$n" -t 2 -d 300
	check "$name"
done

# --resolve: each fault followed to the UFFDIO_COPY that resolved its page,
# in the process itself and from an external handler: every fault resolved,
# fault -> resolve at least the handler's 300 us delay and below fault ->
# running (which adds the wake-up).
for c in "resolve -m missing" "resolve_ext -m external --no-tid"; do
	set -- $c
	name=$1; shift
	run "$name" "$@" -n "$PAGES" -t 2 -d 300 -- --resolve
	check "$name"
	$CHECK pctrace.resolve "$T/$name.json" "$T/$name.out" "$name" || fail "$name"
done

# raw_tp twins of the fault and scheduler hooks (what is used where tp_btf
# is refused): the same exact count.
run raw -m missing -n "$PAGES" -t 2 -d 300 -- --raw-tp
check raw
grep -q '"page_fault": "raw_tp"' "$T/raw.json" && grep -q '"sched_switch": "raw_tp"' "$T/raw.json" &&
	grep -q '"page_fault_kernel": "raw_tp"' "$T/raw.json" || fail "--raw-tp: raw_tp programs not used"

# JSON lines: interval records (30 ms) whose faults and per-thread rows add
# up, histogram bins that add up to their counts, a total record equal to
# the truth, and the --json document as the last line.
run jsonl -m missing -n 800 -t 2 -d 300 -- -i 30ms -q -J "$T/jsonl.jsonl"
$CHECK pctrace.json_lines "$T/jsonl.jsonl" "$T/jsonl.out" || fail "json-lines"

# The scheduler heuristic (--heuristic) is what pctrace counted before: on
# page-cache hits followed by a sleep it counts faults that never reached
# userfaultfd (so the pagecache case above can catch that); it must say
# which method it used, in the JSON and on stderr.
run heuristic -m pagecache -n 400 -t 2 -- --heuristic -i 20ms
$CHECK pctrace.heuristic "$T/heuristic.json" || fail "heuristic"
grep -q "counting by the scheduler heuristic" "$T/heuristic.err" || fail "--heuristic: no warning on stderr"

# Bad durations: one line naming the value, exit 64.
"$PCTRACE" -p $$ --interval 5x >"$T/bad.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "'5x'" "$T/bad.out" || fail "--interval 5x: exit $rc, $(cat "$T/bad.out")"
"$PCTRACE" -p $$ --block-window 0 >"$T/bad.out" 2>&1; rc=$?
[ $rc = 64 ] || fail "--block-window 0: exit $rc"
finish

