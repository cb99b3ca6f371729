/* pctrace: fault-latency tracing of any running userfaultfd process.
 *
 *   pctrace -p PID [--interval DUR] [--duration DUR] [--json FILE] [--json-lines FILE] ...
 *
 * Attaches bpf/faultlat/ filtered to PID's threads (in-kernel, by tgid,
 * so threads created later are traced too).  A fault counts when the
 * userfaultfd message it raised was read by its handler, whichever process
 * that runs in (method "uffd_messages"); the faulting thread's fault entry
 * (user- and kernel-mode page-fault tracepoints, KVM tracepoints for vCPUs)
 * and its return to a CPU give the latency.  Registrations are followed as
 * they happen (UFFDIO_REGISTER/UNREGISTER, munmap, mremap).  Where the
 * message hook is unavailable it falls back to the scheduler heuristic (a
 * fault counts when it blocks) and says so.  Prints per-interval and
 * per-thread histograms, and on SIGINT/SIGTERM, at --duration or when PID
 * exits a summary and the JSON.  See docs/pctrace.8, docs/metrics.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/hist.h"
#include "common/json.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include "trace/trace.h"

#define PCTRACE_SCHEMA_VERSION 1

static volatile sig_atomic_t stop_sig, pause_req, resume_req;
static FILE *txt;       /* text reports: stdout, or stderr when the JSON goes to stdout */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		pause_req = 1;
	else if (sig == SIGUSR2)
		resume_req = 1;
	else
		stop_sig = sig;
}

struct pctrace {
	struct pcb_trace_opts o;
	uint64_t interval_ns, duration_ns;
	const char *json_path, *jsonl_path;
	bool quiet, exited;
	struct pcb_trace *t;
	int pidfd;
	char comm[32];
	uint64_t t_start, t_last;
	struct pcb_trace_stats *cur, *prev;          /* cumulative, now and at the last report */
	struct pcb_trace_thread *th, *pth;           /* per thread, now and at the last report */
	size_t nth, npth;
	struct pcb_hist *h, *h2;                     /* scratch */
	uint64_t *tmp;
	FILE *jsonl;                                 /* --json-lines */
	struct pcb_json *jl;                         /* the record being written */
	unsigned long intervals;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("pctrace: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 10 * PCB_NSEC_PER_USEC)
		snprintf(buf, len, "%.2fus", (double)ns / 1e3);
	else if (ns < PCB_NSEC_PER_MSEC)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < PCB_NSEC_PER_SEC)
		snprintf(buf, len, "%.2fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
	return buf;
}

/* ---- what is counted ------------------------------------------------------------ */

static bool anchored(const struct pcb_trace_stats *s)
{
	return s->msgs;
}

/* Faults of the target that completed: those whose message its handler
 * read (user, kernel-mode and KVM alike; at the end, all the messages
 * matched), or without the message hook those that blocked. */
static uint64_t faults_of(const struct pcb_trace_stats *s)
{
	uint64_t n = pcb_trace_faults(s) + s->counter[FL_C_KVM_BLOCKING];

	return anchored(s) ? n + s->counter[FL_C_KVM_DELIVERED_NOBLOCK] : n;
}

/* fault -> running of every counted fault: user and KVM histograms together. */
static void all_hist(struct pcb_hist *out, const struct pcb_trace_stats *s)
{
	pcb_hist_init(out);
	pcb_hist_merge(out, &s->hist[FL_H_FAULT_TO_RUNNING]);
	pcb_hist_merge(out, &s->hist[FL_H_KVM_FAULT_TO_RUNNING]);
}

/* out = cur - prev, bucket by bucket (prev may be NULL). */
static void hist_delta(struct pcb_hist *out, const struct pcb_hist *cur, const struct pcb_hist *prev,
		       uint64_t *tmp)
{
	for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++)
		tmp[b] = cur->bucket[b] - (prev ? prev->bucket[b] : 0);
	pcb_hist_init(out);
	pcb_hist_add_buckets(out, tmp, PCB_HIST_BUCKETS);
}

