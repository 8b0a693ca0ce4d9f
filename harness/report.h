/*
 * Result files of a run: OUT/results.json and OUT/junit.xml. Both are
 * rewritten atomically after every case, so a run that dies keeps every
 * case that finished, in files that are always complete and valid.
 */
#ifndef TR_HARNESS_REPORT_H
#define TR_HARNESS_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "harness/stats.h"

typedef struct tr_report tr_report;

typedef enum tr_case_status {
	TR_CASE_PASSED,
	TR_CASE_FAILED,
	TR_CASE_SKIPPED,
	TR_CASE_ERROR,     /* the case could not run: bad scenario file, rig fault */
} tr_case_status;

typedef struct tr_case_result {
	const char *const *ids;
	size_t n_ids;
	const char *title;
	const char *scenario;   /* file path */
	const char *portal;
	const char *kind;       /* "softhsm", ... */
	const char *algorithm;  /* "p256", ... */
	tr_case_status status;
	double duration_ms;
	const char *message;    /* why it failed / was skipped */
	const char *step;       /* the step that failed */
	const char *expected;
	const char *actual;
	/* What the portals warned of, [{"step","message"}]; NULL for none. */
	const json_t *warnings;
	/* The steps run, a line each (tr_case_log); kept for cases not passed. */
	const json_t *log;
} tr_case_result;

/*
 * What the program says about the run before opening the report: its
 * command line (values of secret options such as --pin masked; none exists
 * today) and the seed. Process-wide; results.json records them with the
 * tool's version and revision, the host and the versions of OpenSSL,
 * SoftHSM2, OpenSC and pcsc-lite.
 */
void tr_report_set_invocation(int argc, char *const *argv, unsigned long long seed);

int tr_report_open(tr_report **out, const char *out_dir);
void tr_report_free(tr_report *rep);

/* Records one finished case and rewrites both files. */
int tr_report_add(tr_report *rep, const tr_case_result *res);

/*
 * The same for the case at position order of the run's case list: the
 * files list the finished cases in that order whatever order they finish
 * in (worker processes), coverage and skip counts included.
 */
int tr_report_add_at(tr_report *rep, size_t order, const tr_case_result *res);

/* A case's name as the files give it: "IDS title [kind/algorithm]". */
void tr_case_result_name(const tr_case_result *res, char *buf, size_t len);

/* Sets a top-level figure of results.json (value stolen), written with the next case. */
int tr_report_set(tr_report *rep, const char *key, json_t *value);

/* Records the latency summary of a token kind and algorithm. */
int tr_report_set_latency(tr_report *rep, const char *kind, const char *algorithm,
			  const char *stage, const tr_summary *sum);

/* The same for one portal's column (the row names the portal). */
int tr_report_set_latency_at(tr_report *rep, const char *portal, const char *kind,
			     const char *algorithm, const char *stage, const tr_summary *sum);

/* Rewrites the files with the final figures (wall time of the run). */
/*
 * The run ended at signal sig after after_cases cases: results.json gets
 * "interrupted": {"signal": "SIGTERM", "after_cases": N}, junit.xml a last
 * error testcase "run interrupted by SIGTERM after N cases". Rewrites both.
 */
int tr_report_interrupted(tr_report *rep, int sig, size_t after_cases);

int tr_report_finish(tr_report *rep, double wall_s);

/*
 * Writes OUT/results.json and OUT/junit.xml of a whole results document
 * (`tokenrig merge`: the shards' cases, summary, coverage and latency
 * already made into one run's), with the same writers as a run's.
 */
int tr_report_write_doc(json_t *root, const char *out_dir);

const char *tr_case_status_name(tr_case_status st);

/* The name of the reason a skip message gives (README "Why a case is skipped"). */
const char *tr_skip_reason_name(const char *message);

/* The run's skips counted by reason, a line each (nothing when none). */
int tr_report_print_skips(const tr_report *rep, FILE *out);

#endif
