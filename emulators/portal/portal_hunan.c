/*
 * Hunan (failure-paths.md section 4): the healthcare-security online hall
 * (hall: institutions and manufacturers/agents, "机构登录" -> CA login) and
 * its drug and consumables procurement subsystem (tps: distribution
 * enterprises, "CA账号登录"). Bindings use the signature certificate's
 * serial as the client read it from the token or typed it by hand (HN-E08);
 * an encryption certificate's serial is a different number and never
 * matches a login (HN-E04). They take effect 24 working hours after they
 * are submitted (HN-E03). Both sites' login pages check the browser first
 * (HN-E07).
 */
#include "portal_def.h"
#include "portal_hunan.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The mock's texts (the seed quotes none; API.md lists them). */
#define HN_TXT_REGISTERED "注册成功"
#define HN_TXT_UNIT_EXISTS "该单位已注册账号"
#define HN_TXT_USER_TAKEN "用户名已存在"
#define HN_TXT_BAD_PASSWORD "用户名或密码错误"
#define HN_TXT_NO_ACCOUNT "未查询到该单位账号，请先注册"
#define HN_TXT_UNIT_MISMATCH "单位名称、统一社会信用代码与账号信息不一致"
#define HN_TXT_ONE_CERT "网厅系统同一个单位账号只能绑定一张单位证书"
#define HN_TXT_ALREADY_BOUND "该证书已绑定本账号"
#define HN_TXT_BINDING_PENDING \
	"该单位账号已有待生效的证书绑定申请，只能由原提交人修改"
#define HN_TXT_SERIAL_TAKEN "该证书序列号已绑定其他账号"
#define HN_TXT_BIND_SUBMITTED "提交成功，请等待24小时（工作日）后登录"
#define HN_TXT_NOT_BOUND \
	"该证书未绑定账号，如登录提示未绑定请联系湖南CA（客服热线：400-6682666）"
#define HN_TXT_DIST_NO_ACCOUNT "未查询到该证书对应的配送企业账号，请先注册"
#define HN_TXT_PENDING "注册信息正在等待管理单位审核，审核通过后方可登录"
#define HN_TXT_SUBMITTED "注册信息已提交，请耐心等待管理单位审核"
#define HN_TXT_ACTIVATE "该CA证书尚未绑定账号，请核对账号信息后点击【激活】"
#define HN_TXT_TICKET "激活信息已失效，请重新进行CA账号登录"
#define HN_TXT_ACTIVATED "激活成功"
#define HN_TXT_BOUND "绑定成功"
#define HN_TXT_DIST_ONLY "请使用配送企业账号登录后进行CA绑定"
#define HN_TXT_CA_REQUIRED "请使用CA登录后办理"
#define HN_TXT_BROWSER \
	"当前浏览器不支持数字证书登录，请更换浏览器（推荐谷歌Chrome浏览器或360浏览器极速模式）"
#define HN_TPS_NAME "湖南省医保信息平台药品和医用耗材招采管理子系统"

#define HN_TICKET_TTL 600
#define HN_BIND_DELAY (24 * 3600)

typedef struct hn_state {
	json_t *accounts; /* hall: username -> account, "binding" (API.md) */
	json_t *dist;     /* tps: username -> distribution enterprise */
	json_t *tickets;  /* activation ticket -> {"username","serial","at"} */
	unsigned long receipts;
} hn_state;

/* Midnight CST (UTC+8) after t, in portal (UTC) seconds; floored, so a
 * time before 1970 lands on its own next midnight too. */
static int64_t cst_next_midnight(int64_t t)
{
	int64_t local = t + 8 * 3600, day = local / 86400;

	if (local % 86400 < 0)
		day--;
	return (day + 1) * 86400 - 8 * 3600;
}

/* "24小时（工作日）", see portal_hunan.h. */
int64_t pt_hunan_effective_at(int64_t submitted)
{
	int64_t t = submitted, left = HN_BIND_DELAY, day_end, step;
	int mday, wday;

	while (left > 0) {
		day_end = cst_next_midnight(t);
		pt_cst_day(t, &mday, &wday);
		if (wday >= 1 && wday <= 5) {
			/* A working day: its seconds up to midnight count. */
			step = day_end - t < left ? day_end - t : left;
			left -= step;
			t += step;
		} else {
			t = day_end;
		}
	}
	return t;
}

