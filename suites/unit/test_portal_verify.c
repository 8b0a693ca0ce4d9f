/*
 * The portal's certificate checks with its caches: a parsed certificate is
 * reused for the same DER bytes, and a chain's signatures are verified once
 * per certificate, yet every verdict that depends on the request (the CRL,
 * the portal clock) is computed again at every request, and the one-pass
 * chain check keeps API.md's order (chain 820 before dates 809/810,
 * revocation 823).
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
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

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	ck_assert_int_eq(ASN1_TIME_to_tm(t, &tm), 1);
	return timegm(&tm);
}

static X509 *ca_cert(const char *ca, const char *file)
{
	char path[4096];
	X509 *x;

	ck_assert_int_eq(fx_pki_ca_path(pki, ca, file, path, sizeof(path)), 0);
	ck_assert_int_eq(fx_read_cert_pem(path, &x), 0);
	return x;
}

/* Both checks of x at t agree: the memo's verdict is the fresh one's. */
static void assert_same_verdict(pt_verifier *warm, X509 *x, time_t t, int allow_expired)
{
	pt_verifier *fresh = verifier("suzhou");
	int s1, s2, e1, e2, r1, r2;

	r1 = pt_verifier_check_ex(fresh, x, t, allow_expired, &s1, &e1);
	r2 = pt_verifier_check_ex(warm, x, t, allow_expired, &s2, &e2);
	ck_assert_msg(r1 == r2 && s1 == s2 && e1 == e2,
		      "at %lld (allow_expired %d): fresh %d/%d/%d, memo %d/%d/%d",
		      (long long)t, allow_expired, r1, s1, e1, r2, s2, e2);
	pt_verifier_free(fresh);
}

/*
 * Every certificate variant at every date that flips a verdict (its own
 * bounds, its CA's, the root's): the chain verified once gives the same
 * answer as a verifier that never saw it.
 */
START_TEST(chain_memo_same_verdicts)
{
	static const fx_variant variants[] = {
		FX_VARIANT_VALID, FX_VARIANT_EXPIRED, FX_VARIANT_NOT_YET_VALID,
		FX_VARIANT_REVOKED, FX_VARIANT_WRONG_CHAIN,
	};
	enum { NV = sizeof(variants) / sizeof(variants[0]) };
	pt_verifier *warm = verifier("suzhou");
	X509 *issuing = ca_cert("suzhou", "issuing.pem"), *root = ca_cert("suzhou", "root.pem");
	pt_verifier_stats st;
	uint64_t checks = 0;
	size_t i, k;

	for (i = 0; i < NV; i++) {
		X509 *orig, *x;
		char *b64 = issue_b64("suzhou", 20 + (unsigned)i, variants[i], &orig);
		time_t nb = asn1_time(X509_get0_notBefore(orig));
		time_t na = asn1_time(X509_get0_notAfter(orig));
		time_t times[] = {
			t0, t0 - 40 * YEAR, t0 + 40 * YEAR, nb - 1, nb, na, na + 1,
			asn1_time(X509_get0_notBefore(issuing)) - 1,
			asn1_time(X509_get0_notAfter(issuing)) + 1,
			asn1_time(X509_get0_notBefore(root)) - 1,
			asn1_time(X509_get0_notAfter(root)) + 1, t0,
		};

		if (variants[i] == FX_VARIANT_REVOKED)
			ck_assert_int_eq(fx_pki_revoke(pki, orig), 0);
		ck_assert_int_eq(pt_cert_from_base64(b64, &x), 0);
		for (k = 0; k < sizeof(times) / sizeof(times[0]); k++) {
			assert_same_verdict(warm, x, times[k], 0);
			assert_same_verdict(warm, x, times[k], 1);
			checks += 2;
		}
		X509_free(x);
		X509_free(orig);
		free(b64);
	}
	/* Each certificate's chain was built and its signatures checked once. */
	pt_verifier_get_stats(warm, &st);
	ck_assert_uint_eq(st.chains_verified, NV);
	ck_assert_uint_eq(st.chain_memo_hits, checks - NV);
	X509_free(issuing);
	X509_free(root);
	pt_verifier_free(warm);
}
END_TEST

/*
 * A bundle naming one CA twice lets OpenSSL choose the issuer valid at the
 * time: such a verifier verifies every chain at every check.
 */
