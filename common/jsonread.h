/* Small JSON reader (DOM): enough to read pcbench's own result files back
 * (the bench runner and the analysis).  Strict RFC 8259 syntax; numbers are
 * kept as double and, when integral and exact, as uint64 as well.
 *
 *   char err[128];
 *   struct pcb_jv *root = pcb_jv_parse(text, len, err, sizeof err);
 *   double d;
 *   if (pcb_jv_num(pcb_jv_path(root, "results.time.total_migration_ns"), &d) == 0) ...
 *   pcb_jv_free(root);
 */
#ifndef PCB_JSONREAD_H
#define PCB_JSONREAD_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum pcb_jtype { PCB_J_NULL, PCB_J_BOOL, PCB_J_NUM, PCB_J_STR, PCB_J_ARR, PCB_J_OBJ };

struct pcb_jv {
	enum pcb_jtype type;
	bool b;
	double num;
	char *str;              /* PCB_J_STR: decoded (UTF-8), NUL-terminated */
	size_t n;               /* ARR/OBJ: number of children */
	struct pcb_jv **kids;   /* ARR/OBJ children */
	char **keys;            /* OBJ: keys, parallel to kids */
};

/* Parse len bytes.  NULL on error with "line L col C: reason" in err. */
struct pcb_jv *pcb_jv_parse(const char *text, size_t len, char *err, size_t errlen);
/* Read and parse a whole file.  NULL on error (err names the problem). */
struct pcb_jv *pcb_jv_parse_file(const char *path, char *err, size_t errlen);
void pcb_jv_free(struct pcb_jv *v);

/* Member of an object (NULL if v is not an object or lacks it). */
const struct pcb_jv *pcb_jv_get(const struct pcb_jv *v, const char *key);
/* Dotted path of object members, e.g. "results.faults.latency.p50_ns". */
const struct pcb_jv *pcb_jv_path(const struct pcb_jv *v, const char *path);
/* 0 and *out if v is a number, else -1 (NULL v allowed). */
int pcb_jv_num(const struct pcb_jv *v, double *out);
/* String value or NULL. */
const char *pcb_jv_str(const struct pcb_jv *v);
#endif
