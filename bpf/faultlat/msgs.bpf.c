// SPDX-License-Identifier: GPL-2.0
/* bpf/faultlat, fault messages: the handler's read() of a userfaultfd marks
 * the faults whose message it read "delivered" (what a pager counts), and a
 * resolving ioctl (UFFDIO_COPY, ...) covering a delivered fault's page times
 * fault -> resolve.  See bpf/faultlat.h. */
#include "bpf/faultlat/faultlat.bpf.h"

__s64 learn_fd = -1;            /* the tracer's own userfaultfd, read once to learn its f_op */
__u64 uffd_fops = 0;            /* learned: file->f_op of every userfaultfd */
__u64 msg_tgids[8];             /* processes that read messages of the target's faults */

/* Delivered faults waiting for their resolving ioctl (track_resolve): the
 * message's page -> (seq << 32) | tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} pending SEC(".maps");

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

/* A read() or readv() of ret bytes by the current task (id: its pid_tgid):
 * fault messages from a userfaultfd?  Whole messages only, read by the
 * target, or with any_reader by any process from a file whose f_op is the
 * learned userfaultfd's.  *regs: the system call's arguments (fd in di). */
static __always_inline bool uffd_read(__u64 id, long ret, struct pt_regs **regs)
{
	struct task_struct *task;

	if (!any_reader && targ_tgid && (id >> 32) != targ_tgid)
		return false;
	task = bpf_get_current_task_btf();
	*regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (any_reader && (id >> 32) == self_tgid && (__s64)(*regs)->di == READ_ONCE(learn_fd)) {
		uffd_fops = fd_fops(task, (*regs)->di);     /* the tracer's own userfaultfd */
		return false;
	}
	if (null_progs || ret < (long)sizeof(struct pcb_uffd_msg) || (ret % sizeof(struct pcb_uffd_msg)))
		return false;
	return !any_reader || (uffd_fops && fd_fops(task, (*regs)->di) == uffd_fops);
}

/* The messages in bytes at user address buf (up to FL_MSG_BATCH). */
static __always_inline void parse_msgs(__u64 buf, __u64 bytes, __u64 tgid)
{
	struct msg_loop l = { .buf = buf, .tgid = tgid };
	__u32 n = bytes / sizeof(struct pcb_uffd_msg);

	/* one callback verified once, not FL_MSG_BATCH inlined copies */
	bpf_loop(n < FL_MSG_BATCH ? n : FL_MSG_BATCH, msg_cb, &l, 0);
}

SEC("tracepoint/syscalls/sys_exit_read")
int fl_read_exit(struct pcb_tp_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pt_regs *regs;

	if (uffd_read(id, ctx->ret, &regs))
		parse_msgs(regs->si, ctx->ret, id >> 32);       /* read(fd, buf, count) */
	return 0;
}

#define FL_READV_IOVS 4         /* iovecs of a readv() looked at */

/* readv(fd, iov, iovcnt) from a userfaultfd: the kernel fills the iovecs in
 * order with whole messages, but a message may straddle two iovecs: the
 * messages inside each iovec are parsed, one split between two is not (nor
 * any after the first FL_READV_IOVS iovecs). */
SEC("tracepoint/syscalls/sys_exit_readv")
int fl_readv_exit(struct pcb_tp_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), left = ctx->ret, pos = 0, iov[2];
	struct pt_regs *regs;

	if (!uffd_read(id, ctx->ret, &regs))
		return 0;
	for (__u32 i = 0; i < FL_READV_IOVS && i < regs->dx && left; i++) {
		__u64 take;

		if (bpf_probe_read_user(iov, sizeof(iov), (void *)(regs->si + i * sizeof(iov))))
			break;
		take = iov[1] < left ? iov[1] : left;
		if (!(pos % sizeof(struct pcb_uffd_msg)))
			parse_msgs(iov[0], take, id >> 32);
		pos += take;
		left -= take;
	}
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
