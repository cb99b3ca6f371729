/* Helpers every pager thread uses: fatal errors, the present bitmap, the
 * per-page install record, 2 MiB pages, the fault log and vCPU attribution. */
#include "pager/internal.h"

void set_fatal(struct pcb_pager *p, int code, const char *fmt, ...)
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

void mark_present(struct pcb_pager *p, uint64_t page)
{
	if (pcb_ps_set_present(&p->ps, page) && pcb_ps_complete(&p->ps)) {
		pthread_mutex_lock(&p->lock);
		atomic_store(&p->t_complete, pcb_now_ns());
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

void *page_addr(struct pcb_pager *p, uint64_t page)
{
	return p->region + (page << PCB_PAGE_SHIFT);
}

/* Install one page (data == NULL: zero page).  kind is the PCB_INST_* for a
 * data page; the zero variant is kind + 2.  Returns 0, 1 on a lost race, <0 on error. */

/* The install record's time of a page installed at now: µs since switch-over plus one. */
uint32_t install_stamp(const struct pcb_pager *p, uint64_t now)
{
	uint64_t us = (now - p->st.t_switchover_ns) / 1000 + 1;
	return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* The fault log and the install log are reserved for their largest size
 * (never reallocated) but hold memory only where written.  A first write to
 * one of their pages was a page fault in the writing thread -- several µs on
 * this nested machine, once every 341 records, on the demand path of one
 * fault in 341 (one in 170 with both logs: --pager=process, whose pager
 * process starts with none of the shared pages mapped).  Instead, the pages
 * a writer is about to reach are mapped RECORDS_AHEAD at a time with one
 * MADV_POPULATE_WRITE (Linux >= 5.14; best effort) when it comes within half
 * of that of the mapped end: one system call per 5461 records, at most
 * 1.5 x RECORDS_AHEAD of memory beyond what is written. */

/* The writer of base (len bytes) will write up to byte end: map the next
 * RECORDS_AHEAD bytes when end is within half of that of *mapped (one
 * thread does it: the compare-and-swap; another writer meanwhile at worst
 * takes the page fault it would have taken anyway). */
void records_ahead(void *base, size_t len, _Atomic uint64_t *mapped, uint64_t end)
{
	uint64_t m = atomic_load_explicit(mapped, memory_order_relaxed);
	if (end + RECORDS_AHEAD / 2 <= m || m >= len)
		return;
	uint64_t to = m + RECORDS_AHEAD < len ? m + RECORDS_AHEAD : len;
	if (!atomic_compare_exchange_strong(mapped, &m, to))
		return;
	madvise((uint8_t *)base + m, to - m, MADV_POPULATE_WRITE);
}

/* Map the logs' next pages from where their writers are now: before the
 * threads start (in the pager process too: its copies of the shared
 * mappings start with no page mapped). */
void records_map_from_here(struct pcb_pager *p)
{
	uint64_t f = p->nfev * sizeof(*p->fev), i = atomic_load(&p->ilog_n) * sizeof(*p->ilog);
	atomic_store(&p->fev_mapped, f & ~(uint64_t)(PCB_PAGE_SIZE - 1));
	atomic_store(&p->ilog_mapped, i & ~(uint64_t)(PCB_PAGE_SIZE - 1));
	if (p->fev)
		records_ahead(p->fev, p->capfev * sizeof(*p->fev), &p->fev_mapped, f);
	if (p->ilog)
		records_ahead(p->ilog, p->ilog_cap * sizeof(*p->ilog), &p->ilog_mapped, i);
}

/* Append a run of installed pages to the install log (any thread). */
void log_install_run(struct pcb_pager *p, uint64_t first, uint64_t n, uint32_t us)
{
	while (n) {
		uint64_t k = n < PCB_IRUN_MAX ? n : PCB_IRUN_MAX;
		uint64_t i = atomic_fetch_add_explicit(&p->ilog_n, 1, memory_order_relaxed);
		if (i < p->ilog_cap) {
			records_ahead(p->ilog, p->ilog_cap * sizeof(*p->ilog), &p->ilog_mapped, (i + 1) * sizeof(*p->ilog));
			p->ilog[i].first_n = first | k << 40;
			p->ilog[i].us = us;
		} else {
			atomic_fetch_add_explicit(&p->ilog_dropped, 1, memory_order_relaxed);
		}
		first += k;
		n -= k;
	}
}

/* One page installed (demand or drain by the demand side): its log run and kind. */
void record_install(struct pcb_pager *p, uint64_t page, int kind, uint64_t now)
{
	log_install_run(p, page, 1, install_stamp(p, now));
	pcb_kind_set(p->inst_kind, page, (unsigned)kind);
}

/* Install one page (data == NULL: zero page) through the install path
 * (demand thread).  kind is the PCB_INST_* for a data page; the zero variant
 * is kind + 2.  Returns 0, 1 on a lost race (page already there, or being
 * installed by the background thread, which wakes), <0 on error. */
int install(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now)
{
	return install_st(p, page, data, kind, now, &p->st.inst_demand);
}

/* install, counting the ioctls in st (a demand lane's own) */
int install_st(struct pcb_pager *p, uint64_t page, const void *data, int kind, uint64_t *now, struct pcb_install_stats *st)
{
	int r = pcb_install_one(&p->in, page, data, st);
	PCB_PROBE_INSTALLED(page, data ? kind : zero_kind(kind), r == 1 || r == 2 ? -EEXIST : r);
	if (p->cfg.huge) {
		/* the data is in; the thread completing the huge page marks it present (huge_done) */
		if (r == 0)
			pcb_kind_set(p->inst_kind, page, (unsigned)(data ? kind : zero_kind(kind)));
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
void huge_done(void *ctx, uint64_t first)
{
	struct pcb_pager *p = ctx;
	atomic_fetch_add_explicit((_Atomic uint64_t *)&p->st.huge_installs, 1, memory_order_relaxed);
	log_install_run(p, first, PCB_HUGE_SUBPAGES, install_stamp(p, pcb_now_ns()));
	for (uint64_t q = first; q < first + PCB_HUGE_SUBPAGES; q++)
		mark_present(p, q);
}

/* Huge pages: a fault requests the sub-pages of its huge page that have not
 * arrived yet as one RANGES frame on the demand channel (arg = the huge
 * page's first sub-page); the source answers with RUN and ZERO frames and a
 * BATCH_END carrying the same arg.  One in-flight entry per huge page.
 * Returns 0 sent, 1 nothing left to request (the sub-page being filled now
 * completes the page and wakes), -1 send error. */
int huge_send(struct pcb_pager *p, uint64_t first)
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

int huge_request(struct pcb_pager *p, uint64_t first, uint64_t now, bool vcpu, bool *lost)
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
	infl_sync(p);
	if (r < 0) {
		/* the request stays in infl[]: recovery sends it again */
		snprintf(p->loss_why, sizeof(p->loss_why), "sending a demand request failed: %s", strerror(errno));
		*lost = true;
	}
	return 0;
}

/* Huge pages: a RUN / ZERO / BATCH_END answering huge_request. */
int huge_frame(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
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
		/* every sub-page asked for must have come: else ask again for the rest
		 * (the fault stays in flight; a source that keeps leaving pages out is
		 * given up on after MAX_INCOMPLETE batches) */
		int hs = huge_send(p, first);
		if (hs < 0) {
			set_fatal(p, PCB_EXIT_SOURCE_LOST, "asking again for huge page %llu failed: %s", (unsigned long long)first,
				  strerror(errno));
			return -1;
		}
		if (hs == 0) {
			pthread_mutex_lock(&p->rec_lock);
			uint64_t nb = ++p->st.rec.batches_incomplete;
			pthread_mutex_unlock(&p->rec_lock);
			if (nb > MAX_INCOMPLETE) {
				set_fatal(p, PCB_EXIT_PROTOCOL, "the source ended %llu batches without all their pages (the last: huge page %llu)",
					  (unsigned long long)nb, (unsigned long long)first);
				return -1;
			}
			p->infl[i].t_req = now;
			return 0;
		}
		struct inflight f = p->infl[i];
		p->infl[i] = p->infl[--p->ninfl];
		infl_sync(p);
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

int install_reply(struct pcb_pager *p, uint64_t page, const struct pcb_hdr *h, const uint8_t *payload, uint64_t t_req,
		  uint64_t t_fault, const struct reply_tally *t)
{
	uint64_t now = pcb_now_ns();
	PCB_PROBE_RECEIVED(page, PCB_CHAN_DEMAND, h->type == PCB_MSG_ZERO);
	pcb_hist_add(t->rtt, now - t_req);
	int r = install_st(p, page, h->type == PCB_MSG_PAGE ? payload : NULL, PCB_INST_DEMAND, &now, t->inst);
	if (r < 0) {
		set_fatal(p, PCB_EXIT_OSERR, "installing page %llu failed: %s", (unsigned long long)page, strerror(-r));
		return -1;
	}
	++*(r == 1 ? t->eexist : h->type == PCB_MSG_PAGE ? t->pages : t->zero);
	pcb_hist_add(t->service, now - t_fault);
	return 0;
}

void source_error(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	char text[PCB_MAX_ERRTEXT + 1];
	pcb_sanitize(text, sizeof(text), payload, h->len);
	set_fatal(p, PCB_EXIT_PROTOCOL, "source reported an error: %s", text);
}

void log_fault(struct pcb_pager *p, uint64_t now, uint64_t page, int vcpu, uint32_t outcome)
{
	if (p->nlanes > 1)   /* several lanes write it */
		pthread_mutex_lock(&p->fev_lock);
	if (p->nfev < p->capfev) {   /* fixed capacity (pcb_pager_create); the log is best effort, counters stay exact */
		records_ahead(p->fev, p->capfev * sizeof(*p->fev), &p->fev_mapped, (p->nfev + 1) * sizeof(*p->fev));
		p->fev[p->nfev++] = pcb_fev_make(now - p->st.t_switchover_ns, page, vcpu, outcome);
	}
	if (p->nlanes > 1)
		pthread_mutex_unlock(&p->fev_lock);
}

int vcpu_of(struct pcb_pager *p, pid_t tid)
{
	for (unsigned i = 0; i < p->cfg.nvcpus; i++)
		if (p->vcpu_tid[i] == tid)
			return (int)i;
	return -1;
}


/* SO_RCVTIMEO / SO_SNDTIMEO value for --io-timeout. */
struct timeval io_timeval(uint64_t ns)
{
	return (struct timeval){ .tv_sec = (time_t)(ns / PCB_NSEC_PER_SEC),
				 .tv_usec = (suseconds_t)(ns % PCB_NSEC_PER_SEC / 1000) };
}

/* Join a thread that may sit in a blocking read(): signal it (PCB_STOP_SIGNAL
 * interrupts the read) every 10 ms until it has ended, in case a signal lands
 * just before the read. */
void signal_join(pthread_t th)
{
	for (;;) {
		pthread_kill(th, PCB_STOP_SIGNAL);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(th, NULL, &ts) == 0)
			return;
	}
}
