/*
 * `tokenrig certify`: the batch, one worker per token. Each worker takes its
 * token through inventory, provisioning, the catalog (tr_engine_run on an
 * env whose tokens are this one), latency, cleanup and the final check; the
 * main thread then writes the verdict (certify_verdict.c does the logic).
 */
#include "harness/certify.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/utf8.h"
#include "common/fsutil.h"
#include "common/p11key.h"
#include "common/p11mod.h"
#include "common/paths.h"
#include "fixtures/pki.h"
#include "harness/engine.h"
#include "harness/env.h"
#include "harness/kinds.h"
#include "harness/portal_client.h"
#include "harness/profiles.h"
#include "harness/report.h"
#include "harness/scenario.h"
#include "harness/stats.h"
#include "harness/token.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOKENS 64
#define LABEL_PREFIX "tokenrig-"
#define DEFAULT_SEED 20260921u
#define SECOND_INTERRUPT_MS 500

typedef struct cert_opts {
	const char *module_arg, *token_uri, *pin_env, *pin_file, *so_pin_env;
	const char *out, *suites, *filter, *profiles;
	const char *mgmt_env;   /* the PIV management key's variable (never its value) */
	const char *trust;      /* certified on its own certificate: the portals trust this */
	char module_path[PATH_MAX];
	char readers[8192];     /* --reader names, NUL-separated; readers_all: --readers all */
	size_t readers_len;
	int readers_all, pcsc;
	const char *kind;       /* TR_KIND_MODULE or TR_KIND_READER */
	/* What the engine runs: OUT/catalog when certify chose the scenarios (build_catalog). */
	const char *engine_suites, *engine_filter;
	char catalog_dir[PATH_MAX];
	json_t *pre_skipped;    /* cases certify skipped itself: {status, ids, message} */
	char pin[32], so_pin[32];  /* tr_token_ref's size */
	int destructive, cleanup, tty;
	unsigned count, case_timeout_ms;
	uint64_t seed;
} cert_opts;

/* The key pairs the rig made on a token: one per algorithm it has. */
static const struct {
	const char *name;
	int rsa;
	fx_key_alg alg;
	CK_MECHANISM_TYPE gen, sign;
} algs[] = {
	{ "p256", 0, FX_KEY_EC_P256, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA },
	{ "rsa2048", 1, FX_KEY_RSA_2048, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_SHA256_RSA_PKCS },
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

typedef struct worker {
	const cert_opts *o;
	tr_p11mod *mod;
	CK_FUNCTION_LIST *fn;
	CK_SLOT_ID slot;
	char serial[40], label[40], token_uri[600], dir[PATH_MAX];
	tr_env *env;
	json_t *inventory, *objects_before, *latency, *extra_failed, *final_check, *results;
	char phase[160];
	char first_line[600];   /* said first in the report: a token left locked */
	unsigned char key_id[N_ALGS];
	int have_alg[N_ALGS];
	int stopped;            /* never brick: nothing more touches the token */
	pthread_t thread;
	int started;
	size_t index;
	/* A card in a reader (certify --readers), through the PC/SC backend. */
	int pcsc;
	char reader[256], atr[80];
	unsigned char *orig_cert;  /* the card's 9A certificate before the run */
	size_t orig_len;
	int tries_start;           /* the card's PIN tries before the run (-1 unknown) */
	char saved[PATH_MAX + 32]; /* where orig_cert is kept for --cleanup */
	/* Certified on its own certificate (--trust). */
	char own_uri[800], own_alg[16];
	/* What may be left on the token, for a second interrupt's report. */
	size_t objects_made;
	int cert_written;
	int finished;
} worker;

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t interrupted;  /* 1: finish the undo; 2: exit at once */
static volatile sig_atomic_t last_signal;
static volatile sig_atomic_t watching;     /* the main thread acts on a second interrupt */
static volatile int stop_engines;
static worker *all_workers;
static size_t n_all_workers;
/*
 * Latency is measured token after token once every catalog is done: a
 * token timed while the others run their cases would look slow for them.
 */
static pthread_mutex_t latency_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t catalogs_cond = PTHREAD_COND_INITIALIZER;
static size_t catalogs_running;

static void catalog_done(void)
{
	pthread_mutex_lock(&latency_lock);
	catalogs_running--;
	pthread_cond_broadcast(&catalogs_cond);
	pthread_mutex_unlock(&latency_lock);
}

/* Waits for every catalog, then holds the latency lock: one token timed at a time. */
static void latency_turn(void)
{
	pthread_mutex_lock(&latency_lock);
	while (catalogs_running > 0)
		pthread_cond_wait(&catalogs_cond, &latency_lock);
}

/* --- small helpers ------------------------------------------------------ */

/* JSON wants UTF-8: a byte that breaks it becomes '?' (the raw bytes go as hex). */
static void utf8_sanitize(char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
			     (c & 0xF8) == 0xF0 ? 4 : 0;

		if (len && i + len <= n && tr_utf8_valid((const unsigned char *)s + i, len)) {
			i += len;
			continue;
		}
		s[i++] = '?';
	}
}

static void hex_of(const unsigned char *v, size_t n, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o + 3 <= len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", v[i]);
}

static void set_phase(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_phase(worker *w, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&print_lock);
	va_start(ap, fmt);
	vsnprintf(w->phase, sizeof(w->phase), fmt, ap);
	va_end(ap);
	if (!w->o->tty) {
		printf("%-16s %s\n", w->serial, w->phase);
		fflush(stdout);
	}
	pthread_mutex_unlock(&print_lock);
}

/*
 * A case that spent PIN tries (TK-E01) leaves a card's counter short, where
 * the rig's own cards are reloaded: after each case a login with the
 * user's PIN puts it back to its maximum, so that the next case reads the
 * counter (63Cx) as a fresh card would. Only with two tries or more left,
 * and never once the rig stopped touching the card: a case that changed
 * the PIN and could not put it back would make this login a wrong try, and
 * at the final one it would block the card.
 */
static void card_between_cases(worker *w)
{
	tr_token *tok = NULL;

	if (!w->stopped && tr_token_open_pcsc(&tok, w->reader) == 0 &&
	    tr_token_pin_tries(tok) > 1 && tr_token_login(tok, w->o->pin) == 0)
		tr_token_logout(tok);
	tr_token_close(tok);
}

/* The engine's progress: on the live line only (plain output says the phases). */
static void on_case(void *arg, size_t done, size_t total)
{
	worker *w = arg;

	if (w->pcsc)
		card_between_cases(w);
	pthread_mutex_lock(&print_lock);
	snprintf(w->phase, sizeof(w->phase), "catalog: %zu/%zu cases", done, total);
	pthread_mutex_unlock(&print_lock);
}

static void add_failure(worker *w, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_failure(worker *w, const char *id, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(w->extra_failed, json_pack("{s:s, s:s, s:s, s:s}", "id", id,
							 "message", msg, "expected", "",
							 "actual", msg));
}

static CK_RV open_rw(worker *w, CK_SESSION_HANDLE *s)
{
	return w->fn->C_OpenSession(w->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

static CK_RV user_login(worker *w, CK_SESSION_HANDLE s, const char *pin)
{
	CK_RV rv = w->fn->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));

	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* --- inventory ---------------------------------------------------------- */

/* Every object the session sees, "class label id" sorted: the before/after proof. */
#define OBJECT_LINE 700

/* An object as the inventory lists it: "class=N label=L id=HEX". */
static void object_line(worker *w, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, char *line,
			size_t len)
{
	CK_OBJECT_CLASS cls = 0;
	unsigned char label[256], id[128];
	CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof(cls) },
			     { CKA_LABEL, label, sizeof(label) - 1 },
			     { CKA_ID, id, sizeof(id) } };
	char idhex[260], lab[256];

	w->fn->C_GetAttributeValue(s, obj, a, 3);
	if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[1].ulValueLen >= sizeof(label))
		a[1].ulValueLen = 0;
	if (a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[2].ulValueLen > sizeof(id))
		a[2].ulValueLen = 0;
	memcpy(lab, label, a[1].ulValueLen);
	lab[a[1].ulValueLen] = '\0';
	hex_of(id, a[2].ulValueLen, idhex, sizeof(idhex));
	snprintf(line, len, "class=%lu label=%s id=%s", (unsigned long)cls, lab, idhex);
}

static int object_list(worker *w, CK_SESSION_HANDLE s, json_t **out)
{
	CK_OBJECT_HANDLE objs[64];
	CK_ULONG n;
	json_t *list = json_array();
	CK_RV rv = w->fn->C_FindObjectsInit(s, NULL, 0);

	while (rv == CKR_OK && (rv = w->fn->C_FindObjects(s, objs, 64, &n)) == CKR_OK && n > 0) {
		for (CK_ULONG i = 0; i < n; i++) {
			char line[OBJECT_LINE];

			object_line(w, s, objs[i], line, sizeof(line));
			json_array_append_new(list, json_string(line));
		}
	}
	w->fn->C_FindObjectsFinal(s);
	if (rv != CKR_OK) {
		json_decref(list);
		return tr_error_set(TR_EIO, "listing objects: %s", tr_p11_rv_name(rv));
	}
	/* Sorted, so that two lists compare as sets. */
	{
		size_t n_items = json_array_size(list);
		const char **v = calloc(n_items + 1, sizeof(*v));
		json_t *sorted = json_array();

		for (size_t i = 0; v && i < n_items; i++)
			v[i] = json_string_value(json_array_get(list, i));
		for (size_t i = 0; v && i < n_items; i++)
			for (size_t j = i + 1; j < n_items; j++)
				if (strcmp(v[j], v[i]) < 0) {
					const char *t = v[i];

					v[i] = v[j];
					v[j] = t;
				}
		for (size_t i = 0; v && i < n_items; i++)
			json_array_append_new(sorted, json_string(v[i]));
		free(v);
		json_decref(list);
		*out = sorted;
	}
	return 0;
}

static int inventory_card(worker *w);

/*
 * The objects before the run, on disk at once (DIR/tokens/SERIAL/
 * objects-before.json): a run killed outright leaves its inventory, and
 * `--cleanup --out DIR` removes whatever is not in it, even an object a
 * kill tore in half inside C_CreateObject (no label left to know it by).
 */
