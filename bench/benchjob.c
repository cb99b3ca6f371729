#include "bench/benchjob.h"
#include "common/util.h"
#include "policies/policy.h"
#include "wire/link.h"
#include "workloads/workload.h"
#include <ctype.h>
#include <ini.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options the runner sets itself for every run: not allowed in a job file. */
static const char *const reserved_opts[] = { "json", "timeline", "progress-csv", "policy", "workload", NULL };

static int fail(char *why, size_t whylen, const char *path, unsigned line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int fail(char *why, size_t whylen, const char *path, unsigned line, const char *key, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line && key)
		snprintf(why, whylen, "%s:%u: key '%s': %s", path, line, key, msg);
	else if (line)
		snprintf(why, whylen, "%s:%u: %s", path, line, msg);
	else
		snprintf(why, whylen, "%s: %s", path, msg);
	return PCB_EXIT_DATAERR;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.' && *s != '+')
			return false;
	return true;
}

/* Split a comma/space separated list into out[]; returns count or -1 (too many / too long). */
static int split_list(const char *val, char out[][32], unsigned max, char *bad, size_t badlen)
{
	unsigned n = 0;
	const char *p = val;
	while (*p) {
		while (*p && (isspace((unsigned char)*p) || *p == ','))
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && !isspace((unsigned char)*p) && *p != ',')
			p++;
		size_t len = (size_t)(p - s);
		if (n >= max) {
			snprintf(bad, badlen, "more than %u entries", max);
			return -1;
		}
		if (len >= 32) {
			snprintf(bad, badlen, "entry '%.*s' is too long", (int)len, s);
			return -1;
		}
		memcpy(out[n], s, len);
		out[n][len] = 0;
		for (unsigned k = 0; k < n; k++)
			if (!strcmp(out[k], out[n])) {
				snprintf(bad, badlen, "'%s' is listed twice", out[n]);
				return -1;
			}
		n++;
	}
	return (int)n;
}

/* A pcbench option that takes a value (-v and the flags are not job-file keys). */
static bool is_option(const char *key)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (!strcmp(o->name, key) && o->type != PCB_OPT_FLAG && o->type != PCB_OPT_COUNT)
			return true;
	return false;
}

static int add_opt(struct pcb_job_opt *opts, unsigned *n, const char *key, const char *val, struct pcb_config *check,
		   const char *path, unsigned line, char *why, size_t whylen)
{
	for (const char *const *r = reserved_opts; *r; r++)
		if (!strcmp(*r, key))
			return fail(why, whylen, path, line, key,
				    "set by the bench runner for every run%s",
				    !strcmp(key, "policy") ? " (use 'policies = ...' in [experiment])"
				    : !strcmp(key, "workload") ? " (use 'workloads = ...' in [experiment])" : "");
	if (!is_option(key))
		return fail(why, whylen, path, line, key,
			    "unknown key (matrix keys in [experiment]: name, description, policies, workloads, reps, "
			    "baseline_policy, vary_seed, run_timeout, timeline, faultmap_workload; any other key must be a "
			    "pcbench option, see `pcbench --help`)");
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(opts[i].key, key))
			return fail(why, whylen, path, line, key, "set twice in the same section");
	if (*n >= PCB_JOB_MAX_OPTS)
		return fail(why, whylen, path, line, key, "too many options in one section (max %d)", PCB_JOB_MAX_OPTS);
	if (strlen(val) >= sizeof(opts[0].val))
		return fail(why, whylen, path, line, key, "value too long");
	char reason[512];
	if (pcb_config_set(check, key, val, reason, sizeof(reason)) < 0)
		return fail(why, whylen, path, line, key, "%s", reason);
	snprintf(opts[*n].key, sizeof(opts[0].key), "%s", key);
	snprintf(opts[*n].val, sizeof(opts[0].val), "%s", val);
	(*n)++;
	return 0;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off")) {
		*out = false;
		return true;
	}
	return false;
}

