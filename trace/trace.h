/* Kernel-side tracing of a migration (bpf/faultlat/, bpf/pager.bpf.c).
 * Used by pcbench (--trace) and by pctrace.
 *
 * pcbench calls, in this order:
 *   pcb_trace_start(&o, &t, why, sizeof why)   after the guest region is registered
 *   pcb_trace_add_thread(t, tid)               for each guest vCPU thread
 *   ... run ...
 *   pcb_trace_stop(t)                          after the run (detaches, reads final maps)
 *   pcb_trace_json(t, j, "bpf")                into the result JSON
 *   pcb_trace_free(t)
 * and if start failed: pcb_trace_json_disabled(j, "bpf", why).
 */
#ifndef PCB_TRACE_H
#define PCB_TRACE_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "common/hist.h"
#include "bpf/faultlat.h"
#include "bpf/pager.h"

struct pcb_json;
struct pcb_trace;

struct pcb_trace_opts {
	pid_t pid;                  /* process to trace (tgid); required */
	uint64_t region_start;      /* uffd-registered range, 0/0 = any address */
	uint64_t region_len;
	bool events;                /* also stream per-fault events to a ring buffer */
	const char *events_path;    /* where events go as CSV (NULL: events are only counted) */
	bool usdt;                  /* attach pcbench:* USDT probes in the pid's binary */
	const char *usdt_binary;    /* path of that binary (/proc/PID/exe if NULL) */
	int verbose;                /* libbpf log */
	/* pctrace */
	bool uffd_ranges;           /* trace faults in the pid's userfaultfd-registered VMAs
	                             * (from /proc/PID/smaps; see pcb_trace_refresh_ranges) */
	bool classic;               /* use classic tracepoints even if tp_btf works */
	bool raw_tp;                /* use the raw_tp twins even if tp_btf works */
	uint64_t block_window_ns;   /* 0: default (10 ms) */
	bool null_progs;            /* programs that return at once: the hooks' own cost */
	/* Optional hooks (see bpf/faultlat.h). */
	bool wakeup;                /* sched_wakeup: fault -> wake-up split (forced with classic) */
	bool msgs;                  /* syscalls:sys_exit_read: which faults' messages the handler
	                             * read ("delivered"), so counts match the handler's */
	bool resolve;               /* msgs: follow delivered faults to their resolving ioctl
	                             * (fault -> resolve, resolve -> running) */
	bool any_reader;            /* msgs: read by any process (a userfaultfd recognised by its
	                             * f_op), not only by pid */
	bool kernel_faults;         /* exceptions:page_fault_kernel: faults inside system calls */
	bool json_bins;             /* histograms in the JSON with their bins (mergeable) */
	bool follow_ranges;         /* uffd_ranges: follow UFFDIO_(UN)REGISTER, munmap, mremap of
	                             * pid as they happen (else: pcb_trace_refresh_ranges) */
};

/* Load and attach.  Returns 0, or a PCB_EXIT_* code with a one-line reason in why. */
int pcb_trace_start(const struct pcb_trace_opts *o, struct pcb_trace **out, char *why, size_t whylen);
/* Restrict to these threads (the guest vCPUs); may be called any time after
 * start.  Until the first call every thread of pid is traced. */
int pcb_trace_add_thread(struct pcb_trace *t, pid_t tid);
/* Detach the fault-path programs / attach them again (the maps keep their
 * counts; faults open at the pause are dropped).  For benchmarks that
 * compare traced and untraced stretches of one process.  resume returns 0
 * or a PCB_EXIT_* code with the reason in why. */
int pcb_trace_pause(struct pcb_trace *t);
int pcb_trace_resume(struct pcb_trace *t, char *why, size_t whylen);
/* Detach and collect final maps. */
int pcb_trace_stop(struct pcb_trace *t);
/* Write the "bpf" object (enabled, attach points chosen, histograms, counts). */
void pcb_trace_json(struct pcb_trace *t, struct pcb_json *j, const char *key);
/* {"enabled": false, "reason": why} */
void pcb_trace_json_disabled(struct pcb_json *j, const char *key, const char *why);
void pcb_trace_free(struct pcb_trace *t);

/* ---- live access (pctrace) -------------------------------------------------- */

/* Cumulative since start (after stop: the final values). */
struct pcb_trace_stats {
	struct pcb_hist hist[FL_NHIST];
	uint64_t counter[FL_NCOUNTERS];
	uint64_t events_written;    /* CSV lines written so far */
	bool msgs;                  /* the message hook is attached (see pcb_trace_opts) */
	bool wakeup;                /* the wake-up hook is attached */
	uint64_t ranges;            /* traced address ranges now */
	pid_t readers[8];           /* processes that read the target's fault messages (0: none) */
};
int pcb_trace_read(struct pcb_trace *t, struct pcb_trace_stats *s);
/* The fault count to compare with a handler's: faults whose message it read
 * (message hook attached), else every fault that blocked. */
uint64_t pcb_trace_faults(const struct pcb_trace_stats *s);

struct pcb_trace_thread {
	pid_t tid;
	uint64_t blocking;          /* faults that blocked (delivered or not) */
	uint64_t delivered;         /* of which the handler read the message (= blocking
	                             * when messages are not tracked) */
	uint64_t nonblocking;
	uint64_t kvm;               /* of delivered: KVM vCPU faults (with messages) */
	char comm[16];              /* thread name at its first fault */
	struct pcb_hist hist;       /* fault -> running of the delivered faults (with messages;
	                             * of all blocking faults without) */
};
/* Per-thread totals, sorted by tid; *out is malloc'ed (free it). */
int pcb_trace_read_threads(struct pcb_trace *t, struct pcb_trace_thread **out, size_t *n);
/* Re-read the uffd-registered ranges from /proc/PID/smaps (uffd_ranges mode
 * where registrations cannot be followed: pcb_trace_follows_ranges() false).
 * Returns their number or -errno. */
int pcb_trace_refresh_ranges(struct pcb_trace *t);
bool pcb_trace_follows_ranges(struct pcb_trace *t);
/* How faults are counted: "uffd_messages" (a fault counts when the handler
 * read its message) or "scheduler_heuristic" (a fault counts when it
 * blocked); why, for the latter. */
const char *pcb_trace_method(struct pcb_trace *t, const char **why);
/* "tp_btf", "tracepoint", ... for point "page_fault", "sched_switch",
 * "sched_wakeup", "read", "kvm_page_fault", "handle_userfault", "usdt",
 * "page_fault_kernel", "ranges", "resolve". */
const char *pcb_trace_attach_kind(struct pcb_trace *t, const char *point);
#endif
