/* wire/proto: header encoding, pcb_proto_validate for every type,
 * pcb_proto_check_ranges, and pcb_conn framing (partial, oversized, EOF). */
#include "tests/lib/testlib.h"
#include "wire/proto.h"
#include "common/image.h"
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define NPAGES 1000

static struct pcb_hdr H(uint16_t type, uint32_t len, uint64_t arg)
{
	return (struct pcb_hdr){ PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type, len, 0, arg };
}

static void ok(struct pcb_hdr h)
{
	char why[256] = "";
	if (pcb_proto_validate(&h, NPAGES, why, sizeof(why)) != 0)
		fail_msg("valid %s frame (len %u, arg %llu) rejected: %s", pcb_msg_name(h.type), h.len,
			 (unsigned long long)h.arg, why);
}

static void rejected(struct pcb_hdr h, const char *needle)
{
	char why[256] = "";
	if (pcb_proto_validate(&h, NPAGES, why, sizeof(why)) == 0)
		fail_msg("invalid %s frame (type %u, len %u, arg %llu) accepted", pcb_msg_name(h.type), h.type, h.len,
			 (unsigned long long)h.arg);
	assert_true(why[0] != 0);
	if (needle)
		tl_assert_contains(why, needle);
}

static void test_hdr_roundtrip(void **state)
{
	(void)state;
	struct pcb_hdr a = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, PCB_MSG_DIGESTS, 0x01020304u, 0xa0b0c0d0u,
			     0x1122334455667788ull }, b;
	uint8_t buf[PCB_HDR_SIZE];
	pcb_hdr_encode(&a, buf);
	/* little endian on the wire, magic reads "PCB1" */
	assert_memory_equal(buf, "PCB1", 4);
	assert_int_equal(buf[4], PCB_PROTO_VERSION & 0xff);
	assert_int_equal(buf[5], PCB_PROTO_VERSION >> 8);
	assert_int_equal(buf[6], PCB_MSG_DIGESTS);
	assert_int_equal(buf[8], 0x04);
	assert_int_equal(buf[11], 0x01);
	assert_int_equal(buf[12], 0xd0);
	assert_int_equal(buf[16], 0x88);
	assert_int_equal(buf[23], 0x11);
	pcb_hdr_decode(buf, &b);
	assert_int_equal(b.magic, a.magic);
	assert_int_equal(b.version, a.version);
	assert_int_equal(b.type, a.type);
	assert_int_equal(b.len, a.len);
	assert_int_equal(b.flags, a.flags);
	assert_true(b.arg == a.arg);
	/* extreme values */
	a = (struct pcb_hdr){ 0xffffffffu, 0xffff, 0xffff, 0xffffffffu, 0xffffffffu, UINT64_MAX };
	pcb_hdr_encode(&a, buf);
	pcb_hdr_decode(buf, &b);
	assert_true(b.magic == a.magic && b.version == a.version && b.type == a.type && b.len == a.len &&
		    b.flags == a.flags && b.arg == a.arg);
	/* names */
	for (unsigned t = 1; t < PCB_MSG_MAX; t++)
		assert_string_not_equal(pcb_msg_name(t), "?");
	assert_string_equal(pcb_msg_name(0), "?");
	assert_string_equal(pcb_msg_name(PCB_MSG_MAX), "?");
	assert_string_equal(pcb_msg_name(60000), "?");
}

static void test_validate_common(void **state)
{
	(void)state;
	struct pcb_hdr h = H(PCB_MSG_BYE, 0, 0);
	ok(h);
	h.magic = 0x31424351;
	rejected(h, "magic");
	h = H(PCB_MSG_BYE, 0, 0);
	h.magic = 0;
	rejected(h, "magic");
	h = H(PCB_MSG_BYE, 0, 0);
	h.version = PCB_PROTO_VERSION + 1;
	rejected(h, "version");
	h.version = PCB_PROTO_VERSION - 1;
	rejected(h, "version");
	h.version = 0;
	rejected(h, "version");
	h = H(PCB_MSG_BYE, 0, 0);
	h.flags = PCB_FRAME_URGENT;    /* only a PAGE or ZERO reply may be urgent */
	rejected(h, "flags");
	h = H(PCB_MSG_RUN, PCB_PAGE_SIZE, 0);
	h.flags = PCB_FRAME_URGENT;
	rejected(h, "flags");
	h = H(PCB_MSG_PAGE, PCB_PAGE_SIZE, 0);
	h.flags = PCB_FRAME_URGENT;
	ok(h);
	h = H(PCB_MSG_ZERO, 0, 0);
	h.flags = PCB_FRAME_URGENT;
	ok(h);
	h.flags = 4;                   /* undefined flag */
	rejected(h, "flags");
	h = H(PCB_MSG_PAGE, PCB_PAGE_SIZE, 0);
	h.flags = 0x80000000u;
	rejected(h, "flags");
	rejected(H(0, 0, 0), "type");
	rejected(H(PCB_MSG_MAX, 0, 0), "type");
	rejected(H(0xffff, 0, 0), "type");
}

