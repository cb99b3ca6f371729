#include "source/source.h"
#include "source/push.h"
#include "wire/handshake.h"
#include "wire/link.h"
#include "wire/proto.h"
#include "common/image.h"
#include "common/util.h"
#include "common/pin.h"
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#define MAX_CONNS 256
/* Connections still in their handshake (unauthenticated) are limited in all
 * and per peer address: a new connection over a limit ends the oldest
 * unauthenticated one (of that peer, or of all), so holding connections open
 * cannot lock the destination out: its handshake takes about a round trip,
 * an attacker's connections are ended in turn, and each is also bounded by the
 * whole-handshake deadline.  Connections past the handshake are not affected. */
#define MAX_UNAUTH 64
#define MAX_UNAUTH_PER_PEER 16
/* Handshake refusals logged one line each; after that only every 10th power. */
#define HS_LOG_FIRST 10

struct slot {
	int fd;                  /* -1: free */
	bool authed;             /* past the handshake */
	bool hello;              /* a well-formed HELLO came (evicted after those without) */
	bool ended;              /* shut down to make room */
	uint32_t peer;           /* IPv4 address, network order */
	uint64_t t_accept;
};
/* On an emulated link a background frame carries pcb_link_run_pages(rate) pages
 * (16..128: about 400 µs of the link; wire/link.h).  A demand reply on its own
 * connection does not queue behind it (pcb_link_reserve_urgent); smaller frames
 * cost the host so much per page at high rates (61 k frames/s at 2 Gbit/s with
 * 4 KiB frames; 16-page frames held a 10gbit pull to a mean 5.3 Gbit/s here) that the
 * pull falls short of the link. */
/* A shared connection (--channels=1) cuts background RUN frames to 16 pages
 * (64 KiB) too and hands what it has formatted to the socket every 64 KiB,
 * checking for demand requests in between: a demand reply goes out at the
 * next 64 KiB boundary (QEMU's source checks its page-request queue between
 * pages), behind whatever the socket already holds -- the head-of-line
 * blocking one connection has. */
#define PCB_SHARED_RUN_PAGES 16
#define PCB_SHARED_FLUSH (64u << 10)

struct pcb_source_state {
	const struct pcb_source_cfg *cfg;
	struct pcb_image im;
	uint64_t npages;
	struct pcb_config_wire cw;
	struct pcb_link link;
	atomic_int live_conns;
	pthread_mutex_t conns_lock;       /* live connections, to limit the unauthenticated and end them at exit */
	struct slot slot[MAX_CONNS];
	atomic_int finished_sessions;
	atomic_ullong pages_sent, zero_sent, bad_frames, auth_failures, resumes;
	atomic_ullong hs_refused, hs_timeouts, evicted, refused_full;
	atomic_ullong conns[PCB_CHAN_SHARED + 1];   /* connections past the handshake, per HELLO channel */
	/* --policy-end=source: the engine of the current migration (set by the
	 * connection that received PUSH; the demand connection tells it of requests) */
	_Atomic(struct pcb_push *) push;
	pthread_mutex_t push_lock;        /* replacing the engine */
	uint64_t corrupt_page;            /* tests only (PCB_TEST_CORRUPT_PAGE): serve this page with a byte flipped */
};

/* A reply waiting in the delay line: due = arrival + link delay. */
struct item {
	uint64_t due;
	uint16_t type;            /* request type: REQ, RANGES, DIGEST_REQ, PING; PUSH_END (end of a pushed stream) */
	uint64_t arg;
	uint64_t count;           /* DIGEST_REQ count */
	struct pcb_range_wire *r; /* RANGES (host order) */
	uint32_t nr, ri;          /* ranges, current range */
	uint64_t off;             /* pages of range ri already sent */
	uint64_t rel;             /* link release time of the next frame (0 = not reserved) */
	uint64_t sockq_ns;        /* shared connection on an emulated link: modelled socket-buffer wait (REQ) */
	bool in_stream;           /* REQ for a page the pushed stream already sent or queued: answered SENT */
};

#define MAX_ITEMS 1024        /* requests queued per connection; beyond it the socket is not read */
#define TXBUF (1u << 20)

