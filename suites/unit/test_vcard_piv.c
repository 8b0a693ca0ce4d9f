/*
 * Unit tests of the virtual PIV applet, fed APDUs directly (no sockets):
 * every instruction's happy path and refusals, PIN/PUK counters, chaining,
 * extended length, signatures checked with OpenSSL, blue vs silver.
 */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common/error.h"
#include "emulators/vcard/vc_apdu.h"
#include "emulators/vcard/vc_image.h"
#include "emulators/vcard/vc_piv.h"
#include "emulators/vcard/vc_sm2.h"
#include "fixtures/pki.h"

static char base_dir[64];
static fx_pki *pki;
static fx_unit unit;
static EVP_PKEY *rsa_key, *ec_key, *sm2_key;
static X509 *rsa_cert, *ec_cert, *sm2_cert;
static vc_image *img;
static vc_piv *piv;
static uint8_t resp[VC_APDU_MAX_RESP];
static size_t rlen;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Keys and certificates once per run: RSA generation is the slow part. */
static void keys_setup(void)
{
	char dir[128];

	snprintf(base_dir, sizeof(base_dir), "/tmp/tokenrig-vcard-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base_dir));
	snprintf(dir, sizeof(dir), "%s/pki", base_dir);
	ck_assert_int_eq(fx_pki_create(&pki, dir, time(NULL)), 0);
	ck_assert_int_eq(fx_unit_generate(&unit, 1, "suzhou", 0), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_RSA_2048, &rsa_key), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &ec_key), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_SM2, &sm2_key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", rsa_key, &unit, FX_VARIANT_VALID,
					   &rsa_cert), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", ec_key, &unit, FX_VARIANT_VALID,
					   &ec_cert), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", sm2_key, &unit, FX_VARIANT_VALID,
					   &sm2_cert), 0);
}

static void keys_teardown(void)
{
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(sm2_key);
	X509_free(rsa_cert);
	X509_free(ec_cert);
	X509_free(sm2_cert);
	fx_pki_free(pki);
	pki = NULL;
	nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_card(vc_profile profile)
{
	static const uint8_t serial[VC_SERIAL_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

	ck_assert_int_eq(vc_image_new(&img, profile, serial), 0);
	ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9A, rsa_key, rsa_cert), 0);
	if (profile == VC_PROFILE_SILVER) {
		ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9C, ec_key, ec_cert), 0);
		ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9D, sm2_key, sm2_cert), 0);
	}
	ck_assert_int_eq(vc_image_set_limit(img, VC_REF_PIN, 3), 0);
	ck_assert_int_eq(vc_image_set_limit(img, VC_REF_PUK, 3), 0);
	ck_assert_int_eq(vc_piv_new(&piv, img), 0);
}

static void silver_setup(void) { make_card(VC_PROFILE_SILVER); }
static void blue_setup(void) { make_card(VC_PROFILE_BLUE); }

static void card_teardown(void)
{
	vc_piv_free(piv);
	vc_image_free(img);
	piv = NULL;
	img = NULL;
}

static unsigned tx(const uint8_t *cmd, size_t n)
{
	rlen = vc_piv_process(piv, cmd, n, resp);
	ck_assert_uint_ge(rlen, 2);
	return (unsigned)resp[rlen - 2] << 8 | resp[rlen - 1];
}

/* Hex with optional spaces: "00 A4 04 00". */
static unsigned txh(const char *hex)
{
	uint8_t cmd[600];
	size_t n = 0;

	for (const char *p = hex; *p;) {
		unsigned v;

		if (*p == ' ') {
			p++;
			continue;
		}
		ck_assert_int_eq(sscanf(p, "%2x", &v), 1);
		cmd[n++] = (uint8_t)v;
		p += 2;
	}
	return tx(cmd, n);
}

static void verify_pin(void)
{
	ck_assert_uint_eq(txh("00 20 00 80 08 31 32 33 34 35 36 FF FF"), 0x9000);
}

/* Collects a response following 61xx with GET RESPONSE. */
static unsigned collect(unsigned sw, uint8_t *out, size_t *len)
{
	*len = 0;
	for (;;) {
		memcpy(out + *len, resp, rlen - 2);
		*len += rlen - 2;
		if ((sw & 0xFF00) != 0x6100)
			return sw;
		{
			uint8_t gr[5] = { 0x00, 0xC0, 0x00, 0x00, (uint8_t)sw };

			sw = tx(gr, sizeof(gr));
		}
	}
}

/* The signature inside 7C { 82 sig }. */
static void unwrap_sig(const uint8_t *buf, size_t len, const uint8_t **sig, size_t *slen)
{
	vc_tlv_reader r;
	const uint8_t *t;
	size_t tl;
	unsigned tag;

	vc_tlv_init(&r, buf, len);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &t, &tl), 1);
	ck_assert_uint_eq(tag, 0x7C);
	vc_tlv_init(&r, t, tl);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, sig, slen), 1);
	ck_assert_uint_eq(tag, 0x82);
}

