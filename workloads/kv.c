/* kv: a key-value store laid over the region.  The first index-pages pages
 * are a hash index (bucket pages), the rest hold records of record-pages
 * pages each, placed by a seeded hash of the key.  Keys are Zipfian (theta).
 * An op is a get (read the key's bucket page, then every page of its record)
 * or a put (read the bucket page, then write every page of the record): op
 * latency is what a server would report per request.  Writes are the puts
 * (get=): --write-ratio does not apply. */
#include "common/util.h"
#include "workloads/workload.h"
#include <stdio.h>
#include <stdlib.h>

static const struct pcb_knob kv_knobs[] = {
	{ "get", "0.95", "fraction of ops that are gets (the rest are puts)" },
	{ "record-pages", "1", "pages per record" },
	{ "index-pages", "0", "pages of hash index at the start of the region (0: 1/64 of the region)" },
	{ "theta", "0.99", "Zipf skew of the key popularity (0 < theta < 1)" },
	{ NULL, NULL, NULL },
};

struct kv_shared {
	struct pcb_zipf z;
	uint32_t *slot;              /* popularity rank -> record slot */
	uint64_t nindex, nrecords, record_pages;
	double get;
};

struct kv_ts {
	struct kv_shared *k;
	struct pcb_rng rng;
	uint64_t key, rec_first;
	unsigned step, nsteps;
	bool put;
};

extern const struct pcb_workload_ops pcb_workload_kv;

static int kv_init(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen)
{
	const struct pcb_workload_ops *o = &pcb_workload_kv;
	uint64_t rp, ip;
	double get, theta;
	if (prm->npages < 2) {
		snprintf(why, whylen, "kv needs at least 2 pages of guest memory");
		return -1;
	}
	if (pcb_wl_opt_dbl(o, prm, "get", 0, 1, &get, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "record-pages", 1, 1024, &rp, why, whylen) < 0 ||
	    pcb_wl_opt_u64(o, prm, "index-pages", 0, prm->npages - 1, &ip, why, whylen) < 0 ||
	    pcb_wl_opt_dbl(o, prm, "theta", 0.01, 0.999, &theta, why, whylen) < 0)
		return -1;
	if (!ip)
		ip = prm->npages / 64 ? prm->npages / 64 : 1;
	uint64_t nrec = (prm->npages - ip) / rp;
	if (nrec < 1 || nrec > UINT32_MAX) {
		snprintf(why, whylen, "invalid value for workload option record-pages: '%llu' (%llu data pages hold %llu records)",
			 (unsigned long long)rp, (unsigned long long)(prm->npages - ip), (unsigned long long)nrec);
		return -1;
	}
	struct kv_shared *k = calloc(1, sizeof(*k));
	if (!k)
		return -PCB_EXIT_OSERR;
	k->nindex = ip;
	k->nrecords = nrec;
	k->record_pages = rp;
	k->get = get;
	pcb_zipf_init(&k->z, nrec, theta);
	k->slot = pcb_perm_new(nrec, prm->seed, 0x6b76ull);
	if (!k->slot) {
		free(k);
		return -PCB_EXIT_OSERR;
	}
	*shared = k;
	return 0;
}

static void kv_fini(void *shared)
{
	struct kv_shared *k = shared;
	if (k)
		free(k->slot);
	free(k);
}

static int kv_thread_init(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu)
{
	struct kv_ts *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->k = shared;
	pcb_rng_seed(&s->rng, prm->seed, 0x6b760000ull + vcpu);
	*ts = s;
	return 0;
}

static void kv_next(void *ts, struct pcb_access *a)
{
	struct kv_ts *s = ts;
	struct kv_shared *k = s->k;
	if (s->step == 0) {
		/* a new request: pick the key, read its bucket */
		s->key = pcb_zipf_rank(&k->z, &s->rng);
		s->put = pcb_rng_double(&s->rng) >= k->get;
		s->rec_first = k->nindex + (uint64_t)k->slot[s->key] * k->record_pages;
		s->nsteps = 1 + (unsigned)k->record_pages;
		a->page = pcb_mix64(s->key ^ 0x6b6579ull) % k->nindex;
		a->kind = PCB_ACC_READ;
	} else {
		a->page = s->rec_first + s->step - 1;
		a->kind = s->put ? PCB_ACC_WRITE : PCB_ACC_READ;
	}
	if (++s->step == s->nsteps) {
		s->step = 0;
		a->more = false;
	} else {
		a->more = true;
	}
}

const struct pcb_workload_ops pcb_workload_kv = {
	.abi = PCB_WORKLOAD_ABI,
	.name = "kv",
	.help = "key-value store: hash index + records, Zipfian keys, get/put mix; op = one request",
	.knobs = kv_knobs,
	.init = kv_init,
	.fini = kv_fini,
	.thread_init = kv_thread_init,
	.thread_fini = free,
	.next = kv_next,
};
