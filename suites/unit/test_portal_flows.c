/*
 * The province flows of the mock portals (API.md, catalog sections 1-4):
 * Suzhou's HR hall and upgrade, Hebei, Sichuan, Hunan, called through
 * pt_portal_handle() against a real test PKI.
 */
#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fsutil.h"
#include "emulators/portal/portal.h"
#include "emulators/portal/portal_def.h"
#include "emulators/portal/portal_hunan.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"
#include "fixtures/provinces.h"
#include "portal_testkit.h"

/* Catalog texts (failure-paths.md section 1), byte for byte. */
#define TXT_NOT_REGISTERED \
	"该证书查询不到对应的单位账户信息，无法登录，请先注册该单位帐号"
#define TXT_ALREADY_REGISTERED "组织信息已成功注册，无法保存！"
#define TXT_PHONE_TAKEN "经办人手机号已注册"

static void open_portal(const char *name)
{
	ck_assert_int_eq(pt_portal_new(&portal, name, pki_dir, 1), 0);
}

static void suzhou_setup(void) { open_portal("suzhou"); }
static void hebei_setup(void) { open_portal("hebei"); }
static void sichuan_setup(void) { open_portal("sichuan"); }
static void hunan_setup(void) { open_portal("hunan"); }

/* ---- keys, certificates, signatures ---- */

/* A unit of province with a certificate of CA ca. */
static void unit_make(unit_id *u, const char *province, const char *ca,
		      unsigned index, fx_variant variant)
{
	memset(u, 0, sizeof(*u));
	u->alg = FX_KEY_EC_P256;
	ck_assert_int_eq(fx_unit_generate(&u->unit, SEED, province, index), 0);
	ck_assert_int_eq(fx_key_generate(u->alg, &u->key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, ca, u->key, &u->unit,
					   variant, &u->cert), 0);
}

/* A new key and certificate of the same unit (a new token). */
static void unit_renew(unit_id *u, const char *ca, fx_variant variant)
{
	EVP_PKEY_free(u->key);
	X509_free(u->cert);
	ck_assert_int_eq(fx_key_generate(u->alg, &u->key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, ca, u->key, &u->unit, variant,
					   &u->cert), 0);
}

/* A login of u at site with nonce, signing text. */

/* ---- more helpers ---- */

static char *spki_b64(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(key, &der);
	char *out;

	ck_assert_int_gt(len, 0);
	out = b64(der, (size_t)len);
	OPENSSL_free(der);
	return out;
}

static void serial_of(X509 *cert, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = BN_bn2hex(bn);

	snprintf(buf, len, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* A signed submission of doc by u to path with session sess. */
static const answer *submit(const char *path, const char *sess,
			    const unit_id *u, const char *doc)
{
	char *sig = sign_b64(u->key, u->alg, doc);

	post(path, sess, "{\"document\":\"%s\",\"signature\":\"%s\",\"algorithm\":\"%s\"}",
	     doc, sig, alg_name(u->alg));
	free(sig);
	return &last;
}

/* Replaces u's certificate by the base64 DER one of the answer. */
static void take_cert(unit_id *u, const char *b64cert)
{
	unsigned char *der;
	const unsigned char *p;
	int len;

	der = malloc(strlen(b64cert));
	ck_assert_ptr_nonnull(der);
	len = EVP_DecodeBlock(der, (const unsigned char *)b64cert, (int)strlen(b64cert));
	ck_assert_int_gt(len, 0);
	while (len > 0 && b64cert[strlen(b64cert) - 1] == '=' && 0)
		len--;
	p = der;
	X509_free(u->cert);
	/* d2i ignores the zero padding EVP_DecodeBlock leaves. */
	u->cert = d2i_X509(NULL, &p, len);
	ck_assert_ptr_nonnull(u->cert);
	free(der);
}

static const char *msg(void)
{
	return str("message");
}

/* Every listed POST route answers malformed input with 4xx JSON. */
static void malformed_all(const char *const *paths, const char *session)
{
	static const char bad_utf8[] = "{\"a\":\"\xff\"}";
	size_t i;

	for (i = 0; paths[i]; i++) {
		const answer *a;

		a = raw(portal, "POST", paths[i], "text/plain", NULL, "{}", 2);
		ck_assert_uint_eq(a->status, 415);
		a = post(paths[i], session, "{\"a\":");
		ck_assert_msg(a->status == 400 || a->status == 401, "%s: %u",
			      paths[i], a->status);
		a = raw(portal, "POST", paths[i], "application/json", NULL,
			bad_utf8, strlen(bad_utf8));
		ck_assert_msg(a->status == 400 || a->status == 401, "%s", paths[i]);
		a = post(paths[i], session, "{\"zz_unknown\":1}");
		ck_assert_msg(a->status == 400 || a->status == 401, "%s", paths[i]);
		a = post(paths[i], session, "[]");
		ck_assert_msg(a->status == 400 || a->status == 401, "%s", paths[i]);
		a = post(paths[i], "00000000000000000000000000000000", "{}");
		ck_assert_msg(a->status >= 400 && a->status < 500, "%s", paths[i]);
	}
}

/* ---- Suzhou: HR hall, upgrade, settlement period, assistant ---- */

static void hr_unit(const char *ss, const char *name, const char *uscc)
{
	ck_ok(post("/admin/suzhou/hr-units", NULL,
		   "{\"ss_number\":\"%s\",\"unit_name\":\"%s\",\"uscc\":\"%s\"}",
		   ss, name, uscc), 200);
}

static void ca_mapping(const char *uscc, const char *ss)
{
	ck_ok(post("/admin/suzhou/ca-mappings", NULL,
		   "{\"uscc\":\"%s\",\"ss_number\":\"%s\"}", uscc, ss), 200);
}

START_TEST(test_js_mapping)
{
	unit_id u;

	unit_make(&u, "suzhou", "suzhou", 20, FX_VARIANT_VALID);
	ck_error(login("hr", &u), 403, "JS_NO_CA_MAPPING");
	ck_assert_str_eq(msg(), "未查询到CA对照信息");
	ca_mapping(u.unit.uscc, u.unit.ss_number);
	ck_error(login("hr", &u), 403, "JS_UNIT_NOT_FOUND");
	ck_assert_str_eq(msg(), "未查询到单位信息");
	hr_unit(u.unit.ss_number, "苏州旧名称有限公司", u.unit.uscc);
	ck_error(login("hr", &u), 403, "JS_UNIT_MISMATCH");
	ck_assert_str_eq(msg(), "单位信息不匹配");
	hr_unit(u.unit.ss_number, u.unit.unit_name, u.unit.uscc);
	ck_ok(login("hr", &u), 200);
	ck_assert_str_eq(str("ss_number"), u.unit.ss_number);
	unit_free(&u);
}
END_TEST

static const answer *ca_mapping_cert(X509 *cert, const char *ss)
{
	char *b = cert_b64(cert);

	post("/admin/suzhou/ca-mappings", NULL,
	     "{\"certificate\":\"%s\",\"ss_number\":\"%s\"}", b, ss);
	free(b);
	return &last;
}

/*
 * JS-E02/E13: the CA counter binds one certificate; a renewed one (new
 * serial) is not found until it is bound too. The registry is untouched.
 */
START_TEST(test_js_mapping_cert)
{
	unit_id u, other;
	char serial[80];
	X509 *old;

	unit_make(&u, "suzhou", "suzhou", 24, FX_VARIANT_VALID);
	hr_unit(u.unit.ss_number, u.unit.unit_name, u.unit.uscc);
	ck_ok(ca_mapping_cert(u.cert, u.unit.hf_number), 200);
	serial_of(u.cert, serial, sizeof(serial));
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(last.body, "mapping"), "serial")), serial);
	ck_error(login("hr", &u), 403, "JS_UNIT_NOT_FOUND");
	ck_ok(ca_mapping_cert(u.cert, u.unit.ss_number), 200);
	ck_ok(login("hr", &u), 200);
	/* A renewal: same key, same unit, another certificate. */
	old = X509_dup(u.cert);
	X509_free(u.cert);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", u.key, &u.unit,
					   FX_VARIANT_VALID, &u.cert), 0);
	ck_error(login("hr", &u), 403, "JS_NO_CA_MAPPING");
	ck_assert_str_eq(msg(), "未查询到CA对照信息");
	ck_ok(ca_mapping_cert(u.cert, u.unit.ss_number), 200);
	ck_ok(login("hr", &u), 200);
	ck_assert_str_eq(str("ss_number"), u.unit.ss_number);
	/* The entry names one certificate: the old one is out now. */
	X509_free(u.cert);
	u.cert = old;
	ck_error(login("hr", &u), 403, "JS_NO_CA_MAPPING");
	/* A unit-level entry takes any certificate of the USCC again. */
	ca_mapping(u.unit.uscc, u.unit.ss_number);
	ck_ok(login("hr", &u), 200);

	/* Bad requests. */
	ck_error(post("/admin/suzhou/ca-mappings", NULL, "{\"ss_number\":\"1\"}"),
		 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/ca-mappings", NULL,
		      "{\"uscc\":\"%s\",\"certificate\":\"AAAA\",\"ss_number\":\"1\"}",
		      u.unit.uscc), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/ca-mappings", NULL,
		      "{\"certificate\":\"AAAA\",\"ss_number\":\"1\"}"),
		 400, "CERT_INVALID");
	ck_error(ca_mapping_cert(u.cert, "12a"), 400, "BAD_FIELD");
	unit_make(&other, "suzhou", "suzhou", 25, FX_VARIANT_EXPIRED);
	ck_error(ca_mapping_cert(other.cert, other.unit.ss_number), 403,
		 "CERT_EXPIRED");
	unit_free(&other);
	unit_make(&other, "suzhou", "other", 26, FX_VARIANT_VALID);
	ck_error(ca_mapping_cert(other.cert, other.unit.ss_number), 403,
		 "CERT_CHAIN");
	unit_free(&other);
	unit_free(&u);
}
END_TEST

