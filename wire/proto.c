#include "wire/proto.h"
#include "common/image.h"
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static const char *const msg_names[PCB_MSG_MAX] = {
	[PCB_MSG_HELLO] = "HELLO", [PCB_MSG_CONFIG] = "CONFIG", [PCB_MSG_REQ] = "REQ",
	[PCB_MSG_RANGES] = "RANGES", [PCB_MSG_PAGE] = "PAGE", [PCB_MSG_ZERO] = "ZERO",
	[PCB_MSG_BATCH_END] = "BATCH_END", [PCB_MSG_DIGEST_REQ] = "DIGEST_REQ",
	[PCB_MSG_DIGESTS] = "DIGESTS", [PCB_MSG_BYE] = "BYE", [PCB_MSG_ERROR] = "ERROR",
	[PCB_MSG_RUN] = "RUN",
	[PCB_MSG_CHALLENGE] = "CHALLENGE", [PCB_MSG_AUTH] = "AUTH", [PCB_MSG_LINK] = "LINK",
	[PCB_MSG_PING] = "PING", [PCB_MSG_PONG] = "PONG", [PCB_MSG_PUSH] = "PUSH", [PCB_MSG_PUSH_END] = "PUSH_END",
	[PCB_MSG_SENT] = "SENT",
};

const char *pcb_msg_name(unsigned type)
{
	if (type < PCB_MSG_MAX && msg_names[type])
		return msg_names[type];
	return "?";
}

void pcb_hdr_encode(const struct pcb_hdr *h, uint8_t out[PCB_HDR_SIZE])
{
	uint32_t m = htole32(h->magic), l = htole32(h->len), f = htole32(h->flags);
	uint16_t v = htole16(h->version), t = htole16(h->type);
	uint64_t a = htole64(h->arg);
	memcpy(out, &m, 4);
	memcpy(out + 4, &v, 2);
	memcpy(out + 6, &t, 2);
	memcpy(out + 8, &l, 4);
	memcpy(out + 12, &f, 4);
	memcpy(out + 16, &a, 8);
}

void pcb_hdr_decode(const uint8_t in[PCB_HDR_SIZE], struct pcb_hdr *h)
{
	uint32_t m, l, f;
	uint16_t v, t;
	uint64_t a;
	memcpy(&m, in, 4);
	memcpy(&v, in + 4, 2);
	memcpy(&t, in + 6, 2);
	memcpy(&l, in + 8, 4);
	memcpy(&f, in + 12, 4);
	memcpy(&a, in + 16, 8);
	h->magic = le32toh(m);
	h->version = le16toh(v);
	h->type = le16toh(t);
	h->len = le32toh(l);
	h->flags = le32toh(f);
	h->arg = le64toh(a);
}

#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

/* Frames of one fixed payload length (LEN_VAR: checked below, by type). */
#define LEN_VAR UINT32_MAX
static const uint32_t fixed_len[PCB_MSG_MAX] = {
	[PCB_MSG_HELLO] = sizeof(struct pcb_hello), [PCB_MSG_CONFIG] = sizeof(struct pcb_config_wire),
	[PCB_MSG_REQ] = 0, [PCB_MSG_RANGES] = LEN_VAR, [PCB_MSG_PAGE] = PCB_PAGE_SIZE, [PCB_MSG_ZERO] = 0,
	[PCB_MSG_BATCH_END] = 0, [PCB_MSG_DIGEST_REQ] = 8, [PCB_MSG_DIGESTS] = LEN_VAR, [PCB_MSG_BYE] = 0,
	[PCB_MSG_ERROR] = LEN_VAR, [PCB_MSG_RUN] = LEN_VAR, [PCB_MSG_CHALLENGE] = sizeof(struct pcb_challenge_wire),
	[PCB_MSG_AUTH] = PCB_MAC_BYTES, [PCB_MSG_LINK] = sizeof(struct pcb_link_wire), [PCB_MSG_PING] = 0,
	[PCB_MSG_PONG] = LEN_VAR, [PCB_MSG_PUSH] = sizeof(struct pcb_push_wire), [PCB_MSG_SENT] = 0,
	[PCB_MSG_PUSH_END] = sizeof(struct pcb_push_end_wire),
};

