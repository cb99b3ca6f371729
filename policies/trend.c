/* trend: Leap's majority-trend prefetcher (Al Maruf & Chowdhury, USENIX
 * ATC 2020), as released: SymbioticLab/Leap mm/swap_state.c (read at commit
 * 7764030): log_swap_trend, find_trend / find_trend_in_region,
 * swapin_nr_pages, swapin_readahead.
 *
 * History (log_swap_trend): the deltas between successive accesses Leap
 * sees, the last `history` (32 in Leap's module set-up) of them.  Leap logs
 * every swap-in lookup, hits included; here a hit does not fault, so the
 * history holds the faults on missing pages plus, for each prefetched page
 * the guest is inferred to have used (below), one step along the trend.
 * FindTrend (find_trend): Boyer-Moore majority over the newest w deltas for
 * w = history/4, history/2, history; a trend when the candidate holds more
 * than w/2 of them (a delta of 0 is no trend).
 * Window (swapin_nr_pages with the custom prefetcher on): pages = hits + 2,
 * rounded up to a power of two starting at 4, capped at 1 << page_cluster
 * (`max-depth`, 8 pages with Linux's default page_cluster 3), and never
 * below half the previous window.  With a trend, the pages fault + k*delta,
 * k = 1 .. pages-1 (swapin_readahead's loop starts at the fault itself);
 * without, the rest of the pages-aligned block around the fault.
 *
 * Hits (Leap: swap-cache lookups that find a readahead page) are counted
 * from faults only, never from an oracle of the guest's accesses: a fault
 * on a prefetched page still in flight is a hit (Linux counts a swap-cache
 * hit whether or not its read has completed), and when the guest faults k
 * trend steps past the last trend prefetch's origin the k - 1 prefetched
 * pages in between were used without a fault.  A hit on a block prefetched
 * without a trend cannot be seen from faults and is not counted.
 *
 * Leap prefetches and otherwise waits for the next fault; post-copy must
 * also move every page, so after the trend's pages the rest is pulled in
 * address order (fill=address, the default), or not until the guest stops
 * (fill=none: Leap alone; the pager drains the rest). */
#include "policies/policy.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREND_RING 256               /* faults buffered between two background calls */
#define TREND_MAX_HISTORY 1024
#define TREND_MAX_DEPTH 4096

static const struct pcb_knob trend_knobs[] = {
	{ "history", "32", "access deltas kept, the largest majority window; the search starts at a quarter of it (4..1024)" },
	{ "max-depth", "8", "largest prefetch window in pages, Leap's 1 << page_cluster (1..4096)" },
	{ "fill", "address", "after the trend's pages: address (pull the rest in address order) or none (only trend prefetches until the guest stops)" },
	{ "oracle", "none", "first-touch: count hits from the guest's instrumented first-touch record (an upper bound: a real destination learns only from faults); none" },
	{ "batch-order", "address", "order inside one batch: address (sorted, neighbours merged into runs; the batch travels as one unit) or trend (as chosen)" },
	{ NULL, NULL, NULL },
};

struct trend_state {
	bool sort;                           /* batch-order=address */
	_Atomic uint64_t ring[TREND_RING];   /* faulting pages, written by the demand thread */
	_Atomic uint64_t nfaults;
	uint64_t seen;
	/* background thread only */
	unsigned hsize, hn, hhead;           /* history capacity, entries, next slot */
	int64_t *hist;                       /* deltas, circular */
	uint64_t last_fault;                 /* +1; 0 = none yet */
	uint64_t max_depth, depth;           /* PWsize_max, PWsize_{t-1} */
	int64_t trend;                       /* last majority delta found (0 = none) */
	bool fill_address;
	/* the current prefetch: pages from `next` along `stride`, `left` to go */
	uint64_t next, left;
	int64_t stride;
	/* pages prefetched (trend or around) not yet seen hit; hits counted from here */
	uint64_t *pend;
	unsigned npend, pend_cap;
	/* fault-based hit inference (no first-touch record) */
	uint64_t pf_from;                    /* fault the last trend prefetch started at (+1) */
	int64_t pf_stride;
	uint64_t pf_count;
	uint64_t cursor;                     /* address-order rest */
	/* for tests and the summary */
	uint64_t decisions, hits_total, last_depth;
};

