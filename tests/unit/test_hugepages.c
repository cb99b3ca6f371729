/* run/hugepages: --page-size=2M validation (exit 64 naming the value)
 * and the hugetlb pool check against a fake sysfs directory (exit 69 with
 * the count and the reserve command). */
#include "tests/lib/testlib.h"
#include "run/hugepages.h"
#include "cli/options.h"
#include "common/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cfg_from(struct pcb_config *c, const char *args)
{
	int argc;
	char **argv = tl_argv(&argc, "pcbench %s", args);
	pcb_config_defaults(c);
	tl_stderr_begin();
	int r = pcb_config_parse(c, argc, argv, 1);
	tl_stderr_end();
	tl_argv_free(argv);
	return r;
}

static int validate(const char *args, char *why, size_t len)
{
	struct pcb_config c;
	why[0] = 0;
	if (cfg_from(&c, args) != 0)
		return -1;
	return pcb_huge_validate(&c, why, len);
}

static void test_page_size_option(void **state)
{
	(void)state;
	struct pcb_config c;
	assert_int_equal(cfg_from(&c, "--mem=64M"), 0);
	assert_int_equal(c.page_size, PCB_PAGE_4K);
	tl_assert_u64_eq(pcb_page_size_bytes(&c), 4096);
	assert_int_equal(cfg_from(&c, "--page-size=2M --mem=64M"), 0);
	tl_assert_u64_eq(pcb_page_size_bytes(&c), 2u << 20);
	assert_int_equal(cfg_from(&c, "--page-size=1G"), PCB_EXIT_USAGE);
	assert_int_equal(cfg_from(&c, "--page-size=2m"), PCB_EXIT_USAGE);
	assert_int_equal(cfg_from(&c, "--page-size=4096"), PCB_EXIT_USAGE);
}

static void test_validate(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(validate("--page-size=2M --mem=64M", why, sizeof(why)), 0);
	assert_int_equal(validate("--page-size=2M --mem=2M --policy=demand --workload=zipf", why, sizeof(why)), 0);
	/* 4K: none of the huge-page rules apply */
	assert_int_equal(validate("--mem=12K --install=move --guest=kvm", why, sizeof(why)), 0);
	assert_int_equal(validate("--page-size=2M --mem=63M", why, sizeof(why)), PCB_EXIT_USAGE);
	tl_assert_contains(why, "--mem");
	tl_assert_contains(why, "66060288");
	assert_int_equal(validate("--page-size=2M --mem=4K", why, sizeof(why)), PCB_EXIT_USAGE);
	tl_assert_contains(why, "'4096'");
	static const char *const combos[][2] = {
		{ "--install=move", "'move'" }, { "--install=continue", "'continue'" }, { "--guest=kvm", "'kvm'" },
		{ "--precopy=100ms", "'100000000ns'" }, { "--policy=local", "'local'" }, { "--baseline=run", "'run'" },
	};
	for (unsigned i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		char args[128];
		snprintf(args, sizeof(args), "--page-size=2M --mem=64M %s", combos[i][0]);
		assert_int_equal(validate(args, why, sizeof(why)), PCB_EXIT_USAGE);
		char opt[32];
		snprintf(opt, sizeof(opt), "%.*s", (int)(strchr(combos[i][0], '=') - combos[i][0]), combos[i][0]);
		tl_assert_contains(why, opt);
		tl_assert_contains(why, combos[i][1]);
		assert_null(strchr(why, '\n'));
	}
}

static char dir[64];

static void put(const char *name, unsigned long v)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%lu\n", v);
	fclose(f);
}

static void test_pool(void **state)
{
	(void)state;
	char why[512];
	snprintf(dir, sizeof(dir), "/tmp/pcb-huge-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* no such directory: the kernel has no 2 MiB hugetlb pages */
	char missing[96];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(pcb_huge_check_pool(missing, 1, why, sizeof(why)), PCB_EXIT_UNAVAILABLE);
	tl_assert_contains(why, "no 2 MiB hugetlb pages");

	put("nr_hugepages", 0);
	put("free_hugepages", 0);
	put("resv_hugepages", 0);
	assert_int_equal(pcb_huge_check_pool(dir, 32, why, sizeof(why)), PCB_EXIT_UNAVAILABLE);
	tl_assert_contains(why, "needs 32 free 2 MiB huge pages, 0 are available");
	tl_assert_contains(why, "echo 32 > /proc/sys/vm/nr_hugepages");
	/* 10 in the pool, 8 free of which 3 reserved by another mapping: 5 available */
	put("nr_hugepages", 10);
	put("free_hugepages", 8);
	put("resv_hugepages", 3);
	assert_int_equal(pcb_huge_check_pool(dir, 5, why, sizeof(why)), 0);
	assert_int_equal(pcb_huge_check_pool(dir, 6, why, sizeof(why)), PCB_EXIT_UNAVAILABLE);
	tl_assert_contains(why, "needs 6 free 2 MiB huge pages, 5 are available");
	tl_assert_contains(why, "echo 11 > /proc/sys/vm/nr_hugepages");
	assert_null(strchr(why, '\n'));
	const char *names[] = { "nr_hugepages", "free_hugepages", "resv_hugepages" };
	for (unsigned i = 0; i < 3; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_size_option),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
