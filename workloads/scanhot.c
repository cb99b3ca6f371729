/* scan+hot: two kinds of vCPU at once.  The first `scanners` vCPUs sweep
 * the whole region sequentially (a background scanner: page cache walk,
 * GC, dedup); the others hit a small hot set (a window of hot*N pages at a
 * seeded place) uniformly at random.  Needs --vcpus >= 2. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdio.h>
#include <stdlib.h>
#endif

#ifndef PCB_GUEST
static const struct pcb_knob scanhot_knobs[] = {
	{ "scanners", "1", "how many vCPUs scan (the rest work the hot set)" },
	{ "hot", "0.02", "hot set size as a fraction of the region" },
	{ NULL, NULL, NULL },
};
#endif

struct scanhot_cfg {
	uint64_t scanners, hot_pages, hot_start, npages;
};

struct scanhot_ts {
	struct scanhot_cfg c;
	struct pcb_rng rng;
	bool scanner;
	uint64_t pos;
};

#ifndef PCB_GUEST
extern const struct pcb_workload_ops pcb_workload_scanhot;
#endif

#ifndef PCB_GUEST
static int scanhot_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_scanhot;
	struct scanhot_cfg c = { .npages = prm->npages };
	double hot;
	if (prm->nvcpus < 2) {
		snprintf(why, whylen, "invalid value for --vcpus: '%u' (workload scan+hot needs at least 2: scanners and hot-set workers)",
			 prm->nvcpus);
		return -1;
	}
	if (pcb_wl_opt_u64(o, prm, "scanners", 1, prm->nvcpus - 1, &c.scanners, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "hot", 1e-9, 1, &hot, why, whylen) < 0)
		return -1;
	c.hot_pages = (uint64_t)(hot * (double)prm->npages);
	if (c.hot_pages < 1)
		c.hot_pages = 1;
	c.hot_start = pcb_mix64(prm->seed ^ 0x686f74ull) % prm->npages;
	struct scanhot_cfg *p = malloc(sizeof(*p));
	if (!p)
		return -PCB_EXIT_OSERR;
	*p = c;
	*shared = p;
	return 0;
}
#endif

#ifndef PCB_GUEST
static int scanhot_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct scanhot_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->c = *(struct scanhot_cfg *)shared;
	s->scanner = vcpu < s->c.scanners;
	s->pos = s->scanner ? prm->npages * vcpu / s->c.scanners : 0;
	pcb_rng_seed(&s->rng, prm->seed, 0x73630000ull + vcpu);
	*ts = s;
	return 0;
}
#endif

static void scanhot_next(void *ts, struct pcb_access *a)
{
	struct scanhot_ts *s = ts;
	if (s->scanner) {
		a->page = s->pos;
		if (++s->pos == s->c.npages)
			s->pos = 0;
	} else {
		a->page = (s->c.hot_start + pcb_rng_below(&s->rng, s->c.hot_pages)) % s->c.npages;
	}
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(scanhot, scanhot_next)
#else
const struct pcb_workload_ops pcb_workload_scanhot = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "scan+hot",
	.help = "scanner vCPUs sweep the region while the others hit a small hot set (--vcpus >= 2)",
	.knobs = scanhot_knobs,
	.min_vcpus = 2,
	.init = scanhot_init,
	.fini = free,
	.thread_init = scanhot_thread_init,
	.thread_fini = free,
	.guest_ts_size = sizeof(struct scanhot_ts),
	.next = scanhot_next,
};
#endif