static size_t ga_cmd(uint8_t *cmd, uint8_t cla, uint8_t alg, uint8_t ref,
		     const uint8_t *chal, size_t clen, int extended)
{
	uint8_t inner[400], tmpl[420];
	size_t ioff = 0, off = 0, n = 0;

	vc_tlv_put(inner, sizeof(inner), &ioff, 0x82, NULL, 0);
	vc_tlv_put(inner, sizeof(inner), &ioff, 0x81, chal, clen);
	vc_tlv_put(tmpl, sizeof(tmpl), &off, 0x7C, inner, ioff);
	cmd[n++] = cla;
	cmd[n++] = 0x87;
	cmd[n++] = alg;
	cmd[n++] = ref;
	if (extended) {
		cmd[n++] = 0;
		cmd[n++] = (uint8_t)(off >> 8);
		cmd[n++] = (uint8_t)off;
	} else {
		ck_assert_uint_le(off, 255);
		cmd[n++] = (uint8_t)off;
	}
	memcpy(cmd + n, tmpl, off);
	n += off;
	cmd[n++] = 0;
	if (extended)
		cmd[n++] = 0;
	return n;
}

START_TEST(test_select)
{
	ck_assert_uint_eq(txh("00 A4 04 00 0B A0 00 00 03 08 00 00 10 00 01 00 00"), 0x9000);
	ck_assert_uint_eq(resp[0], 0x61);
	ck_assert_ptr_nonnull(memmem(resp, rlen, "\x80\x01\x11", 3));
	/* Truncated AID down to the RID selects too. */
	ck_assert_uint_eq(txh("00 A4 04 00 05 A0 00 00 03 08 00"), 0x9000);
	ck_assert_uint_eq(txh("00 A4 04 00 05 A0 00 00 03 09 00"), 0x6A82);
	ck_assert_uint_eq(txh("00 A4 00 00 02 3F 00"), 0x6A86);
	ck_assert_uint_eq(txh("00 A4 04 0C 05 A0 00 00 03 08"), 0x9000);
	ck_assert_uint_eq(rlen, 2);
	/* Without Le (yubico-piv-tool): the template at once, as over T=1, no 61xx. */
	ck_assert_uint_eq(txh("00 A4 04 00 05 A0 00 00 03 08"), 0x9000);
	ck_assert_uint_gt(rlen, 2);
	ck_assert_uint_eq(resp[0], 0x61);
}
END_TEST

START_TEST(test_get_data)
{
	uint8_t buf[4096];
	size_t len;
	unsigned char *der = NULL;
	int der_len = i2d_X509(rsa_cert, &der);

	ck_assert_uint_eq(txh("00 CB 3F FF 03 5C 01 7E 00"), 0x9000);
	ck_assert_uint_eq(resp[0], 0x7E);
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 03 5F C1 02 00"), 0x9000);
	ck_assert_uint_eq(resp[0], 0x53);
	ck_assert_ptr_nonnull(memmem(resp, rlen, "\x34\x10\x01\x02\x03", 5)); /* GUID */
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 03 5F C1 07 00"), 0x9000);
	/* A certificate is longer than 256: 61xx and GET RESPONSE. */
	ck_assert_uint_eq(collect(txh("00 CB 3F FF 05 5C 03 5F C1 05 00"), buf, &len), 0x9000);
	ck_assert_ptr_nonnull(memmem(buf, len, der, (size_t)der_len));
	OPENSSL_free(der);
	/* Absent objects, bad requests. */
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 03 5F C1 0C 00"), 0x6A82);
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 03 5F C1 01 00"), 0x6A82);
	ck_assert_uint_eq(txh("00 CB 3F FE 05 5C 03 5F C1 02 00"), 0x6A86);
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5D 03 5F C1 02 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 04 5F C1 02 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 CB 3F FF 00"), 0x6700);
	ck_assert_uint_eq(txh("00 C0 00 00 00"), 0x6985);
}
END_TEST

START_TEST(test_get_data_extended)
{
	/* Extended Le: the whole certificate in one response. */
	ck_assert_uint_eq(txh("00 CB 3F FF 00 00 05 5C 03 5F C1 05 00 00"), 0x9000);
	ck_assert_uint_gt(rlen, 300);
	ck_assert_uint_eq(resp[0], 0x53);
}
END_TEST

START_TEST(test_bad_input)
{
	ck_assert_uint_eq(txh("00 A4 04"), 0x6700);
	ck_assert_uint_eq(txh("00 20 00 80 09 31"), 0x6700);
	ck_assert_uint_eq(txh("80 CB 3F FF 03 5C 01 7E 00"), 0x6E00);
	ck_assert_uint_eq(txh("04 CB 3F FF 03 5C 01 7E 00"), 0x6E00);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 07"), 0x6982); /* no management key */
	ck_assert_uint_eq(txh("00 E2 00 00 01 00"), 0x6D00);
	ck_assert_uint_eq(txh("00 C0 01 00 10"), 0x6A86);
	ck_assert_uint_eq(txh("00 C0 00 00"), 0x6700);
}
END_TEST

