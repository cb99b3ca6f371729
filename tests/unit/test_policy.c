/* policies: the registry, pcb_batch_add, pcb_policy_fill_sequential and
 * each policy's next-batch order. */
#include "tests/lib/testlib.h"
#include "policies/policy.h"
#include "wire/proto.h"
#include <stdlib.h>

struct fixture {
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[PCB_MAX_RANGES];
};

static struct fixture *fx_new(const char *policy, uint64_t npages)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(pcb_ps_init(&f->ps, npages), 0);
	char why[256] = "";
	assert_int_equal(pcb_policy_open(&f->pol, pcb_policy_find(policy), &f->ps, npages, 1, why, sizeof(why)), 0);
	return f;
}

static void fx_free(struct fixture *f)
{
	pcb_policy_close(&f->pol);
	pcb_ps_free(&f->ps);
	free(f);
}

static struct pcb_batch batch(struct fixture *f, unsigned max_pages, unsigned max_ranges)
{
	return (struct pcb_batch){ .r = f->r, .max_ranges = max_ranges, .max_pages = max_pages };
}

static void test_registry(void **state)
{
	(void)state;
	char why[256];
	unsigned n = 0;
	for (unsigned i = 0; pcb_policies[i]; i++, n++) {
		const struct pcb_policy_ops *o = pcb_policies[i];
		if (pcb_policy_check(o, why, sizeof(why)) != 0)
			fail_msg("registered policy %s fails its check: %s", o->name, why);
		assert_ptr_equal(pcb_policy_find(o->name), o);
		assert_true(o->help[0] != 0);
	}
	assert_true(n >= 2);
	assert_null(pcb_policy_find("nope"));
	assert_null(pcb_policy_find(""));
	assert_null(pcb_policy_find("Sequential"));

	struct pcb_policy_ops bad = *pcb_policy_find("sequential");
	bad.abi = PCB_POLICY_ABI + 1;
	assert_int_equal(pcb_policy_check(&bad, why, sizeof(why)), -1);
	tl_assert_contains(why, "ABI");
	bad = *pcb_policy_find("sequential");
	bad.next_batch = NULL;
	assert_int_equal(pcb_policy_check(&bad, why, sizeof(why)), -1);
	tl_assert_contains(why, "next_batch");
	bad = *pcb_policy_find("sequential");
	bad.help = NULL;
	assert_int_equal(pcb_policy_check(&bad, why, sizeof(why)), -1);
}

/* --policy=./x.so: the example loads and runs like a built-in policy; a
 * missing file, a stale ABI and a built-in's name are refused with one line. */
static void test_shared_object(void **state)
{
	(void)state;
	char why[512] = "", path[512];
	const char *b = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(path, sizeof(path), "./%s/examples/ahead.so", b);
	const struct pcb_policy_ops *o = pcb_policy_resolve(path, why, sizeof(why));
	if (!o)
		fail_msg("loading %s: %s", path, why);
	assert_string_equal(o->name, "ahead");
	assert_ptr_equal(pcb_policy_resolve(path, why, sizeof(why)), o);   /* loaded once */
	assert_null(pcb_policy_find("ahead"));                               /* not registered */
	struct pcb_pagestate ps;
	struct pcb_policy pol = { 0 };
	assert_int_equal(pcb_ps_init(&ps, 100), 0);
	assert_int_equal(pcb_policy_parse_opts(&pol, o, "ahead=3", why, sizeof(why)), 0);
	assert_int_equal(pcb_policy_open(&pol, o, &ps, 100, 1, why, sizeof(why)), 0);
	struct pcb_range r[PCB_MAX_RANGES];
	struct pcb_batch bt = { .r = r, .max_ranges = PCB_MAX_RANGES, .max_pages = 5 };
	o->on_fault(&pol, 50, 0);
	pcb_bit_set(ps.demanded, 50);
	assert_int_equal(o->next_batch(&pol, &bt), 5);    /* 51, 52, 53 after the fault, then 0, 1 */
	tl_assert_u64_eq(r[0].first, 51);
	tl_assert_u64_eq(r[0].count, 3);
	tl_assert_u64_eq(r[1].first, 0);
	pcb_policy_close(&pol);
	pcb_ps_free(&ps);
	assert_int_equal(pcb_policy_parse_opts(&pol, o, "ahead=0", why, sizeof(why)), 0);
	assert_int_equal(pcb_ps_init(&ps, 100), 0);
	assert_true(pcb_policy_open(&pol, o, &ps, 100, 1, why, sizeof(why)) < 0);
	tl_assert_contains(why, "ahead");
	pcb_ps_free(&ps);

	snprintf(path, sizeof(path), "./%s/tests/bad_abi_policy.so", b);
	assert_null(pcb_policy_resolve(path, why, sizeof(why)));
	char want[64];
	snprintf(want, sizeof(want), "ABI %u, this pcbench wants %u", PCB_POLICY_ABI + 7, PCB_POLICY_ABI);
	tl_assert_contains(why, want);
	tl_assert_contains(why, path);
	assert_null(strchr(why, '\n'));
	assert_null(pcb_policy_resolve("./no/such.so", why, sizeof(why)));
	tl_assert_contains(why, "cannot be loaded");
	assert_null(pcb_policy_resolve("nosuch", why, sizeof(why)));
	tl_assert_contains(why, "unknown policy 'nosuch'");
}