enum section { SEC_NONE, SEC_EXPERIMENT, SEC_LINK, SEC_POLICY, SEC_SWEEP };

/* A key of the [sweep] section: links = BW,RTT ... (whitespace separated); workloads = NAME or
 * NAME:KNOBS ... (whitespace separated; KNOBS is that workload's --workload-opt). */
static int sweep_key(struct pcb_job *job, const char *key, const char *val, const char *path, unsigned line, char *why,
		     size_t whylen)
{
	struct pcb_job_sweep *sw = &job->sweep;
	bool links = !strcmp(key, "links");
	if (!links && strcmp(key, "workloads"))
		return fail(why, whylen, path, line, key, "unknown key in [sweep] (links, workloads)");
	if (links ? sw->nlinks : sw->nworkloads)
		return fail(why, whylen, path, line, key, "set twice in [sweep]");
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", val);
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		unsigned *n = links ? &sw->nlinks : &sw->nworkloads;
		if (*n >= PCB_JOB_MAX_SWEEP || strlen(t) >= (links ? sizeof(sw->links[0]) : sizeof(sw->workloads[0])))
			return fail(why, whylen, path, line, key, "too many or too long entries (max %d)", PCB_JOB_MAX_SWEEP);
		if (links) {
			uint64_t bps, rtt;
			char reason[256];
			if (pcb_link_parse(t, &bps, &rtt, reason, sizeof(reason)) < 0)
				return fail(why, whylen, path, line, key, "%s", reason);
			snprintf(sw->links[(*n)++], sizeof(sw->links[0]), "%s", t);
		} else {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(t, ":"), t);
			if (!pcb_workload_find(name))
				return fail(why, whylen, path, line, key, "unknown workload '%s' (see `pcbench list`)", name);
			snprintf(sw->workloads[(*n)++], sizeof(sw->workloads[0]), "%s", t);
		}
	}
	return 0;
}

/* A key of a [policy NAME] section. */
static int variant_key(struct pcb_job *job, struct pcb_config *scratch, const char *key, const char *val,
		       const char *path, unsigned line, char *why, size_t whylen)
{
	struct pcb_job_variant *v = &job->variants[job->nvariants - 1];
	if (!strcmp(key, "policy")) {
		if (!pcb_policy_find(val) || !strcmp(val, "local"))
			return fail(why, whylen, path, line, key, "unknown policy '%s' (see `pcbench list`; not local)", val);
		snprintf(v->policy, sizeof(v->policy), "%s", val);
		return 0;
	}
	if (!strcmp(key, "record_seed")) {
		if (pcb_parse_u64(val, &v->record_seed) < 0)
			return fail(why, whylen, path, line, key, "invalid value '%s' (want a seed, e.g. 2)", val);
		v->record = true;
		return 0;
	}
	if (!strcmp(key, "record_duration")) {
		uint64_t d;
		if (pcb_parse_duration(val, &d) < 0 || !d || strlen(val) >= sizeof(v->record_duration))
			return fail(why, whylen, path, line, key, "invalid value '%s' (want a duration such as 1s)", val);
		snprintf(v->record_duration, sizeof(v->record_duration), "%s", val);
		return 0;
	}
	*scratch = job->base;
	return add_opt(v->opts, &v->nopts, key, val, scratch, path, line, why, whylen);
}

/* After the whole file: every listed policy is registered or a [policy] section; every
 * section is listed; a replay variant has a trace to replay. */
