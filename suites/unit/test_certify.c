/*
 * tokenrig certify: the token kind table, the verdict and the batch
 * statistics, and the never-brick guard.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/softhsm/provision.h"
#include "fixtures/pki.h"
#include "harness/certify.h"
#include "harness/kinds.h"
#include "harness/token.h"

/* --- the kind table ----------------------------------------------------- */

START_TEST(kind_table_rows)
{
	const tr_kind *k;
	size_t rig = 0;

	/* The rig's kinds and the foreign ones are rows of the same table. */
	ck_assert_ptr_nonnull(tr_kind_find("softhsm"));
	ck_assert_ptr_nonnull(tr_kind_find("vcard"));
	ck_assert_ptr_nonnull(tr_kind_find("opensc"));
	ck_assert_ptr_nonnull(tr_kind_find(TR_KIND_MODULE));
	ck_assert_ptr_nonnull(tr_kind_find(TR_KIND_READER));
	ck_assert_ptr_null(tr_kind_find("yubikey"));
	for (size_t i = 0; (k = tr_kind_at(i)) != NULL; i++) {
		/* Every kind is the rig's or foreign, never both. */
		ck_assert_int_eq(!(k->flags & TR_KIND_RIG), !!(k->flags & TR_KIND_FOREIGN));
		rig += !!(k->flags & TR_KIND_RIG);
		ck_assert(k->what && *k->what);
		if (!(k->flags & TR_KIND_PUK_RESET))
			ck_assert_msg(k->no_reset != NULL, "%s: no reason why it cannot reset", k->name);
	}
	ck_assert_uint_eq(rig, 3);
	ck_assert_str_eq(tr_kind_rig_names(), "softhsm, vcard, opensc");
}
END_TEST

START_TEST(kind_flags_replace_names)
{
	/* What engine.c, steps.c, bench.c and env.c used to compare names for. */
	ck_assert(tr_kind_has("softhsm", TR_KIND_INTERPOSER));
	ck_assert(!tr_kind_has("vcard", TR_KIND_INTERPOSER));
	ck_assert(tr_kind_has("vcard", TR_KIND_CARD | TR_KIND_APDU));
	ck_assert(tr_kind_has("opensc", TR_KIND_CARD));
	ck_assert(!tr_kind_has("opensc", TR_KIND_APDU));
	ck_assert(tr_kind_has("opensc", TR_KIND_MODULE_GONE));
	ck_assert(!tr_kind_has("softhsm", TR_KIND_CARD));
	ck_assert(tr_kind_has("vcard", TR_KIND_SM2));
	ck_assert(!tr_kind_has("opensc", TR_KIND_SM2));
	ck_assert(!tr_kind_has("nosuchkind", 0) && !tr_kind_has("nosuchkind", TR_KIND_CARD));
	/* The rig's own tokens may be locked on purpose; a foreign one not by default. */
	ck_assert(tr_kind_has("softhsm", TR_KIND_DESTRUCTIVE));
	ck_assert(!tr_kind_has(TR_KIND_MODULE, TR_KIND_DESTRUCTIVE));
	ck_assert(tr_kind_has(TR_KIND_MODULE, TR_KIND_CERTIFY | TR_KIND_FOREIGN));
}
END_TEST

START_TEST(kind_flags_foreign_only)
{
	ck_assert_int_eq(tr_kind_set_flags("softhsm", 0), TR_EINVAL);
	ck_assert_int_eq(tr_kind_set_flags("nosuchkind", 0), TR_EINVAL);
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_READER, TR_KIND_DESTRUCTIVE | TR_KIND_INTERPOSER), 0);
	/* Still foreign and under certification rules; never the rig's interposer. */
	ck_assert(tr_kind_has(TR_KIND_READER, TR_KIND_DESTRUCTIVE | TR_KIND_APDU | TR_KIND_CERTIFY));
	ck_assert(!tr_kind_has(TR_KIND_READER, TR_KIND_INTERPOSER));
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_READER, 0), 0);
	ck_assert(!tr_kind_has(TR_KIND_READER, TR_KIND_DESTRUCTIVE));
}
END_TEST

