/* The background thread: the policy's batches requested, a window of them
 * in flight, frames dispatched to the receive (bgrecv.c), copy segments
 * (segments.c) and move chunks (chunks.c); the installer thread
 * (installer.c) installs them. */
#include "pager/background.h"

/* A batch of the pages a pushed stream ended without, from *cursor on in
 * address order: not present and not claimed -- demanded ones included (a
 * vCPU may wait for one: the source answered its request SENT). */
static unsigned bg_gap_batch(struct pcb_pager *p, struct pcb_batch *b, uint64_t *cursor)
{
	uint64_t pg = *cursor < p->ps.npages ? *cursor : 0;   /* wraps: a page given back is found again */
	for (; pg < p->ps.npages && b->npages < b->max_pages; pg++) {
		if (pcb_ps_present(&p->ps, pg))
			continue;
		bool extend = b->nr && b->r[b->nr - 1].first + b->r[b->nr - 1].count == pg;
		if (!extend && b->nr >= b->max_ranges)
			break;
		if (!pcb_bit_set(p->ps.claimed, pg))
			continue;   /* in a batch already */
		if (extend)
			b->r[b->nr - 1].count++;
		else
			b->r[b->nr++] = (struct pcb_range){ pg, 1 };
		b->npages++;
	}
	*cursor = pg;
	return b->npages;
}

/* The next batch: the policy's, else the drain's (address order).  gaps: a
 * pushed stream ended without some pages; they are pulled in address order. */
static unsigned bg_next_batch(struct pcb_pager *p, struct pcb_batch *b, uint64_t *drain_cursor, bool gaps, bool *is_drain)
{
	unsigned n = 0;
	*is_drain = false;
	if (p->pol.ops->background && !gaps)
		n = p->pol.ops->next_batch(&p->pol, b);
	if (!n && gaps) {
		n = bg_gap_batch(p, b, drain_cursor);
	} else if (!n && atomic_load(&p->drain)) {
		n = pcb_policy_fill_sequential(&p->pol, b, drain_cursor);
		*is_drain = n > 0;
	}
	if (n)
		PCB_PROBE_DECISION(b->r[0].first, n, b->nr);
	return n;
}

/* Background batches in flight, kept until their BATCH_END so that a lost
 * connection can ask for them again. */
struct bg_batch {
	struct pcb_range *r;
	unsigned nr;
	bool drain;
};

static int bg_send_batch(struct pcb_pager *p, uint64_t id, const struct bg_batch *b)
{
	struct pcb_range_wire w[PCB_MAX_RANGES];
	for (unsigned i = 0; i < b->nr; i++) {
		w[i] = (struct pcb_range_wire){ htole64(b->r[i].first), htole64(b->r[i].count) };
		for (uint64_t pg = b->r[i].first; pg < b->r[i].first + b->r[i].count; pg++)
			p->bg_want[pg >> 6] |= 1ull << (pg & 63);
	}
	return bg_send(p, PCB_MSG_RANGES, id, w, (uint32_t)(b->nr * sizeof(w[0])));
}

/* After a reconnection: the batches [done, next) were in flight.  Drop the
 * pages that have arrived since, renumber what is left from `done` on and send
 * it again.  Returns the new next id, or UINT64_MAX if the connection failed again. */

