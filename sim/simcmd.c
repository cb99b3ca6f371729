/* `pcbench simulate`: options, the trace's identity, the human summary and
 * the versioned JSON of a simulated run (model in sim/sim.c). */
#include "sim/sim.h"
#include "common/json.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include "run/metrics.h"
#include "cli/options.h"
#include "wire/link.h"
#include "wire/proto.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define SIM_SCHEMA_VERSION 1

struct simcfg {
	char trace[4096];
	char policy[512];
	char policy_opt[512];
	char policy_end[16];
	char link[64];
	char think[32];
	char json[4096];
	char timeline[4096];
	char replay[4096];
	uint64_t mem;
	bool run_pages_set;
	struct pcb_sim_params sp;
};

/* 0, 1 (help printed) or an exit code.  The options are the table's (cli/options.c, scope simulate). */
static int sim_parse(struct simcfg *c, int argc, char **argv)
{
	char why[512];
	int rc;
	struct pcb_config *o = pcb_cmd_config(PCB_CMD_SIMULATE, argc, argv, 1, &rc);
	if (!o)
		return rc;
	memset(c, 0, sizeof(*c));
	pcb_sim_defaults(&c->sp);
	snprintf(c->trace, sizeof(c->trace), "%s", o->sim.trace);
	snprintf(c->policy, sizeof(c->policy), "%s", o->sim.policy);
	snprintf(c->policy_opt, sizeof(c->policy_opt), "%s", o->policy_opt);
	snprintf(c->policy_end, sizeof(c->policy_end), "%s", pcb_choice_name("policy-end", o->policy_end));
	snprintf(c->replay, sizeof(c->replay), "%s", o->replay);
	snprintf(c->link, sizeof(c->link), "%s", o->link);
	snprintf(c->think, sizeof(c->think), "%s", o->sim.think);
	snprintf(c->json, sizeof(c->json), "%s", o->json);
	snprintf(c->timeline, sizeof(c->timeline), "%s", o->timeline);
	c->mem = o->sim.mem;
	c->run_pages_set = o->sim.run_pages != 0;
	c->sp.run_pages = o->sim.run_pages;
	c->sp.batch_pages = o->batch_pages;
	c->sp.window = o->window;
	c->sp.channels = o->channels;
	c->sp.seed = o->seed;
	c->sp.zero_pages = o->zero_pages;
	c->sp.zero_run_max = o->zero_model == PCB_ZERO_RUNS ? o->zero_run_max : 0;
	c->sp.fault_ns = o->sim.fault_ns;
	c->sp.jitter_ns = o->sim.jitter_ns;
	c->sp.demand_copy_ns = o->sim.demand_ns;
	c->sp.demand_zero_ns = o->sim.demand_zero_ns;
	c->sp.bg_copy_ns = o->sim.bg_ns;
	c->sp.bg_zero_ns = o->sim.bg_zero_ns;
	free(o);
	if (rc)
		return rc;
	if (!c->trace[0]) {
		pcb_err("simulate: --trace=FILE is required (an access trace written by --record)");
		return PCB_EXIT_USAGE;
	}
	if (c->link[0]) {
		if (pcb_link_parse(c->link, &c->sp.bps, &c->sp.rtt_ns, why, sizeof(why)) < 0) {
			pcb_err("simulate: %s", why);
			return PCB_EXIT_USAGE;
		}
	}
	if (!c->run_pages_set)
		/* source/source.c: PCB_LINK_RUN_PAGES on an emulated link, PCB_SHARED_RUN_PAGES on a shared connection
		 * (set again per policy once its channels are known: run_for) */
		c->sp.run_pages = (c->link[0] && c->sp.bps) || c->sp.channels == 1 ? 16 : PCB_MAX_RUN_PAGES;
	if (!strcmp(c->think, "recorded")) {
		c->sp.think_ns = PCB_SIM_THINK_RECORDED;
	} else if (!strcmp(c->think, "schedule")) {
		c->sp.think_ns = PCB_SIM_THINK_SCHEDULE;
	} else if (pcb_parse_duration(c->think, &c->sp.think_ns) < 0 || c->sp.think_ns > 10 * PCB_NSEC_PER_SEC) {
		pcb_err("simulate: invalid value for --think: '%s' (want 'recorded', 'schedule' or a duration up to 10s, e.g. 200ns)", c->think);
		return PCB_EXIT_USAGE;
	}
	c->sp.npages = c->mem / PCB_PAGE_SIZE;
	c->sp.keep_faults = c->timeline[0] != 0;
	return 0;
}

