// SPDX-License-Identifier: GPL-2.0
/* Fault-path latency of selected threads: page fault entry -> block ->
 * (wake-up) -> running again.  See bpf/faultlat.h for the state machine.
 *
 * Cost model (what the hot paths do):
 *  - every page fault of the system: one helper call (pid_tgid) and a compare;
 *  - every context switch / wake-up of the system: for each task involved one
 *    bit of tbits (512 bytes, cache resident) and, only if it is set, a load
 *    of slots[tid % FL_SLOTS].tid and a compare (no map lookup).  Only
 *    threads that fault inside a traced range get a slot (a pager's own
 *    threads stay on this fast path);
 *  - traced threads only: per blocking fault two clock reads (fault entry and
 *    switch-in; the switch-out is decided with bpf_jiffies64(), see
 *    switch_out()), per-CPU counters and histograms (inlined array lookups),
 *    one array lookup for the per-thread histogram.
 * Measured here (bpf_stats, kernel.bpf_stats_enabled=1): bpf_ktime_get_ns()
 * costs ~70 ns, bpf_jiffies64() ~5 ns, and an empty tp_btf program ~100 ns
 * per run (the tracepoint and program dispatch, retpolines): the fixed cost
 * of three runs per fault is most of what remains (bpf/overhead.sh).
 * A hash map is consulted only for threads whose slot another traced thread
 * already holds (tid collision modulo FL_SLOTS).
 *
 * Task storage would give the same O(1) access, but bpf_task_storage_get()
 * takes a per-CPU "busy" guard and returns NULL when a BPF program on the
 * same CPU is already inside task-storage code (a fault program interrupted
 * by a wake-up from an IRQ, for instance): in the scheduler hooks such a miss
 * loses a switch-in, hence a fault.  The .bss slot array has no such guard.
 *
 * The core hooks exist three times: a tp_btf program (typed arguments, task
 * pointers, cheapest), a raw_tp twin (the same raw arguments, read with
 * CO-RE: where tp_btf is refused) and a classic tracepoint one (the KVM
 * hooks: tp_btf and classic).  trace/probe.c probes which kind the kernel
 * accepts and trace/load.c disables the others with set_autoload(false).
 *
 * This file defines the state the parts share (bpf/faultlat/faultlat.bpf.h
 * declares it and lists the parts).
 */
#include "bpf/faultlat/faultlat.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Knobs, set by user space between open and load. */
const volatile __u32 targ_tgid = 0;             /* 0: only listed threads, of any process */
const volatile __u64 block_window_ns = 10000000; /* on-CPU time a fault may take to block */
const volatile bool emit_events = false;
const volatile bool have_uffd_hook = false;     /* fentry on handle_userfault attached */
const volatile bool track_wakeup = false;       /* a sched_wakeup program is attached */
const volatile bool track_msgs = false;         /* the sys_exit_read program is attached */
const volatile bool btf_switch = true;          /* tp_btf sched_switch (raw task state) */
const volatile bool block_times = false;        /* keep the fault -> block histogram */
const volatile __u32 kvm_addr_arg = 1;          /* tp_btf arg index of the fault address */
const volatile __u64 rb_wakeup_bytes = 65536;   /* wake the consumer past this backlog */
/* Programs that return at once (pctrace --null-programs): what attaching the
 * hooks costs by itself on this kernel.  Read-only data: the verifier drops
 * the test from the real programs. */
const volatile bool null_progs = false;
const volatile bool any_reader = false;         /* messages read by any process (f_op test) */
const volatile bool track_resolve = false;      /* follow delivered faults to their resolving ioctl */
const volatile __u32 self_tgid = 0;             /* the tracer (learns the userfaultfd f_op) */

/* Filters user space may change while running (mmapped .bss). */
__u32 only_listed = 0;          /* 1: only threads whose slot user space claimed */
__u32 addr_filter = 0;          /* 1: only faults inside the ranges of range_bits */
__u32 accept_prot = 0;          /* 1: also protection faults (uffd write-protect ranges) */
__u64 next_tstat = 0;           /* per-thread histograms handed out */
/* Bit i set: ranges[i] may be in use (a slot whose end <= start is empty).
 * User space fills it before attaching; afterwards only the registration
 * hooks change it (claim a bit, then write start, then end). */
__u64 range_bits = 0;
struct fl_range ranges[FL_MAX_RANGES];
/* Bit i set: some traced thread has tid % FL_SLOTS == i.  512 bytes that
 * stay in cache: a context switch of an untraced task reads one bit per
 * task, not a line of the 512 KiB slot array. */
__u64 tbits[FL_SLOTS / 64];
struct fl_slot slots[FL_SLOTS];

/* The last FL_RECENT faults opened (track_msgs): page | tid, to match the
 * messages that carry no thread id (no UFFD_FEATURE_THREAD_ID).  A ring in
 * .bss: two stores per fault where a hash update cost ~0.3 us; searched only
 * for such a message. */
struct fl_recent recent[FL_RECENT];
__u64 recent_seq = 0;

/* Threads whose slot was taken by another thread (tid collision). */
struct fl_ovf_map ovf SEC(".maps");
struct fl_tstats_map tstats SEC(".maps");
struct fl_hists_map hists SEC(".maps");
struct fl_counters_map counters SEC(".maps");
struct fl_events_map events SEC(".maps");
