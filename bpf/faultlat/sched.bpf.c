// SPDX-License-Identifier: GPL-2.0
/* bpf/faultlat, the scheduler: a traced thread with an open fault switches
 * out (blocked in the userfaultfd wait, preempted, or another wait), is
 * woken, and is back on a CPU: the fault closes (histograms, per-thread
 * table, event).  See bpf/faultlat.h. */
#include "bpf/faultlat/faultlat.bpf.h"

static __always_inline void slot_release(struct fl_slot *s, __u32 tid)
{
	if (s == &slots[tid & FL_SLOT_MASK])
		__sync_val_compare_and_swap(&s->tid, (__u64)tid, 0ull);
	else
		bpf_map_delete_elem(&ovf, &tid);
}

/* The fault blocked and the thread is back on a CPU. */
static __always_inline void finish(struct fl_slot *s, __u32 tid, __u64 now)
{
	bool kvm = s->flags & FL_S_KVM, woken = track_wakeup && s->wake_seq == s->seq;
	__u64 f2r = now - s->fault_ns, wakeup_ns = woken ? s->wakeup_ns : 0;
	bool delivered = true;
	struct fl_thread *t = NULL;

	if (track_msgs) {
		/* (read by deliver() only: without messages the slot's second
		 * line stays untouched) */
		s->last_f2r = f2r;
		s->last_kind = FL_K_BLOCKED;
		delivered = close_mw(s);
	}
	if (track_resolve && delivered && s->resolve_seq == s->seq && s->resolve_ns >= s->fault_ns) {
		hist_add(FL_H_FAULT_TO_RESOLVE, s->resolve_ns - s->fault_ns);
		hist_add(FL_H_RESOLVE_TO_RUNNING, now > s->resolve_ns ? now - s->resolve_ns : 0);
	}
	if (kvm) {
		/* With messages, a vCPU's sleep inside a KVM fault counts when
		 * the handler read a fault message of that vCPU meanwhile:
		 * that tells the userfaultfd wait from any other sleep. */
		if (!delivered) {
			count(FL_C_KVM_UNDELIVERED);
		} else {
			count(FL_C_KVM_BLOCKING);
			hist_add(FL_H_KVM_FAULT_TO_RUNNING, f2r);
			if (woken)
				hist_add(FL_H_KVM_FAULT_TO_WAKEUP, wakeup_ns - s->fault_ns);
			/* per-vCPU table (with messages only: without, user space
			 * sums the per-thread histograms into the user faults') */
			if (track_msgs) {
				t = thread_stats(s, tid);
				if (t)
					__sync_fetch_and_add(&t->kvm, 1);
			}
		}
	} else {
		/* Per-thread histogram of user faults; without the message hook
		 * user space sums those into the global fault -> running one, so
		 * a fault that has a per-thread entry touches one line less. */
		t = thread_stats(s, tid);
		if (track_msgs || !t)
			count(FL_C_BLOCKED_ALL);
		if (delivered) {
			if (track_msgs || !t) {
				count(FL_C_BLOCKING);
				hist_add(FL_H_FAULT_TO_RUNNING, f2r);
			}
		} else {
			count(FL_C_BLOCKED_UNDELIVERED);
			hist_add(FL_H_UNDELIVERED, f2r);
		}
		if (block_times)
			hist_add(FL_H_FAULT_TO_BLOCK, s->block_ns - s->fault_ns);
		if (woken) {
			hist_add(FL_H_FAULT_TO_WAKEUP, wakeup_ns - s->fault_ns);
			hist_add(FL_H_WAKEUP_TO_RUNNING, now - wakeup_ns);
		}
	}

	if (t) {
		t->blocking++;
		if (!delivered)
			t->undelivered++;
		else
			thread_hist_add(t, f2r);
	}

	if (emit_events) {
		__u32 flags = (kvm ? FL_E_KVM : 0) | (woken ? FL_E_WOKEN : 0) |
			      ((s->flags & FL_S_UFFD) ? FL_E_UFFD : 0) | (track_msgs && delivered ? FL_E_DELIVERED : 0);

		count(emit_event(s, tid, s->tgid, now, wakeup_ns, flags) ? FL_C_EVENTS : FL_C_EVENTS_DROPPED);
	}
	s->flags = 0;
}

