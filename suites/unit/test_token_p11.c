/* The PKCS#11 token backend against a real SoftHSM2 token of a temp folder. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/softhsm/provision.h"
#include "fixtures/pki.h"
#include "harness/token.h"

static char dir[] = "/tmp/tokenrig-token-XXXXXX";
static const char pin[] = "123456";

/* Each test runs in its own process (CK_FORK): a fresh SoftHSM every time. */
static void setup(void)
{
	char pki_dir[256], conf[256];
	fx_pki *pki;
	fx_unit unit;
	sh_token_spec p256 = { .label = "t-p256", .key_label = "unit", .key_id = 1,
			       .alg = FX_KEY_EC_P256, .unit = &unit, .ca = "suzhou",
			       .variant = FX_VARIANT_VALID, .user_pin = pin, .so_pin = "87654321" };
	sh_token_spec rsa = p256;

	rsa.label = "t-rsa";
	rsa.alg = FX_KEY_RSA_2048;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", dir);
	ck_assert_int_eq(fx_pki_create(&pki, pki_dir, time(NULL)), 0);
	ck_assert_int_eq(fx_unit_generate(&unit, 1, "suzhou", 0), 0);
	ck_assert_int_eq(sh_softhsm_configure(dir, conf, sizeof(conf)), 0);
	ck_assert_msg(sh_softhsm_provision(SH_SOFTHSM_MODULE, pki, &p256, NULL) == 0, "%s", tr_error_last());
	ck_assert_msg(sh_softhsm_provision(SH_SOFTHSM_MODULE, pki, &rsa, NULL) == 0, "%s", tr_error_last());
	fx_pki_free(pki);
}

static void teardown(void)
{
	tr_fs_remove_tree(dir);
}

static void verify_signature(tr_token *tok, const unsigned char *sig, size_t sig_len,
			     const char *data)
{
	const unsigned char *der;
	size_t len;
	X509 *cert;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	ck_assert_int_eq(tr_token_certificate(tok, &der, &len), 0);
	cert = d2i_X509(NULL, &der, (long)len);
	ck_assert_ptr_nonnull(cert);
	ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)), 1);
	ck_assert_int_eq(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, strlen(data)), 1);
	EVP_MD_CTX_free(md);
	X509_free(cert);
}

static void sign_and_verify(const char *label, tr_sign_alg want)
{
	char uri[128];
	tr_token *tok;
	unsigned char *sig;
	size_t sig_len;
	uint64_t ns;
	const char *data = "tokenrig|suzhou|hall|challenge";

	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=unit", label);
	ck_assert_msg(tr_token_open_p11(&tok, SH_SOFTHSM_MODULE, uri) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_sign_alg(tok), want);
	ck_assert_str_eq(tr_token_kind(tok), "pkcs11");
	ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
				       &sig_len, &ns), TR_TOKEN_ENOT_LOGGED_IN);
	ck_assert_int_eq(tr_token_login(tok, "000000"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_token_login(tok, pin), 0);
	ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
				       &sig_len, &ns), 0);
	ck_assert_uint_gt(ns, 0);
	verify_signature(tok, sig, sig_len, data);
	free(sig);
	ck_assert_int_eq(tr_token_logout(tok), 0);
	tr_token_close(tok);
}

START_TEST(p256_signs_verifiably)
{
	sign_and_verify("t-p256", TR_SIGN_ECDSA_SHA256);
}
END_TEST

START_TEST(rsa_signs_verifiably)
{
	sign_and_verify("t-rsa", TR_SIGN_RSA_PKCS1_SHA256);
}
END_TEST

