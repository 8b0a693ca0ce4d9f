/*
 * Suzhou (failure-paths.md section 1): the national healthcare-security CA
 * registration site (reg), the Jiangsu healthcare-security hall (hall) and
 * the Jiangsu HR & social-security hall (hr). The sites share one set of
 * registered units.
 */
#include "portal_def.h"
#include "portal_challenge.h"
#include "portal_suzhou_staff.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Catalog texts, byte for byte (seed 000). */
#define SZ_TXT_NOT_REGISTERED \
	"该证书查询不到对应的单位账户信息，无法登录，请先注册该单位帐号"
#define SZ_TXT_ALREADY_REGISTERED "组织信息已成功注册，无法保存！"
#define SZ_TXT_PHONE_TAKEN "经办人手机号已注册"
#define SZ_TXT_UNIT_MISMATCH "单位信息与证书不一致"

/* Catalog texts of the HR hall (seed 001). */
#define JS_TXT_NO_MAPPING "未查询到CA对照信息"
#define JS_TXT_UNIT_MISMATCH "单位信息不匹配"
#define JS_TXT_UNIT_NOT_FOUND "未查询到单位信息"

/* The mock's own texts (the guides paraphrase, API.md lists them). */
/*
 * SZ-E03: the seed's symptom (after the PIN check the login button stays
 * disabled) and remedy, naming the minimum version (the rig's own value).
 */
#define SZ_TXT_ASSISTANT_OLD \
	"校验完密码后，登录按钮不可点击，无法登录：证书助手版本过低（最低版本%s），请前往下载并安装最新证书助手"
#define SZ_TXT_UPGRADE \
	"该证书需要升级，请拨打客服电话0512-81876166咨询，或前往就近CA网点柜台办理CA证书升级"
#define JS_TXT_UPGRADE \
	"该证书未完成算法升级，无法登录省人社一体化平台，请先升级证书（苏州CA服务热线：0512-81876166）"
#define JS_TXT_UPG_NOT_NEEDED "该证书已完成算法升级，无需升级"
#define JS_TXT_UPG_UNIT "统一社会信用代码与证书不一致"
#define JS_TXT_UPG_SMS "短信验证码错误或已失效"
/* JS-E11, in the seed's words (附件2: "UKey不支持在线更新", "需要更换新的银色介质"). */
#define JS_TXT_UPG_BLUE \
	"该蓝色介质UKey不支持在线更新（需要更换新的银色介质），工作人员会制作新的Ukey并邮寄给用户"
#define JS_TXT_UPG_NO_ORDER "未查询到升级订单"
#define JS_TXT_UPG_DONE "该订单已确认，请勿重复提交"
#define JS_TXT_UPG_OK "UKey升级成功！证书密码不变"
/* JS-E11: the seed's form notes (附件2, step 4 and 6). */
#define JS_TXT_UPG_ADDRESS \
	"蓝色介质UKey需要更换新的银色介质UKey：需要邮寄，请用户认真填写收件地址"
#define JS_TXT_NEW_UKEY_PIN "新Ukey密码为上面填写的经办人身份证后6位！！！"

/* SZ-E03: the rig's own minimum (the guides name no version). */
#define SZ_MIN_ASSISTANT "3.0.0"
#define SZ_SMS_TTL 300

#define SZ_NAME_MAX 200

typedef struct sz_unit {
	char uscc[FX_USCC_LEN + 1];
	char *name;
	char *operator_name;
	char operator_id[FX_RESIDENT_ID_LEN + 1];
	char phone[12];
} sz_unit;

typedef struct sz_state {
	sz_unit *units;
	size_t count;
	size_t cap;
	unsigned long receipts;
	unsigned long hr_receipts;
	json_t *hr_units; /* ss_number -> {"unit_name","uscc"} (HR registry) */
	/*
	 * The CA对照 table: uscc -> {"ss_number"[,"serial"]}. With "serial"
	 * the entry is the counter's binding of that one certificate (a
	 * renewed or re-issued one needs its own, JS-E13); without, a
	 * unit-level entry that any certificate of the USCC finds.
	 */
	json_t *mappings;
	json_t *sms;      /* phone -> {"code","at"} */
	/* order id -> {"uscc","unit_name","ss_number","operator_id","address","state"} */
	json_t *orders;
	js_staff *staff;  /* persons and staff changes (portal_suzhou_staff.c) */
} sz_state;

