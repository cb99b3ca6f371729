/* --install=move: background pages are assembled per 2 MiB chunk of the
 * guest region in a staging chunk (zero pages are its zeros) and moved in
 * with UFFDIO_MOVE, a whole chunk with one ioctl (one PMD where the kernel
 * can); demand pages as copy. */
#include "install/internal.h"
#include "common/util.h"
#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/mman.h>

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

static int move_map(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	pcb_inst_map_init(in, &pcb_install_move, batch, npages);
	/* 2 MiB-aligned: a whole chunk can then be moved as one PMD */
	in->region = pcb_inst_map_anon_aligned(in->len, MAP_NORESERVE);
	in->slot_bytes = PCB_HUGE_SIZE;
	in->staging_len = (size_t)PCB_IQ_SLOTS << PCB_HUGE_SHIFT;
	in->staging = pcb_inst_map_anon_aligned(in->staging_len, 0);
	if (!in->region || !in->staging) {
		snprintf(why, whylen, "cannot map a %llu-byte guest region: %s", (unsigned long long)in->len, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	madvise(in->region, in->len, MADV_NOHUGEPAGE);   /* 4 KiB pages: one fault per page */
	for (unsigned s = 0; s < PCB_IQ_SLOTS; s++)
		chunk_fresh(in, s, NULL);
	return 0;
}

static int move_check(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen)
{
	(void)in;
	if (!(u->features_enabled & UFFD_FEATURE_MOVE) || !(u->ioctls_range & (1ull << _UFFDIO_MOVE))) {
		snprintf(why, whylen, "--install=move needs UFFDIO_MOVE (Linux 6.8+); this kernel offers userfaultfd "
			 "features 0x%llx: use --install=copy", (unsigned long long)u->features_supported);
		return -1;
	}
	return 0;
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
	uint8_t *b = pcb_inst_run_slot(in, j->slot);
	struct pcb_inst_zcb c = { cb, ctx, j->zmask, j->page, 0, NULL };   /* a chunk's zero pages are in it anyway */
	unsigned n = j->n;
	bool whole = n == PCB_CHUNK_PAGES;
	for (unsigned i = 0; whole && i < PCB_CHUNK_WORDS; i++)
		whole = j->have[i] == ~0ull;
	int r = 0;
	if (whole && in->batch >= PCB_CHUNK_PAGES) {
		st->chunks_whole++;
		r = pcb_inst_chunks(in, PCB_OP_MOVE, j->page, n, b, st, pcb_inst_zcb_page, &c, PCB_CHUNK_PAGES, false);
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
			r = pcb_inst_chunks(in, PCB_OP_MOVE, j->page + i, e - i, b + ((size_t)i << PCB_PAGE_SHIFT), st,
					    pcb_inst_zcb_page, &c, in->batch, false);
			i = e;
		}
	}
	pcb_install_chunk_reset(in, j->slot, st);
	return r;
}

static int move_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx)
{
	if (j->chunk)
		return pcb_install_chunk(in, j, st, cb, ctx);
	if (j->zero)
		return pcb_inst_chunks(in, PCB_OP_ZEROPAGE, j->page, j->n, NULL, st, cb, ctx, in->batch, true);
	return -EINVAL;   /* move installs whole chunks */
}

/* the floor's install-only move: the receive writes into the staging chunk
 * (one word per page here, as a receive writes its buffer: not the cost
 * measured), one MOVE, then the chunk gets fresh memory */
static int move_bare(struct pcb_installer *in, uint64_t page, uint64_t n, const uint8_t *data)
{
	(void)data;
	uint8_t *cb = pcb_inst_run_slot(in, 0);
	for (uint64_t k = 0; k < n; k++)
		*(uint64_t *)(cb + (k << PCB_PAGE_SHIFT)) = page + k;
	uint64_t dst = pcb_inst_addr(in, page), len = n << PCB_PAGE_SHIFT, off = 0;
	int e = 0;
	for (unsigned busy = 0; off < len;) {   /* EAGAIN: retry; EBUSY as pcb_inst_chunks: retry, then copy */
		struct uffdio_move m = { .dst = dst + off, .src = (uintptr_t)cb + off, .len = len - off,
					 .mode = UFFDIO_MOVE_MODE_DONTWAKE };
		e = ioctl(in->uffd, UFFDIO_MOVE, &m) < 0 ? -errno : 0;
		off += e && m.move > 0 ? (uint64_t)m.move : e ? 0 : len - off;
		if (e == -EBUSY && ++busy >= PCB_MOVE_BUSY_TRIES) {
			struct uffdio_copy c = { .dst = dst + off, .src = (uintptr_t)cb + off, .len = len - off,
						 .mode = UFFDIO_COPY_MODE_DONTWAKE };
			e = ioctl(in->uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
			break;
		}
		if (e && e != -EAGAIN && e != -EBUSY)
			break;
	}
	struct pcb_install_stats ist = { 0 };
	pcb_install_chunk_reset(in, 0, &ist);
	return e;
}

const struct pcb_install_ops pcb_install_move = {
	.name = "move",
	.help = "background pages assembled in 2 MiB staging chunks, zero pages included, UFFDIO_MOVE of whole chunks",
	.uffd_features = UFFD_FEATURE_MOVE,
	.register_mode = UFFDIO_REGISTER_MODE_MISSING,
	.register_name = "MISSING",
	.default_batch = PCB_CHUNK_PAGES,
	.rx = PCB_INRX_CHUNK,
	.forkable = false,   /* UFFDIO_MOVE cannot move pages between two processes */
	.map = move_map,
	.check = move_check,
	.one = pcb_inst_copy_one,
	.job = move_job,
	.bare = move_bare,
};
