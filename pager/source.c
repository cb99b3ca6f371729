#include "pager/source.h"
#include "pager/proto.h"
#include "common/image.h"
#include "common/util.h"
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct src_state {
	const struct pcb_source_cfg *cfg;
	struct pcb_image im;
	uint64_t npages;
	atomic_int live_conns;
	atomic_int finished_sessions;
	atomic_ullong pages_sent, zero_sent, bad_frames;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct src_conn {
	struct src_state *st;
	struct pcb_conn c;
};

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

/* Buffered sender for the background stream. */
struct txbuf {
	uint8_t *buf;
	size_t len, cap;
};

static int tx_flush(struct src_conn *sc, struct txbuf *t)
{
	if (!t->len)
		return 0;
	if (pcb_write_full(sc->c.fd, t->buf, t->len) < 0)
		return -1;
	sc->c.bytes_tx += t->len;
	t->len = 0;
	return 0;
}

static int tx_frame(struct src_conn *sc, struct txbuf *t, uint16_t type, uint64_t arg,
		    const struct pcb_image *im, int with_page)
{
	size_t need = PCB_HDR_SIZE + (with_page ? PCB_PAGE_SIZE : 0);
	if (t->cap - t->len < need && tx_flush(sc, t) < 0)
		return -1;
	struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type,
			     with_page ? PCB_PAGE_SIZE : 0, 0, arg };
	pcb_hdr_encode(&h, t->buf + t->len);
	t->len += PCB_HDR_SIZE;
	if (with_page) {
		pcb_image_fill(im, arg, t->buf + t->len);
		t->len += PCB_PAGE_SIZE;
	}
	sc->c.frames_tx++;
	return 0;
}

/* Background stream of pages first..first+count-1: each maximal run of data
 * pages (at most PCB_MAX_RUN_PAGES) as one RUN frame, so the destination can
 * receive it page-aligned into a staging area (or straight into the guest's
 * page cache) and install it with one ioctl; zero pages as ZERO frames. */
static int tx_ranges(struct src_conn *sc, struct txbuf *t, uint64_t first, uint64_t count)
{
	struct src_state *st = sc->st;
	uint64_t pg = first, end = first + count;
	while (pg < end) {
		if (pcb_image_is_zero(&st->im, pg)) {
			if (tx_frame(sc, t, PCB_MSG_ZERO, pg, NULL, 0) < 0)
				return -1;
			atomic_fetch_add_explicit(&st->zero_sent, 1, memory_order_relaxed);
			pg++;
			continue;
		}
		uint64_t n = 1;
		while (pg + n < end && n < PCB_MAX_RUN_PAGES && !pcb_image_is_zero(&st->im, pg + n))
			n++;
		size_t need = PCB_HDR_SIZE + n * PCB_PAGE_SIZE;
		if (t->cap - t->len < need && tx_flush(sc, t) < 0)
			return -1;
		struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, PCB_MSG_RUN,
				     (uint32_t)(n * PCB_PAGE_SIZE), 0, pg };
		pcb_hdr_encode(&h, t->buf + t->len);
		t->len += PCB_HDR_SIZE;
		for (uint64_t i = 0; i < n; i++, t->len += PCB_PAGE_SIZE)
			pcb_image_fill(&st->im, pg + i, t->buf + t->len);
		sc->c.frames_tx++;
		atomic_fetch_add_explicit(&st->pages_sent, n, memory_order_relaxed);
		pg += n;
	}
	return 0;
}

static int send_error(struct src_conn *sc, const char *msg)
{
	size_t n = strlen(msg);
	return pcb_conn_send(&sc->c, PCB_MSG_ERROR, 0, msg, (uint32_t)(n < PCB_MAX_ERRTEXT ? n : PCB_MAX_ERRTEXT));
}

