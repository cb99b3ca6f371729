/* Install paths and their wire format: RUN frames are validated like every
 * frame (length a whole number of pages, at most PCB_MAX_RUN_PAGES, inside the
 * image); --install and --pin values parse or are refused naming the value;
 * the install path of a real userfaultfd region installs a batched RUN
 * (copy, move, continue) with the right contents and reports every page once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/image.h"
#include "common/pin.h"
#include "install/install.h"
#include "pager/pagestate.h"
#include "wire/proto.h"

static int validate(uint16_t type, uint32_t len, uint64_t arg, uint64_t npages)
{
	char why[256];
	struct pcb_hdr h = { PCB_PROTO_MAGIC, PCB_PROTO_VERSION, type, len, 0, arg };
	return pcb_proto_validate(&h, npages, why, sizeof(why));
}

static void run_frames(void **state)
{
	(void)state;
	assert_int_equal(validate(PCB_MSG_RUN, 4096, 0, 10), 0);
	assert_int_equal(validate(PCB_MSG_RUN, 10 * 4096, 0, 10), 0);             /* exactly to the end */
	assert_int_equal(validate(PCB_MSG_RUN, PCB_MAX_RUN_PAGES * 4096, 0, 1000), 0);
	assert_int_equal(validate(PCB_MSG_RUN, 0, 0, 10), -1);                     /* empty */
	assert_int_equal(validate(PCB_MSG_RUN, 4095, 0, 10), -1);                  /* not whole pages */
	assert_int_equal(validate(PCB_MSG_RUN, 4096 + 8, 0, 10), -1);
	assert_int_equal(validate(PCB_MSG_RUN, (PCB_MAX_RUN_PAGES + 1) * 4096, 0, 1000), -1);
	assert_int_equal(validate(PCB_MSG_RUN, 2 * 4096, 9, 10), -1);              /* runs past the image */
	assert_int_equal(validate(PCB_MSG_RUN, 4096, 10, 10), -1);                 /* starts outside */
	assert_int_equal(validate(PCB_MSG_RUN, 4096, UINT64_MAX, 10), -1);         /* no wrap-around */
	assert_string_equal(pcb_msg_name(PCB_MSG_RUN), "RUN");
}

static void install_names(void **state)
{
	(void)state;
	char why[256];
	assert_string_equal(pcb_install_find("copy", false)->name, "copy");
	assert_string_equal(pcb_install_find("move", false)->name, "move");
	assert_string_equal(pcb_install_find("continue", false)->name, "continue");
	assert_null(pcb_install_find("Copy", false));
	assert_null(pcb_install_find("", false));
	assert_null(pcb_install_find("huge", false));           /* chosen by --page-size=2M, not by name */
	assert_string_equal(pcb_install_find("copy", true)->name, "huge");
	assert_null(pcb_install_find("move", true));            /* huge pages: copy only */
	assert_int_equal(pcb_install_find("continue", false)->register_mode,
			 UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR);
	assert_false(pcb_install_find("move", false)->forkable);
	/* every registered path passes the start-up check; a table lacking a hook does not */
	unsigned n = 0;
	for (unsigned i = 0; pcb_install_paths[i]; i++, n++)
		assert_int_equal(pcb_install_check_ops(pcb_install_paths[i], why, sizeof(why)), 0);
	assert_int_equal(n, 4);
	struct pcb_install_ops bad = *pcb_install_find("copy", false);
	bad.job = NULL;
	assert_int_equal(pcb_install_check_ops(&bad, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "copy"));
	bad = *pcb_install_find("copy", false);
	bad.default_batch = 0;
	assert_int_equal(pcb_install_check_ops(&bad, why, sizeof(why)), -1);
	assert_int_equal(pcb_install_check_ops(NULL, why, sizeof(why)), -1);
	struct pcb_installer in;
	assert_int_equal(pcb_install_map(&in, &bad, 0, 16, why, sizeof(why)), PCB_EXIT_SOFTWARE);   /* refused before mapping */
	pcb_install_unmap(&in);
}

