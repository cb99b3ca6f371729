/* One migration as phases: set up (setup.c) -> switch-over -> wait -> verify
 * -> report (report.c), with the one cleanup path (run_cleanup); the local
 * run (--policy=local) as its own short sequence (local.c). */
#include "run/internal.h"
#include "common/hist.h"
#include "common/util.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SIGINT / SIGTERM ----------------------------------------------------------
 * The handler only records the signal; the run's waiting loops look at it
 * every 20-100 ms and end the run with a report marked incomplete
 * (interrupt_midrun), every child reaped, exit 128 + the signal (130, 143). */
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig)
{
	stop_sig = sig;
}

void run_catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int64_t run_rusage_ns(const struct rusage *ru)
{
	return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000ll +
	       ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000ll;
}

/* Reap the source; its CPU time (wait4's rusage) less its image's (built
 * before the destination connected) goes to r->cpu.source_ns. */
static void reap_source(struct run *r, bool kill_it)
{
	struct rusage ru;
	if (pcb_reap_child(r->source_pid, kill_it, 2000, &ru))   /* up to 2 s, then force */
		r->cpu.source_ns = run_rusage_ns(&ru) - (int64_t)r->source_image.cpu_ns;
	r->source_pid = 0;
}

struct run_vcpu_sums run_vcpu_sums(const struct run *r)
{
	struct run_vcpu_sums t = { 0 };
	for (unsigned v = 0; r->guest && v < r->cfg->vcpus; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		t.ops += vr->ops;
		t.reads += vr->reads;
		t.writes += vr->writes;
		t.read_mismatches += vr->read_mismatch;
		t.faults_undelivered += vr->faults_undelivered;
		t.blocktime_ns += vr->blocktime_ns;
		t.cpu_ns += vr->cpu_ns;
		t.precopy_ops += vr->precopy_ops;
		t.precopy_writes += vr->precopy_writes;
	}
	return t;
}

/* results.cpu: what the process, its threads and the source used (after the joins). */
static void measure_cpu(struct run *r)
{
	struct pcb_cpu_report *c = &r->cpu;
	struct rusage ru;
	c->process_ns = getrusage(RUSAGE_SELF, &ru) == 0 ? run_rusage_ns(&ru) - r->baseline_cpu_ns : -1;
	c->main_ns = (int64_t)pcb_thread_cpu_ns();
	c->vcpus_ns = (int64_t)run_vcpu_sums(r).cpu_ns;
	c->demand_ns = c->background_ns = c->installer_ns = c->pager_process_ns = -1;
	if (r->pager) {
		c->demand_ns = (int64_t)r->ps.demand_cpu_ns;
		c->background_ns = (int64_t)r->ps.background_cpu_ns;
		c->installer_ns = (int64_t)r->ps.install_cpu_ns;
		if (r->cfg->pager == PCB_PAGER_PROCESS && getrusage(RUSAGE_CHILDREN, &ru) == 0)
			c->pager_process_ns = run_rusage_ns(&ru) - (c->source_ns > 0 ? c->source_ns + (int64_t)r->source_image.cpu_ns : 0);
	}
	c->wall_ns = pcb_now_ns() - r->ps.t_switchover_ns;
}

/* Application guests: the engine's check of the database as the guest left
 * it; a failure is a verification failure. */
void run_app_check(struct run *r, struct pcb_guest *g)
{
	char why[512];
	int rc = pcb_guest_app_check(g, &r->app, why, sizeof(why));
	r->app_checked = rc == 0;
	if (!r->exit_code && rc) {
		r->exit_code = rc;
		snprintf(r->error, sizeof(r->error), "%s", why);
		pcb_err("%s", why);
	} else if (!r->exit_code && (strcmp(r->app.integrity, "ok") || r->app.rows_bad || r->app.versions != run_app_updates(r))) {
		r->exit_code = PCB_EXIT_VERIFY;
		snprintf(r->error, sizeof(r->error), "database check failed: integrity_check '%s', %llu bad rows, versions %llu "
			 "for %llu updates", r->app.integrity, (unsigned long long)r->app.rows_bad,
			 (unsigned long long)r->app.versions, (unsigned long long)run_app_updates(r));
	}
}


/* What a run stopped mid-way records (fail_midrun, interrupt_midrun): the
 * message (stderr and the report), the exit code, the end time, the pager's
 * counters so far and the pages that never arrived.  The run is left
 * stranded. */
static void stop_midrun(struct run *r, int code, const char *msg)
{
	pcb_err("%s", msg);
	snprintf(r->error, sizeof(r->error), "%s", msg);
	r->exit_code = code;
	r->stranded = true;
	r->t_end_ns = pcb_now_ns();
	if (r->pager) {
		pcb_pager_stats(r->pager, &r->ps);
		pcb_pager_missing_summary(r->pager, r->missing, sizeof(r->missing));
	}
}

