/* The source-side policy engine (source/push.h). */
#include "source/push.h"
#include "common/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pcb_push_open(struct pcb_push **out, const struct pcb_push_wire *w, uint64_t npages, char *why, size_t whylen)
{
	char name[PCB_PUSH_NAME], opts[PCB_PUSH_OPTS];
	memcpy(name, w->policy, sizeof(name));
	memcpy(opts, w->opts, sizeof(opts));
	if (!memchr(name, 0, sizeof(name)) || !memchr(opts, 0, sizeof(opts)) || w->batch_pages == 0 ||
	    w->batch_pages > PCB_MAX_BATCH_PAGES || w->reserved) {
		snprintf(why, whylen, "malformed PUSH (unterminated name or options, or batch of %u pages)", w->batch_pages);
		return -1;
	}
	const struct pcb_policy_ops *ops = pcb_policy_resolve(name, why, whylen);
	if (!ops)
		return -1;
	if (!ops->background) {
		snprintf(why, whylen, "policy %s pulls nothing in the background: nothing to push", ops->name);
		return -1;
	}
	struct pcb_push *e = calloc(1, sizeof(*e));
	if (!e || pcb_ps_init(&e->ps, npages) < 0) {
		free(e);
		snprintf(why, whylen, "out of memory for the push engine");
		return -1;
	}
	if (pcb_policy_parse_opts(&e->pol, ops, opts, why, whylen) < 0 ||
	    pcb_policy_open(&e->pol, ops, &e->ps, npages, 1, why, whylen) < 0) {
		pcb_ps_free(&e->ps);
		free(e);
		return -1;
	}
	e->batch_pages = w->batch_pages;
	*out = e;
	return 0;
}

void pcb_push_free(struct pcb_push *e)
{
	while (e) {
		struct pcb_push *o = e->older;
		pcb_policy_close(&e->pol);
		pcb_ps_free(&e->ps);
		free(e);
		e = o;
	}
}

void pcb_push_request(struct pcb_push *e, uint64_t page)
{
	if (page < e->ps.npages && e->pol.ops->on_fault)
		e->pol.ops->on_fault(&e->pol, page, pcb_now_ns());
}

bool pcb_push_in_stream(struct pcb_push *e, uint64_t page)
{
	return page < e->ps.npages && (pcb_ps_present(&e->ps, page) || pcb_bit_test(e->ps.claimed, page));
}

void pcb_push_sent(struct pcb_push *e, uint64_t first, uint64_t n)
{
	for (uint64_t i = 0; i < n && first + i < e->ps.npages; i++)
		pcb_ps_set_present(&e->ps, first + i);
}

unsigned pcb_push_next(struct pcb_push *e, struct pcb_range *r, unsigned *nr)
{
	struct pcb_batch b = { .r = r, .max_ranges = PCB_MAX_RANGES, .max_pages = e->batch_pages };
	unsigned n = e->pol.ops->next_batch(&e->pol, &b);
	/* the source moves every page: what the policy does not offer now goes in address order */
	if (!n)
		n = pcb_policy_fill_sequential(&e->pol, &b, &e->cursor);
	*nr = b.nr;
	return n;
}