static void pin_parse(void **state)
{
	(void)state;
	struct pcb_pin p;
	char why[256];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(pcb_pin_parse("none", &p, why, sizeof(why)), 0);
	for (int i = 0; i < PCB_PIN_ROLES; i++)
		assert_int_equal(p.cpu[i], -1);
	assert_int_equal(pcb_pin_parse("same", &p, why, sizeof(why)), 0);
	for (int i = 0; i < PCB_PIN_ROLES; i++)
		assert_int_equal(p.cpu[i], 0);
	assert_int_equal(pcb_pin_parse("demand=0,guest=0", &p, why, sizeof(why)), 0);
	assert_int_equal(p.cpu[PCB_PIN_DEMAND], 0);
	assert_int_equal(p.cpu[PCB_PIN_GUEST], 0);
	assert_int_equal(p.cpu[PCB_PIN_SOURCE], -1);
	assert_int_equal(pcb_pin_parse("install=0", &p, why, sizeof(why)), 0);
	assert_int_equal(p.cpu[PCB_PIN_INSTALL], 0);
	assert_int_equal(p.cpu[PCB_PIN_BACKGROUND], -1);
	assert_int_equal(pcb_pin_parse("vcpu=0", &p, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "vcpu=0"));
	assert_int_equal(pcb_pin_parse("guest=x", &p, why, sizeof(why)), -1);
	assert_int_equal(pcb_pin_parse("guest", &p, why, sizeof(why)), -1);
	char big[64];
	snprintf(big, sizeof(big), "guest=%ld", ncpu);
	assert_int_equal(pcb_pin_parse(big, &p, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "does not exist"));
	if (ncpu >= 2) {
		assert_int_equal(pcb_pin_parse("split", &p, why, sizeof(why)), 0);
		assert_int_equal(p.cpu[PCB_PIN_BACKGROUND], 1);
		assert_int_equal(p.cpu[PCB_PIN_DEMAND], 0);
	}
}

/* ---- a real region: install a RUN through each path ---- */

#define NP 300
struct seen {
	int count[NP];
	int res[NP];
	bool zero[NP];
};

static void on_page(void *ctx, uint64_t page, int res, bool zero)
{
	struct seen *s = ctx;
	s->zero[page] = zero;
	s->count[page]++;
	s->res[page] = res;
}

static int setup_region(struct pcb_installer *in, struct pcb_pagestate *ps, const struct pcb_install_ops *ops,
			unsigned batch)
{
	char why[256];
	struct pcb_uffd_info ui;
	if (pcb_install_map(in, ops, batch, NP, why, sizeof(why)) != 0)
		return -1;
	int fd = pcb_uffd_open(ops->uffd_features, &ui, why, sizeof(why));
	if (fd < 0) {
		pcb_install_unmap(in);
		return -2;   /* no userfaultfd here */
	}
	if (pcb_uffd_register(fd, in->region, in->len, ops->register_mode, &ui) < 0 ||
	    pcb_install_check(in, &ui, why, sizeof(why)) < 0) {
		close(fd);
		pcb_install_unmap(in);
		return -2;   /* the kernel lacks this path */
	}
	in->uffd = fd;
	assert_int_equal(pcb_ps_init(ps, NP), 0);
	in->demanded = ps->demanded;
	return 0;
}

/* One install path under test: its registered region, page state, image (seeded) and stats. */
struct path {
	const struct pcb_install_ops *ops;
	struct pcb_installer in;
	struct pcb_pagestate ps;
	struct pcb_image im;
	struct pcb_install_stats st;
};

/* A registered region for path `name`; false (and why printed) when this kernel lacks the path. */
static bool path_open(struct path *p, const char *name, unsigned batch, uint64_t seed, struct seen *s)
{
	memset(p, 0, sizeof(*p));
	memset(s, 0, sizeof(*s));
	p->ops = pcb_install_find(name, false);
	int r = setup_region(&p->in, &p->ps, p->ops, batch);
	if (r == -2) {
		printf("install path %s not available here: not exercised\n", p->ops->name);
		return false;
	}
	assert_int_equal(r, 0);
	pcb_image_init(&p->im, seed, NP, 0.0);
	return true;
}

