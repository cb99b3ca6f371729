/* Synthetic guests: deterministic access generators (seeded) and the vCPU
 * loop that runs them over the guest region, checks every read against the
 * image and measures its own op latency.
 *
 * A workload is a const struct pcb_workload_ops in workloads/NAME.c, listed
 * once in workloads/registry.c.  Its knobs (--workload-opt key=value,...) are
 * declared in its knobs table; an unknown key is refused before the run. */
#ifndef PCB_WORKLOAD_H
#define PCB_WORKLOAD_H
#include "common/hist.h"
#include "common/image.h"
#include "common/knobs.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCB_WORKLOAD_ABI 3
#define PCB_WL_MAX_OPTS PCB_KNOBS_MAX

struct pcb_wl_params {
	uint64_t npages;
	uint64_t seed;
	unsigned nvcpus;
	double zipf_theta;
	const struct pcb_image *im;  /* for data-dependent generators (chase) */
	unsigned nopts;              /* parsed --workload-opt (keys validated against the knobs) */
	struct pcb_kv opts[PCB_WL_MAX_OPTS];
};


enum { PCB_ACC_AUTO = 0, PCB_ACC_READ = 1, PCB_ACC_WRITE = 2, PCB_ACC_STOP = 3 };

/* The next access of a vCPU, filled by the generator's next hook. */
struct pcb_access {
	uint64_t page;
	uint8_t kind;        /* AUTO: a write with probability --write-ratio; READ; WRITE; STOP: this vCPU is done */
	bool more;           /* the op continues with another access (an op = one or more accesses) */
	uint32_t think_ns;   /* the vCPU computes (spins) this long before the access (idle guests, think time) */
	/* in: set by the loop before each call */
	uint64_t now_ns;     /* time since switch-over (the end of the previous access) */
	uint64_t prev;       /* word 1 of the previous page this vCPU read (0 after a write or at start) */
};

/* ---- application guests ----
 * Real code (an embedded database engine) that runs over the region itself:
 * the loop cannot see its loads and stores, only its ops.  Its memory image
 * is built from the seed by image_build (the source serves those bytes, a
 * bytes image); app_op runs one op on the region it is given (a different
 * region after a --precopy switch-over); app_check runs the engine's own
 * integrity check at the end. */
enum { PCB_APP_OK = 0, PCB_APP_STOP = 1, PCB_APP_ERR = -1 };
struct pcb_app_op {
	uint8_t kind;                /* PCB_ACC_READ (read, scan) or PCB_ACC_WRITE (update) */
	uint32_t rows;               /* rows read or written */
	uint32_t mismatch;           /* rows read whose value is not the one its key and version give */
	char why[200];               /* PCB_APP_ERR: what failed (the engine's message) */
};
struct pcb_app_report {
	char engine[48];             /* e.g. "SQLite 3.40.1" */
	char integrity[160];         /* the engine's own check: "ok", or its first complaint */
	uint64_t rows, rows_bad;     /* rows read back; values that are not the one their key and version give */
	uint64_t versions;           /* sum of the rows' versions = updates applied since the image was built */
	uint64_t rows_digest;        /* XXH3-64 over every (key, version, value) in key order */
	uint64_t db_bytes, db_used_bytes, heap_bytes, heap_peak_bytes;
};

