/* The source page server's front door: its state, the accept loop, the
 * admission of unauthenticated connections (limits in all and per peer,
 * eviction for room, docs/security.md) and the forked child of `pcbench run`.
 * Each accepted connection is served on a thread of its own (conn.c). */
#include "source/internal.h"
#include "wire/handshake.h"
#include "common/util.h"
#include "common/pin.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

void pcb_src_slot_set(struct pcb_source_state *st, int i, enum pcb_src_slot_step step)
{
	if (i < 0)
		return;
	pthread_mutex_lock(&st->conns_lock);
	if (step == SLOT_FREE)
		st->slot[i] = (struct slot){ .fd = -1 };
	else if (step == SLOT_HELLO)
		st->slot[i].hello = true;
	else
		st->slot[i].authed = true;
	pthread_mutex_unlock(&st->conns_lock);
}

struct pcb_source_state *pcb_source_state_new(const struct pcb_source_cfg *cfg)
{
	struct pcb_source_state *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->cfg = cfg;
	st->npages = cfg->mem_bytes / PCB_PAGE_SIZE;
	pcb_image_init(&st->im, cfg->seed, st->npages, cfg->zero_fraction);
	if (cfg->zero_run_max && !cfg->mem && pcb_image_zero_runs(&st->im, cfg->zero_run_max) < 0) {
		free(st);
		return NULL;
	}
	const char *cp = getenv("PCB_TEST_CORRUPT_PAGE");
	st->corrupt_page = cp ? strtoull(cp, NULL, 0) : UINT64_MAX;
	pcb_link_init(&st->link);
	pthread_mutex_init(&st->conns_lock, NULL);
	pthread_mutex_init(&st->push_lock, NULL);
	for (int i = 0; i < MAX_CONNS; i++)
		st->slot[i].fd = -1;
	st->done_fd = -1;
	st->cw = (struct pcb_config_wire){ .mem_bytes = cfg->mem_bytes, .npages = st->npages, .seed = cfg->seed,
					   .zero_threshold = st->im.zero_threshold, .page_size = PCB_PAGE_SIZE,
					   .reserved = cfg->bytes_image && cfg->mem ? PCB_CFG_BYTES_IMAGE
										       : pcb_cfg_zero_flags(cfg->zero_run_max) };
	return st;
}

uint64_t pcb_source_bad_frames(const struct pcb_source_state *st)
{
	return st->bad_frames + st->auth_failures;
}

uint64_t pcb_source_bytes_spliced(const struct pcb_source_state *st)
{
	return st->bytes_spliced;
}

void pcb_source_state_free(struct pcb_source_state *st)
{
	if (!st->cfg->mem)
		pcb_image_free_bytes(&st->im);   /* the runs model's zero map */
	pcb_push_free(atomic_load(&st->push));
	if (st->done_fd >= 0)
		close(st->done_fd);
	free(st);
}

struct conn_arg {
	struct pcb_source_state *st;
	int fd, slot;
};

static void *conn_thread(void *arg)
{
	struct conn_arg a = *(struct conn_arg *)arg;
	free(arg);
	pcb_src_serve_conn(a.st, a.fd, a.slot);
	atomic_fetch_sub(&a.st->live_conns, 1);
	return NULL;
}

/* Room for a new connection among the unauthenticated ones: a connection
 * younger than EVICT_GRACE_NS is never ended for room; of the older ones the
 * lowest class goes first, the oldest within it: 0 no HELLO yet (a peer
 * trickling it), then 1 a HELLO but no AUTH.  When every unauthenticated
 * connection in the way is younger than the grace, the new connection is
 * refused instead ("busy"; the destination tries again within its handshake
 * deadline, pager/recovery.c).  So a destination, once accepted, has the
 * grace to finish its handshake (a round trip and two HMACs: well under
 * 250 ms unless the path is slower than that) whatever a flood of
 * connections from its own address does; a flood only takes the slots that
 * have gone stale, and a destination retrying gets one of those in turn
 * (docs/security.md). */
#define EVICT_GRACE_NS (250 * PCB_NSEC_PER_MSEC)

/* End the oldest stale unauthenticated connection (of peer, or of anyone when
 * any_peer): shutdown wakes its thread, which frees the slot.  false: none is
 * older than the grace.  Under conns_lock. */