/* HELLO, CONFIG, REQ, ZERO, PAGE, RANGES */
static void validate_setup_and_page_types(void)
{
	/* HELLO / CONFIG: exact struct sizes */
	ok(H(PCB_MSG_HELLO, sizeof(struct pcb_hello), 0));
	rejected(H(PCB_MSG_HELLO, 0, 0), "HELLO");
	rejected(H(PCB_MSG_HELLO, sizeof(struct pcb_hello) + 1, 0), "length");
	ok(H(PCB_MSG_CONFIG, sizeof(struct pcb_config_wire), 0));
	rejected(H(PCB_MSG_CONFIG, sizeof(struct pcb_config_wire) - 1, 0), "CONFIG");
	rejected(H(PCB_MSG_CONFIG, 0xffffffffu, 0), "length");
	/* REQ / ZERO: no payload, page inside the image */
	for (uint16_t t = PCB_MSG_REQ; t <= PCB_MSG_ZERO; t += PCB_MSG_ZERO - PCB_MSG_REQ) {
		ok(H(t, 0, 0));
		ok(H(t, 0, NPAGES - 1));
		rejected(H(t, 0, NPAGES), "outside");
		rejected(H(t, 0, UINT64_MAX), "outside");
		rejected(H(t, 8, 5), "length");
		rejected(H(t, PCB_PAGE_SIZE, 5), "length");
	}
	/* PAGE: exactly one page, index inside */
	ok(H(PCB_MSG_PAGE, PCB_PAGE_SIZE, 0));
	ok(H(PCB_MSG_PAGE, PCB_PAGE_SIZE, NPAGES - 1));
	rejected(H(PCB_MSG_PAGE, PCB_PAGE_SIZE, NPAGES), "outside");
	rejected(H(PCB_MSG_PAGE, PCB_PAGE_SIZE - 1, 0), "length");
	rejected(H(PCB_MSG_PAGE, PCB_PAGE_SIZE + 1, 0), "length");
	rejected(H(PCB_MSG_PAGE, 0, 0), "length");
	rejected(H(PCB_MSG_PAGE, 0x80000000u, 0), "length");
	/* RANGES: 1..256 ranges of 16 bytes */
	ok(H(PCB_MSG_RANGES, 16, 7));
	ok(H(PCB_MSG_RANGES, 16 * PCB_MAX_RANGES, 7));
	rejected(H(PCB_MSG_RANGES, 0, 7), "RANGES");
	rejected(H(PCB_MSG_RANGES, 15, 7), "RANGES");
	rejected(H(PCB_MSG_RANGES, 24, 7), "RANGES");
	rejected(H(PCB_MSG_RANGES, 16 * (PCB_MAX_RANGES + 1), 7), "RANGES");
	rejected(H(PCB_MSG_RANGES, 0xfffffff0u, 7), "RANGES");
}