js_staff *js_staff_of(pt_ctx *ctx)
{
	return ((sz_state *)ctx->state)->staff;
}

static const sz_unit *unit_by_uscc(const sz_state *st, const char *uscc)
{
	size_t i;

	for (i = 0; i < st->count; i++)
		if (strcmp(st->units[i].uscc, uscc) == 0)
			return &st->units[i];
	return NULL;
}

static const sz_unit *unit_by_phone(const sz_state *st, const char *phone)
{
	size_t i;

	for (i = 0; i < st->count; i++)
		if (strcmp(st->units[i].phone, phone) == 0)
			return &st->units[i];
	return NULL;
}


/* SZ-E04: the registration site sends old-system certificates to the CA. */
static int reg_login_rules(pt_ctx *ctx, pt_login *login)
{
	if (login->legacy) {
		pt_reply_error(ctx, 403, "SZ_UPGRADE_REQUIRED", 0, "%s",
			       SZ_TXT_UPGRADE);
		return 1;
	}
	return 0;
}

/*
 * The HR hall (JS-*) finds the unit through the CA对照 table: certificate
 * (its USCC, and its serial where the entry was bound to one certificate)
 * -> provincial social-security number -> the HR registry's unit, whose
 * data must be the certificate's. Old-system certificates first (JS-E10):
 * the hall no longer takes them at all.
 */
static int hr_login_rules(pt_ctx *ctx, pt_login *login)
{
	sz_state *st = ctx->state;
	json_t *unit, *map;
	const char *ss, *serial;

	if (login->legacy) {
		pt_reply_error(ctx, 403, "JS_UPGRADE_REQUIRED", 0, "%s",
			       JS_TXT_UPGRADE);
		return 1;
	}
	/* An entry made for another certificate is none (JS-E13). */
	map = json_object_get(st->mappings, login->uscc);
	ss = json_string_value(json_object_get(map, "ss_number"));
	serial = json_string_value(json_object_get(map, "serial"));
	if (!ss || (serial && strcmp(serial, login->serial) != 0)) {
		pt_reply_error(ctx, 403, "JS_NO_CA_MAPPING", 0, "%s",
			       JS_TXT_NO_MAPPING);
		return 1;
	}
	unit = json_object_get(st->hr_units, ss);
	if (!unit) {
		pt_reply_error(ctx, 403, "JS_UNIT_NOT_FOUND", 0, "%s",
			       JS_TXT_UNIT_NOT_FOUND);
		return 1;
	}
	if (strcmp(json_string_value(json_object_get(unit, "uscc")), login->uscc) ||
	    strcmp(json_string_value(json_object_get(unit, "unit_name")),
		   login->unit_name)) {
		pt_reply_error(ctx, 403, "JS_UNIT_MISMATCH", 0, "%s",
			       JS_TXT_UNIT_MISMATCH);
		return 1;
	}
	snprintf(login->account, sizeof(login->account), "%s", ss);
	login->extra = json_pack("{s:s}", "ss_number", ss);
	return 0;
}

/*
 * The hall knows a certificate when a registration has its USCC and its
 * unit name: a certificate issued with old unit data (SZ-E06) reads as
 * unregistered until the CA issues one with the current data.
 */
static int hall_login_rules(pt_ctx *ctx, pt_login *login)
{
	const sz_unit *u = unit_by_uscc(ctx->state, login->uscc);

	if (!u || strcmp(u->name, login->unit_name) != 0) {
		pt_reply_error(ctx, 403, "SZ_NOT_REGISTERED", 0, "%s",
			       SZ_TXT_NOT_REGISTERED);
		return 1;
	}
	return 0;
}

