/* The destination pager: the guest region registered with userfaultfd, a
 * demand thread that serves faults (and only faults), and a background
 * thread that pulls what the policy chooses.  Two connections to the source:
 * demand (urgent, one page per request) and background (batches); or, with
 * --channels=1, one connection carrying both (see "one shared connection"
 * in pager/shared.c). */
#ifndef PCB_PAGER_H
#define PCB_PAGER_H
#include "common/hist.h"
#include "install/install.h"
#include "pager/pagestate.h"
#include "policies/policy.h"
#include "pager/uffd.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PCB_MAX_VCPUS 256
#define PCB_ZERO_INLINE_DEFAULT 16   /* --zero-inline's default */

struct pcb_auth_key;

struct pcb_pager_cfg {
	uint64_t npages;
	unsigned nvcpus;
	const struct pcb_policy_ops *policy;
	const struct pcb_policy *policy_opts;   /* its parsed --policy-opt (nopts, opts); NULL = defaults */
	unsigned batch_pages;        /* pages per background batch */
	unsigned window;             /* background batches in flight */
	uint64_t io_timeout_ns;      /* a request unanswered this long = source lost */
	const char *host;
	uint16_t port;
	uint64_t seed;               /* expected from the source's CONFIG */
	uint64_t zero_threshold;
	unsigned zero_run_max;       /* expected zero model: 0 uniform, else runs up to this long (PCB_CFG_ZERO_RUNS) */
	const char *install;         /* --install path name (NULL: copy); with huge, the hugetlb variant (install/registry.c) */
	unsigned install_batch;      /* max pages per background install ioctl (0 = default 128; 1 = unbatched) */
	int zero_inline;             /* copy: zero runs up to this many pages between data pages are installed with
				      * the data (zeroed staging pages, one COPY; 4 KiB allocated each); longer ones
				      * with UFFDIO_ZEROPAGE (the shared zero page); -1: never; 0: the default
				      * (PCB_ZERO_INLINE_DEFAULT).  continue: always (a page-cache page either way) */
	bool process;                /* --pager=process: the pager threads run in a forked process (pagerproc.h) */
	bool huge;                   /* --page-size=2M: hugetlb region, 2 MiB installs (copy only; npages % 512 == 0) */
	unsigned pin_demand, pin_bg; /* CPU + 1 to pin the demand / background thread to; 0 = not pinned */
	unsigned pin_install;        /* CPU + 1 for the installer thread (background installs); 0 = not pinned */
	int installer;               /* --installer: 1 inline (the background thread installs each job as soon as it
				      * is received, one staging slot), 2 thread (an installer thread, 4 slots, receive
				      * overlapping install), 0 auto = inline when the background and installer threads
				      * would share one CPU (pinned to the same one, or one CPU online) on two
				      * connections; else thread (one shared connection: its background thread also
				      * receives the demand replies) */
	bool kernel_faults;          /* faults also come from kernel accesses (--guest=kvm: KVM's fault path) */
	const struct pcb_auth_key *key;   /* shared secret (NULL: none) */
	uint64_t reconnect_timeout_ns;    /* 0: a lost source ends the run; else pause and reconnect for this long */
	uint64_t link_bps, link_rtt_ns;   /* emulated link (0 = not emulated) */
	bool resend_inflight;             /* --inflight=resend: a fault on a page in a background batch asks for it again */
	int demand_replies;               /* --demand-replies: 0 auto, 1 inline, 2 thread (demand.c), 3 lanes (lanes.c) */
	bool bytes_image;                 /* the source must serve a bytes image (PCB_CFG_BYTES_IMAGE): pages are
					   * verified by the digest of the bytes they arrived with (install/install.h
					   * arrival), since the guest may write anywhere in them afterwards */
	unsigned channels;                /* 1: one shared connection (chan[PCB_CHAN_BACKGROUND], HELLO channel
					   * PCB_CHAN_SHARED) carries demand and background; 0 or 2: two */
	bool push;                        /* the policy runs at the source (--policy-end=source): the pager
					   * sends PUSH and receives the stream (wire/proto.h) */
	const char *policy_spec;          /* push: --policy as given (a name or a .so path); NULL = policy->name */
};

