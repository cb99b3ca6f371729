/* The background thread and the installer thread: the policy's batches are
 * requested, received (copy segments, move chunks) and installed. */
#include "pager/internal.h"

/* ---- background thread ---------------------------------------------------- */

/* ---- background receive: RUN payloads land straight in staging / page cache --- */

#define BG_RX_CHUNK 8192   /* receive-buffer reads outside a RUN payload: keeps what must be copied small */

/* Wait until the background socket is readable; 0, -1 on stop / fatal, -2
 * when the connection is lost (source silent for io_timeout; reason in
 * bg_loss_why).  The receive helpers below pass -1 / -2 on. */
static void chunk_push(struct pcb_pager *p);
static void seg_push(struct pcb_pager *p);
static int bg_wait(struct pcb_pager *p, uint64_t start, bool may_push)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	if (may_push)
		seg_push(p);   /* copy: nothing more to read now: install what was gathered */
	if (may_push && p->chunk_open) {
		/* between frames with a chunk half assembled: if nothing more comes within
		 * 1 ms, install what is there rather than hold the pages back */
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (poll(&pfd, 1, 1) == 0)
			chunk_push(p);
		else
			return 0;
	}
	for (;;) {
		/* shared connection, every page present: what is still owed is received even after
		 * stop is asked (see "one shared connection"); --io-timeout bounds it */
		bool finishing = p->shared && pcb_ps_complete(&p->ps) && !atomic_load(&p->fatal);
		struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN },
					 { .fd = p->stop_pipe[0], .events = finishing ? 0 : POLLIN } };
		int n = poll(pfd, 2, 100);
		if (n < 0 && errno != EINTR) {
			set_fatal(p, PCB_EXIT_OSERR, "poll: %s", strerror(errno));
			return -1;
		}
		/* a stop asked for because the last page was installed while this thread
		 * waited: on a shared connection what is owed is still received */
		if (pfd[1].revents && !(p->shared && pcb_ps_complete(&p->ps) && !atomic_load(&p->fatal)))
			return -1;
		if (pfd[0].revents)
			return 0;
		if (pcb_now_ns() - start > p->cfg.io_timeout_ns) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "the source has not sent a background page for %.1f s",
				 pcb_ns_to_s(pcb_now_ns() - start));
			return -2;
		}
	}
}

/* One non-blocking receive of iov (waiting when nothing is there).  Returns
 * bytes (>0), -1 (fatal set, or stop) or -2 (connection lost). */
static ssize_t bg_recvmsg(struct pcb_pager *p, struct iovec *iov, int niov, bool may_push)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	uint64_t start = pcb_now_ns();
	for (;;) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		ssize_t r = recvmsg(c->fd, &m, MSG_DONTWAIT);
		if (r > 0) {
			c->bytes_rx += (uint64_t)r;
			p->st.bg_rx_ns += pcb_now_ns() - start;
			return r;
		}
		if (r == 0) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "%s channel closed by the source", p->shared ? "shared" : "background");
			return -2;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "%s channel %s", p->shared ? "shared" : "background", strerror(errno));
			return -2;
		}
		int w = bg_wait(p, start, may_push);
		if (w < 0)
			return w;
	}
}

/* One read into the receive buffer (may_push: the open job may be handed to
 * the installer while waiting; never in the middle of a RUN frame). */
static int bg_fill(struct pcb_pager *p, bool may_push)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rcap - c->rlen < BG_RX_CHUNK) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	size_t room = c->rcap - c->rlen;
	struct iovec v = { c->rbuf + c->rlen, room < BG_RX_CHUNK ? room : BG_RX_CHUNK };
	ssize_t r = bg_recvmsg(p, &v, 1, may_push);
	if (r < 0)
		return (int)r;
	c->rlen += (size_t)r;
	return 0;
}

/* A frame failed authentication (or lacks its tag on a keyed connection):
 * refused, never installed; the connection is replaced and what was in
 * flight asked for again (the lost path, -2). */
static int bg_refused(struct pcb_pager *p)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "%s", c->err);
	p->refused[PCB_CHAN_BACKGROUND] = true;
	return -2;
}

/* Next frame on the background channel.  A RUN frame is returned with its
 * header NOT consumed and *pl NULL: bg_take_run() receives its payload. */
