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
 * hooks: tp_btf and classic).  trace/trace.c probes which kind the kernel
 * accepts and disables the others with set_autoload(false).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpf/faultlat.h"

char LICENSE[] SEC("license") = "GPL";

#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

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
__s64 learn_fd = -1;            /* the tracer's own userfaultfd, read once to learn its f_op */
__u64 uffd_fops = 0;            /* learned: file->f_op of every userfaultfd */
__u64 msg_tgids[8];             /* processes that read messages of the target's faults */
/* Bit i set: some traced thread has tid % FL_SLOTS == i.  512 bytes that
 * stay in cache: a context switch of an untraced task reads one bit per
 * task, not a line of the 512 KiB slot array. */
__u64 tbits[FL_SLOTS / 64];
struct fl_slot slots[FL_SLOTS];

/* Threads whose slot was taken by another thread (tid collision). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_OVF);
	__type(key, __u32);
	__type(value, struct fl_slot);
} ovf SEC(".maps");

/* The last FL_RECENT faults opened (track_msgs): page | tid, to match the
 * messages that carry no thread id (no UFFD_FEATURE_THREAD_ID).  A ring in
 * .bss: two stores per fault where a hash update cost ~0.3 us; searched only
 * for such a message. */
struct fl_recent recent[FL_RECENT];
__u64 recent_seq = 0;

/* Delivered faults waiting for their resolving ioctl (track_resolve): the
 * message's page -> (seq << 32) | tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
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

/* Counters and histograms: per-CPU array lookups (inlined by the verifier)
 * and plain increments.  Only one program at a time updates a CPU's copy:
 * programs run with preemption off, and the only hook that can run from an
 * interrupt on top of another (sched_wakeup) updates no counter. */
static __always_inline void count_n(__u32 idx, __s64 n)
{
	__u32 zero = 0;
	struct fl_counters *c = bpf_map_lookup_elem(&counters, &zero);

	barrier_var(idx);       /* keep the bound check for the verifier */
	if (c && idx < FL_NCOUNTERS)
		c->c[idx] += n;
}

static __always_inline void count(__u32 idx)
{
	count_n(idx, 1);
}

static __always_inline void hist_add_n(__u32 id, __u64 v, __s64 n)
{
	struct fl_hist *h = bpf_map_lookup_elem(&hists, &id);
	__u32 b;

	if (!h)
		return;
	b = pcb_hist_bucket(v);
	if (b < PCB_HIST_BUCKETS)
		h->bucket[b] += n;
}

static __always_inline void hist_add(__u32 id, __u64 v)
{
	hist_add_n(id, v, 1);
}

/* ---- per-thread slots ------------------------------------------------------ */

static __always_inline struct fl_slot *slot_find(__u32 tid)
{
	__u32 idx = tid & FL_SLOT_MASK;
	struct fl_slot *s;

	if (!(tbits[idx / 64] & (1ull << (idx % 64))))
		return NULL;
	s = &slots[idx];
	if (s->tid == tid && tid)
		return s;
	if (!s->collide || !tid)
		return NULL;
	return bpf_map_lookup_elem(&ovf, &tid);
}

static __always_inline struct fl_slot *slot_claim(__u32 tid, __u32 tgid)
{
	__u32 idx = tid & FL_SLOT_MASK;
	struct fl_slot *s = &slots[idx];
	struct fl_slot fresh = {};

	__sync_fetch_and_or(&tbits[idx / 64], 1ull << (idx % 64));
	if (__sync_val_compare_and_swap(&s->tid, 0ull, (__u64)tid) == 0) {
		s->flags = 0;
		s->seq = 0;
		s->mw = 0;
		s->wake_seq = 0;
		s->tstat = 0;
		s->resolve_seq = 0;
		s->tgid = tgid;
		bpf_get_current_comm(s->comm, sizeof(s->comm));
		return s;
	}
	/* Held by another thread: fall back to the hash map (an update that
	 * fails leaves the lookup below to report it). */
	fresh.tid = tid;
	fresh.tgid = tgid;
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	bpf_map_update_elem(&ovf, &tid, &fresh, BPF_NOEXIST);
	s->collide = 1;
	return bpf_map_lookup_elem(&ovf, &tid);
}

static __always_inline void slot_release(struct fl_slot *s, __u32 tid)
{
	if (s == &slots[tid & FL_SLOT_MASK])
		__sync_val_compare_and_swap(&s->tid, (__u64)tid, 0ull);
	else
		bpf_map_delete_elem(&ovf, &tid);
}

