#include "emulators/softhsm/provision.h"

#include "common/error.h"
#include "common/fsutil.h"
#include "common/p11key.h"
#include "common/p11mod.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sh_softhsm_configure(const char *dir, char *conf_path, size_t len)
{
	char tokens[4096], conf[8192];
	int n, error;

	if ((error = tr_fs_join(tokens, sizeof(tokens), dir, "tokens")) < 0 ||
	    (error = tr_fs_mkdirs(tokens, 0700)) < 0 ||
	    (error = tr_fs_join(conf_path, len, dir, "softhsm2.conf")) < 0)
		return error;
	n = snprintf(conf, sizeof(conf),
		     "# written by tokenrig: a token folder of this run only\n"
		     "directories.tokendir = %s\n"
		     "objectstore.backend = file\n"
		     "log.level = ERROR\n"
		     "slots.removable = false\n", tokens);
	if (n < 0 || (size_t)n >= sizeof(conf))
		return tr_error_set(TR_EINVAL, "token folder path too long");
	if ((error = tr_fs_write_atomic(conf_path, conf, (size_t)n, 0600)) < 0)
		return error;
	setenv("SOFTHSM2_CONF", conf_path, 1);
	return 0;
}

static void pad_label(unsigned char out[32], const char *label)
{
	size_t n = strlen(label);

	memset(out, ' ', 32);
	memcpy(out, label, n > 32 ? 32 : n);
}

/* SoftHSM keeps one uninitialised slot at the end; that is where we init. */
static int free_slot(tr_p11mod *mod, CK_FUNCTION_LIST *fn, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[TR_P11_MAX_SLOTS];
	CK_ULONG count = TR_P11_MAX_SLOTS;
	CK_TOKEN_INFO info;
	int error;

	if ((error = tr_p11mod_slot_list(mod, slots, &count)) < 0)
		return error;
	for (CK_ULONG i = 0; i < count; i++) {
		if (fn->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
		    !(info.flags & CKF_TOKEN_INITIALIZED)) {
			*slot = slots[i];
			return 0;
		}
	}
	return tr_error_set(TR_ENOTFOUND, "SoftHSM has no free slot left");
}

int sh_softhsm_provision(const char *module_path, fx_pki *pki,
			 const sh_token_spec *spec, sh_token_made *made)
{
	tr_p11_key key_spec = { .rsa = spec->alg == FX_KEY_RSA_2048, .id = spec->key_id,
				.label = spec->key_label };
	tr_p11_key enc_spec = { .rsa = key_spec.rsa, .id = (unsigned char)(spec->key_id + 1),
				.label = "enc", .encrypt = 1 };
	tr_p11mod *mod = NULL;
	CK_FUNCTION_LIST *fn;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE pub;
	unsigned char label[32];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *enc_cert = NULL;
	CK_RV rv;
	int error;

	if (spec->alg == FX_KEY_SM2)
		return tr_error_set(TR_EINVAL, "SoftHSM2 2.6 cannot hold SM2 keys (%s)", spec->label);
	if ((error = tr_p11mod_load(&mod, module_path)) < 0)
		return error;
	fn = tr_p11mod_functions(mod);
	if ((error = free_slot(mod, fn, &slot)) < 0)
		goto out;
	pad_label(label, spec->label);
	rv = fn->C_InitToken(slot, (CK_UTF8CHAR *)spec->so_pin, strlen(spec->so_pin), label);
	if (rv != CKR_OK) {
		error = tr_error_set(TR_EIO, "C_InitToken %s: %s", spec->label, tr_p11_rv_name(rv));
		goto out;
	}
	/* SoftHSM renumbers slots after C_InitToken: look the token up again. */
	if ((error = tr_p11mod_find_token(mod, spec->label, &slot)) < 0)
		goto out;
	rv = fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = fn->C_Login(s, CKU_SO, (CK_UTF8CHAR *)spec->so_pin, strlen(spec->so_pin));
	if (rv == CKR_OK)
		rv = fn->C_InitPIN(s, (CK_UTF8CHAR *)spec->user_pin, strlen(spec->user_pin));
	if (rv == CKR_OK)
		rv = fn->C_Logout(s);
	if (rv == CKR_OK)
		rv = fn->C_Login(s, CKU_USER, (CK_UTF8CHAR *)spec->user_pin,
				 strlen(spec->user_pin));
	if (rv != CKR_OK) {
		error = tr_error_set(TR_EIO, "setting the PINs of %s: %s", spec->label,
				     tr_p11_rv_name(rv));
		goto out;
	}
	if (spec->import_key) {
		if ((error = tr_p11_import_key(fn, s, &key_spec, spec->import_key)) < 0)
			goto out;
		if (!spec->cert_for_other_key && EVP_PKEY_up_ref(spec->import_key))
			key = spec->import_key;
	} else if ((error = tr_p11_generate_key(fn, s, &key_spec, &pub)) < 0) {
		goto out;
	} else if (!spec->cert_for_other_key) {
		error = tr_p11_public_key(fn, s, pub, &key);
	}
	if (!error && spec->cert_for_other_key)
		error = fx_key_generate(spec->alg, &key);
	if (error < 0 ||
	    (error = fx_pki_issue_unit(pki, spec->ca, key, spec->unit, spec->variant,
				       &cert)) < 0 ||
	    (error = tr_p11_import_cert(fn, s, &key_spec, cert)) < 0)
		goto out;
	/* Hunan CA's tokens: an encryption key and certificate beside it. */
	if (spec->enc_key &&
	    ((error = tr_p11_import_key(fn, s, &enc_spec, spec->enc_key)) < 0 ||
	     (error = fx_pki_issue_unit_ex(pki, spec->ca, spec->enc_key, spec->unit,
					   FX_VARIANT_VALID, FX_PURPOSE_ENCRYPT, &enc_cert)) < 0 ||
	     (error = tr_p11_import_cert(fn, s, &enc_spec, enc_cert)) < 0))
		goto out;
	fn->C_Logout(s);
	if (made) {
		made->cert = cert;
		made->enc_cert = enc_cert;
		cert = enc_cert = NULL;
	}
out:
	if (s != CK_INVALID_HANDLE)
		fn->C_CloseSession(s);
	X509_free(cert);
	X509_free(enc_cert);
	EVP_PKEY_free(key);
	tr_p11mod_release(mod);
	if (error < 0 && error != TR_EINVAL) {
		char why[512];

		snprintf(why, sizeof(why), "%s", tr_error_last());
		error = tr_error_set(error, "provisioning %s: %s", spec->label, why);
	}
	return error;
}
