/* Wire protocol between the destination (pager) and the source page server.
 *
 * Every frame: a 24-byte header (little endian) followed by `len` payload bytes.
 *   magic u32 "PCB1" | version u16 | type u16 | len u32 | flags u32 | arg u64
 * Two connections per migration: channel 0 carries demand requests (urgent,
 * one page each, answered at once), channel 1 carries background batches;
 * with --channels=1 one connection (channel 3, shared) carries both, and the
 * replies to demand requests are flagged PCB_FRAME_URGENT.
 * Nothing received is trusted: pcb_proto_validate() checks magic, version,
 * type, the exact length the type requires and every page index against the
 * image size before a payload is used.
 */
#ifndef PCB_PROTO_H
#define PCB_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PCB_PROTO_MAGIC    0x31424350u  /* "PCB1" */
#define PCB_PROTO_VERSION  3             /* 2: challenge-response handshake, LINK, PING/PONG; 3: per-frame tags, PUSH, zero model in CONFIG */
#define PCB_HDR_SIZE       24
#define PCB_MAX_RANGES     256           /* per background batch */
#define PCB_MAX_BATCH_PAGES 4096
#define PCB_MAX_DIGESTS    65536         /* per digest request */
#define PCB_MAX_ERRTEXT    256
#define PCB_MAX_PAYLOAD    (PCB_MAX_DIGESTS * 8)
#define PCB_MAX_RUN_PAGES  (PCB_MAX_PAYLOAD / 4096)  /* 128 pages per RUN frame */
#define PCB_MAX_PONG       (256u << 10)  /* largest PING reply payload */
#define PCB_NONCE_BYTES    16
#define PCB_MAC_BYTES      32            /* HMAC-SHA-256 */

enum pcb_channel { PCB_CHAN_DEMAND = 0, PCB_CHAN_BACKGROUND = 1,
		   PCB_CHAN_QUERY = 2, /* handshake only: read the source's configuration */
		   PCB_CHAN_SHARED = 3 /* --channels=1: demand requests and background batches on one connection */ };

/* Frame flags.  URGENT: a PAGE, ZERO or SENT answering a demand request (REQ) on a
 * shared connection, where background ZERO frames travel too.  MAC: a
 * PCB_TAG_BYTES authentication tag follows the payload (not counted in len):
 * AES-256-GCM over header and payload with nothing encrypted (GMAC), the
 * frame's sequence number on its connection and direction as the nonce, under
 * a key derived from the handshake (both nonces; wire/handshake.h).  On a
 * connection whose handshake used a stream key every frame carries it and a
 * frame without it, or with a wrong tag, is refused (docs/security.md). */
#define PCB_FRAME_URGENT 1u
#define PCB_FRAME_MAC    2u
#define PCB_TAG_BYTES    16
#define PCB_STREAM_KEY_BYTES 32

enum pcb_msg {
	PCB_MSG_HELLO = 1,       /* d->s  payload pcb_hello */
	PCB_MSG_CONFIG = 2,      /* s->d  payload pcb_config_wire */
	PCB_MSG_REQ = 3,         /* d->s  arg page */
	PCB_MSG_RANGES = 4,      /* d->s  arg batch id, payload n * pcb_range_wire */
	PCB_MSG_PAGE = 5,        /* s->d  arg page, payload 4096 bytes */
	PCB_MSG_ZERO = 6,        /* s->d  arg page: the page is all zero */
	PCB_MSG_BATCH_END = 7,   /* s->d  arg batch id */
	PCB_MSG_DIGEST_REQ = 8,  /* d->s  arg first page, payload u64 count */
	PCB_MSG_DIGESTS = 9,     /* s->d  arg first page, payload count * u64 */
	PCB_MSG_BYE = 10,        /* d->s */
	PCB_MSG_ERROR = 11,      /* either way, payload text */
	PCB_MSG_RUN = 12,        /* s->d  arg first page, payload count * 4096 bytes: pages first..first+count-1
				  * (background stream: contiguous data pages land contiguously, page-aligned) */
	PCB_MSG_CHALLENGE = 13,  /* s->d  payload pcb_challenge_wire (answers HELLO) */
	PCB_MSG_AUTH = 14,       /* d->s  payload HMAC (only when the source requires a key) */
	PCB_MSG_LINK = 15,       /* d->s  payload pcb_link_wire: emulate this link from now on */
	PCB_MSG_PING = 16,       /* d->s  arg = reply payload length (<= PCB_MAX_PONG) */
	PCB_MSG_PONG = 17,       /* s->d  arg = length, payload arg bytes */
	PCB_MSG_PUSH = 18,       /* d->s  payload pcb_push_wire: run this policy at the source and stream
				  * its pages on this (background or shared) connection from now on */
	PCB_MSG_PUSH_END = 19,   /* s->d  payload pcb_push_end_wire: every page has been sent */
	PCB_MSG_SENT = 20,       /* s->d  arg page: answers a REQ for a page the pushed stream has already
				  * sent (or queued): it arrives there, not again (QEMU's unqueue_page) */
	PCB_MSG_MAX
};

