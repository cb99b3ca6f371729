/* Access generators of the workload suite: determinism, distributions,
 * op structure, knobs, access traces; and the progress metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "common/image.h"
#include "common/util.h"
#include "run/progress.h"
#include "workloads/workload.h"

static char trace_path[64];

struct gen {
	const struct pcb_workload_ops *ops;
	struct pcb_wl_params prm;
	void *shared, *ts;
	uint64_t now, prev;
	struct pcb_image im;
};

static int gen_try(struct gen *g, const char *name, uint64_t npages, uint64_t seed, unsigned vcpu, unsigned nvcpus,
		   const char *opts, char *why, size_t whylen)
{
	memset(g, 0, sizeof(*g));
	pcb_image_init(&g->im, seed, npages, 0.25);
	g->prm = (struct pcb_wl_params){ .npages = npages, .seed = seed, .nvcpus = nvcpus, .zipf_theta = 0.99, .im = &g->im };
	g->ops = pcb_workload_find(name);
	assert_non_null(g->ops);
	if (pcb_wl_parse_opts(g->ops, opts, &g->prm, why, whylen) < 0)
		return -1;
	if (g->ops->init && g->ops->init(&g->shared, &g->prm, why, whylen) != 0)
		return -1;
	assert_int_equal(g->ops->thread_init(&g->ts, g->shared, &g->prm, vcpu), 0);
	return 0;
}

static void gen_open(struct gen *g, const char *name, uint64_t npages, uint64_t seed, unsigned vcpu, unsigned nvcpus,
		     const char *opts)
{
	char why[256] = "";
	if (gen_try(g, name, npages, seed, vcpu, nvcpus, opts, why, sizeof(why)) < 0)
		fail_msg("workload %s (%s) init failed: %s", name, opts ? opts : "", why);
}

/* One access, with the loop's inputs: time advances 1 µs per access and
 * prev is word 0 of the page read (what the vCPU loop passes). */
static struct pcb_access gen_next(struct gen *g)
{
	struct pcb_access a = { .now_ns = g->now, .prev = g->prev };
	g->ops->next(g->ts, &a);
	g->now += 1000;
	g->prev = a.kind == PCB_ACC_WRITE ? 0 : pcb_image_word(&g->im, a.page, 0);
	return a;
}

static void gen_close(struct gen *g)
{
	if (g->ops->thread_fini)
		g->ops->thread_fini(g->ts);
	if (g->ops->fini)
		g->ops->fini(g->shared);
}

static const char *opts_for(const char *name)
{
	static char buf[128];
	if (!strcmp(name, "trace")) {
		snprintf(buf, sizeof(buf), "file=%s", trace_path);
		return buf;
	}
	return "";
}

