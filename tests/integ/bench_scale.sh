#!/usr/bin/env bash
# bench/scale.sh (make bench-scale) at two small sizes, two sweeps, with no
# settling pause: its table, CSV, medians and per-page breakdown agree with
# the pulls' JSON, each row's floor is its own sweep's, the bare first touch
# is measured before and after the sweeps, and the table judges flatness and
# tests for a size effect from SCALE_FLAT_FROM (SciPy reached); with
# SCALE_MEMORY=warm (the default) every floor and pull follows a warm-up,
# with settled none, and the CSV and table say which; every pull runs with
# the default placement of its guest, or with SCALE_PIN's and
# SCALE_PIN_RUNNING's; a bad SCALE_MEMORY,
# SCALE_REPS or SCALE_FLAT_FROM exits 64 naming it.
. "$(dirname "$0")/../lib/integ.sh"
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"
SCALE_SIZES="32M 64M" SCALE_REPS=2 SCALE_FLAT_FROM=32M SCALE_SETTLE=0 bench/scale.sh "$T/s" "$PCBENCH" >"$T/out" 2>"$T/err" ||
	{ echo "FAIL: bench/scale.sh: $(tail -2 "$T/err")"; exit 1; }
[ -s "$T/err" ] && { echo "FAIL: bench/scale.sh complained: $(head -3 "$T/err")"; exit 1; }
$CHECK scale.bench "$T/s" warm 2 "32M 64M" || exit 1
SCALE_SIZES=64M SCALE_REPS=1 SCALE_SETTLE=0 SCALE_MEMORY=settled SCALE_PIN=none SCALE_PIN_RUNNING=split bench/scale.sh "$T/t" "$PCBENCH" >"$T/out2" 2>"$T/err2" ||
	{ echo "FAIL: bench/scale.sh (settled): $(tail -2 "$T/err2")"; exit 1; }
$CHECK scale.bench "$T/t" settled 1 64M none split || exit 1
SCALE_MEMORY=cold bench/scale.sh "$T/u" "$PCBENCH" >"$T/out3" 2>"$T/err3"
rc=$?
[ $rc = 64 ] && grep -q "SCALE_MEMORY 'cold'" "$T/err3" || { echo "FAIL: SCALE_MEMORY=cold: exit $rc, $(cat "$T/err3")"; exit 1; }
SCALE_REPS=0 bench/scale.sh "$T/v" "$PCBENCH" >"$T/out4" 2>"$T/err4"
rc=$?
[ $rc = 64 ] && grep -q "SCALE_REPS '0'" "$T/err4" || { echo "FAIL: SCALE_REPS=0: exit $rc, $(cat "$T/err4")"; exit 1; }
SCALE_FLAT_FROM=big bench/scale.sh "$T/w" "$PCBENCH" >"$T/out5" 2>"$T/err5"
rc=$?
[ $rc = 64 ] && grep -q "SCALE_FLAT_FROM 'big'" "$T/err5" || { echo "FAIL: SCALE_FLAT_FROM=big: exit $rc, $(cat "$T/err5")"; exit 1; }
echo PASS
