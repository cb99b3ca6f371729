#!/bin/bash
# How cost grows with the guest (make bench-scale): pull throughput, migration
# time and pager memory for each size in SCALE_SIZES, with an idle guest (one
# access, then the background pull alone) and a running one (2 vCPUs of random
# accesses for the whole migration), as a table (table.txt, scale.csv) and a
# figure (scale.png).  Every run is verified page by page (exit 0 required).
# Beside each size's pulls, the floor of that size: the copy path's installs
# alone into a fresh region of the same size (`pcbench floor
# --bulk-variants=install:copy`, no network), once before and once after the
# pulls; pull / floor says what the pager adds.  And the bare first touch of
# that size (bench/firsttouch.py: one write per 4 KiB page of a fresh
# MADV_NOHUGEPAGE mapping, no pager), once before and once after the pulls.
# On a machine that reports freed memory to its host (free page reporting)
# memory freed a few seconds earlier is host-cold, and installing into it
# costs several times more (docs/metrics.md, "Scale"), so every floor and pull
# faces memory in one stated state (SCALE_MEMORY, the CSV's memory column):
#   warm (default)  right before the step, SIZE + 1 GiB populated and freed
#                   (bench/firsttouch.py --warm): the curve is pcbench's cost,
#                   not the host's;
#   settled         SCALE_SETTLE s (default 8) after the previous step ended:
#                   as cold as this host makes memory in that time.
# The first-touch steps always start SCALE_SETTLE s after the previous one
# (the host's cost of cold memory).  The floor is the first placement of each
# floor run only (the second runs at once, on memory the first just freed).
# The guest region itself is never pre-faulted.
#
#   usage: bench/scale.sh OUTDIR [PCBENCH]
#   SCALE_SIZES (default "256M 1G 4G 16G"), SCALE_ARGS (extra pcbench options),
#   SCALE_MEMORY (warm or settled), SCALE_SETTLE (seconds, default 8)
#
# Definitions (docs/metrics.md): pull throughput = guest bytes / migration time
# (switch-over to last page present); pager memory = the pager's RSS excluding
# the guest region, as a fraction of the guest.  Targets (issue 17): throughput
# flat within 10 % from 1 GiB to the largest size; pager memory <= 0.2 % of the
# guest at 16 GiB.  16 GiB needs ~13 GiB free: a size the machine cannot hold
# (MemAvailable < size + 1 GiB) is skipped and says so.
set -u
out=${1:?usage: bench/scale.sh OUTDIR [PCBENCH]}
P=${2:-./pcbench}
sizes=${SCALE_SIZES:-256M 1G 4G 16G}
mkdir -p "$out" || exit 71
csv=$out/scale.csv
echo "size_bytes,guest,migration_ms,pull_gbps,pager_rss_bytes,pager_fraction,completed_while_guest_ran,install_us_per_page,installer_cpu_us_per_page,receive_cpu_us_per_page,source_cpu_us_per_page,exit,floor_gbps,touch_us_per_page,memory" >"$csv"
bytes() { numfmt --from=iec "$1"; }
settle=${SCALE_SETTLE:-8}
memory=${SCALE_MEMORY:-warm}
case $memory in warm|settled) ;; *) echo "scale: invalid SCALE_MEMORY '$memory' (want warm or settled)" >&2; exit 64 ;; esac
here=$(dirname "$0")
# before a floor or a pull: memory in the state SCALE_MEMORY names (STEP names the record)
prepare() {
	if [ "$memory" = warm ]; then
		python3 "$here/firsttouch.py" --warm $(($2 + (1 << 30))) >"$out/$1-warm.json" 2>"$out/$1-warm.err" ||
			echo "scale: $1 warm-up failed: $(tail -1 "$out/$1-warm.err")" >&2
	else
		sleep "$settle"
	fi
}
for s in $sizes; do
	b=$(bytes "$s")
	avail=$(( $(awk '/MemAvailable/ {print $2}' /proc/meminfo) * 1024 ))
	if [ "$avail" -lt $((b + (1 << 30))) ]; then
		echo "scale: $s skipped: $((avail >> 20)) MiB available, needs $(((b >> 20) + 1024)) MiB" | tee -a "$out/skipped.txt"
		continue
	fi
	# the bare first touch of this size, before the pulls
	sleep "$settle"
	python3 "$here/firsttouch.py" "$b" >"$out/$s-touch-before.json" 2>"$out/$s-touch-before.err" ||
		echo "scale: $s first touch (before) failed: $(tail -1 "$out/$s-touch-before.err")" >&2
	# the floor of this size (the copy path's installs alone into fresh memory), before the pulls
	prepare "$s-floor-before" "$b"
	# shellcheck disable=SC2086
	"$P" floor --no-demand --no-link --no-kvm --bulk="$s" --bulk-reps=1 --bulk-variants=install:copy \
		--json "$out/$s-floor-before.json" >"$out/$s-floor-before.out" 2>&1 ||
		echo "scale: $s floor (before) failed: $(tail -1 "$out/$s-floor-before.out")" >&2
	# the running guest runs for about as long as the idle pull took (or 2 s)
	run_s=2
	for g in idle running; do
		if [ $g = idle ]; then
			wl="--workload=idle --vcpus=1 --duration=0 --ops=1"
		else
			wl="--workload=random --vcpus=2 --duration=${run_s}s"
		fi
		j=$out/$s-$g.json
		prepare "$s-$g" "$b"
		# one source mode along the curve: --source-image=auto would hold 256M-4G in memory
		# and generate 16G (4x16 GiB exceeds what this machine has available)
		# shellcheck disable=SC2086
		"$P" run --mem="$s" --policy=sequential --batch=1024 --trace=off --source-image=generate $wl ${SCALE_ARGS:-} --json "$j" \
			>"$out/$s-$g.out" 2>"$out/$s-$g.err"
		rc=$?
		python3 - "$j" "$b" "$g" "$rc" >>"$csv" <<'PY'
