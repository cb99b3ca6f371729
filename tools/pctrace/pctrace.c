/* pctrace: fault-latency tracing of any running userfaultfd process.
 *
 *   pctrace -p PID [--interval S] [--duration S] [--json FILE] [--events FILE] [-v]
 *
 * Attaches bpf/faultlat.bpf.c filtered to PID's threads (in-kernel, by tgid,
 * so threads created later are traced too) and to the address ranges PID has
 * registered with userfaultfd (from /proc/PID/smaps, rescanned every
 * interval), prints per-interval and per-thread fault -> running latency
 * histograms, and on SIGINT/SIGTERM or when PID exits a summary and the JSON.
 * See docs/pctrace.8.
 */
#include <dirent.h>
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
#include "common/util.h"
#include "trace/trace.h"

static volatile sig_atomic_t stop_sig, pause_req, resume_req;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		pause_req = 1;
	else if (sig == SIGUSR2)
		resume_req = 1;
	else
		stop_sig = sig;
}

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

static void print_summary_line(FILE *fp, const char *label, const struct pcb_hist *h, uint64_t nonblock)
{
	char a[16], b[16], c[16], d[16];

	fprintf(fp, "%-14s faults %-8llu nonblocking %-6llu p50 %-9s p90 %-9s p99 %-9s max %s\n", label,
		(unsigned long long)h->count, (unsigned long long)nonblock,
		fmt_ns(a, sizeof(a), pcb_hist_percentile(h, 50)),
		fmt_ns(b, sizeof(b), pcb_hist_percentile(h, 90)),
		fmt_ns(c, sizeof(c), pcb_hist_percentile(h, 99)),
		fmt_ns(d, sizeof(d), h->count ? h->max : 0));
}

/* biolatency-style power-of-two histogram in microseconds. */
static void print_ascii(FILE *fp, const struct pcb_hist *h)
{
	uint64_t slot[64] = { 0 }, maxc = 0;
	int lo = 64, hi = -1;

	if (!h->count)
		return;
	for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++) {
		uint64_t us;
		int s;

		if (!h->bucket[b])
			continue;
		us = pcb_hist_lower(b) / PCB_NSEC_PER_USEC;
		s = us ? (int)pcb_log2_u64(us) + 1 : 0;
		slot[s] += h->bucket[b];
		if (s < lo)
			lo = s;
		if (s > hi)
			hi = s;
	}
	for (int s = lo; s <= hi; s++)
		if (slot[s] > maxc)
			maxc = slot[s];
	fprintf(fp, "%24s : %-8s %s\n", "usecs", "count", "distribution");
	for (int s = lo; s <= hi; s++) {
		unsigned long long from = s ? 1ull << (s - 1) : 0, to = s ? (1ull << s) - 1 : 0;
		int stars = maxc ? (int)(slot[s] * 40 / maxc) : 0;
		char bar[41];

		memset(bar, '*', (size_t)stars);
		memset(bar + stars, ' ', (size_t)(40 - stars));
		bar[40] = 0;
		fprintf(fp, "%10llu -> %-10llu : %-8llu |%s|\n", from, to, (unsigned long long)slot[s], bar);
	}
}

/* h = cur - prev, bucket by bucket. */
static void hist_delta(struct pcb_hist *out, const struct pcb_hist *cur, const struct pcb_hist *prev,
		       uint64_t *tmp)
{
	for (unsigned b = 0; b < PCB_HIST_BUCKETS; b++)
		tmp[b] = cur->bucket[b] - (prev ? prev->bucket[b] : 0);
	pcb_hist_init(out);
	pcb_hist_add_buckets(out, tmp, PCB_HIST_BUCKETS);
}

static int count_uffds(pid_t pid)
{
	char path[64], link[PATH_MAX], target[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		ssize_t l;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
		l = readlink(link, target, sizeof(target) - 1);
		if (l > 0) {
			target[l] = 0;
			if (strstr(target, "userfaultfd"))
				n++;
		}
	}
	closedir(d);
	return n;
}

