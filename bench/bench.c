/* pcbench bench: the experiment loop.  Each run is a child process
 * (/proc/self/exe run ...; child.c) so that a crash or a hang in one run cannot take
 * the matrix down; its JSON is written to runs/ID.json.tmp and renamed to
 * runs/ID.json only when the run exited 0 and the file parses with status
 * "ok" -- so "runs/ID.json exists" means "done" and a resumed experiment
 * skips exactly the completed runs (resultsdir.c). */
#include "bench/bench.h"
#include "bench/internal.h"
#include "cli/options.h"
#include "bench/analyze.h"
#include "common/util.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

void bench_fmt_hms(double s, char *buf, size_t len)
{
	if (s < 0 || s != s)
		s = 0;
	unsigned t = (unsigned)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%u:%02u", t / 60, t % 60);
}

/* cur_s: how long the run in progress has been going (0 between runs). */
void bench_progress_line(const struct progress *pg, unsigned idx, const char *id, const char *what, double cur_s)
{
	char el[32], eta[32];
	double elapsed = (double)(pcb_now_ns() - pg->t0) / 1e9;
	bench_fmt_hms(elapsed, el, sizeof(el));
	unsigned left = pg->pending - pg->done_now;
	if (pg->done_now) {
		double rest = pg->sum_wall / pg->done_now * left - cur_s;
		bench_fmt_hms(rest > 0 ? rest : 0, eta, sizeof(eta));
	}
	else
		snprintf(eta, sizeof(eta), "?");
	if (pg->tty)
		fprintf(stderr, "\r\033[K[%u/%u] %s %s | %u left | elapsed %s | ETA %s", idx + 1, pg->total, id, what,
			left, el, eta);
	else
		fprintf(stderr, "bench: [%u/%u] %s %s; %u left, elapsed %s, ETA %s\n", idx + 1, pg->total, id, what, left,
			el, eta);
	fflush(stderr);
}

static void log_tail(const char *dir, const char *id)
{
	char path[4600], line[512], last[3][512] = { "", "", "" };
	snprintf(path, sizeof(path), "%s/runs/%s.log", dir, id);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	unsigned n = 0;
	while (fgets(line, sizeof(line), f))
		snprintf(last[n++ % 3], sizeof(last[0]), "%s", line);
	fclose(f);
	for (unsigned i = n > 3 ? n - 3 : 0; i < n; i++)
		fprintf(stderr, "    | %s", last[i % 3]);
}

static const char *exe_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return buf;
}

/* --shard I/N into bench_shard_i, bench_shard_n. */
static int parse_shard(const char *shard)
{
	char *end;
	unsigned long si = strtoul(shard, &end, 10), sn = *end == '/' ? strtoul(end + 1, &end, 10) : 0;
	if (*end || si < 1 || sn < 1 || si > sn || sn > 100000) {
		pcb_err("bench: invalid value for --shard: '%s' (want I/N with 1 <= I <= N, e.g. 2/4)", shard);
		return PCB_EXIT_USAGE;
	}
	bench_shard_i = (unsigned)si;
	bench_shard_n = (unsigned)sn;
	return 0;
}

/* --dry-run: the matrix and every command line this shard would run, nothing started. */
static void print_dry_run(const struct pcb_job *job, unsigned n)
{
	printf("experiment %s: %u runs (%u policies%s x %u workloads x %u links x %u reps)\n", job->name, n,
	       job->npolicies, job->baseline[0] ? " + baseline" : "", job->nworkloads, job->nlinks, job->reps);
	static char store[PCB_JOB_MAX_OPTS * 3 + 10][4200];
	char *av[PCB_JOB_MAX_OPTS * 3 + 12];
	bench_record_traces(job, "pcbench", "DIR", true);
	for (unsigned i = 0; i < n; i++) {
		if (!bench_in_share(i))
			continue;
		struct pcb_job_run r;
		pcb_job_run_at(job, i, &r);
		bench_build_argv(job, &r, "pcbench", "DIR", store, av);
		printf("%-40s", r.id);
		for (char **a = av + 1; *a; a++)
			printf(" %s", *a);
		printf("\n");
	}
}

