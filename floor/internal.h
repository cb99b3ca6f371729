/* What the files of `pcbench floor` share (floor.c options/report/JSON,
 * harness.c, demand.c, barebulk.c, bulk.c, link.c; kvm.c has kvmfloor.h):
 * the configuration, the placements, the faulting thread, one pcbench
 * migration, and the tables of one run.  Private to floor/. */
#ifndef PCB_FLOOR_INTERNAL_H
#define PCB_FLOOR_INTERNAL_H
#include "floor/floor.h"
#include "floor/kvmfloor.h"
#include "wire/handshake.h"
#include "common/hist.h"
#include "common/image.h"
#include "common/json.h"
#include "common/pin.h"
#include "common/sysinfo.h"
#include "common/util.h"
#include "cli/options.h"
#include "install/install.h"
#include "wire/link.h"
#include "pager/pager.h"
#include "policies/policy.h"
#include "wire/proto.h"
#include "source/source.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define FLOOR_MAX_LINKS 8

struct floor_cfg {
	uint64_t faults;
	unsigned rounds;
	uint64_t bulk_bytes;
	uint64_t seed;
	unsigned zero_run_max;   /* --zero-model of the pcb_zero rows: 0 uniform, else runs up to this long */
	unsigned batch, window;
	unsigned bulk_reps;
	int source_image;        /* --source-image of pcbench's source (enum pcb_source_image_mode) */
	int source_send;         /* --source-send of pcbench's source (enum pcb_source_send) */
	bool source_forced;      /* a row that forces the source's mode (pcb_gen, pcb_writev): not the options' choice */
	char json[4096];
	bool no_bulk, no_demand;
	/* --bulk-variants: the bulk rows measured (bulk_vars order); all_bulk when every one is */
	bool bulk_sel[32], all_bulk;
	char bulk_variants[256];
	/* bulk over an emulated link (--link-rates, --link-rtt, --no-link) */
	bool no_link;
	unsigned nlink;
	uint64_t link_bps[FLOOR_MAX_LINKS];
	char link_name[FLOOR_MAX_LINKS][24];
	uint64_t link_rtt_ns;
	const struct pcb_auth_key *key;   /* pcb_mac rows: a key on both ends (every frame authenticated) */
	bool install_thread;              /* pcb_thread rows: --installer=thread (pcbench rows: auto) */
	/* KVM demand paging, bare and pcbench (--kvm-vcpus, --kvm-mem, --kvm-reps, --no-kvm; kvm.c) */
	bool no_kvm;
	struct pcb_floor_kvm_cfg kvm;
};


enum { V_UFFD, V_UFFD_PROC, V_TCP, V_UNIX, V_PCB, V_PCB_PROC, NV };
#define MAX_ROUNDS 100
struct placement {
	const char *name;
	int guest, handler, server;
};
/* same: everything on CPU 0; cross: faulting thread CPU 0, handler and server CPU 1 */
extern const struct placement floor_places[2];
/* --zero-model of the pcb_zero rows, as the option spells it */
static inline const char *floor_zero_model(const struct floor_cfg *fc) { return fc->zero_run_max ? "runs" : "uniform"; }

/* ---- the faulting thread (harness.c; identical for every variant) ---- */

struct faulter {
	uint8_t *region;
	uint64_t first, n;
	int cpu;
	const struct pcb_image *im;   /* expected contents: word 0 (NULL: word 0 == page index) */
	struct pcb_hist *h;
	uint64_t bad;
	pid_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready, go;
};
int floor_faulter_start(struct faulter *f, pthread_t *th);
void floor_faulter_go(struct faulter *f);

/* ---- harness.c: processes, bare userfaultfd, one pcbench migration ---- */

/* Fork a process pinned to cpu (< 0: unpinned) that runs serve(fd) on fd_keep, or on the one
 * connection it accepts from listen_fd (>= 0), then exits. */
