/* `pcbench floor`, bulk over an emulated link: pcbench pulls at each configured
 * rate, the delay line alone and loopback, paired by repetition. */
#include "floor/internal.h"

/* ---- bulk over an emulated link ---------------------------------------------------- */

/* A pull of npages with pcbench's pager and source over the emulated link
 * (--link=bps,rtt; bps 0 = delay line only, no rate limit), no guest accesses,
 * sequential policy, every page verified.  The link counts frame bytes (the
 * 24-byte pcbench header + payload, wire/link.h), so besides the pages the
 * pull reports the frame bytes it received between switch-over and the last
 * page present (the link calibration's traffic before switch-over excluded). */
struct link_pull {
	uint64_t ns;                 /* switch-over -> last page present */
	uint64_t frame_bytes, frames;   /* received by the destination over that time (both channels) */
	uint64_t ioctls;
	uint64_t cpu_ns;             /* CPU time of the pager (this process) and the source, switch-over to last page */
	struct pcb_link_result link;  /* calibration and achieved RTT (wire/linkcal.c) */
	struct pcb_verify ver;
};

/* Time on CPU of every thread of process pid (/proc/PID/task/TID/schedstat, ns). */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	uint64_t ns = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char f[96];
		snprintf(f, sizeof(f), "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
		FILE *fp = fopen(f, "r");
		unsigned long long t;
		if (fp && fscanf(fp, "%llu", &t) == 1)
			ns += t;
		if (fp)
			fclose(fp);
	}
	closedir(d);
	return ns;
}

static int run_link_pull(const struct floor_cfg *fc, uint64_t bps, uint64_t rtt_ns, int rcpu, int scpu, int icpu, uint64_t npages,
			 struct link_pull *out, char *why, size_t whylen)
{
	struct pcb_image im;
	struct pcb_pager_cfg pc = {
		.policy = pcb_policy_find("sequential"), .install = "copy",
		.install_batch = PCB_MAX_RUN_PAGES, .pin_demand = (unsigned)(rcpu + 1), .pin_bg = (unsigned)(rcpu + 1),
		.pin_install = (unsigned)(icpu + 1), .link_bps = bps, .link_rtt_ns = rtt_ns,
	};
	struct pcb_pager *p;
	pid_t src;
	/* pcb_pager_create connects, handshakes and calibrates the link */
	int rc = floor_start_migration(fc, &pc, npages, 0.0, scpu, &im, &src, &p, why, whylen);
	if (rc)
		return rc;
	struct pcb_pager_stats s0, s1;
	pcb_pager_stats(p, &s0);
	uint64_t cpu0 = proc_cpu_ns(getpid()) + proc_cpu_ns(src);
	pcb_pager_start(p);
	pcb_pager_guest_done(p);
	rc = floor_wait_complete(p, src, why, whylen);
	if (rc)
		return rc;
	pcb_pager_stats(p, &s1);   /* before verification's digest traffic */
	out->cpu_ns = proc_cpu_ns(getpid()) + proc_cpu_ns(src) - cpu0;
	pcb_pager_finish(p);
	rc = pcb_pager_verify(p, &out->ver, why, whylen);
	out->ns = s1.t_complete_ns - s1.t_switchover_ns;
	out->frame_bytes = out->frames = 0;
	for (int ch = 0; ch < 2; ch++) {
		out->frame_bytes += s1.chan[ch].bytes_rx - s0.chan[ch].bytes_rx;
		out->frames += s1.chan[ch].frames_rx - s0.chan[ch].frames_rx;
	}
	out->ioctls = s1.inst_bg.ioctls;
	out->link = s1.link;
	pcb_pager_destroy(p);
	floor_reap(src);
	if (!rc && (out->ver.pages_corrupt || out->ver.pages_missing || out->ver.pages_verified != npages)) {
		snprintf(why, whylen, "pcbench pager over the emulated link: %llu verified, %llu corrupt, %llu missing pages",
			 (unsigned long long)out->ver.pages_verified, (unsigned long long)out->ver.pages_corrupt,
			 (unsigned long long)out->ver.pages_missing);
		rc = PCB_EXIT_VERIFY;
	}
	return rc;
}

