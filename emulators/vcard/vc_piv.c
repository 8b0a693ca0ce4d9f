#include "emulators/vcard/vc_piv.h"

#include "common/error.h"
#include "common/tlv.h"
#include "emulators/vcard/vc_apdu.h"
#include "emulators/vcard/vc_sm2.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

/* 3B 88 80 01: T=0 then T=1 offered, 8 historical bytes "tokenrig", TCK. */
const uint8_t vc_piv_atr[] = {
	0x3B, 0x88, 0x80, 0x01, 't', 'o', 'k', 'e', 'n', 'r', 'i', 'g', 0x0E
};
const size_t vc_piv_atr_len = sizeof(vc_piv_atr);

static const uint8_t piv_aid[] = {
	0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00
};
#define PIV_RID_LEN 5   /* a SELECT may truncate the AID down to the RID */

/* A FASC-N as in the SP 800-73 examples: agency 9999, no real person. */
static const uint8_t test_fascn[25] = {
	0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83,
	0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3,
	0xEB
};

enum {
	OBJ_CHUID, OBJ_CCC, OBJ_DISCOVERY,
	OBJ_CERT_9A, OBJ_CERT_9C, OBJ_CERT_9D, OBJ_CERT_9E,
	OBJ_COUNT
};

static const uint32_t obj_tags[OBJ_COUNT] = {
	0x5FC102, 0x5FC107, 0x7E, 0x5FC105, 0x5FC10A, 0x5FC10B, 0x5FC101
};

#define INS_VERIFY 0x20
#define INS_CHANGE 0x24
#define INS_RESET_RETRY 0x2C
#define INS_GENERAL_AUTH 0x87
#define INS_SELECT 0xA4
#define INS_GET_RESPONSE 0xC0
#define INS_GET_DATA 0xCB
#define INS_GENERATE 0x47
#define INS_PUT_DATA 0xDB
#define CLA_CHAIN 0x10

/*
 * The card management key (9B): 3DES, the well-known default of PIV test
 * cards (01..08 three times). It guards GENERATE and PUT DATA.
 */
static const uint8_t mgmt_key[24] = {
	1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8
};

struct vc_piv {
	vc_image *img;
	int pin_verified;
	int pin_always;            /* 9C: one signature per VERIFY */
	/* The chain being collected (CLA 10). */
	int chaining;
	uint8_t chain_ins, chain_p1, chain_p2;
	size_t chain_len;
	uint8_t chain[VC_APDU_MAX_DATA];
	/* Response data not yet fetched with GET RESPONSE. */
	size_t out_len, out_off;
	uint8_t out[VC_APDU_MAX_RESP];
	/* Data objects, built once from the image. */
	uint8_t *obj[OBJ_COUNT];
	size_t obj_len[OBJ_COUNT];
	/* Signing contexts kept per slot: init costs more than an ECDSA. */
	EVP_PKEY_CTX *sign_ctx[VC_SLOT_COUNT];
	/* Management-key authentication: the challenge out, then the status. */
	uint8_t mgmt_challenge[8];
	int mgmt_challenge_out;
	uint8_t mgmt_witness[8];   /* mutual authentication: the witness out */
	int mgmt_witness_out;
	int admin;
};

/* --- data objects ---------------------------------------------------- */

