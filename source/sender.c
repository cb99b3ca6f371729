/* The source's replies: the delay line (queued items released at their due
 * time and, on an emulated link, at their link release time), frames
 * formatted from the image into a transmit buffer, and the pushed stream's
 * refill.  docs/design.md "The source". */
#include "source/internal.h"
#include "common/util.h"
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <linux/sockios.h>

/* A page of the built image that was never populated (pagemap): zero, and
 * not read, since reading it would populate it (on a kernel without the
 * shared zero page, pvm_no_zero_page=1 here, a fresh page each:
 * docs/results/2026-12-05-source-own-image.md). */
static bool src_never_populated(const struct pcb_source_state *st, uint64_t pg)
{
	const uint64_t *bm = st->cfg->mem_populated;
	return bm && !(bm[pg / 64] & (1ull << (pg % 64)));
}

/* The page as the source holds it: the guest's memory (--precopy: the guest
 * ran at the source and wrote into it) or the image.  A built image that is
 * spliced (CRIU's model) is judged by pagemap alone: a populated page is data
 * and is not read, as CRIU's page server sends every page pagemap shows
 * present (criu/mem.c should_dump_page); otherwise each page is read, as
 * QEMU's migration looks at every page (migration/ram.c save_zero_page,
 * buffer_is_zero). */
static bool src_is_zero(const struct pcb_source_state *st, uint64_t pg)
{
	if (!st->cfg->mem)
		return pcb_image_is_zero(&st->im, pg);
	if (src_never_populated(st, pg))
		return true;
	if (st->cfg->mem_populated && pcb_source_send_splices(st->cfg))
		return false;
	const uint64_t *w = (const uint64_t *)(st->cfg->mem + (pg << PCB_PAGE_SHIFT));
	for (unsigned i = 0; i < PCB_PAGE_WORDS; i++)
		if (w[i])
			return false;
	return true;
}

static const uint64_t zero_page[PCB_PAGE_WORDS];

static void src_fill(const struct pcb_source_state *st, uint64_t pg, void *buf)
{
	if (st->cfg->mem)
		memcpy(buf, st->cfg->mem + (pg << PCB_PAGE_SHIFT), PCB_PAGE_SIZE);
	else
		pcb_image_fill(&st->im, pg, buf);
	if (pg == st->corrupt_page)
		((uint8_t *)buf)[100] ^= 1;   /* its digest stays the true one: verification must catch it */
}

static void spin_delay(uint64_t ns)
{
	if (!ns)
		return;
	uint64_t end = pcb_now_ns() + ns;
	if (ns > 200 * PCB_NSEC_PER_USEC) {
		/* sleep most of it, spin the rest: nanosleep overshoots by tens of µs here */
		uint64_t sl = ns - 100 * PCB_NSEC_PER_USEC;
		struct timespec ts = { (time_t)(sl / PCB_NSEC_PER_SEC), (long)(sl % PCB_NSEC_PER_SEC) };
		nanosleep(&ts, NULL);
	}
	while (pcb_now_ns() < end)
		__builtin_ia32_pause();
}

/* Move what the pipe holds to the socket. */
static int pipe_drain(struct sconn *sc)
{
	while (sc->pipe_fill) {
		ssize_t r = splice(sc->pipe[0], NULL, sc->c.fd, NULL, sc->pipe_fill, SPLICE_F_MOVE);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		sc->pipe_fill -= (size_t)r;
		sc->c.bytes_tx += (uint64_t)r;
		atomic_fetch_add_explicit(&sc->st->bytes_spliced, (uint64_t)r, memory_order_relaxed);
	}
	return 0;
}

/* --source-send=splice: what is queued goes through the pipe, image pages by
 * reference (vmsplice: the kernel neither reads nor copies them in the
 * source; the receiver's copy reads them), staging bytes copied into it, then
 * spliced to the socket as CRIU's page server does (criu/page-xfer.c).  The
 * pipe's write end does not block: a full pipe (its slots: a header takes one
 * of its own) is drained to the socket, then filled again. */