pid_t floor_fork_server(int fd_keep, int cpu, int listen_fd, void (*serve)(int fd));
void floor_reap(pid_t pid);
/* A fresh MISSING-registered region of npages (no THP) and its blocking uffd, or -errno. */
int floor_bare_uffd(uint8_t **region, uint64_t npages, char *why, size_t whylen);
/* Allow this thread on every online CPU again. */
void floor_unpin_self(void);

struct pcb_result {
	uint64_t migration_ns, pages, bytes_rx;
	struct pcb_verify ver;
	struct pcb_pager_stats st;
};

/* How pcbench's sources held the image: the last one's choice (not a pcb_gen row's), the longest build (JSON). */
extern struct pcb_source_image floor_src_image;
int floor_wait_complete(struct pcb_pager *p, pid_t src, char *why, size_t whylen);
int floor_start_migration(const struct floor_cfg *fc, struct pcb_pager_cfg *pc, uint64_t npages, double zero,
			  int source_cpu, struct pcb_image *im, pid_t *src, struct pcb_pager **p, char *why, size_t whylen);
/* A pcbench migration of npages: with a faulter (h != NULL: demand) or without (bulk). */
int floor_run_pcbench(const struct floor_cfg *fc, const char *policy, const char *install, unsigned ibatch, bool process,
		      int guest_cpu, int handler_cpu, int bg_cpu, int inst_cpu, int source_cpu, uint64_t npages, double zero,
		      struct pcb_hist *h, struct pcb_result *res, char *why, size_t whylen);

/* ---- barebulk.c: the bulk floor without pcbench (GB/s = 1e9 bytes/s) ---- */

/* The transport alone (install false) or received and installed with UFFDIO_COPY in one thread. */
/* the bare server's pages: one cache-hot 1 MiB buffer (bare_copy, bare_pipe:
 * the hot-buffer ceiling), or memory the size of the pull written by write
 * (bare_mem) or by vmsplice + splice (bare_splice, bare_pipe_splice): the floor */
enum floor_bulk_src { FLOOR_SRC_BUFFER, FLOOR_SRC_MEM, FLOOR_SRC_MEM_SPLICE };
int floor_run_bulk_bare(bool install, enum floor_bulk_src from, int recv_cpu, int send_cpu, uint64_t bytes, double *gbps,
			char *why, size_t whylen);
/* One install path's installs alone, no network. */
int floor_run_install_only(const char *install, int cpu, uint64_t npages, double *gbps, char *why, size_t whylen);
/* pcbench's source's page generation alone. */
int floor_run_source_gen(int cpu, uint64_t seed, uint64_t npages, double *gbps, char *why, size_t whylen);
/* Receive and install pipelined in two threads (inst_cpu -1: installer unpinned). */
int floor_run_bulk_pipelined(enum floor_bulk_src from, int recv_cpu, int send_cpu, int inst_cpu, uint64_t bytes,
			     double *gbps, char *why, size_t whylen);

/* ---- link.c: bulk over an emulated link ---- */

#define LINK_MAX_REPS 16
/* One row: no emulation at all (loopback TCP: what this host carries), the
 * delay line alone (bps 0, "unlimited": the same with the RTT), or one
 * configured rate. */
struct link_row {
	const char *name;
	uint64_t bps, rtt_ns_cfg;
	double gbps[LINK_MAX_REPS];     /* page payload, 1e9 bytes/s */
	double wire[LINK_MAX_REPS];     /* frame bytes, 1e9 bytes/s */
	double ratio[LINK_MAX_REPS];    /* frame bits/s over the configured rate */
	double vs_loop[LINK_MAX_REPS];  /* frame bytes/s over the same repetition's loopback row */
	double cpu[LINK_MAX_REPS];      /* CPU seconds (pager + source, switch-over to last page) per GB of pages */
	uint64_t rtt_ns[LINK_MAX_REPS]; /* achieved (calibrated) RTT median */
	uint64_t base_rtt_ns[LINK_MAX_REPS];
	uint64_t pages, frame_bytes, frames, ioctls;   /* last repetition */
	bool verified;
	/* summaries: median, min, max */
	double g_med, g_min, g_max, w_med, w_max, c_med, r_med, r_min, r_max, u_med, u_min, u_max;
	uint64_t rtt_med;
	bool host_limited;              /* the loopback pull (no emulation, median) carried less than this rate */
};

