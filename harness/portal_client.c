#include "harness/portal_client.h"

#include "common/buf.h"
#include "common/error.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANSWER (1024 * 1024)

struct tr_portal_client {
	CURL *curl;
	char *base_url;
	char *ca_bundle;
	unsigned timeout_ms;
};

typedef struct sink {
	tr_buf b;
	int overflow;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	sink *s = userdata;
	size_t n = size * nmemb;

	if (s->b.len + n + 1 > MAX_ANSWER) {
		s->overflow = 1;
		return 0; /* aborts the transfer */
	}
	tr_buf_put(&s->b, ptr, n);
	return s->b.oom ? 0 : n;
}

int tr_portal_client_new(tr_portal_client **out, const char *base_url,
			 const char *ca_bundle, unsigned timeout_ms)
{
	static int global_done;
	tr_portal_client *pc;

	if (!global_done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		global_done = 1;
	}
	pc = calloc(1, sizeof(*pc));
	if (!pc || !(pc->base_url = strdup(base_url)) ||
	    !(pc->ca_bundle = strdup(ca_bundle)) || !(pc->curl = curl_easy_init())) {
		tr_portal_client_free(pc);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	/* A trailing slash would double up with the paths' leading one. */
	size_t n = strlen(pc->base_url);
	if (n > 0 && pc->base_url[n - 1] == '/')
		pc->base_url[n - 1] = '\0';
	pc->timeout_ms = timeout_ms;
	*out = pc;
	return 0;
}

void tr_portal_client_free(tr_portal_client *pc)
{
	if (!pc)
		return;
	if (pc->curl)
		curl_easy_cleanup(pc->curl);
	free(pc->base_url);
	free(pc->ca_bundle);
	free(pc);
}

const char *tr_portal_client_url(const tr_portal_client *pc)
{
	return pc->base_url;
}

void tr_http_answer_clear(tr_http_answer *ans)
{
	json_decref(ans->json);
	free(ans->body);
	memset(ans, 0, sizeof(*ans));
}

int tr_portal_client_request(tr_portal_client *pc, const char *method,
			     const char *path, const char *bearer,
			     const char *body, size_t body_len,
			     tr_http_answer *ans)
{
	struct curl_slist *headers = NULL;
	char url[2048], auth[512];
	sink s = { 0 };
	CURL *c = pc->curl;
	CURLcode cc;
	int error = 0;

	memset(ans, 0, sizeof(*ans));
	if (snprintf(url, sizeof(url), "%s%s", pc->base_url, path) >= (int)sizeof(url))
		return tr_error_set(TR_EINVAL, "URL too long: %s%s", pc->base_url, path);

	/* Reset the options but keep the live connection in the handle. */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, pc->ca_bundle);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)pc->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)pc->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	if (bearer && *bearer) {
		if (snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer) >=
		    (int)sizeof(auth)) {
			error = tr_error_set(TR_EINVAL, "a bearer token of %zu characters: too long",
					     strlen(bearer));
			goto out;
		}
		headers = curl_slist_append(headers, auth);
	}
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		if (s.b.oom)
			error = tr_error_set(TR_ENOMEM, "%s %s: out of memory", method, url);
		else if (s.overflow)
			error = tr_error_set(TR_EIO, "%s %s: answer larger than %d bytes",
					     method, url, MAX_ANSWER);
		else
			error = tr_error_set(cc == CURLE_OPERATION_TIMEDOUT ? TR_ETIMEDOUT : TR_EIO,
					     "%s %s: %s", method, url, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ans->status);
	ans->body = s.b.data ? s.b.data : strdup("");
	ans->body_len = s.b.len;
	s.b.data = NULL;
	if (!ans->body) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	ans->json = json_loadb(ans->body, ans->body_len, 0, NULL);
out:
	tr_buf_free(&s.b);
	curl_slist_free_all(headers);
	return error;
}
