#include "cli/options.h"
#include "common/json.h"
#include "common/util.h"
#include "common/pin.h"
#include "install/install.h"
#include "policies/policy.h"
#include "workloads/workload.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct pcb_config, f)
#define SZ(f) sizeof(((struct pcb_config *)0)->f)

/* Entries list their fields in order; `choices` is only given where used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct pcb_option pcb_options[] = {
	{ "mem", PCB_OPT_SIZE, OFF(mem), 0, "256M", 4096, 1e15, "guest memory size (K/M/G/T suffixes; multiple of 4 KiB)" },
	{ "policy", PCB_OPT_POLICY, OFF(policy), SZ(policy), "sequential", 0, 0, "pre-paging policy (see `pcbench list`), or a policy built as a shared object: ./path/to/policy.so (docs/writing-a-policy.md)" },
	{ "policy-end", PCB_OPT_CHOICE, OFF(policy_end), SZ(policy_end), "auto", 0, 0,
	  "where the policy runs: destination (the pager pulls batches it chooses), source (the source pushes the stream "
	  "it chooses, paced by the connection, told of each demand request), auto = the policy's own (`pcbench list`)",
	  "auto|source|destination" },
	{ "workload", PCB_OPT_WORKLOAD, OFF(workload), SZ(workload), "seq", 0, 0, "guest access pattern (see `pcbench list`)" },
	{ "vcpus", PCB_OPT_UINT, OFF(vcpus), 0, "1", 1, 256, "guest threads (vCPUs)" },
	{ "seed", PCB_OPT_U64, OFF(seed), 0, "1", 0, 1.8446744073709552e19, "seed of the memory image and of the workload" },
	{ "zero-pages", PCB_OPT_DOUBLE, OFF(zero_pages), 0, "0.25", 0, 1, "fraction of all-zero pages in the image" },
	{ "write-ratio", PCB_OPT_DOUBLE, OFF(write_ratio), 0, "0.2", 0, 1, "fraction of guest accesses that are writes" },
	{ "zipf-theta", PCB_OPT_DOUBLE, OFF(zipf_theta), 0, "0.99", 0.01, 0.999, "skew of the zipf workload" },
	{ "duration", PCB_OPT_DURATION, OFF(duration_ns), 0, "2s", 0, 1e13, "how long the guest runs (e.g. 500ms, 10s; 0 = until --ops)" },
	{ "ops", PCB_OPT_U64, OFF(ops), 0, "0", 0, 1e18, "stop each vCPU after this many accesses (0 = until --duration)" },
	{ "json", PCB_OPT_STR, OFF(json), SZ(json), "", 0, 0, "write the versioned JSON result to this file" },
	{ "timeline", PCB_OPT_STR, OFF(timeline), SZ(timeline), "", 0, 0, "write every fault, install and first touch as CSV (t_us,event,page,detail)" },
	{ "host", PCB_OPT_STR, OFF(host), SZ(host), "127.0.0.1", 0, 0, "address the forked source listens on" },
	{ "port", PCB_OPT_UINT, OFF(port), 0, "0", 0, 65535, "source TCP port (0 = ephemeral)" },
	{ "io-timeout", PCB_OPT_DURATION, OFF(io_timeout_ns), 0, "3s", 1e6, 1e12, "a source silent this long while pages are awaited = source lost" },
	{ "batch", PCB_OPT_UINT, OFF(batch_pages), 0, "64", 1, 4096, "pages per background batch" },
	{ "window", PCB_OPT_UINT, OFF(window), 0, "4", 1, 64, "background batches in flight" },
	{ "channels", PCB_OPT_UINT, OFF(channels), 0, "0", 0, 2,
	  "connections to the source: 2 = demand requests on their own connection, served before background work; "
	  "1 = one connection carries both, demand replies queue behind background data already sent (QEMU before "
	  "postcopy-preempt); 0 = what the policy's system uses (qemu: 1, or 2 with preempt=on; others 2); "
	  "not 1 with --page-size=2M" },
	{ "inflight", PCB_OPT_CHOICE, OFF(inflight), SZ(inflight), "wait", 0, 0,
	  "a fault on a page already in flight in a background batch: wait (for the batch; every page crosses the wire "
	  "once, as QEMU and CRIU) or resend (ask for it again on the demand channel, whose reply may overtake the batch: "
	  "pages sent twice, results.pages.sent_twice)", "wait|resend" },
	{ "socket-buffer", PCB_OPT_SIZE, OFF(socket_buffer), 0, "4M", 0, 64 << 20,
	  "SO_SNDBUF and SO_RCVBUF of every connection (the kernel doubles it, capped by net.core.wmem_max/rmem_max); "
	  "0 = the kernel's autotuning.  With --channels=1 a demand reply queues behind what these buffers hold" },
	{ "source-delay", PCB_OPT_DURATION, OFF(source_delay_ns), 0, "0", 0, 1e10, "delay the source adds before each demand reply (e.g. 200us)" },
	{ "trace", PCB_OPT_CHOICE, OFF(trace), SZ(trace), "auto", 0, 0,
	  "kernel-side BPF fault histograms (page-fault and context-switch tracepoints): auto (when root and BPF work), on (fail if not), off", "auto|on|off" },
	{ "trace-usdt", PCB_OPT_CHOICE, OFF(trace_usdt), SZ(trace_usdt), "off", 0, 0,
	  "with tracing, also attach the pager's USDT probes (queueing / round trip / install breakdown; adds ~1 us per probe)", "on|off" },
	{ "trace-messages", PCB_OPT_CHOICE, OFF(trace_messages), SZ(trace_messages), "auto", 0, 0,
	  "with tracing, also watch the pager read fault messages (syscalls:sys_exit_read) so the kernel's fault count is the pager's; it puts every syscall on the machine on the slow path (~1.3x fault latency in a one-CPU run): auto = on with --trace=on, off with --trace=auto", "auto|on|off" },
	{ "trace-events", PCB_OPT_STR, OFF(trace_events), SZ(trace_events), "", 0, 0,
	  "with tracing, also stream every blocked fault (column delivered: its message was read) from the kernel to this CSV file" },
	{ "policy-opt", PCB_OPT_STR, OFF(policy_opt), SZ(policy_opt), "", 0, 0,
	  "policy knobs key=value[,key=value] (each policy's keys: `pcbench list`)" },
	{ "workload-opt", PCB_OPT_STR, OFF(workload_opt), SZ(workload_opt), "", 0, 0,
	  "workload knobs key=value[,key=value] (each workload's keys: `pcbench list`)" },
	{ "record", PCB_OPT_STR, OFF(record), SZ(record), "", 0, 0,
	  "write the guest's access sequence to this file (binary; plain text if it ends in .txt) for --workload=trace" },
	{ "replay", PCB_OPT_STR, OFF(replay), SZ(replay), "", 0, 0,
	  "--policy=replay: access trace written by --record whose first-touch order is pulled first" },
	{ "bucket-ms", PCB_OPT_UINT, OFF(bucket_ms), 0, "10", 1, 60000, "guest progress: ops counted per bucket of this many ms" },
	{ "progress-csv", PCB_OPT_STR, OFF(progress_csv), SZ(progress_csv), "", 0, 0,
	  "write ops per bucket per vCPU as CSV t_ms,vcpu,ops (default: next to --json as NAME.progress.csv)" },
	{ "baseline", PCB_OPT_STR, OFF(baseline), SZ(baseline), "none", 0, 0,
	  "report time back to 95% and lost work against a local run: `run` (run it first, in this invocation) or the "
	  "progress CSV of an earlier --policy=local run of the same guest", NULL },
	{ "install", PCB_OPT_CHOICE, OFF(install), SZ(install), "copy", 0, 0,
	  "how pages enter the guest: copy (UFFDIO_COPY), move (background pages assembled in 2 MiB staging chunks, zero pages included, UFFDIO_MOVE of whole chunks), "
	  "continue (memfd guest, pages received into its page cache, UFFDIO_CONTINUE)", "copy|move|continue" },
	{ "page-size", PCB_OPT_CHOICE, OFF(page_size), SZ(page_size), "4K", 0, 0,
	  "guest page size: 4K, or 2M (hugetlb region, each fault installs 2 MiB with one UFFDIO_COPY; needs reserved "
	  "huge pages, --install=copy, --guest=process, --mem a multiple of 2M)", "4K|2M" },
	{ "install-batch", PCB_OPT_UINT, OFF(install_batch), 0, "0", 0, 1024,
	  "max background pages per install ioctl (0 = the path's default: 128, move 512 = one whole 2 MiB chunk, "
	  "which the kernel moves as one huge-page mapping; 1 = one ioctl per page, each waking)", NULL },
	{ "pin", PCB_OPT_PIN, OFF(pin), SZ(pin), "none", 0, 0,
	  "thread placement: none, same (all on CPU 0), split (guest, demand CPU 0; background receive, install, source CPU 1), "
	  "or guest=C,demand=C,background=C,source=C,install=C", NULL },
	{ "guest", PCB_OPT_CHOICE, OFF(guest), SZ(guest), "process", 0, 0,
	  "process: vCPUs are threads of pcbench; kvm: vCPUs run the workload inside a minimal KVM VM whose memory is the region",
	  "process|kvm" },
	{ "pager", PCB_OPT_CHOICE, OFF(pager), SZ(pager), "thread", 0, 0,
	  "thread: the pager threads run in pcbench's process; process: in a process of their own, given the userfaultfd "
	  "(and the memfd) over a unix socket (SCM_RIGHTS); not with --install=move", "thread|process" },
	{ "link", PCB_OPT_STR, OFF(link), SZ(link), "", 0, 0, "emulate a link BANDWIDTH[,RTT] on both channels, e.g. 10gbit,50us or 1gbit,500us (calibrated end to end)" },
	{ "reconnect-timeout", PCB_OPT_DURATION, OFF(reconnect_timeout_ns), 0, "0", 0, 1e13, "when the source connection drops: pause and reconnect for this long (0 = fail at once)" },
	{ "auth-key-file", PCB_OPT_STR, OFF(auth_key_file), SZ(auth_key_file), "", 0, 0, "shared secret (16..1024 bytes): source and destination authenticate each other with HMAC-SHA-256" },
	{ "source", PCB_OPT_STR, OFF(source), SZ(source), "", 0, 0, "pcbench dest: ADDRESS:PORT of a running `pcbench source`" },
	{ "listen", PCB_OPT_STR, OFF(listen), SZ(listen), "127.0.0.1:7600", 0, 0, "pcbench source: ADDRESS:PORT to listen on (port 0 = ephemeral, printed)" },
	{ "sessions", PCB_OPT_UINT, OFF(sessions), 0, "1", 0, 1000000, "pcbench source: exit after this many completed migrations (0 = serve until killed)" },
	{ "precopy", PCB_OPT_DURATION, OFF(precopy_ns), 0, "0", 0, 3.6e12,
	  "hybrid: the guest first runs at the source this long while pages are pre-copied (written ones re-sent), then post-copy",
	  NULL },
	{ "precopy-transport", PCB_OPT_CHOICE, OFF(precopy_transport), SZ(precopy_transport), "tcp", 0, 0,
	  "how pre-copy moves pages: tcp (a third connection to the source, through --link) or memory (straight from the source's memory)",
	  "tcp|memory" },
	{ "precopy-final", PCB_OPT_CHOICE, OFF(precopy_final), SZ(precopy_final), "drop", 0, 0,
	  "pages written since their last pre-copy at switch-over: drop (post-copy fetches them) or resend (stop-and-copy, vCPUs stopped)",
	  "drop|resend" },
	{ "image", PCB_OPT_STR, OFF(image), SZ(image), "", 0, 0,
	  "serve this raw memory image file (a process dump from `pcbench image dump`, a VM snapshot's memory file) "
	  "instead of the generated image: --mem is its size; pages are verified by the bytes they arrived with "
	  "(pcbench run: the forked source; pcbench source)" },
	{ NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL },
};
#pragma GCC diagnostic pop

static const struct pcb_option *find_opt(const char *name)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

static int set_opt(struct pcb_config *cfg, const struct pcb_option *o, const char *val, char *why, size_t whylen)
{
	char *base = (char *)cfg + o->off;
	uint64_t u;
	double d;
	switch (o->type) {
	case PCB_OPT_SIZE:
		if (pcb_parse_size(val, &u) < 0) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a size such as 256M or 4G)", o->name, val);
			return -1;
		}
		if ((double)u < o->min || (double)u > o->max) {
			if (o->min < 4096)
				snprintf(why, whylen, "invalid value for --%s: '%s' (must be at most %.0f MiB)", o->name, val, o->max / 1048576);
			else
				snprintf(why, whylen, "invalid value for --%s: '%s' (must be between 4 KiB and %g bytes)", o->name, val, o->max);
			return -1;
		}
		if (u % 4096) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (must be a multiple of 4 KiB)", o->name, val);
			return -1;
		}
		*(uint64_t *)base = u;
		return 0;
	case PCB_OPT_UINT:
	case PCB_OPT_U64:
		if (pcb_parse_u64(val, &u) < 0 || (double)u < o->min || (double)u > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want an integer from %.0f to %.0f)", o->name, val, o->min, o->max);
			return -1;
		}
		if (o->type == PCB_OPT_UINT)
			*(unsigned *)base = (unsigned)u;
		else
			*(uint64_t *)base = u;
		return 0;
	case PCB_OPT_DOUBLE:
		if (pcb_parse_double(val, &d) < 0 || d < o->min || d > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a number from %g to %g)", o->name, val, o->min, o->max);
			return -1;
		}
		*(double *)base = d;
		return 0;
	case PCB_OPT_DURATION:
		if (pcb_parse_duration(val, &u) < 0 || (double)u < o->min || (double)u > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a duration such as 500ms, 2s, 200us)", o->name, val);
			return -1;
		}
		*(uint64_t *)base = u;
		return 0;
	case PCB_OPT_STR:
		if (strlen(val) >= o->size) {
			snprintf(why, whylen, "invalid value for --%s: too long (max %zu characters)", o->name, o->size - 1);
			return -1;
		}
		snprintf(base, o->size, "%s", val);
		return 0;
	case PCB_OPT_POLICY:
		if (strlen(val) >= o->size) {
			snprintf(why, whylen, "invalid value for --%s: too long (max %zu characters)", o->name, o->size - 1);
			return -1;
		}
		if (!pcb_policy_resolve(val, why, whylen))
			return -1;
		snprintf(base, o->size, "%s", val);
		return 0;
	case PCB_OPT_CHOICE: {
		size_t vl = strlen(val);
		for (const char *c = o->choices; c && *c;) {
			const char *e = strchr(c, '|');
			size_t cl = e ? (size_t)(e - c) : strlen(c);
			if (cl == vl && !strncmp(c, val, vl) && vl < o->size) {
				snprintf(base, o->size, "%s", val);
				return 0;
			}
			c = e ? e + 1 : c + cl;
		}
		snprintf(why, whylen, "invalid value for --%s: '%s' (want one of %s)", o->name, val, o->choices);
		return -1;
	}
	case PCB_OPT_PIN: {
		struct pcb_pin pin;
		if (strlen(val) >= o->size) {
			snprintf(why, whylen, "invalid value for --%s: too long (max %zu characters)", o->name, o->size - 1);
			return -1;
		}
		if (pcb_pin_parse(val, &pin, why, whylen) < 0)
			return -1;
		snprintf(base, o->size, "%s", val);
		return 0;
	}
	case PCB_OPT_WORKLOAD:
		if (!pcb_workload_find(val)) {
			snprintf(why, whylen, "invalid value for --%s: unknown workload '%s' (see `pcbench list`)", o->name, val);
			return -1;
		}
		snprintf(base, o->size, "%s", val);
		return 0;
	}
	return -1;
}

int pcb_config_set(struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen)
{
	const struct pcb_option *o = find_opt(name);
	if (!o) {
		snprintf(why, whylen, "unknown option --%s (see --help)", name);
		return -1;
	}
	return set_opt(cfg, o, val, why, whylen);
}

void pcb_config_defaults(struct pcb_config *cfg)
{
	char why[256];
	memset(cfg, 0, sizeof(*cfg));
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (set_opt(cfg, o, o->def, why, sizeof(why)) < 0) {
			/* a broken default is a programming error: fail loudly */
			fprintf(stderr, "pcbench: internal error: default of --%s: %s\n", o->name, why);
			abort();
		}
}