static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = 0;
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: pctrace -p PID [options]\n"
		"Trace the page-fault latency of a process that uses userfaultfd.\n\n"
		"  -p, --pid PID        process to trace (all its threads, also new ones)\n"
		"  -i, --interval S     print a report every S seconds (default 1; 0: only at the end)\n"
		"  -d, --duration S     stop after S seconds (default: until Ctrl-C or PID exits)\n"
		"  -j, --json FILE      write the final JSON summary to FILE (- for stdout)\n"
		"  -e, --events FILE    write one CSV line per blocking fault to FILE\n"
		"  -a, --all-faults     trace faults at any address, not only userfaultfd ranges\n"
		"  -T, --threads        per-thread lines in every interval report\n"
		"  -q, --quiet          no interval reports\n"
		"      --no-usdt        do not attach the pcbench:* USDT probes\n"
		"  -w, --wakeup         also trace wake-ups: fault -> wake-up and wake-up -> running\n"
		"  -m, --messages       also watch the handler read() fault messages: faults then\n"
		"                       count only those it read (its own count), and faults a\n"
		"                       background install resolved first are reported apart\n"
		"                       (costs every syscall on the machine ~0.2-0.6 us here)\n"
		"      --classic        use classic tracepoints even where tp_btf works\n"
		"      --window US      on-CPU time a fault may take before it blocks (default 10000)\n"
		"      --null-programs  attach the same hooks with programs that return at once:\n"
		"                       measures nothing, shows what the hooks cost by themselves\n"
		"                       (bpf/overhead.sh mode null)\n"
		"  -v, --verbose        libbpf messages (-vv: debug)\n"
		"  -h, --help\n"
		"\nSIGUSR1 detaches the programs (fault path and USDT), SIGUSR2 attaches them again\n"
		"(prints \"paused\" / \"resumed\"; used by bpf/overhead.sh).\n");
}

struct prev_threads {
	struct pcb_trace_thread *t;
	size_t n;
};

