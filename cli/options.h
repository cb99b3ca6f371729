/* One options table drives parsing, --help and the JSON echo of the
 * resolved configuration (fio's model). */
#ifndef PCB_OPTIONS_H
#define PCB_OPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

struct pcb_json;

/* Choice options are parsed once into these (the table's choice lists map names to values). */
enum pcb_switch { PCB_AUTO, PCB_ON, PCB_OFF };
enum pcb_page_kind { PCB_PAGE_4K, PCB_PAGE_2M };
enum pcb_guest_kind { PCB_GUEST_PROCESS, PCB_GUEST_KVM };
enum pcb_zero_model { PCB_ZERO_UNIFORM, PCB_ZERO_RUNS };
enum pcb_pager_mode { PCB_PAGER_THREAD, PCB_PAGER_PROCESS };
enum pcb_precopy_transport { PCB_PRECOPY_TCP, PCB_PRECOPY_MEMORY };
enum pcb_precopy_final { PCB_PRECOPY_DROP, PCB_PRECOPY_RESEND };
enum pcb_inflight { PCB_INFLIGHT_WAIT, PCB_INFLIGHT_RESEND };
enum pcb_demand_replies { PCB_REPLIES_AUTO, PCB_REPLIES_INLINE, PCB_REPLIES_THREAD, PCB_REPLIES_LANES };
enum pcb_installer_mode { PCB_INSTALLER_AUTO, PCB_INSTALLER_INLINE, PCB_INSTALLER_THREAD };   /* pager cfg.installer 0, 1, 2 */
#define PCB_END_AUTO (-1)            /* --policy-end=auto: the policy's own end */

/* The commands; an option's scope is the set of commands that accept it. */
enum pcb_cmd {
	PCB_CMD_RUN = 1u << 0, PCB_CMD_SOURCE = 1u << 1, PCB_CMD_DEST = 1u << 2, PCB_CMD_SIMULATE = 1u << 3,
	PCB_CMD_FLOOR = 1u << 4, PCB_CMD_BENCH = 1u << 5, PCB_CMD_ANALYZE = 1u << 6,
	PCB_CMD_IMAGE_STATS = 1u << 7, PCB_CMD_IMAGE_DUMP = 1u << 8,
};

struct pcb_config {
	uint64_t mem;                /* bytes */
	char policy[256];            /* a registered name or ./path/to/policy.so */
	int policy_end;              /* enum pcb_policy_end (policies/policy.h), or PCB_END_AUTO; resolved before the run */
	char workload[32];
	unsigned vcpus;
	uint64_t seed;
	double zero_pages;
	enum pcb_zero_model zero_model;  /* --zero-model: uniform | runs */
	unsigned zero_run_max;       /* --zero-run-max: longest zero run (pages, a power of two) */
	double write_ratio;
	double zipf_theta;
	uint64_t duration_ns;
	uint64_t ops;
	char json[4096];
	char timeline[4096];
	char host[64];
	unsigned port;
	uint64_t io_timeout_ns;
	unsigned batch_pages;
	unsigned window;
	unsigned channels;
	enum pcb_inflight inflight;  /* --inflight: wait | resend */
	enum pcb_demand_replies demand_replies;   /* --demand-replies: auto | inline | thread | lanes */
	enum pcb_installer_mode installer;        /* --installer: auto | inline | thread (background installs) */
	uint64_t socket_buffer;      /* --socket-buffer: SO_SNDBUF/SO_RCVBUF asked for (0 = kernel autotuning) */           /* --channels: 2 = demand on its own connection, 1 = one shared connection */
	uint64_t source_delay_ns;
	enum pcb_switch trace;       /* auto | on | off */
	char trace_events[4096];
	enum pcb_switch trace_usdt;  /* on | off */
	enum pcb_switch trace_messages;   /* auto | on | off */
	char policy_opt[512];        /* key=value[,key=value] for the policy */
	char workload_opt[512];      /* key=value[,key=value] for the workload */
	char record[4096];           /* write the guest's access sequence here */
	char replay[224];            /* --policy=replay: the access trace to replay (its `file` knob) */
	unsigned bucket_ms;          /* progress bucket */
	char progress_csv[4096];
	char baseline[4096];         /* none | run | FILE (progress CSV of a --policy=local run) */
	char install[16];            /* an install path's name (install/registry.c) */
	enum pcb_page_kind page_size;    /* 4K | 2M (run/hugepages.h) */
	unsigned install_batch;
	unsigned zero_inline;        /* --zero-inline: longest zero run copied in with the data (copy) */
	char pin[128];               /* thread placement (common/pin.h) */
	enum pcb_guest_kind guest;   /* process | kvm */
	enum pcb_pager_mode pager;   /* thread | process (pager/pagerproc.h) */
	char link[64];               /* BANDWIDTH[,RTT] (wire/link.h) */
	uint64_t reconnect_timeout_ns;
	char auth_key_file[4096];
	char source[128];            /* pcbench dest: ADDRESS:PORT */
	char listen[128];            /* pcbench source: ADDRESS:PORT */
	unsigned sessions;           /* pcbench source */
	uint64_t precopy_ns;         /* pre-copy phase before switch-over (0 = pure post-copy) */
	enum pcb_precopy_transport precopy_transport;   /* tcp | memory */
	enum pcb_precopy_final precopy_final;           /* drop | resend */
	unsigned verbose;
	int source_image;            /* --source-image: enum pcb_source_image_mode (source/source.h) */
	int source_send;             /* --source-send: enum pcb_source_send (source/source.h) */
	char image[4096];            /* --image: a raw memory image file the source serves */
	bool bytes_image_remote;     /* not an option: pcbench dest found the source serving a bytes image */
	struct pcb_sim_opts {        /* pcbench simulate */
		char trace[4096];    /* the access trace to replay */
		char policy[512];    /* a policy, a comma list or all */
		char think[32];      /* recorded | schedule | DURATION */
		uint64_t mem;        /* 0 = the trace's page count */
		uint64_t fault_ns, jitter_ns, demand_ns, demand_zero_ns, bg_ns, bg_zero_ns;
		unsigned run_pages;  /* 0 = auto */
	} sim;
	struct pcb_floor_opts {      /* pcbench floor */
		uint64_t faults, bulk, link_rtt_ns;
		unsigned rounds, bulk_reps, batch, window;
		char link_rates[512];
		char bulk_variants[256]; /* bulk rows measured: all, or VARIANT[:INSTALL],... (floor/bulk.c) */
		bool no_bulk, no_demand, no_link;
		char kvm_vcpus[64];      /* KVM demand paging (floor/kvm.c) */
		uint64_t kvm_mem;
		unsigned kvm_reps;
		bool no_kvm;
	} floor;
	struct pcb_image_opts {      /* pcbench image stats | dump */
		uint64_t sample, max, pid;
		char out[4096];
		bool no_stop;
	} image_cmd;
	struct pcb_bench_opts {      /* pcbench bench and analyze */
		char out[4096], results[4096], shard[32];
		bool fresh, dry_run;
	} bench;
	char *args[256];             /* positional arguments (bench JOBFILE, analyze DIR...), into argv */
	unsigned nargs;
};

