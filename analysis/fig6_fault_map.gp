# Figure 6: fault map of one run per policy: every fault and every page pulled in the
# background or drained, over (time after switch-over, guest address).  The repetition with
# the median migration time.  What a policy predicted shows as background pulls ahead of the
# guest; what it missed shows as faults.
load "analysis/style.gp"
eval termcmd(2.6 * gridcols(npol) + 0.3, 2.4 * gridrows(npol) + 0.3)
set output outfile("fig6_fault_map")
set multiplot layout gridrows(npol), gridcols(npol) title sprintf("Fault map, workload %s\n ", map_combo) font ",9"
set xlabel "time after switch-over (ms)"
set yrange [0:map_ymax]
set xrange [0:*]
unset key
# one legend for the whole figure, on the second title line (the panels are full of data)
set label 101 "●" at screen 0.5, screen 1 offset char -22, char -2.1 left tc rgb "#D55E00" front
set label 102 "fault" at screen 0.5, screen 1 offset char -21, char -2.1 left front
set label 103 "●" at screen 0.5, screen 1 offset char -15, char -2.1 left tc rgb "#56B4E9" front
set label 104 "background pull" at screen 0.5, screen 1 offset char -14, char -2.1 left front
set label 105 "●" at screen 0.5, screen 1 offset char 0, char -2.1 left tc rgb "#999999" front
set label 106 "drain (after the guest stopped)" at screen 0.5, screen 1 offset char 1, char -2.1 left front
do for [p = 1:npol] {
	set title map_title[p] noenhanced
	if (p % gridcols(npol) == 1 || gridcols(npol) == 1) { set ylabel "guest address (MiB)" } else { unset ylabel }
	if (map_ok[p]) {
		plot datafile("faultmap.dat") index (3 * (p - 1)) using 1:2 with points pt 7 ps 0.08 lc rgb "#56B4E9" notitle, \
		     "" index (3 * (p - 1) + 1) using 1:2 with points pt 7 ps 0.08 lc rgb "#999999" notitle, \
		     "" index (3 * (p - 1) + 2) using 1:2 with points pt 7 ps 0.18 lc rgb "#D55E00" notitle
	} else {
		set xrange [0:1]
		plot 1/0 notitle
		set xrange [0:*]
	}
	do for [i = 101:106] { unset label i }   # drawn once, with the first panel
}
unset multiplot