static __always_inline struct fl_thread *thread_stats(struct fl_slot *s, __u32 tid)
{
	struct fl_thread *t;
	__u32 idx = s->tstat;

	if (!idx) {
		idx = (__u32)__sync_fetch_and_add(&next_tstat, 1) + 1;
		if (idx > FL_MAX_TSTATS) {
			count(FL_C_TSTATS_FULL);
			return NULL;
		}
		s->tstat = idx;
		idx--;
		t = bpf_map_lookup_elem(&tstats, &idx);
		if (t) {
			__builtin_memcpy(t->comm, s->comm, sizeof(t->comm));
			t->tid = tid;
		}
		return t;
	}
	idx--;
	return bpf_map_lookup_elem(&tstats, &idx);
}

static __always_inline bool in_ranges(__u64 addr)
{
	__u64 b = READ_ONCE(range_bits);

	if (!addr_filter)
		return true;
	for (__u32 i = 0; i < FL_MAX_RANGES; i++) {
		if (!(b >> i))
			break;
		if (((b >> i) & 1) && addr >= READ_ONCE(ranges[i].start) && addr < READ_ONCE(ranges[i].end))
			return true;
	}
	return false;
}

/* A registration [start, end) of the target: claim a free slot (bit),
 * write start, then end (readers skip a slot whose end <= start). */
static __always_inline void range_add(__u64 start, __u64 end)
{
	__u64 b = READ_ONCE(range_bits), bit, old;

	if (end <= start)
		return;
	for (__u32 i = 0; i < FL_MAX_RANGES; i++) {
		if (((b >> i) & 1) && READ_ONCE(ranges[i].start) <= start && end <= READ_ONCE(ranges[i].end))
			return;         /* already covered */
	}
	for (__u32 i = 0; i < FL_MAX_RANGES; i++) {
		bit = 1ull << i;
		if (READ_ONCE(range_bits) & bit)
			continue;
		old = __sync_fetch_and_or(&range_bits, bit);
		if (old & bit)
			continue;
		ranges[i].end = 0;
		barrier();
		ranges[i].start = start;
		ranges[i].page_mask = 0;
		barrier();
		ranges[i].end = end;
		return;
	}
	count(FL_C_RANGES_FULL);
	addr_filter = 0;
}

/* [start, end) is no longer registered (unregister, munmap, the old place
 * of an mremap): drop the ranges inside it, trim those it cuts at one end.
 * One it cuts in the middle stays whole (a wider filter only costs time:
 * faults count by their messages). */
static __always_inline void range_remove(__u64 start, __u64 end)
{
	__u64 b = READ_ONCE(range_bits), rs, re;

	for (__u32 i = 0; i < FL_MAX_RANGES; i++) {
		if (!((b >> i) & 1))
			continue;
		rs = READ_ONCE(ranges[i].start);
		re = READ_ONCE(ranges[i].end);
		if (re <= rs || re <= start || rs >= end)
			continue;
		if (start <= rs && re <= end) {
			ranges[i].end = 0;
			barrier();
			__sync_fetch_and_and(&range_bits, ~(1ull << i));
		} else if (start <= rs) {
			ranges[i].start = end;
		} else if (re <= end) {
			ranges[i].end = start;
		} else {
			continue;
		}
		count(FL_C_UNREGISTER);
	}
}

/* ---- closing a fault -------------------------------------------------------- */

/* A delivered fault's fault -> running into its thread's histogram (also
 * from the read hook, for a fault filed late: atomic). */
static __always_inline void thread_hist_add(struct fl_thread *t, __u64 f2r)
{
	__u32 b = pcb_hist_bucket(f2r);

	__sync_fetch_and_add(&t->sum_ns, f2r);
	if (f2r > t->max_ns)
		t->max_ns = f2r;
	if (b < PCB_HIST_BUCKETS)
		__sync_fetch_and_add(&t->bucket[b], 1);
}

/* Mark the open fault closed; returns true if its message was read.
 * (Only the message hook looks at mw: without it, no atomic operation.) */
static __always_inline bool close_mw(struct fl_slot *s)
{
	__u64 old;

	if (!track_msgs)
		return false;
	old = __sync_fetch_and_or(&s->mw, FL_MW_CLOSED);
	return old & FL_MW_DELIVERED;
}