/* The thread's name now (/proc), else the one it had at its first fault. */
static void thread_name(pid_t pid, const struct pcb_trace_thread *th, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "%s", th->comm);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)th->tid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

/* The same thread in the previous snapshot (both sorted by tid). */
static const struct pcb_trace_thread *prev_thread(const struct pctrace *p, size_t *k, pid_t tid)
{
	while (*k < p->npth && p->pth[*k].tid < tid)
		(*k)++;
	return *k < p->npth && p->pth[*k].tid == tid ? &p->pth[*k] : NULL;
}

/* ---- text output ------------------------------------------------------------------ */

static void print_line(const char *label, const char *name, uint64_t faults, uint64_t kvm,
		       const struct pcb_hist *h)
{
	char a[16], b[16], c[16], d[16], k[32] = "";

	if (kvm)
		snprintf(k, sizeof(k), " (kvm %llu)", (unsigned long long)kvm);
	fprintf(txt, "%-14s %-16s faults %-8llu%-12s p50 %-9s p90 %-9s p99 %-9s max %s\n", label, name,
	       (unsigned long long)faults, k, fmt_ns(a, sizeof(a), pcb_hist_percentile(h, 50)),
	       fmt_ns(b, sizeof(b), pcb_hist_percentile(h, 90)), fmt_ns(c, sizeof(c), pcb_hist_percentile(h, 99)),
	       fmt_ns(d, sizeof(d), h->count ? h->max : 0));
}

/* biolatency-style power-of-two histogram in microseconds. */
static void print_ascii(const struct pcb_hist *h)
{
	uint64_t slot[64] = { 0 }, maxc = 0;
	int lo = 64, hi = -1;

	if (!h->count)
		return;
	for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++) {
		uint64_t us = pcb_hist_lower(b) / PCB_NSEC_PER_USEC;
		int s = us ? (int)pcb_log2_u64(us) + 1 : 0;

		if (!h->bucket[b])
			continue;
		slot[s] += h->bucket[b];
		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
	}
	for (int s = lo; s <= hi; s++)
		maxc = slot[s] > maxc ? slot[s] : maxc;
	fprintf(txt, "%24s : %-8s %s\n", "usecs", "count", "distribution");
	for (int s = lo; s <= hi; s++) {
		unsigned long long from = s ? 1ull << (s - 1) : 0, to = s ? (1ull << s) - 1 : 0;
		int stars = maxc ? (int)(slot[s] * 40 / maxc) : 0;

		fprintf(txt, "%10llu -> %-10llu : %-8llu |%.*s%*s|\n", from, to, (unsigned long long)slot[s], stars,
		       "****************************************", 40 - stars, "");
	}
}

/* ---- JSON lines ------------------------------------------------------------------- */

static void jsonl_thread(struct pctrace *p, const struct pcb_trace_thread *th, uint64_t faults, uint64_t kvm,
			 const struct pcb_hist *h)
{
	char name[32];

	thread_name(p->o.pid, th, name, sizeof(name));
	pcb_json_obj_begin(p->jl, NULL);
	pcb_json_i64(p->jl, "tid", th->tid);
	pcb_json_str(p->jl, "comm", name);
	pcb_json_u64(p->jl, "faults", faults);
	pcb_json_u64(p->jl, "kvm_faults", kvm);
	pcb_hist_json(p->jl, "fault_to_running", h, 1);
	pcb_json_obj_end(p->jl);
}

/* One record per line: a writer of its own for each. */
static void jsonl_begin(struct pctrace *p, const char *record, uint64_t now)
{
	p->jl = pcb_json_open_compact(p->jsonl);
	if (!p->jl)
		return;
	pcb_json_obj_begin(p->jl, NULL);
	pcb_json_u64(p->jl, "schema_version", PCTRACE_SCHEMA_VERSION);
	pcb_json_str(p->jl, "record", record);
	pcb_json_i64(p->jl, "pid", p->o.pid);
	pcb_json_dbl(p->jl, "t_s", (double)(now - p->t_start) / 1e9);
	pcb_json_dbl(p->jl, "interval_s", (double)(now - p->t_last) / 1e9);
	pcb_json_str(p->jl, "method", pcb_trace_method(p->t, NULL));
}

