# Figure 3: cumulative pages present against time after switch-over, split by how they
# arrived (demand fault, background pull, drain after the guest stopped).  One representative
# run per cell: the repetition with the median migration time.
load "analysis/style.gp"
eval termcmd(2.4 * ncombo + 0.3, 1.9 * npol + 0.4)
set output outfile("fig3_pages_present")
set multiplot layout npol, ncombo title "Pages present by arrival path" font ",9"
set yrange [0:100]
set ytics 25
set key top left reverse Left
set style fill solid 0.75 noborder
do for [p = 1:npol] {
	do for [c = 1:ncombo] {
		k = (p - 1) * ncombo + c
		set title present_title[k] noenhanced
		if (c == 1) { set ylabel "pages present (%)" } else { unset ylabel }
		if (p == npol) { set xlabel "time after switch-over (ms)" } else { unset xlabel }
		if (k == 1) { set key } else { unset key }
		set xrange [0:present_xmax[c] * 1.02]
		if (present_ok[k]) {
			plot datafile("present.dat") index (k - 1) using 1:(0):2 with filledcurves lc rgb "#D55E00" title "demand faults", \
			     "" index (k - 1) using 1:2:3 with filledcurves lc rgb "#0072B2" title "background pull", \
			     "" index (k - 1) using 1:3:4 with filledcurves lc rgb "#999999" title "drain (guest stopped)"
		} else {
			set xrange [0:1]
			plot 1/0 notitle
					}
	}
}
unset multiplot
