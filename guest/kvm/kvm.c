/* Host side of --guest=kvm: a 64-bit long-mode VM with no devices and no
 * interrupts, identity-mapped with 2 MiB pages, running the freestanding
 * guest image (guest_main.c, built by the Makefile and linked in from
 * blob.S).  See kvm.h and kvm_abi.h. */
#include "guest/kvm/kvm.h"
#include "guest/kvm/kvm_abi.h"
#include "common/util.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

extern const uint8_t pcb_kvm_guest_image[], pcb_kvm_guest_image_end[];

#define SYM(n) extern const struct pcb_workload_ops pcb_workload_##n;
PCB_KVM_WORKLOADS(SYM)
#undef SYM
#define ENTRY(n) &pcb_workload_##n,
static const struct pcb_workload_ops *const kvm_wl[] = { PCB_KVM_WORKLOADS(ENTRY) };
#undef ENTRY
#define NWL (sizeof(kvm_wl) / sizeof(kvm_wl[0]))

struct kvcpu {
	int fd;
	struct kvm_run *run;
};

struct pcb_kvm {
	int kvm, vm;
	size_t run_size;
	uint8_t *low;
	size_t low_size;
	unsigned nvcpus;
	struct kvcpu *vc;
	struct pcb_kvm_ctl *ctl;
	uint64_t vcpu_off, vcpu_stride;
	uint32_t tsc_khz;
	uint8_t *tables;             /* guest_export copies, at PCB_KVM_TABLES_GPA */
	size_t tables_size, tables_used;
	struct { const void *p; size_t len; uint64_t gpa; } exported[16];
	unsigned nexported;
	pthread_mutex_t lock;
	char err[256];
};

const char *pcb_kvm_workload_names(void)
{
	static char buf[128];
	if (!buf[0])
		for (unsigned i = 0; i < NWL; i++)
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? ", " : "", kvm_wl[i]->name);
	return buf;
}

