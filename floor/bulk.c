/* `pcbench floor`, the bulk pull: its rows (bare floors and pcbench on every
 * install path, placement and image), paired ratios, report and JSON. */
#include "floor/internal.h"

static void zero_ratios(const struct bulk_var *var, unsigned nvar, double (*g)[16], unsigned reps,
			struct zero_ratio *zr, unsigned *nzr)
{
	*nzr = 0;
	for (unsigned k = 0; k < nvar; k++) {
		if (var[k].kind != B_PCB_ZERO)
			continue;
		for (unsigned b = 0; b < nvar; b++) {
			if (var[b].kind != B_PCB || strcmp(var[b].install, var[k].install) || var[b].batch != var[k].batch)
				continue;
			double r[16];
			for (unsigned i = 0; i < reps; i++)
				r[i] = g[b][i] > 0 ? g[k][i] / g[b][i] : 0;
			struct zero_ratio *z = &zr[(*nzr)++];
			z->install = var[k].install;
			z->med = floor_median(r, reps, &z->min, &z->max);
		}
	}
}

static bool zero_print(const struct zero_ratio *zr, unsigned nzr, const char *place, const char *model)
{
	bool met = true;
	for (unsigned i = 0; i < nzr; i++) {
		printf("  %-6s zero pages, --install=%s: default image (%.0f%% zero pages, --zero-model=%s) / zero-free image, "
		       "paired by repetition: %.3f [%.3f-%.3f] (target >= 0.9)\n", place, zr[i].install, FLOOR_ZERO_FRACTION * 100,
		       model, zr[i].med, zr[i].min, zr[i].max);
		met = met && zr[i].med >= 0.9;
	}
	return met;
}


/* The bulk variants, in the order of the table: repetitions outermost, then placement, then these. */
static const struct bulk_var bulk_vars[] = {
	{ B_TRANSPORT, "transport", NULL, 0 },
	{ B_SRCGEN, "source_gen", NULL, 0 },
	{ B_INSTALL, "install", "copy", PCB_MAX_RUN_PAGES },
	{ B_INSTALL, "install", "move", PCB_CHUNK_PAGES },
	{ B_INSTALL, "install", "continue", PCB_MAX_RUN_PAGES },
	{ B_BARE, "bare_copy", "copy", PCB_MAX_RUN_PAGES },
	{ B_BARE_MEM, "bare_mem", "copy", PCB_MAX_RUN_PAGES },
	{ B_BARE_SPLICE, "bare_splice", "copy", PCB_MAX_RUN_PAGES },
	{ B_PIPE, "bare_pipe", "copy", PCB_MAX_RUN_PAGES },
	{ B_PIPE_SPLICE, "bare_pipe_splice", "copy", PCB_MAX_RUN_PAGES },
	{ B_PCB, "pcbench", "copy", 1 }, { B_PCB, "pcbench", "copy", PCB_MAX_RUN_PAGES },
	{ B_PCB, "pcbench", "move", 1 }, { B_PCB, "pcbench", "move", PCB_CHUNK_PAGES },
	{ B_PCB, "pcbench", "continue", 1 }, { B_PCB, "pcbench", "continue", PCB_MAX_RUN_PAGES },
	{ B_PCB_PROC, "pcb_proc", "copy", PCB_MAX_RUN_PAGES },
	{ B_PCB_PROC, "pcb_proc", "continue", PCB_MAX_RUN_PAGES },
	{ B_PCB_ZERO, "pcb_zero", "copy", PCB_MAX_RUN_PAGES }, { B_PCB_ZERO, "pcb_zero", "move", PCB_CHUNK_PAGES },
	{ B_PCB_ZERO, "pcb_zero", "continue", PCB_MAX_RUN_PAGES },
	/* the same pull with a key on both ends: every frame authenticated (docs/security.md) */
	{ B_PCB_MAC, "pcb_mac", "copy", PCB_MAX_RUN_PAGES }, { B_PCB_MAC, "pcb_mac", "continue", PCB_MAX_RUN_PAGES },
	/* the same pull with the source generating each page as it sends it (--source-image=generate) */
	{ B_PCB_GEN, "pcb_gen", "copy", PCB_MAX_RUN_PAGES }, { B_PCB_GEN, "pcb_gen", "continue", PCB_MAX_RUN_PAGES },
	/* the same pull with an installer thread (--installer=thread; the pcbench rows install inline) */
	{ B_PCB_THREAD, "pcb_thread", "copy", PCB_MAX_RUN_PAGES },
	/* the same pull with the source writing each page by writev (--source-send=writev; the pcbench rows: auto) */
	{ B_PCB_WRITEV, "pcb_writev", "copy", PCB_MAX_RUN_PAGES },
};
#define NBULK_VARS (unsigned)(sizeof(bulk_vars) / sizeof(bulk_vars[0]))
_Static_assert(sizeof(bulk_vars) / sizeof(bulk_vars[0]) <= MAX_BULK / 2, "rows[] and g[][] hold every variant at two placements");
_Static_assert(sizeof(bulk_vars) / sizeof(bulk_vars[0]) <= sizeof(((struct floor_cfg *)0)->bulk_sel), "bulk_sel holds every variant");

