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
# read()), register (6 ranges registered then touched at once), external
# (handler in another process, uffd over SCM_RIGHTS, no thread ids).
. "$(dirname "$0")/../lib/integ.sh"
CASES=$BUILD/tests/helpers/uffd_cases
PCTRACE=./pctrace
PAGES=${PAGES:-400}
[ -x "$CASES" ] || die "$CASES not built"
[ -x "$PCTRACE" ] || die "$PCTRACE not built"
[ "$(id -u)" = 0 ] || skip "pctrace needs root (BPF)"

vpid=; ppid=
cleanup() {
	[ -n "$ppid" ] && kill "$ppid" 2>/dev/null
	[ -n "$vpid" ] && kill "$vpid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# run NAME CASE_ARGS...: start the program waiting on a fifo, attach
# pctrace, release the program, collect both outputs.
run() {
	local name=$1; shift
	local fifo=$T/$name.fifo
	mkfifo "$fifo"
	"$CASES" "$@" --wait "$fifo" >"$T/$name.out" 2>&1 &
	vpid=$!
	for _ in $(seq 100); do grep -q '^ready' "$T/$name.out" && break; sleep 0.05; done
	grep -q '^ready' "$T/$name.out" || die "$name: program did not start: $(cat "$T/$name.out")"
	"$PCTRACE" -p "$vpid" -i 0 --json "$T/$name.json" >"$T/$name.pctrace" 2>"$T/$name.err" &
	ppid=$!
	for _ in $(seq 200); do
		grep -q 'tracing pid' "$T/$name.err" && break
		kill -0 "$ppid" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -q 'tracing pid' "$T/$name.err"; then
		wait "$ppid"; local rc=$?; ppid=
		cat "$T/$name.err"
		{ [ $rc = 77 ] || [ $rc = 69 ]; } && skip "BPF unavailable: $(tail -1 "$T/$name.err")"
		die "$name: pctrace did not attach (exit $rc)"
	fi
	echo go >"$fifo"
	wait "$vpid"; local rc=$?; vpid=
	[ $rc = 77 ] && skip "userfaultfd not permitted: $(cat "$T/$name.out")"
	[ $rc = 0 ] || die "$name: program failed ($rc): $(cat "$T/$name.out")"
	for _ in $(seq 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$ppid" 2>/dev/null && die "$name: pctrace did not exit after the program"
	wait "$ppid" || die "$name: pctrace exited with $?: $(cat "$T/$name.err")"
	ppid=
	echo "--- $name: $(grep '^cases' "$T/$name.out")"
	cat "$T/$name.err" "$T/$name.pctrace"
}

check() {
	python3 - "$T/$1.json" "$T/$1.out" "$1" <<'EOF' || fail "$1"
import json, re, sys
doc = json.load(open(sys.argv[1]))
b = doc["bpf"]
v = dict(re.findall(r"(\w+)=(\S+)", [l for l in open(sys.argv[2]) if l.startswith("cases")][0]))
name, truth = sys.argv[3], int(v["faults"])
ok = True
def req(c, what):
    global ok
    print(("ok   " if c else "FAIL ") + name + ": " + what); ok &= bool(c)
req(b["method"] == "uffd_messages", f"method {b['method']}")
req(b["uffd_faults"] == truth, f"pctrace uffd_faults {b['uffd_faults']} == the handler's {truth}")
req(b["faults"] == truth, f"pctrace faults {b['faults']} == {truth}")
th = b["threads"]
req(sum(t["faults"] for t in th) == truth, "per-thread faults sum to the total")
req(all(t["comm"] for t in th if t["faults"]), "every faulting thread has its name")
if name == "syscall":
    req(b["faults_seen_kernel_mode"] >= truth, f"kernel-mode faults seen {b['faults_seen_kernel_mode']} >= {truth}")
if name == "register":
    req(b["registrations"]["registered"] == 6, f"6 registrations followed ({b['registrations']['registered']})")
if truth:
    med, own = b["fault_to_running"]["p50_ns"], int(v["median_ns"])
    req(abs(med - own) / own <= 0.10, f"median {med} ns within 10% of the program's own {own} ns ({100*(med-own)/own:+.1f}%)")
else:
    req(b["fault_to_running"]["count"] == 0, "no fault -> running latency recorded")
print(f"     messages {b['messages']}, readers {b['filter']['message_readers']}")
sys.exit(0 if ok else 1)
EOF
}

for c in "missing -m missing" "notid -m missing --no-tid" "pagecache -m pagecache" \
	 "syscall -m syscall" "register -m register" "external -m external --no-tid"; do
	set -- $c
	name=$1; shift
	n=$PAGES; [ "$name" = register ] && n=$((PAGES / 2))
	run "$name" "$@" -n "$n" -t 2 -d 300
	check "$name"
done
finish
