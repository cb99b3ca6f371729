/* The policy registry: add a policy by writing policies/NAME.c that
 * defines `const struct pcb_policy_ops pcb_policy_NAME` and listing it here. */
#include "policies/policy.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define PCB_POLICY_LIST(X) \
	X(demand)          \
	X(sequential)      \
	X(qemu)            \
	X(pivot)           \
	X(trend)           \
	X(replay)          \
	X(criu)            \
	X(local)

#define DECLARE(n) extern const struct pcb_policy_ops pcb_policy_##n;
PCB_POLICY_LIST(DECLARE)
#undef DECLARE

#define ENTRY(n) &pcb_policy_##n,
const struct pcb_policy_ops *const pcb_policies[] = { PCB_POLICY_LIST(ENTRY) NULL };
#undef ENTRY

const struct pcb_policy_ops *pcb_policy_find(const char *name)
{
	for (unsigned i = 0; pcb_policies[i]; i++)
		if (!strcmp(pcb_policies[i]->name, name))
			return pcb_policies[i];
	return NULL;
}

int pcb_policy_check(const struct pcb_policy_ops *ops, char *why, size_t whylen)
{
	if (!ops) {
		snprintf(why, whylen, "no such policy");
		return -1;
	}
	if (ops->abi != PCB_POLICY_ABI) {
		snprintf(why, whylen, "policy %s has ABI %u, this build wants %u", ops->name, ops->abi, PCB_POLICY_ABI);
		return -1;
	}
	if (!ops->name || !ops->help) {
		snprintf(why, whylen, "policy without a name or help line");
		return -1;
	}
	if (ops->end != PCB_POLICY_DEST && ops->end != PCB_POLICY_SOURCE) {
		snprintf(why, whylen, "policy %s has an invalid end %d (want PCB_POLICY_DEST or PCB_POLICY_SOURCE)", ops->name,
			 (int)ops->end);
		return -1;
	}
	if (ops->background && !ops->next_batch) {
		snprintf(why, whylen, "policy %s pulls in the background but has no next_batch hook", ops->name);
		return -1;
	}
	return 0;
}

/* Shared objects stay loaded for the life of the process (a forked pager
 * process keeps the mapping). */
static const struct pcb_policy_ops *policy_dlopen(const char *path, char *why, size_t whylen)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, whylen, "invalid value for --policy: '%s' cannot be loaded: %s", path, dlerror());
		return NULL;
	}
	const unsigned *abi = dlsym(h, PCB_POLICY_SO_ABI);
	const struct pcb_policy_ops *ops = dlsym(h, PCB_POLICY_SO_OPS);
	if (!abi || !ops) {
		snprintf(why, whylen, "invalid value for --policy: '%s' does not export %s and %s (see docs/writing-a-policy.md)",
			 path, PCB_POLICY_SO_ABI, PCB_POLICY_SO_OPS);
		dlclose(h);
		return NULL;
	}
	if (*abi != PCB_POLICY_ABI || ops->abi != PCB_POLICY_ABI) {
		snprintf(why, whylen, "invalid value for --policy: '%s' was built for policy ABI %u, this pcbench wants %u "
			 "(rebuild it against policies/policy.h)", path, *abi != PCB_POLICY_ABI ? *abi : ops->abi, PCB_POLICY_ABI);
		dlclose(h);
		return NULL;
	}
	char w[256];
	if (pcb_policy_check(ops, w, sizeof(w)) < 0) {
		snprintf(why, whylen, "invalid value for --policy: '%s': %s", path, w);
		dlclose(h);
		return NULL;
	}
	if (pcb_policy_find(ops->name) || !strcmp(ops->name, "all")) {
		snprintf(why, whylen, "invalid value for --policy: '%s' calls itself '%s', a built-in policy's name", path,
			 ops->name);
		dlclose(h);
		return NULL;
	}
	return ops;
}

const struct pcb_policy_ops *pcb_policy_resolve(const char *name, char *why, size_t whylen)
{
	if (strchr(name, '/'))
		return policy_dlopen(name, why, whylen);
	const struct pcb_policy_ops *ops = pcb_policy_find(name);
	if (!ops)
		snprintf(why, whylen, "invalid value for --policy: unknown policy '%s' (see `pcbench list`, or give ./path/to/policy.so)",
			 name);
	return ops;
}

const char *pcb_policy_end_name(enum pcb_policy_end e)
{
	return e == PCB_POLICY_SOURCE ? "source" : "destination";
}

int pcb_policy_end_parse(const struct pcb_policy_ops *ops, const char *s, enum pcb_policy_end *out, char *why,
			 size_t whylen)
{
	if (!s || !s[0])
		*out = ops->end;
	else if (!strcmp(s, "source"))
		*out = PCB_POLICY_SOURCE;
	else if (!strcmp(s, "destination"))
		*out = PCB_POLICY_DEST;
	else {
		snprintf(why, whylen, "invalid value for --policy-end: '%s' (want source or destination)", s);
		return -1;
	}
	if (*out == PCB_POLICY_SOURCE && !ops->background) {
		snprintf(why, whylen, "invalid value for --policy-end: 'source' (policy %s pulls nothing in the background)",
			 ops->name);
		return -1;
	}
	return 0;
}