int floor_bulk_select(struct floor_cfg *fc, const char *list)
{
	snprintf(fc->bulk_variants, sizeof(fc->bulk_variants), "%s", list);
	fc->all_bulk = !strcmp(list, "all");
	for (unsigned k = 0; k < NBULK_VARS; k++)
		fc->bulk_sel[k] = fc->all_bulk;
	for (const char *s = list; !fc->all_bulk && *s;) {
		size_t len = strcspn(s, ",");
		char tok[64];
		snprintf(tok, sizeof(tok), "%.*s", (int)(len < sizeof(tok) - 1 ? len : sizeof(tok) - 1), s);
		char *colon = strchr(tok, ':');
		if (colon)
			*colon++ = 0;
		bool any = false;
		for (unsigned k = 0; k < NBULK_VARS; k++)
			if (!strcmp(bulk_vars[k].name, tok) && (!colon || (bulk_vars[k].install && !strcmp(bulk_vars[k].install, colon)))) {
				fc->bulk_sel[k] = true;
				any = true;
			}
		if (!any || len >= sizeof(tok)) {
			pcb_err("floor: invalid value for --bulk-variants: '%.*s' in '%s' (want all, or VARIANT[:INSTALL] with VARIANT "
				"transport, source_gen, install, bare_copy, bare_mem, bare_splice, bare_pipe, bare_pipe_splice, pcbench, pcb_proc, pcb_zero, pcb_mac, pcb_gen, pcb_thread or pcb_writev and "
				"INSTALL copy, move or continue)", (int)(len < 64 ? len : 64), s, list);
			return -1;
		}
		s += len + (s[len] == ',');
	}
	return 0;
}

/* ---- bulk pull ------------------------------------------------------------------------ */

/* a row that is not pcbench: the transport, the source's generation, installs alone, bare receivers */
static int bulk_bare_row(struct floor_run *F, unsigned p, unsigned k, unsigned rep, char *why, size_t whylen)
{
	const struct floor_cfg *fc = &F->fc;
	const struct bulk_var *bv = &bulk_vars[k];
	struct bulk_row *row = &F->rows[p * NBULK_VARS + k];
	uint64_t npages = fc->bulk_bytes >> PCB_PAGE_SHIFT;
	int rcpu = 0, scpu = p ? 1 : 0, rc;
	double *gb = &F->g[p][k][rep];
	if (bv->kind == B_TRANSPORT || bv->kind == B_BARE || bv->kind == B_BARE_MEM || bv->kind == B_BARE_SPLICE)
		rc = floor_run_bulk_bare(bv->kind != B_TRANSPORT, bv->kind == B_BARE_MEM ? FLOOR_SRC_MEM
					 : bv->kind == B_BARE_SPLICE ? FLOOR_SRC_MEM_SPLICE : FLOOR_SRC_BUFFER,
					 rcpu, scpu, fc->bulk_bytes, gb, why, whylen);
	else if (bv->kind == B_SRCGEN)   /* on the source's CPU */
		rc = floor_run_source_gen(scpu, fc->seed, npages, gb, why, whylen);
	else if (bv->kind == B_PIPE || bv->kind == B_PIPE_SPLICE)   /* installer: with everything (same), unpinned (cross) */
		rc = floor_run_bulk_pipelined(bv->kind == B_PIPE ? FLOOR_SRC_BUFFER : FLOOR_SRC_MEM_SPLICE, rcpu, scpu,
					      p ? -1 : rcpu, fc->bulk_bytes, gb, why, whylen);
	else
		rc = floor_run_install_only(bv->install, rcpu, npages, gb, why, whylen);
	if (rc) {
		pcb_err("floor: bulk %s %s: %s", bv->name, row->install, why);
		return rc;
	}
	if (bv->kind != B_TRANSPORT && bv->kind != B_SRCGEN) {   /* the bare receivers, install */
		row->ioctls = npages / PCB_MAX_RUN_PAGES;
		row->pages = npages;
	}
	if (bv->kind == B_INSTALL)   /* the loop is all install: pages per second of it */
		row->install_mpps += *gb * 1e3 / PCB_PAGE_SIZE / fc->bulk_reps;
	return 0;
}

