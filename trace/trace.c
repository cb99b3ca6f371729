/* The tracer's life: start (probe, load, attach), the threads to trace,
 * pause/resume, stop (detach, read the final maps), free; the small
 * accessors of trace/trace.h.  The jobs live in the other files of trace/
 * (see trace/internal.h). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/util.h"
#include "trace/internal.h"

int trace_fail(char *why, size_t whylen, int code, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int trace_exit_for_bpf_err(int err)
{
	err = err < 0 ? -err : err;
	if (err == EPERM || err == EACCES)
		return PCB_EXIT_NOPERM;
	return PCB_EXIT_UNAVAILABLE;
}

int pcb_trace_start(const struct pcb_trace_opts *o, struct pcb_trace **out, char *why, size_t whylen)
{
	struct pcb_trace *t;
	struct hook_kinds k = { 0 };
	int code;

	*out = NULL;
	if (!o || o->pid <= 0)
		return trace_fail(why, whylen, PCB_EXIT_USAGE, "tracing needs a process id");
	if (kill(o->pid, 0) && errno == ESRCH)
		return trace_fail(why, whylen, PCB_EXIT_USAGE, "no process %d", (int)o->pid);
	t = calloc(1, sizeof(*t));
	if (!t)
		return trace_fail(why, whylen, PCB_EXIT_OSERR, "out of memory");
	t->o = *o;
	t->o.events_path = NULL;
	trace_log_init(o->verbose);
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		free(t);
		return trace_fail(why, whylen, PCB_EXIT_UNAVAILABLE, "cannot count the possible CPUs");
	}

	if ((code = trace_pick_kinds(t, o, &k, why, whylen)) != 0) {
		free(t);
		return code;
	}
	trace_plan_hooks(t, o, k.btf);
	if ((code = trace_load_programs(t, o, k, why, whylen)) != 0) {
		free(t);
		return code;
	}
	trace_start_usdt(t, o);
	if ((code = trace_start_events(t, o, why, whylen)) != 0)
		goto fail;
	/* libbpf parsed the kernel's BTF (~5 MiB) on the heap to relocate the
	 * programs and has freed it; give those pages back so that the pager's
	 * memory figure (results.pager.memory) is not the tracer's scratch */
	malloc_trim(0);
	*out = t;
	return 0;
fail:
	pcb_trace_free(t);
	return code;
}

