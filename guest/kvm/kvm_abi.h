/* The contract between the KVM host side (kvm.c) and the freestanding
 * guest (guest_main.c): guest-physical layout and the control block.
 *
 * Guest-physical memory (identity-mapped in the guest's page tables with
 * 2 MiB user pages; the guest runs in 64-bit long mode at CPL 3, no
 * interrupts, no devices):
 *   [0, LOW_SIZE)            host anonymous memory: control block at CTL_GPA,
 *                            guest code at CODE_GPA, page tables, per-vCPU
 *                            areas (state, results, histograms, progress
 *                            buckets, stack)
 *   TABLES_GPA               tables a generator's next hook reads (e.g. the
 *                            chase cycle), copied in by its guest_export hook
 *   FCNT_GPA                 read-only: the page(s) holding the pager's
 *                            per-vCPU fault counters
 *   FT_GPA                   the first-touch record (one uint32 per page)
 *   REGION_GPA               the guest region: the userfaultfd-registered
 *                            destination region of the migration */
#ifndef PCB_KVM_ABI_H
#define PCB_KVM_ABI_H
#include "common/hist.h"
#include "common/image.h"
#include "common/util.h"
#include <stdint.h>

#define PCB_KVM_CTL_GPA     0x8000ull
#define PCB_KVM_CODE_GPA    0x10000ull
#define PCB_KVM_CODE_MAX    0x30000ull          /* code + data of the guest image */
#define PCB_KVM_PT_GPA      0x40000ull
#define PCB_KVM_FCNT_GPA    0x3fe00000ull
#define PCB_KVM_TABLES_GPA  0x10000000ull       /* 256 MiB: generator tables (guest_export) */
#define PCB_KVM_FT_GPA      0x20000000ull       /* 512 MiB */
#define PCB_KVM_REGION_GPA  0x40000000ull       /* 1 GiB */
#define PCB_KVM_STACK       0x10000ull
#define PCB_KVM_PORT_DONE   0x5cb               /* OUT here = this vCPU finished (guest_entry.S) */
#define PCB_KVM_PORT_SLEEP  0x5cc               /* OUTL here = halt for that many microseconds (think time) */
#define PCB_KVM_MAGIC       0x70636b766d303031ull   /* "pckvm001" */

/* Generators the guest carries (pointer-free per-vCPU state): the
 * symbol part of pcb_workload_NAME.  Order = index in the control block. */
#define PCB_KVM_WORKLOADS(X) X(seq) X(random) X(stride) X(phase) X(scanhot) X(chase) X(idle)

struct pcb_kvm_vcpu {
	/* in (host) */
	uint8_t gen_state[256];      /* copy of the generator's per-vCPU state */
	struct pcb_rng rng;          /* the vCPU loop's own rng (write choice, word checked) */
	uint64_t faults_gpa;         /* this vCPU's pager fault counter */
	uint64_t buckets_gpa, buckets_cap;
	uint64_t base_offset_ns;     /* switch-over -> this vCPU's KVM_RUN (set just before it) */
	/* out (guest) */
	uint64_t ops, reads, writes, accesses, faults, blocktime_ns, read_mismatch, first_mismatch_page;
	uint64_t first_op_ns, end_ns;  /* since switch-over */
	uint64_t nbuckets, buckets_dropped;
	uint64_t tsc_start, tsc_end;
	uint64_t done;
	struct pcb_hist fault_lat, op_lat;
};

struct pcb_kvm_ctl {
	uint64_t magic;
	uint64_t npages, region_gpa, ft_gpa;   /* ft_gpa 0: no first-touch record */
	uint64_t vcpu_gpa, vcpu_stride;        /* vCPU v's struct pcb_kvm_vcpu at vcpu_gpa + v * vcpu_stride */
	uint64_t duration_ns, ops_limit, bucket_ns;
	uint64_t wthresh;                      /* write iff rng < wthresh (or all_writes) */
	uint64_t tsc_mult;                     /* ns = ticks * tsc_mult >> 32 */
	uint32_t all_writes, gen, nvcpus, pad;
	struct pcb_image im;
};
#endif
