/*
 * SoftHSM2 tokens of the rig, in a token folder of the run (never the
 * system's /var/lib/softhsm): initialised, key pair generated on the token,
 * certificate issued by the fixture CA for that key and imported next to it.
 */
#ifndef TR_EMULATORS_SOFTHSM_PROVISION_H
#define TR_EMULATORS_SOFTHSM_PROVISION_H

#include <stddef.h>

#include "common/paths.h"
#include "fixtures/pki.h"

/* SoftHSM2's PKCS#11 module as p11-kit registers it (common/paths.h). */
#define SH_SOFTHSM_MODULE tr_paths_get(TR_PATH_SOFTHSM2)

typedef struct sh_token_spec {
	const char *label;      /* token label, at most 32 bytes */
	const char *key_label;  /* CKA_LABEL of the key and the certificate */
	unsigned char key_id;   /* CKA_ID (one byte) of both */
	fx_key_alg alg;
	const fx_unit *unit;
	const char *ca;         /* issuing CA, e.g. "suzhou" */
	fx_variant variant;
	const char *user_pin;
	const char *so_pin;
	int cert_for_other_key; /* the certificate certifies another key (TK-E07) */
	/*
	 * NULL: the key pair is generated on the token. Otherwise this software
	 * key is imported (non-extractable), for tokens that differ from one
	 * already generated only by their certificate.
	 */
	EVP_PKEY *import_key;
	/* Non-NULL: also an encryption key pair (imported) with its certificate. */
	EVP_PKEY *enc_key;
} sh_token_spec;

/* What provisioning issued; the caller frees both (X509_free). */
typedef struct sh_token_made {
	X509 *cert;
	X509 *enc_cert;  /* NULL without enc_key */
} sh_token_made;

/*
 * Writes DIR/softhsm2.conf with its token folder DIR/tokens and sets
 * SOFTHSM2_CONF for this process (it must be set before the module loads).
 * conf_path receives the config's path.
 */
int sh_softhsm_configure(const char *dir, char *conf_path, size_t len);

/*
 * Creates one token as spec says. The module is loaded (or shared). made,
 * when not NULL, receives the certificates issued.
 */
int sh_softhsm_provision(const char *module_path, fx_pki *pki,
			 const sh_token_spec *spec, sh_token_made *made);

#endif
