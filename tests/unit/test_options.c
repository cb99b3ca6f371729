/* cli/options: the one options table -> defaults, parsing, --help, JSON echo. */
#include "tests/lib/testlib.h"
#include "cli/options.h"
#include "common/json.h"
#include "common/util.h"
#include "policies/policy.h"
#include "workloads/workload.h"
#include <stdlib.h>

/* Parse "pcbench ARGS" into cfg; returns the parse result, stderr text in *err. */
static int parse(struct pcb_config *cfg, const char **err, const char *args)
{
	int argc;
	char **argv = tl_argv(&argc, "pcbench %s", args);
	pcb_config_defaults(cfg);
	tl_stderr_begin();
	int r = pcb_config_parse(cfg, argc, argv, 1);
	*err = tl_stderr_end();
	tl_argv_free(argv);
	return r;
}

/* How --help shows an option: "  --name=VALUE ", "  --name " (no value) or "  -v, --name ". */
static void help_lhs(const struct pcb_option *o, char *buf, size_t len)
{
	char sh[8] = "";
	bool value = o->type != PCB_OPT_FLAG && o->type != PCB_OPT_COUNT;
	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	snprintf(buf, len, value ? "  %s--%s=VALUE " : "  %s--%s ", sh, o->name);
}

static void test_defaults(void **state)
{
	(void)state;
	struct pcb_config c;
	pcb_config_defaults(&c);
	tl_assert_u64_eq(c.mem, 256ull << 20);
	assert_string_equal(c.policy, "sequential");
	assert_string_equal(c.workload, "seq");
	assert_int_equal(c.vcpus, 1);
	tl_assert_u64_eq(c.seed, 1);
	assert_true(c.zero_pages == 0.25);
	tl_assert_u64_eq(c.duration_ns, 2 * PCB_NSEC_PER_SEC);
	tl_assert_u64_eq(c.io_timeout_ns, 3 * PCB_NSEC_PER_SEC);
	assert_string_equal(c.json, "");
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.batch_pages, 64);
	/* every default parses as its own option (pcb_config_defaults aborts otherwise) */
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		if (!(o->scope & PCB_CMD_RUN))
			continue;
		char why[256];
		struct pcb_config c2 = c;
		if (pcb_config_set(&c2, o->name, o->def, why, sizeof(why)) != 0)
			fail_msg("default of --%s does not parse: %s", o->name, why);
		assert_memory_equal(&c, &c2, sizeof(c));
	}
}

static void test_good_values(void **state)
{
	(void)state;
	struct pcb_config c;
	const char *err;
	assert_int_equal(parse(&c, &err, "--mem=256M"), 0);
	tl_assert_u64_eq(c.mem, 256ull << 20);
	assert_int_equal(parse(&c, &err, "--mem=4G"), 0);
	tl_assert_u64_eq(c.mem, 4ull << 30);
	assert_int_equal(parse(&c, &err, "--mem=1.5G"), 0);
	tl_assert_u64_eq(c.mem, 3ull << 29);
	assert_int_equal(parse(&c, &err, "--mem=4096"), 0);
	tl_assert_u64_eq(c.mem, 4096);
	assert_int_equal(parse(&c, &err, "--mem=4K"), 0);
	tl_assert_u64_eq(c.mem, 4096);
	assert_int_equal(parse(&c, &err, "--mem 64M --vcpus 2"), 0);    /* separate value */
	tl_assert_u64_eq(c.mem, 64ull << 20);
	assert_int_equal(c.vcpus, 2);
	assert_int_equal(parse(&c, &err, "--duration=300ms --io-timeout=1s --source-delay=200us"), 0);
	tl_assert_u64_eq(c.duration_ns, 300 * PCB_NSEC_PER_MSEC);
	tl_assert_u64_eq(c.io_timeout_ns, PCB_NSEC_PER_SEC);
	tl_assert_u64_eq(c.source_delay_ns, 200 * PCB_NSEC_PER_USEC);
	assert_int_equal(parse(&c, &err, "--duration=1.5s"), 0);
	tl_assert_u64_eq(c.duration_ns, 1500 * PCB_NSEC_PER_MSEC);
	assert_int_equal(parse(&c, &err, "--duration=0 --ops=1000"), 0);
	tl_assert_u64_eq(c.duration_ns, 0);
	tl_assert_u64_eq(c.ops, 1000);
	assert_int_equal(parse(&c, &err, "--vcpus=256 --seed=18446744073709551615"), 0);
	assert_int_equal(c.vcpus, 256);
	assert_true(c.seed == UINT64_MAX);
	assert_int_equal(parse(&c, &err, "--zero-pages=0 --write-ratio=1 --zipf-theta=0.5"), 0);
	assert_true(c.zero_pages == 0 && c.write_ratio == 1 && c.zipf_theta == 0.5);
	assert_int_equal(parse(&c, &err, "--json=/tmp/x.json -v -v"), 0);
	assert_string_equal(c.json, "/tmp/x.json");
	assert_int_equal(c.verbose, 2);
	assert_int_equal(parse(&c, &err, "--mem=64M --mem=128M"), 0);   /* last one wins */
	tl_assert_u64_eq(c.mem, 128ull << 20);
	/* every registered policy and workload is accepted by name */
	for (unsigned i = 0; pcb_policies[i]; i++) {
		char a[64];
		snprintf(a, sizeof(a), "--policy=%s", pcb_policies[i]->name);
		assert_int_equal(parse(&c, &err, a), 0);
		assert_string_equal(c.policy, pcb_policies[i]->name);
	}
	for (unsigned i = 0; pcb_workloads[i]; i++) {
		char a[64];
		snprintf(a, sizeof(a), "--workload=%s", pcb_workloads[i]->name);
		assert_int_equal(parse(&c, &err, a), 0);
		assert_string_equal(c.workload, pcb_workloads[i]->name);
	}
	assert_string_equal(err, "");
}

