/* Raw memory image files: what decides how migrating one behaves (zero
 * pages and their runs, duplicate pages, compressibility), and writing one
 * from a running process's anonymous memory.  `pcbench image` (cli/imagecmd.c). */
#ifndef PCB_IMAGEFILE_H
#define PCB_IMAGEFILE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCB_RUN_BUCKETS 24   /* run lengths 1, 2-3, 4-7, ..., 2^23 and more */

struct pcb_image_stats {
	uint64_t pages, zero_pages;
	uint64_t dup_pages;                   /* non-zero pages equal (xxh3-64) to an earlier page */
	/* maximal runs of zero / of non-zero pages: count and pages, by length bucket floor(log2(len)) */
	uint64_t zero_runs[PCB_RUN_BUCKETS], zero_run_pages[PCB_RUN_BUCKETS];
	uint64_t data_runs[PCB_RUN_BUCKETS], data_run_pages[PCB_RUN_BUCKETS];
	uint64_t longest_zero_run, longest_data_run;
	/* zlib level 1 of each non-zero page on its own (a per-page compressing transport) */
	uint64_t sampled_pages;               /* all non-zero pages, or an evenly spaced sample of this many */
	uint64_t sampled_bytes, compressed_bytes;
	uint64_t pages_under_half;            /* of the sample: pages that compress to under 2 KiB */
	/* the whole image through one zlib level-1 stream (sample: the first up to 256 MiB) */
	uint64_t stream_in_bytes, stream_out_bytes;
};

/* Statistics of npages pages at mem; sample_max bounds the per-page zlib
 * sample (0 = every non-zero page).  0 or -ENOMEM. */
int pcb_image_stats(const uint8_t *mem, uint64_t npages, uint64_t sample_max, struct pcb_image_stats *st);

/* Write the anonymous private writable memory of process pid (from
 * /proc/PID/maps, read through /proc/PID/mem) to path as a raw image, the
 * regions back to back, and the list of regions to path.maps.  With stop,
 * the process is stopped (SIGSTOP) for the copy and continued after, so the
 * image is one instant's.  Pages that cannot be read are written as zero and
 * counted.  0 or an exit code with a one-line reason. */
struct pcb_dump_result {
	unsigned regions;
	uint64_t bytes, unreadable_pages;
};
int pcb_image_dump(pid_t pid, const char *path, int stop, uint64_t max_bytes, struct pcb_dump_result *res,
		   char *why, size_t whylen);
#endif
