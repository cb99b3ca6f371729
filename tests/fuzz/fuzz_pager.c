/* libFuzzer target: the destination's receive state machine against a
 * hostile source.  A real pager (userfaultfd region, demand, background and
 * installer threads, sequential policy: 64 pages, batches of 16, window 2)
 * connects to a fake source in this process; after the handshake the fake
 * source writes the fuzz input's bytes on the connections and closes them.
 * What the pager does with them -- demand replies to a fault, background RUN
 * / ZERO / PAGE frames received straight into staging, the page cache or a
 * move chunk, BATCH_END checks, the shared connection's urgent replies,
 * frames spanning receive buffers, digests -- must end in a completed
 * migration or a clear fatal error, never a crash, a hang or a page installed
 * that nobody asked for.
 *
 * Input: byte 0 = mode: bit 0 one shared connection (--channels=1); bits 1-2
 * install path (0 copy, 1 continue, 2 move, 3 copy); bit 3 a key: the fake
 * source re-frames the bytes and tags every frame (stream MAC, so the frames
 * get past the tag check and reach the state machine; bit 4 also flips one
 * bit of a tagged frame); bit 5 a vCPU-like thread touches 2 pages (byte 1
 * picks them); bit 6 --reconnect-timeout 50 ms (the fake source accepts up
 * to three connections an input); bit 7 an emulated link (1gbit, 200us): the
 * pager's link calibration (LINK, PING/PONG train) reads the bytes first.  Then records: [u8 channel 0 demand / 1 background][u16 len
 * LE][len bytes], written in order to that channel's connection (both go to
 * the shared one).  Build and run: make fuzz (FUZZ_TARGETS), corpus in
 * tests/fuzz/corpus-pager. */
#include "pager/pager.h"
#include "policies/policy.h"
#include "wire/handshake.h"
#include "wire/proto.h"
#include "common/image.h"
#include "common/util.h"
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NP 64
#define SEED 42
#define ESCAPE_SIG (SIGRTMIN + 3)

static struct pcb_auth_key key = { .len = 32, .key = "0123456789abcdef0123456789abcdef" };

struct fake {
	int lfd;
	const uint8_t *d;
	size_t n;
	uint8_t mode;
	struct pcb_config_wire cw;
	atomic_bool stop;
	pthread_t th[3];
	int nth;
};

struct conn_job {
	struct fake *f;
	int fd;
};

/* Write the records of channel ch (raw, or re-framed and tagged on a keyed connection). */
static void write_records(struct fake *f, struct pcb_conn *c, int ch, bool shared)
{
	size_t i = 2;
	bool flip = f->mode & 16;
	while (i + 3 <= f->n) {
		int rch = f->d[i] & 1;
		size_t len = (size_t)f->d[i + 1] | (size_t)f->d[i + 2] << 8;
		i += 3;
		if (len > f->n - i)
			len = f->n - i;
		const uint8_t *b = f->d + i;
		i += len;
		if (!shared && rch != ch)
			continue;
		if (!c->mac_tx) {
			if (pcb_write_full(c->fd, b, len) < 0)
				return;
			continue;
		}
		/* keyed: each 24-byte header here (its length field clamped to what
		 * follows) becomes a tagged frame */
		for (size_t o = 0; o + PCB_HDR_SIZE <= len;) {
			struct pcb_hdr h;
			pcb_hdr_decode(b + o, &h);
			size_t pl = h.len <= len - o - PCB_HDR_SIZE ? h.len : len - o - PCB_HDR_SIZE;
			uint8_t hb[PCB_HDR_SIZE], tag[PCB_TAG_BYTES];
			h.len = (uint32_t)pl;
			h.flags = (h.flags & PCB_FRAME_URGENT) | PCB_FRAME_MAC;
			pcb_hdr_encode(&h, hb);
			struct iovec v[3] = { { hb, PCB_HDR_SIZE }, { (void *)(b + o + PCB_HDR_SIZE), pl }, { tag, PCB_TAG_BYTES } };
			pcb_conn_tag(c, hb, &v[1], 1, tag);
			if (flip) {
				tag[0] ^= 1;
				flip = false;
			}
			if (writev(c->fd, v, 3) < 0)
				return;
			o += PCB_HDR_SIZE + pl;
		}
	}
}

static void *conn_thread(void *a)
{
	struct conn_job j = *(struct conn_job *)a;
	free(a);
	struct fake *f = j.f;
	struct pcb_conn c;
	struct pcb_hello hello;
	char why[256];
	if (pcb_conn_init(&c, j.fd, 0, NP) < 0) {
		close(j.fd);
		return NULL;
	}
	if (pcb_hs_server(&c, f->mode & 8 ? &key : NULL, &f->cw, 1000, &hello, why, sizeof(why)) == 0 &&
	    hello.channel != PCB_CHAN_QUERY) {
		/* wait (briefly) for the first request, so replies can match it */
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		poll(&pfd, 1, 20);
		write_records(f, &c, hello.channel == PCB_CHAN_DEMAND ? 0 : 1, hello.channel == PCB_CHAN_SHARED);
		/* read and drop what the pager asks meanwhile, then end the connection */
		uint8_t sink[65536];
		for (int k = 0; k < 5 && !atomic_load(&f->stop); k++)
			if (poll(&pfd, 1, 10) > 0 && read(c.fd, sink, sizeof(sink)) <= 0)
				break;
	}
	shutdown(c.fd, SHUT_RDWR);
	pcb_conn_free(&c);
	return NULL;
}

