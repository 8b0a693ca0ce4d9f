/*
 * The request kit shared by the portal unit suites: calls pt_portal_handle
 * directly, keeps the last answer, signs challenges as a token would.
 * static inline, with a copy of the state in each suite: the suites fork
 * per test, and generic names like post() must not clash between them.
 */
#ifndef TR_SUITES_PORTAL_TESTKIT_H
#define TR_SUITES_PORTAL_TESTKIT_H

#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fsutil.h"
#include "emulators/portal/portal.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"

#define SEED 20240601u
#define PKI_TEMPLATE "/tmp/tokenrig-portal-test-XXXXXX"

/* An answer: HTTP status and the parsed body. */
typedef struct answer {
	unsigned status;
	json_t *body;
} answer;

static char pki_dir[] = PKI_TEMPLATE;
static fx_pki *pki;        /* made once per test case, in the runner */
static pt_portal *portal;  /* fresh for every test */
static answer last;
/* The certificate assistant's version the logins declare. */
static const char *assistant = "5.0.22.606";

/* Asserts an error answer (a is evaluated once). */
#define ck_error(a, http, err_code)                                        \
	do {                                                               \
		const answer *a_ = (a);                                    \
		ck_assert_msg(a_->status == (http), "status %u, want %u: %s %s", \
			      a_->status, (unsigned)(http), str("code"),    \
			      str("message"));                              \
		ck_assert(json_is_false(json_object_get(a_->body, "ok"))); \
		ck_assert_str_eq(str("code"), err_code);                    \
	} while (0)

#define ck_ok(a, http)                                                     \
	do {                                                               \
		const answer *a_ = (a);                                    \
		ck_assert_msg(a_->status == (http), "status %u, want %u: %s %s", \
			      a_->status, (unsigned)(http), str("code"),    \
			      str("message"));                              \
		ck_assert(json_is_true(json_object_get(a_->body, "ok")));  \
	} while (0)

typedef struct unit_id {
	fx_unit unit;
	EVP_PKEY *key;
	X509 *cert;
	fx_key_alg alg;
} unit_id;

static inline void pki_setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(pki_dir));
	ck_assert_int_eq(fx_pki_create(&pki, pki_dir, time(NULL)), 0);
}

static inline void portal_teardown(void)
{
	json_decref(last.body);
	last.body = NULL;
	pt_portal_free(portal);
	portal = NULL;
}

/* One raw request; the answer is kept in `last` (and must be JSON). */
static inline const answer *raw(pt_portal *p, const char *method, const char *path,
			 const char *ctype, const char *auth, const char *body,
			 size_t len)
{
	pt_request req = { method, path, ctype, auth, body, len };
	pt_response resp;
	json_error_t jerr;

	pt_portal_handle(p, &req, &resp);
	ck_assert_ptr_nonnull(resp.body);
	json_decref(last.body);
	last.status = resp.status;
	last.body = json_loadb(resp.body, resp.body_len, 0, &jerr);
	ck_assert_msg(last.body != NULL, "answer is not JSON: %s", resp.body);
	ck_assert(json_is_object(last.body));
	pt_response_clear(&resp);
	return &last;
}

/* A JSON POST (body printf-style) with an optional session. */
__attribute__((format(printf, 3, 4)))
static inline const answer *post(const char *path, const char *session,
			  const char *fmt, ...)
{
	char body[16384], auth[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (session)
		snprintf(auth, sizeof(auth), "Bearer %s", session);
	return raw(portal, "POST", path, "application/json",
		   session ? auth : NULL, body, strlen(body));
}

static inline const answer *get(const char *path)
{
	return raw(portal, "GET", path, NULL, NULL, NULL, 0);
}

static inline const char *str(const char *key)
{
	const char *s = json_string_value(json_object_get(last.body, key));

	return s ? s : "";
}

static inline void unit_free(unit_id *u)
{
	EVP_PKEY_free(u->key);
	X509_free(u->cert);
}

static inline const char *alg_name(fx_key_alg alg)
{
	return alg == FX_KEY_RSA_2048 ? "rsa-pkcs1-sha256"
	     : alg == FX_KEY_SM2 ? "sm2-sm3" : "ecdsa-sha256";
}

static inline char *b64(const unsigned char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	ck_assert_ptr_nonnull(out);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static inline char *cert_b64(X509 *cert)
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	char *out;

	ck_assert_int_gt(len, 0);
	out = b64(der, (size_t)len);
	OPENSSL_free(der);
	return out;
}

static inline char *sign_b64(EVP_PKEY *key, fx_key_alg alg, const char *text)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	char *out;

	ck_assert_ptr_nonnull(md);
	if (alg == FX_KEY_SM2) {
		pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
		ck_assert_ptr_nonnull(pctx);
		ck_assert_int_eq(EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16), 1);
		EVP_MD_CTX_set_pkey_ctx(md, pctx);
		ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, key), 1);
	} else {
		ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	}
	ck_assert_int_eq(EVP_DigestSign(md, sig, &sig_len,
					(const unsigned char *)text,
					strlen(text)), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	out = b64(sig, sig_len);
	return out;
}

/* A fresh challenge of site: nonce and text (static buffers). */
static inline void challenge(const char *site, char *nonce, size_t nlen, char *text,
		      size_t tlen)
{
	char path[64];

	snprintf(path, sizeof(path), "/%s/challenge", site);
	ck_ok(post(path, NULL, "{}"), 200);
	ck_assert_int_eq(strlen(str("nonce")), 32);
	ck_assert_int_eq(json_integer_value(json_object_get(last.body,
							    "expires_in")), 120);
	snprintf(nonce, nlen, "%s", str("nonce"));
	snprintf(text, tlen, "%s", str("challenge"));
}

static inline const answer *login_with(const char *site, const unit_id *u,
				const char *nonce, const char *text)
{
	char path[64], *cert = cert_b64(u->cert);
	char *sig = sign_b64(u->key, u->alg, text);

	snprintf(path, sizeof(path), "/%s/login", site);
	post(path, NULL,
	     "{\"nonce\":\"%s\",\"certificate\":\"%s\",\"signature\":\"%s\","
	     "\"algorithm\":\"%s\",\"assistant\":\"%s\"}",
	     nonce, cert, sig, alg_name(u->alg), assistant);
	free(cert);
	free(sig);
	return &last;
}

static inline const answer *login(const char *site, const unit_id *u)
{
	char nonce[64], text[256];

	challenge(site, nonce, sizeof(nonce), text, sizeof(text));
	return login_with(site, u, nonce, text);
}

/* Logs in and copies the session into sess. */
static inline void login_ok(const char *site, const unit_id *u, char *sess,
		     size_t len)
{
	ck_ok(login(site, u), 200);
	ck_assert_int_gt(strlen(str("session")), 0);
	snprintf(sess, len, "%s", str("session"));
}

static inline const answer *register_unit(const char *sess, const fx_unit *f,
				   const char *phone)
{
	return post("/reg/units", sess,
		    "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"operator_name\":\"%s\","
		    "\"operator_id\":\"%s\",\"operator_phone\":\"%s\"}",
		    f->unit_name, f->uscc, f->operator_name, f->operator_id,
		    phone ? phone : f->operator_phone);
}

static inline void advance(long seconds)
{
	ck_ok(post("/admin/clock", NULL, "{\"advance\":%ld}", seconds), 200);
}

static inline void pki_teardown(void)
{
	fx_pki_free(pki);
	pki = NULL;
	tr_fs_remove_tree(pki_dir);
	strcpy(pki_dir, PKI_TEMPLATE);
}

#endif
