/* Hybrid migration: a pre-copy phase before the post-copy switch-over
 * (--precopy=DURATION).
 *
 * The guest first runs "at the source": on the source's memory, a shared
 * mapping that the forked source process serves pages from.  Its writes are
 * tracked with userfaultfd write-protection in asynchronous mode
 * (UFFD_FEATURE_WP_ASYNC: a write to a protected page is resolved by the
 * kernel at once and the page marked written) and collected with the
 * PAGEMAP_SCAN ioctl, which can also re-protect what it reports.  Meanwhile
 * the pre-copy thread copies pages into the destination region: a first pass
 * over every page, then rounds re-sending the pages written since their last
 * copy.  Each copy first re-protects the pages it is about to read, so a
 * write racing with the copy marks the page written again and is re-sent
 * later.  At switch-over the vCPUs stop, one last scan finds the pages
 * written since their last copy, and those are dropped at the destination
 * (made missing again): post-copy fetches them from the source, which serves
 * its memory as the guest left it -- or, with final_resend, re-sent while
 * the vCPUs stay stopped (a stop-and-copy of the dirty set).  Then the pager starts and the vCPUs
 * continue at the destination.
 *
 * Transport: with net set (the default), pages travel over a third TCP
 * connection to the source process (background protocol: RANGES requests,
 * RUN/ZERO frames, through --link emulation when set), so the pre-copy
 * stream costs what the network costs; without it they are copied memory to
 * memory from the source's mapping. */
#ifndef PCB_PRECOPY_H
#define PCB_PRECOPY_H
#include "pager/pager.h"
#include "workloads/workload.h"
#include <stdint.h>

/* The connection pre-copy uses (NULL: memory to memory). */
struct pcb_auth_key;
struct pcb_precopy_net {
	const char *host;
	uint16_t port;
	const struct pcb_auth_key *key;
	uint64_t link_bps, link_delay_ns;
	int timeout_ms;
};

struct pcb_precopy_stats {
	uint64_t bytes_received, frames_received;   /* over the pre-copy connection */
	bool tcp;
	uint64_t duration_ns;            /* pre-copy phase: guest start at the source -> vCPUs stopped */
	uint64_t rounds;                 /* passes: the first over every page, then re-send rounds */
	uint64_t first_pass_ns;          /* time the first pass took (to the end of pre-copy if it did not finish) */
	uint64_t first_pass_cpu_ns;      /* ... of which the pre-copy thread was on a CPU (the rest: waiting for one) */
	uint64_t pages_sent;             /* first copies */
	uint64_t pages_resent;           /* copies of pages written after an earlier copy */
	uint64_t dirty_at_switchover;    /* written since their last copy: dropped (left to post-copy) or re-sent */
	bool final_resend;               /* --precopy-final=resend: re-sent with the vCPUs stopped */
	uint64_t final_ns;               /* vCPUs stopped -> destination ready (final scan + drop or re-send) */
	uint64_t never_sent;             /* the first pass did not reach them */
	uint64_t missing_at_switchover;  /* dirty + never sent */
	uint64_t scans;                  /* PAGEMAP_SCAN calls */
	uint64_t stop_ns;                /* pause request -> every vCPU stopped */
	uint64_t guest_ops, guest_writes;/* the guest's work at the source */
	uint64_t stale_pages;            /* verify: pages whose write slot differs from the source's last word */
};

/* The source's memory: a shared anonymous mapping with the image written in
 * (map it before forking the source).  NULL with errno on failure. */
uint8_t *pcb_precopy_source_mem(const struct pcb_image *im, uint64_t npages);

/* Run the pre-copy phase: release the guest (on the source's memory), copy
 * for duration_ns, stop the guest, leave the destination ready for
 * pcb_pager_start().  0 or an exit code with a one-line reason. */
int pcb_precopy_run(struct pcb_pager *p, struct pcb_guest *g, uint8_t *src, uint64_t npages, uint64_t duration_ns,
		    const struct pcb_precopy_net *net, bool final_resend, struct pcb_precopy_stats *st, char *why, size_t whylen);

/* After the migration: every page the guest did not write at the destination
 * must hold the source's last write (word 511), i.e. no pre-copied page went
 * stale.  Returns the number of pages that differ, first ones in bad[]. */
uint64_t pcb_precopy_check(const uint8_t *dst, const uint8_t *src, uint64_t npages, const _Atomic uint64_t *dest_written,
			   uint64_t *bad, unsigned *nbad, unsigned maxbad);
struct pcb_json;
void pcb_precopy_json(const struct pcb_precopy_stats *st, struct pcb_json *j, const char *key);
#endif
