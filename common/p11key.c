#include "p11key.h"

#include "error.h"
#include "p11mod.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <string.h>

/* A module that cannot do it at all (OpenSC on a PIV card) is not an I/O fault. */
static int p11_failure(CK_RV rv)
{
	return rv == CKR_FUNCTION_NOT_SUPPORTED ? TR_EDEPEND : TR_EIO;
}

/* DER of the OID prime256v1, as CKA_EC_PARAMS wants it. */
static const unsigned char p256_params[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};

static int attr_value(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s,
		      CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
		      unsigned char *buf, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, buf, *len };
	CK_RV rv = fn->C_GetAttributeValue(s, obj, &a, 1);

	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetAttributeValue: %s", tr_p11_rv_name(rv));
	*len = a.ulValueLen;
	return 0;
}

int tr_p11_public_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
		      EVP_PKEY **out)
{
	CK_KEY_TYPE type = 0;
	CK_ULONG type_len = sizeof(type);
	unsigned char a[1024], b[16];
	CK_ULONG a_len = sizeof(a), b_len = sizeof(b);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int error = 0;

	if (!bld)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = attr_value(fn, s, pub, CKA_KEY_TYPE, (unsigned char *)&type, &type_len)) < 0)
		goto out;
	if (type == CKK_EC) {
		/* CKA_EC_POINT is a DER OCTET STRING around the point. */
		const unsigned char *p;
		ASN1_OCTET_STRING *os;

		if ((error = attr_value(fn, s, pub, CKA_EC_POINT, a, &a_len)) < 0)
			goto out;
		p = a;
		os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)a_len);
		if (!os) {
			error = tr_error_set_openssl(TR_ECRYPTO, "CKA_EC_POINT is not DER");
			goto out;
		}
		OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
		OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
						 os->data, (size_t)os->length);
		params = OSSL_PARAM_BLD_to_param(bld);
		ASN1_OCTET_STRING_free(os);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	} else {
		if ((error = attr_value(fn, s, pub, CKA_MODULUS, a, &a_len)) < 0 ||
		    (error = attr_value(fn, s, pub, CKA_PUBLIC_EXPONENT, b, &b_len)) < 0)
			goto out;
		n = BN_bin2bn(a, (int)a_len, NULL);
		e = BN_bin2bn(b, (int)b_len, NULL);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
		params = OSSL_PARAM_BLD_to_param(bld);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	}
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		error = tr_error_set_openssl(TR_ECRYPTO, "rebuilding the token's public key");
out:
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return error;
}

int tr_p11_generate_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
			CK_OBJECT_HANDLE *pub)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 2048;
	CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
	CK_BYTE id = spec->id;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub_tmpl[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ID, &id, 1 },
		{ CKA_LABEL, (void *)spec->label, strlen(spec->label) },
		{ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) },
		{ CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent) },
	};
	CK_ATTRIBUTE priv_tmpl[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_ID, &id, 1 },
		{ CKA_LABEL, (void *)spec->label, strlen(spec->label) },
	};
	CK_OBJECT_HANDLE priv;
	CK_ULONG n_pub = 5;
	CK_RV rv;

	if (spec->rsa) {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pub_tmpl[4] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
		n_pub = 6;
	}
	rv = fn->C_GenerateKeyPair(s, &mech, pub_tmpl, n_pub, priv_tmpl,
				   sizeof(priv_tmpl) / sizeof(priv_tmpl[0]), pub, &priv);
	if (rv != CKR_OK)
		return tr_error_set(p11_failure(rv), "C_GenerateKeyPair: %s", tr_p11_rv_name(rv));
	return 0;
}

/* Adds the attributes of a key's BIGNUM parameter (big-endian bytes). */
static int bn_attr(EVP_PKEY *key, const char *param, CK_ATTRIBUTE_TYPE type,
		   CK_ATTRIBUTE *a, unsigned char *buf, size_t cap)
{
	BIGNUM *bn = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(key, param, &bn))
		return tr_error_set_openssl(TR_ECRYPTO, "reading RSA parameter %s", param);
	n = BN_num_bytes(bn);
	if ((size_t)n > cap) {
		BN_free(bn);
		return tr_error_set(TR_EINVAL, "RSA parameter %s too large", param);
	}
	BN_bn2bin(bn, buf);
	BN_clear_free(bn);
	*a = (CK_ATTRIBUTE){ type, buf, (CK_ULONG)n };
	return 0;
}

