#include "run/run.h"
#include "run/metrics.h"
#include "run/progress.h"
#include "run/precopy.h"
#include "run/hugepages.h"
#include "trace/trace.h"
#include "run/perf.h"
#include "common/pin.h"
#include "cli/netcmd.h"
#include "common/hist.h"
#include "common/image.h"
#include "common/json.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include "pager/pager.h"
#include "wire/proto.h"
#include "source/source.h"
#include "workloads/workload.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PCB_SCHEMA_VERSION 1

struct run {
	const struct pcb_config *cfg;
	struct pcb_sysinfo sys;
	struct pcb_image im;
	uint64_t npages;
	pid_t source_pid;
	uint16_t port;
	struct pcb_pager *pager;
	struct pcb_guest *guest;
	struct pcb_pager_stats ps;
	struct pcb_verify ver;
	_Atomic uint32_t *first_touch;
	struct pcb_policy polopts;   /* --policy-opt, parsed before anything starts */
	struct pcb_prefetch pf;
	struct pcb_trace *trace;
	char trace_why[256];
	struct pcb_net net;
	char missing[1024];          /* pages that never arrived (fatal mid-run) */
	bool verified;
	bool local;                  /* --policy=local: no migration */
	uint8_t *local_region;
	struct pcb_progress prog;
	uint8_t *precopy_src;        /* --precopy: the source's memory (shared with the source process) */
	_Atomic uint64_t *dest_written;
	struct pcb_precopy_stats pc;
	struct pcb_pin pin;
	struct pcb_mem_report mem;
	const struct pcb_policy_ops *pol;
	const struct pcb_workload_ops *wl;
	struct pcb_wl_params prm;
	struct pcb_progress base;    /* --baseline: the local run's progress */
	bool have_base;
	bool stranded;               /* vCPU threads not joined, or the pager failed mid-run: nothing is torn down */
	struct pcb_cpu_report cpu;
	bool oracle_first_touch;     /* the policy's oracle=first-touch knob: it reads the guest's record */
	int64_t baseline_cpu_ns;     /* --baseline=run: the reference run's CPU time (not in results.cpu) */
	uint64_t t_drain_start_ns;   /* the pager was told the guest ended */
	uint64_t t_start_ns, t_end_ns;
	int exit_code;
	bool interrupted;            /* SIGINT / SIGTERM: the report holds what was measured so far */
	char error[512];
	/* bytes images: an application guest's database image, or --image=FILE */
	uint8_t *img;
	size_t img_len;
	bool img_file;
	uint64_t img_build_ns;
	struct pcb_app_report app;
	bool app_checked;
};

/* ---- SIGINT / SIGTERM ----------------------------------------------------------
 * The handler only records the signal; the run's waiting loops look at it
 * every 20-100 ms and end the run with a report marked incomplete
 * (interrupt_midrun), every child reaped, exit 128 + the signal (130, 143). */
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig)
{
	stop_sig = sig;
}

static void catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* The last vCPU has finished (it calls this): start the drain now, not at the main thread's next poll. */
static void guest_ended(void *arg, uint64_t t_end_ns)
{
	(void)t_end_ns;   /* the report takes the vCPUs' own end times (pcb_guest_end_ns) */
	pcb_pager_guest_done(arg);
}

/* ---- source process ---------------------------------------------------------- */

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
		.push_local_files = true,   /* the destination is this run */
	};
	pid_t pid = pcb_source_fork(&sc, lfd, r->pin.cpu[PCB_PIN_SOURCE]);
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	r->source_pid = pid;
	return 0;
}

static int64_t rusage_ns(const struct rusage *ru)
{
	return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000ll +
	       ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000ll;
}

/* Reap the source; its CPU time (wait4's rusage) goes to r->cpu.source_ns. */
static void reap_source(struct run *r, bool kill_it)
{
	struct rusage ru;
	if (pcb_reap_child(r->source_pid, kill_it, 2000, &ru))   /* up to 2 s, then force */
		r->cpu.source_ns = rusage_ns(&ru);
	r->source_pid = 0;
}

/* results.cpu: what the process, its threads and the source used (after the joins). */
static void measure_cpu(struct run *r)
{
	struct pcb_cpu_report *c = &r->cpu;
	struct rusage ru;
	c->process_ns = getrusage(RUSAGE_SELF, &ru) == 0 ? rusage_ns(&ru) - r->baseline_cpu_ns : -1;
	c->main_ns = (int64_t)pcb_thread_cpu_ns();
	c->vcpus_ns = 0;
	for (unsigned v = 0; r->guest && v < r->cfg->vcpus; v++)
		c->vcpus_ns += (int64_t)pcb_guest_result(r->guest, v)->cpu_ns;
	c->demand_ns = c->background_ns = c->installer_ns = c->pager_process_ns = -1;
	if (r->pager) {
		c->demand_ns = (int64_t)r->ps.demand_cpu_ns;
		c->background_ns = (int64_t)r->ps.background_cpu_ns;
		c->installer_ns = (int64_t)r->ps.install_cpu_ns;
		if (r->cfg->pager == PCB_PAGER_PROCESS && getrusage(RUSAGE_CHILDREN, &ru) == 0)
			c->pager_process_ns = rusage_ns(&ru) - (c->source_ns > 0 ? c->source_ns : 0);
	}
	c->wall_ns = pcb_now_ns() - r->ps.t_switchover_ns;
}

/* ---- reports ------------------------------------------------------------------------ */

static void uffd_json(struct pcb_json *j, const struct pcb_uffd_info *u)
{
	pcb_json_obj_begin(j, "userfaultfd");
	pcb_json_str(j, "opened_via", u->opened_via);
	pcb_json_u64(j, "features_supported", u->features_supported);
	pcb_json_arr_begin(j, "features_supported_names");
	for (unsigned b = 0; b < 64; b++)
		if (u->features_supported & (1ull << b)) {
			const char *n = pcb_uffd_feature_name(b);
			char tmp[24];
			snprintf(tmp, sizeof(tmp), "bit%u", b);
			pcb_json_str(j, NULL, n ? n : tmp);
		}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "features_enabled", u->features_enabled);
	pcb_json_u64(j, "ioctls_range", u->ioctls_range);
	pcb_json_obj_end(j);
}

static void merged_hists(struct run *r, struct pcb_hist *fault, struct pcb_hist *op)
{
	pcb_hist_init(fault);
	pcb_hist_init(op);
	for (unsigned v = 0; v < r->cfg->vcpus; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		pcb_hist_merge(fault, &vr->fault_lat);
		pcb_hist_merge(op, &vr->op_lat);
	}
}

/* How far the kernel's fault->running latency agrees with the guest's own
 * measurement of the same faults: a constant offset (exception entry, return
 * to user, clock reads) is expected; the ratios after removing it should be ~1. */
