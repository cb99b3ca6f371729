/* copy and continue: back-to-back background frames gathered into one
 * installer job of segments (see struct pcb_pager). */
#include "pager/background.h"

bool seg_mode(const struct pcb_pager *p)
{
	return p->in.ops->rx == PCB_INRX_GATHER || p->in.ops->rx == PCB_INRX_PAGECACHE;
}

/* continue: the ownership bits of a run (bit 0 = its first page) into
 * the job's bits, which number the job's data pages in order */
static void owned_put(uint64_t *job, unsigned at, const uint64_t *run, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (run[i >> 6] >> (i & 63) & 1)
			job[(at + i) >> 6] |= 1ull << ((at + i) & 63);
}


void seg_push(struct pcb_pager *p)
{
	if (!p->sj_open)
		return;
	p->sj_open = false;
	bg_hand_off(p, &p->sj);
}

/* Make room in the open job for a segment of `data` staging pages (pushing
 * the job first when it is full or for another kind of batch).  0, or -1 on stop. */
static int seg_room(struct pcb_pager *p, unsigned data, bool drain)
{
	if (p->sj_open && (p->sj.nseg == PCB_JOB_SEGS || p->sj_used + data > PCB_MAX_RUN_PAGES || p->sj.drain != drain))
		seg_push(p);
	if (p->sj_open)
		return 0;
	int slot = pcb_iq_reserve(&p->iq, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	p->sj.nseg = 0;
	memset(p->sj.owned, 0, sizeof(p->sj.owned));
	p->sj.slot = (unsigned)slot;
	p->sj.drain = drain;
	p->sj.chunk = p->sj.zero = false;
	memset(p->sj.zmask, 0, sizeof(p->sj.zmask));
	p->sj_used = p->sj_ztail = 0;
	p->sj_open = true;
	return 0;
}

/* The open job's last segment when pg continues it (same kind of batch), else NULL. */
static struct pcb_install_seg *seg_last(struct pcb_pager *p, uint64_t pg, bool drain)
{
	if (!p->sj_open || !p->sj.nseg || p->sj.drain != drain)
		return NULL;
	struct pcb_install_seg *g = &p->sj.seg[p->sj.nseg - 1];
	return g->page + g->n == pg ? g : NULL;
}

/* Zero slots: n zero pages at pg appended to the open job's staging (copy: a
 * zeroed staging page; continue: the page claimed, put in the page cache by
 * the installer), so
 * that they are installed with the data around them by one ioctl. */
static void seg_zero_slots(struct pcb_pager *p, uint64_t pg, unsigned n)
{
	if (p->in.ops->rx == PCB_INRX_PAGECACHE) {
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		pcb_install_claim_zero(&p->in, pg, n, own);
		owned_put(p->sj.owned, p->sj_used, own, n);
	} else {
		memset(pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT), 0,
		       (size_t)n << PCB_PAGE_SHIFT);
	}
	for (unsigned i = p->sj_used; i < p->sj_used + n; i++)
		p->sj.zmask[i >> 6] |= 1ull << (i & 63);
	p->sj_used += n;
}

/* Receive a RUN's payload into the open job at staging page sj_used. 0, -1, -2 (lost). */
static int seg_receive(struct pcb_pager *p, const struct pcb_hdr *h, unsigned n)
{
	if (p->in.ops->rx == PCB_INRX_PAGECACHE) {
		/* straight into the page cache, claiming each page (a page the demand
		 * thread owns goes to scratch) */
		struct pcb_install_job run = { .page = h->arg, .n = n };
		struct iovec iov[PCB_MAX_RUN_PAGES];
		int niov = pcb_install_rx_iov(&p->in, p->sj.slot, h->arg, n, iov, PCB_MAX_RUN_PAGES, run.owned);
		int rr = bg_take_run(p, h, iov, niov);
		if (rr < 0) {
			bg_release_claims(p, &run);   /* asked for again: give the claims back */
			return rr;
		}
		owned_put(p->sj.owned, p->sj_used, run.owned, n);
		return 0;
	}
	struct iovec iov = { pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT),
			     (size_t)n << PCB_PAGE_SHIFT };
	return bg_take_run(p, h, &iov, 1);   /* a run cut short is not installed: it is asked for again */
}

