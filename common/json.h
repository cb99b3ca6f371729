/* Minimal streaming JSON writer: correct escaping, commas and nesting handled
 * by the writer, so callers only say what they mean.
 *
 *   struct pcb_json *j = pcb_json_open(fp);
 *   pcb_json_obj_begin(j, NULL);
 *   pcb_json_u64(j, "pages", 12);
 *   pcb_json_obj_begin(j, "system"); ... pcb_json_obj_end(j);
 *   pcb_json_obj_end(j);
 *   pcb_json_close(j);          // writes a final newline, returns 0 or -errno
 *
 * A NULL key is used for array elements and the top-level value.
 */
#ifndef PCB_JSON_H
#define PCB_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

struct pcb_json;

struct pcb_json *pcb_json_open(FILE *fp);
/* The same on one line (JSON lines: one value per line). */
struct pcb_json *pcb_json_open_compact(FILE *fp);
int pcb_json_close(struct pcb_json *j);

void pcb_json_obj_begin(struct pcb_json *j, const char *key);
void pcb_json_obj_end(struct pcb_json *j);
void pcb_json_arr_begin(struct pcb_json *j, const char *key);
void pcb_json_arr_end(struct pcb_json *j);

void pcb_json_str(struct pcb_json *j, const char *key, const char *val); /* NULL val -> null */
void pcb_json_u64(struct pcb_json *j, const char *key, uint64_t val);
void pcb_json_i64(struct pcb_json *j, const char *key, int64_t val);
void pcb_json_dbl(struct pcb_json *j, const char *key, double val);  /* non-finite -> null */
void pcb_json_bool(struct pcb_json *j, const char *key, bool val);
void pcb_json_null(struct pcb_json *j, const char *key);

/* A group of named values written in order, for the {name: value, ...} blocks
 * reports repeat: a table instead of one call a member.
 *
 *   PCB_JSON_GROUP(j, "pages", PCB_JU64("total", n), PCB_JDBL("share", x));
 *
 * writes "pages": {"total": n, "share": x}; PCB_JSON_FIELDS writes the members
 * into the object already open. */
enum pcb_json_type { PCB_JT_U64, PCB_JT_I64, PCB_JT_DBL, PCB_JT_STR, PCB_JT_BOOL };
struct pcb_json_field {
	const char *key;
	enum pcb_json_type type;
	union {
		uint64_t u;
		int64_t i;
		double d;
		const char *s;
		bool b;
	};
};
#define PCB_JU64(k, v) { .key = (k), .type = PCB_JT_U64, .u = (v) }
#define PCB_JI64(k, v) { .key = (k), .type = PCB_JT_I64, .i = (v) }
#define PCB_JDBL(k, v) { .key = (k), .type = PCB_JT_DBL, .d = (v) }
#define PCB_JSTR(k, v) { .key = (k), .type = PCB_JT_STR, .s = (v) }
#define PCB_JBOOL(k, v) { .key = (k), .type = PCB_JT_BOOL, .b = (v) }

void pcb_json_fields(struct pcb_json *j, const struct pcb_json_field *f, size_t n);
/* An object KEY (NULL: an array element) holding the fields. */
void pcb_json_group(struct pcb_json *j, const char *key, const struct pcb_json_field *f, size_t n);

#define PCB_JSON_FIELDS(j, ...) do {                                                      \
	const struct pcb_json_field pcb_jf_[] = { __VA_ARGS__ };                          \
	pcb_json_fields((j), pcb_jf_, sizeof(pcb_jf_) / sizeof(pcb_jf_[0]));              \
} while (0)
#define PCB_JSON_GROUP(j, key, ...) do {                                                  \
	const struct pcb_json_field pcb_jf_[] = { __VA_ARGS__ };                          \
	pcb_json_group((j), (key), pcb_jf_, sizeof(pcb_jf_) / sizeof(pcb_jf_[0]));        \
} while (0)

#endif
