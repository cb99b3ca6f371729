/* sim/: the simulator's event model on tiny hand-made traces, and every
 * registered policy through it. */
#include "tests/lib/testlib.h"
#include "sim/sim.h"
#include "common/util.h"
#include "run/metrics.h"
#include "wire/link.h"
#include "pager/probes.h"
#include "wire/proto.h"
#include <stdlib.h>
#include <unistd.h>

static struct pcb_atrace mk(const uint64_t *pages, const uint32_t *vcpus, unsigned n, uint64_t npages)
{
	struct pcb_atrace t = { .npages = npages, .count = n, .nvcpus = 1 };
	t.rec = calloc(n, sizeof(*t.rec));
	assert_non_null(t.rec);
	for (unsigned i = 0; i < n; i++) {
		t.rec[i] = (struct pcb_atrace_rec){ .t_ns = i, .page = pages[i], .vcpu = vcpus ? vcpus[i] : 0 };
		if (t.rec[i].vcpu + 1 > t.nvcpus)
			t.nvcpus = t.rec[i].vcpu + 1;
	}
	return t;
}

/* An ideal host, a 100 Mbit/s link with 1 ms RTT, no think time, no zero pages. */
static struct pcb_sim_params ideal(void)
{
	struct pcb_sim_params sp;
	pcb_sim_defaults(&sp);
	sp.bps = 100000000;
	sp.rtt_ns = 1000000;
	sp.run_pages = 16;
	sp.zero_pages = 0;
	sp.think_ns = 0;
	sp.jitter_ns = 0;
	sp.fault_ns = 0;
	sp.demand_copy_ns = 10000;
	sp.demand_zero_ns = 5000;
	return sp;
}

static uint64_t ser(uint64_t bytes, uint64_t bps)
{
	return (bytes * 8 * PCB_NSEC_PER_SEC + bps - 1) / bps;
}

static int run(const struct pcb_sim_params *sp, const struct pcb_atrace *t, const char *policy, const char *opt,
	       struct pcb_sim_result *r)
{
	char why[256] = "";
	struct pcb_policy o;
	memset(&o, 0, sizeof(o));
	const struct pcb_policy_ops *ops = pcb_policy_find(policy);
	assert_non_null(ops);
	assert_int_equal(pcb_policy_parse_opts(&o, ops, opt ? opt : "", why, sizeof(why)), 0);
	int rc = pcb_sim_run(sp, t, ops, &o, r, why, sizeof(why));
	if (rc)
		print_message("pcb_sim_run: %s\n", why);
	return rc;
}

/* One vCPU, 3 pages, demand: 3 faults, each stalls RTT + (4096 + 24) / BW + install. */
static void test_demand_three_pages(void **state)
{
	(void)state;
	uint64_t pages[] = { 0, 1, 2 };
	struct pcb_atrace t = mk(pages, NULL, 3, 3);
	struct pcb_sim_params sp = ideal();
	struct pcb_sim_result r;
	assert_int_equal(run(&sp, &t, "demand", NULL, &r), 0);
	uint64_t one = sp.rtt_ns + ser(PCB_PAGE_SIZE + PCB_HDR_SIZE, sp.bps) + sp.demand_copy_ns;
	tl_assert_u64_eq(r.faults, 3);
	tl_assert_u64_eq(r.demand_requests, 3);
	tl_assert_u64_eq(r.pages_demand, 3);
	tl_assert_u64_eq(r.vcpu[0].blocktime_ns, 3 * one);
	tl_assert_u64_eq(r.fault_lat.min, one);
	tl_assert_u64_eq(r.fault_lat.max, one);
	tl_assert_u64_eq(r.t_complete_ns, 3 * one);
	tl_assert_u64_eq(r.t_guest_done_ns, 3 * one);
	tl_assert_u64_eq(r.demand_rtt.min, sp.rtt_ns + ser(PCB_PAGE_SIZE + PCB_HDR_SIZE, sp.bps));
	for (unsigned pg = 0; pg < 3; pg++) {
		assert_int_equal(pcb_kind_at(r.inst_kind, pg), PCB_INST_DEMAND);
		assert_true(r.first_touch[pg] & PCB_TOUCH_FAULTED);
	}
	pcb_sim_result_free(&r);

	/* zero pages: a 24-byte reply and the ZEROPAGE cost */
	sp.zero_pages = 1;
	assert_int_equal(run(&sp, &t, "demand", NULL, &r), 0);
	tl_assert_u64_eq(r.zero_demand, 3);
	tl_assert_u64_eq(r.vcpu[0].blocktime_ns, 3 * (sp.rtt_ns + ser(PCB_HDR_SIZE, sp.bps) + sp.demand_zero_ns));
	pcb_sim_result_free(&r);
	pcb_atrace_free(&t);
}

