/* An experiment's results directory: found again to resume (same job file,
 * same shard), created with job.conf, system.json and shard, the manifest
 * rewritten after each run, the -latest link. */
#include "bench/internal.h"
#include "common/json.h"
#include "common/jsonread.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

unsigned bench_shard_i = 1, bench_shard_n = 1;

bool bench_in_share(unsigned run_index)
{
	return run_index % bench_shard_n == bench_shard_i - 1;
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
	if (bench_shard_n > 1)
		snprintf(want, sizeof(want), "%u/%u", bench_shard_i, bench_shard_n);
	else
		want[0] = 0;
	return !strcmp(got, want);
}

int bench_mkdir_p(const char *path)
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

bool bench_same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = read_all(a, &la), *y = read_all(b, &lb);
	bool same = x && y && la == lb && !memcmp(x, y, la);
	free(x);
	free(y);
	return same;
}

int bench_copy_file(const char *from, const char *to)
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
bool bench_run_done(const char *dir, const char *id)
{
	char path[4600];
	snprintf(path, sizeof(path), "%s/runs/%s.json", dir, id);
	if (access(path, F_OK) != 0)
		return false;
	return bench_result_ok(path);
}

bool bench_result_ok(const char *path)
{
	char err[256];
	struct pcb_jv *v = pcb_jv_parse_file(path, err, sizeof(err));
	const char *st = pcb_jv_str(pcb_jv_get(v, "status"));
	bool ok = st && !strcmp(st, "ok");
	pcb_jv_free(v);
	return ok;
}

void bench_mark_complete(const char *dir)
{
	char p[4600];
	snprintf(p, sizeof(p), "%s/COMPLETE", dir);
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
}

void bench_utc_now(char *started, size_t len, struct tm *tm)
{
	time_t now = time(NULL);
	gmtime_r(&now, tm);
	strftime(started, len, "%Y-%m-%dT%H:%M:%SZ", tm);
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
		if (!bench_same_file(p, job->path))
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

int bench_write_manifest(const char *dir, const struct pcb_job *job, const struct runstat *st, const char *started,
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
	if (bench_shard_n > 1) {
		char sh[32];
		snprintf(sh, sizeof(sh), "%u/%u", bench_shard_i, bench_shard_n);
		pcb_json_str(j, "shard", sh);
	}
	pcb_json_arr_begin(j, "runs");
	unsigned n = pcb_job_nruns(job);
	for (unsigned i = 0; i < n; i++) {
		if (!bench_in_share(i))
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

/* The results directory: explicit (--out), resumed (same job file and shard), or new under
 * parent.  Creates DIR/runs and, when new, job.conf, system.json and shard. */
int bench_open_results_dir(const struct pcb_job *job, const char *out, bool fresh, const char *parent,
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
		if (bench_shard_n > 1)
			snprintf(dir, dirlen, "%s/%s-shard%uof%u-%s-%s", parent, job->name, bench_shard_i, bench_shard_n, stamp, PCB_GITREV);
		else
			snprintf(dir, dirlen, "%s/%s-%s-%s", parent, job->name, stamp, PCB_GITREV);
	}
	char p[4600];
	snprintf(p, sizeof(p), "%s/job.conf", dir);
	if (access(p, F_OK) == 0) {
		if (!bench_same_file(p, job->path)) {
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
	if (bench_mkdir_p(p) < 0) {
		pcb_err("bench: cannot create '%s': %s", p, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (*resuming)
		return 0;
	snprintf(p, sizeof(p), "%s/job.conf", dir);
	if (bench_copy_file(job->path, p) < 0) {
		pcb_err("bench: cannot write '%s': %s", p, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (write_system_json(dir, job, started, argc, argv) < 0) {
		pcb_err("bench: cannot write '%s/system.json'", dir);
		return PCB_EXIT_OSERR;
	}
	if (bench_shard_n > 1) {
		snprintf(p, sizeof(p), "%s/shard", dir);
		FILE *sf = fopen(p, "w");
		if (!sf || fprintf(sf, "%u/%u\n", bench_shard_i, bench_shard_n) < 0 || fclose(sf) != 0) {
			pcb_err("bench: cannot write '%s'", p);
			return PCB_EXIT_OSERR;
		}
	}
	return 0;
}

/* latest pointer: PARENT/<name>-latest -> dir's base name (only for directories under PARENT) */
void bench_link_latest(const struct pcb_job *job, const char *parent, const char *dir)
{
	char link[4600];
	const char *base = strrchr(dir, '/');
	if (bench_shard_n > 1)
		snprintf(link, sizeof(link), "%s/%s-shard%uof%u-latest", parent, job->name, bench_shard_i, bench_shard_n);
	else
		snprintf(link, sizeof(link), "%s/%s-latest", parent, job->name);
	unlink(link);
	if (symlink(base ? base + 1 : dir, link) < 0)
		pcb_warn("bench: cannot create %s: %s", link, strerror(errno));
}