int pcb_trace_add_thread(struct pcb_trace *t, pid_t tid)
{
	uint32_t key = (uint32_t)tid;
	struct fl_slot *s;
	pid_t *n;

	if (!t || !t->fl || t->stopped || tid <= 0)
		return -EINVAL;
	/* Claim the thread's slot as the BPF side would (tid last, so a program
	 * never sees a half-initialised slot); a slot held by another thread
	 * sends this one to the overflow map. */
	s = &t->fl->bss->slots[key & FL_SLOT_MASK];
	__atomic_fetch_or(&t->fl->bss->tbits[(key & FL_SLOT_MASK) / 64], 1ull << ((key & FL_SLOT_MASK) % 64),
			  __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) != key) {
		uint64_t expect = 0;

		s->flags = 0;
		s->tgid = (uint32_t)t->o.pid;
		if (!__atomic_compare_exchange_n(&s->tid, &expect, (uint64_t)key, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			struct fl_slot fresh = { .tid = key, .tgid = (uint32_t)t->o.pid };

			if (bpf_map__update_elem(t->fl->maps.ovf, &key, sizeof(key), &fresh, sizeof(fresh),
						 BPF_NOEXIST) && errno != EEXIST)
				return -errno;
			__atomic_store_n(&s->collide, 1, __ATOMIC_RELEASE);
		}
	}
	__atomic_store_n(&t->fl->bss->only_listed, 1, __ATOMIC_RELEASE);
	if (t->ntids == t->captids) {
		size_t cap = t->captids ? 2 * t->captids : 16;
		n = realloc(t->tids, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->tids = n;
		t->captids = cap;
	}
	t->tids[t->ntids++] = tid;
	return 0;
}

uint64_t pcb_trace_faults(const struct pcb_trace_stats *s)
{
	/* + faults that blocked and whose switch-in was missed ("lost"): the
	 * handler counted them; they have no latency. */
	return s->msgs ? s->counter[FL_C_BLOCKING] + s->counter[FL_C_DELIVERED_NOBLOCK] +
			 s->counter[FL_C_LOST_DELIVERED]
		       : s->counter[FL_C_BLOCKING] + s->counter[FL_C_LOST_DELIVERED];
}

int pcb_trace_read(struct pcb_trace *t, struct pcb_trace_stats *s)
{
	if (!t)
		return -EINVAL;
	if (t->final) {
		memcpy(s, t->final, sizeof(*s));
		return 0;
	}
	if (!t->fl)
		return -EINVAL;
	return trace_read_fl(t, s);
}

int pcb_trace_read_threads(struct pcb_trace *t, struct pcb_trace_thread **out, size_t *n)
{
	if (!t)
		return -EINVAL;
	if (t->stopped) {
		*n = t->final_nthreads;
		*out = NULL;
		if (!*n)
			return 0;
		*out = malloc(*n * sizeof(**out));
		if (!*out)
			return -ENOMEM;
		memcpy(*out, t->final_threads, *n * sizeof(**out));
		return 0;
	}
	return trace_read_threads(t, out, n);
}

bool pcb_trace_follows_ranges(struct pcb_trace *t)
{
	return t && t->follow;
}

const char *pcb_trace_method(struct pcb_trace *t, const char **why)
{
	if (why)
		*why = t && !t->msgs ? t->k_read : NULL;
	return t && t->msgs ? "uffd_messages" : "scheduler_heuristic";
}

const char *pcb_trace_attach_kind(struct pcb_trace *t, const char *point)
{
	if (!t)
		return NULL;
	if (!strcmp(point, "page_fault_kernel"))
		return t->k_kfault;
	if (!strcmp(point, "ranges"))
		return t->k_ranges;
	if (!strcmp(point, "page_fault"))
		return t->k_fault;
	if (!strcmp(point, "sched_switch"))
		return t->k_switch;
	if (!strcmp(point, "sched_wakeup"))
		return t->k_wakeup;
	if (!strcmp(point, "read"))
		return t->k_read;
	if (!strcmp(point, "kvm_page_fault"))
		return t->k_kvm;
	if (!strcmp(point, "kvm_mmu"))
		return t->k_kvm_mmu;
	if (!strcmp(point, "handle_userfault"))
		return t->k_uffd;
	if (!strcmp(point, "resolve"))
		return t->k_resolve;
	if (!strcmp(point, "usdt"))
		return t->pg ? t->k_usdt : t->pg_reason;
	return NULL;
}

int pcb_trace_pause(struct pcb_trace *t)
{
	if (!t || !t->fl || t->stopped)
		return -EINVAL;
	if (!t->paused) {
		faultlat_bpf__detach(t->fl);
		if (t->pg)
			pager_bpf__detach(t->pg);
	}
	t->paused = true;
	return 0;
}

int pcb_trace_resume(struct pcb_trace *t, char *why, size_t whylen)
{
	int code;

	if (!t || !t->fl || t->stopped)
		return -EINVAL;
	if (!t->paused)
		return 0;
	/* Faults opened before the pause never saw their end: forget them. */
	for (unsigned i = 0; i < FL_SLOTS; i++)
		t->fl->bss->slots[i].flags = 0;
	code = trace_attach_faultlat(t, t->btf, t->kvm_btf, t->kvm_tp, t->uffd, why, whylen);
	if (code)
		return code;
	if (t->pg) {
		int err = 0;

		if (!trace_attach_pager(t, &err))
			return trace_fail(why, whylen, trace_exit_for_bpf_err(err), "re-attaching the USDT probes failed: %s",
				    strerror(-err));
	}
	t->paused = false;
	return 0;
}

/* Runs of our programs the kernel skipped because another BPF program was
 * active on that CPU (bpf_prog_info.recursion_misses): each may be a missed
 * fault, switch or message, so they are reported with the anomalies. */
uint64_t trace_prog_misses(struct pcb_trace *t)
{
	struct bpf_program *p;
	uint64_t n = 0;

	if (!t->fl)
		return 0;
	bpf_object__for_each_program(p, t->fl->obj) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(p);

		memset(&info, 0, sizeof(info));
		if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			n += info.recursion_misses;
	}
	return n;
}

int pcb_trace_stop(struct pcb_trace *t)
{
	int err = 0;

	if (!t || t->stopped)
		return t ? 0 : -EINVAL;
	t->prog_misses = trace_prog_misses(t);
	/* Detach first so the counts no longer move, then drain and read. */
	if (t->fl)
		faultlat_bpf__detach(t->fl);
	if (t->pg)
		pager_bpf__detach(t->pg);
	trace_stop_events(t);
	t->final = calloc(1, sizeof(*t->final));
	if (!t->final)
		return -ENOMEM;
	if (t->fl) {
		err = trace_read_fl(t, t->final);
		if (!err)
			err = trace_read_threads(t, &t->final_threads, &t->final_nthreads);
	}
	if (t->pg) {
		t->final_pg = calloc(1, sizeof(*t->final_pg));
		if (!t->final_pg || trace_read_pg(t, t->final_pg)) {
			free(t->final_pg);
			t->final_pg = NULL;
			snprintf(t->pg_reason, sizeof(t->pg_reason), "reading the USDT maps failed");
		}
	}
	t->stopped = true;
	if (t->events_err)
		pcb_warn("trace: writing events failed: %s", strerror(t->events_err));
	return err;
}

void pcb_trace_free(struct pcb_trace *t)
{
	if (!t)
		return;
	trace_stop_events(t);
	ring_buffer__free(t->rb);
	faultlat_bpf__destroy(t->fl);
	pager_bpf__destroy(t->pg);
	free(t->final);
	free(t->final_threads);
	free(t->final_pg);
	free(t->tids);
	free(t);
}
