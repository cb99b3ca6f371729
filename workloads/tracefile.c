/* Access traces: load (binary or plain text) and save.  Formats in workload.h. */
#include "common/util.h"
#include "workloads/workload.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct trc_hdr {
	char magic[8];
	uint32_t version, nvcpus;
	uint64_t npages, count;
};
_Static_assert(sizeof(struct trc_hdr) == 32, "trace header is 32 bytes");
_Static_assert(sizeof(struct pcb_atrace_rec) == 24, "trace record is 24 bytes");

static int push(struct pcb_atrace *t, uint64_t *cap, const struct pcb_atrace_rec *r)
{
	if (t->count == *cap) {
		uint64_t nc = *cap ? *cap * 2 : 4096;
		void *p = realloc(t->rec, nc * sizeof(*t->rec));
		if (!p)
			return -1;
		t->rec = p;
		*cap = nc;
	}
	t->rec[t->count++] = *r;
	return 0;
}

static int load_text(FILE *f, const char *path, struct pcb_atrace *t, char *why, size_t whylen)
{
	char line[512];
	uint64_t cap = 0, lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *h = strchr(line, '#');
		if (h)
			*h = 0;
		char *tok[4];
		int n = 0;
		for (char *sv, *p = strtok_r(line, " \t\r\n", &sv); p; p = strtok_r(NULL, " \t\r\n", &sv)) {
			if (n == 4) {
				snprintf(why, whylen, "%s:%llu: too many fields (want PAGE [r|w] [VCPU] [+])", path,
					 (unsigned long long)lineno);
				return PCB_EXIT_DATAERR;
			}
			tok[n++] = p;
		}
		if (!n)
			continue;
		struct pcb_atrace_rec r = { 0 };
		char *end;
		errno = 0;
		unsigned long long pg = strtoull(tok[0], &end, 0);
		if (errno || *end || !isdigit((unsigned char)tok[0][0])) {
			snprintf(why, whylen, "%s:%llu: bad page '%s' (want a page index, decimal or 0x-hex)", path,
				 (unsigned long long)lineno, tok[0]);
			return PCB_EXIT_DATAERR;
		}
		r.page = pg;
		r.t_ns = t->count;
		for (int i = 1; i < n; i++) {
			if (!strcmp(tok[i], "r") || !strcmp(tok[i], "R")) {
			} else if (!strcmp(tok[i], "w") || !strcmp(tok[i], "W")) {
				r.flags |= PCB_ATRACE_WRITE;
			} else if (!strcmp(tok[i], "+")) {
				r.flags |= PCB_ATRACE_MORE;
			} else {
				unsigned long v = strtoul(tok[i], &end, 10);
				if (*end || !isdigit((unsigned char)tok[i][0]) || v > 65535) {
					snprintf(why, whylen, "%s:%llu: bad field '%s' (want r, w, a vCPU number or +)", path,
						 (unsigned long long)lineno, tok[i]);
					return PCB_EXIT_DATAERR;
				}
				r.vcpu = (uint32_t)v;
			}
		}
		if (r.page + 1 > t->npages)
			t->npages = r.page + 1;
		if (r.vcpu + 1 > t->nvcpus)
			t->nvcpus = r.vcpu + 1;
		if (push(t, &cap, &r) < 0) {
			snprintf(why, whylen, "%s: out of memory", path);
			return PCB_EXIT_OSERR;
		}
	}
	if (ferror(f)) {
		snprintf(why, whylen, "%s: read error: %s", path, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	return 0;
}

static int load_bin(FILE *f, const char *path, struct pcb_atrace *t, char *why, size_t whylen)
{
	struct trc_hdr h;
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, PCB_ATRACE_MAGIC, 8)) {
		snprintf(why, whylen, "%s: truncated trace header", path);
		return PCB_EXIT_DATAERR;
	}
	if (h.version != 1) {
		snprintf(why, whylen, "%s: trace version %u, this build reads version 1", path, h.version);
		return PCB_EXIT_DATAERR;
	}
	if (h.count > (1ull << 34)) {
		snprintf(why, whylen, "%s: implausible record count %llu", path, (unsigned long long)h.count);
		return PCB_EXIT_DATAERR;
	}
	t->rec = malloc((h.count ? h.count : 1) * sizeof(*t->rec));
	if (!t->rec) {
		snprintf(why, whylen, "%s: out of memory for %llu records", path, (unsigned long long)h.count);
		return PCB_EXIT_OSERR;
	}
	if (h.count && fread(t->rec, sizeof(*t->rec), h.count, f) != h.count) {
		snprintf(why, whylen, "%s: truncated: the header announces %llu records", path, (unsigned long long)h.count);
		return PCB_EXIT_DATAERR;
	}
	t->count = h.count;
	t->npages = h.npages;
	t->nvcpus = 0;
	for (uint64_t i = 0; i < t->count; i++) {
		const struct pcb_atrace_rec *r = &t->rec[i];
		if (r->page >= h.npages || r->vcpu >= h.nvcpus || (r->flags & ~3u)) {
			snprintf(why, whylen, "%s: record %llu is invalid (page %llu of %llu, vcpu %u of %u, flags %#x)", path,
				 (unsigned long long)i, (unsigned long long)r->page, (unsigned long long)h.npages, r->vcpu,
				 h.nvcpus, r->flags);
			return PCB_EXIT_DATAERR;
		}
	}
	t->nvcpus = h.nvcpus;
	return 0;
}

