/* pcbench floor, KVM demand paging: the bare figure as Linux's KVM selftest
 * measures it, and pcbench's KVM guest for the same work, in one run.
 *
 * The bare figure follows tools/testing/selftests/kvm/demand_paging_test.c
 * (Linux 6.x, run_test / vcpu_worker with -u MISSING): every vCPU touches
 * each page of its own slice of guest memory once; each slice has its own
 * userfaultfd and one handler thread (lib/userfaultfd_util.c,
 * uffd_handler_thread_fn) that answers a fault with a waking UFFDIO_COPY of
 * the page from local memory (handle_uffd_page_request); the rate is all
 * pages over the time from releasing the vCPUs to the last one finishing.
 * Here the guest is pcbench's own minimal KVM guest (guest/kvm/, workload
 * seq: vCPU v starts at v/N of the region), so both sides run the same guest
 * code, and the local memory holds the image's pages (generated before the
 * clock starts), so the guest's read checks hold.
 *
 * pcbench's figure is `pcbench run --guest=kvm --policy=demand` of the same
 * guest (every page fetched from the forked source over TCP), run as a child
 * process; pages per second over the guest's run time (results.time.guest_ns).
 *
 * Bare over TCP is the selftest's way with each handler fetching the page it
 * installs from a forked server over its own TCP connection (8-byte index,
 * 4 KiB page, as the demand section's bare_tcp), the server reading the
 * image's pages from its memory: the demand path's cost without pcbench. */
#include "floor/floor.h"
#include "floor/internal.h"
#include "floor/kvmfloor.h"
#include "common/image.h"
#include "common/json.h"
#include "common/jsonread.h"
#include "common/util.h"
#include "common/pin.h"
#include "pager/uffd.h"
#include "workloads/workload.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct handler {
	pthread_t th;
	int uffd, stopfd;
	int sock;                    /* >= 0: fetch each page over TCP from a bare server */
	pid_t srv;                   /* that server, or -1 */
	uint64_t srv_pre_ns;         /* its CPU time before it served (reading its image once) */
	bool started;
	uint8_t *region, *local;
	uint64_t faults;
	uint64_t cpu_ns;             /* the handler thread's CPU time */
	int cpu;                     /* pinned there, or -1 */
	int err;
	uint8_t buf[PCB_PAGE_SIZE] __attribute__((aligned(4096)));   /* the page received over TCP */
};

/* The bare server's image: set before the fork, read by the forked server only. */
static struct {
	const uint8_t *local;
	uint64_t npages;
} kvm_srv;

/* Answer each 8-byte page index with that page of the image (bounds-checked).
 * First it reads one word of each page of the image it inherited and sends
 * the CPU time that took (8 bytes): a page first read by a process that did
 * not write it costs a fill of its mappings on a nested machine, which
 * pcbench's source, building its own image, does not pay either
 * (docs/results/2026-12-05-source-own-image.md). */
static void serve_image(int fd)
{
	pcb_read_each_page(kvm_srv.local, kvm_srv.npages << PCB_PAGE_SHIFT);
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	uint64_t pre = (uint64_t)ts.tv_sec * PCB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	if (pcb_write_full(fd, &pre, sizeof(pre)) < 0)
		return;
	uint64_t idx;
	while (pcb_read_full(fd, &idx, 8) == 0 && idx < kvm_srv.npages)
		if (pcb_write_full(fd, kvm_srv.local + (idx << PCB_PAGE_SHIFT), PCB_PAGE_SIZE) < 0)
			break;
}

/* One forked server and connection per handler (tcp: each handler fetches over TCP). */
static int start_servers(struct handler *h, unsigned nvcpus, const uint8_t *local, uint64_t npages, int cpu, char *why,
			 size_t whylen)
{
	kvm_srv.local = local, kvm_srv.npages = npages;
	for (unsigned v = 0; v < nvcpus; v++) {
		uint16_t port;
		int lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
		if (lfd < 0) {
			snprintf(why, whylen, "bare KVM over TCP: listen: %s", strerror(errno));
			return PCB_EXIT_OSERR;
		}
		h[v].srv = floor_fork_server(-1, cpu, lfd, serve_image);
		close(lfd);
		h[v].sock = h[v].srv < 0 ? -1 : pcb_connect_tcp("127.0.0.1", port, 5000);
		if (h[v].sock >= 0 && pcb_read_full(h[v].sock, &h[v].srv_pre_ns, sizeof(h[v].srv_pre_ns)) < 0) {
			close(h[v].sock);
			h[v].sock = -1;
		}
		if (h[v].sock < 0) {
			snprintf(why, whylen, "bare KVM over TCP: server %u: %s", v, strerror(errno));
			return PCB_EXIT_OSERR;
		}
	}
	return 0;
}