START_TEST(kind_lists_and_scenarios)
{
	char *softhsm_vcard[] = { "softhsm", "vcard" }, *vcard[] = { "vcard" };

	ck_assert_int_eq(tr_kind_list_check("softhsm,vcard, opensc", TR_KIND_RIG), 0);
	ck_assert_int_eq(tr_kind_list_check("softhsm,module", TR_KIND_RIG), TR_EINVAL);
	ck_assert_int_eq(tr_kind_list_check("softhsm,vcards", 0), TR_EINVAL);
	ck_assert(strstr(tr_error_last(), "vcards"));
	ck_assert_int_eq(tr_kind_list_check(" , ", 0), TR_EINVAL);
	ck_assert(tr_kind_listed("softhsm,vcard", "vcard"));
	ck_assert(!tr_kind_listed("softhsm,vcard", "vcar"));
	ck_assert(tr_kind_listed(NULL, "opensc"));
	/* A vendor's module runs the scenarios written for SoftHSM, not the card-only ones. */
	ck_assert(tr_kind_scenario_allows(softhsm_vcard, 2, TR_KIND_MODULE));
	ck_assert(!tr_kind_scenario_allows(vcard, 1, TR_KIND_MODULE));
	ck_assert(tr_kind_scenario_allows(vcard, 1, TR_KIND_READER));
	ck_assert(!tr_kind_scenario_allows(vcard, 1, "softhsm"));
	ck_assert(tr_kind_scenario_allows(NULL, 0, "opensc"));
}
END_TEST

START_TEST(lockout_ids_are_destructive)
{
	const char *lock[] = { "SZ-OK", "HB-E08" }, *plain[] = { "TK-E01", "SZ-E02a" };

	ck_assert(tr_kind_destructive_ids(lock, 2));
	ck_assert(!tr_kind_destructive_ids(plain, 2));
	ck_assert(!tr_kind_destructive_ids(NULL, 0));
}
END_TEST

/* --- never brick a real key ---------------------------------------------- */

typedef struct fake_token {
	tr_token base;
	int tries;   /* what the token's flags say: 1 FINAL_TRY, 0 LOCKED, -1 unknown */
	int logins;  /* C_Login calls the token saw */
} fake_token;

static int fake_pin_tries(tr_token *tok)
{
	return ((fake_token *)tok)->tries;
}

static int fake_login(tr_token *tok, const char *pin)
{
	((fake_token *)tok)->logins++;
	return TR_TOKEN_EPIN_INCORRECT;
}

static const tr_token_ops fake_ops = { .kind = "pkcs11", .login = fake_login,
				       .pin_tries = fake_pin_tries };

/* What steps.c does before every deliberate wrong PIN. */
static int wrong_pin(fake_token *t, const char *kind)
{
	int error = tr_kind_guard_wrong_pin(&t->base, kind);

	return error < 0 ? error : tr_token_login(&t->base, "000000");
}

START_TEST(guard_stops_at_final_try)
{
	fake_token t = { .base = { .ops = &fake_ops }, .tries = 1 };

	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_MODULE, TR_KIND_KEYGEN), 0);
	ck_assert_int_eq(wrong_pin(&t, TR_KIND_MODULE), TR_KIND_EBRICK);
	ck_assert_int_eq(t.logins, 0);
	ck_assert(strstr(tr_error_last(), "CKF_USER_PIN_FINAL_TRY"));
	t.tries = 0;
	ck_assert_int_eq(wrong_pin(&t, TR_KIND_MODULE), TR_KIND_EBRICK);
	ck_assert(strstr(tr_error_last(), "CKF_USER_PIN_LOCKED"));
	ck_assert_int_eq(t.logins, 0);
	/* More tries left, or a token that does not tell: the wrong PIN may be tried. */
	t.tries = 2;
	ck_assert_int_eq(wrong_pin(&t, TR_KIND_MODULE), TR_TOKEN_EPIN_INCORRECT);
	t.tries = -1;
	ck_assert_int_eq(wrong_pin(&t, TR_KIND_MODULE), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(t.logins, 2);
	/* --destructive (and the rig's own tokens): the lockout is the point. */
	t.tries = 1;
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_MODULE, TR_KIND_DESTRUCTIVE), 0);
	ck_assert_int_eq(wrong_pin(&t, TR_KIND_MODULE), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(wrong_pin(&t, "softhsm"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_MODULE, 0), 0);
}
END_TEST

