/* zipf: a Zipfian hot set (Gray et al., as in YCSB) over ranks, with ranks
 * scattered over the region by a seeded permutation so hot pages are not
 * neighbours.  --zipf-theta in (0, 1); 0.99 is YCSB's default. */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>

struct zipf_shared {
	struct pcb_zipf z;
	uint32_t *perm;   /* rank -> page */
};

struct zipf_ts {
	struct zipf_shared *z;
	struct pcb_rng rng;
};

static int zipf_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	if (prm->npages > UINT32_MAX) {
		snprintf(why, whylen, "zipf supports at most 2^32 pages");
		return -1;
	}
	struct zipf_shared *z = calloc(1, sizeof(*z));
	if (!z)
		return -PCB_EXIT_OSERR;
	if (pcb_zipf_init(&z->z, prm->npages, prm->zipf_theta) < 0) {
		snprintf(why, whylen, "zipf needs 0 < theta < 1, got %g", prm->zipf_theta);
		free(z);
		return -1;
	}
	z->perm = pcb_perm_new(prm->npages, prm->seed, 0x7a697066ull);
	if (!z->perm) {
		free(z);
		return -PCB_EXIT_OSERR;
	}
	*shared = z;
	return 0;
}

static void zipf_fini(void *shared)
{
	struct zipf_shared *z = shared;
	if (z)
		free(z->perm);
	free(z);
}

static int zipf_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct zipf_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->z = shared;
	pcb_rng_seed(&s->rng, prm->seed, 0x7a6970660000ull + vcpu);
	*ts = s;
	return 0;
}

static void zipf_next(void *ts, struct pcb_access *a)
{
	struct zipf_ts *s = ts;
	a->page = s->z->perm[pcb_zipf_rank(&s->z->z, &s->rng)];
}

const struct pcb_workload_ops pcb_workload_zipf = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "zipf",
	.help = "Zipfian hot set (--zipf-theta, default 0.99), hot pages scattered over the region",
	.init = zipf_init,
	.fini = zipf_fini,
	.thread_init = zipf_thread_init,
	.thread_fini = free,
	.next = zipf_next,
};
