/* Job-file parser of `pcbench bench` (bench/benchjob.c): good files parse to
 * the matrix they describe; every bad file is refused with exit 65 and a
 * message naming the file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glob.h>
#include "common/util.h"
#include "bench/benchjob.h"

static struct pcb_job job;
static char why[1024];

static int parse(const char *text)
{
	why[0] = 0;
	return pcb_job_parse("configs/t.conf", text, &job, why, sizeof(why));
}

static void good_full(void **state)
{
	(void)state;
	const char *t =
		"# a comment\n"
		"[experiment]\n"
		"name = cmp1   # trailing comment\n"
		"description = two policies # and a comment\n"
		"policies = demand, sequential\n"
		"workloads = seq random,zipf\n"
		"reps = 4\n"
		"mem = 64M\n"
		"duration = 500ms\n"
		"seed = 7\n"
		"vary_seed = yes\n"
		"run_timeout = 90s\n"
		"faultmap_workload = zipf\n"
		"\n"
		"[link fast]\n"
		"; semicolon comment\n"
		"[link slow]\n"
		"source-delay = 200us\n";
	assert_int_equal(parse(t), 0);
	assert_string_equal(job.name, "cmp1");
	assert_string_equal(job.description, "two policies");
	assert_int_equal(job.npolicies, 2);
	assert_string_equal(job.policies[1], "sequential");
	assert_int_equal(job.nworkloads, 3);
	assert_string_equal(job.workloads[2], "zipf");
	assert_int_equal(job.reps, 4);
	assert_true(job.vary_seed);
	assert_int_equal(job.run_timeout_ns, 90 * PCB_NSEC_PER_SEC);
	assert_int_equal(job.base.mem, 64ull << 20);
	assert_int_equal(job.base.duration_ns, 500 * PCB_NSEC_PER_MSEC);
	assert_int_equal(job.base.seed, 7);
	assert_int_equal(job.nlinks, 2);
	assert_string_equal(job.links[1].name, "slow");
	assert_int_equal(job.links[1].nopts, 1);
	assert_string_equal(job.links[1].opts[0].key, "source-delay");
	assert_string_equal(job.links[1].opts[0].val, "200us");
	/* matrix: 2 policies x 3 workloads x 2 links x 4 reps */
	assert_int_equal(pcb_job_nruns(&job), 48);
	struct pcb_job_run r;
	pcb_job_run_at(&job, 0, &r);
	assert_string_equal(r.id, "demand-seq-fast-r1");
	pcb_job_run_at(&job, 1, &r);
	assert_string_equal(r.id, "sequential-seq-fast-r1");
	pcb_job_run_at(&job, 12, &r);          /* rep-major: second rep starts after all 12 cells */
	assert_string_equal(r.id, "demand-seq-fast-r2");
	assert_int_equal(pcb_job_seed(&job, &r), 8);
	pcb_job_run_at(&job, 47, &r);
	assert_string_equal(r.id, "sequential-zipf-slow-r4");
	/* every run id is distinct */
	for (unsigned i = 0; i < 48; i++)
		for (unsigned k = i + 1; k < 48; k++) {
			struct pcb_job_run a, b;
			pcb_job_run_at(&job, i, &a);
			pcb_job_run_at(&job, k, &b);
			assert_string_not_equal(a.id, b.id);
		}
}

static void good_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse("[experiment]\npolicies=demand\nworkloads=seq\n"), 0);
	assert_string_equal(job.name, "t");              /* from the file name */
	assert_int_equal(job.reps, 3);
	assert_int_equal(job.nlinks, 1);
	assert_string_equal(job.links[0].name, "loopback");
	assert_false(job.vary_seed);
	assert_string_equal(job.timeline, "all");
	assert_int_equal(pcb_job_nruns(&job), 3);
	struct pcb_job_run r;
	pcb_job_run_at(&job, 2, &r);
	assert_int_equal(pcb_job_seed(&job, &r), 1);    /* same seed for every rep by default */
}

