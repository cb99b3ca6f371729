/* workloads: the shared Zipf rank sampler and seeded permutation, seq's
 * per-vCPU start and wrap, random's uniformity, zipf's bad theta and tiny
 * regions.  (Determinism of every generator and the page-level zipf share
 * are in test_generators.c.) */
#include "tests/lib/testlib.h"
#include "common/util.h"
#include "workloads/workload.h"
#include <math.h>
#include <stdlib.h>

struct gen {
	const struct pcb_workload_ops *ops;
	struct pcb_wl_params prm;
	void *shared, *ts;
};

static void gen_open(struct gen *g, const char *name, uint64_t npages, uint64_t seed, unsigned vcpu, unsigned nvcpus)
{
	char why[256] = "";
	memset(g, 0, sizeof(*g));
	g->prm = (struct pcb_wl_params){ .npages = npages, .seed = seed, .nvcpus = nvcpus, .zipf_theta = 0.99 };
	g->ops = pcb_workload_find(name);
	assert_non_null(g->ops);
	if (g->ops->init && g->ops->init(&g->shared, &g->prm, why, sizeof(why)) != 0)
		fail_msg("workload %s init failed: %s", name, why);
	assert_int_equal(g->ops->thread_init(&g->ts, g->shared, &g->prm, vcpu), 0);
}

static uint64_t gen_page(struct gen *g)
{
	struct pcb_access a = { 0 };
	g->ops->next(g->ts, &a);
	return a.page;
}

static void gen_close(struct gen *g)
{
	if (g->ops->thread_fini)
		g->ops->thread_fini(g->ts);
	if (g->ops->fini)
		g->ops->fini(g->shared);
}

static double zeta(uint64_t n, double theta, uint64_t upto)
{
	double s = 0;
	for (uint64_t i = 1; i <= upto && i <= n; i++)
		s += pow((double)i, -theta);
	return s;
}

/* The sampler's rank distribution: rank 0 exactly 1/zeta(n), the top 1% of
 * ranks roughly the Zipf law's share, hotter ranks never colder. */
static void zipf_ranks(uint64_t n, double theta, uint64_t seed)
{
	const unsigned S = 400000;
	struct pcb_zipf z;
	assert_int_equal(pcb_zipf_init(&z, n, theta), 0);
	struct pcb_rng r;
	pcb_rng_seed(&r, seed, 1);
	uint32_t *cnt = calloc(n, sizeof(*cnt));
	for (unsigned k = 0; k < S; k++) {
		uint64_t rank = pcb_zipf_rank(&z, &r);
		if (rank >= n)
			fail_msg("rank %llu of %llu", (unsigned long long)rank, (unsigned long long)n);
		cnt[rank]++;
	}
	double zn = zeta(n, theta, n);
	double p0 = (double)cnt[0] / S, want0 = 1 / zn;
	if (fabs(p0 - want0) > 5 * sqrt(want0 * (1 - want0) / S) + 1e-3)
		fail_msg("zipf(n=%llu, theta=%g): rank 0 share %.4f, want %.4f", (unsigned long long)n, theta, p0, want0);
	uint64_t k = n / 100, hot = 0;
	for (uint64_t i = 0; i < k; i++)
		hot += cnt[i];
	double got = (double)hot / S, want = zeta(n, theta, k) / zn;
	if (fabs(got - want) > 0.05 * want)
		fail_msg("zipf(n=%llu, theta=%g): top 1%% of ranks drew %.4f, Zipf law %.4f", (unsigned long long)n, theta,
			 got, want);
	/* monotone over coarse groups of ranks (single ranks are too noisy) */
	uint64_t prev = UINT64_MAX;
	for (uint64_t lo = 0; lo + 100 <= n; lo += n / 10) {
		uint64_t s = 0;
		for (uint64_t i = lo; i < lo + 100; i++)
			s += cnt[i];
		assert_true(s <= prev);
		prev = s;
	}
	free(cnt);
}

