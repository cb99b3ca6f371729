/* Link emulation inside the source's send path (sch_netem is not available
 * on the kernels we target, and a user-space proxy would add its own copy and
 * wake-up to every page).
 *
 * Delay line: every request is stamped when the source reads it and its reply
 * is released no earlier than stamp + delay_ns.  The whole round-trip latency
 * is applied on the return path (requests are tiny, so where the delay sits
 * does not change any request/response time).  The destination calibrates
 * delay_ns end to end (wire/linkcal.c) so that the round trip it measures
 * matches the configured RTT, loopback costs included.
 *
 * Bandwidth: one token bucket per source process, shared by the demand and
 * background connections (they share one emulated link).  A frame (header +
 * payload) is written when its last bit would have left a link of that rate
 * (virtual finish time). */
#ifndef PCB_LINK_H
#define PCB_LINK_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcb_link {
	_Atomic uint64_t bps;        /* 0 = unlimited */
	_Atomic uint64_t delay_ns;
	pthread_mutex_t lock;
	uint64_t tat;                /* virtual time the link becomes free (CLOCK_MONOTONIC ns) */
	uint64_t utat;               /* ... of the urgent frames reserved with pcb_link_reserve_urgent */
	_Atomic uint64_t bytes;      /* bytes paced through the bucket */
};

void pcb_link_init(struct pcb_link *l);
void pcb_link_set(struct pcb_link *l, uint64_t bps, uint64_t delay_ns);
static inline bool pcb_link_active(struct pcb_link *l)
{
	return atomic_load_explicit(&l->bps, memory_order_relaxed) ||
	       atomic_load_explicit(&l->delay_ns, memory_order_relaxed);
}
/* Reserve the link for a frame of `bytes` that became ready to leave at
 * `ready` (its delay-line due time); returns its virtual finish time
 * max(link free, ready) + bytes/rate, the earliest time it may be written.
 * The schedule is virtual: a sender the host delayed finds finish times in
 * the past and catches up, so host hiccups do not lower the rate; a frame
 * that was ready while the link was idle gets no credit and always pays its
 * serialisation time. */
uint64_t pcb_link_reserve(struct pcb_link *l, size_t bytes, uint64_t ready);
/* The same for a frame of the demand connection (--channels=2).  A real link
 * carries two connections' packets interleaved, so a demand reply waits for
 * the packet on the wire (at most PCB_LINK_MTU bytes of a background frame,
 * once per demand frame: the link alternates between the connections, as a
 * fair queue does) and for earlier demand replies, not for the background
 * frames already
 * reserved; those are pushed back by its serialisation time (the bandwidth
 * stays shared).  Background frames reserved before it still leave at their
 * release time, so the link may briefly carry one demand frame more than its
 * rate. */
#define PCB_LINK_MTU 1500
/* With link emulation the source paces every frame itself, so the loopback
 * socket underneath stays nearly empty.  On a real link a sender with more
 * background data than the link carries keeps its socket buffer full, and a
 * demand reply written to the same connection waits until that buffer has
 * drained: a shared connection (--channels=1) on an emulated link delays each
 * demand reply by min(this many bytes, background bytes queued at the source)
 * / rate before it enters the link -- the socket buffer pcb_sock_tune() asks
 * for.  Reported in results.link.shared_socket_buffer_bytes. */
#define PCB_LINK_SOCKQ_BYTES (4u << 20)
uint64_t pcb_link_reserve_urgent(struct pcb_link *l, size_t bytes, uint64_t ready);

/* Pages per background RUN frame on an emulated link of rate bps: a frame
 * occupies the link for about PCB_LINK_FRAME_NS (so pages still arrive in
 * small steps on a slow link), at least PCB_LINK_MIN_RUN_PAGES (per-frame
 * costs: receive, one install ioctl, hand-off to the installer) and at most
 * PCB_MAX_RUN_PAGES.  1gbit: 16 pages, 2.5gbit: 30, 5gbit: 61, 10gbit: 122,
 * >= 10.5gbit: 128.  A demand reply on its own connection does not wait for the frame
 * (pcb_link_reserve_urgent), so the size only sets the pull's granularity;
 * with 16-page frames at every rate, 10gbit pulls measured 1.6-7.7 Gbit/s
 * here (mean 5.3; pcbench floor), with 128-page frames 6.5-9.8 (mean 8.6). */
#define PCB_LINK_FRAME_NS 400000u
#define PCB_LINK_MIN_RUN_PAGES 16u
unsigned pcb_link_run_pages(uint64_t bps);

/* Parse "BANDWIDTH[,RTT]": bandwidth with bit/kbit/mbit/gbit suffix (decimal,
 * as tc writes it; "0" or "unlimited" = no limit), RTT a duration (50us, 5ms).
 * 0 or -1 with a reason. */
int pcb_link_parse(const char *s, uint64_t *bps, uint64_t *rtt_ns, char *why, size_t whylen);
#endif