#define FL_MAX_TICK_NS 10000000ull  /* one jiffy at the lowest CONFIG_HZ (100) */
#define PCB_TASK_INTERRUPTIBLE  0x1
#define PCB_TASK_UNINTERRUPTIBLE 0x2
#define PCB_TASK_RUNNING_MASK  0x3     /* TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE */
#define PCB_TASK_DEAD          0x80    /* raw __state */
#define PCB_REPORT_EXIT_MASK   0x30    /* EXIT_DEAD | EXIT_ZOMBIE as reported by the tracepoint */

/* A traced thread with an open fault switches out.
 * preempt: involuntary (still runnable); state: its raw task state. */
static __always_inline void switch_out(struct fl_slot *s, __u32 tid, bool preempt, __u32 state)
{
	bool entering_wait = btf_switch && (state & PCB_TASK_INTERRUPTIBLE) && !(s->flags & FL_S_KVM);
	__u64 now, on;

	if ((s->flags & (FL_S_OPEN | FL_S_BLOCKED)) != FL_S_OPEN)
		return;
	/* The common case, a fault blocking in userfaultfd's wait within
	 * microseconds, without a clock read: bpf_ktime_get_ns() costs ~70 ns
	 * on the machine this was written on (a third of the programs' cost per
	 * fault), bpf_jiffies64() ~5 ns, and tracing programs may not call
	 * bpf_ktime_get_coarse_ns().  Still in the jiffy of the fault means
	 * less than one tick (<= 10 ms: HZ >= 100) since the fault, so within
	 * the window whatever the time spent preempted.  Only the event stream
	 * and the fault -> block histogram need the time of the block. */
	if (!(preempt || !(state & PCB_TASK_INTERRUPTIBLE) || have_uffd_hook || block_times ||
	      emit_events) && block_window_ns >= FL_MAX_TICK_NS && bpf_jiffies64() == s->fault_j) {
		s->flags |= FL_S_BLOCKED;       /* (block_ns: read only by those two) */
		return;
	}
	now = bpf_ktime_get_ns();
	on = now > s->fault_ns + s->off_ns ? now - s->fault_ns - s->off_ns : 0;
	if (preempt) {
		if (entering_wait && on <= block_window_ns) {
			/* Preempted between set_current_state() and schedule() in
			 * the userfaultfd wait, typically by the handler it has just
			 * woken: it waits from now on, whether or not it still
			 * goes to sleep. */
			s->block_ns = now;
			s->flags |= FL_S_BLOCKED | FL_S_PWAIT;
			count(FL_C_PREEMPT_WAIT);
		} else {
			s->preempt_ns = now;
			s->flags |= FL_S_PREEMPTED;
			count(FL_C_PREEMPTED);
		}
	} else if (!(state & PCB_TASK_INTERRUPTIBLE) && !(s->flags & FL_S_KVM)) {
		/* TASK_(UN)INTERRUPTIBLE without INTERRUPTIBLE: userfaultfd
		 * waits interruptibly in user faults, so this is another
		 * wait (mmap lock, page lock, reclaim).  Keep the fault
		 * open and its clock running; do not count it as on-CPU. */
		s->preempt_ns = now;
		s->flags |= FL_S_DSLEEP;
		count(FL_C_SLEEP_OTHER);
	} else if (have_uffd_hook ? !(s->flags & (FL_S_UFFD | FL_S_KVM)) : on > block_window_ns) {
		/* The fault completed long ago; this sleep is something else. */
		count(FL_C_LATE_SLEEP);
		close_nonblocking(s, tid);
	} else {
		s->block_ns = now;
		s->flags |= FL_S_BLOCKED;
	}
}

/* A traced thread with an open fault switches in.  next_state: its raw
 * task state (btf_switch only): still TASK_INTERRUPTIBLE means it was not
 * woken, it only runs on to finish going to sleep. */
static __always_inline void switch_in(struct fl_slot *s, __u32 tid, __u32 next_state)
{
	__u64 now;

	if (!(s->flags & FL_S_OPEN))
		return;
	if (s->flags & FL_S_BLOCKED) {
		if ((s->flags & FL_S_PWAIT) && (next_state & PCB_TASK_INTERRUPTIBLE)) {
			s->flags &= ~(FL_S_BLOCKED | FL_S_PWAIT);
			count(FL_C_PREEMPT_WAIT_UNDONE);
			return;
		}
		finish(s, tid, bpf_ktime_get_ns());
	} else if (s->preempt_ns) {
		now = bpf_ktime_get_ns();
		s->off_ns += now - s->preempt_ns;
		s->preempt_ns = 0;
		s->flags &= ~(FL_S_DSLEEP | FL_S_PREEMPTED);
	}
}

