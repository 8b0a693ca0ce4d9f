/*
 * The scenario engine: every scenario file of the suites, on every token
 * kind and algorithm its portal has, each case against a freshly reset
 * portal; results written as each case finishes.
 */
#ifndef TR_HARNESS_ENGINE_H
#define TR_HARNESS_ENGINE_H

#include "harness/env.h"
#include "harness/shard.h"

typedef struct tr_engine_opts {
	const char *suites_dir;   /* searched recursively for *.scn */
	const char *out_dir;      /* results.json, junit.xml */
	const char *filter;       /* run only scenarios whose ID or file contains it */
	unsigned case_timeout_ms; /* a case running longer aborts the run */
	int tty;                  /* progress on one live line */
	const char *require_kinds; /* comma-separated: each must run some case */
	int quiet;                /* no per-case lines (certify's workers) */
	volatile int *stop;       /* set (SIGINT): the remaining cases are not run */
	/*
	 * With stop: *stop holds the signal; the run ends after the case in
	 * flight (its undo done) and the result files are marked interrupted.
	 */
	int interrupt_ends_run;
	/* Called after every case (may be NULL): cases done of the run's total. */
	void (*on_case)(void *arg, size_t done, size_t total);
	void *on_case_arg;
	/*
	 * Worker processes (tokenrig run): 0 runs every case in this process
	 * against env (certify), a case past its deadline ending the run
	 * (exit 3). N >= 1: env is a provision_only env and the cases run in N
	 * worker processes with environments of their own (harness/worker.h);
	 * a case past its deadline or a crashed worker is an error of that
	 * case, a dead portal, pcscd or card an error of the case it broke,
	 * and the run goes on with a fresh worker.
	 */
	unsigned jobs;
	double startup_s;         /* the run's start-up so far, for the figures */
	/* --shard I/N: the slice of the case list this run runs (total 0: all). */
	tr_shard shard;
	const char *shard_durations; /* an earlier results.json balancing the shards, or NULL */
} tr_engine_opts;

typedef struct tr_run_totals {
	int passed, failed, skipped, errors;
	int kinds_missing;        /* --require-kinds that could not run at all */
	char stopped[1024];       /* why the run stopped touching a token, "" */
	int interrupted;          /* the signal that ended the run (interrupt_ends_run), 0 */
	double wall_s;
	int restarts;             /* workers started again (deadline, crash, rig fault) */
} tr_run_totals;

/*
 * Before the start-up: the suites folder has scenario files and the filter
 * matches one of them (a malformed file counts: it becomes an error case).
 * *n: the scenario files that will run.
 */
int tr_engine_preflight(const tr_engine_opts *opts, size_t *n);

/* Runs everything; 0 when the run itself worked (cases may have failed). */
int tr_engine_run(tr_env *env, const tr_engine_opts *opts, tr_run_totals *totals);

/* `tokenrig __worker --master DIR --dir DIR`: one worker of a run (harness/worker.h). */
int tr_engine_worker_main(int argc, char **argv);

#endif
