#include "wire/link.h"
#include "common/util.h"
#include "wire/proto.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pcb_link_init(struct pcb_link *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
}

void pcb_link_set(struct pcb_link *l, uint64_t bps, uint64_t delay_ns)
{
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->bps, bps);
	atomic_store(&l->delay_ns, delay_ns);
	l->tat = 0;
	l->utat = 0;
	pthread_mutex_unlock(&l->lock);
}

/* serialisation time of bytes at bps, in ns, rounded up */
static uint64_t ser_ns(size_t bytes, uint64_t bps)
{
	return (uint64_t)(((unsigned __int128)bytes * 8 * PCB_NSEC_PER_SEC + bps - 1) / bps);
}

uint64_t pcb_link_reserve(struct pcb_link *l, size_t bytes, uint64_t ready)
{
	uint64_t bps = atomic_load_explicit(&l->bps, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->bytes, bytes, memory_order_relaxed);
	if (!bps)
		return ready;
	uint64_t ser = ser_ns(bytes, bps);
	pthread_mutex_lock(&l->lock);
	uint64_t start = l->tat > ready ? l->tat : ready;
	l->tat = start + ser;
	uint64_t rel = l->tat;
	pthread_mutex_unlock(&l->lock);
	return rel;
}

uint64_t pcb_link_reserve_urgent(struct pcb_link *l, size_t bytes, uint64_t ready)
{
	uint64_t bps = atomic_load_explicit(&l->bps, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->bytes, bytes, memory_order_relaxed);
	if (!bps)
		return ready;
	uint64_t ser = ser_ns(bytes, bps), mtu = ser_ns(PCB_LINK_MTU, bps);
	pthread_mutex_lock(&l->lock);
	uint64_t start = l->utat > ready ? l->utat : ready;
	if (l->tat > start) {   /* a background packet is on the wire: it finishes first */
		start += l->tat - start < mtu ? l->tat - start : mtu;
		l->tat += ser;
	}
	l->utat = start + ser;
	if (l->tat < l->utat)
		l->tat = l->utat;
	uint64_t rel = l->utat;
	pthread_mutex_unlock(&l->lock);
	return rel;
}

unsigned pcb_link_run_pages(uint64_t bps)
{
	/* bytes the link carries in PCB_LINK_FRAME_NS, in whole pages */
	uint64_t pages = (uint64_t)((unsigned __int128)bps * PCB_LINK_FRAME_NS / 8 / PCB_NSEC_PER_SEC) / 4096;
	if (pages < PCB_LINK_MIN_RUN_PAGES)
		return PCB_LINK_MIN_RUN_PAGES;
	return pages > PCB_MAX_RUN_PAGES ? PCB_MAX_RUN_PAGES : (unsigned)pages;
}

int pcb_link_parse(const char *s, uint64_t *bps, uint64_t *rtt_ns, char *why, size_t whylen)
{
	char bw[64];
	const char *comma = strchr(s, ',');
	size_t n = comma ? (size_t)(comma - s) : strlen(s);
	if (n == 0 || n >= sizeof(bw)) {
		snprintf(why, whylen, "invalid value for --link: '%s' (want BANDWIDTH[,RTT], e.g. 1gbit,500us)", s);
		return -1;
	}
	memcpy(bw, s, n);
	bw[n] = 0;
	*rtt_ns = 0;
	if (!strcasecmp(bw, "unlimited") || !strcmp(bw, "0")) {
		*bps = 0;
	} else {
		char *end;
		double v = strtod(bw, &end);
		double mul = 0;
		if (end == bw || !isfinite(v) || v <= 0)
			mul = 0;
		else if (!strcasecmp(end, "bit") || !strcasecmp(end, "bps"))
			mul = 1;
		else if (!strcasecmp(end, "kbit"))
			mul = 1e3;
		else if (!strcasecmp(end, "mbit"))
			mul = 1e6;
		else if (!strcasecmp(end, "gbit"))
			mul = 1e9;
		if (mul == 0 || v * mul < (double)PCB_LINK_MIN_BPS || v * mul > (double)PCB_LINK_MAX_BPS) {
			snprintf(why, whylen, "invalid value for --link: bandwidth '%s' (want e.g. 100mbit, 10gbit; "
				 "10kbit to 400gbit, or 'unlimited')", bw);
			return -1;
		}
		*bps = (uint64_t)llround(v * mul);
	}
	if (comma) {
		uint64_t d;
		if (pcb_parse_duration(comma + 1, &d) < 0 || d > PCB_LINK_MAX_DELAY_NS) {
			snprintf(why, whylen, "invalid value for --link: RTT '%s' (want a duration up to 10s, e.g. 50us, 5ms)",
				 comma + 1);
			return -1;
		}
		*rtt_ns = d;
	}
	return 0;
}
