/* --page-size=2M validation and the hugetlb pool check (see hugepages.h). */
#include "run/hugepages.h"
#include "cli/options.h"
#include "common/util.h"
#include "install/install.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define HUGE_2M (2ull << 20)

uint64_t pcb_page_size_bytes(const struct pcb_config *cfg)
{
	return cfg->page_size == PCB_PAGE_2M ? HUGE_2M : 4096;
}

int pcb_huge_validate(const struct pcb_config *cfg, char *why, size_t whylen)
{
	if (pcb_page_size_bytes(cfg) != HUGE_2M)
		return 0;
	const char *bad = NULL, *val = NULL;
	char ns[32];
	if (cfg->mem % HUGE_2M) {
		snprintf(why, whylen, "invalid value for --mem: '%" PRIu64 "' bytes is not a multiple of 2 MiB (--page-size=2M)",
			 cfg->mem);
		return PCB_EXIT_USAGE;
	}
	if (!pcb_install_find(cfg->install, true))   /* a hugetlb variant of this path (copy's only) */
		bad = "install", val = cfg->install;
	else if (cfg->guest != PCB_GUEST_PROCESS)
		bad = "guest", val = pcb_choice_name("guest", cfg->guest);
	else if (cfg->precopy_ns)
		snprintf(ns, sizeof(ns), "%" PRIu64 "ns", cfg->precopy_ns), bad = "precopy", val = ns;
	else if (!strcmp(cfg->policy, "local"))
		bad = "policy", val = cfg->policy;
	else if (strcmp(cfg->baseline, "none"))
		bad = "baseline", val = cfg->baseline;
	else if (cfg->channels == 1)   /* a huge page's demand reply is RUN frames: one connection cannot tell them apart */
		bad = "channels", val = "1";
	if (bad) {
		snprintf(why, whylen, "invalid value for --%s: '%s' cannot be combined with --page-size=2M "
			 "(huge pages: post-copy, --install=copy, --guest=process, no --baseline, --channels=2)", bad, val);
		return PCB_EXIT_USAGE;
	}
	return 0;
}

static int read_u64(const char *dir, const char *name, uint64_t *out)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fscanf(f, "%" SCNu64, out) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

int pcb_huge_check_pool(const char *sysdir, uint64_t need, char *why, size_t whylen)
{
	uint64_t nr = 0, free_ = 0, resv = 0;
	if (read_u64(sysdir, "nr_hugepages", &nr) < 0 || read_u64(sysdir, "free_hugepages", &free_) < 0 ||
	    read_u64(sysdir, "resv_hugepages", &resv) < 0) {
		snprintf(why, whylen, "--page-size=2M: this kernel has no 2 MiB hugetlb pages (%s: %s)", sysdir, strerror(errno));
		return PCB_EXIT_UNAVAILABLE;
	}
	uint64_t avail = free_ > resv ? free_ - resv : 0;
	if (avail >= need)
		return 0;
	snprintf(why, whylen, "--page-size=2M needs %" PRIu64 " free 2 MiB huge pages, %" PRIu64 " are available "
		 "(nr_hugepages %" PRIu64 "): reserve them with `echo %" PRIu64 " > /proc/sys/vm/nr_hugepages`",
		 need, avail, nr, nr + need - avail);
	return PCB_EXIT_UNAVAILABLE;
}
