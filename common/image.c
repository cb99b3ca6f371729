#include "common/image.h"
#include <math.h>
#include <string.h>
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
}

/* The source generates every page it serves: vectorised where the CPU has
 * AVX2 (same words, ~2-3x faster than scalar here; see pcbench floor). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default"), optimize("O3")))
#endif
void pcb_image_fill(const struct pcb_image *im, uint64_t page, void *buf)
{
	uint64_t *w = buf;
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

uint64_t pcb_image_digest(const struct pcb_image *im, uint64_t page)
{
	uint64_t buf[PCB_PAGE_WORDS];
	pcb_image_fill(im, page, buf);
	return pcb_page_digest(buf);
}
