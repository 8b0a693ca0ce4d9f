#include "harness/steps.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "harness/kinds.h"
#include "harness/login.h"
#include "harness/token.h"
#include "harness/token_ctl.h"
#include "fixtures/pki.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROLES 32
#define ASSISTANT_VERSION "5.0.22.606"

typedef struct role {
	const tr_token_ref *ref;
	struct tr_case *owner; /* for the findings of an open (label_finding) */
	tr_token *tok;
	int logged_in;
	int pin_dirty;  /* a PIN was refused, changed or reset: restore at the end */
	int cert_dirty; /* keys or certificates written: restore at the end */
	int module_gone; /* OpenSC's module "not installed" (driver = missing) */
	int pcsc_driver; /* the PC/SC backend's reader driver changed: reset at the end */
	char cur_pin[64]; /* the PIN a step changed it to ("" = as provisioned) */
} role;

struct tr_case {
	const tr_scenario *sc;
	tr_env *env;
	tr_portal_client *pc;
	tr_token_ctl *ctl;
	const char *kind, *algorithm;
	tr_case_timing timing;
	json_t *vars;    /* name -> string */
	json_t *texts;   /* site -> the site's client-side texts */
	role roles[MAX_ROLES];
	size_t n_roles;
	const tr_step *step;  /* the step running, for error positions */
	fx_pki *pki;          /* the rig as the CA (renew, revoke), opened on need */
	json_t *stale;        /* site -> true: its page is stale since an assistant exception */
	json_t *warnings;     /* [{"step","message"}]: what the portals warned of */
	json_t *log;          /* a line a step: what it did and what came back */
};

/* --- variables ---------------------------------------------------------- */

static void set_var(tr_case *c, const char *prefix, const char *name, const char *value)
{
	char key[128];

	snprintf(key, sizeof(key), "%s%s", prefix, name);
	json_object_set_new(c->vars, key, json_string(value));
}

static void wrong_pin_of(const char *pin, char *out, size_t len)
{
	size_t n;

	snprintf(out, len, "%s", pin);
	n = strlen(out);
	if (n > 0)
		out[n - 1] = out[n - 1] >= '0' && out[n - 1] <= '8' ? out[n - 1] + 1 : '0';
}

/*
 * A serial typed by hand from a certificate viewer (HN-E08): lower case,
 * sep between the bytes ("4a:1b:..." as `openssl x509 -text` shows it).
 */
static void typed_serial(tr_case *c, const char *prefix, const char *name,
			 const char *hex, char sep)
{
	char out[3 * 64];
	size_t i, n = 0;

	for (i = 0; hex[i] && n + 3 < sizeof(out); i++) {
		if (i && i % 2 == 0)
			out[n++] = sep;
		out[n++] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + ('a' - 'A') : hex[i]);
	}
	out[n] = '\0';
	set_var(c, prefix, name, out);
}

static void add_role_vars(tr_case *c, const tr_token_ref *t, const char *prefix)
{
	char wrong[32];

	wrong_pin_of(t->pin, wrong, sizeof(wrong));
	set_var(c, prefix, "pin", t->pin);
	set_var(c, prefix, "wrong_pin", wrong);
	set_var(c, prefix, "so_pin", t->so_pin);
	set_var(c, prefix, "unit.name", t->unit.unit_name);
	set_var(c, prefix, "unit.uscc", t->unit.uscc);
	set_var(c, prefix, "unit.ss_number", t->unit.ss_number);
	set_var(c, prefix, "unit.hf_number", t->unit.hf_number);
	set_var(c, prefix, "operator.name", t->unit.operator_name);
	set_var(c, prefix, "operator.id", t->unit.operator_id);
	/* What a new Jiangsu token's PIN is made of (JS-E11's replacement). */
	set_var(c, prefix, "operator.id_last6",
		t->unit.operator_id + (strlen(t->unit.operator_id) > 6 ?
				       strlen(t->unit.operator_id) - 6 : 0));
	set_var(c, prefix, "operator.phone", t->unit.operator_phone);
	set_var(c, prefix, "token.label", t->label);
	set_var(c, prefix, "token.algorithm", t->algorithm);
	set_var(c, prefix, "cert.serial", t->cert_serial);
	set_var(c, prefix, "enc_cert.serial", t->enc_serial);
	typed_serial(c, prefix, "cert.serial_colons", t->cert_serial, ':');
	typed_serial(c, prefix, "cert.serial_spaces", t->cert_serial, ' ');
	typed_serial(c, prefix, "enc_cert.serial_colons", t->enc_serial, ':');
	typed_serial(c, prefix, "enc_cert.serial_spaces", t->enc_serial, ' ');
	if (t->cert_der) {
		char *b64 = tr_base64(t->cert_der, t->cert_len);

		if (b64)
			set_var(c, prefix, "cert", b64);
		free(b64);
	}
}

/* Where a message about the current step points. */
static int step_error(tr_case *c, int code, const char *what)
{
	return tr_error_set(code, "%s:%d: %s", c->sc->path, c->step ? c->step->line : 0, what);
}

/*
 * Why ${name} has no value: a profile (the part before the dot) the
 * portal's other kinds have a token of but this kind has not is a skip,
 * as for a step's `token`; any other unknown name is an error.
 */
static int unknown_variable(tr_case *c, const char *name)
{
	const char *dot = strchr(name, '.');
	const tr_token_ref *tokens;
	size_t n, plen = dot ? (size_t)(dot - name) : 0;
	char msg[200];

	tokens = plen ? tr_env_tokens(c->env, &n) : NULL;
	for (size_t i = 0; tokens && i < n; i++)
		if (!strcmp(tokens[i].portal, c->sc->portal) && strlen(tokens[i].role) == plen &&
		    !strncmp(tokens[i].role, name, plen))
			return tr_error_set(TR_STEP_ESKIP, "%s/%s has no token of profile '%s'",
					    c->kind, c->algorithm, tokens[i].role);
	snprintf(msg, sizeof(msg), "unknown variable ${%s}", name);
	return step_error(c, TR_EINVAL, msg);
}

/* Expands ${name} from the case's variables (*out: malloc'd). */
static int resolve(tr_case *c, const char *in, char **out)
{
	tr_buf b = TR_BUF_INIT;
	const char *p = in, *end;
	int error;

	*out = NULL;
	tr_buf_puts(&b, "");
	while (*p) {
		const char *value;
		char name[128];
		size_t n;

		if (p[0] != '$' || p[1] != '{' || !(end = strchr(p + 2, '}'))) {
			tr_buf_put(&b, p++, 1);
			continue;
		}
		n = (size_t)(end - p - 2);
		if (n == 0 || n >= sizeof(name)) {
			tr_buf_free(&b);
			return step_error(c, TR_EINVAL, "empty or overlong ${...}");
		}
		memcpy(name, p + 2, n);
		name[n] = '\0';
		if (!(value = json_string_value(json_object_get(c->vars, name)))) {
			tr_buf_free(&b);
			return unknown_variable(c, name);
		}
		tr_buf_puts(&b, value);
		p = end + 1;
	}
	if ((error = tr_buf_check(&b, "a step's value")) < 0) {
		tr_buf_free(&b);
		return error;
	}
	*out = b.data; /* the buffer's own malloc'd text */
	return 0;
}

/* The resolved value of key, or of fallback (itself resolved) when absent. */
static int resolve_key(tr_case *c, const char *key, const char *fallback, char **out)
{
	const char *raw = tr_step_get(c->step, key);

	*out = NULL;
	if (!raw)
		raw = fallback;
	if (!raw)
		return 0;
	return resolve(c, raw, out);
}

/* --- answers -------------------------------------------------------------- */

/* A step's answer: the portal's JSON (or a client-side one) + HTTP status. */
typedef struct tr_step_answer {
	long status;   /* 0: no HTTP exchange (client-side outcome) */
	json_t *json;
} answer;

