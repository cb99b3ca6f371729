#!/bin/bash
# How cost grows with the guest (make bench-scale): pull throughput, migration
# time and pager memory for each size in SCALE_SIZES, with an idle guest (one
# access, then the background pull alone) and a running one (2 vCPUs of random
# accesses for the whole migration), as a table (table.txt; scale.csv, one row
# per pull; medians.csv) and a figure (scale.png).  Every run is verified page
# by page (exit 0 required).
# The sizes are swept SCALE_REPS times (default 3), each sweep over every size
# in order, so that the host's drift falls on every size alike; the table gives
# each size's median over the sweeps with the pull's range, and tests whether
# the size changes the pull throughput at all (bench/scaletable.py).
# Each sweep measures beside each size's pulls the floor of that size: the
# copy path's installs alone into a fresh region of the same size (`pcbench
# floor --bulk-variants=install:copy`, no network); pull / floor says what the
# pager adds.  And the bare first touch of each size (bench/firsttouch.py: one
# write per 4 KiB page of a fresh MADV_NOHUGEPAGE mapping, no pager), once
# before and once after the sweeps.
# On a machine that reports freed memory to its host (free page reporting)
# memory freed a few seconds earlier is host-cold, and installing into it
# costs several times more (docs/metrics.md, "Scale"), so every floor and pull
# faces memory in one stated state (SCALE_MEMORY, the CSV's memory column):
#   warm (default)  right before the step, SIZE + 1 GiB populated and freed
#                   (bench/firsttouch.py --warm): the curve is pcbench's cost,
#                   as far as the host keeps that memory warm;
#   settled         SCALE_SETTLE s (default 8) after the previous step ended:
#                   as cold as this host makes memory in that time.
# The first-touch steps always start SCALE_SETTLE s after the previous one
# (the host's cost of cold memory).  The floor is the first placement of each
# floor run only (the second runs at once, on memory the first just freed).
# The guest region itself is never pre-faulted.
# Every pull runs with one stated thread placement (the CSV's pin column):
# idle pulls SCALE_PIN, by default the source on CPU 0, the pager's background
# receive and its installs on CPU 1 (on 2 CPUs, the median of three unpinned
# idle pulls of 1 GiB was 1.3x slower than of three pinned ones, and small
# unpinned pulls looked slower than large ones: the scheduler's placement,
# not the size); running pulls SCALE_PIN_RUNNING, by default none
# (the scheduler's: two vCPUs beside the source on one CPU made the running
# curve vary more, not less; docs/results/2026-12-06-scale-sweeps.md).
#
#   usage: bench/scale.sh OUTDIR [PCBENCH]
#   SCALE_SIZES (default "256M 1G 4G 16G"), SCALE_REPS (sweeps, default 3),
#   SCALE_FLAT_FROM (the smallest size the flatness and the size test judge,
#   default 1G),
#   SCALE_PIN (pcbench --pin of the idle pulls, default guest=0,demand=0,
#   source=0,background=1,install=1), SCALE_PIN_RUNNING (of the running pulls,
#   default none), SCALE_ARGS (extra pcbench options), SCALE_MEMORY (warm or settled),
#   SCALE_SETTLE (seconds, default 8), PYTHON (the interpreter with SciPy,
#   default Debian's /usr/bin/python3)
#
# Definitions (docs/metrics.md): pull throughput = guest bytes / migration time
# (switch-over to last page present); pager memory = the pager's RSS excluding
# the guest region, as a fraction of the guest.  Targets (issue 17): throughput
# flat within 10 % from 1 GiB to the largest size; pager memory <= 0.2 % of the
# guest at 16 GiB.  16 GiB needs ~17 GiB free: a size the machine cannot hold
# (MemAvailable < size + 1 GiB) is skipped and says so.
set -u
out=${1:?usage: bench/scale.sh OUTDIR [PCBENCH]}
P=${2:-./pcbench}
sizes=${SCALE_SIZES:-256M 1G 4G 16G}
reps=${SCALE_REPS:-3}
pin_idle=${SCALE_PIN:-guest=0,demand=0,source=0,background=1,install=1}
pin_running=${SCALE_PIN_RUNNING:-none}
settle=${SCALE_SETTLE:-8}
memory=${SCALE_MEMORY:-warm}
case $memory in warm|settled) ;; *) echo "scale: invalid SCALE_MEMORY '$memory' (want warm or settled)" >&2; exit 64 ;; esac
case $reps in ''|*[!0-9]*|0) echo "scale: invalid SCALE_REPS '$reps' (want a positive integer)" >&2; exit 64 ;; esac
numfmt --from=iec "${SCALE_FLAT_FROM:-1G}" >/dev/null 2>&1 || { echo "scale: invalid SCALE_FLAT_FROM '${SCALE_FLAT_FROM}' (want a size such as 1G)" >&2; exit 64; }
mkdir -p "$out" || exit 71
csv=$out/scale.csv
echo "size_bytes,guest,migration_ms,pull_gbps,pager_rss_bytes,pager_fraction,completed_while_guest_ran,install_us_per_page,installer_cpu_us_per_page,receive_cpu_us_per_page,source_cpu_us_per_page,exit,floor_gbps,touch_us_per_page,memory,rep,pin" >"$csv"
bytes() { numfmt --from=iec "$1"; }
here=$(dirname "$0")
py=${PYTHON:-/usr/bin/python3}
# can the machine hold size S (B bytes) now?  (says so when not)
fits() {
	local avail
	avail=$(( $(awk '/MemAvailable/ {print $2}' /proc/meminfo) * 1024 ))
	[ "$avail" -ge $(($2 + (1 << 30))) ] && return 0
	echo "scale: $1 skipped${3:+ in $3}: $((avail >> 20)) MiB available, needs $((($2 >> 20) + 1024)) MiB" | tee -a "$out/skipped.txt"
	return 1
}
# before a floor or a pull: memory in the state SCALE_MEMORY names (STEP names the record)
prepare() {
	if [ "$memory" = warm ]; then
		"$py" "$here/firsttouch.py" --warm $(($2 + (1 << 30))) >"$out/$1-warm.json" 2>"$out/$1-warm.err" ||
			echo "scale: $1 warm-up failed: $(tail -1 "$out/$1-warm.err")" >&2
	else
		sleep "$settle"
	fi
}
# the bare first touch of size S (B bytes), WHEN (before or after the sweeps)
first_touch() {
	sleep "$settle"
	"$py" "$here/firsttouch.py" "$2" >"$out/$1-touch-$3.json" 2>"$out/$1-touch-$3.err" ||
		echo "scale: $1 first touch ($3) failed: $(tail -1 "$out/$1-touch-$3.err")" >&2
}
# one sweep's floor and pulls of size S (B bytes), sweep REP
sweep_size() {
	local s=$1 b=$2 rep=$3 g wl j rc ms pin run_s=2 step=$1-r$3
	# the floor of this size: the copy path's installs alone into fresh memory
	prepare "$step-floor" "$b"
	"$P" floor --no-demand --no-link --no-kvm --bulk="$s" --bulk-reps=1 --bulk-variants=install:copy \
		--json "$out/$step-floor.json" >"$out/$step-floor.out" 2>&1 ||
		echo "scale: $s floor (sweep $rep) failed: $(tail -1 "$out/$step-floor.out")" >&2
	# the running guest runs for about as long as the idle pull took (or 2 s)
	for g in idle running; do
		if [ $g = idle ]; then
			wl="--workload=idle --vcpus=1 --duration=0 --ops=1" pin=$pin_idle
		else
			wl="--workload=random --vcpus=2 --duration=${run_s}s" pin=$pin_running
		fi
		j=$out/$step-$g.json
		prepare "$step-$g" "$b"
		# one source mode along the curve: --source-image=auto would hold 256M-4G in memory
		# and generate 16G (4x16 GiB exceeds what this machine has available)
		# shellcheck disable=SC2086
		"$P" run --mem="$s" --policy=sequential --batch=1024 --trace=off --source-image=generate --pin="$pin" $wl ${SCALE_ARGS:-} --json "$j" \
			>"$out/$step-$g.out" 2>"$out/$step-$g.err"
		rc=$?
		"$py" "$here/scaletable.py" row "$j" "$b" $g $rc "$rep" "$out/$step-floor.json" "$memory" "$pin" >>"$csv"
		if [ $g = idle ]; then
			ms=$(tail -1 "$csv" | cut -d, -f3)
			run_s=$(awk -v ms="${ms:-0}" 'BEGIN { s = int(ms / 1000 + 1); print s < 2 ? 2 : s }')
		fi
		[ $rc -eq 0 ] || echo "scale: $s $g (sweep $rep) exit $rc: $(tail -1 "$out/$step-$g.err")" >&2
	done
}
for s in $sizes; do
	b=$(bytes "$s")
	fits "$s" "$b" && first_touch "$s" "$b" before
