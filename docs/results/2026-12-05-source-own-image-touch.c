/* The first read of an inherited page, as 2026-12-05-source-own-image.md
 * measured it: a parent writes NP pages of private anonymous memory
 * (MADV_NOHUGEPAGE), forks, and the child times a read of one word of each
 * page, then again; the parent re-reads its own pages.  With a second
 * argument of 1 the child reads every page once before it times them.
 *   cc -O2 -o touch 2026-12-05-source-own-image-touch.c && ./touch 2500 0 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void run(const uint8_t *m, size_t np, const char *what)
{
	uint64_t *lat = malloc(np * sizeof(*lat)), s = 0;
	for (size_t i = 0; i < np; i++) {
		uint64_t t0 = now();
		s += *(const volatile uint64_t *)(m + i * 4096);
		lat[i] = now() - t0;
	}
	qsort(lat, np, sizeof(*lat), cmp);
	printf("%s: p50 %llu p90 %llu p99 %llu ns (%llu)\n", what, (unsigned long long)lat[np / 2],
	       (unsigned long long)lat[np * 9 / 10], (unsigned long long)lat[np * 99 / 100], (unsigned long long)(s & 1));
	free(lat);
}

int main(int argc, char **argv)
{
	size_t np = argc > 1 ? strtoull(argv[1], NULL, 0) : 2500;
	int pre = argc > 2 && atoi(argv[2]);
	uint8_t *m = mmap(NULL, np * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	madvise(m, np * 4096, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < np; i++)
		memset(m + i * 4096, (int)i | 1, 4096);
	if (fork() == 0) {
		if (pre) {
			volatile uint64_t s = 0;
			for (size_t i = 0; i < np; i++)
				s += *(const volatile uint64_t *)(m + i * 4096);
		}
		run(m, np, pre ? "child, read once before" : "child, first read");
		run(m, np, "child, second read");
		fflush(stdout);
		_exit(0);
	}
	wait(NULL);
	run(m, np, "parent, its own pages");
	return 0;
}