/*
 * A serial as the portal keeps and compares it: what the user typed or
 * copied (keyInfo, a certificate viewer: "4a:1b", "4A 1B", "004a1b") with
 * separators dropped, upper-cased, then written in whole bytes without
 * leading zero bytes, the way the certificate's own serial is written
 * (pt_cert_serial_hex): "a:bc" and "00:0a:bc" are both "0ABC" (HN-E08).
 */
static int hn_serial(const char *in, char *out, size_t len)
{
	char digits[80];
	size_t n;
	int odd;

	if (pt_serial_normalize(in, digits, sizeof(digits)) < 0)
		return TR_EINVAL;
	n = strlen(digits);
	odd = (int)(n % 2);
	if (n + (size_t)odd + 1 > len)
		return TR_EINVAL;
	out[0] = '0'; /* overwritten when n is even */
	memcpy(out + odd, digits, n + 1);
	return 0;
}

/* The hall or distribution account holding serial, if any. */
static int serial_taken(hn_state *st, const char *serial, json_t *except)
{
	const char *k;
	json_t *a;

	json_object_foreach(st->accounts, k, a) {
		const char *s = json_string_value(json_object_get(
			json_object_get(a, "binding"), "serial"));

		if (a != except && s && !strcmp(s, serial))
			return 1;
	}
	json_object_foreach(st->dist, k, a) {
		const char *s = json_string_value(json_object_get(a, "serial"));

		if (a != except && s && !strcmp(s, serial))
			return 1;
	}
	return 0;
}

static json_t *by_uscc(json_t *accounts, const char *uscc, const char **user)
{
	const char *k;
	json_t *a;

	json_object_foreach(accounts, k, a) {
		if (!strcmp(json_string_value(json_object_get(a, "uscc")), uscc)) {
			if (user)
				*user = k;
			return a;
		}
	}
	return NULL;
}

/* No account of accounts has this unit or this user name; else 409 said. */
static int account_free(pt_ctx *ctx, json_t *accounts, const char *user)
{
	if (by_uscc(accounts, pt_body_str(ctx, "uscc"), NULL)) {
		pt_reply_error(ctx, 409, "HN_UNIT_EXISTS", 0, "%s", HN_TXT_UNIT_EXISTS);
		return 0;
	}
	if (json_object_get(accounts, user)) {
		pt_reply_error(ctx, 409, "HN_USERNAME_TAKEN", 0, "%s", HN_TXT_USER_TAKEN);
		return 0;
	}
	return 1;
}

static int common_unit_fields(pt_ctx *ctx)
{
	if (!pt_text_field(ctx, "unit_name", 1, 200))
		return 0;
	if (!fx_uscc_valid(pt_body_str(ctx, "uscc"))) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'uscc' is not a valid unified social credit code");
		return 0;
	}
	return 1;
}

static int credentials_ok(pt_ctx *ctx)
{
	return pt_text_field(ctx, "username", 4, 32) &&
	       pt_text_field(ctx, "password", 8, 64);
}

/* ---- hall ---- */

static const pt_field account_fields[] = {
	{ "unit_type", PT_FIELD_STRING, 0 },
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "operator_name", PT_FIELD_STRING, 0 },
	{ "operator_id", PT_FIELD_STRING, 0 },
	{ "operator_phone", PT_FIELD_STRING, 0 },
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
};

/* HN-REG-OK: the wizard's unit page and operator page in one request. */
static void h_hall_accounts(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *type = pt_body_str(ctx, "unit_type");
	const char *user = pt_body_str(ctx, "username");

	if (strcmp(type, "institution") && strcmp(type, "manufacturer")) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'unit_type' must be institution or manufacturer");
		return;
	}
	if (!common_unit_fields(ctx) || !pt_text_field(ctx, "operator_name", 1, 64))
		return;
	if (!pt_resident_id_field(ctx, "operator_id"))
		return;
	if (!pt_phone_field(ctx, "operator_phone"))
		return;
	if (!credentials_ok(ctx))
		return;
	if (!account_free(ctx, st->accounts, user))
		return;
	json_object_set_new(st->accounts, user,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:n}",
				      "password", pt_body_str(ctx, "password"),
				      "unit_type", type,
				      "unit_name", pt_body_str(ctx, "unit_name"),
				      "uscc", pt_body_str(ctx, "uscc"),
				      "operator_name", pt_body_str(ctx, "operator_name"),
				      "operator_phone", pt_body_str(ctx, "operator_phone"),
				      "binding"));
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:s}", "username", user,
					"message", HN_TXT_REGISTERED));
}

