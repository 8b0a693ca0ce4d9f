/*
 * The mock portal's request handling (emulators/portal/API.md), called
 * through pt_portal_handle() without sockets, against a real test PKI.
 */
#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/portal/portal.h"
#include "emulators/portal/portal_server.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"
#include "portal_testkit.h"

/* Catalog texts (failure-paths.md section 1), byte for byte. */
#define TXT_NOT_REGISTERED \
	"该证书查询不到对应的单位账户信息，无法登录，请先注册该单位帐号"
#define TXT_ALREADY_REGISTERED "组织信息已成功注册，无法保存！"
#define TXT_PHONE_TAKEN "经办人手机号已注册"

static void portal_setup(void)
{
	ck_assert_int_eq(pt_portal_new(&portal, "suzhou", pki_dir, 1), 0);
}

/* ---- keys, certificates, signatures ---- */

static void unit_make(unit_id *u, unsigned index, fx_key_alg alg,
		      fx_variant variant)
{
	memset(u, 0, sizeof(*u));
	u->alg = alg;
	ck_assert_int_eq(fx_unit_generate(&u->unit, SEED, "suzhou", index), 0);
	ck_assert_int_eq(fx_key_generate(alg, &u->key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", u->key, &u->unit,
					   variant, &u->cert), 0);
}

/* Same key, a new certificate for (possibly changed) unit data. */
static void unit_reissue(unit_id *u)
{
	X509_free(u->cert);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", u->key, &u->unit,
					   FX_VARIANT_VALID, &u->cert), 0);
}

/* ---- generic request handling ---- */

START_TEST(test_root_and_ui)
{
	json_t *texts;

	ck_ok(get("/"), 200);
	ck_assert_str_eq(str("portal"), "suzhou");
	ck_assert_int_eq(json_integer_value(json_object_get(last.body, "api")), 1);
	ck_assert_int_eq(json_array_size(json_object_get(last.body, "sites")), 4);

	ck_ok(get("/reg/ui"), 200);
	texts = json_object_get(last.body, "texts");
	ck_assert_str_eq(json_string_value(json_object_get(texts, "pin_incorrect")),
			 "证书密码错误");
	ck_assert_int_eq(json_object_size(texts), 6);

	ck_ok(get("/hall/ui"), 200);
	texts = json_object_get(last.body, "texts");
	ck_assert_str_eq(json_string_value(json_object_get(texts, "pin_incorrect")),
			 "密码校验失败");

	ck_ok(get("/hr/ui"), 200);
	texts = json_object_get(last.body, "texts");
	ck_assert_str_eq(json_string_value(json_object_get(texts, "pin_incorrect")),
			 "密码校验失败");
	ck_assert_str_eq(json_string_value(json_object_get(texts, "read_failed")),
			 "获取信息失败");
	ck_assert_str_eq(json_string_value(json_object_get(texts,
							   "assistant_exception")),
			 "调用CA出现异常");
}
END_TEST

START_TEST(test_malformed_json)
{
	ck_error(post("/hall/challenge", NULL, "{\"a\":"), 400, "BAD_JSON");
	ck_assert_ptr_nonnull(strstr(str("message"), "1:"));
	ck_error(post("/hall/challenge", NULL, "%s", ""), 400, "BAD_JSON");
	ck_error(post("/hall/challenge", NULL, "{} {}"), 400, "BAD_JSON");
	ck_error(post("/hall/challenge", NULL, "{\"a\":1,\"a\":2}"), 400, "BAD_JSON");
}
END_TEST

START_TEST(test_non_object_json)
{
	ck_error(post("/hall/challenge", NULL, "[]"), 400, "BAD_JSON");
	ck_error(post("/hall/challenge", NULL, "\"x\""), 400, "BAD_JSON");
	ck_error(post("/hall/challenge", NULL, "42"), 400, "BAD_JSON");
}
END_TEST

