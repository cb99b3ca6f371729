#!/usr/bin/env bash
# Every workload of the suite runs a live post-copy migration of 64 MiB with
# zero corrupt or missing pages; --record then --workload=trace replays the
# same accesses; bad knobs exit 64 naming the key; the progress series (JSON
# and CSV) is present and consistent with the op count.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
BUILD=${BUILD:-build}
[ -e /dev/userfaultfd ] || grep -q 1 /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null || [ "$(id -u)" = 0 ] ||
	skip "no userfaultfd access"

# check JSON NAME: exit 0, verified, nothing corrupt/missing, ops > 0, progress sums to ops, CSV too
check() {
	$CHECK workloads.run "$T/$1.json" "$T/$1.progress.csv" "$1" || return 1
}

run() {   # run NAME ARGS...
	local name=$1; shift
	"$P" --mem=64M --duration=400ms --trace=off --json "$T/$name.json" "$@" >"$T/$name.out" 2>"$T/$name.err"
	local rc=$?
	if [ $rc -ne 0 ]; then fail "$name: exit $rc: $(tail -2 "$T/$name.err")"; return; fi
	check "$name" || fail "$name: JSON checks"
}

for w in seq random zipf stride chase kv phase idle; do
	run "$w" --workload=$w --policy=sequential
done
run scanhot --workload=scan+hot --vcpus=2 --policy=demand
run kv-2 --workload=kv --vcpus=2 --policy=demand --workload-opt=get=0.5,record-pages=4
run stride-down --workload=stride --workload-opt=stride=3,dir=down --policy=demand
run phase-fast --workload=phase --workload-opt=phase-ms=20,hot=0.1 --policy=sequential --vcpus=2

# kv writes are the puts: with get=0.5 about half the ops write their record pages
$CHECK workloads.kv_put_mix "$T/kv-2.json" || fail "kv put mix"

# record, then replay the same access sequence from the file (binary and text)
"$P" --mem=64M --workload=kv --ops=20000 --duration=0 --trace=off --record "$T/rec.bin" --json "$T/rec.json" >/dev/null 2>"$T/rec.err" ||
	fail "record run: $(tail -1 "$T/rec.err")"
"$P" --mem=64M --workload=kv --ops=500 --duration=0 --trace=off --record "$T/rec.txt" >/dev/null 2>&1 || fail "text record run"
head -c 8 "$T/rec.bin" | grep -q PCBTRC1 || fail "binary trace lacks its magic"
[ "$(grep -vc '^#' "$T/rec.txt")" -eq 1000 ] || fail "text trace has $(grep -vc "^#" "$T/rec.txt") lines, want 1000 (500 ops of 2 accesses)"
for f in rec.bin rec.txt; do
	"$P" --mem=64M --workload=trace --workload-opt=file="$T/$f",loop=0 --duration=10s --trace=off \
		--json "$T/replay-$f.json" >/dev/null 2>"$T/replay.err" || fail "replay $f: $(tail -1 "$T/replay.err")"
done
$CHECK workloads.replay_counts "$T/rec.json" "$T/replay-rec.bin.json" "$T/replay-rec.txt.json" || fail "replay counts"

# bad knobs and bad traces: one line naming the value, distinct exit codes, before the run
"$P" --mem=64M --workload=stride --workload-opt=strid=4 --trace=off >"$T/bad.out" 2>"$T/bad.err"
rc=$?; [ $rc -eq 64 ] || fail "unknown knob: exit $rc, want 64"
grep -q "'strid'" "$T/bad.err" || fail "unknown knob not named: $(cat "$T/bad.err")"
[ ! -s "$T/bad.out" ] || fail "unknown knob: a run started"
"$P" --mem=64M --workload=kv --workload-opt=get=2 --trace=off >/dev/null 2>"$T/bad2.err"
rc=$?; [ $rc -eq 64 ] || fail "get=2: exit $rc, want 64"
grep -q "get" "$T/bad2.err" || fail "get=2 not named"
printf '1 r\nbanana\n' >"$T/bad.txt"
"$P" --mem=64M --workload=trace --workload-opt=file="$T/bad.txt" --trace=off >/dev/null 2>"$T/bad3.err"
rc=$?; [ $rc -eq 65 ] || fail "bad trace: exit $rc, want 65"
grep -q "bad.txt:2" "$T/bad3.err" || fail "bad trace line not named: $(cat "$T/bad3.err")"
"$P" --mem=64M --workload=scan+hot --vcpus=1 --trace=off >/dev/null 2>"$T/bad4.err"
rc=$?; [ $rc -eq 64 ] || fail "scan+hot with 1 vCPU: exit $rc, want 64"

finish
