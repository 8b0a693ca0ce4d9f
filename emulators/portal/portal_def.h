/*
 * What a province file provides to the generic portal (portal.c): its sites
 * with their texts and account rules, its extra routes and its state. Each
 * province is one file (portal_suzhou.c, ...) defining one pt_portal_def
 * named pt_<province>_def, bound to the province's row of the registry
 * (fixtures/provinces.def, which also gives its CA and legacy CA) by
 * portal.c. Declarations one province alone uses live in its own header
 * (portal_hunan.h, portal_suzhou_staff.h). Handlers run under the portal's
 * lock.
 */
#ifndef TR_PORTAL_DEF_H
#define TR_PORTAL_DEF_H

#include "portal.h"
#include "portal_json.h"
#include "portal_session.h"
#include "portal_verify.h"

#include <jansson.h>
#include <stdint.h>

/* Keys of GET /<site>/ui, in this order. */
enum {
	PT_UI_PIN_INCORRECT,
	PT_UI_PIN_LOCKED,
	PT_UI_NO_TOKEN,
	PT_UI_DRIVER_MISSING,
	PT_UI_READ_FAILED,
	PT_UI_ASSISTANT_EXCEPTION,
	PT_UI_COUNT
};

typedef struct pt_site_def pt_site_def;

typedef struct pt_ctx {
	pt_portal *portal;
	const pt_site_def *site;   /* the site of the path, NULL for others */
	const pt_request *req;
	pt_response *resp;
	json_t *body;              /* the request object of a POST, else NULL */
	const pt_session *session; /* when the route asks for one */
	void *state;               /* the province's state */
	int64_t now;               /* portal time */
} pt_ctx;

/* A certificate that passed checks 1-4 of a login. */
typedef struct pt_login {
	const char *site;
	X509 *cert;
	const char *unit_name; /* from the certificate subject, may be "" */
	const char *uscc;      /* may be "" */
	const char *serial;    /* upper-case hex (pt_cert_serial_hex) */
	const char *assistant;
	pt_sig_alg alg;
	int legacy;            /* chains only to the portal's legacy CA */
	int expired;           /* expired, on a site with expired_ok */
	/* Set by the rules: the session's account, extra answer members. */
	char account[64];
	json_t *extra;         /* merged into the 200 answer, owned here */
} pt_login;

struct pt_site_def {
	const char *name;
	const char *texts[PT_UI_COUNT];
	/*
	 * Check 5 (account rules). 0 lets the login through; otherwise the
	 * rule has replied (pt_reply_error) and returns nonzero. NULL: any
	 * certificate that passes checks 1-4.
	 */
	int (*login_rules)(pt_ctx *ctx, pt_login *login);
	/*
	 * Lowest certificate-assistant version the site's page works with
	 * (dotted numbers), NULL for any. An older one is refused before the
	 * nonce is taken: 403 assistant_code, assistant_message (one %s: the
	 * minimum version, may be absent).
	 */
	const char *min_assistant;
	const char *assistant_code;
	const char *assistant_message;
	/* An expired certificate logs in (login->expired) for the rules. */
	int expired_ok;
};

typedef struct pt_route {
	const char *method;
	const char *path;
	const char *session_site; /* non-NULL: Bearer session of that site */
	const pt_field *fields;   /* POST body schema */
	size_t nfields;
	void (*handler)(pt_ctx *ctx);
} pt_route;

/*
 * A portal's own answer to a failed certificate check (status PT_STATUS_*)
 * where its guide gives no status code: 403 code, message, no "status",
 * plus "remedy" when non-NULL (where the remedy starts).
 */
typedef struct pt_ca_text {
	int status;
	const char *code;
	const char *message;
	const char *remedy;
} pt_ca_text;

typedef struct pt_portal_def {
	const char *name;
	const pt_site_def *sites;
	size_t nsites;
	const pt_route *routes;
	size_t nroutes;
	/*
	 * Replies of pt_reply_ca_failure for the statuses listed (logins and
	 * bindings); NULL, or a status not listed: the Jiangsu text.
	 */
	const pt_ca_text *ca_texts;
	size_t nca_texts;
	int (*state_new)(void **out);
	void (*state_reset)(void *state); /* POST /admin/reset */
	void (*state_free)(void *state);
} pt_portal_def;

/* Answers with obj (reference stolen). */
void pt_reply_json(pt_ctx *ctx, unsigned http, json_t *obj);

/* {"ok":true} followed by the members of extra (stolen, may be NULL). */
void pt_reply_ok(pt_ctx *ctx, unsigned http, json_t *extra);

/*
 * {"ok":false,"code":code,"message":...} plus "status" when status > 0.
 * message is a printf format; the result must be UTF-8.
 */
