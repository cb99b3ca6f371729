/* The demand thread: reads userfaultfd messages, requests the faulting
 * pages, installs the replies and wakes the vCPUs. */
#include "pager/internal.h"

/* ---- demand thread ---------------------------------------------------------- */

_Static_assert(UFFD_MSG_BATCH <= PCB_SEND_ARGS_MAX, "one read's requests fit one pcb_conn_send_args");

static void demand_send_lost(struct pcb_pager *p, bool *lost)
{
	snprintf(p->loss_why, sizeof(p->loss_why), "sending a demand request failed: %s", strerror(errno));
	*lost = true;
}

/* One fault message of a read (demand_handle_faults): counted, logged, and
 * either woken (present), left to what already brings the page (in flight,
 * claimed by a batch), or asked for -- on two connections added to reqs[] to
 * leave with the read's other requests.  -1: fatal. */
static int demand_one_fault(struct pcb_pager *p, const struct uffd_msg *m, uint64_t now, uint64_t *reqs,
			    unsigned *nreq, bool *lost)
{
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
		return 0;   /* cannot happen: only the region is registered */
	if (p->pol.ops->on_fault && !p->cfg.push)   /* pushing: the source's policy hears of the request */
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
		return 0;
	}
	if (first && p->pol.ops->fault_waits_queued && !p->cfg.push && pcb_bit_test(p->ps.claimed, page)) {
		/* part of a background batch in flight: not asked for again (CRIU's
		 * is_page_queued); its install sees the page demanded and wakes */
		log_fault(p, now, page, v, 2);
		p->st.faults_inflight++;
		p->st.faults_queued++;
		return 0;
	}
	if (!first) {
		/* already requested by another vCPU's fault: the install wakes everyone
		 * (a reply installed since the check above woke this vCPU too: the
		 * kernel queued its fault before the UFFDIO_COPY) */
		pthread_mutex_lock(&p->infl_lock);
		for (unsigned k = 0; v >= 0 && k < p->ninfl; k++)
			if (p->infl[k].page == page) {
				p->infl[k].waiters++;
				p->blocked++;
				break;
			}
		pthread_mutex_unlock(&p->infl_lock);
		log_fault(p, now, page, v, 2);
		p->st.faults_inflight++;
		return 0;
	}
	/* the page travels in a background batch already (claimed): wait for it,
	 * as QEMU (a page sent once) and CRIU (is_page_queued) do; the claim bit
	 * decides who sends it, so the demand thread and the pull never both do.
	 * --inflight=resend asks for it again (the reply may overtake the batch). */
	if (!p->cfg.huge && !p->cfg.resend_inflight && !p->cfg.push && !pcb_bit_set(p->ps.claimed, page)) {
		log_fault(p, now, page, v, 2);
		p->st.faults_inflight++;
		p->st.faults_queued++;
		return 0;
	}
	if (p->cfg.huge) {
		log_fault(p, now, page, v, 0);
		p->blocked += v >= 0;
		if (huge_request(p, page, now, v >= 0, lost) < 0)
			return -1;
		return 0;
	}
	if (p->ninfl == MAX_INFLIGHT) {
		set_fatal(p, PCB_EXIT_SOFTWARE, "more than %d demand requests outstanding", MAX_INFLIGHT);
		return -1;
	}
	log_fault(p, now, page, v, 0);
	/* a reply thread may reorder infl[] as soon as the lock is released: the
	 * request is sent from a copy (shared: no reply thread, and the entry
	 * itself records the connection it went on) */
	struct inflight nf = { page, now, now, v >= 0, 0 };
	pthread_mutex_lock(&p->infl_lock);
	p->infl[p->ninfl++] = nf;
	infl_sync(p);
	p->blocked += v >= 0;
	pthread_mutex_unlock(&p->infl_lock);
	PCB_PROBE_REQUEST(page, PCB_CHAN_DEMAND, 1);
	p->st.demand_requests++;
	if (!p->shared)
		reqs[(*nreq)++] = page;
	else if (!*lost && demand_send_req(p, &p->infl[p->ninfl - 1]) < 0)
		demand_send_lost(p, lost);
	return 0;
}

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
	/* the requests of this read, sent together after it with one write: vCPUs
	 * that fault together wake the source once (at 2 KVM vCPUs about half the
	 * reads hold two faults); shared: one by one (each records its connection) */
	uint64_t reqs[UFFD_MSG_BATCH];
	unsigned nreq = 0;
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(struct uffd_msg); i++)
		if (msgs[i].event == UFFD_EVENT_PAGEFAULT && demand_one_fault(p, &msgs[i], now, reqs, &nreq, &lost) < 0)
			return -1;
	/* a request not sent stays in infl[]: recovery sends it again; the other messages
	 * of this read are still recorded (the kernel will not deliver them again) */
	if (nreq && !lost && pcb_conn_send_args(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_REQ, reqs, nreq) < 0)
		demand_send_lost(p, &lost);
	/* a background policy may want to react to the faults; otherwise waking
	 * the idle background thread would only cost the vCPU a context switch */
	if (p->pol.ops->background && !p->cfg.push && atomic_load_explicit(&p->bg_waiting, memory_order_relaxed)) {
		pthread_mutex_lock(&p->lock);
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	return lost ? 1 : 0;
}

