#include "bench/stats.h"
#include "common/jsonread.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct pcb_spread pcb_spread_of(const double *v, size_t n)
{
	struct pcb_spread s = { 0, NAN, NAN, NAN };
	double *t = n ? malloc(n * sizeof(*t)) : NULL;
	if (!t)
		return s;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]))
			t[k++] = v[i];
	if (k) {
		qsort(t, k, sizeof(*t), cmp_dbl);
		s.n = (unsigned)k;
		s.min = t[0];
		s.max = t[k - 1];
		s.median = k % 2 ? t[k / 2] : (t[k / 2 - 1] + t[k / 2]) / 2;
	}
	free(t);
	return s;
}

int pcb_hist_from_json(struct pcb_hist *h, const struct pcb_jv *obj)
{
	double count, mn, mx, sum;
	if (pcb_jv_num(pcb_jv_get(obj, "count"), &count) < 0)
		return -1;
	if (count == 0)
		return 0;
	if (pcb_jv_num(pcb_jv_get(obj, "min_ns"), &mn) < 0 || pcb_jv_num(pcb_jv_get(obj, "max_ns"), &mx) < 0 ||
	    pcb_jv_num(pcb_jv_get(obj, "sum_ns"), &sum) < 0)
		return -1;
	const struct pcb_jv *bins = pcb_jv_get(obj, "bins");
	if (!bins || bins->type != PCB_J_ARR)
		return -1;
	uint64_t total = 0;
	for (size_t i = 0; i < bins->n; i++) {
		const struct pcb_jv *b = bins->kids[i];
		double lo, c;
		if (b->type != PCB_J_ARR || b->n != 2 || pcb_jv_num(b->kids[0], &lo) < 0 || pcb_jv_num(b->kids[1], &c) < 0 ||
		    lo < 0 || c < 0 || lo != floor(lo) || c != floor(c) || lo >= 18446744073709551615.0)
			return -1;
		uint32_t bk = pcb_hist_bucket((uint64_t)lo);
		if (pcb_hist_lower(bk) != (uint64_t)lo)
			return -1;
		h->bucket[bk] += (uint64_t)c;
		total += (uint64_t)c;
	}
	if ((double)total != count)
		return -1;
	h->count += total;
	h->sum += (uint64_t)sum;
	if ((uint64_t)mn < h->min)
		h->min = (uint64_t)mn;
	if ((uint64_t)mx > h->max)
		h->max = (uint64_t)mx;
	return 0;
}

void pcb_csv_field(FILE *f, const char *s)
{
	if (!s)
		s = "";
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void pcb_csv_tidy_header(FILE *f)
{
	fputs("run_id,policy,workload,link,rep,metric,stat,value\n", f);
}

void pcb_csv_tidy_row(FILE *f, const char *run_id, const char *policy, const char *workload, const char *link,
		      const char *rep, const char *metric, const char *stat, double value)
{
	const char *cols[] = { run_id, policy, workload, link, rep, metric, stat };
	for (unsigned i = 0; i < 7; i++) {
		pcb_csv_field(f, cols[i]);
		fputc(',', f);
	}
	if (isnan(value) || isinf(value))
		fputs("NA\n", f);
	else
		fprintf(f, "%.15g\n", value);
}
