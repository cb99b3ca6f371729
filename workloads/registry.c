/* The workload registry: add a workload by writing workloads/NAME.c that
 * defines `const struct pcb_workload_ops pcb_workload_NAME` and listing it here. */
#include "workloads/workload.h"
#include <stdio.h>
#include <string.h>

#define PCB_WORKLOAD_LIST(X) \
	X(seq)               \
	X(random)            \
	X(zipf)

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
	if (ops->abi != PCB_WORKLOAD_ABI) {
		snprintf(why, whylen, "workload %s has ABI %u, this build wants %u", ops->name, ops->abi, PCB_WORKLOAD_ABI);
		return -1;
	}
	if (!ops->name || !ops->help || !ops->thread_init || !ops->next) {
		snprintf(why, whylen, "workload %s lacks a name, help, thread_init or next hook", ops->name ? ops->name : "?");
		return -1;
	}
	return 0;
}
