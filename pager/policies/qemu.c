/* qemu: QEMU's post-copy behaviour as a baseline.  The background stream
 * sends pages in address order; when the destination requests a page (a
 * fault), the stream continues from just after that page, betting the guest
 * will keep going in that direction (migration/ram.c: the postcopy page
 * request moves the source's scan position). */
#include "pager/policy.h"
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>

struct qemu_state {
	_Atomic uint64_t jump;    /* page + 2 to continue from (fault + 1), 0 = none pending */
	uint64_t cursor;
};

static int qemu_init(struct pcb_policy *p, char *why, size_t whylen)
{
	snprintf(why, whylen, "out of memory");
	p->priv = calloc(1, sizeof(struct qemu_state));
	return p->priv ? 0 : -1;
}

static void qemu_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static void qemu_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct qemu_state *s = p->priv;
	/* faults on pages already present do not move the stream */
	if (!pcb_ps_present(p->ps, page))
		atomic_store_explicit(&s->jump, page + 2, memory_order_relaxed);
}

static unsigned qemu_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct qemu_state *s = p->priv;
	uint64_t j = atomic_exchange_explicit(&s->jump, 0, memory_order_relaxed);
	if (j)
		s->cursor = j - 1 < p->npages ? j - 1 : 0;
	return pcb_policy_fill_sequential(p, b, &s->cursor);
}

const struct pcb_policy_ops pcb_policy_qemu = {
	.abi = PCB_POLICY_ABI,
	.name = "qemu",
	.help = "QEMU's post-copy: address-order stream that jumps to just after each faulting page",
	.background = true,
	.init = qemu_init,
	.fini = qemu_fini,
	.on_fault = qemu_on_fault,
	.next_batch = qemu_next_batch,
};
