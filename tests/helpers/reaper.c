/* reaper: run a command as a child subreaper, bound its run time, and report
 * whether it left any process behind.
 *
 *   reaper [-t SECONDS] [-r REPORT] -- COMMAND [ARGS...]
 *
 * The command's stdin/stdout/stderr are inherited untouched.  REPORT gets
 * key=value lines:
 *   child=PID          written as soon as the command is started
 *   status=exited code=N | status=signaled signal=N
 *   timeout=0|1        1: killed (SIGKILL) after SECONDS
 *   elapsed_ms=N       from start to the command's exit
 *   leftovers=N        processes the command started that outlived it
 *   leftover=PID COMM  one line per such process (then killed and reaped)
 * Exit status: the command's (128+signal if killed), 125 on usage errors.
 *
 * As a subreaper (PR_SET_CHILD_SUBREAPER) this process inherits every
 * orphaned descendant, so anything the command forked and did not reap
 * before exiting shows up as our child, alive or zombie.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "r");
	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
	if (!buf[0])
		snprintf(buf, len, "?");
}

int main(int argc, char **argv)
{
	double limit = 0;
	const char *report = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "+t:r:")) != -1) {
		switch (opt) {
		case 't': limit = atof(optarg); break;
		case 'r': report = optarg; break;
		default: return 125;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		fprintf(stderr, "usage: reaper [-t SECONDS] [-r REPORT] -- COMMAND [ARGS...]\n");
		return 125;
	}
	FILE *rep = report ? fopen(report, "w") : NULL;
	if (report && !rep) {
		perror(report);
		return 125;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 125;
	}
	long long t0 = now_ms();
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 125;
	}
	if (child == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "reaper: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	if (rep) {
		fprintf(rep, "child=%d\n", (int)child);
		fflush(rep);
	}
	int st = 0, timed_out = 0;
	for (;;) {
		pid_t w = waitpid(child, &st, WNOHANG);
		if (w == child)
			break;
		if (w < 0 && errno != EINTR) {
			perror("waitpid");
			return 125;
		}
		if (!timed_out && limit > 0 && now_ms() - t0 > (long long)(limit * 1000)) {
			timed_out = 1;
			kill(child, SIGKILL);
		}
		usleep(2000);
	}
	long long elapsed = now_ms() - t0;

	/* anything still our child now was started by the command and outlived it */
	unsigned left = 0;
	char lines[4096] = "";
	for (int round = 0; round < 50; round++) {
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		int any = 0;
		for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
			pid_t pid = (pid_t)atoi(tok);
			char comm[64], line[128];
			comm_of(pid, comm, sizeof(comm));
			snprintf(line, sizeof(line), "leftover=%d %s\n", (int)pid, comm);
			if (strlen(lines) + strlen(line) < sizeof(lines))
				strcat(lines, line);
			left++;
			any = 1;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		/* zombies that /proc did not list */
		while (waitpid(-1, NULL, WNOHANG) > 0) {
			left++;
			any = 1;
			if (strlen(lines) + 20 < sizeof(lines))
				strcat(lines, "leftover=? (zombie)\n");
		}
		if (!any)
			break;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (rep) {
		if (WIFEXITED(st))
			fprintf(rep, "status=exited code=%d\n", WEXITSTATUS(st));
		else
			fprintf(rep, "status=signaled signal=%d\n", WTERMSIG(st));
		fprintf(rep, "timeout=%d\nelapsed_ms=%lld\nleftovers=%u\n%s", timed_out, elapsed, left, lines);
		fclose(rep);
	}
	return code;
}