static const pt_field pwlogin_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
};

static int password_ok(json_t *acct, pt_ctx *ctx)
{
	return acct && !strcmp(json_string_value(json_object_get(acct, "password")),
			       pt_body_str(ctx, "password"));
}

static void open_session(pt_ctx *ctx, const char *site, X509 *cert,
			 const char *unit_name, const char *uscc,
			 const char *account)
{
	const pt_session *s;
	int err;

	if ((err = pt_session_open(ctx, site, cert, unit_name, uscc, account, &s)) < 0) {
		pt_reply_session_error(ctx, err);
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "session", s->id,
					"account", account));
}

static void h_hall_pwlogin(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");
	json_t *acct = json_object_get(st->accounts, user);

	if (!password_ok(acct, ctx)) {
		pt_reply_error(ctx, 401, "HN_BAD_PASSWORD", 0, "%s",
			       HN_TXT_BAD_PASSWORD);
		return;
	}
	open_session(ctx, "hall", NULL,
		     json_string_value(json_object_get(acct, "unit_name")),
		     json_string_value(json_object_get(acct, "uscc")), user);
}

static const pt_field binding_fields[] = {
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "serial", PT_FIELD_STRING, 0 },
	{ "submission", PT_FIELD_STRING, 1 },
};

/*
 * HN-BIND-OK (the submission to Hunan CA): effective 24 working hours
 * later. A binding no certificate has logged in with yet may be replaced
 * (a wrong serial, HN-E04); a confirmed one may not (HN-E02). The route
 * needs no session, and a unit's name and USCC are public: while a
 * binding is pending, only its submitter (who holds the "submission" of
 * the 202) replaces it, and the same serial sent again keeps its time, so
 * nobody else can swap or delay it.
 */
static void h_hall_ca_bindings(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *uscc = pt_body_str(ctx, "uscc");
	json_t *acct, *b;
	char serial[80], submission[32];
	const char *cur;
	int64_t at;
	int pending;

	if (!common_unit_fields(ctx))
		return;
	if (hn_serial(pt_body_str(ctx, "serial"), serial, sizeof(serial)) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'serial' must be a hexadecimal serial number "
			       "(hex digits, optionally separated by spaces, ':' or '-')");
		return;
	}
	if (!(acct = by_uscc(st->accounts, uscc, NULL))) {
		pt_reply_error(ctx, 404, "HN_NO_ACCOUNT", 0, "%s", HN_TXT_NO_ACCOUNT);
		return;
	}
	if (strcmp(json_string_value(json_object_get(acct, "unit_name")),
		   pt_body_str(ctx, "unit_name"))) {
		pt_reply_error(ctx, 403, "HN_UNIT_MISMATCH", 0, "%s",
			       HN_TXT_UNIT_MISMATCH);
		return;
	}
	b = json_object_get(acct, "binding");
	cur = json_string_value(json_object_get(b, "serial"));
	pending = b && !json_is_true(json_object_get(b, "confirmed")) &&
		  ctx->now < json_integer_value(json_object_get(b, "effective_at"));
	if (pending && !strcmp(cur, serial)) {
		/* Sent again: the same binding, the same time, no new secret. */
		pt_reply_ok(ctx, 202, json_pack("{s:s, s:O, s:s}", "serial", serial,
						"effective_at",
						json_object_get(b, "effective_at"),
						"message", HN_TXT_BIND_SUBMITTED));
		return;
	}
	if (pending && strcmp(pt_body_str(ctx, "submission"),
			      json_string_value(json_object_get(b, "submission")))) {
		pt_reply_error(ctx, 409, "HN_BINDING_PENDING", 0, "%s",
			       HN_TXT_BINDING_PENDING);
		return;
	}
	if (json_is_true(json_object_get(b, "confirmed"))) {
		if (!strcmp(json_string_value(json_object_get(b, "serial")), serial))
			pt_reply_error(ctx, 409, "HN_ALREADY_BOUND", 0, "%s",
				       HN_TXT_ALREADY_BOUND);
		else
			pt_reply_error(ctx, 409, "HN_ONE_CERT", 0, "%s",
				       HN_TXT_ONE_CERT);
		return;
	}
	if (serial_taken(st, serial, acct)) {
		pt_reply_error(ctx, 409, "HN_SERIAL_TAKEN", 0, "%s",
			       HN_TXT_SERIAL_TAKEN);
		return;
	}
	if (pt_new_id("HNS", submission, sizeof(submission)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return;
	}
	at = pt_hunan_effective_at(ctx->now);
	json_object_set_new(acct, "binding",
			    json_pack("{s:s, s:I, s:b, s:s}", "serial", serial,
				      "effective_at", (json_int_t)at,
				      "confirmed", 0, "submission", submission));
	pt_reply_ok(ctx, 202, json_pack("{s:s, s:I, s:s, s:s}", "serial", serial,
					"effective_at", (json_int_t)at,
					"submission", submission,
					"message", HN_TXT_BIND_SUBMITTED));
}

