/* The workload registry: add a workload by writing workloads/NAME.c that
 * defines `const struct pcb_workload_ops pcb_workload_NAME` and listing it
 * here (a name with characters C identifiers lack, e.g. scan+hot, is set in
 * the ops' name field; the identifier here is only the symbol). */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_WORKLOAD_LIST(X) \
	X(seq)               \
	X(random)            \
	X(zipf)              \
	X(stride)            \
	X(chase)             \
	X(kv)                \
	X(phase)             \
	X(scanhot)           \
	X(idle)              \
	X(trace)

#define DECLARE(n) extern const struct pcb_workload_ops pcb_workload_##n;
PCB_WORKLOAD_LIST(DECLARE)
#undef DECLARE

#define ENTRY(n) &pcb_workload_##n,
const struct pcb_workload_ops *const pcb_workloads[] = { PCB_WORKLOAD_LIST(ENTRY) NULL };
#undef ENTRY

const struct pcb_workload_ops *pcb_workload_find(const char *name)
{
	for (unsigned i = 0; pcb_workloads[i]; i++)
		if (!strcmp(pcb_workloads[i]->name, name))
			return pcb_workloads[i];
	return NULL;
}

int pcb_workload_check(const struct pcb_workload_ops *ops, char *why, size_t whylen)
{
	if (!ops) {
		snprintf(why, whylen, "no such workload");
		return -1;
	}
	if (ops->abi != PCB_WORKLOAD_ABI) {
		snprintf(why, whylen, "workload %s has ABI %u, this build wants %u", ops->name, ops->abi, PCB_WORKLOAD_ABI);
		return -1;
	}
	if (!ops->name || !ops->help || !ops->thread_init || !ops->next) {
		snprintf(why, whylen, "workload %s lacks a name, help, thread_init or next hook", ops->name ? ops->name : "?");
		return -1;
	}
	return 0;
}

static const struct pcb_wl_knob *find_knob(const struct pcb_workload_ops *ops, const char *key)
{
	for (const struct pcb_wl_knob *k = ops->knobs; k && k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

int pcb_wl_parse_opts(const struct pcb_workload_ops *ops, const char *s, struct pcb_wl_params *prm,
		      char *why, size_t whylen)
{
	prm->nopts = 0;
	if (!s || !*s)
		return 0;
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (!eq || eq == p) {
			snprintf(why, whylen, "invalid value for --workload-opt: '%.*s' (want key=value[,key=value])", (int)len, p);
			return -1;
		}
		size_t kl = (size_t)(eq - p), vl = len - kl - 1;
		struct pcb_wl_kv *kv = &prm->opts[prm->nopts];
		if (kl >= sizeof(kv->key) || vl >= sizeof(kv->val)) {
			snprintf(why, whylen, "invalid value for --workload-opt: '%.*s' is too long", (int)len, p);
			return -1;
		}
		memcpy(kv->key, p, kl);
		kv->key[kl] = 0;
		memcpy(kv->val, eq + 1, vl);
		kv->val[vl] = 0;
		if (!find_knob(ops, kv->key)) {
			char keys[256] = "";
			for (const struct pcb_wl_knob *k = ops->knobs; k && k->key; k++)
				snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", keys[0] ? ", " : "", k->key);
			snprintf(why, whylen, "invalid value for --workload-opt: workload %s has no option '%s' (it has: %s)",
				 ops->name, kv->key, keys[0] ? keys : "none");
			return -1;
		}
		for (unsigned i = 0; i < prm->nopts; i++)
			if (!strcmp(prm->opts[i].key, kv->key)) {
				snprintf(why, whylen, "invalid value for --workload-opt: option '%s' given twice", kv->key);
				return -1;
			}
		if (++prm->nopts == PCB_WL_MAX_OPTS && end) {
			snprintf(why, whylen, "invalid value for --workload-opt: more than %d options", PCB_WL_MAX_OPTS);
			return -1;
		}
		p = end ? end + 1 : p + len;
	}
	return 0;
}

const char *pcb_wl_opt(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key)
{
	for (unsigned i = 0; i < prm->nopts; i++)
		if (!strcmp(prm->opts[i].key, key))
			return prm->opts[i].val;
	const struct pcb_wl_knob *k = find_knob(ops, key);
	return k ? k->def : NULL;
}

int pcb_wl_opt_u64(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	const char *v = pcb_wl_opt(ops, prm, key);
	uint64_t u;
	if (!v || pcb_parse_u64(v, &u) < 0 || u < min || u > max) {
		snprintf(why, whylen, "invalid value for workload option %s: '%s' (want an integer from %llu to %llu)", key,
			 v ? v : "", (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = u;
	return 0;
}

int pcb_wl_opt_dbl(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   double min, double max, double *out, char *why, size_t whylen)
{
	const char *v = pcb_wl_opt(ops, prm, key);
	double d;
	if (!v || pcb_parse_double(v, &d) < 0 || !(d >= min && d <= max)) {
		snprintf(why, whylen, "invalid value for workload option %s: '%s' (want a number from %g to %g)", key,
			 v ? v : "", min, max);
		return -1;
	}
	*out = d;
	return 0;
}
