#include "cli/netcmd.h"
#include "run/run.h"
#include "common/hist.h"
#include "common/image.h"
#include "common/json.h"
#include "common/util.h"
#include "wire/link.h"
#include "wire/proto.h"
#include "source/source.h"
#include "workloads/workload.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pcb_net_prepare(const struct pcb_config *cfg, struct pcb_net *net)
{
	char why[512];
	memset(net, 0, sizeof(*net));
	if (cfg->link[0] && pcb_link_parse(cfg->link, &net->link_bps, &net->link_rtt_ns, why, sizeof(why)) < 0) {
		pcb_err("%s", why);
		return PCB_EXIT_USAGE;
	}
	if (cfg->auth_key_file[0]) {
		int rc = pcb_auth_key_load(cfg->auth_key_file, &net->key, why, sizeof(why));
		if (rc) {
			pcb_err("%s", why);
			return rc;
		}
	}
	if (cfg->source[0]) {
		if (pcb_parse_hostport(cfg->source, net->host, sizeof(net->host), &net->port, 0, why, sizeof(why)) < 0) {
			pcb_err("invalid value for --source: %s", why);
			return PCB_EXIT_USAGE;
		}
		net->remote = true;
	}
	return 0;
}

/* Was --name given on the command line? */
static bool given(int argc, char **argv, int first, const char *name)
{
	size_t n = strlen(name);
	for (int i = first; i < argc; i++)
		if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, n) && (argv[i][2 + n] == 0 || argv[i][2 + n] == '='))
			return true;
	return false;
}

/* pcbench source --workload=APP: serve the application's database image,
 * built from --seed, --mem and --workload-opt as pcbench run builds it. */
static int source_app_image(const struct pcb_config *cfg, bool given_wl, uint8_t **img, char *why, size_t whylen)
{
	*img = NULL;
	if (!given_wl)
		return 0;
	const struct pcb_workload_ops *wl = pcb_workload_find(cfg->workload);
	if (!pcb_wl_is_app(wl) || cfg->image[0]) {
		pcb_err("invalid value for --workload: '%s' (pcbench source builds the image of an application workload "
			"such as sqlite, without --image)", cfg->workload);
		return PCB_EXIT_USAGE;
	}
	struct pcb_wl_params prm = { .npages = cfg->mem / PCB_PAGE_SIZE, .seed = cfg->seed, .nvcpus = 1 };
	int rc = pcb_wl_parse_opts(wl, cfg->workload_opt, &prm, why, whylen) < 0 ? PCB_EXIT_USAGE
		 : pcb_wl_build_image(wl, &prm, img, why, whylen);
	if (rc)
		pcb_err("%s", why);
	return rc;
}

