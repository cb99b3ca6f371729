/* --install=copy: an anonymous private region; pages are copied in with
 * UFFDIO_COPY (zero pages with UFFDIO_ZEROPAGE), background runs from a
 * staging slot up to --install-batch pages per ioctl. */
#include "install/internal.h"
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

static int copy_map(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen)
{
	pcb_inst_map_init(in, &pcb_install_copy, batch, npages);
	return pcb_inst_map_private(in, why, whylen);
}

/* demand, copy and move: COPY from the receive buffer, or a ZEROPAGE */
int pcb_inst_copy_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st)
{
	return pcb_inst_one_op(in, src ? PCB_OP_COPY : PCB_OP_ZEROPAGE, page, src, st);
}

int pcb_install_run_at(struct pcb_installer *in, unsigned slot, unsigned off, uint64_t page, unsigned n,
		       struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	return pcb_inst_chunks(in, PCB_OP_COPY, page, n, pcb_inst_run_slot(in, slot) + ((size_t)off << PCB_PAGE_SHIFT), st,
			       cb, ctx, in->batch, false);
}

/* a data segment of a job: one COPY per --install-batch pages, zero slots included */
static int copy_seg(struct pcb_installer *in, const struct pcb_install_job *j, const struct pcb_install_seg *g,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx)
{
	struct pcb_inst_zcb z = { cb, ctx, j->zmask, g->page, g->off, st };
	return pcb_inst_chunks(in, PCB_OP_COPY, g->page, g->n, pcb_inst_run_slot(in, j->slot) + ((size_t)g->off << PCB_PAGE_SHIFT),
			       st, pcb_inst_zcb_page, &z, in->batch, false);
}

static int copy_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx)
{
	if (!j->nseg)
		return j->zero ? pcb_inst_chunks(in, PCB_OP_ZEROPAGE, j->page, j->n, NULL, st, cb, ctx, in->batch, true)
			       : pcb_install_run_at(in, j->slot, 0, j->page, j->n, st, cb, ctx);
	int r = 0;
	for (unsigned k = 0; k < j->nseg && !r; k++) {
		const struct pcb_install_seg *g = &j->seg[k];
		r = g->zero ? pcb_inst_chunks(in, PCB_OP_ZEROPAGE, g->page, g->n, NULL, st, cb, ctx, in->batch, true)
			    : copy_seg(in, j, g, st, cb, ctx);
	}
	st->jobs_segs += j->nseg;
	return r;
}

static int copy_bare(struct pcb_installer *in, uint64_t page, uint64_t n, const uint8_t *data)
{
	struct uffdio_copy c = { .dst = pcb_inst_addr(in, page), .src = (uintptr_t)data, .len = n << PCB_PAGE_SHIFT,
				 .mode = UFFDIO_COPY_MODE_DONTWAKE };
	return ioctl(in->uffd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
}

const struct pcb_install_ops pcb_install_copy = {
	.name = "copy",
	.help = "UFFDIO_COPY from a staging slot; zero pages with UFFDIO_ZEROPAGE",
	.register_mode = UFFDIO_REGISTER_MODE_MISSING,
	.register_name = "MISSING",
	.default_batch = PCB_MAX_RUN_PAGES,
	.rx = PCB_INRX_GATHER,
	.forkable = true,
	.per_run_api = true,
	.map = copy_map,
	.one = pcb_inst_copy_one,
	.job = copy_job,
	.bare = copy_bare,
};