START_TEST(test_js_settlement)
{
	unit_id u;
	char hr[80];

	unit_make(&u, "suzhou", "suzhou", 21, FX_VARIANT_VALID);
	ca_mapping(u.unit.uscc, u.unit.ss_number);
	hr_unit(u.unit.ss_number, u.unit.unit_name, u.unit.uscc);
	ck_ok(post("/admin/clock", NULL, "{\"mday\":8,\"hour\":9}"), 200);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_error(submit("/hr/declarations", hr, &u, "用工参保 2024"), 403,
		 "JS_SETTLEMENT_PERIOD");
	ck_ok(post("/admin/clock", NULL, "{\"mday\":11,\"hour\":0}"), 200);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_ok(submit("/hr/declarations", hr, &u, "用工参保 2024"), 201);
	ck_assert_int_eq(strncmp(str("receipt"), "JS", 2), 0);
	/* 6th 23:00 is still open, 7th 00:00 is closed. */
	ck_ok(post("/admin/clock", NULL, "{\"mday\":6,\"hour\":23}"), 200);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_ok(submit("/hr/declarations", hr, &u, "x"), 201);
	advance(3600);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_error(submit("/hr/declarations", hr, &u, "x"), 403,
		 "JS_SETTLEMENT_PERIOD");
	unit_free(&u);
}
END_TEST

START_TEST(test_js_upgrade)
{
	unit_id u;
	char upg[80], hr[80], order[64], code[16], *spki;

	unit_make(&u, "suzhou", "suzhou-legacy", 22, FX_VARIANT_VALID);
	ca_mapping(u.unit.uscc, "32050000000001"); /* a stale number */
	hr_unit(u.unit.ss_number, u.unit.unit_name, u.unit.uscc);
	/* JS-E10, SZ-E04 */
	ck_error(login("hr", &u), 403, "JS_UPGRADE_REQUIRED");
	ck_error(login("reg", &u), 403, "SZ_UPGRADE_REQUIRED");
	ck_assert_ptr_nonnull(strstr(msg(), "0512-81876166"));
	/* The hall still takes it (not registered, though). */
	ck_error(login("hall", &u), 403, "SZ_NOT_REGISTERED");

	login_ok("upg", &u, upg, sizeof(upg));
	ck_ok(post("/upg/sms", upg, "{\"phone\":\"%s\"}", u.unit.operator_phone), 200);
	ck_ok(post("/admin/suzhou/sms", NULL, "{\"phone\":\"%s\"}",
		   u.unit.operator_phone), 200);
	snprintf(code, sizeof(code), "%s", str("sms_code"));
	ck_assert_int_eq(strlen(code), 6);
#define ORDER(ss, address, sms)                                              \
	post("/upg/orders", upg,                                             \
	     "{\"uscc\":\"%s\",\"ss_number\":\"%s\",\"operator_name\":\"%s\"," \
	     "\"operator_phone\":\"%s\",\"operator_id\":\"%s\",%s"          \
	     "\"email\":\"a@b.cn\",\"sms_code\":\"%s\"}",                     \
	     u.unit.uscc, ss, u.unit.operator_name, u.unit.operator_phone,    \
	     u.unit.operator_id, address, sms)
#define NEW_SMS()                                                             \
	do {                                                                  \
		ck_ok(post("/upg/sms", upg, "{\"phone\":\"%s\"}",              \
			   u.unit.operator_phone), 200);                      \
		ck_ok(post("/admin/suzhou/sms", NULL, "{\"phone\":\"%s\"}",     \
			   u.unit.operator_phone), 200);                      \
		snprintf(code, sizeof(code), "%s", str("sms_code"));          \
	} while (0)
	ck_error(ORDER(u.unit.ss_number, "", "000000"), 403, "JS_UPG_SMS_INVALID");
	/* The old declared key model is gone: an unknown field. */
	ck_error(post("/upg/orders", upg, "{\"key_model\":\"blue\"}"), 400,
		 "BAD_FIELD");
	ck_error(ORDER("12ab", "", code), 400, "BAD_FIELD");

	/* JS-E11: the token refuses the new key; a blue key needs an address. */
	ck_ok(ORDER(u.unit.ss_number, "", code), 201);
	snprintf(order, sizeof(order), "%s", str("order"));
	ck_assert_ptr_null(json_object_get(last.body, "key_model"));
	ck_error(post("/upg/orders/confirm", upg, "{\"order\":\"%s\"}", order), 400,
		 "BAD_FIELD");
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"public_key\":\"AAAA\",\"token_error\":\"x\"}",
		      order), 400, "BAD_FIELD");
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"token_error\":\"\"}", order), 400,
		 "BAD_FIELD");
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"token_error\":\"GENERATE: 6A80\"}", order),
		 409, "JS_UPG_ADDRESS_REQUIRED");
	ck_assert_ptr_nonnull(strstr(msg(), "需要邮寄"));
	NEW_SMS();
	ck_ok(ORDER(u.unit.ss_number, "\"address\":\"苏州市姑苏区1号\",", code), 201);
	snprintf(order, sizeof(order), "%s", str("order"));
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"token_error\":\"GENERATE: 6A80\"}", order),
		 403, "JS_UPG_BLUE_KEY");
	{
		json_t *r = json_object_get(last.body, "replacement");

		ck_assert_str_eq(json_string_value(json_object_get(r, "mail_to")),
				 "苏州市姑苏区1号");
		ck_assert_str_eq(json_string_value(json_object_get(r, "operator_id")),
				 u.unit.operator_id);
		ck_assert_str_eq(json_string_value(json_object_get(r, "notice")),
				 "新Ukey密码为上面填写的经办人身份证后6位！！！");
		ck_assert_int_eq(strncmp(json_string_value(json_object_get(r, "id")),
					 "SZR", 3), 0);
	}
	/* A replaced order is over. */
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"token_error\":\"x\"}", order), 409,
		 "JS_UPG_ORDER_DONE");

	/* JS-E14: no number at all goes through; the HR hall finds no unit. */
	NEW_SMS();
	ck_ok(ORDER("", "", code), 201);
	snprintf(order, sizeof(order), "%s", str("order"));
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"public_key\":\"AAAA\"}", order), 400,
		 "BAD_FIELD");
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"nope\",\"public_key\":\"AAAA\"}"), 404,
		 "JS_UPG_NO_ORDER");
	/* The new key is generated on the token; the PIN does not change. */
	EVP_PKEY_free(u.key);
	ck_assert_int_eq(fx_key_generate(u.alg, &u.key), 0);
	spki = spki_b64(u.key);
	ck_ok(post("/upg/orders/confirm", upg,
		   "{\"order\":\"%s\",\"public_key\":\"%s\"}", order, spki), 201);
	take_cert(&u, str("certificate"));
	ck_error(post("/upg/orders/confirm", upg,
		      "{\"order\":\"%s\",\"public_key\":\"%s\"}", order, spki), 409,
		 "JS_UPG_ORDER_DONE");
	free(spki);
	/* The order bound its (empty) number to the new certificate. */
	ck_error(login("hr", &u), 403, "JS_UNIT_NOT_FOUND");
	ck_assert_str_eq(msg(), "未查询到单位信息");
	/* The counter binds the right number to the upgraded certificate. */
	ck_ok(ca_mapping_cert(u.cert, u.unit.ss_number), 200);
	login_ok("hr", &u, hr, sizeof(hr));
	ck_ok(login("reg", &u), 200);
	/* A current certificate needs no upgrade. */
	login_ok("upg", &u, upg, sizeof(upg));
	ck_error(ORDER(u.unit.ss_number, "", "123456"), 409, "JS_UPG_NOT_NEEDED");
#undef NEW_SMS
#undef ORDER
	unit_free(&u);
}
END_TEST