START_TEST(test_fields)
{
	/* missing */
	ck_error(post("/hall/login", NULL,
		      "{\"nonce\":\"a\",\"certificate\":\"b\",\"signature\":\"c\","
		      "\"algorithm\":\"ecdsa-sha256\"}"), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'assistant'"));
	/* unknown */
	ck_error(post("/hall/challenge", NULL, "{\"extra\":1}"), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'extra'"));
	/* wrong type */
	ck_error(post("/hall/login", NULL,
		      "{\"nonce\":1,\"certificate\":\"b\",\"signature\":\"c\","
		      "\"algorithm\":\"ecdsa-sha256\",\"assistant\":\"1\"}"),
		 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'nonce'"));
	ck_error(post("/admin/clock", NULL, "{\"now\":\"soon\"}"), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'now'"));
	ck_error(post("/admin/clock", NULL, "{\"now\":1.5}"), 400, "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{}"), 400, "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{\"now\":1,\"advance\":1}"), 400,
		 "BAD_FIELD");
}
END_TEST

START_TEST(test_bad_utf8)
{
	static const char bodies[][16] = {
		"{\"a\":\"\xff\"}",
		"{\"a\":\"\xc0\xaf\"}",          /* overlong '/' */
		"{\"a\":\"\xed\xa0\x80\"}",      /* surrogate */
		"{\"a\":\"\xe4\xb8\"}",          /* cut sequence */
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ck_error(raw(portal, "POST", "/hall/challenge", "application/json",
			     NULL, bodies[i], strlen(bodies[i])), 400, "BAD_UTF8");
	}
	/* Valid multi-byte text passes to the field check. */
	ck_error(post("/hall/challenge", NULL, "{\"单位\":\"苏州\"}"), 400,
		 "BAD_FIELD");
}
END_TEST

START_TEST(test_content_type)
{
	ck_error(raw(portal, "POST", "/hall/challenge", NULL, NULL, "{}", 2),
		 415, "BAD_CONTENT_TYPE");
	ck_error(raw(portal, "POST", "/hall/challenge", "text/plain", NULL,
		     "{}", 2), 415, "BAD_CONTENT_TYPE");
	ck_error(raw(portal, "POST", "/hall/challenge", "application/jsonx",
		     NULL, "{}", 2), 415, "BAD_CONTENT_TYPE");
	ck_error(raw(portal, "POST", "/hall/challenge",
		     "application/json; charset=latin1", NULL, "{}", 2), 415,
		 "BAD_CONTENT_TYPE");
	ck_ok(raw(portal, "POST", "/hall/challenge",
		  "Application/JSON; charset=UTF-8", NULL, "{}", 2), 200);
	/* Issue 13: the whole charset value, and well-formed parameters
	 * (before: five characters compared, the rest ignored). */
	static const char *const bad[] = {
		"application/json; charset=utf-8x",
		"application/json; charset=utf-8; charset=latin1",
		"application/json; charset=\"utf-8",
		"application/json; charset=",
		"application/json; charset",
		"application/json x",
		"application/json; a=b c",
	};
	static const char *const good[] = {
		"application/json;charset=utf-8",
		"application/json; charset=\"utf-8\"",
		"application/json ; foo=bar; charset=utf-8 ",
		"application/json;",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_error(raw(portal, "POST", "/hall/challenge", bad[i], NULL,
			     "{}", 2), 415, "BAD_CONTENT_TYPE");
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_ok(raw(portal, "POST", "/hall/challenge", good[i], NULL,
			  "{}", 2), 200);
}
END_TEST

/* Issue 13: the path is decoded by the portal; "%00" or a bad escape
 * never reaches a route (before, through the server: 200). */
START_TEST(test_path_escapes)
{
	static const char *const bad[] = {
		"/hall/ui%00junk", "/hall/ui%zz", "/hall/ui%2", "/hall/ui%",
		"/hall/ui%0a", "/hall/%00",
	};
	char *longpath;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_error(get(bad[i]), 400, "BAD_PATH");
	ck_ok(get("/hall/%75i"), 200);
	ck_ok(get("/hall/ui?x=%00"), 200); /* the query is ignored */
	ck_error(get("/hall/ui%2F"), 404, "NOT_FOUND");
	longpath = malloc(PT_URI_MAX + 2);
	ck_assert_ptr_nonnull(longpath);
	memset(longpath, 'a', PT_URI_MAX + 1);
	longpath[0] = '/';
	longpath[PT_URI_MAX + 1] = '\0';
	ck_error(get(longpath), 414, "URI_TOO_LONG");
	free(longpath);
}
END_TEST

/* Issue 13: bytes outside UTF-8 in the method are escaped in the message
 * (before: the message was cut at the bad byte). */
START_TEST(test_method_escaped)
{
	char buf[64];

	ck_error(raw(portal, "G\xffT", "/", NULL, NULL, NULL, 0), 405,
		 "METHOD_NOT_ALLOWED");
	ck_assert_str_eq(str("message"), "method G\\xffT not allowed on /");
	pt_escape("a\n\\\xe4\xb8\xad\xe4\xb8\x7f\xc0\xaf", buf, sizeof(buf));
	ck_assert_str_eq(buf, "a\\x0a\\x5c\xe4\xb8\xad\\xe4\\xb8\\x7f\\xc0\\xaf");
	pt_escape("\xff\xff", buf, 6);
	ck_assert_str_eq(buf, "\\xff");
}
END_TEST

START_TEST(test_body_too_large)
{
	size_t len = PT_BODY_MAX + 1;
	char *big = malloc(len);

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', len);
	big[0] = '{';
	big[len - 1] = '}';
	ck_error(raw(portal, "POST", "/hall/challenge", "application/json",
		     NULL, big, len), 413, "BODY_TOO_LARGE");
	/* Exactly the cap is fine. */
	big[PT_BODY_MAX - 1] = '}';
	ck_ok(raw(portal, "POST", "/hall/challenge", "application/json", NULL,
		  big, PT_BODY_MAX), 200);
	free(big);
}
END_TEST

START_TEST(test_routes)
{
	ck_error(get("/nope"), 404, "NOT_FOUND");
	ck_error(get("/hall"), 404, "NOT_FOUND");
	ck_error(get("/hebei/ui"), 404, "NOT_FOUND");
	ck_error(get("/hall/login"), 405, "METHOD_NOT_ALLOWED");
	ck_error(post("/hall/ui", NULL, "{}"), 405, "METHOD_NOT_ALLOWED");
	ck_error(raw(portal, "DELETE", "/", NULL, NULL, NULL, 0), 405,
		 "METHOD_NOT_ALLOWED");
	/* A query string does not change the route. */
	ck_ok(get("/hall/ui?x=1"), 200);
}
END_TEST

START_TEST(test_admin_disabled)
{
	pt_portal *closed;

	ck_assert_int_eq(pt_portal_new(&closed, "suzhou", pki_dir, 0), 0);
	ck_error(raw(closed, "POST", "/admin/reset", "application/json", NULL,
		     "{}", 2), 403, "ADMIN_DISABLED");
	ck_error(raw(closed, "GET", "/admin/clock", NULL, NULL, NULL, 0), 403,
		 "ADMIN_DISABLED");
	ck_error(raw(closed, "GET", "/admin/other", NULL, NULL, NULL, 0), 403,
		 "ADMIN_DISABLED");
	pt_portal_free(closed);
}
END_TEST

START_TEST(test_admin_clock)
{
	json_int_t now;

	ck_ok(get("/admin/clock"), 200);
	now = json_integer_value(json_object_get(last.body, "now"));
	ck_assert(now > 1600000000);
	ck_ok(post("/admin/clock", NULL, "{\"now\":2000000000}"), 200);
	ck_assert(json_integer_value(json_object_get(last.body, "now")) - 2000000000 < 5);
	ck_ok(post("/admin/clock", NULL, "{\"advance\":-1000000000}"), 200);
	ck_assert(json_integer_value(json_object_get(last.body, "now")) - 1000000000 < 5);
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	ck_ok(get("/admin/clock"), 200);
	ck_assert(json_integer_value(json_object_get(last.body, "now")) - now < 5);
}
END_TEST

/* Issue 13: every admin integer is range-checked (before: now = INT64_MAX
 * was taken, and advance wrapped the clock to -2). */
START_TEST(test_admin_clock_range)
{
	ck_error(post("/admin/clock", NULL, "{\"now\":9223372036854775807}"), 400,
		 "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{\"now\":253402300800}"), 400,
		 "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{\"advance\":9223372036854775807}"),
		 400, "BAD_FIELD");
	ck_error(post("/admin/clock", NULL,
		      "{\"advance\":-9223372036854775807}"), 400, "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{\"now\":-1}"), 400, "BAD_FIELD");
	ck_ok(post("/admin/clock", NULL, "{\"now\":253402300000}"), 200);
	ck_error(post("/admin/clock", NULL, "{\"advance\":1000}"), 400,
		 "BAD_FIELD");
	ck_error(post("/admin/clock", NULL, "{\"wday\":1}"), 400, "BAD_FIELD");
	ck_ok(get("/admin/clock"), 200);
	ck_assert(json_integer_value(json_object_get(last.body, "now")) -
		  253402300000 < 5);
	ck_ok(post("/admin/clock", NULL, "{\"advance\":-253402300000}"), 200);
	ck_assert(json_integer_value(json_object_get(last.body, "now")) < 5);
}
END_TEST

