#include "portal_verify.h"

#include "common/error.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The default SM2 distinguishing ID (GB/T 35276). */
#define SM2_DEFAULT_ID "1234567812345678"

/*
 * What X509_verify_cert() found for one certificate apart from dates: its
 * signatures, names and constraints. Against a bundle that never changes
 * (and names each CA once, so no issuer is picked by date) that verdict
 * holds for any portal time; dates and revocation are checked at every
 * request from the chain it built.
 */
typedef struct chain_memo {
	X509 *cert;            /* a reference; the key, compared by its DER */
	STACK_OF(X509) *chain; /* leaf first, as verified; NULL when it failed */
	int result;            /* X509_V_OK or the first error not a date */
	uint64_t used;         /* memo_tick of its last use: the oldest goes */
} chain_memo;

#define CHAIN_MEMO_SLOTS 64

struct pt_verifier {
	X509_STORE *store;
	STACK_OF(X509) *chain;   /* the trust bundle, to check CRL signatures */
	char *crl_path;
	STACK_OF(X509_CRL) *crls;
	struct stat crl_stat;    /* of the file crls were read from */
	int crl_seen;
	int memo_on;             /* every subject of the bundle is distinct */
	chain_memo memo[CHAIN_MEMO_SLOTS];
	uint64_t memo_tick;
	pt_verifier_stats stats;
};

static int read_certs(const char *path, STACK_OF(X509) **out)
{
	STACK_OF(X509) *certs = NULL;
	X509 *x;
	FILE *f;
	int err = 0;

	*out = NULL;
	if (!(f = fopen(path, "r")))
		return tr_error_set(TR_EIO, "cannot open %s: %s", path,
				    strerror(errno));
	if (!(certs = sk_X509_new_null())) {
		err = tr_error_set(TR_ENOMEM, "certificate stack");
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			err = tr_error_set(TR_ENOMEM, "certificate stack");
			goto out;
		}
	}
	/* The loop ends on end of file, which OpenSSL queues as an error. */
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		err = tr_error_set(TR_EPARSE, "%s: no PEM certificate", path);
		goto out;
	}
	*out = certs;
	certs = NULL;
out:
	fclose(f);
	sk_X509_pop_free(certs, X509_free);
	return err;
}

/* Keeps a CRL only when one of the trusted CAs signed it. */
static int crl_trusted(pt_verifier *v, X509_CRL *crl)
{
	int i;

	for (i = 0; i < sk_X509_num(v->chain); i++) {
		X509 *ca = sk_X509_value(v->chain, i);

		if (X509_NAME_cmp(X509_get_subject_name(ca),
				  X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return 1;
	}
	ERR_clear_error();
	return 0;
}

/*
 * Reads the CRL file again when it changed since the last read. A file
 * that cannot be parsed keeps the previous list: a reader may race with
 * the writer.
 */
static void crl_refresh(pt_verifier *v)
{
	STACK_OF(X509_CRL) *crls;
	X509_CRL *crl;
	struct stat st;
	FILE *f;

	if (!v->crl_path || stat(v->crl_path, &st) != 0)
		return;
	if (v->crl_seen && st.st_ino == v->crl_stat.st_ino &&
	    st.st_size == v->crl_stat.st_size &&
	    st.st_mtim.tv_sec == v->crl_stat.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == v->crl_stat.st_mtim.tv_nsec)
		return;
	if (!(f = fopen(v->crl_path, "r")))
		return;
	if (!(crls = sk_X509_CRL_new_null())) {
		fclose(f);
		return;
	}
	while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
		if (!crl_trusted(v, crl) || !sk_X509_CRL_push(crls, crl))
			X509_CRL_free(crl);
	}
	ERR_clear_error();
	fclose(f);
	if (sk_X509_CRL_num(crls) == 0 && st.st_size > 0) {
		sk_X509_CRL_free(crls);
		return;
	}
	sk_X509_CRL_pop_free(v->crls, X509_CRL_free);
	v->crls = crls;
	v->crl_stat = st;
	v->crl_seen = 1;
}

/* Two CAs of one name would let OpenSSL pick the issuer valid at the time. */
static int names_distinct(STACK_OF(X509) *certs)
{
	int i, j;

	for (i = 0; i < sk_X509_num(certs); i++)
		for (j = i + 1; j < sk_X509_num(certs); j++)
			if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(certs, i)),
					  X509_get_subject_name(sk_X509_value(certs, j))) == 0)
				return 0;
	return 1;
}