START_TEST(test_sz_assistant)
{
	unit_id u;
	char reg[80];

	unit_make(&u, "suzhou", "suzhou", 23, FX_VARIANT_VALID);
	login_ok("reg", &u, reg, sizeof(reg));
	ck_ok(register_unit(reg, &u.unit, NULL), 201);
	assistant = "2.9.9";
	ck_error(login("hall", &u), 403, "SZ_ASSISTANT_OUTDATED");
	ck_assert_ptr_nonnull(strstr(msg(), "3.0.0"));
	/* SZ-E03: the seed's symptom, byte for byte. */
	ck_assert_ptr_nonnull(strstr(msg(), "校验完密码后，登录按钮不可点击，无法登录"));
	assistant = "3.0";
	ck_ok(login("hall", &u), 200);
	assistant = "5.0.22.606";
	ck_ok(login("hall", &u), 200);
	unit_free(&u);
}
END_TEST

/* SZ-E07: the operator's phone changed in the hall, refused while taken. */
START_TEST(test_sz_operator_phone)
{
	unit_id a, b;
	char reg[80], hall[80];

	unit_make(&a, "suzhou", "suzhou", 24, FX_VARIANT_VALID);
	unit_make(&b, "suzhou", "suzhou", 25, FX_VARIANT_VALID);
	login_ok("reg", &b, reg, sizeof(reg));
	ck_ok(register_unit(reg, &b.unit, a.unit.operator_phone), 201);
	login_ok("reg", &a, reg, sizeof(reg));
	ck_error(register_unit(reg, &a.unit, NULL), 409, "SZ_PHONE_TAKEN");
	ck_ok(register_unit(reg, &a.unit, "19900000001"), 201);

	login_ok("hall", &a, hall, sizeof(hall));
	ck_error(post("/hall/operator", hall, "{\"operator_phone\":\"%s\"}",
		      a.unit.operator_phone), 409, "SZ_PHONE_TAKEN");
	ck_assert_str_eq(msg(), "经办人手机号已注册");
	ck_error(post("/hall/operator", hall, "{\"operator_phone\":\"2123\"}"),
		 400, "BAD_FIELD");
	ck_error(post("/hall/operator", reg, "{\"operator_phone\":\"%s\"}",
		      a.unit.operator_phone), 401, "NO_SESSION");
	/* Its own number again is no conflict. */
	ck_ok(post("/hall/operator", hall, "{\"operator_phone\":\"19900000001\"}"), 200);

	login_ok("hall", &b, hall, sizeof(hall));
	ck_ok(post("/hall/operator", hall, "{\"operator_phone\":\"%s\"}",
		   b.unit.operator_phone), 200);
	login_ok("hall", &a, hall, sizeof(hall));
	ck_ok(post("/hall/operator", hall, "{\"operator_phone\":\"%s\"}",
		   a.unit.operator_phone), 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(last.body, "unit"),
							   "operator_phone")),
			 a.unit.operator_phone);
	/* The number a gave up is free: a new registration may use it. */
	unit_free(&b);
	unit_make(&b, "suzhou", "suzhou", 26, FX_VARIANT_VALID);
	login_ok("reg", &b, reg, sizeof(reg));
	ck_ok(register_unit(reg, &b.unit, "19900000001"), 201);
	unit_free(&a);
	unit_free(&b);
}
END_TEST

/* JS-E01, SZ-E09: the sites' client-side texts. */
START_TEST(test_sz_texts)
{
	json_t *t;
	char hall_driver[512];

	ck_ok(get("/hall/ui"), 200);
	t = json_object_get(last.body, "texts");
	snprintf(hall_driver, sizeof(hall_driver), "%s",
		 json_string_value(json_object_get(t, "driver_missing")));
	ck_assert_str_eq(json_string_value(json_object_get(t, "pin_locked")),
			 "证书密码已锁定，如果PIN码忘记了需要去CA服务网点柜台重置，"
			 "请带好CA，经办人身份证，营业执照复印件加盖公章前往办理。");
	/* The HR hall's page is the Jiangsu HR certificate assistant's. */
	ck_ok(get("/hr/ui"), 200);
	t = json_object_get(last.body, "texts");
	ck_assert_str_ne(json_string_value(json_object_get(t, "driver_missing")), hall_driver);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(t, "driver_missing")),
				     "江苏人社证书助手"));
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(t, "driver_missing")),
				     "选择“华申（苏州）”驱动进行安装，安装后重启电脑"));
}
END_TEST

START_TEST(test_version_cmp)
{
	ck_assert_int_lt(pt_version_cmp("5.0.22.605", "5.0.22.606"), 0);
	ck_assert_int_eq(pt_version_cmp("5.0.22.606", "5.0.22.606"), 0);
	ck_assert_int_gt(pt_version_cmp("5.0.100.1", "5.0.22.606"), 0);
	ck_assert_int_lt(pt_version_cmp("5.0.9", "5.0.22.606"), 0);
	ck_assert_int_eq(pt_version_cmp("3", "3.0.0"), 0);
	ck_assert_int_lt(pt_version_cmp("", "1"), 0);
	ck_assert_int_lt(pt_version_cmp("abc", "0"), 0);
	ck_assert_int_lt(pt_version_cmp("1..2", "0"), 0);
	ck_assert_int_lt(pt_version_cmp("1.", "0"), 0);
	ck_assert_int_gt(pt_version_cmp("99999999999999999999", "1"), 0);
}
END_TEST

START_TEST(test_sz_malformed)
{
	static const char *const paths[] = {
		"/hr/declarations", "/hall/operator", "/upg/sms", "/upg/orders",
		"/upg/orders/confirm", "/admin/suzhou/hr-units",
		"/admin/suzhou/ca-mappings", "/admin/suzhou/sms", NULL,
	};

	malformed_all(paths, NULL);
}
END_TEST

/* ---- Hebei ---- */

/* Seed 002 and the rig's own Hebei texts (API.md), byte for byte. */
#define HB_VENDOR "河北 CA"
#define HB_TXT_NOT_INSURED "若您还未参保，请点击我去做单位参保登记"
#define HB_TXT_CERT_EXPIRED \
	"该数字证书已过期。可网上办理证书延期，也可携带河北 CA 证书到河北 CA 当地办事处现场办理"
#define HB_TXT_CERT_LOST \
	"该数字证书已挂失，请登录河北 CA 网站 www.hebca.com，点击首页“丢失补办”，按照流程办理"

static const answer *hb_register(const char *site, const char *user,
				 const char *region)
{
	char path[64];

	snprintf(path, sizeof(path), "/%s/accounts", site);
	return post(path, NULL,
		    "{\"username\":\"%s\",\"password\":\"secret-123\",\"region\":\"%s\"}",
		    user, region);
}

static void hb_pwlogin(const char *user, char *sess, size_t len)
{
	ck_ok(post("/prov/pwlogin", NULL,
		   "{\"username\":\"%s\",\"password\":\"secret-123\"}", user), 200);
	snprintf(sess, len, "%s", str("session"));
}

static const answer *hb_bind_unit(const char *sess, const char *system,
				  const unit_id *u, const char *number)
{
	return post("/prov/unit-bindings", sess,
		    "{\"system\":\"%s\",\"unit_number\":\"%s\",\"person_name\":\"%s\","
		    "\"person_id\":\"%s\"}", system, number, u->unit.operator_name,
		    u->unit.operator_id);
}

static void hb_insured(const char *system, const unit_id *u, const char *number)
{
	ck_ok(post("/admin/hebei/insured", NULL,
		   "{\"system\":\"%s\",\"unit_number\":\"%s\",\"uscc\":\"%s\","
		   "\"person_name\":\"%s\",\"person_id\":\"%s\"}", system, number,
		   u->unit.uscc, u->unit.operator_name, u->unit.operator_id), 200);
}

static const answer *hb_ca_bind(const char *sess, const char *vendor, X509 *cert)
{
	char *c = cert_b64(cert);

	post("/prov/ca-bindings", sess,
	     "{\"vendor\":\"%s\",\"certificate\":\"%s\"}", vendor, c);
	free(c);
	return &last;
}

