/* The install-path registry: add a path by writing install/NAME.c that
 * defines `const struct pcb_install_ops pcb_install_NAME` and listing it here. */
#include "install/internal.h"
#include <stdio.h>
#include <string.h>

#define PCB_INSTALL_LIST(X) \
	X(copy)             \
	X(move)             \
	X(continue)         \
	X(huge)

#define ENTRY(n) &pcb_install_##n,
const struct pcb_install_ops *const pcb_install_paths[] = { PCB_INSTALL_LIST(ENTRY) NULL };
#undef ENTRY

const struct pcb_install_ops *pcb_install_find(const char *name, bool huge)
{
	if (huge)
		return strcmp(name, "copy") ? NULL : &pcb_install_huge;   /* hugetlb regions: copy only */
	for (unsigned i = 0; pcb_install_paths[i]; i++)
		if (pcb_install_paths[i] != &pcb_install_huge && !strcmp(pcb_install_paths[i]->name, name))
			return pcb_install_paths[i];
	return NULL;
}

int pcb_install_check_ops(const struct pcb_install_ops *ops, char *why, size_t whylen)
{
	if (!ops) {
		snprintf(why, whylen, "no such install path");
		return -1;
	}
	if (!ops->name || !ops->help || !ops->register_name) {
		snprintf(why, whylen, "install path without a name, help line or register-mode name");
		return -1;
	}
	if (!ops->map || !ops->one || !ops->job) {
		snprintf(why, whylen, "install path %s lacks a map, one or job hook", ops->name);
		return -1;
	}
	if (!ops->default_batch || ops->default_batch > PCB_INSTALL_MAX_BATCH) {
		snprintf(why, whylen, "install path %s has default batch %u (1..%u)", ops->name, ops->default_batch,
			 PCB_INSTALL_MAX_BATCH);
		return -1;
	}
	if (!(ops->register_mode & UFFDIO_REGISTER_MODE_MISSING)) {
		snprintf(why, whylen, "install path %s does not register MISSING faults", ops->name);
		return -1;
	}
	return 0;
}