int pt_verifier_new(pt_verifier **out, const char *chain_path,
		    const char *crl_path)
{
	pt_verifier *v;
	int i, err;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v))))
		return tr_error_set(TR_ENOMEM, "verifier");
	if ((err = read_certs(chain_path, &v->chain)) < 0)
		goto out;
	if (!(v->store = X509_STORE_new())) {
		err = tr_error_set_openssl(TR_ENOMEM, "X509_STORE_new");
		goto out;
	}
	for (i = 0; i < sk_X509_num(v->chain); i++) {
		if (X509_STORE_add_cert(v->store, sk_X509_value(v->chain, i)) != 1) {
			err = tr_error_set_openssl(TR_ECRYPTO, "%s: certificate %d",
						   chain_path, i);
			goto out;
		}
	}
	if (crl_path && !(v->crl_path = strdup(crl_path))) {
		err = tr_error_set(TR_ENOMEM, "verifier");
		goto out;
	}
	v->memo_on = names_distinct(v->chain);
	crl_refresh(v);
	*out = v;
	v = NULL;
	err = 0;
out:
	pt_verifier_free(v);
	return err;
}

static void memo_clear(chain_memo *m)
{
	X509_free(m->cert);
	sk_X509_pop_free(m->chain, X509_free);
	memset(m, 0, sizeof(*m));
}

void pt_verifier_free(pt_verifier *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < CHAIN_MEMO_SLOTS; i++)
		memo_clear(&v->memo[i]);
	X509_STORE_free(v->store);
	sk_X509_pop_free(v->chain, X509_free);
	sk_X509_CRL_pop_free(v->crls, X509_CRL_free);
	free(v->crl_path);
	free(v);
}

/* What one chain verification saw at portal time. */
typedef struct chain_verdict {
	int time_error; /* the first X509_V_ERR_CERT_{HAS_EXPIRED,NOT_YET_VALID} */
} chain_verdict;

/*
 * Goes on past a date error, remembering the first: the chain's signatures,
 * names and constraints are still all checked, and the date decides only
 * once the rest passed (API.md's order: chain, then validity).
 */
static int on_verify(int ok, X509_STORE_CTX *ctx)
{
	chain_verdict *cv = X509_STORE_CTX_get_app_data(ctx);
	int e = X509_STORE_CTX_get_error(ctx);

	if (ok)
		return 1;
	if (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID) {
		if (!cv->time_error)
			cv->time_error = e;
		return 1;
	}
	return 0;
}

/*
 * The first date error of chain at now, in X509_verify_cert()'s order:
 * from the trust anchor down to the leaf, notBefore before notAfter.
 */
static int chain_time_error(STACK_OF(X509) *chain, int64_t now)
{
	time_t t = (time_t)now;
	int i;

	for (i = sk_X509_num(chain) - 1; i >= 0; i--) {
		X509 *x = sk_X509_value(chain, i);

		if (X509_cmp_time(X509_get0_notBefore(x), &t) > 0)
			return X509_V_ERR_CERT_NOT_YET_VALID;
		if (X509_cmp_time(X509_get0_notAfter(x), &t) < 0)
			return X509_V_ERR_CERT_HAS_EXPIRED;
	}
	return 0;
}