/* Think time and repeated pages: only first touches fault; the rest of the
 * region is drained after the guest stops. */
static void test_think_and_drain(void **state)
{
	(void)state;
	uint64_t pages[] = { 5, 5, 7, 5, 7 };
	struct pcb_atrace t = mk(pages, NULL, 5, 64);
	struct pcb_sim_params sp = ideal();
	sp.think_ns = 1000;
	struct pcb_sim_result r;
	assert_int_equal(run(&sp, &t, "demand", NULL, &r), 0);
	uint64_t one = sp.rtt_ns + ser(PCB_PAGE_SIZE + PCB_HDR_SIZE, sp.bps) + sp.demand_copy_ns;
	tl_assert_u64_eq(r.faults, 2);
	tl_assert_u64_eq(r.accesses, 5);
	tl_assert_u64_eq(r.t_guest_done_ns, 5 * sp.think_ns + 2 * one);
	tl_assert_u64_eq(r.pages_drain, 62);
	assert_true(r.t_complete_ns > r.t_guest_done_ns);
	/* every page installed exactly once */
	tl_assert_u64_eq(r.pages_demand + r.pages_background + r.pages_drain + r.zero_demand + r.zero_background + r.zero_drain, 64);
	pcb_sim_result_free(&r);

	/* recorded gaps: the text form numbers records 0, 1, 2, ... ns */
	sp.think_ns = PCB_SIM_THINK_RECORDED;
	t.rec[4].t_ns = 1000000;
	assert_int_equal(run(&sp, &t, "demand", NULL, &r), 0);
	tl_assert_u64_eq(r.t_guest_done_ns, 1000000 + 2 * one);
	pcb_sim_result_free(&r);
	pcb_atrace_free(&t);
}

/* Two vCPUs fault on the same page: one demand request, both wait for it. */
static void test_shared_fault(void **state)
{
	(void)state;
	uint64_t pages[] = { 9, 9 };
	uint32_t vcpus[] = { 0, 1 };
	struct pcb_atrace t = mk(pages, vcpus, 2, 16);
	struct pcb_sim_params sp = ideal();
	sp.think_ns = 100;
	struct pcb_sim_result r;
	assert_int_equal(run(&sp, &t, "demand", NULL, &r), 0);
	tl_assert_u64_eq(r.nvcpus, 2);
	tl_assert_u64_eq(r.faults, 2);
	tl_assert_u64_eq(r.faults_inflight, 1);
	tl_assert_u64_eq(r.demand_requests, 1);
	tl_assert_u64_eq(r.vcpu[0].t_end_ns, r.vcpu[1].t_end_ns);
	pcb_sim_result_free(&r);
	pcb_atrace_free(&t);
}

/* A guest that waits long enough finds everything pulled in the background. */
static void test_background_hits(void **state)
{
	(void)state;
	uint64_t pages[] = { 3, 100, 127 };
	struct pcb_atrace t = mk(pages, NULL, 3, 128);
	struct pcb_sim_params sp = ideal();
	sp.think_ns = 200 * PCB_NSEC_PER_MSEC;   /* 128 pages at 100 Mbit/s take ~43 ms */
	struct pcb_sim_result r;
	assert_int_equal(run(&sp, &t, "sequential", NULL, &r), 0);
	tl_assert_u64_eq(r.faults, 0);
	tl_assert_u64_eq(r.pages_background, 128);
	tl_assert_u64_eq(r.bg_batches, 2);
	assert_true(r.t_complete_ns < sp.think_ns);
	struct pcb_prefetch *pf = malloc(sizeof(*pf));
	assert_non_null(pf);
	pcb_prefetch_compute(pf, r.npages, r.first_touch, r.inst_us, r.inst_kind);
	tl_assert_u64_eq(pf->touched, 3);
	tl_assert_u64_eq(pf->hits, 3);
	tl_assert_u64_eq(pf->bg_installed, 128);
	tl_assert_u64_eq(pf->lead.count, 3);
	free(pf);
	pcb_sim_result_free(&r);
	pcb_atrace_free(&t);
}