START_TEST(test_hb_flow)
{
	unit_id u, foreign;
	char s[80], s2[80], ca[80];

	unit_make(&u, "hebei", "hebei", 1, FX_VARIANT_VALID);
	/* HB-E05 */
	ck_error(hb_register("prov", "cityunit", "130102"), 403, "HB_WRONG_PLATFORM");
	ck_assert_str_eq(str("platform"), "city");
	ck_ok(hb_register("city", "cityunit", "130102"), 201);
	ck_error(hb_register("city", "provunit", "130000"), 403, "HB_WRONG_PLATFORM");
	ck_assert_str_eq(str("platform"), "prov");
	/* HB-REG-OK */
	ck_ok(hb_register("prov", "provunit", "130682"), 201);
	ck_assert_str_eq(msg(), "注册成功，请登录");
	ck_error(hb_register("prov", "provunit", "130000"), 409, "HB_USERNAME_TAKEN");
	ck_error(post("/prov/pwlogin", NULL,
		      "{\"username\":\"provunit\",\"password\":\"wrong-123\"}"), 401,
		 "HB_BAD_PASSWORD");
	hb_pwlogin("provunit", s, sizeof(s));
	/* HB-E01: the seed's pointer */
	ck_error(hb_bind_unit(s, "enterprise_pension", &u, u.unit.ss_number), 403,
		 "HB_NOT_INSURED");
	ck_assert_str_eq(msg(), HB_TXT_NOT_INSURED);
	ck_assert_str_eq(str("insurance_state"), "未参保");
	hb_insured("enterprise_pension", &u, u.unit.ss_number);
	hb_insured("institution_pension", &u, "99990001");
	hb_insured("unemployment", &u, "99990002");
	/* HB-BIND-UNIT-OK */
	ck_ok(hb_bind_unit(s, "enterprise_pension", &u, u.unit.ss_number), 201);
	/* HB-E02 */
	ck_error(hb_bind_unit(s, "institution_pension", &u, "99990001"), 409,
		 "HB_ONE_PENSION_NUMBER");
	ck_ok(hb_bind_unit(s, "unemployment", &u, "99990002"), 201);
	/* HB-E04: either spelling of the vendor passes the vendor check. */
	ck_error(hb_ca_bind(s, "CFCA", u.cert), 403, "HB_WRONG_VENDOR");
	ck_assert_str_eq(msg(), "证书厂商选择错误，请选择“" HB_VENDOR "”");
	ck_error(hb_ca_bind(s, "河北  CA", u.cert), 403, "HB_WRONG_VENDOR");
	ck_error(hb_ca_bind(s, "河南 CA", u.cert), 403, "HB_WRONG_VENDOR");
	unit_make(&foreign, "hebei", "sichuan", 1, FX_VARIANT_VALID);
	ck_error(hb_ca_bind(s, HB_VENDOR, foreign.cert), 403, "HB_NOT_HEBEI_CA");
	ck_error(hb_ca_bind(s, "河北CA", foreign.cert), 403, "HB_NOT_HEBEI_CA");
	/* Not bound yet */
	ck_error(login("prov", &u), 403, "HB_CERT_NOT_BOUND");
	/* HB-CA-BIND-OK, HB-E09 */
	ck_ok(hb_ca_bind(s, HB_VENDOR, u.cert), 200);
	ck_assert_str_eq(msg(), "绑定成功，请重新登录");
	ck_error(post("/prov/unit-bindings", s, "{}"), 401, "NO_SESSION");
	/* HB-LOGIN-OK, HB-SIGN-OK */
	login_ok("prov", &u, ca, sizeof(ca));
	ck_assert_str_eq(str("account"), "provunit");
	ck_ok(submit("/prov/declarations", ca, &u, "养老保险申报"), 201);
	hb_pwlogin("provunit", s, sizeof(s));
	ck_error(submit("/prov/declarations", s, &u, "x"), 403, "HB_CA_REQUIRED");
	/* HB-E03 */
	ck_ok(hb_register("prov", "second", "130000"), 201);
	hb_pwlogin("second", s2, sizeof(s2));
	ck_ok(hb_bind_unit(s2, "institution_pension", &u, "99990001"), 201);
	ck_error(hb_ca_bind(s2, HB_VENDOR, u.cert), 409, "HB_CERT_BOUND_ELSEWHERE");
	ck_ok(login("prov", &u), 200);
	ck_assert_str_eq(str("account"), "provunit");
	/* HB-E06: expired (Hebei's own text, no status code), then the
	 * renewed certificate keeps the binding. */
	advance(400L * 86400);
	ck_error(login("prov", &u), 403, "HB_CERT_EXPIRED");
	ck_assert_str_eq(msg(), HB_TXT_CERT_EXPIRED);
	ck_assert_str_eq(str("remedy"), "老用户延期");
	ck_assert_ptr_null(json_object_get(last.body, "status"));
	fx_pki_set_now(pki, time(NULL) + 400L * 86400);
	unit_renew(&u, "hebei", FX_VARIANT_VALID);
	ck_ok(login("prov", &u), 200);
	ck_assert_str_eq(str("account"), "provunit");
	/* HB-E07: lost, the re-issued one must be bound again. */
	ck_assert_int_eq(fx_pki_revoke(pki, u.cert), 0);
	ck_error(login("prov", &u), 403, "HB_CERT_REVOKED");
	ck_assert_str_eq(msg(), HB_TXT_CERT_LOST);
	ck_assert_str_eq(str("remedy"), "丢失补办");
	ck_assert_ptr_null(json_object_get(last.body, "status"));
	/* The same text when the lost certificate is bound again. */
	hb_pwlogin("provunit", s, sizeof(s));
	ck_error(hb_ca_bind(s, HB_VENDOR, u.cert), 403, "HB_CERT_REVOKED");
	unit_renew(&u, "hebei", FX_VARIANT_VALID);
	ck_error(login("prov", &u), 403, "HB_CERT_NOT_BOUND");
	ck_ok(hb_ca_bind(s, HB_VENDOR, u.cert), 200);
	ck_ok(login("prov", &u), 200);
	fx_pki_set_now(pki, time(NULL));
	unit_free(&foreign);
	unit_free(&u);
}
END_TEST

/* HB-BIND-EMP-OK: the two rows bound by unit number alone. */
/*
 * Issue 13: a serial is unique per issuer only, so the bound serial alone
 * must not reach an account: a certificate of another unit carrying the
 * bound certificate's serial (a CA misissuance, made here by re-signing
 * with the Hebei issuing key) is refused (before: 200 as the account).
 */
START_TEST(test_hb_same_serial)
{
	unit_id a, b;
	char s[80], path[4096];
	EVP_PKEY *ca_key = NULL;

	unit_make(&a, "hebei", "hebei", 3, FX_VARIANT_VALID);
	unit_make(&b, "hebei", "hebei", 4, FX_VARIANT_VALID);
	ck_assert_str_ne(a.unit.uscc, b.unit.uscc);
	ck_ok(hb_register("prov", "unita", "130682"), 201);
	hb_pwlogin("unita", s, sizeof(s));
	hb_insured("enterprise_pension", &a, a.unit.ss_number);
	ck_ok(hb_bind_unit(s, "enterprise_pension", &a, a.unit.ss_number), 201);
	ck_ok(hb_ca_bind(s, HB_VENDOR, a.cert), 200);

	ck_assert_int_eq(fx_pki_ca_path(pki, "hebei", "issuing.key", path,
					sizeof(path)), 0);
	ck_assert_int_eq(fx_read_key_pem(path, &ca_key), 0);
	ck_assert_int_eq(X509_set_serialNumber(b.cert,
					       X509_get_serialNumber(a.cert)), 1);
	ck_assert_int_gt(X509_sign(b.cert, ca_key, EVP_sha256()), 0);
	ck_error(login("prov", &b), 403, "HB_CERT_UNIT_MISMATCH");
	ck_assert_str_eq(msg(), "证书中的统一社会信用代码与绑定单位不一致");
	ck_ok(login("prov", &a), 200);
	ck_assert_str_eq(str("account"), "unita");
	EVP_PKEY_free(ca_key);
	unit_free(&a);
	unit_free(&b);
}
END_TEST

START_TEST(test_hb_emp_bindings)
{
	unit_id u;
	char s[80];

	unit_make(&u, "hebei", "hebei", 2, FX_VARIANT_VALID);
	ck_ok(hb_register("prov", "empunit", "130000"), 201);
	hb_pwlogin("empunit", s, sizeof(s));
	ck_error(raw(portal, "GET", "/prov/unit-bindings", NULL, NULL, NULL, 0),
		 401, "NO_SESSION");
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"labour_filing\",\"unit_number\":\"L001\"}"),
		 403, "HB_NO_LABOUR_FILING");
	ck_assert_str_eq(msg(), "未查询到该单位编号的劳动用工备案信息");
	ck_assert_ptr_null(json_object_get(last.body, "insurance_state"));
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"employment\",\"unit_number\":\"E001\"}"),
		 403, "HB_NO_EMPLOYMENT_UNIT");
	/* No person on these rows; an insured row still needs one. */
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"employment\",\"unit_number\":\"E001\","
		      "\"person_id\":\"x\"}"), 400, "BAD_FIELD");
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"unemployment\",\"unit_number\":\"E001\"}"),
		 400, "BAD_FIELD");
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"housing_fund\",\"unit_number\":\"E001\"}"),
		 400, "BAD_FIELD");
	/* Each admin route takes only its own kind of row. */
	ck_error(post("/admin/hebei/units", NULL,
		      "{\"system\":\"unemployment\",\"unit_number\":\"L001\","
		      "\"uscc\":\"%s\"}", u.unit.uscc), 400, "BAD_FIELD");
	ck_error(post("/admin/hebei/insured", NULL,
		      "{\"system\":\"labour_filing\",\"unit_number\":\"L001\","
		      "\"uscc\":\"%s\",\"person_name\":\"a\",\"person_id\":\"b\"}",
		      u.unit.uscc), 400, "BAD_FIELD");
	ck_ok(post("/admin/hebei/units", NULL,
		   "{\"system\":\"labour_filing\",\"unit_number\":\"L001\","
		   "\"uscc\":\"%s\"}", u.unit.uscc), 200);
	ck_ok(post("/admin/hebei/units", NULL,
		   "{\"system\":\"employment\",\"unit_number\":\"E001\","
		   "\"uscc\":\"%s\"}", u.unit.uscc), 200);
	ck_ok(post("/prov/unit-bindings", s,
		   "{\"system\":\"labour_filing\",\"unit_number\":\"L001\"}"), 201);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		last.body, "binding"), "action")), "劳动用工备案单位绑定");
	ck_ok(post("/prov/unit-bindings", s,
		   "{\"system\":\"employment\",\"unit_number\":\"E001\"}"), 201);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		last.body, "binding"), "business_system")), "就业创业系统");
	ck_error(post("/prov/unit-bindings", s,
		      "{\"system\":\"employment\",\"unit_number\":\"E001\"}"),
		 409, "HB_UNIT_ALREADY_BOUND");
	/* The window: every row of 图4, the bound numbers. */
	{
		char auth[128];
		json_t *rows;

		snprintf(auth, sizeof(auth), "Bearer %s", s);
		raw(portal, "GET", "/prov/unit-bindings", NULL, auth, NULL, 0);
		ck_ok(&last, 200);
		rows = json_object_get(last.body, "systems");
		ck_assert_uint_eq(json_object_size(rows), 7);
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
			rows, "employment"), "action")), "就业单位注册与绑定");
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
			rows, "labour_filing"), "unit_number")), "L001");
		ck_assert(json_is_null(json_object_get(json_object_get(
			rows, "work_injury"), "unit_number")));
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
			rows, "work_injury"), "asks")), "unit_number person_name person_id");
	}
	/* A unit-number binding is a unit of the account for "CA 绑定". */
	ck_ok(hb_ca_bind(s, HB_VENDOR, u.cert), 200);
	unit_free(&u);
}
END_TEST

