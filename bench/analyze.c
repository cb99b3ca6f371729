/* pcbench analyze: results directory -> tidy CSV, summary tables, plot data.
 * See bench/analyze.h for the outputs and bench/stats.h for the statistics. */
#include "bench/analyze.h"
#include "bench/benchjob.h"
#include "bench/stats.h"
#include "common/jsonread.h"
#include "common/util.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- what goes into the tidy CSV ------------------------------------------- */

/* A metric of the tidy CSV: its name, where it stands in a run's JSON, the factor to its unit. */
struct metric {
	const char *name, *path;
	double scale;
};
static const struct metric scalars[] = {
	{ "migration_time_ms", "results.time.total_migration_ns", 1e-6 },
	{ "blocktime_ms", "results.blocktime.total_ns", 1e-6 },
	/* the two definitions of issue 13.3 and the windowed prefetch figures of 13.2, when the
	 * build that ran records them (absent fields give no rows) */
	{ "blocktime_sum_vcpus_ms", "results.blocktime.sum_vcpus_ns", 1e-6 },
	{ "blocktime_all_vcpus_ms", "results.blocktime.all_vcpus_ns", 1e-6 },
	{ "hit_rate_migration", "results.prefetch.during_migration.hit_rate", 1 },
	{ "accuracy_migration", "results.prefetch.during_migration.accuracy", 1 },
	{ "faults_migration", "results.prefetch.during_migration.faults", 1 },
	{ "guest_time_ms", "results.time.guest_ns", 1e-6 },
	{ "vcpus", "config.vcpus", 1 },
	{ "run_time_ms", "results.time.run_ns", 1e-6 },
	{ "faults", "results.faults.count", 1 },
	{ "guest_ops", "results.guest.ops", 1 },
	{ "ops_per_sec", "results.guest.ops_per_sec", 1 },
	{ "hit_rate", "results.prefetch.hit_rate", 1 },
	{ "accuracy", "results.prefetch.accuracy", 1 },
	{ "pages_total", "results.pages.total", 1 },
	{ "pages_demand", "results.pages.demand", 1 },
	{ "pages_background", "results.pages.background", 1 },
	{ "pages_drain", "results.pages.drain", 1 },
	{ "pages_zero", "results.pages.zero", 1 },
	{ "eexist_races", "results.pages.eexist_races", 1 },
	{ "background_unused_pages", "results.prefetch.background_unused", 1 },
	{ "demand_bytes_received", "results.transport.demand.bytes_received", 1 },
	{ "background_bytes_received", "results.transport.background.bytes_received", 1 },
	{ "demand_thread_cpu", "results.pager.demand_thread_cpu", 1 },
	{ "background_thread_cpu", "results.pager.background_thread_cpu", 1 },
	{ "time_to_first_work_ms", "results.progress.time_to_first_work_ns", 1e-6 },
	{ "time_to_95pct_of_local_ms", "results.progress.time_to_95pct_of_local_ns", 1e-6 },
	{ "lost_work_s", "results.progress.lost_work_s", 1 },
	{ "pages_corrupt", "results.verify.pages_corrupt", 1 },
	{ "pages_missing", "results.verify.pages_missing", 1 },
};
#define NSCALARS (sizeof(scalars) / sizeof(scalars[0]))

static const struct metric hists[] = {
	{ "fault_latency_us", "results.faults.latency", 1e-3 },
	{ "demand_round_trip_us", "results.pager.demand_round_trip", 1e-3 },
	{ "prefetch_lead_ms", "results.prefetch.lead_time", 1e-6 },
	{ "op_latency_us", "results.guest.op_latency", 1e-3 },
};
static const char *const hist_stats[] = { "count", "min", "mean", "p50", "p90", "p99", "p999", "max" };
static const char *const hist_keys[] = { "count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns" };

/* ---- loaded experiment ----------------------------------------------------- */

struct runrec {
	struct pcb_job_run r;
	struct pcb_jv *js;           /* NULL: missing or failed */
	bool has_timeline;
	char rep[16];
};

struct exp {
	const char *dir;
	struct pcb_job job;
	unsigned nruns;
	struct runrec *runs;
	unsigned npol_all;           /* policies + baseline */
	unsigned ok, failed, missing;
};

static double jnum(const struct pcb_jv *js, const char *path)
{
	double d;
	return pcb_jv_num(pcb_jv_path(js, path), &d) == 0 ? d : NAN;
}

static FILE *open_out(const struct exp *e, const char *name, char *why, size_t whylen)
{
	char path[4600];
	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		snprintf(why, whylen, "cannot write '%s': %s", path, strerror(errno));
	return f;
}

static int close_out(FILE *f, const struct exp *e, const char *name, char *why, size_t whylen)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		snprintf(why, whylen, "error writing '%s/%s'", e->dir, name);
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* Runs of one cell (policy p incl. baseline, workload w, link l) that succeeded. */
static unsigned cell_runs(const struct exp *e, unsigned p, unsigned w, unsigned l, const struct runrec **out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < e->nruns; i++) {
		const struct runrec *rr = &e->runs[i];
		if (rr->r.policy == p && rr->r.workload == w && rr->r.link == l && rr->js)
			out[n++] = rr;
	}
	return n;
}

static bool cell_exists(const struct exp *e, unsigned p, unsigned l)
{
	return p < e->job.npolicies || l == 0;    /* the baseline runs on link 0 only */
}