/* Link emulation as configured and as measured end to end (wire/linkcal.c). */
struct pcb_link_result {
	bool emulated;
	uint64_t bps, rtt_ns;             /* configured */
	uint64_t base_rtt_ns;             /* median request round trip before any injected delay */
	uint64_t delay_ns;                /* delay the source injects after calibration */
	unsigned rounds;                  /* calibration rounds */
	uint64_t rtt_median_ns, rtt_p10_ns, rtt_p90_ns;   /* achieved, measured after calibration */
	unsigned rtt_samples;
	double bulk_bps;                  /* achieved bulk throughput (frame bytes) */
	uint64_t bulk_bytes, bulk_ns;
	int cpu;                          /* CPU the measuring (destination) thread ran on */
	uint64_t bg_setup_rx_bytes;       /* bytes received on the background connection by the end of the
					   * calibration (handshake, PONG train): not part of the migration */
};

/* Recovery from a lost source connection (--reconnect-timeout). */
struct pcb_recovery_stats {
	uint64_t losses[2];               /* connection losses detected per channel */
	uint64_t reconnects[2];           /* successful reconnections per channel */
	uint64_t pause_ns[2], pause_max_ns[2];   /* loss detected -> reconnected */
	uint64_t demand_rerequested;      /* demand requests sent again after a reconnect */
	uint64_t bg_pages_rerequested, bg_batches_resent;
	uint64_t frames_refused;          /* frames that failed authentication (refused, never installed; asked for again) */
	uint64_t batches_incomplete;      /* background batches that ended without all their pages (asked for again) */
	uint64_t handshake_retries;       /* handshakes tried again after the source refused one as busy or ended it */
	uint64_t frames_unrequested;      /* background data frames for pages no batch in flight asked for (a duplicate or
					   * late frame): received into scratch, never installed */
	uint64_t batch_ends_out_of_order; /* BATCH_END for a batch already ended (ignored) or after a lost one (both ended) */
	uint64_t push_pages_missing;      /* pushing: pages the stream ended (PUSH_END) without; pulled afterwards */
	char last_loss[160];
};

struct pcb_chan_stats {
	uint64_t bytes_tx, bytes_rx, frames_tx, frames_rx, bad_frames;
};

struct pcb_pager_stats {
	uint64_t faults;             /* fault messages read from the uffd */
	uint64_t faults_present;     /* ... for a page already installed (woken at once) */
	uint64_t faults_inflight;    /* ... for a page already requested (waits for it) */
	uint64_t faults_queued;      /* ... of those, in a background batch in flight, not requested (fault_waits_queued) */
	uint64_t faults_unattributed;/* thread not a registered vCPU */
	uint64_t pages_demand, pages_background, pages_drain;   /* 4 KiB pages installed with UFFDIO_COPY */
	uint64_t zero_demand, zero_background, zero_drain;      /* installed with UFFDIO_ZEROPAGE */
	uint64_t eexist_demand, eexist_background;              /* install lost the race: page already there */
	uint64_t demand_requests, bg_batches, bg_pages_requested;
	uint64_t bg_inflight_max;         /* pulling: most background batches in flight at once */
	uint64_t demand_pages_requested;  /* huge pages: 4 KiB pages asked for by the demand requests (RANGES) */
	uint64_t demand_in_stream;   /* pushing: requests the source answered SENT (the page comes in its stream) */
	uint64_t t_switchover_ns, t_complete_ns, t_guest_done_ns;  /* CLOCK_MONOTONIC */
	struct pcb_chan_stats chan[2];   /* --channels=1: chan[1] is the shared connection, chan[0] unused */
	unsigned channels;               /* 1 or 2 */
	uint64_t shared_demand_frames;   /* --channels=1: demand replies received on the shared connection */
	struct pcb_hist demand_rtt;      /* request sent -> page received (pager side) */
	struct pcb_hist demand_service;  /* fault message read -> page installed */
	int demand_cpu, background_cpu;  /* CPU the threads last ran on */
	bool reply_thread;               /* demand replies were received by a reply thread (--demand-replies) */
	unsigned demand_lanes;           /* --demand-replies=lanes: demand lanes (a userfaultfd slice, connection and
					  * thread each; pager/lanes.c); 0 = none */
	int install_cpu;                 /* CPU the installer thread last ran on (-1: inline, no installer thread) */
	bool install_inline;             /* background installs issued by the background thread (--installer=inline) */
	/* CPU time each thread used (CLOCK_THREAD_CPUTIME_ID when it ends) */
	uint64_t demand_cpu_ns, background_cpu_ns, install_cpu_ns;
	struct pcb_install_stats inst_demand, inst_bg;   /* install ioctls by each thread */
	uint64_t bg_rx_ns;               /* background thread: time in receive (poll + read) */
	uint64_t t_bg_first_ns, t_bg_last_ns;   /* first and last background page installed */
	uint64_t huge_installs;          /* --page-size=2M: 2 MiB UFFDIO_COPYs (each makes 512 pages present) */
	uint64_t install_log_runs;       /* runs in the install log (pages installed back to back with one µs stamp) */
	uint64_t install_log_dropped;    /* runs that found it full (0 unless a bug: it holds 2 per page) */
	uint64_t guest_thp_bytes;        /* --install=move: guest region mapped by 2 MiB PMDs at the end (smaps AnonHugePages) */
	struct pcb_link_result link;
	struct pcb_recovery_stats rec;
	/* --policy-end=source: what the source reported in PUSH_END */
	bool push_ended;
	uint64_t push_pages, push_batches;
	uint64_t push_sendq_max, push_sndbuf;   /* bytes: most queued in its socket; its SO_SNDBUF */
};

