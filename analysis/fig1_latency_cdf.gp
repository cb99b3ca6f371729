# Figure 1: CDF of guest-observed fault latency per policy, one panel per workload (/link).
# Histograms of all repetitions of a cell merged bin by bin (relative error <= 0.78 %).
# Legend: fault count and in how many runs vCPU 0 and the demand thread shared a CPU
# (a cross-CPU wake-up adds tens of microseconds on small machines).
load "analysis/style.gp"
eval termcmd(2.4 * gridcols(ncombo) + 0.3, (2.2 + 0.13 * npol) * gridrows(ncombo) + 0.3)
set output outfile("fig1_latency_cdf")
set multiplot layout gridrows(ncombo), gridcols(ncombo) title \
	sprintf("Fault latency, %d reps merged (same CPU: runs with vCPU 0 and the demand thread on one CPU)", nrep) font ",9"
set logscale x 10
set format x "10^{%T}"
set xrange [cdf_xmin:cdf_xmax]
set yrange [0:1]
set ytics 0.2
set grid xtics ytics
set xlabel "fault latency (µs)"
set key below left Left reverse font ",8" spacing 1 height 1.5
do for [c = 1:ncombo] {
	set title combo[c] noenhanced
	if (c % gridcols(ncombo) == 1 || gridcols(ncombo) == 1) { set ylabel "fraction of faults ≤ x" } else { unset ylabel }
	plot for [p = 1:npol] datafile("cdf.dat") index ((c - 1) * npol + p - 1) using 1:2 with steps lw 2 \
		lc rgb polcolor(p) title cdf_title[(c - 1) * npol + p]
}
unset multiplot
