/* common/hist: log-linear buckets, percentiles, merge. */
#include "tests/lib/testlib.h"
#include "common/hist.h"
#include "common/json.h"
#include "common/util.h"
#include <math.h>
#include <stdlib.h>

static struct pcb_hist *hnew(void)
{
	struct pcb_hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	pcb_hist_init(h);
	return h;
}

static void test_log2(void **state)
{
	(void)state;
	for (unsigned b = 0; b < 64; b++) {
		uint64_t v = 1ull << b;
		assert_int_equal(pcb_log2_u64(v), b);
		if (b > 0)
			assert_int_equal(pcb_log2_u64(v - 1), b - 1);
		assert_int_equal(pcb_log2_u64(v | (v >> 1)), b);
	}
	assert_int_equal(pcb_log2_u64(UINT64_MAX), 63);
}

static void test_buckets_continuous(void **state)
{
	(void)state;
	assert_int_equal(PCB_HIST_BUCKETS, 2368);
	/* bucket b covers [lower(b), lower(b)+width(b)) and the next bucket starts right after */
	for (unsigned b = 0; b + 1 < PCB_HIST_BUCKETS; b++) {
		uint64_t lo = pcb_hist_lower(b), w = pcb_hist_width(b);
		if (pcb_hist_lower(b + 1) != lo + w)
			fail_msg("gap/overlap after bucket %u: [%llu,+%llu) then %llu", b, (unsigned long long)lo,
				 (unsigned long long)w, (unsigned long long)pcb_hist_lower(b + 1));
		assert_true(w >= 1);
		if (b + 1 < PCB_HIST_BUCKETS)
			assert_true(pcb_hist_width(b + 1) >= w);                  /* widths never shrink */
		assert_int_equal(pcb_hist_bucket(lo), b);
		assert_int_equal(pcb_hist_bucket(lo + w - 1), b);
		if (b >= PCB_HIST_SUB)
			assert_true((double)w / (double)lo <= 1.0 / PCB_HIST_SUB);   /* width <= lower/64 */
	}
	/* values below 64 are exact */
	for (uint64_t v = 0; v < PCB_HIST_SUB; v++) {
		assert_int_equal(pcb_hist_bucket(v), v);
		assert_int_equal(pcb_hist_width((unsigned)v), 1);
	}
	/* monotone over a sweep of values */
	unsigned prev = 0;
	for (uint64_t v = 0; v < (1ull << 44); v = v < 200000 ? v + 1 : v + v / 997) {
		unsigned b = pcb_hist_bucket(v);
		assert_true(b >= prev);
		assert_true(b < PCB_HIST_BUCKETS);
		prev = b;
	}
	/* overflow: everything at or past 2^42 lands in the last bucket */
	unsigned last = PCB_HIST_BUCKETS - 1;
	assert_int_equal(pcb_hist_bucket((1ull << (PCB_HIST_MAX_MSB + 1)) - 1), last);
	assert_int_equal(pcb_hist_bucket(1ull << (PCB_HIST_MAX_MSB + 1)), last);
	assert_int_equal(pcb_hist_bucket(UINT64_MAX), last);
	assert_true(pcb_hist_lower(last) + pcb_hist_width(last) == 1ull << (PCB_HIST_MAX_MSB + 1));
}

