#include "harness/bench.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/p11mod.h"
#include "emulators/softhsm/provision.h"
#include "emulators/vcard/vc_bench.h"
#include "fixtures/pki.h"
#include "harness/kinds.h"
#include "harness/login.h"
#include "harness/stats.h"
#include "harness/token.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* One series of samples: what was measured, against what. */
typedef struct metric {
	char name[96];          /* "softhsm/p256/token.sign" */
	char kind[16], algorithm[16], stage[32];
	const struct metric *baseline;
	tr_samples s;
	size_t *round_end;      /* samples taken by the end of each round */
	size_t n_rounds;
} metric;

#define MAX_METRICS 64

typedef struct bench {
	tr_env *env;
	const tr_bench_opts *opts;
	metric m[MAX_METRICS];
	size_t n;
	json_t *concurrency;
	double timer_overhead_ns;
} bench;

static metric *add_metric(bench *b, const char *kind, const char *alg, const char *stage,
			  const metric *baseline)
{
	metric *m;

	if (b->n == MAX_METRICS)
		return NULL;
	m = &b->m[b->n++];
	memset(m, 0, sizeof(*m));
	snprintf(m->kind, sizeof(m->kind), "%s", kind);
	snprintf(m->algorithm, sizeof(m->algorithm), "%s", alg);
	snprintf(m->stage, sizeof(m->stage), "%s", stage);
	snprintf(m->name, sizeof(m->name), "%s/%s/%s", kind, alg, stage);
	m->baseline = baseline;
	return m;
}

/* --- the signers each metric times ------------------------------------- */

static const char data32[] = "tokenrig bench: a 32-byte input!";

/*
 * Raw OpenSSL: the physical floor of a software token, and of a card's own
 * arithmetic. P-256 and RSA sign a digest; SM2 signs the message with SM3
 * and the default distinguishing ID, Z included, as an SM2 card does it.
 */
#define SM2_DEFAULT_ID "1234567812345678"

typedef struct openssl_signer {
	EVP_PKEY *key;
	EVP_PKEY_CTX *ctx;
	int sm2;
	unsigned char digest[32];
} openssl_signer;

static int openssl_open(openssl_signer *o, fx_key_alg alg)
{
	int error;

	memset(o, 0, sizeof(*o));
	memset(o->digest, 0x5a, sizeof(o->digest));
	if ((error = fx_key_generate(alg, &o->key)) < 0)
		return error;
	if (alg == FX_KEY_SM2) {
		o->sm2 = 1;
		return 0;
	}
	o->ctx = EVP_PKEY_CTX_new(o->key, NULL);
	if (!o->ctx || EVP_PKEY_sign_init(o->ctx) <= 0 ||
	    (alg == FX_KEY_RSA_2048 && (EVP_PKEY_CTX_set_rsa_padding(o->ctx, RSA_PKCS1_PADDING) <= 0 ||
					EVP_PKEY_CTX_set_signature_md(o->ctx, EVP_sha256()) <= 0)))
		return tr_error_set_openssl(TR_ECRYPTO, "preparing the OpenSSL baseline");
	return 0;
}

/* EVP_DigestSign with SM3 and the distinguishing ID, as SM2(7) shows it. */
static int openssl_sign_sm2(openssl_signer *o)
{
	unsigned char sig[128];
	size_t len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, o->key, NULL);
	int ok = md && pctx &&
		 EVP_PKEY_CTX_set1_id(pctx, SM2_DEFAULT_ID, strlen(SM2_DEFAULT_ID)) == 1;

	if (ok) {
		EVP_MD_CTX_set_pkey_ctx(md, pctx); /* md does not take ownership */
		ok = EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, o->key) == 1 &&
		     EVP_DigestSign(md, sig, &len, (const unsigned char *)data32, 32) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	return ok ? 0 : tr_error_set_openssl(TR_ECRYPTO, "EVP_DigestSign (SM2 with SM3)");
}

static int openssl_sign(openssl_signer *o)
{
	unsigned char sig[512];
	size_t len = sizeof(sig);

	if (o->sm2)
		return openssl_sign_sm2(o);
	return EVP_PKEY_sign(o->ctx, sig, &len, o->digest, sizeof(o->digest)) == 1 ? 0 :
	       tr_error_set_openssl(TR_ECRYPTO, "EVP_PKEY_sign");
}

static void openssl_close(openssl_signer *o)
{
	EVP_PKEY_CTX_free(o->ctx);
	EVP_PKEY_free(o->key);
}

/* A C_SignInit + C_Sign loop on one module: no harness around it. */
typedef struct raw_signer {
	tr_p11mod *mod;
	CK_FUNCTION_LIST *fn;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM mech;
	unsigned char data[32];
} raw_signer;

static int raw_open(raw_signer *r, const char *module, const char *label, int rsa,
		    const char *pin)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BYTE id = 1;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, &id, 1 } };
	CK_SLOT_ID slot;
	CK_ULONG found = 0;
	CK_RV rv;
	int error;

	memset(r, 0, sizeof(*r));
	memset(r->data, 0x5a, sizeof(r->data));
	r->mech.mechanism = rsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA;
	if ((error = tr_p11mod_load(&r->mod, module)) < 0)
		return error;
	r->fn = tr_p11mod_functions(r->mod);
	if ((error = tr_p11mod_find_token(r->mod, label, &slot)) < 0)
		return error;
	rv = r->fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &r->s);
	if (rv == CKR_OK) {
		rv = r->fn->C_Login(r->s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
	}
	if (rv == CKR_OK)
		rv = r->fn->C_FindObjectsInit(r->s, tmpl, 2);
	if (rv == CKR_OK) {
		rv = r->fn->C_FindObjects(r->s, &r->key, 1, &found);
		r->fn->C_FindObjectsFinal(r->s);
	}
	if (rv != CKR_OK || found != 1)
		return tr_error_set(TR_EIO, "direct C_Sign set-up on %s: %s", label,
				    rv != CKR_OK ? tr_p11_rv_name(rv) : "no key");
	return 0;
}

