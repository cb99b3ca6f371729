/* Shared helpers for the cmocka unit tests (tests/unit/test_*.c).
 *
 * Linked into every unit test and test helper program by the Makefile.
 * Keep it small: things more than one test needs, nothing else. */
#ifndef PCB_TESTLIB_H
#define PCB_TESTLIB_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- output capture ---------------------------------------------------------- */

/* An in-memory FILE (open_memstream); tl_mem_str() flushes and returns the text. */
struct tl_mem {
	FILE *fp;
	char *buf;
	size_t len;
};
void tl_mem_open(struct tl_mem *m);
const char *tl_mem_str(struct tl_mem *m);
void tl_mem_close(struct tl_mem *m);

/* Redirect the process's stderr (fd 2) into a temporary file until
 * tl_stderr_end(), which returns what was written (static buffer, NUL
 * terminated, valid until the next call). */
void tl_stderr_begin(void);
const char *tl_stderr_end(void);

/* Number of '\n'-terminated lines in s (a trailing unterminated line counts). */
unsigned tl_count_lines(const char *s);

/* ---- JSON ------------------------------------------------------------------ */

/* Strict RFC 8259 syntax check of a complete document (one value, optional
 * surrounding whitespace).  Returns 0 if valid, else -1 with the byte offset
 * of the first error in *err_off (if non-NULL). */
int tl_json_valid(const char *s, size_t *err_off);

/* Assert that s is valid JSON, printing the text around the error if not. */
#define tl_assert_json_valid(s) do {                                                       \
	size_t _off = 0;                                                                   \
	const char *_s = (s);                                                              \
	if (tl_json_valid(_s, &_off) != 0)                                                 \
		fail_msg("invalid JSON at offset %zu: ...%.40s...", _off,                  \
			 _s + (_off > 20 ? _off - 20 : 0));                                \
} while (0)

/* ---- misc ------------------------------------------------------------------ */

/* Build a heap-allocated argv (NULL terminated) from a format string of
 * space-separated words, e.g. tl_argv(&argc, "pcbench --mem=%s", v). Free with tl_argv_free(). */
char **tl_argv(int *argc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_argv_free(char **argv);

/* cmocka's assert_* only print integers; these say which values differed. */
#define tl_assert_u64_eq(a, b) do {                                                        \
	uint64_t _a = (a), _b = (b);                                                       \
	if (_a != _b)                                                                      \
		fail_msg("%s == %llu, expected %s == %llu", #a, (unsigned long long)_a, #b, \
			 (unsigned long long)_b);                                          \
} while (0)

#define tl_assert_contains(hay, needle) do {                                               \
	const char *_h = (hay), *_n = (needle);                                            \
	if (!_h || !strstr(_h, _n))                                                        \
		fail_msg("expected \"%s\" in: %s", _n, _h ? _h : "(null)");               \
} while (0)
#endif
