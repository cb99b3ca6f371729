/* Connection handshake and authentication (protocol version 2).
 *
 * Both ends run it on every new connection before any page moves.  The
 * destination learns the source's image configuration (size, page size,
 * seed, zero-page threshold) and refuses a mismatch; the protocol version
 * travels in every frame header and a different version is refused by
 * pcb_proto_validate().  With a shared secret (--auth-key-file) both sides
 * prove knowledge of it with HMAC-SHA-256 over fresh random nonces from both
 * ends: the secret never crosses the wire, a recorded exchange cannot be
 * replayed, and the destination also checks that the source holds the key
 * (a rogue server cannot feed it pages).  Without a key on the source, the
 * handshake carries no MAC; a destination that has a key refuses such a
 * source.  The source sends nothing about the image before authentication.
 * Each wait is bounded by one deadline for the whole handshake (timeout_ms),
 * not per read: a peer trickling a byte at a time is dropped on time.  With
 * a key file, the handshake also derives one stream key per direction
 * (HMAC-SHA-256 over both nonces and the channel) and turns on the
 * authentication of every following frame (PCB_FRAME_MAC, wire/proto.h).
 */
#ifndef PCB_HANDSHAKE_H
#define PCB_HANDSHAKE_H
#include "wire/proto.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCB_KEY_MIN 16
#define PCB_KEY_MAX 1024

struct pcb_auth_key {
	size_t len;                 /* 0 = no key */
	/* true: a per-run secret of a forked source (pcb_auth_key_random): it
	 * authenticates the handshake only (no other process gets in), the frames
	 * after it carry no tag (the run's numbers are those of an unkeyed link).
	 * false (a key file): every frame is authenticated (PCB_FRAME_MAC). */
	bool handshake_only;
	uint8_t key[PCB_KEY_MAX];
};

/* A fresh 32-byte random key (getrandom; fails closed): 0, or -1 with errno. */
int pcb_auth_key_random(struct pcb_auth_key *k, bool handshake_only);
/* Fresh random bytes from getrandom(); -1 (errno) when the kernel has none to
 * give: nonces and keys are never made up from the time or the pid. */
int pcb_random_bytes(void *out, size_t n);

/* Read a key file (raw bytes, 16..1024; one trailing newline is dropped).
 * Returns 0, or an exit code with a one-line reason in why. */
int pcb_auth_key_load(const char *path, struct pcb_auth_key *k, char *why, size_t whylen);

/* HMAC-SHA-256(key, label || a || b || extra) into mac. */
void pcb_auth_mac(const struct pcb_auth_key *k, const char *label, const uint8_t a[PCB_NONCE_BYTES],
		  const uint8_t b[PCB_NONCE_BYTES], const void *extra, size_t extra_len, uint8_t mac[PCB_MAC_BYTES]);

/* Little-endian payload codecs (encode: host -> wire, decode: wire -> host). */
void pcb_hello_encode(const struct pcb_hello *h, uint8_t *out);
void pcb_hello_decode(const uint8_t *in, struct pcb_hello *h);
void pcb_config_encode(const struct pcb_config_wire *c, uint8_t *out);
void pcb_config_decode(const uint8_t *in, struct pcb_config_wire *c);
void pcb_link_encode(const struct pcb_link_wire *l, uint8_t *out);
/* Decode and range-check; -1 with reason. */
int pcb_link_decode(const uint8_t *in, struct pcb_link_wire *l, char *why, size_t whylen);

/* The per-direction stream keys of a connection ("d2s": destination to
 * source).  Exposed for the tests. */
void pcb_stream_keys(const struct pcb_auth_key *k, const uint8_t nonce_d[PCB_NONCE_BYTES],
		     const uint8_t nonce_s[PCB_NONCE_BYTES], uint32_t channel, uint8_t d2s[PCB_STREAM_KEY_BYTES],
		     uint8_t s2d[PCB_STREAM_KEY_BYTES]);

/* Destination side.  Sends HELLO, answers the challenge, receives and checks
 * CONFIG (its MAC when a key is given), all within timeout_ms.  Returns 0, or
 * PCB_EXIT_SOURCE_LOST (connection closed / timed out, or refused as "busy":
 * then c->hs_retry is set and a new connection may try again),
 * PCB_EXIT_PROTOCOL (malformed or unexpected frame, ERROR from the source),
 * PCB_EXIT_NOPERM (authentication refused or failed). */
int pcb_hs_client(struct pcb_conn *c, unsigned channel, uint32_t flags, const struct pcb_auth_key *key,
		  int timeout_ms, struct pcb_config_wire *cfg, char *why, size_t whylen);

/* Destination side: connect to host:port and hand-shake, all within
 * timeout_ms (each TCP connect within connect_ms of it).  c is either new (rbuf NULL: initialised here for npages) or a
 * lost connection being replaced (its fd closed, buffers and stream keys
 * reset).  A handshake the source refused for room ("busy": too many
 * pending from our address) or ended before CONFIG is tried again on a new
 * connection after 5-40 ms (doubling, with jitter) while the deadline leaves
 * time; *retries (may be NULL) counts them.  Returns as pcb_hs_client, or
 * PCB_EXIT_SOURCE_LOST when the connect fails, PCB_EXIT_OSERR. */
int pcb_hs_connect(struct pcb_conn *c, const char *host, uint16_t port, uint64_t npages, unsigned channel,
		   uint32_t flags, const struct pcb_auth_key *key, int connect_ms, int timeout_ms,
		   struct pcb_config_wire *cfg, uint64_t *retries, char *why, size_t whylen);

/* Source side.  Receives HELLO, sends CHALLENGE, checks AUTH when a key is
 * set, sends CONFIG.  On refusal it sends an ERROR frame naming the reason.
 * Returns 0 (hello filled), or an exit code as above. */
int pcb_hs_server(struct pcb_conn *c, const struct pcb_auth_key *key, const struct pcb_config_wire *cfg,
		  int timeout_ms, struct pcb_hello *hello, char *why, size_t whylen);

/* Parse "HOST:PORT" (IPv4 dotted quad, port 1..65535 unless allow_port0).
 * 0 or -1 with a reason. */
int pcb_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, int allow_port0,
		       char *why, size_t whylen);
#endif
