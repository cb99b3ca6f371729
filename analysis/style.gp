# analysis/style.gp: shared look of every pcbench figure (loaded by analysis/fig*.gp).
# Variables set by the caller (analysis/plots.sh): dir (results directory), term ("pdf" or "png").
# Palette: one fixed colour per policy name in every figure of every experiment (Okabe-Ito and
# Tol's muted colours, colour-blind safe); a name not in the table (a job's own variant) takes a
# colour by its position.  The all-local baseline is black.  Font: Helvetica (Nimbus Sans where Helvetica is absent), 9 pt in PDF.
if (!exists("term")) term = "pdf"
if (!exists("dir")) print "usage: gnuplot -e \"dir='RESULTS'; term='pdf'\" SCRIPT"; exit
polnames = "demand sequential qemu qemu-preempt criu pivot trend replay local"
polcolors = "#D55E00 #0072B2 #009E73 #56B4E9 #CC79A7 #E69F00 #999933 #882255 #000000"
polidx(name) = sum [k = 1:words(polnames)] (word(polnames, k) eq name ? k : 0)
colour_of(name, p) = polidx(name) > 0 ? word(polcolors, polidx(name)) : word("#332288 #44AA99 #AA4499 #DDCC77 #117733 #88CCEE", (p - 1) % 6 + 1)
basecolor = "#000000"
# size in inches: PDF at that size, PNG at 150 dpi
termcmd(w, h) = (term eq "pdf") ? \
	sprintf("set terminal pdfcairo enhanced color font 'Helvetica,9' linewidth 1 size %gin,%gin", w, h) : \
	sprintf("set terminal pngcairo enhanced color font 'Helvetica,9' linewidth 1 size %d,%d", int(w * 150), int(h * 150))
outfile(name) = sprintf("%s/figures/%s.%s", dir, name, term)
datafile(name) = sprintf("%s/plotdata/%s", dir, name)
load datafile("meta.gp")
polcolor(p) = colour_of(pol[p], p)
set encoding utf8
set border 3 lw 0.8
set tics nomirror out scale 0.6
set grid ytics lc rgb "#dddddd" lw 0.6 dt 1
set key noopaque samplen 2 spacing 1.1 noenhanced   # policy names may hold "_" or "^"
set style fill solid 0.85 border lc rgb "#333333"
# panel grid for n panels: at most 3 columns
gridcols(n) = (n < 3 ? n : 3)
gridrows(n) = int((n + 2) / 3)
