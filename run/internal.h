/* Private to run/: the state of one migration (struct run), shared by the
 * phases (run.c), the set-up (setup.c), the local runs (local.c) and the
 * report writers (report.c). */
#ifndef PCB_RUN_INTERNAL_H
#define PCB_RUN_INTERNAL_H
#include "run/run.h"
#include "run/metrics.h"
#include "run/progress.h"
#include "run/precopy.h"
#include "run/perf.h"
#include "cli/netcmd.h"
#include "common/image.h"
#include "common/pin.h"
#include "common/sysinfo.h"
#include "pager/pager.h"
#include "source/source.h"
#include "trace/trace.h"
#include "workloads/workload.h"
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

struct run {
	const struct pcb_config *cfg;
	struct pcb_sysinfo sys;
	struct pcb_image im;
	uint64_t npages;
	pid_t source_pid;
	uint16_t port;
	struct pcb_pager *pager;
	struct pcb_guest *guest;
	struct pcb_pager_stats ps;
	struct pcb_verify ver;
	_Atomic uint32_t *first_touch;
	struct pcb_policy polopts;   /* --policy-opt, parsed before anything starts */
	struct pcb_prefetch pf;
	struct pcb_trace *trace;
	char trace_why[256];
	struct pcb_net net;
	char missing[1024];          /* pages that never arrived (fatal mid-run) */
	bool verified;
	bool local;                  /* --policy=local: no migration */
	uint8_t *local_region;
	struct pcb_progress prog;
	uint8_t *precopy_src;        /* --precopy: the source's memory (shared with the source process) */
	_Atomic uint64_t *dest_written;
	struct pcb_precopy_stats pc;
	struct pcb_pin pin;
	struct pcb_mem_report mem;
	const struct pcb_policy_ops *pol;
	const struct pcb_workload_ops *wl;
	struct pcb_wl_params prm;
	struct pcb_progress base;    /* --baseline: the local run's progress */
	bool have_base;
	bool stranded;               /* vCPU threads not joined, or the pager failed mid-run: nothing is torn down */
	struct pcb_cpu_report cpu;
	int64_t main_wait_cpu0;      /* the main thread's CPU time as the guest started */
	bool oracle_first_touch;     /* the policy's oracle=first-touch knob: it reads the guest's record */
	int64_t baseline_cpu_ns;     /* --baseline=run: the reference run's CPU time (not in results.cpu) */
	uint64_t t_drain_start_ns;   /* the pager was told the guest ended */
	uint64_t t_start_ns, t_end_ns;
	int exit_code;
	bool interrupted;            /* SIGINT / SIGTERM: the report holds what was measured so far */
	char error[512];
	/* bytes images: an application guest's database image, or --image=FILE */
	uint8_t *img;
	size_t img_len;
	bool img_file;
	uint64_t img_build_ns;
	struct pcb_source_image source_image;   /* the forked source's image: memory or generated, build time */
	enum pcb_source_send source_send;       /* --source-send as given to the forked source (auto resolved) */
	struct pcb_app_report app;
	bool app_checked;
};

/* setup.c: how the forked source wrote its pages (splice or writev), and why */
const char *run_source_send(const struct run *r, const char **why);

/* What the vCPUs did, added up over all of them (zeros without a guest). */
struct run_vcpu_sums {
	uint64_t ops, reads, writes, read_mismatches, faults_undelivered, blocktime_ns, cpu_ns;
	uint64_t precopy_ops, precopy_writes;   /* at the source, before the switch-over (--precopy) */
};

/* run.c: the phases */
struct run_vcpu_sums run_vcpu_sums(const struct run *r);
void run_catch_stop_signals(void);
int64_t run_rusage_ns(const struct rusage *ru);
void run_app_check(struct run *r, struct pcb_guest *g);

/* setup.c: phase 1, bad input refused before anything starts, then the parts of a migration */
int run_setup_check(struct run *r);
int run_setup_params(struct run *r);
int run_setup_migration(struct run *r);   /* baseline, pre-copy memory, source, pager, guest, tracer */
void run_image_release(struct run *r);
void run_free_precopy(struct run *r);

/* local.c: the guest over a populated region (--policy=local, --baseline=run) */
int run_local_guest(struct run *r, const struct pcb_wl_params *prm, bool record, struct pcb_guest **gout,
		    struct pcb_progress *prog, struct pcb_verify *ver, uint64_t *t_go, uint64_t *t_done,
		    bool check_app, char *why, size_t whylen);
int run_baseline(struct run *r);

/* report.c: the human summary, the JSON, the progress CSVs */
uint64_t run_app_updates(const struct run *r);
void run_write_json(struct run *r, FILE *fp);
int run_emit_reports(struct run *r);
int run_write_progress_csv(struct run *r, const struct pcb_progress *p, const char *suffix);
#endif