static void test_registry_and_knobs(void **state)
{
	(void)state;
	char why[256];
	unsigned n = 0;
	for (unsigned i = 0; pcb_workloads[i]; i++, n++) {
		if (pcb_workload_check(pcb_workloads[i], why, sizeof(why)) != 0)
			fail_msg("registered workload %s fails its check: %s", pcb_workloads[i]->name, why);
		assert_ptr_equal(pcb_workload_find(pcb_workloads[i]->name), pcb_workloads[i]);
		for (const struct pcb_knob *k = pcb_workloads[i]->knobs; k && k->key; k++)
			assert_true(k->def && k->help && k->help[0]);
	}
	assert_int_equal(n, 11);
	const char *names[] = { "seq", "random", "zipf", "stride", "chase", "kv", "phase", "scan+hot", "idle", "trace", "sqlite" };
	for (unsigned i = 0; i < 11; i++)
		assert_non_null(pcb_workload_find(names[i]));

	const struct pcb_workload_ops *st = pcb_workload_find("stride");
	struct pcb_wl_params prm = { .npages = 100 };
	assert_int_equal(pcb_wl_parse_opts(st, "stride=3,dir=down", &prm, why, sizeof(why)), 0);
	assert_int_equal(prm.nopts, 2);
	assert_string_equal(pcb_wl_opt(st, &prm, "stride"), "3");
	assert_string_equal(pcb_wl_opt(st, &prm, "dir"), "down");
	assert_int_equal(pcb_wl_parse_opts(st, "", &prm, why, sizeof(why)), 0);
	assert_string_equal(pcb_wl_opt(st, &prm, "stride"), "16");   /* the default */
	assert_int_equal(pcb_wl_parse_opts(st, "strid=3", &prm, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "'strid'"));
	assert_int_equal(pcb_wl_parse_opts(st, "stride", &prm, why, sizeof(why)), -1);
	assert_int_equal(pcb_wl_parse_opts(st, "stride=1,stride=2", &prm, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "twice"));
	assert_int_equal(pcb_wl_parse_opts(pcb_workload_find("seq"), "x=1", &prm, why, sizeof(why)), -1);
	struct gen g;
	assert_int_equal(gen_try(&g, "stride", 100, 1, 0, 1, "stride=0", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "stride"));
	assert_int_equal(gen_try(&g, "stride", 100, 1, 0, 1, "dir=left", why, sizeof(why)), -1);
	assert_int_equal(gen_try(&g, "kv", 100, 1, 0, 1, "get=1.5", why, sizeof(why)), -1);
	assert_int_equal(gen_try(&g, "scan+hot", 100, 1, 0, 1, "", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "--vcpus"));
	assert_int_equal(gen_try(&g, "trace", 100, 1, 0, 1, "", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "file="));
}

/* Every workload: in range, same seed -> same sequence, another seed or vCPU -> another. */
static void test_all_deterministic(void **state)
{
	(void)state;
	const uint64_t N = 5000;
	for (unsigned i = 0; pcb_workloads[i]; i++) {
		const char *name = pcb_workloads[i]->name;
		const char *o = opts_for(name);
		struct gen a, b, c, d;
		if (pcb_wl_is_app(pcb_workloads[i]))
			continue;   /* application code: tests/unit/test_sqlite.c */
		gen_open(&a, name, N, 11, 0, 2, o);
		gen_open(&b, name, N, 11, 0, 2, o);
		gen_open(&c, name, N, 12, 0, 2, o);
		gen_open(&d, name, N, 11, 1, 2, o);
		unsigned same_c = 0, same_d = 0;
		for (int k = 0; k < 20000; k++) {
			struct pcb_access x = gen_next(&a), y = gen_next(&b);
			if (x.page >= N)
				fail_msg("%s returned page %llu of %llu", name, (unsigned long long)x.page, (unsigned long long)N);
			if (x.page != y.page || x.kind != y.kind || x.more != y.more)
				fail_msg("%s: same seed, different sequence at step %d", name, k);
			same_c += x.page == gen_next(&c).page;
			same_d += x.page == gen_next(&d).page;
		}
		/* seq, stride and scan+hot's scanner (vCPU 0) ignore the seed by design; trace replays a file */
		if (strcmp(name, "seq") && strcmp(name, "stride") && strcmp(name, "scan+hot") && strcmp(name, "trace") && same_c > 20000 / 2)
			fail_msg("%s: seeds 11 and 12 give the same sequence (%u/20000 equal)", name, same_c);
		if (strcmp(name, "trace") && same_d > 20000 / 2)
			fail_msg("%s: vCPUs 0 and 1 give the same sequence (%u/20000 equal)", name, same_d);
		gen_close(&a);
		gen_close(&b);
		gen_close(&c);
		gen_close(&d);
	}
}

