/*
 * Hebei (failure-paths.md section 2): the provincial social-insurance
 * public-service platform (prov) and, for HB-E05, one city platform
 * (city, Shijiazhuang). Accounts are username/password; an account binds
 * insurance units, then one Hebei CA certificate, then logs in with it.
 * Each platform has its own accounts; the insured registry is shared.
 */
#include "portal_def.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Catalog texts (seed 002). */
#define HB_TXT_REGISTERED "注册成功，请登录"
#define HB_TXT_CA_BOUND "绑定成功，请重新登录"
#define HB_TXT_NOT_INSURED_STATE "未参保"
#define HB_VENDOR "河北CA"

/* The mock's own texts (API.md). */
#define HB_TXT_TO_CITY "市级或者县区单位请在所在地市公共服务平台注册账号、申报业务"
#define HB_TXT_TO_PROV "省属单位（含定州、辛集）请在河北省公共服务平台注册账号、申报业务"
#define HB_TXT_OTHER_CITY "该单位不属于本市，请在所在地市公共服务平台注册账号、申报业务"
#define HB_TXT_USER_TAKEN "用户名已存在"
#define HB_TXT_BAD_PASSWORD "用户名或密码错误"
#define HB_TXT_NOT_INSURED "该单位未参保，请先做单位参保登记"
#define HB_TXT_PERSON "法人或单位参保人员姓名、证件号码与参保信息不一致"
#define HB_TXT_ONE_PENSION "每个账户只能绑定一个养老编号"
#define HB_TXT_UNIT_TWICE "该险种编号已绑定"
#define HB_TXT_VENDOR "证书厂商选择错误，请选择“河北CA”"
#define HB_TXT_NOT_HEBEI "该证书不是河北CA颁发的证书，无法绑定"
#define HB_TXT_NO_UNIT "请先绑定单位"
#define HB_TXT_CERT_UNIT "证书中的统一社会信用代码与绑定单位不一致"
#define HB_TXT_CERT_ELSEWHERE "该证书已绑定其他账户，每个CA证书只能绑定一个账户"
#define HB_TXT_NOT_BOUND "该证书未绑定账户，请使用用户名登录后进行CA绑定"
#define HB_TXT_CA_REQUIRED "请使用CA证书登录后办理申报业务"

typedef struct hb_state {
	json_t *accounts; /* site -> username -> account (see API.md) */
	json_t *insured;  /* "system/unit_number" -> {"uscc","person_name","person_id"} */
	unsigned long receipts;
} hb_state;

static const char *const systems[] = {
	"enterprise_pension", "institution_pension", "pilot_pension",
	"unemployment", "work_injury", NULL,
};

/* The first three are pension systems: one pension number per account. */
static int system_index(const char *s)
{
	int i;

	for (i = 0; systems[i]; i++)
		if (strcmp(systems[i], s) == 0)
			return i;
	return -1;
}

static json_t *site_accounts(pt_ctx *ctx)
{
	hb_state *st = ctx->state;
	json_t *a = json_object_get(st->accounts, ctx->site->name);

	if (!a) {
		a = json_object();
		json_object_set_new(st->accounts, ctx->site->name, a);
	}
	return a;
}

