/* `pcbench floor`, demand faults: the bare variants (uffd round trip, a
 * handler process, end to end over TCP and unix sockets) and pcbench's pager
 * for the same faults, interleaved in rounds; paired ratios, report, JSON. */
#include "floor/internal.h"

static const char *const vname[NV] = { "bare_uffd", "bare_uffd_process", "bare_tcp", "bare_unix", "pcbench_tcp",
				       "pcbench_process_tcp" };
static const char *const vlabel[NV] = { "bare uffd round trip", "bare uffd, handler process", "bare end-to-end TCP",
					 "bare end-to-end unix",
					 "pcbench pager (TCP)", "pcbench --pager=process" };

static double pct(const struct pcb_hist *h, double p) { return (double)pcb_hist_percentile(h, p) / 1e3; }

/* Answer each 8-byte page index with a 4 KiB page whose word 0 is the index. */
static void serve_pages(int fd)
{
	static uint64_t page[PCB_PAGE_WORDS];
	for (unsigned i = 0; i < PCB_PAGE_WORDS; i++)
		page[i] = pcb_mix64(i);
	uint64_t idx;
	while (pcb_read_full(fd, &idx, 8) == 0) {
		page[0] = idx;
		if (pcb_write_full(fd, page, sizeof(page)) < 0)
			break;
	}
}

/* ---- bare handler ------------------------------------------------------------------- */

struct bare {
	int uffd, sock;
	uint8_t *region;
	uint64_t n;
	int cpu;
	int err;
	const uint8_t *page;   /* uffd-only: the page to install */
};