int pcb_policy_transport(const struct pcb_policy_ops *ops, const struct pcb_policy *opts, const char *end_opt,
			 enum pcb_policy_end *end, unsigned *channels, char *why, size_t whylen)
{
	if (pcb_policy_end_parse(ops, strcmp(end_opt, "auto") ? end_opt : "", end, why, whylen) < 0)
		return -1;
	unsigned want = 0;
	if (ops->channels) {
		struct pcb_policy p = *opts;
		p.ops = ops;
		want = ops->channels(&p);
	}
	if (!*channels) {
		*channels = want ? want : 2;
	} else if (want && want != *channels) {
		char kv[128] = "";
		for (unsigned i = 0, off = 0; i < opts->nopts && off < sizeof(kv); i++)
			off += (unsigned)snprintf(kv + off, sizeof(kv) - off, "%s%s=%s", i ? "," : "", opts->opts[i].key,
						  opts->opts[i].val);
		snprintf(why, whylen, "invalid value for --channels: %u (policy %s with --policy-opt '%s' uses %u connection%s; "
			 "leave --channels out, or change the policy's knobs)", *channels, ops->name, kv, want,
			 want == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

static struct pcb_knob_owner owner(const struct pcb_policy_ops *ops)
{
	return (struct pcb_knob_owner){ "--policy-opt", "policy", ops->name, ops->knobs };
}

int pcb_policy_parse_opts(struct pcb_policy *p, const struct pcb_policy_ops *ops, const char *s, char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(ops);
	return pcb_knobs_parse(&o, s, p->opts, &p->nopts, why, whylen);
}

int pcb_policy_open(struct pcb_policy *p, const struct pcb_policy_ops *ops, struct pcb_pagestate *ps,
		    uint64_t npages, unsigned unit_pages, char *why, size_t whylen)
{
	if (pcb_policy_check(ops, why, whylen) < 0)
		return -1;
	p->ops = ops;
	p->ps = ps;
	p->npages = npages;
	p->unit_pages = unit_pages ? unit_pages : 1;
	p->priv = NULL;
	const char *orc = pcb_knobs_get(ops->knobs, p->opts, p->nopts, "oracle");
	if (orc && strcmp(orc, "none") && strcmp(orc, "first-touch")) {
		snprintf(why, whylen, "invalid value for policy option oracle: '%s' (want none or first-touch)", orc);
		p->ops = NULL;
		return -1;
	}
	int rc = ops->init ? ops->init(p, why, whylen) : 0;
	if (rc < 0) {
		if (!why[0])
			snprintf(why, whylen, "policy %s failed to initialise", ops->name);
		p->ops = NULL;
		return rc;
	}
	return 0;
}

int pcb_policy_replay_file(struct pcb_policy *p, const struct pcb_policy_ops *ops, const char *file, char *why,
			   size_t whylen)
{
	if (strcmp(ops->name, "replay")) {
		snprintf(why, whylen, "invalid value for --replay: '%s' (only --policy=replay replays a trace, not %s)", file,
			 ops->name);
		return -1;
	}
	for (unsigned i = 0; i < p->nopts; i++)
		if (!strcmp(p->opts[i].key, "file")) {
			snprintf(why, whylen, "invalid value for --replay: '%s' (the trace is also given as --policy-opt file=%s)",
				 file, p->opts[i].val);
			return -1;
		}
	if (p->nopts == PCB_KNOBS_MAX || strlen(file) >= sizeof(p->opts[0].val)) {
		snprintf(why, whylen, "invalid value for --replay: '%s' (path too long or too many policy options)", file);
		return -1;
	}
	snprintf(p->opts[p->nopts].key, sizeof(p->opts[0].key), "file");
	snprintf(p->opts[p->nopts].val, sizeof(p->opts[0].val), "%s", file);
	p->nopts++;
	return 0;
}

void pcb_policy_close(struct pcb_policy *p)
{
	if (p->ops && p->ops->fini)
		p->ops->fini(p);
	p->ops = NULL;
}

bool pcb_policy_oracle_first_touch(const struct pcb_policy_ops *ops, const struct pcb_policy *p)
{
	const char *v = pcb_knobs_get(ops->knobs, p->opts, p->nopts, "oracle");
	return v && !strcmp(v, "first-touch");
}

const char *pcb_policy_opt(const struct pcb_policy *p, const char *key)
{
	return pcb_knobs_get(p->ops->knobs, p->opts, p->nopts, key);
}

int pcb_policy_opt_u64(const struct pcb_policy *p, const char *key, uint64_t min, uint64_t max, uint64_t *out,
		       char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(p->ops);
	return pcb_knobs_u64(&o, p->opts, p->nopts, key, min, max, out, why, whylen);
}

int pcb_policy_opt_dbl(const struct pcb_policy *p, const char *key, double min, double max, double *out,
		       char *why, size_t whylen)
{
	struct pcb_knob_owner o = owner(p->ops);
	return pcb_knobs_dbl(&o, p->opts, p->nopts, key, min, max, out, why, whylen);
}