import json, sys
f, b, g, rc = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
try:
    r = json.load(open(f))["results"]
except (OSError, ValueError, KeyError):
    print("%d,%s,,,,,,,,,,%d" % (b, g, rc)); sys.exit(0)
mig = r["time"]["total_migration_ns"]; m = r["pager"]["memory"]; ib = r["pager"]["install"]["background"]; c = r["cpu"]
bp = ib["pages"] or 1   # per background page: the installer's ioctl wall time and CPU, the receiver's CPU; the source's per guest page
print("%d,%s,%.1f,%.4f,%d,%.6f,%s,%.3f,%.3f,%.3f,%.3f,%d" % (b, g, mig / 1e6, b / mig if mig else 0, m["pager_rss_excluding_guest"],
      m["pager_rss_fraction_of_guest"], str(r["time"]["completed_while_guest_ran"]).lower(), ib["install_ns"] / bp / 1e3,
      (c["installer_ns"] or 0) / bp / 1e3, (c["background_ns"] or 0) / bp / 1e3, (c["source_process_ns"] or 0) / (b / 4096) / 1e3, rc))
PY
		if [ $g = idle ]; then
			ms=$(tail -1 "$csv" | cut -d, -f3)
			run_s=$(awk -v ms="${ms:-0}" 'BEGIN { s = int(ms / 1000 + 1); print s < 2 ? 2 : s }')
		fi
		[ $rc -eq 0 ] || echo "scale: $s $g exit $rc: $(tail -1 "$out/$s-$g.err")" >&2
	done
	prepare "$s-floor-after" "$b"
	"$P" floor --no-demand --no-link --no-kvm --bulk="$s" --bulk-reps=1 --bulk-variants=install:copy \
		--json "$out/$s-floor-after.json" >"$out/$s-floor-after.out" 2>&1 ||
		echo "scale: $s floor (after) failed: $(tail -1 "$out/$s-floor-after.out")" >&2
	sleep "$settle"
	python3 "$here/firsttouch.py" "$b" >"$out/$s-touch-after.json" 2>"$out/$s-touch-after.err" ||
		echo "scale: $s first touch (after) failed: $(tail -1 "$out/$s-touch-after.err")" >&2
	# floor = mean of the first install-only row before and after (placement same, CPU 0; the one SCALE_MEMORY prepared for);
	# first touch = the mean of the two bare first touches
	python3 - "$csv" "$b" "$out/$s-floor-before.json" "$out/$s-floor-after.json" "$out/$s-touch-before.json" "$out/$s-touch-after.json" "$memory" <<'PY'
import json, statistics, sys
csv, b = sys.argv[1], sys.argv[2]
g, t = [], []
for f in sys.argv[3:5]:
    try:
        g += [x["gb_per_s"] for x in json.load(open(f))["results"]["bulk"] if x["variant"] == "install"][:1]
    except (OSError, ValueError, KeyError):
        pass
for f in sys.argv[5:7]:
    try:
        t.append(json.load(open(f))["first_touch_us_per_page"])
    except (OSError, ValueError, KeyError):
        pass
fl = "%.4f" % statistics.median(g) if g else ""
ft = "%.3f" % statistics.mean(t) if t else ""
lines = open(csv).read().splitlines()
out = [l + "," + fl + "," + ft + "," + sys.argv[7] if l.split(",")[0] == b and l.count(",") == 11 else l for l in lines]
open(csv, "w").write("\n".join(out) + "\n")
PY
done
python3 - "$csv" >"$out/table.txt" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]))]
hdr = ("size", "guest", "migration ms", "pull GB/s", "floor GB/s", "pull/floor", "pager RSS MiB", "% of guest", "exit")
fmt = "%-6s %-8s %12s %9s %10s %10s %13s %10s %s"
print(fmt % hdr)
def name(r):
    sz = int(r["size_bytes"])
    return "%dG" % (sz >> 30) if sz >= 1 << 30 else "%dM" % (sz >> 20)
