# Shared helpers for the integration tests (tests/integ/*.sh), sourced by each:
#   . "$(dirname "$0")/../lib/integ.sh"
# Run from the repository root by tests/run-tests.sh with BUILD set.
# Exit 0 = pass, 77 = skip (say why on a line containing "SKIP"), else fail.
# Conventions: every script sources this file first (scratch dir $T, removed with any
# background job at exit; skip/die/fail/finish); names are lower_case_with_underscores.sh;
# Python checks are named functions, never inline heredocs: the report-wide ones in
# tests/lib/pcbjson.py ($PCBJSON migration FILE, ...), one test's own in tests/lib/checks/TOPIC.py
# ($CHECK TOPIC.FUNCTION ARGS; `tests/lib/check --list` shows them all).
set -u

BUILD=${BUILD:-build}
PCBENCH=${PCBENCH:-./pcbench}
REAPER=$BUILD/tests/helpers/reaper
PCBJSON="python3 tests/lib/pcbjson.py"
CHECK="python3 tests/lib/check"
T=$(mktemp -d "${TMPDIR:-/tmp}/pcb-integ.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT   # background sources and runs too
NFAIL=0

log() { echo "[$(date +%H:%M:%S)] $*"; }
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }
# A failed check: report and carry on, so one run shows every problem; finish() exits 1.
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
finish() {
	if [ "$NFAIL" -ne 0 ]; then
		echo "$NFAIL check(s) failed"
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

[ -x "$PCBENCH" ] || die "$PCBENCH not built (run make)"
[ -x "$REAPER" ] || die "$REAPER not built (make integ builds it)"
command -v python3 >/dev/null || die "python3 is needed for the JSON checks"

# pcb NAME TIMEOUT_S ARGS...: run pcbench under the reaper.  Output goes to
# $T/NAME.{out,err,rep}; sets RC (exit code, or 128+signal), ELAPSED_MS,
# TIMEDOUT (0/1), LEFTOVERS (processes it left behind).
pcb() {
	local name=$1 limit=$2
	shift 2
	"$REAPER" -t "$limit" -r "$T/$name.rep" -- "$PCBENCH" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
	rep_parse "$name"
}

# pcb_bg NAME TIMEOUT_S ARGS...: the same in the background; BG_PID is the
# reaper, PCB_PID pcbench itself.  Collect with pcb_wait NAME.
pcb_bg() {
	local name=$1 limit=$2 i
	shift 2
	"$REAPER" -t "$limit" -r "$T/$name.rep" -- "$PCBENCH" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	BG_PID=$!
	PCB_PID=
	for i in $(seq 500); do
		PCB_PID=$(sed -n 's/^child=//p' "$T/$name.rep" 2>/dev/null)
		[ -n "$PCB_PID" ] && return 0
		sleep 0.01
	done
	die "$name: pcbench did not start"
}
pcb_wait() {
	wait "$BG_PID"
	rep_parse "$1"
}

rep_parse() {
	local rep="$T/$1.rep"
	RC=$(sed -n 's/^status=exited code=//p' "$rep")
	[ -n "$RC" ] || RC=$((128 + $(sed -n 's/^status=signaled signal=//p' "$rep")))
	ELAPSED_MS=$(sed -n 's/^elapsed_ms=//p' "$rep")
	TIMEDOUT=$(sed -n 's/^timeout=//p' "$rep")
	LEFTOVERS=$(sed -n 's/^leftovers=//p' "$rep")
}

# show NAME: the run's output, for a failure message
show() {
	echo "---- $1: exit $RC after ${ELAPSED_MS} ms; stderr:"
	sed 's/^/  | /' "$T/$1.err" | tail -n 20
	echo "---- stdout:"
	sed 's/^/  | /' "$T/$1.out" | tail -n 20
	grep '^leftover=' "$T/$1.rep" | sed 's/^/  | /'
}

# child_pid COMM TRIES: the child process named COMM of pcbench $PCB_PID (pcb_bg),
# polled every 10 ms up to TRIES times; fails when it never appears.
child_pid() {
	local i s
	for i in $(seq "$2"); do
		s=$(pgrep -P "$PCB_PID" -x "$1")
		[ -n "$s" ] && { echo "$s"; return 0; }
		sleep 0.01
	done
	return 1
}

# expect_rc NAME WANT: the run exited WANT, did not time out, left nothing behind.
expect_rc() {
	local ok=1
	if [ "$TIMEDOUT" = 1 ]; then fail "$1: pcbench hung (killed after its time limit)"; ok=0
	elif [ "$RC" != "$2" ]; then fail "$1: exit status $RC, want $2"; ok=0; fi
	if [ "$LEFTOVERS" != 0 ]; then fail "$1: left $LEFTOVERS process(es) behind"; ok=0; fi
	[ $ok = 1 ] || show "$1"
	[ $ok = 1 ]
}

# json_run NAME UNAVAILABLE ARGS...: pcbench ARGS --json $T/NAME.json, its output in
# $T/NAME.out; exit 77 skips the test ("UNAVAILABLE: " and pcbench's last line),
# any other non-zero exit fails it with the output shown.
json_run() {
	local name=$1 why=$2 rc
	shift 2
	"$PCBENCH" "$@" --json "$T/$name.json" >"$T/$name.out" 2>&1
	rc=$?
	case $rc in
	0) ;;
	77) skip "$why: $(tail -1 "$T/$name.out")" ;;
	*) cat "$T/$name.out"; die "pcbench $* exited $rc" ;;
	esac
}