static void test_demand(void **state)
{
	(void)state;
	const struct pcb_policy_ops *d = pcb_policy_find("demand");
	assert_non_null(d);
	assert_false(d->background);
	assert_null(d->next_batch);
}

static void test_batch_add(void **state)
{
	(void)state;
	struct fixture *f = fx_new("sequential", 100);
	struct pcb_batch b = batch(f, 5, 2);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 10), 1);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 11), 1);     /* contiguous: merged */
	assert_int_equal(b.nr, 1);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 11), 0);     /* already claimed */
	pcb_ps_set_present(&f->ps, 12);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 12), 0);     /* present */
	pcb_bit_set(f->ps.demanded, 20);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 20), 0);     /* demanded */
	assert_int_equal(pcb_batch_add(&f->ps, &b, 100), 0);    /* outside the image */
	assert_int_equal(pcb_batch_add(&f->ps, &b, 30), 1);     /* second range */
	assert_int_equal(b.nr, 2);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 40), -1);    /* third range: full */
	assert_false(pcb_bit_test(f->ps.claimed, 40));          /* and not claimed */
	assert_int_equal(pcb_batch_add(&f->ps, &b, 31), 1);     /* extending is still fine */
	assert_int_equal(pcb_batch_add(&f->ps, &b, 32), 1);
	assert_int_equal(b.npages, 5);
	assert_int_equal(pcb_batch_add(&f->ps, &b, 33), -1);    /* max_pages */
	assert_false(pcb_bit_test(f->ps.claimed, 33));
	tl_assert_u64_eq(f->r[0].first, 10);
	tl_assert_u64_eq(f->r[0].count, 2);
	tl_assert_u64_eq(f->r[1].first, 30);
	tl_assert_u64_eq(f->r[1].count, 3);
	fx_free(f);
}

/* Drive a policy until it returns 0: every page it returns must be free at
 * the time, claimed afterwards, in ascending order within a batch, and the
 * ranges must be maximal (no two adjacent ranges that touch). */
static uint64_t drain_policy(struct fixture *f, unsigned max_pages, unsigned max_ranges, uint64_t *order, uint64_t cap)
{
	uint64_t total = 0;
	for (int iter = 0; iter < 100000; iter++) {
		struct pcb_batch b = batch(f, max_pages, max_ranges);
		unsigned n = f->pol.ops->next_batch(&f->pol, &b);
		assert_int_equal(n, b.npages);
		if (!n)
			return total;
		assert_true(n <= max_pages);
		assert_true(b.nr >= 1 && b.nr <= max_ranges);
		unsigned sum = 0;
		for (unsigned i = 0; i < b.nr; i++) {
			assert_true(f->r[i].count > 0);
			assert_true(f->r[i].first + f->r[i].count <= f->pol.npages);
			if (i > 0 && f->r[i - 1].first + f->r[i - 1].count == f->r[i].first)
				fail_msg("adjacent ranges %llu+%llu and %llu not merged",
					 (unsigned long long)f->r[i - 1].first, (unsigned long long)f->r[i - 1].count,
					 (unsigned long long)f->r[i].first);
			for (uint64_t p = f->r[i].first; p < f->r[i].first + f->r[i].count; p++) {
				assert_true(pcb_bit_test(f->ps.claimed, p));
				if (total < cap)
					order[total] = p;
				total++;
			}
			sum += (unsigned)f->r[i].count;
		}
		assert_int_equal(sum, n);
	}
	fail_msg("policy never ran dry");
	return 0;
}

