/* `pcbench floor`: what the best possible pager could do on this machine,
 * and pcbench's own pager on the same settings, measured in one run.
 *
 * Demand faults (one faulting thread touching never-touched pages in order,
 * latency = CLOCK_MONOTONIC around the access, as in the guest):
 *   uffd      bare userfaultfd round trip: a handler thread blocked in read()
 *             on the uffd, UFFDIO_COPY of a prepared page, resume;
 *   uffd_process  the same handler in its own process, the uffd passed to it
 *             over a unix socket (SCM_RIGHTS): what a pager process costs;
 *   tcp/unix  bare end to end: the same handler sends the 8-byte page index
 *             to a minimal page server process and receives 4 KiB back
 *             (blocking send/recv, TCP_NODELAY), then UFFDIO_COPY;
 *   pcbench   pcbench's pager (demand policy) and source page server over
 *             TCP for the same faults, every page verified at the end.
 * in two placements: `same` (faulting thread, handler and server all on
 * CPU 0) and `cross` (faulting thread on CPU 0, handler and server on CPU 1).
 * Variants are interleaved in rounds so drift on a shared machine hits all.
 *
 * Background pull (bulk):
 *   transport  the source process streams pages over loopback TCP, the
 *              receiver reads them into a reused buffer (the transport alone);
 *   bare-copy  the same stream received and installed with batched
 *              UFFDIO_COPY (128 pages per ioctl) into a fresh registered region:
 *              the best pager without protocol, policy or bookkeeping; its
 *              server sends one cache-hot buffer (the hot-buffer ceiling) or,
 *              the floor, memory the size of the pull, as a source reads
 *              guest memory (bare_mem, bare_splice, bare_pipe_splice);
 *   pcbench    a whole migration with no guest accesses (sequential policy)
 *              for each install path; throughput = pages / (switch-over to
 *              last page present), every page verified.
 */
#include "floor/internal.h"

/* ---- options, report ------------------------------------------------------------- */

/* "RATE[,RATE...]" with pcb_link_parse's bandwidth syntax; a finite rate each
 * (the unlimited row is always measured).  0 or -1 (fc unchanged). */
static int floor_parse_rates(struct floor_cfg *fc, const char *list)
{
	uint64_t bps[FLOOR_MAX_LINKS];
	char names[FLOOR_MAX_LINKS][24];
	unsigned n = 0;
	for (const char *s = list;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		char why[256];
		uint64_t rtt;
		bool ok = n < FLOOR_MAX_LINKS && len > 0 && len < sizeof(names[0]);
		if (ok) {
			memcpy(names[n], s, len);
			names[n][len] = 0;
			ok = pcb_link_parse(names[n], &bps[n], &rtt, why, sizeof(why)) == 0 && bps[n] != 0;
		}
		if (!ok) {
			if (n == FLOOR_MAX_LINKS)
				pcb_err("floor: invalid value for --link-rates: '%s' has more than %d rates", list, FLOOR_MAX_LINKS);
			else
				pcb_err("floor: invalid value for --link-rates: '%.*s' in '%s' (want rates such as 1gbit,2.5gbit,500mbit, "
					"each 10kbit..400gbit; the loopback and unlimited rows are always measured)",
					(int)(len < 64 ? len : 64), s, list);
			return -1;
		}
		n++;
		if (!comma)
			break;
		s = comma + 1;
	}
	memcpy(fc->link_bps, bps, n * sizeof(bps[0]));
	memcpy(fc->link_name, names, n * sizeof(names[0]));
	fc->nlink = n;
	return 0;
}

/* --kvm-vcpus=1,2,4: 0, or -1 for a bad list */
static int floor_parse_vcpus(struct pcb_floor_kvm_cfg *k, const char *val)
{
	unsigned n = 0;
	for (const char *p = val; *p;) {
		char *e;
		unsigned long v = strtoul(p, &e, 10);
		if (e == p || v < 1 || v > PCB_FLOOR_KVM_MAX_VCPUS || n == 4 || (*e && *e != ','))
			return -1;
		k->vcpus[n++] = (unsigned)v;
		p = *e ? e + 1 : e;
	}
	if (!n)
		return -1;
	k->nv = n;
	return 0;
}

