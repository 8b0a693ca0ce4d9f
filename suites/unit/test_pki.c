/*
 * Unit tests of fixtures/pki: every variant verifies as labelled, both with
 * X509_verify_cert and with the real `openssl verify`, since the portals and
 * people debugging them use both.
 */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/error.h"
#include "fixtures/pki.h"

/*
 * base_dir is made once per test case in the parent (unchecked fixture) and
 * removed there, so it goes even when a forked test fails half-way.
 */
static char base_dir[64];
static char tmp_dir[128];
static char pki_dir[192];
static fx_pki *pki;

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static void base_setup(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/tokenrig-pki-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base_dir));
}

static void base_teardown(void)
{
	nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/t-XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", tmp_dir);
	ck_assert_msg(fx_pki_create(&pki, pki_dir, time(NULL)) == 0, "%s",
		      tr_error_last());
}

static void teardown(void)
{
	fx_pki_free(pki);
	pki = NULL;
	nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_unit(fx_unit *u, const char *province, unsigned index)
{
	ck_assert_int_eq(fx_unit_generate(u, 5, province, index), 0);
}

static X509 *issue(const char *ca, fx_key_alg alg, fx_variant variant,
		   fx_unit *unit)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	ck_assert_msg(fx_key_generate(alg, &key) == 0, "%s", tr_error_last());
	ck_assert_msg(fx_pki_issue_unit(pki, ca, key, unit, variant, &cert) == 0,
		      "%s", tr_error_last());
	ck_assert_int_eq(X509_check_private_key(cert, key), 1);
	EVP_PKEY_free(key);
	return cert;
}

/* X509_verify_cert against DIR/<ca>/chain.pem + crl.pem; the X509_V_ code. */
static int verify(const char *ca, X509 *cert)
{
	char chain[256], crl[256];
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok, err;

	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "chain.pem", chain, sizeof(chain)), 0);
	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "crl.pem", crl, sizeof(crl)), 0);
	ck_assert_ptr_nonnull(store);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(X509_STORE_load_file(store, chain), 1);
	ck_assert_int_eq(X509_STORE_load_file(store, crl), 1); /* loads CRLs too */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	ok = X509_verify_cert(ctx);
	err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ck_assert_int_eq(ok == 1, err == X509_V_OK);
	return err;
}

/* `openssl verify -CAfile chain.pem -crl_check -CRLfile crl.pem`: 0 or N. */
static int verify_cli(const char *ca, X509 *cert)
{
	char chain[256], crl[256], path[256], cmd[1024], line[512];
	FILE *p;
	int code = -1, n, ok_line = 0, status;

	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "chain.pem", chain, sizeof(chain)), 0);
	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "crl.pem", crl, sizeof(crl)), 0);
	snprintf(path, sizeof(path), "%s/leaf.pem", tmp_dir);
	ck_assert_int_eq(fx_write_cert_pem(path, cert), 0);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile '%s' -crl_check -CRLfile '%s' '%s' 2>&1",
		 chain, crl, path);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	while (fgets(line, sizeof(line), p)) {
		if (sscanf(line, "error %d at", &n) == 1 && code < 0)
			code = n;
		if (strstr(line, ": OK"))
			ok_line = 1;
	}
	status = pclose(p);
	ck_assert_msg(status != -1 && WIFEXITED(status) &&
		      WEXITSTATUS(status) != 127, "openssl CLI not runnable");
	if (WEXITSTATUS(status) == 0) {
		ck_assert_msg(ok_line, "openssl verify: exit 0 without OK");
		ck_assert_int_eq(code, -1);
		return 0;
	}
	ck_assert_msg(code > 0, "openssl verify failed without an error code");
	return code;
}

static const struct {
	fx_variant variant;
	int expect; /* X509_V_ERR_* against the suzhou chain */
	const char *label;
} variants[] = {
	{ FX_VARIANT_VALID, X509_V_OK, "valid" },
	{ FX_VARIANT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED, "expired" },
	{ FX_VARIANT_NOT_YET_VALID, X509_V_ERR_CERT_NOT_YET_VALID, "not yet valid" },
	{ FX_VARIANT_REVOKED, X509_V_ERR_CERT_REVOKED, "revoked" },
	{ FX_VARIANT_WRONG_CHAIN, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
	  "wrong chain" },
};

