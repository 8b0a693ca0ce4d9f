#include "harness/pcsc/piv.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/tlv.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIN_LEN 8
#define KEY_REF 0x9A
#define MGMT_KEY_LEN 24             /* 3DES */
#define DATA_MAX (32 * 1024)        /* the card's limit on chained data */
#define TLV_DEPTH 8                 /* nesting accepted in an answer */

/* --- parsers ------------------------------------------------------------ */

int tr_piv_parse_select(const unsigned char *ans, size_t len, const char *where)
{
	tr_tlv apt;

	/* The application property template: 61 { 4F, 79, 50, AC ... }, all well formed. */
	if (tr_tlv_one(ans, len, 0x61, &apt) < 0)
		return tr_error_set(TR_EIO, "SELECT PIV on %s: malformed answer (%zu bytes, not "
				    "one 61 template)", where, len);
	if (tr_tlv_check(apt.val, apt.len, TLV_DEPTH) < 0)
		return tr_error_set(TR_EIO, "SELECT PIV on %s: malformed TLV in the "
				    "application property template", where);
	return 0;
}

int tr_piv_parse_certificate(const unsigned char *ans, size_t len, const char *where,
			     const unsigned char **der, size_t *der_len)
{
	tr_tlv_reader r;
	tr_tlv obj, t;
	int rc, info = 0;

	*der = NULL;
	*der_len = 0;
	if (tr_tlv_one(ans, len, 0x53, &obj) < 0)
		return tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: malformed answer (%zu bytes, "
				    "not one 53 object)", where, len);
	tr_tlv_reader_init(&r, obj.val, obj.len);
	while ((rc = tr_tlv_next(&r, &t)) == 1) {
		if (t.tag == 0x70 && !*der) {
			*der = t.val;
			*der_len = t.len;
		} else if (t.tag == 0x71 && t.len >= 1) {
			info = t.val[0];
		}
	}
	if (rc < 0)
		return tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: malformed TLV inside the "
				    "certificate object", where);
	if (!*der || *der_len == 0)
		return tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: no certificate (tag 70) in "
				    "the object", where);
	if (info & 0x01)
		return tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: compressed certificate "
				    "(CertInfo 01) not supported", where);
	return 0;
}

int tr_piv_cert_alg(const unsigned char *der, size_t len, tr_sign_alg *alg)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *pub;
	char group[64];
	int error = 0;

	if (!cert || p != der + len) {
		X509_free(cert);
		return tr_error_set_openssl(TR_EIO, "the card's certificate (5FC105) is not DER X.509");
	}
	pub = X509_get0_pubkey(cert);
	if (pub && EVP_PKEY_is_a(pub, "SM2")) {
		*alg = TR_SIGN_SM2_SM3;
	} else if (pub && EVP_PKEY_is_a(pub, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), NULL) ||
		    strcmp(group, "prime256v1") != 0)
			error = tr_error_set(TR_EINVAL, "the card's 9A certificate has an EC key "
					     "on a curve other than P-256");
		else
			*alg = TR_SIGN_ECDSA_SHA256;
	} else if (pub && EVP_PKEY_is_a(pub, "RSA")) {
		if (EVP_PKEY_get_size(pub) != 256)
			error = tr_error_set(TR_EINVAL, "the card's 9A certificate has an RSA key "
					     "of %d bits; PIV algorithm 07 is RSA-2048",
					     EVP_PKEY_get_bits(pub));
		else
			*alg = TR_SIGN_RSA_PKCS1_SHA256;
	} else {
		error = tr_error_set(TR_EINVAL, "unsupported key type in the card's certificate");
	}
	X509_free(cert);
	return error;
}