static void cell_id(const struct exp *e, unsigned p, unsigned w, unsigned l, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%s-%s", pcb_job_policy_name(&e->job, p), e->job.workloads[w], e->job.links[l].name);
}

static struct pcb_spread cell_spread(const struct exp *e, unsigned p, unsigned w, unsigned l, const char *path, double scale)
{
	const struct runrec *rr[1024];
	unsigned n = cell_runs(e, p, w, l, rr);
	double v[1024];
	for (unsigned i = 0; i < n; i++)
		v[i] = jnum(rr[i]->js, path) * scale;
	return pcb_spread_of(v, n);
}

static int cell_merged_latency(const struct exp *e, unsigned p, unsigned w, unsigned l, struct pcb_hist *h)
{
	const struct runrec *rr[1024];
	unsigned n = cell_runs(e, p, w, l, rr);
	pcb_hist_init(h);
	for (unsigned i = 0; i < n; i++)
		if (pcb_hist_from_json(h, pcb_jv_path(rr[i]->js, "results.faults.latency")) < 0)
			return -1;
	return 0;
}

/* Runs of a cell in which vCPU 0 and the demand thread ended on the same CPU. */
static unsigned same_cpu_runs(const struct exp *e, unsigned p, unsigned w, unsigned l)
{
	const struct runrec *rr[1024];
	unsigned n = cell_runs(e, p, w, l, rr), same = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct pcb_jv *vc = pcb_jv_path(rr[i]->js, "results.guest.vcpus");
		double dc = jnum(rr[i]->js, "results.pager.demand_thread_cpu");
		if (vc && vc->type == PCB_J_ARR && vc->n && jnum(vc->kids[0], "cpu_end") == dc)
			same++;
	}
	return same;
}

/* ---- loading ------------------------------------------------------------------ */

static int load(struct exp *e, const char *dir, int verbose, char *why, size_t whylen)
{
	char path[4600], err[256];
	e->dir = dir;
	snprintf(path, sizeof(path), "%s/job.conf", dir);
	int rc = pcb_job_load(path, &e->job, why, whylen);
	if (rc) {
		if (access(path, F_OK) != 0)
			snprintf(why, whylen, "'%s' is not a bench results directory (no job.conf)", dir);
		return rc == PCB_EXIT_USAGE ? PCB_EXIT_DATAERR : rc;
	}
	e->nruns = pcb_job_nruns(&e->job);
	e->npol_all = e->job.npolicies + (e->job.baseline[0] ? 1 : 0);
	e->runs = calloc(e->nruns, sizeof(*e->runs));
	if (!e->runs) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	for (unsigned i = 0; i < e->nruns; i++) {
		struct runrec *rr = &e->runs[i];
		pcb_job_run_at(&e->job, i, &rr->r);
		snprintf(rr->rep, sizeof(rr->rep), "%u", rr->r.rep + 1);
		snprintf(path, sizeof(path), "%s/runs/%s.json", dir, rr->r.id);
		if (access(path, F_OK) != 0) {
			e->missing++;
			continue;
		}
		rr->js = pcb_jv_parse_file(path, err, sizeof(err));
		if (!rr->js) {
			snprintf(why, whylen, "%s: %s", path, err);
			return PCB_EXIT_DATAERR;
		}
		const char *st = pcb_jv_str(pcb_jv_get(rr->js, "status"));
		const char *pol = pcb_jv_str(pcb_jv_path(rr->js, "config.policy"));
		const char *wl = pcb_jv_str(pcb_jv_path(rr->js, "config.workload"));
		if (!pol || !wl || strcmp(pol, pcb_job_policy_real(&e->job, rr->r.policy)) ||
		    strcmp(wl, e->job.workloads[rr->r.workload])) {
			snprintf(why, whylen, "%s: config.policy/workload do not match run '%s' of job.conf", path, rr->r.id);
			return PCB_EXIT_DATAERR;
		}
		if (!st || strcmp(st, "ok")) {
			pcb_jv_free(rr->js);
			rr->js = NULL;
			e->failed++;
			continue;
		}
		e->ok++;
		snprintf(path, sizeof(path), "%s/runs/%s.timeline.csv", dir, rr->r.id);
		rr->has_timeline = access(path, R_OK) == 0;
	}
	if (verbose)
		fprintf(stderr, "analyze: %s: %u runs planned, %u ok, %u failed, %u missing\n", dir, e->nruns, e->ok,
			e->failed, e->missing);
	return 0;
}

/* ---- results.csv / summary.csv ------------------------------------------------------------ */

static int write_tidy(struct exp *e, char *why, size_t whylen)
{
	FILE *f = open_out(e, "results.csv", why, whylen);
	if (!f)
		return PCB_EXIT_OSERR;
	pcb_csv_tidy_header(f);
	for (unsigned i = 0; i < e->nruns; i++) {
		const struct runrec *rr = &e->runs[i];
		if (!rr->js)
			continue;
		const char *pol = pcb_job_policy_name(&e->job, rr->r.policy), *wl = e->job.workloads[rr->r.workload],
			   *ln = e->job.links[rr->r.link].name;
		for (unsigned m = 0; m < NSCALARS; m++) {
			double v = jnum(rr->js, scalars[m].path);
			if (!pcb_jv_path(rr->js, scalars[m].path))
				continue;     /* metric absent in this build's JSON (e.g. progress) */
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, scalars[m].name, "value", v * scalars[m].scale);
		}
		for (unsigned h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
			const struct pcb_jv *o = pcb_jv_path(rr->js, hists[h].path);
			if (!o)
				continue;
			for (unsigned s = 0; s < sizeof(hist_stats) / sizeof(hist_stats[0]); s++) {
				double v = jnum(o, hist_keys[s]);
				pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, hists[h].name, hist_stats[s], s ? v * hists[h].scale : v);
			}
		}
		/* thread placement goes with every latency figure */
		const struct pcb_jv *vc = pcb_jv_path(rr->js, "results.guest.vcpus");
		for (size_t v = 0; vc && vc->type == PCB_J_ARR && v < vc->n; v++) {
			char metric[48];
			snprintf(metric, sizeof(metric), "vcpu%zu_cpu", v);
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, metric, "start", jnum(vc->kids[v], "cpu_start"));
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, metric, "end", jnum(vc->kids[v], "cpu_end"));
		}
	}
	return close_out(f, e, "results.csv", why, whylen);
}