START_TEST(test_variant_verifies_as_labelled)
{
	fx_unit unit;
	X509 *cert;
	int err;

	make_unit(&unit, "suzhou", (unsigned)_i);
	cert = issue("suzhou", FX_KEY_EC_P256, variants[_i].variant, &unit);

	err = verify("suzhou", cert);
	ck_assert_msg(err == variants[_i].expect, "%s: X509_verify_cert gave %d (%s)",
		      variants[_i].label, err, X509_verify_cert_error_string(err));
	err = verify_cli("suzhou", cert);
	ck_assert_msg(err == variants[_i].expect, "%s: openssl verify gave %d",
		      variants[_i].label, err);

	if (variants[_i].variant == FX_VARIANT_WRONG_CHAIN) {
		/* Issued by the unrelated CA: it verifies against that one. */
		ck_assert_int_eq(verify("other", cert), X509_V_OK);
		ck_assert_int_eq(verify_cli("other", cert), 0);
	}
	X509_free(cert);
}
END_TEST

START_TEST(test_every_ca_and_key_alg)
{
	static const fx_key_alg algs[] = { FX_KEY_EC_P256, FX_KEY_RSA_2048,
					   FX_KEY_SM2 };
	static const char *const cas[] = { "suzhou", "hebei", "sichuan", "hunan" };
	fx_unit unit;
	X509 *cert;
	EVP_PKEY *pub;
	size_t c, a;

	for (c = 0; c < 4; c++) {
		for (a = 0; a < 3; a++) {
			make_unit(&unit, cas[c], (unsigned)a);
			cert = issue(cas[c], algs[a], FX_VARIANT_VALID, &unit);
			ck_assert_int_eq(verify(cas[c], cert), X509_V_OK);
			/* Chains do not cross: a hebei cert fails at suzhou. */
			if (c != 0)
				ck_assert_int_eq(verify("suzhou", cert),
						 X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
			pub = X509_get0_pubkey(cert);
			ck_assert_ptr_nonnull(pub);
			if (algs[a] == FX_KEY_RSA_2048)
				ck_assert_int_eq(EVP_PKEY_get_bits(pub), 2048);
			if (algs[a] == FX_KEY_SM2)
				ck_assert(EVP_PKEY_is_a(pub, "SM2"));
			if (algs[a] == FX_KEY_EC_P256)
				ck_assert(EVP_PKEY_is_a(pub, "EC"));
			X509_free(cert);
		}
	}
}
END_TEST

static void expect_entry(X509_NAME *name, int pos, int nid, int type,
			 const char *value)
{
	X509_NAME_ENTRY *e = X509_NAME_get_entry(name, pos);
	ASN1_STRING *s;

	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
	s = X509_NAME_ENTRY_get_data(e);
	ck_assert_int_eq(ASN1_STRING_type(s), type);
	ck_assert_int_eq(ASN1_STRING_length(s), (int)strlen(value));
	ck_assert(memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0);
}

START_TEST(test_unit_certificate_profile)
{
	fx_unit unit;
	X509 *cert;
	X509_NAME *name;
	const ASN1_INTEGER *serial;
	BASIC_CONSTRAINTS *bc;
	int crit = -1;

	make_unit(&unit, "hunan", 3);
	cert = issue("hunan", FX_KEY_EC_P256, FX_VARIANT_VALID, &unit);

	/* C, ST, O, organizationIdentifier, CN: nothing more, in that order. */
	name = X509_get_subject_name(cert);
	ck_assert_int_eq(X509_NAME_entry_count(name), 5);
	expect_entry(name, 0, NID_countryName, V_ASN1_PRINTABLESTRING, "CN");
	expect_entry(name, 1, NID_stateOrProvinceName, V_ASN1_UTF8STRING, "hunan");
	expect_entry(name, 2, NID_organizationName, V_ASN1_UTF8STRING, unit.unit_name);
	expect_entry(name, 3, NID_organizationIdentifier, V_ASN1_UTF8STRING, unit.uscc);
	expect_entry(name, 4, NID_commonName, V_ASN1_UTF8STRING, unit.unit_name);
	ck_assert_str_eq(OBJ_nid2ln(NID_organizationIdentifier),
			 "organizationIdentifier");

	/* Random 16-byte positive serial. */
	serial = X509_get0_serialNumber(cert);
	ck_assert_int_eq(ASN1_STRING_length(serial), 16);
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);

	ck_assert_int_eq(X509_get_key_usage(cert),
			 KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
	ck_assert_int_eq(X509_get_ext_by_NID(cert, NID_key_usage, -1) >= 0, 1);
	ck_assert(X509_EXTENSION_get_critical(X509_get_ext(cert,
		X509_get_ext_by_NID(cert, NID_key_usage, -1))));
	ck_assert_int_eq(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
	bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert(!bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(cert));
	ck_assert_ptr_nonnull(X509_get0_authority_key_id(cert));
	ck_assert_int_eq(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_get_version(cert), X509_VERSION_3);
	X509_free(cert);
}
END_TEST

/*
 * Hunan's encryption certificate: RSA keeps keyEncipherment +
 * dataEncipherment; an EC or SM2 key gets keyAgreement and no
 * encipherment bit (RFC 5480; OpenSC gives those bits on an EC key no
 * usage at all, and p11test's usage_test fails). Signing is never allowed.
 */
START_TEST(test_encryption_certificate_key_usage)
{
	static const struct {
		fx_key_alg alg;
		uint32_t ku;
	} want[] = {
		{ FX_KEY_RSA_2048, KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT },
		{ FX_KEY_EC_P256, KU_KEY_AGREEMENT },
		{ FX_KEY_SM2, KU_KEY_AGREEMENT },
	};
	fx_unit unit;

	make_unit(&unit, "hunan", 1);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		EVP_PKEY *key = NULL;
		X509 *cert = NULL;
		int at;

		ck_assert_int_eq(fx_key_generate(want[i].alg, &key), 0);
		ck_assert_msg(fx_pki_issue_unit_ex(pki, "hunan", key, &unit, FX_VARIANT_VALID,
						   FX_PURPOSE_ENCRYPT, &cert) == 0,
			      "%s", tr_error_last());
		ck_assert_msg(X509_get_key_usage(cert) == want[i].ku,
			      "key alg %d: key usage %#x, want %#x", (int)want[i].alg,
			      X509_get_key_usage(cert), want[i].ku);
		at = X509_get_ext_by_NID(cert, NID_key_usage, -1);
		ck_assert_int_ge(at, 0);
		ck_assert(X509_EXTENSION_get_critical(X509_get_ext(cert, at)));
		ck_assert_int_eq(verify("hunan", cert), X509_V_OK);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}
END_TEST

START_TEST(test_validity_relative_to_now)
{
	static const struct {
		fx_variant v;
		long nb_days, na_days;
	} win[] = {
		{ FX_VARIANT_VALID, -1, 365 },
		{ FX_VARIANT_EXPIRED, -400, -30 },
		{ FX_VARIANT_NOT_YET_VALID, 30, 400 },
		{ FX_VARIANT_REVOKED, -1, 365 },
		{ FX_VARIANT_WRONG_CHAIN, -1, 365 },
	};
	/* A fixed clock far from today: 2031-03-15 00:00:00 UTC. */
	const time_t fixed = 1931299200;
	ASN1_TIME *ref = ASN1_TIME_set(NULL, fixed);
	fx_unit unit;
	X509 *cert;
	int days, secs;
	size_t i;

	ck_assert_ptr_nonnull(ref);
	fx_pki_set_now(pki, fixed);
	for (i = 0; i < sizeof(win) / sizeof(win[0]); i++) {
		make_unit(&unit, "sichuan", (unsigned)i);
		cert = issue("sichuan", FX_KEY_EC_P256, win[i].v, &unit);
		ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, ref,
						X509_get0_notBefore(cert)), 1);
		ck_assert_int_eq(days, win[i].nb_days);
		ck_assert_int_eq(secs, 0);
		ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, ref,
						X509_get0_notAfter(cert)), 1);
		ck_assert_int_eq(days, win[i].na_days);
		ck_assert_int_eq(secs, 0);
		X509_free(cert);
	}
	ASN1_TIME_free(ref);
}
END_TEST

