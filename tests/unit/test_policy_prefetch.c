/* The pre-paging policies on hand-written fault sequences (qemu, pivot,
 * trend, replay, criu), their knobs, and a property test: for random fault
 * sequences and random interleavings of on_fault / next_batch / installs,
 * every background policy emits every page exactly once (together with the
 * demanded pages: every page covered, none twice). */
#include "tests/lib/testlib.h"
#include "common/util.h"
#include "policies/policy.h"
#include "wire/proto.h"
#include "workloads/workload.h"
#include <stdlib.h>
#include <unistd.h>

#define NP 1000

void pcb_policy_criu_chunk(const struct pcb_policy *p, uint64_t *last_len, uint64_t *chunks);
uint64_t pcb_policy_qemu_cursor(const struct pcb_policy *p);

struct fx {
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	struct pcb_range r[PCB_MAX_RANGES];
};

/* Open policy `name` over np pages with --policy-opt `opts` (may be ""). */
static int fx_try(struct fx *f, const char *name, uint64_t np, const char *opts, char *why, size_t whylen)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(pcb_ps_init(&f->ps, np), 0);
	const struct pcb_policy_ops *o = pcb_policy_find(name);
	assert_non_null(o);
	why[0] = 0;
	if (pcb_policy_parse_opts(&f->pol, o, opts, why, whylen) < 0)
		return -1;
	return pcb_policy_open(&f->pol, o, &f->ps, np, 1, why, whylen);
}

static void fx_open(struct fx *f, const char *name, uint64_t np, const char *opts)
{
	char why[512];
	if (fx_try(f, name, np, opts, why, sizeof(why)) != 0)
		fail_msg("opening policy %s (%s): %s", name, opts, why);
}

static void fx_close(struct fx *f)
{
	pcb_policy_close(&f->pol);
	pcb_ps_free(&f->ps);
}

/* A fault as the pager sees it: on_fault, then the page is demanded. */
static void fault(struct fx *f, uint64_t page)
{
	if (f->pol.ops->on_fault)
		f->pol.ops->on_fault(&f->pol, page, 0);
	pcb_bit_set(f->ps.demanded, page);
}

/* One batch of at most max_pages; its pages in order into pg. */
static unsigned batch(struct fx *f, unsigned max_pages, uint64_t *pg)
{
	struct pcb_batch b = { .r = f->r, .max_ranges = PCB_MAX_RANGES, .max_pages = max_pages };
	unsigned n = f->pol.ops->next_batch(&f->pol, &b);
	assert_int_equal(n, b.npages);
	unsigned k = 0;
	for (unsigned i = 0; i < b.nr; i++)
		for (uint64_t q = 0; q < f->r[i].count; q++)
			pg[k++] = f->r[i].first + q;
	assert_int_equal(k, n);
	return n;
}

#define EXPECT_PAGES(got, n, ...) do {                                                         \
	const uint64_t _w[] = { __VA_ARGS__ };                                                 \
	unsigned _nw = sizeof(_w) / sizeof(_w[0]);                                             \
	if ((n) != _nw)                                                                        \
		fail_msg("%u pages, expected %u", (unsigned)(n), _nw);                         \
	for (unsigned _i = 0; _i < _nw; _i++)                                                  \
		if ((got)[_i] != _w[_i])                                                       \
			fail_msg("page #%u is %llu, expected %llu", _i,                        \
				 (unsigned long long)(got)[_i], (unsigned long long)_w[_i]);   \
} while (0)

/* ---- qemu ------------------------------------------------------------------ */

/* QEMU migration/ram.c: one channel -- after a request for page p the
 * background stream continues right after p (last_seen_block / last_page
 * follow the queued page); a page already sent is skipped (unqueue_page's
 * dirty test) and does not move the stream.  Preempt: the stream keeps its
 * place whatever is requested. */
