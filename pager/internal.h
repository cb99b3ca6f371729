/* The pager's private state, shared by its files (one per thread: demand.c,
 * background.c, shared.c, recovery.c, lifecycle.c; common.c for helpers).
 * Nothing outside pager/ includes this header; pager/pager.h is the API. */
#ifndef PCB_PAGER_INTERNAL_H
#define PCB_PAGER_INTERNAL_H

#include "pager/pager.h"
#include "pager/probes.h"
#include "wire/proto.h"
#include "wire/handshake.h"
#include "wire/linkcal.h"
#include "pager/pagerproc.h"
#include "common/image.h"
#include "common/util.h"
#include "common/pin.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_INFLIGHT 16384  /* outstanding demand requests (one per blocked vCPU; 512 with huge pages) */
#define UFFD_MSG_BATCH 64
#define PCB_STOP_SIGNAL SIGUSR2
#define MAX_REFUSED 64            /* frames failing authentication a run survives (each costs a reconnection) */
#define MAX_UNASKED 1024          /* background data frames nobody asked for (dropped) a run survives */
#define MAX_INCOMPLETE 64         /* background batches ended without all their pages a run survives */   /* interrupts the demand thread's blocking read() at stop */

struct inflight {
	uint64_t page;
	uint64_t t_fault, t_req;
	unsigned waiters;            /* registered vCPUs blocked on this page */
	unsigned gen;                /* --channels=1: connection generation it was sent on (0 = not sent) */
};

/* --channels=1: what the background thread tells the demand thread about a
 * demand reply it received and installed (or about a reconnection). */
enum { SHARED_DATA, SHARED_ZERO, SHARED_RACE, SHARED_RECONNECTED, SHARED_IN_STREAM };
struct shared_done {
	uint64_t page;
	uint64_t t_rx, t_done;       /* reply received, page installed */
	uint32_t kind;               /* SHARED_* */
	uint32_t pad;
};

/* One run of the install log: pages first..first+n-1, each installed at us
 * (µs since switch-over plus one).  first 40 bits (4 EiB of guest), n 24 bits. */
struct pcb_inst_run {
	uint64_t first_n;            /* first | (uint64_t)n << 40 */
	uint32_t us;
} __attribute__((packed));
#define PCB_IRUN_MAX ((1u << 24) - 1)
_Static_assert(sizeof(struct pcb_inst_run) == PCB_INSTALL_LOG_RUN_BYTES, "install log run size");

struct pcb_pager {
	struct pcb_pager_cfg cfg;
	uint8_t *region;             /* == in.region (the guest's mapping) */
	size_t region_len;
	struct pcb_installer in;     /* install path: mapping, staging, batched ioctls (install.c) */
	struct pcb_install_q iq;     /* background: receiver -> installer thread */
	/* move: the 2 MiB chunk being assembled by the background thread (and one
	 * more while a RUN spans two chunks); pushed whole, when another chunk's
	 * page arrives, or after the connection has been idle for 1 ms */
	struct pcb_install_job chunk, chunk_next;
	bool chunk_open;
	/* copy: the job gathering back-to-back frames (segments), pushed when its
	 * slot is full or before the background thread would wait for data */
	struct pcb_install_job sj;
	bool sj_open;
	unsigned sj_used;            /* staging pages its data segments use */
	unsigned sj_ztail;           /* zero slots ending its last data segment */
	unsigned zero_inline;        /* zero runs up to this long are copied in with the data (zero slots) */
	pthread_t inst_th;
	bool inst_started;
	bool inst_inline;            /* no installer thread: the background thread installs each job it receives */
	int uffd;
	struct pcb_uffd_info uinfo;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_conn chan[2];
	int stop_pipe[2];
	pthread_t demand_th, bg_th;
	bool threads_started, unregistered;

	/* vCPU attribution */
	pid_t vcpu_tid[PCB_MAX_VCPUS];
	_Atomic uint64_t vcpu_faults[PCB_MAX_VCPUS];

