/* Order of the pre-paging policies that react to faults: pivot, qemu, trend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include "pager/policy.h"

#define NP 1000


static struct pcb_policy *mk(struct pcb_pagestate *ps, struct pcb_policy *pol, const char *name)
{
	assert_int_equal(pcb_ps_init(ps, NP), 0);
	pol->ops = pcb_policy_find(name);
	assert_non_null(pol->ops);
	char why[128];
	assert_int_equal(pcb_policy_check(pol->ops, why, sizeof(why)), 0);
	assert_int_equal(pcb_policy_open(pol, pol->ops, ps, NP, 1, why, sizeof(why)), 0);
	return pol;
}

static void rm(struct pcb_pagestate *ps, struct pcb_policy *pol)
{
	if (pol->ops->fini)
		pol->ops->fini(pol);
	pcb_ps_free(ps);
}

/* Pages of a batch, in order, expanded from its ranges. */
static unsigned pages_of(const struct pcb_batch *b, uint64_t *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < b->nr; i++)
		for (uint64_t k = 0; k < b->r[i].count && n < max; k++)
			out[n++] = b->r[i].first + k;
	return n;
}

static unsigned batch(struct pcb_policy *pol, struct pcb_range *r, unsigned max_pages, uint64_t *pages)
{
	struct pcb_batch b = { .r = r, .max_ranges = 64, .max_pages = max_pages };
	unsigned n = pol->ops->next_batch(pol, &b);
	assert_int_equal(n, b.npages);
	assert_int_equal(pages_of(&b, pages, max_pages), n);
	return n;
}

static void test_pivot_expands_around_fault(void **st)
{
	(void)st;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[64];
	uint64_t pg[16];
	mk(&ps, &pol, "pivot");
	pol.ops->on_fault(&pol, 500, 0);
	assert_int_equal(batch(&pol, r, 6, pg), 6);
	uint64_t want[6] = { 501, 499, 502, 498, 503, 497 };
	for (int i = 0; i < 6; i++)
		assert_int_equal(pg[i], want[i]);
	/* continues the expansion */
	assert_int_equal(batch(&pol, r, 2, pg), 2);
	assert_int_equal(pg[0], 504);
	assert_int_equal(pg[1], 496);
	/* a new fault moves the pivot; pages already claimed are skipped */
	pol.ops->on_fault(&pol, 10, 0);
	assert_int_equal(batch(&pol, r, 3, pg), 3);
	assert_int_equal(pg[0], 11);
	assert_int_equal(pg[1], 9);
	assert_int_equal(pg[2], 12);
	rm(&ps, &pol);
}

static void test_pivot_edges_and_present(void **st)
{
	(void)st;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[64];
	uint64_t pg[8];
	mk(&ps, &pol, "pivot");
	pcb_ps_set_present(&ps, 1);
	pol.ops->on_fault(&pol, 0, 0);
	assert_int_equal(batch(&pol, r, 3, pg), 3);
	assert_int_equal(pg[0], 2);   /* 1 present, no page below 0 */
	assert_int_equal(pg[1], 3);
	assert_int_equal(pg[2], 4);
	rm(&ps, &pol);
}

static void test_qemu_jumps_after_fault(void **st)
{
	(void)st;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[64];
	uint64_t pg[8];
	mk(&ps, &pol, "qemu");
	assert_int_equal(batch(&pol, r, 4, pg), 4);
	assert_int_equal(pg[0], 0);
	assert_int_equal(pg[3], 3);
	pol.ops->on_fault(&pol, 700, 0);
	assert_int_equal(batch(&pol, r, 4, pg), 4);
	assert_int_equal(pg[0], 701);
	assert_int_equal(pg[3], 704);
	/* a fault on a present page does not move the stream */
	pcb_ps_set_present(&ps, 100);
	pol.ops->on_fault(&pol, 100, 0);
	assert_int_equal(batch(&pol, r, 1, pg), 1);
	assert_int_equal(pg[0], 705);
	rm(&ps, &pol);
}

static void test_trend_follows_stride(void **st)
{
	(void)st;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[64];
	uint64_t pg[32];
	mk(&ps, &pol, "trend");
	/* backward stride of 3: 900, 897, 894, 891 -> 888, 885, ... */
	for (uint64_t f = 900; f >= 891; f -= 3)
		pol.ops->on_fault(&pol, f, 0);
	assert_int_equal(batch(&pol, r, 5, pg), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pg[i], 888 - 3 * (uint64_t)i);
	rm(&ps, &pol);
}

static void test_trend_without_trend_is_address_order(void **st)
{
	(void)st;
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[64];
	uint64_t pg[8];
	mk(&ps, &pol, "trend");
	uint64_t f[4] = { 5, 300, 17, 900 };
	for (int i = 0; i < 4; i++)
		pol.ops->on_fault(&pol, f[i], 0);
	assert_int_equal(batch(&pol, r, 3, pg), 3);
	assert_int_equal(pg[0], 0);
	assert_int_equal(pg[1], 1);
	assert_int_equal(pg[2], 2);
	rm(&ps, &pol);
}

static void test_all_policies_cover_region(void **st)
{
	(void)st;
	/* every background policy eventually offers every page exactly once */
	for (unsigned i = 0; pcb_policies[i]; i++) {
		if (!pcb_policies[i]->background)
			continue;
		struct pcb_pagestate ps;
		struct pcb_policy pol;
		struct pcb_range r[64];
		uint64_t pg[64];
		mk(&ps, &pol, pcb_policies[i]->name);
		uint64_t seen = 0;
		unsigned char *hit = calloc(NP, 1);
		for (int round = 0; round < 10000; round++) {
			if (round % 7 == 3 && pol.ops->on_fault)
				pol.ops->on_fault(&pol, (uint64_t)(round * 37) % NP, 0);
			unsigned n = batch(&pol, r, 64, pg);
			if (!n)
				break;
			for (unsigned k = 0; k < n; k++) {
				assert_true(pg[k] < NP);
				assert_int_equal(hit[pg[k]], 0);
				hit[pg[k]] = 1;
				seen++;
				pcb_ps_set_present(&ps, pg[k]);
			}
		}
		assert_int_equal(seen, NP);
		free(hit);
		rm(&ps, &pol);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pivot_expands_around_fault),
		cmocka_unit_test(test_pivot_edges_and_present),
		cmocka_unit_test(test_qemu_jumps_after_fault),
		cmocka_unit_test(test_trend_follows_stride),
		cmocka_unit_test(test_trend_without_trend_is_address_order),
		cmocka_unit_test(test_all_policies_cover_region),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
