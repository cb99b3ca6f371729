/* Page state of the destination region: lock-free bitmaps shared by the
 * demand thread, the background thread, the policies and the guest. */
#ifndef PCB_PAGESTATE_H
#define PCB_PAGESTATE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pcb_pagestate {
	uint64_t npages;
	uint64_t nwords;
	_Atomic uint64_t *present;     /* installed in the guest region */
	_Atomic uint64_t *demanded;    /* a demand request is (or was) outstanding */
	_Atomic uint64_t *claimed;     /* a background batch has taken it (or, when a fault found it
					* unclaimed, the demand thread: --inflight=wait) */
	_Atomic uint64_t npresent;
};

int pcb_ps_init(struct pcb_pagestate *ps, uint64_t npages);
/* The same; shared: the bitmaps are MAP_SHARED (visible to a forked pager process). */
int pcb_ps_init_shared(struct pcb_pagestate *ps, uint64_t npages, bool shared);
void pcb_ps_free(struct pcb_pagestate *ps);

static inline bool pcb_bit_test(_Atomic uint64_t *bm, uint64_t i)
{
	return (atomic_load_explicit(&bm[i >> 6], memory_order_acquire) >> (i & 63)) & 1;
}
/* Set bit; true if this call set it. */
static inline bool pcb_bit_set(_Atomic uint64_t *bm, uint64_t i)
{
	uint64_t m = 1ull << (i & 63);
	return !(atomic_fetch_or_explicit(&bm[i >> 6], m, memory_order_acq_rel) & m);
}
static inline bool pcb_ps_present(const struct pcb_pagestate *ps, uint64_t page)
{
	return pcb_bit_test(ps->present, page);
}
/* Mark installed; true if newly present (then npresent was incremented). */
static inline bool pcb_ps_set_present(struct pcb_pagestate *ps, uint64_t page)
{
	if (!pcb_bit_set(ps->present, page))
		return false;
	atomic_fetch_add_explicit(&ps->npresent, 1, memory_order_acq_rel);
	return true;
}
/* Make a present page missing again (pre-copy, before the pager runs); true if it was present. */
static inline bool pcb_ps_clear_present(struct pcb_pagestate *ps, uint64_t page)
{
	uint64_t m = 1ull << (page & 63);
	if (!(atomic_fetch_and_explicit(&ps->present[page >> 6], ~m, memory_order_acq_rel) & m))
		return false;
	atomic_fetch_sub_explicit(&ps->npresent, 1, memory_order_acq_rel);
	return true;
}
static inline bool pcb_ps_complete(const struct pcb_pagestate *ps)
{
	return atomic_load_explicit(&((struct pcb_pagestate *)ps)->npresent, memory_order_acquire) == ps->npages;
}
/* A background pull may take the page: not present, not demanded, not claimed.  Claims it. */
static inline bool pcb_ps_claim(struct pcb_pagestate *ps, uint64_t page)
{
	if (pcb_bit_test(ps->present, page) || pcb_bit_test(ps->demanded, page))
		return false;
	return pcb_bit_set(ps->claimed, page);
}
/* First page >= from that is neither present nor claimed nor demanded, or npages. Word-at-a-time. */
uint64_t pcb_ps_next_free(const struct pcb_pagestate *ps, uint64_t from);
/* Count of pages not present; fills up to max indices of missing pages into out. */
uint64_t pcb_ps_missing(const struct pcb_pagestate *ps, uint64_t *out, uint64_t max);
#endif
