/* --install=continue: the guest region is shared memory (a memfd)
 * registered MISSING|MINOR; the pager has its own mapping of it ("alias"),
 * receives page data straight into the page cache through it and maps each
 * page into the guest with UFFDIO_CONTINUE.  A page's `filled` bit says
 * which thread writes it (the demand or the background receiver). */
#include "install/internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int cont_map(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	pcb_inst_map_init(in, &pcb_install_continue, batch, npages);
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
	in->filled = pcb_inst_map_anon(((npages + 63) / 64) * 8, 0);
	in->scratch = pcb_inst_map_anon(PCB_PAGE_SIZE, 0);
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

static int cont_check(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen)
{
	(void)in;
	if (!(u->features_enabled & UFFD_FEATURE_MINOR_SHMEM) || !(u->ioctls_range & (1ull << _UFFDIO_CONTINUE))) {
		snprintf(why, whylen, "--install=continue needs userfaultfd minor faults on shmem (MINOR_SHMEM, Linux 5.14+); "
			 "this kernel offers features 0x%llx: use --install=copy", (unsigned long long)u->features_supported);
		return -1;
	}
	return 0;
}

static int cont_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	if (!pcb_bit_set(in->filled, page)) {
		st->eexist++;
		return 2;   /* the background thread owns this page: it installs and wakes */
	}
	uint8_t *a = in->alias + (page << PCB_PAGE_SHIFT);
	if (src)
		memcpy(a, src, PCB_PAGE_SIZE);
	else if (madvise(a, PCB_PAGE_SIZE, MADV_POPULATE_WRITE) < 0)
		return -errno;
	return pcb_inst_one_op(in, PCB_OP_CONTINUE, page, NULL, st);
}

int pcb_inst_continue_rx_iov(struct pcb_installer *in, uint64_t page, unsigned n, struct iovec *iov, int max,
			     uint64_t *owned)
{
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

void pcb_install_claim_zero(struct pcb_installer *in, uint64_t page, unsigned n, uint64_t *owned)
{
	memset(owned, 0, sizeof(uint64_t) * ((PCB_MAX_RUN_PAGES + 63) / 64));
	for (unsigned i = 0; i < n; i++)
		if (pcb_bit_set(in->filled, page + i))
			owned[i >> 6] |= 1ull << (i & 63);
}

static bool any_zero_slot(const uint64_t *zmask, unsigned from, unsigned n)
{
	for (unsigned i = from; i < from + n; i++)
		if (zmask[i >> 6] >> (i & 63) & 1)
			return true;
	return false;
}

/* A data run the receiver wrote into the page cache: its owned pages are
 * CONTINUEd in ranges, the others reported 2 (the demand thread owns them). */
static int cont_run(struct pcb_installer *in, uint64_t page, unsigned n, const uint64_t *owned,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx, const uint64_t *zmask, unsigned off0)
{
	static const uint64_t none[PCB_CHUNK_WORDS];
	struct pcb_inst_zcb z = { cb, ctx, zmask ? zmask : none, page, off0, st };
	unsigned i = 0;
	while (i < n) {
		if (!(owned[i >> 6] >> (i & 63) & 1)) {
			st->eexist++;
			pcb_inst_zcb_page(&z, page + i, 2, false);
			i++;
			continue;
		}
		unsigned e = i + 1;
		while (e < n && owned[e >> 6] >> (e & 63) & 1)
			e++;
		/* zero slots were claimed, not written: one call puts zeroed pages in the
		 * page cache where none is yet (the data pages are there already) */
		if (zmask && any_zero_slot(zmask, off0 + i, e - i) &&
		    madvise(in->alias + ((page + i) << PCB_PAGE_SHIFT), (size_t)(e - i) << PCB_PAGE_SHIFT, MADV_POPULATE_WRITE) < 0)
			return -errno;
		int r = pcb_inst_chunks(in, PCB_OP_CONTINUE, page + i, e - i, NULL, st, pcb_inst_zcb_page, &z, in->batch, false);
		if (r < 0)
			return r;
		i = e;
	}
	return 0;
}

/* Zero pages: claim each page, populate the owned ones in the page cache
 * (zeroed), CONTINUE them; a page someone else claimed is reported 2. */
static int cont_zero_run(struct pcb_installer *in, uint64_t page, unsigned n, struct pcb_install_stats *st,
			 pcb_install_cb cb, void *ctx)
{
	unsigned i = 0;
	while (i < n) {
		if (!pcb_bit_set(in->filled, page + i)) {
			st->eexist++;
			cb(ctx, page + i, 2, true);
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
		int r = pcb_inst_chunks(in, PCB_OP_CONTINUE, page + i, j - i, NULL, st, cb, ctx, in->batch, true);
		if (r < 0)
			return r;
		if (j < n) {
			st->eexist++;
			cb(ctx, page + j, 2, true);
			j++;
		}
		i = j;
	}
	return 0;
}

static int cont_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx)
{
	if (!j->nseg)
		return j->zero ? cont_zero_run(in, j->page, j->n, st, cb, ctx) : cont_run(in, j->page, j->n, j->owned, st, cb, ctx, NULL, 0);
	int r = 0;
	for (unsigned k = 0; k < j->nseg && !r; k++) {
		const struct pcb_install_seg *g = &j->seg[k];
		if (g->zero) {
			r = cont_zero_run(in, g->page, g->n, st, cb, ctx);
		} else {
			uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
			pcb_install_owned_get(own, j->owned, g->off, g->n);
			r = cont_run(in, g->page, g->n, own, st, cb, ctx, j->zmask, g->off);
		}
	}
	st->jobs_segs += j->nseg;
	return r;
}

static int cont_bare(struct pcb_installer *in, uint64_t page, uint64_t n, const uint8_t *data)
{
	memcpy(in->alias + (page << PCB_PAGE_SHIFT), data, n << PCB_PAGE_SHIFT);
	struct uffdio_continue c = { .range = { pcb_inst_addr(in, page), n << PCB_PAGE_SHIFT },
				     .mode = UFFDIO_CONTINUE_MODE_DONTWAKE };
	return ioctl(in->uffd, UFFDIO_CONTINUE, &c) < 0 ? -errno : 0;
}

const struct pcb_install_ops pcb_install_continue = {
	.name = "continue",
	.help = "memfd guest, pages received into its page cache, UFFDIO_CONTINUE",
	.uffd_features = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM,
	.register_mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
	.register_name = "MISSING|MINOR",
	.default_batch = PCB_MAX_RUN_PAGES,
	.rx = PCB_INRX_PAGECACHE,
	.forkable = true,
	.map = cont_map,
	.check = cont_check,
	.one = cont_one,
	.job = cont_job,
	.bare = cont_bare,
};