/*
 * A certificate's serial (pt_cert_serial_hex) as bindings keep it; a
 * negative one (never issued by a CA) is "" and matches nothing.
 */
static int cert_serial(const char *hex, char *out, size_t len)
{
	if (hex[0] == '-' || hn_serial(hex, out, len) < 0) {
		out[0] = '\0';
		return TR_EINVAL;
	}
	return 0;
}

/*
 * HN-LOGIN-OK; HN-E01 (unbound) and HN-E03 (not yet effective). The
 * binding was submitted without a session, so the serial alone proves
 * nothing: the certificate must name the account's unit (its USCC).
 */
static int hall_login_rules(pt_ctx *ctx, pt_login *login)
{
	hn_state *st = ctx->state;
	const char *user;
	char serial[80];
	json_t *acct;

	cert_serial(login->serial, serial, sizeof(serial));
	json_object_foreach(st->accounts, user, acct) {
		json_t *b = json_object_get(acct, "binding");
		const char *s = json_string_value(json_object_get(b, "serial"));

		if (!s || !serial[0] || strcmp(s, serial) != 0 ||
		    ctx->now < json_integer_value(json_object_get(b, "effective_at")))
			continue;
		if (strcmp(login->uscc, json_string_value(json_object_get(acct, "uscc")))) {
			pt_reply_error(ctx, 403, "HN_UNIT_MISMATCH", 0, "%s",
				       HN_TXT_UNIT_MISMATCH);
			return 1;
		}
		json_object_set_new(b, "confirmed", json_true());
		snprintf(login->account, sizeof(login->account), "%s", user);
		login->extra = json_pack("{s:s}", "account", user);
		return 0;
	}
	pt_reply_error(ctx, 403, "HN_NOT_BOUND", 0, "%s", HN_TXT_NOT_BOUND);
	return 1;
}

/* "then on to the procurement system": a tps session for the same login. */
static void h_hall_procurement(pt_ctx *ctx)
{
	const pt_session *hall = ctx->session, *s;
	char account[64];
	int err;

	snprintf(account, sizeof(account), "hall:%.58s", hall->account);
	if ((err = pt_session_open(ctx, "tps", hall->cert, hall->unit_name, hall->uscc,
			    account, &s)) < 0) {
		pt_reply_session_error(ctx, err);
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "session", s->id, "system",
					HN_TPS_NAME));
}

/* ---- the login pages' browser check (HN-E07) ---- */

/*
 * What the page's script makes of the user agent, first match wins. The
 * seed names no browser ("安装驱动后登陆系统如有其他报错提示请选择更换浏览器");
 * the pages refuse the IE engine: Internet Explorer, and the compatibility
 * mode of dual-core browsers (360, QQ, Sogou), which renders with it and
 * says so in the user agent ("Trident/", "MSIE").
 */
static const struct hn_engine {
	const char *mark; /* in the user agent */
	const char *name;
	int supported;
} hn_engines[] = {
	{ "Trident/", "ie", 0 },
	{ "MSIE ", "ie", 0 },
	{ "Edg/", "edge", 1 },
	{ "Chrome/", "chromium", 1 },
	{ "Firefox/", "firefox", 1 },
};

static const pt_field browser_fields[] = {
	{ "user_agent", PT_FIELD_STRING, 0 },
};

