/* common/json: the streaming writer produces valid JSON with escaping,
 * commas and nesting handled, and reports misuse. */
#include "tests/lib/testlib.h"
#include "common/json.h"
#include <errno.h>
#include <sys/wait.h>
#include <math.h>
#include <stdlib.h>

static void test_document(void **state)
{
	(void)state;
	struct tl_mem m;
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "u", UINT64_MAX);
	pcb_json_i64(j, "i", INT64_MIN);
	pcb_json_dbl(j, "d", 0.1);
	pcb_json_dbl(j, "big", 1e300);
	pcb_json_dbl(j, "tiny", -2.5e-300);
	pcb_json_dbl(j, "nan", NAN);
	pcb_json_dbl(j, "inf", -INFINITY);
	pcb_json_bool(j, "t", true);
	pcb_json_bool(j, "f", false);
	pcb_json_null(j, "n");
	pcb_json_str(j, "s", "quote\" backslash\\ nl\n cr\r tab\t bell\a esc\x1b del\x7f utf8 \xc2\xb5s /");
	pcb_json_str(j, "nullstr", NULL);
	pcb_json_str(j, "", "empty key");
	pcb_json_str(j, "k\"ey", "escaped key");
	pcb_json_obj_begin(j, "empty_obj");
	pcb_json_obj_end(j);
	pcb_json_arr_begin(j, "empty_arr");
	pcb_json_arr_end(j);
	pcb_json_arr_begin(j, "arr");
	for (int i = 0; i < 3; i++) {
		pcb_json_arr_begin(j, NULL);
		pcb_json_u64(j, NULL, (uint64_t)i);
		pcb_json_obj_begin(j, NULL);
		pcb_json_u64(j, "x", (uint64_t)i);
		pcb_json_obj_end(j);
		pcb_json_arr_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	const char *s = tl_mem_str(&m);
	tl_assert_json_valid(s);
	tl_assert_contains(s, "\"u\": 18446744073709551615");
	tl_assert_contains(s, "\"i\": -9223372036854775808");
	tl_assert_contains(s, "\"nan\": null");
	tl_assert_contains(s, "\"inf\": null");
	tl_assert_contains(s, "\"nullstr\": null");
	tl_assert_contains(s, "quote\\\" backslash\\\\ nl\\n cr\\r tab\\t bell\\u0007 esc\\u001b");
	tl_assert_contains(s, "\"k\\\"ey\"");
	tl_assert_contains(s, "\"empty_obj\": {}");
	tl_assert_contains(s, "\"empty_arr\": []");
	assert_int_equal(s[strlen(s) - 1], '\n');
	/* a double survives the round trip closely enough (%.9g) */
	const char *d = strstr(s, "\"d\": ");
	assert_true(fabs(strtod(d + 5, NULL) - 0.1) < 1e-9);

	/* cross-check with python's parser when it is available */
	FILE *py = popen("python3 -c 'import json,sys; d=json.load(sys.stdin); "
			 "assert d[\"u\"]==2**64-1 and d[\"arr\"][2][1][\"x\"]==2 and d[\"nan\"] is None "
			 "and d[\"s\"].startswith(\"quote\\\" backslash\\\\\") and d[\"\"]==\"empty key\"' 2>&1", "w");
	if (py) {
		fputs(s, py);
		int rc = pclose(py);
		if (rc != 0 && WEXITSTATUS(rc) != 127)
			fail_msg("python3 rejected the writer's output (status %d):\n%s", rc, s);
	}
	tl_mem_close(&m);
}

static void test_top_level_values(void **state)
{
	(void)state;
	struct tl_mem m;
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_json_arr_begin(j, NULL);
	pcb_json_arr_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	assert_string_equal(tl_mem_str(&m), "[]\n");
	tl_mem_close(&m);

	tl_mem_open(&m);
	j = pcb_json_open(m.fp);
	pcb_json_u64(j, NULL, 5);
	assert_int_equal(pcb_json_close(j), 0);
	assert_string_equal(tl_mem_str(&m), "5\n");
	tl_mem_close(&m);
}

