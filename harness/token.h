/*
 * The token layer: one interface over every kind of token the rig drives
 * (a PKCS#11 module today; a PC/SC card speaking APDUs directly next).
 *
 * A tr_token is one key pair and its certificate on one token, selected by
 * a PKCS#11 URI (RFC 7512). Every function returns 0 or a negative code: the
 * generic TR_E* of common/error.h or one of the token outcomes below, which
 * the portal flows turn into the page's messages.
 */
#ifndef TR_HARNESS_TOKEN_H
#define TR_HARNESS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr_token tr_token;

enum tr_token_error {
	TR_TOKEN_EPIN_INCORRECT = -101, /* wrong PIN; tries may be known */
	TR_TOKEN_EPIN_LOCKED = -102,    /* PIN blocked, right PIN refused too */
	TR_TOKEN_ENOTOKEN = -103,       /* no reader, no token in the reader/slot */
	TR_TOKEN_ENODRIVER = -104,      /* driver missing, or blind to the key plugged in */
	TR_TOKEN_EREMOVED = -105,       /* pulled out or I/O failed mid-operation */
	TR_TOKEN_EKEY_MISMATCH = -106,  /* certificate is not the key's */
	TR_TOKEN_ENOT_LOGGED_IN = -107,
};

typedef enum tr_sign_alg {
	TR_SIGN_NONE = 0,
	TR_SIGN_ECDSA_SHA256,   /* signature: DER ECDSA-Sig-Value */
	TR_SIGN_RSA_PKCS1_SHA256,
	TR_SIGN_SM2_SM3,        /* DER, distinguishing ID 1234567812345678 */
} tr_sign_alg;

/* The portal API's name of an algorithm ("ecdsa-sha256", ...). */
const char *tr_sign_alg_name(tr_sign_alg alg);

/* Short name of a token outcome code for reports ("PIN_INCORRECT", ...). */
const char *tr_token_error_name(int code);

/*
 * Opens the key selected by uri (pkcs11:token=...;object=...) in the PKCS#11
 * module at module_path (or the URI's module-path attribute when
 * module_path is NULL). The certificate with the key's CKA_ID is read; no
 * login happens yet. Nothing listed for the URI is TR_TOKEN_ENOTOKEN, or
 * TR_TOKEN_ENODRIVER when the module (the interposer) tells that more keys
 * are plugged in than it lists (a driver blind to the key, JS-E01).
 */
int tr_token_open_p11(tr_token **out, const char *module_path, const char *uri);

/*
 * The same, choosing among every token and certificate the URI matches the
 * one of unit_name (the company name, subject O), as a user picks a
 * certificate by company when several keys are plugged in. Both open calls
 * refuse with TR_TOKEN_EKEY_MISMATCH a certificate that is not the key's.
 */
int tr_token_open_p11_unit(tr_token **out, const char *module_path, const char *uri,
			   const char *unit_name);

/*
 * The PC/SC backend (harness/token_pcsc.c, kind "pcsc"): a PIV card spoken
 * to in APDUs through libpcsclite, key 9A and its certificate (5FC105).
 * The daemon is the one of PCSCLITE_CSOCK_NAME, set before the first call.
 * Every card exchange is bounded: TR_ETIMEDOUT after 10 s (or
 * TOKENRIG_PCSC_TIMEOUT_MS) when the card or the daemon does not answer.
 * No such reader, no readers, pcscd unreachable, no card: TR_TOKEN_ENOTOKEN;
 * pcscd not installed: TR_TOKEN_ENODRIVER. A PIV card cannot show the
 * key's public half, so a certificate that is not the key's is not seen at
 * open: the first login's probe signature finds it (tr_token_login).
 */

/* The PIV card in the PC/SC reader named reader (exact name). */
int tr_token_open_pcsc(tr_token **out, const char *reader);

/*
 * The rig's card kinds model the reader's driver in the backend, per reader
 * name (the card and the rig's pcscd stay as they are; the system's pcscd is
 * never touched):
 *  - "missing": the reader's driver is not installed: the backend's reader
 *    enumeration leaves the reader out, so opening its card is
 *    TR_TOKEN_ENODRIVER (JS-E01, HN-E06);
 *  - "empty": the reader is there and the card in it (connected for real: a
 *    pulled card stays TR_TOKEN_ENOTOKEN, TK-E04), yet the driver enumerates
 *    no token: TR_TOKEN_ENODRIVER;
 *  - "present": as installed.
 * tr_token_pcsc_fault_once makes the next reader enumeration for that
 * reader fail once (SCARD_F_INTERNAL_ERROR: an assistant exception, JS-E04).
 * Both hold until reset to "present" (the harness does at the end of a case).
 */
int tr_token_pcsc_set_driver(const char *reader, const char *state);
int tr_token_pcsc_fault_once(const char *reader);

/*
 * The same, choosing among all readers the card whose certificate names
 * unit_name (subject O), a valid one first.
 */
int tr_token_open_pcsc_unit(tr_token **out, const char *unit_name);

void tr_token_close(tr_token *tok);

/*
 * The token label as the middleware reported it (CK_TOKEN_INFO, blanks cut;
 * "" when the kind has none). Raw bytes: a module may cut a UTF-8 label at
 * 32 bytes inside a character (OpenSC with a long Chinese unit name).
 */
const char *tr_token_label(const tr_token *tok);

/* 1 when the label is valid UTF-8 (an empty one is). */
int tr_token_label_utf8(const tr_token *tok);

/* The backend: "pkcs11" or "pcsc". */
const char *tr_token_kind(const tr_token *tok);