static void good_baseline(void **state)
{
	(void)state;
	/* a baseline is any registered policy not in the list; it runs once per workload on link 0 */
	assert_int_equal(parse("[experiment]\npolicies=sequential\nworkloads=seq,zipf\nreps=2\nbaseline_policy=demand\n"
			       "[link a]\n[link b]\n"), 0);
	assert_int_equal(pcb_job_nruns(&job), 2 * (1 * 2 * 2 + 2));
	struct pcb_job_run r;
	pcb_job_run_at(&job, 4, &r);
	assert_string_equal(r.id, "demand-seq-a-r1");
	assert_int_equal(r.policy, 1);
	pcb_job_run_at(&job, 5, &r);
	assert_string_equal(r.id, "demand-zipf-a-r1");
	pcb_job_run_at(&job, 6, &r);
	assert_string_equal(r.id, "sequential-seq-a-r2");
	/* a link with a long-running source: options `pcbench dest` takes are fine */
	assert_int_equal(parse("[experiment]\npolicies=demand\nworkloads=seq\nmem=16M\n[link r]\nsource=127.0.0.1:7600\n"
			       "link=1gbit,1ms\n[link local]\nsource-delay=1ms\n"), 0);
}

static void good_variants(void **state)
{
	(void)state;
	/* [policy NAME]: a variant of a registered policy with options of its own; replay recorded
	 * with another seed */
	assert_int_equal(parse("[experiment]\npolicies=qemu, qemu-1ch, replay-s2\nworkloads=phase\nreps=1\n"
			       "[policy qemu-1ch]\npolicy=qemu\nchannels=1\n"
			       "[policy replay-s2]\npolicy=replay\nrecord_seed=2\nrecord_duration=1s\n"), 0);
	assert_int_equal(job.nvariants, 2);
	assert_null(pcb_job_variant_of(&job, 0));
	assert_string_equal(pcb_job_policy_real(&job, 0), "qemu");
	assert_string_equal(pcb_job_policy_real(&job, 1), "qemu");
	assert_string_equal(pcb_job_policy_name(&job, 1), "qemu-1ch");
	const struct pcb_job_variant *v = pcb_job_variant_of(&job, 1);
	assert_non_null(v);
	assert_int_equal(v->nopts, 1);
	assert_string_equal(v->opts[0].key, "channels");
	v = pcb_job_variant_of(&job, 2);
	assert_true(v->record && v->record_seed == 2);
	assert_string_equal(v->record_duration, "1s");
	char tp[256];
	pcb_job_trace_path(&job, v, 0, "D", tp, sizeof(tp));
	assert_string_equal(tp, "D/traces/phase-seed2.trace");
	struct pcb_job_run r;
	pcb_job_run_at(&job, 1, &r);
	assert_string_equal(r.id, "qemu-1ch-phase-loopback-r1");
}

#define LONG43 "abcdefghijabcdefghijabcdefghijabcdefghijabc"   /* 43 characters */
#define LONG44 LONG43 "d"

/* The syntax of the hand-written parser libinih replaced, kept: indented keys (no continuation
 * lines), ';' and '#' comment lines, '#' after whitespace ends a line, ';' inside a value,
 * CRLF line ends, a last line without '\n', a section without keys, a 43-character link name. */
static void good_syntax(void **state)
{
	(void)state;
	assert_int_equal(parse("  [ experiment ]  # comment\r\n"
			       "\tpolicies = demand ,sequential\r\n"
			       "    ; a comment line\r\n"
			       "  # another\r\n"
			       "description = a;b ;c # not this\r\n"
			       "policy-opt=x#y\r\n"
			       "  workloads=seq\n"
			       "[link " LONG43 "]\n"
			       "[link b] # no keys\n"
			       "link = 1gbit,1ms"), 0);
	assert_int_equal(job.npolicies, 2);
	assert_string_equal(job.policies[1], "sequential");
	assert_string_equal(job.description, "a;b ;c");
	assert_int_equal(job.nopts, 1);
	assert_string_equal(job.opts[0].val, "x#y");
	assert_int_equal(job.nworkloads, 1);
	assert_int_equal(job.nlinks, 2);
	assert_string_equal(job.links[0].name, LONG43);
	assert_int_equal(job.links[0].nopts, 0);
	assert_string_equal(job.links[1].name, "b");
	assert_int_equal(job.links[1].nopts, 1);
	assert_string_equal(job.links[1].opts[0].val, "1gbit,1ms");
}