void pt_reply_error(pt_ctx *ctx, unsigned http, const char *code, int status,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The string member name of the (schema-checked) body. */
const char *pt_body_str(pt_ctx *ctx, const char *name);

/*
 * Verifies the base64 signature over data with cert, replying on failure:
 * 400 ALG_UNSUPPORTED, 400 BAD_FIELD (signature not base64), 403
 * SIGNATURE_INVALID (status 800). 0 when it verifies.
 */
int pt_check_signature(pt_ctx *ctx, X509 *cert, const char *algorithm,
		       const void *data, size_t len, const char *signature_b64);

/*
 * "CA验签结果失败，状态码：<n>" replies (403 with code and status), or the
 * portal's own ca_texts row for that status.
 */
void pt_reply_ca_failure(pt_ctx *ctx, int status);

/* pt_reply_error plus the members of extra (stolen, may be NULL). */
void pt_reply_error_x(pt_ctx *ctx, unsigned http, const char *code,
		      json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Checks 1-3 for a certificate given outside a login (a binding): 0 when
 * it passes, else *status as for a login (820, 810, 809, 823).
 */
int pt_cert_check(pt_ctx *ctx, X509 *cert, int *status);

/* 1 when the portal's CRL lists cert (a lost token). */
int pt_cert_revoked(pt_ctx *ctx, X509 *cert);

/* The --pki folder (for a portal that issues certificates). */
const char *pt_pki_dir(const pt_ctx *ctx);

/* Opens a session of site (a password login: cert NULL). */
int pt_session_open(pt_ctx *ctx, const char *site, X509 *cert,
		    const char *unit_name, const char *uscc,
		    const char *account, const pt_session **out);

/*
 * The answer to a failed pt_session_open: 429 TOO_MANY_SESSIONS when the
 * site's sessions are all live (PT_EFULL), else 500 INTERNAL.
 */
void pt_reply_session_error(pt_ctx *ctx, int err);

/* Ends the request's own session (ctx->session becomes NULL). */
void pt_session_end(pt_ctx *ctx);

/*
 * Compares dotted-numeric versions ("5.0.22.606"): <0, 0, >0; missing
 * parts count as 0. A version that is not dotted digits sorts lowest.
 */
int pt_version_cmp(const char *a, const char *b);

/*
 * Day in China Standard Time (UTC+8, the guides' clock) of portal time t:
 * fills *mday (1-31) and *wday (0 = Sunday).
 */
void pt_cst_day(int64_t t, int *mday, int *wday);

/*
 * The string member field of the body when it is min..max bytes; else
 * replies 400 BAD_FIELD naming it and returns NULL.
 */
const char *pt_text_field(pt_ctx *ctx, const char *field, size_t min,
			  size_t max);

/* 1 when s is min..max ASCII digits. */
int pt_digits(const char *s, size_t min, size_t max);

/* 1 when s is a mainland mobile number: 11 digits starting with 1. */
int pt_phone_valid(const char *s);

/*
 * The string member field of the body when it is a mobile number
 * (pt_phone_valid) or a resident ID number with a valid check character;
 * else replies 400 BAD_FIELD naming it and returns NULL.
 */
const char *pt_phone_field(pt_ctx *ctx, const char *field);
const char *pt_resident_id_field(pt_ctx *ctx, const char *field);

/*
 * A signed business submission {"document","signature","algorithm"}: the
 * signature is checked against the session's certificate (a password
 * session has none: 403 no_cert_code / no_cert_msg), then answers 201
 * {"ok":true,"receipt":"<prefix><YYYYMMDD CST><6-digit seq>","verified":true}.
 */
void pt_signed_submission(pt_ctx *ctx, const char *prefix,
			  unsigned long *counter, const char *no_cert_code,
			  const char *no_cert_msg);

/* base64 of a DER SubjectPublicKeyInfo (the new key on a token). */
int pt_pubkey_from_base64(const char *b64, EVP_PKEY **out);

/*
 * Issues a VALID unit certificate for pub from the issuing CA named ca of
 * the --pki folder, dated by the portal clock, subject from unit_name and
 * uscc (ST = ca). *cert_b64 (malloc'd) is its DER in base64, serial its
 * upper-case hex. Replies nothing.
 */
int pt_issue_unit_cert(pt_ctx *ctx, const char *ca, const char *unit_name,
		       const char *uscc, EVP_PKEY *pub, char **cert_b64,
		       char *serial, size_t serial_len);

/* A fresh id: prefix + 12 random hex digits (tickets, orders). */
int pt_new_id(const char *prefix, char *buf, size_t len);

#endif