/* Zipf: the hottest 1% of pages gets the share the Zipf law predicts. */
static void test_zipf_share(void **state)
{
	(void)state;
	const uint64_t N = 10000, S = 400000;
	struct gen g;
	gen_open(&g, "zipf", N, 3, 0, 1, "");
	uint32_t *cnt = calloc(N, sizeof(*cnt));
	for (uint64_t k = 0; k < S; k++)
		cnt[gen_next(&g).page]++;
	/* top 1% of pages by count */
	uint32_t *sorted = malloc(N * sizeof(*sorted));
	memcpy(sorted, cnt, N * sizeof(*sorted));
	for (uint64_t i = 0; i < N / 100; i++)   /* partial selection sort of the top 100 */
		for (uint64_t j = i + 1; j < N; j++)
			if (sorted[j] > sorted[i]) {
				uint32_t t = sorted[i];
				sorted[i] = sorted[j];
				sorted[j] = t;
			}
	double top = 0;
	for (uint64_t i = 0; i < N / 100; i++)
		top += sorted[i];
	double hn = 0, h1 = 0;
	for (uint64_t i = 1; i <= N; i++) {
		hn += pow((double)i, -0.99);
		if (i <= N / 100)
			h1 += pow((double)i, -0.99);
	}
	double want = h1 / hn, got = top / (double)S;
	print_message("zipf top-1%% share %.4f, Zipf law %.4f\n", got, want);
	assert_true(fabs(got - want) < 0.03);
	/* and the hot pages are scattered: the hottest page is not page 0's neighbour set */
	free(sorted);
	free(cnt);
	gen_close(&g);
}

/* chase: one cycle visits every page exactly once; each address depends on the load. */
static void test_chase_cycle(void **state)
{
	(void)state;
	const uint64_t N = 3000;
	struct gen g;
	gen_open(&g, "chase", N, 5, 0, 1, "");
	uint8_t *seen = calloc(N, 1);
	uint64_t first = 0;
	for (uint64_t k = 0; k < N; k++) {
		struct pcb_access a = gen_next(&g);
		assert_int_equal(a.kind, PCB_ACC_READ);
		if (!k)
			first = a.page;
		if (seen[a.page]++)
			fail_msg("chase revisited page %llu after %llu steps", (unsigned long long)a.page, (unsigned long long)k);
	}
	assert_int_equal(gen_next(&g).page, first);   /* the cycle closes */
	free(seen);
	/* a wrong loaded value sends the chase elsewhere */
	struct gen h, i2;
	gen_open(&h, "chase", N, 5, 0, 1, "");
	gen_open(&i2, "chase", N, 5, 0, 1, "");
	gen_next(&h);
	gen_next(&i2);
	i2.prev ^= 0x40;
	assert_int_not_equal(gen_next(&h).page, gen_next(&i2).page);
	gen_close(&g);
	gen_close(&h);
	gen_close(&i2);
}

/* stride: every page once per sweep, whatever the stride; dir=down mirrors. */
static void test_stride(void **state)
{
	(void)state;
	const uint64_t N = 1003;
	struct gen up, dn;
	gen_open(&up, "stride", N, 1, 0, 1, "stride=7");
	gen_open(&dn, "stride", N, 1, 0, 1, "stride=7,dir=down");
	uint8_t *seen = calloc(N, 1);
	uint64_t prev = 0;
	for (uint64_t k = 0; k < N; k++) {
		uint64_t p = gen_next(&up).page, q = gen_next(&dn).page;
		assert_int_equal(q, N - 1 - p);
		if (k && p > prev)
			assert_int_equal(p - prev, 7);
		seen[p]++;
		prev = p;
	}
	for (uint64_t p = 0; p < N; p++)
		assert_int_equal(seen[p], 1);
	free(seen);
	gen_close(&up);
	gen_close(&dn);
}