/* Wraps inner TLVs (already encoded) into 53 L ... into a new buffer. */
static int wrap53(uint8_t **out, size_t *out_len, const uint8_t *inner,
		  size_t len)
{
	size_t cap = len + 8, off = 0;
	uint8_t *buf = malloc(cap);

	if (!buf || tr_tlv_put(buf, cap, &off, 0x53, inner, len) < 0) {
		free(buf);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	*out = buf;
	*out_len = off;
	return 0;
}

static int build_objects(vc_piv *piv)
{
	const uint8_t *serial = vc_image_serial(piv->img);
	uint8_t tmp[4096], card_id[21];
	size_t off = 0;
	int error;

	/* CHUID: FASC-N, GUID (the serial OpenSC reports), expiry, no signature. */
	if (tr_tlv_put(tmp, sizeof(tmp), &off, 0x30, test_fascn, sizeof(test_fascn)) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0x34, serial, VC_SERIAL_LEN) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0x35, (const uint8_t *)"20301231", 8) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0x3E, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFE, NULL, 0))
		return tr_error_set(TR_ERROR, "CHUID does not fit");
	if ((error = wrap53(&piv->obj[OBJ_CHUID], &piv->obj_len[OBJ_CHUID], tmp, off)) < 0)
		return error;

	/* CCC: card identifier from our own prefix and the serial. */
	memcpy(card_id, "TRVC\x01", 5);
	memcpy(card_id + 5, serial, VC_SERIAL_LEN);
	off = 0;
	if (tr_tlv_put(tmp, sizeof(tmp), &off, 0xF0, card_id, sizeof(card_id)) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF1, (const uint8_t *)"\x21", 1) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF2, (const uint8_t *)"\x21", 1) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF3, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF4, (const uint8_t *)"\x00", 1) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF5, (const uint8_t *)"\x10", 1) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF6, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xF7, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFA, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFB, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFC, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFD, NULL, 0) ||
	    tr_tlv_put(tmp, sizeof(tmp), &off, 0xFE, NULL, 0))
		return tr_error_set(TR_ERROR, "CCC does not fit");
	if ((error = wrap53(&piv->obj[OBJ_CCC], &piv->obj_len[OBJ_CCC], tmp, off)) < 0)
		return error;

	/* Discovery: the AID, PIN usage policy 40 00 (PIV PIN only). */
	off = 0;
	{
		uint8_t inner[32];
		size_t ioff = 0;

		if (tr_tlv_put(inner, sizeof(inner), &ioff, 0x4F, piv_aid, sizeof(piv_aid)) ||
		    tr_tlv_put(inner, sizeof(inner), &ioff, 0x5F2F,
			       (const uint8_t *)"\x40\x00", 2) ||
		    tr_tlv_put(tmp, sizeof(tmp), &off, 0x7E, inner, ioff))
			return tr_error_set(TR_ERROR, "discovery object does not fit");
	}
	if (!(piv->obj[OBJ_DISCOVERY] = malloc(off)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	memcpy(piv->obj[OBJ_DISCOVERY], tmp, off);
	piv->obj_len[OBJ_DISCOVERY] = off;

	/* Certificates: 70 cert, 71 00 (not compressed), FE (LRC, empty). */
	for (int s = 0; s < VC_SLOT_COUNT; s++) {
		const uint8_t *der;
		size_t len, cap, ioff = 0;
		uint8_t *inner;

		vc_image_slot_cert(piv->img, (vc_slot)s, &der, &len);
		if (!der)
			continue;
		cap = len + 16;
		if (!(inner = malloc(cap)))
			return tr_error_set(TR_ENOMEM, "out of memory");
		if (tr_tlv_put(inner, cap, &ioff, 0x70, der, len) ||
		    tr_tlv_put(inner, cap, &ioff, 0x71, (const uint8_t *)"\x00", 1) ||
		    tr_tlv_put(inner, cap, &ioff, 0xFE, NULL, 0)) {
			free(inner);
			return tr_error_set(TR_ERROR, "certificate object does not fit");
		}
		error = wrap53(&piv->obj[OBJ_CERT_9A + s], &piv->obj_len[OBJ_CERT_9A + s],
			       inner, ioff);
		free(inner);
		if (error < 0)
			return error;
	}
	return 0;
}

int vc_piv_new(vc_piv **out, vc_image *img)
{
	vc_piv *piv;
	int error;

	if (!img)
		return tr_error_set(TR_EINVAL, "vc_piv_new: no image");
	if (!(piv = calloc(1, sizeof(*piv))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	piv->img = img;
	if ((error = build_objects(piv)) < 0) {
		vc_piv_free(piv);
		return error;
	}
	*out = piv;
	return 0;
}

void vc_piv_free(vc_piv *piv)
{
	if (!piv)
		return;
	for (int i = 0; i < OBJ_COUNT; i++)
		free(piv->obj[i]);
	for (int i = 0; i < VC_SLOT_COUNT; i++)
		EVP_PKEY_CTX_free(piv->sign_ctx[i]);
	OPENSSL_cleanse(piv->out, sizeof(piv->out));
	free(piv);
}

void vc_piv_reset(vc_piv *piv)
{
	piv->admin = 0;
	piv->mgmt_challenge_out = 0;
	piv->mgmt_witness_out = 0;
	OPENSSL_cleanse(piv->mgmt_witness, sizeof(piv->mgmt_witness));
	piv->pin_verified = 0;
	piv->pin_always = 0;
	piv->chaining = 0;
	piv->chain_len = 0;
	piv->out_len = piv->out_off = 0;
}

int vc_piv_pin_verified(const vc_piv *piv)
{
	return piv->pin_verified;
}

/* --- responses -------------------------------------------------------- */

static size_t put_sw(uint8_t *resp, size_t off, unsigned sw)
{
	resp[off] = (uint8_t)(sw >> 8);
	resp[off + 1] = (uint8_t)sw;
	return off + 2;
}

/*
 * Sends what the command's Le allows of the pending data; the rest waits
 * for GET RESPONSE behind 61xx (xx = 00 when 256 or more are left).
 * Without Le the card answers as over T=1, up to 256 bytes: yubico-piv-tool
 * sends SELECT and GENERAL AUTHENTICATE without Le and takes no 61xx there.
 */
static size_t send_pending(vc_piv *piv, const vc_apdu *a, uint8_t *resp)
{
	size_t avail = piv->out_len - piv->out_off, give, rest;
	size_t want = a->has_le ? a->le : 256;

	give = want < avail ? want : avail;
	if (give > VC_APDU_MAX_RESP - 2)
		give = VC_APDU_MAX_RESP - 2;
	memcpy(resp, piv->out + piv->out_off, give);
	piv->out_off += give;
	rest = avail - give;
	if (rest == 0) {
		piv->out_len = piv->out_off = 0;
		return put_sw(resp, give, VC_SW_OK);
	}
	return put_sw(resp, give, VC_SW_BYTES_LEFT | (rest > 255 ? 0 : (unsigned)rest));
}

/* Queues response data (copied) for send_pending. */
static unsigned queue(vc_piv *piv, const uint8_t *data, size_t len)
{
	if (len > sizeof(piv->out))
		return VC_SW_MEMORY;
	memmove(piv->out, data, len);
	piv->out_len = len;
	piv->out_off = 0;
	return VC_SW_OK;
}

/* --- instructions ----------------------------------------------------- */

static unsigned do_select(vc_piv *piv, const vc_apdu *a)
{
	uint8_t apt[128], inner[96], algs[16];
	size_t off = 0, ioff = 0, aoff = 0;
	const char *label = "tokenrig PIV";
	vc_profile profile = vc_image_profile(piv->img);

	if (a->p1 != 0x04 || (a->p2 != 0x00 && a->p2 != 0x0C))
		return VC_SW_WRONG_P1P2;
	if (a->lc < PIV_RID_LEN || a->lc > sizeof(piv_aid) ||
	    memcmp(a->data, piv_aid, a->lc) != 0)
		return VC_SW_NOT_FOUND;
	if (a->p2 == 0x0C)
		return VC_SW_OK;           /* "no response data" asked */
	/* Application property template: AID, authority, label, algorithms. */
	tr_tlv_put(algs, sizeof(algs), &aoff, 0x80, (const uint8_t *)"\x07", 1);
	if (profile == VC_PROFILE_SILVER) {
		tr_tlv_put(algs, sizeof(algs), &aoff, 0x80, (const uint8_t *)"\x11", 1);
		tr_tlv_put(algs, sizeof(algs), &aoff, 0x80, (const uint8_t *)"\xE8", 1);
		tr_tlv_put(algs, sizeof(algs), &aoff, 0x80, (const uint8_t *)"\xE9", 1);
	}
	tr_tlv_put(algs, sizeof(algs), &aoff, 0x06, NULL, 0);
	{
		uint8_t auth[16];
		size_t auoff = 0;

		tr_tlv_put(auth, sizeof(auth), &auoff, 0x4F, piv_aid, PIV_RID_LEN);
		if (tr_tlv_put(inner, sizeof(inner), &ioff, 0x4F, piv_aid + 5, 6) ||
		    tr_tlv_put(inner, sizeof(inner), &ioff, 0x79, auth, auoff) ||
		    tr_tlv_put(inner, sizeof(inner), &ioff, 0x50,
			       (const uint8_t *)label, strlen(label)) ||
		    tr_tlv_put(inner, sizeof(inner), &ioff, 0xAC, algs, aoff) ||
		    tr_tlv_put(apt, sizeof(apt), &off, 0x61, inner, ioff))
			return VC_SW_MEMORY;
	}
	return queue(piv, apt, off);
}

static unsigned do_get_data(vc_piv *piv, const vc_apdu *a)
{
	tr_tlv t;
	uint32_t want = 0;

	if (a->p1 != 0x3F || a->p2 != 0xFF)
		return VC_SW_WRONG_P1P2;
	if (a->lc == 0)
		return VC_SW_WRONG_LENGTH;
	if (tr_tlv_one(a->data, a->lc, 0x5C, &t) < 0 || t.len < 1 || t.len > 3)
		return VC_SW_WRONG_DATA;
	for (size_t i = 0; i < t.len; i++)
		want = want << 8 | t.val[i];
	for (int i = 0; i < OBJ_COUNT; i++)
		if (obj_tags[i] == want && piv->obj[i])
			return queue(piv, piv->obj[i], piv->obj_len[i]);
	return VC_SW_NOT_FOUND;
}

/* 63Cx, or 6983 once nothing is left (x = 0 only for the blocking try). */
static unsigned tries_sw(unsigned left)
{
	return VC_SW_WARN_TRIES | (left > 15 ? 15 : left);
}

static unsigned check_result(int rc, unsigned left)
{
	if (rc < 0)
		return VC_SW_MEMORY;    /* the counter could not be saved */
	if (rc == VC_CHECK_BLOCKED)
		return VC_SW_BLOCKED;
	if (rc == VC_CHECK_WRONG)
		return tries_sw(left);
	return VC_SW_OK;
}

static unsigned do_verify(vc_piv *piv, const vc_apdu *a)
{
	unsigned left = 0;
	int rc;

	if ((a->p1 != 0x00 && a->p1 != 0xFF) || a->p2 != 0x80)
		return VC_SW_WRONG_P1P2;
	if (a->p1 == 0xFF) {
		if (a->lc != 0)
			return VC_SW_WRONG_LENGTH;
		piv->pin_verified = piv->pin_always = 0;
		return VC_SW_OK;
	}
	if (a->lc == 0) {
		vc_image_tries(piv->img, VC_REF_PIN, &left, NULL);
		if (left == 0)
			return VC_SW_BLOCKED;
		return piv->pin_verified ? VC_SW_OK : tries_sw(left);
	}
	if (a->lc != VC_REF_LEN)
		return VC_SW_WRONG_DATA;
	rc = vc_image_check_ref(piv->img, VC_REF_PIN, a->data, &left);
	if (rc == VC_CHECK_OK) {
		piv->pin_verified = piv->pin_always = 1;
	} else {
		piv->pin_verified = piv->pin_always = 0;
	}
	return check_result(rc, left);
}

static unsigned do_change(vc_piv *piv, const vc_apdu *a)
{
	vc_ref ref;
	unsigned left = 0;
	int rc;

	if (a->p1 != 0x00 || (a->p2 != 0x80 && a->p2 != 0x81))
		return VC_SW_WRONG_P1P2;
	ref = a->p2 == 0x80 ? VC_REF_PIN : VC_REF_PUK;
	if (a->lc != 2 * VC_REF_LEN)
		return VC_SW_WRONG_DATA;
	if (!vc_ref_valid(a->data + VC_REF_LEN))
		return VC_SW_WRONG_DATA;
	rc = vc_image_check_ref(piv->img, ref, a->data, &left);
	if (rc != VC_CHECK_OK) {
		if (ref == VC_REF_PIN)
			piv->pin_verified = piv->pin_always = 0;
		return check_result(rc, left);
	}
	if (vc_image_change_ref(piv->img, ref, a->data + VC_REF_LEN) < 0)
		return VC_SW_MEMORY;
	return VC_SW_OK;
}

static unsigned do_reset_retry(vc_piv *piv, const vc_apdu *a)
{
	unsigned left = 0;
	int rc;

	if (a->p1 != 0x00 || a->p2 != 0x80)
		return VC_SW_WRONG_P1P2;
	if (a->lc != 2 * VC_REF_LEN)
		return VC_SW_WRONG_DATA;
	if (!vc_ref_valid(a->data + VC_REF_LEN))
		return VC_SW_WRONG_DATA;
	rc = vc_image_check_ref(piv->img, VC_REF_PUK, a->data, &left);
	if (rc != VC_CHECK_OK)
		return check_result(rc, left);
	piv->pin_verified = piv->pin_always = 0;
	if (vc_image_change_ref(piv->img, VC_REF_PIN, a->data + VC_REF_LEN) < 0)
		return VC_SW_MEMORY;
	return VC_SW_OK;
}

/* The kept private-key context of a slot, made on first use. */
static EVP_PKEY_CTX *slot_ctx(vc_piv *piv, vc_slot slot, vc_alg alg)
{
	EVP_PKEY *key = vc_image_slot_key(piv->img, slot);
	EVP_PKEY_CTX *ctx;

	if (piv->sign_ctx[slot])
		return piv->sign_ctx[slot];
	if (!key || !(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)))
		return NULL;
	if (alg == VC_ALG_RSA2048) {
		/* Raw RSA: OpenSC sends the block already padded. */
		if (EVP_PKEY_decrypt_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1)
			goto fail;
	} else if (EVP_PKEY_sign_init(ctx) != 1) {
		goto fail;
	}
	piv->sign_ctx[slot] = ctx;
	return ctx;
fail:
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

/* SM2 with the card hashing Z || M (algorithm E9), as SM2(7) shows. */
static int sm2_sign_message(EVP_PKEY *key, const uint8_t *msg, size_t len,
			    uint8_t *sig, size_t *sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok;

	ok = md && pctx &&
	     EVP_PKEY_CTX_set1_id(pctx, VC_SM2_DEFAULT_ID, strlen(VC_SM2_DEFAULT_ID)) == 1;
	if (ok) {
		EVP_MD_CTX_set_pkey_ctx(md, pctx);   /* md does not take ownership */
		ok = EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, key) == 1 &&
		     EVP_DigestSign(md, sig, sig_len, msg, len) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	return ok ? 0 : -1;
}

static int ecdh(EVP_PKEY *key, const uint8_t *point, size_t len, uint8_t *out,
		size_t *out_len)
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int ok = 0;

	if (len != 65 || point[0] != 0x04)
		return -1;
	if (!(peer = EVP_PKEY_new()) ||
	    EVP_PKEY_copy_parameters(peer, key) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(peer, point, len) != 1)
		goto out;
	ok = (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) &&
	     EVP_PKEY_derive_init(ctx) == 1 &&
	     EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	     EVP_PKEY_derive(ctx, out, out_len) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return ok ? 0 : -1;
}

/* 3DES-ECB of one block under the management key. */
static int mgmt_encrypt(const uint8_t in[8], uint8_t out[8])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = ctx && EVP_EncryptInit_ex(ctx, EVP_des_ede3_ecb(), NULL, mgmt_key, NULL) == 1 &&
	     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	     EVP_EncryptUpdate(ctx, out, &n, in, 8) == 1 && n == 8;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -1;
}

/*
 * Management key (9B), two ways of SP 800-73-4 (3DES: P1 00 or 03).
 * External authentication: 7C { 81 00 } asks for a challenge (also
 * OpenSC's C_GenerateRandom), 7C { 82 8 bytes } answers it encrypted.
 * Mutual authentication (piv-tool -A M:9B:03, yubico-piv-tool):
 * 7C { 80 00 } asks for a witness, the card gives it encrypted; the host
 * sends 7C { 80 witness, 81 challenge [, 82 00] } and the card, once the
 * witness is right, answers 7C { 82 challenge encrypted }. Either grants
 * GENERATE and PUT DATA until reset; a new request drops the other's state.
 */
static unsigned do_mgmt_response(vc_piv *piv, const uint8_t *val, size_t vlen)
{
	uint8_t want[8];
	int ok;

	if (!piv->mgmt_challenge_out)
		return VC_SW_CONDITIONS;
	piv->mgmt_challenge_out = 0;
	if (vlen != 8)
		return VC_SW_WRONG_DATA;
	if (mgmt_encrypt(piv->mgmt_challenge, want) < 0)
		return VC_SW_UNKNOWN;
	ok = CRYPTO_memcmp(want, val, 8) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	piv->admin = ok;
	return ok ? VC_SW_OK : VC_SW_SECURITY;
}

/* 7C { tag value } into piv->out. */
static unsigned queue_dyn(vc_piv *piv, unsigned tag, const uint8_t *val, size_t len)
{
	uint8_t inner[24], out[32];
	size_t ioff = 0, off = 0;

	if (tr_tlv_put(inner, sizeof(inner), &ioff, tag, val, len) ||
	    tr_tlv_put(out, sizeof(out), &off, 0x7C, inner, ioff))
		return VC_SW_MEMORY;
	return queue(piv, out, off);
}

/* Mutual authentication, first step: the witness, encrypted. */
static unsigned do_mgmt_witness(vc_piv *piv)
{
	uint8_t enc[8];
	unsigned sw;

	if (RAND_bytes(piv->mgmt_witness, 8) != 1 || mgmt_encrypt(piv->mgmt_witness, enc) < 0) {
		ERR_clear_error();
		return VC_SW_UNKNOWN;
	}
	piv->mgmt_witness_out = 1;
	sw = queue_dyn(piv, 0x80, enc, 8);
	OPENSSL_cleanse(enc, sizeof(enc));
	return sw;
}

/* Second step: the host proves the key with the witness, the card with the challenge. */
static unsigned do_mgmt_mutual(vc_piv *piv, const uint8_t *witness, size_t wlen,
			       const uint8_t *challenge, size_t clen)
{
	uint8_t enc[8];
	unsigned sw;
	int ok;

	if (!piv->mgmt_witness_out)
		return VC_SW_CONDITIONS;
	piv->mgmt_witness_out = 0;
	if (wlen != 8 || clen != 8)
		return VC_SW_WRONG_DATA;
	ok = CRYPTO_memcmp(piv->mgmt_witness, witness, 8) == 0;
	OPENSSL_cleanse(piv->mgmt_witness, sizeof(piv->mgmt_witness));
	if (!ok)
		return VC_SW_SECURITY;
	if (mgmt_encrypt(challenge, enc) < 0)
		return VC_SW_UNKNOWN;
	piv->admin = 1;
	sw = queue_dyn(piv, 0x82, enc, 8);
	OPENSSL_cleanse(enc, sizeof(enc));
	return sw;
}

static unsigned do_mgmt_challenge(vc_piv *piv, const vc_apdu *a)
{
	const uint8_t *v[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 }, n;
	uint8_t rnd[16];
	tr_tlv_reader r;
	tr_tlv tmpl, t;
	int rc;

	if (a->p1 == 0x00 || a->p1 == 0x03)
		n = 8;                  /* 3DES block */
	else if (a->p1 == 0x08 || a->p1 == 0x0A || a->p1 == 0x0C)
		n = 16;                 /* AES block */
	else
		return VC_SW_WRONG_P1P2;
	if (tr_tlv_one(a->data, a->lc, 0x7C, &tmpl) < 0)
		return VC_SW_WRONG_DATA;
	/* 80 witness, 81 challenge, 82 response: each at most once. */
	tr_tlv_reader_init(&r, tmpl.val, tmpl.len);
	while ((rc = tr_tlv_next(&r, &t)) == 1) {
		if (t.tag < 0x80 || t.tag > 0x82 || v[t.tag - 0x80])
			return VC_SW_WRONG_DATA;
		v[t.tag - 0x80] = t.val;
		len[t.tag - 0x80] = t.len;
	}
	if (rc < 0 || (!v[0] && !v[1] && !v[2]))
		return VC_SW_WRONG_DATA;
	if (v[0]) {
		/* The card's key is 3DES: mutual authentication with an AES P1 is the wrong key. */
		if (n != 8)
			return VC_SW_WRONG_P1P2;
		piv->mgmt_challenge_out = 0;
		if (len[0] == 0 && !v[1] && !v[2]) {
			piv->admin = 0;
			return do_mgmt_witness(piv);
		}
		if (!v[1] || (v[2] && len[2] != 0))
			return VC_SW_WRONG_DATA;
		return do_mgmt_mutual(piv, v[0], len[0], v[1], len[1]);
	}
	if (v[2] && !v[1] && n == 8) {
		piv->mgmt_witness_out = 0;
		return do_mgmt_response(piv, v[2], len[2]);
	}
	if (!v[1] || v[2] || len[1] != 0)
		return VC_SW_WRONG_DATA;
	if (RAND_bytes(rnd, (int)n) != 1) {
		ERR_clear_error();
		return VC_SW_UNKNOWN;
	}
	piv->admin = 0;
	piv->mgmt_witness_out = 0;
	piv->mgmt_challenge_out = n == 8;
	if (n == 8)
		memcpy(piv->mgmt_challenge, rnd, 8);
	return queue_dyn(piv, 0x81, rnd, n);
}

static unsigned do_general_auth(vc_piv *piv, const vc_apdu *a)
{
	const uint8_t *challenge = NULL, *point = NULL;
	size_t challenge_len = 0, point_len = 0, sig_len, off = 0;
	int slot, want_response = 0, ok;
	uint8_t sig[512], resp[600];
	tr_tlv_reader r;
	tr_tlv tmpl, t;
	vc_alg alg;
	EVP_PKEY_CTX *ctx;

	if (a->p2 == 0x9B)
		return a->lc ? do_mgmt_challenge(piv, a) : VC_SW_WRONG_LENGTH;
	slot = vc_slot_from_ref(a->p2);
	if (slot < 0)
		return VC_SW_WRONG_P1P2;
	alg = vc_image_slot_alg(piv->img, (vc_slot)slot);
	if (alg == VC_ALG_NONE)
		return VC_SW_WRONG_P1P2;
	if (a->p1 != alg && !(alg == VC_ALG_SM2 && a->p1 == VC_ALG_SM2_MSG))
		return VC_SW_WRONG_P1P2;
	if (a->lc == 0)
		return VC_SW_WRONG_LENGTH;

	/* 7C { 82 00 (response wanted), 81 challenge | 85 peer point } */
	if (tr_tlv_one(a->data, a->lc, 0x7C, &tmpl) < 0)
		return VC_SW_WRONG_DATA;
	tr_tlv_reader_init(&r, tmpl.val, tmpl.len);
	while ((ok = tr_tlv_next(&r, &t)) == 1) {
		if (t.tag == 0x82 && t.len == 0 && !want_response)
			want_response = 1;
		else if (t.tag == 0x81 && !challenge && !point)
			challenge = t.val, challenge_len = t.len;
		else if (t.tag == 0x85 && !challenge && !point)
			point = t.val, point_len = t.len;
		else
			return VC_SW_WRONG_DATA;
	}
	if (ok < 0 || !want_response || (!challenge && !point))
		return VC_SW_WRONG_DATA;
	if (point && alg != VC_ALG_P256)
		return VC_SW_WRONG_DATA;

	/* Security status: after the data checks, as a card parses first. */
	if (slot != VC_SLOT_9E && !piv->pin_verified)
		return VC_SW_SECURITY;
	if (slot == VC_SLOT_9C) {
		if (!piv->pin_always)
			return VC_SW_SECURITY;
		piv->pin_always = 0;
	}

	sig_len = sizeof(sig);
	if (point) {
		ok = ecdh(vc_image_slot_key(piv->img, (vc_slot)slot), point, point_len,
			  sig, &sig_len) == 0;
		if (!ok) {
			ERR_clear_error();
			return VC_SW_WRONG_DATA;
		}
	} else if (a->p1 == VC_ALG_SM2_MSG) {
		if (sm2_sign_message(vc_image_slot_key(piv->img, (vc_slot)slot),
				     challenge, challenge_len, sig, &sig_len) < 0) {
			ERR_clear_error();
			return VC_SW_UNKNOWN;
		}
	} else {
		if (alg == VC_ALG_RSA2048 && challenge_len != 256)
			return VC_SW_WRONG_DATA;
		if (alg == VC_ALG_P256 && (challenge_len < 1 || challenge_len > 32))
			return VC_SW_WRONG_DATA;
		if (alg == VC_ALG_SM2 && challenge_len != VC_SM2_DIGEST_LEN)
			return VC_SW_WRONG_DATA;
		if (!(ctx = slot_ctx(piv, (vc_slot)slot, alg))) {
			ERR_clear_error();
			return VC_SW_UNKNOWN;
		}
		if (alg == VC_ALG_RSA2048)
			ok = EVP_PKEY_decrypt(ctx, sig, &sig_len, challenge, challenge_len) == 1;
		else
			ok = EVP_PKEY_sign(ctx, sig, &sig_len, challenge, challenge_len) == 1;
		if (!ok) {
			/* e.g. a block not below the modulus */
			ERR_clear_error();
			return VC_SW_WRONG_DATA;
		}
	}
	{
		uint8_t inner[540];
		size_t ioff = 0;

		if (tr_tlv_put(inner, sizeof(inner), &ioff, 0x82, sig, sig_len) ||
		    tr_tlv_put(resp, sizeof(resp), &off, 0x7C, inner, ioff))
			return VC_SW_MEMORY;
	}
	OPENSSL_cleanse(sig, sizeof(sig));
	return queue(piv, resp, off);
}

/* --- key generation and certificates (management key) -------------- */

static void free_objects(vc_piv *piv)
{
	for (int i = 0; i < OBJ_COUNT; i++) {
		free(piv->obj[i]);
		piv->obj[i] = NULL;
		piv->obj_len[i] = 0;
	}
}

/*
 * A slot changed: its cached signing context goes, the objects are built
 * again from the image, and the image is saved (atomically) at once.
 */
static unsigned slot_changed(vc_piv *piv, vc_slot slot)
{
	EVP_PKEY_CTX_free(piv->sign_ctx[slot]);
	piv->sign_ctx[slot] = NULL;
	free_objects(piv);
	if (build_objects(piv) < 0 || vc_image_save(piv->img, NULL) < 0)
		return VC_SW_MEMORY;
	return VC_SW_OK;
}

/* 7F49 { 81 n, 82 e } or 7F49 { 86 04 || X || Y }: the new public key. */
static unsigned public_key_template(vc_piv *piv, EVP_PKEY *key)
{
	uint8_t inner[560], out[570], buf[520];
	size_t ioff = 0, off = 0, len = 0;
	BIGNUM *n = NULL, *e = NULL;
	int fail = 0;

	if (EVP_PKEY_is_a(key, "RSA")) {
		if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) ||
		    BN_num_bytes(n) > (int)sizeof(buf))
			fail = 1;
		if (!fail) {
			len = (size_t)BN_bn2bin(n, buf);
			fail = tr_tlv_put(inner, sizeof(inner), &ioff, 0x81, buf, len) != 0;
		}
		if (!fail) {
			len = (size_t)BN_bn2bin(e, buf);
			fail = tr_tlv_put(inner, sizeof(inner), &ioff, 0x82, buf, len) != 0;
		}
		BN_free(n);
		BN_free(e);
	} else {
		fail = !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							buf, sizeof(buf), &len) ||
		       tr_tlv_put(inner, sizeof(inner), &ioff, 0x86, buf, len) != 0;
	}
	if (fail || tr_tlv_put(out, sizeof(out), &off, 0x7F49, inner, ioff) != 0) {
		ERR_clear_error();
		return VC_SW_UNKNOWN;
	}
	return queue(piv, out, off);
}

