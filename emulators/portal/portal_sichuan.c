/*
 * Sichuan (failure-paths.md section 3): the Sichuan HR & social-security
 * public-service platform (sso: natural-person and legal-person
 * registration, certificate binding, "法人登录" -> "四川CA登录") and the
 * Sichuan CA self-service hall (wt: certificate update while valid).
 */
#include "portal_def.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Catalog texts (seed 003). */
#define SC_TXT_PLUGIN "插件异常"
/* The seed has a no-break space (U+00A0) before "V3": kept byte for byte. */
#define SC_TXT_FTSCCACTRL "数字证书安全控件-ftsccactrl\u00A0V3:未安装"
#define SC_MIN_ASSISTANT "5.0.22.606"

/* The mock's own texts (API.md). */
#define SC_TXT_USER_TAKEN "用户名已存在"
#define SC_TXT_PERSON_EXISTS "该身份证号已注册自然人用户"
#define SC_TXT_BAD_PASSWORD "用户名或密码错误"
#define SC_TXT_PERSON_REQUIRED "请使用自然人用户登录后办理"
#define SC_TXT_LEGAL_EXISTS "该单位已注册法人用户"
#define SC_TXT_HAS_UNIT "该自然人用户已关联单位"
#define SC_TXT_NO_LEGAL "请先进行法人用户注册"
#define SC_TXT_MISMATCH "证书信息与单位信息不匹配，无法绑定"
#define SC_TXT_NOT_REGISTERED \
	"该单位未注册，请先完成自然人用户注册和法人用户注册"
#define SC_TXT_NOT_BOUND "该单位未绑定证书，请先进行证书绑定"
#define SC_TXT_CA_REQUIRED "请使用四川CA登录后办理业务"
#define SC_TXT_EXPIRED \
	"证书已过期，不能办理有效期内更新，请按证书新办流程重新申请"
#define SC_TXT_PENDING "证书更新申请正在审核中，请收到审核通过短信后再更新"
#define SC_TXT_NO_APP "未查询到证书更新申请"
#define SC_TXT_DONE "该证书更新申请已完成"
#define SC_TXT_UPDATED "证书更新成功"
#define SC_TXT_ISSUANCE_FILED \
	"证书新办申请已提交，请收到业务完成的通知短信后在证书助手（i信）完成证书更新"
#define SC_TXT_BAD_METHOD "请选择办理方式：在线办理、寄送办理或窗口办理"

typedef struct sc_state {
	json_t *persons;  /* username -> {"password","name","id_number","phone","uscc"?} */
	json_t *legal;    /* uscc -> {"unit_name","operator","bound"} */
	json_t *apps;     /* id -> {"uscc","unit_name","state"} */
	unsigned long receipts;
} sc_state;

static void h_env_check(pt_ctx *ctx)
{
	/* SC-W01: the check always warns; nothing is refused for it. */
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:[s], s:[]}", "assistant_min",
					SC_MIN_ASSISTANT, "warnings",
					SC_TXT_FTSCCACTRL, "errors"));
}

static const pt_field person_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
	{ "name", PT_FIELD_STRING, 0 },
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "phone", PT_FIELD_STRING, 0 },
};

static void h_persons(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");
	const char *id = pt_body_str(ctx, "id_number");
	const char *key;
	json_t *p;

	if (!pt_text_field(ctx, "username", 4, 32) ||
	    !pt_text_field(ctx, "password", 8, 64) ||
	    !pt_text_field(ctx, "name", 1, 64))
		return;
	if (!pt_resident_id_field(ctx, "id_number"))
		return;
	if (!pt_phone_field(ctx, "phone"))
		return;
	if (json_object_get(st->persons, user)) {
		pt_reply_error(ctx, 409, "SC_USERNAME_TAKEN", 0, "%s",
			       SC_TXT_USER_TAKEN);
		return;
	}
	json_object_foreach(st->persons, key, p) {
		if (!strcmp(json_string_value(json_object_get(p, "id_number")), id)) {
			pt_reply_error(ctx, 409, "SC_PERSON_EXISTS", 0, "%s",
				       SC_TXT_PERSON_EXISTS);
			return;
		}
	}
	json_object_set_new(st->persons, user,
			    json_pack("{s:s, s:s, s:s, s:s}", "password",
				      pt_body_str(ctx, "password"), "name",
				      pt_body_str(ctx, "name"), "id_number", id,
				      "phone", pt_body_str(ctx, "phone")));
	pt_reply_ok(ctx, 201, json_pack("{s:s}", "username", user));
}

static const pt_field pwlogin_fields[] = {
	{ "username", PT_FIELD_STRING, 0 },
	{ "password", PT_FIELD_STRING, 0 },
};

