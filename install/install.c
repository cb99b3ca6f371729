/* Install paths (copy, move, continue) and batched installs; see install.h. */
#include "install/install.h"
#include "pager/pagestate.h"
#include "wire/proto.h"
#include "common/image.h"
#include "common/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif

static const char *const mode_names[] = { "copy", "move", "continue" };

const char *pcb_install_name(int mode)
{
	return mode >= 0 && mode < 3 ? mode_names[mode] : "?";
}

int pcb_install_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, mode_names[i]))
			return i;
	return -1;
}

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

uint64_t pcb_install_features(int mode)
{
	switch (mode) {
	case PCB_INSTALL_MOVE:
		return UFFD_FEATURE_MOVE;
	case PCB_INSTALL_CONTINUE:
		return UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM;
	default:
		return 0;
	}
}

uint64_t pcb_install_register_mode(int mode)
{
	return mode == PCB_INSTALL_CONTINUE ? UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR
					    : UFFDIO_REGISTER_MODE_MISSING;
}

int pcb_install_check(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen)
{
	if (in->mode == PCB_INSTALL_MOVE &&
	    (!(u->features_enabled & UFFD_FEATURE_MOVE) || !(u->ioctls_range & (1ull << _UFFDIO_MOVE)))) {
		snprintf(why, whylen, "--install=move needs UFFDIO_MOVE (Linux 6.8+); this kernel offers userfaultfd "
			 "features 0x%llx: use --install=copy", (unsigned long long)u->features_supported);
		return -1;
	}
	if (in->mode == PCB_INSTALL_CONTINUE &&
	    (!(u->features_enabled & UFFD_FEATURE_MINOR_SHMEM) || !(u->ioctls_range & (1ull << _UFFDIO_CONTINUE)))) {
		snprintf(why, whylen, "--install=continue needs userfaultfd minor faults on shmem (MINOR_SHMEM, Linux 5.14+); "
			 "this kernel offers features 0x%llx: use --install=copy", (unsigned long long)u->features_supported);
		return -1;
	}
	return 0;
}