static __always_inline void close_nonblocking(struct fl_slot *s, __u32 tid)
{
	struct fl_thread *t;
	bool delivered;

	if (s->flags & FL_S_KVM) {
		/* (most KVM faults: shadow-page-table fills of present pages) */
		count(FL_C_KVM_NONBLOCKING);
		s->flags = 0;
		if (track_msgs) {
			s->last_kind = FL_K_NONBLOCK;
			if (close_mw(s)) {
				count(FL_C_KVM_DELIVERED_NOBLOCK);
				t = thread_stats(s, tid);
				if (t)
					__sync_fetch_and_add(&t->delivered_noblock, 1);
			}
		}
		return;
	}
	t = thread_stats(s, tid);

	count(FL_C_NONBLOCKING);
	if (t)
		t->nonblocking++;
	s->last_kind = FL_K_NONBLOCK;
	s->flags = 0;
	delivered = close_mw(s);
	if (track_msgs && delivered) {
		count(FL_C_DELIVERED_NOBLOCK);
		if (t)
			__sync_fetch_and_add(&t->delivered_noblock, 1);
	}
}

/* The fault blocked and the thread is back on a CPU. */
static __always_inline void finish(struct fl_slot *s, __u32 tid, __u64 now)
{
	bool kvm = s->flags & FL_S_KVM, woken = track_wakeup && s->wake_seq == s->seq;
	__u64 f2r = now - s->fault_ns, wakeup_ns = woken ? s->wakeup_ns : 0;
	bool delivered = true;
	struct fl_thread *t = NULL;
	struct fl_event *e;

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
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count(FL_C_EVENTS_DROPPED);
		} else {
			e->fault_ns = s->fault_ns;
			e->block_ns = s->block_ns;
			e->wakeup_ns = woken ? wakeup_ns : 0;
			e->running_ns = now;
			e->addr = s->addr;
			e->tid = tid;
			e->tgid = s->tgid;
			e->cpu = bpf_get_smp_processor_id();
			e->flags = (kvm ? FL_E_KVM : 0) | (woken ? FL_E_WOKEN : 0) |
				   ((s->flags & FL_S_UFFD) ? FL_E_UFFD : 0) |
				   (track_msgs && delivered ? FL_E_DELIVERED : 0);
			/* Batch consumer wake-ups: one per rb_wakeup_bytes of backlog. */
			if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= rb_wakeup_bytes)
				bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
			else
				bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
			count(FL_C_EVENTS);
		}
	}
	s->flags = 0;
}

/* ---- page faults --------------------------------------------------------------- */

#define PCB_PF_PROT 0x1ul       /* x86 error code: the page was present */

/* kvm: 0 a user fault, FL_S_KVM a KVM page-table walk, FL_S_KVM | FL_S_KVMPF
 * kvm:kvm_page_fault. */