static int raw_sign(raw_signer *r)
{
	unsigned char sig[512];
	CK_ULONG len = sizeof(sig);
	CK_RV rv = r->fn->C_SignInit(r->s, &r->mech, r->key);

	if (rv == CKR_OK)
		rv = r->fn->C_Sign(r->s, r->data, sizeof(r->data), sig, &len);
	return rv == CKR_OK ? 0 : tr_error_set(TR_EIO, "C_Sign: %s", tr_p11_rv_name(rv));
}

static void raw_close(raw_signer *r)
{
	if (r->fn && r->s)
		r->fn->C_CloseSession(r->s);
	tr_p11mod_release(r->mod);
}

/* --- one token kind and algorithm --------------------------------------- */

/*
 * SoftHSM columns time raw OpenSSL, the module's C_Sign loop, the same
 * through the interposer, the harness and a portal login. Card columns
 * (vcard: APDUs through pcscd; opensc: PKCS#11 through OpenSC to the same
 * card) have no module loop of their own: raw OpenSSL on the same key type
 * is their floor, and a vcard column also times a bare APDU round trip,
 * the floor of the time inside the card.
 */
typedef struct column {
	const tr_token_ref *ref;
	int card, pcsc;
	fx_key_alg alg;
	openssl_signer ossl;
	raw_signer module, shim;  /* softhsm */
	vc_bench_link *link;      /* vcard */
	tr_token *tok;
	tr_portal_client *pc;
	metric *m_ossl, *m_rtt, *m_module, *m_shim, *m_sign, *m_inside, *m_overhead, *m_login;
} column;

static int sample_column(bench *b, column *c, unsigned n, int timed)
{
	int error = 0;

	for (unsigned i = 0; i < n && !error; i++) {
		uint64_t t0 = tr_clock_ns(), t1;
		unsigned char *sig = NULL;
		size_t sig_len;
		uint64_t inside = 0;
		tr_login_result res;

		if ((error = openssl_sign(&c->ossl)) < 0)
			break;
		t1 = tr_clock_ns();
		if (timed)
			tr_samples_add(&c->m_ossl->s, t1 - t0);

		if (c->link) {
			uint64_t rtt;

			if ((error = vc_bench_roundtrips(c->link, 1, &rtt)) < 0)
				break;
			if (timed)
				tr_samples_add(&c->m_rtt->s, rtt);
		}

		if (!c->card) {
			t0 = tr_clock_ns();
			if ((error = raw_sign(&c->module)) < 0)
				break;
			t1 = tr_clock_ns();
			if (timed)
				tr_samples_add(&c->m_module->s, t1 - t0);

			t0 = tr_clock_ns();
			if ((error = raw_sign(&c->shim)) < 0)
				break;
			t1 = tr_clock_ns();
			if (timed)
				tr_samples_add(&c->m_shim->s, t1 - t0);
		}

		t0 = tr_clock_ns();
		error = tr_token_sign(c->tok, (const unsigned char *)data32, 32, &sig, &sig_len,
				      &inside);
		t1 = tr_clock_ns();
		free(sig);
		if (error < 0)
			break;
		if (timed) {
			tr_samples_add(&c->m_sign->s, t1 - t0);
			tr_samples_add(&c->m_inside->s, inside);
			tr_samples_add(&c->m_overhead->s, t1 - t0 - inside);
		}

		/* A portal login costs ~100x a signature: one in ten rounds. */
		if (c->pc && i % 10 == 0) {
			if ((error = tr_login_run(c->pc, c->tok, "reg", "5.0.22.606", NULL, NULL,
						  &res)) < 0)
				break;
			if (res.answer.status != 200) {
				error = tr_error_set(TR_ERROR, "bench login refused: HTTP %ld %s",
						     res.answer.status,
						     res.answer.body ? res.answer.body : "");
				tr_login_result_clear(&res);
				break;
			}
			if (timed)
				tr_samples_add(&c->m_login->s, res.total_ns);
			tr_login_result_clear(&res);
		}
	}
	(void)b;
	return error;
}

/*
 * Closes a round of every metric the column feeds: `compare` takes one
 * value per round, the unit that is independent of the machine's moods.
 */
static int end_round(column *c)
{
	metric *fed[] = { c->m_ossl, c->m_rtt, c->m_module, c->m_shim, c->m_sign,
			  c->m_inside, c->m_overhead, c->m_login };

	for (size_t i = 0; i < sizeof(fed) / sizeof(fed[0]); i++) {
		metric *m = fed[i];
		size_t *grown;

		if (!m || m->s.n == (m->n_rounds ? m->round_end[m->n_rounds - 1] : 0))
			continue; /* nothing sampled in this round */
		if (!(grown = realloc(m->round_end, (m->n_rounds + 1) * sizeof(*grown))))
			return tr_error_set(TR_ENOMEM, "out of memory");
		m->round_end = grown;
		m->round_end[m->n_rounds++] = m->s.n;
	}
	return 0;
}

