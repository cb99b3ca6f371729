#!/usr/bin/env bash
# Link emulation accuracy, end to end: for bandwidths up to 2 Gbit/s and RTTs
# from 50 µs to 5 ms the achieved figures the destination measures (bulk
# throughput of a PONG train, median header-only round trip after
# calibration) are within 5 % of the configured ones.  Also: a bad --link is
# refused with a one-line error naming the value, exit 64.
. "$(dirname "$0")/../lib/integ.sh"
. tests/lib/net.sh

"$P" --link=10gb,50us --duration=100ms >"$T/bad.out" 2>&1
rc=$?
[ $rc -eq 64 ] || fail "--link=10gb,50us: exit $rc (want 64)"
grep -q "'10gb'" "$T/bad.out" || fail "--link error does not name the value: $(cat "$T/bad.out")"
"$P" --link=1gbit,soon --duration=100ms >"$T/bad2.out" 2>&1
[ $? -eq 64 ] && grep -q "'soon'" "$T/bad2.out" || fail "--link=1gbit,soon not refused clearly: $(cat "$T/bad2.out")"

printf '%-10s %-7s %12s %12s %8s %12s %12s %8s\n' bandwidth rtt conf_Mbit ach_Mbit err conf_us ach_us err
bad=0; slow=0
for bw in 100mbit 1gbit 2gbit; do
	for rtt in 50us 500us 5ms; do
		# up to 3 attempts: on this 2-CPU machine other work can push the host's own round trip
		# above 50 µs for a while (the JSON's calibration.base_rtt_ns shows it)
		for attempt in 1 2 3; do
		"$P" --link=$bw,$rtt --mem=16M --duration=100ms --policy=demand --trace=off \
			--json "$T/l.json" >"$T/l.out" 2>&1 || fail "--link=$bw,$rtt: run failed: $(tail -2 "$T/l.out")"
		line=$($CHECK net.link_row "$T/l.json" "$bw" "$rtt")
		echo "$line (attempt $attempt)"
		case "$line" in *"OUT OF RANGE"*|*"HOST TOO SLOW"*) ;; *) break;; esac
		done
		case "$line" in
		*"OUT OF RANGE"*) bad=$((bad + 1)) ;;
		*"HOST TOO SLOW"*)
			# not emulatable on this host right now: pcbench must have warned, naming both figures
			grep -qE "exceeds the --link RTT|more than 5% off the --link" "$T/l.out" ||
				fail "--link=$bw,$rtt: host round trip above the link RTT but pcbench did not warn"
			slow=$((slow + 1)) ;;
		esac
	done
done
[ $bad -eq 0 ] || fail "$bad link settings outside 5 %"
[ $slow -eq 0 ] || echo "note: $slow setting(s) below this host's own round trip could not be emulated (pcbench warned)"
echo PASS