/* Every rate and the unlimited reference, repetitions outermost (drift hits all alike). */
int floor_link_measure(const struct floor_cfg *fc, unsigned nplace, struct link_sum *ls, char *why, size_t whylen)
{
	uint64_t npages = fc->bulk_bytes >> PCB_PAGE_SHIFT;
	memset(ls, 0, sizeof(*ls));
	/* receiver (demand and background threads) on CPU 0, source on CPU 1, installer unpinned:
	 * the placement the bulk section finds best on two CPUs */
	ls->recv_cpu = 0;
	ls->source_cpu = nplace > 1 ? 1 : 0;
	int icpu = nplace > 1 ? -1 : 0;
	ls->nrows = fc->nlink + 2;
	ls->rows[0] = (struct link_row){ .name = "loopback", .verified = true };
	ls->rows[1] = (struct link_row){ .name = "unlimited", .rtt_ns_cfg = fc->link_rtt_ns, .verified = true };
	for (unsigned k = 0; k < fc->nlink; k++)
		ls->rows[k + 2] = (struct link_row){ .name = fc->link_name[k], .bps = fc->link_bps[k],
						     .rtt_ns_cfg = fc->link_rtt_ns, .verified = true };
	char sz[32];
	fprintf(stderr, "floor: bulk over an emulated link: %s per pull, RTT %.0f µs, %u rates + loopback + unlimited, "
		"%u repetitions\n",
		pcb_fmt_size(fc->bulk_bytes, sz, sizeof(sz)), (double)fc->link_rtt_ns / 1e3, fc->nlink, fc->bulk_reps);
	/* one loopback pull first, not recorded: the first pull of a process pays for memory and
	 * connections never used before (docs/results/2026-11-26-performance.md) */
	struct link_pull warm;
	int wrc = run_link_pull(fc, 0, 0, ls->recv_cpu, ls->source_cpu, icpu, npages, &warm, why, whylen);
	if (wrc)
		return wrc;
	for (unsigned rep = 0; rep < fc->bulk_reps; rep++)
		for (unsigned k = 0; k < ls->nrows; k++) {
			struct link_row *r = &ls->rows[k];
			struct link_pull lp;
			int rc = run_link_pull(fc, r->bps, r->rtt_ns_cfg, ls->recv_cpu, ls->source_cpu, icpu, npages, &lp, why, whylen);
			if (rc) {
				char w2[600];
				snprintf(w2, sizeof(w2), "%s", why);
				snprintf(why, whylen, "link %s: %s", r->name, w2);
				return rc;
			}
			double ns = lp.ns ? (double)lp.ns : 1;
			r->gbps[rep] = (double)(npages << PCB_PAGE_SHIFT) / ns;
			r->wire[rep] = (double)lp.frame_bytes / ns;
			r->ratio[rep] = r->bps ? r->wire[rep] * 8e9 / (double)r->bps : 0;
			r->vs_loop[rep] = ls->rows[0].wire[rep] > 0 ? r->wire[rep] / ls->rows[0].wire[rep] : 0;
			r->rtt_ns[rep] = lp.link.rtt_median_ns;
			r->cpu[rep] = (double)lp.cpu_ns / (double)(npages << PCB_PAGE_SHIFT);
			r->base_rtt_ns[rep] = lp.link.base_rtt_ns;
			r->pages = lp.ver.pages_verified;
			r->frame_bytes = lp.frame_bytes;
			r->frames = lp.frames;
			r->ioctls = lp.ioctls;
			r->verified = r->verified && lp.ver.pages_verified == npages && !lp.ver.pages_corrupt &&
				      !lp.ver.pages_missing;
		}
	unsigned n = fc->bulk_reps;
	ls->met = true;
	for (unsigned k = 0; k < ls->nrows; k++) {
		struct link_row *r = &ls->rows[k];
		double mn, mx;
		r->g_med = floor_median(r->gbps, n, &r->g_min, &r->g_max);
		r->w_med = floor_median(r->wire, n, &mn, &r->w_max);
		r->c_med = floor_median(r->cpu, n, &mn, &mx);
		r->r_med = floor_median(r->ratio, n, &r->r_min, &r->r_max);
		r->u_med = floor_median(r->vs_loop, n, &r->u_min, &r->u_max);
		double rt[LINK_MAX_REPS];
		for (unsigned i = 0; i < n; i++)
			rt[i] = (double)r->rtt_ns[i];
		r->rtt_med = (uint64_t)floor_median(rt, n, &mn, &mx);
		if (!r->bps)
			continue;
		/* the loopback pull's median: what this host carries in this run (its best repetition
		 * is an outlier on a shared machine: judging against it failed rates the host carried
		 * no better without emulation in the same repetitions) */
		r->host_limited = ls->rows[0].w_med * 8e9 < (double)r->bps;
		if (!r->host_limited) {
			ls->any_judged = true;
			ls->met = ls->met && r->r_med >= 0.9;
		}
	}
	ls->met = ls->met && ls->any_judged;
	return 0;
}