static int bg_next(struct pcb_pager *p, struct pcb_hdr *h, const uint8_t **pl)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	for (;;) {
		size_t avail = c->rlen - c->rpos;
		if (avail >= PCB_HDR_SIZE) {
			pcb_hdr_decode(c->rbuf + c->rpos, h);
			if (pcb_proto_validate(h, c->npages, c->err, sizeof(c->err)) < 0) {
				c->bad_frames++;
				set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (%s channel): %s", p->shared ? "shared" : "background", c->err);
				return -1;
			}
			if (pcb_conn_check_flags(c, h) < 0)
				return bg_refused(p);
			if (h->type == PCB_MSG_RUN) {
				*pl = NULL;
				return 0;
			}
			size_t tl = pcb_frame_trailer(h->flags);
			if (avail >= PCB_HDR_SIZE + (size_t)h->len + tl) {
				const uint8_t *f = c->rbuf + c->rpos;
				if (tl) {
					struct iovec v = { (void *)(f + PCB_HDR_SIZE), h->len };
					if (pcb_conn_check(c, f, &v, 1, f + PCB_HDR_SIZE + h->len) < 0)
						return bg_refused(p);
				}
				*pl = f + PCB_HDR_SIZE;
				c->rpos += PCB_HDR_SIZE + h->len + tl;
				c->frames_rx++;
				return 0;
			}
		}
		int f = bg_fill(p, true);
		if (f < 0)
			return f;
	}
}

/* Receive the payload of the RUN frame at the head of the buffer into iov:
 * bytes already buffered are copied, the rest is read straight into iov
 * (with the following bytes of the stream into the receive buffer).  On a
 * keyed connection every piece is authenticated as soon as it is read (iov
 * may name one scratch page many times) and the tag that follows is checked
 * before returning: 0 only for a frame that came from the source unaltered. */
static int bg_take_run(struct pcb_pager *p, const struct pcb_hdr *h, struct iovec *iov, int niov)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	struct pcb_install_stats *st = &p->st.inst_bg;
	size_t need = h->len;
	int k = 0;
	size_t off = 0;
	bool mac = h->flags & PCB_FRAME_MAC;
	if (mac) {
		/* a sink page named many times (continue: pages the demand thread owns)
		 * would be overwritten before it is authenticated: one sink page each */
		unsigned k2 = 0;
		for (int i = 0; i < niov; i++)
			if (iov[i].iov_base == p->in.scratch && iov[i].iov_len == PCB_PAGE_SIZE)
				iov[i].iov_base = p->discard + ((size_t)k2++ << PCB_PAGE_SHIFT);
	}
	uint8_t hb[PCB_HDR_SIZE];
	memcpy(hb, c->rbuf + c->rpos, PCB_HDR_SIZE);
	if (mac)
		pcb_conn_rx_begin(c, hb);
	c->rpos += PCB_HDR_SIZE;
	c->frames_rx++;
	size_t have = c->rlen - c->rpos < need ? c->rlen - c->rpos : need;
	const uint8_t *src = c->rbuf + c->rpos;
	if (mac)
		pcb_conn_rx_update(c, src, have);
	st->rx_copied_bytes += have;
	c->rpos += have;
	need -= have;
	while (have) {
		size_t n = iov[k].iov_len - off < have ? iov[k].iov_len - off : have;
		memcpy((uint8_t *)iov[k].iov_base + off, src, n);
		src += n;
		have -= n;
		off += n;
		if (off == iov[k].iov_len) {
			k++;
			off = 0;
		}
	}
	while (need) {
		if (c->rpos == c->rlen)
			c->rpos = c->rlen = 0;
		struct iovec v[PCB_MAX_RUN_PAGES + 1];
		int nv = 0;
		size_t left = need;
		for (int i = k; i < niov && left; i++) {
			size_t o = i == k ? off : 0;
			size_t n = iov[i].iov_len - o < left ? iov[i].iov_len - o : left;
			v[nv++] = (struct iovec){ (uint8_t *)iov[i].iov_base + o, n };
			left -= n;
		}
		size_t room = c->rcap - c->rlen;
		if (room >= PCB_HDR_SIZE)
			v[nv++] = (struct iovec){ c->rbuf + c->rlen, room < BG_RX_CHUNK ? room : BG_RX_CHUNK };
		ssize_t r = bg_recvmsg(p, v, nv, false);
		if (r < 0)
			return (int)r;
		size_t direct = (size_t)r < need ? (size_t)r : need;
		st->rx_direct_bytes += direct;
		need -= direct;
		c->rlen += (size_t)r - direct;
		while (direct) {
			size_t n = iov[k].iov_len - off < direct ? iov[k].iov_len - off : direct;
			if (mac)
				pcb_conn_rx_update(c, (uint8_t *)iov[k].iov_base + off, n);
			direct -= n;
			off += n;
			if (off == iov[k].iov_len) {
				k++;
				off = 0;
			}
		}
	}
	if (!mac)
		return 0;
	while (c->rlen - c->rpos < PCB_TAG_BYTES) {   /* the tag: usually read with the payload */
		int f = bg_fill(p, false);
		if (f < 0)
			return f;
	}
	const uint8_t *tag = c->rbuf + c->rpos;
	c->rpos += PCB_TAG_BYTES;
	return pcb_conn_rx_end(c, hb, tag) < 0 ? bg_refused(p) : 0;
}

