/* pcbench bench: the experiment runner.  Each run is a child process
 * (/proc/self/exe run ...) so that a crash or a hang in one run cannot take
 * the matrix down; its JSON is written to runs/ID.json.tmp and renamed to
 * runs/ID.json only when the run exited 0 and the file parses with status
 * "ok" -- so "runs/ID.json exists" means "done" and a resumed experiment
 * skips exactly the completed runs. */
#include "bench/bench.h"
#include "cli/options.h"
#include "bench/analyze.h"
#include "bench/benchjob.h"
#include "common/json.h"
#include "common/jsonread.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

/* --shard=I/N: this invocation runs the runs whose index (execution order) is I-1 modulo N.
 * A shard's directory holds a `shard` file ("I/N") and only its share in the manifest. */
static unsigned shard_i = 1, shard_n = 1;

static bool in_share(unsigned run_index)
{
	return run_index % shard_n == shard_i - 1;
}

/* The shard a results directory belongs to ("" unsharded) equals this invocation's. */
static bool same_shard(const char *dir)
{
	char p[4600], want[32], got[32] = "";
	snprintf(p, sizeof(p), "%s/shard", dir);
	FILE *f = fopen(p, "r");
	if (f) {
		if (!fgets(got, sizeof(got), f))
			got[0] = 0;
		fclose(f);
		got[strcspn(got, "\n")] = 0;
	}
	if (shard_n > 1)
		snprintf(want, sizeof(want), "%u/%u", shard_i, shard_n);
	else
		want[0] = 0;
	return !strcmp(got, want);
}

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		char *nb = realloc(b, cap * 2);
		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	fclose(f);
	if (b)
		*len = n;
	return b;
}

static bool same_file_content(const char *a, const char *b)
{
	size_t la, lb;
	char *x = read_all(a, &la), *y = read_all(b, &lb);
	bool same = x && y && la == lb && !memcmp(x, y, la);
	free(x);
	free(y);
	return same;
}

static int copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = read_all(from, &n);
	if (!b)
		return -1;
	FILE *f = fopen(to, "wb");
	int rc = f && fwrite(b, 1, n, f) == n ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(b);
	return rc;
}

/* A finished run: runs/ID.json parses and says status ok. */
static bool run_done(const char *dir, const char *id)
{
	char path[4600], err[128];
	snprintf(path, sizeof(path), "%s/runs/%s.json", dir, id);
	if (access(path, F_OK) != 0)
		return false;
	struct pcb_jv *v = pcb_jv_parse_file(path, err, sizeof(err));
	const char *st = pcb_jv_str(pcb_jv_get(v, "status"));
	bool ok = st && !strcmp(st, "ok");
	pcb_jv_free(v);
	return ok;
}

/* Most recent PARENT/<name>-*-<rev> with an identical job.conf and no COMPLETE marker. */
static bool find_resumable(const char *parent, const struct pcb_job *job, char *out, size_t outlen)
{
	DIR *d = opendir(parent);
	if (!d)
		return false;
	char best[512] = "", prefix[128], suffix[96];
	snprintf(prefix, sizeof(prefix), "%s-", job->name);
	snprintf(suffix, sizeof(suffix), "-%s", PCB_GITREV);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name), ls = strlen(suffix);
		if (strncmp(de->d_name, prefix, strlen(prefix)) || n < ls || strcmp(de->d_name + n - ls, suffix))
			continue;
		char p[4600];
		snprintf(p, sizeof(p), "%s/%s/COMPLETE", parent, de->d_name);
		if (access(p, F_OK) == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s/job.conf", parent, de->d_name);
		if (!same_file_content(p, job->path))
			continue;
		snprintf(p, sizeof(p), "%s/%s", parent, de->d_name);
		if (!same_shard(p))
			continue;
		if (strcmp(de->d_name, best) > 0)    /* names carry a sortable UTC date */
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	if (!best[0])
		return false;
	snprintf(out, outlen, "%s/%s", parent, best);
	return true;
}

static void fmt_hms(double s, char *buf, size_t len)
{
	if (s < 0 || s != s)
		s = 0;
	unsigned t = (unsigned)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%u:%02u", t / 60, t % 60);
}

