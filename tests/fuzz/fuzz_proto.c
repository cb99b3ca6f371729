/* libFuzzer target: everything the network hands pcbench before it is trusted.
 *
 * The first input byte picks the target, the rest is what the peer sent:
 *   0  frame parser: pcb_conn_parse over the bytes, then the payload checks of
 *      every frame type (RANGES, LINK, CONFIG, HELLO decoders)
 *   1  destination handshake (pcb_hs_client) against a hostile "source"
 *      (second byte: bit 0 = the destination has a key)
 *   2  a whole source connection (pcb_source_serve_conn: handshake, requests,
 *      link settings) against a hostile "destination" (second byte: bit 0 =
 *      the source requires a key); its replies are read and parsed too.
 * Build and run: make fuzz [FUZZ_TIME=seconds]; corpus in tests/fuzz/corpus. */
#include "wire/handshake.h"
#include "wire/link.h"
#include "wire/proto.h"
#include "source/source.h"
#include "common/image.h"
#include "common/util.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NP 64   /* a small image: replies stay small */

static struct pcb_auth_key key = { .len = 32, .key = "0123456789abcdef0123456789abcdef" };

static void parse_all(struct pcb_conn *c)
{
	struct pcb_hdr h;
	const uint8_t *pl;
	char why[160];
	int r;
	while ((r = pcb_conn_parse(c, &h, &pl)) == PCB_RX_FRAME) {
		switch (h.type) {
		case PCB_MSG_RANGES:
			pcb_proto_check_ranges(pl, h.len, c->npages, why, sizeof(why));
			break;
		case PCB_MSG_LINK: {
			struct pcb_link_wire l;
			pcb_link_decode(pl, &l, why, sizeof(why));
			break;
		}
		case PCB_MSG_CONFIG: {
			struct pcb_config_wire cw;
			pcb_config_decode(pl, &cw);
			break;
		}
		case PCB_MSG_HELLO: {
			struct pcb_hello he;
			pcb_hello_decode(pl, &he);
			break;
		}
		default:
			break;
		}
	}
}

static void fuzz_parser(const uint8_t *d, size_t n)
{
	struct pcb_conn c;
	if (pcb_conn_init(&c, -1, 0, NP) < 0)
		return;
	if (n > c.rcap)
		n = c.rcap;
	memcpy(c.rbuf, d, n);
	c.rlen = n;
	parse_all(&c);
	pcb_conn_free(&c);
}

/* Write the whole input to one end of a socketpair (then shut it), so the
 * code under test sees exactly these bytes followed by EOF. */
static int feed(int sv[2], const uint8_t *d, size_t n)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	int sz = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (pcb_write_full(sv[1], d, n) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	shutdown(sv[1], SHUT_WR);
	return 0;
}

static void fuzz_client(const uint8_t *d, size_t n, int with_key)
{
	int sv[2];
	if (feed(sv, d, n) < 0)
		return;
	struct pcb_conn c;
	struct pcb_config_wire cw;
	char why[256];
	if (pcb_conn_init(&c, sv[0], 0, NP) == 0) {
		pcb_hs_client(&c, PCB_CHAN_DEMAND, 0, with_key ? &key : NULL, 1000, &cw, why, sizeof(why));
		parse_all(&c);   /* whatever followed the handshake */
		pcb_conn_free(&c);
	} else {
		close(sv[0]);
	}
	close(sv[1]);
}

/* Reads (and parses) the source's replies so it never blocks on a full socket. */
static void *drain(void *a)
{
	int fd = *(int *)a;
	struct pcb_conn c;
	if (pcb_conn_init(&c, fd, 0, NP) < 0)
		return NULL;
	for (;;) {
		int r = pcb_conn_fill(&c);
		if (r <= 0 && r != PCB_RX_MORE)
			break;
		parse_all(&c);
		if (c.rpos == c.rlen)
			c.rpos = c.rlen = 0;
	}
	c.fd = -1;
	pcb_conn_free(&c);
	return NULL;
}

static void fuzz_source(const uint8_t *d, size_t n, int with_key)
{
	static struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 7, .zero_fraction = 0.25,
					     .handshake_timeout_ms = 1000 };
	cfg.key = with_key ? &key : NULL;
	int sv[2];
	if (feed(sv, d, n) < 0)
		return;
	struct pcb_source_state *st = pcb_source_state_new(&cfg);
	pthread_t th;
	int peer = sv[1];
	if (!st || pthread_create(&th, NULL, drain, &peer) != 0) {
		pcb_source_state_free(st);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	pcb_source_serve_conn(st, sv[0]);   /* closes sv[0] */
	pthread_join(th, NULL);
	close(sv[1]);
	pcb_source_state_free(st);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	pcb_verbose = 0;   /* the source still logs refused frames: run with -close_fd_mask=2 (make fuzz does) */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_parser(data + 1, size - 1);
		break;
	case 1:
		fuzz_client(data + 2, size - 2, data[1] & 1);
		break;
	case 2:
		fuzz_source(data + 2, size - 2, data[1] & 1);
		break;
	}
	return 0;
}
