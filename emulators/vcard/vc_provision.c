#include "emulators/vcard/vc_provision.h"

#include "common/error.h"
#include "fixtures/provinces.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int vc_default_pin(const char *province, const fx_unit *unit, char *buf,
		   size_t len)
{
	const fx_province *p = fx_province_find(province);

	if (!p)
		return tr_error_set(TR_EINVAL, "unknown province '%s' (known: %s)",
				    province ? province : "(null)", fx_province_list());
	return fx_province_default_pin(p, unit, buf, len);
}

static int fill_slot(fx_pki *pki, vc_image *img, vc_slot slot, EVP_PKEY *given,
		     const vc_provision_opts *opts, const fx_unit *unit)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int error = 0;

	if (given && EVP_PKEY_up_ref(given))
		key = given;
	else if ((error = fx_key_generate(opts->alg, &key)) < 0)
		goto out;
	/* 9D is key management: the encryption certificate (registry: enc_cert). */
	if ((error = fx_pki_issue_unit_ex(pki, opts->ca ? opts->ca : opts->province,
					  slot == VC_SLOT_9A && opts->cert_key_9a ?
					  opts->cert_key_9a : key, unit,
					  slot == VC_SLOT_9D ? FX_VARIANT_VALID : opts->variant,
					  slot == VC_SLOT_9D ? FX_PURPOSE_ENCRYPT : FX_PURPOSE_SIGN,
					  &cert)) < 0)
		goto out;
	error = slot == VC_SLOT_9A && opts->cert_key_9a ? vc_image_set_slot_any(img, slot, key, cert) :
		vc_image_set_slot(img, slot, key, cert);
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return error;
}

int vc_provision(fx_pki *pki, const vc_provision_opts *opts, vc_image **out)
{
	uint8_t serial[VC_SERIAL_LEN];
	char pin[16];
	vc_image *img = NULL;
	vc_profile profile;
	fx_unit unit;
	int error;

	if (!pki || !opts || !opts->image_path || !opts->province)
		return tr_error_set(TR_EINVAL, "vc_provision: missing argument");
	profile = opts->profile >= 0 ? (vc_profile)opts->profile :
		  opts->alg == FX_KEY_RSA_2048 ? VC_PROFILE_BLUE : VC_PROFILE_SILVER;
	if (profile == VC_PROFILE_BLUE && opts->alg != FX_KEY_RSA_2048)
		return tr_error_set(TR_EINVAL, "a blue card takes RSA-2048 keys only");
	if ((error = fx_unit_generate(&unit, opts->seed, opts->province, opts->index)) < 0)
		return error;
	if (opts->unit_name)
		snprintf(unit.unit_name, sizeof(unit.unit_name), "%s", opts->unit_name);
	/* A fresh serial per image: OpenSC and drivers key caches on it. */
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return tr_error_set_openssl(TR_ECRYPTO, "RAND_bytes");
	if ((error = vc_image_new(&img, profile, serial)) < 0)
		return error;
	if (opts->pin) {
		snprintf(pin, sizeof(pin), "%s", opts->pin);
	} else if ((error = vc_default_pin(opts->province, &unit, pin, sizeof(pin))) < 0) {
		goto out;
	}
	if ((opts->tries && (error = vc_image_set_limit(img, VC_REF_PIN, opts->tries)) < 0) ||
	    (opts->puk_tries &&
	     (error = vc_image_set_limit(img, VC_REF_PUK, opts->puk_tries)) < 0) ||
	    (error = vc_image_set_ref(img, VC_REF_PIN, pin)) < 0 ||
	    (opts->puk && (error = vc_image_set_ref(img, VC_REF_PUK, opts->puk)) < 0))
		goto out;
	if ((error = fill_slot(pki, img, VC_SLOT_9A, opts->keys[0], opts, &unit)) < 0 ||
	    (error = fill_slot(pki, img, VC_SLOT_9C, opts->keys[1], opts, &unit)) < 0 ||
	    (fx_province_find(opts->province)->enc_cert &&
	     (error = fill_slot(pki, img, VC_SLOT_9D, opts->keys[2], opts, &unit)) < 0))
		goto out;
	if ((error = vc_image_save(img, opts->image_path)) < 0)
		goto out;
	if (out) {
		*out = img;
		img = NULL;
	}
out:
	vc_image_free(img);
	return error;
}
