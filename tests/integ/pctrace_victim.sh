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
BUILD=${BUILD:-build}
VICTIM=$BUILD/tests/helpers/uffd_victim
PCTRACE=./pctrace
PAGES=${PAGES:-1000}
DELAY_US=${DELAY_US:-200}
CPU=${CPU:-0}


[ -x "$VICTIM" ] || die "$VICTIM not built"
[ -x "$PCTRACE" ] || die "$PCTRACE not built"
command -v python3 >/dev/null || skip "python3 is needed to read the JSON"
[ "$(id -u)" = 0 ] || skip "pctrace needs root (BPF)"

tmp=$T
vpid=; ppid=
cleanup() {
	[ -n "$ppid" ] && kill "$ppid" 2>/dev/null
	[ -n "$vpid" ] && kill "$vpid" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

RT=
chrt -f 10 true 2>/dev/null && RT="chrt -f 10"
echo "victim scheduling: ${RT:-default (chrt -f not permitted)}, handler and touchers on CPU $CPU"

# Floor: the same victim with no delay and no tracer.
$RT "$VICTIM" -n "$PAGES" -d 0 -H "$CPU" -T "$CPU" >"$tmp/floor.out" || {
	rc=$?; [ $rc = 77 ] && skip "userfaultfd not permitted"; die "victim failed ($rc)"; }
floor=$(sed -n 's/.* median_ns=\([0-9]*\).*/\1/p' "$tmp/floor.out")
echo "floor: $(cat "$tmp/floor.out")"

# run NAME VICTIM_ARGS -- PCTRACE_ARGS: start the victim waiting on a fifo,
# attach pctrace, release the victim, collect both outputs.
run() {
	local name=$1; shift
	local vargs=() pargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do vargs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	pargs=("$@")
	local fifo=$tmp/$name.fifo
	mkfifo "$fifo"
	$RT "$VICTIM" "${vargs[@]}" --wait "$fifo" >"$tmp/$name.victim" 2>&1 &
	vpid=$!
	for _ in $(seq 100); do grep -q '^ready' "$tmp/$name.victim" && break; sleep 0.05; done
	grep -q '^ready' "$tmp/$name.victim" || die "$name: victim did not start: $(cat "$tmp/$name.victim")"
	pctrace_attach "$tmp" "$name" "$vpid" "${pargs[@]}"
	echo go >"$fifo"
	wait "$vpid" || die "$name: victim failed: $(cat "$tmp/$name.victim")"
	vpid=
	pctrace_finish "$tmp" "$name"
	echo "--- $name"; grep '^victim' "$tmp/$name.victim"; cat "$tmp/$name.pctrace"
}

# check NAME THREADS [bg]: count exactness and median agreement.
check() {
	python3 - "$tmp/$1.json" "$tmp/$1.victim" "$PAGES" "$2" "$DELAY_US" "$floor" "${3:-}" <<'EOF'
import json, re, sys
path, vout, pages, threads, delay_us, floor = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
bg = sys.argv[7] == "bg"
b = json.load(open(path))["bpf"]
v = dict(re.findall(r"(\w+)=(\S+)", [l for l in open(vout) if l.startswith("victim")][0]))
ok = True
def req(cond, what):
    global ok
    print(("ok   " if cond else "FAIL ") + what)
    ok &= cond
req(b["enabled"], "bpf enabled")
vf = int(v["faults"])     # fault messages the victim's handler read
if bg:
    msg = b["messages"]
    req(msg["tracked"], "fault messages tracked (--messages)")
    req(0 < vf <= pages, f"victim handled {vf} faults, the background installed {v['bg_installed']} of {pages} pages")
    req(b["faults"] == vf, f"pctrace faults {b['faults']} == the handler's {vf} (no slack)")
    req(msg["read"] == vf and msg["unmatched"] == 0, f"messages read {msg['read']} == {vf}, unmatched {msg['unmatched']} == 0")
    # Secondary identity between the kernel-side counters.  A fault whose
    # message is read at the instant the background resolves it can be
    # classified on both sides of the race (seen once in CI runs: 996 vs 997),
    # so one fault in 500 of slack; the exact check is the one above.
    want = b["faults"] - msg["delivered_without_block"] + msg["blocked_resolved_before_read"]
    req(abs(b["faults_blocked"] - want) <= max(1, b["faults"] // 500),
        f"blocked {b['faults_blocked']} == delivered {b['faults']} - delivered without block "
        f"{msg['delivered_without_block']} + resolved before read {msg['blocked_resolved_before_read']} "
        f"(difference {b['faults_blocked'] - want:+d})")
    print(f"     {msg['blocked_resolved_before_read']} blocked faults were resolved by the background before the handler read them")
else:
    req(vf == pages, f"victim handled {vf} faults == {pages}")
    req(b["faults"] == pages, f"pctrace blocking faults {b['faults']} == {pages}")
    req(b["faults_nonblocking"] == 0, f"non-blocking faults {b['faults_nonblocking']} == 0")
    lost = b["anomalies"]["lost"]
    req(b["fault_to_running"]["count"] == pages - lost, f"fault_to_running count == pages - lost ({lost})")
th = [t for t in b["threads"] if t["faults"]]
req(len(th) == threads, f"{len(th)} faulting threads == {threads}")
req(sum(t["faults"] for t in th) == b["faults"], "per-thread faults sum to the total")
med = b["fault_to_running"]["p50_ns"]
exp = delay_us * 1000 + floor
err = abs(med - exp) / exp
if threads == 1:   # with more touchers the handler serves them one after the other
    req(err <= 0.10, f"median fault->running {med} ns within 10% of delay+floor {exp:.0f} ns ({100*err:.1f}%)")
if not bg:         # with background installs the victim's median mixes in non-faulting touches
    vmed = int(v["median_ns"])
    req(abs(med - vmed) / vmed <= 0.10, f"median {med} ns within 10% of the victim's own median {vmed} ns ({100*(vmed-med)/vmed:+.1f}%)")
print(f"attach: {b['attach']}")
print(f"anomalies: {b['anomalies']}")
sys.exit(0 if ok else 1)
EOF
}

# One run per case, no retries: the counts are exact, and the victim runs
# SCHED_FIFO (where allowed) so that other work on the machine does not
# preempt its handler in the middle of the injected delay.
attempt() {
	local name=$1 threads=$2 mode=${3:-}; shift 3
	rm -f "$tmp/$name.fifo"
	run "$name" "$@"
	check "$name" "$threads" "$mode" || die "$name"
}

attempt btf 1 "" -n "$PAGES" -d "$DELAY_US" -H "$CPU" -T "$CPU"
grep -q '"page_fault": "tp_btf"' "$tmp/btf.json" || die "tp_btf programs were not used (pctrace -v shows why)"

attempt classic 1 "" -n "$PAGES" -d "$DELAY_US" -H "$CPU" -T "$CPU" -- --classic
grep -q '"page_fault": "tracepoint"' "$tmp/classic.json" || die "--classic did not use classic tracepoints"

attempt threads 4 "" -n "$PAGES" -t 4 -d "$DELAY_US" -H "$CPU" -T "$CPU" -- --events "$tmp/events.csv"
lines=$(grep -vc ',lost,' "$tmp/events.csv"); lines=$((lines - 1))
lost=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['bpf']['anomalies']['lost'])" "$tmp/threads.json")
[ "$lines" = $((PAGES - lost)) ] || die "events.csv has $lines completed events, expected $PAGES - $lost lost"
[ "$(grep -c ',lost,' "$tmp/events.csv")" = "$lost" ] || die "events.csv lost rows != anomalies.lost ($lost)"
echo "ok   events.csv has $lines completed events (+ $lost lost)"
python3 - "$tmp/events.csv" "$tmp/threads.json" <<'EOF' || exit 1
import csv, json, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["kind"] != "lost"]
b = json.load(open(sys.argv[2]))["bpf"]
pages = {r["page"] for r in rows}
assert len(pages) == len(rows), "every event is a distinct page"
assert all(int(r["fault_ns"]) <= int(r["block_ns"]) <= int(r["running_ns"]) for r in rows), "timestamps ordered"
assert all(int(r["wakeup_ns"]) == 0 or int(r["block_ns"]) <= int(r["wakeup_ns"]) <= int(r["running_ns"]) for r in rows), "wake-ups ordered"
assert b["events"]["dropped"] == 0 and b["events"]["consumed"] == len(rows) + b["anomalies"]["lost"]
print("ok   events: distinct pages, ordered timestamps, none dropped")
EOF

