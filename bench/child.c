/* One run of an experiment as a child pcbench process: its command line
 * from the job (bench_build_argv), the child with its log and time limit,
 * and the recording runs that record_seed variants replay. */
#include "bench/internal.h"
#include "cli/options.h"
#include "common/util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool has_option(const char *name)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (!strcmp(o->name, name))
			return true;
	return false;
}

static bool job_uses_source(const struct pcb_job *job, const struct pcb_job_run *r)
{
	for (unsigned i = 0; i < job->nopts; i++)
		if (!strcmp(job->opts[i].key, "source"))
			return true;
	for (unsigned i = 0; i < job->links[r->link].nopts; i++)
		if (!strcmp(job->links[r->link].opts[i].key, "source"))
			return true;
	return false;
}

/* argv for one run (strings live in store). */
void bench_build_argv(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		       char store[][4200], char **av)
{
	unsigned k = 0, a = 0;
	av[a++] = (char *)exe;
	/* a job that names a long-running `pcbench source` (source = HOST:PORT, in [experiment] or a
	 * [link]) migrates from it: this host is the destination (`pcbench dest`) */
	av[a++] = job_uses_source(job, r) ? "dest" : "run";
	snprintf(store[k], sizeof(store[0]), "--policy=%s", pcb_job_policy_real(job, r->policy));
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--workload=%s", job->workloads[r->workload]);
	av[a++] = store[k++];
	for (unsigned i = 0; i < job->nopts; i++) {
		if (!strcmp(job->opts[i].key, "seed"))
			continue;
		snprintf(store[k], sizeof(store[0]), "--%s=%s", job->opts[i].key, job->opts[i].val);
		av[a++] = store[k++];
	}
	const struct pcb_job_link *l = &job->links[r->link];
	for (unsigned i = 0; i < l->nopts; i++) {
		snprintf(store[k], sizeof(store[0]), "--%s=%s", l->opts[i].key, l->opts[i].val);
		av[a++] = store[k++];
	}
	const struct pcb_job_variant *v = pcb_job_variant_of(job, r->policy);
	for (unsigned i = 0; v && i < v->nopts; i++) {
		snprintf(store[k], sizeof(store[0]), "--%s=%s", v->opts[i].key, v->opts[i].val);
		av[a++] = store[k++];
	}
	if (v && v->record) {
		char tp[4096];
		pcb_job_trace_path(job, v, r->workload, dir, tp, sizeof(tp));
		snprintf(store[k], sizeof(store[0]), "--replay=%s", tp);
		av[a++] = store[k++];
	}
	snprintf(store[k], sizeof(store[0]), "--seed=%llu", (unsigned long long)pcb_job_seed(job, r));
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--json=%s/runs/%s.json.tmp", dir, r->id);
	av[a++] = store[k++];
	if (has_option("progress-csv")) {     /* guest progress per bucket (also in the JSON) */
		snprintf(store[k], sizeof(store[0]), "--progress-csv=%s/runs/%s.progress.csv", dir, r->id);
		av[a++] = store[k++];
	}
	if (!strcmp(job->timeline, "all") || (!strcmp(job->timeline, "first") && r->rep == 0)) {
		snprintf(store[k], sizeof(store[0]), "--timeline=%s/runs/%s.timeline.csv", dir, r->id);
		av[a++] = store[k++];
	}
	av[a] = NULL;
}

static uint64_t run_timeout(const struct pcb_job *job, const struct pcb_job_run *r)
{
	if (job->run_timeout_ns)
		return job->run_timeout_ns;
	/* auto: 10x the guest duration plus a minute (drain, verification, start-up) */
	uint64_t d = job->base.duration_ns;
	for (unsigned i = 0; i < job->links[r->link].nopts; i++)
		if (!strcmp(job->links[r->link].opts[i].key, "duration"))
			pcb_parse_duration(job->links[r->link].opts[i].val, &d);
	return 10 * d + 60 * PCB_NSEC_PER_SEC;
}

/* Run av as a child (the running binary itself) with stdout/stderr to logp; its exit status
 * (0 ok; 128+sig on a signal; 124 killed after limit).  pg: progress display (or NULL). */