static uint64_t bg_resend(struct pcb_pager *p, struct bg_batch *ring, unsigned window, uint64_t done, uint64_t next)
{
	struct pcb_range *tmp = calloc(PCB_MAX_RANGES, sizeof(*tmp));
	uint64_t out = done;
	if (!tmp)
		return UINT64_MAX;
	for (uint64_t id = done; id < next; id++) {
		struct bg_batch *b = &ring[id % window];
		unsigned nr = 0;
		uint64_t pages = 0;
		for (unsigned i = 0; i < b->nr; i++)
			for (uint64_t pg = b->r[i].first; pg < b->r[i].first + b->r[i].count; pg++) {
				if (pcb_ps_present(&p->ps, pg))
					continue;
				if (nr && tmp[nr - 1].first + tmp[nr - 1].count == pg)
					tmp[nr - 1].count++;
				else if (nr < PCB_MAX_RANGES)
					tmp[nr++] = (struct pcb_range){ pg, 1 };
				else
					continue;   /* cannot happen: a subset of a batch has no more ranges than pages allow */
				pages++;
			}
		if (!nr)
			continue;
		struct bg_batch *o = &ring[out % window];
		memcpy(o->r, tmp, nr * sizeof(*tmp));
		o->nr = nr;
		o->drain = b->drain;
		if (bg_send_batch(p, out, o) < 0) {
			free(tmp);
			return UINT64_MAX;
		}
		pthread_mutex_lock(&p->rec_lock);
		p->st.rec.bg_pages_rerequested += pages;
		p->st.rec.bg_batches_resent++;
		pthread_mutex_unlock(&p->rec_lock);
		out++;
	}
	free(tmp);
	return out;
}

/* Pages first..first+n-1 arrived on the background channel: each must have
 * been asked for in a batch in flight (a source does not get to install pages
 * nobody asked for).  0: they were (no longer wanted now); 1: at least one was
 * not (a duplicate, or a frame arriving after its batch ended and was asked
 * for again): the frame is dropped whole and its wanted pages stay wanted. */
static int bg_received(struct pcb_pager *p, uint64_t first, uint64_t n)
{
	for (uint64_t pg = first; pg < first + n; pg++)
		if (!(p->bg_want[pg >> 6] & 1ull << (pg & 63)))
			return 1;
	for (uint64_t pg = first; pg < first + n; pg++)
		p->bg_want[pg >> 6] &= ~(1ull << (pg & 63));
	return 0;
}

/* BATCH_END of batch b: the pages it asked for that did not arrive (a frame
 * lost or left out by the source or by anything between us) are gathered
 * into out, to be asked for again at once; those beyond PCB_MAX_RANGES
 * ranges have their claim given back (the policy or the drain takes them
 * again).  Returns how many are missing; *first_missing names one. */
static uint64_t bg_batch_missing(struct pcb_pager *p, const struct bg_batch *b, struct bg_batch *out, uint64_t *first_missing)
{
	uint64_t missing = 0;
	out->nr = 0;
	out->drain = b->drain;
	for (unsigned i = 0; i < b->nr; i++)
		for (uint64_t pg = b->r[i].first; pg < b->r[i].first + b->r[i].count; pg++) {
			uint64_t m = 1ull << (pg & 63);
			if (!(p->bg_want[pg >> 6] & m))
				continue;
			p->bg_want[pg >> 6] &= ~m;
			if (pcb_ps_present(&p->ps, pg))
				continue;   /* arrived on the demand channel meanwhile */
			if (!missing++)
				*first_missing = pg;
			if (out->nr && out->r[out->nr - 1].first + out->r[out->nr - 1].count == pg)
				out->r[out->nr - 1].count++;
			else if (out->nr < PCB_MAX_RANGES)
				out->r[out->nr++] = (struct pcb_range){ pg, 1 };
			else
				atomic_fetch_and_explicit(&p->ps.claimed[pg >> 6], ~m, memory_order_acq_rel);
		}
	return missing;
}

/* BATCH_END of batch *done (checked in order): what it left out is asked
 * for again as a new batch, in the slot the ended batch frees.  0, or -1:
 * fatal set (too many incomplete batches), or sending failed (bg_loss_why). */