static void h_browser_check(pt_ctx *ctx)
{
	const char *ua = pt_text_field(ctx, "user_agent", 1, 512);
	const struct hn_engine *e = NULL;
	size_t i;

	if (!ua)
		return;
	for (i = 0; !e && i < sizeof(hn_engines) / sizeof(hn_engines[0]); i++)
		if (strstr(ua, hn_engines[i].mark))
			e = &hn_engines[i];
	if (e && !e->supported) {
		pt_reply_error_x(ctx, 403, "HN_BROWSER_UNSUPPORTED",
				 json_pack("{s:s}", "engine", e->name), "%s",
				 HN_TXT_BROWSER);
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s}", "engine", e ? e->name : "other"));
}

/* ---- procurement system: distribution enterprises ---- */

static const pt_field dist_fields[] = {
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "contact_name", PT_FIELD_STRING, 0 },
	{ "contact_phone", PT_FIELD_STRING, 0 },
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
};

static void h_tps_accounts(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");

	if (!common_unit_fields(ctx) || !pt_text_field(ctx, "contact_name", 1, 64))
		return;
	if (!pt_phone_field(ctx, "contact_phone"))
		return;
	if (!credentials_ok(ctx))
		return;
	if (!account_free(ctx, st->dist, user))
		return;
	json_object_set_new(st->dist, user,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:n}",
				      "password", pt_body_str(ctx, "password"),
				      "unit_name", pt_body_str(ctx, "unit_name"),
				      "uscc", pt_body_str(ctx, "uscc"),
				      "contact_name", pt_body_str(ctx, "contact_name"),
				      "contact_phone", pt_body_str(ctx, "contact_phone"),
				      "state", "pending", "serial"));
	pt_reply_ok(ctx, 202, json_pack("{s:s, s:s, s:s}", "username", user,
					"state", "pending", "message",
					HN_TXT_SUBMITTED));
}

static int approved(json_t *acct)
{
	return !strcmp(json_string_value(json_object_get(acct, "state")),
		       "approved");
}

static void h_tps_pwlogin(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");
	json_t *acct = json_object_get(st->dist, user);

	if (!password_ok(acct, ctx)) {
		pt_reply_error(ctx, 401, "HN_BAD_PASSWORD", 0, "%s",
			       HN_TXT_BAD_PASSWORD);
		return;
	}
	if (!approved(acct)) {
		pt_reply_error(ctx, 403, "HN_PENDING_REVIEW", 0, "%s",
			       HN_TXT_PENDING);
		return;
	}
	open_session(ctx, "tps", NULL,
		     json_string_value(json_object_get(acct, "unit_name")),
		     json_string_value(json_object_get(acct, "uscc")), user);
}

/*
 * "CA账号登录": a bound token logs in (HN-DIST-LOGIN-OK); an unbound
 * token of an approved account gets the activation offer (HN-DIST-ACT-OK).
 */
static int tps_login_rules(pt_ctx *ctx, pt_login *login)
{
	hn_state *st = ctx->state;
	const char *user;
	json_t *acct;
	char ticket[32], serial[80];

	cert_serial(login->serial, serial, sizeof(serial));
	json_object_foreach(st->dist, user, acct) {
		const char *s = json_string_value(json_object_get(acct, "serial"));

		if (s && serial[0] && !strcmp(s, serial) && approved(acct)) {
			/* The account's unit, whatever bound the serial. */
			if (strcmp(login->uscc, json_string_value(
					json_object_get(acct, "uscc")))) {
				pt_reply_error(ctx, 403, "HN_UNIT_MISMATCH", 0,
					       "%s", HN_TXT_UNIT_MISMATCH);
				return 1;
			}
			snprintf(login->account, sizeof(login->account), "%s", user);
			login->extra = json_pack("{s:s}", "account", user);
			return 0;
		}
	}
	if (!(acct = by_uscc(st->dist, login->uscc, &user))) {
		pt_reply_error(ctx, 403, "HN_DIST_NO_ACCOUNT", 0, "%s",
			       HN_TXT_DIST_NO_ACCOUNT);
		return 1;
	}
	if (!approved(acct)) {
		pt_reply_error(ctx, 403, "HN_PENDING_REVIEW", 0, "%s",
			       HN_TXT_PENDING);
		return 1;
	}
	if (!json_is_null(json_object_get(acct, "serial")) || !serial[0]) {
		pt_reply_error(ctx, 403, "HN_NOT_BOUND", 0, "%s", HN_TXT_NOT_BOUND);
		return 1;
	}
	if (pt_new_id("HNA", ticket, sizeof(ticket)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return 1;
	}
	json_object_set_new(st->tickets, ticket,
			    json_pack("{s:s, s:s, s:I}", "username", user, "serial",
				      serial, "at", (json_int_t)ctx->now));
	pt_reply_error_x(ctx, 403, "HN_ACTIVATION_REQUIRED",
			 json_pack("{s:{s:s, s:{s:s, s:O, s:O, s:O}}}",
				   "activation", "ticket", ticket, "account",
				   "username", user,
				   "unit_name", json_object_get(acct, "unit_name"),
				   "uscc", json_object_get(acct, "uscc"),
				   "contact_name", json_object_get(acct, "contact_name")),
			 "%s", HN_TXT_ACTIVATE);
	return 1;
}

/* Binds serial to a distribution account, replying either way. */
static void dist_bind(pt_ctx *ctx, json_t *acct, const char *user,
		      const char *serial, const char *message)
{
	hn_state *st = ctx->state;
	const char *cur = json_string_value(json_object_get(acct, "serial"));

	if (cur) {
		if (!strcmp(cur, serial))
			pt_reply_error(ctx, 409, "HN_ALREADY_BOUND", 0, "%s",
				       HN_TXT_ALREADY_BOUND);
		else
			pt_reply_error(ctx, 409, "HN_ONE_CERT", 0, "%s",
				       HN_TXT_ONE_CERT);
		return;
	}
	if (serial_taken(st, serial, acct)) {
		pt_reply_error(ctx, 409, "HN_SERIAL_TAKEN", 0, "%s",
			       HN_TXT_SERIAL_TAKEN);
		return;
	}
	json_object_set_new(acct, "serial", json_string(serial));
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "account", user, "message",
					message));
}