static int open_column(bench *b, column *c, const char *shim)
{
	int rsa = !strcmp(c->ref->algorithm, "rsa2048");
	const char *kind = c->ref->kind, *alg = c->ref->algorithm;
	const char *url = tr_env_portal_url(b->env, c->ref->portal);
	int error;

	c->card = tr_kind_has(kind, TR_KIND_CARD);
	c->pcsc = tr_kind_has(kind, TR_KIND_APDU);
	c->alg = rsa ? FX_KEY_RSA_2048 : !strcmp(alg, "sm2") ? FX_KEY_SM2 : FX_KEY_EC_P256;
	if ((error = openssl_open(&c->ossl, c->alg)) < 0)
		return error;
	if (!c->card &&
	    ((error = raw_open(&c->module, SH_SOFTHSM_MODULE, c->ref->label, rsa, c->ref->pin)) < 0 ||
	     (error = raw_open(&c->shim, shim, c->ref->label, rsa, c->ref->pin)) < 0))
		return error;
	/* The round-trip link selects PIV before the token logs in. */
	if (c->pcsc && (error = vc_bench_link_open(&c->link, c->ref->reader)) < 0)
		return tr_error_set(error, "%s/%s: %s", kind, alg, tr_error_last());
	error = c->pcsc ? tr_token_open_pcsc(&c->tok, c->ref->reader) :
		tr_token_open_p11(&c->tok, c->ref->module, c->ref->uri);
	if (error < 0 || (error = tr_token_login(c->tok, c->ref->pin)) < 0)
		return tr_error_set(error, "%s/%s: %s", kind, alg, tr_error_last());
	if (url && (error = tr_portal_client_new(&c->pc, url, tr_env_ca_bundle(b->env), 10000)) < 0)
		return error;
	c->m_ossl = add_metric(b, kind, alg, "openssl.sign", NULL);
	if (c->card) {
		if (c->pcsc)
			c->m_rtt = add_metric(b, kind, alg, "apdu.roundtrip", NULL);
		c->m_sign = add_metric(b, kind, alg, "token.sign", c->m_ossl);
		c->m_inside = add_metric(b, kind, alg, "token.inside",
					 c->pcsc ? c->m_rtt : c->m_ossl);
	} else {
		c->m_module = add_metric(b, kind, alg, "module.c_sign", c->m_ossl);
		c->m_shim = add_metric(b, kind, alg, "interposer.c_sign", c->m_module);
		c->m_sign = add_metric(b, kind, alg, "token.sign", c->m_module);
		c->m_inside = add_metric(b, kind, alg, "token.inside", c->m_module);
	}
	c->m_overhead = add_metric(b, kind, alg, "harness.overhead", NULL);
	c->m_login = add_metric(b, kind, alg, "portal.login", c->m_sign);
	if (!c->m_login)
		return tr_error_set(TR_EINVAL, "too many metrics");
	return 0;
}

static void close_column(column *c)
{
	openssl_close(&c->ossl);
	raw_close(&c->module);
	raw_close(&c->shim);
	vc_bench_link_close(c->link);
	tr_token_close(c->tok);
	tr_portal_client_free(c->pc);
	memset(c, 0, sizeof(*c));
}

/* --- concurrency: K tokens signing at once ------------------------------ */

typedef struct worker {
	const tr_token_ref *ref;
	unsigned count;
	pthread_barrier_t *go;
	pthread_mutex_t *started;   /* held until the barrier is made for those that started */
	tr_samples s;
	int error;
	char why[256];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	tr_token *tok = NULL;

	w->error = tr_token_open_p11(&tok, w->ref->module, w->ref->uri);
	if (!w->error)
		w->error = tr_token_login(tok, w->ref->pin);
	pthread_mutex_lock(w->started);
	pthread_mutex_unlock(w->started);
	pthread_barrier_wait(w->go);
	for (unsigned i = 0; i < w->count && !w->error; i++) {
		unsigned char *sig = NULL;
		size_t len;
		uint64_t inside, t0 = tr_clock_ns();

		w->error = tr_token_sign(tok, (const unsigned char *)data32, 32, &sig, &len, &inside);
		tr_samples_add(&w->s, tr_clock_ns() - t0);
		free(sig);
	}
	if (w->error)
		snprintf(w->why, sizeof(w->why), "%s", tr_error_last());
	tr_token_close(tok);
	return NULL;
}