static void answer_clear(answer *a)
{
	json_decref(a->json);
	a->json = NULL;
	a->status = 0;
}

static void answer_from_http(answer *a, tr_http_answer *h)
{
	a->status = h->status;
	a->json = h->json ? json_incref(h->json) :
		  json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "NOT_JSON", "raw", h->body);
}

static const char *text_key(int code)
{
	switch (code) {
	case TR_TOKEN_EPIN_INCORRECT: return "pin_incorrect";
	case TR_TOKEN_EPIN_LOCKED: return "pin_locked";
	case TR_TOKEN_ENOTOKEN: return "no_token";
	case TR_TOKEN_ENODRIVER: return "driver_missing";
	case TR_TOKEN_EREMOVED: return "read_failed";
	default: return "assistant_exception";
	}
}

/*
 * The harness plays the page and the certificate assistant: a token failure
 * becomes the text the site's page shows for it.
 */
static void answer_from_token(answer *a, tr_case *c, const char *site, int code,
			      role *r)
{
	json_t *texts = site ? json_object_get(c->texts, site) : NULL;
	const char *msg = json_string_value(json_object_get(texts, text_key(code)));

	a->status = 0;
	a->json = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "code", tr_token_error_name(code),
			    "message", msg ? msg : tr_error_last(), "detail", tr_error_last());
	/*
	 * JS-E04: an assistant call that failed (no named token outcome) leaves
	 * the page in a broken state that only a forced refresh clears.
	 */
	if (site && !strcmp(tr_token_error_name(code), "TOKEN_ERROR"))
		json_object_set_new(c->stale, site, json_true());
	if ((code == TR_TOKEN_EPIN_INCORRECT || code == TR_TOKEN_EPIN_LOCKED) && r && r->tok)
		json_object_set_new(a->json, "tries", json_integer(tr_token_pin_tries(r->tok)));
}

static int http(tr_case *c, const char *method, const char *path, const char *bearer,
		json_t *body, answer *a)
{
	tr_http_answer h;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int error;

	error = tr_portal_client_request(c->pc, method, path, bearer, text,
					 text ? strlen(text) : 0, &h);
	free(text);
	if (error < 0)
		return error;
	answer_from_http(a, &h);
	tr_http_answer_clear(&h);
	return 0;
}

static int answer_ok(const answer *a)
{
	return json_is_true(json_object_get(a->json, "ok"));
}

/* --- tokens ------------------------------------------------------------- */

static role *find_role(tr_case *c, const char *name)
{
	for (size_t i = 0; i < c->n_roles; i++)
		if (!strcmp(c->roles[i].ref->role, name))
			return &c->roles[i];
	return NULL;
}

/* The role named by the step's `token`, else the scenario's default. */
static int step_role(tr_case *c, role **out)
{
	const char *name = tr_step_get(c->step, "token");

	*out = find_role(c, name ? name : c->sc->token);
	if (!*out) {
		/* A profile this kind has no token for (e.g. key-mismatch on a card). */
		return tr_error_set(TR_STEP_ESKIP, "%s/%s has no token of profile '%s'", c->kind,
				    c->algorithm, name ? name : c->sc->token);
	}
	return 0;
}

static void add_warning(tr_case *c, const char *message);

/*
 * A token label that is not UTF-8 (OpenSC cuts a long Chinese unit name at
 * 32 bytes inside a character) is the middleware's finding: named on the
 * case as a warning, the flow goes on.
 */
static void label_finding(role *r)
{
	const unsigned char *l = (const unsigned char *)tr_token_label(r->tok);
	char msg[256], hex[3 * 40 + 1] = "";
	size_t off = 0;

	if (!r->owner || tr_token_label_utf8(r->tok))
		return;
	for (size_t i = 0; l[i] && off + 4 < sizeof(hex); i++)
		off += (size_t)snprintf(hex + off, sizeof(hex) - off, "%s%02X", i ? " " : "", l[i]);
	snprintf(msg, sizeof(msg), "middleware finding (%s): the token label is not valid UTF-8, "
		 "cut inside a character (%zu bytes: %s)", r->ref->kind, strlen((const char *)l),
		 hex);
	add_warning(r->owner, msg);
}

static void role_close(role *r)
{
	tr_token_close(r->tok);
	r->tok = NULL;
	r->logged_in = 0;
}

/*
 * Opens the role's token. With select (a company name), the token is the one
 * whose certificate names that unit among all tokens of the module, as a
 * user picks a certificate by company when several keys are plugged in.
 */
static int role_open(role *r, const char *select)
{
	int pcsc = tr_kind_has(r->ref->kind, TR_KIND_APDU);
	int error;

	if (r->module_gone) {
		/* Looked for where it would be installed: not there (JS-E01). */
		char absent[4200];

		role_close(r);
		snprintf(absent, sizeof(absent), "%s.not-installed", r->ref->module);
		return tr_token_open_p11(&r->tok, absent, r->ref->uri);
	}
	if (select) {
		/* Among every token plugged in; a certified token's batch is one token. */
		role_close(r);
		error = pcsc ? tr_token_open_pcsc_unit(&r->tok, select) :
			tr_token_open_p11_unit(&r->tok, r->ref->module,
					       *r->ref->token_uri ? r->ref->token_uri : "pkcs11:",
					       select);
	} else if (r->tok) {
		return 0;
	} else {
		error = pcsc ? tr_token_open_pcsc(&r->tok, r->ref->reader) :
			tr_token_open_p11(&r->tok, r->ref->module, r->ref->uri);
	}
	/* No false green: a certified token's refusals are its own failures. */
	if (!error && tr_kind_has(r->ref->kind, TR_KIND_CERTIFY))
		tr_token_set_strict(r->tok, 1);
	if (!error)
		label_finding(r);
	return error;
}

/*
 * After a token outcome: a token gone or driverless is opened anew next
 * time. A virtual card that dropped out must be seen gone by pcscd before
 * anything plugs it back, or the reader loses track of it.
 */
static int role_outcome(tr_case *c, role *r, int error)
{
	switch (error) {
	case TR_TOKEN_EREMOVED:
		if (r->ref->card >= 0)
			tr_env_wait_card(c->env, r->ref->card, 0);
		role_close(r);
		break;
	case TR_TOKEN_ENOTOKEN:
	case TR_TOKEN_ENODRIVER:
		role_close(r);
		break;
	case TR_TOKEN_EPIN_INCORRECT:
	case TR_TOKEN_EPIN_LOCKED:
		r->pin_dirty = 1;
		break;
	}
	return error;
}

static int role_login(tr_case *c, role *r, const char *pin)
{
	const char *right = r->cur_pin[0] ? r->cur_pin : r->ref->pin;
	int error;

	/* Never brick a real key: a deliberate wrong PIN must not be its last try. */
	if (strcmp(pin, right) && (error = tr_kind_guard_wrong_pin(r->tok, c->kind)) < 0)
		return error;

	/* The assistant asks for the PIN every time: start logged out. */
	if (r->logged_in) {
		tr_token_logout(r->tok);
		r->logged_in = 0;
	}
	if ((error = tr_token_login(r->tok, pin)) < 0)
		return role_outcome(c, r, error);
	r->logged_in = 1;
	return 0;
}

static int is_token_outcome(int error)
{
	return error <= TR_TOKEN_EPIN_INCORRECT && error >= TR_TOKEN_ENOT_LOGGED_IN;
}

static int sign_text(tr_case *c, role *r, const char *text, char **sig_b64)
{
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	uint64_t ns = 0;
	int error;

	error = tr_token_sign(r->tok, (const unsigned char *)text, strlen(text), &sig, &sig_len, &ns);
	if (error < 0)
		return error; /* the caller reports it, then role_outcome() */
	if (c->timing.sign_ns)
		tr_samples_add(c->timing.sign_ns, ns);
	*sig_b64 = tr_base64(sig, sig_len);
	free(sig);
	return *sig_b64 ? 0 : tr_error_set(TR_ENOMEM, "out of memory");
}