struct sconn {
	struct pcb_source_state *st;
	struct pcb_conn c;
	int slot;                 /* in st->slot, -1 (fuzzer) */
	int channel;
	struct item *q;
	unsigned qhead, qlen;
	struct item *uq;          /* shared connection: demand requests, served before q at frame boundaries */
	unsigned uqhead, uqlen;
	uint8_t *tx;
	size_t txlen;
	bool bye;
	bool rx_end;              /* shared connection: the destination said BYE or went away while we sent */
	struct pcb_push *push;    /* this connection carries the pushed stream (PUSH received) */
};

/* Pushed batches queued ahead of the socket: enough that the sender never
 * waits for the policy, few enough that a demand request still steers the
 * next batch (QEMU's sender picks each page when it is about to send it). */
#define PUSH_QUEUED 2

static bool shared_conn(const struct sconn *sc)
{
	return sc->channel == PCB_CHAN_SHARED;
}

/* The page as the source holds it: the guest's memory (--precopy: the guest
 * ran at the source and wrote into it) or the image. */
static bool src_is_zero(const struct pcb_source_state *st, uint64_t pg)
{
	if (!st->cfg->mem)
		return pcb_image_is_zero(&st->im, pg);
	const uint64_t *w = (const uint64_t *)(st->cfg->mem + (pg << PCB_PAGE_SHIFT));
	for (unsigned i = 0; i < PCB_PAGE_WORDS; i++)
		if (w[i])
			return false;
	return true;
}

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

static int tx_flush(struct sconn *sc)
{
	if (!sc->txlen)
		return 0;
	if (pcb_write_full(sc->c.fd, sc->tx, sc->txlen) < 0)
		return -1;
	sc->c.bytes_tx += sc->txlen;
	sc->txlen = 0;
	return 0;
}

/* Append one frame; payload either `data` or, for PAGE, generated from the image. */
static int tx_frame(struct sconn *sc, uint16_t type, uint64_t arg, const void *data, uint32_t len, uint32_t flags)
{
	size_t tl = sc->c.mac_tx ? PCB_TAG_BYTES : 0;
	if (TXBUF - sc->txlen < PCB_HDR_SIZE + (size_t)len + tl && tx_flush(sc) < 0)
		return -1;
	if (PCB_HDR_SIZE + (size_t)len + tl > TXBUF) {   /* large (DIGESTS): straight out */
		if (tx_flush(sc) < 0)
			return -1;
		return pcb_conn_send(&sc->c, type, arg, data, len);
	}
	if (tl)
		flags |= PCB_FRAME_MAC;
	struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type, len, flags, arg };
	uint8_t *hdr = sc->tx + sc->txlen;
	pcb_hdr_encode(&h, hdr);
	sc->txlen += PCB_HDR_SIZE;
	if ((type == PCB_MSG_PAGE || type == PCB_MSG_RUN) && !data)
		for (uint32_t i = 0; i < len / PCB_PAGE_SIZE; i++)
			src_fill(sc->st, arg + i, sc->tx + sc->txlen + (size_t)i * PCB_PAGE_SIZE);
	else if (len && data)
		memcpy(sc->tx + sc->txlen, data, len);
	else if (len)
		memset(sc->tx + sc->txlen, 0, len);
	sc->txlen += len;
	if (tl) {
		struct iovec v = { hdr + PCB_HDR_SIZE, len };
		pcb_conn_tag(&sc->c, hdr, &v, 1, sc->tx + sc->txlen);
		sc->txlen += tl;
	}
	sc->c.frames_tx++;
	return 0;
}

static void send_error(struct sconn *sc, const char *msg)
{
	size_t n = strlen(msg);
	tx_flush(sc);
	pcb_conn_send(&sc->c, PCB_MSG_ERROR, 0, msg, (uint32_t)(n < PCB_MAX_ERRTEXT ? n : PCB_MAX_ERRTEXT));
}

