#include "common/jsonread.h"
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_JSON_MAX_DEPTH 64

/* Parsing is Jansson's (Debian libjansson-dev: strict RFC 8259, UTF-8 checked, escapes and
 * surrogate pairs decoded, line and column of an error); this file only turns its tree into
 * the small DOM the bench code reads, and bounds the nesting that conversion recurses over. */

static struct pcb_jv *newv(enum pcb_jtype t)
{
	struct pcb_jv *v = calloc(1, sizeof(*v));
	if (v)
		v->type = t;
	return v;
}

/* Deepest [ / { nesting outside strings (the DOM conversion recurses that deep). */
static unsigned max_depth(const char *s, size_t len)
{
	unsigned d = 0, max = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++d > max)
				max = d;
		} else if ((c == ']' || c == '}') && d) {
			d--;
		}
	}
	return max;
}

static struct pcb_jv *from_jansson(const json_t *j);

static struct pcb_jv *container(const json_t *j)
{
	bool obj = json_is_object(j);
	struct pcb_jv *v = newv(obj ? PCB_J_OBJ : PCB_J_ARR);
	size_t n = obj ? json_object_size(j) : json_array_size(j);
	if (!v)
		return NULL;
	v->kids = calloc(n ? n : 1, sizeof(*v->kids));
	v->keys = obj ? calloc(n ? n : 1, sizeof(*v->keys)) : NULL;
	if (!v->kids || (obj && !v->keys)) {
		pcb_jv_free(v);
		return NULL;
	}
	if (obj) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)j, key, val) {   /* insertion order (Jansson >= 2.8) */
			v->keys[v->n] = strdup(key);
			v->kids[v->n] = from_jansson(val);
			if (!v->keys[v->n++] || !v->kids[v->n - 1]) {
				pcb_jv_free(v);
				return NULL;
			}
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			v->kids[v->n++] = from_jansson(json_array_get(j, i));
			if (!v->kids[i]) {
				pcb_jv_free(v);
				return NULL;
			}
		}
	}
	return v;
}

static struct pcb_jv *from_jansson(const json_t *j)
{
	struct pcb_jv *v;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		return container(j);
	case JSON_STRING:
		v = newv(PCB_J_STR);
		if (v && !(v->str = strdup(json_string_value(j)))) {
			free(v);
			v = NULL;
		}
		return v;
	case JSON_INTEGER:
	case JSON_REAL:
		v = newv(PCB_J_NUM);
		if (v)
			v->num = json_number_value(j);
		return v;
	case JSON_TRUE:
	case JSON_FALSE:
		v = newv(PCB_J_BOOL);
		if (v)
			v->b = json_is_true(j);
		return v;
	default:
		return newv(PCB_J_NULL);
	}
}

struct pcb_jv *pcb_jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	if (max_depth(text, len) > PCB_JSON_MAX_DEPTH) {
		snprintf(err, errlen, "line 1 col 1: nested too deeply (more than %d levels)", PCB_JSON_MAX_DEPTH);
		return NULL;
	}
	/* any top-level value; integers beyond int64 (a seed of 2^64-1) as numbers, like the rest */
	json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
	if (!root) {
		snprintf(err, errlen, "line %d col %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	struct pcb_jv *v = from_jansson(root);
	json_decref(root);
	if (!v)
		snprintf(err, errlen, "line 1 col 1: out of memory");
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
