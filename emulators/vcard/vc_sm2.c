#include "emulators/vcard/vc_sm2.h"

#include "common/error.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <string.h>

#define FIELD 32

static int bn_out(const BIGNUM *bn, uint8_t out[FIELD])
{
	return BN_bn2binpad(bn, out, FIELD) == FIELD ? 0 : -1;
}

int vc_sm2_z(EVP_PKEY *key, const uint8_t *id, size_t id_len,
	     uint8_t z[VC_SM2_DIGEST_LEN])
{
	EC_GROUP *group = NULL;
	BIGNUM *a = NULL, *b = NULL, *gx = NULL, *gy = NULL;
	EVP_MD_CTX *md = NULL;
	uint8_t pub[1 + 2 * FIELD], buf[4 * FIELD], entl[2];
	size_t pub_len = 0;
	unsigned zlen = 0;
	int error = 0;

	if (id_len > 8191)
		return tr_error_set(TR_EINVAL, "SM2 ID longer than 8191 bytes");
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub,
					    sizeof(pub), &pub_len) != 1 ||
	    pub_len != sizeof(pub) || pub[0] != 0x04)
		return tr_error_set_openssl(TR_ECRYPTO, "SM2 public key");
	if (!(group = EC_GROUP_new_by_curve_name(NID_sm2)) ||
	    !(a = BN_new()) || !(b = BN_new()) || !(gx = BN_new()) ||
	    !(gy = BN_new()) ||
	    !EC_GROUP_get_curve(group, NULL, a, b, NULL) ||
	    !EC_POINT_get_affine_coordinates(group, EC_GROUP_get0_generator(group),
					     gx, gy, NULL) ||
	    bn_out(a, buf) < 0 || bn_out(b, buf + FIELD) < 0 ||
	    bn_out(gx, buf + 2 * FIELD) < 0 || bn_out(gy, buf + 3 * FIELD) < 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "SM2 curve parameters");
		goto out;
	}
	entl[0] = (uint8_t)((id_len * 8) >> 8);
	entl[1] = (uint8_t)(id_len * 8);
	if (!(md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(md, EVP_sm3(), NULL) ||
	    !EVP_DigestUpdate(md, entl, 2) ||
	    (id_len && !EVP_DigestUpdate(md, id, id_len)) ||
	    !EVP_DigestUpdate(md, buf, sizeof(buf)) ||
	    !EVP_DigestUpdate(md, pub + 1, 2 * FIELD) ||
	    !EVP_DigestFinal_ex(md, z, &zlen) || zlen != VC_SM2_DIGEST_LEN)
		error = tr_error_set_openssl(TR_ECRYPTO, "SM3 of Z");
out:
	EVP_MD_CTX_free(md);
	BN_free(a);
	BN_free(b);
	BN_free(gx);
	BN_free(gy);
	EC_GROUP_free(group);
	return error;
}

int vc_sm2_e(EVP_PKEY *key, const uint8_t *msg, size_t len,
	     uint8_t e[VC_SM2_DIGEST_LEN])
{
	uint8_t z[VC_SM2_DIGEST_LEN];
	EVP_MD_CTX *md = NULL;
	unsigned elen = 0;
	int error;

	if ((error = vc_sm2_z(key, (const uint8_t *)VC_SM2_DEFAULT_ID,
			      strlen(VC_SM2_DEFAULT_ID), z)) < 0)
		return error;
	if (!(md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(md, EVP_sm3(), NULL) ||
	    !EVP_DigestUpdate(md, z, sizeof(z)) ||
	    (len && !EVP_DigestUpdate(md, msg, len)) ||
	    !EVP_DigestFinal_ex(md, e, &elen) || elen != VC_SM2_DIGEST_LEN)
		error = tr_error_set_openssl(TR_ECRYPTO, "SM3 of Z || M");
	EVP_MD_CTX_free(md);
	return error;
}
