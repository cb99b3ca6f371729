/* common/image: deterministic page contents, zero fraction, digests, stamps. */
#include "tests/lib/testlib.h"
#include "common/image.h"
#include "common/util.h"
#include "common/imagefile.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void test_deterministic(void **state)
{
	(void)state;
	struct pcb_image a, b, c;
	pcb_image_init(&a, 1, 1000, 0.25);
	pcb_image_init(&b, 1, 1000, 0.25);
	pcb_image_init(&c, 2, 1000, 0.25);
	uint64_t pa[PCB_PAGE_WORDS], pb[PCB_PAGE_WORDS];
	unsigned differ = 0, nonzero = 0;
	for (uint64_t p = 0; p < 1000; p++) {
		pcb_image_fill(&a, p, pa);
		pcb_image_fill(&b, p, pb);
		assert_memory_equal(pa, pb, PCB_PAGE_SIZE);
		tl_assert_u64_eq(pcb_image_digest(&a, p), pcb_page_digest(pa));
		tl_assert_u64_eq(pcb_image_digest(&a, p), pcb_image_digest(&b, p));
		/* pcb_image_word agrees with the filled page, word by word */
		for (unsigned w = 0; w < PCB_STAMP_WORD; w++)
			if (pa[w] != pcb_image_word(&a, p, w))
				fail_msg("page %llu word %u: fill %llx, word() %llx", (unsigned long long)p, w,
					 (unsigned long long)pa[w], (unsigned long long)pcb_image_word(&a, p, w));
		tl_assert_u64_eq(pa[PCB_STAMP_WORD], 0);   /* write slot starts empty */
		if (!pcb_image_is_zero(&a, p)) {
			nonzero++;
			/* header: tag(seed) << 32 | page index */
			tl_assert_u64_eq(pa[0] & 0xffffffffu, p);
			tl_assert_u64_eq(pa[0] >> 32, a.tag);
			if (!pcb_image_is_zero(&c, p))
				differ += pcb_image_digest(&a, p) != pcb_image_digest(&c, p);
		} else {
			for (unsigned w = 0; w < PCB_PAGE_WORDS; w++)
				tl_assert_u64_eq(pa[w], 0);
		}
	}
	assert_true(nonzero > 600);
	assert_true(a.tag != c.tag);
	assert_true(a.tag != 0);
	assert_true(differ > 500);   /* another seed, other contents */
	/* two pages of one image never share data words: a misplaced page is detectable */
	uint64_t p1[PCB_PAGE_WORDS], p2[PCB_PAGE_WORDS];
	uint64_t x = 0, y = 1;
	while (pcb_image_is_zero(&a, x))
		x++;
	y = x + 1;
	while (pcb_image_is_zero(&a, y))
		y++;
	pcb_image_fill(&a, x, p1);
	pcb_image_fill(&a, y, p2);
	assert_true(pcb_page_digest(p1) != pcb_page_digest(p2));
	for (unsigned w = 1; w < PCB_STAMP_WORD; w++)
		assert_true(p1[w] != p2[w]);
}

static void test_digest_covers_data_not_stamp(void **state)
{
	(void)state;
	struct pcb_image im;
	pcb_image_init(&im, 5, 100, 0);
	uint64_t pg[PCB_PAGE_WORDS];
	pcb_image_fill(&im, 3, pg);
	uint64_t d = pcb_page_digest(pg);
	pg[PCB_STAMP_WORD] = pcb_stamp_make(3, 1);
	tl_assert_u64_eq(pcb_page_digest(pg), d);        /* the guest's write slot is not part of the digest */
	pg[0] ^= 1;
	assert_true(pcb_page_digest(pg) != d);           /* header */
	pg[0] ^= 1;
	pg[PCB_STAMP_WORD - 1] ^= 1ull << 63;
	assert_true(pcb_page_digest(pg) != d);           /* last data word */
	pg[PCB_STAMP_WORD - 1] ^= 1ull << 63;
	tl_assert_u64_eq(pcb_page_digest(pg), d);
}

static void zero_fraction(double want, uint64_t seed)
{
	const uint64_t N = 200000;
	struct pcb_image im;
	pcb_image_init(&im, seed, N, want);
	uint64_t z = 0;
	for (uint64_t p = 0; p < N; p++)
		z += pcb_image_is_zero(&im, p);
	double got = (double)z / (double)N;
	/* binomial: 5 standard deviations of slack */
	double tol = 5 * sqrt(want * (1 - want) / (double)N) + 1e-9;
	if (fabs(got - want) > tol)
		fail_msg("zero fraction %.4f for configured %.4f (seed %llu), tolerance %.4f", got, want,
			 (unsigned long long)seed, tol);
}

