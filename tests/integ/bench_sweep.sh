#!/usr/bin/env bash
# The [sweep] of a job (analysis/sweep.py, as `make bench` runs it): each workload's trace is
# recorded with the live runs' options and replayed by `pcbench simulate` through every policy of
# the job (a [policy] variant with its own --channels / recorded --replay) over every swept link and
# the live links; a live link that is also a sweep point reuses that simulation; traces are deleted;
# analysis/plots.sh then draws figure 8 with the live medians overlaid and a findings sentence.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd_dev
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import scipy.stats' 2>/dev/null || die "python3-scipy is missing (make deps)"
command -v gnuplot >/dev/null || die "gnuplot is needed (make deps)"
cat >"$T/sw.conf" <<'CONF'
[experiment]
name      = sw
policies  = sequential, qemu-1ch, replay
workloads = phase
reps      = 2
mem       = 16M
duration  = 200ms
timeline  = none
workload-opt = phase-ms=50,hot=0.05,hot-access=1
[link fast]
link = 10gbit,100us
[policy qemu-1ch]
policy   = qemu
channels = 1
[policy replay]
record_seed = 2
[sweep]
links     = 1gbit,100us 10gbit,100us
workloads = phase:phase-ms=50,hot=0.05,hot-access=1 kv
CONF
dir=$("$PCBENCH" bench "$T/sw.conf" --results="$T/res" 2>"$T/bench.err") || die "bench failed: $(tail -3 "$T/bench.err")"
[ -s "$dir/traces/phase-seed2.trace" ] || fail "the replay variant's trace was not recorded"
grep -q -- "--replay=$dir/traces/phase-seed2.trace" "$dir/runs/replay-phase-fast-r1.log" || fail "replay run does not replay the recorded trace"
grep -q -- "--policy=qemu .*--channels=1" "$dir/runs/qemu-1ch-phase-fast-r1.log" || fail "variant options not passed"
"$py" analysis/sweep.py "$dir" >"$T/sweep.out" 2>&1 || die "sweep.py failed: $(tail -5 "$T/sweep.out")"
ls "$dir"/sweep/*.trace >/dev/null 2>&1 && fail "sweep traces were not deleted"
PYTHON=$py analysis/plots.sh "$dir" >"$T/plots.out" 2>&1 || die "plots.sh failed: $(tail -5 "$T/plots.out")"
"$py" tests/lib/check bench.sweep_output "$dir" || fail "sweep output (above)"
finish