/* A fatal error while vCPUs may be blocked in faults that can never be
 * served: they cannot be joined, and the region must not be unregistered
 * (that would hand them zero pages).  Report it (stderr, --json); the run
 * is left stranded: the cleanup path tears nothing down and the caller
 * ends the process. */
static int fail_midrun(struct run *r, int code, const char *msg)
{
	stop_midrun(r, code, msg);
	struct pcb_pagestate *ps = r->pager ? pcb_pager_pagestate(r->pager) : NULL;
	if (ps) {
		pcb_err("%llu of %llu pages had arrived; the guest was stopped before reading any other page",
			(unsigned long long)atomic_load(&ps->npresent), (unsigned long long)ps->npages);
		pcb_err("%s", r->missing);
	}
	if (r->cfg->json[0]) {
		FILE *fp = fopen(r->cfg->json, "w");
		if (fp) {
			if (r->guest && r->pager)
				run_write_json(r, fp);
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
	r->interrupted = true;
	stop_midrun(r, 128 + sig, msg);
	if (r->guest && r->pager)
		run_emit_reports(r);
	return 128 + sig;
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
	uint64_t mism = run_vcpu_sums(r).read_mismatches;
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
	int erc = run_emit_reports(r);
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
	int erc = run_write_progress_csv(r, &r->prog, "");
	int erc2 = report(r);
	return r->exit_code ? r->exit_code : erc ? erc : erc2;
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
	r->main_wait_cpu0 = (int64_t)pcb_thread_cpu_ns();
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
	r->cpu.main_wait_ns = (int64_t)pcb_thread_cpu_ns() - r->main_wait_cpu0;
	pcb_pager_guest_done(r->pager);   /* done already by the last vCPU (guest_ended); a no-op then */
	r->stranded = false;
	if (r->cfg->precopy_ns) {
		struct run_vcpu_sums t = run_vcpu_sums(r);
		r->pc.guest_ops += t.precopy_ops;
		r->pc.guest_writes += t.precopy_writes;
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
		run_app_check(r, r->guest);
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
	if (run_write_progress_csv(r, &r->prog, "") || (r->have_base && run_write_progress_csv(r, &r->base, "-local")))
		r->exit_code = PCB_EXIT_OSERR;
}

/* memory, prefetch and --timeline, from the pager's records */
static void collect_placement(struct run *r)
{
	const struct pcb_installer *in = pcb_pager_installer(r->pager);
	struct pcb_mem_range g[2] = { { in->region, in->len }, { in->alias, in->len } };
	/* the harness's records are not the pager: the first-touch record and each
	 * vCPU's stall list (16 bytes per fault it waited on, for blocktime) */
	struct pcb_mem_range rec[1 + PCB_MAX_VCPUS] = { { r->first_touch, (r->npages * 4 + 4095) & ~(uint64_t)4095 } };   /* its own mapping */
	int nrec = 1;
	for (unsigned v = 0; r->guest && v < r->cfg->vcpus && v < PCB_MAX_VCPUS; v++) {
		const struct pcb_vcpu_result *vr = pcb_guest_result(r->guest, v);
		if (vr && vr->stalls)
			rec[nrec++] = (struct pcb_mem_range){ vr->stalls, vr->nstalls * sizeof(*vr->stalls) };
	}
	pcb_mem_measure(&r->mem, g, 2, rec, nrec, r->cfg->mem);
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
	if ((rc = run_setup_migration(r)) != 0)
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
	run_free_precopy(r);
	run_image_release(r);
	return rc;
}

int pcb_run_migration(const struct pcb_config *cfg_in, bool *stranded)
{
	struct pcb_config resolved = *cfg_in;   /* defaults that depend on other options, made explicit (and recorded) */
	pcb_config_resolve(&resolved);
	struct stat isb;
	if (resolved.image[0] && stat(resolved.image, &isb) == 0 && S_ISREG(isb.st_mode))
		resolved.mem = (uint64_t)isb.st_size;   /* --mem is the image's size (checked when it is mapped) */
	struct run R = { .cfg = &resolved, .cpu.source_ns = -1, .cpu.main_wait_ns = -1 }, *r = &R;
	pcb_sock_buf_bytes = (int)resolved.socket_buffer;   /* our connections, and the forked source's */
	int rc = run_setup_check(r);
	if (!rc)
		rc = run_setup_params(r);
	if (!rc)
		rc = r->local ? run_local_only(r) : run_postcopy(r);
	*stranded = r->stranded;
	return run_cleanup(r, rc);
}
