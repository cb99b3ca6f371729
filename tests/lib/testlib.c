/* Shared unit-test helpers; see testlib.h.  No cmocka calls in here: the
 * object is also linked into the helper programs, which do not link cmocka. */
#include "tests/lib/testlib.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tl_mem_open(struct tl_mem *m)
{
	m->buf = NULL;
	m->len = 0;
	m->fp = open_memstream(&m->buf, &m->len);
	if (!m->fp)
		abort();
}

const char *tl_mem_str(struct tl_mem *m)
{
	fflush(m->fp);
	return m->buf ? m->buf : "";
}

void tl_mem_close(struct tl_mem *m)
{
	if (m->fp)
		fclose(m->fp);
	free(m->buf);
	m->fp = NULL;
	m->buf = NULL;
}

static int saved_stderr = -1;
static FILE *capture_fp;
static char capture_buf[16384];

void tl_stderr_begin(void)
{
	fflush(stderr);
	capture_fp = tmpfile();
	if (!capture_fp)
		abort();
	saved_stderr = dup(2);
	dup2(fileno(capture_fp), 2);
}

const char *tl_stderr_end(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	rewind(capture_fp);
	size_t n = fread(capture_buf, 1, sizeof(capture_buf) - 1, capture_fp);
	capture_buf[n] = 0;
	fclose(capture_fp);
	capture_fp = NULL;
	return capture_buf;
}

unsigned tl_count_lines(const char *s)
{
	unsigned n = 0;
	const char *p = s;
	for (; *p; p++)
		if (*p == '\n')
			n++;
	if (p > s && p[-1] != '\n')
		n++;
	return n;
}

/* ---- strict JSON syntax check (recursive descent) ---- */

struct jp {
	const char *s, *p;
	int depth;
};

static void ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int value(struct jp *j);

static int string(struct jp *j)
{
	if (*j->p != '"')
		return -1;
	j->p++;
	for (;;) {
		unsigned char c = (unsigned char)*j->p;
		if (c == 0 || c < 0x20)
			return -1;
		if (c == '"') {
			j->p++;
			return 0;
		}
		if (c == '\\') {
			j->p++;
			c = (unsigned char)*j->p;
			if (c == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)j->p[i]))
						return -1;
				j->p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || !c)
				return -1;
		}
		j->p++;
	}
}

static int number(struct jp *j)
{
	if (*j->p == '-')
		j->p++;
	if (*j->p == '0') {
		j->p++;
	} else if (*j->p >= '1' && *j->p <= '9') {
		while (isdigit((unsigned char)*j->p))
			j->p++;
	} else {
		return -1;
	}
	if (*j->p == '.') {
		j->p++;
		if (!isdigit((unsigned char)*j->p))
			return -1;
		while (isdigit((unsigned char)*j->p))
			j->p++;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (!isdigit((unsigned char)*j->p))
			return -1;
		while (isdigit((unsigned char)*j->p))
			j->p++;
	}
	return 0;
}

static int container(struct jp *j, char close, int is_obj)
{
	j->p++;
	if (++j->depth > 512)
		return -1;
	ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		ws(j);
		if (is_obj) {
			if (string(j) < 0)
				return -1;
			ws(j);
			if (*j->p != ':')
				return -1;
			j->p++;
		}
		if (value(j) < 0)
			return -1;
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return -1;
	}
}

static int value(struct jp *j)
{
	ws(j);
	switch (*j->p) {
	case '{': return container(j, '}', 1);
	case '[': return container(j, ']', 0);
	case '"': return string(j);
	case 't': if (!strncmp(j->p, "true", 4)) { j->p += 4; return 0; } return -1;
	case 'f': if (!strncmp(j->p, "false", 5)) { j->p += 5; return 0; } return -1;
	case 'n': if (!strncmp(j->p, "null", 4)) { j->p += 4; return 0; } return -1;
	default: return number(j);
	}
}

int tl_json_valid(const char *s, size_t *err_off)
{
	struct jp j = { s, s, 0 };
	int r = value(&j);
	if (r == 0) {
		ws(&j);
		if (*j.p)
			r = -1;
	}
	if (r < 0 && err_off)
		*err_off = (size_t)(j.p - s);
	return r;
}

char **tl_argv(int *argc, const char *fmt, ...)
{
	char line[16384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	char **argv = calloc(strlen(line) / 2 + 2, sizeof(char *));
	int n = 0;
	for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " "))
		argv[n++] = strdup(tok);
	argv[n] = NULL;
	*argc = n;
	return argv;
}

void tl_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}
