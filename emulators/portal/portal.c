#include "portal.h"

#include "portal_challenge.h"
#include "portal_clock.h"
#include "portal_def.h"

#include "common/error.h"
#include "common/utf8.h"
#include "common/fsutil.h"
#include "fixtures/pki.h"
#include "fixtures/provinces.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Per site: live ones are never evicted, one more answers 429. */
#define PT_MAX_CHALLENGES 4096
#define PT_MAX_SESSIONS 4096
#define PT_PATH_MAX 256

/*
 * The portals: the province registry's rows (fixtures/provinces.h says why
 * it is expanded here), each bound to its flows pt_<name>_def of
 * portal_<name>.c. A row without that file fails the link.
 */
#define FX_PROVINCE(id, ...) extern const pt_portal_def pt_##id##_def;
#include "fixtures/provinces.def"
#undef FX_PROVINCE
static const pt_portal_def *const portal_defs[] = {
#define FX_PROVINCE(id, ...) &pt_##id##_def,
#include "fixtures/provinces.def"
#undef FX_PROVINCE
};
static const char *const portal_names[] = {
#define FX_PROVINCE(id, ...) #id,
#include "fixtures/provinces.def"
#undef FX_PROVINCE
	NULL
};

#define NDEFS (sizeof(portal_defs) / sizeof(portal_defs[0]))

struct pt_portal {
	const pt_portal_def *def;
	int admin;
	pthread_mutex_t lock;
	pt_clock clock;
	pt_challenges *challenges;
	pt_sessions *sessions;
	pt_verifier *verifier;
	pt_verifier *legacy;  /* the registry's legacy_ca, NULL when none */
	char *pki_dir;
	void *state;
	pt_route *routes; /* generic routes, then the province's */
	size_t nroutes;
	char **paths;     /* the generic routes' paths (owned) */
};

/* ---- replies ---- */

static void set_body(pt_ctx *ctx, unsigned http, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	size_t len;

	json_decref(obj);
	free(ctx->resp->body);
	ctx->resp->body = NULL;
	if (!text) {
		/* Out of memory or a broken message: still one JSON object. */
		static const char fallback[] =
			"{\"ok\":false,\"code\":\"INTERNAL\",\"message\":\"reply\"}\n";
		ctx->resp->status = 500;
		ctx->resp->body = strdup(fallback);
		ctx->resp->body_len = ctx->resp->body ? sizeof(fallback) - 1 : 0;
		snprintf(ctx->resp->code, sizeof(ctx->resp->code), "INTERNAL");
		return;
	}
	/* A final newline keeps curl output readable. */
	len = strlen(text);
	ctx->resp->body = malloc(len + 2);
	if (ctx->resp->body) {
		memcpy(ctx->resp->body, text, len);
		ctx->resp->body[len++] = '\n';
		ctx->resp->body[len] = '\0';
		free(text);
	} else {
		ctx->resp->body = text;
	}
	ctx->resp->body_len = len;
	ctx->resp->status = http;
}

void pt_reply_json(pt_ctx *ctx, unsigned http, json_t *obj)
{
	set_body(ctx, http, obj);
}

void pt_reply_ok(pt_ctx *ctx, unsigned http, json_t *extra)
{
	json_t *obj = json_object();

	if (obj) {
		json_object_set_new(obj, "ok", json_true());
		if (extra)
			json_object_update(obj, extra);
	}
	json_decref(extra);
	ctx->resp->code[0] = '\0';
	set_body(ctx, http, obj);
}

/* An error answer: code, message and the extra fields (taken over). */
static void reply_error_v(pt_ctx *ctx, unsigned http, const char *code, json_t *extra,
			  const char *fmt, va_list ap)
{
	char msg[1024];
	size_t len;
	json_t *obj;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Truncation may cut a UTF-8 sequence: drop the partial tail. */
	len = strlen(msg);
	while (len && !tr_utf8_valid(msg, len))
		msg[--len] = '\0';
	obj = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "message", msg);
	if (obj && extra)
		json_object_update(obj, extra);
	json_decref(extra);
	snprintf(ctx->resp->code, sizeof(ctx->resp->code), "%s", code);
	set_body(ctx, http, obj);
}

void pt_reply_error(pt_ctx *ctx, unsigned http, const char *code, int status,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(ctx, http, code, status > 0 ? json_pack("{s:i}", "status", status) : NULL,
		      fmt, ap);
	va_end(ap);
}

