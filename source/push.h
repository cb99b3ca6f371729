/* A policy running at the source (--policy-end=source): the source page
 * server decides the stream and pushes it, paced by the connection.  The
 * engine keeps the source's view of the migration in a page state of its
 * own: a page is `present` once the source has sent it (in the stream or as
 * a demand reply) and `claimed` while it sits in a pushed batch not yet
 * written.  The policy's on_fault is called when a demand request arrives
 * (before its reply is sent), next_batch when the stream needs more. */
#ifndef PCB_SOURCE_PUSH_H
#define PCB_SOURCE_PUSH_H
#include "policies/policy.h"
#include "wire/proto.h"
#include <stdatomic.h>

struct pcb_push {
	struct pcb_pagestate ps;
	struct pcb_policy pol;
	unsigned batch_pages;
	uint64_t cursor;             /* address-order fill once the policy offers nothing */
	uint64_t next_id;            /* next batch number */
	uint64_t pages, batches;     /* pushed in the stream */
	uint64_t sendq_max;          /* SIOCOUTQ high-water mark */
	int sndbuf;
	bool ended;                  /* PUSH_END queued */
	struct pcb_push *older;      /* engines of earlier sessions, freed with the source state */
};

/* Open the engine for a PUSH frame.  0, or -1 with a one-line reason. */
int pcb_push_open(struct pcb_push **out, const struct pcb_push_wire *w, uint64_t npages, char *why, size_t whylen);
void pcb_push_free(struct pcb_push *e);
/* A demand request for page arrived (any connection). */
void pcb_push_request(struct pcb_push *e, uint64_t page);
/* The stream has sent page, or holds it in a batch queued for sending. */
bool pcb_push_in_stream(struct pcb_push *e, uint64_t page);
/* pages first..first+n-1 were written to a socket (stream or demand reply). */
void pcb_push_sent(struct pcb_push *e, uint64_t first, uint64_t n);
/* The next batch into r (up to PCB_MAX_RANGES ranges): its page count, 0 when
 * every page has been claimed or sent. */
unsigned pcb_push_next(struct pcb_push *e, struct pcb_range *r, unsigned *nr);
#endif