/* BATCH_END, BYE, DIGEST_REQ, DIGESTS, ERROR */
static void validate_control_and_digest_types(void)
{
	/* BATCH_END / BYE: empty; the batch id is not a page */
	ok(H(PCB_MSG_BATCH_END, 0, UINT64_MAX));
	rejected(H(PCB_MSG_BATCH_END, 1, 0), "length");
	ok(H(PCB_MSG_BYE, 0, 0));
	rejected(H(PCB_MSG_BYE, 4, 0), "length");
	/* DIGEST_REQ: u64 count, first page inside */
	ok(H(PCB_MSG_DIGEST_REQ, 8, 0));
	ok(H(PCB_MSG_DIGEST_REQ, 8, NPAGES - 1));
	rejected(H(PCB_MSG_DIGEST_REQ, 8, NPAGES), "outside");
	rejected(H(PCB_MSG_DIGEST_REQ, 16, 0), "length");
	rejected(H(PCB_MSG_DIGEST_REQ, 0, 0), "length");
	/* DIGESTS: 1..65536 u64s, all pages inside */
	ok(H(PCB_MSG_DIGESTS, 8, 0));
	ok(H(PCB_MSG_DIGESTS, 8 * NPAGES, 0));
	ok(H(PCB_MSG_DIGESTS, 8, NPAGES - 1));
	rejected(H(PCB_MSG_DIGESTS, 16, NPAGES - 1), "outside");
	rejected(H(PCB_MSG_DIGESTS, 8 * (NPAGES + 1), 0), "outside");
	rejected(H(PCB_MSG_DIGESTS, 8, NPAGES), "outside");
	rejected(H(PCB_MSG_DIGESTS, 8, UINT64_MAX), "outside");   /* arg + count must not wrap */
	rejected(H(PCB_MSG_DIGESTS, 0, 0), "DIGESTS");
	rejected(H(PCB_MSG_DIGESTS, 12, 0), "DIGESTS");
	rejected(H(PCB_MSG_DIGESTS, 8 * (PCB_MAX_DIGESTS + 1), 0), "DIGESTS");
	{
		char why[256];
		struct pcb_hdr big = H(PCB_MSG_DIGESTS, 8 * PCB_MAX_DIGESTS, 0);
		assert_int_equal(pcb_proto_validate(&big, 1u << 20, why, sizeof(why)), 0);
	}
	/* ERROR: text up to 256 bytes */
	ok(H(PCB_MSG_ERROR, 0, 0));
	ok(H(PCB_MSG_ERROR, PCB_MAX_ERRTEXT, 0));
	rejected(H(PCB_MSG_ERROR, PCB_MAX_ERRTEXT + 1, 0), "ERROR");
	rejected(H(PCB_MSG_ERROR, 0xffffffffu, 0), "ERROR");
}

/* RUN, the v2 handshake and link frames, PING, PONG */
static void validate_run_and_link_types(void)
{
	/* RUN: 1..PCB_MAX_RUN_PAGES whole pages, all inside the image */
	ok(H(PCB_MSG_RUN, PCB_PAGE_SIZE, 0));
	ok(H(PCB_MSG_RUN, PCB_PAGE_SIZE * 10, NPAGES - 10));
	rejected(H(PCB_MSG_RUN, PCB_PAGE_SIZE * 11, NPAGES - 10), "outside");
	rejected(H(PCB_MSG_RUN, PCB_PAGE_SIZE, NPAGES), "outside");
	rejected(H(PCB_MSG_RUN, PCB_PAGE_SIZE, UINT64_MAX), "outside");
	rejected(H(PCB_MSG_RUN, 0, 0), "RUN");
	rejected(H(PCB_MSG_RUN, PCB_PAGE_SIZE + 1, 0), "RUN");
	rejected(H(PCB_MSG_RUN, PCB_PAGE_SIZE * (PCB_MAX_RUN_PAGES + 1), 0), "RUN");
	{
		char why[256];
		struct pcb_hdr big = H(PCB_MSG_RUN, PCB_PAGE_SIZE * PCB_MAX_RUN_PAGES, 0);
		assert_int_equal(pcb_proto_validate(&big, 1u << 20, why, sizeof(why)), 0);
	}
	/* the v2 handshake and link frames: exact sizes */
	ok(H(PCB_MSG_CHALLENGE, sizeof(struct pcb_challenge_wire), 0));
	rejected(H(PCB_MSG_CHALLENGE, sizeof(struct pcb_challenge_wire) - 1, 0), "CHALLENGE");
	ok(H(PCB_MSG_AUTH, PCB_MAC_BYTES, 0));
	rejected(H(PCB_MSG_AUTH, PCB_MAC_BYTES + 1, 0), "AUTH");
	ok(H(PCB_MSG_LINK, sizeof(struct pcb_link_wire), 0));
	rejected(H(PCB_MSG_LINK, 0, 0), "LINK");
	/* PING asks for up to PCB_MAX_PONG bytes; PONG carries exactly what arg says */
	ok(H(PCB_MSG_PING, 0, 0));
	ok(H(PCB_MSG_PING, 0, PCB_MAX_PONG));
	rejected(H(PCB_MSG_PING, 0, PCB_MAX_PONG + 1), "PING");
	rejected(H(PCB_MSG_PING, 8, 8), "PING");
	ok(H(PCB_MSG_PONG, 0, 0));
	ok(H(PCB_MSG_PONG, PCB_MAX_PONG, PCB_MAX_PONG));
	rejected(H(PCB_MSG_PONG, 16, 15), "PONG");
	rejected(H(PCB_MSG_PONG, PCB_MAX_PONG + 8, PCB_MAX_PONG + 8), "PONG");
}

