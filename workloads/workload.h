/* Synthetic guests: deterministic access generators (seeded) and the vCPU
 * loop that runs them over the guest region, checks every read against the
 * image and measures its own op latency.
 *
 * A workload is a const struct pcb_workload_ops in workloads/NAME.c, listed
 * once in workloads/registry.c. */
#ifndef PCB_WORKLOAD_H
#define PCB_WORKLOAD_H
#include "common/hist.h"
#include "common/image.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCB_WORKLOAD_ABI 1

struct pcb_wl_params {
	uint64_t npages;
	uint64_t seed;
	unsigned nvcpus;
	double zipf_theta;
};

struct pcb_workload_ops {
	unsigned abi;
	const char *name;
	const char *help;
	/* State shared by all vCPUs (e.g. a Zipf table).  Optional. */
	int (*init)(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen);
	void (*fini)(void *shared);
	/* Per-vCPU generator state. */
	int (*thread_init)(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu);
	void (*thread_fini)(void *ts);
	/* Next page to touch. */
	uint64_t (*next)(void *ts);
};

extern const struct pcb_workload_ops *const pcb_workloads[];
const struct pcb_workload_ops *pcb_workload_find(const char *name);
int pcb_workload_check(const struct pcb_workload_ops *ops, char *why, size_t whylen);

/* ---- the vCPU loop ---- */
struct pcb_guest_cfg {
	const struct pcb_workload_ops *ops;
	struct pcb_wl_params prm;
	uint8_t *region;
	const struct pcb_image *im;
	double write_ratio;
	uint64_t duration_ns;        /* stop after this long (0: no limit) */
	uint64_t ops_limit;          /* stop after this many ops per vCPU (0: no limit) */
	/* First touch of each page by any vCPU (optional): µs since switch-over
	 * plus one in bits 0..30, bit 31 set if that touch faulted; 0 = never touched. */
	_Atomic uint32_t *first_touch;
};
#define PCB_TOUCH_FAULTED 0x80000000u

struct pcb_vcpu_result {
	unsigned vcpu;
	pid_t tid;
	int cpu_start, cpu_end;      /* placement */
	uint64_t ops, reads, writes;
	uint64_t faults;             /* accesses during which the pager read a fault message from this thread */
	uint64_t blocktime_ns;       /* sum of those accesses' latency */
	uint64_t read_mismatch;      /* reads that did not match the image */
	uint64_t first_mismatch_page;
	uint64_t t_start_ns, t_end_ns;
	struct pcb_hist fault_lat;   /* latency of faulting accesses as this thread saw it */
	struct pcb_hist op_lat;      /* every op (sampled 1 in 64 when not faulting) */
};

struct pcb_guest;
/* faults[v]: per-vCPU fault-message counters maintained by the pager. */
int pcb_guest_create(const struct pcb_guest_cfg *cfg, const _Atomic uint64_t *const *faults,
		     struct pcb_guest **out, char *why, size_t whylen);
/* Start the vCPU threads; they block on a start gate until pcb_guest_go(). */
int pcb_guest_start(struct pcb_guest *g);
pid_t pcb_guest_tid(struct pcb_guest *g, unsigned vcpu);   /* valid after start */
/* Release the vCPUs; base_ns is the switch-over time (for first-touch times). */
void pcb_guest_go(struct pcb_guest *g, uint64_t base_ns);
unsigned pcb_guest_running(struct pcb_guest *g);          /* vCPUs not yet finished */
void pcb_guest_join(struct pcb_guest *g);
const struct pcb_vcpu_result *pcb_guest_result(struct pcb_guest *g, unsigned vcpu);
void pcb_guest_destroy(struct pcb_guest *g);
#endif
