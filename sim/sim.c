/* The simulator's event model (see sim/sim.h for what is modelled). */
#include "sim/sim.h"
#include "common/image.h"
#include "common/util.h"
#include "pager/pagestate.h"
#include "pager/probes.h"
#include "pager/proto.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pcb_sim_defaults(struct pcb_sim_params *sp)
{
	memset(sp, 0, sizeof(*sp));
	/* loopback on this machine (README "Machine"): bulk TCP 2.7 GB/s same CPU; a 4 KiB
	 * request/response over TCP 14-18 us, so 16 us round trip */
	sp->bps = 21600000000ull;
	sp->rtt_ns = 16000;
	sp->batch_pages = 64;        /* live --batch default */
	sp->window = 4;              /* live --window default */
	sp->channels = 2;
	sp->run_pages = PCB_MAX_RUN_PAGES;
	sp->early_ns = 100000;
	sp->seed = 1;
	sp->zero_pages = 0.25;
	sp->think_ns = PCB_SIM_THINK_RECORDED;
	/* fault -> UFFDIO_COPY -> wake round trip across CPUs (the unpinned default placement):
	 * 35-67 us measured here (same CPU 6.9 us); a live demand-only run showed guest-seen
	 * fault latency 33 us above the pager's request round trip.  Zero pages: 1.2 us less
	 * (UFFDIO_ZEROPAGE 5.7 vs COPY 6.9 us same CPU). */
	sp->demand_copy_ns = 35000;
	sp->demand_zero_ns = 33800;
	/* demand requests while the background pull runs: live runs with --link=200mbit,1ms on
	 * this 2-CPU VM took 180 us longer per fault than the link model (guest-seen latency
	 * minus the modelled one; wake-ups delayed by the background threads) */
	sp->jitter_ns = 150000;
	sp->bg_copy_ns = 1030;       /* batched COPY, 16 pages per ioctl: 0.97 M pages/s */
	sp->bg_zero_ns = 90;         /* batched ZEROPAGE, 64..256 per ioctl: 10.7-11.5 M pages/s */
	sp->bg_poll_ns = 2000000;    /* pager.c: an idle background thread waits 2 ms */
}

/* ---- events ------------------------------------------------------------------ */

enum { EV_VCPU, EV_SEND, EV_FRAME, EV_INSTALLED, EV_POLL };
enum { F_PAGE, F_ZERO_DEMAND, F_RUN, F_ZERO_BG, F_END };
enum { SND_DEMAND, SND_BG };

struct ev {
	uint64_t t;
	uint64_t key;                /* seq << 3 | type: equal times in the order scheduled */
	uint64_t a, b;
};

struct heap {
	struct ev *e;
	size_t n, cap;
	uint64_t seq;
};

static inline bool ev_less(const struct ev *x, const struct ev *y)
{
	return x->t < y->t || (x->t == y->t && x->key < y->key);
}

static int heap_push(struct heap *h, uint64_t t, unsigned type, uint64_t a, uint64_t b)
{
	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 1024;
		void *p = realloc(h->e, nc * sizeof(*h->e));
		if (!p)
			return -1;
		h->e = p;
		h->cap = nc;
	}
	struct ev x = { t, (h->seq++ << 3) | type, a, b };
	size_t i = h->n++;
	while (i) {
		size_t par = (i - 1) / 2;
		if (!ev_less(&x, &h->e[par]))
			break;
		h->e[i] = h->e[par];
		i = par;
	}
	h->e[i] = x;
	return 0;
}

static struct ev heap_pop(struct heap *h)
{
	struct ev top = h->e[0], x = h->e[--h->n];
	size_t i = 0, n = h->n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(&h->e[c + 1], &h->e[c]))
			c++;
		if (!ev_less(&h->e[c], &x))
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (n)
		h->e[i] = x;
	return top;
}

/* ---- state ------------------------------------------------------------------- */

