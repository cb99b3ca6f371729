#include "wire/linkcal.h"
#include "wire/handshake.h"
#include "common/util.h"
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pcb_link_send(struct pcb_conn *c, uint64_t bps, uint64_t delay_ns)
{
	uint8_t b[sizeof(struct pcb_link_wire)];
	struct pcb_link_wire w = { bps, delay_ns };
	pcb_link_encode(&w, b);
	return pcb_conn_send(c, PCB_MSG_LINK, 0, b, sizeof(b));
}

/* Wait for the next frame, the way the demand thread does (poll, then read). */
static int recv_frame(struct pcb_conn *c, int timeout_ms, struct pcb_hdr *h, const uint8_t **pl,
		      char *why, size_t whylen)
{
	for (;;) {
		int r = pcb_conn_parse(c, h, pl);
		if (r == PCB_RX_FRAME) {
			if (h->type == PCB_MSG_PONG)
				return 0;
			snprintf(why, whylen, "the source answered PING with %s", pcb_msg_name(h->type));
			return PCB_EXIT_PROTOCOL;
		}
		if (r == PCB_RX_BAD) {
			snprintf(why, whylen, "bad frame from the source while measuring the link: %s", c->err);
			return PCB_EXIT_PROTOCOL;
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int n = poll(&pfd, 1, timeout_ms);
		if (n == 0) {
			snprintf(why, whylen, "the source did not answer a PING within %d ms", timeout_ms);
			return PCB_EXIT_SOURCE_LOST;
		}
		if (n < 0 && errno == EINTR)
			continue;
		r = n < 0 ? PCB_RX_ERR : pcb_conn_fill(c);
		if (r == PCB_RX_EOF || r == PCB_RX_ERR) {
			snprintf(why, whylen, "connection to the source lost while measuring the link: %s",
				 r == PCB_RX_EOF ? "closed" : strerror(errno));
			return PCB_EXIT_SOURCE_LOST;
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* n header-only round trips; sorted samples into s. */
static int ping_rtts(struct pcb_conn *c, unsigned n, int timeout_ms, uint64_t *s, char *why, size_t whylen)
{
	struct pcb_hdr h;
	const uint8_t *pl;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = pcb_now_ns();
		if (pcb_conn_send(c, PCB_MSG_PING, 0, NULL, 0) < 0) {
			snprintf(why, whylen, "connection to the source lost while measuring the link: %s", strerror(errno));
			return PCB_EXIT_SOURCE_LOST;
		}
		int rc = recv_frame(c, timeout_ms, &h, &pl, why, whylen);
		if (rc)
			return rc;
		s[i] = pcb_now_ns() - t0;
	}
	qsort(s, n, sizeof(*s), cmp_u64);
	return 0;
}

static int bulk(struct pcb_conn *c, uint64_t bps, int timeout_ms, struct pcb_link_result *res, char *why, size_t whylen)
{
	/* ~150 ms of traffic in frames of ~5 ms each (4 KiB .. 256 KiB), 16..128 frames */
	double fs = (double)bps / 8 * 0.005;
	uint32_t fsize = fs < 4096 ? 4096 : fs > PCB_MAX_PONG ? PCB_MAX_PONG : (uint32_t)fs;
	double k = (double)bps / 8 * 0.150 / fsize;
	unsigned nf = k < 16 ? 16 : k > 128 ? 128 : (unsigned)k;
	struct pcb_hdr h;
	const uint8_t *pl;
	double t[128], b[128], bytes = 0;
	for (unsigned i = 0; i < nf; i++)
		if (pcb_conn_send(c, PCB_MSG_PING, fsize, NULL, 0) < 0) {
			snprintf(why, whylen, "connection to the source lost while measuring the link: %s", strerror(errno));
			return PCB_EXIT_SOURCE_LOST;
		}
	for (unsigned i = 0; i < nf; i++) {
		int rc = recv_frame(c, timeout_ms, &h, &pl, why, whylen);
		if (rc)
			return rc;
		bytes += PCB_HDR_SIZE + h.len;
		t[i] = (double)pcb_now_ns();
		b[i] = bytes;
	}
	/* the first eighth warms up (first touch of buffers, TCP window, thread wake-ups): the rate is
	 * the bytes received after it over the time they took.  A frame that was read late (the
	 * receiver or the source's pacing not scheduled for a while, then a burst to catch up)
	 * makes an interval starting at it look faster than the link: of the intervals starting
	 * at frames s0 .. nf/2 and ending at the last frame, the slowest is the rate (a paced
	 * link never delivers faster than configured over an interval that starts on time) */
	unsigned s0 = nf / 8;
	res->bulk_ns = (uint64_t)(t[nf - 1] - t[s0]);
	res->bulk_bytes = (uint64_t)(b[nf - 1] - b[s0]);
	res->bulk_bps = res->bulk_ns ? (double)res->bulk_bytes * 8e9 / (double)res->bulk_ns : 0;
	for (unsigned j = s0 + 1; j <= nf / 2 && j < nf - 1; j++) {
		double ns = t[nf - 1] - t[j], by = b[nf - 1] - b[j];
		if (ns > 0 && by * 8e9 / ns < res->bulk_bps) {
			res->bulk_ns = (uint64_t)ns;
			res->bulk_bytes = (uint64_t)by;
			res->bulk_bps = by * 8e9 / ns;
		}
	}
	return 0;
}

int pcb_link_calibrate(struct pcb_conn *dc, struct pcb_conn *bc, uint64_t bps, uint64_t rtt_ns,
		       int timeout_ms, struct pcb_link_result *res, char *why, size_t whylen)
{
	uint64_t s[256];
	int rc;
	memset(res, 0, sizeof(*res));
	res->emulated = true;
	res->bps = bps;
	res->rtt_ns = rtt_ns;
	if (timeout_ms < (int)(rtt_ns / PCB_NSEC_PER_MSEC) * 4 + 1000)
		timeout_ms = (int)(rtt_ns / PCB_NSEC_PER_MSEC) * 4 + 1000;
	/* ~50 ms of round trips per measurement, 21..201 samples (odd: a true median) */
	uint64_t want = 50 * PCB_NSEC_PER_MSEC / (rtt_ns > 50 * PCB_NSEC_PER_USEC ? rtt_ns : 50 * PCB_NSEC_PER_USEC);
	unsigned n = want < 21 ? 21 : want > 201 ? 201 : (unsigned)want | 1;

	/* the host's own round trip, no injected delay */
	if (pcb_link_send(dc, bps, 0) < 0 || pcb_link_send(bc, bps, 0) < 0)
		goto lost;
	if ((rc = ping_rtts(dc, 21, timeout_ms, s, why, whylen)))   /* warm-up */
		return rc;
	if ((rc = ping_rtts(dc, n, timeout_ms, s, why, whylen)))
		return rc;
	res->base_rtt_ns = s[n / 2];
	uint64_t delay = rtt_ns > res->base_rtt_ns ? rtt_ns - res->base_rtt_ns : 0;
	/* measure with the current delay; accept within 1.5 %, else correct by 70 % of the error
	 * (the round trip is not linear in the delay: wake-ups get slower as threads sleep longer) */
	for (res->rounds = 1;; res->rounds++) {
		if (pcb_link_send(dc, bps, delay) < 0)
			goto lost;
		if ((rc = ping_rtts(dc, n, timeout_ms, s, why, whylen)))
			return rc;
		int64_t err = (int64_t)rtt_ns - (int64_t)s[n / 2];
		pcb_log("link calibration round %u: delay %.1f µs -> RTT median %.1f µs (target %.1f µs)", res->rounds,
			(double)delay / 1e3, (double)s[n / 2] / 1e3, (double)rtt_ns / 1e3);
		if (!rtt_ns || llabs(err) * 1000 <= (int64_t)rtt_ns * 15 || res->rounds == 10)
			break;
		int64_t nd = (int64_t)delay + err * 7 / 10;
		if (nd <= 0 && delay == 0)
			break;   /* the host's own round trip already exceeds the target */
		delay = nd > 0 ? (uint64_t)nd : 0;
	}
	res->delay_ns = delay;
	if (rtt_ns && res->base_rtt_ns > rtt_ns)
		pcb_warn("this host's own request round trip (%.1f µs) exceeds the --link RTT (%.1f µs): the achieved RTT will be higher",
			 (double)res->base_rtt_ns / 1e3, (double)rtt_ns / 1e3);
	res->cpu = sched_getcpu();
	/* the achieved round trip: the last measurement, taken with the final setting */
	res->rtt_samples = n;
	res->rtt_median_ns = s[n / 2];
	res->rtt_p10_ns = s[n / 10];
	res->rtt_p90_ns = s[(n * 9) / 10];
	if (bps && (rc = bulk(bc, bps, timeout_ms, res, why, whylen)))
		return rc;
	res->bg_setup_rx_bytes = bc->bytes_rx;
	pcb_log("link calibrated: RTT median %.1f µs, bandwidth %.1f Mbit/s", (double)res->rtt_median_ns / 1e3,
		res->bulk_bps / 1e6);
	if (bps && res->bulk_bps < 0.95 * (double)bps)
		pcb_warn("achieved link bandwidth %.1f Mbit/s is %.1f%% below the --link %.1f Mbit/s: this host did not keep up "
			 "(other load? see results.link)", res->bulk_bps / 1e6, 100 * (1 - res->bulk_bps / (double)bps),
			 (double)bps / 1e6);
	if (rtt_ns && (res->rtt_median_ns > rtt_ns * 105 / 100 || res->rtt_median_ns < rtt_ns * 95 / 100))
		pcb_warn("achieved link RTT %.1f µs is more than 5%% off the --link %.1f µs", (double)res->rtt_median_ns / 1e3,
			 (double)rtt_ns / 1e3);
	return 0;
lost:
	snprintf(why, whylen, "connection to the source lost while setting up the link: %s", strerror(errno));
	return PCB_EXIT_SOURCE_LOST;
}
