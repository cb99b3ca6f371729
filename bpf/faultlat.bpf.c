// SPDX-License-Identifier: GPL-2.0
/* Fault-path latency of selected threads: page fault entry -> block ->
 * wake-up -> running again.  See bpf/faultlat.h for the state machine.
 *
 * Each hook exists twice: a tp_btf program (typed arguments, task pointers,
 * cheapest) and a classic tracepoint one.  loader/trace.c probes which kind
 * the kernel accepts and disables the others with set_autoload(false).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpf/faultlat.h"

char LICENSE[] SEC("license") = "GPL";

/* Knobs, set by user space between open and load. */
const volatile __u32 targ_tgid = 0;             /* 0: only listed threads, of any process */
const volatile __u64 block_window_ns = 10000000; /* on-CPU time a fault may take to block */
const volatile bool emit_events = false;
const volatile bool have_uffd_hook = false;     /* fentry on handle_userfault attached */
const volatile __u32 kvm_addr_arg = 1;          /* tp_btf arg index of the fault address */
const volatile __u64 rb_wakeup_bytes = 65536;   /* wake the consumer past this backlog */

/* Filters user space may change while running (mmapped .bss). */
__u32 only_listed = 0;          /* 1: only threads inserted by user space */
__u32 addr_filter = 0;          /* 1: only faults inside ranges[0..nr_ranges) */
__u32 nr_ranges = 0;
struct fl_range ranges[FL_MAX_RANGES];

/* Zero value used to create per-thread entries (too big for the stack). */
static const struct fl_thread zero_thread;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct fl_state);
} state SEC(".maps");

/* Threads user space listed (pcb_trace_add_thread), used when only_listed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_THREADS);
	__type(key, __u32);
	__type(value, __u32);
} listed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FL_MAX_TSTATS);
	__type(key, __u32);
	__type(value, struct fl_thread);
} tstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_NHIST);
	__type(key, __u32);
	__type(value, struct fl_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);      /* resized by user space when events are on */
} events SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u32 zero = 0;
	struct fl_counters *c = bpf_map_lookup_elem(&counters, &zero);

	barrier_var(idx);       /* keep the bound check for the verifier */
	if (c && idx < FL_NCOUNTERS)
		c->c[idx]++;
}

static __always_inline void hist_add(__u32 id, __u64 v)
{
	struct fl_hist *h = bpf_map_lookup_elem(&hists, &id);
	__u32 b;

	if (!h)
		return;
	b = pcb_hist_bucket(v);
	if (b < PCB_HIST_BUCKETS)
		h->bucket[b]++;
}

static __always_inline struct fl_thread *thread_stats(__u32 tid)
{
	struct fl_thread *t = bpf_map_lookup_elem(&tstats, &tid);

	if (t)
		return t;
	bpf_map_update_elem(&tstats, &tid, &zero_thread, BPF_NOEXIST);
	t = bpf_map_lookup_elem(&tstats, &tid);
	if (!t)
		count(FL_C_TSTATS_FULL);
	return t;
}

static __always_inline bool in_ranges(__u64 addr)
{
	__u32 n = nr_ranges;

	if (!addr_filter)
		return true;
	for (__u32 i = 0; i < FL_MAX_RANGES; i++) {
		if (i >= n)
			break;
		if (addr >= ranges[i].start && addr < ranges[i].end)
			return true;
	}
	return false;
}

static __always_inline void close_nonblocking(struct fl_state *st, __u32 tid)
{
	struct fl_thread *t = thread_stats(tid);

	count(FL_C_NONBLOCKING);
	if (t)
		__sync_fetch_and_add(&t->nonblocking, 1);
	st->flags = 0;
}

/* Per-thread state, by tid.  (Task storage would save the hash lookup in
 * tp_btf programs, but its per-CPU recursion guard makes lookups fail now and
 * then from the scheduler hooks, and a missed switch-in loses a fault.) */
static __always_inline struct fl_state *state_get(__u32 tid)
{
	return bpf_map_lookup_elem(&state, &tid);
}

static __always_inline struct fl_state *state_create(__u32 tid)
{
	struct fl_state fresh = {};

	bpf_map_update_elem(&state, &tid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&state, &tid);
}

/* A page fault (or KVM guest page fault) by the current thread. */
static __always_inline void on_fault(__u64 addr, bool kvm)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct fl_state *st;

	if (targ_tgid && tgid != targ_tgid)
		return;
	if ((only_listed || !targ_tgid) && !bpf_map_lookup_elem(&listed, &tid))
		return;
	if (!kvm && !in_ranges(addr)) {
		count(FL_C_OUT_OF_RANGE);
		return;
	}
	st = state_get(tid);
	if (!st) {
		st = state_create(tid);
		if (!st) {
			count(FL_C_STATE_FULL);
			return;
		}
	}
	if (st->flags & FL_S_OPEN) {
		if (st->flags & FL_S_BLOCKED)
			count(FL_C_LOST);
		else
			close_nonblocking(st, tid);
	}
	st->fault_ns = bpf_ktime_get_ns();
	st->addr = addr;
	st->block_ns = 0;
	st->wakeup_ns = 0;
	st->preempt_ns = 0;
	st->off_ns = 0;
	st->flags = FL_S_OPEN | (kvm ? FL_S_KVM : 0);
	count(kvm ? FL_C_KVM_FAULTS : FL_C_FAULTS);
}

