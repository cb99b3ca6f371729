/* Shared between bpf/pager.bpf.c and trace/ (maps.c, json.c): the pager's internal
 * breakdown from the pcbench:* USDT probes (pager/probes.h). */
#ifndef PCB_BPF_PAGER_H
#define PCB_BPF_PAGER_H
#include "common/hist.h"

#define PG_NKINDS   6           /* enum pcb_install_kind */
#define PG_NCHAN    2           /* 0 demand, 1 background */
#define PG_MAX_PAGES 65536      /* pages tracked between probes (LRU) */

enum pg_hist_id {
	PG_H_QUEUE = 0,                         /* fault -> demand request sent */
	PG_H_RTT = 1,                           /* + channel: request -> received */
	PG_H_INSTALL = PG_H_RTT + PG_NCHAN,     /* + kind: received -> installed */
	PG_H_FAULT_TO_INSTALLED = PG_H_INSTALL + PG_NKINDS,
	PG_NHIST
};

enum pg_counter {
	PG_C_FAULT = 0, PG_C_REQUEST, PG_C_RECEIVED, PG_C_INSTALLED, PG_C_DECISION, PG_C_GUEST_STOP,
	PG_C_REQ_PAGES = PG_C_GUEST_STOP + 1,   /* + channel: pages requested */
	PG_C_RECV_ZERO = PG_C_REQ_PAGES + PG_NCHAN, /* zero-page announcements received */
	PG_C_INSTALLS = PG_C_RECV_ZERO + 1,     /* + kind: successful installs */
	PG_C_EEXIST = PG_C_INSTALLS + PG_NKINDS, /* + kind: -EEXIST races */
	PG_C_ERRORS = PG_C_EEXIST + PG_NKINDS,  /* other negative results */
	PG_C_DECISION_PAGES,
	PG_C_UNMATCHED,                         /* installed with no received seen */
	PG_NCOUNTERS
};

struct pg_hist {
	pcb_u64 bucket[PCB_HIST_BUCKETS];
};

struct pg_counters {
	pcb_u64 c[PG_NCOUNTERS];
};

struct pg_page {
	pcb_u64 fault_ns;
	pcb_u64 request_ns;
	pcb_u64 received_ns;
	pcb_u32 channel;
	pcb_u32 pad;
};
#endif