static void test_qemu_restarts_at_fault(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	fx_open(&f, "qemu", NP, "");
	assert_int_equal(f.pol.ops->end, PCB_POLICY_SOURCE);
	assert_int_equal(f.pol.ops->channels(&f.pol), 1);
	EXPECT_PAGES(pg, batch(&f, 4, pg), 0, 1, 2, 3);
	fault(&f, 700);
	/* the next background frame starts right after the requested page */
	EXPECT_PAGES(pg, batch(&f, 4, pg), 701, 702, 703, 704);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 705, 706);
	/* a request for a page already sent (present, or claimed by a batch) does not move it */
	pcb_ps_set_present(&f.ps, 100);
	fault(&f, 100);
	EXPECT_PAGES(pg, batch(&f, 1, pg), 707);
	fault(&f, 2);
	EXPECT_PAGES(pg, batch(&f, 3, pg), 708, 709, 710);
	/* a request behind the stream moves it back */
	fault(&f, 50);
	EXPECT_PAGES(pg, batch(&f, 3, pg), 51, 52, 53);
	/* at the end it wraps to what is left */
	fault(&f, 998);
	EXPECT_PAGES(pg, batch(&f, 3, pg), 999, 4, 5);
	fx_close(&f);
	/* preempt=on: the stream keeps its place; the urgent page goes on the other channel */
	fx_open(&f, "qemu", NP, "preempt=on");
	assert_int_equal(f.pol.ops->channels(&f.pol), 2);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 0, 1);
	uint64_t pos = pcb_policy_qemu_cursor(&f.pol);
	for (uint64_t x = 500; x < 900; x += 37)
		fault(&f, x);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 2, 3);
	tl_assert_u64_eq(pos + 2, pcb_policy_qemu_cursor(&f.pol));
	fx_close(&f);
	char why[256];
	assert_int_equal(fx_try(&f, "qemu", NP, "preempt=maybe", why, sizeof(why)), -1);
	tl_assert_contains(why, "'maybe'");
	fx_close(&f);
}

/* ---- pivot ----------------------------------------------------------------- */

static void test_pivot_expands_around_fault(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	fx_open(&f, "pivot", NP, "pivots=1,batch-order=bubble");
	/* no fault yet: address order */
	EXPECT_PAGES(pg, batch(&f, 2, pg), 0, 1);
	fault(&f, 500);
	EXPECT_PAGES(pg, batch(&f, 6, pg), 501, 499, 502, 498, 503, 497);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 504, 496);
	/* one pivot: a new fault replaces it */
	fault(&f, 10);
	EXPECT_PAGES(pg, batch(&f, 5, pg), 11, 9, 12, 8, 13);
	fx_close(&f);
}

static void test_pivot_multiple_pivots(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	fx_open(&f, "pivot", NP, "pivots=2,batch-order=bubble");
	fault(&f, 100);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 101, 99);
	fault(&f, 600);
	/* the newest pivot first, then the bubbles take turns */
	EXPECT_PAGES(pg, batch(&f, 8, pg), 601, 599, 102, 98, 602, 598, 103, 97);
	/* a third fault replaces the oldest (100); 600 keeps growing */
	fault(&f, 300);
	EXPECT_PAGES(pg, batch(&f, 6, pg), 301, 299, 603, 597, 302, 298);
	fx_close(&f);
}

static void test_pivot_bubbles_stop_at_each_other(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	fx_open(&f, "pivot", 40, "pivots=2,batch-order=bubble");
	fault(&f, 10);
	fault(&f, 14);
	/* 14 first: 15, 13; then 10: 11, 9; then 14: 16, 12 ... 10's forward
	 * edge meets 12 (sent by the other bubble) and stops */
	EXPECT_PAGES(pg, batch(&f, 8, pg), 15, 13, 11, 9, 16, 12, 8, 17);
	/* 14's backward edge met 11: only 10 grows backward, 14 forward */
	EXPECT_PAGES(pg, batch(&f, 4, pg), 7, 18, 6, 19);
	/* max-radius stops a bubble; the rest comes in address order */
	fx_close(&f);
	fx_open(&f, "pivot", 40, "pivots=1,max-radius=2,batch-order=bubble");
	fault(&f, 20);
	EXPECT_PAGES(pg, batch(&f, 7, pg), 21, 19, 22, 18, 0, 1, 2);
	fx_close(&f);
	/* pages the guest faulted in are stepped over, the edge goes on */
	fx_open(&f, "pivot", 40, "pivots=1,batch-order=bubble");
	pcb_bit_set(f.ps.demanded, 21);
	pcb_ps_set_present(&f.ps, 19);
	fault(&f, 20);
	EXPECT_PAGES(pg, batch(&f, 4, pg), 22, 18, 23, 17);
	fx_close(&f);
	/* region edges: page 0 has no backward edge */
	fx_open(&f, "pivot", 40, "pivots=1,step=2,batch-order=bubble");
	fault(&f, 0);
	EXPECT_PAGES(pg, batch(&f, 4, pg), 1, 2, 3, 4);
	fx_close(&f);
	char why[256];
	assert_int_equal(fx_try(&f, "pivot", 40, "pivots=0", why, sizeof(why)), -1);
	tl_assert_contains(why, "pivots");
	fx_close(&f);
}