START_TEST(test_identity_round_trip)
{
	fx_unit unit;
	X509 *cert, *back = NULL;
	char name[128], uscc[FX_USCC_LEN + 1], path[256], small[8];
	static const char odd[] = "湖南省𠀀测试（长沙）“引号”有限公司";

	make_unit(&unit, "hunan", 9);
	/* Also outside the BMP and full-width punctuation: bytes, not chars. */
	snprintf(unit.unit_name, sizeof(unit.unit_name), "%s", odd);
	cert = issue("hunan", FX_KEY_SM2, FX_VARIANT_VALID, &unit);

	/* Through PEM on disk, as the harness and portal read it. */
	snprintf(path, sizeof(path), "%s/unit.pem", tmp_dir);
	ck_assert_int_eq(fx_write_cert_pem(path, cert), 0);
	ck_assert_int_eq(fx_read_cert_pem(path, &back), 0);

	ck_assert_int_eq(fx_cert_unit_identity(back, name, sizeof(name), uscc,
					       sizeof(uscc)), 0);
	ck_assert_uint_eq(strlen(name), strlen(odd));
	ck_assert(memcmp(name, odd, sizeof(odd)) == 0);
	ck_assert_str_eq(uscc, unit.uscc);
	ck_assert(fx_uscc_valid(uscc));

	/* Either output may be skipped; too small a buffer is an error. */
	ck_assert_int_eq(fx_cert_unit_identity(back, NULL, 0, uscc, sizeof(uscc)), 0);
	ck_assert_int_eq(fx_cert_unit_identity(back, small, sizeof(small), NULL, 0),
			 TR_EINVAL);
	ck_assert_int_eq(fx_cert_unit_identity(back, NULL, 0, uscc, FX_USCC_LEN),
			 TR_EINVAL);
	X509_free(back);
	X509_free(cert);
}
END_TEST