/* kv: an op = a bucket read in the index, then the record's pages; puts write them. */
static void test_kv_ops(void **state)
{
	(void)state;
	const uint64_t N = 6400;
	struct gen g;
	gen_open(&g, "kv", N, 9, 0, 1, "get=0.8,record-pages=3,index-pages=100");
	unsigned ops = 0, puts = 0;
	for (int k = 0; k < 20000; k++) {
		struct pcb_access a = gen_next(&g);
		assert_int_equal(a.kind, PCB_ACC_READ);
		assert_true(a.page < 100);
		assert_true(a.more);
		struct pcb_access r[3];
		for (int j = 0; j < 3; j++)
			r[j] = gen_next(&g);
		assert_true(r[0].page >= 100 && (r[0].page - 100) % 3 == 0);
		for (int j = 0; j < 3; j++) {
			assert_int_equal(r[j].page, r[0].page + (uint64_t)j);
			assert_int_equal(r[j].kind, r[0].kind);
			assert_int_equal(r[j].more, j < 2);
		}
		puts += r[0].kind == PCB_ACC_WRITE;
		ops++;
	}
	double pf = (double)puts / ops;
	print_message("kv put fraction %.3f (want 0.2)\n", pf);
	assert_true(fabs(pf - 0.2) < 0.02);
	gen_close(&g);
}

/* phase: the hot window moves when the phase changes. */
static void test_phase_moves(void **state)
{
	(void)state;
	const uint64_t N = 100000;
	struct gen g;
	gen_open(&g, "phase", N, 2, 0, 1, "phase-ms=5,hot=0.01,hot-access=1");
	uint64_t lo[2] = { N, N }, hi[2] = { 0, 0 };
	for (int ph = 0; ph < 2; ph++) {
		g.now = (uint64_t)ph * 5000000;
		for (int k = 0; k < 2000; k++) {
			uint64_t p = gen_next(&g).page;
			g.now = (uint64_t)ph * 5000000;   /* stay in this phase */
			lo[ph] = p < lo[ph] ? p : lo[ph];
			hi[ph] = p > hi[ph] ? p : hi[ph];
		}
	}
	/* each phase's pages fit a window of 1000 (unless it wraps at the end) */
	for (int ph = 0; ph < 2; ph++)
		assert_true(hi[ph] - lo[ph] < 1000 || hi[ph] - lo[ph] > N - 1000);
	assert_true(lo[0] != lo[1]);
	gen_close(&g);
}

/* scan+hot: vCPU 0 scans sequentially, vCPU 1 stays in a small hot set. */
static void test_scanhot(void **state)
{
	(void)state;
	const uint64_t N = 10000;
	struct gen s, h;
	gen_open(&s, "scan+hot", N, 4, 0, 2, "hot=0.01");
	gen_open(&h, "scan+hot", N, 4, 1, 2, "hot=0.01");
	uint64_t p0 = gen_next(&s).page;
	for (int k = 1; k < 5000; k++)
		assert_int_equal(gen_next(&s).page, (p0 + (uint64_t)k) % N);
	uint8_t *seen = calloc(N, 1);
	unsigned distinct = 0;
	for (int k = 0; k < 20000; k++) {
		uint64_t p = gen_next(&h).page;
		distinct += !seen[p]++;
	}
	assert_true(distinct <= 100 && distinct > 90);
	free(seen);
	gen_close(&s);
	gen_close(&h);
}

static void test_idle(void **state)
{
	(void)state;
	struct gen g;
	gen_open(&g, "idle", 10000, 4, 0, 1, "pages=8,interval-us=250");
	uint8_t seen[10000] = { 0 };
	unsigned distinct = 0;
	for (int k = 0; k < 1000; k++) {
		struct pcb_access a = gen_next(&g);
		assert_int_equal(a.think_ns, 250000);
		distinct += !seen[a.page]++;
	}
	assert_int_equal(distinct, 8);
	gen_close(&g);
}

