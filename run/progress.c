/* Guest progress over time and the local baseline.  See progress.h. */
#include "run/progress.h"
#include "common/json.h"
#include "common/util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int pcb_progress_collect(struct pcb_progress *p, struct pcb_guest *g, unsigned nvcpus, uint64_t bucket_ns,
			 uint64_t base_ns)
{
	memset(p, 0, sizeof(*p));
	p->bucket_ns = bucket_ns;
	p->nvcpus = nvcpus;
	p->first_work_ns = UINT64_MAX;
	uint64_t end_min = UINT64_MAX;
	for (unsigned v = 0; v < nvcpus; v++) {
		const struct pcb_vcpu_result *r = pcb_guest_result(g, v);
		if (r->nbuckets > p->nbuckets)
			p->nbuckets = r->nbuckets;
		if (r->t_first_op_ns && r->t_first_op_ns - base_ns < p->first_work_ns)
			p->first_work_ns = r->t_first_op_ns - base_ns;
		if (r->t_end_ns - base_ns < end_min)
			end_min = r->t_end_ns - base_ns;
	}
	if (!bucket_ns)
		return 0;
	p->ncomplete = end_min == UINT64_MAX ? 0 : end_min / bucket_ns;
	if (p->ncomplete > p->nbuckets)
		p->ncomplete = p->nbuckets;
	p->per_vcpu = calloc(nvcpus, sizeof(*p->per_vcpu));
	p->total = calloc(p->nbuckets ? p->nbuckets : 1, sizeof(uint64_t));
	if (!p->per_vcpu || !p->total)
		return -ENOMEM;
	for (unsigned v = 0; v < nvcpus; v++) {
		const struct pcb_vcpu_result *r = pcb_guest_result(g, v);
		p->per_vcpu[v] = calloc(p->nbuckets ? p->nbuckets : 1, sizeof(uint64_t));
		if (!p->per_vcpu[v])
			return -ENOMEM;
		for (uint64_t i = 0; i < r->nbuckets; i++) {
			p->per_vcpu[v][i] = r->buckets[i];
			p->total[i] += r->buckets[i];
		}
	}
	double sum = 0;
	for (uint64_t i = 0; i < p->ncomplete; i++)
		sum += (double)p->total[i];
	p->mean_per_bucket = p->ncomplete ? sum / (double)p->ncomplete : 0;
	return 0;
}

int pcb_progress_compare(struct pcb_progress *p, const struct pcb_progress *local)
{
	p->have_baseline = true;
	p->base_ncomplete = local->ncomplete;
	p->base_mean_per_bucket = local->mean_per_bucket;
	p->base_total = calloc(local->nbuckets ? local->nbuckets : 1, sizeof(uint64_t));
	if (!p->base_total)
		return -ENOMEM;
	memcpy(p->base_total, local->total, local->nbuckets * sizeof(uint64_t));
	/* back within 5 %: the first bucket from which every window of
	 * PCB_PROGRESS_WINDOW complete buckets averages >= 95 % of the
	 * baseline's mean rate (a window smooths one-bucket noise) */
	double thr = 0.95 * local->mean_per_bucket;
	uint64_t n = p->ncomplete, w = PCB_PROGRESS_WINDOW;
	p->recovered = false;
	if (n >= w && local->ncomplete) {
		uint64_t start = 0;
		double s = 0;
		for (uint64_t i = 0; i < w; i++)
			s += (double)p->total[i];
		for (uint64_t j = 0; j + w <= n; j++) {
			if (j) {
				s += (double)p->total[j + w - 1];
				s -= (double)p->total[j - 1];
			}
			if (s / (double)w < thr)
				start = j + 1;
		}
		if (start + w <= n) {
			p->recovered = true;
			p->t95_ns = start * p->bucket_ns;
		}
	}
	uint64_t m = n < local->ncomplete ? n : local->ncomplete;
	int64_t lost = 0;
	for (uint64_t i = 0; i < m; i++)
		lost += (int64_t)local->total[i] - (int64_t)p->total[i];
	p->lost_ops = lost;
	p->lost_s = local->mean_per_bucket > 0 ? (double)lost / local->mean_per_bucket * ((double)p->bucket_ns / 1e9) : 0;
	return 0;
}