START_TEST(test_verify_and_lockout)
{
	ck_assert_uint_eq(txh("00 20 00 80"), 0x63C3);
	ck_assert_uint_eq(txh("00 20 00 80 08 39 39 39 39 39 39 FF FF"), 0x63C2);
	ck_assert_uint_eq(txh("00 20 00 80"), 0x63C2);
	verify_pin();
	ck_assert_uint_eq(txh("00 20 00 80"), 0x9000);       /* refilled, verified */
	ck_assert_uint_eq(txh("00 20 FF 80"), 0x9000);       /* reset status */
	ck_assert_uint_eq(txh("00 20 00 80"), 0x63C3);
	ck_assert_uint_eq(txh("00 20 00 80 06 31 32 33 34 35 36"), 0x6A80);
	ck_assert_uint_eq(txh("00 20 00 81 08 31 32 33 34 35 36 FF FF"), 0x6A86);
	ck_assert_uint_eq(txh("00 20 01 80 08 31 32 33 34 35 36 FF FF"), 0x6A86);
	for (unsigned left = 2; left != (unsigned)-1; left--)
		ck_assert_uint_eq(txh("00 20 00 80 08 39 39 39 39 39 39 FF FF"), 0x63C0 | left);
	ck_assert_uint_eq(txh("00 20 00 80 08 31 32 33 34 35 36 FF FF"), 0x6983);
	ck_assert_uint_eq(txh("00 20 00 80"), 0x6983);
	/* PUK: wrong one counts down on its own counter, right one unblocks. */
	ck_assert_uint_eq(txh("00 2C 00 80 10 39 39 39 39 39 39 39 39 "
			      "37 37 37 37 37 37 FF FF"), 0x63C2);
	ck_assert_uint_eq(txh("00 2C 00 80 10 31 32 33 34 35 36 37 38 "
			      "37 37 37 37 37 37 FF FF"), 0x9000);
	ck_assert_uint_eq(txh("00 20 00 80 08 37 37 37 37 37 37 FF FF"), 0x9000);
	{
		unsigned left, max;

		vc_image_tries(img, VC_REF_PUK, &left, &max);
		ck_assert_uint_eq(left, 3);
	}
	/* Bad RESET RETRY COUNTER forms. */
	ck_assert_uint_eq(txh("00 2C 00 81 10 31 32 33 34 35 36 37 38 "
			      "37 37 37 37 37 37 FF FF"), 0x6A86);
	ck_assert_uint_eq(txh("00 2C 00 80 08 31 32 33 34 35 36 37 38"), 0x6A80);
	ck_assert_uint_eq(txh("00 2C 00 80 10 31 32 33 34 35 36 37 38 "
			      "37 37 FF FF FF FF FF FF"), 0x6A80);        /* new PIN too short */
}
END_TEST

START_TEST(test_puk_lockout)
{
	for (unsigned left = 2; left != (unsigned)-1; left--)
		ck_assert_uint_eq(txh("00 2C 00 80 10 39 39 39 39 39 39 39 39 "
				      "37 37 37 37 37 37 FF FF"), 0x63C0 | left);
	ck_assert_uint_eq(txh("00 2C 00 80 10 31 32 33 34 35 36 37 38 "
			      "37 37 37 37 37 37 FF FF"), 0x6983);
	verify_pin();   /* the PIN is unaffected */
}
END_TEST

START_TEST(test_change_reference)
{
	ck_assert_uint_eq(txh("00 24 00 80 10 31 32 33 34 35 36 FF FF "
			      "36 35 34 33 32 31 FF FF"), 0x9000);
	ck_assert_uint_eq(txh("00 20 00 80 08 31 32 33 34 35 36 FF FF"), 0x63C2);
	ck_assert_uint_eq(txh("00 20 00 80 08 36 35 34 33 32 31 FF FF"), 0x9000);
	ck_assert_uint_eq(txh("00 24 00 80 10 31 31 31 31 31 31 FF FF "
			      "36 35 34 33 32 31 FF FF"), 0x63C2);
	/* PUK change, then the new PUK unblocks. */
	ck_assert_uint_eq(txh("00 24 00 81 10 31 32 33 34 35 36 37 38 "
			      "38 37 36 35 34 33 32 31"), 0x9000);
	ck_assert_uint_eq(txh("00 2C 00 80 10 38 37 36 35 34 33 32 31 "
			      "31 32 33 34 35 36 FF FF"), 0x9000);
	verify_pin();
	ck_assert_uint_eq(txh("00 24 00 82 10 31 32 33 34 35 36 37 38 "
			      "38 37 36 35 34 33 32 31"), 0x6A86);
	ck_assert_uint_eq(txh("00 24 00 80 08 31 32 33 34 35 36 FF FF"), 0x6A80);
}
END_TEST

