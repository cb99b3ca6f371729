/* Link emulation (wire/link.c): the background frame size on an emulated
 * link, and the token bucket over a long pull (the rate it lets through,
 * counted in frame bytes, is the configured rate -- never more). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "common/util.h"
#include "wire/link.h"
#include "wire/proto.h"

/* about 400 µs of the link per frame, 16..128 pages */
static void test_run_pages(void **st)
{
	(void)st;
	assert_int_equal(pcb_link_run_pages(10000), PCB_LINK_MIN_RUN_PAGES);         /* 10 kbit/s */
	assert_int_equal(pcb_link_run_pages(1000000000ull), 16);                     /* 1gbit: 50000 bytes = 12 pages -> 16 */
	assert_int_equal(pcb_link_run_pages(2500000000ull), 30);                     /* 125000 bytes */
	assert_int_equal(pcb_link_run_pages(5000000000ull), 61);                     /* 250000 bytes */
	assert_int_equal(pcb_link_run_pages(10000000000ull), 122);                   /* 500000 bytes */
	assert_int_equal(pcb_link_run_pages(11000000000ull), PCB_MAX_RUN_PAGES);
	assert_int_equal(pcb_link_run_pages(400000000000ull), PCB_MAX_RUN_PAGES);    /* the parser's maximum */
	/* monotonic in the rate */
	unsigned last = 0;
	for (uint64_t bps = 10000; bps <= 400000000000ull; bps = bps * 11 / 10) {
		unsigned n = pcb_link_run_pages(bps);
		assert_true(n >= last && n >= PCB_LINK_MIN_RUN_PAGES && n <= PCB_MAX_RUN_PAGES);
		last = n;
	}
}

/* A pull of 1 GiB in frames of each rate's size, all ready at once (a
 * sender that is never late): the last frame leaves exactly when the frame
 * bytes at the configured rate would have, i.e. the bucket lets through the
 * configured rate, not more; and a sender that is late catches up without
 * exceeding it over the whole pull. */
static void test_bucket_rate(void **st)
{
	(void)st;
	const uint64_t rates[] = { 1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull, 40000000000ull };
	for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct pcb_link l;
		pcb_link_init(&l);
		pcb_link_set(&l, rates[i], 0);
		uint64_t frame = PCB_HDR_SIZE + (uint64_t)pcb_link_run_pages(rates[i]) * 4096, bytes = 0, t0 = 5000000, rel = 0;
		while (bytes < (1ull << 30)) {
			rel = pcb_link_reserve(&l, frame, t0);
			bytes += frame;
		}
		/* each frame's serialisation time is rounded up to the ns: at most 1 ns per frame slower */
		double ideal = (double)bytes * 8e9 / (double)rates[i];
		double got = (double)(rel - t0);
		assert_true(got >= ideal);
		assert_true(got <= ideal + (double)(bytes / frame) + 1);
		/* a late sender: frames become ready 1 ms late every 100 frames; the rate over the whole
		 * pull still never exceeds the configured one (finish - first ready >= bytes / rate) */
		pcb_link_set(&l, rates[i], 0);
		uint64_t ready = t0, first = t0;
		bytes = 0;
		for (unsigned k = 0; k < 10000; k++) {
			if (k % 100 == 99)
				ready = rel + 1000000;
			rel = pcb_link_reserve(&l, frame, ready);
			bytes += frame;
			assert_true((double)(rel - first) >= (double)bytes * 8e9 / (double)rates[i]);
		}
		pthread_mutex_destroy(&l.lock);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_pages),
		cmocka_unit_test(test_bucket_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
