/* trend: detect a stride in the recent faults and pre-page ahead along it.
 * The last four faulting pages give three deltas; when they agree (a
 * sequential scan forward or backward, or a constant stride), pages
 * f + s, f + 2s, ... are pulled ahead of the guest, with a window that
 * doubles while the trend holds (like the kernel's readahead) and resets
 * when it breaks.  Without a trend, the rest is pulled in address order. */
#include "pager/policy.h"
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>

#define TREND_HIST 4
#define TREND_MIN_WINDOW 16
#define TREND_MAX_WINDOW 8192
#define TREND_MAX_STRIDE 4096

struct trend_state {
	_Atomic uint64_t ring[TREND_HIST];   /* faulting pages, written by the demand thread */
	_Atomic uint64_t nfaults;
	uint64_t seen;                       /* nfaults at the last evaluation */
	int64_t stride;                      /* 0 = no trend */
	uint64_t next;                       /* next page along the trend */
	uint64_t left;                       /* pages left in the current window */
	uint64_t window;
	uint64_t cursor;                     /* address-order fallback */
};

static int trend_init(struct pcb_policy *p, char *why, size_t whylen)
{
	snprintf(why, whylen, "out of memory");
	struct trend_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->window = TREND_MIN_WINDOW;
	p->priv = s;
	return 0;
}

static void trend_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static void trend_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct trend_state *s = p->priv;
	if (pcb_ps_present(p->ps, page))
		return;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_relaxed);
	atomic_store_explicit(&s->ring[n % TREND_HIST], page, memory_order_relaxed);
	atomic_store_explicit(&s->nfaults, n + 1, memory_order_release);
}

static void evaluate(struct pcb_policy *p, struct trend_state *s, uint64_t n)
{
	int64_t f[TREND_HIST];
	for (unsigned i = 0; i < TREND_HIST; i++)
		f[i] = (int64_t)atomic_load_explicit(&s->ring[(n - TREND_HIST + i) % TREND_HIST], memory_order_relaxed);
	int64_t d1 = f[1] - f[0], d2 = f[2] - f[1], d3 = f[3] - f[2];
	int64_t st = 0;
	if (d3 != 0 && d3 == d2 && d2 == d1 && llabs(d3) <= TREND_MAX_STRIDE)
		st = d3;
	if (st && st == s->stride) {
		s->window = s->window * 2 > TREND_MAX_WINDOW ? TREND_MAX_WINDOW : s->window * 2;
	} else {
		s->window = TREND_MIN_WINDOW;
	}
	s->stride = st;
	if (st) {
		int64_t nx = f[3] + st;
		s->next = nx >= 0 && (uint64_t)nx < p->npages ? (uint64_t)nx : p->npages;
		s->left = s->window;
	} else {
		s->left = 0;
	}
}

static unsigned trend_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct trend_state *s = p->priv;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_acquire);
	unsigned added = 0;
	if (n != s->seen && n >= TREND_HIST) {
		s->seen = n;
		evaluate(p, s, n);
	}
	while (s->stride && s->left && s->next < p->npages) {
		int r = pcb_batch_add(p->ps, b, s->next);
		if (r < 0)
			return added;
		added += (unsigned)r;
		s->left--;
		int64_t nx = (int64_t)s->next + s->stride;
		s->next = nx >= 0 && (uint64_t)nx < p->npages ? (uint64_t)nx : p->npages;
	}
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

const struct pcb_policy_ops pcb_policy_trend = {
	.abi = PCB_POLICY_ABI,
	.name = "trend",
	.help = "detect a stride in the last faults and pull ahead along it (doubling window), else address order",
	.background = true,
	.init = trend_init,
	.fini = trend_fini,
	.on_fault = trend_on_fault,
	.next_batch = trend_next_batch,
};