START_TEST(test_rsa_sign_chained)
{
	uint8_t block[256], cmd[600], buf[600], out[256];
	const uint8_t *sig;
	size_t n, len, slen, olen = sizeof(out);
	EVP_PKEY_CTX *ctx;

	memset(block, 0xFF, sizeof(block));
	block[0] = 0x00;
	block[1] = 0x01;
	block[200] = 0x00;
	memset(block + 201, 0xAB, 55);
	n = ga_cmd(cmd, 0x00, 0x07, 0x9A, block, sizeof(block), 1);
	/* Split the data of the extended APDU into a short chain. */
	{
		const uint8_t *data = cmd + 7;
		size_t dlen = n - 9;
		uint8_t part[300];

		ck_assert_uint_eq(dlen, 266);
		memcpy(part, "\x10\x87\x07\x9A\xF0", 5);
		memcpy(part + 5, data, 240);
		ck_assert_uint_eq(tx(part, 245), 0x9000);
		memcpy(part, "\x00\x87\x07\x9A", 4);
		part[4] = (uint8_t)(dlen - 240);
		memcpy(part + 5, data + 240, dlen - 240);
		part[5 + dlen - 240] = 0x00;
		ck_assert_uint_eq(tx(part, 6 + dlen - 240), 0x6982);   /* no PIN yet */
		verify_pin();
		memcpy(part, "\x10\x87\x07\x9A\xF0", 5);
		memcpy(part + 5, data, 240);
		ck_assert_uint_eq(tx(part, 245), 0x9000);
		memcpy(part, "\x00\x87\x07\x9A", 4);
		part[4] = (uint8_t)(dlen - 240);
		memcpy(part + 5, data + 240, dlen - 240);
		part[5 + dlen - 240] = 0x00;
		ck_assert_uint_eq(collect(tx(part, 6 + dlen - 240), buf, &len), 0x9000);
	}
	unwrap_sig(buf, len, &sig, &slen);
	ck_assert_uint_eq(slen, 256);
	/* Raw RSA: the public operation gives the block back. */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_key, NULL);
	ck_assert_int_eq(EVP_PKEY_encrypt_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_encrypt(ctx, out, &olen, sig, slen), 1);
	ck_assert_mem_eq(out, block, 256);
	EVP_PKEY_CTX_free(ctx);
	/* Extended length in one APDU, the whole answer at once. */
	ck_assert_uint_eq(tx(cmd, n), 0x9000);
	ck_assert_uint_eq(rlen, 266);
	/* A block not below the modulus, wrong length, wrong alg. */
	memset(block, 0xFF, sizeof(block));
	n = ga_cmd(cmd, 0x00, 0x07, 0x9A, block, 256, 1);
	ck_assert_uint_eq(tx(cmd, n), 0x6A80);
	n = ga_cmd(cmd, 0x00, 0x07, 0x9A, block, 100, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A80);
	n = ga_cmd(cmd, 0x00, 0x11, 0x9A, block, 32, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A86);
	n = ga_cmd(cmd, 0x00, 0x07, 0x9B + 1, block, 32, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A86);
	n = ga_cmd(cmd, 0x00, 0x07, 0x9E, block, 32, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A86);               /* empty slot */
}
END_TEST

START_TEST(test_ecdsa_pin_always)
{
	uint8_t hash[32], cmd[300], buf[300];
	const uint8_t *sig;
	size_t n, len, slen;
	EVP_PKEY_CTX *ctx;

	memset(hash, 0x3C, sizeof(hash));
	n = ga_cmd(cmd, 0x00, 0x11, 0x9C, hash, sizeof(hash), 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6982);
	verify_pin();
	ck_assert_uint_eq(collect(tx(cmd, n), buf, &len), 0x9000);
	unwrap_sig(buf, len, &sig, &slen);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ec_key, NULL);
	ck_assert_int_eq(EVP_PKEY_verify_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_verify(ctx, sig, slen, hash, sizeof(hash)), 1);
	EVP_PKEY_CTX_free(ctx);
	/* 9C: one signature per VERIFY (PIN always). */
	ck_assert_uint_eq(tx(cmd, n), 0x6982);
	verify_pin();
	ck_assert_uint_eq(tx(cmd, n), 0x9000);
	/* Malformed templates. */
	verify_pin();
	ck_assert_uint_eq(txh("00 87 11 9C 04 7C 02 81 00 00"), 0x6A80);          /* no 82 */
	ck_assert_uint_eq(txh("00 87 11 9C 04 7D 02 82 00 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 87 11 9C 06 7C 05 82 00 81 05 00"), 0x6A80);    /* runs past */
	ck_assert_uint_eq(txh("00 87 11 9C 06 7C 04 82 00 80 00 00"), 0x6A80);    /* witness */
	ck_assert_uint_eq(txh("00 87 11 9C 00"), 0x6700);
	/* Challenge from the management key (OpenSC's C_GenerateRandom). */
	ck_assert_uint_eq(txh("00 87 00 9B 04 7C 02 81 00 00"), 0x9000);
	ck_assert_uint_eq(rlen, 2 + 12);
	ck_assert_uint_eq(txh("00 87 0C 9B 04 7C 02 81 00 00"), 0x9000);
	ck_assert_uint_eq(rlen, 2 + 20);
	ck_assert_uint_eq(txh("00 87 07 9B 04 7C 02 81 00 00"), 0x6A86);
}
END_TEST