/* PUSH, PUSH_END, SENT; every type named and bounded by the receive buffer */
static void validate_push_types_and_all(void)
{
	/* pushing (source/push.c): PUSH carries the policy, PUSH_END the source's figures, SENT answers a
	 * request for a page already in the stream (urgent on a shared connection) */
	ok(H(PCB_MSG_PUSH, sizeof(struct pcb_push_wire), 0));
	rejected(H(PCB_MSG_PUSH, sizeof(struct pcb_push_wire) - 1, 0), "PUSH");
	ok(H(PCB_MSG_PUSH_END, sizeof(struct pcb_push_end_wire), 0));
	rejected(H(PCB_MSG_PUSH_END, 0, 0), "PUSH_END");
	ok(H(PCB_MSG_SENT, 0, NPAGES - 1));
	rejected(H(PCB_MSG_SENT, 0, NPAGES), "SENT");
	rejected(H(PCB_MSG_SENT, 8, 0), "SENT");
	struct pcb_hdr hs = H(PCB_MSG_SENT, 0, 3);
	hs.flags = PCB_FRAME_URGENT;
	ok(hs);
	/* every type has a name */
	for (uint16_t t = 1; t < PCB_MSG_MAX; t++)
		assert_string_not_equal(pcb_msg_name(t), "?");
	/* no type may announce more than the receive buffer holds */
	for (uint16_t t = 1; t < PCB_MSG_MAX; t++) {
		char why[256];
		struct pcb_hdr h = H(t, PCB_MAX_PAYLOAD + 1, 0);
		assert_int_equal(pcb_proto_validate(&h, UINT64_MAX, why, sizeof(why)), -1);
	}
	/* a reason always fits a small buffer */
	char small[8];
	struct pcb_hdr h = H(PCB_MSG_PAGE, 1, 0);
	assert_int_equal(pcb_proto_validate(&h, NPAGES, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_validate_each_type(void **state)
{
	(void)state;
	validate_setup_and_page_types();
	validate_control_and_digest_types();
	validate_run_and_link_types();
	validate_push_types_and_all();
}

static long ranges(uint64_t npages, char *why, const uint64_t *fc, unsigned n)
{
	struct pcb_range_wire w[PCB_MAX_RANGES + 1];
	for (unsigned i = 0; i < n; i++)
		w[i] = (struct pcb_range_wire){ htole64(fc[2 * i]), htole64(fc[2 * i + 1]) };
	return pcb_proto_check_ranges(w, (uint32_t)(n * sizeof(w[0])), npages, why, 256);
}

static void test_check_ranges(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 0, 1 }, 1), 1);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 0, NPAGES }, 1), NPAGES);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 10, 5, 100, 20, NPAGES - 1, 1 }, 3), 26);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 5, 0 }, 1), -1);
	tl_assert_contains(why, "empty");
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 10, 5, 20, 0 }, 2), -1);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ NPAGES, 1 }, 1), -1);
	tl_assert_contains(why, "outside");
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ NPAGES - 1, 2 }, 1), -1);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 1, UINT64_MAX }, 1), -1);           /* first+count wraps */
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ UINT64_MAX, 1 }, 1), -1);
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 0, 1, UINT64_MAX - 1, 2 }, 2), -1);
	/* batch size limit: exactly PCB_MAX_BATCH_PAGES is fine, one more is not */
	const uint64_t big = 1u << 20;
	assert_int_equal(ranges(big, why, (uint64_t[]){ 0, PCB_MAX_BATCH_PAGES }, 1), PCB_MAX_BATCH_PAGES);
	assert_int_equal(ranges(big, why, (uint64_t[]){ 0, PCB_MAX_BATCH_PAGES + 1 }, 1), -1);
	tl_assert_contains(why, "batch");
	assert_int_equal(ranges(big, why, (uint64_t[]){ 0, 4000, 5000, 97 }, 2), -1);
	/* many ranges whose counts would overflow a 64-bit sum if unchecked */
	assert_int_equal(ranges(UINT64_MAX, why, (uint64_t[]){ 0, UINT64_MAX / 2, 1, UINT64_MAX / 2 }, 2), -1);
	/* overlapping ranges are legal here (the pager never sends them; the source serves them) */
	assert_int_equal(ranges(NPAGES, why, (uint64_t[]){ 0, 10, 5, 10 }, 2), 20);
}

/* ---- pcb_conn: parsing from the buffer ---- */