struct trace_id {
	uint64_t size, xxh3;
};

static int trace_identity(const char *path, struct trace_id *id, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "cannot open trace '%s': %s", path, strerror(errno));
		return PCB_EXIT_DATAERR;
	}
	XXH3_state_t *st = XXH3_createState();
	char *buf = malloc(1 << 20);
	if (!st || !buf) {
		fclose(f);
		free(buf);
		XXH3_freeState(st);
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	XXH3_64bits_reset(st);
	size_t n;
	id->size = 0;
	while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
		XXH3_64bits_update(st, buf, n);
		id->size += n;
	}
	int rc = ferror(f) ? PCB_EXIT_OSERR : 0;
	if (rc)
		snprintf(why, whylen, "%s: read error", path);
	id->xxh3 = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	free(buf);
	fclose(f);
	return rc;
}


static void fmt_ns(uint64_t ns, char *b, size_t n)
{
	if (ns >= 10 * PCB_NSEC_PER_SEC)
		snprintf(b, n, "%.2f s", (double)ns / 1e9);
	else if (ns >= PCB_NSEC_PER_MSEC)
		snprintf(b, n, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(b, n, "%.1f µs", (double)ns / 1e3);
}

/* The parameters of one policy's run: where it runs and the connections its
 * system uses, resolved as a live run does (run/setup.c policy_resolve_transport). */
static int run_params(const struct simcfg *c, const struct pcb_policy_ops *ops, const struct pcb_policy *opts,
		      struct pcb_sim_params *sp, const char **end_name, char *why, size_t whylen)
{
	enum pcb_policy_end end;
	*sp = c->sp;
	if (pcb_policy_transport(ops, opts, c->policy_end, &end, &sp->channels, why, whylen) < 0)
		return PCB_EXIT_USAGE;
	*end_name = pcb_policy_end_name(end);
	sp->push = end == PCB_POLICY_SOURCE;
	if (!c->run_pages_set)
		sp->run_pages = (c->link[0] && sp->bps) || sp->channels == 1 ? 16 : PCB_MAX_RUN_PAGES;
	return 0;
}

static void write_header(const struct simcfg *c, const struct pcb_atrace *t, const struct pcb_sim_result *r, FILE *fp)
{
	char b1[32];
	fprintf(fp, "pcbench %s (git %s): simulated post-copy of %s, policy %s, trace %s (%llu accesses, %u vCPU%s), seed %llu\n",
		PCB_VERSION, PCB_GITREV, pcb_fmt_size(r->npages * PCB_PAGE_SIZE, b1, sizeof(b1)), c->policy, c->trace,
		(unsigned long long)t->count, r->nvcpus, r->nvcpus > 1 ? "s" : "", (unsigned long long)c->sp.seed);
	fmt_ns(c->sp.rtt_ns, b1, sizeof(b1));
	if (c->sp.bps)
		fprintf(fp, "  link        %.3f Gbit/s, RTT %s%s; %u channel%s; batch %u x window %u; RUN frames of %u pages\n",
			(double)c->sp.bps / 1e9, b1, c->link[0] ? "" : " (default: this machine's loopback)", c->sp.channels,
			c->sp.channels > 1 ? "s" : "", c->sp.batch_pages, c->sp.window, c->sp.run_pages);
	else
		fprintf(fp, "  link        unlimited bandwidth, RTT %s; %u channel%s; batch %u x window %u\n", b1,
			c->sp.channels, c->sp.channels > 1 ? "s" : "", c->sp.batch_pages, c->sp.window);
}

static void write_human(const struct pcb_sim_result *r, const struct pcb_prefetch *pf, FILE *fp)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
	fmt_ns(r->t_complete_ns, b1, sizeof(b1));
	fmt_ns(r->t_guest_done_ns, b2, sizeof(b2));
	fmt_ns(r->t_complete_ns > r->t_guest_done_ns ? r->t_complete_ns : r->t_guest_done_ns, b3, sizeof(b3));
	fprintf(fp, "  migration   %s (switch-over to last page present); guest ran %s; whole run %s\n", b1, b2, b3);
	fprintf(fp, "  pages       %llu: demand %llu, background %llu, drain %llu, zero %llu; arrived after present %llu\n",
		(unsigned long long)r->npages, (unsigned long long)r->pages_demand, (unsigned long long)r->pages_background,
		(unsigned long long)r->pages_drain,
		(unsigned long long)(r->zero_demand + r->zero_background + r->zero_drain),
		(unsigned long long)(r->eexist_demand + r->eexist_background));
	const struct pcb_hist *h = &r->fault_lat;
	fmt_ns(h->count ? h->min : 0, b1, sizeof(b1));
	fmt_ns(pcb_hist_percentile(h, 50), b2, sizeof(b2));
	fmt_ns(pcb_hist_percentile(h, 90), b3, sizeof(b3));
	fmt_ns(pcb_hist_percentile(h, 99), b4, sizeof(b4));
	fmt_ns(pcb_hist_percentile(h, 99.9), b5, sizeof(b5));
	fmt_ns(h->max, b6, sizeof(b6));
	fprintf(fp, "  faults      %llu: min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s; %llu demand requests, %llu on an in-flight page\n",
		(unsigned long long)r->faults, b1, b2, b3, b4, b5, b6, (unsigned long long)r->demand_requests,
		(unsigned long long)r->faults_inflight);
	uint64_t bt = 0;
	for (unsigned v = 0; v < r->nvcpus; v++)
		bt += r->vcpu[v].blocktime_ns;
	fmt_ns(bt, b1, sizeof(b1));
	fprintf(fp, "  blocktime   %s total (", b1);
	for (unsigned v = 0; v < r->nvcpus && v < 8; v++) {
		fmt_ns(r->vcpu[v].blocktime_ns, b1, sizeof(b1));
		fprintf(fp, "%svCPU%u %s", v ? ", " : "", v, b1);
	}
	fprintf(fp, "%s)\n", r->nvcpus > 8 ? ", ..." : "");
	char lead[64] = "";
	if (pf->lead.count)
		snprintf(lead, sizeof(lead), "; lead time p50 %.2f ms", (double)pcb_hist_percentile(&pf->lead, 50) / 1e6);
	fprintf(fp, "  prefetch    %llu pages touched, %llu present at first touch (hit rate %.1f%%); "
		"accuracy %.1f%% of %llu background pages pulled before the guest stopped%s\n",
		(unsigned long long)pf->touched, (unsigned long long)pf->hits,
		pf->touched ? 100.0 * (double)pf->hits / (double)pf->touched : 0.0,
		pf->bg_before_end ? 100.0 * (double)pf->bg_used / (double)pf->bg_before_end : 0.0,
		(unsigned long long)pf->bg_before_end, lead);
	fmt_ns(r->wall_ns, b1, sizeof(b1));
	fmt_ns(r->cpu_ns, b2, sizeof(b2));
	fprintf(fp, "  simulator   %llu trace events in %s (%s CPU): %.2f M events/s, %.2f M per CPU second (%llu model events)\n",
		(unsigned long long)r->accesses, b1, b2, r->wall_ns ? (double)r->accesses * 1e3 / (double)r->wall_ns : 0.0,
		r->cpu_ns ? (double)r->accesses * 1e3 / (double)r->cpu_ns : 0.0, (unsigned long long)r->events);
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* Several policies: one line each. */
static void write_table(const char *const *names, struct pcb_sim_result *const *rs, struct pcb_prefetch *const *pfs,
			unsigned n, FILE *fp)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32];
	fprintf(fp, "  %-12s %9s %9s %10s %10s %10s %8s %8s %10s %10s\n", "policy", "faults", "demand", "fault p50",
		"fault p99", "blocktime", "hit rate", "accuracy", "migration", "guest");
	for (unsigned i = 0; i < n; i++) {
		const struct pcb_sim_result *r = rs[i];
		const struct pcb_prefetch *pf = pfs[i];
		uint64_t bt = 0;
		for (unsigned v = 0; v < r->nvcpus; v++)
			bt += r->vcpu[v].blocktime_ns;
		fmt_ns(pcb_hist_percentile(&r->fault_lat, 50), b1, sizeof(b1));
		fmt_ns(pcb_hist_percentile(&r->fault_lat, 99), b2, sizeof(b2));
		fmt_ns(bt, b3, sizeof(b3));
		fmt_ns(r->t_complete_ns, b4, sizeof(b4));
		fmt_ns(r->t_guest_done_ns, b5, sizeof(b5));
		fprintf(fp, "  %-12s %9llu %9llu %10s %10s %10s %7.1f%% %7.1f%% %10s %10s\n", names[i],
			(unsigned long long)r->faults, (unsigned long long)r->demand_requests, b1, b2, b3, pct(pf->hits, pf->touched),
			pct(pf->bg_used, pf->bg_before_end), b4, b5);
	}
	uint64_t ev = 0, wall = 0, cpu = 0;
	for (unsigned i = 0; i < n; i++) {
		ev += rs[i]->accesses;
		wall += rs[i]->wall_ns;
		cpu += rs[i]->cpu_ns;
	}
	fmt_ns(wall, b1, sizeof(b1));
	fprintf(fp, "  simulator   %llu trace events in %s: %.2f M events/s, %.2f M per CPU second\n", (unsigned long long)ev, b1,
		wall ? (double)ev * 1e3 / (double)wall : 0.0, cpu ? (double)ev * 1e3 / (double)cpu : 0.0);
}