static bool evict_stale(struct pcb_source_state *st, uint32_t peer, bool any_peer)
{
	int v = -1;
	uint64_t now = pcb_now_ns();
	for (int i = 0; i < MAX_CONNS; i++) {
		const struct slot *s = &st->slot[i];
		if (s->fd < 0 || s->authed || s->ended || (!any_peer && s->peer != peer) || now - s->t_accept < EVICT_GRACE_NS)
			continue;
		const struct slot *o = v < 0 ? NULL : &st->slot[v];
		if (!o || s->hello < o->hello || (s->hello == o->hello && s->t_accept < o->t_accept))
			v = i;
	}
	if (v < 0)
		return false;
	shutdown(st->slot[v].fd, SHUT_RDWR);
	st->slot[v].ended = true;
	atomic_fetch_add(&st->evicted, 1);
	return true;
}

/* A slot for a new connection from peer, making room among the
 * unauthenticated ones first.  The slot index, SLOT_BUSY (over a limit and
 * no connection in the way is stale) or SLOT_FULL (every slot is taken by
 * connections past the handshake, or by ended ones not yet gone). */
#define SLOT_BUSY (-2)
#define SLOT_FULL (-1)
static int slot_take(struct pcb_source_state *st, int fd, uint32_t peer)
{
	int freei = SLOT_FULL;
	pthread_mutex_lock(&st->conns_lock);
	unsigned unauth = 0, mine = 0;
	for (int i = 0; i < MAX_CONNS; i++) {
		const struct slot *s = &st->slot[i];
		if (s->fd < 0) {
			if (freei < 0)
				freei = i;
			continue;
		}
		if (s->authed || s->ended)
			continue;
		unauth++;
		mine += s->peer == peer;
	}
	bool room = true;
	if (mine >= MAX_UNAUTH_PER_PEER)
		room = evict_stale(st, peer, false);
	else if (unauth >= MAX_UNAUTH || freei < 0)
		room = evict_stale(st, peer, true);
	if (!room && freei >= 0)
		freei = SLOT_BUSY;
	if (freei >= 0)
		st->slot[freei] = (struct slot){ .fd = fd, .peer = peer, .t_accept = pcb_now_ns() };
	pthread_mutex_unlock(&st->conns_lock);
	return freei;
}

/* Refuse a connection for room: an ERROR frame "busy ..." (a destination
 * tries again), never blocking the accept loop, then close. */
static void refuse_busy(struct pcb_source_state *st, int fd)
{
	static const char text[] = "busy: too many handshakes pending from this address; try again";
	uint8_t buf[PCB_HDR_SIZE + sizeof(text) - 1];
	struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, PCB_MSG_ERROR, sizeof(text) - 1, 0, 0 };
	pcb_hdr_encode(&h, buf);
	memcpy(buf + PCB_HDR_SIZE, text, sizeof(text) - 1);
	if (send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && st->cfg->verbose)
		pcb_log("source: refusing a connection (busy): %s", strerror(errno));
	atomic_fetch_add(&st->refused_busy, 1);
	close(fd);
}

/* End every live connection (shutdown wakes its thread) and wait for the
 * threads, so that the state can be freed. */
static bool end_conns(struct pcb_source_state *st)
{
	pthread_mutex_lock(&st->conns_lock);
	for (int i = 0; i < MAX_CONNS; i++)
		if (st->slot[i].fd >= 0)
			shutdown(st->slot[i].fd, SHUT_RDWR);
	pthread_mutex_unlock(&st->conns_lock);
	for (int i = 0; i < 300 && atomic_load(&st->live_conns) > 0; i++)
		usleep(10000);
	return atomic_load(&st->live_conns) == 0;
}

/* Accept one connection and start its thread, or return when a session has
 * finished (st->done_fd; the caller re-checks whether the sessions are
 * over).  Without the eventfd it looks again every 50 ms; with it the 1 s
 * bound is a safety net: a 50 ms poll was a timer interrupt and a wake-up on
 * the source's CPU 20 times a second, each adding ~40 µs to the demand fault
 * it landed in when that CPU is the pager's (docs/results/2026-12-05-demand-tail-2.md).
 * 0, or an exit code when accepting fails for good. */