START_TEST(test_unknown_portal)
{
	pt_portal *p = NULL;

	ck_assert_int_lt(pt_portal_new(&p, "atlantis", pki_dir, 1), 0);
	ck_assert_ptr_null(p);
	ck_assert_int_lt(pt_portal_new(&p, "suzhou", "/nonexistent/pki", 1), 0);
	ck_assert_ptr_null(p);
}
END_TEST

/* ---- sessions and challenges ---- */

START_TEST(test_sessions)
{
	unit_id u;
	char sess[80];

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	ck_error(post("/reg/units", NULL, "{}"), 401, "NO_SESSION");
	ck_error(post("/reg/units", "0123456789abcdef0123456789abcdef", "{}"),
		 401, "NO_SESSION");
	ck_error(raw(portal, "POST", "/reg/units", "application/json",
		     "Basic dXNlcjpwdw==", "{}", 2), 401, "NO_SESSION");

	login_ok("reg", &u, sess, sizeof(sess));
	/* A reg session is not a hall session. */
	ck_error(post("/hall/declarations", sess,
		      "{\"document\":\"d\",\"signature\":\"AA==\",\"algorithm\":\"ecdsa-sha256\"}"),
		 401, "NO_SESSION");
	ck_error(post("/hall/logout", sess, "{}"), 401, "NO_SESSION");
	/* Still valid after 29 minutes, each use counts... */
	advance(29 * 60);
	ck_error(post("/reg/units", sess, "{}"), 400, "BAD_FIELD");
	/* ...and gone after 31 idle minutes. */
	advance(31 * 60);
	ck_error(post("/reg/units", sess, "{}"), 401, "NO_SESSION");

	login_ok("reg", &u, sess, sizeof(sess));
	ck_ok(post("/reg/logout", sess, "{}"), 200);
	ck_error(post("/reg/logout", sess, "{}"), 401, "NO_SESSION");
	unit_free(&u);
}
END_TEST

static const answer *with_auth(const char *path, const char *auth)
{
	return raw(portal, "POST", path, "application/json", auth, "{}", 2);
}

/* Issue 13: "Bearer <session>" and nothing more (before: trailing words
 * were ignored). */
START_TEST(test_bearer_strict)
{
	unit_id u;
	char sess[80], auth[256];
	static const char *const bad[] = {
		"Bearer %s trailing-garbage", "Bearer %s,x", "Bearer%s",
		"Bearer %s\"", "Basic %s", "Bearer  %s x", "Bearer %s%%",
	};
	size_t i;

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	login_ok("reg", &u, sess, sizeof(sess));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(auth, sizeof(auth), bad[i], sess);
		ck_error(with_auth("/reg/units", auth), 401, "NO_SESSION");
	}
	/* Case-insensitive scheme, extra spaces, trailing whitespace. */
	snprintf(auth, sizeof(auth), "bearer   %s \t", sess);
	ck_error(with_auth("/reg/units", auth), 400, "BAD_FIELD");
	snprintf(auth, sizeof(auth), "Bearer %s", sess);
	ck_ok(with_auth("/reg/logout", auth), 200);
	unit_free(&u);
}
END_TEST

/* Issue 13: challenges are capped per site and live ones are never
 * evicted (before: 4096 for the whole portal, the oldest gave way, so a
 * flood at one site cancelled another site's pending login). */
START_TEST(test_challenge_cap)
{
	char nonce[64], text[256];
	unit_id u;
	int i;

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	for (i = 0; i < 4096; i++)
		ck_ok(post("/hall/challenge", NULL, "{}"), 200);
	ck_error(post("/hall/challenge", NULL, "{}"), 429, "TOO_MANY_CHALLENGES");
	/* Another site is untouched: it issues, and the pending one logs in. */
	ck_ok(post("/hr/challenge", NULL, "{}"), 200);
	ck_ok(login_with("reg", &u, nonce, text), 200);
	/* Expired challenges give way to new ones. */
	advance(121);
	ck_ok(post("/hall/challenge", NULL, "{}"), 200);
	unit_free(&u);
}
END_TEST

