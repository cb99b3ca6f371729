/* Install paths: how a page that arrived from the source enters the guest
 * region (--install=copy|move|continue; huge for --page-size=2M), with
 * batched ioctls.  Each path is a const ops table (struct pcb_install_ops) in
 * its own file (copy.c, move.c, continue.c, huge.c), listed in registry.c
 * and checked by pcb_install_check_ops() before use, as policies are; the
 * pager and the floor call its hooks and read its properties, never its name.
 *
 *   copy      anonymous private region, MISSING mode.  Background runs are
 *             received into a staging area and installed with UFFDIO_COPY,
 *             up to `batch` pages per ioctl; zero pages with UFFDIO_ZEROPAGE.
 *   move      as copy, but background runs are installed with UFFDIO_MOVE:
 *             the received pages are moved into place, not copied again.
 *   continue  the region is shared memory (a memfd) registered MISSING|MINOR;
 *             the pager has its own mapping of the same memfd ("alias") and
 *             receives page data straight into the page cache through it, then
 *             maps the page into the guest with UFFDIO_CONTINUE.
 *   huge      --page-size=2M: a hugetlb region; sub-pages are assembled and
 *             each 2 MiB page installed with one UFFDIO_COPY (huge.c).
 *
 * Demand pages (one at a time) are installed from the receive buffer with
 * UFFDIO_COPY (copy, move) or written through the alias and CONTINUEd.
 *
 * With batch > 1 background installs do not wake (…_MODE_DONTWAKE) and one
 * UFFDIO_WAKE covers the chunk only when a page in it has a demand fault
 * pending (its `demanded` bit set); batch == 1 is the unbatched baseline:
 * one ioctl per page, each waking.
 */
#ifndef PCB_INSTALL_H
#define PCB_INSTALL_H
#include "wire/proto.h"
#include "pager/uffd.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>

#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE        ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

#define PCB_INSTALL_MAX_BATCH 1024

struct pcb_installer;
struct pcb_install_stats;
struct pcb_install_job;
/* Called for every page an install call resolved: res 0 installed, 1 already
 * there, 2 another thread owns it; zero: the page is a zero page. */
typedef void (*pcb_install_cb)(void *ctx, uint64_t page, int res, bool zero);

/* How the background thread receives what it hands to the installer. */
enum pcb_install_rx {
	PCB_INRX_GATHER,      /* frames gathered into segment jobs in a staging slot (copy) */
	PCB_INRX_PAGECACHE,   /* as GATHER, but data goes straight into the page cache, claiming each page (continue) */
	PCB_INRX_CHUNK,       /* pages assembled per 2 MiB chunk of the guest in a staging chunk (move) */
	PCB_INRX_FRAME,     /* one job per frame, each sub-page assembled into its huge page (huge) */
};

/* An install path: registered in install/registry.c, checked by
 * pcb_install_check_ops() before use (as policies are). */
struct pcb_install_ops {
	const char *name;               /* --install value; "huge" is chosen by --page-size=2M (copy on hugetlb) */
	const char *help;
	uint64_t uffd_features;         /* userfaultfd features the path needs */
	uint64_t register_mode;         /* UFFDIO_REGISTER_MODE_* */
	const char *register_name;      /* the same, for messages */
	unsigned default_batch;         /* --install-batch=0 */
	enum pcb_install_rx rx;
	bool forkable;                  /* --pager=process can install from another process */
	bool per_run_api;               /* pcb_pager_stage_*: the one-run API (copy) */
	/* map the guest region (and the staging / alias it needs); 0 or an exit code */
	int (*map)(struct pcb_installer *in, unsigned batch, uint64_t npages, char *why, size_t whylen);
	/* after UFFDIO_API/REGISTER: 0, or -1 with the reason (NULL: nothing more to check) */
	int (*check)(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen);
	/* demand: one page (see pcb_install_one) */
	int (*one)(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st);
	/* background: one installer job (see pcb_install_job) */
	int (*job)(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		   pcb_install_cb cb, void *ctx);
	/* the floor's install-only measurement: n pages at page whose data is at
	 * data, the path's way, one ioctl, not waking; 0 or -errno */
	int (*bare)(struct pcb_installer *in, uint64_t page, uint64_t n, const uint8_t *data);
};
extern const struct pcb_install_ops *const pcb_install_paths[];   /* NULL-terminated */
#define PCB_INSTALL_CHOICES "copy|move|continue"
/* By --install name (huge: the hugetlb variant of copy); NULL if none. */
const struct pcb_install_ops *pcb_install_find(const char *name, bool huge);
/* 0, or -1 with the reason: an ops table missing a name, help or hook. */
int pcb_install_check_ops(const struct pcb_install_ops *ops, char *why, size_t whylen);