static void reject(struct sconn *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reject(struct sconn *sc, const char *fmt, ...)
{
	char msg[PCB_MAX_ERRTEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&sc->st->bad_frames, 1);
	pcb_err("source: rejected frame from the destination (channel %d): %s", sc->channel, msg);
	send_error(sc, msg);
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

static void item_pop(struct sconn *sc)
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

static int parse_frames(struct sconn *sc, uint64_t t_rx);
static bool enqueue(struct sconn *sc, const struct item *it);

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
		enqueue(sc, &it);   /* room: qlen < PUSH_QUEUED */
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
	return f > 0 ? parse_frames(sc, pcb_now_ns()) : 0;
}

/* Send every frame whose time has come.  Returns the time the next one is
 * due (UINT64_MAX: nothing queued), or 0 on a send error.  A shared
 * connection sends a due demand reply (uq) before the next background frame. */
static uint64_t run_queue(struct sconn *sc)
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
				item_pop(sc);
		}
		bool flush = is_demand || (chunked && (!stream || sc->txlen >= PCB_SHARED_FLUSH));
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

static bool enqueue(struct sconn *sc, const struct item *it)
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

/* PUSH: open the policy at the source; this connection carries its stream.
 * 0, or -1 (refused: the reason goes back in an ERROR frame). */
static int push_start(struct sconn *sc, const uint8_t *payload)
{
	struct pcb_source_state *st = sc->st;
	struct pcb_push_wire w;
	char why[200];
	memcpy(&w, payload, sizeof(w));
	w.batch_pages = le32toh(w.batch_pages);
	w.reserved = le32toh(w.reserved);
	if (sc->push || (sc->channel != PCB_CHAN_BACKGROUND && sc->channel != PCB_CHAN_SHARED)) {
		reject(sc, "PUSH on channel %d (only once, on the background or shared connection)", sc->channel);
		return -1;
	}
	w.policy[sizeof(w.policy) - 1] = 0;   /* for the checks below; pcb_push_open refuses it unterminated anyway */
	w.opts[sizeof(w.opts) - 1] = 0;
	if (!st->cfg->push_local_files && (strchr(w.policy, '/') || strstr(w.opts, "file="))) {
		reject(sc, "PUSH refused: this source runs only built-in policies without input files (policy '%.64s')",
		       w.policy);
		return -1;
	}
	struct pcb_push *e;
	if (pcb_push_open(&e, &w, st->npages, why, sizeof(why)) < 0) {
		reject(sc, "PUSH refused: %s", why);
		return -1;
	}
	int one = 0;
	socklen_t sl = sizeof(one);
	if (getsockopt(sc->c.fd, SOL_SOCKET, SO_SNDBUF, &one, &sl) == 0)
		e->sndbuf = one;
	pthread_mutex_lock(&st->push_lock);
	e->older = atomic_load(&st->push);   /* an earlier session's engine: freed with the state */
	atomic_store(&st->push, e);
	pthread_mutex_unlock(&st->push_lock);
	sc->push = e;
	pcb_log("source: pushing with policy %s (batches of %u pages)", e->pol.ops->name, e->batch_pages);
	return 0;
}