void pt_reply_ca_failure(pt_ctx *ctx, int status)
{
	const pt_portal_def *def = ctx->portal->def;
	const char *code;
	size_t i;

	for (i = 0; i < def->nca_texts; i++) {
		const pt_ca_text *t = &def->ca_texts[i];

		if (t->status == status) {
			pt_reply_error_x(ctx, 403, t->code,
					 t->remedy ? json_pack("{s:s}", "remedy", t->remedy) : NULL,
					 "%s", t->message);
			return;
		}
	}

	switch (status) {
	case PT_STATUS_CHAIN: code = "CERT_CHAIN"; break;
	case PT_STATUS_EXPIRED: code = "CERT_EXPIRED"; break;
	case PT_STATUS_NOT_YET_VALID: code = "CERT_NOT_YET_VALID"; break;
	case PT_STATUS_REVOKED: code = "CERT_REVOKED"; break;
	default: code = "SIGNATURE_INVALID"; status = PT_STATUS_SIGNATURE; break;
	}
	pt_reply_error(ctx, 403, code, status, "CA验签结果失败，状态码：%d",
		       status);
}

void pt_reply_error_x(pt_ctx *ctx, unsigned http, const char *code,
		      json_t *extra, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(ctx, http, code, extra, fmt, ap);
	va_end(ap);
}

int pt_cert_check(pt_ctx *ctx, X509 *cert, int *status)
{
	return pt_verifier_check(ctx->portal->verifier, cert, ctx->now, status);
}

int pt_cert_revoked(pt_ctx *ctx, X509 *cert)
{
	return pt_verifier_revoked(ctx->portal->verifier, cert);
}

const char *pt_pki_dir(const pt_ctx *ctx)
{
	return ctx->portal->pki_dir;
}

int pt_session_open(pt_ctx *ctx, const char *site, X509 *cert,
		    const char *unit_name, const char *uscc,
		    const char *account, const pt_session **out)
{
	return pt_session_create_ex(ctx->portal->sessions, site, cert,
				    unit_name, uscc, account, ctx->now, out);
}

void pt_reply_session_error(pt_ctx *ctx, int err)
{
	if (err == PT_EFULL)
		pt_reply_error(ctx, 429, "TOO_MANY_SESSIONS", 0,
			       "%s; log out or try again later", tr_error_last());
	else
		pt_reply_error(ctx, 500, "INTERNAL", 0, "%s", tr_error_last());
}

void pt_session_end(pt_ctx *ctx)
{
	if (ctx->session)
		pt_session_remove(ctx->portal->sessions, ctx->session->id);
	ctx->session = NULL;
}

/* The next dotted part: its value, or -1 when it is not digits. */
static long version_part(const char **p)
{
	long v = 0;
	int digits = 0;

	while (**p >= '0' && **p <= '9') {
		if (v < 100000000)
			v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	if (!digits || (**p != '.' && **p != '\0'))
		return -1;
	if (**p == '.')
		(*p)++;
	return v;
}

static int version_valid(const char *s)
{
	if (!*s || s[strlen(s) - 1] == '.')
		return 0;
	while (*s)
		if (version_part(&s) < 0)
			return 0;
	return 1;
}

int pt_version_cmp(const char *a, const char *b)
{
	int va = version_valid(a), vb = version_valid(b);
	long x, y;

	if (!va || !vb)
		return va - vb;
	while (*a || *b) {
		x = *a ? version_part(&a) : 0;
		y = *b ? version_part(&b) : 0;
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

void pt_cst_day(int64_t t, int *mday, int *wday)
{
	time_t local = (time_t)(t + 8 * 3600);
	struct tm tm;

	gmtime_r(&local, &tm);
	*mday = tm.tm_mday;
	*wday = tm.tm_wday;
}

const char *pt_body_str(pt_ctx *ctx, const char *name)
{
	const char *s = json_string_value(json_object_get(ctx->body, name));

	return s ? s : "";
}

int pt_check_signature(pt_ctx *ctx, X509 *cert, const char *algorithm,
		       const void *data, size_t len, const char *signature_b64)
{
	unsigned char *sig = NULL;
	size_t sig_len;
	pt_sig_alg alg;
	int err;

	if (pt_sig_alg_parse(algorithm, &alg) < 0) {
		pt_reply_error(ctx, 400, "ALG_UNSUPPORTED", 0,
			       "algorithm must be ecdsa-sha256, rsa-pkcs1-sha256 or sm2-sm3");
		return TR_EINVAL;
	}
	if (pt_base64_decode(signature_b64, &sig, &sig_len) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'signature' is not base64");
		return TR_EINVAL;
	}
	err = pt_signature_verify(cert, alg, data, len, sig, sig_len);
	free(sig);
	if (err < 0) {
		pt_reply_ca_failure(ctx, PT_STATUS_SIGNATURE);
		return err;
	}
	return 0;
}

const char *pt_text_field(pt_ctx *ctx, const char *field, size_t min,
			  size_t max)
{
	const char *v = pt_body_str(ctx, field);
	size_t len = strlen(v);

	if (len < min || len > max) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field '%s' must be %zu to %zu bytes", field, min,
			       max);
		return NULL;
	}
	return v;
}

int pt_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return 0;
	return strspn(s, "0123456789") == n;
}