static const pt_field units_fields[] = {
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "operator_name", PT_FIELD_STRING, 0 },
	{ "operator_id", PT_FIELD_STRING, 0 },
	{ "operator_phone", PT_FIELD_STRING, 0 },
};

static int text_field_ok(pt_ctx *ctx, const char *field, const char *value,
			 size_t max)
{
	size_t len = strlen(value);

	if (len == 0 || len > max) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field '%s' must be 1 to %zu bytes", field, max);
		return 0;
	}
	return 1;
}

static void h_reg_units(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *name = pt_body_str(ctx, "unit_name");
	const char *uscc = pt_body_str(ctx, "uscc");
	const char *op_name = pt_body_str(ctx, "operator_name");
	const char *op_id = pt_body_str(ctx, "operator_id");
	const char *phone = pt_body_str(ctx, "operator_phone");
	sz_unit *u;

	if (!text_field_ok(ctx, "unit_name", name, SZ_NAME_MAX))
		return;
	if (!fx_uscc_valid(uscc)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'uscc' is not a valid unified social credit code");
		return;
	}
	if (!text_field_ok(ctx, "operator_name", op_name, 64))
		return;
	if (!pt_resident_id_field(ctx, "operator_id"))
		return;
	if (!pt_phone_field(ctx, "operator_phone"))
		return;
	if (strcmp(uscc, ctx->session->uscc) != 0) {
		pt_reply_error(ctx, 403, "SZ_UNIT_MISMATCH", 0, "%s",
			       SZ_TXT_UNIT_MISMATCH);
		return;
	}
	if (unit_by_uscc(st, uscc)) {
		pt_reply_error(ctx, 409, "SZ_ALREADY_REGISTERED", 0, "%s",
			       SZ_TXT_ALREADY_REGISTERED);
		return;
	}
	if (unit_by_phone(st, phone)) {
		pt_reply_error(ctx, 409, "SZ_PHONE_TAKEN", 0, "%s",
			       SZ_TXT_PHONE_TAKEN);
		return;
	}

	if (st->count == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 16;
		sz_unit *units = realloc(st->units, cap * sizeof(*units));

		if (!units)
			goto nomem;
		st->units = units;
		st->cap = cap;
	}
	u = &st->units[st->count];
	memset(u, 0, sizeof(*u));
	snprintf(u->uscc, sizeof(u->uscc), "%s", uscc);
	snprintf(u->operator_id, sizeof(u->operator_id), "%s", op_id);
	snprintf(u->phone, sizeof(u->phone), "%s", phone);
	u->name = strdup(name);
	u->operator_name = strdup(op_name);
	if (!u->name || !u->operator_name) {
		free(u->name);
		free(u->operator_name);
		goto nomem;
	}
	st->count++;
	pt_reply_ok(ctx, 201, json_pack("{s:{s:s, s:s}}", "unit", "name", name,
					"uscc", uscc));
	return;
nomem:
	pt_reply_error(ctx, 500, "INTERNAL", 0, "out of memory");
}

static const pt_field declaration_fields[] = {
	{ "document", PT_FIELD_STRING, 0 },
	{ "signature", PT_FIELD_STRING, 0 },
	{ "algorithm", PT_FIELD_STRING, 0 },
};

static void h_hall_declarations(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *doc = pt_body_str(ctx, "document");
	char receipt[48], day[16];
	time_t t = (time_t)ctx->now;
	struct tm tm;

	if (pt_check_signature(ctx, ctx->session->cert,
			       pt_body_str(ctx, "algorithm"), doc, strlen(doc),
			       pt_body_str(ctx, "signature")) != 0)
		return;
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(receipt, sizeof(receipt), "SZ%s%06lu", day, ++st->receipts);
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:b}", "receipt", receipt,
					"verified", 1));
}

static const pt_field operator_fields[] = {
	{ "operator_phone", PT_FIELD_STRING, 0 },
};

/*
 * SZ-E07's remedy: once logged in to the hall, the unit changes its
 * operator's phone to the real one; a number another unit holds is still
 * refused ("经办人手机号已注册").
 */