int pcb_atrace_load(const char *path, struct pcb_atrace *t, char *why, size_t whylen)
{
	memset(t, 0, sizeof(*t));
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "cannot open trace '%s': %s", path, strerror(errno));
		return errno == ENOENT || errno == EACCES ? PCB_EXIT_DATAERR : PCB_EXIT_OSERR;
	}
	char m[8];
	size_t n = fread(m, 1, 8, f);
	rewind(f);
	int rc = (n == 8 && !memcmp(m, PCB_ATRACE_MAGIC, 8)) ? load_bin(f, path, t, why, whylen)
							   : load_text(f, path, t, why, whylen);
	fclose(f);
	if (!rc && t->count == 0) {
		snprintf(why, whylen, "%s: the trace has no accesses", path);
		rc = PCB_EXIT_DATAERR;
	}
	if (rc)
		pcb_atrace_free(t);
	return rc;
}

void pcb_atrace_free(struct pcb_atrace *t)
{
	free(t->rec);
	memset(t, 0, sizeof(*t));
}

int pcb_atrace_save(const char *path, const struct pcb_atrace *t)
{
	size_t pl = strlen(path);
	bool text = pl > 4 && !strcmp(path + pl - 4, ".txt");
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (text) {
		fprintf(f, "# pcbench access trace: PAGE r|w VCPU [+ = the op continues]; %llu accesses, %u vCPUs, %llu pages\n",
			(unsigned long long)t->count, t->nvcpus, (unsigned long long)t->npages);
		for (uint64_t i = 0; i < t->count; i++) {
			const struct pcb_atrace_rec *r = &t->rec[i];
			fprintf(f, "%llu %c %u%s\n", (unsigned long long)r->page, r->flags & PCB_ATRACE_WRITE ? 'w' : 'r',
				r->vcpu, r->flags & PCB_ATRACE_MORE ? " +" : "");
		}
	} else {
		struct trc_hdr h = { .version = 1, .nvcpus = t->nvcpus, .npages = t->npages, .count = t->count };
		memcpy(h.magic, PCB_ATRACE_MAGIC, 8);
		fwrite(&h, sizeof(h), 1, f);
		if (t->count)
			fwrite(t->rec, sizeof(*t->rec), t->count, f);
	}
	int e = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && !e)
		e = errno;
	return -e;
}
