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

# --resolve: each fault followed to the UFFDIO_COPY that resolved its page,
# in the process itself and from an external handler: every fault resolved,
# fault -> resolve at least the handler's 300 us delay and below fault ->
# running (which adds the wake-up).
for c in "resolve -m missing" "resolve_ext -m external --no-tid"; do
	set -- $c
	name=$1; shift
	run "$name" "$@" -n "$PAGES" -t 2 -d 300 -- --resolve
	check "$name"
	python3 - "$T/$name.json" "$T/$name.out" "$name" <<'EOF' || fail "$name"
import json, re, sys
b = json.load(open(sys.argv[1]))["bpf"]
truth = int(re.search(r"faults=(\d+)", open(sys.argv[2]).read()).group(1))
r, name = b["resolve"], sys.argv[3]
fr, f2r = r["fault_to_resolve"], b["fault_to_running"]
assert r["tracked"] and r["resolved"] == truth, f"{name}: resolved {r['resolved']} of {truth}"
assert fr["count"] == f2r["count"], f"{name}: fault_to_resolve count {fr['count']} vs fault_to_running {f2r['count']}"
assert 300000 <= fr["p50_ns"] <= f2r["p50_ns"], f"{name}: fault->resolve p50 {fr['p50_ns']} vs delay 300 us and fault->running {f2r['p50_ns']}"
print(f"ok   {name}: {r['resolved']} faults resolved; fault->resolve p50 {fr['p50_ns']} ns, resolve->running p50 {r['resolve_to_running']['p50_ns']} ns, fault->running p50 {f2r['p50_ns']} ns")
EOF
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
python3 - "$T/jsonl.jsonl" "$T/jsonl.out" <<'EOF' || fail "json-lines"
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
truth = int(re.search(r"faults=(\d+)", open(sys.argv[2]).read()).group(1))
iv = [r for r in recs if r.get("record") == "interval"]
tot = [r for r in recs if r.get("record") == "total"]
doc = recs[-1]
assert all(r["schema_version"] == 1 for r in recs), "schema_version on every record"
assert len(iv) >= 2 and len(tot) == 1, f"{len(iv)} interval records, {len(tot)} total"
assert sum(r["faults"] for r in iv) <= truth and tot[0]["faults"] == truth, (sum(r["faults"] for r in iv), tot[0]["faults"], truth)
# The maps are read one after the other while faults complete: a fault that
# completes during a read can show in a thread row of one interval and in
# the process line of the next, so interval rows agree within a few faults,
# cumulatively, and exactly in the total record.
rows = line = 0
for r in iv + tot:
    h = r["fault_to_running"]
    assert sum(c for _, c in h.get("bins", [])) == h["count"], "bins add up to the count"
    rows += sum(t["faults"] for t in r["threads"]); line += r["faults"]
    assert all(t["comm"] for t in r["threads"])
    if r in iv:
        assert abs(rows - line) <= max(4, line // 50), f"per-thread rows {rows} vs {line} so far"
assert sum(t["faults"] for t in tot[0]["threads"]) == tot[0]["faults"], "total: per-thread rows add up"
assert doc["tool"] == "pctrace" and doc["schema_version"] == 1 and doc["faults"] == truth
assert doc["bpf"]["fault_to_running"]["bins"], "the document's histograms have bins"
print(f"ok   json-lines: {len(iv)} interval records, total {tot[0]['faults']} == {truth}, bins add up, document last")
EOF

# The scheduler heuristic (--heuristic) is what pctrace counted before: on
# page-cache hits followed by a sleep it counts faults that never reached
# userfaultfd (so the pagecache case above can catch that); it must say
# which method it used, in the JSON and on stderr.
run heuristic -m pagecache -n 400 -t 2 -- --heuristic -i 20ms
python3 - "$T/heuristic.json" <<'EOF' || fail "heuristic"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["method"] == "scheduler_heuristic" and d["bpf"]["method"] == "scheduler_heuristic", d["method"]
# (its ranges come from smaps rescans every interval: the hits after the first rescan count)
assert d["faults"] > 0, "the heuristic counts page-cache hits followed by a sleep: the case can catch it"
print(f"ok   --heuristic: method {d['method']} declared; it counted {d['faults']} page-cache hits as faults (truth 0)")
EOF
grep -q "counting by the scheduler heuristic" "$T/heuristic.err" || fail "--heuristic: no warning on stderr"

# Bad durations: one line naming the value, exit 64.
"$PCTRACE" -p $$ --interval 5x >"$T/bad.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "'5x'" "$T/bad.out" || fail "--interval 5x: exit $rc, $(cat "$T/bad.out")"
"$PCTRACE" -p $$ --block-window 0 >"$T/bad.out" 2>&1; rc=$?
[ $rc = 64 ] || fail "--block-window 0: exit $rc"
finish

