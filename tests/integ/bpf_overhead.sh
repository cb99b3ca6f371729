#!/usr/bin/env bash
# bpf/overhead.sh, small: the harness runs (one victim, tracers switched per
# chunk), every traced chunk sits between two untraced ones in the recorded
# order, the JSON holds one median per chunk and per mode the paired ratio
# with its quartiles and bootstrap interval, and the figures are sane (a
# same-CPU fault of 2-1000 us, ratios between 0.5 and 3).  Timing targets
# are not asserted here: they are measured with the full-size run (docs/results/).
. "$(dirname "$0")/../lib/integ.sh"
[ -x ./pctrace ] && [ -x "$BUILD/tests/helpers/uffd_victim" ] || die "build pctrace and $BUILD/tests/helpers/uffd_victim first"
[ "$(id -u)" = 0 ] || skip "pctrace needs root (BPF)"

BUILD=$BUILD bpf/overhead.sh -n 300 -r 3 --modes null --json "$T/oh.json" >"$T/oh.out" 2>&1
rc=$?
cat "$T/oh.out"
case $rc in
0) ;;
69|77) grep -q "BPF\|permitted\|userfaultfd" "$T/oh.out" && skip "BPF or userfaultfd unavailable: $(tail -1 "$T/oh.out")"
       die "overhead.sh exited $rc" ;;
*) die "overhead.sh exited $rc" ;;
esac
$CHECK bpf.overhead "$T/oh.json" || exit 1
# bad input: a mode that does not exist, a comparison build that is not there
bpf/overhead.sh --modes bogus >"$T/bad.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "bogus" "$T/bad.out" || die "--modes bogus: exit $rc, $(cat "$T/bad.out")"
bpf/overhead.sh --modes hist:/nonexistent/pctrace >"$T/bad2.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "/nonexistent/pctrace" "$T/bad2.out" || die "hist:/nonexistent: exit $rc, $(cat "$T/bad2.out")"
echo "ok   bad modes exit 64 naming the value"
echo PASS