static void *map_anon(size_t len, int extra)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* An anonymous mapping starting on a 2 MiB boundary (the slack is unmapped). */
static void *map_anon_aligned(size_t len, int extra)
{
	uint8_t *p = map_anon(len + PCB_HUGE_SIZE, extra);
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

/* move: fresh memory for staging chunk `slot`: a new mapping (so no page
 * table or split THP of its last use remains), THP-eligible, never shared
 * with a child (UFFDIO_MOVE needs pages this process owns alone), faulted in
 * with one call (a 2 MiB page where the kernel has one, zeroed). */
#define PCB_CHUNK_PROBE 16
static bool chunk_pick_huge(struct pcb_installer *in)
{
	uint64_t k = in->fresh_count++;
	if (!in->fresh_ns[1])
		return true;                   /* a huge page first */
	if (!in->fresh_ns[0])
		return false;                  /* then 4 KiB pages once */
	bool huge = in->fresh_ns[1] <= in->fresh_ns[0];
	return k % PCB_CHUNK_PROBE == PCB_CHUNK_PROBE - 1 ? !huge : huge;   /* now and then the other kind */
}

static void chunk_fresh(struct pcb_installer *in, unsigned slot, struct pcb_install_stats *st)
{
	uint8_t *b = in->staging + ((size_t)slot << PCB_HUGE_SHIFT);
	bool huge = chunk_pick_huge(in);
	uint64_t t0 = pcb_now_ns();
	if (mmap(b, PCB_HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		madvise(b, PCB_HUGE_SIZE, MADV_DONTNEED);   /* cannot happen (same range); zero it anyway */
	madvise(b, PCB_HUGE_SIZE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	madvise(b, PCB_HUGE_SIZE, MADV_DONTFORK);
	madvise(b, PCB_HUGE_SIZE, MADV_POPULATE_WRITE);   /* no memory now: the receive faults pages in instead */
	uint64_t dt = pcb_now_ns() - t0;
	in->fresh_ns[huge] = in->fresh_ns[huge] ? (3 * in->fresh_ns[huge] + dt) / 4 : dt;
	if (st)
		(*(huge ? &st->resets_thp : &st->resets_small))++;
}

int pcb_install_map(struct pcb_installer *in, int mode, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	memset(in, 0, sizeof(*in));
	in->mode = mode;
	in->memfd = -1;
	in->uffd = -1;
	in->batch = batch < 1 ? 1 : batch > PCB_INSTALL_MAX_BATCH ? PCB_INSTALL_MAX_BATCH : batch;
	in->npages = npages;
	in->len = npages << PCB_PAGE_SHIFT;
	if (mode == PCB_INSTALL_CONTINUE) {
		in->memfd = memfd_create("pcbench-guest", MFD_CLOEXEC);
		if (in->memfd < 0 || ftruncate(in->memfd, (off_t)in->len) < 0) {
			snprintf(why, whylen, "cannot create a %llu-byte memfd for the guest region: %s",
				 (unsigned long long)in->len, strerror(errno));
			return PCB_EXIT_OSERR;
		}
		void *r = mmap(NULL, in->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, in->memfd, 0);
		void *a = mmap(NULL, in->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, in->memfd, 0);
		in->region = r == MAP_FAILED ? NULL : r;
		in->alias = a == MAP_FAILED ? NULL : a;
		in->filled = map_anon(((npages + 63) / 64) * 8, 0);
		in->scratch = map_anon(PCB_PAGE_SIZE, 0);
		if (!in->region || !in->alias || !in->filled || !in->scratch) {
			snprintf(why, whylen, "cannot map the shared guest region (%llu bytes) twice: %s",
				 (unsigned long long)in->len, strerror(errno));
			return PCB_EXIT_OSERR;
		}
		madvise(in->region, in->len, MADV_NOHUGEPAGE);
		madvise(in->alias, in->len, MADV_NOHUGEPAGE);
		madvise(in->alias, in->len, MADV_DONTFORK);
		return 0;
	}
	/* 2 MiB-aligned: a whole chunk can then be moved as one PMD (move) */
	in->region = map_anon_aligned(in->len, MAP_NORESERVE);
	in->staging_len = mode == PCB_INSTALL_MOVE ? (size_t)PCB_IQ_SLOTS << PCB_HUGE_SHIFT
						  : (size_t)PCB_IQ_SLOTS * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	in->staging = mode == PCB_INSTALL_MOVE ? map_anon_aligned(in->staging_len, 0) : map_anon(in->staging_len, 0);
	if (!in->region || !in->staging) {
		snprintf(why, whylen, "cannot map a %llu-byte guest region: %s", (unsigned long long)in->len, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	madvise(in->region, in->len, MADV_NOHUGEPAGE);   /* 4 KiB pages: one fault per page */
	if (mode == PCB_INSTALL_MOVE) {
		for (unsigned s = 0; s < PCB_IQ_SLOTS; s++)
			chunk_fresh(in, s, NULL);
		return 0;
	}
	madvise(in->staging, in->staging_len, MADV_NOHUGEPAGE);
	madvise(in->staging, in->staging_len, MADV_DONTFORK);
	return 0;
}

int pcb_install_map_huge(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	if (npages % PCB_HUGE_SUBPAGES) {
		snprintf(why, whylen, "huge pages: %llu pages is not a whole number of 2 MiB pages", (unsigned long long)npages);
		return PCB_EXIT_USAGE;
	}
	memset(in, 0, sizeof(*in));
	in->mode = PCB_INSTALL_COPY;
	in->memfd = in->uffd = -1;
	in->batch = batch < 1 ? 1 : batch > PCB_INSTALL_MAX_BATCH ? PCB_INSTALL_MAX_BATCH : batch;
	in->npages = npages;
	in->len = npages << PCB_PAGE_SHIFT;
	in->huge = true;
	/* private: the huge pages are reserved at mmap time (ENOMEM when the pool is short) */
	void *r = mmap(NULL, in->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	if (r == MAP_FAILED) {
		snprintf(why, whylen, "cannot map a %llu-byte guest region from 2 MiB huge pages: %s (reserve %llu: "
			 "echo N > /proc/sys/vm/nr_hugepages)", (unsigned long long)in->len, strerror(errno),
			 (unsigned long long)(npages / PCB_HUGE_SUBPAGES));
		return errno == ENOMEM ? PCB_EXIT_UNAVAILABLE : PCB_EXIT_OSERR;
	}
	in->region = r;
	in->asmb = map_anon(in->len, MAP_NORESERVE);
	uint64_t nhuge = npages / PCB_HUGE_SUBPAGES;
	in->nslots = nhuge < PCB_HUGE_SLOTS ? (unsigned)nhuge : PCB_HUGE_SLOTS;
	/* pre-touched: a first touch of fresh memory costs ~6 us per 4 KiB page here (nested paging) */
	in->slots = map_anon((size_t)in->nslots << PCB_HUGE_SHIFT, MAP_POPULATE);
	in->hslot = map_anon(nhuge * sizeof(*in->hslot), 0);
	pthread_mutex_init(&in->slot_lock, NULL);
	for (unsigned i = 0; i < in->nslots; i++)
		in->freel[in->nfree++] = in->nslots - 1 - i;
	in->staging = map_anon((size_t)PCB_IQ_SLOTS * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT, 0);
	in->filled = map_anon(((npages + 63) / 64) * 8, 0);
	in->hfill = map_anon(npages / PCB_HUGE_SUBPAGES * sizeof(*in->hfill), 0);
	if (!in->asmb || !in->staging || !in->filled || !in->hfill || !in->slots || !in->hslot) {
		snprintf(why, whylen, "cannot map the %llu-byte assembly buffer for huge pages: %s",
			 (unsigned long long)in->len, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	madvise(in->asmb, in->len, MADV_DONTFORK);
	madvise(in->slots, (size_t)in->nslots << PCB_HUGE_SHIFT, MADV_DONTFORK);
	madvise(in->staging, (size_t)PCB_IQ_SLOTS * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT, MADV_DONTFORK);
	return 0;
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
		munmap(in->staging, in->staging_len ? in->staging_len : (size_t)PCB_IQ_SLOTS * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT);
	if (in->filled)
		munmap((void *)in->filled, ((in->npages + 63) / 64) * 8);
	if (in->scratch)
		munmap(in->scratch, PCB_PAGE_SIZE);
	if (in->memfd >= 0)
		close(in->memfd);
	memset(in, 0, sizeof(*in));
	in->memfd = in->uffd = -1;
}

static inline uint64_t addr_of(const struct pcb_installer *in, uint64_t page)
{
	return (uint64_t)(uintptr_t)in->region + (page << PCB_PAGE_SHIFT);
}

static int wake(struct pcb_installer *in, uint64_t page, uint64_t n, struct pcb_install_stats *st)
{
	struct uffdio_range r = { addr_of(in, page), n << PCB_PAGE_SHIFT };
	st->wakes++;
	return ioctl(in->uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

static bool any_demanded(const struct pcb_installer *in, uint64_t page, uint64_t n)
{
	atomic_thread_fence(memory_order_seq_cst);   /* pairs with the demand thread: set demanded, then test present */
	for (uint64_t i = 0; i < n; i++)
		if (pcb_bit_test(in->demanded, page + i))
			return true;
	return false;
}

/* Arrival digests of the n pages an install ioctl is about to map: the
 * source bytes (COPY, MOVE), the page cache pages (CONTINUE), zeros. */
static void arrival_digests(const struct pcb_installer *in, int op, uint64_t page, uint64_t n, const void *src,
			    uint64_t *out)
{
	static const uint8_t zero[PCB_PAGE_SIZE];
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *b = op == 3 ? zero : op == 2 ? in->alias + ((page + i) << PCB_PAGE_SHIFT)
				 : (const uint8_t *)src + (i << PCB_PAGE_SHIFT);
		out[i] = pcb_page_digest_full(b);
	}
}

static int ioctl_range_raw(struct pcb_installer *in, int op, uint64_t page, uint64_t n, const void *src, bool dontwake,
			   uint64_t *done, struct pcb_install_stats *st);

/* One install ioctl over n pages at page; *done = pages it installed.
 * With arrival digests on, the pages it installed get theirs. */
static int ioctl_range(struct pcb_installer *in, int op, uint64_t page, uint64_t n, const void *src, bool dontwake,
		       uint64_t *done, struct pcb_install_stats *st)
{
	if (!in->arrival)
		return ioctl_range_raw(in, op, page, n, src, dontwake, done, st);
	uint64_t dg[PCB_INSTALL_MAX_BATCH > PCB_CHUNK_PAGES ? PCB_INSTALL_MAX_BATCH : PCB_CHUNK_PAGES];
	if (n > sizeof(dg) / sizeof(dg[0]))
		n = sizeof(dg) / sizeof(dg[0]);   /* callers go on with the rest (*done) */
	arrival_digests(in, op, page, n, src, dg);
	int r = ioctl_range_raw(in, op, page, n, src, dontwake, done, st);
	for (uint64_t i = 0; i < *done; i++)
		in->arrival[page + i] = dg[i];
	return r;
}

/* One install ioctl over n pages at page; *done = pages it installed.
 * Returns 0, or -errno of the first page it could not install. */
static int ioctl_range_raw(struct pcb_installer *in, int op, uint64_t page, uint64_t n, const void *src, bool dontwake,
			   uint64_t *done, struct pcb_install_stats *st)
{
	uint64_t dst = addr_of(in, page), len = n << PCB_PAGE_SHIFT;
	int r = 0;
	int64_t got = 0;
	st->ioctls++;
	switch (op) {
	case 0: {   /* COPY */
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
		r = ioctl(in->uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
		got = r ? c.copy : (int64_t)len;
		break;
	}
	case 1: {   /* MOVE */
		struct uffdio_move m = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = dontwake ? UFFDIO_MOVE_MODE_DONTWAKE : 0 };
		r = ioctl(in->uffd, UFFDIO_MOVE, &m) < 0 ? -errno : 0;
		got = r ? m.move : (int64_t)len;
		break;
	}
	case 2: {   /* CONTINUE */
		struct uffdio_continue c = { .range = { dst, len }, .mode = dontwake ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0 };
		r = ioctl(in->uffd, UFFDIO_CONTINUE, &c) < 0 ? -errno : 0;
		got = r ? c.mapped : (int64_t)len;
		break;
	}
	case 3: {   /* ZEROPAGE */
		struct uffdio_zeropage z = { .range = { dst, len }, .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
		r = ioctl(in->uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
		got = r ? z.zeropage : (int64_t)len;
		break;
	}
	}
	*done = got > 0 ? (uint64_t)got >> PCB_PAGE_SHIFT : 0;
	return r;
}

/* Install pages [page, page+n) with op in chunks of the batch size, src
 * advancing with them (COPY/MOVE).  Every page is reported through cb. */
static int install_chunks_b(struct pcb_installer *in, int op, uint64_t page, uint64_t n, const uint8_t *src,
			    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx, uint64_t batch)
{
	bool batched = batch > 1;
	uint64_t i = 0;
	while (i < n) {
		uint64_t c = n - i < batch ? n - i : batch, done = 0, t0 = pcb_now_ns();
		int r = ioctl_range(in, op, page + i, c, src ? src + (i << PCB_PAGE_SHIFT) : NULL, batched, &done, st);
		st->install_ns += pcb_now_ns() - t0;   /* background only: the demand path is not timed here */
		for (uint64_t k = 0; k < done; k++)
			cb(ctx, page + i + k, 0);
		st->pages += done;
		if (batched && done && any_demanded(in, page + i, done)) {
			int w = wake(in, page + i, done, st);
			if (w < 0)
				return w;
		}
		i += done;
		if (!r)
			continue;
		if (r == -EAGAIN)
			continue;   /* the mm changed under us: retry the rest */
		if (r != -EEXIST)
			return r;
		/* page + i is already there (a demand install won): make sure nobody sleeps on it */
		st->eexist++;
		wake(in, page + i, 1, st);
		cb(ctx, page + i, 1);
		i++;
	}
	return 0;
}

static int install_chunks(struct pcb_installer *in, int op, uint64_t page, uint64_t n, const uint8_t *src,
			  struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	return install_chunks_b(in, op, page, n, src, st, cb, ctx, in->batch);
}

/* Huge pages: put one sub-page's data (src NULL: zero; the assembly buffer
 * is zero already) into the assembly buffer; the sub-page that completes
 * its huge page installs all of it with one waking UFFDIO_COPY.  Returns 0,
 * 1 if the sub-page was already delivered (by another thread), <0 -errno. */
/* The assembly buffer of huge page h: the one its first sub-page got (a
 * free reusable slot, or the fallback area when all slots are taken). */
static uint8_t *huge_buf(struct pcb_installer *in, uint64_t h)
{
	uint32_t v = atomic_load_explicit(&in->hslot[h], memory_order_acquire);
	if (!v) {
		pthread_mutex_lock(&in->slot_lock);
		uint32_t mine = in->nfree ? in->freel[--in->nfree] + 1 : PCB_HUGE_FALLBACK;
		pthread_mutex_unlock(&in->slot_lock);
		if (atomic_compare_exchange_strong(&in->hslot[h], &v, mine))
			v = mine;
		else if (mine != PCB_HUGE_FALLBACK) {   /* another thread assigned one first: give ours back */
			pthread_mutex_lock(&in->slot_lock);
			in->freel[in->nfree++] = mine - 1;
			pthread_mutex_unlock(&in->slot_lock);
		}
	}
	return v == PCB_HUGE_FALLBACK ? in->asmb + (h << PCB_HUGE_SHIFT) : in->slots + ((size_t)(v - 1) << PCB_HUGE_SHIFT);
}

static int huge_fill(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	if (!pcb_bit_set(in->filled, page)) {
		st->eexist++;
		return 1;
	}
	uint64_t h = page / PCB_HUGE_SUBPAGES;
	uint8_t *a = huge_buf(in, h);
	uint8_t *d = a + ((page % PCB_HUGE_SUBPAGES) << PCB_PAGE_SHIFT);
	if (src)
		memcpy(d, src, PCB_PAGE_SIZE);
	else
		memset(d, 0, PCB_PAGE_SIZE);   /* slots are reused */
	if (in->arrival)
		in->arrival[page] = pcb_page_digest_full(d);
	if (atomic_fetch_add_explicit(&in->hfill[h], 1, memory_order_acq_rel) + 1 != PCB_HUGE_SUBPAGES)
		return 0;
	/* every sub-page's writer incremented after writing (acq_rel): all 2 MiB are in */
	uint64_t t0 = pcb_now_ns();
	struct uffdio_copy c = { .dst = (uintptr_t)in->region + (h << PCB_HUGE_SHIFT), .src = (uintptr_t)a,
				 .len = PCB_HUGE_SIZE, .mode = 0 };
	int r;
	do {
		st->ioctls++;
		r = ioctl(in->uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
	} while (r == -EAGAIN && c.copy <= 0);
	st->install_ns += pcb_now_ns() - t0;
	if (r < 0)
		return r;
	st->pages += PCB_HUGE_SUBPAGES;
	if (in->huge_done)
		in->huge_done(in->huge_ctx, h * PCB_HUGE_SUBPAGES);
	uint32_t v = atomic_load_explicit(&in->hslot[h], memory_order_acquire);
	if (v == PCB_HUGE_FALLBACK) {
		madvise(a, PCB_HUGE_SIZE, MADV_DONTNEED);   /* the data lives in the huge page now */
	} else {
		pthread_mutex_lock(&in->slot_lock);
		in->freel[in->nfree++] = v - 1;
		pthread_mutex_unlock(&in->slot_lock);
	}
	return 0;
}

/* Huge pages, background: every sub-page of the run goes through huge_fill;
 * cb gets 0 for a sub-page whose data this run delivered, 2 for one already
 * delivered (its huge page is marked present by whoever completes it). */
static int huge_run(struct pcb_installer *in, uint64_t page, unsigned n, const uint8_t *src,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	for (unsigned i = 0; i < n; i++) {
		int r = huge_fill(in, page + i, src ? src + ((size_t)i << PCB_PAGE_SHIFT) : NULL, st);
		if (r < 0)
			return r;
		cb(ctx, page + i, r ? 2 : 0);
	}
	return 0;
}

int pcb_install_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	uint64_t done = 0;
	int r;
	if (in->huge) {
		r = huge_fill(in, page, src, st);
		return r == 1 ? 2 : r;
	}
	if (in->mode == PCB_INSTALL_CONTINUE) {
		if (!pcb_bit_set(in->filled, page)) {
			st->eexist++;
			return 2;   /* the background thread owns this page: it installs and wakes */
		}
		uint8_t *a = in->alias + (page << PCB_PAGE_SHIFT);
		if (src)
			memcpy(a, src, PCB_PAGE_SIZE);
		else if (madvise(a, PCB_PAGE_SIZE, MADV_POPULATE_WRITE) < 0)
			return -errno;
		r = ioctl_range(in, 2, page, 1, NULL, false, &done, st);
	} else {
		r = ioctl_range(in, src ? 0 : 3, page, 1, src, false, &done, st);
	}
	while (r == -EAGAIN)
		r = ioctl_range(in, in->mode == PCB_INSTALL_CONTINUE ? 2 : src ? 0 : 3, page, 1, src, false, &done, st);
	if (r == -EEXIST) {
		st->eexist++;
		wake(in, page, 1, st);
		return 1;
	}
	if (r < 0)
		return r;
	st->pages++;
	return 0;
}

static uint8_t *slot_base(const struct pcb_installer *in, unsigned slot)
{
	if (in->mode == PCB_INSTALL_MOVE)
		return in->staging + ((size_t)slot << PCB_HUGE_SHIFT);
	return in->staging + ((size_t)slot * PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT);
}

uint8_t *pcb_install_slot_buf(struct pcb_installer *in, unsigned slot)
{
	return slot_base(in, slot);
}

int pcb_install_run_at(struct pcb_installer *in, unsigned slot, unsigned off, uint64_t page, unsigned n,
		       struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	return install_chunks(in, 0, page, n, slot_base(in, slot) + ((size_t)off << PCB_PAGE_SHIFT), st, cb, ctx);
}

void pcb_install_chunk_reset(struct pcb_installer *in, unsigned slot, struct pcb_install_stats *st)
{
	uint64_t t0 = pcb_now_ns();
	chunk_fresh(in, slot, st);
	st->reset_ns += pcb_now_ns() - t0;
}

static bool bit_in(const uint64_t *m, unsigned i)
{
	return m[i >> 6] >> (i & 63) & 1;
}

int pcb_install_chunk(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		      pcb_install_cb cb, void *ctx)
{
	uint8_t *b = slot_base(in, j->slot);
	unsigned n = j->n;
	bool whole = n == PCB_CHUNK_PAGES;
	for (unsigned i = 0; whole && i < PCB_CHUNK_WORDS; i++)
		whole = j->have[i] == ~0ull;
	int r = 0;
	if (whole && in->batch >= PCB_CHUNK_PAGES) {
		st->chunks_whole++;
		r = install_chunks_b(in, 1, j->page, n, b, st, cb, ctx, PCB_CHUNK_PAGES);
	} else {
		st->chunks_partial++;
		for (unsigned i = 0; i < n && !r;) {
			if (!bit_in(j->have, i)) {
				i++;
				continue;
			}
			unsigned e = i + 1;
			while (e < n && bit_in(j->have, e))
				e++;
			r = install_chunks(in, 1, j->page + i, e - i, b + ((size_t)i << PCB_PAGE_SHIFT), st, cb, ctx);
			i = e;
		}
	}
	pcb_install_chunk_reset(in, j->slot, st);
	return r;
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

int pcb_install_rx_iov(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, struct iovec *iov, int max,
		       uint64_t *owned)
{
	if (in->mode != PCB_INSTALL_CONTINUE) {
		uint8_t *st = slot_base(in, slot);
		iov[0] = (struct iovec){ st, (size_t)n << PCB_PAGE_SHIFT };
		return 1;
	}
	int k = 0;
	memset(owned, 0, sizeof(uint64_t) * ((PCB_MAX_RUN_PAGES + 63) / 64));
	for (unsigned i = 0; i < n && k < max; i++) {
		uint64_t pg = page + i;
		if (pcb_bit_set(in->filled, pg)) {
			owned[i >> 6] |= 1ull << (i & 63);
			uint8_t *a = in->alias + (pg << PCB_PAGE_SHIFT);
			if (k && (uint8_t *)iov[k - 1].iov_base + iov[k - 1].iov_len == a)
				iov[k - 1].iov_len += PCB_PAGE_SIZE;
			else
				iov[k++] = (struct iovec){ a, PCB_PAGE_SIZE };
		} else {
			iov[k++] = (struct iovec){ in->scratch, PCB_PAGE_SIZE };   /* the demand thread owns it */
		}
	}
	/* fault the owned page-cache pages in with one call per range: a page
	 * fault per page taken inside recvmsg() costs more (nested guests) */
	for (int i = 0; i < k; i++)
		if (iov[i].iov_base != in->scratch)
			madvise(iov[i].iov_base, iov[i].iov_len, MADV_POPULATE_WRITE);
	return k;
}

/* continue: pages of [page, page+n) this thread owns (the alias iovecs
 * chosen by pcb_install_rx_iov) are CONTINUEd; the others are reported 2. */
static int continue_owned(struct pcb_installer *in, uint64_t page, unsigned n, const struct iovec *iov, int niov,
			  struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	uint64_t pg = page;
	for (int k = 0; k < niov; k++) {
		uint64_t cnt = iov[k].iov_len >> PCB_PAGE_SHIFT;
		if (iov[k].iov_base == in->scratch) {
			st->eexist++;
			cb(ctx, pg, 2);
		} else {
			int r = install_chunks(in, 2, pg, cnt, NULL, st, cb, ctx);
			if (r < 0)
				return r;
		}
		pg += cnt;
	}
	(void)n;
	return 0;
}

int pcb_install_run(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, const uint64_t *owned,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	if (in->huge)
		return huge_run(in, page, n, slot_base(in, slot), st, cb, ctx);
	switch (in->mode) {
	case PCB_INSTALL_COPY:
		return install_chunks(in, 0, page, n, slot_base(in, slot), st, cb, ctx);
	case PCB_INSTALL_MOVE:
		return -EINVAL;   /* move installs whole chunks: pcb_install_chunk */
	default: {
		struct iovec iov[PCB_MAX_RUN_PAGES];
		/* rebuild the ownership map the receive used (bits already set: by us) */
		int k = 0;
		for (unsigned i = 0; i < n; i++) {
			uint8_t *a = in->alias + ((page + i) << PCB_PAGE_SHIFT);
			bool mine = owned[i >> 6] >> (i & 63) & 1;
			if (mine && k && iov[k - 1].iov_base != in->scratch &&
			    (uint8_t *)iov[k - 1].iov_base + iov[k - 1].iov_len == a)
				iov[k - 1].iov_len += PCB_PAGE_SIZE;
			else
				iov[k++] = (struct iovec){ mine ? a : in->scratch, PCB_PAGE_SIZE };
		}
		return continue_owned(in, page, n, iov, k, st, cb, ctx);
	}
	}
}

int pcb_install_zero_run(struct pcb_installer *in, uint64_t page, unsigned n, struct pcb_install_stats *st,
			 pcb_install_cb cb, void *ctx)
{
	if (in->huge)
		return huge_run(in, page, n, NULL, st, cb, ctx);
	if (in->mode != PCB_INSTALL_CONTINUE)
		return install_chunks(in, 3, page, n, NULL, st, cb, ctx);
	/* continue: claim each page, populate the owned ones in the page cache (zeroed), CONTINUE them */
	unsigned i = 0;
	while (i < n) {
		if (!pcb_bit_set(in->filled, page + i)) {
			st->eexist++;
			cb(ctx, page + i, 2);
			i++;
			continue;
		}
		unsigned j = i + 1;
		while (j < n && pcb_bit_set(in->filled, page + j))
			j++;
		/* pages i..j-1 are ours; page j (if < n) was claimed by someone else: report it next round */
		uint8_t *a = in->alias + ((page + i) << PCB_PAGE_SHIFT);
		if (madvise(a, (size_t)(j - i) << PCB_PAGE_SHIFT, MADV_POPULATE_WRITE) < 0)
			return -errno;
		int r = install_chunks(in, 2, page + i, j - i, NULL, st, cb, ctx);
		if (r < 0)
			return r;
		if (j < n) {
			st->eexist++;
			cb(ctx, page + j, 2);
			j++;
		}
		i = j;
	}
	return 0;
}

/* ---- the receive -> install queue ---- */

void pcb_iq_init(struct pcb_install_q *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
}

void pcb_iq_destroy(struct pcb_install_q *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
}

static void wait_100ms(struct pcb_install_q *q)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int pcb_iq_reserve_ahead(struct pcb_install_q *q, unsigned ahead, const atomic_bool *stop, const atomic_int *fatal)
{
	pthread_mutex_lock(&q->lock);
	while (q->head + ahead - q->done >= PCB_IQ_SLOTS && !atomic_load(stop) && !atomic_load(fatal))
		wait_100ms(q);
	int slot = q->head + ahead - q->done < PCB_IQ_SLOTS ? (int)((q->head + ahead) % PCB_IQ_SLOTS) : -1;
	pthread_mutex_unlock(&q->lock);
	return slot;
}

int pcb_iq_reserve(struct pcb_install_q *q, const atomic_bool *stop, const atomic_int *fatal)
{
	return pcb_iq_reserve_ahead(q, 0, stop, fatal);
}

void pcb_iq_push(struct pcb_install_q *q, const struct pcb_install_job *j)
{
	pthread_mutex_lock(&q->lock);
	q->job[q->head % PCB_IQ_SLOTS] = *j;
	q->head++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

int pcb_iq_pop(struct pcb_install_q *q, struct pcb_install_job *j, const atomic_bool *stop, const atomic_int *fatal)
{
	pthread_mutex_lock(&q->lock);
	while (q->tail == q->head && !q->closed && !atomic_load(stop) && !atomic_load(fatal))
		wait_100ms(q);
	int r = -1;
	if (q->tail != q->head && !atomic_load(fatal)) {
		*j = q->job[q->tail % PCB_IQ_SLOTS];
		q->tail++;
		r = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void pcb_iq_done(struct pcb_install_q *q)
{
	pthread_mutex_lock(&q->lock);
	q->done++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void pcb_iq_close(struct pcb_install_q *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}
