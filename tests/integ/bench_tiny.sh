#!/usr/bin/env bash
# pcbench bench end to end on the real kernel: a tiny experiment (2 policies x 1 workload x
# 2 reps, 32 MiB) must leave a JSON per run (every page verified), a tidy CSV with exactly
# the expected rows and values equal to the JSON, a summary with merged percentiles, and six
# figures (and the headline) as valid PDF and PNG.  Then: a resumed experiment re-runs nothing; a deleted run is
# re-run alone; an interrupted experiment (SIGINT) exits 130 and resumes where it stopped;
# a bad job file is refused naming file, line and key.
. "$(dirname "$0")/../lib/integ.sh"
command -v gnuplot >/dev/null || die "gnuplot is needed (make deps)"
need_uffd_dev

job_file "$T/tiny.conf" name=tiny "policies=demand, sequential" workloads=random reps=2 mem=32M duration=300ms \
	-- "link loopback"

dir=$(./pcbench bench "$T/tiny.conf" --results="$T/res" 2>"$T/bench.err")
rc=$?
[ $rc = 0 ] || { cat "$T/bench.err"; die "pcbench bench exited $rc"; }
[ -d "$dir" ] || die "bench printed '$dir', not a directory"
case "$(basename "$dir")" in tiny-20[0-9][0-9][0-1][0-9][0-3][0-9]T*Z-*) ;; *) die "directory name '$dir' is not <name>-<date>-<gitrev>";; esac
[ -L "$T/res/tiny-latest" ] || die "no tiny-latest link"
grep -q "4 runs, 4 to do" "$T/bench.err" || die "progress does not announce 4 runs: $(head -1 "$T/bench.err")"
[ "$(grep -c '^bench: \[[1-4]/4\] .* ok (' "$T/bench.err")" = 4 ] || { cat "$T/bench.err"; die "expected 4 plain progress lines (stderr is not a terminal)"; }
grep -q 'ETA' "$T/bench.err" || die "progress lines lack an ETA"
for f in job.conf system.json manifest.json COMPLETE results.csv summary.csv; do
	[ -e "$dir/$f" ] || die "missing $dir/$f"
done
cmp -s "$T/tiny.conf" "$dir/job.conf" || die "job.conf is not a copy of the job file"

# make plots RESULTS=dir draws the figures from the directory alone
# (in the build under test: `make plots` refreshes ./pcbench from its build, and a plain
# one here would leave the rest of an ASan pass testing the plain binary)
san=SANITIZE=0; [ "$BUILD" = build-san ] && san=SANITIZE=1
make --no-print-directory plots $san RESULTS="$dir" >"$T/plots.out" 2>&1 || { cat "$T/plots.out"; die "make plots failed"; }
cmp -s ./pcbench "$BUILD/pcbench" || die "make plots left ./pcbench different from $BUILD/pcbench"
for f in summary.md summary.tex stats.csv; do [ -s "$dir/$f" ] || die "make plots wrote no $dir/$f"; done

$CHECK bench.tiny "$dir" || exit 1

# resume: nothing to re-run
stamp=$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")
dir2=$(./pcbench bench "$T/tiny.conf" --out="$dir" 2>"$T/bench2.err") || { cat "$T/bench2.err"; die "resume exited $?"; }
grep -q "4 runs, 0 to do" "$T/bench2.err" || { cat "$T/bench2.err"; die "resume of a complete experiment re-ran runs"; }
[ "$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")" = "$stamp" ] || die "a completed run's JSON was rewritten"
# a lost run is re-run alone
rm "$dir/runs/sequential-random-loopback-r2.json"
./pcbench bench "$T/tiny.conf" --out="$dir" >/dev/null 2>"$T/bench3.err" || { cat "$T/bench3.err"; die "re-run exited $?"; }
grep -q "4 runs, 1 to do" "$T/bench3.err" || { cat "$T/bench3.err"; die "expected exactly one run to redo"; }
[ -s "$dir/runs/sequential-random-loopback-r2.json" ] || die "the lost run was not re-run"
[ "$(stat -c %Y.%y "$dir/runs/demand-random-loopback-r1.json")" = "$stamp" ] || die "an unaffected run was re-run"

# interruption: SIGINT after the first run; exit 130; the same command resumes the rest
sed 's/^reps .*/reps = 3/; s/^name .*/name = intr/' "$T/tiny.conf" >"$T/intr.conf"
./pcbench bench "$T/intr.conf" --results="$T/res" >/dev/null 2>"$T/intr.err" &
pid=$!
for _ in $(seq 100); do grep -q '\[1/6\].* ok' "$T/intr.err" && break; sleep 0.1; done
kill -INT $pid
wait $pid; rc=$?
[ $rc = 130 ] || { cat "$T/intr.err"; die "interrupted bench exited $rc, expected 130"; }
grep -q "interrupted; run the same command again to resume" "$T/intr.err" || die "no resume hint after interruption"
idir=$(readlink -f "$T/res/intr-latest")
done_before=$(ls "$idir"/runs/*.json 2>/dev/null | grep -vc failed)
[ "$done_before" -ge 1 ] && [ "$done_before" -lt 6 ] || die "after interruption $done_before runs are done (want 1..5)"
[ ! -e "$idir/COMPLETE" ] || die "an interrupted experiment is marked complete"
./pcbench bench "$T/intr.conf" --results="$T/res" >"$T/intr2.out" 2>"$T/intr2.err" || { cat "$T/intr2.err"; die "resume after interruption failed"; }
grep -q "6 runs, $((6 - done_before)) to do (resuming" "$T/intr2.err" || { cat "$T/intr2.err"; die "resume did not pick up the interrupted directory"; }
[ "$(cat "$T/intr2.out")" = "$idir" ] || die "resume wrote to $(cat "$T/intr2.out"), not $idir"
[ -e "$idir/COMPLETE" ] || die "resumed experiment not complete"

# a bad job file: exit 65, one line naming file, line and key
printf '[experiment]\npolicies = demand\nworkloads = random\nmem = lots\n' >"$T/bad.conf"
./pcbench bench "$T/bad.conf" --results="$T/res" >/dev/null 2>"$T/bad.err"; rc=$?
[ $rc = 65 ] || die "bad job file: exit $rc, expected 65"
grep -q "$T/bad.conf:4: key 'mem': invalid value for --mem: 'lots'" "$T/bad.err" || die "bad job message: $(cat "$T/bad.err")"
[ "$(wc -l <"$T/bad.err")" = 1 ] || die "bad job message is not one line"
./pcbench bench "$T/missing.conf" 2>/dev/null; [ $? = 64 ] || die "missing job file should exit 64"
./pcbench analyze "$T" 2>"$T/an.err"; [ $? = 65 ] || die "analyze of a non-results directory should exit 65"
echo "PASS: bench_tiny"
