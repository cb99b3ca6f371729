/* pager/common.c + lifecycle.c: the install times kept as a log of runs give
 * every page, once expanded (pcb_pager_install_us), the µs stamp it was
 * logged with; a run longer than one entry holds is split; a full log counts
 * what it dropped; the stamp saturates instead of wrapping. */
#include "tests/lib/testlib.h"
#include "pager/internal.h"
#include <stdlib.h>
#include <sys/mman.h>

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

/* The log's pages are mapped ahead of its writer (records_ahead): no record
 * is the first write to its page, which was a page fault on the demand path
 * once every 341 installs; and no more than 1.5 x RECORDS_AHEAD beyond the
 * last record is held. */
static void test_mapped_ahead(void **state)
{
	(void)state;
	void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(probe != MAP_FAILED);
	int can = madvise(probe, 4096, MADV_POPULATE_WRITE);
	munmap(probe, 4096);
	if (can < 0)
		skip();   /* Linux < 5.14: the records fault in as before */
	enum { CAP = 40000 };
	struct pcb_pager *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->cfg.npages = CAP;
	p->ilog_cap = CAP;
	size_t len = CAP * sizeof(*p->ilog), npg = (len + 4095) / 4096;
	p->ilog = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p->ilog != MAP_FAILED);
	unsigned char *vec = malloc(npg);
	assert_non_null(vec);
	records_map_from_here(p);   /* as pcb_pager_create and the threads' start do */
	for (uint64_t i = 0; i < CAP; i++) {
		assert_int_equal(mincore(p->ilog, len, vec), 0);
		size_t a = i * sizeof(*p->ilog), b = a + sizeof(*p->ilog) - 1, held = 0;
		if (!(vec[a / 4096] & 1) || !(vec[b / 4096] & 1))
			fail_msg("record %llu is the first write to its page", (unsigned long long)i);
		for (size_t k = 0; k < npg; k++)
			held += vec[k] & 1;
		if (held * 4096 > a + RECORDS_AHEAD * 3 / 2 + 4096)
			fail_msg("%zu pages mapped at record %llu", held, (unsigned long long)i);
		log_install_run(p, i, 1, 1);
	}
	tl_assert_u64_eq(atomic_load(&p->ilog_n), CAP);
	free(vec);
	munmap(p->ilog, len);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_mapped_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
