/* Which program kinds this kernel accepts for each hook: tp_btf, the raw_tp
 * twins, classic tracepoints; the KVM hooks, fentry on handle_userfault; and
 * the plan for the optional hooks.  Nothing is loaded here but "return 0"
 * probes.  See trace/internal.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "trace/internal.h"

/* Load "return 0" as a program of type ptype and attach it (tp_name for a
 * raw tracepoint, NULL for a BTF-typed one): 0 if the kernel accepts it
 * there, else -errno. */
static int probe_attach(enum bpf_prog_type ptype, const char *tp_name, const struct bpf_prog_load_opts *opts)
{
	struct bpf_insn insns[2];
	int fd, lfd, err = 0;

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;    /* r0 = 0 */
	insns[0].dst_reg = BPF_REG_0;
	insns[1].code = BPF_JMP | BPF_EXIT;
	fd = bpf_prog_load(ptype, NULL, "GPL", insns, 2, opts);
	if (fd < 0)
		return -errno;
	lfd = bpf_raw_tracepoint_open(tp_name, fd);
	if (lfd < 0)
		err = -errno;
	else
		close(lfd);
	close(fd);
	return err;
}

/* 0 if this kernel accepts a BPF_PROG_TYPE_TRACING program of attach type
 * type at name (tp_btf: BPF_TRACE_RAW_TP, fentry: BPF_TRACE_FENTRY). */
static int probe_tracing(const char *name, enum bpf_attach_type type)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = type);
	int id = libbpf_find_vmlinux_btf_id(name, type);

	if (id < 0)
		return id;
	opts.attach_btf_id = id;
	return probe_attach(BPF_PROG_TYPE_TRACING, NULL, &opts);
}

/* 0 if a raw_tp program attaches to tracepoint name, else -errno. */
int trace_probe_raw(const char *name)
{
	return probe_attach(BPF_PROG_TYPE_RAW_TRACEPOINT, name, NULL);
}

/* Index (after ctx) of the fault address in the kvm_page_fault prototype:
 * (vcpu, u64 address, u64 error_code) since 6.x, (address, error_code) before. */
unsigned trace_kvm_addr_index(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	unsigned idx = 1;
	int id;

	if (!btf)
		return idx;
	id = btf__find_by_name_kind(btf, "btf_trace_kvm_page_fault", BTF_KIND_TYPEDEF);
	if (id > 0) {
		t = btf__type_by_id(btf, id);           /* typedef -> ptr -> func_proto */
		t = t ? btf__type_by_id(btf, t->type) : NULL;
		t = t ? btf__type_by_id(btf, t->type) : NULL;
		if (t && btf_is_func_proto(t))
			idx = btf_vlen(t) >= 4 ? 1 : 0;
	}
	btf__free(btf);
	return idx;
}

static bool kvmmmu_tracepoints(void)
{
	static const char *const d[] = { "/sys/kernel/tracing/events/kvmmmu", "/sys/kernel/debug/tracing/events/kvmmmu" };
	char p[128];

	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/kvm_mmu_pagetable_walk", d[i]);
		if (access(p, F_OK))
			continue;
		snprintf(p, sizeof(p), "%s/kvm_mmu_spte_requested", d[i]);
		if (!access(p, F_OK))
			return true;
	}
	return false;
}

bool trace_tracefs_ready(void)
{
	struct stat sb;

	if (stat("/sys/kernel/tracing/events", &sb) == 0 ||
	    stat("/sys/kernel/debug/tracing/events", &sb) == 0)
		return true;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return true;
	return false;
}

/* The KVM hooks as classic tracepoints (when the typed ones did not load). */
void trace_kvm_to_classic(struct pcb_trace *t, bool *kvm_btf, bool *kvm_tp)
{
	if (*kvm_btf) {
		*kvm_tp = true;
		snprintf(t->k_kvm, sizeof(t->k_kvm), "tracepoint");
	}
	*kvm_btf = false;
	if (t->mmu_btf && kvmmmu_tracepoints()) {
		t->mmu_tp = true;
		snprintf(t->k_kvm_mmu, sizeof(t->k_kvm_mmu),
			 "tracepoint (kvmmmu:kvm_mmu_pagetable_walk, kvm_mmu_spte_requested)");
	}
	t->mmu_btf = false;
}