/* Close the connections, reap the servers: their CPU time serving in ns, or an exit code < 0 */
static int64_t stop_servers(struct handler *h, unsigned nvcpus)
{
	int64_t ns = 0;
	for (unsigned v = 0; v < nvcpus; v++) {
		if (h[v].sock >= 0)
			close(h[v].sock);
		h[v].sock = -1;
		if (h[v].srv <= 0)
			continue;
		struct rusage ru;
		memset(&ru, 0, sizeof(ru));
		if (!pcb_reap_child(h[v].srv, false, 3000, &ru))
			ns = -1;
		else if (ns >= 0)
			ns += (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
			      (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000 - (int64_t)h[v].srv_pre_ns;
		h[v].srv = -1;
	}
	return ns;
}

/* One vCPU's handler: each fault answered by a waking UFFDIO_COPY from local memory. */
static void handler_loop(struct handler *h)
{
	struct pollfd pf[2] = { { h->uffd, POLLIN, 0 }, { h->stopfd, POLLIN, 0 } };
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			h->err = errno;
			return;
		}
		if (pf[1].revents)
			return;
		struct uffd_msg m;
		if (read(h->uffd, &m, sizeof(m)) != sizeof(m)) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			h->err = errno;
			return;
		}
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t off = (m.arg.pagefault.address - (uintptr_t)h->region) & ~(uint64_t)(PCB_PAGE_SIZE - 1);
		const uint8_t *src = h->local + off;
		if (h->sock >= 0) {
			uint64_t idx = off >> PCB_PAGE_SHIFT;
			if (pcb_write_full(h->sock, &idx, 8) < 0 || pcb_read_full(h->sock, h->buf, PCB_PAGE_SIZE) < 0) {
				h->err = errno ? errno : EIO;
				return;
			}
			src = h->buf;
		}
		int r = pcb_uffd_copy(h->uffd, h->region + off, src, PCB_PAGE_SIZE, 0);
		if (r == -EEXIST)
			r = pcb_uffd_wake(h->uffd, h->region + off, PCB_PAGE_SIZE);
		if (r < 0) {
			h->err = -r;
			return;
		}
		h->faults++;
	}
}

static void *handler_thread(void *arg)
{
	struct handler *h = arg;
	if (h->cpu >= 0)
		pcb_pin_self(h->cpu);
	handler_loop(h);
	h->cpu_ns = pcb_thread_cpu_ns();
	return NULL;
}

static int run_guest(const struct pcb_image *im, uint8_t *region, bool kvm, unsigned nvcpus, uint64_t per, uint64_t seed,
		     int cpu, uint64_t *ns, uint64_t *cpu_ns, char *why, size_t whylen)
{
	struct pcb_guest_cfg gc = {
		.ops = pcb_workload_find("seq"), .prm = { .npages = per * nvcpus, .seed = seed, .nvcpus = nvcpus, .im = im },
		.region = region, .im = im, .ops_limit = per, .kvm = kvm,
	};
	struct pcb_guest *g;
	int rc = pcb_guest_create(&gc, NULL, &g, why, whylen);
	if (rc)
		return rc;
	if (pcb_guest_start(g) < 0) {
		snprintf(why, whylen, "cannot start the vCPU threads");
		pcb_guest_destroy(g);
		return PCB_EXIT_OSERR;
	}
	for (unsigned v = 0; cpu >= 0 && v < nvcpus; v++)
		pcb_pin_tid(pcb_guest_tid(g, v), cpu);
	uint64_t t0 = pcb_now_ns();
	pcb_guest_go(g, t0);
	pcb_guest_join(g);
	*ns = pcb_now_ns() - t0;
	const char *err = pcb_guest_error(g);
	for (unsigned v = 0; !err && v < nvcpus; v++) {
		const struct pcb_vcpu_result *r = pcb_guest_result(g, v);
		*cpu_ns += r->cpu_ns;
		if (r->read_mismatch || r->ops != per) {
			snprintf(why, whylen, "bare %s guest: vCPU %u did %llu of %llu ops, %llu reads mismatched", kvm ? "KVM" : "process",
				 v, (unsigned long long)r->ops, (unsigned long long)per, (unsigned long long)r->read_mismatch);
			rc = PCB_EXIT_SOFTWARE;
		}
	}
	if (err) {
		snprintf(why, whylen, "bare %s guest: %s", kvm ? "KVM" : "process", err);
		rc = PCB_EXIT_SOFTWARE;
	}
	pcb_guest_destroy(g);
	return rc;
}

