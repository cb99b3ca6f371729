# Figure 4: total migration time and total guest blocktime per policy x workload.
# Bars: median over repetitions; error bars: min-max.
load "analysis/style.gp"
eval termcmd(7, 2.6)
set output outfile("fig4_time_bars")
set multiplot layout 1, 2 title sprintf("Migration time and blocktime (bars: median of %d repetitions; error bars: min–max)", nrep) font ",9"
set boxwidth bar_width * 0.92 absolute
set xrange [-0.5:ncombo - 0.5]
eval "set xtics ".combo_xtics
set grid noxtics ytics
set yrange [0:*]
set key top left
set offsets 0, 0, graph 0.12, 0
do for [m = 1:2] {
	f = (m == 1) ? "bars_migration_time_ms.dat" : "bars_blocktime_ms.dat"
	set ylabel (m == 1) ? "total migration time (ms)" : "total guest blocktime (ms)"
	set title (m == 1) ? "switch-over to last page present" : "time vCPUs were stalled on faults"
	plot for [p = 1:npol] datafile(f) index (p - 1) using 2:3 with boxes lc rgb polcolor(p) title pol[p], \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:3:4:5 with yerrorbars lc rgb "#222222" pt 7 ps 0 lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:5:(sprintf("%.0f", $3)) with labels offset 0, 0.55 font ",7" notitle
}
unset multiplot