static int bg_batch_end(struct pcb_pager *p, struct bg_batch *ring, unsigned window, uint64_t *done, uint64_t *next)
{
	struct bg_batch *b = &ring[*done % window];
	struct pcb_range tmp[PCB_MAX_RANGES];
	struct bg_batch again = { .r = tmp };
	uint64_t first = 0, missing = bg_batch_missing(p, b, &again, &first);
	++*done;
	if (!missing)
		return 0;
	pthread_mutex_lock(&p->rec_lock);
	uint64_t n = ++p->st.rec.batches_incomplete;
	p->st.rec.bg_pages_rerequested += missing;
	snprintf(p->st.rec.last_loss, sizeof(p->st.rec.last_loss), "batch %llu ended without %llu of its pages (page %llu first)",
		 (unsigned long long)(*done - 1), (unsigned long long)missing, (unsigned long long)first);
	pthread_mutex_unlock(&p->rec_lock);
	if (n > MAX_INCOMPLETE) {
		char miss[200];
		pcb_pager_missing_summary(p, miss, sizeof(miss));
		set_fatal(p, PCB_EXIT_PROTOCOL, "the source ended %llu background batches without all their pages "
			  "(the last: batch %llu without %llu pages, page %llu first); %s", (unsigned long long)n,
			  (unsigned long long)(*done - 1), (unsigned long long)missing, (unsigned long long)first, miss);
		return -1;
	}
	if (n == 1)
		pcb_warn("background batch %llu ended without %llu of its pages (page %llu first): asking for them again",
			 (unsigned long long)(*done - 1), (unsigned long long)missing, (unsigned long long)first);
	if (!again.nr)
		return 0;
	struct bg_batch *o = &ring[*next % window];   /* free: *done just moved past one */
	memcpy(o->r, tmp, again.nr * sizeof(tmp[0]));
	o->nr = again.nr;
	o->drain = again.drain;
	p->st.bg_batches++;
	if (bg_send_batch(p, (*next)++, o) < 0) {
		snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "sending a background batch failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* --policy-end=source: ask the source to run the policy and push its stream. */
static int bg_send_push(struct pcb_pager *p)
{
	struct pcb_push_wire w = { .batch_pages = htole32(p->cfg.batch_pages) };
	snprintf(w.policy, sizeof(w.policy), "%s", p->cfg.policy_spec ? p->cfg.policy_spec : p->cfg.policy->name);
	/* the parsed knobs (--policy-opt, and --replay's file=) */
	size_t off = 0;
	for (unsigned i = 0; i < p->pol.nopts && off < sizeof(w.opts); i++)
		off += (size_t)snprintf(w.opts + off, sizeof(w.opts) - off, "%s%s=%s", i ? "," : "", p->pol.opts[i].key,
					p->pol.opts[i].val);
	if (off >= sizeof(w.opts)) {
		errno = E2BIG;
		return -1;
	}
	return bg_send(p, PCB_MSG_PUSH, 0, &w, sizeof(w));
}

/* PUSH_END: the source has sent every page; what it measured while pushing. */
static void bg_push_end(struct pcb_pager *p, const uint8_t *pl)
{
	struct pcb_push_end_wire w;
	memcpy(&w, pl, sizeof(w));
	p->st.push_pages = le64toh(w.pages);
	p->st.push_batches = le64toh(w.batches);
	p->st.push_sendq_max = le64toh(w.sendq_max);
	p->st.push_sndbuf = le64toh(w.sndbuf);
	p->st.push_ended = true;
}

/* Pull: batches in flight at most (the policy may ask for fewer than --window). */
static unsigned bg_window(const struct pcb_pager *p)
{
	unsigned w = p->cfg.window ? p->cfg.window : 1, m = p->pol.ops->max_inflight;
	return m && m < w ? m : w;
}

/* A policy with one transfer outstanding (max_inflight = 1 and faults that wait
 * for queued pages: CRIU) starts no batch while a demand request is outstanding. */
static bool bg_held_back(const struct pcb_pager *p)
{
	const struct pcb_policy_ops *o = p->pol.ops;
	/* shared connection: this thread receives the replies (shared_out); two: the demand thread's table */
	return o->max_inflight == 1 && o->fault_waits_queued &&
	       (p->shared ? atomic_load(&p->shared_out) : atomic_load(&p->infl_count)) > 0;
}

/* The background thread's state: the batches in flight (pulling), the drain
 * cursor and the pending run of ZERO frames. */
struct bg_state {
	struct pcb_pager *p;
	struct pcb_conn *c;
	unsigned window;
	bool push;
	bool push_gaps;          /* the pushed stream ended without some pages: pulling them */
	struct pcb_range *ranges;
	struct bg_batch *ring;   /* batches in flight, indexed by batch id % window */
	uint64_t next_id, done_id, drain_cursor, zfirst;
	unsigned zn;             /* pending run of ZERO frames, installed with one batched call */
};

/* what a step of the loop leads to */
enum bg_next { BG_AGAIN, BG_RECEIVE, BG_OUT, BG_LOST };

/* shared connection: once every page is present, stop only when nothing is owed
 * (pulling: batches not ended; pushing: the stream not ended) */
static bool bg_keep_going(const struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	return !atomic_load(&p->fatal) &&
	       (!atomic_load(&p->stopping) ||
		(p->shared && pcb_ps_complete(&p->ps) &&
		 ((s->push ? !p->st.push_ended : s->next_id != s->done_id) || atomic_load(&p->shared_out))));
}

/* a frame on the connection (BG_RECEIVE) or a stop within 2 ms, else BG_AGAIN */
static enum bg_next bg_poll_conn(struct bg_state *s)
{
	struct pollfd pfd[2] = { { .fd = s->c->fd, .events = POLLIN }, { .fd = s->p->stop_pipe[0], .events = POLLIN } };
	if (poll(pfd, 2, 2) <= 0 || !pfd[0].revents)
		return BG_AGAIN;
	return BG_RECEIVE;
}

/* keep the window full (pulling) */
static enum bg_next bg_fill_window(struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	while (s->next_id - s->done_id < s->window && !pcb_ps_complete(&p->ps) && !bg_held_back(p)) {
		struct bg_batch *rb = &s->ring[s->next_id % s->window];
		struct pcb_batch b = { .r = rb->r, .max_ranges = PCB_MAX_RANGES, .max_pages = p->cfg.batch_pages };
		bool is_drain;
		unsigned n = bg_next_batch(p, &b, &s->drain_cursor, s->push_gaps, &is_drain);
		if (!n)
			break;
		rb->nr = b.nr;
		rb->drain = is_drain;
		PCB_PROBE_REQUEST(rb->r[0].first, PCB_CHAN_BACKGROUND, n);
		s->next_id++;
		if (s->next_id - s->done_id > p->st.bg_inflight_max)
			p->st.bg_inflight_max = s->next_id - s->done_id;
		p->st.bg_batches++;
		p->st.bg_pages_requested += n;
		if (bg_send_batch(p, s->next_id - 1, rb) < 0) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "sending a background batch failed: %s",
				 strerror(errno));
			return BG_LOST;
		}
	}
	return BG_RECEIVE;
}

