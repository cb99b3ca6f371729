/* Loader for bpf/faultlat.bpf.c and bpf/pager.bpf.c: probing, attach, map
 * reading, JSON and CSV output.  See trace/trace.h. */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "common/hist.h"
#include "common/json.h"
#include "common/util.h"
#include "trace/trace.h"
#include "bpf/faultlat.skel.h"
#include "bpf/pager.skel.h"

#define DEFAULT_BLOCK_WINDOW_NS (10 * PCB_NSEC_PER_MSEC)
#define EVENTS_RB_BYTES (8u << 20)

struct pg_stats {
	struct pcb_hist hist[PG_NHIST];
	uint64_t counter[PG_NCOUNTERS];
};

struct pcb_trace {
	struct pcb_trace_opts o;
	struct faultlat_bpf *fl;
	struct pager_bpf *pg;
	int ncpus;

	/* attach kinds chosen */
	const char *k_fault, *k_switch;
	char k_wakeup[96], k_read[96];
	char k_kvm[96], k_kvm_mmu[128], k_uffd[96], k_usdt[160];
	char k_kfault[96], k_ranges[160], k_resolve[96], method_why[256];
	bool kfault, follow, resolve;   /* kernel-fault, registration, resolving-ioctl hooks attached */
	bool mmu_btf, mmu_tp;           /* kvmmmu walk + spte_requested programs */
	bool kvm_observable;            /* some KVM fault hook attached */
	char exe[PATH_MAX];
	int nranges;
	uint64_t region_page_mask;      /* of o.region_start's mapping (0: unknown) */
	bool msgs, wakeup, btf;         /* optional hooks attached; typed programs (tp_btf or raw_tp) */
	bool raw;                       /* ... raw_tp twins of the core hooks (tp_btf refused) */
	bool kvm_btf, kvm_tp, uffd, paused;
	uint64_t prog_misses;           /* runs the kernel skipped (recursion guard), at stop */

	/* events */
	struct ring_buffer *rb;
	FILE *events_fp;
	pthread_t ev_thread;
	bool ev_running;
	volatile bool ev_stop;
	uint64_t events_written;
	int events_err;

	/* threads listed by the caller */
	pid_t *tids;
	size_t ntids, captids;

	bool stopped;
	struct pcb_trace_stats *final;
	struct pcb_trace_thread *final_threads;
	size_t final_nthreads;
	struct pg_stats *final_pg;
	char pg_reason[160];
};

/* ---- libbpf log ------------------------------------------------------------ */

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

/* ---- probing ------------------------------------------------------------------ */

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
static int probe_raw(const char *name)
{
	return probe_attach(BPF_PROG_TYPE_RAW_TRACEPOINT, name, NULL);
}

/* Index (after ctx) of the fault address in the kvm_page_fault prototype:
 * (vcpu, u64 address, u64 error_code) since 6.x, (address, error_code) before. */
static unsigned kvm_addr_index(void)
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

static bool tracefs_ready(void)
{
	struct stat sb;

	if (stat("/sys/kernel/tracing/events", &sb) == 0 ||
	    stat("/sys/kernel/debug/tracing/events", &sb) == 0)
		return true;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return true;
	return false;
}

/* ---- maps ------------------------------------------------------------------------ */

static int read_percpu_hist(struct bpf_map *map, uint32_t key, int ncpus, struct pcb_hist *out,
			    uint64_t *sum, void *buf)
{
	size_t vsz = bpf_map__value_size(map);
	int err;

	err = bpf_map__lookup_elem(map, &key, sizeof(key), buf, vsz * (size_t)ncpus, 0);
	if (err)
		return err;
	memset(sum, 0, sizeof(uint64_t) * PCB_HIST_BUCKETS);
	for (int c = 0; c < ncpus; c++) {
		const uint64_t *b = (const uint64_t *)((char *)buf + vsz * (size_t)c);
		for (unsigned i = 0; i < PCB_HIST_BUCKETS; i++)
			sum[i] += b[i];
	}
	pcb_hist_init(out);
	pcb_hist_add_buckets(out, sum, PCB_HIST_BUCKETS);
	return 0;
}

static int read_percpu_counters(struct bpf_map *map, int ncpus, uint64_t *out, unsigned n)
{
	size_t vsz = bpf_map__value_size(map);
	uint32_t key = 0;
	void *buf = calloc((size_t)ncpus, vsz);
	int err;

	if (!buf)
		return -ENOMEM;
	err = bpf_map__lookup_elem(map, &key, sizeof(key), buf, vsz * (size_t)ncpus, 0);
	if (!err) {
		memset(out, 0, sizeof(uint64_t) * n);
		for (int c = 0; c < ncpus; c++) {
			const uint64_t *v = (const uint64_t *)((char *)buf + vsz * (size_t)c);
			for (unsigned i = 0; i < n; i++)
				out[i] += v[i];
		}
	}
	free(buf);
	return err;
}