/* --- actions ------------------------------------------------------------ */

static int site_texts(tr_case *c, const char *site)
{
	char path[256];
	answer a = { 0 };
	int error;

	if (json_object_get(c->texts, site))
		return 0;
	snprintf(path, sizeof(path), "/%s/ui", site);
	if ((error = http(c, "GET", path, NULL, NULL, &a)) < 0)
		return error;
	json_object_set(c->texts, site, json_object_get(a.json, "texts") ?
				       json_object_get(a.json, "texts") : json_object());
	answer_clear(&a);
	return 0;
}

/*
 * A stale page (JS-E04) answers every assistant call with its exception
 * text, without reaching the token, until page-refresh: 1 when it did.
 */
static int stale_page(tr_case *c, const char *site, answer *a)
{
	json_t *texts = json_object_get(c->texts, site);
	const char *msg = json_string_value(json_object_get(texts, "assistant_exception"));

	if (!json_is_true(json_object_get(c->stale, site)))
		return 0;
	a->status = 0;
	a->json = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "code", "TOKEN_ERROR", "message",
			    msg ? msg : "assistant exception", "detail",
			    "the page still holds the state of the failed assistant call: refresh it");
	return 1;
}

/*
 * The forced refresh (Ctrl+F5): the page reloads without the browser's
 * cache, so its state and its texts are fetched anew.
 */
static int do_page_refresh(tr_case *c, answer *a)
{
	char *site = NULL;
	int error;

	if ((error = resolve_key(c, "site", NULL, &site)) < 0)
		return error;
	json_object_del(c->stale, site);
	json_object_del(c->texts, site);
	error = site_texts(c, site);
	free(site);
	if (error < 0)
		return error;
	a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	return 0;
}

typedef struct unlock_arg {
	tr_case *c;
	role *r;
	const char *pin;
} unlock_arg;

static int unlock_role(void *arg)
{
	unlock_arg *u = arg;

	return role_login(u->c, u->r, u->pin);
}

/*
 * POST /<site>/browser-check {"user_agent"}: 0 when the page accepts the
 * browser, 1 when it refuses (a holds the refusal), or an error.
 */
static int browser_check(tr_case *c, const char *site, const char *browser, answer *a)
{
	json_t *body = json_pack("{s:s}", "user_agent", browser);
	char path[256];
	int error;

	if (!body)
		return tr_error_set(TR_ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/%s/browser-check", site);
	error = http(c, "POST", path, NULL, body, a);
	json_decref(body);
	if (error < 0)
		return error;
	if (!answer_ok(a))
		return 1;
	answer_clear(a);
	return 0;
}

static int do_ca_login(tr_case *c, answer *a)
{
	char *site = NULL, *pin = NULL, *assistant = NULL, *select = NULL, fallback[48];
	char *challenge = NULL, *other = NULL;
	char *browser = NULL; /* the page's browser check (HN-E07) */
	tr_login_result res;
	unlock_arg unlock;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "site", NULL, &site)) < 0)
		goto out;
	snprintf(fallback, sizeof(fallback), "${%s.pin}", r->ref->role);
	if ((error = resolve_key(c, "pin", fallback, &pin)) < 0 ||
	    (error = resolve_key(c, "assistant", ASSISTANT_VERSION, &assistant)) < 0 ||
	    (error = resolve_key(c, "select", NULL, &select)) < 0 ||
	    (error = resolve_key(c, "challenge", NULL, &challenge)) < 0 ||
	    (error = resolve_key(c, "browser", NULL, &browser)) < 0 ||
	    (error = site_texts(c, site)) < 0)
		goto out;
	if (stale_page(c, site, a))
		goto out;
	/*
	 * challenge = other (JS-E05): the assistant signs another challenge of
	 * the site than the one the login sends, as a page mixing up two does.
	 */
	if (challenge) {
		char path[256];
		answer ch = { 0 };
		json_t *none;

		if (strcmp(challenge, "other")) {
			error = step_error(c, TR_EINVAL, "challenge must be 'other'");
			goto out;
		}
		snprintf(path, sizeof(path), "/%s/challenge", site);
		none = json_object();
		error = http(c, "POST", path, NULL, none, &ch);
		json_decref(none);
		if (error < 0)
			goto out;
		if (json_string_value(json_object_get(ch.json, "challenge")))
			other = strdup(json_string_value(json_object_get(ch.json, "challenge")));
		answer_clear(&ch);
		if (!other) {
			error = step_error(c, TR_EIO, "the site gave no other challenge");
			goto out;
		}
	}

	/* A named browser: the page checks it first; a refusal is the answer. */
	if (browser && (error = browser_check(c, site, browser, a)) != 0) {
		error = error > 0 ? 0 : error;
		goto out;
	}

	/*
	 * The assistant enumerates the keys anew at every login, and nothing
	 * reaches the portal before the token and its certificate are read.
	 */
	role_close(r);
	if ((error = role_open(r, select)) < 0) {
		answer_from_token(a, c, site, role_outcome(c, r, error), r);
		error = 0;
		goto out;
	}
	unlock = (unlock_arg){ c, r, pin };
	if ((error = tr_login_run_signing(c->pc, r->tok, site, assistant, other, unlock_role,
					  &unlock, &res)) < 0)
		goto out;
	if (res.token_error) {
		answer_from_token(a, c, site, res.token_error, r);
		role_outcome(c, r, res.token_error);
	} else {
		answer_from_http(a, &res.answer);
	}
	if (res.sign_ns && c->timing.sign_ns)
		tr_samples_add(c->timing.sign_ns, res.sign_ns);
	if (answer_ok(a) && json_string_value(json_object_get(a->json, "session"))) {
		char key[128];

		snprintf(key, sizeof(key), "session.%s", site);
		json_object_set(c->vars, key, json_object_get(a->json, "session"));
		if (c->timing.login_ns)
			tr_samples_add(c->timing.login_ns, res.total_ns);
	}
	tr_login_result_clear(&res);
out:
	free(site);
	free(pin);
	free(assistant);
	free(select);
	free(browser);
	free(challenge);
	free(other);
	return error;
}

static const char *session_of(tr_case *c, const char *site)
{
	char key[128];

	if (!site)
		return NULL;
	snprintf(key, sizeof(key), "session.%s", site);
	return json_string_value(json_object_get(c->vars, key));
}

static int do_request(tr_case *c, answer *a)
{
	char *method = NULL, *path = NULL, *session = NULL, *raw = NULL, *text = NULL;
	json_t *body = NULL;
	tr_http_answer h;
	int error;

	if ((error = resolve_key(c, "method", NULL, &method)) < 0 ||
	    (error = resolve_key(c, "path", NULL, &path)) < 0 ||
	    (error = resolve_key(c, "session", NULL, &session)) < 0 ||
	    (error = resolve_key(c, "body", NULL, &raw)) < 0)
		goto out;
	for (size_t i = 0; i < c->step->n_kv; i++) {
		const tr_kv *kv = &c->step->kv[i];
		char *value;

		if (strncmp(kv->key, "json.", 5))
			continue;
		if (raw) {
			error = step_error(c, TR_EINVAL, "give either body or json.* fields, not both");
			goto out;
		}
		if ((error = resolve(c, kv->value, &value)) < 0)
			goto out;
		if (!body)
			body = json_object();
		json_object_set_new(body, kv->key + 5, json_string(value));
		free(value);
	}
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if (!text && raw)
		text = strdup(raw);
	if (!text && !strcmp(method, "POST"))
		text = strdup("{}");
	error = tr_portal_client_request(c->pc, method, path, session_of(c, session), text,
					 text ? strlen(text) : 0, &h);
	if (error < 0)
		goto out;
	answer_from_http(a, &h);
	tr_http_answer_clear(&h);
out:
	json_decref(body);
	free(method);
	free(path);
	free(session);
	free(raw);
	free(text);
	return error;
}