struct pcb_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len;
	uint32_t flags;
	uint64_t arg;
};

/* Handshake on every connection (wire/handshake.h):
 *   d->s HELLO {channel, flags, nonce_d}
 *   s->d CHALLENGE {auth_required, nonce_s}
 *   d->s AUTH {HMAC(key, "pcbench-dest" nonce_s nonce_d channel)}     only if auth_required
 *   s->d CONFIG {image config, HMAC(key, "pcbench-source" nonce_d nonce_s config)}  (mac zero without a key)
 * Nothing else is accepted before CONFIG.  Payload integers are little endian. */
#define PCB_HELLO_RESUME 1u        /* flags: reconnecting to continue a migration */
struct pcb_hello {
	uint32_t channel;
	uint32_t flags;
	uint8_t nonce[PCB_NONCE_BYTES];
};

struct pcb_challenge_wire {
	uint32_t auth_required;    /* 0 or 1 */
	uint32_t reserved;         /* 0 */
	uint8_t nonce[PCB_NONCE_BYTES];
};

struct pcb_config_wire {
	uint64_t mem_bytes;
	uint64_t npages;
	uint64_t seed;
	uint64_t zero_threshold;   /* pcb_image.zero_threshold */
	uint32_t page_size;
	uint32_t reserved;         /* flags: PCB_CFG_BYTES_IMAGE, PCB_CFG_ZERO_RUNS + run order; other bits 0 */
	uint8_t mac[PCB_MAC_BYTES];
};

/* pcb_config_wire.reserved bit 0: the source serves a bytes image (a file, an
 * application's database image), not the seed's generated one: its pages'
 * digests cover all 4096 bytes (pcb_page_digest_full). */
#define PCB_CFG_BYTES_IMAGE 1u
/* bit 1: the generated image's zero pages lie in runs (--zero-model=runs,
 * common/image.h pcb_image_zero_runs), bits 8..15 holding log2 of the longest
 * run (--zero-run-max); clear (and bits 8..15 zero): uniform.  The destination
 * builds the same image from it (seed, fraction, model), as it does from the
 * zero-page threshold. */
#define PCB_CFG_ZERO_RUNS   2u
#define PCB_CFG_RUN_SHIFT   8
#define PCB_CFG_RUN_MAXLOG  20u     /* --zero-run-max <= 2^20 */
#define PCB_CFG_KNOWN       (PCB_CFG_BYTES_IMAGE | PCB_CFG_ZERO_RUNS | (0xffu << PCB_CFG_RUN_SHIFT))

/* The CONFIG flags for a zero model: run_max 0 = uniform, else a power of two. */
static inline uint32_t pcb_cfg_zero_flags(unsigned run_max)
{
	uint32_t lg = 0;
	if (!run_max)
		return 0;
	while ((1u << lg) < run_max)
		lg++;
	return PCB_CFG_ZERO_RUNS | (lg << PCB_CFG_RUN_SHIFT);
}

/* The longest zero run CONFIG flags announce (0 = uniform). */
static inline unsigned pcb_cfg_zero_run_max(uint32_t flags)
{
	return flags & PCB_CFG_ZERO_RUNS ? 1u << ((flags >> PCB_CFG_RUN_SHIFT) & 0xffu) : 0;
}

