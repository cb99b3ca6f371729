/* Pre-copy phase (see precopy.h). */
#include "run/precopy.h"
#include "common/json.h"
#include "common/util.h"
#include "pager/uffd.h"
#include "wire/handshake.h"
#include "wire/linkcal.h"
#include "wire/proto.h"
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Debian 12's headers predate PAGEMAP_SCAN (Linux 6.7). */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
struct page_region {
	__u64 start, end, categories;
};
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct pm_scan_arg {
	__u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
	__u64 category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

#define NVEC 4096
#define NET_WINDOW 4   /* pre-copy requests in flight on the first pass */

struct pc {
	struct pcb_conn conn;        /* pre-copy connection to the source (net) */
	bool net;
	uint64_t batch;
	char err[200];
	struct pcb_pager *p;
	uint8_t *src;
	uint64_t npages;
	int uffd, pagemap;
	struct page_region *vec;
	struct pcb_precopy_stats *st;
};

uint8_t *pcb_precopy_source_mem(const struct pcb_image *im, uint64_t npages)
{
	uint8_t *m = mmap(NULL, npages * PCB_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	for (uint64_t pg = 0; pg < npages; pg++)
		pcb_image_fill(im, pg, m + pg * PCB_PAGE_SIZE);
	return m;
}

/* PAGEMAP_SCAN for written pages in [first, first+count); with protect, they
 * are write-protected again (atomically with the report).  Calls fn for every
 * written run.  Returns pages reported or -errno. */
static int64_t scan(struct pc *c, uint64_t first, uint64_t count, bool protect,
		    int (*fn)(struct pc *, uint64_t, uint64_t, void *), void *arg)
{
	uint64_t start = (uintptr_t)(c->src + first * PCB_PAGE_SIZE), end = start + count * PCB_PAGE_SIZE;
	int64_t total = 0;
	uint64_t done_to = start;   /* the kernel may report a run again when a scan stops early: skip what was handled */
	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .flags = PM_SCAN_CHECK_WPASYNC | (protect ? PM_SCAN_WP_MATCHING : 0),
			.start = start, .end = end, .vec = (uintptr_t)c->vec, .vec_len = NVEC,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(c->pagemap, PAGEMAP_SCAN, &a);
		c->st->scans++;
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			uint64_t rs = c->vec[i].start > done_to ? c->vec[i].start : done_to, re = c->vec[i].end;
			if (re <= rs)
				continue;
			done_to = re;
			uint64_t p0 = (rs - (uintptr_t)c->src) / PCB_PAGE_SIZE;
			uint64_t pn = (re - rs) / PCB_PAGE_SIZE;
			total += (int64_t)pn;
			if (fn) {
				int r = fn(c, p0, pn, arg);
				if (r < 0)
					return r;
			}
		}
		if (a.walk_end <= start)
			return -EIO;
		start = a.walk_end > done_to ? a.walk_end : done_to;
	}
	return total;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * PCB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static bool all_zero(const uint8_t *pg)
{
	const uint64_t *w = (const uint64_t *)pg;
	for (unsigned i = 0; i < PCB_PAGE_WORDS; i++)
		if (w[i])
			return false;
	return true;
}

static int net_open(struct pc *c, const struct pcb_precopy_net *n, char *why, size_t whylen)
{
	struct pcb_config_wire cw;
	c->conn = (struct pcb_conn){ .fd = -1 };
	int rc = pcb_hs_connect(&c->conn, n->host, n->port, c->npages, PCB_CHAN_BACKGROUND, 0, n->key, n->timeout_ms,
				n->timeout_ms, &cw, NULL, why, whylen);
	c->net = c->conn.rbuf != NULL;
	if (rc)
		return rc;
	if (cw.npages != c->npages) {
		snprintf(why, whylen, "--precopy: the source has %llu pages, this destination %llu", (unsigned long long)cw.npages,
			 (unsigned long long)c->npages);
		return PCB_EXIT_PROTOCOL;
	}
	if ((n->link_bps || n->link_delay_ns) && pcb_link_send(&c->conn, n->link_bps, n->link_delay_ns) < 0) {
		snprintf(why, whylen, "--precopy: connection to the source lost setting up the link: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	return 0;
}

/* Ask the source for ranges and install what arrives: first copies as runs,
 * re-sends (pages already here) overwrite.  0 or -errno (reason in c->err). */
static int net_send(struct pc *c, const struct pcb_range_wire *r, unsigned nr, uint64_t *id)
{
	struct pcb_range_wire w[PCB_MAX_RANGES];
	for (unsigned i = 0; i < nr; i++)
		w[i] = (struct pcb_range_wire){ htole64(r[i].first), htole64(r[i].count) };
	*id = ++c->batch;
	if (pcb_conn_send(&c->conn, PCB_MSG_RANGES, *id, w, (uint32_t)(nr * sizeof(w[0]))) < 0) {
		snprintf(c->err, sizeof(c->err), "the source connection failed: %s", strerror(errno));
		return -EPIPE;
	}
	return 0;
}

static int net_recv(struct pc *c, uint64_t id, bool resend);

static int net_fetch(struct pc *c, const struct pcb_range_wire *r, unsigned nr, bool resend)
{
	uint64_t id;
	int e = net_send(c, r, nr, &id);
	return e < 0 ? e : net_recv(c, id, resend);
}

/* Install what arrives until the end of batch id (batches end in order). */
static int net_recv(struct pc *c, uint64_t id, bool resend)
{
	for (;;) {
		struct pcb_hdr h;
		const uint8_t *pl;
		int rc = pcb_conn_recv(&c->conn, &h, &pl);
		if (rc != PCB_RX_FRAME) {
			snprintf(c->err, sizeof(c->err), "the source connection failed: %s",
				 rc == PCB_RX_BAD ? c->conn.err : rc == PCB_RX_EOF ? "closed" : strerror(errno));
			return rc == PCB_RX_BAD ? -EPROTO : -EPIPE;
		}
		c->st->frames_received++;
		c->st->bytes_received += PCB_HDR_SIZE + h.len;
		int e = 0;
		if (h.type == PCB_MSG_BATCH_END && h.arg == id)
			return 0;
		if (h.type == PCB_MSG_BATCH_END)
			continue;   /* an earlier batch of the window */
		if (h.type == PCB_MSG_RUN || h.type == PCB_MSG_PAGE) {
			uint64_t n = h.len / PCB_PAGE_SIZE;
			if (!resend) {
				e = pcb_pager_precopy_put_run(c->p, h.arg, n, pl);
				c->st->pages_sent += n;
			} else {
				for (uint64_t i = 0; i < n && !e; i++)
					e = pcb_pager_precopy_put(c->p, h.arg + i, pl + i * PCB_PAGE_SIZE);
				c->st->pages_resent += n;
			}
		} else if (h.type == PCB_MSG_ZERO) {
			e = resend ? pcb_pager_precopy_put(c->p, h.arg, NULL) : pcb_pager_precopy_put_run(c->p, h.arg, 1, NULL);
			if (resend)
				c->st->pages_resent++;
			else
				c->st->pages_sent++;
		} else {
			snprintf(c->err, sizeof(c->err), "unexpected %s frame from the source", pcb_msg_name(h.type));
			return -EPROTO;
		}
		if (e < 0) {
			snprintf(c->err, sizeof(c->err), "installing page %llu: %s", (unsigned long long)h.arg, strerror(-e));
			return e;
		}
	}
}

/* Memory transport, first copies of pages [first, first+n): re-protect them
 * (a write from now on marks them written again), then install each run of data pages with one
 * UFFDIO_COPY straight from the source's memory and each run of zero pages
 * with one UFFDIO_ZEROPAGE. */
static int copy_run(struct pc *c, uint64_t first, uint64_t n)
{
	int64_t r = scan(c, first, n, true, NULL, NULL);
	if (r < 0)
		return (int)r;
	uint64_t pg = first, end = first + n;
	while (pg < end) {
		bool z = all_zero(c->src + pg * PCB_PAGE_SIZE);
		uint64_t k = 1;
		while (pg + k < end && all_zero(c->src + (pg + k) * PCB_PAGE_SIZE) == z)
			k++;
		int e = pcb_pager_precopy_put_run(c->p, pg, k, z ? NULL : c->src + pg * PCB_PAGE_SIZE);
		if (e < 0)
			return e;
		c->st->pages_sent += k;
		pg += k;
	}
	return 0;
}

/* A re-send round: one scan reports the pages written since their last copy
 * and write-protects them again in the same step; then they are copied. */
struct runs {
	uint64_t *first, *n;
	size_t len, cap;
};

static int collect_cb(struct pc *c, uint64_t first, uint64_t n, void *arg)
{
	(void)c;
	struct runs *r = arg;
	if (r->len == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 1024;
		uint64_t *a = realloc(r->first, nc * sizeof(uint64_t)), *b = a ? realloc(r->n, nc * sizeof(uint64_t)) : NULL;
		if (a)
			r->first = a;
		if (!a || !b)
			return -ENOMEM;
		r->n = b;
		r->cap = nc;
	}
	r->first[r->len] = first;
	r->n[r->len++] = n;
	return 0;
}

static int64_t resend_round(struct pc *c, uint64_t npages, struct runs *rr)
{
	rr->len = 0;
	int64_t r = scan(c, 0, npages, true, collect_cb, rr);
	if (r < 0)
		return r;
	if (c->net) {
		/* at most PCB_MAX_RANGES ranges and PCB_MAX_BATCH_PAGES pages per request */
		struct pcb_range_wire w[PCB_MAX_RANGES];
		unsigned nw = 0;
		uint64_t pages = 0;
		for (size_t i = 0; i < rr->len; i++) {
			uint64_t f = rr->first[i], left = rr->n[i];
			while (left) {
				uint64_t take = left;
				if (take > PCB_MAX_BATCH_PAGES - pages)
					take = PCB_MAX_BATCH_PAGES - pages;
				w[nw++] = (struct pcb_range_wire){ f, take };
				pages += take;
				f += take;
				left -= take;
				if (nw == PCB_MAX_RANGES || pages == PCB_MAX_BATCH_PAGES) {
					int e = net_fetch(c, w, nw, true);
					if (e < 0)
						return e;
					nw = 0;
					pages = 0;
				}
			}
		}
		if (nw) {
			int e = net_fetch(c, w, nw, true);
			if (e < 0)
				return e;
		}
		return r;
	}
	uint8_t buf[PCB_PAGE_SIZE];
	for (size_t i = 0; i < rr->len; i++)
		for (uint64_t pg = rr->first[i]; pg < rr->first[i] + rr->n[i]; pg++) {
			memcpy(buf, c->src + pg * PCB_PAGE_SIZE, PCB_PAGE_SIZE);
			int e = pcb_pager_precopy_put(c->p, pg, all_zero(buf) ? NULL : buf);
			if (e < 0)
				return e;
			c->st->pages_resent++;
		}
	return r;
}

static int drop_cb(struct pc *c, uint64_t first, uint64_t n, void *arg)
{
	(void)arg;
	for (uint64_t pg = first; pg < first + n; pg++) {
		int e = pcb_pager_precopy_drop(c->p, pg);
		if (e < 0)
			return e;
	}
	return 0;
}

static int wp_setup(struct pc *c, char *why, size_t whylen)
{
	c->uffd = -1;
	struct pcb_uffd_info ui;
	int fd = pcb_uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED, &ui,
			       why, whylen);
	if (fd < 0)
		return pcb_exit_for_errno(-fd);
	c->uffd = fd;
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if ((ui.features_enabled & need) != need) {
		snprintf(why, whylen, "--precopy needs userfaultfd WP_ASYNC and WP_HUGETLBFS_SHMEM (kernel 6.7+); this kernel offers %#llx",
			 (unsigned long long)ui.features_supported);
		return PCB_EXIT_UNAVAILABLE;
	}
	struct uffdio_register reg = { .range = { (uintptr_t)c->src, c->npages * PCB_PAGE_SIZE }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(why, whylen, "--precopy: UFFDIO_REGISTER (write-protect mode) of the source's memory: %s", strerror(errno));
		return pcb_exit_for_errno(errno);
	}
	struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		snprintf(why, whylen, "--precopy: UFFDIO_WRITEPROTECT: %s", strerror(errno));
		return pcb_exit_for_errno(errno);
	}
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->pagemap < 0) {
		snprintf(why, whylen, "--precopy: /proc/self/pagemap: %s", strerror(errno));
		return PCB_EXIT_OSERR;
	}
	/* probe PAGEMAP_SCAN once */
	int64_t r = scan(c, 0, 1, false, NULL, NULL);
	if (r < 0) {
		snprintf(why, whylen, "--precopy: PAGEMAP_SCAN: %s (kernel 6.7+ needed)", strerror((int)-r));
		return PCB_EXIT_UNAVAILABLE;
	}
	return 0;
}

