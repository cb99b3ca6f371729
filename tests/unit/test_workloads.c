/* workloads: registry, determinism of every generator, seq order, the zipf skew. */
#include "tests/lib/testlib.h"
#include "workloads/workload.h"
#include <math.h>
#include <stdlib.h>

struct gen {
	const struct pcb_workload_ops *ops;
	void *shared, *ts;
};

static void gen_open(struct gen *g, const char *name, uint64_t npages, uint64_t seed, unsigned vcpu, unsigned nvcpus)
{
	char why[256] = "";
	struct pcb_wl_params prm = { .npages = npages, .seed = seed, .nvcpus = nvcpus, .zipf_theta = 0.99 };
	g->ops = pcb_workload_find(name);
	assert_non_null(g->ops);
	g->shared = NULL;
	if (g->ops->init && g->ops->init(&g->shared, &prm, why, sizeof(why)) != 0)
		fail_msg("workload %s init failed: %s", name, why);
	assert_int_equal(g->ops->thread_init(&g->ts, g->shared, &prm, vcpu), 0);
}

static void gen_close(struct gen *g)
{
	if (g->ops->thread_fini)
		g->ops->thread_fini(g->ts);
	if (g->ops->fini)
		g->ops->fini(g->shared);
}

static void test_registry(void **state)
{
	(void)state;
	char why[256];
	unsigned n = 0;
	for (unsigned i = 0; pcb_workloads[i]; i++, n++) {
		if (pcb_workload_check(pcb_workloads[i], why, sizeof(why)) != 0)
			fail_msg("registered workload %s fails its check: %s", pcb_workloads[i]->name, why);
		assert_ptr_equal(pcb_workload_find(pcb_workloads[i]->name), pcb_workloads[i]);
	}
	assert_true(n >= 3);
	assert_null(pcb_workload_find("nope"));
	struct pcb_workload_ops bad = *pcb_workload_find("seq");
	bad.next = NULL;
	assert_int_equal(pcb_workload_check(&bad, why, sizeof(why)), -1);
	bad = *pcb_workload_find("seq");
	bad.abi++;
	assert_int_equal(pcb_workload_check(&bad, why, sizeof(why)), -1);
}

/* Every workload: in range, same seed -> same sequence, other seed or vCPU -> another. */
static void test_all_deterministic(void **state)
{
	(void)state;
	const uint64_t N = 5000;
	for (unsigned i = 0; pcb_workloads[i]; i++) {
		const char *name = pcb_workloads[i]->name;
		struct gen a, b, c, d;
		gen_open(&a, name, N, 11, 0, 2);
		gen_open(&b, name, N, 11, 0, 2);
		gen_open(&c, name, N, 12, 0, 2);
		gen_open(&d, name, N, 11, 1, 2);
		unsigned same_c = 0, same_d = 0;
		for (int k = 0; k < 20000; k++) {
			uint64_t x = a.ops->next(a.ts);
			if (x >= N)
				fail_msg("%s returned page %llu of %llu", name, (unsigned long long)x, (unsigned long long)N);
			if (x != b.ops->next(b.ts))
				fail_msg("%s: same seed, different sequence at step %d", name, k);
			same_c += x == c.ops->next(c.ts);
			same_d += x == d.ops->next(d.ts);
		}
		/* seq ignores the seed by design; generators that use it must differ */
		if (strcmp(name, "seq") != 0 && same_c > 20000 / 2)
			fail_msg("%s: seeds 11 and 12 give the same sequence (%u/20000 equal)", name, same_c);
		if (same_d > 20000 / 2)
			fail_msg("%s: vCPUs 0 and 1 give the same sequence (%u/20000 equal)", name, same_d);
		gen_close(&a);
		gen_close(&b);
		gen_close(&c);
		gen_close(&d);
	}
}

static void test_seq(void **state)
{
	(void)state;
	struct gen g;
	gen_open(&g, "seq", 10, 1, 0, 1);
	for (int k = 0; k < 25; k++)
		tl_assert_u64_eq(g.ops->next(g.ts), (uint64_t)(k % 10));
	gen_close(&g);
	/* vCPU 2 of 4 starts half way and wraps */
	gen_open(&g, "seq", 10, 1, 2, 4);
	tl_assert_u64_eq(g.ops->next(g.ts), 5);
	for (int k = 6; k < 10; k++)
		g.ops->next(g.ts);
	tl_assert_u64_eq(g.ops->next(g.ts), 0);
	gen_close(&g);
	/* a single page */
	gen_open(&g, "seq", 1, 1, 0, 1);
	for (int k = 0; k < 3; k++)
		tl_assert_u64_eq(g.ops->next(g.ts), 0);
	gen_close(&g);
}

