/* uffd_victim: a small, self-contained userfaultfd program to trace.
 *
 * It maps PAGES anonymous pages, registers them with userfaultfd (missing
 * mode) and starts one handler thread that, for every fault, waits DELAY
 * (busy-wait by default, or nanosleep) and then resolves it with UFFDIO_COPY.
 * THREADS toucher threads then write one byte into each page exactly once,
 * timing every access, and the program prints one line of key=value results:
 *
 *   victim pid=.. pages=.. threads=.. faults=.. eexist=.. delay_ns=..
 *          median_ns=.. p10_ns=.. p90_ns=.. p99_ns=.. min_ns=.. max_ns=.. mean_ns=..
 *
 * faults is the number of fault messages the handler read; the latencies
 * are those seen by the touching threads (clock_gettime around the store).
 * It fires the pcbench:* USDT probes (pager/probes.h) like the real pager,
 * so the USDT side of the tracer can be tested against it.
 *
 * With --wait FIFO it prints "ready pid=N" and waits until something is
 * written to FIFO before touching, so a tracer can attach first.
 *
 * With --chunks K (and --wait FIFO, one toucher) it touches the pages in K
 * chunks: before each it reads one byte from FIFO, after each it prints
 * "chunk I median_ns=N p99_ns=M" (so a benchmark can switch a tracer on or off
 * between chunks of one process and compare them pairwise).
 *
 * With --background US a third kind of thread installs pages on its own,
 * one every US microseconds (or as fast as nanosleep allows), walking all touchers' ranges at once (page k
 * of every range, then k+1, ...) as a post-copy pager's background pull
 * does.  A toucher may then block on a page whose message is still queued
 * when the background install arrives: the kernel wakes it and drops the
 * message, so faults= (messages read) is lower than the faults that
 * blocked.  It prints bg_installed= and bg_eexist= too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pager/probes.h"

#define PAGE 4096ul

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct {
	unsigned long pages;
	unsigned threads;
	uint64_t delay_ns;
	int sleep_delay;
	int handler_cpu, toucher_cpu;
	const char *wait_path;
	double bg_us;           /* < 0: no background installer */
	unsigned long chunks;   /* 0: one pass */
} opt = { .pages = 1000, .threads = 1, .handler_cpu = -1, .toucher_cpu = -1, .bg_us = -1 };

static char *region;
static int uffd, stopfd;
static uint64_t *lat;                   /* per page, by index */
static unsigned long nfaults, neexist;
static char *src_page;
static unsigned long bg_installed, bg_eexist;
static volatile int touch_done;

static void die(const char *what)
{
	fprintf(stderr, "uffd_victim: %s: %s\n", what, strerror(errno));
	exit(errno == EPERM || errno == EACCES ? 77 : 1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

static void *handler(void *arg)
{
	struct uffd_msg msg;
	struct pollfd pfd[2] = { { .fd = uffd, .events = POLLIN }, { .fd = stopfd, .events = POLLIN } };

	(void)arg;
	pin(opt.handler_cpu);
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pfd[1].revents)
			break;
		ssize_t n = read(uffd, &msg, sizeof(msg));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != sizeof(msg))
			die("read uffd");
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t t0 = now_ns();
		uint64_t addr = msg.arg.pagefault.address & ~(PAGE - 1);
		uint64_t page = (addr - (uint64_t)(uintptr_t)region) / PAGE;
		uint32_t tid = msg.arg.pagefault.feat.ptid;

		nfaults++;
		PCB_PROBE_FAULT(msg.arg.pagefault.address, tid, page);
		PCB_PROBE_REQUEST(page, 0u, 1u);
		if (opt.delay_ns) {
			if (opt.sleep_delay) {
				struct timespec ts = { (time_t)(opt.delay_ns / 1000000000ull),
						       (long)(opt.delay_ns % 1000000000ull) };
				while (nanosleep(&ts, &ts) && errno == EINTR)
					;
			} else {
				while (now_ns() - t0 < opt.delay_ns)
					;
			}
		}
		PCB_PROBE_RECEIVED(page, 0u, 0u);
		struct uffdio_copy c = { .dst = addr, .src = (uint64_t)(uintptr_t)src_page, .len = PAGE };
		int res = 0;
		if (ioctl(uffd, UFFDIO_COPY, &c)) {
			res = -errno;
			if (errno != EEXIST)
				die("UFFDIO_COPY");
			neexist++;
		}
		PCB_PROBE_INSTALLED(page, 0u, res);
	}
	return NULL;
}

struct toucher_arg {
	unsigned long first, n;
};

static struct toucher_arg *ta;

