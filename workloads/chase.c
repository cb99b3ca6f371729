/* chase: pointer chasing through one random cyclic permutation of all pages
 * (Sattolo's algorithm), so a cycle visits every page exactly once.  The
 * address of each access is computed from the value the previous access
 * loaded (word 0 of the page, folded with its expected value), so an access
 * cannot start before the previous one completed -- no memory-level
 * parallelism, as in a linked-list walk.  Every access is a read (the
 * pointer load): --write-ratio does not apply.  vCPU v starts v/N of the way
 * round the cycle. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdio.h>
#include <stdlib.h>
#endif

struct chase_shared {
	uint32_t *succ;              /* page -> next page on the cycle */
	uint32_t *order;             /* position on the cycle -> page */
	const struct pcb_image *im;
	uint64_t n;
};

struct chase_ts {
	struct chase_shared *c;
	uint64_t cur;
	bool started;
};

#ifndef PCB_GUEST
static int chase_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	if (prm->npages > UINT32_MAX) {
		snprintf(why, whylen, "chase supports at most 2^32 pages");
		return -1;
	}
	struct chase_shared *c = calloc(1, sizeof(*c));
	if (!c)
		return -PCB_EXIT_OSERR;
	uint64_t n = prm->npages;
	c->im = prm->im;
	c->n = n;
	c->order = malloc(n * sizeof(uint32_t));
	c->succ = malloc(n * sizeof(uint32_t));
	if (!c->order || !c->succ) {
		free(c->order);
		free(c->succ);
		free(c);
		return -PCB_EXIT_OSERR;
	}
	/* Sattolo: a uniformly random single cycle. */
	struct pcb_rng r;
	pcb_rng_seed(&r, prm->seed, 0x6368617365ull);
	for (uint64_t i = 0; i < n; i++)
		c->order[i] = (uint32_t)i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = pcb_rng_below(&r, i);
		uint32_t t = c->order[i];
		c->order[i] = c->order[j];
		c->order[j] = t;
	}
	for (uint64_t i = 0; i < n; i++)
		c->succ[c->order[i]] = c->order[(i + 1) % n];
	*shared = c;
	return 0;
}

static void chase_fini(void *shared)
{
	struct chase_shared *c = shared;
	if (c) {
		free(c->succ);
		free(c->order);
	}
	free(c);
}

static int chase_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct chase_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->c = shared;
	s->cur = s->c->order[prm->npages * vcpu / (prm->nvcpus ? prm->nvcpus : 1)];
	*ts = s;
	return 0;
}

/* --guest=kvm: the successor table and the image parameters go into guest memory */
static int chase_export(void *ts_copy, void *shared, uint64_t (*put)(void *ctx, const void *p, size_t len), void *ctx)
{
	struct chase_ts *t = ts_copy;
	const struct chase_shared *c = shared;
	struct chase_shared g = { .n = c->n };
	struct pcb_image gim = *c->im;   /* its zero-page map (--zero-model=runs) goes too, at a guest address */
	if (gim.zero_map) {
		uint64_t zm = put(ctx, gim.zero_map, ((gim.npages + 63) / 64 + 1) * sizeof(uint64_t));
		if (!zm)
			return -1;
		gim.zero_map = (const uint64_t *)(uintptr_t)zm;
	}
	uint64_t succ = put(ctx, c->succ, c->n * sizeof(uint32_t)), im = put(ctx, &gim, sizeof(gim));
	if (!succ || !im)
		return -1;
	g.succ = (uint32_t *)(uintptr_t)succ;
	g.im = (const struct pcb_image *)(uintptr_t)im;
	uint64_t gs = put(ctx, &g, sizeof(g));
	if (!gs)
		return -1;
	t->c = (struct chase_shared *)(uintptr_t)gs;
	return 0;
}
#endif

static void chase_next(void *ts, struct pcb_access *a)
{
	struct chase_ts *s = ts;
	if (s->started) {
		/* the loaded word folded with its expected value is 0 when the
		 * page is right: the next address depends on the load */
		uint64_t fold = a->prev ^ (s->c->im ? pcb_image_word(s->c->im, s->cur, 0) : a->prev);
		s->cur = (s->c->succ[s->cur] ^ (uint32_t)fold) % s->c->n;   /* a bad page cannot send it outside the region */
	}
	s->started = true;
	a->page = s->cur;
	a->kind = PCB_ACC_READ;
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(chase, chase_next)
#else
const struct pcb_workload_ops pcb_workload_chase = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "chase",
	.help = "pointer chase round a random cycle of all pages; each address depends on the previous load (reads only)",
	.init = chase_init,
	.fini = chase_fini,
	.thread_init = chase_thread_init,
	.thread_fini = free,
	.next = chase_next,
	.guest_ts_size = sizeof(struct chase_ts),
	.guest_export = chase_export,
};
#endif