static void check_sm2(const uint8_t *buf, size_t len, const uint8_t *msg, size_t mlen)
{
	const uint8_t *sig;
	size_t slen;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, sm2_key, NULL);

	unwrap_sig(buf, len, &sig, &slen);
	ck_assert_int_eq(EVP_PKEY_CTX_set1_id(pctx, VC_SM2_DEFAULT_ID, 16), 1);
	EVP_MD_CTX_set_pkey_ctx(md, pctx);
	ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, sm2_key), 1);
	ck_assert_int_eq(EVP_DigestVerify(md, sig, slen, msg, mlen), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
}

START_TEST(test_sm2_both_modes)
{
	static const uint8_t msg[] = "declaration: tokenrig SM2 test";
	uint8_t e[32], cmd[300], buf[300];
	size_t n, len;

	verify_pin();
	/* E8: the host computes e = SM3(Z || M). */
	ck_assert_int_eq(vc_sm2_e(sm2_key, msg, sizeof(msg) - 1, e), 0);
	n = ga_cmd(cmd, 0x00, VC_ALG_SM2, 0x9D, e, sizeof(e), 0);
	ck_assert_uint_eq(collect(tx(cmd, n), buf, &len), 0x9000);
	check_sm2(buf, len, msg, sizeof(msg) - 1);
	/* E9: the card hashes Z || M itself. */
	n = ga_cmd(cmd, 0x00, VC_ALG_SM2_MSG, 0x9D, msg, sizeof(msg) - 1, 0);
	ck_assert_uint_eq(collect(tx(cmd, n), buf, &len), 0x9000);
	check_sm2(buf, len, msg, sizeof(msg) - 1);
	/* E8 wants exactly 32 bytes; ECDSA's id is refused on an SM2 key. */
	n = ga_cmd(cmd, 0x00, VC_ALG_SM2, 0x9D, e, 20, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A80);
	n = ga_cmd(cmd, 0x00, VC_ALG_P256, 0x9D, e, 32, 0);
	ck_assert_uint_eq(tx(cmd, n), 0x6A86);
}
END_TEST

START_TEST(test_chaining_abuse)
{
	uint8_t big[VC_APDU_MAX_DATA / 200 + 2][205];

	ck_assert_uint_eq(txh("10 87 07 9A 02 7C 00"), 0x9000);
	ck_assert_uint_eq(txh("00 CB 3F FF 03 5C 01 7E 00"), 0x6883);   /* chain broken */
	ck_assert_uint_eq(txh("00 CB 3F FF 03 5C 01 7E 00"), 0x9000);   /* then normal */
	ck_assert_uint_eq(txh("10 A4 04 00 05 A0 00 00 03 08"), 0x6884);
	ck_assert_uint_eq(txh("10 20 00 80 08 31 32 33 34 35 36 FF FF"), 0x6884);
	ck_assert_uint_eq(txh("10 47 00 9A 01 00"), 0x6884);
	ck_assert_uint_eq(txh("10 E2 00 00 01 00"), 0x6D00);
	ck_assert_uint_eq(txh("10 87 07 9A 01 7C"), 0x9000);
	ck_assert_uint_eq(txh("10 87 07 9C 01 00"), 0x6883);            /* other P2 */
	/* Oversized chained data. */
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		unsigned sw;

		memset(big[i], 0x41, sizeof(big[i]));
		memcpy(big[i], "\x10\x87\x07\x9A\xC8", 5);
		sw = tx(big[i], 205);
		if (sw != 0x9000) {
			ck_assert_uint_eq(sw, 0x6700);
			ck_assert_uint_eq(i, VC_APDU_MAX_DATA / 200);
			return;
		}
	}
	ck_abort_msg("oversized chain accepted");
}
END_TEST

START_TEST(test_reset_clears_state)
{
	verify_pin();
	ck_assert_uint_eq(txh("10 87 07 9A 01 7C"), 0x9000);
	vc_piv_reset(piv);
	ck_assert_uint_eq(txh("00 20 00 80"), 0x63C3);
	ck_assert_uint_eq(txh("00 CB 3F FF 03 5C 01 7E 00"), 0x9000);
	ck_assert_uint_eq(vc_piv_classify(piv, (const uint8_t *)"\x00\x87\x07\x9A\x00", 5),
			  VC_CLASS_SIGN_RSA);
	ck_assert_uint_eq(vc_piv_classify(piv, (const uint8_t *)"\x10\x87\x07\x9A\x00", 5),
			  VC_CLASS_OTHER);
	ck_assert_uint_eq(vc_piv_classify(piv, (const uint8_t *)"\x00\x20\x00\x80", 4),
			  VC_CLASS_VERIFY);
}
END_TEST

