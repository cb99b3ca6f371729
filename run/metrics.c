#include "run/metrics.h"
#include "common/json.h"
#include "pager/probes.h"
#include "workloads/workload.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_bg(uint8_t k)
{
	return k == PCB_INST_BACKGROUND || k == PCB_INST_ZERO_BACKGROUND;
}

void pcb_prefetch_compute_until(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
				const uint32_t *inst_us, const uint8_t *inst_kind, uint64_t guest_end_us)
{
	memset(pf, 0, sizeof(*pf));
	pcb_hist_init(&pf->lead);
	pf->guest_end_us = guest_end_us;
	for (uint64_t pg = 0; pg < npages; pg++) {
		uint32_t t = atomic_load_explicit(&first_touch[pg], memory_order_relaxed);
		bool bg = inst_us[pg] && is_bg((uint8_t)pcb_kind_at(inst_kind, pg));
		bool before_end = bg && (!guest_end_us || inst_us[pg] <= guest_end_us);
		pf->bg_installed += bg;
		pf->bg_before_end += before_end;
		if (!t) {
			pf->bg_unused += before_end;
			continue;
		}
		pf->touched++;
		if (t & PCB_TOUCH_FAULTED) {
			pf->touched_faulted++;
			pf->bg_late += before_end;
			continue;
		}
		pf->hits++;
		if (!bg)
			continue;
		pf->hits_background++;
		pf->bg_used += before_end;
		uint32_t tu = t & ~PCB_TOUCH_FAULTED;
		pf->lead_clamped += tu < inst_us[pg];
		pcb_hist_add(&pf->lead, tu >= inst_us[pg] ? (uint64_t)(tu - inst_us[pg]) * 1000 : 0);
	}
}

static bool is_zero_kind(uint8_t k)
{
	return k == PCB_INST_ZERO_DEMAND || k == PCB_INST_ZERO_BACKGROUND || k == PCB_INST_ZERO_DRAIN;
}

/* One page's part in the window's figures. */
static void window_page(struct pcb_prefetch_window *w, uint32_t t, uint32_t inst, uint8_t kind, uint64_t guest_end_us)
{
	bool zero = inst && is_zero_kind(kind);
	bool bg = inst && is_bg(kind) && inst <= w->end_us && (!guest_end_us || inst <= guest_end_us);
	uint32_t tu = t & ~PCB_TOUCH_FAULTED;
	bool touched = t && tu <= w->end_us, faulted = touched && (t & PCB_TOUCH_FAULTED);
	*(zero ? &w->zero_bg_installed : &w->bg_installed) += bg;
	*(zero ? &w->zero_touched : &w->touched) += touched;
	*(zero ? &w->zero_faults : &w->faults) += faulted;
	*(zero ? &w->zero_hits : &w->hits) += touched && !faulted;
	if (!bg || !touched)
		return;
	if (faulted) {
		if (!zero) {   /* the guest blocked on a page the pull was bringing */
			w->bg_late++;
			pcb_hist_add(&w->late_by, tu <= inst ? (uint64_t)(inst - tu) * 1000 : 0);
		}
		return;
	}
	if (zero) {
		w->zero_bg_used++;
		return;
	}
	w->bg_used++;
	w->lead_clamped += tu < inst;
	pcb_hist_add(&w->lead, tu >= inst ? (uint64_t)(tu - inst) * 1000 : 0);
}

void pcb_prefetch_compute_window(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
				 const uint32_t *inst_us, const uint8_t *inst_kind, uint64_t guest_end_us,
				 uint64_t complete_us)
{
	pcb_prefetch_compute_until(pf, npages, first_touch, inst_us, inst_kind, guest_end_us);
	struct pcb_prefetch_window *w = &pf->win;
	memset(w, 0, sizeof(*w));
	pcb_hist_init(&w->lead);
	pcb_hist_init(&w->late_by);
	w->end_us = complete_us ? complete_us : UINT32_MAX;
	for (uint64_t pg = 0; pg < npages; pg++)
		window_page(w, atomic_load_explicit(&first_touch[pg], memory_order_relaxed), inst_us[pg], (uint8_t)pcb_kind_at(inst_kind, pg),
			    guest_end_us);
	if (!complete_us)
		w->end_us = 0;
}

