/*
 * The PIV driver (NIST SP 800-73-4) of the card backend: the commands the
 * harness sends to a PIV card over an APDU channel, and the parsers of the
 * card's answers (pure functions: the fuzz target suites/fuzz/fuzz_piv.c
 * feeds them). Layers: harness/pcsc/link.h.
 *
 * Key: 9A (PIV authentication) and its certificate 5FC105, for every
 * signature. 9A needs the PIN once per card session; 9C would need a VERIFY
 * before every signature (PIN always), which no login/sign split can model.
 * Logout: VERIFY P1=FF P2=80 without data drops the PIN status (SP 800-73-4
 * part 2, 3.2.1) without a card reset. Answers are checked for shape
 * (common/tlv.h: lengths, nesting, the signature's encoding); anything
 * malformed is TR_EIO naming the command and the card, never a crash.
 * Signatures are passed on as the card gives them (not verified here).
 */
#ifndef TR_HARNESS_PCSC_PIV_H
#define TR_HARNESS_PCSC_PIV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "harness/pcsc/apdu.h"
#include "harness/token.h"

#define TR_PIV_ALG_RSA2048 0x07
#define TR_PIV_ALG_P256 0x11
#define TR_PIV_ALG_SM2 0xE8
#define TR_PIV_ALG_SM2_MSG 0xE9     /* the card hashes Z || M with SM3 */

/* --- parsers of answers (no I/O); where names the card in messages ---- */

/* SELECT's application property template: one 61 { ... }, well formed. */
int tr_piv_parse_select(const unsigned char *ans, size_t len, const char *where);

/*
 * GET DATA 5FC105: 53 { 70 cert, 71 info, FE lrc }. *der points into ans.
 * A compressed certificate (CertInfo 01) is refused.
 */
int tr_piv_parse_certificate(const unsigned char *ans, size_t len, const char *where,
			     const unsigned char **der, size_t *der_len);

/* The signature algorithm of a certificate's key (P-256, RSA-2048, SM2). */
int tr_piv_cert_alg(const unsigned char *der, size_t len, tr_sign_alg *alg);

/*
 * GENERAL AUTHENTICATE: 7C { 82 sig }, the signature checked for the
 * algorithm's encoding (256 bytes for RSA-2048, DER ECDSA-Sig-Value for
 * P-256 and SM2). *sig points into ans.
 */
int tr_piv_parse_signature(const unsigned char *ans, size_t len, tr_sign_alg alg,
			   const char *where, const unsigned char **sig, size_t *sig_len);

/* The management key's challenge: 7C { 81 (8 bytes) }. *chal points into ans. */
int tr_piv_parse_challenge(const unsigned char *ans, size_t len, const char *where,
			   const unsigned char **chal);

/* GENERATE's public key, 7F49 { 81 n, 82 e } or { 86 point }, of PIV alg. */
int tr_piv_parse_public_key(const unsigned char *ans, size_t len, unsigned char alg,
			    EVP_PKEY **out);

/* --- commands ---------------------------------------------------------- */

/* SELECT the PIV application: no PIV on the card is TR_TOKEN_ENOTOKEN. */
int tr_piv_select(tr_apdu_chan *c);

/* 9A's certificate (malloc'd DER) and its algorithm; none: TR_ENOTFOUND. */
int tr_piv_read_certificate(tr_apdu_chan *c, unsigned char **der, size_t *len,
			    tr_sign_alg *alg);

/*
 * VERIFY of the PIN (1-8 characters, padded with FF); pin NULL asks the
 * status only. *sw is the card's word (63Cx: x tries left); the return is
 * 0 unless the exchange itself failed.
 */
int tr_piv_verify(tr_apdu_chan *c, const char *pin, unsigned *sw);

/* VERIFY FF: drops the PIN status. */
int tr_piv_unverify(tr_apdu_chan *c);

/*
 * CHANGE REFERENCE DATA of the PIN (old, new) or, with puk_reset, RESET
 * RETRY COUNTER (PUK, new PIN). *sw as for tr_piv_verify.
 */
int tr_piv_change_pin(tr_apdu_chan *c, int puk_reset, const char *old, const char *new_pin,
		      unsigned *sw);

/*
 * Signs data with 9A for the certificate's algorithm: the host pads for
 * RSA (EMSA-PKCS1-v1_5 of SHA-256), hashes for P-256, and leaves the hash
 * to the card for SM2 (algorithm E9). *sig malloc'd; *token_ns the time of
 * the card exchange. 6982 is TR_TOKEN_ENOT_LOGGED_IN.
 */
int tr_piv_sign(tr_apdu_chan *c, tr_sign_alg alg, const unsigned char *data, size_t len,
		unsigned char **sig, size_t *sig_len, uint64_t *token_ns);

/*
 * External authentication with the management key 9B (3DES):
 * TOKENRIG_PIV_MGMT_KEY (48 hex digits) for a vendor's card, else the
 * well-known default of PIV test cards, 01..08 three times. Grants
 * GENERATE and PUT DATA until the card is reset.
 */
int tr_piv_mgmt_authenticate(tr_apdu_chan *c);

/*
 * GENERATE ASYMMETRIC KEY PAIR in 9A (after tr_piv_mgmt_authenticate); the
 * upgrade's key is SM2 where the card takes it (6A80 otherwise), else
 * P-256. A card that takes no key of the kind: TR_EDEPEND. *spki malloc'd.
 */
int tr_piv_generate(tr_apdu_chan *c, tr_keygen alg, unsigned char **spki, size_t *spki_len);

/*
 * PUT DATA 5FC105 = 53 { 70 cert, 71 00, FE }: 9A's certificate (after
 * tr_piv_mgmt_authenticate). 6A80 is TR_TOKEN_EKEY_MISMATCH.
 */
int tr_piv_put_certificate(tr_apdu_chan *c, const unsigned char *der, size_t len);

#endif