static void test_batch_sorted_runs(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	/* default batch-order=address: pivot's P+1, P-1, P+2, ... travel as one run */
	fx_open(&f, "pivot", NP, "pivots=1");
	fault(&f, 500);
	struct pcb_batch b = { .r = f.r, .max_ranges = PCB_MAX_RANGES, .max_pages = 6 };
	assert_int_equal(f.pol.ops->next_batch(&f.pol, &b), 6);
	assert_int_equal(b.nr, 2);                  /* 497..499 and 501..503: the fault itself is demanded */
	tl_assert_u64_eq(f.r[0].first, 497);
	tl_assert_u64_eq(f.r[0].count, 3);
	tl_assert_u64_eq(f.r[1].first, 501);
	tl_assert_u64_eq(f.r[1].count, 3);
	fx_close(&f);
	/* a backward trend: ascending runs too */
	fx_open(&f, "trend", NP, "fill=none");
	for (uint64_t x = 900; x >= 891; x--)
		fault(&f, x);
	/* trend -1, no hits: a window of 4 from the fault (3 pages), sorted into one run */
	EXPECT_PAGES(pg, batch(&f, 64, pg), 888, 889, 890);
	/* the guest used 890 and faults on 889 (in flight): 2 hits -> 4 again, 888 already sent */
	fault(&f, 889);
	EXPECT_PAGES(pg, batch(&f, 64, pg), 886, 887);
	fx_close(&f);
	/* the helper: sort and merge */
	struct pcb_range r[5] = { { 10, 2 }, { 3, 1 }, { 12, 1 }, { 4, 2 }, { 20, 1 } };
	struct pcb_batch bb = { .r = r, .nr = 5, .max_ranges = 5, .npages = 7, .max_pages = 7 };
	pcb_batch_sort(&bb);
	assert_int_equal(bb.nr, 3);
	tl_assert_u64_eq(r[0].first, 3);
	tl_assert_u64_eq(r[0].count, 3);
	tl_assert_u64_eq(r[1].first, 10);
	tl_assert_u64_eq(r[1].count, 3);
	tl_assert_u64_eq(r[2].first, 20);
	char why[256];
	assert_int_equal(fx_try(&f, "pivot", NP, "batch-order=random", why, sizeof(why)), -1);
	tl_assert_contains(why, "'random'");
	fx_close(&f);
}

/* ---- trend ----------------------------------------------------------------- */

/* The guest walks pages from..to by `stride`: a page the policy prefetched is
 * used without a fault (installed at once), any other faults, and the policy
 * then decides.  Returns the windows (pages prefetched after each fault). */
static unsigned walk(struct fx *f, uint64_t from, uint64_t to, uint64_t stride, unsigned *win, unsigned maxwin)
{
	uint64_t pg[256];
	unsigned nw = 0;
	for (uint64_t x = from; x < to; x += stride) {
		if (pcb_bit_test(f->ps.claimed, x)) {
			pcb_ps_set_present(&f->ps, x);       /* a hit: no fault */
			continue;
		}
		fault(f, x);
		pcb_ps_set_present(&f->ps, x);
		unsigned n = batch(f, 256, pg);
		for (unsigned i = 0; i < n; i++)
			pcb_ps_set_present(&f->ps, pg[i]);
		if (nw < maxwin)
			win[nw++] = n;
	}
	return nw;
}

/* Leap (mm/swap_state.c): trend over windows of 8, 16, 32 deltas (more than
 * half), window hits + 2 rounded up to a power of two from 4, capped at
 * 1 << page_cluster = 8; hits inferred from faults. */
