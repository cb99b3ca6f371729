/* --pager=process: fork, SCM_RIGHTS hand-over, parent <-> pager process
 * requests (see pagerproc.h). */
#include "pager/pagerproc.h"
#include "common/util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PP_STOP = 1, PP_DIGESTS = 2, PP_BYE = 3, PP_EXIT = 4 };

struct pp_req {
	uint32_t op;
	uint64_t first, count;
};

struct pp_rep {
	int32_t rc;
	char why[256];
};

struct pcb_pp {
	void *dig;                 /* shared digest buffer */
	uint64_t dig_max;
	int sock;                  /* our end of the control socket */
	pid_t pid;                 /* parent: the pager process */
	bool parent, child, dead;
	int status;                /* parent: wait status once reaped */
	uint64_t peak_kib;
};

void *pcb_pp_shared_alloc(size_t len, bool noreserve)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0), -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void pcb_pp_shared_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void pcb_pp_mutex_init(pthread_mutex_t *m, bool pshared)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	if (pshared)
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

void pcb_pp_cond_init(pthread_cond_t *c, bool pshared)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	if (pshared)
		pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

struct pcb_pp *pcb_pp_create(uint64_t digest_max, char *why, size_t whylen)
{
	struct pcb_pp *pp = calloc(1, sizeof(*pp));
	if (!pp) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pp->sock = -1;
	pp->dig_max = digest_max;
	pp->dig = pcb_pp_shared_alloc(digest_max * 8, false);
	if (!pp->dig) {
		snprintf(why, whylen, "cannot map the shared digest buffer: %s", strerror(errno));
		free(pp);
		return NULL;
	}
	return pp;
}

static int send_fds(int sock, const int *fds, unsigned n)
{
	char byte = 'F';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Receive n descriptors; -1 on error. */
static int recv_fds(int sock, int *fds, unsigned n)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return 0;
}

static void child_reply(int sock, int rc, const char *why)
{
	struct pp_rep r = { .rc = rc };
	snprintf(r.why, sizeof(r.why), "%s", why ? why : "");
	if (send(sock, &r, sizeof(r), MSG_NOSIGNAL) < 0) {
		/* the loader is gone: PR_SET_PDEATHSIG ends us */
	}
}

/* Put the received descriptor where the inherited one was (dup2 closes that
 * one: from here on the pager process uses only what it was sent). */
static int child_take(int got, int want)
{
	if (dup3(got, want, O_CLOEXEC) < 0)
		return -1;
	close(got);
	return 0;
}

static __attribute__((noreturn)) void child_main(struct pcb_pp *pp, pid_t parent, int uffd, int memfd,
						 const struct pcb_pp_ops *ops, void *arg)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(PCB_EXIT_SOFTWARE);
	prctl(PR_SET_NAME, "pcbench-pager");
	/* a separate daemon would not have inherited these: it gets them over the socket */
	int fds[2] = { -1, -1 };
	unsigned n = memfd >= 0 ? 2 : 1;
	if (recv_fds(pp->sock, fds, n) < 0 || child_take(fds[0], uffd) < 0 || (n == 2 && child_take(fds[1], memfd) < 0)) {
		child_reply(pp->sock, PCB_EXIT_OSERR, "the pager process did not receive the userfaultfd (SCM_RIGHTS)");
		_exit(PCB_EXIT_OSERR);
	}
	int rc = ops->start(arg);
	child_reply(pp->sock, rc, rc ? "the pager process could not start its threads" : NULL);
	if (rc)
		_exit(rc);
	for (;;) {
		struct pp_req q;
		ssize_t got = recv(pp->sock, &q, sizeof(q), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(q))
			_exit(0);   /* the loader closed its end */
		char why[256] = "";
		switch (q.op) {
		case PP_STOP:
			ops->stop(arg);
			child_reply(pp->sock, 0, NULL);
			break;
		case PP_DIGESTS:
			if (q.count > pp->dig_max) {
				child_reply(pp->sock, PCB_EXIT_SOFTWARE, "digest request larger than the shared buffer");
				break;
			}
			rc = ops->digests(arg, q.first, q.count, pp->dig, why, sizeof(why));
			child_reply(pp->sock, rc, why);
			break;
		case PP_BYE:
			ops->bye(arg);
			child_reply(pp->sock, 0, NULL);
			break;
		case PP_EXIT:
		default:
			child_reply(pp->sock, 0, NULL);
			_exit(0);
		}
	}
}

static int parent_reap(struct pcb_pp *pp, bool block)
{
	if (pp->dead)
		return 1;
	int st;
	pid_t r = waitpid(pp->pid, &st, block ? 0 : WNOHANG);
	if (r == pp->pid) {
		pp->dead = true;
		pp->status = st;
		return 1;
	}
	return 0;
}

