/* Reading the maps: the per-CPU counters and histograms of bpf/faultlat and
 * bpf/pager, summed over the CPUs, and the per-thread table.  See
 * trace/internal.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "trace/internal.h"

static int read_percpu_hist(struct bpf_map *map, uint32_t key, int ncpus, struct pcb_hist *out,
			    uint64_t *sum, void *buf)
{
	size_t vsz = bpf_map__value_size(map);
	int err;

	err = bpf_map__lookup_elem(map, &key, sizeof(key), buf, vsz * (size_t)ncpus, 0);
	if (err)
		return err;
	memset(sum, 0, sizeof(uint64_t) * PCB_HIST_BUCKETS);
	for (int c = 0; c < ncpus; c++) {
		const uint64_t *b = (const uint64_t *)((char *)buf + vsz * (size_t)c);
		for (unsigned i = 0; i < PCB_HIST_BUCKETS; i++)
			sum[i] += b[i];
	}
	pcb_hist_init(out);
	pcb_hist_add_buckets(out, sum, PCB_HIST_BUCKETS);
	return 0;
}

static int read_percpu_counters(struct bpf_map *map, int ncpus, uint64_t *out, unsigned n)
{
	size_t vsz = bpf_map__value_size(map);
	uint32_t key = 0;
	void *buf = calloc((size_t)ncpus, vsz);
	int err;

	if (!buf)
		return -ENOMEM;
	err = bpf_map__lookup_elem(map, &key, sizeof(key), buf, vsz * (size_t)ncpus, 0);
	if (!err) {
		memset(out, 0, sizeof(uint64_t) * n);
		for (int c = 0; c < ncpus; c++) {
			const uint64_t *v = (const uint64_t *)((char *)buf + vsz * (size_t)c);
			for (unsigned i = 0; i < n; i++)
				out[i] += v[i];
		}
	}
	free(buf);
	return err;
}

/* nh per-CPU histograms of hmap and the nc counters of cmap, summed over the CPUs. */
static int read_percpu(struct bpf_map *hmap, struct pcb_hist *hist, unsigned nh, struct bpf_map *cmap,
		       uint64_t *counter, unsigned nc, int ncpus)
{
	uint64_t *sum = malloc(sizeof(uint64_t) * PCB_HIST_BUCKETS);
	void *buf = calloc((size_t)ncpus, bpf_map__value_size(hmap));
	int err = -ENOMEM;

	if (!sum || !buf)
		goto out;
	for (uint32_t h = 0; h < nh; h++) {
		err = read_percpu_hist(hmap, h, ncpus, &hist[h], sum, buf);
		if (err)
			goto out;
	}
	err = read_percpu_counters(cmap, ncpus, counter, nc);
out:
	free(sum);
	free(buf);
	return err;
}

int trace_read_fl(struct pcb_trace *t, struct pcb_trace_stats *s)
{
	int err = read_percpu(t->fl->maps.hists, s->hist, FL_NHIST, t->fl->maps.counters, s->counter,
			      FL_NCOUNTERS, t->ncpus);

	if (err)
		return err;
	if (!t->msgs) {
		/* Delivered = blocked here; the per-thread histograms and counts
		 * hold the faults of threads that have one (see bpf/faultlat.h). */
		struct fl_thread *v = malloc(sizeof(*v));
		uint64_t used = __atomic_load_n(&t->fl->bss->next_tstat, __ATOMIC_ACQUIRE);

		if (!v)
			return -ENOMEM;
		for (uint32_t key = 0; key < used && key < FL_MAX_TSTATS; key++) {
			if (bpf_map__lookup_elem(t->fl->maps.tstats, &key, sizeof(key), v, sizeof(*v), 0) || !v->tid)
				continue;
			pcb_hist_add_buckets(&s->hist[FL_H_FAULT_TO_RUNNING], v->bucket, PCB_HIST_BUCKETS);
			s->counter[FL_C_BLOCKING] += v->blocking;
			s->counter[FL_C_BLOCKED_ALL] += v->blocking;
		}
		free(v);
	}
	s->msgs = t->msgs;
	s->wakeup = t->wakeup;
	s->ranges = (uint64_t)__builtin_popcountll(__atomic_load_n(&t->fl->bss->range_bits, __ATOMIC_ACQUIRE));
	for (int i = 0; i < 8; i++)
		s->readers[i] = (pid_t)__atomic_load_n(&t->fl->bss->msg_tgids[i], __ATOMIC_ACQUIRE);
	s->events_written = __atomic_load_n(&t->events_written, __ATOMIC_RELAXED);
	return 0;
}

int trace_read_pg(struct pcb_trace *t, struct pg_stats *s)
{
	return read_percpu(t->pg->maps.pg_hists, s->hist, PG_NHIST, t->pg->maps.pg_counters, s->counter,
			   PG_NCOUNTERS, t->ncpus);
}

static int cmp_thread(const void *a, const void *b)
{
	const struct pcb_trace_thread *x = a, *y = b;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

int trace_read_threads(struct pcb_trace *t, struct pcb_trace_thread **out, size_t *n)
{
	struct bpf_map *map = t->fl->maps.tstats;
	struct fl_thread *v = malloc(sizeof(*v));
	struct pcb_trace_thread *arr = NULL, *na;
	size_t cnt = 0, cap = 0;
	uint64_t used = __atomic_load_n(&t->fl->bss->next_tstat, __ATOMIC_ACQUIRE);
	int err = 0;

	if (!v)
		return -ENOMEM;
	if (used > FL_MAX_TSTATS)
		used = FL_MAX_TSTATS;
	for (uint32_t key = 0; key < used; key++) {
		if (bpf_map__lookup_elem(map, &key, sizeof(key), v, sizeof(*v), 0) || !v->tid)
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				err = -ENOMEM;
				break;
			}
			arr = na;
		}
		arr[cnt].tid = (pid_t)v->tid;
		arr[cnt].blocking = v->blocking;
		arr[cnt].delivered = (t->msgs ? v->blocking - v->undelivered + v->late + v->delivered_noblock
					      : v->blocking) + v->lost;
		arr[cnt].nonblocking = v->nonblocking;
		arr[cnt].kvm = v->kvm;
		memcpy(arr[cnt].comm, v->comm, sizeof(arr[cnt].comm));
		arr[cnt].comm[sizeof(arr[cnt].comm) - 1] = 0;
		pcb_hist_init(&arr[cnt].hist);
		pcb_hist_add_buckets(&arr[cnt].hist, v->bucket, PCB_HIST_BUCKETS);
		cnt++;
	}
	free(v);
	if (err) {
		free(arr);
		return err;
	}
	if (cnt)
		qsort(arr, cnt, sizeof(*arr), cmp_thread);
	*out = arr;
	*n = cnt;
	return 0;
}