/*
 * GENERATE ASYMMETRIC KEY PAIR (47), P2 the key reference, data
 * AC { 80 algorithm }: a new key replaces the slot's, whose certificate is
 * gone until PUT DATA writes the new one, as on a real card. A blue card
 * takes RSA-2048 only (6A80 for the others).
 */
static unsigned do_generate(vc_piv *piv, const vc_apdu *a)
{
	tr_tlv_reader r;
	tr_tlv tmpl, t;
	unsigned sw;
	int slot;
	EVP_PKEY *key = NULL;

	if (a->p1 != 0x00 || (slot = vc_slot_from_ref(a->p2)) < 0)
		return VC_SW_WRONG_P1P2;
	if (!piv->admin)
		return VC_SW_SECURITY;
	tr_tlv_reader_init(&r, a->data, a->lc);
	if (tr_tlv_next(&r, &tmpl) != 1 || tmpl.tag != 0xAC)
		return VC_SW_WRONG_DATA;
	tr_tlv_reader_init(&r, tmpl.val, tmpl.len);
	if (tr_tlv_next(&r, &t) != 1 || t.tag != 0x80 || t.len != 1)
		return VC_SW_WRONG_DATA;
	switch (t.val[0]) {
	case VC_ALG_RSA2048:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case VC_ALG_P256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case VC_ALG_SM2:
	case VC_ALG_SM2_MSG:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
		break;
	default:
		return VC_SW_WRONG_DATA;
	}
	if (!key) {
		ERR_clear_error();
		return VC_SW_UNKNOWN;
	}
	if (vc_image_set_slot(piv->img, (vc_slot)slot, key, NULL) < 0) {
		EVP_PKEY_free(key);
		return VC_SW_WRONG_DATA; /* the profile does not take it */
	}
	if ((sw = slot_changed(piv, (vc_slot)slot)) == VC_SW_OK)
		sw = public_key_template(piv, key);
	EVP_PKEY_free(key);
	return sw;
}

