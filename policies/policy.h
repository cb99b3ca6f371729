/* Pre-paging policies: one file per policy under policies/, each
 * exporting a const struct pcb_policy_ops, listed once in
 * policies/registry.c.  pcb_policy_check() refuses an ops table with a
 * wrong ABI or a missing hook at start-up. */
#ifndef PCB_POLICY_H
#define PCB_POLICY_H
#include "common/knobs.h"
#include "pager/pagestate.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 3: where the policy runs (end), max_inflight, fault_waits_queued,
 * channels(); policies loaded from a shared object (--policy=./x.so). */
#define PCB_POLICY_ABI 3

/* Where a policy runs.  At the destination (pull) the pager's background
 * thread calls next_batch and asks the source for the batch.  At the source
 * (push) the source page server calls next_batch and streams the pages as
 * fast as the connection takes them (paced by the socket or the emulated
 * link, not by a window of requests); on_fault is then called when the
 * source receives a demand request, and the page state is the source's view:
 * a page is `present` once the source has sent it. */
enum pcb_policy_end { PCB_POLICY_DEST = 0, PCB_POLICY_SOURCE = 1 };

struct pcb_range {
	uint64_t first;
	uint64_t count;
};

/* A batch being built: pcb_batch_add() claims a page and appends it,
 * merging with the previous range when contiguous. */
struct pcb_batch {
	struct pcb_range *r;
	unsigned nr, max_ranges;
	unsigned npages, max_pages;
};
/* Claim page for this batch.  Returns 1 if added, 0 if the page is not
 * claimable (present, demanded or claimed), -1 if the batch is full. */
int pcb_batch_add(struct pcb_pagestate *ps, struct pcb_batch *b, uint64_t page);

struct pcb_policy {
	const struct pcb_policy_ops *ops;
	struct pcb_pagestate *ps;
	uint64_t npages;             /* 4 KiB pages: policies always work in 4 KiB units */
	unsigned unit_pages;         /* pages the guest faults in at once: 1, or 512 with --page-size=2M
				      * (a huge page is installed when all its 512 pages have arrived) */
	/* --policy-opt key=value,... (validated against ops->knobs; read them with pcb_policy_opt_*) */
	unsigned nopts;
	struct pcb_kv opts[PCB_KNOBS_MAX];
	/* The guest's first-touch record, one word per page: 0 = not touched yet,
	 * else µs since switch-over + 1, with PCB_TOUCH_FAULTED (workloads/workload.h)
	 * set when that touch faulted.  Written by the guest while the policy runs
	 * (read it with relaxed atomic loads); NULL where no record is kept (a guest
	 * that is not ours).  A real destination has no such record: the pager and
	 * the simulator set it only for a policy whose `oracle` knob is
	 * `first-touch` (pcb_policy_oracle_first_touch; the JSON says so), else NULL. */
	const _Atomic uint32_t *first_touch;
	void *priv;
};

struct pcb_policy_ops {
	unsigned abi;                /* PCB_POLICY_ABI */
	const char *name;
	const char *help;            /* one line for `pcbench list` */
	bool background;             /* pulls pages in the background while the guest runs */
	const struct pcb_knob *knobs;   /* --policy-opt keys (NULL-key terminated); NULL = none */
	/* Optional.  Bad knob values or an unreadable input: -1 with a one-line
	 * reason naming the value (the run exits 64); an input file that is
	 * readable but bad: -PCB_EXIT_DATAERR (65); other failures -PCB_EXIT_* . */
	int (*init)(struct pcb_policy *p, char *why, size_t whylen);
	void (*fini)(struct pcb_policy *p);          /* optional */
	/* A guest fault on page (demand thread; keep it cheap and thread-safe). Optional. */
	void (*on_fault)(struct pcb_policy *p, uint64_t page, uint64_t now_ns);
	/* Fill b with the next pages to pull (background thread).  Return the
	 * number of pages added; 0 when nothing is worth pulling now.  Required
	 * when background is true. */
	unsigned (*next_batch)(struct pcb_policy *p, struct pcb_batch *b);
	enum pcb_policy_end end;     /* where it runs unless --policy-end says otherwise */
	unsigned max_inflight;       /* pull: background batches in flight at most (0 = --window) */
	bool fault_waits_queued;     /* pull: a fault on a page of a batch in flight waits for that
				      * batch (no demand request; CRIU's is_page_queued); with
				      * max_inflight = 1 no batch starts while a demand request is
				      * outstanding either (CRIU: one request outstanding) */
	/* Optional, after init: pages per background batch the policy wants (0 = --batch). */
	unsigned (*batch_pages)(const struct pcb_policy *p);
	/* Optional: the connections the policy's system uses with these knobs
	 * (1 or 2; 0 = either).  A run without --channels uses it; a conflicting
	 * --channels is refused. */
	unsigned (*channels)(const struct pcb_policy *p);
};

