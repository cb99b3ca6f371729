#include "common/json.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#define PCB_JSON_MAX_DEPTH 32

struct pcb_json {
	FILE *fp;
	int depth;
	bool first[PCB_JSON_MAX_DEPTH];
	bool err;
	bool compact;           /* one line (JSON lines) */
};

struct pcb_json *pcb_json_open(FILE *fp)
{
	struct pcb_json *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fp = fp;
	j->first[0] = true;
	return j;
}

struct pcb_json *pcb_json_open_compact(FILE *fp)
{
	struct pcb_json *j = pcb_json_open(fp);

	if (j)
		j->compact = true;
	return j;
}

int pcb_json_close(struct pcb_json *j)
{
	int rc;
	if (!j)
		return -EINVAL;
	fputc('\n', j->fp);
	rc = (j->err || j->depth != 0 || ferror(j->fp)) ? -EIO : 0;
	free(j);
	return rc;
}

static void put_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		default:
			if (*p < 0x20)
				fprintf(fp, "\\u%04x", *p);
			else
				fputc(*p, fp);
		}
	}
	fputc('"', fp);
}

static void prefix(struct pcb_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->fp);
	j->first[j->depth] = false;
	if (j->depth > 0 && !j->compact) {
		fputc('\n', j->fp);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->fp);
	}
	if (key) {
		put_str(j->fp, key);
		fputs(j->compact ? ":" : ": ", j->fp);
	}
}

static void open_(struct pcb_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->fp);
	if (j->depth + 1 >= PCB_JSON_MAX_DEPTH) {
		j->err = true;
		return;
	}
	j->depth++;
	j->first[j->depth] = true;
}

static void close_(struct pcb_json *j, char c)
{
	if (j->depth <= 0) {
		j->err = true;
		return;
	}
	bool empty = j->first[j->depth];
	j->depth--;
	if (!empty && !j->compact) {
		fputc('\n', j->fp);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->fp);
	}
	fputc(c, j->fp);
}

void pcb_json_obj_begin(struct pcb_json *j, const char *key) { open_(j, key, '{'); }
void pcb_json_obj_end(struct pcb_json *j) { close_(j, '}'); }
void pcb_json_arr_begin(struct pcb_json *j, const char *key) { open_(j, key, '['); }
void pcb_json_arr_end(struct pcb_json *j) { close_(j, ']'); }

void pcb_json_str(struct pcb_json *j, const char *key, const char *val)
{
	prefix(j, key);
	if (val)
		put_str(j->fp, val);
	else
		fputs("null", j->fp);
}

void pcb_json_u64(struct pcb_json *j, const char *key, uint64_t val)
{
	prefix(j, key);
	fprintf(j->fp, "%" PRIu64, val);
}

void pcb_json_i64(struct pcb_json *j, const char *key, int64_t val)
{
	prefix(j, key);
	fprintf(j->fp, "%" PRId64, val);
}

void pcb_json_dbl(struct pcb_json *j, const char *key, double val)
{
	prefix(j, key);
	if (isfinite(val))
		fprintf(j->fp, "%.9g", val);
	else
		fputs("null", j->fp);
}

void pcb_json_bool(struct pcb_json *j, const char *key, bool val)
{
	prefix(j, key);
	fputs(val ? "true" : "false", j->fp);
}

void pcb_json_null(struct pcb_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->fp);
}

void pcb_json_fields(struct pcb_json *j, const struct pcb_json_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (f[i].type) {
		case PCB_JT_U64: pcb_json_u64(j, f[i].key, f[i].u); break;
		case PCB_JT_I64: pcb_json_i64(j, f[i].key, f[i].i); break;
		case PCB_JT_DBL: pcb_json_dbl(j, f[i].key, f[i].d); break;
		case PCB_JT_STR: pcb_json_str(j, f[i].key, f[i].s); break;
		case PCB_JT_BOOL: pcb_json_bool(j, f[i].key, f[i].b); break;
		}
	}
}

void pcb_json_group(struct pcb_json *j, const char *key, const struct pcb_json_field *f, size_t n)
{
	pcb_json_obj_begin(j, key);
	pcb_json_fields(j, f, n);
	pcb_json_obj_end(j);
}