static int tx_splice(struct sconn *sc)
{
	const uint8_t *m0 = sc->st->cfg->mem, *m1 = m0 + sc->st->cfg->mem_bytes;
	for (unsigned i = 0; i < sc->niov; i++) {
		const uint8_t *b = sc->iov[i].iov_base;
		size_t n = sc->iov[i].iov_len;
		bool img = b >= m0 && b < m1;
		while (n) {
			struct iovec v = { (void *)b, n };
			ssize_t r = img ? vmsplice(sc->pipe[1], &v, 1, SPLICE_F_NONBLOCK) : write(sc->pipe[1], b, n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno == EAGAIN && sc->pipe_fill) {
				if (pipe_drain(sc) < 0)
					return -1;
				continue;
			}
			if (r <= 0)
				return -1;
			sc->pipe_fill += (size_t)r;
			b += r;
			n -= (size_t)r;
		}
	}
	return pipe_drain(sc);
}

/* Write what is queued: one writev of staging slices and image pages, or
 * through the pipe when it carries at least SPLICE_MIN bytes of the image. */
static int tx_flush(struct sconn *sc)
{
	if (sc->pipe[0] >= 0 && sc->tximg >= SPLICE_MIN ? tx_splice(sc) < 0
	    : pcb_writev_full(sc->c.fd, sc->iov, sc->niov, &sc->c.bytes_tx) < 0)
		return -1;
	sc->tximg = 0;
	sc->niov = 0;
	sc->txoff = 0;
	sc->txlen = 0;
	return 0;
}

/* Queue n bytes at p: a staging slice right after the last one grows it. */
static void tx_piece(struct sconn *sc, const void *p, size_t n)
{
	struct iovec *last = sc->niov ? &sc->iov[sc->niov - 1] : NULL;
	if (last && (const uint8_t *)last->iov_base + last->iov_len == (const uint8_t *)p)
		last->iov_len += n;
	else
		sc->iov[sc->niov++] = (struct iovec){ (void *)p, n };
	sc->txlen += n;
}

/* The pages [pg, pg + n) as they sit in the source's memory, or NULL when they
 * must be copied or generated: a generated image; --precopy's guest memory
 * (the guest may still write it, and a frame's tag covers what was read);
 * the test hook's corrupted page. */
static const uint8_t *image_pages(const struct pcb_source_state *st, uint64_t pg, uint64_t n)
{
	if (!st->cfg->mem_fixed || (st->corrupt_page >= pg && st->corrupt_page - pg < n))
		return NULL;
	return st->cfg->mem + (pg << PCB_PAGE_SHIFT);
}

/* Append one frame; payload either `data` or, for PAGE and RUN, the image's
 * pages: sent from the memory image where it holds them (no copy in the
 * source, as a bare server writes from its buffer), else filled in staging. */
