#include "run/perf.h"
#include "common/json.h"
#include "common/pin.h"
#include "common/util.h"
#include "cli/options.h"
#include "pager/pager.h"
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static bool inside(const struct pcb_mem_range *r, int n, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < n; i++) {
		uint64_t a = (uint64_t)(uintptr_t)r[i].addr;
		if (r[i].addr && lo >= a && hi <= a + r[i].len)
			return true;
	}
	return false;
}

int pcb_mem_measure(struct pcb_mem_report *m, const struct pcb_mem_range *guest, int ng,
		    const struct pcb_mem_range *record, int nr, uint64_t region_bytes)
{
	memset(m, 0, sizeof(*m));
	m->guest_region_bytes = region_bytes;
	FILE *fp = fopen("/proc/self/smaps", "r");
	if (!fp)
		return -1;
	char line[512];
	uint64_t lo = 0, hi = 0;
	bool bpf = false;
	while (fgets(line, sizeof(line), fp)) {
		uint64_t a, b, kb;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			lo = a;
			hi = b;
			bpf = strstr(line, "anon_inode:bpf") != NULL;   /* a BPF map of the tracer (--trace), mmapped */
			continue;
		}
		if (sscanf(line, "Rss: %" SCNu64 " kB", &kb) == 1) {
			if (inside(guest, ng, lo, hi))
				m->guest_rss += kb * 1024;
			else if (bpf)
				m->bpf_rss += kb * 1024;
			else
				m->pager_rss += kb * 1024;
		}
	}
	fclose(fp);
	/* the records are anonymous mappings the kernel may merge with their
	 * neighbours, or heap blocks: count their resident pages with mincore
	 * instead, only the pages wholly inside a record (a page it shares with
	 * other data stays the pager's) */
	for (int i = 0; i < nr; i++) {
		uint64_t lo_a = ((uint64_t)(uintptr_t)record[i].addr + 4095) & ~4095ull;
		uint64_t hi_a = ((uint64_t)(uintptr_t)record[i].addr + record[i].len) & ~4095ull;
		if (!record[i].addr || hi_a <= lo_a)
			continue;
		uint64_t pages = (hi_a - lo_a) / 4096;
		unsigned char *vec = malloc(pages);
		if (vec && mincore((void *)(uintptr_t)lo_a, pages * 4096, vec) == 0)
			for (uint64_t k = 0; k < pages; k++)
				*(i ? &m->stall_rss : &m->record_rss) += (vec[k] & 1) ? 4096 : 0;
		free(vec);
	}
	uint64_t harness = m->record_rss + m->stall_rss;
	m->pager_rss = m->pager_rss > harness ? m->pager_rss - harness : 0;
	fp = fopen("/proc/self/status", "r");
	if (fp) {
		while (fgets(line, sizeof(line), fp)) {
			uint64_t kb;
			if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kb) == 1)
				m->hwm = kb * 1024;
		}
		fclose(fp);
	}
	m->done = true;
	return 0;
}

