/* run/metrics.c: hit rate, accuracy and lead time from a hand-made
 * first-touch record and install record (docs/metrics.md: how the prefetch metrics
 * are computed). */
#include "tests/lib/testlib.h"
#include "run/metrics.h"
#include "common/json.h"
#include "pager/probes.h"
#include "workloads/workload.h"
#include <stdatomic.h>
#include <string.h>

#define F PCB_TOUCH_FAULTED

/* the install record's kinds as the pager keeps them: 4 bits a page (pager/probes.h) */
static void pack_kinds(uint8_t *packed, const uint8_t *k, unsigned n)
{
	memset(packed, 0, pcb_kinds_bytes(n));
	for (unsigned i = 0; i < n; i++)
		pcb_kind_set(packed, i, k[i]);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pcb_kind_at(packed, i), k[i]);
}

/* pcb_prefetch_json inside an object, into m; checked for syntax. Close m after. */
static const char *prefetch_json(const struct pcb_prefetch *pf, struct tl_mem *m)
{
	tl_mem_open(m);
	struct pcb_json *j = pcb_json_open(m->fp);
	assert_non_null(j);
	pcb_json_obj_begin(j, NULL);
	pcb_prefetch_json(pf, j, "prefetch");
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	const char *s = tl_mem_str(m);
	tl_assert_json_valid(s);
	return s;
}

static void test_metrics_definitions(void **st)
{
	(void)st;
	/* times are µs + 1; the guest stops at 1000 µs (guest_end_us 1001) */
	enum { N = 10 };
	_Atomic uint32_t ft[N];
	uint32_t t[N] = {
		101,            /* 0: bg at 51, touched at 100: hit, used, lead 50 µs */
		201 | F,        /* 1: demand-installed after a faulting touch */
		0,              /* 2: bg at 301, never touched: unused */
		501,            /* 3: zero page from bg at 401, touched at 500: hit, used */
		601 | F,        /* 4: bg at 611 (won the race with the demand request): late */
		0,              /* 5: bg after the guest stopped: not in accuracy */
		0,              /* 6: drain after the guest stopped */
		901,            /* 7: present at first touch, but not by the background (pre-copy): hit, not bg */
		0, 0,           /* 8, 9: nothing */
	};
	uint32_t us[N] = { 51, 202, 301, 401, 611, 2001, 3001, 0, 0, 0 };
	uint8_t kinds[N] = { PCB_INST_BACKGROUND, PCB_INST_DEMAND, PCB_INST_BACKGROUND, PCB_INST_ZERO_BACKGROUND,
			    PCB_INST_BACKGROUND, PCB_INST_BACKGROUND, PCB_INST_DRAIN, 0, 0, 0 }, kind[(N + 1) / 2];
	pack_kinds(kind, kinds, N);
	for (int i = 0; i < N; i++)
		atomic_init(&ft[i], t[i]);
	struct pcb_prefetch pf;
	pcb_prefetch_compute_until(&pf, N, ft, us, kind, 1001);
	tl_assert_u64_eq(pf.touched, 5);
	tl_assert_u64_eq(pf.touched_faulted, 2);
	tl_assert_u64_eq(pf.hits, 3);                 /* hit rate 3/5 */
	tl_assert_u64_eq(pf.hits_background, 2);
	tl_assert_u64_eq(pf.bg_installed, 5);         /* 0 2 3 4 5 */
	tl_assert_u64_eq(pf.bg_before_end, 4);        /* 0 2 3 4 */
	tl_assert_u64_eq(pf.bg_used, 2);              /* accuracy 2/4 */
	tl_assert_u64_eq(pf.bg_late, 1);
	tl_assert_u64_eq(pf.bg_unused, 1);
	tl_assert_u64_eq(pf.lead.count, 2);
	tl_assert_u64_eq(pf.lead.min, 50000);
	tl_assert_u64_eq(pf.lead.max, 100000);
	/* without a known guest end every background page counts */
	pcb_prefetch_compute(&pf, N, ft, us, kind);
	tl_assert_u64_eq(pf.bg_before_end, 5);
	tl_assert_u64_eq(pf.bg_unused, 2);
	/* the JSON carries the ratios */
	pcb_prefetch_compute_until(&pf, N, ft, us, kind, 1001);
	struct tl_mem m;
	const char *s = prefetch_json(&pf, &m);
	tl_assert_contains(s, "\"hit_rate\": 0.6,");
	tl_assert_contains(s, "\"accuracy\": 0.5,");
	tl_assert_contains(s, "\"guest_end_us\": 1000,");
	tl_mem_close(&m);
}

/* A hit touched before its install was timestamped keeps its lead sample (as 0). */
static void test_lead_clamped_kept(void **st)
{
	(void)st;
	_Atomic uint32_t ft[2];
	atomic_init(&ft[0], 100);          /* touched at 99 µs, install stamped at 100 µs: a hit */
	atomic_init(&ft[1], 300);
	uint32_t us[2] = { 101, 201 };
	uint8_t kinds[2] = { PCB_INST_BACKGROUND, PCB_INST_BACKGROUND }, kind[(2 + 1) / 2];
	pack_kinds(kind, kinds, 2);
	struct pcb_prefetch pf;
	pcb_prefetch_compute_window(&pf, 2, ft, us, kind, 0, 1000);
	tl_assert_u64_eq(pf.lead.count, 2);
	tl_assert_u64_eq(pf.lead_clamped, 1);
	tl_assert_u64_eq(pf.lead.min, 0);
	tl_assert_u64_eq(pf.win.lead.count, 2);
	tl_assert_u64_eq(pf.win.lead_clamped, 1);
}

