/* Opening, loading and attaching the programs: bpf/faultlat (the fault
 * path) with its fallbacks (without the message hook, then raw_tp, then
 * classic tracepoints), bpf/pager (the pager's USDT probes); the libbpf log.
 * See trace/internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "common/util.h"
#include "trace/internal.h"

static int trace_verbose;
static bool usdt_probing;       /* attach_pager: the reason is reported in one line */

/* libbpf-tools' rule: warnings always, information with -v, debug with -vv. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && trace_verbose < 2)
		return 0;
	if ((level == LIBBPF_INFO || usdt_probing) && trace_verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void trace_log_init(int verbose)
{
	trace_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

/* Attach one program; stores the link in the skeleton so destroy cleans it. */
static int attach_prog(struct bpf_program *p, struct bpf_link **slot)
{
	struct bpf_link *l = bpf_program__attach(p);

	if (!l)
		return -errno;
	*slot = l;
	return 0;
}

static void setup_faultlat_autoload(struct pcb_trace *t, struct faultlat_bpf *fl, bool btf, bool kvm_btf,
				    bool kvm_tp, bool uffd)
{
	bool raw = btf && t->raw;

	btf = btf && !raw;
	bpf_program__set_autoload(fl->progs.fl_fault_btf, btf);
	bpf_program__set_autoload(fl->progs.fl_switch_btf, btf);
	bpf_program__set_autoload(fl->progs.fl_wakeup_btf, btf && t->wakeup);
	bpf_program__set_autoload(fl->progs.fl_fault_raw, raw);
	bpf_program__set_autoload(fl->progs.fl_switch_raw, raw);
	bpf_program__set_autoload(fl->progs.fl_wakeup_raw, raw && t->wakeup);
	bpf_program__set_autoload(fl->progs.fl_kfault_raw, raw && t->kfault);
	bpf_program__set_autoload(fl->progs.fl_fault_tp, !btf && !raw);
	bpf_program__set_autoload(fl->progs.fl_switch_tp, !btf && !raw);
	bpf_program__set_autoload(fl->progs.fl_wakeup_tp, !btf && !raw && t->wakeup);
	bpf_program__set_autoload(fl->progs.fl_read_exit, t->msgs);
	bpf_program__set_autoload(fl->progs.fl_readv_exit, t->msgs);
	bpf_program__set_autoload(fl->progs.fl_resolve_enter, t->msgs && t->o.resolve);
	bpf_program__set_autoload(fl->progs.fl_kfault_btf, btf && t->kfault);
	bpf_program__set_autoload(fl->progs.fl_kfault_tp, !btf && !raw && t->kfault);
	bpf_program__set_autoload(fl->progs.fl_ioctl_enter, t->follow);
	bpf_program__set_autoload(fl->progs.fl_ioctl_exit, t->follow);
	bpf_program__set_autoload(fl->progs.fl_munmap_exit, t->follow);
	bpf_program__set_autoload(fl->progs.fl_mremap_exit, t->follow);
	bpf_program__set_autoload(fl->progs.fl_kvm_btf, kvm_btf);
	bpf_program__set_autoload(fl->progs.fl_kvm_tp, kvm_tp);
	bpf_program__set_autoload(fl->progs.fl_kvm_walk_btf, t->mmu_btf);
	bpf_program__set_autoload(fl->progs.fl_kvm_spte_btf, t->mmu_btf);
	bpf_program__set_autoload(fl->progs.fl_kvm_walk_tp, t->mmu_tp);
	bpf_program__set_autoload(fl->progs.fl_kvm_spte_tp, t->mmu_tp);
	bpf_program__set_autoload(fl->progs.fl_uffd_fentry, uffd);
}

