#include "common/imagefile.h"
#include "common/image.h"
#include "common/util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

static unsigned run_bucket(uint64_t len)
{
	unsigned b = 63u - (unsigned)__builtin_clzll(len);
	return b < PCB_RUN_BUCKETS ? b : PCB_RUN_BUCKETS - 1;
}

static void run_end(struct pcb_image_stats *st, bool zero, uint64_t len)
{
	if (!len)
		return;
	unsigned b = run_bucket(len);
	if (zero) {
		st->zero_runs[b]++;
		st->zero_run_pages[b] += len;
		if (len > st->longest_zero_run)
			st->longest_zero_run = len;
	} else {
		st->data_runs[b]++;
		st->data_run_pages[b] += len;
		if (len > st->longest_data_run)
			st->longest_data_run = len;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* zlib level 1 of every k-th non-zero page on its own */
static void per_page_zlib(const uint8_t *mem, uint64_t npages, uint64_t nonzero, uint64_t sample_max,
			  struct pcb_image_stats *st)
{
	uint64_t k = sample_max && nonzero > sample_max ? (nonzero + sample_max - 1) / sample_max : 1, seen = 0;
	uint8_t out[PCB_PAGE_SIZE + 128];
	for (uint64_t pg = 0; pg < npages; pg++) {
		const uint8_t *p = mem + (pg << PCB_PAGE_SHIFT);
		if (pcb_page_is_zero(p) || seen++ % k)
			continue;
		uLongf n = sizeof(out);
		if (compress2(out, &n, p, PCB_PAGE_SIZE, 1) != Z_OK)
			n = PCB_PAGE_SIZE;
		st->sampled_pages++;
		st->sampled_bytes += PCB_PAGE_SIZE;
		st->compressed_bytes += n;
		st->pages_under_half += n < PCB_PAGE_SIZE / 2;
	}
}

/* one level-1 deflate stream over the first up to 256 MiB */
static void stream_zlib(const uint8_t *mem, uint64_t npages, struct pcb_image_stats *st)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit(&z, 1) != Z_OK)
		return;
	uint64_t len = npages << PCB_PAGE_SHIFT;
	if (len > (256ull << 20))
		len = 256ull << 20;
	uint8_t out[1 << 16];
	for (uint64_t off = 0; off < len || z.avail_in;) {
		if (!z.avail_in) {
			uint64_t c = len - off < (1u << 20) ? len - off : (1u << 20);
			z.next_in = (Bytef *)(uintptr_t)(mem + off);
			z.avail_in = (uInt)c;
			off += c;
		}
		z.next_out = out;
		z.avail_out = sizeof(out);
		deflate(&z, Z_NO_FLUSH);
		st->stream_out_bytes += sizeof(out) - z.avail_out;
	}
	int r;
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		r = deflate(&z, Z_FINISH);
		st->stream_out_bytes += sizeof(out) - z.avail_out;
	} while (r == Z_OK);
	st->stream_in_bytes = len;
	deflateEnd(&z);
}

int pcb_image_stats(const uint8_t *mem, uint64_t npages, uint64_t sample_max, struct pcb_image_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->pages = npages;
	uint64_t *dg = malloc((npages ? npages : 1) * sizeof(*dg)), nd = 0, run = 0;
	if (!dg)
		return -ENOMEM;
	bool in_zero = false;
	for (uint64_t pg = 0; pg < npages; pg++) {
		const uint8_t *p = mem + (pg << PCB_PAGE_SHIFT);
		bool z = pcb_page_is_zero(p);
		if (pg && z != in_zero) {
			run_end(st, in_zero, run);
			run = 0;
		}
		in_zero = z;
		run++;
		if (z)
			st->zero_pages++;
		else
			dg[nd++] = XXH3_64bits(p, PCB_PAGE_SIZE);
	}
	run_end(st, in_zero, run);
	qsort(dg, nd, sizeof(*dg), cmp_u64);
	for (uint64_t i = 1; i < nd; i++)
		st->dup_pages += dg[i] == dg[i - 1];
	free(dg);
	per_page_zlib(mem, npages, npages - st->zero_pages, sample_max, st);
	stream_zlib(mem, npages, st);
	return 0;
}

/* ---- dump ---- */

static bool dump_region_wanted(const char *perms, unsigned long inode, const char *name)
{
	if (perms[1] != 'w' || perms[3] != 'p' || inode != 0)
		return false;
	return !name[0] || !strcmp(name, "[heap]") || !strcmp(name, "[stack]") || !strncmp(name, "[anon:", 6);
}