/*
 * The same certificate: X509_cmp() compares the SHA-1 of the whole DER and
 * the signed part, but only the latter where no SHA-1 is available (a FIPS
 * provider), so the signatures are compared as well.
 */
static int same_cert(X509 *a, X509 *b)
{
	const ASN1_BIT_STRING *sa, *sb;

	if (a == b)
		return 1;
	if (X509_cmp(a, b) != 0)
		return 0;
	X509_get0_signature(&sa, NULL, a);
	X509_get0_signature(&sb, NULL, b);
	return ASN1_STRING_cmp(sa, sb) == 0;
}

static chain_memo *memo_find(pt_verifier *v, X509 *cert)
{
	size_t i;

	for (i = 0; i < CHAIN_MEMO_SLOTS; i++) {
		chain_memo *m = &v->memo[i];

		if (m->cert && same_cert(m->cert, cert)) {
			m->used = ++v->memo_tick;
			return m;
		}
	}
	return NULL;
}

/* Keeps the verdict of cert; chain (taken) is NULL when it failed. */
static void memo_put(pt_verifier *v, X509 *cert, int result, STACK_OF(X509) *chain)
{
	chain_memo *slot = &v->memo[0];
	size_t i;

	if (X509_up_ref(cert) != 1) {
		sk_X509_pop_free(chain, X509_free);
		return;
	}
	for (i = 0; i < CHAIN_MEMO_SLOTS; i++) {
		if (!v->memo[i].cert) {
			slot = &v->memo[i];
			break;
		}
		if (v->memo[i].used < slot->used)
			slot = &v->memo[i];
	}
	memo_clear(slot);
	slot->cert = cert;
	slot->chain = chain;
	slot->result = result;
	slot->used = ++v->memo_tick;
}

/*
 * One X509_verify_cert() at now: X509_V_OK or the first error that is not
 * a date, then *time_error the first date error. One pass does the work of
 * a pass without time then one with it (each ECDSA link costs ~60 us); a
 * certificate seen before costs only its dates.
 */
