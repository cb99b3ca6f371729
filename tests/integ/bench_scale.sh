#!/usr/bin/env bash
# bench/scale.sh (make bench-scale) at one small size, with no settling pause:
# its table, CSV and per-page breakdown agree with the pulls' JSON, and the
# bare first touch is measured before and after the pulls.
. "$(dirname "$0")/../lib/integ.sh"
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"
SCALE_SIZES=64M SCALE_SETTLE=0 bench/scale.sh "$T/s" "$PCBENCH" >"$T/out" 2>"$T/err" ||
	{ echo "FAIL: bench/scale.sh: $(tail -2 "$T/err")"; exit 1; }
[ -s "$T/err" ] && { echo "FAIL: bench/scale.sh complained: $(head -3 "$T/err")"; exit 1; }
$CHECK scale.bench "$T/s"