/* two connections, nothing to pull now: wait for a fault, the drain, or completion.
 * A background policy may want to pull after a fault (the demand thread wakes
 * this thread then) or as time passes: it looks again within 2 ms.  Without
 * one, only the drain, a stop, a fatal error or completion give this thread
 * work, and each is broadcast under p->lock: the 1 s bound is a safety net.
 * (It was 50 ms: a timer interrupt and a wake-up on the pager's CPU 20 times a
 * second, each one adding ~40 µs to the fault it landed in on this nested
 * machine; docs/results/2026-12-05-demand-tail-2.md.) */
static void bg_wait_for_work(struct pcb_pager *p)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->bg_waiting, true);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (p->pol.ops->background)
		ts.tv_nsec += 2 * 1000 * 1000;
	else
		ts.tv_sec += 1;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (!atomic_load(&p->stopping) && !atomic_load(&p->fatal) && !pcb_ps_complete(&p->ps))
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	atomic_store(&p->bg_waiting, false);
	pthread_mutex_unlock(&p->lock);
}

/* The pushed stream has ended (PUSH_END) and what it brought is installed:
 * a page still missing was lost on the way (a frame dropped or left out; the
 * source counts it as sent, so a demand request for it is answered SENT).
 * Pull those pages on the same connection, in address order, as batches
 * checked at their BATCH_END like any pull.  true: switched to pulling. */
