/* The source's copy of the seed's image: built once in memory before the
 * source serves (--source-image=memory), or generated page by page as each
 * is sent (generate).  A real source reads pages that are already in memory
 * (QEMU 9.x migration/ram.c ram_save_host_page reads the guest's RAM block;
 * CRIU's page server reads the dumped pages), so generating them while
 * serving is a cost of the harness: the in-memory image removes it from the
 * migration.  It is served by the path of every memory the source holds
 * (cfg->mem: src_fill copies the page, zero pages by content, digests by
 * pcb_page_digest), with the same contents and digests as the generator.
 * docs/design.md "The source". */
#include "source/internal.h"
#include "common/util.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Bytes the machine can still give: MemAvailable, and the cgroup's headroom
 * when that is smaller.  0 when unknown. */
static uint64_t mem_available(void)
{
	uint64_t avail = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &avail) == 1) {
			avail <<= 10;
			break;
		}
	if (f)
		fclose(f);
	unsigned long long max = 0, cur = 0;
	FILE *m = fopen("/sys/fs/cgroup/memory.max", "re"), *c = fopen("/sys/fs/cgroup/memory.current", "re");
	if (m && c && fscanf(m, "%llu", &max) == 1 && fscanf(c, "%llu", &cur) == 1 && max > cur && max - cur < avail)
		avail = max - cur;
	if (m)
		fclose(m);
	if (c)
		fclose(c);
	return avail;
}

/* A bitmap of the pages of [mem, mem + npages pages) that are populated:
 * present or swapped in /proc/self/pagemap (bits 63 and 62; readable
 * without privileges, the frame numbers are not needed).  NULL if it cannot
 * be read: then every page is read to find the zero ones. */
static uint64_t *populated_map(const uint8_t *mem, uint64_t npages)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t *bm = fd < 0 ? NULL : calloc((npages + 63) / 64, sizeof(uint64_t));
	uint64_t buf[512];
	for (uint64_t pg = 0; bm && pg < npages;) {
		uint64_t n = npages - pg < 512 ? npages - pg : 512;
		off_t off = (off_t)(((uintptr_t)mem >> PCB_PAGE_SHIFT) + pg) * 8;
		if (pread(fd, buf, n * 8, off) != (ssize_t)(n * 8)) {
			free(bm);
			bm = NULL;
			break;
		}
		for (uint64_t i = 0; i < n; i++, pg++)
			if (buf[i] & (3ull << 62))
				bm[pg / 64] |= 1ull << (pg % 64);
	}
	if (fd >= 0)
		close(fd);
	return bm;
}

const char *pcb_source_image_name(enum pcb_source_image_mode m)
{
	return m == PCB_SRC_IMAGE_MEMORY ? "memory" : m == PCB_SRC_IMAGE_GENERATE ? "generate" : "auto";
}

bool pcb_source_send_splices(const struct pcb_source_cfg *cfg)
{
	return cfg->send != PCB_SRC_SEND_WRITEV && cfg->mem && cfg->mem_fixed;
}

const char *pcb_source_send_name(enum pcb_source_send s)
{
	return s == PCB_SRC_SEND_WRITEV ? "writev" : s == PCB_SRC_SEND_SPLICE ? "splice" : "auto";
}

/* Fill mem with the seed's image of cfg (zero pages placed by its model). */
static int image_build(const struct pcb_source_cfg *cfg, uint8_t *mem, uint64_t npages)
{
	struct pcb_image im;
	pcb_image_init(&im, cfg->seed, npages, cfg->zero_fraction);
	if (cfg->zero_run_max && pcb_image_zero_runs(&im, cfg->zero_run_max) < 0)
		return -ENOMEM;
	for (uint64_t pg = 0; pg < npages; pg++)
		if (!pcb_image_is_zero(&im, pg))   /* zero pages stay untouched: never-written anonymous memory */
			pcb_image_fill(&im, pg, mem + (pg << PCB_PAGE_SHIFT));
	pcb_image_free_bytes(&im);
	return 0;
}

int pcb_source_image_prepare(struct pcb_source_cfg *cfg, struct pcb_source_image *si)
{
	*si = (struct pcb_source_image){ .mode = PCB_SRC_IMAGE_GENERATE };
	if (cfg->mem) {   /* it serves memory it already holds (--precopy, a bytes image) */
		si->reason = "the source serves memory it already holds";
		return 0;
	}
	uint64_t avail = mem_available();
	si->avail_bytes = avail;
	if (cfg->image_mode == PCB_SRC_IMAGE_GENERATE) {
		si->reason = "--source-image=generate";
		return 0;
	}
	/* auto: the source's copy and the destination's guest memory (the same
	 * size again) together within half of what the machine has available */
	if (cfg->image_mode == PCB_SRC_IMAGE_AUTO && (!avail || 4 * cfg->mem_bytes > avail)) {
		si->reason = "auto: the image and the destination's copy exceed half of the available memory";
		return 0;
	}
	uint64_t t0 = pcb_now_ns(), c0 = pcb_thread_cpu_ns(), npages = cfg->mem_bytes >> PCB_PAGE_SHIFT;
	void *m = mmap(NULL, cfg->mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	/* 4 KiB pages whatever the machine's THP mode, as the floor's bare_mem
	 * (docs/results/2026-12-05-source-writev.md: huge pages moved the bulk pull) */
	madvise(m, cfg->mem_bytes, MADV_NOHUGEPAGE);
	int rc = image_build(cfg, m, npages);
	if (rc < 0) {
		munmap(m, cfg->mem_bytes);
		return rc;
	}
	mprotect(m, cfg->mem_bytes, PROT_READ);
	si->populated = populated_map(m, npages);
	cfg->mem_populated = si->populated;
	si->mem = m;
	si->len = cfg->mem_bytes;
	si->mode = PCB_SRC_IMAGE_MEMORY;
	si->build_ns = pcb_now_ns() - t0;
	si->cpu_ns = pcb_thread_cpu_ns() - c0;
	si->reason = cfg->image_mode == PCB_SRC_IMAGE_MEMORY ? "--source-image=memory"
							     : "auto: the image and the destination's copy fit in half of the available memory";
	cfg->mem = si->mem;
	cfg->mem_fixed = true;
	return 0;
}

void pcb_source_image_release(struct pcb_source_image *si)
{
	if (si->mem)
		munmap(si->mem, si->len);
	free(si->populated);
	si->mem = NULL;
	si->populated = NULL;
}
