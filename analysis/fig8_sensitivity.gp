# Figure 8 (sensitivity): blocktime against link bandwidth (top row, at the sweep's RTT) and RTT
# (bottom row, at the sweep's bandwidth) per policy, from `pcbench simulate` over one recorded
# trace per workload (analysis/sweep.py, no repetitions).  Overlaid: the live runs (filled
# circles: median, bar: bootstrap 95 % CI) and the simulator at the same live links (open
# circles), so a reader sees where the simulator agrees with the live system.  Log axes: the
# bandwidths and RTTs span decades and blocktime spans 0.1 ms to seconds (0 is drawn at 0.1 ms).
load "analysis/style.gp"
load datafile("sens.gp")
if (!have_sweep) {
	eval termcmd(5, 2)
	set output outfile("fig8_sensitivity")
	unset border; unset tics; unset grid; unset key
	set xrange [0:1]; set yrange [0:1]
	set label 1 "Figure 8 (sensitivity): the job has no [sweep] section" at graph 0.5, 0.6 center font ",11"
	set label 2 "add one (configs/README.md) and run analysis/sweep.py DIR" at graph 0.5, 0.4 center
	plot 2 notitle
	exit
}
scol(p) = colour_of(sens_pol[p], p)
eval termcmd(2.3 * sens_nwl + 1.6, 4.6)
set output outfile("fig8_sensitivity")
set multiplot layout 2, sens_nwl title "Blocktime vs link (lines: simulated; filled: live median + 95 % CI; open: simulated at the live link)" font ",9"
set logscale xy 10
set format y "%g"
set grid xtics ytics
set yrange [0.1:*]
set rmargin 1
do for [w = 1:sens_nwl] {
	set title sens_wl[w] noenhanced
	set xlabel sprintf("bandwidth (Gbit/s), RTT %g µs", sens_rtt)
	if (w == 1) { set ylabel "blocktime (ms)" } else { unset ylabel }
	unset key
	plot for [p = 1:sens_npol] datafile("sens_bw.dat") index ((w - 1) * sens_npol + p - 1) using 1:2 with linespoints lw 1.6 pt 7 ps 0.35 lc rgb scol(p) notitle, \
	     for [p = 1:sens_npol] datafile("sens_live.dat") index ((w - 1) * sens_npol + p - 1) using 1:2:3:4 with yerrorbars pt 7 ps 0.8 lc rgb scol(p) notitle, \
	     for [p = 1:sens_npol] datafile("sens_simlive.dat") index ((w - 1) * sens_npol + p - 1) using 1:2 with points pt 6 ps 1.1 lc rgb scol(p) notitle
}
do for [w = 1:sens_nwl] {
	set title sens_wl[w] noenhanced
	set xlabel sprintf("RTT (µs), %g Gbit/s", sens_bw)
	if (w == 1) { set ylabel "blocktime (ms)" } else { unset ylabel }
	# the legend lives in the last panel's right margin, never over the data
	if (w == sens_nwl) { set key outside right top vertical samplen 1.5 font ",7"; set rmargin 15 } else { unset key; set rmargin 1 }
	plot for [p = 1:sens_npol] datafile("sens_rtt.dat") index ((w - 1) * sens_npol + p - 1) using 1:2 with linespoints lw 1.6 pt 7 ps 0.35 lc rgb scol(p) title sens_pol[p]
}
unset multiplot