static void ratio_json(struct pcb_json *j, const char *key, uint64_t num, uint64_t den)
{
	if (den)
		pcb_json_dbl(j, key, (double)num / (double)den);
	else
		pcb_json_null(j, key);
}

static void window_json(const struct pcb_prefetch_window *w, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	pcb_json_str(j, "window", "switch-over to the last page present (docs/metrics.md); zero pages apart, "
				  "not in hit_rate or accuracy");
	if (w->end_us)
		pcb_json_u64(j, "window_end_us", w->end_us - 1);
	else
		pcb_json_null(j, "window_end_us");
	pcb_json_u64(j, "pages_touched", w->touched);
	pcb_json_u64(j, "hits", w->hits);
	pcb_json_u64(j, "faults", w->faults);
	ratio_json(j, "hit_rate", w->hits, w->touched);
	pcb_json_u64(j, "background_installed", w->bg_installed);
	pcb_json_u64(j, "background_used", w->bg_used);
	ratio_json(j, "accuracy", w->bg_used, w->bg_installed);
	pcb_json_u64(j, "late_prefetches", w->bg_late);
	pcb_hist_json(j, "late_by", &w->late_by, 0);
	pcb_hist_json(j, "lead_time", &w->lead, 0);
	pcb_json_u64(j, "lead_time_clamped", w->lead_clamped);
	pcb_json_u64(j, "zero_pages_touched", w->zero_touched);
	pcb_json_u64(j, "zero_hits", w->zero_hits);
	pcb_json_u64(j, "zero_faults", w->zero_faults);
	pcb_json_u64(j, "zero_background_installed", w->zero_bg_installed);
	pcb_json_u64(j, "zero_background_used", w->zero_bg_used);
	pcb_json_obj_end(j);
}

void pcb_prefetch_compute(struct pcb_prefetch *pf, uint64_t npages, const _Atomic uint32_t *first_touch,
			  const uint32_t *inst_us, const uint8_t *inst_kind)
{
	pcb_prefetch_compute_until(pf, npages, first_touch, inst_us, inst_kind, 0);
}

void pcb_prefetch_json(const struct pcb_prefetch *pf, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	pcb_json_str(j, "method", "guest first-touch record vs pager install record (docs/metrics.md: how the prefetch metrics are computed)");
	pcb_json_u64(j, "pages_touched", pf->touched);
	pcb_json_u64(j, "first_touch_faulted", pf->touched_faulted);
	pcb_json_u64(j, "hits", pf->hits);
	pcb_json_u64(j, "hits_background", pf->hits_background);
	pcb_json_u64(j, "background_installed", pf->bg_installed);
	pcb_json_u64(j, "background_before_guest_end", pf->bg_before_end);
	pcb_json_u64(j, "background_used", pf->bg_used);
	pcb_json_u64(j, "background_late", pf->bg_late);
	pcb_json_u64(j, "background_unused", pf->bg_unused);
	if (pf->guest_end_us)
		pcb_json_u64(j, "guest_end_us", pf->guest_end_us - 1);
	else
		pcb_json_null(j, "guest_end_us");
	if (pf->touched)
		pcb_json_dbl(j, "hit_rate", (double)pf->hits / (double)pf->touched);
	else
		pcb_json_null(j, "hit_rate");
	if (pf->bg_before_end)
		pcb_json_dbl(j, "accuracy", (double)pf->bg_used / (double)pf->bg_before_end);
	else
		pcb_json_null(j, "accuracy");
	pcb_hist_json(j, "lead_time", &pf->lead, 0);
	pcb_json_u64(j, "lead_time_clamped", pf->lead_clamped);
	window_json(&pf->win, j, "during_migration");
	pcb_json_obj_end(j);
}

/* Intersect two sorted, non-overlapping interval lists into out (room for na + nb). */
static uint64_t intersect(const struct pcb_stall *a, uint64_t na, const struct pcb_stall *b, uint64_t nb,
			  struct pcb_stall *out)
{
	uint64_t i = 0, k = 0, n = 0;
	while (i < na && k < nb) {
		uint64_t lo = a[i].t0 > b[k].t0 ? a[i].t0 : b[k].t0;
		uint64_t hi = a[i].t1 < b[k].t1 ? a[i].t1 : b[k].t1;
		if (lo < hi)
			out[n++] = (struct pcb_stall){ lo, hi };
		if (a[i].t1 < b[k].t1)
			i++;
		else
			k++;
	}
	return n;
}