int pt_phone_valid(const char *s)
{
	size_t i;

	if (strlen(s) != 11 || s[0] != '1')
		return 0;
	for (i = 0; i < 11; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static const char *checked_field(pt_ctx *ctx, const char *field, int (*valid)(const char *),
				 const char *must)
{
	const char *v = pt_body_str(ctx, field);

	if (valid(v))
		return v;
	pt_reply_error(ctx, 400, "BAD_FIELD", 0, "field '%s' %s", field, must);
	return NULL;
}

const char *pt_phone_field(pt_ctx *ctx, const char *field)
{
	return checked_field(ctx, field, pt_phone_valid, "must be 11 digits starting with 1");
}

const char *pt_resident_id_field(pt_ctx *ctx, const char *field)
{
	return checked_field(ctx, field, fx_resident_id_valid,
			     "is not a valid resident ID number");
}

void pt_signed_submission(pt_ctx *ctx, const char *prefix,
			  unsigned long *counter, const char *no_cert_code,
			  const char *no_cert_msg)
{
	const char *doc = pt_body_str(ctx, "document");
	char receipt[64];
	time_t t = (time_t)(ctx->now + 8 * 3600);
	struct tm tm;

	if (!ctx->session->cert) {
		pt_reply_error(ctx, 403, no_cert_code, 0, "%s", no_cert_msg);
		return;
	}
	if (pt_check_signature(ctx, ctx->session->cert,
			       pt_body_str(ctx, "algorithm"), doc, strlen(doc),
			       pt_body_str(ctx, "signature")) != 0)
		return;
	gmtime_r(&t, &tm);
	snprintf(receipt, sizeof(receipt), "%s%04d%02d%02d%06lu", prefix,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, ++*counter);
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:b}", "receipt", receipt,
					"verified", 1));
}

int pt_pubkey_from_base64(const char *b64, EVP_PKEY **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len;
	int err = 0;

	*out = NULL;
	if (pt_base64_decode(b64, &der, &len) < 0 || len > 8192)
		err = TR_EINVAL;
	else if (p = der, !(*out = d2i_PUBKEY(NULL, &p, (long)len)) ||
		 p != der + len)
		err = TR_EINVAL;
	if (err) {
		EVP_PKEY_free(*out);
		*out = NULL;
		ERR_clear_error();
	}
	free(der);
	return err;
}

int pt_issue_unit_cert(pt_ctx *ctx, const char *ca, const char *unit_name,
		       const char *uscc, EVP_PKEY *pub, char **cert_b64,
		       char *serial, size_t serial_len)
{
	unsigned char *der = NULL;
	fx_pki *pki = NULL;
	X509 *cert = NULL;
	fx_unit unit;
	int err, len;

	*cert_b64 = NULL;
	memset(&unit, 0, sizeof(unit));
	snprintf(unit.province, sizeof(unit.province), "%s", ca);
	snprintf(unit.unit_name, sizeof(unit.unit_name), "%s", unit_name);
	snprintf(unit.uscc, sizeof(unit.uscc), "%s", uscc);
	if ((err = fx_pki_open(&pki, ctx->portal->pki_dir)) < 0)
		goto out;
	fx_pki_set_now(pki, (time_t)ctx->now);
	if ((err = fx_pki_issue_unit(pki, ca, pub, &unit, FX_VARIANT_VALID,
				     &cert)) < 0)
		goto out;
	if ((len = i2d_X509(cert, &der)) <= 0 ||
	    !(*cert_b64 = pt_base64_encode(der, (size_t)len))) {
		err = tr_error_set(TR_ENOMEM, "certificate encoding");
		goto out;
	}
	pt_cert_serial_hex(cert, serial, serial_len);
out:
	OPENSSL_free(der);
	X509_free(cert);
	fx_pki_free(pki);
	return err;
}

int pt_new_id(const char *prefix, char *buf, size_t len)
{
	char hex[13];
	int err;

	if ((err = pt_random_hex(hex, 6)) < 0)
		return err;
	snprintf(buf, len, "%s%s", prefix, hex);
	return 0;
}

/* ---- generic routes ---- */

static const char *const ui_keys[PT_UI_COUNT] = {
	"pin_incorrect", "pin_locked", "no_token", "driver_missing",
	"read_failed", "assistant_exception",
};

static void h_root(pt_ctx *ctx)
{
	const pt_portal_def *def = ctx->portal->def;
	json_t *sites = json_array();
	size_t i;

	for (i = 0; sites && i < def->nsites; i++)
		json_array_append_new(sites, json_string(def->sites[i].name));
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:o, s:i}", "portal", def->name,
					 "sites", sites, "api", 1));
}

static void h_ui(pt_ctx *ctx)
{
	json_t *texts = json_object();
	size_t i;

	for (i = 0; texts && i < PT_UI_COUNT; i++)
		json_object_set_new(texts, ui_keys[i],
				    json_string(ctx->site->texts[i]));
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:o}", "site", ctx->site->name,
					"texts", texts));
}

