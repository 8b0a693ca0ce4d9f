/*
 * Hebei (failure-paths.md section 2): the provincial social-insurance
 * public-service platform (prov) and, for HB-E05, one city platform
 * (city, Shijiazhuang). Accounts are username/password; an account binds
 * units in the business systems of the binding window (seed 002, 图4),
 * then one Hebei CA certificate, then logs in with it. Each platform has
 * its own accounts; the registry of the business systems is shared.
 */
#include "portal_def.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Catalog texts (seed 002), byte for byte. */
#define HB_TXT_REGISTERED "注册成功，请登录"
#define HB_TXT_CA_BOUND "绑定成功，请重新登录"
#define HB_TXT_NOT_INSURED_STATE "未参保"
#define HB_TXT_INSURED_STATE "正常参保"
#define HB_TXT_NOT_INSURED "若您还未参保，请点击我去做单位参保登记"
#define HB_VENDOR "河北 CA"
#define HB_VENDOR_LOGIN "河北 CA 登录"
#define HB_REMEDY_RENEW "老用户延期"
#define HB_REMEDY_LOST "丢失补办"

/* The mock's own texts (API.md). */
#define HB_TXT_TO_CITY "市级或者县区单位请在所在地市公共服务平台注册账号、申报业务"
#define HB_TXT_TO_PROV "省属单位（含定州、辛集）请在河北省公共服务平台注册账号、申报业务"
#define HB_TXT_OTHER_CITY "该单位不属于本市，请在所在地市公共服务平台注册账号、申报业务"
#define HB_TXT_USER_TAKEN "用户名已存在"
#define HB_TXT_BAD_PASSWORD "用户名或密码错误"
#define HB_TXT_PERSON "法人或单位参保人员姓名、证件号码与参保信息不一致"
#define HB_TXT_ONE_PENSION "每个账户只能绑定一个养老编号"
#define HB_TXT_UNIT_TWICE "该险种编号已绑定"
#define HB_TXT_VENDOR "证书厂商选择错误，请选择“" HB_VENDOR "”"
#define HB_TXT_NOT_HEBEI "该证书不是河北 CA 颁发的证书，无法绑定"
#define HB_TXT_NO_UNIT "请先绑定单位"
#define HB_TXT_CERT_UNIT "证书中的统一社会信用代码与绑定单位不一致"
#define HB_TXT_CERT_ELSEWHERE "该证书已绑定其他账户，每个 CA 证书只能绑定一个账户"
#define HB_TXT_NOT_BOUND "该证书未绑定账户，请使用用户名登录后进行 CA 绑定"
#define HB_TXT_CA_REQUIRED "请使用 CA 证书登录后办理申报业务"
#define HB_TXT_NO_FILING "未查询到该单位编号的劳动用工备案信息"
#define HB_TXT_NO_EMP_UNIT "未查询到该就业单位，请先进行就业单位注册"
/* Certificate checks 2-3 (the guide gives no status codes, API.md). */
#define HB_TXT_CERT_EXPIRED \
	"该数字证书已过期。可网上办理证书延期，也可携带河北 CA 证书到河北 CA 当地办事处现场办理"
#define HB_TXT_CERT_LOST \
	"该数字证书已挂失，请登录河北 CA 网站 www.hebca.com，点击首页“丢失补办”，按照流程办理"
#define HB_TXT_CERT_NOT_YET_VALID "该数字证书尚未生效，请在证书生效后使用"

typedef struct hb_state {
	json_t *accounts; /* site -> username -> account (see API.md) */
	/* "system/unit_number" -> {"uscc"[,"person_name","person_id"]} */
	json_t *registry;
	unsigned long receipts;
} hb_state;

enum {
	HB_PENSION = 1, /* one pension number per account (HB-E02) */
	HB_INSURED = 2, /* an insurance: asks the person, 未参保 / 正常参保 */
};

