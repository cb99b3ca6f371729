/* pager/pager.h: the 12-byte fault event keeps every field exact over its range,
 * and the timeline CSV (run/metrics.c) prints the same fields it was given. */
#include "tests/lib/testlib.h"
#include "pager/pager.h"
#include "run/metrics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void roundtrip(uint64_t t, uint64_t page, int vcpu, unsigned outcome)
{
	struct pcb_fault_ev e = pcb_fev_make(t, page, vcpu, outcome);
	tl_assert_u64_eq(pcb_fev_t_ns(&e), t);
	tl_assert_u64_eq(pcb_fev_page(&e), page);
	assert_int_equal(pcb_fev_vcpu(&e), vcpu);
	assert_int_equal(pcb_fev_outcome(&e), outcome);
}

static void test_fields_exact(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct pcb_fault_ev), 12);
	roundtrip(0, 0, -1, 0);
	roundtrip(1, 1, 0, 1);
	roundtrip(123456789012ull, 4194303, 255, 2);   /* 2 minutes, the last page of 16 GiB, the last vCPU */
	roundtrip(PCB_FEV_T_MAX, (1ull << 38) - 1, PCB_MAX_VCPUS - 1, 2);
	roundtrip(0xffffffffull, 0xffffffffull, 7, 0);   /* the low words carry into nothing */
	roundtrip(0x100000000ull, 0x100000000ull, -1, 1);
	/* --mem's limit (1e15 bytes) fits the page field */
	assert_true((uint64_t)(1e15 / 4096) < (1ull << 38));
	/* a time past 39 hours is stored as the largest, never wrapped to a small one */
	struct pcb_fault_ev e = pcb_fev_make(PCB_FEV_T_MAX + 5, 9, 3, 0);
	tl_assert_u64_eq(pcb_fev_t_ns(&e), PCB_FEV_T_MAX);
	tl_assert_u64_eq(pcb_fev_page(&e), 9);
	assert_int_equal(pcb_fev_vcpu(&e), 3);
}

static void test_timeline_rows(void **state)
{
	(void)state;
	struct pcb_fault_ev fe[2] = { pcb_fev_make(1500, 7, -1, 2), pcb_fev_make(5000000123ull, 300000, 1, 0) };
	uint32_t us[1] = { 0 };
	uint8_t kind[1] = { 0 };
	char path[] = "/tmp/pcb-test-faultlog-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pcb_timeline_write_records(path, fe, 2, 1, us, kind, NULL), 0);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[512];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	unlink(path);
	assert_string_equal(buf, "t_us,event,page,detail\n1.500,fault,7,inflight/vcpu-1\n5000000.123,fault,300000,requested/vcpu1\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_exact),
		cmocka_unit_test(test_timeline_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
