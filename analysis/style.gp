# analysis/style.gp: shared look of every pcbench figure (loaded by analysis/fig*.gp).
# Variables set by the caller (analysis/plots.sh): dir (results directory), term ("pdf" or "png").
# Palette: Okabe-Ito (colour-blind safe), one colour per policy in job-file order; the all-local
# baseline is black.  Font: Helvetica (Nimbus Sans where Helvetica is absent), 9 pt in PDF.
if (!exists("term")) term = "pdf"
if (!exists("dir")) print "usage: gnuplot -e \"dir='RESULTS'; term='pdf'\" SCRIPT"; exit
polcolor(p) = word("#0072B2 #D55E00 #009E73 #CC79A7 #E69F00 #56B4E9 #999933 #882255", (p - 1) % 8 + 1)
basecolor = "#000000"
# size in inches: PDF at that size, PNG at 150 dpi
termcmd(w, h) = (term eq "pdf") ? \
	sprintf("set terminal pdfcairo enhanced color font 'Helvetica,9' linewidth 1 size %gin,%gin", w, h) : \
	sprintf("set terminal pngcairo enhanced color font 'Helvetica,9' linewidth 1 size %d,%d", int(w * 150), int(h * 150))
outfile(name) = sprintf("%s/figures/%s.%s", dir, name, term)
datafile(name) = sprintf("%s/plotdata/%s", dir, name)
load datafile("meta.gp")
set encoding utf8
set border 3 lw 0.8
set tics nomirror out scale 0.6
set grid ytics lc rgb "#dddddd" lw 0.6 dt 1
set key noopaque samplen 2 spacing 1.1 noenhanced   # policy names may hold "_" or "^"
set style fill solid 0.85 border lc rgb "#333333"
# panel grid for n panels: at most 3 columns
gridcols(n) = (n < 3 ? n : 3)
gridrows(n) = int((n + 2) / 3)
