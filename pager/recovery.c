/* Connections and recovery: connect a channel, and re-establish a lost one. */
#include "pager/internal.h"

/* ---- set-up ----------------------------------------------------------------- */

/* ---- connections and recovery -------------------------------------------------
 * Each pager thread owns one channel: the demand thread the demand connection
 * (and the main thread during verification, after the threads stopped), the
 * background thread the background connection.  When a channel is lost
 * (closed, reset, or silent for --io-timeout while data is awaited) its owner
 * pauses, reconnects for up to --reconnect-timeout and asks again for what was
 * in flight: demand requests still in infl[], background batches not ended.
 * Nothing is installed twice (the present bitmap, and UFFDIO_COPY refuses an
 * existing page with -EEXIST) and nothing is skipped (every in-flight page is
 * requested again unless it arrived meanwhile).  The guest meanwhile blocks
 * in its faults: it never sees a page that did not come from the source. */

int chan_connect(struct pcb_pager *p, unsigned ch, uint32_t flags, int timeout_ms, char *why, size_t whylen)
{
	unsigned hello_ch = p->shared && ch == PCB_CHAN_BACKGROUND ? PCB_CHAN_SHARED : ch;
	return chan_connect_on(p, &p->chan[ch], hello_ch, flags, timeout_ms, why, whylen);
}

/* chan_connect for connection c (a channel's, or a demand lane's), HELLO naming hello_ch */
int chan_connect_on(struct pcb_pager *p, struct pcb_conn *c, unsigned hello_ch, uint32_t flags, int timeout_ms, char *why,
		    size_t whylen)
{
	const struct pcb_pager_cfg *cfg = &p->cfg;
	struct pcb_config_wire cw;
	uint64_t retries = 0;
	int io_ms = (int)(cfg->io_timeout_ns / PCB_NSEC_PER_MSEC);
	/* connect within timeout_ms, hand-shake within --io-timeout (refused as busy: tried again) */
	int rc = pcb_hs_connect(c, cfg->host, cfg->port, cfg->npages, hello_ch, flags, cfg->key, timeout_ms,
				(timeout_ms > io_ms ? timeout_ms : io_ms), &cw, &retries, why, whylen);
	if (retries) {
		pthread_mutex_lock(&p->rec_lock);
		p->st.rec.handshake_retries += retries;
		pthread_mutex_unlock(&p->rec_lock);
	}
	if (rc)
		return rc;
	/* The handshake leaves the socket without a receive deadline.  Bound every
	 * blocking receive and send from now on (verification, a full send buffer)
	 * by --io-timeout: a stalled source must not hang us.  The threads poll()
	 * before reading, so they are unaffected. */
	struct timeval tv = io_timeval(cfg->io_timeout_ns);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!(cw.reserved & PCB_CFG_BYTES_IMAGE) != !cfg->bytes_image) {
		snprintf(why, whylen, "the source serves %s image, this destination expects %s one",
			 cfg->bytes_image ? "the generated" : "a bytes (file or application)", cfg->bytes_image ? "a bytes" : "the generated");
		return PCB_EXIT_USAGE;
	}
	bool model_differs = !cfg->bytes_image && pcb_cfg_zero_run_max(cw.reserved) != cfg->zero_run_max;
	if (cw.npages != cfg->npages || cw.seed != cfg->seed || cw.zero_threshold != cfg->zero_threshold || model_differs) {
		snprintf(why, whylen, "the source's image does not match: source has %llu pages of %u bytes, seed %llu%s%s; "
			 "this destination expects %llu pages, seed %llu",
			 (unsigned long long)cw.npages, cw.page_size, (unsigned long long)cw.seed,
			 cw.zero_threshold != cfg->zero_threshold ? ", another --zero-pages fraction" : "",
			 model_differs ? ", another --zero-model/--zero-run-max" : "",
			 (unsigned long long)cfg->npages, (unsigned long long)cfg->seed);
		return PCB_EXIT_USAGE;
	}
	if ((cfg->link_bps || cfg->link_rtt_ns) && pcb_link_send(c, cfg->link_bps, p->link_delay_ns) < 0) {
		snprintf(why, whylen, "connection to the source lost while setting up the link: %s", strerror(errno));
		return PCB_EXIT_SOURCE_LOST;
	}
	return 0;
}

static bool stop_requested(struct pcb_pager *p)
{
	if (atomic_load(&p->fatal))
		return true;
	if (p->verifying)
		return false;
	if (atomic_load(&p->stopping))
		return true;
	struct pollfd pf = { .fd = p->stop_pipe[0], .events = POLLIN };
	return poll(&pf, 1, 0) > 0;
}

/* The owner of channel ch lost it.  Returns 0 once reconnected, -1 when
 * recovery is off, timed out, or refused (fatal set). */
int chan_recover(struct pcb_pager *p, unsigned ch, const char *reason)
{
	bool refused = p->refused[ch];
	p->refused[ch] = false;
	return chan_recover_on(p, &p->chan[ch], ch, refused, reason);
}

/* chan_recover for connection c, counted as channel ch's (a demand lane's: the demand channel's);
 * refused: c was replaced because a frame failed authentication */
