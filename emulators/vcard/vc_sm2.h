/*
 * SM2 (GB/T 32918.2) helpers shared by the card and by host code: the
 * digest e = SM3(Z || M) a host computes before asking the card to sign
 * with algorithm E8, where Z binds the signer's public key and the
 * distinguishing ID (default 1234567812345678).
 */
#ifndef TR_EMULATORS_VCARD_VC_SM2_H
#define TR_EMULATORS_VCARD_VC_SM2_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define VC_SM2_DEFAULT_ID "1234567812345678"
#define VC_SM2_DIGEST_LEN 32

/* Z of GB/T 32918.2 section 5.5 for key (SM2 public or private) and id. */
int vc_sm2_z(EVP_PKEY *key, const uint8_t *id, size_t id_len,
	     uint8_t z[VC_SM2_DIGEST_LEN]);

/* e = SM3(Z || msg) with the default distinguishing ID. */
int vc_sm2_e(EVP_PKEY *key, const uint8_t *msg, size_t len,
	     uint8_t e[VC_SM2_DIGEST_LEN]);

#endif