/* an errno from the connection or the copy as the run's exit code */
static int precopy_exit(int64_t e)
{
	return e == -EPIPE ? PCB_EXIT_SOURCE_LOST : e == -EPROTO ? PCB_EXIT_PROTOCOL : PCB_EXIT_OSERR;
}

#define PRECOPY_CHUNK 256   /* pages per first-pass request or copy */

/* pass 1 over TCP: every page in address order, up to NET_WINDOW chunk requests in
 * flight, as long as time allows; each chunk is re-protected just before it is requested */
static int first_pass_tcp(struct pc *c, uint64_t until, uint64_t *pgp, char *why, size_t whylen)
{
	uint64_t ids[NET_WINDOW], issued = 0, done = 0, pg = *pgp, npages = c->npages;
	int rc = 0;
	while (!rc && (done < issued || (pg < npages && pcb_now_ns() < until))) {
		while (issued - done < NET_WINDOW && pg < npages && pcb_now_ns() < until) {
			uint64_t n = npages - pg < PRECOPY_CHUNK ? npages - pg : PRECOPY_CHUNK;
			int64_t r = scan(c, pg, n, true, NULL, NULL);
			struct pcb_range_wire w = { pg, n };
			int e = r < 0 ? (int)r : net_send(c, &w, 1, &ids[issued % NET_WINDOW]);
			if (e < 0) {
				snprintf(why, whylen, "--precopy: requesting pages %llu..%llu: %s", (unsigned long long)pg,
					 (unsigned long long)(pg + n - 1), c->err[0] ? c->err : strerror(-e));
				*pgp = pg;
				return e == -EPIPE ? PCB_EXIT_SOURCE_LOST : PCB_EXIT_OSERR;
			}
			issued++;
			pg += n;
		}
		int e = net_recv(c, ids[done % NET_WINDOW], false);
		if (e < 0) {
			snprintf(why, whylen, "--precopy: receiving pages: %s", c->err[0] ? c->err : strerror(-e));
			rc = precopy_exit(e);
		}
		done++;
	}
	*pgp = pg;
	return rc;
}

