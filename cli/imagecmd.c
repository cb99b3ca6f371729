/* `pcbench image`: raw memory image files (common/imagefile.h).
 *   pcbench image stats FILE [--json=OUT] [--sample=PAGES]
 *   pcbench image dump --pid=PID --out=FILE [--no-stop] [--max=SIZE]
 * A FILE serves as the source's memory with `pcbench source --image=FILE`
 * or `pcbench run --image=FILE`. */
#include "cli/imagecmd.h"
#include "common/image.h"
#include "common/imagefile.h"
#include "common/json.h"
#include "common/util.h"
#include "cli/options.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

struct image_args {
	const char *file, *json, *out;
	uint64_t sample, max, pid;
	int stop;
};

/* 0, 1 (help printed) or an exit code.  The options are the table's (cli/options.c, scope image stats | dump). */
static int image_parse(int argc, char **argv, bool dump, struct image_args *a)
{
	static struct pcb_config o;   /* a's strings point into it (one command per process) */
	enum pcb_cmd cmd = dump ? PCB_CMD_IMAGE_DUMP : PCB_CMD_IMAGE_STATS;
	pcb_cmd_defaults(cmd, &o);
	int rc = pcb_cmd_parse(cmd, &o, argc, argv, 3);
	if (rc)
		return rc;
	*a = (struct image_args){ .file = o.nargs ? o.args[0] : NULL, .json = o.json[0] ? o.json : NULL,
				  .out = o.image_cmd.out[0] ? o.image_cmd.out : NULL, .sample = o.image_cmd.sample,
				  .max = o.image_cmd.max, .pid = o.image_cmd.pid, .stop = !o.image_cmd.no_stop };
	if (!dump && !a->file) {
		pcb_err("image stats needs a FILE (pcbench image stats FILE)");
		return PCB_EXIT_USAGE;
	}
	if (dump && (!a->pid || !a->out)) {
		pcb_err("image dump needs --pid=PID and --out=FILE");
		return PCB_EXIT_USAGE;
	}
	return 0;
}

static void stats_human(const char *file, const struct pcb_image_stats *st)
{
	char b[32];
	printf("image %s: %s, %llu pages\n", file, pcb_fmt_size(st->pages * PCB_PAGE_SIZE, b, sizeof(b)),
	       (unsigned long long)st->pages);
	printf("  zero pages    %llu (%.2f%%); duplicates of an earlier non-zero page %llu (%.2f%%)\n",
	       (unsigned long long)st->zero_pages, 100.0 * (double)st->zero_pages / (double)st->pages,
	       (unsigned long long)st->dup_pages, 100.0 * (double)st->dup_pages / (double)st->pages);
	printf("  runs          length   zero runs (pages)        data runs (pages)\n");
	for (unsigned i = 0; i < PCB_RUN_BUCKETS; i++) {
		if (!st->zero_runs[i] && !st->data_runs[i])
			continue;
		char len[32];
		if (i == 0)
			snprintf(len, sizeof(len), "1");
		else
			snprintf(len, sizeof(len), "%llu-%llu", 1ull << i, (2ull << i) - 1);
		printf("                %-8s %9llu (%9llu)    %9llu (%9llu)\n", len, (unsigned long long)st->zero_runs[i],
		       (unsigned long long)st->zero_run_pages[i], (unsigned long long)st->data_runs[i],
		       (unsigned long long)st->data_run_pages[i]);
	}
	printf("  longest       zero run %llu pages, data run %llu pages\n", (unsigned long long)st->longest_zero_run,
	       (unsigned long long)st->longest_data_run);
	if (st->sampled_pages)
		printf("  zlib -1/page  %.3f of %llu non-zero pages' bytes (%.1f%% of them under half a page)\n",
		       (double)st->compressed_bytes / (double)st->sampled_bytes, (unsigned long long)st->sampled_pages,
		       100.0 * (double)st->pages_under_half / (double)st->sampled_pages);
	if (st->stream_in_bytes)
		printf("  zlib -1 whole %.4f of the first %s as one stream\n",
		       (double)st->stream_out_bytes / (double)st->stream_in_bytes,
		       pcb_fmt_size(st->stream_in_bytes, b, sizeof(b)));
}