int pcb_cmd_source(int argc, char **argv, int first)
{
	struct pcb_config cfg;
	pcb_cmd_defaults(PCB_CMD_SOURCE, &cfg);
	int r = pcb_cmd_parse(PCB_CMD_SOURCE, &cfg, argc, argv, first);
	if (r == 1)
		return 0;
	if (r)
		return r;
	pcb_verbose = (int)cfg.verbose;
	pcb_sock_buf_bytes = (int)cfg.socket_buffer;
	char host[64], why[512];
	uint16_t port;
	if (pcb_parse_hostport(cfg.listen, host, sizeof(host), &port, 1, why, sizeof(why)) < 0) {
		pcb_err("invalid value for --listen: %s", why);
		return PCB_EXIT_USAGE;
	}
	struct pcb_auth_key key = { 0 };
	if (cfg.auth_key_file[0]) {
		int rc = pcb_auth_key_load(cfg.auth_key_file, &key, why, sizeof(why));
		if (rc) {
			pcb_err("%s", why);
			return rc;
		}
	}
	uint16_t bound;
	int lfd = pcb_listen_tcp(host, port, &bound);
	if (lfd < 0) {
		pcb_err("cannot listen on %s:%u: %s", host, port, strerror(errno));
		return errno == EADDRINUSE || errno == EADDRNOTAVAIL || errno == EINVAL ? PCB_EXIT_USAGE : PCB_EXIT_OSERR;
	}
	if (!key.len)
		pcb_warn("no --auth-key-file: anyone who can reach %s:%u can pull the image, and disturb or end the "
			 "migration (a BYE, a LINK, garbage); give both ends a key (docs/security.md)", host, bound);
	uint8_t *img = NULL;
	size_t img_len = 0;
	int rc = source_app_image(&cfg, given(argc, argv, first, "workload"), &img, why, sizeof(why));
	if (rc)
		return rc;
	if (img)
		img_len = cfg.mem;
	else if (cfg.image[0]) {
		if (given(argc, argv, first, "mem")) {
			pcb_err("invalid value for --mem: --image '%s' sets the size", cfg.image);
			return PCB_EXIT_USAGE;
		}
		rc = pcb_image_map_file(cfg.image, &img, &img_len, why, sizeof(why));
		if (rc) {
			pcb_err("%s", why);
			return rc;
		}
		cfg.mem = img_len;
	}
	struct pcb_source_cfg sc = {
		.mem = img, .bytes_image = img != NULL, .mem_fixed = img != NULL,
		.mem_bytes = cfg.mem, .seed = cfg.seed, .zero_fraction = cfg.zero_pages,
		.zero_run_max = cfg.zero_model == PCB_ZERO_RUNS ? cfg.zero_run_max : 0,
		.demand_delay_ns = cfg.source_delay_ns, .sessions = (int)cfg.sessions, .verbose = (int)cfg.verbose,
		.key = key.len ? &key : NULL, .summary = 1, .image_mode = cfg.source_image,
		.send = (enum pcb_source_send)cfg.source_send,
		/* --io-timeout bounds the whole handshake and every blocked send (10 s unless given) */
		.handshake_timeout_ms = given(argc, argv, first, "io-timeout") ? (int)(cfg.io_timeout_ns / PCB_NSEC_PER_MSEC) : 10000,
	};
	sc.send_timeout_ms = sc.handshake_timeout_ms;
	/* the image is built before "listening" is printed: a destination that
	 * connects on that line is not kept in the backlog while it is built */
	struct pcb_source_image si;
	int e = pcb_source_image_prepare(&sc, &si);
	if (e < 0) {
		pcb_err("source: cannot build the image in memory: %s", strerror(-e));
		return PCB_EXIT_OSERR;
	}
	if (si.mem)
		pcb_log("source: image built in memory in %.3f s", (double)si.build_ns / 1e9);
	char b[32];
	const char *auth = key.len ? "every frame authenticated" : "NO AUTHENTICATION";
	if (img)
		printf("pcbench source: listening on %s:%u, %s %s (%s, %llu pages), %s, %s\n", host, bound,
		       cfg.image[0] ? "image file" : "database image of workload", cfg.image[0] ? cfg.image : cfg.workload,
		       pcb_fmt_size(cfg.mem, b, sizeof(b)), (unsigned long long)(cfg.mem / PCB_PAGE_SIZE), auth,
		       cfg.sessions ? "exits after the migration" : "serves until killed");
	else
		printf("pcbench source: listening on %s:%u, %s image (%llu pages), seed %llu, zero pages %g, %s, %s\n",
		       host, bound, pcb_fmt_size(cfg.mem, b, sizeof(b)), (unsigned long long)(cfg.mem / PCB_PAGE_SIZE),
		       (unsigned long long)cfg.seed, cfg.zero_pages, auth, cfg.sessions ? "exits after the migration" : "serves until killed");
	fflush(stdout);
	rc = pcb_source_serve(&sc, lfd);
	pcb_source_image_release(&si);
	return rc;
}

/* --zero-model / --zero-run-max given to `pcbench dest` must match what the
 * source announced in CONFIG (run_max 0 = uniform); a mismatch is written to mine. */
static void zero_model_mismatch(const struct pcb_config *cfg, int argc, char **argv, int first, unsigned run_max,
				char *mine, size_t len)
{
	const char *theirs = run_max ? "runs" : "uniform";
	if (given(argc, argv, first, "zero-model") && (cfg->zero_model == PCB_ZERO_RUNS) != (run_max != 0))
		snprintf(mine, len, "--zero-model %s but the source serves %s", pcb_choice_name("zero-model", cfg->zero_model),
			 theirs);
	else if (given(argc, argv, first, "zero-run-max") && run_max && cfg->zero_run_max != run_max)
		snprintf(mine, len, "--zero-run-max %u but the source serves %u", cfg->zero_run_max, run_max);
	else if (given(argc, argv, first, "zero-run-max") && !run_max && !given(argc, argv, first, "zero-model"))
		snprintf(mine, len, "--zero-run-max %u but the source serves --zero-model=uniform", cfg->zero_run_max);
}

