/* --demand-replies=lanes: one demand lane per vCPU.  The region is sliced
 * over one userfaultfd per lane (equal slices, registered when the pager is
 * created, before the guest runs; fewer slices than vCPUs when the pages
 * run out first); each lane is a thread with its own demand
 * connection that reads its slice's faults, asks for the page, waits for the
 * reply on its connection and installs it -- the layout of Linux's KVM
 * selftest (demand_paging_test.c: a userfaultfd and handler per vCPU slice),
 * with every page fetched from the source.  Only where nothing but demand
 * replies fill pages while the guest runs (lanes_wanted); the background
 * thread's drain after the guest is done installs through the slices too
 * (install/install.c pcb_install_uffd).  Measured:
 * docs/results/2026-12-05-kvm-lanes.md. */
#include "pager/internal.h"

struct lane_stats {
	uint64_t faults, present, inflight, unattributed, requests, pages, zero, eexist;
	struct pcb_hist rtt, service;
	struct pcb_install_stats inst;
};

struct lane {
	struct pcb_pager *p;
	unsigned i;
	int uffd;                 /* its slice's */
	struct pcb_conn c;        /* its demand connection */
	pthread_t th;
	bool started;
	uint64_t cpu_ns;
	struct lane_stats st;
};

unsigned lanes_wanted(const struct pcb_pager_cfg *cfg, const struct pcb_install_ops *ops)
{
	bool asked = cfg->demand_replies == 3 || (cfg->demand_replies == 0 && cfg->kernel_faults);
	if (!asked || cfg->nvcpus < 2 || cfg->nvcpus > PCB_MAX_SLICES || cfg->npages < cfg->nvcpus)
		return 0;
	/* the demand path alone fills pages while the guest runs, one page per install,
	 * each lane in its own thread: no background pull, no fault hook, copy, 4 KiB pages,
	 * two connections, the pager in this process, no emulated link */
	if (cfg->policy->background || cfg->policy->on_fault || strcmp(ops->name, "copy") || cfg->huge || cfg->push ||
	    cfg->channels == 1 || cfg->process)
		return 0;
	if (cfg->link_bps || cfg->link_rtt_ns)   /* one emulated link is one connection's (wire/link.c), not N */
		return 0;
	return cfg->nvcpus;
}

/* Slice the region: p->uffd keeps slice 0, a userfaultfd of the same features for each other. */
int lanes_open(struct pcb_pager *p, const struct pcb_install_ops *ops, char *why, size_t whylen)
{
	uint64_t per = (p->cfg.npages + p->nlanes - 1) / p->nlanes;
	unsigned n = p->nlanes = (unsigned)((p->cfg.npages + per - 1) / per);   /* 5 pages, 4 vCPUs: 3 slices of 2, 2, 1 */
	p->lanes = calloc(n, sizeof(*p->lanes));
	if (!p->lanes) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	for (unsigned i = 0; i < n; i++)
		p->lanes[i] = (struct lane){ .p = p, .i = i, .uffd = i ? -1 : p->uffd, .c = { .fd = -1 } };
	fcntl(p->uffd, F_SETFL, fcntl(p->uffd, F_GETFL) & ~O_NONBLOCK);   /* lane 0 blocks in read() as well */
	int r = pcb_uffd_unregister(p->uffd, p->region + (per << PCB_PAGE_SHIFT), p->region_len - (per << PCB_PAGE_SHIFT));
	for (unsigned i = 1; !r && i < n; i++) {
		struct pcb_uffd_info ui;
		int fd = pcb_uffd_open(UFFD_FEATURE_THREAD_ID | ops->uffd_features | PCB_UFFD_KERNEL_FAULTS, &ui, why, whylen);
		if (fd < 0)
			return pcb_exit_for_errno(-fd);
		p->lanes[i].uffd = fd;
		uint64_t first = i * per, len = (first + per > p->cfg.npages ? p->cfg.npages - first : per) << PCB_PAGE_SHIFT;
		r = pcb_uffd_register(fd, p->region + (first << PCB_PAGE_SHIFT), len, ops->register_mode, &ui);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);   /* the lane blocks in read() */
	}
	if (r < 0) {
		snprintf(why, whylen, "slicing the guest region over %u userfaultfds (--demand-replies=lanes): %s", n,
			 strerror(-r));
		return pcb_exit_for_errno(-r);
	}
	p->in.nslices = n;
	p->in.slice_pages = per;
	for (unsigned i = 0; i < n; i++)
		p->in.slice_uffd[i] = p->lanes[i].uffd;
	return 0;
}