static int run_concurrency(bench *b, const tr_token_ref **refs, size_t n_refs, const char *kind,
			   const char *alg)
{
	unsigned per = b->opts->count / 4 ? b->opts->count / 4 : 1;
	int error = 0;

	for (unsigned k = 1; k <= b->opts->max_threads && k <= n_refs && !error; k *= 2) {
		pthread_t th[64];
		worker w[64];
		pthread_barrier_t go;
		pthread_mutex_t started = PTHREAD_MUTEX_INITIALIZER;
		tr_samples all = { 0 };
		tr_summary sum;
		uint64_t start, wall;
		unsigned n = 0;
		int rc = 0;

		memset(w, 0, sizeof(w));
		/*
		 * The barrier counts the signers that did start: one that fails
		 * to start must not leave the others waiting for it forever.
		 */
		pthread_mutex_lock(&started);
		for (; n < k; n++) {
			w[n] = (worker){ .ref = refs[n], .count = per, .go = &go, .started = &started };
			if ((rc = pthread_create(&th[n], NULL, work, &w[n])) != 0)
				break;
		}
		pthread_barrier_init(&go, NULL, n + 1);
		pthread_mutex_unlock(&started);
		pthread_barrier_wait(&go);
		start = tr_clock_ns();
		for (unsigned i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		wall = tr_clock_ns() - start;
		pthread_barrier_destroy(&go);
		if (rc != 0)
			error = tr_error_set(TR_ERROR, "starting concurrent signer %u of %u: %s", n + 1,
					     k, strerror(rc));
		for (unsigned i = 0; i < n; i++) {
			if (w[i].error && !error)
				error = tr_error_set(w[i].error, "concurrent signer %u: %s", i, w[i].why);
			for (size_t j = 0; j < w[i].s.n; j++)
				tr_samples_add(&all, w[i].s.ns[j]);
			tr_samples_free(&w[i].s);
		}
		tr_stats_summarize(&all, &sum);
		json_array_append_new(b->concurrency, json_pack(
			"{s:s, s:s, s:i, s:I, s:f, s:f, s:f}", "kind", kind, "algorithm", alg,
			"signers", (int)k, "signatures", (json_int_t)all.n, "per_second",
			(double)all.n / ((double)wall / 1e9), "p50_us", sum.p50 / 1e3,
			"p99_us", sum.p99 / 1e3));
		tr_samples_free(&all);
	}
	return error;
}

/* --- the cost of taking a sample itself --------------------------------- */

static double timer_overhead(void)
{
	tr_samples s = { 0 };
	const unsigned n = 200000;
	uint64_t start = tr_clock_ns();

	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = tr_clock_ns();

		tr_samples_add(&s, tr_clock_ns() - t0);
	}
	start = tr_clock_ns() - start;
	tr_samples_free(&s);
	return (double)start / n;
}

/* --- output ------------------------------------------------------------- */

static json_t *machine_facts(const char *softhsm_version)
{
	char model[256] = "unknown", line[512], rev[64] = "unknown";
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");
	json_t *libs;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	if (f)
		fclose(f);
	if ((f = popen("git rev-parse --short HEAD 2>/dev/null", "r")) != NULL) {
		if (fgets(rev, sizeof(rev), f))
			rev[strcspn(rev, "\n")] = '\0';
		if (pclose(f) != 0)
			snprintf(rev, sizeof(rev), "unknown");
	}
	uname(&u);
	libs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "openssl", OpenSSL_version(OPENSSL_VERSION),
			 "softhsm", softhsm_version, "libcurl", curl_version_info(CURLVERSION_NOW)->version,
			 "libmicrohttpd", MHD_get_version(), "jansson", JANSSON_VERSION);
	return json_pack("{s:s, s:i, s:s, s:o, s:s}", "cpu_model", model, "cores",
			 (int)sysconf(_SC_NPROCESSORS_ONLN), "kernel", u.release, "libraries", libs,
			 "git_revision", rev);
}

static json_t *metric_json(const metric *m)
{
	tr_summary sum, base;
	tr_histogram h;
	json_t *samples = json_array(), *hist = json_array(), *rounds = json_array(), *o;

	tr_stats_summarize(&m->s, &sum);
	for (size_t r = 0; r < m->n_rounds; r++)
		json_array_append_new(rounds, json_integer((json_int_t)(m->round_end[r] -
									(r ? m->round_end[r - 1] : 0))));
	tr_stats_histogram(&m->s, &h);
	for (size_t i = 0; i < m->s.n; i++)
		json_array_append_new(samples, json_integer((json_int_t)m->s.ns[i]));
	for (int i = 0; i < TR_HIST_BINS; i++)
		json_array_append_new(hist, json_pack("{s:f, s:I}", "from_us", h.lower[i] / 1e3,
						      "count", (json_int_t)h.count[i]));
	o = json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}, s:o, s:o, s:o}",
		      "kind", m->kind, "algorithm", m->algorithm, "stage", m->stage, "unit", "ns",
		      "summary", "n", (json_int_t)sum.n, "min_us", sum.min / 1e3, "p50_us", sum.p50 / 1e3,
		      "p90_us", sum.p90 / 1e3, "p99_us", sum.p99 / 1e3, "max_us", sum.max / 1e3,
		      "mean_us", sum.mean / 1e3, "stddev_us", sum.stddev / 1e3, "outliers",
		      (json_int_t)sum.outliers, "histogram", hist, "samples_ns", samples,
		      "rounds", rounds);
	if (m->baseline) {
		tr_stats_summarize(&m->baseline->s, &base);
		json_object_set_new(o, "baseline", json_string(m->baseline->name));
		json_object_set_new(o, "ratio_p50", json_real(base.p50 > 0 ? sum.p50 / base.p50 : 0));
	}
	return o;
}

static void print_table(bench *b)
{
	printf("\n%-36s %6s %9s %9s %9s %9s %9s %9s %5s  %s\n", "metric (us)", "n", "min", "p50",
	       "p90", "p99", "max", "sd", "outl", "p50 ratio to baseline");
	for (size_t i = 0; i < b->n; i++) {
		const metric *m = &b->m[i];
		tr_summary s, base;

		tr_stats_summarize(&m->s, &s);
		printf("%-36s %6zu %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %5zu", m->name, s.n,
		       s.min / 1e3, s.p50 / 1e3, s.p90 / 1e3, s.p99 / 1e3, s.max / 1e3,
		       s.stddev / 1e3, s.outliers);
		if (m->baseline) {
			tr_stats_summarize(&m->baseline->s, &base);
			printf("  %.3f x %s", base.p50 > 0 ? s.p50 / base.p50 : 0, m->baseline->stage);
		}
		printf("\n");
	}
}

