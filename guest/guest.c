/* The vCPU loop: run a workload's accesses over the guest region, check
 * every read against the image, and time each access.  An access that
 * blocked is a fault (docs/metrics.md): after an access slower than
 * BLOCK_MIN_NS the thread reads its voluntary context switch count
 * (getrusage RUSAGE_THREAD, the kernel's per-thread count); a rise means it
 * slept in the access -- in a userfaultfd wait whether or not the pager read
 * its fault message (a batched install can wake it first, and the kernel
 * then never delivers that message).  Its latency as this thread saw it goes
 * into fault_lat, blocktime and the stall intervals. */
#include "common/util.h"
#include "pager/probes.h"
#include "workloads/workload.h"
#include "guest/kvm/kvm.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* An access faster than this did not sleep (a userfaultfd wait is a switch
 * out and a wake-up: several µs at least); slower ones check the context switches. */
#define BLOCK_MIN_NS 1000

struct vcpu {
	struct pcb_guest *g;
	unsigned idx;
	pthread_t th;
	void *ts;
	const _Atomic uint64_t *faults;
	struct pcb_vcpu_result res;
};

#define PCB_MAX_VCPUS_GUEST 256
static _Atomic uint64_t no_faults;   /* no pager (local baseline): never a fault */

struct pcb_guest {
	struct pcb_guest_cfg cfg;
	void *shared;
	struct vcpu *v;
	unsigned n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready;
	bool go;
	uint64_t base_ns;
	atomic_uint running;
	struct pcb_kvm *kvm;
	atomic_bool pause;           /* pre-copy: stop at the next op boundary */
	unsigned parked;
	bool resumed;
	unsigned started;
	_Atomic uint64_t t_end_max;  /* latest vCPU end so far */
	uint64_t t_end;              /* set when the last vCPU has finished (lock) */
	pthread_mutex_t err_lock;
	char app_err[256];           /* the first failed application op */
};

/* The timed access to guest memory.  Not checked by AddressSanitizer: the
 * region is an mmap the sanitizer never poisons, and its shadow check would
 * put faults of its own (first touch of a shadow page, waits for the mmap
 * lock) inside the timed access, counted as guest faults. */
__attribute__((no_sanitize_address)) static inline void region_store(volatile uint64_t *w, uint64_t v)
{
	*w = v;
}

__attribute__((no_sanitize_address)) static inline uint64_t region_load(volatile uint64_t *w)
{
	return *w;
}

/* The thread's context switches so far: voluntary (it slept) and involuntary (preempted). */
struct csw {
	long v, iv;
};

static struct csw csw_now(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru))
		return (struct csw){ 0, 0 };
	return (struct csw){ ru.ru_nvcsw, ru.ru_nivcsw };
}

/* first_touch: keep the earliest access (by its start); at the same µs, a faulted one. */
static void touch_note(_Atomic uint32_t *w, uint64_t since_base_ns, bool faulted)
{
	uint64_t us = since_base_ns / 1000 + 1;
	uint32_t t = us > 0x7fffffff ? 0x7fffffffu : (uint32_t)us;
	uint32_t val = t | (faulted ? PCB_TOUCH_FAULTED : 0);
	uint32_t cur = atomic_load_explicit(w, memory_order_relaxed);
	while (!cur || (cur & ~PCB_TOUCH_FAULTED) > t ||
	       ((cur & ~PCB_TOUCH_FAULTED) == t && faulted && !(cur & PCB_TOUCH_FAULTED)))
		if (atomic_compare_exchange_weak_explicit(w, &cur, val, memory_order_relaxed, memory_order_relaxed))
			break;
}

static void stall_add(struct pcb_vcpu_result *r, uint64_t *cap, uint64_t t0, uint64_t t1)
{
	if (r->nstalls == *cap) {
		uint64_t nc = *cap ? *cap * 2 : 4096;
		void *p = realloc(r->stalls, nc * sizeof(*r->stalls));
		if (!p)
			return;   /* out of memory: all_vcpus blocktime incomplete (counts elsewhere are not) */
		r->stalls = p;
		*cap = nc;
	}
	r->stalls[r->nstalls++] = (struct pcb_stall){ t0, t1 };
}

static void think(uint32_t ns)
{
	/* a halted vCPU sleeps; a short compute phase spins */
	if (ns >= 50000) {
		struct timespec ts = { .tv_sec = ns / 1000000000u, .tv_nsec = ns % 1000000000u };
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
		return;
	}
	uint64_t until = pcb_now_ns() + ns;
	while (pcb_now_ns() < until)
		;
}