START_TEST(test_blue_profile)
{
	vc_image *other = NULL;
	static const uint8_t serial[VC_SERIAL_LEN];

	ck_assert_uint_eq(txh("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"), 0x9000);
	ck_assert_ptr_nonnull(memmem(resp, rlen, "\x80\x01\x07", 3));
	ck_assert_ptr_null(memmem(resp, rlen, "\x80\x01\x11", 3));
	ck_assert_ptr_null(memmem(resp, rlen, "\x80\x01\xE8", 3));
	/* A blue card cannot take SM2 (nor P-256). */
	ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9C, sm2_key, sm2_cert), TR_EINVAL);
	ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9C, ec_key, ec_cert), TR_EINVAL);
	/* The SM2 algorithm id on its RSA key: refused. */
	verify_pin();
	ck_assert_uint_eq(txh("00 87 E8 9A 24 7C 22 82 00 81 1E "
			      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
			      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), 0x6A86);
	/* A certificate that is not the key's is refused too. */
	ck_assert_int_eq(vc_image_new(&other, VC_PROFILE_SILVER, serial), 0);
	ck_assert_int_eq(vc_image_set_slot(other, VC_SLOT_9A, ec_key, rsa_cert), TR_EINVAL);
	vc_image_free(other);
}
END_TEST

/* 3DES-ECB under the default management key, as a host does. */
static void mgmt_encrypt(const uint8_t in[8], uint8_t out[8])
{
	static const uint8_t key[24] = { 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
					 1, 2, 3, 4, 5, 6, 7, 8 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_des_ede3_ecb(), NULL, key, NULL), 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, out, &n, in, 8), 1);
	ck_assert_int_eq(n, 8);
	EVP_CIPHER_CTX_free(ctx);
}

/* Management-key authentication; wrong: the response is corrupted first. */
static unsigned mgmt_auth(int wrong)
{
	uint8_t cmd[32] = { 0x00, 0x87, 0x03, 0x9B, 0x0C, 0x7C, 0x0A, 0x82, 0x08 };

	ck_assert_uint_eq(txh("00 87 03 9B 04 7C 02 81 00 00"), 0x9000);
	ck_assert_uint_eq(rlen, 14);
	ck_assert_uint_eq(resp[0], 0x7C);
	ck_assert_uint_eq(resp[2], 0x81);
	mgmt_encrypt(resp + 4, cmd + 9);
	cmd[9] ^= (uint8_t)wrong;
	return tx(cmd, 17);
}

/* 3DES-ECB decryption under the default management key (the host's side). */
static void mgmt_decrypt(const uint8_t in[8], uint8_t out[8])
{
	static const uint8_t key[24] = { 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
					 1, 2, 3, 4, 5, 6, 7, 8 };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_DecryptInit_ex(ctx, EVP_des_ede3_ecb(), NULL, key, NULL), 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	ck_assert_int_eq(EVP_DecryptUpdate(ctx, out, &n, in, 8), 1);
	ck_assert_int_eq(n, 8);
	EVP_CIPHER_CTX_free(ctx);
}

/*
 * Mutual authentication as yubico-piv-tool and OpenSC's piv-tool -A M:9B:03
 * send it (SP 800-73-4): 7C { 80 00 } gets the encrypted witness; the
 * decrypted witness (corrupted when wrong) and a challenge go back, with
 * 82 00 when with_82; the card's answer must be the challenge encrypted.
 */
static unsigned mgmt_mutual(int wrong, int with_82)
{
	uint8_t cmd[40] = { 0x00, 0x87, 0x03, 0x9B, 0x00, 0x7C, 0x00, 0x80, 0x08 };
	uint8_t challenge[8] = { 0xC0, 0xFF, 0xEE, 0x00, 0x11, 0x22, 0x33, 0x44 }, want[8];
	size_t n = 9;
	unsigned sw;

	ck_assert_uint_eq(txh("00 87 03 9B 04 7C 02 80 00 00"), 0x9000);
	ck_assert_uint_eq(rlen, 14);
	ck_assert_uint_eq(resp[0], 0x7C);
	ck_assert_uint_eq(resp[1], 0x0A);
	ck_assert_uint_eq(resp[2], 0x80);
	ck_assert_uint_eq(resp[3], 0x08);
	mgmt_decrypt(resp + 4, cmd + n);
	cmd[n] ^= (uint8_t)wrong;
	n += 8;
	cmd[n++] = 0x81;
	cmd[n++] = 0x08;
	memcpy(cmd + n, challenge, 8);
	n += 8;
	if (with_82) {
		cmd[n++] = 0x82;
		cmd[n++] = 0x00;
	}
	cmd[6] = (uint8_t)(n - 7);
	cmd[4] = (uint8_t)(n - 5);
	cmd[n++] = 0x00; /* Le */
	sw = tx(cmd, n);
	if (sw != 0x9000)
		return sw;
	ck_assert_uint_eq(rlen, 14);
	ck_assert_uint_eq(resp[0], 0x7C);
	ck_assert_uint_eq(resp[1], 0x0A);
	ck_assert_uint_eq(resp[2], 0x82);
	ck_assert_uint_eq(resp[3], 0x08);
	mgmt_encrypt(challenge, want);
	ck_assert_mem_eq(resp + 4, want, 8);
	return sw;
}