struct bg_ctx {
	struct pcb_pager *p;
	bool drain;
	uint64_t now;
};

/* Called by the install path for every background page it resolved. */
static void bg_installed(void *vctx, uint64_t page, int res, bool zero)
{
	struct bg_ctx *x = vctx;
	struct pcb_pager *p = x->p;
	int kind = x->drain ? PCB_INST_DRAIN : PCB_INST_BACKGROUND;
	if (zero)
		kind = zero_kind(kind);
	PCB_PROBE_INSTALLED(page, kind, res ? -EEXIST : 0);
	if (res == 0) {
		if (!x->now || !(page & 15))
			x->now = pcb_now_ns();
		if (!p->st.t_bg_first_ns)
			p->st.t_bg_first_ns = x->now;
		p->st.t_bg_last_ns = x->now;
		if (p->cfg.huge)
			p->inst_kind[page] = (uint8_t)kind;   /* present (and timed) when its huge page is installed */
		else
			record_install(p, page, kind, x->now);
		if (zero)
			(*(x->drain ? &p->st.zero_drain : &p->st.zero_background))++;
		else
			(*(x->drain ? &p->st.pages_drain : &p->st.pages_background))++;
		if (!p->cfg.huge)
			mark_present(p, page);
		return;
	}
	p->st.eexist_background++;
	if (res == 1)
		mark_present(p, page);   /* the PTE is there; res 2: the demand thread owns it and marks it */
}

/* Queue a run of zero pages for the installer thread. */
static int bg_flush_zero(struct pcb_pager *p, uint64_t *zfirst, unsigned *zn, bool drain)
{
	if (!*zn)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	struct pcb_install_job j = { .page = *zfirst, .n = *zn, .slot = (unsigned)slot, .zero = true, .drain = drain };
	pcb_iq_push(&p->iq, &j);
	*zn = 0;
	return 0;
}

/* ---- copy: back-to-back frames gathered into one installer job (see struct pcb_pager) ---- */

static bool seg_mode(const struct pcb_pager *p)
{
	return p->in.ops->rx == PCB_INRX_GATHER || p->in.ops->rx == PCB_INRX_PAGECACHE;
}

/* continue: the ownership bits of a run (bit 0 = its first page) into
 * the job's bits, which number the job's data pages in order */
static void owned_put(uint64_t *job, unsigned at, const uint64_t *run, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (run[i >> 6] >> (i & 63) & 1)
			job[(at + i) >> 6] |= 1ull << ((at + i) & 63);
}


static void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j);

static void seg_push(struct pcb_pager *p)
{
	if (!p->sj_open)
		return;
	p->sj_open = false;
	pcb_iq_push(&p->iq, &p->sj);
}

/* Make room in the open job for a segment of `data` staging pages (pushing
 * the job first when it is full or for another kind of batch).  0, or -1 on stop. */
