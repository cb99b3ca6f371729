/* The reports of one run: the JSON (schema in docs/metrics.md), the human
 * summary on stdout, and the progress CSVs. */
#include "run/internal.h"
#include "run/hugepages.h"
#include "common/hist.h"
#include "common/json.h"
#include "common/util.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCB_SCHEMA_VERSION 1

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

/* Updates the guest made, at the source (--precopy) and here. */
uint64_t run_app_updates(const struct run *r)
{
	struct run_vcpu_sums t = run_vcpu_sums(r);
	return t.writes + t.precopy_writes;
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
	pcb_json_u64(j, "updates_done", run_app_updates(r));
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
	uint64_t sum = run_vcpu_sums(r).blocktime_ns;
	bool known;
	pcb_json_obj_begin(j, "blocktime");
	pcb_json_arr_begin(j, "per_vcpu_ns");
	for (unsigned v = 0; v < r->cfg->vcpus; v++)
		pcb_json_u64(j, NULL, pcb_guest_result(r->guest, v)->blocktime_ns);
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
	const struct pcb_pager_stats *s = &r->ps;
	pcb_json_obj_begin(j, "faults");
	pcb_json_u64(j, "count", fault->count);   /* accesses that blocked (docs/metrics.md) */
	pcb_json_u64(j, "undelivered", run_vcpu_sums(r).faults_undelivered);   /* ... during which the pager read no message of that vCPU */
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
	pcb_json_str(j, "demand_replies", s->demand_lanes ? "lanes" : s->reply_thread ? "thread" : "inline");   /* resolved */
	pcb_json_u64(j, "demand_lanes", s->demand_lanes);
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
	if (!r->net.remote) {   /* how the forked source held the image (--source-image, docs/metrics.md) */
		pcb_json_str(j, "source_image", pcb_source_image_name(r->source_image.mode));
		pcb_json_u64(j, "source_image_build_ns", r->source_image.build_ns);
		pcb_json_u64(j, "source_image_build_cpu_ns", r->source_image.cpu_ns);
		pcb_json_str(j, "source_image_reason", r->source_image.reason ? r->source_image.reason : "");
		const char *send_why, *send = run_source_send(r, &send_why);
		pcb_json_str(j, "source_send", send);
		pcb_json_str(j, "source_send_reason", send_why);
	}
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
	}
	pcb_json_arr_end(j);
	struct run_vcpu_sums t = run_vcpu_sums(r);
	pcb_json_u64(j, "ops", t.ops);
	pcb_json_u64(j, "reads", t.reads);
	pcb_json_u64(j, "writes", t.writes);
	pcb_json_u64(j, "read_mismatches", t.read_mismatches);
	double gs = s->t_guest_done_ns ? pcb_ns_to_s(s->t_guest_done_ns - s->t_switchover_ns) : 0;
	pcb_json_dbl(j, "ops_per_sec", gs > 0 ? (double)t.ops / gs : 0);
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

void run_write_json(struct run *r, FILE *fp)
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
			(unsigned long long)run_app_updates(r), (unsigned long long)a->rows_digest,
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
	struct run_vcpu_sums t = run_vcpu_sums(r);
	double gs = pcb_ns_to_s(s->t_guest_done_ns - s->t_switchover_ns);

	fprintf(fp, "pcbench %s (git %s): %s of %s, policy %s, workload %s, %u vCPU%s, seed %llu\n",
		PCB_VERSION, PCB_GITREV, r->local ? (cfg->guest != PCB_GUEST_KVM ? "local baseline (no migration)" : "local baseline (no migration), KVM guest")
			 : cfg->guest != PCB_GUEST_KVM ? (cfg->precopy_ns ? "pre-copy then post-copy migration" : "post-copy migration")
						     : "post-copy migration of a KVM guest",
		pcb_fmt_size(cfg->mem, b1, sizeof(b1)), cfg->policy, cfg->workload,
		cfg->vcpus, cfg->vcpus > 1 ? "s" : "", (unsigned long long)cfg->seed);
	fprintf(fp, "  kernel %s, %d CPUs, THP %s", r->sys.kernel, r->sys.cpus_online, r->sys.thp_enabled);
	pcb_sysinfo_print_reporting(&r->sys, fp);
	fputc('\n', fp);
	if (r->local) {
		fprintf(fp, "  guest       %llu ops, %.3f M ops/s (all memory local)\n", (unsigned long long)t.ops,
			gs > 0 ? (double)t.ops / gs / 1e6 : 0.0);
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
	fmt_ns(t.blocktime_ns, b1, sizeof(b1));
	bool bt_known;
	uint64_t bt_all = blocktime_all(r, &bt_known);
	fmt_ns(bt_all, b2, sizeof(b2));
	fprintf(fp, "  blocktime   %s summed over vCPUs, %s all vCPUs at once", b1, bt_known ? b2 : "n/a");
	for (unsigned v = 0; v < cfg->vcpus && v < 8; v++) {
		fmt_ns(pcb_guest_result(r->guest, v)->blocktime_ns, b1, sizeof(b1));
		fprintf(fp, "%svCPU%u %s", v ? ", " : " (", v, b1);
	}
	fprintf(fp, "%s)\n", cfg->vcpus > 8 ? ", ..." : "");
	fprintf(fp, "  guest       %llu ops, %.3f M ops/s\n", (unsigned long long)t.ops, gs > 0 ? (double)t.ops / gs / 1e6 : 0.0);
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

int run_emit_reports(struct run *r)
{
	if (r->guest)
		write_human(r, stdout);
	if (r->cfg->json[0]) {
		FILE *fp = fopen(r->cfg->json, "w");
		if (!fp) {
			pcb_err("cannot write --json file '%s': %s", r->cfg->json, strerror(errno));
			return PCB_EXIT_OSERR;
		}
		run_write_json(r, fp);
		if (fclose(fp) != 0) {
			pcb_err("cannot write --json file '%s': %s", r->cfg->json, strerror(errno));
			return PCB_EXIT_OSERR;
		}
	}
	fflush(stdout);
	return 0;
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

int run_write_progress_csv(struct run *r, const struct pcb_progress *p, const char *suffix)
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