struct pcb_workload_ops {
	unsigned abi;
	const char *name;
	const char *help;
	const struct pcb_knob *knobs;   /* terminated by a NULL key; NULL = no knobs */
	unsigned min_vcpus;                /* 0 or 1: any */
	/* State shared by all vCPUs (e.g. a Zipf table).  Optional.  Bad knob values: -1 with a reason. */
	int (*init)(void **shared, const struct pcb_wl_params *prm, char *why, size_t whylen);
	void (*fini)(void *shared);
	/* Per-vCPU generator state. */
	int (*thread_init)(void **ts, void *shared, const struct pcb_wl_params *prm, unsigned vcpu);
	void (*thread_fini)(void *ts);
	/* Next access. */
	void (*next)(void *ts, struct pcb_access *a);
	/* Nonzero: the per-vCPU state is pointer-free and this many bytes, and the
	 * generator is built into the KVM guest (guest/kvm/kvm_abi.h list). */
	size_t guest_ts_size;
	/* --guest=kvm for a generator whose state points at shared tables
	 * (optional): ts_copy is this vCPU's state about to go into the guest;
	 * copy what next() reads with put() (which returns the guest address of
	 * the copy, 0 on failure) and point ts_copy at the copies.  0 or -1. */
	int (*guest_export)(void *ts_copy, void *shared, uint64_t (*put)(void *ctx, const void *p, size_t len), void *ctx);
	/* Application guests (instead of next; see above).  image_build writes
	 * the image of npages pages into mem (zeroed): the same bytes for the
	 * same parameters, wherever mem is.  0, -1 (bad knob) or -exit code, with a reason. */
	int (*image_build)(const struct pcb_wl_params *prm, uint8_t *mem, char *why, size_t whylen);
	int (*app_op)(void *ts, uint8_t *region, struct pcb_app_op *op);
	int (*app_check)(void *shared, struct pcb_app_report *rep, char *why, size_t whylen);
};

/* The freestanding KVM guest build compiles a generator file with
 * PCB_GUEST defined: only its next hook, exported under a fixed name. */
#define PCB_GUEST_NEXT(sym, fn) \
	void pcb_gnext_##sym(void *ts, struct pcb_access *a); \
	void pcb_gnext_##sym(void *ts, struct pcb_access *a) { fn(ts, a); }

static inline bool pcb_wl_is_app(const struct pcb_workload_ops *ops) { return ops->app_op != NULL; }
/* An application workload's image of prm->npages pages in a fresh private
 * mapping (*mem, munmap prm->npages * 4 KiB).  0 or an exit code with a reason. */
int pcb_wl_build_image(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, uint8_t **mem,
		       char *why, size_t whylen);

/* Convenience for tests and tools: the next access's page of a generator that
 * does not depend on loaded values or time (every workload but chase, phase). */
static inline uint64_t pcb_wl_next_page(const struct pcb_workload_ops *ops, void *ts)
{
	struct pcb_access a = { 0 };
	ops->next(ts, &a);
	return a.page;
}

extern const struct pcb_workload_ops *const pcb_workloads[];
const struct pcb_workload_ops *pcb_workload_find(const char *name);
int pcb_workload_check(const struct pcb_workload_ops *ops, char *why, size_t whylen);

/* Parse "key=value[,key=value]" into prm->opts, refusing keys the workload
 * does not declare.  0 or -1 with a one-line reason naming the key. */
int pcb_wl_parse_opts(const struct pcb_workload_ops *ops, const char *s, struct pcb_wl_params *prm,
		      char *why, size_t whylen);
/* A knob's value as typed (the --workload-opt value, else the knob default). */
const char *pcb_wl_opt(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key);
/* Typed knob getters: 0, or -1 with "invalid value for workload option KEY: 'VAL' (...)". */
int pcb_wl_opt_u64(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen);
int pcb_wl_opt_dbl(const struct pcb_workload_ops *ops, const struct pcb_wl_params *prm, const char *key,
		   double min, double max, double *out, char *why, size_t whylen);

/* Shared helper: a Zipfian rank sampler (Gray et al., YCSB) over [0, n). */
struct pcb_zipf {
	uint64_t n;
	double theta, zetan, alpha, eta, half_pow_theta;
};
int pcb_zipf_init(struct pcb_zipf *z, uint64_t n, double theta);
struct pcb_rng;
uint64_t pcb_zipf_rank(const struct pcb_zipf *z, struct pcb_rng *r);
/* A seeded uniformly random permutation of [0, n) (Fisher-Yates). NULL if out of memory. */
uint32_t *pcb_perm_new(uint64_t n, uint64_t seed, uint64_t stream);