static void h_pwlogin(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	const char *user = pt_body_str(ctx, "username");
	json_t *p = json_object_get(st->persons, user);
	const pt_session *s;
	int err;

	if (!p || strcmp(json_string_value(json_object_get(p, "password")),
			 pt_body_str(ctx, "password")) != 0) {
		pt_reply_error(ctx, 401, "SC_BAD_PASSWORD", 0, "%s",
			       SC_TXT_BAD_PASSWORD);
		return;
	}
	if ((err = pt_session_open(ctx, "sso", NULL, "", "", user, &s)) < 0) {
		pt_reply_session_error(ctx, err);
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s}", "session", s->id,
					"account", user));
}

/* The natural person of a password session, else replies. */
static json_t *session_person(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	json_t *p = ctx->session->account[0]
		? json_object_get(st->persons, ctx->session->account) : NULL;

	if (!p)
		pt_reply_error(ctx, 403, "SC_PERSON_REQUIRED", 0, "%s",
			       SC_TXT_PERSON_REQUIRED);
	return p;
}

static const pt_field legal_fields[] = {
	{ "unit_name", PT_FIELD_STRING, 0 },
	{ "uscc", PT_FIELD_STRING, 0 },
};

/* The operator (this natural person) is linked with the unit. */
static void h_legal_persons(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	const char *uscc = pt_body_str(ctx, "uscc");
	json_t *person;

	if (!pt_text_field(ctx, "unit_name", 1, 200))
		return;
	if (!fx_uscc_valid(uscc)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'uscc' is not a valid unified social credit code");
		return;
	}
	if (!(person = session_person(ctx)))
		return;
	/* An unbound registration may be corrected (SC-E04's remedy). */
	if (json_object_get(person, "uscc")) {
		const char *old = json_string_value(json_object_get(person, "uscc"));

		if (json_is_true(json_object_get(json_object_get(st->legal, old),
						 "bound"))) {
			pt_reply_error(ctx, 409, "SC_PERSON_HAS_UNIT", 0, "%s",
				       SC_TXT_HAS_UNIT);
			return;
		}
		json_object_del(st->legal, old);
		json_object_del(person, "uscc");
	}
	if (json_object_get(st->legal, uscc)) {
		pt_reply_error(ctx, 409, "SC_LEGAL_EXISTS", 0, "%s",
			       SC_TXT_LEGAL_EXISTS);
		return;
	}
	json_object_set_new(st->legal, uscc,
			    json_pack("{s:s, s:s, s:b}", "unit_name",
				      pt_body_str(ctx, "unit_name"), "operator",
				      ctx->session->account, "bound", 0));
	json_object_set_new(person, "uscc", json_string(uscc));
	pt_reply_ok(ctx, 201, json_pack("{s:{s:s, s:s}}", "unit", "name",
					pt_body_str(ctx, "unit_name"), "uscc",
					uscc));
}

static const pt_field binding_fields[] = {
	{ "certificate", PT_FIELD_STRING, 0 },
};

/* SC-E04: the certificate's unit must be the legal person's unit. */
static void h_cert_bindings(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	json_t *person, *legal;
	char name[256], uscc[64];
	X509 *cert = NULL;
	int status;

	if (pt_cert_from_base64(pt_body_str(ctx, "certificate"), &cert) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "certificate is not base64 of a DER X.509 certificate");
		goto out;
	}
	if (pt_cert_check(ctx, cert, &status) < 0) {
		pt_reply_ca_failure(ctx, status);
		goto out;
	}
	if (!(person = session_person(ctx)))
		goto out;
	legal = json_object_get(st->legal,
				json_string_value(json_object_get(person, "uscc")) ?
				json_string_value(json_object_get(person, "uscc")) : "");
	if (!legal) {
		pt_reply_error(ctx, 409, "SC_NO_LEGAL_PERSON", 0, "%s",
			       SC_TXT_NO_LEGAL);
		goto out;
	}
	pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
	if (strcmp(uscc, json_string_value(json_object_get(person, "uscc"))) ||
	    strcmp(name, json_string_value(json_object_get(legal, "unit_name")))) {
		pt_reply_error(ctx, 403, "SC_UNIT_MISMATCH", 0, "%s",
			       SC_TXT_MISMATCH);
		goto out;
	}
	json_object_set_new(legal, "bound", json_true());
	pt_reply_ok(ctx, 201, json_pack("{s:{s:s, s:s}}", "unit", "name", name,
					"uscc", uscc));
out:
	X509_free(cert);
}

/*
 * SC-E06: a unit logs in once its legal person is registered and its
 * certificate bound. The binding is the unit's (USCC): an updated or newly
 * issued certificate of the same unit logs in without binding again.
 */