static void jsonl_end(struct pctrace *p)
{
	pcb_json_obj_end(p->jl);
	pcb_json_close(p->jl);          /* (the newline) */
	p->jl = NULL;
	fflush(p->jsonl);
}

/* ---- one report: the interval since the last one (or the whole run) ---------------- */

static void report(struct pctrace *p, uint64_t now, bool final)
{
	const struct pcb_trace_stats *prev = final ? NULL : p->prev;
	uint64_t faults = faults_of(p->cur) - (prev ? faults_of(prev) : 0);
	char label[32], name[32];
	size_t k = 0;

	all_hist(p->h, p->cur);
	if (prev) {
		all_hist(p->h2, prev);
		hist_delta(p->h, p->h, p->h2, p->tmp);
	}
	if (final) {
		snprintf(label, sizeof(label), "all");
	} else {
		time_t wall = time(NULL);
		struct tm tm;

		localtime_r(&wall, &tm);
		strftime(label, sizeof(label), "%H:%M:%S", &tm);
	}
	if (p->jsonl)
		jsonl_begin(p, final ? "total" : "interval", now);
	if (p->jl) {
		pcb_json_u64(p->jl, "faults", faults);
		pcb_hist_json(p->jl, "fault_to_running", p->h, 1);
		pcb_json_arr_begin(p->jl, "threads");
	}
	if (!p->quiet || final)
		print_line(label, p->comm, faults, 0, p->h);
	for (size_t i = 0; i < p->nth; i++) {
		const struct pcb_trace_thread *th = &p->th[i], *old = final ? NULL : prev_thread(p, &k, th->tid);
		uint64_t f = th->delivered - (old ? old->delivered : 0), kv = th->kvm - (old ? old->kvm : 0);

		if (!f)
			continue;
		hist_delta(p->h2, &th->hist, old ? &old->hist : NULL, p->tmp);
		thread_name(p->o.pid, th, name, sizeof(name));
		snprintf(label, sizeof(label), "  tid %d", (int)th->tid);
		if (!p->quiet || final)
			print_line(label, name, f, kv, p->h2);
		if (p->jl)
			jsonl_thread(p, th, f, kv, p->h2);
	}
	if (p->jl) {
		pcb_json_arr_end(p->jl);
		jsonl_end(p);
	}
	if (!p->quiet || final)
		print_ascii(p->h);
	fflush(txt);
}

/* Snapshot the maps, report the interval, keep the snapshot for the next one. */
static void tick(struct pctrace *p, uint64_t now)
{
	struct pcb_trace_stats *sw;
	struct pcb_trace_thread *th = NULL;
	size_t nth = 0;

	if (p->o.uffd_ranges && !pcb_trace_follows_ranges(p->t))
		pcb_trace_refresh_ranges(p->t);
	if (pcb_trace_read(p->t, p->cur) || pcb_trace_read_threads(p->t, &th, &nth))
		return;
	free(p->th);
	p->th = th;
	p->nth = nth;
	if (!p->quiet || p->jsonl)
		report(p, now, false);
	sw = p->prev;
	p->prev = p->cur;
	p->cur = sw;
	free(p->pth);
	p->pth = p->th;
	p->npth = p->nth;
	p->th = NULL;
	p->nth = 0;
	p->t_last = now;
	p->intervals++;
}

