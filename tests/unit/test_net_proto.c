/* The wire protocol and its contract: every frame is length-checked and every
 * page index bounds-checked before use; a malformed frame is rejected with a
 * reason and counted.  The handshake authenticates both ends with a shared
 * key; the source refuses bad frames with an ERROR and survives them; a
 * malicious source cannot make the pager write outside the guest region. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/image.h"
#include "common/util.h"
#include "wire/handshake.h"
#include "wire/link.h"
#include "pager/pager.h"
#include "wire/proto.h"
#include "source/source.h"

#define NP 1024

static struct pcb_hdr hdr(uint16_t type, uint32_t len, uint64_t arg)
{
	return (struct pcb_hdr){ PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type, len, 0, arg };
}

static int check(struct pcb_hdr h, const char *needle)
{
	char why[160] = "";
	int r = pcb_proto_validate(&h, NP, why, sizeof(why));
	if (needle) {
		assert_int_equal(r, -1);
		if (!strstr(why, needle))
			fail_msg("reason '%s' does not mention '%s'", why, needle);
	}
	return r;
}

static void test_header_roundtrip(void **st)
{
	(void)st;
	struct pcb_hdr a = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, PCB_MSG_PAGE, 4096, 0, 0x0102030405060708ull }, b;
	uint8_t w[PCB_HDR_SIZE];
	pcb_hdr_encode(&a, w);
	assert_int_equal(w[0], 'P');   /* little endian "PCB1" */
	assert_int_equal(w[16], 0x08);
	pcb_hdr_decode(w, &b);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_validate_rejects(void **st)
{
	(void)st;
	struct pcb_hdr h = hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE, 5);
	assert_int_equal(check(h, NULL), 0);
	h.magic = 0x31424351;
	check(h, "magic");
	h = hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE, 5);
	h.version = 1;
	check(h, "version 1");
	check(hdr(0, 0, 0), "unknown frame type");
	check(hdr(PCB_MSG_MAX, 0, 0), "unknown frame type");
	check(hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE - 1, 5), "length 4095");             /* truncated page */
	check(hdr(PCB_MSG_PAGE, 0xffffffffu, 5), "length 4294967295");          /* oversized length */
	check(hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE, NP), "outside the image");       /* out-of-range offset */
	check(hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE, UINT64_MAX), "outside the image");
	check(hdr(PCB_MSG_ZERO, 0, NP), "outside the image");
	check(hdr(PCB_MSG_REQ, 0, NP + 7), "outside the image");
	check(hdr(PCB_MSG_REQ, 8, 1), "want 0");
	check(hdr(PCB_MSG_DIGESTS, 8 * 4, NP - 3), "outside the image");        /* range runs off the end */
	check(hdr(PCB_MSG_DIGESTS, 7, 0), "DIGESTS");
	check(hdr(PCB_MSG_RANGES, 0, 0), "ranges");
	check(hdr(PCB_MSG_RANGES, 17, 0), "ranges");
	check(hdr(PCB_MSG_RANGES, 16 * (PCB_MAX_RANGES + 1), 0), "ranges");
	check(hdr(PCB_MSG_ERROR, PCB_MAX_ERRTEXT + 1, 0), "max");
	check(hdr(PCB_MSG_HELLO, 8, 0), "want 24");
	check(hdr(PCB_MSG_CONFIG, 40, 0), "want 72");
	check(hdr(PCB_MSG_AUTH, 31, 0), "want 32");
	check(hdr(PCB_MSG_PING, 0, PCB_MAX_PONG + 1), "reply");
	check(hdr(PCB_MSG_PONG, 16, 15), "PONG");
	h = hdr(PCB_MSG_BYE, 0, 0);
	h.flags = 4;
	check(h, "flags");
}