/*
 * The rows of the binding window (seed 002, 图4): the API name, the page's
 * 业务系统 and 操作 (its button), and the refusal of a unit number the
 * system does not know.
 */
typedef struct hb_system {
	const char *name;
	const char *label;
	const char *action;
	unsigned flags;
	const char *unknown_code;
	const char *unknown_msg;
} hb_system;

static const hb_system systems[] = {
	{ "enterprise_pension", "河北省企业养老保险", "绑定",
	  HB_PENSION | HB_INSURED, "HB_NOT_INSURED", HB_TXT_NOT_INSURED },
	{ "institution_pension", "河北省机关事业单位养老保险", "绑定",
	  HB_PENSION | HB_INSURED, "HB_NOT_INSURED", HB_TXT_NOT_INSURED },
	{ "unemployment", "河北省失业保险", "绑定", HB_INSURED,
	  "HB_NOT_INSURED", HB_TXT_NOT_INSURED },
	{ "work_injury", "工伤系统", "绑定", HB_INSURED, "HB_NOT_INSURED",
	  HB_TXT_NOT_INSURED },
	{ "pilot_pension", "河北省机关试点养老保险", "绑定",
	  HB_PENSION | HB_INSURED, "HB_NOT_INSURED", HB_TXT_NOT_INSURED },
	/* HB-BIND-EMP-OK: by unit number alone. */
	{ "labour_filing", "劳动用工备案", "劳动用工备案单位绑定", 0,
	  "HB_NO_LABOUR_FILING", HB_TXT_NO_FILING },
	{ "employment", "就业创业系统", "就业单位注册与绑定", 0,
	  "HB_NO_EMPLOYMENT_UNIT", HB_TXT_NO_EMP_UNIT },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const hb_system *system_find(const char *name)
{
	size_t i;

	for (i = 0; i < N(systems); i++)
		if (strcmp(systems[i].name, name) == 0)
			return &systems[i];
	return NULL;
}

/*
 * The body's system when it is a row with (flags & mask) == want; else
 * NULL and a 400 naming the rows that are.
 */
static const hb_system *system_field(pt_ctx *ctx, unsigned mask,
				     unsigned want)
{
	const hb_system *sys = system_find(pt_body_str(ctx, "system"));
	char list[512] = "";
	size_t i, n = 0;

	if (sys && (sys->flags & mask) == want)
		return sys;
	for (i = 0; i < N(systems) && n < sizeof(list); i++)
		if ((systems[i].flags & mask) == want)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
					      n ? ", " : "", systems[i].name);
	pt_reply_error(ctx, 400, "BAD_FIELD", 0, "field 'system' must be one of %s",
		       list);
	return NULL;
}

/*
 * The certificate vendors of "CA 绑定" and "CA 证书登录": the name as the
 * guide and the page write it, its other spelling (the same vendor), and
 * its login button.
 */
static const struct hb_vendor {
	const char *name;
	const char *alias;
	const char *login;
} vendors[] = {
	{ HB_VENDOR, "河北CA", HB_VENDOR_LOGIN },
};

static int vendor_known(const char *v)
{
	size_t i;

	for (i = 0; i < N(vendors); i++)
		if (!strcmp(v, vendors[i].name) || !strcmp(v, vendors[i].alias))
			return 1;
	return 0;
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
	if (!pt_digits(region, 6, 6) || strncmp(region, "13", 2) != 0) {
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
	int err;

	if (!acct || strcmp(json_string_value(json_object_get(acct, "password")),
			    pt_body_str(ctx, "password")) != 0) {
		pt_reply_error(ctx, 401, "HB_BAD_PASSWORD", 0, "%s",
			       HB_TXT_BAD_PASSWORD);
		return;
	}
	if ((err = pt_session_open(ctx, ctx->site->name, NULL, "", "", user,
				   &s)) < 0) {
		pt_reply_session_error(ctx, err);
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "session", s->id,
					"account", user));
}

