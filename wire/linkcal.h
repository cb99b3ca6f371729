/* End-to-end calibration and measurement of the emulated link, run by the
 * destination over its real connections before switch-over.
 *
 * RTT: header-only PING/PONG round trips, each timed the way the demand
 * thread times a page request (send, poll, read).  First with no injected
 * delay (the host's own round trip, "base"), then the source is told to delay
 * replies by d = RTT - base and the median is measured again; d is corrected
 * by the remaining error (up to 6 rounds, until within 1%).  The achieved
 * figure is a fresh set of round trips measured after calibration.
 *
 * Bandwidth: a pipelined train of large PONGs on the background connection;
 * achieved = frame bytes after the first PONG / time from the first to the
 * last PONG fully received.  The source's token bucket sets the rate; the
 * measurement only reports it (and the bucket rate is corrected once by the
 * measured ratio if it is off by more than 1%). */
#ifndef PCB_LINKCAL_H
#define PCB_LINKCAL_H
#include "pager/pager.h"
#include "wire/proto.h"

/* Send LINK {bps, delay} on c. 0 or -1 (errno). */
int pcb_link_send(struct pcb_conn *c, uint64_t bps, uint64_t delay_ns);

/* Calibrate: dc demand connection, bc background connection.  Fills res.
 * Returns 0, or an exit code with the reason in why. */
int pcb_link_calibrate(struct pcb_conn *dc, struct pcb_conn *bc, uint64_t bps, uint64_t rtt_ns,
		       int timeout_ms, struct pcb_link_result *res, char *why, size_t whylen);
#endif