/* Handle one received frame. 0 = go on, 1 = BYE, -1 = end the connection. */
static int handle_frame(struct sconn *sc, const struct pcb_hdr *h, const uint8_t *p, uint64_t t_rx)
{
	struct pcb_source_state *st = sc->st;
	struct item it = { .due = t_rx + atomic_load_explicit(&st->link.delay_ns, memory_order_relaxed),
			   .type = h->type, .arg = h->arg };
	char why[160];
	switch (h->type) {
	case PCB_MSG_REQ: {
		struct pcb_push *e = atomic_load(&st->push);
		if (e) {
			/* a page the stream has sent or queued is not sent again: the
			 * destination gets it there (QEMU: unqueue_page's dirty test) */
			it.in_stream = pcb_push_in_stream(e, h->arg);
			pcb_push_request(e, h->arg);   /* the policy hears of it as the source receives it */
		}
		break;
	}
	case PCB_MSG_PING:
		break;
	case PCB_MSG_PUSH:
		return push_start(sc, p) < 0 ? -1 : 0;
	case PCB_MSG_RANGES: {
		long n = pcb_proto_check_ranges(p, h->len, st->npages, why, sizeof(why));
		if (n < 0) {
			reject(sc, "bad RANGES: %s", why);
			return -1;
		}
		it.nr = h->len / sizeof(struct pcb_range_wire);
		it.r = malloc(it.nr * sizeof(*it.r));
		if (!it.r)
			return -1;
		for (uint32_t i = 0; i < it.nr; i++) {
			memcpy(&it.r[i], p + i * sizeof(struct pcb_range_wire), sizeof(struct pcb_range_wire));
			it.r[i].first = le64toh(it.r[i].first);
			it.r[i].count = le64toh(it.r[i].count);
		}
		break;
	}
	case PCB_MSG_DIGEST_REQ: {
		uint64_t count;
		memcpy(&count, p, 8);
		count = le64toh(count);
		if (count == 0 || count > PCB_MAX_DIGESTS || count > st->npages - h->arg) {
			reject(sc, "bad DIGEST_REQ: %llu pages from page %llu (image has %llu pages)",
			       (unsigned long long)count, (unsigned long long)h->arg, (unsigned long long)st->npages);
			return -1;
		}
		it.count = count;
		break;
	}
	case PCB_MSG_LINK: {
		struct pcb_link_wire lw;
		if (pcb_link_decode(p, &lw, why, sizeof(why)) < 0) {
			reject(sc, "bad LINK: %s", why);
			return -1;
		}
		pcb_link_set(&st->link, lw.bits_per_sec, lw.delay_ns);
		pcb_log("source: link emulation %llu bit/s, reply delay %llu ns", (unsigned long long)lw.bits_per_sec,
			(unsigned long long)lw.delay_ns);
		return 0;
	}
	case PCB_MSG_BYE:
		return 1;
	default:
		reject(sc, "unexpected %s frame on channel %d", pcb_msg_name(h->type), sc->channel);
		return -1;
	}
	if (!enqueue(sc, &it)) {
		free(it.r);
		reject(sc, "more than %d requests queued", MAX_ITEMS);
		return -1;
	}
	return 0;
}

/* Queue every complete frame in the receive buffer (while there is room).
 * 0 = go on (BYE sets bye and rx_end), -1 = the connection ends (bad frame, error). */
static int parse_frames(struct sconn *sc, uint64_t t_rx)
{
	struct pcb_hdr h;
	const uint8_t *p;
	int f = PCB_RX_MORE;
	while (!sc->bye && sc->qlen < MAX_ITEMS && sc->uqlen < MAX_ITEMS &&
	       (f = pcb_conn_parse(&sc->c, &h, &p)) == PCB_RX_FRAME) {
		int hr = handle_frame(sc, &h, p, t_rx);
		if (hr < 0)
			return -1;
		if (hr == 1) {
			sc->bye = true;
			sc->rx_end = true;
		}
	}
	if (f == PCB_RX_BAD) {
		reject(sc, "%s", sc->c.err);
		return -1;
	}
	return 0;
}

/* parse_frames; after BYE send what is queued.  0 = go on, -1 = the connection ends. */
static int parse_buffered(struct sconn *sc, uint64_t t_rx)
{
	if (parse_frames(sc, t_rx) < 0)
		return -1;
	if (sc->bye) {
		run_queue(sc);
		return -1;
	}
	return 0;
}