static void json_results(struct pcb_json *j, const char *key, const struct pcb_sim_result *r, const struct pcb_prefetch *pf)
{
	pcb_json_obj_begin(j, key);
	PCB_JSON_GROUP(j, "time",
		       PCB_JU64("total_migration_ns", r->t_complete_ns),
		       PCB_JU64("run_ns", r->t_complete_ns > r->t_guest_done_ns ? r->t_complete_ns : r->t_guest_done_ns),
		       PCB_JU64("guest_ns", r->t_guest_done_ns),
		       PCB_JBOOL("completed_while_guest_ran", r->t_complete_ns <= r->t_guest_done_ns),
		       PCB_JSTR("clock", "simulated (virtual ns since switch-over)"));

	PCB_JSON_GROUP(j, "pages",
		       PCB_JU64("unit_bytes", PCB_PAGE_SIZE), PCB_JU64("total", r->npages),
		       PCB_JU64("demand", r->pages_demand), PCB_JU64("background", r->pages_background),
		       PCB_JU64("drain", r->pages_drain),
		       PCB_JU64("zero", r->zero_demand + r->zero_background + r->zero_drain),
		       PCB_JU64("zero_demand", r->zero_demand), PCB_JU64("zero_background", r->zero_background),
		       PCB_JU64("zero_drain", r->zero_drain),
		       PCB_JU64("eexist_demand", r->eexist_demand), PCB_JU64("eexist_background", r->eexist_background));

	pcb_json_obj_begin(j, "faults");
	pcb_json_u64(j, "count", r->faults);
	pcb_json_u64(j, "on_inflight_page", r->faults_inflight);
	pcb_json_str(j, "latency_source", "simulated: fault to install of the page (plus nothing: wake-up is in the demand cost)");
	pcb_json_dbl(j, "histogram_relative_error", pcb_hist_error_bound());
	pcb_hist_json(j, "latency", &r->fault_lat, 1);
	pcb_json_obj_end(j);

	pcb_json_obj_begin(j, "blocktime");
	uint64_t bt = 0;
	pcb_json_arr_begin(j, "per_vcpu_ns");
	for (unsigned v = 0; v < r->nvcpus; v++) {
		pcb_json_u64(j, NULL, r->vcpu[v].blocktime_ns);
		bt += r->vcpu[v].blocktime_ns;
	}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "total_ns", bt);
	pcb_json_obj_end(j);

	pcb_json_obj_begin(j, "pager");
	pcb_json_u64(j, "demand_requests", r->demand_requests);
	pcb_hist_json(j, "demand_round_trip", &r->demand_rtt, 0);
	PCB_JSON_FIELDS(j, PCB_JU64("background_batches", r->bg_batches),
			PCB_JU64("background_pages_requested", r->bg_pages_requested),
			PCB_JU64("drain_batches", r->drain_batches), PCB_JU64("link_bytes_demand", r->link_bytes[0]),
			PCB_JU64("link_bytes_background", r->link_bytes[1]));
	pcb_json_obj_end(j);

	pcb_json_obj_begin(j, "guest");
	pcb_json_arr_begin(j, "vcpus");
	for (unsigned v = 0; v < r->nvcpus; v++) {
		PCB_JSON_GROUP(j, NULL, PCB_JU64("vcpu", v), PCB_JU64("accesses", r->vcpu[v].accesses),
			       PCB_JU64("faults", r->vcpu[v].faults), PCB_JU64("blocktime_ns", r->vcpu[v].blocktime_ns),
			       PCB_JU64("end_ns", r->vcpu[v].t_end_ns));
	}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "accesses", r->accesses);
	pcb_json_obj_end(j);

	pcb_prefetch_json(pf, j, "prefetch");

	PCB_JSON_GROUP(j, "simulator",
		       PCB_JU64("trace_events", r->accesses), PCB_JU64("model_events", r->events),
		       PCB_JU64("wall_ns", r->wall_ns), PCB_JU64("cpu_ns", r->cpu_ns),
		       PCB_JDBL("trace_events_per_cpu_sec", r->cpu_ns ? (double)r->accesses * 1e9 / (double)r->cpu_ns : 0),
		       PCB_JDBL("trace_events_per_sec", r->wall_ns ? (double)r->accesses * 1e9 / (double)r->wall_ns : 0));
	pcb_json_obj_end(j);
}

