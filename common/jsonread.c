#include "common/jsonread.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_JSON_MAX_DEPTH 64

struct jp {
	const char *s, *end, *p;
	char *err;
	size_t errlen;
	bool failed;
};

static void jfail(struct jp *j, const char *fmt, ...)
{
	if (j->failed)
		return;
	j->failed = true;
	unsigned line = 1, col = 1;
	for (const char *q = j->s; q < j->p && q < j->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char msg[96];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (j->err && j->errlen)
		snprintf(j->err, j->errlen, "line %u col %u: %s", line, col, msg);
}

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static struct pcb_jv *newv(enum pcb_jtype t)
{
	struct pcb_jv *v = calloc(1, sizeof(*v));
	if (v)
		v->type = t;
	return v;
}

static void put_utf8(char **o, unsigned cp)
{
	char *q = *o;
	if (cp < 0x80) {
		*q++ = (char)cp;
	} else if (cp < 0x800) {
		*q++ = (char)(0xC0 | (cp >> 6));
		*q++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*q++ = (char)(0xE0 | (cp >> 12));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*q++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*q++ = (char)(0xF0 | (cp >> 18));
		*q++ = (char)(0x80 | ((cp >> 12) & 0x3F));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*q++ = (char)(0x80 | (cp & 0x3F));
	}
	*o = q;
}

static int hex4(struct jp *j, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		if (j->p >= j->end) {
			jfail(j, "truncated \\u escape");
			return -1;
		}
		char c = *j->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else {
			jfail(j, "bad \\u escape");
			return -1;
		}
	}
	*out = v;
	return 0;
}

/* j->p at the opening quote. Returns malloc'ed decoded string. */
static char *parse_string(struct jp *j)
{
	j->p++;
	const char *start = j->p;
	size_t maxlen = 0;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\')
			j->p++;
		j->p++;
	}
	if (j->p >= j->end) {
		jfail(j, "unterminated string");
		return NULL;
	}
	maxlen = (size_t)(j->p - start);
	char *out = malloc(maxlen + 1), *o = out;
	if (!out) {
		jfail(j, "out of memory");
		return NULL;
	}
	j->p = start;
	while (*j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;
		if (c < 0x20) {
			jfail(j, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		char e = *j->p++;
		switch (e) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp;
			if (hex4(j, &cp) < 0) {
				free(out);
				return NULL;
			}
			if (cp >= 0xD800 && cp < 0xDC00 && j->p + 6 <= j->end && j->p[0] == '\\' && j->p[1] == 'u') {
				unsigned lo;
				j->p += 2;
				if (hex4(j, &lo) < 0) {
					free(out);
					return NULL;
				}
				if (lo >= 0xDC00 && lo < 0xE000)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				else
					cp = 0xFFFD;
			} else if (cp >= 0xD800 && cp < 0xE000) {
				cp = 0xFFFD;
			}
			put_utf8(&o, cp);   /* a \u escape (6 chars) never decodes to more than 4 bytes */
			break;
		}
		default:
			jfail(j, "bad escape '\\%c'", e);
			free(out);
			return NULL;
		}
	}
	j->p++;
	*o = 0;
	return out;
}

static struct pcb_jv *parse_value(struct jp *j, int depth);

static int push(struct pcb_jv *v, struct pcb_jv *kid, char *key, size_t *cap)
{
	if (v->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct pcb_jv **nk = realloc(v->kids, nc * sizeof(*nk));
		if (!nk)
			return -1;
		v->kids = nk;
		if (v->type == PCB_J_OBJ) {
			char **nkey = realloc(v->keys, nc * sizeof(*nkey));
			if (!nkey)
				return -1;
			v->keys = nkey;
		}
		*cap = nc;
	}
	v->kids[v->n] = kid;
	if (v->type == PCB_J_OBJ)
		v->keys[v->n] = key;
	v->n++;
	return 0;
}

static struct pcb_jv *parse_container(struct jp *j, int depth, bool obj)
{
	struct pcb_jv *v = newv(obj ? PCB_J_OBJ : PCB_J_ARR);
	size_t cap = 0;
	if (!v) {
		jfail(j, "out of memory");
		return NULL;
	}
	char close = obj ? '}' : ']';
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		ws(j);
		if (obj) {
			if (j->p >= j->end || *j->p != '"') {
				jfail(j, "expected a string key");
				goto bad;
			}
			key = parse_string(j);
			if (!key)
				goto bad;
			ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				jfail(j, "expected ':'");
				goto bad;
			}
			j->p++;
		}
		struct pcb_jv *kid = parse_value(j, depth + 1);
		if (!kid) {
			free(key);
			goto bad;
		}
		if (push(v, kid, key, &cap) < 0) {
			free(key);
			pcb_jv_free(kid);
			jfail(j, "out of memory");
			goto bad;
		}
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return v;
		}
		jfail(j, "expected ',' or '%c'", close);
		goto bad;
	}