static int write_summary_csv(struct exp *e, char *why, size_t whylen)
{
	FILE *f = open_out(e, "summary.csv", why, whylen);
	if (!f)
		return PCB_EXIT_OSERR;
	pcb_csv_tidy_header(f);
	for (unsigned l = 0; l < e->job.nlinks; l++)
		for (unsigned w = 0; w < e->job.nworkloads; w++)
			for (unsigned p = 0; p < e->npol_all; p++) {
				if (!cell_exists(e, p, l))
					continue;
				char id[200];
				cell_id(e, p, w, l, id, sizeof(id));
				const char *pol = pcb_job_policy_name(&e->job, p), *wl = e->job.workloads[w], *ln = e->job.links[l].name;
				for (unsigned m = 0; m < NSCALARS; m++) {
					struct pcb_spread s = cell_spread(e, p, w, l, scalars[m].path, scalars[m].scale);
					if (!s.n)
						continue;
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", scalars[m].name, "median", s.median);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", scalars[m].name, "min", s.min);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", scalars[m].name, "max", s.max);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", scalars[m].name, "n", s.n);
				}
				struct pcb_hist *h = malloc(sizeof(*h));
				if (!h) {
					fclose(f);
					snprintf(why, whylen, "out of memory");
					return PCB_EXIT_OSERR;
				}
				if (cell_merged_latency(e, p, w, l, h) < 0) {
					free(h);
					fclose(f);
					snprintf(why, whylen, "%s: a run's results.faults.latency histogram is malformed", id);
					return PCB_EXIT_DATAERR;
				}
				if (h->count) {
					static const double pct[] = { 50, 90, 99, 99.9 };
					static const char *const pn[] = { "merged_p50", "merged_p90", "merged_p99", "merged_p999" };
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "fault_latency_us", "merged_count", (double)h->count);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "fault_latency_us", "merged_min", (double)h->min / 1e3);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "fault_latency_us", "merged_mean", pcb_hist_mean(h) / 1e3);
					for (unsigned k = 0; k < 4; k++)
						pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "fault_latency_us", pn[k],
								 (double)pcb_hist_percentile(h, pct[k]) / 1e3);
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "fault_latency_us", "merged_max", (double)h->max / 1e3);
				}
				free(h);
				const struct runrec *rr[1024];
				unsigned n = cell_runs(e, p, w, l, rr);
				if (n && p < e->job.npolicies)   /* placement goes with every latency figure */
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "vcpu0_demand_same_cpu", "runs",
							 same_cpu_runs(e, p, w, l));
			}
	return close_out(f, e, "summary.csv", why, whylen);
}

/* ---- summary.md / summary.tex ------------------------------------------------------- */

/* The descriptive head of summary.md (experiment, revision, host, runs ok), written to
 * plotdata/summary_head.md: analysis/stats.py puts it above the findings, tables and tests it
 * computes with SciPy (intervals and hypothesis tests are not computed here; docs/design.md). */
static int write_summary_head(struct exp *e, char *why, size_t whylen)
{
	FILE *md = open_out(e, "plotdata/summary_head.md", why, whylen);
	if (!md)
		return PCB_EXIT_OSERR;
	const struct runrec *any = NULL;
	for (unsigned i = 0; i < e->nruns && !any; i++)
		if (e->runs[i].js)
			any = &e->runs[i];
	const char *rev = any ? pcb_jv_str(pcb_jv_get(any->js, "git_revision")) : NULL;
	const char *kernel = any ? pcb_jv_str(pcb_jv_path(any->js, "system.host.kernel")) : NULL;
	char mem[32];
	pcb_fmt_size(e->job.base.mem, mem, sizeof(mem));
	fprintf(md, "# Experiment `%s`: summary\n\n", e->job.name);
	if (e->job.description[0])
		fprintf(md, "%s\n\n", e->job.description);
	fprintf(md, "pcbench git %s, kernel %s; %s guest, %u vCPU(s), duration %.3g s, seed %llu%s; %u repetitions per cell.\n"
		    "Runs: %u planned, %u ok, %u failed, %u missing.\n",
		rev ? rev : "?", kernel ? kernel : "?", mem, e->job.base.vcpus, (double)e->job.base.duration_ns / 1e9,
		(unsigned long long)e->job.base.seed, e->job.vary_seed ? " (+ repetition index)" : " (same for every repetition)",
		e->job.reps, e->nruns, e->ok, e->failed, e->missing);
	return close_out(md, e, "plotdata/summary_head.md", why, whylen);
}

/* ---- plot data ------------------------------------------------------------------------ */