void floor_link_print(const struct floor_cfg *fc, const struct link_sum *ls)
{
	char sz[32], sz2[32];
	uint64_t fastest = 0;
	for (unsigned k = 0; k < ls->nrows; k++)
		if (ls->rows[k].bps > fastest)
			fastest = ls->rows[k].bps;
	double bdp = (double)fastest / 8 * (double)fc->link_rtt_ns / 1e9;
	uint64_t inflight = (uint64_t)fc->window * fc->batch * PCB_PAGE_SIZE;
	printf("\nbulk over an emulated link (--link=RATE,%.0fus; pcbench, sequential policy, no guest accesses, %s, "
	       "median [min-max] of %u;\n"
	       "  receiver CPU %d, source CPU %d, installer %s; --install=copy --install-batch=%u; every page verified)\n"
	       "  the link rate counts frame bytes: pcbench's 24-byte header + payload (TCP/IP/Ethernet framing is not\n"
	       "  modelled); wire = frame bytes/s received from switch-over to the last page present; /link = wire bits/s\n"
	       "  over the configured rate (target >= 0.9; above 1 the emulation let more through than configured);\n"
	       "  GB/s = page payload (1e9 bytes/s); loopback = no emulation (what this host carries), unlimited = the\n"
	       "  delay line alone; /loop = wire over the same repetition's loopback pull; cpu = pager + source CPU\n"
	       "  seconds per GB pulled; frame = pages per background frame (wire/link.h)\n"
	       "  in flight %u batches x %u pages = %s %s bandwidth x RTT at the fastest rate (%.0f KiB): %s\n",
	       (double)fc->link_rtt_ns / 1e3, pcb_fmt_size(fc->bulk_bytes, sz, sizeof(sz)), fc->bulk_reps, ls->recv_cpu,
	       ls->source_cpu, ls->source_cpu != ls->recv_cpu ? "unpinned" : "CPU 0", PCB_MAX_RUN_PAGES, fc->window, fc->batch,
	       pcb_fmt_size(inflight, sz2, sizeof(sz2)), (double)inflight >= bdp ? ">=" : "<", bdp / 1024,
	       (double)inflight >= bdp ? "not window-limited" : "WINDOW-LIMITED (raise --window or --batch)");
	printf("  %-10s %7s %5s %7s %7s %15s %8s %7s %15s %6s %5s  %s\n", "link", "Gbit/s", "frame", "RTT µs", "GB/s",
	       "[min-max]", "wire Gb/s", "/link", "[min-max]", "/loop", "cpu", "verdict");
	for (unsigned k = 0; k < ls->nrows; k++) {
		const struct link_row *r = &ls->rows[k];
		char mm[40], rr[40], rate[24], rl[16];
		snprintf(mm, sizeof(mm), "[%.3f-%.3f]", r->g_min, r->g_max);
		snprintf(rr, sizeof(rr), "-");
		snprintf(rate, sizeof(rate), "-");
		snprintf(rl, sizeof(rl), "-");
		if (r->bps) {
			snprintf(rr, sizeof(rr), "[%.3f-%.3f]", r->r_min, r->r_max);
			snprintf(rate, sizeof(rate), "%.3f", (double)r->bps / 1e9);
			snprintf(rl, sizeof(rl), "%.3f", r->r_med);
		}
		char verdict[96];
		if (!r->verified)
			snprintf(verdict, sizeof(verdict), "NOT VERIFIED");
		else if (!r->bps)
			snprintf(verdict, sizeof(verdict), "reference");
		else if (r->r_med > 1.02)
			snprintf(verdict, sizeof(verdict), "ABOVE the link: the emulation let too much through");
		else if (r->host_limited)
			snprintf(verdict, sizeof(verdict), "above this host (loopback %.2f Gbit/s), not judged",
				 ls->rows[0].w_med * 8);
		else
			snprintf(verdict, sizeof(verdict), "%s", r->r_med >= 0.9 ? "met" : "NOT met");
		printf("  %-10s %7s %5u %7.1f %7.3f %15s %9.3f %7s %15s %6.3f %5.2f  %s\n", r->name, rate,
		       r->bps ? pcb_link_run_pages(r->bps) : PCB_MAX_RUN_PAGES, (double)r->rtt_med / 1e3, r->g_med, mm,
		       r->w_med * 8, rl, rr, k ? r->u_med : 1.0, r->c_med, verdict);
	}
}

