/*
 * Suzhou (failure-paths.md section 1): the national healthcare-security CA
 * registration site (reg), the Jiangsu healthcare-security hall (hall) and
 * the Jiangsu HR & social-security hall (hr). The sites share one set of
 * registered units.
 */
#include "portal_def.h"

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
} sz_state;

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

static int phone_valid(const char *s)
{
	size_t i;

	if (strlen(s) != 11 || s[0] != '1')
		return 0;
	for (i = 0; i < 11; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * The hall knows a certificate when a registration has its USCC and its
 * unit name: a certificate issued with old unit data (SZ-E06) reads as
 * unregistered until the CA issues one with the current data.
 */
static int hall_login_rules(pt_ctx *ctx, const pt_login *login)
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
	if (!fx_resident_id_valid(op_id)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'operator_id' is not a valid resident ID number");
		return;
	}
	if (!phone_valid(phone)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'operator_phone' must be 11 digits starting with 1");
		return;
	}
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

static int sz_state_new(void **out)
{
	sz_state *st = calloc(1, sizeof(*st));

	*out = st;
	return st ? 0 : tr_error_set(TR_ENOMEM, "suzhou state");
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
}

static void sz_state_free(void *state)
{
	sz_state *st = state;

	if (!st)
		return;
	sz_state_reset(st);
	free(st->units);
	free(st);
}

#define SZ_PIN_LOCKED "证书密码已锁定，请携带CA证书、经办人身份证前往CA服务网点重置"
#define SZ_NO_TOKEN "未检测到CA证书，请插入单位CA USB Key"
#define SZ_DRIVER_MISSING "证书列表为空，请安装苏州CA证书助手（证书驱动）"
#define SZ_READ_FAILED "获取信息失败"
#define SZ_ASSISTANT_EXCEPTION "调用CA出现异常"

static const pt_site_def sz_sites[] = {
	{ "reg",
	  { "证书密码错误", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  NULL },
	{ "hall",
	  { "密码校验失败", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  hall_login_rules },
	/* The HR hall's own rules (JS-*) come with the next issue. */
	{ "hr",
	  { "密码校验失败", SZ_PIN_LOCKED, SZ_NO_TOKEN, SZ_DRIVER_MISSING,
	    SZ_READ_FAILED, SZ_ASSISTANT_EXCEPTION },
	  hall_login_rules },
};

static const pt_route sz_routes[] = {
	{ "POST", "/reg/units", "reg", units_fields, 5, h_reg_units },
	{ "POST", "/hall/declarations", "hall", declaration_fields, 3,
	  h_hall_declarations },
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
