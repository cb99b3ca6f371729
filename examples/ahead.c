/* ahead: a complete example policy built outside pcbench (`make examples`
 * builds build/examples/ahead.so; run it with --policy=./build/examples/ahead.so).
 * docs/writing-a-policy.md walks through it.
 *
 * On every fault it prefetches the `ahead` pages that follow the faulting
 * page, then pulls the rest in address order.  It runs at the destination by
 * default (--policy-end=source runs it in the source page server instead,
 * where on_fault is told of each demand request as the source receives it).
 *
 * Rules every policy follows (policies/policy.h):
 *   - on_fault runs on the thread that sees faults (or demand requests): keep
 *     it cheap, lock-free, and hand the page to next_batch through atomics;
 *   - next_batch adds pages with pcb_batch_add(), which claims each page at
 *     most once and refuses pages already present, demanded or claimed, so a
 *     policy cannot send a page twice;
 *   - pcb_policy_fill_sequential() moves what is left, so every page arrives. */
#include "policies/policy.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* The two symbols pcbench looks up (PCB_POLICY_SO_ABI, PCB_POLICY_SO_OPS). */
extern const unsigned pcb_policy_abi;
extern const struct pcb_policy_ops pcb_policy_ops;
const unsigned pcb_policy_abi = PCB_POLICY_ABI;

static const struct pcb_knob ahead_knobs[] = {
	{ "ahead", "8", "pages prefetched after each faulting page (1..4096)" },
	{ NULL, NULL, NULL },
};

struct ahead_state {
	_Atomic uint64_t last_fault;    /* page + 1 of the newest fault, 0 = none new */
	uint64_t ahead;
	uint64_t next, left;            /* the prefetch being sent */
	uint64_t cursor;                /* address-order rest */
};

static int ahead_init(struct pcb_policy *p, char *why, size_t whylen)
{
	uint64_t a;
	if (pcb_policy_opt_u64(p, "ahead", 1, 4096, &a, why, whylen) < 0)
		return -1;                      /* the reason names the bad value; the run exits 64 */
	struct ahead_state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->ahead = a;
	p->priv = s;
	return 0;
}

static void ahead_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static void ahead_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct ahead_state *s = p->priv;
	atomic_store_explicit(&s->last_fault, page + 1, memory_order_relaxed);
}

static unsigned ahead_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct ahead_state *s = p->priv;
	uint64_t f = atomic_exchange_explicit(&s->last_fault, 0, memory_order_relaxed);
	if (f) {                                /* a new fault: prefetch after it */
		s->next = f;                    /* = fault + 1 */
		s->left = s->ahead;
	}
	unsigned added = 0;
	while (s->left && s->next < p->npages) {
		int r = pcb_batch_add(p->ps, b, s->next);
		if (r < 0)
			return added;           /* batch full: go on next call */
		added += (unsigned)r;           /* 0: already there or taken */
		s->next++;
		s->left--;
	}
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

const struct pcb_policy_ops pcb_policy_ops = {
	.abi = PCB_POLICY_ABI,
	.name = "ahead",
	.help = "example (examples/ahead.c): the `ahead` pages after each fault, then address order",
	.background = true,
	.knobs = ahead_knobs,
	.init = ahead_init,
	.fini = ahead_fini,
	.on_fault = ahead_on_fault,
	.next_batch = ahead_next_batch,
	.end = PCB_POLICY_DEST,
};