/* Traces: binary and text round trips, replay order, vCPU mapping, loop=0 stops. */
static void test_trace_files(void **state)
{
	(void)state;
	char why[256];
	struct pcb_atrace_rec recs[] = {
		{ 10, 5, 0, 0 }, { 20, 7, 1, PCB_ATRACE_WRITE }, { 30, 8, 0, PCB_ATRACE_MORE }, { 40, 9, 0, PCB_ATRACE_WRITE },
	};
	struct pcb_atrace t = { .nvcpus = 2, .npages = 100, .count = 4, .rec = recs }, u;
	char bin[64], txt[64];
	snprintf(bin, sizeof(bin), "/tmp/pcb-ut-%d.bin", getpid());
	snprintf(txt, sizeof(txt), "/tmp/pcb-ut-%d.txt", getpid());
	assert_int_equal(pcb_atrace_save(bin, &t), 0);
	assert_int_equal(pcb_atrace_save(txt, &t), 0);
	for (int f = 0; f < 2; f++) {
		assert_int_equal(pcb_atrace_load(f ? txt : bin, &u, why, sizeof(why)), 0);
		assert_int_equal(u.count, 4);
		assert_int_equal(u.nvcpus, 2);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(u.rec[i].page, recs[i].page);
			assert_int_equal(u.rec[i].vcpu, recs[i].vcpu);
			assert_int_equal(u.rec[i].flags, recs[i].flags);
		}
		pcb_atrace_free(&u);
	}
	/* replay: 2-vCPU run of a 2-vCPU trace, loop=0 */
	struct gen g0, g1;
	char o[128];
	snprintf(o, sizeof(o), "file=%s,loop=0", bin);
	gen_open(&g0, "trace", 100, 1, 0, 2, o);
	gen_open(&g1, "trace", 100, 1, 1, 2, o);
	struct pcb_access a = gen_next(&g0);
	assert_int_equal(a.page, 5);
	assert_false(a.more);
	a = gen_next(&g0);
	assert_int_equal(a.page, 8);
	assert_true(a.more);
	a = gen_next(&g0);
	assert_int_equal(a.page, 9);
	assert_int_equal(a.kind, PCB_ACC_WRITE);
	assert_int_equal(gen_next(&g0).kind, PCB_ACC_STOP);
	a = gen_next(&g1);
	assert_int_equal(a.page, 7);
	assert_int_equal(a.kind, PCB_ACC_WRITE);
	assert_int_equal(gen_next(&g1).kind, PCB_ACC_STOP);
	gen_close(&g0);
	gen_close(&g1);
	/* a page outside --mem is refused */
	struct gen g2;
	snprintf(o, sizeof(o), "file=%s", bin);
	assert_int_equal(gen_try(&g2, "trace", 9, 1, 0, 1, o, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "page 9"));
	/* bad text names the line */
	FILE *f = fopen(txt, "w");
	fprintf(f, "# ok\n1 r\n2 x\n");
	fclose(f);
	assert_int_equal(pcb_atrace_load(txt, &u, why, sizeof(why)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why, ":3:"));
	/* a truncated binary is refused */
	assert_int_equal(truncate(bin, 32 + 24 * 3), 0);
	assert_int_equal(pcb_atrace_load(bin, &u, why, sizeof(why)), PCB_EXIT_DATAERR);
	assert_non_null(strstr(why, "truncated"));
	unlink(bin);
	unlink(txt);
}

/* Progress metrics on synthetic series. */
static void series(struct pcb_progress *p, const uint64_t *v, uint64_t n)
{
	memset(p, 0, sizeof(*p));
	p->bucket_ns = 10 * PCB_NSEC_PER_MSEC;
	p->nvcpus = 1;
	p->nbuckets = p->ncomplete = n;
	p->total = calloc(n, sizeof(uint64_t));
	p->per_vcpu = calloc(1, sizeof(uint64_t *));
	p->per_vcpu[0] = calloc(n, sizeof(uint64_t));
	double s = 0;
	for (uint64_t i = 0; i < n; i++) {
		p->total[i] = p->per_vcpu[0][i] = v[i];
		s += (double)v[i];
	}
	p->mean_per_bucket = s / (double)n;
}