static void h_hall_operator(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *phone = pt_body_str(ctx, "operator_phone");
	const sz_unit *holder;
	sz_unit *u = (sz_unit *)unit_by_uscc(st, ctx->session->uscc);

	if (!pt_phone_field(ctx, "operator_phone"))
		return;
	if (!u) {
		pt_reply_error(ctx, 403, "SZ_NOT_REGISTERED", 0, "%s",
			       SZ_TXT_NOT_REGISTERED);
		return;
	}
	holder = unit_by_phone(st, phone);
	if (holder && holder != u) {
		pt_reply_error(ctx, 409, "SZ_PHONE_TAKEN", 0, "%s",
			       SZ_TXT_PHONE_TAKEN);
		return;
	}
	snprintf(u->phone, sizeof(u->phone), "%s", phone);
	pt_reply_ok(ctx, 200, json_pack("{s:{s:s, s:s}}", "unit", "uscc", u->uscc,
					"operator_phone", u->phone));
}

/* JS-E12: refused in the settlement period (js_staff_settlement_refused). */
static void h_hr_declarations(pt_ctx *ctx)
{
	sz_state *st = ctx->state;

	if (js_staff_settlement_refused(ctx))
		return;
	pt_signed_submission(ctx, "JS", &st->hr_receipts, "INTERNAL",
			     "no certificate");
}

/* ---- online algorithm upgrade (site upg, JS-UPG-OK, JS-E11) ---- */

static const pt_field sms_fields[] = {
	{ "phone", PT_FIELD_STRING, 0 },
};

static void h_upg_sms(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *phone = pt_body_str(ctx, "phone");
	char hex[9], code[7];
	unsigned long v;

	if (!pt_phone_field(ctx, "phone"))
		return;
	if (pt_random_hex(hex, 4) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return;
	}
	v = strtoul(hex, NULL, 16) % 1000000;
	snprintf(code, sizeof(code), "%06lu", v);
	json_object_set_new(st->sms, phone, json_pack("{s:s, s:I}", "code", code,
						     "at", (json_int_t)ctx->now));
	pt_reply_ok(ctx, 200, json_pack("{s:b, s:i}", "sent", 1, "expires_in",
					SZ_SMS_TTL));
}

static const pt_field order_fields[] = {
	{ "uscc", PT_FIELD_STRING, 0 },
	{ "ss_number", PT_FIELD_STRING, 0 },
	{ "operator_name", PT_FIELD_STRING, 0 },
	{ "operator_phone", PT_FIELD_STRING, 0 },
	{ "operator_id", PT_FIELD_STRING, 0 },
	{ "address", PT_FIELD_STRING, 1 },
	{ "email", PT_FIELD_STRING, 0 },
	{ "sms_code", PT_FIELD_STRING, 0 },
};

/* A certificate that passes the current chain needs no upgrade. */
static int cert_is_current(pt_ctx *ctx, X509 *cert)
{
	int status;

	return pt_cert_check(ctx, cert, &status) == 0 ||
	       status != PT_STATUS_CHAIN;
}