static bool bg_push_gaps(struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	/* every received job installed (the slot SLOTS-1 ahead is free only then) */
	if (pcb_iq_reserve_ahead(&p->iq, p->iq.nslots - 1, &p->stopping, &p->fatal) < 0 || pcb_ps_complete(&p->ps))
		return false;
	uint64_t missing = p->ps.npages - atomic_load(&p->ps.npresent);
	pthread_mutex_lock(&p->rec_lock);
	p->st.rec.push_pages_missing = missing;
	snprintf(p->st.rec.last_loss, sizeof(p->st.rec.last_loss), "the pushed stream ended without %llu pages",
		 (unsigned long long)missing);
	pthread_mutex_unlock(&p->rec_lock);
	pcb_warn("the source's pushed stream ended without %llu pages: pulling them", (unsigned long long)missing);
	s->push = false;
	s->push_gaps = true;
	s->next_id = s->done_id;
	return true;
}

/* before receiving: pushing, the end of the stream; pulling, a full window,
 * and with nothing in flight the assembled pages installed and a wait */
static enum bg_next bg_prepare(struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	if (s->push) {
		if (p->st.push_ended && !atomic_load(&p->shared_out)) {
			/* the stream has ended and no demand reply is owed: nothing more will
			 * come unless the guest faults on a page still being installed */
			chunk_push(p);
			seg_push(p);
			if (pcb_ps_complete(&p->ps))
				return BG_OUT;
			return bg_push_gaps(s) ? BG_AGAIN : bg_poll_conn(s);
		}
		return BG_RECEIVE;   /* the source sends without being asked: receive */
	}
	if (bg_fill_window(s) == BG_LOST)
		return BG_LOST;
	if (s->next_id != s->done_id)
		return BG_RECEIVE;
	chunk_push(p);   /* nothing more is coming now: install what was assembled */
	seg_push(p);
	if (p->shared) {
		/* nothing to pull now; a demand reply owed: receive it; else wait for the
		 * connection (a reply, or its loss), a stop, or 2 ms (a fault the policy
		 * reacts to, the drain, completion) */
		if (pcb_ps_complete(&p->ps) && !atomic_load(&p->shared_out))
			return BG_OUT;
		return atomic_load(&p->shared_out) ? BG_RECEIVE : bg_poll_conn(s);
	}
	if (pcb_ps_complete(&p->ps))
		return BG_OUT;
	bg_wait_for_work(p);
	return BG_AGAIN;
}

static enum bg_next bg_rr(int rr)
{
	return rr == -2 ? BG_LOST : rr < 0 ? BG_OUT : BG_AGAIN;
}

/* shared connection after completion: what is still owed is received and dropped */
static enum bg_next bg_discard(struct bg_state *s, const struct pcb_hdr *h)
{
	struct pcb_pager *p = s->p;
	if (h->type != PCB_MSG_RUN)
		return BG_AGAIN;
	struct iovec iov[PCB_MAX_RUN_PAGES];
	for (unsigned i = 0; i < h->len / PCB_PAGE_SIZE; i++)
		iov[i] = (struct iovec){ p->discard + ((size_t)i << PCB_PAGE_SHIFT), PCB_PAGE_SIZE };
	return bg_rr(bg_take_run(p, h, iov, (int)(h->len / PCB_PAGE_SIZE)));
}