static void trace_agreement_json(struct run *r, struct pcb_json *j, const struct pcb_hist *user)
{
	struct pcb_trace_stats *ts = calloc(1, sizeof(*ts));
	if (!ts || pcb_trace_read(r->trace, ts) < 0) {
		free(ts);
		return;
	}
	/* --guest=kvm: the vCPU threads' faults are KVM's (bpf.kvm) */
	const struct pcb_hist *k = &ts->hist[r->cfg->guest != PCB_GUEST_KVM ? FL_H_FAULT_TO_RUNNING
									  : FL_H_KVM_FAULT_TO_RUNNING];
	pcb_json_obj_begin(j, "bpf_vs_guest");
	pcb_json_u64(j, "guest_faults", user->count);
	pcb_json_u64(j, "kernel_faults", k->count);   /* delivered faults that blocked (fault_to_running) */
	if (r->cfg->guest != PCB_GUEST_KVM)   /* every fault that blocked: the guest's definition of a fault */
		pcb_json_u64(j, "kernel_faults_blocked", ts->counter[FL_C_BLOCKED_ALL]);
	if (user->count && k->count) {
		double off = (double)pcb_hist_percentile(user, 50) - (double)pcb_hist_percentile(k, 50);
		pcb_json_dbl(j, "p50_offset_ns", off);
		static const double pcts[] = { 90, 99 };
		static const char *const names[] = { "p90_ratio_after_offset", "p99_ratio_after_offset" };
		for (int i = 0; i < 2; i++) {
			double kv = (double)pcb_hist_percentile(k, pcts[i]);
			pcb_json_dbl(j, names[i], kv > 0 ? ((double)pcb_hist_percentile(user, pcts[i]) - off) / kv : 0);
		}
	}
	pcb_json_obj_end(j);
	free(ts);
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

static void image_release(struct run *r)
{
	pcb_image_free_bytes(&r->im);
	if (r->img)
		munmap(r->img, r->img_len);
	r->img = NULL;
}

/* Updates the guest made, at the source (--precopy) and here. */
static uint64_t app_updates(const struct run *r)
{
	uint64_t n = 0;
	for (unsigned v = 0; v < r->cfg->vcpus; v++)
		n += pcb_guest_result(r->guest, v)->writes + pcb_guest_result(r->guest, v)->precopy_writes;
	return n;
}

static void app_json(struct run *r, struct pcb_json *j)
{
	if (!pcb_wl_is_app(r->wl))
		return;
	const struct pcb_app_report *a = &r->app;
	pcb_json_obj_begin(j, "application");
	pcb_json_bool(j, "checked", r->app_checked);
	pcb_json_str(j, "engine", a->engine);
	pcb_json_str(j, "integrity_check", a->integrity);
	pcb_json_u64(j, "rows", a->rows);
	pcb_json_u64(j, "rows_bad", a->rows_bad);
	pcb_json_u64(j, "versions", a->versions);
	pcb_json_u64(j, "updates_done", app_updates(r));
	char d[24];
	snprintf(d, sizeof(d), "%016llx", (unsigned long long)a->rows_digest);
	pcb_json_str(j, "rows_digest", d);
	pcb_json_u64(j, "db_area_bytes", a->db_bytes);
	pcb_json_u64(j, "db_used_bytes", a->db_used_bytes);
	pcb_json_u64(j, "heap_bytes", a->heap_bytes);
	pcb_json_u64(j, "heap_peak_bytes", a->heap_peak_bytes);
	pcb_json_u64(j, "image_build_ns", r->img_build_ns);
	pcb_json_str(j, "method", "the engine's own check (PRAGMA integrity_check), then every row read back in key order: "
		     "its value must be the one its key and version give, the versions must sum to the updates the guest "
		     "made, rows_digest (xxh3-64 of key, version, value) equals a local run's after the same ops");
	pcb_json_obj_end(j);
}

/* Application guests: the engine's check of the database as the guest left
 * it; a failure is a verification failure. */
static void app_check(struct run *r, struct pcb_guest *g)
{
	char why[512];
	int rc = pcb_guest_app_check(g, &r->app, why, sizeof(why));
	r->app_checked = rc == 0;
	if (!r->exit_code && rc) {
		r->exit_code = rc;
		snprintf(r->error, sizeof(r->error), "%s", why);
		pcb_err("%s", why);
	} else if (!r->exit_code && (strcmp(r->app.integrity, "ok") || r->app.rows_bad || r->app.versions != app_updates(r))) {
		r->exit_code = PCB_EXIT_VERIFY;
		snprintf(r->error, sizeof(r->error), "database check failed: integrity_check '%s', %llu bad rows, versions %llu "
			 "for %llu updates", r->app.integrity, (unsigned long long)r->app.rows_bad,
			 (unsigned long long)r->app.versions, (unsigned long long)app_updates(r));
	}
}

/* Stall intervals of every vCPU, for the all-vCPUs blocktime; false if a vCPU has none recorded (KVM guest). */
static uint64_t blocktime_all(struct run *r, bool *known)
{
	const struct pcb_stall *st[PCB_MAX_VCPUS];
	uint64_t n[PCB_MAX_VCPUS];
	*known = true;
	for (unsigned v = 0; v < r->cfg->vcpus && v < PCB_MAX_VCPUS; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		st[v] = vr->stalls;
		n[v] = vr->nstalls;
		if (vr->faults && !vr->stalls)
			*known = false;
	}
	return *known ? pcb_blocktime_all(st, n, r->cfg->vcpus) : 0;
}

static void blocktime_json(struct run *r, struct pcb_json *j)
{
	uint64_t sum = 0;
	bool known;
	pcb_json_obj_begin(j, "blocktime");
	pcb_json_arr_begin(j, "per_vcpu_ns");
	for (unsigned v = 0; v < r->cfg->vcpus; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		pcb_json_u64(j, NULL, vr->blocktime_ns);
		sum += vr->blocktime_ns;
	}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "sum_vcpus_ns", sum);   /* every vCPU's stalls added up */
	uint64_t all = blocktime_all(r, &known);
	if (known)   /* QEMU's postcopy-blocktime: every vCPU blocked at once */
		pcb_json_u64(j, "all_vcpus_ns", all);
	else
		pcb_json_null(j, "all_vcpus_ns");
	pcb_json_u64(j, "total_ns", sum);       /* = sum_vcpus_ns (the name before both existed) */
	pcb_json_str(j, "definitions", "sum_vcpus_ns: the vCPUs' stalls added up; all_vcpus_ns: time during which every "
				       "vCPU was stalled at once (QEMU postcopy-blocktime); docs/metrics.md");
	pcb_json_obj_end(j);
}

static void json_header(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "schema_version", PCB_SCHEMA_VERSION);
	pcb_json_str(j, "tool", "pcbench");
	pcb_json_str(j, "version", PCB_VERSION);
	pcb_json_str(j, "git_revision", PCB_GITREV);
	pcb_json_str(j, "status", r->interrupted ? "interrupted" : r->exit_code ? "failed" : "ok");
	pcb_json_bool(j, "complete", !r->interrupted);
	pcb_json_i64(j, "exit_code", r->exit_code);
	if (r->error[0])
		pcb_json_str(j, "error", r->error);
	pcb_config_json(cfg, j, "config");
	pcb_json_obj_begin(j, "system");
	pcb_sysinfo_json(&r->sys, j, "host");
	if (r->pager)
		uffd_json(j, pcb_pager_uffd_info(r->pager));
	pcb_json_obj_end(j);

}

static void json_time(struct run *r, struct pcb_json *j)
{
	const struct pcb_pager_stats *s = &r->ps;
	uint64_t mig = s->t_complete_ns ? s->t_complete_ns - s->t_switchover_ns : 0;
	pcb_json_obj_begin(j, "time");
	pcb_json_u64(j, "total_migration_ns", mig);
	pcb_json_u64(j, "run_ns", r->t_end_ns - r->t_start_ns);
	pcb_json_u64(j, "guest_ns", s->t_guest_done_ns ? s->t_guest_done_ns - s->t_switchover_ns : 0);
	pcb_json_bool(j, "completed_while_guest_ran", s->t_complete_ns && s->t_complete_ns <= s->t_guest_done_ns);
	if (!r->local && r->t_drain_start_ns >= s->t_guest_done_ns)   /* guest end (the last vCPU's) -> drain asked for */
		pcb_json_u64(j, "drain_start_after_guest_end_ns", r->t_drain_start_ns - s->t_guest_done_ns);
	pcb_json_obj_end(j);

}

static void json_pages(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "pages");
	pcb_json_u64(j, "page_size", pcb_page_size_bytes(cfg));     /* the guest's pages (--page-size) */
	pcb_json_u64(j, "unit_bytes", PCB_PAGE_SIZE);               /* every count in this object is in 4 KiB pages */
	pcb_json_u64(j, "total", r->npages);
	/* the image: where its zero pages lie (--zero-model) and how many it has */
	pcb_json_str(j, "image_zero_model", r->im.mem || r->im.opaque ? "bytes" : pcb_choice_name("zero-model", cfg->zero_model));
	if (!r->im.opaque)
		pcb_json_u64(j, "image_zero_pages", pcb_image_zero_count(&r->im));
	if (pcb_page_size_bytes(cfg) > PCB_PAGE_SIZE)
		pcb_json_u64(j, "huge_installs", s->huge_installs);   /* 2 MiB UFFDIO_COPYs */
	pcb_json_u64(j, "demand", s->pages_demand);
	pcb_json_u64(j, "background", s->pages_background);
	pcb_json_u64(j, "drain", s->pages_drain);
	pcb_json_u64(j, "zero", s->zero_demand + s->zero_background + s->zero_drain);
	pcb_json_u64(j, "zero_demand", s->zero_demand);
	pcb_json_u64(j, "zero_background", s->zero_background);
	pcb_json_u64(j, "zero_drain", s->zero_drain);
	pcb_json_u64(j, "eexist_races", s->eexist_demand + s->eexist_background);
	/* pages received twice: each second arrival is an install that found the page there (docs/metrics.md) */
	pcb_json_u64(j, "sent_twice", s->eexist_demand + s->eexist_background);
	pcb_json_str(j, "inflight", pcb_choice_name("inflight", cfg->inflight));
	if (cfg->precopy_ns)
		pcb_json_u64(j, "precopy", r->npages - r->pc.missing_at_switchover);   /* present at switch-over */
	pcb_json_u64(j, "eexist_demand", s->eexist_demand);
	pcb_json_u64(j, "eexist_background", s->eexist_background);
	pcb_json_obj_end(j);

}