void pcb_perf_json(struct pcb_json *j, const struct pcb_config *cfg, const struct pcb_pin *pin,
		   const struct pcb_pager_stats *s, const struct pcb_mem_report *m)
{
	/* a path that assembles 2 MiB chunks (move) reports them */
	const struct pcb_install_ops *ops = pcb_install_find(cfg->install, false);
	bool chunked = ops && ops->rx == PCB_INRX_CHUNK;
	pcb_json_obj_begin(j, "install");
	pcb_json_str(j, "mode", cfg->install);
	pcb_json_u64(j, "batch_pages", cfg->install_batch);
	pcb_json_u64(j, "zero_inline", cfg->zero_inline);
	pcb_json_str(j, "installer", s->install_inline ? "inline" : "thread");   /* --installer: who issued the background installs */
	const struct pcb_install_stats *is[2] = { &s->inst_demand, &s->inst_bg };
	static const char *const nm[2] = { "demand", "background" };
	for (int i = 0; i < 2; i++) {
		pcb_json_obj_begin(j, nm[i]);
		pcb_json_u64(j, "ioctls", is[i]->ioctls);
		pcb_json_u64(j, "pages", is[i]->pages);
		pcb_json_dbl(j, "pages_per_ioctl", is[i]->ioctls ? (double)is[i]->pages / (double)is[i]->ioctls : 0);
		pcb_json_u64(j, "wakes", is[i]->wakes);
		pcb_json_u64(j, "eexist", is[i]->eexist);
		pcb_json_u64(j, "install_ns", is[i]->install_ns);
		pcb_json_dbl(j, "install_pages_per_sec", is[i]->install_ns ? (double)is[i]->pages * 1e9 / (double)is[i]->install_ns : 0);
		pcb_json_u64(j, "rx_direct_bytes", is[i]->rx_direct_bytes);
		pcb_json_u64(j, "rx_copied_bytes", is[i]->rx_copied_bytes);
		if (i == 1) {
			pcb_json_u64(j, "installer_jobs", is[i]->jobs);
			pcb_json_u64(j, "installer_job_segments", is[i]->jobs_segs);
			pcb_json_u64(j, "zero_inline_pages", is[i]->zero_inline);
		}
		if (i == 1 && chunked) {
			pcb_json_u64(j, "chunks_whole", is[i]->chunks_whole);
			pcb_json_u64(j, "chunks_partial", is[i]->chunks_partial);
			pcb_json_u64(j, "chunk_reset_ns", is[i]->reset_ns);
			pcb_json_u64(j, "chunk_resets_thp", is[i]->resets_thp);
			pcb_json_u64(j, "chunk_resets_small", is[i]->resets_small);
			pcb_json_u64(j, "move_busy", is[i]->move_busy);
			pcb_json_u64(j, "move_busy_copied_pages", is[i]->move_busy_copied);
		}
		pcb_json_obj_end(j);
	}
	if (chunked)
		pcb_json_u64(j, "guest_thp_bytes", s->guest_thp_bytes);
	uint64_t span = s->t_bg_last_ns > s->t_bg_first_ns ? s->t_bg_last_ns - s->t_bg_first_ns : 0;
	pcb_json_u64(j, "background_span_ns", span);
	pcb_json_dbl(j, "background_bytes_per_sec", span ? (double)s->chan[1].bytes_rx * 1e9 / (double)span : 0);
	pcb_json_u64(j, "background_receive_ns", s->bg_rx_ns);
	pcb_json_obj_end(j);

	pcb_json_obj_begin(j, "placement");
	pcb_json_str(j, "pin", cfg->pin);
	for (int i = 0; i < PCB_PIN_ROLES; i++) {
		char k[32];
		snprintf(k, sizeof(k), "%s_pinned_cpu", pcb_pin_role_names[i]);
		pcb_json_i64(j, k, pin->cpu[i]);
	}
	pcb_json_i64(j, "demand_thread_cpu", s->demand_cpu);
	pcb_json_i64(j, "background_thread_cpu", s->background_cpu);
	pcb_json_i64(j, "install_thread_cpu", s->install_cpu);   /* -1: --installer=inline (no installer thread) */
	pcb_json_obj_end(j);

	pcb_json_obj_begin(j, "memory");
	pcb_json_bool(j, "measured", m->done);
	pcb_json_u64(j, "guest_region_bytes", m->guest_region_bytes);
	pcb_json_u64(j, "guest_region_rss", m->guest_rss);
	pcb_json_u64(j, "pager_rss_excluding_guest", m->pager_rss);
	pcb_json_dbl(j, "pager_rss_fraction_of_guest", m->guest_region_bytes ? (double)m->pager_rss / (double)m->guest_region_bytes : 0);
	pcb_json_u64(j, "first_touch_record_rss", m->record_rss);
	pcb_json_u64(j, "vcpu_stall_records_rss", m->stall_rss);
	pcb_json_u64(j, "bpf_map_rss", m->bpf_rss);
	pcb_json_u64(j, "install_log_runs", s->install_log_runs);
	pcb_json_u64(j, "install_log_bytes", s->install_log_runs * PCB_INSTALL_LOG_RUN_BYTES);
	pcb_json_u64(j, "install_log_dropped", s->install_log_dropped);
	pcb_json_u64(j, "process_vm_hwm", m->hwm);
	pcb_json_u64(j, "pager_process_vm_hwm", m->pager_process_hwm);
	pcb_json_str(j, "method", "/proc/self/smaps Rss after verification: guest region (and its alias mapping) apart, "
		     "the harness's first-touch record and vCPU stall lists apart, the rest is the pager (bitmaps, install record, buffers, heap, code)");
	pcb_json_obj_end(j);
}

void pcb_perf_human(FILE *fp, const struct pcb_config *cfg, const struct pcb_pin *pin,
		    const struct pcb_pager_stats *s, const struct pcb_mem_report *m)
{
	const struct pcb_install_stats *b = &s->inst_bg;
	uint64_t span = s->t_bg_last_ns > s->t_bg_first_ns ? s->t_bg_last_ns - s->t_bg_first_ns : 0;
	fprintf(fp, "  install     %s, batch %u, installer %s: background %llu pages in %llu ioctls (%.1f/ioctl, %llu wakes), %.2f GB/s pulled",
		cfg->install, cfg->install_batch, s->install_inline ? "inline" : "thread", (unsigned long long)b->pages, (unsigned long long)b->ioctls,
		b->ioctls ? (double)b->pages / (double)b->ioctls : 0.0, (unsigned long long)b->wakes,
		span ? (double)s->chan[1].bytes_rx / (double)span : 0.0);
	if (b->zero_inline)
		fprintf(fp, ", %llu zero pages inside data runs", (unsigned long long)b->zero_inline);
	fprintf(fp, "; demand %llu ioctls\n", (unsigned long long)s->inst_demand.ioctls);
	fprintf(fp, "  placement   pin %s: guest %d, demand %d (ran on %d), background %d (ran on %d), install %d (ran on %d), "
		"source %d (-1 = unpinned)\n",
		cfg->pin, pin->cpu[PCB_PIN_GUEST], pin->cpu[PCB_PIN_DEMAND], s->demand_cpu, pin->cpu[PCB_PIN_BACKGROUND],
		s->background_cpu, pin->cpu[PCB_PIN_INSTALL], s->install_cpu, pin->cpu[PCB_PIN_SOURCE]);
	if (m->done) {
		char b1[32], b2[32];
		fprintf(fp, "  memory      pager RSS excluding the guest region %s (%.3f%% of the guest), first-touch record %s\n",
			pcb_fmt_size(m->pager_rss, b1, sizeof(b1)),
			m->guest_region_bytes ? 100.0 * (double)m->pager_rss / (double)m->guest_region_bytes : 0.0,
			pcb_fmt_size(m->record_rss, b2, sizeof(b2)));
		if (m->pager_process_hwm)
			fprintf(fp, "              pager process (--pager=process) peak RSS %s, not included above\n",
				pcb_fmt_size(m->pager_process_hwm, b1, sizeof(b1)));
	}
}