static void *conn_thread(void *arg)
{
	struct src_conn *sc = arg;
	struct src_state *st = sc->st;
	struct pcb_hdr h;
	const uint8_t *p;
	uint64_t page[PCB_PAGE_WORDS];
	struct txbuf tx = { .cap = 1 << 20 };
	int channel = -1, r;

	tx.buf = malloc(tx.cap);
	if (!tx.buf)
		goto out;
	for (;;) {
		r = pcb_conn_recv(&sc->c, &h, &p);
		if (r == PCB_RX_EOF)
			break;
		if (r == PCB_RX_BAD) {
			atomic_fetch_add(&st->bad_frames, 1);
			pcb_err("source: rejected frame from destination: %s", sc->c.err);
			send_error(sc, sc->c.err);
			break;
		}
		if (r < 0) {
			if (errno != ECONNRESET)
				pcb_err("source: receive failed: %s", strerror(errno));
			break;
		}
		if (channel < 0 && h.type != PCB_MSG_HELLO) {
			atomic_fetch_add(&st->bad_frames, 1);
			pcb_err("source: %s before HELLO", pcb_msg_name(h.type));
			send_error(sc, "expected HELLO");
			break;
		}
		switch (h.type) {
		case PCB_MSG_HELLO: {
			struct pcb_hello hello;
			memcpy(&hello, p, sizeof(hello));
			if (hello.channel > PCB_CHAN_BACKGROUND) {
				atomic_fetch_add(&st->bad_frames, 1);
				send_error(sc, "bad channel");
				goto out;
			}
			channel = (int)hello.channel;
			struct pcb_config_wire cw = {
				.mem_bytes = st->cfg->mem_bytes, .npages = st->npages, .seed = st->cfg->seed,
				.zero_threshold = st->im.zero_threshold, .page_size = PCB_PAGE_SIZE,
			};
			if (pcb_conn_send(&sc->c, PCB_MSG_CONFIG, 0, &cw, sizeof(cw)) < 0)
				goto out;
			break;
		}
		case PCB_MSG_REQ:
			spin_delay(st->cfg->demand_delay_ns);
			if (pcb_image_is_zero(&st->im, h.arg)) {
				r = pcb_conn_send(&sc->c, PCB_MSG_ZERO, h.arg, NULL, 0);
				atomic_fetch_add(&st->zero_sent, 1);
			} else {
				pcb_image_fill(&st->im, h.arg, page);
				r = pcb_conn_send(&sc->c, PCB_MSG_PAGE, h.arg, page, PCB_PAGE_SIZE);
				atomic_fetch_add(&st->pages_sent, 1);
			}
			if (r < 0)
				goto out;
			break;
		case PCB_MSG_RANGES: {
			char why[128];
			uint64_t batch = h.arg;
			if (pcb_proto_check_ranges(p, h.len, st->npages, why, sizeof(why)) < 0) {
				atomic_fetch_add(&st->bad_frames, 1);
				pcb_err("source: rejected RANGES: %s", why);
				send_error(sc, why);
				goto out;
			}
			/* copy out: p is invalidated by the next receive, not by sending */
			for (uint32_t off = 0; off < h.len; off += sizeof(struct pcb_range_wire)) {
				struct pcb_range_wire rw;
				memcpy(&rw, p + off, sizeof(rw));
				if (tx_ranges(sc, &tx, le64toh(rw.first), le64toh(rw.count)) < 0)
					goto out;
			}
			if (tx_frame(sc, &tx, PCB_MSG_BATCH_END, batch, NULL, 0) < 0 || tx_flush(sc, &tx) < 0)
				goto out;
			break;
		}
		case PCB_MSG_DIGEST_REQ: {
			uint64_t count;
			memcpy(&count, p, 8);
			if (count == 0 || count > PCB_MAX_DIGESTS || count > st->npages - h.arg) {
				atomic_fetch_add(&st->bad_frames, 1);
				send_error(sc, "bad digest range");
				goto out;
			}
			uint64_t *d = malloc(count * 8);
			if (!d)
				goto out;
			for (uint64_t i = 0; i < count; i++)
				d[i] = pcb_image_digest(&st->im, h.arg + i);
			r = pcb_conn_send(&sc->c, PCB_MSG_DIGESTS, h.arg, d, (uint32_t)(count * 8));
			free(d);
			if (r < 0)
				goto out;
			break;
		}
		case PCB_MSG_BYE:
			goto out;
		default:
			atomic_fetch_add(&st->bad_frames, 1);
			pcb_err("source: unexpected %s frame from destination", pcb_msg_name(h.type));
			send_error(sc, "unexpected frame");
			goto out;
		}
	}
out:
	free(tx.buf);
	pcb_conn_free(&sc->c);
	free(sc);
	pthread_mutex_lock(&st->lock);
	if (atomic_fetch_sub(&st->live_conns, 1) == 1)
		atomic_fetch_add(&st->finished_sessions, 1);
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

int pcb_source_serve(const struct pcb_source_cfg *cfg, int lfd)
{
	struct src_state *st = calloc(1, sizeof(*st));
	if (!st)
		return PCB_EXIT_OSERR;
	st->cfg = cfg;
	st->npages = cfg->mem_bytes / PCB_PAGE_SIZE;
	pcb_image_init(&st->im, cfg->seed, st->npages, cfg->zero_fraction);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);

	for (;;) {
		if (cfg->sessions && atomic_load(&st->finished_sessions) >= cfg->sessions &&
		    atomic_load(&st->live_conns) == 0)
			break;
		struct pollfd pl = { .fd = lfd, .events = POLLIN };
		if (poll(&pl, 1, 50) <= 0)
			continue;   /* re-check whether the sessions are over */
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			pcb_err("source: accept: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		pcb_sock_tune(fd);
		struct src_conn *sc = calloc(1, sizeof(*sc));
		if (!sc || pcb_conn_init(&sc->c, fd, 0, st->npages) < 0) {
			pcb_err("source: out of memory");
			return PCB_EXIT_OSERR;
		}
		sc->st = st;
		atomic_fetch_add(&st->live_conns, 1);
		pthread_t th;
		if (pthread_create(&th, NULL, conn_thread, sc) != 0) {
			pcb_err("source: pthread_create failed");
			return PCB_EXIT_OSERR;
		}
		pthread_detach(th);
		/* a session is two connections; wait for them to end before deciding to exit */
		if (cfg->sessions) {
			pthread_mutex_lock(&st->lock);
			while (atomic_load(&st->live_conns) >= 2)
				pthread_cond_wait(&st->cond, &st->lock);
			pthread_mutex_unlock(&st->lock);
		}
	}
	pcb_log("source: served %llu pages, %llu zero pages, rejected %llu frames",
		(unsigned long long)st->pages_sent, (unsigned long long)st->zero_sent,
		(unsigned long long)st->bad_frames);
	return st->bad_frames ? PCB_EXIT_PROTOCOL : PCB_EXIT_OK;
}
