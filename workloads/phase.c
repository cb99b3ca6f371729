/* phase: a hot working set that moves.  During phase i = t / phase-ms the
 * hot set is a window of hot*N pages starting at a seeded pseudo-random
 * page; hot-access of the accesses go uniformly to it, the rest uniformly to
 * the whole region.  Time is the guest's own (since switch-over), so the
 * sequence of pages is seeded but where phases change depends on speed. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdio.h>
#include <stdlib.h>
#endif

#ifndef PCB_GUEST
static const struct pcb_knob phase_knobs[] = {
	{ "phase-ms", "100", "the hot set moves every this many milliseconds" },
	{ "hot", "0.05", "hot set size as a fraction of the region" },
	{ "hot-access", "0.9", "fraction of accesses that go to the hot set" },
	{ NULL, NULL, NULL },
};
#endif

struct phase_cfg {
	uint64_t phase_ns, hot_pages, npages, seed;
	uint64_t hot_thresh;          /* an access goes to the hot set iff rng < hot_thresh (integer: the KVM guest has no FPU state) */
};

struct phase_ts {
	struct phase_cfg c;
	struct pcb_rng rng;
	uint64_t phase, start;
};

#ifndef PCB_GUEST
extern const struct pcb_workload_ops pcb_workload_phase;
#endif

#ifndef PCB_GUEST
static int phase_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_phase;
	uint64_t ms;
	double hot, hot_access;
	struct phase_cfg c = { .npages = prm->npages, .seed = prm->seed };
	if (pcb_wl_opt_u64(o, prm, "phase-ms", 1, 3600000, &ms, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "hot", 1e-9, 1, &hot, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "hot-access", 0, 1, &hot_access, why, whylen) < 0)
		return -1;
	c.hot_thresh = hot_access >= 1.0 ? UINT64_MAX : (uint64_t)(hot_access * 18446744073709551616.0);
	c.phase_ns = ms * PCB_NSEC_PER_MSEC;
	c.hot_pages = (uint64_t)(hot * (double)prm->npages);
	if (c.hot_pages < 1)
		c.hot_pages = 1;
	struct phase_cfg *p = malloc(sizeof(*p));
	if (!p)
		return -PCB_EXIT_OSERR;
	*p = c;
	*shared = p;
	return 0;
}
#endif

/* First page of phase i's hot window (the same for every vCPU). */
static uint64_t phase_start(const struct phase_cfg *c, uint64_t i)
{
	return pcb_mix64(c->seed ^ (i * 0x9e3779b97f4a7c15ull) ^ 0x7068617365ull) % c->npages;
}

#ifndef PCB_GUEST
static int phase_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct phase_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->c = *(struct phase_cfg *)shared;
	pcb_rng_seed(&s->rng, prm->seed, 0x706800ull + vcpu);
	s->start = phase_start(&s->c, 0);
	*ts = s;
	return 0;
}
#endif

static void phase_next(void *ts, struct pcb_access *a)
{
	struct phase_ts *s = ts;
	uint64_t ph = a->now_ns / s->c.phase_ns;
	if (ph != s->phase) {
		s->phase = ph;
		s->start = phase_start(&s->c, ph);
	}
	if (pcb_rng_next(&s->rng) < s->c.hot_thresh)
		a->page = (s->start + pcb_rng_below(&s->rng, s->c.hot_pages)) % s->c.npages;
	else
		a->page = pcb_rng_below(&s->rng, s->c.npages);
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(phase, phase_next)
#else
const struct pcb_workload_ops pcb_workload_phase = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "phase",
	.help = "hot working set (hot, hot-access) that moves to a new window every phase-ms",
	.knobs = phase_knobs,
	.init = phase_init,
	.fini = free,
	.thread_init = phase_thread_init,
	.thread_fini = free,
	.guest_ts_size = sizeof(struct phase_ts),
	.next = phase_next,
};
#endif