struct link_sum {
	unsigned nrows;                 /* rows[0] = loopback, rows[1] = unlimited */
	struct link_row rows[FLOOR_MAX_LINKS + 2];
	int recv_cpu, source_cpu;
	bool met, any_judged;
};
int floor_link_measure(const struct floor_cfg *fc, unsigned nplace, struct link_sum *ls, char *why, size_t whylen);
void floor_link_print(const struct floor_cfg *fc, const struct link_sum *ls);
void floor_link_verdict(const struct link_sum *ls);
void floor_link_json(struct pcb_json *j, const struct floor_cfg *fc, const struct link_sum *ls);

/* ---- bulk.c: the bulk rows, paired ratios, report ---- */

/* bulk rows: the transport alone; installs alone (no network); the bare
 * receiver installing serially and pipelined; pcbench (threads, process) */
/* B_PCB_GEN: pcbench's pull with the source generating each page (--source-image=generate), paired with B_PCB */
/* B_PCB_THREAD: the same pull with --installer=thread (an installer thread), paired with B_PCB (inline) */
/* B_BARE, B_PIPE: the bare receivers fed from one cache-hot 1 MiB buffer: the hot-buffer ceiling, which no source
 * that reads guest memory reaches */
/* B_BARE_MEM: bare_copy with the server sending from memory the size of the pull (each page read from DRAM, as a
 * source reads guest memory), by write */
/* B_BARE_SPLICE: bare_mem with its server sending by vmsplice + splice, as pcbench's source (--source-send=splice) */
/* B_PIPE_SPLICE: bare_pipe with bare_splice's server.  The floor = the best of B_BARE_MEM, B_BARE_SPLICE, B_PIPE_SPLICE */
/* B_PCB_WRITEV: the same pull with --source-send=writev (the kernel copies each page at the source), paired with B_PCB */
/* a bare receiver fed from memory the size of the pull: a candidate for the floor */
#define FLOOR_KIND(k) ((k) == B_BARE_MEM || (k) == B_BARE_SPLICE || (k) == B_PIPE_SPLICE)
/* a bare receiver fed from one cache-hot buffer: the hot-buffer ceiling */
#define HOT_KIND(k) ((k) == B_BARE || (k) == B_PIPE)
enum { B_TRANSPORT, B_SRCGEN, B_INSTALL, B_BARE, B_PIPE, B_PCB, B_PCB_PROC, B_PCB_ZERO, B_PCB_MAC, B_PCB_GEN, B_PCB_THREAD,
       B_BARE_MEM, B_PCB_WRITEV, B_BARE_SPLICE, B_PIPE_SPLICE };
struct bulk_var {
	int kind;
	const char *name;
	const char *install;   /* --install path, NULL: none */
	unsigned batch;
};

struct bulk_row {
	const char *name, *placement, *install;
	unsigned batch;
	double gbps;
	uint64_t ioctls, pages;
	uint64_t migration_ns;      /* mean over the repetitions */
	bool verified;
	double install_mpps;        /* pcbench: M pages/s inside the background install ioctls (mean) */
	int kind;
	double gmin, gmax;          /* over the repetitions */
};

#define MAX_BULK 54
#define FLOOR_ZERO_FRACTION 0.25   /* pcb_zero rows: pcbench's default image (--zero-pages) */

/* Zero pages: each pcb_zero row (the default image, FLOOR_ZERO_FRACTION zero
 * pages) over the pcbench row of the same path and batch pulling a
 * zero-free image, paired by repetition (g: GB/s per row and repetition,
 * before any sorting); zr[] gets median, min, max per path. */
struct zero_ratio {
	const char *install;
	double med, min, max;
};

struct spread {
	double med, min, max;
};

