/* pager/pagestate: the present / demanded / claimed bitmaps. */
#include "tests/lib/testlib.h"
#include "pager/pagestate.h"
#include <stdlib.h>

static void test_set_test_count(void **state)
{
	(void)state;
	struct pcb_pagestate ps;
	assert_int_equal(pcb_ps_init(&ps, 200), 0);
	assert_int_equal(ps.nwords, 4);
	assert_false(pcb_ps_complete(&ps));
	for (uint64_t i = 0; i < 200; i++)
		assert_false(pcb_ps_present(&ps, i));
	assert_true(pcb_ps_set_present(&ps, 0));
	assert_true(pcb_ps_set_present(&ps, 63));
	assert_true(pcb_ps_set_present(&ps, 64));
	assert_true(pcb_ps_set_present(&ps, 199));
	assert_false(pcb_ps_set_present(&ps, 64));          /* second time: not new, not counted */
	tl_assert_u64_eq(atomic_load(&ps.npresent), 4);
	assert_true(pcb_ps_present(&ps, 0) && pcb_ps_present(&ps, 63) && pcb_ps_present(&ps, 64) && pcb_ps_present(&ps, 199));
	assert_false(pcb_ps_present(&ps, 1) || pcb_ps_present(&ps, 62) || pcb_ps_present(&ps, 65) || pcb_ps_present(&ps, 198));
	/* the other bitmaps are independent */
	assert_false(pcb_bit_test(ps.demanded, 0));
	assert_false(pcb_bit_test(ps.claimed, 0));

	uint64_t miss[4];
	tl_assert_u64_eq(pcb_ps_missing(&ps, miss, 4), 196);
	tl_assert_u64_eq(miss[0], 1);
	tl_assert_u64_eq(miss[3], 4);
	for (uint64_t i = 0; i < 200; i++)
		pcb_ps_set_present(&ps, i);
	assert_true(pcb_ps_complete(&ps));
	tl_assert_u64_eq(atomic_load(&ps.npresent), 200);
	tl_assert_u64_eq(pcb_ps_missing(&ps, miss, 4), 0);
	pcb_ps_free(&ps);
	assert_null(ps.present);
}

static void test_claim_rules(void **state)
{
	(void)state;
	struct pcb_pagestate ps;
	assert_int_equal(pcb_ps_init(&ps, 128), 0);
	assert_true(pcb_ps_claim(&ps, 5));           /* free: claimable */
	assert_false(pcb_ps_claim(&ps, 5));          /* already claimed: not twice */
	pcb_ps_set_present(&ps, 6);
	assert_false(pcb_ps_claim(&ps, 6));          /* present */
	assert_true(pcb_bit_set(ps.demanded, 7));
	assert_false(pcb_bit_set(ps.demanded, 7));   /* pcb_bit_set reports only the first setter */
	assert_false(pcb_ps_claim(&ps, 7));          /* demanded */
	assert_false(pcb_bit_test(ps.claimed, 6));
	assert_false(pcb_bit_test(ps.claimed, 7));
	/* a claimed page can still become present (demand wins the race) */
	assert_true(pcb_ps_set_present(&ps, 5));
	pcb_ps_free(&ps);
}

static void test_next_free(void **state)
{
	(void)state;
	struct pcb_pagestate ps;
	assert_int_equal(pcb_ps_init(&ps, 130), 0);   /* 3 words, the last has 2 valid bits */
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 0), 0);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 129), 129);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 130), 130);   /* from == npages */
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 1000), 130);  /* beyond */
	pcb_ps_set_present(&ps, 0);
	pcb_bit_set(ps.demanded, 1);
	pcb_ps_claim(&ps, 2);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 0), 3);       /* present, demanded, claimed all skipped */
	for (uint64_t i = 3; i < 64; i++)
		pcb_ps_set_present(&ps, i);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 0), 64);      /* crosses a word boundary */
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 70), 70);     /* from mid-word */
	for (uint64_t i = 64; i < 128; i++)
		pcb_ps_claim(&ps, i);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 5), 128);     /* into the last, partial word */
	pcb_ps_set_present(&ps, 128);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 0), 129);
	pcb_bit_set(ps.demanded, 129);
	/* only the bits past the end are clear in the last word: they must not be returned */
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 0), 130);
	tl_assert_u64_eq(pcb_ps_next_free(&ps, 129), 130);
	pcb_ps_free(&ps);
}

static void test_sizes(void **state)
{
	(void)state;
	/* exact multiples of 64, a single page, and odd sizes: next_free walks every free page once */
	const uint64_t sizes[] = { 1, 2, 63, 64, 65, 127, 128, 129, 1000, 4096 };
	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t n = sizes[k];
		struct pcb_pagestate ps;
		assert_int_equal(pcb_ps_init(&ps, n), 0);
		tl_assert_u64_eq(ps.nwords, (n + 63) / 64);
		/* mark every third page busy in rotating ways */
		for (uint64_t i = 0; i < n; i += 3) {
			if (i % 9 == 0)
				pcb_ps_set_present(&ps, i);
			else if (i % 9 == 3)
				pcb_bit_set(ps.demanded, i);
			else
				pcb_ps_claim(&ps, i);
		}
		uint64_t seen = 0, prev = 0;
		for (uint64_t p = pcb_ps_next_free(&ps, 0); p < n; p = pcb_ps_next_free(&ps, p + 1)) {
			if (p % 3 == 0)
				fail_msg("npages %llu: next_free returned busy page %llu", (unsigned long long)n, (unsigned long long)p);
			if (seen && p <= prev)
				fail_msg("npages %llu: next_free not increasing", (unsigned long long)n);
			prev = p;
			seen++;
		}
		tl_assert_u64_eq(seen, n - (n + 2) / 3);
		tl_assert_u64_eq(pcb_ps_next_free(&ps, n - 1) <= n, 1);
		pcb_ps_free(&ps);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_test_count),
		cmocka_unit_test(test_claim_rules),
		cmocka_unit_test(test_next_free),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