static __always_inline void on_exit(struct fl_slot *s, __u32 tid)
{
	if (s->flags & FL_S_OPEN)
		count(FL_C_EXITED);
	s->flags = 0;
	slot_release(s, tid);
}

/* prev switches out (raw state prev_state), next in.  typed: tp_btf's
 * trusted task pointers, loaded directly; else (raw_tp) read with CO-RE.
 * (typed is a constant: each program keeps one kind of load.) */
static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
				     __u32 prev_state, bool typed)
{
	__u32 p = typed ? prev->pid : BPF_CORE_READ(prev, pid), n = typed ? next->pid : BPF_CORE_READ(next, pid);
	struct fl_slot *s;

	if (null_progs)
		return 0;
	if ((s = slot_find(p))) {
		if (!preempt && (prev_state & PCB_TASK_DEAD))
			on_exit(s, p);
		else
			switch_out(s, p, preempt, prev_state);
	}
	if ((s = slot_find(n)))
		switch_in(s, n, typed ? next->__state : BPF_CORE_READ(next, __state));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(fl_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return on_switch(preempt, prev, next, prev_state, true);
}

SEC("tracepoint/sched/sched_switch")
int fl_switch_tp(struct trace_event_raw_sched_switch *ctx)
{
	/* Preempted tasks are reported as TASK_REPORT_MAX (0x100 here): the
	 * masks below never match it; the wake-up hook handles them. */
	long st = BPF_CORE_READ(ctx, prev_state);
	__u32 p = BPF_CORE_READ(ctx, prev_pid), n = BPF_CORE_READ(ctx, next_pid);
	struct fl_slot *s;

	if (null_progs)
		return 0;
	if ((s = slot_find(p))) {
		if (st & PCB_REPORT_EXIT_MASK)
			on_exit(s, p);
		else
			switch_out(s, p, !(st & PCB_TASK_RUNNING_MASK), st & PCB_TASK_RUNNING_MASK);
	}
	if ((s = slot_find(n)))
		switch_in(s, n, 0);
	return 0;
}

/* raw_tp twin: (preempt, prev, next, prev_state), task fields read with
 * CO-RE; the raw prev_state and next's state as with tp_btf (no 0x100
 * report mask to work around, unlike the classic tracepoint). */
SEC("raw_tp/sched_switch")
int fl_switch_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_switch(ctx->args[0], (struct task_struct *)ctx->args[1], (struct task_struct *)ctx->args[2],
			 (__u32)ctx->args[3], false);
}

static __always_inline void on_wakeup(__u32 tid)
{
	struct fl_slot *s = slot_find(tid);
	__u32 seq;

	if (!s || !(s->flags & FL_S_OPEN))
		return;
	seq = s->seq;
	if (s->wake_seq == seq)
		return;
	if (!btf_switch && !(s->flags & (FL_S_BLOCKED | FL_S_DSLEEP)) && s->preempt_ns) {
		/* Classic tracepoints: preempted inside the fault (e.g. by the
		 * handler it just woke) and woken by its resolution before it
		 * could sleep: it waited all the same, from the preemption on. */
		s->block_ns = s->preempt_ns;
		s->preempt_ns = 0;
		s->flags |= FL_S_BLOCKED;
	} else if (s->flags & FL_S_DSLEEP) {
		return;         /* the end of another wait; the fault goes on */
	}
	s->wakeup_ns = bpf_ktime_get_ns();
	s->wake_seq = seq;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(fl_wakeup_btf, struct task_struct *p)
{
	if (null_progs)
		return 0;
	on_wakeup(p->pid);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int fl_wakeup_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (null_progs)
		return 0;
	on_wakeup(BPF_CORE_READ((struct task_struct *)ctx->args[0], pid));
	return 0;
}

SEC("tracepoint/sched/sched_wakeup")
int fl_wakeup_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	if (null_progs)
		return 0;
	on_wakeup(BPF_CORE_READ(ctx, pid));
	return 0;
}
