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
#define PCB_STOP_SIGNAL SIGUSR2   /* interrupts the demand thread's blocking read() at stop */

struct inflight {
	uint64_t page;
	uint64_t t_fault, t_req;
	unsigned waiters;            /* registered vCPUs blocked on this page */
	unsigned gen;                /* --channels=1: connection generation it was sent on (0 = not sent) */
};

/* --channels=1: what the background thread tells the demand thread about a
 * demand reply it received and installed (or about a reconnection). */
enum { SHARED_DATA, SHARED_ZERO, SHARED_RACE, SHARED_RECONNECTED };
struct shared_done {
	uint64_t page;
	uint64_t t_rx, t_done;       /* reply received, page installed */
	uint32_t kind;               /* SHARED_* */
	uint32_t pad;
};

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
	pthread_t inst_th;
	bool inst_started;
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
	unsigned blocked;            /* registered vCPUs known to wait for an in-flight demand page */

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

	/* --channels=1 (see "one shared connection" below) */
	bool shared;
	pthread_mutex_t send_lock;   /* both threads send on the shared connection */
	int shared_pipe[2];          /* background -> demand thread: struct shared_done records (not polled) */
	int shared_kick;             /* eventfd: a reconnection, the demand thread must send again (polled) */
	unsigned shared_gen;         /* connection generation, bumped by each reconnection (send_lock) */
	bool shared_down;            /* lost, being re-established by the background thread (send_lock) */
	atomic_uint shared_out;      /* demand requests sent on the current connection, not yet answered */

	/* per-page install record and fault log */
	uint32_t *inst_us;
	uint8_t *inst_kind;
	struct pcb_fault_ev *fev;
	size_t nfev, capfev;

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
};

static void set_fatal(struct pcb_pager *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_fatal(struct pcb_pager *p, int code, const char *fmt, ...)
{
	pthread_mutex_lock(&p->lock);
	if (!atomic_load(&p->fatal)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->fatal_msg, sizeof(p->fatal_msg), fmt, ap);
		va_end(ap);
		atomic_store(&p->fatal, code);
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void mark_present(struct pcb_pager *p, uint64_t page)
{
	if (pcb_ps_set_present(&p->ps, page) && pcb_ps_complete(&p->ps)) {
		pthread_mutex_lock(&p->lock);
		atomic_store(&p->t_complete, pcb_now_ns());
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

static void *page_addr(struct pcb_pager *p, uint64_t page)
{
	return p->region + (page << PCB_PAGE_SHIFT);
}

/* Install one page (data == NULL: zero page).  kind is the PCB_INST_* for a
 * data page; the zero variant is kind + 2.  Returns 0, 1 on a lost race, <0 on error. */
/* The zero-page variant of an install kind: ZERO_DEMAND, ZERO_BACKGROUND, ZERO_DRAIN
 * (not simply kind + 2: DRAIN + 2 is past the end of the list). */
static inline int zero_kind(int kind)
{
	return kind == PCB_INST_DRAIN ? PCB_INST_ZERO_DRAIN : kind + 2;
}

static void record_install(struct pcb_pager *p, uint64_t page, int kind, uint64_t now)
{
	uint64_t us = (now - p->st.t_switchover_ns) / 1000 + 1;
	p->inst_us[page] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	p->inst_kind[page] = (uint8_t)kind;
}

/* Install one page (data == NULL: zero page) through the install path
 * (demand thread).  kind is the PCB_INST_* for a data page; the zero variant
 * is kind + 2.  Returns 0, 1 on a lost race (page already there, or being
 * installed by the background thread, which wakes), <0 on error. */
static int install(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now)
{
	int r = pcb_install_one(&p->in, page, data, &p->st.inst_demand);
	PCB_PROBE_INSTALLED(page, data ? kind : zero_kind(kind), r == 1 || r == 2 ? -EEXIST : r);
	if (p->cfg.huge) {
		/* the data is in; the thread completing the huge page marks it present (huge_done) */
		if (r == 0)
			p->inst_kind[page] = (uint8_t)(data ? kind : zero_kind(kind));
		return r == 2 ? 1 : r;
	}
	if (r == 2)
		return 1;   /* not present yet: the background thread owns it and marks it */
	if (r == 1) {
		mark_present(p, page);
		return 1;
	}
	if (r < 0)
		return r;
	*now = pcb_now_ns();
	record_install(p, page, data ? kind : zero_kind(kind), *now);
	mark_present(p, page);
	return 0;
}

/* Huge pages: a 2 MiB UFFDIO_COPY just made pages first..first+511 present
 * (demand or installer thread, whichever delivered the last sub-page). */
static void huge_done(void *ctx, uint64_t first)
{
	struct pcb_pager *p = ctx;
	uint64_t us = (pcb_now_ns() - p->st.t_switchover_ns) / 1000 + 1;
	atomic_fetch_add_explicit((_Atomic uint64_t *)&p->st.huge_installs, 1, memory_order_relaxed);
	for (uint64_t q = first; q < first + PCB_HUGE_SUBPAGES; q++) {
		p->inst_us[q] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		mark_present(p, q);
	}
}

/* Huge pages: a fault requests the sub-pages of its huge page that have not
 * arrived yet as one RANGES frame on the demand channel (arg = the huge
 * page's first sub-page); the source answers with RUN and ZERO frames and a
 * BATCH_END carrying the same arg.  One in-flight entry per huge page.
 * Returns 0 sent, 1 nothing left to request (the sub-page being filled now
 * completes the page and wakes), -1 send error. */
static int huge_send(struct pcb_pager *p, uint64_t first)
{
	struct pcb_range_wire w[PCB_HUGE_SUBPAGES / 2];   /* alternating gaps: at most 256 ranges */
	unsigned nr = 0;
	for (uint64_t q = first, end = first + PCB_HUGE_SUBPAGES; q < end;) {
		if (pcb_bit_test(p->in.filled, q)) {
			q++;
			continue;
		}
		uint64_t e = q + 1;
		while (e < end && !pcb_bit_test(p->in.filled, e))
			e++;
		w[nr++] = (struct pcb_range_wire){ htole64(q), htole64(e - q) };
		p->st.demand_pages_requested += e - q;
		q = e;
	}
	if (!nr)
		return 1;
	return pcb_conn_send(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_RANGES, first, w, (uint32_t)(nr * sizeof(w[0]))) < 0 ? -1 : 0;
}

static int huge_request(struct pcb_pager *p, uint64_t first, uint64_t now, bool vcpu, bool *lost)
{
	/* demanded: the background pull leaves these sub-pages alone from now on */
	for (uint64_t q = first + 1; q < first + PCB_HUGE_SUBPAGES; q++)
		pcb_bit_set(p->ps.demanded, q);
	if (p->ninfl == MAX_INFLIGHT) {
		set_fatal(p, PCB_EXIT_SOFTWARE, "more than %d demand requests outstanding", MAX_INFLIGHT);
		return -1;
	}
	PCB_PROBE_REQUEST(first, PCB_CHAN_DEMAND, PCB_HUGE_SUBPAGES);
	p->st.demand_requests++;
	int r = *lost ? 0 : huge_send(p, first);
	if (r == 1)
		return 0;
	p->infl[p->ninfl++] = (struct inflight){ first, now, now, vcpu, 0 };
	if (r < 0) {
		/* the request stays in infl[]: recovery sends it again */
		snprintf(p->loss_why, sizeof(p->loss_why), "sending a demand request failed: %s", strerror(errno));
		*lost = true;
	}
	return 0;
}

/* Huge pages: a RUN / ZERO / BATCH_END answering huge_request. */
static int huge_frame(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	uint64_t first = h->type == PCB_MSG_BATCH_END ? h->arg : h->arg & ~(uint64_t)(PCB_HUGE_SUBPAGES - 1);
	uint64_t n = h->type == PCB_MSG_RUN ? h->len / PCB_PAGE_SIZE : 1, now = pcb_now_ns();
	unsigned i;
	for (i = 0; i < p->ninfl; i++)
		if (p->infl[i].page == first)
			break;
	if (i == p->ninfl || (h->type != PCB_MSG_BATCH_END && h->arg + n > first + PCB_HUGE_SUBPAGES)) {
		p->chan[PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source sent %s %llu (%llu pages) that was not requested", pcb_msg_name(h->type),
			  (unsigned long long)h->arg, (unsigned long long)n);
		return -1;
	}
	if (h->type == PCB_MSG_BATCH_END) {
		struct inflight f = p->infl[i];
		p->infl[i] = p->infl[--p->ninfl];
		p->blocked -= f.waiters;
		pcb_hist_add(&p->st.demand_rtt, now - f.t_req);
		pcb_hist_add(&p->st.demand_service, now - f.t_fault);
		return 0;
	}
	PCB_PROBE_RECEIVED(h->arg, PCB_CHAN_DEMAND, h->type == PCB_MSG_ZERO);
	for (uint64_t k = 0; k < n; k++) {
		const uint8_t *d = h->type == PCB_MSG_RUN ? payload + (k << PCB_PAGE_SHIFT) : NULL;
		int r = install(p, h->arg + k, d, PCB_INST_DEMAND, &now);
		if (r < 0) {
			set_fatal(p, PCB_EXIT_OSERR, "installing page %llu failed: %s", (unsigned long long)(h->arg + k), strerror(-r));
			return -1;
		}
		if (r == 1)
			p->st.eexist_demand++;
		else if (d)
			p->st.pages_demand++;
		else
			p->st.zero_demand++;
	}
	return 0;
}

static void log_fault(struct pcb_pager *p, uint64_t now, uint64_t page, int vcpu, uint32_t outcome)
{
	if (p->nfev == p->capfev)
		return;   /* fixed capacity (pcb_pager_create); the log is best effort, counters stay exact */
	p->fev[p->nfev++] = (struct pcb_fault_ev){ now - p->st.t_switchover_ns, page, vcpu, outcome };
}

static int vcpu_of(struct pcb_pager *p, pid_t tid)
{
	for (unsigned i = 0; i < p->cfg.nvcpus; i++)
		if (p->vcpu_tid[i] == tid)
			return (int)i;
	return -1;
}

static int demand_recover(struct pcb_pager *p);
static int bg_recover(struct pcb_pager *p, const char *reason);

/* SO_RCVTIMEO / SO_SNDTIMEO value for --io-timeout. */
static struct timeval io_timeval(uint64_t ns)
{
	return (struct timeval){ .tv_sec = (time_t)(ns / PCB_NSEC_PER_SEC),
				 .tv_usec = (suseconds_t)(ns % PCB_NSEC_PER_SEC / 1000) };
}

/* ---- one shared connection (--channels=1) -----------------------------------
 * QEMU's post-copy before its preempt channel: one connection carries the
 * demand requests and the background batches, so a demand reply reaches the
 * destination only after the background data already queued ahead of it (the
 * source sends it at its next frame boundary; source/source.c).  The
 * connection is chan[PCB_CHAN_BACKGROUND] (HELLO channel PCB_CHAN_SHARED);
 * chan[PCB_CHAN_DEMAND] is not opened.
 *   - Both threads send on it, under send_lock (frames are never interleaved).
 *   - The background thread alone receives.  A reply to a demand request is
 *     a PAGE or ZERO frame flagged PCB_FRAME_URGENT: it installs the page at
 *     once (UFFDIO_COPY wakes the faulting vCPU, as the demand thread does
 *     with two channels; QEMU's listen thread does the same) and passes a
 *     shared_done record through shared_pipe to the demand thread, which owns
 *     the in-flight table, the counters and the latency histograms.  The
 *     demand thread does not poll that pipe (a wake-up per reply would cost
 *     the vCPUs CPU time): it takes the records whenever it wakes anyway, for
 *     the next fault or at the latest after 100 ms.
 *   - A lost connection is the background thread's to re-establish (the
 *     demand thread only notices that sending failed).  It marks the link
 *     down, reconnects, bumps shared_gen, sends a SHARED_RECONNECTED record
 *     and kicks shared_kick: the demand thread then sends again every in-flight request not
 *     sent on the new connection.  Replies received before the loss are
 *     recorded ahead of that record, so none is asked for twice.
 *   - At the end the background thread keeps receiving until every batch has
 *     ended and every demand request is answered, even once stop is asked
 *     (bounded by --io-timeout), so that the connection is at a frame boundary
 *     with nothing in flight when verification asks for digests on it. */

/* Demand thread: send the request of in-flight entry f.  Two channels: 0, or
 * -1 with errno (the caller recovers).  Shared: always 0; a request that could
 * not be sent is sent again after the reconnection the background thread
 * makes (it counts as outstanding, so a silent source is detected). */
static int demand_send_req(struct pcb_pager *p, struct inflight *f)
{
	if (!p->shared)
		return pcb_conn_send(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_REQ, f->page, NULL, 0);
	pthread_mutex_lock(&p->send_lock);
	if (p->shared_down) {
		f->gen = 0;
	} else {
		f->gen = p->shared_gen;
		atomic_fetch_add(&p->shared_out, 1);
		pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], PCB_MSG_REQ, f->page, NULL, 0);
	}
	pthread_mutex_unlock(&p->send_lock);
	return 0;
}

/* Background thread: send a frame on its connection (shared: under send_lock). */
static int bg_send(struct pcb_pager *p, uint16_t type, uint64_t arg, const void *pl, uint32_t len)
{
	if (!p->shared)
		return pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], type, arg, pl, len);
	pthread_mutex_lock(&p->send_lock);
	int r = pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], type, arg, pl, len);
	pthread_mutex_unlock(&p->send_lock);
	return r;
}