struct bulk_sum {
	double transport, install_copy, serial_model, floor, best, best_proc, best_proc_ratio, srcgen, hot_gen, best_gen;
	double paired_t, paired_t_min, paired_t_max, paired_f, paired_f_min, paired_f_max;
	double paired_g, paired_g_min, paired_g_max;   /* best pcbench / best pcb_gen (0: no pcb_gen row) */
	double paired_i, paired_i_min, paired_i_max;   /* pcbench copy/128 (installer inline) / pcb_thread (0: no row) */
	double paired_m, paired_m_min, paired_m_max;   /* best pcbench / bare_mem (0: no row) */
	double paired_w, paired_w_min, paired_w_max;   /* pcbench copy/128 / pcb_writev (0: no row) */
	double paired_s, paired_s_min, paired_s_max;   /* best pcbench / bare_splice (0: no row) */
	double hot, paired_h, paired_h_min, paired_h_max;   /* the hot-buffer ceiling, best pcbench over it */
	const struct bulk_row *best_row, *floor_row, *hot_row;
};

/* One `pcbench floor` run: what each phase measured, and the verdicts. */
struct floor_run {
	struct floor_cfg fc;
	struct pcb_sysinfo sys;
	uint64_t t_start, per_round;
	unsigned nplace;
	/* demand */
	struct pcb_hist hist[2][NV], rh[NV];
	/* paired ratios: each round's pcbench row over the same round's bare TCP row
	 * (and --pager=process over pcbench's threads), so drift between rounds cancels */
	double pr50[2][MAX_ROUNDS], pr90[2][MAX_ROUNDS], pr99[2][MAX_ROUNDS], pp50[2][MAX_ROUNDS], pp99[2][MAX_ROUNDS];
	double ratio50[2], ratio90[2], ratio99[2];
	struct spread q50[2], q90[2], q99[2], qp50[2], qp99[2];
	/* bulk */
	struct bulk_row rows[MAX_BULK];
	unsigned nrows;
	double g[2][MAX_BULK / 2][16];   /* GB/s per placement, row and repetition */
	double bpt[2][16], bpf[2][16];   /* per repetition: best pcbench / transport, / floor */
	double bpg[2][16];               /* per repetition: best pcbench / best pcb_gen */
	double bpi[2][16];               /* per repetition: pcbench copy/128 / pcb_thread copy/128 */
	double bpm[2][16];               /* per repetition: best pcbench / bare_mem */
	double bpw[2][16];               /* per repetition: pcbench copy/128 / pcb_writev copy/128 */
	double bps[2][16];               /* per repetition: best pcbench / bare_splice */
	double bph[2][16];               /* per repetition: best pcbench / the hot-buffer ceiling */
	struct zero_ratio zr[2][4];
	unsigned nzr[2];
	struct bulk_sum bs[2];
	/* link */
	struct link_sum ls;
	bool do_link;
	/* KVM demand paging (floor/kvm.c) */
	struct pcb_floor_kvm_row kvm_rows[4];
	char kvm_skipped[160];   /* not "": why KVM demand paging was not measured (no usable /dev/kvm) */
	bool met_demand, met_bulk, met_bulk_floor, met_zero, met_kvm;
};

int floor_measure_demand(struct floor_run *F, char *why, size_t whylen);   /* demand.c */
void floor_print_demand(struct floor_run *F);
void floor_json_demand(const struct floor_run *F, struct pcb_json *j);
int floor_measure_bulk(struct floor_run *F, char *why, size_t whylen);   /* bulk.c */
/* --bulk-variants "all" or VARIANT[:INSTALL],...: fc->bulk_sel; 0, or -1 naming the bad token */
int floor_bulk_select(struct floor_cfg *fc, const char *list);
void floor_print_bulk(struct floor_run *F);
void floor_json_bulk(const struct floor_run *F, struct pcb_json *j);
/* Median, min and max of v[0..n) (bench/stats.c pcb_spread_of), v unchanged;
 * floor_median returns the median and stores min and max. */
struct spread floor_spread(const double *v, unsigned n);
double floor_median(const double *v, unsigned n, double *min, double *max);
/* JSON key (+ "_" + med_name when both are set), key_min, key_max ("min", "max" for key ""). */
void floor_json_spread(struct pcb_json *j, const char *key, const char *med_name, double med, double min, double max);
#endif