/* --- the verdict ---------------------------------------------------------- */

static json_t *case_of(const char *id, const char *status, const char *message)
{
	return json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:s}", "ids", id, "status", status,
			 "message", message, "portal", "suzhou", "algorithm", "p256",
			 "expected", status[0] == 'f' ? "tries = 0" : "", "actual",
			 status[0] == 'f' ? "tries -1" : "");
}

static const char *status_of(json_t *v)
{
	return json_string_value(json_object_get(v, "status"));
}

START_TEST(verdict_levels)
{
	json_t *cases = json_array(), *v, *extra;

	json_array_append_new(cases, case_of("TK-E01", "passed", ""));
	json_array_append_new(cases, case_of("TK-E01", "skipped", "the scenario is for kinds vcard"));
	json_array_append_new(cases, case_of("TK-E03", "skipped", "optional: no controls"));
	v = tr_certify_verdict(cases, NULL);
	ck_assert_str_eq(status_of(v), "CERTIFIED");
	ck_assert_uint_eq(json_array_size(json_object_get(v, "passed")), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(v, "skipped")), 1);
	json_decref(v);

	/* The lockout skipped as destructive: certified, non-destructively, and said so. */
	json_array_append_new(cases, case_of("TK-E02", "skipped", TR_DESTRUCTIVE_SKIP));
	v = tr_certify_verdict(cases, NULL);
	ck_assert_str_eq(status_of(v), "CERTIFIED (non-destructive)");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "not_tested"), 0)),
			 "TK-E02");
	json_decref(v);

	/* One failed case of an ID fails it, whatever passed elsewhere. */
	json_array_append_new(cases, case_of("TK-E01", "failed", "tries is '-1', expected '3'"));
	v = tr_certify_verdict(cases, NULL);
	ck_assert_str_eq(status_of(v), "NOT CERTIFIED");
	ck_assert_uint_eq(json_array_size(json_object_get(v, "passed")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(v, "failed"), 0), "expected")), "tries = 0");
	json_decref(v);
	json_decref(cases);

	/* The certification's own checks fail a token too. */
	cases = json_array();
	json_array_append_new(cases, case_of("SZ-OK", "passed", ""));
	extra = json_pack("[{s:s, s:s}]", "id", "CERT-FINAL-CHECK", "message", "objects differ");
	v = tr_certify_verdict(cases, extra);
	ck_assert_str_eq(status_of(v), "NOT CERTIFIED");
	json_decref(v);
	json_decref(extra);
	json_decref(cases);

	/* Nothing run is nothing certified: no false green. */
	cases = json_array();
	json_array_append_new(cases, case_of("TK-E03", "skipped", "optional"));
	v = tr_certify_verdict(cases, NULL);
	ck_assert_str_eq(status_of(v), "NOT CERTIFIED");
	json_decref(v);
	json_decref(cases);
}
END_TEST