static void h_challenge(pt_ctx *ctx)
{
	char nonce[PT_NONCE_HEX + 1];
	const char *text;

	int err;

	err = pt_challenge_issue(ctx->portal->challenges, ctx->portal->def->name,
				 ctx->site->name, ctx->now, nonce, &text);
	if (err == PT_EFULL) {
		pt_reply_error(ctx, 429, "TOO_MANY_CHALLENGES", 0,
			       "%s; try again when they expire", tr_error_last());
		return;
	} else if (err < 0) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "%s", tr_error_last());
		return;
	}
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s, s:i}", "nonce", nonce,
					"challenge", text, "expires_in",
					PT_CHALLENGE_TTL));
}

static const pt_field login_fields[] = {
	{ "nonce", PT_FIELD_STRING, 0 },
	{ "certificate", PT_FIELD_STRING, 0 },
	{ "signature", PT_FIELD_STRING, 0 },
	{ "algorithm", PT_FIELD_STRING, 0 },
	{ "assistant", PT_FIELD_STRING, 0 },
};

/*
 * Format errors answer before the nonce is looked at, so a malformed
 * request leaves its challenge usable; from the nonce on, the challenge is
 * spent whatever the outcome.
 */
static void h_login(pt_ctx *ctx)
{
	pt_portal *p = ctx->portal;
	unsigned char *sig = NULL;
	size_t sig_len;
	char *text = NULL, name[256], uscc[64], serial[80];
	const pt_site_def *site = ctx->site;
	const pt_session *s;
	X509 *cert = NULL;
	pt_login login;
	pt_sig_alg alg;
	int err, status, expired = 0, legacy = 0;
	json_t *answer;

	memset(&login, 0, sizeof(login));

	if (pt_sig_alg_parse(pt_body_str(ctx, "algorithm"), &alg) < 0) {
		pt_reply_error(ctx, 400, "ALG_UNSUPPORTED", 0,
			       "algorithm must be ecdsa-sha256, rsa-pkcs1-sha256 or sm2-sm3");
		goto out;
	}
	if (pt_cert_from_base64(pt_body_str(ctx, "certificate"), &cert) < 0) {
		pt_reply_error(ctx, 400, "CERT_INVALID", 0,
			       "certificate is not base64 of a DER X.509 certificate");
		goto out;
	}
	if (pt_base64_decode(pt_body_str(ctx, "signature"), &sig, &sig_len) < 0) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'signature' is not base64");
		goto out;
	}
	/* The page refuses an old assistant before anything is signed. */
	if (site->min_assistant &&
	    pt_version_cmp(pt_body_str(ctx, "assistant"), site->min_assistant) < 0) {
		pt_reply_error(ctx, 403, site->assistant_code, 0,
			       site->assistant_message, site->min_assistant);
		goto out;
	}

	err = pt_challenge_take(p->challenges, ctx->site->name,
				pt_body_str(ctx, "nonce"), ctx->now, &text);
	if (err == TR_ETIMEDOUT) {
		pt_reply_error(ctx, 401, "CHALLENGE_EXPIRED", 0,
			       "challenge expired, ask for a new one");
		goto out;
	} else if (err < 0) {
		pt_reply_error(ctx, 401, "CHALLENGE_UNKNOWN", 0,
			       "challenge unknown or already used");
		goto out;
	}

	err = pt_verifier_check_ex(p->verifier, cert, ctx->now, site->expired_ok,
				   &status, &expired);
	/* A certificate of the old issuing system chains to the legacy CA. */
	if (err < 0 && status == PT_STATUS_CHAIN && p->legacy) {
		int st2;

		if (pt_verifier_check_ex(p->legacy, cert, ctx->now,
					 site->expired_ok, &st2, &expired) == 0) {
			err = 0;
			legacy = 1;
		} else if (st2 != PT_STATUS_CHAIN) {
			status = st2;
		}
	}
	if (err < 0) {
		pt_reply_ca_failure(ctx, status);
		goto out;
	}
	if (pt_signature_verify(cert, alg, text, strlen(text), sig, sig_len) < 0) {
		pt_reply_ca_failure(ctx, PT_STATUS_SIGNATURE);
		goto out;
	}

	pt_cert_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
	pt_cert_serial_hex(cert, serial, sizeof(serial));
	login.site = site->name;
	login.cert = cert;
	login.unit_name = name;
	login.uscc = uscc;
	login.serial = serial;
	login.assistant = pt_body_str(ctx, "assistant");
	login.alg = alg;
	login.legacy = legacy;
	login.expired = expired;
	if (site->login_rules && site->login_rules(ctx, &login) != 0)
		goto out;

	if ((err = pt_session_create_ex(p->sessions, site->name, cert, name,
					uscc, login.account, ctx->now, &s)) < 0) {
		pt_reply_session_error(ctx, err);
		goto out;
	}
	answer = json_pack("{s:s, s:{s:s, s:s}}", "session", s->id, "unit",
			   "name", name, "uscc", uscc);
	if (answer && login.extra)
		json_object_update(answer, login.extra);
	pt_reply_ok(ctx, 200, answer);