/* Each lane's demand connection (the source serves each on a thread of its own). */
int lanes_connect(struct pcb_pager *p, char *why, size_t whylen)
{
	for (unsigned i = 0; i < p->nlanes; i++) {
		struct pcb_conn *c = &p->lanes[i].c;
		int rc = chan_connect_on(p, c, PCB_CHAN_DEMAND, 0, 5000, why, whylen);
		if (rc)
			return rc;
		/* wait for a reply 100 ms at a time: a stop or the --io-timeout is noticed between */
		struct timeval tv = { 0, 100000 };
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return 0;
}

static bool lane_stop(struct pcb_pager *p)
{
	return atomic_load_explicit(&p->stopping, memory_order_relaxed) || atomic_load_explicit(&p->fatal, memory_order_relaxed);
}

/* The connection was lost, refused a frame, or the source stayed silent: reconnect
 * (pager/recovery.c, counted as the demand channel's) and ask for the page again. */
static int lane_recover(struct lane *L, uint64_t page, bool refused, const char *reason)
{
	struct pcb_pager *p = L->p;
	if (chan_recover_on(p, &L->c, PCB_CHAN_DEMAND, refused, reason) < 0)
		return -1;
	struct timeval tv = { 0, 100000 };
	setsockopt(L->c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&p->rec_lock);
	p->st.rec.demand_rerequested++;
	pthread_mutex_unlock(&p->rec_lock);
	return pcb_conn_send_args(&L->c, PCB_MSG_REQ, &page, 1) < 0 ? 1 : 0;
}

/* One frame on the lane's connection: the page asked for, installed.  1 = done, 0 = go on, -1 = fatal. */
static int lane_frame(struct lane *L, uint64_t page, const struct pcb_hdr *h, const uint8_t *pl, uint64_t t_fault,
		      uint64_t t_req)
{
	struct pcb_pager *p = L->p;
	if (h->type == PCB_MSG_ERROR) {
		source_error(p, h, pl);
		return -1;
	}
	if ((h->type != PCB_MSG_PAGE && h->type != PCB_MSG_ZERO) || h->arg != page) {
		set_fatal(p, PCB_EXIT_PROTOCOL, "demand lane %u: %s frame for page %llu while waiting for page %llu", L->i,
			  pcb_msg_name(h->type), (unsigned long long)h->arg, (unsigned long long)page);
		return -1;
	}
	const struct reply_tally t = { &L->st.pages, &L->st.zero, &L->st.eexist, &L->st.rtt, &L->st.service, &L->st.inst };
	return install_reply(p, page, h, pl, t_req, t_fault, &t) < 0 ? -1 : 1;
}

/* Ask for page on the lane's connection and install the reply.  0, or -1 (fatal set, or stopping). */
static int lane_fetch(struct lane *L, uint64_t page, uint64_t t_fault)
{
	struct pcb_pager *p = L->p;
	uint64_t t_req = pcb_now_ns(), last_rx = t_req;
	PCB_PROBE_REQUEST(page, PCB_CHAN_DEMAND, 1);
	L->st.requests++;
	int lost = pcb_conn_send_args(&L->c, PCB_MSG_REQ, &page, 1) < 0;
	char reason[160] = "";
	bool refused = false;   /* the connection is replaced because a frame failed authentication */
	if (lost)
		snprintf(reason, sizeof(reason), "sending a demand request failed: %s", strerror(errno));
	for (;;) {
		while (lost) {   /* until the request is out again on a new connection */
			int r = lane_recover(L, page, refused, reason);
			if (r < 0)
				return -1;
			lost = r == 1;
			refused = false;
			last_rx = pcb_now_ns();
		}
		struct pcb_hdr h;
		const uint8_t *pl;
		int r = pcb_conn_parse(&L->c, &h, &pl);
		if (r == PCB_RX_FRAME) {
			int f = lane_frame(L, page, &h, pl, t_fault, t_req);
			if (f)
				return f < 0 ? -1 : 0;
			continue;
		}
		if (r == PCB_RX_BAD) {
			if (!L->c.forged) {
				set_fatal(p, PCB_EXIT_PROTOCOL, "bad frame from the source (demand lane %u): %s", L->i, L->c.err);
				return -1;
			}
			snprintf(reason, sizeof(reason), "%s", L->c.err);   /* refused, never installed: a new connection */
			lost = refused = true;
			continue;
		}
		r = pcb_conn_fill(&L->c);   /* blocking, 100 ms at a time */
		uint64_t now = pcb_now_ns();
		if (r > 0) {
			last_rx = now;
			continue;
		}
		if (lane_stop(p))
			return -1;
		if (r == PCB_RX_EOF || (r == PCB_RX_ERR && errno != EAGAIN && errno != EINTR)) {
			snprintf(reason, sizeof(reason), "demand lane %u's connection %s", L->i,
				 r == PCB_RX_EOF ? "closed by the source" : strerror(errno));
			lost = true;
		} else if (now - last_rx > p->cfg.io_timeout_ns) {
			snprintf(reason, sizeof(reason), "the source has not answered a demand request for %.1f s",
				 pcb_ns_to_s(now - t_req));
			lost = true;
		}
	}
}

/* One fault message of the lane's slice: counted and logged, woken if present,
 * else fetched (the lane serves its slice alone: a page demanded already is
 * one the drain brings, whose install wakes).  0, or -1 to stop. */
static int lane_fault(struct lane *L, const struct uffd_msg *m)
{
	struct pcb_pager *p = L->p;
	uint64_t now = pcb_now_ns(), addr = m->arg.pagefault.address;
	uint64_t page = (addr - (uintptr_t)p->region) >> PCB_PAGE_SHIFT;
	pid_t tid = (pid_t)m->arg.pagefault.feat.ptid;
	PCB_PROBE_FAULT(addr, tid, page);
	L->st.faults++;
	int v = vcpu_of(p, tid);
	if (v >= 0)
		atomic_fetch_add_explicit(&p->vcpu_faults[v], 1, memory_order_release);
	else
		L->st.unattributed++;
	if (page >= p->cfg.npages)
		return 0;
	bool first = pcb_bit_set(p->ps.demanded, page);   /* then present: pairs with the background install */
	atomic_thread_fence(memory_order_seq_cst);
	if (pcb_ps_present(&p->ps, page)) {
		log_fault(p, now, page, v, 1);
		L->st.present++;
		pcb_uffd_wake(L->uffd, page_addr(p, page), PCB_PAGE_SIZE);
		return 0;
	}
	if (!first) {
		log_fault(p, now, page, v, 2);
		L->st.inflight++;
		return 0;
	}
	log_fault(p, now, page, v, 0);
	return lane_fetch(L, page, now);
}

static void lane_loop(struct lane *L)
{
	struct pcb_pager *p = L->p;
	while (!lane_stop(p)) {
		struct uffd_msg msgs[UFFD_MSG_BATCH];
		ssize_t n = read(L->uffd, msgs, sizeof(msgs));   /* blocking; PCB_STOP_SIGNAL interrupts it */
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			set_fatal(p, PCB_EXIT_OSERR, "read(userfaultfd) of demand lane %u: %s", L->i, strerror(errno));
			return;
		}
		for (ssize_t k = 0; k < n / (ssize_t)sizeof(msgs[0]); k++)
			if (msgs[k].event == UFFD_EVENT_PAGEFAULT && lane_fault(L, &msgs[k]) < 0)
				return;
	}
}

