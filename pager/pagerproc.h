/* --pager=process: the pager's threads run in a process of their own.
 *
 * The loader process keeps the guest: the region (marked MADV_DONTFORK, so
 * it is not in the pager process's address space at all), the vCPU threads
 * and the userfaultfd registration.  At switch-over it forks the pager
 * process, which closes the userfaultfd it inherited and receives it -- and
 * in --install=continue the guest's memfd -- over a unix socket with
 * SCM_RIGHTS, as a separate fault-handling daemon (Firecracker's handler, the
 * 2011 post-copy proposal's daemon) would; it then serves faults and pulls
 * pages, installing them into the guest's mm through the received uffd
 * (UFFDIO_COPY / ZEROPAGE / CONTINUE; UFFDIO_MOVE cannot cross address
 * spaces).  What the loader reads while and after the pager runs (page state
 * bitmaps, statistics, install record, fault log, completion and errors) is
 * MAP_SHARED memory set up before the fork.  The connections to the source
 * belong to the pager process: at the end the loader asks it, over the same
 * unix socket, to stop its threads and to fetch the source's digests into a
 * shared buffer, then compares them with the guest's pages itself.  The pager
 * process dies with the loader (PR_SET_PDEATHSIG) and the loader notices
 * within 100 ms when the pager process dies (exit 70 with the signal).
 */
#ifndef PCB_PAGERPROC_H
#define PCB_PAGERPROC_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Zeroed MAP_SHARED anonymous memory (NULL on failure); NORESERVE if asked. */
void *pcb_pp_shared_alloc(size_t len, bool noreserve);
void pcb_pp_shared_free(void *p, size_t len);
/* pthread mutex / condition variable usable across processes when pshared. */
void pcb_pp_mutex_init(pthread_mutex_t *m, bool pshared);
void pcb_pp_cond_init(pthread_cond_t *c, bool pshared);

/* What the pager process does, as callbacks into the pager. */
struct pcb_pp_ops {
	int (*start)(void *arg);   /* start the pager threads: 0 or an exit code */
	void (*stop)(void *arg);   /* stop them (the migration is complete) */
	/* fetch the source's digests of pages first..first+count-1 into out:
	 * 0 or an exit code with the reason in why */
	int (*digests)(void *arg, uint64_t first, uint64_t count, void *out, char *why, size_t whylen);
	void (*bye)(void *arg);    /* tell the source we are done */
};

struct pcb_pp;   /* private to each process after the fork */

/* Before the fork: the shared digest buffer (digest_max digests). */
struct pcb_pp *pcb_pp_create(uint64_t digest_max, char *why, size_t whylen);
/* Fork the pager process.  uffd (and memfd, -1 = none) are passed with
 * SCM_RIGHTS and appear in the child under the same numbers; the parent
 * closes parent_close[0..nclose) after the fork (the channels are the
 * child's).  The child calls ops->start and serves the parent's requests;
 * it never returns.  Parent: 0, or an exit code with why. */
int pcb_pp_spawn(struct pcb_pp *pp, int uffd, int memfd, const int *parent_close, unsigned nclose,
		 const struct pcb_pp_ops *ops, void *arg, char *why, size_t whylen);
/* True in the loader once the pager process exists. */
bool pcb_pp_is_parent(const struct pcb_pp *pp);
pid_t pcb_pp_pid(const struct pcb_pp *pp);
/* Parent: 0 while the pager process lives, else an exit code and why. */
int pcb_pp_check(struct pcb_pp *pp, char *why, size_t whylen);
/* Parent: the pager process stops its threads (returns when they have). */
void pcb_pp_stop(struct pcb_pp *pp);
/* Parent: digests of first..first+count-1 (count <= digest_max), 8 bytes
 * each, little-endian, in *out (the shared buffer).  0 or an exit code. */
int pcb_pp_digests(struct pcb_pp *pp, uint64_t first, uint64_t count, const void **out, char *why, size_t whylen);
void pcb_pp_bye(struct pcb_pp *pp);
/* Parent: the pager process's peak RSS in KiB (VmHWM, asked before it exits; 0 = unknown). */
uint64_t pcb_pp_peak_rss_kib(struct pcb_pp *pp);
/* Parent: kill the pager process (SIGKILL) and reap it (the run is being abandoned). */
void pcb_pp_kill(struct pcb_pp *pp);
/* Parent: the pager process exits (killed after 2 s) and is reaped; frees pp.
 * Child side (or never spawned): frees pp. */
void pcb_pp_destroy(struct pcb_pp *pp);
#endif