static int shared_post(struct pcb_pager *p, const struct shared_done *d)
{
	for (;;) {
		ssize_t w = write(p->shared_pipe[1], d, sizeof(*d));
		if (w == (ssize_t)sizeof(*d)) {
			uint64_t one = 1;
			if (d->kind == SHARED_RECONNECTED && write(p->shared_kick, &one, sizeof(one)) < 0) {
				/* the counter cannot overflow: it is read at each wake-up */
			}
			return 0;
		}
		if (w < 0 && errno == EINTR)
			continue;
		set_fatal(p, PCB_EXIT_OSERR, "passing a demand reply to the demand thread: %s", w < 0 ? strerror(errno) : "short write");
		return -1;
	}
}

/* Background thread: a PAGE / ZERO flagged urgent arrived on the shared connection. */
static int install(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now);
static int shared_demand_reply(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	uint64_t page = h->arg, t_rx = pcb_now_ns(), now = t_rx;
	bool zero = h->type == PCB_MSG_ZERO;
	unsigned out = atomic_load(&p->shared_out);
	if (!pcb_bit_test(p->ps.demanded, page) || !out) {
		p->chan[PCB_CHAN_BACKGROUND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source sent demand reply for page %llu that was not requested",
			  (unsigned long long)page);
		return -1;
	}
	atomic_fetch_sub(&p->shared_out, 1);
	p->st.shared_demand_frames++;
	PCB_PROBE_RECEIVED(page, PCB_CHAN_DEMAND, zero);
	/* every page present: the region may be unregistered any moment now */
	int r = pcb_ps_complete(&p->ps) ? 1 : install(p, page, zero ? NULL : payload, PCB_INST_DEMAND, &now);
	if (r < 0) {
		set_fatal(p, PCB_EXIT_OSERR, "installing page %llu failed: %s", (unsigned long long)page, strerror(-r));
		return -1;
	}
	struct shared_done d = { page, t_rx, r == 1 ? pcb_now_ns() : now,
				 r == 1 ? SHARED_RACE : zero ? SHARED_ZERO : SHARED_DATA, 0 };
	return shared_post(p, &d);
}

/* ---- demand thread ---------------------------------------------------------- */

static int demand_handle_faults(struct pcb_pager *p)
{
	struct uffd_msg msgs[UFFD_MSG_BATCH];
	ssize_t n = read(p->uffd, msgs, sizeof(msgs));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		set_fatal(p, PCB_EXIT_OSERR, "read(userfaultfd): %s", strerror(errno));
		return -1;
	}
	uint64_t now = pcb_now_ns();
	bool lost = false;
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(struct uffd_msg); i++) {
		struct uffd_msg *m = &msgs[i];
		if (m->event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t addr = m->arg.pagefault.address;
		uint64_t page = (addr - (uintptr_t)p->region) >> PCB_PAGE_SHIFT;
		if (p->cfg.huge)
			page &= ~(uint64_t)(PCB_HUGE_SUBPAGES - 1);   /* the huge page's first sub-page */
		pid_t tid = (pid_t)m->arg.pagefault.feat.ptid;
		PCB_PROBE_FAULT(addr, tid, page);
		p->st.faults++;
		int v = vcpu_of(p, tid);
		if (v >= 0)
			atomic_fetch_add_explicit(&p->vcpu_faults[v], 1, memory_order_release);
		else
			p->st.faults_unattributed++;
		if (page >= p->cfg.npages)
			continue;   /* cannot happen: only the region is registered */
		if (p->pol.ops->on_fault)
			p->pol.ops->on_fault(&p->pol, page, now);
		/* demanded before present (fence between): a background install that
		 * did not wake (batched, DONTWAKE) tests demanded after marking the
		 * page present, so one of the two sides always wakes the vCPU */
		bool first = pcb_bit_set(p->ps.demanded, page);
		atomic_thread_fence(memory_order_seq_cst);
		if (pcb_ps_present(&p->ps, page)) {
			log_fault(p, now, page, v, 1);
			p->st.faults_present++;
			pcb_uffd_wake(p->uffd, page_addr(p, page), p->cfg.huge ? PCB_HUGE_SIZE : PCB_PAGE_SIZE);
			continue;
		}
		if (!first) {
			/* already requested by another vCPU's fault: the install wakes everyone */
			for (unsigned k = 0; v >= 0 && k < p->ninfl; k++)
				if (p->infl[k].page == page) {
					p->infl[k].waiters++;
					p->blocked++;
					break;
				}
			log_fault(p, now, page, v, 2);
			p->st.faults_inflight++;
			continue;
		}
		if (p->cfg.huge) {
			log_fault(p, now, page, v, 0);
			p->blocked += v >= 0;
			if (huge_request(p, page, now, v >= 0, &lost) < 0)
				return -1;
			continue;
		}
		if (p->ninfl == MAX_INFLIGHT) {
			set_fatal(p, PCB_EXIT_SOFTWARE, "more than %d demand requests outstanding", MAX_INFLIGHT);
			return -1;
		}
		log_fault(p, now, page, v, 0);
		p->infl[p->ninfl++] = (struct inflight){ page, now, now, v >= 0, 0 };
		p->blocked += v >= 0;
		PCB_PROBE_REQUEST(page, PCB_CHAN_DEMAND, 1);
		p->st.demand_requests++;
		if (!lost && demand_send_req(p, &p->infl[p->ninfl - 1]) < 0) {
			/* the request stays in infl[]: recovery sends it again; the other messages
			 * of this read are still recorded (the kernel will not deliver them again) */
			snprintf(p->loss_why, sizeof(p->loss_why), "sending a demand request failed: %s", strerror(errno));
			lost = true;
		}
	}
	/* a background policy may want to react to the faults; otherwise waking
	 * the idle background thread would only cost the vCPU a context switch */
	if (p->pol.ops->background && atomic_load_explicit(&p->bg_waiting, memory_order_relaxed)) {
		pthread_mutex_lock(&p->lock);
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	return lost ? 1 : 0;
}

static int demand_handle_frame(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	if (h->type == PCB_MSG_ERROR) {
		set_fatal(p, PCB_EXIT_PROTOCOL, "source reported an error: %.*s", (int)h->len, (const char *)payload);
		return -1;
	}
	if (p->cfg.huge && (h->type == PCB_MSG_RUN || h->type == PCB_MSG_ZERO || h->type == PCB_MSG_BATCH_END))
		return huge_frame(p, h, payload);
	if (h->type != PCB_MSG_PAGE && h->type != PCB_MSG_ZERO) {
		p->chan[PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "unexpected %s frame on the demand channel", pcb_msg_name(h->type));
		return -1;
	}
	uint64_t page = h->arg, now = pcb_now_ns();
	unsigned i;
	for (i = 0; i < p->ninfl; i++)
		if (p->infl[i].page == page)
			break;
	if (i == p->ninfl) {
		p->chan[PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source sent page %llu that was not requested", (unsigned long long)page);
		return -1;
	}
	struct inflight f = p->infl[i];
	p->infl[i] = p->infl[--p->ninfl];
	p->blocked -= f.waiters;
	PCB_PROBE_RECEIVED(page, PCB_CHAN_DEMAND, h->type == PCB_MSG_ZERO);
	pcb_hist_add(&p->st.demand_rtt, now - f.t_req);
	int r = install(p, page, h->type == PCB_MSG_PAGE ? payload : NULL, PCB_INST_DEMAND, &now);
	if (r < 0) {
		set_fatal(p, PCB_EXIT_OSERR, "installing page %llu failed: %s", (unsigned long long)page, strerror(-r));
		return -1;
	}
	if (r == 1)
		p->st.eexist_demand++;
	else if (h->type == PCB_MSG_PAGE)
		p->st.pages_demand++;
	else
		p->st.zero_demand++;
	pcb_hist_add(&p->st.demand_service, now - f.t_fault);
	return 0;
}

/* Shared connection: after a reconnection, send again every in-flight request
 * that was not sent on the new connection (like demand_recover). */
static void demand_shared_resend(struct pcb_pager *p)
{
	pthread_mutex_lock(&p->send_lock);
	unsigned gen = p->shared_gen;
	pthread_mutex_unlock(&p->send_lock);
	unsigned i = 0;
	while (i < p->ninfl) {
		struct inflight *f = &p->infl[i];
		if (f->gen == gen) {   /* sent on the new connection: its reply is on the way */
			i++;
			continue;
		}
		if (pcb_ps_present(&p->ps, f->page)) {
			pcb_uffd_wake(p->uffd, page_addr(p, f->page), PCB_PAGE_SIZE);
			p->blocked -= f->waiters;
			*f = p->infl[--p->ninfl];
			continue;
		}
		f->t_req = pcb_now_ns();
		demand_send_req(p, f);
		pthread_mutex_lock(&p->rec_lock);
		p->st.rec.demand_rerequested++;
		pthread_mutex_unlock(&p->rec_lock);
		i++;
	}
}

/* Shared connection: take the background thread's records of demand replies
 * (and of a reconnection).  Returns 1 if any arrived, 0 if none, -1 when the
 * thread must stop. */
static int demand_shared_done(struct pcb_pager *p, uint64_t *last_rx, bool final)
{
	struct shared_done d[64];
	uint64_t kicks;
	if (read(p->shared_kick, &kicks, sizeof(kicks)) < 0) {
		/* EAGAIN: no reconnection since the last call */
	}
	bool resend = false, any = false;
	ssize_t n;
	while ((n = read(p->shared_pipe[0], d, sizeof(d))) > 0) {
		any = true;
		*last_rx = pcb_now_ns();
		for (size_t k = 0; k < (size_t)n / sizeof(d[0]); k++) {
			if (d[k].kind == SHARED_RECONNECTED) {
				resend = true;
				continue;
			}
			unsigned i;
			for (i = 0; i < p->ninfl; i++)
				if (p->infl[i].page == d[k].page)
					break;
			if (i == p->ninfl) {
				set_fatal(p, PCB_EXIT_PROTOCOL, "source sent page %llu that was not requested (or twice)",
					  (unsigned long long)d[k].page);
				return -1;
			}
			struct inflight f = p->infl[i];
			p->infl[i] = p->infl[--p->ninfl];
			p->blocked -= f.waiters;
			pcb_hist_add(&p->st.demand_rtt, d[k].t_rx - f.t_req);
			pcb_hist_add(&p->st.demand_service, d[k].t_done - f.t_fault);
			if (d[k].kind == SHARED_RACE)
				p->st.eexist_demand++;
			else if (d[k].kind == SHARED_DATA)
				p->st.pages_demand++;
			else
				p->st.zero_demand++;
		}
	}
	if (resend && !final)
		demand_shared_resend(p);
	return any;
}

/* Read what the demand socket holds and handle every complete frame.
 * Returns 1 if bytes arrived, 0 if none were available, 2 after the channel
 * was lost and recovered, -1 when the thread must stop (fatal already set). */
static int demand_receive(struct pcb_pager *p, struct pcb_conn *c, uint64_t *last_rx)
{
	int r = pcb_conn_fill(c);
	if (r == PCB_RX_EOF || (r == PCB_RX_ERR && errno != EAGAIN && errno != EINTR)) {
		snprintf(p->loss_why, sizeof(p->loss_why), "demand channel %s",
			 r == PCB_RX_EOF ? "closed by the source" : strerror(errno));
		if (demand_recover(p) < 0)
			return -1;
		*last_rx = pcb_now_ns();
		return 2;
	}
	if (r <= 0)
		return 0;
	*last_rx = pcb_now_ns();
	struct pcb_hdr h;
	const uint8_t *pl;
	while ((r = pcb_conn_parse(c, &h, &pl)) == PCB_RX_FRAME)
		if (demand_handle_frame(p, &h, pl) < 0)
			return -1;
	if (r == PCB_RX_BAD) {
		set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (demand channel): %s", c->err);
		return -1;
	}
	return 1;
}

static void *demand_thread(void *arg)
{
	struct pcb_pager *p = arg;
	struct pcb_conn *c = &p->chan[PCB_CHAN_DEMAND];
	struct pollfd pfd[3] = {
		{ .fd = p->uffd, .events = POLLIN },
		{ .fd = c->fd, .events = POLLIN },
		{ .fd = p->stop_pipe[0], .events = POLLIN },
	};
	uint64_t last_rx = pcb_now_ns();
	if (p->cfg.pin_demand)
		pcb_pin_self((int)p->cfg.pin_demand - 1);
	/* Fast path: when nothing but demand faults can resolve a fault (no
	 * background pull, no drain) and every vCPU is blocked on an in-flight
	 * page, no new fault can arrive before the answer: wait for it in a plain
	 * blocking read (SO_RCVTIMEO bounds it), like the bare handler does,
	 * instead of poll() + read(). */
	bool fast_ok = !p->pol.ops->background && p->cfg.nvcpus > 0 && !p->shared;
	if (fast_ok) {
		struct timeval tv = { 0, 100000 };
		fast_ok = setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
	}
	p->demand_fast = fast_ok;   /* a reconnection sets the timeout on the new socket */
	/* the uffd's file status flags, kept here: each fcntl() is a system call
	 * (~1.1 µs on this nested machine), and the fast path must not pay for
	 * switching the uffd between blocking and not on every fault */
	int uffd_fl = fcntl(p->uffd, F_GETFL);
	bool uffd_blocking = !(uffd_fl & O_NONBLOCK);
	for (;;) {
		if (atomic_load_explicit(&p->stopping, memory_order_relaxed))
			break;
		if (fast_ok && !p->ninfl) {
			/* nothing in flight: nothing can arrive on the demand socket but a
			 * reply, so wait for the next fault in a blocking read() of the
			 * uffd (stop_threads interrupts it with PCB_STOP_SIGNAL) */
			if (!uffd_blocking) {
				uffd_fl &= ~O_NONBLOCK;
				fcntl(p->uffd, F_SETFL, uffd_fl);
				uffd_blocking = true;
			}
			int fr = demand_handle_faults(p);
			if (fr < 0)
				break;
			if (fr == 1) {
				if (demand_recover(p) < 0)
					break;
				last_rx = pcb_now_ns();
			}
			continue;
		}
		if (fast_ok && p->ninfl && p->blocked >= p->cfg.nvcpus && !atomic_load_explicit(&p->drain, memory_order_relaxed) &&
		    !atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
			int rr = demand_receive(p, c, &last_rx);
			if (rr < 0)
				break;
			if (rr > 0)
				continue;
		}
		if (uffd_blocking) {
			/* poll() may report a fault that a concurrent install resolves
			 * before we read it: the read below must not block (the fast
			 * receive above does not read the uffd: it switches only here) */
			uffd_fl |= O_NONBLOCK;
			fcntl(p->uffd, F_SETFL, uffd_fl);
			uffd_blocking = false;
		}
		int timeout = p->ninfl ? 100 : 1000;
		pfd[1].fd = p->shared ? p->shared_kick : c->fd;   /* a reconnection replaces the socket */
		int n = poll(pfd, 3, timeout);
		if (n < 0 && errno != EINTR) {
			set_fatal(p, PCB_EXIT_OSERR, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[2].revents)
			break;
		/* shared: the replies received since the last wake-up leave the in-flight table
		 * before new faults are looked up in it */
		if (p->shared && demand_shared_done(p, &last_rx, false) < 0)
			break;
		if (pfd[0].revents & POLLIN) {
			int fr = demand_handle_faults(p);
			if (fr < 0)
				break;
			if (fr == 1) {
				if (demand_recover(p) < 0)
					break;
				last_rx = pcb_now_ns();
				continue;
			}
		}
		if (pfd[1].revents && !p->shared) {
			int rr = demand_receive(p, c, &last_rx);
			if (rr < 0)
				break;
			if (rr == 2)
				continue;
		}
		if (p->ninfl && !p->shared) {   /* shared: the background thread watches the connection */
			uint64_t now = pcb_now_ns(), oldest = now;
			for (unsigned i = 0; i < p->ninfl; i++)
				if (p->infl[i].t_req < oldest)
					oldest = p->infl[i].t_req;
			if (now - oldest > p->cfg.io_timeout_ns && now - last_rx > p->cfg.io_timeout_ns) {
				snprintf(p->loss_why, sizeof(p->loss_why), "the source has not answered a demand request for %.1f s",
					 pcb_ns_to_s(now - oldest));
				if (demand_recover(p) < 0)
					break;
				last_rx = pcb_now_ns();
			}
		}
	}
	if (fast_ok) {   /* back to the --io-timeout bound chan_connect set: verification relies on it */
		struct timeval tv = io_timeval(p->cfg.io_timeout_ns);
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	p->st.demand_cpu = sched_getcpu();
	return NULL;
}

/* ---- background thread ---------------------------------------------------- */

/* ---- background receive: RUN payloads land straight in staging / page cache --- */

#define BG_RX_CHUNK 8192   /* receive-buffer reads outside a RUN payload: keeps what must be copied small */

/* Wait until the background socket is readable; 0, -1 on stop / fatal, -2
 * when the connection is lost (source silent for io_timeout; reason in
 * bg_loss_why).  The receive helpers below pass -1 / -2 on. */
static void chunk_push(struct pcb_pager *p);
static void seg_push(struct pcb_pager *p);
static int bg_wait(struct pcb_pager *p, uint64_t start, bool may_push)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	if (may_push)
		seg_push(p);   /* copy: nothing more to read now: install what was gathered */
	if (may_push && p->chunk_open) {
		/* between frames with a chunk half assembled: if nothing more comes within
		 * 1 ms, install what is there rather than hold the pages back */
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (poll(&pfd, 1, 1) == 0)
			chunk_push(p);
		else
			return 0;
	}
	for (;;) {
		/* shared connection, every page present: what is still owed is received even after
		 * stop is asked (see "one shared connection"); --io-timeout bounds it */
		bool finishing = p->shared && pcb_ps_complete(&p->ps) && !atomic_load(&p->fatal);
		struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN },
					 { .fd = p->stop_pipe[0], .events = finishing ? 0 : POLLIN } };
		int n = poll(pfd, 2, 100);
		if (n < 0 && errno != EINTR) {
			set_fatal(p, PCB_EXIT_OSERR, "poll: %s", strerror(errno));
			return -1;
		}
		if (pfd[1].revents)
			return -1;
		if (pfd[0].revents)
			return 0;
		if (pcb_now_ns() - start > p->cfg.io_timeout_ns) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "the source has not sent a background page for %.1f s",
				 pcb_ns_to_s(pcb_now_ns() - start));
			return -2;
		}
	}
}

