/* replay: working-set record and replay, as REAP (Ustiugov et al., ASPLOS
 * 2021, "Benchmarking, Analysis, and Optimization of Serverless Function
 * Snapshots") does for snapshots.  A run with --record FILE writes every
 * guest access (workloads/workload.h "access traces"); the pages in the
 * order they first appear there are the recorded working set.  A later run
 * with --policy=replay --replay FILE fetches that whole set eagerly when the
 * guest resumes -- REAP reads its working-set file with one large read and
 * installs it while the function starts -- here in batches as large as the
 * protocol carries (4096 pages, 256 runs each, sorted into runs), then
 * leaves the rest to faults and the final drain (rest=demand, REAP) or pulls
 * it in address order (rest=address).
 *
 * Replaying a trace recorded with the same seed and workload is an oracle:
 * the working set is then exactly the pages this run will touch.  A fair
 * comparison records with one seed and replays with another.
 *
 * The trace is read and checked in init, so a missing, unreadable or bad
 * file, or a page beyond --mem, is refused before the migration starts. */
#include "policies/policy.h"
#include "common/util.h"
#include "wire/proto.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_REPLAY_MAX_BATCH 4096

static const struct pcb_knob replay_knobs[] = {
	{ "file", "", "access trace written by --record (binary or .txt); --replay FILE sets it" },
	{ "rest", "demand", "pages the trace never touched: demand (leave them to faults and the final drain, as REAP) "
			    "or address (pull them in address order after the working set)" },
	{ "batch-order", "address", "order inside one batch: address (the batch's pages sorted, so neighbours merge into runs) "
				    "or trace (first-touch order kept inside the batch too)" },
	{ NULL, NULL, NULL },
};

struct replay_state {
	uint64_t *order;          /* pages in first-touch order */
	uint64_t n, next;         /* working-set size, next index to offer */
	uint64_t cursor;          /* address-order rest */
	bool rest_address;
	bool sort;                /* batch-order=address */
	uint64_t *cand;           /* one batch of candidates */
};

static int replay_init(struct pcb_policy *p, char *why, size_t whylen)
{
	const char *file = pcb_policy_opt(p, "file");
	const char *rest = pcb_policy_opt(p, "rest");
	if (!file || !file[0]) {
		snprintf(why, whylen, "policy replay needs a recorded access trace: --replay FILE (written by --record FILE)");
		return -1;
	}
	if (strcmp(rest, "address") && strcmp(rest, "demand")) {
		snprintf(why, whylen, "invalid value for --policy-opt option rest: '%s' (want address or demand)", rest);
		return -1;
	}
	struct pcb_atrace t;
	char w[384] = "";
	int rc = pcb_atrace_load(file, &t, w, sizeof(w));
	if (rc) {
		/* unreadable: a bad option value (64); readable but malformed: bad data (65) */
		snprintf(why, whylen, "invalid value for --replay: %s", w);
		return rc == PCB_EXIT_DATAERR ? -PCB_EXIT_DATAERR : -1;
	}
	struct replay_state *s = calloc(1, sizeof(*s));
	uint64_t *seen = calloc((p->npages + 63) / 64, 8);
	if (!s || !seen) {
		free(s);
		free(seen);
		pcb_atrace_free(&t);
		snprintf(why, whylen, "out of memory for the replay working set of %llu pages", (unsigned long long)p->npages);
		return -PCB_EXIT_OSERR;
	}
	s->rest_address = !strcmp(rest, "address");
	const char *bo = pcb_policy_opt(p, "batch-order");
	if (strcmp(bo, "address") && strcmp(bo, "trace")) {
		snprintf(why, whylen, "invalid value for --policy-opt option batch-order: '%s' (want address or trace)", bo);
		free(seen);
		free(s);
		pcb_atrace_free(&t);
		return -1;
	}
	s->sort = !strcmp(bo, "address");
	for (uint64_t i = 0; i < t.count; i++) {
		uint64_t pg = t.rec[i].page;
		if (pg >= p->npages) {
			snprintf(why, whylen,
				 "invalid value for --replay: '%s' record %llu touches page %llu, beyond --mem (%llu pages): "
				 "recorded with a larger --mem?",
				 file, (unsigned long long)i, (unsigned long long)pg, (unsigned long long)p->npages);
			free(seen);
			free(s->order);
			free(s);
			pcb_atrace_free(&t);
			return -PCB_EXIT_DATAERR;
		}
		if (seen[pg >> 6] & (1ull << (pg & 63)))
			continue;
		seen[pg >> 6] |= 1ull << (pg & 63);
		if (!s->order || (s->n & (s->n - 1)) == 0) {   /* grow at powers of two */
			uint64_t cap = s->n ? s->n * 2 : 1024;
			uint64_t *o = realloc(s->order, cap * sizeof(*o));
			if (!o) {
				free(seen);
				free(s->order);
				free(s);
				pcb_atrace_free(&t);
				snprintf(why, whylen, "out of memory for the replay working set");
				return -PCB_EXIT_OSERR;
			}
			s->order = o;
		}
		s->order[s->n++] = pg;
	}
	free(seen);
	pcb_atrace_free(&t);
	s->cand = calloc(PCB_REPLAY_MAX_BATCH, sizeof(*s->cand));
	if (!s->cand) {
		free(s->order);
		free(s);
		snprintf(why, whylen, "out of memory");
		return -PCB_EXIT_OSERR;
	}
	p->priv = s;
	return 0;
}