static int check_policies(struct pcb_job *job, const char *path, unsigned pol_line, char *why, size_t whylen)
{
	for (unsigned i = 0; i < job->npolicies; i++)
		if (!pcb_job_variant_of(job, i) && !pcb_policy_find(job->policies[i]))
			return fail(why, whylen, path, pol_line, "policies",
				    "unknown policy '%s' (see `pcbench list`, or define it in a [policy %s] section)",
				    job->policies[i], job->policies[i]);
	for (unsigned k = 0; k < job->nvariants; k++) {
		struct pcb_job_variant *v = &job->variants[k];
		bool listed = false;
		for (unsigned i = 0; i < job->npolicies; i++)
			listed |= !strcmp(job->policies[i], v->name);
		if (!listed)
			return fail(why, whylen, path, 0, NULL, "[policy %s] is not listed in policies", v->name);
		if (!v->policy[0]) {
			if (!pcb_policy_find(v->name))
				return fail(why, whylen, path, 0, NULL, "[policy %s] needs 'policy = ...' (a registered policy)", v->name);
			_Static_assert(sizeof(v->policy) == sizeof(v->name), "variant name and policy fields differ");
			memcpy(v->policy, v->name, sizeof(v->policy));
		}
		bool has_replay = false;
		for (unsigned o = 0; o < v->nopts; o++)
			has_replay |= !strcmp(v->opts[o].key, "replay");
		if (v->record && strcmp(v->policy, "replay"))
			return fail(why, whylen, path, 0, NULL, "[policy %s]: record_seed is for policy = replay", v->name);
		if (!strcmp(v->policy, "replay") && v->record == has_replay)
			return fail(why, whylen, path, 0, NULL, "[policy %s]: replay needs exactly one of record_seed = N or replay = FILE",
				    v->name);
	}
	return 0;
}

/* The longest physical line of a job file; the length at which libinih may have cut a "[...]"
 * text: r55 copies a section name into a 50-byte buffer (MAX_SECTION in ini.c) and silently
 * truncates a longer one, so a name that long is refused rather than taken cut. */
#define JOB_MAX_LINE 1023
#define INIH_MAX_SECTION 49
#define JOB_LINK_NAME_MAX (INIH_MAX_SECTION - 1 - 5)     /* "[link NAME]" within that */

/* The line source libinih pulls from (its ini_reader): numbers the physical lines, refuses one
 * longer than JOB_MAX_LINE, and after every "[...]" line feeds one synthetic "open = section"
 * line.  Debian's libinih (r55) neither calls the handler at a new section nor passes line
 * numbers, so this is how the handler learns of each section (even one without keys) and of the
 * line a message names. */
struct feed {
	const char *p;                 /* the text not yet read */
	unsigned lineno;               /* number of the physical line last read */
	bool open_next;                /* the line last read was a "[...]" header */
	bool synthetic;                /* the line libinih is parsing is the synthetic one */
	char line[JOB_MAX_LINE + 1];   /* the physical line last read, as written (for messages) */
};

/* What pcb_job_parse carries from line to line. */
struct parse_state {
	struct pcb_job *job;
	const char *path;
	char *why;
	size_t whylen;
	int rc;                        /* the first error (PCB_EXIT_DATAERR) or 0 */
	struct feed feed;
	enum section sec;
	bool seen_exp, seen_pol, seen_wl, seen[16];
	unsigned pol_line;
	struct pcb_config *scratch;     /* link options are validated against a scratch config built on the shared one */
};

static void job_defaults(struct pcb_job *job, const char *path)
{
	memset(job, 0, sizeof(*job));
	snprintf(job->path, sizeof(job->path), "%s", path);
	pcb_config_defaults(&job->base);
	job->reps = 3;
	snprintf(job->timeline, sizeof(job->timeline), "all");
	/* default name: base name of the file without its extension */
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	snprintf(job->name, sizeof(job->name), "%s", b);
	char *dot = strrchr(job->name, '.');
	if (dot && dot != job->name)
		*dot = 0;
}

/* The physical line last read, without surrounding whitespace (for messages). */
static const char *feed_text(struct feed *f)
{
	return trim(f->line);
}