int pcb_cmd_dest(int argc, char **argv, int first)
{
	struct pcb_config cfg;
	struct pcb_net net;
	char why[512];
	pcb_cmd_defaults(PCB_CMD_DEST, &cfg);
	int r = pcb_cmd_parse(PCB_CMD_DEST, &cfg, argc, argv, first);
	if (r == 1)
		return 0;
	if (r)
		return r;
	if (!cfg.source[0]) {
		pcb_err("`pcbench dest` needs --source=ADDRESS:PORT (of a running `pcbench source`)");
		return PCB_EXIT_USAGE;
	}
	if ((r = pcb_net_prepare(&cfg, &net)) != 0)
		return r;
	/* fetch the source's configuration: what the user left unset is taken from it, what the user set must match */
	struct pcb_conn c = { .fd = -1 };
	struct pcb_config_wire cw;
	int io_ms = (int)(cfg.io_timeout_ns / PCB_NSEC_PER_MSEC);
	r = pcb_hs_connect(&c, net.host, net.port, UINT64_MAX, PCB_CHAN_QUERY, 0, net.key.len ? &net.key : NULL, 5000,
			   io_ms > 5000 ? io_ms : 5000, &cw, NULL, why, sizeof(why));
	if (c.rbuf)
		pcb_conn_free(&c);
	if (r) {
		pcb_err("%s", why);
		return r;
	}
	double zf = cw.zero_threshold == UINT64_MAX ? 1.0 : ldexp((double)cw.zero_threshold, -64);
	struct pcb_image probe;
	pcb_image_init(&probe, cw.seed, cw.npages, zf);
	char mine[160] = "", b1[32], b2[32];
	if (given(argc, argv, first, "mem") && cfg.mem != cw.mem_bytes)
		snprintf(mine, sizeof(mine), "--mem %s but the source serves %s", pcb_fmt_size(cfg.mem, b1, sizeof(b1)),
			 pcb_fmt_size(cw.mem_bytes, b2, sizeof(b2)));
	else if (given(argc, argv, first, "seed") && cfg.seed != cw.seed)
		snprintf(mine, sizeof(mine), "--seed %llu but the source serves seed %llu", (unsigned long long)cfg.seed,
			 (unsigned long long)cw.seed);
	else if (given(argc, argv, first, "zero-pages")) {
		struct pcb_image want;
		pcb_image_init(&want, cw.seed, cw.npages, cfg.zero_pages);
		if (want.zero_threshold != cw.zero_threshold)
			snprintf(mine, sizeof(mine), "--zero-pages %g but the source serves %g", cfg.zero_pages, zf);
	}
	else if (!(cw.reserved & PCB_CFG_BYTES_IMAGE))
		zero_model_mismatch(&cfg, argc, argv, first, pcb_cfg_zero_run_max(cw.reserved), mine, sizeof(mine));
	if (mine[0]) {
		pcb_err("configuration mismatch with the source at %s: %s", cfg.source, mine);
		return PCB_EXIT_USAGE;
	}
	if (probe.zero_threshold != cw.zero_threshold) {
		pcb_err("the source's zero-page threshold %llu has no exact --zero-pages fraction; start both with the same --zero-pages",
			(unsigned long long)cw.zero_threshold);
		return PCB_EXIT_USAGE;
	}
	cfg.mem = cw.mem_bytes;
	cfg.seed = cw.seed;
	cfg.zero_pages = zf;
	if (!(cw.reserved & PCB_CFG_BYTES_IMAGE)) {   /* the zero model too: the destination builds the same image */
		unsigned run_max = pcb_cfg_zero_run_max(cw.reserved);
		cfg.zero_model = run_max ? PCB_ZERO_RUNS : PCB_ZERO_UNIFORM;
		if (run_max)
			cfg.zero_run_max = run_max;
	}
	cfg.bytes_image_remote = (cw.reserved & PCB_CFG_BYTES_IMAGE) != 0;   /* a file: nothing but its size is needed here */
	return pcb_cli_migrate(&cfg);
}