	/* demand thread private */
	struct inflight infl[MAX_INFLIGHT];
	unsigned ninfl;
	atomic_uint infl_count;      /* ninfl, for the background thread (CRIU: one request outstanding) */
	unsigned blocked;            /* registered vCPUs known to wait for an in-flight demand page */
	/* --demand-replies=thread (demand.c): a reply thread receives and installs the
	 * demand replies while the demand thread reads faults and sends requests;
	 * infl[], ninfl and blocked are then under infl_lock */
	pthread_mutex_t infl_lock;
	pthread_t reply_th, demand_self;
	atomic_bool reply_quit;      /* demand thread -> reply thread: stop */
	atomic_bool reply_ack;       /* demand thread has left its reply-thread loop */
	atomic_int reply_handover;   /* reply thread -> demand thread: 1 = the connection needs recovery */
	uint64_t reply_cpu_ns;       /* the reply thread's CPU time (added to demand_cpu_ns) */
	/* --demand-replies=lanes (lanes.c): nlanes > 1 = the region is sliced over
	 * nlanes userfaultfds (in.slice_uffd[]), each served by a lane with its own
	 * demand connection; the demand thread runs lane 0 */
	unsigned nlanes;
	struct lane *lanes;
	pthread_mutex_t fev_lock;    /* log_fault from several lanes */

	/* coordination */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* completion / fatal / work for the bg thread */
	atomic_bool drain, stopping, bg_waiting;
	atomic_int fatal;            /* exit code, 0 = fine */
	char fatal_msg[256];

	/* connection management (see "connections and recovery" below) */
	uint64_t link_delay_ns;      /* calibrated delay the source injects */
	pthread_mutex_t rec_lock;    /* guards st.rec */
	char loss_why[160];          /* demand thread: why the connection is considered lost */
	bool verifying;              /* the main thread owns the demand channel (threads stopped) */
	bool demand_fast;            /* the demand thread reads its socket with a 100 ms SO_RCVTIMEO */
	char bg_loss_why[160];       /* background thread: why its connection is considered lost */
	/* a channel is being recovered because a frame failed authentication (set by
	 * its owner before chan_recover): the connection is replaced even with
	 * --reconnect-timeout=0, at most MAX_REFUSED times a run */
	bool refused[2];
	atomic_bool source_gone;     /* a connection was lost after completion (not fatal: verification will tell) */
	uint8_t *discard;            /* PCB_MAX_RUN_PAGES sink pages: what is owed after completion, or a frame nobody asked for, is received into them and
				      * dropped; on a keyed connection also the pages continue mode receives for nobody */
	uint64_t *bg_want;           /* background thread: pages asked for in a batch, not received yet (BATCH_END checks them) */

	/* --channels=1 (see "one shared connection" below) */
	bool shared;
	pthread_mutex_t send_lock;   /* both threads send on the shared connection */
	int shared_pipe[2];          /* background -> demand thread: struct shared_done records (not polled) */
	int shared_kick;             /* eventfd: a reconnection, the demand thread must send again (polled) */
	unsigned shared_gen;         /* connection generation, bumped by each reconnection (send_lock) */
	bool shared_down;            /* lost, being re-established by the background thread (send_lock) */
	atomic_uint shared_out;      /* demand requests sent on the current connection, not yet answered */

	/* install record and fault log.  The install times are a log of runs
	 * (ilog: consecutive pages installed with the same µs stamp, 12 bytes a
	 * run, appended by whichever thread installed them); inst_us is the
	 * per-page array built from it on the first pcb_pager_install_us call,
	 * after the threads are joined and the memory measured (analysis, not
	 * pager state) */
	struct pcb_inst_run *ilog;
	uint64_t ilog_cap;
	_Atomic uint64_t ilog_n;
	_Atomic uint64_t ilog_dropped;   /* runs that found the log full (never expected: cap = 2 x npages) */
	uint32_t *inst_us;
	uint8_t *inst_kind;
	struct pcb_fault_ev *fev;
	size_t nfev, capfev;
	/* bytes of fev and ilog mapped ahead of their writers (records_ahead):
	 * a record's first touch is never a page fault on the demand path */
	_Atomic uint64_t fev_mapped, ilog_mapped;

	/* counters written by one thread each, read after join or racily for progress */
	struct pcb_pager_stats st;
	_Atomic uint64_t t_complete;

	/* --pager=process (pagerproc.c): this struct and everything the loader
	 * reads are MAP_SHARED; pp is private to each process after the fork;
	 * the loader frees what it allocated before the fork through these copies */
	struct pcb_pp *pp;
	struct pcb_policy pol_saved;
	struct pcb_installer in_saved;
	uint8_t *rbuf_saved[2];
	void *mac_saved[2][2];        /* the connections' stream MAC contexts (loader heap) */
};


/* The zero-page variant of an install kind: ZERO_DEMAND, ZERO_BACKGROUND, ZERO_DRAIN
 * (not simply kind + 2: DRAIN + 2 is past the end of the list). */
static inline int zero_kind(int kind)
{
	return kind == PCB_INST_DRAIN ? PCB_INST_ZERO_DRAIN : kind + 2;
}