static char *feed_line(char *buf, int size, void *user)
{
	struct parse_state *st = user;
	struct feed *f = &st->feed;
	f->synthetic = f->open_next;
	if (f->open_next) {
		f->open_next = false;
		snprintf(buf, (size_t)size, "open = section\n");
		return buf;
	}
	if (!*f->p)
		return NULL;
	f->lineno++;
	size_t len = strcspn(f->p, "\n");
	if (len > JOB_MAX_LINE || len + 2 > (size_t)size) {     /* the second: libinih's buffer (inih_settings) */
		st->rc = fail(st->why, st->whylen, st->path, f->lineno, NULL, "line too long (max %d characters)", JOB_MAX_LINE);
		return NULL;
	}
	memcpy(f->line, f->p, len);
	f->line[len] = 0;
	f->p += len + (f->p[len] == '\n');
	const char *s = f->line;
	while (isspace((unsigned char)*s))
		s++;
	f->open_next = *s == '[';      /* libinih's own test for a section line */
	snprintf(buf, (size_t)size, "%s\n", f->line);
	return buf;
}

/* libinih ignores text after a header's ']'; pcbench refuses it unless it is a '#' comment. */
static bool header_tail_ok(const char *line)
{
	const char *t = strchr(line, ']') + 1;
	while (isspace((unsigned char)*t))
		t++;
	return !*t || (*t == '#' && isspace((unsigned char)t[-1]));
}

/* A "[...]" line as libinih parsed it: opens [experiment], [link NAME], [policy NAME] or [sweep]. */
static int section_header(struct parse_state *st, const char *section)
{
	struct pcb_job *job = st->job;
	const char *path = st->path;
	char *why = st->why;
	size_t whylen = st->whylen;
	unsigned lineno = st->feed.lineno;
	if (!header_tail_ok(st->feed.line))
		return fail(why, whylen, path, lineno, NULL, "malformed section header '%s' (want [experiment], [link NAME], [policy NAME] or [sweep])",
			    feed_text(&st->feed));
	if (strlen(section) >= INIH_MAX_SECTION)
		return fail(why, whylen, path, lineno, NULL, "section header '%s' too long (at most %d characters between [ and ])",
			    feed_text(&st->feed), INIH_MAX_SECTION - 1);
	char buf[INIH_MAX_SECTION + 1];
	snprintf(buf, sizeof(buf), "%s", section);
	char *hdr = trim(buf);
	if (!strcmp(hdr, "experiment")) {
		if (st->seen_exp)
			return fail(why, whylen, path, lineno, NULL, "[experiment] appears twice");
		st->seen_exp = true;
		st->sec = SEC_EXPERIMENT;
	} else if (!strncmp(hdr, "link", 4) && isspace((unsigned char)hdr[4])) {
		char *name = trim(hdr + 4);
		if (!valid_name(name) || strlen(name) > JOB_LINK_NAME_MAX)
			return fail(why, whylen, path, lineno, NULL, "bad link name '%s' (letters, digits, - _ . +; up to %d characters)", name, JOB_LINK_NAME_MAX);
		for (unsigned i = 0; i < job->nlinks; i++)
			if (!strcmp(job->links[i].name, name))
				return fail(why, whylen, path, lineno, NULL, "[link %s] appears twice", name);
		if (job->nlinks >= PCB_JOB_MAX_LIST)
			return fail(why, whylen, path, lineno, NULL, "too many [link] sections (max %d)", PCB_JOB_MAX_LIST);
		snprintf(job->links[job->nlinks++].name, PCB_JOB_NAME, "%s", name);
		st->sec = SEC_LINK;
	} else if (!strncmp(hdr, "policy", 6) && isspace((unsigned char)hdr[6])) {
		char *name = trim(hdr + 6);
		if (!valid_name(name) || strlen(name) >= sizeof(job->variants[0].name))
			return fail(why, whylen, path, lineno, NULL, "bad policy name '%s' (letters, digits, - _ . +; up to 31 characters)", name);
		for (unsigned i = 0; i < job->nvariants; i++)
			if (!strcmp(job->variants[i].name, name))
				return fail(why, whylen, path, lineno, NULL, "[policy %s] appears twice", name);
		if (job->nvariants >= PCB_JOB_MAX_LIST)
			return fail(why, whylen, path, lineno, NULL, "too many [policy] sections (max %d)", PCB_JOB_MAX_LIST);
		snprintf(job->variants[job->nvariants++].name, sizeof(job->variants[0].name), "%s", name);
		st->sec = SEC_POLICY;
	} else if (!strcmp(hdr, "sweep")) {
		if (st->sec == SEC_SWEEP || job->sweep.nlinks || job->sweep.nworkloads)
			return fail(why, whylen, path, lineno, NULL, "[sweep] appears twice");
		st->sec = SEC_SWEEP;
	} else {
		return fail(why, whylen, path, lineno, NULL, "unknown section [%s] (want [experiment], [link NAME], [policy NAME] or [sweep])", hdr);
	}
	return 0;
}