static int save_objects_before(worker *w)
{
	char path[PATH_MAX + 64], *text;
	int error;

	if ((error = tr_fs_join(path, sizeof(path), w->dir, "objects-before.json")) < 0 ||
	    (error = tr_fs_mkdirs(w->dir, 0755)) < 0)
		return error;
	if (!(text = json_dumps(w->objects_before, JSON_INDENT(1))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	error = tr_fs_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return error;
}

/*
 * The token is as it was (the final check passed): the undo files of a
 * killed run go, or a later `--cleanup --out DIR` would remove objects made
 * since and write this 9A certificate over a renewed one.
 */
static void forget_undo_files(worker *w)
{
	char path[PATH_MAX + 64];

	if (!json_is_true(json_object_get(w->final_check, "ok")))
		return;
	if (tr_fs_join(path, sizeof(path), w->dir, "objects-before.json") == 0)
		unlink(path);
	unlink(w->saved);
}

/* The killed run's inventory for --cleanup, if --out has one; else NULL. */
static json_t *load_objects_before(const worker *w)
{
	char path[PATH_MAX + 64], *text = NULL;
	json_t *list = NULL;

	if (tr_fs_join(path, sizeof(path), w->dir, "objects-before.json") == 0 &&
	    tr_fs_read_all(path, 1 << 22, &text, NULL) == 0)
		list = json_loads(text, 0, NULL);
	free(text);
	if (list && !json_is_array(list)) {
		json_decref(list);
		list = NULL;
	}
	return list;
}

static int inventory(worker *w)
{
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	CK_MECHANISM_TYPE mechs[256];
	CK_ULONG n_mechs = 256;
	CK_SESSION_HANDLE s;
	json_t *mj = json_array(), *inv;
	char s1[80], s2[80], s3[80];
	size_t label_len;
	CK_RV rv;
	int error;

	if (w->pcsc) {
		json_decref(mj);
		return inventory_card(w);
	}
	if ((rv = w->fn->C_GetTokenInfo(w->slot, &ti)) != CKR_OK ||
	    (rv = w->fn->C_GetSlotInfo(w->slot, &si)) != CKR_OK) {
		json_decref(mj);
		return tr_error_set(TR_EIO, "C_GetTokenInfo: %s", tr_p11_rv_name(rv));
	}
	if (w->fn->C_GetMechanismList(w->slot, mechs, &n_mechs) != CKR_OK)
		n_mechs = 0;
	for (CK_ULONG i = 0; i < n_mechs; i++) {
		CK_MECHANISM_INFO mi;
		char name[24];

		/* SoftHSM 2.6.1 ORs flags into the caller's buffer: start from zero. */
		memset(&mi, 0, sizeof(mi));
		w->fn->C_GetMechanismInfo(w->slot, mechs[i], &mi);
		snprintf(name, sizeof(name), "0x%08lx", (unsigned long)mechs[i]);
		json_array_append_new(mj, json_pack("{s:s, s:I, s:I, s:I}", "mechanism", name,
						    "min_key", (json_int_t)mi.ulMinKeySize,
						    "max_key", (json_int_t)mi.ulMaxKeySize,
						    "flags", (json_int_t)mi.flags));
		for (size_t a = 0; a < N_ALGS; a++)
			if (mechs[i] == algs[a].gen && (!algs[a].rsa || mi.ulMaxKeySize >= 2048))
				w->have_alg[a] |= 1;
			else if (mechs[i] == algs[a].sign)
				w->have_alg[a] |= 2;
	}
	for (size_t a = 0; a < N_ALGS; a++)
		w->have_alg[a] = w->have_alg[a] == 3;
	label_len = sizeof(ti.label);
	while (label_len > 0 && ti.label[label_len - 1] == ' ')
		label_len--;
	tr_p11_string(s1, sizeof(s1), ti.manufacturerID, sizeof(ti.manufacturerID));
	tr_p11_string(s2, sizeof(s2), ti.model, sizeof(ti.model));
	tr_p11_string(s3, sizeof(s3), si.slotDescription, sizeof(si.slotDescription));
	utf8_sanitize(s1);
	utf8_sanitize(s2);
	utf8_sanitize(s3);
	inv = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:I, s:{s:I, s:I, s:b, s:b, s:b}, s:o}",
			"manufacturer", s1, "model", s2, "serial", w->serial, "label", w->label,
			"label_utf8", tr_utf8_valid(ti.label, label_len), "slot", s3,
			"hardware", "", "firmware", "", "flags", (json_int_t)ti.flags,
			"pin_policy", "min_len", (json_int_t)ti.ulMinPinLen,
			"max_len", (json_int_t)ti.ulMaxPinLen,
			"count_low", (ti.flags & CKF_USER_PIN_COUNT_LOW) != 0,
			"final_try", (ti.flags & CKF_USER_PIN_FINAL_TRY) != 0,
			"locked", (ti.flags & CKF_USER_PIN_LOCKED) != 0,
			"mechanisms", mj);
	if (!inv) {
		json_decref(mj);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	hex_of(ti.label, label_len, s1, sizeof(s1));
	json_object_set_new(inv, "label_hex", json_string(s1));
	snprintf(s1, sizeof(s1), "%u.%u", ti.hardwareVersion.major, ti.hardwareVersion.minor);
	json_object_set_new(inv, "hardware", json_string(s1));
	snprintf(s1, sizeof(s1), "%u.%u", ti.firmwareVersion.major, ti.firmwareVersion.minor);
	json_object_set_new(inv, "firmware", json_string(s1));
	w->inventory = inv;
	if (!tr_utf8_valid(ti.label, label_len))
		add_failure(w, "CERT-INVENTORY", "the token label is not valid UTF-8 (middleware cut "
			    "a character?)");
	if (ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY)) {
		w->stopped = 1;
		snprintf(w->first_line, sizeof(w->first_line), "the token's PIN is %s before the "
			 "run: nothing was tried on it", ti.flags & CKF_USER_PIN_LOCKED ? "locked" :
			 "at its final try");
		add_failure(w, "CERT-INVENTORY", "%s", w->first_line);
		return 0;
	}
	/* The objects as the user sees them: a right PIN, read-only use. */
	if ((rv = open_rw(w, &s)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_OpenSession: %s", tr_p11_rv_name(rv));
	if ((rv = user_login(w, s, w->o->pin)) != CKR_OK) {
		w->fn->C_CloseSession(s);
		w->stopped = 1;
		snprintf(w->first_line, sizeof(w->first_line), "the given PIN was refused (%s): "
			 "nothing more was tried on the token", tr_p11_rv_name(rv));
		add_failure(w, "CERT-INVENTORY", "%s", w->first_line);
		return 0;
	}
	error = object_list(w, s, &w->objects_before);
	w->fn->C_Logout(s);
	w->fn->C_CloseSession(s);
	if (!error) {
		json_object_set(w->inventory, "objects", w->objects_before);
		error = save_objects_before(w);
	}
	return error;
}

/* --- cards in readers, and tokens certified on their own certificate ---- */

static const char *alg_name(tr_sign_alg alg)
{
	return alg == TR_SIGN_ECDSA_SHA256 ? "p256" : alg == TR_SIGN_RSA_PKCS1_SHA256 ? "rsa2048" :
	       alg == TR_SIGN_SM2_SM3 ? "sm2" : "";
}

/* The catalog's name of a certificate's key: p256, rsa2048, sm2; "" for another. */
static const char *key_alg_name(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char group[64] = "";
	size_t glen = 0;

	if (!k)
		return "";
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
		return EVP_PKEY_get_bits(k) == 2048 ? "rsa2048" : "";
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_SM2)
		return "sm2";
	if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) != 1)
		return "";
	return !strcmp(group, "prime256v1") ? "p256" : !strcmp(group, "SM2") ? "sm2" : "";
}

static void cert_sha256(const unsigned char *der, size_t len, char *hex, size_t hex_len)
{
	unsigned char md[32];

	EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL);
	hex_of(md, sizeof(md), hex, hex_len);
}

/* A name as RFC 2253 text, UTF-8 kept (a Chinese unit name stays readable). */
static char *name_utf8(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long n;

	if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) >= 0 && (out = OPENSSL_malloc((size_t)n + 1))) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	return out;
}

static json_t *cert_json(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	char hex[65], *subj, *iss;
	json_t *o;

	cert_sha256(der, len, hex, sizeof(hex));
	if (!x)
		return json_pack("{s:s, s:b}", "sha256", hex, "parsed", 0);
	subj = name_utf8(X509_get_subject_name(x));
	iss = name_utf8(X509_get_issuer_name(x));
	if (subj)
		utf8_sanitize(subj);
	if (iss)
		utf8_sanitize(iss);
	o = json_pack("{s:s, s:s, s:s, s:s}", "sha256", hex, "subject", subj ? subj : "",
		      "issuer", iss ? iss : "", "key", key_alg_name(x));
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	X509_free(x);
	return o;
}

static void cert_line(const unsigned char *der, size_t len, char *out, size_t out_len)
{
	char hex[65];

	cert_sha256(der, len, hex, sizeof(hex));
	snprintf(out, out_len, "9A certificate sha256=%s", hex);
}

/*
 * A card: what the PC/SC backend reads (certificate, algorithm, tries
 * counter) and the reader's ATR and CHUID read before; the PIN checked
 * unless the card is at its final try.
 */
static int inventory_card(worker *w)
{
	tr_token *tok = NULL;
	const unsigned char *der;
	char line[120];
	size_t len;
	int error, tries;

	if ((error = tr_token_open_pcsc(&tok, w->reader)) < 0 ||
	    (error = tr_token_certificate(tok, &der, &len)) < 0)
		goto out;
	if (!(w->orig_cert = malloc(len))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(w->orig_cert, der, len);
	w->orig_len = len;
	snprintf(w->own_alg, sizeof(w->own_alg), "%s", alg_name(tr_token_sign_alg(tok)));
	tries = tr_token_pin_tries(tok);
	/*
	 * -1: the card says nothing while its PIN is still verified from an
	 * earlier session; a right PIN costs no try: log in and out, read again.
	 */
	if (tries < 0 && tr_token_login(tok, w->o->pin) == 0 && tr_token_logout(tok) == 0) {
		tr_token_close(tok);
		tok = NULL;
		if ((error = tr_token_open_pcsc(&tok, w->reader)) < 0)
			goto out;
		tries = tr_token_pin_tries(tok);
	}
	w->tries_start = tries;
	/* model: the ATR names the card and its applet; pin_policy: the retry counter. */
	w->inventory = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:[s], s:{s:i}, s:o}",
				 "reader", w->reader, "atr", w->atr, "serial", w->serial,
				 "label", w->label, "manufacturer", "", "model", w->atr,
				 "hardware", "", "firmware", "", "label_utf8", 1,
				 "mechanisms", w->own_alg, "pin_policy", "tries_at_start", tries,
				 "certificate", cert_json(w->orig_cert, w->orig_len));
	cert_line(w->orig_cert, w->orig_len, line, sizeof(line));
	w->objects_before = json_pack("[s]", line);
	json_object_set(w->inventory, "objects", w->objects_before);
	if (tries == 0 || tries == 1) {
		w->stopped = 1;
		snprintf(w->first_line, sizeof(w->first_line), "the card's PIN is %s before the run "
			 "(63C%d): nothing was tried on it", tries ? "at its final try" : "blocked", tries);
		add_failure(w, "CERT-INVENTORY", "%s", w->first_line);
		goto out;
	}
	if ((error = tr_token_login(tok, w->o->pin)) < 0) {
		w->stopped = 1;
		snprintf(w->first_line, sizeof(w->first_line), "the given PIN was refused (%s): "
			 "nothing more was tried on the card", tr_token_error_name(error));
		add_failure(w, "CERT-INVENTORY", "%s: %s", w->first_line, tr_error_last());
		error = 0;
		goto out;
	}
	tr_token_logout(tok);
out:
	tr_token_close(tok);
	return error;
}

/* 1 when the certificate chains to a CA of --trust (the portals will be told to accept it). */
static int trusted(const char *trust, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = 0;

	if (x && store && ctx && X509_STORE_load_file(store, trust) == 1 &&
	    X509_STORE_CTX_init(ctx, store, x, NULL) == 1) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
		ok = X509_verify_cert(ctx) == 1;
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(x);
	return ok;
}

/*
 * The token's own certificate through its PKCS#11 module: the one with the
 * lowest CKA_ID that has its private key and chains to --trust.
 */
static int find_own_cert_p11(worker *w)
{
	CK_OBJECT_CLASS cert_cls = CKO_CERTIFICATE, key_cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cert_cls, sizeof(cert_cls) };
	CK_OBJECT_HANDLE objs[32];
	CK_SESSION_HANDLE s;
	CK_ULONG n = 0;
	unsigned char best_id[64];
	CK_ULONG best_id_len = 0;
	int found = 0, error = 0;
	CK_RV rv;

	if ((rv = open_rw(w, &s)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_OpenSession: %s", tr_p11_rv_name(rv));
	if ((rv = user_login(w, s, w->o->pin)) != CKR_OK) {
		error = tr_error_set(TR_EIO, "C_Login: %s", tr_p11_rv_name(rv));
		goto out;
	}
	if ((rv = w->fn->C_FindObjectsInit(s, &tmpl, 1)) == CKR_OK) {
		rv = w->fn->C_FindObjects(s, objs, 32, &n);
		w->fn->C_FindObjectsFinal(s);
	}
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		unsigned char id[64], label[128], *der = NULL;
		CK_ATTRIBUTE a[] = { { CKA_VALUE, NULL, 0 }, { CKA_ID, id, sizeof(id) },
				     { CKA_LABEL, label, sizeof(label) - 1 } };
		CK_ATTRIBUTE kt[] = { { CKA_CLASS, &key_cls, sizeof(key_cls) }, { CKA_ID, id, 0 } };
		CK_OBJECT_HANDLE key;
		CK_ULONG nk = 0;
		char esc[400];

		if (w->fn->C_GetAttributeValue(s, objs[i], a, 3) != CKR_OK ||
		    a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[0].ulValueLen > 65536 ||
		    a[1].ulValueLen > sizeof(id) || a[2].ulValueLen >= sizeof(label))
			continue;
		if (!(der = malloc(a[0].ulValueLen)))
			break;
		a[0].pValue = der;
		if (w->fn->C_GetAttributeValue(s, objs[i], a, 1) != CKR_OK ||
		    !trusted(w->o->trust, der, a[0].ulValueLen)) {
			free(der);
			continue;
		}
		kt[1].ulValueLen = a[1].ulValueLen;
		if (w->fn->C_FindObjectsInit(s, kt, 2) == CKR_OK) {
			w->fn->C_FindObjects(s, &key, 1, &nk);
			w->fn->C_FindObjectsFinal(s);
		}
		if (nk == 1 && (!found || a[1].ulValueLen < best_id_len ||
				(a[1].ulValueLen == best_id_len && memcmp(id, best_id, best_id_len) < 0))) {
			const unsigned char *p = der;
			X509 *x = d2i_X509(NULL, &p, (long)a[0].ulValueLen);

			label[a[2].ulValueLen] = '\0';
			tr_p11_uri_escape((char *)label, esc, sizeof(esc));
			snprintf(w->own_uri, sizeof(w->own_uri), "%.380s;object=%s", w->token_uri, esc);
			snprintf(w->own_alg, sizeof(w->own_alg), "%s", x ? key_alg_name(x) : "");
			X509_free(x);
			free(w->orig_cert);
			w->orig_cert = der;
			w->orig_len = a[0].ulValueLen;
			der = NULL;
			memcpy(best_id, id, a[1].ulValueLen);
			best_id_len = a[1].ulValueLen;
			found = 1;
		}
		free(der);
	}
	if (!error && !found)
		error = tr_error_set(TR_ENOTFOUND, "no certificate on the token has its private key "
				     "and chains to a CA of --trust %s", w->o->trust);
out:
	w->fn->C_Logout(s);
	w->fn->C_CloseSession(s);
	return error;
}