#define PCB_MOVE_BUSY_TRIES 4   /* EBUSY answers of UFFDIO_MOVE before a batch is copied instead */

struct pcb_install_stats {
	uint64_t ioctls;          /* install ioctls (COPY/MOVE/CONTINUE/ZEROPAGE) */
	uint64_t pages;           /* pages installed by them */
	uint64_t wakes;           /* explicit UFFDIO_WAKE calls after DONTWAKE batches */
	uint64_t eexist;          /* pages found already installed */
	uint64_t rx_direct_bytes; /* payload bytes received straight into staging / page cache */
	uint64_t rx_copied_bytes; /* payload bytes that had to be copied from the receive buffer */
	uint64_t install_ns;      /* time spent in install ioctls */
	uint64_t chunks_whole;    /* move: 2 MiB chunks that arrived whole, moved with one ioctl (a PMD when the kernel can) */
	uint64_t chunks_partial;  /* move: chunks installed in parts (pages missing, or --install-batch < 512) */
	uint64_t reset_ns;        /* move: time spent giving used chunks fresh memory */
	uint64_t resets_thp, resets_small;   /* move: fresh chunks backed by a 2 MiB page / by 4 KiB pages */
	uint64_t jobs;            /* background: jobs handed to the installer thread */
	uint64_t jobs_segs;       /* copy: segments (runs of data or zero pages) in those jobs */
	uint64_t move_busy;       /* move: UFFDIO_MOVE answered EBUSY (retried) */
	uint64_t move_busy_copied;   /* move: pages copied (UFFDIO_COPY from staging) after PCB_MOVE_BUSY_TRIES EBUSY */
	uint64_t zero_inline;     /* zero pages installed inside a data run (copy: a zeroed staging page
				   * copied, 4 KiB allocated; continue: a zeroed page-cache page) */
};

#define PCB_MAX_SLICES 8   /* userfaultfds a region can be sliced over (--demand-replies=lanes) */

struct pcb_installer {
	const struct pcb_install_ops *ops;
	unsigned batch;                 /* max pages per install ioctl (1 = unbatched) */
	int uffd;
	/* nslices > 1: the region is registered on one userfaultfd per slice of
	 * slice_pages pages (slice_uffd[0] == uffd); an install ioctl goes to the
	 * page's slice and stops at its end (the caller goes on with the rest) */
	unsigned nslices;
	uint64_t slice_pages;
	int slice_uffd[PCB_MAX_SLICES];
	uint64_t npages;
	size_t len;
	uint8_t *region;                /* the guest's mapping */
	uint8_t *alias;                 /* continue: the pager's own mapping of the memfd */
	int memfd;
	uint8_t *staging;               /* copy: background receive area, PCB_IQ_SLOTS slots of PCB_MAX_RUN_PAGES pages;
					 * move: PCB_IQ_SLOTS 2 MiB-aligned chunks (THP-backed where the kernel allows) */
	size_t staging_len;
	size_t slot_bytes;              /* bytes per staging slot */
	/* move: how a fresh staging chunk is backed, chosen by measured cost:
	 * a transparent huge page (one page-table update per MOVE) or 4 KiB pages
	 * (on a VM whose host reclaims freed 2 MiB blocks, a huge page is often
	 * host-cold memory and costs ~10x more to fault in).  Running averages of
	 * the time to fault a chunk in, per kind; the other kind is probed every
	 * PCB_CHUNK_PROBE resets.  Installer thread only (and pcb_install_map). */
	uint64_t fresh_ns[2];            /* [0] 4 KiB pages, [1] huge page; 0 = not measured yet */
	uint64_t fresh_count;
	uint8_t *scratch;               /* continue: sink for a page another thread owns */
	_Atomic uint64_t *filled;       /* continue: bit set by the thread that writes the page cache page */
	_Atomic uint64_t *demanded;     /* the pager's demand bitmap (for wake decisions) */
	/* --page-size=2M (copy only): the region is hugetlb; pages stay 4 KiB
	 * units everywhere else.  A sub-page's data is written once (its
	 * `filled` bit decides who) into the assembly buffer `asmb`; the
	 * thread whose sub-page completes a huge page (hfill reaches 512)
	 * installs all 2 MiB with one UFFDIO_COPY and calls huge_done. */
	bool huge;
	uint8_t *asmb;                  /* fallback assembly area: private anonymous, len bytes, touched lazily */
	uint8_t *slots;                 /* PCB_HUGE_SLOTS pre-touched 2 MiB assembly buffers, reused */
	unsigned nslots, nfree;
	unsigned freel[64];             /* free slot stack (under slot_lock) */
	pthread_mutex_t slot_lock;
	_Atomic uint32_t *hslot;        /* per huge page: 0 none yet, slot + 1, or PCB_HUGE_FALLBACK (asmb) */
	_Atomic uint32_t *hfill;        /* sub-pages filled, per huge page */
	void (*huge_done)(void *ctx, uint64_t first_page);   /* after the COPY: the 512 sub-pages are present */
	void *huge_ctx;
	/* Optional (bytes images, application guests): the digest
	 * (pcb_page_digest_full) of the bytes each page was installed with,
	 * taken just before its install ioctl -- what arrived, whatever the
	 * guest writes afterwards.  Shared memory (--pager=process). */
	uint64_t *arrival;
};
#define PCB_HUGE_SHIFT 21
#define PCB_HUGE_SIZE (1ul << PCB_HUGE_SHIFT)
#define PCB_HUGE_SUBPAGES 512ul      /* 4 KiB sub-pages per huge page */
#define PCB_HUGE_SLOTS 32            /* reusable assembly buffers (64 MiB); more huge pages in assembly use fresh memory */
#define PCB_HUGE_FALLBACK UINT32_MAX