static void gp_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void combo_title(const struct exp *e, unsigned w, unsigned l, char *buf, size_t len)
{
	if (e->job.nlinks > 1)
		snprintf(buf, len, "%s / %s", e->job.workloads[w], e->job.links[l].name);
	else
		snprintf(buf, len, "%s", e->job.workloads[w]);
}

/* The repetition whose migration time is the median of the cell's runs that
 * have a timeline (lower median for an even count). */
static const struct runrec *representative(const struct exp *e, unsigned p, unsigned w, unsigned l)
{
	const struct runrec *rr[1024], *t[1024];
	unsigned n = cell_runs(e, p, w, l, rr), k = 0;
	for (unsigned i = 0; i < n; i++)
		if (rr[i]->has_timeline)
			t[k++] = rr[i];
	if (!k)
		return NULL;
	for (unsigned i = 1; i < k; i++)       /* insertion sort by migration time */
		for (unsigned j = i; j > 0 && jnum(t[j - 1]->js, "results.time.total_migration_ns") >
						 jnum(t[j]->js, "results.time.total_migration_ns"); j--) {
			const struct runrec *x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return t[(k - 1) / 2];
}

struct tl_ev {
	double t_ms;
	uint64_t page;
	int cls;                     /* 0 demand install, 1 background install, 2 drain install, 3 fault */
};

static int cmp_ev(const void *a, const void *b)
{
	double x = ((const struct tl_ev *)a)->t_ms, y = ((const struct tl_ev *)b)->t_ms;
	return x < y ? -1 : x > y;
}

/* Read a --timeline CSV: installs and faults (touches are not needed here). */
static int read_timeline(const struct exp *e, const struct runrec *rr, struct tl_ev **out, size_t *nout, char *why, size_t whylen)
{
	char path[4600], line[256];
	snprintf(path, sizeof(path), "%s/runs/%s.timeline.csv", e->dir, rr->r.id);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	size_t cap = 1 << 14, n = 0;
	struct tl_ev *ev = malloc(cap * sizeof(*ev));
	unsigned lineno = 0;
	while (ev && fgets(line, sizeof(line), f)) {
		lineno++;
		if (lineno == 1) {
			if (strncmp(line, "t_us,event,page,detail", 22)) {
				snprintf(why, whylen, "%s:1: not a pcbench timeline (header t_us,event,page,detail)", path);
				goto bad;
			}
			continue;
		}
		double t;
		char evn[16], detail[64];
		unsigned long long pg;
		if (sscanf(line, "%lf,%15[^,],%llu,%63[^\n]", &t, evn, &pg, detail) != 4) {
			snprintf(why, whylen, "%s:%u: malformed timeline line", path, lineno);
			goto bad;
		}
		int cls;
		if (!strcmp(evn, "fault")) {
			cls = 3;
		} else if (!strcmp(evn, "install")) {
			const char *k = strncmp(detail, "zero_", 5) ? detail : detail + 5;
			cls = !strcmp(k, "demand") ? 0 : !strcmp(k, "background") ? 1 : !strcmp(k, "drain") ? 2 : -1;
			if (cls < 0) {
				snprintf(why, whylen, "%s:%u: unknown install kind '%s'", path, lineno, detail);
				goto bad;
			}
		} else {
			continue;
		}
		if (n == cap) {
			struct tl_ev *ne = realloc(ev, cap * 2 * sizeof(*ev));
			if (!ne)
				break;
			ev = ne;
			cap *= 2;
		}
		ev[n++] = (struct tl_ev){ t / 1e3, pg, cls };
	}
	if (!ev || (n == cap && !feof(f))) {
		snprintf(why, whylen, "out of memory reading '%s'", path);
		goto bad;
	}
	fclose(f);
	qsort(ev, n, sizeof(*ev), cmp_ev);
	*out = ev;
	*nout = n;
	return 0;
bad:
	free(ev);
	fclose(f);
	return PCB_EXIT_DATAERR;
}

static void write_gp_array_str(FILE *m, const char *name, char **v, unsigned n)
{
	fprintf(m, "array %s[%u] = [", name, n ? n : 1);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			fputs(", ", m);
		gp_str(m, v[i]);
	}
	if (!n)
		fputs("\"\"", m);
	fputs("]\n", m);
}

static void write_gp_array_num(FILE *m, const char *name, const double *v, unsigned n)
{
	fprintf(m, "array %s[%u] = [", name, n ? n : 1);
	for (unsigned i = 0; i < n; i++)
		fprintf(m, "%s%.10g", i ? ", " : "", v[i]);
	if (!n)
		fputs("0", m);
	fputs("]\n", m);
}