int chan_recover_on(struct pcb_pager *p, struct pcb_conn *c, unsigned ch, bool refused, const char *reason)
{
	static const char *const names[2] = { "demand", "background" };
	uint64_t t0 = pcb_now_ns(), limit = p->cfg.reconnect_timeout_ns;
	unsigned hello_ch = p->shared && ch == PCB_CHAN_BACKGROUND ? PCB_CHAN_SHARED : ch;
	pthread_mutex_lock(&p->rec_lock);
	p->st.rec.losses[ch]++;
	uint64_t nref = p->st.rec.frames_refused += refused;
	snprintf(p->st.rec.last_loss, sizeof(p->st.rec.last_loss), "%s", reason);
	pthread_mutex_unlock(&p->rec_lock);
	if (pcb_ps_complete(&p->ps) && !p->verifying) {
		/* every page is in: the migration is done and the guest runs on without
		 * the source; only verification needs it (it will say if it cannot) */
		if (!atomic_exchange(&p->source_gone, true))
			pcb_warn("connection to the source lost (%s) after every page had arrived: the migration is complete; "
				 "the pages cannot be verified unless the source comes back", reason);
		return -1;
	}
	if (refused && nref > MAX_REFUSED) {
		set_fatal(p, PCB_EXIT_PROTOCOL, "%llu frames from the source failed authentication (the last: %s): "
			  "something between us alters the stream; giving up", (unsigned long long)nref, reason);
		return -1;
	}
	/* a refused frame is not a lost source: replace the connection (its
	 * sequence numbers are spent) within --io-timeout even without --reconnect-timeout */
	if (refused && limit < p->cfg.io_timeout_ns)
		limit = p->cfg.io_timeout_ns;
	if (!limit) {
		set_fatal(p, PCB_EXIT_SOURCE_LOST, "connection to the source lost: %s", reason);
		return -1;
	}
	if (stop_requested(p))
		return -1;
	const char *name = p->shared ? "shared" : names[ch];
	pcb_warn("%s (%s); %s channel paused, reconnecting for up to %.1f s",
		 refused ? "frame refused" : "connection to the source lost", reason, name, pcb_ns_to_s(limit));
	char why[256] = "";
	for (unsigned attempt = 0;; attempt++) {
		uint64_t now = pcb_now_ns();
		if (now - t0 >= limit)
			break;
		uint64_t left_ms = (limit - (now - t0)) / PCB_NSEC_PER_MSEC + 1;
		int rc = chan_connect_on(p, c, hello_ch, PCB_HELLO_RESUME, left_ms < 1000 ? (int)left_ms : 1000, why, sizeof(why));
		if (!rc) {
			uint64_t pause = pcb_now_ns() - t0;
			pthread_mutex_lock(&p->rec_lock);
			p->st.rec.reconnects[ch]++;
			p->st.rec.pause_ns[ch] += pause;
			if (pause > p->st.rec.pause_max_ns[ch])
				p->st.rec.pause_max_ns[ch] = pause;
			pthread_mutex_unlock(&p->rec_lock);
			pcb_warn("%s channel reconnected after %.3f s (attempt %u)", name, pcb_ns_to_s(pause), attempt + 1);
			return 0;
		}
		if (rc != PCB_EXIT_SOURCE_LOST) {
			/* the source answered but refused us, or serves another image: retrying cannot help */
			set_fatal(p, rc, "reconnecting to the source failed: %s", why);
			return -1;
		}
		/* wait a little before the next attempt, but not past a stop */
		for (int i = 0; i < 10; i++) {
			if (stop_requested(p))
				return -1;
			usleep(10000);
		}
	}
	set_fatal(p, PCB_EXIT_SOURCE_LOST, "connection to the source lost (%s) and not regained within --reconnect-timeout %.1f s (last attempt: %s)",
		  reason, pcb_ns_to_s(limit), why);
	return -1;
}

/* Demand thread: reconnect and send every outstanding request again. */
int demand_recover(struct pcb_pager *p)
{
	for (;;) {
		if (chan_recover(p, PCB_CHAN_DEMAND, p->loss_why) < 0)
			return -1;
		if (p->demand_fast) {
			struct timeval tv = { 0, 100000 };
			setsockopt(p->chan[PCB_CHAN_DEMAND].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		unsigned i = 0;
		bool ok = true;
		while (i < p->ninfl) {
			uint64_t page = p->infl[i].page;
			int hs = 0;
			if (pcb_ps_present(&p->ps, page) || (p->cfg.huge && (hs = huge_send(p, page)) == 1)) {
				/* arrived on the background channel meanwhile (its install woke the guest) */
				pcb_uffd_wake(p->uffd, page_addr(p, page), p->cfg.huge ? PCB_HUGE_SIZE : PCB_PAGE_SIZE);
				p->blocked -= p->infl[i].waiters;
				p->infl[i] = p->infl[--p->ninfl];
				infl_sync(p);
				continue;
			}
			p->infl[i].t_req = pcb_now_ns();
			if (p->cfg.huge ? hs < 0 : pcb_conn_send(&p->chan[PCB_CHAN_DEMAND], PCB_MSG_REQ, page, NULL, 0) < 0) {
				snprintf(p->loss_why, sizeof(p->loss_why), "re-sending demand requests failed: %s", strerror(errno));
				ok = false;
				break;
			}
			pthread_mutex_lock(&p->rec_lock);
			p->st.rec.demand_rerequested++;
			pthread_mutex_unlock(&p->rec_lock);
			i++;
		}
		if (ok)
			return 0;
	}
}

int bg_recover(struct pcb_pager *p, const char *reason)
{
	return chan_recover(p, PCB_CHAN_BACKGROUND, reason);
}
