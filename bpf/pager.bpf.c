// SPDX-License-Identifier: GPL-2.0
/* The pager's internal breakdown from the pcbench:* USDT probes
 * (pager/probes.h): queueing before the request, network round trip per
 * channel, install time per kind, install counts and -EEXIST races.  The
 * probes are attached for one pid, so no filtering is needed here. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "bpf/pager.h"
#include "bpf/percpu.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PCB_EEXIST 17

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PG_MAX_PAGES);
	__type(key, __u64);
	__type(value, struct pg_page);
} pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PG_NHIST);
	__type(key, __u32);
	__type(value, struct pg_hist);
} pg_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_counters);
} pg_counters SEC(".maps");

static __always_inline void count_n(__u32 idx, __u64 n)
{
	pcb_percpu_count(&pg_counters, idx, PG_NCOUNTERS, n);
}

static __always_inline void hist_add(__u32 id, __u64 v)
{
	pcb_percpu_hist(&pg_hists, id, v, 1);
}

static __always_inline struct pg_page *page_get(__u64 page)
{
	struct pg_page *p = bpf_map_lookup_elem(&pages, &page), fresh = {};

	if (p)
		return p;
	bpf_map_update_elem(&pages, &page, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&pages, &page);
}

/* A page's next step at `now`: the first time, when `measure` and the step before was
 * seen (prev_ns), its latency since that step goes into histogram `hist`. */
static __always_inline void stamp(__u64 *ns, __u64 now, __u64 prev_ns, bool measure, __u32 hist)
{
	if (measure && prev_ns && !*ns)
		hist_add(hist, now - prev_ns);
	*ns = now;
}

SEC("usdt")
int BPF_USDT(pg_fault, __u64 addr, __u32 tid, __u64 page)
{
	struct pg_page *p = page_get(page);

	count_n(PG_C_FAULT, 1);
	if (p && !p->fault_ns)
		p->fault_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("usdt")
int BPF_USDT(pg_request, __u64 page, __u32 channel, __u32 npages)
{
	__u64 now = bpf_ktime_get_ns();
	struct pg_page *p = page_get(page);

	count_n(PG_C_REQUEST, 1);
	if (channel < PG_NCHAN)
		count_n(PG_C_REQ_PAGES + channel, npages);
	if (!p)
		return 0;
	stamp(&p->request_ns, now, p->fault_ns, channel == 0, PG_H_QUEUE);
	p->channel = channel;
	return 0;
}

SEC("usdt")
int BPF_USDT(pg_received, __u64 page, __u32 channel, __u32 zero)
{
	__u64 now = bpf_ktime_get_ns();
	struct pg_page *p = page_get(page);

	count_n(PG_C_RECEIVED, 1);
	if (zero)
		count_n(PG_C_RECV_ZERO, 1);
	if (!p)
		return 0;
	stamp(&p->received_ns, now, p->request_ns, channel < PG_NCHAN, PG_H_RTT + channel);
	return 0;
}

SEC("usdt")
int BPF_USDT(pg_installed, __u64 page, __u32 kind, __s32 result)
{
	__u64 now = bpf_ktime_get_ns();
	struct pg_page *p = bpf_map_lookup_elem(&pages, &page);

	count_n(PG_C_INSTALLED, 1);
	if (kind < PG_NKINDS) {
		if (result == 0)
			count_n(PG_C_INSTALLS + kind, 1);
		else if (result == -PCB_EEXIST)
			count_n(PG_C_EEXIST + kind, 1);
		else
			count_n(PG_C_ERRORS, 1);
	} else if (result != 0 && result != -PCB_EEXIST) {
		count_n(PG_C_ERRORS, 1);
	}
	if (!p) {
		count_n(PG_C_UNMATCHED, 1);
		return 0;
	}
	if (p->received_ns && kind < PG_NKINDS)
		hist_add(PG_H_INSTALL + kind, now - p->received_ns);
	else if (!p->received_ns)
		count_n(PG_C_UNMATCHED, 1);
	if (p->fault_ns)
		hist_add(PG_H_FAULT_TO_INSTALLED, now - p->fault_ns);
	bpf_map_delete_elem(&pages, &page);
	return 0;
}

SEC("usdt")
int BPF_USDT(pg_decision, __u64 first_page, __u32 npages, __u32 nranges)
{
	count_n(PG_C_DECISION, 1);
	count_n(PG_C_DECISION_PAGES, npages);
	return 0;
}

SEC("usdt")
int BPF_USDT(pg_guest_stop, __u32 vcpu)
{
	count_n(PG_C_GUEST_STOP, 1);
	return 0;
}
