/*
 * One case: a scenario's steps run against one portal with the tokens of
 * one kind and algorithm. The actions (ca-login, request, sign-submit,
 * token-login, token-logout) and the checks of a step's answer.
 */
#ifndef TR_HARNESS_STEPS_H
#define TR_HARNESS_STEPS_H

#include "harness/env.h"
#include "harness/portal_client.h"
#include "harness/scenario.h"
#include "harness/stats.h"

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

int tr_case_new(tr_case **out, const tr_scenario *sc, const tr_env *env,
		tr_portal_client *pc, const char *kind, const char *algorithm,
		tr_case_timing timing);

/*
 * Runs the steps in order, stopping at the first one whose answer does not
 * match. 0: passed. TR_ERROR: failed, *fail says where. Other negative: the
 * case could not run (fail->message says why).
 */
int tr_case_run(tr_case *c, tr_case_failure *fail);

void tr_case_free(tr_case *c);

#endif