static int digits(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * Which platform a unit belongs to, from the administrative division code
 * given at registration: 130000 (provincial units), 130682 (Dingzhou) and
 * 130181 (Xinji) -> "prov"; 1301xx -> "city" (Shijiazhuang); any other
 * 13xxxx -> "other" (another city's platform).
 */
static const char *platform_of(const char *region)
{
	if (!strcmp(region, "130000") || !strcmp(region, "130682") ||
	    !strcmp(region, "130181"))
		return "prov";
	if (!strncmp(region, "1301", 4))
		return "city";
	return "other";
}

static const pt_field account_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
	{ "region", PT_FIELD_STRING, 0 },
};

static int username_ok(pt_ctx *ctx, const char *u)
{
	size_t n = strlen(u), i;

	for (i = 0; i < n; i++) {
		char c = u[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			break;
	}
	if (n < 4 || n > 32 || i < n) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'username' must be 4 to 32 of A-Z a-z 0-9 _");
		return 0;
	}
	return 1;
}

static void h_accounts(pt_ctx *ctx)
{
	json_t *accounts = site_accounts(ctx);
	const char *user = pt_body_str(ctx, "username");
	const char *region = pt_body_str(ctx, "region");
	const char *platform, *site = ctx->site->name;

	if (!username_ok(ctx, user) || !pt_text_field(ctx, "password", 8, 64))
		return;
	if (!digits(region, 6) || strncmp(region, "13", 2) != 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'region' must be a 6-digit Hebei division code (13xxxx)");
		return;
	}
	platform = platform_of(region);
	if (strcmp(platform, site) != 0) {
		const char *msg = !strcmp(site, "prov") ? HB_TXT_TO_CITY
				: !strcmp(platform, "prov") ? HB_TXT_TO_PROV
				: HB_TXT_OTHER_CITY;

		pt_reply_error_x(ctx, 403, "HB_WRONG_PLATFORM",
				 json_pack("{s:s}", "platform", platform),
				 "%s", msg);
		return;
	}
	if (json_object_get(accounts, user)) {
		pt_reply_error(ctx, 409, "HB_USERNAME_TAKEN", 0, "%s",
			       HB_TXT_USER_TAKEN);
		return;
	}
	json_object_set_new(accounts, user,
			    json_pack("{s:s, s:s, s:[], s:n}", "password",
				      pt_body_str(ctx, "password"), "region",
				      region, "units", "cert"));
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:s}", "username", user,
					"message", HB_TXT_REGISTERED));
}

static const pt_field pwlogin_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
};

static void h_pwlogin(pt_ctx *ctx)
{
	const char *user = pt_body_str(ctx, "username");
	json_t *acct = json_object_get(site_accounts(ctx), user);
	const pt_session *s;

	if (!acct || strcmp(json_string_value(json_object_get(acct, "password")),
			    pt_body_str(ctx, "password")) != 0) {
		pt_reply_error(ctx, 401, "HB_BAD_PASSWORD", 0, "%s",
			       HB_TXT_BAD_PASSWORD);
		return;
	}
	if (pt_session_open(ctx, ctx->site->name, NULL, "", "", user, &s) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "%s", tr_error_last());
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "session", s->id,
					"account", user));
}

static const pt_field unit_fields[] = {
	{ "system", PT_FIELD_STRING, 0 },
	{ "unit_number", PT_FIELD_STRING, 0 },
	{ "person_name", PT_FIELD_STRING, 0 },
	{ "person_id", PT_FIELD_STRING, 0 },
};

static json_t *session_account(pt_ctx *ctx)
{
	return json_object_get(site_accounts(ctx), ctx->session->account);
}

