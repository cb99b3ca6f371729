/* pivot: active push with adaptive pre-paging, "bubbling" with multiple
 * pivots (Hines & Gopalan, VEE 2009, section 3.2).  Every fault on a missing
 * page becomes a pivot; around each pivot a bubble grows outward, one page
 * forward then one page backward (P+1, P-1, P+2, P-2, ...).  Up to `pivots`
 * bubbles are active at once and take turns, `step` pages per edge per
 * turn, newest pivot first; a new fault replaces a finished bubble or else
 * the oldest one.  An edge stops at the region's end, at `max-radius` pages
 * from its pivot, or where it meets a page another bubble has already sent
 * (bubbles do not grow through each other); pages the guest faulted in
 * itself are stepped over.  With no active bubble (no fault yet, or all
 * finished) the rest is pulled in address order, so every page is still
 * sent exactly once (pcb_batch_add claims each page once). */
#include "policies/policy.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIVOT_RING 64            /* faults buffered between two background calls; older ones are stale */
#define PIVOT_MAX 64

static const struct pcb_knob pivot_knobs[] = {
	{ "pivots", "4", "active bubbles (1..64); a new fault replaces a finished or else the oldest one" },
	{ "max-radius", "0", "pages a bubble grows each way from its pivot before it stops (0 = until it meets another bubble)" },
	{ "step", "1", "pages per edge per turn (1 = strictly alternating P+1, P-1, ...; larger makes longer runs)" },
	{ "batch-order", "address", "order inside one batch: address (sorted, neighbours merged into runs; the batch travels as one unit) or bubble (as chosen)" },
	{ NULL, NULL, NULL },
};

struct bubble {
	uint64_t pivot;
	uint64_t fwd, bwd;           /* next page to try each way (bwd: page + 1, 0 = below page 0) */
	bool fwd_on, bwd_on;
	uint64_t born;               /* sequence number: oldest is replaced */
};

struct pivot_state {
	bool sort;                           /* batch-order=address */
	_Atomic uint64_t ring[PIVOT_RING];   /* faulting pages, written by the demand thread */
	_Atomic uint64_t nfaults;
	uint64_t seen;
	unsigned npiv, turn;
	uint64_t max_radius, step, born;
	struct bubble b[PIVOT_MAX];
	uint64_t cursor;                     /* address-order rest */
};

static int pivot_init(struct pcb_policy *p, char *why, size_t whylen)
{
	uint64_t np, mr, st;
	if (pcb_policy_opt_u64(p, "pivots", 1, PIVOT_MAX, &np, why, whylen) < 0 ||
	    pcb_policy_opt_u64(p, "max-radius", 0, UINT64_MAX / 2, &mr, why, whylen) < 0 ||
	    pcb_policy_opt_u64(p, "step", 1, 4096, &st, why, whylen) < 0)
		return -1;
	struct pivot_state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->npiv = (unsigned)np;
	const char *bo = pcb_policy_opt(p, "batch-order");
	if (strcmp(bo, "address") && strcmp(bo, "bubble")) {
		snprintf(why, whylen, "invalid value for --policy-opt option batch-order: '%s' (want address or bubble)", bo);
		free(s);
		return -1;
	}
	s->sort = !strcmp(bo, "address");
	s->max_radius = mr ? mr : UINT64_MAX / 2;
	s->step = st;
	p->priv = s;
	return 0;
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
	if (pcb_ps_present(p->ps, page))
		return;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_relaxed);
	atomic_store_explicit(&s->ring[n % PIVOT_RING], page, memory_order_relaxed);
	atomic_store_explicit(&s->nfaults, n + 1, memory_order_release);
}

static bool alive(const struct bubble *b)
{
	return b->fwd_on || b->bwd_on;
}

static void add_pivot(struct pcb_policy *p, struct pivot_state *s, uint64_t page)
{
	if (page >= p->npages)
		return;
	unsigned slot = 0;
	for (unsigned i = 0; i < s->npiv; i++) {
		if (alive(&s->b[i]) && s->b[i].pivot == page)
			return;                          /* already a pivot */
		if (!alive(&s->b[i])) {
			if (alive(&s->b[slot]))
				slot = i;                /* a finished bubble goes first */
		} else if (alive(&s->b[slot]) && s->b[i].born < s->b[slot].born) {
			slot = i;                        /* else the oldest */
		}
	}
	s->b[slot] = (struct bubble){ .pivot = page, .fwd = page + 1, .bwd = page, .fwd_on = true, .bwd_on = page > 0,
				     .born = ++s->born };
	s->turn = slot;                                  /* the newest pivot expands first */
}

/* Grow one edge of bb by up to s->step pages.  Returns -1 when the batch is full. */
static int grow(struct pcb_policy *p, struct pivot_state *s, struct bubble *bb, bool fwd, struct pcb_batch *b,
		unsigned *added)
{
	bool *on = fwd ? &bb->fwd_on : &bb->bwd_on;
	for (uint64_t k = 0; k < s->step && *on;) {
		uint64_t pg = fwd ? bb->fwd : bb->bwd - 1;
		uint64_t dist = fwd ? pg - bb->pivot : bb->pivot - pg;
		if ((fwd && pg >= p->npages) || dist > s->max_radius || pcb_bit_test(p->ps->claimed, pg)) {
			*on = false;             /* region end, radius, or another bubble's (or the sweep's) page */
			break;
		}
		int r = pcb_batch_add(p->ps, b, pg);
		if (r < 0)
			return -1;
		/* r == 0: present or demanded (the guest faulted it in): stepped over */
		*added += (unsigned)r;
		k += (unsigned)r;
		if (fwd) {
			bb->fwd++;
		} else if (--bb->bwd == 0) {
			bb->bwd_on = false;
		}
	}
	return 0;
}

static unsigned pivot_fill(struct pcb_policy *p, struct pcb_batch *b)
{
	struct pivot_state *s = p->priv;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_acquire);
	/* only the newest faults matter: the last `pivots` of those since the last call */
	uint64_t from = n - s->seen > s->npiv ? n - s->npiv : s->seen;
	for (uint64_t i = from; i < n; i++)
		add_pivot(p, s, atomic_load_explicit(&s->ring[i % PIVOT_RING], memory_order_relaxed));
	s->seen = n;
	unsigned added = 0;
	for (;;) {
		unsigned t, k;
		for (k = 0, t = s->turn; k < s->npiv && !alive(&s->b[t]); k++)
			t = (t + 1) % s->npiv;
		if (k == s->npiv)
			break;                   /* no active bubble: address order */
		struct bubble *bb = &s->b[t];
		if (grow(p, s, bb, true, b, &added) < 0 || grow(p, s, bb, false, b, &added) < 0)
			return added;
		s->turn = (t + 1) % s->npiv;
	}
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

static unsigned pivot_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct pivot_state *s = p->priv;
	unsigned n = pivot_fill(p, b);
	if (s->sort)
		pcb_batch_sort(b);
	return n;
}

const struct pcb_policy_ops pcb_policy_pivot = {
	.abi = PCB_POLICY_ABI,
	.name = "pivot",
	.help = "Hines & Gopalan bubbling: grow outward (P+1, P-1, P+2, ...) around the last faults, several pivots in turn, then address order",
	.background = true,
	.knobs = pivot_knobs,
	.init = pivot_init,
	.fini = pivot_fini,
	.on_fault = pivot_on_fault,
	.next_batch = pivot_next_batch,
	.end = PCB_POLICY_SOURCE,       /* Hines & Gopalan: the source pushes actively */
};
