#include "common/knobs.h"
#include "common/util.h"
#include <stdio.h>
#include <string.h>

const struct pcb_knob *pcb_knob_find(const struct pcb_knob *knobs, const char *key)
{
	for (const struct pcb_knob *k = knobs; k && k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

int pcb_knobs_parse(const struct pcb_knob_owner *o, const char *s, struct pcb_kv *opts, unsigned *n,
		    char *why, size_t whylen)
{
	*n = 0;
	if (!s || !*s)
		return 0;
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (!eq || eq == p) {
			snprintf(why, whylen, "invalid value for %s: '%.*s' (want key=value[,key=value])", o->option, (int)len, p);
			return -1;
		}
		if (*n == PCB_KNOBS_MAX) {
			snprintf(why, whylen, "invalid value for %s: more than %d options", o->option, PCB_KNOBS_MAX);
			return -1;
		}
		size_t kl = (size_t)(eq - p), vl = len - kl - 1;
		struct pcb_kv *kv = &opts[*n];
		if (kl >= sizeof(kv->key) || vl >= sizeof(kv->val)) {
			snprintf(why, whylen, "invalid value for %s: '%.*s' is too long", o->option, (int)len, p);
			return -1;
		}
		memcpy(kv->key, p, kl);
		kv->key[kl] = 0;
		memcpy(kv->val, eq + 1, vl);
		kv->val[vl] = 0;
		if (!pcb_knob_find(o->knobs, kv->key)) {
			char keys[256] = "";
			for (const struct pcb_knob *k = o->knobs; k && k->key; k++)
				snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", keys[0] ? ", " : "", k->key);
			snprintf(why, whylen, "invalid value for %s: %s %s has no option '%s' (it has: %s)", o->option,
				 o->kind, o->name, kv->key, keys[0] ? keys : "none");
			return -1;
		}
		for (unsigned i = 0; i < *n; i++)
			if (!strcmp(opts[i].key, kv->key)) {
				snprintf(why, whylen, "invalid value for %s: option '%s' given twice", o->option, kv->key);
				return -1;
			}
		(*n)++;
		p = end ? end + 1 : p + len;
	}
	return 0;
}

const char *pcb_knobs_get(const struct pcb_knob *knobs, const struct pcb_kv *opts, unsigned n, const char *key)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(opts[i].key, key))
			return opts[i].val;
	const struct pcb_knob *k = pcb_knob_find(knobs, key);
	return k ? k->def : NULL;
}

int pcb_knobs_u64(const struct pcb_knob_owner *o, const struct pcb_kv *opts, unsigned n, const char *key,
		  uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	const char *v = pcb_knobs_get(o->knobs, opts, n, key);
	uint64_t u;
	if (!v || pcb_parse_u64(v, &u) < 0 || u < min || u > max) {
		snprintf(why, whylen, "invalid value for %s option %s: '%s' (want an integer from %llu to %llu)", o->kind, key,
			 v ? v : "", (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = u;
	return 0;
}

int pcb_knobs_dbl(const struct pcb_knob_owner *o, const struct pcb_kv *opts, unsigned n, const char *key,
		  double min, double max, double *out, char *why, size_t whylen)
{
	const char *v = pcb_knobs_get(o->knobs, opts, n, key);
	double d;
	if (!v || pcb_parse_double(v, &d) < 0 || !(d >= min && d <= max)) {
		snprintf(why, whylen, "invalid value for %s option %s: '%s' (want a number from %g to %g)", o->kind, key,
			 v ? v : "", min, max);
		return -1;
	}
	*out = d;
	return 0;
}