static void test_zero_fraction(void **state)
{
	(void)state;
	zero_fraction(0.25, 1);
	zero_fraction(0.25, 99);
	zero_fraction(0.5, 2);
	zero_fraction(0.01, 3);
	zero_fraction(0.9, 4);
	zero_fraction(0, 5);      /* exactly none */
	zero_fraction(1, 6);      /* exactly all */
	struct pcb_image im;
	pcb_image_init(&im, 1, 10, -1);
	tl_assert_u64_eq(im.zero_threshold, 0);
	pcb_image_init(&im, 1, 10, 2);
	tl_assert_u64_eq(im.zero_threshold, UINT64_MAX);
	/* the zero set is a deterministic function of (seed, page) */
	struct pcb_image a, b;
	pcb_image_init(&a, 77, 5000, 0.3);
	pcb_image_init(&b, 77, 5000, 0.3);
	for (uint64_t p = 0; p < 5000; p++)
		assert_int_equal(pcb_image_is_zero(&a, p), pcb_image_is_zero(&b, p));
}

static void test_stamps(void **state)
{
	(void)state;
	assert_true(pcb_stamp_valid(7, 0));                     /* never written */
	for (uint32_t seq = 1; seq < 1000; seq++) {
		uint64_t s = pcb_stamp_make(7, seq);
		assert_true(s != 0);
		assert_true(pcb_stamp_valid(7, s));
		assert_false(pcb_stamp_valid(8, s));            /* bound to its page */
		assert_false(pcb_stamp_valid(7, s ^ 1));        /* a flipped bit */
		assert_false(pcb_stamp_valid(7, s ^ (1ull << 40)));
		assert_int_equal(s >> 32, seq);
	}
	assert_false(pcb_stamp_valid(7, 1));
	assert_false(pcb_stamp_valid(7, UINT64_MAX));
	/* an image data word in the write slot (a stale or misplaced page) is not a valid stamp */
	struct pcb_image im;
	pcb_image_init(&im, 1, 64, 0);
	unsigned valid = 0;
	for (uint64_t p = 0; p < 64; p++)
		for (unsigned w = 1; w < PCB_STAMP_WORD; w++)
			valid += pcb_stamp_valid(p, pcb_image_word(&im, p, w));
	assert_int_equal(valid, 0);
}

/* A bytes image: contents, zero pages and digests are those of the bytes. */
static void test_bytes_image(void **state)
{
	(void)state;
	enum { N = 8 };
	static uint8_t mem[N * PCB_PAGE_SIZE];
	memset(mem, 0, sizeof(mem));
	mem[1 * PCB_PAGE_SIZE + 5] = 7;
	mem[3 * PCB_PAGE_SIZE + PCB_PAGE_SIZE - 1] = 1;   /* only the last byte: a page is zero only if all 4096 are */
	struct pcb_image im;
	pcb_image_init(&im, 1, N, 0.5);
	assert_int_equal(pcb_image_set_bytes(&im, mem, N), 0);
	for (uint64_t p = 0; p < N; p++)
		assert_int_equal(pcb_image_is_zero(&im, p), p != 1 && p != 3);
	uint8_t buf[PCB_PAGE_SIZE];
	pcb_image_fill(&im, 3, buf);
	assert_memory_equal(buf, mem + 3 * PCB_PAGE_SIZE, PCB_PAGE_SIZE);
	tl_assert_u64_eq(pcb_image_word(&im, 1, 0), 7ull << 40);
	/* the digest of a bytes image covers the whole page, the last word too */
	tl_assert_u64_eq(pcb_image_digest(&im, 3), pcb_page_digest_full(mem + 3 * PCB_PAGE_SIZE));
	assert_true(pcb_page_digest_full(mem + 3 * PCB_PAGE_SIZE) != pcb_page_digest_full(mem + 2 * PCB_PAGE_SIZE));
	assert_true(pcb_page_digest(mem + 3 * PCB_PAGE_SIZE) == pcb_page_digest(mem + 2 * PCB_PAGE_SIZE));
	pcb_image_free_bytes(&im);
	assert_null(im.zero_map);
}