static __always_inline void on_fault(__u64 addr, unsigned long error_code, __u32 kvm, bool kern)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct fl_slot *s;

	/* One compare first: every page fault of the machine runs this. */
	if (targ_tgid && tgid != targ_tgid)
		return;
	s = slot_find(tid);
	if (!s && (only_listed || !targ_tgid))
		return;
	if (kvm == FL_S_KVM && s &&
	    (s->flags & (FL_S_OPEN | FL_S_KVMPF | FL_S_BLOCKED)) == (FL_S_OPEN | FL_S_KVMPF)) {
		/* the walk of a fault kvm_page_fault opened (shadow paging on VMX/SVM) */
		count(FL_C_KVM_WALK_DUP);
		return;
	}
	if (!kvm) {
		/* userfaultfd missing/minor faults are not-present faults; a
		 * protection fault (copy-on-write of the zero page, ...) can
		 * only be a userfault in a write-protect range. */
		if ((error_code & PCB_PF_PROT) && !accept_prot) {
			count(FL_C_PROT);
			return;
		}
		if (!in_ranges(addr)) {
			count(FL_C_OUT_OF_RANGE);
			return;
		}
	}
	if (!s) {
		/* Only threads that fault in a traced range get a slot: the
		 * others' context switches stay on the one-bit fast path. */
		s = slot_claim(tid, tgid);
		if (!s) {
			count(FL_C_STATE_FULL);
			return;
		}
	}
	if (s->flags & FL_S_OPEN) {
		if (s->flags & FL_S_BLOCKED) {
			/* Its switch-in was never seen: it blocked, its end is
			 * unknown.  Still a fault the handler counted if its
			 * message was read (a late message re-files it).  (On
			 * the machine this was written on, one thread of the
			 * sandbox's agent is switched away from without a
			 * sched_switch event, perf sees the same: a thread that
			 * blocked while that one took the CPU is switched in
			 * unseen.) */
			count(FL_C_LOST);
			if (s->flags & FL_S_PWAIT)
				count(FL_C_LOST_PWAIT);
			s->last_kind = FL_K_LOST;
			if (close_mw(s) || !track_msgs) {
				struct fl_thread *t = thread_stats(s, tid);

				count(FL_C_LOST_DELIVERED);
				if (t)
					__sync_fetch_and_add(&t->lost, 1);
			}
			if (emit_events) {
				struct fl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

				if (e) {
					e->fault_ns = s->fault_ns;
					e->block_ns = s->block_ns;
					e->wakeup_ns = 0;
					e->running_ns = bpf_ktime_get_ns();
					e->addr = s->addr;
					e->tid = tid;
					e->tgid = tgid;
					e->cpu = bpf_get_smp_processor_id();
					e->flags = FL_E_LOST;
					bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
				}
			}
		} else {
			close_nonblocking(s, tid);
		}
	}
	s->fault_ns = bpf_ktime_get_ns();
	s->fault_j = bpf_jiffies64();
	s->addr = addr;
	if (emit_events || block_times)
		s->block_ns = 0;        /* (read only by these) */
	s->preempt_ns = 0;
	s->off_ns = 0;
	s->seq++;
	if (track_msgs) {
		s->mw = (__u64)s->seq << FL_MW_SHIFT;
		s->kvm = kvm != 0;
	}
	s->flags = FL_S_OPEN | kvm;
	count(kvm ? FL_C_KVM_FAULTS : FL_C_FAULTS);
	if (kern)
		count(FL_C_KERNEL_FAULTS);
	if (track_msgs && !kvm) {
		__u32 i = (__u32)__sync_fetch_and_add(&recent_seq, 1) & (FL_RECENT - 1);

		recent[i].tid = tid;
		recent[i].page = addr & ~0xfffull;
	}
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(fl_fault_btf, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	if (null_progs)
		return 0;
	on_fault(address, error_code, 0, false);
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
	if (null_progs)
		return 0;
	on_fault(ctx->address, ctx->error_code, 0, false);
	return 0;
}

/* Faults raised in kernel mode: a system call (read(), write(), ...)
 * copying to or from registered memory waits in userfaultfd as well. */
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(fl_kfault_btf, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	if (null_progs)
		return 0;
	on_fault(address, error_code, 0, true);
	return 0;
}

SEC("tracepoint/exceptions/page_fault_kernel")
int fl_kfault_tp(struct pcb_tp_x86_exceptions *ctx)
{
	if (null_progs)
		return 0;
	on_fault(ctx->address, ctx->error_code, 0, true);
	return 0;
}

/* raw_tp twins, where tp_btf is refused: the same raw arguments
 * (address, regs, error_code), untyped. */
SEC("raw_tp/page_fault_user")
int fl_fault_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (null_progs)
		return 0;
	on_fault(ctx->args[0], ctx->args[2], 0, false);
	return 0;
}

SEC("raw_tp/page_fault_kernel")
int fl_kfault_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (null_progs)
		return 0;
	on_fault(ctx->args[0], ctx->args[2], 0, true);
	return 0;
}

SEC("tp_btf/kvm_page_fault")
int BPF_PROG(fl_kvm_btf)
{
	/* Both loads at constant offsets; then pick (ctx pointer arithmetic is refused). */
	__u64 a0 = ctx[0], a1 = ctx[1];

	barrier_var(a0);
	barrier_var(a1);
	on_fault(kvm_addr_arg ? a1 : a0, 0, FL_S_KVM | FL_S_KVMPF, false);
	return 0;
}

SEC("tracepoint/kvm/kvm_page_fault")
int fl_kvm_tp(struct trace_event_raw_kvm_page_fault *ctx)
{
	on_fault(BPF_CORE_READ(ctx, fault_address), 0, FL_S_KVM | FL_S_KVMPF, false);
	return 0;
}

/* Shadow paging (also the nested PVM hypervisor, where kvm_page_fault does
 * not fire): KVM starts handling a guest page fault by walking the guest's
 * page tables; addr is the guest virtual address. */