/* A bad argument: PCB_EXIT_USAGE, exactly one line on stderr that contains every needle. */
static void bad(const char *args, const char *needle1, const char *needle2)
{
	struct pcb_config c;
	const char *err;
	int r = parse(&c, &err, args);
	if (r != PCB_EXIT_USAGE)
		fail_msg("'%s': parse returned %d, want %d", args, r, PCB_EXIT_USAGE);
	if (tl_count_lines(err) != 1)
		fail_msg("'%s': want exactly one line on stderr, got: %s", args, err);
	tl_assert_contains(err, "pcbench: ");
	tl_assert_contains(err, needle1);
	if (needle2)
		tl_assert_contains(err, needle2);
}

static void test_bad_values(void **state)
{
	(void)state;
	bad("--mem=0", "--mem", "'0'");
	bad("--mem=abc", "--mem", "'abc'");
	bad("--mem=1000", "--mem", "'1000'");
	bad("--mem=4097", "--mem", "multiple of 4 KiB");
	bad("--mem=1.3", "--mem", "'1.3'");
	bad("--mem=-4K", "--mem", "'-4K'");
	bad("--mem=", "--mem", "''");
	bad("--mem=2000T", "--mem", "'2000T'");
	bad("--policy=nope", "--policy", "'nope'");
	bad("--policy=", "--policy", "''");
	bad("--workload=nope", "--workload", "'nope'");
	bad("--vcpus=0", "--vcpus", "'0'");
	bad("--vcpus=257", "--vcpus", "'257'");
	bad("--vcpus=-1", "--vcpus", "'-1'");
	bad("--vcpus=1.5", "--vcpus", "'1.5'");
	bad("--vcpus=4294967297", "--vcpus", "'4294967297'");   /* would wrap to 1 as unsigned */
	bad("--seed=-1", "--seed", "'-1'");
	bad("--zero-pages=1.5", "--zero-pages", "'1.5'");
	bad("--zero-pages=nan", "--zero-pages", "'nan'");
	bad("--write-ratio=-0.1", "--write-ratio", "'-0.1'");
	bad("--zipf-theta=1", "--zipf-theta", "'1'");
	bad("--zipf-theta=0", "--zipf-theta", "'0'");
	bad("--duration=abc", "--duration", "'abc'");
	bad("--duration=-1s", "--duration", "'-1s'");
	bad("--duration=5h", "--duration", "'5h'");
	bad("--io-timeout=0", "--io-timeout", "'0'");
	bad("--io-timeout=100us", "--io-timeout", "'100us'");
	bad("--source-delay=11s", "--source-delay", "'11s'");
	bad("--port=65536", "--port", "'65536'");
	bad("--batch=0", "--batch", "'0'");
	bad("--batch=4097", "--batch", "'4097'");
	bad("--window=0", "--window", "'0'");
	bad("--ops=abc", "--ops", "'abc'");
	bad("--trace=maybe", "--trace", "'maybe'");
	bad("--trace=", "--trace", "''");
	bad("--frobnicate=7", "--frobnicate", NULL);
	bad("--frobnicate", "--frobnicate", NULL);
	bad("--mem", "--mem", "needs a value");
	bad("--vcpus=2 --mem", "--mem", "needs a value");
	bad("mem=64M", "mem=64M", NULL);
	bad("-x", "-x", NULL);
	/* the first bad option stops parsing */
	bad("--mem=abc --vcpus=0", "--mem", "'abc'");
	{
		char longname[200];
		memset(longname, 'a', sizeof(longname));
		longname[sizeof(longname) - 1] = 0;
		char a[256];
		snprintf(a, sizeof(a), "--%s=1", longname);
		bad(a, longname, NULL);
	}
	{
		char longval[5000];
		memset(longval, 'x', sizeof(longval));
		memcpy(longval, "--json=", 7);
		longval[sizeof(longval) - 1] = 0;
		bad(longval, "--json", "too long");
	}
}