static void h_upg_orders(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *uscc = pt_body_str(ctx, "uscc");
	const char *ss = pt_body_str(ctx, "ss_number");
	const char *phone = pt_body_str(ctx, "operator_phone");
	const char *email = pt_body_str(ctx, "email");
	json_t *sms;
	char id[32];

	if (!fx_uscc_valid(uscc)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'uscc' is not a valid unified social credit code");
		return;
	}
	/*
	 * The number as typed, even none: the order does not check it
	 * against the HR registry, so a housing-fund number goes through
	 * (JS-E14) and the HR hall finds no unit later.
	 */
	if (!pt_digits(ss, 0, 32)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'ss_number' must be 0 to 32 digits");
		return;
	}
	if (!pt_text_field(ctx, "operator_name", 1, 64))
		return;
	if (!pt_phone_field(ctx, "operator_phone"))
		return;
	if (!pt_resident_id_field(ctx, "operator_id"))
		return;
	if (!pt_text_field(ctx, "address", 0, 200))
		return;
	if (strlen(email) < 3 || strlen(email) > 100 || !strchr(email, '@')) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'email' is not an e-mail address");
		return;
	}
	if (!pt_digits(pt_body_str(ctx, "sms_code"), 6, 6)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'sms_code' must be 6 digits");
		return;
	}

	if (cert_is_current(ctx, ctx->session->cert)) {
		pt_reply_error(ctx, 409, "JS_UPG_NOT_NEEDED", 0, "%s",
			       JS_TXT_UPG_NOT_NEEDED);
		return;
	}
	if (strcmp(uscc, ctx->session->uscc) != 0) {
		pt_reply_error(ctx, 403, "JS_UPG_UNIT_MISMATCH", 0, "%s",
			       JS_TXT_UPG_UNIT);
		return;
	}
	sms = json_object_get(st->sms, phone);
	if (!sms || strcmp(json_string_value(json_object_get(sms, "code")),
			   pt_body_str(ctx, "sms_code")) != 0 ||
	    ctx->now - json_integer_value(json_object_get(sms, "at")) > SZ_SMS_TTL ||
	    ctx->now < json_integer_value(json_object_get(sms, "at"))) {
		pt_reply_error(ctx, 403, "JS_UPG_SMS_INVALID", 0, "%s",
			       JS_TXT_UPG_SMS);
		return;
	}
	json_object_del(st->sms, phone); /* single use */
	if (pt_new_id("SZU", id, sizeof(id)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return;
	}
	/* Address optional: a silver key needs none ("银色Ukey不需要填写"). */
	json_object_set_new(st->orders, id,
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "uscc", uscc,
				      "unit_name", ctx->session->unit_name,
				      "ss_number", ss, "operator_id",
				      pt_body_str(ctx, "operator_id"), "address",
				      pt_body_str(ctx, "address"), "state", "open"));
	pt_reply_ok(ctx, 201, json_pack("{s:s}", "order", id));
}

/*
 * Confirming: the assistant generates the new key pair on the token and
 * sends its public_key; a token that cannot hold the new algorithm (a
 * blue key) refuses the generation, and the assistant sends what the
 * token answered instead (token_error). Exactly one of the two.
 */
static const pt_field confirm_fields[] = {
	{ "order", PT_FIELD_STRING, 0 },
	{ "public_key", PT_FIELD_STRING, 1 },
	{ "token_error", PT_FIELD_STRING, 1 },
};

/*
 * JS-E11: a blue key is replaced, not upgraded. The new silver key is
 * mailed, so the order must carry an address ("需要邮寄"); its PIN is made
 * from the operator ID written on the order.
 */