struct vc {
	const uint64_t *idx;         /* record indices of this vCPU (NULL: the trace has one vCPU) */
	uint64_t n, pos;
	uint64_t t_fault;
	int32_t next_waiter;         /* next vCPU waiting on the same page, -1 = none */
};

/* A request queued at the source. */
struct item {
	bool batch;
	uint64_t due;
	uint64_t page;               /* demand */
	unsigned slot;               /* batch: ring slot */
	unsigned ri;
	uint64_t off;
};

struct sender {
	struct item *q;
	unsigned head, len, cap;
	bool scheduled;
	uint64_t busy_until;         /* the last frame left at this time */
	uint64_t early;
};

struct bslot {
	struct pcb_range *r;
	unsigned nr;
	bool drain;
};

struct sim {
	const struct pcb_sim_params *sp;
	const struct pcb_atrace *t;
	struct pcb_sim_result *res;
	struct pcb_policy pol;
	struct pcb_pagestate ps;
	struct pcb_image im;
	struct pcb_rng rng;
	struct heap h;
	struct vc *vc;
	int32_t *waiters;            /* per page: first waiting vCPU, -1 = none */
	struct sender snd[2];
	struct bslot *ring;
	uint64_t next_id, done_id;
	uint64_t tat;                /* link free at */
	uint64_t dfree, ifree;       /* demand thread / installer free at */
	uint64_t zfirst;
	unsigned zn;
	bool zdrain;
	uint64_t drain_cursor;
	bool drain, poll_pending, complete;
	unsigned running;
	int err;
	char *why;
	size_t whylen;
};

static void oom(struct sim *s)
{
	if (!s->err) {
		s->err = PCB_EXIT_OSERR;
		snprintf(s->why, s->whylen, "simulate: out of memory");
	}
}

static void push(struct sim *s, uint64_t t, unsigned type, uint64_t a, uint64_t b)
{
	if (heap_push(&s->h, t, type, a, b) < 0)
		oom(s);
}

static inline uint64_t rec_page(const struct sim *s, const struct vc *v, uint64_t pos)
{
	return s->t->rec[v->idx ? v->idx[pos] : pos].page;
}

static inline uint64_t rec_t(const struct sim *s, const struct vc *v, uint64_t pos)
{
	return s->t->rec[v->idx ? v->idx[pos] : pos].t_ns;
}

/* When v performs access pos, its previous access having completed at now. */
static inline uint64_t access_at(const struct sim *s, const struct vc *v, uint64_t pos, uint64_t now)
{
	if (s->sp->think_ns == PCB_SIM_THINK_SCHEDULE) {
		uint64_t at = rec_t(s, v, pos);
		return at > now ? at : now;
	}
	if (s->sp->think_ns != PCB_SIM_THINK_RECORDED)
		return now + s->sp->think_ns;
	uint64_t cur = rec_t(s, v, pos), prev = pos ? rec_t(s, v, pos - 1) : 0;
	return now + (cur > prev ? cur - prev : 0);
}

static inline uint32_t us_stamp(uint64_t t_ns)
{
	uint64_t us = t_ns / 1000 + 1;
	return us > 0x7fffffffu ? 0x7fffffffu : (uint32_t)us;
}

/* ---- the source ------------------------------------------------------------------ */

static uint64_t link_reserve(struct sim *s, uint64_t bytes, uint64_t ready)
{
	if (!s->sp->bps)
		return ready;
	uint64_t ser = (uint64_t)(((unsigned __int128)bytes * 8 * PCB_NSEC_PER_SEC + s->sp->bps - 1) / s->sp->bps);
	uint64_t start = s->tat > ready ? s->tat : ready;
	s->tat = start + ser;
	return s->tat;
}

static void sender_kick(struct sim *s, unsigned si, uint64_t now)
{
	struct sender *S = &s->snd[si];
	if (S->scheduled || !S->len)
		return;
	uint64_t due = S->q[S->head].due, t = due > S->busy_until ? due : S->busy_until;
	S->scheduled = true;
	push(s, t > now ? t : now, EV_SEND, si, 0);
}