/* A line of 1023 characters is read whole (libinih's own limit, 200, is raised to it: a cut line
 * would go on as a bad line of its own); a longer one is refused naming its line. */
static void line_limits(void **state)
{
	(void)state;
	static char text[4096];
	int n = snprintf(text, sizeof(text), "[experiment]\npolicies=demand\nworkloads=seq\ndescription = d #");
	memset(text + n, 'x', 1023 - 17);
	snprintf(text + n + 1023 - 17, sizeof(text) - (size_t)n - 1023 + 17, "\n[link a]\n");
	assert_int_equal(parse(text), 0);
	assert_string_equal(job.description, "d");
	assert_int_equal(job.nlinks, 1);
	assert_string_equal(job.links[0].name, "a");
	n = snprintf(text, sizeof(text), "[experiment]\npolicies=demand\nworkloads=seq\ndescription = ");
	memset(text + n, 'x', 1024 - 14);
	snprintf(text + n + 1024 - 14, sizeof(text) - (size_t)n - 1024 + 14, "\n[link a]\n");
	assert_int_equal(parse(text), PCB_EXIT_DATAERR);
	assert_string_equal(why, "configs/t.conf:4: line too long (max 1023 characters)");
}

struct bad {
	const char *text, *expect;   /* expect: substring of the message */
};