void set_fatal(struct pcb_pager *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mark_present(struct pcb_pager *p, uint64_t page);
void *page_addr(struct pcb_pager *p, uint64_t page);
void record_install(struct pcb_pager *p, uint64_t page, int kind, uint64_t now);
uint32_t install_stamp(const struct pcb_pager *p, uint64_t now);
void log_install_run(struct pcb_pager *p, uint64_t first, uint64_t n, uint32_t us);
int install(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now);
void huge_done(void *ctx, uint64_t first);
int huge_send(struct pcb_pager *p, uint64_t first);
int huge_request(struct pcb_pager *p, uint64_t first, uint64_t now, bool vcpu, bool *lost);
int huge_frame(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload);
void log_fault(struct pcb_pager *p, uint64_t now, uint64_t page, int vcpu, uint32_t outcome);
/* The fault and install logs' pages are mapped this many bytes at a time
 * ahead of their writers (common.c). */
#define RECORDS_AHEAD (64u * 1024)
void records_ahead(void *base, size_t len, _Atomic uint64_t *mapped, uint64_t end);
void records_map_from_here(struct pcb_pager *p);
int vcpu_of(struct pcb_pager *p, pid_t tid);
struct timeval io_timeval(uint64_t ns);
void signal_join(pthread_t th);
/* lanes.c: whether the region is sliced over a lane per vCPU (decided at creation), the
 * lanes' userfaultfds and connections (creation), the lanes' run (the demand thread), teardown */
unsigned lanes_wanted(const struct pcb_pager_cfg *cfg, const struct pcb_install_ops *ops);
int lanes_open(struct pcb_pager *p, const struct pcb_install_ops *ops, char *why, size_t whylen);
int lanes_connect(struct pcb_pager *p, char *why, size_t whylen);
void lanes_run(struct pcb_pager *p);
void lanes_unregister(struct pcb_pager *p);
void lanes_free(struct pcb_pager *p);
void lanes_chan_stats(const struct pcb_pager *p, struct pcb_chan_stats *d);
int install_st(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now, struct pcb_install_stats *st);
/* Where a demand reply's install is counted: the pager's own statistics (the demand and reply
 * threads) or a demand lane's, merged when it stops. */
struct reply_tally {
	uint64_t *pages, *zero, *eexist;
	struct pcb_hist *rtt, *service;
	struct pcb_install_stats *inst;
};
/* A PAGE or ZERO demand reply for page: installed, counted in t (round trip from t_req, service
 * from t_fault).  0, or -1 with fatal set. */
int install_reply(struct pcb_pager *p, uint64_t page, const struct pcb_hdr *h, const uint8_t *payload, uint64_t t_req,
		  uint64_t t_fault, const struct reply_tally *t);
/* An ERROR frame from the source: fatal, with its text sanitized. */
void source_error(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload);
int chan_connect_on(struct pcb_pager *p, struct pcb_conn *c, unsigned hello_ch, uint32_t flags, int timeout_ms, char *why,
		    size_t whylen);
int chan_recover_on(struct pcb_pager *p, struct pcb_conn *c, unsigned ch, bool refused, const char *reason);
int demand_send_req(struct pcb_pager *p, struct inflight *f);
int bg_send(struct pcb_pager *p, uint16_t type, uint64_t arg, const void *pl, uint32_t len);
int shared_post(struct pcb_pager *p, const struct shared_done *d);
int shared_demand_reply(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload);
int demand_shared_done(struct pcb_pager *p, uint64_t *last_rx, bool final);
void *demand_thread(void *arg);
bool chunk_mode(const struct pcb_pager *p);
void *inst_thread(void *arg);
void *bg_thread(void *arg);
int chan_connect(struct pcb_pager *p, unsigned ch, uint32_t flags, int timeout_ms, char *why, size_t whylen);
int chan_recover(struct pcb_pager *p, unsigned ch, const char *reason);
int demand_recover(struct pcb_pager *p);
int bg_recover(struct pcb_pager *p, const char *reason);

/* After ninfl changed (demand thread): publish it; when the last demand
 * request is answered, wake a background thread held back by it (a policy
 * with one transfer outstanding, background.c bg_held_back). */
static inline void infl_sync(struct pcb_pager *p)
{
	atomic_store_explicit(&p->infl_count, p->ninfl, memory_order_release);
	if (!p->ninfl && p->pol.ops->max_inflight == 1 && p->pol.ops->fault_waits_queued &&
	    atomic_load_explicit(&p->bg_waiting, memory_order_relaxed)) {
		pthread_mutex_lock(&p->lock);
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}
#endif