/* The fault blocked and the thread is back on a CPU. */
static __always_inline void finish(struct fl_state *st, __u32 tid, __u64 now)
{
	bool kvm = st->flags & FL_S_KVM, woken = st->flags & FL_S_WOKEN;
	__u64 f2r = now - st->fault_ns;
	struct fl_thread *t;
	struct fl_event *e;
	__u32 b;

	if (kvm) {
		count(FL_C_KVM_BLOCKING);
		hist_add(FL_H_KVM_FAULT_TO_RUNNING, f2r);
		if (woken)
			hist_add(FL_H_KVM_FAULT_TO_WAKEUP, st->wakeup_ns - st->fault_ns);
	} else {
		count(FL_C_BLOCKING);
		hist_add(FL_H_FAULT_TO_RUNNING, f2r);
		hist_add(FL_H_FAULT_TO_BLOCK, st->block_ns - st->fault_ns);
		if (woken) {
			hist_add(FL_H_FAULT_TO_WAKEUP, st->wakeup_ns - st->fault_ns);
			hist_add(FL_H_WAKEUP_TO_RUNNING, now - st->wakeup_ns);
		}
	}
	if (!woken)
		count(FL_C_NO_WAKEUP);

	t = thread_stats(tid);
	if (t) {
		__sync_fetch_and_add(&t->blocking, 1);
		__sync_fetch_and_add(&t->sum_ns, f2r);
		if (f2r > t->max_ns)
			t->max_ns = f2r;
		b = pcb_hist_bucket(f2r);
		if (b < PCB_HIST_BUCKETS)
			__sync_fetch_and_add(&t->bucket[b], 1);
	}

	if (emit_events) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count(FL_C_EVENTS_DROPPED);
		} else {
			e->fault_ns = st->fault_ns;
			e->block_ns = st->block_ns;
			e->wakeup_ns = woken ? st->wakeup_ns : 0;
			e->running_ns = now;
			e->addr = st->addr;
			e->tid = tid;
			e->tgid = bpf_get_current_pid_tgid() >> 32;
			e->cpu = bpf_get_smp_processor_id();
			e->flags = (kvm ? FL_E_KVM : 0) | (woken ? FL_E_WOKEN : 0) |
				   ((st->flags & FL_S_UFFD) ? FL_E_UFFD : 0);
			/* Batch consumer wake-ups: one per rb_wakeup_bytes of backlog. */
			if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= rb_wakeup_bytes)
				bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
			else
				bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
			count(FL_C_EVENTS);
		}
	}
	st->flags = 0;
}

/* prev_sleeps: TASK_INTERRUPTIBLE (1) / TASK_UNINTERRUPTIBLE (2) bits of a
 * task that switched out sleeping, 0 if preempted or running.
 * prev_dead: exiting. */
static __always_inline void on_switch(__u32 prev, __u32 prev_sleeps, bool prev_dead,
				      __u32 next, bool check_prev, bool check_next)
{
	struct fl_state *st;
	__u64 now = 0;

	if (check_prev && (st = state_get(prev))) {
		if (prev_dead) {
			if (st->flags & FL_S_OPEN)
				count(FL_C_EXITED);
			bpf_map_delete_elem(&state, &prev);
		} else if ((st->flags & (FL_S_OPEN | FL_S_BLOCKED)) == FL_S_OPEN) {
			now = bpf_ktime_get_ns();
			if (!prev_sleeps) {
				st->preempt_ns = now;
				st->flags |= FL_S_PREEMPTED;
				count(FL_C_PREEMPTED);
			} else if (!(prev_sleeps & 1) && !(st->flags & FL_S_KVM)) {
				/* TASK_(UN)INTERRUPTIBLE without INTERRUPTIBLE: userfaultfd
				 * waits interruptibly in user faults, so this is another
				 * wait (mmap lock, page lock, reclaim).  Keep the fault
				 * open and its clock running; do not count it as on-CPU. */
				st->preempt_ns = now;
				st->flags |= FL_S_DSLEEP;
				count(FL_C_SLEEP_OTHER);
			} else if (have_uffd_hook ? !(st->flags & (FL_S_UFFD | FL_S_KVM)) :
				   now - st->fault_ns - st->off_ns > block_window_ns) {
				/* The fault completed long ago; this sleep is something else. */
				count(FL_C_LATE_SLEEP);
				close_nonblocking(st, prev);
			} else {
				st->block_ns = now;
				st->flags |= FL_S_BLOCKED;
			}
		}
	}
	if (check_next && (st = state_get(next)) && (st->flags & FL_S_OPEN)) {
		if (!now)
			now = bpf_ktime_get_ns();
		if (st->flags & FL_S_BLOCKED) {
			finish(st, next, now);
		} else if (st->preempt_ns) {
			st->off_ns += now - st->preempt_ns;
			st->preempt_ns = 0;
			st->flags &= ~FL_S_DSLEEP;
		}
	}
}