/* plotdata/meta.gp's head: experiment, policies, combos (titles[c] filled for every combo c). */
static void write_meta_head(struct exp *e, FILE *m, char titles[][96])
{
	const unsigned np = e->job.npolicies, nw = e->job.nworkloads, nl = e->job.nlinks, nc = nw * nl;
	fprintf(m, "# generated by pcbench analyze from %s: do not edit\n", e->dir);
	fprintf(m, "experiment = ");
	gp_str(m, e->job.name);
	fprintf(m, "\nnrep = %u\nnpol = %u\nncombo = %u\n", e->job.reps, np, nc);
	char *names[PCB_JOB_MAX_LIST * PCB_JOB_MAX_LIST + 1];
	for (unsigned p = 0; p < np; p++)
		names[p] = e->job.policies[p];
	write_gp_array_str(m, "pol", names, np);
	for (unsigned c = 0; c < nc; c++) {
		combo_title(e, c % nw, c / nw, titles[c], sizeof(titles[c]));
		names[c] = titles[c];
	}
	write_gp_array_str(m, "combo", names, nc);
	fprintf(m, "baseline = ");
	gp_str(m, e->job.baseline);
	fprintf(m, "\ncombo_xtics = \"(");
	for (unsigned c = 0; c < nc; c++) {
		if (nl > 1)    /* workload and link on two lines: long names must not run into each other */
			fprintf(m, "%s\\\"%s\\\\n%s\\\" %u", c ? ", " : "", e->job.workloads[c % nw], e->job.links[c / nw].name, c);
		else
			fprintf(m, "%s\\\"%s\\\" %u", c ? ", " : "", titles[c], c);
	}
	fprintf(m, ")\"\nxtic_lines = %d\n", nl > 1 ? 2 : 1);
	fprintf(m, "spread_note = \"bars: median of %u repetitions; error bars: min–max\"\n", e->job.reps);
}

/* One CDF block of cell (p, c) into f; counts its faults into *count and widens [xmin, xmax]. */
static void write_cdf_cell(struct exp *e, FILE *f, unsigned p, unsigned c, const char *title, struct pcb_hist *h,
			   double *count, double *xmin, double *xmax)
{
	const unsigned nw = e->job.nworkloads;
	fprintf(f, "# %s %s: latency_us cumulative_fraction\n", title, e->job.policies[p]);
	if (cell_merged_latency(e, p, c % nw, c / nw, h) < 0 || !h->count) {
		fprintf(f, "NaN NaN\n");
	} else {
		*count = (double)h->count;
		uint64_t seen = 0;
		fprintf(f, "%.4f 0\n", (double)h->min / 1e3);
		for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++) {
			if (!h->bucket[b])
				continue;
			seen += h->bucket[b];
			double hi = (double)(pcb_hist_lower(b) + pcb_hist_width(b));
			if (hi > (double)h->max)
				hi = (double)h->max;
			fprintf(f, "%.4f %.6f\n", hi / 1e3, (double)seen / (double)h->count);
		}
		if ((double)h->min / 1e3 < *xmin)
			*xmin = (double)h->min / 1e3;
		if ((double)h->max / 1e3 > *xmax)
			*xmax = (double)h->max / 1e3;
	}
	fprintf(f, "\n\n");
}

/* fig 1: CDF of fault latency from merged histograms: index c*np + p (plotdata/cdf.dat and
 * cdf_n, cdf_title, cdf_xmin, cdf_xmax in meta.gp). */
static int write_cdf(struct exp *e, FILE *m, char titles[][96], char *why, size_t whylen)
{
	const unsigned np = e->job.npolicies, nw = e->job.nworkloads, nc = nw * e->job.nlinks;
	FILE *f = open_out(e, "plotdata/cdf.dat", why, whylen);
	if (!f)
		return PCB_EXIT_OSERR;
	double *cnt = calloc(nc * np + 1, sizeof(double));
	double xmin = INFINITY, xmax = 0;
	struct pcb_hist *h = malloc(sizeof(*h));
	for (unsigned c = 0; c < nc && h && cnt; c++)
		for (unsigned p = 0; p < np; p++)
			write_cdf_cell(e, f, p, c, titles[c], h, &cnt[c * np + p], &xmin, &xmax);
	int rc = close_out(f, e, "plotdata/cdf.dat", why, whylen);
	if (!h || !cnt) {
		snprintf(why, whylen, "out of memory");
		rc = PCB_EXIT_OSERR;
	}
	free(h);
	if (rc) {
		free(cnt);
		return rc;
	}
	write_gp_array_num(m, "cdf_n", cnt, nc * np);
	/* legend entries carry the thread placement with the latency they describe */
	char **ct = calloc(nc * np + 1, sizeof(char *));
	for (unsigned c = 0; ct && c < nc; c++)
		for (unsigned p = 0; p < np; p++) {
			const struct runrec *rr[1024];
			unsigned n = cell_runs(e, p, c % nw, c / nw, rr);
			char t[160];
			snprintf(t, sizeof(t), "%s: %.0f faults, same CPU %u/%u", e->job.policies[p], cnt[c * np + p],
				 same_cpu_runs(e, p, c % nw, c / nw), n);
			ct[c * np + p] = strdup(t);
		}
	if (ct)
		write_gp_array_str(m, "cdf_title", ct, nc * np);
	for (unsigned k = 0; ct && k < nc * np; k++)
		free(ct[k]);
	free(ct);
	free(cnt);
	if (!isfinite(xmin) || xmax <= 0) {
		xmin = 1;
		xmax = 1000;
	}
	fprintf(m, "cdf_xmin = %.6g\ncdf_xmax = %.6g\n", pow(10, floor(log10(xmin))), pow(10, ceil(log10(xmax))));
	return 0;
}