SEC("tp_btf/kvm_mmu_pagetable_walk")
int BPF_PROG(fl_kvm_walk_btf, __u64 addr)
{
	on_fault(addr, 0, FL_S_KVM, false);
	return 0;
}

SEC("tracepoint/kvmmmu/kvm_mmu_pagetable_walk")
int fl_kvm_walk_tp(struct trace_event_raw_kvm_mmu_pagetable_walk *ctx)
{
	on_fault(BPF_CORE_READ(ctx, addr), 0, FL_S_KVM, false);
	return 0;
}

/* The fault's pfn is known (after any userfaultfd wait): a KVM fault still
 * open and not blocked was resolved without sleeping. */
static __always_inline void on_kvm_resolved(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fl_slot *s = slot_find(tid);

	if (s && (s->flags & (FL_S_OPEN | FL_S_KVM | FL_S_BLOCKED)) == (FL_S_OPEN | FL_S_KVM))
		close_nonblocking(s, tid);
}

SEC("tp_btf/kvm_mmu_spte_requested")
int BPF_PROG(fl_kvm_spte_btf)
{
	on_kvm_resolved();
	return 0;
}

SEC("tracepoint/kvmmmu/kvm_mmu_spte_requested")
int fl_kvm_spte_tp(void *ctx)
{
	on_kvm_resolved();
	return 0;
}

/* Optional: only where fentry is allowed.  Marks the open fault as a
 * userfaultfd one, which replaces the block_window_ns heuristic. */
SEC("fentry/handle_userfault")
int BPF_PROG(fl_uffd_fentry)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fl_slot *s = slot_find(tid);

	if (s && (s->flags & FL_S_OPEN)) {
		s->flags |= FL_S_UFFD;
		count(FL_C_UFFD_ENTERED);
	}
	return 0;
}

/* ---- scheduler ------------------------------------------------------------------ */

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