static void test_set_by_name(void **state)
{
	(void)state;
	struct pcb_config c;
	char why[256];
	pcb_config_defaults(&c);
	assert_int_equal(pcb_config_set(&c, "mem", "8M", why, sizeof(why)), 0);
	tl_assert_u64_eq(c.mem, 8 << 20);
	assert_int_equal(pcb_config_set(&c, "nope", "1", why, sizeof(why)), -1);
	tl_assert_contains(why, "--nope");
	assert_int_equal(pcb_config_set(&c, "mem", "8000", why, sizeof(why)), -1);
	tl_assert_contains(why, "--mem");
	tl_assert_u64_eq(c.mem, 8 << 20);   /* unchanged on error */
}

static void test_help_and_version(void **state)
{
	(void)state;
	struct tl_mem m;
	tl_mem_open(&m);
	pcb_config_help(m.fp);
	const char *h = tl_mem_str(&m);
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		if (!(o->scope & PCB_CMD_RUN))
			continue;
		char want[128];
		help_lhs(o, want, sizeof(want));
		const char *line = strstr(h, want);
		if (!line)
			fail_msg("--help does not list --%s", o->name);
		const char *eol = strchr(line, '\n');
		snprintf(want, sizeof(want), "[%s]", o->type == PCB_OPT_COUNT ? "off" : o->def[0] ? o->def : "none");
		const char *d = strstr(line, want);
		if (!d || d > eol)
			fail_msg("--help line of --%s lacks its default %s", o->name, want);
	}
	tl_assert_contains(h, "--help");
	tl_assert_contains(h, "--version");
	tl_assert_contains(h, "Exit codes");
	tl_mem_close(&m);

	/* --help and --version are handled (return 1) and stop parsing, even after a bad option value would follow */
	struct pcb_config c;
	const char *err;
	fflush(stdout);
	assert_int_equal(parse(&c, &err, "--help --mem=abc"), 1);
	assert_int_equal(parse(&c, &err, "-V"), 1);
	assert_string_equal(err, "");
}

static void test_config_json(void **state)
{
	(void)state;
	struct pcb_config c;
	const char *err;
	assert_int_equal(parse(&c, &err, "--json=a\"b\\c --seed=99 --duration=300ms"), 0);
	struct tl_mem m;
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_config_json(&c, j, NULL);
	assert_int_equal(pcb_json_close(j), 0);
	const char *s = tl_mem_str(&m);
	tl_assert_json_valid(s);
	/* one key per option; durations as NAME_ns */
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		if (!(o->scope & PCB_CMD_RUN))
			continue;
		char key[80];
		snprintf(key, sizeof(key), o->type == PCB_OPT_DURATION ? "\"%s_ns\": " : "\"%s\": ", o->name);
		tl_assert_contains(s, key);
	}
	tl_assert_contains(s, "\"seed\": 99");
	tl_assert_contains(s, "\"duration_ns\": 300000000");
	tl_assert_contains(s, "\"json\": \"a\\\"b\\\\c\"");
	tl_mem_close(&m);
}

/* The same table for every command: scopes, choices as enums, flags, positional arguments, the man page. */
static int cmd_parse(enum pcb_cmd cmd, struct pcb_config *cfg, const char **err, const char *args)
{
	static char **argv;   /* kept until the next call: cfg->args point into it */
	int argc;
	if (argv)
		tl_argv_free(argv);
	argv = tl_argv(&argc, "pcbench %s", args);
	pcb_cmd_defaults(cmd, cfg);
	tl_stderr_begin();
	int r = pcb_cmd_parse(cmd, cfg, argc, argv, 1);
	*err = tl_stderr_end();
	return r;
}

