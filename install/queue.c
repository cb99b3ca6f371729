/* The receive -> install queue: the background thread fills a staging slot
 * and pushes a job; the installer thread pops it and installs it. */
#include "install/install.h"
#include <string.h>
#include <time.h>

void pcb_iq_init(struct pcb_install_q *q)
{
	memset(q, 0, sizeof(*q));
	q->nslots = PCB_IQ_SLOTS;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
}

void pcb_iq_destroy(struct pcb_install_q *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
}

static void wait_100ms(struct pcb_install_q *q)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int pcb_iq_reserve_ahead(struct pcb_install_q *q, unsigned ahead, const atomic_bool *stop, const atomic_int *fatal)
{
	pthread_mutex_lock(&q->lock);
	while (q->head + ahead - q->done >= q->nslots && !atomic_load(stop) && !atomic_load(fatal))
		wait_100ms(q);
	int slot = q->head + ahead - q->done < q->nslots ? (int)((q->head + ahead) % q->nslots) : -1;
	pthread_mutex_unlock(&q->lock);
	return slot;
}

int pcb_iq_reserve(struct pcb_install_q *q, const atomic_bool *stop, const atomic_int *fatal)
{
	return pcb_iq_reserve_ahead(q, 0, stop, fatal);
}

void pcb_iq_push(struct pcb_install_q *q, const struct pcb_install_job *j)
{
	pthread_mutex_lock(&q->lock);
	q->job[q->head % PCB_IQ_SLOTS] = *j;
	q->head++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

int pcb_iq_pop(struct pcb_install_q *q, struct pcb_install_job *j, const atomic_bool *stop, const atomic_int *fatal)
{
	pthread_mutex_lock(&q->lock);
	while (q->tail == q->head && !q->closed && !atomic_load(stop) && !atomic_load(fatal))
		wait_100ms(q);
	int r = -1;
	if (q->tail != q->head && !atomic_load(fatal)) {
		*j = q->job[q->tail % PCB_IQ_SLOTS];
		q->tail++;
		r = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void pcb_iq_done(struct pcb_install_q *q)
{
	pthread_mutex_lock(&q->lock);
	q->done++;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void pcb_iq_close(struct pcb_install_q *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}
