/* uffd_cases: an independent userfaultfd program (nothing of pcbench's pager,
 * no probes) in the layouts pctrace must count exactly.  Two toucher threads
 * by default; the handler reads one message at a time, waits DELAY (nanosleep)
 * and resolves the page with UFFDIO_COPY.
 *
 *   uffd_cases -m MODE [-n PAGES] [-t THREADS] [-d DELAY_US] [--no-tid] [--readv] [--wait FIFO]
 *
 * MODE:
 *   missing    anonymous memory, MISSING mode, each page touched once
 *   pagecache  a shared memfd whose pages are all in the page cache, registered
 *              MISSING: touching them raises no userfault (truth 0); each touch
 *              is followed by a 1 ms sleep
 *   syscall    the faults are raised inside read(/dev/zero) into registered memory
 *   readv      the same inside readv(/dev/zero) into two halves of the page
 *   register   6 ranges, each registered and touched at once (PAGES each)
 *   external   the handler is another process: the userfaultfd goes to it over
 *              SCM_RIGHTS and this process closes its own copy
 *
 * With --wait FIFO it prints "ready pid=N" and creates nothing until a line
 * is written to FIFO: a tracer attached then sees every registration.
 * --no-tid: no UFFD_FEATURE_THREAD_ID (messages carry no thread id).
 * --readv: the handler reads its messages with readv() (two iovecs: an
 * empty one, then the message) instead of read().
 *
 * Prints: "cases mode=M pid=P faults=F touches=T median_ns=X p90_ns=Y", where
 * faults is the number of fault messages the handler read (the truth) and the
 * percentiles are of the touching threads' own clock around each access.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define NRANGES 6

static struct {
	const char *mode, *wait_path;
	unsigned long pages;
	unsigned threads;
	long delay_us;
	int no_tid, readv_handler;
} opt = { .mode = "missing", .pages = 1000, .threads = 2, .delay_us = 300 };

static uint64_t *lat;           /* per touch */
static unsigned long ntouch;
static char *cur_region;        /* the range being touched */
static int zero_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "uffd_cases: %s: %s\n", what, strerror(errno));
	exit(errno == EPERM || errno == ENOSYS ? 77 : 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000l, ns % 1000000000l };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int new_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = opt.no_tid ? 0 : UFFD_FEATURE_THREAD_ID };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api))
		die("UFFDIO_API");
	return fd;
}

static void do_register(int uffd, char *p, unsigned long len)
{
	struct uffdio_register r = { .range = { (unsigned long)p, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (ioctl(uffd, UFFDIO_REGISTER, &r))
		die("UFFDIO_REGISTER");
}

/* Handler: one message at a time; returns how many fault messages it read
 * once stop_fd becomes readable. */
static unsigned long handle(int uffd, int stop_fd)
{
	static char src[PAGE] __attribute__((aligned(4096)));
	unsigned long n = 0;
	struct uffd_msg m;

	memset(src, 'x', sizeof(src));
	for (;;) {
		struct pollfd p[2] = { { .fd = uffd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (p[0].revents & POLLIN) {
			struct iovec iov[2] = { { &m, 0 }, { &m, sizeof(m) } };

			if ((opt.readv_handler ? readv(uffd, iov, 2) : read(uffd, &m, sizeof(m))) != sizeof(m)) {
				if (errno == EAGAIN)
					continue;
				die("read uffd");
			}
			if (m.event != UFFD_EVENT_PAGEFAULT)
				continue;
			n++;
			if (opt.delay_us)
				sleep_ns(opt.delay_us * 1000);
			struct uffdio_copy c = { .dst = m.arg.pagefault.address & ~(PAGE - 1),
						 .src = (unsigned long)src, .len = PAGE };
			if (ioctl(uffd, UFFDIO_COPY, &c) && errno != EEXIST)
				die("UFFDIO_COPY");
		} else if (p[1].revents) {
			return n;
		}
	}
}

struct handler_arg {
	int uffd, stop_fd;
	unsigned long faults;
};

static void *handler_main(void *a)
{
	struct handler_arg *h = a;

	h->faults = handle(h->uffd, h->stop_fd);
	return NULL;
}

/* Toucher k of THREADS: pages k, k+THREADS, ... of cur_region. */
static void *toucher_main(void *a)
{
	unsigned long k = (unsigned long)a, base = __atomic_fetch_add(&ntouch, 0, __ATOMIC_RELAXED);
	int syscall_mode = !strcmp(opt.mode, "syscall"), pagecache = !strcmp(opt.mode, "pagecache");
	int readv_mode = !strcmp(opt.mode, "readv");

	for (unsigned long i = k; i < opt.pages; i += opt.threads) {
		volatile char *p = cur_region + i * PAGE;
		uint64_t t0 = now_ns();

		if (syscall_mode) {
			if (read(zero_fd, (char *)p, PAGE) != (ssize_t)PAGE)
				die("read /dev/zero");
		} else if (readv_mode) {
			struct iovec iov[2] = { { (char *)p, PAGE / 2 }, { (char *)p + PAGE / 2, PAGE / 2 } };

			if (readv(zero_fd, iov, 2) != (ssize_t)PAGE)
				die("readv /dev/zero");
		} else {
			*p = 1;
		}
		lat[base + i] = now_ns() - t0;
		if (pagecache)
			sleep_ns(1000000);
	}
	return NULL;
}

static void touch_all(char *region)
{
	pthread_t th[64];

	cur_region = region;
	for (unsigned i = 0; i < opt.threads; i++)
		if (pthread_create(&th[i], NULL, toucher_main, (void *)(unsigned long)i))
			die("pthread_create");
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_join(th[i], NULL);
	ntouch += opt.pages;
}

static char *map_anon(unsigned long len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/* A shared memfd whose pages are all in the page cache. */
static char *map_cached_shmem(unsigned long len)
{
	static char buf[PAGE];
	int fd = memfd_create("uffd_cases", MFD_CLOEXEC);
	char *p;

	if (fd < 0 || ftruncate(fd, (off_t)len))
		die("memfd");
	memset(buf, 'c', sizeof(buf));
	for (unsigned long off = 0; off < len; off += PAGE)
		if (pwrite(fd, buf, PAGE, (off_t)off) != (ssize_t)PAGE)
			die("pwrite memfd");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap memfd");
	close(fd);
	return p;
}

static void send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, b = 'u';
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) != 1)
		die("sendmsg");
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))], b;
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1 || !(c = CMSG_FIRSTHDR(&mh)) || c->cmsg_type != SCM_RIGHTS)
		die("recvmsg");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* external: a child process handles the faults; the count comes back on sock. */