out:
	json_decref(login.extra);
	X509_free(cert);
	free(sig);
	free(text);
}

static void h_logout(pt_ctx *ctx)
{
	pt_session_remove(ctx->portal->sessions, ctx->session->id);
	pt_reply_ok(ctx, 200, NULL);
}

static void h_admin_reset(pt_ctx *ctx)
{
	pt_portal *p = ctx->portal;

	if (p->def->state_reset)
		p->def->state_reset(p->state);
	pt_sessions_clear(p->sessions);
	pt_challenges_clear(p->challenges);
	pt_clock_reset(&p->clock);
	pt_reply_ok(ctx, 200, NULL);
}

static void h_admin_clock_get(pt_ctx *ctx)
{
	pt_reply_ok(ctx, 200, json_pack("{s:I}", "now",
					(json_int_t)pt_clock_now(&ctx->portal->clock)));
}

static const pt_field clock_fields[] = {
	{ "now", PT_FIELD_INTEGER, 1 },
	{ "advance", PT_FIELD_INTEGER, 1 },
	{ "mday", PT_FIELD_INTEGER, 1 },
	{ "wday", PT_FIELD_INTEGER, 1 },
	{ "hour", PT_FIELD_INTEGER, 1 },
};

/*
 * The first moment after now that is hour:00:00 CST on a day whose day of
 * month is mday (or weekday wday; -1 = any): scenarios cannot compute
 * dates, yet JS-E12 and the Hunan working hours depend on them.
 */
static int64_t next_cst(int64_t now, int mday, int wday, int hour)
{
	int64_t day0 = (now + 8 * 3600) / 86400 * 86400 - 8 * 3600, t;
	int d, md, wd;

	for (d = 0; d < 70; d++) {
		t = day0 + (int64_t)d * 86400 + hour * 3600;
		pt_cst_day(t, &md, &wd);
		if (t > now && (mday < 0 || md == mday) && (wday < 0 || wd == wday))
			return t;
	}
	return now;
}

static void h_admin_clock_set(pt_ctx *ctx)
{
	json_t *now = json_object_get(ctx->body, "now");
	json_t *advance = json_object_get(ctx->body, "advance");
	json_t *mday = json_object_get(ctx->body, "mday");
	json_t *wday = json_object_get(ctx->body, "wday");
	json_t *hour = json_object_get(ctx->body, "hour");
	pt_clock *c = &ctx->portal->clock;
	json_int_t h = hour ? json_integer_value(hour) : 10;

	if (!!now + !!advance + !!mday + !!wday != 1) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "exactly one of 'now', 'advance', 'mday' and 'wday' is required");
		return;
	}
	/* Every value and every result in range: time_t arithmetic and the
	 * working-hours walk must never wrap. */
	if (now && (json_integer_value(now) < 0 ||
		    json_integer_value(now) > PT_CLOCK_MAX)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'now' must be 0 to %lld",
			       (long long)PT_CLOCK_MAX);
		return;
	}
	if (advance && (json_integer_value(advance) < -PT_CLOCK_MAX ||
			json_integer_value(advance) > PT_CLOCK_MAX ||
			ctx->now + json_integer_value(advance) < 0 ||
			ctx->now + json_integer_value(advance) > PT_CLOCK_MAX)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'advance' must keep the clock within 0 to %lld",
			       (long long)PT_CLOCK_MAX);
		return;
	}
	if ((mday && (json_integer_value(mday) < 1 || json_integer_value(mday) > 28)) ||
	    (wday && (json_integer_value(wday) < 0 || json_integer_value(wday) > 6)) ||
	    h < 0 || h > 23 || (hour && !mday && !wday)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "'mday' is 1-28, 'wday' 0-6 (0 = Sunday), 'hour' 0-23 and only with them");
		return;
	}
	if (now)
		pt_clock_set(c, json_integer_value(now));
	else if (advance)
		pt_clock_advance(c, json_integer_value(advance));
	else {
		int64_t t = next_cst(ctx->now,
				     mday ? (int)json_integer_value(mday) : -1,
				     wday ? (int)json_integer_value(wday) : -1,
				     (int)h);

		if (t > PT_CLOCK_MAX) {
			pt_reply_error(ctx, 400, "BAD_FIELD", 0,
				       "the clock would pass %lld",
				       (long long)PT_CLOCK_MAX);
			return;
		}
		pt_clock_set(c, t);
	}
	pt_reply_ok(ctx, 200, json_pack("{s:I}", "now",
					(json_int_t)pt_clock_now(c)));
}

static const pt_route admin_routes[] = {
	{ "POST", "/admin/reset", NULL, NULL, 0, h_admin_reset },
	{ "GET", "/admin/clock", NULL, NULL, 0, h_admin_clock_get },
	{ "POST", "/admin/clock", NULL, clock_fields, 5, h_admin_clock_set },
};

/* ---- dispatch ---- */

