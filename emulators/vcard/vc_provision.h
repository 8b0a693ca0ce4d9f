/*
 * Provisioning of a card image from the fixtures: software keys made with
 * fx_key_generate, certificates issued by the province's CA with
 * fx_pki_issue_unit, the unit identity from fx_unit_generate.
 *
 * Slots filled: 9A (authentication) and 9C (signature), each with its own
 * key of the chosen algorithm and its own VALID certificate; a card of a
 * province whose registry row says enc_cert (Hunan) also gets 9D (key management: the encryption certificate).
 */
#ifndef TR_EMULATORS_VCARD_VC_PROVISION_H
#define TR_EMULATORS_VCARD_VC_PROVISION_H

#include <stddef.h>
#include <stdint.h>

#include "emulators/vcard/vc_image.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"

typedef struct vc_provision_opts {
	const char *image_path;   /* written atomically */
	const char *province;     /* a registry name (fixtures/provinces.h) */
	unsigned index;           /* unit index of fx_unit_generate */
	uint64_t seed;            /* identity seed (fixtures default: 1) */
	fx_key_alg alg;
	int profile;              /* vc_profile, or -1: blue for RSA, else silver */
	const char *pin;          /* NULL: the province's rule */
	const char *puk;          /* NULL: 12345678 */
	unsigned tries;           /* PIN tries, 0: 6 */
	unsigned puk_tries;       /* 0: 10 */
	fx_variant variant;       /* of the certificates (VALID normally) */
	const char *ca;           /* issuing CA; NULL: the province's */
	const char *unit_name;    /* name in the certificates; NULL: the unit's */
	/* Keys for 9A, 9C, 9D; NULL: generated (shared keys make runs fast). */
	EVP_PKEY *keys[3];
	/*
	 * NULL, or the key 9A's certificate is issued for instead of 9A's own:
	 * a valid certificate that is not the key's (TK-E07, profile mismatch).
	 */
	EVP_PKEY *cert_key_9a;
} vc_provision_opts;

/*
 * The PIN a new token of that province ships with, by its rule in the
 * province registry (fixtures/provinces.def): suzhou = last six characters
 * of the operator's resident ID, sichuan = 12345678, hebei and hunan =
 * 123456. TR_EINVAL for a province not in the registry.
 */
int vc_default_pin(const char *province, const fx_unit *unit, char *buf,
		   size_t len);

/* Makes keys and certificates and writes the image; *out may be NULL. */
int vc_provision(fx_pki *pki, const vc_provision_opts *opts, vc_image **out);

#endif
