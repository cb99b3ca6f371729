# Figure 1: CDF of guest-observed fault latency per policy, one panel per workload (/link).
# Histograms of all repetitions of a cell merged bin by bin (relative error <= 0.78 %).
load "analysis/style.gp"
eval termcmd(2.4 * gridcols(ncombo) + 0.3, 2.2 * gridrows(ncombo) + 0.3)
set output outfile("fig1_latency_cdf")
set multiplot layout gridrows(ncombo), gridcols(ncombo) title \
	sprintf("Fault latency, %d reps merged", nrep) font ",9"
set logscale x 10
set format x "10^{%T}"
set xrange [cdf_xmin:cdf_xmax]
set yrange [0:1]
set ytics 0.2
set grid xtics ytics
set xlabel "fault latency (µs)"
set key bottom right
do for [c = 1:ncombo] {
	set title combo[c] noenhanced
	if (c % gridcols(ncombo) == 1 || gridcols(ncombo) == 1) { set ylabel "fraction of faults ≤ x" } else { unset ylabel }
	plot for [p = 1:npol] datafile("cdf.dat") index ((c - 1) * npol + p - 1) using 1:2 with steps lw 2 \
		lc rgb polcolor(p) title sprintf("%s (%d faults)", pol[p], int(cdf_n[(c - 1) * npol + p]))
}
unset multiplot