/* ---- access traces (--record FILE, workload trace) ----
 * Binary form (little-endian): a 32-byte header
 *   char magic[8] = "PCBTRC1\n"; uint32 version = 1; uint32 nvcpus; uint64 npages; uint64 count;
 * then count records of 24 bytes:
 *   uint64 t_ns (since switch-over); uint64 page; uint32 vcpu; uint32 flags
 *   flags bit 0: write; bit 1: the op continues with the next access of this vCPU.
 * Plain-text form (a file whose first line is not the magic): one access per
 * line, `PAGE [r|w] [VCPU] [+]`, PAGE decimal or 0x-hex page index, r (default)
 * or w, VCPU default 0, a trailing `+` = the op continues; `#` starts a comment. */
#define PCB_ATRACE_MAGIC "PCBTRC1\n"
#define PCB_ATRACE_WRITE 1u
#define PCB_ATRACE_MORE  2u
struct pcb_atrace_rec {
	uint64_t t_ns;
	uint64_t page;
	uint32_t vcpu;
	uint32_t flags;
};
struct pcb_atrace {
	uint32_t nvcpus;             /* highest vcpu + 1 */
	uint64_t npages;             /* declared (binary) or highest page + 1 (text) */
	uint64_t count;
	struct pcb_atrace_rec *rec;
};
/* Load either form.  0, or PCB_EXIT_DATAERR / PCB_EXIT_OSERR with a one-line reason (file:line). */
int pcb_atrace_load(const char *path, struct pcb_atrace *t, char *why, size_t whylen);
void pcb_atrace_free(struct pcb_atrace *t);
/* Write records in the binary form, or the text form if path ends in ".txt".  0 or -errno. */
int pcb_atrace_save(const char *path, const struct pcb_atrace *t);

/* ---- the vCPU loop ---- */
struct pcb_guest_cfg {
	const struct pcb_workload_ops *ops;
	struct pcb_wl_params prm;
	uint8_t *region;
	const struct pcb_image *im;
	double write_ratio;
	uint64_t duration_ns;        /* stop after this long (0: no limit) */
	uint64_t ops_limit;          /* stop after this many ops per vCPU (0: no limit) */
	uint64_t bucket_ns;          /* progress: ops completed per bucket of this length (0: off) */
	bool record;                 /* keep every access for --record */
	bool kvm;                    /* run the vCPUs inside a KVM virtual machine (guest/kvm/) */
	/* --precopy: the guest first runs on this memory (the source's) until
	 * pcb_guest_pause(), then on region after pcb_guest_resume() */
	uint8_t *precopy_region;
	_Atomic uint64_t *dest_written;  /* optional bitmap: pages written at the destination */
	/* First touch of each page by any vCPU (optional): µs since switch-over
	 * plus one in bits 0..30, bit 31 set if that touch faulted; 0 = never touched. */
	_Atomic uint32_t *first_touch;
	/* Called once, by the last vCPU to finish, with the latest of the vCPUs'
	 * own end times (CLOCK_MONOTONIC): the guest's end without polling. Optional. */
	void (*on_end)(void *arg, uint64_t t_end_ns);
	void *on_end_arg;
};
/* first_touch: the earliest access to the page (its start), and whether that access blocked */
#define PCB_TOUCH_FAULTED 0x80000000u

/* An access that blocked: [t0, t1] CLOCK_MONOTONIC ns. */
struct pcb_stall {
	uint64_t t0, t1;
};

