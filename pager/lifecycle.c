/* The pager's life: create (and --pager=process), start, poll, stop,
 * verify, statistics and destroy. */
#include "pager/internal.h"

/* ---- --pager=process (pagerproc.c) ------------------------------------------- */

/* The fault log the demand thread appends to on every fault has a fixed
 * capacity reserved up front: it is never reallocated on the demand path
 * (a realloc of a growing log copied it while a vCPU waited: a tail
 * source), and it can be shared with --pager=process.  Its pages are mapped
 * ahead of the writer (records_ahead, common.c), from the first before the
 * first fault. */
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
	/* Not the per-page records: one of their pages serves 1024 (install
	 * record) or 32768 (bitmaps) guest pages, so their first touches are
	 * rare, and mapping them all up front would add the pages of zero-page
	 * runs that are never recorded to the pager's RSS */
	records_map_from_here(p);
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
		{ p->in.staging, p->in.staging_len },
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
	for (int ch = 0; ch < 2; ch++) {
		p->rbuf_saved[ch] = p->chan[ch].rmem;
		p->mac_saved[ch][0] = p->chan[ch].mac_tx;
		p->mac_saved[ch][1] = p->chan[ch].mac_rx;
	}
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

/* the fields whose zero is not "none", the locks, the queues and the histograms */
static void pager_init(struct pcb_pager *p, const struct pcb_pager_cfg *cfg)
{
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
	pthread_mutex_init(&p->infl_lock, NULL);
	pthread_mutex_init(&p->fev_lock, NULL);
	pcb_pp_mutex_init(&p->lock, cfg->process);
	pcb_iq_init(&p->iq);
	pcb_pp_cond_init(&p->cond, cfg->process);
	pcb_pp_mutex_init(&p->rec_lock, cfg->process);
	pcb_hist_init(&p->st.demand_rtt);
	pcb_hist_init(&p->st.demand_service);
	p->region_len = cfg->npages << PCB_PAGE_SHIFT;
}

/* vCPUs, channels and the install path against the page size and the pager's kind */
static int check_cfg(const struct pcb_pager_cfg *cfg, bool shared, const struct pcb_install_ops **out,
		     char *why, size_t whylen)
{
	if (cfg->nvcpus > PCB_MAX_VCPUS) {
		snprintf(why, whylen, "at most %d vCPUs", PCB_MAX_VCPUS);
		return PCB_EXIT_USAGE;
	}
	if (cfg->channels > 2) {
		snprintf(why, whylen, "invalid value for --channels: %u (want 1 or 2)", cfg->channels);
		return PCB_EXIT_USAGE;
	}
	if (cfg->huge && shared) {
		snprintf(why, whylen, "--channels=1 is not available with --page-size=2M (a huge page's demand request "
			 "is answered with RUN frames, which one connection cannot tell from background ones)");
		return PCB_EXIT_USAGE;
	}
	const struct pcb_install_ops *ops = pcb_install_find(cfg->install ? cfg->install : "copy", cfg->huge);
	if (!ops) {
		snprintf(why, whylen, "invalid value for --install: '%s' (%s)", cfg->install,
			 cfg->huge ? "huge pages are installed with --install=copy only" : "want " PCB_INSTALL_CHOICES);
		return PCB_EXIT_USAGE;
	}
	if (cfg->process && !ops->forkable) {
		snprintf(why, whylen, "invalid value for --install: '%s' cannot be combined with --pager=process "
			 "(UFFDIO_MOVE cannot move pages between two processes)", ops->name);
		return PCB_EXIT_USAGE;
	}
	*out = ops;
	return 0;
}

