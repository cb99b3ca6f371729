/* Thread placement: --pin parsing and pinning.  On small machines (2 vCPUs
 * here) where a thread runs decides whether a wake-up costs ~4 µs (same CPU)
 * or 15-60 µs (other CPU), so every latency figure records it. */
#ifndef PCB_PIN_H
#define PCB_PIN_H
#include <stddef.h>

enum pcb_pin_role { PCB_PIN_GUEST, PCB_PIN_DEMAND, PCB_PIN_BACKGROUND, PCB_PIN_SOURCE, PCB_PIN_INSTALL, PCB_PIN_ROLES };

/* CPU per role, -1 = not pinned. */
struct pcb_pin {
	int cpu[PCB_PIN_ROLES];
};

extern const char *const pcb_pin_role_names[PCB_PIN_ROLES];
/* "none", "same" (every role on CPU 0), "split" (guest and demand on CPU 0; background receive,
 * install and source on CPU 1), or "guest=0,demand=0,background=1,source=1,install=1" (roles
 * omitted stay unpinned; install = the thread issuing background install ioctls).
 * Returns 0, or -1 with a one-line reason naming the bad part. */
int pcb_pin_parse(const char *s, struct pcb_pin *out, char *why, size_t whylen);
/* Pin the calling thread (tid 0) or thread tid to cpu.  0 or -errno. */
int pcb_pin_self(int cpu);
int pcb_pin_tid(int tid, int cpu);
#endif
