#!/usr/bin/env bash
# analysis/stats.py (SciPy) on synthetic tidy data, no runs: Holm's adjustment matches a worked
# example; ranges that do not overlap with 3 repetitions are NOT called a win (the old min-max rule
# would have), a clear difference with 8 repetitions is, with its p and CI; medians sit inside their
# bootstrap CIs; guest work relative to the local baseline; findings and the power estimate are
# generated; the same data give the same file (fixed bootstrap seed).
. "$(dirname "$0")/../lib/integ.sh"
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import scipy.stats' 2>/dev/null || die "python3-scipy is missing (make deps)"
"$py" tests/lib/check bench.write_stats_fixture "$T" || exit 1
"$py" analysis/stats.py "$T" >/dev/null || die "stats.py failed"
cp "$T/summary.md" "$T/first.md"
"$py" analysis/stats.py "$T" >/dev/null && cmp -s "$T/summary.md" "$T/first.md" || die "two runs on the same data differ"
"$py" tests/lib/check bench.stats_tables "$T" || exit 1
echo "PASS: bench_stats"