static __always_inline void on_wakeup(__u32 tid)
{
	struct fl_state *st = state_get(tid);

	if (!st || !(st->flags & FL_S_OPEN))
		return;
	if (st->flags & FL_S_BLOCKED) {
		if (!(st->flags & FL_S_WOKEN)) {
			st->wakeup_ns = bpf_ktime_get_ns();
			st->flags |= FL_S_WOKEN;
		}
	} else if (st->flags & FL_S_DSLEEP) {
		return;         /* the end of another wait; the fault goes on */
	} else if (st->preempt_ns) {
		/* Preempted inside the fault (e.g. by the handler it just woke)
		 * and woken by its resolution before it could sleep: it waited
		 * all the same, from the preemption on. */
		st->block_ns = st->preempt_ns;
		st->preempt_ns = 0;
		st->wakeup_ns = bpf_ktime_get_ns();
		st->flags |= FL_S_BLOCKED | FL_S_WOKEN;
	} else {
		count(FL_C_WAKE_BEFORE_BLOCK);
	}
}

/* ---- page faults ------------------------------------------------------- */

SEC("tp_btf/page_fault_user")
int BPF_PROG(fl_fault_btf, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(address, false);
	return 0;
}

/* Layout of exceptions:page_fault_user (x86; not in vmlinux BTF). */
struct pcb_tp_x86_exceptions {
	struct trace_entry ent;
	unsigned long address;
	unsigned long ip;
	unsigned long error_code;
};

SEC("tracepoint/exceptions/page_fault_user")
int fl_fault_tp(struct pcb_tp_x86_exceptions *ctx)
{
	on_fault(ctx->address, false);
	return 0;
}

SEC("tp_btf/kvm_page_fault")
int BPF_PROG(fl_kvm_btf)
{
	/* Both loads at constant offsets; then pick (ctx pointer arithmetic is refused). */
	__u64 a0 = ctx[0], a1 = ctx[1];

	barrier_var(a0);
	barrier_var(a1);
	on_fault(kvm_addr_arg ? a1 : a0, true);
	return 0;
}

SEC("tracepoint/kvm/kvm_page_fault")
int fl_kvm_tp(struct trace_event_raw_kvm_page_fault *ctx)
{
	on_fault(BPF_CORE_READ(ctx, fault_address), true);
	return 0;
}

/* Optional: only where fentry is allowed.  Marks the open fault as a
 * userfaultfd one, which replaces the block_window_ns heuristic. */
SEC("fentry/handle_userfault")
int BPF_PROG(fl_uffd_fentry)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fl_state *st = bpf_map_lookup_elem(&state, &tid);

	if (st && (st->flags & FL_S_OPEN)) {
		st->flags |= FL_S_UFFD;
		count(FL_C_UFFD_ENTERED);
	}
	return 0;
}

/* ---- scheduler ---------------------------------------------------------- */

#define PCB_TASK_RUNNING_MASK  0x3     /* TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE */
#define PCB_TASK_DEAD          0x80    /* raw __state */
#define PCB_REPORT_EXIT_MASK   0x30    /* EXIT_DEAD | EXIT_ZOMBIE as reported by the tracepoint */

SEC("tp_btf/sched_switch")
int BPF_PROG(fl_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	bool cp = !targ_tgid || prev->tgid == targ_tgid;
	bool cn = !targ_tgid || next->tgid == targ_tgid;

	if (!cp && !cn)
		return 0;
	on_switch(prev->pid, preempt ? 0 : (prev_state & PCB_TASK_RUNNING_MASK),
		  !preempt && (prev_state & PCB_TASK_DEAD), next->pid, cp, cn);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int fl_switch_tp(struct trace_event_raw_sched_switch *ctx)
{
	/* Preempted tasks are reported as TASK_REPORT_MAX (0x100 here): the
	 * masks below never match it. */
	long st = BPF_CORE_READ(ctx, prev_state);

	on_switch(BPF_CORE_READ(ctx, prev_pid), st & PCB_TASK_RUNNING_MASK,
		  st & PCB_REPORT_EXIT_MASK, BPF_CORE_READ(ctx, next_pid), true, true);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(fl_wakeup_btf, struct task_struct *p)
{
	if (targ_tgid && p->tgid != targ_tgid)
		return 0;
	on_wakeup(p->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup")
int fl_wakeup_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	on_wakeup(BPF_CORE_READ(ctx, pid));
	return 0;
}