static int read_fl(struct pcb_trace *t, struct pcb_trace_stats *s)
{
	size_t vsz = bpf_map__value_size(t->fl->maps.hists);
	uint64_t *sum = malloc(sizeof(uint64_t) * PCB_HIST_BUCKETS);
	void *buf = calloc((size_t)t->ncpus, vsz);
	int err = -ENOMEM;

	if (!sum || !buf)
		goto out;
	for (uint32_t h = 0; h < FL_NHIST; h++) {
		err = read_percpu_hist(t->fl->maps.hists, h, t->ncpus, &s->hist[h], sum, buf);
		if (err)
			goto out;
	}
	err = read_percpu_counters(t->fl->maps.counters, t->ncpus, s->counter, FL_NCOUNTERS);
	if (err)
		goto out;
	if (!t->msgs) {
		/* Delivered = blocked here; the per-thread histograms and counts
		 * hold the faults of threads that have one (see bpf/faultlat.h). */
		struct fl_thread *v = malloc(sizeof(*v));
		uint64_t used = __atomic_load_n(&t->fl->bss->next_tstat, __ATOMIC_ACQUIRE);

		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		for (uint32_t key = 0; key < used && key < FL_MAX_TSTATS; key++) {
			if (bpf_map__lookup_elem(t->fl->maps.tstats, &key, sizeof(key), v, sizeof(*v), 0) || !v->tid)
				continue;
			pcb_hist_add_buckets(&s->hist[FL_H_FAULT_TO_RUNNING], v->bucket, PCB_HIST_BUCKETS);
			s->counter[FL_C_BLOCKING] += v->blocking;
			s->counter[FL_C_BLOCKED_ALL] += v->blocking;
		}
		free(v);
	}
	s->msgs = t->msgs;
	s->wakeup = t->wakeup;
	s->ranges = (uint64_t)__builtin_popcountll(__atomic_load_n(&t->fl->bss->range_bits, __ATOMIC_ACQUIRE));
	for (int i = 0; i < 8; i++)
		s->readers[i] = (pid_t)__atomic_load_n(&t->fl->bss->msg_tgids[i], __ATOMIC_ACQUIRE);
	s->events_written = __atomic_load_n(&t->events_written, __ATOMIC_RELAXED);
out:
	free(sum);
	free(buf);
	return err;
}

static int read_pg(struct pcb_trace *t, struct pg_stats *s)
{
	size_t vsz = bpf_map__value_size(t->pg->maps.pg_hists);
	uint64_t *sum = malloc(sizeof(uint64_t) * PCB_HIST_BUCKETS);
	void *buf = calloc((size_t)t->ncpus, vsz);
	int err = -ENOMEM;

	if (!sum || !buf)
		goto out;
	for (uint32_t h = 0; h < PG_NHIST; h++) {
		err = read_percpu_hist(t->pg->maps.pg_hists, h, t->ncpus, &s->hist[h], sum, buf);
		if (err)
			goto out;
	}
	err = read_percpu_counters(t->pg->maps.pg_counters, t->ncpus, s->counter, PG_NCOUNTERS);
out:
	free(sum);
	free(buf);
	return err;
}

static int cmp_thread(const void *a, const void *b)
{
	const struct pcb_trace_thread *x = a, *y = b;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

static int read_threads(struct pcb_trace *t, struct pcb_trace_thread **out, size_t *n)
{
	struct bpf_map *map = t->fl->maps.tstats;
	struct fl_thread *v = malloc(sizeof(*v));
	struct pcb_trace_thread *arr = NULL, *na;
	size_t cnt = 0, cap = 0;
	uint64_t used = __atomic_load_n(&t->fl->bss->next_tstat, __ATOMIC_ACQUIRE);
	int err = 0;

	if (!v)
		return -ENOMEM;
	if (used > FL_MAX_TSTATS)
		used = FL_MAX_TSTATS;
	for (uint32_t key = 0; key < used; key++) {
		if (bpf_map__lookup_elem(map, &key, sizeof(key), v, sizeof(*v), 0) || !v->tid)
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				err = -ENOMEM;
				break;
			}
			arr = na;
		}
		arr[cnt].tid = (pid_t)v->tid;
		arr[cnt].blocking = v->blocking;
		arr[cnt].delivered = (t->msgs ? v->blocking - v->undelivered + v->late + v->delivered_noblock
					      : v->blocking) + v->lost;
		arr[cnt].nonblocking = v->nonblocking;
		arr[cnt].kvm = v->kvm;
		memcpy(arr[cnt].comm, v->comm, sizeof(arr[cnt].comm));
		arr[cnt].comm[sizeof(arr[cnt].comm) - 1] = 0;
		pcb_hist_init(&arr[cnt].hist);
		pcb_hist_add_buckets(&arr[cnt].hist, v->bucket, PCB_HIST_BUCKETS);
		cnt++;
	}
	free(v);
	if (err) {
		free(arr);
		return err;
	}
	if (cnt)
		qsort(arr, cnt, sizeof(*arr), cmp_thread);
	*out = arr;
	*n = cnt;
	return 0;
}

/* ---- uffd ranges from /proc/PID/smaps ------------------------------------------- */

/* "VmFlags: rd wr mr mw me ac um " : um = missing, uw = wp, ui = minor.
 * Returns a mask: 1 any userfaultfd mode, 2 write-protect. */
static int vmflags_uffd(const char *line)
{
	int m = 0;

	for (const char *p = line + 8; *p; p++) {
		if (p[0] == 'u' && (p[1] == 'm' || p[1] == 'w' || p[1] == 'i') &&
		    (p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == 0))
			m |= 1 | (p[1] == 'w' ? 2 : 0);
	}
	return m;
}

/* "KernelPageSize:     2048 kB" -> bytes - 1 (0 if the line is not that). */
static uint64_t smaps_page_mask(const char *line)
{
	unsigned long kb;

	if (sscanf(line, "KernelPageSize: %lu kB", &kb) != 1 || kb < 4)
		return 0;
	return (uint64_t)kb * 1024 - 1;
}