/* The runs model: exactly round(f * n) zero pages, in few long runs, the same for a seed. */
static void test_zero_runs(void **state)
{
	(void)state;
	enum { N = 65536 };
	struct pcb_image u, a, b, c;
	pcb_image_init(&u, 5, N, 0.25);
	pcb_image_init(&a, 5, N, 0.25);
	pcb_image_init(&b, 5, N, 0.25);
	pcb_image_init(&c, 6, N, 0.25);
	assert_int_equal(pcb_image_zero_runs(&a, 1024), 0);
	assert_int_equal(pcb_image_zero_runs(&b, 1024), 0);
	assert_int_equal(pcb_image_zero_runs(&c, 1024), 0);
	tl_assert_u64_eq(pcb_image_zero_count(&a), N / 4);
	tl_assert_u64_eq(pcb_image_zero_count(&c), N / 4);
	uint64_t runs_a = 0, runs_u = 0, differ = 0, longest = 0, cur = 0;
	for (uint64_t p = 0; p < N; p++) {
		bool za = pcb_image_is_zero(&a, p), zu = pcb_image_is_zero(&u, p);
		assert_int_equal(za, pcb_image_is_zero(&b, p));   /* deterministic */
		differ += za != pcb_image_is_zero(&c, p);
		runs_a += za && (p == 0 || !pcb_image_is_zero(&a, p - 1));
		runs_u += zu && (p == 0 || !pcb_image_is_zero(&u, p - 1));
		cur = za ? cur + 1 : 0;
		longest = cur > longest ? cur : longest;
		/* a zero page of the model is all zero, a data page carries its header */
		tl_assert_u64_eq(pcb_image_word(&a, p, 0), za ? 0 : pcb_image_word(&u, p, 0) | (zu ? (a.tag << 32) | p : 0));
	}
	assert_true(differ > N / 8);                 /* another seed, another layout */
	assert_true(runs_a * 20 < runs_u);            /* runs, not scattered pages (~90 vs ~12000) */
	assert_true(longest >= 256);
	/* every fraction exactly, the extremes too */
	pcb_image_free_bytes(&c);
	pcb_image_init(&c, 6, 1000, 1.0);
	assert_int_equal(pcb_image_zero_runs(&c, 64), 0);
	tl_assert_u64_eq(pcb_image_zero_count(&c), 1000);
	pcb_image_free_bytes(&c);
	pcb_image_init(&c, 6, 1000, 0.0);
	assert_int_equal(pcb_image_zero_runs(&c, 64), 0);
	tl_assert_u64_eq(pcb_image_zero_count(&c), 0);
	pcb_image_free_bytes(&c);
	pcb_image_free_bytes(&a);
	pcb_image_free_bytes(&b);
}

static void test_map_file(void **state)
{
	(void)state;
	char path[] = "/tmp/pcb-test-image-XXXXXX", why[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t *m;
	size_t len;
	assert_int_equal(pcb_image_map_file(path, &m, &len, why, sizeof(why)), PCB_EXIT_DATAERR);   /* empty */
	tl_assert_contains(why, path);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(pcb_image_map_file(path, &m, &len, why, sizeof(why)), PCB_EXIT_DATAERR);   /* not whole pages */
	tl_assert_contains(why, "multiple of 4096");
	assert_int_equal(ftruncate(fd, 2 * PCB_PAGE_SIZE), 0);
	assert_int_equal(pcb_image_map_file(path, &m, &len, why, sizeof(why)), 0);
	assert_int_equal(len, 2 * PCB_PAGE_SIZE);
	assert_int_equal(m[0], 'x');
	munmap(m, len);
	close(fd);
	unlink(path);
	assert_int_equal(pcb_image_map_file(path, &m, &len, why, sizeof(why)), PCB_EXIT_USAGE);   /* gone */
}

/* stats: pages Z Z D D D Z Z D(dup of page 2) Z -- runs, duplicates, zlib */
static void test_stats(void **state)
{
	(void)state;
	enum { N = 9 };
	static uint8_t mem[N * PCB_PAGE_SIZE];
	memset(mem, 0, sizeof(mem));
	struct pcb_rng r;
	pcb_rng_seed(&r, 3, 0);
	for (unsigned i = 0; i < PCB_PAGE_SIZE; i++)
		mem[2 * PCB_PAGE_SIZE + i] = (uint8_t)pcb_rng_next(&r);   /* random: incompressible */
	memset(mem + 3 * PCB_PAGE_SIZE, 'a', PCB_PAGE_SIZE);
	memset(mem + 4 * PCB_PAGE_SIZE, 'b', PCB_PAGE_SIZE);
	memcpy(mem + 7 * PCB_PAGE_SIZE, mem + 2 * PCB_PAGE_SIZE, PCB_PAGE_SIZE);
	struct pcb_image_stats st;
	assert_int_equal(pcb_image_stats(mem, N, 0, &st), 0);
	tl_assert_u64_eq(st.zero_pages, 5);
	tl_assert_u64_eq(st.dup_pages, 1);
	tl_assert_u64_eq(st.zero_runs[0], 1);        /* page 8 */
	tl_assert_u64_eq(st.zero_runs[1], 2);        /* pages 0-1, 5-6 */
	tl_assert_u64_eq(st.data_runs[1], 1);        /* pages 2-4 */
	tl_assert_u64_eq(st.data_runs[0], 1);        /* page 7 */
	tl_assert_u64_eq(st.longest_data_run, 3);
	tl_assert_u64_eq(st.sampled_pages, 4);
	tl_assert_u64_eq(st.pages_under_half, 2);     /* 'a' and 'b' pages */
	assert_int_equal(pcb_image_stats(mem, N, 2, &st), 0);
	tl_assert_u64_eq(st.sampled_pages, 2);        /* every second non-zero page */
	tl_assert_u64_eq(st.stream_in_bytes, N * PCB_PAGE_SIZE);
	assert_true(st.stream_out_bytes < 3 * PCB_PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_digest_covers_data_not_stamp),
		cmocka_unit_test(test_zero_fraction),
		cmocka_unit_test(test_stamps),
		cmocka_unit_test(test_bytes_image),
		cmocka_unit_test(test_zero_runs),
		cmocka_unit_test(test_map_file),
		cmocka_unit_test(test_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