/* 0, 1 (help printed) or an exit code.  The options are the table's (cli/options.c, scope floor). */
static int floor_parse(struct floor_cfg *fc, int argc, char **argv)
{
	int rc;
	struct pcb_config *o = pcb_cmd_config(PCB_CMD_FLOOR, argc, argv, 2, &rc);
	if (!o)
		return rc;
	*fc = (struct floor_cfg){ .faults = o->floor.faults, .rounds = o->floor.rounds, .bulk_bytes = o->floor.bulk,
				  .seed = o->seed, .zero_run_max = o->zero_model == PCB_ZERO_RUNS ? o->zero_run_max : 0,
				  .batch = o->floor.batch, .window = o->floor.window,
				  .bulk_reps = o->floor.bulk_reps, .link_rtt_ns = o->floor.link_rtt_ns,
				  .no_bulk = o->floor.no_bulk, .no_demand = o->floor.no_demand, .no_link = o->floor.no_link,
				  .no_kvm = o->floor.no_kvm, .source_image = o->source_image,
				  .source_send = o->source_send,
				  .kvm = { .mem_per_vcpu = o->floor.kvm_mem & ~(uint64_t)(PCB_PAGE_SIZE - 1), .reps = o->floor.kvm_reps,
					   .seed = o->seed } };
	snprintf(fc->json, sizeof(fc->json), "%s", o->json);
	if (!rc && o->floor.bulk % (1 << 20)) {
		pcb_err("floor: invalid value for --bulk: '%llu' bytes is not a multiple of 1 MiB", (unsigned long long)o->floor.bulk);
		rc = PCB_EXIT_USAGE;
	}
	if (!rc && floor_bulk_select(fc, o->floor.bulk_variants) < 0)
		rc = PCB_EXIT_USAGE;
	if (!rc && floor_parse_rates(fc, o->floor.link_rates) < 0)
		rc = PCB_EXIT_USAGE;
	if (!rc && floor_parse_vcpus(&fc->kvm, o->floor.kvm_vcpus) < 0) {
		pcb_err("floor: invalid value for --kvm-vcpus: '%s' (want counts 1..%d, comma-separated, up to 4)",
			o->floor.kvm_vcpus, PCB_FLOOR_KVM_MAX_VCPUS);
		rc = PCB_EXIT_USAGE;
	}
	free(o);
	if (rc)
		return rc;
	/* a pull at the slowest rate must end in reasonable time (every rate runs --bulk-reps times) */
	for (unsigned k = 0; !fc->no_link && k < fc->nlink; k++) {
		double secs = (double)fc->bulk_bytes * 8 / (double)fc->link_bps[k];
		if (secs > 600) {
			char sz[32];
			pcb_err("floor: invalid value for --link-rates: '%s' would take %.0f s per %s pull (at most 600 s: a faster "
				"rate or a smaller --bulk)", fc->link_name[k], secs, pcb_fmt_size(fc->bulk_bytes, sz, sizeof(sz)));
			return PCB_EXIT_USAGE;
		}
	}
	return 0;
}