/* Handlers: one userfaultfd per vCPU slice, each with its thread. */
static int start_handlers(struct handler *h, unsigned nvcpus, uint8_t *region, uint8_t *local, uint64_t per, int stopfd,
			  int cpu, char *why, size_t whylen)
{
	size_t slice = per << PCB_PAGE_SHIFT;
	for (unsigned v = 0; v < nvcpus; v++) {
		struct pcb_uffd_info ui;
		h[v].stopfd = stopfd, h[v].region = region, h[v].local = local, h[v].cpu = cpu;
		int fd = pcb_uffd_open(PCB_UFFD_KERNEL_FAULTS, &ui, why, whylen);
		if (fd < 0)
			return pcb_exit_for_errno(-fd);
		h[v].uffd = fd;
		int r = pcb_uffd_register(fd, region + v * slice, slice, UFFDIO_REGISTER_MODE_MISSING, &ui);
		if (r < 0) {
			snprintf(why, whylen, "UFFDIO_REGISTER: %s", strerror(-r));
			return pcb_exit_for_errno(-r);
		}
		if (pthread_create(&h[v].th, NULL, handler_thread, &h[v]) != 0) {
			snprintf(why, whylen, "cannot start a handler thread");
			return PCB_EXIT_OSERR;
		}
		h[v].started = true;
	}
	return 0;
}

/* pages/s, and CPU µs per page of the vCPU and handler threads; cpu >= 0: all pinned there (the
 * servers too); srv_us: NULL = the handlers copy from local memory, else they fetch each page over
 * TCP and it receives the servers' CPU µs per page */