START_TEST(test_identity_missing)
{
	char path[256], name[128], uscc[32];
	X509 *ca = NULL;

	/* A CA certificate has O and CN but no organizationIdentifier. */
	ck_assert_int_eq(fx_pki_ca_path(pki, "suzhou", "root.pem", path, sizeof(path)), 0);
	ck_assert_int_eq(fx_read_cert_pem(path, &ca), 0);
	ck_assert_int_eq(fx_cert_unit_identity(ca, name, sizeof(name), NULL, 0), 0);
	ck_assert_str_eq(name, "Suzhou CA");
	ck_assert_int_eq(fx_cert_unit_identity(ca, NULL, 0, uscc, sizeof(uscc)),
			 TR_ENOTFOUND);
	X509_free(ca);
}
END_TEST

START_TEST(test_ca_structure)
{
	char path[256];
	X509 *root, *issuing, *chain2 = NULL;
	X509_CRL *crl;
	BASIC_CONSTRAINTS *bc;
	FILE *f;
	size_t i;
	struct stat st;
	int days, secs;

	for (i = 0; fx_pki_ca_names[i]; i++) {
		const char *ca = fx_pki_ca_names[i];

		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "root.pem", path, sizeof(path)), 0);
		ck_assert_int_eq(fx_read_cert_pem(path, &root), 0);
		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "issuing.pem", path, sizeof(path)), 0);
		ck_assert_int_eq(fx_read_cert_pem(path, &issuing), 0);

		ck_assert_int_eq(X509_check_issued(root, root), X509_V_OK);
		ck_assert_int_eq(X509_check_issued(root, issuing), X509_V_OK);
		ck_assert_int_eq(X509_verify(issuing, X509_get0_pubkey(root)), 1);
		ck_assert_int_eq(X509_check_ca(root), 1);
		ck_assert(X509_get_key_usage(root) & KU_KEY_CERT_SIGN);
		ck_assert(X509_get_key_usage(root) & KU_CRL_SIGN);
		ck_assert(X509_get_key_usage(issuing) & KU_CRL_SIGN);
		bc = X509_get_ext_d2i(issuing, NID_basic_constraints, NULL, NULL);
		ck_assert_ptr_nonnull(bc);
		ck_assert(bc->ca);
		ck_assert_ptr_nonnull(bc->pathlen);
		ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), 0);
		BASIC_CONSTRAINTS_free(bc);
		ck_assert_ptr_nonnull(X509_get0_subject_key_id(root));
		ck_assert_ptr_nonnull(X509_get0_authority_key_id(root));
		ck_assert_ptr_nonnull(X509_get0_subject_key_id(issuing));
		ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(issuing),
						       X509_get0_subject_key_id(root)), 0);
		ck_assert(EVP_PKEY_is_a(X509_get0_pubkey(root), "EC"));

		/* chain.pem: issuing first, then root. */
		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "chain.pem", path, sizeof(path)), 0);
		ck_assert_ptr_nonnull(f = fopen(path, "r"));
		ck_assert_ptr_nonnull(chain2 = PEM_read_X509(f, NULL, NULL, NULL));
		ck_assert_int_eq(X509_cmp(chain2, issuing), 0);
		X509_free(chain2);
		ck_assert_ptr_nonnull(chain2 = PEM_read_X509(f, NULL, NULL, NULL));
		ck_assert_int_eq(X509_cmp(chain2, root), 0);
		X509_free(chain2);
		fclose(f);

		/* The CRL: signed by the issuing CA, empty, 7 days ahead. */
		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "crl.pem", path, sizeof(path)), 0);
		ck_assert_ptr_nonnull(f = fopen(path, "r"));
		ck_assert_ptr_nonnull(crl = PEM_read_X509_CRL(f, NULL, NULL, NULL));
		fclose(f);
		ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(issuing)), 1);
		/* No entries at all: the stack is absent, num gives -1. */
		ck_assert_int_le(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 0);
		ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, NULL,
						X509_CRL_get0_nextUpdate(crl)), 1);
		ck_assert(days == 7 || (days == 6 && secs > 86000));
		X509_CRL_free(crl);

		/* Keys are private. */
		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "issuing.key", path, sizeof(path)), 0);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);
		ck_assert_int_eq(fx_pki_ca_path(pki, ca, "root.key", path, sizeof(path)), 0);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);

		X509_free(root);
		X509_free(issuing);
	}
	ck_assert_int_eq(fx_pki_ca_path(pki, "beijing", "chain.pem", path,
					sizeof(path)), TR_ENOTFOUND);
	ck_assert_int_eq(fx_pki_ca_path(pki, "suzhou", "chain.pem", path, 8),
			 TR_EINVAL);
	ck_assert_str_eq(fx_pki_dir(pki), pki_dir);
}
END_TEST