void pcb_config_help(FILE *fp)
{
	fprintf(fp,
		"usage: pcbench [run] [OPTIONS]       run one post-copy migration (source forked locally)\n"
		"       pcbench source [--listen=ADDR:PORT] [--mem --seed --zero-pages --auth-key-file --sessions]\n"
		"                                     serve an image to destinations on other hosts\n"
		"       pcbench dest --source=ADDR:PORT [OPTIONS]\n"
		"                                     migrate from a running source (image config fetched from it)\n"
		"       pcbench list                  list policies and workloads\n"
		"       pcbench floor [--help]        pager floor benchmark: bare userfaultfd vs pcbench\n"
		"       pcbench bench JOBFILE         run an experiment matrix (configs/*.conf; see bench --help)\n"
		"       pcbench analyze DIR           tidy CSV, summary tables and plot data of a bench directory\n"
		"       pcbench simulate --trace=FILE [--policy=P] [--link=BW,RTT] [--help]\n"
		"                                     replay an access trace through a policy offline (modelled link)\n"
		"       pcbench --version\n"
		"\n"
		"Runs a real post-copy migration on this machine: a source page server process\n"
		"serves the guest image over TCP; the destination registers the guest region with\n"
		"userfaultfd, serves faults on demand and pulls the rest in the background as the\n"
		"policy decides; every page is verified against the source at the end.\n"
		"\nOptions (default in brackets):\n");
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "--%s=VALUE", o->name);
		fprintf(fp, "  %-22s %s [%s]\n", lhs, o->help, o->def[0] ? o->def : "none");
	}
	fprintf(fp,
		"  %-22s %s\n  %-22s %s\n  %-22s %s\n",
		"-v, --verbose", "more log on stderr", "-h, --help", "this help", "-V, --version", "print version and exit");
	fprintf(fp,
		"\nExit codes: 0 ok; 1 pages corrupt or missing; 64 bad option; 69 kernel lacks a feature;\n"
		"70 internal error; 71 system call failed; 74 source lost; 76 protocol error; 77 no privilege or authentication refused.\n");
}

