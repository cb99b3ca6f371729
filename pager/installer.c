/* The installer thread: installs what the background thread received (a
 * copy job of segments, a move chunk, a zero run), and the per-page record
 * of each page it resolved. */
#include "pager/background.h"

struct bg_ctx {
	struct pcb_pager *p;
	bool drain;
	uint64_t now;
	/* the install log's open run: pages installed back to back with one stamp */
	uint64_t run_first, run_n;
	uint32_t run_us;
};

static void bg_log_flush(struct bg_ctx *x)
{
	if (x->run_n)
		log_install_run(x->p, x->run_first, x->run_n, x->run_us);
	x->run_n = 0;
}

/* The page's install time, into the open run or a new one. */
static void bg_log_page(struct bg_ctx *x, uint64_t page)
{
	uint32_t us = install_stamp(x->p, x->now);
	if (x->run_n && (page != x->run_first + x->run_n || us != x->run_us))
		bg_log_flush(x);
	if (!x->run_n) {
		x->run_first = page;
		x->run_us = us;
	}
	x->run_n++;
}

/* Called by the install path for every background page it resolved. */
static void bg_installed(void *vctx, uint64_t page, int res, bool zero)
{
	struct bg_ctx *x = vctx;
	struct pcb_pager *p = x->p;
	int kind = x->drain ? PCB_INST_DRAIN : PCB_INST_BACKGROUND;
	if (zero)
		kind = zero_kind(kind);
	PCB_PROBE_INSTALLED(page, kind, res ? -EEXIST : 0);
	if (res == 0) {
		if (!x->now || !(page & 15))
			x->now = pcb_now_ns();
		if (!p->st.t_bg_first_ns)
			p->st.t_bg_first_ns = x->now;
		p->st.t_bg_last_ns = x->now;
		pcb_kind_set(p->inst_kind, page, (unsigned)kind);
		if (!p->cfg.huge)   /* else present (and timed) when its huge page is installed */
			bg_log_page(x, page);
		if (zero)
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

/* Queue a run of zero pages for the installer thread. */
int bg_flush_zero(struct pcb_pager *p, uint64_t *zfirst, unsigned *zn, bool drain)
{
	if (!*zn)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	struct pcb_install_job j = { .page = *zfirst, .n = *zn, .slot = (unsigned)slot, .zero = true, .drain = drain };
	bg_hand_off(p, &j);
	*zn = 0;
	return 0;
}

/* Install one job popped from the queue (its slot freed when done).  0, or
 * -1: installing failed (fatal set). */
static int inst_one(struct pcb_pager *p, const struct pcb_install_job *j)
{
	if (pcb_ps_complete(&p->ps)) {
		/* every page is in (a duplicate after a re-request): nothing to
		 * install, and the region may be unregistered any moment now */
		if (j->chunk)
			pcb_install_chunk_reset(&p->in, j->slot, &p->st.inst_bg);
		pcb_iq_done(&p->iq);
		return 0;
	}
	struct bg_ctx x = { .p = p, .drain = j->drain };
	int r = pcb_install_job(&p->in, j, &p->st.inst_bg, bg_installed, &x);
	bg_log_flush(&x);
	p->st.inst_bg.jobs++;
	pcb_iq_done(&p->iq);
	if (r < 0) {
		set_fatal(p, PCB_EXIT_OSERR, "installing %spages %llu..%llu failed: %s", j->zero ? "zero " : "",
			  (unsigned long long)j->page, (unsigned long long)(j->page + j->n - 1), strerror(-r));
		return -1;
	}
	return 0;
}

/* Hand a received job to the installer: queued for the installer thread, or
 * (inline install) installed here by the background thread at once, the way
 * a single-threaded receiver does it: no wake-up, the data still in this CPU's
 * cache. */
void bg_hand_off(struct pcb_pager *p, const struct pcb_install_job *j)
{
	pcb_iq_push(&p->iq, j);
	if (!p->inst_inline)
		return;
	struct pcb_install_job q;
	if (pcb_iq_pop(&p->iq, &q, &p->stopping, &p->fatal) == 0)
		inst_one(p, &q);
}

/* The installer thread: issues the install ioctls of what the background
 * thread received, so receiving the next run overlaps installing this one. */
void *inst_thread(void *arg)
{
	struct pcb_pager *p = arg;
	if (p->cfg.pin_install)
		pcb_pin_self((int)p->cfg.pin_install - 1);
	struct pcb_install_job j;
	while (pcb_iq_pop(&p->iq, &j, &p->stopping, &p->fatal) == 0)
		if (inst_one(p, &j) < 0)
			break;
	p->st.install_cpu = sched_getcpu();
	p->st.install_cpu_ns = pcb_thread_cpu_ns();
	return NULL;
}

/* Continue mode: the receiver claims each page-cache page it writes (the
 * `filled` bit) so that the demand path leaves it alone.  A run cut short by a
 * lost connection is never installed: release its claims, or the re-requested
 * pages would be received into scratch and never installed. */
void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j)
{
	if (p->in.ops->rx != PCB_INRX_PAGECACHE)
		return;
	for (unsigned i = 0; i < j->n; i++)
		if (j->owned[i >> 6] >> (i & 63) & 1) {
			uint64_t pg = j->page + i;
			atomic_fetch_and_explicit(&p->in.filled[pg >> 6], ~(1ull << (pg & 63)), memory_order_acq_rel);
		}
}