START_TEST(test_tls_certificate)
{
	char path[256];
	X509 *ca = NULL, *server = NULL;
	EVP_PKEY *key = NULL;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	FILE *f;
	char line[64];
	struct stat st;

	ck_assert_int_eq(fx_pki_ca_path(pki, "tls", "ca.pem", path, sizeof(path)), 0);
	ck_assert_int_eq(fx_read_cert_pem(path, &ca), 0);
	ck_assert_int_eq(fx_pki_ca_path(pki, "tls", "server.pem", path, sizeof(path)), 0);
	ck_assert_int_eq(fx_read_cert_pem(path, &server), 0);
	ck_assert_int_eq(fx_pki_ca_path(pki, "tls", "server.key", path, sizeof(path)), 0);
	ck_assert_int_eq(fx_read_key_pem(path, &key), 0);
	ck_assert_int_eq(X509_check_private_key(server, key), 1);

	/* Unencrypted PKCS#8, the form GnuTLS in libmicrohttpd loads. */
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_str_eq(line, "-----BEGIN PRIVATE KEY-----\n");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	ck_assert_int_eq(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(server, "::1", 0), 1);
	ck_assert_int_eq(X509_check_host(server, "localhost", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_ip_asc(server, "127.0.0.2", 0), 0);
	ck_assert_int_eq(X509_get_extended_key_usage(server), XKU_SSL_SERVER);
	ck_assert_int_eq(X509_check_purpose(server, X509_PURPOSE_SSL_SERVER, 0), 1);

	ck_assert_ptr_nonnull(store = X509_STORE_new());
	ck_assert_ptr_nonnull(ctx = X509_STORE_CTX_new());
	ck_assert_int_eq(X509_STORE_add_cert(store, ca), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, server, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	ck_assert_msg(X509_verify_cert(ctx) == 1, "%s",
		      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);

	EVP_PKEY_free(key);
	X509_free(server);
	X509_free(ca);
}
END_TEST

static int crl_entries(const char *ca)
{
	char path[256];
	FILE *f;
	X509_CRL *crl;
	int n;

	ck_assert_int_eq(fx_pki_ca_path(pki, ca, "crl.pem", path, sizeof(path)), 0);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(crl = PEM_read_X509_CRL(f, NULL, NULL, NULL));
	fclose(f);
	n = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
	X509_CRL_free(crl);
	return n < 0 ? 0 : n; /* an empty CRL has no stack at all */
}

START_TEST(test_open_reads_back)
{
	fx_unit unit;
	X509 *first, *second, *valid;

	make_unit(&unit, "hebei", 0);
	first = issue("hebei", FX_KEY_EC_P256, FX_VARIANT_REVOKED, &unit);
	ck_assert_int_eq(crl_entries("hebei"), 1);
	fx_pki_free(pki);
	pki = NULL;

	ck_assert_msg(fx_pki_open(&pki, pki_dir) == 0, "%s", tr_error_last());
	ck_assert_str_eq(fx_pki_dir(pki), pki_dir);
	/* Same CA: certs issued before and after the reopen share a chain. */
	valid = issue("hebei", FX_KEY_EC_P256, FX_VARIANT_VALID, &unit);
	ck_assert_int_eq(verify("hebei", valid), X509_V_OK);
	second = issue("hebei", FX_KEY_EC_P256, FX_VARIANT_REVOKED, &unit);
	/* The rewritten CRL keeps the entry from before the reopen. */
	ck_assert_int_eq(crl_entries("hebei"), 2);
	ck_assert_int_eq(verify("hebei", first), X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(verify("hebei", second), X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(verify_cli("hebei", first), X509_V_ERR_CERT_REVOKED);
	ck_assert_int_eq(crl_entries("suzhou"), 0);

	X509_free(first);
	X509_free(second);
	X509_free(valid);
}
END_TEST

START_TEST(test_open_missing)
{
	fx_pki *other = NULL;
	char path[256];

	snprintf(path, sizeof(path), "%s/nothing-here", tmp_dir);
	ck_assert_int_eq(fx_pki_open(&other, path), TR_ENOTFOUND);
	ck_assert_ptr_null(other);
	ck_assert(strstr(tr_error_last(), "root.pem") != NULL);
}
END_TEST

START_TEST(test_revoke_after_issue)
{
	fx_unit unit;
	X509 *cert;

	make_unit(&unit, "suzhou", 1);
	cert = issue("suzhou", FX_KEY_RSA_2048, FX_VARIANT_VALID, &unit);
	ck_assert_int_eq(verify("suzhou", cert), X509_V_OK);
	ck_assert_int_eq(fx_pki_revoke(pki, cert), 0);
	ck_assert_int_eq(fx_pki_revoke(pki, cert), 0); /* twice: no-op */
	ck_assert_int_eq(crl_entries("suzhou"), 1);
	ck_assert_int_eq(verify("suzhou", cert), X509_V_ERR_CERT_REVOKED);
	X509_free(cert);
}
END_TEST

START_TEST(test_bad_arguments)
{
	fx_unit unit;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	make_unit(&unit, "suzhou", 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "beijing", key, &unit,
					   FX_VARIANT_VALID, &cert), TR_ENOTFOUND);
	ck_assert_ptr_null(cert);
	unit.uscc[17] = unit.uscc[17] == '0' ? '1' : '0';
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", key, &unit,
					   FX_VARIANT_VALID, &cert), TR_EINVAL);
	ck_assert_int_eq(fx_key_generate((fx_key_alg)99, &key), TR_EINVAL);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_create_is_fast)
{
	char dir[256];
	fx_pki *again = NULL;
	struct timespec a, b;
	double ms;

	snprintf(dir, sizeof(dir), "%s/again", tmp_dir);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(fx_pki_create(&again, dir, time(NULL)), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	fx_pki_free(again);
	/* ~30 ms plain; the bound leaves room for sanitizers and a busy box. */
	ck_assert_msg(ms < 2000, "fx_pki_create took %.0f ms", ms);
}
END_TEST

Suite *pki_suite(void)
{
	Suite *s = suite_create("pki");
	TCase *tc = tcase_create("pki");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_variant_verifies_as_labelled, 0,
			    sizeof(variants) / sizeof(variants[0]));
	tcase_add_test(tc, test_every_ca_and_key_alg);
	tcase_add_test(tc, test_unit_certificate_profile);
	tcase_add_test(tc, test_encryption_certificate_key_usage);
	tcase_add_test(tc, test_validity_relative_to_now);
	tcase_add_test(tc, test_identity_round_trip);
	tcase_add_test(tc, test_identity_missing);
	tcase_add_test(tc, test_ca_structure);
	tcase_add_test(tc, test_tls_certificate);
	tcase_add_test(tc, test_open_reads_back);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_revoke_after_issue);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_create_is_fast);
	suite_add_tcase(s, tc);
	return s;
}