static const pt_route *find_route(pt_portal *p, const char *method,
				  const char *path, int *path_known)
{
	size_t i;

	*path_known = 0;
	for (i = 0; i < p->nroutes; i++) {
		if (strcmp(p->routes[i].path, path) != 0)
			continue;
		*path_known = 1;
		if (strcmp(p->routes[i].method, method) == 0)
			return &p->routes[i];
	}
	return NULL;
}

static const pt_site_def *site_of_path(const pt_portal_def *def,
				       const char *path)
{
	size_t i, n;

	for (i = 0; i < def->nsites; i++) {
		n = strlen(def->sites[i].name);
		if (path[0] == '/' && strncmp(path + 1, def->sites[i].name, n) == 0 &&
		    path[n + 1] == '/')
			return &def->sites[i];
	}
	return NULL;
}

/* RFC 9110 tchar. */
static int tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * The media type application/json, whose parameters (RFC 9110 8.3.1:
 * token "=" token / quoted-string) are well formed and whose charset, if
 * any (once), is utf-8: "charset=utf-8x" is another charset.
 */
static int content_type_ok(const char *ct)
{
	static const char media[] = "application/json";
	char value[32];
	int charsets = 0;
	const char *p;
	size_t n;

	if (!ct)
		return 0;
	p = skip_ows(ct);
	if (strncasecmp(p, media, sizeof(media) - 1) != 0)
		return 0;
	p = skip_ows(p + sizeof(media) - 1);
	while (*p) {
		int charset;

		if (*p++ != ';')
			return 0;
		p = skip_ows(p);
		if (*p == '\0' || *p == ';')
			continue; /* an empty parameter is allowed */
		for (n = 0; tchar(p[n]); n++)
			;
		if (n == 0 || p[n] != '=')
			return 0;
		charset = n == 7 && strncasecmp(p, "charset", 7) == 0;
		p += n + 1;
		n = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (n + 1 < sizeof(value))
					value[n] = *p;
				n++;
			}
			if (*p++ != '"')
				return 0;
		} else {
			for (; tchar(*p); p++, n++)
				if (n + 1 < sizeof(value))
					value[n] = *p;
			if (n == 0)
				return 0;
		}
		value[n < sizeof(value) ? n : sizeof(value) - 1] = '\0';
		if (charset && (charsets++ || n != 5 ||
				strcasecmp(value, "utf-8") != 0))
			return 0;
		p = skip_ows(p);
	}
	return 1;
}

/*
 * The session of "Bearer <token>" (RFC 6750 2.1: the scheme, one or more
 * spaces, a token68, optional trailing whitespace); NULL for anything
 * else, trailing words included.
 */