static void upg_blue_key(pt_ctx *ctx, json_t *order)
{
	const char *address = json_string_value(json_object_get(order, "address"));
	char id[32];

	if (!address || !*address) {
		pt_reply_error(ctx, 409, "JS_UPG_ADDRESS_REQUIRED", 0, "%s",
			       JS_TXT_UPG_ADDRESS);
		return;
	}
	if (pt_new_id("SZR", id, sizeof(id)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return;
	}
	json_object_set_new(order, "state", json_string("replaced"));
	json_object_set_new(order, "replacement", json_string(id));
	pt_reply_error_x(ctx, 403, "JS_UPG_BLUE_KEY",
			 json_pack("{s:{s:s, s:s, s:O, s:s}}", "replacement", "id", id,
				   "mail_to", address, "operator_id",
				   json_object_get(order, "operator_id"), "notice",
				   JS_TXT_NEW_UKEY_PIN),
			 "%s", JS_TXT_UPG_BLUE);
}

static void h_upg_confirm(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	json_t *order = json_object_get(st->orders, pt_body_str(ctx, "order"));
	char serial[80], *b64 = NULL;
	EVP_PKEY *pub = NULL;

	if (!order || strcmp(json_string_value(json_object_get(order, "uscc")),
			     ctx->session->uscc) != 0) {
		pt_reply_error(ctx, 404, "JS_UPG_NO_ORDER", 0, "%s",
			       JS_TXT_UPG_NO_ORDER);
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(order, "state")), "open") != 0) {
		pt_reply_error(ctx, 409, "JS_UPG_ORDER_DONE", 0, "%s",
			       JS_TXT_UPG_DONE);
		goto out;
	}
	if (!json_object_get(ctx->body, "public_key") ==
	    !json_object_get(ctx->body, "token_error")) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "give exactly one of 'public_key' and 'token_error'");
		goto out;
	}
	if (json_object_get(ctx->body, "token_error")) {
		if (pt_text_field(ctx, "token_error", 1, 512))
			upg_blue_key(ctx, order);
		goto out;
	}
	if (pt_pubkey_from_base64(pt_body_str(ctx, "public_key"), &pub) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'public_key' is not base64 of a DER SubjectPublicKeyInfo");
		goto out;
	}
	/* The new certificate comes from the current Suzhou CA. */
	if (pt_issue_unit_cert(ctx, "suzhou",
			       json_string_value(json_object_get(order, "unit_name")),
			       ctx->session->uscc, pub, &b64, serial,
			       sizeof(serial)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "issuing: %s",
			       tr_error_last());
		goto out;
	}
	/*
	 * The upgrade binds the order's number, as typed, to the new
	 * certificate (CA对照): a wrong one shows at the HR hall (JS-E14).
	 */
	json_object_set_new(st->mappings, ctx->session->uscc,
			    json_pack("{s:O, s:s}", "ss_number",
				      json_object_get(order, "ss_number"),
				      "serial", serial));
	json_object_set_new(order, "state", json_string("done"));
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:s, s:s}", "certificate", b64,
					"serial", serial, "message",
					JS_TXT_UPG_OK));
out:
	free(b64);
	EVP_PKEY_free(pub);
}

/* ---- admin (the HR department and the CA counter) ---- */

static const pt_field hr_unit_fields[] = {
	{ "ss_number", PT_FIELD_STRING, 0 },
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
};

static void h_admin_hr_units(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *ss = pt_body_str(ctx, "ss_number");

	if (!pt_digits(ss, 1, 32)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'ss_number' must be 1 to 32 digits");
		return;
	}
	if (!pt_text_field(ctx, "unit_name", 1, SZ_NAME_MAX) ||
	    !pt_text_field(ctx, "uscc", 1, 64))
		return;
	json_object_set_new(st->hr_units, ss,
			    json_pack("{s:s, s:s}", "unit_name",
				      pt_body_str(ctx, "unit_name"), "uscc",
				      pt_body_str(ctx, "uscc")));
	pt_reply_ok(ctx, 200, NULL);
}

static const pt_field mapping_fields[] = {
	{ "uscc", PT_FIELD_STRING, 1 },
	{ "certificate", PT_FIELD_STRING, 1 },
	{ "ss_number", PT_FIELD_STRING, 0 },
};

/*
 * CA对照. With certificate: the CA counter binds the social-security
 * number to that certificate (checks 1-3 first), which is what JS-E02's
 * and JS-E13's remedies do for a renewed or re-issued one. With uscc: a
 * unit-level entry for any certificate of the USCC (test set-up).
 * Either replaces the unit's entry.
 */