static void print_verdicts(const struct floor_run *F)
{
	if (!F->fc.no_demand)
		printf("\ndemand target (paired median p50 <= 1.15, p99 <= 1.3 x bare TCP, every placement): %s\n",
		       F->met_demand ? "met" : "NOT met");
	if (!F->fc.no_bulk && !F->fc.all_bulk)
		printf("bulk, floor and zero-page targets: not judged (--bulk-variants=%s measures a subset)\n", F->fc.bulk_variants);
	else if (!F->fc.no_bulk) {
		printf("bulk target (paired median: best pcbench pull >= 0.9 x transport, every placement): %s (the transport "
		       "has no installs: the floor itself is %.2f", F->met_bulk ? "met" : "NOT met",
		       F->bs[0].transport > 0 ? F->bs[0].floor / F->bs[0].transport : 0);
		for (unsigned p = 1; p < F->nplace; p++)
			printf(", %.2f", F->bs[p].transport > 0 ? F->bs[p].floor / F->bs[p].transport : 0);
		printf(" of it)\n");
		printf("bulk against the transport+install floor (paired median: best pcbench >= 0.9 x floor, the best bare "
		       "receiver fed from the pull's memory, every placement): %s\n",
		       F->met_bulk_floor ? "met" : "NOT met");
		printf("zero-page target (paired median: default image >= 0.9 x zero-free image, every install path and placement): %s\n",
		       F->met_zero ? "met" : "NOT met");
	}
	if (F->do_link)
		floor_link_verdict(&F->ls);
	if (!F->fc.no_kvm)
		printf("KVM demand paging target (paired median: pcbench >= bare with 1 vCPU, >= 0.7 x with more): %s%s\n",
		       F->kvm_skipped[0] ? "not judged: " : F->met_kvm ? "met" : "NOT met", F->kvm_skipped);
}

static void report(struct floor_run *F)
{
	printf("pcbench floor %s (git %s): kernel %s, %d CPUs, %s", PCB_VERSION, PCB_GITREV, F->sys.kernel,
	       F->sys.cpus_online, F->sys.cpu_model);
	pcb_sysinfo_print_reporting(&F->sys, stdout);
	putchar('\n');
	floor_print_demand(F);
	floor_print_bulk(F);
	if (F->do_link)
		floor_link_print(&F->fc, &F->ls);
	if (F->kvm_skipped[0])
		printf("\nKVM demand paging: not measured: %s\n", F->kvm_skipped);
	F->met_kvm = F->fc.no_kvm || F->kvm_skipped[0] || pcb_floor_kvm_print(&F->fc.kvm, F->kvm_rows);
	print_verdicts(F);
}

/* ---- --json ------------------------------------------------------------------------------ */

static void json_config(const struct floor_run *F, struct pcb_json *j)
{
	const struct floor_cfg *fc = &F->fc;
	pcb_json_obj_begin(j, "config");
	pcb_json_u64(j, "faults", F->per_round * fc->rounds);
	pcb_json_u64(j, "rounds", fc->rounds);
	pcb_json_u64(j, "bulk_bytes", fc->bulk_bytes);
	pcb_json_u64(j, "bulk_batch_pages", fc->batch);
	pcb_json_u64(j, "bulk_window", fc->window);
	pcb_json_u64(j, "bulk_reps", fc->bulk_reps);
	pcb_json_u64(j, "seed", fc->seed);
	pcb_json_str(j, "zero_model", floor_zero_model(fc));
	pcb_json_u64(j, "zero_run_max", fc->zero_run_max);
	pcb_json_str(j, "source_image", pcb_source_image_name((enum pcb_source_image_mode)fc->source_image));
	pcb_json_str(j, "source_send", pcb_source_send_name((enum pcb_source_send)fc->source_send));
	pcb_json_str(j, "source_send_used", !floor_src_image.reason ? "" : floor_src_image.splices ? "splice" : "writev");
	pcb_json_str(j, "source_image_used", floor_src_image.reason ? pcb_source_image_name(floor_src_image.mode) : "");
	pcb_json_u64(j, "source_image_build_ns_max", floor_src_image.build_ns);
	pcb_json_bool(j, "demand", !fc->no_demand);
	pcb_json_bool(j, "bulk", !fc->no_bulk);
	pcb_json_str(j, "bulk_variants", fc->bulk_variants);
	pcb_json_bool(j, "link_bulk", F->do_link);
	pcb_json_arr_begin(j, "link_rates");
	for (unsigned k = 0; k < fc->nlink; k++)
		pcb_json_str(j, NULL, fc->link_name[k]);
	pcb_json_arr_end(j);
	pcb_json_u64(j, "link_rtt_ns", fc->link_rtt_ns);
	pcb_json_obj_end(j);
}