static enum bg_next bg_frame_run(struct bg_state *s, const struct pcb_hdr *h, bool drain)
{
	struct pcb_pager *p = s->p;
	if (chunk_mode(p) || seg_mode(p))
		return bg_rr(chunk_mode(p) ? bg_chunk_run(p, h, drain) : bg_seg_run(p, h, drain));
	unsigned n = h->len / PCB_PAGE_SIZE;
	struct iovec iov[PCB_MAX_RUN_PAGES];
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return BG_OUT;
	struct pcb_install_job j = { .page = h->arg, .n = n, .slot = (unsigned)slot, .drain = drain };
	int niov = pcb_install_rx_iov(&p->in, (unsigned)slot, h->arg, n, iov, PCB_MAX_RUN_PAGES, j.owned);
	int rr = bg_take_run(p, h, iov, niov);
	if (rr == -2) {
		/* a partly received run is not installed: it is asked for again, so give
		 * back the pages this receive claimed (continue mode) */
		bg_release_claims(p, &j);
		return BG_LOST;
	}
	if (rr < 0)
		return BG_OUT;
	for (unsigned i = 0; i < n; i++)
		PCB_PROBE_RECEIVED(h->arg + i, PCB_CHAN_BACKGROUND, 0);
	bg_hand_off(p, &j);
	return BG_AGAIN;
}

static enum bg_next bg_frame_zero(struct bg_state *s, const struct pcb_hdr *h, bool drain)
{
	struct pcb_pager *p = s->p;
	PCB_PROBE_RECEIVED(h->arg, PCB_CHAN_BACKGROUND, 1);
	if (chunk_mode(p) || seg_mode(p))
		return (chunk_mode(p) ? bg_chunk_page(p, h->arg, NULL, drain) : bg_seg_page(p, h->arg, NULL, drain)) < 0
			       ? BG_OUT : BG_AGAIN;
	if (s->zn && (s->zfirst + s->zn != h->arg || s->zn == PCB_MAX_RUN_PAGES) &&
	    bg_flush_zero(p, &s->zfirst, &s->zn, drain) < 0)
		return BG_OUT;
	if (!s->zn)
		s->zfirst = h->arg;
	s->zn++;
	return BG_AGAIN;
}

/* a single page (older sources): queued like a RUN of one */
static enum bg_next bg_frame_page(struct bg_state *s, const struct pcb_hdr *h, const uint8_t *pl, bool drain)
{
	struct pcb_pager *p = s->p;
	PCB_PROBE_RECEIVED(h->arg, PCB_CHAN_BACKGROUND, 0);
	if (chunk_mode(p) || seg_mode(p))
		return (chunk_mode(p) ? bg_chunk_page(p, h->arg, pl, drain) : bg_seg_page(p, h->arg, pl, drain)) < 0
			       ? BG_OUT : BG_AGAIN;
	struct iovec iov[1];
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return BG_OUT;
	struct pcb_install_job j = { .page = h->arg, .n = 1, .slot = (unsigned)slot, .drain = drain };
	pcb_install_rx_iov(&p->in, (unsigned)slot, h->arg, 1, iov, 1, j.owned);
	memcpy(iov[0].iov_base, pl, PCB_PAGE_SIZE);
	bg_hand_off(p, &j);
	return BG_AGAIN;
}

/* BATCH_END for a batch out of order: one already ended (a duplicate or late
 * frame) is ignored; one after batches whose BATCH_END was lost ends those
 * too, in order (what they left out is asked for again).  Counted; a
 * BATCH_END for a batch never asked for is a protocol error. */
static void bg_batch_end_order(struct bg_state *s, const struct pcb_hdr *h)
{
	struct pcb_pager *p = s->p;
	pthread_mutex_lock(&p->rec_lock);
	uint64_t n = ++p->st.rec.batch_ends_out_of_order;
	pthread_mutex_unlock(&p->rec_lock);
	if (n == 1)
		pcb_warn("the source ended background batch %llu, expected %llu: %s", (unsigned long long)h->arg,
			 (unsigned long long)s->done_id,
			 h->arg < s->done_id ? "ignored (ended already)" : "the batches before it are ended too");
}

