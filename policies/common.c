/* Helpers shared by the policies. */
#include "policies/policy.h"
#include <stdlib.h>

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

static int cmp_range(const void *a, const void *b)
{
	uint64_t x = ((const struct pcb_range *)a)->first, y = ((const struct pcb_range *)b)->first;
	return x < y ? -1 : x > y;
}

void pcb_batch_sort(struct pcb_batch *b)
{
	if (b->nr < 2)
		return;
	qsort(b->r, b->nr, sizeof(*b->r), cmp_range);
	unsigned k = 0;
	for (unsigned i = 1; i < b->nr; i++) {
		if (b->r[k].first + b->r[k].count == b->r[i].first)
			b->r[k].count += b->r[i].count;
		else
			b->r[++k] = b->r[i];
	}
	b->nr = k + 1;
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
