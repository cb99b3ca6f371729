#include "common/pin.h"
#include "common/util.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const pcb_pin_role_names[PCB_PIN_ROLES] = { "guest", "demand", "background", "source", "install" };

int pcb_pin_parse(const char *s, struct pcb_pin *out, char *why, size_t whylen)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 0; i < PCB_PIN_ROLES; i++)
		out->cpu[i] = -1;
	if (!strcmp(s, "none") || !*s)
		return 0;
	if (!strcmp(s, "same")) {
		for (int i = 0; i < PCB_PIN_ROLES; i++)
			out->cpu[i] = 0;
		return 0;
	}
	if (!strcmp(s, "split")) {
		if (ncpu < 2) {
			snprintf(why, whylen, "invalid value for --pin: 'split' needs 2 CPUs, this machine has %ld", ncpu);
			return -1;
		}
		out->cpu[PCB_PIN_GUEST] = out->cpu[PCB_PIN_DEMAND] = 0;
		out->cpu[PCB_PIN_BACKGROUND] = out->cpu[PCB_PIN_SOURCE] = out->cpu[PCB_PIN_INSTALL] = 1;
		return 0;
	}
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int role = -1;
		if (eq) {
			*eq = 0;
			for (int i = 0; i < PCB_PIN_ROLES; i++)
				if (!strcmp(tok, pcb_pin_role_names[i]))
					role = i;
		}
		uint64_t cpu;
		if (role < 0 || pcb_parse_u64(eq + 1, &cpu) < 0) {
			snprintf(why, whylen, "invalid value for --pin: '%s' (want none, same, split, or ROLE=CPU,... "
				 "with ROLE guest|demand|background|source|install)", s);
			return -1;
		}
		if ((long)cpu >= ncpu) {
			snprintf(why, whylen, "invalid value for --pin: '%s' (CPU %llu does not exist; %ld CPUs online)", s,
				 (unsigned long long)cpu, ncpu);
			return -1;
		}
		out->cpu[role] = (int)cpu;
	}
	return 0;
}

int pcb_pin_tid(int tid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(tid, sizeof(set), &set) < 0 ? -errno : 0;
}

int pcb_pin_self(int cpu)
{
	return pcb_pin_tid(0, cpu);
}