static void test_zipf_sampler(void **state)
{
	(void)state;
	zipf_ranks(10000, 0.99, 1);
	zipf_ranks(16384, 0.99, 42);
	zipf_ranks(10000, 0.5, 2);
	/* the same seed draws the same ranks */
	struct pcb_zipf z;
	assert_int_equal(pcb_zipf_init(&z, 1000, 0.9), 0);
	struct pcb_rng a, b;
	pcb_rng_seed(&a, 5, 0);
	pcb_rng_seed(&b, 5, 0);
	for (int i = 0; i < 10000; i++)
		tl_assert_u64_eq(pcb_zipf_rank(&z, &a), pcb_zipf_rank(&z, &b));
	/* bad parameters are refused */
	assert_int_equal(pcb_zipf_init(&z, 100, 0), -1);
	assert_int_equal(pcb_zipf_init(&z, 100, 1), -1);
	assert_int_equal(pcb_zipf_init(&z, 100, NAN), -1);
	assert_int_equal(pcb_zipf_init(&z, 0, 0.5), -1);
	/* tiny ranges stay in range */
	for (uint64_t n = 1; n <= 3; n++) {
		assert_int_equal(pcb_zipf_init(&z, n, 0.99), 0);
		for (int i = 0; i < 1000; i++)
			assert_true(pcb_zipf_rank(&z, &a) < n);
	}
}

static void test_perm(void **state)
{
	(void)state;
	const uint64_t N = 10000;
	uint32_t *p = pcb_perm_new(N, 9, 1), *q = pcb_perm_new(N, 9, 1), *o = pcb_perm_new(N, 10, 1);
	assert_non_null(p);
	uint8_t *seen = calloc(N, 1);
	unsigned fixed = 0, same_o = 0;
	for (uint64_t i = 0; i < N; i++) {
		assert_true(p[i] < N);
		assert_false(seen[p[i]]);      /* a permutation: each value once */
		seen[p[i]] = 1;
		assert_int_equal(p[i], q[i]);  /* deterministic */
		fixed += p[i] == i;
		same_o += p[i] == o[i];
	}
	assert_true(fixed < 20);               /* ~1 expected for a random permutation */
	assert_true(same_o < 20);              /* another seed, another permutation */
	free(seen);
	free(p);
	free(q);
	free(o);
	uint32_t *one = pcb_perm_new(1, 1, 1);
	assert_non_null(one);
	assert_int_equal(one[0], 0);
	free(one);
	assert_null(pcb_perm_new((uint64_t)UINT32_MAX + 2, 1, 1));
}

static void test_seq(void **state)
{
	(void)state;
	struct gen g;
	gen_open(&g, "seq", 10, 1, 0, 1);
	for (int k = 0; k < 25; k++)
		tl_assert_u64_eq(gen_page(&g), (uint64_t)(k % 10));
	gen_close(&g);
	/* vCPU 2 of 4 starts half way and wraps */
	gen_open(&g, "seq", 10, 1, 2, 4);
	tl_assert_u64_eq(gen_page(&g), 5);
	for (int k = 6; k < 10; k++)
		gen_page(&g);
	tl_assert_u64_eq(gen_page(&g), 0);
	gen_close(&g);
	/* a single page */
	gen_open(&g, "seq", 1, 1, 0, 1);
	for (int k = 0; k < 3; k++)
		tl_assert_u64_eq(gen_page(&g), 0);
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
		cnt[gen_page(&g)]++;
	for (unsigned i = 0; i < N; i++)
		if (cnt[i] < 800 || cnt[i] > 1200)
			fail_msg("random: page %u drawn %u times of 100000 (expect ~1000)", i, cnt[i]);
	gen_close(&g);
}

static void test_zipf_workload(void **state)
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
	struct gen g;
	for (uint64_t n = 1; n <= 3; n++) {
		gen_open(&g, "zipf", n, 1, 0, 1);
		for (int k = 0; k < 1000; k++)
			assert_true(gen_page(&g) < n);
		gen_close(&g);
	}
	/* the hot pages are spread over both halves of the region */
	const uint64_t N = 10000;
	gen_open(&g, "zipf", N, 1, 0, 1);
	uint32_t *cnt = calloc(N, sizeof(*cnt));
	for (int k = 0; k < 100000; k++)
		cnt[gen_page(&g)]++;
	uint64_t lo = 0, hi = 0;
	for (uint64_t i = 0; i < N; i++)
		if (cnt[i] > 200) {
			if (i < N / 2)
				lo++;
			else
				hi++;
		}
	assert_true(lo > 5 && hi > 5);
	gen_close(&g);
	free(cnt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zipf_sampler),
		cmocka_unit_test(test_perm),
		cmocka_unit_test(test_seq),
		cmocka_unit_test(test_random_uniform),
		cmocka_unit_test(test_zipf_workload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
