/* Statistics over repetitions for `pcbench bench` / `pcbench analyze`, and
 * the tidy CSV writer.
 *
 * Descriptive only: the median/min/max of a cell (summary.csv, plot data) and
 * latency percentiles from the histograms of its repetitions merged bin by bin,
 * never from averaging per-run percentiles.  Confidence intervals and tests are
 * computed from the tidy CSV by analysis/stats.py with SciPy (docs/design.md:
 * why they are not written here).
 */
#ifndef PCB_STATS_H
#define PCB_STATS_H
#include "common/hist.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct pcb_spread {
	unsigned n;
	double median, min, max;
};

/* Median (mean of the two middle values for even n), min, max of v[0..n).
 * NaN entries are ignored (counted out of n).  n == 0 -> all NaN. v is not modified. */
struct pcb_spread pcb_spread_of(const double *v, size_t n);

struct pcb_jv;
/* Add the bins of a result JSON histogram object ({"count","min_ns","max_ns",
 * "sum_ns","bins":[[lower_ns,count],...]}) into h.  Exact min/max/sum are taken
 * from the object.  0, or -1 if the object is malformed (bins that do not fall
 * on bucket boundaries, counts that do not add up). */
int pcb_hist_from_json(struct pcb_hist *h, const struct pcb_jv *obj);

/* CSV (RFC 4180): a field is quoted when it holds a comma, quote, CR or LF. */
void pcb_csv_field(FILE *f, const char *s);
/* Tidy long-form row: run_id,policy,workload,link,rep,metric,stat,value
 * (value printed with %.15g: every decimal the JSON holds survives; NaN -> "NA"). */
void pcb_csv_tidy_header(FILE *f);
void pcb_csv_tidy_row(FILE *f, const char *run_id, const char *policy, const char *workload, const char *link,
		      const char *rep, const char *metric, const char *stat, double value);
#endif