static int tx_frame(struct sconn *sc, uint16_t type, uint64_t arg, const void *data, uint32_t len, uint32_t flags)
{
	size_t tl = sc->c.mac_tx ? PCB_TAG_BYTES : 0;
	bool pages = (type == PCB_MSG_PAGE || type == PCB_MSG_RUN) && !data;
	const uint8_t *img = pages ? image_pages(sc->st, arg, len / PCB_PAGE_SIZE) : NULL;
	size_t frame = PCB_HDR_SIZE + (size_t)len + tl;   /* a write carries at most TXBUF bytes */
	/* staging stays 8-byte aligned (pages are generated in 64-bit words): a frame
	 * whose length is not a multiple of 8 leaves up to 7 bytes unused after it */
	if ((sc->txlen + frame > TXBUF || sc->txoff + frame + 7 > TXBUF || sc->niov + 3 > TX_IOV) && tx_flush(sc) < 0)
		return -1;
	if (frame > TXBUF) {   /* large (DIGESTS): straight out */
		if (tx_flush(sc) < 0)
			return -1;
		return pcb_conn_send(&sc->c, type, arg, data, len);
	}
	if (tl)
		flags |= PCB_FRAME_MAC;
	struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type, len, flags, arg };
	uint8_t *hdr = sc->tx + sc->txoff, *payload = hdr + PCB_HDR_SIZE;
	pcb_hdr_encode(&h, hdr);
	sc->txoff += PCB_HDR_SIZE;
	tx_piece(sc, hdr, PCB_HDR_SIZE);
	if (img) {
		payload = (uint8_t *)img;
		sc->tximg += len;
	} else {
		if (pages)
			for (uint32_t i = 0; i < len / PCB_PAGE_SIZE; i++)
				src_fill(sc->st, arg + i, payload + (size_t)i * PCB_PAGE_SIZE);
		else if (len && data)
			memcpy(payload, data, len);
		else if (len)
			memset(payload, 0, len);
		sc->txoff += len;
	}
	if (len)
		tx_piece(sc, payload, len);
	if (tl) {
		struct iovec v = { payload, len };
		uint8_t *tag = sc->tx + sc->txoff;
		pcb_conn_tag(&sc->c, hdr, &v, 1, tag);
		sc->txoff += tl;
		tx_piece(sc, tag, tl);
	}
	sc->txoff = (sc->txoff + 7) & ~(size_t)7;
	sc->c.frames_tx++;
	return 0;
}

void pcb_src_send_error(struct sconn *sc, const char *msg)
{
	size_t n = strlen(msg);
	tx_flush(sc);
	pcb_conn_send(&sc->c, PCB_MSG_ERROR, 0, msg, (uint32_t)(n < PCB_MAX_ERRTEXT ? n : PCB_MAX_ERRTEXT));
}

/* Size of the next frame the head item will produce. */
static uint32_t item_frame_len(struct sconn *sc, const struct item *it, uint16_t *type, uint64_t *arg)
{
	switch (it->type) {
	case PCB_MSG_REQ:
		*arg = it->arg;
		if (it->in_stream) {
			*type = PCB_MSG_SENT;
			return 0;
		}
		*type = src_is_zero(sc->st, it->arg) ? PCB_MSG_ZERO : PCB_MSG_PAGE;
		return *type == PCB_MSG_PAGE ? PCB_PAGE_SIZE : 0;
	case PCB_MSG_RANGES:
		if (it->ri == it->nr) {
			*type = PCB_MSG_BATCH_END;
			*arg = it->arg;
			return 0;
		}
		/* a zero page as ZERO; a run of data pages as one RUN frame (the destination receives it
		 * page-aligned and installs it with one ioctl), at most PCB_MAX_RUN_PAGES; on an emulated
		 * link about 400 µs of the link (pcb_link_run_pages), on a shared connection 16 pages */
		*arg = it->r[it->ri].first + it->off;
		if (src_is_zero(sc->st, *arg)) {
			*type = PCB_MSG_ZERO;
			return 0;
		} else {
			uint64_t left = it->r[it->ri].count - it->off, n = 1;
			uint64_t bps = atomic_load_explicit(&sc->st->link.bps, memory_order_relaxed);
			uint64_t max = shared_conn(sc) ? PCB_SHARED_RUN_PAGES : bps ? pcb_link_run_pages(bps) : PCB_MAX_RUN_PAGES;
			while (n < left && n < max && !src_is_zero(sc->st, *arg + n))
				n++;
			*type = PCB_MSG_RUN;
			return (uint32_t)(n * PCB_PAGE_SIZE);
		}
	case PCB_MSG_DIGEST_REQ:
		*type = PCB_MSG_DIGESTS;
		*arg = it->arg;
		return (uint32_t)(it->count * 8);
	case PCB_MSG_PING:
		*type = PCB_MSG_PONG;
		*arg = it->arg;
		return (uint32_t)it->arg;
	case PCB_MSG_PUSH_END:
		*type = PCB_MSG_PUSH_END;
		*arg = 0;
		return sizeof(struct pcb_push_end_wire);
	}
	return 0;
}

