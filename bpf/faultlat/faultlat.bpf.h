/* What the parts of bpf/faultlat/ share: the state (defined once, in
 * state.bpf.c; declared here), the counters and histograms, the per-thread
 * slots and tables, the address filter, and closing a fault that did not
 * block.  BPF side only; bpf/faultlat.h is what user space shares.
 *
 * The program is one object linked from its parts (bpftool gen object,
 * libbpf's static linker: an extern here resolves to the definition in
 * state.bpf.c) and loaded through one skeleton, build/bpf/faultlat.skel.h:
 *   state.bpf.c   knobs (.rodata), filters and slots (.bss), maps
 *   fault.bpf.c   fault entry: user, kernel-mode and KVM faults; fentry
 *   sched.bpf.c   the scheduler: block, wake-up, back on a CPU (closes a fault)
 *   msgs.bpf.c    fault messages read by the handler; resolving ioctls
 *   ranges.bpf.c  following UFFDIO_(UN)REGISTER, munmap and mremap
 * See bpf/faultlat.h for the state machine. */
#ifndef PCB_BPF_FAULTLAT_BPF_H
#define PCB_BPF_FAULTLAT_BPF_H
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpf/faultlat.h"
#include "bpf/percpu.bpf.h"

#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

/* Knobs, set by user space between open and load (state.bpf.c). */
extern const volatile __u32 targ_tgid;
extern const volatile __u64 block_window_ns;
extern const volatile bool emit_events;
extern const volatile bool have_uffd_hook;
extern const volatile bool track_wakeup;
extern const volatile bool track_msgs;
extern const volatile bool btf_switch;
extern const volatile bool block_times;
extern const volatile __u32 kvm_addr_arg;
extern const volatile __u64 rb_wakeup_bytes;
extern const volatile bool null_progs;
extern const volatile bool any_reader;
extern const volatile bool track_resolve;
extern const volatile __u32 self_tgid;

/* Filters and per-thread state, mmapped by user space (state.bpf.c). */
extern __u32 only_listed;
extern __u32 addr_filter;
extern __u32 accept_prot;
extern __u64 next_tstat;
extern __u64 range_bits;
extern struct fl_range ranges[FL_MAX_RANGES];
extern __u64 tbits[FL_SLOTS / 64];
extern struct fl_slot slots[FL_SLOTS];
extern struct fl_recent recent[FL_RECENT];
extern __u64 recent_seq;

/* The maps' types (an extern map must match its definition). */
struct fl_ovf_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FL_MAX_OVF);
	__type(key, __u32);
	__type(value, struct fl_slot);
};
struct fl_tstats_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FL_MAX_TSTATS);
	__type(key, __u32);
	__type(value, struct fl_thread);
};
struct fl_hists_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_NHIST);
	__type(key, __u32);
	__type(value, struct fl_hist);
};
struct fl_counters_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fl_counters);
};
struct fl_events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);      /* resized by user space when events are on */
};
extern struct fl_ovf_map ovf SEC(".maps");
extern struct fl_tstats_map tstats SEC(".maps");
extern struct fl_hists_map hists SEC(".maps");
extern struct fl_counters_map counters SEC(".maps");
extern struct fl_events_map events SEC(".maps");

/* Counters and histograms: per-CPU array lookups (inlined by the verifier)
 * and plain increments.  Only one program at a time updates a CPU's copy:
 * programs run with preemption off, and the only hook that can run from an
 * interrupt on top of another (sched_wakeup) updates no counter. */
static __always_inline void count_n(__u32 idx, __s64 n)
{
	pcb_percpu_count(&counters, idx, FL_NCOUNTERS, n);
}

static __always_inline void count(__u32 idx)
{
	count_n(idx, 1);
}

static __always_inline void hist_add_n(__u32 id, __u64 v, __s64 n)
{
	pcb_percpu_hist(&hists, id, v, n);
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

/* The event of the fault in s, closed at running_ns (emit_events); false if
 * the ring buffer is full.  Consumer wake-ups are batched: one per
 * rb_wakeup_bytes of backlog; a lost fault's event (FL_E_LOST) wakes none. */
static __always_inline bool emit_event(struct fl_slot *s, __u32 tid, __u32 tgid, __u64 running_ns,
				       __u64 wakeup_ns, __u32 flags)
{
	struct fl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return false;
	e->fault_ns = s->fault_ns;
	e->block_ns = s->block_ns;
	e->wakeup_ns = wakeup_ns;
	e->running_ns = running_ns;
	e->addr = s->addr;
	e->tid = tid;
	e->tgid = tgid;
	e->cpu = bpf_get_smp_processor_id();
	e->flags = flags;
	if (!(flags & FL_E_LOST) && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= rb_wakeup_bytes)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return true;
}

/* Layouts of syscalls:sys_enter_<name> and sys_exit_<name>. */
struct pcb_tp_sys_enter {
	struct trace_entry ent;
	int nr;
	unsigned long args[6];
};

struct pcb_tp_sys_exit {
	struct trace_entry ent;
	int nr;
	long ret;
};
#endif
