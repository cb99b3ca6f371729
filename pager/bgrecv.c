/* The background thread's receive: frames read from the background
 * connection, RUN payloads straight into staging or the page cache
 * (readv into the destination slots, nothing copied twice on the way). */
#include "pager/background.h"

#define BG_RX_CHUNK 8192   /* receive-buffer reads outside a RUN payload: keeps what must be copied small */

/* Wait until the background socket is readable; 0, -1 on stop / fatal, -2
 * when the connection is lost (source silent for io_timeout; reason in
 * bg_loss_why).  The receive helpers below pass -1 / -2 on. */
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
int bg_next(struct pcb_pager *p, struct pcb_hdr *h, const uint8_t **pl)
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
int bg_take_run(struct pcb_pager *p, const struct pcb_hdr *h, struct iovec *iov, int niov)
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
