#include "common/image.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

void pcb_image_init(struct pcb_image *im, uint64_t seed, uint64_t npages, double zero_fraction)
{
	im->seed = seed;
	im->npages = npages;
	if (zero_fraction <= 0)
		im->zero_threshold = 0;
	else if (zero_fraction >= 1)
		im->zero_threshold = UINT64_MAX;
	else
		im->zero_threshold = (uint64_t)ldexp(zero_fraction, 64);
	im->tag = (pcb_mix64(seed ^ 0x7063626e63680000ull) & 0x7fffffffull) | 0x1;
	im->dseed = pcb_mix64(seed + 0x1234567ull);
	im->mem = NULL;
	im->zero_map = NULL;
	im->opaque = false;
}

int pcb_image_zero_runs(struct pcb_image *im, unsigned max_run_pages)
{
	double f = im->zero_threshold == UINT64_MAX ? 1.0 : ldexp((double)im->zero_threshold, -64);
	uint64_t n = im->npages, z = (uint64_t)llround(f * (double)n);
	unsigned orders = 1;
	while ((1ull << orders) <= max_run_pages && orders < 31)
		orders++;   /* run lengths 2^k, k in 0..orders-1 */
	uint64_t *zm = calloc((n + 63) / 64 + 1, sizeof(uint64_t));
	uint64_t *len = malloc((z ? z : 1) * sizeof(uint64_t));
	double *gap = malloc((z + 1) * sizeof(double));
	if (!zm || !len || !gap) {
		free(zm);
		free(len);
		free(gap);
		return -ENOMEM;
	}
	struct pcb_rng rng;
	pcb_rng_seed(&rng, im->seed, 0x7a65726f72756e73ull);
	/* zero runs until they hold exactly z pages (the last one cut short) */
	uint64_t m = 0, sum = 0;
	while (sum < z) {
		uint64_t l = 1ull << pcb_rng_below(&rng, orders);
		len[m++] = l < z - sum ? l : z - sum;
		sum += len[m - 1];
	}
	/* the n - z data pages split into m + 1 gaps (before, between, after the
	 * zero runs) in random proportions (exponential weights: a uniform composition) */
	double wsum = 0;
	for (uint64_t i = 0; i <= m; i++)
		wsum += gap[i] = -log1p(-pcb_rng_double(&rng));
	uint64_t data = n - z, placed = 0, pg = 0;
	for (uint64_t i = 0; i <= m; i++) {
		uint64_t g = i == m ? data - placed : (uint64_t)((double)data * gap[i] / wsum);
		if (placed + g > data)
			g = data - placed;
		placed += g;
		pg += g;
		for (uint64_t e = i < m ? pg + len[i] : pg; pg < e; pg++)
			zm[pg >> 6] |= 1ull << (pg & 63);
	}
	free(len);
	free(gap);
	free((void *)im->zero_map);
	im->zero_map = zm;
	return 0;
}

uint64_t pcb_image_zero_count(const struct pcb_image *im)
{
	uint64_t n = 0;
	for (uint64_t pg = 0; pg < im->npages; pg++)
		n += pcb_image_is_zero(im, pg);
	return n;
}

bool pcb_page_is_zero(const void *page)
{
	const uint64_t *w = page;
	for (unsigned i = 0; i < PCB_PAGE_WORDS; i++)
		if (w[i])
			return false;
	return true;
}

int pcb_image_set_bytes(struct pcb_image *im, const uint8_t *mem, uint64_t npages)
{
	uint64_t *zm = calloc((npages + 63) / 64 + 1, sizeof(uint64_t));
	if (!zm)
		return -ENOMEM;
	for (uint64_t pg = 0; pg < npages; pg++)
		if (pcb_page_is_zero(mem + (pg << PCB_PAGE_SHIFT)))
			zm[pg >> 6] |= 1ull << (pg & 63);
	free((void *)im->zero_map);   /* a zero-runs map made for the generated image */
	im->mem = mem;
	im->zero_map = zm;
	im->npages = npages;
	return 0;
}

int pcb_image_map_file(const char *path, uint8_t **mem, size_t *len, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(why, whylen, "invalid value for --image: '%s' (%s)", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return errno == ENOENT || errno == EACCES ? PCB_EXIT_USAGE : PCB_EXIT_OSERR;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || sb.st_size % PCB_PAGE_SIZE) {
		snprintf(why, whylen, "invalid value for --image: '%s' (%s %lld bytes: want a regular file of a positive "
			 "multiple of 4096 bytes)", path, S_ISREG(sb.st_mode) ? "a file of" : "not a regular file,", (long long)sb.st_size);
		close(fd);
		return PCB_EXIT_DATAERR;
	}
	void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "cannot map --image '%s': %s", path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	*mem = m;
	*len = (size_t)sb.st_size;
	return 0;
}

void pcb_image_free_bytes(struct pcb_image *im)
{
	free((void *)im->zero_map);
	im->zero_map = NULL;
	im->mem = NULL;
}

/* The source generates every page it serves: vectorised where the CPU has
 * AVX2 (same words, ~2-3x faster than scalar here; see pcbench floor). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default"), optimize("O3")))
#endif
void pcb_image_fill(const struct pcb_image *im, uint64_t page, void *buf)
{
	uint64_t *w = buf;
	if (im->mem) {
		memcpy(buf, im->mem + (page << PCB_PAGE_SHIFT), PCB_PAGE_SIZE);
		return;
	}
	if (pcb_image_is_zero(im, page)) {
		memset(buf, 0, PCB_PAGE_SIZE);
		return;
	}
	w[0] = (im->tag << 32) | (page & 0xffffffffull);
	uint64_t base = im->dseed ^ (page << 9);
	for (unsigned i = 1; i < PCB_STAMP_WORD; i++)
		w[i] = pcb_mix64(base ^ i);
	w[PCB_STAMP_WORD] = 0;
}

uint64_t pcb_page_digest(const void *page)
{
	return XXH3_64bits(page, PCB_DIGEST_BYTES);
}

uint64_t pcb_page_digest_full(const void *page)
{
	return XXH3_64bits(page, PCB_PAGE_SIZE);
}

uint64_t pcb_image_digest(const struct pcb_image *im, uint64_t page)
{
	if (im->mem)
		return pcb_page_digest_full(im->mem + (page << PCB_PAGE_SHIFT));
	uint64_t buf[PCB_PAGE_WORDS];
	pcb_image_fill(im, page, buf);
	return pcb_page_digest(buf);
}
