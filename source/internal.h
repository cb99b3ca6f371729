/* The source page server's rooms share this: the server's state, a
 * connection's state and the queued replies (the delay line).
 *   source.c  accepting connections: the state, admission of unauthenticated
 *             connections (limits, eviction), the accept loop, the fork;
 *   conn.c    one connection: the handshake, the frames the destination
 *             sends (requests, PUSH, LINK, BYE), the connection's loop;
 *   sender.c  the replies: the delay line, frames formatted from the image,
 *             the paced send loop, the pushed stream's refill. */
#ifndef PCB_SOURCE_INTERNAL_H
#define PCB_SOURCE_INTERNAL_H
#include "source/source.h"
#include "source/push.h"
#include "wire/link.h"
#include "wire/proto.h"
#include "common/image.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_CONNS 256
/* Connections still in their handshake (unauthenticated) are limited in all
 * and per peer address: a new connection over a limit ends the oldest
 * unauthenticated one older than a grace (of that peer, or of all), or is
 * refused as busy when none is that old (source.c slot_take), so holding
 * connections open cannot lock the destination out and a flood of new ones
 * cannot end its handshake; each is also bounded by the whole-handshake
 * deadline.  Connections past the handshake are not affected. */
#define MAX_UNAUTH 64
#define MAX_UNAUTH_PER_PEER 16
/* Handshake refusals logged one line each; after that only every 10th power. */
#define HS_LOG_FIRST 10

struct slot {
	int fd;                  /* -1: free */
	bool authed;             /* past the handshake */
	bool hello;              /* a well-formed HELLO came (evicted after those without) */
	bool ended;              /* shut down to make room */
	uint32_t peer;           /* IPv4 address, network order */
	uint64_t t_accept;
};
/* On an emulated link a background frame carries pcb_link_run_pages(rate) pages
 * (16..128: about 400 µs of the link; wire/link.h).  A demand reply on its own
 * connection does not queue behind it (pcb_link_reserve_urgent); smaller frames
 * cost the host so much per page at high rates (61 k frames/s at 2 Gbit/s with
 * 4 KiB frames; 16-page frames held a 10gbit pull to a mean 5.3 Gbit/s here) that the
 * pull falls short of the link. */
/* A shared connection (--channels=1) cuts background RUN frames to 16 pages
 * (64 KiB) too and hands what it has formatted to the socket every 64 KiB,
 * checking for demand requests in between: a demand reply goes out at the
 * next 64 KiB boundary (QEMU's source checks its page-request queue between
 * pages), behind whatever the socket already holds -- the head-of-line
 * blocking one connection has. */
#define PCB_SHARED_RUN_PAGES 16
#define PCB_SHARED_FLUSH (64u << 10)

struct pcb_source_state {
	const struct pcb_source_cfg *cfg;
	struct pcb_image im;
	uint64_t npages;
	struct pcb_config_wire cw;
	struct pcb_link link;
	atomic_int live_conns;
	pthread_mutex_t conns_lock;       /* live connections, to limit the unauthenticated and end them at exit */
	struct slot slot[MAX_CONNS];
	atomic_int finished_sessions;
	int done_fd;                      /* eventfd: a session finished (wakes the accept loop; -1: none) */
	atomic_ullong pages_sent, zero_sent, bad_frames, auth_failures, resumes;
	atomic_ullong bytes_spliced;   /* --source-send=splice: bytes that left through a connection's pipe */
	atomic_ullong hs_refused, hs_timeouts, evicted, refused_full, refused_busy;
	atomic_ullong conns[PCB_CHAN_SHARED + 1];   /* connections past the handshake, per HELLO channel */
	/* --policy-end=source: the engine of the current migration (set by the
	 * connection that received PUSH; the demand connection tells it of requests) */
	_Atomic(struct pcb_push *) push;
	pthread_mutex_t push_lock;        /* replacing the engine */
	uint64_t corrupt_page;            /* tests only (PCB_TEST_CORRUPT_PAGE): serve this page with a byte flipped */
};