/* One channel: a demand reply queues behind the background batches already
 * queued at the source; two channels share only the link. */
static void test_channels(void **state)
{
	(void)state;
	uint64_t pages[] = { 4000 };
	struct pcb_atrace t = mk(pages, NULL, 1, 4096);
	struct pcb_sim_params sp = ideal();
	sp.think_ns = 2 * PCB_NSEC_PER_MSEC;   /* the window of background batches is queued by then */
	struct pcb_sim_result r2, r1;
	assert_int_equal(run(&sp, &t, "sequential", NULL, &r2), 0);
	sp.channels = 1;
	assert_int_equal(run(&sp, &t, "sequential", NULL, &r1), 0);
	tl_assert_u64_eq(r2.faults, 1);
	tl_assert_u64_eq(r1.faults, 1);
	/* two channels: the reply overtakes the background frames, waiting at most for the
	 * packet on the wire (wire/link.c pcb_link_reserve_urgent) */
	uint64_t one = sp.rtt_ns + ser(PCB_PAGE_SIZE + PCB_HDR_SIZE, sp.bps) + sp.demand_copy_ns;
	assert_true(r2.fault_lat.max >= one);
	assert_true(r2.fault_lat.max <= one + ser(PCB_LINK_MTU, sp.bps));
	/* one channel: behind the background bytes queued at the source (source/source.c
	 * shared_sockq_ns: most of 4 batches of 64 pages, up to 84 ms at 100 Mbit/s) */
	assert_true(r1.fault_lat.max > one + 50 * PCB_NSEC_PER_MSEC);
	assert_true(r1.fault_lat.max < one + 90 * PCB_NSEC_PER_MSEC);
	pcb_sim_result_free(&r1);
	pcb_sim_result_free(&r2);
	pcb_atrace_free(&t);
}

/* Every registered policy (but local) runs to completion on a random
 * two-vCPU trace: every page installed exactly once, every first touch
 * either a fault or a hit, and the run is reproducible. */
static void test_all_policies(void **state)
{
	(void)state;
	enum { N = 20000, NP = 2048 };
	uint64_t *pages = malloc(N * sizeof(*pages));
	uint32_t *vcpus = malloc(N * sizeof(*vcpus));
	assert_non_null(pages);
	assert_non_null(vcpus);
	struct pcb_rng rng;
	pcb_rng_seed(&rng, 7, 1);
	for (unsigned i = 0; i < N; i++) {
		pages[i] = i % 3 ? pcb_rng_below(&rng, NP) : (i / 3) % NP;
		vcpus[i] = i & 1;
	}
	struct pcb_atrace t = mk(pages, vcpus, N, NP);
	struct pcb_sim_params sp = ideal();
	sp.zero_pages = 0.25;
	sp.think_ns = 2000;
	sp.jitter_ns = 50000;
	unsigned tested = 0;
	for (unsigned i = 0; pcb_policies[i]; i++) {
		const char *name = pcb_policies[i]->name;
		if (!strcmp(name, "local"))
			continue;
		if (pcb_policies[i]->knobs) {
			/* a policy that needs an input file (replay) is exercised by its own tests */
			bool required = false;
			for (const struct pcb_knob *k = pcb_policies[i]->knobs; k->key; k++)
				required |= !k->def[0] && !strcmp(k->key, "file");
			if (required)
				continue;
		}
		struct pcb_sim_result r, r2;
		assert_int_equal(run(&sp, &t, name, NULL, &r), 0);
		tl_assert_u64_eq(r.accesses, N);
		tl_assert_u64_eq(r.pages_demand + r.pages_background + r.pages_drain + r.zero_demand + r.zero_background +
					 r.zero_drain, NP);
		struct pcb_prefetch *pf = malloc(sizeof(*pf));
		assert_non_null(pf);
		pcb_prefetch_compute(pf, r.npages, r.first_touch, r.inst_us, r.inst_kind);
		tl_assert_u64_eq(pf->touched, NP);   /* the sequential third of the trace touches every page */
		tl_assert_u64_eq(pf->touched, pf->touched_faulted + pf->hits);
		assert_true(r.faults >= pf->touched_faulted);
		assert_true(r.demand_requests <= r.faults);
		if (!strcmp(name, "demand")) {
			tl_assert_u64_eq(pf->touched_faulted, NP);
			tl_assert_u64_eq(r.demand_requests, NP);
		}
		free(pf);
		assert_int_equal(run(&sp, &t, name, NULL, &r2), 0);
		tl_assert_u64_eq(r2.faults, r.faults);
		tl_assert_u64_eq(r2.t_complete_ns, r.t_complete_ns);
		tl_assert_u64_eq(r2.fault_lat.sum, r.fault_lat.sum);
		pcb_sim_result_free(&r);
		pcb_sim_result_free(&r2);
		tested++;
	}
	assert_true(tested >= 4);
	pcb_atrace_free(&t);
	free(pages);
	free(vcpus);
}