static size_t frame(uint8_t *out, uint16_t type, uint64_t arg, const void *pl, uint32_t len)
{
	struct pcb_hdr h = H(type, len, arg);
	pcb_hdr_encode(&h, out);
	if (len)
		memcpy(out + PCB_HDR_SIZE, pl, len);
	return PCB_HDR_SIZE + len;
}

static void put(struct pcb_conn *c, const void *p, size_t n)
{
	memcpy(c->rbuf + c->rlen, p, n);
	c->rlen += n;
}

static void test_conn_parse_partial(void **state)
{
	(void)state;
	struct pcb_conn c;
	assert_int_equal(pcb_conn_init(&c, -1, 0, NPAGES), 0);
	static uint8_t page[PCB_PAGE_SIZE], buf[2 * (PCB_HDR_SIZE + PCB_PAGE_SIZE)];
	for (unsigned i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i * 7);
	size_t n = frame(buf, PCB_MSG_PAGE, 42, page, PCB_PAGE_SIZE);
	n += frame(buf + n, PCB_MSG_BATCH_END, 3, NULL, 0);
	struct pcb_hdr h;
	const uint8_t *pl = NULL;
	/* feed one byte at a time: MORE until the first frame is whole */
	size_t first = PCB_HDR_SIZE + PCB_PAGE_SIZE;
	for (size_t i = 0; i < first; i++) {
		assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_MORE);
		put(&c, buf + i, 1);
	}
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(h.type, PCB_MSG_PAGE);
	tl_assert_u64_eq(h.arg, 42);
	assert_memory_equal(pl, page, PCB_PAGE_SIZE);
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_MORE);
	put(&c, buf + first, n - first);
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(h.type, PCB_MSG_BATCH_END);
	tl_assert_u64_eq(h.arg, 3);
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_MORE);
	tl_assert_u64_eq(c.frames_rx, 2);
	tl_assert_u64_eq(c.bad_frames, 0);
	pcb_conn_free(&c);
}

static void bad_frame(uint16_t type, uint32_t len, uint64_t arg, const char *needle)
{
	struct pcb_conn c;
	assert_int_equal(pcb_conn_init(&c, -1, 0, NPAGES), 0);
	uint8_t hb[PCB_HDR_SIZE];
	struct pcb_hdr h = H(type, len, arg);
	pcb_hdr_encode(&h, hb);
	put(&c, hb, PCB_HDR_SIZE - 1);
	const uint8_t *pl;
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_MORE);   /* not judged before the header is whole */
	put(&c, hb + PCB_HDR_SIZE - 1, 1);
	/* judged on the header alone: an oversized length is refused at once, not waited for */
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_BAD);
	tl_assert_u64_eq(c.bad_frames, 1);
	tl_assert_u64_eq(c.frames_rx, 0);
	tl_assert_contains(c.err, needle);
	pcb_conn_free(&c);
}

static void test_conn_parse_bad(void **state)
{
	(void)state;
	bad_frame(PCB_MSG_PAGE, 0xffffffffu, 0, "length");
	bad_frame(PCB_MSG_ERROR, PCB_MAX_PAYLOAD, 0, "length");
	bad_frame(PCB_MSG_DIGESTS, PCB_MAX_PAYLOAD + 8, 0, "DIGESTS");
	bad_frame(PCB_MSG_PAGE, PCB_PAGE_SIZE, NPAGES, "outside");
	bad_frame(PCB_MSG_REQ, 0, NPAGES + 100, "outside");
	bad_frame(0, 0, 0, "type");
	bad_frame(99, 0, 0, "type");
	struct pcb_conn c;
	assert_int_equal(pcb_conn_init(&c, -1, 0, NPAGES), 0);
	uint8_t junk[PCB_HDR_SIZE];
	memset(junk, 'x', sizeof(junk));
	put(&c, junk, sizeof(junk));
	struct pcb_hdr h;
	const uint8_t *pl;
	assert_int_equal(pcb_conn_parse(&c, &h, &pl), PCB_RX_BAD);
	tl_assert_contains(c.err, "magic");
	pcb_conn_free(&c);
}

/* ---- pcb_conn over a socket pair ---- */

