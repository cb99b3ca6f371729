/* criu: what CRIU's lazy-pages daemon does (criu/uffd.c, CRIU 3.x-4.x;
 * read at checkpoint-restore/criu 50d9615).
 *   handle_page_fault: a fault brings exactly its own page; a fault on a page
 *     that is already part of a queued request (is_page_queued) is not asked
 *     for again: it waits for that request (fault_waits_queued below);
 *   xfer_pages: in the background, the first remaining range (the lowest
 *     missing address), cut to the current transfer length; one request per
 *     chunk, and handle_requests starts one only while no request at all is
 *     outstanding (list_empty(&lpi->reqs)): one transfer in flight
 *     (max_inflight = 1 below; the pager also holds the next chunk back while
 *     a demand request is outstanding);
 *   update_xfer_len: the length starts at DEFAULT_XFER_LEN (64 KiB), grows by
 *     64 KiB after every chunk (additive) up to MAX_XFER_LEN (4 MiB), and
 *     falls back to 64 KiB on every fault.
 * So the chunks between two faults are 16, 32, 48, ... pages (4 KiB pages).
 *
 * A chunk is one batch here: the policy asks the pager for batches of up to
 * max-chunk pages (batch_pages) and never puts two chunks in one batch.  A
 * fault shrinks the next chunk, not the one in flight; pages of a chunk that
 * the guest faulted in meanwhile are skipped. */
#include "policies/policy.h"
#include "common/util.h"
#include "wire/proto.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const struct pcb_knob criu_knobs[] = {
	{ "min-chunk", "64K", "first and post-fault transfer length, and the step it grows by (bytes, multiple of 4K; CRIU DEFAULT_XFER_LEN)" },
	{ "max-chunk", "4M", "largest transfer length (bytes, multiple of 4K, at most 16M; CRIU MAX_XFER_LEN)" },
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
	if (mx > PCB_MAX_BATCH_PAGES) {
		snprintf(why, whylen, "invalid value for --policy-opt option max-chunk: '%s' (at most 16M: one chunk is one batch)",
			 pcb_policy_opt(p, "max-chunk"));
		return -1;
	}
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
	s->xfer = s->xfer + s->min > s->max ? s->max : s->xfer + s->min;   /* update_xfer_len(lpi, false) */
	return true;
}

/* One chunk per batch (one CRIU request); a chunk longer than the batch the
 * pager offers goes on in the next one. */
static unsigned criu_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct criu_state *s = p->priv;
	unsigned added = 0;
	/* a chunk whose pages were all faulted in meanwhile sends nothing: the next one then */
	while (!added && (s->left || start_chunk(p, s))) {
		while (s->left) {
			int r = pcb_batch_add(p->ps, b, s->next);
			if (r < 0)
				return added;
			added += (unsigned)r;
			s->next++;
			s->left--;
		}
	}
	return added;
}

/* CRIU's lazy-pages daemon talks to the page server over one TCP connection
 * (page-read with PR_REMOTE): a fault's request queues behind a transfer. */
static unsigned criu_channels(const struct pcb_policy *p)
{
	(void)p;
	return 1;
}

/* max-chunk pages: the pager's batches are as long as CRIU's longest request. */
static unsigned criu_batch_pages(const struct pcb_policy *p)
{
	const struct criu_state *s = p->priv;
	return (unsigned)s->max;
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
	.help = "CRIU lazy-pages: one page per fault, none for a page already queued; background chunks from the lowest missing page, one in flight, 64K growing by 64K to 4M, back to 64K on a fault",
	.background = true,
	.knobs = criu_knobs,
	.init = criu_init,
	.fini = criu_fini,
	.on_fault = criu_on_fault,
	.next_batch = criu_next_batch,
	.end = PCB_POLICY_DEST,
	.max_inflight = 1,
	.fault_waits_queued = true,
	.batch_pages = criu_batch_pages,
	.channels = criu_channels,
};