/* pass 1 from the source's memory: the same, one chunk at a time */
static int first_pass_memory(struct pc *c, uint64_t until, uint64_t *pgp, char *why, size_t whylen)
{
	uint64_t pg = *pgp, npages = c->npages;
	int rc = 0;
	while (pg < npages && pcb_now_ns() < until) {
		uint64_t n = npages - pg < PRECOPY_CHUNK ? npages - pg : PRECOPY_CHUNK;
		int e = copy_run(c, pg, n);
		if (e < 0) {
			snprintf(why, whylen, "--precopy: copying pages %llu..%llu: %s", (unsigned long long)pg,
				 (unsigned long long)(pg + n - 1), c->err[0] ? c->err : strerror(-e));
			rc = precopy_exit(e);
			break;
		}
		pg += n;
	}
	*pgp = pg;
	return rc;
}

/* re-send rounds over what the first pass covered (pages [0, pg)) until the deadline */
static int resend_rounds(struct pc *c, struct runs *rr, uint64_t pg, uint64_t until, bool stale, char *why, size_t whylen)
{
	while (pcb_now_ns() < until) {
		if (stale) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		int64_t r = resend_round(c, pg, rr);
		if (r < 0) {
			snprintf(why, whylen, "--precopy: re-send round: %s", c->err[0] ? c->err : strerror((int)-r));
			return precopy_exit(r);
		}
		c->st->rounds++;
		if (r < 16) {   /* little dirtied: let the guest run a while before the next round */
			uint64_t now = pcb_now_ns(), nap = until - now < 5 * PCB_NSEC_PER_MSEC ? until - now : 5 * PCB_NSEC_PER_MSEC;
			struct timespec ts = { 0, (long)nap };
			if (now < until)
				nanosleep(&ts, NULL);
		}
	}
	return 0;
}

