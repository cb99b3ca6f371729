#include "wire/handshake.h"
#include "common/image.h"
#include "common/util.h"
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- key and MAC ------------------------------------------------------------ */

int pcb_auth_key_load(const char *path, struct pcb_auth_key *k, char *why, size_t whylen)
{
	memset(k, 0, sizeof(*k));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot read --auth-key-file '%s': %s", path, strerror(errno));
		return errno == EACCES ? PCB_EXIT_NOPERM : PCB_EXIT_DATAERR;
	}
	struct stat sb;
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 0077))
		pcb_warn("--auth-key-file '%s' is readable by group or others (chmod 600 it)", path);
	uint8_t buf[PCB_KEY_MAX + 2];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "cannot read --auth-key-file '%s': %s", path, strerror(errno));
			close(fd);
			return PCB_EXIT_DATAERR;
		}
		if (r == 0 || (n += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n < PCB_KEY_MIN || n > PCB_KEY_MAX) {
		snprintf(why, whylen, "invalid --auth-key-file '%s': %s%zu bytes (want %d to %d; e.g. head -c 32 /dev/urandom > key)",
			 path, n > PCB_KEY_MAX ? "more than " : "", n > PCB_KEY_MAX ? (size_t)PCB_KEY_MAX : n,
			 PCB_KEY_MIN, PCB_KEY_MAX);
		return PCB_EXIT_DATAERR;
	}
	memcpy(k->key, buf, n);
	k->len = n;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

void pcb_auth_mac(const struct pcb_auth_key *k, const char *label, const uint8_t a[PCB_NONCE_BYTES],
		  const uint8_t b[PCB_NONCE_BYTES], const void *extra, size_t extra_len, uint8_t mac[PCB_MAC_BYTES])
{
	uint8_t msg[64 + 2 * PCB_NONCE_BYTES + sizeof(struct pcb_config_wire)];
	size_t ll = strlen(label), n = 0;
	if (ll > 64)
		ll = 64;
	if (extra_len > sizeof(struct pcb_config_wire))
		extra_len = sizeof(struct pcb_config_wire);
	memcpy(msg, label, ll);
	n += ll;
	msg[n++] = 0;
	memcpy(msg + n, a, PCB_NONCE_BYTES);
	n += PCB_NONCE_BYTES;
	memcpy(msg + n, b, PCB_NONCE_BYTES);
	n += PCB_NONCE_BYTES;
	if (extra_len) {
		memcpy(msg + n, extra, extra_len);
		n += extra_len;
	}
	unsigned int ml = PCB_MAC_BYTES;
	if (!HMAC(EVP_sha256(), k->key, (int)k->len, msg, n, mac, &ml) || ml != PCB_MAC_BYTES)
		memset(mac, 0xff, PCB_MAC_BYTES);   /* cannot match a real MAC: authentication fails closed */
}

int pcb_random_bytes(void *out, size_t len)
{
	size_t n = 0;
	while (n < len) {
		ssize_t r = getrandom((uint8_t *)out + n, len - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;   /* fail closed: no nonce made up from the time or the pid */
		n += (size_t)r;
	}
	return 0;
}

int pcb_auth_key_random(struct pcb_auth_key *k, bool handshake_only)
{
	memset(k, 0, sizeof(*k));
	if (pcb_random_bytes(k->key, 32) < 0)
		return -1;
	k->len = 32;
	k->handshake_only = handshake_only;
	return 0;
}

void pcb_stream_keys(const struct pcb_auth_key *k, const uint8_t nonce_d[PCB_NONCE_BYTES],
		     const uint8_t nonce_s[PCB_NONCE_BYTES], uint32_t channel, uint8_t d2s[PCB_STREAM_KEY_BYTES],
		     uint8_t s2d[PCB_STREAM_KEY_BYTES])
{
	uint8_t ch[4];
	uint32_t v = htole32(channel);
	memcpy(ch, &v, 4);
	pcb_auth_mac(k, "pcbench-stream-d2s", nonce_d, nonce_s, ch, 4, d2s);
	pcb_auth_mac(k, "pcbench-stream-s2d", nonce_d, nonce_s, ch, 4, s2d);
}

/* After a keyed handshake: authenticate every frame from now on. */
static int stream_on(struct pcb_conn *c, const struct pcb_auth_key *k, const uint8_t nd[PCB_NONCE_BYTES],
		     const uint8_t ns[PCB_NONCE_BYTES], uint32_t channel, bool dest, char *why, size_t whylen)
{
	if (!k || !k->len || k->handshake_only)
		return 0;
	uint8_t d2s[PCB_STREAM_KEY_BYTES], s2d[PCB_STREAM_KEY_BYTES];
	pcb_stream_keys(k, nd, ns, channel, d2s, s2d);
	int r = dest ? pcb_conn_mac_on(c, d2s, s2d) : pcb_conn_mac_on(c, s2d, d2s);
	OPENSSL_cleanse(d2s, sizeof(d2s));
	OPENSSL_cleanse(s2d, sizeof(s2d));
	if (r < 0) {
		snprintf(why, whylen, "cannot set up stream authentication (libcrypto AES-256-GCM)");
		return PCB_EXIT_SOFTWARE;
	}
	return 0;
}

/* ---- payload codecs ------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

void pcb_hello_encode(const struct pcb_hello *h, uint8_t *out)
{
	put32(out, h->channel);
	put32(out + 4, h->flags);
	memcpy(out + 8, h->nonce, PCB_NONCE_BYTES);
}

void pcb_hello_decode(const uint8_t *in, struct pcb_hello *h)
{
	h->channel = get32(in);
	h->flags = get32(in + 4);
	memcpy(h->nonce, in + 8, PCB_NONCE_BYTES);
}

static void challenge_encode(const struct pcb_challenge_wire *c, uint8_t *out)
{
	put32(out, c->auth_required);
	put32(out + 4, c->reserved);
	memcpy(out + 8, c->nonce, PCB_NONCE_BYTES);
}

static void challenge_decode(const uint8_t *in, struct pcb_challenge_wire *c)
{
	c->auth_required = get32(in);
	c->reserved = get32(in + 4);
	memcpy(c->nonce, in + 8, PCB_NONCE_BYTES);
}

void pcb_config_encode(const struct pcb_config_wire *c, uint8_t *out)
{
	put64(out, c->mem_bytes);
	put64(out + 8, c->npages);
	put64(out + 16, c->seed);
	put64(out + 24, c->zero_threshold);
	put32(out + 32, c->page_size);
	put32(out + 36, c->reserved);
	memcpy(out + 40, c->mac, PCB_MAC_BYTES);
}

void pcb_config_decode(const uint8_t *in, struct pcb_config_wire *c)
{
	c->mem_bytes = get64(in);
	c->npages = get64(in + 8);
	c->seed = get64(in + 16);
	c->zero_threshold = get64(in + 24);
	c->page_size = get32(in + 32);
	c->reserved = get32(in + 36);
	memcpy(c->mac, in + 40, PCB_MAC_BYTES);
}

void pcb_link_encode(const struct pcb_link_wire *l, uint8_t *out)
{
	put64(out, l->bits_per_sec);
	put64(out + 8, l->delay_ns);
}

int pcb_link_decode(const uint8_t *in, struct pcb_link_wire *l, char *why, size_t whylen)
{
	l->bits_per_sec = get64(in);
	l->delay_ns = get64(in + 8);
	if (l->bits_per_sec > PCB_LINK_MAX_BPS || (l->bits_per_sec && l->bits_per_sec < PCB_LINK_MIN_BPS)) {
		snprintf(why, whylen, "LINK bandwidth %llu bit/s outside %llu..%llu (or 0, unlimited), the range --link takes",
			 (unsigned long long)l->bits_per_sec, (unsigned long long)PCB_LINK_MIN_BPS,
			 (unsigned long long)PCB_LINK_MAX_BPS);
		return -1;
	}
	if (l->delay_ns > PCB_LINK_MAX_DELAY_NS) {
		snprintf(why, whylen, "LINK delay %llu ns above the maximum %llu", (unsigned long long)l->delay_ns,
			 (unsigned long long)PCB_LINK_MAX_DELAY_NS);
		return -1;
	}
	return 0;
}

/* ---- handshake ------------------------------------------------------------------- */

static void set_rcvtimeo(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Receive one frame before the handshake's deadline (each read waits at most
 * what is left of it); map failures to exit codes. */
static int hs_recv(struct pcb_conn *c, uint64_t deadline, struct pcb_hdr *h, const uint8_t **pl, const char *peer,
		   char *why, size_t whylen)
{
	int r;
	while ((r = pcb_conn_parse(c, h, pl)) == PCB_RX_MORE) {
		uint64_t now = pcb_now_ns();
		if (now >= deadline) {
			errno = EAGAIN;
			r = PCB_RX_ERR;
			break;
		}
		uint64_t left_ms = (deadline - now + PCB_NSEC_PER_MSEC - 1) / PCB_NSEC_PER_MSEC;
		set_rcvtimeo(c->fd, (int)(left_ms < 1 ? 1 : left_ms));
		r = pcb_conn_fill(c);
		if (r == PCB_RX_EOF && c->rlen != c->rpos) {
			snprintf(c->err, sizeof(c->err), "connection closed inside a frame");
			c->bad_frames++;
			r = PCB_RX_BAD;
		}
		if (r < 0)
			break;
	}
	if (r == PCB_RX_FRAME)
		return 0;
	if (r == PCB_RX_BAD) {
		snprintf(why, whylen, "bad frame from the %s during the handshake: %s", peer, c->err);
		return PCB_EXIT_PROTOCOL;
	}
	if (r == PCB_RX_EOF) {
		snprintf(why, whylen, "the %s closed the connection during the handshake", peer);
		return PCB_EXIT_SOURCE_LOST;
	}
	snprintf(why, whylen, "handshake with the %s failed: %s", peer,
		 errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
	return PCB_EXIT_SOURCE_LOST;
}

static int peer_error(struct pcb_conn *c, const struct pcb_hdr *h, const uint8_t *pl, char *why, size_t whylen)
{
	char text[PCB_MAX_ERRTEXT + 1];
	pcb_sanitize(text, sizeof(text), pl, h->len);
	snprintf(why, whylen, "the source refused the connection: %s", text);
	if (!strncmp(text, "busy", 4)) {   /* too many handshakes pending from our address: try again */
		c->hs_retry = true;
		return PCB_EXIT_SOURCE_LOST;
	}
	return strstr(text, "authentication") ? PCB_EXIT_NOPERM : PCB_EXIT_PROTOCOL;
}

/* Destination: the source's next handshake frame, which must be of type want
 * (an ERROR names the source's reason).  0 or an exit code. */
static int hs_expect(struct pcb_conn *c, uint64_t deadline, uint16_t want, struct pcb_hdr *h, const uint8_t **pl,
		     char *why, size_t whylen)
{
	int rc = hs_recv(c, deadline, h, pl, "source", why, whylen);
	if (rc == PCB_EXIT_SOURCE_LOST)
		c->hs_retry = true;   /* ended before CONFIG (for room, or the source is going away) */
	if (rc)
		return rc;
	if (h->type == PCB_MSG_ERROR)
		return peer_error(c, h, *pl, why, whylen);
	if (h->type != want) {
		snprintf(why, whylen, "the source sent %s during the handshake (want %s)", pcb_msg_name(h->type),
			 pcb_msg_name(want));
		return PCB_EXIT_PROTOCOL;
	}
	return 0;
}

int pcb_hs_client(struct pcb_conn *c, unsigned channel, uint32_t flags, const struct pcb_auth_key *key,
		  int timeout_ms, struct pcb_config_wire *cfg, char *why, size_t whylen)
{
	struct pcb_hello hello = { .channel = channel, .flags = flags };
	uint8_t buf[sizeof(struct pcb_config_wire)];
	struct pcb_hdr h;
	const uint8_t *pl;
	int rc;

	uint64_t deadline = pcb_now_ns() + (uint64_t)timeout_ms * PCB_NSEC_PER_MSEC;
	c->hs_retry = false;
	if (pcb_random_bytes(hello.nonce, PCB_NONCE_BYTES) < 0) {
		snprintf(why, whylen, "no random nonce for the handshake: getrandom: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	pcb_hello_encode(&hello, buf);
	if (pcb_conn_send(c, PCB_MSG_HELLO, 0, buf, sizeof(struct pcb_hello)) < 0) {
		snprintf(why, whylen, "handshake with the source failed: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if ((rc = hs_expect(c, deadline, PCB_MSG_CHALLENGE, &h, &pl, why, whylen)) != 0)
		return rc;
	struct pcb_challenge_wire ch;
	challenge_decode(pl, &ch);
	if (ch.auth_required > 1 || ch.reserved) {
		snprintf(why, whylen, "malformed CHALLENGE from the source (auth_required %u, reserved %u)",
			 ch.auth_required, ch.reserved);
		return PCB_EXIT_PROTOCOL;
	}
	bool have_key = key && key->len;
	if (ch.auth_required && !have_key) {
		snprintf(why, whylen, "the source requires authentication: give the shared key with --auth-key-file");
		return PCB_EXIT_NOPERM;
	}
	if (!ch.auth_required && have_key) {
		snprintf(why, whylen, "the source does not authenticate (it was started without --auth-key-file); "
			 "refusing it because --auth-key-file was given");
		return PCB_EXIT_NOPERM;
	}
	if (have_key) {
		uint8_t mac[PCB_MAC_BYTES], ch_le[4];
		put32(ch_le, channel);
		pcb_auth_mac(key, "pcbench-dest", ch.nonce, hello.nonce, ch_le, 4, mac);
		if (pcb_conn_send(c, PCB_MSG_AUTH, 0, mac, PCB_MAC_BYTES) < 0) {
			snprintf(why, whylen, "handshake with the source failed: %s", strerror(errno));
			return PCB_EXIT_SOURCE_LOST;
		}
	}
	if ((rc = hs_expect(c, deadline, PCB_MSG_CONFIG, &h, &pl, why, whylen)) != 0)
		return rc;
	pcb_config_decode(pl, cfg);
	if (have_key) {
		uint8_t want[PCB_MAC_BYTES];
		memcpy(buf, pl, sizeof(struct pcb_config_wire));
		memset(buf + offsetof(struct pcb_config_wire, mac), 0, PCB_MAC_BYTES);
		pcb_auth_mac(key, "pcbench-source", hello.nonce, ch.nonce, buf, sizeof(struct pcb_config_wire), want);
		if (CRYPTO_memcmp(want, cfg->mac, PCB_MAC_BYTES) != 0) {
			snprintf(why, whylen, "the source failed authentication (its CONFIG is not signed with our key)");
			return PCB_EXIT_NOPERM;
		}
	}
	uint32_t run_lg = (cfg->reserved >> PCB_CFG_RUN_SHIFT) & 0xffu;
	if (cfg->page_size != PCB_PAGE_SIZE || cfg->npages == 0 || (cfg->reserved & ~PCB_CFG_KNOWN) ||
	    (!(cfg->reserved & PCB_CFG_ZERO_RUNS) && run_lg) || run_lg > PCB_CFG_RUN_MAXLOG ||
	    cfg->mem_bytes / PCB_PAGE_SIZE != cfg->npages || cfg->mem_bytes % PCB_PAGE_SIZE) {
		snprintf(why, whylen, "the source announced an impossible image: %llu bytes, %llu pages of %u bytes, flags 0x%x",
			 (unsigned long long)cfg->mem_bytes, (unsigned long long)cfg->npages, cfg->page_size, cfg->reserved);
		return PCB_EXIT_PROTOCOL;
	}
	set_rcvtimeo(c->fd, 0);
	return stream_on(c, key, hello.nonce, ch.nonce, channel, true, why, whylen);
}

static int refuse(struct pcb_conn *c, int code, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int refuse(struct pcb_conn *c, int code, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	size_t n = strlen(why);
	pcb_conn_send(c, PCB_MSG_ERROR, 0, why, (uint32_t)(n < PCB_MAX_ERRTEXT ? n : PCB_MAX_ERRTEXT));
	return code;
}

/* Refuse with a fixed text (the reason stays in why, for our log). */
static int refuse_text(struct pcb_conn *c, int code, const char *text)
{
	pcb_conn_send(c, PCB_MSG_ERROR, 0, text, (uint32_t)strlen(text));
	return code;
}

/* A malformed frame during the handshake: the peer is told only that (the
 * validator's reason may name the image size, which an unauthenticated peer
 * must not learn); our log gets the reason. */
static int refuse_bad(struct pcb_conn *c, char *why, size_t whylen)
{
	snprintf(why, whylen, "bad frame during the handshake: %s", c->err);
	return refuse_text(c, PCB_EXIT_PROTOCOL, "bad frame during the handshake");
}

/* A new TCP connection in c (new, or replacing a lost one).  0 or an exit code. */
static int conn_attach(struct pcb_conn *c, const char *host, uint16_t port, uint64_t npages, int timeout_ms, char *why,
		       size_t whylen)
{
	int s = pcb_connect_tcp(host, port, timeout_ms);
	if (s < 0) {
		snprintf(why, whylen, "cannot connect to the source at %s:%u: %s", host, port, strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if (!c->rbuf) {
		if (pcb_conn_init(c, s, 0, npages) < 0) {
			close(s);
			snprintf(why, whylen, "out of memory");
			return PCB_EXIT_OSERR;
		}
		return 0;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = s;
	c->rpos = c->rlen = 0;   /* a partial frame of the old connection is dropped: it is asked for again */
	pcb_conn_free_mac(c);    /* its stream keys too: the handshake derives new ones */
	return 0;
}

int pcb_hs_connect(struct pcb_conn *c, const char *host, uint16_t port, uint64_t npages, unsigned channel,
		   uint32_t flags, const struct pcb_auth_key *key, int connect_ms, int timeout_ms,
		   struct pcb_config_wire *cfg, uint64_t *retries, char *why, size_t whylen)
{
	uint64_t deadline = pcb_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1) * PCB_NSEC_PER_MSEC;
	uint64_t backoff = 5 * PCB_NSEC_PER_MSEC;
	for (unsigned n = 1;; n++) {
		uint64_t now = pcb_now_ns();
		int left = now < deadline ? (int)((deadline - now + PCB_NSEC_PER_MSEC - 1) / PCB_NSEC_PER_MSEC) : 1;
		int rc = conn_attach(c, host, port, npages, left < connect_ms ? left : connect_ms, why, whylen);
		if (rc)
			return rc;
		now = pcb_now_ns();
		left = now < deadline ? (int)((deadline - now + PCB_NSEC_PER_MSEC - 1) / PCB_NSEC_PER_MSEC) : 1;
		rc = pcb_hs_client(c, channel, flags, key, left, cfg, why, whylen);
		uint64_t wait = backoff + pcb_now_ns() % backoff;   /* jitter: retrying peers do not stay in step */
		if (!rc || !c->hs_retry || pcb_now_ns() + wait >= deadline)
			return rc;
		if (retries)
			++*retries;
		pcb_log("handshake (channel %u): %s; trying again in %.1f ms (retry %u)", channel, why, (double)wait / 1e6, n);
		struct timespec ts = { 0, (long)wait };
		nanosleep(&ts, NULL);
		if (backoff < 20 * PCB_NSEC_PER_MSEC)
			backoff *= 2;
	}
}

/* Source: the destination's next handshake frame; a malformed one is
 * refused (refuse_bad).  0 or an exit code. */
static int hs_server_recv(struct pcb_conn *c, uint64_t deadline, struct pcb_hdr *h, const uint8_t **pl, char *why,
			  size_t whylen)
{
	int rc = hs_recv(c, deadline, h, pl, "destination", why, whylen);
	return rc == PCB_EXIT_PROTOCOL ? refuse_bad(c, why, whylen) : rc;
}

int pcb_hs_server(struct pcb_conn *c, const struct pcb_auth_key *key, const struct pcb_config_wire *cfg,
		  int timeout_ms, struct pcb_hello *hello, char *why, size_t whylen)
{
	struct pcb_hdr h;
	const uint8_t *pl;
	uint8_t buf[sizeof(struct pcb_config_wire)];
	bool have_key = key && key->len;
	int rc;
	uint64_t deadline = pcb_now_ns() + (uint64_t)timeout_ms * PCB_NSEC_PER_MSEC;

	if ((rc = hs_server_recv(c, deadline, &h, &pl, why, whylen)) != 0)
		return rc;
	if (h.type != PCB_MSG_HELLO)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "expected HELLO, got %s", pcb_msg_name(h.type));
	pcb_hello_decode(pl, hello);
	if (hello->channel > PCB_CHAN_SHARED)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "HELLO for unknown channel %u", hello->channel);
	if (hello->flags & ~PCB_HELLO_RESUME)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "HELLO with unknown flags 0x%x", hello->flags);
	if (c->on_hello)
		c->on_hello(c->hook_arg);

	struct pcb_challenge_wire ch = { .auth_required = have_key };
	if (pcb_random_bytes(ch.nonce, PCB_NONCE_BYTES) < 0) {
		snprintf(why, whylen, "no random nonce for the handshake: getrandom: %s", strerror(errno));
		return refuse_text(c, PCB_EXIT_OSERR, "the source has no random nonce");
	}
	challenge_encode(&ch, buf);
	if (pcb_conn_send(c, PCB_MSG_CHALLENGE, 0, buf, sizeof(ch)) < 0) {
		snprintf(why, whylen, "sending CHALLENGE failed: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if (have_key) {
		if ((rc = hs_server_recv(c, deadline, &h, &pl, why, whylen)) != 0)
			return rc;
		if (h.type != PCB_MSG_AUTH)
			return refuse(c, PCB_EXIT_NOPERM, why, whylen, "authentication required: got %s instead of AUTH",
				      pcb_msg_name(h.type));
		uint8_t want[PCB_MAC_BYTES], ch_le[4];
		put32(ch_le, hello->channel);
		pcb_auth_mac(key, "pcbench-dest", ch.nonce, hello->nonce, ch_le, 4, want);
		if (CRYPTO_memcmp(want, pl, PCB_MAC_BYTES) != 0)
			return refuse(c, PCB_EXIT_NOPERM, why, whylen, "authentication failed: wrong key");
	}
	struct pcb_config_wire cw = *cfg;
	memset(cw.mac, 0, PCB_MAC_BYTES);
	cw.reserved &= PCB_CFG_KNOWN;
	pcb_config_encode(&cw, buf);
	if (have_key) {
		pcb_auth_mac(key, "pcbench-source", hello->nonce, ch.nonce, buf, sizeof(cw), cw.mac);
		memcpy(buf + offsetof(struct pcb_config_wire, mac), cw.mac, PCB_MAC_BYTES);
	}
	if (pcb_conn_send(c, PCB_MSG_CONFIG, 0, buf, sizeof(cw)) < 0) {
		snprintf(why, whylen, "sending CONFIG failed: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	set_rcvtimeo(c->fd, 0);
	return stream_on(c, key, hello->nonce, ch.nonce, hello->channel, false, why, whylen);
}

int pcb_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, int allow_port0,
		       char *why, size_t whylen)
{
	const char *colon = strrchr(s, ':');
	struct in_addr a;
	char h[64];
	if (!colon || (size_t)(colon - s) >= sizeof(h) || colon == s) {
		snprintf(why, whylen, "'%s' is not ADDRESS:PORT (e.g. 10.200.0.1:7000)", s);
		return -1;
	}
	memcpy(h, s, (size_t)(colon - s));
	h[colon - s] = 0;
	if (inet_pton(AF_INET, h, &a) != 1) {
		snprintf(why, whylen, "'%s' is not an IPv4 address in '%s'", h, s);
		return -1;
	}
	uint64_t p;
	if (pcb_parse_u64(colon + 1, &p) < 0 || p > 65535 || (p == 0 && !allow_port0)) {
		snprintf(why, whylen, "'%s' is not a port (1..65535) in '%s'", colon + 1, s);
		return -1;
	}
	if (strlen(h) >= hostlen) {
		snprintf(why, whylen, "address too long in '%s'", s);
		return -1;
	}
	snprintf(host, hostlen, "%s", h);
	*port = (uint16_t)p;
	return 0;
}