/* Wait until the process is stopped (state T in /proc/PID/stat), up to 2 s. */
static int wait_stopped(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "r");
		if (!f)
			return -1;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		const char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't'))
			return 0;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Copy [start, end) of the process's memory to out; unreadable pages as zero. */
static int dump_copy(int memfd, FILE *out, uint64_t start, uint64_t end, struct pcb_dump_result *res)
{
	static uint8_t buf[1 << 20];
	for (uint64_t a = start; a < end;) {
		size_t n = end - a < sizeof(buf) ? (size_t)(end - a) : sizeof(buf);
		ssize_t got = pread(memfd, buf, n, (off_t)a);
		if (got != (ssize_t)n) {
			/* page by page: a guard page or a hole reads as zero */
			n = PCB_PAGE_SIZE;
			if (pread(memfd, buf, n, (off_t)a) != (ssize_t)n) {
				memset(buf, 0, n);
				res->unreadable_pages++;
			}
		}
		if (fwrite(buf, 1, n, out) != n)
			return -errno;
		a += n;
		res->bytes += n;
	}
	return 0;
}

static int dump_regions(pid_t pid, FILE *maps, int memfd, FILE *out, FILE *list, uint64_t max_bytes,
			struct pcb_dump_result *res, char *why, size_t whylen)
{
	char line[4096], perms[8], name[4096];
	unsigned long long start, end, off;
	unsigned long inode;
	while (fgets(line, sizeof(line), maps)) {
		name[0] = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %lu %4095[^\n]", &start, &end, perms, &off, &inode, name) < 5)
			continue;
		char *nm = name;
		while (*nm == ' ')
			nm++;
		if (!dump_region_wanted(perms, inode, nm))
			continue;
		if (res->bytes + (end - start) > max_bytes) {
			snprintf(why, whylen, "invalid value for --max: process %d has more than %llu bytes of anonymous memory",
				 (int)pid, (unsigned long long)max_bytes);
			return PCB_EXIT_USAGE;
		}
		fprintf(list, "%llx %llx %llu %s %s\n", start, end, (unsigned long long)res->bytes, perms, nm[0] ? nm : "[anon]");
		int e = dump_copy(memfd, out, start, end, res);
		if (e) {
			snprintf(why, whylen, "writing the image: %s", strerror(-e));
			return PCB_EXIT_OSERR;
		}
		res->regions++;
	}
	return 0;
}

int pcb_image_dump(pid_t pid, const char *path, int stop, uint64_t max_bytes, struct pcb_dump_result *res,
		   char *why, size_t whylen)
{
	char p[64], lpath[4200];
	memset(res, 0, sizeof(*res));
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(p, "r");
	snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
	int memfd = maps ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	if (!maps || memfd < 0) {
		snprintf(why, whylen, "invalid value for --pid: '%d' (%s: %s)", (int)pid, p, strerror(errno));
		int rc = errno == ENOENT || errno == ESRCH ? PCB_EXIT_USAGE : PCB_EXIT_NOPERM;
		if (maps)
			fclose(maps);
		return rc;
	}
	snprintf(lpath, sizeof(lpath), "%s.maps", path);
	FILE *out = fopen(path, "w"), *list = out ? fopen(lpath, "w") : NULL;
	int rc = 0;
	if (!out || !list) {
		snprintf(why, whylen, "invalid value for --out: '%s' cannot be written (%s)", !out ? path : lpath, strerror(errno));
		rc = PCB_EXIT_USAGE;
	}
	bool stopped = false;
	if (!rc && stop) {
		if (kill(pid, SIGSTOP) < 0 || wait_stopped(pid) < 0) {
			snprintf(why, whylen, "cannot stop process %d for the dump: %s", (int)pid, strerror(errno));
			rc = PCB_EXIT_NOPERM;
		}
		stopped = true;
	}
	if (!rc) {
		fprintf(list, "# pcbench image dump of pid %d: start end file_offset perms name (hex addresses)\n", (int)pid);
		rc = dump_regions(pid, maps, memfd, out, list, max_bytes, res, why, whylen);
	}
	if (stopped)
		kill(pid, SIGCONT);
	if (!rc && !res->bytes) {
		snprintf(why, whylen, "process %d has no anonymous private writable memory to dump", (int)pid);
		rc = PCB_EXIT_DATAERR;
	}
	if (out && fclose(out) != 0 && !rc) {
		snprintf(why, whylen, "writing '%s': %s", path, strerror(errno));
		rc = PCB_EXIT_OSERR;
	}
	if (list)
		fclose(list);
	fclose(maps);
	close(memfd);
	return rc;
}