static void *bare_handler(void *arg)
{
	struct bare *b = arg;
	pcb_pin_self(b->cpu);
	static __thread uint8_t buf[PCB_PAGE_SIZE] __attribute__((aligned(4096)));
	for (uint64_t served = 0; served < b->n;) {
		struct uffd_msg m;
		ssize_t r = read(b->uffd, &m, sizeof(m));
		if (r < 0 && errno == EINTR)
			continue;
		if (r != sizeof(m)) {
			b->err = errno ? errno : EIO;
			return NULL;
		}
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t addr = m.arg.pagefault.address & ~(uint64_t)(PCB_PAGE_SIZE - 1);
		const void *src = b->page;
		if (b->sock >= 0) {
			uint64_t idx = (addr - (uintptr_t)b->region) >> PCB_PAGE_SHIFT;
			if (pcb_write_full(b->sock, &idx, 8) < 0 || pcb_read_full(b->sock, buf, sizeof(buf)) < 0) {
				b->err = errno;
				return NULL;
			}
			src = buf;
		}
		struct uffdio_copy c = { .dst = addr, .src = (uintptr_t)src, .len = PCB_PAGE_SIZE };
		if (ioctl(b->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST) {
			b->err = errno;
			return NULL;
		}
		served++;
	}
	return NULL;
}

/* The handler in its own process (Firecracker's and the original proposal's
 * model): it receives the userfaultfd over a unix socket (SCM_RIGHTS) and
 * installs from its own memory into the guest's.  Returns the child or -1. */
static pid_t fork_handler_process(int cpu, uint64_t n, int *sock_out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid > 0) {
		close(sv[1]);
		*sock_out = sv[0];
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "pcbench-floorpgr");
	close(sv[0]);
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint64_t region;
	struct iovec iov = { &region, sizeof(region) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	if (recvmsg(sv[1], &m, 0) != (ssize_t)sizeof(region))
		_exit(PCB_EXIT_OSERR);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		_exit(PCB_EXIT_OSERR);
	int uffd;
	memcpy(&uffd, CMSG_DATA(c), sizeof(int));
	static uint64_t page[PCB_PAGE_WORDS] __attribute__((aligned(4096)));
	struct bare b = { .uffd = uffd, .sock = -1, .region = (uint8_t *)(uintptr_t)region, .n = n, .cpu = cpu,
			  .page = (uint8_t *)page };
	bare_handler(&b);
	_exit(b.err ? PCB_EXIT_OSERR : 0);
}

static int send_uffd(int sock, int uffd, uint8_t *region)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	uint64_t r = (uintptr_t)region;
	struct iovec iov = { &r, sizeof(r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	return sendmsg(sock, &m, 0) == (ssize_t)sizeof(r) ? 0 : -1;
}

/* One bare demand variant: n faults.  Returns 0 or an exit code. */
static int run_bare(int variant, const struct placement *pl, uint64_t n, struct pcb_hist *h, char *why, size_t whylen)
{
	int sv[2] = { -1, -1 }, lfd = -1, hsock = -1;
	pid_t srv = -1, hproc = -1;
	if (variant == V_UFFD_PROC) {
		hproc = fork_handler_process(pl->handler, n, &hsock);
		if (hproc < 0) {
			snprintf(why, whylen, "fork handler process: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
	} else if (variant == V_UNIX) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			snprintf(why, whylen, "socketpair: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		srv = floor_fork_server(sv[1], pl->server, -1, serve_pages);
		close(sv[1]);
	} else if (variant == V_TCP) {
		uint16_t port;
		lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
		if (lfd < 0) {
			snprintf(why, whylen, "listen: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		srv = floor_fork_server(-1, pl->server, lfd, serve_pages);
		close(lfd);
		sv[0] = pcb_connect_tcp("127.0.0.1", port, 5000);
		if (sv[0] < 0) {
			snprintf(why, whylen, "connect to the floor page server: %s", strerror(errno));
			floor_reap(srv);
			return PCB_EXIT_OSERR;
		}
	}
	uint8_t *region;
	int uffd = floor_bare_uffd(&region, n, why, whylen);
	if (uffd < 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		if (hsock >= 0)
			close(hsock);
		floor_reap(srv);
		if (hproc > 0)
			kill(hproc, SIGKILL);
		floor_reap(hproc);
		return pcb_exit_for_errno(-uffd);
	}
	static uint64_t page[PCB_PAGE_WORDS] __attribute__((aligned(4096)));
	struct bare b = { .uffd = uffd, .sock = sv[0], .region = region, .n = n, .cpu = pl->handler, .page = (uint8_t *)page };
	struct faulter f = { .region = region, .first = 0, .n = n, .cpu = pl->guest, .h = h };
	pthread_t th, fh;
	int rc = 0;
	if (variant == V_UFFD_PROC) {
		if (send_uffd(hsock, uffd, region) < 0) {
			snprintf(why, whylen, "passing the userfaultfd to the handler process: %s", strerror(errno));
			kill(hproc, SIGKILL);
			rc = PCB_EXIT_OSERR;
		}
	} else {
		pthread_create(&th, NULL, bare_handler, &b);
	}
	if (!rc) {
		floor_faulter_start(&f, &fh);
		floor_faulter_go(&f);
		pthread_join(fh, NULL);
	}
	if (variant == V_UFFD_PROC) {
		int st = 0;
		if (waitpid(hproc, &st, 0) == hproc && !rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			snprintf(why, whylen, "bare %s: the handler process failed (status 0x%x)", vname[variant], st);
			rc = PCB_EXIT_OSERR;
		}
		hproc = -1;
		close(hsock);
	} else {
		pthread_join(th, NULL);
	}
	if (rc) {
		/* reported above */
	} else if (b.err) {
		snprintf(why, whylen, "bare %s handler failed: %s", vname[variant], strerror(b.err));
		rc = PCB_EXIT_OSERR;
	} else if (variant != V_UFFD && variant != V_UFFD_PROC && f.bad) {
		snprintf(why, whylen, "bare %s: %llu pages with wrong contents", vname[variant], (unsigned long long)f.bad);
		rc = PCB_EXIT_VERIFY;
	}
	munmap(region, n << PCB_PAGE_SHIFT);
	close(uffd);
	if (sv[0] >= 0)
		close(sv[0]);
	floor_reap(srv);
	return rc;
}

/* ---- demand faults ---------------------------------------------------------------- */

/* one round at one placement: every variant, then the round's paired ratios */
static int demand_round(struct floor_run *F, unsigned r, unsigned p, char *why, size_t whylen)
{
	const struct placement *pl = &floor_places[p];
	for (int v = 0; v < NV; v++) {
		int rc;
		pcb_hist_init(&F->rh[v]);
		if (v == V_PCB || v == V_PCB_PROC) {
			struct pcb_result res;
			rc = floor_run_pcbench(&F->fc, "demand", "copy", 0, v == V_PCB_PROC, pl->guest, pl->handler, pl->handler,
					 pl->handler, pl->server, F->per_round, 0.0, &F->rh[v], &res, why, whylen);
		} else {
			rc = run_bare(v, pl, F->per_round, &F->rh[v], why, whylen);
		}
		if (rc) {
			pcb_err("floor: %s (%s): %s", vname[v], pl->name, why);
			return rc;
		}
		pcb_hist_merge(&F->hist[p][v], &F->rh[v]);
	}
	F->pr50[p][r] = pct(&F->rh[V_PCB], 50) / pct(&F->rh[V_TCP], 50);
	F->pr90[p][r] = pct(&F->rh[V_PCB], 90) / pct(&F->rh[V_TCP], 90);
	F->pr99[p][r] = pct(&F->rh[V_PCB], 99) / pct(&F->rh[V_TCP], 99);
	F->pp50[p][r] = pct(&F->rh[V_PCB_PROC], 50) / pct(&F->rh[V_PCB], 50);
	F->pp99[p][r] = pct(&F->rh[V_PCB_PROC], 99) / pct(&F->rh[V_PCB], 99);
	return 0;
}

int floor_measure_demand(struct floor_run *F, char *why, size_t whylen)
{
	for (unsigned p = 0; p < 2; p++)
		for (int v = 0; v < NV; v++)
			pcb_hist_init(&F->hist[p][v]);
	if (F->fc.no_demand)
		return 0;
	fprintf(stderr, "floor: demand faults: %llu per variant and placement, %u rounds\n",
		(unsigned long long)(F->per_round * F->fc.rounds), F->fc.rounds);
	for (unsigned r = 0; r < F->fc.rounds; r++)
		for (unsigned p = 0; p < F->nplace; p++) {
			int rc = demand_round(F, r, p, why, whylen);
			if (rc)
				return rc;
		}
	return 0;
}

void floor_print_demand(struct floor_run *F)
{
	const struct floor_cfg *fc = &F->fc;
	F->met_demand = true;
	if (fc->no_demand)
		return;
	printf("\ndemand faults (%llu per row in %u interleaved rounds; µs as the faulting thread sees it; same = all on CPU 0, "
	       "cross = faulting thread CPU 0, handler+server CPU 1)\n",
	       (unsigned long long)(F->per_round * fc->rounds), fc->rounds);
	printf("  %-6s %-27s %8s %8s %8s %8s %8s\n", "place", "variant", "min", "p50", "p90", "p99", "p99.9");
	for (unsigned p = 0; p < F->nplace; p++) {
		const char *pn = floor_places[p].name;
		for (int v = 0; v < NV; v++) {
			const struct pcb_hist *h = &F->hist[p][v];
			printf("  %-6s %-27s %8.1f %8.1f %8.1f %8.1f %8.1f\n", pn, vlabel[v], (double)h->min / 1e3, pct(h, 50),
			       pct(h, 90), pct(h, 99), pct(h, 99.9));
		}
		F->ratio50[p] = pct(&F->hist[p][V_PCB], 50) / pct(&F->hist[p][V_TCP], 50);
		F->ratio90[p] = pct(&F->hist[p][V_PCB], 90) / pct(&F->hist[p][V_TCP], 90);
		F->ratio99[p] = pct(&F->hist[p][V_PCB], 99) / pct(&F->hist[p][V_TCP], 99);
		F->q50[p] = floor_spread(F->pr50[p], fc->rounds);
		F->q90[p] = floor_spread(F->pr90[p], fc->rounds);
		F->q99[p] = floor_spread(F->pr99[p], fc->rounds);
		F->qp50[p] = floor_spread(F->pp50[p], fc->rounds);
		F->qp99[p] = floor_spread(F->pp99[p], fc->rounds);
		const struct spread *a = &F->q50[p], *b = &F->q99[p], *c = &F->qp50[p], *d = &F->qp99[p], *e = &F->q90[p];
		printf("  %-6s pcbench/bare TCP, all faults pooled: p50 ratio %.3f, p90 ratio %.3f, p99 ratio %.3f\n", pn,
		       F->ratio50[p], F->ratio90[p], F->ratio99[p]);
		printf("  %-6s pcbench/bare TCP, paired by round (median [min-max] of %u): p50 %.3f [%.3f-%.3f] (target <= 1.15), "
		       "p90 %.3f [%.3f-%.3f], p99 %.3f [%.3f-%.3f] (target <= 1.3)\n", pn, fc->rounds, a->med, a->min, a->max,
		       e->med, e->min, e->max, b->med, b->min, b->max);
		printf("  %-6s --pager=process / threads, paired: p50 %.3f [%.3f-%.3f], p99 %.3f [%.3f-%.3f]\n", pn, c->med,
		       c->min, c->max, d->med, d->min, d->max);
		F->met_demand = F->met_demand && a->med <= 1.15 && b->med <= 1.3;
	}
}

void floor_json_demand(const struct floor_run *F, struct pcb_json *j)
{
	unsigned rounds = F->fc.rounds;
	pcb_json_arr_begin(j, "demand");
	for (unsigned p = 0; p < F->nplace; p++) {
		pcb_json_obj_begin(j, NULL);
		pcb_json_str(j, "placement", floor_places[p].name);
		pcb_json_i64(j, "guest_cpu", floor_places[p].guest);
		pcb_json_i64(j, "handler_cpu", floor_places[p].handler);
		pcb_json_i64(j, "server_cpu", floor_places[p].server);
		for (int v = 0; v < NV; v++)
			pcb_hist_json(j, vname[v], &F->hist[p][v], 0);
		pcb_json_dbl(j, "ratio_p50_pcbench_over_bare_tcp", F->ratio50[p]);
		pcb_json_dbl(j, "ratio_p90_pcbench_over_bare_tcp", F->ratio90[p]);
		pcb_json_dbl(j, "ratio_p99_pcbench_over_bare_tcp", F->ratio99[p]);
		const struct { const char *k; const double *v; } pr[5] = {
			{ "paired_ratio_p50_pcbench_over_bare_tcp", F->pr50[p] }, { "paired_ratio_p90_pcbench_over_bare_tcp", F->pr90[p] },
			{ "paired_ratio_p99_pcbench_over_bare_tcp", F->pr99[p] },
			{ "paired_ratio_p50_process_over_threads", F->pp50[p] }, { "paired_ratio_p99_process_over_threads", F->pp99[p] },
		};
		for (int i = 0; i < 5; i++) {
			struct spread s;
			s = floor_spread(pr[i].v, rounds);
			pcb_json_obj_begin(j, pr[i].k);
			pcb_json_arr_begin(j, "per_round");
			for (unsigned r = 0; r < rounds; r++)
				pcb_json_dbl(j, NULL, pr[i].v[r]);
			pcb_json_arr_end(j);
			floor_json_spread(j, "", "median", s.med, s.min, s.max);
			pcb_json_obj_end(j);
		}
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_bool(j, "demand_target_met", F->met_demand);
}