/* HB-BIND-UNIT-OK, HB-E01 (未参保), HB-E02 (one pension number). */
static void h_unit_bindings(pt_ctx *ctx)
{
	hb_state *st = ctx->state;
	const char *system = pt_body_str(ctx, "system");
	const char *number = pt_body_str(ctx, "unit_number");
	json_t *acct = session_account(ctx), *units, *rec, *u;
	char key[128];
	size_t i;
	int si = system_index(system);

	if (si < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'system' must be enterprise_pension, institution_pension, pilot_pension, unemployment or work_injury");
		return;
	}
	if (!pt_text_field(ctx, "unit_number", 1, 32) ||
	    !pt_text_field(ctx, "person_name", 1, 64) ||
	    !pt_text_field(ctx, "person_id", 1, 32))
		return;
	if (!acct) {
		pt_reply_error(ctx, 401, "NO_SESSION", 0, "account gone, log in");
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", system, number);
	rec = json_object_get(st->insured, key);
	if (!rec) {
		pt_reply_error_x(ctx, 403, "HB_NOT_INSURED",
				 json_pack("{s:s}", "insurance_state",
					   HB_TXT_NOT_INSURED_STATE),
				 "%s", HB_TXT_NOT_INSURED);
		return;
	}
	if (strcmp(json_string_value(json_object_get(rec, "person_name")),
		   pt_body_str(ctx, "person_name")) ||
	    strcmp(json_string_value(json_object_get(rec, "person_id")),
		   pt_body_str(ctx, "person_id"))) {
		pt_reply_error(ctx, 403, "HB_PERSON_MISMATCH", 0, "%s",
			       HB_TXT_PERSON);
		return;
	}
	units = json_object_get(acct, "units");
	json_array_foreach(units, i, u) {
		const char *us = json_string_value(json_object_get(u, "system"));
		const char *un = json_string_value(json_object_get(u, "unit_number"));

		if (!strcmp(us, system) && !strcmp(un, number)) {
			pt_reply_error(ctx, 409, "HB_UNIT_ALREADY_BOUND", 0, "%s",
				       HB_TXT_UNIT_TWICE);
			return;
		}
		if (si < 3 && system_index(us) < 3 && strcmp(un, number) != 0) {
			pt_reply_error(ctx, 409, "HB_ONE_PENSION_NUMBER", 0, "%s",
				       HB_TXT_ONE_PENSION);
			return;
		}
	}
	json_array_append_new(units, json_pack("{s:s, s:s, s:O}", "system", system,
					       "unit_number", number, "uscc",
					       json_object_get(rec, "uscc")));
	pt_reply_ok(ctx, 201, json_pack("{s:{s:s, s:s, s:s}}", "binding",
					"system", system, "unit_number", number,
					"insurance_state", "正常参保"));
}

static int account_has_uscc(json_t *acct, const char *uscc)
{
	json_t *u;
	size_t i;

	json_array_foreach(json_object_get(acct, "units"), i, u)
		if (!strcmp(json_string_value(json_object_get(u, "uscc")), uscc))
			return 1;
	return 0;
}

static char *cert_der_b64(X509 *cert)
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	char *b64 = len > 0 ? pt_base64_encode(der, (size_t)len) : NULL;

	OPENSSL_free(der);
	return b64;
}

/* The record of a bound certificate: serial, USCC, notAfter, DER. */
static json_t *cert_record(X509 *cert)
{
	char serial[80], name[256], uscc[64], *b64 = cert_der_b64(cert);
	json_t *rec;

	pt_cert_serial_hex(cert, serial, sizeof(serial));
	pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
	rec = b64 ? json_pack("{s:s, s:s, s:s}", "serial", serial, "uscc", uscc,
			      "der", b64) : NULL;
	free(b64);
	return rec;
}

static const pt_field ca_fields[] = {
	{ "vendor", PT_FIELD_STRING, 0 },
	{ "certificate", PT_FIELD_STRING, 0 },
};