START_TEST(latency_outliers_by_median_and_mad)
{
	const double batch[] = { 50.1, 50.6, 49.8, 51.0, 50.3, 120.0 };
	const double tight[] = { 50.0, 50.0, 50.0, 52.0, 50.0, 50.0 };
	int out[6];
	double med, mad;

	tr_certify_outliers(batch, 6, out, &med, &mad);
	ck_assert_double_eq_tol(med, 50.45, 1e-9);
	ck_assert_int_eq(out[5], 1);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(out[i], 0);
	/* MAD 0: the floor (10% of the median) keeps a 4% difference from being an outlier. */
	tr_certify_outliers(tight, 6, out, &med, &mad);
	ck_assert_double_eq_tol(mad, 0, 1e-12);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(out[i], 0);
	/* Two tokens are no batch. */
	tr_certify_outliers(batch + 4, 2, out, NULL, NULL);
	ck_assert_int_eq(out[0] + out[1], 0);
}
END_TEST

START_TEST(inventory_majority)
{
	const char *serials[] = { "A", "B", "C", "D" };
	const char *fields[] = { "firmware", "mechanisms" };
	json_t *invs = json_pack("[{s:s, s:[i,i]}, {s:s, s:[i,i]}, {s:s, s:[i]}, {s:s, s:[i,i]}]",
				 "firmware", "2.6", "mechanisms", 1, 2,
				 "firmware", "2.6", "mechanisms", 1, 2,
				 "firmware", "2.6", "mechanisms", 1,
				 "firmware", "2.5", "mechanisms", 1, 2);
	json_t *out = tr_certify_inventory_outliers(invs, serials, fields, 2);

	ck_assert_uint_eq(json_array_size(out), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "serial")), "D");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "field")),
			 "firmware");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 1), "serial")), "C");
	json_decref(out);
	/* No strict majority: nobody is the odd one out. */
	json_array_remove(invs, 0);
	json_array_remove(invs, 0);
	out = tr_certify_inventory_outliers(invs, serials, fields, 2);
	ck_assert_uint_eq(json_array_size(out), 0);
	json_decref(out);
	json_decref(invs);
}
END_TEST

/* --- no false green: a certified token's refusals are failures ---------- */

static char strict_dir[] = "/tmp/tokenrig-certify-XXXXXX";
static char shim_conf[300];

/* A SoftHSM2 token behind the interposer, whose faults model a weak module. */
static void strict_setup(void)
{
	char pki_dir[300], conf[300];
	fx_pki *pki;
	fx_unit unit;
	sh_token_spec spec = { .label = "weak", .key_label = "unit", .key_id = 1,
			       .alg = FX_KEY_EC_P256, .unit = &unit, .ca = "suzhou",
			       .variant = FX_VARIANT_VALID, .user_pin = "123456",
			       .so_pin = "87654321" };

	ck_assert_ptr_nonnull(mkdtemp(strict_dir));
	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", strict_dir);
	ck_assert_int_eq(fx_pki_create(&pki, pki_dir, time(NULL)), 0);
	ck_assert_int_eq(fx_unit_generate(&unit, 1, "suzhou", 0), 0);
	ck_assert_int_eq(sh_softhsm_configure(strict_dir, conf, sizeof(conf)), 0);
	ck_assert_msg(sh_softhsm_provision(SH_SOFTHSM_MODULE, pki, &spec, NULL) == 0, "%s",
		      tr_error_last());
	fx_pki_free(pki);
	snprintf(shim_conf, sizeof(shim_conf), "%s/shim.conf", strict_dir);
	setenv("TOKENRIG_SHIM_CONF", shim_conf, 1);
}

static void strict_teardown(void)
{
	tr_fs_remove_tree(strict_dir);
}

static void shim_faults(const char *text)
{
	char all[512];
	int n = snprintf(all, sizeof(all), "module = %s\nstate = p11shim.state\n%s",
			 SH_SOFTHSM_MODULE, text);

	ck_assert_int_eq(tr_fs_write_atomic(shim_conf, all, (size_t)n, 0644), 0);
}

