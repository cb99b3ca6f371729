/* The source page server: holds the guest's memory image and serves it.
 * Demand requests (channel 0) are answered one page at a time at once;
 * background batches (channel 1) are streamed.  Runs in its own process. */
#ifndef PCB_SOURCE_H
#define PCB_SOURCE_H
#include <stdint.h>

struct pcb_source_cfg {
	uint64_t mem_bytes;
	uint64_t seed;
	double zero_fraction;
	uint64_t demand_delay_ns;   /* injected before each demand reply (emulated latency) */
	int sessions;               /* exit after this many migration sessions (0 = serve forever) */
	int verbose;
};

/* Serve on an already listening socket.  Returns an exit code. */
int pcb_source_serve(const struct pcb_source_cfg *cfg, int listen_fd);
#endif