uint64_t pcb_blocktime_all(const struct pcb_stall *const *stalls, const uint64_t *nstalls, unsigned n)
{
	if (!n)
		return 0;
	uint64_t cap = nstalls[0], na = nstalls[0];
	for (unsigned v = 1; v < n; v++)
		cap += nstalls[v];
	struct pcb_stall *acc = malloc((cap ? cap : 1) * sizeof(*acc)), *tmp = malloc((cap ? cap : 1) * sizeof(*tmp));
	uint64_t total = 0;
	if (acc && tmp) {
		if (na)
			memcpy(acc, stalls[0], na * sizeof(*acc));
		for (unsigned v = 1; v < n && na; v++) {
			na = intersect(acc, na, stalls[v], nstalls[v], tmp);
			struct pcb_stall *sw = acc;
			acc = tmp;
			tmp = sw;
		}
		for (uint64_t i = 0; i < na; i++)
			total += acc[i].t1 - acc[i].t0;
	}
	free(acc);
	free(tmp);
	return total;
}

static void cpu_field(struct pcb_json *j, const char *key, int64_t v)
{
	if (v >= 0)
		pcb_json_i64(j, key, v);
	else
		pcb_json_null(j, key);
}

void pcb_cpu_json(const struct pcb_cpu_report *c, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	pcb_json_str(j, "method", "the kernel's per-thread accounting: CLOCK_THREAD_CPUTIME_ID read by each thread as it "
				  "ends; process: getrusage(RUSAGE_SELF); source: wait4's rusage (docs/metrics.md)");
	cpu_field(j, "process_ns", c->process_ns);
	cpu_field(j, "vcpus_ns", c->vcpus_ns);
	cpu_field(j, "demand_ns", c->demand_ns);
	cpu_field(j, "background_ns", c->background_ns);
	cpu_field(j, "installer_ns", c->installer_ns);
	cpu_field(j, "main_ns", c->main_ns);
	cpu_field(j, "main_wait_ns", c->main_wait_ns);
	cpu_field(j, "source_process_ns", c->source_ns);
	cpu_field(j, "pager_process_ns", c->pager_process_ns);
	pcb_json_u64(j, "wall_ns", c->wall_ns);
	pcb_json_obj_end(j);
}

static const char *kind_name(uint8_t k)
{
	static const char *const n[] = { "demand", "background", "zero_demand", "zero_background", "drain", "zero_drain" };
	return k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

int pcb_timeline_write_records(const char *path, const struct pcb_fault_ev *fe, size_t nf, uint64_t npages,
				const uint32_t *us, const uint8_t *kind, const _Atomic uint32_t *first_touch)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	static const char *const outcome[] = { "requested", "present", "inflight" };
	fprintf(f, "t_us,event,page,detail\n");
	for (size_t i = 0; i < nf; i++) {
		unsigned o = pcb_fev_outcome(&fe[i]);
		fprintf(f, "%.3f,fault,%llu,%s/vcpu%d\n", (double)pcb_fev_t_ns(&fe[i]) / 1e3,
			(unsigned long long)pcb_fev_page(&fe[i]), outcome[o < 3 ? o : 0], pcb_fev_vcpu(&fe[i]));
	}
	for (uint64_t pg = 0; pg < npages; pg++)
		if (us[pg])
			fprintf(f, "%u,install,%llu,%s\n", us[pg] - 1, (unsigned long long)pg, kind_name((uint8_t)pcb_kind_at(kind, pg)));
	for (uint64_t pg = 0; first_touch && pg < npages; pg++) {
		uint32_t t = atomic_load_explicit(&first_touch[pg], memory_order_relaxed);
		if (t)
			fprintf(f, "%u,touch,%llu,%s\n", (t & ~PCB_TOUCH_FAULTED) - 1, (unsigned long long)pg,
				t & PCB_TOUCH_FAULTED ? "faulted" : "present");
	}
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

int pcb_timeline_write(const char *path, struct pcb_pager *p, uint64_t npages, const _Atomic uint32_t *first_touch)
{
	size_t nf;
	const struct pcb_fault_ev *fe = pcb_pager_fault_events(p, &nf);
	return pcb_timeline_write_records(path, fe, nf, npages, pcb_pager_install_us(p), pcb_pager_install_kind(p),
					  first_touch);
}