static void test_trend_stride3(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[256];
	unsigned win[64];
	/* stride 5 forward: before a trend, the 4-aligned block around each fault (3 pages);
	 * 5 equal deltas of the newest 8 make the trend (6th fault); then 3 pages along it
	 * (no hits: 0 + 2 -> 4), the guest uses all 3 -> 5 -> 8 (7 pages), then capped at 8 */
	fx_open(&f, "trend", NP, "fill=none,batch-order=trend");
	unsigned nw = walk(&f, 0, 200, 5, win, 64);
	assert_true(nw >= 8);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(win[i], 3);          /* block 4k..4k+3 minus the fault */
	assert_int_equal(win[5], 3);                  /* trend found: 4 pages from the fault along +5 */
	assert_int_equal(win[6], 7);                  /* 3 hits: 5 -> 8 */
	assert_int_equal(win[7], 7);                  /* 7 hits: 9 -> 16, capped at 8 */
	fx_close(&f);

	/* the same with page_cluster 6 (max-depth=64): 4, 8, 16, 32, 64 */
	fx_open(&f, "trend", NP, "fill=none,max-depth=64,batch-order=trend");
	nw = walk(&f, 0, NP, 5, win, 64);
	assert_true(nw >= 10);
	unsigned want[] = { 3, 7, 15, 31, 63 };
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(win[5 + i], want[i]);
	fx_close(&f);

	/* backward stride 3: prefetch along -3 */
	fx_open(&f, "trend", NP, "fill=none,batch-order=trend");
	for (uint64_t x = 900; x > 880; x -= 3)
		fault(&f, x);                          /* 900 ... 882: 7 faults, 6 deltas of -3 */
	EXPECT_PAGES(pg, batch(&f, 64, pg), 879, 876, 873);
	fx_close(&f);
	char why[256];
	assert_int_equal(fx_try(&f, "trend", NP, "max-depth=12", why, sizeof(why)), -1);
	tl_assert_contains(why, "'12'");
	fx_close(&f);
}

static void test_trend_majority_and_fallback(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[256];
	/* a majority, not unanimity: deltas +5 x5, +90, +5 (6 of 7 > 8/2) */
	fx_open(&f, "trend", NP, "fill=none,batch-order=trend");
	uint64_t seq[] = { 100, 105, 110, 115, 120, 210, 215, 220 };
	for (unsigned i = 0; i < 8; i++)
		fault(&f, seq[i]);
	EXPECT_PAGES(pg, batch(&f, 64, pg), 225, 230, 235);
	fx_close(&f);

	/* no majority: the aligned block of 4 around the fault, then address order */
	fx_open(&f, "trend", NP, "batch-order=trend");
	uint64_t noisy[] = { 500, 507, 505, 516, 513, 530 };
	for (unsigned i = 0; i < 6; i++)
		fault(&f, noisy[i]);
	EXPECT_PAGES(pg, batch(&f, 6, pg), 528, 529, 531, 0, 1, 2);
	fx_close(&f);

	/* the guest's first-touch record is not a hit source (faults only): touched
	 * prefetched pages do not grow the window */
	_Atomic uint32_t *ft = calloc(NP, sizeof(*ft));
	assert_non_null(ft);
	fx_open(&f, "trend", NP, "fill=none,batch-order=trend");
	f.pol.first_touch = ft;
	for (uint64_t p = 10; p <= 15; p++)
		fault(&f, p);
	EXPECT_PAGES(pg, batch(&f, 64, pg), 16, 17, 18);
	atomic_store(&ft[16], 5);
	fault(&f, 100);                               /* elsewhere: no fault-visible hit */
	assert_int_equal(batch(&f, 64, pg), 3);       /* still 4 (not 4 from a hit-grown 8) */
	fx_close(&f);
	free((void *)ft);
	char why[256];
	assert_int_equal(fx_try(&f, "trend", NP, "history=2", why, sizeof(why)), -1);
	tl_assert_contains(why, "history");
	fx_close(&f);
}

/* ---- criu ------------------------------------------------------------------ */