/* Mark every run: another shard's (-2), already done (0, resumed) or pending (-1, counted in
 * pg->pending).  Returns how many runs are this shard's. */
static unsigned plan_runs(const struct pcb_job *job, const char *dir, struct runstat *st, unsigned n, struct progress *pg)
{
	unsigned nshare = 0;
	for (unsigned i = 0; i < n; i++) {
		struct pcb_job_run r;
		pcb_job_run_at(job, i, &r);
		st[i].status = -1;
		if (!bench_in_share(i)) {
			st[i].status = -2;           /* another shard's */
			continue;
		}
		nshare++;
		st[i].seed = pcb_job_seed(job, &r);
		if (bench_run_done(dir, r.id)) {
			st[i].status = 0;
			st[i].resumed = true;
		} else {
			pg->pending++;
		}
	}
	return nshare;
}

/* Run #i in a child; its result file becomes runs/ID.json only when it says status ok, else
 * runs/ID.failed.json.  Returns the run's exit code (0 ok). */
static int run_one(const struct pcb_job *job, const struct pcb_job_run *r, unsigned i, const char *exe, const char *dir,
		   struct progress *pg, double *wall_s)
{
	if (pg->tty)
		bench_progress_line(pg, i, r->id, "starting", 0);
	uint64_t t0 = pcb_now_ns();
	int ec = bench_run_child(job, r, exe, dir, pg, i);
	*wall_s = (double)(pcb_now_ns() - t0) / 1e9;
	char tmp[4600], fin[4600];
	snprintf(tmp, sizeof(tmp), "%s/runs/%s.json.tmp", dir, r->id);
	snprintf(fin, sizeof(fin), "%s/runs/%s.json", dir, r->id);
	if (ec == 0 && !bench_result_ok(tmp))
		ec = PCB_EXIT_SOFTWARE;   /* exit 0 but no valid result: count as failed */
	if (ec == 0 && rename(tmp, fin) < 0)
		ec = PCB_EXIT_OSERR;
	if (ec != 0) {
		snprintf(fin, sizeof(fin), "%s/runs/%s.failed.json", dir, r->id);
		rename(tmp, fin);   /* keep what the failed run reported, if anything */
	}
	return ec;
}

/* Every pending run of this shard, in order, until done or interrupted; the manifest is
 * rewritten after each.  Returns the first failure's exit code (0 none); *nfail counts them. */
static int run_pending(const struct pcb_job *job, const char *exe, const char *dir, struct runstat *st, unsigned n,
		       struct progress *pg, const char *started, unsigned *nfail)
{
	int first_fail = 0;
	for (unsigned i = 0; i < n && !interrupted; i++) {
		if (st[i].status == 0 || st[i].status == -2)
			continue;
		struct pcb_job_run r;
		pcb_job_run_at(job, i, &r);
		const char *id = r.id;
		double wall;
		int ec = run_one(job, &r, i, exe, dir, pg, &wall);
		if (interrupted && ec != 0) {
			st[i].status = -1;   /* cut short by the user: not a failure, rerun on resume */
			break;
		}
		st[i].status = ec;
		st[i].wall_s = wall;
		pg->done_now++;
		pg->sum_wall += wall;
		char what[96];
		if (ec)
			snprintf(what, sizeof(what), "FAILED (exit %d, %.1f s)", ec, wall);
		else
			snprintf(what, sizeof(what), "ok (%.1f s)", wall);
		bench_progress_line(pg, i, id, what, 0);
		if (ec) {
			(*nfail)++;
			if (!first_fail)
				first_fail = ec;
			if (pg->tty)
				fputc('\n', stderr);
			fprintf(stderr, "bench: run %s failed with exit %d; log %s/runs/%s.log:\n", id, ec, dir, id);
			log_tail(dir, id);
		}
		if (bench_write_manifest(dir, job, st, started, false) < 0)
			pcb_warn("bench: cannot write %s/manifest.json", dir);
	}
	return first_fail;
}

bool bench_options(enum pcb_cmd cmd, struct pcb_config *opt, int argc, char **argv, int *rc)
{
	pcb_cmd_defaults(cmd, opt);
	int prc = pcb_cmd_parse(cmd, opt, argc, argv, 1);
	*rc = prc == 1 ? 0 : prc;   /* 1: --help or --version printed */
	return prc == 0;
}