static void test_progress_metrics(void **state)
{
	(void)state;
	uint64_t loc[20], mig[20];
	for (int i = 0; i < 20; i++) {
		loc[i] = 1000;
		mig[i] = i < 6 ? 100 * (uint64_t)i : 1000;   /* 0,100,...,500 then full speed */
	}
	mig[12] = 900;   /* one slow bucket inside a window of 5 averages 980 >= 950: still recovered */
	struct pcb_progress L, M;
	series(&L, loc, 20);
	series(&M, mig, 20);
	assert_int_equal(pcb_progress_compare(&M, &L), 0);
	assert_true(M.recovered);
	/* windows starting at 2..5 include buckets < 950 enough to average below 950; from 6 on all full */
	assert_int_equal(M.t95_ns, 6 * 10 * PCB_NSEC_PER_MSEC);
	assert_int_equal(M.lost_ops, 1000 + 900 + 800 + 700 + 600 + 500 + 100);
	assert_true(fabs(M.lost_s - (4600.0 / 1000.0) * 0.01) < 1e-9);
	pcb_progress_free(&M);
	/* never back: slower at the end */
	mig[19] = 0;
	mig[18] = 0;
	series(&M, mig, 20);
	assert_int_equal(pcb_progress_compare(&M, &L), 0);
	assert_false(M.recovered);
	pcb_progress_free(&M);
	pcb_progress_free(&L);
}

/* The vCPU loop itself over a local region (no pager): op structure, progress
 * buckets, first touches, the access record and its round trip, integrity. */
