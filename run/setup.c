/* Phase 1 of a run, set up: bad input refused before anything starts (the
 * options, the policy's and workload's options, output files), then the
 * image, the baseline, the pre-copy memory, the source (forked or remote),
 * the pager, the parked guest and the tracer. */
#include "run/internal.h"
#include "run/hugepages.h"
#include "common/util.h"
#include "wire/proto.h"
#include "source/source.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The last vCPU has finished (it calls this): start the drain now, not at the main thread's next poll. */
static void guest_ended(void *arg, uint64_t t_end_ns)
{
	(void)t_end_ns;   /* the report takes the vCPUs' own end times (pcb_guest_end_ns) */
	pcb_pager_guest_done(arg);
}

/* ---- source process ---------------------------------------------------------- */

/* --source-send=auto: QEMU's source copies each page into its migration
 * stream (migration/ram.c save_normal_page -> qemu_put_buffer_async, then
 * writev), so the qemu baseline's source does too; every other policy's
 * source splices (CRIU's page server, criu/page-xfer.c). */
static enum pcb_source_send source_send_of(const struct pcb_config *cfg)
{
	if (cfg->source_send != PCB_SRC_SEND_AUTO)
		return (enum pcb_source_send)cfg->source_send;
	return strcmp(cfg->policy, "qemu") ? PCB_SRC_SEND_SPLICE : PCB_SRC_SEND_WRITEV;
}

/* What the forked source did (its report), and why (the exception that applied). */
const char *run_source_send(const struct run *r, const char **why)
{
	bool given = r->cfg->source_send != PCB_SRC_SEND_AUTO;
	if (r->source_image.splices)
		return *why = given ? "--source-send=splice" : "auto", "splice";
	if (r->source_send == PCB_SRC_SEND_WRITEV)
		*why = given ? "--source-send=writev" : "auto: --policy=qemu writes as QEMU's migration stream does";
	else if (r->precopy_src)
		*why = "--precopy: the guest may still write the source's memory, its pages are copied";
	else
		*why = "the source generates each page as it sends it";
	return "writev";
}