static int verify_chain(pt_verifier *v, X509 *cert, int64_t now, int *time_error)
{
	chain_verdict cv = { 0 };
	X509_STORE_CTX *ctx;
	chain_memo *m;
	int rc, result;

	*time_error = 0;
	if (v->memo_on && (m = memo_find(v, cert)) != NULL) {
		v->stats.chain_memo_hits++;
		if (m->result == X509_V_OK)
			*time_error = chain_time_error(m->chain, now);
		return m->result;
	}
	v->stats.chains_verified++;
	if (!(ctx = X509_STORE_CTX_new()))
		return X509_V_ERR_OUT_OF_MEM;
	if (X509_STORE_CTX_init(ctx, v->store, cert, NULL) != 1) {
		X509_STORE_CTX_free(ctx);
		return X509_V_ERR_UNSPECIFIED;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
	X509_STORE_CTX_set_app_data(ctx, &cv);
	X509_STORE_CTX_set_verify_cb(ctx, on_verify);
	rc = X509_verify_cert(ctx);
	result = X509_V_OK;
	if (rc != 1) {
		result = X509_STORE_CTX_get_error(ctx);
		if (result == X509_V_OK) /* an internal error, not a verdict */
			result = X509_V_ERR_UNSPECIFIED;
	}
	/* An internal error is no verdict on the certificate: never kept. */
	if (v->memo_on && result != X509_V_ERR_UNSPECIFIED &&
	    result != X509_V_ERR_OUT_OF_MEM) {
		STACK_OF(X509) *chain = result == X509_V_OK ? X509_STORE_CTX_get1_chain(ctx) : NULL;

		if (result != X509_V_OK || chain)
			memo_put(v, cert, result, chain);
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	*time_error = cv.time_error;
	return result;
}

void pt_verifier_get_stats(const pt_verifier *v, pt_verifier_stats *out)
{
	*out = v->stats;
}

static int revoked(pt_verifier *v, X509 *cert)
{
	X509_REVOKED *entry;
	int i;

	for (i = 0; i < sk_X509_CRL_num(v->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(v->crls, i);

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
				  X509_get_issuer_name(cert)) != 0)
			continue;
		/* 2 is removeFromCRL: no longer revoked. */
		if (X509_CRL_get0_by_cert(crl, &entry, cert) == 1)
			return 1;
	}
	return 0;
}

int pt_verifier_check(pt_verifier *v, X509 *cert, int64_t now, int *status)
{
	int expired;

	return pt_verifier_check_ex(v, cert, now, 0, status, &expired);
}

int pt_verifier_revoked(pt_verifier *v, X509 *cert)
{
	crl_refresh(v);
	return revoked(v, cert);
}

int pt_verifier_check_ex(pt_verifier *v, X509 *cert, int64_t now,
			 int allow_expired, int *status, int *expired)
{
	int r, time_error;

	*status = 0;
	*expired = 0;
	/* Chain first, dates only once it holds, so that an expired
	 * certificate of a foreign CA answers 820, never 810. */
	r = verify_chain(v, cert, now, &time_error);
	if (r != X509_V_OK) {
		*status = PT_STATUS_CHAIN;
		return tr_error_set(TR_ECRYPTO, "chain: %s",
				    X509_verify_cert_error_string(r));
	}
	if (time_error == X509_V_ERR_CERT_HAS_EXPIRED && allow_expired) {
		/* The chain holds: only the date is wrong. */
		*expired = 1;
		time_error = 0;
	}
	if (time_error == X509_V_ERR_CERT_HAS_EXPIRED) {
		*status = PT_STATUS_EXPIRED;
		return tr_error_set(TR_ECRYPTO, "certificate expired");
	}
	if (time_error == X509_V_ERR_CERT_NOT_YET_VALID) {
		*status = PT_STATUS_NOT_YET_VALID;
		return tr_error_set(TR_ECRYPTO, "certificate not yet valid");
	}
	crl_refresh(v);
	if (revoked(v, cert)) {
		*status = PT_STATUS_REVOKED;
		return tr_error_set(TR_ECRYPTO, "certificate revoked");
	}
	return 0;
}

int pt_sig_alg_parse(const char *name, pt_sig_alg *out)
{
	if (strcmp(name, "ecdsa-sha256") == 0)
		*out = PT_ALG_ECDSA_SHA256;
	else if (strcmp(name, "rsa-pkcs1-sha256") == 0)
		*out = PT_ALG_RSA_SHA256;
	else if (strcmp(name, "sm2-sm3") == 0)
		*out = PT_ALG_SM2_SM3;
	else
		return tr_error_set(TR_EINVAL, "unsupported algorithm");
	return 0;
}

static int is_sm2_key(EVP_PKEY *pk)
{
	char group[64];

	if (EVP_PKEY_is_a(pk, "SM2"))
		return 1;
	if (!EVP_PKEY_is_a(pk, "EC"))
		return 0;
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
					   group, sizeof(group), NULL) != 1) {
		ERR_clear_error();
		return 0;
	}
	return strcmp(group, "SM2") == 0;
}