/* figs 4, 5: bars, one file per metric, index p, rows: combo x median min max n */
static int write_bars(struct exp *e, FILE *m, char *why, size_t whylen)
{
	static const struct { const char *file, *path; double scale; } bars[] = {
		{ "bars_migration_time_ms.dat", "results.time.total_migration_ns", 1e-6 },
		{ "bars_blocktime_ms.dat", "results.blocktime.total_ns", 1e-6 },
		{ "bars_hit_rate_pct.dat", "results.prefetch.hit_rate", 100 },
		{ "bars_accuracy_pct.dat", "results.prefetch.accuracy", 100 },
	};
	const unsigned np = e->job.npolicies, nw = e->job.nworkloads, nc = nw * e->job.nlinks;
	double bw = 0.8 / np;
	int rc = 0;
	fprintf(m, "bar_width = %.6g\n", bw);
	for (unsigned b = 0; b < sizeof(bars) / sizeof(bars[0]) && !rc; b++) {
		char name[128];
		snprintf(name, sizeof(name), "plotdata/%s", bars[b].file);
		FILE *f = open_out(e, name, why, whylen);
		if (!f)
			return PCB_EXIT_OSERR;
		for (unsigned p = 0; p < np; p++) {
			fprintf(f, "# %s: combo x median min max n\n", e->job.policies[p]);
			for (unsigned c = 0; c < nc; c++) {
				struct pcb_spread s = cell_spread(e, p, c % nw, c / nw, bars[b].path, bars[b].scale);
				double x = c + (p - (np - 1) / 2.0) * bw;
				if (s.n)
					fprintf(f, "%u %.4f %.6g %.6g %.6g %u\n", c, x, s.median, s.min, s.max, s.n);
				else
					fprintf(f, "%u %.4f NaN NaN NaN 0\n", c, x);
			}
			fprintf(f, "\n\n");
		}
		rc = close_out(f, e, name, why, whylen);
	}
	return rc;
}

/* fig 3: the share of pages present over time, in 500 steps, by how they arrived. */
static void write_present_curve(FILE *fp, const struct tl_ev *ev, size_t n, double total)
{
	double tmax = n ? ev[n - 1].t_ms : 0;
	uint64_t cum[3] = { 0, 0, 0 };
	const unsigned steps = 500;
	size_t i = 0;
	fprintf(fp, "0 0 0 0\n");
	for (unsigned s = 1; s <= steps; s++) {
		double ts = tmax * s / steps;
		for (; i < n && ev[i].t_ms <= ts; i++)
			if (ev[i].cls < 3)
				cum[ev[i].cls]++;
		fprintf(fp, "%.3f %.4f %.4f %.4f\n", ts, 100.0 * (double)cum[0] / total,
			100.0 * (double)(cum[0] + cum[1]) / total, 100.0 * (double)(cum[0] + cum[1] + cum[2]) / total);
	}
	fprintf(fp, "\n\n");
}

/* fig 6: background installs, drain installs and faults (three blocks) of one run; background
 * installs thinned to at most 40000 points, faults and drain all.  Returns the thinning stride. */
static size_t write_faultmap_run(FILE *fm, const struct tl_ev *ev, size_t n)
{
	size_t nbg = 0;
	for (size_t j = 0; j < n; j++)
		nbg += ev[j].cls == 1;
	size_t stride = nbg > 40000 ? (nbg + 39999) / 40000 : 1, seen = 0;
	for (int cls = 1; cls <= 3; cls++) {
		bool any = false;
		for (size_t j = 0; j < n; j++) {
			if (ev[j].cls != cls)
				continue;
			if (cls == 1 && seen++ % stride)
				continue;
			fprintf(fm, "%.3f %.4f\n", ev[j].t_ms, (double)ev[j].page * 4096.0 / (1 << 20));
			any = true;
		}
		if (!any)
			fprintf(fm, "NaN NaN\n");
		fprintf(fm, "\n\n");
	}
	return stride;
}

/* What figs 3 and 6 collect for meta.gp while their data files are written. */
struct timeline_meta {
	double *pres_ok, *map_ok, *pres_xmax;
	char **pres_title, **map_title;
	unsigned fw;          /* the faultmap workload */
};

/* figs 3 and 6 for cell (p, c) from its representative run's timeline. */
static int write_timeline_cell(struct exp *e, FILE *fp, FILE *fm, unsigned p, unsigned c, const char *title,
			       struct timeline_meta *tm, char *why, size_t whylen)
{
	const unsigned nw = e->job.nworkloads, nc = nw * e->job.nlinks;
	unsigned w = c % nw, l = c / nw, k = p * nc + c;
	const struct runrec *rr = representative(e, p, w, l);
	char t[160];
	fprintf(fp, "# %s %s: t_ms demand_pct demand+background_pct all_pct\n", e->job.policies[p], title);
	bool want_map = w == tm->fw && l == 0;
	if (want_map)
		fprintf(fm, "# %s %s: blocks background, drain, faults: t_ms address_MiB\n", e->job.policies[p], title);
	if (!rr) {
		fprintf(fp, "NaN NaN NaN NaN\n\n\n");
		snprintf(t, sizeof(t), "%s, %s: no timeline", e->job.policies[p], title);
		tm->pres_title[k] = strdup(t);
		if (want_map) {
			fprintf(fm, "NaN NaN\n\n\nNaN NaN\n\n\nNaN NaN\n\n\n");
			tm->map_title[p] = strdup(t);
		}
		return 0;
	}
	struct tl_ev *ev;
	size_t n;
	int rc = read_timeline(e, rr, &ev, &n, why, whylen);
	if (rc)
		return rc;
	double tmax = n ? ev[n - 1].t_ms : 0;
	if (tmax > tm->pres_xmax[c])
		tm->pres_xmax[c] = tmax;
	write_present_curve(fp, ev, n, jnum(rr->js, "results.pages.total"));
	tm->pres_ok[k] = 1;
	snprintf(t, sizeof(t), "%s, %s (median run: rep %u/%u)", e->job.policies[p], title, rr->r.rep + 1, e->job.reps);
	tm->pres_title[k] = strdup(t);
	if (want_map) {
		size_t stride = write_faultmap_run(fm, ev, n);
		tm->map_ok[p] = 1;
		uint64_t nf = 0;
		for (size_t j = 0; j < n; j++)
			nf += ev[j].cls == 3;
		snprintf(t, sizeof(t), "%s: %llu faults (median run: rep %u/%u%s)", e->job.policies[p], (unsigned long long)nf,
			 rr->r.rep + 1, e->job.reps, stride > 1 ? "; background thinned" : "");
		tm->map_title[p] = strdup(t);
	}
	free(ev);
	return 0;
}

