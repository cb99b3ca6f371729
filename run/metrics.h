/* Derived results: prefetch quality from the guest's first touches and the
 * pager's install record, and the per-event timeline CSV. */
#ifndef PCB_METRICS_H
#define PCB_METRICS_H
#include "common/hist.h"
#include "pager/pager.h"
#include <stdint.h>
#include <stdio.h>

/* Prefetch quality (docs/metrics.md "How the prefetch metrics are computed").
 * first_touch: the guest's record (µs since switch-over + 1, PCB_TOUCH_FAULTED
 * when that touch faulted); inst_us/inst_kind: the pager's install record
 * (µs + 1; PCB_INST_* 4 bits a page, pcb_kind_at in pager/probes.h). */
struct pcb_prefetch {
	uint64_t touched;            /* distinct pages the guest touched after switch-over */
	uint64_t touched_faulted;    /* ... whose first touch faulted */
	uint64_t hits;               /* ... whose first touch found the page present (hit rate = hits / touched) */
	uint64_t hits_background;    /* hits on pages the background pull had brought */
	uint64_t bg_installed;       /* pages installed by the background pull (any time) */
	uint64_t bg_before_end;      /* ... of them installed before the guest finished (accuracy's denominator) */
	uint64_t bg_used;            /* ... of those, first touched after they arrived (accuracy's numerator) */
	uint64_t bg_late;            /* ... of those, touched first with a fault (the pull came too late) */
	uint64_t bg_unused;          /* ... of those, never touched */
	uint64_t guest_end_us;       /* guest finished, µs after switch-over + 1 (0: unknown, every page counts) */
	struct pcb_hist lead;        /* bg_used pages: first touch - arrival (timeliness), ns */
	uint64_t lead_clamped;       /* ... touched before the install was timestamped (in lead as 0) */
	/* During the migration (docs/metrics.md "prefetch during the migration"):
	 * [switch-over, last page present]; zero pages counted apart and left out
	 * of hit rate and accuracy. */
	struct pcb_prefetch_window {
		uint64_t end_us;             /* last page present, µs after switch-over + 1 (0: never) */
		uint64_t touched, hits, faults;          /* data pages first touched in the window */
		uint64_t zero_touched, zero_hits, zero_faults;
		uint64_t bg_installed;       /* data pages the background pull installed in the window
					      * before the guest ended (accuracy's denominator) */
		uint64_t bg_used;            /* ... first touched after they arrived, in the window */
		uint64_t bg_late;            /* ... first touched with a fault before they arrived (late) */
		uint64_t zero_bg_installed, zero_bg_used;
		struct pcb_hist lead;        /* bg_used: first touch - arrival, ns */
		uint64_t lead_clamped;       /* ... touched before the install was timestamped (in lead as 0) */
		struct pcb_hist late_by;     /* bg_late: arrival - first touch, ns (a negative lead) */
	} win;
};

/* The same with the window: complete_us = last page present, µs after
 * switch-over + 1 (0 = never: the window is the whole run). */
void pcb_prefetch_compute_window(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
				 const uint32_t *inst_us, const uint8_t *inst_kind, uint64_t guest_end_us,
				 uint64_t complete_us);

/* guest_end_us: when the guest finished, µs after switch-over + 1 (0 = unknown). */
void pcb_prefetch_compute_until(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
				const uint32_t *inst_us, const uint8_t *inst_kind, uint64_t guest_end_us);
/* The same with no guest end known: every background page counts for accuracy. */
void pcb_prefetch_compute(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
			  const uint32_t *inst_us, const uint8_t *inst_kind);
struct pcb_json;
void pcb_prefetch_json(const struct pcb_prefetch *pf, struct pcb_json *j, const char *key);

/* Blocktime under QEMU's definition (migration/postcopy-ram.c,
 * mark_postcopy_blocktime_begin/_end: "total" blocktime accrues while every
 * vCPU is blocked at once): the measure of the times at which all n vCPUs are
 * inside a stall.  stalls[v]: vCPU v's stall intervals, in time order, not
 * overlapping.  A vCPU with no stalls makes it 0. */
struct pcb_stall;
uint64_t pcb_blocktime_all(const struct pcb_stall *const *stalls, const uint64_t *nstalls, unsigned n);

/* CPU time per thread role (results.cpu), ns; -1 = not measured. */
struct pcb_cpu_report {
	int64_t process_ns;          /* this process, all threads (getrusage RUSAGE_SELF, after the joins) */
	int64_t vcpus_ns;            /* sum of the vCPU threads */
	int64_t demand_ns, background_ns, installer_ns;   /* pager threads (--pager=process: in that process) */
	int64_t main_ns;             /* the main thread */
	int64_t main_wait_ns;        /* the main thread while the guest ran (switch-over to the vCPUs' join); -1 local */
	int64_t source_ns;           /* the forked source process (wait4), -1 when it runs elsewhere */
	int64_t pager_process_ns;    /* --pager=process: the pager process */
	uint64_t wall_ns;            /* switch-over (local: start) to the end of the report's measurements */
};
void pcb_cpu_json(const struct pcb_cpu_report *c, struct pcb_json *j, const char *key);

/* CSV: t_us,event,page,detail  (event: fault|install|touch). Returns 0 or -errno. */
int pcb_timeline_write(const char *path, struct pcb_pager *p, uint64_t npages, const _Atomic uint32_t *first_touch);
/* The same CSV from records (the simulator's, or a pager's): fault events,
 * per-page install time (µs + 1, 0 = none) and kind, first touches (may be NULL).  0 or -errno. */
struct pcb_fault_ev;
int pcb_timeline_write_records(const char *path, const struct pcb_fault_ev *fe, size_t nf, uint64_t npages,
				const uint32_t *inst_us, const uint8_t *inst_kind, const _Atomic uint32_t *first_touch);
#endif
