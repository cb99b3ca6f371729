/* common/util: size, duration and number parsing; size formatting; the RNG. */
#include "tests/lib/testlib.h"
#include "common/util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

/* One number parser under test: its name for messages, the value it must leave
 * untouched on error, and the unit its results print with. */
struct parser {
	const char *name;
	int (*parse)(const char *s, uint64_t *out);
	uint64_t untouched;
	const char *unit;
};
static const struct parser SIZE = { "pcb_parse_size", pcb_parse_size, 12345, "" };
static const struct parser DUR = { "pcb_parse_duration", pcb_parse_duration, 777, " ns" };

static void parse_ok(const struct parser *p, const char *s, uint64_t want)
{
	uint64_t v = p->untouched;
	if (p->parse(s, &v) != 0)
		fail_msg("%s(\"%s\") failed, want %llu", p->name, s, (unsigned long long)want);
	if (v != want)
		fail_msg("%s(\"%s\") = %llu%s, want %llu", p->name, s, (unsigned long long)v, p->unit,
			 (unsigned long long)want);
}

static void parse_bad(const struct parser *p, const char *s)
{
	uint64_t v = p->untouched;
	if (p->parse(s, &v) == 0)
		fail_msg("%s(\"%s\") accepted (%llu%s), want an error", p->name, s ? s : "NULL",
			 (unsigned long long)v, p->unit);
	assert_int_equal(v, p->untouched);   /* untouched on error */
}

static void size_ok(const char *s, uint64_t want) { parse_ok(&SIZE, s, want); }
static void size_bad(const char *s) { parse_bad(&SIZE, s); }
static void dur_ok(const char *s, uint64_t want) { parse_ok(&DUR, s, want); }
static void dur_bad(const char *s) { parse_bad(&DUR, s); }

static void test_parse_size(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("4096", 4096);
	size_ok("1", 1);
	size_ok("64k", 64 << 10);
	size_ok("64K", 64 << 10);
	size_ok("256M", 256ull << 20);
	size_ok("256m", 256ull << 20);
	size_ok("4G", 4ull << 30);
	size_ok("1.5G", 3ull << 29);
	size_ok("0.5K", 512);
	size_ok(".5K", 512);
	size_ok("2T", 2ull << 40);
	size_ok("1MiB", 1 << 20);
	size_ok("1MB", 1 << 20);
	size_ok("1Mi", 1 << 20);
	size_ok("4096B", 4096);
	size_ok("4096b", 4096);
	size_ok("16384T", 16384ull << 40);          /* 2^54: still exact */

	size_bad(NULL);
	size_bad("");
	size_bad("abc");
	size_bad("M");
	size_bad("-1");
	size_bad("-4K");
	size_bad(" 4K");
	size_bad("4K ");
	size_bad("4 K");
	size_bad("4X");
	size_bad("4KK");
	size_bad("4KiBB");
	size_bad("4Bi");          /* B takes no i */
	size_bad("1.3");          /* not a whole number of bytes */
	size_bad("0.1K");         /* 102.4 bytes */
	size_bad("inf");
	size_bad("nan");
	size_bad("16777216T");    /* 2^64: overflows */
	size_bad("99999999999999999999999");
	size_bad("1e3");          /* exponents, hex and dots are not sizes */
	size_bad("1E3K");
	size_bad("0x10");
	size_bad("1.2.3M");
	size_bad(".");
}