int pcb_cmd_bench(int argc, char **argv)
{
	static struct pcb_config opt;   /* the table's options of scope bench (cli/options.c) */
	int rc;
	if (!bench_options(PCB_CMD_BENCH, &opt, argc, argv, &rc))
		return rc;
	const char *jobpath = opt.nargs ? opt.args[0] : NULL, *out = opt.bench.out[0] ? opt.bench.out : NULL;
	const char *parent = opt.bench.results;
	bool fresh = opt.bench.fresh;
	if (opt.bench.shard[0] && (rc = parse_shard(opt.bench.shard)) != 0)
		return rc;
	if (!jobpath) {
		pcb_err("bench: missing job file (e.g. pcbench bench configs/default.conf)");
		return PCB_EXIT_USAGE;
	}
	if (out && fresh) {
		pcb_err("bench: --out and --fresh cannot be combined");
		return PCB_EXIT_USAGE;
	}
	static struct pcb_job job;
	char why[1024];
	if ((rc = pcb_job_load(jobpath, &job, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	unsigned n = pcb_job_nruns(&job);
	if (opt.bench.dry_run) {
		print_dry_run(&job, n);
		return 0;
	}
	char exe[4096];
	if (!exe_path(exe, sizeof(exe))) {
		pcb_err("bench: cannot find my own executable (/proc/self/exe): %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	char dir[4096], started[32];
	struct tm tm;
	bench_utc_now(started, sizeof(started), &tm);
	bool resuming;
	if ((rc = bench_open_results_dir(&job, out, fresh, parent, started, &tm, argc, argv, dir, sizeof(dir), &resuming)) != 0)
		return rc;

	struct runstat *st = calloc(n, sizeof(*st));
	if (!st) {
		pcb_err("out of memory");
		return PCB_EXIT_OSERR;
	}
	struct progress pg = { .tty = isatty(2), .total = n, .t0 = pcb_now_ns() };
	unsigned nshare = plan_runs(&job, dir, st, n, &pg);
	if (bench_shard_n > 1)
		fprintf(stderr, "bench: experiment %s, shard %u/%u: %u of its %u runs, %u to do%s; results in %s\n", job.name,
			bench_shard_i, bench_shard_n, nshare, n, pg.pending, resuming ? " (resuming: completed runs are skipped)" : "", dir);
	else
		fprintf(stderr, "bench: experiment %s: %u runs, %u to do%s; results in %s\n", job.name, n, pg.pending,
			resuming ? " (resuming: completed runs are skipped)" : "", dir);

	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	unsigned nfail = 0;
	if (pg.pending && (rc = bench_record_traces(&job, exe, dir, false)) != 0) {
		free(st);
		return rc;
	}
	int first_fail = run_pending(&job, exe, dir, st, n, &pg, started, &nfail);
	if (pg.tty)
		fputc('\n', stderr);
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++)
		ok += st[i].status == 0;
	bool complete = ok == nshare;
	bench_write_manifest(dir, &job, st, started, complete);
	free(st);
	if (complete)
		bench_mark_complete(dir);
	double total = (double)(pcb_now_ns() - pg.t0) / 1e9;
	char el[32];
	bench_fmt_hms(total, el, sizeof(el));
	fprintf(stderr, "bench: %u of %u runs ok, %u failed, %u not run; this session %s\n", ok, nshare, nfail,
		nshare - ok - nfail, el);
	if (!out)
		bench_link_latest(&job, parent, dir);
	if (ok) {
		rc = pcb_analyze(dir, (int)opt.verbose, why, sizeof(why));
		if (rc) {
			pcb_err("analyze: %s", why);
			return rc;
		}
		fprintf(stderr, "bench: tidy data %s/results.csv; summary, statistics and figures: make plots RESULTS=%s\n", dir,
			dir);
	}
	if (interrupted) {
		fprintf(stderr, "bench: interrupted; run the same command again to resume (completed runs are kept)\n");
		return 130;
	}
	printf("%s\n", dir);
	return first_fail;
}