/* true if it grew the array (an allocation, which may have slept) */
static bool bucket_add(struct pcb_vcpu_result *r, uint64_t bucket_ns, uint64_t since_base, uint64_t *cap)
{
	uint64_t i = since_base / bucket_ns;
	bool grew = i >= *cap;
	if (grew) {
		uint64_t nc = *cap ? *cap : 64;
		while (nc <= i)
			nc *= 2;
		uint64_t *p = realloc(r->buckets, nc * sizeof(*p));
		if (!p)
			return true;   /* out of memory: progress is incomplete, counts elsewhere are not */
		memset(p + *cap, 0, (nc - *cap) * sizeof(*p));
		r->buckets = p;
		*cap = nc;
	}
	r->buckets[i]++;
	if (i + 1 > r->nbuckets)
		r->nbuckets = i + 1;
	return grew;
}

static bool record_add(struct pcb_vcpu_result *r, uint64_t *cap, const struct pcb_atrace_rec *rec)
{
	bool grew = r->nrec == *cap;
	if (grew) {
		uint64_t nc = *cap ? *cap * 2 : 65536;
		void *p = realloc(r->rec, nc * sizeof(*r->rec));
		if (!p)
			return true;
		r->rec = p;
		*cap = nc;
	}
	r->rec[r->nrec++] = *rec;
	return grew;
}

/* The loop's own state, carried from the pre-copy phase into the run at the destination. */
struct loopst {
	struct pcb_rng rng;
	uint32_t seq;
	uint64_t prev;
	bool detect;                 /* a pager serves this region: find the accesses that blocked */
	struct csw csw;              /* context switches at the last check */
	uint64_t scap;               /* capacity of res.stalls */
};

/* One access done (not in the pre-copy phase): was it a fault, and the
 * first-touch record.  f: fault messages the pager read from this thread
 * during it. */
static void access_account(struct vcpu *v, struct loopst *ls, uint64_t page, uint64_t t0, uint64_t t1, uint64_t f)
{
	struct pcb_vcpu_result *r = &v->res;
	const struct pcb_guest_cfg *c = &v->g->cfg;
	uint64_t lat = t1 - t0;
	bool fault = f != 0;
	r->faults_delivered += f;
	if (ls->detect) {
		fault = false;
		if (lat >= BLOCK_MIN_NS) {
			/* It slept inside the access; or the pager read its fault message and it
			 * was preempted inside it: preempted entering the userfaultfd wait and
			 * woken before it ran again, it never switched out voluntarily (the
			 * kernel's blocked fault, bpf anomaly preempted_entering_wait). */
			struct csw n = csw_now();
			fault = n.v != ls->csw.v || (f && n.iv != ls->csw.iv);
			ls->csw = n;
		}
		r->faults_undelivered += fault && !f;
	}
	if (fault) {
		r->faults++;
		r->blocktime_ns += lat;
		pcb_hist_add(&r->fault_lat, lat);
		stall_add(r, &ls->scap, t0, t1);
		if (ls->detect)
			ls->csw = csw_now();   /* stall_add may sleep (brk/mmap wait for the mmap lock) */
	}
	if (c->first_touch)
		touch_note(&c->first_touch[page], t0 > v->g->base_ns ? t0 - v->g->base_ns : 0, fault);
}

/* A loop's start: the progress buckets (not while at the source), its start
 * time and the --duration deadline. */
static void loop_begin(struct vcpu *v, bool pre, uint64_t *bcap, uint64_t *t_start, uint64_t *deadline)
{
	const struct pcb_guest_cfg *c = &v->g->cfg;
	struct pcb_vcpu_result *r = &v->res;
	if (c->bucket_ns && !pre) {
		*bcap = c->duration_ns ? c->duration_ns / c->bucket_ns + 8 : 1024;
		r->buckets = calloc(*bcap, sizeof(uint64_t));
		if (!r->buckets)
			*bcap = 0;
	}
	*t_start = pcb_now_ns();
	if (!pre)
		r->t_start_ns = *t_start;
	*deadline = c->duration_ns && !pre ? *t_start + c->duration_ns : UINT64_MAX;
}

/* pre: the pre-copy phase -- the guest runs on the source's memory until
 * pcb_guest_pause(); nothing is timed or recorded, ops are counted apart. */