int tr_p11_import_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
		      EVP_PKEY *key)
{
	CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE type = spec->rsa ? CKK_RSA : CKK_EC;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE id = spec->id;
	CK_ATTRIBUTE priv[20] = {
		{ CKA_CLASS, &priv_cls, sizeof(priv_cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		/* An encryption key decrypts and unwraps; it never signs. */
		{ spec->encrypt ? CKA_DECRYPT : CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_ID, &id, 1 },
		{ CKA_LABEL, (void *)spec->label, strlen(spec->label) },
	};
	CK_ATTRIBUTE pub[12] = {
		{ CKA_CLASS, &pub_cls, sizeof(pub_cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ spec->encrypt ? CKA_ENCRYPT : CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ID, &id, 1 },
		{ CKA_LABEL, (void *)spec->label, strlen(spec->label) },
	};
	CK_ULONG n_priv = 9, n_pub = 6;
	unsigned char bufs[8][512], point[133], point_der[140], scalar[32];
	size_t point_len = 0;
	CK_OBJECT_HANDLE obj;
	CK_RV rv;
	int error = 0;

	if (spec->rsa) {
		static const struct { const char *param; CK_ATTRIBUTE_TYPE type; } rsa[] = {
			{ "n", CKA_MODULUS }, { "e", CKA_PUBLIC_EXPONENT },
			{ "d", CKA_PRIVATE_EXPONENT }, { "rsa-factor1", CKA_PRIME_1 },
			{ "rsa-factor2", CKA_PRIME_2 }, { "rsa-exponent1", CKA_EXPONENT_1 },
			{ "rsa-exponent2", CKA_EXPONENT_2 }, { "rsa-coefficient1", CKA_COEFFICIENT },
		};

		for (size_t i = 0; i < 8; i++)
			if ((error = bn_attr(key, rsa[i].param, rsa[i].type, &priv[n_priv++],
					     bufs[i], sizeof(bufs[i]))) < 0)
				goto out;
		pub[n_pub++] = priv[9];
		pub[n_pub++] = priv[10];
	} else if (EVP_PKEY_is_a(key, "EC")) {
		BIGNUM *d = NULL;

		if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) ||
		    BN_bn2binpad(d, scalar, sizeof(scalar)) != (int)sizeof(scalar) ||
		    !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
						     sizeof(point), &point_len) ||
		    point_len > 127) {
			BN_clear_free(d);
			error = tr_error_set_openssl(TR_ECRYPTO, "reading the EC key");
			goto out;
		}
		BN_clear_free(d);
		/* CKA_EC_POINT is the DER OCTET STRING around the point. */
		point_der[0] = 0x04;
		point_der[1] = (unsigned char)point_len;
		memcpy(point_der + 2, point, point_len);
		priv[n_priv++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) };
		priv[n_priv++] = (CK_ATTRIBUTE){ CKA_VALUE, scalar, sizeof(scalar) };
		pub[n_pub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) };
		pub[n_pub++] = (CK_ATTRIBUTE){ CKA_EC_POINT, point_der, (CK_ULONG)point_len + 2 };
	} else {
		error = tr_error_set(TR_EINVAL, "only RSA and P-256 keys can be imported");
		goto out;
	}
	rv = fn->C_CreateObject(s, priv, n_priv, &obj);
	if (rv == CKR_OK)
		rv = fn->C_CreateObject(s, pub, n_pub, &obj);
	if (rv != CKR_OK)
		error = tr_error_set(p11_failure(rv), "importing a key: %s", tr_p11_rv_name(rv));
out:
	OPENSSL_cleanse(bufs, sizeof(bufs));
	OPENSSL_cleanse(scalar, sizeof(scalar));
	return error;
}

int tr_p11_import_cert(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, const tr_p11_key *spec,
		       X509 *cert)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE id = spec->id;
	unsigned char *der = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
	int der_len = i2d_X509(cert, &der);
	int subject_len = i2d_X509_NAME(X509_get_subject_name(cert), &subject);
	int issuer_len = i2d_X509_NAME(X509_get_issuer_name(cert), &issuer);
	int serial_len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &serial);
	CK_OBJECT_HANDLE obj;
	CK_RV rv;
	int error = 0;

	if (der_len <= 0 || subject_len <= 0 || issuer_len <= 0 || serial_len <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding the certificate");
		goto out;
	}
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_CERTIFICATE_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_ID, &id, 1 },
		{ CKA_LABEL, (void *)spec->label, strlen(spec->label) },
		{ CKA_VALUE, der, (CK_ULONG)der_len },
		{ CKA_SUBJECT, subject, (CK_ULONG)subject_len },
		{ CKA_ISSUER, issuer, (CK_ULONG)issuer_len },
		{ CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_len },
	};
	rv = fn->C_CreateObject(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
	if (rv != CKR_OK)
		error = tr_error_set(p11_failure(rv), "C_CreateObject(certificate): %s",
				     tr_p11_rv_name(rv));
out:
	OPENSSL_free(der);
	OPENSSL_free(subject);
	OPENSSL_free(issuer);
	OPENSSL_free(serial);
	return error;
}
