/* run/metrics.c: hit rate, accuracy and lead time from a hand-made
 * first-touch record and install record (docs/metrics.md: how the prefetch metrics
 * are computed). */
#include "tests/lib/testlib.h"
#include "run/metrics.h"
#include "common/json.h"
#include "pager/probes.h"
#include "workloads/workload.h"
#include <stdatomic.h>

#define F PCB_TOUCH_FAULTED

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
	uint8_t kind[N] = { PCB_INST_BACKGROUND, PCB_INST_DEMAND, PCB_INST_BACKGROUND, PCB_INST_ZERO_BACKGROUND,
			    PCB_INST_BACKGROUND, PCB_INST_BACKGROUND, PCB_INST_DRAIN, 0, 0, 0 };
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
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	assert_non_null(j);
	pcb_json_obj_begin(j, NULL);
	pcb_prefetch_json(&pf, j, "prefetch");
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	const char *s = tl_mem_str(&m);
	tl_assert_json_valid(s);
	tl_assert_contains(s, "\"hit_rate\": 0.6,");
	tl_assert_contains(s, "\"accuracy\": 0.5,");
	tl_assert_contains(s, "\"guest_end_us\": 1000,");
	tl_mem_close(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_definitions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