/* Emit the head item's next frame.  Returns 1 when the item is finished, 0 when more frames follow, -1 on error. */
static int item_emit(struct sconn *sc, struct item *it)
{
	struct pcb_source_state *st = sc->st;
	uint16_t type;
	uint64_t arg;
	uint32_t len = item_frame_len(sc, it, &type, &arg);
	int r;
	switch (it->type) {
	case PCB_MSG_REQ:
		if (st->cfg->demand_delay_ns && type != PCB_MSG_SENT)   /* --source-delay delays a page's reply */
			spin_delay(st->cfg->demand_delay_ns);
		r = tx_frame(sc, type, arg, NULL, len, shared_conn(sc) ? PCB_FRAME_URGENT : 0);
		if (type == PCB_MSG_SENT)
			return r < 0 ? -1 : 1;
		atomic_fetch_add(type == PCB_MSG_ZERO ? &st->zero_sent : &st->pages_sent, 1);
		struct pcb_push *e = atomic_load(&st->push);
		if (e)
			pcb_push_sent(e, arg, 1);
		return r < 0 ? -1 : 1;
	case PCB_MSG_RANGES:
		r = tx_frame(sc, type, arg, NULL, len, 0);
		if (r < 0)
			return -1;
		if (type == PCB_MSG_BATCH_END)
			return 1;
		if (type == PCB_MSG_ZERO)
			atomic_fetch_add(&st->zero_sent, 1);
		else
			atomic_fetch_add(&st->pages_sent, len / PCB_PAGE_SIZE);
		if (sc->push) {
			uint64_t n = type == PCB_MSG_ZERO ? 1 : len / PCB_PAGE_SIZE;
			pcb_push_sent(sc->push, arg, n);
			sc->push->pages += n;
		}
		it->off += type == PCB_MSG_ZERO ? 1 : len / PCB_PAGE_SIZE;
		if (it->off == it->r[it->ri].count) {
			it->off = 0;
			it->ri++;
		}
		return 0;
	case PCB_MSG_DIGEST_REQ: {
		uint64_t *d = malloc(it->count * 8);
		if (!d)
			return -1;
		for (uint64_t i = 0; i < it->count; i++)
			d[i] = htole64(st->cfg->bytes_image ? pcb_page_digest_full(st->cfg->mem + ((it->arg + i) << PCB_PAGE_SHIFT))
				       : src_never_populated(st, it->arg + i) ? pcb_page_digest(zero_page)
				       : st->cfg->mem ? pcb_page_digest(st->cfg->mem + ((it->arg + i) << PCB_PAGE_SHIFT))
						      : pcb_image_digest(&st->im, it->arg + i));
		r = tx_frame(sc, type, arg, d, len, 0);
		free(d);
		return r < 0 ? -1 : 1;
	}
	case PCB_MSG_PING:
		return tx_frame(sc, type, arg, NULL, len, 0) < 0 ? -1 : 1;
	case PCB_MSG_PUSH_END: {
		struct pcb_push_end_wire w = { htole64(sc->push->pages), htole64(sc->push->batches),
					       htole64(sc->push->sendq_max), htole64((uint64_t)sc->push->sndbuf) };
		return tx_frame(sc, type, arg, &w, len, 0) < 0 ? -1 : 1;
	}
	}
	return -1;
}

void pcb_src_item_pop(struct sconn *sc)
{
	free(sc->q[sc->qhead].r);
	sc->q[sc->qhead].r = NULL;
	sc->qhead = (sc->qhead + 1) % MAX_ITEMS;
	sc->qlen--;
}

static void uitem_pop(struct sconn *sc)
{
	sc->uqhead = (sc->uqhead + 1) % MAX_ITEMS;
	sc->uqlen--;
}

/* The pushed stream: keep PUSH_QUEUED batches queued; once the policy and the
 * address-order fill have nothing left, queue PUSH_END.  -1: out of memory. */