/* Page mask of the mapping of pid that holds addr (0: not found, 4 KiB). */
static uint64_t vma_page_mask(pid_t pid, uint64_t addr)
{
	unsigned long s, e;
	char path[64], *line = NULL;
	size_t cap = 0;
	bool in = false;
	uint64_t mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = addr >= s && addr < e;
		else if (in && (mask = smaps_page_mask(line)))
			break;
	}
	free(line);
	fclose(f);
	return mask;
}

int pcb_trace_refresh_ranges(struct pcb_trace *t)
{
	struct fl_range r[FL_MAX_RANGES];
	unsigned long s, e, cur_s = 0, cur_e = 0;
	uint64_t cur_mask = 0, pm;
	char path[64], *line = NULL;
	size_t cap = 0;
	int n = 0, m, wp = 0;
	FILE *f;

	if (!t || !t->fl || !t->o.uffd_ranges)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)t->o.pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			cur_s = s;
			cur_e = e;
			cur_mask = 0;
		} else if ((pm = smaps_page_mask(line))) {
			cur_mask = pm;
		} else if (!strncmp(line, "VmFlags:", 8) && cur_e > cur_s && (m = vmflags_uffd(line))) {
			wp |= m & 2;
			if (n > 0 && r[n - 1].end == cur_s && r[n - 1].page_mask == cur_mask) {
				r[n - 1].end = cur_e;          /* adjacent, same page size: merge */
			} else if (n < FL_MAX_RANGES) {
				r[n].start = cur_s;
				r[n].end = cur_e;
				r[n].page_mask = cur_mask;
				n++;
			} else {
				r[n - 1].end = cur_e;          /* too many: widen the last */
			}
			cur_s = cur_e = 0;
		}
	}
	free(line);
	fclose(f);
	/* Before the programs are attached (afterwards the registration
	 * hooks own the ranges): ranges first, their bits last. */
	for (int i = 0; i < n; i++)
		t->fl->bss->ranges[i] = r[i];
	__atomic_store_n(&t->fl->bss->range_bits, n >= 64 ? ~0ull : (1ull << n) - 1, __ATOMIC_RELEASE);
	/* Write-protect faults are protection faults: only look at those when
	 * some range is registered for them. */
	__atomic_store_n(&t->fl->bss->accept_prot, wp ? 1u : 0u, __ATOMIC_RELEASE);
	t->nranges = n;
	return n;
}

/* ---- events ------------------------------------------------------------------------ */

static int on_event(void *ctx, void *data, size_t len)
{
	struct pcb_trace *t = ctx;
	const struct fl_event *e = data;

	if (len < sizeof(*e))
		return 0;
	if (t->events_fp && !t->events_err) {
		if (fprintf(t->events_fp, "%u,%u,%u,%s,0x%llx,0x%llx,%llu,%llu,%llu,%llu,%lld,%llu,%s\n",
			    e->tid, e->tgid, e->cpu, (e->flags & FL_E_LOST) ? "lost" : (e->flags & FL_E_KVM) ? "kvm" : "user",
			    (unsigned long long)e->addr, (unsigned long long)(e->addr & ~0xfffull),
			    (unsigned long long)e->fault_ns, (unsigned long long)e->block_ns,
			    (unsigned long long)e->wakeup_ns, (unsigned long long)e->running_ns,
			    (e->flags & FL_E_WOKEN) ? (long long)(e->wakeup_ns - e->fault_ns) : -1LL,
			    (unsigned long long)(e->running_ns - e->fault_ns),
			    !t->msgs ? "" : (e->flags & FL_E_DELIVERED) ? "1" : "0") < 0)
			t->events_err = errno ? errno : EIO;
	}
	__atomic_fetch_add(&t->events_written, 1, __ATOMIC_RELAXED);
	return 0;
}

static void *events_main(void *arg)
{
	struct pcb_trace *t = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!t->ev_stop) {
		ring_buffer__poll(t->rb, 50);
		ring_buffer__consume(t->rb);     /* producers do not wake us for every event */
	}
	ring_buffer__consume(t->rb);
	return NULL;
}

/* ---- start / stop ---------------------------------------------------------------- */

static int fail(char *why, size_t whylen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *why, size_t whylen, int code, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int exit_for_bpf_err(int err)
{
	err = err < 0 ? -err : err;
	if (err == EPERM || err == EACCES)
		return PCB_EXIT_NOPERM;
	return PCB_EXIT_UNAVAILABLE;
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
		return fail(why, whylen, exit_for_bpf_err(errno), "opening the BPF object failed: %s",
			    strerror(errno));
	fl->rodata->targ_tgid = (uint32_t)t->o.pid;
	fl->rodata->block_window_ns = t->o.block_window_ns ? t->o.block_window_ns
							    : DEFAULT_BLOCK_WINDOW_NS;
	fl->rodata->emit_events = t->o.events;
	fl->rodata->have_uffd_hook = uffd;
	fl->rodata->kvm_addr_arg = kvm_addr_index();
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
		return fail(why, whylen, exit_for_bpf_err(err), "loading the BPF programs failed: %s%s",
			    strerror(-err), trace_verbose ? "" : " (-v for the verifier log)");
	}
	t->fl = fl;
	return 0;
}

/* Attach the USDT programs; returns how many attached (errno of the last
 * failure in *err). */
static int attach_pager(struct pcb_trace *t, int *err)
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
	attached = attach_pager(t, &err);
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

/* Address filter, then attach: fault and scheduler hooks are required, the
 * rest optional (the message hook's failure makes the caller retry without). */