static int open_faultlat(struct pcb_trace *t, bool btf, bool kvm_btf, bool kvm_tp, bool uffd,
			 char *why, size_t whylen)
{
	struct faultlat_bpf *fl;
	int err;

	fl = faultlat_bpf__open();
	if (!fl)
		return trace_fail(why, whylen, trace_exit_for_bpf_err(errno), "opening the BPF object failed: %s",
			    strerror(errno));
	fl->rodata->targ_tgid = (uint32_t)t->o.pid;
	fl->rodata->block_window_ns = t->o.block_window_ns ? t->o.block_window_ns
							    : DEFAULT_BLOCK_WINDOW_NS;
	fl->rodata->emit_events = t->o.events;
	fl->rodata->have_uffd_hook = uffd;
	fl->rodata->kvm_addr_arg = trace_kvm_addr_index();
	fl->rodata->track_wakeup = t->wakeup;
	fl->rodata->track_msgs = t->msgs;
	fl->rodata->btf_switch = btf;
	fl->rodata->null_progs = t->o.null_progs;
	fl->rodata->any_reader = t->msgs && t->o.any_reader;
	fl->rodata->track_resolve = t->msgs && t->o.resolve;
	fl->rodata->self_tgid = (uint32_t)getpid();
	fl->rodata->block_times = t->o.events || t->wakeup;
	if (t->o.events) {
		bpf_map__set_max_entries(fl->maps.events, EVENTS_RB_BYTES);
		fl->rodata->rb_wakeup_bytes = EVENTS_RB_BYTES / 8;
	}
	setup_faultlat_autoload(t, fl, btf, kvm_btf, kvm_tp, uffd);
	err = faultlat_bpf__load(fl);
	if (err) {
		faultlat_bpf__destroy(fl);
		return trace_fail(why, whylen, trace_exit_for_bpf_err(err), "loading the BPF programs failed: %s%s",
			    strerror(-err), trace_verbose ? "" : " (-v for the verifier log)");
	}
	t->fl = fl;
	return 0;
}

/* Attach the USDT programs; returns how many attached (errno of the last
 * failure in *err). */
int trace_attach_pager(struct pcb_trace *t, int *err)
{
	static const char *const names[] = { "fault", "request", "received", "installed",
					     "decision", "guest_stop" };
	struct bpf_program *progs[6];
	struct bpf_link **links[6];
	int attached = 0;

	progs[0] = t->pg->progs.pg_fault;        links[0] = &t->pg->links.pg_fault;
	progs[1] = t->pg->progs.pg_request;      links[1] = &t->pg->links.pg_request;
	progs[2] = t->pg->progs.pg_received;     links[2] = &t->pg->links.pg_received;
	progs[3] = t->pg->progs.pg_installed;    links[3] = &t->pg->links.pg_installed;
	progs[4] = t->pg->progs.pg_decision;     links[4] = &t->pg->links.pg_decision;
	progs[5] = t->pg->progs.pg_guest_stop;   links[5] = &t->pg->links.pg_guest_stop;
	usdt_probing = true;    /* a binary without pcbench's probes is no news per probe */
	for (int i = 0; i < 6; i++) {
		*links[i] = bpf_program__attach_usdt(progs[i], t->o.pid, t->exe, "pcbench", names[i], NULL);
		if (*links[i])
			attached++;
		else
			*err = -errno;
	}
	usdt_probing = false;
	return attached;
}

static int start_pager(struct pcb_trace *t)
{
	int attached, err = 0;

	t->pg = pager_bpf__open_and_load();
	if (!t->pg) {
		snprintf(t->pg_reason, sizeof(t->pg_reason), "loading the USDT programs failed: %s",
			 strerror(errno));
		return -1;
	}
	attached = trace_attach_pager(t, &err);
	if (!attached) {
		snprintf(t->pg_reason, sizeof(t->pg_reason), "no pcbench:* USDT probes attachable in %s: %s",
			 t->exe, strerror(-err));
		pager_bpf__destroy(t->pg);
		t->pg = NULL;
		return -1;
	}
	snprintf(t->k_usdt, sizeof(t->k_usdt), "usdt (%d of 6 pcbench probes)", attached);
	return 0;
}

/* The read hook recognises a userfaultfd by its file's f_op: read our own
 * (not initialised: EINVAL) once so that the hook learns it. */
