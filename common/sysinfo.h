/* The system block recorded in every result file. */
#ifndef PCB_SYSINFO_H
#define PCB_SYSINFO_H
#include <stdint.h>
#include <stdio.h>

struct pcb_json;

struct pcb_sysinfo {
	char kernel[128];        /* uname -r */
	char machine[32];
	char hostname[64];
	char cpu_model[128];
	int cpus_online;
	uint64_t mem_total;
	char thp_enabled[32];    /* the [selected] word of /sys/kernel/mm/transparent_hugepage/enabled */
	char thp_defrag[32];
	int free_page_reporting_order;   /* a balloon hands freed 2^order-page blocks to the host; -1: none */
	long page_size;
	char compiler[64];
	char libbpf[32];
	char libc[32];
	char clocksource[32];
	double loadavg[3];       /* /proc/loadavg 1, 5, 15 min when read: other work sharing the CPUs */
};

void pcb_sysinfo_read(struct pcb_sysinfo *s);
void pcb_sysinfo_json(const struct pcb_sysinfo *s, struct pcb_json *j, const char *key);
/* ", freed memory reported to the host (order N)" on a summary's host line, when it is */
void pcb_sysinfo_print_reporting(const struct pcb_sysinfo *s, FILE *fp);
#endif
