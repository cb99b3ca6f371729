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
 * (µs + 1, PCB_INST_*). */
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
};

/* guest_end_us: when the guest finished, µs after switch-over + 1 (0 = unknown). */
void pcb_prefetch_compute_until(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
				const uint32_t *inst_us, const uint8_t *inst_kind, uint64_t guest_end_us);
/* The same with no guest end known: every background page counts for accuracy. */
void pcb_prefetch_compute(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
			  const uint32_t *inst_us, const uint8_t *inst_kind);
struct pcb_json;
void pcb_prefetch_json(const struct pcb_prefetch *pf, struct pcb_json *j, const char *key);

/* CSV: t_us,event,page,detail  (event: fault|install|touch). Returns 0 or -errno. */
int pcb_timeline_write(const char *path, struct pcb_pager *p, uint64_t npages, const _Atomic uint32_t *first_touch);
/* The same CSV from records (the simulator's, or a pager's): fault events,
 * per-page install time (µs + 1, 0 = none) and kind, first touches (may be NULL).  0 or -errno. */
struct pcb_fault_ev;
int pcb_timeline_write_records(const char *path, const struct pcb_fault_ev *fe, size_t nf, uint64_t npages,
				const uint32_t *inst_us, const uint8_t *inst_kind, const _Atomic uint32_t *first_touch);
#endif
