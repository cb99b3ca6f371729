/* What every `pcbench floor` measurement uses: the faulting thread, forked
 * helper processes, a bare registered region, one pcbench migration. */
#include "floor/internal.h"
#include "bench/stats.h"

const struct placement floor_places[2] = { { "same", 0, 0, 0 }, { "cross", 0, 1, 1 } };

/* ---- the faulting thread (identical for every variant) ---------------------------- */

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	pcb_pin_self(f->cpu);
	pthread_mutex_lock(&f->lock);
	f->tid = gettid();
	f->ready = true;
	pthread_cond_broadcast(&f->cond);
	while (!f->go)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	for (uint64_t i = 0; i < f->n; i++) {
		uint64_t pg = f->first + i;
		volatile uint64_t *w = (volatile uint64_t *)(f->region + (pg << PCB_PAGE_SHIFT));
		uint64_t t0 = pcb_now_ns();
		uint64_t v = w[0];
		uint64_t t1 = pcb_now_ns();
		pcb_hist_add(f->h, t1 - t0);
		uint64_t want = f->im ? pcb_image_word(f->im, pg, 0) : pg;
		if (v != want)
			f->bad++;
	}
	return NULL;
}

int floor_faulter_start(struct faulter *f, pthread_t *th)
{
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pthread_create(th, NULL, faulter_main, f) != 0)
		return -1;
	pthread_mutex_lock(&f->lock);
	while (!f->ready)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

void floor_faulter_go(struct faulter *f)
{
	pthread_mutex_lock(&f->lock);
	f->go = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* ---- minimal page server (bare end to end) ---------------------------------------- */

pid_t floor_fork_server(int fd_keep, int cpu, int listen_fd, void (*serve)(int fd))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "pcbench-floorsrv");
	if (cpu >= 0)
		pcb_pin_self(cpu);
	int fd = fd_keep;
	if (listen_fd >= 0) {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			_exit(PCB_EXIT_OSERR);
		pcb_sock_tune(fd);
	}
	serve(fd);
	_exit(0);
}

void floor_reap(pid_t pid) { pcb_reap_child(pid, false, 3000, NULL); }

int floor_bare_uffd(uint8_t **region, uint64_t npages, char *why, size_t whylen)
{
	struct pcb_uffd_info ui;
	int uffd = pcb_uffd_open(0, &ui, why, whylen);
	if (uffd < 0)
		return uffd;
	fcntl(uffd, F_SETFL, fcntl(uffd, F_GETFL) & ~O_NONBLOCK);   /* the handler blocks in read() */
	*region = mmap(NULL, npages << PCB_PAGE_SHIFT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*region == MAP_FAILED) {
		snprintf(why, whylen, "mmap: %s", strerror(errno));
		close(uffd);
		return -ENOMEM;
	}
	madvise(*region, npages << PCB_PAGE_SHIFT, MADV_NOHUGEPAGE);
	int r = pcb_uffd_register(uffd, *region, npages << PCB_PAGE_SHIFT, UFFDIO_REGISTER_MODE_MISSING, NULL);
	if (r < 0) {
		snprintf(why, whylen, "UFFDIO_REGISTER: %s", strerror(-r));
		munmap(*region, npages << PCB_PAGE_SHIFT);
		close(uffd);
		return r;
	}
	return uffd;
}

void floor_unpin_self(void)
{
	cpu_set_t all;
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE && i < sysconf(_SC_NPROCESSORS_ONLN); i++)
		CPU_SET(i, &all);
	sched_setaffinity(0, sizeof(all), &all);
}

/* ---- pcbench's pager for the same faults -------------------------------------------- */

struct pcb_source_image floor_src_image;

static pid_t fork_source(const struct pcb_source_cfg *sc, int cpu, uint16_t *port, char *why, size_t whylen)
{
	int lfd = pcb_listen_tcp("127.0.0.1", 0, port);
	if (lfd < 0) {
		snprintf(why, whylen, "source cannot listen: %s", strerror(errno));
		return -1;
	}
	pid_t pid = pcb_source_fork(sc, lfd, cpu);
	if (pid < 0)
		snprintf(why, whylen, "fork: %s", strerror(errno));
	return pid;
}


/* Poll the pager until every page is present: 0, or an exit code after
 * killing the source and destroying the pager (reason in why). */
int floor_wait_complete(struct pcb_pager *p, pid_t src, char *why, size_t whylen)
{
	for (;;) {
		int rc = pcb_pager_poll(p, 100, why, whylen);
		if (rc == 1)
			return 0;
		if (rc < 0) {
			kill(src, SIGKILL);
			floor_reap(src);
			pcb_pager_destroy(p);
			return -rc;
		}
	}
}

/* Fork pcbench's source for an image of npages (zero: fraction of zero pages,
 * placed by --zero-model) on source_cpu and create a pager for it: pc holds
 * the caller's choices (policy, install path, placement, link); the rest is
 * filled in here.  0 (im's zero map freed with pcb_image_free_bytes), or an
 * exit code with nothing left running. */
