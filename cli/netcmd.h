/* Two-host mode (`pcbench source`, `pcbench dest`), link emulation options,
 * authentication and recovery reporting. */
#ifndef PCB_NETCMD_H
#define PCB_NETCMD_H
#include "cli/options.h"
#include "wire/handshake.h"
#include "pager/pager.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pcb_net {
	struct pcb_auth_key key;
	uint64_t link_bps, link_rtt_ns;
	bool remote;                 /* dest mode: the source is not forked */
	char host[64];
	uint16_t port;
};

/* Parse --link, --source, load --auth-key-file.  0 or an exit code (message printed). */
int pcb_net_prepare(const struct pcb_config *cfg, struct pcb_net *net);
/* pcb_run_migration, then the end of the process for a stranded run.  Returns the exit code. */
int pcb_cli_migrate(const struct pcb_config *cfg);
int pcb_cmd_source(int argc, char **argv, int first);
int pcb_cmd_dest(int argc, char **argv, int first);
struct pcb_json;
/* results.link and results.recovery */
void pcb_net_json(struct pcb_json *j, const struct pcb_pager_stats *s);
void pcb_net_human(FILE *fp, const struct pcb_pager_stats *s);
#endif