static void json_policy(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	/* where the policy ran; pushing: what the source reported at the end of its stream */
	pcb_json_obj_begin(j, "policy");
	pcb_json_str(j, "end", pcb_choice_name("policy-end", cfg->policy_end));
	if (cfg->policy_end == PCB_POLICY_SOURCE) {
		pcb_json_bool(j, "push_ended", s->push_ended);
		pcb_json_u64(j, "pushed_pages", s->push_pages);
		pcb_json_u64(j, "pushed_batches", s->push_batches);
		pcb_json_u64(j, "source_sendq_max_bytes", s->push_sendq_max);   /* SIOCOUTQ high-water mark */
		pcb_json_u64(j, "source_sndbuf_bytes", s->push_sndbuf);         /* SO_SNDBUF as the kernel set it */
	}
	pcb_json_obj_end(j);

}

static void json_faults(struct run *r, struct pcb_json *j, const struct pcb_hist *fault)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "faults");
	pcb_json_u64(j, "count", fault->count);   /* accesses that blocked (docs/metrics.md) */
	uint64_t undelivered = 0;
	for (unsigned v = 0; v < cfg->vcpus; v++)
		undelivered += pcb_guest_result(r->guest, v)->faults_undelivered;
	pcb_json_u64(j, "undelivered", undelivered);   /* ... during which the pager read no message of that vCPU */
	pcb_json_u64(j, "uffd_messages", s->faults);
	pcb_json_u64(j, "on_present_page", s->faults_present);
	pcb_json_u64(j, "on_inflight_page", s->faults_inflight);
	/* in a background batch in flight, not requested: waited for (--inflight=wait, or criu) */
	pcb_json_u64(j, "on_queued_page", s->faults_queued);
	pcb_json_u64(j, "unattributed", s->faults_unattributed);
	pcb_json_str(j, "latency_source", "guest thread: CLOCK_MONOTONIC around the faulting access");
	pcb_json_dbl(j, "histogram_relative_error", pcb_hist_error_bound());
	pcb_hist_json(j, "latency", fault, 1);
	pcb_json_obj_end(j);

}

static void json_pager(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "pager");
	pcb_json_str(j, "mode", pcb_choice_name("pager", cfg->pager));   /* thread | process: where the pager threads ran */
	/* what the policy could see: faults and its own installs, or also the guest's first-touch record */
	pcb_json_str(j, "policy_oracle", r->oracle_first_touch ? "first-touch" : "none");
	pcb_json_i64(j, "pid", r->pager ? pcb_pager_pid(r->pager) : 0);
	pcb_json_i64(j, "loader_pid", getpid());
	pcb_json_u64(j, "demand_requests", s->demand_requests);
	if (pcb_page_size_bytes(cfg) > PCB_PAGE_SIZE)   /* one request per huge page, several pages each */
		pcb_json_u64(j, "demand_pages_requested", s->demand_pages_requested);
	pcb_json_u64(j, "background_batches", s->bg_batches);
	pcb_json_u64(j, "background_inflight_max", s->bg_inflight_max);
	pcb_json_u64(j, "demand_answered_in_stream", s->demand_in_stream);   /* pushing: SENT, the page came in the stream */   /* most batches asked for and not ended */
	pcb_json_u64(j, "background_pages_requested", s->bg_pages_requested);
	pcb_hist_json(j, "demand_round_trip", &s->demand_rtt, 0);
	pcb_hist_json(j, "demand_service", &s->demand_service, 0);
	pcb_json_str(j, "demand_replies", s->reply_thread ? "thread" : "inline");   /* --demand-replies, resolved */
	pcb_json_i64(j, "demand_thread_cpu", s->demand_cpu);
	pcb_json_i64(j, "background_thread_cpu", s->background_cpu);
	pcb_perf_json(j, cfg, &r->pin, s, &r->mem);
	pcb_json_obj_end(j);

}

static void json_transport(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "transport");
	/* --channels=2: "demand" and "background"; --channels=1: "shared" (the one connection),
	 * with the demand replies it carried */
	static const char *const cn[2] = { "demand", "background" };
	pcb_json_u64(j, "channels", s->channels);
	for (int ch = s->channels == 1 ? 1 : 0; ch < 2; ch++) {
		pcb_json_obj_begin(j, s->channels == 1 ? "shared" : cn[ch]);
		if (s->channels == 1)
			pcb_json_u64(j, "demand_replies_received", s->shared_demand_frames);
		pcb_json_u64(j, "bytes_sent", s->chan[ch].bytes_tx);
		pcb_json_u64(j, "bytes_received", s->chan[ch].bytes_rx);
		pcb_json_u64(j, "frames_sent", s->chan[ch].frames_tx);
		pcb_json_u64(j, "frames_received", s->chan[ch].frames_rx);
		pcb_json_u64(j, "frames_rejected", s->chan[ch].bad_frames);
		pcb_json_obj_end(j);
	}
	pcb_json_str(j, "kind", "tcp");
	pcb_json_str(j, "address", r->net.remote ? r->net.host : cfg->host);
	pcb_json_u64(j, "port", r->port);
	pcb_json_bool(j, "source_forked", !r->net.remote);
	pcb_json_bool(j, "authenticated", r->net.key.len > 0 && !r->net.key.handshake_only);
	pcb_json_bool(j, "per_run_secret", r->net.key.handshake_only);
	pcb_json_obj_end(j);

}

static void json_guest(struct run *r, struct pcb_json *j, const struct pcb_hist *op)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "guest");
	pcb_json_str(j, "kind", pcb_choice_name("guest", cfg->guest));
	if (r->guest && pcb_guest_kvm_tsc_khz(r->guest))
		pcb_json_u64(j, "kvm_tsc_khz", pcb_guest_kvm_tsc_khz(r->guest));
	uint64_t ops = 0, reads = 0, writes = 0, mism = 0;
	pcb_json_arr_begin(j, "vcpus");
	for (unsigned v = 0; v < cfg->vcpus; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		pcb_json_obj_begin(j, NULL);
		pcb_json_u64(j, "vcpu", v);
		pcb_json_i64(j, "tid", vr->tid);
		pcb_json_i64(j, "cpu_start", vr->cpu_start);
		pcb_json_i64(j, "cpu_end", vr->cpu_end);
		pcb_json_u64(j, "ops", vr->ops);
		pcb_json_u64(j, "faults", vr->faults);
		pcb_json_u64(j, "faults_undelivered", vr->faults_undelivered);
		pcb_json_u64(j, "blocktime_ns", vr->blocktime_ns);
		pcb_json_u64(j, "cpu_ns", vr->cpu_ns);
		pcb_json_u64(j, "read_mismatches", vr->read_mismatch);
		if (vr->kvm_wall_ns) {   /* the guest's TSC-timed run vs the host's clock around KVM_RUN */
			pcb_json_u64(j, "kvm_guest_tsc_ns", vr->kvm_tsc_ns);
			pcb_json_u64(j, "kvm_host_wall_ns", vr->kvm_wall_ns);
		}
		pcb_json_obj_end(j);
		ops += vr->ops;
		reads += vr->reads;
		writes += vr->writes;
		mism += vr->read_mismatch;
	}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "ops", ops);
	pcb_json_u64(j, "reads", reads);
	pcb_json_u64(j, "writes", writes);
	pcb_json_u64(j, "read_mismatches", mism);
	double gs = s->t_guest_done_ns ? pcb_ns_to_s(s->t_guest_done_ns - s->t_switchover_ns) : 0;
	pcb_json_dbl(j, "ops_per_sec", gs > 0 ? (double)ops / gs : 0);
	pcb_hist_json(j, "op_latency", op, 0);
	pcb_json_obj_end(j);

}

