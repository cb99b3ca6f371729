#!/usr/bin/env bash
# Recovery: `pcbench source` is killed (SIGKILL) in the middle of a migration
# and restarted on the same image and port; the destination pauses, reconnects,
# asks again for what was in flight and completes with every page verified
# (zero corrupt, zero missing).  Then the same with no restart: the
# destination gives up after --reconnect-timeout with exit 74 and names the
# pages that never arrived.
. "$(dirname "$0")/../lib/integ.sh"
. tests/lib/net.sh

# --- kill and restart (background pull, 1 vCPU; demand only (its fast path), 2 vCPUs, with a
# reply thread and with demand lanes; the continue install path, where the receiver claims
# page-cache pages) ------------------------------------------------------------------------
kill_restart() {
local policy=$1 vcpus=$2 install=$3 extra=${4:-} tag=$1-$2-$3${5:+-$5} link=${KR_LINK-"--link=300mbit,200us"}
start_source src1-$tag "$P" source --listen=127.0.0.1:0 --mem=128M --seed=11
PORT=$SRC_PORT
"$P" dest --source=127.0.0.1:$PORT --policy=$policy --vcpus=$vcpus --install=$install $extra --workload=random --duration=2s \
	$link --reconnect-timeout=20s --io-timeout=1s --json "$T/rec-$tag.json" >"$T/dest-$tag.out" 2>&1 &
D=$!
sleep 1.0
kill -0 $D 2>/dev/null || fail "$tag: destination ended before the source was killed: $(tail -3 "$T/dest-$tag.out")"
kill -9 $SRC_PID; wait $SRC_PID 2>/dev/null
sleep 0.8
start_source src2-$tag "$P" source --listen=127.0.0.1:$PORT --mem=128M --seed=11
wait $D; rc=$?
cat "$T/dest-$tag.out"
[ $rc -eq 0 ] || fail "$tag: destination exit $rc after the source was restarted"
wait $SRC_PID; src_rc=$?
[ $src_rc -eq 0 ] || fail "$tag: restarted source exit $src_rc"
grep -q "connections resumed a migration" "$T/src2-$tag.out" || fail "$tag: the restarted source printed no summary"
$CHECK net.recovered "$T/rec-$tag.json" "$tag" || exit 1
}
kill_restart sequential 1 copy
kill_restart demand 2 copy --demand-replies=thread   # the reply thread hands the lost connection back
KR_LINK= kill_restart demand 2 copy --demand-replies=lanes lanes   # each lane reconnects and asks again (no link: one per lane)
kill_restart sequential 1 continue   # a run cut mid-receive gives its page-cache claims back
kill_restart sequential 1 move       # chunks half assembled when the source dies: pushed, the rest asked for again


# --- kill, no restart: give up after the timeout ---------------------------------------
start_source src3 "$P" source --listen=127.0.0.1:0 --mem=128M --seed=12
"$P" dest --source=127.0.0.1:$SRC_PORT --policy=demand --workload=random --duration=3s \
	--link=100mbit,1ms --reconnect-timeout=1500ms --io-timeout=500ms --json "$T/gone.json" >"$T/gone.out" 2>&1 &
D=$!
sleep 1.0
kill -9 $SRC_PID; wait $SRC_PID 2>/dev/null
t0=$(date +%s%N)
wait $D; rc=$?
el=$(( ($(date +%s%N) - t0) / 1000000 ))
cat "$T/gone.out"
[ $rc -eq 74 ] || fail "exit $rc when the source never came back (want 74)"
[ $el -lt 6000 ] || fail "took $el ms to give up with --reconnect-timeout=1500ms"
grep -q "not regained within --reconnect-timeout" "$T/gone.out" || fail "no reason given"
grep -qE "pages? never arrived: [0-9]" "$T/gone.out" || fail "the missing pages are not named"
$CHECK net.gave_up "$T/gone.json" || exit 1
echo "PASS"
