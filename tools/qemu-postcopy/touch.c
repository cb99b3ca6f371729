/* Guest workload for tools/qemu-postcopy: fill a buffer, then write one
 * random page at a time forever, printing progress on the console once a
 * second (pages touched in that second).  Built static, run as the guest's
 * init payload. Usage: touch MiB */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
	size_t pages = mib * 256, done = 0;
	uint64_t x = 88172645463325252ULL;
	char *buf = malloc(mib << 20);
	if (!buf) {
		perror("malloc");
		return 1;
	}
	memset(buf, 1, mib << 20);
	printf("TOUCH filled %zu MiB\n", mib);
	fflush(stdout);
	double t0 = now_s();
	for (;;) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		buf[(x % pages) << 12] += 1;
		if ((++done & 1023) == 0 && now_s() - t0 >= 1.0) {
			printf("TOUCH %.3f %zu\n", now_s(), done);
			fflush(stdout);
			done = 0;
			t0 = now_s();
		}
	}
}
