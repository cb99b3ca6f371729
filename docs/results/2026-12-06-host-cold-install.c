/* Batched UFFDIO_COPY into fresh memory, no pager, no network: the cost per
 * page of installing SIZE MiB (128 pages per ioctl from one hot buffer, as
 * `pcbench floor`'s install row), optionally while a second thread of the same
 * process reads installed pages (READER 1: a hot 4 MiB; 2: anywhere in what
 * is installed so far).  Used by 2026-12-06-host-cold-memory.md to show that
 * the cost depends on how long ago the memory was freed, not on the reader.
 *
 *   cc -std=gnu11 -O2 -Wall -Wextra -pthread -o host-cold-install 2026-12-06-host-cold-install.c
 *   ./host-cold-install SIZE_MIB READER      (root, or vm.unprivileged_userfaultfd=1)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RUN 128   /* pages per UFFDIO_COPY */

static uint8_t *region;
static atomic_size_t installed;
static atomic_int stop;
static int reader_mode;
static unsigned long reads;

static uint64_t now(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void *reader(void *arg)
{
	uint64_t x = 88172645463325252ull, sum = 0;
	(void)arg;
	pin(1);
	while (!atomic_load(&stop)) {
		size_t lim = atomic_load(&installed);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t pg = reader_mode == 1 ? x % 1024 : x % lim;
		sum += region[pg << 12 | ((x >> 40) & 4095)];
		reads++;
	}
	return (void *)(uintptr_t)sum;
}

static int copy(int uffd, size_t page, const uint8_t *buf, uint64_t mode)
{
	struct uffdio_copy c = { (uintptr_t)region + (page << 12), (uintptr_t)buf, RUN << 12, mode, 0 };
	return ioctl(uffd, UFFDIO_COPY, &c);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE_MIB READER(0|1|2)\n", argv[0]);
		return 64;
	}
	size_t bytes = strtoull(argv[1], NULL, 0) << 20, npages = bytes >> 12;
	reader_mode = atoi(argv[2]);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API };
	region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *buf = mmap(NULL, RUN << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || region == MAP_FAILED || buf == MAP_FAILED) {
		perror("setup");
		return 71;
	}
	madvise(region, bytes, MADV_NOHUGEPAGE);
	struct uffdio_register r = { .range = { (uintptr_t)region, bytes }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &r)) {
		perror("UFFDIO_REGISTER");
		return 71;
	}
	for (size_t i = 0; i < RUN << 12; i += 8)
		*(uint64_t *)(buf + i) = i * 0x9e3779b97f4a7c15ull;
	pin(0);
	for (size_t p = 0; p < 1024; p += RUN)   /* the reader's first 4 MiB */
		if (copy(uffd, p, buf, 0)) {
			perror("UFFDIO_COPY");
			return 71;
		}
	installed = 1024;
	pthread_t th;
	if (reader_mode)
		pthread_create(&th, NULL, reader, NULL);
	usleep(10000);
	uint64_t w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
	for (size_t p = 1024; p < npages; p += RUN) {
		if (copy(uffd, p, buf, UFFDIO_COPY_MODE_DONTWAKE)) {
			perror("UFFDIO_COPY");
			return 71;
		}
		atomic_store(&installed, p + RUN);
	}
	uint64_t w = now(CLOCK_MONOTONIC) - w0, c = now(CLOCK_THREAD_CPUTIME_ID) - c0;
	atomic_store(&stop, 1);
	if (reader_mode)
		pthread_join(th, NULL);
	printf("%zuM reader=%d wall %.3f us/page cpu %.3f us/page reads %lu\n", bytes >> 20, reader_mode,
	       (double)w / 1e3 / (double)(npages - 1024), (double)c / 1e3 / (double)(npages - 1024), reads);
	return 0;
}