START_TEST(test_nonce_replay)
{
	unit_id u;
	char nonce[64], text[256];

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	ck_ok(login_with("reg", &u, nonce, text), 200);
	ck_error(login_with("reg", &u, nonce, text), 401, "CHALLENGE_UNKNOWN");
	/* Never issued. */
	ck_error(login_with("reg", &u, "00000000000000000000000000000000", text),
		 401, "CHALLENGE_UNKNOWN");
	/* Issued for another site. */
	challenge("hall", nonce, sizeof(nonce), text, sizeof(text));
	ck_error(login_with("reg", &u, nonce, text), 401, "CHALLENGE_UNKNOWN");
	/* A failed login spends the nonce too. */
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	ck_error(login_with("reg", &u, nonce, "other text"), 403,
		 "SIGNATURE_INVALID");
	ck_error(login_with("reg", &u, nonce, text), 401, "CHALLENGE_UNKNOWN");
	unit_free(&u);
}
END_TEST

START_TEST(test_nonce_expired)
{
	unit_id u;
	char nonce[64], text[256];

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	advance(121);
	ck_error(login_with("reg", &u, nonce, text), 401, "CHALLENGE_EXPIRED");
	/* Within 120 s it is still in time. */
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	advance(110);
	ck_ok(login_with("reg", &u, nonce, text), 200);
	unit_free(&u);
}
END_TEST