/* One non-blocking receive of iov (waiting when nothing is there).  Returns
 * bytes (>0), -1 (fatal set, or stop) or -2 (connection lost). */
static ssize_t bg_recvmsg(struct pcb_pager *p, struct iovec *iov, int niov, bool may_push)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	uint64_t start = pcb_now_ns();
	for (;;) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		ssize_t r = recvmsg(c->fd, &m, MSG_DONTWAIT);
		if (r > 0) {
			c->bytes_rx += (uint64_t)r;
			p->st.bg_rx_ns += pcb_now_ns() - start;
			return r;
		}
		if (r == 0) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "%s channel closed by the source", p->shared ? "shared" : "background");
			return -2;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "%s channel %s", p->shared ? "shared" : "background", strerror(errno));
			return -2;
		}
		int w = bg_wait(p, start, may_push);
		if (w < 0)
			return w;
	}
}

static int bg_fill(struct pcb_pager *p)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
	} else if (c->rcap - c->rlen < BG_RX_CHUNK) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	size_t room = c->rcap - c->rlen;
	struct iovec v = { c->rbuf + c->rlen, room < BG_RX_CHUNK ? room : BG_RX_CHUNK };
	ssize_t r = bg_recvmsg(p, &v, 1, true);
	if (r < 0)
		return (int)r;
	c->rlen += (size_t)r;
	return 0;
}

/* Next frame on the background channel.  A RUN frame is returned with its
 * header NOT consumed and *pl NULL: bg_take_run() receives its payload. */
static int bg_next(struct pcb_pager *p, struct pcb_hdr *h, const uint8_t **pl)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	for (;;) {
		size_t avail = c->rlen - c->rpos;
		if (avail >= PCB_HDR_SIZE) {
			pcb_hdr_decode(c->rbuf + c->rpos, h);
			if (pcb_proto_validate(h, c->npages, c->err, sizeof(c->err)) < 0) {
				c->bad_frames++;
				set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (%s channel): %s", p->shared ? "shared" : "background", c->err);
				return -1;
			}
			if (h->type == PCB_MSG_RUN) {
				*pl = NULL;
				return 0;
			}
			if (avail >= PCB_HDR_SIZE + (size_t)h->len) {
				*pl = c->rbuf + c->rpos + PCB_HDR_SIZE;
				c->rpos += PCB_HDR_SIZE + h->len;
				c->frames_rx++;
				return 0;
			}
		}
		int f = bg_fill(p);
		if (f < 0)
			return f;
	}
}

/* Receive the payload of the RUN frame at the head of the buffer into iov:
 * bytes already buffered are copied, the rest is read straight into iov
 * (with the following bytes of the stream into the receive buffer). */
static int bg_take_run(struct pcb_pager *p, const struct pcb_hdr *h, struct iovec *iov, int niov)
{
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	struct pcb_install_stats *st = &p->st.inst_bg;
	size_t need = h->len;
	int k = 0;
	size_t off = 0;
	c->rpos += PCB_HDR_SIZE;
	c->frames_rx++;
	size_t have = c->rlen - c->rpos < need ? c->rlen - c->rpos : need;
	const uint8_t *src = c->rbuf + c->rpos;
	st->rx_copied_bytes += have;
	c->rpos += have;
	need -= have;
	while (have) {
		size_t n = iov[k].iov_len - off < have ? iov[k].iov_len - off : have;
		memcpy((uint8_t *)iov[k].iov_base + off, src, n);
		src += n;
		have -= n;
		off += n;
		if (off == iov[k].iov_len) {
			k++;
			off = 0;
		}
	}
	while (need) {
		if (c->rpos == c->rlen)
			c->rpos = c->rlen = 0;
		struct iovec v[PCB_MAX_RUN_PAGES + 1];
		int nv = 0;
		size_t left = need;
		for (int i = k; i < niov && left; i++) {
			size_t o = i == k ? off : 0;
			size_t n = iov[i].iov_len - o < left ? iov[i].iov_len - o : left;
			v[nv++] = (struct iovec){ (uint8_t *)iov[i].iov_base + o, n };
			left -= n;
		}
		size_t room = c->rcap - c->rlen;
		if (room >= PCB_HDR_SIZE)
			v[nv++] = (struct iovec){ c->rbuf + c->rlen, room < BG_RX_CHUNK ? room : BG_RX_CHUNK };
		ssize_t r = bg_recvmsg(p, v, nv, false);
		if (r < 0)
			return (int)r;
		size_t direct = (size_t)r < need ? (size_t)r : need;
		st->rx_direct_bytes += direct;
		need -= direct;
		c->rlen += (size_t)r - direct;
		while (direct) {
			size_t n = iov[k].iov_len - off < direct ? iov[k].iov_len - off : direct;
			direct -= n;
			off += n;
			if (off == iov[k].iov_len) {
				k++;
				off = 0;
			}
		}
	}
	return 0;
}

struct bg_ctx {
	struct pcb_pager *p;
	bool drain, zero;
	uint64_t now;
	const struct pcb_install_job *job;   /* a chunk: which of its pages are zero */
};

/* Called by the install path for every background page it resolved. */
static void bg_installed(void *vctx, uint64_t page, int res)
{
	struct bg_ctx *x = vctx;
	struct pcb_pager *p = x->p;
	int kind = x->drain ? PCB_INST_DRAIN : PCB_INST_BACKGROUND;
	if (x->zero)
		kind = zero_kind(kind);
	PCB_PROBE_INSTALLED(page, kind, res ? -EEXIST : 0);
	if (res == 0) {
		if (!x->now || !(page & 15))
			x->now = pcb_now_ns();
		if (!p->st.t_bg_first_ns)
			p->st.t_bg_first_ns = x->now;
		p->st.t_bg_last_ns = x->now;
		if (p->cfg.huge)
			p->inst_kind[page] = (uint8_t)kind;   /* present (and timed) when its huge page is installed */
		else
			record_install(p, page, kind, x->now);
		if (x->zero)
			(*(x->drain ? &p->st.zero_drain : &p->st.zero_background))++;
		else
			(*(x->drain ? &p->st.pages_drain : &p->st.pages_background))++;
		if (!p->cfg.huge)
			mark_present(p, page);
		return;
	}
	p->st.eexist_background++;
	if (res == 1)
		mark_present(p, page);   /* the PTE is there; res 2: the demand thread owns it and marks it */
}

