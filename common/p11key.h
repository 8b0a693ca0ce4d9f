/*
 * Keys and certificates on a PKCS#11 token, with OpenSSL on the other side:
 * generate a key pair, read a public key back as an EVP_PKEY, import a
 * software key or a certificate. Used to provision tokens and to upgrade or
 * renew them the way a CA's assistant does. A module that does not support
 * an operation gives TR_EDEPEND, other failures TR_EIO.
 */
#ifndef TR_COMMON_P11KEY_H
#define TR_COMMON_P11KEY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

typedef struct tr_p11_key {
	int rsa;            /* RSA-2048, else EC P-256 */
	unsigned char id;   /* CKA_ID of the key pair and its certificate */
	const char *label;  /* CKA_LABEL of them */
	int encrypt;        /* an encryption key (decrypt/unwrap), not a signing one */
} tr_p11_key;

/* Generates a key pair on the token (private: sensitive, not extractable). */
int tr_p11_generate_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
			CK_OBJECT_HANDLE *pub);

/* The public key object pub as an EVP_PKEY (EC P-256 or RSA). */
int tr_p11_public_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
		      EVP_PKEY **out);

/* Imports a software key pair (private part non-extractable). */
int tr_p11_import_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
		      EVP_PKEY *key);

/* Stores a certificate with the spec's CKA_ID and label. */
int tr_p11_import_cert(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
		       X509 *cert);

#endif