static int fork_source(struct run *r, char *why, size_t whylen)
{
	const struct pcb_config *cfg = r->cfg;
	int lfd = pcb_listen_tcp(cfg->host, (uint16_t)cfg->port, &r->port);
	if (lfd < 0) {
		if (errno == EINVAL) {   /* pcb_listen_tcp: not an IPv4 address */
			snprintf(why, whylen, "invalid value for --host: '%s' (want an IPv4 address such as 127.0.0.1)", cfg->host);
			return PCB_EXIT_USAGE;
		}
		snprintf(why, whylen, "source cannot listen on %s:%u: %s", cfg->host, cfg->port, strerror(errno));
		return errno == EADDRINUSE ? PCB_EXIT_USAGE : PCB_EXIT_OSERR;
	}
	/* without a key file, a per-run secret known only to this process and its
	 * child: the forked source serves its own destination and nobody else
	 * (handshake only: the frames after it are those of an unkeyed run) */
	if (!r->net.key.len && pcb_auth_key_random(&r->net.key, true) < 0) {
		snprintf(why, whylen, "no per-run secret for the forked source: getrandom: %s", strerror(errno));
		close(lfd);
		return PCB_EXIT_OSERR;
	}
	struct pcb_source_cfg sc = {
		.mem_bytes = cfg->mem, .seed = cfg->seed, .zero_fraction = cfg->zero_pages,
		.zero_run_max = cfg->zero_model == PCB_ZERO_RUNS ? cfg->zero_run_max : 0,
		.demand_delay_ns = cfg->source_delay_ns, .sessions = 1, .verbose = (int)cfg->verbose,
		.key = r->net.key.len ? &r->net.key : NULL, .handshake_timeout_ms = 10000, .send_timeout_ms = 10000,
		.mem = r->precopy_src ? r->precopy_src : r->im.mem, .bytes_image = r->im.mem != NULL,
		.mem_fixed = !r->precopy_src && r->im.mem,
		.push_local_files = true,   /* the destination is this run */
		.image_mode = cfg->source_image, .image_report = &r->source_image,
		.send = r->source_send = source_send_of(cfg),
	};
	pid_t pid = pcb_source_fork(&sc, lfd, r->pin.cpu[PCB_PIN_SOURCE]);
	if (pid < 0 && errno == ECHILD) {   /* killed or crashed while it built its image */
		snprintf(why, whylen, "the source process ended before its image was ready");
		return PCB_EXIT_SOURCE_LOST;
	}
	if (pid < 0) {
		snprintf(why, whylen, "starting the source: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	r->source_pid = pid;
	return 0;
}

/* Bytes images: --image=FILE, or an application guest's database image
 * built from the seed (before the source is forked: not part of the run's
 * time).  0 or an exit code (reported). */
static int image_prepare(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_workload_ops *wl = r->wl;
	char why[512];
	int rc = 0;
	if (pcb_wl_is_app(wl) && cfg->image[0]) {
		pcb_err("invalid value for --image: workload %s builds its own database image from --seed", wl->name);
		return PCB_EXIT_USAGE;
	}
	if (cfg->bytes_image_remote && !strcmp(cfg->baseline, "run")) {
		pcb_err("invalid value for --baseline: 'run' (the source serves a bytes image this destination does not have)");
		return PCB_EXIT_USAGE;
	}
	if (pcb_wl_is_app(wl) && r->net.remote && !cfg->bytes_image_remote) {
		pcb_err("invalid value for --workload: '%s' needs its database image at the source "
			"(pcbench source --workload=%s with the same --seed, --mem and --workload-opt)", wl->name, wl->name);
		return PCB_EXIT_USAGE;
	}
	if (cfg->image[0] && r->net.remote) {
		pcb_err("invalid value for --image: '%s' (the source serves an image; `pcbench source --image`)", cfg->image);
		return PCB_EXIT_USAGE;
	}
	if (cfg->bytes_image_remote) {
		r->im.opaque = true;   /* its bytes are the source's: pages verified as they arrive, reads not checked */
		return 0;
	}
	if (cfg->image[0]) {
		rc = pcb_image_map_file(cfg->image, &r->img, &r->img_len, why, sizeof(why));
		r->img_file = true;
	} else if (pcb_wl_is_app(wl)) {
		uint64_t t0 = pcb_now_ns();
		rc = pcb_wl_build_image(wl, &r->prm, &r->img, why, sizeof(why));
		r->img_len = r->npages * PCB_PAGE_SIZE;
		r->img_build_ns = pcb_now_ns() - t0;
		pcb_log("%s: database image built in %.3f s", wl->name, (double)r->img_build_ns / 1e9);
	} else {
		return 0;
	}
	if (!rc && pcb_image_set_bytes(&r->im, r->img, r->npages) < 0) {
		snprintf(why, sizeof(why), "out of memory for the image's zero-page map");
		rc = PCB_EXIT_OSERR;
	}
	if (rc)
		pcb_err("%s", why);
	return rc;
}

void run_image_release(struct run *r)
{
	pcb_image_free_bytes(&r->im);
	if (r->img)
		munmap(r->img, r->img_len);
	r->img = NULL;
}

void run_free_precopy(struct run *r)
{
	if (r->precopy_src)
		munmap(r->precopy_src, r->npages * PCB_PAGE_SIZE);
	free(r->dest_written);
	r->precopy_src = NULL;
	r->dest_written = NULL;
}

/* Start the policy once on a scratch page state, so that a bad --policy-opt
 * value (or an unreadable input file) is refused before anything starts. */
static int policy_validate(struct run *r, const struct pcb_policy_ops *pol, char *why, size_t whylen)
{
	struct pcb_pagestate ps;
	struct pcb_policy p = r->polopts;
	if (pcb_ps_init(&ps, r->npages) < 0) {
		snprintf(why, whylen, "out of memory for the page state of %llu pages", (unsigned long long)r->npages);
		return PCB_EXIT_OSERR;
	}
	why[0] = 0;
	int rc = pcb_policy_open(&p, pol, &ps, r->npages, 1, why, whylen);
	rc = rc == -1 ? PCB_EXIT_USAGE : -rc;
	pcb_policy_close(&p);
	pcb_ps_free(&ps);
	return rc;
}

/* ---- phase 1: set up ------------------------------------------------------------------ */

/* --pager=process: the pager threads run in another process: no UFFDIO_MOVE
 * across mm, and the tracer attaches to this process before that one exists */
static int check_pager_process(const struct pcb_config *cfg)
{
	if (cfg->pager != PCB_PAGER_PROCESS)
		return 0;
	const char *bad = !pcb_install_find(cfg->install, false)->forkable ? "install" : cfg->trace_usdt == PCB_ON ? "trace-usdt" :
			  cfg->trace_messages == PCB_ON ? "trace-messages" : NULL;
	if (!bad)
		return 0;
	pcb_err("invalid value for --%s: '%s' cannot be combined with --pager=process%s", bad,
		!strcmp(bad, "install") ? cfg->install : "on",
		!strcmp(bad, "install") ? " (UFFDIO_MOVE cannot move pages between two processes)"
					: " (the probes and reads would be in the pager process)");
	return PCB_EXIT_USAGE;
}

/* an output file that cannot be written is found now, not after the run */
static int check_outputs(const struct pcb_config *cfg)
{
	const struct { const char *opt, *path; } outs[] = {
		{ "json", cfg->json }, { "timeline", cfg->timeline }, { "progress-csv", cfg->progress_csv },
		{ "record", cfg->record }, { "trace-events", cfg->trace_events },
	};
	for (unsigned i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
		int e = outs[i].path[0] ? pcb_check_writable(outs[i].path) : 0;
		if (e) {
			pcb_err("invalid value for --%s: '%s' cannot be written (%s)", outs[i].opt, outs[i].path, strerror(e));
			return PCB_EXIT_USAGE;
		}
	}
	return 0;
}

/* --policy-end and --channels as the policy's system has them, unless given:
 * both made explicit in the resolved configuration (and so in the JSON). */
static int policy_resolve_transport(struct run *r, const struct pcb_policy_ops *pol, struct pcb_config *cfg, char *why,
				    size_t whylen)
{
	enum pcb_policy_end end;
	const char *eo = cfg->policy_end == PCB_END_AUTO ? "auto" : pcb_choice_name("policy-end", cfg->policy_end);
	if (pcb_policy_transport(pol, &r->polopts, eo, &end, &cfg->channels, why, whylen) < 0)
		return PCB_EXIT_USAGE;
	cfg->policy_end = (int)end;
	if (end == PCB_POLICY_SOURCE && cfg->reconnect_timeout_ns) {
		snprintf(why, whylen, "invalid value for --reconnect-timeout: a policy at the source (--policy-end=source) "
			 "does not resume a lost connection yet");
		return PCB_EXIT_USAGE;
	}
	return pcb_huge_validate(cfg, why, whylen);
}

/* Bad input is refused before anything starts (source process, sockets, userfaultfd). */
int run_setup_check(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	char why[512];
	int rc;
	r->pol = pcb_policy_resolve(cfg->policy, why, sizeof(why));   /* a name or ./x.so */
	if (!r->pol) {
		pcb_err("%s", why);
		return PCB_EXIT_USAGE;
	}
	r->wl = pcb_workload_find(cfg->workload);
	if (pcb_policy_check(r->pol, why, sizeof(why)) < 0 || pcb_workload_check(r->wl, why, sizeof(why)) < 0) {
		pcb_err("%s", why);
		return PCB_EXIT_SOFTWARE;
	}
	if ((rc = pcb_huge_validate(cfg, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	if ((rc = check_pager_process(cfg)) != 0)
		return rc;
	if (!cfg->duration_ns && !cfg->ops) {
		pcb_err("invalid value for --duration: '0' needs --ops to bound the run");
		return PCB_EXIT_USAGE;
	}
	return check_outputs(cfg);
}

/* The image, the host, pinning, the workload's and policy's options, the network. */
int run_setup_params(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	char why[512];
	int rc;
	pcb_verbose = (int)cfg->verbose;
	r->npages = cfg->mem / PCB_PAGE_SIZE;
	pcb_image_init(&r->im, cfg->seed, r->npages, cfg->zero_pages);
	if (cfg->zero_model == PCB_ZERO_RUNS && pcb_image_zero_runs(&r->im, cfg->zero_run_max) < 0) {
		pcb_err("out of memory for the image's zero-page map");
		return PCB_EXIT_OSERR;
	}
	pcb_sysinfo_read(&r->sys);
	if (pcb_pin_parse(cfg->pin, &r->pin, why, sizeof(why)) < 0) {
		pcb_err("%s", why);
		return PCB_EXIT_USAGE;
	}
	r->t_start_ns = pcb_now_ns();
	run_catch_stop_signals();
	r->prm = (struct pcb_wl_params){ .npages = r->npages, .seed = cfg->seed, .nvcpus = cfg->vcpus,
					 .zipf_theta = cfg->zipf_theta, .im = &r->im };
	if (pcb_wl_parse_opts(r->wl, cfg->workload_opt, &r->prm, why, sizeof(why)) < 0 ||
	    pcb_policy_parse_opts(&r->polopts, r->pol, cfg->policy_opt, why, sizeof(why)) < 0 ||
	    (cfg->replay[0] && pcb_policy_replay_file(&r->polopts, r->pol, cfg->replay, why, sizeof(why)) < 0)) {
		pcb_err("%s", why);
		return PCB_EXIT_USAGE;
	}
	if ((rc = policy_validate(r, r->pol, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	/* the resolved configuration is this run's own copy (pcb_run_migration) */
	if ((rc = policy_resolve_transport(r, r->pol, (struct pcb_config *)cfg, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	if ((rc = pcb_net_prepare(cfg, &r->net)) != 0 || (rc = image_prepare(r)) != 0)
		return rc;
	r->local = !strcmp(cfg->policy, "local");
	if (r->local && cfg->precopy_ns) {
		pcb_err("invalid value for --precopy: --policy=local is not a migration");
		return PCB_EXIT_USAGE;
	}
	return 0;
}

/* --baseline=FILE: a progress CSV from an earlier --policy=local run of the same guest */
static int load_baseline(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	struct pcb_progress_meta m;
	char why[512];
	int rc = pcb_progress_load_csv(cfg->baseline, &r->base, &m, why, sizeof(why));
	if (rc) {
		pcb_err("--baseline: %s", why);
		return rc;
	}
	const char *bad = strcmp(m.policy, "local") ? "policy" : strcmp(m.workload, cfg->workload) ? "workload" :
			  m.seed != cfg->seed ? "seed" : m.vcpus != cfg->vcpus ? "vcpus" :
			  m.bucket_ms != cfg->bucket_ms ? "bucket-ms" : strcmp(m.guest, pcb_choice_name("guest", cfg->guest)) ? "guest" : NULL;
	if (bad) {
		pcb_err("invalid value for --baseline: '%s' is not a --policy=local run of this guest (its %s differs: "
			"policy=%s workload=%s seed=%llu vcpus=%u bucket_ms=%u guest=%s)", cfg->baseline, bad, m.policy,
			m.workload, (unsigned long long)m.seed, m.vcpus, m.bucket_ms, m.guest);
		return PCB_EXIT_USAGE;
	}
	return 0;
}

static int setup_baseline(struct run *r)
{
	int rc = 0;
	if (!strcmp(r->cfg->baseline, "run"))
		rc = run_baseline(r);
	else if (strcmp(r->cfg->baseline, "none"))
		rc = load_baseline(r);
	else
		return 0;
	r->have_base = rc == 0;
	return rc;
}

/* --precopy: the source's memory, shared with the forked source */
static int setup_precopy(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	if (!cfg->precopy_ns)
		return 0;
	if (r->net.remote) {
		pcb_err("invalid value for --precopy: the guest runs at the source only when pcbench forks it (not with pcbench dest)");
		return PCB_EXIT_USAGE;
	}
	if (!pcb_install_find(cfg->install, false)->per_run_api) {   /* pre-copy installs through the per-run API */
		pcb_err("invalid value for --install: '%s' (--precopy installs with copy)", cfg->install);
		return PCB_EXIT_USAGE;
	}
	r->precopy_src = pcb_precopy_source_mem(&r->im, r->npages);
	r->dest_written = calloc((r->npages + 63) / 64, sizeof(uint64_t));
	if (!r->precopy_src || !r->dest_written) {
		pcb_err("out of memory for the source's memory (--precopy)");
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* the huge-page pool, the source (forked, or pcbench dest's remote one), the pager */
static int setup_source_and_pager(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	char why[512];
	int rc;
	if (pcb_page_size_bytes(cfg) > PCB_PAGE_SIZE &&
	    (rc = pcb_huge_check_pool(PCB_HUGE_SYSDIR, r->npages * PCB_PAGE_SIZE / pcb_page_size_bytes(cfg), why, sizeof(why)))) {
		pcb_err("%s", why);
		return rc;
	}
	if (r->net.remote)
		r->port = r->net.port;   /* pcbench dest: the source runs elsewhere */
	else if ((rc = fork_source(r, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	struct pcb_pager_cfg pc = {
		.npages = r->npages, .nvcpus = cfg->vcpus, .policy = r->pol, .policy_opts = &r->polopts,
		.batch_pages = cfg->batch_pages,
		.window = cfg->window, .io_timeout_ns = cfg->io_timeout_ns,
		.host = r->net.remote ? r->net.host : cfg->host, .port = r->port,
		.seed = cfg->seed, .zero_threshold = r->im.zero_threshold,
		.zero_run_max = cfg->zero_model == PCB_ZERO_RUNS ? cfg->zero_run_max : 0,
		.install = cfg->install, .install_batch = cfg->install_batch,
		.zero_inline = cfg->zero_inline ? (int)cfg->zero_inline : -1,
		.huge = pcb_page_size_bytes(cfg) > PCB_PAGE_SIZE, .process = cfg->pager == PCB_PAGER_PROCESS,
		.pin_demand = (unsigned)(r->pin.cpu[PCB_PIN_DEMAND] + 1), .pin_bg = (unsigned)(r->pin.cpu[PCB_PIN_BACKGROUND] + 1),
		.pin_install = (unsigned)(r->pin.cpu[PCB_PIN_INSTALL] + 1),
		.installer = (int)cfg->installer,
		.kernel_faults = cfg->guest == PCB_GUEST_KVM,
		.key = r->net.key.len ? &r->net.key : NULL, .reconnect_timeout_ns = cfg->reconnect_timeout_ns,
		.link_bps = r->net.link_bps, .link_rtt_ns = r->net.link_rtt_ns,
		.push = cfg->policy_end == PCB_POLICY_SOURCE, .policy_spec = cfg->policy,
		.channels = cfg->channels, .bytes_image = r->im.mem || r->im.opaque,
		.resend_inflight = cfg->inflight == PCB_INFLIGHT_RESEND,
		.demand_replies = (int)cfg->demand_replies,
	};
	if ((rc = pcb_pager_create(&pc, &r->pager, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	/* shared with the policy, which runs in the pager process with --pager=process */
	void *ft = mmap(NULL, r->npages * 4, PROT_READ | PROT_WRITE,
			(cfg->pager != PCB_PAGER_PROCESS ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS, -1, 0);
	if (ft == MAP_FAILED) {
		pcb_err("out of memory for the first-touch record");
		return PCB_EXIT_OSERR;
	}
	r->first_touch = ft;
	/* a real destination has no first-touch record: the policy sees it only with its oracle knob */
	r->oracle_first_touch = pcb_policy_oracle_first_touch(r->pol, &r->polopts);
	if (r->oracle_first_touch)
		pcb_pager_set_first_touch(r->pager, r->first_touch);
	return 0;
}

/* the vCPU threads, started and parked until the switch-over */
static int setup_guest(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	char why[512];
	const _Atomic uint64_t *faults[PCB_MAX_VCPUS];
	for (unsigned v = 0; v < cfg->vcpus; v++)
		faults[v] = pcb_pager_vcpu_faults(r->pager, v);
	struct pcb_guest_cfg gc = {
		.ops = r->wl,
		.prm = r->prm,
		.region = pcb_pager_region(r->pager), .im = &r->im, .write_ratio = cfg->write_ratio,
		.duration_ns = cfg->duration_ns, .ops_limit = cfg->ops, .first_touch = r->first_touch,
		.bucket_ns = (uint64_t)cfg->bucket_ms * PCB_NSEC_PER_MSEC, .record = cfg->record[0] != 0,
		.kvm = cfg->guest == PCB_GUEST_KVM,
		.precopy_region = r->precopy_src, .dest_written = r->dest_written,
		.on_end = guest_ended, .on_end_arg = r->pager,
	};
	int rc = pcb_guest_create(&gc, faults, &r->guest, why, sizeof(why));
	if (rc) {
		pcb_err("%s", why);
		return rc;
	}
	r->stranded = true;   /* vCPU threads exist from here until they are joined */
	if ((rc = pcb_guest_start(r->guest)) != 0) {
		pcb_err("cannot start the guest threads");
		return rc;
	}
	for (unsigned v = 0; v < cfg->vcpus; v++) {
		pcb_pager_register_vcpu(r->pager, v, pcb_guest_tid(r->guest, v));
		if (r->pin.cpu[PCB_PIN_GUEST] >= 0)
			pcb_pin_tid(pcb_guest_tid(r->guest, v), r->pin.cpu[PCB_PIN_GUEST]);
	}
	return 0;
}

/* --trace: the BPF programs, attached to this process and the vCPU threads */
static int setup_trace(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	if (cfg->trace == PCB_OFF) {
		snprintf(r->trace_why, sizeof(r->trace_why), "disabled with --trace=off");
		return 0;
	}
	struct pcb_trace_opts to = {
		.pid = getpid(), .region_start = (uintptr_t)pcb_pager_region(r->pager),
		.region_len = r->npages * PCB_PAGE_SIZE, .events = cfg->trace_events[0] != 0,
		.events_path = cfg->trace_events[0] ? cfg->trace_events : NULL,
		.usdt = cfg->trace_usdt == PCB_ON,
		.usdt_binary = "/proc/self/exe", .verbose = (int)cfg->verbose,
		/* which faults' messages the pager read: counts as the pager's */
		.msgs = cfg->trace_messages == PCB_ON ||
			(cfg->trace_messages == PCB_AUTO && cfg->trace == PCB_ON && cfg->pager != PCB_PAGER_PROCESS),
	};
	int rc = pcb_trace_start(&to, &r->trace, r->trace_why, sizeof(r->trace_why));
	if (rc && cfg->trace == PCB_ON) {
		pcb_err("--trace=on: %s", r->trace_why);
		return rc;   /* the vCPUs stay parked: the run is stranded */
	}
	if (rc) {
		pcb_log("tracing off: %s", r->trace_why);
		r->trace = NULL;
	}
	for (unsigned v = 0; r->trace && v < cfg->vcpus; v++)
		pcb_trace_add_thread(r->trace, pcb_guest_tid(r->guest, v));
	return 0;
}

/* Everything a migration needs before the switch-over, in order; the vCPU
 * threads exist (parked) once setup_guest succeeded. */
int run_setup_migration(struct run *r)
{
	int rc;
	if ((rc = setup_baseline(r)) || (rc = setup_precopy(r)) || (rc = setup_source_and_pager(r)) ||
	    (rc = setup_guest(r)) || (rc = setup_trace(r)))
		return rc;
	return 0;
}