static void test_ranges(void **st)
{
	(void)st;
	char why[160];
	struct pcb_range_wire r[3];
	r[0] = (struct pcb_range_wire){ htole64(0), htole64(10) };
	r[1] = (struct pcb_range_wire){ htole64(NP - 1), htole64(1) };
	assert_int_equal(pcb_proto_check_ranges(r, 2 * sizeof(r[0]), NP, why, sizeof(why)), 11);
	r[1] = (struct pcb_range_wire){ htole64(NP - 1), htole64(2) };
	assert_int_equal(pcb_proto_check_ranges(r, 2 * sizeof(r[0]), NP, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "outside"));
	r[1] = (struct pcb_range_wire){ htole64(5), htole64(UINT64_MAX) };   /* first + count wraps */
	assert_int_equal(pcb_proto_check_ranges(r, 2 * sizeof(r[0]), NP, why, sizeof(why)), -1);
	r[1] = (struct pcb_range_wire){ htole64(5), 0 };
	assert_int_equal(pcb_proto_check_ranges(r, 2 * sizeof(r[0]), NP, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "empty"));
	r[0] = (struct pcb_range_wire){ 0, htole64(PCB_MAX_BATCH_PAGES) };
	r[1] = (struct pcb_range_wire){ 0, htole64(1) };
	assert_int_equal(pcb_proto_check_ranges(r, 2 * sizeof(r[0]), PCB_MAX_BATCH_PAGES * 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than"));
}

/* Parsing from a connection: partial frames wait, a bad header is refused
 * before its payload is read, EOF inside a frame is an error. */
static void test_conn_parse(void **st)
{
	(void)st;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct pcb_conn c;
	assert_int_equal(pcb_conn_init(&c, sv[0], 0, NP), 0);
	uint8_t w[PCB_HDR_SIZE + 8];
	struct pcb_hdr h = hdr(PCB_MSG_DIGEST_REQ, 8, 3), got;
	const uint8_t *pl;
	pcb_hdr_encode(&h, w);
	memset(w + PCB_HDR_SIZE, 0, 8);
	assert_int_equal(write(sv[1], w, 10), 10);                   /* truncated header */
	assert_true(pcb_conn_fill(&c) > 0);
	assert_int_equal(pcb_conn_parse(&c, &got, &pl), PCB_RX_MORE);
	assert_int_equal(write(sv[1], w + 10, PCB_HDR_SIZE - 10 + 4), PCB_HDR_SIZE - 10 + 4);   /* truncated payload */
	assert_true(pcb_conn_fill(&c) > 0);
	assert_int_equal(pcb_conn_parse(&c, &got, &pl), PCB_RX_MORE);
	assert_int_equal(write(sv[1], w + PCB_HDR_SIZE + 4, 4), 4);
	assert_int_equal(pcb_conn_recv(&c, &got, &pl), PCB_RX_FRAME);
	assert_int_equal(got.type, PCB_MSG_DIGEST_REQ);
	assert_int_equal(got.arg, 3);
	/* a header announcing an oversized payload is refused at once */
	h = hdr(PCB_MSG_PAGE, 1u << 30, 0);
	pcb_hdr_encode(&h, w);
	assert_int_equal(write(sv[1], w, PCB_HDR_SIZE), PCB_HDR_SIZE);
	assert_int_equal(pcb_conn_recv(&c, &got, &pl), PCB_RX_BAD);
	assert_int_equal(c.bad_frames, 1);
	assert_non_null(strstr(c.err, "length"));
	pcb_conn_free(&c);
	/* EOF in the middle of a frame */
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&c, sv[0], 0, NP), 0);
	h = hdr(PCB_MSG_PAGE, PCB_PAGE_SIZE, 1);
	pcb_hdr_encode(&h, w);
	assert_int_equal(write(sv[1], w, PCB_HDR_SIZE), PCB_HDR_SIZE);
	close(sv[1]);
	assert_int_equal(pcb_conn_recv(&c, &got, &pl), PCB_RX_BAD);
	assert_non_null(strstr(c.err, "inside a frame"));
	pcb_conn_free(&c);
}