/* Read and serve the pending faults; when a request could not be sent,
 * reconnect (demand_recover) and restart the silence clock.  -1: stop the
 * thread; 1: recovered; 0: served. */
static int demand_faults_or_recover(struct pcb_pager *p, uint64_t *last_rx)
{
	int fr = demand_handle_faults(p);
	if (fr != 1)
		return fr < 0 ? -1 : 0;
	if (demand_recover(p) < 0)
		return -1;
	*last_rx = pcb_now_ns();
	return 1;
}

/* Pushing: the source answered a request SENT -- the page is in its stream,
 * whose install wakes the vCPUs (the page is demanded).  The request is done. */
static int demand_in_stream(struct pcb_pager *p, uint64_t page)
{
	unsigned i;
	for (i = 0; i < p->ninfl; i++)
		if (p->infl[i].page == page)
			break;
	if (i == p->ninfl) {
		p->chan[p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source answered SENT for page %llu that was not requested", (unsigned long long)page);
		return -1;
	}
	p->blocked -= p->infl[i].waiters;
	p->infl[i] = p->infl[--p->ninfl];
	infl_sync(p);
	p->st.demand_in_stream++;
	return 0;
}

static int demand_handle_frame(struct pcb_pager *p, const struct pcb_hdr *h, const uint8_t *payload)
{
	if (h->type == PCB_MSG_ERROR) {
		source_error(p, h, payload);
		return -1;
	}
	if (p->cfg.huge && (h->type == PCB_MSG_RUN || h->type == PCB_MSG_ZERO || h->type == PCB_MSG_BATCH_END))
		return huge_frame(p, h, payload);
	if (h->type == PCB_MSG_SENT && p->cfg.push)
		return demand_in_stream(p, h->arg);
	if (h->type != PCB_MSG_PAGE && h->type != PCB_MSG_ZERO) {
		p->chan[PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "unexpected %s frame on the demand channel", pcb_msg_name(h->type));
		return -1;
	}
	uint64_t page = h->arg;
	unsigned i;
	pthread_mutex_lock(&p->infl_lock);   /* the demand thread adds to infl[] meanwhile with a reply thread */
	for (i = 0; i < p->ninfl; i++)
		if (p->infl[i].page == page)
			break;
	if (i == p->ninfl) {
		pthread_mutex_unlock(&p->infl_lock);
		p->chan[PCB_CHAN_DEMAND].bad_frames++;
		set_fatal(p, PCB_EXIT_PROTOCOL, "source sent page %llu that was not requested", (unsigned long long)page);
		return -1;
	}
	struct inflight f = p->infl[i];
	p->infl[i] = p->infl[--p->ninfl];
	infl_sync(p);
	p->blocked -= f.waiters;
	pthread_mutex_unlock(&p->infl_lock);
	const struct reply_tally t = { &p->st.pages_demand, &p->st.zero_demand, &p->st.eexist_demand,
				       &p->st.demand_rtt, &p->st.demand_service, &p->st.inst_demand };
	return install_reply(p, page, h, payload, f.t_req, f.t_fault, &t);
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
			infl_sync(p);
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
int demand_shared_done(struct pcb_pager *p, uint64_t *last_rx, bool final)
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
			if (d[k].kind == SHARED_IN_STREAM) {
				if (demand_in_stream(p, d[k].page) < 0)
					return -1;
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
			infl_sync(p);
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
	if (r == PCB_RX_BAD && c->forged) {
		/* failed authentication: refused, never installed; a new connection,
		 * and every request in flight is sent again */
		snprintf(p->loss_why, sizeof(p->loss_why), "%s", c->err);
		p->refused[PCB_CHAN_DEMAND] = true;
		if (demand_recover(p) < 0)
			return -1;
		*last_rx = pcb_now_ns();
		return 2;
	}
	if (r == PCB_RX_BAD) {
		set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (demand channel): %s", c->err);
		return -1;
	}
	return 1;
}

/* ---- reply thread (--demand-replies=thread) -------------------------------
 * With one demand thread a fault waits while the thread is busy with the
 * request -> reply -> install of another vCPU's fault (poll() on both the
 * uffd and the socket, a wake-up for each).  Here the demand thread only
 * reads faults (a blocking read() of the uffd) and sends their requests; the
 * reply thread blocks on the demand socket and installs each reply as it
 * arrives, so every blocked vCPU has its request outstanding and the replies
 * come back pipelined on the one demand connection -- the request/handler
 * split Linux's KVM selftest gets from a handler per vCPU (demand_paging_test.c),
 * without a connection per vCPU.  Only where nothing but demand replies fill
 * pages while the guest runs (the fast path's conditions).  Anything unusual
 * on the connection (loss, refusal, a silent source) is handed back to the
 * demand thread, which stops the reply thread and carries on inline. */

static void reply_handover(struct pcb_pager *p, int kind)
{
	atomic_store(&p->reply_handover, kind);
	/* the demand thread sits in a blocking read() of the uffd: interrupt it,
	 * again until it has seen the handover (the signal may land just before
	 * its read) */
	while (!atomic_load(&p->reply_ack) && !atomic_load(&p->reply_quit)) {
		pthread_kill(p->demand_self, PCB_STOP_SIGNAL);
		usleep(1000);
	}
}

/* The oldest request is older than --io-timeout and nothing arrived for as long. */
static bool reply_timed_out(struct pcb_pager *p, uint64_t last_rx)
{
	uint64_t now = pcb_now_ns(), oldest = now;
	pthread_mutex_lock(&p->infl_lock);
	for (unsigned i = 0; i < p->ninfl; i++)
		if (p->infl[i].t_req < oldest)
			oldest = p->infl[i].t_req;
	pthread_mutex_unlock(&p->infl_lock);
	if (now - oldest <= p->cfg.io_timeout_ns || now - last_rx <= p->cfg.io_timeout_ns)
		return false;
	snprintf(p->loss_why, sizeof(p->loss_why), "the source has not answered a demand request for %.1f s",
		 pcb_ns_to_s(now - oldest));
	return true;
}

static void *reply_thread(void *arg)
{
	struct pcb_pager *p = arg;
	struct pcb_conn *c = &p->chan[PCB_CHAN_DEMAND];
	uint64_t last_rx = pcb_now_ns();
	if (p->cfg.pin_demand)
		pcb_pin_self((int)p->cfg.pin_demand - 1);
	while (!atomic_load(&p->reply_quit) && !atomic_load(&p->stopping)) {
		int r = pcb_conn_fill(c);   /* blocking; SO_RCVTIMEO 100 ms, or the stop signal */
		if (r == PCB_RX_EOF || (r == PCB_RX_ERR && errno != EAGAIN && errno != EINTR)) {
			snprintf(p->loss_why, sizeof(p->loss_why), "demand channel %s",
				 r == PCB_RX_EOF ? "closed by the source" : strerror(errno));
			reply_handover(p, 1);
			break;
		}
		if (r <= 0) {
			if (reply_timed_out(p, last_rx)) {
				reply_handover(p, 1);
				break;
			}
			continue;
		}
		last_rx = pcb_now_ns();
		struct pcb_hdr h;
		const uint8_t *pl;
		while ((r = pcb_conn_parse(c, &h, &pl)) == PCB_RX_FRAME)
			if (demand_handle_frame(p, &h, pl) < 0)
				goto out;   /* fatal: the main thread stops the pager */
		if (r == PCB_RX_BAD && c->forged) {
			snprintf(p->loss_why, sizeof(p->loss_why), "%s", c->err);
			p->refused[PCB_CHAN_DEMAND] = true;
			reply_handover(p, 1);
			break;
		}
		if (r == PCB_RX_BAD) {
			set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (demand channel): %s", c->err);
			break;
		}
	}
out:
	p->reply_cpu_ns = pcb_thread_cpu_ns();
	return NULL;
}

/* The demand thread's loop while a reply thread receives.  Returns 1 when
 * the connection must be recovered, 0 otherwise (stopping, fatal, or the
 * reply thread could not start: the caller goes on inline). */
static int demand_with_reply_thread(struct pcb_pager *p)
{
	p->demand_self = pthread_self();
	atomic_store(&p->reply_quit, false);
	atomic_store(&p->reply_ack, false);
	atomic_store(&p->reply_handover, 0);
	if (pthread_create(&p->reply_th, NULL, reply_thread, p) != 0)
		return 0;
	p->st.reply_thread = true;
	p->chan[PCB_CHAN_DEMAND].fill_intr = true;   /* the stop signal ends the reply thread's read */
	int lost = 0;
	for (;;) {
		if (atomic_load(&p->stopping) || atomic_load(&p->fatal) || (lost = atomic_load(&p->reply_handover)))
			break;
		int fr = demand_handle_faults(p);   /* a blocking read() of the uffd */
		if (fr < 0)
			break;
		if (fr == 1) {   /* a request could not be sent */
			lost = 1;
			break;
		}
	}
	atomic_store(&p->reply_ack, true);
	atomic_store(&p->reply_quit, true);
	signal_join(p->reply_th);   /* it may sit in a blocking read() of the socket */
	p->chan[PCB_CHAN_DEMAND].fill_intr = false;
	return lost ? 1 : 0;
}

/* --demand-replies: a reply thread where it is asked for; auto: the KVM guest
 * (faults from KVM_RUN) with two or more vCPUs, where it was measured faster
 * (docs/results/2026-12-05-kvm-demand-scaling.md); the process guest's
 * faults cost the vCPU far less and its extra wake-ups made it slower. */
static bool want_reply_thread(const struct pcb_pager *p, bool fast_ok)
{
	if (!fast_ok || p->cfg.huge || p->cfg.push || p->cfg.demand_replies == 1)
		return false;
	return p->cfg.demand_replies == 2 || (p->cfg.kernel_faults && p->cfg.nvcpus >= 2);
}

/* The demand thread's first phase with a reply thread (uffd made blocking);
 * after a handover it goes on inline, recovering first.  -1: recovery failed. */
static int demand_replies_threaded(struct pcb_pager *p, int *uffd_fl, bool *uffd_blocking, uint64_t *last_rx)
{
	if (!*uffd_blocking) {
		*uffd_fl &= ~O_NONBLOCK;
		fcntl(p->uffd, F_SETFL, *uffd_fl);
		*uffd_blocking = true;
	}
	int r = 0;
	if (demand_with_reply_thread(p) == 1 && !atomic_load(&p->stopping))
		r = demand_recover(p);
	*last_rx = pcb_now_ns();
	return r < 0 ? -1 : 0;
}

void *demand_thread(void *arg)
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
	if (p->nlanes > 1) {   /* --demand-replies=lanes: this thread runs lane 0 (lanes.c) */
		lanes_run(p);
		p->st.demand_cpu = sched_getcpu();
		p->st.demand_cpu_ns = pcb_thread_cpu_ns() + p->reply_cpu_ns;
		return NULL;
	}
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
	bool uffd_blocking = !(uffd_fl & O_NONBLOCK), failed = false;
	if (want_reply_thread(p, fast_ok))
		failed = demand_replies_threaded(p, &uffd_fl, &uffd_blocking, &last_rx) < 0;
	for (;;) {
		if (failed || atomic_load_explicit(&p->stopping, memory_order_relaxed))
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
			if (demand_faults_or_recover(p, &last_rx) < 0)
				break;
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
			int fr = demand_faults_or_recover(p, &last_rx);
			if (fr < 0)
				break;
			if (fr == 1)
				continue;
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
	p->st.demand_cpu_ns = pcb_thread_cpu_ns() + p->reply_cpu_ns;   /* with the reply thread's */
	return NULL;
}
