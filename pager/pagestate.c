#include "pager/pagestate.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic uint64_t *bm_alloc(uint64_t nwords, bool shared)
{
	void *p = mmap(NULL, nwords * 8, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int pcb_ps_init(struct pcb_pagestate *ps, uint64_t npages)
{
	return pcb_ps_init_shared(ps, npages, false);
}

int pcb_ps_init_shared(struct pcb_pagestate *ps, uint64_t npages, bool shared)
{
	memset(ps, 0, sizeof(*ps));
	ps->npages = npages;
	ps->nwords = (npages + 63) / 64;
	ps->present = bm_alloc(ps->nwords, shared);
	ps->demanded = bm_alloc(ps->nwords, shared);
	ps->claimed = bm_alloc(ps->nwords, shared);
	if (!ps->present || !ps->demanded || !ps->claimed) {
		pcb_ps_free(ps);
		return -1;
	}
	atomic_init(&ps->npresent, 0);
	return 0;
}

void pcb_ps_free(struct pcb_pagestate *ps)
{
	_Atomic uint64_t **bms[] = { &ps->present, &ps->demanded, &ps->claimed };
	for (unsigned i = 0; i < 3; i++) {
		if (*bms[i])
			munmap((void *)*bms[i], ps->nwords * 8);
		*bms[i] = NULL;
	}
}

static inline uint64_t busy_word(const struct pcb_pagestate *ps, uint64_t w)
{
	uint64_t v = atomic_load_explicit(&ps->present[w], memory_order_relaxed) |
		     atomic_load_explicit(&ps->demanded[w], memory_order_relaxed) |
		     atomic_load_explicit(&ps->claimed[w], memory_order_relaxed);
	if (w == ps->nwords - 1 && (ps->npages & 63))
		v |= ~0ull << (ps->npages & 63);   /* bits past the end count as busy */
	return v;
}

uint64_t pcb_ps_next_free(const struct pcb_pagestate *ps, uint64_t from)
{
	if (from >= ps->npages)
		return ps->npages;
	uint64_t w = from >> 6;
	uint64_t v = ~busy_word(ps, w) & (~0ull << (from & 63));
	while (!v) {
		if (++w >= ps->nwords)
			return ps->npages;
		v = ~busy_word(ps, w);
	}
	uint64_t r = (w << 6) + (uint64_t)__builtin_ctzll(v);
	return r < ps->npages ? r : ps->npages;
}

uint64_t pcb_ps_missing(const struct pcb_pagestate *ps, uint64_t *out, uint64_t max)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < ps->npages; i++) {
		if (!pcb_ps_present(ps, i)) {
			if (n < max)
				out[n] = i;
			n++;
		}
	}
	return n;
}