static void dead_why(struct pcb_pp *pp, char *why, size_t whylen)
{
	if (WIFSIGNALED(pp->status))
		snprintf(why, whylen, "the pager process (pid %d) was killed by signal %d (%s)", (int)pp->pid,
			 WTERMSIG(pp->status), strsignal(WTERMSIG(pp->status)));
	else
		snprintf(why, whylen, "the pager process (pid %d) exited with status %d", (int)pp->pid,
			 WIFEXITED(pp->status) ? WEXITSTATUS(pp->status) : -1);
}

/* Parent: one request, one reply.  0 or an exit code with why. */
static int request(struct pcb_pp *pp, uint32_t op, uint64_t first, uint64_t count, char *why, size_t whylen)
{
	struct pp_req q = { .op = op, .first = first, .count = count };
	struct pp_rep r;
	if (pp->dead || send(pp->sock, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q))
		goto gone;
	for (;;) {
		ssize_t got = recv(pp->sock, &r, sizeof(r), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(r))
			goto gone;
		break;
	}
	if (r.rc && why)
		snprintf(why, whylen, "%s", r.why);
	return r.rc;
gone:
	parent_reap(pp, true);
	if (why)
		dead_why(pp, why, whylen);
	return PCB_EXIT_SOFTWARE;
}

int pcb_pp_spawn(struct pcb_pp *pp, int uffd, int memfd, const int *parent_close, unsigned nclose,
		 const struct pcb_pp_ops *ops, void *arg, char *why, size_t whylen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork (the pager process): %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return PCB_EXIT_OSERR;
	}
	if (pid == 0) {
		close(sv[0]);
		pp->sock = sv[1];
		pp->child = true;
		child_main(pp, parent, uffd, memfd, ops, arg);
	}
	close(sv[1]);
	pp->sock = sv[0];
	pp->pid = pid;
	pp->parent = true;
	for (unsigned i = 0; i < nclose; i++)
		if (parent_close[i] >= 0)
			close(parent_close[i]);
	int fds[2] = { uffd, memfd };
	if (send_fds(pp->sock, fds, memfd >= 0 ? 2 : 1) < 0) {
		snprintf(why, whylen, "cannot pass the userfaultfd to the pager process: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	struct pp_rep r;
	ssize_t got;
	do
		got = recv(pp->sock, &r, sizeof(r), 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(r)) {
		parent_reap(pp, true);
		dead_why(pp, why, whylen);
		return PCB_EXIT_SOFTWARE;
	}
	if (r.rc) {
		snprintf(why, whylen, "%s", r.why);
		return r.rc;
	}
	return 0;
}

bool pcb_pp_is_parent(const struct pcb_pp *pp) { return pp && pp->parent; }
pid_t pcb_pp_pid(const struct pcb_pp *pp) { return pp && pp->parent ? pp->pid : 0; }

int pcb_pp_check(struct pcb_pp *pp, char *why, size_t whylen)
{
	if (!parent_reap(pp, false))
		return 0;
	dead_why(pp, why, whylen);
	return PCB_EXIT_SOFTWARE;
}

void pcb_pp_stop(struct pcb_pp *pp)
{
	request(pp, PP_STOP, 0, 0, NULL, 0);
}

int pcb_pp_digests(struct pcb_pp *pp, uint64_t first, uint64_t count, const void **out, char *why, size_t whylen)
{
	if (count > pp->dig_max) {
		snprintf(why, whylen, "digest request larger than the shared buffer");
		return PCB_EXIT_SOFTWARE;
	}
	*out = pp->dig;
	return request(pp, PP_DIGESTS, first, count, why, whylen);
}

void pcb_pp_bye(struct pcb_pp *pp)
{
	request(pp, PP_BYE, 0, 0, NULL, 0);
}

uint64_t pcb_pp_peak_rss_kib(struct pcb_pp *pp)
{
	if (!pp || !pp->parent)
		return 0;
	if (pp->dead)
		return pp->peak_kib;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pp->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return pp->peak_kib;
	unsigned long long kb;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			pp->peak_kib = kb;
	fclose(f);
	return pp->peak_kib;
}

void pcb_pp_kill(struct pcb_pp *pp)
{
	if (!pp || !pp->parent || pp->dead)
		return;
	kill(pp->pid, SIGKILL);
	parent_reap(pp, true);
}

void pcb_pp_destroy(struct pcb_pp *pp)
{
	if (!pp)
		return;
	if (pp->parent && !pp->dead) {
		pcb_pp_peak_rss_kib(pp);
		request(pp, PP_EXIT, 0, 0, NULL, 0);
		for (int i = 0; i < 200 && !parent_reap(pp, false); i++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (!pp->dead) {
			kill(pp->pid, SIGKILL);
			parent_reap(pp, true);
		}
	}
	if (pp->sock >= 0)
		close(pp->sock);
	pcb_pp_shared_free(pp->dig, pp->dig_max * 8);
	free(pp);
}