static int set_slot(struct pcb_kvm *k, unsigned slot, uint64_t gpa, void *hva, uint64_t size, uint32_t flags,
		    char *why, size_t whylen)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = (uintptr_t)hva,
	};
	if (ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		snprintf(why, whylen, "KVM_SET_USER_MEMORY_REGION (slot %u, %llu bytes at guest %#llx): %s", slot,
			 (unsigned long long)size, (unsigned long long)gpa, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* guest_export's put(): copy into the tables area; a large object (a table)
 * exported again by another vCPU is copied once. */
static uint64_t tables_put(void *ctx, const void *p, size_t len)
{
	struct pcb_kvm *k = ctx;
	if (len >= 4096)
		for (unsigned i = 0; i < k->nexported; i++)
			if (k->exported[i].p == p && k->exported[i].len == len)
				return k->exported[i].gpa;
	size_t off = align_up(k->tables_used, 64);
	if (!k->tables || off + len > k->tables_size)
		return 0;
	memcpy(k->tables + off, p, len);
	k->tables_used = off + len;
	uint64_t gpa = PCB_KVM_TABLES_GPA + off;
	if (len >= 4096 && k->nexported < 16) {
		k->exported[k->nexported].p = p;
		k->exported[k->nexported].len = len;
		k->exported[k->nexported++].gpa = gpa;
	}
	return gpa;
}

static int setup_vcpu(struct pcb_kvm *k, unsigned v, struct kvm_cpuid2 *cpuid, char *why, size_t whylen)
{
	struct kvcpu *c = &k->vc[v];
	c->fd = ioctl(k->vm, KVM_CREATE_VCPU, (unsigned long)v);
	if (c->fd < 0) {
		snprintf(why, whylen, "KVM_CREATE_VCPU %u: %s", v, strerror(errno));
		return PCB_EXIT_OSERR;
	}
	c->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		snprintf(why, whylen, "mmap of the vCPU run area: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	if (cpuid && ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0) {
		snprintf(why, whylen, "KVM_SET_CPUID2: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(why, whylen, "KVM_GET_SREGS: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	/* CPL 3: a nested PVM host runs guest user mode natively and emulates
	 * guest kernel mode (measured: 2.5 us vs 0.3 ns per loop iteration) */
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 8 | 3, .type = 11, .present = 1,
				  .dpl = 3, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 16 | 3, .type = 3, .present = 1,
				  .dpl = 3, .s = 1, .db = 1, .g = 1 };
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.cr3 = PCB_KVM_PT_GPA;
	s.cr4 = 1u << 5;                              /* PAE; no FPU/SSE state: the guest is built -mgeneral-regs-only */
	s.cr0 = (1u << 0) | (1u << 1) | (1u << 4) | (1u << 5) | (1u << 16) | (1u << 31);   /* PE MP ET NE WP PG */
	s.efer = (1u << 8) | (1u << 10);              /* LME, LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0) {
		snprintf(why, whylen, "KVM_SET_SREGS (64-bit long mode): %s", strerror(errno));
		return PCB_EXIT_UNAVAILABLE;
	}
	uint64_t area = k->vcpu_off + v * k->vcpu_stride;
	struct kvm_regs rg = { .rip = PCB_KVM_CODE_GPA, .rsp = area + k->vcpu_stride - 16, .rflags = 0x3002,   /* IOPL 3 */
			       .rdi = PCB_KVM_CTL_GPA, .rsi = v };
	if (ioctl(c->fd, KVM_SET_REGS, &rg) < 0) {
		snprintf(why, whylen, "KVM_SET_REGS: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	return 0;
}

/* the workload's index in kvm_wl and the limits of the guest; 0 or an exit code */
static int check_cfg(const struct pcb_kvm_cfg *cfg, unsigned *gen, char *why, size_t whylen)
{
	*gen = NWL;
	for (unsigned i = 0; i < NWL; i++)
		if (kvm_wl[i] == cfg->ops)
			*gen = i;
	if (*gen == NWL || !cfg->ops->guest_ts_size || cfg->ops->guest_ts_size > sizeof(((struct pcb_kvm_vcpu *)0)->gen_state)) {
		snprintf(why, whylen, "invalid value for --workload: '%s' does not run in the KVM guest (it runs: %s)",
			 cfg->ops->name, pcb_kvm_workload_names());
		return PCB_EXIT_USAGE;
	}
	size_t img = (size_t)(pcb_kvm_guest_image_end - pcb_kvm_guest_image);
	if (img > PCB_KVM_CODE_MAX) {
		snprintf(why, whylen, "the KVM guest image is %zu bytes, more than the %llu reserved", img,
			 (unsigned long long)PCB_KVM_CODE_MAX);
		return PCB_EXIT_SOFTWARE;
	}
	if (cfg->npages * 4 > PCB_KVM_REGION_GPA - PCB_KVM_FT_GPA || cfg->npages * PCB_PAGE_SIZE > (1ull << 38)) {
		snprintf(why, whylen, "invalid value for --mem: the KVM guest maps at most 256 GiB");
		return PCB_EXIT_USAGE;
	}
	return 0;
}

/* /dev/kvm, the VM and the size of a vCPU's run area */
static int open_vm(struct pcb_kvm *k, char *why, size_t whylen)
{
	k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm < 0) {
		int e = errno;
		snprintf(why, whylen, "--guest=kvm needs KVM: cannot open /dev/kvm: %s", strerror(e));
		return e == EACCES || e == EPERM ? PCB_EXIT_NOPERM : PCB_EXIT_UNAVAILABLE;
	}
	if (ioctl(k->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(why, whylen, "--guest=kvm: unexpected KVM API version");
		return PCB_EXIT_UNAVAILABLE;
	}
	k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0);
	if (k->vm < 0) {
		snprintf(why, whylen, "--guest=kvm: KVM_CREATE_VM: %s", strerror(errno));
		return PCB_EXIT_UNAVAILABLE;
	}
	int rs = ioctl(k->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (rs <= 0) {
		snprintf(why, whylen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	k->run_size = (size_t)rs;
	return 0;
}

/* progress buckets per vCPU: the run's length in buckets, or a fixed cap for a run without a time limit */
static uint64_t bucket_cap(const struct pcb_kvm_cfg *cfg)
{
	if (!cfg->bucket_ns)
		return 0;
	return cfg->duration_ns ? cfg->duration_ns / cfg->bucket_ns + 16 : 1u << 16;
}

/* low memory: control, code, page tables, vCPU areas */
static int build_low_memory(struct pcb_kvm *k, const struct pcb_kvm_cfg *cfg, unsigned gen, uint64_t cap,
			    char *why, size_t whylen)
{
	uint64_t map_end = PCB_KVM_REGION_GPA + cfg->npages * PCB_PAGE_SIZE;
	uint64_t npd = align_up(map_end, 1ull << 30) >> 30;   /* page directories, 1 GiB each */
	uint64_t pt_end = PCB_KVM_PT_GPA + (2 + npd) * 4096;
	k->vcpu_stride = align_up(sizeof(struct pcb_kvm_vcpu), 4096) + align_up(cap * 8, 4096) + PCB_KVM_STACK;
	k->vcpu_off = align_up(pt_end, 4096);
	/* the image's zero-page map (--zero-model=runs) after the vCPU areas: the
	 * guest checks its reads against the image, and a host pointer means nothing there */
	uint64_t zmap_off = align_up(k->vcpu_off + cfg->nvcpus * k->vcpu_stride, 4096);
	uint64_t zmap_bytes = cfg->im->zero_map ? ((cfg->npages + 63) / 64 + 1) * 8 : 0;
	k->low_size = align_up(zmap_off + zmap_bytes, 1u << 21);
	if (k->low_size > PCB_KVM_FCNT_GPA) {
		snprintf(why, whylen, "invalid value for --bucket-ms: the KVM guest's progress buckets%s do not fit (use a longer bucket)",
			 zmap_bytes ? " and zero-page map" : "");
		return PCB_EXIT_USAGE;
	}
	k->low = mmap(NULL, k->low_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k->low == MAP_FAILED) {
		k->low = NULL;
		snprintf(why, whylen, "out of memory for the VM's low memory");
		return PCB_EXIT_OSERR;
	}
	memcpy(k->low + PCB_KVM_CODE_GPA, pcb_kvm_guest_image, (size_t)(pcb_kvm_guest_image_end - pcb_kvm_guest_image));
	uint64_t *pml4 = (uint64_t *)(k->low + PCB_KVM_PT_GPA), *pdpt = pml4 + 512;
	pml4[0] = (PCB_KVM_PT_GPA + 4096) | 7;   /* present, writable, user */
	for (uint64_t i = 0; i < npd; i++) {
		uint64_t pd_gpa = PCB_KVM_PT_GPA + (2 + i) * 4096;
		uint64_t *pd = (uint64_t *)(k->low + pd_gpa);
		pdpt[i] = pd_gpa | 7;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = ((i << 30) + (j << 21)) | 0x87;   /* present, writable, user, 2 MiB */
	}
	struct pcb_kvm_ctl *ctl = (struct pcb_kvm_ctl *)(k->low + PCB_KVM_CTL_GPA);
	k->ctl = ctl;
	ctl->magic = PCB_KVM_MAGIC;
	ctl->npages = cfg->npages;
	ctl->region_gpa = PCB_KVM_REGION_GPA;
	ctl->ft_gpa = cfg->first_touch ? PCB_KVM_FT_GPA : 0;
	ctl->vcpu_gpa = k->vcpu_off;
	ctl->vcpu_stride = k->vcpu_stride;
	ctl->duration_ns = cfg->duration_ns;
	ctl->ops_limit = cfg->ops_limit;
	ctl->bucket_ns = cfg->bucket_ns;
	ctl->wthresh = (uint64_t)(cfg->write_ratio * 18446744073709551616.0);
	ctl->all_writes = cfg->write_ratio >= 1.0;
	ctl->gen = gen;
	ctl->nvcpus = cfg->nvcpus;
	ctl->im = *cfg->im;
	if (zmap_bytes) {   /* identity-mapped low memory: the guest reads the map at its GPA */
		memcpy(k->low + zmap_off, cfg->im->zero_map, zmap_bytes);
		ctl->im.zero_map = (const uint64_t *)(uintptr_t)zmap_off;
	}
	return 0;
}

/* the memory slots: low memory, the fault counters (read-only, the host
 * pages holding them, from *lo), first-touch, the region, the generator's tables */
static int map_slots(struct pcb_kvm *k, const struct pcb_kvm_cfg *cfg, uintptr_t *lo_out, char *why, size_t whylen)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (unsigned v = 0; v < cfg->nvcpus; v++) {
		uintptr_t p = (uintptr_t)cfg->faults[v];
		lo = p < lo ? p : lo;
		hi = p + 8 > hi ? p + 8 : hi;
	}
	lo &= ~(uintptr_t)4095;
	hi = align_up(hi, 4096);
	*lo_out = lo;
	if (hi - lo > PCB_KVM_REGION_GPA - PCB_KVM_FCNT_GPA) {
		snprintf(why, whylen, "the fault counters are spread over %zu bytes", (size_t)(hi - lo));
		return PCB_EXIT_SOFTWARE;
	}
	int rc;
	uint32_t ro = ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0 ? KVM_MEM_READONLY : 0;
	if (cfg->ops->guest_export) {
		/* room for the generator's tables: up to two words per page and some change */
		k->tables_size = align_up(cfg->npages * 8 + (1u << 20), 1u << 21);
		if (k->tables_size > PCB_KVM_FT_GPA - PCB_KVM_TABLES_GPA) {
			snprintf(why, whylen, "invalid value for --mem: workload %s in the KVM guest needs tables beyond 256 MiB",
				 cfg->ops->name);
			return PCB_EXIT_USAGE;
		}
		k->tables = mmap(NULL, k->tables_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (k->tables == MAP_FAILED) {
			k->tables = NULL;
			snprintf(why, whylen, "out of memory for the KVM guest's tables");
			return PCB_EXIT_OSERR;
		}
		if ((rc = set_slot(k, 4, PCB_KVM_TABLES_GPA, k->tables, k->tables_size, 0, why, whylen)))
			return rc;
	}
	if ((rc = set_slot(k, 0, 0, k->low, k->low_size, 0, why, whylen)) ||
	    (rc = set_slot(k, 1, PCB_KVM_FCNT_GPA, (void *)lo, hi - lo, ro, why, whylen)) ||
	    (cfg->first_touch && (rc = set_slot(k, 2, PCB_KVM_FT_GPA, (void *)cfg->first_touch,
						align_up(cfg->npages * 4, 4096), 0, why, whylen))) ||
	    (rc = set_slot(k, 3, PCB_KVM_REGION_GPA, cfg->region, cfg->npages * PCB_PAGE_SIZE, 0, why, whylen)))
		return rc;
	return 0;
}

/* the vCPUs and their areas in low memory (generator state, rng, fault
 * counter, progress buckets, histograms); CPUID as KVM supports it */
static int setup_vcpus(struct pcb_kvm *k, const struct pcb_kvm_cfg *cfg, uintptr_t lo, uint64_t cap,
		       char *why, size_t whylen)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	if (cpuid) {
		cpuid->nent = 256;
		if (ioctl(k->kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
			free(cpuid);
			cpuid = NULL;
		}
	}
	int rc = 0;
	k->vc = calloc(cfg->nvcpus, sizeof(*k->vc));
	if (!k->vc) {
		snprintf(why, whylen, "out of memory");
		rc = PCB_EXIT_OSERR;
		goto out;
	}
	for (unsigned v = 0; v < cfg->nvcpus; v++)
		k->vc[v].fd = -1;
	for (unsigned v = 0; v < cfg->nvcpus; v++) {
		if ((rc = setup_vcpu(k, v, cpuid, why, whylen)) != 0)
			goto out;
		struct pcb_kvm_vcpu *a = (struct pcb_kvm_vcpu *)(k->low + k->vcpu_off + v * k->vcpu_stride);
		memcpy(a->gen_state, cfg->gen_state[v], cfg->ops->guest_ts_size);
		if (cfg->ops->guest_export && cfg->ops->guest_export(a->gen_state, cfg->shared, tables_put, k) < 0) {
			snprintf(why, whylen, "workload %s: its tables do not fit the KVM guest", cfg->ops->name);
			rc = PCB_EXIT_SOFTWARE;
			goto out;
		}
		pcb_rng_seed(&a->rng, cfg->seed, 0x6775657374ull + v);   /* the process guest's loop rng */
		a->faults_gpa = PCB_KVM_FCNT_GPA + ((uintptr_t)cfg->faults[v] - lo);
		a->buckets_gpa = k->vcpu_off + v * k->vcpu_stride + align_up(sizeof(struct pcb_kvm_vcpu), 4096);
		a->buckets_cap = cap;
		pcb_hist_init(&a->fault_lat);
		pcb_hist_init(&a->op_lat);
	}
out:
	free(cpuid);
	return rc;
}

/* the guest times itself with the TSC: its rate, as ns per tick << 32 */
static int set_tsc_rate(struct pcb_kvm *k, char *why, size_t whylen)
{
	int khz = ioctl(k->vc[0].fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		snprintf(why, whylen, "--guest=kvm: KVM_GET_TSC_KHZ: %s (the guest times itself with the TSC)", strerror(errno));
		return PCB_EXIT_UNAVAILABLE;
	}
	k->tsc_khz = (uint32_t)khz;
	k->ctl->tsc_mult = (uint64_t)(((unsigned __int128)1000000ull << 32) / (unsigned)khz);
	return 0;
}

int pcb_kvm_create(const struct pcb_kvm_cfg *cfg, struct pcb_kvm **out, char *why, size_t whylen)
{
	unsigned gen;
	int rc = check_cfg(cfg, &gen, why, whylen);
	if (rc)
		return rc;
	struct pcb_kvm *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	k->kvm = k->vm = -1;
	k->nvcpus = cfg->nvcpus;
	pthread_mutex_init(&k->lock, NULL);
	uint64_t cap = bucket_cap(cfg);
	uintptr_t lo = 0;
	if ((rc = open_vm(k, why, whylen)) || (rc = build_low_memory(k, cfg, gen, cap, why, whylen)) ||
	    (rc = map_slots(k, cfg, &lo, why, whylen)) || (rc = setup_vcpus(k, cfg, lo, cap, why, whylen)) ||
	    (rc = set_tsc_rate(k, why, whylen))) {
		pcb_kvm_destroy(k);
		return rc;
	}
	*out = k;
	return 0;
}

static int vfail(struct pcb_kvm *k, unsigned v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int vfail(struct pcb_kvm *k, unsigned v, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&k->lock);
	if (!k->err[0])
		snprintf(k->err, sizeof(k->err), "KVM vCPU %u: %s", v, msg);
	pthread_mutex_unlock(&k->lock);
	return -1;
}

int pcb_kvm_run_vcpu(struct pcb_kvm *k, unsigned v, uint64_t base_ns, struct pcb_vcpu_result *r)
{
	struct kvcpu *c = &k->vc[v];
	struct pcb_kvm_vcpu *a = (struct pcb_kvm_vcpu *)(k->low + k->vcpu_off + v * k->vcpu_stride);
	uint64_t t0 = pcb_now_ns();
	a->base_offset_ns = t0 > base_ns ? t0 - base_ns : 0;
	r->t_start_ns = t0;
	int rc = 0;
	for (;;) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			rc = vfail(k, v, "KVM_RUN: %s", strerror(errno));
			break;
		}
		struct kvm_run *run = c->run;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PCB_KVM_PORT_DONE)
			break;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PCB_KVM_PORT_SLEEP && run->io.size == 4 &&
		    run->io.direction == KVM_EXIT_IO_OUT) {
			uint32_t us;
			memcpy(&us, (uint8_t *)run + run->io.data_offset, 4);
			struct timespec ts = { us / 1000000u, (long)(us % 1000000u) * 1000 };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO)
			continue;
		if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
			struct kvm_regs rg;
			ioctl(c->fd, KVM_GET_REGS, &rg);
			rc = vfail(k, v, "the guest took an exception (triple fault) at rip %#llx", (unsigned long long)rg.rip);
			break;
		}
		if (run->exit_reason == KVM_EXIT_MMIO) {
			rc = vfail(k, v, "the guest touched unmapped guest-physical address %#llx",
				   (unsigned long long)run->mmio.phys_addr);
			break;
		}
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
			struct kvm_regs rg;
			ioctl(c->fd, KVM_GET_REGS, &rg);
			rc = vfail(k, v, "KVM internal error, suberror %u at guest rip %#llx (ndata %u: %#llx %#llx %#llx)",
				   run->internal.suberror, (unsigned long long)rg.rip, run->internal.ndata,
				   (unsigned long long)run->internal.data[0], (unsigned long long)run->internal.data[1],
				   (unsigned long long)run->internal.data[2]);
			break;
		}
		if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
			rc = vfail(k, v, "VM entry failed, reason %#llx",
				   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			break;
		}
		rc = vfail(k, v, "unexpected exit reason %u", run->exit_reason);
		break;
	}
	uint64_t t1 = pcb_now_ns();
	if (!rc && !a->done)
		rc = vfail(k, v, "the guest halted before finishing its loop (bad control block?)");
	r->ops = a->ops;
	r->reads = a->reads;
	r->writes = a->writes;
	r->accesses = a->accesses;
	r->faults = a->faults;
	r->blocktime_ns = a->blocktime_ns;
	r->read_mismatch = a->read_mismatch;
	r->first_mismatch_page = a->first_mismatch_page;
	r->t_first_op_ns = a->ops ? base_ns + a->first_op_ns : 0;
	r->t_end_ns = a->done ? base_ns + a->end_ns : t1;
	r->fault_lat = a->fault_lat;
	r->op_lat = a->op_lat;
	if (a->nbuckets) {
		r->buckets = calloc(a->nbuckets, sizeof(uint64_t));
		if (r->buckets) {
			memcpy(r->buckets, k->low + a->buckets_gpa, a->nbuckets * sizeof(uint64_t));
			r->nbuckets = a->nbuckets;
		}
	}
	r->kvm_tsc_ns = a->done && t1 > t0 ?
		(uint64_t)(((unsigned __int128)(a->tsc_end - a->tsc_start) * k->ctl->tsc_mult) >> 32) : 0;
	r->kvm_wall_ns = t1 - t0;
	return rc;
}

const char *pcb_kvm_error(struct pcb_kvm *k) { return k->err[0] ? k->err : NULL; }
uint32_t pcb_kvm_tsc_khz(struct pcb_kvm *k) { return k->tsc_khz; }

void pcb_kvm_destroy(struct pcb_kvm *k)
{
	if (!k)
		return;
	for (unsigned v = 0; k->vc && v < k->nvcpus; v++) {
		if (k->vc[v].run)
			munmap(k->vc[v].run, k->run_size);
		if (k->vc[v].fd >= 0)
			close(k->vc[v].fd);
	}
	free(k->vc);
	if (k->vm >= 0)
		close(k->vm);
	if (k->kvm >= 0)
		close(k->kvm);
	if (k->low)
		munmap(k->low, k->low_size);
	if (k->tables)
		munmap(k->tables, k->tables_size);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