/*
 * PUT DATA (DB 3FFF) of a certificate object: 5C { tag } 53 { 70 cert,
 * 71 00, FE }. The certificate must certify the slot's key (6A80
 * otherwise); other objects are not writable here (6A81).
 */
static unsigned do_put_data(vc_piv *piv, const vc_apdu *a)
{
	const uint8_t *der = NULL, *p;
	size_t der_len = 0;
	uint32_t want = 0;
	tr_tlv_reader r;
	tr_tlv tagv, obj, t;
	int slot = -1;
	EVP_PKEY *key;
	X509 *cert;
	unsigned sw;

	if (a->p1 != 0x3F || a->p2 != 0xFF)
		return VC_SW_WRONG_P1P2;
	if (!piv->admin)
		return VC_SW_SECURITY;
	tr_tlv_reader_init(&r, a->data, a->lc);
	if (tr_tlv_next(&r, &tagv) != 1 || tagv.tag != 0x5C || tagv.len < 1 || tagv.len > 3 ||
	    tr_tlv_next(&r, &obj) != 1 || obj.tag != 0x53 || !tr_tlv_reader_done(&r))
		return VC_SW_WRONG_DATA;
	for (size_t i = 0; i < tagv.len; i++)
		want = want << 8 | tagv.val[i];
	for (int s = 0; s < VC_SLOT_COUNT; s++)
		if (obj_tags[OBJ_CERT_9A + s] == want)
			slot = s;
	if (slot < 0)
		return VC_SW_FUNC_UNSUPPORTED;
	if (!(key = vc_image_slot_key(piv->img, (vc_slot)slot)))
		return VC_SW_CONDITIONS; /* no key to certify */
	tr_tlv_reader_init(&r, obj.val, obj.len);
	while (!tr_tlv_reader_done(&r)) {
		if (tr_tlv_next(&r, &t) != 1)
			return VC_SW_WRONG_DATA;
		if (t.tag == 0x70 && !der) {
			der = t.val;
			der_len = t.len;
		} else if (t.tag == 0x71 && t.len >= 1 && (t.val[0] & 0x01)) {
			return VC_SW_WRONG_DATA; /* compressed: not taken */
		}
	}
	p = der;
	if (!der || !(cert = d2i_X509(NULL, &p, (long)der_len)) || p != der + der_len) {
		ERR_clear_error();
		return VC_SW_WRONG_DATA;
	}
	if (vc_image_set_slot(piv->img, (vc_slot)slot, key, cert) < 0)
		sw = VC_SW_WRONG_DATA; /* not this key's certificate */
	else
		sw = slot_changed(piv, (vc_slot)slot);
	X509_free(cert);
	return sw;
}

