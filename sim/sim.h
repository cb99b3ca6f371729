/* The offline policy simulator (`pcbench simulate`): a discrete-event model
 * of a post-copy migration driven by a recorded access trace, running the
 * registered policies through policies/policy.h exactly as the live pager does.
 *
 * Model (virtual time, ns since switch-over):
 *  - vCPUs: each replays its own records of the trace in order.  Before an
 *    access a vCPU computes for its "think" time: the gap between its
 *    consecutive records' t_ns (think = recorded) or a fixed duration; or
 *    (think = schedule) it performs each access at its recorded t_ns, or as
 *    soon as its previous access completed if a stall made it late.  An
 *    access to a present page completes at once; an access to a missing page
 *    is a fault: the policy's on_fault is called, a demand request goes out
 *    unless one is already outstanding for that page, and the vCPU stalls
 *    until the page is installed (by the demand reply or a background batch,
 *    whichever comes first).
 *  - The source, as source/source.c serves it: a request is due at the source
 *    RTT after it was sent (the live link puts the whole delay on the reply);
 *    frames are reserved on one token bucket shared by all connections
 *    (wire/link.c: finish = max(link free, due) + bytes / rate); each
 *    connection sends its head request's frames in order, a background frame
 *    up to early_ns before its finish time, a demand reply at it.  With
 *    channels = 2 a demand reply has its own connection and overtakes the
 *    background frames on the link, waiting at most for the packet on the
 *    wire (pcb_link_reserve_urgent); with channels = 1 it shares the
 *    background connection, is sent first at the next frame boundary, after
 *    the background bytes in the socket buffer (up to 4 MiB at the link rate,
 *    as the live source models it).  Background batches become frames as the
 *    source makes them: a zero page (common/image.h, --seed/--zero-pages) is
 *    a 24-byte ZERO frame, a run of up to run_pages data pages one RUN frame,
 *    then a BATCH_END; every frame carries a 24-byte header.
 *  - The destination, as the pager (pager/demand.c, background.c): a demand reply is installed and its
 *    vCPUs run again demand_copy_ns / demand_zero_ns after it arrived (mostly
 *    wake-ups, so replies are not serialised); the background thread keeps
 *    `window` batches of `batch` pages in flight, asking the policy's
 *    next_batch after every background frame while the window has room,
 *    after a fault when it is idle, and every 2 ms while idle; received runs
 *    go to the installer (a serial server, bg_copy_ns / bg_zero_ns per page;
 *    zero pages are grouped into runs until the next non-zero frame, as the
 *    live receiver does).  When every vCPU has finished, the rest is pulled
 *    in address order ("drain").
 *  - A policy at the source (push = true, --policy-end=source): its batches
 *    leave without a request (due at once), two queued at a time as the live
 *    source keeps them, paced by the link; a demand reply on a shared
 *    connection waits for the full 4 MiB socket buffer while the stream runs
 *    (as the live source models it on an emulated link); a fault on a page
 *    the stream already carries waits for it (the live source answers SENT);
 *    on_fault is called at the fault, not when the request reaches the source.  A policy's own
 *    transfer discipline is applied as live: batch_pages, max_inflight
 *    (criu); criu's hold-back of the next chunk while a demand request is
 *    outstanding is not modelled.
 * Not modelled: CPU contention between the threads (the live machine has 2
 * CPUs; --jitter adds a random delay to demand requests instead), TCP
 * behaviour beyond the token bucket, recovery, huge pages, pre-copy.
 */
#ifndef PCB_SIM_H
#define PCB_SIM_H
#include "common/hist.h"
#include "pager/pager.h"
#include "policies/policy.h"
#include "workloads/workload.h"
#include <stdbool.h>
#include <stdint.h>

/* source/source.c PCB_LINK_SOCKQ_BYTES: a shared connection's modelled socket buffer */
#define PCB_SIM_SOCKQ_BYTES (4u << 20)
/* source/source.c PUSH_QUEUED: batches a pushing source keeps queued ahead of its socket */
#define PCB_SIM_PUSH_QUEUED 2
#define PCB_SIM_THINK_RECORDED UINT64_MAX         /* think = the gap to the vCPU's previous record */
#define PCB_SIM_THINK_SCHEDULE (UINT64_MAX - 1)   /* access at its recorded t_ns, or as soon as the previous one completed */

