/* demand: no pre-paging.  Pages arrive only when the guest faults on them. */
#include "policies/policy.h"

const struct pcb_policy_ops pcb_policy_demand = {
	.abi = PCB_POLICY_ABI,
	.name = "demand",
	.help = "no background pull: a page arrives only when the guest faults on it",
	.background = false,
};