bad:
	pcb_jv_free(v);
	return NULL;
}

static struct pcb_jv *parse_number(struct jp *j)
{
	const char *q = j->p;
	if (q < j->end && *q == '-')
		q++;
	if (q >= j->end || !(*q >= '0' && *q <= '9')) {
		jfail(j, "unexpected character");
		return NULL;
	}
	if (*q == '0' && q + 1 < j->end && q[1] >= '0' && q[1] <= '9') {
		jfail(j, "leading zero in number");
		return NULL;
	}
	while (q < j->end && *q >= '0' && *q <= '9')
		q++;
	if (q < j->end && *q == '.') {
		q++;
		if (q >= j->end || !(*q >= '0' && *q <= '9')) {
			jfail(j, "bad number");
			return NULL;
		}
		while (q < j->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < j->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < j->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= j->end || !(*q >= '0' && *q <= '9')) {
			jfail(j, "bad exponent");
			return NULL;
		}
		while (q < j->end && *q >= '0' && *q <= '9')
			q++;
	}
	char buf[64];
	size_t n = (size_t)(q - j->p);
	if (n >= sizeof(buf)) {
		jfail(j, "number too long");
		return NULL;
	}
	memcpy(buf, j->p, n);
	buf[n] = 0;
	struct pcb_jv *v = newv(PCB_J_NUM);
	if (!v) {
		jfail(j, "out of memory");
		return NULL;
	}
	v->num = strtod(buf, NULL);
	j->p = q;
	return v;
}

static bool lit(struct jp *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, w, n)) {
		j->p += n;
		return true;
	}
	return false;
}

static struct pcb_jv *parse_value(struct jp *j, int depth)
{
	if (depth > PCB_JSON_MAX_DEPTH) {
		jfail(j, "nested too deeply");
		return NULL;
	}
	ws(j);
	if (j->p >= j->end) {
		jfail(j, "unexpected end of input");
		return NULL;
	}
	struct pcb_jv *v;
	switch (*j->p) {
	case '{':
		return parse_container(j, depth, true);
	case '[':
		return parse_container(j, depth, false);
	case '"': {
		char *s = parse_string(j);
		if (!s)
			return NULL;
		v = newv(PCB_J_STR);
		if (!v) {
			free(s);
			jfail(j, "out of memory");
			return NULL;
		}
		v->str = s;
		return v;
	}
	case 't':
	case 'f':
	case 'n':
		if (lit(j, "true") || lit(j, "false")) {
			v = newv(PCB_J_BOOL);
			if (v)
				v->b = j->p[-1] == 'e' && j->p[-2] == 'u';
			return v;
		}
		if (lit(j, "null"))
			return newv(PCB_J_NULL);
		jfail(j, "unexpected word");
		return NULL;
	default:
		return parse_number(j);
	}
}

struct pcb_jv *pcb_jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct jp j = { .s = text, .end = text + len, .p = text, .err = err, .errlen = errlen };
	struct pcb_jv *v = parse_value(&j, 0);
	if (!v)
		return NULL;
	ws(&j);
	if (j.p != j.end) {
		jfail(&j, "trailing characters after the value");
		pcb_jv_free(v);
		return NULL;
	}
	return v;
}

struct pcb_jv *pcb_jv_parse_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	bool rerr = ferror(f);
	fclose(f);
	if (!buf || rerr) {
		snprintf(err, errlen, "cannot read: %s", buf ? "I/O error" : "out of memory");
		free(buf);
		return NULL;
	}
	struct pcb_jv *v = pcb_jv_parse(buf, n, err, errlen);
	free(buf);
	return v;
}

void pcb_jv_free(struct pcb_jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		pcb_jv_free(v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->str);
	free(v);
}

const struct pcb_jv *pcb_jv_get(const struct pcb_jv *v, const char *key)
{
	if (!v || v->type != PCB_J_OBJ)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->keys[i], key))
			return v->kids[i];
	return NULL;
}

const struct pcb_jv *pcb_jv_path(const struct pcb_jv *v, const char *path)
{
	char key[128];
	while (v && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		v = pcb_jv_get(v, key);
		path += n + (dot ? 1 : 0);
	}
	return v;
}

int pcb_jv_num(const struct pcb_jv *v, double *out)
{
	if (!v || v->type != PCB_J_NUM)
		return -1;
	*out = v->num;
	return 0;
}

const char *pcb_jv_str(const struct pcb_jv *v)
{
	return v && v->type == PCB_J_STR ? v->str : NULL;
}
