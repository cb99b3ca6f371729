# Figure 5: prefetch hit rate (touched pages found already pulled) and accuracy (background
# pages the guest then touched) per policy x workload.  Bars: median; error bars: min-max.
load "analysis/style.gp"
eval termcmd(7, 2.6)
set output outfile("fig5_prefetch")
set multiplot layout 1, 2 title sprintf("Prefetch quality (bars: median of %d repetitions; error bars: min–max; n/a: no background pull)", nrep) font ",9"
set boxwidth bar_width * 0.92 absolute
cap = bar_width * 0.18      # half width of the error bar caps
set xrange [-0.5:ncombo - 0.5]
eval "set xtics noenhanced ".combo_xtics
if (xtic_lines > 1) { set bmargin 4 }
set grid noxtics ytics
set yrange [0:119]
set ytics 0, 20, 100
set key top left horizontal
do for [m = 1:2] {
	f = (m == 1) ? "bars_hit_rate_pct.dat" : "bars_accuracy_pct.dat"
	set ylabel (m == 1) ? "hit rate (% of touched pages)" : "accuracy (% of background pages)"
	set title (m == 1) ? "first touch found the page present" : "background pages the guest used"
	plot for [p = 1:npol] datafile(f) index (p - 1) using 2:3 with boxes lc rgb polcolor(p) title pol[p], \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:4:(0):($5 - $4) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using ($2 - cap):4:(2 * cap):(0) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using ($2 - cap):5:(2 * cap):(0) with vectors nohead lc rgb "#222222" lw 1 notitle, \
	     for [p = 1:npol] datafile(f) index (p - 1) using 2:(($6 == 0) ? 4 : $5 + 2):(($6 == 0) ? "n/a" : sprintf("%.0f", $3)) \
		with labels offset 0, 0.5 font ",7" notitle
}
unset multiplot