/* HB-CA-BIND-OK, HB-E03, HB-E04; success ends the session (HB-E09). */
static void h_ca_bindings(pt_ctx *ctx)
{
	json_t *accounts = site_accounts(ctx), *acct = session_account(ctx);
	json_t *other, *rec;
	const char *user;
	char serial[80], name[256], uscc[64];
	X509 *cert = NULL;
	int status;

	if (strcmp(pt_body_str(ctx, "vendor"), HB_VENDOR) != 0) {
		pt_reply_error(ctx, 403, "HB_WRONG_VENDOR", 0, "%s", HB_TXT_VENDOR);
		goto out;
	}
	if (pt_cert_from_base64(pt_body_str(ctx, "certificate"), &cert) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "certificate is not base64 of a DER X.509 certificate");
		goto out;
	}
	if (pt_cert_check(ctx, cert, &status) < 0) {
		if (status == PT_STATUS_CHAIN)
			pt_reply_error(ctx, 403, "HB_NOT_HEBEI_CA", 0, "%s",
				       HB_TXT_NOT_HEBEI);
		else
			pt_reply_ca_failure(ctx, status);
		goto out;
	}
	if (!acct) {
		pt_reply_error(ctx, 401, "NO_SESSION", 0, "account gone, log in");
		goto out;
	}
	pt_cert_serial_hex(cert, serial, sizeof(serial));
	pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
	json_object_foreach(accounts, user, other) {
		const char *s = json_string_value(json_object_get(
			json_object_get(other, "cert"), "serial"));

		if (s && !strcmp(s, serial) && other != acct) {
			pt_reply_error(ctx, 409, "HB_CERT_BOUND_ELSEWHERE", 0, "%s",
				       HB_TXT_CERT_ELSEWHERE);
			goto out;
		}
	}
	if (json_array_size(json_object_get(acct, "units")) == 0) {
		pt_reply_error(ctx, 409, "HB_NO_UNIT", 0, "%s", HB_TXT_NO_UNIT);
		goto out;
	}
	if (!account_has_uscc(acct, uscc)) {
		pt_reply_error(ctx, 403, "HB_CERT_UNIT_MISMATCH", 0, "%s",
			       HB_TXT_CERT_UNIT);
		goto out;
	}
	if (!(rec = cert_record(cert))) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "out of memory");
		goto out;
	}
	/* One certificate per account: a new binding replaces the old one. */
	json_object_set_new(acct, "cert", rec);
	pt_session_end(ctx);
	pt_reply_ok(ctx, 200, json_pack("{s:s}", "message", HB_TXT_CA_BOUND));
out:
	X509_free(cert);
}

static X509 *record_cert(json_t *rec)
{
	X509 *cert = NULL;

	pt_cert_from_base64(json_string_value(json_object_get(rec, "der")), &cert);
	return cert;
}

/*
 * The account of a certificate: the one it is bound to; else a renewal:
 * the single account bound to a certificate of the same unit (USCC) that
 * expires earlier and was never revoked, which then follows the new one
 * (HB-E06). A re-issue after a loss (the old one revoked, HB-E07) must be
 * bound again.
 */
static int hb_login_rules(pt_ctx *ctx, pt_login *login)
{
	json_t *accounts = site_accounts(ctx), *acct, *found = NULL, *rec;
	const char *user, *found_user = NULL;
	int candidates = 0;

	json_object_foreach(accounts, user, acct) {
		const char *s = json_string_value(json_object_get(
			json_object_get(acct, "cert"), "serial"));

		if (s && !strcmp(s, login->serial)) {
			found = acct;
			found_user = user;
			candidates = 1;
			goto bound;
		}
	}
	json_object_foreach(accounts, user, acct) {
		json_t *c = json_object_get(acct, "cert");
		X509 *old;
		int newer = 0;

		if (!json_is_object(c) ||
		    strcmp(json_string_value(json_object_get(c, "uscc")),
				 login->uscc) != 0 || !(old = record_cert(c)))
			continue;
		newer = ASN1_TIME_compare(X509_get0_notAfter(old),
					  X509_get0_notAfter(login->cert)) < 0 &&
			!pt_cert_revoked(ctx, old);
		X509_free(old);
		if (newer) {
			found = acct;
			found_user = user;
			candidates++;
		}
	}
	if (candidates != 1) {
		pt_reply_error(ctx, 403, "HB_CERT_NOT_BOUND", 0, "%s",
			       HB_TXT_NOT_BOUND);
		return 1;
	}
	if (!(rec = cert_record(login->cert))) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "out of memory");
		return 1;
	}
	json_object_set_new(found, "cert", rec);
bound:
	snprintf(login->account, sizeof(login->account), "%s", found_user);
	login->extra = json_pack("{s:s}", "account", found_user);
	return 0;
}

static void h_declarations(pt_ctx *ctx)
{
	hb_state *st = ctx->state;

	pt_signed_submission(ctx, "HB", &st->receipts, "HB_CA_REQUIRED",
			     HB_TXT_CA_REQUIRED);
}

static const pt_field insured_fields[] = {
	{ "system", PT_FIELD_STRING, 0 },
	{ "unit_number", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "person_name", PT_FIELD_STRING, 0 },
	{ "person_id", PT_FIELD_STRING, 0 },
};