/* One token of the catalog: the role "a" of a portal, on this certificate. */
static int add_ref(worker *w, const char *portal, const unsigned char *der, size_t len,
		   const fx_unit *unit, const char *ca)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	tr_token_ref ref;
	BIGNUM *bn;
	char *hex;

	if (!x)
		return tr_error_set_openssl(TR_EPARSE, "the token's certificate");
	/* The engine's token reference has fixed fields: a longer name is refused, not cut. */
	if (strlen(w->reader) >= sizeof(ref.reader) || strlen(w->own_uri) >= sizeof(ref.uri)) {
		X509_free(x);
		return tr_error_set(TR_EINVAL, "%s is longer than the rig's token reference holds "
				    "(%zu bytes)", w->pcsc ? "the reader name" : "the key's PKCS#11 URI",
				    w->pcsc ? sizeof(ref.reader) - 1 : sizeof(ref.uri) - 1);
	}
	memset(&ref, 0, sizeof(ref));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(ref.cert_serial, sizeof(ref.cert_serial), "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	snprintf(ref.kind, sizeof(ref.kind), "%s", w->o->kind);
	snprintf(ref.algorithm, sizeof(ref.algorithm), "%s", w->own_alg);
	snprintf(ref.portal, sizeof(ref.portal), "%s", portal);
	snprintf(ref.role, sizeof(ref.role), "a");
	snprintf(ref.label, sizeof(ref.label), "%.32s", w->serial);
	if (w->pcsc) {
		snprintf(ref.reader, sizeof(ref.reader), "%.63s", w->reader);
	} else {
		snprintf(ref.module, sizeof(ref.module), "%s", w->o->module_path);
		snprintf(ref.uri, sizeof(ref.uri), "%.255s", w->own_uri);
		snprintf(ref.token_uri, sizeof(ref.token_uri), "%.250s", w->token_uri);
	}
	ref.unit = *unit;
	snprintf(ref.pin, sizeof(ref.pin), "%s", w->o->pin);
	snprintf(ref.so_pin, sizeof(ref.so_pin), "%s", w->o->so_pin);
	snprintf(ref.ca, sizeof(ref.ca), "%s", ca);
	ref.cert_der = (unsigned char *)der;
	ref.cert_len = len;
	ref.card = -1;
	return tr_env_add_token(w->env, &ref);
}

/*
 * --trust: the token is certified on its own certificate, at every portal
 * (each told to accept its issuer), its unit taken from the certificate.
 * Cases needing a certificate the rig makes find no token of that profile
 * and are skipped, saying so.
 */
static int provision_own(worker *w)
{
	const unsigned char *p;
	const char *portal;
	char name[128], uscc[32];
	X509 *x;
	int error = 0;

	if (!w->pcsc && (error = find_own_cert_p11(w)) < 0)
		return error;
	if (w->pcsc && !trusted(w->o->trust, w->orig_cert, w->orig_len))
		return tr_error_set(TR_EINVAL, "the card's certificate does not chain to a CA of "
				    "--trust %s", w->o->trust);
	if (!*w->own_alg)
		return tr_error_set(TR_EDEPEND, "the token's key is of no algorithm of the catalog "
				    "(P-256, RSA-2048, SM2)");
	p = w->orig_cert;
	if (!(x = d2i_X509(NULL, &p, (long)w->orig_len)))
		return tr_error_set_openssl(TR_EPARSE, "the token's certificate");
	name[0] = uscc[0] = '\0';
	fx_cert_unit_identity(x, name, sizeof(name), uscc, sizeof(uscc));
	X509_free(x);
	for (size_t i = 0; !error && (portal = tr_env_portal_name(i, NULL, NULL)) != NULL; i++) {
		fx_unit unit;

		if ((error = fx_unit_generate(&unit, w->o->seed, portal, 0)) < 0)
			break;
		/* The unit the certificate names: what a portal reads from it. */
		if (*name)
			snprintf(unit.unit_name, sizeof(unit.unit_name), "%s", name);
		if (strlen(uscc) >= sizeof(unit.uscc)) {
			error = tr_error_set(TR_EINVAL, "the token's certificate names a USCC of %zu "
					     "characters (18 expected)", strlen(uscc));
			break;
		}
		if (*uscc)
			memcpy(unit.uscc, uscc, strlen(uscc) + 1);
		error = add_ref(w, portal, w->orig_cert, w->orig_len, &unit, "trusted");
	}
	return error ? error : tr_env_tokens_ready(w->env);
}

/*
 * A card without --trust: the first portal's CA issues a certificate for
 * the card's own key 9A (from its certificate: GENERATE would replace a key
 * a PIV card can never take back), written with PUT DATA under the
 * management key; every portal trusts that CA in this run. The original is
 * kept in the token's folder first, and written back at the end (or by
 * --cleanup after a kill).
 */
static int provision_card(worker *w)
{
	const char *ca = tr_env_portal_name(0, NULL, NULL);
	const unsigned char *p = w->orig_cert;
	X509 *orig = d2i_X509(NULL, &p, (long)w->orig_len), *cert = NULL;
	unsigned char *der = NULL;
	fx_pki *pki = NULL;
	tr_token *tok = NULL;
	fx_unit unit;
	const char *portal;
	int len = 0, error;

	if (!orig || !X509_get0_pubkey(orig)) {
		error = tr_error_set_openssl(TR_EPARSE, "the card's 9A certificate");
		goto out;
	}
	/* A unit of its own per card: a choice by company never picks another card. */
	if ((error = fx_unit_generate(&unit, w->o->seed, ca, 100 + (unsigned)w->index)) < 0 ||
	    (error = fx_pki_open(&pki, tr_env_pki_dir(w->env))) < 0 ||
	    (error = fx_pki_issue_unit(pki, ca, X509_get0_pubkey(orig), &unit, FX_VARIANT_VALID,
				       &cert)) < 0)
		goto out;
	if ((len = i2d_X509(cert, &der)) <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding a certificate");
		goto out;
	}
	if ((error = tr_fs_write_atomic(w->saved, (const char *)w->orig_cert, w->orig_len,
					0600)) < 0 ||
	    (error = tr_token_open_pcsc(&tok, w->reader)) < 0 ||
	    (error = tr_token_login(tok, w->o->pin)) < 0)
		goto out;
	__atomic_store_n(&w->cert_written, 1, __ATOMIC_SEQ_CST);
	if ((error = tr_token_write_certificate(tok, der, (size_t)len)) < 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", tr_error_last());
		error = tr_error_set(error, "PUT DATA of the rig's certificate into 9A: %s%s", why,
				     getenv("TOKENRIG_PIV_MGMT_KEY") ? "" :
				     " (give the card's management key with --mgmt-key-env)");
		goto out;
	}
	for (size_t i = 0; !error && (portal = tr_env_portal_name(i, NULL, NULL)) != NULL; i++)
		error = add_ref(w, portal, der, (size_t)len, &unit, ca);
	if (!error)
		error = tr_env_tokens_ready(w->env);
out:
	if (tok) {
		tr_token_logout(tok);
		tr_token_close(tok);
	}
	OPENSSL_free(der);
	X509_free(cert);
	X509_free(orig);
	fx_pki_free(pki);
	return error;
}

/* --- provisioning ------------------------------------------------------- */

static fx_variant variant_of(tr_cert_kind kind)
{
	switch (kind) {
	case TR_CERT_EXPIRED: return FX_VARIANT_EXPIRED;
	case TR_CERT_NOT_YET_VALID: return FX_VARIANT_NOT_YET_VALID;
	case TR_CERT_REVOKED: return FX_VARIANT_REVOKED;
	case TR_CERT_WRONG_CHAIN: return FX_VARIANT_WRONG_CHAIN;
	default: return FX_VARIANT_VALID;
	}
}

/* A 1-byte CKA_ID no object of the token has, from 0xE0 on. */
static unsigned char free_id(worker *w, unsigned char from)
{
	for (unsigned id = from; id < 0xF0; id++) {
		char needle[16];
		int used = 0;
		size_t i;
		json_t *o;

		snprintf(needle, sizeof(needle), " id=%02x", id);
		json_array_foreach(w->objects_before, i, o) {
			const char *line = json_string_value(o), *p = strstr(line, needle);

			used |= p && p[strlen(needle)] == '\0';
		}
		for (size_t a = 0; a < N_ALGS; a++)
			used |= w->key_id[a] == id;
		if (!used)
			return (unsigned char)id;
	}
	return 0;
}

/*
 * The encryption certificate of a dual-certificate portal (Hunan): another
 * key's, another serial, stored on the token next to the signing one.
 */
static int provision_enc(worker *w, CK_SESSION_HANDLE s, fx_pki *pki, const char *ca,
			 const fx_unit *unit, fx_variant variant, size_t a, const char *label,
			 tr_token_ref *ref)
{
	tr_p11_key spec = { .rsa = algs[a].rsa, .encrypt = 1 };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char enc_label[80];
	int error;

	snprintf(enc_label, sizeof(enc_label), "%s-enc", label);
	spec.label = enc_label;
	if (!(spec.id = free_id(w, 0xE8)))
		return tr_error_set(TR_EINVAL, "no free 1-byte CKA_ID for the encryption certificate");
	if ((error = fx_key_generate(algs[a].alg, &key)) < 0 ||
	    (error = fx_pki_issue_unit_ex(pki, ca, key, unit, variant, FX_PURPOSE_ENCRYPT,
					  &cert)) < 0 ||
	    (error = tr_p11_import_cert(w->fn, s, &spec, cert)) < 0)
		goto out;
	__atomic_add_fetch(&w->objects_made, 1, __ATOMIC_SEQ_CST);
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		snprintf(ref->enc_serial, sizeof(ref->enc_serial), "%s", hex ? hex : "");
		OPENSSL_free(hex);
		BN_free(bn);
	}
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return error;
}