int pcb_proto_validate(const struct pcb_hdr *h, uint64_t npages, char *why, size_t whylen)
{
	if (h->magic != PCB_PROTO_MAGIC)
		BAD("bad magic 0x%08x", h->magic);
	if (h->version != PCB_PROTO_VERSION)
		BAD("unsupported protocol version %u (this build speaks %u)", h->version, PCB_PROTO_VERSION);
	if (h->type == 0 || h->type >= PCB_MSG_MAX)
		BAD("unknown frame type %u", h->type);
	const char *n = pcb_msg_name(h->type);
	if (fixed_len[h->type] != LEN_VAR && h->len != fixed_len[h->type])
		BAD("%s frame with length %u (want %u)", n, h->len, fixed_len[h->type]);
	switch (h->type) {
	case PCB_MSG_REQ:
	case PCB_MSG_ZERO:
	case PCB_MSG_PAGE:
	case PCB_MSG_SENT:
		if (h->arg >= npages)
			BAD("%s for page %llu outside the image (%llu pages)", n,
			    (unsigned long long)h->arg, (unsigned long long)npages);
		break;
	case PCB_MSG_RUN:
		if (h->len == 0 || h->len % PCB_PAGE_SIZE || h->len / PCB_PAGE_SIZE > PCB_MAX_RUN_PAGES)
			BAD("%s frame with length %u (want 1..%d pages of %u bytes)", n, h->len, PCB_MAX_RUN_PAGES, PCB_PAGE_SIZE);
		if (h->arg >= npages || h->len / PCB_PAGE_SIZE > npages - h->arg)
			BAD("%s for pages %llu+%u outside the image (%llu pages)", n, (unsigned long long)h->arg,
			    h->len / PCB_PAGE_SIZE, (unsigned long long)npages);
		break;
	case PCB_MSG_RANGES:
		if (h->len == 0 || h->len % sizeof(struct pcb_range_wire) ||
		    h->len / sizeof(struct pcb_range_wire) > PCB_MAX_RANGES)
			BAD("%s frame with length %u (want 1..%d ranges of %zu bytes)", n, h->len,
			    PCB_MAX_RANGES, sizeof(struct pcb_range_wire));
		break;
	case PCB_MSG_DIGEST_REQ:
		if (h->arg >= npages)
			BAD("%s from page %llu outside the image", n, (unsigned long long)h->arg);
		break;
	case PCB_MSG_DIGESTS:
		if (h->len == 0 || h->len % 8 || h->len / 8 > PCB_MAX_DIGESTS)
			BAD("%s frame with length %u", n, h->len);
		if (h->arg >= npages || h->len / 8 > npages - h->arg)
			BAD("%s for pages %llu+%u outside the image", n, (unsigned long long)h->arg, h->len / 8);
		break;
	case PCB_MSG_ERROR:
		if (h->len > PCB_MAX_ERRTEXT)
			BAD("%s frame with length %u (max %d)", n, h->len, PCB_MAX_ERRTEXT);
		break;
	case PCB_MSG_PING:
		if (h->arg > PCB_MAX_PONG)
			BAD("%s asks for a %llu-byte reply (max %u)", n, (unsigned long long)h->arg, PCB_MAX_PONG);
		break;
	case PCB_MSG_PONG:
		if (h->len > PCB_MAX_PONG || h->arg != h->len)
			BAD("%s frame with length %u (arg %llu, max %u)", n, h->len, (unsigned long long)h->arg, PCB_MAX_PONG);
		break;
	}
	if (h->flags & ~(PCB_FRAME_URGENT | PCB_FRAME_MAC))
		BAD("%s frame with flags 0x%x (only 0x%x is defined)", n, h->flags, PCB_FRAME_URGENT | PCB_FRAME_MAC);
	if ((h->flags & PCB_FRAME_URGENT) && h->type != PCB_MSG_PAGE && h->type != PCB_MSG_ZERO && h->type != PCB_MSG_SENT)
		BAD("%s frame with flags 0x%x (only PAGE, ZERO and SENT may be urgent)", n, h->flags);
	return 0;
}