static int learn_uffd_fops(struct pcb_trace *t)
{
	char buf[32];
	int fd, err = 0;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
			close(fd);
			fd = u;
		}
	}
	if (fd < 0)
		return -errno;
	__atomic_store_n(&t->fl->data->learn_fd, fd, __ATOMIC_RELEASE);
	if (read(fd, buf, sizeof(buf)) >= 0 || !__atomic_load_n(&t->fl->bss->uffd_fops, __ATOMIC_ACQUIRE))
		err = -ENOENT;
	__atomic_store_n(&t->fl->data->learn_fd, -1, __ATOMIC_RELEASE);
	close(fd);
	return err;
}

/* The address filter: the target's userfaultfd ranges, or the fixed region
 * (none: every address).  0 or a PCB_EXIT_* code with the reason in why. */
static int set_filter(struct pcb_trace *t, char *why, size_t whylen)
{
	const struct pcb_trace_opts *o = &t->o;
	int err;

	if (o->uffd_ranges) {
		t->fl->bss->addr_filter = 1;
		err = pcb_trace_refresh_ranges(t);
		if (err < 0)
			return trace_fail(why, whylen, PCB_EXIT_UNAVAILABLE, "cannot read /proc/%d/smaps: %s",
				    (int)o->pid, strerror(-err));
	} else if (o->region_len) {
		t->fl->bss->ranges[0].start = o->region_start;
		t->fl->bss->ranges[0].end = o->region_start + o->region_len;
		t->region_page_mask = trace_vma_page_mask(o->pid, o->region_start);
		t->fl->bss->ranges[0].page_mask = t->region_page_mask;
		t->fl->bss->range_bits = 1;
		t->fl->bss->addr_filter = 1;
		t->nranges = 1;
	}
	return 0;
}

/* The KVM hooks (optional: a failure is recorded in the attach kinds). */
static void attach_kvm(struct pcb_trace *t, bool kvm_btf, bool kvm_tp)
{
	int err;

	t->kvm_observable = false;
	if (kvm_btf || kvm_tp) {
		err = kvm_btf ? attach_prog(t->fl->progs.fl_kvm_btf, &t->fl->links.fl_kvm_btf)
			      : attach_prog(t->fl->progs.fl_kvm_tp, &t->fl->links.fl_kvm_tp);
		if (err)
			snprintf(t->k_kvm, sizeof(t->k_kvm), "unavailable (attach: %s)", strerror(-err));
		else
			t->kvm_observable = true;
	}
	if (t->mmu_btf || t->mmu_tp) {
		err = t->mmu_btf ? attach_prog(t->fl->progs.fl_kvm_walk_btf, &t->fl->links.fl_kvm_walk_btf)
				 : attach_prog(t->fl->progs.fl_kvm_walk_tp, &t->fl->links.fl_kvm_walk_tp);
		if (!err)
			err = t->mmu_btf ? attach_prog(t->fl->progs.fl_kvm_spte_btf, &t->fl->links.fl_kvm_spte_btf)
					 : attach_prog(t->fl->progs.fl_kvm_spte_tp, &t->fl->links.fl_kvm_spte_tp);
		if (err) {
			/* without the closing hook a walk would stay open: neither */
			bpf_link__destroy(t->fl->links.fl_kvm_walk_btf);
			bpf_link__destroy(t->fl->links.fl_kvm_walk_tp);
			t->fl->links.fl_kvm_walk_btf = t->fl->links.fl_kvm_walk_tp = NULL;
			snprintf(t->k_kvm_mmu, sizeof(t->k_kvm_mmu), "unavailable (attach: %s)", strerror(-err));
		} else {
			t->kvm_observable = true;
		}
	}
}

/* Address filter, then attach: fault and scheduler hooks are required, the
 * rest optional (the message hook's failure makes the caller retry without). */