static int attach_faultlat(struct pcb_trace *t, bool btf, bool kvm_btf, bool kvm_tp, bool uffd,
			   char *why, size_t whylen)
{
	const struct pcb_trace_opts *o = &t->o;
	int err;

	if (o->uffd_ranges) {
		t->fl->bss->addr_filter = 1;
		err = pcb_trace_refresh_ranges(t);
		if (err < 0)
			return fail(why, whylen, PCB_EXIT_UNAVAILABLE, "cannot read /proc/%d/smaps: %s",
				    (int)o->pid, strerror(-err));
	} else if (o->region_len) {
		t->fl->bss->ranges[0].start = o->region_start;
		t->fl->bss->ranges[0].end = o->region_start + o->region_len;
		t->region_page_mask = vma_page_mask(o->pid, o->region_start);
		t->fl->bss->ranges[0].page_mask = t->region_page_mask;
		t->fl->bss->range_bits = 1;
		t->fl->bss->addr_filter = 1;
		t->nranges = 1;
	}
#define CORE(name) (!btf ? attach_prog(t->fl->progs.name##_tp, &t->fl->links.name##_tp) \
		    : t->raw ? attach_prog(t->fl->progs.name##_raw, &t->fl->links.name##_raw) \
		    : attach_prog(t->fl->progs.name##_btf, &t->fl->links.name##_btf))
	err = CORE(fl_fault);
	if (!err)
		err = CORE(fl_switch);
	if (!err && t->wakeup)
		err = CORE(fl_wakeup);
	if (err)
		return fail(why, whylen, exit_for_bpf_err(err), "attaching the %s programs failed: %s",
			    t->k_fault, strerror(-err));
	if (t->msgs && (err = attach_prog(t->fl->progs.fl_read_exit, &t->fl->links.fl_read_exit)))
		return fail(why, whylen, exit_for_bpf_err(err), "attaching syscalls:sys_exit_read failed: %s",
			    strerror(-err));
	if (t->msgs && o->any_reader && (err = learn_uffd_fops(t)))
		return fail(why, whylen, PCB_EXIT_UNAVAILABLE,
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
	if (uffd && attach_prog(t->fl->progs.fl_uffd_fentry, &t->fl->links.fl_uffd_fentry))
		snprintf(t->k_uffd, sizeof(t->k_uffd), "unavailable (attach failed)");
	return 0;
}

/* The KVM hooks as classic tracepoints (when the typed ones did not load). */
static void kvm_to_classic(struct pcb_trace *t, bool *kvm_btf, bool *kvm_tp)
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

/* The program kind of each hook: tp_btf where the kernel accepts it, raw_tp twins, else classic
 * tracepoints; the KVM hooks; fentry on handle_userfault only if it really attaches. */
struct hook_kinds {
	bool btf, kvm_btf, kvm_tp, uffd;
};

static int pick_kinds(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds *k, char *why, size_t whylen)
{
	int err;

	/* Pick program kinds: tp_btf where the kernel accepts it, else classic
	 * tracepoints; fentry on handle_userfault only if it really attaches. */
	err = probe_tracing("page_fault_user", BPF_TRACE_RAW_TP);
	k->btf = !o->classic && !o->raw_tp && !err &&
	      !probe_tracing("sched_switch", BPF_TRACE_RAW_TP) &&
	      !probe_tracing("sched_wakeup", BPF_TRACE_RAW_TP);
	if ((err == -EPERM || err == -EACCES) && !o->raw_tp && !o->classic)
		return fail(why, whylen, PCB_EXIT_NOPERM, "BPF not permitted: %s", strerror(-err));
	/* tp_btf refused: raw_tp twins (the same raw arguments, untyped). */
	if (!k->btf && !o->classic && !probe_raw("page_fault_user") && !probe_raw("sched_switch") &&
	    !probe_raw("sched_wakeup"))
		k->btf = t->raw = true;
	if (!k->btf && !tracefs_ready())
		return fail(why, whylen, PCB_EXIT_UNAVAILABLE,
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
static void plan_optional_hooks(struct pcb_trace *t, const struct pcb_trace_opts *o, bool btf)
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
	} else if (!tracefs_ready() || (access("/sys/kernel/tracing/events/syscalls/sys_exit_read", F_OK) &&
					access("/sys/kernel/debug/tracing/events/syscalls/sys_exit_read", F_OK))) {
		t->msgs = false;
		snprintf(t->k_read, sizeof(t->k_read), "unavailable (no syscalls:sys_exit_read tracepoint)");
	}
}

/* Open and attach the programs, falling back (without the message hook, then raw_tp, then
 * classic tracepoints) while a kind is refused.  0, or the last failure's exit code. */
static int load_programs(struct pcb_trace *t, const struct pcb_trace_opts *o, struct hook_kinds k, char *why, size_t whylen)
{
	bool btf = k.btf, kvm_btf = k.kvm_btf, kvm_tp = k.kvm_tp, uffd = k.uffd;
	int code;

	for (;;) {
		t->btf = btf;
		t->k_fault = t->k_switch = !btf ? "tracepoint" : t->raw ? "raw_tp" : "tp_btf";
		if (t->wakeup)
			snprintf(t->k_wakeup, sizeof(t->k_wakeup), "%s", t->k_fault);
		if (t->msgs)
			snprintf(t->k_read, sizeof(t->k_read), "tracepoint (syscalls:sys_exit_read%s)",
				 o->any_reader ? ", any process" : "");
		if (t->kfault)
			snprintf(t->k_kfault, sizeof(t->k_kfault), "%s", t->k_fault);
		code = open_faultlat(t, btf, kvm_btf, kvm_tp, uffd, why, whylen);
		if (!code)
			code = attach_faultlat(t, btf, kvm_btf, kvm_tp, uffd, why, whylen);
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
		if (btf && !t->raw && !o->classic && !probe_raw("page_fault_user") && !probe_raw("sched_switch")) {
			pcb_log("trace: tp_btf programs did not load (%s); trying raw_tp", why);
			t->raw = true;
			kvm_to_classic(t, &kvm_btf, &kvm_tp);
			t->msgs = o->msgs && strncmp(t->k_read, "unavailable (no", 15);
			continue;
		}
		if (btf && tracefs_ready()) {
			pcb_log("trace: %s programs did not load (%s); trying classic tracepoints", t->k_fault, why);
			btf = false;
			t->raw = false;
			kvm_to_classic(t, &kvm_btf, &kvm_tp);
			t->wakeup = true;
			t->msgs = o->msgs && strncmp(t->k_read, "unavailable (no", 15);
			continue;
		}
		return code;
	}
}

/* USDT probes of the pager (the pager breakdown), when asked for. */
static void start_usdt(struct pcb_trace *t, const struct pcb_trace_opts *o)
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

/* Event stream: the CSV file and the ring-buffer thread, when asked for. */
static int start_events(struct pcb_trace *t, const struct pcb_trace_opts *o, char *why, size_t whylen)
{
	int err;

	if (o->events) {
		if (o->events_path) {
			t->events_fp = fopen(o->events_path, "we");
			if (!t->events_fp) {
				return fail(why, whylen, PCB_EXIT_OSERR, "cannot open %s: %s", o->events_path,
					    strerror(errno));
			}
			setvbuf(t->events_fp, NULL, _IOFBF, 1 << 20);
			fprintf(t->events_fp, "tid,tgid,cpu,kind,addr,page,fault_ns,block_ns,wakeup_ns,"
					      "running_ns,fault_to_wakeup_ns,fault_to_running_ns,delivered\n");
		}
		t->rb = ring_buffer__new(bpf_map__fd(t->fl->maps.events), on_event, t, NULL);
		if (!t->rb) {
			return fail(why, whylen, PCB_EXIT_UNAVAILABLE, "ring buffer: %s", strerror(errno));
		}
		err = pthread_create(&t->ev_thread, NULL, events_main, t);
		if (err) {
			return fail(why, whylen, PCB_EXIT_OSERR, "event thread: %s", strerror(err));
		}
		t->ev_running = true;
	}
	return 0;
}

int pcb_trace_start(const struct pcb_trace_opts *o, struct pcb_trace **out, char *why, size_t whylen)
{
	struct pcb_trace *t;
	struct hook_kinds k = { 0 };
	int code;

	*out = NULL;
	if (!o || o->pid <= 0)
		return fail(why, whylen, PCB_EXIT_USAGE, "tracing needs a process id");
	if (kill(o->pid, 0) && errno == ESRCH)
		return fail(why, whylen, PCB_EXIT_USAGE, "no process %d", (int)o->pid);
	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(why, whylen, PCB_EXIT_OSERR, "out of memory");
	t->o = *o;
	t->o.events_path = NULL;
	trace_verbose = o->verbose;
	libbpf_set_print(libbpf_print);
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		free(t);
		return fail(why, whylen, PCB_EXIT_UNAVAILABLE, "cannot count the possible CPUs");
	}

	if ((code = pick_kinds(t, o, &k, why, whylen)) != 0) {
		free(t);
		return code;
	}
	plan_optional_hooks(t, o, k.btf);
	if ((code = load_programs(t, o, k, why, whylen)) != 0) {
		free(t);
		return code;
	}
	start_usdt(t, o);
	if ((code = start_events(t, o, why, whylen)) != 0)
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
	return read_fl(t, s);
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
	return read_threads(t, out, n);
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
	code = attach_faultlat(t, t->btf, t->kvm_btf, t->kvm_tp, t->uffd, why, whylen);
	if (code)
		return code;
	if (t->pg) {
		int err = 0;

		if (!attach_pager(t, &err))
			return fail(why, whylen, exit_for_bpf_err(err), "re-attaching the USDT probes failed: %s",
				    strerror(-err));
	}
	t->paused = false;
	return 0;
}

/* Runs of our programs the kernel skipped because another BPF program was
 * active on that CPU (bpf_prog_info.recursion_misses): each may be a missed
 * fault, switch or message, so they are reported with the anomalies. */
static uint64_t prog_misses(struct pcb_trace *t)
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
	t->prog_misses = prog_misses(t);
	/* Detach first so the counts no longer move, then drain and read. */
	if (t->fl)
		faultlat_bpf__detach(t->fl);
	if (t->pg)
		pager_bpf__detach(t->pg);
	if (t->ev_running) {
		t->ev_stop = true;
		pthread_join(t->ev_thread, NULL);
		t->ev_running = false;
	}
	if (t->events_fp) {
		if (fclose(t->events_fp) && !t->events_err)
			t->events_err = errno;
		t->events_fp = NULL;
	}
	t->final = calloc(1, sizeof(*t->final));
	if (!t->final)
		return -ENOMEM;
	if (t->fl) {
		err = read_fl(t, t->final);
		if (!err)
			err = read_threads(t, &t->final_threads, &t->final_nthreads);
	}
	if (t->pg) {
		t->final_pg = calloc(1, sizeof(*t->final_pg));
		if (!t->final_pg || read_pg(t, t->final_pg)) {
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
	if (t->ev_running) {
		t->ev_stop = true;
		pthread_join(t->ev_thread, NULL);
	}
	ring_buffer__free(t->rb);
	if (t->events_fp)
		fclose(t->events_fp);
	faultlat_bpf__destroy(t->fl);
	pager_bpf__destroy(t->pg);
	free(t->final);
	free(t->final_threads);
	free(t->final_pg);
	free(t->tids);
	free(t);
}

/* ---- JSON ------------------------------------------------------------------------ */

static const char *const kind_names[PG_NKINDS] = {
	"demand", "background", "zero_demand", "zero_background", "drain", "zero_drain",
};

static void pager_json(struct pcb_trace *t, struct pcb_json *j)
{
	const struct pg_stats *s = t->final_pg;
	struct pg_stats *live = NULL;

	if (!s && t->pg && !t->stopped) {
		live = calloc(1, sizeof(*live));
		if (live && read_pg(t, live) == 0)
			s = live;
	}
	pcb_json_obj_begin(j, "pager");
	if (!s) {
		pcb_json_bool(j, "enabled", false);
		pcb_json_str(j, "reason", t->pg_reason[0] ? t->pg_reason : "unavailable");
		pcb_json_obj_end(j);
		free(live);
		return;
	}
	pcb_json_bool(j, "enabled", true);
	pcb_json_str(j, "binary", t->exe);
	pcb_json_obj_begin(j, "probes");
	pcb_json_u64(j, "fault", s->counter[PG_C_FAULT]);
	pcb_json_u64(j, "request", s->counter[PG_C_REQUEST]);
	pcb_json_u64(j, "received", s->counter[PG_C_RECEIVED]);
	pcb_json_u64(j, "installed", s->counter[PG_C_INSTALLED]);
	pcb_json_u64(j, "decision", s->counter[PG_C_DECISION]);
	pcb_json_u64(j, "guest_stop", s->counter[PG_C_GUEST_STOP]);
	pcb_json_obj_end(j);
	pcb_hist_json(j, "queueing", &s->hist[PG_H_QUEUE], 0);
	pcb_json_obj_begin(j, "round_trip");
	pcb_hist_json(j, "demand", &s->hist[PG_H_RTT + 0], 0);
	pcb_hist_json(j, "background", &s->hist[PG_H_RTT + 1], 0);
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "install");
	for (int k = 0; k < PG_NKINDS; k++)
		pcb_hist_json(j, kind_names[k], &s->hist[PG_H_INSTALL + k], 0);
	pcb_json_obj_end(j);
	pcb_hist_json(j, "fault_to_installed", &s->hist[PG_H_FAULT_TO_INSTALLED], 0);
	pcb_json_obj_begin(j, "installs");
	for (int k = 0; k < PG_NKINDS; k++)
		pcb_json_u64(j, kind_names[k], s->counter[PG_C_INSTALLS + k]);
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "eexist");
	for (int k = 0; k < PG_NKINDS; k++)
		pcb_json_u64(j, kind_names[k], s->counter[PG_C_EEXIST + k]);
	pcb_json_obj_end(j);
	pcb_json_u64(j, "install_errors", s->counter[PG_C_ERRORS]);
	pcb_json_u64(j, "requested_pages_demand", s->counter[PG_C_REQ_PAGES + 0]);
	pcb_json_u64(j, "requested_pages_background", s->counter[PG_C_REQ_PAGES + 1]);
	pcb_json_u64(j, "received_zero", s->counter[PG_C_RECV_ZERO]);
	pcb_json_u64(j, "decision_pages", s->counter[PG_C_DECISION_PAGES]);
	pcb_json_u64(j, "unmatched_installs", s->counter[PG_C_UNMATCHED]);
	pcb_json_obj_end(j);
	free(live);
}

void pcb_trace_json_disabled(struct pcb_json *j, const char *key, const char *why)
{
	pcb_json_obj_begin(j, key);
	pcb_json_bool(j, "enabled", false);
	pcb_json_str(j, "reason", why && *why ? why : "unknown");
	pcb_json_obj_end(j);
}

/* trace.attach: how each hook attached, or why not. */
static void json_attach(const struct pcb_trace *t, struct pcb_json *j)
{
	pcb_json_obj_begin(j, "attach");
	pcb_json_str(j, "page_fault", t->k_fault);
	pcb_json_str(j, "sched_switch", t->k_switch);
	pcb_json_str(j, "sched_wakeup", t->k_wakeup);
	pcb_json_str(j, "read", t->k_read);
	pcb_json_str(j, "kvm_page_fault", t->k_kvm);
	pcb_json_str(j, "kvm_mmu", t->k_kvm_mmu);
	pcb_json_str(j, "handle_userfault", t->k_uffd);
	pcb_json_str(j, "page_fault_kernel", t->k_kfault);
	pcb_json_str(j, "ranges", t->k_ranges);
	pcb_json_str(j, "resolve", t->k_resolve);
	pcb_json_str(j, "usdt", t->pg ? t->k_usdt : t->pg_reason);
	pcb_json_obj_end(j);
}

/* trace.filter: which process, threads, ranges and readers were traced. */
static void json_filter(const struct pcb_trace *t, const struct pcb_trace_stats *s, struct pcb_json *j)
{
	pcb_json_obj_begin(j, "filter");
	pcb_json_i64(j, "pid", t->o.pid);
	pcb_json_arr_begin(j, "tids");
	for (size_t i = 0; i < t->ntids; i++)
		pcb_json_i64(j, NULL, t->tids[i]);
	pcb_json_arr_end(j);
	pcb_json_u64(j, "ranges", s->ranges);
	pcb_json_arr_begin(j, "message_readers");
	for (int i = 0; i < 8 && s->readers[i]; i++)
		pcb_json_i64(j, NULL, s->readers[i]);
	pcb_json_arr_end(j);
	if (!t->o.uffd_ranges && t->o.region_len) {
		pcb_json_u64(j, "region_start", t->o.region_start);
		pcb_json_u64(j, "region_len", t->o.region_len);
		pcb_json_u64(j, "region_page_size", t->region_page_mask ? t->region_page_mask + 1 : 4096);
	}
	pcb_json_u64(j, "block_window_ns", t->o.block_window_ns ? t->o.block_window_ns
								: DEFAULT_BLOCK_WINDOW_NS);
	if (t->o.null_progs)
		pcb_json_bool(j, "null_programs", true);    /* measured nothing, by request */
	pcb_json_obj_end(j);
}

/* The fault counts, message and resolve tracking, and the latency histograms. */
static void json_faults(const struct pcb_trace *t, const struct pcb_trace_stats *s, struct pcb_json *j)
{
	const uint64_t *c = s->counter;
	/* faults: with the message hook, the faults the handler was told about
	 * (what a pager counts); without it, every fault that blocked. */
	pcb_json_str(j, "faults_definition", t->msgs ? "message read by the handler (syscalls:sys_exit_read)"
						     : "blocked in the fault (no message hook)");
	pcb_json_u64(j, "faults", pcb_trace_faults(s));
	/* every fault whose message the handler read: user, kernel-mode and KVM */
	if (t->msgs)
		pcb_json_u64(j, "uffd_faults", c[FL_C_MSGS]);
	pcb_json_u64(j, "faults_blocked", c[FL_C_BLOCKED_ALL]);
	pcb_json_u64(j, "faults_seen", c[FL_C_FAULTS]);
	pcb_json_u64(j, "faults_nonblocking", c[FL_C_NONBLOCKING]);
	pcb_json_u64(j, "faults_out_of_range", c[FL_C_OUT_OF_RANGE]);
	pcb_json_u64(j, "faults_seen_kernel_mode", c[FL_C_KERNEL_FAULTS]);
	pcb_json_obj_begin(j, "registrations");
	pcb_json_u64(j, "registered", c[FL_C_REGISTER]);
	pcb_json_u64(j, "ranges_removed_or_trimmed", c[FL_C_UNREGISTER]);
	pcb_json_u64(j, "remapped", c[FL_C_REMAP]);
	pcb_json_u64(j, "ranges_full", c[FL_C_RANGES_FULL]);
	pcb_json_obj_end(j);
	pcb_json_u64(j, "protection_faults_skipped", c[FL_C_PROT]);
	pcb_json_obj_begin(j, "messages");
	pcb_json_bool(j, "tracked", t->msgs);
	pcb_json_u64(j, "read", c[FL_C_MSGS]);
	pcb_json_u64(j, "unmatched", c[FL_C_MSG_UNMATCHED]);
	pcb_json_u64(j, "without_thread_id", c[FL_C_MSG_NO_TID]);
	pcb_json_u64(j, "matched_by_page", c[FL_C_MSG_BY_ADDR]);
	pcb_json_u64(j, "other_processes", c[FL_C_MSG_OTHER]);
	pcb_json_u64(j, "read_after_close", c[FL_C_MSG_LATE]);
	pcb_json_u64(j, "delivered_without_block", c[FL_C_DELIVERED_NOBLOCK]);
	pcb_json_u64(j, "blocked_resolved_before_read", c[FL_C_BLOCKED_UNDELIVERED]);
	pcb_hist_json(j, "resolved_before_read_fault_to_running", &s->hist[FL_H_UNDELIVERED], t->o.json_bins);
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "resolve");
	pcb_json_bool(j, "tracked", t->resolve);
	pcb_json_u64(j, "resolved", c[FL_C_RESOLVED]);
	pcb_json_u64(j, "untracked", c[FL_C_RESOLVE_UNTRACKED]);
	pcb_hist_json(j, "fault_to_resolve", &s->hist[FL_H_FAULT_TO_RESOLVE], t->o.json_bins);
	pcb_hist_json(j, "resolve_to_running", &s->hist[FL_H_RESOLVE_TO_RUNNING], t->o.json_bins);
	pcb_json_obj_end(j);
	pcb_json_bool(j, "wakeup_tracked", t->wakeup);
	if (t->wakeup)
		pcb_hist_json(j, "fault_to_wakeup", &s->hist[FL_H_FAULT_TO_WAKEUP], t->o.json_bins);
	pcb_hist_json(j, "fault_to_running", &s->hist[FL_H_FAULT_TO_RUNNING], t->o.json_bins);
	if (t->o.events || t->wakeup)
		pcb_hist_json(j, "fault_to_block", &s->hist[FL_H_FAULT_TO_BLOCK], t->o.json_bins);
	if (t->wakeup)
		pcb_hist_json(j, "wakeup_to_running", &s->hist[FL_H_WAKEUP_TO_RUNNING], t->o.json_bins);
}