static void write_json(const struct simcfg *c, const struct pcb_atrace *t, const struct trace_id *id,
		       const char *const *names, struct pcb_sim_result *const *rs, struct pcb_prefetch *const *pfs,
		       unsigned n, FILE *fp)
{
	const struct pcb_sim_result *r = rs[0];
	struct pcb_sysinfo sys;
	pcb_sysinfo_read(&sys);
	struct pcb_json *j = pcb_json_open(fp);
	pcb_json_obj_begin(j, NULL);
	PCB_JSON_FIELDS(j, PCB_JU64("schema_version", SIM_SCHEMA_VERSION), PCB_JSTR("tool", "pcbench"),
			PCB_JSTR("kind", "simulation"), PCB_JSTR("version", PCB_VERSION), PCB_JSTR("git_revision", PCB_GITREV),
			PCB_JSTR("status", "ok"), PCB_JI64("exit_code", 0));

	pcb_json_obj_begin(j, "config");
	PCB_JSON_FIELDS(j, PCB_JSTR("trace", c->trace), PCB_JSTR("policy", c->policy),
			PCB_JSTR("policy_opt", c->policy_opt), PCB_JSTR("policy_end", c->policy_end),
			PCB_JSTR("link", c->link[0] ? c->link : "default (this machine's loopback)"),
			PCB_JU64("link_bps", c->sp.bps), PCB_JU64("link_rtt_ns", c->sp.rtt_ns),
			PCB_JU64("batch", c->sp.batch_pages), PCB_JU64("window", c->sp.window),
			PCB_JU64("channels", c->sp.channels), PCB_JU64("mem", r->npages * PCB_PAGE_SIZE),
			PCB_JU64("seed", c->sp.seed), PCB_JDBL("zero_pages", c->sp.zero_pages), PCB_JSTR("think", c->think));
	if (c->sp.think_ns < PCB_SIM_THINK_SCHEDULE)
		pcb_json_u64(j, "think_ns", c->sp.think_ns);
	PCB_JSON_GROUP(j, "model",
		       PCB_JU64("fault_cost_ns", c->sp.fault_ns), PCB_JU64("jitter_mean_ns", c->sp.jitter_ns),
		       PCB_JU64("demand_cost_ns", c->sp.demand_copy_ns), PCB_JU64("demand_zero_cost_ns", c->sp.demand_zero_ns),
		       PCB_JU64("bg_cost_ns", c->sp.bg_copy_ns), PCB_JU64("bg_zero_cost_ns", c->sp.bg_zero_ns),
		       PCB_JU64("run_pages", c->sp.run_pages), PCB_JU64("bg_early_ns", c->sp.early_ns),
		       PCB_JU64("bg_poll_ns", c->sp.bg_poll_ns), PCB_JU64("frame_header_bytes", PCB_HDR_SIZE));
	pcb_json_obj_end(j);

	char hx[24];
	snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)id->xxh3);
	PCB_JSON_GROUP(j, "trace", PCB_JSTR("path", c->trace), PCB_JU64("size_bytes", id->size), PCB_JSTR("xxh3", hx),
		       PCB_JU64("records", t->count), PCB_JU64("vcpus", t->nvcpus), PCB_JU64("pages", t->npages));

	pcb_json_obj_begin(j, "system");
	pcb_sysinfo_json(&sys, j, "host");
	pcb_json_obj_end(j);

	if (n == 1) {
		json_results(j, "results", rs[0], pfs[0]);
	} else {
		pcb_json_arr_begin(j, "runs");   /* --policy with several: one run each */
		for (unsigned i = 0; i < n; i++) {
			pcb_json_obj_begin(j, NULL);
			pcb_json_str(j, "policy", names[i]);
			json_results(j, "results", rs[i], pfs[i]);
			pcb_json_obj_end(j);
		}
		pcb_json_arr_end(j);
	}
	pcb_json_obj_end(j);
	pcb_json_close(j);
}