/* a pcbench row: the pager's pull with one install path (threads, process, the default image) */
static int bulk_pcbench_row(struct floor_run *F, unsigned p, unsigned k, unsigned rep, char *why, size_t whylen)
{
	const struct bulk_var *bv = &bulk_vars[k];
	static struct pcb_auth_key mac_key;
	if (bv->kind == B_PCB_MAC && !mac_key.len && pcb_auth_key_random(&mac_key, false) < 0) {
		snprintf(why, whylen, "no random key for the pcb_mac rows: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	struct floor_cfg fc_mac = F->fc, fc_gen = F->fc, fc_thr = F->fc, fc_wv = F->fc;
	fc_mac.key = &mac_key;
	fc_gen.source_image = PCB_SRC_IMAGE_GENERATE;
	fc_gen.source_forced = fc_wv.source_forced = true;
	fc_thr.install_thread = true;
	fc_wv.source_send = PCB_SRC_SEND_WRITEV;
	const struct floor_cfg *fc = bv->kind == B_PCB_MAC ? &fc_mac : bv->kind == B_PCB_GEN ? &fc_gen
				   : bv->kind == B_PCB_THREAD ? &fc_thr : bv->kind == B_PCB_WRITEV ? &fc_wv : &F->fc;
	struct bulk_row *row = &F->rows[p * NBULK_VARS + k];
	uint64_t npages = fc->bulk_bytes >> PCB_PAGE_SHIFT;
	int rcpu = 0, scpu = p ? 1 : 0;
	struct pcb_result res;
	/* installer: with everything in `same`; unpinned in `cross` (on the
	 * source's CPU it is slowest: docs/results/2026-11-26-performance.md) */
	int rc = floor_run_pcbench(fc, "sequential", bv->install, bv->batch, bv->kind == B_PCB_PROC, rcpu, rcpu, rcpu,
			     p ? -1 : rcpu, scpu, npages, bv->kind == B_PCB_ZERO ? FLOOR_ZERO_FRACTION : 0.0, NULL, &res,
			     why, whylen);
	if (rc) {
		pcb_err("floor: bulk pcbench --install=%s%s: %s", bv->install, bv->kind == B_PCB_PROC ? " --pager=process" : "",
			why);
		return rc;
	}
	F->g[p][k][rep] = res.migration_ns ? (double)(npages << PCB_PAGE_SHIFT) / (double)res.migration_ns : 0;
	row->ioctls = res.st.inst_bg.ioctls;
	row->pages = res.st.inst_bg.pages;
	row->migration_ns += res.migration_ns / fc->bulk_reps;
	row->install_mpps += res.st.inst_bg.install_ns ?
		(double)res.st.inst_bg.pages * 1e3 / (double)res.st.inst_bg.install_ns / fc->bulk_reps : 0;
	return 0;
}

/* paired by repetition: the best pcbench row over the transport, and over the floor,
 * of the same repetition (load that comes and goes hits both); then each row's median */
static void bulk_summarise(struct floor_run *F)
{
	unsigned reps = F->fc.bulk_reps;
	for (unsigned p = 0; p < F->nplace; p++)
		for (unsigned rep = 0; rep < reps; rep++) {
			double t = 0, fl = 0, hot = 0, best = 0, gen = 0, inl = 0, thr = 0, mem = 0, wv = 0, spl = 0;
			for (unsigned k = 0; k < NBULK_VARS; k++) {
				double x = F->g[p][k][rep];
				if (bulk_vars[k].kind == B_TRANSPORT)
					t = x;
				if (FLOOR_KIND(bulk_vars[k].kind) && x > fl)
					fl = x;
				if (HOT_KIND(bulk_vars[k].kind) && x > hot)
					hot = x;
				if (bulk_vars[k].kind == B_PCB && x > best)
					best = x;
				if (bulk_vars[k].kind == B_PCB_GEN && x > gen)
					gen = x;
				if (bulk_vars[k].kind == B_PCB && !strcmp(bulk_vars[k].install, "copy") && bulk_vars[k].batch > 1)
					inl = x;
				if (bulk_vars[k].kind == B_PCB_THREAD)
					thr = x;
				if (bulk_vars[k].kind == B_BARE_MEM)
					mem = x;
				if (bulk_vars[k].kind == B_PCB_WRITEV)
					wv = x;
				if (bulk_vars[k].kind == B_BARE_SPLICE)
					spl = x;
			}
			F->bps[p][rep] = spl > 0 ? best / spl : 0;
			F->bpw[p][rep] = wv > 0 ? inl / wv : 0;
			F->bpg[p][rep] = gen > 0 ? best / gen : 0;
			F->bpi[p][rep] = thr > 0 ? inl / thr : 0;
			F->bpm[p][rep] = mem > 0 ? best / mem : 0;
			F->bpt[p][rep] = t > 0 ? best / t : 0;
			F->bpf[p][rep] = fl > 0 ? best / fl : 0;
			F->bph[p][rep] = hot > 0 ? best / hot : 0;
		}
	for (unsigned p = 0; p < F->nplace; p++)
		zero_ratios(bulk_vars, NBULK_VARS, F->g[p], reps, F->zr[p], &F->nzr[p]);
	for (unsigned p = 0; p < F->nplace; p++)
		for (unsigned k = 0; k < NBULK_VARS; k++) {
			struct bulk_row *row = &F->rows[p * NBULK_VARS + k];
			row->gbps = floor_median(F->g[p][k], reps, &row->gmin, &row->gmax);
		}
}

int floor_measure_bulk(struct floor_run *F, char *why, size_t whylen)
{
	const struct floor_cfg *fc = &F->fc;
	if (fc->no_bulk)
		return 0;
	fprintf(stderr, "floor: bulk pull of %s per measurement, %u repetitions (median reported)\n",
		pcb_fmt_size(fc->bulk_bytes, why, whylen), fc->bulk_reps);
	for (unsigned p = 0; p < F->nplace; p++)
		for (unsigned k = 0; k < NBULK_VARS; k++) {
			const struct bulk_var *v = &bulk_vars[k];
			F->rows[F->nrows++] = (struct bulk_row){ v->name, floor_places[p].name, v->install ? v->install : "-",
								  v->batch, 0, 0, 0, 0, true, 0, v->kind, 0, 0 };
		}
	/* repetitions outermost: drift (and the cost of never-touched memory) spread over every variant */
	for (unsigned rep = 0; rep < fc->bulk_reps; rep++)
		for (unsigned p = 0; p < F->nplace; p++)
			for (unsigned k = 0; k < NBULK_VARS; k++) {
				int kind = bulk_vars[k].kind;
				if (!fc->bulk_sel[k])
					continue;
				int rc = kind == B_PCB || kind == B_PCB_PROC || kind == B_PCB_ZERO || kind == B_PCB_MAC || kind == B_PCB_GEN ||
						 kind == B_PCB_THREAD || kind == B_PCB_WRITEV
						 ? bulk_pcbench_row(F, p, k, rep, why, whylen)
						 : bulk_bare_row(F, p, k, rep, why, whylen);
				if (rc)
					return rc;
			}
	bulk_summarise(F);
	return 0;
}

/* one placement's transport, floors and best pcbench rows */
static void bulk_sum_of(struct floor_run *F, unsigned p)
{
	struct bulk_sum *m = &F->bs[p];
	for (unsigned k = 0; k < NBULK_VARS; k++) {
		const struct bulk_row *b = &F->rows[p * NBULK_VARS + k];
		if (b->kind == B_TRANSPORT)
			m->transport = b->gbps;
		if (b->kind == B_SRCGEN)
			m->srcgen = b->gbps;
		if (b->kind == B_INSTALL && !strcmp(b->install, "copy"))
			m->install_copy = b->gbps;
		if (FLOOR_KIND(b->kind) && b->gbps > m->floor)
			m->floor = b->gbps, m->floor_row = b;
		if (HOT_KIND(b->kind) && b->gbps > m->hot)
			m->hot = b->gbps, m->hot_row = b;
		if (b->kind == B_PCB && b->gbps > m->best)
			m->best = b->gbps, m->best_row = b;
		if (b->kind == B_PCB_PROC && b->gbps > m->best_proc)
			m->best_proc = b->gbps;
		if (b->kind == B_PCB_GEN && b->gbps > m->best_gen)
			m->best_gen = b->gbps;
	}
	m->serial_model = m->transport > 0 && m->install_copy > 0 ? 1 / (1 / m->transport + 1 / m->install_copy) : 0;
	/* a source generating pages into a buffer it then sends (pcb_gen) is the hot-buffer server plus the
	 * generation: on the same CPU it adds to the one CPU's work; cross it runs beside the receiver */
	m->hot_gen = !m->hot || !m->srcgen ? 0 : p == 0 ? 1 / (1 / m->hot + 1 / m->srcgen)
						   : (m->hot < m->srcgen ? m->hot : m->srcgen);
	m->paired_t = floor_median(F->bpt[p], F->fc.bulk_reps, &m->paired_t_min, &m->paired_t_max);
	m->paired_f = floor_median(F->bpf[p], F->fc.bulk_reps, &m->paired_f_min, &m->paired_f_max);
	m->paired_g = floor_median(F->bpg[p], F->fc.bulk_reps, &m->paired_g_min, &m->paired_g_max);
	m->paired_i = floor_median(F->bpi[p], F->fc.bulk_reps, &m->paired_i_min, &m->paired_i_max);
	m->paired_m = floor_median(F->bpm[p], F->fc.bulk_reps, &m->paired_m_min, &m->paired_m_max);
	m->paired_w = floor_median(F->bpw[p], F->fc.bulk_reps, &m->paired_w_min, &m->paired_w_max);
	m->paired_s = floor_median(F->bps[p], F->fc.bulk_reps, &m->paired_s_min, &m->paired_s_max);
	m->paired_h = floor_median(F->bph[p], F->fc.bulk_reps, &m->paired_h_min, &m->paired_h_max);
}

static void print_bulk_table(struct floor_run *F)
{
	char sz[32];
	printf("\nbulk background pull (%s, no guest accesses, median [min-max] of %u; GB/s = 1e9 bytes/s; same = receiver "
	       "and sender on CPU 0, cross = receiver CPU 0, sender CPU 1, installer thread unpinned)\n"
	       "  transport = TCP alone; install = that path's installs alone, no network (ceiling of any receiver);\n"
	       "  bare_copy = receive then batched UFFDIO_COPY in one thread; bare_pipe = receive and install in two threads;\n"
	       "  both with a server sending one 1 MiB buffer that stays in its CPU's cache (hot = the better: a ceiling no\n"
	       "  source reaches, since a source reads guest memory); bare_mem = bare_copy with its server sending from memory\n"
	       "  the size of the pull by write; bare_splice = the same by vmsplice + splice (as pcbench's source with\n"
	       "  --source-send=splice); bare_pipe_splice = bare_pipe with bare_splice's server;\n"
	       "  pcb_thread = pcbench copy/128 with --installer=thread (not a candidate for the best pull; the pcbench rows\n"
	       "  use --installer=auto: inline on the same CPU, the thread cross); pcb_writev = pcbench copy/128 with\n"
	       "  --source-send=writev (the pcbench rows: --source-send=%s; not a candidate for the best pull);\n"
	       "  floor = the best bare receiver fed from memory (bare_mem, bare_splice, bare_pipe_splice: transport + install\n"
	       "  of the pull's memory); source_gen = pcbench's source generating pages\n"
	       "  from the seed, alone (on the sender's CPU); pcb_proc = pcbench --pager=process\n",
	       pcb_fmt_size(F->fc.bulk_bytes, sz, sizeof(sz)), F->fc.bulk_reps,
	       pcb_source_send_name((enum pcb_source_send)F->fc.source_send));
	printf("  %-6s %-16s %-9s %5s %7s %15s %8s %8s %8s %8s\n", "place", "variant", "install", "batch", "GB/s", "[min-max]",
	       "ioctls", "iMpg/s", "/transp", "/floor");
	for (unsigned p = 0; p < F->nplace; p++) {
		const struct bulk_sum *m = &F->bs[p];
		for (unsigned k = 0; k < NBULK_VARS; k++) {
			const struct bulk_row *b = &F->rows[p * NBULK_VARS + k];
			if (!F->fc.bulk_sel[k])
				continue;
			char mm[32];
			snprintf(mm, sizeof(mm), "[%.3f-%.3f]", b->gmin, b->gmax);
			printf("  %-6s %-16s %-9s %5u %7.3f %15s %8llu %8.2f %8.3f %8.3f\n", b->placement, b->name, b->install,
			       b->batch, b->gbps, mm, (unsigned long long)b->ioctls, b->install_mpps,
			       m->transport > 0 ? b->gbps / m->transport : 0, m->floor > 0 ? b->gbps / m->floor : 0);
		}
	}
}

void floor_print_bulk(struct floor_run *F)
{
	F->met_bulk = F->met_bulk_floor = F->met_zero = true;
	if (F->fc.no_bulk)
		return;
	for (unsigned p = 0; p < F->nplace; p++)
		bulk_sum_of(F, p);
	print_bulk_table(F);
	if (!F->fc.all_bulk) {   /* a subset: the rows alone, nothing judged */
		F->met_bulk = F->met_bulk_floor = F->met_zero = false;
		return;
	}
	for (unsigned p = 0; p < F->nplace; p++) {
		const struct bulk_sum *m = &F->bs[p];
		const char *pn = floor_places[p].name;
		printf("  %-6s transport %.3f GB/s; copy install alone %.3f; both in one thread (model 1/(1/T+1/I)) %.3f; "
		       "floor measured %.3f (%s) = %.3f of the transport; hot-buffer ceiling %.3f (%s)\n", pn, m->transport,
		       m->install_copy, m->serial_model, m->floor, m->floor_row ? m->floor_row->name : "-",
		       m->transport > 0 ? m->floor / m->transport : 0, m->hot, m->hot_row ? m->hot_row->name : "-");
		printf("  %-6s pcbench's source generates pages at %.3f GB/s; the hot-buffer ceiling with that generation %s "
		       "%.3f, best pcb_gen (source generating each page) %.3f = %.3f of it (the pcbench rows' source: "
		       "--source-image=%s)\n", pn, m->srcgen, p == 0 ? "on the same CPU (1/(1/hot+1/G))" : "beside it (min)",
		       m->hot_gen, m->best_gen, m->hot_gen > 0 ? m->best_gen / m->hot_gen : 0,
		       floor_src_image.reason ? pcb_source_image_name(floor_src_image.mode) : "-");
		printf("  %-6s best pcbench pull %.3f GB/s (--install=%s --install-batch=%u): %.3f of the transport "
		       "(target >= 0.9), %.3f of the floor; --pager=process best %.3f = %.3f of threads\n",
		       pn, m->best, m->best_row ? m->best_row->install : "-", m->best_row ? m->best_row->batch : 0,
		       m->transport > 0 ? m->best / m->transport : 0, m->floor > 0 ? m->best / m->floor : 0,
		       m->best_proc, m->best > 0 ? m->best_proc / m->best : 0);
		printf("  %-6s paired by repetition (median [min-max] of %u): best pcbench / transport %.3f [%.3f-%.3f] "
		       "(target >= 0.9), / floor %.3f [%.3f-%.3f] (target >= 0.9), / hot-buffer ceiling %.3f [%.3f-%.3f]\n", pn,
		       F->fc.bulk_reps, m->paired_t, m->paired_t_min, m->paired_t_max, m->paired_f, m->paired_f_min,
		       m->paired_f_max, m->paired_h, m->paired_h_min, m->paired_h_max);
		printf("  %-6s paired by repetition: best pcbench (source image --source-image=%s) / best pcb_gen (source "
		       "generating each page) %.3f [%.3f-%.3f]\n", pn,
		       floor_src_image.reason ? pcb_source_image_name(floor_src_image.mode) : "-", m->paired_g, m->paired_g_min,
		       m->paired_g_max);
		printf("  %-6s paired by repetition: pcbench copy/128 (--installer=auto: %s) / pcb_thread (the same pull with an "
		       "installer thread, --installer=thread) %.3f [%.3f-%.3f]\n", pn,
		       p == 0 ? "inline, background and install on one CPU"
		       : sysconf(_SC_NPROCESSORS_ONLN) == 2 ? "inline, the installer thread's only other CPU is the source's"
		       : "the thread too: the same configuration, the run's noise",
		       m->paired_i, m->paired_i_min, m->paired_i_max);
		printf("  %-6s paired by repetition: best pcbench / bare_mem (bare_copy with its server sending from memory the "
		       "size of the pull, as a source reads guest memory) %.3f [%.3f-%.3f]\n", pn, m->paired_m, m->paired_m_min,
		       m->paired_m_max);
		printf("  %-6s paired by repetition: best pcbench / bare_splice (bare_mem's server sending by vmsplice + splice) "
		       "%.3f [%.3f-%.3f]\n", pn, m->paired_s, m->paired_s_min, m->paired_s_max);
		printf("  %-6s paired by repetition: pcbench copy/128 (--source-send=%s) / pcb_writev (the same pull, the source "
		       "writing by writev) %.3f [%.3f-%.3f]\n", pn, pcb_source_send_name((enum pcb_source_send)F->fc.source_send),
		       m->paired_w, m->paired_w_min, m->paired_w_max);
		F->met_bulk = F->met_bulk && m->paired_t >= 0.9;
		F->met_bulk_floor = F->met_bulk_floor && m->paired_f >= 0.9;
		F->met_zero = zero_print(F->zr[p], F->nzr[p], pn, floor_zero_model(&F->fc)) && F->met_zero;
	}
	unsigned bp = F->nplace > 1 && F->bs[1].best > F->bs[0].best ? 1 : 0;
	if (F->bs[bp].best_row)
		printf("  bulk configuration to use on this machine: --install=%s --install-batch=%u with the receiver and the "
		       "source %s (%.3f GB/s)\n", F->bs[bp].best_row->install, F->bs[bp].best_row->batch,
		       bp ? "on different CPUs (--pin=split or unpinned)" : "on one CPU", F->bs[bp].best);
}

static void json_bulk_rows(const struct floor_run *F, struct pcb_json *j)
{
	pcb_json_arr_begin(j, "bulk");
	for (unsigned i = 0; i < F->nrows; i++) {
		const struct bulk_row *r = &F->rows[i];
		if (!F->fc.bulk_sel[i % NBULK_VARS])
			continue;
		pcb_json_obj_begin(j, NULL);
		pcb_json_str(j, "variant", r->name);
		pcb_json_str(j, "placement", r->placement);
		pcb_json_str(j, "install", r->install);
		pcb_json_u64(j, "install_batch", r->batch);
		floor_json_spread(j, "gb_per_s", "", r->gbps, r->gmin, r->gmax);
		pcb_json_u64(j, "install_ioctls", r->ioctls);
		pcb_json_u64(j, "pages", r->pages);
		pcb_json_u64(j, "migration_ns_mean", r->migration_ns);
		pcb_json_dbl(j, "install_ioctl_mpages_per_s", r->install_mpps);
		pcb_json_bool(j, "verified", r->verified);
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
}

static void json_bulk_summary(const struct floor_run *F, struct pcb_json *j)
{
	pcb_json_arr_begin(j, "bulk_summary");
	for (unsigned p = 0; p < F->nplace; p++) {
		const struct bulk_sum *m = &F->bs[p];
		pcb_json_obj_begin(j, NULL);
		pcb_json_str(j, "placement", floor_places[p].name);
		pcb_json_dbl(j, "transport_gb_per_s", m->transport);
		pcb_json_dbl(j, "install_only_copy_gb_per_s", m->install_copy);
		pcb_json_dbl(j, "serial_model_gb_per_s", m->serial_model);
		pcb_json_dbl(j, "floor_gb_per_s", m->floor);
		pcb_json_str(j, "floor_variant", m->floor_row ? m->floor_row->name : "");
		pcb_json_dbl(j, "hot_buffer_ceiling_gb_per_s", m->hot);
		pcb_json_str(j, "hot_buffer_ceiling_variant", m->hot_row ? m->hot_row->name : "");
		pcb_json_dbl(j, "source_generation_gb_per_s", m->srcgen);
		pcb_json_dbl(j, "hot_buffer_ceiling_with_source_generation_gb_per_s", m->hot_gen);
		pcb_json_dbl(j, "best_pcb_gen_gb_per_s", m->best_gen);
		pcb_json_dbl(j, "best_pcb_gen_over_hot_buffer_ceiling_with_source_generation",
			     m->hot_gen > 0 ? m->best_gen / m->hot_gen : 0);
		pcb_json_dbl(j, "best_pcbench_gb_per_s", m->best);
		pcb_json_str(j, "best_pcbench_install", m->best_row ? m->best_row->install : "");
		pcb_json_u64(j, "best_pcbench_install_batch", m->best_row ? m->best_row->batch : 0);
		pcb_json_dbl(j, "best_over_transport", m->transport > 0 ? m->best / m->transport : 0);
		pcb_json_dbl(j, "best_over_floor", m->floor > 0 ? m->best / m->floor : 0);
		pcb_json_dbl(j, "best_process_gb_per_s", m->best_proc);
		floor_json_spread(j, "paired_best_over_transport", "median", m->paired_t, m->paired_t_min, m->paired_t_max);
		floor_json_spread(j, "paired_best_over_floor", "median", m->paired_f, m->paired_f_min, m->paired_f_max);
		floor_json_spread(j, "paired_best_over_hot_buffer_ceiling", "median", m->paired_h, m->paired_h_min,
				  m->paired_h_max);
		floor_json_spread(j, "paired_best_over_pcb_gen", "median", m->paired_g, m->paired_g_min, m->paired_g_max);
		floor_json_spread(j, "paired_inline_over_pcb_thread", "median", m->paired_i, m->paired_i_min, m->paired_i_max);
		floor_json_spread(j, "paired_best_over_bare_mem", "median", m->paired_m, m->paired_m_min, m->paired_m_max);
		floor_json_spread(j, "paired_copy128_over_pcb_writev", "median", m->paired_w, m->paired_w_min, m->paired_w_max);
		floor_json_spread(j, "paired_best_over_bare_splice", "median", m->paired_s, m->paired_s_min, m->paired_s_max);
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
}

void floor_json_bulk(const struct floor_run *F, struct pcb_json *j)
{
	json_bulk_rows(F, j);
	if (!F->fc.all_bulk)   /* --bulk-variants: a subset of the rows, no summary and no targets */
		return;
	pcb_json_arr_begin(j, "bulk_ratio_best_pcbench_over_transport");
	for (unsigned p = 0; p < F->nplace; p++)
		pcb_json_dbl(j, NULL, F->bs[p].transport > 0 ? F->bs[p].best / F->bs[p].transport : 0);
	pcb_json_arr_end(j);
	json_bulk_summary(F, j);
	pcb_json_bool(j, "bulk_target_met", F->met_bulk);
	pcb_json_bool(j, "bulk_floor_target_met", F->met_bulk_floor);
	pcb_json_arr_begin(j, "zero_pages_paired_ratio");   /* default image / zero-free image, per path */
	for (unsigned p = 0; p < F->nplace; p++)
		for (unsigned i = 0; i < F->nzr[p]; i++) {
			pcb_json_obj_begin(j, NULL);
			pcb_json_str(j, "placement", floor_places[p].name);
			pcb_json_str(j, "install", F->zr[p][i].install);
			pcb_json_dbl(j, "zero_fraction", FLOOR_ZERO_FRACTION);
			pcb_json_str(j, "zero_model", floor_zero_model(&F->fc));
			floor_json_spread(j, "", "median", F->zr[p][i].med, F->zr[p][i].min, F->zr[p][i].max);
			pcb_json_obj_end(j);
		}
	pcb_json_arr_end(j);
	pcb_json_bool(j, "zero_target_met", F->met_zero);
}