static void h_admin_mappings(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	const char *ss = pt_body_str(ctx, "ss_number");
	char name[256], uscc[65], serial[80] = "";
	json_t *entry;
	X509 *cert = NULL;
	int status;

	if (!json_object_get(ctx->body, "uscc") ==
	    !json_object_get(ctx->body, "certificate")) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "give exactly one of 'uscc' and 'certificate'");
		return;
	}
	if (json_object_get(ctx->body, "uscc") &&
	    !pt_text_field(ctx, "uscc", 1, 64))
		return;
	if (json_object_get(ctx->body, "certificate") &&
	    pt_cert_from_base64(pt_body_str(ctx, "certificate"), &cert) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "field 'certificate' is not base64 of a DER X.509 certificate");
		return;
	}
	if (!pt_digits(ss, 1, 32)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'ss_number' must be 1 to 32 digits");
		goto out;
	}
	if (cert) {
		if (pt_cert_check(ctx, cert, &status) != 0) {
			pt_reply_ca_failure(ctx, status);
			goto out;
		}
		if (pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc)) < 0 ||
		    !*uscc) {
			pt_reply_error(ctx, 400, "CERT_INVALID", 0,
				       "the certificate names no USCC");
			goto out;
		}
		pt_cert_serial_hex(cert, serial, sizeof(serial));
	} else {
		snprintf(uscc, sizeof(uscc), "%s", pt_body_str(ctx, "uscc"));
	}
	entry = *serial ? json_pack("{s:s, s:s}", "ss_number", ss, "serial", serial) :
		json_pack("{s:s}", "ss_number", ss);
	json_object_set_new(st->mappings, uscc, entry);
	entry = json_deep_copy(entry);
	json_object_set_new(entry, "uscc", json_string(uscc));
	pt_reply_ok(ctx, 200, json_pack("{s:o}", "mapping", entry));
out:
	X509_free(cert);
}

static void h_admin_sms(pt_ctx *ctx)
{
	sz_state *st = ctx->state;
	json_t *sms = json_object_get(st->sms, pt_body_str(ctx, "phone"));

	if (!sms) {
		pt_reply_error(ctx, 404, "NO_SMS", 0,
			       "no SMS code was sent to this phone");
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:O}", "sms_code",
					json_object_get(sms, "code")));
}

static int sz_state_new(void **out)
{
	sz_state *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st)
		return tr_error_set(TR_ENOMEM, "suzhou state");
	st->hr_units = json_object();
	st->mappings = json_object();
	st->sms = json_object();
	st->orders = json_object();
	if (!st->hr_units || !st->mappings || !st->sms || !st->orders)
		return tr_error_set(TR_ENOMEM, "suzhou state");
	return js_staff_new(&st->staff);
}

static void sz_state_reset(void *state)
{
	sz_state *st = state;
	size_t i;

	for (i = 0; i < st->count; i++) {
		free(st->units[i].name);
		free(st->units[i].operator_name);
	}
	st->count = 0;
	st->receipts = 0;
	st->hr_receipts = 0;
	json_object_clear(st->hr_units);
	json_object_clear(st->mappings);
	json_object_clear(st->sms);
	json_object_clear(st->orders);
	js_staff_reset(st->staff);
}

static void sz_state_free(void *state)
{
	sz_state *st = state;

	if (!st)
		return;
	sz_state_reset(st);
	free(st->units);
	json_decref(st->hr_units);
	json_decref(st->mappings);
	json_decref(st->sms);
	json_decref(st->orders);
	js_staff_free(st->staff);
	free(st);
}

/* SZ-E09: what to bring to the counter, the seed's sentence (seed 000). */
#define SZ_PIN_LOCKED \
	"证书密码已锁定，如果PIN码忘记了需要去CA服务网点柜台重置，请带好CA，经办人身份证，营业执照复印件加盖公章前往办理。"
#define SZ_NO_TOKEN "未检测到CA证书，请插入单位CA USB Key"
#define SZ_DRIVER_MISSING "证书列表为空，请安装苏州CA证书助手（证书驱动）"
/*
 * JS-E01: the HR hall's page is the Jiangsu HR certificate assistant's, whose
 * remedy is the 华申（苏州） driver from its settings (seed 001).
 */
#define JS_DRIVER_MISSING \
	"CA证书插入电脑，无法识别或者证书列表为空：请打开江苏人社证书助手，点击右上角“系统设置”，选择“华申（苏州）”驱动进行安装，安装后重启电脑，尝试登录！"