static void test_guest_loop(void **state)
{
	(void)state;
	const uint64_t N = 4096, OPS = 3000;
	struct pcb_image im;
	pcb_image_init(&im, 9, N, 0.25);
	uint8_t *region = pcb_local_region(&im, N);
	assert_non_null(region);
	_Atomic uint32_t *ft = calloc(N, sizeof(*ft));
	struct pcb_guest_cfg gc = {
		.ops = pcb_workload_find("kv"),
		.prm = { .npages = N, .seed = 9, .nvcpus = 2, .zipf_theta = 0.99, .im = &im },
		.region = region, .im = &im, .write_ratio = 0.2, .ops_limit = OPS,
		.bucket_ns = PCB_NSEC_PER_MSEC, .record = true, .first_touch = ft,
	};
	char why[256];
	assert_int_equal(pcb_wl_parse_opts(gc.ops, "record-pages=3,get=0.5", &gc.prm, why, sizeof(why)), 0);
	struct pcb_guest *g;
	assert_int_equal(pcb_guest_create(&gc, NULL, &g, why, sizeof(why)), 0);
	assert_int_equal(pcb_guest_start(g), 0);
	uint64_t t0 = pcb_now_ns();
	pcb_guest_go(g, t0);
	pcb_guest_join(g);
	uint64_t touched = 0;
	for (uint64_t p = 0; p < N; p++)
		touched += ft[p] != 0;
	assert_true(touched > 0);
	for (unsigned v = 0; v < 2; v++) {
		const struct pcb_vcpu_result *r = pcb_guest_result(g, v);
		assert_int_equal(r->ops, OPS);
		assert_int_equal(r->accesses, 4 * OPS);             /* bucket read + 3 record pages */
		assert_int_equal(r->reads + r->writes, r->accesses);
		assert_int_equal(r->op_lat.count, OPS);
		assert_int_equal(r->read_mismatch, 0);
		assert_int_equal(r->faults, 0);
		assert_true(r->writes > OPS / 4 * 3 && r->writes < OPS * 3 * 3 / 4);   /* puts write 3 pages, ~half the ops */
		uint64_t sum = 0;
		for (uint64_t i = 0; i < r->nbuckets; i++)
			sum += r->buckets[i];
		assert_int_equal(sum, OPS);
		assert_int_equal(r->nrec, r->accesses);
		assert_true(r->t_first_op_ns >= t0 && r->t_end_ns >= r->t_first_op_ns);
	}
	/* progress over both vCPUs */
	struct pcb_progress pr;
	assert_int_equal(pcb_progress_collect(&pr, g, 2, PCB_NSEC_PER_MSEC, t0), 0);
	uint64_t tot = 0;
	for (uint64_t i = 0; i < pr.nbuckets; i++)
		tot += pr.total[i];
	assert_int_equal(tot, 2 * OPS);
	assert_true(pr.first_work_ns != UINT64_MAX);
	/* the record round-trips and replays the same op structure */
	char path[64];
	snprintf(path, sizeof(path), "/tmp/pcb-ut-rec-%d.bin", getpid());
	assert_int_equal(pcb_guest_record_save(g, path), 0);
	struct pcb_atrace t;
	assert_int_equal(pcb_atrace_load(path, &t, why, sizeof(why)), 0);
	assert_int_equal(t.count, 2 * 4 * OPS);
	uint64_t ends = 0, w = 0;
	for (uint64_t i = 0; i < t.count; i++) {
		ends += !(t.rec[i].flags & PCB_ATRACE_MORE);
		w += t.rec[i].flags & PCB_ATRACE_WRITE;
		if (i)
			assert_true(t.rec[i].t_ns >= t.rec[i - 1].t_ns);   /* merged in time order */
	}
	assert_int_equal(ends, 2 * OPS);
	assert_int_equal(w, pcb_guest_result(g, 0)->writes + pcb_guest_result(g, 1)->writes);
	pcb_atrace_free(&t);
	unlink(path);
	/* progress CSV round trip through --baseline's reader */
	snprintf(path, sizeof(path), "/tmp/pcb-ut-prog-%d.csv", getpid());
	assert_int_equal(pcb_progress_csv(&pr, path,
		"pcbench x (git y) progress: policy=local workload=kv seed=9 vcpus=2 bucket_ms=1 complete_buckets=3 guest=process"), 0);
	struct pcb_progress back;
	struct pcb_progress_meta m;
	assert_int_equal(pcb_progress_load_csv(path, &back, &m, why, sizeof(why)), 0);
	assert_string_equal(m.workload, "kv");
	assert_int_equal(m.vcpus, 2);
	assert_int_equal(back.nbuckets, pr.nbuckets);
	for (uint64_t i = 0; i < pr.nbuckets; i++)
		assert_int_equal(back.total[i], pr.total[i]);
	assert_int_equal(back.ncomplete, pr.nbuckets < 3 ? pr.nbuckets : 3);
	pcb_progress_free(&back);
	unlink(path);
	pcb_progress_free(&pr);
	/* every page intact, every write stamp valid */
	struct pcb_verify ver;
	assert_int_equal(pcb_local_verify(region, &im, N, &ver, why, sizeof(why)), 0);
	assert_int_equal(ver.pages_verified, N);
	assert_int_equal(ver.pages_corrupt + ver.pages_missing + ver.stamps_bad, 0);
	/* and a corrupted page is caught */
	region[5 * PCB_PAGE_SIZE + 100] ^= 1;
	assert_int_equal(pcb_local_verify(region, &im, N, &ver, why, sizeof(why)), 0);
	assert_int_equal(ver.pages_corrupt, 1);
	assert_int_equal(ver.first_bad[0], 5);
	pcb_guest_destroy(g);
	free(ft);
	munmap(region, N * PCB_PAGE_SIZE);
}

int main(void)
{
	snprintf(trace_path, sizeof(trace_path), "/tmp/pcb-ut-gen-%d.txt", getpid());
	FILE *f = fopen(trace_path, "w");
	if (!f)
		return 1;
	for (unsigned i = 0; i < 3000; i++)
		fprintf(f, "%u %c %u%s\n", (i * 7919u) % 5000, i % 5 ? 'r' : 'w', i % 2, i % 3 ? "" : " +");
	fclose(f);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_and_knobs), cmocka_unit_test(test_all_deterministic),
		cmocka_unit_test(test_zipf_share), cmocka_unit_test(test_chase_cycle),
		cmocka_unit_test(test_stride), cmocka_unit_test(test_kv_ops),
		cmocka_unit_test(test_phase_moves), cmocka_unit_test(test_scanhot),
		cmocka_unit_test(test_idle), cmocka_unit_test(test_trace_files),
		cmocka_unit_test(test_progress_metrics), cmocka_unit_test(test_guest_loop),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(trace_path);
	return rc;
}