int pcb_config_parse(struct pcb_config *cfg, int argc, char **argv, int first)
{
	char why[512];
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			pcb_config_help(stdout);
			return 1;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("pcbench %s (git %s)\n", PCB_VERSION, PCB_GITREV);
			return 1;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			cfg->verbose++;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			pcb_err("unexpected argument '%s' (options look like --name=value; see --help)", a);
			return PCB_EXIT_USAGE;
		}
		char name[64];
		const char *eq = strchr(a + 2, '='), *val;
		size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name)) {
			pcb_err("unknown option %s (see --help)", a);
			return PCB_EXIT_USAGE;
		}
		memcpy(name, a + 2, nl);
		name[nl] = 0;
		if (!find_opt(name)) {
			pcb_err("unknown option --%s (see --help)", name);
			return PCB_EXIT_USAGE;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			pcb_err("option --%s needs a value", name);
			return PCB_EXIT_USAGE;
		}
		if (pcb_config_set(cfg, name, val, why, sizeof(why)) < 0) {
			pcb_err("%s", why);
			return PCB_EXIT_USAGE;
		}
	}
	return 0;
}

void pcb_config_resolve(struct pcb_config *cfg)
{
	if (!cfg->install_batch)
		cfg->install_batch = strcmp(cfg->install, "move") ? PCB_MAX_RUN_PAGES : PCB_CHUNK_PAGES;
}

void pcb_config_json(const struct pcb_config *cfg, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		const char *base = (const char *)cfg + o->off;
		switch (o->type) {
		case PCB_OPT_SIZE:
		case PCB_OPT_U64:
			pcb_json_u64(j, o->name, *(const uint64_t *)base);
			break;
		case PCB_OPT_DURATION: {
			char k[80];
			snprintf(k, sizeof(k), "%s_ns", o->name);
			pcb_json_u64(j, k, *(const uint64_t *)base);
			break;
		}
		case PCB_OPT_UINT:
			pcb_json_u64(j, o->name, *(const unsigned *)base);
			break;
		case PCB_OPT_DOUBLE:
			pcb_json_dbl(j, o->name, *(const double *)base);
			break;
		case PCB_OPT_STR:
		case PCB_OPT_CHOICE:
		case PCB_OPT_POLICY:
		case PCB_OPT_WORKLOAD:
		case PCB_OPT_PIN:
			pcb_json_str(j, o->name, base);
			break;
		}
	}
	pcb_json_u64(j, "verbose", cfg->verbose);
	pcb_json_obj_end(j);
}