static int trend_init(struct pcb_policy *p, char *why, size_t whylen)
{
	uint64_t h, md;
	if (pcb_policy_opt_u64(p, "history", 4, TREND_MAX_HISTORY, &h, why, whylen) < 0 ||
	    pcb_policy_opt_u64(p, "max-depth", 1, TREND_MAX_DEPTH, &md, why, whylen) < 0)
		return -1;
	if (md & (md - 1)) {
		snprintf(why, whylen, "invalid value for --policy-opt option max-depth: '%s' (want a power of two: Leap's 1 << page_cluster)",
			 pcb_policy_opt(p, "max-depth"));
		return -1;
	}
	const char *fill = pcb_policy_opt(p, "fill");
	if (strcmp(fill, "address") && strcmp(fill, "none")) {
		snprintf(why, whylen, "invalid value for --policy-opt option fill: '%s' (want address or none)", fill);
		return -1;
	}
	struct trend_state *s = calloc(1, sizeof(*s));
	if (s) {
		s->hist = calloc(h, sizeof(*s->hist));
		s->pend_cap = (unsigned)(2 * md);
		s->pend = calloc(s->pend_cap, sizeof(*s->pend));
	}
	if (!s || !s->hist || !s->pend) {
		if (s) {
			free(s->hist);
			free(s->pend);
		}
		free(s);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->hsize = (unsigned)h;
	s->max_depth = md;
	s->fill_address = !strcmp(fill, "address");
	const char *bo = pcb_policy_opt(p, "batch-order");
	if (strcmp(bo, "address") && strcmp(bo, "trend")) {
		snprintf(why, whylen, "invalid value for --policy-opt option batch-order: '%s' (want address or trend)", bo);
		free(s->hist);
		free(s->pend);
		free(s);
		return -1;
	}
	s->sort = !strcmp(bo, "address");
	p->priv = s;
	return 0;
}

static void trend_fini(struct pcb_policy *p)
{
	struct trend_state *s = p->priv;
	if (s) {
		free(s->hist);
		free(s->pend);
	}
	free(s);
	p->priv = NULL;
}

static void trend_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct trend_state *s = p->priv;
	if (pcb_ps_present(p->ps, page))
		return;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_relaxed);
	atomic_store_explicit(&s->ring[n % TREND_RING], page, memory_order_relaxed);
	atomic_store_explicit(&s->nfaults, n + 1, memory_order_release);
}

/* Boyer-Moore majority over the newest w deltas (fewer while the history
 * fills): the candidate if it holds more than w/2 of them, else 0. */
static int64_t majority(const struct trend_state *s, unsigned w)
{
	unsigned n = w < s->hn ? w : s->hn;
	int64_t cand = 0;
	unsigned votes = 0;
	for (unsigned i = 0; i < n; i++) {
		int64_t d = s->hist[(s->hhead + s->hsize - 1 - i) % s->hsize];
		if (!votes) {
			cand = d;
			votes = 1;
		} else {
			votes += d == cand ? 1u : (unsigned)-1;
		}
	}
	unsigned cnt = 0;
	for (unsigned i = 0; i < n; i++)
		cnt += s->hist[(s->hhead + s->hsize - 1 - i) % s->hsize] == cand;
	return cnt * 2 > w ? cand : 0;
}

/* Leap's find_trend: windows of a quarter, a half and all of the history. */
static int64_t find_trend(const struct trend_state *s)
{
	for (unsigned w = s->hsize / 4 ? s->hsize / 4 : 1; w <= s->hsize; w *= 2) {
		int64_t d = majority(s, w);
		if (d)
			return d;
	}
	return 0;
}

/* swapin_nr_pages: hits + 2 rounded up to a power of two, at least 4. */
static uint64_t leap_pages(uint64_t hits)
{
	uint64_t want = hits + 2, r = 4;
	while (r < want)
		r <<= 1;
	return r;
}

/* Prefetched pages the guest has used since the last decision, seen from
 * faults: a fault on a prefetched page (in flight), and the trend steps the
 * guest took without faulting. */
static uint64_t count_hits(struct trend_state *s, uint64_t fault)
{
	uint64_t hits = 0;
	unsigned k = 0;
	for (unsigned i = 0; i < s->npend; i++) {
		uint64_t pg = s->pend[i];
		if (pg == fault)
			hits++;
		else
			s->pend[k++] = pg;           /* not used yet: may still be */
	}
	s->npend = k;
	/* no record: the guest went k trend steps past the prefetch's origin with
	 * a fault only at the k-th: the k - 1 pages before it were used */
	if (s->pf_from && s->pf_stride) {
		int64_t dist = (int64_t)fault - (int64_t)(s->pf_from - 1);
		/* k steps past the origin, k <= prefetched + 1: the k - 1 before it were used
		 * (a fault further away is a jump: nothing can be inferred) */
		if (dist % s->pf_stride == 0 && dist / s->pf_stride > 1) {
			uint64_t k2 = (uint64_t)(dist / s->pf_stride) - 1;
			hits += k2 <= s->pf_count ? k2 : 0;
		}
	}
	return hits;
}

