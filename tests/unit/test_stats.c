/* Statistics, tidy CSV writer and JSON reader of `pcbench bench`/`analyze`
 * (bench/stats.c, common/jsonread.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/hist.h"
#include "common/json.h"
#include "common/jsonread.h"
#include "common/util.h"
#include "bench/stats.h"

static void spread_basic(void **state)
{
	(void)state;
	double odd[] = { 5, 1, 3 };
	struct pcb_spread s = pcb_spread_of(odd, 3);
	assert_int_equal(s.n, 3);
	assert_true(s.median == 3 && s.min == 1 && s.max == 5);
	assert_true(odd[0] == 5 && odd[1] == 1);          /* input untouched */
	double even[] = { 4, 1, 10, 2 };
	s = pcb_spread_of(even, 4);
	assert_true(s.median == 3 && s.min == 1 && s.max == 10);
	double withnan[] = { NAN, 7, NAN, 9 };
	s = pcb_spread_of(withnan, 4);
	assert_int_equal(s.n, 2);
	assert_true(s.median == 8 && s.min == 7 && s.max == 9);
	s = pcb_spread_of(withnan, 1);
	assert_int_equal(s.n, 0);
	assert_true(isnan(s.median));
	s = pcb_spread_of(NULL, 0);
	assert_int_equal(s.n, 0);
	double one[] = { 42 };
	s = pcb_spread_of(one, 1);
	assert_true(s.n == 1 && s.median == 42 && s.min == 42 && s.max == 42);
}

static char *csv_of(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	fn(f);
	fclose(f);
	return buf;
}

static void rows(FILE *f)
{
	pcb_csv_tidy_header(f);
	pcb_csv_tidy_row(f, "demand-seq-lo-r1", "demand", "seq", "lo", "1", "migration_time_ms", "value", 2097.125);
	pcb_csv_tidy_row(f, "x", "p,1", "say \"hi\"", "l\nb", "all", "m", "median", NAN);
	pcb_csv_tidy_row(f, "x", "p", "w", "l", "2", "faults", "value", 123456789012.0);
	pcb_csv_tidy_row(f, "x", "p", "w", "l", "2", "hit_rate", "value", 0.892089844);
}

static void csv_writer(void **state)
{
	(void)state;
	char *s = csv_of(rows);
	assert_string_equal(s,
		"run_id,policy,workload,link,rep,metric,stat,value\n"
		"demand-seq-lo-r1,demand,seq,lo,1,migration_time_ms,value,2097.125\n"
		"x,\"p,1\",\"say \"\"hi\"\"\",\"l\nb\",all,m,median,NA\n"
		"x,p,w,l,2,faults,value,123456789012\n"
		"x,p,w,l,2,hit_rate,value,0.892089844\n");
	free(s);
}

static void json_reader(void **state)
{
	(void)state;
	char err[128];
	const char *t = "{\"a\": {\"b\": [1, -2.5e3, true, false, null], \"s\": \"x\\\"y\\u00e9\\n\\ud83d\\ude00\"},"
			" \"n\": 18446744073709551615, \"e\": {}, \"z\": []}";
	struct pcb_jv *v = pcb_jv_parse(t, strlen(t), err, sizeof(err));
	assert_non_null(v);
	const struct pcb_jv *b = pcb_jv_path(v, "a.b");
	assert_non_null(b);
	assert_int_equal(b->type, PCB_J_ARR);
	assert_int_equal(b->n, 5);
	double d;
	assert_int_equal(pcb_jv_num(b->kids[1], &d), 0);
	assert_true(d == -2500);
	assert_true(b->kids[2]->type == PCB_J_BOOL && b->kids[2]->b);
	assert_true(b->kids[3]->type == PCB_J_BOOL && !b->kids[3]->b);
	assert_int_equal(b->kids[4]->type, PCB_J_NULL);
	assert_int_equal(pcb_jv_num(b->kids[4], &d), -1);
	assert_string_equal(pcb_jv_str(pcb_jv_path(v, "a.s")), "x\"y\xc3\xa9\n\xf0\x9f\x98\x80");
	assert_null(pcb_jv_path(v, "a.nope"));
	assert_null(pcb_jv_path(v, "a.b.c"));
	assert_int_equal(pcb_jv_path(v, "e")->n, 0);
	pcb_jv_free(v);

	static const char *const bad[] = { "", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "01", "1.", "\"abc", "tru",
					   "[1] x", "{\"a\":1,}", "\"\\x\"", "[\"a\nb\"]", "-", "1e" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		v = pcb_jv_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (v)
			fail_msg("accepted bad JSON '%s'", bad[i]);
		assert_non_null(strstr(err, "line "));
	}
	/* nesting bound */
	char deep[300];
	memset(deep, '[', 200);
	deep[200] = 0;
	assert_null(pcb_jv_parse(deep, 200, err, sizeof(err)));
	assert_non_null(strstr(err, "nested too deeply"));
}

