/* The workload registry: add a workload by writing workloads/NAME.c that
 * defines `const struct pcb_workload_ops pcb_workload_NAME` and listing it
 * here (a name with characters C identifiers lack, e.g. scan+hot, is set in
 * the ops' name field; the identifier here is only the symbol). */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PCB_WORKLOAD_LIST(X) \
	X(seq)               \
	X(random)            \
	X(zipf)              \
	X(stride)            \
	X(chase)             \
	X(kv)                \
	X(phase)             \
	X(scanhot)           \
	X(idle)              \
	X(trace)             \
	X(sqlite)

#define DECLARE(n) extern const struct pcb_workload_ops pcb_workload_##n;
PCB_WORKLOAD_LIST(DECLARE)
#undef DECLARE

#define ENTRY(n) &pcb_workload_##n,
const struct pcb_workload_ops *const pcb_workloads[] = { PCB_WORKLOAD_LIST(ENTRY) NULL };
#undef ENTRY

const struct pcb_workload_ops *pcb_workload_find(const char *name)
{
	for (unsigned i = 0; pcb_workloads[i]; i++)
		if (!strcmp(pcb_workloads[i]->name, name))
			return pcb_workloads[i];
	return NULL;
}

int pcb_workload_check(const struct pcb_workload_ops *ops, char *why, size_t whylen)
{
	if (!ops) {
		snprintf(why, whylen, "no such workload");
		return -1;
	}
	if (ops->abi != PCB_WORKLOAD_ABI) {
		snprintf(why, whylen, "workload %s has ABI %u, this build wants %u", ops->name, ops->abi, PCB_WORKLOAD_ABI);
		return -1;
	}
	if (!ops->name || !ops->help || !ops->thread_init || (!ops->next == !ops->app_op)) {
		snprintf(why, whylen, "workload %s lacks a name, help, thread_init or exactly one of next and app_op",
			 ops->name ? ops->name : "?");
		return -1;
	}
	if (ops->app_op && (!ops->image_build || !ops->app_check)) {
		snprintf(why, whylen, "application workload %s lacks image_build or app_check", ops->name);
		return -1;
	}
	return 0;
}

int pcb_wl_build_image(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, uint8_t **mem,
		       char *why, size_t whylen)
{
	size_t len = prm->npages * PCB_PAGE_SIZE;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "out of memory for the %s image (%zu bytes)", ops->name, len);
		return PCB_EXIT_OSERR;
	}
	why[0] = 0;
	int rc = ops->image_build(prm, m, why, whylen);
	if (rc) {
		munmap(m, len);
		return rc == -1 ? PCB_EXIT_USAGE : -rc;
	}
	*mem = m;
	return 0;
}

static struct pcb_knob_owner owner(const struct pcb_workload_ops *ops)
{
	return (struct pcb_knob_owner){ "--workload-opt", "workload", ops->name, ops->knobs };
}

int pcb_wl_parse_opts(const struct pcb_workload_ops *ops, const char *s, struct pcb_wl_params *prm,
		      char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(ops);
	return pcb_knobs_parse(&o, s, prm->opts, &prm->nopts, why, whylen);
}

const char *pcb_wl_opt(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key)
{
	return pcb_knobs_get(ops->knobs, prm->opts, prm->nopts, key);
}

int pcb_wl_opt_u64(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(ops);
	return pcb_knobs_u64(&o, prm->opts, prm->nopts, key, min, max, out, why, whylen);
}

int pcb_wl_opt_dbl(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   double min, double max, double *out, char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(ops);
	return pcb_knobs_dbl(&o, prm->opts, prm->nopts, key, min, max, out, why, whylen);
}