static void test_empty(void **state)
{
	(void)state;
	struct pcb_hist *h = hnew();
	assert_int_equal(pcb_hist_percentile(h, 50), 0);
	assert_int_equal(pcb_hist_percentile(h, 100), 0);
	assert_true(pcb_hist_mean(h) == 0);
	struct tl_mem m;
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_hist_json(j, NULL, h, 1);
	assert_int_equal(pcb_json_close(j), 0);
	tl_assert_json_valid(tl_mem_str(&m));
	tl_assert_contains(tl_mem_str(&m), "\"min_ns\": 0");
	tl_assert_contains(tl_mem_str(&m), "\"bins\": []");
	tl_mem_close(&m);
	free(h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* exact percentile: the ceil(p/100*n)-th smallest */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static void test_percentiles_small_exact(void **state)
{
	(void)state;
	struct pcb_hist *h = hnew();
	/* 1..60 once each: every percentile is exact */
	uint64_t v[60];
	for (unsigned i = 0; i < 60; i++) {
		v[i] = i + 1;
		pcb_hist_add(h, i + 1);
	}
	const double ps[] = { 1, 10, 25, 50, 75, 90, 99, 99.9, 100 };
	for (unsigned i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		tl_assert_u64_eq(pcb_hist_percentile(h, ps[i]), exact_pct(v, 60, ps[i]));
	tl_assert_u64_eq(pcb_hist_percentile(h, 50), 30);
	tl_assert_u64_eq(pcb_hist_percentile(h, 0), 1);      /* p <= 0: min */
	tl_assert_u64_eq(pcb_hist_percentile(h, 150), 60);   /* p > 100 clamps */
	tl_assert_u64_eq(h->count, 60);
	tl_assert_u64_eq(h->min, 1);
	tl_assert_u64_eq(h->max, 60);
	tl_assert_u64_eq(h->sum, 1830);
	assert_true(fabs(pcb_hist_mean(h) - 30.5) < 1e-9);
	/* a single value */
	pcb_hist_init(h);
	pcb_hist_add(h, 0);
	tl_assert_u64_eq(pcb_hist_percentile(h, 50), 0);
	tl_assert_u64_eq(h->min, 0);
	/* a single large value: clamped to [min, max], so exact */
	pcb_hist_init(h);
	pcb_hist_add(h, 123456789);
	tl_assert_u64_eq(pcb_hist_percentile(h, 50), 123456789);
	tl_assert_u64_eq(pcb_hist_percentile(h, 99.9), 123456789);
	free(h);
}

static void test_percentiles_error_bound(void **state)
{
	(void)state;
	const size_t N = 200000;
	uint64_t *v = malloc(N * sizeof(*v));
	struct pcb_hist *h = hnew();
	struct pcb_rng r;
	pcb_rng_seed(&r, 7, 0);
	for (size_t i = 0; i < N; i++) {
		/* log-uniform from 64 ns to ~1 h, the range the bound is claimed for */
		double e = 6 + pcb_rng_double(&r) * 35.5;
		v[i] = (uint64_t)exp2(e);
		pcb_hist_add(h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	double bound = pcb_hist_error_bound();
	assert_true(fabs(bound - 1.0 / 128) < 1e-12);
	for (double p = 0.1; p <= 100.0; p += 0.1) {
		uint64_t want = exact_pct(v, N, p), got = pcb_hist_percentile(h, p);
		double rel = fabs((double)got - (double)want) / (double)want;
		if (rel > bound)
			fail_msg("p%.1f: histogram says %llu, exact %llu: relative error %.5f > %.5f", p,
				 (unsigned long long)got, (unsigned long long)want, rel, bound);
	}
	{
		double got = (double)pcb_hist_percentile(h, 100), want = (double)v[N - 1];
		assert_true(fabs(got - want) / want <= bound);
		assert_true(got <= want);   /* clamped to max */
	}
	tl_assert_u64_eq(h->min, v[0]);
	/* every single value within the bound of its bucket's reported midpoint */
	for (uint64_t x = 64; x < (1ull << 40); x += x / 61 + 1) {
		pcb_hist_init(h);
		pcb_hist_add(h, x);
		pcb_hist_add(h, 64);                   /* keeps clamping out of the way */
		pcb_hist_add(h, 1ull << 41);
		uint64_t got = pcb_hist_percentile(h, 50);
		double rel = fabs((double)got - (double)x) / (double)x;
		if (rel > bound)
			fail_msg("value %llu reported as %llu (error %.5f)", (unsigned long long)x, (unsigned long long)got, rel);
	}
	free(v);
	free(h);
}

static void test_merge(void **state)
{
	(void)state;
	struct pcb_hist *a = hnew(), *b = hnew(), *all = hnew(), *empty = hnew();
	struct pcb_rng r;
	pcb_rng_seed(&r, 3, 1);
	for (int i = 0; i < 50000; i++) {
		uint64_t x = pcb_rng_below(&r, 1ull << (1 + i % 40));
		pcb_hist_add(i % 3 ? a : b, x);
		pcb_hist_add(all, x);
	}
	pcb_hist_merge(a, b);
	pcb_hist_merge(a, empty);     /* merging an empty histogram changes nothing (min stays) */
	tl_assert_u64_eq(a->count, all->count);
	tl_assert_u64_eq(a->sum, all->sum);
	tl_assert_u64_eq(a->min, all->min);
	tl_assert_u64_eq(a->max, all->max);
	assert_memory_equal(a->bucket, all->bucket, sizeof(a->bucket));
	const double ps[] = { 50, 90, 99, 99.9 };
	for (unsigned i = 0; i < 4; i++)
		tl_assert_u64_eq(pcb_hist_percentile(a, ps[i]), pcb_hist_percentile(all, ps[i]));
	/* merge into an empty one */
	pcb_hist_merge(empty, all);
	tl_assert_u64_eq(empty->min, all->min);
	tl_assert_u64_eq(empty->max, all->max);
	tl_assert_u64_eq(empty->count, all->count);
	free(a);
	free(b);
	free(all);
	free(empty);
}

static void test_add_buckets(void **state)
{
	(void)state;
	struct pcb_hist *h = hnew(), *ref = hnew();
	uint64_t *raw = calloc(PCB_HIST_BUCKETS, sizeof(uint64_t));
	const uint64_t vals[] = { 0, 5, 63, 64, 100, 5000, 1000000, 123456789 };
	for (unsigned i = 0; i < 8; i++) {
		raw[pcb_hist_bucket(vals[i])] += i + 1;
		for (unsigned k = 0; k <= i; k++)
			pcb_hist_add(ref, vals[i]);
	}
	pcb_hist_add_buckets(h, raw, PCB_HIST_BUCKETS);
	tl_assert_u64_eq(h->count, ref->count);
	assert_memory_equal(h->bucket, ref->bucket, sizeof(h->bucket));
	tl_assert_u64_eq(h->min, 0);
	/* max is the top of the highest bucket: >= the real max, within a bucket width */
	assert_true(h->max >= ref->max && h->max - ref->max < pcb_hist_width(pcb_hist_bucket(ref->max)));
	for (double p = 10; p <= 100; p += 10) {
		double got = (double)pcb_hist_percentile(h, p), want = (double)pcb_hist_percentile(ref, p);
		assert_true(fabs(got - want) <= want / 64 + 1);
	}
	/* n larger than the table is clamped, not overrun */
	pcb_hist_init(h);
	uint64_t *big = calloc(PCB_HIST_BUCKETS + 10, sizeof(uint64_t));
	big[PCB_HIST_BUCKETS + 5] = 99;
	big[3] = 1;
	pcb_hist_add_buckets(h, big, PCB_HIST_BUCKETS + 10);
	tl_assert_u64_eq(h->count, 1);
	free(big);
	free(raw);
	free(h);
	free(ref);
}

static void test_json(void **state)
{
	(void)state;
	struct pcb_hist *h = hnew();
	for (uint64_t i = 1; i <= 1000; i++)
		pcb_hist_add(h, i * 1000);
	struct tl_mem m;
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_json_obj_begin(j, NULL);
	pcb_hist_json(j, "lat", h, 1);
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	const char *s = tl_mem_str(&m);
	tl_assert_json_valid(s);
	const char *keys[] = { "count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "sum_ns", "bins" };
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char k[32];
		snprintf(k, sizeof(k), "\"%s\": ", keys[i]);
		tl_assert_contains(s, k);
	}
	tl_assert_contains(s, "\"count\": 1000");
	tl_assert_contains(s, "\"min_ns\": 1000,");
	tl_assert_contains(s, "\"max_ns\": 1000000,");
	tl_mem_close(&m);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log2),
		cmocka_unit_test(test_buckets_continuous),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_percentiles_small_exact),
		cmocka_unit_test(test_percentiles_error_bound),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_add_buckets),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