START_TEST(chain_memo_off_for_two_cas_of_one_name)
{
	X509 *root = ca_cert("suzhou", "root.pem"), *twin = X509_new(), *orig, *x;
	char chain[4096], bundle[4096];
	EVP_PKEY *key = NULL;
	pt_verifier *v;
	pt_verifier_stats st;
	char *b64 = issue_b64("suzhou", 30, FX_VARIANT_VALID, &orig), *pem;
	size_t len;
	FILE *f;
	int status, expired, r1, r2;

	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &key), 0);
	ck_assert_ptr_nonnull(twin);
	ck_assert_int_eq(X509_set_version(twin, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(twin), 77), 1);
	ck_assert_int_eq(X509_set_subject_name(twin, X509_get_subject_name(root)), 1);
	ck_assert_int_eq(X509_set_issuer_name(twin, X509_get_subject_name(root)), 1);
	ck_assert_int_eq(X509_set1_notBefore(twin, X509_get0_notBefore(root)), 1);
	ck_assert_int_eq(X509_set1_notAfter(twin, X509_get0_notAfter(root)), 1);
	ck_assert_int_eq(X509_set_pubkey(twin, key), 1);
	ck_assert_int_gt(X509_sign(twin, key, EVP_sha256()), 0);

	ck_assert_int_eq(fx_pki_ca_path(pki, "suzhou", "chain.pem", chain, sizeof(chain)), 0);
	ck_assert_int_eq(tr_fs_read_all(chain, 1 << 20, &pem, &len), 0);
	snprintf(bundle, sizeof(bundle), "%s/twin-bundle.pem", dir);
	ck_assert_ptr_nonnull(f = fopen(bundle, "w"));
	ck_assert_uint_eq(fwrite(pem, 1, len, f), len);
	ck_assert_int_eq(PEM_write_X509(f, twin), 1);
	ck_assert_int_eq(fclose(f), 0);
	free(pem);

	ck_assert_int_eq(pt_verifier_new(&v, bundle, NULL), 0);
	ck_assert_int_eq(pt_cert_from_base64(b64, &x), 0);
	r1 = pt_verifier_check_ex(v, x, t0, 0, &status, &expired);
	r2 = pt_verifier_check_ex(v, x, t0, 0, &status, &expired);
	ck_assert_int_eq(r1, r2);
	pt_verifier_get_stats(v, &st);
	ck_assert_uint_eq(st.chains_verified, 2);
	ck_assert_uint_eq(st.chain_memo_hits, 0);

	pt_verifier_free(v);
	X509_free(x);
	X509_free(orig);
	X509_free(twin);
	X509_free(root);
	EVP_PKEY_free(key);
	free(b64);
}
END_TEST

/* A certificate for key's public half named cn, signed by signer (itself when NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *signer, EVP_PKEY *signer_key,
		       time_t not_before, time_t not_after, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *bc;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)not_before & 0xffff), 1);
	ck_assert_int_eq(X509_set_subject_name(x, name), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, signer ? X509_get_subject_name(signer) : name), 1);
	ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &not_before));
	ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &not_after));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
				 ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(X509_add_ext(x, bc, -1), 1);
	X509_EXTENSION_free(bc);
	ck_assert_int_gt(X509_sign(x, signer_key ? signer_key : key, EVP_sha256()), 0);
	X509_NAME_free(name);
	return x;
}

/*
 * A CA not yet valid above a leaf already expired: OpenSSL meets the CA's
 * date first (it walks from the root down), so 809; the memo walks the
 * same way.
 */