START_TEST(test_mgmt_mutual_auth)
{
	uint8_t buf[600];
	size_t len;

	/* The second step without a witness out: 6985. */
	ck_assert_uint_eq(txh("00 87 03 9B 16 7C 14 80 08 00 00 00 00 00 00 00 00 "
			      "81 08 00 00 00 00 00 00 00 00 00"), 0x6985);
	/* A wrong witness: refused, and no administration. */
	ck_assert_uint_eq(mgmt_mutual(1, 0), 0x6982);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
	/* The witness is good for one try only. */
	ck_assert_uint_eq(txh("00 87 03 9B 16 7C 14 80 08 00 00 00 00 00 00 00 00 "
			      "81 08 00 00 00 00 00 00 00 00 00"), 0x6985);
	/* yubico-piv-tool's form (80, 81), then with 82 00: both administer. */
	ck_assert_uint_eq(mgmt_mutual(0, 0), 0x9000);
	ck_assert_uint_eq(collect(txh("00 47 00 9A 05 AC 03 80 01 11 00"), buf, &len), 0x9000);
	ck_assert_uint_eq(buf[0], 0x7F);
	vc_piv_reset(piv);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
	ck_assert_uint_eq(mgmt_mutual(0, 1), 0x9000);
	ck_assert_uint_eq(collect(txh("00 47 00 9C 05 AC 03 80 01 11 00"), buf, &len), 0x9000);
	/* A witness request drops the administration until it is answered. */
	ck_assert_uint_eq(txh("00 87 03 9B 04 7C 02 80 00 00"), 0x9000);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
	/* A challenge in between voids the witness; the wrong lengths and an AES P1. */
	ck_assert_uint_eq(txh("00 87 03 9B 04 7C 02 81 00 00"), 0x9000);
	ck_assert_uint_eq(txh("00 87 03 9B 16 7C 14 80 08 00 00 00 00 00 00 00 00 "
			      "81 08 00 00 00 00 00 00 00 00 00"), 0x6985);
	ck_assert_uint_eq(txh("00 87 03 9B 04 7C 02 80 00 00"), 0x9000);
	ck_assert_uint_eq(txh("00 87 03 9B 0E 7C 0C 80 08 00 00 00 00 00 00 00 00 81 00 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 87 03 9B 0C 7C 0A 80 08 00 00 00 00 00 00 00 00 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 87 03 9B 06 7C 04 80 00 80 00 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 87 0C 9B 04 7C 02 80 00 00"), 0x6A86);
}
END_TEST

/* PUT DATA of a certificate object, chained in 255-byte pieces. */
static unsigned put_cert(uint32_t tag, X509 *cert)
{
	uint8_t *der = NULL, obj[2048], data[2100], cmd[300];
	size_t ooff = 0, off = 0;
	int len = i2d_X509(cert, &der);
	uint8_t tagv[3] = { (uint8_t)(tag >> 16), (uint8_t)(tag >> 8), (uint8_t)tag };
	unsigned sw = 0;

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(vc_tlv_put(obj, sizeof(obj), &ooff, 0x70, der, (size_t)len), 0);
	ck_assert_int_eq(vc_tlv_put(obj, sizeof(obj), &ooff, 0x71, (const uint8_t *)"\x00", 1), 0);
	ck_assert_int_eq(vc_tlv_put(obj, sizeof(obj), &ooff, 0xFE, NULL, 0), 0);
	ck_assert_int_eq(vc_tlv_put(data, sizeof(data), &off, 0x5C, tagv, 3), 0);
	ck_assert_int_eq(vc_tlv_put(data, sizeof(data), &off, 0x53, obj, ooff), 0);
	OPENSSL_free(der);
	for (size_t at = 0; at < off;) {
		size_t piece = off - at > 255 ? 255 : off - at;

		cmd[0] = at + piece < off ? 0x10 : 0x00;
		cmd[1] = 0xDB;
		cmd[2] = 0x3F;
		cmd[3] = 0xFF;
		cmd[4] = (uint8_t)piece;
		memcpy(cmd + 5, data + at, piece);
		sw = tx(cmd, 5 + piece);
		at += piece;
		if (at < off)
			ck_assert_uint_eq(sw, 0x9000);
	}
	return sw;
}

