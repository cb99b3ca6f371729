# Figure 7 (headline): policy x workload x link, one normalised metric (analysis/stats.py: the share
# of the guest's run its vCPUs were stalled on faults, blocktime / guest time, log colour scale).  Cell: median over the repetitions; "*" and a black frame: the best
# policy of its column, marked only where a two-sided Mann-Whitney U test (Holm-adjusted over the
# column's comparisons) says it differs from every other policy at p < 0.05.
load "analysis/style.gp"
if (!exists("hl_ngroups")) { load datafile("headline.gp") }
hl_w = 0.9 * hl_ngroups + 2.8
eval termcmd(hl_w < 5.5 ? 5.5 : hl_w, 0.32 * hl_npol + 1.5)
set output outfile("fig7_headline")
set title sprintf("%s: median of %d repetitions\nframe: the best group (no significant difference from the best; every other policy significantly worse)\n*: a single best, significantly different from every other policy (Mann–Whitney U, Holm, p < 0.05)", hl_metric, hl_nrep) font ",8" noenhanced
unset grid
set border 0
set tics scale 0
set xrange [-0.5:hl_ngroups - 0.5]
set yrange [hl_npol - 0.5:-0.5]
eval "set xtics noenhanced ".hl_xtics
eval "set ytics noenhanced ".hl_ytics
set bmargin 3.5
# colour: good is blue, bad is orange in both directions of "better" (colour-blind safe ends)
if (hl_better > 0) { set palette defined (0 "#D55E00", 0.5 "#F7F7F7", 1 "#0072B2"); set cbrange [0:100]; unset logscale cb } \
else { set palette defined (0 "#0072B2", 0.5 "#F7F7F7", 1 "#D55E00"); set logscale cb 10; set cbrange [0.1:100] }
set cblabel hl_metric noenhanced
set colorbox
unset key
plot datafile("headline.dat") using 1:2:(0.48):(0.48):3 with boxxyerror fs solid 1.0 noborder fc palette, \
     datafile("headline.dat") using 1:2:($6 > 0 ? 0.46 : NaN):(0.46) with boxxyerror fs empty border lc rgb "#000000" lw 2, \
     datafile("headline.dat") using 1:2:7 with labels font ",8"
