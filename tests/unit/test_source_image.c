/* source/image.c: the source's in-memory image has the generator's contents
 * and digests, page for page, in both zero-page models, and its map of populated
 * pages marks exactly the data pages; generate builds nothing;
 * pcb_source_fork's child builds the image in its own address space. */
#include "tests/lib/testlib.h"
#include "source/source.h"
#include "wire/proto.h"
#include "common/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include "common/util.h"

#define NP 4096u   /* 16 MiB */

/* The VMA holding p was advised MADV_NOHUGEPAGE ("nh" in its VmFlags). */
static bool vma_no_huge(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	assert_non_null(f);
	char line[512];
	bool inside = false, nh = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, z;
		if (sscanf(line, "%llx-%llx ", &a, &z) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = (uintptr_t)p >= a && (uintptr_t)p < z;
		else if (inside && !strncmp(line, "VmFlags:", 8))
			nh = strstr(line, " nh") != NULL;
	}
	fclose(f);
	return nh;
}

static void check_model(unsigned zero_run_max)
{
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 11, .zero_fraction = 0.25,
				      .zero_run_max = zero_run_max, .image_mode = PCB_SRC_IMAGE_MEMORY };
	struct pcb_source_image si;
	assert_int_equal(pcb_source_image_prepare(&cfg, &si), 0);
	assert_int_equal(si.mode, PCB_SRC_IMAGE_MEMORY);
	assert_non_null(si.mem);
	assert_ptr_equal(cfg.mem, si.mem);
	assert_true(cfg.mem_fixed);
	assert_true(vma_no_huge(si.mem));   /* 4 KiB pages whatever the THP mode */
	struct pcb_image im;
	pcb_image_init(&im, 11, NP, 0.25);
	if (zero_run_max)
		assert_int_equal(pcb_image_zero_runs(&im, zero_run_max), 0);
	/* pagemap, read after the build and before anything reads the image: exactly the data
	 * pages are populated (the loop below reads every page, which populates the rest) */
	assert_non_null(cfg.mem_populated);
	assert_ptr_equal(cfg.mem_populated, si.populated);
	for (uint64_t pg = 0; pg < NP; pg++)
		if (!(cfg.mem_populated[pg / 64] >> (pg % 64) & 1) != pcb_image_is_zero(&im, pg))
			fail_msg("model %u page %llu: populated %d, zero in the image %d", zero_run_max, (unsigned long long)pg,
				 (int)(cfg.mem_populated[pg / 64] >> (pg % 64) & 1), (int)pcb_image_is_zero(&im, pg));
	uint64_t want[PCB_PAGE_WORDS], zeros = 0;
	for (uint64_t pg = 0; pg < NP; pg++) {
		const uint8_t *got = si.mem + (pg << PCB_PAGE_SHIFT);
		pcb_image_fill(&im, pg, want);
		if (memcmp(got, want, PCB_PAGE_SIZE))
			fail_msg("model %u page %llu differs from the generator's", zero_run_max, (unsigned long long)pg);
		tl_assert_u64_eq(pcb_page_digest(got), pcb_image_digest(&im, pg));
		assert_int_equal(pcb_page_is_zero(got), pcb_image_is_zero(&im, pg));
		zeros += pcb_image_is_zero(&im, pg);
	}
	assert_true(zeros > NP / 8 && zeros < NP / 2);   /* both models: a quarter of the pages */
	pcb_image_free_bytes(&im);
	pcb_source_image_release(&si);
	assert_null(si.mem);
}

static void test_memory_equals_generator(void **state)
{
	(void)state;
	check_model(0);      /* uniform */
	check_model(1024);   /* runs */
}

static void test_generate_and_held_memory(void **state)
{
	(void)state;
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 11, .image_mode = PCB_SRC_IMAGE_GENERATE };
	struct pcb_source_image si;
	assert_int_equal(pcb_source_image_prepare(&cfg, &si), 0);
	assert_int_equal(si.mode, PCB_SRC_IMAGE_GENERATE);
	assert_null(si.mem);
	assert_null(cfg.mem);
	assert_int_equal(si.build_ns, 0);
	/* a source that already holds memory (--precopy, a bytes image) builds nothing whatever the mode */
	static uint8_t held[4096];
	struct pcb_source_cfg c2 = { .mem_bytes = 4096, .seed = 11, .mem = held, .image_mode = PCB_SRC_IMAGE_MEMORY };
	assert_int_equal(pcb_source_image_prepare(&c2, &si), 0);
	assert_null(si.mem);
	assert_ptr_equal(c2.mem, held);
	/* auto on a small image: memory (16 MiB x 4 is below any machine's MemAvailable the tests run on) */
	struct pcb_source_cfg c3 = { .mem_bytes = NP * 4096ull, .seed = 11 };
	assert_int_equal(pcb_source_image_prepare(&c3, &si), 0);
	assert_int_equal(si.mode, PCB_SRC_IMAGE_MEMORY);
	assert_true(si.avail_bytes >= 4 * c3.mem_bytes);
	pcb_source_image_release(&si);
	/* auto on an image larger than a quarter of what is available: generated */
	struct pcb_source_cfg c4 = { .mem_bytes = (1ull << 50), .seed = 11 };
	assert_int_equal(pcb_source_image_prepare(&c4, &si), 0);
	assert_int_equal(si.mode, PCB_SRC_IMAGE_GENERATE);
	assert_null(c4.mem);
}

/* minor faults of a process so far (/proc/PID/stat field 10) */
static long long minflt_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');   /* after the command name, which may hold spaces */
	assert_non_null(p);
	long long v = -1;
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lld", &v), 1);
	return v;
}

/* The forked source builds its image itself before pcb_source_fork returns:
 * the child took a write fault on every data page, this process none of
 * them (a page first read by a process that did not write it costs a fill of
 * its mappings on nested machines: docs/results/2026-12-05-source-own-image.md),
 * and the report gives the child's build. */
static void test_fork_builds_in_child(void **state)
{
	(void)state;
	uint16_t port;
	int lfd = pcb_listen_tcp("127.0.0.1", 0, &port);
	assert_true(lfd >= 0);
	struct pcb_source_image si = { 0 };
	struct pcb_source_cfg cfg = { .mem_bytes = NP * 4096ull, .seed = 11, .zero_fraction = 0.25, .sessions = 1,
				      .handshake_timeout_ms = 1000, .image_mode = PCB_SRC_IMAGE_MEMORY, .image_report = &si };
	long long before = minflt_of(getpid());
	pid_t pid = pcb_source_fork(&cfg, lfd, -1);
	long long here = minflt_of(getpid()) - before;
	assert_true(pid > 0);
	long long child = minflt_of(pid);
	kill(pid, SIGKILL);
	assert_true(pcb_reap_child(pid, false, 3000, NULL));
	struct pcb_image im;
	pcb_image_init(&im, 11, NP, 0.25);
	uint64_t data = NP - pcb_image_zero_count(&im);
	pcb_image_free_bytes(&im);
	assert_int_equal(si.mode, PCB_SRC_IMAGE_MEMORY);
	assert_null(si.mem);
	assert_true(si.build_ns > 0 && si.cpu_ns > 0);
	assert_true(child >= (long long)data);
	assert_true(here < (long long)data / 4);
	printf("image of %u pages (%llu data): the child's minor faults %lld, this process's %lld\n", NP,
	       (unsigned long long)data, child, here);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_equals_generator),
		cmocka_unit_test(test_generate_and_held_memory),
		cmocka_unit_test(test_fork_builds_in_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