/* --- dispatch --------------------------------------------------------- */

static int chainable(uint8_t ins)
{
	return ins == INS_GENERAL_AUTH || ins == INS_GET_DATA ||
	       ins == INS_CHANGE || ins == INS_RESET_RETRY || ins == INS_PUT_DATA;
}

static int known_ins(uint8_t ins)
{
	return chainable(ins) || ins == INS_SELECT || ins == INS_VERIFY ||
	       ins == INS_GET_RESPONSE || ins == INS_GENERATE;
}

static unsigned dispatch(vc_piv *piv, const vc_apdu *a)
{
	switch (a->ins) {
	case INS_SELECT: return do_select(piv, a);
	case INS_GET_DATA: return do_get_data(piv, a);
	case INS_VERIFY: return do_verify(piv, a);
	case INS_CHANGE: return do_change(piv, a);
	case INS_RESET_RETRY: return do_reset_retry(piv, a);
	case INS_GENERAL_AUTH: return do_general_auth(piv, a);
	case INS_GENERATE: return do_generate(piv, a);
	case INS_PUT_DATA: return do_put_data(piv, a);
	default: return VC_SW_INS_UNSUPPORTED;
	}
}

size_t vc_piv_process(vc_piv *piv, const uint8_t *cmd, size_t len,
		      uint8_t *resp)
{
	vc_apdu a;
	int rc;
	unsigned sw;

	rc = vc_apdu_parse(&a, cmd, len);
	if (rc > 0) {
		piv->chaining = 0;
		return put_sw(resp, 0, (unsigned)rc);
	}
	if ((a.cla & ~CLA_CHAIN) != 0x00) {
		piv->chaining = 0;
		return put_sw(resp, 0, VC_SW_CLA_UNSUPPORTED);
	}

	if (a.ins == INS_GET_RESPONSE && !piv->chaining) {
		if (a.cla & CLA_CHAIN)
			return put_sw(resp, 0, VC_SW_CHAIN_UNSUPPORTED);
		if (a.p1 != 0 || a.p2 != 0)
			return put_sw(resp, 0, VC_SW_WRONG_P1P2);
		if (a.lc != 0 || !a.has_le)
			return put_sw(resp, 0, VC_SW_WRONG_LENGTH);
		if (piv->out_off >= piv->out_len)
			return put_sw(resp, 0, VC_SW_CONDITIONS);
		return send_pending(piv, &a, resp);
	}
	piv->out_len = piv->out_off = 0;   /* any other command drops it */

	if (piv->chaining) {
		if (a.ins != piv->chain_ins || a.p1 != piv->chain_p1 ||
		    a.p2 != piv->chain_p2) {
			piv->chaining = 0;
			return put_sw(resp, 0, VC_SW_LAST_IN_CHAIN);
		}
		if (a.lc > sizeof(piv->chain) - piv->chain_len) {
			piv->chaining = 0;
			return put_sw(resp, 0, VC_SW_WRONG_LENGTH);
		}
		if (a.lc)
			memcpy(piv->chain + piv->chain_len, a.data, a.lc);
		piv->chain_len += a.lc;
		if (a.cla & CLA_CHAIN)
			return put_sw(resp, 0, VC_SW_OK);
		piv->chaining = 0;
		a.data = piv->chain;
		a.lc = piv->chain_len;
	} else if (a.cla & CLA_CHAIN) {
		if (!chainable(a.ins))
			return put_sw(resp, 0, known_ins(a.ins) ? VC_SW_CHAIN_UNSUPPORTED :
				      VC_SW_INS_UNSUPPORTED);
		if (a.lc > sizeof(piv->chain))
			return put_sw(resp, 0, VC_SW_WRONG_LENGTH);
		piv->chaining = 1;
		piv->chain_ins = a.ins;
		piv->chain_p1 = a.p1;
		piv->chain_p2 = a.p2;
		piv->chain_len = a.lc;
		if (a.lc)
			memcpy(piv->chain, a.data, a.lc);
		return put_sw(resp, 0, VC_SW_OK);
	}

	sw = dispatch(piv, &a);
	if (sw == VC_SW_OK && piv->out_len > 0)
		return send_pending(piv, &a, resp);
	piv->out_len = piv->out_off = 0;
	return put_sw(resp, 0, sw);
}

vc_cmd_class vc_piv_classify(const vc_piv *piv, const uint8_t *cmd, size_t len)
{
	vc_apdu a;

	if (vc_apdu_parse(&a, cmd, len) != 0 || (a.cla & CLA_CHAIN))
		return VC_CLASS_OTHER;
	switch (a.ins) {
	case INS_VERIFY:
	case INS_CHANGE:
	case INS_RESET_RETRY:
		return VC_CLASS_VERIFY;
	case INS_GET_DATA:
	case INS_GET_RESPONSE:
		return VC_CLASS_GETDATA;
	case INS_GENERAL_AUTH:
		if (a.p1 == VC_ALG_RSA2048)
			return VC_CLASS_SIGN_RSA;
		if (a.p1 == VC_ALG_P256)
			return VC_CLASS_SIGN_EC;
		if (a.p1 == VC_ALG_SM2 || a.p1 == VC_ALG_SM2_MSG)
			return VC_CLASS_SIGN_SM2;
		return VC_CLASS_OTHER;
	default:
		return VC_CLASS_OTHER;
	}
}
