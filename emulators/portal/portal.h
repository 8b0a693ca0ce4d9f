/*
 * A mock provincial portal as a pure request handler: an HTTP request in,
 * an HTTP status and a JSON body out. No sockets here (see server.h), so the
 * whole API of API.md can be tested by calling pt_portal_handle().
 */
#ifndef TR_PORTAL_PORTAL_H
#define TR_PORTAL_PORTAL_H

#include <stddef.h>

/* Largest request body any route accepts (API.md: 64 KiB). */
#define PT_BODY_MAX (64 * 1024)

/* Longest request target (path and query) the portal reads: 414 above. */
#define PT_URI_MAX 8192

typedef struct pt_portal pt_portal;

typedef struct pt_request {
	const char *method;        /* "GET", "POST", ... */
	const char *path;          /* the request target as sent ("/hall/login",
				    * percent-escapes undecoded); a query
				    * string is ignored */
	const char *content_type;  /* NULL when the header is absent */
	const char *authorization; /* NULL when the header is absent */
	const char *body;          /* need not be NUL-terminated; NULL if none */
	size_t body_len;
} pt_request;

typedef struct pt_response {
	unsigned status;  /* HTTP status */
	char *body;       /* malloc'd JSON object, NUL-terminated */
	size_t body_len;
	char code[40];    /* stable error code for the log, "" on success */
} pt_response;

/* 1 when name is a portal this build knows ("suzhou", ...). */
int pt_portal_known(const char *name);

/* The known portal names, NULL-terminated. */
const char *const *pt_portal_names(void);

/*
 * Creates the portal name, trusting pki_dir/<name>/chain.pem and checking
 * revocation against pki_dir/<name>/crl.pem when present (re-read when the
 * file changes). admin enables the admin routes.
 */
int pt_portal_new(pt_portal **out, const char *name, const char *pki_dir,
		  int admin);

const char *pt_portal_name(const pt_portal *p);

/*
 * Answers one request. Thread-safe: requests to one portal are serialised
 * by the portal's own lock. resp is overwritten; release it with
 * pt_response_clear().
 */
void pt_portal_handle(pt_portal *p, const pt_request *req, pt_response *resp);

void pt_response_clear(pt_response *resp);

/*
 * A printable copy of client text for logs and messages: valid UTF-8
 * passes, control characters, DEL, backslash and bytes outside UTF-8 are
 * written \xNN. Always NUL-terminated (cut at a whole character); returns
 * the length written.
 */
size_t pt_escape(const char *in, char *buf, size_t size);

void pt_portal_free(pt_portal *p);

#endif
