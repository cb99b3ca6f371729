/* Private to bench/: what the experiment loop (bench.c), the child runs
 * (child.c), the results directory (resultsdir.c) and the shard merge
 * (merge.c) share. */
#ifndef PCB_BENCH_INTERNAL_H
#define PCB_BENCH_INTERNAL_H
#include "bench/benchjob.h"
#include "cli/options.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* --shard=I/N: this invocation runs the runs whose index (execution order) is I-1 modulo N.
 * A shard's directory holds a `shard` file ("I/N") and only its share in the manifest. */
extern unsigned bench_shard_i, bench_shard_n;
bool bench_in_share(unsigned run_index);

struct runstat {
	int status;                  /* -1 not run, 0 ok, else exit code */
	bool resumed;
	double wall_s;
	uint64_t seed;
};

struct progress {
	bool tty;
	unsigned total, pending, done_now;
	uint64_t t0;
	double sum_wall;
};

/* bench.c: cmd's options (scope bench or analyze) over their defaults; false when the
 * command ends here with *rc (0 after --help or --version, else the usage error's code) */
bool bench_options(enum pcb_cmd cmd, struct pcb_config *opt, int argc, char **argv, int *rc);
/* bench.c: the progress display */
void bench_fmt_hms(double s, char *buf, size_t len);
void bench_progress_line(const struct progress *pg, unsigned idx, const char *id, const char *what, double cur_s);

/* child.c: one run as a child pcbench process */
void bench_build_argv(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		      char store[][4200], char **av);
int bench_run_child(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		    struct progress *pg, unsigned idx);
int bench_record_traces(const struct pcb_job *job, const char *exe, const char *dir, bool dry);

/* resultsdir.c: the results directory, its files and the manifest */
int bench_mkdir_p(const char *path);
bool bench_same_file(const char *a, const char *b);
int bench_copy_file(const char *from, const char *to);
bool bench_run_done(const char *dir, const char *id);    /* runs/ID.json exists and says status ok */
bool bench_result_ok(const char *path);                  /* a run's JSON that parses and says status ok */
void bench_mark_complete(const char *dir);               /* the COMPLETE marker: every run of the matrix is there */
void bench_utc_now(char *started, size_t len, struct tm *tm);   /* now, UTC, as 2026-12-04T23:50:00Z */
int bench_write_manifest(const char *dir, const struct pcb_job *job, const struct runstat *st, const char *started,
			 bool complete);
int bench_open_results_dir(const struct pcb_job *job, const char *out, bool fresh, const char *parent,
			   const char *started, const struct tm *tm, int argc, char **argv, char *dir, size_t dirlen,
			   bool *resuming);
void bench_link_latest(const struct pcb_job *job, const char *parent, const char *dir);

/* ---- pcbench analyze (analyze.c, plotdata.c): the loaded experiment ---- */
struct pcb_jv;
struct pcb_hist;
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

/* analyze.c: a number at a JSON path (NaN if absent), the experiment's output files, a cell's runs and figures */
double bench_jnum(const struct pcb_jv *js, const char *path);
FILE *bench_open_out(const struct exp *e, const char *name, char *why, size_t whylen);
int bench_close_out(FILE *f, const struct exp *e, const char *name, char *why, size_t whylen);
unsigned bench_cell_runs(const struct exp *e, unsigned p, unsigned w, unsigned l, const struct runrec **out);
struct pcb_spread bench_cell_spread(const struct exp *e, unsigned p, unsigned w, unsigned l, const char *path, double scale);
int bench_cell_merged_latency(const struct exp *e, unsigned p, unsigned w, unsigned l, struct pcb_hist *h);
unsigned bench_same_cpu_runs(const struct exp *e, unsigned p, unsigned w, unsigned l);
/* plotdata.c: plotdata/ */
int bench_write_plotdata(struct exp *e, char *why, size_t whylen);
#endif
