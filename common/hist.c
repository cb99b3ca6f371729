#include "common/hist.h"
#include "common/json.h"
#include <string.h>

void pcb_hist_init(struct pcb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void pcb_hist_merge(struct pcb_hist *dst, const struct pcb_hist *src)
{
	for (unsigned i = 0; i < PCB_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->count && src->min < dst->min)
		dst->min = src->min;
	if (src->count && src->max > dst->max)
		dst->max = src->max;
}

void pcb_hist_add_buckets(struct pcb_hist *h, const uint64_t *buckets, unsigned n)
{
	if (n > PCB_HIST_BUCKETS)
		n = PCB_HIST_BUCKETS;
	for (unsigned i = 0; i < n; i++) {
		uint64_t c = buckets[i];
		if (!c)
			continue;
		uint64_t lo = pcb_hist_lower(i), w = pcb_hist_width(i);
		h->bucket[i] += c;
		h->count += c;
		h->sum += c * (lo + (w - 1) / 2);
		if (lo < h->min)
			h->min = lo;
		if (lo + w - 1 > h->max)
			h->max = lo + w - 1;
	}
}

static uint64_t bucket_mid(unsigned b)
{
	return pcb_hist_lower(b) + (pcb_hist_width(b) - 1) / 2;
}

uint64_t pcb_hist_percentile(const struct pcb_hist *h, double p)
{
	if (!h->count)
		return 0;
	if (p <= 0)
		return h->min;
	if (p > 100)
		p = 100;
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.9999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			uint64_t v = bucket_mid(b);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

double pcb_hist_mean(const struct pcb_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

double pcb_hist_error_bound(void)
{
	return 1.0 / (2.0 * PCB_HIST_SUB);
}

void pcb_hist_json(struct pcb_json *j, const char *key, const struct pcb_hist *h, int with_bins)
{
	pcb_json_obj_begin(j, key);
	pcb_json_u64(j, "count", h->count);
	pcb_json_u64(j, "min_ns", h->count ? h->min : 0);
	pcb_json_dbl(j, "mean_ns", pcb_hist_mean(h));
	pcb_json_u64(j, "p50_ns", pcb_hist_percentile(h, 50));
	pcb_json_u64(j, "p90_ns", pcb_hist_percentile(h, 90));
	pcb_json_u64(j, "p99_ns", pcb_hist_percentile(h, 99));
	pcb_json_u64(j, "p999_ns", pcb_hist_percentile(h, 99.9));
	pcb_json_u64(j, "max_ns", h->count ? h->max : 0);
	pcb_json_u64(j, "sum_ns", h->sum);
	if (with_bins) {
		pcb_json_arr_begin(j, "bins");
		for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++) {
			if (!h->bucket[b])
				continue;
			pcb_json_arr_begin(j, NULL);
			pcb_json_u64(j, NULL, pcb_hist_lower(b));
			pcb_json_u64(j, NULL, h->bucket[b]);
			pcb_json_arr_end(j);
		}
		pcb_json_arr_end(j);
	}
	pcb_json_obj_end(j);
}