/* with the vCPUs stopped: re-send (stop-and-copy) or drop what was written since its last copy */
static int switchover_step(struct pc *c, struct runs *rr, uint64_t pg, bool final_resend, bool stale, char *why,
			   size_t whylen)
{
	struct pcb_precopy_stats *st = c->st;
	uint64_t t_stopped = pcb_now_ns();
	int64_t d;
	st->final_resend = final_resend;
	if (final_resend && !stale) {
		uint64_t before = st->pages_resent;
		d = resend_round(c, pg, rr);
		if (d >= 0)
			d = (int64_t)(st->pages_resent - before);
	} else {
		/* written since their last copy: stale at the destination, drop them */
		d = scan(c, 0, pg, false, stale ? NULL : drop_cb, NULL);
	}
	if (d < 0) {
		snprintf(why, whylen, "--precopy: final %s: %s", final_resend ? "re-send" : "scan", c->err[0] ? c->err : strerror((int)-d));
		return precopy_exit(d);
	}
	st->dirty_at_switchover = (uint64_t)d;
	st->missing_at_switchover = (final_resend && !stale ? 0 : st->dirty_at_switchover) + st->never_sent;
	st->final_ns = pcb_now_ns() - t_stopped;
	return 0;
}

static void precopy_cleanup(struct pc *c, struct runs *rr)
{
	free(rr->first);
	free(rr->n);
	if (c->uffd >= 0) {
		struct uffdio_range ur = { (uintptr_t)c->src, c->npages * PCB_PAGE_SIZE };
		ioctl(c->uffd, UFFDIO_UNREGISTER, &ur);
		close(c->uffd);
	}
	if (c->pagemap >= 0)
		close(c->pagemap);
	if (c->net) {
		pcb_conn_send(&c->conn, PCB_MSG_BYE, 0, NULL, 0);
		pcb_conn_free(&c->conn);
	}
	free(c->vec);
}

