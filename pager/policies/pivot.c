/* pivot: pre-page outward from the latest fault, alternating forward and
 * backward (P+1, P-1, P+2, P-2, ...) — "adaptive pre-paging" around a pivot
 * as in Hines & Gopalan's post-copy work.  A new fault moves the pivot and
 * restarts the expansion; once the window covers the region (or when there
 * has been no fault yet) the rest is pulled in address order. */
#include "pager/policy.h"
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>

#define PIVOT_MAX_RADIUS (1u << 16)   /* beyond this, address order: bounds the scan per batch */

struct pivot_state {
	_Atomic uint64_t last_fault;     /* page + 1; 0 = none yet */
	uint64_t pivot;                  /* page + 1 the window is centred on */
	uint64_t radius;                 /* next distance to try */
	uint64_t cursor;                 /* sequential fallback */
};

static int pivot_init(struct pcb_policy *p, char *why, size_t whylen)
{
	snprintf(why, whylen, "out of memory");
	p->priv = calloc(1, sizeof(struct pivot_state));
	return p->priv ? 0 : -1;
}

static void pivot_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static void pivot_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct pivot_state *s = p->priv;
	atomic_store_explicit(&s->last_fault, page + 1, memory_order_relaxed);
}

static unsigned pivot_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct pivot_state *s = p->priv;
	uint64_t lf = atomic_load_explicit(&s->last_fault, memory_order_relaxed);
	unsigned added = 0;
	if (lf && lf != s->pivot) {
		s->pivot = lf;
		s->radius = 1;
	}
	if (s->pivot) {
		uint64_t c = s->pivot - 1;
		/* expand until the batch is full or the window covers the region */
		while (s->radius < p->npages && s->radius <= PIVOT_MAX_RADIUS) {
			int full = 0;
			if (c + s->radius < p->npages) {
				int r = pcb_batch_add(p->ps, b, c + s->radius);
				full = r < 0;
				added += r > 0;
			}
			if (!full && s->radius <= c) {
				int r = pcb_batch_add(p->ps, b, c - s->radius);
				full = r < 0;
				added += r > 0;
			}
			if (full)
				return added;
			s->radius++;
		}
	}
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

const struct pcb_policy_ops pcb_policy_pivot = {
	.abi = PCB_POLICY_ABI,
	.name = "pivot",
	.help = "pull outward from the latest fault (P+1, P-1, P+2, ...), restart at each new fault",
	.background = true,
	.init = pivot_init,
	.fini = pivot_fini,
	.on_fault = pivot_on_fault,
	.next_batch = pivot_next_batch,
};
