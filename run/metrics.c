#include "run/metrics.h"
#include "common/json.h"
#include "pager/probes.h"
#include "workloads/workload.h"
#include <errno.h>
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
		bool bg = inst_us[pg] && is_bg(inst_kind[pg]);
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
		if (tu >= inst_us[pg])
			pcb_hist_add(&pf->lead, (uint64_t)(tu - inst_us[pg]) * 1000);
	}
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
	for (size_t i = 0; i < nf; i++)
		fprintf(f, "%.3f,fault,%llu,%s/vcpu%d\n", (double)fe[i].t_ns / 1e3, (unsigned long long)fe[i].page,
			outcome[fe[i].outcome < 3 ? fe[i].outcome : 0], fe[i].vcpu);
	for (uint64_t pg = 0; pg < npages; pg++)
		if (us[pg])
			fprintf(f, "%u,install,%llu,%s\n", us[pg] - 1, (unsigned long long)pg, kind_name(kind[pg]));
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
