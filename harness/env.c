#include "harness/env.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/p11mod.h"
#include "common/proc.h"
#include "emulators/softhsm/provision.h"
#include "fixtures/pki.h"
#include "fixtures/provinces.h"
#include "harness/cards.h"
#include "harness/fixture_cache.h"
#include "harness/kinds.h"
#include "harness/profiles.h"
#include "harness/version.h"
#include "emulators/vcard/pcscd.h"
#include "emulators/vcard/vc_provision.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 5000

/*
 * The portals the rig serves are the province registry's rows, in its
 * order (fixtures/provinces.h): PORTAL(p)->name is the portal and the CA
 * that issues its tokens, ->legacy_ca its old CA system or NULL, ->enc_cert
 * whether its tokens carry an encryption certificate too.
 */
#define N_PORTALS ((size_t)FX_PROVINCE_COUNT)
#define PORTAL(p) fx_province_at(p)

static const struct {
	const char *name;
	fx_key_alg alg;
} algorithms[] = {
	{ "p256", FX_KEY_EC_P256 },
	{ "rsa2048", FX_KEY_RSA_2048 },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct tr_env {
	char dir[PATH_MAX];
	char ca_bundle[PATH_MAX];
	int detach;
	int std_socket;        /* no mount namespace: the cards' pcscd has the standard socket */
	pid_t portal_pid;
	json_t *urls;
	tr_token_ref *tokens;
	size_t n_tokens;
	tr_p11mod *softhsm;   /* held so the module is loaded once per run */
	char shim[PATH_MAX];  /* the interposer every SoftHSM token is used through */
	char shim_conf[PATH_MAX];
	char shim_base[PATH_MAX + 256];
	char pki_dir[PATH_MAX];
	tr_cards *cards;
	tr_p11mod *opensc;    /* held: OpenSC reads every card when it starts */
	char cards_missing[512];
	char shown[48];          /* "portal/algorithm" of the cards in the readers */
	char startup[512];       /* where the start-up went: "pki 0.03 s, ..." */
	uint64_t phase_ns;       /* when the last phase of it ended */
	struct {
		char path[PATH_MAX + 64];
		char *text;   /* the CRL as env up left it */
		size_t len;
	} crls[2 * N_PORTALS]; /* each portal's CA and legacy CA */
	size_t n_crls;
	int provision_only;      /* a run's env with workers: no process of its own */
	unsigned n_readers;      /* card readers a worker's cards need */
	int pids_written;        /* DIR/pids is this env's */
};

/* Ends a phase of the start-up: its name and seconds go to env->startup. */
static void phase_end(tr_env *env, const char *name)
{
	uint64_t now = tr_clock_ns();
	size_t n = strlen(env->startup);

	snprintf(env->startup + n, sizeof(env->startup) - n, "%s%s %.2f s", n ? ", " : "", name,
		 (double)(now - env->phase_ns) / 1e9);
	env->phase_ns = now;
}

/* Remembers every CA's CRL as provisioned; cases may add to them. */
static int snapshot_crls(tr_env *env)
{
	for (size_t p = 0; p < N_PORTALS; p++) {
		const char *cas[2] = { PORTAL(p)->name, PORTAL(p)->legacy_ca };

		for (int k = 0; k < 2 && cas[k]; k++) {
			char path[PATH_MAX + 64];
			int error;

			if (env->n_crls == N_OF(env->crls))
				return tr_error_set(TR_EINVAL, "too many CAs");
			if ((error = tr_fs_pathf(path, sizeof(path), "%s/%s/crl.pem", env->pki_dir,
					   cas[k])) < 0 ||
			    (error = tr_fs_pathf(env->crls[env->n_crls].path, sizeof(env->crls[0].path), "%s",
					   path)) < 0 ||
			    (error = tr_fs_read_all(path, 1 << 22, &env->crls[env->n_crls].text,
						    &env->crls[env->n_crls].len)) < 0)
				return error;
			env->n_crls++;
		}
	}
	return 0;
}

int tr_env_restore_crls(tr_env *env)
{
	for (size_t i = 0; i < env->n_crls; i++) {
		char *now = NULL;
		size_t len = 0;
		int error, same;

		error = tr_fs_read_all(env->crls[i].path, 1 << 22, &now, &len);
		same = !error && len == env->crls[i].len && !memcmp(now, env->crls[i].text, len);
		free(now);
		if (!same && (error = tr_fs_write_atomic(env->crls[i].path, env->crls[i].text,
							 env->crls[i].len, 0644)) < 0)
			return error;
	}
	return 0;
}

/*
 * Certification: every portal's trust bundle (chain.pem, read when the
 * portal starts) gets the certificates of file, or the chain of the
 * fixture CA ca (not added to its own portal's).
 */
static int trust_everywhere(tr_env *env, const char *file, const char *ca)
{
	char from[PATH_MAX + 64], to[PATH_MAX + 64], *add = NULL, *have = NULL;
	size_t add_len = 0, have_len = 0;
	int error = 0;

	if (!file && !ca)
		return 0;
	if (ca && (error = tr_fs_pathf(from, sizeof(from), "%s/%s/chain.pem", env->pki_dir, ca)) < 0)
		return error;
	if ((error = tr_fs_read_all(file ? file : from, 1 << 20, &add, &add_len)) < 0)
		return tr_error_set(error, "--trust %s: %s", file ? file : from, tr_error_last());
	if (!strstr(add, "-----BEGIN CERTIFICATE-----")) {
		free(add);
		return tr_error_set(TR_EPARSE, "%s: no PEM certificate", file ? file : from);
	}
	for (size_t p = 0; p < N_PORTALS && !error; p++) {
		if (ca && !strcmp(PORTAL(p)->name, ca))
			continue;
		if ((error = tr_fs_pathf(to, sizeof(to), "%s/%s/chain.pem", env->pki_dir,
				   PORTAL(p)->name)) < 0 ||
		    (error = tr_fs_read_all(to, 1 << 22, &have, &have_len)) < 0)
			break;
		char *both = malloc(have_len + add_len + 2);

		if (!both) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
		} else {
			memcpy(both, have, have_len);
			both[have_len] = '\n';
			memcpy(both + have_len + 1, add, add_len);
			error = tr_fs_write_atomic(to, both, have_len + 1 + add_len, 0644);
			free(both);
		}
		free(have);
		have = NULL;
	}
	free(add);
	return error;
}

const char *tr_env_pki_dir(const tr_env *env)
{
	return env->pki_dir;
}

static int path_in(const tr_env *env, const char *name, char *buf, size_t len)
{
	return tr_fs_join(buf, len, env->dir, name);
}


static int random_digits(char *out, size_t n)
{
	unsigned char raw[32];

	if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
		return tr_error_set_openssl(TR_ECRYPTO, "RAND_bytes");
	for (size_t i = 0; i < n; i++)
		out[i] = (char)('0' + raw[i] % 10);
	out[n] = '\0';
	return 0;
}

/* A new token's user PIN, by the province's rule: the cards' rule. */
static void default_pin(const char *portal, const fx_unit *unit, char *pin, size_t len)
{
	vc_default_pin(portal, unit, pin, len);
}

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

/*
 * The first token of a unit and algorithm has its key pair generated on the
 * token; the unit's other tokens (the certificate variants) share one
 * software key, imported: RSA generation inside SoftHSM costs ~0.3 s a key.
 */
typedef struct key_cache {
	EVP_PKEY *keys[N_PORTALS][4][2]; /* [portal][unit][alg]; NULL: not made yet */
	EVP_PKEY *enc[N_PORTALS][4][2];  /* the unit's encryption key, where dual */
	unsigned char generated[N_PORTALS][4][2];
} key_cache;

static int cached_key(EVP_PKEY **slot, fx_key_alg alg, EVP_PKEY **out)
{
	int error;

	if (!*slot && (error = fx_key_generate(alg, slot)) < 0)
		return error;
	*out = *slot;
	return 0;
}

