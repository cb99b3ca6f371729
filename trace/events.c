/* The per-fault event stream: bpf/faultlat's ring buffer read by a thread of
 * ours into the CSV file of --events.  See trace/internal.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "common/util.h"
#include "trace/internal.h"

static int on_event(void *ctx, void *data, size_t len)
{
	struct pcb_trace *t = ctx;
	const struct fl_event *e = data;

	if (len < sizeof(*e))
		return 0;
	if (t->events_fp && !t->events_err) {
		if (fprintf(t->events_fp, "%u,%u,%u,%s,0x%llx,0x%llx,%llu,%llu,%llu,%llu,%lld,%llu,%s\n",
			    e->tid, e->tgid, e->cpu, (e->flags & FL_E_LOST) ? "lost" : (e->flags & FL_E_KVM) ? "kvm" : "user",
			    (unsigned long long)e->addr, (unsigned long long)(e->addr & ~0xfffull),
			    (unsigned long long)e->fault_ns, (unsigned long long)e->block_ns,
			    (unsigned long long)e->wakeup_ns, (unsigned long long)e->running_ns,
			    (e->flags & FL_E_WOKEN) ? (long long)(e->wakeup_ns - e->fault_ns) : -1LL,
			    (unsigned long long)(e->running_ns - e->fault_ns),
			    !t->msgs ? "" : (e->flags & FL_E_DELIVERED) ? "1" : "0") < 0)
			t->events_err = errno ? errno : EIO;
	}
	__atomic_fetch_add(&t->events_written, 1, __ATOMIC_RELAXED);
	return 0;
}

static void *events_main(void *arg)
{
	struct pcb_trace *t = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!t->ev_stop) {
		ring_buffer__poll(t->rb, 50);
		ring_buffer__consume(t->rb);     /* producers do not wake us for every event */
	}
	ring_buffer__consume(t->rb);
	return NULL;
}

/* Event stream: the CSV file and the ring-buffer thread, when asked for. */
int trace_start_events(struct pcb_trace *t, const struct pcb_trace_opts *o, char *why, size_t whylen)
{
	int err;

	if (o->events) {
		if (o->events_path) {
			t->events_fp = fopen(o->events_path, "we");
			if (!t->events_fp) {
				return trace_fail(why, whylen, PCB_EXIT_OSERR, "cannot open %s: %s", o->events_path,
					    strerror(errno));
			}
			setvbuf(t->events_fp, NULL, _IOFBF, 1 << 20);
			fprintf(t->events_fp, "tid,tgid,cpu,kind,addr,page,fault_ns,block_ns,wakeup_ns,"
					      "running_ns,fault_to_wakeup_ns,fault_to_running_ns,delivered\n");
		}
		t->rb = ring_buffer__new(bpf_map__fd(t->fl->maps.events), on_event, t, NULL);
		if (!t->rb) {
			return trace_fail(why, whylen, PCB_EXIT_UNAVAILABLE, "ring buffer: %s", strerror(errno));
		}
		err = pthread_create(&t->ev_thread, NULL, events_main, t);
		if (err) {
			return trace_fail(why, whylen, PCB_EXIT_OSERR, "event thread: %s", strerror(err));
		}
		t->ev_running = true;
	}
	return 0;
}

/* Stop the thread (it drains the ring buffer first) and close the file. */
void trace_stop_events(struct pcb_trace *t)
{
	if (t->ev_running) {
		t->ev_stop = true;
		pthread_join(t->ev_thread, NULL);
		t->ev_running = false;
	}
	if (t->events_fp) {
		if (fclose(t->events_fp) && !t->events_err)
			t->events_err = errno;
		t->events_fp = NULL;
	}
}