static int bare_rate(bool kvm, unsigned nvcpus, uint64_t per, uint64_t seed, int cpu, double *pps, double *cpu_us,
		     double *vcpu_us, double *srv_us, char *why, size_t whylen)
{
	uint64_t npages = per * nvcpus;
	size_t len = npages << PCB_PAGE_SHIFT;
	struct pcb_image im;
	pcb_image_init(&im, seed, npages, 0.0);
	uint8_t *local = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int stop[2] = { -1, -1 };
	struct handler h[PCB_FLOOR_KVM_MAX_VCPUS];
	for (unsigned v = 0; v < PCB_FLOOR_KVM_MAX_VCPUS; v++)
		h[v] = (struct handler){ .uffd = -1, .sock = -1, .srv = -1 };
	uint64_t ns = 0, faults = 0, cpu_ns = 0;
	int rc = PCB_EXIT_OSERR;
	if (local == MAP_FAILED || region == MAP_FAILED || pipe(stop) < 0) {
		snprintf(why, whylen, "cannot map %llu bytes twice: %s", (unsigned long long)len, strerror(errno));
		goto out;
	}
	madvise(region, len, MADV_NOHUGEPAGE);   /* 4 KiB faults, as pcbench's region */
	for (uint64_t pg = 0; pg < npages; pg++)   /* the local copy: not timed */
		pcb_image_fill(&im, pg, local + (pg << PCB_PAGE_SHIFT));
	rc = srv_us ? start_servers(h, nvcpus, local, npages, cpu, why, whylen) : 0;   /* forked before any thread starts */
	if (!rc)
		rc = start_handlers(h, nvcpus, region, local, per, stop[0], cpu, why, whylen);
	if (!rc)
		rc = run_guest(&im, region, kvm, nvcpus, per, seed, cpu, &ns, &cpu_ns, why, whylen);
	*vcpu_us = (double)cpu_ns / 1e3 / (double)npages;   /* the vCPU threads' alone, before the handlers' are added */
	if (write(stop[1], "x", 1) < 0) {
		/* cannot happen: a pipe with room */
	}
	for (unsigned v = 0; v < nvcpus; v++) {
		if (!h[v].started)
			continue;
		pthread_join(h[v].th, NULL);
		faults += h[v].faults;
		cpu_ns += h[v].cpu_ns;
		if (!rc && h[v].err) {
			snprintf(why, whylen, "bare KVM handler %u: %s", v, strerror(h[v].err));
			rc = PCB_EXIT_OSERR;
		}
	}
	if (!rc && faults != npages) {
		snprintf(why, whylen, "bare KVM: %llu faults for %llu pages", (unsigned long long)faults,
			 (unsigned long long)npages);
		rc = PCB_EXIT_SOFTWARE;
	}
	*pps = ns ? (double)npages * 1e9 / (double)ns : 0;
	*cpu_us = (double)cpu_ns / 1e3 / (double)npages;
out:;
	int64_t srv_ns = stop_servers(h, nvcpus);
	if (srv_us)
		*srv_us = srv_ns > 0 ? (double)srv_ns / 1e3 / (double)npages : 0;
	if (!rc && srv_us && srv_ns <= 0) {
		snprintf(why, whylen, "bare KVM over TCP: a server could not be reaped");
		rc = PCB_EXIT_SOFTWARE;
	}
	for (unsigned v = 0; v < PCB_FLOOR_KVM_MAX_VCPUS; v++)
		if (h[v].uffd >= 0)
			close(h[v].uffd);
	if (stop[0] >= 0)
		close(stop[0]), close(stop[1]);
	if (local != MAP_FAILED)
		munmap(local, len);
	if (region != MAP_FAILED)
		munmap(region, len);
	return rc;
}

/* pcbench's KVM or process guest, demand paging only, in a child `pcbench run`: pages/s, and
 * CPU µs per page of the vCPU and pager threads (results.cpu) and of the source process.
 * The process guest asks for demand lanes with 2-8 vCPUs, which the KVM guest's
 * --demand-replies=auto picks: both rows then run the bare harness's layout (a handler per
 * slice); auto keeps the process guest inline (docs/design.md). */
