/* local: not a migration.  The guest runs over a region fully populated
 * before it starts (no source, no userfaultfd): the baseline that guest
 * progress after switch-over is compared with.  run/setup.c recognises
 * it; the pager never runs with it. */
#include "policies/policy.h"

const struct pcb_policy_ops pcb_policy_local = {
	.abi = PCB_POLICY_ABI,
	.name = "local",
	.help = "no migration: all memory local before the guest starts (the baseline for progress metrics)",
	.background = false,
};
