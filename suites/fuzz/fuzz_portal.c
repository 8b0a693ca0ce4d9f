/*
 * libFuzzer: pt_portal_handle() answers any request with one JSON object
 * and a status, never crashes or leaks, whatever the method, path,
 * Content-Type, Authorization and body. The input picks the portal and
 * the request; sessions the fuzzer cannot guess are covered by a login-free
 * portal state plus the password logins, which it can reach.
 *
 * Input: byte 0 = portal, byte 1 = method, byte 2 = content type, then
 * "path\nauthorization\nbody". The path is the request target as sent
 * (percent-escapes undecoded: the portal decodes it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/fsutil.h"
#include "emulators/portal/portal.h"
#include "fixtures/pki.h"
#include "fixtures/provinces.h"

static pt_portal *portals[FX_PROVINCE_COUNT];
static char dir[] = "/tmp/tokenrig-fuzz-portal-XXXXXX";

static void cleanup(void)
{
	size_t i;

	for (i = 0; i < FX_PROVINCE_COUNT; i++)
		pt_portal_free(portals[i]);
	tr_fs_remove_tree(dir);
}

static int setup(void)
{
	const char *const *names = pt_portal_names();
	fx_pki *pki = NULL;
	size_t i;

	if (!mkdtemp(dir) || fx_pki_create(&pki, dir, time(NULL)) < 0)
		return -1;
	fx_pki_free(pki);
	for (i = 0; i < FX_PROVINCE_COUNT && names[i]; i++)
		if (pt_portal_new(&portals[i], names[i], dir, 1) < 0)
			return -1;
	atexit(cleanup);
	return 0;
}

/* The next '\n'-terminated piece of [*p, end) as a NUL-terminated copy. */
static char *piece(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl ? 1 : 0);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A method with a byte outside UTF-8 (issue 13) must still give a
	 * valid JSON answer; the parameters of a Content-Type are parsed. */
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE",
					       "G\xffT" };
	static const char *const types[] = {
		"application/json", NULL, "text/plain",
		"application/json; charset=utf-8", "application/json; charset=latin1",
		"application/json; charset=\"utf-8\"; q=\"a\\\"b\"",
	};
	static int ready;
	const uint8_t *p = data + 3, *end = data + size;
	pt_request req;
	pt_response resp;
	json_error_t jerr;
	json_t *answer;
	char *path, *auth;
	pt_portal *portal;

	if (!ready) {
		if (setup() < 0)
			abort();
		ready = 1;
	}
	if (size < 3)
		return 0;
	portal = portals[data[0] % FX_PROVINCE_COUNT];
	path = piece(&p, end);
	auth = piece(&p, end);
	req.method = methods[data[1] % 5];
	req.path = path;
	req.content_type = types[data[2] % 6];
	req.authorization = auth[0] ? auth : NULL;
	req.body = (const char *)p;
	req.body_len = (size_t)(end - p);

	pt_portal_handle(portal, &req, &resp);
	if (!resp.body || resp.status < 200 || resp.status > 599)
		abort();
	answer = json_loadb(resp.body, resp.body_len, 0, &jerr);
	if (!json_is_object(answer))
		abort();
	json_decref(answer);
	pt_response_clear(&resp);
	free(path);
	free(auth);
	/* Keep the state small: now and then start from scratch. */
	if (data[1] == 0xff) {
		static const char reset[] = "{}";
		pt_request r = { "POST", "/admin/reset", "application/json", NULL,
				 reset, 2 };

		pt_portal_handle(portal, &r, &resp);
		pt_response_clear(&resp);
	}
	return 0;
}
