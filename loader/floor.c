/* `pcbench floor`: what the best possible pager could do on this machine,
 * and pcbench's own pager on the same settings, measured in one run.
 *
 * Demand faults (one faulting thread touching never-touched pages in order,
 * latency = CLOCK_MONOTONIC around the access, as in the guest):
 *   uffd      bare userfaultfd round trip: a handler thread blocked in read()
 *             on the uffd, UFFDIO_COPY of a prepared page, resume;
 *   uffd_process  the same handler in its own process, the uffd passed to it
 *             over a unix socket (SCM_RIGHTS): what a pager process costs;
 *   tcp/unix  bare end to end: the same handler sends the 8-byte page index
 *             to a minimal page server process and receives 4 KiB back
 *             (blocking send/recv, TCP_NODELAY), then UFFDIO_COPY;
 *   pcbench   pcbench's pager (demand policy) and source page server over
 *             TCP for the same faults, every page verified at the end.
 * in two placements: `same` (faulting thread, handler and server all on
 * CPU 0) and `cross` (faulting thread on CPU 0, handler and server on CPU 1).
 * Variants are interleaved in rounds so drift on a shared machine hits all.
 *
 * Background pull (bulk):
 *   transport  the source process streams pages over loopback TCP, the
 *              receiver reads them into a reused buffer (the transport alone);
 *   bare-copy  the same stream received and installed with batched
 *              UFFDIO_COPY (128 pages per ioctl) into a fresh registered region:
 *              the best pager without protocol, policy or bookkeeping;
 *   pcbench    a whole migration with no guest accesses (sequential policy)
 *              for each install path; throughput = pages / (switch-over to
 *              last page present), every page verified.
 */
#include "loader/floor.h"
#include "common/hist.h"
#include "common/image.h"
#include "common/json.h"
#include "common/pin.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include "pager/install.h"
#include "pager/pager.h"
#include "pager/policy.h"
#include "pager/proto.h"
#include "pager/source.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct floor_cfg {
	uint64_t faults;
	unsigned rounds;
	uint64_t bulk_bytes;
	uint64_t seed;
	unsigned batch, window;
	unsigned bulk_reps;
	char json[4096];
	bool no_bulk, no_demand;
};

enum { V_UFFD, V_UFFD_PROC, V_TCP, V_UNIX, V_PCB, NV };
static const char *const vname[NV] = { "bare_uffd", "bare_uffd_process", "bare_tcp", "bare_unix", "pcbench_tcp" };
static const char *const vlabel[NV] = { "bare uffd round trip", "bare uffd, handler process", "bare end-to-end TCP",
					 "bare end-to-end unix",
					 "pcbench pager (TCP)" };
struct placement {
	const char *name;
	int guest, handler, server;
};
static const struct placement placements[2] = { { "same", 0, 0, 0 }, { "cross", 0, 1, 1 } };

/* ---- the faulting thread (identical for every variant) ---------------------------- */

struct faulter {
	uint8_t *region;
	uint64_t first, n;
	int cpu;
	const struct pcb_image *im;   /* expected contents: word 0 (NULL: word 0 == page index) */
	struct pcb_hist *h;
	uint64_t bad;
	pid_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready, go;
};

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

static int faulter_start(struct faulter *f, pthread_t *th)
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

static void faulter_go(struct faulter *f)
{
	pthread_mutex_lock(&f->lock);
	f->go = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* ---- minimal page server (bare end to end) ---------------------------------------- */

static pid_t fork_server(int fd_keep, int cpu, int listen_fd, void (*serve)(int fd))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "pcbench-floorsrv");
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

/* Stream `bytes` (first 8 bytes say how many) in 1 MiB writes. */
static void serve_bulk(int fd)
{
	uint64_t bytes;
	if (pcb_read_full(fd, &bytes, 8) < 0)
		return;
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return;
	for (size_t i = 0; i < cap; i += 8)
		*(uint64_t *)(buf + i) = pcb_mix64(i);
	while (bytes) {
		size_t n = bytes < cap ? bytes : cap;
		if (pcb_write_full(fd, buf, n) < 0)
			break;
		bytes -= n;
	}
	free(buf);
}