# job_file FILE KEY=VALUE... [-- SECTION...]: a `pcbench bench` job file (configs/*.conf):
# an [experiment] section with one "key = value" line a pair, then the SECTION header lines
job_file() {
	local f=$1 kv
	shift
	{
		echo "# integration test job"
		echo "[experiment]"
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			kv=$1; shift
			echo "${kv%%=*} = ${kv#*=}"
		done
		[ $# -gt 0 ] && shift
		for kv in "$@"; do echo "[$kv]"; done
	} >"$f"
}

# need_uffd_dev: skip the test when the kernel has no userfaultfd at all (neither
# /dev/userfaultfd nor the sysctl); need_uffd asks pcbench itself.
need_uffd_dev() {
	[ -e /dev/userfaultfd ] || [ -r /proc/sys/vm/unprivileged_userfaultfd ] || skip "no userfaultfd in this kernel"
}

# 2 MiB hugetlb pages (hugepages.sh, bpf_hugepages.sh).  nr_hugepages is global: runs from
# other worktrees must not interleave their reserve/restore with ours -> one test at a time,
# system-wide (hugepages_lock), and nr_hugepages restored at exit.
HP_SYS=/sys/kernel/mm/hugepages/hugepages-2048kB
HP_NR=/proc/sys/vm/nr_hugepages
need_hugepages() { [ -d "$HP_SYS" ] || skip "this kernel has no 2 MiB hugetlb pages ($HP_SYS absent)"; }
# hugepages_lock: wait for the lock; HP_OLD = nr_hugepages now, written back at exit
hugepages_lock() {
	exec 9>/tmp/pcbench-hugepages.lock
	flock -w 600 9 || die "waited 600 s for /tmp/pcbench-hugepages.lock (another hugepages test)"
	HP_OLD=$(cat "$HP_NR")
	trap 'echo "$HP_OLD" > "$HP_NR" 2>/dev/null; kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
}
# 2 MiB pages free and not reserved by a mapping
hugepages_avail() { echo $(( $(cat "$HP_SYS/free_hugepages") - $(cat "$HP_SYS/resv_hugepages") )); }
# hugepages_reserve N: nr_hugepages = HP_WANT = HP_OLD + N, N of them available; skip when
# the memory is not there
hugepages_reserve() {
	HP_WANT=$((HP_OLD + $1))
	echo "$HP_WANT" > "$HP_NR" 2>/dev/null || skip "cannot write $HP_NR (not root?)"
	[ "$(cat "$HP_NR")" -ge "$HP_WANT" ] ||
		skip "the kernel reserved only $(cat "$HP_NR") of $HP_WANT 2 MiB pages (memory not there)"
	[ "$(hugepages_avail)" -ge "$1" ] || skip "only $(hugepages_avail) 2 MiB pages available after reserving $HP_WANT"
}

# need_uffd: skip the test if this kernel cannot do userfaultfd at all
# (pcbench says so with exit 69, EX_UNAVAILABLE); anything else is for the test to judge.
need_uffd() {
	pcb uffd-probe 60 --mem=64K --duration=10ms --policy=demand --workload=seq
	if [ "$RC" = 69 ]; then
		skip "kernel lacks userfaultfd: $(head -n 1 "$T/uffd-probe.err")"
	fi
}

# Arguments for runs that test the migration itself, not the kernel-side
# tracing: skip attaching the BPF programs (--trace=auto costs ~1 s a run).
# The policy x workload matrix and the source_death kills run with the defaults.
FAST=
"$PCBENCH" --help 2>/dev/null | grep -q -- '--trace=VALUE' && FAST=--trace=off

# policies / workloads as `pcbench list` prints them
list_section() {
	"$PCBENCH" list | awk -v s="$1:" '/^[a-z]+:$/ { on = ($0 == s); next } on && NF { print $1 }'
}
# the policies that migrate: all but `local` (the no-migration baseline: all
# memory is local before the guest starts; no faults, no source afterwards)
# and `replay`, which needs a recorded trace that fits the run's --mem
# (tests/integ/policies.sh and migrate_matrix.sh cover it, with pol_args)
migrating_policies() { list_section policies | grep -vx -e local -e replay; }

# pol_args POLICY: the extra arguments a policy needs to run at all on a
# 64 MiB guest (replay: a trace recorded once from a random guest)
pol_args() {
	case $1 in
	replay)
		if [ ! -s "$T/pol-replay.trc" ]; then
			"$PCBENCH" $FAST --mem=64M --policy=demand --workload=random --ops=20000 --duration=0 \
				--record "$T/pol-replay.trc" >/dev/null 2>"$T/pol-replay.err" ||
				die "recording a trace for --policy=replay failed: $(cat "$T/pol-replay.err")"
		fi
		echo "--replay=$T/pol-replay.trc" ;;
	esac
}