/* A policy in a shared object exports these two symbols (examples/). */
#define PCB_POLICY_SO_ABI "pcb_policy_abi"     /* const unsigned = PCB_POLICY_ABI */
#define PCB_POLICY_SO_OPS "pcb_policy_ops"     /* const struct pcb_policy_ops */

extern const struct pcb_policy_ops *const pcb_policies[];
const struct pcb_policy_ops *pcb_policy_find(const char *name);
/* A registered name, or a path to a shared object (contains '/'): dlopen'd
 * and checked (ABI symbol, then pcb_policy_check).  NULL with a one-line
 * reason naming the value. */
const struct pcb_policy_ops *pcb_policy_resolve(const char *name, char *why, size_t whylen);
/* --policy-end: "" (the policy's own), "source" or "destination".  -1 with a reason. */
int pcb_policy_end_parse(const struct pcb_policy_ops *ops, const char *s, enum pcb_policy_end *out, char *why,
			 size_t whylen);
const char *pcb_policy_end_name(enum pcb_policy_end e);
/* Where the policy runs and over how many connections, as its system does
 * unless given: end_opt = --policy-end ("auto", "source", "destination");
 * *channels = --channels (0 = the policy's, else 2) in, resolved out.  opts
 * holds the parsed knobs.  0, or -1 with a one-line reason (exit 64). */
int pcb_policy_transport(const struct pcb_policy_ops *ops, const struct pcb_policy *opts, const char *end_opt,
			 enum pcb_policy_end *end, unsigned *channels, char *why, size_t whylen);
/* 0 if ops is usable, else -1 with the reason. */
int pcb_policy_check(const struct pcb_policy_ops *ops, char *why, size_t whylen);

/* Parse --policy-opt for ops into p->opts (keys checked against ops->knobs).  0 or -1 with a reason. */
int pcb_policy_parse_opts(struct pcb_policy *p, const struct pcb_policy_ops *ops, const char *s, char *why, size_t whylen);
/* Set up p (ops, page state, size, unit, already-parsed opts kept) and run
 * ops->init.  The one way the pager, the simulator and the tests start a
 * policy.  0, or < 0 with the reason: -1 (bad option: exit 64) or what init
 * returned (-PCB_EXIT_DATAERR: bad input file, exit 65). */
int pcb_policy_open(struct pcb_policy *p, const struct pcb_policy_ops *ops, struct pcb_pagestate *ps,
		    uint64_t npages, unsigned unit_pages, char *why, size_t whylen);
void pcb_policy_close(struct pcb_policy *p);
/* --replay FILE: the replay policy's `file` knob (after pcb_policy_parse_opts).
 * -1 with a reason if ops is not replay or file= was given as well. */
int pcb_policy_replay_file(struct pcb_policy *p, const struct pcb_policy_ops *ops, const char *file, char *why,
			   size_t whylen);
/* The policy's `oracle` knob asks for the guest's first-touch record (ops: its table; opts as parsed). */
bool pcb_policy_oracle_first_touch(const struct pcb_policy_ops *ops, const struct pcb_policy *p);
/* A knob's value as typed, else its default. */
const char *pcb_policy_opt(const struct pcb_policy *p, const char *key);
int pcb_policy_opt_u64(const struct pcb_policy *p, const char *key, uint64_t min, uint64_t max, uint64_t *out,
		       char *why, size_t whylen);
int pcb_policy_opt_dbl(const struct pcb_policy *p, const char *key, double min, double max, double *out,
		       char *why, size_t whylen);

/* Sort a batch's ranges by address and merge neighbours: a policy that
 * picks pages out of order (pivot's bubbles, a backward trend) sends them
 * as runs.  The batch travels and is installed as one unit, so only the
 * order inside it changes. */
void pcb_batch_sort(struct pcb_batch *b);
/* Shared helper: add free pages in address order from *cursor (wrapping once). */
unsigned pcb_policy_fill_sequential(struct pcb_policy *p, struct pcb_batch *b, uint64_t *cursor);
#endif