#define SZ_READ_FAILED "获取信息失败"
#define SZ_ASSISTANT_EXCEPTION "调用CA出现异常"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const pt_site_def sz_sites[] = {
	{ "reg",
	  { "证书密码错误", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  reg_login_rules, NULL, NULL, NULL, 0 },
	/* SZ-E03: the hall's login button needs a recent assistant. */
	{ "hall",
	  { "密码校验失败", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  hall_login_rules, SZ_MIN_ASSISTANT, "SZ_ASSISTANT_OUTDATED",
	  SZ_TXT_ASSISTANT_OLD, 0 },
	{ "hr",
	  { "密码校验失败", SZ_PIN_LOCKED, SZ_NO_TOKEN, JS_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  hr_login_rules, NULL, NULL, NULL, 0 },
	/* The online upgrade site takes old and current certificates. */
	{ "upg",
	  { "证书密码错误", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  NULL, NULL, NULL, NULL, 0 },
};

static const pt_route sz_routes[] = {
	{ "POST", "/reg/units", "reg", units_fields, 5, h_reg_units },
	{ "POST", "/hall/declarations", "hall", declaration_fields, 3,
	  h_hall_declarations },
	{ "POST", "/hr/declarations", "hr", declaration_fields, 3,
	  h_hr_declarations },
	{ "POST", "/hall/operator", "hall", operator_fields,
	  N(operator_fields), h_hall_operator },
	{ "POST", "/upg/sms", "upg", sms_fields, N(sms_fields), h_upg_sms },
	{ "POST", "/upg/orders", "upg", order_fields, N(order_fields),
	  h_upg_orders },
	{ "POST", "/upg/orders/confirm", "upg", confirm_fields,
	  N(confirm_fields), h_upg_confirm },
	{ "POST", "/admin/suzhou/hr-units", NULL, hr_unit_fields,
	  N(hr_unit_fields), h_admin_hr_units },
	{ "POST", "/admin/suzhou/ca-mappings", NULL, mapping_fields,
	  N(mapping_fields), h_admin_mappings },
	{ "POST", "/admin/suzhou/sms", NULL, sms_fields, N(sms_fields),
	  h_admin_sms },
	/* The HR hall's staff changes (portal_suzhou_staff.h). */
	{ "POST", "/hr/staff/collect", "hr", declaration_fields, 3,
	  js_staff_h_collect },
	{ "POST", "/hr/staff/enrol", "hr", declaration_fields, 3,
	  js_staff_h_enrol },
	{ "POST", "/hr/staff/stop", "hr", declaration_fields, 3,
	  js_staff_h_stop },
	{ "POST", "/hr/staff/rollback", "hr", declaration_fields, 3,
	  js_staff_h_rollback },
	{ "POST", "/hr/staff/pre-register", "hr", declaration_fields, 3,
	  js_staff_h_pre_register },
	{ "POST", "/hr/staff/retire", "hr", declaration_fields, 3,
	  js_staff_h_retire },
	{ "POST", "/hr/staff/transfer-in", "hr", declaration_fields, 3,
	  js_staff_h_transfer_in },
	{ "POST", "/hr/staff/query", "hr", js_staff_query_fields,
	  JS_STAFF_QUERY_NFIELDS, js_staff_h_query },
	{ "POST", "/admin/suzhou/persons", NULL, js_staff_person_fields,
	  JS_STAFF_PERSON_NFIELDS, js_staff_h_admin_person },
	{ "POST", "/admin/suzhou/persons/update", NULL, js_staff_update_fields,
	  JS_STAFF_UPDATE_NFIELDS, js_staff_h_admin_person_update },
	{ "POST", "/admin/suzhou/staff-units", NULL, js_staff_unit_fields,
	  JS_STAFF_UNIT_NFIELDS, js_staff_h_admin_unit },
	{ "GET", "/admin/suzhou/dates", NULL, NULL, 0, js_staff_h_admin_dates },
};

const pt_portal_def pt_suzhou_def = {
	.name = "suzhou",
	.sites = sz_sites,
	.nsites = sizeof(sz_sites) / sizeof(sz_sites[0]),
	.routes = sz_routes,
	.nroutes = sizeof(sz_routes) / sizeof(sz_routes[0]),
	.state_new = sz_state_new,
	.state_reset = sz_state_reset,
	.state_free = sz_state_free,
};