/* Keeps what a token's certificate says, for variables and restores. */
static int note_cert(tr_token_ref *t, X509 *cert, char *serial, size_t serial_len, int keep)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	unsigned char *der = NULL;
	int n;

	snprintf(serial, serial_len, "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	if (!keep)
		return 0;
	if ((n = i2d_X509(cert, &der)) <= 0)
		return tr_error_set_openssl(TR_ECRYPTO, "encoding a certificate");
	t->cert_der = malloc((size_t)n);
	if (!t->cert_der) {
		OPENSSL_free(der);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	memcpy(t->cert_der, der, (size_t)n);
	t->cert_len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static int provision_one(tr_env *env, fx_pki *pki, key_cache *cache, const tr_profile *prof,
			 size_t portal, size_t alg, const char *so_pin, uint64_t seed)
{
	tr_token_ref *t = &env->tokens[env->n_tokens];
	fx_unit unit, in_cert;
	sh_token_spec spec = {
		.key_label = "unit",
		.key_id = 1,
		.alg = algorithms[alg].alg,
		.unit = &in_cert,
		.ca = PORTAL(portal)->name,
		.variant = variant_of(prof->cert),
		.cert_for_other_key = prof->cert == TR_CERT_KEY_MISMATCH,
	};
	sh_token_made made = { 0 };
	int error;

	if (prof->cert == TR_CERT_LEGACY) {
		if (!PORTAL(portal)->legacy_ca)
			return tr_error_set(TR_EINVAL, "profile %s: portal %s has no legacy CA",
					    prof->name, PORTAL(portal)->name);
		spec.ca = PORTAL(portal)->legacy_ca;
	}

	if ((error = fx_unit_generate(&unit, seed, PORTAL(portal)->name, prof->unit)) < 0)
		return error;
	in_cert = unit;
	if (prof->cert == TR_CERT_STALE_NAME) {
		/* The unit's former name: another generated unit's, same USCC. */
		fx_unit former;

		if ((error = fx_unit_generate(&former, seed, PORTAL(portal)->name,
					      prof->unit + 50)) < 0)
			return error;
		snprintf(in_cert.unit_name, sizeof(in_cert.unit_name), "%s", former.unit_name);
	}
	t->card = -1;
	snprintf(t->kind, sizeof(t->kind), TR_KIND_SOFTHSM);
	snprintf(t->algorithm, sizeof(t->algorithm), "%s", algorithms[alg].name);
	snprintf(t->portal, sizeof(t->portal), "%s", PORTAL(portal)->name);
	snprintf(t->role, sizeof(t->role), "%s", prof->name);
	snprintf(t->label, sizeof(t->label), "%.10s-%.12s-%s", PORTAL(portal)->name, prof->name,
		 algorithms[alg].name);
	snprintf(t->module, sizeof(t->module), "%s", env->shim);
	snprintf(t->uri, sizeof(t->uri), "pkcs11:token=%s;object=unit", t->label);
	t->unit = unit;
	default_pin(PORTAL(portal)->name, &unit, t->pin, sizeof(t->pin));
	snprintf(t->so_pin, sizeof(t->so_pin), "%s", so_pin);
	spec.label = t->label;
	spec.user_pin = t->pin;
	spec.so_pin = t->so_pin;
	snprintf(t->ca, sizeof(t->ca), "%s", spec.ca);
	if (prof->unit < 4 && portal < N_PORTALS) {
		unsigned char *gen = &cache->generated[portal][prof->unit][alg];

		if (*gen && (error = cached_key(&cache->keys[portal][prof->unit][alg], spec.alg,
						&spec.import_key)) < 0)
			return error;
		*gen = 1;
		if (PORTAL(portal)->enc_cert &&
		    (error = cached_key(&cache->enc[portal][prof->unit][alg], spec.alg,
					&spec.enc_key)) < 0)
			return error;
	}
	error = sh_softhsm_provision(SH_SOFTHSM_MODULE, pki, &spec, &made);
	if (!error)
		error = note_cert(t, made.cert, t->cert_serial, sizeof(t->cert_serial), 1);
	if (!error && made.enc_cert)
		error = note_cert(t, made.enc_cert, t->enc_serial, sizeof(t->enc_serial), 0);
	X509_free(made.cert);
	X509_free(made.enc_cert);
	if (error < 0)
		return error;
	env->n_tokens++;
	return 0;
}

static int provision_tokens(tr_env *env, fx_pki *pki, const char *profiles_path,
			    uint64_t seed)
{
	tr_profile *profiles = NULL;
	size_t n_profiles = 0;
	key_cache cache = { 0 };
	char so_pin[16];
	int error;

	if ((error = random_digits(so_pin, 8)) < 0 ||
	    (error = tr_profiles_load(profiles_path, &profiles, &n_profiles)) < 0)
		return error;
	/* SoftHSM tokens, then cards (3 algorithms) each also seen through OpenSC. */
	env->tokens = calloc(N_PORTALS * n_profiles * (N_OF(algorithms) + 6) + 1,
			     sizeof(*env->tokens));
	if (!env->tokens) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t p = 0; p < N_PORTALS; p++)
		for (size_t i = 0; i < n_profiles; i++) {
			if (!tr_profile_for_portal(&profiles[i], PORTAL(p)->name))
				continue;
			for (size_t a = 0; a < N_OF(algorithms); a++)
				if ((error = provision_one(env, pki, &cache, &profiles[i], p, a,
							   so_pin, seed)) < 0)
					goto out;
		}
out:
	for (size_t p = 0; p < N_PORTALS; p++)
		for (size_t u = 0; u < 4; u++)
			for (size_t a = 0; a < 2; a++) {
				EVP_PKEY_free(cache.keys[p][u][a]);
				EVP_PKEY_free(cache.enc[p][u][a]);
			}
	free(profiles);
	return error;
}

/* --- virtual cards ------------------------------------------------------- */

static const struct {
	const char *name;
	fx_key_alg alg;
} card_algorithms[] = {
	{ "p256", FX_KEY_EC_P256 },
	{ "rsa2048", FX_KEY_RSA_2048 },
	{ "sm2", FX_KEY_SM2 },
};

static int card_image(tr_env *env, fx_pki *pki, const tr_profile *prof, size_t portal,
		      size_t alg, uint64_t seed, EVP_PKEY *keys[3], const char *path,
		      tr_token_ref *t)
{
	vc_provision_opts o = {
		.image_path = path, .province = PORTAL(portal)->name, .index = prof->unit,
		.seed = seed, .alg = card_algorithms[alg].alg, .profile = -1, .tries = 3,
		.variant = variant_of(prof->cert),
	};
	fx_unit former;
	vc_image *img = NULL;
	const uint8_t *der;
	size_t len;
	X509 *cert;
	int error;

	memcpy(o.keys, keys, sizeof(o.keys));
	/* A certificate of another key pair in 9A: 9C's key (TK-E07). */
	if (prof->cert == TR_CERT_KEY_MISMATCH)
		o.cert_key_9a = keys[1];
	if (prof->cert == TR_CERT_LEGACY)
		o.ca = PORTAL(portal)->legacy_ca;
	if (prof->cert == TR_CERT_STALE_NAME) {
		if ((error = fx_unit_generate(&former, seed, PORTAL(portal)->name,
					      prof->unit + 50)) < 0)
			return error;
		o.unit_name = former.unit_name;
	}
	if ((error = vc_provision(pki, &o, &img)) < 0)
		return error;
	vc_image_slot_cert(img, VC_SLOT_9A, &der, &len);
	cert = d2i_X509(NULL, &der, (long)len);
	error = cert ? note_cert(t, cert, t->cert_serial, sizeof(t->cert_serial), 1) :
		tr_error_set_openssl(TR_ECRYPTO, "the card's 9A certificate");
	X509_free(cert);
	vc_image_slot_cert(img, VC_SLOT_9D, &der, &len);
	if (!error && len && (cert = d2i_X509(NULL, &der, (long)len)) != NULL) {
		note_cert(t, cert, t->enc_serial, sizeof(t->enc_serial), 0);
		X509_free(cert);
	}
	vc_image_free(img);
	return error;
}

/*
 * One card image per portal, profile and algorithm; a profile's card sits
 * in the same reader in every column. Two kinds use them: "vcard" (the
 * harness speaks APDUs through pcscd) and "opensc" (through OpenSC's
 * PKCS#11 module, which knows no SM2).
 */
static int provision_cards(tr_env *env, fx_pki *pki, const char *profiles_path, uint64_t seed,
			   unsigned *n_readers)
{
	tr_profile *profiles = NULL;
	size_t n_profiles = 0;
	EVP_PKEY *keys[N_PORTALS][4][3][3] = { { { { 0 } } } }; /* [portal][unit][alg][slot] */
	char dir[PATH_MAX + 16];
	int error;

	*n_readers = 0;
	if ((error = tr_fs_pathf(dir, sizeof(dir), "%s/cards/img", env->dir)) < 0 ||
	    (error = tr_fs_mkdirs(dir, 0700)) < 0 ||
	    (error = tr_profiles_load(profiles_path, &profiles, &n_profiles)) < 0)
		return error;
	for (size_t p = 0; p < N_PORTALS && !error; p++) {
		unsigned slot = 0;

		for (size_t i = 0; i < n_profiles && !error; i++) {
			const tr_profile *prof = &profiles[i];

			if (!tr_profile_for_portal(prof, PORTAL(p)->name) || prof->unit >= 4)
				continue;
			for (size_t a = 0; a < N_OF(card_algorithms) && !error; a++) {
				tr_token_ref *t = &env->tokens[env->n_tokens];
				EVP_PKEY **k = keys[p][prof->unit][a];

				for (int j = 0; j < 3 && !error; j++)
					if (!k[j])
						error = fx_key_generate(card_algorithms[a].alg, &k[j]);
				if (error)
					break;
				memset(t, 0, sizeof(*t));
				if ((error = tr_fs_pathf(t->image, sizeof(t->image), "%s/%s-%s-%s.img", dir,
						   PORTAL(p)->name, prof->name,
						   card_algorithms[a].name)) < 0 ||
				    (error = card_image(env, pki, prof, p, a, seed, k, t->image, t)) < 0)
					break;
				snprintf(t->kind, sizeof(t->kind), TR_KIND_VCARD);
				snprintf(t->algorithm, sizeof(t->algorithm), "%s", card_algorithms[a].name);
				snprintf(t->portal, sizeof(t->portal), "%s", PORTAL(p)->name);
				snprintf(t->role, sizeof(t->role), "%s", prof->name);
				snprintf(t->label, sizeof(t->label), "card %u", slot);
				snprintf(t->ca, sizeof(t->ca), "%s", prof->cert == TR_CERT_LEGACY ?
					 PORTAL(p)->legacy_ca : PORTAL(p)->name);
				fx_unit_generate(&t->unit, seed, PORTAL(p)->name, prof->unit);
				vc_default_pin(PORTAL(p)->name, &t->unit, t->pin, sizeof(t->pin));
				snprintf(t->so_pin, sizeof(t->so_pin), "12345678"); /* the PUK */
				t->card = (int)slot;
				vc_pcscd_reader_name(slot, t->reader, sizeof(t->reader));
				env->n_tokens++;
				/* The same card through OpenSC, where OpenSC knows the algorithm. */
				if (card_algorithms[a].alg != FX_KEY_SM2) {
					tr_token_ref *o = &env->tokens[env->n_tokens];
					char reader[160];

					*o = *t;
					o->cert_der = malloc(t->cert_len);
					if (!o->cert_der) {
						error = tr_error_set(TR_ENOMEM, "out of memory");
						break;
					}
					memcpy(o->cert_der, t->cert_der, t->cert_len);
					snprintf(o->kind, sizeof(o->kind), TR_KIND_OPENSC);
					snprintf(o->module, sizeof(o->module), "%s", TR_OPENSC_MODULE);
					tr_p11_uri_escape(t->reader, reader, sizeof(reader));
					snprintf(o->uri, sizeof(o->uri),
						 "pkcs11:slot-description=%s;object=Certificate%%20for%%20PIV%%20Authentication",
						 reader);
					env->n_tokens++;
				}
			}
			slot++;
		}
		if (slot > *n_readers)
			*n_readers = slot;
	}
	for (size_t p = 0; p < N_PORTALS; p++)
		for (size_t u = 0; u < 4; u++)
			for (size_t a = 0; a < 3; a++)
				for (size_t j = 0; j < 3; j++)
					EVP_PKEY_free(keys[p][u][a][j]);
	free(profiles);
	return error;
}

/* OpenSC of the run: no file cache, or re-provisioned cards look stale. */
static int write_opensc_conf(tr_env *env)
{
	static const char text[] =
		"# tokenrig: OpenSC for the rig's virtual cards\n"
		"app default {\n"
		"\tframework pkcs15 {\n"
		"\t\tuse_file_caching = no;\n"
		"\t}\n"
		"}\n"
		"# OpenSC's defaults (16 virtual slots, 4 a card) show only 4 readers.\n"
		"# The PUK unblocks the PIN through PKCS#11 as C_SetPIN(PUK, new PIN) in a\n"
		"# session nobody is logged in to (OpenSC's PIV driver refuses an SO login).\n"
		"app opensc-pkcs11 {\n"
		"\tpkcs11 {\n"
		"\t\tslots_per_card = 1;\n"
		"\t\tmax_virtual_slots = 32;\n"
		"\t\tuser_pin_unblock_style = set_pin_in_unlogged_session;\n"
		"\t}\n"
		"}\n";
	char path[PATH_MAX];
	int error;

	if ((error = path_in(env, "opensc.conf", path, sizeof(path))) < 0 ||
	    (error = tr_fs_write_atomic(path, text, sizeof(text) - 1, 0644)) < 0)
		return error;
	setenv("OPENSC_CONF", path, 1);
	return 0;
}

/* Without root or pcscd the run goes on with SoftHSM tokens; it says why. */
static int cards_possible(tr_env *env)
{
	if (geteuid() != 0)
		return tr_error_set(TR_EDEPEND, "virtual cards need root: the rig's pcscd runs "
				    "in a private mount namespace, or on the standard socket");
	char why[512];
	int where;

	if (access(VC_PCSCD_PATH, X_OK) != 0 || access(VC_VPCD_DRIVER, R_OK) != 0)
		return tr_error_set(TR_EDEPEND, "virtual cards need pcscd and vsmartcard-vpcd "
				    "(ci/install-deps)");
	/* No mount namespace (a container): the standard socket if free, else no cards. */
	if ((where = vc_pcscd_placement(why, sizeof(why))) < 0)
		return where;
	if (where == VC_PCSCD_STANDARD) {
		printf("tokenrig: %s\n", why);
		env->std_socket = 1;
	}
	return 0;
}

/* The card images are made (or copied from the cache): pcscd and the cards. */
static int start_cards(tr_env *env)
{
	size_t before = env->n_tokens;
	int error = 0;

	for (size_t i = 0; i < env->n_tokens && before == env->n_tokens; i++)
		if (env->tokens[i].card >= 0)
			before = i;
	if (before == env->n_tokens || !env->n_readers)
		return 0;
	/* With workers, each starts its own pcscd and cards (tr_env_worker_up). */
	if ((error = write_opensc_conf(env)) == 0 && !env->provision_only)
		error = tr_cards_up(&env->cards, env->dir, env->n_readers, env->tokens[before].image,
				    env->detach);
	phase_end(env, "pcscd+cards up");
	if (!error && env->cards && !env->detach && tr_p11mod_load(&env->opensc, TR_OPENSC_MODULE) < 0)
		env->opensc = NULL; /* the opensc cases then say why themselves */
	if (!error && env->cards)
		phase_end(env, "opensc load");
	if (error == TR_EDEPEND) {
		snprintf(env->cards_missing, sizeof(env->cards_missing), "%s", tr_error_last());
		for (size_t i = before; i < env->n_tokens; i++)
			free(env->tokens[i].cert_der);
		env->n_tokens = before;
	}
	return error;
}

int tr_env_show_cards(tr_env *env, const char *portal, const char *algorithm)
{
	const char *images[16] = { 0 };
	char column[48];
	unsigned n = 0;

	if (!env->cards)
		return tr_error_set(TR_EDEPEND, "no virtual cards: %s", env->cards_missing);
	snprintf(column, sizeof(column), "%s/%s", portal, algorithm);
	if (!strcmp(column, env->shown))
		return 0;
	for (size_t i = 0; i < env->n_tokens; i++) {
		const tr_token_ref *t = &env->tokens[i];

		/* The cards' images are the APDU kind's; OpenSC drives the same cards. */
		if (t->card >= 0 && t->card < 16 && tr_kind_has(t->kind, TR_KIND_CARD | TR_KIND_APDU) &&
		    !strcmp(t->portal, portal) && !strcmp(t->algorithm, algorithm)) {
			images[t->card] = t->image;
			if ((unsigned)t->card + 1 > n)
				n = (unsigned)t->card + 1;
		}
	}
	env->shown[0] = '\0';
	if (tr_cards_show(env->cards, images, n) < 0)
		return TR_EIO;
	snprintf(env->shown, sizeof(env->shown), "%s", column);
	return 0;
}

int tr_env_reset_cards(tr_env *env)
{
	return env->cards ? tr_cards_reset(env->cards) : 0;
}

int tr_env_card_command(tr_env *env, int card, const char *command)
{
	if (!env->cards || card < 0)
		return tr_error_set(TR_EDEPEND, "no virtual card here");
	return tr_cards_command(env->cards, (unsigned)card, command);
}

int tr_env_wait_card(tr_env *env, int card, int present)
{
	if (!env->cards || card < 0)
		return tr_error_set(TR_EDEPEND, "no virtual card here");
	return tr_cards_wait(env->cards, (unsigned)card, present);
}

const char *tr_env_startup(const tr_env *env)
{
	return env->startup;
}

const char *tr_env_cards_missing(const tr_env *env)
{
	return env->cards_missing;
}

int tr_env_card_column(size_t i, const char **kind, const char **algorithm)
{
	const tr_kind *k;
	size_t n = 0;

	/* Every card kind of the rig, on every card algorithm it holds. */
	for (size_t r = 0; (k = tr_kind_at(r)) != NULL; r++) {
		if ((k->flags & (TR_KIND_RIG | TR_KIND_CARD)) != (TR_KIND_RIG | TR_KIND_CARD))
			continue;
		for (size_t a = 0; a < N_OF(card_algorithms); a++) {
			if (card_algorithms[a].alg == FX_KEY_SM2 && !(k->flags & TR_KIND_SM2))
				continue;
			if (n++ == i) {
				*kind = k->name;
				*algorithm = card_algorithms[a].name;
				return 0;
			}
		}
	}
	return -1;
}

/* The interposer's base configuration: SoftHSM behind it, real PIN limits. */
static int write_shim_conf(tr_env *env)
{
	int n, error;

	if ((error = tr_proc_sibling("tokenrig-p11shim.so", env->shim, sizeof(env->shim))) < 0 ||
	    (error = path_in(env, "p11shim.conf", env->shim_conf, sizeof(env->shim_conf))) < 0)
		return error;
	if (access(env->shim, R_OK) != 0)
		return tr_error_set(TR_EDEPEND, "the interposer %s is missing (run make)", env->shim);
	n = snprintf(env->shim_base, sizeof(env->shim_base), TR_ENV_SHIM_BASE, SH_SOFTHSM_MODULE);
	if ((error = tr_fs_write_atomic(env->shim_conf, env->shim_base, (size_t)n, 0644)) < 0)
		return error;
	setenv("TOKENRIG_SHIM_CONF", env->shim_conf, 1);
	return 0;
}

static int start_portal(tr_env *env)
{
	char prog[PATH_MAX], pki[PATH_MAX], ready[PATH_MAX], log[PATH_MAX];
	char list[256] = "";
	char *argv[12];
	int argc = 0, error;
	tr_proc_opts opts = { .log_path = log, .detach = env->detach,
			      .die_with_parent = !env->detach };
	uint64_t deadline;
	json_error_t jerr;

	for (size_t p = 0; p < N_PORTALS; p++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 p ? "," : "", PORTAL(p)->name);
	if ((error = tr_proc_sibling("tokenrig-portal", prog, sizeof(prog))) < 0 ||
	    (error = path_in(env, "pki", pki, sizeof(pki))) < 0 ||
	    (error = path_in(env, "portal.ready", ready, sizeof(ready))) < 0 ||
	    (error = path_in(env, "portal.log", log, sizeof(log))) < 0)
		return error;
	argv[argc++] = prog;
	argv[argc++] = "--portals";
	argv[argc++] = list;
	argv[argc++] = "--pki";
	argv[argc++] = pki;
	argv[argc++] = "--admin";
	argv[argc++] = "--ready";
	argv[argc++] = ready;
	if (!env->detach)
		argv[argc++] = "--die-with-parent";
	argv[argc] = NULL;

	unlink(ready);
	if ((error = tr_proc_spawn(&env->portal_pid, argv, &opts)) < 0)
		return error;
	deadline = tr_deadline_after_ms(READY_TIMEOUT_MS);
	while (access(ready, R_OK) != 0) {
		if (!tr_proc_alive(env->portal_pid))
			return tr_error_set(TR_EIO, "the portal exited while starting; see %s", log);
		if (tr_deadline_passed(deadline))
			return tr_error_set(TR_ETIMEDOUT, "the portal was not ready within %d ms; see %s",
					    READY_TIMEOUT_MS, log);
		tr_poll_pause(deadline, 5);
	}
	env->urls = json_load_file(ready, 0, &jerr);
	if (!json_is_object(env->urls))
		return tr_error_set(TR_EPARSE, "%s:%d: %s", ready, jerr.line, jerr.text);
	return 0;
}

static int write_pids(tr_env *env)
{
	return tr_env_record_pids(env, NULL);
}

static int write_tokens_json(tr_env *env)
{
	json_t *list = json_array();
	char path[PATH_MAX], *text;
	int error;

	for (size_t i = 0; i < env->n_tokens; i++) {
		const tr_token_ref *t = &env->tokens[i];

		json_array_append_new(list, json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}}",
			"kind", t->kind, "algorithm", t->algorithm, "portal", t->portal,
			"role", t->role, "label", t->label, "module", t->module, "uri", t->uri,
			"unit", "name", t->unit.unit_name, "uscc", t->unit.uscc,
			"ss_number", t->unit.ss_number, "operator_name", t->unit.operator_name,
			"operator_id", t->unit.operator_id, "operator_phone", t->unit.operator_phone));
	}
	text = json_dumps(list, JSON_INDENT(1));
	json_decref(list);
	if (!text)
		return tr_error_set(TR_ENOMEM, "out of memory");
	error = path_in(env, "tokens.json", path, sizeof(path));
	if (!error)
		error = tr_fs_write_atomic(path, text, strlen(text), 0644);
	free(text);
	return error;
}

