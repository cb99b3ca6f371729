/* The source page server: holds the guest's memory image and serves it.
 * Demand requests (channel 0) are answered one page at a time at once;
 * background batches (channel 1) are streamed.  Runs in its own process
 * (forked by `pcbench`, or `pcbench source` on another host).
 *
 * Every connection starts with the handshake of wire/handshake.h; frames
 * are validated before use and a malformed one ends that connection with an
 * ERROR frame (counted).  The image is a pure function of (seed, size), so a
 * restarted source serves a resumed migration exactly as the first one did. */
#ifndef PCB_SOURCE_H
#define PCB_SOURCE_H
#include <stdbool.h>
#include <stdint.h>

struct pcb_auth_key;

/* How the source holds the seed's image (--source-image, source/image.c). */
enum pcb_source_image_mode {
	PCB_SRC_IMAGE_AUTO,       /* memory when it and the destination's copy fit in half of MemAvailable */
	PCB_SRC_IMAGE_MEMORY,     /* built once in memory before serving; pages copied from it */
	PCB_SRC_IMAGE_GENERATE,   /* each page generated from the seed as it is sent */
};
/* How the source writes pages it holds in memory (--source-send). */
enum pcb_source_send {
	PCB_SRC_SEND_AUTO,     /* splice where the memory is fixed (the source resolves it) */
	PCB_SRC_SEND_WRITEV,   /* writev from the memory: the kernel copies each page (QEMU's ram.c) */
	PCB_SRC_SEND_SPLICE,   /* vmsplice + splice: pages leave by reference (CRIU's page server) */
};
/* What was chosen, for the JSON. */
struct pcb_source_image {
	enum pcb_source_image_mode mode;   /* MEMORY or GENERATE */
	uint64_t build_ns;                 /* MEMORY: time to build it (before the destination connects) */
	uint64_t cpu_ns;                   /* the CPU time for it: MEMORY the build; pcb_source_fork: the child's, also for reading held memory once */
	uint64_t avail_bytes;              /* what auto compared with (0: not read) */
	const char *reason;
	uint8_t *mem;
	uint64_t len;
	uint64_t *populated;               /* MEMORY: cfg->mem_populated (freed with the image) */
	bool splices;                      /* pcb_source_fork: the child's pcb_source_send_splices() */
};

struct pcb_source_cfg {
	uint64_t mem_bytes;
	uint64_t seed;
	double zero_fraction;
	unsigned zero_run_max;      /* zero pages in runs up to this long (pcb_image_zero_runs); 0 = uniform */
	uint64_t demand_delay_ns;   /* --source-delay: injected before each demand reply */
	int sessions;               /* exit after this many migrations ended with BYE (0 = serve forever) */
	int verbose;
	const struct pcb_auth_key *key;   /* NULL or len 0: no authentication */
	int handshake_timeout_ms;   /* deadline of the whole handshake: a peer not through it by then is dropped */
	int send_timeout_ms;        /* a send blocked this long (the peer stopped reading) ends the connection; 0 = none */
	int summary;                /* print a one-line summary on stdout at exit (`pcbench source`) */
	/* NULL: serve the deterministic image.  Else serve the guest's memory as
	 * it is now (--precopy: the guest ran at the source and wrote into this
	 * shared mapping): pages are copied from it, zero pages detected by content. */
	const uint8_t *mem;
	/* mem is a bytes image (a file: --image, an application guest's
	 * database image), not the seed's image: the handshake says so
	 * (PCB_CFG_BYTES_IMAGE) and digests cover all 4096 bytes of a page. */
	int bytes_image;
	/* mem does not change while it is served (an image, not --precopy's
	 * guest): its pages may leave by reference, without a copy in the source */
	bool mem_fixed;
	/* NULL, or a bitmap of the pages of mem that are populated (bit set):
	 * the built image's, read from /proc/self/pagemap after the build.  A
	 * page never populated is zero and served as zero without reading it,
	 * as CRIU's dump skips what pagemap shows neither present nor
	 * swapped (criu/mem.c should_dump_page). */
	const uint64_t *mem_populated;
	/* The destination is this same run (the source pcbench forks): a pushed
	 * policy may name files on this host (a .so path, replay's trace).  A
	 * network source (`pcbench source`) runs built-in policies only, or a
	 * peer could make it load or read any file. */
	bool push_local_files;
	enum pcb_source_image_mode image_mode;   /* --source-image (the seed's image only; mem != NULL ignores it) */
	enum pcb_source_send send;               /* --source-send: splice applies to a fixed memory image only */
	struct pcb_source_image *image_report;   /* NULL, or filled by pcb_source_fork with the choice made */
};

/* Decide how the image is held (cfg->image_mode) and, for memory, build it
 * and point cfg->mem at it.  0 or -errno. */
int pcb_source_image_prepare(struct pcb_source_cfg *cfg, struct pcb_source_image *si);
void pcb_source_image_release(struct pcb_source_image *si);
const char *pcb_source_image_name(enum pcb_source_image_mode m);
/* The image's pages leave by splice: --source-send splice or auto, and a
 * memory image that does not change (after pcb_source_image_prepare). */
bool pcb_source_send_splices(const struct pcb_source_cfg *cfg);
const char *pcb_source_send_name(enum pcb_source_send s);

/* Serve on an already listening socket (the image prepared first).  Returns an exit code. */
int pcb_source_serve(const struct pcb_source_cfg *cfg, int listen_fd);
/* A child process (named pcbench-source, killed with its parent, pinned to cpu if
 * >= 0) that serves cfg on listen_fd and exits with pcb_source_serve's code.
 * Before it returns, the child has built the in-memory image in its own
 * address space (or read each page of fixed memory it inherited) and reported
 * the choice and its cost (cfg->image_report), so before the destination
 * connects.  The parent's listen_fd is closed.  The child's pid, or -1 with
 * errno (fork; the child's build failed, or ECHILD: it ended before it was
 * ready; either way it is reaped).  The child takes its name once it serves. */
int pcb_source_fork(const struct pcb_source_cfg *cfg, int listen_fd, int cpu);

/* Serve one already accepted connection on the calling thread until it ends
 * (the handshake included).  Used by the fuzzer; the state comes from
 * pcb_source_state_new().  Returns 0 or an exit code. */
struct pcb_source_state;
struct pcb_source_state *pcb_source_state_new(const struct pcb_source_cfg *cfg);
int pcb_source_serve_conn(struct pcb_source_state *st, int fd);
uint64_t pcb_source_bad_frames(const struct pcb_source_state *st);
uint64_t pcb_source_bytes_spliced(const struct pcb_source_state *st);
void pcb_source_state_free(struct pcb_source_state *st);
#endif