/* "CA 证书登录" / "CA 绑定": the vendor as the guide spells it. */
START_TEST(test_hb_vendors)
{
	json_t *v;

	ck_ok(get("/prov/ca-vendors"), 200);
	v = json_object_get(last.body, "vendors");
	ck_assert_uint_eq(json_array_size(v), 1);
	ck_assert_str_eq(json_string_value(json_array_get(v, 0)), HB_VENDOR);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
		last.body, "logins"), 0)), "河北 CA 登录");
	ck_ok(get("/prov/ui"), 200);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(
		last.body, "texts"), "pin_locked")), "河北 CA 网站"));
}
END_TEST

/* Checks 2-3 in Hebei's words, at login and at "CA 绑定". */
START_TEST(test_hb_cert_texts)
{
	unit_id u;
	char s[80];

	unit_make(&u, "hebei", "hebei", 3, FX_VARIANT_NOT_YET_VALID);
	ck_error(login("prov", &u), 403, "HB_CERT_NOT_YET_VALID");
	ck_assert_str_eq(msg(), "该数字证书尚未生效，请在证书生效后使用");
	ck_assert_ptr_null(json_object_get(last.body, "status"));
	ck_assert_ptr_null(json_object_get(last.body, "remedy"));
	unit_free(&u);
	unit_make(&u, "hebei", "hebei", 3, FX_VARIANT_EXPIRED);
	ck_error(login("prov", &u), 403, "HB_CERT_EXPIRED");
	ck_assert_str_eq(msg(), HB_TXT_CERT_EXPIRED);
	ck_ok(hb_register("prov", "expunit", "130000"), 201);
	hb_pwlogin("expunit", s, sizeof(s));
	hb_insured("enterprise_pension", &u, u.unit.ss_number);
	ck_ok(hb_bind_unit(s, "enterprise_pension", &u, u.unit.ss_number), 201);
	ck_error(hb_ca_bind(s, "河北CA", u.cert), 403, "HB_CERT_EXPIRED");
	ck_assert_ptr_null(json_object_get(last.body, "status"));
	/* A bad signature is not a certificate check: the generic answer. */
	unit_free(&u);
	unit_make(&u, "hebei", "hebei", 3, FX_VARIANT_VALID);
	{
		char nonce[64], text[256];

		challenge("prov", nonce, sizeof(nonce), text, sizeof(text));
		ck_error(login_with("prov", &u, nonce, "tampered"), 403,
			 "SIGNATURE_INVALID");
	}
	unit_free(&u);
}
END_TEST

START_TEST(test_hb_malformed)
{
	static const char *const paths[] = {
		"/prov/accounts", "/prov/pwlogin", "/prov/unit-bindings",
		"/prov/ca-bindings", "/prov/declarations", "/city/accounts",
		"/admin/hebei/insured", "/admin/hebei/units", NULL,
	};

	malformed_all(paths, NULL);
	ck_error(hb_register("prov", "ab", "130000"), 400, "BAD_FIELD");
	ck_error(hb_register("prov", "abcd", "110000"), 400, "BAD_FIELD");
}
END_TEST

/* ---- Sichuan ---- */

static void sc_person(const unit_id *u, const char *user, char *sess, size_t len)
{
	ck_ok(post("/sso/persons", NULL,
		   "{\"username\":\"%s\",\"password\":\"12345678a\",\"name\":\"%s\","
		   "\"id_number\":\"%s\",\"phone\":\"%s\"}", user,
		   u->unit.operator_name, u->unit.operator_id,
		   u->unit.operator_phone), 201);
	ck_ok(post("/sso/pwlogin", NULL,
		   "{\"username\":\"%s\",\"password\":\"12345678a\"}", user), 200);
	snprintf(sess, len, "%s", str("session"));
}

static const answer *sc_bind(const char *sess, X509 *cert)
{
	char *c = cert_b64(cert);

	post("/sso/cert-bindings", sess, "{\"certificate\":\"%s\"}", c);
	free(c);
	return &last;
}

START_TEST(test_sc_flow)
{
	unit_id u, other;
	char p[80], sso[80], wt[80], app[64], *spki;

	unit_make(&u, "sichuan", "sichuan", 1, FX_VARIANT_VALID);
	unit_make(&other, "sichuan", "sichuan", 2, FX_VARIANT_VALID);
	/* SC-W01 */
	ck_ok(get("/sso/env-check"), 200);
	ck_assert_str_eq(json_string_value(json_array_get(
		json_object_get(last.body, "warnings"), 0)),
		"数字证书安全控件-ftsccactrl\xC2\xA0" "V3:未安装");
	/* SC-E01 */
	assistant = "5.0.22.605";
	ck_error(login("sso", &u), 403, "SC_PLUGIN_ERROR");
	ck_assert_str_eq(msg(), "插件异常");
	assistant = "5.0.22.606";
	/* SC-E06 */
	ck_error(login("sso", &u), 403, "SC_NOT_REGISTERED");
	sc_person(&u, "operator1", p, sizeof(p));
	ck_error(sc_bind(p, u.cert), 409, "SC_NO_LEGAL_PERSON");
	ck_ok(post("/sso/legal-persons", p, "{\"unit_name\":\"%s\",\"uscc\":\"%s\"}",
		   "旧名称", u.unit.uscc), 201);
	ck_error(login("sso", &u), 403, "SC_NOT_BOUND");
	/* SC-E04: stale unit data, then another unit's certificate */
	ck_error(sc_bind(p, u.cert), 403, "SC_UNIT_MISMATCH");
	ck_ok(post("/sso/legal-persons", p, "{\"unit_name\":\"%s\",\"uscc\":\"%s\"}",
		   u.unit.unit_name, u.unit.uscc), 201);
	ck_error(sc_bind(p, other.cert), 403, "SC_UNIT_MISMATCH");
	ck_ok(sc_bind(p, u.cert), 201);
	/* SC-FIRST-OK, SC-LOGIN-OK, SC-SIGN-OK */
	login_ok("sso", &u, sso, sizeof(sso));
	ck_ok(submit("/sso/declarations", sso, &u, "社保申报"), 201);
	ck_error(submit("/sso/declarations", p, &u, "x"), 403, "SC_CA_REQUIRED");
	/* SC-UPD-OK */
	login_ok("wt", &u, wt, sizeof(wt));
	ck_ok(post("/wt/updates", wt, "{}"), 201);
	snprintf(app, sizeof(app), "%s", str("application"));
	EVP_PKEY_free(u.key);
	ck_assert_int_eq(fx_key_generate(u.alg, &u.key), 0);
	spki = spki_b64(u.key);
	ck_error(post("/wt/updates/download", wt,
		      "{\"application\":\"%s\",\"public_key\":\"%s\"}", app, spki),
		 409, "SC_UPDATE_PENDING");
	ck_ok(post("/admin/sichuan/approve", NULL, "{\"application\":\"%s\"}", app), 200);
	ck_ok(post("/wt/updates/download", wt,
		   "{\"application\":\"%s\",\"public_key\":\"%s\"}", app, spki), 201);
	take_cert(&u, str("certificate"));
	free(spki);
	ck_ok(login("sso", &u), 200);
	/* SC-E05 */
	unit_renew(&u, "sichuan", FX_VARIANT_EXPIRED);
	ck_error(login("sso", &u), 403, "CERT_EXPIRED");
	login_ok("wt", &u, wt, sizeof(wt));
	ck_error(post("/wt/updates", wt, "{}"), 403, "SC_UPDATE_EXPIRED");
	/* ...the new issuance instead, then the same key updated in i信 */
	ck_error(post("/wt/issuances", wt, "{\"method\":\"上门办理\"}"), 400, "SC_BAD_METHOD");
	ck_ok(post("/wt/issuances", wt, "{\"method\":\"寄送办理\"}"), 201);
	snprintf(app, sizeof(app), "%s", str("application"));
	spki = spki_b64(u.key);
	ck_error(post("/wt/updates/download", wt,
		      "{\"application\":\"%s\",\"public_key\":\"%s\"}", app, spki),
		 409, "SC_UPDATE_PENDING");
	ck_ok(post("/admin/sichuan/approve", NULL, "{\"application\":\"%s\"}", app), 200);
	ck_ok(post("/wt/updates/download", wt,
		   "{\"application\":\"%s\",\"public_key\":\"%s\"}", app, spki), 201);
	take_cert(&u, str("certificate"));
	free(spki);
	ck_ok(login("sso", &u), 200);
	unit_free(&other);
	unit_free(&u);
}
END_TEST