static void sh_quote(FILE *f, const char *name, const char *value)
{
	fprintf(f, "export %s='", name);
	for (; *value; value++) {
		if (*value == '\'')
			fputs("'\\''", f);
		else
			fputc(*value, f);
	}
	fputs("'\n", f);
}

/*
 * One interposer configuration per portal (p11shim-<portal>.conf): the base
 * one with every other portal's token pulled (`token.LABEL.present = no`),
 * so a client sees one portal's tokens, fewer than GnuTLS's 48 slots
 * (p11tool lists nothing on all 63). The PIN state file is the same.
 */
static int write_portal_shim_conf(tr_env *env, const char *portal, char *path, size_t len)
{
	char *text = NULL, name[64];
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	int error;

	if (!f)
		return tr_error_set(TR_ENOMEM, "out of memory");
	fputs(env->shim_base, f);
	fprintf(f, "# %s's tokens only: the other portals' are pulled\n", portal);
	for (size_t i = 0; i < env->n_tokens; i++)
		if (tr_kind_has(env->tokens[i].kind, TR_KIND_INTERPOSER) &&
		    strcmp(env->tokens[i].portal, portal))
			fprintf(f, "token.%s.present = no\n", env->tokens[i].label);
	fclose(f);
	snprintf(name, sizeof(name), "p11shim-%s.conf", portal);
	if ((error = path_in(env, name, path, len)) == 0)
		error = tr_fs_write_atomic(path, text, n, 0644);
	free(text);
	return error;
}

