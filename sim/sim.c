/* The simulator's event model (see sim/sim.h for what is modelled). */
#include "sim/sim.h"
#include "common/image.h"
#include "common/util.h"
#include "wire/link.h"
#include "pager/pagestate.h"
#include "pager/probes.h"
#include "wire/proto.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pcb_sim_defaults(struct pcb_sim_params *sp)
{
	memset(sp, 0, sizeof(*sp));
	/* the development machine's loopback (docs/results/2026-11-26-simulator-costs.md) */
	sp->bps = 21600000000ull;
	sp->rtt_ns = 16000;
	sp->batch_pages = 64;        /* live --batch default */
	sp->window = 4;              /* live --window default */
	sp->channels = 2;
	sp->run_pages = PCB_MAX_RUN_PAGES;
	sp->early_ns = 100000;
	sp->seed = 1;
	sp->zero_pages = 0.25;
	sp->zero_run_max = 1024;     /* the live --zero-model default: runs up to 1024 pages (0 = uniform) */
	sp->think_ns = PCB_SIM_THINK_RECORDED;
	/* fault -> UFFDIO_COPY -> wake across CPUs, and the zero-page variant: measured costs of
	 * the development machine (docs/results/2026-11-26-simulator-costs.md); --demand-cost etc. */
	sp->demand_copy_ns = 35000;
	sp->demand_zero_ns = 33800;
	sp->jitter_ns = 0;           /* an ideal host: no contention delays (see --jitter) */
	sp->bg_copy_ns = 1030;       /* batched COPY (the note above) */
	sp->bg_zero_ns = 90;         /* batched ZEROPAGE (the note above) */
	sp->bg_poll_ns = 2000000;    /* pager/background.c: an idle background thread waits 2 ms */
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
	uint64_t rel;                /* link release time of its next frame, once reserved (0 = not yet) */
	uint64_t t_req;              /* demand: when the pager sent it */
};

struct queue {
	struct item *q;
	unsigned head, len, cap;
};

/* One source connection (source/source.c sconn): the demand one, the
 * background one, or with --channels=1 the shared one (demand requests in uq,
 * served before background frames at frame boundaries). */