/* trace.kvm: vCPU threads' faults. */
static void json_kvm(const struct pcb_trace *t, const struct pcb_trace_stats *s, struct pcb_json *j)
{
	const uint64_t *c = s->counter;
	pcb_json_obj_begin(j, "kvm");
	/* KVM vCPU threads' faults (kernel-side, through get_user_pages): seen
	 * at kvm_page_fault or the guest page-table walk; "faults" are those
	 * that slept (the userfaultfd wait), the rest filled a shadow entry. */
	if (t->kvm_observable) {
		pcb_json_bool(j, "observable", true);
	} else {
		char r[256];
		snprintf(r, sizeof(r), "not observable: kvm:kvm_page_fault %s; kvmmmu %s", t->k_kvm, t->k_kvm_mmu);
		pcb_json_bool(j, "observable", false);
		pcb_json_str(j, "reason", r);
	}
	pcb_json_u64(j, "faults_seen", c[FL_C_KVM_FAULTS]);
	pcb_json_u64(j, "faults", c[FL_C_KVM_BLOCKING]);
	pcb_json_u64(j, "resolved_without_sleep", c[FL_C_KVM_NONBLOCKING]);
	if (t->msgs)
		pcb_json_u64(j, "message_read_without_sleep", c[FL_C_KVM_DELIVERED_NOBLOCK]);
	if (t->msgs)
		pcb_json_u64(j, "slept_without_message", c[FL_C_KVM_UNDELIVERED]);
	pcb_json_u64(j, "walks_inside_kvm_page_fault", c[FL_C_KVM_WALK_DUP]);
	pcb_hist_json(j, "fault_to_wakeup", &s->hist[FL_H_KVM_FAULT_TO_WAKEUP], t->o.json_bins);
	pcb_hist_json(j, "fault_to_running", &s->hist[FL_H_KVM_FAULT_TO_RUNNING], t->o.json_bins);
	pcb_json_obj_end(j);
}

