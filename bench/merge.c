/* pcbench analyze: one results directory analysed, or the shards of one
 * experiment merged into --out and analysed as one. */
#include "bench/bench.h"
#include "bench/internal.h"
#include "bench/analyze.h"
#include "cli/options.h"
#include "common/util.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
		if (link(sp, op) < 0 && bench_copy_file(sp, op) < 0) {
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
		if (!bench_same_file(p, q)) {
			snprintf(why, whylen, "%s and %s hold different job files: not shards of one experiment", srcs[0], srcs[k]);
			return PCB_EXIT_DATAERR;
		}
	}
	snprintf(q, sizeof(q), "%s/job.conf", out);
	if (access(q, F_OK) == 0 && !bench_same_file(p, q)) {
		snprintf(why, whylen, "%s already holds another experiment", out);
		return PCB_EXIT_DATAERR;
	}
	snprintf(q, sizeof(q), "%s/runs", out);
	if (access(q, F_OK) == 0) {
		snprintf(why, whylen, "%s already has runs/: merge into a new directory", out);
		return PCB_EXIT_DATAERR;
	}
	if (bench_mkdir_p(q) < 0) {
		snprintf(why, whylen, "cannot create '%s': %s", q, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	snprintf(q, sizeof(q), "%s/job.conf", out);
	if (bench_copy_file(p, q) < 0) {
		snprintf(why, whylen, "cannot write '%s'", q);
		return PCB_EXIT_OSERR;
	}
	snprintf(p, sizeof(p), "%s/system.json", srcs[0]);
	snprintf(q, sizeof(q), "%s/system.json", out);
	bench_copy_file(p, q);
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
		st[i].status = bench_run_done(out, r.id) ? 0 : -1;
		st[i].resumed = true;
		ok += st[i].status == 0;
	}
	char started[32];
	struct tm tm;
	bench_utc_now(started, sizeof(started), &tm);
	rc = bench_write_manifest(out, &job, st, started, ok == n) < 0 ? PCB_EXIT_OSERR : 0;
	free(st);
	if (!rc && ok == n)
		bench_mark_complete(out);
	if (verbose)
		fprintf(stderr, "analyze: merged %d directories into %s: %u of %u runs\n", nsrc, out, ok, n);
	return rc ? rc : pcb_analyze(out, verbose, why, whylen);
}

int pcb_cmd_analyze(int argc, char **argv)
{
	static struct pcb_config opt;   /* the table's options of scope analyze (cli/options.c) */
	int rc;
	if (!bench_options(PCB_CMD_ANALYZE, &opt, argc, argv, &rc))
		return rc;
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
	rc = out ? merge_dirs(out, srcs, nsrc, verbose, why, sizeof(why)) : pcb_analyze(dir, verbose, why, sizeof(why));
	if (rc)
		pcb_err("analyze: %s", why);
	else if (out)
		printf("%s\n", out);
	return rc;
}
