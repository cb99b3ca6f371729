/* One shared connection (--channels=1): demand requests and background
 * batches on one socket. */
#include "pager/internal.h"

/* ---- one shared connection (--channels=1) -----------------------------------
 * QEMU's post-copy before its preempt channel: one connection carries the
 * demand requests and the background batches, so a demand reply reaches the
 * destination only after the background data already queued ahead of it (the
 * source sends it at its next frame boundary; source/source.c).  The
 * connection is chan[PCB_CHAN_BACKGROUND] (HELLO channel PCB_CHAN_SHARED);
 * chan[PCB_CHAN_DEMAND] is not opened.
 *   - Both threads send on it, under send_lock (frames are never interleaved).
 *   - The background thread alone receives.  A reply to a demand request is
 *     a PAGE or ZERO frame flagged PCB_FRAME_URGENT: it installs the page at
 *     once (UFFDIO_COPY wakes the faulting vCPU, as the demand thread does
 *     with two channels; QEMU's listen thread does the same) and passes a
 *     shared_done record through shared_pipe to the demand thread, which owns
 *     the in-flight table, the counters and the latency histograms.  The
 *     demand thread does not poll that pipe (a wake-up per reply would cost
 *     the vCPUs CPU time): it takes the records whenever it wakes anyway, for
 *     the next fault or at the latest after 100 ms.
 *   - A lost connection is the background thread's to re-establish (the
 *     demand thread only notices that sending failed).  It marks the link
 *     down, reconnects, bumps shared_gen, sends a SHARED_RECONNECTED record
 *     and kicks shared_kick: the demand thread then sends again every in-flight request not
 *     sent on the new connection.  Replies received before the loss are
 *     recorded ahead of that record, so none is asked for twice.
 *   - At the end the background thread keeps receiving until every batch has
 *     ended and every demand request is answered, even once stop is asked
 *     (bounded by --io-timeout), so that the connection is at a frame boundary
 *     with nothing in flight when verification asks for digests on it. */

/* Demand thread: send the request of in-flight entry f.  Two channels: 0, or
 * -1 with errno (the caller recovers).  Shared: always 0; a request that could
 * not be sent is sent again after the reconnection the background thread
 * makes (it counts as outstanding, so a silent source is detected). */
int demand_send_req(struct pcb_pager *p, struct inflight *f)
{
	if (!p->shared)
		return pcb_conn_send(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_REQ, f->page, NULL, 0);
	pthread_mutex_lock(&p->send_lock);
	if (p->shared_down) {
		f->gen = 0;
	} else {
		f->gen = p->shared_gen;
		atomic_fetch_add(&p->shared_out, 1);
		pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], PCB_MSG_REQ, f->page, NULL, 0);
	}
	pthread_mutex_unlock(&p->send_lock);
	return 0;
}

/* Background thread: send a frame on its connection (shared: under send_lock). */
int bg_send(struct pcb_pager *p, uint16_t type, uint64_t arg, const void *pl, uint32_t len)
{
	if (!p->shared)
		return pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], type, arg, pl, len);
	pthread_mutex_lock(&p->send_lock);
	int r = pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], type, arg, pl, len);
	pthread_mutex_unlock(&p->send_lock);
	return r;
}

int shared_post(struct pcb_pager *p, const struct shared_done *d)
{
	for (;;) {
		ssize_t w = write(p->shared_pipe[1], d, sizeof(*d));
		if (w == (ssize_t)sizeof(*d)) {
			uint64_t one = 1;
			if (d->kind == SHARED_RECONNECTED && write(p->shared_kick, &one, sizeof(one)) < 0) {
				/* the counter cannot overflow: it is read at each wake-up */
			}
			return 0;
		}
		if (w < 0 && errno == EINTR)
			continue;
		set_fatal(p, PCB_EXIT_OSERR, "passing a demand reply to the demand thread: %s", w < 0 ? strerror(errno) : "short write");
		return -1;
	}
}

/* Background thread: a PAGE / ZERO flagged urgent arrived on the shared connection. */
int shared_demand_reply(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	uint64_t page = h->arg, t_rx = pcb_now_ns(), now = t_rx;
	bool zero = h->type == PCB_MSG_ZERO;
	unsigned out = atomic_load(&p->shared_out);
	if (!pcb_bit_test(p->ps.demanded, page) || !out) {
		p->chan[PCB_CHAN_BACKGROUND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source sent demand reply for page %llu that was not requested",
			  (unsigned long long)page);
		return -1;
	}
	atomic_fetch_sub(&p->shared_out, 1);
	p->st.shared_demand_frames++;
	if (h->type == PCB_MSG_SENT) {   /* pushing: the page is in the stream; the demand thread closes the request */
		struct shared_done d = { page, t_rx, t_rx, SHARED_IN_STREAM, 0 };
		return shared_post(p, &d);
	}
	PCB_PROBE_RECEIVED(page, PCB_CHAN_DEMAND, zero);
	/* every page present: the region may be unregistered any moment now */
	int r = pcb_ps_complete(&p->ps) ? 1 : install(p, page, zero ? NULL : payload, PCB_INST_DEMAND, &now);
	if (r < 0) {
		set_fatal(p, PCB_EXIT_OSERR, "installing page %llu failed: %s", (unsigned long long)page, strerror(-r));
		return -1;
	}
	struct shared_done d = { page, t_rx, r == 1 ? pcb_now_ns() : now,
				 r == 1 ? SHARED_RACE : zero ? SHARED_ZERO : SHARED_DATA, 0 };
	return shared_post(p, &d);
}
