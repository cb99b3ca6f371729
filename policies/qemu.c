/* qemu: QEMU's post-copy source, as QEMU does it (migration/ram.c).  It runs
 * at the source by default: the source streams every page in address order
 * (find_dirty_block from last_seen_block / last_page), and a page request
 * from the destination is served by the same sender:
 *
 *  preempt=off (QEMU's default capability set, one migration channel; the
 *    run uses --channels=1): ram_save_queue_pages queues the request,
 *    get_queued_page / unqueue_page take it before the next background page
 *    -- skipping it when its dirty bit is already clear, i.e. the page was
 *    sent -- and ram_find_and_save_block stores the page search position
 *    back into last_seen_block / last_page afterwards, so the background scan
 *    continues right after the requested page (QEMU 7.2 and later).
 *  preempt=on (postcopy-preempt, QEMU >= 7.1; the run uses --channels=2):
 *    the requested page goes out on the preempt channel (QEMU 8.0+:
 *    ram_save_queue_pages sends it from the return-path thread with
 *    ram_save_host_page_urgent and its own PageSearchStatus,
 *    pss[RAM_CHANNEL_POSTCOPY]); the background scan's position is not moved.
 *
 * The urgent page itself is sent by the source's demand path (source/ and
 * wire/: behind the socket's queue with one channel, on its own connection
 * with two); this policy only decides the background order.  A request for a
 * page already sent (present or claimed in the source's view) does not move
 * the scan.  At the destination (--policy-end=destination) it pulls the same
 * order from the faults it sees. */
#include "policies/policy.h"
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const struct pcb_knob qemu_knobs[] = {
	{ "preempt", "off", "postcopy-preempt capability: off (one channel; the scan continues after each requested page) "
			    "or on (urgent pages on their own channel; the scan keeps its place)" },
	{ NULL, NULL, NULL },
};

struct qemu_state {
	_Atomic uint64_t jump;    /* page + 2 to continue from (request + 1), 0 = none pending */
	uint64_t cursor;          /* last_seen_block / last_page */
	bool preempt;
	uint64_t jumps;           /* scan moves (tests) */
};

static int qemu_init(struct pcb_policy *p, char *why, size_t whylen)
{
	const char *pre = pcb_policy_opt(p, "preempt");
	if (strcmp(pre, "off") && strcmp(pre, "on")) {
		snprintf(why, whylen, "invalid value for --policy-opt option preempt: '%s' (want off or on)", pre);
		return -1;
	}
	struct qemu_state *s = calloc(1, sizeof(struct qemu_state));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->preempt = !strcmp(pre, "on");
	p->priv = s;
	return 0;
}

static void qemu_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

/* unqueue_page + the dirty test: a page already sent (or being sent) is skipped */
static void qemu_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct qemu_state *s = p->priv;
	if (s->preempt || pcb_ps_present(p->ps, page) || pcb_bit_test(p->ps->claimed, page))
		return;
	atomic_store_explicit(&s->jump, page + 2, memory_order_relaxed);
}

static unsigned qemu_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct qemu_state *s = p->priv;
	uint64_t j = atomic_exchange_explicit(&s->jump, 0, memory_order_relaxed);
	if (j) {
		s->cursor = j - 1 < p->npages ? j - 1 : 0;
		s->jumps++;
	}
	return pcb_policy_fill_sequential(p, b, &s->cursor);
}

/* preempt=on: the preempt channel is a second connection */
static unsigned qemu_channels(const struct pcb_policy *p)
{
	return strcmp(pcb_policy_opt(p, "preempt"), "on") ? 1 : 2;
}

/* For tests: the background scan position. */
uint64_t pcb_policy_qemu_cursor(const struct pcb_policy *p);
uint64_t pcb_policy_qemu_cursor(const struct pcb_policy *p)
{
	const struct qemu_state *s = p->priv;
	return s->cursor;
}

const struct pcb_policy_ops pcb_policy_qemu = {
	.abi = PCB_POLICY_ABI,
	.name = "qemu",
	.help = "QEMU's post-copy source (migration/ram.c): address-order stream; one channel: it continues after each "
		"requested page; preempt=on: urgent pages on a second channel, the stream keeps its place",
	.background = true,
	.knobs = qemu_knobs,
	.init = qemu_init,
	.fini = qemu_fini,
	.on_fault = qemu_on_fault,
	.next_batch = qemu_next_batch,
	.end = PCB_POLICY_SOURCE,
	.channels = qemu_channels,
};
