/* `pcbench analyze DIR`: turn a bench results directory (job.conf + runs/ID.json
 * + runs/ID.timeline.csv) into
 *   results.csv     tidy long form, one row per (run, metric, stat)
 *   summary.csv     per cell (policy x workload x link): median/min/max/n over
 *                   repetitions; latency percentiles from merged histograms
 *   summary.md      headline table + pairwise comparisons (Markdown)
 *   summary.tex     the same table as a LaTeX tabular
 *   plotdata/       gnuplot inputs for analysis/fig*.gp (meta.gp + *.dat)
 * Nothing is re-run. */
#ifndef PCB_ANALYZE_H
#define PCB_ANALYZE_H
#include <stddef.h>

/* Returns 0 or a PCB_EXIT_* code with a one-line reason in why. */
int pcb_analyze(const char *dir, int verbose, char *why, size_t whylen);
#endif
