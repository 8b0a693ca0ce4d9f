/*
 * The portal's certificate checks with its caches: a parsed certificate is
 * reused for the same DER bytes, yet every verdict is computed again at
 * every request (the CRL, the portal clock), and the one-pass chain check
 * keeps API.md's order (chain 820 before dates 809/810, revocation 823).
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/portal/portal_verify.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"

#define SEED 20240601u
#define TEMPLATE "/tmp/tokenrig-verify-test-XXXXXX"
#define YEAR (365L * 24 * 3600)

static char dir[] = TEMPLATE;
static fx_pki *pki;
static time_t t0;

static void setup(void)
{
	t0 = time(NULL);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(fx_pki_create(&pki, dir, t0), 0);
	pt_cert_cache_clear();
}

static void teardown(void)
{
	pt_cert_cache_clear();
	fx_pki_free(pki);
	pki = NULL;
	tr_fs_remove_tree(dir);
	strcpy(dir, TEMPLATE);
}

/* A unit certificate of ca (index makes a distinct unit), as base64 DER. */
static char *issue_b64(const char *ca, unsigned index, fx_variant variant, X509 **cert)
{
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL;
	fx_unit unit;
	char *b64;
	int len;

	ck_assert_int_eq(fx_unit_generate(&unit, SEED, "suzhou", index), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, ca, key, &unit, variant, cert), 0);
	EVP_PKEY_free(key);
	len = i2d_X509(*cert, &der);
	ck_assert_int_gt(len, 0);
	b64 = pt_base64_encode(der, (size_t)len);
	ck_assert_ptr_nonnull(b64);
	OPENSSL_free(der);
	return b64;
}

static pt_verifier *verifier(const char *ca)
{
	char chain[4096], crl[4096];
	pt_verifier *v;

	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "chain.pem", chain, sizeof(chain)), 0);
	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "crl.pem", crl, sizeof(crl)), 0);
	ck_assert_int_eq(pt_verifier_new(&v, chain, crl), 0);
	return v;
}

START_TEST(same_der_same_parse)
{
	X509 *orig, *a, *b, *c;
	char *b64 = issue_b64("suzhou", 1, FX_VARIANT_VALID, &orig);

	ck_assert_int_eq(pt_cert_from_base64(b64, &a), 0);
	ck_assert_int_eq(pt_cert_from_base64(b64, &b), 0);
	/* The second parse is the first one, another reference to it. */
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(X509_cmp(a, orig), 0);
	X509_free(a);
	X509_free(b);
	/* Emptied: a parse of its own again, equal in content. */
	pt_cert_cache_clear();
	ck_assert_int_eq(pt_cert_from_base64(b64, &c), 0);
	ck_assert_int_eq(X509_cmp(c, orig), 0);
	X509_free(c);
	X509_free(orig);
	free(b64);
}
END_TEST

START_TEST(other_der_other_parse)
{
	X509 *o1, *o2, *a, *b;
	char *b1 = issue_b64("suzhou", 1, FX_VARIANT_VALID, &o1);
	char *b2 = issue_b64("suzhou", 2, FX_VARIANT_VALID, &o2);

	ck_assert_int_eq(pt_cert_from_base64(b1, &a), 0);
	ck_assert_int_eq(pt_cert_from_base64(b2, &b), 0);
	ck_assert_ptr_ne(a, b);
	ck_assert_int_eq(X509_cmp(a, o1), 0);
	ck_assert_int_eq(X509_cmp(b, o2), 0);
	X509_free(a);
	X509_free(b);
	X509_free(o1);
	X509_free(o2);
	free(b1);
	free(b2);
}
END_TEST

/* A cached certificate followed by one more byte is still no certificate. */
START_TEST(cached_prefix_is_no_certificate)
{
	unsigned char *der = NULL, *longer;
	X509 *orig, *a, *x = NULL;
	char *b64 = issue_b64("suzhou", 3, FX_VARIANT_VALID, &orig), *b64x;
	int len = i2d_X509(orig, &der);

	ck_assert_int_eq(pt_cert_from_base64(b64, &a), 0);
	longer = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, der, (size_t)len);
	longer[len] = 0;
	b64x = pt_base64_encode(longer, (size_t)len + 1);
	ck_assert_int_eq(pt_cert_from_base64(b64x, &x), TR_EINVAL);
	ck_assert_ptr_null(x);
	/* One byte changed inside: parsed afresh, never the cached one. */
	longer[len - 1] ^= 1;
	free(b64x);
	b64x = pt_base64_encode(longer, (size_t)len);
	if (pt_cert_from_base64(b64x, &x) == 0) {
		ck_assert_ptr_ne(x, a);
		ck_assert_int_ne(X509_cmp(x, orig), 0);
		X509_free(x);
	}
	X509_free(a);
	X509_free(orig);
	OPENSSL_free(der);
	free(longer);
	free(b64x);
	free(b64);
}
END_TEST

