/* Experiment job files for `pcbench bench` (configs/NAME.conf).
 *
 * Format (documented in configs/README.md): INI-style lines, read with libinih.
 *
 *   # comment (also after a value, preceded by whitespace)
 *   [experiment]
 *   name      = default                # optional, defaults to the file's base name
 *   policies  = demand, sequential     # matrix dimensions: comma/space separated lists
 *   workloads = seq random zipf
 *   reps      = 3
 *   mem       = 128M                   # any other key is a pcbench option (see --help)
 *   [link loopback]                    # one section per link setting (matrix dimension);
 *   [link slow-demand]                 # its keys are pcbench options for the runs on it
 *   source-delay = 200us
 *
 * Every value is checked when the file is read (options through the same
 * table as the command line); an error names the file, the line and the key.
 */
#ifndef PCB_BENCHJOB_H
#define PCB_BENCHJOB_H
#include "cli/options.h"
#include <stdbool.h>
#include <stddef.h>

#define PCB_JOB_MAX_LIST 32
#define PCB_JOB_MAX_OPTS 48
#define PCB_JOB_NAME 64

struct pcb_job_opt {
	char key[64];
	char val[256];
};

struct pcb_job_link {
	char name[PCB_JOB_NAME];
	unsigned nopts;
	struct pcb_job_opt opts[PCB_JOB_MAX_OPTS];
};

/* [policy NAME]: a policy variant listed by NAME in `policies`: a registered policy (key
 * `policy`, default NAME) with pcbench options of its own; `record_seed = N` (replay only): the
 * runner first records each workload's access trace with seed N (a local run, --record) into
 * DIR/traces/ and passes it as --replay (`record_duration = D` shortens that run: a trace
 * holds every access, so it grows with the guest time recorded). */
struct pcb_job_variant {
	char name[32];
	char policy[32];
	unsigned nopts;
	struct pcb_job_opt opts[PCB_JOB_MAX_OPTS];
	bool record;
	uint64_t record_seed;
	char record_duration[32];    /* record_duration = D: the recording run's --duration ("" = the job's) */
};

/* [sweep]: a `pcbench simulate` sweep run after the live matrix (analysis/sweep.py): each
 * workload's access trace is recorded once (a local run with the job's options), then replayed
 * through every policy of the job over each link of `links`.  Stored as written; checked here. */
#define PCB_JOB_MAX_SWEEP 32
struct pcb_job_sweep {
	unsigned nlinks, nworkloads;
	char links[PCB_JOB_MAX_SWEEP][64];          /* BANDWIDTH,RTT as for --link */
	char workloads[PCB_JOB_MAX_SWEEP][160];     /* NAME or NAME:KNOBS (its --workload-opt) */
};

struct pcb_job {
	char path[4096];
	char name[PCB_JOB_NAME];
	char description[256];
	unsigned npolicies, nworkloads, nlinks;
	char policies[PCB_JOB_MAX_LIST][32];
	char workloads[PCB_JOB_MAX_LIST][32];
	struct pcb_job_link links[PCB_JOB_MAX_LIST];
	unsigned nvariants;
	struct pcb_job_variant variants[PCB_JOB_MAX_LIST];
	struct pcb_job_sweep sweep;
	char baseline[32];           /* baseline_policy: run once per workload as the all-local baseline ("" = none) */
	unsigned reps;
	bool vary_seed;              /* rep r uses seed + r (default: every rep uses the same seed) */
	uint64_t run_timeout_ns;     /* a run taking longer is killed and counted failed (0 = auto) */
	char timeline[16];           /* "all", "first" (repetition 1 only) or "none": which runs write --timeline */
	char faultmap_workload[32];  /* workload shown in the fault map ("" = first) */
	unsigned nopts;              /* pcbench options shared by every run */
	struct pcb_job_opt opts[PCB_JOB_MAX_OPTS];
	struct pcb_config base;      /* defaults + shared options (validated) */
};

/* Parse a job file.  0, or PCB_EXIT_DATAERR with "FILE:LINE: key 'K': reason"
 * (or "FILE: reason") in why; PCB_EXIT_OSERR if the file cannot be read. */
int pcb_job_load(const char *path, struct pcb_job *job, char *why, size_t whylen);
/* Same, from text in memory (path is only used in messages). */
int pcb_job_parse(const char *path, const char *text, struct pcb_job *job, char *why, size_t whylen);

/* One run of the matrix. */
struct pcb_job_run {
	unsigned policy, workload, link, rep;   /* indices (policy == npolicies: the baseline) */
	char id[160];                           /* "<policy>-<workload>-<link>-r<rep>" (rep from 1) */
};
/* Number of runs (baseline included). */
unsigned pcb_job_nruns(const struct pcb_job *job);
/* Run i in execution order: rep-major (every cell once before any is repeated,
 * so an interrupted experiment has data for every cell), then link, workload, policy. */
void pcb_job_run_at(const struct pcb_job *job, unsigned i, struct pcb_job_run *r);
const char *pcb_job_policy_name(const struct pcb_job *job, unsigned p);
/* The [policy] section of policy p (NULL: a plain registered policy or the baseline). */
const struct pcb_job_variant *pcb_job_variant_of(const struct pcb_job *job, unsigned p);
/* The registered policy run for policy p (a variant's `policy`, else its name). */
const char *pcb_job_policy_real(const struct pcb_job *job, unsigned p);
/* The trace a record_seed variant replays for workload w: DIR/traces/<workload>-seed<N>.trace. */
void pcb_job_trace_path(const struct pcb_job *job, const struct pcb_job_variant *v, unsigned w, const char *dir,
			char *buf, size_t len);
/* The seed of a run. */
uint64_t pcb_job_seed(const struct pcb_job *job, const struct pcb_job_run *r);
#endif