static int sso_login_rules(pt_ctx *ctx, pt_login *login)
{
	sc_state *st = ctx->state;
	json_t *legal = json_object_get(st->legal, login->uscc);

	if (!legal) {
		pt_reply_error(ctx, 403, "SC_NOT_REGISTERED", 0, "%s",
			       SC_TXT_NOT_REGISTERED);
		return 1;
	}
	if (!json_is_true(json_object_get(legal, "bound"))) {
		pt_reply_error(ctx, 403, "SC_NOT_BOUND", 0, "%s", SC_TXT_NOT_BOUND);
		return 1;
	}
	return 0;
}

static void h_declarations(pt_ctx *ctx)
{
	sc_state *st = ctx->state;

	pt_signed_submission(ctx, "SC", &st->receipts, "SC_CA_REQUIRED",
			     SC_TXT_CA_REQUIRED);
}

/* ---- certificate update while valid (site wt) ---- */

static int session_expired(pt_ctx *ctx)
{
	time_t now = (time_t)ctx->now;

	return X509_cmp_time(X509_get0_notAfter(ctx->session->cert), &now) < 0;
}

/*
 * Files an application of the session's unit, kind "update" (in validity)
 * or "issuance" (SC-E05's new issuance, with its way): 201 with its id.
 */
static void file_application(pt_ctx *ctx, const char *kind, const char *method)
{
	sc_state *st = ctx->state;
	json_t *app, *answer;
	char id[32];

	if (pt_new_id(method ? "SCN" : "SCU", id, sizeof(id)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "random");
		return;
	}
	app = json_pack("{s:s, s:s, s:s, s:s}", "uscc", ctx->session->uscc, "unit_name",
			ctx->session->unit_name, "state", "pending", "kind", kind);
	answer = json_pack("{s:s, s:s}", "application", id, "state", "pending");
	if (method) {
		json_object_set_new(app, "method", json_string(method));
		json_object_set_new(answer, "method", json_string(method));
		json_object_set_new(answer, "message", json_string(SC_TXT_ISSUANCE_FILED));
	}
	json_object_set_new(st->apps, id, app);
	pt_reply_ok(ctx, 201, answer);
}

static void h_updates(pt_ctx *ctx)
{
	/* SC-E05: an expired certificate needs a new issuance. */
	if (session_expired(ctx)) {
		pt_reply_error(ctx, 403, "SC_UPDATE_EXPIRED", 0, "%s",
			       SC_TXT_EXPIRED);
		return;
	}
	file_application(ctx, "update", NULL);
}

/*
 * SC-E05's remedy, seed 003: "过期证书更新申请参见证书新办《办理方式列表》":
 * an expired certificate is renewed through the new-issuance application
 * (one of the three ways of the list); once it is done, "用户在证书助手（i信）
 * 完成证书更新": the same download as an update, allowed for the expired
 * certificate the application was filed with.
 */
static const char *const issuance_methods[] = { "在线办理", "寄送办理", "窗口办理" };

static const pt_field issuance_fields[] = {
	{ "method", PT_FIELD_STRING, 0 },
};

static void h_issuances(pt_ctx *ctx)
{
	const char *method = pt_body_str(ctx, "method");

	for (size_t i = 0; i < sizeof(issuance_methods) / sizeof(issuance_methods[0]); i++)
		if (!strcmp(method, issuance_methods[i])) {
			file_application(ctx, "issuance", issuance_methods[i]);
			return;
		}
	pt_reply_error(ctx, 400, "SC_BAD_METHOD", 0, "%s", SC_TXT_BAD_METHOD);
}

static const pt_field download_fields[] = {
	{ "application", PT_FIELD_STRING, 0 },
	{ "public_key", PT_FIELD_STRING, 0 },
};

static void h_update_download(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	json_t *app = json_object_get(st->apps, pt_body_str(ctx, "application"));
	const char *state, *kind;
	char serial[80], *b64 = NULL;
	EVP_PKEY *pub = NULL;

	if (!app || strcmp(json_string_value(json_object_get(app, "uscc")),
			   ctx->session->uscc) != 0) {
		pt_reply_error(ctx, 404, "SC_NO_APPLICATION", 0, "%s", SC_TXT_NO_APP);
		goto out;
	}
	state = json_string_value(json_object_get(app, "state"));
	if (!strcmp(state, "pending")) {
		pt_reply_error(ctx, 409, "SC_UPDATE_PENDING", 0, "%s",
			       SC_TXT_PENDING);
		goto out;
	}
	if (!strcmp(state, "done")) {
		pt_reply_error(ctx, 409, "SC_UPDATE_DONE", 0, "%s", SC_TXT_DONE);
		goto out;
	}
	kind = json_string_value(json_object_get(app, "kind"));
	if (session_expired(ctx) && !(kind && !strcmp(kind, "issuance"))) {
		pt_reply_error(ctx, 403, "SC_UPDATE_EXPIRED", 0, "%s",
			       SC_TXT_EXPIRED);
		goto out;
	}
	if (pt_pubkey_from_base64(pt_body_str(ctx, "public_key"), &pub) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'public_key' is not base64 of a DER SubjectPublicKeyInfo");
		goto out;
	}
	if (pt_issue_unit_cert(ctx, "sichuan",
			       json_string_value(json_object_get(app, "unit_name")),
			       ctx->session->uscc, pub, &b64, serial,
			       sizeof(serial)) < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "issuing: %s",
			       tr_error_last());
		goto out;
	}
	json_object_set_new(app, "state", json_string("done"));
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:s, s:s}", "certificate", b64,
					"serial", serial, "message",
					SC_TXT_UPDATED));