static void conn_loop(struct sconn *sc)
{
	struct pcb_conn *c = &sc->c;
	for (;;) {
		uint64_t next = run_queue(sc);
		if (!next)
			return;   /* the destination went away while we were sending */
		if (sc->rx_end) {   /* shared connection: BYE or EOF seen between frames */
			if (sc->bye)
				run_queue(sc);
			return;
		}
		if (sc->qlen < MAX_ITEMS && c->rpos != c->rlen && parse_buffered(sc, pcb_now_ns()) < 0)
			return;
		if (sc->qlen)
			next = run_queue(sc);
		if (!next)
			return;
		uint64_t now = pcb_now_ns();
		struct pollfd pfd = { .fd = c->fd, .events = sc->qlen < MAX_ITEMS ? POLLIN : 0 };
		int r;
		bool bg = sc->channel == PCB_CHAN_BACKGROUND || (shared_conn(sc) && !sc->uqlen);
		if (bg && next != UINT64_MAX && next <= now)
			continue;
		if (!bg && next != UINT64_MAX && next <= now + 60 * PCB_NSEC_PER_USEC) {
			/* a demand reply due within 60 µs: keep an eye on the socket without sleeping
			 * (the background sender never spins: it may run up to 100 µs early instead) */
			r = poll(&pfd, 1, 0);
			if (r == 0) {
				__builtin_ia32_pause();
				continue;
			}
		} else if (next == UINT64_MAX && pfd.events) {
			/* nothing due, only a request can come: go straight to the
			 * blocking read below (one system call instead of ppoll + read,
			 * ~1.1 µs per demand request on this nested machine) */
			r = 1;
			pfd.revents = POLLIN;
		} else {
			struct timespec ts, *tsp = NULL;
			if (next != UINT64_MAX) {
				uint64_t w = next - now - (bg ? 0 : 50 * PCB_NSEC_PER_USEC);   /* demand: wake early, spin the rest */
				ts = (struct timespec){ (time_t)(w / PCB_NSEC_PER_SEC), (long)(w % PCB_NSEC_PER_SEC) };
				tsp = &ts;
			}
			r = ppoll(&pfd, 1, tsp, NULL);
		}
		if (r < 0 && errno != EINTR) {
			pcb_err("source: poll: %s", strerror(errno));
			return;
		}
		if (r <= 0 || !pfd.revents)
			continue;
		int f = pcb_conn_fill(c);
		uint64_t t_rx = pcb_now_ns();
		if (f == PCB_RX_EOF) {
			if (c->rlen != c->rpos)
				pcb_log("source: connection closed inside a frame (channel %d)", sc->channel);
			return;
		}
		if (f < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;   /* a receive timeout left on the socket: keep waiting */
		if (f < 0) {
			if (errno != ECONNRESET && errno != ENOBUFS)
				pcb_err("source: receive failed: %s", strerror(errno));
			return;
		}
		if (parse_buffered(sc, t_rx) < 0)
			return;
	}
}

struct hello_hook {
	struct pcb_source_state *st;
	int slot;
};

static void slot_hello(void *arg)
{
	struct hello_hook *h = arg;
	pthread_mutex_lock(&h->st->conns_lock);
	h->st->slot[h->slot].hello = true;
	pthread_mutex_unlock(&h->st->conns_lock);
}

static void slot_authed(struct pcb_source_state *st, int i)
{
	if (i < 0)
		return;
	pthread_mutex_lock(&st->conns_lock);
	st->slot[i].authed = true;
	pthread_mutex_unlock(&st->conns_lock);
}

/* Free slot i before its fd is closed (the number may be reused at once). */
static void slot_free(struct pcb_source_state *st, int i)
{
	if (i < 0)
		return;
	pthread_mutex_lock(&st->conns_lock);
	st->slot[i] = (struct slot){ .fd = -1 };
	pthread_mutex_unlock(&st->conns_lock);
}

/* A handshake that failed: counted; logged, but not one line per connection
 * of a flood (the first HS_LOG_FIRST, then the 100th, 1000th, ...). */
static void hs_refused(struct pcb_source_state *st, int rc, const char *why)
{
	unsigned long long n = atomic_fetch_add(&st->hs_refused, 1) + 1;
	if (rc == PCB_EXIT_NOPERM)
		atomic_fetch_add(&st->auth_failures, 1);
	if (rc == PCB_EXIT_SOURCE_LOST) {
		atomic_fetch_add(&st->hs_timeouts, 1);
		if (!st->cfg->verbose)
			return;
	}
	bool pow10 = n >= 100;
	for (unsigned long long k = n; pow10 && k > 1; k /= 10)
		pow10 = k % 10 == 0;
	if (n <= HS_LOG_FIRST || st->cfg->verbose)
		pcb_err("source: handshake refused: %s%s", why,
			n == HS_LOG_FIRST && !st->cfg->verbose ? " (further refusals are counted, logged at 100, 1000, ...)" : "");
	else if (pow10)
		pcb_err("source: %llu handshakes refused so far; the last: %s", n, why);
}

static int serve_conn(struct pcb_source_state *st, int fd, int slot)
{
	struct sconn *sc = calloc(1, sizeof(*sc));
	char why[256];
	int rc = 0;
	if (!sc || pcb_conn_init(&sc->c, fd, 0, st->npages) < 0) {
		free(sc);
		slot_free(st, slot);
		close(fd);
		return PCB_EXIT_OSERR;
	}
	sc->st = st;
	sc->slot = slot;
	sc->channel = -1;
	prctl(PR_SET_TIMERSLACK, 1UL);   /* the delay line sleeps to the µs: no 50 µs timer slack */
	struct hello_hook hook = { st, slot };
	if (slot >= 0) {
		sc->c.on_hello = slot_hello;
		sc->c.hook_arg = &hook;
	}
	struct pcb_hello hello;
	rc = pcb_hs_server(&sc->c, st->cfg->key, &st->cw, st->cfg->handshake_timeout_ms, &hello, why, sizeof(why));
	if (rc) {
		hs_refused(st, rc, why);
		goto out;
	}
	slot_authed(st, slot);
	sc->channel = (int)hello.channel;
	atomic_fetch_add(&st->conns[hello.channel], 1);
	if (hello.flags & PCB_HELLO_RESUME) {
		atomic_fetch_add(&st->resumes, 1);
		pcb_log("source: destination resumes a migration (channel %d)", sc->channel);
	}
	if (sc->channel == PCB_CHAN_QUERY)
		goto out;
	sc->q = calloc(MAX_ITEMS, sizeof(*sc->q));
	sc->uq = sc->channel == PCB_CHAN_SHARED ? calloc(MAX_ITEMS, sizeof(*sc->uq)) : NULL;
	sc->tx = malloc(TXBUF);
	if (!sc->q || !sc->tx || (sc->channel == PCB_CHAN_SHARED && !sc->uq)) {
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	conn_loop(sc);
	if (sc->bye && (sc->channel == PCB_CHAN_DEMAND || sc->channel == PCB_CHAN_SHARED))
		atomic_fetch_add(&st->finished_sessions, 1);
out:
	while (sc->q && sc->qlen)
		item_pop(sc);
	free(sc->q);
	free(sc->uq);
	free(sc->tx);
	slot_free(st, sc->slot);
	pcb_conn_free(&sc->c);
	free(sc);
	return rc;
}

int pcb_source_serve_conn(struct pcb_source_state *st, int fd)
{
	return serve_conn(st, fd, -1);
}

struct pcb_source_state *pcb_source_state_new(const struct pcb_source_cfg *cfg)
{
	struct pcb_source_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->cfg = cfg;
	st->npages = cfg->mem_bytes / PCB_PAGE_SIZE;
	pcb_image_init(&st->im, cfg->seed, st->npages, cfg->zero_fraction);
	if (cfg->zero_run_max && !cfg->mem && pcb_image_zero_runs(&st->im, cfg->zero_run_max) < 0) {
		free(st);
		return NULL;
	}
	const char *cp = getenv("PCB_TEST_CORRUPT_PAGE");
	st->corrupt_page = cp ? strtoull(cp, NULL, 0) : UINT64_MAX;
	pcb_link_init(&st->link);
	pthread_mutex_init(&st->conns_lock, NULL);
	pthread_mutex_init(&st->push_lock, NULL);
	for (int i = 0; i < MAX_CONNS; i++)
		st->slot[i].fd = -1;
	st->cw = (struct pcb_config_wire){ .mem_bytes = cfg->mem_bytes, .npages = st->npages, .seed = cfg->seed,
					   .zero_threshold = st->im.zero_threshold, .page_size = PCB_PAGE_SIZE,
					   .reserved = cfg->bytes_image && cfg->mem ? PCB_CFG_BYTES_IMAGE
										       : pcb_cfg_zero_flags(cfg->zero_run_max) };
	return st;
}

uint64_t pcb_source_bad_frames(const struct pcb_source_state *st)
{
	return st->bad_frames + st->auth_failures;
}

void pcb_source_state_free(struct pcb_source_state *st)
{
	if (!st->cfg->mem)
		pcb_image_free_bytes(&st->im);   /* the runs model's zero map */
	pcb_push_free(atomic_load(&st->push));
	free(st);
}

struct conn_arg {
	struct pcb_source_state *st;
	int fd, slot;
};

static void *conn_thread(void *arg)
{
	struct conn_arg a = *(struct conn_arg *)arg;
	free(arg);
	serve_conn(a.st, a.fd, a.slot);
	atomic_fetch_sub(&a.st->live_conns, 1);
	return NULL;
}

/* Which unauthenticated connection to end for room: the lowest class, the
 * oldest within it.  Classes: 0 no HELLO yet and older than EVICT_GRACE_NS
 * (a peer trickling its HELLO), 1 a HELLO but no AUTH and older than that,
 * 2 and 3 the same within their first EVICT_GRACE_NS.  A destination sends
 * its HELLO at once and authenticates within a round trip: while the
 * connections held against it are older than the grace, it is never the one
 * ended; only a flood of fresh connections faster than its handshake can end
 * it (docs/security.md). */
#define EVICT_GRACE_NS (50 * PCB_NSEC_PER_MSEC)

static int evict_class(const struct slot *s, uint64_t now)
{
	return (now - s->t_accept < EVICT_GRACE_NS ? 2 : 0) + (s->hello ? 1 : 0);
}

/* End the chosen unauthenticated connection (of peer, or of anyone when
 * any_peer): shutdown wakes its thread, which frees the slot.  Under conns_lock. */
static void evict_oldest(struct pcb_source_state *st, uint32_t peer, bool any_peer)
{
	int v = -1, vc = 0;
	uint64_t now = pcb_now_ns();
	for (int i = 0; i < MAX_CONNS; i++) {
		const struct slot *s = &st->slot[i];
		if (s->fd < 0 || s->authed || s->ended || (!any_peer && s->peer != peer))
			continue;
		int c = evict_class(s, now);
		if (v < 0 || c < vc || (c == vc && s->t_accept < st->slot[v].t_accept)) {
			v = i;
			vc = c;
		}
	}
	if (v < 0)
		return;
	shutdown(st->slot[v].fd, SHUT_RDWR);
	st->slot[v].ended = true;
	atomic_fetch_add(&st->evicted, 1);
}

/* A slot for a new connection from peer, making room among the
 * unauthenticated ones first.  The slot index, or -1 (every slot is taken by
 * connections past the handshake, or by ended ones not yet gone). */
static int slot_take(struct pcb_source_state *st, int fd, uint32_t peer)
{
	int freei = -1;
	pthread_mutex_lock(&st->conns_lock);
	unsigned unauth = 0, mine = 0;
	for (int i = 0; i < MAX_CONNS; i++) {
		const struct slot *s = &st->slot[i];
		if (s->fd < 0) {
			if (freei < 0)
				freei = i;
			continue;
		}
		if (s->authed || s->ended)
			continue;
		unauth++;
		mine += s->peer == peer;
	}
	if (mine >= MAX_UNAUTH_PER_PEER)
		evict_oldest(st, peer, false);
	else if (unauth >= MAX_UNAUTH || freei < 0)
		evict_oldest(st, peer, true);
	if (freei >= 0)
		st->slot[freei] = (struct slot){ .fd = fd, .peer = peer, .t_accept = pcb_now_ns() };
	pthread_mutex_unlock(&st->conns_lock);
	return freei;
}

/* End every live connection (shutdown wakes its thread) and wait for the
 * threads, so that the state can be freed. */
static bool end_conns(struct pcb_source_state *st)
{
	pthread_mutex_lock(&st->conns_lock);
	for (int i = 0; i < MAX_CONNS; i++)
		if (st->slot[i].fd >= 0)
			shutdown(st->slot[i].fd, SHUT_RDWR);
	pthread_mutex_unlock(&st->conns_lock);
	for (int i = 0; i < 300 && atomic_load(&st->live_conns) > 0; i++)
		usleep(10000);
	return atomic_load(&st->live_conns) == 0;
}

int pcb_source_serve(const struct pcb_source_cfg *cfg, int lfd)
{
	struct pcb_source_state *st = pcb_source_state_new(cfg);
	if (!st)
		return PCB_EXIT_OSERR;
	pcb_verbose = cfg->verbose;
	for (;;) {
		/* a migration is over when its demand channel said BYE (after verification) */
		if (cfg->sessions && atomic_load(&st->finished_sessions) >= cfg->sessions)
			break;
		struct pollfd pl = { .fd = lfd, .events = POLLIN };
		if (poll(&pl, 1, 50) <= 0)
			continue;   /* re-check whether the sessions are over */
		struct sockaddr_in sa = { 0 };
		socklen_t sl = sizeof(sa);
		int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
				pcb_warn("source: accept: %s (retrying)", strerror(errno));
				usleep(100000);
				continue;
			}
			pcb_err("source: accept: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		pcb_sock_tune(fd);
		if (cfg->send_timeout_ms > 0) {   /* a peer that stops reading does not hold a thread forever */
			struct timeval tv = { cfg->send_timeout_ms / 1000, (cfg->send_timeout_ms % 1000) * 1000 };
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		}
		struct conn_arg *a = malloc(sizeof(*a));
		pthread_t th;
		int slot = a ? slot_take(st, fd, sa.sin_addr.s_addr) : -1;
		if (slot < 0) {
			if (a && !atomic_fetch_add(&st->refused_full, 1))
				pcb_warn("source: %d connections past the handshake; refusing more", MAX_CONNS);
			close(fd);
			free(a);
			continue;
		}
		*a = (struct conn_arg){ st, fd, slot };
		atomic_fetch_add(&st->live_conns, 1);
		if (pthread_create(&th, NULL, conn_thread, a) != 0) {
			pcb_warn("source: cannot start a connection thread; dropping the connection");
			atomic_fetch_sub(&st->live_conns, 1);
			slot_free(st, slot);
			close(fd);
			free(a);
			continue;
		}
		pthread_detach(th);
	}
	if (cfg->summary) {
		printf("pcbench source: %d migration%s completed; served %llu pages and %llu zero pages; rejected %llu frames, "
		       "%llu failed authentications, %llu refused handshakes (%llu timed out), %llu unauthenticated "
		       "connections ended to make room; %llu connections resumed a migration; connections: demand %llu, "
		       "background %llu, shared %llu\n",
		       atomic_load(&st->finished_sessions), atomic_load(&st->finished_sessions) == 1 ? "" : "s",
		       (unsigned long long)st->pages_sent, (unsigned long long)st->zero_sent,
		       (unsigned long long)st->bad_frames, (unsigned long long)st->auth_failures,
		       (unsigned long long)st->hs_refused, (unsigned long long)st->hs_timeouts,
		       (unsigned long long)st->evicted,
		       (unsigned long long)st->resumes, (unsigned long long)st->conns[PCB_CHAN_DEMAND],
		       (unsigned long long)st->conns[PCB_CHAN_BACKGROUND], (unsigned long long)st->conns[PCB_CHAN_SHARED]);
		fflush(stdout);
	}
	pcb_log("source: served %llu pages, %llu zero pages, rejected %llu frames, %llu failed authentications, %llu resumed connections",
		(unsigned long long)st->pages_sent, (unsigned long long)st->zero_sent,
		(unsigned long long)st->bad_frames, (unsigned long long)st->auth_failures,
		(unsigned long long)st->resumes);
	/* a malformed frame from an authenticated destination is a failure of the
	 * migration; without a key anyone gets past the handshake, and what a
	 * stranger sends is counted and logged but does not decide the exit status */
	int rc = st->bad_frames && cfg->key && cfg->key->len ? PCB_EXIT_PROTOCOL : PCB_EXIT_OK;
	if (end_conns(st))
		pcb_source_state_free(st);   /* else a thread is stuck: leave the state to the process exit */
	return rc;
}

int pcb_source_fork(const struct pcb_source_cfg *cfg, int listen_fd, int cpu)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)   /* the parent died before the line above */
			_exit(PCB_EXIT_SOFTWARE);
		signal(SIGINT, SIG_DFL);   /* the parent's report-and-exit handlers are not the source's */
		signal(SIGTERM, SIG_DFL);
		prctl(PR_SET_NAME, "pcbench-source");
		if (cpu >= 0)
			pcb_pin_self(cpu);
		_exit(pcb_source_serve(cfg, listen_fd));   /* the forked child ends here */
	}
	int e = errno;
	close(listen_fd);
	errno = e;
	return pid;
}
