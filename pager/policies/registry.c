/* The policy registry: add a policy by writing pager/policies/NAME.c that
 * defines `const struct pcb_policy_ops pcb_policy_NAME` and listing it here. */
#include "pager/policy.h"
#include <stdio.h>
#include <string.h>

#define PCB_POLICY_LIST(X) \
	X(demand)          \
	X(sequential)      \
	X(qemu)            \
	X(pivot)           \
	X(trend)            \
	X(local)

#define DECLARE(n) extern const struct pcb_policy_ops pcb_policy_##n;
PCB_POLICY_LIST(DECLARE)
#undef DECLARE

#define ENTRY(n) &pcb_policy_##n,
const struct pcb_policy_ops *const pcb_policies[] = { PCB_POLICY_LIST(ENTRY) NULL };
#undef ENTRY

const struct pcb_policy_ops *pcb_policy_find(const char *name)
{
	for (unsigned i = 0; pcb_policies[i]; i++)
		if (!strcmp(pcb_policies[i]->name, name))
			return pcb_policies[i];
	return NULL;
}

int pcb_policy_check(const struct pcb_policy_ops *ops, char *why, size_t whylen)
{
	if (ops->abi != PCB_POLICY_ABI) {
		snprintf(why, whylen, "policy %s has ABI %u, this build wants %u", ops->name, ops->abi, PCB_POLICY_ABI);
		return -1;
	}
	if (!ops->name || !ops->help) {
		snprintf(why, whylen, "policy without a name or help line");
		return -1;
	}
	if (ops->background && !ops->next_batch) {
		snprintf(why, whylen, "policy %s pulls in the background but has no next_batch hook", ops->name);
		return -1;
	}
	return 0;
}