void floor_link_verdict(const struct link_sum *ls)
{
	printf("link target (median pull >= 0.9 x configured link, every rate this host carries): %s",
	       ls->met ? "met" : ls->any_judged ? "NOT met" : "not judged (every rate is above this host)");
	bool first = true;
	for (unsigned k = 0; k < ls->nrows; k++)
		if (ls->rows[k].bps && ls->rows[k].host_limited) {
			printf("%s%s (%.3f of loopback)", first ? "; above this host's loopback pull: " : ", ", ls->rows[k].name,
			       ls->rows[k].u_med);
			first = false;
		}
	if (!first)
		printf(" > %.2f Gbit/s, reported, not judged", ls->rows[0].w_med * 8);
	printf("\n");
}

void floor_link_json(struct pcb_json *j, const struct floor_cfg *fc, const struct link_sum *ls)
{
	pcb_json_obj_begin(j, "link_bulk_config");
	pcb_json_u64(j, "rtt_ns", fc->link_rtt_ns);
	pcb_json_u64(j, "bulk_bytes", fc->bulk_bytes);
	pcb_json_u64(j, "reps", fc->bulk_reps);
	pcb_json_u64(j, "window", fc->window);
	pcb_json_u64(j, "batch_pages", fc->batch);
	pcb_json_u64(j, "in_flight_bytes", (uint64_t)fc->window * fc->batch * PCB_PAGE_SIZE);
	pcb_json_str(j, "policy", "sequential");
	pcb_json_str(j, "install", "copy");
	pcb_json_u64(j, "install_batch", PCB_MAX_RUN_PAGES);
	pcb_json_i64(j, "receiver_cpu", ls->recv_cpu);
	pcb_json_i64(j, "source_cpu", ls->source_cpu);
	pcb_json_str(j, "installer_cpu", ls->source_cpu != ls->recv_cpu ? "unpinned" : "0");
	pcb_json_str(j, "rate_counts", "frame bytes: 24-byte pcbench header + payload; TCP/IP framing not modelled");
	pcb_json_str(j, "throughput", "switch-over to last page present; wire = frame bytes received by the destination "
		     "over that time, gb_per_s = page payload");
	pcb_json_obj_end(j);
	pcb_json_arr_begin(j, "link_bulk");
	for (unsigned k = 0; k < ls->nrows; k++) {
		const struct link_row *r = &ls->rows[k];
		pcb_json_obj_begin(j, NULL);
		pcb_json_str(j, "link", r->name);
		pcb_json_u64(j, "link_bps", r->bps);
		pcb_json_u64(j, "rtt_ns_configured", fc->link_rtt_ns);
		pcb_json_u64(j, "rtt_ns_achieved_median", r->rtt_med);
		pcb_json_u64(j, "pages", r->pages);
		pcb_json_bool(j, "verified", r->verified);
		pcb_json_u64(j, "frame_bytes", r->frame_bytes);
		pcb_json_u64(j, "frames", r->frames);
		pcb_json_u64(j, "install_ioctls", r->ioctls);
		pcb_json_u64(j, "frame_pages", r->bps ? pcb_link_run_pages(r->bps) : PCB_MAX_RUN_PAGES);
		floor_json_spread(j, "gb_per_s", "", r->g_med, r->g_min, r->g_max);
		pcb_json_dbl(j, "wire_bps", r->w_med * 8e9);
		pcb_json_dbl(j, "wire_bps_max", r->w_max * 8e9);
		pcb_json_dbl(j, "cpu_s_per_gb", r->c_med);
		if (k)
			floor_json_spread(j, "paired_ratio_to_loopback", "", r->u_med, r->u_min, r->u_max);
		if (r->bps) {
			floor_json_spread(j, "ratio_to_link", "", r->r_med, r->r_min, r->r_max);
			pcb_json_bool(j, "host_limited", r->host_limited);
			pcb_json_bool(j, "target_met", !r->host_limited && r->r_med >= 0.9);
		}
		pcb_json_arr_begin(j, "per_rep");
		for (unsigned i = 0; i < fc->bulk_reps; i++) {
			pcb_json_obj_begin(j, NULL);
			pcb_json_dbl(j, "gb_per_s", r->gbps[i]);
			pcb_json_dbl(j, "wire_bps", r->wire[i] * 8e9);
			if (r->bps) {
				pcb_json_dbl(j, "ratio_to_link", r->ratio[i]);
			}
			if (k)
				pcb_json_dbl(j, "ratio_to_loopback", r->vs_loop[i]);
			pcb_json_u64(j, "rtt_ns_achieved", r->rtt_ns[i]);
			pcb_json_u64(j, "base_rtt_ns", r->base_rtt_ns[i]);
			pcb_json_dbl(j, "cpu_s_per_gb", r->cpu[i]);
			pcb_json_obj_end(j);
		}
		pcb_json_arr_end(j);
		pcb_json_obj_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_bool(j, "link_target_met", ls->met);
}