enum pcb_opt_type { PCB_OPT_SIZE, PCB_OPT_UINT, PCB_OPT_U64, PCB_OPT_DOUBLE, PCB_OPT_STR,
		    PCB_OPT_DURATION, PCB_OPT_POLICY, PCB_OPT_WORKLOAD, PCB_OPT_CHOICE, PCB_OPT_PIN, PCB_OPT_INSTALL,
		    PCB_OPT_FLAG,         /* --name alone sets a bool; takes no value */
		    PCB_OPT_COUNT,        /* --name alone adds one to an unsigned (-v -v); takes no value */
		    PCB_OPT_UINT_AUTO };  /* an integer, or "auto" = 0 */

struct pcb_choice {
	const char *name;
	int value;
};

struct pcb_option {
	const char *name;
	enum pcb_opt_type type;
	size_t off;                  /* into struct pcb_config */
	size_t size;                 /* for strings */
	const char *def;             /* default, as it would be typed */
	double min, max;             /* numeric bounds (inclusive) */
	const char *help;
	const struct pcb_choice *choices;   /* PCB_OPT_CHOICE: name -> enum value, NULL-terminated */
	unsigned scope;              /* enum pcb_cmd bits: the commands that accept it */
	const char *category;        /* the --help and man page section it is listed under */
	char short_name;             /* a one-letter alias (-v), or 0 */
};

/* One table for every command: the same name may appear twice with disjoint scopes. */
extern const struct pcb_option pcb_options[];

struct pcb_command {
	const char *name;            /* "run", "simulate", ... */
	enum pcb_cmd cmd;
	const char *usage;           /* argument synopsis after "pcbench NAME" */
	const char *summary;         /* one line */
	const char *description;     /* paragraphs for --help and the man page */
	unsigned max_args;           /* positional arguments it takes */
	const char *exit_codes;
};
extern const struct pcb_command pcb_commands[];
const struct pcb_command *pcb_command_find(enum pcb_cmd cmd);

/* The name of a choice option's value ("auto" for PCB_AUTO of --trace). */
const char *pcb_choice_name(const char *option, int value);

/* Every default of cmd's options (the whole config is zeroed first). */
void pcb_cmd_defaults(enum pcb_cmd cmd, struct pcb_config *cfg);
/* Parse argv[first..argc) for cmd.  Returns 0; 1 if --help/--version was handled
 * (printed); or PCB_EXIT_USAGE after printing one line naming the option and value. */
int pcb_cmd_parse(enum pcb_cmd cmd, struct pcb_config *cfg, int argc, char **argv, int first);
/* A heap config (the struct is large) with cmd's defaults and argv parsed: *rc as pcb_cmd_parse.
 * NULL only when out of memory (*rc = PCB_EXIT_OSERR, message printed).  free() it. */
struct pcb_config *pcb_cmd_config(enum pcb_cmd cmd, int argc, char **argv, int first, int *rc);
int pcb_cmd_set(enum pcb_cmd cmd, struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen);
void pcb_cmd_help(enum pcb_cmd cmd, FILE *fp);
/* The man page pcbench(1), generated from the table (docs/pcbench.1). */
void pcb_man_page(FILE *fp);
/* The options of cmd in its JSON result: every option in scope, durations as NAME_ns. */
void pcb_cmd_json(enum pcb_cmd cmd, const struct pcb_config *cfg, struct pcb_json *j, const char *key);

/* The run command's (also job files' and source/dest's): */
/* Fill cfg with every default. */
void pcb_config_defaults(struct pcb_config *cfg);
int pcb_config_parse(struct pcb_config *cfg, int argc, char **argv, int first);
/* Set one option by name ("mem", "256M"). 0 or -1 with a one-line reason in why. */
int pcb_config_set(struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen);
void pcb_config_help(FILE *fp);

/* Fill in defaults that depend on other options (e.g. --install-batch 0 = the install path's own). */
void pcb_config_resolve(struct pcb_config *cfg);
void pcb_config_json(const struct pcb_config *cfg, struct pcb_json *j, const char *key);
#endif