static void enqueue(struct sim *s, unsigned si, const struct item *it, uint64_t now)
{
	struct sender *S = &s->snd[si];
	if (S->len == S->cap) {
		unsigned nc = S->cap ? S->cap * 2 : 16;
		struct item *q = malloc(nc * sizeof(*q));
		if (!q) {
			oom(s);
			return;
		}
		for (unsigned i = 0; i < S->len; i++)
			q[i] = S->q[(S->head + i) % S->cap];
		free(S->q);
		S->q = q;
		S->head = 0;
		S->cap = nc;
	}
	S->q[(S->head + S->len) % S->cap] = *it;
	S->len++;
	sender_kick(s, si, now);
}

/* The sender emits its head item's next frame (pager/source.c run_queue). */
static void ev_send(struct sim *s, unsigned si, uint64_t now)
{
	struct sender *S = &s->snd[si];
	S->scheduled = false;
	if (!S->len)
		return;
	struct item *it = &S->q[S->head];
	if (it->due > now) {
		S->scheduled = true;
		push(s, it->due, EV_SEND, si, 0);
		return;
	}
	uint64_t bytes = PCB_HDR_SIZE, first, n = 1;
	unsigned ft;
	bool pop = false, drain = false;
	if (!it->batch) {
		first = it->page;
		ft = pcb_image_is_zero(&s->im, first) ? F_ZERO_DEMAND : F_PAGE;
		bytes += ft == F_PAGE ? PCB_PAGE_SIZE : 0;
		pop = true;
	} else {
		struct bslot *b = &s->ring[it->slot];
		drain = b->drain;
		if (it->ri == b->nr) {
			ft = F_END;
			first = 0;
			pop = true;
		} else {
			first = b->r[it->ri].first + it->off;
			uint64_t left = b->r[it->ri].count - it->off;
			if (pcb_image_is_zero(&s->im, first)) {
				ft = F_ZERO_BG;
			} else {
				ft = F_RUN;
				while (n < left && n < s->sp->run_pages && !pcb_image_is_zero(&s->im, first + n))
					n++;
				bytes += n * PCB_PAGE_SIZE;
			}
			it->off += n;
			if (it->off == b->r[it->ri].count) {
				it->off = 0;
				it->ri++;
			}
		}
	}
	uint64_t rel = link_reserve(s, bytes, it->due);
	uint64_t emit = rel > S->early ? rel - S->early : 0;
	if (emit < now)
		emit = now;
	s->res->link_bytes[it->batch ? SND_BG : SND_DEMAND] += bytes;
	if (!it->batch)
		pcb_hist_add(&s->res->demand_rtt, emit + s->sp->rtt_ns - it->due);
	if (pop) {
		S->head = (S->head + 1) % S->cap;
		S->len--;
	}
	S->busy_until = emit;
	push(s, emit, EV_FRAME, first, n | (uint64_t)ft << 32 | (uint64_t)drain << 40);
	sender_kick(s, si, now);
}

/* ---- the destination ------------------------------------------------------------ */

static void installer(struct sim *s, uint64_t now, uint64_t first, uint64_t n, unsigned kind, uint64_t per_page)
{
	uint64_t start = s->ifree > now ? s->ifree : now;
	s->ifree = start + n * per_page;
	push(s, s->ifree, EV_INSTALLED, first, n | (uint64_t)kind << 32);
}

static void flush_zero(struct sim *s, uint64_t now)
{
	if (!s->zn)
		return;
	installer(s, now, s->zfirst, s->zn, s->zdrain ? PCB_INST_ZERO_DRAIN : PCB_INST_ZERO_BACKGROUND, s->sp->bg_zero_ns);
	s->zn = 0;
}