/* policies = ... or workloads = ... in [experiment]. */
static int experiment_list(struct parse_state *st, bool pol, const char *key, const char *val, unsigned lineno)
{
	struct pcb_job *job = st->job;
	char bad[160];
	int n = split_list(val, pol ? job->policies : job->workloads, PCB_JOB_MAX_LIST, bad, sizeof(bad));
	if (n < 0)
		return fail(st->why, st->whylen, st->path, lineno, key, "%s", bad);
	for (int i = 0; i < n; i++) {
		const char *nm = pol ? job->policies[i] : job->workloads[i];
		if (!pol && !pcb_workload_find(nm))      /* policies: after the file (a [policy] may define one) */
			return fail(st->why, st->whylen, st->path, lineno, key, "unknown workload '%s' (see `pcbench list`)", nm);
	}
	if (pol) {
		st->pol_line = lineno;
		job->npolicies = (unsigned)n;
		st->seen_pol = true;
	} else {
		job->nworkloads = (unsigned)n;
		st->seen_wl = true;
	}
	return 0;
}

/* A key of [experiment]: a matrix key, or else a pcbench option shared by every run. */
static int experiment_key(struct parse_state *st, const char *key, const char *val, unsigned lineno)
{
	struct pcb_job *job = st->job;
	const char *path = st->path;
	char *why = st->why;
	size_t whylen = st->whylen;
	static const char *const mkeys[] = { "name", "description", "policies", "workloads", "reps", "baseline_policy",
					     "vary_seed", "run_timeout", "timeline", "faultmap_workload", NULL };
	int mk = -1;
	for (int i = 0; mkeys[i]; i++)
		if (!strcmp(mkeys[i], key))
			mk = i;
	if (mk < 0)
		return add_opt(job->opts, &job->nopts, key, val, &job->base, path, lineno, why, whylen);
	if (st->seen[mk])
		return fail(why, whylen, path, lineno, key, "set twice in [experiment]");
	st->seen[mk] = true;
	uint64_t u;
	switch (mk) {
	case 0:
		if (!valid_name(val) || strlen(val) >= PCB_JOB_NAME)
			return fail(why, whylen, path, lineno, key, "bad name '%s' (letters, digits, - _ . +; up to %d characters)", val, PCB_JOB_NAME - 1);
		snprintf(job->name, sizeof(job->name), "%s", val);
		break;
	case 1:
		snprintf(job->description, sizeof(job->description), "%s", val);
		break;
	case 2:
	case 3:
		return experiment_list(st, mk == 2, key, val, lineno);
	case 4:
		if (pcb_parse_u64(val, &u) < 0 || u < 1 || u > 1000)
			return fail(why, whylen, path, lineno, key, "invalid value '%s' (want an integer from 1 to 1000)", val);
		job->reps = (unsigned)u;
		break;
	case 5:
		if (!pcb_policy_find(val))
			return fail(why, whylen, path, lineno, key, "unknown policy '%s' (see `pcbench list`)", val);
		snprintf(job->baseline, sizeof(job->baseline), "%s", val);
		break;
	case 6:
		if (!parse_bool(val, &job->vary_seed))
			return fail(why, whylen, path, lineno, key, "invalid value '%s' (want yes or no)", val);
		break;
	case 7:
		if (pcb_parse_duration(val, &u) < 0 || u < PCB_NSEC_PER_SEC || u > 86400 * PCB_NSEC_PER_SEC)
			return fail(why, whylen, path, lineno, key, "invalid value '%s' (want a duration from 1s to 24h, e.g. 120s)", val);
		job->run_timeout_ns = u;
		break;
	case 8:
		if (strcmp(val, "all") && strcmp(val, "first") && strcmp(val, "none"))
			return fail(why, whylen, path, lineno, key, "invalid value '%s' (want all, first or none)", val);
		snprintf(job->timeline, sizeof(job->timeline), "%s", val);
		break;
	case 9:
		if (!pcb_workload_find(val))
			return fail(why, whylen, path, lineno, key, "unknown workload '%s' (see `pcbench list`)", val);
		snprintf(job->faultmap_workload, sizeof(job->faultmap_workload), "%s", val);
		break;
	}
	return 0;
}

