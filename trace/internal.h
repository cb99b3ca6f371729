/* The tracer's private state, shared by the files of trace/ (one job each):
 *   trace.c   start, threads, pause/resume, stop, free, the small accessors
 *   probe.c   which program kinds this kernel accepts (tp_btf, raw_tp, tracepoint)
 *   load.c    opening, loading and attaching bpf/faultlat and bpf/pager (USDT),
 *             with the fallbacks; the libbpf log
 *   maps.c    reading the counters, histograms and the per-thread table
 *   ranges.c  the userfaultfd-registered ranges from /proc/PID/smaps
 *   events.c  the per-fault event stream (ring buffer -> CSV)
 *   json.c    the "bpf" object of the result JSON
 * Nothing outside trace/ includes this header; trace/trace.h is the API. */
#ifndef PCB_TRACE_INTERNAL_H
#define PCB_TRACE_INTERNAL_H
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <bpf/libbpf.h>

#include "common/hist.h"
#include "common/util.h"
#include "trace/trace.h"
#include "bpf/faultlat.skel.h"
#include "bpf/pager.skel.h"

#define DEFAULT_BLOCK_WINDOW_NS (10 * PCB_NSEC_PER_MSEC)
#define EVENTS_RB_BYTES (8u << 20)

struct pg_stats {
	struct pcb_hist hist[PG_NHIST];
	uint64_t counter[PG_NCOUNTERS];
};

struct pcb_trace {
	struct pcb_trace_opts o;
	struct faultlat_bpf *fl;
	struct pager_bpf *pg;
	int ncpus;

	/* attach kinds chosen */
	const char *k_fault, *k_switch;
	char k_wakeup[96], k_read[96];
	char k_kvm[96], k_kvm_mmu[128], k_uffd[96], k_usdt[160];
	char k_kfault[96], k_ranges[160], k_resolve[96], method_why[256];
	bool kfault, follow, resolve;   /* kernel-fault, registration, resolving-ioctl hooks attached */
	bool mmu_btf, mmu_tp;           /* kvmmmu walk + spte_requested programs */
	bool kvm_observable;            /* some KVM fault hook attached */
	char exe[PATH_MAX];
	int nranges;
	uint64_t region_page_mask;      /* of o.region_start's mapping (0: unknown) */
	bool msgs, wakeup, btf;         /* optional hooks attached; typed programs (tp_btf or raw_tp) */
	bool raw;                       /* ... raw_tp twins of the core hooks (tp_btf refused) */
	bool kvm_btf, kvm_tp, uffd, paused;
	uint64_t prog_misses;           /* runs the kernel skipped (recursion guard), at stop */

	/* events */
	struct ring_buffer *rb;
	FILE *events_fp;
	pthread_t ev_thread;
	bool ev_running;
	volatile bool ev_stop;
	uint64_t events_written;
	int events_err;

	/* threads listed by the caller */
	pid_t *tids;
	size_t ntids, captids;

	bool stopped;
	struct pcb_trace_stats *final;
	struct pcb_trace_thread *final_threads;
	size_t final_nthreads;
	struct pg_stats *final_pg;
	char pg_reason[160];
};

/* The program kind of each hook: tp_btf where the kernel accepts it, raw_tp twins, else classic
 * tracepoints; the KVM hooks; fentry on handle_userfault only if it really attaches. */
struct hook_kinds {
	bool btf, kvm_btf, kvm_tp, uffd;
};

/* trace.c */
int trace_fail(char *why, size_t whylen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int trace_exit_for_bpf_err(int err);
uint64_t trace_prog_misses(struct pcb_trace *t);
/* probe.c */
int trace_probe_raw(const char *name);
bool trace_tracefs_ready(void);
unsigned trace_kvm_addr_index(void);
int trace_pick_kinds(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds *k, char *why,
		     size_t whylen);
void trace_plan_hooks(struct pcb_trace *t, const struct pcb_trace_opts *o, bool btf);
void trace_kvm_to_classic(struct pcb_trace *t, bool *kvm_btf, bool *kvm_tp);
/* load.c */
void trace_log_init(int verbose);
int trace_load_programs(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds k, char *why,
			size_t whylen);
int trace_attach_faultlat(struct pcb_trace *t, bool btf, bool kvm_btf, bool kvm_tp, bool uffd, char *why,
			  size_t whylen);
int trace_attach_pager(struct pcb_trace *t, int *err);
void trace_start_usdt(struct pcb_trace *t, const struct pcb_trace_opts *o);
/* maps.c */
int trace_read_fl(struct pcb_trace *t, struct pcb_trace_stats *s);
int trace_read_pg(struct pcb_trace *t, struct pg_stats *s);
int trace_read_threads(struct pcb_trace *t, struct pcb_trace_thread **out, size_t *n);
/* ranges.c */
uint64_t trace_vma_page_mask(pid_t pid, uint64_t addr);
/* events.c */
int trace_start_events(struct pcb_trace *t, const struct pcb_trace_opts *o, char *why, size_t whylen);
void trace_stop_events(struct pcb_trace *t);
#endif