/* figs 3 and 6 from the representative run's timeline (plotdata/present.dat, faultmap.dat). */
static int write_timelines(struct exp *e, FILE *m, char titles[][96], char *why, size_t whylen)
{
	const unsigned np = e->job.npolicies, nw = e->job.nworkloads, nc = nw * e->job.nlinks;
	int rc = 0;
	struct timeline_meta tm = {
		.pres_ok = calloc(np * nc + 1, sizeof(double)),
		.map_ok = calloc(np + 1, sizeof(double)),
		.pres_title = calloc(np * nc + 1, sizeof(char *)),
		.map_title = calloc(np + 1, sizeof(char *)),
		.pres_xmax = calloc(nc + 1, sizeof(double)),
	};
	for (unsigned w = 0; w < nw; w++)
		if (!strcmp(e->job.workloads[w], e->job.faultmap_workload))
			tm.fw = w;
	FILE *fp = open_out(e, "plotdata/present.dat", why, whylen);
	FILE *fm = fp ? open_out(e, "plotdata/faultmap.dat", why, whylen) : NULL;
	if (!fp || !fm) {
		rc = PCB_EXIT_OSERR;
	} else if (!tm.pres_ok || !tm.map_ok || !tm.pres_title || !tm.map_title || !tm.pres_xmax) {
		snprintf(why, whylen, "out of memory");
		rc = PCB_EXIT_OSERR;
	}
	for (unsigned p = 0; p < np && !rc; p++)
		for (unsigned c = 0; c < nc && !rc; c++)
			rc = write_timeline_cell(e, fp, fm, p, c, titles[c], &tm, why, whylen);
	if (fp) {
		int r2 = close_out(fp, e, "plotdata/present.dat", why, whylen);
		rc = rc ? rc : r2;
	}
	if (fm) {
		int r2 = close_out(fm, e, "plotdata/faultmap.dat", why, whylen);
		rc = rc ? rc : r2;
	}
	if (!rc) {
		write_gp_array_num(m, "present_ok", tm.pres_ok, np * nc);
		write_gp_array_str(m, "present_title", tm.pres_title, np * nc);
		for (unsigned c = 0; c < nc; c++)
			if (!(tm.pres_xmax[c] > 0))
				tm.pres_xmax[c] = 1;
		write_gp_array_num(m, "present_xmax", tm.pres_xmax, nc);
		write_gp_array_num(m, "map_ok", tm.map_ok, np);
		write_gp_array_str(m, "map_title", tm.map_title, np);
		fprintf(m, "map_combo = ");
		char t[96];
		combo_title(e, tm.fw, 0, t, sizeof(t));
		gp_str(m, t);
		fprintf(m, "\nmap_ymax = %.6g\n", (double)e->job.base.mem / (1 << 20));
	}
	for (unsigned k = 0; tm.pres_title && k < np * nc; k++)
		free(tm.pres_title[k]);
	for (unsigned k = 0; tm.map_title && k < np; k++)
		free(tm.map_title[k]);
	free(tm.pres_ok);
	free(tm.pres_xmax);
	free(tm.map_ok);
	free(tm.pres_title);
	free(tm.map_title);
	return rc;
}

/* One fig 2 block: guest throughput of cell (policy p incl. baseline, combo c) over time,
 * median and spread over its runs.  Returns whether it had data; widens the ranges. */
static bool write_progress_cell(struct exp *e, FILE *f, unsigned p, unsigned c, const char *title, double *disp_ms,
				double *pxmax, double *pymax)
{
	const unsigned np = e->job.npolicies, nw = e->job.nworkloads;
	unsigned w = c % nw, l = c / nw;
	/* the baseline ran on link 0 only: it is the baseline of every link */
	const struct runrec *rr[1024];
	unsigned n = cell_runs(e, p, w, p == np ? 0 : l, rr);
	fprintf(f, "# %s %s: t_ms median_Mops_per_s min max\n", pcb_job_policy_name(&e->job, p), title);
	size_t len = SIZE_MAX;
	double bucket_ms = NAN;
	unsigned used = 0;
	const struct pcb_jv *tot[1024];
	for (unsigned i = 0; i < n; i++) {
		const struct pcb_jv *t = pcb_jv_path(rr[i]->js, "results.progress.total");
		double bms = jnum(rr[i]->js, "results.progress.bucket_ms");
		if (!t || t->type != PCB_J_ARR || !(bms > 0))
			continue;
		if (isnan(bucket_ms))
			bucket_ms = bms;
		if (bms != bucket_ms)
			continue;
		tot[used++] = t;
		/* only buckets that ended before the guest stopped (the last one is partial) */
		double nc = jnum(rr[i]->js, "results.progress.complete_buckets");
		size_t tn = nc >= 0 && nc < (double)t->n ? (size_t)nc : t->n;
		if (tn < len)
			len = tn;
	}
	if (!used || !len || len == SIZE_MAX) {
		fprintf(f, "NaN NaN NaN NaN\n\n\n");
		return false;
	}
	/* display buckets of k recorded ones: at most ~60 points per run, so that a
	 * reader sees the trend rather than scheduling noise of 10 ms buckets */
	size_t k = (len + 59) / 60;
	if (k < 1)
		k = 1;
	*disp_ms = bucket_ms * (double)k;
	for (size_t b = 0; b + k <= len; b += k) {
		double v[1024];
		for (unsigned i = 0; i < used; i++) {
			double sum = 0, x;
			for (size_t q = b; q < b + k; q++)
				sum += pcb_jv_num(tot[i]->kids[q], &x) == 0 ? x : NAN;
			v[i] = sum / (*disp_ms / 1e3) / 1e6;
		}
		struct pcb_spread s = pcb_spread_of(v, used);
		double t = ((double)b + (double)k / 2) * bucket_ms;
		fprintf(f, "%.3f %.6g %.6g %.6g\n", t, s.median, s.min, s.max);
		if (t > *pxmax)
			*pxmax = t;
		if (s.n && s.max > *pymax)
			*pymax = s.max;
	}
	fprintf(f, "\n\n");
	return true;
}