struct runstat {
	int status;                  /* -1 not run, 0 ok, else exit code */
	bool resumed;
	double wall_s;
	uint64_t seed;
};

static int write_system_json(const char *dir, const struct pcb_job *job, const char *started, int argc, char **argv)
{
	char path[4600];
	snprintf(path, sizeof(path), "%s/system.json", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	struct pcb_sysinfo si;
	pcb_sysinfo_read(&si);
	struct pcb_json *j = pcb_json_open(f);
	pcb_json_obj_begin(j, NULL);
	pcb_json_str(j, "tool", "pcbench");
	pcb_json_str(j, "version", PCB_VERSION);
	pcb_json_str(j, "git_revision", PCB_GITREV);
	pcb_json_str(j, "experiment", job->name);
	pcb_json_str(j, "job_file", job->path);
	pcb_json_str(j, "started_utc", started);
	pcb_json_arr_begin(j, "command");
	for (int i = 0; i < argc; i++)
		pcb_json_str(j, NULL, argv[i]);
	pcb_json_arr_end(j);
	pcb_sysinfo_json(&si, j, "host");
	pcb_json_obj_end(j);
	int rc = pcb_json_close(j);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int write_manifest(const char *dir, const struct pcb_job *job, const struct runstat *st, const char *started,
			  bool complete)
{
	char path[4600], tmp[4700];
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	struct pcb_json *j = pcb_json_open(f);
	pcb_json_obj_begin(j, NULL);
	pcb_json_str(j, "experiment", job->name);
	pcb_json_str(j, "git_revision", PCB_GITREV);
	pcb_json_str(j, "started_utc", started);
	pcb_json_bool(j, "complete", complete);
	pcb_json_u64(j, "repetitions", job->reps);
	if (shard_n > 1) {
		char sh[32];
		snprintf(sh, sizeof(sh), "%u/%u", shard_i, shard_n);
		pcb_json_str(j, "shard", sh);
	}
	pcb_json_arr_begin(j, "runs");
	unsigned n = pcb_job_nruns(job);
	for (unsigned i = 0; i < n; i++) {
		if (!in_share(i))
			continue;
		struct pcb_job_run r;
		pcb_job_run_at(job, i, &r);
		pcb_json_obj_begin(j, NULL);
		pcb_json_str(j, "id", r.id);
		pcb_json_str(j, "policy", pcb_job_policy_name(job, r.policy));
		pcb_json_str(j, "workload", job->workloads[r.workload]);
		pcb_json_str(j, "link", job->links[r.link].name);
		pcb_json_u64(j, "rep", r.rep + 1);
		pcb_json_u64(j, "seed", st[i].seed);
		pcb_json_str(j, "status", st[i].status < 0 ? "not run" : st[i].status == 0 ? "ok" : "failed");
		if (st[i].status > 0)
			pcb_json_i64(j, "exit_code", st[i].status);
		pcb_json_bool(j, "from_earlier_session", st[i].resumed);
		if (st[i].wall_s > 0)
			pcb_json_dbl(j, "wall_s", st[i].wall_s);
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
	int rc = pcb_json_close(j);
	if (fclose(f) != 0)
		rc = -1;
	if (!rc && rename(tmp, path) < 0)
		rc = -1;
	return rc;
}

static bool has_option(const char *name)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (!strcmp(o->name, name))
			return true;
	return false;
}

static bool job_uses_source(const struct pcb_job *job, const struct pcb_job_run *r)
{
	for (unsigned i = 0; i < job->nopts; i++)
		if (!strcmp(job->opts[i].key, "source"))
			return true;
	for (unsigned i = 0; i < job->links[r->link].nopts; i++)
		if (!strcmp(job->links[r->link].opts[i].key, "source"))
			return true;
	return false;
}

/* argv for one run (strings live in store). */
static void build_argv(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		       char store[][4200], char **av)
{
	unsigned k = 0, a = 0;
	av[a++] = (char *)exe;
	/* a job that names a long-running `pcbench source` (source = HOST:PORT, in [experiment] or a
	 * [link]) migrates from it: this host is the destination (`pcbench dest`) */
	av[a++] = job_uses_source(job, r) ? "dest" : "run";
	snprintf(store[k], sizeof(store[0]), "--policy=%s", pcb_job_policy_real(job, r->policy));
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--workload=%s", job->workloads[r->workload]);
	av[a++] = store[k++];
	for (unsigned i = 0; i < job->nopts; i++) {
		if (!strcmp(job->opts[i].key, "seed"))
			continue;
		snprintf(store[k], sizeof(store[0]), "--%s=%s", job->opts[i].key, job->opts[i].val);
		av[a++] = store[k++];
	}
	const struct pcb_job_link *l = &job->links[r->link];
	for (unsigned i = 0; i < l->nopts; i++) {
		snprintf(store[k], sizeof(store[0]), "--%s=%s", l->opts[i].key, l->opts[i].val);
		av[a++] = store[k++];
	}
	const struct pcb_job_variant *v = pcb_job_variant_of(job, r->policy);
	for (unsigned i = 0; v && i < v->nopts; i++) {
		snprintf(store[k], sizeof(store[0]), "--%s=%s", v->opts[i].key, v->opts[i].val);
		av[a++] = store[k++];
	}
	if (v && v->record) {
		char tp[4096];
		pcb_job_trace_path(job, v, r->workload, dir, tp, sizeof(tp));
		snprintf(store[k], sizeof(store[0]), "--replay=%s", tp);
		av[a++] = store[k++];
	}
	snprintf(store[k], sizeof(store[0]), "--seed=%llu", (unsigned long long)pcb_job_seed(job, r));
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--json=%s/runs/%s.json.tmp", dir, r->id);
	av[a++] = store[k++];
	if (has_option("progress-csv")) {     /* guest progress per bucket (also in the JSON) */
		snprintf(store[k], sizeof(store[0]), "--progress-csv=%s/runs/%s.progress.csv", dir, r->id);
		av[a++] = store[k++];
	}
	if (!strcmp(job->timeline, "all") || (!strcmp(job->timeline, "first") && r->rep == 0)) {
		snprintf(store[k], sizeof(store[0]), "--timeline=%s/runs/%s.timeline.csv", dir, r->id);
		av[a++] = store[k++];
	}
	av[a] = NULL;
}

static uint64_t run_timeout(const struct pcb_job *job, const struct pcb_job_run *r)
{
	if (job->run_timeout_ns)
		return job->run_timeout_ns;
	/* auto: 10x the guest duration plus a minute (drain, verification, start-up) */
	uint64_t d = job->base.duration_ns;
	for (unsigned i = 0; i < job->links[r->link].nopts; i++)
		if (!strcmp(job->links[r->link].opts[i].key, "duration"))
			pcb_parse_duration(job->links[r->link].opts[i].val, &d);
	return 10 * d + 60 * PCB_NSEC_PER_SEC;
}

struct progress {
	bool tty;
	unsigned total, pending, done_now;
	uint64_t t0;
	double sum_wall;
};

/* cur_s: how long the run in progress has been going (0 between runs). */
static void progress_line(const struct progress *pg, unsigned idx, const char *id, const char *what, double cur_s)
{
	char el[32], eta[32];
	double elapsed = (double)(pcb_now_ns() - pg->t0) / 1e9;
	fmt_hms(elapsed, el, sizeof(el));
	unsigned left = pg->pending - pg->done_now;
	if (pg->done_now) {
		double rest = pg->sum_wall / pg->done_now * left - cur_s;
		fmt_hms(rest > 0 ? rest : 0, eta, sizeof(eta));
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

/* Run one child; returns its exit status (0 ok; 128+sig on a signal; 124 on timeout). */
static int spawn_logged(char **av, const char *exe, const char *logp, uint64_t limit, struct progress *pg, unsigned idx,
			const char *id);

static int run_child(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		     struct progress *pg, unsigned idx)
{
	static char store[PCB_JOB_MAX_OPTS * 3 + 10][4200];
	char *av[PCB_JOB_MAX_OPTS * 3 + 12];
	char logp[4600];
	build_argv(job, r, exe, dir, store, av);
	snprintf(logp, sizeof(logp), "%s/runs/%s.log", dir, r->id);
	return spawn_logged(av, exe, logp, run_timeout(job, r), pg, idx, r->id);
}

/* Run av as a child (the running binary itself) with stdout/stderr to logp; its exit status
 * (0 ok; 128+sig on a signal; 124 killed after limit).  pg: progress display (or NULL). */
static int spawn_logged(char **av, const char *exe, const char *logp, uint64_t limit, struct progress *pg, unsigned idx,
			const char *id)
{
	int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (lfd < 0)
		return PCB_EXIT_OSERR;
	{
		FILE *lf = fdopen(dup(lfd), "w");
		if (lf) {
			fprintf(lf, "#");
			for (char **a = av; *a; a++)
				fprintf(lf, " %s", *a);
			fprintf(lf, "\n");
			fclose(lf);
		}
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(lfd);
		return PCB_EXIT_OSERR;
	}
	if (pid == 0) {
		dup2(lfd, 1);
		dup2(lfd, 2);
		signal(SIGINT, SIG_DFL);
		/* the running binary itself, even if the file at exe was replaced meanwhile:
		 * every run of an experiment uses the same pcbench */
		execv("/proc/self/exe", av);
		fprintf(stderr, "pcbench bench: exec %s: %s\n", exe, strerror(errno));
		_exit(PCB_EXIT_OSERR);
	}
	close(lfd);
	uint64_t t0 = pcb_now_ns(), last = 0;
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return PCB_EXIT_OSERR;
		uint64_t now = pcb_now_ns();
		if (now - t0 > limit) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			FILE *lf = fopen(logp, "a");
			if (lf) {
				fprintf(lf, "pcbench bench: killed after %.0f s (run_timeout)\n", (double)limit / 1e9);
				fclose(lf);
			}
			return 124;
		}
		if (pg && pg->tty && now - last > 500 * PCB_NSEC_PER_MSEC) {
			char what[48];
			snprintf(what, sizeof(what), "running %.0f s", (double)(now - t0) / 1e9);
			progress_line(pg, idx, id, what, (double)(now - t0) / 1e9);
			last = now;
		}
		usleep(20000);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* argv of the recording run of a record_seed variant for workload w: the guest of the job
 * (shared options) with all memory local, seed N, --record to the trace path (.tmp). */
static void record_argv(const struct pcb_job *job, const struct pcb_job_variant *v, unsigned w, const char *exe,
			const char *dir, char store[][4200], char **av)
{
	unsigned k = 0, a = 0;
	char tp[4096];
	pcb_job_trace_path(job, v, w, dir, tp, sizeof(tp));
	av[a++] = (char *)exe;
	av[a++] = "run";
	av[a++] = "--policy=local";
	snprintf(store[k], sizeof(store[0]), "--workload=%s", job->workloads[w]);
	av[a++] = store[k++];
	for (unsigned i = 0; i < job->nopts; i++) {
		if (!strcmp(job->opts[i].key, "seed") || (v->record_duration[0] && !strcmp(job->opts[i].key, "duration")))
			continue;
		snprintf(store[k], sizeof(store[0]), "--%s=%s", job->opts[i].key, job->opts[i].val);
		av[a++] = store[k++];
	}
	if (v->record_duration[0]) {
		snprintf(store[k], sizeof(store[0]), "--duration=%s", v->record_duration);
		av[a++] = store[k++];
	}
	snprintf(store[k], sizeof(store[0]), "--seed=%llu", (unsigned long long)v->record_seed);
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--record=%s.tmp", tp);
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--json=%.4090s.json", tp);
	av[a++] = store[k++];
	av[a] = NULL;
}

/* Record the traces that record_seed variants replay (once per variant seed and workload;
 * kept across resumes).  0 or the failing child's exit code. */
static int record_traces(const struct pcb_job *job, const char *exe, const char *dir, bool dry)
{
	static char store[PCB_JOB_MAX_OPTS + 8][4200];
	char *av[PCB_JOB_MAX_OPTS + 10];
	char p[4600], tp[4096], logp[4600];
	snprintf(p, sizeof(p), "%s/traces", dir);
	if (!dry && mkdir_p(p) < 0)
		return PCB_EXIT_OSERR;
	for (unsigned k = 0; k < job->nvariants; k++) {
		const struct pcb_job_variant *v = &job->variants[k];
		for (unsigned w = 0; v->record && w < job->nworkloads; w++) {
			pcb_job_trace_path(job, v, w, dir, tp, sizeof(tp));
			if (!dry && access(tp, F_OK) == 0)
				continue;
			record_argv(job, v, w, exe, dir, store, av);
			if (dry) {
				printf("%-40s", "record");
				for (char **a = av + 1; *a; a++)
					printf(" %s", *a);
				printf("\n");
				continue;
			}
			fprintf(stderr, "bench: recording %s (trace for %s, seed %llu)\n", tp, v->name,
				(unsigned long long)v->record_seed);
			snprintf(logp, sizeof(logp), "%s.log", tp);
			int ec = spawn_logged(av, exe, logp, 10 * job->base.duration_ns + 60 * PCB_NSEC_PER_SEC, NULL, 0, "record");
			snprintf(p, sizeof(p), "%s.tmp", tp);
			if (ec == 0 && rename(p, tp) < 0)
				ec = PCB_EXIT_OSERR;
			if (ec) {
				fprintf(stderr, "bench: recording %s failed with exit %d; log %s\n", tp, ec, logp);
				return ec;
			}
		}
	}
	return 0;
}

static const char *exe_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return buf;
}

/* --shard I/N into shard_i, shard_n. */
static int parse_shard(const char *shard)
{
	char *end;
	unsigned long si = strtoul(shard, &end, 10), sn = *end == '/' ? strtoul(end + 1, &end, 10) : 0;
	if (*end || si < 1 || sn < 1 || si > sn || sn > 100000) {
		pcb_err("bench: invalid value for --shard: '%s' (want I/N with 1 <= I <= N, e.g. 2/4)", shard);
		return PCB_EXIT_USAGE;
	}
	shard_i = (unsigned)si;
	shard_n = (unsigned)sn;
	return 0;
}

/* --dry-run: the matrix and every command line this shard would run, nothing started. */
static void print_dry_run(const struct pcb_job *job, unsigned n)
{
	printf("experiment %s: %u runs (%u policies%s x %u workloads x %u links x %u reps)\n", job->name, n,
	       job->npolicies, job->baseline[0] ? " + baseline" : "", job->nworkloads, job->nlinks, job->reps);
	static char store[PCB_JOB_MAX_OPTS * 3 + 10][4200];
	char *av[PCB_JOB_MAX_OPTS * 3 + 12];
	record_traces(job, "pcbench", "DIR", true);
	for (unsigned i = 0; i < n; i++) {
		if (!in_share(i))
			continue;
		struct pcb_job_run r;
		pcb_job_run_at(job, i, &r);
		build_argv(job, &r, "pcbench", "DIR", store, av);
		printf("%-40s", r.id);
		for (char **a = av + 1; *a; a++)
			printf(" %s", *a);
		printf("\n");
	}
}

/* The results directory: explicit (--out), resumed (same job file and shard), or new under
 * parent.  Creates DIR/runs and, when new, job.conf, system.json and shard. */
static int open_results_dir(const struct pcb_job *job, const char *out, bool fresh, const char *parent,
			    const char *started, const struct tm *tm, int argc, char **argv, char *dir, size_t dirlen,
			    bool *resuming)
{
	*resuming = false;
	if (out) {
		snprintf(dir, dirlen, "%s", out);
	} else if (!fresh && find_resumable(parent, job, dir, dirlen)) {
		*resuming = true;
	} else {
		char stamp[32];
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", tm);
		if (shard_n > 1)
			snprintf(dir, dirlen, "%s/%s-shard%uof%u-%s-%s", parent, job->name, shard_i, shard_n, stamp, PCB_GITREV);
		else
			snprintf(dir, dirlen, "%s/%s-%s-%s", parent, job->name, stamp, PCB_GITREV);
	}
	char p[4600];
	snprintf(p, sizeof(p), "%s/job.conf", dir);
	if (access(p, F_OK) == 0) {
		if (!same_file_content(p, job->path)) {
			pcb_err("bench: %s holds a different job file; use another --out or --fresh", dir);
			return PCB_EXIT_USAGE;
		}
		if (!same_shard(dir)) {
			pcb_err("bench: %s belongs to another --shard (see its 'shard' file); use another --out", dir);
			return PCB_EXIT_USAGE;
		}
		*resuming = true;
	}
	snprintf(p, sizeof(p), "%s/runs", dir);
	if (mkdir_p(p) < 0) {
		pcb_err("bench: cannot create '%s': %s", p, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (*resuming)
		return 0;
	snprintf(p, sizeof(p), "%s/job.conf", dir);
	if (copy_file(job->path, p) < 0) {
		pcb_err("bench: cannot write '%s': %s", p, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (write_system_json(dir, job, started, argc, argv) < 0) {
		pcb_err("bench: cannot write '%s/system.json'", dir);
		return PCB_EXIT_OSERR;
	}
	if (shard_n > 1) {
		snprintf(p, sizeof(p), "%s/shard", dir);
		FILE *sf = fopen(p, "w");
		if (!sf || fprintf(sf, "%u/%u\n", shard_i, shard_n) < 0 || fclose(sf) != 0) {
			pcb_err("bench: cannot write '%s'", p);
			return PCB_EXIT_OSERR;
		}
	}
	return 0;
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
		if (!in_share(i)) {
			st[i].status = -2;           /* another shard's */
			continue;
		}
		nshare++;
		st[i].seed = pcb_job_seed(job, &r);
		if (run_done(dir, r.id)) {
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
		progress_line(pg, i, r->id, "starting", 0);
	uint64_t t0 = pcb_now_ns();
	int ec = run_child(job, r, exe, dir, pg, i);
	*wall_s = (double)(pcb_now_ns() - t0) / 1e9;
	char tmp[4600], fin[4600];
	snprintf(tmp, sizeof(tmp), "%s/runs/%s.json.tmp", dir, r->id);
	snprintf(fin, sizeof(fin), "%s/runs/%s.json", dir, r->id);
	if (ec == 0) {
		char err[256];
		struct pcb_jv *v = pcb_jv_parse_file(tmp, err, sizeof(err));
		const char *s = pcb_jv_str(pcb_jv_get(v, "status"));
		if (!s || strcmp(s, "ok"))
			ec = PCB_EXIT_SOFTWARE;   /* exit 0 but no valid result: count as failed */
		pcb_jv_free(v);
	}
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
		progress_line(pg, i, id, what, 0);
		if (ec) {
			(*nfail)++;
			if (!first_fail)
				first_fail = ec;
			if (pg->tty)
				fputc('\n', stderr);
			fprintf(stderr, "bench: run %s failed with exit %d; log %s/runs/%s.log:\n", id, ec, dir, id);
			log_tail(dir, id);
		}
		if (write_manifest(dir, job, st, started, false) < 0)
			pcb_warn("bench: cannot write %s/manifest.json", dir);
	}
	return first_fail;
}

/* latest pointer: PARENT/<name>-latest -> dir's base name (only for directories under PARENT) */
static void link_latest(const struct pcb_job *job, const char *parent, const char *dir)
{
	char link[4600];
	const char *base = strrchr(dir, '/');
	if (shard_n > 1)
		snprintf(link, sizeof(link), "%s/%s-shard%uof%u-latest", parent, job->name, shard_i, shard_n);
	else
		snprintf(link, sizeof(link), "%s/%s-latest", parent, job->name);
	unlink(link);
	if (symlink(base ? base + 1 : dir, link) < 0)
		pcb_warn("bench: cannot create %s: %s", link, strerror(errno));
}

int pcb_cmd_bench(int argc, char **argv)
{
	static struct pcb_config opt;   /* the table's options of scope bench (cli/options.c) */
	pcb_cmd_defaults(PCB_CMD_BENCH, &opt);
	int prc = pcb_cmd_parse(PCB_CMD_BENCH, &opt, argc, argv, 1);
	if (prc)
		return prc == 1 ? 0 : prc;
	const char *jobpath = opt.nargs ? opt.args[0] : NULL, *out = opt.bench.out[0] ? opt.bench.out : NULL;
	const char *parent = opt.bench.results;
	bool fresh = opt.bench.fresh;
	int rc;
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
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	bool resuming;
	if ((rc = open_results_dir(&job, out, fresh, parent, started, &tm, argc, argv, dir, sizeof(dir), &resuming)) != 0)
		return rc;

	struct runstat *st = calloc(n, sizeof(*st));
	if (!st) {
		pcb_err("out of memory");
		return PCB_EXIT_OSERR;
	}
	struct progress pg = { .tty = isatty(2), .total = n, .t0 = pcb_now_ns() };
	unsigned nshare = plan_runs(&job, dir, st, n, &pg);
	if (shard_n > 1)
		fprintf(stderr, "bench: experiment %s, shard %u/%u: %u of its %u runs, %u to do%s; results in %s\n", job.name,
			shard_i, shard_n, nshare, n, pg.pending, resuming ? " (resuming: completed runs are skipped)" : "", dir);
	else
		fprintf(stderr, "bench: experiment %s: %u runs, %u to do%s; results in %s\n", job.name, n, pg.pending,
			resuming ? " (resuming: completed runs are skipped)" : "", dir);

	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	unsigned nfail = 0;
	if (pg.pending && (rc = record_traces(&job, exe, dir, false)) != 0) {
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
	write_manifest(dir, &job, st, started, complete);
	free(st);
	if (complete) {
		char p[4600];
		snprintf(p, sizeof(p), "%s/COMPLETE", dir);
		FILE *f = fopen(p, "w");
		if (f)
			fclose(f);
	}
	double total = (double)(pcb_now_ns() - pg.t0) / 1e9;
	char el[32];
	fmt_hms(total, el, sizeof(el));
	fprintf(stderr, "bench: %u of %u runs ok, %u failed, %u not run; this session %s\n", ok, nshare, nfail,
		nshare - ok - nfail, el);
	if (!out)
		link_latest(&job, parent, dir);
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

/* Copy (hard link when possible) every file of src/runs into out/runs.  A finished run
 * (ID.json) already in out/runs came from another directory: refused (exit 65). */
static int merge_runs(const char *src, const char *out, char *why, size_t whylen)
{
	char sp[4600], op[4600];
	snprintf(sp, sizeof(sp), "%s/runs", src);
	DIR *d = opendir(sp);
	if (!d) {
		snprintf(why, whylen, "cannot read '%s': %s", sp, strerror(errno));
		return PCB_EXIT_DATAERR;
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' || (n > 4 && !strcmp(de->d_name + n - 4, ".tmp")))
			continue;
		snprintf(sp, sizeof(sp), "%s/runs/%s", src, de->d_name);
		snprintf(op, sizeof(op), "%s/runs/%s", out, de->d_name);
		bool run_json = n > 5 && !strcmp(de->d_name + n - 5, ".json") &&
				!(n > 12 && !strcmp(de->d_name + n - 12, ".failed.json"));
		if (access(op, F_OK) == 0) {
			if (run_json) {
				snprintf(why, whylen, "run %.*s is in more than one of the directories (%s and an earlier one): "
					 "shards must not overlap", (int)(n - 5), de->d_name, src);
				rc = PCB_EXIT_DATAERR;
			}
			continue;
		}
		if (link(sp, op) < 0 && copy_file(sp, op) < 0) {
			snprintf(why, whylen, "cannot copy '%s' to '%s': %s", sp, op, strerror(errno));
			rc = PCB_EXIT_OSERR;
		}
	}
	closedir(d);
	return rc;
}

/* pcbench analyze --out=OUT SRC...: the shards of one experiment (same job file) merged into
 * OUT (job.conf, the first shard's system.json, runs/, a manifest of the whole matrix, COMPLETE
 * when every run is there, merged_from listing the sources), then analysed as one. */
static int merge_dirs(const char *out, char **srcs, int nsrc, int verbose, char *why, size_t whylen)
{
	char p[4600], q[4600];
	static struct pcb_job job;
	snprintf(p, sizeof(p), "%s/job.conf", srcs[0]);
	int rc = pcb_job_load(p, &job, why, whylen);
	if (rc)
		return rc == PCB_EXIT_USAGE ? PCB_EXIT_DATAERR : rc;
	for (int k = 1; k < nsrc; k++) {
		snprintf(q, sizeof(q), "%s/job.conf", srcs[k]);
		if (!same_file_content(p, q)) {
			snprintf(why, whylen, "%s and %s hold different job files: not shards of one experiment", srcs[0], srcs[k]);
			return PCB_EXIT_DATAERR;
		}
	}
	snprintf(q, sizeof(q), "%s/job.conf", out);
	if (access(q, F_OK) == 0 && !same_file_content(p, q)) {
		snprintf(why, whylen, "%s already holds another experiment", out);
		return PCB_EXIT_DATAERR;
	}
	snprintf(q, sizeof(q), "%s/runs", out);
	if (access(q, F_OK) == 0) {
		snprintf(why, whylen, "%s already has runs/: merge into a new directory", out);
		return PCB_EXIT_DATAERR;
	}
	if (mkdir_p(q) < 0) {
		snprintf(why, whylen, "cannot create '%s': %s", q, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	snprintf(q, sizeof(q), "%s/job.conf", out);
	if (copy_file(p, q) < 0) {
		snprintf(why, whylen, "cannot write '%s'", q);
		return PCB_EXIT_OSERR;
	}
	snprintf(p, sizeof(p), "%s/system.json", srcs[0]);
	snprintf(q, sizeof(q), "%s/system.json", out);
	copy_file(p, q);
	snprintf(q, sizeof(q), "%s/merged_from", out);
	FILE *mf = fopen(q, "w");
	for (int k = 0; mf && k < nsrc; k++)
		fprintf(mf, "%s\n", srcs[k]);
	if (!mf || fclose(mf) != 0) {
		snprintf(why, whylen, "cannot write '%s'", q);
		return PCB_EXIT_OSERR;
	}
	for (int k = 0; k < nsrc && !rc; k++)
		rc = merge_runs(srcs[k], out, why, whylen);
	if (rc)
		return rc;
	unsigned n = pcb_job_nruns(&job), ok = 0;
	struct runstat *st = calloc(n ? n : 1, sizeof(*st));
	if (!st) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	for (unsigned i = 0; i < n; i++) {
		struct pcb_job_run r;
		pcb_job_run_at(&job, i, &r);
		st[i].seed = pcb_job_seed(&job, &r);
		st[i].status = run_done(out, r.id) ? 0 : -1;
		st[i].resumed = true;
		ok += st[i].status == 0;
	}
	char started[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc = write_manifest(out, &job, st, started, ok == n) < 0 ? PCB_EXIT_OSERR : 0;
	free(st);
	if (!rc && ok == n) {
		snprintf(q, sizeof(q), "%s/COMPLETE", out);
		FILE *f = fopen(q, "w");
		if (f)
			fclose(f);
	}
	if (verbose)
		fprintf(stderr, "analyze: merged %d directories into %s: %u of %u runs\n", nsrc, out, ok, n);
	return rc ? rc : pcb_analyze(out, verbose, why, whylen);
}

int pcb_cmd_analyze(int argc, char **argv)
{
	static struct pcb_config opt;   /* the table's options of scope analyze (cli/options.c) */
	pcb_cmd_defaults(PCB_CMD_ANALYZE, &opt);
	int prc = pcb_cmd_parse(PCB_CMD_ANALYZE, &opt, argc, argv, 1);
	if (prc)
		return prc == 1 ? 0 : prc;
	char **srcs = opt.args;
	int nsrc = (int)opt.nargs, verbose = (int)opt.verbose;
	const char *dir, *out = opt.bench.out[0] ? opt.bench.out : NULL;
	if (!nsrc) {
		pcb_err("analyze: missing results directory (usage: pcbench analyze DIR | --out=DIR SHARD_DIR...)");
		return PCB_EXIT_USAGE;
	}
	if (nsrc > 1 && !out) {
		pcb_err("analyze: several directories are merged into --out=DIR (usage: pcbench analyze --out=DIR SHARD_DIR...)");
		return PCB_EXIT_USAGE;
	}
	for (int k = 0; k < nsrc; k++) {
		struct stat sb;
		if (stat(srcs[k], &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			pcb_err("analyze: '%s' is not a directory", srcs[k]);
			return PCB_EXIT_USAGE;
		}
	}
	dir = srcs[0];
	char why[1024];
	int rc = out ? merge_dirs(out, srcs, nsrc, verbose, why, sizeof(why)) : pcb_analyze(dir, verbose, why, sizeof(why));
	if (rc)
		pcb_err("analyze: %s", why);
	else if (out)
		printf("%s\n", out);
	return rc;
}