long pcb_proto_check_ranges(const void *payload, uint32_t len, uint64_t npages, char *why, size_t whylen)
{
	const uint8_t *p = payload;
	uint64_t total = 0;
	for (uint32_t off = 0; off + sizeof(struct pcb_range_wire) <= len; off += sizeof(struct pcb_range_wire)) {
		uint64_t first, count;
		memcpy(&first, p + off, 8);
		memcpy(&count, p + off + 8, 8);
		first = le64toh(first);
		count = le64toh(count);
		if (count == 0)
			BAD("empty range at page %llu", (unsigned long long)first);
		if (first >= npages || count > npages - first)
			BAD("range %llu+%llu outside the image (%llu pages)", (unsigned long long)first,
			    (unsigned long long)count, (unsigned long long)npages);
		total += count;
		if (total > PCB_MAX_BATCH_PAGES)
			BAD("batch of more than %d pages", PCB_MAX_BATCH_PAGES);
	}
	return (long)total;
}

int pcb_conn_init(struct pcb_conn *c, int fd, size_t rcap, uint64_t npages)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	if (rcap < 2 * (PCB_HDR_SIZE + PCB_MAX_PAYLOAD))
		rcap = 2 * (PCB_HDR_SIZE + PCB_MAX_PAYLOAD);
	/* the payload of a frame read into an empty buffer starts page-aligned:
	 * UFFDIO_COPY then reads one source page, not two (demand replies) */
	void *m = NULL;
	if (posix_memalign(&m, PCB_PAGE_SIZE, rcap + PCB_PAGE_SIZE) != 0)
		return -1;
	c->rmem = m;
	c->rbuf = c->rmem + PCB_PAGE_SIZE - PCB_HDR_SIZE;
	c->rcap = rcap;
	c->npages = npages;
	return 0;
}

/* ---- stream authentication (PCB_FRAME_MAC) ------------------------------------
 * AES-256-GCM used as a MAC (GMAC): header and payload are additional data,
 * nothing is encrypted (pages stay readable on the wire, as without a key; the
 * threat is alteration, not disclosure: docs/security.md).  The nonce is the
 * frame's 64-bit sequence number in its direction, so a dropped, replayed,
 * reordered or duplicated frame fails as surely as an altered one; each
 * direction of each connection has its own key (wire/handshake.c), so a
 * nonce is never used twice under one key. */

static void *gcm_new(const uint8_t key[PCB_STREAM_KEY_BYTES])
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	if (x && EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, NULL) == 1)
		return x;
	EVP_CIPHER_CTX_free(x);
	return NULL;
}

int pcb_conn_mac_on(struct pcb_conn *c, const uint8_t ktx[PCB_STREAM_KEY_BYTES], const uint8_t krx[PCB_STREAM_KEY_BYTES])
{
	pcb_conn_free_mac(c);   /* a reconnection: the old connection's keys are done */
	c->mac_tx = gcm_new(ktx);
	c->mac_rx = gcm_new(krx);
	c->seq_tx = c->seq_rx = 0;
	if (c->mac_tx && c->mac_rx)
		return 0;
	EVP_CIPHER_CTX_free(c->mac_tx);
	EVP_CIPHER_CTX_free(c->mac_rx);
	c->mac_tx = c->mac_rx = NULL;
	return -1;
}

static int gmac_begin(void *ctx, uint64_t seq, const uint8_t hdr[PCB_HDR_SIZE])
{
	uint8_t iv[12] = { 0 };
	uint64_t s = htole64(seq);
	int l;
	memcpy(iv, &s, 8);
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 || EVP_EncryptUpdate(ctx, NULL, &l, hdr, PCB_HDR_SIZE) != 1)
		return -1;
	return 0;
}

static int gmac_update(void *ctx, const void *p, size_t n)
{
	int l;
	return n && EVP_EncryptUpdate(ctx, NULL, &l, p, (int)n) != 1 ? -1 : 0;
}

static int gmac_final(void *ctx, uint8_t tag[PCB_TAG_BYTES])
{
	uint8_t none[16];
	int l;
	if (EVP_EncryptFinal_ex(ctx, none, &l) != 1 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PCB_TAG_BYTES, tag) != 1)
		return -1;
	return 0;
}