static const char *bearer(const char *auth, char *buf, size_t size)
{
	size_t n;

	if (!auth)
		return NULL;
	auth = skip_ows(auth);
	if (strncasecmp(auth, "Bearer ", 7) != 0)
		return NULL;
	auth += 7;
	while (*auth == ' ')
		auth++;
	n = strspn(auth, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-._~+/");
	while (auth[n] == '=')
		n++;
	if (n == 0 || n >= size || *skip_ows(auth + n) != '\0')
		return NULL;
	memcpy(buf, auth, n);
	buf[n] = '\0';
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The path of a request target (up to '?'), percent-decoded into out.
 * TR_EINVAL for a '%' not followed by two hex digits, or anything that
 * decodes to a NUL or control character (it would cut or forge the path);
 * TR_EIO when it does not fit (no route is that long).
 */
static int decode_path(const char *raw, char *out, size_t size)
{
	size_t n = 0;
	int hi, lo;
	unsigned char c;

	for (; *raw && *raw != '?'; raw++) {
		c = (unsigned char)*raw;
		if (c == '%') {
			if ((hi = hexval(raw[1])) < 0 || (lo = hexval(raw[2])) < 0)
				return TR_EINVAL;
			c = (unsigned char)(hi * 16 + lo);
			raw += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return TR_EINVAL;
		if (n + 1 >= size)
			return TR_EIO;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

size_t pt_escape(const char *in, char *buf, size_t size)
{
	size_t n = 0, k;
	unsigned char c;

	if (!size)
		return 0;
	for (; in && *in; in += k) {
		c = (unsigned char)*in;
		/* A whole, valid UTF-8 sequence passes as it is. */
		k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (k > 1 && strnlen(in, k) == k && tr_utf8_valid(in, k)) {
			if (n + k >= size)
				break;
			memcpy(buf + n, in, k);
			n += k;
			continue;
		}
		k = 1;
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			if (n + 5 > size)
				break;
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
		} else {
			if (n + 2 > size)
				break;
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
	return n;
}

/*
 * The order of the generic checks (API.md): path length and decoding,
 * admin, route, method, content type, size, session, UTF-8, JSON, fields;
 * then the route's own rules.
 */
static void dispatch(pt_ctx *ctx)
{
	pt_portal *p = ctx->portal;
	const pt_request *req = ctx->req;
	const char *raw_path = req->path ? req->path : "";
	const pt_route *r;
	char path[PT_PATH_MAX], token[128], method[64];
	int known, err, post;

	if (strcspn(raw_path, "?") > PT_URI_MAX) {
		pt_reply_error(ctx, 414, "URI_TOO_LONG", 0,
			       "path over %d bytes", PT_URI_MAX);
		return;
	}
	err = decode_path(raw_path, path, sizeof(path));
	if (err == TR_EINVAL) {
		pt_reply_error(ctx, 400, "BAD_PATH", 0,
			       "path has a bad percent-escape or a control character");
		return;
	} else if (err < 0) {
		pt_reply_error(ctx, 404, "NOT_FOUND", 0, "no such route");
		return;
	}

	if (!p->admin && (strcmp(path, "/admin") == 0 ||
			  strncmp(path, "/admin/", 7) == 0)) {
		pt_reply_error(ctx, 403, "ADMIN_DISABLED", 0,
			       "admin routes need --admin");
		return;
	}
	r = find_route(p, req->method ? req->method : "", path, &known);
	if (!r) {
		if (known) {
			/* Client bytes: escaped, or they would cut the message. */
			pt_escape(req->method, method, sizeof(method));
			pt_reply_error(ctx, 405, "METHOD_NOT_ALLOWED", 0,
				       "method %s not allowed on %s", method, path);
		} else
			pt_reply_error(ctx, 404, "NOT_FOUND", 0, "no such route");
		return;
	}
	ctx->site = site_of_path(p->def, path);

	post = strcmp(r->method, "POST") == 0;
	if (post && !content_type_ok(req->content_type)) {
		pt_reply_error(ctx, 415, "BAD_CONTENT_TYPE", 0,
			       "Content-Type must be application/json");
		return;
	}
	/* Before anything reads the body: server.c asks for a 413 with a
	 * stand-in body of the oversized length. */
	if (post && req->body_len > PT_BODY_MAX) {
		pt_reply_error(ctx, 413, "BODY_TOO_LARGE", 0,
			       "body over %d bytes", PT_BODY_MAX);
		return;
	}
	if (r->session_site) {
		const char *id = bearer(req->authorization, token, sizeof(token));

		ctx->session = id ? pt_session_find(p->sessions, id,
						    r->session_site, ctx->now)
				  : NULL;
		if (!ctx->session) {
			pt_reply_error(ctx, 401, "NO_SESSION", 0,
				       "no valid session of site %s, log in",
				       r->session_site);
			return;
		}
	}
	if (post) {
		if (!tr_utf8_valid(req->body, req->body_len)) {
			pt_reply_error(ctx, 400, "BAD_UTF8", 0,
				       "body is not valid UTF-8");
			return;
		}
		err = pt_json_parse_object(req->body, req->body_len, &ctx->body);
		if (err < 0) {
			pt_reply_error(ctx, 400, "BAD_JSON", 0, "%s%s",
				       err == TR_EPARSE ? "invalid JSON at " : "",
				       tr_error_last());
			return;
		}
		if (pt_fields_check(ctx->body, r->fields, r->nfields, NULL) < 0) {
			pt_reply_error(ctx, 400, "BAD_FIELD", 0, "%s",
				       tr_error_last());
			return;
		}
	}
	r->handler(ctx);
}

void pt_portal_handle(pt_portal *p, const pt_request *req, pt_response *resp)
{
	pt_ctx ctx;

	memset(resp, 0, sizeof(*resp));
	memset(&ctx, 0, sizeof(ctx));
	ctx.portal = p;
	ctx.req = req;
	ctx.resp = resp;
	ctx.state = p->state;

	pthread_mutex_lock(&p->lock);
	ctx.now = pt_clock_now(&p->clock);
	dispatch(&ctx);
	pthread_mutex_unlock(&p->lock);

	json_decref(ctx.body);
	if (!resp->body)
		pt_reply_error(&ctx, 500, "INTERNAL", 0, "no answer");
}

void pt_response_clear(pt_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* ---- construction ---- */

static const pt_portal_def *find_def(const char *name)
{
	size_t i;

	/* By the registry's name: the row and its flows are one index. */
	for (i = 0; i < NDEFS; i++)
		if (strcmp(portal_names[i], name) == 0)
			return portal_defs[i];
	return NULL;
}

int pt_portal_known(const char *name)
{
	return find_def(name) != NULL;
}

const char *const *pt_portal_names(void)
{
	return portal_names;
}

const char *pt_portal_name(const pt_portal *p)
{
	return p->def->name;
}

static const struct {
	const char *method;
	const char *action;
	int needs_session;
	const pt_field *fields;
	size_t nfields;
	void (*handler)(pt_ctx *ctx);
} site_actions[] = {
	{ "GET", "ui", 0, NULL, 0, h_ui },
	{ "POST", "challenge", 0, NULL, 0, h_challenge },
	{ "POST", "login", 0, login_fields, 5, h_login },
	{ "POST", "logout", 1, NULL, 0, h_logout },
};

#define NACTIONS (sizeof(site_actions) / sizeof(site_actions[0]))
#define NADMIN (sizeof(admin_routes) / sizeof(admin_routes[0]))

static int build_routes(pt_portal *p)
{
	const pt_portal_def *def = p->def;
	size_t total, npaths = def->nsites * NACTIONS, i, j, k = 0;
	char buf[PT_PATH_MAX];

	total = 1 + NADMIN + npaths + def->nroutes;
	p->routes = calloc(total, sizeof(*p->routes));
	p->paths = calloc(npaths, sizeof(*p->paths));
	if (!p->routes || !p->paths)
		return tr_error_set(TR_ENOMEM, "routes");

	p->routes[k++] = (pt_route){ "GET", "/", NULL, NULL, 0, h_root };
	for (i = 0; i < NADMIN; i++)
		p->routes[k++] = admin_routes[i];
	for (i = 0; i < def->nsites; i++) {
		for (j = 0; j < NACTIONS; j++) {
			char **path = &p->paths[i * NACTIONS + j];

			snprintf(buf, sizeof(buf), "/%s/%s", def->sites[i].name,
				 site_actions[j].action);
			if (!(*path = strdup(buf)))
				return tr_error_set(TR_ENOMEM, "routes");
			p->routes[k++] = (pt_route){
				site_actions[j].method, *path,
				site_actions[j].needs_session ? def->sites[i].name : NULL,
				site_actions[j].fields, site_actions[j].nfields,
				site_actions[j].handler,
			};
		}
	}
	for (i = 0; i < def->nroutes; i++)
		p->routes[k++] = def->routes[i];
	p->nroutes = k;
	return 0;
}

int pt_portal_new(pt_portal **out, const char *name, const char *pki_dir,
		  int admin)
{
	char chain[4096], crl[4096], dir[4096];
	const char *legacy_ca;
	pt_portal *p;
	int err;

	*out = NULL;
	if (!find_def(name))
		return tr_error_set(TR_ENOTFOUND, "unknown portal '%s'", name);
	if (!(p = calloc(1, sizeof(*p))))
		return tr_error_set(TR_ENOMEM, "portal");
	p->def = find_def(name);
	p->admin = admin;
	pthread_mutex_init(&p->lock, NULL);

	if ((err = tr_fs_join(dir, sizeof(dir), pki_dir, name)) < 0 ||
	    (err = tr_fs_join(chain, sizeof(chain), dir, "chain.pem")) < 0 ||
	    (err = tr_fs_join(crl, sizeof(crl), dir, "crl.pem")) < 0) {
		err = tr_error_set(TR_EINVAL, "PKI path too long");
		goto out;
	}
	if ((err = pt_verifier_new(&p->verifier, chain, crl)) < 0) {
		char why[512];

		/* Copied: the message is the buffer tr_error_set writes. */
		snprintf(why, sizeof(why), "%s", tr_error_last());
		err = tr_error_set(err, "portal %s: trust bundle: %s", name, why);
		goto out;
	}
	if ((legacy_ca = fx_province_find(name)->legacy_ca) != NULL) {
		/* Optional: a PKI folder from before the legacy CA has none. */
		if ((err = tr_fs_join(dir, sizeof(dir), pki_dir, legacy_ca)) < 0 ||
		    (err = tr_fs_join(chain, sizeof(chain), dir, "chain.pem")) < 0 ||
		    (err = tr_fs_join(crl, sizeof(crl), dir, "crl.pem")) < 0) {
			err = tr_error_set(TR_EINVAL, "PKI path too long");
			goto out;
		}
		if (access(chain, R_OK) == 0 &&
		    (err = pt_verifier_new(&p->legacy, chain, crl)) < 0)
			goto out;
	}
	if (!(p->pki_dir = strdup(pki_dir))) {
		err = tr_error_set(TR_ENOMEM, "portal");
		goto out;
	}
	if ((err = pt_challenges_new(&p->challenges, PT_MAX_CHALLENGES)) < 0 ||
	    (err = pt_sessions_new(&p->sessions, PT_MAX_SESSIONS)) < 0 ||
	    (err = build_routes(p)) < 0)
		goto out;
	if (p->def->state_new && (err = p->def->state_new(&p->state)) < 0)
		goto out;
	*out = p;
	return 0;
out:
	pt_portal_free(p);
	return err;
}

void pt_portal_free(pt_portal *p)
{
	size_t i;

	if (!p)
		return;
	if (p->state && p->def->state_free)
		p->def->state_free(p->state);
	pt_verifier_free(p->verifier);
	pt_verifier_free(p->legacy);
	free(p->pki_dir);
	pt_challenges_free(p->challenges);
	pt_sessions_free(p->sessions);
	if (p->paths)
		for (i = 0; i < p->def->nsites * NACTIONS; i++)
			free(p->paths[i]);
	free(p->paths);
	free(p->routes);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