/* Phases: set up write protection (and the connection), pass 1, re-send rounds, stop the
 * vCPUs, the switch-over step; one cleanup. */
int pcb_precopy_run(struct pcb_pager *p, struct pcb_guest *g, uint8_t *src, uint64_t npages, uint64_t duration_ns,
		    const struct pcb_precopy_net *net, bool final_resend, struct pcb_precopy_stats *st, char *why, size_t whylen)
{
	struct pc c = { .p = p, .src = src, .npages = npages, .uffd = -1, .pagemap = -1, .st = st };
	struct runs rr = { 0 };
	/* PCB_TEST_PRECOPY_STALE=1: fault injection for the tests -- neither
	 * re-send nor drop written pages, so stale copies reach the guest; the
	 * end-to-end check must catch them */
	bool stale = getenv("PCB_TEST_PRECOPY_STALE") != NULL;
	memset(st, 0, sizeof(*st));
	c.vec = calloc(NVEC, sizeof(*c.vec));
	if (!c.vec) {
		snprintf(why, whylen, "out of memory");
		return PCB_EXIT_OSERR;
	}
	c.conn.fd = -1;
	st->tcp = net != NULL;
	int rc = wp_setup(&c, why, whylen);
	if (!rc && net)
		rc = net_open(&c, net, why, whylen);
	if (rc) {
		precopy_cleanup(&c, &rr);
		return rc;
	}
	uint64_t t0 = pcb_now_ns(), until = t0 + duration_ns, cpu0 = thread_cpu_ns(), pg = 0;
	pcb_guest_go(g, t0);
	st->rounds = 1;
	rc = c.net ? first_pass_tcp(&c, until, &pg, why, whylen) : first_pass_memory(&c, until, &pg, why, whylen);
	if (!rc) {
		st->never_sent = npages - pg;
		st->first_pass_ns = pcb_now_ns() - t0;
		st->first_pass_cpu_ns = thread_cpu_ns() - cpu0;
		rc = resend_rounds(&c, &rr, pg, until, stale, why, whylen);
	}
	uint64_t t_pause = pcb_now_ns();
	pcb_guest_pause(g);
	uint64_t t_stopped = pcb_now_ns();
	st->stop_ns = t_stopped - t_pause;
	st->duration_ns = t_stopped - t0;
	if (!rc)
		rc = switchover_step(&c, &rr, pg, final_resend, stale, why, whylen);
	precopy_cleanup(&c, &rr);
	return rc;
}