#define SIM_MAX_POLICIES 32

/* --policy: one name, a comma list or `all` (every registered policy but
 * local, and replay only with --replay).  Returns the count or -1 with why. */
static int policy_list(const struct simcfg *c, const struct pcb_policy_ops **out, char *why, size_t whylen)
{
	int n = 0;
	if (!strcmp(c->policy, "all")) {
		for (unsigned i = 0; pcb_policies[i] && n < SIM_MAX_POLICIES; i++) {
			const char *name = pcb_policies[i]->name;
			if (strcmp(name, "local") && (strcmp(name, "replay") || c->replay[0]))
				out[n++] = pcb_policies[i];
		}
		return n;
	}
	char buf[sizeof(c->policy)];
	snprintf(buf, sizeof(buf), "%s", c->policy);
	for (char *sv, *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
		const struct pcb_policy_ops *ops = pcb_policy_resolve(tok, why, whylen);   /* a name or ./x.so */
		if (!ops)
			return -1;
		if (n == SIM_MAX_POLICIES) {
			snprintf(why, whylen, "invalid value for --policy: more than %d policies", SIM_MAX_POLICIES);
			return -1;
		}
		out[n++] = ops;
	}
	if (!n)
		snprintf(why, whylen, "invalid value for --policy: '%s' names no policy", c->policy);
	return n ? n : -1;
}

