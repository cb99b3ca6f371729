# Figure 6: fault map of one run per policy: every fault and every page pulled in the
# background or drained, over (time after switch-over, guest address).  The repetition with
# the median migration time.  What a policy predicted shows as background pulls ahead of the
# guest; what it missed shows as faults.
load "analysis/style.gp"
eval termcmd(2.6 * gridcols(npol) + 0.3, 2.4 * gridrows(npol) + 0.3)
set output outfile("fig6_fault_map")
set multiplot layout gridrows(npol), gridcols(npol) title sprintf("Fault map, workload %s", map_combo) font ",9"
set xlabel "time after switch-over (ms)"
set yrange [0:map_ymax]
set xrange [0:*]
set key top right opaque box lc rgb "#bbbbbb" samplen 1
do for [p = 1:npol] {
	set title map_title[p]
	if (p % gridcols(npol) == 1 || gridcols(npol) == 1) { set ylabel "guest address (MiB)" } else { unset ylabel }
	if (map_ok[p]) {
		plot datafile("faultmap.dat") index (3 * (p - 1)) using 1:2 with points pt 7 ps 0.08 lc rgb "#56B4E9" title "background pull", \
		     "" index (3 * (p - 1) + 1) using 1:2 with points pt 7 ps 0.08 lc rgb "#AAAAAA" title "drain", \
		     "" index (3 * (p - 1) + 2) using 1:2 with points pt 7 ps 0.18 lc rgb "#D55E00" title "fault"
	} else {
		set xrange [0:1]
		plot 1/0 notitle
		set xrange [0:*]
	}
}
unset multiplot