out:
	free(b64);
	EVP_PKEY_free(pub);
}

static const pt_field approve_fields[] = {
	{ "application", PT_FIELD_STRING, 0 },
};

static void h_admin_approve(pt_ctx *ctx)
{
	sc_state *st = ctx->state;
	json_t *app = json_object_get(st->apps, pt_body_str(ctx, "application"));

	if (!app) {
		pt_reply_error(ctx, 404, "SC_NO_APPLICATION", 0, "%s", SC_TXT_NO_APP);
		return;
	}
	if (!strcmp(json_string_value(json_object_get(app, "state")), "pending"))
		json_object_set_new(app, "state", json_string("approved"));
	pt_reply_ok(ctx, 200, json_pack("{s:O}", "state",
					json_object_get(app, "state")));
}

static int sc_state_new(void **out)
{
	sc_state *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st || !(st->persons = json_object()) ||
	    !(st->legal = json_object()) || !(st->apps = json_object()))
		return tr_error_set(TR_ENOMEM, "sichuan state");
	return 0;
}

static void sc_state_reset(void *state)
{
	sc_state *st = state;

	json_object_clear(st->persons);
	json_object_clear(st->legal);
	json_object_clear(st->apps);
	st->receipts = 0;
}

static void sc_state_free(void *state)
{
	sc_state *st = state;

	if (!st)
		return;
	json_decref(st->persons);
	json_decref(st->legal);
	json_decref(st->apps);
	free(st);
}

#define SC_TEXTS                                                         \
	{ "证书密码错误",                                                \
	  "证书密码已锁定，请在i信-证书服务-解锁服务申请重置密码",         \
	  "未检测到CA证书UKey，请插入四川CA证书UKey",                      \
	  "未检测到证书助手i信，请安装最新版本i信",                        \
	  "读取证书信息失败",                                              \
	  SC_TXT_PLUGIN }

static const pt_site_def sc_sites[] = {
	{ "sso", SC_TEXTS, sso_login_rules, SC_MIN_ASSISTANT,
	  "SC_PLUGIN_ERROR", SC_TXT_PLUGIN, 0 },
	/* The update path sees expired certificates to refuse them itself. */
	{ "wt", SC_TEXTS, NULL, NULL, NULL, NULL, 1 },
};

static const pt_field decl_fields[] = {
	{ "document", PT_FIELD_STRING, 0 },
	{ "signature", PT_FIELD_STRING, 0 },
	{ "algorithm", PT_FIELD_STRING, 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const pt_route sc_routes[] = {
	{ "GET", "/sso/env-check", NULL, NULL, 0, h_env_check },
	{ "POST", "/sso/persons", NULL, person_fields, N(person_fields),
	  h_persons },
	{ "POST", "/sso/pwlogin", NULL, pwlogin_fields, N(pwlogin_fields),
	  h_pwlogin },
	{ "POST", "/sso/legal-persons", "sso", legal_fields, N(legal_fields),
	  h_legal_persons },
	{ "POST", "/sso/cert-bindings", "sso", binding_fields,
	  N(binding_fields), h_cert_bindings },
	{ "POST", "/sso/declarations", "sso", decl_fields, N(decl_fields),
	  h_declarations },
	{ "POST", "/wt/updates", "wt", NULL, 0, h_updates },
	{ "POST", "/wt/issuances", "wt", issuance_fields, N(issuance_fields),
	  h_issuances },
	{ "POST", "/wt/updates/download", "wt", download_fields,
	  N(download_fields), h_update_download },
	{ "POST", "/admin/sichuan/approve", NULL, approve_fields,
	  N(approve_fields), h_admin_approve },
};

const pt_portal_def pt_sichuan_def = {
	.name = "sichuan",
	.sites = sc_sites,
	.nsites = N(sc_sites),
	.routes = sc_routes,
	.nroutes = N(sc_routes),
	.state_new = sc_state_new,
	.state_reset = sc_state_reset,
	.state_free = sc_state_free,
};
