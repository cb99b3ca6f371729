/* The KVM guest's vCPU loop, built freestanding (no libc): the same access
 * generators as the process guest (workloads/NAME.c compiled with
 * PCB_GUEST), the same checks (every read against the image, write stamps
 * bound to the page), the same fault detection (the pager's per-vCPU fault
 * counter, mapped read-only into the guest, read before and after each
 * access), timestamps from the TSC.  Results go to this vCPU's area of
 * guest memory; the host reads them after the guest halts. */
#include "guest/kvm/kvm_abi.h"
#include "workloads/workload.h"

#define DECL(n) void pcb_gnext_##n(void *ts, struct pcb_access *a);
PCB_KVM_WORKLOADS(DECL)
#undef DECL
#define ENTRY(n) pcb_gnext_##n,
static void (*const gnext[])(void *, struct pcb_access *) = { PCB_KVM_WORKLOADS(ENTRY) };
#undef ENTRY

void pcb_guest_main(struct pcb_kvm_ctl *ctl, unsigned long vi);

/* Start stamp: rdtsc then lfence (the access does not start before it).
 * End stamp: lfence then rdtsc (the access has completed).  rdtscp is not
 * used: it traps on a nested PVM host (~460 ns). */
static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t tscp(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline void *memset_(void *d, int c, uint64_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

/* the compiler may emit calls to these */
void *memset(void *d, int c, unsigned long n);
void *memset(void *d, int c, unsigned long n) { return memset_(d, c, n); }
void *memcpy(void *d, const void *s, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n)
{
	uint8_t *a = d;
	const uint8_t *b = s;
	while (n--)
		*a++ = *b++;
	return d;
}

void pcb_guest_main(struct pcb_kvm_ctl *ctl, unsigned long vi)
{
	struct pcb_kvm_vcpu *v = (struct pcb_kvm_vcpu *)(ctl->vcpu_gpa + vi * ctl->vcpu_stride);
	if (ctl->magic != PCB_KVM_MAGIC || ctl->gen >= sizeof(gnext) / sizeof(gnext[0]))
		return;
	const struct pcb_image *im = &ctl->im;
	uint8_t *region = (uint8_t *)ctl->region_gpa;
	const volatile uint64_t *faults = (const volatile uint64_t *)v->faults_gpa;
	uint32_t *ft = ctl->ft_gpa ? (uint32_t *)ctl->ft_gpa : 0;
	uint64_t *buckets = (uint64_t *)v->buckets_gpa;
	void (*next)(void *, struct pcb_access *) = gnext[ctl->gen];
	void *ts = v->gen_state;
	struct pcb_rng rng = v->rng;
	uint32_t seq = (uint32_t)vi << 24;
	const uint64_t mult = ctl->tsc_mult, off = v->base_offset_ns;
	uint64_t prev = 0, nb = 0;

	const uint64_t t0 = tsc();
	v->tsc_start = t0;
#define NOW(t) (off + (uint64_t)(((unsigned __int128)((t) - t0) * mult) >> 32))
	uint64_t deadline = ctl->duration_ns ? off + ctl->duration_ns : ~0ull;
	uint64_t tlast = off;
	for (;;) {
		uint64_t op_t0 = 0;
		int first = 1;
		struct pcb_access acc;
		do {
			acc = (struct pcb_access){ .now_ns = tlast, .prev = prev };
			next(ts, &acc);
			if (acc.kind == PCB_ACC_STOP)
				goto out;
			if (acc.think_ns >= 50000) {
				/* a long think is a halt: exit to the host, which sleeps (an idle vCPU) */
				uint32_t us = acc.think_ns / 1000;
				__asm__ volatile("outl %0, %1" : : "a"(us), "Nd"((uint16_t)PCB_KVM_PORT_SLEEP) : "memory");
			} else if (acc.think_ns) {
				uint64_t until = tlast + acc.think_ns;
				while (NOW(tsc()) < until)
					;
			}
			uint64_t page = acc.page;
			uint64_t rnd = pcb_rng_next(&rng);
			int write = acc.kind == PCB_ACC_WRITE ||
				    (acc.kind == PCB_ACC_AUTO && (ctl->all_writes || rnd < ctl->wthresh));
			unsigned k = 1 + (unsigned)((rnd >> 20) % (PCB_STAMP_WORD - 1));
			volatile uint64_t *w = (volatile uint64_t *)(region + (page << PCB_PAGE_SHIFT));
			uint64_t a = 0, b = 0;

			uint64_t f0 = *faults;
			uint64_t c0 = tsc();
			if (write) {
				w[PCB_STAMP_WORD] = pcb_stamp_make(page, ++seq);
			} else {
				a = w[0];
				b = w[k];
			}
			uint64_t c1 = tscp();
			uint64_t f1 = *faults;
			uint64_t n0 = NOW(c0), n1 = NOW(c1);
			if (first)
				op_t0 = n0;
			first = 0;
			tlast = n1;
			v->accesses++;
			uint64_t lat = n1 - n0;
			if (f1 != f0) {
				v->faults++;   /* a faulting access (messages read during it: f1 - f0, possibly 2) */
				v->blocktime_ns += lat;
				pcb_hist_add(&v->fault_lat, lat);
			}
			if (write) {
				v->writes++;
				prev = 0;
			} else {
				v->reads++;
				prev = a;
				if (a != pcb_image_word(im, page, 0) || b != pcb_image_word(im, page, k)) {
					if (!v->read_mismatch++)
						v->first_mismatch_page = page;
				}
			}
			if (ft && !__atomic_load_n(&ft[page], __ATOMIC_RELAXED)) {
				uint64_t us = n1 / 1000 + 1;
				uint32_t val = (us > 0x7fffffff ? 0x7fffffffu : (uint32_t)us) | (f1 != f0 ? PCB_TOUCH_FAULTED : 0);
				uint32_t zero = 0;
				__atomic_compare_exchange_n(&ft[page], &zero, val, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			}
		} while (acc.more);
		pcb_hist_add(&v->op_lat, tlast - op_t0);
		if (!v->ops++)
			v->first_op_ns = tlast;
		if (ctl->bucket_ns) {
			uint64_t i = tlast / ctl->bucket_ns;
			if (i < v->buckets_cap) {
				buckets[i]++;
				if (i + 1 > nb)
					nb = i + 1;
			} else {
				v->buckets_dropped++;
			}
		}
		if (tlast >= deadline || (ctl->ops_limit && v->ops >= ctl->ops_limit))
			break;
	}
out:
	v->nbuckets = nb;
	v->tsc_end = tsc();
	v->end_ns = NOW(v->tsc_end);
	v->done = 1;
}