static void test_sequential_order(void **state)
{
	(void)state;
	const uint64_t N = 1000;
	struct fixture *f = fx_new("sequential", N);
	assert_true(f->pol.ops->background);
	/* busy pages the policy must skip */
	for (uint64_t p = 0; p < N; p++) {
		if (p % 7 == 0)
			pcb_ps_set_present(&f->ps, p);
		else if (p % 11 == 0)
			pcb_bit_set(f->ps.demanded, p);
		else if (p % 13 == 0)
			pcb_ps_claim(&f->ps, p);
	}
	uint64_t *order = calloc(N, sizeof(*order));
	uint64_t n = drain_policy(f, 64, 4, order, N);
	uint64_t want = 0;
	for (uint64_t p = 0, k = 0; p < N; p++) {
		if (p % 7 == 0 || p % 11 == 0 || p % 13 == 0)
			continue;
		want++;
		if (order[k] != p)
			fail_msg("sequential returned page %llu where %llu (address order) was expected",
				 (unsigned long long)order[k], (unsigned long long)p);
		k++;
	}
	tl_assert_u64_eq(n, want);
	/* everything not present is now claimed or demanded: nothing left to pull */
	assert_int_equal(pcb_ps_next_free(&f->ps, 0), N);
	free(order);
	fx_free(f);
}

static void test_sequential_limits(void **state)
{
	(void)state;
	struct fixture *f = fx_new("sequential", 300);
	/* a fully free region comes back as one range per batch of max_pages */
	struct pcb_batch b = batch(f, 64, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 64);
	assert_int_equal(b.nr, 1);
	tl_assert_u64_eq(f->r[0].first, 0);
	tl_assert_u64_eq(f->r[0].count, 64);
	b = batch(f, 64, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 64);
	tl_assert_u64_eq(f->r[0].first, 64);
	/* holes every other page: max_ranges binds before max_pages */
	for (uint64_t p = 128; p < 300; p += 2)
		pcb_ps_set_present(&f->ps, p);
	b = batch(f, 64, 3);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 3);
	assert_int_equal(b.nr, 3);
	tl_assert_u64_eq(f->r[0].first, 129);
	tl_assert_u64_eq(f->r[1].first, 131);
	tl_assert_u64_eq(f->r[2].first, 133);
	/* max_pages of 1 */
	b = batch(f, 1, PCB_MAX_RANGES);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 1);
	tl_assert_u64_eq(f->r[0].first, 135);
	/* the batch fits the wire limits */
	b = batch(f, PCB_MAX_BATCH_PAGES, PCB_MAX_RANGES);
	unsigned n = f->pol.ops->next_batch(&f->pol, &b);
	assert_true(n > 0 && b.nr <= PCB_MAX_RANGES);
	fx_free(f);
}

static void test_sequential_wraps(void **state)
{
	(void)state;
	/* pages behind the cursor that become free again (a claim released is
	 * not modelled, but pages never offered are) are found after wrapping */
	struct fixture *f = fx_new("sequential", 200);
	for (uint64_t p = 0; p < 50; p++)
		pcb_bit_set(f->ps.demanded, p);        /* demanded: skipped on the first pass */
	struct pcb_batch b = batch(f, 100, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 100);
	tl_assert_u64_eq(f->r[0].first, 50);
	b = batch(f, 100, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 50);   /* 150..199 */
	tl_assert_u64_eq(f->r[0].first, 150);
	/* a fresh fixture with the cursor past a free hole: wrap finds it */
	uint64_t cursor = 190;
	struct fixture *g = fx_new("sequential", 200);
	b = batch(g, 20, 8);
	assert_int_equal(pcb_policy_fill_sequential(&g->pol, &b, &cursor), 20);
	assert_int_equal(b.nr, 2);
	tl_assert_u64_eq(g->r[0].first, 190);
	tl_assert_u64_eq(g->r[0].count, 10);
	tl_assert_u64_eq(g->r[1].first, 0);
	tl_assert_u64_eq(g->r[1].count, 10);
	tl_assert_u64_eq(cursor, 10);
	b = batch(g, 1000, 8);
	assert_int_equal(pcb_policy_fill_sequential(&g->pol, &b, &cursor), 180);
	b = batch(g, 1000, 8);
	assert_int_equal(pcb_policy_fill_sequential(&g->pol, &b, &cursor), 0);   /* nothing left */
	assert_int_equal(b.nr, 0);
	fx_free(g);
	fx_free(f);
}

static void test_sequential_partial_word(void **state)
{
	(void)state;
	/* 65 pages: the last bitmap word has one valid bit */
	struct fixture *f = fx_new("sequential", 65);
	for (uint64_t p = 0; p < 64; p++)
		pcb_ps_set_present(&f->ps, p);
	struct pcb_batch b = batch(f, 64, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 1);
	tl_assert_u64_eq(f->r[0].first, 64);
	b = batch(f, 64, 8);
	assert_int_equal(f->pol.ops->next_batch(&f->pol, &b), 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_shared_object),
		cmocka_unit_test(test_demand),
		cmocka_unit_test(test_batch_add),
		cmocka_unit_test(test_sequential_order),
		cmocka_unit_test(test_sequential_limits),
		cmocka_unit_test(test_sequential_wraps),
		cmocka_unit_test(test_sequential_partial_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