/* Signs once; the outcome code, with the token strict or not. */
static int sign_once(int strict)
{
	const char *build = getenv("BUILD");
	char shim[300];
	tr_token *tok = NULL;
	unsigned char *sig = NULL;
	size_t len;
	uint64_t ns;
	int error;

	snprintf(shim, sizeof(shim), "%s/tokenrig-p11shim.so", build && *build ? build : "build");
	ck_assert_msg(tr_token_open_p11(&tok, shim, "pkcs11:token=weak;object=unit") == 0, "%s",
		      tr_error_last());
	tr_token_set_strict(tok, strict);
	ck_assert_int_eq(tr_token_login(tok, "123456"), 0);
	error = tr_token_sign(tok, (const unsigned char *)"x", 1, &sig, &len, &ns);
	free(sig);
	tr_token_close(tok);
	return error;
}

START_TEST(unsupported_function_is_a_failure)
{
	shim_faults("fault.C_Sign = rv=CKR_FUNCTION_NOT_SUPPORTED\n");
	/* tokenrig run: the kind cannot (a skip); certification: a failure, named. */
	ck_assert_int_eq(sign_once(0), TR_EDEPEND);
	ck_assert_int_eq(sign_once(1), TR_ERROR);
	ck_assert(strstr(tr_error_last(), "CKR_FUNCTION_NOT_SUPPORTED"));
}
END_TEST

START_TEST(general_error_is_removed_only_without_a_token)
{
	shim_faults("fault.C_Sign = rv=CKR_GENERAL_ERROR\n");
	ck_assert_int_eq(sign_once(0), TR_TOKEN_EREMOVED);
	/* The slot still shows the token: a token error, not "removed". */
	ck_assert_int_eq(sign_once(1), TR_ERROR);
	ck_assert(strstr(tr_error_last(), "CKR_GENERAL_ERROR"));
	ck_assert(strstr(tr_error_last(), "not removed"));
	/* Pulled during the signature: removed, strict or not. */
	shim_faults("remove_during = C_Sign weak\n");
	ck_assert_int_eq(sign_once(1), TR_TOKEN_EREMOVED);
}
END_TEST

/* --- certify --readers: the card's facts, the management key, what is left - */

START_TEST(chuid_guid_parsed)
{
	/* 53 { 30 FASC-N(2), 34 GUID(16), 3E signature(0), FE } as the card answers. */
	static const unsigned char chuid[] = {
		0x53, 0x18, 0x30, 0x02, 0xD4, 0x32, 0x34, 0x10, 0x00, 0x11, 0x22, 0x33, 0x44,
		0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0xFE, 0x00,
	};
	static const unsigned char no_guid[] = { 0x53, 0x04, 0x30, 0x02, 0xD4, 0x32 };
	static const unsigned char cut[] = { 0x53, 0x18, 0x30, 0x02, 0xD4, 0x32, 0x34, 0x10, 0x00 };
	static const unsigned char long_form[] = {
		0x53, 0x81, 0x12, 0x34, 0x10, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
	};
	char hex[33];

	ck_assert_int_eq(tr_certify_chuid_guid(chuid, sizeof(chuid), hex, sizeof(hex)), 0);
	ck_assert_str_eq(hex, "00112233445566778899aabbccddeeff");
	ck_assert_int_eq(tr_certify_chuid_guid(long_form, sizeof(long_form), hex, sizeof(hex)), 0);
	ck_assert_str_eq(hex, "0102030405060708090a0b0c0d0e0f10");
	ck_assert_int_eq(tr_certify_chuid_guid(no_guid, sizeof(no_guid), hex, sizeof(hex)),
			 TR_ENOTFOUND);
	ck_assert_str_eq(hex, "");
	/* A length past the answer is malformed, never read beyond it. */
	ck_assert_int_eq(tr_certify_chuid_guid(cut, sizeof(cut), hex, sizeof(hex)), TR_EPARSE);
	ck_assert_str_eq(hex, "");
}
END_TEST

