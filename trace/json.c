/* The "bpf" object of the result JSON (pcbench --trace, pctrace --json):
 * attach kinds, filter, fault counts and histograms, KVM, anomalies, the
 * per-thread table and the pager's USDT breakdown.  See trace/internal.h. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "trace/internal.h"

static const char *const kind_names[PG_NKINDS] = {
	"demand", "background", "zero_demand", "zero_background", "drain", "zero_drain",
};

/* A JSON member per counter, in the table's order. */
struct named_counter {
	const char *name;
	unsigned idx;
};
#define NAMED(a) (a), sizeof(a) / sizeof((a)[0])

static void json_counters(struct pcb_json *j, const struct named_counter *f, size_t n, const uint64_t *c)
{
	for (size_t i = 0; i < n; i++)
		pcb_json_u64(j, f[i].name, c[f[i].idx]);
}

static const struct named_counter pg_probes[] = {
	{ "fault", PG_C_FAULT }, { "request", PG_C_REQUEST }, { "received", PG_C_RECEIVED },
	{ "installed", PG_C_INSTALLED }, { "decision", PG_C_DECISION }, { "guest_stop", PG_C_GUEST_STOP },
};
static const struct named_counter pg_totals[] = {
	{ "install_errors", PG_C_ERRORS }, { "requested_pages_demand", PG_C_REQ_PAGES + 0 },
	{ "requested_pages_background", PG_C_REQ_PAGES + 1 }, { "received_zero", PG_C_RECV_ZERO },
	{ "decision_pages", PG_C_DECISION_PAGES }, { "unmatched_installs", PG_C_UNMATCHED },
};

static void pager_json(struct pcb_trace *t, struct pcb_json *j)
{
	const struct pg_stats *s = t->final_pg;
	struct pg_stats *live = NULL;

	if (!s && t->pg && !t->stopped) {
		live = calloc(1, sizeof(*live));
		if (live && trace_read_pg(t, live) == 0)
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
	json_counters(j, NAMED(pg_probes), s->counter);
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
	json_counters(j, NAMED(pg_totals), s->counter);
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

/* trace.attach: how each hook attached, or why not (pcb_trace_attach_kind). */
static void json_attach(struct pcb_trace *t, struct pcb_json *j)
{
	static const char *const points[] = {
		"page_fault", "sched_switch", "sched_wakeup", "read", "kvm_page_fault", "kvm_mmu",
		"handle_userfault", "page_fault_kernel", "ranges", "resolve", "usdt",
	};

	pcb_json_obj_begin(j, "attach");
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		pcb_json_str(j, points[i], pcb_trace_attach_kind(t, points[i]));
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

static const struct named_counter fl_faults[] = {
	{ "faults_blocked", FL_C_BLOCKED_ALL }, { "faults_seen", FL_C_FAULTS },
	{ "faults_nonblocking", FL_C_NONBLOCKING }, { "faults_out_of_range", FL_C_OUT_OF_RANGE },
	{ "faults_seen_kernel_mode", FL_C_KERNEL_FAULTS },
};
static const struct named_counter fl_registrations[] = {
	{ "registered", FL_C_REGISTER }, { "ranges_removed_or_trimmed", FL_C_UNREGISTER },
	{ "remapped", FL_C_REMAP }, { "ranges_full", FL_C_RANGES_FULL },
};
static const struct named_counter fl_messages[] = {
	{ "read", FL_C_MSGS }, { "unmatched", FL_C_MSG_UNMATCHED }, { "without_thread_id", FL_C_MSG_NO_TID },
	{ "matched_by_page", FL_C_MSG_BY_ADDR }, { "other_processes", FL_C_MSG_OTHER },
	{ "read_after_close", FL_C_MSG_LATE }, { "delivered_without_block", FL_C_DELIVERED_NOBLOCK },
	{ "blocked_resolved_before_read", FL_C_BLOCKED_UNDELIVERED },
};
static const struct named_counter fl_anomalies[] = {
	{ "preempted_in_fault", FL_C_PREEMPTED }, { "preempted_entering_wait", FL_C_PREEMPT_WAIT },
	{ "preempted_entering_wait_not_woken", FL_C_PREEMPT_WAIT_UNDONE }, { "late_sleep", FL_C_LATE_SLEEP },
	{ "uninterruptible_sleep_in_fault", FL_C_SLEEP_OTHER }, { "lost", FL_C_LOST },
	{ "lost_after_preempted_wait", FL_C_LOST_PWAIT }, { "lost_counted_as_faults", FL_C_LOST_DELIVERED },
};
static const struct named_counter fl_anomalies_end[] = {
	{ "exited_in_fault", FL_C_EXITED }, { "uffd_entered", FL_C_UFFD_ENTERED },
	{ "state_map_full", FL_C_STATE_FULL }, { "thread_map_full", FL_C_TSTATS_FULL },
};

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
	json_counters(j, NAMED(fl_faults), c);
	pcb_json_obj_begin(j, "registrations");
	json_counters(j, NAMED(fl_registrations), c);
	pcb_json_obj_end(j);
	pcb_json_u64(j, "protection_faults_skipped", c[FL_C_PROT]);
	pcb_json_obj_begin(j, "messages");
	pcb_json_bool(j, "tracked", t->msgs);
	json_counters(j, NAMED(fl_messages), c);
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
	json_counters(j, NAMED(fl_anomalies), c);
	pcb_json_u64(j, "program_runs_skipped", t->stopped ? t->prog_misses : trace_prog_misses(t));
	json_counters(j, NAMED(fl_anomalies_end), c);
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
