/* `pcbench bench JOB [options]`: run an experiment matrix (bench/benchjob.h),
 * one child pcbench process per run, into results/<name>-<date>-<gitrev>/,
 * resumable; then analyze it (bench/analyze.h).  `pcbench analyze DIR`. */
#ifndef PCB_BENCH_H
#define PCB_BENCH_H
int pcb_cmd_bench(int argc, char **argv);    /* argv[0] == "bench" */
int pcb_cmd_analyze(int argc, char **argv);  /* argv[0] == "analyze" */
#endif