int floor_start_migration(const struct floor_cfg *fc, struct pcb_pager_cfg *pc, uint64_t npages, double zero,
			   int source_cpu, struct pcb_image *im, pid_t *src, struct pcb_pager **p, char *why, size_t whylen)
{
	pcb_image_init(im, fc->seed, npages, zero);
	unsigned zrun = zero > 0 ? fc->zero_run_max : 0;
	if (zrun && pcb_image_zero_runs(im, zrun) < 0) {
		snprintf(why, whylen, "out of memory for the image's zero-page map");
		return PCB_EXIT_OSERR;
	}
	struct pcb_source_image si;
	struct pcb_source_cfg sc = { .mem_bytes = npages << PCB_PAGE_SHIFT, .seed = fc->seed, .zero_fraction = zero,
				     .zero_run_max = zrun, .sessions = 1, .key = fc->key, .handshake_timeout_ms = 10000,
				     .image_mode = fc->source_image, .image_report = &si,
				     .send = (enum pcb_source_send)fc->source_send };
	uint16_t port;
	*src = fork_source(&sc, source_cpu, &port, why, whylen);
	/* the rows that force the source's mode (pcb_gen, pcb_writev) do not speak for the options' choice */
	if (*src >= 0 && (!fc->source_forced || !floor_src_image.reason)) {
		uint64_t longest = floor_src_image.build_ns > si.build_ns ? floor_src_image.build_ns : si.build_ns;
		floor_src_image = si;
		floor_src_image.build_ns = longest;
	}
	if (*src < 0) {
		pcb_image_free_bytes(im);
		return PCB_EXIT_OSERR;
	}
	pc->npages = npages;
	pc->nvcpus = 1;
	pc->batch_pages = fc->batch;
	pc->window = fc->window;
	pc->io_timeout_ns = 5 * PCB_NSEC_PER_SEC;
	pc->host = "127.0.0.1";
	pc->port = port;
	pc->seed = fc->seed;
	pc->zero_threshold = im->zero_threshold;
	pc->zero_run_max = zrun;
	pc->key = fc->key;
	int rc = pcb_pager_create(pc, p, why, whylen);
	if (rc) {
		kill(*src, SIGKILL);
		floor_reap(*src);
		pcb_image_free_bytes(im);
	}
	return rc;
}

/* A pcbench migration of npages: with a faulter (demand) or without (bulk). */
int floor_run_pcbench(const struct floor_cfg *fc, const char *policy, const char *install, unsigned ibatch, bool process,
		       int guest_cpu, int handler_cpu, int bg_cpu, int inst_cpu, int source_cpu, uint64_t npages, double zero,
		       struct pcb_hist *h, struct pcb_result *res, char *why, size_t whylen)
{
	struct pcb_image im;
	struct pcb_pager_cfg pc = {
		.policy = pcb_policy_find(policy), .install = install, .install_batch = ibatch,
		.pin_demand = (unsigned)(handler_cpu + 1), .pin_bg = (unsigned)(bg_cpu + 1), .pin_install = (unsigned)(inst_cpu + 1),
		.process = process, .installer = fc->install_thread ? 2 : 0,
	};
	struct pcb_pager *p;
	pid_t src;
	int rc = floor_start_migration(fc, &pc, npages, zero, source_cpu, &im, &src, &p, why, whylen);
	if (rc)
		return rc;
	struct faulter f = { .region = pcb_pager_region(p), .first = 0, .n = h ? npages : 0, .cpu = guest_cpu,
			     .im = &im, .h = h };
	pthread_t fh;
	if (h) {
		floor_faulter_start(&f, &fh);
		pcb_pager_register_vcpu(p, 0, f.tid);
	}
	pcb_pager_start(p);
	if (h) {
		floor_faulter_go(&f);
		pthread_join(fh, NULL);
	}
	pcb_pager_guest_done(p);
	/* a blocked faulter cannot exist here (joined above): safe to tear down on failure */
	rc = floor_wait_complete(p, src, why, whylen);
	if (rc) {
		pcb_image_free_bytes(&im);
		return rc;
	}
	pcb_pager_finish(p);
	rc = pcb_pager_verify(p, &res->ver, why, whylen);
	pcb_image_free_bytes(&im);
	pcb_pager_stats(p, &res->st);
	res->migration_ns = res->st.t_complete_ns - res->st.t_switchover_ns;
	res->pages = npages;
	res->bytes_rx = res->st.chan[0].bytes_rx + res->st.chan[1].bytes_rx;
	pcb_pager_destroy(p);
	floor_reap(src);
	if (!rc && (res->ver.pages_corrupt || res->ver.pages_missing || f.bad)) {
		snprintf(why, whylen, "pcbench pager: %llu corrupt, %llu missing pages, %llu bad reads",
			 (unsigned long long)res->ver.pages_corrupt, (unsigned long long)res->ver.pages_missing,
			 (unsigned long long)f.bad);
		rc = PCB_EXIT_VERIFY;
	}
	return rc;
}

struct spread floor_spread(const double *v, unsigned n)
{
	struct pcb_spread s = pcb_spread_of(v, n);
	return (struct spread){ s.median, s.min, s.max };
}

double floor_median(const double *v, unsigned n, double *min, double *max)
{
	struct spread s = floor_spread(v, n);
	*min = s.min;
	*max = s.max;
	return s.med;
}

void floor_json_spread(struct pcb_json *j, const char *key, const char *med_name, double med, double min, double max)
{
	const char *sep = *key ? "_" : "";
	char k[128];
	snprintf(k, sizeof(k), "%s%s%s", key, *key && *med_name ? "_" : "", med_name);
	pcb_json_dbl(j, k, med);
	snprintf(k, sizeof(k), "%s%smin", key, sep);
	pcb_json_dbl(j, k, min);
	snprintf(k, sizeof(k), "%s%smax", key, sep);
	pcb_json_dbl(j, k, max);
}