/* Link emulation requested by the destination (wire/link.h). */
struct pcb_link_wire {
	uint64_t bits_per_sec;     /* 0 = unlimited; <= PCB_LINK_MAX_BPS */
	uint64_t delay_ns;         /* added to every reply; <= PCB_LINK_MAX_DELAY_NS */
};
#define PCB_LINK_MIN_BPS       10000ull          /* 10 kbit/s (as --link): 0 = unlimited */
#define PCB_LINK_MAX_BPS       400000000000ull   /* 400 Gbit/s */
#define PCB_LINK_MAX_DELAY_NS  10000000000ull    /* 10 s */

/* PUSH: the policy at the source (policies/policy.h PCB_POLICY_SOURCE).  The
 * stream is RUN / ZERO frames grouped into batches numbered from 0 by the
 * source, each closed by BATCH_END, and finally PUSH_END. */
#define PCB_PUSH_NAME 256
#define PCB_PUSH_OPTS 512
struct pcb_push_wire {
	uint32_t batch_pages;      /* pages per pushed batch, 1..PCB_MAX_BATCH_PAGES */
	uint32_t reserved;         /* 0 */
	char policy[PCB_PUSH_NAME];   /* NUL-terminated: a registered name or a .so path on the source host */
	char opts[PCB_PUSH_OPTS];     /* NUL-terminated --policy-opt */
};

struct pcb_push_end_wire {
	uint64_t pages;            /* pages the stream carried (demand replies not counted) */
	uint64_t batches;
	uint64_t sendq_max;        /* most bytes seen queued in the source's socket (SIOCOUTQ) while pushing */
	uint64_t sndbuf;           /* the socket's SO_SNDBUF as the kernel set it (twice what was asked) */
};

struct pcb_range_wire {
	uint64_t first;
	uint64_t count;
};

const char *pcb_msg_name(unsigned type);
void pcb_hdr_encode(const struct pcb_hdr *h, uint8_t out[PCB_HDR_SIZE]);
void pcb_hdr_decode(const uint8_t in[PCB_HDR_SIZE], struct pcb_hdr *h);
/* Check a decoded header against the rules of its type; npages bounds every
 * page index.  Returns 0, or -1 with a one-line reason in why. */
int pcb_proto_validate(const struct pcb_hdr *h, uint64_t npages, char *why, size_t whylen);
/* Check a RANGES payload: every range non-empty, inside the image, total
 * pages <= PCB_MAX_BATCH_PAGES.  Returns total pages or -1 with reason. */
long pcb_proto_check_ranges(const void *payload, uint32_t len, uint64_t npages, char *why, size_t whylen);

/* A connection with a receive buffer: frames are parsed out of the buffer
 * and payloads point into it (valid until the next receive call). */
struct pcb_conn {
	int fd;
	uint8_t *rbuf;             /* rmem + 4096 - PCB_HDR_SIZE: a frame read at the start has a page-aligned payload */
	uint8_t *rmem;             /* the allocation (free this one) */
	size_t rcap, rpos, rlen;
	uint64_t npages;           /* bound for page indices */
	uint64_t bytes_rx, bytes_tx, frames_rx, frames_tx;
	uint64_t bad_frames;
	/* Stream authentication (NULL: none).  mac_tx tags every frame sent
	 * (seq_tx), mac_rx checks every frame received (seq_rx).  forged: the
	 * last PCB_RX_BAD was a frame failing authentication (a page altered on
	 * the way: the receiver may reconnect and ask again instead of giving up). */
	void *mac_tx, *mac_rx;          /* EVP_CIPHER_CTX */
	uint64_t seq_tx, seq_rx;
	uint64_t forged_frames;
	bool forged;
	bool rx_mac_err;                /* libcrypto failed during pcb_conn_rx_*: the frame is refused */
	bool fill_intr;                 /* a signal ends pcb_conn_fill's blocking read (PCB_RX_ERR, errno EINTR) */
	/* source side: called by pcb_hs_server once a well-formed HELLO has come
	 * (the peer is past the first step; source/source.c protects it) */
	void (*on_hello)(void *arg);
	void *hook_arg;
	/* destination side: set by pcb_hs_client when the source refused the
	 * handshake for room ("busy") or closed the connection before CONFIG:
	 * worth trying again within the handshake's deadline */
	bool hs_retry;
	char err[160];
};