/* CRIU criu/uffd.c update_xfer_len: 64 KiB, +64 KiB per chunk (additive) to
 * 4 MiB, back to 64 KiB on a fault; one chunk = one batch (xfer_pages sends
 * one request per chunk); the policy declares one transfer in flight and
 * faults on queued pages not re-requested (handle_page_fault, is_page_queued). */
static void test_criu_chunks(void **st)
{
	(void)st;
	struct fx f;
	uint64_t *pg = calloc(70000, sizeof(*pg));
	uint64_t len, chunks;
	fx_open(&f, "criu", 70000, "");
	assert_int_equal(f.pol.ops->max_inflight, 1);
	assert_true(f.pol.ops->fault_waits_queued);
	assert_int_equal(f.pol.ops->batch_pages(&f.pol), 1024);   /* 4 MiB: the longest request */
	uint64_t next = 0;
	for (unsigned c = 0; c < 70; c++) {
		uint64_t want = 16u * (c + 1) < 1024 ? 16u * (c + 1) : 1024;   /* 16, 32, 48, ... 1024, 1024 */
		unsigned n = batch(&f, 1024, pg);
		tl_assert_u64_eq(n, want);                          /* one chunk per batch, never two */
		for (unsigned i = 0; i < n; i++)
			tl_assert_u64_eq(pg[i], next + i);          /* lowest missing first */
		pcb_policy_criu_chunk(&f.pol, &len, &chunks);
		tl_assert_u64_eq(len, want);
		tl_assert_u64_eq(chunks, c + 1);
		next += want;
		if (next > 60000)
			break;
	}
	/* a fault: one page (the policy adds nothing for it), the chunks restart at 64 KiB, additively */
	fault(&f, 69000);
	for (unsigned c = 1; c <= 3; c++) {
		unsigned n = batch(&f, 1024, pg);
		tl_assert_u64_eq(n, 16u * c);
		tl_assert_u64_eq(pg[0], next);
		next += n;
	}
	fx_close(&f);

	/* a chunk ends at a page already present (CRIU: the end of the iov) */
	fx_open(&f, "criu", 100, "min-chunk=32K,max-chunk=64K");
	pcb_ps_set_present(&f.ps, 5);
	assert_int_equal(batch(&f, 64, pg), 5);       /* 0..4: chunk 1 ends at page 5 */
	EXPECT_PAGES(pg, 5, 0, 1, 2, 3, 4);
	assert_int_equal(batch(&f, 64, pg), 16);      /* chunk 2: 32K + 32K = 64K (the cap) */
	tl_assert_u64_eq(pg[0], 6);
	/* a smaller batch than the chunk: the chunk goes on in the next batch, and a fault
	 * inside it is skipped */
	assert_int_equal(batch(&f, 4, pg), 4);        /* 22..25 of the 16-page chunk 22..37 */
	fault(&f, 27);
	assert_int_equal(batch(&f, 64, pg), 11);      /* the rest of that chunk: 26, 28..37 */
	assert_int_equal(pg[0], 26);
	assert_int_equal(pg[1], 28);
	fx_close(&f);
	char why[256];
	assert_int_equal(fx_try(&f, "criu", 100, "min-chunk=5000", why, sizeof(why)), -1);
	tl_assert_contains(why, "'5000'");
	fx_close(&f);
	assert_int_equal(fx_try(&f, "criu", 100, "min-chunk=1M,max-chunk=64K", why, sizeof(why)), -1);
	tl_assert_contains(why, "max-chunk");
	fx_close(&f);
	assert_int_equal(fx_try(&f, "criu", 100, "max-chunk=32M", why, sizeof(why)), -1);
	tl_assert_contains(why, "'32M'");
	fx_close(&f);
	free(pg);
}

/* ---- replay ---------------------------------------------------------------- */

static char tmpdir[64];

