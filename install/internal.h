/* Shared by the install paths (the files of install/); not for other rooms. */
#ifndef PCB_INSTALL_INTERNAL_H
#define PCB_INSTALL_INTERNAL_H
#include "install/install.h"
#include "wire/proto.h"
#include "pager/pagestate.h"
#include "common/util.h"
#include "common/image.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

/* the install ioctls */
enum pcb_uffd_op { PCB_OP_COPY, PCB_OP_MOVE, PCB_OP_CONTINUE, PCB_OP_ZEROPAGE };

void *pcb_inst_map_anon(size_t len, int extra);
void *pcb_inst_map_anon_aligned(size_t len, int extra);
unsigned pcb_inst_clamp_batch(const struct pcb_install_ops *ops, unsigned batch);
/* the common part of every map hook: in zeroed, sizes and batch set */
void pcb_inst_map_init(struct pcb_installer *in, const struct pcb_install_ops *ops, unsigned batch, uint64_t npages);

static inline uint64_t pcb_inst_addr(const struct pcb_installer *in, uint64_t page)
{
	return (uint64_t)(uintptr_t)in->region + (page << PCB_PAGE_SHIFT);
}

int pcb_inst_wake(struct pcb_installer *in, uint64_t page, uint64_t n, struct pcb_install_stats *st);
/* One install ioctl over n pages at page; *done = pages it installed.  0, or -errno. */
int pcb_inst_ioctl(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n, const void *src,
		   bool dontwake, uint64_t *done, struct pcb_install_stats *st);
/* Install [page, page+n) with op in pieces of `batch` pages, src advancing
 * with them (COPY/MOVE); every page reported through cb (zero: as zero pages). */
int pcb_inst_chunks(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, uint64_t n, const uint8_t *src,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx, uint64_t batch, bool zero);
/* Demand: one page with op, retried on EAGAIN, woken; 0 installed, 1 already there, <0 -errno. */
int pcb_inst_one_op(struct pcb_installer *in, enum pcb_uffd_op op, uint64_t page, const void *src,
		    struct pcb_install_stats *st);
/* Staging slot `slot` of a copy-like path (PCB_MAX_RUN_PAGES pages). */
uint8_t *pcb_inst_run_slot(const struct pcb_installer *in, unsigned slot);
int pcb_inst_map_private(struct pcb_installer *in, char *why, size_t whylen);
int pcb_inst_copy_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st);
int pcb_inst_continue_rx_iov(struct pcb_installer *in, uint64_t page, unsigned n, struct iovec *iov, int max, uint64_t *owned);

/* Reports each page of a data segment whose zero slots are marked in zmask
 * (bit off0 + page - page0) as a zero page: cb context for pcb_inst_chunks. */
struct pcb_inst_zcb {
	pcb_install_cb cb;
	void *ctx;
	const uint64_t *zmask;
	uint64_t page0;
	unsigned off0;
	struct pcb_install_stats *st;   /* counts zero_inline (NULL: not counted) */
};
void pcb_inst_zcb_page(void *vctx, uint64_t page, int res, bool zero);

extern const struct pcb_install_ops pcb_install_copy, pcb_install_move, pcb_install_continue, pcb_install_huge;
#endif