static int stats_json(const char *path, const char *file, const struct pcb_image_stats *st)
{
	FILE *fp = fopen(path, "w");
	if (!fp) {
		pcb_err("invalid value for --json: '%s' cannot be written (%s)", path, strerror(errno));
		return PCB_EXIT_USAGE;
	}
	struct pcb_json *j = pcb_json_open(fp);
	pcb_json_obj_begin(j, NULL);
	PCB_JSON_FIELDS(j, PCB_JSTR("tool", "pcbench image stats"), PCB_JSTR("version", PCB_VERSION),
			PCB_JSTR("git_revision", PCB_GITREV), PCB_JSTR("file", file), PCB_JU64("page_size", PCB_PAGE_SIZE),
			PCB_JU64("pages", st->pages), PCB_JU64("zero_pages", st->zero_pages),
			PCB_JDBL("zero_share", (double)st->zero_pages / (double)st->pages),
			PCB_JU64("duplicate_pages", st->dup_pages));
	pcb_json_arr_begin(j, "runs");   /* bucket i: lengths 2^i .. 2^(i+1)-1 */
	for (unsigned i = 0; i < PCB_RUN_BUCKETS; i++) {
		if (!st->zero_runs[i] && !st->data_runs[i])
			continue;
		PCB_JSON_GROUP(j, NULL, PCB_JU64("min_len", 1ull << i), PCB_JU64("max_len", (2ull << i) - 1),
			       PCB_JU64("zero_runs", st->zero_runs[i]), PCB_JU64("zero_run_pages", st->zero_run_pages[i]),
			       PCB_JU64("data_runs", st->data_runs[i]), PCB_JU64("data_run_pages", st->data_run_pages[i]));
	}
	pcb_json_arr_end(j);
	pcb_json_u64(j, "longest_zero_run", st->longest_zero_run);
	pcb_json_u64(j, "longest_data_run", st->longest_data_run);
	pcb_json_obj_begin(j, "zlib_per_page");
	pcb_json_str(j, "method", "zlib level 1 (compress2) of each non-zero 4 KiB page on its own; an evenly spaced sample "
		     "when there are more than --sample");
	pcb_json_u64(j, "pages", st->sampled_pages);
	pcb_json_dbl(j, "ratio", st->sampled_bytes ? (double)st->compressed_bytes / (double)st->sampled_bytes : 0);
	pcb_json_u64(j, "pages_under_half", st->pages_under_half);
	pcb_json_obj_end(j);
	PCB_JSON_GROUP(j, "zlib_stream", PCB_JU64("in_bytes", st->stream_in_bytes),
		       PCB_JU64("out_bytes", st->stream_out_bytes));
	pcb_json_obj_end(j);
	int rc = pcb_json_close(j) < 0;
	rc |= fclose(fp) != 0;
	if (rc) {
		pcb_err("cannot write --json file '%s'", path);
		return PCB_EXIT_OSERR;
	}
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	struct image_args a;
	int rc = image_parse(argc, argv, false, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	uint8_t *mem;
	size_t len;
	char why[512];
	if ((rc = pcb_image_map_file(a.file, &mem, &len, why, sizeof(why))) != 0) {
		pcb_err("%s", why + (strncmp(why, "invalid value for --image: ", 27) ? 0 : 27));
		return rc;
	}
	struct pcb_image_stats st;
	if (pcb_image_stats(mem, len / PCB_PAGE_SIZE, a.sample, &st) < 0) {
		munmap(mem, len);
		pcb_err("out of memory");
		return PCB_EXIT_OSERR;
	}
	munmap(mem, len);
	stats_human(a.file, &st);
	return a.json ? stats_json(a.json, a.file, &st) : 0;
}

static int cmd_dump(int argc, char **argv)
{
	struct image_args a;
	int rc = image_parse(argc, argv, true, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct pcb_dump_result res;
	char why[512], b[32];
	if ((rc = pcb_image_dump((pid_t)a.pid, a.out, a.stop, a.max, &res, why, sizeof(why))) != 0) {
		pcb_err("%s", why);
		return rc;
	}
	printf("pcbench image dump: pid %llu, %u regions, %s (%llu pages, %llu unreadable written as zero) to %s "
	       "(regions: %s.maps)%s\n", (unsigned long long)a.pid, res.regions, pcb_fmt_size(res.bytes, b, sizeof(b)),
	       (unsigned long long)(res.bytes / PCB_PAGE_SIZE), (unsigned long long)res.unreadable_pages, a.out, a.out,
	       a.stop ? "; the process was stopped for the copy" : "");
	return 0;
}

int pcb_cmd_image(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[2], "stats"))
		return cmd_stats(argc, argv);
	if (argc > 2 && !strcmp(argv[2], "dump"))
		return cmd_dump(argc, argv);
	if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
		pcb_cmd_help(PCB_CMD_IMAGE_STATS, stdout);
		printf("\n");
		pcb_cmd_help(PCB_CMD_IMAGE_DUMP, stdout);
		return 0;
	}
	pcb_err("image: want a subcommand: stats or dump (see pcbench image --help)");
	return PCB_EXIT_USAGE;
}