static int write_floor_json(const struct floor_run *F)
{
	const struct floor_cfg *fc = &F->fc;
	FILE *fp = fopen(fc->json, "w");
	if (!fp) {
		pcb_err("floor: cannot write --json file '%s': %s", fc->json, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	struct pcb_json *j = pcb_json_open(fp);
	pcb_json_obj_begin(j, NULL);
	/* 2: bulk_summary's floor is the best bare receiver fed from memory the size of the pull (was: from one
	 * cache-hot buffer, now hot_buffer_ceiling) */
	pcb_json_u64(j, "schema_version", 2);
	pcb_json_str(j, "tool", "pcbench");
	pcb_json_str(j, "kind", "floor");
	pcb_json_str(j, "version", PCB_VERSION);
	pcb_json_str(j, "git_revision", PCB_GITREV);
	json_config(F, j);
	pcb_json_obj_begin(j, "system");
	pcb_sysinfo_json(&F->sys, j, "host");
	pcb_json_obj_end(j);
	pcb_json_obj_begin(j, "results");
	pcb_json_u64(j, "run_ns", pcb_now_ns() - F->t_start);
	if (!fc->no_demand)
		floor_json_demand(F, j);
	if (!fc->no_bulk)
		floor_json_bulk(F, j);
	if (F->do_link)
		floor_link_json(j, fc, &F->ls);
	if (!fc->no_kvm && F->kvm_skipped[0]) {
		pcb_json_str(j, "kvm_demand_paging_skipped", F->kvm_skipped);
	} else if (!fc->no_kvm) {
		pcb_floor_kvm_json(j, &fc->kvm, F->kvm_rows);
		pcb_json_bool(j, "kvm_target_met", F->met_kvm);
	}
	pcb_json_obj_end(j);
	pcb_json_obj_end(j);
	if (pcb_json_close(j) < 0 || fclose(fp) != 0) {
		pcb_err("floor: error writing '%s'", fc->json);
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* Phases: parse, demand faults, bulk pull, emulated link, KVM demand paging, report, JSON. */
int pcb_floor_main(int argc, char **argv)
{
	static struct floor_run F;   /* large (histograms, per-repetition tables) */
	char why[512];
	memset(&F, 0, sizeof(F));
	int rc = floor_parse(&F.fc, argc, argv);
	if (rc)
		return rc == 1 ? 0 : rc;
	F.nplace = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
	pcb_sysinfo_read(&F.sys);
	F.t_start = pcb_now_ns();
	F.per_round = F.fc.faults / F.fc.rounds;
	F.do_link = !F.fc.no_link;
	if ((rc = floor_measure_demand(&F, why, sizeof(why))) || (rc = floor_measure_bulk(&F, why, sizeof(why))))
		return rc;
	if (F.do_link && (rc = floor_link_measure(&F.fc, F.nplace, &F.ls, why, sizeof(why)))) {
		pcb_err("floor: bulk over an emulated link: %s", why);
		return rc;
	}
	int kfd = F.fc.no_kvm ? -1 : open("/dev/kvm", O_RDWR | O_CLOEXEC);   /* a machine without KVM: the rest stands */
	if (!F.fc.no_kvm && kfd < 0) {
		snprintf(F.kvm_skipped, sizeof(F.kvm_skipped), "cannot open /dev/kvm: %s", strerror(errno));
		fprintf(stderr, "floor: KVM demand paging not measured: %s\n", F.kvm_skipped);
	}
	if (kfd >= 0)
		close(kfd);
	if (!F.fc.no_kvm && !F.kvm_skipped[0]) {
		fprintf(stderr, "floor: KVM demand paging, %u vCPU counts, %u repetitions\n", F.fc.kvm.nv, F.fc.kvm.reps);
		if ((rc = pcb_floor_kvm(&F.fc.kvm, F.kvm_rows, why, sizeof(why)))) {
			pcb_err("floor: KVM demand paging: %s", why);
			return rc;
		}
	}
	report(&F);
	return F.fc.json[0] ? write_floor_json(&F) : 0;
}
