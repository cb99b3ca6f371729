/* pcbench analyze on a synthetic results directory: the tidy CSV has one row
 * per run x metric x statistic, cells get median/min/max over repetitions,
 * latency percentiles come from merged histograms; summary.md's statistics are
 * analysis/stats.py's (tests/integ/bench_stats.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/hist.h"
#include "common/json.h"
#include "common/util.h"
#include "bench/analyze.h"

static char dir[64];

static void write_run(const char *pol, unsigned rep, double mig_ms, double bt_ms, uint64_t lat_ns, unsigned nlat)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/runs/%s-random-loopback-r%u.json", dir, pol, rep);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	struct pcb_json *j = pcb_json_open(f);
	pcb_json_obj_begin(j, NULL);
	pcb_json_str(j, "status", "ok");
	pcb_json_str(j, "git_revision", "test");
	pcb_json_obj_begin(j, "config");
	pcb_json_str(j, "policy", pol);
	pcb_json_str(j, "workload", "random");
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "results");
	pcb_json_obj_begin(j, "time");
	pcb_json_u64(j, "total_migration_ns", (uint64_t)(mig_ms * 1e6));
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "blocktime");
	pcb_json_u64(j, "total_ns", (uint64_t)(bt_ms * 1e6));
	pcb_json_obj_end(j);
	struct pcb_hist *h = malloc(sizeof(*h));
	pcb_hist_init(h);
	for (unsigned i = 0; i < nlat; i++)
		pcb_hist_add(h, lat_ns);
	pcb_json_obj_begin(j, "faults");
	pcb_json_u64(j, "count", h->count);
	pcb_hist_json(j, "latency", h, 1);
	pcb_json_obj_end(j);
	free(h);
	pcb_json_obj_begin(j, "prefetch");
	if (!strcmp(pol, "demand"))
		pcb_json_null(j, "accuracy");
	else
		pcb_json_dbl(j, "accuracy", 0.5);
	pcb_json_obj_end(j);
	pcb_json_obj_end(j);
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	fclose(f);
}

static char *slurp(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void analyze_synthetic(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pcb-test-analyzeXXXXXX");
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/runs", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/job.conf", dir);
	FILE *f = fopen(path, "w");
	fputs("[experiment]\nname = syn\npolicies = demand, sequential\nworkloads = random\nreps = 3\n", f);
	fclose(f);
	/* migration time: disjoint ranges (sequential clearly lower);
	 * blocktime: sequential's median lower but the ranges overlap */
	write_run("demand", 1, 2000, 40, 100000, 10);
	write_run("demand", 2, 2100, 60, 100000, 10);
	write_run("demand", 3, 2200, 80, 100000, 10);
	write_run("sequential", 1, 100, 10, 10000, 90);
	write_run("sequential", 2, 110, 50, 10000, 90);
	/* rep 3 of sequential is missing: the cell has n = 2, median = mean of the two */
	char why[512];
	int rc = pcb_analyze(dir, 0, why, sizeof(why));
	if (rc)
		fail_msg("pcb_analyze: %s", why);

	char *csv = slurp("results.csv");
	assert_non_null(strstr(csv, "demand-random-loopback-r2,demand,random,loopback,2,migration_time_ms,value,2100\n"));
	assert_non_null(strstr(csv, "sequential-random-loopback-r1,sequential,random,loopback,1,fault_latency_us,p50,"));
	assert_non_null(strstr(csv, "demand-random-loopback-r1,demand,random,loopback,1,accuracy,value,NA\n"));
	assert_null(strstr(csv, "-r3,sequential"));
	csv = slurp("summary.csv");
	assert_non_null(strstr(csv, "sequential-random-loopback,sequential,random,loopback,all,migration_time_ms,median,105\n"));
	assert_non_null(strstr(csv, "sequential-random-loopback,sequential,random,loopback,all,migration_time_ms,n,2\n"));
	assert_non_null(strstr(csv, "demand-random-loopback,demand,random,loopback,all,blocktime_ms,max,80\n"));
	assert_non_null(strstr(csv, "demand-random-loopback,demand,random,loopback,all,fault_latency_us,merged_count,30\n"));
	/* merged p50 of sequential: every value is 10 us */
	assert_non_null(strstr(csv, "sequential-random-loopback,sequential,random,loopback,all,fault_latency_us,merged_p50,10\n"));

	/* the descriptive head of summary.md; intervals and tests are analysis/stats.py's (SciPy) */
	char *md = slurp("plotdata/summary_head.md");
	assert_non_null(strstr(md, "Runs: 6 planned, 5 ok, 0 failed, 1 missing."));
	assert_null(strstr(md, "ranges disjoint"));     /* the min-max rule is gone */
	csv = slurp("summary.csv");
	assert_non_null(strstr(csv, "sequential-random-loopback,sequential,random,loopback,all,vcpu0_demand_same_cpu,runs,"));
	char *meta = slurp("plotdata/meta.gp");
	assert_non_null(strstr(meta, "array pol[2] = [\"demand\", \"sequential\"]"));
	assert_non_null(strstr(meta, "array cdf_n[2] = [30, 180]"));
	assert_non_null(strstr(meta, "have_progress = 0"));          /* no results.progress in these runs */
	assert_non_null(strstr(meta, "array present_ok[2] = [0, 0]")); /* no timelines */

	/* a results directory that is not one */
	char why2[512];
	assert_int_equal(pcb_analyze("/nonexistent-dir", 0, why2, sizeof(why2)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why2, "not a bench results directory"));
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(analyze_synthetic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