int trace_attach_faultlat(struct pcb_trace *t, bool btf, bool kvm_btf, bool kvm_tp, bool uffd,
			   char *why, size_t whylen)
{
	const struct pcb_trace_opts *o = &t->o;
	int err;

	if ((err = set_filter(t, why, whylen)) != 0)
		return err;
#define CORE(name) (!btf ? attach_prog(t->fl->progs.name##_tp, &t->fl->links.name##_tp) \
		    : t->raw ? attach_prog(t->fl->progs.name##_raw, &t->fl->links.name##_raw) \
		    : attach_prog(t->fl->progs.name##_btf, &t->fl->links.name##_btf))
	err = CORE(fl_fault);
	if (!err)
		err = CORE(fl_switch);
	if (!err && t->wakeup)
		err = CORE(fl_wakeup);
	if (err)
		return trace_fail(why, whylen, trace_exit_for_bpf_err(err), "attaching the %s programs failed: %s",
			    t->k_fault, strerror(-err));
	if (t->msgs && ((err = attach_prog(t->fl->progs.fl_read_exit, &t->fl->links.fl_read_exit)) ||
			(err = attach_prog(t->fl->progs.fl_readv_exit, &t->fl->links.fl_readv_exit))))
		return trace_fail(why, whylen, trace_exit_for_bpf_err(err),
				  "attaching syscalls:sys_exit_read/readv failed: %s", strerror(-err));
	if (t->msgs && o->any_reader && (err = learn_uffd_fops(t)))
		return trace_fail(why, whylen, PCB_EXIT_UNAVAILABLE,
			    "cannot recognise userfaultfd reads (own userfaultfd: %s)", strerror(-err));
	snprintf(t->k_resolve, sizeof(t->k_resolve), "%s", !o->resolve ? "off (not requested)"
		 : !t->msgs ? "off (needs the message hook)" : "tracepoint (syscalls:sys_enter_ioctl, any process)");
	t->resolve = t->msgs && o->resolve;
	if (t->resolve && (err = attach_prog(t->fl->progs.fl_resolve_enter, &t->fl->links.fl_resolve_enter))) {
		pcb_warn("trace: syscalls:sys_enter_ioctl (resolving ioctls): %s", strerror(-err));
		snprintf(t->k_resolve, sizeof(t->k_resolve), "unavailable (attach: %s)", strerror(-err));
		t->resolve = false;
	}
	/* Optional: without them, faults inside system calls are not seen /
	 * the ranges are rescanned (the caller says so). */
	if (t->kfault && (err = CORE(fl_kfault))) {
		pcb_warn("trace: exceptions:page_fault_kernel: %s: faults inside system calls are not seen",
			 strerror(-err));
		snprintf(t->k_kfault, sizeof(t->k_kfault), "unavailable (attach: %s)", strerror(-err));
		t->kfault = false;
	}
	if (t->follow && ((err = attach_prog(t->fl->progs.fl_ioctl_enter, &t->fl->links.fl_ioctl_enter)) ||
			  (err = attach_prog(t->fl->progs.fl_ioctl_exit, &t->fl->links.fl_ioctl_exit)) ||
			  (err = attach_prog(t->fl->progs.fl_munmap_exit, &t->fl->links.fl_munmap_exit)) ||
			  (err = attach_prog(t->fl->progs.fl_mremap_exit, &t->fl->links.fl_mremap_exit)))) {
		pcb_warn("trace: syscalls:*ioctl/munmap/mremap: %s: registrations are found by rescanning "
			 "/proc/%d/smaps", strerror(-err), (int)o->pid);
		bpf_link__destroy(t->fl->links.fl_ioctl_enter);
		bpf_link__destroy(t->fl->links.fl_ioctl_exit);
		bpf_link__destroy(t->fl->links.fl_munmap_exit);
		bpf_link__destroy(t->fl->links.fl_mremap_exit);
		t->fl->links.fl_ioctl_enter = t->fl->links.fl_ioctl_exit = NULL;
		t->fl->links.fl_munmap_exit = t->fl->links.fl_mremap_exit = NULL;
		snprintf(t->k_ranges, sizeof(t->k_ranges), "rescans of /proc/PID/smaps (tracepoints: %s)",
			 strerror(-err));
		t->follow = false;
	}
#undef CORE
	attach_kvm(t, kvm_btf, kvm_tp);
	if (uffd && attach_prog(t->fl->progs.fl_uffd_fentry, &t->fl->links.fl_uffd_fentry))
		snprintf(t->k_uffd, sizeof(t->k_uffd), "unavailable (attach failed)");
	return 0;
}

/* Open and attach the programs, falling back (without the message hook, then raw_tp, then
 * classic tracepoints) while a kind is refused.  0, or the last failure's exit code. */
int trace_load_programs(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds k, char *why, size_t whylen)
{
	bool btf = k.btf, kvm_btf = k.kvm_btf, kvm_tp = k.kvm_tp, uffd = k.uffd;
	int code;

	for (;;) {
		t->btf = btf;
		t->k_fault = t->k_switch = !btf ? "tracepoint" : t->raw ? "raw_tp" : "tp_btf";
		if (t->wakeup)
			snprintf(t->k_wakeup, sizeof(t->k_wakeup), "%s", t->k_fault);
		if (t->msgs)
			snprintf(t->k_read, sizeof(t->k_read), "tracepoint (syscalls:sys_exit_read, sys_exit_readv%s)",
				 o->any_reader ? ", any process" : "");
		if (t->kfault)
			snprintf(t->k_kfault, sizeof(t->k_kfault), "%s", t->k_fault);
		code = open_faultlat(t, btf, kvm_btf, kvm_tp, uffd, why, whylen);
		if (!code)
			code = trace_attach_faultlat(t, btf, kvm_btf, kvm_tp, uffd, why, whylen);
		if (!code) {
			t->kvm_btf = kvm_btf;
			t->kvm_tp = kvm_tp;
			t->uffd = uffd;
			return 0;
		}
		faultlat_bpf__destroy(t->fl);
		t->fl = NULL;
		if (t->msgs) {
			/* The message hook is optional: without it every blocking
			 * fault counts, delivered or not. */
			pcb_warn("trace: fault-message hook unavailable (%s); counting by the scheduler "
				 "heuristic instead (a fault counts when it blocks)", why);
			snprintf(t->k_read, sizeof(t->k_read), "unavailable (%s)", why);
			t->msgs = false;
			continue;
		}
		if (btf && !t->raw && !o->classic && !trace_probe_raw("page_fault_user") && !trace_probe_raw("sched_switch")) {
			pcb_log("trace: tp_btf programs did not load (%s); trying raw_tp", why);
			t->raw = true;
			trace_kvm_to_classic(t, &kvm_btf, &kvm_tp);
			t->msgs = o->msgs && strncmp(t->k_read, "unavailable (no", 15);
			continue;
		}
		if (btf && trace_tracefs_ready()) {
			pcb_log("trace: %s programs did not load (%s); trying classic tracepoints", t->k_fault, why);
			btf = false;
			t->raw = false;
			trace_kvm_to_classic(t, &kvm_btf, &kvm_tp);
			t->wakeup = true;
			t->msgs = o->msgs && strncmp(t->k_read, "unavailable (no", 15);
			continue;
		}
		return code;
	}
}

/* USDT probes of the pager (the pager breakdown), when asked for. */
void trace_start_usdt(struct pcb_trace *t, const struct pcb_trace_opts *o)
{
	if (o->usdt) {
		ssize_t n;
		char link[64];

		snprintf(link, sizeof(link), "/proc/%d/exe", (int)o->pid);
		if (o->usdt_binary)
			snprintf(t->exe, sizeof(t->exe), "%s", o->usdt_binary);
		else if ((n = readlink(link, t->exe, sizeof(t->exe) - 1)) > 0)
			t->exe[n] = 0;
		else
			snprintf(t->exe, sizeof(t->exe), "%s", link);
		if (start_pager(t))
			pcb_log("trace: pager breakdown off: %s", t->pg_reason);
	} else {
		snprintf(t->pg_reason, sizeof(t->pg_reason), "not requested");
	}
	if (!t->pg && !t->k_usdt[0])
		snprintf(t->k_usdt, sizeof(t->k_usdt), "off");
}