static int seg_room(struct pcb_pager *p, unsigned data, bool drain)
{
	if (p->sj_open && (p->sj.nseg == PCB_JOB_SEGS || p->sj_used + data > PCB_MAX_RUN_PAGES || p->sj.drain != drain))
		seg_push(p);
	if (p->sj_open)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	p->sj.nseg = 0;
	memset(p->sj.owned, 0, sizeof(p->sj.owned));
	p->sj.slot = (unsigned)slot;
	p->sj.drain = drain;
	p->sj.chunk = p->sj.zero = false;
	memset(p->sj.zmask, 0, sizeof(p->sj.zmask));
	p->sj_used = p->sj_ztail = 0;
	p->sj_open = true;
	return 0;
}

/* The open job's last segment when pg continues it (same kind of batch), else NULL. */
static struct pcb_install_seg *seg_last(struct pcb_pager *p, uint64_t pg, bool drain)
{
	if (!p->sj_open || !p->sj.nseg || p->sj.drain != drain)
		return NULL;
	struct pcb_install_seg *g = &p->sj.seg[p->sj.nseg - 1];
	return g->page + g->n == pg ? g : NULL;
}

/* Zero slots: n zero pages at pg appended to the open job's staging (copy: a
 * zeroed staging page; continue: the page claimed, put in the page cache by
 * the installer), so
 * that they are installed with the data around them by one ioctl. */
static void seg_zero_slots(struct pcb_pager *p, uint64_t pg, unsigned n)
{
	if (p->in.ops->rx == PCB_INRX_PAGECACHE) {
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		pcb_install_claim_zero(&p->in, pg, n, own);
		owned_put(p->sj.owned, p->sj_used, own, n);
	} else {
		memset(pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT), 0,
		       (size_t)n << PCB_PAGE_SHIFT);
	}
	for (unsigned i = p->sj_used; i < p->sj_used + n; i++)
		p->sj.zmask[i >> 6] |= 1ull << (i & 63);
	p->sj_used += n;
}

/* Receive a RUN's payload into the open job at staging page sj_used. 0, -1, -2 (lost). */
static int seg_receive(struct pcb_pager *p, const struct pcb_hdr *h, unsigned n)
{
	if (p->in.ops->rx == PCB_INRX_PAGECACHE) {
		/* straight into the page cache, claiming each page (a page the demand
		 * thread owns goes to scratch) */
		struct pcb_install_job run = { .page = h->arg, .n = n };
		struct iovec iov[PCB_MAX_RUN_PAGES];
		int niov = pcb_install_rx_iov(&p->in, p->sj.slot, h->arg, n, iov, PCB_MAX_RUN_PAGES, run.owned);
		int rr = bg_take_run(p, h, iov, niov);
		if (rr < 0) {
			bg_release_claims(p, &run);   /* asked for again: give the claims back */
			return rr;
		}
		owned_put(p->sj.owned, p->sj_used, run.owned, n);
		return 0;
	}
	struct iovec iov = { pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT),
			     (size_t)n << PCB_PAGE_SHIFT };
	return bg_take_run(p, h, &iov, 1);   /* a run cut short is not installed: it is asked for again */
}

/* A RUN frame received straight into the open job's staging slot.  It
 * extends the last data segment when it continues it; a short zero segment
 * just before it becomes zero slots of the same segment.  0, -1, -2 (lost). */
static int bg_seg_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	unsigned n = h->len / PCB_PAGE_SIZE;
	const struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	/* on an emulated link a frame's payload arrives at the link's pace: install what
	 * was gathered before waiting for it (on loopback the next frame is already there) */
	if (p->sj_open && p->cfg.link_bps && c->rlen - c->rpos < PCB_HDR_SIZE + (size_t)h->len)
		seg_push(p);
	struct pcb_install_seg *last = seg_last(p, h->arg, drain);
	if (last && last->zero && last->n <= p->zero_inline && p->sj_used + last->n + n <= PCB_MAX_RUN_PAGES) {
		last->zero = false;   /* the zero run before this one: zero slots */
		last->off = p->sj_used;
		seg_zero_slots(p, last->page, last->n);
	}
	if (!last || last->zero || p->sj_used + n > PCB_MAX_RUN_PAGES) {
		last = NULL;
		if (seg_room(p, n, drain) < 0)
			return -1;
	}
	unsigned at = p->sj_used;
	int rr = seg_receive(p, h, n);
	if (rr < 0)
		return rr;
	if (last)
		last->n += n;
	else
		p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ h->arg, at, n, false };
	p->sj_used += n;
	p->sj_ztail = 0;
	for (unsigned i = 0; i < n; i++)
		PCB_PROBE_RECEIVED(h->arg + i, PCB_CHAN_BACKGROUND, 0);
	return 0;
}

