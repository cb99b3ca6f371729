/* --page-size=2M: which runs can use huge pages, and whether the system has
 * the 2 MiB hugetlb pages a run needs (pcbench never reserves them itself). */
#ifndef PCB_HUGEPAGES_H
#define PCB_HUGEPAGES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcb_config;

#define PCB_HUGE_SYSDIR "/sys/kernel/mm/hugepages/hugepages-2048kB"

/* --page-size: 4096 or 2097152 bytes. */
uint64_t pcb_page_size_bytes(const struct pcb_config *cfg);
/* The options --page-size=2M cannot be combined with.  0, or PCB_EXIT_USAGE
 * with a one-line reason naming the option and value. */
int pcb_huge_validate(const struct pcb_config *cfg, char *why, size_t whylen);
/* need 2 MiB pages available (free minus reserved) in sysdir (PCB_HUGE_SYSDIR;
 * another directory in tests)?  0, or PCB_EXIT_UNAVAILABLE with how many are
 * missing and the command that reserves them. */
int pcb_huge_check_pool(const char *sysdir, uint64_t need, char *why, size_t whylen);
#endif