static int accept_one(struct pcb_source_state *st, int lfd)
{
	const struct pcb_source_cfg *cfg = st->cfg;
	struct pollfd pl[2] = { { .fd = lfd, .events = POLLIN }, { .fd = st->done_fd, .events = POLLIN } };
	if (poll(pl, 2, st->done_fd >= 0 ? 1000 : 50) <= 0 || !pl[0].revents) {
		uint64_t n;
		if (pl[1].revents && eventfd_read(st->done_fd, &n) < 0) {
			/* nothing to read: another wake-up took it */
		}
		return 0;   /* the caller re-checks whether the sessions are over */
	}
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
			return 0;
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
			pcb_warn("source: accept: %s (retrying)", strerror(errno));
			usleep(100000);
			return 0;
		}
		pcb_err("source: accept: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	pcb_sock_tune(fd);
	if (cfg->send_timeout_ms > 0) {   /* a peer that stops reading does not hold a thread forever */
		struct timeval tv = { cfg->send_timeout_ms / 1000, (cfg->send_timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	struct conn_arg *a = malloc(sizeof(*a));
	pthread_t th;
	int slot = a ? slot_take(st, fd, sa.sin_addr.s_addr) : SLOT_FULL;
	if (slot == SLOT_BUSY) {
		refuse_busy(st, fd);
		free(a);
		return 0;
	}
	if (slot < 0) {
		if (a && !atomic_fetch_add(&st->refused_full, 1))
			pcb_warn("source: %d connections past the handshake; refusing more", MAX_CONNS);
		close(fd);
		free(a);
		return 0;
	}
	*a = (struct conn_arg){ st, fd, slot };
	atomic_fetch_add(&st->live_conns, 1);
	if (pthread_create(&th, NULL, conn_thread, a) != 0) {
		pcb_warn("source: cannot start a connection thread; dropping the connection");
		atomic_fetch_sub(&st->live_conns, 1);
		pcb_src_slot_set(st, slot, SLOT_FREE);
		close(fd);
		free(a);
		return 0;
	}
	pthread_detach(th);
	return 0;
}

/* `pcbench source`: one line on stdout at exit. */
static void print_summary(const struct pcb_source_state *st)
{
	printf("pcbench source: %d migration%s completed; served %llu pages and %llu zero pages; rejected %llu frames, "
	       "%llu failed authentications, %llu refused handshakes (%llu timed out), %llu unauthenticated "
	       "connections ended to make room, %llu refused (busy); %llu connections resumed a migration; connections: demand %llu, "
	       "background %llu, shared %llu; %.1f MiB written by splice\n",
	       atomic_load(&st->finished_sessions), atomic_load(&st->finished_sessions) == 1 ? "" : "s",
	       (unsigned long long)st->pages_sent, (unsigned long long)st->zero_sent,
	       (unsigned long long)st->bad_frames, (unsigned long long)st->auth_failures,
	       (unsigned long long)st->hs_refused, (unsigned long long)st->hs_timeouts,
	       (unsigned long long)st->evicted, (unsigned long long)st->refused_busy,
	       (unsigned long long)st->resumes, (unsigned long long)st->conns[PCB_CHAN_DEMAND],
	       (unsigned long long)st->conns[PCB_CHAN_BACKGROUND], (unsigned long long)st->conns[PCB_CHAN_SHARED], (double)st->bytes_spliced / (1 << 20));
	fflush(stdout);
}

int pcb_source_serve(const struct pcb_source_cfg *cfg0, int lfd)
{
	struct pcb_source_cfg c = *cfg0, *cfg = &c;
	struct pcb_source_image si;
	int e = pcb_source_image_prepare(cfg, &si);
	if (e < 0) {
		pcb_err("source: cannot build the image in memory: %s", strerror(-e));
		return PCB_EXIT_OSERR;
	}
	if (si.mem)
		pcb_log("source: image built in memory in %.3f s", (double)si.build_ns / 1e9);
	struct pcb_source_state *st = pcb_source_state_new(cfg);
	if (!st) {
		pcb_source_image_release(&si);
		return PCB_EXIT_OSERR;
	}
	pcb_verbose = cfg->verbose;
	st->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);   /* -1: accept_one polls every 50 ms */
	int rc = 0;
	/* a migration is over when its demand channel said BYE (after verification) */
	while (!rc && !(cfg->sessions && atomic_load(&st->finished_sessions) >= cfg->sessions))
		rc = accept_one(st, lfd);
	if (!rc && cfg->summary)
		print_summary(st);
	pcb_log("source: served %llu pages, %llu zero pages, rejected %llu frames, %llu failed authentications, %llu resumed connections",
		(unsigned long long)st->pages_sent, (unsigned long long)st->zero_sent,
		(unsigned long long)st->bad_frames, (unsigned long long)st->auth_failures,
		(unsigned long long)st->resumes);
	/* a malformed frame from an authenticated destination is a failure of the
	 * migration; without a key anyone gets past the handshake, and what a
	 * stranger sends is counted and logged but does not decide the exit status */
	if (!rc)
		rc = st->bad_frames && cfg->key && cfg->key->len ? PCB_EXIT_PROTOCOL : PCB_EXIT_OK;
	if (end_conns(st)) {
		pcb_source_state_free(st);   /* else a thread is stuck: leave the state to the process exit */
		pcb_source_image_release(&si);
	}
	return rc;
}

/* The forked source makes the memory it serves its own before it says it is
 * ready: it builds the image in its own address space, or reads one word of
 * each page of fixed memory it inherited (a bytes image).  A page first read
 * in a process that did not write it costs that process a one-time fill of
 * its mappings (about 4.5 µs a page on a nested PVM machine), which a source
 * VM's own RAM does not cost its QEMU: docs/results/2026-12-05-source-own-image.md.
 * The report goes to the parent through rp; the reason strings are literals
 * of this binary, at the same addresses in the parent after fork. */
static void child_prepare(struct pcb_source_cfg *cfg, int rp)
{
	struct { int err; struct pcb_source_image si; } rep = { 0 };
	uint64_t c0 = pcb_thread_cpu_ns();
	if (cfg->mem && cfg->mem_fixed)
		pcb_read_each_page(cfg->mem, cfg->mem_bytes);
	rep.err = pcb_source_image_prepare(cfg, &rep.si);
	rep.si.splices = pcb_source_send_splices(cfg);
	if (!rep.si.mem)   /* held memory read once, or generate: that CPU, not a build's */
		rep.si.cpu_ns = cfg->mem ? pcb_thread_cpu_ns() - c0 : 0;
	cfg->image_mode = rep.si.mode;   /* serve does not decide again */
	if (pcb_write_full(rp, &rep, sizeof(rep)) < 0 || rep.err < 0)
		_exit(PCB_EXIT_OSERR);
	close(rp);
}

int pcb_source_fork(const struct pcb_source_cfg *cfg0, int listen_fd, int cpu)
{
	struct pcb_source_cfg c = *cfg0, *cfg = &c;
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0) {
		close(listen_fd);
		return -1;
	}
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)   /* the parent died before the line above */
			_exit(PCB_EXIT_SOFTWARE);
		signal(SIGINT, SIG_DFL);   /* the parent's report-and-exit handlers are not the source's */
		signal(SIGTERM, SIG_DFL);
		close(rp[0]);
		if (cpu >= 0)
			pcb_pin_self(cpu);
		child_prepare(cfg, rp[1]);   /* before anyone connects: the parent waits for it */
		prctl(PR_SET_NAME, "pcbench-source");   /* named once it serves */
		_exit(pcb_source_serve(cfg, listen_fd));   /* the forked child ends here */
	}
	int e = errno;
	close(listen_fd);
	close(rp[1]);
	struct { int err; struct pcb_source_image si; } rep;
	if (pid > 0 && pcb_read_full(rp[0], &rep, sizeof(rep)) < 0)
		rep.err = -ECHILD;   /* it died before it was ready: reaped below */
	close(rp[0]);
	if (pid < 0) {
		errno = e;
		return -1;
	}
	if (rep.err < 0) {
		kill(pid, SIGKILL);
		pcb_reap_child(pid, false, 3000, NULL);
		errno = -rep.err;
		return -1;
	}
	rep.si.mem = NULL;   /* the child's mapping and map */
	rep.si.populated = NULL;
	if (cfg0->image_report)
		*cfg0->image_report = rep.si;
	return pid;
}