static enum bg_next bg_frame_batch_end(struct bg_state *s, const struct pcb_hdr *h)
{
	struct pcb_pager *p = s->p;
	if (!s->push && h->arg >= s->next_id) {
		s->c->bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source ended batch %llu, which was never asked for (next %llu)",
			  (unsigned long long)h->arg, (unsigned long long)s->next_id);
		return BG_OUT;
	}
	if (h->arg != s->done_id)
		bg_batch_end_order(s, h);
	if (h->arg < s->done_id)
		return BG_AGAIN;
	if (s->push) {
		s->done_id = h->arg + 1;
		s->next_id = s->done_id;   /* the source numbers the pushed batches */
		return BG_AGAIN;
	}
	while (s->done_id <= h->arg)
		if (bg_batch_end(p, s->ring, s->window, &s->done_id, &s->next_id) < 0)
			return atomic_load(&p->fatal) ? BG_OUT : BG_LOST;
	return BG_AGAIN;
}

/* A data frame no batch in flight asked for: received into scratch and
 * dropped, never installed (its pages, if still wanted, are asked for again
 * at their batch's end); after MAX_UNASKED such frames the source is given up. */
static enum bg_next bg_unasked(struct bg_state *s, const struct pcb_hdr *h)
{
	struct pcb_pager *p = s->p;
	pthread_mutex_lock(&p->rec_lock);
	uint64_t n = ++p->st.rec.frames_unrequested;
	pthread_mutex_unlock(&p->rec_lock);
	if (n > MAX_UNASKED) {
		s->c->bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "the source sent %llu frames of pages no batch asked for (the last: page %llu "
			  "on the %s channel)", (unsigned long long)n, (unsigned long long)h->arg,
			  p->shared ? "shared" : "background");
		return BG_OUT;
	}
	if (n == 1)
		pcb_warn("the source sent page %llu on the %s channel that no batch in flight asked for (a duplicate or late "
			 "frame): dropped", (unsigned long long)h->arg, p->shared ? "shared" : "background");
	return bg_discard(s, h);
}

/* one frame from the connection: a demand reply (shared), data, or control */
static enum bg_next bg_frame(struct bg_state *s, const struct pcb_hdr *h, const uint8_t *pl)
{
	struct pcb_pager *p = s->p;
	if (h->flags & PCB_FRAME_URGENT) {   /* a demand reply (validated: PAGE or ZERO) */
		if (!p->shared) {
			s->c->bad_frames++;
			set_fatal(p, PCB_EXIT_PROTOCOL, "demand reply for page %llu on the background channel",
				  (unsigned long long)h->arg);
			return BG_OUT;
		}
		return shared_demand_reply(p, h, pl) < 0 ? BG_OUT : BG_AGAIN;
	}
	bool drain = s->ring[s->done_id % s->window].drain;
	bool data = h->type == PCB_MSG_RUN || h->type == PCB_MSG_ZERO || h->type == PCB_MSG_PAGE;
	/* shared connection after completion: what is still owed is received and dropped */
	bool discard = p->shared && pcb_ps_complete(&p->ps);
	if (discard) {
		s->zn = 0;
		chunk_push(p);
		seg_push(p);
	}
	if (h->type != PCB_MSG_ZERO && bg_flush_zero(p, &s->zfirst, &s->zn, drain) < 0)
		return BG_OUT;
	if (discard && data)
		return bg_discard(s, h);
	/* pull: every page must have been asked for (push: the source chooses) */
	if (!s->push && data && bg_received(p, h->arg, h->type == PCB_MSG_RUN ? h->len / PCB_PAGE_SIZE : 1))
		return bg_unasked(s, h);
	switch (h->type) {
	case PCB_MSG_RUN:
		return bg_frame_run(s, h, drain);
	case PCB_MSG_ZERO:
		return bg_frame_zero(s, h, drain);
	case PCB_MSG_PAGE:
		return bg_frame_page(s, h, pl, drain);
	case PCB_MSG_PUSH_END:
		if (!s->push) {
			s->c->bad_frames++;
			set_fatal(p, PCB_EXIT_PROTOCOL, "the source ended a pushed stream that was not asked for");
			return BG_OUT;
		}
		bg_push_end(p, pl);
		return BG_AGAIN;
	case PCB_MSG_BATCH_END:
		return bg_frame_batch_end(s, h);
	case PCB_MSG_ERROR:
		source_error(p, h, pl);
		return BG_OUT;
	default:
		s->c->bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "unexpected %s frame on the %s channel", pcb_msg_name(h->type),
			  p->shared ? "shared" : "background");
		return BG_OUT;
	}
}