int pcb_conn_init(struct pcb_conn *c, int fd, size_t rcap, uint64_t npages);
/* Turn stream authentication on (after the handshake): every frame sent from
 * now on is tagged with ktx, every frame received must carry a tag made with
 * krx.  0 or -1 (libcrypto failed). */
int pcb_conn_mac_on(struct pcb_conn *c, const uint8_t ktx[PCB_STREAM_KEY_BYTES], const uint8_t krx[PCB_STREAM_KEY_BYTES]);
/* Extra bytes a frame with these flags occupies after its payload. */
static inline size_t pcb_frame_trailer(uint32_t flags) { return flags & PCB_FRAME_MAC ? PCB_TAG_BYTES : 0; }
/* Tag the frame hdr (encoded) + payload pieces with the next send sequence number. */
void pcb_conn_tag(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const struct iovec *iov, int niov,
		  uint8_t tag[PCB_TAG_BYTES]);
/* Check a received frame's tag (next receive sequence number).  0, or -1
 * with c->forged set, c->forged_frames counted and the reason in c->err. */
int pcb_conn_check(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const struct iovec *iov, int niov,
		   const uint8_t tag[PCB_TAG_BYTES]);
/* The same, for a payload received in pieces (each piece passed to update
 * as soon as it is read, before anything may overwrite it). */
void pcb_conn_rx_begin(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE]);
void pcb_conn_rx_update(struct pcb_conn *c, const void *p, size_t n);
int pcb_conn_rx_end(struct pcb_conn *c, const uint8_t hdr[PCB_HDR_SIZE], const uint8_t tag[PCB_TAG_BYTES]);
/* Header flags check against the connection's authentication state: a
 * keyed connection wants MAC on every frame, an unkeyed one refuses it. */
int pcb_conn_check_flags(struct pcb_conn *c, const struct pcb_hdr *h);
void pcb_conn_free(struct pcb_conn *c);
/* Only the stream MAC contexts (pcb_conn_free does it too). */
void pcb_conn_free_mac(struct pcb_conn *c);

enum { PCB_RX_FRAME = 1, PCB_RX_MORE = 0, PCB_RX_EOF = -1, PCB_RX_ERR = -2, PCB_RX_BAD = -3 };
/* Parse the next complete frame from the buffer without reading the socket.
 * PCB_RX_FRAME: *h and *payload set.  PCB_RX_MORE: need more bytes.
 * PCB_RX_BAD: the frame is malformed (counted in bad_frames, reason in c->err). */
int pcb_conn_parse(struct pcb_conn *c, struct pcb_hdr *h, const uint8_t **payload);
/* One read() into the buffer.  Returns bytes read (>0), PCB_RX_EOF or PCB_RX_ERR (errno). */
int pcb_conn_fill(struct pcb_conn *c);
/* Blocking: parse, filling as needed. */
int pcb_conn_recv(struct pcb_conn *c, struct pcb_hdr *h, const uint8_t **payload);
/* Send one frame (header + payload with one writev). 0 or -1 (errno). */
int pcb_conn_send(struct pcb_conn *c, uint16_t type, uint64_t arg, const void *payload, uint32_t len);
/* Send n payload-less frames of one type (args[i] each), n <= PCB_SEND_ARGS_MAX,
 * with one write: several demand requests read from one userfaultfd read
 * leave in one system call and wake the peer once.  0 or -1 (errno). */
#define PCB_SEND_ARGS_MAX 64
int pcb_conn_send_args(struct pcb_conn *c, uint16_t type, const uint64_t *args, unsigned n);

/* Sockets. addr "HOST:PORT" or "unix:/path". */
int pcb_listen_tcp(const char *host, uint16_t port, uint16_t *bound_port);
int pcb_connect_tcp(const char *host, uint16_t port, int timeout_ms);
void pcb_sock_tune(int fd);   /* TCP_NODELAY, SO_SNDBUF/SO_RCVBUF of pcb_sock_buf_bytes */
/* --socket-buffer: the send and receive buffer pcb_sock_tune() asks for (the
 * kernel doubles it and caps it at net.core.wmem_max / rmem_max); 0 = leave
 * the kernel's autotuning on.  Default 4 MiB. */
extern int pcb_sock_buf_bytes;
#endif