static void test_random_uniform(void **state)
{
	(void)state;
	const uint64_t N = 100;
	unsigned cnt[100] = { 0 };
	struct gen g;
	gen_open(&g, "random", N, 3, 0, 1);
	for (int k = 0; k < 100000; k++)
		cnt[g.ops->next(g.ts)]++;
	for (unsigned i = 0; i < N; i++)
		if (cnt[i] < 800 || cnt[i] > 1200)
			fail_msg("random: page %u drawn %u times of 100000 (expect ~1000)", i, cnt[i]);
	gen_close(&g);
}

static int cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void zipf_share(uint64_t n, uint64_t seed)
{
	const unsigned S = 400000;
	uint32_t *cnt = calloc(n, sizeof(*cnt));
	struct gen g;
	gen_open(&g, "zipf", n, seed, 0, 1);
	for (unsigned k = 0; k < S; k++)
		cnt[g.ops->next(g.ts)]++;
	gen_close(&g);
	/* the hottest page's share is 1/zeta(n) in Gray's generator (exactly, up to sampling) */
	double zeta = 0;
	for (uint64_t i = 1; i <= n; i++)
		zeta += pow((double)i, -0.99);
	qsort(cnt, n, sizeof(*cnt), cmp_desc);
	double top = (double)cnt[0] / S;
	if (fabs(top - 1 / zeta) > 0.01)
		fail_msg("zipf n=%llu: hottest page has %.4f of accesses, expected %.4f", (unsigned long long)n, top, 1 / zeta);
	/* the top 1%% of pages gets roughly the share the Zipf law gives the top 1%% of ranks */
	uint64_t k = n / 100, hot = 0;
	double expect = 0;
	for (uint64_t i = 1; i <= k; i++)
		expect += pow((double)i, -0.99) / zeta;
	for (uint64_t i = 0; i < k; i++)
		hot += cnt[i];
	double got = (double)hot / S;
	if (fabs(got - expect) > 0.05 * expect)
		fail_msg("zipf n=%llu: top 1%% of pages got %.4f of accesses, Zipf(0.99) gives %.4f", (unsigned long long)n,
			 got, expect);
	free(cnt);
}

static void test_zipf_skew(void **state)
{
	(void)state;
	zipf_share(10000, 1);
	zipf_share(16384, 42);
}

static void test_zipf_scattered(void **state)
{
	(void)state;
	const uint64_t N = 10000;
	struct gen g;
	gen_open(&g, "zipf", N, 1, 0, 1);
	uint32_t *cnt = calloc(N, sizeof(*cnt));
	for (int k = 0; k < 100000; k++)
		cnt[g.ops->next(g.ts)]++;
	/* the hot pages (~top 40 ranks) are spread over both halves of the region */
	uint64_t lo = 0, hi = 0;
	for (uint64_t i = 0; i < N; i++) {
		if (cnt[i] > 200) {
			if (i < N / 2)
				lo++;
			else
				hi++;
		}
	}
	assert_true(lo > 5 && hi > 5);
	gen_close(&g);
	free(cnt);
}

static void test_zipf_bad_theta(void **state)
{
	(void)state;
	const struct pcb_workload_ops *z = pcb_workload_find("zipf");
	const double bad[] = { 0, 1, -0.5, 1.5, NAN };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[256] = "";
		void *sh = NULL;
		struct pcb_wl_params prm = { .npages = 100, .seed = 1, .nvcpus = 1, .zipf_theta = bad[i] };
		if (z->init(&sh, &prm, why, sizeof(why)) == 0)
			fail_msg("zipf accepted theta %g", bad[i]);
		tl_assert_contains(why, "theta");
	}
	/* tiny regions work: every draw is in range */
	struct gen g;
	for (uint64_t n = 1; n <= 3; n++) {
		gen_open(&g, "zipf", n, 1, 0, 1);
		for (int k = 0; k < 1000; k++)
			assert_true(g.ops->next(g.ts) < n);
		gen_close(&g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_all_deterministic),
		cmocka_unit_test(test_seq),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_zipf_skew),
		cmocka_unit_test(test_zipf_scattered),
		cmocka_unit_test(test_zipf_bad_theta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
