/* One options table drives parsing, --help and the JSON echo of the
 * resolved configuration (fio's model). */
#ifndef PCB_OPTIONS_H
#define PCB_OPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

struct pcb_config {
	uint64_t mem;                /* bytes */
	char policy[256];            /* a registered name or ./path/to/policy.so */
	char policy_end[16];         /* auto | source | destination (resolved before the run) */
	char workload[32];
	unsigned vcpus;
	uint64_t seed;
	double zero_pages;
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
	char inflight[8];            /* --inflight: wait | resend */
	uint64_t socket_buffer;      /* --socket-buffer: SO_SNDBUF/SO_RCVBUF asked for (0 = kernel autotuning) */           /* --channels: 2 = demand on its own connection, 1 = one shared connection */
	uint64_t source_delay_ns;
	char trace[8];               /* auto | on | off */
	char trace_events[4096];
	char trace_usdt[8];          /* on | off */
	char trace_messages[8];      /* auto | on | off */
	char policy_opt[512];        /* key=value[,key=value] for the policy */
	char workload_opt[512];      /* key=value[,key=value] for the workload */
	char record[4096];           /* write the guest's access sequence here */
	char replay[224];            /* --policy=replay: the access trace to replay (its `file` knob) */
	unsigned bucket_ms;          /* progress bucket */
	char progress_csv[4096];
	char baseline[4096];         /* none | run | FILE (progress CSV of a --policy=local run) */
	char install[16];            /* copy|move|continue (install/install.h) */
	char page_size[4];           /* 4K | 2M (run/hugepages.h) */
	unsigned install_batch;
	char pin[128];               /* thread placement (common/pin.h) */
	char guest[8];               /* process | kvm */
	char pager[8];               /* thread | process (pager/pagerproc.h) */
	char link[64];               /* BANDWIDTH[,RTT] (wire/link.h) */
	uint64_t reconnect_timeout_ns;
	char auth_key_file[4096];
	char source[128];            /* pcbench dest: ADDRESS:PORT */
	char listen[128];            /* pcbench source: ADDRESS:PORT */
	unsigned sessions;           /* pcbench source */
	uint64_t precopy_ns;         /* pre-copy phase before switch-over (0 = pure post-copy) */
	char precopy_transport[8];   /* tcp | memory */
	char precopy_final[8];       /* drop | resend */
	unsigned verbose;
	char image[4096];            /* --image: a raw memory image file the source serves */
	bool bytes_image_remote;     /* not an option: pcbench dest found the source serving a bytes image */
};

enum pcb_opt_type { PCB_OPT_SIZE, PCB_OPT_UINT, PCB_OPT_U64, PCB_OPT_DOUBLE, PCB_OPT_STR,
		    PCB_OPT_DURATION, PCB_OPT_POLICY, PCB_OPT_WORKLOAD, PCB_OPT_CHOICE, PCB_OPT_PIN };

struct pcb_option {
	const char *name;
	enum pcb_opt_type type;
	size_t off;                  /* into struct pcb_config */
	size_t size;                 /* for strings */
	const char *def;             /* default, as it would be typed */
	double min, max;             /* numeric bounds (inclusive) */
	const char *help;
	const char *choices;         /* PCB_OPT_CHOICE: "a|b|c" */
};

extern const struct pcb_option pcb_options[];

/* Fill cfg with every default. */
void pcb_config_defaults(struct pcb_config *cfg);
/* Parse argv[first..argc).  Returns 0; 1 if --help/--version was handled
 * (printed); or PCB_EXIT_USAGE after printing one line naming the option and value. */
int pcb_config_parse(struct pcb_config *cfg, int argc, char **argv, int first);
/* Set one option by name ("mem", "256M"). 0 or -1 with a one-line reason in why. */
int pcb_config_set(struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen);
void pcb_config_help(FILE *fp);

struct pcb_json;
/* Fill in defaults that depend on other options (e.g. --install-batch 0 = the install path's own). */
void pcb_config_resolve(struct pcb_config *cfg);
void pcb_config_json(const struct pcb_config *cfg, struct pcb_json *j, const char *key);
#endif