static void *background(void *arg)
{
	unsigned long maxn = 0;

	(void)arg;              /* not pinned: it runs wherever there is room */
	for (unsigned i = 0; i < opt.threads; i++)
		if (ta[i].n > maxn)
			maxn = ta[i].n;
	for (unsigned long k = 0; k < maxn && !touch_done; k++) {
		for (unsigned i = 0; i < opt.threads && !touch_done; i++) {
			if (k >= ta[i].n)
				continue;
			uint64_t t0 = now_ns();
			struct uffdio_copy c = { .dst = (uint64_t)(uintptr_t)(region + (ta[i].first + k) * PAGE),
						 .src = (uint64_t)(uintptr_t)src_page, .len = PAGE };
			if (ioctl(uffd, UFFDIO_COPY, &c)) {
				if (errno != EEXIST)
					die("UFFDIO_COPY (background)");
				__atomic_fetch_add(&bg_eexist, 1, __ATOMIC_RELAXED);
			} else {
				__atomic_fetch_add(&bg_installed, 1, __ATOMIC_RELAXED);
			}
			/* Sleep, not spin: it must leave the CPU to the others. */
			uint64_t d = (uint64_t)(opt.bg_us * 1000.0), el = now_ns() - t0;
			if (el < d) {
				struct timespec ts = { (time_t)((d - el) / 1000000000ull), (long)((d - el) % 1000000000ull) };
				while (nanosleep(&ts, &ts) && errno == EINTR)
					;
			}
		}
	}
	return NULL;
}

static void *toucher(void *arg)
{
	struct toucher_arg *a = arg;

	pin(opt.toucher_cpu);
	for (unsigned long i = a->first; i < a->first + a->n; i++) {
		volatile char *p = region + i * PAGE;
		uint64_t t0 = now_ns();
		*p = 1;
		lat[i] = now_ns() - t0;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t pct(const uint64_t *v, unsigned long n, double p)
{
	unsigned long k = (unsigned long)(p / 100.0 * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: uffd_victim [-n PAGES] [-t THREADS] [-d DELAY_US] [--sleep]\n"
		"                   [--handler-cpu N] [--toucher-cpu N] [--wait FIFO]\n"
		"                   [--background US]\n");
	exit(code);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pages", required_argument, 0, 'n' },
		{ "threads", required_argument, 0, 't' },
		{ "delay-us", required_argument, 0, 'd' },
		{ "sleep", no_argument, 0, 's' },
		{ "handler-cpu", required_argument, 0, 'H' },
		{ "toucher-cpu", required_argument, 0, 'T' },
		{ "wait", required_argument, 0, 'w' },
		{ "background", required_argument, 0, 'b' },
		{ "chunks", required_argument, 0, 'k' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "n:t:d:H:T:w:b:k:sh", lo, NULL)) != -1) {
		switch (c) {
		case 'n': opt.pages = strtoul(optarg, NULL, 0); break;
		case 't': opt.threads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'd': opt.delay_ns = (uint64_t)(strtod(optarg, NULL) * 1000.0); break;
		case 's': opt.sleep_delay = 1; break;
		case 'H': opt.handler_cpu = atoi(optarg); break;
		case 'T': opt.toucher_cpu = atoi(optarg); break;
		case 'w': opt.wait_path = optarg; break;
		case 'k': opt.chunks = strtoul(optarg, NULL, 0); break;
		case 'b': opt.bg_us = strtod(optarg, NULL); if (opt.bg_us < 0) usage(64); break;
		case 'h': usage(0); break;
		default: usage(64);
		}
	}
	if (!opt.pages || !opt.threads || opt.threads > opt.pages)
		usage(64);
	if (opt.chunks && (!opt.wait_path || opt.threads != 1 || opt.chunks > opt.pages || opt.bg_us >= 0))
		usage(64);
}

/* uffd (the syscall, else /dev/userfaultfd) and the region registered in missing mode */
static void setup_uffd_region(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID };
	struct uffdio_register reg;

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0) {
		int fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die("userfaultfd");
		uffd = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(fd);
		if (uffd < 0)
			die("USERFAULTFD_IOC_NEW");
	}
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	region = mmap(NULL, opt.pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap");
	madvise(region, opt.pages * PAGE, MADV_NOHUGEPAGE);
	reg.range.start = (uint64_t)(uintptr_t)region;
	reg.range.len = opt.pages * PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
}