def num(r, k):
    return float(r[k]) if r.get(k) else None
def f(x, spec="%.3f"):
    return spec % x if x is not None else "-"
done = [r for r in rows if r["migration_ms"]]
for r in rows:
    if not r["migration_ms"]:
        print(fmt % ((name(r), r["guest"]) + ("-",) * 6 + (r["exit"],))); continue
    fl = num(r, "floor_gbps")
    print(fmt % (name(r), r["guest"], "%.1f" % float(r["migration_ms"]), "%.3f" % float(r["pull_gbps"]), f(fl),
                 f(float(r["pull_gbps"]) / fl if fl else None), "%.2f" % (int(r["pager_rss_bytes"]) / 2**20),
                 "%.3f" % (100 * float(r["pager_fraction"])), r["exit"]))
# where a page's time goes, per 4 KiB page (us)
for r in done:
    r["pull_us"] = float(r["migration_ms"]) * 1e3 / (int(r["size_bytes"]) / 4096)
cols = (("pull_us", "pull wall"), ("install_us_per_page", "install ioctls"), ("installer_cpu_us_per_page", "installer CPU"),
        ("receive_cpu_us_per_page", "receive CPU"), ("source_cpu_us_per_page", "source CPU"), ("touch_us_per_page", "bare 1st touch"))
print()
print("per 4 KiB page (us): pull wall = migration time / pages; install ioctls = the installer's install ioctl time (the kernel "
      "allocating each fresh page, the host's first touch of it, the copy) and installer/receive CPU per background page "
      "(installer 0 when the installs ran inline, results.pager.install.installer: receive CPU then includes them); "
      "source CPU per guest page; bare 1st touch = one write per page of fresh memory of that size, no pager, before and "
      "after the pulls (bench/firsttouch.py)")
print("%-6s %-8s" % ("size", "guest") + "".join(" %15s" % c[1] for c in cols))
for r in done:
    print("%-6s %-8s" % (name(r), r["guest"]) + "".join(" %15s" % f(num(r, c[0]) if c[0] != "pull_us" else r["pull_us"]) for c in cols))
print()
for g in ("idle", "running"):
    ok = [r for r in done if r["guest"] == g and int(r["size_bytes"]) >= 1 << 30]
    if len(ok) < 2:
        continue
    t = [float(r["pull_gbps"]) for r in ok]
    print("%s: pull throughput from 1 GiB to %s: min/max %.3f (target >= 0.9: flat within 10 %%)" %
          (g, name(ok[-1]), min(t) / max(t)))
    for k, what in cols:
        v = [r["pull_us"] if k == "pull_us" else num(r, k) for r in ok]
        if None not in v and min(v) > 0:
            print("%s: %s per page from 1 GiB to %s: %s us (min/max %.3f)" % (g, what, name(ok[-1]), " ".join("%.3f" % x for x in v), min(v) / max(v)))
    q = [float(r["pull_gbps"]) / float(r["floor_gbps"]) for r in ok if r.get("floor_gbps")]
    if len(q) == len(ok):
        print("%s: pull / floor of the same size from 1 GiB to %s: min/max %.3f" % (g, name(ok[-1]), min(q) / max(q)))
big = [r for r in rows if int(r["size_bytes"]) >= 16 << 30 and r["migration_ms"]]
for r in big:
    print("%s at 16 GiB: pager memory %.3f %% of the guest (target <= 0.2 %%)" % (r["guest"], 100 * float(r["pager_fraction"])))
PY
if [ "$memory" = warm ]; then
	echo "memory: warm (each floor and pull started right after SIZE + 1 GiB was populated and freed; first touch ${settle} s after the previous step)" >>"$out/table.txt"
else
	echo "memory: settled (every step started ${settle} s after the previous one ended)" >>"$out/table.txt"
fi
cat "$out/table.txt"
gnuplot -e "csv='$csv'; out='$out/scale.png'" - <<'GP' 2>"$out/gnuplot.err" || echo "scale: no figure ($(head -1 "$out/gnuplot.err"))"
set terminal pngcairo enhanced font 'Helvetica,9' size 1350,360
set output out
set datafile separator ","
set multiplot layout 1,3 title "pcbench: cost against guest size (sequential pull, 1024-page batches)"
set logscale x 2
set xlabel "guest memory (GiB)"
set key top left
set grid ytics lc rgb "#dddddd"
set ylabel "pull throughput (GB/s)"
set yrange [0:*]
idle = "< grep ',idle,' ".csv
running = "< grep ',running,' ".csv
plot idle using ($1/2**30):4 with linespoints lw 1.5 pt 7 lc rgb "#0072B2" title "idle guest", \
     running using ($1/2**30):4 with linespoints lw 1.5 pt 5 lc rgb "#D55E00" title "running guest (2 vCPUs)", \
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
