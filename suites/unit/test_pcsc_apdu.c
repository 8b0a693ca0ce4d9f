/*
 * Unit tests of the card backend's APDU layer (harness/pcsc/apdu.c) against
 * a scripted fake card, and of the PIV driver's answer parsers
 * (harness/pcsc/piv.c): extended APDUs, the 6700 fall-back to chained
 * short APDUs, answers over 61xx / GET RESPONSE, a card gone mid-command,
 * status words as token outcomes, malformed answers as TR_EIO.
 */
#include <check.h>
#include <string.h>

#include "common/error.h"
#include "common/tlv.h"
#include "harness/pcsc/apdu.h"
#include "harness/pcsc/piv.h"
#include "harness/token.h"

/* A card that answers from a script and records the commands it got. */
typedef struct script {
	const unsigned char *answers[8];
	size_t answer_len[8];
	unsigned n, next;
	unsigned char cmds[8][400];
	size_t cmd_len[8];
} script;

static int fake(void *ctx, const unsigned char *cmd, size_t len, const unsigned char **resp,
		size_t *resp_len, const char *what)
{
	script *s = ctx;

	ck_assert_uint_lt(s->next, s->n);
	ck_assert_uint_le(len, sizeof(s->cmds[0]));
	memcpy(s->cmds[s->next], cmd, len);
	s->cmd_len[s->next] = len;
	*resp = s->answers[s->next];
	*resp_len = s->answer_len[s->next];
	s->next++;
	return 0;
}

static void add(script *s, const char *bytes, size_t len)
{
	s->answers[s->n] = (const unsigned char *)bytes;
	s->answer_len[s->n++] = len;
}

START_TEST(test_extended_then_short_chained)
{
	static const unsigned char hdr[4] = { 0x00, 0x87, 0x07, 0x9A };
	unsigned char data[300];
	tr_buf out = TR_BUF_INIT;
	tr_apdu_chan *c;
	script s = { .n = 0 };
	unsigned sw = 0;

	memset(data, 0x42, sizeof(data));
	add(&s, "\x67\x00", 2);          /* no extended APDUs here */
	add(&s, "\x90\x00", 2);          /* the first 255 bytes, chained */
	add(&s, "AB\x61\x03", 4);        /* the last piece; 3 more bytes */
	add(&s, "CDE\x90\x00", 5);       /* GET RESPONSE */
	ck_assert_int_eq(tr_apdu_chan_new(&c, fake, &s, "fake reader", 1), 0);
	ck_assert_int_eq(tr_apdu_exchange(c, "SIGN", hdr, data, sizeof(data), TR_APDU_LE_LONG,
					  &out, &sw), 0);
	ck_assert_uint_eq(sw, 0x9000);
	ck_assert_uint_eq(out.len, 5);
	ck_assert(memcmp(out.data, "ABCDE", 5) == 0);
	ck_assert(!tr_apdu_extended(c));
	ck_assert_uint_eq(s.next, 4);
	/* Extended: 00 then a 2-byte Lc, the data and a 2-byte Le. */
	ck_assert_uint_eq(s.cmd_len[0], 4 + 3 + 300 + 2);
	ck_assert(s.cmds[0][4] == 0x00 && s.cmds[0][5] == 0x01 && s.cmds[0][6] == 0x2C);
	/* Then CLA 10 with 255 bytes, CLA 00 with the rest and Le. */
	ck_assert(s.cmds[1][0] == 0x10 && s.cmds[1][4] == 0xFF && s.cmd_len[1] == 5 + 255);
	ck_assert(s.cmds[2][0] == 0x00 && s.cmds[2][4] == 45 && s.cmd_len[2] == 5 + 45 + 1);
	ck_assert(s.cmds[3][1] == 0xC0 && s.cmds[3][4] == 0x03 && s.cmd_len[3] == 5);
	tr_buf_free(&out);
	tr_apdu_chan_free(c);
}
END_TEST

