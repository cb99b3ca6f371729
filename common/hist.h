/* Log-linear latency histogram shared by user space and BPF programs.
 *
 * Values (nanoseconds) below 2^PCB_HIST_SUB_BITS are counted exactly.  Above,
 * values are grouped by their most significant bit and each group is split
 * into 2^PCB_HIST_SUB_BITS linear sub-buckets, so a bucket's width is at most
 * 1/64 of its lower bound.  Reporting a bucket's midpoint bounds the relative
 * error of any percentile by 1/128 (0.78 %).  Values >= 2^PCB_HIST_MAX_MSB+1
 * land in the last bucket (~36 minutes; counted as overflow).
 *
 * This header is included by BPF programs: only fixed-width types, no libc,
 * no loops the verifier cannot bound.
 */
#ifndef PCB_HIST_H
#define PCB_HIST_H

#define PCB_HIST_SUB_BITS 6
#define PCB_HIST_SUB      (1u << PCB_HIST_SUB_BITS)          /* 64 */
#define PCB_HIST_MAX_MSB  41                                   /* 2^42 ns ~ 73 min */
#define PCB_HIST_BUCKETS  ((PCB_HIST_MAX_MSB - PCB_HIST_SUB_BITS + 2) * PCB_HIST_SUB) /* 2368 */

#ifdef __BPF__
#define PCB_HIST_INLINE static __always_inline
typedef __u64 pcb_u64;
typedef __u32 pcb_u32;
#else
#include <stdint.h>
#define PCB_HIST_INLINE static inline
typedef uint64_t pcb_u64;
typedef uint32_t pcb_u32;
#endif

/* floor(log2(v)) for v > 0, branch-light, verifier friendly. */
PCB_HIST_INLINE pcb_u32 pcb_log2_u64(pcb_u64 v)
{
	pcb_u32 r = 0, s;
	s = (v > 0xFFFFFFFFull) << 5; v >>= s; r |= s;
	s = (v > 0xFFFFull) << 4;     v >>= s; r |= s;
	s = (v > 0xFFull) << 3;       v >>= s; r |= s;
	s = (v > 0xFull) << 2;        v >>= s; r |= s;
	s = (v > 0x3ull) << 1;        v >>= s; r |= s;
	r |= (pcb_u32)(v >> 1);
	return r;
}

/* Bucket index of value v. */
PCB_HIST_INLINE pcb_u32 pcb_hist_bucket(pcb_u64 v)
{
	pcb_u32 msb, shift;

	if (v < PCB_HIST_SUB)
		return (pcb_u32)v;
	msb = pcb_log2_u64(v);
	if (msb > PCB_HIST_MAX_MSB)
		return PCB_HIST_BUCKETS - 1;
	shift = msb - PCB_HIST_SUB_BITS;
	return (msb - PCB_HIST_SUB_BITS + 1) * PCB_HIST_SUB +
	       (pcb_u32)((v >> shift) & (PCB_HIST_SUB - 1));
}

/* Lowest value that falls in bucket b. */
PCB_HIST_INLINE pcb_u64 pcb_hist_lower(pcb_u32 b)
{
	pcb_u32 group, sub, msb;

	if (b < PCB_HIST_SUB)
		return b;
	group = b / PCB_HIST_SUB;          /* >= 1 */
	sub = b % PCB_HIST_SUB;
	msb = group + PCB_HIST_SUB_BITS - 1;
	return ((pcb_u64)1 << msb) + ((pcb_u64)sub << (msb - PCB_HIST_SUB_BITS));
}

/* Width of bucket b (1 for the exact buckets). */
PCB_HIST_INLINE pcb_u64 pcb_hist_width(pcb_u32 b)
{
	if (b < PCB_HIST_SUB)
		return 1;
	return (pcb_u64)1 << (b / PCB_HIST_SUB - 1);
}

#ifndef __BPF__
#include <stdio.h>

struct pcb_hist {
	uint64_t count;
	uint64_t sum;           /* ns; saturating */
	uint64_t min, max;
	uint64_t bucket[PCB_HIST_BUCKETS];
};

void pcb_hist_init(struct pcb_hist *h);
static inline void pcb_hist_add(struct pcb_hist *h, uint64_t v)
{
	h->bucket[pcb_hist_bucket(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}
/* Add all of src into dst. */
void pcb_hist_merge(struct pcb_hist *dst, const struct pcb_hist *src);
/* Add raw bucket counts (e.g. read from a BPF map); min/max/sum derived from buckets. */
void pcb_hist_add_buckets(struct pcb_hist *h, const uint64_t *buckets, unsigned n);
/* Value at percentile p (0 < p <= 100): midpoint of the bucket holding the
 * ceil(p/100 * count)-th smallest value, clamped to [min, max]. 0 if empty. */
uint64_t pcb_hist_percentile(const struct pcb_hist *h, double p);
double pcb_hist_mean(const struct pcb_hist *h);
/* Relative error bound of a reported percentile (0.0078125). */
double pcb_hist_error_bound(void);

struct pcb_json;
/* {"count":..,"min_ns":..,"mean_ns":..,"p50_ns":..,"p90_ns":..,"p99_ns":..,
 *  "p999_ns":..,"max_ns":..,"sum_ns":..} ; with_bins adds "bins":[[lower_ns,count],...] (non-empty only) */
void pcb_hist_json(struct pcb_json *j, const char *key, const struct pcb_hist *h, int with_bins);
#endif
#endif