/* Background receive and install run in two threads: the receiver fills a
 * staging slot (or the page cache) and queues a job; the installer thread
 * issues the install ioctls.  A slot is reused only after its job is done. */
#define PCB_IQ_SLOTS 4
/* move: background pages are assembled per 2 MiB-aligned chunk of the guest
 * region in a staging chunk, zero pages included (the chunk is zero-filled
 * memory), and a chunk that arrived whole is moved with one UFFDIO_MOVE. */
#define PCB_CHUNK_PAGES 512u
#define PCB_CHUNK_WORDS (PCB_CHUNK_PAGES / 64)
/* copy: a job gathers every RUN, ZERO and PAGE frame received back to back
 * (until its staging slot is full or the socket has nothing more): scattered
 * single pages then cost one hand-off to the installer per slot, not per page. */
#define PCB_JOB_SEGS 64
struct pcb_install_seg {
	uint64_t page;
	uint32_t off;                   /* data: first staging page of the segment in the slot; a data
					 * segment may hold zero slots (zero pages copied in with the
					 * data: the job's zmask) */
	uint32_t n;
	bool zero;
};
struct pcb_install_job {
	unsigned nseg;                  /* copy: segments (0: page/n/zero describe the job) */
	struct pcb_install_seg seg[PCB_JOB_SEGS];
	uint64_t page;
	unsigned n;
	unsigned slot;
	bool zero, drain;
	bool chunk;                     /* move: a staging chunk; page = its first page, n = its pages */
	uint64_t owned[(PCB_MAX_RUN_PAGES + 63) / 64];   /* continue: pages of the run the receiver owns */
	uint64_t have[PCB_CHUNK_WORDS]; /* chunk: pages received (data or zero) */
	uint64_t zmask[PCB_CHUNK_WORDS];/* chunk: of those, the zero pages; segments: the staging pages
					 * (numbered as `off`) that are zero slots of a data segment */
};
struct pcb_install_q {
	struct pcb_install_job job[PCB_IQ_SLOTS];
	uint64_t head, tail;            /* head: next job pushed; tail: next job popped */
	uint64_t done;                  /* jobs finished (slots free up to done + nslots) */
	unsigned nslots;                /* staging slots in use, 1..PCB_IQ_SLOTS (pcb_iq_init: all) */
	bool closed;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};
void pcb_iq_init(struct pcb_install_q *q);
void pcb_iq_destroy(struct pcb_install_q *q);
/* Producer: wait for a free slot (or until *stop); the slot number, or -1. */
int pcb_iq_reserve(struct pcb_install_q *q, const atomic_bool *stop, const atomic_int *fatal);
/* The same for the slot `ahead` jobs after the next one pushed (0: pcb_iq_reserve). */
int pcb_iq_reserve_ahead(struct pcb_install_q *q, unsigned ahead, const atomic_bool *stop, const atomic_int *fatal);
void pcb_iq_push(struct pcb_install_q *q, const struct pcb_install_job *j);
/* Consumer: next job (0), or -1 when closed and empty / on *stop. */
int pcb_iq_pop(struct pcb_install_q *q, struct pcb_install_job *j, const atomic_bool *stop, const atomic_int *fatal);
void pcb_iq_done(struct pcb_install_q *q);
void pcb_iq_close(struct pcb_install_q *q);

