/* Shared between bpf/faultlat/ and trace/: fixed-width types only.
 *
 * Per traced thread the kernel program keeps a small state machine in a
 * slot of a .bss array indexed by tid (no hash lookup on the hot paths):
 *
 *   page fault, not present, in a traced range  -> OPEN, fault_ns
 *   sched_switch out, sleeping interruptibly     -> BLOCKED, block_ns
 *     (or preempted while already TASK_INTERRUPTIBLE: it was entering the
 *      userfaultfd wait; if it is switched in again still not woken, the
 *      block is undone and the real sleep that follows counts)
 *   sched_switch out, uninterruptible only       -> another wait inside the fault; stays OPEN
 *   sched_switch in after BLOCKED                -> closed: histograms, event
 *   next fault while OPEN, not BLOCKED           -> closed as non-blocking
 *
 * KVM vCPU threads: a guest page fault that KVM resolves through
 * get_user_pages() into userfaultfd never raises exceptions:page_fault_user;
 * the vCPU thread sleeps inside KVM_RUN.  It opens at kvm:kvm_page_fault
 * (VMX/SVM exits) or, where that does not fire (shadow paging, the nested
 * PVM hypervisor), at kvmmmu:kvm_mmu_pagetable_walk, the walk of the guest's
 * page tables that starts KVM's handling of the fault; the sleep and the
 * switch-in are the same as above.  kvmmmu:kvm_mmu_spte_requested (the pfn
 * was found: the fault is resolved) closes a KVM fault that did not sleep.
 *
 * Optional hooks:
 *   sched_wakeup (track_wakeup): time of the wake-up, for fault -> wake-up
 *     and wake-up -> running.  Needed only with classic tracepoints (which
 *     hide the state of a preempted task).
 *   syscalls:sys_exit_read (track_msgs): the handler reading a fault message
 *     from a userfaultfd.  With any_reader, whatever process reads it: the
 *     file read is recognised as a userfaultfd by its f_op, learned from a
 *     userfaultfd of the tracer's own (learn_fd).  A fault whose message was read is "delivered": that
 *     is what a pager counts.  A fault that blocked but was resolved before
 *     its message was read (a background install of the same page woke it and
 *     took the message off the queue) is counted apart.
 *   exceptions:page_fault_kernel (kernel_faults): faults raised inside system
 *     calls (read() into registered memory), same state machine.
 *   syscalls:sys_{enter,exit}_ioctl, sys_exit_munmap, sys_exit_mremap
 *     (follow_ranges): UFFDIO_REGISTER / UNREGISTER and mapping changes of the
 *     target update ranges[] at once (no /proc/PID/smaps rescans).
 */
#ifndef PCB_BPF_FAULTLAT_H
#define PCB_BPF_FAULTLAT_H
#include "common/hist.h"

#define FL_MAX_RANGES   64      /* address ranges the fault filter accepts (bits of range_bits) */
#define FL_SLOTS        4096    /* per-thread state slots, indexed by tid % FL_SLOTS */
#define FL_SLOT_MASK    (FL_SLOTS - 1)
#define FL_MAX_OVF      1024    /* threads whose slot was taken (hash fallback) */
#define FL_MAX_TSTATS   256     /* threads with their own histogram */
#define FL_MSG_BATCH    16      /* fault messages parsed per read() */

enum fl_hist_id {
	FL_H_FAULT_TO_BLOCK = 0,    /* fault entry -> thread switched out (kernel fault path) */
	FL_H_FAULT_TO_WAKEUP,       /* fault entry -> sched_wakeup of the thread (track_wakeup) */
	FL_H_FAULT_TO_RUNNING,      /* fault entry -> on a CPU again; delivered faults only when
	                             * messages are tracked, else every blocking fault */
	FL_H_WAKEUP_TO_RUNNING,     /* sched_wakeup -> on a CPU (scheduling delay) */
	FL_H_KVM_FAULT_TO_WAKEUP,   /* same, for faults seen at kvm:kvm_page_fault */
	FL_H_KVM_FAULT_TO_RUNNING,
	FL_H_UNDELIVERED,           /* fault -> running of blocking faults resolved before the
	                             * handler read their message (track_msgs) */
	FL_H_FAULT_TO_RESOLVE,      /* fault -> exit of the first resolving ioctl (UFFDIO_COPY,
	                             * ZEROPAGE, CONTINUE, MOVE, WAKE) covering its page, of
	                             * faults whose message was read (track_resolve) */
	FL_H_RESOLVE_TO_RUNNING,    /* ... -> the thread on a CPU again */
	FL_NHIST
};