struct writer {
	int fd;
	unsigned nframes;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct pcb_conn c;
	pcb_conn_init(&c, w->fd, 0, NPAGES);
	uint64_t page[PCB_PAGE_WORDS];
	for (unsigned i = 0; i < w->nframes; i++) {
		for (unsigned k = 0; k < PCB_PAGE_WORDS; k++)
			page[k] = ((uint64_t)i << 32) | k;
		if (i % 3 == 2) {
			if (pcb_conn_send(&c, PCB_MSG_ZERO, i % NPAGES, NULL, 0) < 0)
				break;
		} else if (pcb_conn_send(&c, PCB_MSG_PAGE, i % NPAGES, page, PCB_PAGE_SIZE) < 0) {
			break;
		}
	}
	c.fd = -1;            /* the test closes it */
	pcb_conn_free(&c);
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void test_conn_stream(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* several times the receive buffer: exercises moving the unparsed tail down */
	struct writer w = { sv[0], 1500 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	struct pcb_conn c;
	assert_int_equal(pcb_conn_init(&c, sv[1], 0, NPAGES), 0);
	struct pcb_hdr h;
	const uint8_t *pl;
	unsigned got = 0;
	uint64_t want_bytes = 0;
	for (;;) {
		int r = pcb_conn_recv(&c, &h, &pl);
		if (r == PCB_RX_EOF)
			break;
		if (r != PCB_RX_FRAME)
			fail_msg("frame %u: pcb_conn_recv returned %d (%s)", got, r, c.err);
		tl_assert_u64_eq(h.arg, got % NPAGES);
		if (got % 3 == 2) {
			assert_int_equal(h.type, PCB_MSG_ZERO);
			want_bytes += PCB_HDR_SIZE;
		} else {
			assert_int_equal(h.type, PCB_MSG_PAGE);
			uint64_t w0, wl;
			memcpy(&w0, pl, 8);
			memcpy(&wl, pl + PCB_PAGE_SIZE - 8, 8);
			tl_assert_u64_eq(w0, (uint64_t)got << 32);
			tl_assert_u64_eq(wl, ((uint64_t)got << 32) | (PCB_PAGE_WORDS - 1));
			want_bytes += PCB_HDR_SIZE + PCB_PAGE_SIZE;
		}
		got++;
	}
	pthread_join(th, NULL);
	assert_int_equal(got, w.nframes);
	tl_assert_u64_eq(c.frames_rx, w.nframes);
	tl_assert_u64_eq(c.bytes_rx, want_bytes);
	pcb_conn_free(&c);
	close(sv[0]);
}

static void test_conn_eof(void **state)
{
	(void)state;
	int sv[2];
	struct pcb_conn c;
	struct pcb_hdr h;
	const uint8_t *pl;
	uint8_t buf[PCB_HDR_SIZE + PCB_PAGE_SIZE] = { 0 };

	/* clean EOF between frames */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&c, sv[1], 0, NPAGES), 0);
	size_t n = frame(buf, PCB_MSG_BYE, 0, NULL, 0);
	assert_int_equal(write(sv[0], buf, n), (ssize_t)n);
	close(sv[0]);
	assert_int_equal(pcb_conn_recv(&c, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(pcb_conn_recv(&c, &h, &pl), PCB_RX_EOF);
	pcb_conn_free(&c);

	/* EOF inside a frame's payload: a bad frame, not a clean close */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&c, sv[1], 0, NPAGES), 0);
	n = frame(buf, PCB_MSG_PAGE, 1, buf + PCB_HDR_SIZE, PCB_PAGE_SIZE);
	assert_int_equal(write(sv[0], buf, n - 100), (ssize_t)(n - 100));
	close(sv[0]);
	assert_int_equal(pcb_conn_recv(&c, &h, &pl), PCB_RX_BAD);
	tl_assert_contains(c.err, "inside a frame");
	pcb_conn_free(&c);

	/* EOF inside a header */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&c, sv[1], 0, NPAGES), 0);
	assert_int_equal(write(sv[0], buf, 10), 10);
	close(sv[0]);
	assert_int_equal(pcb_conn_recv(&c, &h, &pl), PCB_RX_BAD);
	pcb_conn_free(&c);

	/* send counts what it wrote */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&c, sv[0], 0, NPAGES), 0);
	struct pcb_hello hello = { .channel = 1 };
	assert_int_equal(pcb_conn_send(&c, PCB_MSG_HELLO, 0, &hello, sizeof(hello)), 0);
	tl_assert_u64_eq(c.bytes_tx, PCB_HDR_SIZE + sizeof(hello));
	tl_assert_u64_eq(c.frames_tx, 1);
	struct pcb_conn d;
	assert_int_equal(pcb_conn_init(&d, sv[1], 0, NPAGES), 0);
	assert_int_equal(pcb_conn_recv(&d, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(h.type, PCB_MSG_HELLO);
	assert_int_equal(h.len, sizeof(hello));
	assert_memory_equal(pl, &hello, sizeof(hello));
	pcb_conn_free(&c);
	pcb_conn_free(&d);
}

/* Stream authentication: a tagged frame passes; one flipped bit anywhere
 * (header, payload, tag), a replayed or reordered frame, a frame without its
 * tag and a tagged frame on an unkeyed connection are each refused, with
 * forged set (the pager asks again instead of giving up). */
static void mac_pair(int sv[2], struct pcb_conn *tx, struct pcb_conn *rx)
{
	uint8_t k1[PCB_STREAM_KEY_BYTES], k2[PCB_STREAM_KEY_BYTES];
	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x22, sizeof(k2));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int big = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	assert_int_equal(pcb_conn_init(tx, sv[0], 0, NPAGES), 0);
	assert_int_equal(pcb_conn_init(rx, sv[1], 0, NPAGES), 0);
	assert_int_equal(pcb_conn_mac_on(tx, k1, k2), 0);
	assert_int_equal(pcb_conn_mac_on(rx, k2, k1), 0);
}

