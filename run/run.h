/* One post-copy migration, end to end: fork the source, create the pager
 * and the guest, switch over, wait, verify, report. */
#ifndef PCB_RUN_H
#define PCB_RUN_H
#include "cli/options.h"
#include <stdbool.h>

/* Returns the process exit code.  *stranded is set when vCPU threads are
 * left blocked in faults that can never be served (the pager or the source
 * failed mid-run, or the run stopped between starting the guest and the
 * switch-over): nothing was torn down, and the caller must end the process
 * without joining or freeing anything (pcb_cli_migrate in cli/). */
int pcb_run_migration(const struct pcb_config *cfg, bool *stranded);
#endif