static void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
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

static int bare_uffd(uint8_t **region, uint64_t npages, char *why, size_t whylen)
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
		srv = fork_server(sv[1], pl->server, -1, serve_pages);
		close(sv[1]);
	} else if (variant == V_TCP) {
		uint16_t port;
		lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
		if (lfd < 0) {
			snprintf(why, whylen, "listen: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		srv = fork_server(-1, pl->server, lfd, serve_pages);
		close(lfd);
		sv[0] = pcb_connect_tcp("127.0.0.1", port, 5000);
		if (sv[0] < 0) {
			snprintf(why, whylen, "connect to the floor page server: %s", strerror(errno));
			reap(srv);
			return PCB_EXIT_OSERR;
		}
	}
	uint8_t *region;
	int uffd = bare_uffd(&region, n, why, whylen);
	if (uffd < 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		if (hsock >= 0)
			close(hsock);
		reap(srv);
		if (hproc > 0)
			kill(hproc, SIGKILL);
		reap(hproc);
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
		faulter_start(&f, &fh);
		faulter_go(&f);
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
	reap(srv);
	return rc;
}

/* ---- pcbench's pager for the same faults -------------------------------------------- */

static pid_t fork_source(const struct pcb_source_cfg *sc, int cpu, uint16_t *port, char *why, size_t whylen)
{
	int lfd = pcb_listen_tcp("127.0.0.1", 0, port);
	if (lfd < 0) {
		snprintf(why, whylen, "source cannot listen: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "pcbench-source");
		if (cpu >= 0)
			pcb_pin_self(cpu);
		_exit(pcb_source_serve(sc, lfd));
	}
	close(lfd);
	if (pid < 0)
		snprintf(why, whylen, "fork: %s", strerror(errno));
	return pid;
}

struct pcb_result {
	uint64_t migration_ns, pages, bytes_rx;
	struct pcb_verify ver;
	struct pcb_pager_stats st;
};

/* A pcbench migration of npages: with a faulter (demand) or without (bulk). */
static int run_pcbench(const struct floor_cfg *fc, const char *policy, int install, unsigned ibatch,
		       int guest_cpu, int handler_cpu, int bg_cpu, int inst_cpu, int source_cpu, uint64_t npages, double zero,
		       struct pcb_hist *h, struct pcb_result *res, char *why, size_t whylen)
{
	struct pcb_image im;
	pcb_image_init(&im, fc->seed, npages, zero);
	struct pcb_source_cfg sc = { .mem_bytes = npages << PCB_PAGE_SHIFT, .seed = fc->seed, .zero_fraction = zero,
				     .sessions = 1 };
	uint16_t port;
	pid_t src = fork_source(&sc, source_cpu, &port, why, whylen);
	if (src < 0)
		return PCB_EXIT_OSERR;
	struct pcb_pager_cfg pc = {
		.npages = npages, .nvcpus = 1, .policy = pcb_policy_find(policy), .batch_pages = fc->batch,
		.window = fc->window, .io_timeout_ns = 5 * PCB_NSEC_PER_SEC, .host = "127.0.0.1", .port = port,
		.seed = fc->seed, .zero_threshold = im.zero_threshold, .install_mode = install, .install_batch = ibatch,
		.pin_demand = (unsigned)(handler_cpu + 1), .pin_bg = (unsigned)(bg_cpu + 1), .pin_install = (unsigned)(inst_cpu + 1),
	};
	struct pcb_pager *p;
	int rc = pcb_pager_create(&pc, &p, why, whylen);
	if (rc) {
		kill(src, SIGKILL);
		reap(src);
		return rc;
	}
	struct faulter f = { .region = pcb_pager_region(p), .first = 0, .n = h ? npages : 0, .cpu = guest_cpu,
			     .im = &im, .h = h };
	pthread_t fh;
	if (h) {
		faulter_start(&f, &fh);
		pcb_pager_register_vcpu(p, 0, f.tid);
	}
	pcb_pager_start(p);
	if (h) {
		faulter_go(&f);
		pthread_join(fh, NULL);
	}
	pcb_pager_guest_done(p);
	for (;;) {
		rc = pcb_pager_poll(p, 100, why, whylen);
		if (rc < 0) {
			/* a blocked faulter cannot exist here (joined above): safe to tear down */
			kill(src, SIGKILL);
			reap(src);
			pcb_pager_destroy(p);
			return -rc;
		}
		if (rc == 1)
			break;
	}
	pcb_pager_finish(p);
	rc = pcb_pager_verify(p, &res->ver, why, whylen);
	pcb_pager_stats(p, &res->st);
	res->migration_ns = res->st.t_complete_ns - res->st.t_switchover_ns;
	res->pages = npages;
	res->bytes_rx = res->st.chan[0].bytes_rx + res->st.chan[1].bytes_rx;
	pcb_pager_destroy(p);
	reap(src);
	if (!rc && (res->ver.pages_corrupt || res->ver.pages_missing || f.bad)) {
		snprintf(why, whylen, "pcbench pager: %llu corrupt, %llu missing pages, %llu bad reads",
			 (unsigned long long)res->ver.pages_corrupt, (unsigned long long)res->ver.pages_missing,
			 (unsigned long long)f.bad);
		rc = PCB_EXIT_VERIFY;
	}
	return rc;
}

/* ---- bulk: transport alone, and bare batched COPY -------------------------------- */

static int run_bulk_bare(bool install, int recv_cpu, int send_cpu, uint64_t bytes, double *gbps, char *why, size_t whylen)
{
	uint16_t port;
	int lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
	if (lfd < 0) {
		snprintf(why, whylen, "listen: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	pid_t srv = fork_server(-1, send_cpu, lfd, serve_bulk);
	close(lfd);
	int s = pcb_connect_tcp("127.0.0.1", port, 5000);
	if (s < 0) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		reap(srv);
		return PCB_EXIT_OSERR;
	}
	pcb_pin_self(recv_cpu);
	uint64_t npages = bytes >> PCB_PAGE_SHIFT;
	uint8_t *region = NULL;
	int uffd = -1;
	if (install) {
		uffd = bare_uffd(&region, npages, why, whylen);
		if (uffd < 0) {
			close(s);
			reap(srv);
			return pcb_exit_for_errno(-uffd);
		}
	}
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	uint8_t *buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int rc = 0;
	uint64_t t0 = pcb_now_ns();
	if (buf == MAP_FAILED || pcb_write_full(s, &bytes, 8) < 0) {
		snprintf(why, whylen, "bulk: %s", strerror(errno));
		rc = PCB_EXIT_OSERR;
	}
	for (uint64_t done = 0; !rc && done < bytes;) {
		size_t n = bytes - done < chunk ? bytes - done : chunk;
		if (pcb_read_full(s, buf, n) < 0) {
			snprintf(why, whylen, "bulk receive: %s", strerror(errno));
			rc = PCB_EXIT_OSERR;
			break;
		}
		if (install) {
			struct uffdio_copy c = { .dst = (uintptr_t)region + done, .src = (uintptr_t)buf, .len = n };
			if (ioctl(uffd, UFFDIO_COPY, &c) < 0) {
				snprintf(why, whylen, "bulk UFFDIO_COPY: %s", strerror(errno));
				rc = PCB_EXIT_OSERR;
			}
		}
		done += n;
	}
	uint64_t dt = pcb_now_ns() - t0;
	*gbps = dt ? (double)bytes / (double)dt : 0;
	cpu_set_t all;
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE && i < sysconf(_SC_NPROCESSORS_ONLN); i++)
		CPU_SET(i, &all);
	sched_setaffinity(0, sizeof(all), &all);
	if (buf != MAP_FAILED)
		munmap(buf, chunk);
	if (region) {
		munmap(region, npages << PCB_PAGE_SHIFT);
		close(uffd);
	}
	close(s);
	reap(srv);
	return rc;
}

/* ---- options, report ------------------------------------------------------------- */

static void floor_help(FILE *fp)
{
	fprintf(fp,
		"usage: pcbench floor [--faults=N] [--rounds=N] [--bulk=SIZE] [--bulk-reps=N] [--batch=N] [--window=N] [--seed=N]\n"
		"                     [--no-bulk] [--no-demand] [--json=FILE]\n"
		"\n"
		"Measures the floor a pager can reach on this machine and pcbench against it, in one run:\n"
		"bare userfaultfd round trip (handler thread, and handler process given the uffd over a\n"
		"unix socket), bare end to end over TCP and a unix socket (minimal page\n"
		"server), and pcbench's pager for the same faults, each with the faulting thread, handler\n"
		"and server on one CPU (same) and split over two (cross); then bulk background pull:\n"
		"the TCP transport alone, a bare batched-UFFDIO_COPY receiver, and pcbench with each\n"
		"install path (copy, move, continue; batched and unbatched).  Prints a table with the\n"
		"pcbench/bare ratios and writes it as JSON with --json.\n"
		"\n"
		"  --faults=N    demand faults per variant and placement [20000]\n"
		"  --rounds=N    interleaved rounds the faults are split into [4]\n"
		"  --bulk=SIZE   bytes pulled per bulk measurement [256M]\n"
		"  --bulk-reps=N repetitions of every bulk measurement, interleaved; the median is reported [3]\n"
		"  --batch=N     pcbench background request batch (pages) for the bulk runs [1024]\n"
		"  --window=N    pcbench background batches in flight for the bulk runs [4]\n"
		"  --seed=N      image seed [1]\n");
}

static int floor_parse(struct floor_cfg *fc, int argc, char **argv)
{
	*fc = (struct floor_cfg){ .faults = 20000, .rounds = 4, .bulk_bytes = 256ull << 20, .seed = 1,
				  .batch = 1024, .window = 4, .bulk_reps = 3 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		char name[32];
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			floor_help(stdout);
			return 1;
		}
		if (!strcmp(a, "--no-bulk")) {
			fc->no_bulk = true;
			continue;
		}
		if (!strcmp(a, "--no-demand")) {
			fc->no_demand = true;
			continue;
		}
		if (strncmp(a, "--", 2) || nl >= sizeof(name)) {
			pcb_err("floor: unexpected argument '%s' (see pcbench floor --help)", a);
			return PCB_EXIT_USAGE;
		}
		memcpy(name, a + 2, nl - 2);
		name[nl - 2] = 0;
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val) {
			pcb_err("floor: option --%s needs a value", name);
			return PCB_EXIT_USAGE;
		}
		uint64_t u;
		bool ok = true;
		if (!strcmp(name, "faults"))
			ok = pcb_parse_u64(val, &u) == 0 && u >= 100 && u <= 10000000 && (fc->faults = u, 1);
		else if (!strcmp(name, "rounds"))
			ok = pcb_parse_u64(val, &u) == 0 && u >= 1 && u <= 100 && (fc->rounds = (unsigned)u, 1);
		else if (!strcmp(name, "bulk"))
			ok = pcb_parse_size(val, &u) == 0 && u >= (1 << 20) && u <= (64ull << 30) && !(u % (1 << 20)) &&
			     (fc->bulk_bytes = u, 1);
		else if (!strcmp(name, "bulk-reps"))
			ok = pcb_parse_u64(val, &u) == 0 && u >= 1 && u <= 16 && (fc->bulk_reps = (unsigned)u, 1);
		else if (!strcmp(name, "batch"))
			ok = pcb_parse_u64(val, &u) == 0 && u >= 1 && u <= PCB_MAX_BATCH_PAGES && (fc->batch = (unsigned)u, 1);
		else if (!strcmp(name, "window"))
			ok = pcb_parse_u64(val, &u) == 0 && u >= 1 && u <= 64 && (fc->window = (unsigned)u, 1);
		else if (!strcmp(name, "seed"))
			ok = pcb_parse_u64(val, &u) == 0 && (fc->seed = u, 1);
		else if (!strcmp(name, "json"))
			ok = strlen(val) < sizeof(fc->json) && snprintf(fc->json, sizeof(fc->json), "%s", val) > 0;
		else {
			pcb_err("floor: unknown option --%s (see pcbench floor --help)", name);
			return PCB_EXIT_USAGE;
		}
		if (!ok) {
			pcb_err("floor: invalid value for --%s: '%s' (see pcbench floor --help)", name, val);
			return PCB_EXIT_USAGE;
		}
	}
	return 0;
}

struct bulk_row {
	const char *name, *placement, *install;
	unsigned batch;
	double gbps;
	uint64_t ioctls, pages;
	uint64_t migration_ns;      /* mean over the repetitions */
	bool verified;
	double install_mpps;        /* pcbench: M pages/s inside the background install ioctls (mean) */
};

#define MAX_BULK 24

static double pct(const struct pcb_hist *h, double p) { return (double)pcb_hist_percentile(h, p) / 1e3; }

int pcb_floor_main(int argc, char **argv)
{
	struct floor_cfg fc;
	int rc = floor_parse(&fc, argc, argv);
	if (rc)
		return rc == 1 ? 0 : rc;
	char why[512];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nplace = ncpu >= 2 ? 2 : 1;
	struct pcb_sysinfo sys;
	pcb_sysinfo_read(&sys);
	uint64_t t_start = pcb_now_ns();

	static struct pcb_hist hist[2][NV];
	for (unsigned p = 0; p < 2; p++)
		for (int v = 0; v < NV; v++)
			pcb_hist_init(&hist[p][v]);
	uint64_t per_round = fc.faults / fc.rounds;
	if (!fc.no_demand) {
		fprintf(stderr, "floor: demand faults: %llu per variant and placement, %u rounds\n",
			(unsigned long long)(per_round * fc.rounds), fc.rounds);
		for (unsigned r = 0; r < fc.rounds; r++)
			for (unsigned p = 0; p < nplace; p++)
				for (int v = 0; v < NV; v++) {
					const struct placement *pl = &placements[p];
					if (v == V_PCB) {
						struct pcb_result res;
						rc = run_pcbench(&fc, "demand", PCB_INSTALL_COPY, 0, pl->guest, pl->handler,
								 pl->handler, pl->handler, pl->server, per_round, 0.0, &hist[p][v], &res,
								 why, sizeof(why));
					} else {
						rc = run_bare(v, pl, per_round, &hist[p][v], why, sizeof(why));
					}
					if (rc) {
						pcb_err("floor: %s (%s): %s", vname[v], pl->name, why);
						return rc;
					}
				}
	}

	struct bulk_row rows[MAX_BULK];
	unsigned nrows = 0;
	if (!fc.no_bulk) {
		uint64_t npages = fc.bulk_bytes >> PCB_PAGE_SHIFT;
		static const struct { const char *name; int mode; unsigned batch; } var[] = {
			{ "transport", -1, 0 }, { "bare_copy", PCB_INSTALL_COPY, PCB_MAX_RUN_PAGES },
			{ "pcbench", PCB_INSTALL_COPY, 1 }, { "pcbench", PCB_INSTALL_COPY, PCB_MAX_RUN_PAGES },
			{ "pcbench", PCB_INSTALL_MOVE, 1 }, { "pcbench", PCB_INSTALL_MOVE, PCB_MAX_RUN_PAGES },
			{ "pcbench", PCB_INSTALL_CONTINUE, 1 }, { "pcbench", PCB_INSTALL_CONTINUE, PCB_MAX_RUN_PAGES },
		};
		const unsigned nvar = sizeof(var) / sizeof(var[0]);
		double g[2][8][16];
		fprintf(stderr, "floor: bulk pull of %s per measurement, %u repetitions (median reported)\n",
			pcb_fmt_size(fc.bulk_bytes, why, sizeof(why)), fc.bulk_reps);
		for (unsigned p = 0; p < nplace; p++)
			for (unsigned k = 0; k < nvar; k++) {
				rows[nrows++] = (struct bulk_row){ var[k].name, placements[p].name,
								   var[k].mode < 0 ? "-" : pcb_install_name(var[k].mode),
								   var[k].batch, 0, 0, 0, 0, true, 0 };
			}
		/* repetitions outermost: drift (and the cost of never-touched memory) spread over every variant */
		for (unsigned rep = 0; rep < fc.bulk_reps; rep++)
			for (unsigned p = 0; p < nplace; p++) {
				int rcpu = 0, scpu = p ? 1 : 0;
				for (unsigned k = 0; k < nvar; k++) {
					struct bulk_row *row = &rows[p * nvar + k];
					if (k < 2) {
						rc = run_bulk_bare(k == 1, rcpu, scpu, fc.bulk_bytes, &g[p][k][rep], why, sizeof(why));
						if (rc) {
							pcb_err("floor: bulk %s: %s", var[k].name, why);
							return rc;
						}
						if (k == 1) {
							row->ioctls = npages / PCB_MAX_RUN_PAGES;
							row->pages = npages;
						}
						continue;
					}
					struct pcb_result res;
					/* installer: with everything in `same`; unpinned in `cross` (on the
					 * source's CPU it is slowest, see README) */
					rc = run_pcbench(&fc, "sequential", var[k].mode, var[k].batch, rcpu, rcpu, rcpu, p ? -1 : rcpu, scpu,
							 npages, 0.0,
							 NULL, &res, why, sizeof(why));
					if (rc) {
						pcb_err("floor: bulk pcbench --install=%s: %s", pcb_install_name(var[k].mode), why);
						return rc;
					}
					g[p][k][rep] = res.migration_ns ? (double)(npages << PCB_PAGE_SHIFT) / (double)res.migration_ns : 0;
					row->ioctls = res.st.inst_bg.ioctls;
					row->pages = res.st.inst_bg.pages;
					row->migration_ns += res.migration_ns / fc.bulk_reps;
					row->install_mpps += res.st.inst_bg.install_ns ?
						(double)res.st.inst_bg.pages * 1e3 / (double)res.st.inst_bg.install_ns / fc.bulk_reps : 0;
				}
			}
		for (unsigned p = 0; p < nplace; p++)
			for (unsigned k = 0; k < nvar; k++) {
				double *v = g[p][k];
				for (unsigned i = 1; i < fc.bulk_reps; i++)   /* insertion sort, n <= 16 */
					for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
						double t = v[j];
						v[j] = v[j - 1];
						v[j - 1] = t;
					}
				rows[p * nvar + k].gbps = fc.bulk_reps % 2 ? v[fc.bulk_reps / 2]
									  : (v[fc.bulk_reps / 2 - 1] + v[fc.bulk_reps / 2]) / 2;
			}
	}

	/* ---- report ---- */
	printf("pcbench floor %s (git %s): kernel %s, %d CPUs, %s\n", PCB_VERSION, PCB_GITREV, sys.kernel, sys.cpus_online,
	       sys.cpu_model);
	bool met_demand = true, met_bulk = true;
	double ratio50[2] = { 0, 0 }, ratio99[2] = { 0, 0 };
	if (!fc.no_demand) {
		printf("\ndemand faults (%llu per row; µs as the faulting thread sees it; same = all on CPU 0, "
		       "cross = faulting thread CPU 0, handler+server CPU 1)\n",
		       (unsigned long long)(per_round * fc.rounds));
		printf("  %-6s %-27s %8s %8s %8s %8s %8s\n", "place", "variant", "min", "p50", "p90", "p99", "p99.9");
		for (unsigned p = 0; p < nplace; p++) {
			for (int v = 0; v < NV; v++) {
				const struct pcb_hist *h = &hist[p][v];
				printf("  %-6s %-27s %8.1f %8.1f %8.1f %8.1f %8.1f\n", placements[p].name, vlabel[v],
				       (double)h->min / 1e3, pct(h, 50), pct(h, 90), pct(h, 99), pct(h, 99.9));
			}
			ratio50[p] = pct(&hist[p][V_PCB], 50) / pct(&hist[p][V_TCP], 50);
			ratio99[p] = pct(&hist[p][V_PCB], 99) / pct(&hist[p][V_TCP], 99);
			printf("  %-6s pcbench/bare TCP: p50 ratio %.3f (target <= 1.15), p99 ratio %.3f (target <= 1.3)\n",
			       placements[p].name, ratio50[p], ratio99[p]);
			met_demand = met_demand && ratio50[p] <= 1.15 && ratio99[p] <= 1.3;
		}
	}
	double best_pcb[2] = { 0, 0 }, transport[2] = { 0, 0 }, bare_copy[2] = { 0, 0 };
	if (!fc.no_bulk) {
		printf("\nbulk background pull (%s, no guest accesses, median of %u; GB/s = 1e9 bytes/s; same = receiver and sender on CPU 0, "
		       "cross = receiver CPU 0, sender CPU 1, pcbench's installer thread unpinned)\n", pcb_fmt_size(fc.bulk_bytes, why, sizeof(why)), fc.bulk_reps);
		printf("  %-6s %-10s %-9s %6s %8s %10s %10s %12s %s\n", "place", "variant", "install", "batch", "GB/s",
		       "ioctls", "pages", "ioctl Mpg/s", "vs transport");
		for (unsigned i = 0; i < nrows; i++) {
			struct bulk_row *b = &rows[i];
			unsigned p = strcmp(b->placement, "same") ? 1 : 0;
			if (!strcmp(b->name, "transport"))
				transport[p] = b->gbps;
			if (!strcmp(b->name, "bare_copy"))
				bare_copy[p] = b->gbps;
			if (!strcmp(b->name, "pcbench") && b->gbps > best_pcb[p])
				best_pcb[p] = b->gbps;
			printf("  %-6s %-10s %-9s %6u %8.3f %10llu %10llu %12.2f %11.3f\n", b->placement, b->name, b->install, b->batch,
			       b->gbps, (unsigned long long)b->ioctls, (unsigned long long)b->pages, b->install_mpps,
			       transport[p] > 0 ? b->gbps / transport[p] : 0);
		}
		for (unsigned p = 0; p < nplace; p++) {
			printf("  %-6s best pcbench pull / transport %.3f (target >= 0.9), / bare batched COPY %.3f\n",
			       placements[p].name, transport[p] > 0 ? best_pcb[p] / transport[p] : 0,
			       bare_copy[p] > 0 ? best_pcb[p] / bare_copy[p] : 0);
			met_bulk = met_bulk && transport[p] > 0 && best_pcb[p] / transport[p] >= 0.9;
		}
	}
	if (!fc.no_demand)
		printf("\ndemand target (p50 <= 1.15, p99 <= 1.3 x bare TCP, every placement): %s\n", met_demand ? "met" : "NOT met");
	if (!fc.no_bulk)
		printf("bulk target (best pcbench pull >= 0.9 x transport, every placement): %s\n", met_bulk ? "met" : "NOT met");

	if (fc.json[0]) {
		FILE *fp = fopen(fc.json, "w");
		if (!fp) {
			pcb_err("floor: cannot write --json file '%s': %s", fc.json, strerror(errno));
			return PCB_EXIT_OSERR;
		}
		struct pcb_json *j = pcb_json_open(fp);
		pcb_json_obj_begin(j, NULL);
		pcb_json_u64(j, "schema_version", 1);
		pcb_json_str(j, "tool", "pcbench");
		pcb_json_str(j, "kind", "floor");
		pcb_json_str(j, "version", PCB_VERSION);
		pcb_json_str(j, "git_revision", PCB_GITREV);
		pcb_json_obj_begin(j, "config");
		pcb_json_u64(j, "faults", per_round * fc.rounds);
		pcb_json_u64(j, "rounds", fc.rounds);
		pcb_json_u64(j, "bulk_bytes", fc.bulk_bytes);
		pcb_json_u64(j, "bulk_batch_pages", fc.batch);
		pcb_json_u64(j, "bulk_window", fc.window);
		pcb_json_u64(j, "bulk_reps", fc.bulk_reps);
		pcb_json_u64(j, "seed", fc.seed);
		pcb_json_bool(j, "demand", !fc.no_demand);
		pcb_json_bool(j, "bulk", !fc.no_bulk);
		pcb_json_obj_end(j);
		pcb_json_obj_begin(j, "system");
		pcb_sysinfo_json(&sys, j, "host");
		pcb_json_obj_end(j);
		pcb_json_obj_begin(j, "results");
		pcb_json_u64(j, "run_ns", pcb_now_ns() - t_start);
		if (!fc.no_demand) {
			pcb_json_arr_begin(j, "demand");
			for (unsigned p = 0; p < nplace; p++) {
				pcb_json_obj_begin(j, NULL);
				pcb_json_str(j, "placement", placements[p].name);
				pcb_json_i64(j, "guest_cpu", placements[p].guest);
				pcb_json_i64(j, "handler_cpu", placements[p].handler);
				pcb_json_i64(j, "server_cpu", placements[p].server);
				for (int v = 0; v < NV; v++)
					pcb_hist_json(j, vname[v], &hist[p][v], 0);
				pcb_json_dbl(j, "ratio_p50_pcbench_over_bare_tcp", ratio50[p]);
				pcb_json_dbl(j, "ratio_p99_pcbench_over_bare_tcp", ratio99[p]);
				pcb_json_obj_end(j);
			}
			pcb_json_arr_end(j);
			pcb_json_bool(j, "demand_target_met", met_demand);
		}
		if (!fc.no_bulk) {
			pcb_json_arr_begin(j, "bulk");
			for (unsigned i = 0; i < nrows; i++) {
				pcb_json_obj_begin(j, NULL);
				pcb_json_str(j, "variant", rows[i].name);
				pcb_json_str(j, "placement", rows[i].placement);
				pcb_json_str(j, "install", rows[i].install);
				pcb_json_u64(j, "install_batch", rows[i].batch);
				pcb_json_dbl(j, "gb_per_s", rows[i].gbps);
				pcb_json_u64(j, "install_ioctls", rows[i].ioctls);
				pcb_json_u64(j, "pages", rows[i].pages);
				pcb_json_u64(j, "migration_ns_mean", rows[i].migration_ns);
				pcb_json_dbl(j, "install_ioctl_mpages_per_s", rows[i].install_mpps);
				pcb_json_bool(j, "verified", rows[i].verified);
				pcb_json_obj_end(j);
			}
			pcb_json_arr_end(j);
			pcb_json_arr_begin(j, "bulk_ratio_best_pcbench_over_transport");
			for (unsigned p = 0; p < nplace; p++)
				pcb_json_dbl(j, NULL, transport[p] > 0 ? best_pcb[p] / transport[p] : 0);
			pcb_json_arr_end(j);
			pcb_json_bool(j, "bulk_target_met", met_bulk);
		}
		pcb_json_obj_end(j);
		pcb_json_obj_end(j);
		if (pcb_json_close(j) < 0 || fclose(fp) != 0) {
			pcb_err("floor: error writing '%s'", fc.json);
			return PCB_EXIT_OSERR;
		}
	}
	return 0;
}