/* Send one PAGE frame through tx, read its raw bytes back off the socket. */
static size_t mac_frame(struct pcb_conn *tx, int rd, uint64_t pg, uint8_t *raw)
{
	uint8_t page[PCB_PAGE_SIZE];
	memset(page, (int)pg, sizeof(page));
	assert_int_equal(pcb_conn_send(tx, PCB_MSG_PAGE, pg, page, PCB_PAGE_SIZE), 0);
	size_t want = PCB_HDR_SIZE + PCB_PAGE_SIZE + PCB_TAG_BYTES, got = 0;
	while (got < want) {
		ssize_t r = read(rd, raw + got, want - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	return got;
}

/* Several payload-less frames in one write (the demand thread's requests of
 * one userfaultfd read): each arrives whole and in order, tagged with the
 * next sequence numbers on a keyed connection (a frame after them still
 * authenticates), and more than PCB_SEND_ARGS_MAX is refused. */
static void test_conn_send_args(void **state)
{
	(void)state;
	uint64_t args[PCB_SEND_ARGS_MAX + 3];
	for (unsigned i = 0; i < PCB_SEND_ARGS_MAX + 3; i++)
		args[i] = 1 + 3 * i;   /* inside NPAGES */
	for (int keyed = 0; keyed < 2; keyed++) {
		struct pcb_conn tx, rx;
		struct pcb_hdr h;
		const uint8_t *pl;
		int sv[2];
		if (keyed) {
			mac_pair(sv, &tx, &rx);
		} else {
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
			assert_int_equal(pcb_conn_init(&tx, sv[0], 0, NPAGES), 0);
			assert_int_equal(pcb_conn_init(&rx, sv[1], 0, NPAGES), 0);
		}
		assert_int_equal(pcb_conn_send_args(&tx, PCB_MSG_REQ, args, 0), 0);
		assert_int_equal(pcb_conn_send_args(&tx, PCB_MSG_REQ, args, 3), 0);
		assert_int_equal(pcb_conn_send_args(&tx, PCB_MSG_REQ, args + 3, PCB_SEND_ARGS_MAX), 0);
		assert_int_equal(pcb_conn_send(&tx, PCB_MSG_PING, 5, NULL, 0), 0);
		errno = 0;
		assert_int_equal(pcb_conn_send_args(&tx, PCB_MSG_REQ, args, PCB_SEND_ARGS_MAX + 1), -1);
		assert_int_equal(errno, EINVAL);
		tl_assert_u64_eq(tx.frames_tx, 3 + PCB_SEND_ARGS_MAX + 1);
		tl_assert_u64_eq(tx.bytes_tx, (3 + PCB_SEND_ARGS_MAX + 1) * (PCB_HDR_SIZE + (keyed ? PCB_TAG_BYTES : 0)));
		for (unsigned i = 0; i < 3 + PCB_SEND_ARGS_MAX; i++) {
			assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_FRAME);
			assert_int_equal(h.type, PCB_MSG_REQ);
			assert_int_equal(h.len, 0);
			tl_assert_u64_eq(h.arg, args[i]);
			assert_int_equal(!!(h.flags & PCB_FRAME_MAC), keyed);
		}
		assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_FRAME);
		assert_int_equal(h.type, PCB_MSG_PING);
		tl_assert_u64_eq(h.arg, 5);
		pcb_conn_free(&tx);
		pcb_conn_free(&rx);
	}
}