static int push_refill(struct sconn *sc)
{
	struct pcb_push *e = sc->push;
	struct pcb_range r[PCB_MAX_RANGES];
	while (!e->ended && sc->qlen < PUSH_QUEUED) {
		unsigned nr = 0;
		unsigned n = pcb_push_next(e, r, &nr);
		struct item it = { .due = pcb_now_ns(), .type = n ? PCB_MSG_RANGES : PCB_MSG_PUSH_END };
		if (n) {
			it.arg = e->next_id++;
			it.nr = nr;
			it.r = malloc(nr * sizeof(*it.r));
			if (!it.r)
				return -1;
			for (unsigned i = 0; i < nr; i++)
				it.r[i] = (struct pcb_range_wire){ r[i].first, r[i].count };
			e->batches++;
		} else {
			e->ended = true;
		}
		pcb_src_enqueue(sc, &it);   /* room: qlen < PUSH_QUEUED */
	}
	return 0;
}

/* The pushed stream's socket: how much it holds unsent or unacknowledged. */
static void push_sample_sendq(struct sconn *sc)
{
	int q = 0;
	if (ioctl(sc->c.fd, SIOCOUTQ, &q) == 0 && (uint64_t)q > sc->push->sendq_max)
		sc->push->sendq_max = (uint64_t)q;
}

/* Shared connection, between background frames: take in what the destination
 * has sent meanwhile (demand requests join uq) without blocking.  0, or -1
 * when the connection ends (bad frame, error; BYE or EOF only set rx_end). */
static int shared_peek(struct sconn *sc)
{
	if (sc->rx_end)
		return 0;
	struct pollfd pfd = { .fd = sc->c.fd, .events = POLLIN };
	if (poll(&pfd, 1, 0) <= 0 || !pfd.revents)
		return 0;
	int f = pcb_conn_fill(&sc->c);
	if (f == PCB_RX_EOF || (f < 0 && errno != EAGAIN && errno != EINTR)) {
		sc->rx_end = true;   /* nothing more will be asked: the queue may still be sent */
		return 0;
	}
	return f > 0 ? pcb_src_parse_frames(sc, pcb_now_ns()) : 0;
}

/* The demand connection's next queued reply is due (and not held by the link). */
static bool demand_due(const struct sconn *sc, uint64_t now)
{
	return sc->channel == PCB_CHAN_DEMAND && sc->qlen && sc->q[sc->qhead].due <= now &&
	       !atomic_load_explicit(&sc->st->link.bps, memory_order_relaxed);
}

/* Send every frame whose time has come.  Returns the time the next one is
 * due (UINT64_MAX: nothing queued), or 0 on a send error.  A shared
 * connection sends a due demand reply (uq) before the next background frame. */