static int spawn_logged(char **av, const char *exe, const char *logp, uint64_t limit, struct progress *pg, unsigned idx,
			const char *id)
{
	int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (lfd < 0)
		return PCB_EXIT_OSERR;
	{
		FILE *lf = fdopen(dup(lfd), "w");
		if (lf) {
			fprintf(lf, "#");
			for (char **a = av; *a; a++)
				fprintf(lf, " %s", *a);
			fprintf(lf, "\n");
			fclose(lf);
		}
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(lfd);
		return PCB_EXIT_OSERR;
	}
	if (pid == 0) {
		dup2(lfd, 1);
		dup2(lfd, 2);
		signal(SIGINT, SIG_DFL);
		/* the running binary itself, even if the file at exe was replaced meanwhile:
		 * every run of an experiment uses the same pcbench */
		execv("/proc/self/exe", av);
		fprintf(stderr, "pcbench bench: exec %s: %s\n", exe, strerror(errno));
		_exit(PCB_EXIT_OSERR);
	}
	close(lfd);
	uint64_t t0 = pcb_now_ns(), last = 0;
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return PCB_EXIT_OSERR;
		uint64_t now = pcb_now_ns();
		if (now - t0 > limit) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			FILE *lf = fopen(logp, "a");
			if (lf) {
				fprintf(lf, "pcbench bench: killed after %.0f s (run_timeout)\n", (double)limit / 1e9);
				fclose(lf);
			}
			return 124;
		}
		if (pg && pg->tty && now - last > 500 * PCB_NSEC_PER_MSEC) {
			char what[48];
			snprintf(what, sizeof(what), "running %.0f s", (double)(now - t0) / 1e9);
			bench_progress_line(pg, idx, id, what, (double)(now - t0) / 1e9);
			last = now;
		}
		usleep(20000);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* Run one child; returns its exit status (0 ok; 128+sig on a signal; 124 on timeout). */
int bench_run_child(const struct pcb_job *job, const struct pcb_job_run *r, const char *exe, const char *dir,
		     struct progress *pg, unsigned idx)
{
	static char store[PCB_JOB_MAX_OPTS * 3 + 10][4200];
	char *av[PCB_JOB_MAX_OPTS * 3 + 12];
	char logp[4600];
	bench_build_argv(job, r, exe, dir, store, av);
	snprintf(logp, sizeof(logp), "%s/runs/%s.log", dir, r->id);
	return spawn_logged(av, exe, logp, run_timeout(job, r), pg, idx, r->id);
}

/* argv of the recording run of a record_seed variant for workload w: the guest of the job
 * (shared options) with all memory local, seed N, --record to the trace path (.tmp). */
static void record_argv(const struct pcb_job *job, const struct pcb_job_variant *v, unsigned w, const char *exe,
			const char *dir, char store[][4200], char **av)
{
	unsigned k = 0, a = 0;
	char tp[4096];
	pcb_job_trace_path(job, v, w, dir, tp, sizeof(tp));
	av[a++] = (char *)exe;
	av[a++] = "run";
	av[a++] = "--policy=local";
	snprintf(store[k], sizeof(store[0]), "--workload=%s", job->workloads[w]);
	av[a++] = store[k++];
	for (unsigned i = 0; i < job->nopts; i++) {
		if (!strcmp(job->opts[i].key, "seed") || (v->record_duration[0] && !strcmp(job->opts[i].key, "duration")))
			continue;
		snprintf(store[k], sizeof(store[0]), "--%s=%s", job->opts[i].key, job->opts[i].val);
		av[a++] = store[k++];
	}
	if (v->record_duration[0]) {
		snprintf(store[k], sizeof(store[0]), "--duration=%s", v->record_duration);
		av[a++] = store[k++];
	}
	snprintf(store[k], sizeof(store[0]), "--seed=%llu", (unsigned long long)v->record_seed);
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--record=%s.tmp", tp);
	av[a++] = store[k++];
	snprintf(store[k], sizeof(store[0]), "--json=%.4090s.json", tp);
	av[a++] = store[k++];
	av[a] = NULL;
}

/* Record the traces that record_seed variants replay (once per variant seed and workload;
 * kept across resumes).  0 or the failing child's exit code. */
int bench_record_traces(const struct pcb_job *job, const char *exe, const char *dir, bool dry)
{
	static char store[PCB_JOB_MAX_OPTS + 8][4200];
	char *av[PCB_JOB_MAX_OPTS + 10];
	char p[4600], tp[4096], logp[4600];
	snprintf(p, sizeof(p), "%s/traces", dir);
	if (!dry && bench_mkdir_p(p) < 0)
		return PCB_EXIT_OSERR;
	for (unsigned k = 0; k < job->nvariants; k++) {
		const struct pcb_job_variant *v = &job->variants[k];
		for (unsigned w = 0; v->record && w < job->nworkloads; w++) {
			pcb_job_trace_path(job, v, w, dir, tp, sizeof(tp));
			if (!dry && access(tp, F_OK) == 0)
				continue;
			record_argv(job, v, w, exe, dir, store, av);
			if (dry) {
				printf("%-40s", "record");
				for (char **a = av + 1; *a; a++)
					printf(" %s", *a);
				printf("\n");
				continue;
			}
			fprintf(stderr, "bench: recording %s (trace for %s, seed %llu)\n", tp, v->name,
				(unsigned long long)v->record_seed);
			snprintf(logp, sizeof(logp), "%s.log", tp);
			int ec = spawn_logged(av, exe, logp, 10 * job->base.duration_ns + 60 * PCB_NSEC_PER_SEC, NULL, 0, "record");
			snprintf(p, sizeof(p), "%s.tmp", tp);
			if (ec == 0 && rename(p, tp) < 0)
				ec = PCB_EXIT_OSERR;
			if (ec) {
				fprintf(stderr, "bench: recording %s failed with exit %d; log %s\n", tp, ec, logp);
				return ec;
			}
		}
	}
	return 0;
}
