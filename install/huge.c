/* --page-size=2M: the guest region is hugetlb and installed with --install=copy
 * 2 MiB at a time; pages stay 4 KiB units everywhere else.  A sub-page's data
 * is written once (its `filled` bit decides who) into the assembly buffer of
 * its huge page; the thread whose sub-page completes the huge page installs
 * all 2 MiB with one UFFDIO_COPY and calls huge_done. */
#include "install/internal.h"
#include "common/image.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static int huge_map(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	if (npages % PCB_HUGE_SUBPAGES) {
		snprintf(why, whylen, "huge pages: %llu pages is not a whole number of 2 MiB pages", (unsigned long long)npages);
		return PCB_EXIT_USAGE;
	}
	pcb_inst_map_init(in, &pcb_install_huge, batch, npages);
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
	in->asmb = pcb_inst_map_anon(in->len, MAP_NORESERVE);
	uint64_t nhuge = npages / PCB_HUGE_SUBPAGES;
	in->nslots = nhuge < PCB_HUGE_SLOTS ? (unsigned)nhuge : PCB_HUGE_SLOTS;
	/* pre-touched: a first touch of fresh memory costs ~6 us per 4 KiB page here (nested paging) */
	in->slots = pcb_inst_map_anon((size_t)in->nslots << PCB_HUGE_SHIFT, MAP_POPULATE);
	in->hslot = pcb_inst_map_anon(nhuge * sizeof(*in->hslot), 0);
	pthread_mutex_init(&in->slot_lock, NULL);
	for (unsigned i = 0; i < in->nslots; i++)
		in->freel[in->nfree++] = in->nslots - 1 - i;
	in->slot_bytes = (size_t)PCB_MAX_RUN_PAGES << PCB_PAGE_SHIFT;
	in->staging_len = (size_t)PCB_IQ_SLOTS * in->slot_bytes;
	in->staging = pcb_inst_map_anon(in->staging_len, 0);
	in->filled = pcb_inst_map_anon(((npages + 63) / 64) * 8, 0);
	in->hfill = pcb_inst_map_anon(npages / PCB_HUGE_SUBPAGES * sizeof(*in->hfill), 0);
	if (!in->asmb || !in->staging || !in->filled || !in->hfill || !in->slots || !in->hslot) {
		snprintf(why, whylen, "cannot map the %llu-byte assembly buffer for huge pages: %s",
			 (unsigned long long)in->len, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	madvise(in->asmb, in->len, MADV_DONTFORK);
	madvise(in->slots, (size_t)in->nslots << PCB_HUGE_SHIFT, MADV_DONTFORK);
	madvise(in->staging, in->staging_len, MADV_DONTFORK);
	return 0;
}

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

/* Put one sub-page's data (src NULL: zero) into its huge page's assembly
 * buffer; the sub-page that completes its huge page installs all of it with
 * one waking UFFDIO_COPY.  0, 1 if the sub-page was already delivered (by
 * another thread), <0 -errno. */
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
		cb(ctx, page + i, r ? 2 : 0, !src);
	}
	return 0;
}


static int huge_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	int r = huge_fill(in, page, src, st);
	return r == 1 ? 2 : r;
}

static int huge_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx)
{
	return huge_run(in, j->page, j->n, j->zero ? NULL : pcb_inst_run_slot(in, j->slot), st, cb, ctx);
}

const struct pcb_install_ops pcb_install_huge = {
	.name = "huge",
	.help = "--page-size=2M: hugetlb region, sub-pages assembled, each 2 MiB page installed with one UFFDIO_COPY",
	.uffd_features = UFFD_FEATURE_MISSING_HUGETLBFS,
	.register_mode = UFFDIO_REGISTER_MODE_MISSING,
	.register_name = "MISSING",
	.default_batch = PCB_MAX_RUN_PAGES,
	.rx = PCB_INRX_FRAME,
	.forkable = true,
	.map = huge_map,
	.one = huge_one,
	.job = huge_job,
};
