/* Named knobs of a pluggable component (a workload's --workload-opt, a
 * policy's --policy-opt): a table of keys with defaults and help, and the
 * parsed "key=value[,key=value]" string.  Unknown keys, repeated keys and
 * out-of-range values are refused with one line naming them. */
#ifndef PCB_KNOBS_H
#define PCB_KNOBS_H
#include <stddef.h>
#include <stdint.h>

#define PCB_KNOBS_MAX 16

/* One knob: key, default (as typed), one line of help.  Tables end with a NULL key. */
struct pcb_knob {
	const char *key;
	const char *def;
	const char *help;
};

struct pcb_kv {
	char key[32];
	char val[224];
};

/* Who the knobs belong to, for messages: e.g. { "--workload-opt", "workload", "kv", table }. */
struct pcb_knob_owner {
	const char *option;          /* "--workload-opt" */
	const char *kind;            /* "workload" */
	const char *name;            /* "kv" */
	const struct pcb_knob *knobs;   /* NULL = none */
};

/* Parse s into opts (at most PCB_KNOBS_MAX), *n set to the count.  0, or -1 with a one-line reason. */
int pcb_knobs_parse(const struct pcb_knob_owner *o, const char *s, struct pcb_kv *opts, unsigned *n,
		    char *why, size_t whylen);
const struct pcb_knob *pcb_knob_find(const struct pcb_knob *knobs, const char *key);
/* The value as typed, else the knob's default; NULL for a key the table lacks. */
const char *pcb_knobs_get(const struct pcb_knob *knobs, const struct pcb_kv *opts, unsigned n, const char *key);
/* Typed getters: 0, or -1 with "invalid value for KIND option KEY: 'VAL' (...)". */
int pcb_knobs_u64(const struct pcb_knob_owner *o, const struct pcb_kv *opts, unsigned n, const char *key,
		  uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen);
int pcb_knobs_dbl(const struct pcb_knob_owner *o, const struct pcb_kv *opts, unsigned n, const char *key,
		  double min, double max, double *out, char *why, size_t whylen);
#endif
