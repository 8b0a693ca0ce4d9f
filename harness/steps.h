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

/*
 * What tr_case_run makes of a case: codes of its own, apart from the TR_E*
 * errors of the layers below, so that no lower error is read as a skip (a
 * module or daemon missing, TR_EDEPEND, is the rig's error, not "the kind
 * cannot"). The negative outcomes fill *fail's step, expected and actual.
 */
typedef enum tr_case_outcome {
	TR_CASE_RIG_ERROR = -2, /* could not run: the rig lacks something, an unknown action */
	TR_CASE_FAIL = -1,      /* an answer did not match, or no answer came */
	TR_CASE_PASS = 0,
	TR_CASE_SKIP = 1,       /* the token kind cannot do what a step asks */
	TR_CASE_STOP = 2,       /* the token must not be touched again (never brick a real key) */
} tr_case_outcome;

/*
 * An action's own way to say "this token kind cannot do it" (the step, and
 * the case, are skipped; tr_error_last() says why). Negative, so that it
 * travels up like any error; distinct from every TR_E* code.
 */
#define TR_STEP_ESKIP (-190)

/* What a step's return (0, TR_STEP_ESKIP, a TR_E* error) makes of the case. */
tr_case_outcome tr_case_outcome_of(int step_error);

/*
 * Runs the steps in order, stopping at the first one whose answer does not
 * match; fail->message says why for every outcome but TR_CASE_PASS.
 */
tr_case_outcome tr_case_run(tr_case *c, tr_case_failure *fail);

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

/*
 * The scenario actions (`do =`, suites/README.md "Actions"): one table
 * gives both the scenario schema (tr_scenario_parse checks a step's action
 * and keys against it) and the function a step runs, so an action the
 * schema accepts cannot run as another.
 */
#define TR_ACTION_MAX_REQUIRED 4
#define TR_ACTION_MAX_OPTIONAL 8

struct tr_step_answer;

typedef struct tr_action {
	const char *name;
	const char *required[TR_ACTION_MAX_REQUIRED];
	const char *optional[TR_ACTION_MAX_OPTIONAL];
	const char *prefix; /* a family of keys, e.g. "json." (NULL: none) */
	int (*run)(tr_case *c, struct tr_step_answer *a);
} tr_action;

/* The action named name, NULL when there is none. */
const tr_action *tr_action_find(const char *name);

/* The i-th action of the table, NULL past its end. */
const tr_action *tr_action_at(size_t i);

/*
 * 1 when a step of this action may carry key: its required and optional
 * keys, its prefix family, and what every action takes (do, note, expect.*,
 * save.*).
 */
int tr_action_takes(const tr_action *a, const char *key);

#endif
