/* `pcbench floor`, the bulk floor without pcbench: the transport alone, one
 * install path's installs alone, pcbench's source generation alone, and the
 * bare receivers installing serially and pipelined. */
#include "floor/internal.h"

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

/* Memory the size of the pull (read from fd), every byte written, in 4 KiB
 * pages as pcbench's source image; NULL: none. */
static uint8_t *mem_build(int fd, uint64_t *bytes)
{
	if (pcb_read_full(fd, bytes, 8) < 0)
		return NULL;
	uint8_t *mem = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	madvise(mem, *bytes, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < *bytes; i += 8)
		*(uint64_t *)(mem + i) = pcb_mix64(i);
	return mem;
}

/* Serve from memory the size of the pull, as a source reads guest memory:
 * built before it says ready (one byte), then sent once, 1 MiB per write
 * straight from that memory (one copy, into the socket).  Unlike
 * serve_bulk's buffer, which stays in the CPU's cache, each page is read from
 * DRAM through its own TLB entry. */
static void serve_bulk_mem(int fd)
{
	uint64_t bytes;
	uint8_t *mem = mem_build(fd, &bytes), ready = 1;
	if (!mem)
		return;
	for (size_t off = 0; off < bytes && (off || pcb_write_full(fd, &ready, 1) == 0);) {
		size_t n = bytes - off < (1u << 20) ? bytes - off : (1u << 20);
		if (pcb_write_full(fd, mem + off, n) < 0)
			break;
		off += n;
	}
	munmap(mem, bytes);
}

/* serve_bulk_mem sending as pcbench's source does by default
 * (--source-send=splice): each 1 MiB vmspliced into a pipe (by reference, no
 * copy in the server) and spliced to the socket. */
static void serve_bulk_mem_splice(int fd)
{
	uint64_t bytes;
	uint8_t *mem = mem_build(fd, &bytes), ready = 1;
	int p[2];
	if (!mem || pipe2(p, O_CLOEXEC) < 0)
		goto out;
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	fcntl(p[1], F_SETFL, O_NONBLOCK);   /* a full pipe is drained, then filled again */
	if (pcb_write_full(fd, &ready, 1) < 0)
		goto close;
	for (size_t off = 0, fill = 0; off < bytes || fill;) {
		if (off < bytes) {
			struct iovec v = { mem + off, bytes - off < (1u << 20) ? bytes - off : (1u << 20) };
			ssize_t r = vmsplice(p[1], &v, 1, SPLICE_F_NONBLOCK);
			if (r > 0) {
				off += (size_t)r;
				fill += (size_t)r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0 || errno != EAGAIN || !fill)
				break;
		}
		ssize_t w = splice(p[0], NULL, fd, NULL, fill, SPLICE_F_MOVE);
		if (w <= 0 && !(w < 0 && errno == EINTR))
			break;
		fill -= w > 0 ? (size_t)w : 0;
	}
close:
	close(p[0]);
	close(p[1]);
out:
	if (mem)
		munmap(mem, bytes);
}

/* ---- bulk: transport alone, and bare batched COPY -------------------------------- */

/* A bulk page server on send_cpu and a connection to it: the socket, or -exitcode. */
static int bulk_connect(int send_cpu, enum floor_bulk_src from, pid_t *srv, char *why, size_t whylen)
{
	uint16_t port;
	int lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
	if (lfd < 0) {
		snprintf(why, whylen, "listen: %s", strerror(errno));
		return -PCB_EXIT_OSERR;
	}
	*srv = floor_fork_server(-1, send_cpu, lfd, from == FLOOR_SRC_MEM ? serve_bulk_mem
					      : from == FLOOR_SRC_MEM_SPLICE ? serve_bulk_mem_splice : serve_bulk);
	close(lfd);
	int s = pcb_connect_tcp("127.0.0.1", port, 5000);
	if (s < 0) {
		snprintf(why, whylen, "connect: %s", strerror(errno));
		floor_reap(*srv);
		return -PCB_EXIT_OSERR;
	}
	return s;
}

int floor_run_bulk_bare(bool install, enum floor_bulk_src from, int recv_cpu, int send_cpu, uint64_t bytes, double *gbps,
			char *why, size_t whylen)
{
	pid_t srv;
	bool from_mem = from != FLOOR_SRC_BUFFER;
	int s = bulk_connect(send_cpu, from, &srv, why, whylen);
	if (s < 0)
		return -s;
	pcb_pin_self(recv_cpu);
	uint64_t npages = bytes >> PCB_PAGE_SHIFT;
	uint8_t *region = NULL;
	int uffd = -1;
	if (install) {
		uffd = floor_bare_uffd(&region, npages, why, whylen);
		if (uffd < 0) {
			close(s);
			floor_reap(srv);
			return pcb_exit_for_errno(-uffd);
		}
	}
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	uint8_t *buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int rc = 0;
	uint64_t t0 = pcb_now_ns();
	uint8_t ready;
	if (buf == MAP_FAILED || pcb_write_full(s, &bytes, 8) < 0 || (from_mem && pcb_read_full(s, &ready, 1) < 0)) {
		snprintf(why, whylen, "bulk: %s", strerror(errno));
		rc = PCB_EXIT_OSERR;
	}
	if (from_mem)
		t0 = pcb_now_ns();   /* the server's memory is built: time the transfer alone */
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
	floor_reap(srv);
	return rc;
}

