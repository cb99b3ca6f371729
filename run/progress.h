/* Guest progress over time (ops per bucket per vCPU), the metrics against a
 * local baseline (time to first work, time back to 95 %, lost work), and the
 * local baseline itself: the same guest over a fully populated region. */
#ifndef PCB_PROGRESS_H
#define PCB_PROGRESS_H
#include "common/image.h"
#include "pager/pager.h"
#include "workloads/workload.h"
#include <stdbool.h>
#include <stdint.h>

#define PCB_PROGRESS_WINDOW 5      /* buckets averaged when testing "back within 5 %" */

struct pcb_progress {
	uint64_t bucket_ns;
	unsigned nvcpus;
	uint64_t nbuckets;             /* buckets with any op (longest vCPU) */
	uint64_t ncomplete;            /* buckets that end before the first vCPU stopped */
	uint64_t **per_vcpu;           /* [nvcpus][nbuckets] */
	uint64_t *total;               /* [nbuckets] */
	uint64_t first_work_ns;        /* switch-over -> first op completed by any vCPU (UINT64_MAX: none) */
	double mean_per_bucket;        /* over the complete buckets */
	/* against a baseline (set by pcb_progress_compare) */
	bool have_baseline;
	uint64_t *base_total;
	uint64_t base_ncomplete;
	double base_mean_per_bucket;
	bool recovered;
	uint64_t t95_ns;               /* from here on every window is >= 95 % of the baseline mean */
	int64_t lost_ops;              /* sum over common complete buckets of (baseline - migrated) */
	double lost_s;                 /* lost_ops at the baseline's mean rate */
};

/* Collect from a joined guest; base_ns = switch-over (the guest's time 0). */
int pcb_progress_collect(struct pcb_progress *p, struct pcb_guest *g, unsigned nvcpus, uint64_t bucket_ns,
			 uint64_t base_ns);
/* Compute time to 95 % and lost work of p against a local run's progress. */
int pcb_progress_compare(struct pcb_progress *p, const struct pcb_progress *local);
struct pcb_json;
void pcb_progress_json(const struct pcb_progress *p, struct pcb_json *j, const char *key);
/* Tidy CSV: t_ms,vcpu,ops (one row per vCPU and bucket), '#' comment lines first.  0 or -errno. */
int pcb_progress_csv(const struct pcb_progress *p, const char *path, const char *comment);
void pcb_progress_free(struct pcb_progress *p);

/* What a progress CSV's '#' line says about the run that wrote it. */
struct pcb_progress_meta {
	char policy[32], workload[32];
	uint64_t seed;
	unsigned vcpus, bucket_ms;
	uint64_t complete_buckets;
	char guest[16];
};
/* Read a progress CSV written by pcbench (its '#' line and t_ms,vcpu,ops
 * rows) into p and m.  0, or PCB_EXIT_DATAERR / PCB_EXIT_OSERR with a
 * one-line reason naming the file (and line). */
int pcb_progress_load_csv(const char *path, struct pcb_progress *p, struct pcb_progress_meta *m, char *why, size_t whylen);

/* The local baseline's memory: an anonymous region with every page of the
 * image written in before the guest starts (NULL if out of memory). */
uint8_t *pcb_local_region(const struct pcb_image *im, uint64_t npages);
/* Verify a local region against the image (digest, stamp, residency). */
int pcb_local_verify(const uint8_t *region, const struct pcb_image *im, uint64_t npages, struct pcb_verify *v,
		     char *why, size_t whylen);
#endif