void pcb_progress_json(const struct pcb_progress *p, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	pcb_json_u64(j, "bucket_ms", p->bucket_ns / PCB_NSEC_PER_MSEC);
	pcb_json_u64(j, "buckets", p->nbuckets);
	pcb_json_u64(j, "complete_buckets", p->ncomplete);
	pcb_json_arr_begin(j, "per_vcpu");
	for (unsigned v = 0; p->per_vcpu && v < p->nvcpus; v++) {
		pcb_json_arr_begin(j, NULL);
		for (uint64_t i = 0; i < p->nbuckets; i++)
			pcb_json_u64(j, NULL, p->per_vcpu[v][i]);
		pcb_json_arr_end(j);
	}
	pcb_json_arr_end(j);
	pcb_json_arr_begin(j, "total");
	for (uint64_t i = 0; p->total && i < p->nbuckets; i++)
		pcb_json_u64(j, NULL, p->total[i]);
	pcb_json_arr_end(j);
	pcb_json_dbl(j, "mean_ops_per_bucket", p->mean_per_bucket);
	if (p->first_work_ns != UINT64_MAX)
		pcb_json_u64(j, "time_to_first_work_ns", p->first_work_ns);
	else
		pcb_json_null(j, "time_to_first_work_ns");
	if (p->have_baseline && p->recovered)
		pcb_json_u64(j, "time_to_95pct_of_local_ns", p->t95_ns);
	else
		pcb_json_null(j, "time_to_95pct_of_local_ns");
	if (p->have_baseline) {
		pcb_json_i64(j, "lost_work_ops", p->lost_ops);
		pcb_json_dbl(j, "lost_work_s", p->lost_s);
		pcb_json_bool(j, "recovered_to_95pct", p->recovered);
		pcb_json_u64(j, "recovery_window_buckets", PCB_PROGRESS_WINDOW);
		pcb_json_dbl(j, "baseline_mean_ops_per_bucket", p->base_mean_per_bucket);
		pcb_json_arr_begin(j, "baseline_total");
		for (uint64_t i = 0; i < p->base_ncomplete; i++)
			pcb_json_u64(j, NULL, p->base_total[i]);
		pcb_json_arr_end(j);
	} else {
		pcb_json_null(j, "lost_work_ops");
	}
	pcb_json_str(j, "definition",
		     "ops completed per bucket after switch-over; time_to_95pct_of_local_ns: start of the first bucket from which "
		     "every window of recovery_window_buckets complete buckets averages >= 95% of the local baseline's mean; "
		     "lost_work_ops: sum over complete buckets of (local - migrated)");
	pcb_json_obj_end(j);
}

int pcb_progress_csv(const struct pcb_progress *p, const char *path, const char *comment)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	if (comment && *comment)
		fprintf(f, "# %s\n", comment);
	fprintf(f, "t_ms,vcpu,ops\n");
	for (uint64_t i = 0; i < p->nbuckets; i++)
		for (unsigned v = 0; v < p->nvcpus; v++)
			fprintf(f, "%.3f,%u,%llu\n", (double)(i * p->bucket_ns) / 1e6, v,
				(unsigned long long)p->per_vcpu[v][i]);
	int e = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && !e)
		e = errno;
	return -e;
}