struct pcb_vcpu_result {
	unsigned vcpu;
	pid_t tid;
	int cpu_start, cpu_end;      /* placement */
	uint64_t ops, reads, writes, accesses;
	uint64_t precopy_ops, precopy_writes;   /* while running at the source (--precopy) */
	/* faults: accesses that blocked (docs/metrics.md "faults"): with a pager, an
	 * access during which this thread's voluntary context switches (the
	 * kernel's per-thread count) went up -- whether or not the pager read its
	 * fault message; the KVM guest: accesses during which the pager read a
	 * fault message from this vCPU */
	uint64_t faults;
	uint64_t faults_delivered;   /* fault messages the pager read from this thread */
	uint64_t faults_undelivered; /* faults during which no message of this thread was read (woken by
				      * an install before the pager read it) */
	uint64_t blocktime_ns;       /* sum of the faults' latency */
	struct pcb_stall *stalls;    /* every fault's interval (process guest; NULL for the KVM guest) */
	uint64_t nstalls;
	uint64_t cpu_ns;             /* the thread's CPU time (CLOCK_THREAD_CPUTIME_ID at its end) */
	uint64_t read_mismatch;      /* reads that did not match the image */
	uint64_t first_mismatch_page;
	uint64_t t_start_ns, t_end_ns;
	uint64_t t_first_op_ns;       /* end of the first completed op (0: none) */
	struct pcb_hist fault_lat;   /* latency of faulting accesses as this thread saw it */
	struct pcb_hist op_lat;      /* every op, start of its first access to end of its last */
	/* progress: ops completed in bucket i = [i, i+1) * bucket_ns after switch-over */
	uint64_t *buckets;
	uint64_t nbuckets;
	/* --guest=kvm: the guest's TSC-timed run length and the host's wall-clock view of it */
	uint64_t kvm_tsc_ns, kvm_wall_ns;
	/* --record: this vCPU's accesses */
	struct pcb_atrace_rec *rec;
	uint64_t nrec;
};

struct pcb_guest;
/* faults[v]: per-vCPU fault-message counters maintained by the pager (NULL entries: no pager). */
int pcb_guest_create(const struct pcb_guest_cfg *cfg, const _Atomic uint64_t *const *faults,
		     struct pcb_guest **out, char *why, size_t whylen);
/* Start the vCPU threads; they block on a start gate until pcb_guest_go(). */
int pcb_guest_start(struct pcb_guest *g);
pid_t pcb_guest_tid(struct pcb_guest *g, unsigned vcpu);   /* valid after start */
/* Release the vCPUs; base_ns is the switch-over time (for first-touch times). */
void pcb_guest_go(struct pcb_guest *g, uint64_t base_ns);
unsigned pcb_guest_running(struct pcb_guest *g);          /* vCPUs not yet finished */
/* Block until every vCPU has finished (no polling). */
void pcb_guest_wait(struct pcb_guest *g);
/* The latest of the vCPUs' own end times (0 while one still runs). */
uint64_t pcb_guest_end_ns(struct pcb_guest *g);
/* --precopy switch-over: stop every vCPU at its next op boundary and wait
 * until all are parked; then resume them on the destination region with
 * base_ns = switch-over. */
void pcb_guest_pause(struct pcb_guest *g);
void pcb_guest_resume(struct pcb_guest *g, uint64_t base_ns);
void pcb_guest_join(struct pcb_guest *g);
const struct pcb_vcpu_result *pcb_guest_result(struct pcb_guest *g, unsigned vcpu);
/* All vCPUs' recorded accesses merged in time order (after join).  0 or -errno. */
int pcb_guest_record_save(struct pcb_guest *g, const char *path);
/* Application guests: the engine's check of the region the guest last ran on
 * (after join, region still mapped).  0 or an exit code with a reason. */
int pcb_guest_app_check(struct pcb_guest *g, struct pcb_app_report *rep, char *why, size_t whylen);
/* A vCPU failed (KVM exit it could not handle, an application op that
 * failed): the reason, else NULL. */
const char *pcb_guest_error(struct pcb_guest *g);
/* --guest=kvm: the guest TSC frequency in kHz (0 for the process guest). */
uint32_t pcb_guest_kvm_tsc_khz(struct pcb_guest *g);
void pcb_guest_destroy(struct pcb_guest *g);
#endif
