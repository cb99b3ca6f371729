// SPDX-License-Identifier: GPL-2.0
/* bpf/faultlat, fault entry: a traced thread's not-present fault in a traced
 * range opens its slot (user faults, faults raised in kernel mode inside a
 * system call, KVM vCPU faults); fentry on handle_userfault marks it a
 * userfaultfd one where fentry is allowed.  See bpf/faultlat.h. */
#include "bpf/faultlat/faultlat.bpf.h"

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

#define PCB_PF_PROT 0x1ul       /* x86 error code: the page was present */

/* The fault open in s blocked and its switch-in was never seen: its end is
 * unknown.  Still a fault the handler counted if its message was read (a
 * late message re-files it).  (On the machine this was written on, one
 * thread of the sandbox's agent is switched away from without a
 * sched_switch event, perf sees the same: a thread that blocked while that
 * one took the CPU is switched in unseen.) */
static __always_inline void close_lost(struct fl_slot *s, __u32 tid, __u32 tgid)
{
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
	if (emit_events)
		emit_event(s, tid, tgid, bpf_ktime_get_ns(), 0, FL_E_LOST);
}

/* Open a fault in s (kvm, kern: as on_fault's). */
static __always_inline void open_fault(struct fl_slot *s, __u32 tid, __u64 addr, __u32 kvm, bool kern)
{
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

/* kvm: 0 a user fault, FL_S_KVM a KVM page-table walk, FL_S_KVM | FL_S_KVMPF
 * kvm:kvm_page_fault.  kern: raised in kernel mode (inside a system call). */
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
	if ((s->flags & (FL_S_OPEN | FL_S_BLOCKED)) == (FL_S_OPEN | FL_S_BLOCKED))
		close_lost(s, tid, tgid);
	else if (s->flags & FL_S_OPEN)
		close_nonblocking(s, tid);
	open_fault(s, tid, addr, kvm, kern);
}

/* The user and kernel-mode fault programs (null_progs: return at once). */
static __always_inline int page_fault(__u64 addr, unsigned long error_code, bool kern)
{
	if (!null_progs)
		on_fault(addr, error_code, 0, kern);
	return 0;
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(fl_fault_btf, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	return page_fault(address, error_code, false);
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
	return page_fault(ctx->address, ctx->error_code, false);
}

/* Faults raised in kernel mode: a system call (read(), write(), ...)
 * copying to or from registered memory waits in userfaultfd as well. */
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(fl_kfault_btf, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	return page_fault(address, error_code, true);
}

SEC("tracepoint/exceptions/page_fault_kernel")
int fl_kfault_tp(struct pcb_tp_x86_exceptions *ctx)
{
	return page_fault(ctx->address, ctx->error_code, true);
}

/* raw_tp twins, where tp_btf is refused: the same raw arguments
 * (address, regs, error_code), untyped. */
SEC("raw_tp/page_fault_user")
int fl_fault_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return page_fault(ctx->args[0], ctx->args[2], false);
}

SEC("raw_tp/page_fault_kernel")
int fl_kfault_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return page_fault(ctx->args[0], ctx->args[2], true);
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