static void bad_files(void **state)
{
	(void)state;
	static const struct bad bad[] = {
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem=12Q\n", "configs/t.conf:4: key 'mem': invalid value for --mem: '12Q'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nfrobnicate=1\n", "configs/t.conf:4: key 'frobnicate': unknown key" },
		{ "[experiment]\npolicies=demand,nosuch\nworkloads=seq\n", "configs/t.conf:2: key 'policies': unknown policy 'nosuch'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq,walk\n", "configs/t.conf:3: key 'workloads': unknown workload 'walk'" },
		{ "[experiment]\npolicies=demand,demand\nworkloads=seq\n", "configs/t.conf:2: key 'policies': 'demand' is listed twice" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nreps=0\n", "configs/t.conf:4: key 'reps': invalid value '0'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nreps=three\n", "configs/t.conf:4: key 'reps'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nreps=2\nreps=3\n", "configs/t.conf:5: key 'reps': set twice" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem=64M\nmem=32M\n", "configs/t.conf:5: key 'mem': set twice" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\njson=x.json\n", "configs/t.conf:4: key 'json': set by the bench runner" },
		{ "[experiment]\npolicy=demand\nworkloads=seq\n", "configs/t.conf:2: key 'policy': set by the bench runner for every run (use 'policies" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nvary_seed=maybe\n", "configs/t.conf:4: key 'vary_seed': invalid value 'maybe'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\ntimeline=some\n", "configs/t.conf:4: key 'timeline'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nrun_timeout=10ms\n", "configs/t.conf:4: key 'run_timeout'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nname=bad/name\n", "configs/t.conf:4: key 'name': bad name" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nbaseline_policy=demand\n", "baseline_policy 'demand' is also listed" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nbaseline_policy=nosuch\n", "configs/t.conf:4: key 'baseline_policy': unknown policy 'nosuch'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nfaultmap_workload=zipf\n", "faultmap_workload 'zipf' is not one of the workloads" },
		{ "mem=64M\n[experiment]\n", "configs/t.conf:1: key 'mem': outside any section" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nthis line has no equals\n", "configs/t.conf:4: expected 'key = value'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem=\n", "configs/t.conf:4: key 'mem': empty value" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[experiment]\n", "configs/t.conf:4: [experiment] appears twice" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[links x]\n", "configs/t.conf:4: unknown section [links x]" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a]\n[link a]\n", "configs/t.conf:5: [link a] appears twice" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a b]\n", "configs/t.conf:4: bad link name 'a b'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a\n", "configs/t.conf:4: malformed section header" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a]\nsource-delay=soon\n", "configs/t.conf:5: key 'source-delay': invalid value for --source-delay: 'soon'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a]\nreps=3\n", "configs/t.conf:5: key 'reps': unknown key" },
		{ "[experiment]\nworkloads=seq\n", "configs/t.conf: [experiment] needs 'policies = ...'" },
		{ "[experiment]\npolicies=demand\n", "configs/t.conf: [experiment] needs 'workloads = ...'" },
		{ "# nothing\n", "configs/t.conf: no [experiment] section" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nduration=0\n", "duration 0 needs ops" },
		{ "[experiment]\npolicies=q1\nworkloads=seq\n[policy q1]\nchannels=1\n", "[policy q1] needs 'policy = ...'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[policy q1]\npolicy=qemu\n", "[policy q1] is not listed in policies" },
		{ "[experiment]\npolicies=q1\nworkloads=seq\n[policy q1]\npolicy=nosuch\n", "configs/t.conf:5: key 'policy': unknown policy 'nosuch'" },
		{ "[experiment]\npolicies=q1\nworkloads=seq\n[policy q1]\npolicy=qemu\nchannels=9\n", "configs/t.conf:6: key 'channels'" },
		{ "[experiment]\npolicies=r\nworkloads=seq\n[policy r]\npolicy=replay\n", "replay needs exactly one of record_seed" },
		{ "[experiment]\npolicies=r\nworkloads=seq\n[policy r]\npolicy=qemu\nrecord_seed=2\n", "record_seed is for policy = replay" },
		{ "[experiment]\npolicies=r\nworkloads=seq\n[policy r]\npolicy=replay\nrecord_seed=x\n", "configs/t.conf:6: key 'record_seed'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[sweep]\nlinks=1gbit,100us fast\nworkloads=seq\n", "configs/t.conf:5: key 'links'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[sweep]\nlinks=1gbit\nworkloads=walk\n", "configs/t.conf:6: key 'workloads': unknown workload 'walk'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[sweep]\nlinks=1gbit\n", "[sweep] needs both" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[sweep]\nbandwidth=1gbit\n", "configs/t.conf:5: key 'bandwidth': unknown key in [sweep]" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nverbose=1\n", "configs/t.conf:4: key 'verbose': unknown key" },
		/* a link with a long-running source runs `pcbench dest`: options of run only are refused */
		{ "[experiment]\npolicies=demand\nworkloads=seq\nsource-delay=1ms\n[link r]\nsource=127.0.0.1:7600\n",
		  "configs/t.conf: [link r]: key 'source-delay': does not apply to `pcbench dest`" },
		{ "[experiment]\npolicies=q1\nworkloads=seq\nsource=127.0.0.1:7600\n[policy q1]\npolicy=demand\nport=7\n",
		  "configs/t.conf: [link loopback]: key 'port': does not apply to `pcbench dest`" },
		/* the syntax libinih accepts and pcbench does not (libinih is set up for the old format) */
		{ "[experiment]\npolicies=demand\nworkloads: seq\n", "configs/t.conf:3: expected 'key = value', got 'workloads: seq'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a] x\n", "configs/t.conf:4: malformed section header '[link a] x'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a]#x\n", "configs/t.conf:4: malformed section header '[link a]#x'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a] ; x\n", "configs/t.conf:4: malformed section header" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link a #x]\n", "configs/t.conf:4: malformed section header '[link a #x]'" },
		{ "\xef\xbb\xbf[experiment]\npolicies=demand\nworkloads=seq\n", "configs/t.conf:1: expected 'key = value'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem = # 64M\n", "configs/t.conf:4: key 'mem': empty value" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem # = 64M\n", "configs/t.conf:4: expected 'key = value', got 'mem # = 64M'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n= 64M\n", "configs/t.conf:4: missing key before '='" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\nmem=64M\n  64M\n", "configs/t.conf:5: expected 'key = value', got '64M'" },
		{ "[experiment]\npolicies=demand\nworkloads=seq\n[link " LONG44 "]\n", "configs/t.conf:4: section header '[link " LONG44 "]' too long (at most 48 characters" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i].text);
		if (rc != PCB_EXIT_DATAERR || !strstr(why, bad[i].expect))
			fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, why, bad[i].expect);
		assert_null(strchr(why, '\n'));    /* one line */
	}
}

static void load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/pcb-test-jobXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *t = "[experiment]\npolicies=demand\nworkloads=seq\nmem=4K\nvcpus=999\n";
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	assert_int_equal(pcb_job_load(path, &job, why, sizeof(why)), PCB_EXIT_DATAERR);
	char expect[256];
	snprintf(expect, sizeof(expect), "%s:5: key 'vcpus': invalid value for --vcpus: '999'", path);
	assert_non_null(strstr(why, expect));
	unlink(path);
	/* a missing file is a usage error naming the file */
	assert_int_equal(pcb_job_load("/nonexistent/x.conf", &job, why, sizeof(why)), PCB_EXIT_USAGE);
	assert_non_null(strstr(why, "/nonexistent/x.conf"));
}

static void shipped_configs_parse(void **state)
{
	(void)state;
	/* every job file shipped in configs/ must be valid (tests run from the repository root) */
	glob_t g;
	assert_int_equal(glob("configs/*.conf", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 1);
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (pcb_job_load(g.gl_pathv[i], &job, why, sizeof(why)) != 0)
			fail_msg("%s", why);
	globfree(&g);
	/* the default experiment (issue 20): every baseline live on two links, enough repetitions
	 * that a Holm-corrected Mann-Whitney win is possible at all (n >= 6 for 7 comparisons), the
	 * local baseline, and a simulate sweep over seq, random, zipf, kv and phase */
	assert_int_equal(pcb_job_load("configs/default.conf", &job, why, sizeof(why)), 0);
	static const char *const want[] = { "demand", "sequential", "qemu", "criu", "pivot", "trend", "replay" };
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		bool found = false;
		for (unsigned p = 0; p < job.npolicies; p++)
			found |= !strcmp(pcb_job_policy_real(&job, p), want[k]);
		if (!found)
			fail_msg("configs/default.conf lacks policy %s", want[k]);
	}
	/* qemu twice: QEMU's default (no preempt) and postcopy-preempt (a variant asking for it) */
	unsigned qemus = 0, preempt = 0;
	for (unsigned p = 0; p < job.npolicies; p++) {
		if (strcmp(pcb_job_policy_real(&job, p), "qemu"))
			continue;
		qemus++;
		const struct pcb_job_variant *v = pcb_job_variant_of(&job, p);
		for (unsigned o = 0; v && o < v->nopts; o++)
			preempt += !strcmp(v->opts[o].key, "policy-opt") && strstr(v->opts[o].val, "preempt=on");
	}
	assert_int_equal(qemus, 2);
	assert_int_equal(preempt, 1);
	assert_string_equal(job.baseline, "local");
	assert_true(job.nlinks >= 2);
	assert_true(job.reps >= 6);
	assert_true(job.sweep.nworkloads >= 5 && job.sweep.nlinks >= 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_full),
		cmocka_unit_test(good_defaults),
		cmocka_unit_test(good_baseline),
		cmocka_unit_test(good_variants),
		cmocka_unit_test(good_syntax),
		cmocka_unit_test(line_limits),
		cmocka_unit_test(bad_files),
		cmocka_unit_test(load_file),
		cmocka_unit_test(shipped_configs_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
