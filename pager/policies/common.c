/* Helpers shared by the policies. */
#include "pager/policy.h"

int pcb_batch_add(struct pcb_pagestate *ps, struct pcb_batch *b, uint64_t page)
{
	if (b->npages >= b->max_pages)
		return -1;
	bool extend = b->nr && b->r[b->nr - 1].first + b->r[b->nr - 1].count == page;
	if (!extend && b->nr >= b->max_ranges)
		return -1;
	if (page >= ps->npages || !pcb_ps_claim(ps, page))
		return 0;
	if (extend) {
		b->r[b->nr - 1].count++;
	} else {
		b->r[b->nr].first = page;
		b->r[b->nr].count = 1;
		b->nr++;
	}
	b->npages++;
	return 1;
}

unsigned pcb_policy_fill_sequential(struct pcb_policy *p, struct pcb_batch *b, uint64_t *cursor)
{
	unsigned added = 0;
	int wrapped = 0;
	uint64_t pg = *cursor;
	for (;;) {
		pg = pcb_ps_next_free(p->ps, pg);
		if (pg >= p->npages) {
			if (wrapped++)
				break;
			pg = 0;
			continue;
		}
		int r = pcb_batch_add(p->ps, b, pg);
		if (r < 0)
			break;
		added += (unsigned)r;
		pg++;
	}
	*cursor = pg >= p->npages ? 0 : pg;
	return added;
}