START_TEST(test_sc_malformed)
{
	static const char *const paths[] = {
		"/sso/persons", "/sso/pwlogin", "/sso/legal-persons",
		"/sso/cert-bindings", "/sso/declarations", "/wt/updates",
		"/wt/issuances", "/wt/updates/download", "/admin/sichuan/approve", NULL,
	};

	malformed_all(paths, NULL);
}
END_TEST

/* ---- Hunan ---- */

static const answer *hn_bind(const unit_id *u, const char *serial)
{
	return post("/hall/ca-bindings", NULL,
		    "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"serial\":\"%s\"}",
		    u->unit.unit_name, u->unit.uscc, serial);
}

START_TEST(test_hn_hall)
{
	unit_id u, enc;
	char serial[80], enc_serial[80], hall[80], tps[80];
	X509 *enc_cert = NULL;

	unit_make(&u, "hunan", "hunan", 1, FX_VARIANT_VALID);
	memset(&enc, 0, sizeof(enc));
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &enc.key), 0);
	ck_assert_int_eq(fx_pki_issue_unit_ex(pki, "hunan", enc.key, &u.unit,
					      FX_VARIANT_VALID, FX_PURPOSE_ENCRYPT,
					      &enc_cert), 0);
	ck_assert(X509_get_key_usage(enc_cert) & KU_KEY_AGREEMENT); /* an EC encryption key */
	serial_of(u.cert, serial, sizeof(serial));
	serial_of(enc_cert, enc_serial, sizeof(enc_serial));
	ck_assert_str_ne(serial, enc_serial);

	/* HN-E01 */
	ck_error(login("hall", &u), 403, "HN_NOT_BOUND");
	ck_assert_ptr_nonnull(strstr(msg(), "湖南CA"));
	ck_error(hn_bind(&u, serial), 404, "HN_NO_ACCOUNT");
	/* HN-REG-OK */
	ck_ok(post("/hall/accounts", NULL,
		   "{\"unit_type\":\"institution\",\"unit_name\":\"%s\",\"uscc\":\"%s\","
		   "\"operator_name\":\"%s\",\"operator_id\":\"%s\",\"operator_phone\":\"%s\","
		   "\"username\":\"hospital1\",\"password\":\"secret-123\"}",
		   u.unit.unit_name, u.unit.uscc, u.unit.operator_name,
		   u.unit.operator_id, u.unit.operator_phone), 201);
	ck_ok(post("/hall/pwlogin", NULL,
		   "{\"username\":\"hospital1\",\"password\":\"secret-123\"}"), 200);
	/* HN-E04: the encryption serial binds but never matches. Monday 10:00. */
	ck_ok(post("/admin/clock", NULL, "{\"wday\":1,\"hour\":10}"), 200);
	ck_ok(hn_bind(&u, enc_serial), 202);
	advance(25 * 3600);
	ck_error(login("hall", &u), 403, "HN_NOT_BOUND");
	/* HN-BIND-OK, HN-E03; a lower-case serial is the same serial. */
	ck_ok(post("/admin/clock", NULL, "{\"wday\":5,\"hour\":10}"), 200);
	{
		char lower[80];
		size_t i;

		for (i = 0; serial[i]; i++)
			lower[i] = (char)(serial[i] >= 'A' && serial[i] <= 'F' ?
					  serial[i] + 32 : serial[i]);
		lower[i] = '\0';
		ck_ok(hn_bind(&u, lower), 202);
	}
	ck_assert_str_eq(str("serial"), serial);
	advance(3 * 86400 - 1); /* Monday 09:59:59 */
	ck_error(login("hall", &u), 403, "HN_NOT_BOUND");
	advance(1);
	/* HN-LOGIN-OK */
	login_ok("hall", &u, hall, sizeof(hall));
	ck_assert_str_eq(str("account"), "hospital1");
	/* HN-E02 */
	ck_error(hn_bind(&u, "0123ABCD"), 409, "HN_ONE_CERT");
	/* on to the procurement system; HN-SIGN-OK */
	ck_ok(post("/hall/procurement", hall, "{}"), 200);
	snprintf(tps, sizeof(tps), "%s", str("session"));
	ck_ok(submit("/tps/quotes", tps, &u, "报价单 001"), 201);
	ck_assert_int_eq(strncmp(str("receipt"), "HN", 2), 0);
	X509_free(enc_cert);
	unit_free(&enc);
	unit_free(&u);
}
END_TEST

START_TEST(test_hn_working_hours)
{
	/* 2024-06-07 is a Friday; 10:00 CST = 02:00 UTC. */
	int64_t fri = 1717725600;

	ck_assert_int_eq(pt_hunan_effective_at(fri), fri + 3 * 86400);
	/* Monday 10:00 -> Tuesday 10:00 */
	ck_assert_int_eq(pt_hunan_effective_at(fri + 3 * 86400), fri + 4 * 86400);
	/* Saturday 12:00 -> Tuesday 00:00 CST */
	ck_assert_int_eq(pt_hunan_effective_at(fri + 86400 + 7200),
			 fri + 4 * 86400 - 10 * 3600);
	/* Sunday 23:59:59 -> Tuesday 00:00 CST: all of Monday counts */
	ck_assert_int_eq(pt_hunan_effective_at(fri + 3 * 86400 - 10 * 3600 - 1),
			 fri + 4 * 86400 - 10 * 3600);
	/* Wednesday 10:00 -> Thursday 10:00 */
	ck_assert_int_eq(pt_hunan_effective_at(fri - 2 * 86400), fri - 86400);
	/* Thursday 10:00 -> Friday 10:00; Friday 23:00 -> Monday 23:00 */
	ck_assert_int_eq(pt_hunan_effective_at(fri - 86400), fri);
	ck_assert_int_eq(pt_hunan_effective_at(fri + 13 * 3600),
			 fri + 3 * 86400 + 13 * 3600);
	/* A working-hour count, not clock hours: Friday 10:00 is not
	 * effective on Saturday 10:00, nor on Monday 09:59:59. */
	ck_assert_int_gt(pt_hunan_effective_at(fri), fri + 86400);
	ck_assert_int_gt(pt_hunan_effective_at(fri), fri + 3 * 86400 - 1);
	/* Before 1970 too (midnights floored): 1969-12-31 22:00 CST, a
	 * Wednesday -> Thursday 22:00. */
	ck_assert_int_eq(pt_hunan_effective_at(-10 * 3600), -10 * 3600 + 86400);
}
END_TEST