static int do_sign_submit(tr_case *c, answer *a)
{
	char *site = NULL, *document = NULL, *path = NULL, *pin = NULL, *session = NULL;
	char *sig = NULL, *sent = NULL, fallback[64];
	json_t *body = NULL;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "site", NULL, &site)) < 0 ||
	    (error = resolve_key(c, "document", NULL, &document)) < 0 ||
	    (error = resolve_key(c, "pin", NULL, &pin)) < 0 ||
	    (error = resolve_key(c, "session", site, &session)) < 0 ||
	    (error = resolve_key(c, "send_document", NULL, &sent)) < 0)
		goto out;
	snprintf(fallback, sizeof(fallback), "/%s/declarations", site);
	if ((error = resolve_key(c, "path", fallback, &path)) < 0 ||
	    (error = site_texts(c, site)) < 0)
		goto out;
	if (stale_page(c, site, a))
		goto out;
	if ((error = role_open(r, NULL)) < 0)
		goto token_failed;
	if (pin || !r->logged_in) {
		if (!pin) {
			snprintf(fallback, sizeof(fallback), "${%s.pin}", r->ref->role);
			if ((error = resolve(c, fallback, &pin)) < 0)
				goto out;
		}
		if ((error = role_login(c, r, pin)) < 0)
			goto token_failed;
	}
	if ((error = sign_text(c, r, document, &sig)) < 0)
		goto token_failed;
	/* send_document: what travels differs from what was signed (tampering). */
	body = json_pack("{s:s, s:s, s:s}", "document", sent ? sent : document, "signature", sig,
			 "algorithm", tr_sign_alg_name(tr_token_sign_alg(r->tok)));
	error = http(c, "POST", path, session_of(c, session), body, a);
	goto out;

token_failed:
	if (is_token_outcome(error)) {
		answer_from_token(a, c, site, error, r);
		role_outcome(c, r, error);
		error = 0;
	}
out:
	json_decref(body);
	free(site);
	free(document);
	free(path);
	free(pin);
	free(session);
	free(sig);
	free(sent);
	return error;
}

static int do_token_login(tr_case *c, answer *a)
{
	char *pin = NULL, fallback[32];
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0)
		return error;
	snprintf(fallback, sizeof(fallback), "${%s.pin}", r->ref->role);
	if ((error = resolve_key(c, "pin", fallback, &pin)) < 0)
		return error;
	if ((error = role_open(r, NULL)) < 0 || (error = role_login(c, r, pin)) < 0) {
		if (is_token_outcome(error)) {
			answer_from_token(a, c, NULL, error, r);
			role_outcome(c, r, error);
			error = 0;
		}
	} else {
		a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	}
	free(pin);
	return error;
}

static int do_token_logout(tr_case *c, answer *a)
{
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0)
		return error;
	if (r->tok && r->logged_in)
		tr_token_logout(r->tok);
	r->logged_in = 0;
	a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	return 0;
}

static const char *const control_keys[] = {
	"present", "remove_during", "fault", "latency", "driver", "max_tries",
};

/*
 * The same controls on a virtual card: pull and insert (waiting until pcscd
 * sees it), pull during the next signature. The rest has no card meaning:
 * an empty slot list while the key is in (`driver = empty`, JS-E01) is not
 * a reader without a card (TK-E04), and a card cannot show itself to the
 * system while its driver hides it.
 */
static int card_control(tr_case *c, role *r, const char *key, const char *value)
{
	if (!strcmp(key, "present") && (!strcmp(value, "no") || !strcmp(value, "yes"))) {
		int error = tr_env_card_command(c->env, r->ref->card,
						!strcmp(value, "no") ? "remove" : "insert");

		role_close(r);
		return error < 0 ? error : tr_env_wait_card(c->env, r->ref->card, !strcmp(value, "yes"));
	}
	if (!strcmp(key, "remove_during") && !strcmp(value, "C_Sign"))
		return tr_env_card_command(c->env, r->ref->card, "remove-during-sign");
	/* Through OpenSC the driver is its PKCS#11 module, which can be absent. */
	if (!strcmp(key, "driver") && !strcmp(value, "missing") &&
	    tr_kind_has(r->ref->kind, TR_KIND_MODULE_GONE)) {
		r->module_gone = 1;
		role_close(r);
		return 0;
	}
	/*
	 * In APDUs the driver is the reader's, modelled in the PC/SC backend:
	 * missing hides the reader, empty is blind to the card in it, and a
	 * fault breaks the next enumeration once (tr_token_pcsc_set_driver).
	 */
	if (tr_kind_has(r->ref->kind, TR_KIND_APDU) &&
	    ((!strcmp(key, "driver") && (!strcmp(value, "missing") || !strcmp(value, "empty"))) ||
	     (!strcmp(key, "fault") && !strncmp(value, "C_GetSlotList once", 18)))) {
		int error = !strcmp(key, "driver") ?
			    tr_token_pcsc_set_driver(r->ref->reader, value) :
			    tr_token_pcsc_fault_once(r->ref->reader);

		r->pcsc_driver = 1;
		role_close(r);
		return error;
	}
	return tr_error_set(TR_STEP_ESKIP, "a virtual card has no control '%s = %s'", key, value);
}

static int do_token_control(tr_case *c, answer *a)
{
	role *r;
	int error, driver = 0;

	if ((error = step_role(c, &r)) < 0)
		return error;
	if (r->ref->card >= 0) {
		/* One step, one final presence: pcscd takes ~0.4 s to see each change. */
		const char *presence = NULL;

		for (size_t i = 0; i < sizeof(control_keys) / sizeof(control_keys[0]); i++) {
			const char *key = control_keys[i];
			char *value;

			if ((error = resolve_key(c, key, NULL, &value)) < 0)
				return error;
			if (!value)
				continue;
			if (!strcmp(key, "present") && (!strcmp(value, "yes") || !strcmp(value, "no")))
				presence = !strcmp(value, "yes") ? "yes" : "no";
			else if (!strcmp(key, "driver") && !strcmp(value, "present")) {
				presence = "yes";
				r->module_gone = 0;
				if (r->pcsc_driver)
					error = tr_token_pcsc_set_driver(r->ref->reader, "present");
				r->pcsc_driver = 0;
			}
			else
				error = card_control(c, r, key, value);
			free(value);
			if (error < 0)
				return error;
		}
		if (presence && (error = card_control(c, r, "present", presence)) < 0)
			return error;
		a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
		return 0;
	}
	if (!c->ctl && tr_kind_has(c->kind, TR_KIND_FOREIGN))
		return tr_error_set(TR_STEP_ESKIP, "the rig cannot pull, fault or slow a token it did "
				    "not make (its interposer's controls; optional for this token class)");
	if (!c->ctl)
		return step_error(c, TR_EINVAL, "this token kind has no controls");
	for (size_t i = 0; i < sizeof(control_keys) / sizeof(control_keys[0]); i++) {
		char *value;

		if ((error = resolve_key(c, control_keys[i], NULL, &value)) < 0)
			return error;
		if (!value)
			continue;
		error = tr_token_ctl_set(c->ctl, r->ref->label, control_keys[i], value);
		free(value);
		if (error < 0)
			return step_error(c, error, tr_error_last());
		driver |= !strcmp(control_keys[i], "driver");
	}
	/* A driver change shows when the module is loaded anew: close it all. */
	if (driver)
		for (size_t i = 0; i < c->n_roles; i++)
			role_close(&c->roles[i]);
	a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	return 0;
}

/* Runs a token operation of a token-* step; token outcomes become answers. */
static int token_step_result(tr_case *c, role *r, int error, answer *a)
{
	if (error == 0) {
		if (!a->json)
			a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
		return 0;
	}
	if (is_token_outcome(error)) {
		answer_from_token(a, c, NULL, error, r);
		role_outcome(c, r, error);
		return 0;
	}
	return error;
}

