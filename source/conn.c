/* One connection of the source page server: the handshake, the frames the
 * destination sends (requests, PUSH, LINK, BYE) queued as replies, and the
 * connection's loop (send what is due, read what comes). */
#include "source/internal.h"
#include "wire/handshake.h"
#include "common/util.h"
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

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
	pcb_src_send_error(sc, msg);
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
	if (!pcb_src_enqueue(sc, &it)) {
		free(it.r);
		reject(sc, "more than %d requests queued", MAX_ITEMS);
		return -1;
	}
	return 0;
}

/* Queue every complete frame in the receive buffer (while there is room).
 * 0 = go on (BYE sets bye and rx_end), -1 = the connection ends (bad frame, error). */
int pcb_src_parse_frames(struct sconn *sc, uint64_t t_rx)
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
	if (pcb_src_parse_frames(sc, t_rx) < 0)
		return -1;
	if (sc->bye) {
		pcb_src_run_queue(sc);
		return -1;
	}
	return 0;
}

static void conn_loop(struct sconn *sc)
{
	struct pcb_conn *c = &sc->c;
	for (;;) {
		uint64_t next = pcb_src_run_queue(sc);
		if (!next)
			return;   /* the destination went away while we were sending */
		if (sc->rx_end) {   /* shared connection: BYE or EOF seen between frames */
			if (sc->bye)
				pcb_src_run_queue(sc);
			return;
		}
		if (sc->qlen < MAX_ITEMS && c->rpos != c->rlen && parse_buffered(sc, pcb_now_ns()) < 0)
			return;
		if (sc->qlen)
			next = pcb_src_run_queue(sc);
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

static void hello_seen(void *arg)
{
	struct hello_hook *h = arg;
	pcb_src_slot_set(h->st, h->slot, SLOT_HELLO);
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

/* --source-send=splice with a memory image that does not change: the
 * connection's pipe, as large as the kernel lets us (1 MiB, a whole write;
 * else the default 64 KiB, with more splices), its write end non-blocking
 * (tx_splice drains it when full).  -1: no pipe. */
static int send_pipe(struct sconn *sc)
{
	if (!pcb_source_send_splices(sc->st->cfg))
		return 0;
	if (pipe2(sc->pipe, O_CLOEXEC) < 0) {
		pcb_err("source: --source-send=splice: pipe: %s", strerror(errno));
		sc->pipe[0] = sc->pipe[1] = -1;
		return -1;
	}
	fcntl(sc->pipe[1], F_SETPIPE_SZ, TXBUF);   /* a smaller pipe works too */
	if (fcntl(sc->pipe[1], F_SETFL, O_NONBLOCK) < 0) {
		pcb_err("source: --source-send=splice: pipe: %s", strerror(errno));
		return -1;   /* the caller's cleanup closes the pipe */
	}
	return 0;
}

int pcb_src_serve_conn(struct pcb_source_state *st, int fd, int slot)
{
	struct sconn *sc = calloc(1, sizeof(*sc));
	char why[256];
	int rc = 0;
	if (!sc || pcb_conn_init(&sc->c, fd, 0, st->npages) < 0) {
		free(sc);
		pcb_src_slot_set(st, slot, SLOT_FREE);
		close(fd);
		return PCB_EXIT_OSERR;
	}
	sc->st = st;
	sc->slot = slot;
	sc->channel = -1;
	sc->pipe[0] = sc->pipe[1] = -1;
	prctl(PR_SET_TIMERSLACK, 1UL);   /* the delay line sleeps to the µs: no 50 µs timer slack */
	struct hello_hook hook = { st, slot };
	if (slot >= 0) {
		sc->c.on_hello = hello_seen;
		sc->c.hook_arg = &hook;
	}
	struct pcb_hello hello;
	rc = pcb_hs_server(&sc->c, st->cfg->key, &st->cw, st->cfg->handshake_timeout_ms, &hello, why, sizeof(why));
	if (rc) {
		hs_refused(st, rc, why);
		goto out;
	}
	pcb_src_slot_set(st, slot, SLOT_AUTHED);
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
	if (!sc->q || !sc->tx || (sc->channel == PCB_CHAN_SHARED && !sc->uq) || send_pipe(sc) < 0) {
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	conn_loop(sc);
	if (sc->bye && (sc->channel == PCB_CHAN_DEMAND || sc->channel == PCB_CHAN_SHARED)) {
		atomic_fetch_add(&st->finished_sessions, 1);
		if (st->done_fd >= 0)
			eventfd_write(st->done_fd, 1);
	}
out:
	while (sc->q && sc->qlen)
		pcb_src_item_pop(sc);
	free(sc->q);
	free(sc->uq);
	free(sc->tx);
	if (sc->pipe[0] >= 0) {
		close(sc->pipe[0]);
		close(sc->pipe[1]);
	}
	pcb_src_slot_set(st, sc->slot, SLOT_FREE);
	pcb_conn_free(&sc->c);
	free(sc);
	return rc;
}

int pcb_source_serve_conn(struct pcb_source_state *st, int fd)
{
	return pcb_src_serve_conn(st, fd, -1);
}
