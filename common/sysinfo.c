#include "common/sysinfo.h"
#include "common/json.h"
#include <bpf/libbpf.h>
#include <glob.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

static void read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	out[0] = 0;
	if (!f)
		return;
	if (fgets(out, (int)len, f))
		out[strcspn(out, "\n")] = 0;
	fclose(f);
}

/* "always [madvise] never" -> "madvise" */
static void bracketed(const char *path, char *out, size_t len)
{
	char line[256];
	read_line(path, line, sizeof(line));
	char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
	if (a && b) {
		*b = 0;
		snprintf(out, len, "%s", a + 1);
	} else {
		snprintf(out, len, "%s", line[0] ? line : "unknown");
	}
}

/* Free page reporting: a bound virtio balloon offering VIRTIO_BALLOON_F_REPORTING
 * (feature bit 5 of its sysfs `features` string) hands freed blocks of
 * 2^page_reporting_order pages back to the host, so memory freed a few seconds
 * earlier is host-cold when reused (docs/metrics.md, "Scale").  The order, or
 * -1 when no balloon reports. */
static int free_page_reporting_order(void)
{
	glob_t g;
	bool on = false;
	if (glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*/features", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && !on; i++) {
			char f[160];
			read_line(g.gl_pathv[i], f, sizeof(f));
			on = strlen(f) > 5 && f[5] == '1';
		}
		globfree(&g);
	}
	char order[16];
	read_line("/sys/module/page_reporting/parameters/page_reporting_order", order, sizeof(order));
	return on && order[0] ? atoi(order) : -1;
}

void pcb_sysinfo_read(struct pcb_sysinfo *s)
{
	struct utsname u;
	memset(s, 0, sizeof(*s));
	if (uname(&u) == 0) {
		snprintf(s->kernel, sizeof(s->kernel), "%s", u.release);
		snprintf(s->machine, sizeof(s->machine), "%s", u.machine);
		snprintf(s->hostname, sizeof(s->hostname), "%s", u.nodename);
	}
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf %lf %lf", &s->loadavg[0], &s->loadavg[1], &s->loadavg[2]) != 3)
			s->loadavg[0] = s->loadavg[1] = s->loadavg[2] = 0;
		fclose(la);
	}
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(s->cpu_model, sizeof(s->cpu_model), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');
			if (c) {
				c++;
				while (*c == ' ' || *c == '\t')
					c++;
				c[strcspn(c, "\n")] = 0;
				snprintf(s->cpu_model, sizeof(s->cpu_model), "%s", c);
			}
			break;
		}
	}
	if (f)
		fclose(f);
	s->cpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		s->mem_total = (uint64_t)si.totalram * si.mem_unit;
	bracketed("/sys/kernel/mm/transparent_hugepage/enabled", s->thp_enabled, sizeof(s->thp_enabled));
	bracketed("/sys/kernel/mm/transparent_hugepage/defrag", s->thp_defrag, sizeof(s->thp_defrag));
	read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", s->clocksource, sizeof(s->clocksource));
	s->free_page_reporting_order = free_page_reporting_order();
	s->page_size = sysconf(_SC_PAGESIZE);
#if defined(__clang__)
	snprintf(s->compiler, sizeof(s->compiler), "clang %s", __clang_version__);
#elif defined(__GNUC__)
	snprintf(s->compiler, sizeof(s->compiler), "gcc %s", __VERSION__);
#endif
	snprintf(s->libbpf, sizeof(s->libbpf), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	snprintf(s->libc, sizeof(s->libc), "glibc %s", gnu_get_libc_version());
}

void pcb_sysinfo_json(const struct pcb_sysinfo *s, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	PCB_JSON_FIELDS(j, PCB_JSTR("kernel", s->kernel), PCB_JSTR("machine", s->machine),
			PCB_JSTR("hostname", s->hostname), PCB_JSTR("cpu_model", s->cpu_model),
			PCB_JI64("cpus_online", s->cpus_online), PCB_JU64("mem_total_bytes", s->mem_total),
			PCB_JSTR("thp_enabled", s->thp_enabled), PCB_JSTR("thp_defrag", s->thp_defrag),
			PCB_JI64("free_page_reporting_order", s->free_page_reporting_order),
			PCB_JI64("page_size", s->page_size), PCB_JSTR("clocksource", s->clocksource),
			PCB_JSTR("compiler", s->compiler), PCB_JSTR("libbpf", s->libbpf), PCB_JSTR("libc", s->libc));
	pcb_json_arr_begin(j, "loadavg");
	for (int i = 0; i < 3; i++)
		pcb_json_dbl(j, NULL, s->loadavg[i]);
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
}

void pcb_sysinfo_print_reporting(const struct pcb_sysinfo *s, FILE *fp)
{
	if (s->free_page_reporting_order >= 0)
		fprintf(fp, ", freed memory reported to the host (order %d)", s->free_page_reporting_order);
}