static int write_env_sh(tr_env *env)
{
	char path[PATH_MAX], conf[PATH_MAX + 64], *text = NULL;
	char portal_conf[N_PORTALS][PATH_MAX];
	size_t len = 0;
	FILE *f;
	const tr_token_ref *first = NULL;
	const char *portal;
	json_t *url;
	int error;

	for (size_t p = 0; p < N_PORTALS; p++)
		if ((error = write_portal_shim_conf(env, PORTAL(p)->name, portal_conf[p],
						    sizeof(portal_conf[p]))) < 0)
			return error;
	if (!(f = open_memstream(&text, &len)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	/*
	 * The interposer lists tokens by label: the first one of the default
	 * portal (the first of the table) is what tools use.
	 */
	for (size_t i = 0; i < env->n_tokens; i++)
		if (tr_kind_has(env->tokens[i].kind, TR_KIND_INTERPOSER) &&
		    !strcmp(env->tokens[i].portal, PORTAL(0)->name) &&
		    (!first || strcmp(env->tokens[i].label, first->label) < 0))
			first = &env->tokens[i];
	fputs("# tokenrig environment: source this file. Written by `tokenrig env up`.\n", f);
	if ((error = tr_fs_pathf(conf, sizeof(conf), "%s/softhsm/softhsm2.conf", env->dir)) < 0) {
		fclose(f);
		free(text);
		return error;
	}
	sh_quote(f, "SOFTHSM2_CONF", conf);
	sh_quote(f, "TOKENRIG_P11_MODULE", env->shim);
	fprintf(f, "# The interposer shows one portal's tokens (GnuTLS scans at most 48 slots):\n"
		"# TOKENRIG_SHIM_CONF_<PORTAL> for another portal, _ALL for every token.\n");
	sh_quote(f, "TOKENRIG_SHIM_CONF", portal_conf[0]);
	for (size_t p = 0; p < N_PORTALS; p++) {
		char name[64];

		snprintf(name, sizeof(name), "TOKENRIG_SHIM_CONF_%s", PORTAL(p)->name);
		for (char *c = name; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		sh_quote(f, name, portal_conf[p]);
	}
	sh_quote(f, "TOKENRIG_SHIM_CONF_ALL", env->shim_conf);
	sh_quote(f, "TOKENRIG_SOFTHSM_MODULE", SH_SOFTHSM_MODULE);
	if (first) {
		sh_quote(f, "TOKENRIG_TOKEN_LABEL", first->label);
		sh_quote(f, "TOKENRIG_TOKEN_URI", first->uri);
		sh_quote(f, "TOKENRIG_USER_PIN", first->pin);
		sh_quote(f, "TOKENRIG_SO_PIN", first->so_pin);
	}
	sh_quote(f, "TOKENRIG_CA_BUNDLE", env->ca_bundle);
	if (env->cards) {
		const tr_token_ref *card = NULL;

		for (size_t i = 0; i < env->n_tokens && !card; i++)
			if (tr_kind_has(env->tokens[i].kind, TR_KIND_CARD | TR_KIND_APDU) &&
			    !strcmp(env->tokens[i].portal, PORTAL(0)->name) &&
			    !strcmp(env->tokens[i].role, "a") &&
			    !strcmp(env->tokens[i].algorithm, "p256"))
				card = &env->tokens[i];
		sh_quote(f, "PCSCLITE_CSOCK_NAME", getenv("PCSCLITE_CSOCK_NAME") ?
			 getenv("PCSCLITE_CSOCK_NAME") : "");
		sh_quote(f, "OPENSC_CONF", getenv("OPENSC_CONF") ? getenv("OPENSC_CONF") : "");
		sh_quote(f, "TOKENRIG_OPENSC_MODULE", TR_OPENSC_MODULE);
		if (card) {
			sh_quote(f, "TOKENRIG_VCARD_READER", card->reader);
			sh_quote(f, "TOKENRIG_VCARD_PIN", card->pin);
			sh_quote(f, "TOKENRIG_VCARD_PUK", card->so_pin);
		}
	} else {
		fprintf(f, "# no virtual cards: %s\n", env->cards_missing);
	}
	json_object_foreach(env->urls, portal, url) {
		char name[64];

		snprintf(name, sizeof(name), "TOKENRIG_PORTAL_%s_URL", portal);
		for (char *c = name; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		sh_quote(f, name, json_string_value(url) ? json_string_value(url) : "");
	}
	fclose(f);
	error = path_in(env, "env.sh", path, sizeof(path));
	if (!error)
		error = tr_fs_write_atomic(path, text, len, 0600);
	free(text);
	return error;
}

/* A recorded process still runs: same start time, and not a zombie. */
static int recorded_alive(long pid, unsigned long long start)
{
	return pid > 0 && tr_proc_start_time((pid_t)pid) == start && tr_proc_alive((pid_t)pid);
}

/*
 * An env whose recorded processes still run must be brought down first,
 * unless it was a run's and that run is gone (kill -9): then its leftover
 * processes are stopped here, by the PIDs it recorded, with a line saying so.
 */
static int check_not_up(const char *dir)
{
	char path[PATH_MAX], *text = NULL, name[32];
	long pid, owner = 0;
	unsigned long long start, owner_start = 0;
	int up = 0, stopped = 0;

	if (tr_fs_join(path, sizeof(path), dir, "pids") < 0 ||
	    tr_fs_read_all(path, 65536, &text, NULL) < 0)
		return 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%31s %ld %llu", name, &pid, &start) != 3)
			continue;
		if (!strcmp(name, "owner")) {
			owner = pid;
			owner_start = start;
		} else if (recorded_alive(pid, start)) {
			up = 1;
		}
	}
	if (owner && !recorded_alive(owner, owner_start)) {
		/* Re-read: strtok cut the text. */
		free(text);
		text = NULL;
		if (tr_fs_read_all(path, 65536, &text, NULL) < 0)
			return 0;
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
			if (sscanf(line, "%31s %ld %llu", name, &pid, &start) == 3 &&
			    strcmp(name, "owner") && recorded_alive(pid, start)) {
				tr_proc_stop((pid_t)pid, STOP_TIMEOUT_MS);
				stopped++;
			}
		fprintf(stderr, "tokenrig: the run that owned the environment in %s (PID %ld) is "
			"gone; cleaned it up (%d leftover process%s stopped)\n", dir, owner, stopped,
			stopped == 1 ? "" : "es");
		unlink(path);
		free(text);
		return 0;
	}
	free(text);
	if (up)
		return tr_error_set(TR_EINVAL,
				    "an environment is already up in %s: run `tokenrig env down --dir %s` first",
				    dir, dir);
	return 0;
}

static int write_worker_state(tr_env *env);
static int read_worker_state(tr_env *env, const char *master_dir);

/* --- the fixture cache (harness/fixture_cache.h) -------------------------- */

/* What a cache entry holds, relative to the run folder. */
static const char *const cached_parts[] = {
	"pki", "softhsm/tokens", "cards/img", "worker.state", "fixture.origin", NULL
};

/*
 * The entry's name: the seed, and a hash of what the fixtures are made
 * from (harness/fixture_cache.h): this program's bytes (the province
 * table and every provisioning rule are in it), the token profiles,
 * whether cards are made, OpenSSL and SoftHSM2.
 */
static int fixture_key(const tr_env_opts *opts, const char *profiles, int cards, char *name,
		       size_t len)
{
	char libraries[512];
	struct stat st;
	tr_fxcache_inputs in = { .seed = opts->seed, .cards = cards, .profiles = profiles,
				 .program = "/proc/self/exe", .revision = tr_revision(),
				 .libraries = libraries };

	if (stat(SH_SOFTHSM_MODULE, &st) != 0)
		memset(&st, 0, sizeof(st));
	snprintf(libraries, sizeof(libraries), "%s; %s %lld %lld", OpenSSL_version(OPENSSL_VERSION),
		 SH_SOFTHSM_MODULE, (long long)st.st_size, (long long)st.st_mtime);
	return tr_fxcache_key(&in, name, len);
}

/* Where the fixtures were made, so that a copy can point into its own run folder. */
static int write_origin(tr_env *env)
{
	char path[PATH_MAX], text[2 * PATH_MAX + 4];
	int n, error;

	n = snprintf(text, sizeof(text), "%s\n%s\n", env->dir, env->shim);
	if (n < 0 || (size_t)n >= sizeof(text))
		return tr_error_set(TR_EINVAL, "run folder path too long");
	if ((error = path_in(env, "fixture.origin", path, sizeof(path))) < 0)
		return error;
	return tr_fs_write_atomic(path, text, (size_t)n, 0644);
}

/* The cached tokens, their card images and interposer moved to this run. */
static int read_cached_tokens(tr_env *env)
{
	char path[PATH_MAX], *text = NULL, *shim;
	size_t dlen;
	int error;

	if ((error = read_worker_state(env, env->dir)) < 0 ||
	    (error = path_in(env, "fixture.origin", path, sizeof(path))) < 0 ||
	    (error = tr_fs_read_all(path, 2 * PATH_MAX + 4, &text, NULL)) < 0)
		goto out;
	if (!(shim = strchr(text, '\n')) || !strchr(shim + 1, '\n')) {
		error = tr_error_set(TR_EPARSE, "%s: two lines expected", path);
		goto out;
	}
	*shim++ = '\0';
	*strchr(shim, '\n') = '\0';
	dlen = strlen(text);
	for (size_t i = 0; i < env->n_tokens && !error; i++) {
		tr_token_ref *t = &env->tokens[i];
		char image[sizeof(t->image)];
		int n;

		if (t->image[0] && !strncmp(t->image, text, dlen) && t->image[dlen] == '/') {
			n = snprintf(image, sizeof(image), "%s%s", env->dir, t->image + dlen);
			if (n < 0 || (size_t)n >= sizeof(image))
				error = tr_error_set(TR_EINVAL, "card image path too long in %s", env->dir);
			else
				memcpy(t->image, image, (size_t)n + 1);
		}
		if (!error && !strcmp(t->module, shim)) {
			n = snprintf(t->module, sizeof(t->module), "%s", env->shim);
			if (n < 0 || (size_t)n >= sizeof(t->module))
				error = tr_error_set(TR_EINVAL, "interposer path too long");
		}
	}
out:
	free(text);
	return error;
}

/* Drops what a failed load left in the run folder, before making it anew. */
static void drop_partial_fixtures(tr_env *env)
{
	for (size_t i = 0; cached_parts[i]; i++) {
		char path[PATH_MAX];

		if (path_in(env, cached_parts[i], path, sizeof(path)) == 0)
			tr_fs_remove_tree(path);
	}
	for (size_t i = 0; env->tokens && i < env->n_tokens; i++)
		free(env->tokens[i].cert_der);
	free(env->tokens);
	env->tokens = NULL;
	env->n_tokens = 0;
	env->n_readers = 0;
}

/* The empty token folder SoftHSM2's configuration names (sh_softhsm_configure). */
static int token_folder(tr_env *env)
{
	char path[PATH_MAX];
	int error;

	if ((error = path_in(env, "softhsm/tokens", path, sizeof(path))) < 0)
		return error;
	return tr_fs_mkdirs(path, 0700);
}

/*
 * The fixtures of a run (PKI, SoftHSM tokens, card images, the token list):
 * copies of the cache's entry for their key, checked file by file, or made
 * here and published for the next run. A second process wanting the same
 * entry waits for the first to publish it rather than making it twice.
 */
static int fixtures_up(tr_env *env, const tr_env_opts *opts, const char *profiles, int cards,
		       fx_pki **pki)
{
	char root[PATH_MAX], name[128], note[PATH_MAX + 512] = "", missing[sizeof(env->cards_missing)];
	int error = 0, lock = -1, use_cache = 1, replace = opts->fresh;

	if (tr_fxcache_root(root, sizeof(root)) < 0 ||
	    fixture_key(opts, profiles, cards, name, sizeof(name)) < 0) {
		fprintf(stderr, "tokenrig: fixture cache not used: %s\n", tr_error_last());
		use_cache = 0;
	}
	memcpy(missing, env->cards_missing, sizeof(missing));
	for (int attempt = 0; use_cache && !opts->fresh && attempt < 2; attempt++) {
		error = tr_fxcache_load(root, name, env->dir, note, sizeof(note));
		if (!error && (error = read_cached_tokens(env)) < 0) {
			snprintf(note, sizeof(note), "fixture cache entry %s/%s is corrupt (%s): "
				 "discarded, regenerating", root, name, tr_error_last());
			tr_fxcache_discard(root, name);
			error = TR_EPARSE;
		}
		if (!error) {
			memcpy(env->cards_missing, missing, sizeof(missing));
			phase_end(env, "fixtures from the cache");
			tr_fxcache_unlock(lock);
			return 0;
		}
		if (note[0])
			fprintf(stderr, "tokenrig: %s\n", note);
		replace |= note[0] != '\0';
		note[0] = '\0';
		drop_partial_fixtures(env);
		if (error != TR_ENOTFOUND && error != TR_EPARSE)
			goto out; /* the run folder's own trouble: said as it is */
		/* Another run may be making this very entry: wait for it, then look again. */
		if (attempt == 0 && tr_fxcache_lock(root, name, 180000, &lock) < 0)
			fprintf(stderr, "tokenrig: fixture cache: %s; making the fixtures anyway\n",
				tr_error_last());
	}
	if (use_cache && opts->fresh && tr_fxcache_lock(root, name, 180000, &lock) < 0)
		fprintf(stderr, "tokenrig: fixture cache: %s; making the fixtures anyway\n",
			tr_error_last());
	if ((error = token_folder(env)) < 0)
		goto out;
	phase_end(env, use_cache ? (opts->fresh ? "fixture cache skipped (--fresh)" :
				    "fixture cache miss") : "no fixture cache");
	if ((error = fx_pki_create(pki, env->pki_dir, time(NULL))) < 0)
		goto out;
	phase_end(env, "pki");
	if (!env->softhsm && (error = tr_p11mod_load(&env->softhsm, SH_SOFTHSM_MODULE)) < 0) {
		error = tr_error_set(TR_EDEPEND, "%s (install softhsm2: ci/install-deps)",
				     tr_error_last());
		goto out;
	}
	if ((error = provision_tokens(env, *pki, profiles, opts->seed)) < 0)
		goto out;
	phase_end(env, "softhsm tokens");
	if (cards) {
		if ((error = provision_cards(env, *pki, profiles, opts->seed, &env->n_readers)) < 0)
			goto out;
		phase_end(env, "card images");
	}
	if (!use_cache)
		goto out;
	if ((error = write_origin(env)) < 0 || (error = write_worker_state(env)) < 0 ||
	    (error = tr_fxcache_store(root, name, env->dir, cached_parts, replace)) < 0)
		fprintf(stderr, "tokenrig: fixture cache not written (the run goes on): %s\n",
			tr_error_last());
	error = 0;
	phase_end(env, "cache store");
out:
	tr_fxcache_unlock(lock);
	return error;
}

int tr_env_dir_check(const char *dir)
{
	char cwd[PATH_MAX];
	size_t len = strlen(dir);

	if (dir[0] != '/')
		len += (getcwd(cwd, sizeof(cwd)) ? strlen(cwd) : PATH_MAX) + 1;
	if (len <= TR_ENV_DIR_MAX)
		return 0;
	return tr_error_set(TR_EINVAL, "%zu bytes as an absolute path, at most %d (SoftHSM2 "
			    "reads its configuration in lines of 1023 bytes)", len, TR_ENV_DIR_MAX);
}

int tr_env_up(tr_env **out, const tr_env_opts *opts)
{
	tr_env *env = calloc(1, sizeof(*env));
	char pki_dir[PATH_MAX], sh_dir[PATH_MAX], conf[PATH_MAX];
	fx_pki *pki = NULL;
	int error;

	*out = NULL;
	if (!env)
		return tr_error_set(TR_ENOMEM, "out of memory");
	env->detach = opts->detach;
	env->provision_only = opts->provision_only;
	if (!realpath(opts->dir, env->dir) &&
	    (tr_fs_mkdirs(opts->dir, 0755) < 0 || !realpath(opts->dir, env->dir))) {
		error = tr_error_set(TR_EIO, "run folder %s: %s", opts->dir, strerror(errno));
		goto out;
	}
	if ((error = check_not_up(env->dir)) < 0 ||
	    (error = tr_fs_remove_tree(env->dir)) < 0 ||
	    (error = tr_fs_mkdirs(env->dir, 0755)) < 0 ||
	    (error = path_in(env, "pki", pki_dir, sizeof(pki_dir))) < 0 ||
	    (error = path_in(env, "softhsm", sh_dir, sizeof(sh_dir))) < 0 ||
	    (error = tr_fs_join(env->ca_bundle, sizeof(env->ca_bundle), pki_dir,
				"tls/ca.pem")) < 0)
		goto out;
	snprintf(env->pki_dir, sizeof(env->pki_dir), "%s", pki_dir);
	env->phase_ns = tr_clock_ns();
	snprintf(env->cards_missing, sizeof(env->cards_missing), "%s",
		 opts->no_cards ? "not asked for (--no-cards)" : "");
	/* A certification's env: PKI and portals; its tokens are the vendor's (tr_env_add_token). */
	if (opts->foreign) {
		if ((error = fx_pki_create(&pki, pki_dir, time(NULL))) < 0)
			goto out;
		phase_end(env, "pki");
	} else {
		const char *profiles = opts->profiles ? opts->profiles : "suites/tokens.conf";
		int cards = !opts->no_cards;

		if (cards && cards_possible(env) < 0) {
			snprintf(env->cards_missing, sizeof(env->cards_missing), "%s", tr_error_last());
			cards = 0;
		}
		/* SOFTHSM2_CONF before the module loads; the module once the tokens are there. */
		if ((error = write_shim_conf(env)) < 0 ||
		    (error = sh_softhsm_configure(sh_dir, conf, sizeof(conf))) < 0 ||
		    (error = fixtures_up(env, opts, profiles, cards, &pki)) < 0)
			goto out;
		if (!env->softhsm && (error = tr_p11mod_load(&env->softhsm, SH_SOFTHSM_MODULE)) < 0) {
			error = tr_error_set(TR_EDEPEND, "%s (install softhsm2: ci/install-deps)",
					     tr_error_last());
			goto out;
		}
		phase_end(env, "softhsm load");
		if (cards && (error = start_cards(env)) < 0 && error != TR_EDEPEND)
			goto out;
	}
	if ((error = trust_everywhere(env, opts->trust, NULL)) < 0 ||
	    (error = trust_everywhere(env, NULL, opts->trust_ca)) < 0 ||
	    (error = snapshot_crls(env)) < 0 ||
	    (!opts->provision_only && (error = start_portal(env)) < 0))
		goto out;
	phase_end(env, "portal");
	if ((error = write_pids(env)) < 0 ||
	    (!opts->foreign && (error = write_tokens_json(env)) < 0) ||
	    (!opts->foreign && !opts->provision_only && (error = write_env_sh(env)) < 0) ||
	    (opts->provision_only && (error = write_worker_state(env)) < 0))
		goto out;
	phase_end(env, "files");
	if (env->cards && env->detach)
		error = tr_env_show_cards(env, PORTAL(0)->name, "p256");
out:
	fx_pki_free(pki);
	if (error < 0) {
		char msg[1024];

		/* Stopping the portal must not overwrite the reason we stop it. */
		snprintf(msg, sizeof(msg), "%s", tr_error_last());
		env->detach = 0;
		tr_env_free(env);
		return tr_error_set(error, "%s", msg);
	}
	*out = env;
	return 0;
}

void tr_env_free(tr_env *env)
{
	if (!env)
		return;
	if (!env->detach && (env->portal_pid > 0 || env->pids_written)) {
		char path[PATH_MAX];

		if (env->portal_pid > 0)
			tr_proc_stop(env->portal_pid, STOP_TIMEOUT_MS);
		/* Only our own: a refused env must not hide the one that is up. */
		if (env->pids_written && path_in(env, "pids", path, sizeof(path)) == 0)
			unlink(path);
	}
	tr_p11mod_release(env->opensc);
	tr_cards_free(env->cards);
	tr_p11mod_release(env->softhsm);
	json_decref(env->urls);
	for (size_t i = 0; env->tokens && i < env->n_tokens; i++)
		free(env->tokens[i].cert_der);
	for (size_t i = 0; i < env->n_crls; i++)
		free(env->crls[i].text);
	free(env->tokens);
	free(env);
}

int tr_env_down(const char *dir)
{
	char path[PATH_MAX], *text = NULL, name[32];
	long pid;
	unsigned long long start;
	int error;

	if ((error = tr_fs_join(path, sizeof(path), dir, "pids")) < 0)
		return error;
	if ((error = tr_fs_read_all(path, 65536, &text, NULL)) < 0) {
		if (error == TR_ENOTFOUND)
			return tr_error_set(TR_ENOTFOUND, "no environment is up in %s", dir);
		return error;
	}
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%31s %ld %llu", name, &pid, &start) != 3)
			continue;
		/* A recycled PID belongs to someone else: leave it alone. */
		if (!strcmp(name, "owner") || tr_proc_start_time((pid_t)pid) != start)
			continue;
		if (tr_proc_stop((pid_t)pid, STOP_TIMEOUT_MS) < 0)
			error = TR_ETIMEDOUT;
	}
	free(text);
	unlink(path);
	vc_pcscd_remove_alias(dir);
	return error;
}

int tr_env_rig_fault(tr_env *env, char *buf, size_t len)
{
	char text[4096], name[32];
	long pid;
	unsigned long long start;

	if (env->portal_pid > 0 && !tr_proc_alive(env->portal_pid)) {
		snprintf(buf, len, "rig fault: the portal process (PID %ld) died",
			 (long)env->portal_pid);
		return 1;
	}
	if (!env->cards || tr_cards_pids(env->cards, text, sizeof(text)) < 0)
		return 0;
	for (char *line = text, *next; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (sscanf(line, "%31s %ld %llu", name, &pid, &start) == 3 && pid > 0 &&
		    !tr_proc_alive((pid_t)pid)) {
			snprintf(buf, len, "rig fault: the %s process %s (PID %ld) died",
				 !strcmp(name, "pcscd") ? "smart-card daemon" : "virtual card",
				 name, pid);
			return 1;
		}
	}
	return 0;
}

int tr_env_cards_on_standard_socket(const tr_env *env)
{
	return env->std_socket;
}

const char *tr_env_dir(const tr_env *env)
{
	return env->dir;
}

const char *tr_env_shim_conf(const tr_env *env)
{
	return env->shim_conf;
}

const char *tr_env_shim(const tr_env *env)
{
	return env->shim;
}

const char *tr_env_shim_base(const tr_env *env)
{
	return env->shim_base;
}

const char *tr_env_ca_bundle(const tr_env *env)
{
	return env->ca_bundle;
}

const char *tr_env_portal_url(const tr_env *env, const char *portal)
{
	return json_string_value(json_object_get(env->urls, portal));
}

const char *tr_env_portal_name(size_t i, const char **legacy_ca, int *dual)
{
	if (i >= N_PORTALS)
		return NULL;
	if (legacy_ca)
		*legacy_ca = PORTAL(i)->legacy_ca;
	if (dual)
		*dual = PORTAL(i)->enc_cert;
	return PORTAL(i)->name;
}

int tr_env_tokens_ready(tr_env *env)
{
	/* The added tokens' certificates (revoked ones) are the CRLs' start now. */
	for (size_t i = 0; i < env->n_crls; i++)
		free(env->crls[i].text);
	env->n_crls = 0;
	return snapshot_crls(env);
}

int tr_env_add_token(tr_env *env, const tr_token_ref *ref)
{
	tr_token_ref *grown = realloc(env->tokens, (env->n_tokens + 1) * sizeof(*grown));
	tr_token_ref *t;

	if (!grown)
		return tr_error_set(TR_ENOMEM, "out of memory");
	env->tokens = grown;
	t = &env->tokens[env->n_tokens];
	*t = *ref;
	t->cert_der = NULL;
	if (ref->cert_len && !(t->cert_der = malloc(ref->cert_len)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (ref->cert_len)
		memcpy(t->cert_der, ref->cert_der, ref->cert_len);
	env->n_tokens++;
	return 0;
}

const tr_token_ref *tr_env_tokens(const tr_env *env, size_t *n)
{
	*n = env->n_tokens;
	return env->tokens;
}

/* --- workers (tokenrig run --jobs) --------------------------------------- */

#define WORKER_STATE "worker.state"
#define WORKER_MAGIC "tokenrig-worker-state/1"

int tr_env_record_pids(tr_env *env, const char *extra)
{
	char path[PATH_MAX], cards[4096];
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int error;

	if ((error = path_in(env, "pids", path, sizeof(path))) < 0)
		return error;
	/* Cards before pcscd: env down stops them in this order. */
	if (env->cards && (error = tr_cards_pids(env->cards, cards, sizeof(cards))) < 0)
		return error;
	if (!(f = open_memstream(&text, &len)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (env->cards)
		fputs(cards, f);
	if (env->portal_pid > 0)
		fprintf(f, "portal %ld %llu\n", (long)env->portal_pid,
			tr_proc_start_time(env->portal_pid));
	if (extra)
		fputs(extra, f);
	/* A run's env dies with its owner: a later run may clean up after it. */
	if (!env->detach)
		fprintf(f, "owner %ld %llu\n", (long)getpid(), tr_proc_start_time(getpid()));
	if (fclose(f) != 0 || !text) {
		free(text);
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", path);
	}
	error = tr_fs_write_atomic(path, text, len, 0644);
	free(text);
	if (!error)
		env->pids_written = 1;
	return error;
}

/*
 * What a worker needs of the run's env besides its files: the tokens as
 * provisioned (the same binary reads them back: raw records, checked by
 * size), the card readers and why there are no cards. PINs inside: 0600.
 */
static int write_worker_state(tr_env *env)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f;
	int error;

	if ((error = path_in(env, WORKER_STATE, path, sizeof(path))) < 0)
		return error;
	if (!(f = open_memstream(&text, &len)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	fprintf(f, "%s %zu %zu %u\n%s\n", WORKER_MAGIC, sizeof(tr_token_ref), env->n_tokens,
		env->n_readers, env->cards_missing);
	for (size_t i = 0; i < env->n_tokens; i++) {
		tr_token_ref t = env->tokens[i];

		t.cert_der = NULL;
		fwrite(&t, sizeof(t), 1, f);
	}
	for (size_t i = 0; i < env->n_tokens; i++)
		if (env->tokens[i].cert_len)
			fwrite(env->tokens[i].cert_der, 1, env->tokens[i].cert_len, f);
	if (fclose(f) != 0 || !text) {
		free(text);
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", path);
	}
	error = tr_fs_write_atomic(path, text, len, 0600);
	free(text);
	return error;
}

static int read_worker_state(tr_env *env, const char *master_dir)
{
	char path[PATH_MAX], magic[64], *text = NULL, *p, *nl;
	size_t len = 0, rec = 0, n = 0, need;
	int error, used = 0;

	if ((error = tr_fs_join(path, sizeof(path), master_dir, WORKER_STATE)) < 0 ||
	    (error = tr_fs_read_all(path, 64u << 20, &text, &len)) < 0)
		return error;
	error = tr_error_set(TR_EPARSE, "%s: not a worker state of this tokenrig build", path);
	if (sscanf(text, "%63s %zu %zu %u%n", magic, &rec, &n, &env->n_readers, &used) != 4 ||
	    strcmp(magic, WORKER_MAGIC) || rec != sizeof(tr_token_ref) || n > 100000 ||
	    !(nl = memchr(text + used, '\n', len - (size_t)used)) ||
	    !(p = memchr(nl + 1, '\n', len - (size_t)(nl + 1 - text))))
		goto out;
	snprintf(env->cards_missing, sizeof(env->cards_missing), "%.*s", (int)(p - nl - 1), nl + 1);
	p++;
	need = n * rec;
	if ((size_t)(text + len - p) < need ||
	    !(env->tokens = calloc(n ? n : 1, sizeof(*env->tokens))))
		goto out;
	memcpy(env->tokens, p, need);
	p += need;
	for (env->n_tokens = 0; env->n_tokens < n; env->n_tokens++) {
		tr_token_ref *t = &env->tokens[env->n_tokens];

		if (!t->cert_len)
			continue;
		if ((size_t)(text + len - p) < t->cert_len || !(t->cert_der = malloc(t->cert_len))) {
			t->cert_len = 0;
			goto out;
		}
		memcpy(t->cert_der, p, t->cert_len);
		p += t->cert_len;
	}
	error = 0;
out:
	free(text);
	return error;
}

/* Copies a folder of the run's env (PKI, token files) into a worker's; no fsync: scratch. */
static int copy_tree(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int error = 0;

	if ((error = tr_fs_mkdirs(to, 0700)) < 0)
		return error;
	if (!(d = opendir(from)))
		return tr_error_set(TR_EIO, "opendir %s: %s", from, strerror(errno));
	while (!error && (e = readdir(d)) != NULL) {
		char *data = NULL;
		size_t len = 0;
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((error = tr_fs_join(a, sizeof(a), from, e->d_name)) < 0 ||
		    (error = tr_fs_join(b, sizeof(b), to, e->d_name)) < 0)
			break;
		if (lstat(a, &st) != 0) {
			error = tr_error_set(TR_EIO, "stat %s: %s", a, strerror(errno));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			error = copy_tree(a, b);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if ((error = tr_fs_read_all(a, 256u << 20, &data, &len)) < 0)
			break;
		fd = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
		if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
			error = tr_error_set(TR_EIO, "writing %s: %s", b, strerror(errno));
		if (fd >= 0 && close(fd) != 0 && !error)
			error = tr_error_set(TR_EIO, "writing %s: %s", b, strerror(errno));
		free(data);
	}
	closedir(d);
	return error;
}

int tr_env_worker_up(tr_env **out, const char *master_dir, const char *dir, int no_cards)
{
	tr_env *env = calloc(1, sizeof(*env));
	char from[PATH_MAX], sh_dir[PATH_MAX], tokens[PATH_MAX + 16], conf[PATH_MAX];
	int error;

	*out = NULL;
	if (!env)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (!realpath(dir, env->dir) &&
	    (tr_fs_mkdirs(dir, 0755) < 0 || !realpath(dir, env->dir))) {
		error = tr_error_set(TR_EIO, "worker folder %s: %s", dir, strerror(errno));
		goto out;
	}
	env->phase_ns = tr_clock_ns();
	if ((error = check_not_up(env->dir)) < 0 ||
	    (error = tr_fs_remove_tree(env->dir)) < 0 ||
	    (error = tr_fs_mkdirs(env->dir, 0755)) < 0 ||
	    (error = read_worker_state(env, master_dir)) < 0 ||
	    (error = path_in(env, "pki", env->pki_dir, sizeof(env->pki_dir))) < 0 ||
	    (error = tr_fs_join(from, sizeof(from), master_dir, "pki")) < 0 ||
	    (error = copy_tree(from, env->pki_dir)) < 0 ||
	    (error = tr_fs_join(env->ca_bundle, sizeof(env->ca_bundle), env->pki_dir,
				"tls/ca.pem")) < 0 ||
	    (error = path_in(env, "softhsm", sh_dir, sizeof(sh_dir))) < 0 ||
	    (error = sh_softhsm_configure(sh_dir, conf, sizeof(conf))) < 0 ||
	    (error = tr_fs_join(from, sizeof(from), master_dir, "softhsm/tokens")) < 0 ||
	    (error = tr_fs_join(tokens, sizeof(tokens), sh_dir, "tokens")) < 0 ||
	    (error = copy_tree(from, tokens)) < 0)
		goto out;
	phase_end(env, "copies");
	if ((error = tr_p11mod_load(&env->softhsm, SH_SOFTHSM_MODULE)) < 0 ||
	    (error = write_shim_conf(env)) < 0)
		goto out;
	if (no_cards && !env->cards_missing[0])
		snprintf(env->cards_missing, sizeof(env->cards_missing),
			 "another worker shows the cards (one standard pcscd socket)");
	if (!env->cards_missing[0] && env->n_readers) {
		const char *image = NULL;

		for (size_t i = 0; i < env->n_tokens && !image; i++)
			if (env->tokens[i].card >= 0 && env->tokens[i].image[0])
				image = env->tokens[i].image;
		if (!image) {
			error = tr_error_set(TR_EINVAL, "%s: cards without an image", master_dir);
			goto out;
		}
		if ((error = write_opensc_conf(env)) < 0 ||
		    (error = tr_cards_up(&env->cards, env->dir, env->n_readers, image, 0)) < 0)
			goto out;
		if (tr_p11mod_load(&env->opensc, TR_OPENSC_MODULE) < 0)
			env->opensc = NULL; /* the opensc cases then say why themselves */
		phase_end(env, "cards");
	}
	if ((error = snapshot_crls(env)) < 0 ||
	    (error = start_portal(env)) < 0 ||
	    (error = write_pids(env)) < 0 ||
	    (error = write_env_sh(env)) < 0)
		goto out;
	phase_end(env, "portal");
out:
	if (error < 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", tr_error_last());
		tr_env_free(env);
		return tr_error_set(error, "%s", msg);
	}
	*out = env;
	return 0;
}