static int provision_role(worker *w, CK_SESSION_HANDLE s, fx_pki *pki, const tr_profile *prof,
			  const char *portal, const char *legacy_ca, int dual, size_t a,
			  EVP_PKEY *pub)
{
	tr_token_ref ref;
	fx_unit unit, in_cert;
	tr_p11_key spec = { .rsa = algs[a].rsa, .id = w->key_id[a] };
	EVP_PKEY *other = NULL;
	X509 *cert = NULL;
	unsigned char *der = NULL;
	char label[64];
	const char *ca = portal;
	int error, len;

	memset(&ref, 0, sizeof(ref));
	if (prof->cert == TR_CERT_LEGACY) {
		if (!legacy_ca)
			return 0;
		ca = legacy_ca;
	}
	if ((error = fx_unit_generate(&unit, w->o->seed, portal, prof->unit)) < 0)
		return error;
	in_cert = unit;
	if (prof->cert == TR_CERT_STALE_NAME) {
		fx_unit former;

		if ((error = fx_unit_generate(&former, w->o->seed, portal, prof->unit + 50)) < 0)
			return error;
		snprintf(in_cert.unit_name, sizeof(in_cert.unit_name), "%s", former.unit_name);
	}
	/* A certificate of another key pair, stored with this key's ID (TK-E07). */
	if (prof->cert == TR_CERT_KEY_MISMATCH &&
	    (error = fx_key_generate(algs[a].alg, &other)) < 0)
		return error;
	if ((error = fx_pki_issue_unit(pki, ca, other ? other : pub, &in_cert,
				       variant_of(prof->cert), &cert)) < 0)
		goto out;
	snprintf(label, sizeof(label), LABEL_PREFIX "%s-%s-%s", portal, prof->name, algs[a].name);
	spec.label = label;
	if ((error = tr_p11_import_cert(w->fn, s, &spec, cert)) < 0)
		goto out;
	__atomic_add_fetch(&w->objects_made, 1, __ATOMIC_SEQ_CST);
	if (dual && (error = provision_enc(w, s, pki, ca, &in_cert, variant_of(prof->cert), a,
					   label, &ref)) < 0)
		goto out;
	if ((len = i2d_X509(cert, &der)) <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding a certificate");
		goto out;
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		snprintf(ref.cert_serial, sizeof(ref.cert_serial), "%s", hex ? hex : "");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	snprintf(ref.kind, sizeof(ref.kind), TR_KIND_MODULE);
	snprintf(ref.algorithm, sizeof(ref.algorithm), "%s", algs[a].name);
	snprintf(ref.portal, sizeof(ref.portal), "%s", portal);
	snprintf(ref.role, sizeof(ref.role), "%s", prof->name);
	snprintf(ref.label, sizeof(ref.label), "%.32s", w->serial);
	snprintf(ref.module, sizeof(ref.module), "%s", w->o->module_path);
	snprintf(ref.uri, sizeof(ref.uri), "%.180s;object=%s", w->token_uri, label);
	snprintf(ref.token_uri, sizeof(ref.token_uri), "%.250s", w->token_uri);
	ref.unit = unit;
	snprintf(ref.pin, sizeof(ref.pin), "%s", w->o->pin);
	snprintf(ref.so_pin, sizeof(ref.so_pin), "%s", w->o->so_pin);
	snprintf(ref.ca, sizeof(ref.ca), "%s", ca);
	ref.cert_der = der;
	ref.cert_len = (size_t)len;
	ref.card = -1;
	error = tr_env_add_token(w->env, &ref);
out:
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(other);
	return error;
}

static int provision(worker *w)
{
	CK_SESSION_HANDLE s;
	tr_profile *profiles = NULL;
	size_t n_profiles = 0;
	fx_pki *pki = NULL;
	EVP_PKEY *pub[N_ALGS] = { 0 };
	int error = 0, any = 0;
	CK_RV rv;

	if (w->o->trust)
		return provision_own(w);
	if (w->pcsc)
		return provision_card(w);
	if ((rv = open_rw(w, &s)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_OpenSession: %s", tr_p11_rv_name(rv));
	if ((rv = user_login(w, s, w->o->pin)) != CKR_OK) {
		error = tr_error_set(TR_EIO, "C_Login: %s", tr_p11_rv_name(rv));
		goto out;
	}
	if ((error = tr_profiles_load(w->o->profiles, &profiles, &n_profiles)) < 0 ||
	    (error = fx_pki_open(&pki, tr_env_pki_dir(w->env))) < 0)
		goto out;
	for (size_t a = 0; a < N_ALGS && !interrupted; a++) {
		CK_OBJECT_HANDLE h;
		char label[40];
		tr_p11_key spec = { .rsa = algs[a].rsa, .label = label };

		if (!w->have_alg[a])
			continue;
		snprintf(label, sizeof(label), LABEL_PREFIX "key-%s", algs[a].name);
		if (!(spec.id = w->key_id[a] = free_id(w, 0xE0))) {
			error = tr_error_set(TR_EINVAL, "no free 1-byte CKA_ID in 0xE0..0xEF");
			break;
		}
		error = tr_p11_generate_key(w->fn, s, &spec, &h);
		if (!error)
			__atomic_add_fetch(&w->objects_made, 2, __ATOMIC_SEQ_CST);
		if (error < 0 || (error = tr_p11_public_key(w->fn, s, h, &pub[a])) < 0) {
			add_failure(w, "CERT-PROVISION", "generating a %s key pair on the token: %s",
				    algs[a].name, tr_error_last());
			w->have_alg[a] = 0;
			error = 0;
			continue;
		}
		for (size_t p = 0; !error; p++) {
			const char *legacy = NULL, *portal;
			int dual = 0;

			if (!(portal = tr_env_portal_name(p, &legacy, &dual)))
				break;
			for (size_t i = 0; i < n_profiles && !error; i++)
				if (tr_profile_for_portal(&profiles[i], portal))
					error = provision_role(w, s, pki, &profiles[i], portal, legacy,
							       dual, a, pub[a]);
		}
		if (error < 0) {
			add_failure(w, "CERT-PROVISION", "writing a %s certificate to the token: %s",
				    algs[a].name, tr_error_last());
			w->have_alg[a] = 0;
			error = 0;
			continue;
		}
		any = 1;
	}
	if (!error && !any)
		error = tr_error_set(TR_EDEPEND, "the token took no key pair and certificate of "
				     "the catalog's algorithms (P-256: CKM_EC_KEY_PAIR_GEN and "
				     "CKM_ECDSA; RSA-2048: CKM_RSA_PKCS_KEY_PAIR_GEN up to 2048 bits "
				     "and CKM_SHA256_RSA_PKCS): see the inventory's mechanisms");
	if (!error)
		error = tr_env_tokens_ready(w->env);
out:
	for (size_t a = 0; a < N_ALGS; a++)
		EVP_PKEY_free(pub[a]);
	fx_pki_free(pki);
	free(profiles);
	w->fn->C_Logout(s);
	w->fn->C_CloseSession(s);
	return error;
}

/* --- latency -------------------------------------------------------------- */

static json_t *summary_us(tr_samples *smp)
{
	tr_summary s;

	if (tr_stats_summarize(smp, &s) < 0 || s.n == 0)
		return json_null();
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "n", (json_int_t)s.n, "p50", s.p50 / 1e3,
			 "p90", s.p90 / 1e3, "p99", s.p99 / 1e3, "max", s.max / 1e3);
}

static int openssl_baseline_of(fx_key_alg alg, unsigned count, tr_samples *out)
{
	static const unsigned char msg[] = "tokenrig certify latency";
	EVP_PKEY *key = NULL;
	int error;

	if ((error = fx_key_generate(alg, &key)) < 0)
		return error;
	for (unsigned i = 0; i < count && !interrupted; i++) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char sig[512];
		size_t len = sizeof(sig);
		uint64_t t0 = tr_clock_ns();

		if (!md || EVP_DigestSignInit(md, NULL, alg == FX_KEY_SM2 ? EVP_sm3() : EVP_sha256(),
					      NULL, key) != 1 ||
		    EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) != 1) {
			EVP_MD_CTX_free(md);
			EVP_PKEY_free(key);
			return tr_error_set_openssl(TR_ECRYPTO, "OpenSSL signature");
		}
		tr_samples_add(out, tr_clock_ns() - t0);
		EVP_MD_CTX_free(md);
	}
	EVP_PKEY_free(key);
	return 0;
}

/*
 * --count signatures with tok (opened by the caller: open_error its
 * outcome; closed here) and as many raw OpenSSL ones of alg: the token's
 * latency of alg_name and its in-run baseline.
 */
static void measure(worker *w, tr_token *tok, int open_error, const char *alg_name,
		    fx_key_alg alg)
{
	static const unsigned char msg[] = "tokenrig certify latency";
	tr_samples tok_ns = { 0 }, ossl_ns = { 0 };
	int error = open_error;

	if (!error)
		error = tr_token_login(tok, w->o->pin);
	for (unsigned i = 0; !error && i < w->o->count && !interrupted; i++) {
		unsigned char *sig = NULL;
		size_t sig_len;
		uint64_t ns = 0;

		if ((error = tr_token_sign(tok, msg, sizeof(msg), &sig, &sig_len, &ns)) == 0)
			tr_samples_add(&tok_ns, ns);
		free(sig);
	}
	if (error < 0)
		add_failure(w, "CERT-LATENCY", "%s signatures: %s", alg_name, tr_error_last());
	if (tok) {
		tr_token_logout(tok);
		tr_token_close(tok);
	}
	if (!error && openssl_baseline_of(alg, w->o->count, &ossl_ns) < 0)
		add_failure(w, "CERT-LATENCY", "%s baseline: %s", alg_name, tr_error_last());
	json_object_set_new(w->latency, alg_name, json_pack("{s:o, s:o}", "token",
							    summary_us(&tok_ns), "openssl",
							    summary_us(&ossl_ns)));
	tr_samples_free(&tok_ns);
	tr_samples_free(&ossl_ns);
}

static void latency(worker *w)
{
	w->latency = json_object();
	if (w->pcsc || w->o->trust) {
		/* A card, or a token on its own certificate: one key, one algorithm. */
		fx_key_alg alg = !strcmp(w->own_alg, "rsa2048") ? FX_KEY_RSA_2048 :
				 !strcmp(w->own_alg, "sm2") ? FX_KEY_SM2 : FX_KEY_EC_P256;
		tr_token *tok = NULL;
		int error = w->pcsc ? tr_token_open_pcsc(&tok, w->reader) :
			    tr_token_open_p11(&tok, w->o->module_path, w->own_uri);

		measure(w, tok, error, w->own_alg, alg);
		return;
	}
	for (size_t a = 0; a < N_ALGS && !interrupted; a++) {
		tr_token *tok = NULL;
		char uri[800];
		const char *portal = tr_env_portal_name(0, NULL, NULL);
		int error;

		if (!w->have_alg[a])
			continue;
		snprintf(uri, sizeof(uri), "%s;object=" LABEL_PREFIX "%s-a-%s", w->token_uri, portal,
			 algs[a].name);
		error = tr_token_open_p11(&tok, w->o->module_path, uri);
		measure(w, tok, error, algs[a].name, algs[a].alg);
	}
}

/* --- cleanup and the final check ---------------------------------------- */

/*
 * Destroys every object the rig labelled, and with an inventory of the
 * objects before the run (this run's, or a killed one's from --out) every
 * object not in it: after a run, or a killed one (--cleanup).
 */
