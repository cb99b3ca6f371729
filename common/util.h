/* Small helpers shared by every room: exit codes, time, parsing, errors. */
#ifndef PCB_UTIL_H
#define PCB_UTIL_H
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Exit codes (sysexits.h style), one per failure class. Documented in README.md and docs/pcbench.1 (cli/options.c). */
enum pcb_exit {
	PCB_EXIT_OK          = 0,
	PCB_EXIT_VERIFY      = 1,   /* run finished but pages corrupt or missing */
	PCB_EXIT_USAGE       = 64,  /* bad option or value */
	PCB_EXIT_DATAERR     = 65,  /* bad input file (job file, trace) */
	PCB_EXIT_UNAVAILABLE = 69,  /* kernel lacks a needed feature (userfaultfd, BPF, KVM) */
	PCB_EXIT_SOFTWARE    = 70,  /* internal error */
	PCB_EXIT_OSERR       = 71,  /* system call failed unexpectedly (mmap, fork, ...) */
	PCB_EXIT_SOURCE_LOST = 74,  /* connection to the source dropped / timed out */
	PCB_EXIT_PROTOCOL    = 76,  /* the peer sent a malformed or refused frame */
	PCB_EXIT_NOPERM      = 77,  /* insufficient privilege */
};

#define PCB_NSEC_PER_SEC  1000000000ull
#define PCB_NSEC_PER_MSEC 1000000ull
#define PCB_NSEC_PER_USEC 1000ull

static inline uint64_t pcb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * PCB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}
static inline double pcb_ns_to_s(uint64_t ns) { return (double)ns / 1e9; }
/* CPU time the calling thread has used (the kernel's per-thread accounting). */
static inline uint64_t pcb_thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * PCB_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* "256M", "4G", "4096", "64k", "1.5G" (binary units K/M/G/T, optional B/iB).
 * Returns 0 and *out on success, -1 on bad syntax, zero is allowed (caller checks). */
int pcb_parse_size(const char *s, uint64_t *out);
/* "10s", "500ms", "20us", "3" (seconds), "1.5s" -> ns. -1 on bad syntax. */
int pcb_parse_duration(const char *s, uint64_t *out_ns);
/* Strict integer / double parsing: whole string, range-checked. -1 on error. */
int pcb_parse_u64(const char *s, uint64_t *out);
int pcb_parse_double(const char *s, double *out);
/* Human size, e.g. "256 MiB", into buf. */
const char *pcb_fmt_size(uint64_t bytes, char *buf, size_t len);

/* Print "pcbench: <msg>\n" to stderr. */
void pcb_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pcb_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Verbose log (-v): only when pcb_verbose > 0. */
extern int pcb_verbose;
void pcb_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map an errno from a privileged operation to an exit code:
 * EPERM/EACCES -> NOPERM, ENOSYS/EINVAL/ENOTTY/EOPNOTSUPP/ENOENT -> UNAVAILABLE, else OSERR. */
int pcb_exit_for_errno(int err);

/* 0 if path can be created or overwritten by us, else an errno (checks the
 * file if it exists, else its directory; writes nothing). */
int pcb_check_writable(const char *path);

/* Read/write exactly n bytes (retries EINTR/short transfers). 0 ok, -1 with errno (EPIPE/ECONNRESET on EOF: errno=ECONNRESET). */
int pcb_read_full(int fd, void *buf, size_t n);
/* Copy n bytes of peer text into dst (NUL-terminated, truncated to fit),
 * printable ASCII only: anything else becomes '?' (no terminal escapes or
 * newlines from the network reach a log). */
void pcb_sanitize(char *dst, size_t dstlen, const void *src, size_t n);
int pcb_write_full(int fd, const void *buf, size_t n);
/* Read one word of every 4 KiB page of [p, p + len): a process makes memory it
 * inherited its own before it serves it (docs/results/2026-12-05-source-own-image.md). */
void pcb_read_each_page(const uint8_t *p, uint64_t len);
struct iovec;
/* writev all of iov[0..n) (partial writes and EINTR continued; iov is
 * advanced in place).  *written (may be NULL) grows by each write's bytes,
 * also when a later one fails.  0, or -1 with errno. */
int pcb_writev_full(int fd, struct iovec *iov, unsigned n, uint64_t *written);

/* 64-bit mixing (splitmix64 finaliser); deterministic RNG helpers. */
static inline uint64_t pcb_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
struct pcb_rng { uint64_t s[4]; };       /* xoshiro256** */
void pcb_rng_seed(struct pcb_rng *r, uint64_t seed, uint64_t stream);
static inline uint64_t pcb_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t pcb_rng_next(struct pcb_rng *r)
{
	uint64_t *s = r->s, res = pcb_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = pcb_rotl(s[3], 45);
	return res;
}
/* Uniform in [0, n) (Lemire, unbiased).  Inline: the freestanding KVM guest uses it too. */
static inline uint64_t pcb_rng_below(struct pcb_rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	__uint128_t m = (__uint128_t)pcb_rng_next(r) * n;
	uint64_t l = (uint64_t)m;
	if (l < n) {
		uint64_t t = -n % n;
		while (l < t) {
			m = (__uint128_t)pcb_rng_next(r) * n;
			l = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}
/* Wait for child pid to exit: up to timeout_ms (SIGKILL first with kill_first), then SIGKILL
 * and wait.  True when this call reaped it (*ru, if given, holds its resource usage); a child
 * already reaped (ECHILD) or pid <= 0: false. */
struct rusage;
bool pcb_reap_child(int pid, bool kill_first, unsigned timeout_ms, struct rusage *ru);
/* Uniform double in [0,1). */
static inline double pcb_rng_double(struct pcb_rng *r) { return (double)(pcb_rng_next(r) >> 11) * 0x1.0p-53; }

#endif
