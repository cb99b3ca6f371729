# Figure 2: guest throughput against time after switch-over, per policy, with the all-local
# baseline.  Median over repetitions per time bucket, band: min-max.  Needs results.progress.
load "analysis/style.gp"
if (!have_progress) {
	eval termcmd(5, 2)
	set output outfile("fig2_throughput")
	unset border; unset tics; unset grid; unset key
	set xrange [0:1]; set yrange [0:1]
	set label 1 "Figure 2 (guest throughput over time): not available" at graph 0.5, 0.72 center font ",11"
	set label 2 progress_why at graph 0.5, 0.42 center
	plot 2 notitle
	exit
}
eval termcmd(2.4 * gridcols(ncombo) + 1.4, 2.2 * gridrows(ncombo) + 0.3)   # + the legend margin
set output outfile("fig2_throughput")
npa = npol + have_baseline
set multiplot layout gridrows(ncombo), gridcols(ncombo) title \
	sprintf("Guest throughput after switch-over (%g ms buckets; median of %d repetitions, band: min–max)", progress_bucket_ms, nrep) font ",9"
set xlabel "time after switch-over (s)"
set xrange [0:progress_xmax / 1000.0]
set yrange [0:progress_ymax]
# one legend, in the right margin of the last panel: never over the curves
set key outside right top vertical samplen 1.5 font ",7"
set style fill transparent solid 0.2 noborder
do for [c = 1:ncombo] {
	set title combo[c] noenhanced
	if (c == ncombo) { set key; set rmargin 16 } else { unset key; set rmargin 2 }
	if (c % gridcols(ncombo) == 1 || gridcols(ncombo) == 1) { set ylabel "guest throughput (M ops/s)" } else { unset ylabel }
	# the baseline curve only when the experiment has one (an empty gnuplot iteration still plots)
	basecmd = have_baseline ? sprintf(", datafile('progress.dat') index %d using ($1 / 1000):2 with lines lw 1.2 lc rgb basecolor title '%s (all-local baseline)'", (c - 1) * npa + npol, baseline) : ""
	eval "plot for [p = 1:npol] datafile('progress.dat') index ((c - 1) * npa + p - 1) using ($1 / 1000):3:4 with filledcurves lc rgb polcolor(p) notitle, for [p = 1:npol] datafile('progress.dat') index ((c - 1) * npa + p - 1) using ($1 / 1000):2 with lines lw 1.8 lc rgb polcolor(p) title pol[p]".basecmd
}
unset multiplot