static void run_loop(struct vcpu *v, struct loopst *ls, uint8_t *region, bool pre)
{
	struct pcb_guest *g = v->g;
	const struct pcb_guest_cfg *c = &g->cfg;
	struct pcb_vcpu_result *r = &v->res;
	uint64_t wthresh = (uint64_t)(c->write_ratio * 18446744073709551616.0);
	bool all_writes = c->write_ratio >= 1.0;
	uint64_t bcap = 0, rcap = 0;
	const uint64_t base = g->base_ns;

	uint64_t t_start, deadline;
	loop_begin(v, pre, &bcap, &t_start, &deadline);
	if (ls->detect)
		ls->csw = csw_now();
	uint64_t tlast = t_start;
	for (;;) {
		uint64_t op_t0 = 0;
		bool first = true, slept = false;
		struct pcb_access acc;
		do {
			acc = (struct pcb_access){ .now_ns = tlast - base, .prev = ls->prev };
			c->ops->next(v->ts, &acc);
			if (acc.kind == PCB_ACC_STOP)
				goto out;
			if (acc.think_ns) {
				think(acc.think_ns);
				slept |= acc.think_ns >= 50000;   /* think() slept: not an access's switch */
			}
			if (slept && ls->detect)
				ls->csw = csw_now();
			slept = false;
			uint64_t page = acc.page;
			uint64_t rnd = pcb_rng_next(&ls->rng);
			bool write = acc.kind == PCB_ACC_WRITE ||
				     (acc.kind == PCB_ACC_AUTO && (all_writes || rnd < wthresh));
			unsigned k = 1 + (unsigned)((rnd >> 20) % (PCB_STAMP_WORD - 1));
			volatile uint64_t *w = (volatile uint64_t *)(region + (page << PCB_PAGE_SHIFT));
			uint64_t a = 0, b = 0;

			uint64_t f0 = atomic_load_explicit(v->faults, memory_order_acquire);
			uint64_t t0 = pcb_now_ns();
			if (write) {
				region_store(&w[PCB_STAMP_WORD], pcb_stamp_make(page, ++ls->seq));
			} else {
				a = region_load(&w[0]);
				b = region_load(&w[k]);
			}
			uint64_t t1 = pcb_now_ns();
			uint64_t f1 = atomic_load_explicit(v->faults, memory_order_acquire);
			if (first)
				op_t0 = t0;
			first = false;
			tlast = t1;
			if (!pre) {
				r->accesses++;
				access_account(v, ls, page, t0, t1, f1 - f0);
			}
			if (write) {
				if (pre) {
					r->precopy_writes++;
				} else {
					r->writes++;
					if (c->dest_written)
						atomic_fetch_or_explicit(&c->dest_written[page >> 6], 1ull << (page & 63),
									 memory_order_relaxed);
				}
				ls->prev = 0;
			} else {
				if (!pre)
					r->reads++;
				ls->prev = a;
				if (!c->im->opaque && (a != pcb_image_word(c->im, page, 0) || b != pcb_image_word(c->im, page, k))) {
					if (!r->read_mismatch++)
						r->first_mismatch_page = page;
				}
			}
			if (c->record && !pre) {
				struct pcb_atrace_rec rec = { .t_ns = t1 - base, .page = page, .vcpu = v->idx,
							     .flags = (write ? PCB_ATRACE_WRITE : 0) | (acc.more ? PCB_ATRACE_MORE : 0) };
				slept |= record_add(r, &rcap, &rec);
			}
		} while (acc.more);
		if (pre) {
			r->precopy_ops++;
			if (atomic_load_explicit(&g->pause, memory_order_acquire))
				break;
			continue;
		}
		pcb_hist_add(&r->op_lat, tlast - op_t0);
		if (!r->ops++)
			r->t_first_op_ns = tlast;
		if (bcap && bucket_add(r, c->bucket_ns, tlast - base, &bcap) && ls->detect)
			ls->csw = csw_now();   /* the allocation may have slept */
		if (tlast >= deadline || (c->ops_limit && r->ops >= c->ops_limit))
			break;
	}
out:
	if (!pre)
		r->t_end_ns = pcb_now_ns();
}

/* An application guest: the engine runs whole ops on the region; the loop
 * sees ops, not accesses.  An op during which the pager read a fault
 * message from this thread is a faulting op: its latency goes into
 * fault_lat and blocktime (an upper bound of the time blocked: the op also
 * computes, and may fault more than once -- docs/metrics.md). */