SEC("tp_btf/sched_switch")
int BPF_PROG(fl_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 p = prev->pid, n = next->pid;
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
		switch_in(s, n, next->__state);
	return 0;
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
	struct task_struct *prev = (struct task_struct *)ctx->args[1], *next = (struct task_struct *)ctx->args[2];
	bool preempt = ctx->args[0];
	__u32 prev_state = (__u32)ctx->args[3], p, n;
	struct fl_slot *s;

	if (null_progs)
		return 0;
	p = BPF_CORE_READ(prev, pid);
	n = BPF_CORE_READ(next, pid);
	if ((s = slot_find(p))) {
		if (!preempt && (prev_state & PCB_TASK_DEAD))
			on_exit(s, p);
		else
			switch_out(s, p, preempt, prev_state);
	}
	if ((s = slot_find(n)))
		switch_in(s, n, BPF_CORE_READ(next, __state));
	return 0;
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

/* ---- fault messages read by the handler ------------------------------------------ */

/* struct uffd_msg, UFFD_EVENT_PAGEFAULT layout (32 bytes). */
struct pcb_uffd_msg {
	__u8 event;
	__u8 reserved1;
	__u16 reserved2;
	__u32 reserved3;
	__u64 flags;
	__u64 address;
	__u32 ptid;
	__u32 pad;
};
#define PCB_UFFD_EVENT_PAGEFAULT 0x12

/* The fault at fault_addr raised the message for msg_addr: the same 4 KiB
 * page, or (hugetlb without UFFD_FEATURE_EXACT_ADDRESS) the 2 MiB or 1 GiB
 * page the message names. */
static __always_inline bool same_page(__u64 fault_addr, __u64 msg_addr)
{
	if (!((fault_addr ^ msg_addr) & ~0xfffull))
		return true;
	if (!(msg_addr & 0x1fffffull) && fault_addr - msg_addr < 0x200000ull)
		return true;
	return !(msg_addr & 0x3fffffffull) && fault_addr - msg_addr < 0x40000000ull;
}

/* Bookkeeping of a per-thread entry for a fault filed before its message. */
static __always_inline void late_thread(struct fl_slot *s, __u32 kind, bool kvm)
{
	struct fl_thread *t;
	__u32 idx;

	if (!s->tstat || s->tstat > FL_MAX_TSTATS)
		return;
	idx = s->tstat - 1;
	t = bpf_map_lookup_elem(&tstats, &idx);
	if (!t)
		return;
	if (kind == FL_K_BLOCKED && kvm) {
		__sync_fetch_and_add(&t->blocking, 1);
		__sync_fetch_and_add(&t->kvm, 1);
		thread_hist_add(t, READ_ONCE(s->last_f2r));
	} else if (kind == FL_K_BLOCKED) {
		__sync_fetch_and_add(&t->late, 1);
		thread_hist_add(t, READ_ONCE(s->last_f2r));
	} else if (kind == FL_K_NONBLOCK) {
		__sync_fetch_and_add(&t->delivered_noblock, 1);
	} else if (kind == FL_K_LOST) {
		__sync_fetch_and_add(&t->lost, 1);
	}
}

struct recent_find {
	__u64 page, top;
	__u32 tid;
};

static long recent_find_cb(__u32 k, void *ctx)
{
	struct recent_find *f = ctx;
	__u32 i = (__u32)(f->top - 1 - k) & (FL_RECENT - 1);

	if (READ_ONCE(recent[i].page) != f->page)
		return 0;
	f->tid = (__u32)READ_ONCE(recent[i].tid);
	return 1;
}

/* A fault's message went to user space: mark the fault delivered, or if
 * its thread closed it in the meantime, re-file it as delivered.  Returns
 * whether it matched an open (or just closed) fault of a traced thread. */
static __always_inline bool deliver(__u32 ptid, __u64 address)
{
	struct fl_slot *s;
	__u64 cur, want;
	__u32 seq, kind;

	if (!ptid) {
		/* No UFFD_FEATURE_THREAD_ID: the thread that faulted on that page
		 * last (newest first; bpf_loop keeps the verifier's work flat). */
		struct recent_find f = { .page = address & ~0xfffull, .top = READ_ONCE(recent_seq) };

		bpf_loop(FL_RECENT, recent_find_cb, &f, 0);
		ptid = f.tid;
		if (!ptid) {
			count(FL_C_MSG_NO_TID);
			return false;
		}
	}
	s = slot_find(ptid);
	if (!s) {
		/* another process's fault (any_reader) or a thread never seen */
		count(any_reader ? FL_C_MSG_OTHER : FL_C_MSG_UNMATCHED);
		return false;
	}
	seq = READ_ONCE(s->seq);
	barrier();
	/* A KVM fault knows only the guest's address, the message the host's:
	 * matched by thread and sequence alone. */
	if (!READ_ONCE(s->kvm) && !same_page(READ_ONCE(s->addr), address)) {
		count(FL_C_MSG_UNMATCHED);
		return false;
	}
	want = (__u64)seq << FL_MW_SHIFT;
	for (int i = 0; i < 4; i++) {
		cur = READ_ONCE(s->mw);
		if ((cur & ~(__u64)(FL_MW_DELIVERED | FL_MW_CLOSED)) != want || (cur & FL_MW_DELIVERED)) {
			count(FL_C_MSG_UNMATCHED);
			return false;
		}
		if (__sync_val_compare_and_swap(&s->mw, cur, cur | FL_MW_DELIVERED) != cur)
			continue;
		count(FL_C_MSGS);
		if (!(cur & FL_MW_CLOSED)) {
			if (track_resolve) {
				__u64 page = address & ~0xfffull, v = ((__u64)seq << 32) | ptid;

				if (bpf_map_update_elem(&pending, &page, &v, BPF_ANY))
					count(FL_C_RESOLVE_UNTRACKED);
			}
			return true;
		}
		/* Closed before we saw the message: move it to the delivered side. */
		count(FL_C_MSG_LATE);
		kind = READ_ONCE(s->last_kind);
		if (kind == FL_K_BLOCKED && READ_ONCE(s->kvm)) {
			count_n(FL_C_KVM_UNDELIVERED, -1);
			count(FL_C_KVM_BLOCKING);
			hist_add(FL_H_KVM_FAULT_TO_RUNNING, READ_ONCE(s->last_f2r));
		} else if (kind == FL_K_BLOCKED) {
			__u64 f2r = READ_ONCE(s->last_f2r);

			count_n(FL_C_BLOCKED_UNDELIVERED, -1);
			count(FL_C_BLOCKING);
			hist_add_n(FL_H_UNDELIVERED, f2r, -1);
			hist_add(FL_H_FAULT_TO_RUNNING, f2r);
		} else if (kind == FL_K_NONBLOCK) {
			count(READ_ONCE(s->kvm) ? FL_C_KVM_DELIVERED_NOBLOCK : FL_C_DELIVERED_NOBLOCK);
		} else if (kind == FL_K_LOST) {
			count(FL_C_LOST_DELIVERED);
		}
		late_thread(s, kind, READ_ONCE(s->kvm));
		return true;
	}
	count(FL_C_MSG_UNMATCHED);
	return false;
}

/* Remember (up to 8) processes that read the target's fault messages. */
static __always_inline void note_reader(__u64 tgid)
{
	for (int i = 0; i < 8; i++) {
		__u64 v = READ_ONCE(msg_tgids[i]);

		if (v == tgid)
			return;
		if (!v && __sync_val_compare_and_swap(&msg_tgids[i], 0ull, tgid) == 0)
			return;
	}
}

/* file->f_op of descriptor fd of the current task (0: none). */
static __always_inline __u64 fd_fops(struct task_struct *task, __u64 fd)
{
	/* direct (BTF) loads down to the table, helper reads after it */
	struct fdtable *fdt = task->files->fdt;
	struct file **arr = fdt->fd;
	struct file *f = NULL;

	if (fd >= fdt->max_fds)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]) || !f)
		return 0;
	return (__u64)BPF_CORE_READ(f, f_op);
}

