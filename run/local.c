/* The guest over a region populated before it starts, no migration: the
 * --policy=local run itself and the --baseline=run reference. */
#include "run/internal.h"
#include "common/util.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* A bytes image's pages as the local region holds them before the guest
 * runs (the guest may write anywhere afterwards): the local counterpart of
 * verifying pages as they arrive. */
static void local_fill_check(struct run *r, const uint8_t *region, struct pcb_verify *ver)
{
	memset(ver, 0, sizeof(*ver));
	for (uint64_t pg = 0; pg < r->npages; pg++)
		pcb_verify_count(ver, pg, pcb_page_digest_full(region + pg * PCB_PAGE_SIZE) == pcb_image_digest(&r->im, pg)
						  ? PCB_PAGE_VERIFIED : PCB_PAGE_CORRUPT);
}

/* The same guest over a region fully populated before it starts: the
 * --policy=local run itself, or the --baseline=run reference.  Fills
 * *gout (joined), the progress series and the verification. */
int run_local_guest(struct run *r, const struct pcb_wl_params *prm, bool record, struct pcb_guest **gout,
			   struct pcb_progress *prog, struct pcb_verify *ver, uint64_t *t_go, uint64_t *t_done,
			   bool check_app, char *why, size_t whylen)
{
	const struct pcb_config *cfg = r->cfg;
	uint8_t *region = pcb_local_region(&r->im, r->npages);
	if (!region) {
		snprintf(why, whylen, "cannot map %llu pages for the local run: %s", (unsigned long long)r->npages, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (r->im.mem)
		local_fill_check(r, region, ver);
	/* the same first-touch bookkeeping as a migrated guest, so the loops compare like for like */
	_Atomic uint32_t *ft = mmap(NULL, r->npages * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ft == MAP_FAILED) {
		munmap(region, r->npages * PCB_PAGE_SIZE);
		snprintf(why, whylen, "out of memory for the first-touch record");
		return PCB_EXIT_OSERR;
	}
	struct pcb_guest_cfg gc = {
		.first_touch = ft,
		.ops = pcb_workload_find(cfg->workload), .prm = *prm, .region = region, .im = &r->im,
		.write_ratio = cfg->write_ratio, .duration_ns = cfg->duration_ns, .ops_limit = cfg->ops,
		.bucket_ns = (uint64_t)cfg->bucket_ms * PCB_NSEC_PER_MSEC, .record = record,
		.kvm = cfg->guest == PCB_GUEST_KVM,
	};
	int rc = pcb_guest_create(&gc, NULL, gout, why, whylen);
	if (!rc && (rc = pcb_guest_start(*gout)) != 0)
		snprintf(why, whylen, "cannot start the guest threads");
	if (rc) {
		munmap(region, r->npages * PCB_PAGE_SIZE);
		munmap(ft, r->npages * 4);
		return rc;
	}
	*t_go = pcb_now_ns();
	pcb_guest_go(*gout, *t_go);
	pcb_guest_join(*gout);
	*t_done = pcb_now_ns();
	munmap(ft, r->npages * 4);
	if (pcb_guest_error(*gout)) {
		snprintf(why, whylen, "%s", pcb_guest_error(*gout));
		munmap(region, r->npages * PCB_PAGE_SIZE);
		return PCB_EXIT_SOFTWARE;
	}
	rc = r->im.mem ? 0   /* a bytes image: checked as it was filled in, before the guest ran */
		       : pcb_local_verify(region, &r->im, r->npages, ver, why, whylen);
	if (!rc && check_app && pcb_wl_is_app(gc.ops))
		run_app_check(r, *gout);
	munmap(region, r->npages * PCB_PAGE_SIZE);
	if (!rc && pcb_progress_collect(prog, *gout, cfg->vcpus, gc.bucket_ns, *t_go) < 0) {
		snprintf(why, whylen, "out of memory for the progress series");
		rc = PCB_EXIT_OSERR;
	}
	return rc;
}

/* --baseline=run: the same guest over a local region first */
int run_baseline(struct run *r)
{
	struct pcb_guest *bg = NULL;
	struct pcb_verify bv;
	uint64_t t0, t1;
	char why[512];
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	int rc = run_local_guest(r, &r->prm, false, &bg, &r->base, &bv, &t0, &t1, false, why, sizeof(why));
	getrusage(RUSAGE_SELF, &ru1);
	r->baseline_cpu_ns = run_rusage_ns(&ru1) - run_rusage_ns(&ru0);   /* not the migration's (results.cpu) */
	if (!rc && (bv.pages_corrupt || bv.pages_missing)) {
		snprintf(why, sizeof(why), "the local baseline run failed its integrity check: %llu corrupt, %llu missing pages",
			 (unsigned long long)bv.pages_corrupt, (unsigned long long)bv.pages_missing);
		rc = PCB_EXIT_VERIFY;
	}
	if (bg)
		pcb_guest_destroy(bg);
	if (rc)
		pcb_err("%s", why);
	return rc;
}
