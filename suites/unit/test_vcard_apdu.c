/* Unit tests of the virtual card's APDU parser and TLV helpers. */
#include <check.h>
#include <string.h>

#include "emulators/vcard/vc_apdu.h"

static int parse(vc_apdu *a, const uint8_t *b, size_t n)
{
	return vc_apdu_parse(a, b, n);
}

START_TEST(test_cases_short)
{
	vc_apdu a;
	const uint8_t c1[] = { 0x00, 0xA4, 0x04, 0x00 };
	const uint8_t c2[] = { 0x00, 0xC0, 0x00, 0x00, 0x00 };
	const uint8_t c3[] = { 0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32 };
	const uint8_t c4[] = { 0x00, 0xCB, 0x3F, 0xFF, 0x01, 0x7E, 0x10 };

	ck_assert_int_eq(parse(&a, c1, sizeof(c1)), 0);
	ck_assert(!a.has_le && a.lc == 0);
	ck_assert_int_eq(parse(&a, c2, sizeof(c2)), 0);
	ck_assert(a.has_le && a.le == 256 && a.lc == 0);
	ck_assert_int_eq(parse(&a, c3, sizeof(c3)), 0);
	ck_assert(!a.has_le && a.lc == 2 && a.data[1] == 0x32);
	ck_assert_int_eq(parse(&a, c4, sizeof(c4)), 0);
	ck_assert(a.has_le && a.le == 0x10 && a.lc == 1 && !a.extended);
}
END_TEST

START_TEST(test_cases_extended)
{
	vc_apdu a;
	const uint8_t e2[] = { 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00 };
	const uint8_t e3[] = { 0x00, 0x87, 0x07, 0x9A, 0x00, 0x00, 0x02, 0xAA, 0xBB };
	const uint8_t e4[] = { 0x00, 0x87, 0x07, 0x9A, 0x00, 0x00, 0x01, 0xAA, 0x01, 0x02 };

	ck_assert_int_eq(parse(&a, e2, sizeof(e2)), 0);
	ck_assert(a.extended && a.has_le && a.le == 65536);
	ck_assert_int_eq(parse(&a, e3, sizeof(e3)), 0);
	ck_assert(a.extended && !a.has_le && a.lc == 2);
	ck_assert_int_eq(parse(&a, e4, sizeof(e4)), 0);
	ck_assert(a.extended && a.le == 0x102 && a.lc == 1);
}
END_TEST

START_TEST(test_bad_lengths)
{
	vc_apdu a;
	const uint8_t t3[] = { 0x00, 0xA4, 0x04 };
	const uint8_t lc_long[] = { 0x00, 0x20, 0x00, 0x80, 0x05, 0x31 };
	const uint8_t lc_short[] = { 0x00, 0x20, 0x00, 0x80, 0x01, 0x31, 0x32, 0x33 };
	const uint8_t ext6[] = { 0x00, 0x20, 0x00, 0x80, 0x00, 0x01 };
	const uint8_t ext_lc0[] = { 0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x00, 0x01 };
	const uint8_t ext_bad[] = { 0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x03, 0x01 };

	ck_assert_int_eq(parse(&a, t3, sizeof(t3)), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, NULL, 0), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, lc_long, sizeof(lc_long)), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, lc_short, sizeof(lc_short)), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, ext6, sizeof(ext6)), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, ext_lc0, sizeof(ext_lc0)), VC_SW_WRONG_LENGTH);
	ck_assert_int_eq(parse(&a, ext_bad, sizeof(ext_bad)), VC_SW_WRONG_LENGTH);
}
END_TEST

START_TEST(test_tlv_roundtrip)
{
	uint8_t buf[400], val[300];
	size_t off = 0, vlen;
	vc_tlv_reader r;
	const uint8_t *v;
	unsigned tag;

	memset(val, 0x42, sizeof(val));
	ck_assert_int_eq(vc_tlv_put(buf, sizeof(buf), &off, 0x5F2F, val, 3), 0);
	ck_assert_int_eq(vc_tlv_put(buf, sizeof(buf), &off, 0x81, val, 200), 0);
	ck_assert_int_eq(vc_tlv_put(buf, sizeof(buf), &off, 0x82, NULL, 0), 0);
	ck_assert_int_eq(vc_tlv_put(buf, sizeof(buf), &off, 0x70, val, 300), -1);
	vc_tlv_init(&r, buf, off);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vlen), 1);
	ck_assert(tag == 0x5F2F && vlen == 3);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vlen), 1);
	ck_assert(tag == 0x81 && vlen == 200 && v[199] == 0x42);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vlen), 1);
	ck_assert(tag == 0x82 && vlen == 0);
	ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vlen), 0);
}
END_TEST

START_TEST(test_tlv_malformed)
{
	const uint8_t past[] = { 0x81, 0x05, 0x01 };
	const uint8_t len84[] = { 0x81, 0x84, 0, 0, 0, 1 };
	const uint8_t tag3[] = { 0x5F, 0xC1 };
	const uint8_t nolen[] = { 0x81 };
	const uint8_t *bad[] = { past, len84, tag3, nolen };
	const size_t lens[] = { sizeof(past), sizeof(len84), sizeof(tag3), sizeof(nolen) };
	vc_tlv_reader r;
	const uint8_t *v;
	size_t vlen;
	unsigned tag;

	for (int i = 0; i < 4; i++) {
		vc_tlv_init(&r, bad[i], lens[i]);
		ck_assert_int_eq(vc_tlv_next(&r, &tag, &v, &vlen), -1);
	}
}
END_TEST

Suite *vcard_apdu_suite(void)
{
	Suite *s = suite_create("vcard_apdu");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_cases_short);
	tcase_add_test(tc, test_cases_extended);
	tcase_add_test(tc, test_bad_lengths);
	tcase_add_test(tc, test_tlv_roundtrip);
	tcase_add_test(tc, test_tlv_malformed);
	suite_add_tcase(s, tc);
	return s;
}