static void bg_chunk_installed(void *vctx, uint64_t page, int res)
{
	struct bg_ctx *x = vctx;
	unsigned i = (unsigned)(page - x->job->page);
	x->zero = x->job->zmask[i >> 6] >> (i & 63) & 1;
	bg_installed(vctx, page, res);
}

/* Queue a run of zero pages for the installer thread. */
static int bg_flush_zero(struct pcb_pager *p, uint64_t *zfirst, unsigned *zn, bool drain)
{
	if (!*zn)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	struct pcb_install_job j = { .page = *zfirst, .n = *zn, .slot = (unsigned)slot, .zero = true, .drain = drain };
	pcb_iq_push(&p->iq, &j);
	*zn = 0;
	return 0;
}

/* ---- copy: back-to-back frames gathered into one installer job (see struct pcb_pager) ---- */

static bool seg_mode(const struct pcb_pager *p)
{
	return (p->in.mode == PCB_INSTALL_COPY || p->in.mode == PCB_INSTALL_CONTINUE) && !p->cfg.huge;
}

/* continue: the ownership bits of a run (bit 0 = its first page) into / out
 * of the job's bits, which number the job's data pages in order */
static void owned_put(uint64_t *job, unsigned at, const uint64_t *run, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (run[i >> 6] >> (i & 63) & 1)
			job[(at + i) >> 6] |= 1ull << ((at + i) & 63);
}

static void owned_get(uint64_t *run, const uint64_t *job, unsigned at, unsigned n)
{
	memset(run, 0, sizeof(uint64_t) * ((PCB_MAX_RUN_PAGES + 63) / 64));
	for (unsigned i = 0; i < n; i++)
		if (job[(at + i) >> 6] >> ((at + i) & 63) & 1)
			run[i >> 6] |= 1ull << (i & 63);
}

static void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j);

static void seg_push(struct pcb_pager *p)
{
	if (!p->sj_open)
		return;
	p->sj_open = false;
	pcb_iq_push(&p->iq, &p->sj);
}

/* Make room in the open job for a segment of `data` staging pages (pushing
 * the job first when it is full or for another kind of batch).  0, or -1 on stop. */
static int seg_room(struct pcb_pager *p, unsigned data, bool drain)
{
	if (p->sj_open && (p->sj.nseg == PCB_JOB_SEGS || p->sj_used + data > PCB_MAX_RUN_PAGES || p->sj.drain != drain))
		seg_push(p);
	if (p->sj_open)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	p->sj.nseg = 0;
	memset(p->sj.owned, 0, sizeof(p->sj.owned));
	p->sj.slot = (unsigned)slot;
	p->sj.drain = drain;
	p->sj.chunk = p->sj.zero = false;
	p->sj_used = 0;
	p->sj_open = true;
	return 0;
}

/* A RUN frame received straight into the open job's staging slot. 0, -1, -2 (lost). */
static int bg_seg_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	unsigned n = h->len / PCB_PAGE_SIZE;
	const struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	/* on an emulated link a frame's payload arrives at the link's pace: install what
	 * was gathered before waiting for it (on loopback the next frame is already there) */
	if (p->sj_open && p->cfg.link_bps && c->rlen - c->rpos < PCB_HDR_SIZE + (size_t)h->len)
		seg_push(p);
	if (seg_room(p, n, drain) < 0)
		return -1;
	int rr;
	if (p->in.mode == PCB_INSTALL_CONTINUE) {
		/* straight into the page cache, claiming each page (a page the demand
		 * thread owns goes to scratch) */
		struct pcb_install_job run = { .page = h->arg, .n = n };
		struct iovec iov[PCB_MAX_RUN_PAGES];
		int niov = pcb_install_rx_iov(&p->in, p->sj.slot, h->arg, n, iov, PCB_MAX_RUN_PAGES, run.owned);
		rr = bg_take_run(p, h, iov, niov);
		if (rr < 0) {
			bg_release_claims(p, &run);   /* asked for again: give the claims back */
			return rr;
		}
		owned_put(p->sj.owned, p->sj_used, run.owned, n);
	} else {
		struct iovec iov = { pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT),
				     (size_t)n << PCB_PAGE_SHIFT };
		rr = bg_take_run(p, h, &iov, 1);
		if (rr < 0)
			return rr;   /* a run cut short is not installed: it is asked for again */
	}
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ h->arg, p->sj_used, n, false };
	p->sj_used += n;
	for (unsigned i = 0; i < n; i++)
		PCB_PROBE_RECEIVED(h->arg + i, PCB_CHAN_BACKGROUND, 0);
	return 0;
}

/* A ZERO frame (data NULL) or a single PAGE. 0, or -1 on stop. */
static int bg_seg_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	struct pcb_install_seg *last = p->sj_open && p->sj.nseg ? &p->sj.seg[p->sj.nseg - 1] : NULL;
	if (!data && last && last->zero && last->page + last->n == pg && p->sj.drain == drain) {
		last->n++;   /* a run of ZERO frames: one ZEROPAGE call */
		return 0;
	}
	if (seg_room(p, data ? 1 : 0, drain) < 0)
		return -1;
	if (data && p->in.mode == PCB_INSTALL_CONTINUE) {
		struct iovec iov[1];
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		pcb_install_rx_iov(&p->in, p->sj.slot, pg, 1, iov, 1, own);
		memcpy(iov[0].iov_base, data, PCB_PAGE_SIZE);
		owned_put(p->sj.owned, p->sj_used, own, 1);
	} else if (data) {
		memcpy(pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	}
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ pg, data ? p->sj_used : 0, 1, !data };
	p->sj_used += data ? 1 : 0;
	return 0;
}

/* ---- move: background pages assembled in 2 MiB chunks (see struct pcb_pager) ---- */

static bool chunk_mode(const struct pcb_pager *p)
{
	return p->in.mode == PCB_INSTALL_MOVE && !p->cfg.huge;
}

static void chunk_push(struct pcb_pager *p)
{
	if (!p->chunk_open)
		return;
	p->chunk_open = false;
	pcb_iq_push(&p->iq, &p->chunk);
}

/* Start chunk job j for the chunk holding page pg, in the slot `ahead` jobs
 * after the next one pushed.  0, or -1 on stop. */