void pcb_conn_tag(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const struct iovec *iov, int niov,
		  uint8_t tag[PCB_TAG_BYTES])
{
	int bad = gmac_begin(c->mac_tx, c->seq_tx++, hdr);
	for (int i = 0; i < niov && !bad; i++)
		bad = gmac_update(c->mac_tx, iov[i].iov_base, iov[i].iov_len);
	if (bad || gmac_final(c->mac_tx, tag) < 0)
		memset(tag, 0, PCB_TAG_BYTES);   /* the peer refuses it: fails closed */
}

void pcb_conn_rx_begin(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE])
{
	c->rx_mac_err = gmac_begin(c->mac_rx, c->seq_rx++, hdr) < 0;
}

void pcb_conn_rx_update(struct pcb_conn *c, const void *p, size_t n)
{
	if (!c->rx_mac_err && gmac_update(c->mac_rx, p, n) < 0)
		c->rx_mac_err = true;
}

int pcb_conn_rx_end(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const uint8_t tag[PCB_TAG_BYTES])
{
	uint8_t want[PCB_TAG_BYTES];
	if (!c->rx_mac_err && gmac_final(c->mac_rx, want) == 0 && CRYPTO_memcmp(want, tag, PCB_TAG_BYTES) == 0)
		return 0;
	struct pcb_hdr h;
	pcb_hdr_decode(hdr, &h);
	snprintf(c->err, sizeof(c->err), "%s frame %llu (arg %llu) failed authentication (altered, lost or replayed on the way)",
		 pcb_msg_name(h.type), (unsigned long long)(c->seq_rx - 1), (unsigned long long)h.arg);
	c->forged = true;
	c->forged_frames++;
	c->bad_frames++;
	return -1;
}

int pcb_conn_check(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const struct iovec *iov, int niov,
		   const uint8_t tag[PCB_TAG_BYTES])
{
	pcb_conn_rx_begin(c, hdr);
	for (int i = 0; i < niov; i++)
		pcb_conn_rx_update(c, iov[i].iov_base, iov[i].iov_len);
	return pcb_conn_rx_end(c, hdr, tag);
}

int pcb_conn_check_flags(struct pcb_conn *c, const struct pcb_hdr *h)
{
	bool want = c->mac_rx != NULL, has = h->flags & PCB_FRAME_MAC;
	if (want == has)
		return 0;
	snprintf(c->err, sizeof(c->err), want ? "%s frame without an authentication tag on an authenticated connection"
					      : "%s frame with an authentication tag on a connection without a key",
		 pcb_msg_name(h->type));
	c->forged = want;
	c->forged_frames += want;
	c->bad_frames++;
	return -1;
}

void pcb_conn_free_mac(struct pcb_conn *c)
{
	EVP_CIPHER_CTX_free(c->mac_tx);
	EVP_CIPHER_CTX_free(c->mac_rx);
	c->mac_tx = c->mac_rx = NULL;
}

void pcb_conn_free(struct pcb_conn *c)
{
	pcb_conn_free_mac(c);
	free(c->rmem);
	c->rmem = c->rbuf = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int pcb_conn_parse(struct pcb_conn *c, struct pcb_hdr *h, const uint8_t **payload)
{
	size_t avail = c->rlen - c->rpos;
	if (avail < PCB_HDR_SIZE)
		return PCB_RX_MORE;
	pcb_hdr_decode(c->rbuf + c->rpos, h);
	c->forged = false;
	if (pcb_proto_validate(h, c->npages, c->err, sizeof(c->err)) < 0) {
		c->bad_frames++;
		return PCB_RX_BAD;
	}
	if (pcb_conn_check_flags(c, h) < 0)
		return PCB_RX_BAD;
	size_t tl = pcb_frame_trailer(h->flags);
	if (avail < PCB_HDR_SIZE + (size_t)h->len + tl)
		return PCB_RX_MORE;
	const uint8_t *f = c->rbuf + c->rpos;
	if (tl) {
		struct iovec v = { (void *)(f + PCB_HDR_SIZE), h->len };
		if (pcb_conn_check(c, f, &v, 1, f + PCB_HDR_SIZE + h->len) < 0)
			return PCB_RX_BAD;
	}
	*payload = f + PCB_HDR_SIZE;
	c->rpos += PCB_HDR_SIZE + h->len + tl;
	c->frames_rx++;
	return PCB_RX_FRAME;
}

int pcb_conn_fill(struct pcb_conn *c)
{
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rpos > 0 && c->rcap - c->rpos < PCB_HDR_SIZE + PCB_MAX_PAYLOAD) {
		/* the frame at rpos might not fit before the end: move the unparsed tail down */
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->rlen == c->rcap) {
		errno = ENOBUFS;
		return PCB_RX_ERR;
	}
	for (;;) {
		ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r < 0 && errno == EINTR && !c->fill_intr)
			continue;
		if (r < 0)
			return PCB_RX_ERR;
		if (r == 0)
			return PCB_RX_EOF;
		c->rlen += (size_t)r;
		c->bytes_rx += (uint64_t)r;
		return (int)(r > 0x7fffffff ? 0x7fffffff : r);
	}
}

