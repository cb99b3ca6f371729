/* zipf: a Zipfian hot set (Gray et al., as in YCSB) over ranks, with ranks
 * scattered over the region by a seeded permutation so hot pages are not
 * neighbours.  --zipf-theta in (0, 1); 0.99 is YCSB's default. */
#include "common/util.h"
#include "workloads/workload.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct zipf_shared {
	uint64_t n;
	double theta, zetan, alpha, eta, half_pow_theta;
	uint32_t *perm;   /* rank -> page */
};

struct zipf_ts {
	struct zipf_shared *z;
	struct pcb_rng rng;
};

static int zipf_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	double theta = prm->zipf_theta;
	if (!(theta > 0 && theta < 1)) {
		snprintf(why, whylen, "zipf needs 0 < theta < 1, got %g", theta);
		return -1;
	}
	if (prm->npages > UINT32_MAX) {
		snprintf(why, whylen, "zipf supports at most 2^32 pages");
		return -1;
	}
	struct zipf_shared *z = calloc(1, sizeof(*z));
	if (!z)
		return -1;
	z->n = prm->npages;
	z->theta = theta;
	z->perm = malloc(z->n * sizeof(uint32_t));
	if (!z->perm) {
		free(z);
		return -1;
	}
	double zetan = 0;
	for (uint64_t i = 1; i <= z->n; i++)
		zetan += 1.0 / pow((double)i, theta);
	double zeta2 = 1.0 + 1.0 / pow(2.0, theta);
	z->zetan = zetan;
	z->alpha = 1.0 / (1.0 - theta);
	z->eta = (1.0 - pow(2.0 / (double)z->n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
	z->half_pow_theta = 1.0 + pow(0.5, theta);
	struct pcb_rng r;
	pcb_rng_seed(&r, prm->seed, 0x7a697066ull);
	for (uint64_t i = 0; i < z->n; i++)
		z->perm[i] = (uint32_t)i;
	for (uint64_t i = z->n - 1; i > 0; i--) {
		uint64_t j = pcb_rng_below(&r, i + 1);
		uint32_t t = z->perm[i];
		z->perm[i] = z->perm[j];
		z->perm[j] = t;
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

/* Rank in [0, n): rank 0 is the hottest. */
static uint64_t zipf_rank(struct zipf_ts *s)
{
	struct zipf_shared *z = s->z;
	double u = pcb_rng_double(&s->rng);
	double uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return z->n > 1 ? 1 : 0;
	uint64_t r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return r < z->n ? r : z->n - 1;
}

static uint64_t zipf_next(void *ts)
{
	struct zipf_ts *s = ts;
	return s->z->perm[zipf_rank(s)];
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
