/* connflood HOST PORT SECONDS THREADS KEEP: a flood of new TCP connections
 * from one address against a pcbench source (tests/integ/net_hostile.sh,
 * "connflood").  Each connection sends a whole well-formed HELLO at once --
 * what a destination sends first, so the source cannot tell it from one --
 * and then nothing; each thread keeps its last KEEP/THREADS connections open
 * and closes the older ones.  Faster than tests/helpers/hostile_peer.py's
 * Python threads can open them.  SIGTERM ends it early.  Prints
 * "connflood: C connections in S s (R/s)".  Frame layout: wire/proto.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in to;
static double t_end;
static unsigned keep;
static atomic_ullong conns, failed;
static volatile sig_atomic_t stop;   /* SIGTERM / SIGINT: stop early, still print */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void *flood(void *arg)
{
	uint8_t hello[48] = { 0 };
	put(hello, 0x31424350, 4);   /* magic */
	put(hello + 4, 3, 2);        /* protocol version */
	put(hello + 6, 1, 2);        /* HELLO */
	put(hello + 8, 24, 4);       /* payload: channel 0, flags 0, 16-byte nonce */
	int *held = calloc(keep, sizeof(int));
	unsigned n = 0;
	(void)arg;
	if (!held)
		return NULL;
	for (unsigned i = 0; i < keep; i++)
		held[i] = -1;
	while (!stop && now_s() < t_end) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
			if (s >= 0)
				close(s);
			atomic_fetch_add(&failed, 1);
			usleep(1000);
			continue;
		}
		put(hello + 32, (uint64_t)rand(), 8);   /* a fresh nonce (not secret: a flood) */
		if (send(s, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello))
			atomic_fetch_add(&failed, 1);
		if (held[n % keep] >= 0)
			close(held[n % keep]);
		held[n++ % keep] = s;
		atomic_fetch_add(&conns, 1);
	}
	for (unsigned i = 0; i < keep; i++)
		if (held[i] >= 0)
			close(held[i]);
	free(held);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: connflood HOST PORT SECONDS THREADS KEEP\n");
		return 64;
	}
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "connflood: bad address %s\n", argv[1]);
		return 64;
	}
	double secs = atof(argv[3]);
	int threads = atoi(argv[4]);
	if (threads < 1 || threads > 64 || secs <= 0 || atoi(argv[5]) < threads) {
		fprintf(stderr, "connflood: bad SECONDS, THREADS (1..64) or KEEP (>= THREADS)\n");
		return 64;
	}
	keep = (unsigned)atoi(argv[5]) / (unsigned)threads;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	double t0 = now_s();
	t_end = t0 + secs;
	pthread_t th[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, flood, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double el = now_s() - t0;
	printf("connflood: %llu connections in %.1f s (%.0f/s), %llu failed\n", (unsigned long long)conns, el,
	       (double)conns / el, (unsigned long long)failed);
	return 0;
}