static void test_misuse(void **state)
{
	(void)state;
	struct tl_mem m;
	/* unclosed container: close reports an error */
	tl_mem_open(&m);
	struct pcb_json *j = pcb_json_open(m.fp);
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "a", 1);
	assert_int_equal(pcb_json_close(j), -EIO);
	tl_mem_close(&m);
	/* closing more than was opened */
	tl_mem_open(&m);
	j = pcb_json_open(m.fp);
	pcb_json_obj_begin(j, NULL);
	pcb_json_obj_end(j);
	pcb_json_obj_end(j);
	assert_int_equal(pcb_json_close(j), -EIO);
	tl_mem_close(&m);
	/* nesting deeper than the writer supports is reported, not overrun */
	tl_mem_open(&m);
	j = pcb_json_open(m.fp);
	for (int i = 0; i < 40; i++)
		pcb_json_arr_begin(j, NULL);
	for (int i = 0; i < 40; i++)
		pcb_json_arr_end(j);
	assert_int_equal(pcb_json_close(j), -EIO);
	tl_mem_close(&m);
	/* deep but within the limit is fine */
	tl_mem_open(&m);
	j = pcb_json_open(m.fp);
	for (int i = 0; i < 30; i++)
		pcb_json_arr_begin(j, NULL);
	for (int i = 0; i < 30; i++)
		pcb_json_arr_end(j);
	assert_int_equal(pcb_json_close(j), 0);
	tl_assert_json_valid(tl_mem_str(&m));
	tl_mem_close(&m);
	assert_int_equal(pcb_json_close(NULL), -EINVAL);
}

/* A field table writes exactly what the one-call-a-member writer writes. */
static void write_by_calls(struct pcb_json *j)
{
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "top", 1);
	pcb_json_obj_begin(j, "g");
	pcb_json_u64(j, "u", UINT64_MAX);
	pcb_json_i64(j, "i", -1);
	pcb_json_dbl(j, "d", 0.25);
	pcb_json_str(j, "s", "x\"y");
	pcb_json_str(j, "null", NULL);
	pcb_json_bool(j, "b", true);
	pcb_json_obj_end(j);
	pcb_json_arr_begin(j, "a");
	pcb_json_obj_begin(j, NULL);
	pcb_json_u64(j, "n", 7);
	pcb_json_obj_end(j);
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
}

static void write_by_table(struct pcb_json *j)
{
	pcb_json_obj_begin(j, NULL);
	PCB_JSON_FIELDS(j, PCB_JU64("top", 1));
	PCB_JSON_GROUP(j, "g", PCB_JU64("u", UINT64_MAX), PCB_JI64("i", -1), PCB_JDBL("d", 0.25),
		       PCB_JSTR("s", "x\"y"), PCB_JSTR("null", NULL), PCB_JBOOL("b", true));
	pcb_json_arr_begin(j, "a");
	PCB_JSON_GROUP(j, NULL, PCB_JU64("n", 7));
	pcb_json_arr_end(j);
	pcb_json_obj_end(j);
}

static void test_field_table(void **state)
{
	(void)state;
	struct tl_mem a, b;
	tl_mem_open(&a);
	tl_mem_open(&b);
	struct pcb_json *ja = pcb_json_open(a.fp), *jb = pcb_json_open(b.fp);
	write_by_calls(ja);
	write_by_table(jb);
	assert_int_equal(pcb_json_close(ja), 0);
	assert_int_equal(pcb_json_close(jb), 0);
	const char *sa = tl_mem_str(&a), *sb = tl_mem_str(&b);
	tl_assert_json_valid(sb);
	tl_assert_contains(sb, "\"i\": -1");
	tl_assert_contains(sb, "\"null\": null");
	assert_string_equal(sa, sb);
	tl_mem_close(&a);
	tl_mem_close(&b);
}

static void test_validator_itself(void **state)
{
	(void)state;
	/* the checker used by these tests must reject what it should */
	const char *good[] = { "{}", "[]", "0", "-0.5e+3", "\"a\\u00e9\"", "{\"a\": [1, {\"b\": null}]}", " true ", "[\"\\/\"]" };
	const char *badj[] = { "", "{", "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\" 1}", "01", "1.", ".5", "+1", "nul",
			       "\"a", "\"\\x\"", "\"tab\there\"", "{} {}", "{'a':1}", "NaN", "[1e]" };
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (tl_json_valid(good[i], NULL))
			fail_msg("validator rejects valid %s", good[i]);
	for (unsigned i = 0; i < sizeof(badj) / sizeof(badj[0]); i++)
		if (!tl_json_valid(badj[i], NULL))
			fail_msg("validator accepts invalid %s", badj[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document),
		cmocka_unit_test(test_top_level_values),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_validator_itself),
		cmocka_unit_test(test_field_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