static void test_conn_mac(void **state)
{
	(void)state;
	static const size_t flips[] = { 7, 16, PCB_HDR_SIZE + 100, PCB_HDR_SIZE + PCB_PAGE_SIZE + 3 };
	uint8_t raw[3][PCB_HDR_SIZE + PCB_PAGE_SIZE + PCB_TAG_BYTES];
	struct pcb_conn tx, rx, gen;
	struct pcb_hdr h;
	const uint8_t *pl;
	int sv[2], pv[2];
	/* frames as the sender makes them, captured raw (gen's tx keys = tx's) */
	mac_pair(pv, &gen, &rx);
	size_t n = 0;
	for (int i = 0; i < 3; i++)
		n = mac_frame(&gen, pv[1], (uint64_t)i + 1, raw[i]);
	pcb_conn_free(&gen);
	pcb_conn_free(&rx);

	/* in order: accepted */
	mac_pair(sv, &tx, &rx);
	for (int i = 0; i < 3; i++)
		assert_int_equal(write(sv[0], raw[i], n), (ssize_t)n);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_FRAME);
		tl_assert_u64_eq(h.arg, (uint64_t)i + 1);
		assert_int_equal(pl[0], i + 1);
	}
	pcb_conn_free(&tx);
	pcb_conn_free(&rx);

	/* one bit flipped (header flags/arg, payload, tag): refused */
	for (unsigned f = 0; f < sizeof(flips) / sizeof(flips[0]); f++) {
		mac_pair(sv, &tx, &rx);
		uint8_t bad[sizeof(raw[0])];
		memcpy(bad, raw[0], n);
		bad[flips[f]] ^= f == 0 ? 0x01 : 0x10;
		assert_int_equal(write(sv[0], bad, n), (ssize_t)n);
		int r = pcb_conn_recv(&rx, &h, &pl);
		if (flips[f] == 16) {   /* arg (page 1 -> 17): still a valid header, the tag catches it */
			assert_int_equal(r, PCB_RX_BAD);
			tl_assert_contains(rx.err, "failed authentication");
		} else {
			assert_int_equal(r, PCB_RX_BAD);
		}
		assert_true(rx.forged || flips[f] == 7);   /* byte 7: the type: the validator's refusal */
		pcb_conn_free(&tx);
		pcb_conn_free(&rx);
	}

	/* replayed (frame 0 twice) and reordered (frame 1 before 0): refused */
	mac_pair(sv, &tx, &rx);
	assert_int_equal(write(sv[0], raw[0], n), (ssize_t)n);
	assert_int_equal(write(sv[0], raw[0], n), (ssize_t)n);
	assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_FRAME);
	assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_BAD);
	assert_true(rx.forged);
	pcb_conn_free(&tx);
	pcb_conn_free(&rx);
	mac_pair(sv, &tx, &rx);
	assert_int_equal(write(sv[0], raw[1], n), (ssize_t)n);
	assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_BAD);
	assert_true(rx.forged);
	tl_assert_u64_eq(rx.forged_frames, 1);
	pcb_conn_free(&tx);
	pcb_conn_free(&rx);

	/* untagged frame on a keyed connection; tagged frame on an unkeyed one */
	mac_pair(sv, &tx, &rx);
	uint8_t plain[PCB_HDR_SIZE + PCB_PAGE_SIZE] = { 0 };
	size_t pn = frame(plain, PCB_MSG_PAGE, 1, plain + PCB_HDR_SIZE, PCB_PAGE_SIZE);
	assert_int_equal(write(sv[0], plain, pn), (ssize_t)pn);
	assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_BAD);
	tl_assert_contains(rx.err, "without an authentication tag");
	assert_true(rx.forged);
	pcb_conn_free(&tx);
	pcb_conn_free(&rx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pcb_conn_init(&rx, sv[1], 0, NPAGES), 0);
	assert_int_equal(write(sv[0], raw[0], n), (ssize_t)n);
	assert_int_equal(pcb_conn_recv(&rx, &h, &pl), PCB_RX_BAD);
	tl_assert_contains(rx.err, "connection without a key");
	close(sv[0]);
	pcb_conn_free(&rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_roundtrip),
		cmocka_unit_test(test_validate_common),
		cmocka_unit_test(test_validate_each_type),
		cmocka_unit_test(test_check_ranges),
		cmocka_unit_test(test_conn_parse_partial),
		cmocka_unit_test(test_conn_parse_bad),
		cmocka_unit_test(test_conn_stream),
		cmocka_unit_test(test_conn_eof),
		cmocka_unit_test(test_conn_mac),
		cmocka_unit_test(test_conn_send_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
