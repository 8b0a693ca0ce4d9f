/*
 * The scenario engine: every scenario file of the suites, on every token
 * kind and algorithm its portal has, each case against a freshly reset
 * portal; results written as each case finishes.
 */
#ifndef TR_HARNESS_ENGINE_H
#define TR_HARNESS_ENGINE_H

#include "harness/env.h"

typedef struct tr_engine_opts {
	const char *suites_dir;   /* searched recursively for *.scn */
	const char *out_dir;      /* results.json, junit.xml */
	const char *filter;       /* run only scenarios whose ID or file contains it */
	unsigned case_timeout_ms; /* a case running longer aborts the run */
	int tty;                  /* progress on one live line */
} tr_engine_opts;

typedef struct tr_run_totals {
	int passed, failed, skipped, errors;
	double wall_s;
} tr_run_totals;

/* Runs everything; 0 when the run itself worked (cases may have failed). */
int tr_engine_run(tr_env *env, const tr_engine_opts *opts, tr_run_totals *totals);

#endif
