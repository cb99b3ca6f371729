/* pcbench: command-line entry.  Subcommands: run (default), list, bench, analyze, simulate. */
#include "common/util.h"
#include "bench/bench.h"
#include "floor/floor.h"
#include "cli/netcmd.h"
#include "cli/imagecmd.h"
#include "cli/options.h"
#include "run/run.h"
#include "policies/policy.h"
#include "sim/sim.h"
#include "workloads/workload.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

static int cmd_list(void)
{
	printf("policies:\n");
	for (unsigned i = 0; pcb_policies[i]; i++) {
		const struct pcb_policy_ops *o = pcb_policies[i];
		printf("  %-12s [at the %s] %s%s", o->name, pcb_policy_end_name(o->end), o->help, o->knobs && o->knobs[0].key ? " [--policy-opt" : "");
		for (const struct pcb_knob *k = o->knobs; k && k->key; k++)
			printf("%s%s=%s", k == o->knobs ? " " : ",", k->key, k->def[0] ? k->def : "...");
		printf("%s\n", o->knobs && o->knobs[0].key ? "]" : "");
	}
	printf("workloads:\n");
	for (unsigned i = 0; pcb_workloads[i]; i++) {
		const struct pcb_workload_ops *w = pcb_workloads[i];
		printf("  %-12s %s%s", w->name, w->help, w->knobs && w->knobs[0].key ? " [--workload-opt" : "");
		for (const struct pcb_knob *k = w->knobs; k && k->key; k++)
			printf("%s%s=%s", k == w->knobs ? " " : ",", k->key, k->def[0] ? k->def : "...");
		printf("%s%s\n", w->knobs && w->knobs[0].key ? "]" : "", w->guest_ts_size ? " (also --guest=kvm)" : "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	int first = 1;
	/* a peer that goes away must be an error return (EPIPE), not a silent death */
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && !strcmp(argv[1], "--man")) {   /* docs/pcbench.1 (make man) */
		pcb_man_page(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "list"))
		return cmd_list();
	if (argc > 1 && !strcmp(argv[1], "floor"))
		return pcb_floor_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "bench"))
		return pcb_cmd_bench(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "analyze"))
		return pcb_cmd_analyze(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "simulate"))
		return pcb_cmd_simulate(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "image"))
		return pcb_cmd_image(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "source"))
		return pcb_cmd_source(argc, argv, 2);
	if (argc > 1 && !strcmp(argv[1], "dest"))
		return pcb_cmd_dest(argc, argv, 2);
	if (argc > 1 && !strcmp(argv[1], "run"))
		first = 2;
	else if (argc > 1 && argv[1][0] != '-') {
		pcb_err("unknown command '%s' (commands: run, source, dest, image, list, floor, bench, analyze, simulate; see --help)", argv[1]);
		return PCB_EXIT_USAGE;
	}
	struct pcb_config cfg;
	pcb_config_defaults(&cfg);
	int r = pcb_config_parse(&cfg, argc, argv, first);
	if (r == 1)
		return 0;
	if (r)
		return r;
	return pcb_cli_migrate(&cfg);
}