/* the install path's region and buffers, the arrival digests */
static int map_install(struct pcb_pager *p, const struct pcb_install_ops *ops, char *why, size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	int rc = pcb_install_map(&p->in, ops, cfg->install_batch, cfg->npages, why, whylen);
	if (rc)
		return rc;
	p->zero_inline = ops->rx == PCB_INRX_PAGECACHE ? PCB_MAX_RUN_PAGES
			 : cfg->zero_inline < 0 ? 0 : cfg->zero_inline ? (unsigned)cfg->zero_inline : PCB_ZERO_INLINE_DEFAULT;
	p->in.huge_done = huge_done;
	p->in.huge_ctx = p;
	if (cfg->bytes_image) {
		p->in.arrival = mmap(NULL, cfg->npages * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p->in.arrival == MAP_FAILED) {
			p->in.arrival = NULL;
			snprintf(why, whylen, "out of memory for the arrival digests");
			return PCB_EXIT_OSERR;
		}
	}
	p->region = p->in.region;
	return 0;
}

/* the install record, the page bitmaps, the background bitmap, the records;
 * shared with the pager process when there is one */
static int alloc_state(struct pcb_pager *p, char *why, size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	int rec_map = (cfg->process ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
	/* the install log: at most one run per page (a page is installed once);
	 * twice that, reserved, costs only the pages written */
	p->ilog_cap = cfg->npages * 2 + 64;
	p->ilog = mmap(NULL, p->ilog_cap * sizeof(*p->ilog), PROT_READ | PROT_WRITE, rec_map | MAP_NORESERVE, -1, 0);
	p->inst_kind = mmap(NULL, pcb_kinds_bytes(cfg->npages), PROT_READ | PROT_WRITE, rec_map, -1, 0);
	if (p->ilog == MAP_FAILED || p->inst_kind == MAP_FAILED) {
		p->ilog = p->ilog == MAP_FAILED ? NULL : p->ilog;
		p->inst_kind = p->inst_kind == MAP_FAILED ? NULL : p->inst_kind;
		snprintf(why, whylen, "out of memory for the install record");
		return PCB_EXIT_OSERR;
	}
	if (pcb_ps_init_shared(&p->ps, cfg->npages, cfg->process) < 0) {
		snprintf(why, whylen, "out of memory for the page bitmaps");
		return PCB_EXIT_OSERR;
	}
	p->bg_want = calloc((cfg->npages + 63) / 64, sizeof(uint64_t));
	p->discard = aligned_alloc(PCB_PAGE_SIZE, (size_t)PCB_MAX_RUN_PAGES * PCB_PAGE_SIZE);
	if (!p->bg_want || !p->discard) {
		snprintf(why, whylen, "out of memory for the background bitmap");
		return PCB_EXIT_OSERR;
	}
	int rc = map_records(p, why, whylen);
	if (!rc && cfg->process)
		rc = pager_process_prepare(p, why, whylen);
	return rc;
}

/* userfaultfd on the region, checked for the install path; the stop pipe and
 * the shared connection's pipe and eventfd */
static int open_uffd(struct pcb_pager *p, const struct pcb_install_ops *ops, char *why, size_t whylen)
{
	int fd = pcb_uffd_open(UFFD_FEATURE_THREAD_ID | ops->uffd_features |
			       (p->cfg.kernel_faults ? PCB_UFFD_KERNEL_FAULTS : 0), &p->uinfo, why, whylen);
	if (fd < 0)
		return pcb_exit_for_errno(-fd);
	p->uffd = fd;
	int r = pcb_uffd_register(p->uffd, p->region, p->region_len, ops->register_mode, &p->uinfo);
	if (r < 0) {
		snprintf(why, whylen, "UFFDIO_REGISTER (%s) on the guest region failed: %s",
			 ops->register_name, strerror(-r));
		return pcb_exit_for_errno(-r);
	}
	p->in.uffd = p->uffd;
	p->in.demanded = p->ps.demanded;
	p->nlanes = lanes_wanted(&p->cfg, ops);
	if (p->nlanes > 1 && (r = lanes_open(p, ops, why, whylen)) != 0)
		return r;
	if (pcb_install_check(&p->in, &p->uinfo, why, whylen) < 0)
		return PCB_EXIT_UNAVAILABLE;
	if (pipe2(p->stop_pipe, O_CLOEXEC) < 0 || (p->shared && pipe2(p->shared_pipe, O_CLOEXEC) < 0) ||
	    (p->shared && (p->shared_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (p->shared)   /* the demand thread polls it and reads without blocking */
		fcntl(p->shared_pipe[0], F_SETFL, fcntl(p->shared_pipe[0], F_GETFL) | O_NONBLOCK);
	return 0;
}

/* the policy with its knobs and its batch size; push mode's limits */
static int open_policy(struct pcb_pager *p, char *why, size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	if (cfg->policy_opts) {
		p->pol.nopts = cfg->policy_opts->nopts;
		memcpy(p->pol.opts, cfg->policy_opts->opts, sizeof(p->pol.opts));
	}
	why[0] = 0;
	if (pcb_policy_open(&p->pol, cfg->policy, &p->ps, cfg->npages, cfg->huge ? PCB_HUGE_SUBPAGES : 1, why, whylen) < 0)
		return PCB_EXIT_USAGE;
	if (cfg->policy->batch_pages) {   /* the policy sizes its transfers (criu: a chunk is one batch) */
		unsigned bp = cfg->policy->batch_pages(&p->pol);
		p->cfg.batch_pages = bp && bp <= PCB_MAX_BATCH_PAGES ? bp : p->cfg.batch_pages;
	}
	if (cfg->push && (cfg->huge || cfg->reconnect_timeout_ns)) {
		snprintf(why, whylen, "invalid value for --policy-end: 'source' is not available with %s",
			 cfg->huge ? "--page-size=2M" : "--reconnect-timeout");
		return PCB_EXIT_USAGE;
	}
	return 0;
}

/* the connections to the source, and the emulated link's calibration */
static int connect_source(struct pcb_pager *p, char *why, size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	for (unsigned ch = p->shared ? PCB_CHAN_BACKGROUND : 0; ch < 2; ch++) {
		int rc = chan_connect(p, ch, 0, 5000, why, whylen);
		if (rc)
			return rc;
	}
	if (cfg->link_bps || cfg->link_rtt_ns) {
		int rc = pcb_link_calibrate(&p->chan[p->shared ? PCB_CHAN_BACKGROUND : PCB_CHAN_DEMAND],
					    &p->chan[PCB_CHAN_BACKGROUND], cfg->link_bps, cfg->link_rtt_ns,
					    (int)(cfg->io_timeout_ns / PCB_NSEC_PER_MSEC), &p->st.link, why, whylen);
		if (rc)
			return rc;
		p->link_delay_ns = p->st.link.delay_ns;
	}
	return 0;
}

int pcb_pager_create(const struct pcb_pager_cfg *cfg, struct pcb_pager **out, char *why, size_t whylen)
{
	struct pcb_pager *p = cfg->process ? pcb_pp_shared_alloc(sizeof(*p), false) : calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	pager_init(p, cfg);
	const struct pcb_install_ops *ops = NULL;
	int rc;
	if ((rc = check_cfg(cfg, p->shared, &ops, why, whylen)) || (rc = map_install(p, ops, why, whylen)) ||
	    (rc = alloc_state(p, why, whylen)) || (rc = open_uffd(p, ops, why, whylen)) ||
	    (rc = open_policy(p, why, whylen)) || (rc = connect_source(p, why, whylen)) ||
	    (p->nlanes > 1 && (rc = lanes_connect(p, why, whylen)))) {
		pcb_pager_destroy(p);
		return rc;
	}
	*out = p;
	return 0;
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

static const uint8_t zero_page[PCB_PAGE_SIZE];

int pcb_pager_precopy_put(struct pcb_pager *p, uint64_t page, const void *data)
{
	if (p->threads_started || !p->in.ops->per_run_api || page >= p->cfg.npages)
		return -EINVAL;
	if (pcb_ps_present(&p->ps, page)) {
		/* a re-send: the page is ours and mapped; overwrite it */
		if (p->in.arrival)
			p->in.arrival[page] = data ? pcb_page_digest_full(data) : pcb_page_digest_full(zero_page);
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
	if (p->threads_started || !p->in.ops->per_run_api || first + n > p->cfg.npages || !n)
		return -EINVAL;
	for (uint64_t i = 0; p->in.arrival && i < n; i++)   /* what these pages arrive with (install/install.h) */
		p->in.arrival[first + i] = pcb_page_digest_full(src ? (const uint8_t *)src + i * PCB_PAGE_SIZE : zero_page);
	uint64_t done = 0;
	while (done < n) {
		uint64_t cap = n - done;
		int fd = pcb_install_uffd(&p->in, first + done, &cap);   /* sliced (lanes): up to the slice's end */
		uint64_t dst = (uintptr_t)page_addr(p, first + done), len = cap * PCB_PAGE_SIZE;
		int64_t got;
		if (src) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src + done * PCB_PAGE_SIZE, .len = len,
						 .mode = UFFDIO_COPY_MODE_DONTWAKE };
			int r = ioctl(fd, UFFDIO_COPY, &c);
			got = c.copy;
			if (r < 0 && errno != EAGAIN)
				return got == -EEXIST || errno == EEXIST ? -EEXIST : -errno;
		} else {
			struct uffdio_zeropage z = { .range = { dst, len }, .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
			int r = ioctl(fd, UFFDIO_ZEROPAGE, &z);
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
	if (p->threads_started || !p->in.ops->per_run_api || page >= p->cfg.npages)
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

/* --installer=auto: inline where an installer thread would have no CPU of
 * its own (the background and installer threads pinned to the same CPU; one
 * CPU online; the background thread pinned, the installer not, and two CPUs
 * online: the other one is the source's or the guest's), on two connections;
 * else the installer thread (docs/results/2026-12-05-source-splice.md) */
static bool installer_inline(const struct pcb_pager *p)
{
	if (p->cfg.installer)
		return p->cfg.installer == 1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool no_cpu_of_its_own = (p->cfg.pin_bg && p->cfg.pin_bg == p->cfg.pin_install) || ncpu == 1 ||
				 (p->cfg.pin_bg && !p->cfg.pin_install && ncpu == 2);
	return !p->shared && no_cpu_of_its_own;
}

static int start_threads(struct pcb_pager *p)
{
	records_map_from_here(p);   /* the pager process: none of the shared pages is mapped in it yet */
	/* inline: one staging slot stays hot in this CPU's cache (move: the open chunk and the next) */
	p->inst_inline = installer_inline(p);
	if (p->inst_inline && !p->cfg.huge)
		p->iq.nslots = chunk_mode(p) ? 2 : 1;
	if (p->inst_inline) {
		p->st.install_cpu = -1;
		p->st.install_inline = true;
	}
	if (pthread_create(&p->demand_th, NULL, demand_thread, p) != 0)
		return PCB_EXIT_OSERR;
	if (pthread_create(&p->bg_th, NULL, bg_thread, p) != 0) {
		set_fatal(p, PCB_EXIT_OSERR, "pthread_create failed");
		return PCB_EXIT_OSERR;
	}
	p->threads_started = true;
	if (p->inst_inline)
		return 0;
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
	signal_join(p->demand_th);
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
		size_t len = p->nlanes > 1 ? p->in.slice_pages << PCB_PAGE_SHIFT : p->region_len;   /* sliced: slice 0 */
		int r = pcb_uffd_unregister(p->uffd, p->region, len);
		if (r < 0)
			pcb_warn("UFFDIO_UNREGISTER: %s", strerror(-r));
		lanes_unregister(p);
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
		while (r == PCB_RX_FRAME && (h.type == PCB_MSG_PAGE || h.type == PCB_MSG_ZERO || h.type == PCB_MSG_SENT))
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

void pcb_verify_count(struct pcb_verify *v, uint64_t page, enum pcb_page_verdict verdict)
{
	if (verdict == PCB_PAGE_VERIFIED) {
		v->pages_verified++;
		return;
	}
	if (verdict == PCB_PAGE_MISSING)
		v->pages_missing++;
	else
		v->pages_corrupt++;
	if (v->nfirst_bad < 8)
		v->first_bad[v->nfirst_bad++] = page;
}

enum pcb_page_verdict pcb_verify_stamped(struct pcb_verify *v, uint64_t page, const uint64_t *words, uint64_t want)
{
	bool stamp_ok = pcb_stamp_valid(page, words[PCB_STAMP_WORD]);
	if (!stamp_ok)
		v->stamps_bad++;
	return !stamp_ok || pcb_page_digest(words) != want ? PCB_PAGE_CORRUPT : PCB_PAGE_VERIFIED;
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
			enum pcb_page_verdict d;
			if (!(vec[i] & 1) || !pcb_ps_present(&p->ps, pg))
				d = PCB_PAGE_MISSING;
			else if (p->in.arrival)   /* a bytes image: the bytes the page arrived with (the guest may have written since) */
				d = p->in.arrival[pg] != want ? PCB_PAGE_CORRUPT : PCB_PAGE_VERIFIED;
			else
				d = pcb_verify_stamped(v, pg, (const uint64_t *)page_addr(p, pg), want);
			pcb_verify_count(v, pg, d);
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
	out->install_log_runs = atomic_load(&p->ilog_n);
	out->install_log_dropped = atomic_load(&p->ilog_dropped);
	for (int ch = 0; ch < 2; ch++) {
		out->chan[ch] = (struct pcb_chan_stats){ p->chan[ch].bytes_tx, p->chan[ch].bytes_rx,
							 p->chan[ch].frames_tx, p->chan[ch].frames_rx,
							 p->chan[ch].bad_frames };
	}
	lanes_chan_stats(p, &out->chan[PCB_CHAN_DEMAND]);
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
			p->chan[ch].mac_tx = p->mac_saved[ch][0];
			p->chan[ch].mac_rx = p->mac_saved[ch][1];
			pcb_conn_free_mac(&p->chan[ch]);
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
	lanes_free(p);
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
	if (p->in.arrival)
		munmap(p->in.arrival, p->cfg.npages * 8);
	p->in.arrival = NULL;
	pcb_install_unmap(&p->in);
	p->region = NULL;
	pcb_ps_free(&p->ps);
	free(p->bg_want);
	free(p->discard);
	if (p->ilog)
		munmap(p->ilog, p->ilog_cap * sizeof(*p->ilog));
	free(p->inst_us);
	if (p->inst_kind)
		munmap(p->inst_kind, pcb_kinds_bytes(p->cfg.npages));
	if (p->fev)
		munmap(p->fev, p->capfev * sizeof(*p->fev));
	if (p->cfg.process)
		pcb_pp_shared_free(p, sizeof(*p));
	else
		free(p);
}

uint64_t pcb_pager_progress(struct pcb_pager *p)
{
	uint64_t n = atomic_load(&p->ps.npresent);
	for (int ch = 0; ch < 2; ch++)
		n += __atomic_load_n(&p->chan[ch].bytes_rx, __ATOMIC_RELAXED);
	return n;
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

/* The per-page install times, built from the install log on the first call
 * (after the threads are joined; NULL if out of memory). */
const uint32_t *pcb_pager_install_us(struct pcb_pager *p)
{
	if (p->inst_us || !p->ilog)
		return p->inst_us;
	p->inst_us = calloc(p->cfg.npages ? p->cfg.npages : 1, sizeof(*p->inst_us));
	uint64_t n = atomic_load(&p->ilog_n);
	for (uint64_t i = 0; p->inst_us && i < n && i < p->ilog_cap; i++) {
		uint64_t first = p->ilog[i].first_n & ((1ull << 40) - 1), k = p->ilog[i].first_n >> 40;
		for (uint64_t q = first; q < first + k && q < p->cfg.npages; q++)
			p->inst_us[q] = p->ilog[i].us;
	}
	if (atomic_load(&p->ilog_dropped))
		pcb_warn("the install log was full: %llu runs of install times lost",
			 (unsigned long long)atomic_load(&p->ilog_dropped));
	return p->inst_us;
}
const struct pcb_installer *pcb_pager_installer(struct pcb_pager *p) { return &p->in; }
const uint8_t *pcb_pager_install_kind(struct pcb_pager *p) { return p->inst_kind; }
const struct pcb_fault_ev *pcb_pager_fault_events(struct pcb_pager *p, size_t *n)
{
	*n = p->nfev;
	return p->fev;
}