static int do_token_change_pin(tr_case *c, answer *a)
{
	char *old = NULL, *new_pin = NULL, fallback[48];
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0)
		return error;
	snprintf(fallback, sizeof(fallback), "${%s.pin}", r->ref->role);
	if ((error = resolve_key(c, "old", fallback, &old)) < 0 ||
	    (error = resolve_key(c, "new", NULL, &new_pin)) < 0)
		goto out;
	r->pin_dirty = 1;
	if ((error = role_open(r, NULL)) == 0 &&
	    (error = tr_token_change_pin(r->tok, old, new_pin)) == 0 && new_pin)
		snprintf(r->cur_pin, sizeof(r->cur_pin), "%s", new_pin);
	error = token_step_result(c, r, error, a);
out:
	free(old);
	free(new_pin);
	return error;
}

static int do_token_reset_pin(tr_case *c, answer *a)
{
	char *so = NULL, *new_pin = NULL, fallback[48];
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0)
		return error;
	snprintf(fallback, sizeof(fallback), "${%s.so_pin}", r->ref->role);
	if ((error = resolve_key(c, "so", fallback, &so)) < 0)
		goto out;
	snprintf(fallback, sizeof(fallback), "${%s.pin}", r->ref->role);
	if ((error = resolve_key(c, "new", fallback, &new_pin)) < 0)
		goto out;
	if (!tr_kind_has(r->ref->kind, TR_KIND_PUK_RESET)) {
		const tr_kind *k = tr_kind_find(r->ref->kind);

		error = tr_error_set(TR_STEP_ESKIP, "%s", k && k->no_reset ? k->no_reset :
				     "this token kind cannot reset the PIN");
		goto out;
	}
	r->pin_dirty = 1;
	r->logged_in = 0;
	if ((error = role_open(r, NULL)) == 0 &&
	    (error = tr_token_reset_pin(r->tok, so, new_pin)) == 0)
		snprintf(r->cur_pin, sizeof(r->cur_pin), "%s",
			 strcmp(new_pin, r->ref->pin) ? new_pin : "");
	error = token_step_result(c, r, error, a);
out:
	free(so);
	free(new_pin);
	return error;
}

/* Hex of a certificate's SHA-256 and serial, for "unchanged" checks. */
static void cert_facts(tr_token *tok, json_t *o)
{
	const unsigned char *der, *p;
	unsigned char md[32];
	size_t len;
	char hex[65];
	X509 *cert;
	BIGNUM *bn;
	char *serial;

	if (tr_token_certificate(tok, &der, &len) < 0)
		return;
	EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	json_object_set_new(o, "cert_sha256", json_string(hex));
	p = der;
	if (!(cert = d2i_X509(NULL, &p, (long)len)))
		return;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	serial = bn ? BN_bn2hex(bn) : NULL;
	if (serial)
		json_object_set_new(o, "cert_serial", json_string(serial));
	OPENSSL_free(serial);
	BN_free(bn);
	{
		char name[256] = "", uscc[32] = "";

		fx_cert_unit_identity(cert, name, sizeof(name), uscc, sizeof(uscc));
		json_object_set_new(o, "unit", json_pack("{s:s, s:s}", "name", name, "uscc", uscc));
	}
	X509_free(cert);
}

static int verify_locally(tr_token *tok, const char *data, const unsigned char *sig,
			  size_t sig_len)
{
	const unsigned char *der;
	size_t len;
	X509 *cert;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = 0;

	if (tr_token_certificate(tok, &der, &len) < 0 || !md ||
	    !(cert = d2i_X509(NULL, &der, (long)len))) {
		EVP_MD_CTX_free(md);
		return 0;
	}
	{
		EVP_PKEY *pub = X509_get0_pubkey(cert);
		int sm2 = pub && EVP_PKEY_is_a(pub, "SM2");
		EVP_PKEY_CTX *pctx = NULL;

		/* SM2-with-SM3 and the default distinguishing ID, as the portals verify. */
		ok = EVP_DigestVerifyInit(md, &pctx, sm2 ? EVP_sm3() : EVP_sha256(), NULL, pub) == 1 &&
		     (!sm2 || EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16) > 0) &&
		     EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, strlen(data)) == 1;
	}
	EVP_MD_CTX_free(md);
	X509_free(cert);
	return ok;
}

static int do_token_sign(tr_case *c, answer *a)
{
	char *data = NULL, *pin = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	uint64_t ns;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0)
		return error;
	if ((error = resolve_key(c, "data", NULL, &data)) < 0 ||
	    (error = resolve_key(c, "pin", NULL, &pin)) < 0)
		goto out;
	if ((error = role_open(r, NULL)) < 0 || (pin && (error = role_login(c, r, pin)) < 0) ||
	    (error = tr_token_sign(r->tok, (const unsigned char *)data, strlen(data), &sig,
				   &sig_len, &ns)) < 0) {
		error = token_step_result(c, r, error, a);
		goto out;
	}
	if (c->timing.sign_ns)
		tr_samples_add(c->timing.sign_ns, ns);
	a->json = json_pack("{s:b, s:s, s:b, s:s}", "ok", 1, "code", "OK", "verified",
			    verify_locally(r->tok, data, sig, sig_len), "algorithm",
			    tr_sign_alg_name(tr_token_sign_alg(r->tok)));
	cert_facts(r->tok, a->json);
out:
	free(sig);
	free(data);
	free(pin);
	return error;
}

/* An ASN1_TIME as unix seconds (UTC). */
static long long asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (long long)timegm(&tm);
}

/*
 * What the assistant shows of the certificate's validity (JS-E06: "请在证书
 * 助手中确认有效期延长后"): not_before, not_after (unix seconds), the
 * certificate itself (base64 DER, for a counter binding it) and, with
 * at (unix seconds, e.g. the portal's clock), whether it is valid then.
 */
static int validity_facts(tr_case *c, tr_token *tok, const char *at, json_t *o)
{
	const unsigned char *der, *p;
	size_t len;
	long long nb, na, when;
	char *b64, *end;
	X509 *cert;
	int error;

	if ((error = tr_token_certificate(tok, &der, &len)) < 0)
		return error;
	p = der;
	if (!(cert = d2i_X509(NULL, &p, (long)len)))
		return tr_error_set_openssl(TR_EINVAL, "the token's certificate does not parse");
	nb = asn1_unix(X509_get0_notBefore(cert));
	na = asn1_unix(X509_get0_notAfter(cert));
	X509_free(cert);
	json_object_set_new(o, "not_before", json_integer(nb));
	json_object_set_new(o, "not_after", json_integer(na));
	if ((b64 = tr_base64(der, len)) != NULL)
		json_object_set_new(o, "certificate", json_string(b64));
	free(b64);
	if (!at)
		return 0;
	when = strtoll(at, &end, 10);
	if (!*at || *end)
		return step_error(c, TR_EINVAL, "at: unix seconds, e.g. ${clock}");
	json_object_set_new(o, "valid_at", json_boolean(nb <= when && when <= na));
	return 0;
}

static int do_token_info(tr_case *c, answer *a)
{
	char *select = NULL, *at = NULL;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "select", NULL, &select)) < 0 ||
	    (error = resolve_key(c, "at", NULL, &at)) < 0)
		goto out;
	error = role_open(r, select);
	if (error < 0) {
		error = token_step_result(c, r, error, a);
		goto out;
	}
	a->json = json_pack("{s:b, s:s, s:i, s:s, s:s}", "ok", 1, "code", "OK", "tries",
			    tr_token_pin_tries(r->tok), "algorithm",
			    tr_sign_alg_name(tr_token_sign_alg(r->tok)), "kind",
			    tr_token_kind(r->tok));
	cert_facts(r->tok, a->json);
	error = validity_facts(c, r->tok, at, a->json);
out:
	free(select);
	free(at);
	return error;
}

/* Opens and, when needed, logs in the role's token for a write. */
static int role_ready(tr_case *c, role *r)
{
	int error;

	if ((error = role_open(r, NULL)) < 0)
		return error;
	if (!r->logged_in)
		return role_login(c, r, r->ref->pin);
	return 0;
}