static int chunk_start(struct pcb_pager *p, struct pcb_install_job *j, uint64_t pg, bool drain, unsigned ahead)
{
	int slot = pcb_iq_reserve_ahead(&p->iq, ahead, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	uint64_t first = pg - pg % PCB_CHUNK_PAGES;
	memset(j, 0, sizeof(*j));
	j->page = first;
	j->n = (unsigned)(p->cfg.npages - first < PCB_CHUNK_PAGES ? p->cfg.npages - first : PCB_CHUNK_PAGES);
	j->slot = (unsigned)slot;
	j->drain = drain;
	j->chunk = true;
	return 0;
}

/* Make the open chunk the one holding page pg (pushing another one first). */
static int chunk_for(struct pcb_pager *p, uint64_t pg, bool drain)
{
	if (p->chunk_open && (pg - p->chunk.page >= PCB_CHUNK_PAGES || pg < p->chunk.page || drain != p->chunk.drain))
		chunk_push(p);
	if (p->chunk_open)
		return 0;
	if (chunk_start(p, &p->chunk, pg, drain, 0) < 0)
		return -1;
	p->chunk_open = true;
	return 0;
}

static void chunk_mark(struct pcb_install_job *j, uint64_t pg, bool zero)
{
	unsigned i = (unsigned)(pg - j->page);
	j->have[i >> 6] |= 1ull << (i & 63);
	if (zero)
		j->zmask[i >> 6] |= 1ull << (i & 63);
}

/* Push the open chunk once every page of it has arrived. */
static void chunk_push_if_whole(struct pcb_pager *p)
{
	unsigned got = 0;
	for (unsigned i = 0; i < PCB_CHUNK_WORDS; i++)
		got += (unsigned)__builtin_popcountll(p->chunk.have[i]);
	if (got == p->chunk.n)
		chunk_push(p);
}

/* A RUN frame (header at the head of the receive buffer) received straight
 * into the staging chunk(s) of its pages: at most two, as a run has at most
 * PCB_MAX_RUN_PAGES pages.  0, -1 (stop / fatal) or -2 (connection lost). */
static int bg_chunk_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	uint64_t first = h->arg;
	unsigned n = h->len / PCB_PAGE_SIZE;
	if (chunk_for(p, first, drain) < 0)
		return -1;
	uint64_t end0 = p->chunk.page + PCB_CHUNK_PAGES;
	unsigned n0 = first + n <= end0 ? n : (unsigned)(end0 - first);
	struct iovec iov[2] = { { pcb_install_slot_buf(&p->in, p->chunk.slot) + ((first - p->chunk.page) << PCB_PAGE_SHIFT),
				  (size_t)n0 << PCB_PAGE_SHIFT } };
	int niov = 1;
	if (n0 < n) {
		if (chunk_start(p, &p->chunk_next, end0, drain, 1) < 0)
			return -1;
		iov[1] = (struct iovec){ pcb_install_slot_buf(&p->in, p->chunk_next.slot), (size_t)(n - n0) << PCB_PAGE_SHIFT };
		niov = 2;
	}
	int rr = bg_take_run(p, h, iov, niov);
	if (rr == 0) {
		for (unsigned i = 0; i < n0; i++) {
			chunk_mark(&p->chunk, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
		for (unsigned i = n0; i < n; i++) {
			chunk_mark(&p->chunk_next, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
	}
	/* a run cut short is not marked: the pages are asked for again (the chunks
	 * are still pushed, so their slots get fresh memory) */
	if (niov == 2) {
		chunk_push(p);
		p->chunk = p->chunk_next;
		p->chunk_open = true;
		if (rr < 0)
			chunk_push(p);
	}
	if (rr == 0)
		chunk_push_if_whole(p);
	return rr;
}

/* A ZERO frame (zero: data NULL) or a single PAGE in chunk mode: the
 * chunk's memory is zero already; a data page is copied in. */
static int bg_chunk_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	if (chunk_for(p, pg, drain) < 0)
		return -1;
	if (data)
		memcpy(pcb_install_slot_buf(&p->in, p->chunk.slot) + ((pg - p->chunk.page) << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	chunk_mark(&p->chunk, pg, !data);
	chunk_push_if_whole(p);
	return 0;
}

/* The installer thread: issues the install ioctls of what the background
 * thread received, so receiving the next run overlaps installing this one. */
static void *inst_thread(void *arg)
{
	struct pcb_pager *p = arg;
	if (p->cfg.pin_install)
		pcb_pin_self((int)p->cfg.pin_install - 1);
	struct pcb_install_job j;
	while (pcb_iq_pop(&p->iq, &j, &p->stopping, &p->fatal) == 0) {
		if (pcb_ps_complete(&p->ps)) {
			/* every page is in (a duplicate after a re-request): nothing to
			 * install, and the region may be unregistered any moment now */
			if (j.chunk)
				pcb_install_chunk_reset(&p->in, j.slot, &p->st.inst_bg);
			pcb_iq_done(&p->iq);
			continue;
		}
		struct bg_ctx x = { p, j.drain, j.zero, 0, &j };
		int r = 0;
		if (j.nseg) {
			for (unsigned k = 0; k < j.nseg && !r; k++) {
				const struct pcb_install_seg *g = &j.seg[k];
				x.zero = g->zero;
				if (g->zero) {
					r = pcb_install_zero_run(&p->in, g->page, g->n, &p->st.inst_bg, bg_installed, &x);
				} else if (p->in.mode == PCB_INSTALL_CONTINUE) {
					uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
					owned_get(own, j.owned, g->off, g->n);
					r = pcb_install_run(&p->in, j.slot, g->page, g->n, own, &p->st.inst_bg, bg_installed, &x);
				} else {
					r = pcb_install_run_at(&p->in, j.slot, g->off, g->page, g->n, &p->st.inst_bg, bg_installed, &x);
				}
			}
			p->st.inst_bg.jobs_segs += j.nseg;
		} else {
			r = j.chunk  ? pcb_install_chunk(&p->in, &j, &p->st.inst_bg, bg_chunk_installed, &x)
			    : j.zero ? pcb_install_zero_run(&p->in, j.page, j.n, &p->st.inst_bg, bg_installed, &x)
				     : pcb_install_run(&p->in, j.slot, j.page, j.n, j.owned, &p->st.inst_bg, bg_installed, &x);
		}
		p->st.inst_bg.jobs++;
		pcb_iq_done(&p->iq);
		if (r < 0) {
			set_fatal(p, PCB_EXIT_OSERR, "installing %spages %llu..%llu failed: %s", j.zero ? "zero " : "",
				  (unsigned long long)j.page, (unsigned long long)(j.page + j.n - 1), strerror(-r));
			break;
		}
	}
	p->st.install_cpu = sched_getcpu();
	return NULL;
}

static unsigned bg_next_batch(struct pcb_pager *p, struct pcb_batch *b, uint64_t *drain_cursor, bool *is_drain)
{
	unsigned n = 0;
	*is_drain = false;
	if (p->pol.ops->background)
		n = p->pol.ops->next_batch(&p->pol, b);
	if (!n && atomic_load(&p->drain)) {
		n = pcb_policy_fill_sequential(&p->pol, b, drain_cursor);
		*is_drain = n > 0;
	}
	if (n)
		PCB_PROBE_DECISION(b->r[0].first, n, b->nr);
	return n;
}

/* Background batches in flight, kept until their BATCH_END so that a lost
 * connection can ask for them again. */
struct bg_batch {
	struct pcb_range *r;
	unsigned nr;
	bool drain;
};

static int bg_send_batch(struct pcb_pager *p, uint64_t id, const struct bg_batch *b)
{
	struct pcb_range_wire w[PCB_MAX_RANGES];
	for (unsigned i = 0; i < b->nr; i++)
		w[i] = (struct pcb_range_wire){ htole64(b->r[i].first), htole64(b->r[i].count) };
	return bg_send(p, PCB_MSG_RANGES, id, w, (uint32_t)(b->nr * sizeof(w[0])));
}

/* After a reconnection: the batches [done, next) were in flight.  Drop the
 * pages that have arrived since, renumber what is left from `done` on and send
 * it again.  Returns the new next id, or UINT64_MAX if the connection failed again. */
/* Continue mode: the receiver claims each page-cache page it writes (the
 * `filled` bit) so that the demand path leaves it alone.  A run cut short by a
 * lost connection is never installed: release its claims, or the re-requested
 * pages would be received into scratch and never installed. */
static void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j)
{
	if (p->in.mode != PCB_INSTALL_CONTINUE)
		return;
	for (unsigned i = 0; i < j->n; i++)
		if (j->owned[i >> 6] >> (i & 63) & 1) {
			uint64_t pg = j->page + i;
			atomic_fetch_and_explicit(&p->in.filled[pg >> 6], ~(1ull << (pg & 63)), memory_order_acq_rel);
		}
}

static uint64_t bg_resend(struct pcb_pager *p, struct bg_batch *ring, unsigned window, uint64_t done, uint64_t next)
{
	struct pcb_range *tmp = calloc(PCB_MAX_RANGES, sizeof(*tmp));
	uint64_t out = done;
	if (!tmp)
		return UINT64_MAX;
	for (uint64_t id = done; id < next; id++) {
		struct bg_batch *b = &ring[id % window];
		unsigned nr = 0;
		uint64_t pages = 0;
		for (unsigned i = 0; i < b->nr; i++)
			for (uint64_t pg = b->r[i].first; pg < b->r[i].first + b->r[i].count; pg++) {
				if (pcb_ps_present(&p->ps, pg))
					continue;
				if (nr && tmp[nr - 1].first + tmp[nr - 1].count == pg)
					tmp[nr - 1].count++;
				else if (nr < PCB_MAX_RANGES)
					tmp[nr++] = (struct pcb_range){ pg, 1 };
				else
					continue;   /* cannot happen: a subset of a batch has no more ranges than pages allow */
				pages++;
			}
		if (!nr)
			continue;
		struct bg_batch *o = &ring[out % window];
		memcpy(o->r, tmp, nr * sizeof(*tmp));
		o->nr = nr;
		o->drain = b->drain;
		if (bg_send_batch(p, out, o) < 0) {
			free(tmp);
			return UINT64_MAX;
		}
		pthread_mutex_lock(&p->rec_lock);
		p->st.rec.bg_pages_rerequested += pages;
		p->st.rec.bg_batches_resent++;
		pthread_mutex_unlock(&p->rec_lock);
		out++;
	}
	free(tmp);
	return out;
}

static void *bg_thread(void *arg)
{
	struct pcb_pager *p = arg;
	struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	unsigned window = p->cfg.window ? p->cfg.window : 1;
	struct pcb_range *ranges = calloc((size_t)PCB_MAX_RANGES * window, sizeof(*ranges));
	struct bg_batch *ring = calloc(window, sizeof(*ring));   /* batches in flight, indexed by batch id % window */
	uint64_t next_id = 0, done_id = 0, drain_cursor = 0, zfirst = 0;
	unsigned zn = 0;   /* pending run of ZERO frames, installed with one batched call */
	if (p->cfg.pin_bg)
		pcb_pin_self((int)p->cfg.pin_bg - 1);
	if (!ranges || !ring) {
		set_fatal(p, PCB_EXIT_OSERR, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < window; i++)
		ring[i].r = ranges + (size_t)PCB_MAX_RANGES * i;
	/* shared connection: once every page is present, stop only when nothing is owed */
	while (!atomic_load(&p->fatal) &&
	       (!atomic_load(&p->stopping) ||
		(p->shared && pcb_ps_complete(&p->ps) && (next_id != done_id || atomic_load(&p->shared_out))))) {
		/* keep the window full */
		while (next_id - done_id < window && !pcb_ps_complete(&p->ps)) {
			struct bg_batch *rb = &ring[next_id % window];
			struct pcb_batch b = { .r = rb->r, .max_ranges = PCB_MAX_RANGES,
					       .max_pages = p->cfg.batch_pages };
			bool is_drain;
			unsigned n = bg_next_batch(p, &b, &drain_cursor, &is_drain);
			if (!n)
				break;
			rb->nr = b.nr;
			rb->drain = is_drain;
			PCB_PROBE_REQUEST(rb->r[0].first, PCB_CHAN_BACKGROUND, n);
			next_id++;
			p->st.bg_batches++;
			p->st.bg_pages_requested += n;
			if (bg_send_batch(p, next_id - 1, rb) < 0) {
				snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "sending a background batch failed: %s",
					 strerror(errno));
				goto lost;
			}
		}
		if (next_id == done_id) {   /* nothing more is coming now: install what was assembled */
			chunk_push(p);
			seg_push(p);
		}
		if (next_id == done_id && p->shared) {
			/* nothing to pull now; a demand reply owed: receive it; else wait for the
			 * connection (a reply, or its loss), a stop, or 2 ms (a fault the policy
			 * reacts to, the drain, completion) */
			if (pcb_ps_complete(&p->ps) && !atomic_load(&p->shared_out))
				break;
			if (!atomic_load(&p->shared_out)) {
				struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = p->stop_pipe[0], .events = POLLIN } };
				if (poll(pfd, 2, 2) <= 0 || !pfd[0].revents)
					continue;
			}
		} else if (next_id == done_id) {
			if (pcb_ps_complete(&p->ps))
				break;
			/* nothing to pull now: wait for a fault, the drain, or completion */
			pthread_mutex_lock(&p->lock);
			atomic_store(&p->bg_waiting, true);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (p->pol.ops->background ? 2 : 50) * 1000 * 1000;   /* drain/stop broadcast anyway */
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (!atomic_load(&p->stopping) && !atomic_load(&p->fatal) && !pcb_ps_complete(&p->ps))
				pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			atomic_store(&p->bg_waiting, false);
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		struct pcb_hdr h;
		const uint8_t *pl;
		int rr = bg_next(p, &h, &pl);
		if (rr == -2)
			goto lost;
		if (rr < 0)
			break;
		if (h.flags & PCB_FRAME_URGENT) {   /* a demand reply (validated: PAGE or ZERO) */
			if (!p->shared) {
				c->bad_frames++;
				set_fatal(p, PCB_EXIT_PROTOCOL, "demand reply for page %llu on the background channel",
					  (unsigned long long)h.arg);
				goto out;
			}
			if (shared_demand_reply(p, &h, pl) < 0)
				goto out;
			continue;
		}
		bool drain = ring[done_id % window].drain;
		/* shared connection after completion: what is still owed is received and dropped */
		bool discard = p->shared && pcb_ps_complete(&p->ps);
		if (discard) {
			zn = 0;
			chunk_push(p);
			seg_push(p);
		}
		if (h.type != PCB_MSG_ZERO && bg_flush_zero(p, &zfirst, &zn, drain) < 0)
			goto out;
		if (discard && (h.type == PCB_MSG_RUN || h.type == PCB_MSG_ZERO || h.type == PCB_MSG_PAGE)) {
			if (h.type == PCB_MSG_RUN) {
				struct iovec iov[PCB_MAX_RUN_PAGES];
				for (unsigned i = 0; i < h.len / PCB_PAGE_SIZE; i++)
					iov[i] = (struct iovec){ p->in.scratch, PCB_PAGE_SIZE };
				rr = bg_take_run(p, &h, iov, (int)(h.len / PCB_PAGE_SIZE));
				if (rr == -2)
					goto lost;
				if (rr < 0)
					goto out;
			}
			continue;
		}
		switch (h.type) {
		case PCB_MSG_RUN: {
			if (chunk_mode(p) || seg_mode(p)) {
				rr = chunk_mode(p) ? bg_chunk_run(p, &h, drain) : bg_seg_run(p, &h, drain);
				if (rr == -2)
					goto lost;
				if (rr < 0)
					goto out;
				break;
			}
			unsigned n = h.len / PCB_PAGE_SIZE;
			struct iovec iov[PCB_MAX_RUN_PAGES];
			int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
			if (slot < 0)
				goto out;
			struct pcb_install_job j = { .page = h.arg, .n = n, .slot = (unsigned)slot, .drain = drain };
			int niov = pcb_install_rx_iov(&p->in, (unsigned)slot, h.arg, n, iov, PCB_MAX_RUN_PAGES, j.owned);
			rr = bg_take_run(p, &h, iov, niov);
			if (rr == -2) {
				/* a partly received run is not installed: it is asked for again, so give
				 * back the pages this receive claimed (continue mode) */
				bg_release_claims(p, &j);
				goto lost;
			}
			if (rr < 0)
				goto out;
			for (unsigned i = 0; i < n; i++)
				PCB_PROBE_RECEIVED(h.arg + i, PCB_CHAN_BACKGROUND, 0);
			pcb_iq_push(&p->iq, &j);
			break;
		}
		case PCB_MSG_ZERO:
			PCB_PROBE_RECEIVED(h.arg, PCB_CHAN_BACKGROUND, 1);
			if (chunk_mode(p) || seg_mode(p)) {
				if ((chunk_mode(p) ? bg_chunk_page(p, h.arg, NULL, drain) : bg_seg_page(p, h.arg, NULL, drain)) < 0)
					goto out;
				break;
			}
			if (zn && (zfirst + zn != h.arg || zn == PCB_MAX_RUN_PAGES) &&
			    bg_flush_zero(p, &zfirst, &zn, drain) < 0)
				goto out;
			if (!zn)
				zfirst = h.arg;
			zn++;
			break;
		case PCB_MSG_PAGE: {   /* a single page (older sources): queued like a RUN of one */
			PCB_PROBE_RECEIVED(h.arg, PCB_CHAN_BACKGROUND, 0);
			if (chunk_mode(p) || seg_mode(p)) {
				if ((chunk_mode(p) ? bg_chunk_page(p, h.arg, pl, drain) : bg_seg_page(p, h.arg, pl, drain)) < 0)
					goto out;
				break;
			}
			struct iovec iov[1];
			int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
			if (slot < 0)
				goto out;
			struct pcb_install_job j = { .page = h.arg, .n = 1, .slot = (unsigned)slot, .drain = drain };
			pcb_install_rx_iov(&p->in, (unsigned)slot, h.arg, 1, iov, 1, j.owned);
			memcpy(iov[0].iov_base, pl, PCB_PAGE_SIZE);
			pcb_iq_push(&p->iq, &j);
			break;
		}
		case PCB_MSG_BATCH_END:
			if (h.arg != done_id) {
				c->bad_frames++;
				set_fatal(p, PCB_EXIT_PROTOCOL, "source ended batch %llu, expected %llu",
					  (unsigned long long)h.arg, (unsigned long long)done_id);
				goto out;
			}
			done_id++;
			break;
		case PCB_MSG_ERROR:
			set_fatal(p, PCB_EXIT_PROTOCOL, "source reported an error: %.*s", (int)h.len, (const char *)pl);
			goto out;
		default:
			c->bad_frames++;
			set_fatal(p, PCB_EXIT_PROTOCOL, "unexpected %s frame on the %s channel", pcb_msg_name(h.type), p->shared ? "shared" : "background");
			goto out;
		}
		continue;
lost:
		chunk_push(p);   /* its pages came whole from the source before the loss */
		seg_push(p);
		/* zero pages announced before the loss came from the source intact: install them */
		if (bg_flush_zero(p, &zfirst, &zn, ring[done_id % window].drain) < 0)
			goto out;
		/* pause, reconnect, ask again for what was in flight (until the timeout) */
		for (;;) {
			if (p->shared) {   /* the demand thread sends nothing until the new connection is up */
				pthread_mutex_lock(&p->send_lock);
				p->shared_down = true;
				pthread_mutex_unlock(&p->send_lock);
			}
			if (bg_recover(p, p->bg_loss_why) < 0)
				goto out;
			if (p->shared) {   /* demand requests first: the demand thread sends them again */
				pthread_mutex_lock(&p->send_lock);
				p->shared_gen++;
				atomic_store(&p->shared_out, 0);
				p->shared_down = false;
				pthread_mutex_unlock(&p->send_lock);
				struct shared_done d = { .kind = SHARED_RECONNECTED };
				if (shared_post(p, &d) < 0)
					goto out;
			}
			uint64_t n = bg_resend(p, ring, window, done_id, next_id);
			if (n != UINT64_MAX) {
				next_id = n;
				break;
			}
			snprintf(p->bg_loss_why, sizeof(p->bg_loss_why), "re-sending background batches failed: %s", strerror(errno));
		}
	}
out:
	chunk_push(p);
	seg_push(p);
	pcb_iq_close(&p->iq);
	p->st.background_cpu = sched_getcpu();
	free(ranges);
	free(ring);
	return NULL;
}

/* ---- set-up ----------------------------------------------------------------- */

/* ---- connections and recovery -------------------------------------------------
 * Each pager thread owns one channel: the demand thread the demand connection
 * (and the main thread during verification, after the threads stopped), the
 * background thread the background connection.  When a channel is lost
 * (closed, reset, or silent for --io-timeout while data is awaited) its owner
 * pauses, reconnects for up to --reconnect-timeout and asks again for what was
 * in flight: demand requests still in infl[], background batches not ended.
 * Nothing is installed twice (the present bitmap, and UFFDIO_COPY refuses an
 * existing page with -EEXIST) and nothing is skipped (every in-flight page is
 * requested again unless it arrived meanwhile).  The guest meanwhile blocks
 * in its faults: it never sees a page that did not come from the source. */

static int chan_connect(struct pcb_pager *p, unsigned ch, uint32_t flags, int timeout_ms, char *why, size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	struct pcb_conn *c = &p->chan[ch];
	int s = pcb_connect_tcp(cfg->host, cfg->port, timeout_ms);
	if (s < 0) {
		snprintf(why, whylen, "cannot connect to the source at %s:%u: %s", cfg->host, cfg->port, strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	if (!c->rbuf) {
		if (pcb_conn_init(c, s, 0, cfg->npages) < 0) {
			close(s);
			snprintf(why, whylen, "out of memory");
			return PCB_EXIT_OSERR;
		}
	} else {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = s;
		c->rpos = c->rlen = 0;   /* a partial frame of the old connection is dropped: it is asked for again */
	}
	struct pcb_config_wire cw;
	int hs_timeout = (int)(cfg->io_timeout_ns / PCB_NSEC_PER_MSEC);
	unsigned hello_ch = p->shared && ch == PCB_CHAN_BACKGROUND ? PCB_CHAN_SHARED : ch;
	int rc = pcb_hs_client(c, hello_ch, flags, cfg->key, hs_timeout > 0 ? hs_timeout : 1, &cw, why, whylen);
	if (rc)
		return rc;
	/* The handshake leaves the socket without a receive deadline.  Bound every
	 * blocking receive and send from now on (verification, a full send buffer)
	 * by --io-timeout: a stalled source must not hang us.  The threads poll()
	 * before reading, so they are unaffected. */
	struct timeval tv = io_timeval(cfg->io_timeout_ns);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (cw.npages != cfg->npages || cw.seed != cfg->seed || cw.zero_threshold != cfg->zero_threshold) {
		snprintf(why, whylen, "the source's image does not match: source has %llu pages of %u bytes, seed %llu%s; "
			 "this destination expects %llu pages, seed %llu",
			 (unsigned long long)cw.npages, cw.page_size, (unsigned long long)cw.seed,
			 cw.zero_threshold != cfg->zero_threshold ? ", another --zero-pages fraction" : "",
			 (unsigned long long)cfg->npages, (unsigned long long)cfg->seed);
		return PCB_EXIT_USAGE;
	}
	if ((cfg->link_bps || cfg->link_rtt_ns) && pcb_link_send(c, cfg->link_bps, p->link_delay_ns) < 0) {
		snprintf(why, whylen, "connection to the source lost while setting up the link: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	return 0;
}

static bool stop_requested(struct pcb_pager *p)
{
	if (atomic_load(&p->fatal))
		return true;
	if (p->verifying)
		return false;
	if (atomic_load(&p->stopping))
		return true;
	struct pollfd pf = { .fd = p->stop_pipe[0], .events = POLLIN };
	return poll(&pf, 1, 0) > 0;
}

/* The owner of channel ch lost it.  Returns 0 once reconnected, -1 when
 * recovery is off, timed out, or refused (fatal set). */
static int chan_recover(struct pcb_pager *p, unsigned ch, const char *reason)
{
	static const char *const names[2] = { "demand", "background" };
	uint64_t t0 = pcb_now_ns();
	pthread_mutex_lock(&p->rec_lock);
	p->st.rec.losses[ch]++;
	snprintf(p->st.rec.last_loss, sizeof(p->st.rec.last_loss), "%s", reason);
	pthread_mutex_unlock(&p->rec_lock);
	if (!p->cfg.reconnect_timeout_ns) {
		set_fatal(p, PCB_EXIT_SOURCE_LOST, "connection to the source lost: %s", reason);
		return -1;
	}
	if (stop_requested(p))
		return -1;
	const char *name = p->shared ? "shared" : names[ch];
	pcb_warn("connection to the source lost (%s); %s channel paused, reconnecting for up to %.1f s",
		 reason, name, pcb_ns_to_s(p->cfg.reconnect_timeout_ns));
	char why[256] = "";
	for (unsigned attempt = 0;; attempt++) {
		uint64_t now = pcb_now_ns();
		if (now - t0 >= p->cfg.reconnect_timeout_ns)
			break;
		uint64_t left_ms = (p->cfg.reconnect_timeout_ns - (now - t0)) / PCB_NSEC_PER_MSEC + 1;
		int rc = chan_connect(p, ch, PCB_HELLO_RESUME, left_ms < 1000 ? (int)left_ms : 1000, why, sizeof(why));
		if (!rc) {
			uint64_t pause = pcb_now_ns() - t0;
			pthread_mutex_lock(&p->rec_lock);
			p->st.rec.reconnects[ch]++;
			p->st.rec.pause_ns[ch] += pause;
			if (pause > p->st.rec.pause_max_ns[ch])
				p->st.rec.pause_max_ns[ch] = pause;
			pthread_mutex_unlock(&p->rec_lock);
			pcb_warn("%s channel reconnected after %.3f s (attempt %u)", name, pcb_ns_to_s(pause), attempt + 1);
			return 0;
		}
		if (rc != PCB_EXIT_SOURCE_LOST) {
			/* the source answered but refused us, or serves another image: retrying cannot help */
			set_fatal(p, rc, "reconnecting to the source failed: %s", why);
			return -1;
		}
		/* wait a little before the next attempt, but not past a stop */
		for (int i = 0; i < 10; i++) {
			if (stop_requested(p))
				return -1;
			usleep(10000);
		}
	}
	set_fatal(p, PCB_EXIT_SOURCE_LOST, "connection to the source lost (%s) and not regained within --reconnect-timeout %.1f s (last attempt: %s)",
		  reason, pcb_ns_to_s(p->cfg.reconnect_timeout_ns), why);
	return -1;
}

/* Demand thread: reconnect and send every outstanding request again. */
static int demand_recover(struct pcb_pager *p)
{
	for (;;) {
		if (chan_recover(p, PCB_CHAN_DEMAND, p->loss_why) < 0)
			return -1;
		if (p->demand_fast) {
			struct timeval tv = { 0, 100000 };
			setsockopt(p->chan[PCB_CHAN_DEMAND].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		unsigned i = 0;
		bool ok = true;
		while (i < p->ninfl) {
			uint64_t page = p->infl[i].page;
			int hs = 0;
			if (pcb_ps_present(&p->ps, page) || (p->cfg.huge && (hs = huge_send(p, page)) == 1)) {
				/* arrived on the background channel meanwhile (its install woke the guest) */
				pcb_uffd_wake(p->uffd, page_addr(p, page), p->cfg.huge ? PCB_HUGE_SIZE : PCB_PAGE_SIZE);
				p->blocked -= p->infl[i].waiters;
				p->infl[i] = p->infl[--p->ninfl];
				continue;
			}
			p->infl[i].t_req = pcb_now_ns();
			if (p->cfg.huge ? hs < 0 : pcb_conn_send(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_REQ, page, NULL, 0) < 0) {
				snprintf(p->loss_why, sizeof(p->loss_why), "re-sending demand requests failed: %s", strerror(errno));
				ok = false;
				break;
			}
			pthread_mutex_lock(&p->rec_lock);
			p->st.rec.demand_rerequested++;
			pthread_mutex_unlock(&p->rec_lock);
			i++;
		}
		if (ok)
			return 0;
	}
}

static int bg_recover(struct pcb_pager *p, const char *reason)
{
	return chan_recover(p, PCB_CHAN_BACKGROUND, reason);
}

/* ---- --pager=process (pagerproc.c) ------------------------------------------- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The fault log the demand thread appends to on every fault has a fixed
 * capacity reserved up front: it is never reallocated on the demand path
 * (a realloc of a growing log copied it while a vCPU waited: a tail
 * source), and it can be shared with --pager=process.  Its first FEV_HOT
 * entries are mapped before the first fault (a page fault on it costs
 * several µs on this nested machine and would land on one demand fault in
 * 170). */
#define FEV_HOT (64u * 1024)
static int map_records(struct pcb_pager *p, char *why, size_t whylen)
{
	p->capfev = p->cfg.npages * 2 + (1u << 20);
	size_t fl = p->capfev * sizeof(*p->fev);
	p->fev = p->cfg.process ? pcb_pp_shared_alloc(fl, true)
				: mmap(NULL, fl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->fev == MAP_FAILED || !p->fev) {
		p->fev = NULL;
		p->capfev = 0;
		snprintf(why, whylen, "cannot map the fault log: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	/* best effort (Linux >= 5.14).  Not the per-page records: one of their
	 * pages serves 1024 (install record) or 32768 (bitmaps) guest pages, so
	 * their first touches are rare, and mapping them all up front would add
	 * the pages of zero-page runs that are never recorded to the pager's RSS */
	madvise(p->fev, (p->capfev < FEV_HOT ? p->capfev : FEV_HOT) * sizeof(*p->fev), MADV_POPULATE_WRITE);
	return 0;
}

/* Before the fork: the region kept out of the pager process
 * (MADV_DONTFORK), the shared digest buffer. */
static int pager_process_prepare(struct pcb_pager *p, char *why, size_t whylen)
{
	if (madvise(p->region, p->region_len, MADV_DONTFORK) < 0) {
		snprintf(why, whylen, "madvise(MADV_DONTFORK) on the guest region: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	/* ... and the pager's own buffers in it (install.c keeps them from other children) */
	const struct { void *a; size_t len; } mine[] = {
		{ p->in.staging, (size_t)PCB_IQ_SLOTS * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT },
		{ p->in.alias, p->in.len }, { p->in.asmb, p->in.len }, { p->in.slots, (size_t)p->in.nslots << PCB_HUGE_SHIFT },
	};
	for (unsigned i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (mine[i].a && madvise(mine[i].a, mine[i].len, MADV_DOFORK) < 0) {
			snprintf(why, whylen, "madvise(MADV_DOFORK) on the pager's buffers: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
	p->pp = pcb_pp_create(PCB_MAX_DIGESTS, why, whylen);
	return p->pp ? 0 : PCB_EXIT_OSERR;
}

static int start_threads(struct pcb_pager *p);
static void stop_threads(struct pcb_pager *p);
static int fetch_digests(struct pcb_pager *p, uint64_t first, uint64_t count, const uint8_t **pl, char *why, size_t whylen);

static int pp_start(void *arg) { return start_threads(arg); }
static void pp_stop(void *arg) { stop_threads(arg); }
static int pp_digests(void *arg, uint64_t first, uint64_t count, void *out, char *why, size_t whylen)
{
	const uint8_t *pl;
	int rc = fetch_digests(arg, first, count, &pl, why, whylen);
	if (!rc)
		memcpy(out, pl, count * 8);
	return rc;
}
static void pp_bye(void *arg)
{
	struct pcb_pager *p = arg;
	pcb_conn_send(&p->chan[p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND], PCB_MSG_BYE, 0, NULL, 0);
	if (!p->shared)
		pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], PCB_MSG_BYE, 0, NULL, 0);
}

static bool in_loader(const struct pcb_pager *p)
{
	return p->pp && pcb_pp_is_parent(p->pp);
}

/* Switch-over in process mode: fork the pager process and hand it the uffd. */
static int pager_process_spawn(struct pcb_pager *p)
{
	static const struct pcb_pp_ops ops = { pp_start, pp_stop, pp_digests, pp_bye };
	char why[256];
	p->pol_saved = p->pol;
	p->in_saved = p->in;
	for (int ch = 0; ch < 2; ch++)
		p->rbuf_saved[ch] = p->chan[ch].rmem;
	int chfd[2] = { p->chan[0].fd, p->chan[1].fd };
	int rc = pcb_pp_spawn(p->pp, p->uffd, p->in.memfd, chfd, 2, &ops, p, why, sizeof(why));
	if (rc)
		set_fatal(p, rc, "%s", why);
	return rc;
}

void pcb_pager_abort(struct pcb_pager *p)
{
	if (in_loader(p))
		pcb_pp_kill(p->pp);
}

int pcb_pager_pid(struct pcb_pager *p)
{
	return in_loader(p) ? (int)pcb_pp_pid(p->pp) : (int)getpid();
}

uint64_t pcb_pager_process_peak_rss_kib(struct pcb_pager *p)
{
	return in_loader(p) ? pcb_pp_peak_rss_kib(p->pp) : 0;
}

int pcb_pager_create(const struct pcb_pager_cfg *cfg, struct pcb_pager **out, char *why, size_t whylen)
{
	struct pcb_pager *p = cfg->process ? pcb_pp_shared_alloc(sizeof(*p), false) : calloc(1, sizeof(*p));
	int rc = PCB_EXIT_OSERR;
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	p->cfg = *cfg;
	p->uffd = -1;
	p->stop_pipe[0] = p->stop_pipe[1] = -1;
	p->chan[0].fd = p->chan[1].fd = -1;
	p->in.memfd = p->in.uffd = -1;
	p->shared_pipe[0] = p->shared_pipe[1] = p->shared_kick = -1;
	p->shared = cfg->channels == 1;
	p->shared_gen = 1;
	p->st.channels = p->shared ? 1 : 2;
	pthread_mutex_init(&p->send_lock, NULL);
	pcb_pp_mutex_init(&p->lock, cfg->process);
	pcb_iq_init(&p->iq);
	pcb_pp_cond_init(&p->cond, cfg->process);
	pcb_pp_mutex_init(&p->rec_lock, cfg->process);
	pcb_hist_init(&p->st.demand_rtt);
	pcb_hist_init(&p->st.demand_service);
	if (cfg->nvcpus > PCB_MAX_VCPUS) {
		snprintf(why, whylen, "at most %d vCPUs", PCB_MAX_VCPUS);
		rc = PCB_EXIT_USAGE;
		goto fail;
	}

	p->region_len = cfg->npages << PCB_PAGE_SHIFT;
	if (cfg->channels > 2) {
		snprintf(why, whylen, "invalid value for --channels: %u (want 1 or 2)", cfg->channels);
		rc = PCB_EXIT_USAGE;
		goto fail;
	}
	if (cfg->huge && p->shared) {
		snprintf(why, whylen, "--channels=1 is not available with --page-size=2M (a huge page's demand request "
			 "is answered with RUN frames, which one connection cannot tell from background ones)");
		rc = PCB_EXIT_USAGE;
		goto fail;
	}
	if (cfg->process && cfg->install_mode == PCB_INSTALL_MOVE) {
		snprintf(why, whylen, "invalid value for --install: 'move' cannot be combined with --pager=process "
			 "(UFFDIO_MOVE cannot move pages between two processes)");
		rc = PCB_EXIT_USAGE;
		goto fail;
	}
	if (cfg->huge && cfg->install_mode != PCB_INSTALL_COPY) {
		snprintf(why, whylen, "huge pages are installed with --install=copy only (not %s)", pcb_install_name(cfg->install_mode));
		rc = PCB_EXIT_USAGE;
		goto fail;
	}
	rc = cfg->huge ? pcb_install_map_huge(&p->in, cfg->install_batch ? cfg->install_batch : PCB_MAX_RUN_PAGES,
					      cfg->npages, why, whylen)
		       : pcb_install_map(&p->in, cfg->install_mode,
					 cfg->install_batch ? cfg->install_batch
					 : cfg->install_mode == PCB_INSTALL_MOVE ? PCB_CHUNK_PAGES : PCB_MAX_RUN_PAGES,
					 cfg->npages, why, whylen);
	if (rc)
		goto fail;
	p->in.huge_done = huge_done;
	p->in.huge_ctx = p;
	p->region = p->in.region;
	rc = PCB_EXIT_OSERR;
	int rec_map = (cfg->process ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
	p->inst_us = mmap(NULL, cfg->npages * 4, PROT_READ | PROT_WRITE, rec_map, -1, 0);
	p->inst_kind = mmap(NULL, cfg->npages, PROT_READ | PROT_WRITE, rec_map, -1, 0);
	if (p->inst_us == MAP_FAILED || p->inst_kind == MAP_FAILED) {
		p->inst_us = p->inst_us == MAP_FAILED ? NULL : p->inst_us;
		p->inst_kind = p->inst_kind == MAP_FAILED ? NULL : p->inst_kind;
		snprintf(why, whylen, "out of memory for the install record");
		goto fail;
	}
	if (pcb_ps_init_shared(&p->ps, cfg->npages, cfg->process) < 0) {
		snprintf(why, whylen, "out of memory for the page bitmaps");
		goto fail;
	}
	if ((rc = map_records(p, why, whylen)) != 0)
		goto fail;
	if (cfg->process && (rc = pager_process_prepare(p, why, whylen)) != 0)
		goto fail;
	rc = PCB_EXIT_OSERR;
	int fd = pcb_uffd_open(UFFD_FEATURE_THREAD_ID | pcb_install_features(cfg->install_mode) |
			       (cfg->huge ? UFFD_FEATURE_MISSING_HUGETLBFS : 0) |
			       (cfg->kernel_faults ? PCB_UFFD_KERNEL_FAULTS : 0), &p->uinfo, why, whylen);
	if (fd < 0) {
		rc = pcb_exit_for_errno(-fd);
		goto fail;
	}
	p->uffd = fd;
	int r = pcb_uffd_register(p->uffd, p->region, p->region_len, pcb_install_register_mode(cfg->install_mode), &p->uinfo);
	if (r < 0) {
		snprintf(why, whylen, "UFFDIO_REGISTER (%s) on the guest region failed: %s",
			 cfg->install_mode == PCB_INSTALL_CONTINUE ? "MISSING|MINOR" : "MISSING", strerror(-r));
		rc = pcb_exit_for_errno(-r);
		goto fail;
	}
	p->in.uffd = p->uffd;
	p->in.demanded = p->ps.demanded;
	if (pcb_install_check(&p->in, &p->uinfo, why, whylen) < 0) {
		rc = PCB_EXIT_UNAVAILABLE;
		goto fail;
	}
	if (pipe2(p->stop_pipe, O_CLOEXEC) < 0 || (p->shared && pipe2(p->shared_pipe, O_CLOEXEC) < 0) ||
	    (p->shared && (p->shared_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (p->shared)   /* the demand thread polls it and reads without blocking */
		fcntl(p->shared_pipe[0], F_SETFL, fcntl(p->shared_pipe[0], F_GETFL) | O_NONBLOCK);
	if (cfg->policy_opts) {
		p->pol.nopts = cfg->policy_opts->nopts;
		memcpy(p->pol.opts, cfg->policy_opts->opts, sizeof(p->pol.opts));
	}
	why[0] = 0;
	if (pcb_policy_open(&p->pol, cfg->policy, &p->ps, cfg->npages, cfg->huge ? PCB_HUGE_SUBPAGES : 1, why, whylen) < 0) {
		rc = PCB_EXIT_USAGE;
		goto fail;
	}
	for (unsigned ch = p->shared ? PCB_CHAN_BACKGROUND : 0; ch < 2; ch++) {
		rc = chan_connect(p, ch, 0, 5000, why, whylen);
		if (rc)
			goto fail;
	}
	if (cfg->link_bps || cfg->link_rtt_ns) {
		rc = pcb_link_calibrate(&p->chan[p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND], &p->chan[PCB_CHAN_BACKGROUND], cfg->link_bps,
					cfg->link_rtt_ns, (int)(cfg->io_timeout_ns / PCB_NSEC_PER_MSEC), &p->st.link,
					why, whylen);
		if (rc)
			goto fail;
		p->link_delay_ns = p->st.link.delay_ns;
	}
	*out = p;
	return 0;
fail:
	pcb_pager_destroy(p);
	return rc;
}

uint8_t *pcb_pager_region(struct pcb_pager *p) { return p->region; }
struct pcb_pagestate *pcb_pager_pagestate(struct pcb_pager *p) { return &p->ps; }
const struct pcb_uffd_info *pcb_pager_uffd_info(struct pcb_pager *p) { return &p->uinfo; }

void pcb_pager_register_vcpu(struct pcb_pager *p, unsigned vcpu, pid_t tid)
{
	if (vcpu < PCB_MAX_VCPUS)
		p->vcpu_tid[vcpu] = tid;
}

const _Atomic uint64_t *pcb_pager_vcpu_faults(struct pcb_pager *p, unsigned vcpu)
{
	return &p->vcpu_faults[vcpu < PCB_MAX_VCPUS ? vcpu : 0];
}

static void stop_signal_handler(int sig)
{
	(void)sig;   /* only interrupts a blocking read() (no SA_RESTART) */
}

int pcb_pager_precopy_put(struct pcb_pager *p, uint64_t page, const void *data)
{
	if (p->threads_started || p->cfg.install_mode != PCB_INSTALL_COPY || p->cfg.huge || page >= p->cfg.npages)
		return -EINVAL;
	if (pcb_ps_present(&p->ps, page)) {
		/* a re-send: the page is ours and mapped; overwrite it */
		if (data)
			memcpy(page_addr(p, page), data, PCB_PAGE_SIZE);
		else
			memset(page_addr(p, page), 0, PCB_PAGE_SIZE);
		return 0;
	}
	struct pcb_install_stats scratch = { 0 };
	int r = pcb_install_one(&p->in, page, data, &scratch);
	if (r < 0)
		return r;
	pcb_ps_set_present(&p->ps, page);   /* before switch-over: not a completion event */
	return 0;
}

int pcb_pager_precopy_put_run(struct pcb_pager *p, uint64_t first, uint64_t n, const void *src)
{
	if (p->threads_started || p->cfg.install_mode != PCB_INSTALL_COPY || p->cfg.huge || first + n > p->cfg.npages || !n)
		return -EINVAL;
	uint64_t done = 0;
	while (done < n) {
		uint64_t dst = (uintptr_t)page_addr(p, first + done), len = (n - done) * PCB_PAGE_SIZE;
		int64_t got;
		if (src) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src + done * PCB_PAGE_SIZE, .len = len,
						 .mode = UFFDIO_COPY_MODE_DONTWAKE };
			int r = ioctl(p->uffd, UFFDIO_COPY, &c);
			got = c.copy;
			if (r < 0 && errno != EAGAIN)
				return got == -EEXIST || errno == EEXIST ? -EEXIST : -errno;
		} else {
			struct uffdio_zeropage z = { .range = { dst, len }, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
			int r = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
			got = z.zeropage;
			if (r < 0 && errno != EAGAIN)
				return got == -EEXIST || errno == EEXIST ? -EEXIST : -errno;
		}
		if (got <= 0)
			continue;   /* EAGAIN with nothing done: retry */
		for (uint64_t i = 0; i < (uint64_t)got / PCB_PAGE_SIZE; i++)
			pcb_ps_set_present(&p->ps, first + done + i);
		done += (uint64_t)got / PCB_PAGE_SIZE;
	}
	return 0;
}

int pcb_pager_precopy_drop(struct pcb_pager *p, uint64_t page)
{
	if (p->threads_started || p->cfg.install_mode != PCB_INSTALL_COPY || p->cfg.huge || page >= p->cfg.npages)
		return -EINVAL;
	if (!pcb_ps_present(&p->ps, page))
		return 0;
	/* zap it: the next access is a userfaultfd MISSING fault again */
	if (madvise(page_addr(p, page), PCB_PAGE_SIZE, MADV_DONTNEED) < 0)
		return -errno;
	pcb_ps_clear_present(&p->ps, page);
	return 0;
}

void pcb_pager_set_first_touch(struct pcb_pager *p, const _Atomic uint32_t *first_touch)
{
	p->pol.first_touch = first_touch;
}

int pcb_pager_start(struct pcb_pager *p)
{
	static atomic_bool handler_set;
	if (!atomic_exchange(&handler_set, true)) {
		struct sigaction sa = { .sa_handler = stop_signal_handler };
		sigemptyset(&sa.sa_mask);
		sigaction(PCB_STOP_SIGNAL, &sa, NULL);
	}
	p->st.t_switchover_ns = pcb_now_ns();
	if (pcb_ps_complete(&p->ps))   /* pre-copy left nothing missing */
		atomic_store(&p->t_complete, p->st.t_switchover_ns);
	return p->cfg.process ? pager_process_spawn(p) : start_threads(p);
}

static int start_threads(struct pcb_pager *p)
{
	if (pthread_create(&p->demand_th, NULL, demand_thread, p) != 0)
		return PCB_EXIT_OSERR;
	if (pthread_create(&p->bg_th, NULL, bg_thread, p) != 0) {
		set_fatal(p, PCB_EXIT_OSERR, "pthread_create failed");
		return PCB_EXIT_OSERR;
	}
	p->threads_started = true;
	if (pthread_create(&p->inst_th, NULL, inst_thread, p) != 0) {
		set_fatal(p, PCB_EXIT_OSERR, "pthread_create failed");
		return PCB_EXIT_OSERR;
	}
	p->inst_started = true;
	return 0;
}

void pcb_pager_guest_done(struct pcb_pager *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->st.t_guest_done_ns)
		p->st.t_guest_done_ns = pcb_now_ns();
	atomic_store(&p->drain, true);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int pcb_pager_poll(struct pcb_pager *p, int timeout_ms, char *why, size_t whylen)
{
	if (in_loader(p) && timeout_ms > 100)
		timeout_ms = 100;   /* notice a dead pager process within 100 ms */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (in_loader(p) && !atomic_load(&p->fatal)) {
		char pwhy[256];
		int prc = pcb_pp_check(p->pp, pwhy, sizeof(pwhy));
		if (prc)
			set_fatal(p, prc, "%s", pwhy);
	}
	pthread_mutex_lock(&p->lock);
	while (!atomic_load(&p->fatal) && !pcb_ps_complete(&p->ps))
		if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
			break;
	int f = atomic_load(&p->fatal);
	int rc = f ? -f : pcb_ps_complete(&p->ps) ? 1 : 0;
	if (f)
		snprintf(why, whylen, "%s", p->fatal_msg);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void stop_threads(struct pcb_pager *p)
{
	if (in_loader(p)) {   /* the threads are the pager process's */
		pcb_pp_stop(p->pp);
		return;
	}
	if (!p->threads_started)
		return;
	atomic_store(&p->stopping, true);
	if (write(p->stop_pipe[1], "x", 1) < 0) {
		/* the pipe is ours and empty; nothing sensible to do */
	}
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* the demand thread may sit in a blocking read() of the uffd: interrupt
	 * it (again, in case the signal landed just before the read) */
	for (;;) {
		pthread_kill(p->demand_th, PCB_STOP_SIGNAL);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(p->demand_th, NULL, &ts) == 0)
			break;
	}
	pthread_join(p->bg_th, NULL);
	if (p->shared) {   /* the records of the last demand replies (nobody else reads them now) */
		uint64_t t;
		demand_shared_done(p, &t, true);
	}
	if (p->inst_started) {
		pcb_iq_close(&p->iq);
		pthread_join(p->inst_th, NULL);
		p->inst_started = false;
	}
	p->threads_started = false;
}

int pcb_pager_finish(struct pcb_pager *p)
{
	p->st.t_complete_ns = atomic_load(&p->t_complete);
	if (chunk_mode(p) && !p->pp)
		p->st.guest_thp_bytes = pcb_install_region_thp_bytes(&p->in);
	if (!p->unregistered) {
		int r = pcb_uffd_unregister(p->uffd, p->region, p->region_len);
		if (r < 0)
			pcb_warn("UFFDIO_UNREGISTER: %s", strerror(-r));
		p->unregistered = true;
	}
	stop_threads(p);
	return 0;
}

/* The source's digests of pages first..first+count-1 (the pager threads have
 * stopped: this thread owns the demand channel).  0 or an exit code. */
static int fetch_digests(struct pcb_pager *p, uint64_t first, uint64_t count, const uint8_t **pl, char *why, size_t whylen)
{
	unsigned vch = p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND;   /* the demand channel, or the shared one */
	struct pcb_conn *c = &p->chan[vch];
	uint64_t cnt_le = htole64(count);
	struct pcb_hdr h;
	int r;
	for (;;) {
		if (pcb_conn_send(c, PCB_MSG_DIGEST_REQ, first, &cnt_le, 8) < 0)
			r = PCB_RX_ERR;
		else
			r = pcb_conn_recv(c, &h, pl);
		/* a demand reply still in flight when the threads stopped (the
		 * page arrived by the other channel first, completing the
		 * migration) precedes the digests: it is not an answer to us */
		while (r == PCB_RX_FRAME && (h.type == PCB_MSG_PAGE || h.type == PCB_MSG_ZERO))
			r = pcb_conn_recv(c, &h, pl);
		if ((r != PCB_RX_EOF && r != PCB_RX_ERR) || !p->cfg.reconnect_timeout_ns)
			break;
		snprintf(p->loss_why, sizeof(p->loss_why), "demand channel lost while asking for digests: %s",
			 r == PCB_RX_EOF ? "closed by the source" :
			 errno == EAGAIN ? "no answer within --io-timeout" : strerror(errno));
		p->verifying = true;
		int rr = chan_recover(p, vch, p->loss_why);
		p->verifying = false;
		if (rr < 0) {
			snprintf(why, whylen, "%s", p->fatal_msg);
			return PCB_EXIT_SOURCE_LOST;
		}
	}
	if (r != PCB_RX_FRAME || h.type != PCB_MSG_DIGESTS || h.arg != first || h.len != count * 8) {
		snprintf(why, whylen, "the source did not send the digests of pages %llu..%llu: %s",
			 (unsigned long long)first, (unsigned long long)(first + count - 1),
			 r == PCB_RX_BAD ? c->err : r == PCB_RX_FRAME ? pcb_msg_name(h.type) :
			 r == PCB_RX_ERR && errno == EAGAIN ? "no answer within --io-timeout" : "connection lost");
		return r == PCB_RX_BAD || r == PCB_RX_FRAME ? PCB_EXIT_PROTOCOL : PCB_EXIT_SOURCE_LOST;
	}
	return 0;
}

int pcb_pager_verify(struct pcb_pager *p, struct pcb_verify *v, char *why, size_t whylen)
{
	memset(v, 0, sizeof(*v));
	/* residency as the kernel sees it, independent of our bitmap; asked
	 * chunk by chunk so verification adds 64 KiB, not a byte per page, to
	 * the pager's peak memory */
	unsigned char *vec = malloc(PCB_MAX_DIGESTS);
	if (!vec) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	for (uint64_t first = 0; first < p->cfg.npages; first += PCB_MAX_DIGESTS) {
		uint64_t count = p->cfg.npages - first;
		if (count > PCB_MAX_DIGESTS)
			count = PCB_MAX_DIGESTS;
		if (mincore(page_addr(p, first), count << PCB_PAGE_SHIFT, vec) < 0) {
			snprintf(why, whylen, "mincore: %s", strerror(errno));
			free(vec);
			return PCB_EXIT_OSERR;
		}
		const uint8_t *pl;
		const void *shared;
		int rc = in_loader(p) ? pcb_pp_digests(p->pp, first, count, &shared, why, whylen)
				      : fetch_digests(p, first, count, &pl, why, whylen);
		if (rc) {
			free(vec);
			return rc;
		}
		if (in_loader(p))
			pl = shared;
		for (uint64_t i = 0; i < count; i++) {
			uint64_t pg = first + i, want;
			memcpy(&want, pl + i * 8, 8);
			want = le64toh(want);
			bool bad;
			if (!(vec[i] & 1) || !pcb_ps_present(&p->ps, pg)) {
				v->pages_missing++;
				bad = true;
			} else {
				const uint64_t *w = (const uint64_t *)page_addr(p, pg);
				bool stamp_ok = pcb_stamp_valid(pg, w[PCB_STAMP_WORD]);
				if (!stamp_ok)
					v->stamps_bad++;
				bad = !stamp_ok || pcb_page_digest(w) != want;
				if (bad)
					v->pages_corrupt++;
				else
					v->pages_verified++;
			}
			if (bad && v->nfirst_bad < 8)
				v->first_bad[v->nfirst_bad++] = pg;
		}
	}
	free(vec);
	if (in_loader(p)) {
		pcb_pp_bye(p->pp);
	} else {
		pcb_conn_send(&p->chan[p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND], PCB_MSG_BYE, 0, NULL, 0);
		if (!p->shared)
			pcb_conn_send(&p->chan[PCB_CHAN_BACKGROUND], PCB_MSG_BYE, 0, NULL, 0);
	}
	return 0;
}

void pcb_pager_stats(struct pcb_pager *p, struct pcb_pager_stats *out)
{
	pthread_mutex_lock(&p->rec_lock);
	*out = p->st;
	pthread_mutex_unlock(&p->rec_lock);
	out->t_complete_ns = atomic_load(&p->t_complete);
	for (int ch = 0; ch < 2; ch++) {
		out->chan[ch] = (struct pcb_chan_stats){ p->chan[ch].bytes_tx, p->chan[ch].bytes_rx,
							 p->chan[ch].frames_tx, p->chan[ch].frames_rx,
							 p->chan[ch].bad_frames };
	}
}

void pcb_pager_destroy(struct pcb_pager *p)
{
	if (!p)
		return;
	stop_threads(p);
	if (in_loader(p)) {
		/* the pager process exits; free what the loader allocated before the
		 * fork (the shared fields may point into the pager process's heap) */
		pcb_pp_destroy(p->pp);
		p->pp = NULL;
		p->pol = p->pol_saved;
		p->in = p->in_saved;
		for (int ch = 0; ch < 2; ch++) {
			free(p->rbuf_saved[ch]);   /* the fds were closed at the fork */
			p->chan[ch].rbuf = p->chan[ch].rmem = NULL;
			p->chan[ch].fd = -1;
		}
	} else if (p->pp) {
		pcb_pp_destroy(p->pp);   /* never spawned */
		p->pp = NULL;
	}
	pcb_iq_destroy(&p->iq);
	pcb_policy_close(&p->pol);
	for (int ch = 0; ch < 2; ch++)
		if (p->chan[ch].rbuf || p->chan[ch].fd >= 0)
			pcb_conn_free(&p->chan[ch]);
	if (p->uffd >= 0)
		close(p->uffd);
	for (int i = 0; i < 2; i++) {
		if (p->stop_pipe[i] >= 0)
			close(p->stop_pipe[i]);
		if (p->shared_pipe[i] >= 0)
			close(p->shared_pipe[i]);
	}
	if (p->shared_kick >= 0)
		close(p->shared_kick);
	pcb_install_unmap(&p->in);
	p->region = NULL;
	pcb_ps_free(&p->ps);
	if (p->inst_us)
		munmap(p->inst_us, p->cfg.npages * 4);
	if (p->inst_kind)
		munmap(p->inst_kind, p->cfg.npages);
	if (p->fev)
		munmap(p->fev, p->capfev * sizeof(*p->fev));
	if (p->cfg.process)
		pcb_pp_shared_free(p, sizeof(*p));
	else
		free(p);
}

void pcb_pager_missing_summary(struct pcb_pager *p, char *buf, size_t len)
{
	uint64_t n = p->cfg.npages - atomic_load(&p->ps.npresent), shown = 0;
	size_t off = (size_t)snprintf(buf, len, "%llu page%s never arrived", (unsigned long long)n, n == 1 ? "" : "s");
	for (uint64_t pg = 0; pg < p->cfg.npages && off < len; pg++) {
		if (pcb_ps_present(&p->ps, pg))
			continue;
		uint64_t end = pg;
		while (end + 1 < p->cfg.npages && !pcb_ps_present(&p->ps, end + 1))
			end++;
		if (off + 48 >= len || shown == 32) {
			snprintf(buf + off, len - off, ", ...");
			return;
		}
		off += end == pg ? (size_t)snprintf(buf + off, len - off, "%s%llu", shown ? ", " : ": ", (unsigned long long)pg)
				 : (size_t)snprintf(buf + off, len - off, "%s%llu-%llu", shown ? ", " : ": ",
						    (unsigned long long)pg, (unsigned long long)end);
		shown++;
		pg = end;
	}
}

const uint32_t *pcb_pager_install_us(struct pcb_pager *p) { return p->inst_us; }
const struct pcb_installer *pcb_pager_installer(struct pcb_pager *p) { return &p->in; }
const uint8_t *pcb_pager_install_kind(struct pcb_pager *p) { return p->inst_kind; }
const struct pcb_fault_ev *pcb_pager_fault_events(struct pcb_pager *p, size_t *n)
{
	*n = p->nfev;
	return p->fev;
}