START_TEST(test_generate_and_put_certificate)
{
	uint8_t buf[2048], point[80];
	size_t len, plen;
	const uint8_t *der;
	size_t der_len;
	vc_tlv_reader r;
	const uint8_t *t, *v;
	size_t tl, vl;
	unsigned tag;
	X509 *cert = NULL;
	char *text = NULL;
	vc_image *again = NULL;

	ck_assert_uint_eq(txh("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"), 0x9000);
	/* Without the management key: refused. */
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
	ck_assert_uint_eq(put_cert(0x5FC10A, ec_cert), 0x6982);
	/* A response without a challenge, then a wrong one. */
	ck_assert_uint_eq(txh("00 87 03 9B 0C 7C 0A 82 08 00 00 00 00 00 00 00 00"), 0x6985);
	ck_assert_uint_eq(mgmt_auth(1), 0x6982);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
	ck_assert_uint_eq(mgmt_auth(0), 0x9000);

	/* A certificate that is not the slot key's: 6A80; its own: written. */
	ck_assert_uint_eq(put_cert(0x5FC10A, rsa_cert), 0x6A80);
	ck_assert_uint_eq(put_cert(0x5FC10A, ec_cert), 0x9000);
	ck_assert_uint_eq(txh("00 DB 3F FF 06 5C 01 7E 53 01 00"), 0x6A81);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 42 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 47 00 99 05 AC 03 80 01 11 00"), 0x6A86);

	/* A P-256 key replaces the RSA one in 9A; its certificate is gone. */
	ck_assert_uint_eq(collect(txh("00 47 00 9A 05 AC 03 80 01 11 00"), buf, &len), 0x9000);
	vc_tlv_init(&r, buf, len);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &t, &tl), 1);
	ck_assert_uint_eq(tag, 0x7F49);
	vc_tlv_init(&r, t, tl);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vl), 1);
	ck_assert_uint_eq(tag, 0x86);
	ck_assert_uint_eq(vl, 65);
	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(vc_image_slot_key(img, VC_SLOT_9A),
							 OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							 point, sizeof(point), &plen), 1);
	ck_assert_mem_eq(point, v, 65);
	ck_assert_uint_eq(vc_image_slot_alg(img, VC_SLOT_9A), VC_ALG_P256);
	ck_assert_uint_eq(txh("00 CB 3F FF 05 5C 03 5F C1 05 00"), 0x6A82);

	/* The CA certifies the new key; the certificate goes in, chained. */
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", vc_image_slot_key(img, VC_SLOT_9A),
					   &unit, FX_VARIANT_VALID, &cert), 0);
	ck_assert_uint_eq(put_cert(0x5FC105, cert), 0x9000);
	ck_assert_uint_eq(collect(txh("00 CB 3F FF 05 5C 03 5F C1 05 00"), buf, &len), 0x9000);
	vc_image_slot_cert(img, VC_SLOT_9A, &der, &der_len);
	ck_assert_ptr_nonnull(memmem(buf, len, der, der_len));
	/* The image keeps it across a save and a load. */
	ck_assert_int_eq(vc_image_format(img, &text, &len), 0);
	ck_assert_int_eq(vc_image_parse(&again, text, len), 0);
	ck_assert_uint_eq(vc_image_slot_alg(again, VC_SLOT_9A), VC_ALG_P256);
	free(text);
	vc_image_free(again);
	X509_free(cert);

	/* A reset drops the management-key status. */
	vc_piv_reset(piv);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6982);
}
END_TEST

START_TEST(test_blue_generates_rsa_only)
{
	uint8_t buf[600];
	size_t len;

	ck_assert_uint_eq(mgmt_auth(0), 0x9000);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 E8 00"), 0x6A80);
	ck_assert_uint_eq(txh("00 47 00 9A 05 AC 03 80 01 11 00"), 0x6A80);
	ck_assert_uint_eq(vc_image_slot_alg(img, VC_SLOT_9A), VC_ALG_RSA2048);
	ck_assert_uint_eq(collect(txh("00 47 00 9A 05 AC 03 80 01 07 00"), buf, &len), 0x9000);
	ck_assert_uint_eq(buf[0], 0x7F);
	ck_assert_uint_eq(buf[1], 0x49);
	ck_assert_ptr_nonnull(memmem(buf, len, "\x82\x03\x01\x00\x01", 5)); /* e = 65537 */
}
END_TEST

Suite *vcard_piv_suite(void)
{
	Suite *s = suite_create("vcard_piv");
	TCase *tc = tcase_create("silver");
	TCase *blue = tcase_create("blue");

	tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_checked_fixture(tc, silver_setup, card_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_select);
	tcase_add_test(tc, test_get_data);
	tcase_add_test(tc, test_get_data_extended);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_verify_and_lockout);
	tcase_add_test(tc, test_puk_lockout);
	tcase_add_test(tc, test_change_reference);
	tcase_add_test(tc, test_rsa_sign_chained);
	tcase_add_test(tc, test_ecdsa_pin_always);
	tcase_add_test(tc, test_sm2_both_modes);
	tcase_add_test(tc, test_chaining_abuse);
	tcase_add_test(tc, test_reset_clears_state);
	tcase_add_test(tc, test_generate_and_put_certificate);
	tcase_add_test(tc, test_mgmt_mutual_auth);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(blue, keys_setup, keys_teardown);
	tcase_add_checked_fixture(blue, blue_setup, card_teardown);
	tcase_set_timeout(blue, 30);
	tcase_add_test(blue, test_blue_profile);
	tcase_add_test(blue, test_blue_generates_rsa_only);
	suite_add_tcase(s, blue);
	return s;
}