/* A ZERO frame after a data segment: a zero slot while its zero run is no
 * longer than zero_inline; the run that grows longer leaves the segment and
 * becomes a zero segment (UFFDIO_ZEROPAGE).  1 taken, 0 not. */
static int seg_zero_after_data(struct pcb_pager *p, struct pcb_install_seg *last, uint64_t pg)
{
	if (p->sj_ztail < p->zero_inline && p->sj_used < PCB_MAX_RUN_PAGES) {
		seg_zero_slots(p, pg, 1);
		last->n++;
		p->sj_ztail++;
		return 1;
	}
	if (!p->sj_ztail || p->sj.nseg == PCB_JOB_SEGS || p->in.ops->rx == PCB_INRX_PAGECACHE)
		return 0;
	/* copy: the zero run is too long to copy in: its slots become a zero segment */
	unsigned z = p->sj_ztail;
	last->n -= z;
	p->sj_used -= z;
	for (unsigned i = p->sj_used; i < p->sj_used + z; i++)
		p->sj.zmask[i >> 6] &= ~(1ull << (i & 63));
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ pg - z, 0, z + 1, true };
	p->sj_ztail = 0;
	return 1;
}

/* A ZERO frame (data NULL) or a single PAGE. 0, or -1 on stop. */
static int bg_seg_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	struct pcb_install_seg *last = seg_last(p, pg, drain);
	if (!data && last && last->zero) {
		last->n++;   /* a run of ZERO frames: one ZEROPAGE call */
		return 0;
	}
	if (!data && last && seg_zero_after_data(p, last, pg))
		return 0;
	if (seg_room(p, data ? 1 : 0, drain) < 0)
		return -1;
	if (data && p->in.ops->rx == PCB_INRX_PAGECACHE) {
		struct iovec iov[1];
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		pcb_install_rx_iov(&p->in, p->sj.slot, pg, 1, iov, 1, own);
		memcpy(iov[0].iov_base, data, PCB_PAGE_SIZE);
		owned_put(p->sj.owned, p->sj_used, own, 1);
	} else if (data) {
		memcpy(pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	}
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ pg, data ? p->sj_used : 0, 1, !data };
	p->sj_used += data ? 1 : 0;
	p->sj_ztail = 0;
	return 0;
}

/* ---- move: background pages assembled in 2 MiB chunks (see struct pcb_pager) ---- */

bool chunk_mode(const struct pcb_pager *p)
{
	return p->in.ops->rx == PCB_INRX_CHUNK;
}

static void chunk_push(struct pcb_pager *p)
{
	if (!p->chunk_open)
		return;
	p->chunk_open = false;
	pcb_iq_push(&p->iq, &p->chunk);
}

/* Start chunk job j for the chunk holding page pg, in the slot `ahead` jobs
 * after the next one pushed.  0, or -1 on stop. */