int trace_pick_kinds(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds *k, char *why, size_t whylen)
{
	int err;

	/* Pick program kinds: tp_btf where the kernel accepts it, else classic
	 * tracepoints; fentry on handle_userfault only if it really attaches. */
	err = probe_tracing("page_fault_user", BPF_TRACE_RAW_TP);
	k->btf = !o->classic && !o->raw_tp && !err &&
	      !probe_tracing("sched_switch", BPF_TRACE_RAW_TP) &&
	      !probe_tracing("sched_wakeup", BPF_TRACE_RAW_TP);
	if ((err == -EPERM || err == -EACCES) && !o->raw_tp && !o->classic)
		return trace_fail(why, whylen, PCB_EXIT_NOPERM, "BPF not permitted: %s", strerror(-err));
	/* tp_btf refused: raw_tp twins (the same raw arguments, untyped). */
	if (!k->btf && !o->classic && !trace_probe_raw("page_fault_user") && !trace_probe_raw("sched_switch") &&
	    !trace_probe_raw("sched_wakeup"))
		k->btf = t->raw = true;
	if (!k->btf && !trace_tracefs_ready())
		return trace_fail(why, whylen, PCB_EXIT_UNAVAILABLE,
			    "tp_btf unavailable and tracefs cannot be mounted at /sys/kernel/tracing");
	err = probe_tracing("kvm_page_fault", BPF_TRACE_RAW_TP);
	if (!err && k->btf && !t->raw) {
		k->kvm_btf = true;
		snprintf(t->k_kvm, sizeof(t->k_kvm), "tp_btf");
	} else if (access("/sys/kernel/tracing/events/kvm/kvm_page_fault", F_OK) == 0 ||
		   access("/sys/kernel/debug/tracing/events/kvm/kvm_page_fault", F_OK) == 0) {
		k->kvm_tp = true;
		snprintf(t->k_kvm, sizeof(t->k_kvm), "tracepoint");
	} else {
		snprintf(t->k_kvm, sizeof(t->k_kvm), "unavailable (no kvm tracepoints)");
	}
	/* Where kvm_page_fault does not fire (shadow paging: the nested PVM
	 * hypervisor here), KVM's walk of the guest page tables opens a vCPU's
	 * fault and kvm_mmu_spte_requested closes it; both or neither. */
	if (!probe_tracing("kvm_mmu_pagetable_walk", BPF_TRACE_RAW_TP) &&
	    !probe_tracing("kvm_mmu_spte_requested", BPF_TRACE_RAW_TP) && k->btf && !t->raw) {
		t->mmu_btf = true;
		snprintf(t->k_kvm_mmu, sizeof(t->k_kvm_mmu), "tp_btf (kvmmmu:kvm_mmu_pagetable_walk, kvm_mmu_spte_requested)");
	} else if (kvmmmu_tracepoints()) {
		t->mmu_tp = true;
		snprintf(t->k_kvm_mmu, sizeof(t->k_kvm_mmu), "tracepoint (kvmmmu:kvm_mmu_pagetable_walk, kvm_mmu_spte_requested)");
	} else {
		snprintf(t->k_kvm_mmu, sizeof(t->k_kvm_mmu), "unavailable (no kvmmmu tracepoints)");
	}
	err = probe_tracing("handle_userfault", BPF_TRACE_FENTRY);
	k->uffd = !err;
	if (k->uffd)
		snprintf(t->k_uffd, sizeof(t->k_uffd), "fentry");
	else
		snprintf(t->k_uffd, sizeof(t->k_uffd), "unavailable (fentry: %s)", strerror(-err));
	return 0;
}

/* What the optional hooks (wake-up, message, kernel-mode faults, range tracking) will be. */
void trace_plan_hooks(struct pcb_trace *t, const struct pcb_trace_opts *o, bool btf)
{
	/* Optional hooks.  Classic tracepoints report a preempted task without
	 * its state, so there the wake-up hook is what recognises a fault that
	 * was preempted on its way into the wait. */
	t->wakeup = o->wakeup || !btf;
	t->msgs = o->msgs;
	t->kfault = o->kernel_faults;
	t->follow = o->uffd_ranges && o->follow_ranges;
	snprintf(t->k_kfault, sizeof(t->k_kfault), "%s", o->kernel_faults ? "" : "off (not requested)");
	snprintf(t->k_ranges, sizeof(t->k_ranges), "%s",
		 !o->uffd_ranges ? (o->region_len ? "fixed region" : "any address")
				 : t->follow ? "tracepoints (syscalls:sys_{enter,exit}_ioctl, sys_exit_munmap, "
					       "sys_exit_mremap)" : "rescans of /proc/PID/smaps (not requested)");
	if (!o->wakeup && btf)
		snprintf(t->k_wakeup, sizeof(t->k_wakeup), "off (not requested)");
	if (!o->msgs) {
		snprintf(t->k_read, sizeof(t->k_read), "off (not requested)");
	} else if (!trace_tracefs_ready() || (access("/sys/kernel/tracing/events/syscalls/sys_exit_read", F_OK) &&
					access("/sys/kernel/debug/tracing/events/syscalls/sys_exit_read", F_OK))) {
		t->msgs = false;
		snprintf(t->k_read, sizeof(t->k_read), "unavailable (no syscalls:sys_exit_read tracepoint)");
	}
}