/* Accepts the pager's connections (the initial ones and any reconnection). */
static void *accept_thread(void *a)
{
	struct fake *f = a;
	while (!atomic_load(&f->stop)) {
		struct pollfd pfd = { .fd = f->lfd, .events = POLLIN };
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct conn_job *j = malloc(sizeof(*j));
		pthread_t th;
		if (!j || f->nth == 3) {   /* at most three connections an input */
			free(j);
			close(fd);
			continue;
		}
		*j = (struct conn_job){ f, fd };
		if (pthread_create(&th, NULL, conn_thread, j) != 0) {
			free(j);
			close(fd);
			continue;
		}
		f->th[f->nth++] = th;
	}
	return NULL;
}

/* The toucher: reads two pages like a vCPU would; escapes a fault that will
 * never be served through ESCAPE_SIG (siglongjmp out of the handler). */
static __thread sigjmp_buf escape;
static __thread volatile int escapable;

static void on_escape(int sig)
{
	(void)sig;
	if (escapable)
		siglongjmp(escape, 1);
}

struct toucher {
	volatile uint8_t *region;
	uint64_t pages[2];
	atomic_bool done;
};

static void *touch_thread(void *a)
{
	struct toucher *t = a;
	if (sigsetjmp(escape, 1) == 0) {
		escapable = 1;
		for (int i = 0; i < 2; i++)
			(void)t->region[t->pages[i] * PCB_PAGE_SIZE];
	}
	escapable = 0;
	atomic_store(&t->done, true);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static bool once;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		struct sigaction sa = { .sa_handler = on_escape };
		sigaction(ESCAPE_SIG, &sa, NULL);
		pcb_verbose = 0;
		once = true;
	}
	if (n < 2)
		return 0;
	static const char *const inst[4] = { "copy", "continue", "move", "copy" };
	struct fake f = { .d = d, .n = n, .mode = d[0] };
	uint16_t port;
	f.lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
	if (f.lfd < 0)
		return 0;
	struct pcb_image im;
	pcb_image_init(&im, SEED, NP, 0);
	f.cw = (struct pcb_config_wire){ .mem_bytes = NP * 4096ull, .npages = NP, .seed = SEED,
					 .zero_threshold = im.zero_threshold, .page_size = PCB_PAGE_SIZE };
	pthread_t acc;
	pthread_create(&acc, NULL, accept_thread, &f);
	struct pcb_pager_cfg pc = { .npages = NP, .nvcpus = 0, .policy = pcb_policy_find("sequential"),
				    .batch_pages = 16, .window = 2, .io_timeout_ns = 100 * PCB_NSEC_PER_MSEC,
				    .reconnect_timeout_ns = f.mode & 64 ? 50 * PCB_NSEC_PER_MSEC : 0,
				    .host = "127.0.0.1", .port = port, .seed = SEED, .zero_threshold = im.zero_threshold,
				    .install = inst[(f.mode >> 1) & 3], .channels = f.mode & 1 ? 1 : 2,
				    .key = f.mode & 8 ? &key : NULL,
				    .link_bps = f.mode & 128 ? 1000000000ull : 0, .link_rtt_ns = f.mode & 128 ? 200000 : 0 };
	struct pcb_pager *p = NULL;
	char why[256];
	struct toucher t = { 0 };
	pthread_t tt;
	bool touching = false;
	if (pcb_pager_create(&pc, &p, why, sizeof(why)) == 0 && pcb_pager_start(p) == 0) {
		if (f.mode & 32) {
			t.region = pcb_pager_region(p);
			t.pages[0] = d[1] % NP;
			t.pages[1] = (d[1] / NP + 17) % NP;
			touching = pthread_create(&tt, NULL, touch_thread, &t) == 0;
		}
		int r = 0;
		for (int i = 0; i < 40 && r == 0; i++)   /* at most ~0.4 s an input */
			r = pcb_pager_poll(p, 10, why, sizeof(why));
		pcb_pager_guest_done(p);
		for (int i = 0; i < 20 && r == 0; i++)
			r = pcb_pager_poll(p, 10, why, sizeof(why));
	}
	atomic_store(&f.stop, true);
	if (touching) {
		while (!atomic_load(&t.done)) {
			pthread_kill(tt, ESCAPE_SIG);
			usleep(1000);
		}
		pthread_join(tt, NULL);
	}
	pthread_join(acc, NULL);
	for (int i = 0; i < f.nth; i++)
		pthread_join(f.th[i], NULL);
	if (p)
		pcb_pager_destroy(p);
	close(f.lfd);
	return 0;
}