static void test_link_parse(void **st)
{
	(void)st;
	uint64_t bps, rtt;
	char why[200];
	assert_int_equal(pcb_link_parse("10gbit,50us", &bps, &rtt, why, sizeof(why)), 0);
	assert_int_equal(bps, 10000000000ull);
	assert_int_equal(rtt, 50000);
	assert_int_equal(pcb_link_parse("1.5mbit", &bps, &rtt, why, sizeof(why)), 0);
	assert_int_equal(bps, 1500000);
	assert_int_equal(rtt, 0);
	assert_int_equal(pcb_link_parse("unlimited,5ms", &bps, &rtt, why, sizeof(why)), 0);
	assert_int_equal(bps, 0);
	assert_int_equal(rtt, 5000000);
	assert_int_equal(pcb_link_parse("10gb,50us", &bps, &rtt, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'10gb'"));
	assert_int_equal(pcb_link_parse("1gbit,fast", &bps, &rtt, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'fast'"));
	assert_int_equal(pcb_link_parse("", &bps, &rtt, why, sizeof(why)), -1);
	assert_int_equal(pcb_link_parse("-1gbit", &bps, &rtt, why, sizeof(why)), -1);
}

/* Token bucket: back-to-back frames leave one serialisation time apart; a
 * frame ready while the link is idle pays its own serialisation time. */
static void test_link_bucket(void **st)
{
	(void)st;
	struct pcb_link l;
	pcb_link_init(&l);
	pcb_link_set(&l, 1000000000ull, 0);   /* 1 Gbit/s: 1000 bytes = 8 µs */
	uint64_t t = 1000000;
	assert_int_equal(pcb_link_reserve(&l, 1000, t), t + 8000);
	assert_int_equal(pcb_link_reserve(&l, 1000, t), t + 16000);      /* queued behind the first */
	assert_int_equal(pcb_link_reserve(&l, 1000, t + 100000), t + 108000);   /* idle link: no credit */
	pcb_link_set(&l, 0, 0);
	assert_int_equal(pcb_link_reserve(&l, 1 << 20, t), t);          /* unlimited */
}

/* The demand connection's frames (--channels=2) overtake background frames
 * already reserved: they wait for at most one MTU of the background frame on
 * the wire and for earlier demand frames; the background schedule is pushed
 * back by their serialisation time, so the rate stays shared. */
static void test_link_urgent(void **st)
{
	(void)st;
	struct pcb_link l;
	pcb_link_init(&l);
	pcb_link_set(&l, 1000000000ull, 0);   /* 1 Gbit/s: 1000 bytes = 8 µs, an MTU (1500) = 12 µs */
	uint64_t t = 1000000;
	assert_int_equal(pcb_link_reserve(&l, 65536, t), t + 524288);   /* a 64 KiB background frame */
	/* a 4 KiB demand reply ready meanwhile: one MTU, then its own 4120 bytes (32.96 µs) */
	assert_int_equal(pcb_link_reserve_urgent(&l, 4120, t + 1000), t + 1000 + 12000 + 32960);
	/* a second one queues behind the first demand reply and one more background packet (the
	 * link alternates between the connections), not behind the whole background frame */
	assert_int_equal(pcb_link_reserve_urgent(&l, 4120, t + 1000), t + 1000 + 2 * (12000 + 32960));
	/* the next background frame starts after the first one plus both demand replies */
	assert_int_equal(pcb_link_reserve(&l, 1000, t), t + 524288 + 2 * 32960 + 8000);
	/* an idle link: a demand reply pays only its serialisation time */
	assert_int_equal(pcb_link_reserve_urgent(&l, 1000, t + 10000000), t + 10000000 + 8000);
	/* ... and a background frame after it queues behind it */
	assert_int_equal(pcb_link_reserve(&l, 1000, t + 10000000), t + 10000000 + 16000);
	pcb_link_set(&l, 0, 0);
	assert_int_equal(pcb_link_reserve_urgent(&l, 1 << 20, t), t);   /* unlimited */
}

/* ---- handshake over a socketpair -------------------------------------------- */

struct srv {
	int fd;
	const struct pcb_auth_key *key;
	int rc;
	char why[256];
};

static struct pcb_config_wire cfgw = { 4 * NP * 1024ull, NP, 42, 0, PCB_PAGE_SIZE, 0, { 0 } };

static void *srv_thread(void *a)
{
	struct srv *s = a;
	struct pcb_conn c;
	struct pcb_hello hello;
	pcb_conn_init(&c, s->fd, 0, NP);
	s->rc = pcb_hs_server(&c, s->key, &cfgw, 2000, &hello, s->why, sizeof(s->why));
	pcb_conn_free(&c);
	return NULL;
}

static int hs(const struct pcb_auth_key *skey, const struct pcb_auth_key *ckey, struct srv *s, char *why, size_t wl,
	      struct pcb_config_wire *got)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	*s = (struct srv){ .fd = sv[0], .key = skey };
	pthread_t th;
	pthread_create(&th, NULL, srv_thread, s);
	struct pcb_conn c;
	pcb_conn_init(&c, sv[1], 0, NP);
	int rc = pcb_hs_client(&c, PCB_CHAN_DEMAND, 0, ckey, 2000, got, why, wl);
	pcb_conn_free(&c);
	pthread_join(th, NULL);
	return rc;
}

static void key(struct pcb_auth_key *k, uint8_t v)
{
	memset(k, 0, sizeof(*k));   /* handshake_only false: a key file's stream authentication */
	k->len = 32;
	memset(k->key, v, 32);
}

static void test_handshake_auth(void **st)
{
	(void)st;
	struct pcb_auth_key k1, k2;
	struct pcb_config_wire got;
	struct srv s;
	char why[256];
	key(&k1, 1);
	key(&k2, 2);
	assert_int_equal(hs(NULL, NULL, &s, why, sizeof(why), &got), 0);
	assert_int_equal(s.rc, 0);
	assert_int_equal(got.seed, 42);
	assert_int_equal(got.npages, NP);
	assert_int_equal(hs(&k1, &k1, &s, why, sizeof(why), &got), 0);
	assert_int_equal(s.rc, 0);
	assert_int_equal(got.seed, 42);
	/* wrong key: the source refuses, says why, and the destination reports it */
	assert_int_equal(hs(&k1, &k2, &s, why, sizeof(why), &got), PCB_EXIT_NOPERM);
	assert_int_equal(s.rc, PCB_EXIT_NOPERM);
	assert_non_null(strstr(s.why, "authentication failed"));
	assert_non_null(strstr(why, "authentication failed"));
	/* no key at the destination */
	assert_int_equal(hs(&k1, NULL, &s, why, sizeof(why), &got), PCB_EXIT_NOPERM);
	assert_non_null(strstr(why, "--auth-key-file"));
	/* a destination with a key refuses a source without one */
	assert_int_equal(hs(NULL, &k1, &s, why, sizeof(why), &got), PCB_EXIT_NOPERM);
	assert_non_null(strstr(why, "does not authenticate"));
}

/* A handshake that must succeed, with key k at both ends (or none): the CONFIG
 * flags the destination received. */
static uint32_t hs_reserved(const struct pcb_auth_key *k)
{
	struct pcb_config_wire got;
	struct srv s;
	char why[256];
	assert_int_equal(hs(k, k, &s, why, sizeof(why), &got), 0);
	return got.reserved;
}

/* A bytes image (a file, an application's database image) is announced in
 * CONFIG, signed with the rest; other bits of the field are never sent. */
static void test_handshake_bytes_image(void **st)
{
	(void)st;
	struct pcb_auth_key k1;
	key(&k1, 1);
	cfgw.reserved = PCB_CFG_BYTES_IMAGE;
	assert_int_equal(hs_reserved(NULL), PCB_CFG_BYTES_IMAGE);
	assert_int_equal(hs_reserved(&k1), PCB_CFG_BYTES_IMAGE);
	cfgw.reserved = PCB_CFG_BYTES_IMAGE | 0x10000;
	assert_int_equal(hs_reserved(NULL), PCB_CFG_BYTES_IMAGE);
	cfgw.reserved = 0;
	assert_int_equal(hs_reserved(NULL), 0);
}

/* The zero-page model crosses the handshake (signed with the rest), so a
 * destination builds the image the source serves without being told. */
static void test_handshake_zero_model(void **st)
{
	(void)st;
	struct pcb_auth_key k1;
	struct pcb_config_wire got;
	struct srv s;
	char why[256];
	key(&k1, 1);
	assert_int_equal(pcb_cfg_zero_flags(0), 0);
	assert_int_equal(pcb_cfg_zero_run_max(pcb_cfg_zero_flags(1)), 1);
	assert_int_equal(pcb_cfg_zero_run_max(pcb_cfg_zero_flags(1u << 20)), 1u << 20);
	unsigned maxes[] = { 0, 1, 64, 1024, 1u << 20 };
	for (unsigned i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		cfgw.reserved = pcb_cfg_zero_flags(maxes[i]);
		assert_int_equal(pcb_cfg_zero_run_max(hs_reserved(NULL)), maxes[i]);
		assert_int_equal(pcb_cfg_zero_run_max(hs_reserved(&k1)), maxes[i]);
	}
	/* a run order with the model bit clear, or beyond 2^20: refused as impossible */
	cfgw.reserved = 10u << PCB_CFG_RUN_SHIFT;
	assert_int_equal(hs(NULL, NULL, &s, why, sizeof(why), &got), PCB_EXIT_PROTOCOL);
	assert_non_null(strstr(why, "impossible image"));
	cfgw.reserved = PCB_CFG_ZERO_RUNS | (21u << PCB_CFG_RUN_SHIFT);
	assert_int_equal(hs(NULL, NULL, &s, why, sizeof(why), &got), PCB_EXIT_PROTOCOL);
	cfgw.reserved = 0;
}

static void test_auth_key_file(void **st)
{
	(void)st;
	char path[] = "/tmp/pcb-test-key-XXXXXX", why[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	struct pcb_auth_key k;
	assert_int_equal(write(fd, "short\n", 6), 6);
	assert_int_equal(pcb_auth_key_load(path, &k, why, sizeof(why)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why, "5 bytes"));
	assert_int_equal(write(fd, "0123456789abcdef\n", 17), 17);
	assert_int_equal(pcb_auth_key_load(path, &k, why, sizeof(why)), 0);
	assert_int_equal(k.len, 22);   /* trailing newline dropped */
	close(fd);
	unlink(path);
	assert_int_equal(pcb_auth_key_load("/nonexistent/key", &k, why, sizeof(why)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why, "/nonexistent/key"));
}

/* ---- the source against hostile frames ---------------------------------------------- */

struct srcrun {
	struct pcb_source_state *st;
	int fd, rc;
	pthread_t th;          /* serving (src_start) */
	struct pcb_conn c;     /* the handshaken connection to it */
};

static void *src_thread(void *a)
{
	struct srcrun *r = a;
	r->rc = pcb_source_serve_conn(r->st, r->fd);
	return NULL;
}

/* A source serving one end of a socketpair on its own thread, and a
 * connection to it handshaken as channel ch. */
static void src_start(struct srcrun *r, const struct pcb_source_cfg *cfg, uint64_t npages, uint16_t ch)
{
	int sv[2];
	struct pcb_config_wire got;
	char why[256];
	r->st = pcb_source_state_new(cfg);
	assert_non_null(r->st);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->fd = sv[0];
	assert_int_equal(pthread_create(&r->th, NULL, src_thread, r), 0);
	pcb_conn_init(&r->c, sv[1], 0, npages);
	assert_int_equal(pcb_hs_client(&r->c, ch, 0, cfg->key, 2000, &got, why, sizeof(why)), 0);
}

/* Handshake as channel 0, send `bad` raw, expect an ERROR frame mentioning
 * `needle`, then the connection closed; the source counted one bad frame. */
static void hostile_to_source(const void *bad, size_t len, const char *needle)
{
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 42, .zero_fraction = 0.25,
				      .handshake_timeout_ms = 2000 };
	struct srcrun r;
	src_start(&r, &cfg, NP, PCB_CHAN_DEMAND);
	struct pcb_conn *c = &r.c;
	assert_int_equal(write(c->fd, bad, len), (ssize_t)len);
	struct pcb_hdr h;
	const uint8_t *pl;
	assert_int_equal(pcb_conn_recv(c, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(h.type, PCB_MSG_ERROR);
	char text[PCB_MAX_ERRTEXT + 1];
	memcpy(text, pl, h.len);
	text[h.len] = 0;
	if (!strstr(text, needle))
		fail_msg("source's ERROR '%s' does not mention '%s'", text, needle);
	assert_int_equal(pcb_conn_recv(c, &h, &pl), PCB_RX_EOF);   /* and it hung up */
	pthread_join(r.th, NULL);
	assert_int_equal(pcb_source_bad_frames(r.st), 1);
	pcb_conn_free(c);
	pcb_source_state_free(r.st);
}

/* --channels=1: on a shared connection the source answers a demand request
 * with a PAGE flagged URGENT at its next frame boundary, ahead of the
 * background batches already queued: only what the socket already holds (and
 * one 64 KiB frame) precedes it, not the 64 MiB of batches asked for first.
 * Background runs on a shared connection are at most 16 pages. */
static void test_source_shared_priority(void **st)
{
	(void)st;
	enum { PAGES = 16384, BATCH = 4096 };
	struct pcb_source_cfg cfg = { .mem_bytes = PAGES * 4096ull, .seed = 42, .zero_fraction = 0,
				      .handshake_timeout_ms = 2000 };
	struct srcrun r;
	src_start(&r, &cfg, PAGES, PCB_CHAN_SHARED);
	struct pcb_conn *c = &r.c;
	for (uint64_t id = 0; id < PAGES / BATCH; id++) {
		struct pcb_range_wire w = { htole64(id * BATCH), htole64(BATCH) };
		assert_int_equal(pcb_conn_send(c, PCB_MSG_RANGES, id, &w, sizeof(w)), 0);
	}
	usleep(100 * 1000);   /* the source fills the socket and blocks writing */
	int sndbuf = 0, rcvbuf = 0;
	socklen_t sl = sizeof(int);
	getsockopt(r.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
	getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &sl);
	const uint64_t want = PAGES - 7;   /* in the last batch */
	assert_int_equal(pcb_conn_send(c, PCB_MSG_REQ, want, NULL, 0), 0);
	uint64_t before = 0, ends = 0, urgent = 0, runs = 0;
	bool seen = false;
	while (ends < PAGES / BATCH) {
		struct pcb_hdr h;
		const uint8_t *pl;
		assert_int_equal(pcb_conn_recv(c, &h, &pl), PCB_RX_FRAME);
		if (h.flags & PCB_FRAME_URGENT) {
			assert_int_equal(h.type, PCB_MSG_PAGE);
			assert_true(h.arg == want);
			assert_int_equal(ends, 0);   /* ahead of the first batch's end (16 MiB) */
			seen = true;
			urgent++;
			continue;
		}
		if (h.type == PCB_MSG_BATCH_END) {
			assert_int_equal(h.arg, ends);
			ends++;
			continue;
		}
		assert_int_equal(h.type, PCB_MSG_RUN);
		assert_true(h.len <= 16 * 4096);
		runs++;
		if (!seen)
			before += PCB_HDR_SIZE + h.len;
	}
	assert_true(seen);
	assert_int_equal(urgent, 1);
	/* behind what the two socket buffers held, plus the frame being formatted */
	if (before > (uint64_t)sndbuf + (uint64_t)rcvbuf + 2 * (64 << 10))
		fail_msg("%llu bytes of background data preceded the urgent reply (socket buffers %d + %d)",
			 (unsigned long long)before, sndbuf, rcvbuf);
	assert_true(runs >= PAGES / 16);
	print_message("urgent reply after %llu of %u bytes of background data (socket buffers %d + %d)\n",
		      (unsigned long long)before, PAGES * 4096, sndbuf, rcvbuf);
	assert_int_equal(pcb_conn_send(c, PCB_MSG_BYE, 0, NULL, 0), 0);
	pthread_join(r.th, NULL);
	assert_int_equal(r.rc, 0);
	pcb_conn_free(c);
	pcb_source_state_free(r.st);
}

static void test_source_refuses(void **st)
{
	(void)st;
	uint8_t w[PCB_HDR_SIZE + 32];
	struct pcb_hdr h = hdr(PCB_MSG_REQ, 0, NP);   /* out-of-range offset */
	pcb_hdr_encode(&h, w);
	hostile_to_source(w, PCB_HDR_SIZE, "outside the image");
	h = hdr(PCB_MSG_RANGES, 0x7fffffff, 0);       /* oversized length */
	pcb_hdr_encode(&h, w);
	hostile_to_source(w, PCB_HDR_SIZE, "length");
	h = hdr(PCB_MSG_REQ, 0, 1);
	h.version = 9;                                /* wrong version */
	pcb_hdr_encode(&h, w);
	hostile_to_source(w, PCB_HDR_SIZE, "version 9");
	h = hdr(PCB_MSG_REQ, 0, 1);
	h.magic = 0xdeadbeef;                         /* wrong magic */
	pcb_hdr_encode(&h, w);
	hostile_to_source(w, PCB_HDR_SIZE, "magic");
	h = hdr(PCB_MSG_RANGES, 16, 0);               /* range running off the image */
	pcb_hdr_encode(&h, w);
	uint64_t f = htole64(NP - 2), n = htole64(5);
	memcpy(w + PCB_HDR_SIZE, &f, 8);
	memcpy(w + PCB_HDR_SIZE + 8, &n, 8);
	hostile_to_source(w, PCB_HDR_SIZE + 16, "outside the image");
	h = hdr(PCB_MSG_DIGEST_REQ, 8, NP - 1);       /* digest count past the end */
	pcb_hdr_encode(&h, w);
	n = htole64(2);
	memcpy(w + PCB_HDR_SIZE, &n, 8);
	hostile_to_source(w, PCB_HDR_SIZE + 8, "DIGEST_REQ");
	h = hdr(PCB_MSG_CONFIG, sizeof(struct pcb_config_wire), 0);   /* a frame the source never accepts */
	pcb_hdr_encode(&h, w);
	uint8_t big[PCB_HDR_SIZE + sizeof(struct pcb_config_wire)] = { 0 };
	memcpy(big, w, PCB_HDR_SIZE);
	hostile_to_source(big, sizeof(big), "unexpected CONFIG");
}

/* A frame before the handshake is refused with a reason. */
/* Demand requests that arrive together (one write, as the demand thread sends
 * the faults of one userfaultfd read) are each answered, in order, with the
 * page's contents: the source sends the replies due together in one write. */
static void test_source_demand_together(void **st)
{
	(void)st;
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 42, .zero_fraction = 0.25,
				      .handshake_timeout_ms = 2000 };
	struct pcb_image im;
	pcb_image_init(&im, 42, NP, 0.25);
	struct srcrun r;
	src_start(&r, &cfg, NP, PCB_CHAN_DEMAND);
	struct pcb_conn *c = &r.c;
	uint64_t want[PCB_SEND_ARGS_MAX];
	for (unsigned round = 0; round < 3; round++) {
		unsigned n = round == 0 ? 2 : round == 1 ? 8 : PCB_SEND_ARGS_MAX;
		for (unsigned i = 0; i < n; i++)
			want[i] = (round * 97 + i * 13) % NP;
		assert_int_equal(pcb_conn_send_args(c, PCB_MSG_REQ, want, n), 0);
		for (unsigned i = 0; i < n; i++) {
			struct pcb_hdr h;
			const uint8_t *pl;
			uint8_t page[PCB_PAGE_SIZE];
			assert_int_equal(pcb_conn_recv(c, &h, &pl), PCB_RX_FRAME);
			assert_true(h.arg == want[i]);
			if (pcb_image_is_zero(&im, want[i])) {
				assert_int_equal(h.type, PCB_MSG_ZERO);
				continue;
			}
			assert_int_equal(h.type, PCB_MSG_PAGE);
			assert_int_equal(h.len, PCB_PAGE_SIZE);
			pcb_image_fill(&im, want[i], page);
			assert_memory_equal(pl, page, PCB_PAGE_SIZE);
		}
	}
	assert_int_equal(pcb_conn_send(c, PCB_MSG_BYE, 0, NULL, 0), 0);
	pthread_join(r.th, NULL);
	assert_int_equal(r.rc, 0);
	pcb_conn_free(c);
	pcb_source_state_free(r.st);
}

/* Memory that does not change while it is served (the source's built image)
 * leaves from the mapping itself, in the frames' writev: every RUN carries the
 * image's bytes, with and without a key (the tag covers the mapping's bytes,
 * checked by the receiving connection), and the test hook's corrupted page is
 * still served corrupted (its run is copied, then the byte flipped). */
static void fixed_memory(const struct pcb_auth_key *k, enum pcb_source_send send)
{
	enum { PAGES = 2048 };
	struct pcb_source_cfg cfg = { .mem_bytes = PAGES * 4096ull, .seed = 42, .zero_fraction = 0.25,
				      .handshake_timeout_ms = 2000, .image_mode = PCB_SRC_IMAGE_MEMORY, .key = k, .send = send };
	struct pcb_source_image si;
	assert_int_equal(pcb_source_image_prepare(&cfg, &si), 0);
	assert_true(cfg.mem_fixed);
	struct pcb_image im;
	pcb_image_init(&im, 42, PAGES, 0.25);
	uint64_t bad = 100;
	while (pcb_image_is_zero(&im, bad))
		bad++;
	char bs[32];
	snprintf(bs, sizeof(bs), "%llu", (unsigned long long)bad);
	setenv("PCB_TEST_CORRUPT_PAGE", bs, 1);
	struct srcrun r;
	src_start(&r, &cfg, PAGES, PCB_CHAN_BACKGROUND);
	unsetenv("PCB_TEST_CORRUPT_PAGE");
	struct pcb_conn *c = &r.c;
	struct pcb_range_wire w = { htole64(0), htole64(PAGES) };
	assert_int_equal(pcb_conn_send(c, PCB_MSG_RANGES, 0, &w, sizeof(w)), 0);
	uint64_t next = 0, runs = 0;
	uint8_t page[PCB_PAGE_SIZE];
	for (;;) {
		struct pcb_hdr h;
		const uint8_t *pl;
		assert_int_equal(pcb_conn_recv(c, &h, &pl), PCB_RX_FRAME);
		if (h.type == PCB_MSG_BATCH_END)
			break;
		assert_true(h.arg == next);
		if (h.type == PCB_MSG_ZERO) {
			assert_true(pcb_image_is_zero(&im, next++));
			continue;
		}
		assert_int_equal(h.type, PCB_MSG_RUN);
		runs++;
		for (uint32_t i = 0; i < h.len / PCB_PAGE_SIZE; i++, next++) {
			pcb_image_fill(&im, next, page);
			if (next == bad)
				page[100] ^= 1;
			assert_memory_equal(pl + (size_t)i * PCB_PAGE_SIZE, page, PCB_PAGE_SIZE);
		}
	}
	assert_true(next == PAGES);
	assert_true(runs > 1);
	assert_int_equal(pcb_conn_send(c, PCB_MSG_BYE, 0, NULL, 0), 0);
	pthread_join(r.th, NULL);
	assert_int_equal(r.rc, 0);
	/* splice: the runs' writes (>= 16 image pages each, all but the corrupted page's) went through the pipe */
	uint64_t spliced = pcb_source_bytes_spliced(r.st);
	if (send == PCB_SRC_SEND_WRITEV)
		assert_true(spliced == 0);
	else
		assert_true(spliced >= PAGES * 4096ull / 2 && spliced <= c->bytes_rx);
	pcb_conn_free(c);
	pcb_source_state_free(r.st);
	pcb_source_image_release(&si);
}

static void test_source_fixed_memory(void **st)
{
	(void)st;
	struct pcb_auth_key k;
	fixed_memory(NULL, PCB_SRC_SEND_SPLICE);
	fixed_memory(NULL, PCB_SRC_SEND_WRITEV);
	key(&k, 1);
	fixed_memory(&k, PCB_SRC_SEND_AUTO);
	fixed_memory(&k, PCB_SRC_SEND_WRITEV);
}

static void test_source_wants_hello(void **st)
{
	(void)st;
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 42, .handshake_timeout_ms = 2000 };
	struct srcrun r = { .st = pcb_source_state_new(&cfg) };
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r.fd = sv[0];
	pthread_t th;
	pthread_create(&th, NULL, src_thread, &r);
	struct pcb_conn c;
	pcb_conn_init(&c, sv[1], 0, NP);
	assert_int_equal(pcb_conn_send(&c, PCB_MSG_REQ, 1, NULL, 0), 0);
	struct pcb_hdr h;
	const uint8_t *pl;
	assert_int_equal(pcb_conn_recv(&c, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(h.type, PCB_MSG_ERROR);
	assert_non_null(memmem(pl, h.len, "expected HELLO", 14));
	pthread_join(th, NULL);
	assert_int_equal(r.rc, PCB_EXIT_PROTOCOL);
	pcb_conn_free(&c);
	pcb_source_state_free(r.st);
}

/* ---- the pager against a malicious source ------------------------------------------ */

struct evil {
	int lfd;
	int mode;      /* 0: page outside the image, 1: short page, 2: page never requested */
};

static void *evil_source(void *a)
{
	struct evil *e = a;
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 42, .zero_fraction = 0 };
	struct pcb_source_state *ss = pcb_source_state_new(&cfg);
	(void)ss;
	struct pcb_config_wire cw = cfgw;
	struct pcb_image im;
	pcb_image_init(&im, 42, NP, 0);
	cw.zero_threshold = im.zero_threshold;
	int fds[2];
	for (int ch = 0; ch < 2; ch++) {
		fds[ch] = accept(e->lfd, NULL, NULL);
		struct pcb_conn c;
		struct pcb_hello hello;
		char why[256];
		pcb_conn_init(&c, fds[ch], 0, NP);
		if (pcb_hs_server(&c, NULL, &cw, 2000, &hello, why, sizeof(why)) != 0)
			fail_msg("handshake: %s", why);
		c.fd = -1;   /* keep the socket */
		pcb_conn_free(&c);
	}
	/* wait for the background channel's first request, then answer with poison */
	uint8_t buf[4096 + 64];
	ssize_t n = read(fds[1], buf, sizeof(buf));
	(void)n;
	uint8_t page[PCB_HDR_SIZE + 2 * 4096];
	memset(page, 0xAA, sizeof(page));
	size_t len = PCB_HDR_SIZE + 4096;
	int fd = fds[1];
	struct pcb_hdr h = hdr(PCB_MSG_PAGE, 4096, NP + 100);
	if (e->mode == 1) {
		h = hdr(PCB_MSG_PAGE, 100, 0);
	} else if (e->mode == 2) {   /* a well-formed page nobody asked for, on the demand channel */
		h = hdr(PCB_MSG_PAGE, 4096, 3);
		fd = fds[0];
	} else if (e->mode == 3) {   /* a run of two data pages starting at the last page: runs off the region */
		h = hdr(PCB_MSG_RUN, 2 * 4096, NP - 1);
		len = sizeof(page);
	}
	pcb_hdr_encode(&h, page);
	n = write(fd, page, len);
	sleep(1);
	close(fds[0]);
	close(fds[1]);
	pcb_source_state_free(ss);
	return NULL;
}

static void malicious_source(int mode, int want_code, const char *needle)
{
	struct evil e = { .mode = mode };   /* 0: page outside, 1: short page, 2: unrequested, 3: run off the end */
	uint16_t port;
	e.lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
	assert_true(e.lfd >= 0);
	pthread_t th;
	pthread_create(&th, NULL, evil_source, &e);
	struct pcb_image im;
	pcb_image_init(&im, 42, NP, 0);
	struct pcb_pager_cfg pc = { .npages = NP, .nvcpus = 1, .policy = pcb_policy_find("sequential"),
				    .batch_pages = 64, .window = 2, .io_timeout_ns = 3 * PCB_NSEC_PER_SEC,
				    .host = "127.0.0.1", .port = port, .seed = 42, .zero_threshold = im.zero_threshold };
	struct pcb_pager *p;
	char why[256];
	int rc = pcb_pager_create(&pc, &p, why, sizeof(why));
	if (rc == PCB_EXIT_UNAVAILABLE || rc == PCB_EXIT_NOPERM) {
		pthread_cancel(th);
		close(e.lfd);
		skip();
	}
	assert_int_equal(rc, 0);
	/* a fault so that the demand channel has something outstanding is not needed: the
	 * background thread asks at once and the demand channel must refuse what it never asked */
	assert_int_equal(pcb_pager_start(p), 0);
	int r = 0;
	for (int i = 0; i < 50 && r == 0; i++)
		r = pcb_pager_poll(p, 100, why, sizeof(why));
	assert_int_equal(r, -want_code);
	if (!strstr(why, needle))
		fail_msg("pager's reason '%s' does not mention '%s'", why, needle);
	/* nothing was installed from the poison */
	assert_int_equal(atomic_load(&pcb_pager_pagestate(p)->npresent), 0);
	pthread_join(th, NULL);
	close(e.lfd);
	pcb_pager_destroy(p);
}

static void test_pager_refuses_page_outside(void **st) { (void)st; malicious_source(0, PCB_EXIT_PROTOCOL, "outside the image"); }
static void test_pager_refuses_short_page(void **st) { (void)st; malicious_source(1, PCB_EXIT_PROTOCOL, "length 100"); }
static void test_pager_refuses_unrequested(void **st) { (void)st; malicious_source(2, PCB_EXIT_PROTOCOL, "not requested"); }
static void test_pager_refuses_run_off_the_end(void **st) { (void)st; malicious_source(3, PCB_EXIT_PROTOCOL, "outside the image"); }

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_validate_rejects),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_conn_parse),
		cmocka_unit_test(test_link_parse),
		cmocka_unit_test(test_link_bucket),
		cmocka_unit_test(test_link_urgent),
		cmocka_unit_test(test_handshake_auth),
		cmocka_unit_test(test_handshake_bytes_image),
		cmocka_unit_test(test_handshake_zero_model),
		cmocka_unit_test(test_auth_key_file),
		cmocka_unit_test(test_source_refuses),
		cmocka_unit_test(test_source_shared_priority),
		cmocka_unit_test(test_source_demand_together),
		cmocka_unit_test(test_source_fixed_memory),
		cmocka_unit_test(test_source_wants_hello),
		cmocka_unit_test(test_pager_refuses_page_outside),
		cmocka_unit_test(test_pager_refuses_short_page),
		cmocka_unit_test(test_pager_refuses_unrequested),
		cmocka_unit_test(test_pager_refuses_run_off_the_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