/* the connection was lost: install what came whole, pause, reconnect and ask
 * again for what was in flight (until the timeout); BG_AGAIN or BG_OUT */
static enum bg_next bg_reconnect(struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	chunk_push(p);   /* its pages came whole from the source before the loss */
	seg_push(p);
	/* zero pages announced before the loss came from the source intact: install them */
	if (bg_flush_zero(p, &s->zfirst, &s->zn, s->ring[s->done_id % s->window].drain) < 0)
		return BG_OUT;
	for (;;) {
		if (p->shared) {   /* the demand thread sends nothing until the new connection is up */
			pthread_mutex_lock(&p->send_lock);
			p->shared_down = true;
			pthread_mutex_unlock(&p->send_lock);
		}
		if (bg_recover(p, p->bg_loss_why) < 0)
			return BG_OUT;
		if (p->shared) {   /* demand requests first: the demand thread sends them again */
			pthread_mutex_lock(&p->send_lock);
			p->shared_gen++;
			atomic_store(&p->shared_out, 0);
			p->shared_down = false;
			pthread_mutex_unlock(&p->send_lock);
			struct shared_done d = { .kind = SHARED_RECONNECTED };
			if (shared_post(p, &d) < 0)
				return BG_OUT;
		}
		uint64_t n = bg_resend(p, s->ring, s->window, s->done_id, s->next_id);
		if (n != UINT64_MAX) {
			s->next_id = n;
			return BG_AGAIN;
		}
		snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "re-sending background batches failed: %s", strerror(errno));
	}
}

/* one turn of the loop: prepare, receive a frame, handle it */
static enum bg_next bg_step(struct bg_state *s)
{
	enum bg_next n = bg_prepare(s);
	if (n != BG_RECEIVE)
		return n;
	struct pcb_hdr h;
	const uint8_t *pl;
	int rr = bg_next(s->p, &h, &pl);
	if (rr < 0)
		return rr == -2 ? BG_LOST : BG_OUT;
	return bg_frame(s, &h, pl);
}

/* the ring of batches in flight; pushing, the request to push */
static enum bg_next bg_start(struct bg_state *s)
{
	struct pcb_pager *p = s->p;
	s->ranges = calloc((size_t)PCB_MAX_RANGES * s->window, sizeof(*s->ranges));
	s->ring = calloc(s->window, sizeof(*s->ring));
	if (!s->ranges || !s->ring) {
		set_fatal(p, PCB_EXIT_OSERR, "out of memory");
		return BG_OUT;
	}
	for (unsigned i = 0; i < s->window; i++)
		s->ring[i].r = s->ranges + (size_t)PCB_MAX_RANGES * i;
	if (s->push && bg_send_push(p) < 0) {
		set_fatal(p, PCB_EXIT_SOURCE_LOST, "asking the source to push failed: %s", strerror(errno));
		return BG_OUT;
	}
	return BG_AGAIN;
}

void *bg_thread(void *arg)
{
	struct pcb_pager *p = arg;
	struct bg_state s = { .p = p, .c = &p->chan[PCB_CHAN_BACKGROUND], .window = bg_window(p), .push = p->cfg.push };
	if (p->cfg.pin_bg)
		pcb_pin_self((int)p->cfg.pin_bg - 1);
	enum bg_next n = bg_start(&s);
	while (n == BG_AGAIN && bg_keep_going(&s)) {
		n = bg_step(&s);
		if (n == BG_LOST)
			n = bg_reconnect(&s);
	}
	chunk_push(p);
	seg_push(p);
	pcb_iq_close(&p->iq);
	p->st.background_cpu = sched_getcpu();
	p->st.background_cpu_ns = pcb_thread_cpu_ns();
	free(s.ranges);
	free(s.ring);
	return NULL;
}