START_TEST(test_login_format)
{
	unit_id u;
	char nonce[64], text[256], *cert;

	unit_make(&u, 0, FX_KEY_EC_P256, FX_VARIANT_VALID);
	cert = cert_b64(u.cert);
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	ck_error(post("/reg/login", NULL,
		      "{\"nonce\":\"%s\",\"certificate\":\"%s\",\"signature\":\"AA==\","
		      "\"algorithm\":\"md5\",\"assistant\":\"1\"}", nonce, cert),
		 400, "ALG_UNSUPPORTED");
	ck_error(post("/reg/login", NULL,
		      "{\"nonce\":\"%s\",\"certificate\":\"bm90IGEgY2VydA==\","
		      "\"signature\":\"AA==\",\"algorithm\":\"ecdsa-sha256\","
		      "\"assistant\":\"1\"}", nonce), 400, "CERT_INVALID");
	ck_error(post("/reg/login", NULL,
		      "{\"nonce\":\"%s\",\"certificate\":\"%%%%\","
		      "\"signature\":\"AA==\",\"algorithm\":\"ecdsa-sha256\","
		      "\"assistant\":\"1\"}", nonce), 400, "CERT_INVALID");
	ck_error(post("/reg/login", NULL,
		      "{\"nonce\":\"%s\",\"certificate\":\"%s\",\"signature\":\"A\","
		      "\"algorithm\":\"ecdsa-sha256\",\"assistant\":\"1\"}",
		      nonce, cert), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'signature'"));
	/* Format errors leave the challenge usable. */
	ck_ok(login_with("reg", &u, nonce, text), 200);
	free(cert);
	unit_free(&u);
}
END_TEST

/* ---- certificate checks ---- */

static void expect_ca_failure(const answer *a, const char *code, int status)
{
	char msg[128];

	ck_error(a, 403, code);
	ck_assert_int_eq(json_integer_value(json_object_get(a->body, "status")),
			 status);
	snprintf(msg, sizeof(msg), "CA验签结果失败，状态码：%d", status);
	ck_assert_str_eq(str("message"), msg);
}

START_TEST(test_cert_checks)
{
	unit_id u;

	unit_make(&u, 1, FX_KEY_EC_P256, FX_VARIANT_WRONG_CHAIN);
	expect_ca_failure(login("reg", &u), "CERT_CHAIN", 820);
	/* Chain before validity: a foreign certificate out of its time
	 * still answers 820. */
	advance(3 * 365 * 86400);
	expect_ca_failure(login("reg", &u), "CERT_CHAIN", 820);
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	unit_free(&u);

	unit_make(&u, 1, FX_KEY_EC_P256, FX_VARIANT_EXPIRED);
	expect_ca_failure(login("reg", &u), "CERT_EXPIRED", 810);
	unit_free(&u);

	unit_make(&u, 1, FX_KEY_EC_P256, FX_VARIANT_NOT_YET_VALID);
	expect_ca_failure(login("reg", &u), "CERT_NOT_YET_VALID", 809);
	/* At a portal time inside its validity it passes. */
	advance(31 * 86400);
	ck_ok(login("reg", &u), 200);
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	unit_free(&u);

	/* Revoked while the portal runs: the CRL is read again. */
	unit_make(&u, 1, FX_KEY_EC_P256, FX_VARIANT_REVOKED);
	expect_ca_failure(login("reg", &u), "CERT_REVOKED", 823);
	/* Validity before revocation. */
	advance(2 * 365 * 86400);
	expect_ca_failure(login("reg", &u), "CERT_EXPIRED", 810);
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	unit_free(&u);
}
END_TEST

/*
 * A portal's own texts for checks 2-3 (pt_portal_def.ca_texts, Hebei):
 * its rows replace the status-code answer, a status it does not list keeps
 * it, and a portal without rows (Suzhou) is unchanged.
 */
START_TEST(test_cert_checks_own_texts)
{
	unit_id u;

	pt_portal_free(portal);
	ck_assert_int_eq(pt_portal_new(&portal, "hebei", pki_dir, 1), 0);
	memset(&u, 0, sizeof(u));
	u.alg = FX_KEY_EC_P256;
	ck_assert_int_eq(fx_unit_generate(&u.unit, SEED, "hebei", 1), 0);
	ck_assert_int_eq(fx_key_generate(u.alg, &u.key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "hebei", u.key, &u.unit,
					   FX_VARIANT_REVOKED, &u.cert), 0);
	ck_error(login("prov", &u), 403, "HB_CERT_REVOKED");
	ck_assert_ptr_null(json_object_get(last.body, "status"));
	ck_assert_str_eq(str("remedy"), "丢失补办");
	ck_assert_ptr_null(strstr(str("message"), "状态码"));
	unit_free(&u);

	/* Not listed by Hebei: the chain keeps the status-code answer. */
	unit_make(&u, 1, FX_KEY_EC_P256, FX_VARIANT_VALID);
	expect_ca_failure(login("prov", &u), "CERT_CHAIN", 820);
	unit_free(&u);

	pt_portal_free(portal);
	ck_assert_int_eq(pt_portal_new(&portal, "suzhou", pki_dir, 1), 0);
	unit_make(&u, 2, FX_KEY_EC_P256, FX_VARIANT_REVOKED);
	expect_ca_failure(login("reg", &u), "CERT_REVOKED", 823);
	ck_assert_ptr_null(json_object_get(last.body, "remedy"));
	unit_free(&u);
}
END_TEST

START_TEST(test_signature_checks)
{
	unit_id u;
	char nonce[64], text[256], *cert, *sig;

	unit_make(&u, 2, FX_KEY_EC_P256, FX_VARIANT_VALID);
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	expect_ca_failure(login_with("reg", &u, nonce, "tampered"),
			  "SIGNATURE_INVALID", 800);

	/* An ECDSA signature declared as RSA does not verify. */
	challenge("reg", nonce, sizeof(nonce), text, sizeof(text));
	cert = cert_b64(u.cert);
	sig = sign_b64(u.key, u.alg, text);
	expect_ca_failure(post("/reg/login", NULL,
			       "{\"nonce\":\"%s\",\"certificate\":\"%s\",\"signature\":\"%s\","
			       "\"algorithm\":\"rsa-pkcs1-sha256\",\"assistant\":\"1\"}",
			       nonce, cert, sig), "SIGNATURE_INVALID", 800);
	free(cert);
	free(sig);
	unit_free(&u);
}
END_TEST

START_TEST(test_algorithms)
{
	static const fx_key_alg algs[] = { FX_KEY_EC_P256, FX_KEY_RSA_2048,
					   FX_KEY_SM2 };
	unit_id u;
	size_t i;

	for (i = 0; i < 3; i++) {
		unit_make(&u, 3 + (unsigned)i, algs[i], FX_VARIANT_VALID);
		ck_ok(login("reg", &u), 200);
		ck_assert_str_eq(json_string_value(json_object_get(
			json_object_get(last.body, "unit"), "uscc")), u.unit.uscc);
		ck_assert_str_eq(json_string_value(json_object_get(
			json_object_get(last.body, "unit"), "name")), u.unit.unit_name);
		unit_free(&u);
	}
}
END_TEST

/* ---- Suzhou business rules ---- */

START_TEST(test_sz_register_and_login)
{
	unit_id u;
	char reg[80], hall[80], hr[80];

	unit_make(&u, 10, FX_KEY_EC_P256, FX_VARIANT_VALID);
	/* SZ-E01 */
	ck_error(login("hall", &u), 403, "SZ_NOT_REGISTERED");
	ck_assert_str_eq(str("message"), TXT_NOT_REGISTERED);
	/* The HR hall goes by the CA对照 table instead (JS-E02). */
	ck_error(login("hr", &u), 403, "JS_NO_CA_MAPPING");

	/* SZ-REG-OK */
	login_ok("reg", &u, reg, sizeof(reg));
	ck_ok(register_unit(reg, &u.unit, NULL), 201);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(last.body, "unit"), "uscc")), u.unit.uscc);

	/* SZ-E05 */
	ck_error(register_unit(reg, &u.unit, NULL), 409, "SZ_ALREADY_REGISTERED");
	ck_assert_str_eq(str("message"), TXT_ALREADY_REGISTERED);

	/* SZ-LOGIN-OK, JS-LOGIN-OK */
	login_ok("hall", &u, hall, sizeof(hall));
	ck_ok(post("/admin/suzhou/hr-units", NULL,
		   "{\"ss_number\":\"%s\",\"unit_name\":\"%s\",\"uscc\":\"%s\"}",
		   u.unit.ss_number, u.unit.unit_name, u.unit.uscc), 200);
	ck_ok(post("/admin/suzhou/ca-mappings", NULL,
		   "{\"uscc\":\"%s\",\"ss_number\":\"%s\"}", u.unit.uscc,
		   u.unit.ss_number), 200);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_ok(post("/hall/logout", hall, "{}"), 200);
	ck_ok(post("/hr/logout", hr, "{}"), 200);

	/* admin reset forgets the registration */
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	ck_error(login("hall", &u), 403, "SZ_NOT_REGISTERED");
	ck_error(post("/reg/units", reg, "{}"), 401, "NO_SESSION");
	unit_free(&u);
}
END_TEST