/* A "key = value" pair as libinih split it (trimmed, '#' comment removed), routed to the open section. */
static int key_line(struct parse_state *st, const char *key, const char *val)
{
	unsigned lineno = st->feed.lineno;
	const char *text = feed_text(&st->feed);
	if (text[strcspn(text, "=:")] == ':')      /* libinih also splits "key: value"; pcbench wants '=' */
		return fail(st->why, st->whylen, st->path, lineno, NULL, "expected 'key = value', got '%s'", text);
	if (!*key)
		return fail(st->why, st->whylen, st->path, lineno, NULL, "missing key before '='");
	if (!*val)
		return fail(st->why, st->whylen, st->path, lineno, key, "empty value");
	switch (st->sec) {
	case SEC_NONE:
		return fail(st->why, st->whylen, st->path, lineno, key, "outside any section (start the file with [experiment])");
	case SEC_SWEEP:
		return sweep_key(st->job, key, val, st->path, lineno, st->why, st->whylen);
	case SEC_POLICY:
		return variant_key(st->job, st->scratch, key, val, st->path, lineno, st->why, st->whylen);
	case SEC_LINK: {
		struct pcb_job_link *l = &st->job->links[st->job->nlinks - 1];
		*st->scratch = st->job->base;
		return add_opt(l->opts, &l->nopts, key, val, st->scratch, st->path, lineno, st->why, st->whylen);
	}
	case SEC_EXPERIMENT:
		break;
	}
	return experiment_key(st, key, val, lineno);
}

/* libinih's handler: a synthetic line opens the section libinih just parsed, any other is a key. */
static int on_pair(void *user, const char *section, const char *key, const char *val)
{
	struct parse_state *st = user;
	if (!st->rc)
		st->rc = st->feed.synthetic ? section_header(st, section) : key_line(st, key, val);
	return !st->rc;
}

/* A line libinih refused: a "[" line without its ']', or a line with neither '=' nor ':'. */
static int syntax_error(struct parse_state *st)
{
	const char *text = feed_text(&st->feed);
	if (*text == '[')
		return fail(st->why, st->whylen, st->path, st->feed.lineno, NULL,
			    "malformed section header '%s' (want [experiment], [link NAME], [policy NAME] or [sweep])", text);
	return fail(st->why, st->whylen, st->path, st->feed.lineno, NULL, "expected 'key = value', got '%s'", text);
}

/* libinih's syntax, set for pcbench's job files (Debian builds libinih with these as run-time
 * settings): '#' and ';' comment lines, '#' after whitespace ends a line (';' does not: values
 * may hold it), no continuation lines, no byte-order mark, stop at the first error. */
static void inih_settings(void)
{
	static char start_comments[] = ";#", inline_comments[] = "#";
	ini_start_comment_prefixes = start_comments;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_comments;
	ini_allow_multiline = false;
	ini_allow_bom = false;
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;
	ini_use_stack = true;
	ini_max_line = JOB_MAX_LINE + 3;     /* the line, '\n' and '\0' (ini.h: 3 more than the longest) */
}

/* The runs on a link naming a long-running source (source = HOST:PORT) are `pcbench dest`
 * runs: every option they get must be one `pcbench dest` takes. */