int tr_piv_parse_signature(const unsigned char *ans, size_t len, tr_sign_alg alg,
			   const char *where, const unsigned char **sig, size_t *sig_len)
{
	tr_tlv tmpl, s;

	*sig = NULL;
	*sig_len = 0;
	if (tr_tlv_one(ans, len, 0x7C, &tmpl) < 0)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: malformed answer (%zu "
				    "bytes, not one 7C template)", where, len);
	if (tr_tlv_check(tmpl.val, tmpl.len, TLV_DEPTH) < 0)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: malformed TLV in "
				    "the 7C template", where);
	if (tr_tlv_find(tmpl.val, tmpl.len, 0x82, &s) != 1 || s.len == 0)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: no signature (82) in "
				    "the answer", where);
	if (alg == TR_SIGN_RSA_PKCS1_SHA256) {
		if (s.len != 256)
			return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: an RSA-2048 "
					    "signature of %zu bytes", where, s.len);
	} else {
		const unsigned char *q = s.val;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)s.len);

		ECDSA_SIG_free(es);
		if (!es || q != s.val + s.len)
			return tr_error_set_openssl(TR_EIO, "GENERAL AUTHENTICATE on %s: the %s "
						    "signature is not one DER SEQUENCE { r, s }",
						    where, tr_sign_alg_name(alg));
	}
	*sig = s.val;
	*sig_len = s.len;
	return 0;
}

int tr_piv_parse_challenge(const unsigned char *ans, size_t len, const char *where,
			   const unsigned char **chal)
{
	tr_tlv tmpl, c;

	if (tr_tlv_one(ans, len, 0x7C, &tmpl) < 0 ||
	    tr_tlv_find(tmpl.val, tmpl.len, 0x81, &c) != 1 || c.len != 8)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE 9B on %s: no 8-byte challenge "
				    "in the answer", where);
	*chal = c.val;
	return 0;
}