/* More certificates than the cache holds: every one still parses right. */
START_TEST(eviction_keeps_answers_right)
{
	enum { N = 40 };
	X509 *orig[N], *x;
	char *b64[N];
	int i, round;

	for (i = 0; i < N; i++)
		b64[i] = issue_b64("suzhou", 10 + (unsigned)i, FX_VARIANT_VALID, &orig[i]);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < N; i++) {
			ck_assert_int_eq(pt_cert_from_base64(b64[i], &x), 0);
			ck_assert_int_eq(X509_cmp(x, orig[i]), 0);
			X509_free(x);
		}
	}
	for (i = 0; i < N; i++) {
		X509_free(orig[i]);
		free(b64[i]);
	}
}
END_TEST

/* The parse is cached, the verdict never: a revocation is seen at once. */
START_TEST(cached_cert_sees_new_crl)
{
	pt_verifier *v = verifier("suzhou");
	X509 *orig, *a, *b;
	char *b64 = issue_b64("suzhou", 4, FX_VARIANT_VALID, &orig);
	int status, expired;

	ck_assert_int_eq(pt_cert_from_base64(b64, &a), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0, 0, &status, &expired), 0);
	ck_assert_int_eq(fx_pki_revoke(pki, orig), 0);
	ck_assert_int_eq(pt_cert_from_base64(b64, &b), 0);
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(pt_verifier_check_ex(v, b, t0, 0, &status, &expired), TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_REVOKED);
	X509_free(a);
	X509_free(b);
	X509_free(orig);
	free(b64);
	pt_verifier_free(v);
}
END_TEST

/* The portal clock moves (admin /clock): the same parse, a new verdict. */
START_TEST(cached_cert_sees_the_clock)
{
	pt_verifier *v = verifier("suzhou");
	X509 *orig, *a;
	char *b64 = issue_b64("suzhou", 5, FX_VARIANT_VALID, &orig);
	int status, expired;

	ck_assert_int_eq(pt_cert_from_base64(b64, &a), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0, 0, &status, &expired), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0 + 40 * YEAR, 0, &status, &expired),
			 TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_EXPIRED);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0 - 40 * YEAR, 0, &status, &expired),
			 TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_NOT_YET_VALID);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0, 0, &status, &expired), 0);
	X509_free(a);
	X509_free(orig);
	free(b64);
	pt_verifier_free(v);
}
END_TEST

/* One pass, API.md's order: a foreign chain is 820 even when expired too. */
START_TEST(chain_before_dates)
{
	pt_verifier *v = verifier("suzhou");
	X509 *foreign, *expired_cert, *late, *x;
	char *bf = issue_b64("suzhou", 6, FX_VARIANT_WRONG_CHAIN, &foreign);
	char *be = issue_b64("suzhou", 7, FX_VARIANT_EXPIRED, &expired_cert);
	char *bl = issue_b64("suzhou", 8, FX_VARIANT_NOT_YET_VALID, &late);
	int status, expired;

	ck_assert_int_eq(pt_cert_from_base64(bf, &x), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, x, t0, 0, &status, &expired), TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_CHAIN);
	/* Decades later it is expired as well: still the chain first. */
	ck_assert_int_eq(pt_verifier_check_ex(v, x, t0 + 40 * YEAR, 1, &status, &expired),
			 TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_CHAIN);
	X509_free(x);

	ck_assert_int_eq(pt_cert_from_base64(be, &x), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, x, t0, 0, &status, &expired), TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_EXPIRED);
	/* A site that answers expiry itself: passes, marked expired. */
	ck_assert_int_eq(pt_verifier_check_ex(v, x, t0, 1, &status, &expired), 0);
	ck_assert_int_eq(expired, 1);
	X509_free(x);

	ck_assert_int_eq(pt_cert_from_base64(bl, &x), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, x, t0, 1, &status, &expired), TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_NOT_YET_VALID);
	X509_free(x);

	X509_free(foreign);
	X509_free(expired_cert);
	X509_free(late);
	free(bf);
	free(be);
	free(bl);
	pt_verifier_free(v);
}
END_TEST

Suite *portal_verify_suite(void)
{
	Suite *s = suite_create("portal_verify");
	TCase *tc = tcase_create("caches");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, same_der_same_parse);
	tcase_add_test(tc, other_der_other_parse);
	tcase_add_test(tc, cached_prefix_is_no_certificate);
	tcase_add_test(tc, eviction_keeps_answers_right);
	tcase_add_test(tc, cached_cert_sees_new_crl);
	tcase_add_test(tc, cached_cert_sees_the_clock);
	tcase_add_test(tc, chain_before_dates);
	suite_add_tcase(s, tc);
	return s;
}
