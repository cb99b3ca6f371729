// SPDX-License-Identifier: GPL-2.0
/* bpf/faultlat, registrations and mapping changes of the target
 * (follow_ranges): UFFDIO_REGISTER / UNREGISTER, munmap and mremap update
 * the traced ranges as they happen.  See bpf/faultlat.h. */
#include "bpf/faultlat/faultlat.bpf.h"

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

#define PCB_UFFDIO_REGISTER     0xc020aa00u     /* _IOWR(0xAA, 0x00, struct uffdio_register) */
#define PCB_UFFDIO_UNREGISTER   0x8010aa01u     /* _IOR(0xAA, 0x01, struct uffdio_range) */
#define PCB_UFFDIO_REGISTER_MODE_WP 0x2ull
#define PCB_MAX_ERRNO 4095ul

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