START_TEST(chain_memo_dates_in_openssl_order)
{
	EVP_PKEY *kr = NULL, *ki = NULL, *kl = NULL;
	X509 *root, *inter, *leaf;
	char bundle[4096];
	pt_verifier *v;
	pt_verifier_stats st;
	time_t times[] = { t0, t0, t0 + 15 * YEAR, t0 - 5 * YEAR, t0 + 15 * YEAR };
	int status, expired, i;
	FILE *f;

	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &kr), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &ki), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &kl), 0);
	root = make_cert("order root", kr, NULL, NULL, t0 - 30 * YEAR, t0 + 30 * YEAR, 1);
	inter = make_cert("order issuing", ki, root, kr, t0 + 10 * YEAR, t0 + 20 * YEAR, 1);
	leaf = make_cert("order unit", kl, inter, ki, t0 - 2 * YEAR, t0 - YEAR, 0);
	snprintf(bundle, sizeof(bundle), "%s/order-bundle.pem", dir);
	ck_assert_ptr_nonnull(f = fopen(bundle, "w"));
	ck_assert_int_eq(PEM_write_X509(f, inter), 1);
	ck_assert_int_eq(PEM_write_X509(f, root), 1);
	ck_assert_int_eq(fclose(f), 0);

	ck_assert_int_eq(pt_verifier_new(&v, bundle, NULL), 0);
	for (i = 0; i < (int)(sizeof(times) / sizeof(times[0])); i++) {
		pt_verifier *fresh;
		int fresh_status;

		ck_assert_int_eq(pt_verifier_new(&fresh, bundle, NULL), 0);
		ck_assert_int_eq(pt_verifier_check_ex(fresh, leaf, times[i], 0, &fresh_status,
						      &expired), TR_ECRYPTO);
		ck_assert_int_eq(pt_verifier_check_ex(v, leaf, times[i], 0, &status, &expired),
				 TR_ECRYPTO);
		ck_assert_int_eq(status, fresh_status);
		ck_assert_int_eq(status, times[i] == t0 + 15 * YEAR ? PT_STATUS_EXPIRED
								   : PT_STATUS_NOT_YET_VALID);
		pt_verifier_free(fresh);
	}
	pt_verifier_get_stats(v, &st);
	ck_assert_uint_eq(st.chains_verified, 1);
	pt_verifier_free(v);
	X509_free(leaf);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(kr);
	EVP_PKEY_free(ki);
	EVP_PKEY_free(kl);
}
END_TEST

/* The same signed part under another signature is another certificate: 820. */
START_TEST(chain_memo_other_signature)
{
	pt_verifier *v = verifier("suzhou");
	X509 *orig, *a, *forged;
	unsigned char *der = NULL;
	const unsigned char *p;
	char *b64 = issue_b64("suzhou", 40, FX_VARIANT_VALID, &orig);
	pt_verifier_stats st;
	int len = i2d_X509(orig, &der), status, expired;

	ck_assert_int_eq(pt_cert_from_base64(b64, &a), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0, 0, &status, &expired), 0);
	der[len - 1] ^= 1; /* the last byte of the signature */
	p = der;
	ck_assert_ptr_nonnull(forged = d2i_X509(NULL, &p, len));
	ck_assert_int_eq(pt_verifier_check_ex(v, forged, t0, 0, &status, &expired), TR_ECRYPTO);
	ck_assert_int_eq(status, PT_STATUS_CHAIN);
	ck_assert_int_eq(pt_verifier_check_ex(v, a, t0, 0, &status, &expired), 0);
	pt_verifier_get_stats(v, &st);
	ck_assert_uint_eq(st.chains_verified, 2);
	ck_assert_uint_eq(st.chain_memo_hits, 1);
	X509_free(forged);
	X509_free(a);
	X509_free(orig);
	OPENSSL_free(der);
	free(b64);
	pt_verifier_free(v);
}
END_TEST

/* More certificates than the memo keeps: the oldest is verified again. */
START_TEST(chain_memo_eviction)
{
	enum { N = 70 };
	pt_verifier *v = verifier("suzhou");
	X509 *orig[N], *x[N];
	char *b64[N];
	pt_verifier_stats st;
	int i, status, expired;

	for (i = 0; i < N; i++) {
		b64[i] = issue_b64("suzhou", 100 + (unsigned)i, FX_VARIANT_VALID, &orig[i]);
		ck_assert_int_eq(pt_cert_from_base64(b64[i], &x[i]), 0);
		ck_assert_int_eq(pt_verifier_check_ex(v, x[i], t0, 0, &status, &expired), 0);
	}
	pt_verifier_get_stats(v, &st);
	ck_assert_uint_eq(st.chains_verified, N);
	/* The latest is kept, the first was pushed out by the six after 64. */
	ck_assert_int_eq(pt_verifier_check_ex(v, x[N - 1], t0, 0, &status, &expired), 0);
	ck_assert_int_eq(pt_verifier_check_ex(v, x[0], t0, 0, &status, &expired), 0);
	pt_verifier_get_stats(v, &st);
	ck_assert_uint_eq(st.chain_memo_hits, 1);
	ck_assert_uint_eq(st.chains_verified, N + 1);
	for (i = 0; i < N; i++) {
		X509_free(x[i]);
		X509_free(orig[i]);
		free(b64[i]);
	}
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
	tcase_add_test(tc, chain_memo_same_verdicts);
	tcase_add_test(tc, chain_memo_off_for_two_cas_of_one_name);
	tcase_add_test(tc, chain_memo_eviction);
	tcase_add_test(tc, chain_memo_other_signature);
	tcase_add_test(tc, chain_memo_dates_in_openssl_order);
	suite_add_tcase(s, tc);
	return s;
}