/* HN-E08: serials typed by hand bind as the certificate's serial. */
START_TEST(test_hn_typed_serial)
{
	static const char *const bad[] = {
		"", "  ", "::", "00", "4g", "0x4A1B", "4a;1b", "４Ａ", NULL,
	};
	unit_id u;
	char serial[80], typed[200], hall[80];
	size_t i, n;

	unit_make(&u, "hunan", "hunan", 2, FX_VARIANT_VALID);
	serial_of(u.cert, serial, sizeof(serial));
	ck_ok(post("/hall/accounts", NULL,
		   "{\"unit_type\":\"manufacturer\",\"unit_name\":\"%s\",\"uscc\":\"%s\","
		   "\"operator_name\":\"%s\",\"operator_id\":\"%s\",\"operator_phone\":\"%s\","
		   "\"username\":\"maker1\",\"password\":\"secret-123\"}",
		   u.unit.unit_name, u.unit.uscc, u.unit.operator_name,
		   u.unit.operator_id, u.unit.operator_phone), 201);
	for (i = 0; bad[i]; i++) {
		ck_error(hn_bind(&u, bad[i]), 400, "BAD_FIELD");
		ck_assert_ptr_nonnull(strstr(msg(), "'serial'"));
	}
	/* Whole bytes, no leading zero byte: as the certificate writes it. */
	ck_ok(hn_bind(&u, "a:bc:de"), 202);
	ck_assert_str_eq(str("serial"), "0ABCDE");
	ck_ok(hn_bind(&u, "00 00 0a bc de"), 202);
	ck_assert_str_eq(str("serial"), "0ABCDE");
	/* Lower case, a space between the bytes, a leading 00 byte (a viewer
	 * showing the DER integer): the same serial. */
	n = (size_t)snprintf(typed, sizeof(typed), "00");
	for (i = 0; serial[i] && n + 4 < sizeof(typed); i += 2)
		n += (size_t)snprintf(typed + n, sizeof(typed) - n, " %c%c",
				      serial[i] | 0x20, serial[i + 1] | 0x20);
	ck_ok(post("/admin/clock", NULL, "{\"wday\":3,\"hour\":10}"), 200);
	ck_ok(hn_bind(&u, typed), 202);
	ck_assert_str_eq(str("serial"), serial);
	advance(86400); /* Thursday 10:00 */
	login_ok("hall", &u, hall, sizeof(hall));
	ck_assert_str_eq(str("account"), "maker1");
	/* Typed with colons it is the confirmed serial, not another one. */
	for (i = 0, n = 0; serial[i] && n + 4 < sizeof(typed); i += 2)
		n += (size_t)snprintf(typed + n, sizeof(typed) - n, "%s%c%c",
				      i ? ":" : "", serial[i] | 0x20, serial[i + 1] | 0x20);
	ck_error(hn_bind(&u, typed), 409, "HN_ALREADY_BOUND");
	unit_free(&u);
}
END_TEST

/* HN-E07: the login pages' browser check. */
START_TEST(test_hn_browser)
{
	static const struct {
		const char *ua, *engine;
		unsigned http;
	} cases[] = {
		{ "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
		  "ie", 403 },
		{ "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; "
		  "Trident/7.0; .NET4.0C; .NET4.0E; 360SE)", "ie", 403 },
		{ "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1)", "ie", 403 },
		{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
		  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "chromium", 200 },
		{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
		  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
		  "edge", 200 },
		{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) "
		  "Gecko/20100101 Firefox/121.0", "firefox", 200 },
		{ "curl/8.5.0", "other", 200 },
	};
	static const char *const sites[] = { "/hall/browser-check",
					     "/tps/browser-check" };
	char big[600];
	size_t i, j;

	for (j = 0; j < 2; j++) {
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const answer *a = post(sites[j], NULL,
					       "{\"user_agent\":\"%s\"}", cases[i].ua);

			ck_assert_msg(a->status == cases[i].http, "%s: %u",
				      cases[i].ua, a->status);
			ck_assert_str_eq(str("engine"), cases[i].engine);
			if (cases[i].http == 403) {
				ck_error(a, 403, "HN_BROWSER_UNSUPPORTED");
				ck_assert_str_eq(msg(), "当前浏览器不支持数字证书登录，"
					"请更换浏览器（推荐谷歌Chrome浏览器或360浏览器极速模式）");
			}
		}
		ck_error(post(sites[j], NULL, "{\"user_agent\":\"\"}"), 400, "BAD_FIELD");
		ck_error(post(sites[j], NULL, "{}"), 400, "BAD_FIELD");
		ck_error(post(sites[j], NULL, "{\"user_agent\":1}"), 400, "BAD_FIELD");
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ck_error(post(sites[j], NULL, "{\"user_agent\":\"%s\"}", big), 400,
			 "BAD_FIELD");
	}
}
END_TEST

static const answer *hn_dist_register(const unit_id *u, const char *user)
{
	return post("/tps/accounts", NULL,
		    "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"contact_name\":\"%s\","
		    "\"contact_phone\":\"%s\",\"username\":\"%s\",\"password\":\"secret-123\"}",
		    u->unit.unit_name, u->unit.uscc, u->unit.operator_name,
		    u->unit.operator_phone, user);
}

START_TEST(test_hn_dist)
{
	unit_id a, b;
	char ticket[64], s[80], *c;

	unit_make(&a, "hunan", "hunan", 5, FX_VARIANT_VALID);
	unit_make(&b, "hunan", "hunan", 6, FX_VARIANT_VALID);
	ck_error(login("tps", &a), 403, "HN_DIST_NO_ACCOUNT");
	ck_ok(hn_dist_register(&a, "dist_a"), 202);
	/* HN-E05 */
	ck_error(post("/tps/pwlogin", NULL,
		      "{\"username\":\"dist_a\",\"password\":\"secret-123\"}"), 403,
		 "HN_PENDING_REVIEW");
	ck_error(login("tps", &a), 403, "HN_PENDING_REVIEW");
	ck_ok(post("/admin/hunan/approve", NULL, "{\"username\":\"dist_a\"}"), 200);
	/* HN-DIST-ACT-OK */
	ck_error(login("tps", &a), 403, "HN_ACTIVATION_REQUIRED");
	snprintf(ticket, sizeof(ticket), "%s", json_string_value(json_object_get(
		json_object_get(last.body, "activation"), "ticket")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(last.body, "activation"), "account"), "username")),
		"dist_a");
	ck_ok(post("/tps/activate", NULL, "{\"ticket\":\"%s\"}", ticket), 200);
	ck_error(post("/tps/activate", NULL, "{\"ticket\":\"%s\"}", ticket), 404,
		 "HN_TICKET_UNKNOWN");
	/* HN-DIST-LOGIN-OK */
	login_ok("tps", &a, s, sizeof(s));
	ck_ok(submit("/tps/quotes", s, &a, "报价"), 201);
	/* HN-DIST-BIND-OK */
	ck_ok(hn_dist_register(&b, "dist_b"), 202);
	ck_ok(post("/admin/hunan/approve", NULL, "{\"username\":\"dist_b\"}"), 200);
	ck_ok(post("/tps/pwlogin", NULL,
		   "{\"username\":\"dist_b\",\"password\":\"secret-123\"}"), 200);
	snprintf(s, sizeof(s), "%s", str("session"));
	ck_error(submit("/tps/quotes", s, &b, "x"), 403, "HN_CA_REQUIRED");
	c = cert_b64(a.cert);
	ck_error(post("/tps/ca-bindings", s,
		      "{\"username\":\"dist_b\",\"certificate\":\"%s\"}", c), 403,
		 "HN_UNIT_MISMATCH");
	free(c);
	c = cert_b64(b.cert);
	ck_ok(post("/tps/ca-bindings", s,
		   "{\"username\":\"dist_b\",\"certificate\":\"%s\"}", c), 200);
	ck_error(post("/tps/ca-bindings", s,
		      "{\"username\":\"dist_b\",\"certificate\":\"%s\"}", c), 409,
		 "HN_ALREADY_BOUND");
	free(c);
	ck_ok(login("tps", &b), 200);
	unit_free(&a);
	unit_free(&b);
}
END_TEST

static void hn_account(const unit_id *u, const char *user)
{
	ck_ok(post("/hall/accounts", NULL,
		   "{\"unit_type\":\"institution\",\"unit_name\":\"%s\",\"uscc\":\"%s\","
		   "\"operator_name\":\"%s\",\"operator_id\":\"%s\",\"operator_phone\":\"%s\","
		   "\"username\":\"%s\",\"password\":\"secret-123\"}",
		   u->unit.unit_name, u->unit.uscc, u->unit.operator_name,
		   u->unit.operator_id, u->unit.operator_phone, user), 201);
}

/*
 * Issue 13: the hall's binding needs no session and a unit's name and
 * USCC are public, so another unit's certificate bound to an account must
 * not log in to it (before: 200 account=victim), and a pending binding is
 * replaced only by its submitter (before: anyone's 202).
 */