static unsigned long run_external(void)
{
	int sv[2], uffd;
	unsigned long faults = 0;
	char *region;
	pid_t child;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		die("socketpair");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(sv[0]);
		uffd = recv_fd(sv[1]);
		faults = handle(uffd, sv[1]);   /* the parent's "done" byte stops it */
		if (read(sv[1], &(char){ 0 }, 1) < 0 || write(sv[1], &faults, sizeof(faults)) != sizeof(faults))
			die("report");
		_exit(0);
	}
	close(sv[1]);
	region = map_anon(opt.pages * PAGE);
	uffd = new_uffd();
	do_register(uffd, region, opt.pages * PAGE);
	send_fd(sv[0], uffd);
	close(uffd);
	touch_all(region);
	if (write(sv[0], "d", 1) != 1 || read(sv[0], &faults, sizeof(faults)) != sizeof(faults))
		die("handler report");
	waitpid(child, NULL, 0);
	return faults;
}

static unsigned long run_local(void)
{
	int stop[2], nr = !strcmp(opt.mode, "register") ? NRANGES : 1;
	struct handler_arg h = { 0 };
	pthread_t hth;

	if (pipe2(stop, O_CLOEXEC))
		die("pipe");
	h.uffd = new_uffd();
	h.stop_fd = stop[0];
	if (pthread_create(&hth, NULL, handler_main, &h))
		die("pthread_create");
	for (int r = 0; r < nr; r++) {
		unsigned long len = opt.pages * PAGE;
		char *region = !strcmp(opt.mode, "pagecache") ? map_cached_shmem(len) : map_anon(len);

		do_register(h.uffd, region, len);
		touch_all(region);
	}
	if (write(stop[1], "s", 1) != 1)
		die("stop");
	pthread_join(hth, NULL);
	return h.faults;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned long faults;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-tid"))
			opt.no_tid = 1;
		else if (!strcmp(a, "--readv"))
			opt.readv_handler = 1;
		else if (v && !strcmp(a, "-m"))
			opt.mode = v, i++;
		else if (v && !strcmp(a, "-n"))
			opt.pages = strtoul(v, NULL, 0), i++;
		else if (v && !strcmp(a, "-t"))
			opt.threads = (unsigned)strtoul(v, NULL, 0), i++;
		else if (v && !strcmp(a, "-d"))
			opt.delay_us = strtol(v, NULL, 0), i++;
		else if (v && !strcmp(a, "--wait"))
			opt.wait_path = v, i++;
		else {
			fprintf(stderr, "uffd_cases: bad argument '%s'\n", a);
			return 64;
		}
	}
	if (!opt.pages || !opt.threads || opt.threads > 64 || opt.delay_us < 0 ||
	    !strstr(" missing pagecache syscall readv register external ", opt.mode)) {
		fprintf(stderr, "uffd_cases: bad options\n");
		return 64;
	}
	lat = calloc(opt.pages * NRANGES, sizeof(*lat));
	zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (!lat || zero_fd < 0)
		die("setup");
	if (opt.wait_path) {
		char line[16];
		FILE *f;

		printf("ready pid=%d\n", (int)getpid());
		fflush(stdout);
		if (!(f = fopen(opt.wait_path, "r")) || !fgets(line, sizeof(line), f))
			die("wait fifo");
		fclose(f);
	}
	faults = !strcmp(opt.mode, "external") ? run_external() : run_local();
	qsort(lat, ntouch, sizeof(*lat), cmp_u64);
	printf("cases mode=%s pid=%d faults=%lu touches=%lu median_ns=%llu p90_ns=%llu\n", opt.mode, (int)getpid(),
	       faults, ntouch, (unsigned long long)lat[ntouch / 2], (unsigned long long)lat[ntouch * 9 / 10]);
	return 0;
}
