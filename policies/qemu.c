/* qemu: QEMU's post-copy behaviour as a baseline.  The background stream
 * sends pages in address order; when the destination requests a page (a
 * fault), the scan restarts from the faulting address and continues forward
 * from there (migration/ram.c: the queued page request sets the source's
 * page-search position, and the linear scan carries on after it), betting
 * the guest keeps going in that direction.  A fault on a page already
 * present does not move the scan.  restart=none keeps the scan where it was
 * (urgent pages answered out of band only): the ablation of the jump, which
 * is then the sequential policy. */
#include "policies/policy.h"
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const struct pcb_knob qemu_knobs[] = {
	{ "restart", "fault", "on a demand fault: fault (the scan continues from the faulting page) or none (the scan keeps its place)" },
	{ NULL, NULL, NULL },
};

struct qemu_state {
	_Atomic uint64_t jump;    /* page + 2 to continue from (fault + 1), 0 = none pending */
	uint64_t cursor;
	bool restart;
};

static int qemu_init(struct pcb_policy *p, char *why, size_t whylen)
{
	const char *rs = pcb_policy_opt(p, "restart");
	if (strcmp(rs, "fault") && strcmp(rs, "none")) {
		snprintf(why, whylen, "invalid value for --policy-opt option restart: '%s' (want fault or none)", rs);
		return -1;
	}
	struct qemu_state *s = calloc(1, sizeof(struct qemu_state));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->restart = !strcmp(rs, "fault");
	p->priv = s;
	return 0;
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
	if (s->restart && !pcb_ps_present(p->ps, page))
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
	.help = "QEMU's post-copy: address-order scan that restarts from each faulting page and continues forward",
	.background = true,
	.knobs = qemu_knobs,
	.init = qemu_init,
	.fini = qemu_fini,
	.on_fault = qemu_on_fault,
	.next_batch = qemu_next_batch,
};