struct pcb_pager;
struct pcb_auth_key;
struct pcb_conn;

/* Map and register the region, connect both channels, handshake.
 * Returns 0 or an exit code with the reason in why. */
int pcb_pager_create(const struct pcb_pager_cfg *cfg, struct pcb_pager **out, char *why, size_t whylen);
uint8_t *pcb_pager_region(struct pcb_pager *p);
struct pcb_pagestate *pcb_pager_pagestate(struct pcb_pager *p);
const struct pcb_uffd_info *pcb_pager_uffd_info(struct pcb_pager *p);
/* Fault attribution: the vCPU thread tid; its fault counter is bumped when a
 * fault message from it is read (before the page is installed). */
void pcb_pager_register_vcpu(struct pcb_pager *p, unsigned vcpu, pid_t tid);
const _Atomic uint64_t *pcb_pager_vcpu_faults(struct pcb_pager *p, unsigned vcpu);
/* Pre-copy (--precopy), only before pcb_pager_start (no pager thread runs):
 * put a page's current content (data; NULL = all zero) into the region --
 * installed if missing, overwritten if already there (a re-send) -- or drop
 * a page whose copy went stale so that it is missing again at switch-over.
 * Only with install mode copy.  0 or -errno. */
int pcb_pager_precopy_put(struct pcb_pager *p, uint64_t page, const void *data);
int pcb_pager_precopy_drop(struct pcb_pager *p, uint64_t page);
/* Pre-copy, first copies: install n missing pages from a contiguous source
 * (src NULL: all zero) with one UFFDIO_COPY (UFFDIO_ZEROPAGE).  0 or -errno
 * (-EEXIST if one of them is already present). */
int pcb_pager_precopy_put_run(struct pcb_pager *p, uint64_t first, uint64_t n, const void *src);
/* The guest's first-touch record, shown to the policy (before pcb_pager_start). */
void pcb_pager_set_first_touch(struct pcb_pager *p, const _Atomic uint32_t *first_touch);
/* Switch-over: start the threads. */
int pcb_pager_start(struct pcb_pager *p);
/* The guest has stopped: pull whatever is still missing ("drain"). */
void pcb_pager_guest_done(struct pcb_pager *p);
/* Wait up to timeout_ms: 1 = every page present, 0 = not yet, else -exitcode (message in why). */
int pcb_pager_poll(struct pcb_pager *p, int timeout_ms, char *why, size_t whylen);
/* Unregister the region and stop the threads (after completion). */
int pcb_pager_finish(struct pcb_pager *p);

struct pcb_verify {
	uint64_t pages_verified, pages_corrupt, pages_missing, stamps_bad;
	uint64_t first_bad[8];
	unsigned nfirst_bad;
};
/* One page's verdict, counted in v (the first 8 bad pages kept): the one
 * classification of a migrated region (pcb_pager_verify) and a local one
 * (pcb_local_verify, the local run's fill check). */
enum pcb_page_verdict { PCB_PAGE_VERIFIED, PCB_PAGE_CORRUPT, PCB_PAGE_MISSING };
void pcb_verify_count(struct pcb_verify *v, uint64_t page, enum pcb_page_verdict verdict);
/* A resident page of the synthetic image: corrupt when its write stamp is one
 * the guest cannot have written (also counted in v->stamps_bad) or its digest
 * (write slot excluded) is not want. */
