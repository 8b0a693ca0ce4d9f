/*
 * One case: a scenario's steps run against one portal with the tokens of
 * one kind and algorithm. The actions of suites/README.md and the checks of
 * a step's answer.
 */
#ifndef TR_HARNESS_STEPS_H
#define TR_HARNESS_STEPS_H

#include "harness/env.h"
#include "harness/portal_client.h"
#include "harness/scenario.h"
#include "harness/stats.h"
#include "harness/token_ctl.h"

#include <jansson.h>

typedef struct tr_case tr_case;

/* Where and why a case failed; strings are safe to report (no PINs). */
typedef struct tr_case_failure {
	char step[160];
	char expected[1024];
	char actual[2048];
	char message[1024];
} tr_case_failure;

typedef struct tr_case_timing {
	tr_samples *sign_ns;   /* time inside the token per signature */
	tr_samples *login_ns;  /* challenge -> session, whole portal login */
} tr_case_timing;

/* ctl: the controls of this token kind, NULL when it has none. */
int tr_case_new(tr_case **out, const tr_scenario *sc, tr_env *env,
		tr_portal_client *pc, tr_token_ctl *ctl, const char *kind,
		const char *algorithm, tr_case_timing timing);

/* tr_case_run: the token kind cannot do what a step asks. */
#define TR_CASE_SKIP 1
/* tr_case_run: the token must not be touched again (never brick a real key). */
#define TR_CASE_STOP 2

/*
 * Runs the steps in order, stopping at the first one whose answer does not
 * match. 0: passed. TR_ERROR: failed, *fail says where. TR_CASE_SKIP: the
 * token kind cannot do a step (fail->message says which and why). Other
 * negative: the case could not run.
 */
int tr_case_run(tr_case *c, tr_case_failure *fail);

/*
 * What the portals warned of during the run, whatever its outcome: an array
 * of {"step","message"}, owned by the case.
 */
const json_t *tr_case_warnings(const tr_case *c);

/* The steps run, a line each ("[2] name (action, line N): HTTP 403 refused CODE"). */
const json_t *tr_case_log(const tr_case *c);

/*
 * Puts the tokens back as provisioned (controls reset, PINs restored with
 * the SO PIN where the case touched them), for the next case.
 */
int tr_case_finish(tr_case *c);

void tr_case_free(tr_case *c);

#endif