static void note_pending(struct trend_state *s, uint64_t page)
{
	if (s->npend == s->pend_cap) {          /* drop the oldest half */
		memmove(s->pend, s->pend + s->pend_cap / 2, (s->pend_cap - s->pend_cap / 2) * sizeof(*s->pend));
		s->npend -= s->pend_cap / 2;
	}
	s->pend[s->npend++] = page;
}

static void push_delta(struct trend_state *s, int64_t d)
{
	s->hist[s->hhead] = d;
	s->hhead = (s->hhead + 1) % s->hsize;
	s->hn += s->hn < s->hsize;
}

/* A fault (every one, in order): Leap's window size, history update and
 * trend; the newest fault of a call also sets up the prefetch. */
static void decide(struct trend_state *s, uint64_t fault, bool latest)
{
	if (s->last_fault && fault == s->last_fault - 1)
		return;                              /* the same page again (another vCPU): no information */
	uint64_t hits = count_hits(s, fault);
	s->hits_total += hits;
	/* Leap sees the hits as accesses too (in Linux a swap-cache hit still
	 * traps); here a hit does not fault, so the used pages of a trend
	 * prefetch enter the history as steps along its stride */
	if (hits && s->pf_stride && s->pf_from) {
		for (uint64_t i = 0; i < hits && i < s->hsize; i++)
			push_delta(s, s->pf_stride);
		s->last_fault = (uint64_t)((int64_t)(s->pf_from - 1) + (int64_t)hits * s->pf_stride) + 1;
	}
	if (s->last_fault) {
		int64_t d = (int64_t)fault - (int64_t)(s->last_fault - 1);
		if (d)
			push_delta(s, d);
	}
	s->last_fault = fault + 1;
	uint64_t w = leap_pages(hits);
	if (w > s->max_depth)
		w = s->max_depth;
	if (w < s->depth / 2)
		w = s->depth / 2;                    /* "don't shrink readahead too fast" */
	s->depth = w;
	s->last_depth = w;
	s->decisions++;
	s->trend = find_trend(s);
	s->pf_from = 0;
	if (!latest)
		return;                              /* only the newest fault prefetches */
	s->left = 0;
	if (w <= 1)
		return;
	if (s->trend) {
		s->stride = s->trend;
		s->next = fault;                     /* first page: fault + trend */
		s->left = w - 1;
		s->pf_from = fault + 1;
		s->pf_stride = s->trend;
		s->pf_count = w - 1;
	} else {
		/* the w-aligned block around the fault (Leap's "usual" path) */
		uint64_t start = fault & ~(w - 1);
		s->stride = 1;
		s->next = start ? start - 1 : UINT64_MAX;   /* UINT64_MAX + 1 = page 0 */
		s->left = w;
	}
}

static unsigned trend_fill(struct pcb_policy *p, struct pcb_batch *b)
{
	struct trend_state *s = p->priv;
	uint64_t n = atomic_load_explicit(&s->nfaults, memory_order_acquire);
	if (n != s->seen) {
		uint64_t from = n - s->seen > TREND_RING ? n - TREND_RING : s->seen;
		for (uint64_t i = from; i < n; i++)
			decide(s, atomic_load_explicit(&s->ring[i % TREND_RING], memory_order_relaxed), i + 1 == n);
		s->seen = n;
	}
	unsigned added = 0;
	while (s->left) {
		int64_t nx = (int64_t)s->next + s->stride;
		if (nx < 0 || (uint64_t)nx >= p->npages) {
			s->left = 0;
			break;
		}
		int r = pcb_batch_add(p->ps, b, (uint64_t)nx);
		if (r < 0)
			return added;
		if (r > 0)
			note_pending(s, (uint64_t)nx);
		added += (unsigned)r;
		s->next = (uint64_t)nx;
		s->left--;
	}
	if (!s->fill_address)
		return added;
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

static unsigned trend_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct trend_state *s = p->priv;
	unsigned n = trend_fill(p, b);
	if (s->sort)
		pcb_batch_sort(b);
	return n;
}

const struct pcb_policy_ops pcb_policy_trend = {
	.abi = PCB_POLICY_ABI,
	.name = "trend",
	.help = "Leap (mm/swap_state.c): majority delta over 8/16/32 accesses, window hits+2 rounded to a power of two (4..8 pages), along the trend or the aligned block; hits from faults only; then address order",
	.background = true,
	.knobs = trend_knobs,
	.init = trend_init,
	.fini = trend_fini,
	.on_fault = trend_on_fault,
	.next_batch = trend_next_batch,
	.end = PCB_POLICY_DEST,
};