done
for rep in $(seq "$reps"); do
	for s in $sizes; do
		b=$(bytes "$s")
		fits "$s" "$b" "sweep $rep" && sweep_size "$s" "$b" "$rep"
	done
done
for s in $sizes; do
	b=$(bytes "$s")
	fits "$s" "$b" && first_touch "$s" "$b" after
done
"$py" "$here/scaletable.py" finish "$out" "$(bytes "${SCALE_FLAT_FROM:-1G}")" >"$out/table.txt"
if [ "$memory" = warm ]; then
	echo "memory: warm (each floor and pull started right after SIZE + 1 GiB was populated and freed; first touch ${settle} s after the previous step)" >>"$out/table.txt"
else
	echo "memory: settled (every step started ${settle} s after the previous one ended)" >>"$out/table.txt"
fi
echo "placement: idle pulls --pin=$pin_idle, running pulls --pin=$pin_running (the floors: pcbench floor's same placement, CPU 0)" >>"$out/table.txt"
cat "$out/table.txt"
gnuplot -e "csv='$csv'; med='$out/medians.csv'; out='$out/scale.png'" - <<'GP' 2>"$out/gnuplot.err" || echo "scale: no figure ($(head -1 "$out/gnuplot.err"))"
set terminal pngcairo enhanced font 'Helvetica,9' size 1350,360
set output out
set datafile separator ","
set multiplot layout 1,3 title "pcbench: cost against guest size (sequential pull, 1024-page batches; lines: medians over the sweeps, dots: each sweep)"
set logscale x 2
set xlabel "guest memory (GiB)"
set key top left
set grid ytics lc rgb "#dddddd"
set ylabel "pull throughput (GB/s)"
set yrange [0:*]
idle = "< grep ',idle,' ".med
running = "< grep ',running,' ".med
idle_sweeps = "< grep ',idle,' ".csv
running_sweeps = "< grep ',running,' ".csv
plot idle using ($1/2**30):4 with linespoints lw 1.5 pt 7 lc rgb "#0072B2" title "idle guest", \
     idle_sweeps using ($1/2**30):4 with points pt 6 ps 0.6 lc rgb "#0072B2" notitle, \
     running using ($1/2**30):4 with linespoints lw 1.5 pt 5 lc rgb "#D55E00" title "running guest (2 vCPUs)", \
     running_sweeps using ($1/2**30):4 with points pt 4 ps 0.6 lc rgb "#D55E00" notitle, \
     idle using ($1/2**30):13 with linespoints lw 1 dt 2 pt 6 lc rgb "#555555" title "floor: copy installs alone, same size"