/* A reply waiting in the delay line: due = arrival + link delay. */
struct item {
	uint64_t due;
	uint16_t type;            /* request type: REQ, RANGES, DIGEST_REQ, PING; PUSH_END (end of a pushed stream) */
	uint64_t arg;
	uint64_t count;           /* DIGEST_REQ count */
	struct pcb_range_wire *r; /* RANGES (host order) */
	uint32_t nr, ri;          /* ranges, current range */
	uint64_t off;             /* pages of range ri already sent */
	uint64_t rel;             /* link release time of the next frame (0 = not reserved) */
	uint64_t sockq_ns;        /* shared connection on an emulated link: modelled socket-buffer wait (REQ) */
	bool in_stream;           /* REQ for a page the pushed stream already sent or queued: answered SENT */
};

#define MAX_ITEMS 1024        /* requests queued per connection; beyond it the socket is not read */
#define TXBUF (1u << 20)     /* staging: headers, tags and pages that are copied or generated */
#define TX_IOV 256            /* pieces of one write: staging slices and pages sent from the image */
#define SPLICE_MIN (16u << 12) /* --source-send=splice: a write with fewer image bytes goes by writev */

struct sconn {
	struct pcb_source_state *st;
	struct pcb_conn c;
	int slot;                 /* in st->slot, -1 (fuzzer) */
	int channel;
	struct item *q;
	unsigned qhead, qlen;
	struct item *uq;          /* shared connection: demand requests, served before q at frame boundaries */
	unsigned uqhead, uqlen;
	uint8_t *tx;
	size_t txoff;             /* staging bytes in use (each frame ends 8-byte aligned) */
	size_t txlen;             /* bytes queued for the next write (staging and image pages) */
	struct iovec iov[TX_IOV];
	unsigned niov;
	size_t tximg;             /* of txlen, image pages sent by reference */
	int pipe[2];              /* --source-send=splice: image pages leave through this pipe; -1: writev */
	size_t pipe_fill;         /* bytes in it */
	bool bye;
	bool rx_end;              /* shared connection: the destination said BYE or went away while we sent */
	struct pcb_push *push;    /* this connection carries the pushed stream (PUSH received) */
};

/* Pushed batches queued ahead of the socket: enough that the sender never
 * waits for the policy, few enough that a demand request still steers the
 * next batch (QEMU's sender picks each page when it is about to send it). */
#define PUSH_QUEUED 2

static inline bool shared_conn(const struct sconn *sc)
{
	return sc->channel == PCB_CHAN_SHARED;
}

/* sender.c */
/* Send every frame whose time has come.  Returns the time the next one is
 * due (UINT64_MAX: nothing queued), or 0 on a send error. */
uint64_t pcb_src_run_queue(struct sconn *sc);
/* Queue a reply (a shared connection's demand requests join uq).  false: full. */
bool pcb_src_enqueue(struct sconn *sc, const struct item *it);
void pcb_src_item_pop(struct sconn *sc);
/* An ERROR frame with msg, after what is buffered. */
void pcb_src_send_error(struct sconn *sc, const char *msg);

/* conn.c */
/* Queue every complete frame in the receive buffer (while there is room).
 * 0 = go on (BYE sets bye and rx_end), -1 = the connection ends (bad frame, error). */
int pcb_src_parse_frames(struct sconn *sc, uint64_t t_rx);
/* Serve connection fd (slot in st->slot, -1: none) to its end; frees the slot, closes fd. */
int pcb_src_serve_conn(struct pcb_source_state *st, int fd, int slot);

/* source.c: the slots of live connections.  A connection's slot records its
 * HELLO and its authentication (for eviction, source.c), and is freed before
 * its fd is closed (the number may be reused at once).  i < 0: no slot. */
enum pcb_src_slot_step { SLOT_HELLO, SLOT_AUTHED, SLOT_FREE };
void pcb_src_slot_set(struct pcb_source_state *st, int i, enum pcb_src_slot_step step);
#endif