START_TEST(test_sz_register_validation)
{
	unit_id u, other;
	fx_unit f;
	char reg[80];

	unit_make(&u, 11, FX_KEY_EC_P256, FX_VARIANT_VALID);
	unit_make(&other, 12, FX_KEY_EC_P256, FX_VARIANT_VALID);
	login_ok("reg", &u, reg, sizeof(reg));

	f = u.unit;
	f.uscc[17] = f.uscc[17] == '0' ? '1' : '0';
	ck_error(register_unit(reg, &f, NULL), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'uscc'"));

	f = u.unit;
	f.operator_id[17] = f.operator_id[17] == '0' ? '1' : '0';
	ck_error(register_unit(reg, &f, NULL), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'operator_id'"));

	ck_error(register_unit(reg, &u.unit, "1380013800"), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'operator_phone'"));
	ck_error(register_unit(reg, &u.unit, "23800138000"), 400, "BAD_FIELD");
	ck_error(register_unit(reg, &u.unit, "1380013800a"), 400, "BAD_FIELD");

	f = u.unit;
	f.unit_name[0] = '\0';
	ck_error(register_unit(reg, &f, NULL), 400, "BAD_FIELD");
	ck_assert_ptr_nonnull(strstr(str("message"), "'unit_name'"));

	/* Another unit's (valid) USCC than the certificate's. */
	ck_error(register_unit(reg, &other.unit, NULL), 403, "SZ_UNIT_MISMATCH");
	ck_assert_str_eq(str("message"), "单位信息与证书不一致");

	/* SZ-E07: the phone of another registration. */
	ck_ok(register_unit(reg, &u.unit, NULL), 201);
	login_ok("reg", &other, reg, sizeof(reg));
	ck_error(register_unit(reg, &other.unit, u.unit.operator_phone), 409,
		 "SZ_PHONE_TAKEN");
	ck_assert_str_eq(str("message"), TXT_PHONE_TAKEN);
	ck_ok(register_unit(reg, &other.unit, NULL), 201);
	unit_free(&u);
	unit_free(&other);
}
END_TEST

START_TEST(test_sz_stale_certificate)
{
	unit_id u;
	fx_unit current;
	char reg[80];

	/* SZ-E06: registered with the current name, the certificate still
	 * carries the old one. */
	unit_make(&u, 13, FX_KEY_EC_P256, FX_VARIANT_VALID);
	current = u.unit;
	ck_assert_int_lt(strlen(current.unit_name) + sizeof("（新）"),
			 sizeof(current.unit_name));
	strcat(current.unit_name, "（新）");
	login_ok("reg", &u, reg, sizeof(reg));
	ck_ok(register_unit(reg, &current, NULL), 201);
	ck_error(login("hall", &u), 403, "SZ_NOT_REGISTERED");
	ck_assert_str_eq(str("message"), TXT_NOT_REGISTERED);
	/* The CA issues a certificate with the current data. */
	u.unit = current;
	unit_reissue(&u);
	ck_ok(login("hall", &u), 200);
	unit_free(&u);
}
END_TEST

START_TEST(test_sz_declarations)
{
	unit_id u;
	char reg[80], hall[80], *sig;
	const char *doc = "{\"period\":\"2024-06\",\"单位\":\"申报\"}";
	json_t *body;
	char *text;

	unit_make(&u, 14, FX_KEY_SM2, FX_VARIANT_VALID);
	login_ok("reg", &u, reg, sizeof(reg));
	ck_ok(register_unit(reg, &u.unit, NULL), 201);
	login_ok("hall", &u, hall, sizeof(hall));

	/* SZ-SIGN-OK; the document goes through JSON escaping intact. */
	sig = sign_b64(u.key, u.alg, doc);
	body = json_pack("{s:s, s:s, s:s}", "document", doc, "signature", sig,
			 "algorithm", "sm2-sm3");
	text = json_dumps(body, JSON_COMPACT);
	ck_ok(post("/hall/declarations", hall, "%s", text), 201);
	ck_assert_int_gt(strlen(str("receipt")), 0);
	ck_assert(json_is_true(json_object_get(last.body, "verified")));
	free(text);
	json_decref(body);

	/* Altered document: 800. */
	body = json_pack("{s:s, s:s, s:s}", "document", "altered", "signature",
			 sig, "algorithm", "sm2-sm3");
	text = json_dumps(body, JSON_COMPACT);
	expect_ca_failure(post("/hall/declarations", hall, "%s", text),
			  "SIGNATURE_INVALID", 800);
	free(text);
	json_decref(body);

	ck_error(post("/hall/declarations", hall,
		      "{\"document\":\"d\",\"signature\":\"%s\",\"algorithm\":\"x\"}",
		      sig), 400, "ALG_UNSUPPORTED");
	ck_error(post("/hall/declarations", hall,
		      "{\"document\":\"d\",\"signature\":\"%s\"}", sig), 400,
		 "BAD_FIELD");
	free(sig);
	unit_free(&u);
}
END_TEST

/* ---- through the HTTPS server (portal_server.c) ---- */

static pt_server *server;

static void server_start(const pt_server_limits *lim)
{
	char key[4200], cert[4200];

	snprintf(key, sizeof(key), "%s/tls/server.key", pki_dir);
	snprintf(cert, sizeof(cert), "%s/tls/server.pem", pki_dir);
	ck_assert_msg(pt_server_start_ex(&server, portal, 0, key, cert,
					 lim ? lim : &pt_server_defaults) == 0,
		      "server: %s", tr_error_last());
}

static void server_teardown(void)
{
	pt_server_stop(server);
	server = NULL;
	portal_teardown();
}

static int tcp_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)pt_server_port(server)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/*
 * Sends req over a fresh TLS connection and reads until the server closes
 * it or timeout_ms pass; out gets the raw answer (status line on). The
 * status, 0 when none came.
 */
static unsigned https_raw(const char *req, size_t len, char *out, size_t size,
			  int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	size_t n = 0;
	unsigned status = 0;
	int fd = tcp_connect(), r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_ptr_nonnull(ctx);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	out[0] = '\0';
	if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, (int)len) == (int)len) {
		while (n + 1 < size &&
		       (r = SSL_read(ssl, out + n, (int)(size - n - 1))) > 0)
			n += (size_t)r;
		out[n] = '\0';
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	sscanf(out, "HTTP/1.%*d %u", &status);
	return status;
}

static unsigned https(const char *req, char *out, size_t size)
{
	return https_raw(req, strlen(req), out, size, 3000);
}

/* The JSON body of a raw answer, checked to be the only thing after the
 * headers (one status line, one JSON object). */
static json_t *json_of(const char *answer)
{
	const char *body = strstr(answer, "\r\n\r\n");
	json_error_t jerr;
	json_t *j;

	ck_assert_msg(body != NULL, "no header end: %s", answer);
	ck_assert_msg(strstr(body, "HTTP/1.") == NULL, "two answers: %s", answer);
	ck_assert_ptr_nonnull(strstr(answer, "Content-Type: application/json"));
	j = json_loads(body + 4, 0, &jerr);
	ck_assert_msg(json_is_object(j), "not JSON: %s", answer);
	return j;
}

static void ck_json_code(const char *answer, const char *code)
{
	json_t *j = json_of(answer);

	ck_assert_str_eq(json_string_value(json_object_get(j, "code")), code);
	json_decref(j);
}

/* Issue 13: API.md's order (415 before 413) holds for a declared length
 * too (before: 413), and a decoded NUL never cuts the path (before: 200). */
START_TEST(test_srv_order_and_path)
{
	char out[8192];

	server_start(NULL);
	ck_assert_uint_eq(https("POST /hall/challenge HTTP/1.1\r\nHost: x\r\n"
				"Content-Type: text/plain\r\n"
				"Content-Length: 70000\r\n\r\n", out, sizeof(out)), 415);
	ck_json_code(out, "BAD_CONTENT_TYPE");
	ck_assert_uint_eq(https("POST /hall/challenge HTTP/1.1\r\nHost: x\r\n"
				"Content-Type: application/json\r\n"
				"Content-Length: 70000\r\n\r\n", out, sizeof(out)), 413);
	ck_json_code(out, "BODY_TOO_LARGE");
	ck_assert_uint_eq(https("GET /hall/ui%00junk HTTP/1.1\r\nHost: x\r\n"
				"Connection: close\r\n\r\n", out, sizeof(out)), 400);
	ck_json_code(out, "BAD_PATH");
	ck_assert_uint_eq(https("GET /hall/ui%zz HTTP/1.1\r\nHost: x\r\n"
				"Connection: close\r\n\r\n", out, sizeof(out)), 400);
	ck_assert_uint_eq(https("GET /hall/%75i?a=%00 HTTP/1.1\r\nHost: x\r\n"
				"Connection: close\r\n\r\n", out, sizeof(out)), 200);
}
END_TEST

/* Issue 13: two Content-Length headers that disagree are refused, in
 * either order (before: the first won, or the request hung). */
START_TEST(test_srv_content_length)
{
	static const char *const reqs[] = {
		"POST /hall/challenge HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\n"
		"Content-Length: 2\r\nContent-Length: 100\r\n\r\n{}",
		"POST /hall/challenge HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\n"
		"Content-Length: 100\r\nContent-Length: 2\r\n\r\n{}",
	};
	char out[8192];
	size_t i;

	server_start(NULL);
	for (i = 0; i < 2; i++) {
		ck_assert_uint_eq(https(reqs[i], out, sizeof(out)), 400);
		ck_json_code(out, "BAD_CONTENT_LENGTH");
	}
	/* The same length twice is one length (RFC 9112 6.3). */
	ck_assert_uint_eq(https("POST /hall/challenge HTTP/1.1\r\nHost: x\r\n"
				"Content-Type: application/json\r\nConnection: close\r\n"
				"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
				out, sizeof(out)), 200);
}
END_TEST

/*
 * Issue 13: a long path is the portal's JSON 414; a method with bytes
 * outside UTF-8 is escaped in the log line and the message (before: raw
 * in the log, the message cut).
 */
START_TEST(test_srv_json_answers)
{
	char out[8192], *req, logname[] = "/tmp/tokenrig-portal-log-XXXXXX";
	char logtext[65536];
	size_t n = 20000;
	uint64_t deadline;
	int logfd, saved;
	ssize_t got;
	json_t *j;

	server_start(NULL);
	req = malloc(n + 64);
	ck_assert_ptr_nonnull(req);
	memcpy(req, "GET /", 5);
	memset(req + 5, 'a', n);
	snprintf(req + 5 + n, 59, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ck_assert_uint_eq(https(req, out, sizeof(out)), 414);
	ck_json_code(out, "URI_TOO_LONG");
	free(req);
	/* API.md's documented exception: libmicrohttpd's own answer. */
	ck_assert_uint_eq(https("GET / HTTP/9.9\r\nHost: x\r\n\r\n", out,
				sizeof(out)), 505);

	logfd = mkstemp(logname);
	ck_assert_int_ge(logfd, 0);
	saved = dup(2);
	dup2(logfd, 2);
	ck_assert_uint_eq(https("G\xffT /hall/ui HTTP/1.1\r\nHost: x\r\n"
				"Connection: close\r\n\r\n", out, sizeof(out)), 405);
	/* The line is written once the answer went out: polled, 5 s at most. */
	deadline = tr_deadline_after_ms(5000);
	do {
		got = pread(logfd, logtext, sizeof(logtext) - 1, 0);
		logtext[got > 0 ? got : 0] = '\0';
	} while (!strstr(logtext, "/hall/ui 405") && !tr_deadline_passed(deadline) &&
		 usleep(1000) == 0);
	dup2(saved, 2);
	close(saved);
	j = json_of(out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "message")),
			 "method G\\xffT not allowed on /hall/ui");
	json_decref(j);
	close(logfd);
	unlink(logname);
	ck_assert_int_gt(got, 0);
	logtext[got] = '\0';
	ck_assert_msg(strstr(logtext, "G\\xffT /hall/ui 405") != NULL, "log: %s", logtext);
	ck_assert_ptr_null(strchr(logtext, '\xff'));
}
END_TEST

