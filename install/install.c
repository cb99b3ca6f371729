/* What every install path shares: mappings, the install ioctls in batches,
 * wake-ups, and the entry points that call a path's hooks; see install.h.
 * The paths themselves: copy.c, move.c, continue.c, huge.c. */
#include "install/internal.h"
#include "common/image.h"
#include "pager/pagestate.h"
#include "common/util.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

void *pcb_inst_map_anon(size_t len, int extra)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* An anonymous mapping starting on a 2 MiB boundary (the slack is unmapped). */
void *pcb_inst_map_anon_aligned(size_t len, int extra)
{
	uint8_t *p = pcb_inst_map_anon(len + PCB_HUGE_SIZE, extra);
	if (!p)
		return NULL;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + PCB_HUGE_SIZE - 1) & ~(uintptr_t)(PCB_HUGE_SIZE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	size_t tail = (size_t)(p + len + PCB_HUGE_SIZE - (a + len));
	if (tail)
		munmap(a + len, tail);
	return a;
}

unsigned pcb_inst_clamp_batch(const struct pcb_install_ops *ops, unsigned batch)
{
	if (!batch)
		batch = ops->default_batch;
	return batch > PCB_INSTALL_MAX_BATCH ? PCB_INSTALL_MAX_BATCH : batch;
}

void pcb_inst_map_init(struct pcb_installer *in, const struct pcb_install_ops *ops, unsigned batch, uint64_t npages)
{
	memset(in, 0, sizeof(*in));
	in->ops = ops;
	in->memfd = in->uffd = -1;
	in->batch = pcb_inst_clamp_batch(ops, batch);
	in->npages = npages;
	in->len = npages << PCB_PAGE_SHIFT;
}

/* copy-like paths: a private anonymous region, 2 MiB-aligned, 4 KiB pages
 * (one fault per page), and PCB_IQ_SLOTS staging slots of a run each. */