static const pt_field activate_fields[] = {
	{ "ticket", PT_FIELD_STRING, 0 },
};

static void h_tps_activate(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *id = pt_body_str(ctx, "ticket");
	json_t *t = json_object_get(st->tickets, id), *acct;
	char user[64], serial[80];
	int64_t at;

	if (!t) {
		pt_reply_error(ctx, 404, "HN_TICKET_UNKNOWN", 0, "%s", HN_TXT_TICKET);
		return;
	}
	snprintf(user, sizeof(user), "%s",
		 json_string_value(json_object_get(t, "username")));
	snprintf(serial, sizeof(serial), "%s",
		 json_string_value(json_object_get(t, "serial")));
	at = json_integer_value(json_object_get(t, "at"));
	json_object_del(st->tickets, id); /* single use */
	acct = json_object_get(st->dist, user);
	if (!acct || ctx->now - at > HN_TICKET_TTL || ctx->now < at) {
		pt_reply_error(ctx, 404, "HN_TICKET_UNKNOWN", 0, "%s", HN_TXT_TICKET);
		return;
	}
	dist_bind(ctx, acct, user, serial, HN_TXT_ACTIVATED);
}

static const pt_field dist_bind_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "certificate", PT_FIELD_STRING, 0 },
};

/* HN-DIST-BIND-OK: 账号管理 -> the account -> CA绑定 -> 确定. */
static void h_tps_ca_bindings(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");
	json_t *acct = json_object_get(st->dist, ctx->session->account);
	char name[256], uscc[64], hex[80], serial[80];
	X509 *cert = NULL;
	int status;

	if (!acct) {
		pt_reply_error(ctx, 403, "HN_DIST_ONLY", 0, "%s", HN_TXT_DIST_ONLY);
		goto out;
	}
	if (strcmp(user, ctx->session->account) != 0) {
		pt_reply_error(ctx, 404, "HN_NO_ACCOUNT", 0, "%s", HN_TXT_NO_ACCOUNT);
		goto out;
	}
	if (pt_cert_from_base64(pt_body_str(ctx, "certificate"), &cert) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "certificate is not base64 of a DER X.509 certificate");
		goto out;
	}
	if (pt_cert_check(ctx, cert, &status) < 0) {
		pt_reply_ca_failure(ctx, status);
		goto out;
	}
	pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
	if (strcmp(uscc, json_string_value(json_object_get(acct, "uscc")))) {
		pt_reply_error(ctx, 403, "HN_UNIT_MISMATCH", 0, "%s",
			       HN_TXT_UNIT_MISMATCH);
		goto out;
	}
	pt_cert_serial_hex(cert, hex, sizeof(hex));
	if (cert_serial(hex, serial, sizeof(serial)) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "the certificate's serial number is not positive");
		goto out;
	}
	dist_bind(ctx, acct, user, serial, HN_TXT_BOUND);