set ylabel "idle guest: time per 4 KiB page (us)"
plot idle using ($1/2**30):($3*1e3/($1/4096)) with linespoints lw 1.5 pt 7 lc rgb "#0072B2" title "pull (wall)", \
     idle using ($1/2**30):8 with linespoints lw 1 pt 4 lc rgb "#CC79A7" title "its install ioctls", \
     idle using ($1/2**30):10 with linespoints lw 1 pt 9 lc rgb "#009E73" title "receive CPU", \
     idle using ($1/2**30):11 with linespoints lw 1 pt 8 lc rgb "#E69F00" title "source CPU", \
     idle using ($1/2**30):14 with linespoints lw 1 dt 2 pt 6 lc rgb "#555555" title "bare first touch, same size"
set ylabel "pager RSS (% of the guest, log scale)"
set logscale y
set yrange [0.05:*]
plot idle using ($1/2**30):(100*$6) with linespoints lw 1.5 pt 7 lc rgb "#0072B2" title "idle guest", \
     running using ($1/2**30):(100*$6) with linespoints lw 1.5 pt 5 lc rgb "#D55E00" title "running guest", \
     0.2 with lines dt 2 lc rgb "#999999" title "target 0.2 %"
unset multiplot
GP
echo "scale: $out (table.txt, scale.csv, scale.png)"