/* The migration window: [switch-over, last page present]; zero pages apart;
 * late prefetches with the time the guest waited for them. */
static void test_metrics_window(void **st)
{
	(void)st;
	enum { N = 8 };
	_Atomic uint32_t ft[N];
	/* the last page arrives at 500 µs (complete_us 501); the guest stops at 2000 µs */
	uint32_t t[N] = {
		101,            /* 0: bg at 51: hit, used, lead 50 µs */
		201 | F,        /* 1: bg at 261: the guest faulted at 200 and waited: late by 60 µs */
		301 | F,        /* 2: demand: a fault */
		151,            /* 3: zero page from bg at 101: zero hit (apart) */
		901,            /* 4: bg at 401, touched after the window: not in it (unused in it) */
		0,              /* 5: bg at 451, never touched */
		1501,           /* 6: demand-installed? no: bg at 301, touched at 1500: outside the window */
		251 | F,        /* 7: zero page demanded at 260: a zero fault */
	};
	uint32_t us[N] = { 51, 261, 302, 101, 401, 451, 301, 261 };
	uint8_t kinds[N] = { PCB_INST_BACKGROUND, PCB_INST_BACKGROUND, PCB_INST_DEMAND, PCB_INST_ZERO_BACKGROUND,
			    PCB_INST_BACKGROUND, PCB_INST_BACKGROUND, PCB_INST_BACKGROUND, PCB_INST_ZERO_DEMAND }, kind[(N + 1) / 2];
	pack_kinds(kind, kinds, N);
	for (int i = 0; i < N; i++)
		atomic_init(&ft[i], t[i]);
	struct pcb_prefetch pf;
	pcb_prefetch_compute_window(&pf, N, ft, us, kind, 2001, 501);
	const struct pcb_prefetch_window *w = &pf.win;
	tl_assert_u64_eq(w->end_us, 501);
	tl_assert_u64_eq(w->touched, 3);           /* 0 1 2 */
	tl_assert_u64_eq(w->hits, 1);              /* 0: hit rate 1/3 */
	tl_assert_u64_eq(w->faults, 2);
	tl_assert_u64_eq(w->zero_touched, 2);      /* 3 7 */
	tl_assert_u64_eq(w->zero_hits, 1);
	tl_assert_u64_eq(w->zero_faults, 1);
	tl_assert_u64_eq(w->bg_installed, 5);      /* 0 1 4 5 6 */
	tl_assert_u64_eq(w->bg_used, 1);           /* accuracy 1/5 */
	tl_assert_u64_eq(w->bg_late, 1);
	tl_assert_u64_eq(w->late_by.count, 1);
	tl_assert_u64_eq(w->late_by.min, 60000);
	tl_assert_u64_eq(w->lead.count, 1);
	tl_assert_u64_eq(w->lead.min, 50000);
	tl_assert_u64_eq(w->zero_bg_installed, 1);
	/* a longer run adds touches after the window: the window's figures stay */
	atomic_store(&ft[5], 3001);
	struct pcb_prefetch pf2;
	pcb_prefetch_compute_window(&pf2, N, ft, us, kind, 4001, 501);
	tl_assert_u64_eq(pf2.win.touched, w->touched);
	tl_assert_u64_eq(pf2.win.hits, w->hits);
	tl_assert_u64_eq(pf2.win.bg_used, w->bg_used);
	tl_assert_u64_eq(pf2.win.bg_installed, w->bg_installed);
	assert_true(pf2.touched > pf.touched && pf2.hits > pf.hits);   /* the whole-run figures move */
	/* JSON: the window object with its ratios */
	struct tl_mem m;
	const char *s = prefetch_json(&pf, &m);
	tl_assert_contains(s, "\"during_migration\": {");
	tl_assert_contains(s, "\"accuracy\": 0.2,");
	tl_assert_contains(s, "\"window_end_us\": 500,");
	tl_mem_close(&m);
}

/* QEMU's blocktime: only while every vCPU is stalled at once. */
static void test_blocktime_all(void **st)
{
	(void)st;
	struct pcb_stall a[] = { { 0, 10 }, { 20, 40 }, { 50, 60 } };
	struct pcb_stall b[] = { { 5, 25 }, { 30, 35 }, { 55, 100 } };
	struct pcb_stall c[] = { { 0, 100 } };
	const struct pcb_stall *s2[] = { a, b };
	uint64_t n2[] = { 3, 3 };
	/* a & b: [5,10] [20,25] [30,35] [55,60] = 20 */
	tl_assert_u64_eq(pcb_blocktime_all(s2, n2, 2), 20);
	const struct pcb_stall *s3[] = { a, b, c };
	uint64_t n3[] = { 3, 3, 1 };
	tl_assert_u64_eq(pcb_blocktime_all(s3, n3, 3), 20);
	const struct pcb_stall *s1[] = { a };
	uint64_t n1[] = { 3 };
	tl_assert_u64_eq(pcb_blocktime_all(s1, n1, 1), 40);   /* one vCPU: its own stalls */
	uint64_t n0[] = { 3, 0 };
	tl_assert_u64_eq(pcb_blocktime_all(s2, n0, 2), 0);    /* a vCPU never stalled */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_definitions),
		cmocka_unit_test(test_lead_clamped_kept),
		cmocka_unit_test(test_metrics_window),
		cmocka_unit_test(test_blocktime_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
