/* --guest=kvm: the workload runs inside a minimal KVM virtual machine whose
 * memory is the migration's guest region.  Each vCPU is a thread in KVM_RUN;
 * a missing page is an EPT fault resolved through KVM's fault path into
 * userfaultfd, so the vCPU thread blocks in the kernel until the pager
 * installs the page -- as QEMU's post-copy does. */
#ifndef PCB_KVM_H
#define PCB_KVM_H
#include "common/image.h"
#include "workloads/workload.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pcb_kvm_cfg {
	const struct pcb_workload_ops *ops;
	uint8_t *region;
	uint64_t npages;
	unsigned nvcpus;
	const struct pcb_image *im;
	_Atomic uint32_t *first_touch;           /* NULL: none (mmap'd, page aligned) */
	const _Atomic uint64_t *const *faults;   /* per-vCPU fault counters */
	void *const *gen_state;                  /* per-vCPU generator state (ops->guest_ts_size bytes) */
	void *shared;                            /* the generator's shared state (for guest_export) */
	uint64_t seed;
	double write_ratio;
	uint64_t duration_ns, ops_limit, bucket_ns;
};

struct pcb_kvm;
/* The names of the workloads the guest carries, e.g. "seq, random, ...". */
const char *pcb_kvm_workload_names(void);
/* Build the VM.  0 or an exit code (69 no KVM, 77 no permission, 64 the
 * workload is not in the guest) with a one-line reason. */
int pcb_kvm_create(const struct pcb_kvm_cfg *cfg, struct pcb_kvm **out, char *why, size_t whylen);
/* Run vCPU v to completion in the calling thread; base_ns = switch-over.
 * Fills r.  0, or -1 with the reason in pcb_kvm_error(). */
int pcb_kvm_run_vcpu(struct pcb_kvm *k, unsigned v, uint64_t base_ns, struct pcb_vcpu_result *r);
const char *pcb_kvm_error(struct pcb_kvm *k);
uint32_t pcb_kvm_tsc_khz(struct pcb_kvm *k);
void pcb_kvm_destroy(struct pcb_kvm *k);
#endif