int pcb_cmd_simulate(int argc, char **argv)
{
	struct simcfg c;
	char why[512];
	int rc = sim_parse(&c, argc, argv);
	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	const struct pcb_policy_ops *ops[SIM_MAX_POLICIES];
	int n = policy_list(&c, ops, why, sizeof(why));
	if (n < 0) {
		pcb_err("simulate: %s", why);
		return PCB_EXIT_USAGE;
	}
	if (n > 1 && (c.policy_opt[0] || c.timeline[0])) {
		pcb_err("simulate: --%s applies to one policy, --policy names %d", c.policy_opt[0] ? "policy-opt" : "timeline", n);
		return PCB_EXIT_USAGE;
	}
	struct pcb_policy *opts = calloc((size_t)n, sizeof(*opts));
	struct pcb_sim_result *res = calloc((size_t)n, sizeof(*res));
	struct pcb_prefetch *pf = calloc((size_t)n, sizeof(*pf));
	struct pcb_sim_result *rp[SIM_MAX_POLICIES];
	struct pcb_prefetch *pp[SIM_MAX_POLICIES];
	const char *names[SIM_MAX_POLICIES];
	struct pcb_atrace t = { 0 };
	FILE *jf = NULL;
	int done = 0;
	if (!opts || !res || !pf) {
		pcb_err("simulate: out of memory");
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		why[0] = 0;
		if (pcb_policy_parse_opts(&opts[i], ops[i], c.policy_opt, why, sizeof(why)) < 0 ||
		    (c.replay[0] && (n == 1 || !strcmp(ops[i]->name, "replay")) &&   /* as run/setup.c */
		     pcb_policy_replay_file(&opts[i], ops[i], c.replay, why, sizeof(why)) < 0)) {
			pcb_err("simulate: %s", why);
			rc = PCB_EXIT_USAGE;
			goto out;
		}
		rp[i] = &res[i];
		pp[i] = &pf[i];
		names[i] = ops[i]->name;
	}
	rc = pcb_atrace_load(c.trace, &t, why, sizeof(why));
	if (rc) {
		pcb_err("simulate: %s", why);
		goto out;
	}
	struct trace_id id;
	rc = trace_identity(c.trace, &id, why, sizeof(why));
	if (rc) {
		pcb_err("simulate: %s", why);
		goto out;
	}
	if (c.json[0] && !(jf = fopen(c.json, "w"))) {
		pcb_err("simulate: cannot write --json '%s': %s", c.json, strerror(errno));
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct pcb_sim_params sp;
		const char *end_name;
		rc = run_params(&c, ops[i], &opts[i], &sp, &end_name, why, sizeof(why));
		if (!rc && n == 1) {   /* one policy: the header and the JSON show what it ran with */
			c.sp = sp;
			snprintf(c.policy_end, sizeof(c.policy_end), "%s", end_name);
		}
		if (!rc)
			rc = pcb_sim_run(&sp, &t, ops[i], &opts[i], &res[i], why, sizeof(why));
		if (rc) {
			pcb_err("%s%s", strncmp(why, "simulate:", 9) ? "simulate: " : "", why);
			goto out;
		}
		done++;
		/* as a live run: accuracy counts the background pages pulled before the guest stopped */
		pcb_prefetch_compute_until(&pf[i], res[i].npages, res[i].first_touch, res[i].inst_us, res[i].inst_kind,
					   res[i].t_guest_done_ns / 1000 + 1);
	}
	write_header(&c, &t, &res[0], stdout);
	if (n == 1)
		write_human(&res[0], &pf[0], stdout);
	else
		write_table(names, rp, pp, (unsigned)n, stdout);
	if (jf) {
		write_json(&c, &t, &id, names, rp, pp, (unsigned)n, jf);
		int bad = ferror(jf);
		if (fclose(jf) || bad) {
			pcb_err("simulate: writing --json '%s' failed", c.json);
			rc = PCB_EXIT_OSERR;
		}
		jf = NULL;
	}
	if (c.timeline[0]) {
		int e = pcb_timeline_write_records(c.timeline, res[0].fault_ev, res[0].nfault_ev, res[0].npages, res[0].inst_us,
						   res[0].inst_kind, res[0].first_touch);
		if (e < 0) {
			pcb_err("simulate: writing --timeline '%s' failed: %s", c.timeline, strerror(-e));
			rc = PCB_EXIT_OSERR;
		}
	}
out:
	if (jf) {   /* failed before the results: no half-written file */
		fclose(jf);
		remove(c.json);
	}
	for (int i = 0; i < done; i++)
		pcb_sim_result_free(&res[i]);
	free(opts);
	free(res);
	free(pf);
	pcb_atrace_free(&t);
	return rc;
}