/* fig 2: guest throughput over time (results.progress, contract of issue #4): plotdata/progress.dat
 * and its ranges in meta.gp. */
static int write_progress(struct exp *e, FILE *m, char titles[][96], char *why, size_t whylen)
{
	const unsigned nc = e->job.nworkloads * e->job.nlinks, npa = e->npol_all;
	double *ok = calloc(nc * npa + 1, sizeof(double));
	FILE *f = open_out(e, "plotdata/progress.dat", why, whylen);
	if (!f || !ok) {
		free(ok);
		if (f) {
			fclose(f);
			snprintf(why, whylen, "out of memory");
		}
		return PCB_EXIT_OSERR;
	}
	double disp_ms = NAN, pxmax = 0, pymax = 0;
	for (unsigned c = 0; c < nc; c++)
		for (unsigned p = 0; p < npa; p++)
			if (write_progress_cell(e, f, p, c, titles[c], &disp_ms, &pxmax, &pymax))
				ok[c * npa + p] = 1;
	int rc = close_out(f, e, "plotdata/progress.dat", why, whylen);
	write_gp_array_num(m, "progress_ok", ok, nc * npa);
	free(ok);
	fprintf(m, "have_progress = 1\nhave_baseline = %d\nprogress_bucket_ms = %g\n", e->job.baseline[0] ? 1 : 0,
		isnan(disp_ms) ? 0 : disp_ms);
	/* fixed ranges: a panel whose runs all failed is drawn empty instead of failing */
	fprintf(m, "progress_xmax = %g\nprogress_ymax = %g\n", pxmax > 0 ? pxmax : 1, pymax > 0 ? pymax * 1.05 : 1);
	return rc;
}

/* plotdata/: the data files of the figures and meta.gp, which the gnuplot scripts load. */
static int write_plotdata(struct exp *e, char *why, size_t whylen)
{
	char path[4600];
	snprintf(path, sizeof(path), "%s/plotdata", e->dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "cannot create '%s': %s", path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	FILE *m = open_out(e, "plotdata/meta.gp", why, whylen);
	if (!m)
		return PCB_EXIT_OSERR;
	char titles[PCB_JOB_MAX_LIST * PCB_JOB_MAX_LIST][96];
	write_meta_head(e, m, titles);
	int rc = write_cdf(e, m, titles, why, whylen);
	if (rc) {
		fclose(m);
		return rc;
	}
	rc = write_bars(e, m, why, whylen);
	if (!rc)
		rc = write_timelines(e, m, titles, why, whylen);
	bool have_progress = false;
	for (unsigned i = 0; i < e->nruns; i++)
		if (e->runs[i].js && pcb_jv_path(e->runs[i].js, "results.progress.total"))
			have_progress = true;
	if (!rc && have_progress) {
		rc = write_progress(e, m, titles, why, whylen);
	} else {
		fprintf(m, "have_progress = 0\nhave_baseline = %d\n", e->job.baseline[0] ? 1 : 0);
		fprintf(m, "progress_why = \"The result files of this experiment carry no results.progress (guest\\n"
			   "throughput over time), which this build of pcbench does not record.\\n"
			   "This figure is drawn once runs record it (open issue #4).\"\n");
	}
	int r2 = close_out(m, e, "plotdata/meta.gp", why, whylen);
	return rc ? rc : r2;
}

int pcb_analyze(const char *dir, int verbose, char *why, size_t whylen)
{
	struct exp *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	int rc = load(e, dir, verbose, why, whylen);
	if (!rc && !e->ok) {
		snprintf(why, whylen, "%s: no successful run to analyze (%u planned, %u failed, %u missing)", dir, e->nruns,
			 e->failed, e->missing);
		rc = PCB_EXIT_DATAERR;
	}
	if (!rc)
		rc = write_tidy(e, why, whylen);
	if (!rc)
		rc = write_summary_csv(e, why, whylen);
	if (!rc)
		rc = write_plotdata(e, why, whylen);
	if (!rc)
		rc = write_summary_head(e, why, whylen);
	for (unsigned i = 0; e->runs && i < e->nruns; i++)
		pcb_jv_free(e->runs[i].js);
	free(e->runs);
	free(e);
	return rc;
}