/* trace.anomalies, trace.events and trace.threads. */
static void json_anomalies_threads(struct pcb_trace *t, const struct pcb_trace_stats *s, const struct pcb_trace_thread *th,
				   size_t nth, struct pcb_json *j)
{
	const uint64_t *c = s->counter;
	pcb_json_obj_begin(j, "anomalies");
	pcb_json_u64(j, "preempted_in_fault", c[FL_C_PREEMPTED]);
	pcb_json_u64(j, "preempted_entering_wait", c[FL_C_PREEMPT_WAIT]);
	pcb_json_u64(j, "preempted_entering_wait_not_woken", c[FL_C_PREEMPT_WAIT_UNDONE]);
	pcb_json_u64(j, "late_sleep", c[FL_C_LATE_SLEEP]);
	pcb_json_u64(j, "uninterruptible_sleep_in_fault", c[FL_C_SLEEP_OTHER]);
	pcb_json_u64(j, "lost", c[FL_C_LOST]);
	pcb_json_u64(j, "lost_after_preempted_wait", c[FL_C_LOST_PWAIT]);
	pcb_json_u64(j, "lost_counted_as_faults", c[FL_C_LOST_DELIVERED]);
	pcb_json_u64(j, "program_runs_skipped", t->stopped ? t->prog_misses : prog_misses(t));
	pcb_json_u64(j, "exited_in_fault", c[FL_C_EXITED]);
	pcb_json_u64(j, "uffd_entered", c[FL_C_UFFD_ENTERED]);
	pcb_json_u64(j, "state_map_full", c[FL_C_STATE_FULL]);
	pcb_json_u64(j, "thread_map_full", c[FL_C_TSTATS_FULL]);
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "events");
	pcb_json_bool(j, "enabled", t->o.events);
	pcb_json_u64(j, "submitted", c[FL_C_EVENTS]);
	pcb_json_u64(j, "dropped", c[FL_C_EVENTS_DROPPED]);
	pcb_json_u64(j, "consumed", s->events_written);
	pcb_json_obj_end(j);
	pcb_json_arr_begin(j, "threads");
	for (size_t i = 0; i < nth; i++) {
		pcb_json_obj_begin(j, NULL);
		pcb_json_i64(j, "tid", th[i].tid);
		pcb_json_str(j, "comm", th[i].comm);
		pcb_json_u64(j, "faults", th[i].delivered);
		pcb_json_u64(j, "kvm_faults", th[i].kvm);
		pcb_json_u64(j, "faults_blocked", th[i].blocking);
		pcb_json_u64(j, "faults_nonblocking", th[i].nonblocking);
		pcb_hist_json(j, "fault_to_running", &th[i].hist, t->o.json_bins);
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
}

void pcb_trace_json(struct pcb_trace *t, struct pcb_json *j, const char *key)
{
	struct pcb_trace_stats *s = NULL;
	struct pcb_trace_thread *th = NULL;
	size_t nth = 0;

	if (!t) {
		pcb_trace_json_disabled(j, key, "tracing was not started");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || pcb_trace_read(t, s) || pcb_trace_read_threads(t, &th, &nth)) {
		pcb_trace_json_disabled(j, key, "reading the BPF maps failed");
		free(s);
		return;
	}
	pcb_json_obj_begin(j, key);
	pcb_json_bool(j, "enabled", true);
	json_attach(t, j);
	pcb_json_str(j, "method", pcb_trace_method(t, NULL));
	if (!t->msgs)
		pcb_json_str(j, "method_reason", t->k_read);
	json_filter(t, s, j);
	json_faults(t, s, j);
	json_kvm(t, s, j);
	json_anomalies_threads(t, s, th, nth, j);
	pager_json(t, j);
	pcb_json_obj_end(j);
	free(th);
	free(s);
}