static void *lane_thread(void *arg)
{
	struct lane *L = arg;
	if (L->p->cfg.pin_demand)
		pcb_pin_self((int)L->p->cfg.pin_demand - 1);
	lane_loop(L);
	L->cpu_ns = pcb_thread_cpu_ns();
	return NULL;
}

static void lanes_merge(struct pcb_pager *p)
{
	struct pcb_pager_stats *s = &p->st;
	for (unsigned i = 0; i < p->nlanes; i++) {
		const struct lane_stats *l = &p->lanes[i].st;
		s->faults += l->faults, s->faults_present += l->present, s->faults_inflight += l->inflight;
		s->faults_unattributed += l->unattributed, s->demand_requests += l->requests;
		s->pages_demand += l->pages, s->zero_demand += l->zero, s->eexist_demand += l->eexist;
		pcb_hist_merge(&s->demand_rtt, &l->rtt);
		pcb_hist_merge(&s->demand_service, &l->service);
		/* one page per install: ioctls, pages, races and the time are what the lane adds */
		s->inst_demand.ioctls += l->inst.ioctls, s->inst_demand.pages += l->inst.pages;
		s->inst_demand.eexist += l->inst.eexist, s->inst_demand.wakes += l->inst.wakes;
		s->inst_demand.install_ns += l->inst.install_ns;
		p->reply_cpu_ns += p->lanes[i].cpu_ns;   /* added to demand_cpu_ns with the demand thread's (lane 0) */
	}
	s->demand_lanes = p->nlanes;
}