/* Map the guest region for the path (and the alias/staging it needs); batch
 * 0 = the path's default.  huge (--page-size=2M): the region is hugetlb
 * (npages a multiple of 512).  0 or an exit code with the reason. */
int pcb_install_map(struct pcb_installer *in, const struct pcb_install_ops *ops, unsigned batch, uint64_t npages,
		    char *why, size_t whylen);
/* After UFFDIO_API/REGISTER: 0, or -1 with the reason (the kernel lacks what the path needs). */
int pcb_install_check(const struct pcb_installer *in, const struct pcb_uffd_info *u, char *why, size_t whylen);
/* The userfaultfd that owns page (its slice's, or the one), and with n: n capped at the slice's end. */
int pcb_install_uffd(const struct pcb_installer *in, uint64_t page, uint64_t *n);
void pcb_install_unmap(struct pcb_installer *in);

/* Demand: install one page whose data is at src (NULL = zero page), waking.
 * Returns 0 installed, 1 already there (woken), 2 another thread owns it
 * (continue; huge: its data was already delivered), <0 -errno.  Huge: 0
 * means the sub-page's data is in; it is present once huge_done reports
 * its huge page. */
int pcb_install_one(struct pcb_installer *in, uint64_t page, const void *src, struct pcb_install_stats *st);

/* Background: where to receive the payload of a RUN of n pages starting at
 * page into staging slot `slot`: fills up to max iovecs (n <=
 * PCB_MAX_RUN_PAGES); returns the count.  continue: claims each page's
 * filled bit (owned[] says which it got); a page another thread owns goes to
 * the scratch page. */
int pcb_install_rx_iov(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, struct iovec *iov, int max,
		       uint64_t *owned);
/* Background: install installer job j (its segments, its chunk, or its
 * run / zero run) the path's way; cb reports each page.  0 or -errno. */
int pcb_install_job(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		    pcb_install_cb cb, void *ctx);
/* continue: claim n zero pages at page for the background thread (their
 * `filled` bits; owned[] says which it got), to be installed as zero slots
 * of a data segment: the installer puts them in the page cache. */
void pcb_install_claim_zero(struct pcb_installer *in, uint64_t page, unsigned n, uint64_t *owned);
/* continue: the ownership bits of n pages of job bits starting at `at` (bit 0 = the run's first page) */
void pcb_install_owned_get(uint64_t *run, const uint64_t *job, unsigned at, unsigned n);

/* Background (copy, continue): install the RUN just received (n pages at
 * page) in chunks of `batch` pages; cb reports each page. Returns 0 or
 * -errno (-EINVAL for move, which installs chunks: pcb_install_chunk). */
int pcb_install_run(struct pcb_installer *in, unsigned slot, uint64_t page, unsigned n, const uint64_t *owned,
		    struct pcb_install_stats *st, pcb_install_cb cb, void *ctx);
/* copy/move: the staging area of slot `slot` (copy: PCB_MAX_RUN_PAGES pages;
 * move: a 2 MiB chunk, zero-filled until written). */
uint8_t *pcb_install_slot_buf(struct pcb_installer *in, unsigned slot);
/* copy: install n pages at page whose data sits at page `off` of staging slot
 * `slot` (one segment of a job), in --install-batch pieces. */
int pcb_install_run_at(struct pcb_installer *in, unsigned slot, unsigned off, uint64_t page, unsigned n,
		       struct pcb_install_stats *st, pcb_install_cb cb, void *ctx);
/* move: install the pages of chunk job j (its `have` pages, from its staging
 * chunk) with UFFDIO_MOVE: one ioctl for a whole chunk (the kernel moves a
 * THP as one PMD when the destination has no page table there yet), else
 * one per run of received pages in --install-batch pieces; cb reports each
 * page.  Then the chunk gets fresh zeroed memory.  Returns 0 or -errno. */
int pcb_install_chunk(struct pcb_installer *in, const struct pcb_install_job *j, struct pcb_install_stats *st,
		      pcb_install_cb cb, void *ctx);
/* move: give the staging chunk fresh zeroed memory without installing it. */
void pcb_install_chunk_reset(struct pcb_installer *in, unsigned slot, struct pcb_install_stats *st);
/* Bytes of the guest region mapped by 2 MiB PMDs (AnonHugePages in /proc/self/smaps), or 0. */
uint64_t pcb_install_region_thp_bytes(const struct pcb_installer *in);
/* Background: install n zero pages at page (a run of ZERO frames). */
int pcb_install_zero_run(struct pcb_installer *in, uint64_t page, unsigned n, struct pcb_install_stats *st,
			 pcb_install_cb cb, void *ctx);
#endif