static int pcbench_rate(bool kvm, unsigned nvcpus, uint64_t per, uint64_t seed, bool same, double *pps, double *cpu_us,
			double *vcpu_us, double *src_us, struct pcb_floor_kvm_pair *r, char *why, size_t whylen)
{
	char json[] = "/tmp/pcbench-floor-kvm-XXXXXX";
	int fd = mkstemp(json);
	if (fd < 0) {
		snprintf(why, whylen, "mkstemp: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	close(fd);
	char mem[32], vc[16], ops[32], sd[32], js[sizeof(json) + 8];
	snprintf(mem, sizeof(mem), "--mem=%llu", (unsigned long long)(per * nvcpus) << PCB_PAGE_SHIFT);
	snprintf(vc, sizeof(vc), "--vcpus=%u", nvcpus);
	snprintf(ops, sizeof(ops), "--ops=%llu", (unsigned long long)per);
	snprintf(sd, sizeof(sd), "--seed=%llu", (unsigned long long)seed);
	snprintf(js, sizeof(js), "--json=%s", json);
	char *argv[20] = { "pcbench", "run", kvm ? "--guest=kvm" : "--guest=process", "--policy=demand", "--workload=seq", "--duration=0",
			   "--zero-pages=0", "--trace=off", mem, vc, ops, sd, js };
	int argc = 13;
	if (same)
		argv[argc++] = "--pin=same";
	if (!kvm && nvcpus >= 2 && nvcpus <= PCB_MAX_SLICES)
		argv[argc++] = "--demand-replies=lanes";
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_WRONLY);
		if (dn >= 0)
			dup2(dn, 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(why, whylen, "pcbench run --guest=%s %s %s failed (status %d)", kvm ? "kvm" : "process", vc, mem, st);
		unlink(json);
		return PCB_EXIT_SOFTWARE;
	}
	char err[256];
	err[0] = 0;
	struct pcb_jv *root = pcb_jv_parse_file(json, err, sizeof(err));
	unlink(json);
	double ns = 0;
	if (!root || pcb_jv_num(pcb_jv_path(root, "results.time.guest_ns"), &ns) < 0 || ns <= 0) {
		snprintf(why, whylen, "pcbench run --guest=%s: no results.time.guest_ns in its JSON %s", kvm ? "kvm" : "process", err);
		pcb_jv_free(root);
		return PCB_EXIT_SOFTWARE;
	}
	double t = 0, sum = 0;
	const char *thr[] = { "vcpus_ns", "demand_ns", "background_ns", "installer_ns" };
	*vcpu_us = 0;
	for (unsigned i = 0; i < 4; i++)
		if (pcb_jv_num(pcb_jv_get(pcb_jv_path(root, "results.cpu"), thr[i]), &t) == 0) {
			sum += t;
			if (i == 0)
				*vcpu_us = t / 1e3 / (double)(per * nvcpus);
		}
	*cpu_us = sum / 1e3 / (double)(per * nvcpus);
	*src_us = pcb_jv_num(pcb_jv_path(root, "results.cpu.source_process_ns"), &t) == 0 ? t / 1e3 / (double)(per * nvcpus) : 0;
	const char *mode = pcb_jv_str(pcb_jv_path(root, "results.pager.demand_replies"));
	snprintf(r->replies, sizeof(r->replies), "%s", mode ? mode : "");
	r->lanes = pcb_jv_num(pcb_jv_path(root, "results.pager.demand_lanes"), &t) == 0 ? (unsigned)t : 0;
	pcb_jv_free(root);
	*pps = (double)(per * nvcpus) * 1e9 / ns;
	return 0;
}

int pcb_floor_kvm(const struct pcb_floor_kvm_cfg *c, struct pcb_floor_kvm_row *rows, char *why, size_t whylen)
{
	uint64_t per = c->mem_per_vcpu >> PCB_PAGE_SHIFT;
	for (unsigned k = 0; k < c->nv; k++)
		rows[k] = (struct pcb_floor_kvm_row){ .vcpus = c->vcpus[k] };
	/* repetitions outermost, bare and pcbench back to back: paired by repetition;
	 * the KVM guest, then the process guest (vCPU threads) the same way */
	for (unsigned rep = 0; rep < c->reps; rep++)
		for (unsigned k = 0; k < c->nv; k++) {
			struct pcb_floor_kvm_row *row = &rows[k];
			row->has_same = row->vcpus == 1;
			/* the KVM guest unpinned (the target), on CPU 0 (1 vCPU), then the process guest */
			struct { struct pcb_floor_kvm_pair *r; bool kvm, same; } m[3] = {
				{ &row->kvm, true, false }, { row->has_same ? &row->same : NULL, true, true }, { &row->proc, false, false } };
			for (unsigned i = 0; i < 3; i++) {
				struct pcb_floor_kvm_pair *r = m[i].r;
				if (!r)
					continue;
				int cpu = m[i].same ? 0 : -1;
				double vcpu_us;
				int rc = bare_rate(m[i].kvm, row->vcpus, per, c->seed, cpu, &r->bare[rep], &r->bare_cpu_us[rep],
						   &r->bare_vcpu_us[rep], NULL, why, whylen);
				if (!rc)
					rc = bare_rate(m[i].kvm, row->vcpus, per, c->seed, cpu, &r->tcp[rep], &r->tcp_cpu_us[rep],
						       &vcpu_us, &r->tcp_srv_us[rep], why, whylen);
				if (!rc)
					rc = pcbench_rate(m[i].kvm, row->vcpus, per, c->seed, m[i].same, &r->pcb[rep],
							  &r->pcb_cpu_us[rep], &r->pcb_vcpu_us[rep], &r->src_cpu_us[rep], r, why, whylen);
				if (rc)
					return rc;
				r->ratio[rep] = r->bare[rep] > 0 ? r->pcb[rep] / r->bare[rep] : 0;
				r->tcp_ratio[rep] = r->tcp[rep] > 0 ? r->pcb[rep] / r->tcp[rep] : 0;
			}
			if (row->has_same)
				row->same_over_unpinned[rep] = row->kvm.bare[rep] > 0 ? row->same.pcb[rep] / row->kvm.bare[rep] : 0;
		}
	return 0;
}

static double med3(const double *v, unsigned n, double *lo, double *hi)
{
	double t[PCB_FLOOR_KVM_MAX_REPS];
	memcpy(t, v, n * sizeof(double));
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && t[j - 1] > t[j]; j--) {
			double x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	*lo = t[0], *hi = t[n - 1];
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* The target: pcbench >= the bare rate with 1 vCPU, >= 0.7 x with more. */
static double kvm_target(unsigned vcpus)
{
	return vcpus == 1 ? 1.0 : 0.7;
}

static void print_pair(const char *what, const struct pcb_floor_kvm_pair *r, unsigned reps)
{
	double bl, bh, pl, ph, rl, rh;
	double b = med3(r->bare, reps, &bl, &bh), p = med3(r->pcb, reps, &pl, &ph), q = med3(r->ratio, reps, &rl, &rh);
	double lo, hi, bc = med3(r->bare_cpu_us, reps, &lo, &hi), pc = med3(r->pcb_cpu_us, reps, &lo, &hi);
	double sc = med3(r->src_cpu_us, reps, &lo, &hi);
	double bv = med3(r->bare_vcpu_us, reps, &lo, &hi), pv = med3(r->pcb_vcpu_us, reps, &lo, &hi);
	double tl, th, t = med3(r->tcp, reps, &tl, &th), ql, qh, tq = med3(r->tcp_ratio, reps, &ql, &qh);
	double tc = med3(r->tcp_cpu_us, reps, &lo, &hi), ts = med3(r->tcp_srv_us, reps, &lo, &hi);
	printf("%s: bare %.0f [%.0f-%.0f], pcbench (%s) %.0f [%.0f-%.0f]; pcbench/bare paired %.3f [%.3f-%.3f]; CPU us/page: bare "
	       "%.1f (vCPUs %.1f), pcbench %.1f (vCPUs %.1f) + source %.1f; bare over TCP %.0f [%.0f-%.0f], pcbench/it paired "
	       "%.3f [%.3f-%.3f], CPU us/page %.1f + servers %.1f", what, b, bl, bh, r->replies, p, pl, ph, q, rl, rh, bc, bv, pc, pv, sc, t,
	       tl, th, tq, ql, qh, tc, ts);
}

bool pcb_floor_kvm_print(const struct pcb_floor_kvm_cfg *c, const struct pcb_floor_kvm_row *rows)
{
	bool met = true;
	printf("\nvCPU demand paging (%llu MiB per vCPU, every page faulted once, median [min-max] of %u, pages/s): bare = "
	       "one userfaultfd and handler thread per vCPU copying from local memory, as Linux's KVM selftest "
	       "demand_paging_test -u MISSING; bare over TCP = those handlers fetching each page from a forked server over "
	       "one TCP connection each; pcbench = --policy=demand, every page over TCP (demand lanes, a lane per "
	       "vCPU slice, with 2-8 vCPUs); KVM guest, then the process guest (vCPU threads) the same way\n", (unsigned long long)(c->mem_per_vcpu >> 20), c->reps);
	for (unsigned k = 0; k < c->nv; k++) {
		const struct pcb_floor_kvm_row *r = &rows[k];
		double lo, hi, q = med3(r->kvm.ratio, c->reps, &lo, &hi);
		printf("  %u vCPU%s ", r->vcpus, r->vcpus > 1 ? "s" : "");
		print_pair("KVM", &r->kvm, c->reps);
		printf(" (target >= %.1f)\n", kvm_target(r->vcpus));
		if (r->has_same) {
			printf("  %*s ", r->vcpus > 1 ? 7 : 6, "");
			print_pair("KVM, every thread on CPU 0", &r->same, c->reps);
			double sl, sh, s = med3(r->same_over_unpinned, c->reps, &sl, &sh);
			printf("; pcbench on CPU 0 / bare unpinned (the selftest's way) paired %.3f [%.3f-%.3f] (no target)\n", s, sl, sh);
		}
		printf("  %*s ", r->vcpus > 1 ? 7 : 6, "");
		print_pair("process", &r->proc, c->reps);
		printf(" (no target)\n");
		met = met && q >= kvm_target(r->vcpus);
	}
	return met;
}

/* key: { per_rep: [...], median, min, max } */
static void json_spread(struct pcb_json *j, const char *key, const double *v, unsigned reps)
{
	double lo, hi;
	pcb_json_obj_begin(j, key);
	pcb_json_arr_begin(j, "per_rep");
	for (unsigned x = 0; x < reps; x++)
		pcb_json_dbl(j, NULL, v[x]);
	pcb_json_arr_end(j);
	pcb_json_dbl(j, "median", med3(v, reps, &lo, &hi));
	pcb_json_dbl(j, "min", lo);
	pcb_json_dbl(j, "max", hi);
	pcb_json_obj_end(j);
}

static void json_pair(struct pcb_json *j, const struct pcb_floor_kvm_pair *r, unsigned reps)
{
	const struct { const char *k; const double *v; } s[] = { { "bare_pages_per_s", r->bare },
								 { "pcbench_pages_per_s", r->pcb },
								 { "paired_ratio", r->ratio },
								 { "bare_cpu_us_per_page", r->bare_cpu_us },
								 { "pcbench_cpu_us_per_page", r->pcb_cpu_us },
								 { "source_cpu_us_per_page", r->src_cpu_us },
								 { "bare_vcpu_cpu_us_per_page", r->bare_vcpu_us },
								 { "pcbench_vcpu_cpu_us_per_page", r->pcb_vcpu_us },
								 { "bare_tcp_pages_per_s", r->tcp },
								 { "paired_ratio_over_bare_tcp", r->tcp_ratio },
								 { "bare_tcp_cpu_us_per_page", r->tcp_cpu_us },
								 { "bare_tcp_server_cpu_us_per_page", r->tcp_srv_us } };
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		json_spread(j, s[i].k, s[i].v, reps);
	pcb_json_str(j, "pcbench_demand_replies", r->replies);   /* the last repetition's: the same configuration in each */
	pcb_json_u64(j, "pcbench_demand_lanes", r->lanes);
}

void pcb_floor_kvm_json(struct pcb_json *j, const struct pcb_floor_kvm_cfg *c, const struct pcb_floor_kvm_row *rows)
{
	pcb_json_obj_begin(j, "kvm_demand_paging");
	pcb_json_u64(j, "mem_per_vcpu", c->mem_per_vcpu);
	pcb_json_u64(j, "reps", c->reps);
	pcb_json_str(j, "bare_method", "one userfaultfd + handler thread per vCPU slice, waking UFFDIO_COPY from local memory "
		     "(Linux tools/testing/selftests/kvm/demand_paging_test.c -u MISSING), pcbench's KVM guest, workload seq; "
		     "process_guest: the same with the process guest's vCPU threads; bare_tcp: each handler fetching the page "
		     "over its own TCP connection from a forked server reading the image from its memory");
	pcb_json_arr_begin(j, "rows");
	for (unsigned k = 0; k < c->nv; k++) {
		const struct pcb_floor_kvm_row *r = &rows[k];
		pcb_json_obj_begin(j, NULL);
		pcb_json_u64(j, "vcpus", r->vcpus);
		json_pair(j, &r->kvm, c->reps);
		pcb_json_dbl(j, "target", kvm_target(r->vcpus));
		pcb_json_obj_begin(j, "process_guest");
		json_pair(j, &r->proc, c->reps);
		pcb_json_obj_end(j);
		if (r->has_same) {
			pcb_json_obj_begin(j, "same_cpu");   /* every thread on CPU 0: reported, no target */
			json_pair(j, &r->same, c->reps);
			json_spread(j, "pcbench_same_over_bare_unpinned", r->same_over_unpinned, c->reps);
			pcb_json_obj_end(j);
		}
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
}