int pcb_inst_map_private(struct pcb_installer *in, char *why, size_t whylen)
{
	in->region = pcb_inst_map_anon_aligned(in->len, MAP_NORESERVE);
	in->slot_bytes = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	in->staging_len = (size_t)PCB_IQ_SLOTS * in->slot_bytes;
	in->staging = pcb_inst_map_anon(in->staging_len, 0);
	if (!in->region || !in->staging) {
		snprintf(why, whylen, "cannot map a %llu-byte guest region: %s", (unsigned long long)in->len, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	madvise(in->region, in->len, MADV_NOHUGEPAGE);
	madvise(in->staging, in->staging_len, MADV_NOHUGEPAGE);
	madvise(in->staging, in->staging_len, MADV_DONTFORK);
	return 0;
}

int pcb_install_map(struct pcb_installer *in, const struct pcb_install_ops *ops, unsigned batch, uint64_t npages,
		    char *why, size_t whylen)
{
	memset(in, 0, sizeof(*in));
	in->memfd = in->uffd = -1;
	if (pcb_install_check_ops(ops, why, whylen) < 0)
		return PCB_EXIT_SOFTWARE;
	return ops->map(in, batch, npages, why, whylen);
}

int pcb_install_check(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen)
{
	return in->ops->check ? in->ops->check(in, u, why, whylen) : 0;
}

void pcb_install_unmap(struct pcb_installer *in)
{
	if (in->asmb)
		munmap(in->asmb, in->len);
	if (in->hfill)
		munmap((void *)in->hfill, in->npages / PCB_HUGE_SUBPAGES * sizeof(*in->hfill));
	if (in->hslot)
		munmap((void *)in->hslot, in->npages / PCB_HUGE_SUBPAGES * sizeof(*in->hslot));
	if (in->slots) {
		munmap(in->slots, (size_t)in->nslots << PCB_HUGE_SHIFT);
		pthread_mutex_destroy(&in->slot_lock);
	}
	if (in->region)
		munmap(in->region, in->len);
	if (in->alias)
		munmap(in->alias, in->len);
	if (in->staging)
		munmap(in->staging, in->staging_len);
	if (in->filled)
		munmap((void *)in->filled, ((in->npages + 63) / 64) * 8);
	if (in->scratch)
		munmap(in->scratch, PCB_PAGE_SIZE);
	if (in->memfd >= 0)
		close(in->memfd);
	memset(in, 0, sizeof(*in));
	in->memfd = in->uffd = -1;
}

int pcb_install_uffd(const struct pcb_installer *in, uint64_t page, uint64_t *n)
{
	if (in->nslices <= 1)
		return in->uffd;
	uint64_t s = page / in->slice_pages, end = (s + 1) * in->slice_pages;
	if (n && page + *n > end)
		*n = end - page;
	return in->slice_uffd[s];
}

int pcb_inst_wake(struct pcb_installer *in, uint64_t page, uint64_t n, struct pcb_install_stats *st)
{
	st->wakes++;
	for (uint64_t done = 0; done < n;) {   /* one UFFDIO_WAKE per slice the range covers */
		uint64_t c = n - done;
		int fd = pcb_install_uffd(in, page + done, &c);
		struct uffdio_range r = { pcb_inst_addr(in, page + done), c << PCB_PAGE_SHIFT };
		if (ioctl(fd, UFFDIO_WAKE, &r) < 0)
			return -errno;
		done += c;
	}
	return 0;
}

static bool any_demanded(const struct pcb_installer *in, uint64_t page, uint64_t n)
{
	atomic_thread_fence(memory_order_seq_cst);   /* pairs with the demand thread: set demanded, then test present */
	for (uint64_t i = 0; i < n; i++)
		if (pcb_bit_test(in->demanded, page + i))
			return true;
	return false;
}

static int inst_ioctl_raw(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n, const void *src,
			  bool dontwake, uint64_t *done, struct pcb_install_stats *st)
{
	int fd = pcb_install_uffd(in, page, &n);   /* sliced: up to the slice's end, the caller goes on */
	uint64_t dst = pcb_inst_addr(in, page), len = n << PCB_PAGE_SHIFT;
	int r = 0;
	int64_t got = 0;
	st->ioctls++;
	switch (op) {
	case PCB_OP_COPY: {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
		r = ioctl(fd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
		got = r ? c.copy : (int64_t)len;
		break;
	}
	case PCB_OP_MOVE: {
		struct uffdio_move m = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = dontwake ? UFFDIO_MOVE_MODE_DONTWAKE : 0 };
		r = ioctl(fd, UFFDIO_MOVE, &m) < 0 ? -errno : 0;
		got = r ? m.move : (int64_t)len;
		break;
	}
	case PCB_OP_CONTINUE: {
		struct uffdio_continue c = { .range = { dst, len }, .mode = dontwake ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0 };
		r = ioctl(fd, UFFDIO_CONTINUE, &c) < 0 ? -errno : 0;
		got = r ? c.mapped : (int64_t)len;
		break;
	}
	case PCB_OP_ZEROPAGE: {
		struct uffdio_zeropage z = { .range = { dst, len }, .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
		r = ioctl(fd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
		got = r ? z.zeropage : (int64_t)len;
		break;
	}
	}
	*done = got > 0 ? (uint64_t)got >> PCB_PAGE_SHIFT : 0;
	return r;
}

/* Arrival digests of the n pages an install ioctl is about to map: the
 * source bytes (COPY, MOVE), the page cache pages (CONTINUE), zeros. */
static void arrival_digests(const struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n,
			    const void *src, uint64_t *out)
{
	static const uint8_t zero[PCB_PAGE_SIZE];
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *b = op == PCB_OP_ZEROPAGE ? zero : op == PCB_OP_CONTINUE ? in->alias + ((page + i) << PCB_PAGE_SHIFT)
				 : (const uint8_t *)src + (i << PCB_PAGE_SHIFT);
		out[i] = pcb_page_digest_full(b);
	}
}

/* One install ioctl; with arrival digests on (bytes images), the pages it
 * installed get the digest of the bytes they were installed with. */
int pcb_inst_ioctl(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n, const void *src,
		   bool dontwake, uint64_t *done, struct pcb_install_stats *st)
{
	if (!in->arrival)
		return inst_ioctl_raw(in, op, page, n, src, dontwake, done, st);
	uint64_t dg[PCB_INSTALL_MAX_BATCH > PCB_CHUNK_PAGES ? PCB_INSTALL_MAX_BATCH : PCB_CHUNK_PAGES];
	if (n > sizeof(dg) / sizeof(dg[0]))
		n = sizeof(dg) / sizeof(dg[0]);   /* callers go on with the rest (*done) */
	arrival_digests(in, op, page, n, src, dg);
	int r = inst_ioctl_raw(in, op, page, n, src, dontwake, done, st);
	for (uint64_t i = 0; i < *done; i++)
		in->arrival[page + i] = dg[i];
	return r;
}

int pcb_inst_chunks(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n, const uint8_t *src,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx, uint64_t batch, bool zero)
{
	bool batched = batch > 1;
	uint64_t i = 0;
	unsigned busy = 0;
	while (i < n) {
		uint64_t c = n - i < batch ? n - i : batch, done = 0, t0 = pcb_now_ns();
		int r = pcb_inst_ioctl(in, op, page + i, c, src ? src + (i << PCB_PAGE_SHIFT) : NULL, batched, &done, st);
		st->install_ns += pcb_now_ns() - t0;   /* background only: the demand path is not timed here */
		for (uint64_t k = 0; k < done; k++)
			cb(ctx, page + i + k, 0, zero);
		st->pages += done;
		if (op == PCB_OP_COPY && busy >= PCB_MOVE_BUSY_TRIES)
			st->move_busy_copied += done;
		if (batched && done && any_demanded(in, page + i, done)) {
			int w = pcb_inst_wake(in, page + i, done, st);
			if (w < 0)
				return w;
		}
		i += done;
		if (!r)
			continue;
		if (r == -EAGAIN)
			continue;   /* the mm changed under us: retry the rest */
		if (r == -EBUSY && op == PCB_OP_MOVE) {
			/* the kernel could not take the staging page this instant (a huge page
			 * it could not split while something else held a reference, or a page
			 * not this process's alone): retry, then copy the rest, whose bytes are
			 * still in staging (docs/metrics.md: move_busy) */
			st->move_busy++;
			if (++busy >= PCB_MOVE_BUSY_TRIES)
				op = PCB_OP_COPY;
			continue;
		}
		if (r != -EEXIST)
			return r;
		/* page + i is already there (a demand install won): make sure nobody sleeps on it */
		st->eexist++;
		pcb_inst_wake(in, page + i, 1, st);
		cb(ctx, page + i, 1, zero);
		i++;
	}
	return 0;
}

void pcb_inst_zcb_page(void *vctx, uint64_t page, int res, bool zero)
{
	struct pcb_inst_zcb *z = vctx;
	unsigned i = z->off0 + (unsigned)(page - z->page0);
	(void)zero;
	zero = z->zmask[i >> 6] >> (i & 63) & 1;
	if (zero && !res && z->st)
		z->st->zero_inline++;
	z->cb(z->ctx, page, res, zero);
}

int pcb_inst_one_op(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, const void *src,
		    struct pcb_install_stats *st)
{
	uint64_t done = 0;
	int r;
	do
		r = pcb_inst_ioctl(in, op, page, 1, src, false, &done, st);
	while (r == -EAGAIN);
	if (r == -EEXIST) {
		st->eexist++;
		pcb_inst_wake(in, page, 1, st);
		return 1;
	}
	if (r < 0)
		return r;
	st->pages++;
	return 0;
}

uint8_t *pcb_inst_run_slot(const struct pcb_installer *in, unsigned slot)
{
	return in->staging + (size_t)slot * in->slot_bytes;
}

int pcb_install_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	return in->ops->one(in, page, src, st);
}

int pcb_install_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx)
{
	return in->ops->job(in, j, st, cb, ctx);
}

uint8_t *pcb_install_slot_buf(struct pcb_installer *in, unsigned slot)
{
	return pcb_inst_run_slot(in, slot);
}

int pcb_install_run(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, const uint64_t *owned,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	struct pcb_install_job j = { .page = page, .n = n, .slot = slot };
	if (owned)
		memcpy(j.owned, owned, sizeof(j.owned));
	return in->ops->job(in, &j, st, cb, ctx);
}

int pcb_install_zero_run(struct pcb_installer *in, uint64_t page, unsigned n, struct pcb_install_stats *st,
			 pcb_install_cb cb, void *ctx)
{
	struct pcb_install_job j = { .page = page, .n = n, .zero = true };
	return in->ops->job(in, &j, st, cb, ctx);
}

void pcb_install_owned_get(uint64_t *run, const uint64_t *job, unsigned at, unsigned n)
{
	memset(run, 0, sizeof(uint64_t) * ((PCB_MAX_RUN_PAGES + 63) / 64));
	for (unsigned i = 0; i < n; i++)
		if (job[(at + i) >> 6] >> ((at + i) & 63) & 1)
			run[i >> 6] |= 1ull << (i & 63);
}

int pcb_install_rx_iov(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, struct iovec *iov, int max,
		       uint64_t *owned)
{
	if (in->ops->rx == PCB_INRX_PAGECACHE)
		return pcb_inst_continue_rx_iov(in, page, n, iov, max, owned);
	iov[0] = (struct iovec){ pcb_inst_run_slot(in, slot), (size_t)n << PCB_PAGE_SHIFT };
	return 1;
}

uint64_t pcb_install_region_thp_bytes(const struct pcb_installer *in)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	char line[256];
	uint64_t lo = (uintptr_t)in->region, hi = lo + in->len, total = 0;
	bool inside = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, z, kb;
		if (sscanf(line, "%llx-%llx ", &a, &z) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = a >= lo && z <= hi;
		else if (inside && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			total += kb * 1024;
	}
	fclose(f);
	return total;
}

