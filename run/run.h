/* One post-copy migration, end to end: fork the source, create the pager
 * and the guest, switch over, wait, verify, report. */
#ifndef PCB_RUN_H
#define PCB_RUN_H
#include "cli/options.h"

/* Returns the process exit code. */
int pcb_run_migration(const struct pcb_config *cfg);
#endif
