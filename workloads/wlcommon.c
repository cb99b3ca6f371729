/* Helpers shared by generators: Zipfian ranks and seeded permutations. */
#include "common/util.h"
#include "workloads/workload.h"
#include <math.h>
#include <stdlib.h>

int pcb_zipf_init(struct pcb_zipf *z, uint64_t n, double theta)
{
	if (!(theta > 0 && theta < 1) || n == 0)
		return -1;
	double zetan = 0;
	for (uint64_t i = 1; i <= n; i++)
		zetan += 1.0 / pow((double)i, theta);
	double zeta2 = 1.0 + 1.0 / pow(2.0, theta);
	z->n = n;
	z->theta = theta;
	z->zetan = zetan;
	z->alpha = 1.0 / (1.0 - theta);
	z->eta = n > 1 ? (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan) : 0;
	z->half_pow_theta = 1.0 + pow(0.5, theta);
	return 0;
}

/* Rank in [0, n): rank 0 is the hottest. */
uint64_t pcb_zipf_rank(const struct pcb_zipf *z, struct pcb_rng *r)
{
	double u = pcb_rng_double(r);
	double uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return z->n > 1 ? 1 : 0;
	uint64_t k = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return k < z->n ? k : z->n - 1;
}

uint32_t *pcb_perm_new(uint64_t n, uint64_t seed, uint64_t stream)
{
	if (n > UINT32_MAX)
		return NULL;
	uint32_t *p = malloc((n ? n : 1) * sizeof(uint32_t));
	if (!p)
		return NULL;
	struct pcb_rng r;
	pcb_rng_seed(&r, seed, stream);
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	for (uint64_t i = n ? n - 1 : 0; i > 0; i--) {
		uint64_t j = pcb_rng_below(&r, i + 1);
		uint32_t t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}