/* A RUN frame received straight into the open job's staging slot.  It
 * extends the last data segment when it continues it; a short zero segment
 * just before it becomes zero slots of the same segment.  0, -1, -2 (lost). */
int bg_seg_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	unsigned n = h->len / PCB_PAGE_SIZE;
	const struct pcb_conn *c = &p->chan[PCB_CHAN_BACKGROUND];
	/* on an emulated link a frame's payload arrives at the link's pace: install what
	 * was gathered before waiting for it (on loopback the next frame is already there) */
	if (p->sj_open && p->cfg.link_bps && c->rlen - c->rpos < PCB_HDR_SIZE + (size_t)h->len)
		seg_push(p);
	struct pcb_install_seg *last = seg_last(p, h->arg, drain);
	if (last && last->zero && last->n <= p->zero_inline && p->sj_used + last->n + n <= PCB_MAX_RUN_PAGES) {
		last->zero = false;   /* the zero run before this one: zero slots */
		last->off = p->sj_used;
		seg_zero_slots(p, last->page, last->n);
	}
	if (!last || last->zero || p->sj_used + n > PCB_MAX_RUN_PAGES) {
		last = NULL;
		if (seg_room(p, n, drain) < 0)
			return -1;
	}
	unsigned at = p->sj_used;
	int rr = seg_receive(p, h, n);
	if (rr < 0)
		return rr;
	if (last)
		last->n += n;
	else
		p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ h->arg, at, n, false };
	p->sj_used += n;
	p->sj_ztail = 0;
	for (unsigned i = 0; i < n; i++)
		PCB_PROBE_RECEIVED(h->arg + i, PCB_CHAN_BACKGROUND, 0);
	return 0;
}

/* A ZERO frame after a data segment: a zero slot while its zero run is no
 * longer than zero_inline; the run that grows longer leaves the segment and
 * becomes a zero segment (UFFDIO_ZEROPAGE).  1 taken, 0 not. */
static int seg_zero_after_data(struct pcb_pager *p, struct pcb_install_seg *last, uint64_t pg)
{
	if (p->sj_ztail < p->zero_inline && p->sj_used < PCB_MAX_RUN_PAGES) {
		seg_zero_slots(p, pg, 1);
		last->n++;
		p->sj_ztail++;
		return 1;
	}
	if (!p->sj_ztail || p->sj.nseg == PCB_JOB_SEGS || p->in.ops->rx == PCB_INRX_PAGECACHE)
		return 0;
	/* copy: the zero run is too long to copy in: its slots become a zero segment */
	unsigned z = p->sj_ztail;
	last->n -= z;
	p->sj_used -= z;
	for (unsigned i = p->sj_used; i < p->sj_used + z; i++)
		p->sj.zmask[i >> 6] &= ~(1ull << (i & 63));
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ pg - z, 0, z + 1, true };
	p->sj_ztail = 0;
	return 1;
}

/* A ZERO frame (data NULL) or a single PAGE. 0, or -1 on stop. */
int bg_seg_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	struct pcb_install_seg *last = seg_last(p, pg, drain);
	if (!data && last && last->zero) {
		last->n++;   /* a run of ZERO frames: one ZEROPAGE call */
		return 0;
	}
	if (!data && last && seg_zero_after_data(p, last, pg))
		return 0;
	if (seg_room(p, data ? 1 : 0, drain) < 0)
		return -1;
	if (data && p->in.ops->rx == PCB_INRX_PAGECACHE) {
		struct iovec iov[1];
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		pcb_install_rx_iov(&p->in, p->sj.slot, pg, 1, iov, 1, own);
		memcpy(iov[0].iov_base, data, PCB_PAGE_SIZE);
		owned_put(p->sj.owned, p->sj_used, own, 1);
	} else if (data) {
		memcpy(pcb_install_slot_buf(&p->in, p->sj.slot) + ((size_t)p->sj_used << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	}
	p->sj.seg[p->sj.nseg++] = (struct pcb_install_seg){ pg, data ? p->sj_used : 0, 1, !data };
	p->sj_used += data ? 1 : 0;
	p->sj_ztail = 0;
	return 0;
}