# wl_args WORKLOAD: the extra arguments a workload needs to run at all
# (a new workload that needs some fails the matrix until it is listed here)
wl_args() {
	case $1 in
	trace) # replays a recorded access sequence: record one once
		if [ ! -s "$T/wl-trace.bin" ]; then
			"$PCBENCH" $FAST --mem=64M --workload=random --ops=20000 --duration=0 --record "$T/wl-trace.bin" \
				>/dev/null 2>"$T/wl-trace.err" || die "recording a trace failed: $(cat "$T/wl-trace.err")"
		fi
		echo "--workload-opt=file=$T/wl-trace.bin" ;;
	scan+hot) echo "--vcpus=2" ;;   # scanners and hot-set vCPUs: needs two
	esac
}

# pctrace_setup PROGRAM: for a test that runs PROGRAM under $PCTRACE: both built, root
# (BPF), and pctrace_cleanup as the EXIT trap.
pctrace_setup() {
	[ -x "$1" ] || die "$1 not built"
	[ -x "$PCTRACE" ] || die "$PCTRACE not built"
	[ "$(id -u)" = 0 ] || skip "pctrace needs root (BPF)"
	vpid=; ppid=
	trap pctrace_cleanup EXIT
}

# pctrace_cleanup: the EXIT trap of pctrace_setup: stop the traced program ($vpid) and
# pctrace ($ppid), then remove $T (kept and named when KEEP is set).
pctrace_cleanup() {
	[ -n "${ppid:-}" ] && kill "$ppid" 2>/dev/null
	[ -n "${vpid:-}" ] && kill "$vpid" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}

# pctrace_attach DIR NAME PID [PCTRACE ARGS...]: start pctrace on PID (JSON to DIR/NAME.json,
# reports to DIR/NAME.pctrace, stderr to DIR/NAME.err), its pid in $ppid, and wait until it
# is attached; skip when BPF is unavailable (exit 77/69), die when it does not attach.
pctrace_attach() {
	local dir=$1 name=$2 pid=$3 rc
	shift 3
	"$PCTRACE" -p "$pid" -i 0 --json "$dir/$name.json" "$@" >"$dir/$name.pctrace" 2>"$dir/$name.err" &
	ppid=$!
	for _ in $(seq 200); do
		grep -q 'tracing pid' "$dir/$name.err" && break
		kill -0 "$ppid" 2>/dev/null || break
		sleep 0.05
	done
	grep -q 'tracing pid' "$dir/$name.err" && return 0
	wait "$ppid"; rc=$?; ppid=
	cat "$dir/$name.err"
	{ [ $rc = 77 ] || [ $rc = 69 ]; } && skip "BPF unavailable: $(tail -1 "$dir/$name.err")"
	die "$name: pctrace did not attach (exit $rc)"
}

# pctrace_finish DIR NAME: pctrace notices its target's exit by itself; it must exit 0 soon.
pctrace_finish() {
	local dir=$1 name=$2
	for _ in $(seq 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$ppid" 2>/dev/null && die "$name: pctrace did not exit after its target"
	wait "$ppid" || die "$name: pctrace exited with $?: $(cat "$dir/$name.err")"
	ppid=
}