/* Latency targets of one metric's p50, by column and stage. */
static const struct {
	const char *kind, *algorithm, *stage, *what;
	double limit_us;
} p50_targets[] = {
	/* Issue 11: challenge + signed login over kept-alive TLS. */
	{ "softhsm", "p256", "portal.login", "portal login", 600 },
};

static void print_p50_targets(FILE *out, const metric *ms, size_t n)
{
	for (size_t t = 0; t < sizeof(p50_targets) / sizeof(p50_targets[0]); t++) {
		for (size_t i = 0; i < n; i++) {
			tr_summary s;

			if (strcmp(ms[i].kind, p50_targets[t].kind) ||
			    strcmp(ms[i].algorithm, p50_targets[t].algorithm) ||
			    strcmp(ms[i].stage, p50_targets[t].stage) || !ms[i].s.n)
				continue;
			tr_stats_summarize(&ms[i].s, &s);
			fprintf(out, "  %s on %s/%s: p50 %.2f us (target <= %.0f us): %s\n",
				p50_targets[t].what, ms[i].kind, ms[i].algorithm, s.p50 / 1e3,
				p50_targets[t].limit_us,
				s.p50 <= p50_targets[t].limit_us * 1e3 ? "met" : "MISSED");
		}
	}
}

static void print_targets(bench *b)
{
	printf("\ntargets\n");
	printf("  timer and bookkeeping per sample: %.3f us (target <= 1 us): %s\n",
	       b->timer_overhead_ns / 1e3, b->timer_overhead_ns <= 1000 ? "met" : "MISSED");
	for (size_t i = 0; i < b->n; i++) {
		const metric *m = &b->m[i];
		tr_summary s, base;
		double pct;

		if (!m->baseline || strcmp(m->baseline->stage, "module.c_sign") ||
		    (strcmp(m->stage, "token.sign") && strcmp(m->stage, "interposer.c_sign")))
			continue;
		tr_stats_summarize(&m->s, &s);
		tr_stats_summarize(&m->baseline->s, &base);
		pct = base.p50 > 0 ? (s.p50 / base.p50 - 1) * 100 : 0;
		if (!strcmp(m->stage, "token.sign"))
			printf("  harness overhead on %s/%s: %+.2f%% over the direct C_Sign loop "
			       "(target <= 5%%): %s\n", m->kind, m->algorithm, pct,
			       pct <= 5 ? "met" : "MISSED");
		else
			printf("  interposer forwarding on %s/%s: %+.2f%% on the C_Sign loop "
			       "(target <= 3%%): %s\n", m->kind, m->algorithm, pct,
			       pct <= 3 ? "met" : "MISSED");
	}
	/* Issue 3: the virtual card through pcscd. */
	for (size_t i = 0; i < b->n; i++) {
		const metric *rtt = &b->m[i], *ossl = NULL, *inside = NULL;
		tr_summary r, o, in;
		double bound;

		if (strcmp(rtt->stage, "apdu.roundtrip"))
			continue;
		for (size_t j = 0; j < b->n; j++)
			if (!strcmp(b->m[j].kind, rtt->kind) &&
			    !strcmp(b->m[j].algorithm, rtt->algorithm)) {
				if (!strcmp(b->m[j].stage, "openssl.sign"))
					ossl = &b->m[j];
				else if (!strcmp(b->m[j].stage, "token.inside"))
					inside = &b->m[j];
			}
		tr_stats_summarize(&rtt->s, &r);
		printf("  APDU round trip on %s/%s: p50 %.2f us (target <= 150 us): %s\n",
		       rtt->kind, rtt->algorithm, r.p50 / 1e3, r.p50 <= 150000 ? "met" : "MISSED");
		if (!ossl || !inside)
			continue;
		tr_stats_summarize(&ossl->s, &o);
		tr_stats_summarize(&inside->s, &in);
		bound = 1.3 * o.p50 + 2 * r.p50;
		printf("  card signature on %s/%s: p50 %.2f us inside the card, %.2f x raw OpenSSL "
		       "(target <= 1.3 x raw + 2 round trips = %.2f us): %s\n", rtt->kind,
		       rtt->algorithm, in.p50 / 1e3, o.p50 > 0 ? in.p50 / o.p50 : 0, bound / 1e3,
		       in.p50 <= bound ? "met" : "MISSED");
	}
	print_p50_targets(stdout, b->m, b->n);
}

static int write_json(bench *b, const char *softhsm_version)
{
	json_t *root, *metrics = json_object(), *columns = json_array();
	char created[32], *text;
	time_t now = time(NULL);
	struct tm tm;
	int error;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; i < b->n; i++)
		json_object_set_new(metrics, b->m[i].name, metric_json(&b->m[i]));
	/* Every parameter, so that compare can say when two files were made differently. */
	for (size_t i = 0; i < b->n; i++) {
		char col[40];
		size_t k;
		json_t *c;
		int seen = 0;

		snprintf(col, sizeof(col), "%s/%s", b->m[i].kind, b->m[i].algorithm);
		json_array_foreach(columns, k, c)
			seen |= !strcmp(json_string_value(c), col);
		if (!seen)
			json_array_append_new(columns, json_string(col));
	}
	root = json_pack("{s:s, s:s, s:o, s:{s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:o}, s:f, s:o, s:O}",
			 "schema", TR_BENCH_SCHEMA, "created", created,
			 "machine", machine_facts(softhsm_version), "params",
			 "count", (int)b->opts->count, "warmup", (int)b->opts->warmup,
			 "rounds", (int)b->opts->rounds, "threads", (int)b->opts->max_threads,
			 "runs", 1, "latency",
			 b->opts->latency ? json_string(b->opts->latency) : json_null(),
			 "kinds", b->opts->kinds ? json_string(b->opts->kinds) : json_string("all"),
			 "benched", columns, "timer_overhead_us",
			 b->timer_overhead_ns / 1e3, "metrics", metrics,
			 "concurrency", b->concurrency);
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", b->opts->json_path);
	error = tr_fs_write_atomic(b->opts->json_path, text, strlen(text), 0644);
	free(text);
	return error;
}

