#include "common/util.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int pcb_verbose;

static void vmsg(const char *tag, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "pcbench: %s%s\n", tag, buf);
}

void pcb_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void pcb_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void pcb_log(const char *fmt, ...)
{
	va_list ap;
	if (pcb_verbose <= 0)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int pcb_exit_for_errno(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return PCB_EXIT_NOPERM;
	case ENOSYS:
	case EINVAL:
	case ENOTTY:
	case EOPNOTSUPP:
	case ENOENT:
	case ENODEV:
		return PCB_EXIT_UNAVAILABLE;
	default:
		return PCB_EXIT_OSERR;
	}
}

int pcb_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int pcb_parse_double(const char *s, double *out)
{
	char *end;
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

/* A plain decimal number ("12", "1.5", ".5") at the start of s: no sign,
 * exponent, hex or inf/nan, which strtod alone would accept. */
static int parse_decimal(const char *s, double *v, char **rest)
{
	size_t n = strspn(s, "0123456789.");
	char buf[64], *e;
	if (!n || n >= sizeof(buf) || !strpbrk(s, "0123456789") || strpbrk(s, "0123456789") >= s + n)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (strchr(buf, '.') != strrchr(buf, '.'))
		return -1;
	errno = 0;
	*v = strtod(buf, &e);
	if (errno || *e || !isfinite(*v))
		return -1;
	*rest = (char *)s + n;
	return 0;
}

int pcb_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	if (!s || parse_decimal(s, &v, &end) < 0)
		return -1;
	uint64_t mult = 1;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'B': mult = 1; end++; goto done;
	case 'K': mult = 1ull << 10; end++; break;
	case 'M': mult = 1ull << 20; end++; break;
	case 'G': mult = 1ull << 30; end++; break;
	case 'T': mult = 1ull << 40; end++; break;
	default: return -1;
	}
	if (mult > 1) {
		if (*end == 'i')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
	}
done:
	if (*end)
		return -1;
	double r = v * (double)mult;
	if (r >= 18446744073709551615.0 || r != floor(r))
		return -1;
	*out = (uint64_t)r;
	return 0;
}

int pcb_parse_duration(const char *s, uint64_t *out_ns)
{
	char *end;
	double v;
	if (!s || parse_decimal(s, &v, &end) < 0)
		return -1;
	double mult;
	if (!*end || !strcmp(end, "s"))
		mult = 1e9;
	else if (!strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (!strcmp(end, "ns"))
		mult = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60e9;
	else
		return -1;
	double r = v * mult;
	if (r >= 9.2e18)
		return -1;
	*out_ns = (uint64_t)llround(r);
	return 0;
}

const char *pcb_fmt_size(uint64_t b, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned i = 0;
	double v = (double)b;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (v == floor(v))
		snprintf(buf, len, "%.0f %s", v, u[i]);
	else
		snprintf(buf, len, "%.2f %s", v, u[i]);
	return buf;
}

int pcb_read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void pcb_sanitize(char *dst, size_t dstlen, const void *src, size_t n)
{
	const unsigned char *p = src;
	size_t i;
	if (!dstlen)
		return;
	for (i = 0; i < n && i + 1 < dstlen; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	dst[i] = 0;
}

int pcb_write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void pcb_read_each_page(const uint8_t *p, uint64_t len)
{
	volatile uint64_t acc = 0;
	for (uint64_t off = 0; off < len; off += 4096)
		acc += *(const volatile uint64_t *)(p + off);
	(void)acc;
}

int pcb_writev_full(int fd, struct iovec *v, unsigned n, uint64_t *written)
{
	while (n) {
		ssize_t w = writev(fd, v, (int)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (written)
			*written += (uint64_t)w;
		size_t adv = (size_t)w;
		for (; n && adv >= v->iov_len; v++, n--)   /* empty pieces (a NULL payload) too */
			adv -= v->iov_len;
		if (n) {   /* a partial write ends inside *v */
			v->iov_base = (uint8_t *)v->iov_base + adv;
			v->iov_len -= adv;
		}
	}
	return 0;
}

void pcb_rng_seed(struct pcb_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ pcb_mix64(stream + 0x632be59bd9b4e019ull);
	for (int i = 0; i < 4; i++) {
		x = pcb_mix64(x + (uint64_t)i);
		r->s[i] = x;
	}
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1;
}


int pcb_check_writable(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return EISDIR;
		return access(path, W_OK) == 0 ? 0 : errno;
	}
	if (errno != ENOENT)
		return errno;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	if (stat(dir, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	return access(dir, W_OK | X_OK) == 0 ? 0 : errno;
}

bool pcb_reap_child(int pid, bool kill_first, unsigned timeout_ms, struct rusage *ru)
{
	struct rusage scratch;
	if (pid <= 0)
		return false;
	if (!ru)
		ru = &scratch;
	if (kill_first)
		kill(pid, SIGKILL);
	for (unsigned t = 0; t < timeout_ms; t += 10) {
		pid_t w = wait4(pid, NULL, WNOHANG, ru);
		if (w == pid || (w < 0 && errno == ECHILD))
			return w == pid;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	return wait4(pid, NULL, 0, ru) == pid;
}