static const char *write_text(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void test_replay_order(void **st)
{
	(void)st;
	struct fx f;
	uint64_t pg[64];
	char opts[256];
	/* first-touch order: 7 5 9 0x10 (=16) 3; repeats and writes do not matter */
	snprintf(opts, sizeof(opts), "file=%s,rest=address", write_text("a.txt", "# trace\n7\n5 w\n7\n9 r 1\n0x10\n5 +\n3\n"));
	fx_open(&f, "replay", 20, opts);
	/* the next three of the working set, sorted inside the batch (batch-order=address) */
	EXPECT_PAGES(pg, batch(&f, 3, pg), 5, 7, 9);
	/* a page the guest already faulted in is skipped */
	fault(&f, 16);
	/* then the rest in address order */
	EXPECT_PAGES(pg, batch(&f, 6, pg), 3, 0, 1, 2, 4, 6);
	fx_close(&f);

	/* the binary form written by --record, rest=demand */
	struct pcb_atrace_rec rec[] = { { 10, 4, 0, 0 }, { 20, 2, 0, 1 }, { 30, 4, 1, 0 }, { 40, 0, 0, 0 } };
	struct pcb_atrace t = { .nvcpus = 2, .npages = 8, .count = 4, .rec = rec };
	char path[128];
	snprintf(path, sizeof(path), "%s/b.trc", tmpdir);
	assert_int_equal(pcb_atrace_save(path, &t), 0);
	snprintf(opts, sizeof(opts), "file=%s,rest=demand", path);
	fx_open(&f, "replay", 8, opts);
	EXPECT_PAGES(pg, batch(&f, 64, pg), 0, 2, 4);   /* one batch, sorted; rest=demand: nothing else */
	assert_int_equal(batch(&f, 64, pg), 0);
	fx_close(&f);
	/* batch-order=trace keeps the first-touch order inside a batch too */
	snprintf(opts, sizeof(opts), "file=%s,rest=demand,batch-order=trace", path);
	fx_open(&f, "replay", 8, opts);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 4, 2);
	EXPECT_PAGES(pg, batch(&f, 2, pg), 0);
	fx_close(&f);
	/* a descending trace becomes one ascending run per batch */
	snprintf(opts, sizeof(opts), "file=%s", write_text("down.txt", "9\n8\n7\n6\n5\n4\n3\n2\n1\n0\n"));
	fx_open(&f, "replay", 10, opts);
	struct pcb_batch bb = { .r = f.r, .max_ranges = 8, .max_pages = 4 };
	assert_int_equal(f.pol.ops->next_batch(&f.pol, &bb), 4);
	assert_int_equal(bb.nr, 1);
	tl_assert_u64_eq(f.r[0].first, 6);
	tl_assert_u64_eq(f.r[0].count, 4);
	fx_close(&f);
}

static void test_replay_errors(void **st)
{
	(void)st;
	struct fx f;
	char why[512], opts[256];
	assert_int_equal(fx_try(&f, "replay", 20, "", why, sizeof(why)), -1);
	tl_assert_contains(why, "--replay FILE");
	fx_close(&f);
	snprintf(opts, sizeof(opts), "file=%s/none.trc", tmpdir);
	assert_true(fx_try(&f, "replay", 20, opts, why, sizeof(why)) < 0);
	tl_assert_contains(why, "none.trc");
	fx_close(&f);
	/* a page beyond the region: a data error naming the page */
	snprintf(opts, sizeof(opts), "file=%s", write_text("big.txt", "1\n2\n25\n"));
	assert_int_equal(fx_try(&f, "replay", 20, opts, why, sizeof(why)), -PCB_EXIT_DATAERR);
	tl_assert_contains(why, "page 25");
	tl_assert_contains(why, "big.txt");
	fx_close(&f);
	snprintf(opts, sizeof(opts), "file=%s", write_text("bad.txt", "1\nxyz\n"));
	assert_int_equal(fx_try(&f, "replay", 20, opts, why, sizeof(why)), -PCB_EXIT_DATAERR);
	tl_assert_contains(why, "bad.txt:2");
	fx_close(&f);
	snprintf(opts, sizeof(opts), "file=%s,rest=later", write_text("ok.txt", "1\n"));
	assert_int_equal(fx_try(&f, "replay", 20, opts, why, sizeof(why)), -1);
	tl_assert_contains(why, "'later'");
	fx_close(&f);
	/* --replay FILE goes into the file knob; only for replay, only once */
	const struct pcb_policy_ops *rp = pcb_policy_find("replay"), *sq = pcb_policy_find("sequential");
	struct pcb_policy p;
	memset(&p, 0, sizeof(p));
	assert_int_equal(pcb_policy_parse_opts(&p, rp, "rest=demand", why, sizeof(why)), 0);
	assert_int_equal(pcb_policy_replay_file(&p, rp, "/x/y.trc", why, sizeof(why)), 0);
	assert_int_equal(p.nopts, 2);
	assert_string_equal(p.opts[1].key, "file");
	assert_string_equal(p.opts[1].val, "/x/y.trc");
	assert_int_equal(pcb_policy_replay_file(&p, rp, "/x/z.trc", why, sizeof(why)), -1);
	tl_assert_contains(why, "file=/x/y.trc");
	memset(&p, 0, sizeof(p));
	assert_int_equal(pcb_policy_replay_file(&p, sq, "/x/y.trc", why, sizeof(why)), -1);
	tl_assert_contains(why, "--policy=replay");
}