/* 1 when the step checks its answer (expect.*). */
static int step_checks(const tr_case *c)
{
	for (size_t i = 0; i < c->step->n_kv; i++)
		if (!strncmp(c->step->kv[i].key, "expect.", 7))
			return 1;
	return 0;
}

static int do_token_keygen(tr_case *c, answer *a)
{
	char *alg = NULL;
	unsigned char *spki = NULL;
	size_t spki_len = 0;
	char *b64;
	role *r;
	int error, cannot = 0;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "algorithm", NULL, &alg)) < 0)
		return error;
	if (alg && strcmp(alg, "sm2") && strcmp(alg, "p256") && strcmp(alg, "rsa2048")) {
		error = step_error(c, TR_EINVAL, "algorithm: sm2, p256 or rsa2048");
		free(alg);
		return error;
	}
	if (tr_kind_has(c->kind, TR_KIND_CERTIFY) && !tr_kind_has(c->kind, TR_KIND_KEYGEN)) {
		free(alg);
		return tr_error_set(TR_STEP_ESKIP, "the token cannot generate keys (optional for "
				    "this token class)");
	}
	if ((error = role_ready(c, r)) == 0) {
		error = tr_token_generate_key(r->tok, !alg || !strcmp(alg, "sm2") ? TR_KEYGEN_UPGRADE :
					      !strcmp(alg, "p256") ? TR_KEYGEN_P256 :
					      TR_KEYGEN_RSA2048, &spki, &spki_len);
		/* The token layer's "this kind cannot generate that key" (token.h). */
		cannot = error == TR_EDEPEND;
	}
	free(alg);
	if (cannot && tr_kind_has(c->kind, TR_KIND_APDU) && step_checks(c)) {
		/*
		 * The card itself refused the key (GENERATE: 6A80), as a blue
		 * RSA-only key refuses SM2 and P-256 (JS-E11): what the
		 * assistant learns from the token, answered for the step to
		 * check. Unchecked, the flow cannot go on: skipped as before.
		 */
		a->json = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "code", "KEY_UNSUPPORTED",
				    "message", tr_error_last(), "detail", tr_error_last());
		return 0;
	}
	if (cannot)
		return tr_error_set(TR_STEP_ESKIP, "%s", tr_error_last());
	if (error < 0)
		return token_step_result(c, r, error, a);
	r->cert_dirty = 1;
	b64 = tr_base64(spki, spki_len);
	OPENSSL_free(spki);
	a->json = json_pack("{s:b, s:s, s:s}", "ok", 1, "code", "OK", "public_key", b64 ? b64 : "");
	free(b64);
	return 0;
}

/* Decodes base64 (the portal API's encoding of DER). */
static unsigned char *unbase64(const char *in, size_t *len)
{
	size_t n = strlen(in);
	unsigned char *out = malloc(n / 4 * 3 + 3);
	int got;

	if (!out || n % 4)
		goto bad;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (got < 0)
		goto bad;
	while (n > 0 && in[n - 1] == '=') {
		got--;
		n--;
	}
	*len = (size_t)got;
	return out;
bad:
	free(out);
	return NULL;
}

static int write_cert(tr_case *c, role *r, const unsigned char *der, size_t len, answer *a)
{
	int error;

	if (tr_kind_has(c->kind, TR_KIND_CERTIFY) && !tr_kind_has(c->kind, TR_KIND_WRITE_CERT))
		return tr_error_set(TR_STEP_ESKIP, "the token cannot take certificates (optional for "
				    "this token class)");

	if ((error = role_ready(c, r)) == 0 &&
	    (error = tr_token_write_certificate(r->tok, der, len)) == TR_EDEPEND)
		/* The token layer's "this kind cannot take certificates" (token.h). */
		return tr_error_set(TR_STEP_ESKIP, "%s", tr_error_last());
	if (error < 0)
		return token_step_result(c, r, error, a);
	r->cert_dirty = 1;
	a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	cert_facts(r->tok, a->json);
	return 0;
}

static int do_token_write_cert(tr_case *c, answer *a)
{
	char *b64 = NULL;
	unsigned char *der;
	size_t len;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "certificate", NULL, &b64)) < 0)
		return error;
	der = unbase64(b64, &len);
	free(b64);
	if (!der)
		return step_error(c, TR_EINVAL, "certificate is not base64");
	error = write_cert(c, r, der, len, a);
	free(der);
	return error;
}

static int case_pki(tr_case *c, fx_pki **out)
{
	int error;

	if (!c->pki && (error = fx_pki_open(&c->pki, tr_env_pki_dir(c->env))) < 0)
		return error;
	*out = c->pki;
	return 0;
}

/* The token's current certificate, parsed. */
static int role_cert(role *r, X509 **out)
{
	const unsigned char *der;
	size_t len;
	int error;

	if ((error = role_open(r, NULL)) < 0 ||
	    (error = tr_token_certificate(r->tok, &der, &len)) < 0)
		return error;
	if (!(*out = d2i_X509(NULL, &der, (long)len)))
		return tr_error_set_openssl(TR_EINVAL, "the token's certificate does not parse");
	return 0;
}

/* The rig as the CA: a new certificate for the token's key, written to it. */
static int do_token_renew(tr_case *c, answer *a)
{
	char *from = NULL, *name = NULL;
	unsigned char *der = NULL;
	X509 *old = NULL, *cert = NULL;
	fx_unit unit;
	fx_pki *pki;
	role *r;
	int error, len;

	if ((error = step_role(c, &r)) < 0 ||
	    (error = resolve_key(c, "valid_from", NULL, &from)) < 0 ||
	    (error = resolve_key(c, "name", NULL, &name)) < 0 ||
	    (error = case_pki(c, &pki)) < 0)
		goto out;
	if ((error = role_cert(r, &old)) < 0) {
		error = token_step_result(c, r, error, a);
		goto out;
	}
	unit = r->ref->unit;
	if (name)
		snprintf(unit.unit_name, sizeof(unit.unit_name), "%s", name);
	fx_pki_set_now(pki, from ? (time_t)strtoll(from, NULL, 10) : time(NULL));
	/* Renewals come from the portal's current CA, whatever issued the old one. */
	if ((error = fx_pki_issue_unit(pki, r->ref->portal, X509_get0_pubkey(old), &unit,
				       FX_VARIANT_VALID, &cert)) < 0)
		goto out;
	fx_pki_set_now(pki, time(NULL));
	if ((len = i2d_X509(cert, &der)) <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding the renewed certificate");
		goto out;
	}
	error = write_cert(c, r, der, (size_t)len, a);
	if (error == 0 && answer_ok(a)) {
		/* The renewed certificate, for the CA counter's binding (JS-E02, JS-E13). */
		char *b64 = tr_base64(der, (size_t)len);

		if (b64)
			json_object_set_new(a->json, "certificate", json_string(b64));
		free(b64);
	}
out:
	OPENSSL_free(der);
	X509_free(old);
	X509_free(cert);
	free(from);
	free(name);
	return error;
}

static int do_token_revoke(tr_case *c, answer *a)
{
	X509 *cert = NULL;
	fx_pki *pki;
	role *r;
	int error;

	if ((error = step_role(c, &r)) < 0 || (error = case_pki(c, &pki)) < 0)
		return error;
	if ((error = role_cert(r, &cert)) < 0)
		return token_step_result(c, r, error, a);
	error = fx_pki_revoke(pki, cert);
	X509_free(cert);
	if (error < 0)
		return error;
	a->json = json_pack("{s:b, s:s}", "ok", 1, "code", "OK");
	return 0;
}

/* --- the action table --------------------------------------------------- */

/*
 * Every action: its keys (the scenario schema) and its function (the
 * dispatch). suites/README.md's action table lists the same names and keys
 * (suites/unit/test_actions.c compares them).
 */