START_TEST(clear_errors_in_bounded_time)
{
	tr_token *tok = NULL;
	char with_path[4200];
	uint64_t start = tr_clock_ns();

	ck_assert_int_eq(tr_token_open_p11(&tok, "/nonexistent/module.so", "pkcs11:token=x"),
			 TR_TOKEN_ENODRIVER);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "/nonexistent/module.so"));
	ck_assert_int_eq(tr_token_open_p11(&tok, "/etc/hostname", "pkcs11:token=x"),
			 TR_TOKEN_ENODRIVER);
	ck_assert_int_eq(tr_token_open_p11(&tok, SH_SOFTHSM_MODULE, "pkcs11:token=absent"),
			 TR_TOKEN_ENOTOKEN);
	ck_assert_int_eq(tr_token_open_p11(&tok, SH_SOFTHSM_MODULE, "http://not-a-uri"),
			 TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "bad PKCS#11 URI"));
	ck_assert_int_eq(tr_token_open_p11(&tok, SH_SOFTHSM_MODULE, "pkcs11:token=t-p256;object=nothing"),
			 TR_ENOTFOUND);
	/* module-path inside the URI works as well as an argument */
	snprintf(with_path, sizeof(with_path), "pkcs11:token=t-rsa;object=unit?module-path=%s",
		 SH_SOFTHSM_MODULE);
	ck_assert_int_eq(tr_token_open_p11(&tok, NULL, with_path), 0);
	tr_token_close(tok);
	ck_assert_uint_lt(tr_clock_ns() - start, 5000000000ull);
}
END_TEST

/* The token layer through the interposer in front of SoftHSM2, configured with conf_text. */
static int open_via_shim(const char *conf_text, const char *label, tr_token **tok)
{
	char conf[300], shim[4096], uri[128], text[8192];
	const char *env = getenv("TOKENRIG_SHIM"), *build = getenv("BUILD");

	if (env && *env)
		snprintf(shim, sizeof(shim), "%s", env);
	else
		snprintf(shim, sizeof(shim), "%s/tokenrig-p11shim.so",
			 build && *build ? build : "build");
	snprintf(conf, sizeof(conf), "%s/shim.conf", dir);
	snprintf(text, sizeof(text), "module = %s\n%s", SH_SOFTHSM_MODULE, conf_text);
	ck_assert_int_eq(tr_fs_write_atomic(conf, text, strlen(text), 0600), 0);
	setenv("TOKENRIG_SHIM_CONF", conf, 1);
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=unit", label);
	return tr_token_open_p11(tok, shim, uri);
}

/* JS-E01: the module lists no slot while the key is in: the driver's case. */
START_TEST(empty_list_with_key_in_is_the_driver)
{
	tr_token *tok = NULL;

	ck_assert_int_eq(open_via_shim("driver = empty\n",
				       "t-p256", &tok), TR_TOKEN_ENODRIVER);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "does not recognise the key"));
}
END_TEST

/* TK-E04: a pulled key under a working driver is no token, not the driver. */
START_TEST(pulled_key_is_no_token)
{
	tr_token *tok = NULL;

	ck_assert_int_eq(open_via_shim("token.t-p256.present = no\n", "t-p256", &tok),
			 TR_TOKEN_ENOTOKEN);
	ck_assert_int_eq(open_via_shim("token.t-p256.present = no\n", "t-rsa", &tok), 0);
	tr_token_close(tok);
}
END_TEST

/*
 * OpenSC's label of a card whose unit name is long Chinese: whole
 * characters, then E9 99 (a character cut short), then "...".
 */
START_TEST(label_cut_inside_a_character)
{
	tr_token cut = { 0 }, whole = { 0 };

	memcpy(cut.label, "\xE8\x8B\x8F\xE5\xB7\x9E\xE6\x9C\x89\xE9\x99...", 14);
	ck_assert_int_eq(tr_token_label_utf8(&cut), 0);
	snprintf(whole.label, sizeof(whole.label), "苏州有限公司");
	ck_assert_int_eq(tr_token_label_utf8(&whole), 1);
	ck_assert_int_eq(tr_token_label_utf8(NULL), 1);
}
END_TEST

Suite *token_p11_suite(void)
{
	Suite *s = suite_create("token_p11");
	TCase *tc = tcase_create("softhsm");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, p256_signs_verifiably);
	tcase_add_test(tc, rsa_signs_verifiably);
	tcase_add_test(tc, clear_errors_in_bounded_time);
	tcase_add_test(tc, empty_list_with_key_in_is_the_driver);
	tcase_add_test(tc, pulled_key_is_no_token);
	tcase_add_test(tc, label_cut_inside_a_character);
	suite_add_tcase(s, tc);
	return s;
}