static void json_prefetch(struct run *r, struct pcb_json *j)
{
	if (pcb_wl_is_app(r->wl)) {
		pcb_json_obj_begin(j, "prefetch");
		pcb_json_bool(j, "measured", false);
		pcb_json_str(j, "why", "an application guest's loads and stores are not seen: no first touches, so no hit rate, "
			     "accuracy or lead time (faults, blocktime and progress are measured)");
		pcb_json_obj_end(j);
	} else {
		pcb_prefetch_json(&r->pf, j, "prefetch");
	}
}

static void json_verify(struct run *r, struct pcb_json *j)
{
	const struct pcb_config *cfg = r->cfg;
	pcb_json_obj_begin(j, "verify");
	pcb_json_bool(j, "done", r->verified);
	pcb_json_u64(j, "pages_verified", r->ver.pages_verified);
	pcb_json_u64(j, "pages_corrupt", r->ver.pages_corrupt);
	pcb_json_u64(j, "pages_missing", r->ver.pages_missing);
	pcb_json_u64(j, "bad_write_stamps", r->ver.stamps_bad);
	pcb_json_arr_begin(j, "first_bad_pages");
	for (unsigned i = 0; i < r->ver.nfirst_bad; i++)
		pcb_json_u64(j, NULL, r->ver.first_bad[i]);
	pcb_json_arr_end(j);
	if (r->local && r->im.mem)
		pcb_json_str(j, "method", "bytes image, local run: xxh3-64 of all 4096 bytes of each page as the local region "
			     "was filled in (before the guest ran) against the image's");
	else if (r->im.mem || r->im.opaque)
		pcb_json_str(j, "method", "bytes image: xxh3-64 of all 4096 bytes each page was installed with (taken before its "
			     "install ioctl) against the source's digest of its page at the end; residency by mincore; "
			     "what the guest wrote afterwards is the guest's");
	else pcb_json_str(j, "method", cfg->precopy_ns ?
		     "xxh3-64 of every page (write slot excluded) against the source's digest; residency by mincore; "
		     "pre-copy: the write slot of every page the guest did not write after switch-over equals the source's" :
		     "xxh3-64 of every page (write slot excluded) against the source's digest; residency by mincore");
	if (cfg->precopy_ns)
		pcb_json_u64(j, "precopy_stale_pages", r->pc.stale_pages);
	pcb_json_obj_end(j);
}

static void write_json(struct run *r, FILE *fp)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	struct pcb_json *j = pcb_json_open(fp);
	struct pcb_hist fault, op;
	merged_hists(r, &fault, &op);

	json_header(r, j);
	pcb_json_obj_begin(j, "results");
	json_time(r, j);
	json_pages(r, j);
	json_policy(r, j);
	json_faults(r, j, &fault);
	blocktime_json(r, j);

	json_pager(r, j);
	json_transport(r, j);
	pcb_net_json(j, s);
	if (r->missing[0])
		pcb_json_str(j, "pages_never_arrived", r->missing);

	json_guest(r, j, &op);
	pcb_cpu_json(&r->cpu, j, "cpu");
	pcb_progress_json(&r->prog, j, "progress");
	if (cfg->precopy_ns)
		pcb_precopy_json(&r->pc, j, "precopy");
	json_prefetch(r, j);
	if (r->trace) {
		pcb_trace_json(r->trace, j, "bpf");
		trace_agreement_json(r, j, &fault);
	} else {
		pcb_trace_json_disabled(j, "bpf", r->trace_why);
	}

	json_verify(r, j);
	app_json(r, j);

	pcb_json_obj_end(j);   /* results */
	pcb_json_obj_end(j);
	if (pcb_json_close(j) < 0)
		pcb_warn("error writing JSON");
}

static void fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10000)
		snprintf(buf, len, "%.2f µs", (double)ns / 1e3);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f µs", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
}

static void print_progress(struct run *r, FILE *fp)
{
	char b1[32], b2[32];
	if (r->prog.bucket_ns) {
		fmt_ns(r->prog.first_work_ns == UINT64_MAX ? 0 : r->prog.first_work_ns, b1, sizeof(b1));
		fprintf(fp, "  progress    first op after %s; %.0f ops per %llu ms bucket", b1, r->prog.mean_per_bucket,
			(unsigned long long)(r->prog.bucket_ns / PCB_NSEC_PER_MSEC));
		if (r->prog.have_baseline) {
			fmt_ns(r->prog.t95_ns, b2, sizeof(b2));
			fprintf(fp, " (local %.0f); back within 5%% of local after %s; lost work %lld ops (%.1f ms of local)",
				r->prog.base_mean_per_bucket, r->prog.recovered ? b2 : "never",
				(long long)r->prog.lost_ops, r->prog.lost_s * 1e3);
		}
		fprintf(fp, "\n");
	}
}

static void print_verify(struct run *r, FILE *fp)
{
	if (r->verified)
		fprintf(fp, "  verify      %llu pages verified, %llu corrupt, %llu missing: %s%s\n",
			(unsigned long long)r->ver.pages_verified, (unsigned long long)r->ver.pages_corrupt,
			(unsigned long long)r->ver.pages_missing, r->ver.pages_corrupt || r->ver.pages_missing ? "FAILED" : "OK",
			r->local && r->im.mem ? " (bytes image: each page as it was filled in, before the guest ran)"
			: r->im.mem || r->im.opaque ? " (bytes image: each page by the bytes it arrived with)" : "");
	else if (r->interrupted)
		fprintf(fp, "  verify      not done: the run was interrupted (this report is incomplete)\n");
	else if (r->error[0] && !r->local)
		fprintf(fp, "  verify      NOT DONE (%llu of %llu pages had arrived): %s\n",
			(unsigned long long)(r->pager ? atomic_load(&pcb_pager_pagestate(r->pager)->npresent) : 0),
			(unsigned long long)r->npages, r->error);
	if (r->app_checked) {
		const struct pcb_app_report *a = &r->app;
		char b1[32], b2[32], b3[32];
		fprintf(fp, "  database    %s: integrity_check %s; %llu rows read back, %llu bad; versions %llu (updates done %llu); "
			"rows digest %016llx; database %s of %s, heap peak %s\n", a->engine, a->integrity,
			(unsigned long long)a->rows, (unsigned long long)a->rows_bad, (unsigned long long)a->versions,
			(unsigned long long)app_updates(r), (unsigned long long)a->rows_digest,
			pcb_fmt_size(a->db_used_bytes, b1, sizeof(b1)), pcb_fmt_size(a->db_bytes, b2, sizeof(b2)),
			pcb_fmt_size(a->heap_peak_bytes, b3, sizeof(b3)));
	}
}

static void print_transport(struct run *r, FILE *fp)
{
	const struct pcb_pager_stats *s = &r->ps;
	char b1[32], b2[32], b3[32], b4[32];
	if (s->channels == 1)
		fprintf(fp, "  transport   1 channel: shared %s in / %s out, %llu demand replies on it behind the background stream\n",
			pcb_fmt_size(s->chan[1].bytes_rx, b1, sizeof(b1)), pcb_fmt_size(s->chan[1].bytes_tx, b2, sizeof(b2)),
			(unsigned long long)s->shared_demand_frames);
	else
		fprintf(fp, "  transport   2 channels: demand %s in / %s out, background %s in / %s out\n",
			pcb_fmt_size(s->chan[0].bytes_rx, b1, sizeof(b1)), pcb_fmt_size(s->chan[0].bytes_tx, b2, sizeof(b2)),
			pcb_fmt_size(s->chan[1].bytes_rx, b3, sizeof(b3)), pcb_fmt_size(s->chan[1].bytes_tx, b4, sizeof(b4)));
}