/* The bench's portal login needs the unit registered once. */
static int prepare_portal(column *c)
{
	tr_login_result res;
	tr_http_answer h;
	const char *session;
	char *body = NULL;
	json_t *req;
	int error;

	if (!c->pc)
		return 0;
	if ((error = tr_portal_client_request(c->pc, "POST", "/admin/reset", NULL, "{}", 2, &h)) < 0)
		return error;
	tr_http_answer_clear(&h);
	if ((error = tr_login_run(c->pc, c->tok, "reg", "5.0.22.606", NULL, NULL, &res)) < 0)
		return error;
	session = json_string_value(json_object_get(res.answer.json, "session"));
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "unit_name", c->ref->unit.unit_name,
			"uscc", c->ref->unit.uscc, "operator_name", c->ref->unit.operator_name,
			"operator_id", c->ref->unit.operator_id, "operator_phone",
			c->ref->unit.operator_phone);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!session || !body) {
		error = tr_error_set(TR_ERROR, "bench: the portal refused the first login");
	} else if ((error = tr_portal_client_request(c->pc, "POST", "/reg/units", session, body,
						     strlen(body), &h)) == 0) {
		tr_http_answer_clear(&h);
	}
	free(body);
	tr_login_result_clear(&res);
	return error;
}

int tr_bench_kind_wanted(const char *kinds, const char *kind)
{
	return tr_kind_listed(kinds, kind);
}

int tr_bench_kinds_check(const char *kinds)
{
	if (tr_kind_list_check(kinds, TR_KIND_RIG) < 0)
		return tr_error_set(TR_EINVAL, "--kinds: %s", tr_error_last());
	return 0;
}

int tr_bench_kinds_cards(const char *kinds)
{
	const tr_kind *k;

	for (size_t i = 0; (k = tr_kind_at(i)) != NULL; i++)
		if ((k->flags & TR_KIND_RIG) && (k->flags & TR_KIND_CARD) &&
		    tr_bench_kind_wanted(kinds, k->name))
			return 1;
	return 0;
}

/* The portal every column logs in to; its profile-"a" token of each kind. */
#define BENCH_PORTAL "suzhou"
#define MAX_COLS 16

/*
 * Columns one after the other in groups: the SoftHSM tokens, then the
 * cards of each algorithm (the readers show one algorithm's cards at a
 * time, and vcard and opensc drive the same card). Within a group the
 * columns are sampled interleaved, in rounds.
 */
static int run_group(bench *b, column *cols, size_t n, const tr_token_ref *tokens,
		     size_t n_tokens, char *softhsm_version, size_t version_len)
{
	const tr_bench_opts *opts = b->opts;
	int error = 0;

	if (tr_kind_has(cols[0].ref->kind, TR_KIND_CARD) &&
	    (error = tr_env_show_cards(b->env, BENCH_PORTAL, cols[0].ref->algorithm)) < 0)
		return tr_error_set(error, "cards for %s/%s: %s", BENCH_PORTAL,
				    cols[0].ref->algorithm, tr_error_last());
	for (size_t i = 0; i < n && !error; i++)
		if ((error = open_column(b, &cols[i], tr_env_shim(b->env))) == 0)
			error = prepare_portal(&cols[i]);
	for (size_t i = 0; i < n && !error; i++) {
		CK_INFO info;

		if (cols[i].module.fn && cols[i].module.fn->C_GetInfo(&info) == CKR_OK) {
			snprintf(softhsm_version, version_len, "%u.%u",
				 info.libraryVersion.major, info.libraryVersion.minor);
			break;
		}
	}
	/* Warm-up, then the metrics interleaved in rounds to spread any drift. */
	for (size_t i = 0; i < n && !error; i++)
		error = sample_column(b, &cols[i], opts->warmup, 0);
	for (unsigned r = 0; r < opts->rounds && !error; r++)
		for (size_t i = 0; i < n && !error; i++)
			if ((error = sample_column(b, &cols[i], opts->count / opts->rounds, 1)) == 0)
				error = end_round(&cols[i]);

	/* A card is one device: concurrency is a SoftHSM figure only. */
	for (size_t i = 0; i < n && !error && !cols[i].card; i++) {
		const tr_token_ref *same[64];
		size_t n_same = 0;

		for (size_t k = 0; k < n_tokens && n_same < 64; k++)
			if (!strcmp(tokens[k].kind, cols[i].ref->kind) &&
			    !strcmp(tokens[k].algorithm, cols[i].ref->algorithm) &&
			    !strcmp(tokens[k].portal, cols[i].ref->portal) &&
			    strcmp(tokens[k].role, "mismatch"))
				same[n_same++] = &tokens[k];
		error = run_concurrency(b, same, n_same, cols[i].ref->kind, cols[i].ref->algorithm);
	}
	for (size_t i = 0; i < n; i++) {
		const tr_token_ref *ref = cols[i].ref;

		close_column(&cols[i]);
		cols[i].ref = ref;
	}
	return error;
}