static int chunk_start(struct pcb_pager *p, struct pcb_install_job *j, uint64_t pg, bool drain, unsigned ahead)
{
	int slot = pcb_iq_reserve_ahead(&p->iq, ahead, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	uint64_t first = pg - pg % PCB_CHUNK_PAGES;
	memset(j, 0, sizeof(*j));
	j->page = first;
	j->n = (unsigned)(p->cfg.npages - first < PCB_CHUNK_PAGES ? p->cfg.npages - first : PCB_CHUNK_PAGES);
	j->slot = (unsigned)slot;
	j->drain = drain;
	j->chunk = true;
	return 0;
}

/* Make the open chunk the one holding page pg (pushing another one first). */
static int chunk_for(struct pcb_pager *p, uint64_t pg, bool drain)
{
	if (p->chunk_open && (pg - p->chunk.page >= PCB_CHUNK_PAGES || pg < p->chunk.page || drain != p->chunk.drain))
		chunk_push(p);
	if (p->chunk_open)
		return 0;
	if (chunk_start(p, &p->chunk, pg, drain, 0) < 0)
		return -1;
	p->chunk_open = true;
	return 0;
}

static void chunk_mark(struct pcb_install_job *j, uint64_t pg, bool zero)
{
	unsigned i = (unsigned)(pg - j->page);
	j->have[i >> 6] |= 1ull << (i & 63);
	if (zero)
		j->zmask[i >> 6] |= 1ull << (i & 63);
}

/* Push the open chunk once every page of it has arrived. */
static void chunk_push_if_whole(struct pcb_pager *p)
{
	unsigned got = 0;
	for (unsigned i = 0; i < PCB_CHUNK_WORDS; i++)
		got += (unsigned)__builtin_popcountll(p->chunk.have[i]);
	if (got == p->chunk.n)
		chunk_push(p);
}

/* A RUN frame (header at the head of the receive buffer) received straight
 * into the staging chunk(s) of its pages: at most two, as a run has at most
 * PCB_MAX_RUN_PAGES pages.  0, -1 (stop / fatal) or -2 (connection lost). */
static int bg_chunk_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	uint64_t first = h->arg;
	unsigned n = h->len / PCB_PAGE_SIZE;
	if (chunk_for(p, first, drain) < 0)
		return -1;
	uint64_t end0 = p->chunk.page + PCB_CHUNK_PAGES;
	unsigned n0 = first + n <= end0 ? n : (unsigned)(end0 - first);
	struct iovec iov[2] = { { pcb_install_slot_buf(&p->in, p->chunk.slot) + ((first - p->chunk.page) << PCB_PAGE_SHIFT),
				  (size_t)n0 << PCB_PAGE_SHIFT } };
	int niov = 1;
	if (n0 < n) {
		if (chunk_start(p, &p->chunk_next, end0, drain, 1) < 0)
			return -1;
		iov[1] = (struct iovec){ pcb_install_slot_buf(&p->in, p->chunk_next.slot), (size_t)(n - n0) << PCB_PAGE_SHIFT };
		niov = 2;
	}
	int rr = bg_take_run(p, h, iov, niov);
	if (rr == 0) {
		for (unsigned i = 0; i < n0; i++) {
			chunk_mark(&p->chunk, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
		for (unsigned i = n0; i < n; i++) {
			chunk_mark(&p->chunk_next, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
	}
	/* a run cut short is not marked: the pages are asked for again (the chunks
	 * are still pushed, so their slots get fresh memory) */
	if (niov == 2) {
		chunk_push(p);
		p->chunk = p->chunk_next;
		p->chunk_open = true;
		if (rr < 0)
			chunk_push(p);
	}
	if (rr == 0)
		chunk_push_if_whole(p);
	return rr;
}

/* A ZERO frame (zero: data NULL) or a single PAGE in chunk mode: the
 * chunk's memory is zero already; a data page is copied in. */
static int bg_chunk_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	if (chunk_for(p, pg, drain) < 0)
		return -1;
	if (data)
		memcpy(pcb_install_slot_buf(&p->in, p->chunk.slot) + ((pg - p->chunk.page) << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	chunk_mark(&p->chunk, pg, !data);
	chunk_push_if_whole(p);
	return 0;
}

/* The installer thread: issues the install ioctls of what the background
 * thread received, so receiving the next run overlaps installing this one. */
void *inst_thread(void *arg)
{
	struct pcb_pager *p = arg;
	if (p->cfg.pin_install)
		pcb_pin_self((int)p->cfg.pin_install - 1);
	struct pcb_install_job j;
	while (pcb_iq_pop(&p->iq, &j, &p->stopping, &p->fatal) == 0) {
		if (pcb_ps_complete(&p->ps)) {
			/* every page is in (a duplicate after a re-request): nothing to
			 * install, and the region may be unregistered any moment now */
			if (j.chunk)
				pcb_install_chunk_reset(&p->in, j.slot, &p->st.inst_bg);
			pcb_iq_done(&p->iq);
			continue;
		}
		struct bg_ctx x = { p, j.drain, 0 };
		int r = pcb_install_job(&p->in, &j, &p->st.inst_bg, bg_installed, &x);
		p->st.inst_bg.jobs++;
		pcb_iq_done(&p->iq);
		if (r < 0) {
			set_fatal(p, PCB_EXIT_OSERR, "installing %spages %llu..%llu failed: %s", j.zero ? "zero " : "",
				  (unsigned long long)j.page, (unsigned long long)(j.page + j.n - 1), strerror(-r));
			break;
		}
	}
	p->st.install_cpu = sched_getcpu();
	p->st.install_cpu_ns = pcb_thread_cpu_ns();
	return NULL;
}

static unsigned bg_next_batch(struct pcb_pager *p, struct pcb_batch *b, uint64_t *drain_cursor, bool *is_drain)
{
	unsigned n = 0;
	*is_drain = false;
	if (p->pol.ops->background)
		n = p->pol.ops->next_batch(&p->pol, b);
	if (!n && atomic_load(&p->drain)) {
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
/* Continue mode: the receiver claims each page-cache page it writes (the
 * `filled` bit) so that the demand path leaves it alone.  A run cut short by a
 * lost connection is never installed: release its claims, or the re-requested
 * pages would be received into scratch and never installed. */
static void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j)
{
	if (p->in.ops->rx != PCB_INRX_PAGECACHE)
		return;
	for (unsigned i = 0; i < j->n; i++)
		if (j->owned[i >> 6] >> (i & 63) & 1) {
			uint64_t pg = j->page + i;
			atomic_fetch_and_explicit(&p->in.filled[pg >> 6], ~(1ull << (pg & 63)), memory_order_acq_rel);
		}
}

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
 * nobody asked for).  0, or -1 with fatal set. */
static int bg_received(struct pcb_pager *p, uint64_t first, uint64_t n)
{
	for (uint64_t pg = first; pg < first + n; pg++) {
		uint64_t m = 1ull << (pg & 63);
		if (!(p->bg_want[pg >> 6] & m)) {
			p->chan[PCB_CHAN_BACKGROUND].bad_frames++;
			set_fatal(p, PCB_EXIT_PROTOCOL, "the source sent page %llu on the %s channel without being asked for it",
				  (unsigned long long)pg, p->shared ? "shared" : "background");
			return -1;
		}
		p->bg_want[pg >> 6] &= ~m;
	}
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
		unsigned n = bg_next_batch(p, &b, &s->drain_cursor, &is_drain);
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

/* two connections, nothing to pull now: wait for a fault, the drain, or completion */
static void bg_wait_for_work(struct pcb_pager *p)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->bg_waiting, true);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (p->pol.ops->background ? 2 : 50) * 1000 * 1000;   /* drain/stop broadcast anyway */
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (!atomic_load(&p->stopping) && !atomic_load(&p->fatal) && !pcb_ps_complete(&p->ps))
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	atomic_store(&p->bg_waiting, false);
	pthread_mutex_unlock(&p->lock);
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
			return bg_poll_conn(s);
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
	pcb_iq_push(&p->iq, &j);
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
	pcb_iq_push(&p->iq, &j);
	return BG_AGAIN;
}

static enum bg_next bg_frame_batch_end(struct bg_state *s, const struct pcb_hdr *h)
{
	struct pcb_pager *p = s->p;
	if (h->arg != s->done_id) {
		s->c->bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source ended batch %llu, expected %llu",
			  (unsigned long long)h->arg, (unsigned long long)s->done_id);
		return BG_OUT;
	}
	if (s->push) {
		s->done_id++;
		s->next_id = s->done_id;   /* the source numbers the pushed batches */
	} else if (bg_batch_end(p, s->ring, s->window, &s->done_id, &s->next_id) < 0) {
		return atomic_load(&p->fatal) ? BG_OUT : BG_LOST;
	}
	return BG_AGAIN;
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
	if (!s->push && data && bg_received(p, h->arg, h->type == PCB_MSG_RUN ? h->len / PCB_PAGE_SIZE : 1) < 0)
		return BG_OUT;
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
	case PCB_MSG_ERROR: {
		char text[PCB_MAX_ERRTEXT + 1];
		pcb_sanitize(text, sizeof(text), pl, h->len);
		set_fatal(p, PCB_EXIT_PROTOCOL, "source reported an error: %s", text);
		return BG_OUT;
	}
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
