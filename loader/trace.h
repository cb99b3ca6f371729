/* Kernel-side tracing of a migration (bpf/faultlat.bpf.c, bpf/pager.bpf.c).
 * Used by pcbench (--trace) and by pctrace. */
#ifndef PCB_TRACE_H
#define PCB_TRACE_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct pcb_json;
struct pcb_trace;

struct pcb_trace_opts {
	pid_t pid;                  /* process to trace (tgid) */
	uint64_t region_start;      /* uffd-registered range, 0/0 = any address */
	uint64_t region_len;
	bool events;                /* also stream per-fault events to a ring buffer */
	const char *events_path;    /* where events go as CSV (NULL: kept in memory for the JSON summary only) */
	bool usdt;                  /* attach pcbench:* USDT probes in the pid's binary */
	const char *usdt_binary;    /* path of that binary (/proc/PID/exe if NULL) */
	int verbose;                /* libbpf log */
};

/* Load and attach.  Returns 0, or a PCB_EXIT_* code with a one-line reason in why. */
int pcb_trace_start(const struct pcb_trace_opts *o, struct pcb_trace **out, char *why, size_t whylen);
/* Restrict to these threads (the guest vCPUs); may be called any time after start. */
int pcb_trace_add_thread(struct pcb_trace *t, pid_t tid);
/* Detach and collect final maps. */
int pcb_trace_stop(struct pcb_trace *t);
/* Write the "bpf" object (enabled, attach points chosen, histograms, counts). */
void pcb_trace_json(struct pcb_trace *t, struct pcb_json *j, const char *key);
void pcb_trace_free(struct pcb_trace *t);
#endif
