/* pcbench floor: KVM demand paging, bare (as Linux's KVM selftest
 * demand_paging_test.c) and pcbench, paired by repetition (floor/kvm.c);
 * the process guest measured the same way. */
#ifndef PCB_FLOOR_KVM_H
#define PCB_FLOOR_KVM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCB_FLOOR_KVM_MAX_VCPUS 8
#define PCB_FLOOR_KVM_MAX_REPS 16

struct pcb_floor_kvm_cfg {
	unsigned vcpus[4], nv;       /* vCPU counts measured */
	uint64_t mem_per_vcpu;       /* bytes each vCPU faults in */
	unsigned reps;
	uint64_t seed;
};

struct pcb_floor_kvm_pair {
	double bare[PCB_FLOOR_KVM_MAX_REPS], pcb[PCB_FLOOR_KVM_MAX_REPS];   /* pages/s */
	double ratio[PCB_FLOOR_KVM_MAX_REPS];                              /* pcb / bare, per repetition */
	/* CPU µs per page: bare vCPU + handler threads; pcbench vCPU + pager threads (results.cpu);
	 * pcbench's forked source process over its whole life (serving and verification digests) */
	double bare_cpu_us[PCB_FLOOR_KVM_MAX_REPS], pcb_cpu_us[PCB_FLOOR_KVM_MAX_REPS], src_cpu_us[PCB_FLOOR_KVM_MAX_REPS];
	/* the vCPU threads' share of bare_cpu_us and of pcb_cpu_us: the rest is the handlers', or the pager's */
	double bare_vcpu_us[PCB_FLOOR_KVM_MAX_REPS], pcb_vcpu_us[PCB_FLOOR_KVM_MAX_REPS];
	/* bare over TCP: the same handlers, each fetching its page from a forked server over its own TCP
	 * connection (the demand path without pcbench): pages/s, pcb / it, CPU µs per page of the vCPU and
	 * handler threads and of the servers */
	double tcp[PCB_FLOOR_KVM_MAX_REPS], tcp_ratio[PCB_FLOOR_KVM_MAX_REPS];
	double tcp_cpu_us[PCB_FLOOR_KVM_MAX_REPS], tcp_srv_us[PCB_FLOOR_KVM_MAX_REPS];
	char replies[16];            /* the pcbench runs' results.pager.demand_replies (--demand-replies=auto resolved) */
	unsigned lanes;              /* and demand_lanes */
};

struct pcb_floor_kvm_row {
	unsigned vcpus;
	struct pcb_floor_kvm_pair kvm;    /* the KVM guest (the target) */
	struct pcb_floor_kvm_pair proc;   /* the process guest (vCPU threads), the same way: reported, no target */
	/* 1 vCPU: the KVM guest again with every thread on CPU 0 (bare: vCPU and
	 * handler; pcbench: --pin=same, its source too): reported, no target */
	bool has_same;
	struct pcb_floor_kvm_pair same;
	double same_over_unpinned[PCB_FLOOR_KVM_MAX_REPS];   /* pcbench on CPU 0 / bare unpinned, per repetition */
};

/* Measure every vCPU count, reps times.  0 or an exit code with the reason. */
int pcb_floor_kvm(const struct pcb_floor_kvm_cfg *c, struct pcb_floor_kvm_row *rows, char *why, size_t whylen);
/* Print the rows with the target; true when every vCPU count meets it. */
bool pcb_floor_kvm_print(const struct pcb_floor_kvm_cfg *c, const struct pcb_floor_kvm_row *rows);
struct pcb_json;
void pcb_floor_kvm_json(struct pcb_json *j, const struct pcb_floor_kvm_cfg *c, const struct pcb_floor_kvm_row *rows);
#endif
