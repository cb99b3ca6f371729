/* pager/common.c + lifecycle.c: the install times kept as a log of runs give
 * every page, once expanded (pcb_pager_install_us), the µs stamp it was
 * logged with; a run longer than one entry holds is split; a full log counts
 * what it dropped; the stamp saturates instead of wrapping. */
#include "tests/lib/testlib.h"
#include "pager/internal.h"
#include <stdlib.h>

static struct pcb_pager *mk(uint64_t npages, uint64_t cap)
{
	struct pcb_pager *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->cfg.npages = npages;
	p->ilog_cap = cap;
	p->ilog = calloc(cap, sizeof(*p->ilog));
	p->inst_kind = calloc(pcb_kinds_bytes(npages), 1);
	assert_non_null(p->ilog);
	assert_non_null(p->inst_kind);
	p->st.t_switchover_ns = 1000000;
	return p;
}

static void rm(struct pcb_pager *p)
{
	free(p->ilog);
	free(p->inst_kind);
	free(p->inst_us);
	free(p);
}

static void test_expand(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct pcb_inst_run), PCB_INSTALL_LOG_RUN_BYTES);
	enum { N = 5000 };
	struct pcb_pager *p = mk(N, 2 * N + 64);
	static uint32_t ref[N];
	/* background runs of 16, a demand page inside a gap, a huge page's 512 */
	for (uint64_t first = 0; first < 320; first += 16) {
		log_install_run(p, first, 16, (uint32_t)(100 + first));
		for (uint64_t q = first; q < first + 16; q++)
			ref[q] = (uint32_t)(100 + first);
	}
	record_install(p, 400, PCB_INST_DEMAND, p->st.t_switchover_ns + 41999);   /* 41.999 µs: stamp 42 */
	ref[400] = 42;
	log_install_run(p, 1024, 512, 77);
	for (uint64_t q = 1024; q < 1536; q++)
		ref[q] = 77;
	/* longer than one entry: two entries, the second clipped at the region's end on expansion */
	log_install_run(p, 3000, PCB_IRUN_MAX + 10ull, 5);
	for (uint64_t q = 3000; q < N; q++)
		ref[q] = 5;
	tl_assert_u64_eq(atomic_load(&p->ilog_n), 20 + 1 + 1 + 2);
	tl_assert_u64_eq(p->ilog[22].first_n >> 40, PCB_IRUN_MAX);
	tl_assert_u64_eq(p->ilog[23].first_n & ((1ull << 40) - 1), 3000 + (uint64_t)PCB_IRUN_MAX);
	assert_int_equal(pcb_kind_at(p->inst_kind, 400), PCB_INST_DEMAND);
	const uint32_t *us = pcb_pager_install_us(p);
	assert_non_null(us);
	for (uint64_t q = 0; q < N; q++)
		if (us[q] != ref[q])
			fail_msg("page %llu: %u, logged %u", (unsigned long long)q, us[q], ref[q]);
	assert_ptr_equal(pcb_pager_install_us(p), us);   /* built once */
	tl_assert_u64_eq(atomic_load(&p->ilog_dropped), 0);
	/* the stamp: µs since switch-over plus one, saturated */
	tl_assert_u64_eq(install_stamp(p, p->st.t_switchover_ns), 1);
	tl_assert_u64_eq(install_stamp(p, p->st.t_switchover_ns + 5000ull * 1000000000ull), UINT32_MAX);
	rm(p);
}

static void test_full(void **state)
{
	(void)state;
	struct pcb_pager *p = mk(64, 2);
	log_install_run(p, 0, 1, 3);
	log_install_run(p, 1, 1, 4);
	log_install_run(p, 2, 1, 5);   /* no room: counted, not written */
	tl_assert_u64_eq(atomic_load(&p->ilog_dropped), 1);
	const uint32_t *us = pcb_pager_install_us(p);
	assert_non_null(us);
	assert_int_equal(us[0], 3);
	assert_int_equal(us[1], 4);
	assert_int_equal(us[2], 0);
	rm(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
