/* sequential: pull every page not yet present in address order, in the
 * background, while demand requests are served first on their own channel. */
#include "policies/policy.h"
#include <stdio.h>
#include <stdlib.h>

struct seq_state {
	uint64_t cursor;
};

static int seq_init(struct pcb_policy *p, char *why, size_t whylen)
{
	snprintf(why, whylen, "out of memory");
	p->priv = calloc(1, sizeof(struct seq_state));
	return p->priv ? 0 : -1;
}

static void seq_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static unsigned seq_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct seq_state *s = p->priv;
	return pcb_policy_fill_sequential(p, b, &s->cursor);
}

const struct pcb_policy_ops pcb_policy_sequential = {
	.abi = PCB_POLICY_ABI,
	.name = "sequential",
	.help = "background pull of every missing page in address order; demand faults served first",
	.background = true,
	.init = seq_init,
	.fini = seq_fini,
	.next_batch = seq_next_batch,
};
