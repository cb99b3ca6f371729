/* move: background pages assembled in 2 MiB chunks (see struct pcb_pager). */
#include "pager/background.h"

bool chunk_mode(const struct pcb_pager *p)
{
	return p->in.ops->rx == PCB_INRX_CHUNK;
}

void chunk_push(struct pcb_pager *p)
{
	if (!p->chunk_open)
		return;
	p->chunk_open = false;
	bg_hand_off(p, &p->chunk);
}

/* Start chunk job j for the chunk holding page pg, in the slot `ahead` jobs
 * after the next one pushed.  0, or -1 on stop. */
static int chunk_start(struct pcb_pager *p, struct pcb_install_job *j, uint64_t pg, bool drain, unsigned ahead)
{
	int slot = pcb_iq_reserve_ahead(&p->iq, ahead, &p->stopping, &p->fatal);
	if (slot < 0)
		return -1;
	uint64_t first = pg - pg % PCB_CHUNK_PAGES;
	memset(j, 0, sizeof(*j));
	j->page = first;
	j->n = (unsigned)(p->cfg.npages - first < PCB_CHUNK_PAGES ? p->cfg.npages - first : PCB_CHUNK_PAGES);
	j->slot = (unsigned)slot;
	j->drain = drain;
	j->chunk = true;
	return 0;
}

/* Make the open chunk the one holding page pg (pushing another one first). */
static int chunk_for(struct pcb_pager *p, uint64_t pg, bool drain)
{
	if (p->chunk_open && (pg - p->chunk.page >= PCB_CHUNK_PAGES || pg < p->chunk.page || drain != p->chunk.drain))
		chunk_push(p);
	if (p->chunk_open)
		return 0;
	if (chunk_start(p, &p->chunk, pg, drain, 0) < 0)
		return -1;
	p->chunk_open = true;
	return 0;
}

static void chunk_mark(struct pcb_install_job *j, uint64_t pg, bool zero)
{
	unsigned i = (unsigned)(pg - j->page);
	j->have[i >> 6] |= 1ull << (i & 63);
	if (zero)
		j->zmask[i >> 6] |= 1ull << (i & 63);
}

/* Push the open chunk once every page of it has arrived. */
static void chunk_push_if_whole(struct pcb_pager *p)
{
	unsigned got = 0;
	for (unsigned i = 0; i < PCB_CHUNK_WORDS; i++)
		got += (unsigned)__builtin_popcountll(p->chunk.have[i]);
	if (got == p->chunk.n)
		chunk_push(p);
}

/* A RUN frame (header at the head of the receive buffer) received straight
 * into the staging chunk(s) of its pages: at most two, as a run has at most
 * PCB_MAX_RUN_PAGES pages.  0, -1 (stop / fatal) or -2 (connection lost). */
int bg_chunk_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain)
{
	uint64_t first = h->arg;
	unsigned n = h->len / PCB_PAGE_SIZE;
	if (chunk_for(p, first, drain) < 0)
		return -1;
	uint64_t end0 = p->chunk.page + PCB_CHUNK_PAGES;
	unsigned n0 = first + n <= end0 ? n : (unsigned)(end0 - first);
	struct iovec iov[2] = { { pcb_install_slot_buf(&p->in, p->chunk.slot) + ((first - p->chunk.page) << PCB_PAGE_SHIFT),
				  (size_t)n0 << PCB_PAGE_SHIFT } };
	int niov = 1;
	if (n0 < n) {
		if (chunk_start(p, &p->chunk_next, end0, drain, 1) < 0)
			return -1;
		iov[1] = (struct iovec){ pcb_install_slot_buf(&p->in, p->chunk_next.slot), (size_t)(n - n0) << PCB_PAGE_SHIFT };
		niov = 2;
	}
	int rr = bg_take_run(p, h, iov, niov);
	if (rr == 0) {
		for (unsigned i = 0; i < n0; i++) {
			chunk_mark(&p->chunk, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
		for (unsigned i = n0; i < n; i++) {
			chunk_mark(&p->chunk_next, first + i, false);
			PCB_PROBE_RECEIVED(first + i, PCB_CHAN_BACKGROUND, 0);
		}
	}
	/* a run cut short is not marked: the pages are asked for again (the chunks
	 * are still pushed, so their slots get fresh memory) */
	if (niov == 2) {
		chunk_push(p);
		p->chunk = p->chunk_next;
		p->chunk_open = true;
		if (rr < 0)
			chunk_push(p);
	}
	if (rr == 0)
		chunk_push_if_whole(p);
	return rr;
}

/* A ZERO frame (zero: data NULL) or a single PAGE in chunk mode: the
 * chunk's memory is zero already; a data page is copied in. */
int bg_chunk_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain)
{
	if (chunk_for(p, pg, drain) < 0)
		return -1;
	if (data)
		memcpy(pcb_install_slot_buf(&p->in, p->chunk.slot) + ((pg - p->chunk.page) << PCB_PAGE_SHIFT), data, PCB_PAGE_SIZE);
	chunk_mark(&p->chunk, pg, !data);
	chunk_push_if_whole(p);
	return 0;
}