static void test_parse_duration(void **state)
{
	(void)state;
	dur_ok("0", 0);
	dur_ok("3", 3 * PCB_NSEC_PER_SEC);
	dur_ok("10s", 10 * PCB_NSEC_PER_SEC);
	dur_ok("1.5s", 1500 * PCB_NSEC_PER_MSEC);
	dur_ok("500ms", 500 * PCB_NSEC_PER_MSEC);
	dur_ok("300ms", 300 * PCB_NSEC_PER_MSEC);
	dur_ok("20us", 20 * PCB_NSEC_PER_USEC);
	dur_ok("200us", 200 * PCB_NSEC_PER_USEC);
	dur_ok("7ns", 7);
	dur_ok("2m", 120 * PCB_NSEC_PER_SEC);
	dur_ok("2min", 120 * PCB_NSEC_PER_SEC);
	dur_ok("0.001ms", 1000);
	dur_ok(".5s", 500 * PCB_NSEC_PER_MSEC);
	dur_ok("0.1s", 100 * PCB_NSEC_PER_MSEC);   /* rounded, not truncated to 99999999 */

	dur_bad(NULL);
	dur_bad("");
	dur_bad("1e3");
	dur_bad("0x10s");
	dur_bad("1..5s");
	dur_bad("abc");
	dur_bad("s");
	dur_bad("-1s");
	dur_bad("1 s");
	dur_bad(" 1s");
	dur_bad("1S");
	dur_bad("1h");
	dur_bad("1sec");
	dur_bad("1ms5");
	dur_bad("inf");
	dur_bad("nan");
	dur_bad("1e400");
	dur_bad("1000000000000s");   /* > 2^63 ns */
}