int pt_signature_verify(X509 *cert, pt_sig_alg alg, const void *data,
			size_t len, const unsigned char *sig, size_t sig_len)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL, *own = NULL;
	int err = TR_ECRYPTO, rc;

	if (!pk)
		return tr_error_set_openssl(TR_ECRYPTO, "no public key");
	if (!(md = EVP_MD_CTX_new()))
		return tr_error_set(TR_ENOMEM, "EVP_MD_CTX_new");

	switch (alg) {
	case PT_ALG_ECDSA_SHA256:
		if (!EVP_PKEY_is_a(pk, "EC") || is_sm2_key(pk)) {
			tr_error_set(TR_ECRYPTO, "key is not an ECDSA key");
			goto out;
		}
		if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
			goto openssl;
		break;
	case PT_ALG_RSA_SHA256:
		if (!EVP_PKEY_is_a(pk, "RSA")) {
			tr_error_set(TR_ECRYPTO, "key is not an RSA key");
			goto out;
		}
		if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pk) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
			goto openssl;
		break;
	case PT_ALG_SM2_SM3:
		if (!is_sm2_key(pk)) {
			tr_error_set(TR_ECRYPTO, "key is not an SM2 key");
			goto out;
		}
		/* The ID goes into Z, so it must be set before the digest
		 * starts: on our own EVP_PKEY_CTX handed to the MD context. */
		if (!(own = EVP_PKEY_CTX_new_from_pkey(NULL, pk, "provider=default")) ||
		    EVP_PKEY_CTX_set1_id(own, SM2_DEFAULT_ID,
					 strlen(SM2_DEFAULT_ID)) != 1)
			goto openssl;
		EVP_MD_CTX_set_pkey_ctx(md, own);
		if (EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, pk) != 1)
			goto openssl;
		break;
	default:
		tr_error_set(TR_EINVAL, "algorithm");
		goto out;
	}

	rc = EVP_DigestVerify(md, sig, sig_len, data, len);
	if (rc == 1) {
		err = 0;
		goto out;
	}
	ERR_clear_error();
	tr_error_set(TR_ECRYPTO, "signature does not verify");
	goto out;
openssl:
	tr_error_set_openssl(TR_ECRYPTO, "verify setup");
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(own);
	return err;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int pt_base64_decode(const char *b64, unsigned char **out, size_t *out_len)
{
	size_t in_len = strlen(b64), n = 0, i;
	unsigned char *buf;
	unsigned acc = 0;
	int bits = 0, pad = 0, v;

	*out = NULL;
	*out_len = 0;
	if (!(buf = malloc(in_len / 4 * 3 + 3)))
		return tr_error_set(TR_ENOMEM, "base64");
	for (i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)b64[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || (v = b64_value(c)) < 0)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* Groups of four: 2 or 3 characters of a last group need padding. */
	if (n == 0 || pad > 2 || (bits == 4 && pad != 2) ||
	    (bits == 2 && pad != 1) || (bits == 0 && pad != 0) ||
	    (acc & ((1u << bits) - 1)) != 0)
		goto bad;
	*out = buf;
	*out_len = n;
	return 0;
bad:
	free(buf);
	return tr_error_set(TR_EINVAL, "not base64");
}

/*
 * Parsed certificates by their exact DER bytes. A token sends the same
 * certificate at every login, and OpenSSL 3 decodes its public key through
 * the provider decoders: about a quarter of a login's work on the portal.
 * Only a parse is saved: every check runs on every request. Process-wide
 * (one portal process serves several portals, each with its own lock).
 */
#define CERT_CACHE_SLOTS 32

static struct {
	unsigned char *der;
	size_t len;
	X509 *cert;
	uint64_t used;  /* cert_cache_tick of its last use: the oldest goes */
} cert_cache[CERT_CACHE_SLOTS];
static uint64_t cert_cache_tick;
static pthread_mutex_t cert_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* A reference to the cached parse of der, or NULL. */
static X509 *cert_cache_get(const unsigned char *der, size_t len)
{
	X509 *x = NULL;
	size_t i;

	pthread_mutex_lock(&cert_cache_lock);
	for (i = 0; i < CERT_CACHE_SLOTS; i++) {
		if (cert_cache[i].cert && cert_cache[i].len == len &&
		    memcmp(cert_cache[i].der, der, len) == 0) {
			if (X509_up_ref(cert_cache[i].cert) == 1) {
				x = cert_cache[i].cert;
				cert_cache[i].used = ++cert_cache_tick;
			}
			break;
		}
	}
	pthread_mutex_unlock(&cert_cache_lock);
	return x;
}

