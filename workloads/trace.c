/* trace: replay an access trace (the --record binary form or the plain-text
 * form, see workload.h) as fast as the guest can.  Trace vCPU u is replayed
 * by vCPU u % --vcpus (a trace with fewer vCPUs than the run: vCPU v replays
 * trace vCPU v % trace_vcpus).  Reads and writes as recorded (--write-ratio
 * does not apply), ops as recorded.  loop=1 starts over at the end; loop=0
 * stops the vCPU.  pace=1 keeps the recorded think time: before each access
 * the vCPU computes for the gap between the record's t_ns and the previous
 * record of the same vCPU (`pcbench simulate --think=recorded`); pace=2
 * keeps the recorded schedule: each access at its t_ns since switch-over, or
 * at once if a stall made the vCPU late (`simulate --think=schedule`; with
 * loop=1 only the first pass).  Every page must lie inside --mem. */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>

static const struct pcb_knob trace_knobs[] = {
	{ "file", "", "the trace file (required)" },
	{ "loop", "1", "1: start over at the end of the trace; 0: the vCPU stops" },
	{ "pace", "0", "0: as fast as possible; 1: wait the recorded gap before each access; 2: each access at its recorded time (late ones at once)" },
	{ NULL, NULL, NULL },
};

struct trace_shared {
	struct pcb_atrace t;
	uint64_t **idx;              /* per run vCPU: record indices to replay */
	uint64_t *nidx;
	unsigned nvcpus;
	bool loop;
	unsigned pace;
};

struct trace_ts {
	struct trace_shared *s;
	const uint64_t *idx;
	uint64_t n, pos;
	bool wrapped;
};

extern const struct pcb_workload_ops pcb_workload_trace;

static void trace_fini(void *shared)
{
	struct trace_shared *s = shared;
	if (!s)
		return;
	for (unsigned v = 0; s->idx && v < s->nvcpus; v++)
		free(s->idx[v]);
	free(s->idx);
	free(s->nidx);
	pcb_atrace_free(&s->t);
	free(s);
}

static int trace_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_trace;
	const char *file = pcb_wl_opt(o, prm, "file");
	uint64_t loop, pace;
	if (!file[0]) {
		snprintf(why, whylen, "workload trace needs --workload-opt file=PATH");
		return -1;
	}
	if (pcb_wl_opt_u64(o, prm, "loop", 0, 1, &loop, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "pace", 0, 2, &pace, why, whylen) < 0)
		return -1;
	struct trace_shared *s = calloc(1, sizeof(*s));
	if (!s)
		return -PCB_EXIT_OSERR;
	int rc = pcb_atrace_load(file, &s->t, why, whylen);
	if (rc) {
		free(s);
		return -rc;
	}
	s->loop = loop;
	s->pace = (unsigned)pace;
	s->nvcpus = prm->nvcpus;
	for (uint64_t i = 0; i < s->t.count; i++)
		if (s->t.rec[i].page >= prm->npages) {
			snprintf(why, whylen, "%s: access %llu is to page %llu but --mem holds %llu pages", file,
				 (unsigned long long)i, (unsigned long long)s->t.rec[i].page, (unsigned long long)prm->npages);
			trace_fini(s);
			return -PCB_EXIT_DATAERR;
		}
	s->idx = calloc(prm->nvcpus, sizeof(*s->idx));
	s->nidx = calloc(prm->nvcpus, sizeof(*s->nidx));
	if (!s->idx || !s->nidx) {
		trace_fini(s);
		return -PCB_EXIT_OSERR;
	}
	unsigned tv = s->t.nvcpus ? s->t.nvcpus : 1;
	for (unsigned v = 0; v < prm->nvcpus; v++) {
		s->idx[v] = malloc(s->t.count * sizeof(uint64_t));
		if (!s->idx[v]) {
			trace_fini(s);
			return -PCB_EXIT_OSERR;
		}
		for (uint64_t i = 0; i < s->t.count; i++) {
			uint32_t u = s->t.rec[i].vcpu;
			bool mine = tv >= prm->nvcpus ? u % prm->nvcpus == v : u == v % tv;
			if (mine)
				s->idx[v][s->nidx[v]++] = i;
		}
	}
	*shared = s;
	return 0;
}

static int trace_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	(void)prm;
	struct trace_ts *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->s = shared;
	t->idx = t->s->idx[vcpu];
	t->n = t->s->nidx[vcpu];
	*ts = t;
	return 0;
}

static void trace_next(void *ts, struct pcb_access *a)
{
	struct trace_ts *t = ts;
	if (t->pos == t->n) {
		if (!t->s->loop || !t->n) {
			a->kind = PCB_ACC_STOP;
			return;
		}
		t->pos = 0;
		t->wrapped = true;
	}
	const struct pcb_atrace_rec *r = &t->s->t.rec[t->idx[t->pos]];
	if (t->s->pace == 1) {
		uint64_t prev = t->pos ? t->s->t.rec[t->idx[t->pos - 1]].t_ns : 0;
		uint64_t gap = r->t_ns > prev ? r->t_ns - prev : 0;
		a->think_ns = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
	} else if (t->s->pace == 2 && !t->wrapped) {
		uint64_t gap = r->t_ns > a->now_ns ? r->t_ns - a->now_ns : 0;
		a->think_ns = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
	}
	t->pos++;
	a->page = r->page;
	a->kind = r->flags & PCB_ATRACE_WRITE ? PCB_ACC_WRITE : PCB_ACC_READ;
	a->more = (r->flags & PCB_ATRACE_MORE) && !(t->pos == t->n && !t->s->loop);
}

const struct pcb_workload_ops pcb_workload_trace = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "trace",
	.help = "replay an access trace (file=, from --record or plain text `PAGE [r|w] [VCPU] [+]`)",
	.knobs = trace_knobs,
	.init = trace_init,
	.fini = trace_fini,
	.thread_init = trace_thread_init,
	.thread_fini = free,
	.next = trace_next,
};