static void replay_fini(struct pcb_policy *p)
{
	struct replay_state *s = p->priv;
	if (s) {
		free(s->order);
		free(s->cand);
	}
	free(s);
	p->priv = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool claimable(const struct pcb_pagestate *ps, uint64_t pg)
{
	return !pcb_bit_test(ps->present, pg) && !pcb_bit_test(ps->demanded, pg) && !pcb_bit_test(ps->claimed, pg);
}

static unsigned replay_next_batch(struct pcb_policy *p, struct pcb_batch *b)
{
	struct replay_state *s = p->priv;
	unsigned added = 0;
	/* the working set, in first-touch order; a page the guest already
	 * faulted in (or a duplicate) is skipped, and each index is visited once
	 * over the whole run, so the cost per call is bounded by the batch plus
	 * the pages skipped since the last call */
	if (s->sort) {
		/* the next batch of the working set, sorted by address so that its
		 * neighbours travel and install as runs (as few candidates as always
		 * fit, even if none merge) */
		unsigned room = b->max_pages - b->npages, rr = b->max_ranges - b->nr;
		if (room > rr)
			room = rr;
		if (room > PCB_REPLAY_MAX_BATCH)
			room = PCB_REPLAY_MAX_BATCH;
		unsigned nc = 0;
		while (s->next < s->n && nc < room) {
			uint64_t pg = s->order[s->next++];
			if (claimable(p->ps, pg))
				s->cand[nc++] = pg;
		}
		qsort(s->cand, nc, sizeof(*s->cand), cmp_u64);
		for (unsigned i = 0; i < nc; i++) {
			int r = pcb_batch_add(p->ps, b, s->cand[i]);
			added += r > 0;   /* never -1: room was bounded above; 0: raced with a fault */
		}
	} else {
		while (s->next < s->n) {
			int r = pcb_batch_add(p->ps, b, s->order[s->next]);
			if (r < 0)
				return added;
			added += (unsigned)r;
			s->next++;
		}
	}
	if (s->next < s->n)
		return added;
	if (!s->rest_address)
		return added;
	return added + pcb_policy_fill_sequential(p, b, &s->cursor);
}

/* REAP reads the whole working-set file in one go: batches as large as the
 * protocol carries (PCB_MAX_BATCH_PAGES pages, PCB_MAX_RANGES runs). */
static unsigned replay_batch_pages(const struct pcb_policy *p)
{
	(void)p;
	return PCB_MAX_BATCH_PAGES;
}

const struct pcb_policy_ops pcb_policy_replay = {
	.abi = PCB_POLICY_ABI,
	.name = "replay",
	.help = "REAP-style working-set replay: pull the pages of a --record trace in first-touch order, then the rest",
	.background = true,
	.knobs = replay_knobs,
	.init = replay_init,
	.fini = replay_fini,
	.next_batch = replay_next_batch,
	.end = PCB_POLICY_DEST,
	.batch_pages = replay_batch_pages,
};