START_TEST(mgmt_key_checked)
{
	ck_assert(tr_certify_mgmt_key_valid("010203040506070801020304050607080102030405060708"));
	ck_assert(tr_certify_mgmt_key_valid("ABCDEFabcdef0123456789ABCDEFabcdef0123456789ABCD"));
	ck_assert(!tr_certify_mgmt_key_valid(NULL));
	ck_assert(!tr_certify_mgmt_key_valid(""));
	ck_assert(!tr_certify_mgmt_key_valid("0102030405060708"));  /* 16: AES-128 is not 3DES */
	ck_assert(!tr_certify_mgmt_key_valid("01020304050607080102030405060708010203040506070g"));
	ck_assert(!tr_certify_mgmt_key_valid("0102030405060708010203040506070801020304050607080"));
}
END_TEST

START_TEST(left_line_names_what_is_left)
{
	char line[600];

	tr_certify_left_line(line, sizeof(line), 0, 1, "out/tokens/S/original-9a.der");
	ck_assert(strstr(line, "LEFT ON THE TOKEN: the certificate the rig wrote into key 9A"));
	ck_assert(strstr(line, "out/tokens/S/original-9a.der"));
	ck_assert(strstr(line, "--cleanup"));
	tr_certify_left_line(line, sizeof(line), 7, 0, "");
	ck_assert(strstr(line, "LEFT ON THE TOKEN: 7 object(s) labelled tokenrig-*"));
	tr_certify_left_line(line, sizeof(line), 0, 0, "");
	ck_assert(!strstr(line, "LEFT ON THE TOKEN"));
	ck_assert(strstr(line, "nothing the rig wrote was left"));
}
END_TEST

START_TEST(reader_row_is_a_card_in_apdus)
{
	const tr_kind *k = tr_kind_find(TR_KIND_READER);

	/* A card in a reader: APDUs, the vcard scenarios, certification rules. */
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->stands_for, TR_KIND_VCARD);
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_READER, TR_KIND_WRITE_CERT | TR_KIND_EXACT_TRIES), 0);
	ck_assert(tr_kind_has(TR_KIND_READER, TR_KIND_APDU | TR_KIND_FOREIGN | TR_KIND_CERTIFY |
					      TR_KIND_WRITE_CERT | TR_KIND_EXACT_TRIES));
	ck_assert(!tr_kind_has(TR_KIND_READER, TR_KIND_KEYGEN));
	ck_assert(!tr_kind_has(TR_KIND_READER, TR_KIND_CARD)); /* not the rig's cards: no reload */
	{
		char *vcard_only[] = { "vcard" };

		ck_assert(tr_kind_scenario_allows(vcard_only, 1, TR_KIND_READER));
	}
	ck_assert_int_eq(tr_kind_set_flags(TR_KIND_READER, 0), 0);
}
END_TEST

Suite *certify_suite(void)
{
	Suite *s = suite_create("certify");
	TCase *tc = tcase_create("kinds");

	tcase_add_test(tc, kind_table_rows);
	tcase_add_test(tc, kind_flags_replace_names);
	tcase_add_test(tc, kind_flags_foreign_only);
	tcase_add_test(tc, kind_lists_and_scenarios);
	tcase_add_test(tc, lockout_ids_are_destructive);
	tcase_add_test(tc, guard_stops_at_final_try);
	tcase_add_test(tc, reader_row_is_a_card_in_apdus);
	suite_add_tcase(s, tc);
	tc = tcase_create("readers");
	tcase_add_test(tc, chuid_guid_parsed);
	tcase_add_test(tc, mgmt_key_checked);
	tcase_add_test(tc, left_line_names_what_is_left);
	suite_add_tcase(s, tc);
	tc = tcase_create("verdict");
	tcase_add_test(tc, verdict_levels);
	tcase_add_test(tc, latency_outliers_by_median_and_mad);
	tcase_add_test(tc, inventory_majority);
	suite_add_tcase(s, tc);
	tc = tcase_create("no false green");
	tcase_add_checked_fixture(tc, strict_setup, strict_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, unsupported_function_is_a_failure);
	tcase_add_test(tc, general_error_is_removed_only_without_a_token);
	suite_add_tcase(s, tc);
	return s;
}
