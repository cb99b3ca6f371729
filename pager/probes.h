/* USDT probes in the pager (provider "pcbench").  Without a tracer attached
 * each probe is a single nop.  bpf/pager.bpf.c attaches to them.
 *
 *   pcbench:fault      (u64 addr, u32 tid, u64 page)        fault message read from the uffd
 *   pcbench:request    (u64 page, u32 channel, u32 npages)   request sent (channel 0 demand, 1 background)
 *   pcbench:received   (u64 page, u32 channel, u32 zero)     page (or zero announcement) received from the source
 *   pcbench:installed  (u64 page, u32 kind, s32 result)      page installed: kind PCB_INST_*; result 0 or -errno (-EEXIST race)
 *   pcbench:decision   (u64 first_page, u32 npages, u32 nranges)  policy chose a background batch
 *   pcbench:guest_stop (u32 vcpu)                             a guest thread finished its workload
 */
#ifndef PCB_PROBES_H
#define PCB_PROBES_H
#include <sys/sdt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pcb_install_kind {
	PCB_INST_DEMAND = 0,
	PCB_INST_BACKGROUND = 1,
	PCB_INST_ZERO_DEMAND = 2,
	PCB_INST_ZERO_BACKGROUND = 3,
	PCB_INST_DRAIN = 4,
	PCB_INST_ZERO_DRAIN = 5,
};

/* The install record's kinds (pager and simulator): 4 bits a page, page pg in
 * byte pg / 2 (low nibble even, high odd), pcb_kinds_bytes(npages) bytes; 2 MiB
 * at 16 GiB instead of 4.  Read after the threads are joined; written by the
 * demand and installer threads for different pages that may share a byte. */
static inline size_t pcb_kinds_bytes(uint64_t npages) { return (size_t)((npages + 1) / 2); }
static inline unsigned pcb_kind_at(const uint8_t *k, uint64_t pg) { return k[pg >> 1] >> ((pg & 1) * 4) & 15u; }
static inline void pcb_kind_set(uint8_t *k, uint64_t pg, unsigned kind)
{
	uint8_t *b = &k[pg >> 1];
	unsigned sh = (unsigned)(pg & 1) * 4;
	uint8_t cur = __atomic_load_n(b, __ATOMIC_RELAXED), nv;
	do
		nv = (uint8_t)((cur & ~(15u << sh)) | (kind & 15u) << sh);
	while (!__atomic_compare_exchange_n(b, &cur, nv, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

#define PCB_PROBE_FAULT(addr, tid, page)      STAP_PROBE3(pcbench, fault, addr, tid, page)
#define PCB_PROBE_REQUEST(page, chan, n)      STAP_PROBE3(pcbench, request, page, chan, n)
#define PCB_PROBE_RECEIVED(page, chan, zero)  STAP_PROBE3(pcbench, received, page, chan, zero)
#define PCB_PROBE_INSTALLED(page, kind, res)  STAP_PROBE3(pcbench, installed, page, kind, res)
#define PCB_PROBE_DECISION(first, n, nr)      STAP_PROBE3(pcbench, decision, first, n, nr)
#define PCB_PROBE_GUEST_STOP(vcpu)            STAP_PROBE1(pcbench, guest_stop, vcpu)
#endif