/*
 * Issue 13, denial of service: 300 idle TCP connections (more than the
 * old limit of 256) held while a normal request answers within a second
 * (before: it waited in the backlog for 30 s). Loopback only, bounded in
 * count and time.
 */
START_TEST(test_srv_idle_connections)
{
	enum { IDLE = 300 };
	static const char req[] =
		"GET /hall/ui HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	static int fds[IDLE];
	char out[8192];
	uint64_t t0;
	unsigned status;
	int i;

	server_start(NULL);
	for (i = 0; i < IDLE; i++)
		fds[i] = tcp_connect();
	t0 = tr_clock_ns();
	status = https_raw(req, strlen(req), out, sizeof(out), 1000);
	ck_assert_msg(status == 200, "status %u after %.0f ms", status,
		      (double)(tr_clock_ns() - t0) / 1e6);
	ck_assert_msg(tr_clock_ns() - t0 < 1000000000ull, "%.0f ms",
		      (double)(tr_clock_ns() - t0) / 1e6);
	for (i = 0; i < IDLE; i++)
		close(fds[i]);
}
END_TEST

/* 1 when the server closes fd within ms (EOF or reset; a TLS alert
 * before it is read and dropped). */
static int closed_within(int fd, int ms)
{
	uint64_t end = tr_clock_ns() + (uint64_t)ms * 1000000u;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[256];
	uint64_t now;

	while ((now = tr_clock_ns()) < end) {
		if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) != 1)
			return 0;
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			return 1;
	}
	return 0;
}