/* The lanes' connections, counted as the demand channel's (pcb_pager_stats). */
void lanes_chan_stats(const struct pcb_pager *p, struct pcb_chan_stats *d)
{
	for (unsigned i = 0; p->lanes && i < p->nlanes; i++) {
		const struct pcb_conn *c = &p->lanes[i].c;
		d->bytes_tx += c->bytes_tx, d->bytes_rx += c->bytes_rx, d->frames_tx += c->frames_tx, d->frames_rx += c->frames_rx;
		d->bad_frames += c->bad_frames;
	}
}

/* The demand thread: start lanes 1..n-1, run lane 0, then stop and join them. */
void lanes_run(struct pcb_pager *p)
{
	for (unsigned i = 1; i < p->nlanes; i++) {
		if (pthread_create(&p->lanes[i].th, NULL, lane_thread, &p->lanes[i]) != 0) {
			set_fatal(p, PCB_EXIT_OSERR, "cannot start demand lane %u", i);
			break;
		}
		p->lanes[i].started = true;
	}
	if (!atomic_load(&p->fatal))
		lane_loop(&p->lanes[0]);
	for (unsigned i = 1; i < p->nlanes; i++)
		if (p->lanes[i].started)
			signal_join(p->lanes[i].th);   /* it may sit in a blocking read() */
	lanes_merge(p);
}

void lanes_unregister(struct pcb_pager *p)
{
	for (unsigned i = 1; i < p->nlanes; i++) {
		uint64_t first = i * p->in.slice_pages;
		if (p->lanes[i].uffd < 0 || first >= p->cfg.npages)
			continue;
		uint64_t n = first + p->in.slice_pages > p->cfg.npages ? p->cfg.npages - first : p->in.slice_pages;
		int r = pcb_uffd_unregister(p->lanes[i].uffd, page_addr(p, first), n << PCB_PAGE_SHIFT);
		if (r < 0)
			pcb_warn("UFFDIO_UNREGISTER (demand lane %u): %s", i, strerror(-r));
	}
}

void lanes_free(struct pcb_pager *p)
{
	for (unsigned i = 0; p->lanes && i < p->nlanes; i++) {
		if (i && p->lanes[i].uffd >= 0)
			close(p->lanes[i].uffd);
		pcb_conn_free(&p->lanes[i].c);
	}
	free(p->lanes);
	p->lanes = NULL;
	p->in.nslices = 0;
}