static int remove_ours(worker *w, size_t *removed)
{
	unsigned char *used = NULL;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE objs[256];
	CK_ULONG n = 0;
	CK_RV rv;
	int error = 0;

	*removed = 0;
	if ((rv = open_rw(w, &s)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_OpenSession: %s", tr_p11_rv_name(rv));
	used = calloc(json_array_size(w->objects_before) + 1, 1);
	if (!used) {
		w->fn->C_CloseSession(s);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	if ((rv = user_login(w, s, w->o->pin)) != CKR_OK) {
		error = tr_error_set(TR_EIO, "C_Login: %s", tr_p11_rv_name(rv));
		goto out;
	}
	if ((rv = w->fn->C_FindObjectsInit(s, NULL, 0)) == CKR_OK) {
		rv = w->fn->C_FindObjects(s, objs, 256, &n);
		w->fn->C_FindObjectsFinal(s);
	}
	if (rv != CKR_OK) {
		error = tr_error_set(TR_EIO, "C_FindObjects: %s", tr_p11_rv_name(rv));
		goto out;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		unsigned char label[128];
		CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) };
		int ours = w->fn->C_GetAttributeValue(s, objs[i], &a, 1) == CKR_OK &&
			   a.ulValueLen != CK_UNAVAILABLE_INFORMATION &&
			   a.ulValueLen >= strlen(LABEL_PREFIX) &&
			   !memcmp(label, LABEL_PREFIX, strlen(LABEL_PREFIX));

		if (!ours && json_is_array(w->objects_before)) {
			/* Not in the inventory taken before the run (each entry matches once). */
			char line[OBJECT_LINE];
			size_t k;
			json_t *e;

			object_line(w, s, objs[i], line, sizeof(line));
			ours = 1;
			json_array_foreach(w->objects_before, k, e)
				if (!used[k] && !strcmp(json_string_value(e), line)) {
					used[k] = 1;
					ours = 0;
					break;
				}
		}
		if (!ours)
			continue;
		if ((rv = w->fn->C_DestroyObject(s, objs[i])) != CKR_OK) {
			error = tr_error_set(TR_EIO, "C_DestroyObject: %s", tr_p11_rv_name(rv));
			goto out;
		}
		(*removed)++;
	}
	__atomic_store_n(&w->objects_made, 0, __ATOMIC_SEQ_CST);
out:
	free(used);
	w->fn->C_Logout(s);
	w->fn->C_CloseSession(s);
	return error;
}

/*
 * A card: the original certificate written back where the rig wrote its
 * own, the PIN working, the tries counter back where it was.
 */
static int restore_card(worker *w, tr_token *tok, size_t *restored)
{
	const unsigned char *der;
	size_t len;
	int error;

	*restored = 0;
	if ((error = tr_token_certificate(tok, &der, &len)) < 0)
		return error;
	if (len == w->orig_len && !memcmp(der, w->orig_cert, len)) {
		__atomic_store_n(&w->cert_written, 0, __ATOMIC_SEQ_CST);
		return 0;
	}
	if ((error = tr_token_restore(tok, w->orig_cert, w->orig_len)) < 0)
		return error;
	*restored = 1;
	__atomic_store_n(&w->cert_written, 0, __ATOMIC_SEQ_CST);
	return 0;
}

static void final_check_card(worker *w)
{
	json_t *problems = json_array(), *after = json_array();
	tr_token *tok = NULL;
	size_t restored = 0;
	int error, tries = -1;

	if ((error = tr_token_open_pcsc(&tok, w->reader)) < 0) {
		json_array_append_new(problems, json_sprintf("the card: %s", tr_error_last()));
	} else if ((tries = tr_token_pin_tries(tok)) == 0) {
		char why[sizeof(w->first_line)];

		json_array_append_new(problems, json_string("the PIN is blocked (63C0)"));
		snprintf(why, sizeof(why), "%s", w->first_line[0] ? w->first_line : "see the failures");
		snprintf(w->first_line, sizeof(w->first_line), "THE CARD IS LEFT BLOCKED (63C0): "
			 "%.500s", why);
	} else if ((error = tr_token_login(tok, w->o->pin)) < 0) {
		json_array_append_new(problems, json_sprintf("the PIN no longer works: %s",
							     tr_error_last()));
	} else {
		const unsigned char *der;
		size_t len;
		char line[120];

		if (restore_card(w, tok, &restored) < 0)
			json_array_append_new(problems, json_sprintf(
				"the original certificate could not be written back: %s (kept in %s)",
				tr_error_last(), w->saved));
		if (tr_token_certificate(tok, &der, &len) == 0) {
			cert_line(der, len, line, sizeof(line));
			json_array_append_new(after, json_string(line));
		}
		if (!json_equal(after, w->objects_before))
			json_array_append_new(problems, json_string(
				"the card's 9A certificate differs from before the run"));
		tries = tr_token_pin_tries(tok);
		if (w->tries_start > 0 && tries >= 0 && tries < w->tries_start)
			json_array_append_new(problems, json_sprintf(
				"the PIN tries are not back where they were: %d, %d before", tries,
				w->tries_start));
		tr_token_logout(tok);
	}
	tr_token_close(tok);
	if (json_array_size(problems)) {
		size_t i;
		json_t *p;

		json_array_foreach(problems, i, p)
			add_failure(w, "CERT-FINAL-CHECK", "%s", json_string_value(p));
	}
	w->final_check = json_pack("{s:b, s:I, s:o, s:o, s:i}", "ok", json_array_size(problems) == 0,
				   "removed", (json_int_t)restored, "problems", problems,
				   "objects_after", after, "pin_tries", tries);
}

static void final_check(worker *w)
{
	json_t *problems = json_array(), *after = NULL;
	CK_SESSION_HANDLE s;
	CK_TOKEN_INFO ti;
	size_t removed = 0;
	CK_RV rv;

	if (w->pcsc) {
		json_decref(problems);
		final_check_card(w);
		return;
	}

	if (remove_ours(w, &removed) < 0)
		json_array_append_new(problems, json_sprintf("cleanup: %s", tr_error_last()));
	if ((rv = w->fn->C_GetTokenInfo(w->slot, &ti)) != CKR_OK) {
		json_array_append_new(problems, json_sprintf("C_GetTokenInfo: %s", tr_p11_rv_name(rv)));
	} else if (ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) {
		json_array_append_new(problems, json_sprintf(
			"the PIN tries are not back to their maximum (%s)",
			ti.flags & CKF_USER_PIN_LOCKED ? "CKF_USER_PIN_LOCKED" :
			ti.flags & CKF_USER_PIN_FINAL_TRY ? "CKF_USER_PIN_FINAL_TRY" :
			"CKF_USER_PIN_COUNT_LOW"));
	}
	if ((rv = open_rw(w, &s)) == CKR_OK) {
		if ((rv = user_login(w, s, w->o->pin)) != CKR_OK)
			json_array_append_new(problems, json_sprintf("the PIN no longer works: %s",
								     tr_p11_rv_name(rv)));
		else if (object_list(w, s, &after) < 0)
			json_array_append_new(problems, json_string(tr_error_last()));
		else if (!json_equal(after, w->objects_before))
			json_array_append_new(problems, json_sprintf(
				"the objects differ from before the run: %zu then, %zu now",
				json_array_size(w->objects_before), json_array_size(after)));
		w->fn->C_Logout(s);
		w->fn->C_CloseSession(s);
	}
	if (w->fn->C_GetTokenInfo(w->slot, &ti) == CKR_OK &&
	    (ti.flags & CKF_USER_PIN_LOCKED)) {
		char why[sizeof(w->first_line)];

		snprintf(why, sizeof(why), "%s", w->first_line[0] ? w->first_line : "see the failures");
		snprintf(w->first_line, sizeof(w->first_line), "THE TOKEN IS LEFT LOCKED "
			 "(CKF_USER_PIN_LOCKED): %.500s", why);
	}
	if (json_array_size(problems)) {
		size_t i;
		json_t *p;

		json_array_foreach(problems, i, p)
			add_failure(w, "CERT-FINAL-CHECK", "%s", json_string_value(p));
	}
	w->final_check = json_pack("{s:b, s:I, s:o, s:o?}", "ok", json_array_size(problems) == 0,
				   "removed", (json_int_t)removed, "problems", problems,
				   "objects_after", after);
}

/* --- the worker ----------------------------------------------------------- */

static int so_pin_check(worker *w)
{
	CK_SESSION_HANDLE s;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	if (w->pcsc) {
		/* RESET RETRY COUNTER with the PUK and the same PIN: proves the PUK, changes nothing. */
		tr_token *tok = NULL;
		int error = tr_token_open_pcsc(&tok, w->reader);

		if (!error && (error = tr_token_reset_pin(tok, w->o->so_pin, w->o->pin)) < 0)
			error = tr_error_set(TR_EINVAL, "the PUK does not work: %s", tr_error_last());
		tr_token_close(tok);
		return error;
	}

	/* The SO PIN is never tried when the token says it could be its last try. */
	if ((rv = w->fn->C_GetTokenInfo(w->slot, &ti)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetTokenInfo: %s", tr_p11_rv_name(rv));
	if (ti.flags & (CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED))
		return tr_error_set(TR_EINVAL, "the SO PIN is %s: not tried",
				    ti.flags & CKF_SO_PIN_LOCKED ? "locked" : "at its final try");
	if ((rv = open_rw(w, &s)) != CKR_OK)
		return tr_error_set(TR_EIO, "C_OpenSession: %s", tr_p11_rv_name(rv));
	rv = w->fn->C_Login(s, CKU_SO, (CK_UTF8CHAR *)w->o->so_pin, strlen(w->o->so_pin));
	if (rv == CKR_OK)
		w->fn->C_Logout(s);
	w->fn->C_CloseSession(s);
	return rv == CKR_OK ? 0 : tr_error_set(TR_EINVAL, "the SO PIN does not work: %s",
					       tr_p11_rv_name(rv));
}

/*
 * The SO PIN / PUK of a token on its own certificate, through the token
 * layer, which knows how the module unblocks (OpenSC's PIV driver refuses an
 * SO login: C_SetPIN(PUK, PIN) outside a login, token_p11.c). The PIN is
 * set to itself: nothing changes.
 */
static int so_pin_check_own(worker *w)
{
	tr_token *tok = NULL;
	int error = tr_token_open_p11(&tok, w->o->module_path, w->own_uri);

	if (!error && (error = tr_token_reset_pin(tok, w->o->so_pin, w->o->pin)) < 0)
		error = tr_error_set(TR_EINVAL, "the SO PIN does not work: %s", tr_error_last());
	tr_token_close(tok);
	return error;
}

static void read_results(worker *w)
{
	char path[PATH_MAX + 32];
	json_error_t jerr;

	snprintf(path, sizeof(path), "%s/results.json", w->dir);
	w->results = json_load_file(path, 0, &jerr);
	if (!w->results)
		add_failure(w, "CERT-CATALOG", "the catalog's results are unreadable: %s", jerr.text);
}

static void *work(void *arg)
{
	worker *w = arg;
	tr_engine_opts eo = { .suites_dir = w->o->engine_suites, .out_dir = w->dir,
			      .filter = w->o->engine_filter,
			      .case_timeout_ms = w->o->case_timeout_ms, .quiet = 1,
			      .stop = &stop_engines, .on_case = on_case, .on_case_arg = w };
	tr_run_totals totals = { 0 };

	set_phase(w, "inventory");
	if (inventory(w) < 0) {
		add_failure(w, "CERT-INVENTORY", "%s", tr_error_last());
		w->stopped = 1;
	}
	/* On its own certificate through a module: checked on that key, after it is found. */
	if (!w->stopped && w->o->destructive && (w->pcsc || !w->o->trust)) {
		set_phase(w, "checking the SO PIN before any lockout");
		if (so_pin_check(w) < 0) {
			snprintf(w->first_line, sizeof(w->first_line), "%s: no lockout was tried",
				 tr_error_last());
			add_failure(w, "CERT-SO-PIN", "%s", w->first_line);
			w->stopped = 1;
		}
	}
	if (w->stopped) {
		set_phase(w, "stopped: %s", w->first_line);
		catalog_done();
		__atomic_store_n(&w->finished, 1, __ATOMIC_SEQ_CST);
		return NULL;
	}
	set_phase(w, "provisioning keys and certificates");
	if (!interrupted && provision(w) < 0) {
		add_failure(w, "CERT-PROVISION", "%s", tr_error_last());
	} else if (!interrupted && w->o->destructive && !w->pcsc && w->o->trust &&
		   so_pin_check_own(w) < 0) {
		snprintf(w->first_line, sizeof(w->first_line), "%s: no lockout was tried",
			 tr_error_last());
		add_failure(w, "CERT-SO-PIN", "%s", w->first_line);
	} else if (!interrupted) {
		set_phase(w, "catalog: running the scenarios");
		if (tr_engine_run(w->env, &eo, &totals) < 0) {
			add_failure(w, "CERT-CATALOG", "%s", tr_error_last());
		} else {
			read_results(w);
			if (totals.stopped[0])
				snprintf(w->first_line, sizeof(w->first_line),
					 "the rig stopped touching the token: %.500s", totals.stopped);
		}
	}
	if (interrupted)
		set_phase(w, "interrupted: the case in flight was undone; cleaning up");
	set_phase(w, "waiting for the other tokens' catalogs");
	catalog_done();
	latency_turn();
	if (!interrupted && !totals.stopped[0] && w->results) {
		set_phase(w, "latency: %u signatures per algorithm", w->o->count);
		latency(w);
	}
	pthread_mutex_unlock(&latency_lock);
	set_phase(w, "cleanup and final check");
	final_check(w);
	forget_undo_files(w);
	set_phase(w, "done");
	__atomic_store_n(&w->finished, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* --- the batch ------------------------------------------------------------ */

/*
 * First SIGINT/SIGTERM: the case in flight finishes with its undo, then every
 * token is cleaned up and checked. A second one: the main thread writes the
 * report naming what is left on each token and exits at once (or, outside
 * the batch, the process exits here).
 */
static void on_signal(int sig)
{
	static const char msg[] = "\ntokenrig certify: interrupted twice: exiting now; what the "
				  "rig wrote may be left on the tokens (tokenrig certify --cleanup "
				  "with the same --out removes it)\n";
	static struct timespec first;
	struct timespec now;

	last_signal = sig;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/*
	 * One interrupt often comes twice at once: `timeout` passes a signal on
	 * to its child and to the child's group, a terminal's Ctrl-C reaches
	 * both. A second one counts from half a second on, as a person's does.
	 */
	if (interrupted && (now.tv_sec - first.tv_sec) * 1000 +
			   (now.tv_nsec - first.tv_nsec) / 1000000 < SECOND_INTERRUPT_MS)
		return;
	if (interrupted) {
		interrupted = 2;
		if (!watching) {
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
			_exit(128 + sig);
		}
		return;
	}
	first = now;
	interrupted = 1;
	stop_engines = 1;
}

static void *live_lines(void *arg)
{
	int *running = arg;
	int drawn = 0, last = 0;

	/* One more drawing after the end: the lines show every token's last phase. */
	while (!last) {
		last = !__atomic_load_n(running, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&print_lock);
		if (drawn)
			printf("\033[%zuA", n_all_workers);
		for (size_t i = 0; i < n_all_workers; i++)
			printf("\r\033[K%-16s %.100s\n", all_workers[i].serial, all_workers[i].phase);
		fflush(stdout);
		drawn = 1;
		pthread_mutex_unlock(&print_lock);
		if (!last)
			tr_poll_pause(tr_deadline_after_ms(250), 250);
	}
	return NULL;
}

static int read_secret(const char *env_name, const char *file, const char *prompt, char *out,
		       size_t len)
{
	out[0] = '\0';
	if (env_name) {
		const char *v = getenv(env_name);

		if (!v || !*v)
			return tr_error_set(TR_EINVAL, "the environment variable %s is not set", env_name);
		if (strlen(v) >= len)
			return tr_error_set(TR_EINVAL, "the PIN in %s is longer than %zu", env_name,
					    len - 1);
		snprintf(out, len, "%s", v);
		return 0;
	}
	if (file) {
		struct stat st;
		char *text = NULL;
		int error;

		if (stat(file, &st) < 0)
			return tr_error_set(TR_EINVAL, "%s: %s", file, strerror(errno));
		if (st.st_mode & 077)
			return tr_error_set(TR_EINVAL, "%s: mode %03o, must be 0600 (no access for "
					    "others)", file, (unsigned)(st.st_mode & 0777));
		if ((error = tr_fs_read_all(file, 4096, &text, NULL)) < 0)
			return error;
		text[strcspn(text, "\r\n")] = '\0';
		if (strlen(text) >= len) {
			free(text);
			return tr_error_set(TR_EINVAL, "the PIN in %s is longer than %zu", file, len - 1);
		}
		snprintf(out, len, "%s", text);
		free(text);
		return *out ? 0 : tr_error_set(TR_EINVAL, "%s is empty", file);
	}
	if (prompt && isatty(STDIN_FILENO)) {
		char *p = getpass(prompt);

		if (p && *p) {
			snprintf(out, len, "%s", p);
			return 0;
		}
	}
	return TR_ENOTFOUND;
}

/* Every token of the module the URI selects, as workers. */
static int find_tokens(tr_p11mod *mod, const char *uri_str, worker *ws, size_t *n)
{
	CK_FUNCTION_LIST *fn = tr_p11mod_functions(mod);
	P11KitUri *uri = p11_kit_uri_new();
	CK_SLOT_ID slots[MAX_TOKENS];
	CK_ULONG count = MAX_TOKENS;
	int error = 0, rc;

	*n = 0;
	if (!uri)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((rc = p11_kit_uri_parse(uri_str ? uri_str : "pkcs11:", P11_KIT_URI_FOR_ANY, uri)) !=
	    P11_KIT_URI_OK) {
		error = tr_error_set(TR_EINVAL, "--token: bad PKCS#11 URI: %s", p11_kit_uri_message(rc));
		goto out;
	}
	if ((error = tr_p11mod_slot_list(mod, slots, &count)) < 0)
		goto out;
	for (CK_ULONG i = 0; i < count; i++) {
		CK_TOKEN_INFO ti;
		CK_SLOT_INFO si;
		P11KitUri *tu;
		char *s = NULL;
		worker *w = &ws[*n];

		if (fn->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !p11_kit_uri_match_slot_info(uri, &si) || !p11_kit_uri_match_token_info(uri, &ti) ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		memset(w, 0, sizeof(*w));
		w->slot = slots[i];
		tr_p11_string(w->serial, sizeof(w->serial), ti.serialNumber, sizeof(ti.serialNumber));
		tr_p11_string(w->label, sizeof(w->label), ti.label, sizeof(ti.label));
		utf8_sanitize(w->label);
		utf8_sanitize(w->serial);
		if (!w->serial[0])
			snprintf(w->serial, sizeof(w->serial), "slot-%lu", (unsigned long)slots[i]);
		/* The token alone, by its own identity (slot IDs move). */
		if ((tu = p11_kit_uri_new()) != NULL) {
			memcpy(p11_kit_uri_get_token_info(tu), &ti, sizeof(ti));
			if (p11_kit_uri_format(tu, P11_KIT_URI_FOR_TOKEN, &s) == P11_KIT_URI_OK)
				snprintf(w->token_uri, sizeof(w->token_uri), "%s", s);
			free(s);
			p11_kit_uri_free(tu);
		}
		if (!w->token_uri[0]) {
			error = tr_error_set(TR_EINVAL, "token %s: cannot name it by a URI", w->serial);
			goto out;
		}
		(*n)++;
	}
out:
	p11_kit_uri_free(uri);
	return error;
}

static void usage(FILE *f)
{
	fputs("usage: tokenrig certify --module PATH|NAME [--token PKCS11-URI]\n"
	      "       tokenrig certify --readers all | --reader NAME[,NAME...] [--mgmt-key-env VAR]\n"
	      "         with: [--pin-env VAR | --pin-file FILE] [--so-pin-env VAR]\n"
	      "               [--trust CA.pem] [--destructive] [--count N] [--cleanup]\n"
	      "               --out DIR [--suites DIR] [--filter TEXT] [--case-timeout MS]\n"
	      "               [--profiles FILE]\n"
	      "  Certifies every token of a PKCS#11 module (a path, or a module name\n"
	      "  registered with p11-kit: opensc, softhsm2) or those the RFC 7512 URI\n"
	      "  of --token selects, or every card in the chosen PC/SC readers (the\n"
	      "  daemon of PCSCLITE_CSOCK_NAME; --reader is repeatable) through the\n"
	      "  rig's PC/SC backend, one worker per token, against the catalog's\n"
	      "  scenarios and the mock portals, with no interposer in the way:\n"
	      "    1 inventory (read-only)      4 latency (--count signatures, default\n"
	      "    2 keys and certificates        200, with the raw OpenSSL baseline)\n"
	      "      labelled tokenrig-*        5 cleanup and a check that the token\n"
	      "    3 the catalog                  is as it was (objects, PIN, tries)\n"
	      "  A card keeps its own key 9A: the rig writes a certificate of it (PUT\n"
	      "  DATA with the management key of the variable named by --mgmt-key-env,\n"
	      "  48 hex digits; default: the PIV default key) and writes the original\n"
	      "  back at the end (kept in DIR/tokens/SERIAL/original-9a.der).\n"
	      "  --trust CA.pem: every token is certified on its own certificate, which\n"
	      "  must chain to CA.pem; every portal is told to accept that issuer, and\n"
	      "  the cases needing a certificate the rig makes are skipped, saying so.\n"
	      "  The PIN comes from the environment (--pin-env), a 0600 file (--pin-file)\n"
	      "  or a prompt on a TTY, never from the command line or into any output.\n"
	      "  Never brick a real key: without --destructive no wrong PIN may be the\n"
	      "  token's last try (CKF_USER_PIN_FINAL_TRY or a card's 63C1 stops the rig\n"
	      "  on that token) and the lockout IDs are skipped as destructive;\n"
	      "  --destructive needs --so-pin-env (the SO PIN / PUK), checked first.\n"
	      "  SIGINT/SIGTERM: the case in flight finishes its undo, every token is\n"
	      "  cleaned up and checked; a second one exits at once and the report\n"
	      "  (certification.json, first_line of each token) names what is left.\n"
	      "  --cleanup removes what an interrupted run left (objects tokenrig-*, and\n"
	      "  with that run's --out any object not in its inventory; a card's\n"
	      "  original certificate written back from the same --out).\n"
	      "  Writes DIR/certification.json (tokenrig-certification/1), DIR/junit.xml\n"
	      "  (one testsuite per token, named by its serial) and DIR/tokens/SERIAL/.\n"
	      "  Exit 0 when every token is CERTIFIED, 1 when one is not, 2 on a usage\n"
	      "  or environment error; 128+signal after a second interrupt.\n", f);
}

static void xml_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
				fputc(*s, f);
		}
	}
}

static int write_junit(const char *path, json_t *tokens)
{
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);
	json_t *t;
	int error;

	if (!f)
		return tr_error_set(TR_ENOMEM, "out of memory");
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"tokenrig certify\">\n", f);
	json_array_foreach(tokens, i, t) {
		json_t *failed = json_object_get(t, "failed"), *skipped = json_object_get(t, "skipped");
		json_t *passed = json_object_get(t, "passed"), *e;
		size_t k;

		fputs("  <testsuite name=\"", f);
		xml_escape(f, json_string_value(json_object_get(t, "serial")));
		fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\">\n",
			json_array_size(failed) + json_array_size(skipped) + json_array_size(passed),
			json_array_size(failed), json_array_size(skipped));
		json_array_foreach(passed, k, e) {
			fputs("    <testcase name=\"", f);
			xml_escape(f, json_string_value(e));
			fputs("\"/>\n", f);
		}
		json_array_foreach(failed, k, e) {
			fputs("    <testcase name=\"", f);
			xml_escape(f, json_string_value(json_object_get(e, "id")));
			fputs("\"><failure message=\"", f);
			xml_escape(f, json_string_value(json_object_get(e, "message")));
			fputs("\">expected: ", f);
			xml_escape(f, json_string_value(json_object_get(e, "expected")));
			fputs("\nactual: ", f);
			xml_escape(f, json_string_value(json_object_get(e, "actual")));
			fputs("</failure></testcase>\n", f);
		}
		json_array_foreach(skipped, k, e) {
			fputs("    <testcase name=\"", f);
			xml_escape(f, json_string_value(json_object_get(e, "id")));
			fputs("\"><skipped message=\"", f);
			xml_escape(f, json_string_value(json_object_get(e, "reason")));
			fputs("\"/></testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	fclose(f);
	error = tr_fs_write_atomic(path, text, len, 0644);
	free(text);
	return error;
}

static void print_table(json_t *doc)
{
	json_t *tokens = json_object_get(doc, "tokens"), *t, *e, *batch = json_object_get(doc, "batch");
	size_t i, k;

	printf("\n%-16s %-24s %s\n", "token", "label", "verdict");
	json_array_foreach(tokens, i, t) {
		const char *first = json_string_value(json_object_get(t, "first_line"));

		printf("%-16s %-24.24s %s\n", json_string_value(json_object_get(t, "serial")),
		       json_string_value(json_object_get(t, "label")),
		       json_string_value(json_object_get(t, "status")));
		if (first && *first)
			printf("    !! %s\n", first);
		json_array_foreach(json_object_get(t, "failed"), k, e) {
			const char *exp = json_string_value(json_object_get(e, "expected"));

			printf("    FAILED  %-12s %s\n", json_string_value(json_object_get(e, "id")),
			       json_string_value(json_object_get(e, "message")));
			if (exp && *exp)
				printf("            expected: %.200s\n            actual:   %.300s\n", exp,
				       json_string_value(json_object_get(e, "actual")));
		}
		json_array_foreach(json_object_get(t, "skipped"), k, e)
			printf("    skipped %-12s %s\n", json_string_value(json_object_get(e, "id")),
			       json_string_value(json_object_get(e, "reason")));
		if (json_array_size(json_object_get(t, "not_tested")))
			printf("    not tested (destructive): %zu lockout IDs\n",
			       json_array_size(json_object_get(t, "not_tested")));
	}
	printf("\nbatch: %lld token(s), %lld certified, %lld not\n",
	       (long long)json_integer_value(json_object_get(batch, "tokens")),
	       (long long)json_integer_value(json_object_get(batch, "certified")),
	       (long long)json_integer_value(json_object_get(batch, "not_certified")));
	json_array_foreach(json_object_get(batch, "inventory_outliers"), k, e) {
		char *v = json_dumps(json_object_get(e, "value"), JSON_COMPACT | JSON_ENCODE_ANY);

		printf("  inventory outlier: %s %s = %.120s (the batch's majority differs)\n",
		       json_string_value(json_object_get(e, "serial")),
		       json_string_value(json_object_get(e, "field")), v ? v : "?");
		free(v);
	}
	{
		const char *alg;
		json_t *l;

		json_object_foreach(json_object_get(batch, "latency"), alg, l) {
			printf("  latency %s: median p50 %.1f us, MAD %.1f us over %lld token(s)", alg,
			       json_real_value(json_object_get(l, "median_p50_us")),
			       json_real_value(json_object_get(l, "mad_us")),
			       (long long)json_integer_value(json_object_get(l, "tokens")));
			json_array_foreach(json_object_get(l, "outliers"), k, e)
				printf("%s%s", k ? ", " : "; OUTLIER: ", json_string_value(e));
			printf("\n");
		}
	}
}

/* The batch's view: majority inventory, latency by median and MAD. */
static json_t *batch_facts(worker *ws, size_t n, json_t *tokens)
{
	static const char *const fields[] = { "manufacturer", "model", "firmware", "hardware",
					      "mechanisms", "pin_policy", "label_utf8" };
	json_t *invs = json_array(), *lat = json_object();
	const char **serials = calloc(n + 1, sizeof(*serials));
	size_t certified = 0, i;
	json_t *t;

	for (i = 0; i < n; i++) {
		json_t *inv = json_deep_copy(ws[i].inventory ? ws[i].inventory : json_object());

		/* Tries left are state, not a property of the batch. */
		json_object_del(json_object_get(inv, "pin_policy"), "count_low");
		json_array_append_new(invs, inv);
		if (serials)
			serials[i] = ws[i].serial;
	}
	json_array_foreach(tokens, i, t)
		certified += !strncmp(json_string_value(json_object_get(t, "status")), "CERTIFIED", 9);
	static const char *const lat_algs[] = { "p256", "rsa2048", "sm2" };

	for (size_t a = 0; a < sizeof(lat_algs) / sizeof(lat_algs[0]); a++) {
		double v[MAX_TOKENS], med, mad;
		int out[MAX_TOKENS];
		const char *who[MAX_TOKENS];
		size_t m = 0;
		json_t *outl = json_array();

		for (i = 0; i < n; i++) {
			json_t *p50 = json_object_get(json_object_get(json_object_get(
				ws[i].latency, lat_algs[a]), "token"), "p50");

			if (json_is_number(p50)) {
				v[m] = json_number_value(p50);
				who[m++] = ws[i].serial;
			}
		}
		if (!m) {
			json_decref(outl);
			continue;
		}
		tr_certify_outliers(v, m, out, &med, &mad);
		for (i = 0; i < m; i++)
			if (out[i])
				json_array_append_new(outl, json_string(who[i]));
		json_object_set_new(lat, lat_algs[a], json_pack(
			"{s:I, s:f, s:f, s:f, s:o}", "tokens", (json_int_t)m, "median_p50_us", med,
			"mad_us", mad, "threshold", TR_CERTIFY_Z_THRESHOLD, "outliers", outl));
	}
	t = json_pack("{s:I, s:I, s:I, s:o, s:o}", "tokens", (json_int_t)n, "certified",
		      (json_int_t)certified, "not_certified", (json_int_t)(n - certified),
		      "inventory_outliers",
		      serials ? tr_certify_inventory_outliers(invs, serials, fields,
							      sizeof(fields) / sizeof(fields[0])) :
				json_array(),
		      "latency", lat);
	free(serials);
	json_decref(invs);
	return t;
}

/* --filter: a comma list of substrings of a scenario's path or IDs. */
static int filter_matches(const tr_scenario *sc, const char *path, const char *filter)
{
	for (const char *p = filter; *p;) {
		size_t l = strcspn(p, ",");
		char want[128];

		snprintf(want, sizeof(want), "%.*s", (int)(l < sizeof(want) ? l : sizeof(want) - 1), p);
		if (*want && strstr(path, want))
			return 1;
		for (size_t i = 0; *want && i < sc->n_ids; i++)
			if (strstr(sc->ids[i], want))
				return 1;
		p += l;
		p += *p == ',';
	}
	return 0;
}

/*
 * The profile (of tokens.conf) a scenario needs besides "a": its own token,
 * a step's token, or a ${NAME.…} variable. NULL when "a" is all it uses.
 */
static const char *needs_profile(const tr_scenario *sc, const char *text,
				 const tr_profile *profiles, size_t n)
{
	if (sc->token && strcmp(sc->token, "a"))
		return sc->token;
	/* Hunan's second (encryption) certificate: a single-certificate token has none. */
	if (strstr(text, "enc_cert."))
		return "an encryption certificate next to the key (Hunan's dual certificates)";
	for (size_t i = 0; i < sc->n_steps; i++) {
		const char *t = tr_step_get(&sc->steps[i], "token");

		if (t && strcmp(t, "a"))
			return t;
	}
	for (size_t i = 0; i < n; i++) {
		char needle[32];

		snprintf(needle, sizeof(needle), "${%s.", profiles[i].name);
		if (strcmp(profiles[i].name, "a") && strstr(text, needle))
			return profiles[i].name;
	}
	return NULL;
}

/*
 * The scenarios the engine runs, as links in OUT/catalog: those of
 * --filter and, when a token holds one certificate of profile "a" (a card,
 * or --trust), those that need no token of another profile; the others are
 * skipped here, saying which certificate they need.
 */
static int build_catalog(cert_opts *o)
{
	tr_paths files = { 0 };
	tr_profile *profiles = NULL;
	size_t n_profiles = 0, linked = 0;
	int single = o->pcsc || o->trust != NULL, error;

	o->pre_skipped = json_array();
	snprintf(o->catalog_dir, sizeof(o->catalog_dir), "%s/catalog", o->out);
	if ((error = tr_fs_remove_tree(o->catalog_dir)) < 0 ||
	    (error = tr_fs_mkdirs(o->catalog_dir, 0755)) < 0 ||
	    (error = tr_profiles_load(o->profiles, &profiles, &n_profiles)) < 0 ||
	    (error = tr_scenario_find(o->suites, &files)) < 0)
		goto out;
	for (size_t i = 0; i < files.n && !error; i++) {
		const char *path = files.v[i];
		tr_scenario *sc = NULL;
		char *text = NULL, link_path[PATH_MAX + 300], target[PATH_MAX];
		const char *need = NULL;

		/* A file that does not parse goes to the engine, which reports it. */
		if (tr_scenario_load(&sc, path) == 0) {
			if (o->filter && !filter_matches(sc, path, o->filter)) {
				tr_scenario_free(sc);
				continue;
			}
			if (single && tr_fs_read_all(path, 1 << 20, &text, NULL) == 0)
				need = needs_profile(sc, text, profiles, n_profiles);
			free(text);
			if (need) {
				json_t *ids = json_array();
				char why[300];

				for (size_t k = 0; k < sc->n_ids; k++)
					json_array_append_new(ids, json_string(sc->ids[k]));
				snprintf(why, sizeof(why), "needs %s%.80s%s, a certificate the rig makes: "
					 "this token is certified on %s", strchr(need, ' ') ? "" :
					 "a token of profile '", need, strchr(need, ' ') ? "" : "'",
					 o->trust ? "its own certificate (--trust)" :
					 "one certificate of its own key (a card keeps its key 9A)");
				json_array_append_new(o->pre_skipped, json_pack(
					"{s:s, s:o, s:s, s:s}", "status", "skipped", "ids", ids,
					"message", why, "scenario", path));
				tr_scenario_free(sc);
				continue;
			}
			tr_scenario_free(sc);
		}
		snprintf(link_path, sizeof(link_path), "%s/%zu-", o->catalog_dir, linked);
		for (const char *c = path + strlen(o->suites); *c; c++) {
			size_t l = strlen(link_path);

			if (l + 2 < sizeof(link_path) && !(c == path + strlen(o->suites) && *c == '/')) {
				link_path[l] = *c == '/' ? '_' : *c;
				link_path[l + 1] = '\0';
			}
		}
		if (!realpath(path, target) || symlink(target, link_path) < 0)
			error = tr_error_set(TR_EIO, "%s: %s", link_path, strerror(errno));
		linked++;
	}
	if (!error && !linked)
		error = tr_error_set(TR_EINVAL, "no scenario of %s to run%s%s", o->suites,
				     o->filter ? " matches --filter " : "", o->filter ? o->filter : "");
	o->engine_suites = o->catalog_dir;
	o->engine_filter = NULL;
out:
	tr_paths_free(&files);
	free(profiles);
	return error;
}

/* The token's folder: DIR/tokens/SERIAL, the serial cut to [A-Za-z0-9._-]. */
static void token_dir(const cert_opts *o, worker *w)
{
	char name[sizeof(w->serial)];

	for (size_t k = 0; k < sizeof(name); k++) {
		char ch = w->serial[k];

		name[k] = !ch ? '\0' : (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("._-", ch) ? ch : '_';
		if (!ch)
			break;
	}
	snprintf(w->dir, sizeof(w->dir), "%s/tokens/%s", o->out ? o->out : ".",
		 strcmp(name, ".") && strcmp(name, "..") ? name : "_");
	snprintf(w->saved, sizeof(w->saved), "%s/original-9a.der", w->dir);
}

/* A card after a killed run: its original certificate, kept in --out, written back. */
static int cleanup_card(worker *w, const char **what)
{
	tr_token *tok = NULL;
	char *text = NULL;
	size_t len = 0, restored = 0;
	int error;

	*what = "as it was: the rig saved no certificate of it in this --out";
	if ((error = tr_fs_read_all(w->saved, 1 << 16, &text, &len)) == TR_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	w->orig_cert = (unsigned char *)text;
	w->orig_len = len;
	if ((error = tr_token_open_pcsc(&tok, w->reader)) < 0 ||
	    (error = tr_token_login(tok, w->o->pin)) < 0 ||
	    (error = restore_card(w, tok, &restored)) < 0)
		goto out;
	*what = restored ? "wrote the original 9A certificate back" :
		"as it was: the original 9A certificate is on the card";
out:
	if (tok) {
		tr_token_logout(tok);
		tr_token_close(tok);
	}
	return error;
}

static int run_cleanup(const cert_opts *o, worker *ws, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		size_t removed = 0;
		const char *what = NULL;

		if (!ws[i].pcsc && !ws[i].objects_before)
			ws[i].objects_before = load_objects_before(&ws[i]);
		if (ws[i].pcsc ? cleanup_card(&ws[i], &what) < 0 : remove_ours(&ws[i], &removed) < 0) {
			printf("%-16s cleanup FAILED: %s\n", ws[i].serial, tr_error_last());
			bad = 1;
		} else if (ws[i].pcsc) {
			printf("%-16s %s (%s)\n", ws[i].serial, what, ws[i].reader);
		} else {
			printf("%-16s removed %zu object(s) labelled " LABEL_PREFIX "*%s\n", ws[i].serial,
			       removed, ws[i].objects_before ? " or not in the run's inventory" : "");
		}
	}
	(void)o;
	return bad ? 1 : 0;
}

/* The cards of the chosen readers, as workers; serial: the CHUID GUID. */
static int find_cards(const cert_opts *o, worker *ws, size_t *n)
{
	static char present[8192];
	size_t n_present = 0;
	const char *want = o->readers_all ? present : o->readers;
	size_t want_len;
	int error;

	*n = 0;
	if ((error = tr_certify_readers(present, sizeof(present), &n_present)) < 0)
		return error;
	want_len = o->readers_all ? 0 : o->readers_len;
	if (o->readers_all)
		for (size_t k = 0, i = 0; i < n_present; i++) {
			k += strlen(present + k) + 1;
			want_len = k;
		}
	for (size_t off = 0; off < want_len; off += strlen(want + off) + 1) {
		const char *r = want + off;
		worker *w = &ws[*n];
		int held = 0;

		for (size_t k = 0, i = 0; i < n_present; i++, k += strlen(present + k) + 1)
			held |= !strcmp(present + k, r);
		if (!held)
			return tr_error_set(TR_TOKEN_ENOTOKEN, "no card in a reader named '%s' of the "
					    "PC/SC daemon (PCSCLITE_CSOCK_NAME=%s)", r,
					    getenv("PCSCLITE_CSOCK_NAME") ?
					    getenv("PCSCLITE_CSOCK_NAME") : "the system's");
		if (*n == MAX_TOKENS)
			return tr_error_set(TR_EINVAL, "more than %d cards", MAX_TOKENS);
		memset(w, 0, sizeof(*w));
		w->pcsc = 1;
		snprintf(w->reader, sizeof(w->reader), "%s", r);
		if ((error = tr_certify_card_facts(r, w->atr, sizeof(w->atr), w->serial,
						   sizeof(w->serial))) < 0)
			return error;
		if (!w->serial[0])
			snprintf(w->serial, sizeof(w->serial), "reader-%zu", *n);
		snprintf(w->label, sizeof(w->label), "%.39s", r);
		utf8_sanitize(w->label);
		w->tries_start = -1;
		(*n)++;
	}
	return *n ? 0 : tr_error_set(TR_TOKEN_ENOTOKEN, "no card in any reader of the PC/SC "
				     "daemon (PCSCLITE_CSOCK_NAME=%s)",
				     getenv("PCSCLITE_CSOCK_NAME") ? getenv("PCSCLITE_CSOCK_NAME") :
				     "the system's");
}

/* --reader NAME[,NAME]: added to the NUL-separated list. */
static int add_readers(cert_opts *o, const char *arg)
{
	for (const char *p = arg; *p;) {
		size_t l = strcspn(p, ",");

		if (l && o->readers_len + l + 1 < sizeof(o->readers)) {
			memcpy(o->readers + o->readers_len, p, l);
			o->readers[o->readers_len + l] = '\0';
			o->readers_len += l + 1;
		} else if (l) {
			return tr_error_set(TR_EINVAL, "--reader: too many reader names");
		}
		p += l;
		p += *p == ',';
	}
	return o->readers_len ? 0 : tr_error_set(TR_EINVAL, "--reader: empty reader name");
}

static json_t *token_json(const cert_opts *o, worker *w)
{
	json_t *cases = json_array(), *v;

	json_array_extend(cases, json_object_get(w->results, "cases"));
	if (w->results && o->pre_skipped)
		json_array_extend(cases, o->pre_skipped);
	v = tr_certify_verdict(cases, w->extra_failed);
	json_decref(cases);
	const char *rel = w->dir + strlen(o->out) + (w->dir[strlen(o->out)] == '/');
	char results[PATH_MAX + 16];
	json_t *facts;

	if (w->first_line[0] && !strcmp(json_string_value(json_object_get(v, "status")), "CERTIFIED"))
		json_object_set_new(v, "status", json_string("NOT CERTIFIED"));
	snprintf(results, sizeof(results), "%s/results.json", rel);
	facts = json_pack("{s:s, s:s, s:s, s:O?, s:O?, s:O?, s:s?}", "serial", w->serial,
			  "label", w->label, "first_line", w->first_line,
			  "inventory", w->inventory, "latency", w->latency,
			  "final_check", w->final_check,
			  "results", w->results ? results : NULL);
	json_object_update(v, facts);
	json_decref(facts);
	if (w->pcsc)
		json_object_set_new(v, "reader", json_string(w->reader));
	return v;
}

static json_t *doc_of(const cert_opts *o, json_t *batch, json_t *tokens)
{
	return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b, s:I, s:o, s:O}", "schema",
			 TR_CERTIFY_SCHEMA, "backend", o->pcsc ? "pcsc" : "pkcs11",
			 "module", o->pcsc ? "" : o->module_path, "pcsc_daemon",
			 o->pcsc ? (getenv("PCSCLITE_CSOCK_NAME") ? getenv("PCSCLITE_CSOCK_NAME") :
				    "system") : NULL,
			 "trust", o->trust, "destructive", o->destructive, "count",
			 (json_int_t)o->count, "batch", batch, "tokens", tokens);
}

static int write_doc(const cert_opts *o, json_t *doc)
{
	char path[PATH_MAX + 64], *text = json_dumps(doc, JSON_INDENT(1));
	int error;

	snprintf(path, sizeof(path), "%s/certification.json", o->out);
	error = text ? tr_fs_write_atomic(path, text, strlen(text), 0644) :
		tr_error_set(TR_ENOMEM, "out of memory");
	free(text);
	return error;
}

/*
 * A second interrupt: no undo any more. The report names, per token, what
 * the rig wrote that may still be on it; then the process exits.
 */
static void exit_now(const cert_opts *o, worker *ws, size_t n)
{
	json_t *tokens = json_array(), *doc;
	int sig = last_signal ? last_signal : SIGINT;

	pthread_mutex_lock(&print_lock);
	printf("\ntokenrig certify: interrupted twice (%s): exiting now, without the undo\n",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT");
	for (size_t i = 0; i < n; i++) {
		worker *w = &ws[i];
		json_t *t;

		tr_certify_left_line(w->first_line, sizeof(w->first_line),
				     __atomic_load_n(&w->objects_made, __ATOMIC_SEQ_CST),
				     __atomic_load_n(&w->cert_written, __ATOMIC_SEQ_CST), w->saved);
		t = json_pack("{s:s, s:s, s:s, s:s, s:[], s:[], s:[], s:[]}", "serial", w->serial,
			      "label", w->label, "status", "NOT CERTIFIED", "first_line",
			      w->first_line, "failed", "skipped", "not_tested", "passed");
		if (w->pcsc)
			json_object_set_new(t, "reader", json_string(w->reader));
		json_array_append_new(tokens, t);
		printf("%-16s !! %s\n", w->serial, w->first_line);
	}
	doc = doc_of(o, json_pack("{s:I, s:i, s:I, s:s}", "tokens", (json_int_t)n, "certified", 0,
				  "not_certified", (json_int_t)n, "interrupted",
				  "twice: exited without the undo"), tokens);
	if (doc && write_doc(o, doc) == 0)
		printf("report: %s/certification.json\n", o->out);
	fflush(stdout);
	_exit(128 + sig);
}

int tr_certify_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "readers", required_argument, NULL, 'R' },
		{ "reader", required_argument, NULL, 'A' },
		{ "mgmt-key-env", required_argument, NULL, 'M' },
		{ "trust", required_argument, NULL, 'U' },
		{ "token", required_argument, NULL, 'T' },
		{ "pin-env", required_argument, NULL, 'p' },
		{ "pin-file", required_argument, NULL, 'P' },
		{ "so-pin-env", required_argument, NULL, 's' },
		{ "destructive", no_argument, NULL, 'D' },
		{ "count", required_argument, NULL, 'n' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "out", required_argument, NULL, 'o' },
		{ "suites", required_argument, NULL, 'S' },
		{ "filter", required_argument, NULL, 'f' },
		{ "profiles", required_argument, NULL, 'r' },
		{ "case-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static cert_opts o;
	static worker ws[MAX_TOKENS];
	static char mgmt_key[49];
	tr_p11mod *mod = NULL;
	json_t *doc = NULL, *tokens = NULL;
	char path[PATH_MAX + 64], *end;
	size_t n = 0;
	int c, status = 2, error, running = 1;
	pthread_t live;
	int live_started = 0;
	struct sigaction sa = { .sa_handler = on_signal };

	memset(&o, 0, sizeof(o));
	o.suites = "suites";
	o.profiles = "suites/tokens.conf";
	o.count = 200;
	o.case_timeout_ms = 120000;
	o.seed = DEFAULT_SEED;
	o.tty = isatty(STDOUT_FILENO);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o.module_arg = optarg; break;
		case 'R':
			if (strcmp(optarg, "all") && add_readers(&o, optarg) < 0) {
				fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
				return 2;
			}
			o.readers_all |= !strcmp(optarg, "all");
			o.pcsc = 1;
			break;
		case 'A':
			if (add_readers(&o, optarg) < 0) {
				fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
				return 2;
			}
			o.pcsc = 1;
			break;
		case 'M': o.mgmt_env = optarg; break;
		case 'U': o.trust = optarg; break;
		case 'T': o.token_uri = optarg; break;
		case 'p': o.pin_env = optarg; break;
		case 'P': o.pin_file = optarg; break;
		case 's': o.so_pin_env = optarg; break;
		case 'D': o.destructive = 1; break;
		case 'C': o.cleanup = 1; break;
		case 'o': o.out = optarg; break;
		case 'S': o.suites = optarg; break;
		case 'f': o.filter = optarg; break;
		case 'r': o.profiles = optarg; break;
		case 'n':
			o.count = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !o.count || o.count > 1000000) {
				fprintf(stderr, "tokenrig certify: --count takes 1..1000000\n");
				return 2;
			}
			break;
		case 't': o.case_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "tokenrig certify: see `tokenrig certify --help`\n");
			return 2;
		}
	}
	if (optind != argc || !!o.module_arg == o.pcsc || (!o.out && !(o.cleanup && !o.pcsc))) {
		fprintf(stderr, "tokenrig certify: one of --module or --readers/--reader, and --out "
			"(also with --cleanup of cards: the originals are kept there), are needed; "
			"see `tokenrig certify --help`\n");
		return 2;
	}
	if (o.token_uri && o.pcsc) {
		fprintf(stderr, "tokenrig certify: --token selects tokens of a --module; cards are "
			"chosen with --reader\n");
		return 2;
	}
	if (o.out && tr_env_dir_check(o.out) < 0) {
		fprintf(stderr, "tokenrig certify: --out: %s: '%s'\n", tr_error_last(), o.out);
		return 2;
	}
	o.kind = o.pcsc ? TR_KIND_READER : TR_KIND_MODULE;
	if (o.destructive && !o.so_pin_env) {
		fprintf(stderr, "tokenrig certify: --destructive needs --so-pin-env: a lockout is "
			"only tried when the SO PIN/PUK can unblock it\n");
		return 2;
	}
	if (o.trust && access(o.trust, R_OK) != 0) {
		fprintf(stderr, "tokenrig certify: --trust %s: %s\n", o.trust, strerror(errno));
		return 2;
	}
	if (o.mgmt_env) {
		const char *key = getenv(o.mgmt_env);

		/* The backend reads TOKENRIG_PIV_MGMT_KEY; the value is never printed. */
		if (!tr_certify_mgmt_key_valid(key)) {
			fprintf(stderr, "tokenrig certify: --mgmt-key-env %s: %s\n", o.mgmt_env,
				key && *key ? "not a PIV management key (48 hex digits, 3DES)" :
				"the variable is not set");
			return 2;
		}
		snprintf(mgmt_key, sizeof(mgmt_key), "%s", key);
	}
	if ((error = read_secret(o.pin_env, o.pin_file, "user PIN: ", o.pin, sizeof(o.pin))) < 0 ||
	    (o.so_pin_env && read_secret(o.so_pin_env, NULL, NULL, o.so_pin, sizeof(o.so_pin)) < 0)) {
		fprintf(stderr, "tokenrig certify: %s\n", error == TR_ENOTFOUND ?
			"no PIN: give --pin-env VAR or --pin-file FILE (or run on a TTY)" :
			tr_error_last());
		return 2;
	}
	if (o.pcsc) {
		if (find_cards(&o, ws, &n) < 0) {
			fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
			goto out;
		}
	} else {
		if (tr_paths_module(o.module_arg, o.module_path, sizeof(o.module_path)) < 0 ||
		    tr_p11mod_load(&mod, o.module_path) < 0) {
			fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
			return 2;
		}
		if (find_tokens(mod, o.token_uri, ws, &n) < 0 || n == 0) {
			fprintf(stderr, "tokenrig certify: %s\n", n == 0 && !*tr_error_last() ?
				"no initialised token in the module matches" :
				n == 0 ? "no initialised token in the module matches" : tr_error_last());
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		ws[i].o = &o;
		ws[i].index = i;
		ws[i].mod = mod;
		ws[i].fn = mod ? tr_p11mod_functions(mod) : NULL;
		ws[i].extra_failed = json_array();
		token_dir(&o, &ws[i]);
	}
	if (o.cleanup) {
		if (mgmt_key[0])
			setenv("TOKENRIG_PIV_MGMT_KEY", mgmt_key, 1);
		status = run_cleanup(&o, ws, n);
		goto out;
	}
	o.engine_suites = o.suites;
	o.engine_filter = o.filter;
	if ((o.pcsc || o.trust || (o.filter && strchr(o.filter, ','))) && build_catalog(&o) < 0) {
		fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
		goto out;
	}
	/*
	 * The kind's row: what this certification allows. A card never
	 * generates (GENERATE replaces a key 9A that cannot come back); a token
	 * on its own certificate takes no certificate of the rig either.
	 */
	tr_kind_set_flags(o.kind, (o.trust ? 0 : TR_KIND_WRITE_CERT) |
			  (o.pcsc || o.trust ? 0 : TR_KIND_KEYGEN) |
			  (o.pcsc ? TR_KIND_EXACT_TRIES : 0) |
			  (o.so_pin[0] ? TR_KIND_PUK_RESET : 0) |
			  (o.destructive ? TR_KIND_DESTRUCTIVE : 0));
	tr_report_set_invocation(argc, argv, o.seed);
	printf("tokenrig certify: %s, %zu token(s)%s%s; bringing up the portals\n",
	       o.pcsc ? "PC/SC readers" : o.module_path, n, o.destructive ? ", destructive" : "",
	       o.trust ? ", on their own certificates" : "");
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		char run[PATH_MAX + 64];
		tr_env_opts eo = { .dir = run, .seed = o.seed, .foreign = 1, .trust = o.trust,
				   .trust_ca = o.pcsc && !o.trust ? tr_env_portal_name(0, NULL, NULL) :
				   NULL };

		snprintf(run, sizeof(run), "%s/run", ws[i].dir);
		if (tr_fs_mkdirs(ws[i].dir, 0755) < 0 || tr_env_up(&ws[i].env, &eo) < 0) {
			fprintf(stderr, "tokenrig certify: %s: %s\n", ws[i].serial, tr_error_last());
			goto out;
		}
		snprintf(ws[i].phase, sizeof(ws[i].phase), "waiting");
	}
	/* Set after the portals started: no process of the rig inherits the key. */
	if (mgmt_key[0])
		setenv("TOKENRIG_PIV_MGMT_KEY", mgmt_key, 1);
	/* libcurl's global set-up is not thread-safe: done here, once. */
	{
		tr_portal_client *pc = NULL;

		if (tr_portal_client_new(&pc, "https://127.0.0.1/", tr_env_ca_bundle(ws[0].env),
					 1000) == 0)
			tr_portal_client_free(pc);
	}
	sigemptyset(&sa.sa_mask);
	watching = 1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	all_workers = ws;
	n_all_workers = n;
	if (o.tty)
		live_started = pthread_create(&live, NULL, live_lines, &running) == 0;
	catalogs_running = n;
	for (size_t i = 0; i < n; i++) {
		ws[i].started = pthread_create(&ws[i].thread, NULL, work, &ws[i]) == 0;
		if (!ws[i].started) {
			/* Never waited for by the others; its token is left untouched. */
			add_failure(&ws[i], "CERT-WORKER", "the worker thread did not start");
			catalog_done();
		}
	}
	/* Polled, not joined: a second interrupt must be acted on at once. */
	for (;;) {
		size_t left = 0;

		for (size_t i = 0; i < n; i++)
			left += ws[i].started && !__atomic_load_n(&ws[i].finished, __ATOMIC_SEQ_CST);
		if (interrupted == 2)
			exit_now(&o, ws, n);
		if (!left)
			break;
		tr_poll_pause(tr_deadline_after_ms(50), 50);
	}
	for (size_t i = 0; i < n; i++)
		if (ws[i].started)
			pthread_join(ws[i].thread, NULL);
	watching = 0;
	if (interrupted == 2)
		exit_now(&o, ws, n);
	if (live_started) {
		__atomic_store_n(&running, 0, __ATOMIC_SEQ_CST);
		pthread_join(live, NULL);
	}

	tokens = json_array();
	for (size_t i = 0; i < n; i++) {
		worker *w = &ws[i];

		if (interrupted && !w->first_line[0])
			snprintf(w->first_line, sizeof(w->first_line), "interrupted (%s): the catalog "
				 "is incomplete; the case in flight was undone, the token cleaned up "
				 "and checked", last_signal == SIGTERM ? "SIGTERM" : "SIGINT");
		json_array_append_new(tokens, token_json(&o, w));
	}
	doc = doc_of(&o, batch_facts(ws, n, tokens), tokens);
	print_table(doc);
	error = write_doc(&o, doc);
	snprintf(path, sizeof(path), "%s/junit.xml", o.out);
	if (error < 0 || (error = write_junit(path, tokens)) < 0) {
		fprintf(stderr, "tokenrig certify: %s\n", tr_error_last());
		goto out;
	}
	printf("verdict: %s/certification.json %s/junit.xml\n", o.out, o.out);
	status = json_integer_value(json_object_get(json_object_get(doc, "batch"),
						    "not_certified")) ? 1 : 0;
	if (interrupted) {
		printf("interrupted: the tokens were cleaned up and checked; the catalog is incomplete\n");
		status = 128 + (last_signal ? last_signal : SIGINT);
	}
out:
	for (size_t i = 0; i < n; i++) {
		tr_env_free(ws[i].env);
		json_decref(ws[i].inventory);
		json_decref(ws[i].objects_before);
		json_decref(ws[i].latency);
		json_decref(ws[i].extra_failed);
		json_decref(ws[i].final_check);
		json_decref(ws[i].results);
		free(ws[i].orig_cert);
	}
	json_decref(tokens);
	json_decref(doc);
	json_decref(o.pre_skipped);
	tr_p11mod_release(mod);
	memset(o.pin, 0, sizeof(o.pin));
	memset(o.so_pin, 0, sizeof(o.so_pin));
	memset(mgmt_key, 0, sizeof(mgmt_key));
	return status;
}
