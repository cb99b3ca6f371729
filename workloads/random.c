/* random: uniform random pages. */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdlib.h>

struct rnd_ts {
	struct pcb_rng rng;
	uint64_t npages;
};

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

static void rnd_next(void *ts, struct pcb_access *a)
{
	struct rnd_ts *s = ts;
	a->page = pcb_rng_below(&s->rng, s->npages);
}

const struct pcb_workload_ops pcb_workload_random = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "random",
	.help = "uniformly random pages over the whole region",
	.thread_init = rnd_thread_init,
	.thread_fini = free,
	.next = rnd_next,
};