struct pcb_sim_params {
	uint64_t npages;             /* 0: the trace's */
	uint64_t bps;                /* link bandwidth, bit/s (0 = unlimited) */
	uint64_t rtt_ns;             /* request round trip */
	unsigned batch_pages;        /* pages per background batch (live --batch) */
	unsigned window;             /* background batches in flight (live --window) */
	unsigned channels;           /* 2: demand has its own connection; 1: it queues behind background */
	unsigned run_pages;          /* max data pages per RUN frame (live: 16 on an emulated link, 128 without) */
	uint64_t early_ns;           /* a background frame may leave this early (live source: 100 us) */
	uint64_t seed;               /* image seed: which pages are zero */
	double zero_pages;           /* zero fraction of the image */
	unsigned zero_run_max;       /* zero pages in runs up to this long (common/image.h); 0 = uniform */
	uint64_t think_ns;           /* guest time before each access, or PCB_SIM_THINK_RECORDED / _SCHEDULE */
	uint64_t fault_ns;           /* fault -> demand request leaves (uffd message delivered, demand thread awake, send) */
	uint64_t demand_copy_ns;     /* demand reply received -> vCPU running again (UFFDIO_COPY and wake-up) */
	uint64_t demand_zero_ns;     /* ... for a zero page (UFFDIO_ZEROPAGE) */
	uint64_t jitter_ns;          /* mean of an exponential extra delay on each demand request (host wake-ups); 0 = none */
	uint64_t bg_copy_ns;         /* background install per data page (batched UFFDIO_COPY) */
	uint64_t bg_zero_ns;         /* background install per zero page (batched UFFDIO_ZEROPAGE) */
	uint64_t bg_poll_ns;         /* an idle background thread asks the policy again after this long (live: 2 ms) */
	bool keep_faults;            /* record every fault (for --timeline) */
	bool push;                   /* the policy runs at the source (--policy-end=source): its batches
				      * leave without a request, PCB_SIM_PUSH_QUEUED queued at a time */
};

/* Defaults: this machine's measured costs (docs/results/2026-11-26-simulator-costs.md; model: docs/design.md "Offline policy simulator"), the live
 * --batch/--window defaults, the loopback link of this machine. */
void pcb_sim_defaults(struct pcb_sim_params *sp);

struct pcb_sim_vcpu {
	uint64_t accesses, faults, blocktime_ns, t_end_ns;
};

/* Faults are recorded as the live pager records them (struct pcb_fault_ev,
 * pager/pager.h): outcome 0 a demand request sent, 2 the page was requested already. */

struct pcb_sim_result {
	uint64_t npages;
	unsigned nvcpus;
	uint64_t accesses;           /* trace records replayed */
	uint64_t faults;             /* accesses that found their page missing */
	uint64_t faults_inflight;    /* ... whose page had a demand request outstanding already */
	uint64_t demand_requests;
	uint64_t bg_batches, bg_pages_requested, drain_batches;
	uint64_t pages_demand, pages_background, pages_drain;        /* data pages installed, by path */
	uint64_t zero_demand, zero_background, zero_drain;
	uint64_t eexist_demand, eexist_background;                   /* arrived after the page was present */
	uint64_t link_bytes[2];      /* bytes through the link: demand, background connection */
	uint64_t t_guest_done_ns, t_complete_ns;
	uint64_t events;             /* simulator events processed (heap pops + inline accesses) */
	uint64_t wall_ns;            /* host time of the simulation loop */
	uint64_t cpu_ns;             /* CPU time of the simulation loop (the machine may be shared) */
	struct pcb_hist fault_lat;   /* stall of each faulting access */
	struct pcb_hist demand_rtt;  /* demand request sent -> reply received (as the pager's demand_round_trip) */
	struct pcb_sim_vcpu *vcpu;   /* nvcpus entries */
	/* per page: first touch (µs + 1, PCB_TOUCH_FAULTED), install time (µs + 1) and kind (PCB_INST_*) */
	_Atomic uint32_t *first_touch;
	uint32_t *inst_us;
	uint8_t *inst_kind;
	/* every fault in time order, when pcb_sim_params.keep_faults is set */
	struct pcb_fault_ev *fault_ev;
	uint64_t nfault_ev;
};

/* Run the simulation of trace t with the policy `ops` (knobs already parsed
 * into opts->opts/nopts; opts may be NULL).  0, or an exit code with a
 * one-line reason (64 bad parameter or policy knob, 65 trace does not fit,
 * 71 out of memory, 70 the model got stuck). */
int pcb_sim_run(const struct pcb_sim_params *sp, const struct pcb_atrace *t, const struct pcb_policy_ops *ops,
		const struct pcb_policy *opts, struct pcb_sim_result *res, char *why, size_t whylen);
void pcb_sim_result_free(struct pcb_sim_result *res);

/* `pcbench simulate ...` (argv[0] = "simulate").  Returns the exit code. */
int pcb_cmd_simulate(int argc, char **argv);
#endif
