/*
 * What a province file provides to the generic portal (portal.c): its sites
 * with their texts and account rules, its extra routes and its state. Each
 * province is one file (portal_suzhou.c, ...) defining one pt_portal_def,
 * listed in portal.c. Handlers run under the portal's lock.
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
	const char *assistant;
	pt_sig_alg alg;
} pt_login;

struct pt_site_def {
	const char *name;
	const char *texts[PT_UI_COUNT];
	/*
	 * Check 5 (account rules). 0 lets the login through; otherwise the
	 * rule has replied (pt_reply_error) and returns nonzero. NULL: any
	 * certificate that passes checks 1-4.
	 */
	int (*login_rules)(pt_ctx *ctx, const pt_login *login);
};

typedef struct pt_route {
	const char *method;
	const char *path;
	const char *session_site; /* non-NULL: Bearer session of that site */
	const pt_field *fields;   /* POST body schema */
	size_t nfields;
	void (*handler)(pt_ctx *ctx);
} pt_route;

typedef struct pt_portal_def {
	const char *name;
	const pt_site_def *sites;
	size_t nsites;
	const pt_route *routes;
	size_t nroutes;
	int (*state_new)(void **out);
	void (*state_reset)(void *state); /* POST /admin/reset */
	void (*state_free)(void *state);
} pt_portal_def;

extern const pt_portal_def pt_suzhou_def;

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

/* "CA验签结果失败，状态码：<n>" replies (403 with code and status). */
void pt_reply_ca_failure(pt_ctx *ctx, int status);

#endif
