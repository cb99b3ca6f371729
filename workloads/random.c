/* random: uniform random pages. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdlib.h>
#endif

struct rnd_ts {
	struct pcb_rng rng;
	uint64_t npages;
};

#ifndef PCB_GUEST
static int rnd_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	(void)shared;
	struct rnd_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pcb_rng_seed(&s->rng, prm->seed, 0x72616e64ull + vcpu);
	s->npages = prm->npages;
	*ts = s;
	return 0;
}
#endif

static void rnd_next(void *ts, struct pcb_access *a)
{
	struct rnd_ts *s = ts;
	a->page = pcb_rng_below(&s->rng, s->npages);
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(random, rnd_next)
#else
const struct pcb_workload_ops pcb_workload_random = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "random",
	.help = "uniformly random pages over the whole region",
	.thread_init = rnd_thread_init,
	.thread_fini = free,
	.guest_ts_size = sizeof(struct rnd_ts),
	.next = rnd_next,
};
#endif
