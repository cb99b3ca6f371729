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

static void nonce(uint8_t out[PCB_NONCE_BYTES])
{
	size_t n = 0;
	while (n < PCB_NONCE_BYTES) {
		ssize_t r = getrandom(out + n, PCB_NONCE_BYTES - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* no entropy source: fail closed with a nonce that differs every call */
			uint64_t t = pcb_mix64(pcb_now_ns() ^ ((uint64_t)getpid() << 32));
			for (; n < PCB_NONCE_BYTES; n++, t = pcb_mix64(t))
				out[n] = (uint8_t)t;
			return;
		}
		n += (size_t)r;
	}
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
	if (l->bits_per_sec > PCB_LINK_MAX_BPS) {
		snprintf(why, whylen, "LINK bandwidth %llu bit/s above the maximum %llu", (unsigned long long)l->bits_per_sec,
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

/* Receive one frame; map failures to exit codes. */
static int hs_recv(struct pcb_conn *c, struct pcb_hdr *h, const uint8_t **pl, const char *peer, char *why, size_t whylen)
{
	int r = pcb_conn_recv(c, h, pl);
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

static int peer_error(const struct pcb_hdr *h, const uint8_t *pl, char *why, size_t whylen)
{
	char text[PCB_MAX_ERRTEXT + 1];
	size_t n = h->len;
	for (size_t i = 0; i < n; i++)   /* print only what is printable */
		text[i] = pl[i] >= 0x20 && pl[i] < 0x7f ? (char)pl[i] : '?';
	text[n] = 0;
	snprintf(why, whylen, "the source refused the connection: %s", text);
	return strstr(text, "authentication") ? PCB_EXIT_NOPERM : PCB_EXIT_PROTOCOL;
}

int pcb_hs_client(struct pcb_conn *c, unsigned channel, uint32_t flags, const struct pcb_auth_key *key,
		  int timeout_ms, struct pcb_config_wire *cfg, char *why, size_t whylen)
{
	struct pcb_hello hello = { .channel = channel, .flags = flags };
	uint8_t buf[sizeof(struct pcb_config_wire)];
	struct pcb_hdr h;
	const uint8_t *pl;
	int rc;

	nonce(hello.nonce);
	pcb_hello_encode(&hello, buf);
	set_rcvtimeo(c->fd, timeout_ms);
	if (pcb_conn_send(c, PCB_MSG_HELLO, 0, buf, sizeof(struct pcb_hello)) < 0) {
		snprintf(why, whylen, "handshake with the source failed: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if ((rc = hs_recv(c, &h, &pl, "source", why, whylen)) != 0)
		return rc;
	if (h.type == PCB_MSG_ERROR)
		return peer_error(&h, pl, why, whylen);
	if (h.type != PCB_MSG_CHALLENGE) {
		snprintf(why, whylen, "the source answered HELLO with %s (want CHALLENGE)", pcb_msg_name(h.type));
		return PCB_EXIT_PROTOCOL;
	}
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
	if ((rc = hs_recv(c, &h, &pl, "source", why, whylen)) != 0)
		return rc;
	if (h.type == PCB_MSG_ERROR)
		return peer_error(&h, pl, why, whylen);
	if (h.type != PCB_MSG_CONFIG) {
		snprintf(why, whylen, "the source sent %s during the handshake (want CONFIG)", pcb_msg_name(h.type));
		return PCB_EXIT_PROTOCOL;
	}
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
	if (cfg->page_size != PCB_PAGE_SIZE || cfg->npages == 0 || (cfg->reserved & ~PCB_CFG_BYTES_IMAGE) ||
	    cfg->mem_bytes / PCB_PAGE_SIZE != cfg->npages || cfg->mem_bytes % PCB_PAGE_SIZE) {
		snprintf(why, whylen, "the source announced an impossible image: %llu bytes, %llu pages of %u bytes",
			 (unsigned long long)cfg->mem_bytes, (unsigned long long)cfg->npages, cfg->page_size);
		return PCB_EXIT_PROTOCOL;
	}
	set_rcvtimeo(c->fd, 0);
	return 0;
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

int pcb_hs_server(struct pcb_conn *c, const struct pcb_auth_key *key, const struct pcb_config_wire *cfg,
		  int timeout_ms, struct pcb_hello *hello, char *why, size_t whylen)
{
	struct pcb_hdr h;
	const uint8_t *pl;
	uint8_t buf[sizeof(struct pcb_config_wire)];
	bool have_key = key && key->len;
	int rc;

	set_rcvtimeo(c->fd, timeout_ms);
	rc = hs_recv(c, &h, &pl, "destination", why, whylen);
	if (rc == PCB_EXIT_PROTOCOL)
		return refuse(c, rc, why, whylen, "%s", c->err);
	if (rc)
		return rc;
	if (h.type != PCB_MSG_HELLO)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "expected HELLO, got %s", pcb_msg_name(h.type));
	pcb_hello_decode(pl, hello);
	if (hello->channel > PCB_CHAN_SHARED)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "HELLO for unknown channel %u", hello->channel);
	if (hello->flags & ~PCB_HELLO_RESUME)
		return refuse(c, PCB_EXIT_PROTOCOL, why, whylen, "HELLO with unknown flags 0x%x", hello->flags);

	struct pcb_challenge_wire ch = { .auth_required = have_key };
	nonce(ch.nonce);
	challenge_encode(&ch, buf);
	if (pcb_conn_send(c, PCB_MSG_CHALLENGE, 0, buf, sizeof(ch)) < 0) {
		snprintf(why, whylen, "sending CHALLENGE failed: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if (have_key) {
		rc = hs_recv(c, &h, &pl, "destination", why, whylen);
		if (rc == PCB_EXIT_PROTOCOL)
			return refuse(c, rc, why, whylen, "%s", c->err);
		if (rc)
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
	cw.reserved &= PCB_CFG_BYTES_IMAGE;
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
	return 0;
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
