/* stride: a strided sweep.  Pages lane, lane+S, lane+2S, ... then lane+1,
 * so every page is visited once per sweep whatever S; dir=down mirrors it
 * (page N-1-p).  vCPU v starts v/N of the way through the sweep. */
#include "common/util.h"
#include "workloads/workload.h"
#ifndef PCB_GUEST
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

#ifndef PCB_GUEST
static const struct pcb_knob stride_knobs[] = {
	{ "stride", "16", "pages between consecutive accesses" },
	{ "dir", "up", "up (increasing addresses) or down" },
	{ NULL, NULL, NULL },
};
#endif

struct stride_cfg {
	uint64_t stride;
	bool down;
};

struct stride_ts {
	struct stride_cfg c;
	uint64_t npages, pos, lane;
};

#ifndef PCB_GUEST
extern const struct pcb_workload_ops pcb_workload_stride;
#endif

#ifndef PCB_GUEST
static int stride_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	struct stride_cfg c;
	if (pcb_wl_opt_u64(&pcb_workload_stride, prm, "stride", 1, prm->npages, &c.stride, why, whylen) < 0)
		return -1;
	const char *d = pcb_wl_opt(&pcb_workload_stride, prm, "dir");
	if (strcmp(d, "up") && strcmp(d, "down")) {
		snprintf(why, whylen, "invalid value for workload option dir: '%s' (want up or down)", d);
		return -1;
	}
	c.down = !strcmp(d, "down");
	struct stride_cfg *p = malloc(sizeof(*p));
	if (!p)
		return -PCB_EXIT_OSERR;
	*p = c;
	*shared = p;
	return 0;
}
#endif

#ifndef PCB_GUEST
static int stride_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct stride_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->c = *(struct stride_cfg *)shared;
	s->npages = prm->npages;
	/* start at sweep position k = v*N/n: lane and offset within the lane */
	uint64_t k = prm->npages * vcpu / (prm->nvcpus ? prm->nvcpus : 1);
	uint64_t per = (s->npages + s->c.stride - 1) / s->c.stride;   /* pages in lane 0 (the longest) */
	s->lane = 0;
	s->pos = 0;
	for (uint64_t l = 0; l < s->c.stride; l++) {
		uint64_t inlane = l < s->npages ? (s->npages - l + s->c.stride - 1) / s->c.stride : 0;
		if (k < inlane) {
			s->lane = l;
			s->pos = l + k * s->c.stride;
			break;
		}
		k -= inlane;
	}
	(void)per;
	*ts = s;
	return 0;
}
#endif

static void stride_next(void *ts, struct pcb_access *a)
{
	struct stride_ts *s = ts;
	a->page = s->c.down ? s->npages - 1 - s->pos : s->pos;
	s->pos += s->c.stride;
	if (s->pos >= s->npages) {
		if (++s->lane >= s->c.stride || s->lane >= s->npages)
			s->lane = 0;
		s->pos = s->lane;
	}
}

#ifdef PCB_GUEST
PCB_GUEST_NEXT(stride, stride_next)
#else
const struct pcb_workload_ops pcb_workload_stride = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "stride",
	.help = "strided sweep (every page once per sweep)",
	.knobs = stride_knobs,
	.init = stride_init,
	.fini = free,
	.thread_init = stride_thread_init,
	.thread_fini = free,
	.guest_ts_size = sizeof(struct stride_ts),
	.next = stride_next,
};
#endif
