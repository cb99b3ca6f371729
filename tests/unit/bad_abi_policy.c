/* A policy shared object built against another policy ABI (tests: pcbench
 * refuses it with one line naming the file and both ABI numbers). */
#include "policies/policy.h"

extern const unsigned pcb_policy_abi;
extern const struct pcb_policy_ops pcb_policy_ops;
const unsigned pcb_policy_abi = PCB_POLICY_ABI + 7;

static unsigned nothing(struct pcb_policy *p, struct pcb_batch *b)
{
	(void)p;
	(void)b;
	return 0;
}

const struct pcb_policy_ops pcb_policy_ops = {
	.abi = PCB_POLICY_ABI + 7,
	.name = "stale",
	.help = "built against another ABI",
	.background = true,
	.next_batch = nothing,
};