uint64_t pcb_precopy_check(const uint8_t *dst, const uint8_t *src, uint64_t npages, const _Atomic uint64_t *dest_written,
			   uint64_t *bad, unsigned *nbad, unsigned maxbad)
{
	uint64_t n = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		if (dest_written && ((atomic_load_explicit(&dest_written[pg >> 6], memory_order_relaxed) >> (pg & 63)) & 1))
			continue;   /* written after switch-over: the destination's own write wins */
		const uint64_t *a = (const uint64_t *)(dst + pg * PCB_PAGE_SIZE), *b = (const uint64_t *)(src + pg * PCB_PAGE_SIZE);
		if (a[PCB_STAMP_WORD] != b[PCB_STAMP_WORD]) {
			if (*nbad < maxbad)
				bad[(*nbad)++] = pg;
			n++;
		}
	}
	return n;
}

void pcb_precopy_json(const struct pcb_precopy_stats *st, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	pcb_json_u64(j, "duration_ns", st->duration_ns);
	pcb_json_u64(j, "rounds", st->rounds);
	pcb_json_u64(j, "first_pass_ns", st->first_pass_ns);
	pcb_json_u64(j, "first_pass_cpu_ns", st->first_pass_cpu_ns);
	pcb_json_u64(j, "pages_sent", st->pages_sent);
	pcb_json_u64(j, "pages_resent", st->pages_resent);
	pcb_json_u64(j, "dirty_at_switchover", st->dirty_at_switchover);
	pcb_json_str(j, "final", st->final_resend ? "resend" : "drop");
	pcb_json_u64(j, "final_ns", st->final_ns);
	pcb_json_u64(j, "never_sent", st->never_sent);
	pcb_json_u64(j, "missing_at_switchover", st->missing_at_switchover);
	pcb_json_u64(j, "pagemap_scans", st->scans);
	pcb_json_u64(j, "vcpu_stop_ns", st->stop_ns);
	pcb_json_u64(j, "guest_ops_at_source", st->guest_ops);
	pcb_json_u64(j, "guest_writes_at_source", st->guest_writes);
	pcb_json_u64(j, "stale_pages", st->stale_pages);
	pcb_json_str(j, "dirty_tracking", "userfaultfd WP_ASYNC + PAGEMAP_SCAN on the source's memory");
	pcb_json_str(j, "dirty_at_switchover_policy", st->final_resend ? "re-sent with the vCPUs stopped (stop-and-copy)"
									 : "dropped at the destination, fetched by post-copy from the source");
	pcb_json_str(j, "transfer", st->tcp ? "tcp: a third connection to the source (RANGES requests, RUN/ZERO frames)"
					    : "memory to memory (UFFDIO_COPY from the source's shared mapping)");
	pcb_json_u64(j, "bytes_received", st->bytes_received);
	pcb_json_u64(j, "frames_received", st->frames_received);
	pcb_json_obj_end(j);
}