static void test_parse_u64_double(void **state)
{
	(void)state;
	uint64_t u = 5;
	assert_int_equal(pcb_parse_u64("0", &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(pcb_parse_u64("18446744073709551615", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(pcb_parse_u64("18446744073709551616", &u), -1);
	assert_int_equal(pcb_parse_u64("-1", &u), -1);
	assert_int_equal(pcb_parse_u64("+1", &u), -1);
	assert_int_equal(pcb_parse_u64(" 1", &u), -1);
	assert_int_equal(pcb_parse_u64("1 ", &u), -1);
	assert_int_equal(pcb_parse_u64("1.0", &u), -1);
	assert_int_equal(pcb_parse_u64("", &u), -1);
	assert_int_equal(pcb_parse_u64(NULL, &u), -1);
	assert_int_equal(pcb_parse_u64("0x10", &u), -1);

	double d = 0;
	assert_int_equal(pcb_parse_double("0.25", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(pcb_parse_double("-1.5", &d), 0);
	assert_true(d == -1.5);
	assert_int_equal(pcb_parse_double("1e-3", &d), 0);
	assert_true(d == 1e-3);
	assert_int_equal(pcb_parse_double("", &d), -1);
	assert_int_equal(pcb_parse_double(" 1", &d), -1);
	assert_int_equal(pcb_parse_double("1x", &d), -1);
	assert_int_equal(pcb_parse_double("inf", &d), -1);
	assert_int_equal(pcb_parse_double("nan", &d), -1);
	assert_int_equal(pcb_parse_double("1e999", &d), -1);
	assert_int_equal(pcb_parse_double(NULL, &d), -1);
}

static void test_fmt_size(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(pcb_fmt_size(0, b, sizeof(b)), "0 B");
	assert_string_equal(pcb_fmt_size(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(pcb_fmt_size(1024, b, sizeof(b)), "1 KiB");
	assert_string_equal(pcb_fmt_size(64ull << 20, b, sizeof(b)), "64 MiB");
	assert_string_equal(pcb_fmt_size(3ull << 29, b, sizeof(b)), "1.50 GiB");
	assert_string_equal(pcb_fmt_size(5ull << 40, b, sizeof(b)), "5 TiB");
	assert_string_equal(pcb_fmt_size(2048ull << 40, b, sizeof(b)), "2048 TiB");
}

static void test_exit_for_errno(void **state)
{
	(void)state;
	assert_int_equal(pcb_exit_for_errno(EPERM), PCB_EXIT_NOPERM);
	assert_int_equal(pcb_exit_for_errno(EACCES), PCB_EXIT_NOPERM);
	assert_int_equal(pcb_exit_for_errno(ENOSYS), PCB_EXIT_UNAVAILABLE);
	assert_int_equal(pcb_exit_for_errno(EINVAL), PCB_EXIT_UNAVAILABLE);
	assert_int_equal(pcb_exit_for_errno(ENOMEM), PCB_EXIT_OSERR);
	/* the exit codes are a documented contract */
	assert_int_equal(PCB_EXIT_USAGE, 64);
	assert_int_equal(PCB_EXIT_VERIFY, 1);
	assert_int_equal(PCB_EXIT_SOURCE_LOST, 74);
}

/* pcb_writev_full: a slow reader and a 1 ms timer whose handler does not
 * restart system calls make writev return short and fail with EINTR; every
 * byte arrives once, in order, across an empty piece, and all are counted. */
enum { WV_A = 300000, WV_B = 700001 };
static uint8_t wv_a[WV_A], wv_b[WV_B], wv_got[WV_A + WV_B + 8];

static void wv_tick(int sig)
{
	(void)sig;
}

struct wv_reader { int fd; size_t got; };

static void *wv_reader(void *arg)
{
	struct wv_reader *r = arg;
	static uint8_t extra[4096];   /* bytes beyond what was sent: counted, not stored */
	for (ssize_t n;; r->got += (size_t)n) {
		size_t room = sizeof(wv_got) - (r->got < sizeof(wv_got) ? r->got : sizeof(wv_got));
		n = read(r->fd, room ? wv_got + r->got : extra, room && room < 4096 ? room : 4096);
		if (n <= 0)
			break;
		usleep(20);
	}
	return NULL;
}

static void test_writev_full(void **state)
{
	(void)state;
	for (size_t i = 0; i < WV_A; i++)
		wv_a[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < WV_B; i++)
		wv_b[i] = (uint8_t)(i * 13 + 1);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct sigaction sa = { .sa_handler = wv_tick }, old;   /* no SA_RESTART */
	sigaction(SIGALRM, &sa, &old);
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };
	pthread_t th;
	struct wv_reader rd = { p[0], 0 };
	assert_int_equal(pthread_create(&th, NULL, wv_reader, &rd), 0);
	setitimer(ITIMER_REAL, &it, NULL);
	struct iovec v[3] = { { wv_a, WV_A }, { NULL, 0 }, { wv_b, WV_B } };
	uint64_t written = 5;
	int rc = pcb_writev_full(p[1], v, 3, &written);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	assert_int_equal(rc, 0);
	tl_assert_u64_eq(written, 5 + WV_A + WV_B);
	tl_assert_u64_eq(rd.got, WV_A + WV_B);
	assert_memory_equal(wv_got, wv_a, WV_A);
	assert_memory_equal(wv_got + WV_A, wv_b, WV_B);
}

static void test_rng(void **state)
{
	(void)state;
	struct pcb_rng a, b, c;
	pcb_rng_seed(&a, 42, 0);
	pcb_rng_seed(&b, 42, 0);
	pcb_rng_seed(&c, 42, 1);
	int same_c = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = pcb_rng_next(&a);
		assert_true(x == pcb_rng_next(&b));
		same_c += x == pcb_rng_next(&c);
	}
	assert_true(same_c < 5);   /* streams are independent */

	/* pcb_rng_below stays in range and hits every value of a small range */
	unsigned seen[7] = { 0 };
	for (int i = 0; i < 7000; i++) {
		uint64_t v = pcb_rng_below(&a, 7);
		assert_true(v < 7);
		seen[v]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(seen[i] > 800 && seen[i] < 1200);
	assert_int_equal(pcb_rng_below(&a, 0), 0);
	assert_int_equal(pcb_rng_below(&a, 1), 0);
	for (int i = 0; i < 1000; i++) {
		double d = pcb_rng_double(&a);
		assert_true(d >= 0 && d < 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_u64_double),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_exit_for_errno),
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_writev_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