enum fl_counter {
	FL_C_FAULTS = 0,            /* not-present faults by traced threads in a traced range */
	FL_C_BLOCKING,              /* ... that blocked and completed (latency recorded); with
	                             * track_msgs only the delivered ones */
	FL_C_BLOCKED_ALL,           /* every fault that blocked and completed */
	FL_C_NONBLOCKING,           /* ... that completed without sleeping */
	FL_C_KVM_FAULTS,            /* kvm:kvm_page_fault events of traced threads */
	FL_C_KVM_BLOCKING,          /* ... that slept and completed; with track_msgs only those
	                             * whose message the handler read */
	FL_C_OUT_OF_RANGE,          /* faults of traced threads outside the ranges */
	FL_C_PREEMPTED,             /* traced thread preempted (running) while its fault was open */
	FL_C_LATE_SLEEP,            /* slept after > block_window_ns on CPU: not the fault's */
	FL_C_PREEMPT_WAIT,          /* preempted while entering the wait (TASK_INTERRUPTIBLE) */
	FL_C_PREEMPT_WAIT_UNDONE,   /* ... and switched in again before it was woken */
	FL_C_LOST,                  /* fault opened while a blocked one was never closed */
	FL_C_UFFD_ENTERED,          /* handle_userfault() entered (fentry only) */
	FL_C_EXITED,                /* thread exited with a fault open */
	FL_C_EVENTS,                /* events submitted to the ring buffer */
	FL_C_EVENTS_DROPPED,        /* ring buffer full */
	FL_C_STATE_FULL,            /* no room for a new thread state */
	FL_C_TSTATS_FULL,           /* no room for a new per-thread histogram */
	FL_C_SLEEP_OTHER,           /* uninterruptible sleep inside a fault (mmap lock, I/O, ...):
	                             * not userfaultfd's wait, the fault stays open */
	FL_C_PROT,                  /* protection faults skipped (no uffd-wp range) */
	FL_C_MSGS,                  /* fault messages read by the handler, matched to a fault */
	FL_C_MSG_UNMATCHED,         /* ... with no open fault of that thread at that page */
	FL_C_MSG_NO_TID,            /* ... without a thread id (no UFFD_FEATURE_THREAD_ID) */
	FL_C_BLOCKED_UNDELIVERED,   /* blocked, resolved before its message was read */
	FL_C_DELIVERED_NOBLOCK,     /* message read, but the thread never slept (woken first) */
	FL_C_MSG_LATE,              /* message matched after the fault was closed (re-filed) */
	FL_C_LOST_PWAIT,            /* of FL_C_LOST: blocked by a preemption while entering the wait */
	FL_C_LOST_DELIVERED,        /* of FL_C_LOST: its message was read (or messages are not
	                             * tracked): a fault the handler counted, latency unknown */
	FL_C_KVM_NONBLOCKING,       /* KVM faults resolved without sleeping (kvm_mmu_spte_requested
	                             * or the vCPU's next fault came first) */
	FL_C_KVM_WALK_DUP,          /* guest page-table walks inside a fault kvm_page_fault opened */
	FL_C_KVM_UNDELIVERED,       /* KVM faults that slept, but no fault message of that vCPU was
	                             * read meanwhile (track_msgs): not the userfaultfd wait, or
	                             * resolved before the handler read it */
	FL_C_KERNEL_FAULTS,         /* of FL_C_FAULTS: raised in kernel mode (a system call touching
	                             * registered memory: exceptions:page_fault_kernel) */
	FL_C_MSG_OTHER,             /* fault messages of threads that are not traced (another
	                             * process's userfaultfd; any_reader) */
	FL_C_MSG_BY_ADDR,           /* of FL_C_MSGS: matched by page (no thread id in the message) */
	FL_C_REGISTER,              /* UFFDIO_REGISTER ioctls of the target followed */
	FL_C_UNREGISTER,            /* UFFDIO_UNREGISTER / munmap / mremap that removed or trimmed
	                             * a traced range */
	FL_C_REMAP,                 /* mremap of a traced range followed to its new place */
	FL_C_KVM_DELIVERED_NOBLOCK, /* KVM faults whose message was read, resolved without sleeping */
	FL_C_RESOLVED,              /* delivered faults whose resolving ioctl was seen (track_resolve) */
	FL_C_RESOLVE_UNTRACKED,     /* pending map full: a delivered fault not followed to its ioctl */
	FL_C_RANGES_FULL,           /* a registration found no free range slot: the address
	                             * filter is turned off (every fault of the target opens) */
	FL_NCOUNTERS
};

/* fl_slot.flags (written only from the owner's fault and switch hooks) */
#define FL_S_OPEN       0x02u
#define FL_S_BLOCKED    0x04u
#define FL_S_KVM        0x10u
#define FL_S_UFFD       0x20u
#define FL_S_PREEMPTED  0x40u   /* switched out running: preempt_ns valid */
#define FL_S_DSLEEP     0x80u   /* in an uninterruptible sleep inside the fault */
#define FL_S_PWAIT      0x100u  /* BLOCKED because preempted while TASK_INTERRUPTIBLE */
#define FL_S_KVMPF      0x200u  /* KVM fault opened at kvm:kvm_page_fault (not at a walk) */