/* The background thread fills its window (pager.c bg_thread / bg_next_batch). */
static void refill(struct sim *s, uint64_t now)
{
	const struct pcb_policy_ops *ops = s->pol.ops;
	while (!s->complete && s->next_id - s->done_id < s->sp->window) {
		struct bslot *rb = &s->ring[s->next_id % s->sp->window];
		struct pcb_batch b = { .r = rb->r, .max_ranges = PCB_MAX_RANGES, .max_pages = s->sp->batch_pages };
		unsigned n = 0;
		bool drain = false;
		if (ops->background)
			n = ops->next_batch(&s->pol, &b);
		if (!n && s->drain) {
			n = pcb_policy_fill_sequential(&s->pol, &b, &s->drain_cursor);
			drain = n > 0;
		}
		if (!n)
			break;
		rb->nr = b.nr;
		rb->drain = drain;
		struct item it = { .batch = true, .due = now + s->sp->rtt_ns, .slot = (unsigned)(s->next_id % s->sp->window) };
		s->next_id++;
		s->res->bg_batches++;
		s->res->bg_pages_requested += n;
		s->res->drain_batches += drain;
		enqueue(s, SND_BG, &it, now);
	}
	if (!s->complete && s->next_id == s->done_id && ops->background && !s->drain && !s->poll_pending) {
		s->poll_pending = true;
		push(s, now + s->sp->bg_poll_ns, EV_POLL, 0, 0);
	}
}

static void vcpu_finish(struct sim *s, unsigned v, uint64_t now)
{
	s->res->vcpu[v].t_end_ns = now;
	if (--s->running == 0) {
		s->res->t_guest_done_ns = now;
		s->drain = true;
		refill(s, now);
	}
}

/* The access of v at pos has completed at `now`: go on to the next one. */
static void vcpu_next(struct sim *s, unsigned v, uint64_t now)
{
	struct vc *c = &s->vc[v];
	c->pos++;
	if (c->pos == c->n)
		vcpu_finish(s, v, now);
	else
		push(s, access_at(s, c, c->pos, now), EV_VCPU, v, 0);
}

/* vCPU v performs its accesses from `now` on: hits inline while nothing else
 * happens before them, until a fault or its last access. */
static void ev_vcpu(struct sim *s, unsigned v, uint64_t now)
{
	struct vc *c = &s->vc[v];
	struct pcb_sim_result *res = s->res;
	for (;;) {
		uint64_t pg = rec_page(s, c, c->pos);
		if (!pcb_ps_present(&s->ps, pg))
			break;
		if (!atomic_load_explicit(&res->first_touch[pg], memory_order_relaxed))
			atomic_store_explicit(&res->first_touch[pg], us_stamp(now), memory_order_relaxed);
		res->vcpu[v].accesses++;
		res->accesses++;
		if (++c->pos == c->n) {
			vcpu_finish(s, v, now);
			return;
		}
		uint64_t next = access_at(s, c, c->pos, now);
		if (s->h.n && next >= s->h.e[0].t) {
			push(s, next, EV_VCPU, v, 0);
			return;
		}
		now = next;
		res->events++;
	}
	/* a fault */
	uint64_t pg = rec_page(s, c, c->pos);
	res->faults++;
	c->t_fault = now;
	if (s->pol.ops->on_fault)
		s->pol.ops->on_fault(&s->pol, pg, now);
	if (pcb_bit_set(s->ps.demanded, pg)) {
		res->demand_requests++;
		uint64_t lag = s->sp->fault_ns;
		if (s->sp->jitter_ns && s->snd[SND_BG].len)   /* host contention while the background pull runs */
			lag += (uint64_t)(-(double)s->sp->jitter_ns * log1p(-pcb_rng_double(&s->rng)));
		struct item it = { .batch = false, .due = now + lag + s->sp->rtt_ns, .page = pg };
		enqueue(s, s->sp->channels == 1 ? SND_BG : SND_DEMAND, &it, now);
	} else {
		res->faults_inflight++;
	}
	c->next_waiter = s->waiters[pg];
	s->waiters[pg] = (int32_t)v;
	if (s->pol.ops->background && s->next_id == s->done_id)
		refill(s, now);
}