START_TEST(test_hn_foreign_certificate)
{
	unit_id victim, other;
	char vserial[80], oserial[80], sub[64];
	json_int_t at;

	unit_make(&victim, "hunan", "hunan", 7, FX_VARIANT_VALID);
	unit_make(&other, "hunan", "hunan", 8, FX_VARIANT_VALID);
	serial_of(victim.cert, vserial, sizeof(vserial));
	serial_of(other.cert, oserial, sizeof(oserial));
	hn_account(&victim, "victim1");
	ck_ok(post("/admin/clock", NULL, "{\"wday\":1,\"hour\":10}"), 200);

	/* Another unit's serial under the victim's public name and USCC. */
	ck_ok(hn_bind(&victim, oserial), 202);
	advance(86400);
	ck_error(login("hall", &other), 403, "HN_UNIT_MISMATCH");
	ck_assert_str_eq(msg(), "单位名称、统一社会信用代码与账号信息不一致");

	/* The victim binds its own serial (the foreign one was never
	 * confirmed); nobody else swaps it while it is pending. */
	ck_ok(hn_bind(&victim, vserial), 202);
	snprintf(sub, sizeof(sub), "%s", str("submission"));
	ck_assert_int_eq(strncmp(sub, "HNS", 3), 0);
	at = json_integer_value(json_object_get(last.body, "effective_at"));
	ck_error(hn_bind(&victim, oserial), 409, "HN_BINDING_PENDING");
	ck_error(post("/hall/ca-bindings", NULL,
		      "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"serial\":\"%s\","
		      "\"submission\":\"HNS000000000000\"}",
		      victim.unit.unit_name, victim.unit.uscc, oserial), 409,
		 "HN_BINDING_PENDING");
	/* Sent again (anyone can): the same binding, time not reset. */
	advance(3600);
	ck_ok(hn_bind(&victim, vserial), 202);
	ck_assert_int_eq(json_integer_value(json_object_get(last.body,
							    "effective_at")), at);
	ck_assert_ptr_null(json_object_get(last.body, "submission"));
	/* The submitter corrects it, then back: a new secret each time. */
	ck_ok(post("/hall/ca-bindings", NULL,
		   "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"serial\":\"0123ABCD\","
		   "\"submission\":\"%s\"}",
		   victim.unit.unit_name, victim.unit.uscc, sub), 202);
	ck_assert_str_ne(str("submission"), sub);
	snprintf(sub, sizeof(sub), "%s", str("submission"));
	ck_ok(post("/hall/ca-bindings", NULL,
		   "{\"unit_name\":\"%s\",\"uscc\":\"%s\",\"serial\":\"%s\","
		   "\"submission\":\"%s\"}",
		   victim.unit.unit_name, victim.unit.uscc, vserial, sub), 202);
	advance(86400);
	ck_error(login("hall", &other), 403, "HN_NOT_BOUND");
	ck_ok(login("hall", &victim), 200);
	ck_assert_str_eq(str("account"), "victim1");
	unit_free(&victim);
	unit_free(&other);
}
END_TEST

/* Issue 13: the same at tps: a distribution account bound to a serial is
 * reached only by a certificate of its unit (before: 200 as dist_s). */
START_TEST(test_hn_tps_same_serial)
{
	unit_id a, b;
	char ticket[64], path[4096];
	EVP_PKEY *ca_key = NULL;

	unit_make(&a, "hunan", "hunan", 11, FX_VARIANT_VALID);
	unit_make(&b, "hunan", "hunan", 12, FX_VARIANT_VALID);
	ck_ok(hn_dist_register(&a, "dist_s"), 202);
	ck_ok(post("/admin/hunan/approve", NULL, "{\"username\":\"dist_s\"}"), 200);
	ck_error(login("tps", &a), 403, "HN_ACTIVATION_REQUIRED");
	snprintf(ticket, sizeof(ticket), "%s", json_string_value(json_object_get(
		json_object_get(last.body, "activation"), "ticket")));
	ck_ok(post("/tps/activate", NULL, "{\"ticket\":\"%s\"}", ticket), 200);

	ck_assert_int_eq(fx_pki_ca_path(pki, "hunan", "issuing.key", path,
					sizeof(path)), 0);
	ck_assert_int_eq(fx_read_key_pem(path, &ca_key), 0);
	ck_assert_int_eq(X509_set_serialNumber(b.cert,
					       X509_get_serialNumber(a.cert)), 1);
	ck_assert_int_gt(X509_sign(b.cert, ca_key, EVP_sha256()), 0);
	ck_error(login("tps", &b), 403, "HN_UNIT_MISMATCH");
	ck_ok(login("tps", &a), 200);
	ck_assert_str_eq(str("account"), "dist_s");
	EVP_PKEY_free(ca_key);
	unit_free(&a);
	unit_free(&b);
}
END_TEST

/*
 * Issue 13: sessions are capped per site and a live one is never evicted
 * (before: 4096 for the whole portal, least recently used first, so a
 * flood of hall logins ended a tps session).
 */
START_TEST(test_hn_session_cap)
{
	unit_id d, h;
	char tps[80];
	int i;

	unit_make(&d, "hunan", "hunan", 9, FX_VARIANT_VALID);
	unit_make(&h, "hunan", "hunan", 10, FX_VARIANT_VALID);
	ck_ok(hn_dist_register(&d, "dist_d"), 202);
	ck_ok(post("/admin/hunan/approve", NULL, "{\"username\":\"dist_d\"}"), 200);
	ck_ok(post("/tps/pwlogin", NULL,
		   "{\"username\":\"dist_d\",\"password\":\"secret-123\"}"), 200);
	snprintf(tps, sizeof(tps), "%s", str("session"));
	hn_account(&h, "hosp_h");
	for (i = 0; i < 4096; i++)
		ck_ok(post("/hall/pwlogin", NULL,
			   "{\"username\":\"hosp_h\",\"password\":\"secret-123\"}"), 200);
	ck_error(post("/hall/pwlogin", NULL,
		      "{\"username\":\"hosp_h\",\"password\":\"secret-123\"}"), 429,
		 "TOO_MANY_SESSIONS");
	/* The other site's session lives on, and that site still logs in. */
	ck_error(submit("/tps/quotes", tps, &d, "x"), 403, "HN_CA_REQUIRED");
	ck_ok(post("/tps/pwlogin", NULL,
		   "{\"username\":\"dist_d\",\"password\":\"secret-123\"}"), 200);
	/* Idle sessions make room (30 minutes without use). */
	advance(31 * 60);
	ck_ok(post("/hall/pwlogin", NULL,
		   "{\"username\":\"hosp_h\",\"password\":\"secret-123\"}"), 200);
	unit_free(&d);
	unit_free(&h);
}
END_TEST

START_TEST(test_hn_malformed)
{
	static const char *const paths[] = {
		"/hall/accounts", "/hall/pwlogin", "/hall/ca-bindings",
		"/hall/procurement", "/tps/accounts", "/tps/pwlogin",
		"/tps/activate", "/tps/ca-bindings", "/tps/quotes",
		"/admin/hunan/approve", "/hall/browser-check",
		"/tps/browser-check", NULL,
	};

	malformed_all(paths, NULL);
	ck_error(post("/hall/ca-bindings", NULL,
		      "{\"unit_name\":\"x\",\"uscc\":\"91320505MA1X2Y3Z4W\",\"serial\":\"zz\"}"),
		 400, "BAD_FIELD");
}
END_TEST

START_TEST(test_portals_separate)
{
	pt_portal *other;
	const char *const *names = pt_portal_names();
	size_t i;

	for (i = 0; names[i]; i++) {
		ck_assert_int_eq(pt_portal_new(&other, names[i], pki_dir, 1), 0);
		pt_portal_free(other);
	}
	ck_assert_uint_eq(i, FX_PROVINCE_COUNT);
	/* State is the portal's own: a reset forgets it. */
	ck_ok(hb_register("prov", "resetme", "130000"), 201);
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	ck_ok(hb_register("prov", "resetme", "130000"), 201);
}
END_TEST

static TCase *tcase(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_checked_fixture(tc, setup, portal_teardown);
	return tc;
}

Suite *portal_suzhou_suite(void)
{
	Suite *s = suite_create("portal_suzhou");
	TCase *tc = tcase("suzhou", suzhou_setup);

	tcase_add_test(tc, test_js_mapping);
	tcase_add_test(tc, test_js_mapping_cert);
	tcase_add_test(tc, test_js_settlement);
	tcase_add_test(tc, test_js_upgrade);
	tcase_add_test(tc, test_sz_assistant);
	tcase_add_test(tc, test_sz_operator_phone);
	tcase_add_test(tc, test_sz_texts);
	tcase_add_test(tc, test_version_cmp);
	tcase_add_test(tc, test_sz_malformed);
	suite_add_tcase(s, tc);
	return s;
}

Suite *portal_hebei_suite(void)
{
	Suite *s = suite_create("portal_hebei");
	TCase *tc = tcase("hebei", hebei_setup);

	tcase_add_test(tc, test_hb_flow);
	tcase_add_test(tc, test_hb_same_serial);
	tcase_add_test(tc, test_hb_emp_bindings);
	tcase_add_test(tc, test_hb_vendors);
	tcase_add_test(tc, test_hb_cert_texts);
	tcase_add_test(tc, test_hb_malformed);
	tcase_add_test(tc, test_portals_separate);
	suite_add_tcase(s, tc);
	return s;
}

Suite *portal_sichuan_suite(void)
{
	Suite *s = suite_create("portal_sichuan");
	TCase *tc = tcase("sichuan", sichuan_setup);

	tcase_add_test(tc, test_sc_flow);
	tcase_add_test(tc, test_sc_malformed);
	suite_add_tcase(s, tc);
	return s;
}

Suite *portal_hunan_suite(void)
{
	Suite *s = suite_create("portal_hunan");
	TCase *tc = tcase("hunan", hunan_setup);

	tcase_add_test(tc, test_hn_hall);
	tcase_add_test(tc, test_hn_working_hours);
	tcase_add_test(tc, test_hn_typed_serial);
	tcase_add_test(tc, test_hn_browser);
	tcase_add_test(tc, test_hn_dist);
	tcase_add_test(tc, test_hn_foreign_certificate);
	tcase_add_test(tc, test_hn_tps_same_serial);
	tcase_add_test(tc, test_hn_session_cap);
	tcase_add_test(tc, test_hn_malformed);
	suite_add_tcase(s, tc);
	return s;
}
