#!/usr/bin/env bash
# `pcbench floor`'s pull over an emulated link, for real: a loopback pull (no
# emulation), the delay line alone and two configured rates, each a whole
# pcbench migration with every page verified.  Asserted: the JSON rows exist
# in order with every page verified; the frame bytes counted are exactly the
# pages plus a 24-byte header per frame (the convention the link rate counts
# in); the frame size per rate is pcb_link_run_pages'; each rate's ratio to
# the configured link is > 0 and <= 1.1 (the token bucket never lets more
# through than configured -- a real check of the emulation, not a speed
# target); the ratios are consistent with the rates.  Bad --link-rates and
# --link-rtt values exit 64 naming the value; --no-link leaves the section out.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"

"$P" floor --no-demand --no-bulk --bulk=16M --bulk-reps=1 --link-rates=500mbit,1gbit --link-rtt=200us \
	--json "$T/fl.json" >"$T/fl.out" 2>"$T/fl.err"
rc=$?
[ $rc -eq 0 ] || fail "floor exit $rc: $(tail -3 "$T/fl.err")"
cat "$T/fl.out"
grep -q "^link target (median pull >= 0.9 x configured link" "$T/fl.out" || fail "no link verdict line"
grep -q "counts frame bytes" "$T/fl.out" || fail "the table does not state what the link rate counts"
$CHECK floor.link "$T/fl.json" || fail "floor link JSON"

for bad in "--link-rates=3foo" "--link-rates=1gbit,unlimited" "--link-rates=" "--link-rates=1gbit,,2gbit" \
	   "--link-rates=1gbit,2gbit,3gbit,4gbit,5gbit,6gbit,7gbit,8gbit,9gbit" "--link-rates=1mbit" \
	   "--link-rtt=soon" "--link-rtt=2s"; do
	out=$("$P" floor --no-demand --no-bulk $bad 2>&1); rc=$?
	[ $rc -eq 64 ] || fail "floor $bad: exit $rc, want 64"
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "floor $bad: not a one-line error: $out"
	printf '%s' "$out" | grep -qF -- "${bad%%=*}" || fail "floor $bad: message does not name the option: $out"
done
out=$("$P" floor --no-demand --no-bulk --link-rates=1gbit,3foo 2>&1)
printf '%s' "$out" | grep -qF "'3foo'" || fail "--link-rates error does not name the bad rate: $out"
out=$("$P" floor --no-demand --no-bulk --link-rates=1gbit,2gbit,3gbit,4gbit,5gbit,6gbit,7gbit,8gbit,9gbit 2>&1)
printf '%s' "$out" | grep -qF "more than 8 rates" || fail "9 rates: $out"
# 128 MiB at 1mbit would take 18 min per pull: refused, naming the rate; a small --bulk makes it fine
out=$("$P" floor --no-demand --no-bulk --link-rates=1mbit 2>&1)
printf '%s' "$out" | grep -qF "'1mbit'" || fail "1mbit with 128 MiB: $out"
"$P" floor --no-demand --no-bulk --no-link --link-rates=1mbit --json "$T/x.json" >/dev/null 2>&1 || fail "--no-link still checks the link rates' duration"

"$P" floor --faults=100 --rounds=1 --no-bulk --no-link --json "$T/nolink.json" >/dev/null 2>&1 || fail "floor --no-link failed"
$CHECK floor.no_link "$T/nolink.json" || fail "--no-link: link_bulk present"

finish