out:
	X509_free(cert);
}

static void h_tps_quotes(pt_ctx *ctx)
{
	hn_state *st = ctx->state;

	pt_signed_submission(ctx, "HN", &st->receipts, "HN_CA_REQUIRED",
			     HN_TXT_CA_REQUIRED);
}

static const pt_field approve_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
};

static void h_admin_approve(pt_ctx *ctx)
{
	hn_state *st = ctx->state;
	json_t *acct = json_object_get(st->dist, pt_body_str(ctx, "username"));

	if (!acct) {
		pt_reply_error(ctx, 404, "HN_NO_ACCOUNT", 0, "%s", HN_TXT_NO_ACCOUNT);
		return;
	}
	json_object_set_new(acct, "state", json_string("approved"));
	pt_reply_ok(ctx, 200, json_pack("{s:s}", "state", "approved"));
}

static int hn_state_new(void **out)
{
	hn_state *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st || !(st->accounts = json_object()) ||
	    !(st->dist = json_object()) || !(st->tickets = json_object()))
		return tr_error_set(TR_ENOMEM, "hunan state");
	return 0;
}

static void hn_state_reset(void *state)
{
	hn_state *st = state;

	json_object_clear(st->accounts);
	json_object_clear(st->dist);
	json_object_clear(st->tickets);
	st->receipts = 0;
}

static void hn_state_free(void *state)
{
	hn_state *st = state;

	if (!st)
		return;
	json_decref(st->accounts);
	json_decref(st->dist);
	json_decref(st->tickets);
	free(st);
}

#define HN_TEXTS                                                          \
	{ "PIN码错误",                                                    \
	  "PIN码已锁定，请联系湖南CA解锁（客服热线：400-6682666）",        \
	  "未检测到数字证书，请插入湖南CA数字证书",                        \
	  "登录报错或点击证书登录无反应，请下载并安装湖南CA证书驱动",      \
	  "读取证书信息失败",                                              \
	  "证书驱动调用异常，请更换浏览器后重试" }

static const pt_site_def hn_sites[] = {
	{ "hall", HN_TEXTS, hall_login_rules, NULL, NULL, NULL, 0 },
	{ "tps", HN_TEXTS, tps_login_rules, NULL, NULL, NULL, 0 },
};

static const pt_field decl_fields[] = {
	{ "document", PT_FIELD_STRING, 0 },
	{ "signature", PT_FIELD_STRING, 0 },
	{ "algorithm", PT_FIELD_STRING, 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const pt_route hn_routes[] = {
	{ "POST", "/hall/accounts", NULL, account_fields, N(account_fields),
	  h_hall_accounts },
	{ "POST", "/hall/pwlogin", NULL, pwlogin_fields, N(pwlogin_fields),
	  h_hall_pwlogin },
	{ "POST", "/hall/ca-bindings", NULL, binding_fields,
	  N(binding_fields), h_hall_ca_bindings },
	{ "POST", "/hall/procurement", "hall", NULL, 0, h_hall_procurement },
	{ "POST", "/hall/browser-check", NULL, browser_fields,
	  N(browser_fields), h_browser_check },
	{ "POST", "/tps/browser-check", NULL, browser_fields,
	  N(browser_fields), h_browser_check },
	{ "POST", "/tps/accounts", NULL, dist_fields, N(dist_fields),
	  h_tps_accounts },
	{ "POST", "/tps/pwlogin", NULL, pwlogin_fields, N(pwlogin_fields),
	  h_tps_pwlogin },
	{ "POST", "/tps/activate", NULL, activate_fields, N(activate_fields),
	  h_tps_activate },
	{ "POST", "/tps/ca-bindings", "tps", dist_bind_fields,
	  N(dist_bind_fields), h_tps_ca_bindings },
	{ "POST", "/tps/quotes", "tps", decl_fields, N(decl_fields),
	  h_tps_quotes },
	{ "POST", "/admin/hunan/approve", NULL, approve_fields,
	  N(approve_fields), h_admin_approve },
};

const pt_portal_def pt_hunan_def = {
	.name = "hunan",
	.sites = hn_sites,
	.nsites = N(hn_sites),
	.routes = hn_routes,
	.nroutes = N(hn_routes),
	.state_new = hn_state_new,
	.state_reset = hn_state_reset,
	.state_free = hn_state_free,
};