static void test_commands(void **state)
{
	(void)state;
	struct pcb_config *c = malloc(sizeof(*c));
	const char *err;
	assert_non_null(c);
	/* choices are parsed once into enums */
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, "--trace=off --guest=kvm --pager=process --page-size=2M"), 0);
	assert_int_equal(c->trace, PCB_OFF);
	assert_int_equal(c->guest, PCB_GUEST_KVM);
	assert_int_equal(c->pager, PCB_PAGER_PROCESS);
	assert_int_equal(c->page_size, PCB_PAGE_2M);
	assert_string_equal(pcb_choice_name("trace", c->trace), "off");
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, ""), 0);
	assert_int_equal(c->trace, PCB_AUTO);
	assert_int_equal(c->trace_usdt, PCB_OFF);
	assert_int_equal(c->precopy_final, PCB_PRECOPY_DROP);
	/* one name, two commands, two meanings: simulate's --trace is a file */
	assert_int_equal(cmd_parse(PCB_CMD_SIMULATE, c, &err, "--trace=/tmp/x.trc --run-pages=auto --mem=8M"), 0);
	assert_string_equal(c->sim.trace, "/tmp/x.trc");
	assert_int_equal(c->sim.run_pages, 0);
	tl_assert_u64_eq(c->sim.mem, 8 << 20);
	assert_int_equal(cmd_parse(PCB_CMD_SIMULATE, c, &err, "--run-pages=16"), 0);
	assert_int_equal(c->sim.run_pages, 16);
	/* an option of another command names it and the command */
	assert_int_equal(cmd_parse(PCB_CMD_SOURCE, c, &err, "--policy=demand"), PCB_EXIT_USAGE);
	tl_assert_contains(err, "--policy does not apply to `pcbench source`");
	assert_int_equal(cmd_parse(PCB_CMD_SOURCE, c, &err, "--mem=64M --listen=0.0.0.0:0"), 0);
	/* flags take no value; positional arguments up to the command's count */
	assert_int_equal(cmd_parse(PCB_CMD_FLOOR, c, &err, "--no-link --rounds=4"), 0);
	assert_true(c->floor.no_link && !c->floor.no_bulk);
	assert_int_equal(c->floor.rounds, 4);
	tl_assert_u64_eq(c->floor.faults, 40000);
	assert_int_equal(cmd_parse(PCB_CMD_FLOOR, c, &err, "--no-link=1"), PCB_EXIT_USAGE);
	tl_assert_contains(err, "--no-link");
	assert_int_equal(cmd_parse(PCB_CMD_BENCH, c, &err, "job.conf --dry-run -v"), 0);
	assert_int_equal(c->nargs, 1);
	assert_string_equal(c->args[0], "job.conf");
	assert_true(c->bench.dry_run);
	assert_string_equal(c->bench.results, "results");
	assert_int_equal(cmd_parse(PCB_CMD_BENCH, c, &err, "a.conf b.conf"), PCB_EXIT_USAGE);
	tl_assert_contains(err, "b.conf");
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, "job.conf"), PCB_EXIT_USAGE);
	/* every command's defaults parse (pcb_cmd_defaults aborts otherwise) and its help lists its options */
	for (const struct pcb_command *cmd = pcb_commands; cmd->name; cmd++) {
		struct tl_mem m;
		pcb_cmd_defaults(cmd->cmd, c);
		tl_mem_open(&m);
		pcb_cmd_help(cmd->cmd, m.fp);
		const char *h = tl_mem_str(&m);
		for (const struct pcb_option *o = pcb_options; o->name; o++) {
			char want[80];
			help_lhs(o, want, sizeof(want));
			if ((o->scope & cmd->cmd) && !strstr(h, want))
				fail_msg("%s --help does not list --%s", cmd->name, o->name);
		}
		tl_mem_close(&m);
	}
	/* the man page lists every option of every command */
	struct tl_mem m;
	tl_mem_open(&m);
	pcb_man_page(m.fp);
	const char *man = tl_mem_str(&m);
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		char want[80], name[64];
		size_t n = 0;
		for (const char *p = o->name; *p && n + 2 < sizeof(name); p++) {
			if (*p == '-')
				name[n++] = '\\';
			name[n++] = *p;
		}
		name[n] = 0;
		if (o->short_name)
			snprintf(want, sizeof(want), ".B \\-%c, \\-\\-%s", o->short_name, name);
		else
			snprintf(want, sizeof(want), ".B \\-\\-%s", name);
		if (!strstr(man, want))
			fail_msg("the man page does not list --%s (%s)", o->name, want);
	}
	tl_mem_close(&m);
	free(c);
}

