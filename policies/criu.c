/* criu: what CRIU's lazy-pages daemon does (criu/uffd.c).  A fault brings
 * exactly its own page (no fault-driven prefetch).  In the background the
 * daemon transfers the remaining pages from the lowest missing address, in
 * chunks: a chunk is the run of contiguous missing pages starting there,
 * capped at the current transfer length, which starts at 64 KiB, doubles
 * after every chunk up to 4 MiB, and falls back to 64 KiB on each fault.
 *
 * Here the chunk is the policy's unit of work: next_batch returns at most
 * the pager's batch capacity (--batch, default 64 pages = 256 KiB), so one
 * chunk may span several successive batches; a chunk is decided at its
 * start (as CRIU sends one request per chunk) and a fault shrinks the next
 * chunk, not the one being sent.  Pages of a chunk that the guest faults in
 * meanwhile are skipped. */
#include "policies/policy.h"
#include "common/util.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const struct pcb_knob criu_knobs[] = {
	{ "min-chunk", "64K", "first and post-fault transfer length (bytes, multiple of 4K; CRIU DEFAULT_XFER_LEN)" },
	{ "max-chunk", "4M", "largest transfer length (bytes, multiple of 4K; CRIU MAX_XFER_LEN)" },
	{ NULL, NULL, NULL },
};

struct criu_state {
	_Atomic uint64_t faults;   /* faults on missing pages seen (demand thread) */
	uint64_t faults_seen;      /* ... at the last chunk decision */
	uint64_t min, max, xfer;   /* transfer lengths in pages */
	uint64_t low;              /* no free page below this */
	uint64_t next, left;       /* the chunk being sent: next page, pages left */
	uint64_t chunks;           /* chunks started (tests) */
	uint64_t last_len;         /* length of the last chunk started, pages */
};

static int chunk_knob(struct pcb_policy *p, const char *key, uint64_t *pages, char *why, size_t whylen)
{
	const char *v = pcb_policy_opt(p, key);
	uint64_t bytes;
	if (pcb_parse_size(v, &bytes) < 0 || bytes < 4096 || bytes % 4096 || bytes > (1ull << 40)) {
		snprintf(why, whylen, "invalid value for --policy-opt option %s: '%s' (want a size that is a multiple of 4K, e.g. 64K)",
			 key, v);
		return -1;
	}
	*pages = bytes / 4096;
	return 0;
}

static int criu_init(struct pcb_policy *p, char *why, size_t whylen)
{
	uint64_t mn, mx;
	if (chunk_knob(p, "min-chunk", &mn, why, whylen) < 0 || chunk_knob(p, "max-chunk", &mx, why, whylen) < 0)
		return -1;
	if (mx < mn) {
		snprintf(why, whylen, "invalid value for --policy-opt option max-chunk: '%s' is below min-chunk '%s'",
			 pcb_policy_opt(p, "max-chunk"), pcb_policy_opt(p, "min-chunk"));
		return -1;
	}
	struct criu_state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->min = mn;
	s->max = mx;
	s->xfer = mn;
	p->priv = s;
	return 0;
}

static void criu_fini(struct pcb_policy *p)
{
	free(p->priv);
	p->priv = NULL;
}

static void criu_on_fault(struct pcb_policy *p, uint64_t page, uint64_t now_ns)
{
	(void)now_ns;
	struct criu_state *s = p->priv;
	if (!pcb_ps_present(p->ps, page))
		atomic_fetch_add_explicit(&s->faults, 1, memory_order_relaxed);
}

/* Start the next chunk at the lowest free page: its length is the run of
 * free pages there, capped at the transfer length. */
static bool start_chunk(struct pcb_policy *p, struct criu_state *s)
{
	uint64_t f = atomic_load_explicit(&s->faults, memory_order_relaxed);
	if (f != s->faults_seen) {
		s->faults_seen = f;
		s->xfer = s->min;
	}
	s->low = pcb_ps_next_free(p->ps, s->low);
	if (s->low >= p->npages)
		return false;
	uint64_t end = s->low + 1;
	while (end < p->npages && end - s->low < s->xfer && pcb_ps_next_free(p->ps, end) == end)
		end++;
	s->next = s->low;
	s->left = end - s->low;
	s->last_len = s->left;
	s->chunks++;
	s->xfer = s->xfer * 2 > s->max ? s->max : s->xfer * 2;
	return true;
}

static unsigned criu_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct criu_state *s = p->priv;
	unsigned added = 0;
	for (;;) {
		if (!s->left && (b->npages >= b->max_pages || !start_chunk(p, s)))
			return added;
		while (s->left) {
			int r = pcb_batch_add(p->ps, b, s->next);
			if (r < 0)
				return added;
			added += (unsigned)r;
			s->next++;
			s->left--;
		}
	}
}

/* For tests: the length in pages of the last chunk started, and how many were started. */
void pcb_policy_criu_chunk(const struct pcb_policy *p, uint64_t *last_len, uint64_t *chunks);
void pcb_policy_criu_chunk(const struct pcb_policy *p, uint64_t *last_len, uint64_t *chunks)
{
	const struct criu_state *s = p->priv;
	*last_len = s->last_len;
	*chunks = s->chunks;
}

const struct pcb_policy_ops pcb_policy_criu = {
	.abi = PCB_POLICY_ABI,
	.name = "criu",
	.help = "CRIU lazy-pages: one page per fault; background chunks from the lowest missing page, 64K doubling to 4M, back to 64K on a fault",
	.background = true,
	.knobs = criu_knobs,
	.init = criu_init,
	.fini = criu_fini,
	.on_fault = criu_on_fault,
	.next_batch = criu_next_batch,
};