/* Layout of syscalls:sys_exit_<name>. */
struct pcb_tp_sys_exit {
	struct trace_entry ent;
	int nr;
	long ret;
};

struct msg_loop {
	__u64 buf, tgid;
	bool stop;
};

/* Message i of a read() from a userfaultfd. */
static long msg_cb(__u32 i, void *ctx)
{
	struct msg_loop *l = ctx;
	struct pcb_uffd_msg m;

	if (bpf_probe_read_user(&m, sizeof(m), (void *)(l->buf + (__u64)i * sizeof(m))))
		return 1;
	/* Other events (fork, remap, remove, unmap) carry no fault. */
	if (m.event != PCB_UFFD_EVENT_PAGEFAULT)
		return 0;
	if (m.reserved1 || m.reserved2 || m.reserved3)
		return 1;       /* not a userfaultfd */
	if (deliver(m.ptid, m.address)) {
		if (!m.ptid)
			count(FL_C_MSG_BY_ADDR);
		note_reader(l->tgid);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int fl_read_exit(struct pcb_tp_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), buf, fd;
	struct pcb_uffd_msg m;
	struct task_struct *task;
	struct pt_regs *regs;
	long ret;
	int n;

	if (!any_reader && targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	ret = ctx->ret;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	fd = regs->di;           /* read(fd, buf, count) */
	if (any_reader && (id >> 32) == self_tgid && (__s64)fd == READ_ONCE(learn_fd)) {
		uffd_fops = fd_fops(task, fd);      /* the tracer's own userfaultfd */
		return 0;
	}
	if (null_progs)
		return 0;
	if (ret < (long)sizeof(m) || (ret % sizeof(m)))
		return 0;
	if (any_reader && (!uffd_fops || fd_fops(task, fd) != uffd_fops))
		return 0;
	buf = regs->si;
	n = ret / sizeof(m);
	{
		struct msg_loop l = { .buf = buf, .tgid = id >> 32 };

		/* one callback verified once, not FL_MSG_BATCH inlined copies */
		bpf_loop(n < FL_MSG_BATCH ? n : FL_MSG_BATCH, msg_cb, &l, 0);
	}
	return 0;
}

/* ---- registrations and mapping changes of the target (follow_ranges) ------- */

#define PCB_UFFDIO_REGISTER     0xc020aa00u     /* _IOWR(0xAA, 0x00, struct uffdio_register) */
#define PCB_UFFDIO_UNREGISTER   0x8010aa01u     /* _IOR(0xAA, 0x01, struct uffdio_range) */
#define PCB_UFFDIO_REGISTER_MODE_WP 0x2ull
#define PCB_MAX_ERRNO 4095ul

/* Layout of syscalls:sys_enter_<name>. */
struct pcb_tp_sys_enter {
	struct trace_entry ent;
	int nr;
	unsigned long args[6];
};

struct pcb_uffdio_register {
	__u64 start, len, mode, ioctls;
};

/* At entry: faults may reach the range before the ioctl returns. */
SEC("tracepoint/syscalls/sys_enter_ioctl")
int fl_ioctl_enter(struct pcb_tp_sys_enter *ctx)
{
	struct pcb_uffdio_register r;

	if (null_progs)
		return 0;

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid || (__u32)ctx->args[1] != PCB_UFFDIO_REGISTER)
		return 0;
	if (bpf_probe_read_user(&r, sizeof(r), (void *)ctx->args[2]))
		return 0;
	count(FL_C_REGISTER);
	if (r.mode & PCB_UFFDIO_REGISTER_MODE_WP)
		accept_prot = 1;
	range_add(r.start, r.start + r.len);
	return 0;
}

/* Removals once they succeeded (the arguments are still in the saved registers). */
SEC("tracepoint/syscalls/sys_exit_ioctl")
int fl_ioctl_exit(struct pcb_tp_sys_exit *ctx)
{
	struct pt_regs *regs;
	__u64 r[2];

	if (null_progs)
		return 0;

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid || ctx->ret)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if ((__u32)regs->si != PCB_UFFDIO_UNREGISTER || bpf_probe_read_user(r, sizeof(r), (void *)regs->dx))
		return 0;
	range_remove(r[0], r[0] + r[1]);
	return 0;
}