/* The person is asked by the insurance rows only (HB_INSURED). */
static const pt_field unit_fields[] = {
	{ "system", PT_FIELD_STRING, 0 },
	{ "unit_number", PT_FIELD_STRING, 0 },
	{ "person_name", PT_FIELD_STRING, 1 },
	{ "person_id", PT_FIELD_STRING, 1 },
};

static json_t *session_account(pt_ctx *ctx)
{
	return json_object_get(site_accounts(ctx), ctx->session->account);
}

/* The person fields of the body: required by an insurance row, else refused. */
static int person_fields(pt_ctx *ctx, const hb_system *sys)
{
	static const char *const names[] = { "person_name", "person_id" };
	size_t i;

	if (sys->flags & HB_INSURED)
		return pt_text_field(ctx, "person_name", 1, 64) &&
		       pt_text_field(ctx, "person_id", 1, 32);
	for (i = 0; i < N(names); i++) {
		if (json_object_get(ctx->body, names[i])) {
			pt_reply_error(ctx, 400, "BAD_FIELD", 0,
				       "field '%s': system %s binds by unit number alone",
				       names[i], sys->name);
			return 0;
		}
	}
	return 1;
}

/*
 * HB-BIND-UNIT-OK, HB-BIND-EMP-OK, HB-E01 (未参保), HB-E02 (one pension
 * number): one row of the binding window.
 */
static void h_unit_bindings(pt_ctx *ctx)
{
	hb_state *st = ctx->state;
	const hb_system *sys = system_field(ctx, 0, 0), *other;
	const char *number = pt_body_str(ctx, "unit_number");
	json_t *acct = session_account(ctx), *units, *rec, *u, *binding;
	char key[128];
	size_t i;

	if (!sys || !pt_text_field(ctx, "unit_number", 1, 32) ||
	    !person_fields(ctx, sys))
		return;
	if (!acct) {
		pt_reply_error(ctx, 401, "NO_SESSION", 0, "account gone, log in");
		return;
	}
	snprintf(key, sizeof(key), "%s/%s", sys->name, number);
	rec = json_object_get(st->registry, key);
	if (!rec) {
		pt_reply_error_x(ctx, 403, sys->unknown_code,
				 (sys->flags & HB_INSURED)
					 ? json_pack("{s:s}", "insurance_state",
						     HB_TXT_NOT_INSURED_STATE)
					 : NULL,
				 "%s", sys->unknown_msg);
		return;
	}
	if ((sys->flags & HB_INSURED) &&
	    (strcmp(json_string_value(json_object_get(rec, "person_name")),
		    pt_body_str(ctx, "person_name")) ||
	     strcmp(json_string_value(json_object_get(rec, "person_id")),
		    pt_body_str(ctx, "person_id")))) {
		pt_reply_error(ctx, 403, "HB_PERSON_MISMATCH", 0, "%s",
			       HB_TXT_PERSON);
		return;
	}
	units = json_object_get(acct, "units");
	json_array_foreach(units, i, u) {
		const char *us = json_string_value(json_object_get(u, "system"));
		const char *un = json_string_value(json_object_get(u, "unit_number"));

		other = system_find(us);
		if (!strcmp(us, sys->name) && !strcmp(un, number)) {
			pt_reply_error(ctx, 409, "HB_UNIT_ALREADY_BOUND", 0, "%s",
				       HB_TXT_UNIT_TWICE);
			return;
		}
		if ((sys->flags & HB_PENSION) && other &&
		    (other->flags & HB_PENSION) && strcmp(un, number) != 0) {
			pt_reply_error(ctx, 409, "HB_ONE_PENSION_NUMBER", 0, "%s",
				       HB_TXT_ONE_PENSION);
			return;
		}
	}
	json_array_append_new(units, json_pack("{s:s, s:s, s:O}", "system",
					       sys->name, "unit_number", number,
					       "uscc", json_object_get(rec, "uscc")));
	binding = json_pack("{s:s, s:s, s:s, s:s}", "system", sys->name,
			    "unit_number", number, "business_system", sys->label,
			    "action", sys->action);
	if (binding && (sys->flags & HB_INSURED))
		json_object_set_new(binding, "insurance_state",
				    json_string(HB_TXT_INSURED_STATE));
	pt_reply_ok(ctx, 201, json_pack("{s:o}", "binding", binding));
}