static void final_report(struct pctrace *p)
{
	const uint64_t *cn = p->cur->counter;
	char d[16], e[16];

	free(p->th);
	p->th = NULL;
	if (pcb_trace_read(p->t, p->cur) || pcb_trace_read_threads(p->t, &p->th, &p->nth))
		return;
	fprintf(txt, "\nTotal over %.1fs: fault -> running of %s (%d), counted by %s:\n",
	       (double)(pcb_now_ns() - p->t_start) / 1e9, p->comm, (int)p->o.pid, pcb_trace_method(p->t, NULL));
	report(p, pcb_now_ns(), true);
	if (p->cur->wakeup)
		fprintf(txt, "fault -> wake-up p50 %s, wake-up -> running p50 %s\n",
		       fmt_ns(d, sizeof(d), pcb_hist_percentile(&p->cur->hist[FL_H_FAULT_TO_WAKEUP], 50)),
		       fmt_ns(e, sizeof(e), pcb_hist_percentile(&p->cur->hist[FL_H_WAKEUP_TO_RUNNING], 50)));
	if (anchored(p->cur))
		fprintf(txt, "messages: %llu read and matched; %llu faults blocked but were resolved before theirs was "
		       "read; %llu unmatched; faults raised in system calls %llu\n",
		       (unsigned long long)cn[FL_C_MSGS], (unsigned long long)cn[FL_C_BLOCKED_UNDELIVERED],
		       (unsigned long long)cn[FL_C_MSG_UNMATCHED], (unsigned long long)cn[FL_C_KERNEL_FAULTS]);
	if (cn[FL_C_RESOLVED])
		fprintf(txt, "resolve: %llu faults followed to their resolving ioctl: fault -> resolve p50 %s, "
		       "resolve -> running p50 %s\n", (unsigned long long)cn[FL_C_RESOLVED],
		       fmt_ns(d, sizeof(d), pcb_hist_percentile(&p->cur->hist[FL_H_FAULT_TO_RESOLVE], 50)),
		       fmt_ns(e, sizeof(e), pcb_hist_percentile(&p->cur->hist[FL_H_RESOLVE_TO_RUNNING], 50)));
	if (cn[FL_C_KVM_FAULTS])
		fprintf(txt, "kvm: %llu guest faults seen, %llu resolved without sleeping, %llu counted\n",
		       (unsigned long long)cn[FL_C_KVM_FAULTS], (unsigned long long)cn[FL_C_KVM_NONBLOCKING],
		       (unsigned long long)cn[FL_C_KVM_BLOCKING]);
	if (p->o.events)
		fprintf(txt, "events: %llu written, %llu dropped\n", (unsigned long long)p->cur->events_written,
		       (unsigned long long)cn[FL_C_EVENTS_DROPPED]);
	fflush(txt);
}

static void json_doc(struct pctrace *p, struct pcb_json *j, uint64_t now)
{
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "schema_version", PCTRACE_SCHEMA_VERSION);
	pcb_json_str(j, "tool", "pctrace");
	pcb_json_str(j, "version", PCB_VERSION);
	pcb_json_str(j, "gitrev", PCB_GITREV);
	pcb_json_i64(j, "pid", p->o.pid);
	pcb_json_str(j, "comm", p->comm);
	pcb_json_dbl(j, "duration_s", (double)(now - p->t_start) / 1e9);
	pcb_json_bool(j, "process_exited", p->exited);
	pcb_json_str(j, "method", pcb_trace_method(p->t, NULL));
	pcb_json_u64(j, "faults", faults_of(p->cur));
	pcb_json_str(j, "histogram_bins", "[lower_ns, count] of common/hist.h's log-linear buckets; "
		     "equal lower_ns = the same bucket, so histograms merge by adding counts");
	pcb_json_obj_begin(j, "config");        /* the options as resolved */
	pcb_json_u64(j, "interval_ns", p->interval_ns);
	pcb_json_u64(j, "duration_ns", p->duration_ns);
	pcb_json_bool(j, "userfaultfd_ranges_only", p->o.uffd_ranges);
	pcb_json_bool(j, "heuristic", !p->o.msgs);
	pcb_json_bool(j, "resolve", p->o.resolve);
	pcb_json_bool(j, "wakeup", p->o.wakeup);
	pcb_json_bool(j, "events", p->o.events);
	pcb_json_bool(j, "usdt", p->o.usdt);
	pcb_json_str(j, "hooks", p->o.classic ? "classic" : p->o.raw_tp ? "raw_tp" : "auto");
	pcb_json_obj_end(j);
	{
		struct pcb_sysinfo si;

		pcb_sysinfo_read(&si);
		pcb_sysinfo_json(&si, j, "host");
	}
	pcb_trace_json(p->t, j, "bpf");
	pcb_json_obj_end(j);
}

