#!/usr/bin/env bash
# bpf/overhead.sh, small: the harness runs (one victim, tracers switched per
# chunk), every traced chunk sits between two untraced ones in the recorded
# order, the JSON holds one median per chunk and per mode the paired ratio
# with its quartiles and bootstrap interval, and the figures are sane (a
# same-CPU fault of 2-1000 us, ratios between 0.5 and 3).  Timing targets
# are not asserted here: they are measured with the full-size run (docs/results/).
. "$(dirname "$0")/../lib/integ.sh"
BUILD=${BUILD:-build}
[ -x ./pctrace ] && [ -x "$BUILD/tests/helpers/uffd_victim" ] || die "build pctrace and $BUILD/tests/helpers/uffd_victim first"
command -v python3 >/dev/null || skip "python3 is needed"
[ "$(id -u)" = 0 ] || skip "pctrace needs root (BPF)"
tmp=$T

BUILD=$BUILD bpf/overhead.sh -n 300 -r 3 --modes null --json "$tmp/oh.json" >"$tmp/oh.out" 2>&1
rc=$?
cat "$tmp/oh.out"
case $rc in
0) ;;
69|77) grep -q "BPF\|permitted\|userfaultfd" "$tmp/oh.out" && skip "BPF or userfaultfd unavailable: $(tail -1 "$tmp/oh.out")"
       die "overhead.sh exited $rc" ;;
*) die "overhead.sh exited $rc" ;;
esac
python3 - "$tmp/oh.json" <<'EOF' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
order, vals, m = d["order"], d["chunk_medians_ns"], d["modes"]
modes = ["hist", "events", "null"]
assert d["rounds"] == 3 and d["pages_per_chunk"] == 300 and d["git_revision"], d
assert len(order) == len(vals) == 1 + 3 * 3 * 2 + 1, (len(order), len(vals))
assert order[0] == "off" and order[-1] == "off"
for k, mode in enumerate(order):
    if mode != "off":
        assert order[k - 1] == "off" and order[k + 1] == "off", f"chunk {k} ({mode}) not between untraced ones"
assert sorted(set(order)) == sorted(modes + ["off"]), order
assert all(2000 <= v <= 1000000 for v in vals), vals
for mode in modes:
    r = m[mode]
    assert len(r["chunks_ns"]) == 3, r
    assert 0.5 < r["paired_ratio_median"] < 3 and r["paired_ratio_p25"] <= r["paired_ratio_median"] <= r["paired_ratio_p75"], r
    lo, hi = r["paired_ratio_ci95"]
    assert lo <= r["paired_ratio_median"] <= hi, r
print("ok   overhead.sh: %d chunks, each traced one between untraced ones; paired hist %.3f, events %.3f, null %.3f"
      % (len(vals), m["hist"]["paired_ratio_median"], m["events"]["paired_ratio_median"], m["null"]["paired_ratio_median"]))
EOF
# bad input: a mode that does not exist, a comparison build that is not there
bpf/overhead.sh --modes bogus >"$tmp/bad.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "bogus" "$tmp/bad.out" || die "--modes bogus: exit $rc, $(cat "$tmp/bad.out")"
bpf/overhead.sh --modes hist:/nonexistent/pctrace >"$tmp/bad2.out" 2>&1; rc=$?
[ $rc = 64 ] && grep -q "/nonexistent/pctrace" "$tmp/bad2.out" || die "hist:/nonexistent: exit $rc, $(cat "$tmp/bad2.out")"
echo "ok   bad modes exit 64 naming the value"
echo PASS
