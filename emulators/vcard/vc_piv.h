/*
 * The PIV applet (NIST SP 800-73-4) of the virtual card: one command APDU
 * in, one response APDU out, no I/O. It borrows a vc_image for keys,
 * certificates and counters; the image saves itself on every change.
 *
 * Instructions: SELECT (A4), GET DATA (CB), VERIFY (20), CHANGE REFERENCE
 * DATA (24), RESET RETRY COUNTER (2C), GENERAL AUTHENTICATE (87, also the
 * management key 9B), GENERATE ASYMMETRIC KEY PAIR (47), PUT DATA (DB) of
 * certificates, GET RESPONSE (C0); command chaining (CLA 10) and extended
 * length. The status
 * words of every refusal are listed in README.md.
 */
#ifndef TR_EMULATORS_VCARD_VC_PIV_H
#define TR_EMULATORS_VCARD_VC_PIV_H

#include <stddef.h>
#include <stdint.h>

#include "emulators/vcard/vc_image.h"

typedef struct vc_piv vc_piv;

/* What a command is, for the latency model of the control socket. */
typedef enum vc_cmd_class {
	VC_CLASS_OTHER,
	VC_CLASS_VERIFY,     /* VERIFY, CHANGE REFERENCE DATA, RESET RETRY */
	VC_CLASS_SIGN_RSA,   /* the last (unchained) GENERAL AUTHENTICATE */
	VC_CLASS_SIGN_EC,
	VC_CLASS_SIGN_SM2,
	VC_CLASS_GETDATA,    /* GET DATA and GET RESPONSE */
} vc_cmd_class;

/* The card's ATR (T=1; fixed, see README.md). */
extern const uint8_t vc_piv_atr[];
extern const size_t vc_piv_atr_len;

/* img stays the caller's and must outlive the applet. */
int vc_piv_new(vc_piv **out, vc_image *img);
void vc_piv_free(vc_piv *piv);

/* Power on / reset: security status, chain and pending data are dropped. */
void vc_piv_reset(vc_piv *piv);

/*
 * Processes one command APDU and writes the response APDU (data + SW1 SW2)
 * into resp, which holds at least VC_APDU_MAX_RESP bytes. Returns the
 * response length (always >= 2). Never fails: every problem is a status
 * word (6581 when the image could not be saved).
 */
size_t vc_piv_process(vc_piv *piv, const uint8_t *cmd, size_t len,
		      uint8_t *resp);

/* The class of a command APDU (without processing it). */
vc_cmd_class vc_piv_classify(const vc_piv *piv, const uint8_t *cmd, size_t len);

/* 1 while the PIN is verified (for the control socket's status). */
int vc_piv_pin_verified(const vc_piv *piv);

#endif
