/* workloads/sqlite.c: the database image is the same bytes for the same
 * seed wherever it is built, SQLite runs ops over a copy of it with its heap
 * in the region, and its own integrity check passes; bad knobs are refused. */
#include "tests/lib/testlib.h"
#include "common/image.h"
#include "common/util.h"
#include "workloads/workload.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NPAGES 4096   /* 16 MiB */

static uint8_t *build(const struct pcb_workload_ops *o, struct pcb_wl_params *prm)
{
	char why[256] = "";
	uint8_t *m = mmap(NULL, NPAGES * PCB_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	if (o->image_build(prm, m, why, sizeof(why)) != 0)
		fail_msg("image_build: %s", why);
	return m;
}

static void test_image_deterministic(void **state)
{
	(void)state;
	const struct pcb_workload_ops *o = pcb_workload_find("sqlite");
	assert_non_null(o);
	assert_true(pcb_wl_is_app(o));
	struct pcb_wl_params prm = { .npages = NPAGES, .seed = 5, .nvcpus = 1 };
	char why[256];
	assert_int_equal(pcb_wl_parse_opts(o, "value=200", &prm, why, sizeof(why)), 0);
	uint8_t *a = build(o, &prm), *b = build(o, &prm);
	assert_memory_equal(a, b, NPAGES * PCB_PAGE_SIZE);
	assert_memory_equal(a, "SQLite format 3", 16);
	prm.seed = 6;
	uint8_t *c = build(o, &prm);
	assert_true(memcmp(a, c, NPAGES * PCB_PAGE_SIZE) != 0);
	/* the heap area (the last 1/8 by default) is zero in the image */
	for (uint64_t i = NPAGES * PCB_PAGE_SIZE / 8 * 7; i < NPAGES * PCB_PAGE_SIZE; i++)
		if (a[i])
			fail_msg("heap byte %llu is %u in the image", (unsigned long long)i, a[i]);
	munmap(a, NPAGES * PCB_PAGE_SIZE);
	munmap(b, NPAGES * PCB_PAGE_SIZE);
	munmap(c, NPAGES * PCB_PAGE_SIZE);
}

/* Ops on a copy of the image, then the check: every update applied once. */
static void test_ops_and_check(void **state)
{
	(void)state;
	const struct pcb_workload_ops *o = pcb_workload_find("sqlite");
	struct pcb_wl_params prm = { .npages = NPAGES, .seed = 9, .nvcpus = 1 };
	char why[256] = "";
	assert_int_equal(pcb_wl_parse_opts(o, "value=100,read=1,update=1,scan=1,scan-len=10", &prm, why, sizeof(why)), 0);
	uint8_t *m = build(o, &prm);
	void *sh = NULL, *ts = NULL;
	assert_int_equal(o->init(&sh, &prm, why, sizeof(why)), 0);
	assert_int_equal(o->thread_init(&ts, sh, &prm, 0), 0);
	uint64_t updates = 0, rows = 0;
	for (int i = 0; i < 3000; i++) {
		struct pcb_app_op op = { 0 };
		if (o->app_op(ts, m, &op) != PCB_APP_OK)
			fail_msg("op %d: %s", i, op.why);
		assert_int_equal(op.mismatch, 0);
		updates += op.kind == PCB_ACC_WRITE;
		rows += op.rows;
	}
	assert_true(updates > 500 && updates < 1500);
	assert_true(rows > 3000);   /* scans read several rows */
	struct pcb_app_report rep;
	assert_int_equal(o->app_check(sh, &rep, why, sizeof(why)), 0);
	assert_string_equal(rep.integrity, "ok");
	tl_assert_u64_eq(rep.versions, updates);
	tl_assert_u64_eq(rep.rows_bad, 0);
	assert_true(rep.rows > 1000);
	o->thread_fini(ts);
	o->fini(sh);
	munmap(m, NPAGES * PCB_PAGE_SIZE);
}

/* Flip bytes of the database area of an image: a fresh guest on it sees it. */
static void test_damage_detected(void **state)
{
	(void)state;
	const struct pcb_workload_ops *o = pcb_workload_find("sqlite");
	struct pcb_wl_params prm = { .npages = NPAGES, .seed = 3, .nvcpus = 1 };
	char why[256] = "";
	uint8_t *m = build(o, &prm);
	/* page 5 of the database: a table leaf full of row values */
	for (unsigned i = 2048; i < 2064; i++)
		m[5 * PCB_PAGE_SIZE + i] ^= 0x5a;
	void *sh = NULL;
	assert_int_equal(o->init(&sh, &prm, why, sizeof(why)), 0);
	void *ts = NULL;
	assert_int_equal(o->thread_init(&ts, sh, &prm, 0), 0);
	struct pcb_app_op op = { 0 };
	assert_int_equal(o->app_op(ts, m, &op), PCB_APP_OK);   /* attaches */
	struct pcb_app_report rep;
	int rc = o->app_check(sh, &rep, why, sizeof(why));
	assert_true(rc != 0 || rep.rows_bad > 0 || strcmp(rep.integrity, "ok"));
	o->thread_fini(ts);
	o->fini(sh);
	munmap(m, NPAGES * PCB_PAGE_SIZE);
}

static void test_bad_knobs(void **state)
{
	(void)state;
	const struct pcb_workload_ops *o = pcb_workload_find("sqlite");
	char why[256];
	void *sh;
	struct pcb_wl_params prm = { .npages = NPAGES, .seed = 1, .nvcpus = 1 };
	assert_int_equal(pcb_wl_parse_opts(o, "records=1000000", &prm, why, sizeof(why)), 0);
	assert_int_equal(o->init(&sh, &prm, why, sizeof(why)), -1);
	tl_assert_contains(why, "records");
	prm.nopts = 0;
	assert_int_equal(pcb_wl_parse_opts(o, "heap-mb=15", &prm, why, sizeof(why)), 0);
	assert_int_equal(o->init(&sh, &prm, why, sizeof(why)), -1);
	tl_assert_contains(why, "heap-mb");
	prm.nopts = 0;
	assert_int_equal(pcb_wl_parse_opts(o, "read=0,update=0", &prm, why, sizeof(why)), 0);
	assert_int_equal(o->init(&sh, &prm, why, sizeof(why)), -1);
	struct pcb_wl_params small = { .npages = 1024, .seed = 1, .nvcpus = 1 };
	assert_int_equal(o->init(&sh, &small, why, sizeof(why)), -1);
	tl_assert_contains(why, "8M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image_deterministic),
		cmocka_unit_test(test_ops_and_check),
		cmocka_unit_test(test_damage_detected),
		cmocka_unit_test(test_bad_knobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