static void run_app_loop(struct vcpu *v, uint8_t *region, bool pre)
{
	struct pcb_guest *g = v->g;
	const struct pcb_guest_cfg *c = &g->cfg;
	struct pcb_vcpu_result *r = &v->res;
	uint64_t bcap = 0;
	const uint64_t base = g->base_ns;
	uint64_t t_start, deadline;
	loop_begin(v, pre, &bcap, &t_start, &deadline);
	for (;;) {
		struct pcb_app_op op = { 0 };
		uint64_t f0 = atomic_load_explicit(v->faults, memory_order_acquire);
		uint64_t t0 = pcb_now_ns();
		int rc = c->ops->app_op(v->ts, region, &op);
		uint64_t t1 = pcb_now_ns();
		uint64_t f1 = atomic_load_explicit(v->faults, memory_order_acquire);
		if (rc == PCB_APP_STOP)
			break;
		if (rc != PCB_APP_OK) {
			pthread_mutex_lock(&g->err_lock);
			if (!g->app_err[0])
				snprintf(g->app_err, sizeof(g->app_err), "vCPU %u: %s", v->idx, op.why[0] ? op.why : "application op failed");
			pthread_mutex_unlock(&g->err_lock);
			break;
		}
		bool write = op.kind == PCB_ACC_WRITE;
		if (pre) {
			r->precopy_ops++;
			r->precopy_writes += write;
			if (atomic_load_explicit(&g->pause, memory_order_acquire))
				break;
			continue;
		}
		r->accesses++;
		r->writes += write;
		r->reads += !write;
		if (op.mismatch && !r->read_mismatch)
			r->first_mismatch_page = UINT64_MAX;   /* a row, not a page: see the application check */
		r->read_mismatch += op.mismatch;
		if (f1 != f0) {
			r->faults += f1 - f0;
			r->blocktime_ns += t1 - t0;
			pcb_hist_add(&r->fault_lat, t1 - t0);
		}
		pcb_hist_add(&r->op_lat, t1 - t0);
		if (!r->ops++)
			r->t_first_op_ns = t1;
		if (bcap)
			bucket_add(r, c->bucket_ns, t1 - base, &bcap);
		if (t1 >= deadline || (c->ops_limit && r->ops >= c->ops_limit))
			break;
	}
	if (!pre)
		r->t_end_ns = pcb_now_ns();
}

static void run_ops(struct vcpu *v)
{
	struct pcb_guest *g = v->g;
	struct loopst ls = { .seq = (uint32_t)v->idx << 24, .detect = v->faults != &no_faults };
	pcb_rng_seed(&ls.rng, g->cfg.prm.seed, 0x6775657374ull + v->idx);
	bool app = pcb_wl_is_app(g->cfg.ops);
	if (g->cfg.precopy_region) {
		if (app)
			run_app_loop(v, g->cfg.precopy_region, true);
		else
			run_loop(v, &ls, g->cfg.precopy_region, true);
		/* switch-over: park until the destination is ready */
		pthread_mutex_lock(&g->lock);
		g->parked++;
		pthread_cond_broadcast(&g->cond);
		while (!g->resumed)
			pthread_cond_wait(&g->cond, &g->lock);
		pthread_mutex_unlock(&g->lock);
	}
	if (app)
		run_app_loop(v, g->cfg.region, false);
	else
		run_loop(v, &ls, g->cfg.region, false);
}