static void print_bpf(struct run *r, FILE *fp)
{
	const struct pcb_config *cfg = r->cfg;
	char b1[32], b2[32], b3[32];
	if (r->trace) {
		struct pcb_trace_stats *ts = calloc(1, sizeof(*ts));
		if (ts && pcb_trace_read(r->trace, ts) == 0) {
			bool kvm = cfg->guest == PCB_GUEST_KVM;
			const struct pcb_hist *k = &ts->hist[kvm ? FL_H_KVM_FAULT_TO_RUNNING : FL_H_FAULT_TO_RUNNING];
			fmt_ns(pcb_hist_percentile(k, 50), b1, sizeof(b1));
			fmt_ns(pcb_hist_percentile(k, 99), b2, sizeof(b2));
			fmt_ns(pcb_hist_percentile(&ts->hist[FL_H_UNDELIVERED], 50), b3, sizeof(b3));
			if (kvm)
				fprintf(fp, "  bpf         %llu KVM vCPU faults in the kernel: fault->running p50 %s p99 %s\n",
					(unsigned long long)ts->counter[FL_C_KVM_BLOCKING], b1, b2);
			else
				fprintf(fp, "  bpf         %llu faults in the kernel: fault->running p50 %s p99 %s; "
					"%llu more blocked until a background install (p50 %s)\n",
					(unsigned long long)pcb_trace_faults(ts), b1, b2,
					(unsigned long long)ts->counter[FL_C_BLOCKED_UNDELIVERED], b3);
		}
		free(ts);
	} else if (cfg->trace != PCB_OFF) {
		fprintf(fp, "  bpf         off: %s\n", r->trace_why);
	}
}

static void print_prefetch(struct run *r, FILE *fp)
{
	if (pcb_wl_is_app(r->wl))
		fprintf(fp, "  prefetch    not measured: an application guest's first touches are not seen\n");
	else if (r->pf.win.bg_installed || r->pf.win.touched) {
		const struct pcb_prefetch_window *w = &r->pf.win;
		char lead[96] = "";
		if (w->lead.count)
			snprintf(lead, sizeof(lead), "; lead time p50 %.2f ms; %llu late", (double)pcb_hist_percentile(&w->lead, 50) / 1e6,
				 (unsigned long long)w->bg_late);
		fprintf(fp, "  prefetch    during the migration: %llu data pages touched, %llu present at first touch (hit rate %.1f%%); "
			"accuracy %.1f%% of %llu background data pages%s; zero pages apart: %llu touched\n",
			(unsigned long long)w->touched, (unsigned long long)w->hits,
			w->touched ? 100.0 * (double)w->hits / (double)w->touched : 0.0,
			w->bg_installed ? 100.0 * (double)w->bg_used / (double)w->bg_installed : 0.0,
			(unsigned long long)w->bg_installed, lead, (unsigned long long)w->zero_touched);
	}
}

static void write_human(struct run *r, FILE *fp)
{
	const struct pcb_config *cfg = r->cfg;
	const struct pcb_pager_stats *s = &r->ps;
	struct pcb_hist fault, op;
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
	merged_hists(r, &fault, &op);

	fprintf(fp, "pcbench %s (git %s): %s of %s, policy %s, workload %s, %u vCPU%s, seed %llu\n",
		PCB_VERSION, PCB_GITREV, r->local ? (cfg->guest != PCB_GUEST_KVM ? "local baseline (no migration)" : "local baseline (no migration), KVM guest")
			 : cfg->guest != PCB_GUEST_KVM ? (cfg->precopy_ns ? "pre-copy then post-copy migration" : "post-copy migration")
						     : "post-copy migration of a KVM guest",
		pcb_fmt_size(cfg->mem, b1, sizeof(b1)), cfg->policy, cfg->workload,
		cfg->vcpus, cfg->vcpus > 1 ? "s" : "", (unsigned long long)cfg->seed);
	fprintf(fp, "  kernel %s, %d CPUs, THP %s\n", r->sys.kernel, r->sys.cpus_online, r->sys.thp_enabled);
	if (r->local) {
		uint64_t ops = 0;
		for (unsigned v = 0; v < cfg->vcpus; v++)
			ops += pcb_guest_result(r->guest, v)->ops;
		double gs = pcb_ns_to_s(s->t_guest_done_ns - s->t_switchover_ns);
		fprintf(fp, "  guest       %llu ops, %.3f M ops/s (all memory local)\n", (unsigned long long)ops,
			gs > 0 ? (double)ops / gs / 1e6 : 0.0);
		fprintf(fp, "  cpu         process %.3f s: vCPUs %.3f, main %.3f\n", (double)r->cpu.process_ns / 1e9,
			(double)r->cpu.vcpus_ns / 1e9, (double)r->cpu.main_ns / 1e9);
		print_progress(r, fp);
		print_verify(r, fp);
		return;
	}
	uint64_t mig = s->t_complete_ns ? s->t_complete_ns - s->t_switchover_ns : 0;
	fmt_ns(mig, b1, sizeof(b1));
	fmt_ns(r->t_end_ns - r->t_start_ns, b2, sizeof(b2));
	fmt_ns(s->t_guest_done_ns - s->t_switchover_ns, b3, sizeof(b3));
	fprintf(fp, "  migration   %s (switch-over to last page present); guest ran %s; whole run %s\n", b1, b3, b2);
	uint64_t zero = s->zero_demand + s->zero_background + s->zero_drain;
	if (cfg->precopy_ns) {
		fmt_ns(r->pc.duration_ns, b1, sizeof(b1));
		fmt_ns(r->pc.stop_ns, b2, sizeof(b2));
		fmt_ns(r->pc.first_pass_ns, b3, sizeof(b3));
		fmt_ns(r->pc.first_pass_cpu_ns, b4, sizeof(b4));
		fmt_ns(r->pc.final_ns, b5, sizeof(b5));
		fprintf(fp, "  precopy     %s, %llu rounds (first pass %s, %s on CPU): %llu pages sent, %llu re-sent; at switch-over %llu dirty + %llu never sent "
			"%s; guest %llu ops (%llu writes) at the source; vCPUs stopped in %s, switch-over step %s\n", b1,
			(unsigned long long)r->pc.rounds, b3, b4, (unsigned long long)r->pc.pages_sent,
			(unsigned long long)r->pc.pages_resent, (unsigned long long)r->pc.dirty_at_switchover,
			(unsigned long long)r->pc.never_sent, r->pc.final_resend ? "re-sent dirty, never-sent missing" : "left missing",
			(unsigned long long)r->pc.guest_ops, (unsigned long long)r->pc.guest_writes, b2, b5);
	}
	fprintf(fp, "  pages       %llu: demand %llu, background %llu, drain %llu, zero %llu; EEXIST races %llu\n",
		(unsigned long long)r->npages, (unsigned long long)s->pages_demand,
		(unsigned long long)s->pages_background, (unsigned long long)s->pages_drain,
		(unsigned long long)zero, (unsigned long long)(s->eexist_demand + s->eexist_background));
	fmt_ns(pcb_hist_percentile(&fault, 50), b1, sizeof(b1));
	fmt_ns(pcb_hist_percentile(&fault, 90), b2, sizeof(b2));
	fmt_ns(pcb_hist_percentile(&fault, 99), b3, sizeof(b3));
	fmt_ns(pcb_hist_percentile(&fault, 99.9), b4, sizeof(b4));
	fmt_ns(fault.count ? fault.max : 0, b5, sizeof(b5));
	fmt_ns(fault.count ? fault.min : 0, b6, sizeof(b6));
	fprintf(fp, "  faults      %llu seen by the guest: min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		(unsigned long long)fault.count, b6, b1, b2, b3, b4, b5);
	uint64_t bt = 0;
	for (unsigned v = 0; v < cfg->vcpus; v++)
		bt += pcb_guest_result(r->guest, v)->blocktime_ns;
	fmt_ns(bt, b1, sizeof(b1));
	bool bt_known;
	uint64_t bt_all = blocktime_all(r, &bt_known);
	fmt_ns(bt_all, b2, sizeof(b2));
	fprintf(fp, "  blocktime   %s summed over vCPUs, %s all vCPUs at once", b1, bt_known ? b2 : "n/a");
	for (unsigned v = 0; v < cfg->vcpus && v < 8; v++) {
		fmt_ns(pcb_guest_result(r->guest, v)->blocktime_ns, b1, sizeof(b1));
		fprintf(fp, "%svCPU%u %s", v ? ", " : " (", v, b1);
	}
	fprintf(fp, "%s)\n", cfg->vcpus > 8 ? ", ..." : "");
	uint64_t ops = 0;
	for (unsigned v = 0; v < cfg->vcpus; v++)
		ops += pcb_guest_result(r->guest, v)->ops;
	double gs = pcb_ns_to_s(s->t_guest_done_ns - s->t_switchover_ns);
	fprintf(fp, "  guest       %llu ops, %.3f M ops/s\n", (unsigned long long)ops, gs > 0 ? (double)ops / gs / 1e6 : 0.0);
	print_progress(r, fp);
	print_transport(r, fp);
	print_bpf(r, fp);
	pcb_perf_human(fp, cfg, &r->pin, s, &r->mem);
	print_prefetch(r, fp);
	fprintf(fp, "  cpu         process %.3f s: vCPUs %.3f, demand %.3f, background %.3f, installer %.3f, main %.3f; source %.3f\n",
		(double)r->cpu.process_ns / 1e9, (double)r->cpu.vcpus_ns / 1e9, (double)r->cpu.demand_ns / 1e9,
		(double)r->cpu.background_ns / 1e9, (double)r->cpu.installer_ns / 1e9, (double)r->cpu.main_ns / 1e9,
		(double)r->cpu.source_ns / 1e9);
	pcb_net_human(fp, s);
	print_verify(r, fp);
}

static int emit_reports(struct run *r)
{
	if (r->guest)
		write_human(r, stdout);
	if (r->cfg->json[0]) {
		FILE *fp = fopen(r->cfg->json, "w");
		if (!fp) {
			pcb_err("cannot write --json file '%s': %s", r->cfg->json, strerror(errno));
			return PCB_EXIT_OSERR;
		}
		write_json(r, fp);
		if (fclose(fp) != 0) {
			pcb_err("cannot write --json file '%s': %s", r->cfg->json, strerror(errno));
			return PCB_EXIT_OSERR;
		}
	}
	fflush(stdout);
	return 0;
}


/* A fatal error while vCPUs may be blocked in faults that can never be
 * served: they cannot be joined, and the region must not be unregistered
 * (that would hand them zero pages).  Report it (stderr, --json); the run
 * is left stranded: the cleanup path tears nothing down and the caller
 * ends the process. */
static int fail_midrun(struct run *r, int code, const char *msg)
{
	pcb_err("%s", msg);
	snprintf(r->error, sizeof(r->error), "%s", msg);
	r->exit_code = code;
	r->stranded = true;
	r->t_end_ns = pcb_now_ns();
	if (r->pager)
		pcb_pager_stats(r->pager, &r->ps);
	struct pcb_pagestate *ps = r->pager ? pcb_pager_pagestate(r->pager) : NULL;
	if (ps) {
		pcb_err("%llu of %llu pages had arrived; the guest was stopped before reading any other page",
			(unsigned long long)atomic_load(&ps->npresent), (unsigned long long)ps->npages);
		pcb_pager_missing_summary(r->pager, r->missing, sizeof(r->missing));
		pcb_err("%s", r->missing);
	}
	if (r->cfg->json[0]) {
		FILE *fp = fopen(r->cfg->json, "w");
		if (fp) {
			if (r->guest && r->pager)
				write_json(r, fp);
			fclose(fp);
		}
	}
	return code;
}


/* SIGINT / SIGTERM during the migration: the vCPUs may be blocked in faults
 * that will not be served now, so the run is left stranded (not joined, not
 * torn down); the counters so far are reported (human and JSON, marked
 * interrupted and incomplete); the cleanup path reaps the source and the
 * pager process and the caller exits 128 + signal. */
static int interrupt_midrun(struct run *r, int sig)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "interrupted by %s %.1f s into the run: the report holds what was measured so far "
		 "(incomplete, not verified)", sig == SIGINT ? "SIGINT" : "SIGTERM",
		 pcb_ns_to_s(pcb_now_ns() - r->t_start_ns));
	pcb_err("%s", msg);
	r->interrupted = true;
	r->stranded = true;
	r->exit_code = 128 + sig;
	snprintf(r->error, sizeof(r->error), "%s", msg);
	r->t_end_ns = pcb_now_ns();
	if (r->pager) {
		pcb_pager_stats(r->pager, &r->ps);
		pcb_pager_missing_summary(r->pager, r->missing, sizeof(r->missing));
	}
	if (r->guest && r->pager)
		emit_reports(r);
	return 128 + sig;
}

