/* Derived results: prefetch quality from the guest's first touches and the
 * pager's install record, and the per-event timeline CSV. */
#ifndef PCB_METRICS_H
#define PCB_METRICS_H
#include "common/hist.h"
#include "pager/pager.h"
#include <stdint.h>
#include <stdio.h>

struct pcb_prefetch {
	uint64_t touched;            /* pages the guest touched */
	uint64_t touched_faulted;    /* ... whose first touch faulted */
	uint64_t hits;               /* first touch found the page already pulled in the background */
	uint64_t bg_installed;       /* pages installed by the background pull while the guest ran or after */
	uint64_t bg_unused;          /* background pages the guest never touched */
	struct pcb_hist lead;        /* hits: first touch - install (timeliness) */
};

void pcb_prefetch_compute(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
			  const uint32_t *inst_us, const uint8_t *inst_kind);
struct pcb_json;
void pcb_prefetch_json(const struct pcb_prefetch *pf, struct pcb_json *j, const char *key);

/* CSV: t_us,event,page,detail  (event: fault|install|touch). Returns 0 or -errno. */
int pcb_timeline_write(const char *path, struct pcb_pager *p, uint64_t npages, const _Atomic uint32_t *first_touch);
#endif