static void path_close(struct path *p)
{
	close(p->in.uffd);
	pcb_install_unmap(&p->in);
	pcb_ps_free(&p->ps);
}

/* Receive pages first..first+n-1 of the image into staging slot `slot` (pcb_install_rx_iov), for pcb_install_run. */
static void rx_image_run(struct path *p, unsigned slot, uint64_t first, unsigned n, uint64_t *owned)
{
	struct iovec iov[PCB_MAX_RUN_PAGES];
	int niov = pcb_install_rx_iov(&p->in, slot, first, n, iov, PCB_MAX_RUN_PAGES, owned);
	assert_true(niov >= 1);
	uint64_t pg = first;
	for (int k = 0; k < niov; k++)
		for (size_t off = 0; off < iov[k].iov_len; off += PCB_PAGE_SIZE, pg++)
			pcb_image_fill(&p->im, pg, (uint8_t *)iov[k].iov_base + off);
	assert_int_equal(pg, first + n);
}

static void run_path(const char *name, unsigned batch)
{
	static struct seen s;
	struct path p;
	if (!path_open(&p, name, batch, 7, &s))
		return;
	const struct pcb_install_ops *ops = p.ops;
	/* page 5 installed first on the demand path: the RUN must report it as already there */
	uint8_t one[PCB_PAGE_SIZE];
	pcb_image_fill(&p.im, 5, one);
	assert_int_equal(pcb_install_one(&p.in, 5, one, &p.st), 0);
	/* a RUN of 100 pages at 0 and zero pages 200..249 */
	if (ops->rx == PCB_INRX_CHUNK) {
		/* move's path: both land in the staging chunk of slot 2 (the zero pages as its
		 * zeros), installed as one partial chunk */
		struct pcb_install_job j = { .page = 0, .n = NP, .slot = 2, .chunk = true };
		uint8_t *cb = pcb_install_slot_buf(&p.in, 2);
		for (unsigned i = 0; i < 250; i++) {
			if (i >= 100 && i < 200)
				continue;
			j.have[i / 64] |= 1ull << (i % 64);
			if (i >= 200)
				j.zmask[i / 64] |= 1ull << (i % 64);
			else
				pcb_image_fill(&p.im, i, cb + ((size_t)i << PCB_PAGE_SHIFT));
		}
		assert_int_equal(pcb_install_chunk(&p.in, &j, &p.st, on_page, &s), 0);
	} else {
		uint64_t owned[(PCB_MAX_RUN_PAGES + 63) / 64];
		rx_image_run(&p, 2, 0, 100, owned);   /* staging slot 2 */
		assert_int_equal(pcb_install_run(&p.in, 2, 0, 100, owned, &p.st, on_page, &s), 0);
		assert_int_equal(pcb_install_zero_run(&p.in, 200, 50, &p.st, on_page, &s), 0);
	}
	for (int i = 0; i < 100; i++) {
		assert_int_equal(s.count[i], 1);
		assert_int_equal(s.res[i], i == 5 ? (ops->rx == PCB_INRX_PAGECACHE ? 2 : 1) : 0);
		assert_false(s.zero[i]);
		uint8_t want[PCB_PAGE_SIZE];
		pcb_image_fill(&p.im, (uint64_t)i, want);
		assert_memory_equal(p.in.region + ((size_t)i << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	for (int i = 200; i < 250; i++) {
		assert_int_equal(s.count[i], 1);
		assert_int_equal(s.res[i], 0);
		assert_true(s.zero[i]);   /* reported as zero pages */
		const uint64_t *w = (const uint64_t *)(p.in.region + ((size_t)i << PCB_PAGE_SHIFT));
		for (unsigned k = 0; k < PCB_PAGE_WORDS; k++)
			assert_int_equal(w[k], 0);
	}
	for (int i = 100; i < 200; i++)
		assert_int_equal(s.count[i], 0);
	/* 99 + 50 pages by the batched calls, 1 by the demand install */
	assert_int_equal(p.st.pages, 150);
	if (batch == 1)
		assert_true(p.st.ioctls >= 150);
	else
		assert_true(p.st.ioctls <= 8);   /* a few chunks: 0..4, 6..99 (split by the EEXIST/owned page), 200..249 */
	path_close(&p);
}

/* --demand-replies=lanes: the region sliced over 3 userfaultfds of 100 pages each; a run and a
 * zero run that cross a slice's end are installed through both slices' userfaultfds (cut there),
 * every page once with its bytes; pcb_install_uffd names each page's slice and caps a range at
 * its end.  Without the cut the ioctl fails: its range spans two VMAs (each slice is its own;
 * Linux 6.18's mfill checks that the range lies in one registered VMA, not whose it is). */
static void copy_sliced(void **state)
{
	(void)state;
	static struct seen s;
	struct path p;
	if (!path_open(&p, "copy", 128, 9, &s))
		return;
	p.in.nslices = 3;
	p.in.slice_pages = 100;
	p.in.slice_uffd[0] = p.in.uffd;
	assert_int_equal(pcb_uffd_unregister(p.in.uffd, p.in.region + (100 << PCB_PAGE_SHIFT), 200 << PCB_PAGE_SHIFT), 0);
	for (unsigned k = 1; k < 3; k++) {
		char why[256];
		struct pcb_uffd_info ui;
		int fd = pcb_uffd_open(p.ops->uffd_features, &ui, why, sizeof(why));
		assert_true(fd >= 0);
		assert_int_equal(pcb_uffd_register(fd, p.in.region + ((size_t)k * 100 << PCB_PAGE_SHIFT), 100 << PCB_PAGE_SHIFT,
						   p.ops->register_mode, &ui), 0);
		p.in.slice_uffd[k] = fd;
	}
	uint64_t n = 80;
	assert_int_equal(pcb_install_uffd(&p.in, 150, &n), p.in.slice_uffd[1]);
	assert_int_equal(n, 50);   /* up to the slice's end */
	n = 10;
	assert_int_equal(pcb_install_uffd(&p.in, 299, NULL), p.in.slice_uffd[2]);
	assert_int_equal(pcb_install_uffd(&p.in, 20, &n), p.in.uffd);
	assert_int_equal(n, 10);
	uint64_t owned[(PCB_MAX_RUN_PAGES + 63) / 64];
	rx_image_run(&p, 0, 50, 100, owned);   /* pages 50..149 */
	assert_int_equal(pcb_install_run(&p.in, 0, 50, 100, owned, &p.st, on_page, &s), 0);
	assert_int_equal(pcb_install_zero_run(&p.in, 190, 60, &p.st, on_page, &s), 0);   /* 190..249 */
	uint8_t one[PCB_PAGE_SIZE];
	pcb_image_fill(&p.im, 250, one);
	assert_int_equal(pcb_install_one(&p.in, 250, one, &p.st), 0);
	for (int i = 0; i < NP; i++) {
		bool data = i >= 50 && i < 150, zero = i >= 190 && i < 250;
		assert_int_equal(s.count[i], data || zero);
		uint8_t want[PCB_PAGE_SIZE];
		if (data || i == 250)
			pcb_image_fill(&p.im, (uint64_t)i, want);
		else
			memset(want, 0, sizeof(want));
		if (data || zero || i == 250)
			assert_memory_equal(p.in.region + ((size_t)i << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	assert_int_equal(p.st.pages, 161);
	assert_true(p.st.ioctls >= 5);   /* 50..99, 100..149, 190..199, 200..249, 250 */
	close(p.in.slice_uffd[1]);
	close(p.in.slice_uffd[2]);
	path_close(&p);
}

static void copy_batched(void **state) { (void)state; run_path("copy", 128); }
static void copy_unbatched(void **state) { (void)state; run_path("copy", 1); }
static void move_batched(void **state) { (void)state; run_path("move", 128); }
static void move_unbatched(void **state) { (void)state; run_path("move", 1); }
static void continue_batched(void **state) { (void)state; run_path("continue", 128); }
static void continue_unbatched(void **state) { (void)state; run_path("continue", 1); }

/* Zero slots: a job whose one data segment holds data pages 10..12, zero
 * pages 13..14 (zero slots) and data 15..17 is installed with one ioctl
 * (copy, continue); the zero pages read zero and are reported as zero
 * pages, counted in zero_inline; a zero segment after it (ZEROPAGE for copy)
 * stays apart. */
static void zero_slots_path(const char *name)
{
	static struct seen s;
	struct path p;
	if (!path_open(&p, name, 128, 9, &s))
		return;
	const struct pcb_install_ops *ops = p.ops;
	struct pcb_install_job j = { .slot = 1, .nseg = 2 };
	j.seg[0] = (struct pcb_install_seg){ 10, 0, 8, false };
	j.seg[1] = (struct pcb_install_seg){ 18, 0, 4, true };
	j.zmask[0] = 3ull << 3;   /* staging pages 3, 4 = guest pages 13, 14 */
	uint8_t *buf = pcb_install_slot_buf(&p.in, 1);
	for (unsigned i = 0; i < 8; i++) {
		bool zero = i == 3 || i == 4;
		uint64_t own[(PCB_MAX_RUN_PAGES + 63) / 64];
		if (ops->rx == PCB_INRX_PAGECACHE) {
			if (zero) {
				pcb_install_claim_zero(&p.in, 10 + i, 1, own);
			} else {
				struct iovec iov[1];
				assert_int_equal(pcb_install_rx_iov(&p.in, 1, 10 + i, 1, iov, 1, own), 1);
				pcb_image_fill(&p.im, 10 + i, iov[0].iov_base);
			}
			assert_int_equal(own[0], 1);
			j.owned[0] |= 1ull << i;
		} else if (zero) {
			memset(buf + ((size_t)i << PCB_PAGE_SHIFT), 0, PCB_PAGE_SIZE);
		} else {
			pcb_image_fill(&p.im, 10 + i, buf + ((size_t)i << PCB_PAGE_SHIFT));
		}
	}
	assert_int_equal(pcb_install_job(&p.in, &j, &p.st, on_page, &s), 0);
	assert_int_equal(p.st.zero_inline, 2);
	assert_int_equal(p.st.pages, 12);
	assert_int_equal(p.st.jobs_segs, 2);
	for (int pg = 10; pg < 22; pg++) {
		bool zero = pg == 13 || pg == 14 || pg >= 18;
		assert_int_equal(s.count[pg], 1);
		assert_int_equal(s.res[pg], 0);
		assert_int_equal(s.zero[pg], zero);
		uint8_t want[PCB_PAGE_SIZE];
		if (zero)
			memset(want, 0, sizeof(want));
		else
			pcb_image_fill(&p.im, (uint64_t)pg, want);
		assert_memory_equal(p.in.region + ((size_t)pg << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	/* one ioctl for the eight pages of the data segment, one (copy: ZEROPAGE) or
	 * one per owned range (continue) for the zero segment */
	assert_true(p.st.ioctls <= 2);
	path_close(&p);
}

static void zero_slots_copy(void **state) { (void)state; zero_slots_path("copy"); }
static void zero_slots_continue(void **state) { (void)state; zero_slots_path("continue"); }

/* ---- move: 2 MiB chunks ---- */

#define CP 1024   /* two chunks */
struct cseen {
	int count[CP];
	int res[CP];
};

static void on_cpage(void *ctx, uint64_t page, int res, bool zero)
{
	(void)zero;
	struct cseen *s = ctx;
	s->count[page]++;
	s->res[page] = res;
}

/* move's installer over a registered CP-page region, its page state and the
 * image of seed; false (printed) where this kernel has no UFFDIO_MOVE */
static bool move_open(struct pcb_installer *in, struct pcb_pagestate *ps, struct pcb_image *im, uint64_t seed)
{
	char why[256];
	struct pcb_uffd_info ui;
	const struct pcb_install_ops *move = pcb_install_find("move", false);
	assert_int_equal(pcb_install_map(in, move, PCB_CHUNK_PAGES, CP, why, sizeof(why)), 0);
	assert_int_equal((uintptr_t)in->region % PCB_HUGE_SIZE, 0);
	int fd = pcb_uffd_open(move->uffd_features, &ui, why, sizeof(why));
	if (fd < 0 || pcb_uffd_register(fd, in->region, in->len, UFFDIO_REGISTER_MODE_MISSING, &ui) < 0 ||
	    pcb_install_check(in, &ui, why, sizeof(why)) < 0) {
		printf("UFFDIO_MOVE not available here: not exercised\n");
		if (fd >= 0)
			close(fd);
		pcb_install_unmap(in);
		return false;
	}
	in->uffd = fd;
	assert_int_equal(pcb_ps_init(ps, CP), 0);
	in->demanded = ps->demanded;
	pcb_image_init(im, seed, CP, 0.0);
	return true;
}

static void move_close(struct pcb_installer *in, struct pcb_pagestate *ps)
{
	close(in->uffd);
	pcb_install_unmap(in);
	pcb_ps_free(ps);
}

/* A whole chunk (every 4th page zero) from a staging chunk forced to a huge
 * page moves with one ioctl; where the kernel gave the staging a 2 MiB page,
 * the guest maps it with one PMD.  A chunk with a hole and a page a demand
 * install put there first moves around both. */
static void move_chunks(void **state)
{
	(void)state;
	struct pcb_installer in;
	struct pcb_pagestate ps;
	struct pcb_image im;
	if (!move_open(&in, &ps, &im, 3))
		return;
	static struct cseen s;
	memset(&s, 0, sizeof(s));
	struct pcb_install_stats st = { 0 };

	/* chunk 0, whole, staging forced to a huge page */
	in.fresh_ns[0] = UINT64_MAX;
	in.fresh_ns[1] = 1;
	in.fresh_count = 0;
	pcb_install_chunk_reset(&in, 0, &st);
	assert_int_equal(st.resets_thp, 1);
	uint8_t *cb = pcb_install_slot_buf(&in, 0);
	struct pcb_installer probe = { .region = cb, .len = PCB_HUGE_SIZE };
	uint64_t staging_thp = pcb_install_region_thp_bytes(&probe);
	struct pcb_install_job j = { .page = 0, .n = PCB_CHUNK_PAGES, .slot = 0, .chunk = true };
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		j.have[i / 64] |= 1ull << (i % 64);
		if (i % 4 == 3)
			j.zmask[i / 64] |= 1ull << (i % 64);   /* left as the chunk's zeros */
		else
			pcb_image_fill(&im, i, cb + ((size_t)i << PCB_PAGE_SHIFT));
	}
	assert_int_equal(pcb_install_chunk(&in, &j, &st, on_cpage, &s), 0);
	assert_int_equal(st.chunks_whole, 1);
	assert_int_equal(st.ioctls, 1);
	assert_int_equal(st.pages, PCB_CHUNK_PAGES);
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		assert_int_equal(s.count[i], 1);
		assert_int_equal(s.res[i], 0);
		uint8_t want[PCB_PAGE_SIZE];
		if (i % 4 == 3)
			memset(want, 0, sizeof(want));
		else
			pcb_image_fill(&im, i, want);
		assert_memory_equal(in.region + ((size_t)i << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	if (staging_thp == PCB_HUGE_SIZE)
		assert_int_equal(pcb_install_region_thp_bytes(&in), PCB_HUGE_SIZE);
	else
		printf("the kernel gave the staging chunk no 2 MiB page: PMD move not exercised\n");

	/* chunk 1: page 522 installed by a demand install first, pages 612..711 not received */
	uint8_t one[PCB_PAGE_SIZE];
	pcb_image_fill(&im, 522, one);
	assert_int_equal(pcb_install_one(&in, 522, one, &st), 0);
	struct pcb_install_stats st2 = { 0 };
	cb = pcb_install_slot_buf(&in, 1);
	struct pcb_install_job k = { .page = 512, .n = PCB_CHUNK_PAGES, .slot = 1, .chunk = true };
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		if (i >= 100 && i < 200)
			continue;
		k.have[i / 64] |= 1ull << (i % 64);
		pcb_image_fill(&im, 512 + i, cb + ((size_t)i << PCB_PAGE_SHIFT));
	}
	assert_int_equal(pcb_install_chunk(&in, &k, &st2, on_cpage, &s), 0);
	assert_int_equal(st2.chunks_partial, 1);
	assert_int_equal(st2.eexist, 1);
	assert_int_equal(st2.pages, PCB_CHUNK_PAGES - 100 - 1);
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		uint64_t pg = 512 + i;
		if (i >= 100 && i < 200) {
			assert_int_equal(s.count[pg], 0);
			unsigned char v;
			assert_int_equal(mincore(in.region + (pg << PCB_PAGE_SHIFT), PCB_PAGE_SIZE, &v), 0);
			assert_int_equal(v & 1, 0);   /* still missing: never touched (a read would block) */
			continue;
		}
		assert_int_equal(s.count[pg], 1);
		assert_int_equal(s.res[pg], pg == 522 ? 1 : 0);
		uint8_t want[PCB_PAGE_SIZE];
		pcb_image_fill(&im, pg, want);
		assert_memory_equal(in.region + (pg << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	move_close(&in, &ps);
}

/* UFFDIO_MOVE refuses (EBUSY) a staging page shared with a child: the batch is
 * retried, then copied from staging; every page arrives once with its bytes. */
static void move_busy(void **state)
{
	(void)state;
	struct pcb_installer in;
	struct pcb_pagestate ps;
	struct pcb_image im;
	if (!move_open(&in, &ps, &im, 5))
		return;
	static struct cseen s;
	memset(&s, 0, sizeof(s));
	struct pcb_install_stats st = { 0 };
	uint8_t *cb = pcb_install_slot_buf(&in, 0);
	struct pcb_install_job j = { .page = 0, .n = PCB_CHUNK_PAGES, .slot = 0, .chunk = true };
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		j.have[i / 64] |= 1ull << (i % 64);
		pcb_image_fill(&im, i, cb + ((size_t)i << PCB_PAGE_SHIFT));
	}
	/* a child shares the staging chunk: its pages are no longer this process's alone */
	assert_int_equal(madvise(cb, PCB_HUGE_SIZE, MADV_DOFORK), 0);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char c;
		close(pfd[1]);
		_exit(read(pfd[0], &c, 1) < 0);
	}
	close(pfd[0]);
	assert_int_equal(pcb_install_chunk(&in, &j, &st, on_cpage, &s), 0);
	close(pfd[1]);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_equal(st.move_busy, PCB_MOVE_BUSY_TRIES);
	assert_int_equal(st.move_busy_copied, PCB_CHUNK_PAGES);
	assert_int_equal(st.pages, PCB_CHUNK_PAGES);
	for (unsigned i = 0; i < PCB_CHUNK_PAGES; i++) {
		assert_int_equal(s.count[i], 1);
		assert_int_equal(s.res[i], 0);
		uint8_t want[PCB_PAGE_SIZE];
		pcb_image_fill(&im, i, want);
		assert_memory_equal(in.region + ((size_t)i << PCB_PAGE_SHIFT), want, PCB_PAGE_SIZE);
	}
	move_close(&in, &ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(run_frames),
		cmocka_unit_test(install_names),
		cmocka_unit_test(pin_parse),
		cmocka_unit_test(copy_batched),
		cmocka_unit_test(copy_sliced),
		cmocka_unit_test(copy_unbatched),
		cmocka_unit_test(move_batched),
		cmocka_unit_test(move_unbatched),
		cmocka_unit_test(continue_batched),
		cmocka_unit_test(continue_unbatched),
		cmocka_unit_test(move_chunks),
		cmocka_unit_test(move_busy),
		cmocka_unit_test(zero_slots_copy),
		cmocka_unit_test(zero_slots_continue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