# USDT breakdown: the victim fires the pcbench:* probes for every fault.
python3 - "$tmp/btf.json" "$PAGES" "$DELAY_US" <<'EOF' || exit 1
import json, sys
p = json.load(open(sys.argv[1]))["bpf"]["pager"]
pages, delay = int(sys.argv[2]), float(sys.argv[3]) * 1000
if not p["enabled"]:
    print("note: USDT unavailable: " + p.get("reason", "")); sys.exit(0)
assert p["probes"]["fault"] == pages and p["probes"]["installed"] == pages, p["probes"]
assert p["installs"]["demand"] == pages, p["installs"]
rt = p["round_trip"]["demand"]["p50_ns"]
assert abs(rt - delay) / delay <= 0.10, f"request->received p50 {rt} vs injected {delay}"
print(f"ok   usdt: {pages} faults/installs, request->received p50 {rt} ns ~ injected {delay:.0f} ns")
EOF
# --null-programs (bpf/overhead.sh's floor) attaches the hooks and measures
# nothing: zero faults, and the JSON says so.
run null -n 200 -d 0 -H "$CPU" -T "$CPU" -- --null-programs --no-usdt
python3 - "$tmp/null.json" <<'EOF' || exit 1
import json, sys
b = json.load(open(sys.argv[1]))["bpf"]
assert b["enabled"] and b["filter"].get("null_programs") is True, b["filter"]
assert b["faults"] == 0 and b["faults_seen"] == 0 and b["fault_to_running"]["count"] == 0, b
print("ok   --null-programs: hooks attached, 0 faults counted, marked null_programs in the JSON")
EOF
# A background installer resolves some blocked faults before the handler
# reads their messages: with --messages, pctrace's count is the handler's.
# (Default scheduling: under SCHED_FIFO the spinning handler would starve
# the installer; only counts are checked here.)
RT=
attempt bg 4 bg -n "$PAGES" -t 4 -d 200 -b 100 -H "$CPU" -T "$CPU" -- --wakeup
echo PASS