/*
 * Certification rules ("no false green"): a function the module does not
 * support is a token failure naming the return value (not TR_EDEPEND, which
 * the engine reads as "the kind cannot"), and CKR_GENERAL_ERROR /
 * CKR_DEVICE_ERROR mean "removed" only when C_GetSlotInfo shows no token.
 */
void tr_token_set_strict(tr_token *tok, int strict);

/* Logs the user in. TR_TOKEN_EPIN_INCORRECT / _EPIN_LOCKED on refusal. */
/*
 * Logs in. The first login of an open token signs a probe and verifies it
 * with the certificate: a certificate that is not the key's is
 * TR_TOKEN_EKEY_MISMATCH before any portal sees a signature (a PIV card, and
 * OpenSC on it, cannot show the key's public half apart from the certificate).
 */
int tr_token_login(tr_token *tok, const char *pin);
int tr_token_logout(tr_token *tok);

/*
 * Remaining PIN tries as far as the token tells: -1 unknown, 0 locked.
 * PKCS#11 only has flags (FINAL_TRY gives 1, LOCKED gives 0) unless the
 * module is the rig's interposer, which tells the exact count.
 */
int tr_token_pin_tries(tr_token *tok);

/* C_SetPIN / CHANGE REFERENCE DATA: the user changes their own PIN. */
int tr_token_change_pin(tr_token *tok, const char *old_pin, const char *new_pin);

/*
 * Resets the user PIN with the security officer's secret (the SO PIN of a
 * PKCS#11 token, the PUK of a card): unblocks and sets new_pin.
 */
int tr_token_reset_pin(tr_token *tok, const char *so_secret, const char *new_pin);

/* The certificate (DER), owned by the token. */
int tr_token_certificate(tr_token *tok, const unsigned char **der, size_t *len);

/* The algorithm this token's key signs with. */
tr_sign_alg tr_token_sign_alg(const tr_token *tok);

/*
 * Signs data (the token hashes, or the harness hashes first where the token
 * cannot). *sig is malloc'd. *token_ns is the time spent inside the token
 * calls alone (C_SignInit + C_Sign, or the APDU exchange).
 */
int tr_token_sign(tr_token *tok, const unsigned char *data, size_t len,
		  unsigned char **sig, size_t *sig_len, uint64_t *token_ns);

/* The key pair a token generates. */
typedef enum tr_keygen {
	TR_KEYGEN_UPGRADE,  /* the upgrade's: SM2 where the token holds it, else P-256 */
	TR_KEYGEN_P256,
	TR_KEYGEN_RSA2048,
} tr_keygen;

/*
 * Generates a new key pair on the token, as an upgrade or a renewal does.
 * *spki (malloc'd) is its DER SubjectPublicKeyInfo. Needs a login.
 * TR_EDEPEND when the token kind cannot generate keys, or not of that kind.
 */
int tr_token_generate_key(tr_token *tok, tr_keygen alg, unsigned char **spki,
			  size_t *spki_len);

/*
 * Makes a certificate (DER) the token's current one, stored next to the key
 * pair it certifies (which must be on the token). Needs a login.
 */
int tr_token_write_certificate(tr_token *tok, const unsigned char *der, size_t len);

/*
 * Puts the token back as provisioned: the original certificate current,
 * every key and certificate written since removed. Needs a login.
 */
int tr_token_restore(tr_token *tok, const unsigned char *der, size_t len);

/*
 * 1 when the certificate (DER) names unit_name (subject O) and, when
 * valid_only, is valid now: like an assistant, the choice by company offers
 * the usable certificates first. Shared by the backends' open-by-unit.
 */
int tr_cert_of_unit(const unsigned char *der, size_t len, const char *unit_name,
		    int valid_only);

/* Backend operations; token_p11.c and later backends fill one of these. */
typedef struct tr_token_ops {
	const char *kind;
	/*
	 * 1: the first login signs a probe and verifies it with the
	 * certificate (tr_token_login), for a backend that cannot otherwise
	 * see whether the certificate is the key's (a PIV card in APDUs).
	 * Not through OpenSC: a card pulled during such a probe deadlocks
	 * OpenSC 0.23 inside C_Sign.
	 */
	int probe_key_at_login;
	int (*login)(tr_token *tok, const char *pin);
	int (*logout)(tr_token *tok);
	int (*pin_tries)(tr_token *tok);
	int (*change_pin)(tr_token *tok, const char *old_pin, const char *new_pin);
	int (*reset_pin)(tr_token *tok, const char *so_secret, const char *new_pin);
	int (*sign)(tr_token *tok, const unsigned char *data, size_t len,
		    unsigned char **sig, size_t *sig_len, uint64_t *token_ns);
	/* Optional (NULL: the kind cannot): upgrades and renewals. */
	int (*generate_key)(tr_token *tok, tr_keygen alg, unsigned char **spki,
			    size_t *spki_len);
	int (*write_certificate)(tr_token *tok, const unsigned char *der, size_t len);
	int (*restore)(tr_token *tok, const unsigned char *der, size_t len);
	void (*close)(tr_token *tok);
} tr_token_ops;

/* The part every backend's token starts with. */
struct tr_token {
	const tr_token_ops *ops;
	unsigned char *cert_der;
	size_t cert_len;
	tr_sign_alg alg;
	int strict;  /* certification: see tr_token_set_strict() */
	int key_proven; /* a probe signed at login verified with the certificate */
	char label[40]; /* the token label as the middleware gave it, blanks cut; may be "" */
};

#endif
