# Figure 4: total migration time and total guest blocktime per policy x workload.
# Bars: median over repetitions; error bars: min-max.
load "analysis/style.gp"
eval termcmd(7, 2.6)
set output outfile("fig4_time_bars")
set multiplot layout 1, 2 title sprintf("Migration time and blocktime (log scale; bars: median of %d repetitions; error bars: min–max)", nrep) font ",9"
set boxwidth bar_width * 0.92 absolute
cap = bar_width * 0.18      # half width of the error bar caps
set xrange [-0.5:ncombo - 0.5]
eval "set xtics noenhanced ".combo_xtics
if (xtic_lines > 1) { set bmargin 4 }
set grid noxtics ytics
# log y: demand paging takes ~10x longer than any background pull; a linear axis would flatten
# the differences between the background policies
set logscale y 10
set yrange [*:*]
set format y "%g"
set mytics 10
set key top center horizontal maxrows 2
do for [m = 1:2] {
	f = (m == 1) ? "bars_migration_time_ms.dat" : "bars_blocktime_ms.dat"
	set ylabel (m == 1) ? "total migration time (ms)" : "total guest blocktime (ms)"
	set title (m == 1) ? "switch-over to last page present" : "time vCPUs were stalled on faults"
	plot for [p = 1:npol] datafile(f) index (p - 1) using 2:3 with boxes lc rgb polcolor(p) title pol[p], \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:4:(0):($5 - $4) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using ($2 - cap):4:(2 * cap):(0) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using ($2 - cap):5:(2 * cap):(0) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:5:(sprintf("%.0f", $3)) with labels offset 0, 0.55 font ",7" notitle
}
unset multiplot
