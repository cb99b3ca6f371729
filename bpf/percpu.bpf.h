/* Per-CPU counters and log-linear histograms (common/hist.h) in
 * BPF_MAP_TYPE_PERCPU_ARRAY maps, for the BPF programs: array lookups the
 * verifier inlines, and plain increments (a program runs with preemption
 * off, so only one program at a time updates a CPU's copy, unless one runs
 * from an interrupt on top of another: the programs say which may).  User
 * space sums the CPUs (trace/maps.c). */
#ifndef PCB_BPF_PERCPU_BPF_H
#define PCB_BPF_PERCPU_BPF_H
#include "common/hist.h"

/* Counter idx of the map's one entry (an array of ncounters u64) += n. */
static __always_inline void pcb_percpu_count(void *map, __u32 idx, __u32 ncounters, __s64 n)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(map, &zero);

	barrier_var(idx);       /* keep the bound check for the verifier */
	if (c && idx < ncounters)
		c[idx] += n;
}

/* Histogram id of the map (entries of PCB_HIST_BUCKETS u64): n more of value v. */
static __always_inline void pcb_percpu_hist(void *map, __u32 id, __u64 v, __s64 n)
{
	__u64 *h = bpf_map_lookup_elem(map, &id);
	__u32 b;

	if (!h)
		return;
	b = pcb_hist_bucket(v);
	if (b < PCB_HIST_BUCKETS)
		h[b] += n;
}
#endif