int pcb_conn_recv(struct pcb_conn *c, struct pcb_hdr *h, const uint8_t **payload)
{
	for (;;) {
		int r = pcb_conn_parse(c, h, payload);
		if (r != PCB_RX_MORE)
			return r;
		r = pcb_conn_fill(c);
		if (r == PCB_RX_EOF) {
			if (c->rlen != c->rpos) {
				snprintf(c->err, sizeof(c->err), "connection closed inside a frame");
				c->bad_frames++;
				return PCB_RX_BAD;
			}
			return PCB_RX_EOF;
		}
		if (r < 0)
			return r;
	}
}

int pcb_conn_send(struct pcb_conn *c, uint16_t type, uint64_t arg, const void *payload, uint32_t len)
{
	uint8_t hb[PCB_HDR_SIZE], tag[PCB_TAG_BYTES];
	struct pcb_hdr h = { .magic = PCB_PROTO_MAGIC, .version = PCB_PROTO_VERSION,
			     .type = type, .len = len, .flags = c->mac_tx ? PCB_FRAME_MAC : 0, .arg = arg };
	pcb_hdr_encode(&h, hb);
	struct iovec iov[3] = { { hb, PCB_HDR_SIZE }, { (void *)payload, len }, { tag, PCB_TAG_BYTES } };
	unsigned n = 2;
	if (c->mac_tx) {
		pcb_conn_tag(c, hb, &iov[1], 1, tag);
		n = 3;
	}
	if (pcb_writev_full(c->fd, iov, n, &c->bytes_tx) < 0)
		return -1;
	c->frames_tx++;
	return 0;
}

int pcb_conn_send_args(struct pcb_conn *c, uint16_t type, const uint64_t *args, unsigned n)
{
	uint8_t buf[PCB_SEND_ARGS_MAX * (PCB_HDR_SIZE + PCB_TAG_BYTES)];
	size_t len = 0;
	if (n > PCB_SEND_ARGS_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct pcb_hdr h = { .magic = PCB_PROTO_MAGIC, .version = PCB_PROTO_VERSION, .type = type,
				     .flags = c->mac_tx ? PCB_FRAME_MAC : 0, .arg = args[i] };
		uint8_t *hb = buf + len;
		pcb_hdr_encode(&h, hb);
		len += PCB_HDR_SIZE;
		if (c->mac_tx) {   /* tagged in order: each frame takes the next sequence number */
			pcb_conn_tag(c, hb, NULL, 0, buf + len);
			len += PCB_TAG_BYTES;
		}
	}
	if (len && pcb_write_full(c->fd, buf, len) < 0)
		return -1;
	c->bytes_tx += len;
	c->frames_tx += n;
	return 0;
}

int pcb_sock_buf_bytes = 4 << 20;

void pcb_sock_tune(int fd)
{
	int one = 1, sz = pcb_sock_buf_bytes;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sz > 0) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
}

int pcb_listen_tcp(const char *host, uint16_t port, uint16_t *bound_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	if (bound_port)
		*bound_port = ntohs(a.sin_port);
	return fd;
}

int pcb_connect_tcp(const char *host, uint16_t port, int timeout_ms)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r = poll(&p, 1, timeout_ms);
		if (r == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (r < 0 || err) {
			errno = err ? err : errno;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	pcb_sock_tune(fd);
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}
