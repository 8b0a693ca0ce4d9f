/*
 * The harness's HTTP client of the portals: one libcurl handle per portal,
 * TLS verified against the fixture root, the connection kept alive between
 * requests, every request bounded by a timeout.
 */
#ifndef TR_HARNESS_PORTAL_CLIENT_H
#define TR_HARNESS_PORTAL_CLIENT_H

#include <jansson.h>
#include <stddef.h>

typedef struct tr_portal_client tr_portal_client;

typedef struct tr_http_answer {
	long status;      /* HTTP status */
	json_t *json;     /* parsed body; NULL when it is not JSON */
	char *body;       /* raw body, NUL-terminated */
	size_t body_len;
} tr_http_answer;

int tr_portal_client_new(tr_portal_client **out, const char *base_url,
			 const char *ca_bundle, unsigned timeout_ms);
void tr_portal_client_free(tr_portal_client *pc);

const char *tr_portal_client_url(const tr_portal_client *pc);

/*
 * Sends method path (relative to the base URL) with an optional JSON body
 * and bearer session. Returns 0 when an HTTP answer arrived (whatever its
 * status), TR_ETIMEDOUT or TR_EIO when none did.
 */
int tr_portal_client_request(tr_portal_client *pc, const char *method,
			     const char *path, const char *bearer,
			     const char *body, size_t body_len,
			     tr_http_answer *ans);

void tr_http_answer_clear(tr_http_answer *ans);

#endif
