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

#endif
