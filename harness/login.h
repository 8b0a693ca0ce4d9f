/*
 * A certificate login to a portal site, as the page and the certificate
 * assistant do it: challenge, unlock the token (the PIN, after the challenge
 * is there), sign, login. Shared by the scenarios' ca-login and the bench.
 */
#ifndef TR_HARNESS_LOGIN_H
#define TR_HARNESS_LOGIN_H

#include <stdint.h>

#include "harness/portal_client.h"
#include "harness/token.h"

/* Unlocks the token once the challenge is there (C_Login with the PIN). */
typedef int (*tr_login_unlock)(void *arg);

typedef struct tr_login_result {
	tr_http_answer answer;  /* the portal's last answer (status 0: none) */
	int token_error;        /* a token outcome (TR_TOKEN_E*), 0 when none */
	uint64_t sign_ns;       /* inside the token */
	uint64_t total_ns;      /* challenge to session */
} tr_login_result;

/*
 * 0 when the login reached an outcome (res->answer from the portal, or
 * res->token_error); a negative code when the rig itself failed (no answer
 * from the portal, out of memory).
 */
int tr_login_run(tr_portal_client *pc, tr_token *tok, const char *site,
		 const char *assistant, tr_login_unlock unlock, void *arg,
		 tr_login_result *res);

/*
 * The same, but the assistant signs sign_text instead of the challenge it
 * got (NULL: the challenge): e.g. another challenge of the site, as a stale
 * page does (JS-E05: the portal answers 800).
 */
int tr_login_run_signing(tr_portal_client *pc, tr_token *tok, const char *site,
			 const char *assistant, const char *sign_text,
			 tr_login_unlock unlock, void *arg, tr_login_result *res);

void tr_login_result_clear(tr_login_result *res);

/* Base64 of data (malloc'd), as the portal API wants certificates and signatures. */
char *tr_base64(const unsigned char *data, size_t len);

#endif