/* The unit insurance registration: the unit becomes 正常参保. */
static void h_admin_insured(pt_ctx *ctx)
{
	hb_state *st = ctx->state;
	char key[128];

	if (system_index(pt_body_str(ctx, "system")) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'system' is not a known insurance system");
		return;
	}
	if (!pt_text_field(ctx, "unit_number", 1, 32) ||
	    !pt_text_field(ctx, "uscc", 1, 64) ||
	    !pt_text_field(ctx, "person_name", 1, 64) ||
	    !pt_text_field(ctx, "person_id", 1, 32))
		return;
	snprintf(key, sizeof(key), "%s/%s", pt_body_str(ctx, "system"),
		 pt_body_str(ctx, "unit_number"));
	json_object_set_new(st->insured, key,
			    json_pack("{s:s, s:s, s:s}", "uscc",
				      pt_body_str(ctx, "uscc"), "person_name",
				      pt_body_str(ctx, "person_name"), "person_id",
				      pt_body_str(ctx, "person_id")));
	pt_reply_ok(ctx, 200, json_pack("{s:s}", "insurance_state", "正常参保"));
}

static int hb_state_new(void **out)
{
	hb_state *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st || !(st->accounts = json_object()) ||
	    !(st->insured = json_object()))
		return tr_error_set(TR_ENOMEM, "hebei state");
	return 0;
}

static void hb_state_reset(void *state)
{
	hb_state *st = state;

	json_object_clear(st->accounts);
	json_object_clear(st->insured);
	st->receipts = 0;
}

static void hb_state_free(void *state)
{
	hb_state *st = state;

	if (!st)
		return;
	json_decref(st->accounts);
	json_decref(st->insured);
	free(st);
}

#define HB_TEXTS                                                          \
	{ "证书口令错误",                                                 \
	  "证书已锁定，请登录河北CA网站点击“重置证书密码”办理",          \
	  "未检测到数字证书，请插入河北CA数字证书",                       \
	  "未检测到河北CA数字证书助手，请下载安装证书助手",               \
	  "读取证书失败",                                                 \
	  "调用数字证书助手出现异常" }

static const pt_site_def hb_sites[] = {
	{ "prov", HB_TEXTS, hb_login_rules, NULL, NULL, NULL, 0 },
	{ "city", HB_TEXTS, hb_login_rules, NULL, NULL, NULL, 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SITE_ROUTES(s)                                                     \
	{ "POST", "/" s "/accounts", NULL, account_fields,                 \
	  N(account_fields), h_accounts },                                 \
	{ "POST", "/" s "/pwlogin", NULL, pwlogin_fields,                  \
	  N(pwlogin_fields), h_pwlogin },                                  \
	{ "POST", "/" s "/unit-bindings", s, unit_fields, N(unit_fields),  \
	  h_unit_bindings },                                               \
	{ "POST", "/" s "/ca-bindings", s, ca_fields, N(ca_fields),        \
	  h_ca_bindings },                                                 \
	{ "POST", "/" s "/declarations", s, decl_fields, N(decl_fields),   \
	  h_declarations }

static const pt_field decl_fields[] = {
	{ "document", PT_FIELD_STRING, 0 },
	{ "signature", PT_FIELD_STRING, 0 },
	{ "algorithm", PT_FIELD_STRING, 0 },
};

static const pt_route hb_routes[] = {
	SITE_ROUTES("prov"),
	SITE_ROUTES("city"),
	{ "POST", "/admin/hebei/insured", NULL, insured_fields,
	  N(insured_fields), h_admin_insured },
};

const pt_portal_def pt_hebei_def = {
	.name = "hebei",
	.sites = hb_sites,
	.nsites = N(hb_sites),
	.routes = hb_routes,
	.nroutes = N(hb_routes),
	.state_new = hb_state_new,
	.state_reset = hb_state_reset,
	.state_free = hb_state_free,
};