/* ---- property: every page exactly once ------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void run_property(const char *name, const char *opts, uint64_t seed, uint64_t np, _Atomic uint32_t *ft)
{
	struct fx f;
	fx_open(&f, name, np, opts);
	f.pol.first_touch = ft;
	uint8_t *emitted = calloc(np, 1), *dem = calloc(np, 1);
	uint64_t *inflight = calloc(np, sizeof(uint64_t)), ninfl = 0;
	uint64_t *pg = calloc(PCB_MAX_BATCH_PAGES, sizeof(uint64_t));
	assert_true(emitted && dem && inflight && pg);
	uint64_t s = seed | 1, idle = 0, last = rnd(&s) % np;
	unsigned mode = (unsigned)(seed % 4);   /* fault pattern: random, forward stride, backward stride, mixed */
	for (uint64_t step = 0; step < 200000 && idle < 3; step++) {
		unsigned op = (unsigned)(rnd(&s) % 10);
		if (op < 3) {
			/* a guest fault on a page that is not present */
			uint64_t page;
			switch (mode) {
			case 1: page = (last + 1 + rnd(&s) % 3) % np; break;
			case 2: page = (last + np - 3) % np; break;
			case 3: page = rnd(&s) % 2 ? (last + 7) % np : rnd(&s) % np; break;
			default: page = rnd(&s) % np; break;
			}
			last = page;
			if (pcb_ps_present(&f.ps, page))
				continue;
			fault(&f, page);
			/* a fault on a page in flight (emitted, not yet installed) is
			 * requested on demand too (the pager's EEXIST race); it is the
			 * policy's page, not a second one */
			if (!emitted[page] && !dem[page]++) {
				if (ft && !atomic_load(&ft[page]))
					atomic_store(&ft[page], (uint32_t)step + 1 + PCB_TOUCH_FAULTED);
			}
			/* the demand install: at once (the policy never holds it up) */
			pcb_ps_set_present(&f.ps, page);
			idle = 0;
		} else if (op < 8) {
			unsigned maxp = 1 + (unsigned)(rnd(&s) % (rnd(&s) % 4 ? 40 : 300));
			struct pcb_batch b = { .r = f.r, .max_ranges = 1 + (unsigned)(rnd(&s) % PCB_MAX_RANGES),
					       .max_pages = maxp };
			unsigned n = f.pol.ops->next_batch(&f.pol, &b);
			assert_int_equal(n, b.npages);
			assert_true(n <= maxp && b.nr <= b.max_ranges);
			for (unsigned i = 0; i < b.nr; i++)
				for (uint64_t q = f.r[i].first; q < f.r[i].first + f.r[i].count; q++) {
					assert_true(q < np);
					if (emitted[q]++)
						fail_msg("%s (%s, seed %llu): page %llu emitted twice", name, opts,
							 (unsigned long long)seed, (unsigned long long)q);
					if (dem[q])
						fail_msg("%s: page %llu emitted after it was demanded", name,
							 (unsigned long long)q);
					inflight[ninfl++] = q;
				}
			idle = n ? 0 : idle + 1;
		} else if (ninfl) {
			/* background installs arrive, in a random order; the guest touches some */
			uint64_t k = 1 + rnd(&s) % ninfl;
			for (uint64_t i = 0; i < k; i++) {
				uint64_t j = rnd(&s) % ninfl, q = inflight[j];
				inflight[j] = inflight[--ninfl];
				pcb_ps_set_present(&f.ps, q);
				if (ft && rnd(&s) % 2 && !atomic_load(&ft[q]))
					atomic_store(&ft[q], (uint32_t)step + 1);
			}
		}
	}
	/* no more faults: the policy runs dry only when every page is covered */
	for (int i = 0; i < 100000; i++) {
		struct pcb_batch b = { .r = f.r, .max_ranges = PCB_MAX_RANGES, .max_pages = 64 };
		unsigned n = f.pol.ops->next_batch(&f.pol, &b);
		if (!n)
			break;
		for (unsigned r = 0; r < b.nr; r++)
			for (uint64_t q = f.r[r].first; q < f.r[r].first + f.r[r].count; q++) {
				if (emitted[q]++ || dem[q])
					fail_msg("%s: page %llu emitted twice or after its demand", name, (unsigned long long)q);
				pcb_ps_set_present(&f.ps, q);
			}
	}
	for (uint64_t q = 0; q < np; q++)
		if (emitted[q] + (dem[q] ? 1 : 0) != 1)
			fail_msg("%s (%s, seed %llu, %llu pages): page %llu covered %d times", name, opts,
				 (unsigned long long)seed, (unsigned long long)np, (unsigned long long)q,
				 emitted[q] + (dem[q] ? 1 : 0));
	free(emitted);
	free(dem);
	free(inflight);
	free(pg);
	fx_close(&f);
}