static void ev_frame(struct sim *s, uint64_t now, uint64_t first, uint64_t b)
{
	unsigned ft = (unsigned)(b >> 32) & 0xff;
	uint64_t n = b & 0xffffffffu;
	bool drain = (b >> 40) & 1;
	if (ft == F_PAGE || ft == F_ZERO_DEMAND) {
		uint64_t start = s->dfree > now ? s->dfree : now;
		s->dfree = start + (ft == F_PAGE ? s->sp->demand_copy_ns : s->sp->demand_zero_ns);
		push(s, s->dfree, EV_INSTALLED, first, 1 | (uint64_t)(ft == F_PAGE ? PCB_INST_DEMAND : PCB_INST_ZERO_DEMAND) << 32);
		return;
	}
	if (ft == F_ZERO_BG) {
		if (s->zn && (s->zfirst + s->zn != first || s->zn == PCB_MAX_RUN_PAGES || s->zdrain != drain))
			flush_zero(s, now);
		if (!s->zn) {
			s->zfirst = first;
			s->zdrain = drain;
		}
		s->zn++;
	} else {
		flush_zero(s, now);
		if (ft == F_RUN)
			installer(s, now, first, n, drain ? PCB_INST_DRAIN : PCB_INST_BACKGROUND, s->sp->bg_copy_ns);
		else
			s->done_id++;
	}
	refill(s, now);
}

static void ev_installed(struct sim *s, uint64_t now, uint64_t first, uint64_t b)
{
	unsigned kind = (unsigned)(b >> 32);
	uint64_t n = b & 0xffffffffu;
	struct pcb_sim_result *res = s->res;
	for (uint64_t pg = first; pg < first + n; pg++) {
		if (!pcb_ps_set_present(&s->ps, pg)) {
			(*(kind == PCB_INST_DEMAND || kind == PCB_INST_ZERO_DEMAND ? &res->eexist_demand : &res->eexist_background))++;
			continue;
		}
		res->inst_us[pg] = us_stamp(now);
		res->inst_kind[pg] = (uint8_t)kind;
		uint64_t *cnt[] = { &res->pages_demand, &res->pages_background, &res->zero_demand,
				    &res->zero_background, &res->pages_drain, &res->zero_drain };
		(*cnt[kind])++;
		for (int32_t v = s->waiters[pg]; v >= 0;) {
			struct vc *c = &s->vc[v];
			int32_t nx = c->next_waiter;
			uint64_t lat = now - c->t_fault;
			pcb_hist_add(&res->fault_lat, lat);
			res->vcpu[v].faults++;
			res->vcpu[v].blocktime_ns += lat;
			res->vcpu[v].accesses++;
			res->accesses++;
			if (!atomic_load_explicit(&res->first_touch[pg], memory_order_relaxed))
				atomic_store_explicit(&res->first_touch[pg], us_stamp(now) | PCB_TOUCH_FAULTED,
						      memory_order_relaxed);
			vcpu_next(s, (unsigned)v, now);
			v = nx;
		}
		s->waiters[pg] = -1;
	}
	if (!s->complete && pcb_ps_complete(&s->ps)) {
		s->complete = true;
		res->t_complete_ns = now;
	}
}

/* ---- set-up and the loop ----------------------------------------------------------- */

static int check_params(const struct pcb_sim_params *sp, char *why, size_t whylen)
{
	if (!sp->batch_pages || sp->batch_pages > 4096) {
		snprintf(why, whylen, "invalid value for --batch: %u (want 1 to 4096)", sp->batch_pages);
		return PCB_EXIT_USAGE;
	}
	if (!sp->window || sp->window > 64) {
		snprintf(why, whylen, "invalid value for --window: %u (want 1 to 64)", sp->window);
		return PCB_EXIT_USAGE;
	}
	if (sp->channels != 1 && sp->channels != 2) {
		snprintf(why, whylen, "invalid value for --channels: %u (want 1 or 2)", sp->channels);
		return PCB_EXIT_USAGE;
	}
	if (!sp->run_pages || sp->run_pages > PCB_MAX_RUN_PAGES) {
		snprintf(why, whylen, "invalid run size %u pages (want 1 to %u)", sp->run_pages, (unsigned)PCB_MAX_RUN_PAGES);
		return PCB_EXIT_USAGE;
	}
	if (!sp->bg_poll_ns) {
		snprintf(why, whylen, "invalid background poll interval 0");
		return PCB_EXIT_USAGE;
	}
	return 0;
}