static int write_json(struct pctrace *p)
{
	FILE *fp = strcmp(p->json_path, "-") ? fopen(p->json_path, "we") : stdout;
	struct pcb_json *j;

	if (!fp) {
		msg("cannot write %s: %s", p->json_path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	j = pcb_json_open(fp);
	if (j)
		json_doc(p, j, pcb_now_ns());
	if (!j || pcb_json_close(j) || (fp != stdout && fclose(fp))) {
		msg("writing %s failed", p->json_path);
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* ---- options ---------------------------------------------------------------------- */

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: pctrace -p PID [options]\n"
		"Count and time the userfaultfd faults of a process (see pctrace(8)).\n\n"
		"  -p, --pid PID             process to trace (all its threads, also new ones)\n"
		"  -i, --interval DURATION   report every DURATION (e.g. 1s, 500ms; default 1s; 0: only at the end)\n"
		"  -d, --duration DURATION   stop after DURATION (default: until Ctrl-C or PID exits)\n"
		"  -j, --json FILE           final JSON document to FILE (- for stdout)\n"
		"  -J, --json-lines FILE     one JSON record per interval, then a total, to FILE\n"
		"  -e, --events FILE         one CSV line per blocking fault to FILE\n"
		"  -a, --all-faults          faults at any address, not only userfaultfd-registered ranges\n"
		"  -q, --quiet               no interval reports on stdout\n"
		"      --no-usdt             do not attach the pcbench:* USDT probes\n"
		"  -w, --wakeup              also trace wake-ups: fault -> wake-up and wake-up -> running\n"
		"  -r, --resolve             also follow each fault to the resolving ioctl (UFFDIO_COPY, ZEROPAGE,\n"
		"                            CONTINUE, MOVE, WAKE) covering its page: fault -> resolve and\n"
		"                            resolve -> running histograms\n"
		"      --heuristic           count a fault when it blocks (scheduler heuristic) instead of by\n"
		"                            its userfaultfd message; no kernel-mode, message or registration\n"
		"                            hooks; registrations found by rescanning /proc/PID/smaps\n"
		"      --classic             classic tracepoints even where tp_btf works\n"
		"      --raw-tp              raw_tp twins of the fault and scheduler hooks even where tp_btf\n"
		"                            works (they are used by themselves where tp_btf is refused)\n"
		"      --block-window DURATION  on-CPU time a fault may take before it blocks (default 10ms)\n"
		"      --null-programs       attach the same hooks with programs that return at once: measures\n"
		"                            nothing, shows what the hooks cost by themselves (bpf/overhead.sh)\n"
		"  -v, --verbose             libbpf information (-vv: debug); its warnings are always shown\n"
		"  -h, --help\n"
		"\nSIGUSR1 detaches the programs, SIGUSR2 attaches them again (prints \"paused\" /\n"
		"\"resumed\"; used by bpf/overhead.sh).\n");
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(struct pctrace *p, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, 0, 'p' },       { "interval", required_argument, 0, 'i' },
		{ "duration", required_argument, 0, 'd' },  { "json", required_argument, 0, 'j' },
		{ "json-lines", required_argument, 0, 'J' }, { "events", required_argument, 0, 'e' },
		{ "all-faults", no_argument, 0, 'a' },      { "quiet", no_argument, 0, 'q' },
		{ "no-usdt", no_argument, 0, 'U' },         { "classic", no_argument, 0, 'C' },
		{ "raw-tp", no_argument, 0, 'R' },          { "resolve", no_argument, 0, 'r' },
		{ "block-window", required_argument, 0, 'W' }, { "wakeup", no_argument, 0, 'w' },
		{ "heuristic", no_argument, 0, 'H' },       { "null-programs", no_argument, 0, 'N' },
		{ "verbose", no_argument, 0, 'v' },         { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	uint64_t v, *dur;
	int c;

	while ((c = getopt_long(argc, argv, "p:i:d:j:J:e:aqrwvh", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (pcb_parse_u64(optarg, &v) || !v || v > INT_MAX) {
				msg("bad pid '%s'", optarg);
				return PCB_EXIT_USAGE;
			}
			p->o.pid = (pid_t)v;
			break;
		case 'i': case 'd': case 'W':
			dur = c == 'i' ? &p->interval_ns : c == 'd' ? &p->duration_ns : &p->o.block_window_ns;
			if (pcb_parse_duration(optarg, dur) || *dur > 10000000 * PCB_NSEC_PER_SEC ||
			    (c == 'W' && !*dur)) {
				msg("bad duration '%s' for --%s (e.g. 2s, 500ms, 100us)", optarg,
				    c == 'i' ? "interval" : c == 'd' ? "duration" : "block-window");
				return PCB_EXIT_USAGE;
			}
			break;
		case 'j': p->json_path = optarg; break;
		case 'J': p->jsonl_path = optarg; break;
		case 'e': p->o.events = true; p->o.events_path = optarg; break;
		case 'a': p->o.uffd_ranges = false; break;
		case 'q': p->quiet = true; break;
		case 'U': p->o.usdt = false; break;
		case 'C': p->o.classic = true; break;
		case 'R': p->o.raw_tp = true; break;
		case 'r': p->o.resolve = true; break;
		case 'w': p->o.wakeup = true; break;
		case 'H': p->o.msgs = p->o.any_reader = p->o.kernel_faults = p->o.follow_ranges = false; break;
		case 'N': p->o.null_progs = true; break;
		case 'v': p->o.verbose++; pcb_verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return PCB_EXIT_USAGE;
		}
	}
	if (!p->o.pid || optind != argc) {
		usage(stderr);
		return PCB_EXIT_USAGE;
	}
	if (p->interval_ns && p->interval_ns < 10 * PCB_NSEC_PER_MSEC)
		p->interval_ns = 10 * PCB_NSEC_PER_MSEC;
	return -1;
}

/* ---- setup, loop, cleanup --------------------------------------------------------- */

static int setup(struct pctrace *p)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *why_m;
	char why[256];
	int code;

	p->pidfd = (int)syscall(SYS_pidfd_open, p->o.pid, 0);
	if (p->pidfd < 0) {
		msg("cannot watch process %d: %s", (int)p->o.pid, strerror(errno));
		return errno == ESRCH ? PCB_EXIT_USAGE : pcb_exit_for_errno(errno);
	}
	{
		struct pcb_trace_thread self = { .tid = p->o.pid };

		thread_name(p->o.pid, &self, p->comm, sizeof(p->comm));
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	p->cur = calloc(1, sizeof(*p->cur));
	p->prev = calloc(1, sizeof(*p->prev));
	p->h = malloc(sizeof(*p->h));
	p->h2 = malloc(sizeof(*p->h2));
	p->tmp = malloc(sizeof(uint64_t) * PCB_HIST_BUCKETS);
	if (!p->cur || !p->prev || !p->h || !p->h2 || !p->tmp) {
		msg("out of memory");
		return PCB_EXIT_OSERR;
	}
	if (p->jsonl_path && !(p->jsonl = fopen(p->jsonl_path, "we"))) {
		msg("cannot write %s: %s", p->jsonl_path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	code = pcb_trace_start(&p->o, &p->t, why, sizeof(why));
	if (code) {
		msg("%s", why);
		return code;
	}
	p->t_start = p->t_last = pcb_now_ns();
	pcb_trace_read(p->t, p->cur);
	msg("tracing pid %d (%s): %s, %llu userfaultfd range%s now; counting by %s; page faults via %s "
	    "(kernel mode: %s), scheduler via %s, messages via %s, ranges via %s, pager probes: %s. Ctrl-C to end.",
	    (int)p->o.pid, p->comm, p->o.uffd_ranges ? "userfaultfd memory only" : "any fault",
	    (unsigned long long)p->cur->ranges, p->cur->ranges == 1 ? "" : "s", pcb_trace_method(p->t, &why_m),
	    pcb_trace_attach_kind(p->t, "page_fault"), pcb_trace_attach_kind(p->t, "page_fault_kernel"),
	    pcb_trace_attach_kind(p->t, "sched_switch"), pcb_trace_attach_kind(p->t, "read"),
	    pcb_trace_attach_kind(p->t, "ranges"), pcb_trace_attach_kind(p->t, "usdt"));
	if (why_m)
		msg("warning: counting by the scheduler heuristic (a fault counts when it blocks: page-cache "
		    "hits followed by a sleep count too): %s", why_m);
	return 0;
}

static void handle_pause(struct pctrace *p)
{
	char why[256];

	if (pause_req) {
		pause_req = 0;
		if (pcb_trace_pause(p->t) == 0)
			msg("paused");
	}
	if (resume_req) {
		resume_req = 0;
		if (pcb_trace_resume(p->t, why, sizeof(why)) == 0)
			msg("resumed");
		else
			msg("resuming failed: %s", why);
	}
}

static void run_loop(struct pctrace *p)
{
	uint64_t t_end = p->duration_ns ? p->t_start + p->duration_ns : 0;
	uint64_t next = p->interval_ns ? p->t_start + p->interval_ns : 0;

	while (!stop_sig && !p->exited) {
		uint64_t now = pcb_now_ns(), wake = UINT64_MAX;
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
		int timeout;

		if (t_end && now >= t_end)
			break;
		handle_pause(p);
		if (next && now >= next) {
			tick(p, now);
			while (next <= now)
				next += p->interval_ns;
		}
		wake = next ? next : wake;
		wake = t_end && t_end < wake ? t_end : wake;
		timeout = wake == UINT64_MAX ? 100 : (int)((wake - now) / PCB_NSEC_PER_MSEC + 1);
		if (timeout > 100)
			timeout = 100;  /* a pause/resume signal between the checks and poll() waits at most this */
		if (poll(&pfd, 1, timeout) > 0 && (pfd.revents & POLLIN))
			p->exited = true;
	}
	if (p->exited)
		msg("process %d exited", (int)p->o.pid);
}

static int cleanup(struct pctrace *p, int ret)
{
	if (p->jsonl && fclose(p->jsonl) && !ret)
		ret = PCB_EXIT_OSERR;
	pcb_trace_free(p->t);
	free(p->th);
	free(p->pth);
	free(p->cur);
	free(p->prev);
	free(p->h);
	free(p->h2);
	free(p->tmp);
	if (p->pidfd > 0)
		close(p->pidfd);
	return ret;
}

int main(int argc, char **argv)
{
	struct pctrace p = {
		.o = { .usdt = true, .uffd_ranges = true, .msgs = true, .any_reader = true, .kernel_faults = true,
		       .follow_ranges = true, .json_bins = true },
		.interval_ns = PCB_NSEC_PER_SEC, .pidfd = -1,
	};
	int ret = parse_args(&p, argc, argv);

	if (ret >= 0)
		return ret;
	txt = p.json_path && !strcmp(p.json_path, "-") ? stderr : stdout;
	ret = setup(&p);
	if (!ret) {
		run_loop(&p);
		if (pcb_trace_stop(p.t))
			msg("reading the final maps failed");
		final_report(&p);
		if (p.jsonl && (p.jl = pcb_json_open_compact(p.jsonl))) {
			json_doc(&p, p.jl, pcb_now_ns());  /* the last record: the --json document */
			pcb_json_close(p.jl);
		}
		if (p.json_path)
			ret = write_json(&p);
	}
	return cleanup(&p, ret);
}
