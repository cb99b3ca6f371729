/* What the background thread's files share (background.c, bgrecv.c,
 * segments.c, chunks.c, installer.c); private to pager/, beside internal.h. */
#ifndef PCB_PAGER_BACKGROUND_H
#define PCB_PAGER_BACKGROUND_H
#include "pager/internal.h"

/* bgrecv.c: the next whole frame from the background connection (0; -1 stop
 * or fatal; -2 lost), and a RUN payload read into the destinations iov names */
int bg_next(struct pcb_pager *p, struct pcb_hdr *h, const uint8_t **pl);
int bg_take_run(struct pcb_pager *p, const struct pcb_hdr *h, struct iovec *iov, int niov);

/* segments.c (copy, continue): a RUN or one page into the gathering job; push it */
bool seg_mode(const struct pcb_pager *p);
void seg_push(struct pcb_pager *p);
int bg_seg_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain);
int bg_seg_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain);

/* chunks.c (move): a RUN or one page into the 2 MiB chunk being assembled; push it
 * (chunk_mode is in internal.h) */
void chunk_push(struct pcb_pager *p);
int bg_chunk_run(struct pcb_pager *p, const struct pcb_hdr *h, bool drain);
int bg_chunk_page(struct pcb_pager *p, uint64_t pg, const uint8_t *data, bool drain);

/* installer.c: queue a run of zero pages; release a cut-short job's claims
 * (continue); inst_thread is in internal.h */
int bg_flush_zero(struct pcb_pager *p, uint64_t *zfirst, unsigned *zn, bool drain);
void bg_release_claims(struct pcb_pager *p, const struct pcb_install_job *j);
void bg_hand_off(struct pcb_pager *p, const struct pcb_install_job *j);
#endif
