/* seq: a sequential scan.  vCPU v of n starts at page v*N/n and walks up,
 * wrapping, so together they sweep the region like a memory scan. */
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdlib.h>
#endif

struct seq_ts {
	uint64_t pos, npages;
};

#ifndef PCB_GUEST
static int seq_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	(void)shared;
	struct seq_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->npages = prm->npages;
	s->pos = prm->npages * vcpu / (prm->nvcpus ? prm->nvcpus : 1);
	*ts = s;
	return 0;
}
#endif

static void seq_next(void *ts, struct pcb_access *a)
{
	struct seq_ts *s = ts;
	a->page = s->pos;
	if (++s->pos == s->npages)
		s->pos = 0;
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(seq, seq_next)
#else
const struct pcb_workload_ops pcb_workload_seq = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "seq",
	.help = "sequential scan; vCPU v starts at v/N of the region and wraps",
	.thread_init = seq_thread_init,
	.thread_fini = free,
	.guest_ts_size = sizeof(struct seq_ts),
	.next = seq_next,
};
#endif