int pcb_progress_load_csv(const char *path, struct pcb_progress *p, struct pcb_progress_meta *m, char *why, size_t whylen)
{
	memset(p, 0, sizeof(*p));
	memset(m, 0, sizeof(*m));
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read baseline '%s': %s", path, strerror(errno));
		return errno == ENOENT || errno == EACCES ? PCB_EXIT_DATAERR : PCB_EXIT_OSERR;
	}
	char line[1024];
	unsigned long long lineno = 0;
	bool meta = false, header = false;
	int rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (line[0] == '#') {
			const char *q = strstr(line, "progress: ");
			if (q && sscanf(q, "progress: policy=%31s workload=%31s seed=%llu vcpus=%u bucket_ms=%u complete_buckets=%llu guest=%15s",
					m->policy, m->workload, (unsigned long long *)&m->seed, &m->vcpus, &m->bucket_ms,
					(unsigned long long *)&m->complete_buckets, m->guest) == 7)
				meta = true;
			continue;
		}
		if (!header) {
			if (strncmp(line, "t_ms,vcpu,ops", 13)) {
				snprintf(why, whylen, "%s:%llu: not a pcbench progress CSV (want the header t_ms,vcpu,ops)", path, lineno);
				rc = PCB_EXIT_DATAERR;
				goto out;
			}
			header = true;
			if (!meta || !m->vcpus || !m->bucket_ms || m->vcpus > 4096) {
				snprintf(why, whylen, "%s: no usable '# pcbench ... progress:' line (written by an older pcbench?)", path);
				rc = PCB_EXIT_DATAERR;
				goto out;
			}
			p->bucket_ns = (uint64_t)m->bucket_ms * PCB_NSEC_PER_MSEC;
			p->nvcpus = m->vcpus;
			p->per_vcpu = calloc(m->vcpus, sizeof(*p->per_vcpu));
			if (!p->per_vcpu) {
				rc = PCB_EXIT_OSERR;
				goto out;
			}
			continue;
		}
		double t;
		unsigned v;
		unsigned long long ops;
		char tail;
		if (sscanf(line, "%lf,%u,%llu%c", &t, &v, &ops, &tail) < 3 || v >= m->vcpus || t < 0 || t > 1e9) {
			snprintf(why, whylen, "%s:%llu: bad row (want t_ms,vcpu,ops with vcpu < %u)", path, lineno, m->vcpus);
			rc = PCB_EXIT_DATAERR;
			goto out;
		}
		uint64_t i = (uint64_t)(t / m->bucket_ms + 0.5);
		if (i >= p->nbuckets) {
			uint64_t nb = i + 1;
			for (unsigned k = 0; k < m->vcpus; k++) {
				uint64_t *a = realloc(p->per_vcpu[k], nb * sizeof(uint64_t));
				if (!a) {
					rc = PCB_EXIT_OSERR;
					goto out;
				}
				memset(a + p->nbuckets, 0, (nb - p->nbuckets) * sizeof(uint64_t));
				p->per_vcpu[k] = a;
			}
			p->nbuckets = nb;
		}
		p->per_vcpu[v][i] += ops;
	}
	if (!header || !p->nbuckets) {
		snprintf(why, whylen, "%s: no progress rows", path);
		rc = PCB_EXIT_DATAERR;
		goto out;
	}
	p->total = calloc(p->nbuckets, sizeof(uint64_t));
	if (!p->total) {
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	for (unsigned k = 0; k < m->vcpus; k++)
		for (uint64_t i = 0; i < p->nbuckets; i++)
			p->total[i] += p->per_vcpu[k][i];
	p->ncomplete = m->complete_buckets < p->nbuckets ? m->complete_buckets : p->nbuckets;
	double sum = 0;
	for (uint64_t i = 0; i < p->ncomplete; i++)
		sum += (double)p->total[i];
	p->mean_per_bucket = p->ncomplete ? sum / (double)p->ncomplete : 0;
	p->first_work_ns = UINT64_MAX;
out:
	fclose(f);
	if (rc) {
		if (rc == PCB_EXIT_OSERR && !why[0])
			snprintf(why, whylen, "%s: out of memory", path);
		pcb_progress_free(p);
	}
	return rc;
}

void pcb_progress_free(struct pcb_progress *p)
{
	for (unsigned v = 0; p->per_vcpu && v < p->nvcpus; v++)
		free(p->per_vcpu[v]);
	free(p->per_vcpu);
	free(p->total);
	free(p->base_total);
	memset(p, 0, sizeof(*p));
}

uint8_t *pcb_local_region(const struct pcb_image *im, uint64_t npages)
{
	uint8_t *r = mmap(NULL, npages * PCB_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	/* the migrated region is 4 KiB pages (userfaultfd COPY): keep the baseline comparable */
	madvise(r, npages * PCB_PAGE_SIZE, MADV_NOHUGEPAGE);
	for (uint64_t pg = 0; pg < npages; pg++)
		pcb_image_fill(im, pg, r + pg * PCB_PAGE_SIZE);
	return r;
}

int pcb_local_verify(const uint8_t *region, const struct pcb_image *im, uint64_t npages, struct pcb_verify *v,
		     char *why, size_t whylen)
{
	memset(v, 0, sizeof(*v));
	unsigned char *vec = malloc(npages ? npages : 1);
	if (!vec) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	if (mincore((void *)region, npages * PCB_PAGE_SIZE, vec) < 0) {
		snprintf(why, whylen, "mincore: %s", strerror(errno));
		free(vec);
		return PCB_EXIT_OSERR;
	}
	for (uint64_t pg = 0; pg < npages; pg++) {
		const uint64_t *w = (const uint64_t *)(region + pg * PCB_PAGE_SIZE);
		pcb_verify_count(v, pg, !(vec[pg] & 1) ? PCB_PAGE_MISSING : pcb_verify_stamped(v, pg, w, pcb_image_digest(im, pg)));
	}
	free(vec);
	return 0;
}
