/* pcbench analyze: results directory -> tidy CSV and summary tables; the
 * plot data are plotdata.c's.  See bench/analyze.h for the outputs and
 * bench/stats.h for the statistics. */
#include "bench/analyze.h"
#include "bench/internal.h"
#include "bench/stats.h"
#include "common/jsonread.h"
#include "common/util.h"
#include <errno.h>
#include <math.h>
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

double bench_jnum(const struct pcb_jv *js, const char *path)
{
	double d;
	return pcb_jv_num(pcb_jv_path(js, path), &d) == 0 ? d : NAN;
}

FILE *bench_open_out(const struct exp *e, const char *name, char *why, size_t whylen)
{
	char path[4600];
	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		snprintf(why, whylen, "cannot write '%s': %s", path, strerror(errno));
	return f;
}

int bench_close_out(FILE *f, const struct exp *e, const char *name, char *why, size_t whylen)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		snprintf(why, whylen, "error writing '%s/%s'", e->dir, name);
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* Runs of one cell (policy p incl. baseline, workload w, link l) that succeeded. */
unsigned bench_cell_runs(const struct exp *e, unsigned p, unsigned w, unsigned l, const struct runrec **out)
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

struct pcb_spread bench_cell_spread(const struct exp *e, unsigned p, unsigned w, unsigned l, const char *path, double scale)
{
	const struct runrec *rr[1024];
	unsigned n = bench_cell_runs(e, p, w, l, rr);
	double v[1024];
	for (unsigned i = 0; i < n; i++)
		v[i] = bench_jnum(rr[i]->js, path) * scale;
	return pcb_spread_of(v, n);
}

int bench_cell_merged_latency(const struct exp *e, unsigned p, unsigned w, unsigned l, struct pcb_hist *h)
{
	const struct runrec *rr[1024];
	unsigned n = bench_cell_runs(e, p, w, l, rr);
	pcb_hist_init(h);
	for (unsigned i = 0; i < n; i++)
		if (pcb_hist_from_json(h, pcb_jv_path(rr[i]->js, "results.faults.latency")) < 0)
			return -1;
	return 0;
}

/* Runs of a cell in which vCPU 0 and the demand thread ended on the same CPU. */
unsigned bench_same_cpu_runs(const struct exp *e, unsigned p, unsigned w, unsigned l)
{
	const struct runrec *rr[1024];
	unsigned n = bench_cell_runs(e, p, w, l, rr), same = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct pcb_jv *vc = pcb_jv_path(rr[i]->js, "results.guest.vcpus");
		double dc = bench_jnum(rr[i]->js, "results.pager.demand_thread_cpu");
		if (vc && vc->type == PCB_J_ARR && vc->n && bench_jnum(vc->kids[0], "cpu_end") == dc)
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
	FILE *f = bench_open_out(e, "results.csv", why, whylen);
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
			double v = bench_jnum(rr->js, scalars[m].path);
			if (!pcb_jv_path(rr->js, scalars[m].path))
				continue;     /* metric absent in this build's JSON (e.g. progress) */
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, scalars[m].name, "value", v * scalars[m].scale);
		}
		for (unsigned h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
			const struct pcb_jv *o = pcb_jv_path(rr->js, hists[h].path);
			if (!o)
				continue;
			for (unsigned s = 0; s < sizeof(hist_stats) / sizeof(hist_stats[0]); s++) {
				double v = bench_jnum(o, hist_keys[s]);
				pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, hists[h].name, hist_stats[s], s ? v * hists[h].scale : v);
			}
		}
		/* thread placement goes with every latency figure */
		const struct pcb_jv *vc = pcb_jv_path(rr->js, "results.guest.vcpus");
		for (size_t v = 0; vc && vc->type == PCB_J_ARR && v < vc->n; v++) {
			char metric[48];
			snprintf(metric, sizeof(metric), "vcpu%zu_cpu", v);
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, metric, "start", bench_jnum(vc->kids[v], "cpu_start"));
			pcb_csv_tidy_row(f, rr->r.id, pol, wl, ln, rr->rep, metric, "end", bench_jnum(vc->kids[v], "cpu_end"));
		}
	}
	return bench_close_out(f, e, "results.csv", why, whylen);
}

static int write_summary_csv(struct exp *e, char *why, size_t whylen)
{
	FILE *f = bench_open_out(e, "summary.csv", why, whylen);
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
					struct pcb_spread s = bench_cell_spread(e, p, w, l, scalars[m].path, scalars[m].scale);
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
				if (bench_cell_merged_latency(e, p, w, l, h) < 0) {
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
				unsigned n = bench_cell_runs(e, p, w, l, rr);
				if (n && p < e->job.npolicies)   /* placement goes with every latency figure */
					pcb_csv_tidy_row(f, id, pol, wl, ln, "all", "vcpu0_demand_same_cpu", "runs",
							 bench_same_cpu_runs(e, p, w, l));
			}
	return bench_close_out(f, e, "summary.csv", why, whylen);
}

/* ---- summary.md / summary.tex ------------------------------------------------------- */

/* The descriptive head of summary.md (experiment, revision, host, runs ok), written to
 * plotdata/summary_head.md: analysis/stats.py puts it above the findings, tables and tests it
 * computes with SciPy (intervals and hypothesis tests are not computed here; docs/design.md). */
static int write_summary_head(struct exp *e, char *why, size_t whylen)
{
	FILE *md = bench_open_out(e, "plotdata/summary_head.md", why, whylen);
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
	return bench_close_out(md, e, "plotdata/summary_head.md", why, whylen);
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
		rc = bench_write_plotdata(e, why, whylen);
	if (!rc)
		rc = write_summary_head(e, why, whylen);
	for (unsigned i = 0; e->runs && i < e->nruns; i++)
		pcb_jv_free(e->runs[i].js);
	free(e->runs);
	free(e);
	return rc;
}