/* Install alone, no network: batched installs of npages from data already in
 * memory into a fresh registered region, the way each path does it (its
 * `bare` hook, install/):
 *   copy      UFFDIO_COPY from one hot 128-page buffer;
 *   move      a 2 MiB staging chunk (fresh memory after each MOVE took its
 *             pages), written one word per page, UFFDIO_MOVE;
 *   continue  the data written into the page cache through the pager's own
 *             mapping of the memfd, UFFDIO_CONTINUE.
 * The ceiling any receiver can reach with that path on this machine. */
int floor_run_install_only(const char *install, int cpu, uint64_t npages, double *gbps, char *why, size_t whylen)
{
	struct pcb_installer in;
	const struct pcb_install_ops *ops = pcb_install_find(install, false);
	int rc = pcb_install_map(&in, ops, PCB_MAX_RUN_PAGES, npages, why, whylen);
	if (rc) {
		pcb_install_unmap(&in);
		return rc;
	}
	struct pcb_uffd_info ui;
	int uffd = pcb_uffd_open(ops->uffd_features, &ui, why, whylen);
	if (uffd < 0) {
		pcb_install_unmap(&in);
		return pcb_exit_for_errno(-uffd);
	}
	int r = pcb_uffd_register(uffd, in.region, in.len, ops->register_mode, &ui);
	if (r < 0) {
		snprintf(why, whylen, "UFFDIO_REGISTER: %s", strerror(-r));
		close(uffd);
		pcb_install_unmap(&in);
		return pcb_exit_for_errno(-r);
	}
	in.uffd = uffd;
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	uint8_t *buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		snprintf(why, whylen, "mmap: %s", strerror(errno));
		close(uffd);
		pcb_install_unmap(&in);
		return PCB_EXIT_OSERR;
	}
	for (size_t i = 0; i < chunk; i += 8)
		*(uint64_t *)(buf + i) = pcb_mix64(i);
	pcb_pin_self(cpu);
	uint64_t t0 = pcb_now_ns();
	uint64_t step = ops->default_batch;   /* copy, continue: a RUN frame; move: a 2 MiB chunk */
	for (uint64_t pg = 0; !rc && pg < npages; pg += step) {
		uint64_t n = npages - pg < step ? npages - pg : step;
		int e = ops->bare(&in, pg, n, buf);
		if (e < 0) {
			snprintf(why, whylen, "install-only %s: %s", ops->name, strerror(-e));
			rc = PCB_EXIT_OSERR;
		}
	}
	uint64_t dt = pcb_now_ns() - t0;
	floor_unpin_self();
	*gbps = dt ? (double)(npages << PCB_PAGE_SHIFT) / (double)dt : 0;
	munmap(buf, chunk);
	close(uffd);
	pcb_install_unmap(&in);
	return rc;
}

/* pcbench's source synthesises every page from the seed (a real source
 * would read guest memory): its page generation alone, 128 pages at a
 * time into one buffer, on cpu.  The bare transport's server sends a
 * prepared buffer instead, so on one CPU this is a cost only pcbench pays. */
int floor_run_source_gen(int cpu, uint64_t seed, uint64_t npages, double *gbps, char *why, size_t whylen)
{
	struct pcb_image im;
	pcb_image_init(&im, seed, npages, 0.0);
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	uint8_t *buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		snprintf(why, whylen, "mmap: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	pcb_pin_self(cpu);
	uint64_t t0 = pcb_now_ns(), sum = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		pcb_image_fill(&im, pg, buf + ((pg % PCB_MAX_RUN_PAGES) << PCB_PAGE_SHIFT));
		sum += buf[(pg % PCB_MAX_RUN_PAGES) << PCB_PAGE_SHIFT];
	}
	uint64_t dt = pcb_now_ns() - t0;
	floor_unpin_self();
	*gbps = dt && sum != 1 ? (double)(npages << PCB_PAGE_SHIFT) / (double)dt : 0;
	munmap(buf, chunk);
	return 0;
}

/* Bare receiver with receive and install pipelined: this thread receives
 * 128-page chunks into a ring of pre-touched slots, an installer thread
 * (inst_cpu, -1 = unpinned) installs each with one UFFDIO_COPY. */