/* --chunks: one toucher per chunk, each started by a byte from the FIFO */
static void touch_in_chunks(void)
{
	int fd;
	char b;
	uint64_t *tmp = calloc(opt.pages, sizeof(*tmp));

	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	fd = open(opt.wait_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !tmp)
		die(opt.wait_path);
	for (unsigned long k = 0; k < opt.chunks; k++) {
		struct toucher_arg a = { .first = k * opt.pages / opt.chunks };
		pthread_t th;

		a.n = (k + 1) * opt.pages / opt.chunks - a.first;
		if (read(fd, &b, 1) != 1)
			die("read fifo");
		if ((errno = pthread_create(&th, NULL, toucher, &a)))
			die("pthread_create");
		pthread_join(th, NULL);
		memcpy(tmp, lat + a.first, a.n * sizeof(*tmp));
		qsort(tmp, a.n, sizeof(*tmp), cmp_u64);
		printf("chunk %lu median_ns=%llu p99_ns=%llu\n", k, (unsigned long long)pct(tmp, a.n, 50),
		       (unsigned long long)pct(tmp, a.n, 99));
		fflush(stdout);
	}
	close(fd);
	free(tmp);
}

/* --wait: until something is written to the FIFO */
static void wait_fifo(void)
{
	char b;
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);
	int fd = open(opt.wait_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(opt.wait_path);
	if (read(fd, &b, 1) < 0)
		die("read fifo");
	close(fd);
}

/* the touchers (none after --chunks) over equal shares, and the background installer */
static void touch_all(pthread_t *tt)
{
	pthread_t bt;

	for (unsigned i = 0; i < (opt.chunks ? 0 : opt.threads); i++) {
		unsigned long per = opt.pages / opt.threads, extra = opt.pages % opt.threads;
		ta[i].first = i * per + (i < extra ? i : extra);
		ta[i].n = per + (i < extra);
	}
	if (opt.bg_us >= 0 && (errno = pthread_create(&bt, NULL, background, NULL)))
		die("pthread_create");
	for (unsigned i = 0; i < (opt.chunks ? 0 : opt.threads); i++)
		if ((errno = pthread_create(&tt[i], NULL, toucher, &ta[i])))
			die("pthread_create");
	for (unsigned i = 0; i < (opt.chunks ? 0 : opt.threads); i++)
		pthread_join(tt[i], NULL);
	touch_done = 1;
	if (opt.bg_us >= 0)
		pthread_join(bt, NULL);
}

static void print_summary(void)
{
	uint64_t sum = 0;
	for (unsigned long i = 0; i < opt.pages; i++)
		sum += lat[i];
	qsort(lat, opt.pages, sizeof(*lat), cmp_u64);
	printf("victim pid=%d pages=%lu threads=%u faults=%lu eexist=%lu bg_installed=%lu bg_eexist=%lu "
	       "delay_ns=%llu mode=%s "
	       "median_ns=%llu p10_ns=%llu p90_ns=%llu p99_ns=%llu min_ns=%llu max_ns=%llu mean_ns=%llu\n",
	       (int)getpid(), opt.pages, opt.threads, nfaults, neexist, bg_installed, bg_eexist,
	       (unsigned long long)opt.delay_ns, opt.sleep_delay ? "sleep" : "busy",
	       (unsigned long long)pct(lat, opt.pages, 50), (unsigned long long)pct(lat, opt.pages, 10),
	       (unsigned long long)pct(lat, opt.pages, 90), (unsigned long long)pct(lat, opt.pages, 99),
	       (unsigned long long)lat[0], (unsigned long long)lat[opt.pages - 1],
	       (unsigned long long)(sum / opt.pages));
}

int main(int argc, char **argv)
{
	pthread_t ht, *tt;

	parse_args(argc, argv);
	setup_uffd_region();

	/* Everything the touchers use outside the region is faulted in now. */
	lat = calloc(opt.pages, sizeof(*lat));
	src_page = aligned_alloc(PAGE, PAGE);
	tt = calloc(opt.threads, sizeof(*tt));
	ta = calloc(opt.threads, sizeof(*ta));
	if (!lat || !src_page || !tt || !ta)
		die("calloc");
	memset(lat, 0, opt.pages * sizeof(*lat));
	memset(src_page, 0x5a, PAGE);
	stopfd = eventfd(0, EFD_CLOEXEC);
	if (stopfd < 0)
		die("eventfd");
	if ((errno = pthread_create(&ht, NULL, handler, NULL)))
		die("pthread_create");

	if (opt.chunks)
		touch_in_chunks();
	else if (opt.wait_path)
		wait_fifo();
	touch_all(tt);
	uint64_t one = 1;
	if (write(stopfd, &one, sizeof(one)) != sizeof(one))
		die("eventfd write");
	pthread_join(ht, NULL);

	print_summary();
	free(lat);
	free(tt);
	free(ta);
	return 0;
}