static int check_dest(struct parse_state *st, const struct pcb_job_link *l)
{
	const struct pcb_job *job = st->job;
	const struct { unsigned n; const struct pcb_job_opt *o; } sets[] = { { job->nopts, job->opts }, { l->nopts, l->opts } };
	char reason[512];
	for (unsigned s = 0; s < 2 + job->nvariants; s++) {
		unsigned n = s < 2 ? sets[s].n : job->variants[s - 2].nopts;
		const struct pcb_job_opt *o = s < 2 ? sets[s].o : job->variants[s - 2].opts;
		for (unsigned k = 0; k < n; k++)
			if (pcb_cmd_set(PCB_CMD_DEST, st->scratch, o[k].key, o[k].val, reason, sizeof(reason)) < 0)
				return fail(st->why, st->whylen, st->path, 0, NULL,
					    "[link %s]: key '%s': does not apply to `pcbench dest`, which the runs on a link with "
					    "source = HOST:PORT are (see pcbench dest --help)", l->name, o[k].key);
	}
	return 0;
}

/* After the whole file: required keys, cross-references, the default link, and every link's
 * options re-checked against the final shared options. */
static int check_job(struct parse_state *st)
{
	struct pcb_job *job = st->job;
	const char *path = st->path;
	char *why = st->why;
	size_t whylen = st->whylen;
	int rc;
	if (!st->seen_exp)
		return fail(why, whylen, path, 0, NULL, "no [experiment] section");
	if (!st->seen_pol || !job->npolicies)
		return fail(why, whylen, path, 0, NULL, "[experiment] needs 'policies = ...' (see `pcbench list`)");
	if (!st->seen_wl || !job->nworkloads)
		return fail(why, whylen, path, 0, NULL, "[experiment] needs 'workloads = ...' (see `pcbench list`)");
	if ((rc = check_policies(job, path, st->pol_line, why, whylen)) != 0)
		return rc;
	for (unsigned i = 0; i < job->npolicies; i++)
		if (job->baseline[0] && !strcmp(job->policies[i], job->baseline))
			return fail(why, whylen, path, 0, NULL, "baseline_policy '%s' is also listed in policies", job->baseline);
	if (job->faultmap_workload[0]) {
		bool found = false;
		for (unsigned i = 0; i < job->nworkloads; i++)
			found |= !strcmp(job->workloads[i], job->faultmap_workload);
		if (!found)
			return fail(why, whylen, path, 0, NULL, "faultmap_workload '%s' is not one of the workloads", job->faultmap_workload);
	}
	if (!!job->sweep.nlinks != !!job->sweep.nworkloads)
		return fail(why, whylen, path, 0, NULL, "[sweep] needs both links = ... and workloads = ...");
	if (!job->nlinks) {
		snprintf(job->links[0].name, PCB_JOB_NAME, "loopback");
		job->nlinks = 1;
	}
	/* a link option that was checked against an earlier base: re-check against the final one */
	for (unsigned l = 0; l < job->nlinks; l++) {
		*st->scratch = job->base;
		for (unsigned k = 0; k < job->links[l].nopts; k++) {
			char reason[512];
			if (pcb_config_set(st->scratch, job->links[l].opts[k].key, job->links[l].opts[k].val, reason, sizeof(reason)) < 0)
				return fail(why, whylen, path, 0, NULL, "[link %s] %s", job->links[l].name, reason);
		}
		if (!st->scratch->duration_ns && !st->scratch->ops)
			return fail(why, whylen, path, 0, NULL, "[link %s]: duration 0 needs ops to bound each run", job->links[l].name);
		if (st->scratch->source[0] && (rc = check_dest(st, &job->links[l])) != 0)
			return rc;
	}
	return 0;
}