static void print_threads(FILE *fp, struct pcb_trace_thread *cur, size_t n, const struct prev_threads *p,
			  uint64_t *tmp, struct pcb_hist *h)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct pcb_trace_thread *old = NULL;
		char label[32];

		while (p && k < p->n && p->t[k].tid < cur[i].tid)
			k++;
		if (p && k < p->n && p->t[k].tid == cur[i].tid)
			old = &p->t[k];
		hist_delta(h, &cur[i].hist, old ? &old->hist : NULL, tmp);
		if (!h->count && (!old || cur[i].nonblocking == old->nonblocking))
			continue;
		snprintf(label, sizeof(label), "  tid %d", (int)cur[i].tid);
		print_summary_line(fp, label, h, cur[i].nonblocking - (old ? old->nonblocking : 0));
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, 0, 'p' },
		{ "interval", required_argument, 0, 'i' },
		{ "duration", required_argument, 0, 'd' },
		{ "json", required_argument, 0, 'j' },
		{ "events", required_argument, 0, 'e' },
		{ "all-faults", no_argument, 0, 'a' },
		{ "threads", no_argument, 0, 'T' },
		{ "quiet", no_argument, 0, 'q' },
		{ "no-usdt", no_argument, 0, 'U' },
		{ "classic", no_argument, 0, 'C' },
		{ "window", required_argument, 0, 'W' },
		{ "wakeup", no_argument, 0, 'w' },
		{ "messages", no_argument, 0, 'm' },
		{ "null-programs", no_argument, 0, 'N' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	struct pcb_trace_opts o = { .usdt = true, .uffd_ranges = true, .msgs = true, .any_reader = true,
				    .kernel_faults = true, .follow_ranges = true };
	double interval = 1.0, duration = 0, window_us = 0;
	const char *json_path = NULL;
	bool quiet = false, per_thread = false;
	struct pcb_trace *t = NULL;
	struct pcb_trace_stats *cur = NULL, *prev = NULL;
	struct pcb_hist *h = NULL;
	uint64_t *tmp = NULL;
	struct prev_threads pt = { 0 };
	char why[256], comm[32];
	int c, code, pidfd, ret = PCB_EXIT_OK, nuffd;
	uint64_t t_start, next_tick, t_end = 0;
	bool exited = false;

	while ((c = getopt_long(argc, argv, "p:i:d:j:e:aTqwmvh", lo, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'p':
			if (pcb_parse_u64(optarg, &v) || !v || v > INT_MAX) {
				msg("bad pid '%s'", optarg);
				return PCB_EXIT_USAGE;
			}
			o.pid = (pid_t)v;
			break;
		case 'i':
		case 'd':
		case 'W': {
			double x;
			if (pcb_parse_double(optarg, &x) || x < 0 || x > 1e7) {
				msg("bad value '%s' for --%s", optarg,
				    c == 'i' ? "interval" : c == 'd' ? "duration" : "window");
				return PCB_EXIT_USAGE;
			}
			if (c == 'i')
				interval = x;
			else if (c == 'd')
				duration = x;
			else
				window_us = x;
			break;
		}
		case 'j': json_path = optarg; break;
		case 'e': o.events = true; o.events_path = optarg; break;
		case 'a': o.uffd_ranges = false; break;
		case 'T': per_thread = true; break;
		case 'q': quiet = true; break;
		case 'U': o.usdt = false; break;
		case 'C': o.classic = true; break;
		case 'w': o.wakeup = true; break;
		case 'm': o.msgs = true; break;
		case 'N': o.null_progs = true; break;
		case 'v': o.verbose++; pcb_verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return PCB_EXIT_USAGE;
		}
	}
	if (!o.pid || optind != argc) {
		usage(stderr);
		return PCB_EXIT_USAGE;
	}
	o.block_window_ns = (uint64_t)(window_us * 1e3);
	if (interval > 0 && interval < 0.01)
		interval = 0.01;

	pidfd = (int)syscall(SYS_pidfd_open, o.pid, 0);
	if (pidfd < 0) {
		msg("cannot watch process %d: %s", (int)o.pid, strerror(errno));
		return errno == ESRCH ? PCB_EXIT_USAGE : pcb_exit_for_errno(errno);
	}
	comm_of(o.pid, comm, sizeof(comm));
	nuffd = count_uffds(o.pid);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	cur = calloc(1, sizeof(*cur));
	prev = calloc(1, sizeof(*prev));
	h = malloc(sizeof(*h));
	tmp = malloc(sizeof(uint64_t) * PCB_HIST_BUCKETS);
	if (!cur || !prev || !h || !tmp) {
		msg("out of memory");
		return PCB_EXIT_OSERR;
	}
	for (int i = 0; i < FL_NHIST; i++)
		pcb_hist_init(&prev->hist[i]);

	code = pcb_trace_start(&o, &t, why, sizeof(why));
	if (code) {
		msg("%s", why);
		return code;
	}
	t_start = pcb_now_ns();
	if (duration > 0)
		t_end = t_start + (uint64_t)(duration * 1e9);
	{
		struct pcb_trace_stats *st0 = cur;
		int nr = o.uffd_ranges && pcb_trace_read(t, st0) == 0 ? (int)st0->ranges : -1;
		char rng[64];

		if (nr >= 0)
			snprintf(rng, sizeof(rng), "%d userfaultfd range%s", nr, nr == 1 ? "" : "s");
		else
			snprintf(rng, sizeof(rng), "all addresses");
		msg("tracing pid %d (%s): %s, %s, %d userfaultfd fd%s; page faults via %s, "
		    "scheduler via %s, pager probes: %s. Ctrl-C to end.",
		    (int)o.pid, comm, o.uffd_ranges ? "userfaultfd memory only" : "any fault", rng,
		    nuffd < 0 ? 0 : nuffd, nuffd == 1 ? "" : "s", pcb_trace_attach_kind(t, "page_fault"),
		    pcb_trace_attach_kind(t, "sched_switch"), pcb_trace_attach_kind(t, "usdt"));
		if (o.uffd_ranges && nr == 0)
			msg("no userfaultfd-registered memory yet; rescanning every interval");
	}

	next_tick = interval > 0 ? t_start + (uint64_t)(interval * 1e9) : 0;
	while (!stop_sig && !exited) {
		uint64_t now = pcb_now_ns(), wake = UINT64_MAX;
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		int timeout, r;

		if (t_end && now >= t_end)
			break;
		if (pause_req) {
			pause_req = 0;
			if (pcb_trace_pause(t) == 0)
				msg("paused");
		}
		if (resume_req) {
			resume_req = 0;
			if (pcb_trace_resume(t, why, sizeof(why)) == 0)
				msg("resumed");
			else
				msg("resuming failed: %s", why);
		}
		if (next_tick && now >= next_tick) {
			struct pcb_trace_thread *th = NULL;
			size_t nth = 0;
			time_t wall = time(NULL);
			struct tm tm;
			char ts[16];

			if (o.uffd_ranges && !pcb_trace_follows_ranges(t))
				pcb_trace_refresh_ranges(t);
			if (!quiet && pcb_trace_read(t, cur) == 0) {
				localtime_r(&wall, &tm);
				strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
				hist_delta(h, &cur->hist[FL_H_FAULT_TO_RUNNING], &prev->hist[FL_H_FAULT_TO_RUNNING], tmp);
				print_summary_line(stdout, ts, h,
						   cur->counter[FL_C_NONBLOCKING] - prev->counter[FL_C_NONBLOCKING]);
				if (per_thread && pcb_trace_read_threads(t, &th, &nth) == 0) {
					struct pcb_hist *th_h = malloc(sizeof(*th_h));
					if (th_h)
						print_threads(stdout, th, nth, &pt, tmp, th_h);
					free(th_h);
					free(pt.t);
					pt.t = th;
					pt.n = nth;
				}
				print_ascii(stdout, h);
				fflush(stdout);
				struct pcb_trace_stats *sw = prev;
				prev = cur;
				cur = sw;
			}
			while (next_tick <= now)
				next_tick += (uint64_t)(interval * 1e9);
		}
		if (next_tick)
			wake = next_tick;
		if (t_end && t_end < wake)
			wake = t_end;
		timeout = wake == UINT64_MAX ? -1 : (int)((wake - now) / PCB_NSEC_PER_MSEC + 1);
		if (timeout < 0 || timeout > 100)
			timeout = 100;  /* a pause/resume signal between the checks and poll() waits at most this */
		r = poll(&pfd, 1, timeout);
		if (r > 0 && (pfd.revents & POLLIN))
			exited = true;
	}
	if (exited)
		msg("process %d exited", (int)o.pid);

	if (pcb_trace_stop(t))
		msg("reading the final maps failed");

	/* Final report. */
	if (pcb_trace_read(t, cur) == 0) {
		struct pcb_trace_thread *th = NULL;
		size_t nth = 0;
		const uint64_t *cn = cur->counter;
		char d[16];

		printf("\nTotal over %.1fs: fault -> running of %s (%d):\n",
		       (double)(pcb_now_ns() - t_start) / 1e9, comm, (int)o.pid);
		print_summary_line(stdout, "all", &cur->hist[FL_H_FAULT_TO_RUNNING], cn[FL_C_NONBLOCKING]);
		if (pcb_trace_read_threads(t, &th, &nth) == 0) {
			print_threads(stdout, th, nth, NULL, tmp, h);
			free(th);
		}
		print_ascii(stdout, &cur->hist[FL_H_FAULT_TO_RUNNING]);
		if (cur->wakeup) {
			printf("fault -> wake-up p50 %s", fmt_ns(d, sizeof(d),
			       pcb_hist_percentile(&cur->hist[FL_H_FAULT_TO_WAKEUP], 50)));
			printf(", wake-up -> running p50 %s, ", fmt_ns(d, sizeof(d),
			       pcb_hist_percentile(&cur->hist[FL_H_WAKEUP_TO_RUNNING], 50)));
		}
		printf("fault -> block p50 %s\n", fmt_ns(d, sizeof(d),
		       pcb_hist_percentile(&cur->hist[FL_H_FAULT_TO_BLOCK], 50)));
		if (cur->msgs)
			printf("messages: %llu read by the handler; %llu faults blocked but were resolved "
			       "before theirs was read (p50 %s), %llu unmatched\n",
			       (unsigned long long)cn[FL_C_MSGS], (unsigned long long)cn[FL_C_BLOCKED_UNDELIVERED],
			       fmt_ns(d, sizeof(d), pcb_hist_percentile(&cur->hist[FL_H_UNDELIVERED], 50)),
			       (unsigned long long)cn[FL_C_MSG_UNMATCHED]);
		if (cn[FL_C_KVM_FAULTS])
			printf("kvm: %llu guest faults seen, %llu resolved without sleeping, %llu blocked%s, "
			       "fault -> running p50 %s\n",
			       (unsigned long long)cn[FL_C_KVM_FAULTS], (unsigned long long)cn[FL_C_KVM_NONBLOCKING],
			       (unsigned long long)cn[FL_C_KVM_BLOCKING], cur->msgs ? " (message read)" : "",
			       fmt_ns(d, sizeof(d), pcb_hist_percentile(&cur->hist[FL_H_KVM_FAULT_TO_RUNNING], 50)));
		if (o.events)
			printf("events: %llu written, %llu dropped\n", (unsigned long long)cur->events_written,
			       (unsigned long long)cn[FL_C_EVENTS_DROPPED]);
		fflush(stdout);
	}

	if (json_path) {
		FILE *fp = strcmp(json_path, "-") ? fopen(json_path, "we") : stdout;
		struct pcb_json *j;

		if (!fp) {
			msg("cannot write %s: %s", json_path, strerror(errno));
			ret = PCB_EXIT_OSERR;
		} else {
			j = pcb_json_open(fp);
			pcb_json_obj_begin(j, NULL);
			pcb_json_str(j, "tool", "pctrace");
			pcb_json_str(j, "version", PCB_VERSION);
			pcb_json_str(j, "gitrev", PCB_GITREV);
			pcb_json_i64(j, "pid", o.pid);
			pcb_json_str(j, "comm", comm);
			pcb_json_dbl(j, "duration_s", (double)(pcb_now_ns() - t_start) / 1e9);
			pcb_json_bool(j, "process_exited", exited);
			pcb_trace_json(t, j, "bpf");
			pcb_json_obj_end(j);
			if (pcb_json_close(j) || (fp != stdout && fclose(fp))) {
				msg("writing %s failed", json_path);
				ret = PCB_EXIT_OSERR;
			}
		}
	}
	pcb_trace_free(t);
	free(pt.t);
	free(cur);
	free(prev);
	free(h);
	free(tmp);
	close(pidfd);
	return ret;
}
