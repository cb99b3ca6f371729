/* idle: a guest that touches almost nothing: one access every interval-us
 * to a small working set of `pages` pages (a window at a seeded place).
 * Between accesses the vCPU sleeps like a halted CPU.  Total migration time
 * with no guest pressure. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdio.h>
#include <stdlib.h>
#endif

#ifndef PCB_GUEST
static const struct pcb_knob idle_knobs[] = {
	{ "pages", "64", "size of the working set in pages" },
	{ "interval-us", "1000", "one access every this many microseconds" },
	{ NULL, NULL, NULL },
};
#endif

struct idle_cfg {
	uint64_t pages, start, npages, interval_ns;
};

struct idle_ts {
	struct idle_cfg c;
	struct pcb_rng rng;
};

#ifndef PCB_GUEST
extern const struct pcb_workload_ops pcb_workload_idle;
#endif

#ifndef PCB_GUEST
static int idle_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_idle;
	struct idle_cfg c = { .npages = prm->npages };
	uint64_t us;
	if (pcb_wl_opt_u64(o, prm, "pages", 1, prm->npages, &c.pages, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "interval-us", 1, 4000000, &us, why, whylen) < 0)
		return -1;
	c.interval_ns = us * PCB_NSEC_PER_USEC;
	c.start = pcb_mix64(prm->seed ^ 0x69646c65ull) % prm->npages;
	struct idle_cfg *p = malloc(sizeof(*p));
	if (!p)
		return -PCB_EXIT_OSERR;
	*p = c;
	*shared = p;
	return 0;
}
#endif

#ifndef PCB_GUEST
static int idle_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct idle_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->c = *(struct idle_cfg *)shared;
	pcb_rng_seed(&s->rng, prm->seed, 0x69640000ull + vcpu);
	*ts = s;
	return 0;
}
#endif

static void idle_next(void *ts, struct pcb_access *a)
{
	struct idle_ts *s = ts;
	a->page = (s->c.start + pcb_rng_below(&s->rng, s->c.pages)) % s->c.npages;
	a->think_ns = (uint32_t)s->c.interval_ns;
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(idle, idle_next)
#else
const struct pcb_workload_ops pcb_workload_idle = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "idle",
	.help = "almost idle: one access every interval-us to a small working set (pages)",
	.knobs = idle_knobs,
	.init = idle_init,
	.fini = free,
	.thread_init = idle_thread_init,
	.thread_fini = free,
	.next = idle_next,
	.guest_ts_size = sizeof(struct idle_ts),
};
#endif
