/* The userfaultfd-registered ranges of the target from /proc/PID/smaps
 * (pctrace's uffd_ranges mode where registrations are not followed by the
 * programs), and the page size of a mapping.  See trace/internal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/internal.h"

/* "VmFlags: rd wr mr mw me ac um " : um = missing, uw = wp, ui = minor.
 * Returns a mask: 1 any userfaultfd mode, 2 write-protect. */
static int vmflags_uffd(const char *line)
{
	int m = 0;

	for (const char *p = line + 8; *p; p++) {
		if (p[0] == 'u' && (p[1] == 'm' || p[1] == 'w' || p[1] == 'i') &&
		    (p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == 0))
			m |= 1 | (p[1] == 'w' ? 2 : 0);
	}
	return m;
}

/* "KernelPageSize:     2048 kB" -> bytes - 1 (0 if the line is not that). */
static uint64_t smaps_page_mask(const char *line)
{
	unsigned long kb;

	if (sscanf(line, "KernelPageSize: %lu kB", &kb) != 1 || kb < 4)
		return 0;
	return (uint64_t)kb * 1024 - 1;
}

/* Page mask of the mapping of pid that holds addr (0: not found, 4 KiB). */
uint64_t trace_vma_page_mask(pid_t pid, uint64_t addr)
{
	unsigned long s, e;
	char path[64], *line = NULL;
	size_t cap = 0;
	bool in = false;
	uint64_t mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = addr >= s && addr < e;
		else if (in && (mask = smaps_page_mask(line)))
			break;
	}
	free(line);
	fclose(f);
	return mask;
}

int pcb_trace_refresh_ranges(struct pcb_trace *t)
{
	struct fl_range r[FL_MAX_RANGES];
	unsigned long s, e, cur_s = 0, cur_e = 0;
	uint64_t cur_mask = 0, pm;
	char path[64], *line = NULL;
	size_t cap = 0;
	int n = 0, m, wp = 0;
	FILE *f;

	if (!t || !t->fl || !t->o.uffd_ranges)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)t->o.pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			cur_s = s;
			cur_e = e;
			cur_mask = 0;
		} else if ((pm = smaps_page_mask(line))) {
			cur_mask = pm;
		} else if (!strncmp(line, "VmFlags:", 8) && cur_e > cur_s && (m = vmflags_uffd(line))) {
			wp |= m & 2;
			if (n > 0 && r[n - 1].end == cur_s && r[n - 1].page_mask == cur_mask) {
				r[n - 1].end = cur_e;          /* adjacent, same page size: merge */
			} else if (n < FL_MAX_RANGES) {
				r[n].start = cur_s;
				r[n].end = cur_e;
				r[n].page_mask = cur_mask;
				n++;
			} else {
				r[n - 1].end = cur_e;          /* too many: widen the last */
			}
			cur_s = cur_e = 0;
		}
	}
	free(line);
	fclose(f);
	/* Before the programs are attached (afterwards the registration
	 * hooks own the ranges): ranges first, their bits last. */
	for (int i = 0; i < n; i++)
		t->fl->bss->ranges[i] = r[i];
	__atomic_store_n(&t->fl->bss->range_bits, n >= 64 ? ~0ull : (1ull << n) - 1, __ATOMIC_RELEASE);
	/* Write-protect faults are protection faults: only look at those when
	 * some range is registered for them. */
	__atomic_store_n(&t->fl->bss->accept_prot, wp ? 1u : 0u, __ATOMIC_RELEASE);
	t->nranges = n;
	return n;
}