static const tr_action actions[] = {
	{ "ca-login", { "site" }, { "pin", "token", "assistant", "select", "challenge",
				   "browser" }, NULL, do_ca_login },
	{ "request", { "method", "path" }, { "session", "body" }, "json.", do_request },
	{ "sign-submit", { "site", "document" },
	  { "path", "token", "pin", "session", "send_document" }, NULL, do_sign_submit },
	{ "token-login", { 0 }, { "pin", "token" }, NULL, do_token_login },
	{ "token-logout", { 0 }, { "token" }, NULL, do_token_logout },
	{ "token-control", { 0 },
	  { "token", "present", "remove_during", "fault", "latency", "driver", "max_tries" }, NULL,
	  do_token_control },
	{ "token-change-pin", { "new" }, { "old", "token" }, NULL, do_token_change_pin },
	{ "token-reset-pin", { 0 }, { "so", "new", "token" }, NULL, do_token_reset_pin },
	{ "token-sign", { "data" }, { "pin", "token" }, NULL, do_token_sign },
	{ "token-info", { 0 }, { "token", "select", "at" }, NULL, do_token_info },
	{ "token-keygen", { 0 }, { "token", "algorithm" }, NULL, do_token_keygen },
	{ "token-write-cert", { "certificate" }, { "token" }, NULL, do_token_write_cert },
	{ "token-renew", { 0 }, { "token", "valid_from", "name" }, NULL, do_token_renew },
	{ "token-revoke", { 0 }, { "token" }, NULL, do_token_revoke },
	{ "page-refresh", { "site" }, { 0 }, NULL, do_page_refresh },
};

const tr_action *tr_action_at(size_t i)
{
	return i < sizeof(actions) / sizeof(actions[0]) ? &actions[i] : NULL;
}

const tr_action *tr_action_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i].name, name))
			return &actions[i];
	return NULL;
}

int tr_action_takes(const tr_action *a, const char *key)
{
	size_t plen = a->prefix ? strlen(a->prefix) : 0;

	if (!strcmp(key, "do") || !strcmp(key, "note") ||
	    (!strncmp(key, "expect.", 7) && key[7]) || (!strncmp(key, "save.", 5) && key[5]))
		return 1;
	if (plen && !strncmp(key, a->prefix, plen) && key[plen])
		return 1;
	for (int i = 0; i < TR_ACTION_MAX_REQUIRED && a->required[i]; i++)
		if (!strcmp(a->required[i], key))
			return 1;
	for (int i = 0; i < TR_ACTION_MAX_OPTIONAL && a->optional[i]; i++)
		if (!strcmp(a->optional[i], key))
			return 1;
	return 0;
}

/* --- checks ------------------------------------------------------------- */

/* The answer's value at a dotted path, rendered as text. */
static void render_path(const answer *a, const char *path, char *out, size_t len)
{
	json_t *v = a->json;
	char seg[128];
	const char *p = path;

	if (!strcmp(path, "status")) {
		snprintf(out, len, "%ld", a->status);
		return;
	}
	/* body.X: the answer's own field X, even where X is "status". */
	if (!strncmp(path, "body.", 5))
		p = path + 5;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(seg))
			n = sizeof(seg) - 1;
		memcpy(seg, p, n);
		seg[n] = '\0';
		v = json_object_get(v, seg);
		p = dot ? dot + 1 : p + n;
	}
	if (!v) {
		snprintf(out, len, "(absent)");
	} else if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_true(v) || json_is_false(v)) {
		snprintf(out, len, "%s", json_is_true(v) ? "true" : "false");
	} else if (json_is_null(v)) {
		snprintf(out, len, "null");
	} else {
		char *s = json_dumps(v, JSON_COMPACT);

		snprintf(out, len, "%s", s ? s : "?");
		free(s);
	}
}

static void describe_answer(const answer *a, char *out, size_t len)
{
	json_t *copy = json_deep_copy(a->json);
	char *s;

	/* Sessions are bearer secrets of the mock; no need to spread them. */
	if (json_object_get(copy, "session"))
		json_object_set_new(copy, "session", json_string("(hidden)"));
	s = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
	snprintf(out, len, "HTTP %ld %s", a->status, s ? s : "(no body)");
	free(s);
	json_decref(copy);
}

static int check_answer(tr_case *c, const answer *a, tr_case_failure *fail)
{
	int checked = 0, error;

	for (size_t i = 0; i < c->step->n_kv; i++) {
		const tr_kv *kv = &c->step->kv[i];
		char actual[8192], *want;

		if (strncmp(kv->key, "expect.", 7))
			continue;
		checked = 1;
		if ((error = resolve(c, kv->value, &want)) < 0)
			return error;
		render_path(a, kv->key + 7, actual, sizeof(actual));
		if (strcmp(actual, want) != 0) {
			snprintf(fail->expected, sizeof(fail->expected), "%.100s = %.900s", kv->key + 7, want);
			describe_answer(a, fail->actual, sizeof(fail->actual));
			snprintf(fail->message, sizeof(fail->message),
				 "%.200s:%d: %.60s is '%.300s', expected '%.300s'", c->sc->path, kv->line,
				 kv->key + 7, actual, want);
			free(want);
			return TR_ERROR;
		}
		free(want);
	}
	if (!checked && !answer_ok(a)) {
		snprintf(fail->expected, sizeof(fail->expected), "ok = true");
		describe_answer(a, fail->actual, sizeof(fail->actual));
		snprintf(fail->message, sizeof(fail->message), "%s:%d: the step was refused",
			 c->sc->path, c->step->line);
		return TR_ERROR;
	}
	return 0;
}

static int save_vars(tr_case *c, const answer *a, tr_case_failure *fail)
{
	for (size_t i = 0; i < c->step->n_kv; i++) {
		const tr_kv *kv = &c->step->kv[i];
		char value[8192]; /* an RSA certificate in base64 is ~1.1 KB */

		if (strncmp(kv->key, "save.", 5))
			continue;
		render_path(a, kv->value, value, sizeof(value));
		if (strlen(value) + 1 >= sizeof(value)) {
			snprintf(fail->message, sizeof(fail->message),
				 "%s:%d: the value of '%s' is longer than %zu bytes", c->sc->path,
				 kv->line, kv->value, sizeof(value) - 1);
			return TR_ERROR;
		}
		if (!strcmp(value, "(absent)")) {
			snprintf(fail->message, sizeof(fail->message),
				 "%s:%d: cannot save %s: the answer has no '%s'", c->sc->path,
				 kv->line, kv->key + 5, kv->value);
			describe_answer(a, fail->actual, sizeof(fail->actual));
			return TR_ERROR;
		}
		json_object_set_new(c->vars, kv->key + 5, json_string(value));
	}
	return 0;
}

/* --- the case ----------------------------------------------------------- */

int tr_case_new(tr_case **out, const tr_scenario *sc, tr_env *env,
		tr_portal_client *pc, tr_token_ctl *ctl, const char *kind,
		const char *algorithm, tr_case_timing timing)
{
	tr_case *c = calloc(1, sizeof(*c));
	const tr_token_ref *tokens;
	size_t n;

	if (!c)
		return tr_error_set(TR_ENOMEM, "out of memory");
	c->sc = sc;
	c->env = env;
	c->pc = pc;
	c->ctl = ctl;
	c->kind = kind;
	c->algorithm = algorithm;
	c->timing = timing;
	c->vars = json_object();
	c->texts = json_object();
	c->stale = json_object();
	c->warnings = json_array();
	c->log = json_array();
	tokens = tr_env_tokens(env, &n);
	for (size_t i = 0; i < n && c->n_roles < MAX_ROLES; i++) {
		const tr_token_ref *t = &tokens[i];
		char prefix[16];

		if (strcmp(t->portal, sc->portal) || strcmp(t->kind, kind) ||
		    strcmp(t->algorithm, algorithm))
			continue;
		c->roles[c->n_roles].owner = c;
		c->roles[c->n_roles++].ref = t;
		snprintf(prefix, sizeof(prefix), "%s.", t->role);
		add_role_vars(c, t, prefix);
		if (!strcmp(t->role, sc->token))
			add_role_vars(c, t, "");
	}
	*out = c;
	return 0;
}