struct sender {
	struct queue q, uq;
	bool demand;                 /* the demand connection: replies overtake background frames on the link */
	bool shared;
	uint64_t sched_at;           /* the pending EV_SEND (UINT64_MAX: none); others are stale */
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
	unsigned wsize;              /* batches in flight: --window, or (push) enough to fill the socket buffer */
	unsigned batch_pages;        /* --batch, or what the policy asks for (ops->batch_pages) */
	uint64_t next_id, done_id;
	uint64_t tat;                /* link free at */
	uint64_t utat;               /* ... for demand replies reserved ahead of background frames */
	uint64_t ifree;              /* the background installer is free at */
	uint64_t ser[PCB_MAX_RUN_PAGES + 1];   /* serialisation of a frame of n pages */
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

static uint64_t ser_calc(uint64_t bytes, uint64_t bps)
{
	return (uint64_t)(((unsigned __int128)bytes * 8 * PCB_NSEC_PER_SEC + bps - 1) / bps);
}

/* Serialisation time of a frame, rounded up as wire/link.c does; every frame
 * is a header and 0..PCB_MAX_RUN_PAGES pages: from a table. */
static uint64_t ser_ns(const struct sim *s, uint64_t bytes)
{
	uint64_t n = (bytes - PCB_HDR_SIZE) / PCB_PAGE_SIZE;
	if (bytes >= PCB_HDR_SIZE && n <= PCB_MAX_RUN_PAGES && bytes == PCB_HDR_SIZE + n * PCB_PAGE_SIZE)
		return s->ser[n];
	return ser_calc(bytes, s->sp->bps);
}

/* pcb_link_reserve: the frame leaves when the link is free and it is due. */
static uint64_t link_reserve(struct sim *s, uint64_t bytes, uint64_t ready)
{
	if (!s->sp->bps)
		return ready;
	uint64_t start = s->tat > ready ? s->tat : ready;
	s->tat = start + ser_ns(s, bytes);
	return s->tat;
}

/* pcb_link_reserve_urgent: a demand reply on its own connection waits for the
 * background packet on the wire (at most one MTU) and earlier demand replies;
 * background frames already reserved are pushed back by its serialisation. */
static uint64_t link_reserve_urgent(struct sim *s, uint64_t bytes, uint64_t ready)
{
	if (!s->sp->bps)
		return ready;
	uint64_t ser = ser_ns(s, bytes), mtu = ser_ns(s, PCB_LINK_MTU);
	uint64_t start = s->utat > ready ? s->utat : ready;
	if (s->tat > start) {
		start += s->tat - start < mtu ? s->tat - start : mtu;
		s->tat += ser;
	}
	s->utat = start + ser;
	if (s->tat < s->utat)
		s->tat = s->utat;
	return s->utat;
}

static struct item *q_head(struct queue *q)
{
	return &q->q[q->head];
}

static void q_pop(struct queue *q)
{
	q->head = (q->head + 1) % q->cap;
	q->len--;
}

static int q_push(struct queue *q, const struct item *it)
{
	if (q->len == q->cap) {
		unsigned nc = q->cap ? q->cap * 2 : 16;
		struct item *n = malloc(nc * sizeof(*n));
		if (!n)
			return -1;
		for (unsigned i = 0; i < q->len; i++)
			n[i] = q->q[(q->head + i) % q->cap];
		free(q->q);
		q->q = n;
		q->head = 0;
		q->cap = nc;
	}
	q->q[(q->head + q->len) % q->cap] = *it;
	q->len++;
	return 0;
}

static void sender_kick(struct sim *s, unsigned si, uint64_t t)
{
	struct sender *S = &s->snd[si];
	if (t < S->sched_at) {
		S->sched_at = t;
		push(s, t, EV_SEND, si, 0);
	}
}

/* The shared connection's modelled socket-buffer wait for a demand reply
 * (source/source.c shared_sockq_ns): the background bytes queued at the
 * source, at most PCB_SIM_SOCKQ_BYTES, at the link rate. */
static uint64_t sockq_ns(struct sim *s, struct sender *S)
{
	if (!s->sp->bps)
		return 0;
	if (s->sp->push && S->q.len)   /* a pushing sender keeps the socket buffer full (as the live source models it) */
		return (uint64_t)((unsigned __int128)PCB_SIM_SOCKQ_BYTES * 8 * PCB_NSEC_PER_SEC / s->sp->bps);
	uint64_t bytes = 0;
	for (unsigned k = 0; k < S->q.len && bytes < PCB_SIM_SOCKQ_BYTES; k++) {
		const struct item *it = &S->q.q[(S->q.head + k) % S->q.cap];
		const struct bslot *b = &s->ring[it->slot];
		for (unsigned ri = it->ri; ri < b->nr && bytes < PCB_SIM_SOCKQ_BYTES; ri++)
			for (uint64_t o = ri == it->ri ? it->off : 0; o < b->r[ri].count && bytes < PCB_SIM_SOCKQ_BYTES; o++)
				bytes += pcb_image_is_zero(&s->im, b->r[ri].first + o) ? PCB_HDR_SIZE : PCB_PAGE_SIZE + PCB_HDR_SIZE / 16;
	}
	if (bytes > PCB_SIM_SOCKQ_BYTES)
		bytes = PCB_SIM_SOCKQ_BYTES;
	return (uint64_t)((unsigned __int128)bytes * 8 * PCB_NSEC_PER_SEC / s->sp->bps);
}

static void enqueue(struct sim *s, unsigned si, struct item it, uint64_t now)
{
	struct sender *S = &s->snd[si];
	struct queue *q = &S->q;
	if (S->shared && !it.batch) {
		it.due += sockq_ns(s, S);
		q = &S->uq;
	}
	if (q_push(q, &it) < 0) {
		oom(s);
		return;
	}
	sender_kick(s, si, it.due > now ? it.due : now);
}

struct frame {
	unsigned ft;
	uint64_t first, n, bytes;
	bool last;                   /* the item's last frame */
};

/* The next frame of a queued request (source/source.c item_frame_len). */
static struct frame next_frame(const struct sim *s, const struct item *it)
{
	struct frame f = { .n = 1, .bytes = PCB_HDR_SIZE };
	if (!it->batch) {
		f.first = it->page;
		f.ft = pcb_image_is_zero(&s->im, f.first) ? F_ZERO_DEMAND : F_PAGE;
		f.bytes += f.ft == F_PAGE ? PCB_PAGE_SIZE : 0;
		f.last = true;
		return f;
	}
	const struct bslot *b = &s->ring[it->slot];
	if (it->ri == b->nr) {
		f.ft = F_END;
		f.last = true;
		return f;
	}
	f.first = b->r[it->ri].first + it->off;
	if (pcb_image_is_zero(&s->im, f.first)) {
		f.ft = F_ZERO_BG;
		return f;
	}
	f.ft = F_RUN;
	uint64_t left = b->r[it->ri].count - it->off;
	while (f.n < left && f.n < s->sp->run_pages && !pcb_image_is_zero(&s->im, f.first + f.n))
		f.n++;
	f.bytes += f.n * PCB_PAGE_SIZE;
	return f;
}

/* The connection sends every frame whose time has come (source/source.c
 * run_queue): a due demand request first, else the head background request;
 * a frame is reserved on the link once and leaves at its release time (a
 * background frame up to early_ns before it). */
static void ev_send(struct sim *s, unsigned si, uint64_t now)
{
	struct sender *S = &s->snd[si];
	if (now != S->sched_at)
		return;   /* superseded by an earlier wake-up */
	S->sched_at = UINT64_MAX;
	for (;;) {
		struct item *it = NULL;
		struct queue *q = NULL;
		uint64_t next = UINT64_MAX;
		if (S->uq.len) {
			struct item *u = q_head(&S->uq);
			if (u->due <= now) {
				it = u;
				q = &S->uq;
			} else {
				next = u->due;
			}
		}
		if (!it && S->q.len) {
			struct item *b = q_head(&S->q);
			if (b->due <= now) {
				it = b;
				q = &S->q;
			} else if (b->due < next) {
				next = b->due;
			}
		}
		if (!it) {
			if (next != UINT64_MAX)
				sender_kick(s, si, next);
			return;
		}
		struct frame f = next_frame(s, it);
		uint64_t early = it->batch ? s->sp->early_ns : 0;
		if (!it->rel)
			it->rel = S->demand ? link_reserve_urgent(s, f.bytes, it->due) : link_reserve(s, f.bytes, it->due);
		if (it->rel > now + early) {
			uint64_t w = it->rel - early;
			sender_kick(s, si, w < next ? w : next);
			return;
		}
		it->rel = 0;
		bool drain = it->batch && s->ring[it->slot].drain;
		s->res->link_bytes[it->batch ? SND_BG : SND_DEMAND] += f.bytes;
		if (!it->batch)
			pcb_hist_add(&s->res->demand_rtt, now - it->t_req);
		push(s, now, EV_FRAME, f.first, f.n | (uint64_t)f.ft << 32 | (uint64_t)drain << 40);
		if (it->batch && !f.last) {
			it->off += f.n;
			if (it->off == s->ring[it->slot].r[it->ri].count) {
				it->off = 0;
				it->ri++;
			}
		}
		if (f.last)
			q_pop(q);
	}
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

/* The background thread fills its window (pager/background.c bg_thread / bg_next_batch). */
static void refill(struct sim *s, uint64_t now)
{
	const struct pcb_policy_ops *ops = s->pol.ops;
	while (!s->complete && s->next_id - s->done_id < s->wsize) {
		struct bslot *rb = &s->ring[s->next_id % s->wsize];
		struct pcb_batch b = { .r = rb->r, .max_ranges = PCB_MAX_RANGES, .max_pages = s->batch_pages };
		unsigned n = 0;
		bool drain = false;
		if (ops->background)
			n = ops->next_batch(&s->pol, &b);
		if (!n && s->sp->push)   /* the source moves every page (source/push.c) */
			n = pcb_policy_fill_sequential(&s->pol, &b, &s->drain_cursor);
		if (!n && s->drain) {
			n = pcb_policy_fill_sequential(&s->pol, &b, &s->drain_cursor);
			drain = n > 0;
		}
		if (!n)
			break;
		rb->nr = b.nr;
		rb->drain = drain;
		/* pulled: due at the source a round trip later; pushed: the source decides it now */
		struct item it = { .batch = true, .due = now + (s->sp->push ? 0 : s->sp->rtt_ns),
				   .slot = (unsigned)(s->next_id % s->wsize) };
		s->next_id++;
		s->res->bg_batches++;
		s->res->bg_pages_requested += n;
		s->res->drain_batches += drain;
		enqueue(s, SND_BG, it, now);
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
	bool first = pcb_bit_set(s->ps.demanded, pg);
	/* a page of a batch in flight is not asked for again: the live pager's
	 * default (--inflight=wait, pager/demand.c), and CRIU's is_page_queued;
	 * pushing, the live source answers a request for a page its stream
	 * carries SENT (source/source.c): the same wait */
	bool queued = first && pcb_bit_test(s->ps.claimed, pg);
	if (queued)
		first = false;
	if (s->sp->keep_faults) {
		if (!(res->nfault_ev & (res->nfault_ev + 1)) || !res->fault_ev) {   /* grow at 0, 1, 3, 7, ... */
			void *n = realloc(res->fault_ev, (res->nfault_ev + 1) * 2 * sizeof(*res->fault_ev));
			if (!n) {
				oom(s);
				return;
			}
			res->fault_ev = n;
		}
		res->fault_ev[res->nfault_ev++] = pcb_fev_make(now, pg, (int)v, first ? 0 : 2);
	}
	if (first) {
		res->demand_requests++;
		uint64_t lag = s->sp->fault_ns;
		if (s->sp->jitter_ns && s->snd[SND_BG].q.len)   /* host contention while the background pull runs */
			lag += (uint64_t)(-(double)s->sp->jitter_ns * log1p(-pcb_rng_double(&s->rng)));
		struct item it = { .batch = false, .due = now + lag + s->sp->rtt_ns, .page = pg, .t_req = now + lag };
		enqueue(s, s->sp->channels == 1 ? SND_BG : SND_DEMAND, it, now);
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
		/* the cost is mostly the wake-ups around the ioctl, not time the demand thread is
		 * busy: replies are not serialised behind each other */
		uint64_t done = now + (ft == F_PAGE ? s->sp->demand_copy_ns : s->sp->demand_zero_ns);
		push(s, done, EV_INSTALLED, first, 1 | (uint64_t)(ft == F_PAGE ? PCB_INST_DEMAND : PCB_INST_ZERO_DEMAND) << 32);
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
		pcb_kind_set(res->inst_kind, pg, (unsigned)kind);
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

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * PCB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
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
	pcb_image_free_bytes(&s->im);
	for (unsigned v = 0; s->vc && v < s->res->nvcpus; v++)
		free((void *)s->vc[v].idx);
	free(s->vc);
	free(s->waiters);
	free(s->h.e);
	for (unsigned i = 0; i < 2; i++) {
		free(s->snd[i].q.q);
		free(s->snd[i].uq.q);
	}
	if (s->ring)
		free(s->ring[0].r);
	free(s->ring);
	pcb_ps_free(&s->ps);
}

/* the policy, the trace and the guest size; 0 or an exit code */
static int check_input(const struct pcb_sim_params *sp, const struct pcb_atrace *t, const struct pcb_policy_ops *ops,
		       uint64_t *npages_out, char *why, size_t whylen)
{
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
	*npages_out = npages;
	return 0;
}

/* the result's and the model's arrays, the page image, the senders and the serialisation times */
static int sim_setup(struct sim *s, uint64_t npages)
{
	const struct pcb_sim_params *sp = s->sp;
	struct pcb_sim_result *res = s->res;
	res->npages = npages;
	res->nvcpus = s->t->nvcpus ? s->t->nvcpus : 1;
	pcb_hist_init(&res->fault_lat);
	pcb_hist_init(&res->demand_rtt);
	res->vcpu = calloc(res->nvcpus, sizeof(*res->vcpu));
	res->first_touch = calloc(npages, sizeof(*res->first_touch));
	res->inst_us = calloc(npages, sizeof(*res->inst_us));
	res->inst_kind = calloc(pcb_kinds_bytes(npages), 1);
	s->vc = calloc(res->nvcpus, sizeof(*s->vc));
	s->waiters = malloc(npages * sizeof(*s->waiters));
	s->wsize = sp->window;
	if (sp->push)   /* the live source keeps PUSH_QUEUED batches queued and paces them on the link */
		s->wsize = PCB_SIM_PUSH_QUEUED;
	s->ring = calloc(s->wsize, sizeof(*s->ring));
	struct pcb_range *ranges = s->ring ? calloc((size_t)PCB_MAX_RANGES * s->wsize, sizeof(*ranges)) : NULL;
	if (!res->vcpu || !res->first_touch || !res->inst_us || !res->inst_kind || !s->vc || !s->waiters || !ranges ||
	    pcb_ps_init(&s->ps, npages) < 0) {
		free(ranges);
		snprintf(s->why, s->whylen, "simulate: out of memory for %llu pages", (unsigned long long)npages);
		return PCB_EXIT_OSERR;
	}
	for (unsigned i = 0; i < s->wsize; i++)
		s->ring[i].r = ranges + (size_t)PCB_MAX_RANGES * i;
	memset(s->waiters, 0xff, npages * sizeof(*s->waiters));
	s->snd[SND_DEMAND].demand = true;
	s->snd[SND_BG].shared = sp->channels == 1;
	s->snd[SND_DEMAND].sched_at = s->snd[SND_BG].sched_at = UINT64_MAX;
	pcb_image_init(&s->im, sp->seed, npages, sp->zero_pages);
	if (sp->zero_run_max && pcb_image_zero_runs(&s->im, sp->zero_run_max) < 0)
		oom(s);
	pcb_rng_seed(&s->rng, sp->seed, 0x53494du);
	for (unsigned n = 0; sp->bps && n <= PCB_MAX_RUN_PAGES; n++)
		s->ser[n] = ser_calc(PCB_HDR_SIZE + (uint64_t)n * PCB_PAGE_SIZE, sp->bps);   /* "SIM" */
	return 0;
}

/* each vCPU's records, in trace order */
static int split_by_vcpu(struct sim *s)
{
	const struct pcb_atrace *t = s->t;
	if (s->res->nvcpus == 1) {
		s->vc[0].n = t->count;
		return 0;
	}
	for (uint64_t i = 0; i < t->count; i++)
		s->vc[t->rec[i].vcpu].n++;
	for (unsigned v = 0; v < s->res->nvcpus; v++) {
		s->vc[v].idx = malloc((s->vc[v].n ? s->vc[v].n : 1) * sizeof(uint64_t));
		if (!s->vc[v].idx) {
			snprintf(s->why, s->whylen, "simulate: out of memory");
			return PCB_EXIT_OSERR;
		}
		s->vc[v].n = 0;
	}
	for (uint64_t i = 0; i < t->count; i++) {
		struct vc *c = &s->vc[t->rec[i].vcpu];
		((uint64_t *)c->idx)[c->n++] = i;
	}
	return 0;
}

/* the policy with its knobs; its batch size and in-flight limit as the pager
 * takes them (pager/lifecycle.c, background.c bg_window) */
static int open_policy(struct sim *s, const struct pcb_policy_ops *ops, const struct pcb_policy *opts)
{
	if (opts) {
		s->pol.nopts = opts->nopts;
		memcpy(s->pol.opts, opts->opts, sizeof(s->pol.opts));
	}
	int orc = pcb_policy_open(&s->pol, ops, &s->ps, s->res->npages, 1, s->why, s->whylen);
	if (orc < 0)   /* -1: a bad knob (64); else what init returned (-65: an unreadable input file) */
		return orc == -1 ? PCB_EXIT_USAGE : -orc;
	/* a real destination has no first-touch record: only with the policy's oracle knob */
	s->pol.first_touch = pcb_policy_oracle_first_touch(ops, &s->pol) ? s->res->first_touch : NULL;
	s->batch_pages = s->sp->batch_pages;
	if (ops->batch_pages) {
		unsigned bp = ops->batch_pages(&s->pol);
		s->batch_pages = bp && bp <= PCB_MAX_BATCH_PAGES ? bp : s->batch_pages;
	}
	if (!s->sp->push && ops->max_inflight && ops->max_inflight < s->wsize)
		s->wsize = ops->max_inflight;
	return 0;
}

/* switch-over, then events in time order until every page is present and
 * every vCPU done; the wall and CPU time the model took */
static void run_events(struct sim *s, const struct pcb_policy_ops *ops)
{
	struct pcb_sim_result *res = s->res;
	uint64_t w0 = pcb_now_ns(), c0 = cpu_ns();
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
	res->cpu_ns = cpu_ns() - c0;
	if (!s->err && !(s->complete && !s->running)) {
		s->err = PCB_EXIT_SOFTWARE;
		snprintf(s->why, s->whylen, "simulate: the model stopped with %llu pages missing and %u vCPUs running "
			 "(policy %s returned no batch and nothing was in flight)",
			 (unsigned long long)(res->npages - s->ps.npresent), s->running, ops->name);
	}
}

int pcb_sim_run(const struct pcb_sim_params *sp, const struct pcb_atrace *t, const struct pcb_policy_ops *ops,
		const struct pcb_policy *opts, struct pcb_sim_result *res, char *why, size_t whylen)
{
	memset(res, 0, sizeof(*res));
	why[0] = 0;
	uint64_t npages = 0;
	int rc = check_params(sp, why, whylen);
	if (!rc)
		rc = check_input(sp, t, ops, &npages, why, whylen);
	if (rc)
		return rc;
	struct sim S = { .sp = sp, .t = t, .res = res, .why = why, .whylen = whylen };
	struct sim *s = &S;
	if (!(rc = sim_setup(s, npages)) && !(rc = split_by_vcpu(s)) && !(rc = open_policy(s, ops, opts))) {
		run_events(s, ops);
		rc = s->err;
		pcb_policy_close(&s->pol);
	}
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
	free(res->fault_ev);
	res->fault_ev = NULL;
	res->nfault_ev = 0;
	res->vcpu = NULL;
	res->first_touch = NULL;
	res->inst_us = NULL;
	res->inst_kind = NULL;
}
