/* Batched UFFDIO_COPY of SIZE MiB into fresh memory (128 pages per ioctl from one hot buffer, no pager,
 * no network), timed GiB by GiB, with the host's reported_kib (this kernel's free page reporting
 * counter) read at each GiB: used by 2026-12-06-scale-sweeps.md to show where along a 16 GiB install
 * the cost per page changes.
 *
 *   cc -std=gnu11 -O2 -Wall -Wextra -o install-by-gib 2026-12-06-install-by-gib.c
 *   ./install-by-gib SIZE_MIB      (root, or vm.unprivileged_userfaultfd=1) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define RUN 128
static uint64_t now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }
static long rep(void) { long v = -1; FILE *f = fopen("/sys/module/page_reporting/parameters/reported_kib", "r"); if (f) { if (fscanf(f, "%ld", &v) != 1) v = -1; fclose(f); } return v; }
int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SIZE_MIB\n", argv[0]);
		return 64;
	}
	size_t bytes = strtoull(argv[1], NULL, 0) << 20, npages = bytes >> 12;
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API };
	uint8_t *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *buf = mmap(NULL, RUN << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || region == MAP_FAILED || buf == MAP_FAILED) {
		perror("setup");
		return 71;
	}
	madvise(region, bytes, MADV_NOHUGEPAGE);
	struct uffdio_register r = { .range = { (uintptr_t)region, bytes }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &r)) { perror("reg"); return 71; }
	for (size_t i = 0; i < RUN << 12; i += 8) *(uint64_t *)(buf + i) = i * 0x9e3779b97f4a7c15ull;
	uint64_t t0 = now(), tg = t0; long r0 = rep(), rg = r0;
	size_t gib = (1u << 30) >> 12;
	for (size_t p = 0; p < npages; p += RUN) {
		struct uffdio_copy c = { (uintptr_t)region + (p << 12), (uintptr_t)buf, RUN << 12, UFFDIO_COPY_MODE_DONTWAKE, 0 };
		if (ioctl(uffd, UFFDIO_COPY, &c)) { perror("copy"); return 71; }
		if ((p + RUN) % gib == 0) {
			uint64_t t = now(); long rr = rep();
			printf("GiB %2zu at %6.0f ms: %.3f us/page, reported +%ld MiB\n", (p + RUN) / gib, (t - t0) / 1e6, (t - tg) / 1e3 / gib, (rr - rg) >> 10);
			tg = t; rg = rr;
		}
	}
	printf("total %.3f us/page, reported %ld MiB\n", (now() - t0) / 1e3 / npages, (rep() - r0) >> 10);
	return 0;
}