int tr_case_finish(tr_case *c)
{
	int error = 0;

	if (c->ctl && (error = tr_token_ctl_reset(c->ctl)) < 0)
		return error;
	/*
	 * The next case finds every PIN as provisioned, unblocked (a virtual
	 * card is simply reloaded from its image before the next case).
	 */
	for (size_t i = 0; i < c->n_roles; i++) {
		role *r = &c->roles[i];

		if (!r->pin_dirty || r->ref->card >= 0)
			continue;
		if (!tr_kind_has(r->ref->kind, TR_KIND_PUK_RESET)) {
			/* No SO PIN: the PIN changed back, a right PIN resets the counter. */
			if ((error = role_open(r, NULL)) < 0 ||
			    (r->cur_pin[0] &&
			     (error = tr_token_change_pin(r->tok, r->cur_pin, r->ref->pin)) < 0) ||
			    (error = tr_token_login(r->tok, r->ref->pin)) < 0)
				return tr_error_set(error, "restoring the PIN of %s: %s", r->ref->label,
						    tr_error_last());
			tr_token_logout(r->tok);
			r->cur_pin[0] = '\0';
			r->pin_dirty = 0;
			r->logged_in = 0;
			continue;
		}
		if ((error = role_open(r, NULL)) < 0 ||
		    (error = tr_token_reset_pin(r->tok, r->ref->so_pin, r->ref->pin)) < 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", tr_error_last());
			return tr_error_set(error, "restoring the PIN of %s: %s", r->ref->label, why);
		}
		r->pin_dirty = 0;
		r->cur_pin[0] = '\0';
		r->logged_in = 0;
	}
	for (size_t i = 0; i < c->n_roles; i++) {
		role *r = &c->roles[i];

		if (!r->cert_dirty || r->ref->card >= 0)
			continue;
		if ((error = role_ready(c, r)) < 0 ||
		    (error = tr_token_restore(r->tok, r->ref->cert_der, r->ref->cert_len)) < 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", tr_error_last());
			return tr_error_set(error, "restoring the certificate of %s: %s",
					    r->ref->label, why);
		}
		r->cert_dirty = 0;
	}
	return 0;
}

void tr_case_free(tr_case *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_roles; i++) {
		tr_token_close(c->roles[i].tok);
		/* The reader's driver as installed for the next case, whatever happened. */
		if (c->roles[i].pcsc_driver)
			tr_token_pcsc_set_driver(c->roles[i].ref->reader, "present");
	}
	fx_pki_free(c->pki);
	json_decref(c->vars);
	json_decref(c->texts);
	json_decref(c->stale);
	json_decref(c->warnings);
	json_decref(c->log);
	free(c);
}

/* One warning of the case, once (the step running names where). */
static void add_warning(tr_case *c, const char *message)
{
	json_t *seen, *m = json_string(message);
	size_t k;

	json_array_foreach(c->warnings, k, seen)
		if (json_equal(json_object_get(seen, "message"), m)) {
			json_decref(m);
			return;
		}
	json_array_append_new(c->warnings, json_pack("{s:s, s:o}", "step",
						     c->step ? c->step->name : "", "message", m));
}

/*
 * A portal's "warnings" (SC-W01's environment check) do not stop a flow, yet
 * a person must see them: each becomes a warning of the case, once.
 */
static void keep_warnings(tr_case *c, const answer *a)
{
	json_t *list = a->status ? json_object_get(a->json, "warnings") : NULL, *w, *seen;
	size_t i, k;

	json_array_foreach(list, i, w) {
		int dup = 0;

		if (!json_is_string(w))
			continue;
		json_array_foreach(c->warnings, k, seen)
			dup |= json_equal(json_object_get(seen, "message"), w);
		if (!dup)
			json_array_append_new(c->warnings,
					      json_pack("{s:s, s:O}", "step", c->step->name,
							"message", w));
	}
}

const json_t *tr_case_warnings(const tr_case *c)
{
	return c->warnings;
}

const json_t *tr_case_log(const tr_case *c)
{
	return c->log;
}

/*
 * One line of the case's log: the step and the gist of its answer (status,
 * ok, code), or why it was not carried out. Never a value the step sent.
 */
static void log_step(tr_case *c, size_t i, const answer *a, const char *not_done)
{
	const char *code = a && a->json ? json_string_value(json_object_get(a->json, "code")) : NULL;
	char line[512];

	if (not_done)
		snprintf(line, sizeof(line), "[%zu] %s (%s, line %d): %.300s", i + 1, c->step->name,
			 c->step->action, c->step->line, not_done);
	else if (a->status)
		snprintf(line, sizeof(line), "[%zu] %s (%s, line %d): HTTP %ld %s%s%s", i + 1,
			 c->step->name, c->step->action, c->step->line, a->status,
			 answer_ok(a) ? "ok" : "refused", code ? " " : "", code ? code : "");
	else
		snprintf(line, sizeof(line), "[%zu] %s (%s, line %d): %s %s", i + 1, c->step->name,
			 c->step->action, c->step->line, answer_ok(a) ? "ok" : "client-side",
			 code ? code : "");
	json_array_append_new(c->log, json_string(line));
}

tr_case_outcome tr_case_outcome_of(int step_error)
{
	switch (step_error) {
	case 0:
		return TR_CASE_PASS;
	case TR_STEP_ESKIP:
		return TR_CASE_SKIP;
	case TR_KIND_EBRICK:
		return TR_CASE_STOP;
	case TR_EDEPEND: /* a module, daemon or package the rig needs is missing */
	case TR_ENOMEM:
		return TR_CASE_RIG_ERROR;
	default:
		return TR_CASE_FAIL;
	}
}

tr_case_outcome tr_case_run(tr_case *c, tr_case_failure *fail)
{
	memset(fail, 0, sizeof(*fail));
	for (size_t i = 0; i < c->sc->n_steps; i++) {
		const tr_action *act;
		tr_case_outcome outcome;
		answer a = { 0 };
		int error;

		c->step = &c->sc->steps[i];
		snprintf(fail->step, sizeof(fail->step), "%s (%s, line %d)", c->step->name,
			 c->step->action, c->step->line);
		act = tr_action_find(c->step->action);
		error = act ? act->run(c, &a) :
			step_error(c, TR_EINVAL, "no such action (not in the action table)");
		outcome = act ? tr_case_outcome_of(error) : TR_CASE_RIG_ERROR;

		if (error < 0)
			log_step(c, i, NULL, tr_error_last());
		if (outcome == TR_CASE_STOP || outcome == TR_CASE_SKIP) {
			/*
			 * STOP: never brick a real key, the run stops touching
			 * this token. SKIP: the kind cannot do what the step asks,
			 * not a failure.
			 */
			snprintf(fail->message, sizeof(fail->message), "step '%s': %s",
				 c->step->name, tr_error_last());
			answer_clear(&a);
			return outcome;
		}
		if (error < 0) {
			/* The step could not be carried out at all. */
			snprintf(fail->message, sizeof(fail->message), "%s", tr_error_last());
			snprintf(fail->actual, sizeof(fail->actual), "no answer: %s", tr_error_last());
			answer_clear(&a);
			return outcome;
		}
		log_step(c, i, &a, NULL);
		keep_warnings(c, &a);
		error = check_answer(c, &a, fail);
		if (!error)
			error = save_vars(c, &a, fail);
		answer_clear(&a);
		if (error < 0) {
			if (!fail->message[0])
				snprintf(fail->message, sizeof(fail->message), "%s", tr_error_last());
			return tr_case_outcome_of(error);
		}
	}
	fail->step[0] = '\0';
	return TR_CASE_PASS;
}
