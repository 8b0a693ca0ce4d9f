/*
 * Certificate and signature checks of a portal, with OpenSSL: the chain to
 * the portal's trust bundle, validity at portal time, revocation by the
 * portal's CRL, and signatures over challenges and documents.
 */
#ifndef TR_PORTAL_VERIFY_H
#define TR_PORTAL_VERIFY_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes of the guides ("CA验签结果失败，状态码：<n>"). */
#define PT_STATUS_SIGNATURE 800
#define PT_STATUS_NOT_YET_VALID 809
#define PT_STATUS_EXPIRED 810
#define PT_STATUS_CHAIN 820
#define PT_STATUS_REVOKED 823

/*
 * Not thread-safe: its caller serialises (a portal holds its lock over a
 * request).
 */
typedef struct pt_verifier pt_verifier;

/* What a verifier did: chains built and signatures checked, or reused. */
typedef struct pt_verifier_stats {
	uint64_t chains_verified;
	uint64_t chain_memo_hits;
} pt_verifier_stats;

typedef enum pt_sig_alg {
	PT_ALG_ECDSA_SHA256,
	PT_ALG_RSA_SHA256,
	PT_ALG_SM2_SM3,
} pt_sig_alg;

/*
 * Trusts the certificates of chain_path (PEM, issuing CA + root). crl_path
 * (may be NULL) is read when it exists and read again whenever it changes,
 * so certificates revoked while the portal runs are seen.
 */
int pt_verifier_new(pt_verifier **out, const char *chain_path,
		    const char *crl_path);
void pt_verifier_free(pt_verifier *v);

/*
 * Checks 1-3 of API.md in their fixed order: chain (time ignored), validity
 * at now, revocation. 0 when cert passes; otherwise *status is the status
 * of the first failure and the return is TR_ECRYPTO. The chain's
 * signatures, names and constraints, which no date changes, are verified
 * once for each of the 64 certificates seen last; dates and the CRL at
 * every call.
 */
int pt_verifier_check(pt_verifier *v, X509 *cert, int64_t now, int *status);

/*
 * pt_verifier_check, except that with allow_expired an expired certificate
 * passes check 2 (*expired is set to 1) and goes on to revocation: sites
 * that must answer an expired certificate in their own words use it.
 */
int pt_verifier_check_ex(pt_verifier *v, X509 *cert, int64_t now,
			 int allow_expired, int *status, int *expired);

void pt_verifier_get_stats(const pt_verifier *v, pt_verifier_stats *out);

/* 1 when the verifier's CRL (read again if changed) lists cert. */
int pt_verifier_revoked(pt_verifier *v, X509 *cert);

/*
 * The certificate serial as upper-case hex without leading zeros (the way
 * fixtures/units.json and the Hunan binding write it).
 */
void pt_cert_serial_hex(X509 *cert, char *buf, size_t len);

/*
 * Normalises a serial typed by a user: separators (space, ':', '-') are
 * dropped, letters upper-cased, leading zeros dropped. TR_EINVAL when a
 * character is not hex or nothing is left.
 */
int pt_serial_normalize(const char *in, char *out, size_t len);

/* base64 (standard, padded) of data into a malloc'd string, NULL on OOM. */
char *pt_base64_encode(const unsigned char *data, size_t len);

/* "ecdsa-sha256", "rsa-pkcs1-sha256", "sm2-sm3"; TR_EINVAL otherwise. */
int pt_sig_alg_parse(const char *name, pt_sig_alg *out);

/*
 * Verifies sig over data with cert's public key. The key type must fit alg.
 * 0 when valid, TR_ECRYPTO otherwise.
 */
int pt_signature_verify(X509 *cert, pt_sig_alg alg, const void *data,
			size_t len, const unsigned char *sig, size_t sig_len);

/*
 * Standard base64 (RFC 4648 alphabet, padding required; CR and LF are
 * skipped) into a malloc'd buffer. TR_EINVAL when malformed or empty.
 */
int pt_base64_decode(const char *b64, unsigned char **out, size_t *out_len);

/*
 * base64 of a DER X.509 certificate; TR_EINVAL when it is not one. The
 * same DER bytes give a reference to the same parsed certificate (a small
 * process-wide cache: the caller frees its reference and must not modify
 * the certificate); pt_cert_cache_clear() empties the cache.
 */
int pt_cert_from_base64(const char *b64, X509 **out);
void pt_cert_cache_clear(void);

/*
 * The unit name (O, else CN) and USCC (organizationIdentifier) of the
 * subject, as UTF-8; "" for a missing attribute.
 */
int pt_cert_identity(X509 *cert, char *name, size_t name_len, char *uscc,
		     size_t uscc_len);

#endif