/* workload trace, pace=1: the vCPU thinks for the recorded gaps (what
 * simulate --think=recorded assumes); pace=0: no think time. */
static void test_trace_pace(void **state)
{
	(void)state;
	uint64_t pages[] = { 1, 2, 3 };
	struct pcb_atrace t = mk(pages, NULL, 3, 8);
	t.rec[0].t_ns = 500;
	t.rec[1].t_ns = 2500;
	t.rec[2].t_ns = 9000;
	char path[] = "/tmp/pcb-test-sim-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pcb_atrace_save(path, &t), 0);
	const struct pcb_workload_ops *ops = pcb_workload_find("trace");
	assert_non_null(ops);
	for (int pace = 0; pace <= 1; pace++) {
		struct pcb_wl_params prm = { .npages = 8, .seed = 1, .nvcpus = 1 };
		char opt[128], why[256] = "";
		snprintf(opt, sizeof(opt), "file=%s,loop=0,pace=%d", path, pace);
		assert_int_equal(pcb_wl_parse_opts(ops, opt, &prm, why, sizeof(why)), 0);
		void *sh = NULL, *ts = NULL;
		assert_int_equal(ops->init(&sh, &prm, why, sizeof(why)), 0);
		assert_int_equal(ops->thread_init(&ts, sh, &prm, 0), 0);
		uint32_t want[] = { 500, 2000, 6500 };
		for (unsigned i = 0; i < 3; i++) {
			struct pcb_access a = { 0 };
			ops->next(ts, &a);
			tl_assert_u64_eq(a.page, pages[i]);
			tl_assert_u64_eq(a.think_ns, pace ? want[i] : 0);
		}
		struct pcb_access a = { 0 };
		ops->next(ts, &a);
		assert_int_equal(a.kind, PCB_ACC_STOP);
		ops->thread_fini(ts);
		ops->fini(sh);
	}
	unlink(path);
	pcb_atrace_free(&t);
}

static void test_bad_input(void **state)
{
	(void)state;
	uint64_t pages[] = { 0, 70 };
	struct pcb_atrace t = mk(pages, NULL, 2, 71);
	struct pcb_sim_params sp = ideal();
	struct pcb_sim_result r;
	char why[256];
	sp.npages = 64;   /* page 70 is outside */
	assert_int_equal(pcb_sim_run(&sp, &t, pcb_policy_find("demand"), NULL, &r, why, sizeof(why)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why, "page 70"));
	sp.npages = 0;
	assert_int_equal(pcb_sim_run(&sp, &t, pcb_policy_find("local"), NULL, &r, why, sizeof(why)), PCB_EXIT_USAGE);
	assert_non_null(strstr(why, "local"));
	sp.window = 0;
	assert_int_equal(pcb_sim_run(&sp, &t, pcb_policy_find("demand"), NULL, &r, why, sizeof(why)), PCB_EXIT_USAGE);
	assert_non_null(strstr(why, "--window"));
	pcb_atrace_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demand_three_pages),
		cmocka_unit_test(test_think_and_drain),
		cmocka_unit_test(test_shared_fault),
		cmocka_unit_test(test_background_hits),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_all_policies),
		cmocka_unit_test(test_trace_pace),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
