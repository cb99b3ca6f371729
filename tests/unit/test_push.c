/* source/push.c: a policy running at the source.  The engine's view is the
 * source's: a page is present once sent.  qemu one channel: after a request
 * for page p the next pushed batch starts right after p; preempt: requests
 * do not move the stream; a request for a page already sent moves nothing;
 * every page is pushed once; a malformed or unknown PUSH is refused. */
#include "tests/lib/testlib.h"
#include "source/push.h"
#include <stdlib.h>

#define NP 4096

static struct pcb_push *open_push(const char *policy, const char *opts, unsigned batch)
{
	struct pcb_push_wire w = { .batch_pages = batch };
	snprintf(w.policy, sizeof(w.policy), "%s", policy);
	snprintf(w.opts, sizeof(w.opts), "%s", opts);
	struct pcb_push *e = NULL;
	char why[256] = "";
	if (pcb_push_open(&e, &w, NP, why, sizeof(why)) < 0)
		fail_msg("PUSH %s (%s): %s", policy, opts, why);
	return e;
}

/* The next pushed batch, marked sent as the source's connection does; its first page. */
static uint64_t next_first(struct pcb_push *e, unsigned *n)
{
	struct pcb_range r[PCB_MAX_RANGES];
	unsigned nr = 0;
	*n = pcb_push_next(e, r, &nr);
	for (unsigned i = 0; i < nr; i++)
		pcb_push_sent(e, r[i].first, r[i].count);
	return *n ? r[0].first : UINT64_MAX;
}

static void test_qemu_one_channel(void **st)
{
	(void)st;
	struct pcb_push *e = open_push("qemu", "", 16);
	unsigned n;
	tl_assert_u64_eq(next_first(e, &n), 0);
	tl_assert_u64_eq(n, 16);
	/* a request for page 700 (answered by the demand path, which marks it sent) */
	pcb_push_request(e, 700);
	pcb_push_sent(e, 700, 1);
	tl_assert_u64_eq(next_first(e, &n), 701);      /* the stream continues right after it */
	tl_assert_u64_eq(next_first(e, &n), 717);
	/* a request for a page already sent does not move the stream */
	pcb_push_request(e, 5);
	pcb_push_sent(e, 5, 1);
	tl_assert_u64_eq(next_first(e, &n), 733);
	/* every page is pushed once: the rest, then nothing */
	uint64_t total = 16 + 16 + 16 + 16 + 1;
	while (next_first(e, &n) != UINT64_MAX)
		total += n;
	tl_assert_u64_eq(total, NP);
	tl_assert_u64_eq(e->ps.npresent, NP);
	pcb_push_free(e);
}

static void test_qemu_preempt(void **st)
{
	(void)st;
	struct pcb_push *e = open_push("qemu", "preempt=on", 16);
	unsigned n;
	tl_assert_u64_eq(next_first(e, &n), 0);
	for (uint64_t p = 900; p < 4000; p += 311) {
		pcb_push_request(e, p);
		pcb_push_sent(e, p, 1);
	}
	tl_assert_u64_eq(next_first(e, &n), 16);       /* the stream kept its place */
	tl_assert_u64_eq(next_first(e, &n), 32);
	pcb_push_free(e);
}

/* a policy that offers nothing (demand-like knobs) is completed in address order */
static void test_fill_and_refusals(void **st)
{
	(void)st;
	struct pcb_push *e = open_push("trend", "fill=none", 64);
	unsigned n;
	tl_assert_u64_eq(next_first(e, &n), 0);
	tl_assert_u64_eq(n, 64);
	pcb_push_free(e);

	struct pcb_push_wire w = { .batch_pages = 16 };
	char why[256];
	snprintf(w.policy, sizeof(w.policy), "nosuch");
	assert_int_equal(pcb_push_open(&e, &w, NP, why, sizeof(why)), -1);
	tl_assert_contains(why, "nosuch");
	snprintf(w.policy, sizeof(w.policy), "demand");
	assert_int_equal(pcb_push_open(&e, &w, NP, why, sizeof(why)), -1);
	tl_assert_contains(why, "nothing to push");
	snprintf(w.policy, sizeof(w.policy), "qemu");
	w.batch_pages = 0;
	assert_int_equal(pcb_push_open(&e, &w, NP, why, sizeof(why)), -1);
	tl_assert_contains(why, "malformed");
	w.batch_pages = 16;
	memset(w.opts, 'x', sizeof(w.opts));           /* unterminated */
	assert_int_equal(pcb_push_open(&e, &w, NP, why, sizeof(why)), -1);
	tl_assert_contains(why, "malformed");
	snprintf(w.opts, sizeof(w.opts), "preempt=maybe");
	assert_int_equal(pcb_push_open(&e, &w, NP, why, sizeof(why)), -1);
	tl_assert_contains(why, "'maybe'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_one_channel),
		cmocka_unit_test(test_qemu_preempt),
		cmocka_unit_test(test_fill_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
