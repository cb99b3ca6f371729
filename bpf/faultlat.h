/* Shared between bpf/faultlat.bpf.c and loader/trace.c: fixed-width types only.
 *
 * Per traced thread the kernel program keeps a small state machine:
 *
 *   page fault (in a traced range)          -> OPEN, fault_ns
 *   sched_switch out, sleeping, not preempted -> BLOCKED, block_ns
 *   sched_wakeup                             -> WOKEN, wakeup_ns
 *   sched_switch in                          -> histograms, event, closed
 *
 * A fault that is followed by another fault of the same thread, or whose
 * thread sleeps only after more than block_window_ns of on-CPU time, did not
 * block: it is counted as non-blocking and no latency is recorded.
 */
#ifndef PCB_BPF_FAULTLAT_H
#define PCB_BPF_FAULTLAT_H
#include "common/hist.h"

#define FL_MAX_RANGES   64      /* address ranges the fault filter accepts */
#define FL_MAX_THREADS  8192    /* per-thread state entries */
#define FL_MAX_TSTATS   1024    /* threads with their own histogram */

enum fl_hist_id {
	FL_H_FAULT_TO_BLOCK = 0,    /* fault entry -> thread switched out (kernel fault path) */
	FL_H_FAULT_TO_WAKEUP,       /* fault entry -> sched_wakeup of the thread */
	FL_H_FAULT_TO_RUNNING,      /* fault entry -> thread on a CPU again */
	FL_H_WAKEUP_TO_RUNNING,     /* sched_wakeup -> on a CPU (scheduling delay) */
	FL_H_KVM_FAULT_TO_WAKEUP,   /* same, for faults seen at kvm:kvm_page_fault */
	FL_H_KVM_FAULT_TO_RUNNING,
	FL_NHIST
};

enum fl_counter {
	FL_C_FAULTS = 0,            /* faults by traced threads in a traced range */
	FL_C_BLOCKING,              /* ... that blocked and completed (latency recorded) */
	FL_C_NONBLOCKING,           /* ... that completed without sleeping */
	FL_C_KVM_FAULTS,            /* kvm:kvm_page_fault events of traced threads */
	FL_C_KVM_BLOCKING,
	FL_C_OUT_OF_RANGE,          /* faults of traced threads outside the ranges */
	FL_C_PREEMPTED,             /* traced thread preempted while its fault was open */
	FL_C_LATE_SLEEP,            /* slept after > block_window_ns on CPU: not the fault's */
	FL_C_WAKE_BEFORE_BLOCK,     /* woken before it switched out (no block) */
	FL_C_NO_WAKEUP,             /* switched in after a block without a seen wake-up */
	FL_C_LOST,                  /* fault opened while a blocked one was never closed */
	FL_C_UFFD_ENTERED,          /* handle_userfault() entered (fentry only) */
	FL_C_EXITED,                /* thread exited with a fault open */
	FL_C_EVENTS,                /* events submitted to the ring buffer */
	FL_C_EVENTS_DROPPED,        /* ring buffer full */
	FL_C_STATE_FULL,            /* no room for a new thread state */
	FL_C_TSTATS_FULL,           /* no room for a new per-thread histogram */
	FL_C_SLEEP_OTHER,           /* uninterruptible sleep inside a fault (mmap lock, I/O, ...):
	                             * not userfaultfd's wait, the fault stays open */
	FL_NCOUNTERS
};

/* fl_state.flags */
#define FL_S_OPEN       0x02u
#define FL_S_BLOCKED    0x04u
#define FL_S_WOKEN      0x08u
#define FL_S_KVM        0x10u
#define FL_S_UFFD       0x20u
#define FL_S_PREEMPTED  0x40u
#define FL_S_DSLEEP     0x80u   /* in an uninterruptible sleep inside the fault */

struct fl_hist {
	pcb_u64 bucket[PCB_HIST_BUCKETS];
};

struct fl_counters {
	pcb_u64 c[FL_NCOUNTERS];
};

struct fl_state {
	pcb_u64 fault_ns;
	pcb_u64 addr;
	pcb_u64 block_ns;
	pcb_u64 wakeup_ns;
	pcb_u64 preempt_ns;     /* switched out preempted at */
	pcb_u64 off_ns;         /* time spent preempted since the fault */
	pcb_u32 flags;
	pcb_u32 pad;
};

/* Per thread: fault -> running. */
struct fl_thread {
	pcb_u64 blocking;
	pcb_u64 nonblocking;
	pcb_u64 sum_ns;
	pcb_u64 max_ns;
	pcb_u64 bucket[PCB_HIST_BUCKETS];
};

struct fl_range {
	pcb_u64 start;
	pcb_u64 end;            /* exclusive */
};

/* fl_event.flags */
#define FL_E_KVM     0x1u
#define FL_E_WOKEN   0x2u   /* wakeup_ns valid */
#define FL_E_UFFD    0x4u   /* handle_userfault() seen (fentry) */

struct fl_event {
	pcb_u64 fault_ns;       /* CLOCK_MONOTONIC */
	pcb_u64 block_ns;
	pcb_u64 wakeup_ns;      /* 0 if not seen */
	pcb_u64 running_ns;
	pcb_u64 addr;           /* faulting address (guest physical for KVM faults) */
	pcb_u32 tid;
	pcb_u32 tgid;
	pcb_u32 cpu;            /* CPU it resumed on */
	pcb_u32 flags;
};

#endif