/* A bytes image's pages as the local region holds them before the guest
 * runs (the guest may write anywhere afterwards): the local counterpart of
 * verifying pages as they arrive. */
static void local_fill_check(struct run *r, const uint8_t *region, struct pcb_verify *ver)
{
	memset(ver, 0, sizeof(*ver));
	for (uint64_t pg = 0; pg < r->npages; pg++) {
		if (pcb_page_digest_full(region + pg * PCB_PAGE_SIZE) == pcb_image_digest(&r->im, pg)) {
			ver->pages_verified++;
		} else {
			ver->pages_corrupt++;
			if (ver->nfirst_bad < 8)
				ver->first_bad[ver->nfirst_bad++] = pg;
		}
	}
}

/* The same guest over a region fully populated before it starts: the
 * --policy=local run itself, or the --baseline=run reference.  Fills
 * *gout (joined), the progress series and the verification. */
static int run_local_guest(struct run *r, const struct pcb_wl_params *prm, bool record, struct pcb_guest **gout,
			   struct pcb_progress *prog, struct pcb_verify *ver, uint64_t *t_go, uint64_t *t_done,
			   bool check_app, char *why, size_t whylen)
{
	const struct pcb_config *cfg = r->cfg;
	uint8_t *region = pcb_local_region(&r->im, r->npages);
	if (!region) {
		snprintf(why, whylen, "cannot map %llu pages for the local run: %s", (unsigned long long)r->npages, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (r->im.mem)
		local_fill_check(r, region, ver);
	/* the same first-touch bookkeeping as a migrated guest, so the loops compare like for like */
	_Atomic uint32_t *ft = mmap(NULL, r->npages * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ft == MAP_FAILED) {
		munmap(region, r->npages * PCB_PAGE_SIZE);
		snprintf(why, whylen, "out of memory for the first-touch record");
		return PCB_EXIT_OSERR;
	}
	struct pcb_guest_cfg gc = {
		.first_touch = ft,
		.ops = pcb_workload_find(cfg->workload), .prm = *prm, .region = region, .im = &r->im,
		.write_ratio = cfg->write_ratio, .duration_ns = cfg->duration_ns, .ops_limit = cfg->ops,
		.bucket_ns = (uint64_t)cfg->bucket_ms * PCB_NSEC_PER_MSEC, .record = record,
		.kvm = cfg->guest == PCB_GUEST_KVM,
	};
	int rc = pcb_guest_create(&gc, NULL, gout, why, whylen);
	if (!rc && (rc = pcb_guest_start(*gout)) != 0)
		snprintf(why, whylen, "cannot start the guest threads");
	if (rc) {
		munmap(region, r->npages * PCB_PAGE_SIZE);
		munmap(ft, r->npages * 4);
		return rc;
	}
	*t_go = pcb_now_ns();
	pcb_guest_go(*gout, *t_go);
	pcb_guest_join(*gout);
	*t_done = pcb_now_ns();
	munmap(ft, r->npages * 4);
	if (pcb_guest_error(*gout)) {
		snprintf(why, whylen, "%s", pcb_guest_error(*gout));
		munmap(region, r->npages * PCB_PAGE_SIZE);
		return PCB_EXIT_SOFTWARE;
	}
	rc = r->im.mem ? 0   /* a bytes image: checked as it was filled in, before the guest ran */
		       : pcb_local_verify(region, &r->im, r->npages, ver, why, whylen);
	if (!rc && check_app && pcb_wl_is_app(gc.ops))
		app_check(r, *gout);
	munmap(region, r->npages * PCB_PAGE_SIZE);
	if (!rc && pcb_progress_collect(prog, *gout, cfg->vcpus, gc.bucket_ns, *t_go) < 0) {
		snprintf(why, whylen, "out of memory for the progress series");
		rc = PCB_EXIT_OSERR;
	}
	return rc;
}

/* --progress-csv, or NAME.progress.csv next to --json NAME.json; "" = none. */
static void progress_csv_path(const struct pcb_config *cfg, char *out, size_t len, const char *suffix)
{
	out[0] = 0;
	if (cfg->progress_csv[0]) {
		size_t n = strlen(cfg->progress_csv);
		if (suffix[0] && n > 4 && !strcmp(cfg->progress_csv + n - 4, ".csv"))
			snprintf(out, len, "%.*s%s.csv", (int)(n - 4), cfg->progress_csv, suffix);
		else
			snprintf(out, len, "%s%s", cfg->progress_csv, suffix);
	} else if (cfg->json[0]) {
		size_t n = strlen(cfg->json);
		if (n > 5 && !strcmp(cfg->json + n - 5, ".json"))
			n -= 5;
		snprintf(out, len, "%.*s.progress%s.csv", (int)n, cfg->json, suffix);
	}
}

static int write_progress_csv(struct run *r, const struct pcb_progress *p, const char *suffix)
{
	char path[4200], comment[512];
	progress_csv_path(r->cfg, path, sizeof(path), suffix);
	if (!path[0] || !p->bucket_ns)
		return 0;
	/* --baseline=FILE reads this line back (pcb_progress_load_csv) */
	snprintf(comment, sizeof(comment),
		 "pcbench %s (git %s) progress: policy=%s workload=%s seed=%llu vcpus=%u bucket_ms=%u complete_buckets=%llu guest=%s%s",
		 PCB_VERSION, PCB_GITREV, suffix[0] ? "local" : r->cfg->policy, r->cfg->workload,
		 (unsigned long long)r->cfg->seed, r->cfg->vcpus, r->cfg->bucket_ms, (unsigned long long)p->ncomplete,
		 pcb_choice_name("guest", r->cfg->guest), suffix[0] ? " (baseline)" : "");
	int e = pcb_progress_csv(p, path, comment);
	if (e < 0) {
		pcb_err("cannot write the progress CSV '%s': %s", path, strerror(-e));
		return PCB_EXIT_OSERR;
	}
	return 0;
}


/* --record: the guest's access trace */
static void save_record(struct run *r)
{
	if (!r->cfg->record[0])
		return;
	int e = pcb_guest_record_save(r->guest, r->cfg->record);
	if (e < 0) {
		pcb_err("cannot write --record file '%s': %s", r->cfg->record, strerror(-e));
		r->exit_code = PCB_EXIT_OSERR;
	}
}

/* The run's integrity verdict (unless it already failed): a page corrupt or
 * missing at the end, or a guest read that did not match the image. */
static void integrity_verdict(struct run *r)
{
	uint64_t mism = 0;
	for (unsigned v = 0; v < r->cfg->vcpus; v++)
		mism += pcb_guest_result(r->guest, v)->read_mismatch;
	if (!r->exit_code && (r->ver.pages_corrupt || r->ver.pages_missing || mism)) {
		r->exit_code = PCB_EXIT_VERIFY;
		snprintf(r->error, sizeof(r->error), "integrity check failed: %llu corrupt, %llu missing pages, %llu reads did not match the image",
			 (unsigned long long)r->ver.pages_corrupt, (unsigned long long)r->ver.pages_missing,
			 (unsigned long long)mism);
	}
}

/* stdout and --json; a failed integrity check is also the last line on stderr */
static int report(struct run *r)
{
	int erc = emit_reports(r);
	if (r->exit_code == PCB_EXIT_VERIFY)
		pcb_err("%s", r->error);
	return erc;
}

/* --policy=local: no source, no pager; the guest over a populated region. */
static int run_local_only(struct run *r)
{
	char why[512];
	uint64_t t_go, t_done;
	int rc = run_local_guest(r, &r->prm, r->cfg->record[0] != 0, &r->guest, &r->prog, &r->ver, &t_go, &t_done, true, why, sizeof(why));
	if (rc) {
		pcb_err("%s", why);
		return rc;
	}
	snprintf(r->trace_why, sizeof(r->trace_why), "no migration (--policy=local)");
	r->verified = true;
	r->ps.t_switchover_ns = r->ps.t_complete_ns = t_go;
	r->ps.t_guest_done_ns = t_done;
	r->ps.demand_cpu = r->ps.background_cpu = -1;
	measure_cpu(r);
	pcb_hist_init(&r->ps.demand_rtt);
	pcb_hist_init(&r->ps.demand_service);
	save_record(r);
	r->t_end_ns = pcb_now_ns();
	integrity_verdict(r);
	int erc = write_progress_csv(r, &r->prog, "");
	int erc2 = report(r);
	return r->exit_code ? r->exit_code : erc ? erc : erc2;
}

static void free_precopy(struct run *r)
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
static int setup_check(struct run *r)
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
static int setup_params(struct run *r)
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
	catch_stop_signals();
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

/* --baseline=run: the same guest over a local region first */
static int run_baseline(struct run *r)
{
	struct pcb_guest *bg = NULL;
	struct pcb_verify bv;
	uint64_t t0, t1;
	char why[512];
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	int rc = run_local_guest(r, &r->prm, false, &bg, &r->base, &bv, &t0, &t1, false, why, sizeof(why));
	getrusage(RUSAGE_SELF, &ru1);
	r->baseline_cpu_ns = rusage_ns(&ru1) - rusage_ns(&ru0);   /* not the migration's (results.cpu) */
	if (!rc && (bv.pages_corrupt || bv.pages_missing)) {
		snprintf(why, sizeof(why), "the local baseline run failed its integrity check: %llu corrupt, %llu missing pages",
			 (unsigned long long)bv.pages_corrupt, (unsigned long long)bv.pages_missing);
		rc = PCB_EXIT_VERIFY;
	}
	if (bg)
		pcb_guest_destroy(bg);
	if (rc)
		pcb_err("%s", why);
	return rc;
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

/* ---- phase 2: switch-over ---------------------------------------------------------------- */

/* the guest runs at the source while pages are pre-copied; returns with the vCPUs stopped */
static int run_precopy(struct run *r)
{
	const struct pcb_config *cfg = r->cfg;
	char why[512];
	struct pcb_pager_stats ps0;
	pcb_pager_stats(r->pager, &ps0);
	struct pcb_precopy_net net = {
		.host = cfg->host, .port = r->port, .key = r->net.key.len ? &r->net.key : NULL,
		.link_bps = r->net.link_bps, .link_delay_ns = ps0.link.delay_ns,
		.timeout_ms = (int)(cfg->io_timeout_ns / PCB_NSEC_PER_MSEC),
	};
	int rc = pcb_precopy_run(r->pager, r->guest, r->precopy_src, r->npages, cfg->precopy_ns,
				 cfg->precopy_transport == PCB_PRECOPY_TCP ? &net : NULL, cfg->precopy_final == PCB_PRECOPY_RESEND,
				 &r->pc, why, sizeof(why));
	if (rc)
		pcb_err("%s", why);   /* vCPUs are parked on a gate that will not open: stranded */
	return rc;
}

static int switch_over(struct run *r)
{
	int rc;
	if (r->cfg->precopy_ns && (rc = run_precopy(r)) != 0)
		return rc;
	if ((rc = pcb_pager_start(r->pager)) != 0) {
		pcb_err("cannot start the pager threads");
		return rc;
	}
	pcb_pager_stats(r->pager, &r->ps);
	if (r->cfg->precopy_ns)
		pcb_guest_resume(r->guest, r->ps.t_switchover_ns);
	else
		pcb_guest_go(r->guest, r->ps.t_switchover_ns);
	return 0;
}

/* ---- phase 3: wait (for the guest, then for the last page) -------------------------------- */

static int wait_for_completion(struct run *r)
{
	char why[512];
	int rc;
	/* Wait for the guest without spinning: the pager's poll until every page
	 * is present (it returns at once after that), then the guest's own end.
	 * The last vCPU starts the drain itself (guest_ended). */
	while (pcb_guest_running(r->guest)) {
		rc = pcb_pager_poll(r->pager, 20, why, sizeof(why));
		if (stop_sig)
			return interrupt_midrun(r, stop_sig);
		if (rc < 0)
			return fail_midrun(r, -rc, why);
		if (rc == 1) {
			pcb_guest_wait(r->guest);
			break;
		}
	}
	pcb_guest_join(r->guest);
	pcb_pager_guest_done(r->pager);   /* done already by the last vCPU (guest_ended); a no-op then */
	r->stranded = false;
	for (unsigned v = 0; r->cfg->precopy_ns && v < r->cfg->vcpus; v++) {
		r->pc.guest_ops += pcb_guest_result(r->guest, v)->precopy_ops;
		r->pc.guest_writes += pcb_guest_result(r->guest, v)->precopy_writes;
	}
	if (pcb_guest_error(r->guest)) {
		r->exit_code = PCB_EXIT_SOFTWARE;
		snprintf(r->error, sizeof(r->error), "%s", pcb_guest_error(r->guest));
		pcb_err("%s", r->error);
	}
	/* the rest arrives (drain): every wait has a deadline.  Nothing received
	 * (no page, no byte) for --io-timeout + --reconnect-timeout + 1 s (a lost
	 * connection is detected and recovered within that) is a stall: a clear
	 * error naming what is missing */
	uint64_t deadline_ns = r->cfg->io_timeout_ns + r->cfg->reconnect_timeout_ns + PCB_NSEC_PER_SEC;
	uint64_t last_n = pcb_pager_progress(r->pager), t_last = pcb_now_ns();
	do {
		rc = pcb_pager_poll(r->pager, 100, why, sizeof(why));
		if (stop_sig)
			return interrupt_midrun(r, stop_sig);
		if (rc < 0)
			return fail_midrun(r, -rc, why);
		uint64_t n = pcb_pager_progress(r->pager), now = pcb_now_ns();
		if (n != last_n) {
			last_n = n;
			t_last = now;
		} else if (rc != 1 && now - t_last > deadline_ns) {
			snprintf(why, sizeof(why), "nothing arrived for %.1f s after the guest stopped (progress deadline: "
				 "--io-timeout + --reconnect-timeout + 1 s); the migration stalled", pcb_ns_to_s(now - t_last));
			return fail_midrun(r, PCB_EXIT_SOURCE_LOST, why);
		}
	} while (rc != 1);
	return 0;
}

/* ---- phase 4: verify ---------------------------------------------------------------------- */

static void verify_pages(struct run *r)
{
	char why[512];
	pcb_pager_finish(r->pager);
	int rc = pcb_pager_verify(r->pager, &r->ver, why, sizeof(why));
	if (rc) {
		pcb_err("%s", why);
		r->exit_code = rc;
		snprintf(r->error, sizeof(r->error), "%s", why);
		return;
	}
	r->verified = true;
	if (pcb_wl_is_app(r->wl) && !pcb_guest_error(r->guest))
		app_check(r, r->guest);
	if (r->precopy_src && !r->im.mem) {   /* a bytes image: the arrival digests already judge staleness */
		/* pages written at the source must carry the source's last write */
		r->pc.stale_pages = pcb_precopy_check(pcb_pager_region(r->pager), r->precopy_src, r->npages, r->dest_written,
						   r->ver.first_bad, &r->ver.nfirst_bad, 8);
		r->ver.pages_corrupt += r->pc.stale_pages;
		if (r->ver.pages_verified >= r->pc.stale_pages)
			r->ver.pages_verified -= r->pc.stale_pages;
	}
}

/* ---- phase 5: report ---------------------------------------------------------------------- */

/* the progress series (and the baseline's) with their CSVs */
static void collect_progress(struct run *r)
{
	uint64_t bucket_ns = (uint64_t)r->cfg->bucket_ms * PCB_NSEC_PER_MSEC;
	if (pcb_progress_collect(&r->prog, r->guest, r->cfg->vcpus, bucket_ns, r->ps.t_switchover_ns) < 0 ||
	    (r->have_base && pcb_progress_compare(&r->prog, &r->base) < 0)) {
		pcb_err("out of memory for the progress series");
		r->exit_code = PCB_EXIT_OSERR;
	}
	if (write_progress_csv(r, &r->prog, "") || (r->have_base && write_progress_csv(r, &r->base, "-local")))
		r->exit_code = PCB_EXIT_OSERR;
}

/* memory, prefetch and --timeline, from the pager's records */
static void collect_placement(struct run *r)
{
	const struct pcb_installer *in = pcb_pager_installer(r->pager);
	struct pcb_mem_range g[2] = { { in->region, in->len }, { in->alias, in->len } };
	struct pcb_mem_range rec = { r->first_touch, r->npages * 4 };
	pcb_mem_measure(&r->mem, g, 2, &rec, 1, r->cfg->mem);
	r->mem.pager_process_hwm = pcb_pager_process_peak_rss_kib(r->pager) * 1024;
	pcb_prefetch_compute_window(&r->pf, r->npages, r->first_touch, pcb_pager_install_us(r->pager),
				    pcb_pager_install_kind(r->pager),
				    r->ps.t_guest_done_ns > r->ps.t_switchover_ns
					    ? (r->ps.t_guest_done_ns - r->ps.t_switchover_ns) / 1000 + 1 : 0,
				    r->ps.t_complete_ns >= r->ps.t_switchover_ns
					    ? (r->ps.t_complete_ns - r->ps.t_switchover_ns) / 1000 + 1 : 0);
	if (r->cfg->timeline[0]) {
		int e = pcb_timeline_write(r->cfg->timeline, r->pager, r->npages, r->first_touch);
		if (e < 0) {
			pcb_err("cannot write --timeline file '%s': %s", r->cfg->timeline, strerror(-e));
			r->exit_code = PCB_EXIT_OSERR;
		}
	}
}

static int collect_and_report(struct run *r)
{
	if (r->trace)
		pcb_trace_stop(r->trace);
	pcb_pager_stats(r->pager, &r->ps);
	r->t_drain_start_ns = r->ps.t_guest_done_ns;   /* when the pager was told (the drain began) */
	if (pcb_guest_end_ns(r->guest))   /* the vCPUs' own end, not when the pager was told */
		r->ps.t_guest_done_ns = pcb_guest_end_ns(r->guest);
	collect_progress(r);
	save_record(r);
	collect_placement(r);
	reap_source(r, false);
	measure_cpu(r);
	r->t_end_ns = pcb_now_ns();
	integrity_verdict(r);
	int erc = report(r);
	return r->exit_code ? r->exit_code : erc;
}

static int run_postcopy(struct run *r)
{
	int rc;
	if ((rc = setup_baseline(r)) || (rc = setup_precopy(r)) || (rc = setup_source_and_pager(r)) ||
	    (rc = setup_guest(r)) || (rc = setup_trace(r)))
		return rc;
	if ((rc = switch_over(r)) || (rc = wait_for_completion(r)))
		return rc;
	verify_pages(r);
	return collect_and_report(r);
}

/* The one cleanup path.  A stranded run (vCPU threads never joined, or the
 * pager failed mid-run) keeps everything the threads may still touch: the
 * pager process and the source are killed, and the caller ends the process. */
static int run_cleanup(struct run *r, int rc)
{
	if (r->stranded) {
		if (r->pager)
			pcb_pager_abort(r->pager);
		reap_source(r, true);
		return rc;
	}
	pcb_trace_free(r->trace);
	pcb_progress_free(&r->prog);
	pcb_progress_free(&r->base);
	pcb_guest_destroy(r->guest);
	pcb_pager_destroy(r->pager);
	if (r->first_touch)
		munmap(r->first_touch, r->npages * 4);
	reap_source(r, true);
	free_precopy(r);
	image_release(r);
	return rc;
}

int pcb_run_migration(const struct pcb_config *cfg_in, bool *stranded)
{
	struct pcb_config resolved = *cfg_in;   /* defaults that depend on other options, made explicit (and recorded) */
	pcb_config_resolve(&resolved);
	struct stat isb;
	if (resolved.image[0] && stat(resolved.image, &isb) == 0 && S_ISREG(isb.st_mode))
		resolved.mem = (uint64_t)isb.st_size;   /* --mem is the image's size (checked when it is mapped) */
	struct run R = { .cfg = &resolved, .cpu.source_ns = -1 }, *r = &R;
	pcb_sock_buf_bytes = (int)resolved.socket_buffer;   /* our connections, and the forked source's */
	int rc = setup_check(r);
	if (!rc)
		rc = setup_params(r);
	if (!rc)
		rc = r->local ? run_local_only(r) : run_postcopy(r);
	*stranded = r->stranded;
	return run_cleanup(r, rc);
}
