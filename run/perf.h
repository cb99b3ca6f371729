/* Performance bookkeeping of a run: install path and batching, thread
 * placement, and the destination's memory (RSS excluding the guest region). */
#ifndef PCB_PERF_H
#define PCB_PERF_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct pcb_json;
struct pcb_config;
struct pcb_pin;
struct pcb_pager_stats;

struct pcb_mem_range {
	const void *addr;
	uint64_t len;
};

struct pcb_mem_report {
	bool done;
	uint64_t guest_region_bytes;     /* --mem */
	uint64_t guest_rss;              /* resident in the guest region (and its alias mapping, continue) */
	uint64_t record_rss;             /* harness-side per-page records (guest first-touch record: record[0]) */
	uint64_t stall_rss;              /* harness-side per-fault records (each vCPU's stall list: record[1..]) */
	uint64_t bpf_rss;                /* the tracer's BPF maps mapped into the process (--trace), apart */
	uint64_t pager_rss;              /* everything else resident in the destination process */
	uint64_t hwm;                    /* VmHWM of the destination process */
	uint64_t pager_process_hwm;      /* --pager=process: VmHWM of the pager process (0 = thread mode) */
};

/* Read /proc/self/smaps: RSS inside guest[] (ng ranges), inside record[] (nr ranges: the first-touch
 * record, then the vCPUs' stall lists; pages wholly inside), and the rest. */
int pcb_mem_measure(struct pcb_mem_report *m, const struct pcb_mem_range *guest, int ng,
		    const struct pcb_mem_range *record, int nr, uint64_t region_bytes);
void pcb_perf_json(struct pcb_json *j, const struct pcb_config *cfg, const struct pcb_pin *pin,
		   const struct pcb_pager_stats *s, const struct pcb_mem_report *m);
void pcb_perf_human(FILE *fp, const struct pcb_config *cfg, const struct pcb_pin *pin,
		    const struct pcb_pager_stats *s, const struct pcb_mem_report *m);
#endif