/* This vCPU is done at t_end: the last one tells on_end and pcb_guest_wait. */
static void vcpu_finished(struct pcb_guest *g, uint64_t t_end)
{
	uint64_t cur = atomic_load(&g->t_end_max);
	while (cur < t_end && !atomic_compare_exchange_weak(&g->t_end_max, &cur, t_end))
		;
	if (atomic_fetch_sub(&g->running, 1) != 1)
		return;
	uint64_t end = atomic_load(&g->t_end_max);
	if (g->cfg.on_end)
		g->cfg.on_end(g->cfg.on_end_arg, end);
	pthread_mutex_lock(&g->lock);
	g->t_end = end;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *vcpu_main(void *arg)
{
	struct vcpu *v = arg;
	struct pcb_guest *g = v->g;
	v->res.tid = gettid();
	v->res.cpu_start = sched_getcpu();
	pthread_mutex_lock(&g->lock);
	g->ready++;
	pthread_cond_broadcast(&g->cond);
	while (!g->go)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	if (g->go && g->kvm)
		pcb_kvm_run_vcpu(g->kvm, v->idx, g->base_ns, &v->res);
	else if (g->go)
		run_ops(v);
	v->res.cpu_end = sched_getcpu();
	v->res.cpu_ns = pcb_thread_cpu_ns();
	PCB_PROBE_GUEST_STOP(v->idx);
	vcpu_finished(g, v->res.t_end_ns ? v->res.t_end_ns : pcb_now_ns());
	return NULL;
}

int pcb_guest_create(const struct pcb_guest_cfg *cfg, const _Atomic uint64_t *const *faults,
		     struct pcb_guest **out, char *why, size_t whylen)
{
	struct pcb_guest *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	g->cfg = *cfg;
	g->n = cfg->prm.nvcpus;
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->err_lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->v = calloc(g->n, sizeof(*g->v));
	if (!g->v) {
		free(g);
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	why[0] = 0;
	int irc = cfg->ops->init ? cfg->ops->init(&g->shared, &cfg->prm, why, whylen) : 0;
	if (irc < 0) {
		if (irc < -1 && !why[0])
			snprintf(why, whylen, "workload %s: initialisation failed (out of memory?)", cfg->ops->name);
		free(g->v);
		free(g);
		return irc == -1 ? PCB_EXIT_USAGE : -irc;
	}
	for (unsigned i = 0; i < g->n; i++) {
		struct vcpu *v = &g->v[i];
		v->g = g;
		v->idx = i;
		v->faults = faults && faults[i] ? faults[i] : &no_faults;
		v->res.vcpu = i;
		pcb_hist_init(&v->res.fault_lat);
		pcb_hist_init(&v->res.op_lat);
		if (cfg->ops->thread_init(&v->ts, g->shared, &cfg->prm, i) < 0) {
			snprintf(why, whylen, "workload %s: vCPU %u failed to initialise", cfg->ops->name, i);
			pcb_guest_destroy(g);
			return PCB_EXIT_OSERR;
		}
	}
	if (cfg->record && pcb_wl_is_app(cfg->ops)) {
		snprintf(why, whylen, "invalid value for --record: workload %s is application code whose loads and stores "
			 "pcbench does not see", cfg->ops->name);
		pcb_guest_destroy(g);
		return PCB_EXIT_USAGE;
	}
	if (cfg->kvm && !pcb_wl_is_app(cfg->ops) && (cfg->im->mem || cfg->im->opaque)) {
		snprintf(why, whylen, "invalid value for --guest: 'kvm' (the KVM guest checks its reads against the generated "
			 "image; this run serves a bytes image)");
		pcb_guest_destroy(g);
		return PCB_EXIT_USAGE;
	}
	if (cfg->kvm && pcb_wl_is_app(cfg->ops)) {
		snprintf(why, whylen, "invalid value for --guest: 'kvm' (workload %s is application code that runs in the "
			 "process guest only)", cfg->ops->name);
		pcb_guest_destroy(g);
		return PCB_EXIT_USAGE;
	}
	if (cfg->kvm) {
		if (cfg->precopy_region) {
			snprintf(why, whylen, "invalid value for --precopy: the KVM guest has no pre-copy phase (use --guest=process)");
			pcb_guest_destroy(g);
			return PCB_EXIT_USAGE;
		}
		if (cfg->record) {
			snprintf(why, whylen, "invalid value for --record: the KVM guest does not record its accesses");
			pcb_guest_destroy(g);
			return PCB_EXIT_USAGE;
		}
		void *st[PCB_MAX_VCPUS_GUEST];
		const _Atomic uint64_t *fc[PCB_MAX_VCPUS_GUEST];
		if (g->n > PCB_MAX_VCPUS_GUEST) {
			snprintf(why, whylen, "invalid value for --vcpus: '%u' (the KVM guest has at most %d)", g->n, PCB_MAX_VCPUS_GUEST);
			pcb_guest_destroy(g);
			return PCB_EXIT_USAGE;
		}
		for (unsigned i = 0; i < g->n; i++) {
			st[i] = g->v[i].ts;
			fc[i] = g->v[i].faults;
		}
		struct pcb_kvm_cfg kc = {
			.ops = cfg->ops, .region = cfg->region, .npages = cfg->prm.npages, .nvcpus = g->n, .im = cfg->im,
			.first_touch = cfg->first_touch, .faults = fc, .gen_state = st, .shared = g->shared, .seed = cfg->prm.seed,
			.write_ratio = cfg->write_ratio, .duration_ns = cfg->duration_ns, .ops_limit = cfg->ops_limit,
			.bucket_ns = cfg->bucket_ns,
		};
		int rc = pcb_kvm_create(&kc, &g->kvm, why, whylen);
		if (rc) {
			pcb_guest_destroy(g);
			return rc;
		}
	}
	*out = g;
	return 0;
}

const char *pcb_guest_error(struct pcb_guest *g)
{
	if (g->kvm)
		return pcb_kvm_error(g->kvm);
	return g->app_err[0] ? g->app_err : NULL;
}

int pcb_guest_app_check(struct pcb_guest *g, struct pcb_app_report *rep, char *why, size_t whylen)
{
	if (!pcb_wl_is_app(g->cfg.ops)) {
		snprintf(why, whylen, "workload %s is not an application guest", g->cfg.ops->name);
		return PCB_EXIT_SOFTWARE;
	}
	return g->cfg.ops->app_check(g->shared, rep, why, whylen);
}
uint32_t pcb_guest_kvm_tsc_khz(struct pcb_guest *g) { return g->kvm ? pcb_kvm_tsc_khz(g->kvm) : 0; }

int pcb_guest_start(struct pcb_guest *g)
{
	atomic_store(&g->running, g->n);
	for (unsigned i = 0; i < g->n; i++) {
		if (pthread_create(&g->v[i].th, NULL, vcpu_main, &g->v[i]) != 0)
			return PCB_EXIT_OSERR;
		g->started++;
	}
	pthread_mutex_lock(&g->lock);
	while (g->ready < g->n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

pid_t pcb_guest_tid(struct pcb_guest *g, unsigned vcpu) { return g->v[vcpu].res.tid; }

void pcb_guest_go(struct pcb_guest *g, uint64_t base_ns)
{
	pthread_mutex_lock(&g->lock);
	g->base_ns = base_ns;
	g->go = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void pcb_guest_pause(struct pcb_guest *g)
{
	atomic_store(&g->pause, true);
	pthread_mutex_lock(&g->lock);
	while (g->parked < g->n)   /* every vCPU parks after its pre-copy loop, even one whose workload stopped */
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

void pcb_guest_resume(struct pcb_guest *g, uint64_t base_ns)
{
	pthread_mutex_lock(&g->lock);
	g->base_ns = base_ns;
	g->resumed = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

unsigned pcb_guest_running(struct pcb_guest *g) { return atomic_load(&g->running); }

void pcb_guest_wait(struct pcb_guest *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->t_end)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

uint64_t pcb_guest_end_ns(struct pcb_guest *g)
{
	pthread_mutex_lock(&g->lock);
	uint64_t t = g->t_end;
	pthread_mutex_unlock(&g->lock);
	return t;
}

void pcb_guest_join(struct pcb_guest *g)
{
	for (unsigned i = 0; i < g->started; i++)
		pthread_join(g->v[i].th, NULL);
	g->started = 0;
}

const struct pcb_vcpu_result *pcb_guest_result(struct pcb_guest *g, unsigned vcpu) { return &g->v[vcpu].res; }

int pcb_guest_record_save(struct pcb_guest *g, const char *path)
{
	struct pcb_atrace t = { .nvcpus = g->n, .npages = g->cfg.prm.npages };
	for (unsigned i = 0; i < g->n; i++)
		t.count += g->v[i].res.nrec;
	t.rec = malloc((t.count ? t.count : 1) * sizeof(*t.rec));
	if (!t.rec)
		return -ENOMEM;
	/* merge the vCPUs' streams in time order (each is already in order) */
	uint64_t *head = calloc(g->n, sizeof(*head));
	if (!head) {
		free(t.rec);
		return -ENOMEM;
	}
	for (uint64_t n = 0; n < t.count; n++) {
		unsigned best = g->n;
		for (unsigned i = 0; i < g->n; i++)
			if (head[i] < g->v[i].res.nrec &&
			    (best == g->n || g->v[i].res.rec[head[i]].t_ns < g->v[best].res.rec[head[best]].t_ns))
				best = i;
		t.rec[n] = g->v[best].res.rec[head[best]++];
	}
	free(head);
	int rc = pcb_atrace_save(path, &t);
	free(t.rec);
	return rc;
}

void pcb_guest_destroy(struct pcb_guest *g)
{
	if (!g)
		return;
	pcb_kvm_destroy(g->kvm);
	for (unsigned i = 0; i < g->n; i++) {
		if (g->v[i].ts && g->cfg.ops->thread_fini)
			g->cfg.ops->thread_fini(g->v[i].ts);
		free(g->v[i].res.buckets);
		free(g->v[i].res.rec);
		free(g->v[i].res.stalls);
	}
	if (g->cfg.ops->fini)
		g->cfg.ops->fini(g->shared);
	free(g->v);
	free(g);
}