/* Issue 13: one address holds at most per_ip connections (the next is
 * closed at once), and a silent or stalled client (mid-handshake) is
 * dropped after the idle timeout. */
START_TEST(test_srv_limits)
{
	static const pt_server_limits lim = { 64, 4, 1 };
	uint64_t end;
	int fds[5], gone[5] = { 0 }, n_gone = 0, i;
	char out[4096];

	server_start(&lim);
	for (i = 0; i < 4; i++)
		fds[i] = tcp_connect();
	ck_assert_int_eq(send(fds[1], "\x16\x03", 2, 0), 2); /* a handshake starts */
	fds[4] = tcp_connect();
	/*
	 * One of the five is closed at once, before the 1 s idle timeout: the
	 * one the server accepted last, which need not be the 5th (the kernel
	 * has them all queued before the server accepts any).
	 */
	end = tr_clock_ns() + 900000000ull;
	while (!n_gone && tr_clock_ns() < end)
		for (i = 0; i < 5; i++)
			if (!gone[i] && closed_within(fds[i], 10))
				gone[i] = 1, n_gone++;
	ck_assert_msg(n_gone == 1, "%d of 5 connections closed at once, not 1", n_gone);
	ck_assert_msg(gone[0] || closed_within(fds[0], 3000), "idle connection kept");
	ck_assert_msg(gone[1] || closed_within(fds[1], 3000), "stalled handshake kept");
	for (i = 0; i < 5; i++)
		close(fds[i]);
	/* Room again once they are gone. */
	ck_assert_uint_eq(https("GET /hall/ui HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				out, sizeof(out)), 200);
}
END_TEST

Suite *portal_request_suite(void)
{
	Suite *s = suite_create("portal_request");
	TCase *tc = tcase_create("request");
	TCase *cert = tcase_create("login");
	TCase *sz = tcase_create("suzhou");
	TCase *srv = tcase_create("server");

	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_checked_fixture(tc, portal_setup, portal_teardown);
	tcase_add_test(tc, test_root_and_ui);
	tcase_add_test(tc, test_malformed_json);
	tcase_add_test(tc, test_non_object_json);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_bad_utf8);
	tcase_add_test(tc, test_content_type);
	tcase_add_test(tc, test_body_too_large);
	tcase_add_test(tc, test_routes);
	tcase_add_test(tc, test_admin_disabled);
	tcase_add_test(tc, test_admin_clock);
	tcase_add_test(tc, test_admin_clock_range);
	tcase_add_test(tc, test_path_escapes);
	tcase_add_test(tc, test_method_escaped);
	tcase_add_test(tc, test_unknown_portal);
	suite_add_tcase(s, tc);

	tcase_set_timeout(cert, 60);
	tcase_add_unchecked_fixture(cert, pki_setup, pki_teardown);
	tcase_add_checked_fixture(cert, portal_setup, portal_teardown);
	tcase_add_test(cert, test_sessions);
	tcase_add_test(cert, test_bearer_strict);
	tcase_add_test(cert, test_challenge_cap);
	tcase_add_test(cert, test_nonce_replay);
	tcase_add_test(cert, test_nonce_expired);
	tcase_add_test(cert, test_login_format);
	tcase_add_test(cert, test_cert_checks);
	tcase_add_test(cert, test_cert_checks_own_texts);
	tcase_add_test(cert, test_signature_checks);
	tcase_add_test(cert, test_algorithms);
	suite_add_tcase(s, cert);

	tcase_set_timeout(sz, 60);
	tcase_add_unchecked_fixture(sz, pki_setup, pki_teardown);
	tcase_add_checked_fixture(sz, portal_setup, portal_teardown);
	tcase_add_test(sz, test_sz_register_and_login);
	tcase_add_test(sz, test_sz_register_validation);
	tcase_add_test(sz, test_sz_stale_certificate);
	tcase_add_test(sz, test_sz_declarations);
	suite_add_tcase(s, sz);

	tcase_set_timeout(srv, 60);
	tcase_add_unchecked_fixture(srv, pki_setup, pki_teardown);
	tcase_add_checked_fixture(srv, portal_setup, server_teardown);
	tcase_add_test(srv, test_srv_order_and_path);
	tcase_add_test(srv, test_srv_content_length);
	tcase_add_test(srv, test_srv_json_answers);
	tcase_add_test(srv, test_srv_idle_connections);
	tcase_add_test(srv, test_srv_limits);
	suite_add_tcase(s, srv);
	return s;
}