#define PCB_UFFDIO_WAKE         0x8010aa02u     /* struct uffdio_range {start, len} */
#define PCB_UFFDIO_COPY         0xc028aa03u     /* struct uffdio_copy {dst, src, len, ...} */
#define PCB_UFFDIO_ZEROPAGE     0xc020aa04u     /* {range {start, len}, mode, zeropage} */
#define PCB_UFFDIO_MOVE         0xc028aa05u     /* {dst, src, len, ...} */
#define PCB_UFFDIO_CONTINUE     0xc020aa07u     /* {range {start, len}, mode, mapped} */

/* A resolving ioctl is entered (any process, track_resolve): the delivered
 * faults waiting on pages it covers (up to 16 pages from its start; a huge
 * page's fault is named by its first) are being resolved now.  At entry:
 * the ioctl wakes the faulting thread before it returns, and that thread
 * may run and fault again before the exit is traced. */
SEC("tracepoint/syscalls/sys_enter_ioctl")
int fl_resolve_enter(struct pcb_tp_sys_enter *ctx)
{
	__u64 a[3], start, len, now;
	__u32 cmd = (__u32)ctx->args[1];

	if (null_progs)
		return 0;
	if (cmd != PCB_UFFDIO_COPY && cmd != PCB_UFFDIO_ZEROPAGE && cmd != PCB_UFFDIO_WAKE &&
	    cmd != PCB_UFFDIO_CONTINUE && cmd != PCB_UFFDIO_MOVE)
		return 0;
	if (bpf_probe_read_user(a, sizeof(a), (void *)ctx->args[2]))
		return 0;
	start = a[0] & ~0xfffull;
	len = cmd == PCB_UFFDIO_COPY || cmd == PCB_UFFDIO_MOVE ? a[2] : a[1];
	now = bpf_ktime_get_ns();
	for (__u32 i = 0; i < 16; i++) {
		__u64 page = start + (__u64)i * 4096, *v;
		struct fl_slot *s;

		if (i && page >= a[0] + len)
			break;
		v = bpf_map_lookup_elem(&pending, &page);
		if (!v)
			continue;
		s = slot_find((__u32)*v);
		if (s && READ_ONCE(s->seq) == (__u32)(*v >> 32)) {
			s->resolve_ns = now;
			WRITE_ONCE(s->resolve_seq, (__u32)(*v >> 32));
			count(FL_C_RESOLVED);
		}
		bpf_map_delete_elem(&pending, &page);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int fl_munmap_exit(struct pcb_tp_sys_exit *ctx)
{
	struct pt_regs *regs;

	if (null_progs)
		return 0;

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid || ctx->ret)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	range_remove(regs->di, regs->di + regs->si);
	return 0;
}

/* mremap(old, old_len, new_len, ...) = new: a traced range moves (with
 * UFFD_FEATURE_EVENT_REMAP it stays registered; without, the wider filter
 * costs only time). */
SEC("tracepoint/syscalls/sys_exit_mremap")
int fl_mremap_exit(struct pcb_tp_sys_exit *ctx)
{
	unsigned long ret = (unsigned long)ctx->ret;
	struct pt_regs *regs;
	__u64 old, old_len, new_len;

	if (null_progs)
		return 0;

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid || ret >= -PCB_MAX_ERRNO)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	old = regs->di;
	old_len = regs->si;
	new_len = regs->dx;
	if (!addr_filter || !in_ranges(old))
		return 0;
	count(FL_C_REMAP);
	range_add(ret, ret + new_len);
	if (ret != old)
		range_remove(old, old + old_len);
	return 0;
}
