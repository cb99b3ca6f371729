/* The guest memory image: deterministic page contents from (seed, page index).
 *
 * Page layout (4 KiB, 512 little-endian 64-bit words):
 *   word 0        header: (tag(seed) << 32) | page index   -- a misplaced or stale page is detectable
 *   words 1..510  pcb_mix64 of (seed, page, word)           -- data
 *   word 511      guest write slot: 0 in the image; guest writes store a self-checking stamp here
 * A fraction of pages (chosen by hash, so also deterministic) are entirely zero, as real guests have many.
 * The digest of a page covers words 0..510 (the write slot is checked separately with pcb_stamp_valid).
 *
 * A bytes image instead holds explicit contents (mem != NULL): a database
 * image an application guest built from the seed, or a memory image read
 * from a file (pcbench source --image).  Its zero pages are those of the
 * bytes; its pages are verified whole (pcb_page_digest_full) as they arrive,
 * since the guest may write anywhere in them afterwards.
 */
#ifndef PCB_IMAGE_H
#define PCB_IMAGE_H
#include <stdbool.h>
#include <stdint.h>
#include "common/util.h"

#define PCB_PAGE_SIZE     4096u
#define PCB_PAGE_SHIFT    12
#define PCB_PAGE_WORDS    (PCB_PAGE_SIZE / 8)
#define PCB_STAMP_WORD    (PCB_PAGE_WORDS - 1)
#define PCB_DIGEST_BYTES  (PCB_STAMP_WORD * 8)

struct pcb_image {
	uint64_t seed;
	uint64_t npages;
	uint64_t zero_threshold;   /* page is zero iff hash < threshold */
	uint64_t tag;              /* per-seed tag in header words */
	uint64_t dseed;            /* per-seed data key */
	const uint8_t *mem;        /* bytes image: npages * 4 KiB of contents (NULL: generated from the seed) */
	const uint64_t *zero_map;  /* bytes image: bit per page, set = the page is all zero */
	bool opaque;               /* contents unknown here (a remote source's bytes image): no read checks */
};

void pcb_image_init(struct pcb_image *im, uint64_t seed, uint64_t npages, double zero_fraction);
/* The "runs" zero-page model (docs/metrics.md, "Guest memory image"):
 * instead of hashing each page (uniform), the zero pages lie in runs of 2^k
 * pages, k uniform in 0..log2(max_run_pages) (the block sizes of Linux's
 * buddy allocator, whose free memory is what a guest's zero pages mostly
 * are), separated by data runs: the data pages split at random proportions
 * into the gaps.  Exactly round(fraction * npages) pages are zero (the
 * fraction pcb_image_init was given); all from the seed.  Builds
 * im->zero_map (freed by pcb_image_free_bytes).  0 or -ENOMEM. */
int pcb_image_zero_runs(struct pcb_image *im, unsigned max_run_pages);
/* Pages of im that are zero (for the JSON: the model's achieved fraction). */
uint64_t pcb_image_zero_count(const struct pcb_image *im);

/* Make im a bytes image over mem (npages pages; kept, not copied): computes
 * the zero-page map.  0 or -ENOMEM. */
int pcb_image_set_bytes(struct pcb_image *im, const uint8_t *mem, uint64_t npages);
void pcb_image_free_bytes(struct pcb_image *im);   /* the zero map (mem is the caller's) */
bool pcb_page_is_zero(const void *page);
/* Map a raw memory image file read-only (private).  Its size must be a
 * positive multiple of 4 KiB.  0, or PCB_EXIT_DATAERR / PCB_EXIT_OSERR /
 * PCB_EXIT_USAGE (no such file) with a one-line reason naming the file. */
int pcb_image_map_file(const char *path, uint8_t **mem, size_t *len, char *why, size_t whylen);

static inline bool pcb_image_is_zero(const struct pcb_image *im, uint64_t page)
{
	if (im->zero_map)
		return (im->zero_map[page >> 6] >> (page & 63)) & 1;
	return pcb_mix64(im->seed ^ (page * 0xd6e8feb86659fd93ull)) < im->zero_threshold;
}

/* Expected value of word w (0..510) of page. */
static inline uint64_t pcb_image_word(const struct pcb_image *im, uint64_t page, unsigned w)
{
	if (im->mem)
		return ((const uint64_t *)(im->mem + (page << PCB_PAGE_SHIFT)))[w];
	if (pcb_image_is_zero(im, page))
		return 0;
	if (w == 0)
		return (im->tag << 32) | (page & 0xffffffffull);
	return pcb_mix64(im->dseed ^ ((page << 9) | w));
}

/* Write the page's image content (4 KiB) into buf. */
void pcb_image_fill(const struct pcb_image *im, uint64_t page, void *buf);
/* Digest of a page as held in memory (words 0..510). */
uint64_t pcb_page_digest(const void *page);
/* Digest of all 4096 bytes of a page (bytes images, arrival checks). */
uint64_t pcb_page_digest_full(const void *page);
/* Digest of the image's page (what the source holds). */
uint64_t pcb_image_digest(const struct pcb_image *im, uint64_t page);

/* Guest write stamps: self-checking, bound to the page index. */
static inline uint64_t pcb_stamp_make(uint64_t page, uint32_t seq)
{
	uint32_t h = (uint32_t)pcb_mix64((page << 32) ^ seq ^ 0x5743ull) | 1u;
	return ((uint64_t)seq << 32) | h;
}
static inline bool pcb_stamp_valid(uint64_t page, uint64_t stamp)
{
	return stamp == 0 || stamp == pcb_stamp_make(page, (uint32_t)(stamp >> 32));
}
#endif