int pcb_job_parse(const char *path, const char *text, struct pcb_job *job, char *why, size_t whylen)
{
	job_defaults(job, path);
	struct parse_state st = { .job = job, .path = path, .why = why, .whylen = whylen, .sec = SEC_NONE };
	st.feed.p = text;
	st.scratch = malloc(sizeof(*st.scratch));
	if (!st.scratch)
		return fail(why, whylen, path, 0, NULL, "out of memory");
	inih_settings();
	int line = ini_parse_stream(feed_line, &st, on_pair, &st);
	if (!st.rc && line > 0)
		st.rc = syntax_error(&st);
	else if (!st.rc && line < 0)
		st.rc = fail(why, whylen, path, 0, NULL, "libinih failed (%d)", line);
	if (!st.rc)
		st.rc = check_job(&st);
	free(st.scratch);
	return st.rc;
}

int pcb_job_load(const char *path, struct pcb_job *job, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read job file '%s': %s", path, strerror(errno));
		return errno == ENOENT ? PCB_EXIT_USAGE : PCB_EXIT_OSERR;
	}
	char *buf = malloc(1 << 20);
	if (!buf) {
		fclose(f);
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	bool big = !feof(f) && !ferror(f);
	bool err = ferror(f);
	fclose(f);
	if (err || big) {
		free(buf);
		snprintf(why, whylen, "%s: %s", path, err ? "read error" : "larger than 1 MiB");
		return err ? PCB_EXIT_OSERR : PCB_EXIT_DATAERR;
	}
	buf[n] = 0;
	if (strlen(buf) != n) {
		free(buf);
		snprintf(why, whylen, "%s: contains a NUL byte (not a text file)", path);
		return PCB_EXIT_DATAERR;
	}
	int rc = pcb_job_parse(path, buf, job, why, whylen);
	free(buf);
	return rc;
}

unsigned pcb_job_nruns(const struct pcb_job *job)
{
	unsigned cells = job->nlinks * job->nworkloads * job->npolicies;
	if (job->baseline[0])
		cells += job->nworkloads;
	return cells * job->reps;
}

const char *pcb_job_policy_name(const struct pcb_job *job, unsigned p)
{
	return p < job->npolicies ? job->policies[p] : job->baseline;
}

const struct pcb_job_variant *pcb_job_variant_of(const struct pcb_job *job, unsigned p)
{
	for (unsigned k = 0; p < job->npolicies && k < job->nvariants; k++)
		if (!strcmp(job->variants[k].name, job->policies[p]))
			return &job->variants[k];
	return NULL;
}

const char *pcb_job_policy_real(const struct pcb_job *job, unsigned p)
{
	const struct pcb_job_variant *v = pcb_job_variant_of(job, p);
	return v ? v->policy : pcb_job_policy_name(job, p);
}

void pcb_job_trace_path(const struct pcb_job *job, const struct pcb_job_variant *v, unsigned w, const char *dir,
			char *buf, size_t len)
{
	snprintf(buf, len, "%s/traces/%s-seed%llu.trace", dir, job->workloads[w], (unsigned long long)v->record_seed);
}

void pcb_job_run_at(const struct pcb_job *job, unsigned i, struct pcb_job_run *r)
{
	unsigned per_rep = pcb_job_nruns(job) / job->reps;
	unsigned per_link = job->nworkloads * job->npolicies;
	memset(r, 0, sizeof(*r));
	r->rep = i / per_rep;
	unsigned k = i % per_rep;
	if (k < job->nlinks * per_link) {
		r->link = k / per_link;
		r->workload = (k % per_link) / job->npolicies;
		r->policy = k % job->npolicies;
	} else {
		k -= job->nlinks * per_link;     /* baseline: link 0, one per workload */
		r->link = 0;
		r->workload = k;
		r->policy = job->npolicies;
	}
	snprintf(r->id, sizeof(r->id), "%s-%s-%s-r%u", pcb_job_policy_name(job, r->policy), job->workloads[r->workload],
		 job->links[r->link].name, r->rep + 1);
}

uint64_t pcb_job_seed(const struct pcb_job *job, const struct pcb_job_run *r)
{
	return job->base.seed + (job->vary_seed ? r->rep : 0);
}