int pcb_cli_migrate(const struct pcb_config *cfg)
{
	bool stranded = false;
	int rc = pcb_run_migration(cfg, &stranded);
	if (stranded) {
		/* vCPU threads are blocked in faults nobody will serve: leave without
		 * exit handlers (a leak checker would stop those threads to scan them) */
		fflush(NULL);
		_exit(rc);
	}
	return rc;
}

void pcb_net_json(struct pcb_json *j, const struct pcb_pager_stats *s)
{
	const struct pcb_link_result *l = &s->link;
	pcb_json_obj_begin(j, "link");
	pcb_json_bool(j, "emulated", l->emulated);
	if (l->emulated) {
		PCB_JSON_GROUP(j, "configured", PCB_JU64("bandwidth_bps", l->bps), PCB_JU64("rtt_ns", l->rtt_ns));
		if (s->channels == 1)   /* the modelled socket buffer a demand reply waits behind (wire/link.h) */
			pcb_json_u64(j, "shared_socket_buffer_bytes", PCB_LINK_SOCKQ_BYTES);
		PCB_JSON_GROUP(j, "achieved", PCB_JDBL("bulk_bps", l->bulk_bps), PCB_JU64("bulk_bytes", l->bulk_bytes),
			       PCB_JU64("bulk_ns", l->bulk_ns), PCB_JU64("rtt_median_ns", l->rtt_median_ns),
			       PCB_JU64("rtt_p10_ns", l->rtt_p10_ns), PCB_JU64("rtt_p90_ns", l->rtt_p90_ns),
			       PCB_JU64("rtt_samples", l->rtt_samples),
			       PCB_JDBL("bandwidth_error", l->bps ? l->bulk_bps / (double)l->bps - 1 : 0),
			       PCB_JDBL("rtt_error", l->rtt_ns ? (double)l->rtt_median_ns / (double)l->rtt_ns - 1 : 0));
		PCB_JSON_GROUP(j, "calibration", PCB_JU64("base_rtt_ns", l->base_rtt_ns),
			       PCB_JU64("injected_delay_ns", l->delay_ns), PCB_JU64("rounds", l->rounds),
			       PCB_JI64("destination_cpu", l->cpu));
		/* what page requests saw during the run: the RTT plus the page's serialisation plus the
		 * host's own page service on CPUs the guest shares (a consistency check, not the target) */
		pcb_json_obj_begin(j, "in_run");
		pcb_json_u64(j, "demand_requests", s->demand_rtt.count);
		pcb_json_u64(j, "demand_round_trip_p50_ns", s->demand_rtt.count ? pcb_hist_percentile(&s->demand_rtt, 50) : 0);
		pcb_json_u64(j, "expected_page_round_trip_ns",
			     l->rtt_ns + (l->bps ? (uint64_t)((PCB_HDR_SIZE + PCB_PAGE_SIZE) * 8e9 / (double)l->bps) : 0));
		/* background bytes over the time from the first to the last background install: below the
		 * link rate when the pull is window-limited (--window x --batch pages per RTT) or shares the link */
		uint64_t bg_ns = s->t_bg_last_ns > s->t_bg_first_ns ? s->t_bg_last_ns - s->t_bg_first_ns : 0;
		/* the calibration's PONG train (~150 ms of the link) went over the same connection before switch-over */
		uint64_t bg_bytes = s->chan[1].bytes_rx > l->bg_setup_rx_bytes ? s->chan[1].bytes_rx - l->bg_setup_rx_bytes : 0;
		pcb_json_dbl(j, "background_bps", bg_ns ? (double)bg_bytes * 8e9 / (double)bg_ns : 0);
		pcb_json_obj_end(j);
		pcb_json_str(j, "method", "source-side delay line + token bucket (frame bytes); RTT = median of header-only "
			     "PING/PONG round trips measured by the destination after calibration; bulk = pipelined PONG train "
			     "on the background connection");
	}
	pcb_json_obj_end(j);

	const struct pcb_recovery_stats *r = &s->rec;
	pcb_json_obj_begin(j, "recovery");
	static const char *const cn[2] = { "demand", "background" };
	for (int ch = s->channels == 1 ? 1 : 0; ch < 2; ch++) {   /* --channels=1: "shared" only */
		PCB_JSON_GROUP(j, s->channels == 1 ? "shared" : cn[ch], PCB_JU64("losses", r->losses[ch]),
			       PCB_JU64("reconnects", r->reconnects[ch]), PCB_JU64("pause_ns", r->pause_ns[ch]),
			       PCB_JU64("pause_max_ns", r->pause_max_ns[ch]));
	}
	PCB_JSON_FIELDS(j, PCB_JU64("demand_pages_rerequested", r->demand_rerequested),
			PCB_JU64("background_pages_rerequested", r->bg_pages_rerequested),
			PCB_JU64("background_batches_resent", r->bg_batches_resent),
			PCB_JU64("pages_rerequested", r->demand_rerequested + r->bg_pages_rerequested),
			PCB_JU64("frames_refused", r->frames_refused), PCB_JU64("batches_incomplete", r->batches_incomplete),
			PCB_JU64("handshake_retries", r->handshake_retries),
			PCB_JU64("frames_unrequested", r->frames_unrequested),
			PCB_JU64("batch_ends_out_of_order", r->batch_ends_out_of_order),
			PCB_JU64("push_pages_missing", r->push_pages_missing));
	if (r->last_loss[0])
		pcb_json_str(j, "last_loss", r->last_loss);
	pcb_json_obj_end(j);
}