#define PIPE_SLOTS 4
struct pipe_ring {
	int uffd;
	uint8_t *region, *slots;
	uint64_t len[PIPE_SLOTS], off[PIPE_SLOTS];
	uint64_t head, tail;
	bool done;
	int err, cpu;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *pipe_installer(void *arg)
{
	struct pipe_ring *q = arg;
	if (q->cpu >= 0)
		pcb_pin_self(q->cpu);
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (q->tail == q->head && !q->done)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->tail == q->head) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		unsigned k = (unsigned)(q->tail % PIPE_SLOTS);
		pthread_mutex_unlock(&q->lock);
		struct uffdio_copy c = { .dst = (uintptr_t)q->region + q->off[k], .src = (uintptr_t)q->slots + k * chunk,
					 .len = q->len[k], .mode = UFFDIO_COPY_MODE_DONTWAKE };
		if (ioctl(q->uffd, UFFDIO_COPY, &c) < 0 && !q->err)
			q->err = errno;
		pthread_mutex_lock(&q->lock);
		q->tail++;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
	}
}

int floor_run_bulk_pipelined(enum floor_bulk_src from, int recv_cpu, int send_cpu, int inst_cpu, uint64_t bytes,
			     double *gbps, char *why, size_t whylen)
{
	pid_t srv;
	int s = bulk_connect(send_cpu, from, &srv, why, whylen);
	if (s < 0)
		return -s;
	uint64_t npages = bytes >> PCB_PAGE_SHIFT;
	size_t chunk = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	struct pipe_ring q = { .cpu = inst_cpu };
	q.uffd = floor_bare_uffd(&q.region, npages, why, whylen);
	if (q.uffd < 0) {
		close(s);
		floor_reap(srv);
		return pcb_exit_for_errno(-q.uffd);
	}
	q.slots = mmap(NULL, chunk * PIPE_SLOTS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int rc = 0;
	if (q.slots == MAP_FAILED) {
		snprintf(why, whylen, "mmap: %s", strerror(errno));
		q.slots = NULL;
		rc = PCB_EXIT_OSERR;
	}
	pthread_mutex_init(&q.lock, NULL);
	pthread_cond_init(&q.cond, NULL);
	pthread_t th;
	bool started = !rc && pthread_create(&th, NULL, pipe_installer, &q) == 0;
	if (!rc && !started) {
		snprintf(why, whylen, "pthread_create failed");
		rc = PCB_EXIT_OSERR;
	}
	pcb_pin_self(recv_cpu);
	uint64_t t0 = pcb_now_ns();
	uint8_t ready;
	if (!rc && (pcb_write_full(s, &bytes, 8) < 0 || (from != FLOOR_SRC_BUFFER && pcb_read_full(s, &ready, 1) < 0))) {
		snprintf(why, whylen, "bulk: %s", strerror(errno));
		rc = PCB_EXIT_OSERR;
	}
	if (from != FLOOR_SRC_BUFFER)
		t0 = pcb_now_ns();   /* the server's memory is built: time the transfer alone */
	for (uint64_t done = 0; !rc && done < bytes;) {
		pthread_mutex_lock(&q.lock);
		while (q.head - q.tail >= PIPE_SLOTS)
			pthread_cond_wait(&q.cond, &q.lock);
		pthread_mutex_unlock(&q.lock);
		unsigned k = (unsigned)(q.head % PIPE_SLOTS);
		size_t n = bytes - done < chunk ? bytes - done : chunk;
		if (pcb_read_full(s, q.slots + k * chunk, n) < 0) {
			snprintf(why, whylen, "bulk receive: %s", strerror(errno));
			rc = PCB_EXIT_OSERR;
			break;
		}
		q.len[k] = n;
		q.off[k] = done;
		pthread_mutex_lock(&q.lock);
		q.head++;
		pthread_cond_broadcast(&q.cond);
		pthread_mutex_unlock(&q.lock);
		done += n;
	}
	pthread_mutex_lock(&q.lock);
	q.done = true;
	pthread_cond_broadcast(&q.cond);
	pthread_mutex_unlock(&q.lock);
	if (started)
		pthread_join(th, NULL);
	uint64_t dt = pcb_now_ns() - t0;
	floor_unpin_self();
	if (!rc && q.err) {
		snprintf(why, whylen, "bulk pipelined UFFDIO_COPY: %s", strerror(q.err));
		rc = PCB_EXIT_OSERR;
	}
	*gbps = dt ? (double)bytes / (double)dt : 0;
	if (q.slots)
		munmap(q.slots, chunk * PIPE_SLOTS);
	munmap(q.region, npages << PCB_PAGE_SHIFT);
	close(q.uffd);
	close(s);
	floor_reap(srv);
	return rc;
}