static void test_property_exactly_once(void **st)
{
	(void)st;
	char replay[256];
	/* a trace over part of the region, with repeats, in a scrambled order */
	char *text = calloc(1, 64 * 1024);
	assert_non_null(text);
	for (unsigned i = 0, k = 0; i < 3000; i++)
		k += (unsigned)snprintf(text + k, 64 * 1024 - k, "%u\n", (i * 7919u) % 1500u);
	snprintf(replay, sizeof(replay), "file=%s,rest=address", write_text("prop.txt", text));
	free(text);
	unsigned tested = 0;
	for (unsigned i = 0; pcb_policies[i]; i++) {
		const struct pcb_policy_ops *o = pcb_policies[i];
		if (!o->background)
			continue;
		const char *variants[4] = { "" };
		unsigned nv = 1;
		char replay2[300];
		snprintf(replay2, sizeof(replay2), "%s,batch-order=trace", replay);
		if (!strcmp(o->name, "replay"))
			variants[0] = replay, variants[nv++] = replay2;
		else if (!strcmp(o->name, "pivot"))
			variants[nv++] = "pivots=1,step=3", variants[nv++] = "pivots=8,max-radius=5,batch-order=bubble";
		else if (!strcmp(o->name, "trend"))
			variants[nv++] = "history=4,max-depth=1", variants[nv++] = "batch-order=trend";
		else if (!strcmp(o->name, "criu"))
			variants[nv++] = "min-chunk=4K,max-chunk=8K";
		for (unsigned v = 0; v < nv; v++)
			for (uint64_t seed = 1; seed <= 40; seed++) {
				uint64_t np = seed % 3 == 0 ? 1500 : 1 + (seed * 977) % 3000;
				if (!strcmp(o->name, "replay") && np < 1500)
					np = 1500;
				_Atomic uint32_t *ft = seed % 2 ? calloc(np, sizeof(*ft)) : NULL;
				run_property(o->name, variants[v], seed, np, ft);
				free((void *)ft);
			}
		tested++;
	}
	assert_true(tested >= 6);   /* sequential qemu pivot trend replay criu */
}

static int setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pcb-policy-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_restarts_at_fault),
		cmocka_unit_test(test_pivot_expands_around_fault),
		cmocka_unit_test(test_pivot_multiple_pivots),
		cmocka_unit_test(test_pivot_bubbles_stop_at_each_other),
		cmocka_unit_test(test_batch_sorted_runs),
		cmocka_unit_test(test_trend_stride3),
		cmocka_unit_test(test_trend_majority_and_fallback),
		cmocka_unit_test(test_criu_chunks),
		cmocka_unit_test(test_replay_order),
		cmocka_unit_test(test_replay_errors),
		cmocka_unit_test(test_property_exactly_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