void pcb_net_human(FILE *fp, const struct pcb_pager_stats *s)
{
	const struct pcb_link_result *l = &s->link;
	if (l->emulated && l->bps)
		fprintf(fp, "  link        configured %.3f Gbit/s, RTT %.1f µs; achieved %.3f Gbit/s, RTT median %.1f µs "
			"(host base RTT %.1f µs, injected %.1f µs)\n",
			(double)l->bps / 1e9, (double)l->rtt_ns / 1e3, l->bulk_bps / 1e9, (double)l->rtt_median_ns / 1e3,
			(double)l->base_rtt_ns / 1e3, (double)l->delay_ns / 1e3);
	else if (l->emulated)
		fprintf(fp, "  link        configured unlimited bandwidth, RTT %.1f µs; achieved RTT median %.1f µs "
			"(host base RTT %.1f µs, injected %.1f µs)\n",
			(double)l->rtt_ns / 1e3, (double)l->rtt_median_ns / 1e3, (double)l->base_rtt_ns / 1e3,
			(double)l->delay_ns / 1e3);
	const struct pcb_recovery_stats *r = &s->rec;
	if (r->frames_refused || r->batches_incomplete || r->frames_unrequested || r->batch_ends_out_of_order ||
	    r->push_pages_missing)
		fprintf(fp, "  integrity   %llu frames refused (failed authentication; asked for again), %llu background batches "
			"ended without all their pages (asked for again), %llu unrequested frames dropped, %llu batch ends "
			"out of order, %llu pages missing from the pushed stream (pulled)\n",
			(unsigned long long)r->frames_refused, (unsigned long long)r->batches_incomplete,
			(unsigned long long)r->frames_unrequested, (unsigned long long)r->batch_ends_out_of_order,
			(unsigned long long)r->push_pages_missing);
	if (s->channels == 1 && r->losses[1])
		fprintf(fp, "  recovery    %llu connection losses, %llu reconnects (shared channel), paused %.3f s (max %.3f s); "
			"%llu pages re-requested (%llu demand)\n",
			(unsigned long long)r->losses[1], (unsigned long long)r->reconnects[1], pcb_ns_to_s(r->pause_ns[1]),
			pcb_ns_to_s(r->pause_max_ns[1]), (unsigned long long)(r->demand_rerequested + r->bg_pages_rerequested),
			(unsigned long long)r->demand_rerequested);
	else if (r->losses[0] || r->losses[1])
		fprintf(fp, "  recovery    %llu+%llu connection losses, %llu+%llu reconnects (demand+background); "
			"demand paused %.3f s (max %.3f s); %llu pages re-requested\n",
			(unsigned long long)r->losses[0], (unsigned long long)r->losses[1],
			(unsigned long long)r->reconnects[0], (unsigned long long)r->reconnects[1],
			pcb_ns_to_s(r->pause_ns[0]), pcb_ns_to_s(r->pause_max_ns[0]),
			(unsigned long long)(r->demand_rerequested + r->bg_pages_rerequested));
}