uint64_t pcb_src_run_queue(struct sconn *sc)
{
	struct pcb_link *l = &sc->st->link;
	bool paced = atomic_load_explicit(&l->bps, memory_order_relaxed) != 0;
	bool shared = shared_conn(sc);
	uint64_t next = UINT64_MAX;
	for (;;) {
		if (sc->push && push_refill(sc) < 0)
			return 0;
		uint64_t now = pcb_now_ns();
		struct item *it = NULL;
		bool urgent = false;
		if (sc->uqlen) {
			struct item *u = &sc->uq[sc->uqhead];
			if (u->due <= now) {
				it = u;
				urgent = true;
			} else if (u->due < next) {
				next = u->due;
			}
		}
		if (!it && sc->qlen) {
			struct item *b = &sc->q[sc->qhead];
			if (b->due <= now)
				it = b;
			else if (b->due < next)
				next = b->due;
		}
		if (!it)
			break;
		/* background frames may leave up to 100 µs early so the sender sleeps instead of
		 * spinning; demand replies are released exactly */
		bool is_demand = urgent || sc->channel == PCB_CHAN_DEMAND;
		bool stream = sc->channel == PCB_CHAN_BACKGROUND || (shared && it->type == PCB_MSG_RANGES);
		bool chunked = shared || sc->push;   /* flushed every 64 KiB, requests read in between */
		uint64_t early = stream ? 100 * PCB_NSEC_PER_USEC : 0;
		if (paced && !it->rel) {
			uint16_t type;
			uint64_t arg;
			uint32_t len = item_frame_len(sc, it, &type, &arg);
			/* on its own connection a demand reply overtakes background frames on the link
			 * (pcb_link_reserve_urgent); on a shared one it queues behind them */
			it->rel = sc->channel == PCB_CHAN_DEMAND ? pcb_link_reserve_urgent(l, PCB_HDR_SIZE + len, it->due)
								 : pcb_link_reserve(l, PCB_HDR_SIZE + len, it->due);
		}
		if (paced && it->rel > now + early) {
			if (it->rel - early < next)
				next = it->rel - early;
			break;
		}
		it->rel = 0;
		int r = item_emit(sc, it);
		if (r < 0)
			return 0;
		if (r == 1) {
			if (urgent)
				uitem_pop(sc);
			else
				pcb_src_item_pop(sc);
		}
		/* demand replies due together (requests that arrived together) leave in one
		 * write, as the requests came, up to PCB_SHARED_FLUSH bytes */
		bool flush = (is_demand && (urgent || sc->txlen >= PCB_SHARED_FLUSH || !demand_due(sc, now))) ||
			     (chunked && (!stream || sc->txlen >= PCB_SHARED_FLUSH));
		if (flush && tx_flush(sc) < 0)
			return 0;
		if (flush && sc->push)
			push_sample_sendq(sc);
		if (chunked && !urgent && sc->txlen == 0 && shared_peek(sc) < 0)
			return 0;
		next = UINT64_MAX;
	}
	if (tx_flush(sc) < 0)
		return 0;
	return next;
}

/* Shared connection on an emulated link: the modelled socket-buffer wait of a
 * demand reply (PCB_LINK_SOCKQ_BYTES): the background bytes queued at the
 * source, up to the buffer size, at the link rate. */
static uint64_t shared_sockq_ns(struct sconn *sc)
{
	uint64_t bps = atomic_load_explicit(&sc->st->link.bps, memory_order_relaxed), bytes = 0;
	if (!bps)
		return 0;
	if (sc->push && !sc->push->ended)   /* a pushing sender keeps the socket buffer full */
		return (uint64_t)((unsigned __int128)PCB_LINK_SOCKQ_BYTES * 8 * PCB_NSEC_PER_SEC / bps);
	for (unsigned k = 0; k < sc->qlen && bytes < PCB_LINK_SOCKQ_BYTES; k++) {
		const struct item *it = &sc->q[(sc->qhead + k) % MAX_ITEMS];
		if (it->type != PCB_MSG_RANGES)
			continue;
		for (uint32_t ri = it->ri; ri < it->nr && bytes < PCB_LINK_SOCKQ_BYTES; ri++)
			for (uint64_t o = ri == it->ri ? it->off : 0; o < it->r[ri].count && bytes < PCB_LINK_SOCKQ_BYTES; o++)
				bytes += src_is_zero(sc->st, it->r[ri].first + o) ? PCB_HDR_SIZE : PCB_PAGE_SIZE + PCB_HDR_SIZE / 16;
	}
	if (bytes > PCB_LINK_SOCKQ_BYTES)
		bytes = PCB_LINK_SOCKQ_BYTES;
	return (uint64_t)((unsigned __int128)bytes * 8 * PCB_NSEC_PER_SEC / bps);
}

bool pcb_src_enqueue(struct sconn *sc, const struct item *it)
{
	if (shared_conn(sc) && it->type == PCB_MSG_REQ) {
		if (sc->uqlen == MAX_ITEMS)
			return false;
		struct item u = *it;
		u.sockq_ns = shared_sockq_ns(sc);
		u.due += u.sockq_ns;
		sc->uq[(sc->uqhead + sc->uqlen) % MAX_ITEMS] = u;
		sc->uqlen++;
		return true;
	}
	if (sc->qlen == MAX_ITEMS)
		return false;
	sc->q[(sc->qhead + sc->qlen) % MAX_ITEMS] = *it;
	sc->qlen++;
	return true;
}