/*
 * The binding window (图4): per row what it is called, which button, what
 * it asks, and the account's number there (the last bound, null if none).
 */
static void h_unit_window(pt_ctx *ctx)
{
	json_t *acct = session_account(ctx), *rows = json_object(), *u;
	size_t i, j;

	if (!acct) {
		json_decref(rows);
		pt_reply_error(ctx, 401, "NO_SESSION", 0, "account gone, log in");
		return;
	}
	for (i = 0; rows && i < N(systems); i++) {
		const hb_system *sys = &systems[i];
		json_t *bound = json_null();

		json_array_foreach(json_object_get(acct, "units"), j, u)
			if (!strcmp(json_string_value(json_object_get(u, "system")),
				    sys->name))
				bound = json_object_get(u, "unit_number");
		json_object_set_new(rows, sys->name, json_pack(
			"{s:s, s:s, s:s, s:O}", "business_system", sys->label,
			"action", sys->action, "asks",
			(sys->flags & HB_INSURED)
				? "unit_number person_name person_id"
				: "unit_number",
			"unit_number", bound));
	}
	pt_reply_ok(ctx, 200, json_pack("{s:o}", "systems", rows));
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

	if (!vendor_known(pt_body_str(ctx, "vendor"))) {
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
			/* A serial is unique per issuer only: the certificate
			 * must name one of the account's units too. */
			if (!account_has_uscc(acct, login->uscc)) {
				pt_reply_error(ctx, 403, "HB_CERT_UNIT_MISMATCH", 0,
					       "%s", HB_TXT_CERT_UNIT);
				return 1;
			}
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

static void registry_put(pt_ctx *ctx, json_t *rec)
{
	hb_state *st = ctx->state;
	char key[128];

	snprintf(key, sizeof(key), "%s/%s", pt_body_str(ctx, "system"),
		 pt_body_str(ctx, "unit_number"));
	json_object_set_new(st->registry, key, rec);
}

/* The unit insurance registration: the unit becomes 正常参保. */
static void h_admin_insured(pt_ctx *ctx)
{
	if (!system_field(ctx, HB_INSURED, HB_INSURED) ||
	    !pt_text_field(ctx, "unit_number", 1, 32) ||
	    !pt_text_field(ctx, "uscc", 1, 64) ||
	    !pt_text_field(ctx, "person_name", 1, 64) ||
	    !pt_text_field(ctx, "person_id", 1, 32))
		return;
	registry_put(ctx, json_pack("{s:s, s:s, s:s}", "uscc",
				    pt_body_str(ctx, "uscc"), "person_name",
				    pt_body_str(ctx, "person_name"), "person_id",
				    pt_body_str(ctx, "person_id")));
	pt_reply_ok(ctx, 200, json_pack("{s:s}", "insurance_state",
					HB_TXT_INSURED_STATE));
}

static const pt_field units_fields[] = {
	{ "system", PT_FIELD_STRING, 0 },
	{ "unit_number", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
};

/*
 * The unit on record in a system bound by unit number (劳动用工备案 filed,
 * 就业单位 registered).
 */
static void h_admin_units(pt_ctx *ctx)
{
	if (!system_field(ctx, HB_INSURED, 0) ||
	    !pt_text_field(ctx, "unit_number", 1, 32) ||
	    !pt_text_field(ctx, "uscc", 1, 64))
		return;
	registry_put(ctx, json_pack("{s:s}", "uscc", pt_body_str(ctx, "uscc")));
	pt_reply_ok(ctx, 200, NULL);
}

/* "CA 证书登录" and "CA 绑定": the vendors and their login buttons. */
static void h_ca_vendors(pt_ctx *ctx)
{
	json_t *names = json_array(), *logins = json_array();
	size_t i;

	for (i = 0; names && logins && i < N(vendors); i++) {
		json_array_append_new(names, json_string(vendors[i].name));
		json_array_append_new(logins, json_string(vendors[i].login));
	}
	pt_reply_ok(ctx, 200, json_pack("{s:o, s:o}", "vendors", names,
					"logins", logins));
}

static int hb_state_new(void **out)
{
	hb_state *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st || !(st->accounts = json_object()) ||
	    !(st->registry = json_object()))
		return tr_error_set(TR_ENOMEM, "hebei state");
	return 0;
}

static void hb_state_reset(void *state)
{
	hb_state *st = state;

	json_object_clear(st->accounts);
	json_object_clear(st->registry);
	st->receipts = 0;
}

static void hb_state_free(void *state)
{
	hb_state *st = state;

	if (!st)
		return;
	json_decref(st->accounts);
	json_decref(st->registry);
	free(st);
}

#define HB_TEXTS                                                          \
	{ "证书口令错误",                                                 \
	  "证书已锁定，请登录河北 CA 网站 www.hebca.com，点击首页“重置证书密码”，按照流程办理", \
	  "未检测到数字证书，请插入河北 CA 数字证书",                     \
	  "未检测到河北 CA 数字证书助手，请下载安装证书助手",             \
	  "读取证书失败",                                                 \
	  "调用数字证书助手出现异常" }

static const pt_site_def hb_sites[] = {
	{ "prov", HB_TEXTS, hb_login_rules, NULL, NULL, NULL, 0 },
	{ "city", HB_TEXTS, hb_login_rules, NULL, NULL, NULL, 0 },
};

/* HB-E06, HB-E07: checks 2-3 in Hebei's own words (no status code). */
static const pt_ca_text hb_ca_texts[] = {
	{ PT_STATUS_NOT_YET_VALID, "HB_CERT_NOT_YET_VALID",
	  HB_TXT_CERT_NOT_YET_VALID, NULL },
	{ PT_STATUS_EXPIRED, "HB_CERT_EXPIRED", HB_TXT_CERT_EXPIRED,
	  HB_REMEDY_RENEW },
	{ PT_STATUS_REVOKED, "HB_CERT_REVOKED", HB_TXT_CERT_LOST,
	  HB_REMEDY_LOST },
};

#define SITE_ROUTES(s)                                                     \
	{ "POST", "/" s "/accounts", NULL, account_fields,                 \
	  N(account_fields), h_accounts },                                 \
	{ "POST", "/" s "/pwlogin", NULL, pwlogin_fields,                  \
	  N(pwlogin_fields), h_pwlogin },                                  \
	{ "POST", "/" s "/unit-bindings", s, unit_fields, N(unit_fields),  \
	  h_unit_bindings },                                               \
	{ "GET", "/" s "/unit-bindings", s, NULL, 0, h_unit_window },      \
	{ "GET", "/" s "/ca-vendors", NULL, NULL, 0, h_ca_vendors },       \
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
	{ "POST", "/admin/hebei/units", NULL, units_fields, N(units_fields),
	  h_admin_units },
};

const pt_portal_def pt_hebei_def = {
	.name = "hebei",
	.sites = hb_sites,
	.nsites = N(hb_sites),
	.routes = hb_routes,
	.nroutes = N(hb_routes),
	.ca_texts = hb_ca_texts,
	.nca_texts = N(hb_ca_texts),
	.state_new = hb_state_new,
	.state_reset = hb_state_reset,
	.state_free = hb_state_free,
};