enum pcb_page_verdict pcb_verify_stamped(struct pcb_verify *v, uint64_t page, const uint64_t *words, uint64_t want);
/* Compare every page with the source's digest (after finish). Returns 0 or an exit code. */
int pcb_pager_verify(struct pcb_pager *p, struct pcb_verify *v, char *why, size_t whylen);
void pcb_pager_stats(struct pcb_pager *p, struct pcb_pager_stats *out);

/* Per-page install record, for timelines and prefetch metrics: the time the
 * page was installed, in µs since switch-over plus one (0 = not installed by
 * this pager), and how (PCB_INST_* from pager/probes.h). */
const uint32_t *pcb_pager_install_us(struct pcb_pager *p);
/* The pager keeps the install times as a log of runs (pages installed back to
 * back with one µs stamp), this many bytes a run; the per-page array above is
 * built from it on the first call (after the run, outside the pager's memory
 * as measured). */
#define PCB_INSTALL_LOG_RUN_BYTES 12
/* PCB_INST_* per page, 4 bits a page: read with pcb_kind_at (pager/probes.h) */
const uint8_t *pcb_pager_install_kind(struct pcb_pager *p);
/* Every fault message, in the order read: 12 bytes each (the log grows with
 * the faults a running guest takes; 24 bytes each made it the largest part of
 * the pager's memory after the per-page install record).  Read and written
 * only through the functions below:
 *   t_ns     since switch-over, 47 bits (39 hours; a later time is stored as
 *            the largest, PCB_FEV_T_MAX)
 *   page     38 bits (2^38 pages = 1 PiB, above --mem's limit of 1e15 bytes)
 *   vcpu     -1 (not a registered vCPU) .. 510 (PCB_MAX_VCPUS is 256)
 *   outcome  0 requested, 1 page already present, 2 already in flight */
struct pcb_fault_ev {
	uint32_t t_lo, page_lo;
	uint32_t hi;                 /* t_ns >> 32: bits 0-14, page >> 32: 15-20, vcpu + 1: 21-29, outcome: 30-31 */
};
#define PCB_FEV_T_MAX ((1ull << 47) - 1)
static inline struct pcb_fault_ev pcb_fev_make(uint64_t t_ns, uint64_t page, int vcpu, unsigned outcome)
{
	if (t_ns > PCB_FEV_T_MAX)
		t_ns = PCB_FEV_T_MAX;
	return (struct pcb_fault_ev){ (uint32_t)t_ns, (uint32_t)page,
				      (uint32_t)(t_ns >> 32) | (uint32_t)(page >> 32 & 63) << 15 |
					      (uint32_t)((vcpu + 1) & 511) << 21 | (outcome & 3u) << 30 };
}
static inline uint64_t pcb_fev_t_ns(const struct pcb_fault_ev *e) { return (uint64_t)(e->hi & 0x7fff) << 32 | e->t_lo; }
static inline uint64_t pcb_fev_page(const struct pcb_fault_ev *e) { return (uint64_t)(e->hi >> 15 & 63) << 32 | e->page_lo; }
static inline int pcb_fev_vcpu(const struct pcb_fault_ev *e) { return (int)(e->hi >> 21 & 511) - 1; }
static inline unsigned pcb_fev_outcome(const struct pcb_fault_ev *e) { return e->hi >> 30; }
const struct pcb_fault_ev *pcb_pager_fault_events(struct pcb_pager *p, size_t *n);
const struct pcb_installer *pcb_pager_installer(struct pcb_pager *p);
/* Pages not present, as "N pages: a-b, c, ..." (at most len bytes, ranges cut with "..."). */
void pcb_pager_missing_summary(struct pcb_pager *p, char *buf, size_t len);
/* A number that grows whenever the migration makes progress: pages present
 * plus bytes received on the source connections (read racily, for the
 * caller's progress deadline: a slow link moves bytes long before a page). */
uint64_t pcb_pager_progress(struct pcb_pager *p);
/* The process whose threads serve the faults (--pager=process: the pager
 * process, from switch-over on; else this one), and that process's peak RSS
 * in KiB (0 when it is this process). */
int pcb_pager_pid(struct pcb_pager *p);
/* The run is abandoned (about to _exit): end the pager process now, if any. */
void pcb_pager_abort(struct pcb_pager *p);
uint64_t pcb_pager_process_peak_rss_kib(struct pcb_pager *p);
void pcb_pager_destroy(struct pcb_pager *p);
#endif