static const char *group_of(const tr_token_ref *t)
{
	return tr_kind_has(t->kind, TR_KIND_CARD) ? t->algorithm : "";
}

int tr_bench_run(tr_env *env, const tr_bench_opts *opts)
{
	bench b = { .env = env, .opts = opts, .concurrency = json_array() };
	const tr_token_ref *tokens;
	column cols[MAX_COLS];
	size_t n_tokens, n_cols = 0;
	char softhsm_version[32] = "unknown";
	const char *no_cards = tr_env_cards_missing(env);
	int error = 0;

	memset(cols, 0, sizeof(cols));
	if ((error = tr_bench_kinds_check(opts->kinds)) < 0)
		goto out;
	tokens = tr_env_tokens(env, &n_tokens);
	/*
	 * One column per kind and algorithm, on the primary unit's token of one
	 * portal, ordered by group (SoftHSM first, then the cards by algorithm).
	 */
	for (size_t i = 0; i < n_tokens; i++) {
		const tr_token_ref *t = &tokens[i];
		int seen = 0;

		if (strcmp(t->role, "a") || strcmp(t->portal, BENCH_PORTAL) ||
		    !tr_bench_kind_wanted(opts->kinds, t->kind))
			continue;
		for (size_t k = 0; k < n_cols; k++)
			seen |= !strcmp(group_of(cols[k].ref), group_of(t));
		if (seen)
			continue; /* its group's columns are gathered below */
		for (size_t j = i; j < n_tokens && n_cols < MAX_COLS; j++)
			if (!strcmp(tokens[j].role, "a") && !strcmp(tokens[j].portal, BENCH_PORTAL) &&
			    tr_bench_kind_wanted(opts->kinds, tokens[j].kind) &&
			    !strcmp(group_of(&tokens[j]), group_of(t)))
				cols[n_cols++].ref = &tokens[j];
	}
	if (no_cards[0] && tr_bench_kinds_cards(opts->kinds)) {
		if (opts->kinds) {
			error = tr_error_set(TR_EDEPEND, "no virtual cards: %s", no_cards);
			goto out;
		}
		printf("no virtual cards (%s): SoftHSM tokens only\n", no_cards);
	}
	if (!n_cols) {
		error = tr_error_set(TR_EDEPEND, "no token of the kinds asked for on %s",
				     BENCH_PORTAL);
		goto out;
	}

	b.timer_overhead_ns = timer_overhead();
	for (size_t i = 0, end; i < n_cols && !error; i = end) {
		for (end = i + 1; end < n_cols && !strcmp(group_of(cols[end].ref),
							   group_of(cols[i].ref)); end++)
			;
		error = run_group(&b, &cols[i], end - i, tokens, n_tokens, softhsm_version,
				  sizeof(softhsm_version));
	}
	for (size_t i = 0; i < n_cols; i++)
		close_column(&cols[i]);
	if (!error) {
		size_t i;
		json_t *row;

		print_table(&b);
		printf("\nconcurrency (SoftHSM only: a card is one device; signers on distinct "
		       "tokens, one session each)\n");
		if (!json_array_size(b.concurrency))
			printf("  (no SoftHSM column)\n");
		json_array_foreach(b.concurrency, i, row)
			printf("  %s/%s x%-3lld %9.0f signatures/s   p50 %8.2f us   p99 %8.2f us\n",
			       json_string_value(json_object_get(row, "kind")),
			       json_string_value(json_object_get(row, "algorithm")),
			       json_integer_value(json_object_get(row, "signers")),
			       json_real_value(json_object_get(row, "per_second")),
			       json_real_value(json_object_get(row, "p50_us")),
			       json_real_value(json_object_get(row, "p99_us")));
		print_targets(&b);
		if (opts->json_path && (error = write_json(&b, softhsm_version)) == 0)
			printf("\nwritten: %s\n", opts->json_path);
	}
out:
	for (size_t i = 0; i < b.n; i++) {
		tr_samples_free(&b.m[i].s);
		free(b.m[i].round_end);
	}
	json_decref(b.concurrency);
	return error;
}

/* --- several runs, one file --------------------------------------------- */

static int merge_metric(metric *m, json_t *const *docs, size_t n, const char *const *paths,
			const char *name, json_t *runs)
{
	for (size_t d = 0; d < n; d++) {
		json_t *o = json_object_get(json_object_get(docs[d], "metrics"), name), *v;
		json_t *rounds = json_object_get(o, "rounds");
		size_t i;

		if (!json_is_array(json_object_get(o, "samples_ns")) || !json_is_array(rounds))
			return tr_error_set(TR_EPARSE, "%s: no metric %s with samples and rounds",
					    paths[d], name);
		json_array_foreach(json_object_get(o, "samples_ns"), i, v)
			if (tr_samples_add(&m->s, (uint64_t)json_integer_value(v)) < 0)
				return tr_error_set(TR_ENOMEM, "out of memory");
		json_array_foreach(rounds, i, v) {
			size_t *grown = realloc(m->round_end, (m->n_rounds + 1) * sizeof(*grown));

			if (!grown)
				return tr_error_set(TR_ENOMEM, "out of memory");
			m->round_end = grown;
			m->round_end[m->n_rounds] = (m->n_rounds ? m->round_end[m->n_rounds - 1] : 0) +
						    (size_t)json_integer_value(v);
			m->n_rounds++;
		}
		json_array_append_new(runs, json_integer((json_int_t)json_array_size(rounds)));
	}
	if (!m->n_rounds || m->round_end[m->n_rounds - 1] != m->s.n)
		return tr_error_set(TR_EPARSE, "metric %s: rounds and samples disagree", name);
	return 0;
}