static void sim_free(struct sim *s)
{
	for (unsigned v = 0; s->vc && v < s->res->nvcpus; v++)
		free((void *)s->vc[v].idx);
	free(s->vc);
	free(s->waiters);
	free(s->h.e);
	free(s->snd[0].q);
	free(s->snd[1].q);
	if (s->ring)
		free(s->ring[0].r);
	free(s->ring);
	pcb_ps_free(&s->ps);
}

int pcb_sim_run(const struct pcb_sim_params *sp, const struct pcb_atrace *t, const struct pcb_policy_ops *ops,
		const struct pcb_policy *opts, struct pcb_sim_result *res, char *why, size_t whylen)
{
	memset(res, 0, sizeof(*res));
	why[0] = 0;
	int rc = check_params(sp, why, whylen);
	if (rc)
		return rc;
	if (!ops) {
		snprintf(why, whylen, "simulate: no policy");
		return PCB_EXIT_USAGE;
	}
	if (!strcmp(ops->name, "local")) {
		snprintf(why, whylen, "invalid value for --policy: 'local' is not a migration (nothing to simulate)");
		return PCB_EXIT_USAGE;
	}
	if (!t->count) {
		snprintf(why, whylen, "simulate: the trace has no accesses");
		return PCB_EXIT_DATAERR;
	}
	uint64_t npages = sp->npages ? sp->npages : t->npages;
	if (!npages || npages > (1ull << 36)) {
		snprintf(why, whylen, "simulate: implausible guest size of %llu pages", (unsigned long long)npages);
		return PCB_EXIT_DATAERR;
	}
	if (t->nvcpus > 65536) {
		snprintf(why, whylen, "simulate: the trace has %u vCPUs (at most 65536)", t->nvcpus);
		return PCB_EXIT_DATAERR;
	}
	for (uint64_t i = 0; i < t->count; i++)
		if (t->rec[i].page >= npages) {
			snprintf(why, whylen, "simulate: access %llu is to page %llu but %s holds %llu pages",
				 (unsigned long long)i, (unsigned long long)t->rec[i].page,
				 sp->npages ? "--mem" : "the trace's guest", (unsigned long long)npages);
			return PCB_EXIT_DATAERR;
		}

	struct sim S = { .sp = sp, .t = t, .res = res, .why = why, .whylen = whylen };
	struct sim *s = &S;
	res->npages = npages;
	res->nvcpus = t->nvcpus ? t->nvcpus : 1;
	pcb_hist_init(&res->fault_lat);
	pcb_hist_init(&res->demand_rtt);
	res->vcpu = calloc(res->nvcpus, sizeof(*res->vcpu));
	res->first_touch = calloc(npages, sizeof(*res->first_touch));
	res->inst_us = calloc(npages, sizeof(*res->inst_us));
	res->inst_kind = calloc(npages, sizeof(*res->inst_kind));
	s->vc = calloc(res->nvcpus, sizeof(*s->vc));
	s->waiters = malloc(npages * sizeof(*s->waiters));
	s->ring = calloc(sp->window, sizeof(*s->ring));
	struct pcb_range *ranges = s->ring ? calloc((size_t)PCB_MAX_RANGES * sp->window, sizeof(*ranges)) : NULL;
	if (!res->vcpu || !res->first_touch || !res->inst_us || !res->inst_kind || !s->vc || !s->waiters || !ranges ||
	    pcb_ps_init(&s->ps, npages) < 0) {
		free(ranges);
		sim_free(s);
		pcb_sim_result_free(res);
		snprintf(why, whylen, "simulate: out of memory for %llu pages", (unsigned long long)npages);
		return PCB_EXIT_OSERR;
	}
	for (unsigned i = 0; i < sp->window; i++)
		s->ring[i].r = ranges + (size_t)PCB_MAX_RANGES * i;
	memset(s->waiters, 0xff, npages * sizeof(*s->waiters));
	s->snd[SND_DEMAND].early = 0;
	s->snd[SND_BG].early = sp->early_ns;
	pcb_image_init(&s->im, sp->seed, npages, sp->zero_pages);
	pcb_rng_seed(&s->rng, sp->seed, 0x53494du);   /* "SIM" */

	/* each vCPU's records, in trace order */
	if (res->nvcpus == 1) {
		s->vc[0].n = t->count;
	} else {
		for (uint64_t i = 0; i < t->count; i++)
			s->vc[t->rec[i].vcpu].n++;
		for (unsigned v = 0; v < res->nvcpus; v++) {
			s->vc[v].idx = malloc((s->vc[v].n ? s->vc[v].n : 1) * sizeof(uint64_t));
			if (!s->vc[v].idx) {
				sim_free(s);
				pcb_sim_result_free(res);
				snprintf(why, whylen, "simulate: out of memory");
				return PCB_EXIT_OSERR;
			}
			s->vc[v].n = 0;
		}
		for (uint64_t i = 0; i < t->count; i++) {
			struct vc *c = &s->vc[t->rec[i].vcpu];
			((uint64_t *)c->idx)[c->n++] = i;
		}
	}

	if (opts) {
		s->pol.nopts = opts->nopts;
		memcpy(s->pol.opts, opts->opts, sizeof(s->pol.opts));
	}
	if (pcb_policy_open(&s->pol, ops, &s->ps, npages, 1, why, whylen) < 0) {
		sim_free(s);
		pcb_sim_result_free(res);
		return PCB_EXIT_USAGE;
	}
	s->pol.first_touch = res->first_touch;

	uint64_t w0 = pcb_now_ns();
	for (unsigned v = 0; v < res->nvcpus; v++) {
		if (s->vc[v].n) {
			s->running++;
			push(s, access_at(s, &s->vc[v], 0, 0), EV_VCPU, v, 0);
		}
	}
	if (!s->running) {
		s->drain = true;
		res->t_guest_done_ns = 0;
	}
	refill(s, 0);   /* switch-over: the background thread starts */
	while (!s->err && s->h.n && !(s->complete && !s->running)) {
		struct ev e = heap_pop(&s->h);
		res->events++;
		switch (e.key & 7) {
		case EV_VCPU:
			ev_vcpu(s, (unsigned)e.a, e.t);
			break;
		case EV_SEND:
			ev_send(s, (unsigned)e.a, e.t);
			break;
		case EV_FRAME:
			ev_frame(s, e.t, e.a, e.b);
			break;
		case EV_INSTALLED:
			ev_installed(s, e.t, e.a, e.b);
			break;
		case EV_POLL:
			s->poll_pending = false;
			if (s->next_id == s->done_id)
				refill(s, e.t);
			break;
		}
	}
	res->wall_ns = pcb_now_ns() - w0;
	if (!s->err && !(s->complete && !s->running)) {
		s->err = PCB_EXIT_SOFTWARE;
		snprintf(why, whylen, "simulate: the model stopped with %llu pages missing and %u vCPUs running "
			 "(policy %s returned no batch and nothing was in flight)",
			 (unsigned long long)(npages - s->ps.npresent), s->running, ops->name);
	}
	rc = s->err;
	pcb_policy_close(&s->pol);
	sim_free(s);
	if (rc)
		pcb_sim_result_free(res);
	return rc;
}

void pcb_sim_result_free(struct pcb_sim_result *res)
{
	free(res->vcpu);
	free((void *)res->first_touch);
	free(res->inst_us);
	free(res->inst_kind);
	res->vcpu = NULL;
	res->first_touch = NULL;
	res->inst_us = NULL;
	res->inst_kind = NULL;
}