/* fl_slot.mw: (seq << FL_MW_SHIFT) | bits; the owner and the read hook
 * agree on a fault's delivery with atomic operations on it. */
#define FL_MW_DELIVERED 0x1u
#define FL_MW_CLOSED    0x2u
#define FL_MW_SHIFT     2

/* fl_slot.last_kind: how the owner filed the fault it closed last */
#define FL_K_BLOCKED    1u
#define FL_K_NONBLOCK   2u
#define FL_K_LOST       3u      /* blocked, switch-in never seen */

/* 64-bit fields where BPF atomics touch them (32-bit atomics need -mcpu=v3).
 * What every fault touches comes first: one 64-byte line; the optional hooks
 * use the second, track_resolve the third (aligned lines). */
struct fl_slot {
	pcb_u64 tid;            /* owner; 0: free */
	pcb_u32 collide;        /* another thread hashed here: look in the overflow map */
	pcb_u32 flags;
	pcb_u32 seq;            /* faults opened by this thread */
	pcb_u32 tstat;          /* 1 + index into tstats; 0: none yet */
	pcb_u64 fault_ns;
	pcb_u64 addr;
	pcb_u64 fault_j;        /* jiffies at the fault (cheap "same tick" test) */
	pcb_u64 preempt_ns;     /* switched out preempted (or into another wait) at */
	pcb_u64 off_ns;         /* time spent preempted since the fault */
	/* second line: optional hooks (events, wake-ups, messages), bookkeeping;
	 * a blocking fault without them touches only the first */
	pcb_u64 mw;             /* see FL_MW_* */
	pcb_u64 wakeup_ns;      /* written by the wake-up hook */
	pcb_u64 last_f2r;       /* fault -> running of the fault closed last (messages) */
	pcb_u64 block_ns;       /* switched out blocking at (events, fault -> block) */
	pcb_u32 wake_seq;       /* seq of the fault whose wake-up was seen */
	pcb_u32 last_kind;      /* FL_K_* */
	pcb_u32 tgid;
	pcb_u32 kvm;            /* the fault opened last is a KVM one (messages only) */
	char comm[16];          /* thread name at its first fault (TASK_COMM_LEN) */
	/* third line: track_resolve only */
	pcb_u64 resolve_ns;     /* exit of the ioctl that resolved fault resolve_seq */
	pcb_u32 resolve_seq;
	pcb_u32 pad[13];
} __attribute__((aligned(64)));

#define FL_RECENT       256     /* faults remembered for messages without a thread id */
struct fl_recent {
	pcb_u64 page;
	pcb_u64 tid;
};

struct fl_hist {
	pcb_u64 bucket[PCB_HIST_BUCKETS];
};

struct fl_counters {
	pcb_u64 c[FL_NCOUNTERS];
};

/* Per thread: fault -> running of every user fault that blocked.  Without
 * the message hook the global FL_H_FAULT_TO_RUNNING per-CPU histogram and
 * the FL_C_BLOCKING / FL_C_BLOCKED_ALL counters only hold faults of threads
 * without an entry here: user space adds these (one cache line less per
 * fault).  What every blocking fault updates comes first. */
struct fl_thread {
	pcb_u64 tid;            /* 0: unused entry */
	pcb_u64 blocking;       /* all blocking faults (histogram below) */
	pcb_u64 sum_ns;
	pcb_u64 max_ns;
	pcb_u64 undelivered;    /* of which resolved before their message was read */
	pcb_u64 late;           /* re-filed as delivered by a late message (read hook, atomic) */
	pcb_u64 lost;           /* blocked, switch-in never seen, counted as faults (no latency) */
	pcb_u64 delivered_noblock; /* message read, thread never slept (track_msgs) */
	pcb_u64 nonblocking;
	pcb_u64 kvm;            /* of blocking (delivered): KVM vCPU faults */
	char comm[16];          /* thread name at its first fault */
	pcb_u64 bucket[PCB_HIST_BUCKETS]; /* fault -> running of delivered faults (with track_msgs;
	                                   * of every blocking user fault without) */
};

struct fl_range {
	pcb_u64 start;
	pcb_u64 end;            /* exclusive */
	pcb_u64 page_mask;      /* the mapping's page size - 1 (0: 4 KiB).  A hugetlb
	                         * fault's message carries the huge page's address */
};

/* fl_event.flags */
#define FL_E_KVM        0x1u
#define FL_E_WOKEN      0x2u   /* wakeup_ns valid */
#define FL_E_UFFD       0x4u   /* handle_userfault() seen (fentry) */
#define FL_E_DELIVERED  0x8u   /* its message was read by the handler (track_msgs) */
#define FL_E_LOST       0x10u  /* its switch-in was never seen: running_ns is the time of
                                * the thread's next fault (an upper bound), cpu where
                                * that happened */

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