int tr_bench_merge(const char *const *paths, size_t n, const char *out_path, FILE *out)
{
	json_t *docs[64] = { 0 }, *root = NULL, *metrics, *conc, *runs[MAX_METRICS] = { 0 }, *o;
	metric *ms = calloc(MAX_METRICS, sizeof(*ms));
	size_t n_m = 0;
	const char *name;
	char *text = NULL;
	int error = 0;

	if (!ms)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (!n || n > 64) {
		error = tr_error_set(TR_EINVAL, "1 to 64 runs to merge");
		goto out;
	}
	for (size_t d = 0; d < n; d++) {
		json_error_t jerr;

		if (!(docs[d] = json_load_file(paths[d], 0, &jerr)) ||
		    !json_is_object(json_object_get(docs[d], "metrics"))) {
			error = tr_error_set(TR_EPARSE, "%s: not a bench file: %s", paths[d],
					     docs[d] ? "no metrics" : jerr.text);
			goto out;
		}
	}
	json_object_foreach(json_object_get(docs[0], "metrics"), name, o) {
		metric *m = &ms[n_m];

		if (n_m == MAX_METRICS) {
			error = tr_error_set(TR_EINVAL, "too many metrics");
			goto out;
		}
		snprintf(m->name, sizeof(m->name), "%s", name);
		snprintf(m->kind, sizeof(m->kind), "%s", json_string_value(json_object_get(o, "kind")) ?
			 json_string_value(json_object_get(o, "kind")) : "");
		snprintf(m->algorithm, sizeof(m->algorithm), "%s",
			 json_string_value(json_object_get(o, "algorithm")) ?
			 json_string_value(json_object_get(o, "algorithm")) : "");
		snprintf(m->stage, sizeof(m->stage), "%s", json_string_value(json_object_get(o, "stage")) ?
			 json_string_value(json_object_get(o, "stage")) : "");
		runs[n_m] = json_array();
		n_m++;
		if ((error = merge_metric(m, docs, n, paths, name, runs[n_m - 1])) < 0)
			goto out;
	}
	for (size_t i = 0; i < n_m; i++) {
		const char *b = json_string_value(json_object_get(
			json_object_get(json_object_get(docs[0], "metrics"), ms[i].name), "baseline"));

		for (size_t j = 0; b && j < n_m; j++)
			if (!strcmp(ms[j].name, b))
				ms[i].baseline = &ms[j];
	}
	root = json_deep_copy(docs[0]);
	metrics = json_object();
	conc = json_array();
	for (size_t i = 0; i < n_m; i++) {
		json_t *mj = metric_json(&ms[i]);

		json_object_set(mj, "runs", runs[i]);
		json_object_set_new(metrics, ms[i].name, mj);
	}
	for (size_t d = 0; d < n; d++) {
		size_t i;
		json_t *row;

		json_array_foreach(json_object_get(docs[d], "concurrency"), i, row) {
			json_t *copy = json_deep_copy(row);

			json_object_set_new(copy, "run", json_integer((json_int_t)d + 1));
			json_array_append_new(conc, copy);
		}
	}
	json_object_set_new(root, "metrics", metrics);
	json_object_set_new(root, "concurrency", conc);
	json_object_set_new(json_object_get(root, "params"), "runs", json_integer((json_int_t)n));
	if (!(text = json_dumps(root, JSON_COMPACT))) {
		error = tr_error_set(TR_ENOMEM, "out of memory writing %s", out_path);
		goto out;
	}
	if ((error = tr_fs_write_atomic(out_path, text, strlen(text), 0644)) < 0)
		goto out;
	fprintf(out, "\n%zu runs merged (one process each)\n%-36s %6s %9s %9s %9s  %s\n", n,
		"metric (us)", "n", "p50", "p90", "p99", "p50 ratio to baseline");
	for (size_t i = 0; i < n_m; i++) {
		tr_summary s, base;

		tr_stats_summarize(&ms[i].s, &s);
		fprintf(out, "%-36s %6zu %9.2f %9.2f %9.2f", ms[i].name, s.n, s.p50 / 1e3,
			s.p90 / 1e3, s.p99 / 1e3);
		if (ms[i].baseline) {
			tr_stats_summarize(&ms[i].baseline->s, &base);
			fprintf(out, "  %.3f x %s", base.p50 > 0 ? s.p50 / base.p50 : 0,
				ms[i].baseline->stage);
		}
		fprintf(out, "\n");
	}
	fprintf(out, "\ntargets (all runs)\n");
	print_p50_targets(out, ms, n_m);
	fprintf(out, "\nwritten: %s\n", out_path);
out:
	free(text);
	json_decref(root);
	for (size_t d = 0; d < n && d < 64; d++)
		json_decref(docs[d]);
	for (size_t i = 0; i < MAX_METRICS; i++) {
		json_decref(runs[i]);
		tr_samples_free(&ms[i].s);
		free(ms[i].round_end);
	}
	free(ms);
	return error;
}
