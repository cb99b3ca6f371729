#!/usr/bin/env bash
# --policy=./path/x.so (docs/writing-a-policy.md): the example policy built
# by `make examples` (examples/ahead.c) runs live at the destination and at
# the source with every page verified, and in `pcbench simulate`; a policy
# object built against another ABI is refused with one line and exit 64, live
# and in the simulator.
. "$(dirname "$0")/../lib/integ.sh"
SO=./$BUILD/examples/ahead.so
BAD=./$BUILD/tests/bad_abi_policy.so
[ -f "$SO" ] && [ -f "$BAD" ] || die "$SO or $BAD not built (make integ builds them)"

for end in destination source; do
	pcb "live-$end" 120 run --policy="$SO" --policy-opt=ahead=32 --policy-end=$end --mem=64M --workload=seq \
		--duration=300ms --trace=off --json="$T/$end.json"
	if [ "$RC" != 0 ]; then
		show "live-$end"
		fail "$SO at the $end: exit $RC"
		continue
	fi
	$PCBJSON migration "$T/$end.json" || fail "$SO at the $end: result checks failed"
	read -r pol pend bg < <($PCBJSON get "$T/$end.json" config.policy results.policy.end results.pages.background | tr '\n' ' ')
	[ "$pol" = "$SO" ] && [ "$pend" = "$end" ] || fail "$SO at the $end: JSON says policy '$pol' at the '$pend'"
	[ "$bg" -gt 0 ] || fail "$SO at the $end: nothing came in the background"
	log "$SO at the $end: verified, $bg background pages"
done

# the simulator, from a trace of the same guest
pcb rec 120 run --policy=sequential --mem=16M --workload=seq --duration=200ms --trace=off --record="$T/seq.trc"
[ "$RC" = 0 ] || { show rec; die "recording a trace: exit $RC"; }
pcb sim 120 simulate --trace="$T/seq.trc" --policy="$SO" --policy-opt=ahead=16 --json="$T/sim.json"
if [ "$RC" = 0 ]; then
	read -r spol sbg < <($PCBJSON get "$T/sim.json" config.policy results.pages.background | tr '\n' ' ')
	[ "$spol" = "$SO" ] && [ "$sbg" -gt 0 ] || fail "simulate $SO: policy '$spol', $sbg background pages"
	log "simulate $SO: $sbg background pages"
else
	show sim
	fail "simulate $SO: exit $RC"
fi

# a stale ABI: one line naming the file and both ABI numbers, exit 64
for cmd in run simulate; do
	if [ $cmd = run ]; then
		pcb "bad-$cmd" 30 run --policy="$BAD" --mem=16M --duration=100ms
	else
		pcb "bad-$cmd" 30 simulate --trace="$T/seq.trc" --policy="$BAD"
	fi
	[ "$RC" = 64 ] || { show "bad-$cmd"; fail "$cmd with $BAD: exit $RC, want 64"; }
	[ "$(wc -l <"$T/bad-$cmd.err")" = 1 ] && grep -q "$BAD.*ABI .*this pcbench wants" "$T/bad-$cmd.err" ||
		{ show "bad-$cmd"; fail "$cmd with $BAD: not one line naming the file and the ABI"; }
done
finish