/* The JSON writer and the reader agree (the reader reads pcbench's own files). */
static void json_roundtrip(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct pcb_json *j = pcb_json_open(f);
	pcb_json_obj_begin(j, NULL);
	pcb_json_str(j, "s", "tab\there \"q\" \x01");
	pcb_json_u64(j, "u", 123456789);
	pcb_json_dbl(j, "d", 0.125);
	pcb_json_dbl(j, "nan", NAN);
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	fclose(f);
	char err[128];
	struct pcb_jv *v = pcb_jv_parse(buf, len, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(pcb_jv_str(pcb_jv_get(v, "s")), "tab\there \"q\" \x01");
	double d;
	assert_int_equal(pcb_jv_num(pcb_jv_get(v, "u"), &d), 0);
	assert_true(d == 123456789);
	assert_int_equal(pcb_jv_num(pcb_jv_get(v, "d"), &d), 0);
	assert_true(d == 0.125);
	assert_int_equal(pcb_jv_get(v, "nan")->type, PCB_J_NULL);
	pcb_jv_free(v);
	free(buf);
}

/* Serialise h as a result file would, and parse it back as a JSON value. */
static struct pcb_jv *hist_as_json(const struct pcb_hist *h)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct pcb_json *j = pcb_json_open(f);
	pcb_hist_json(j, NULL, h, 1);
	pcb_json_close(j);
	fclose(f);
	char err[128];
	struct pcb_jv *v = pcb_jv_parse(buf, len, err, sizeof(err));
	free(buf);
	assert_non_null(v);
	return v;
}

static void merged_percentiles(void **state)
{
	(void)state;
	/* run A: 1000 fast faults (~10 us); run B: 100 slow ones (~1 ms).  Merged p50 and p99
	 * must be those of the 1100 values together -- not the average of the runs' percentiles. */
	struct pcb_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *all = calloc(1, sizeof(*all)),
			*merged = calloc(1, sizeof(*merged));
	pcb_hist_init(a);
	pcb_hist_init(b);
	pcb_hist_init(all);
	pcb_hist_init(merged);
	for (unsigned i = 0; i < 1000; i++) {
		pcb_hist_add(a, 10000 + i);
		pcb_hist_add(all, 10000 + i);
	}
	for (unsigned i = 0; i < 100; i++) {
		pcb_hist_add(b, 1000000 + 1000 * i);
		pcb_hist_add(all, 1000000 + 1000 * i);
	}
	struct pcb_jv *ja = hist_as_json(a), *jb = hist_as_json(b);
	assert_int_equal(pcb_hist_from_json(merged, ja), 0);
	assert_int_equal(pcb_hist_from_json(merged, jb), 0);
	assert_int_equal(merged->count, 1100);
	assert_int_equal(merged->min, all->min);
	assert_int_equal(merged->max, all->max);
	assert_int_equal(merged->sum, all->sum);
	assert_memory_equal(merged->bucket, all->bucket, sizeof(all->bucket));
	for (double p = 10; p <= 100; p += 0.5)
		assert_int_equal(pcb_hist_percentile(merged, p), pcb_hist_percentile(all, p));
	/* the p99 of the merged data is a slow fault; averaging the runs' p99 would not be */
	uint64_t p99 = pcb_hist_percentile(merged, 99);
	assert_true(p99 >= 1000000);
	double avg_p99 = ((double)pcb_hist_percentile(a, 99) + (double)pcb_hist_percentile(b, 99)) / 2;
	assert_true(fabs(avg_p99 - (double)p99) > 0.1 * (double)p99);

	/* an empty histogram adds nothing */
	struct pcb_hist *e = calloc(1, sizeof(*e));
	pcb_hist_init(e);
	struct pcb_jv *je = hist_as_json(e);
	assert_int_equal(pcb_hist_from_json(merged, je), 0);
	assert_int_equal(merged->count, 1100);

	/* malformed: bins not on bucket boundaries, or counts that do not add up */
	char err[64];
	const char *t1 = "{\"count\":1,\"min_ns\":5,\"max_ns\":5,\"sum_ns\":5,\"bins\":[[1000001,1]]}";
	const char *t2 = "{\"count\":3,\"min_ns\":5,\"max_ns\":5,\"sum_ns\":5,\"bins\":[[5,1]]}";
	const char *t3 = "{\"count\":1,\"min_ns\":5,\"max_ns\":5,\"sum_ns\":5}";
	struct pcb_jv *v1 = pcb_jv_parse(t1, strlen(t1), err, sizeof(err)), *v2 = pcb_jv_parse(t2, strlen(t2), err, sizeof(err)),
		      *v3 = pcb_jv_parse(t3, strlen(t3), err, sizeof(err));
	assert_int_equal(pcb_hist_from_json(e, v1), -1);
	assert_int_equal(pcb_hist_from_json(e, v2), -1);
	assert_int_equal(pcb_hist_from_json(e, v3), -1);
	assert_int_equal(pcb_hist_from_json(e, NULL), -1);
	pcb_jv_free(v1);
	pcb_jv_free(v2);
	pcb_jv_free(v3);
	pcb_jv_free(ja);
	pcb_jv_free(jb);
	pcb_jv_free(je);
	free(a);
	free(b);
	free(all);
	free(merged);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spread_basic),
		cmocka_unit_test(csv_writer),
		cmocka_unit_test(json_reader),
		cmocka_unit_test(json_roundtrip),
		cmocka_unit_test(merged_percentiles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