int tr_piv_parse_public_key(const unsigned char *ans, size_t len, unsigned char alg,
			    EVP_PKEY **out)
{
	const unsigned char *n = NULL, *e = NULL, *pt = NULL;
	size_t n_len = 0, e_len = 0, pt_len = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	tr_tlv_reader r;
	tr_tlv tmpl, t;
	int error = 0, rc;

	*out = NULL;
	/* What follows the template is ignored, as before. */
	tr_tlv_reader_init(&r, ans, len);
	if (tr_tlv_next(&r, &tmpl) != 1 || tmpl.tag != 0x7F49)
		return tr_error_set(TR_EIO, "GENERATE: the answer is not a 7F49 public key");
	tr_tlv_reader_init(&r, tmpl.val, tmpl.len);
	while ((rc = tr_tlv_next(&r, &t)) == 1) {
		if (t.tag == 0x81)
			n = t.val, n_len = t.len;
		else if (t.tag == 0x82)
			e = t.val, e_len = t.len;
		else if (t.tag == 0x86)
			pt = t.val, pt_len = t.len;
	}
	if (rc < 0)
		return tr_error_set(TR_EIO, "GENERATE: malformed TLV in the public key");
	if (!(bld = OSSL_PARAM_BLD_new()))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (alg == TR_PIV_ALG_RSA2048) {
		if (!n || !e) {
			error = tr_error_set(TR_EIO, "GENERATE: RSA key without modulus or exponent");
			goto out;
		}
		bn_n = BN_bin2bn(n, (int)n_len, NULL);
		bn_e = BN_bin2bn(e, (int)e_len, NULL);
		if (!bn_n || !bn_e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
			goto crypto;
	} else {
		if (!pt) {
			error = tr_error_set(TR_EIO, "GENERATE: EC key without its point (86)");
			goto out;
		}
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						     alg == TR_PIV_ALG_P256 ? "prime256v1" : "SM2",
						     0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len))
			goto crypto;
	}
	if (!(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, alg == TR_PIV_ALG_RSA2048 ? "RSA" :
					       alg == TR_PIV_ALG_P256 ? "EC" : "SM2", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto crypto;
	goto out;
crypto:
	error = tr_error_set_openssl(TR_EIO, "GENERATE: the card's public key does not decode");
out:
	BN_free(bn_n);
	BN_free(bn_e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return error;
}

/* --- commands ---------------------------------------------------------- */

static const unsigned char *ans_bytes(const tr_buf *b)
{
	return (const unsigned char *)tr_buf_cstr(b);
}

int tr_piv_select(tr_apdu_chan *c)
{
	static const unsigned char hdr[4] = { 0x00, 0xA4, 0x04, 0x00 };
	static const unsigned char aid[] = { 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00,
					     0x10, 0x00 };
	tr_buf ans = TR_BUF_INIT;
	unsigned sw;
	int error;

	if ((error = tr_apdu_exchange(c, "SELECT PIV", hdr, aid, sizeof(aid), TR_APDU_LE_SHORT,
				      &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A82) {
		error = tr_error_set(TR_TOKEN_ENOTOKEN, "the card in %s has no PIV application "
				     "(SELECT PIV: 6A82)", tr_apdu_where(c));
		goto out;
	}
	if ((error = tr_apdu_sw_error(c, sw, "SELECT PIV")) < 0 || ans.len == 0)
		goto out;
	error = tr_piv_parse_select(ans_bytes(&ans), ans.len, tr_apdu_where(c));
out:
	tr_buf_free(&ans);
	return error;
}

int tr_piv_read_certificate(tr_apdu_chan *c, unsigned char **der, size_t *len,
			    tr_sign_alg *alg)
{
	static const unsigned char hdr[4] = { 0x00, 0xCB, 0x3F, 0xFF };
	static const unsigned char tag[] = { 0x5C, 0x03, 0x5F, 0xC1, 0x05 };
	const unsigned char *cert;
	size_t cert_len;
	tr_buf ans = TR_BUF_INIT;
	unsigned sw;
	int error;

	*der = NULL;
	*len = 0;
	if ((error = tr_apdu_exchange(c, "GET DATA 5FC105", hdr, tag, sizeof(tag),
				      TR_APDU_LE_LONG, &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A82) {
		error = tr_error_set(TR_ENOTFOUND, "no certificate for key 9A on the card in %s "
				     "(GET DATA 5FC105: 6A82)", tr_apdu_where(c));
		goto out;
	}
	if ((error = tr_apdu_sw_error(c, sw, "GET DATA 5FC105")) < 0 ||
	    (error = tr_piv_parse_certificate(ans_bytes(&ans), ans.len, tr_apdu_where(c), &cert,
					      &cert_len)) < 0 ||
	    (error = tr_piv_cert_alg(cert, cert_len, alg)) < 0)
		goto out;
	if (!(*der = malloc(cert_len))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*der, cert, cert_len);
	*len = cert_len;
out:
	tr_buf_free(&ans);
	return error;
}

static int pad_pin(const char *pin, unsigned char out[PIN_LEN], const char *what)
{
	size_t len = pin ? strlen(pin) : 0;

	if (len == 0 || len > PIN_LEN)
		return tr_error_set(TR_EINVAL, "%s: a PIV PIN/PUK has 1..8 characters, not %zu",
				    what, len);
	memset(out, 0xFF, PIN_LEN);
	memcpy(out, pin, len);
	return 0;
}

int tr_piv_verify(tr_apdu_chan *c, const char *pin, unsigned *sw)
{
	unsigned char ref[PIN_LEN];
	int error;

	if (!pin)
		return tr_apdu_command(c, "VERIFY (tries)", 0x20, 0x00, 0x80, NULL, 0, sw);
	if ((error = pad_pin(pin, ref, "VERIFY")) < 0)
		return error;
	error = tr_apdu_command(c, "VERIFY", 0x20, 0x00, 0x80, ref, sizeof(ref), sw);
	OPENSSL_cleanse(ref, sizeof(ref));
	return error;
}

int tr_piv_unverify(tr_apdu_chan *c)
{
	unsigned sw;
	int error;

	if ((error = tr_apdu_command(c, "VERIFY FF (reset PIN status)", 0x20, 0xFF, 0x80, NULL, 0,
				     &sw)) < 0)
		return error;
	return tr_apdu_sw_error(c, sw, "VERIFY FF (reset PIN status)");
}

int tr_piv_change_pin(tr_apdu_chan *c, int puk_reset, const char *old, const char *new_pin,
		      unsigned *sw)
{
	const char *what = puk_reset ? "RESET RETRY COUNTER" : "CHANGE REFERENCE DATA";
	unsigned char refs[2 * PIN_LEN];
	int error;

	if ((error = pad_pin(old, refs, what)) < 0 ||
	    (error = pad_pin(new_pin, refs + PIN_LEN, what)) < 0)
		goto out;
	error = tr_apdu_command(c, what, puk_reset ? 0x2C : 0x24, 0x00, 0x80, refs, sizeof(refs),
				sw);
out:
	OPENSSL_cleanse(refs, sizeof(refs));
	return error;
}

/* EMSA-PKCS1-v1_5 of SHA-256(data) in a 256-byte block (RFC 8017, 9.2). */
static int pkcs1_block(const unsigned char *data, size_t len, unsigned char block[256])
{
	static const unsigned char prefix[] = { 0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60,
						0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
						0x01, 0x05, 0x00, 0x04, 0x20 };
	size_t t_len = sizeof(prefix) + 32;

	if (!EVP_Digest(data, len, block + 256 - 32, NULL, EVP_sha256(), NULL))
		return tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
	block[0] = 0x00;
	block[1] = 0x01;
	memset(block + 2, 0xFF, 256 - t_len - 3);
	block[256 - t_len - 1] = 0x00;
	memcpy(block + 256 - t_len, prefix, sizeof(prefix));
	return 0;
}

int tr_piv_sign(tr_apdu_chan *c, tr_sign_alg alg, const unsigned char *data, size_t len,
		unsigned char **sig, size_t *sig_len, uint64_t *token_ns)
{
	unsigned char hdr[4] = { 0x00, 0x87, 0x00, KEY_REF }, block[256];
	const unsigned char *input, *s;
	size_t input_len, slen;
	tr_buf tmpl = TR_BUF_INIT, inner = TR_BUF_INIT, ans = TR_BUF_INIT;
	uint64_t start;
	unsigned sw;
	int error;

	switch (alg) {
	case TR_SIGN_RSA_PKCS1_SHA256:
		/* The card does the raw RSA operation: the host pads. */
		if ((error = pkcs1_block(data, len, block)) < 0)
			return error;
		hdr[2] = TR_PIV_ALG_RSA2048;
		input = block;
		input_len = 256;
		break;
	case TR_SIGN_ECDSA_SHA256:
		if (!EVP_Digest(data, len, block, NULL, EVP_sha256(), NULL))
			return tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
		hdr[2] = TR_PIV_ALG_P256;
		input = block;
		input_len = 32;
		break;
	case TR_SIGN_SM2_SM3:
		/* E9: the card computes Z (ID 1234567812345678) and SM3(Z || M). */
		if (len > DATA_MAX - 16)
			return tr_error_set(TR_EINVAL, "SM2: a message of %zu bytes; the card "
					    "hashes at most %d", len, DATA_MAX - 16);
		hdr[2] = TR_PIV_ALG_SM2_MSG;
		input = data;
		input_len = len;
		break;
	default:
		return tr_error_set(TR_EINVAL, "no signature algorithm for this card");
	}

	/* 7C { 82 00, 81 input } */
	if ((error = tr_tlv_buf_put(&inner, 0x82, NULL, 0)) < 0 ||
	    (error = tr_tlv_buf_put(&inner, 0x81, input, input_len)) < 0 ||
	    (error = tr_tlv_buf_put(&tmpl, 0x7C, inner.data, inner.len)) < 0)
		goto out;

	start = tr_clock_ns();
	error = tr_apdu_exchange(c, "GENERAL AUTHENTICATE", hdr, ans_bytes(&tmpl), tmpl.len,
				 TR_APDU_LE_LONG, &ans, &sw);
	*token_ns = tr_clock_ns() - start;
	if (error < 0 || (error = tr_apdu_sw_error(c, sw, "GENERAL AUTHENTICATE 9A")) < 0 ||
	    (error = tr_piv_parse_signature(ans_bytes(&ans), ans.len, alg, tr_apdu_where(c), &s,
					    &slen)) < 0)
		goto out;
	if (!(*sig = malloc(slen))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*sig, s, slen);
	*sig_len = slen;
out:
	OPENSSL_cleanse(block, sizeof(block));
	tr_buf_free(&inner);
	tr_buf_free(&tmpl);
	tr_buf_free(&ans);
	return error;
}

/* --- keys and certificates (card management key 9B) -------------------- */

static int mgmt_key(unsigned char key[MGMT_KEY_LEN])
{
	const char *hex = getenv("TOKENRIG_PIV_MGMT_KEY");

	if (!hex || !*hex) {
		for (int i = 0; i < MGMT_KEY_LEN; i++)
			key[i] = (unsigned char)(i % 8 + 1);
		return 0;
	}
	if (strlen(hex) != 2 * MGMT_KEY_LEN)
		return tr_error_set(TR_EINVAL, "TOKENRIG_PIV_MGMT_KEY: 48 hex digits (3DES) expected");
	for (int i = 0; i < MGMT_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return tr_error_set(TR_EINVAL, "TOKENRIG_PIV_MGMT_KEY: not hex at digit %d",
					    2 * i + 1);
		key[i] = (unsigned char)v;
	}
	return 0;
}

/* Ask for a challenge (7C { 81 00 }), answer it encrypted (7C { 82 ... }). */
int tr_piv_mgmt_authenticate(tr_apdu_chan *c)
{
	static const unsigned char hdr[4] = { 0x00, 0x87, 0x03, 0x9B };
	static const unsigned char ask[] = { 0x7C, 0x02, 0x81, 0x00 };
	unsigned char key[MGMT_KEY_LEN], answer[12] = { 0x7C, 0x0A, 0x82, 0x08 };
	const unsigned char *chal;
	EVP_CIPHER_CTX *ctx = NULL;
	tr_buf ans = TR_BUF_INIT;
	unsigned sw;
	int error, n = 0;

	if ((error = mgmt_key(key)) < 0)
		return error;
	if ((error = tr_apdu_exchange(c, "GENERAL AUTHENTICATE 9B (challenge)", hdr, ask,
				      sizeof(ask), TR_APDU_LE_SHORT, &ans, &sw)) < 0 ||
	    (error = tr_apdu_sw_error(c, sw, "GENERAL AUTHENTICATE 9B (challenge)")) < 0 ||
	    (error = tr_piv_parse_challenge(ans_bytes(&ans), ans.len, tr_apdu_where(c),
					    &chal)) < 0)
		goto out;
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_des_ede3_ecb(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_EncryptUpdate(ctx, answer + 4, &n, chal, 8) != 1 || n != 8) {
		error = tr_error_set_openssl(TR_ECRYPTO, "3DES of the management-key challenge");
		goto out;
	}
	if ((error = tr_apdu_command(c, "GENERAL AUTHENTICATE 9B (response)", 0x87, 0x03, 0x9B,
				     answer, sizeof(answer), &sw)) < 0)
		goto out;
	if (sw == 0x6982)
		error = tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "the card in %s refused the management "
				     "key (set TOKENRIG_PIV_MGMT_KEY for a card with its own)",
				     tr_apdu_where(c));
	else
		error = tr_apdu_sw_error(c, sw, "GENERAL AUTHENTICATE 9B (response)");
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(answer, sizeof(answer));
	tr_buf_free(&ans);
	return error;
}

int tr_piv_generate(tr_apdu_chan *c, tr_keygen alg, unsigned char **spki, size_t *spki_len)
{
	static const unsigned char hdr[4] = { 0x00, 0x47, 0x00, KEY_REF };
	const unsigned char upgrade[] = { TR_PIV_ALG_SM2, TR_PIV_ALG_P256 };
	const unsigned char p256[] = { TR_PIV_ALG_P256 }, rsa2048[] = { TR_PIV_ALG_RSA2048 };
	const unsigned char *order = alg == TR_KEYGEN_RSA2048 ? rsa2048 :
				     alg == TR_KEYGEN_P256 ? p256 : upgrade;
	size_t n_order = alg == TR_KEYGEN_UPGRADE ? 2 : 1;
	unsigned char data[5] = { 0xAC, 0x03, 0x80, 0x01, 0 };
	EVP_PKEY *pub = NULL;
	tr_buf ans = TR_BUF_INIT;
	unsigned sw = 0x6A80;
	int error = 0, len;

	for (size_t i = 0; i < n_order && sw == 0x6A80; i++) {
		data[4] = order[i];
		tr_buf_free(&ans);
		if ((error = tr_apdu_exchange(c, "GENERATE ASYMMETRIC KEY PAIR 9A", hdr, data,
					      sizeof(data), TR_APDU_LE_LONG, &ans, &sw)) < 0)
			goto out;
	}
	if (sw == 0x6A80) {
		error = tr_error_set(TR_EDEPEND, "the card in %s takes no %s key (GENERATE: 6A80)",
				     tr_apdu_where(c), alg == TR_KEYGEN_RSA2048 ? "RSA-2048" :
				     alg == TR_KEYGEN_P256 ? "P-256" : "SM2 or P-256");
		goto out;
	}
	if ((error = tr_apdu_sw_error(c, sw, "GENERATE ASYMMETRIC KEY PAIR 9A")) < 0 ||
	    (error = tr_piv_parse_public_key(ans_bytes(&ans), ans.len, data[4], &pub)) < 0)
		goto out;
	*spki = NULL;
	if ((len = i2d_PUBKEY(pub, spki)) <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding the new public key");
		goto out;
	}
	*spki_len = (size_t)len;
out:
	EVP_PKEY_free(pub);
	tr_buf_free(&ans);
	return error;
}

int tr_piv_put_certificate(tr_apdu_chan *c, const unsigned char *der, size_t len)
{
	static const unsigned char hdr[4] = { 0x00, 0xDB, 0x3F, 0xFF };
	static const unsigned char tag[] = { 0x5F, 0xC1, 0x05 };
	tr_buf obj = TR_BUF_INIT, data = TR_BUF_INIT, ans = TR_BUF_INIT;
	unsigned sw;
	int error;

	if (tr_tlv_buf_put(&obj, 0x70, der, len) < 0 ||
	    tr_tlv_buf_put(&obj, 0x71, "\x00", 1) < 0 ||
	    tr_tlv_buf_put(&obj, 0xFE, NULL, 0) < 0 ||
	    tr_tlv_buf_put(&data, 0x5C, tag, sizeof(tag)) < 0 ||
	    tr_tlv_buf_put(&data, 0x53, obj.data, obj.len) < 0 || data.len > 0xFFFF) {
		error = tr_error_set(TR_EINVAL, "a certificate of %zu bytes does not fit a PIV object",
				     len);
		goto out;
	}
	if ((error = tr_apdu_exchange(c, "PUT DATA 5FC105", hdr, ans_bytes(&data), data.len,
				      TR_APDU_LE_NONE, &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A80)
		error = tr_error_set(TR_TOKEN_EKEY_MISMATCH, "PUT DATA 5FC105 on %s: 6A80, the "
				     "certificate does not certify the card's key 9A",
				     tr_apdu_where(c));
	else
		error = tr_apdu_sw_error(c, sw, "PUT DATA 5FC105");
out:
	tr_buf_free(&obj);
	tr_buf_free(&data);
	tr_buf_free(&ans);
	return error;
}