/* Keeps der and its parse x (a reference of its own); takes der. */
static void cert_cache_put(unsigned char *der, size_t len, X509 *x)
{
	size_t i, slot = 0;

	if (X509_up_ref(x) != 1) {
		free(der);
		return;
	}
	pthread_mutex_lock(&cert_cache_lock);
	for (i = 0; i < CERT_CACHE_SLOTS; i++) {
		if (!cert_cache[i].cert) {
			slot = i;
			break;
		}
		if (cert_cache[i].used < cert_cache[slot].used)
			slot = i;
	}
	X509_free(cert_cache[slot].cert);
	free(cert_cache[slot].der);
	cert_cache[slot].der = der;
	cert_cache[slot].len = len;
	cert_cache[slot].cert = x;
	cert_cache[slot].used = ++cert_cache_tick;
	pthread_mutex_unlock(&cert_cache_lock);
}

void pt_cert_cache_clear(void)
{
	size_t i;

	pthread_mutex_lock(&cert_cache_lock);
	for (i = 0; i < CERT_CACHE_SLOTS; i++) {
		X509_free(cert_cache[i].cert);
		free(cert_cache[i].der);
		memset(&cert_cache[i], 0, sizeof(cert_cache[i]));
	}
	pthread_mutex_unlock(&cert_cache_lock);
}

int pt_cert_from_base64(const char *b64, X509 **out)
{
	const unsigned char *p;
	unsigned char *der = NULL;
	size_t len;
	X509 *x;
	int err;

	*out = NULL;
	if ((err = pt_base64_decode(b64, &der, &len)) < 0)
		return err;
	if ((x = cert_cache_get(der, len)) != NULL) {
		free(der);
		*out = x;
		return 0;
	}
	p = der;
	x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		X509_free(x);
		free(der);
		ERR_clear_error();
		return tr_error_set(TR_EINVAL, "not a DER X.509 certificate");
	}
	cert_cache_put(der, len, x);
	*out = x;
	return 0;
}

static void name_entry(X509_NAME *name, int nid, char *buf, size_t size)
{
	unsigned char *utf8 = NULL;
	int idx, len;

	buf[0] = '\0';
	idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0)
		return;
	len = ASN1_STRING_to_UTF8(&utf8,
		X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (len < 0) {
		ERR_clear_error();
		return;
	}
	/* Refuse to cut a UTF-8 sequence: a too long value reads as empty. */
	if ((size_t)len < size)
		memcpy(buf, utf8, (size_t)len + 1);
	OPENSSL_free(utf8);
}

int pt_cert_identity(X509 *cert, char *name, size_t name_len, char *uscc,
		     size_t uscc_len)
{
	X509_NAME *subject = X509_get_subject_name(cert);

	if (!subject)
		return tr_error_set(TR_EINVAL, "certificate without subject");
	name_entry(subject, NID_organizationName, name, name_len);
	if (!name[0])
		name_entry(subject, NID_commonName, name, name_len);
	name_entry(subject, NID_organizationIdentifier, uscc, uscc_len);
	return 0;
}

void pt_cert_serial_hex(X509 *cert, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, len, "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	ERR_clear_error();
}

int pt_serial_normalize(const char *in, char *out, size_t len)
{
	size_t n = 0;
	int c;

	for (; *in; in++) {
		c = (unsigned char)*in;
		if (c == ' ' || c == ':' || c == '-')
			continue;
		if (c >= 'a' && c <= 'f')
			c -= 'a' - 'A';
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return TR_EINVAL;
		if (n == 0 && c == '0')
			continue;
		if (n + 1 >= len)
			return TR_EINVAL;
		out[n++] = (char)c;
	}
	if (n == 0) {
		/* All zeros is serial 0; nothing at all is no serial. */
		return TR_EINVAL;
	}
	out[n] = '\0';
	return 0;
}

char *pt_base64_encode(const unsigned char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}