/* For every command: every option its --help lists is one it accepts, and it lists no other.
 * (That a listed option has an effect is the table's rule, checked by reading the code when an
 * option's scope is set; -v is listed only for the commands that read cfg->verbose.) */
static void test_scopes(void **state)
{
	(void)state;
	struct pcb_config *c = malloc(sizeof(*c));
	const char *err;
	assert_non_null(c);
	for (const struct pcb_command *cmd = pcb_commands; cmd->name; cmd++) {
		struct tl_mem m;
		tl_mem_open(&m);
		pcb_cmd_help(cmd->cmd, m.fp);
		const char *h = tl_mem_str(&m);
		unsigned listed = 0, in_scope = 0;
		for (const char *l = h; (l = strstr(l, "\n  -")) != NULL; l++)
			listed++;
		for (const struct pcb_option *o = pcb_options; o->name; o++) {
			char want[80], arg[160];
			help_lhs(o, want, sizeof(want));
			bool shown = strstr(h, want) != NULL, scoped = (o->scope & cmd->cmd) != 0;
			/* another command's option of the same name (--out, --trace, ...) is listed once for each */
			bool twin = false;
			for (const struct pcb_option *p = pcb_options; p->name; p++)
				twin |= p != o && !strcmp(p->name, o->name) && (p->scope & cmd->cmd);
			if (shown != (scoped || twin))
				fail_msg("%s --help %s --%s", cmd->name, shown ? "lists" : "does not list", o->name);
			if (!scoped)
				continue;
			in_scope++;
			if (o->type == PCB_OPT_FLAG || o->type == PCB_OPT_COUNT)
				snprintf(arg, sizeof(arg), "--%s", o->name);
			else
				snprintf(arg, sizeof(arg), "--%s=%s", o->name, o->def[0] ? o->def :
					 o->type == PCB_OPT_STR ? "x" : "1");
			int r = cmd_parse(cmd->cmd, c, &err, arg);
			if (r != 0)
				fail_msg("%s lists %s but refuses it (%d): %s", cmd->name, arg, r, err);
		}
		/* every "  -..." line is an option of the table, or -h or -V */
		if (listed != in_scope + 2)
			fail_msg("%s --help: %u option lines, want %u + 2", cmd->name, listed, in_scope);
		/* -v: counted where listed; elsewhere refused, naming the command */
		bool verbose = strstr(h, "  -v, --verbose ") != NULL;
		int r = cmd_parse(cmd->cmd, c, &err, "-v -v");
		if (verbose) {
			assert_int_equal(r, 0);
			assert_int_equal(c->verbose, 2);
		} else {
			assert_int_equal(r, PCB_EXIT_USAGE);
			tl_assert_contains(err, "option -v (--verbose) does not apply to `pcbench ");
			tl_assert_contains(err, cmd->name);
		}
		tl_mem_close(&m);
	}
	/* the commands that read cfg->verbose, and only they */
	static const enum pcb_cmd reads_verbose = PCB_CMD_RUN | PCB_CMD_DEST | PCB_CMD_SOURCE | PCB_CMD_BENCH | PCB_CMD_ANALYZE;
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (o->short_name == 'v')
			assert_int_equal(o->scope, reads_verbose);
	/* a value given to -v's long form, and an unknown short option */
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, "--verbose=2"), PCB_EXIT_USAGE);
	tl_assert_contains(err, "--verbose takes no value");
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, "-x"), PCB_EXIT_USAGE);
	tl_assert_contains(err, "unknown option -x");
	/* options of the forked source, of `pcbench source` alone, or of a guest that first runs at a
	 * forked source (pre-copy) are not `pcbench dest`'s */
	static const char *const not_dest[] = { "--host=127.0.0.1", "--port=1", "--source-delay=1ms", "--image=x",
						"--listen=127.0.0.1:0", "--sessions=1", "--precopy=1s",
						"--precopy-transport=memory", "--precopy-final=resend" };
	for (size_t i = 0; i < sizeof(not_dest) / sizeof(not_dest[0]); i++) {
		assert_int_equal(cmd_parse(PCB_CMD_DEST, c, &err, not_dest[i]), PCB_EXIT_USAGE);
		tl_assert_contains(err, "does not apply to `pcbench dest`");
	}
	assert_int_equal(cmd_parse(PCB_CMD_RUN, c, &err, "--listen=127.0.0.1:0"), PCB_EXIT_USAGE);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_set_by_name),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_config_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