START_TEST(test_refusal_mid_chain_and_outcomes)
{
	static const unsigned char hdr[4] = { 0x00, 0x87, 0x07, 0x9A };
	unsigned char data[300] = { 0 };
	tr_buf out = TR_BUF_INIT;
	tr_apdu_chan *c;
	script s = { .n = 0 };
	unsigned sw = 0;

	add(&s, "\x69\x82", 2);          /* refused in the middle of the chain */
	add(&s, "", 0);                  /* a card gone */
	add(&s, "\x90", 1);              /* no status word */
	ck_assert_int_eq(tr_apdu_chan_new(&c, fake, &s, "fake reader", 0), 0);
	ck_assert_int_eq(tr_apdu_exchange(c, "SIGN", hdr, data, sizeof(data), TR_APDU_LE_LONG,
					  &out, &sw), 0);
	ck_assert_uint_eq(sw, 0x6982);
	ck_assert_uint_eq(s.next, 1);
	ck_assert_int_eq(tr_apdu_sw_error(c, sw, "SIGN"), TR_TOKEN_ENOT_LOGGED_IN);
	ck_assert_msg(strstr(tr_error_last(), "fake reader") && strstr(tr_error_last(), "6982"),
		      "%s", tr_error_last());
	ck_assert_int_eq(tr_apdu_command(c, "VERIFY", 0x20, 0, 0x80, NULL, 0, &sw),
			 TR_TOKEN_EREMOVED);
	ck_assert_int_eq(tr_apdu_command(c, "VERIFY", 0x20, 0, 0x80, NULL, 0, &sw), TR_EIO);
	ck_assert_int_eq(tr_apdu_sw_error(c, 0x63C2, "VERIFY"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_msg(strstr(tr_error_last(), "2 tries left"), "%s", tr_error_last());
	ck_assert_int_eq(tr_apdu_sw_error(c, 0x6983, "VERIFY"), TR_TOKEN_EPIN_LOCKED);
	ck_assert_int_eq(tr_apdu_sw_error(c, 0x6A82, "GET DATA"), TR_ENOTFOUND);
	ck_assert_int_eq(tr_apdu_sw_error(c, 0x6F00, "GET DATA"), TR_EIO);
	ck_assert_int_eq(tr_apdu_sw_error(c, 0x9000, "GET DATA"), 0);
	ck_assert_str_eq(tr_apdu_sw_meaning(0x6A80), "incorrect data");
	tr_buf_free(&out);
	tr_apdu_chan_free(c);
}
END_TEST

START_TEST(test_piv_parsers)
{
	uint8_t buf[128], inner[96], der[80];
	size_t off = 0, ioff = 0, doff = 0, len;
	const unsigned char *p;

	/* 7C { 82 (DER SEQUENCE { INTEGER 1, INTEGER 2 }) } */
	ck_assert_int_eq(tr_tlv_put(der, sizeof(der), &doff, 0x30, "\x02\x01\x01\x02\x01\x02", 6),
			 0);
	ck_assert_int_eq(tr_tlv_put(inner, sizeof(inner), &ioff, 0x82, der, doff), 0);
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x7C, inner, ioff), 0);
	ck_assert_int_eq(tr_piv_parse_signature(buf, off, TR_SIGN_ECDSA_SHA256, "r", &p, &len), 0);
	ck_assert(len == doff && p[0] == 0x30);
	/* The same is no RSA-2048 signature, and trailing bytes are malformed. */
	ck_assert_int_eq(tr_piv_parse_signature(buf, off, TR_SIGN_RSA_PKCS1_SHA256, "r", &p, &len),
			 TR_EIO);
	ck_assert_int_eq(tr_piv_parse_signature(buf, off + 1, TR_SIGN_ECDSA_SHA256, "r", &p,
						&len), TR_EIO);
	ck_assert_msg(strstr(tr_error_last(), "not one 7C template"), "%s", tr_error_last());
	/* A 7C without 82. */
	off = 0;
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x7C, "\x81\x00", 2), 0);
	ck_assert_int_eq(tr_piv_parse_signature(buf, off, TR_SIGN_ECDSA_SHA256, "r", &p, &len),
			 TR_EIO);
	ck_assert_msg(strstr(tr_error_last(), "no signature (82)"), "%s", tr_error_last());

	/* 53 { 70 cert, 71 01 }: compressed, refused; 71 00 taken. */
	off = ioff = 0;
	ck_assert_int_eq(tr_tlv_put(inner, sizeof(inner), &ioff, 0x70, "\x30\x00", 2), 0);
	ck_assert_int_eq(tr_tlv_put(inner, sizeof(inner), &ioff, 0x71, "\x01", 1), 0);
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x53, inner, ioff), 0);
	ck_assert_int_eq(tr_piv_parse_certificate(buf, off, "r", &p, &len), TR_EIO);
	ck_assert_msg(strstr(tr_error_last(), "compressed"), "%s", tr_error_last());
	inner[ioff - 1] = 0x00;
	memcpy(buf + off - ioff, inner, ioff);
	ck_assert_int_eq(tr_piv_parse_certificate(buf, off, "r", &p, &len), 0);
	ck_assert(len == 2 && p[0] == 0x30);
	/* Indefinite length inside the object. */
	buf[off - ioff + 1] = 0x80;
	ck_assert_int_eq(tr_piv_parse_certificate(buf, off, "r", &p, &len), TR_EIO);

	/* SELECT: 61 with a malformed template inside; then a good one. */
	ck_assert_int_eq(tr_piv_parse_select((const unsigned char *)"\x61\x03\x4F\x05\x00", 5,
					     "r"), TR_EIO);
	ck_assert_int_eq(tr_piv_parse_select((const unsigned char *)"\x61\x03\x4F\x01\x00", 5,
					     "r"), 0);
	/* The management key's challenge: exactly 8 bytes. */
	ck_assert_int_eq(tr_piv_parse_challenge((const unsigned char *)"\x7C\x0A\x81\x08"
						"12345678", 12, "r", &p), 0);
	ck_assert(memcmp(p, "12345678", 8) == 0);
	ck_assert_int_eq(tr_piv_parse_challenge((const unsigned char *)"\x7C\x09\x81\x07"
						"1234567", 11, "r", &p), TR_EIO);
}
END_TEST

Suite *pcsc_apdu_suite(void)
{
	Suite *s = suite_create("pcsc_apdu");
	TCase *tc = tcase_create("fake card");

	tcase_add_test(tc, test_extended_then_short_chained);
	tcase_add_test(tc, test_refusal_mid_chain_and_outcomes);
	tcase_add_test(tc, test_piv_parsers);
	suite_add_tcase(s, tc);
	return s;
}
