/*
 * Unit tests of common/tlv: the BER-TLV of the PIV driver and the virtual
 * card. Long-form lengths 81/82/83, indefinite 80 and 84 refused,
 * truncation at every byte, tags of 1-3 bytes and a 4th refused, the
 * nesting limit, writing (in place too) and reading back.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/tlv.h"

/* Reads the single object of buf: 1, 0 or the error, *t filled on 1. */
static int read1(const uint8_t *buf, size_t len, tr_tlv *t)
{
	tr_tlv_reader r;

	tr_tlv_reader_init(&r, buf, len);
	return tr_tlv_next(&r, t);
}

START_TEST(test_lengths)
{
	static uint8_t big[4 + 0x10000];
	const uint8_t s[] = { 0x53, 0x02, 0xAA, 0xBB };
	const uint8_t l81[] = { 0x53, 0x81, 0x01, 0xCC };
	const uint8_t l82[] = { 0x53, 0x82, 0x00, 0x02, 0xCC, 0xDD };
	tr_tlv t;

	ck_assert_int_eq(read1(s, sizeof(s), &t), 1);
	ck_assert(t.tag == 0x53 && t.len == 2 && t.val == s + 2 && !t.constructed);
	/* Non-minimal long forms are BER and read as such. */
	ck_assert_int_eq(read1(l81, sizeof(l81), &t), 1);
	ck_assert(t.len == 1 && t.val[0] == 0xCC);
	ck_assert_int_eq(read1(l82, sizeof(l82), &t), 1);
	ck_assert(t.len == 2 && t.val[1] == 0xDD);
	/* 83: a value of 65536 bytes. */
	big[0] = 0x70;
	big[1] = 0x83;
	big[2] = 0x01;
	big[3] = 0x00;
	big[4] = 0x00;
	ck_assert_int_eq(read1(big, 5 + 0x10000 - 1, &t), TR_EPARSE);
	ck_assert_int_eq(read1(big, sizeof(big), &t), TR_EPARSE); /* 1 byte short */
	{
		static uint8_t b83[5 + 0x10000];

		memcpy(b83, big, 5);
		ck_assert_int_eq(read1(b83, sizeof(b83), &t), 1);
		ck_assert(t.len == 0x10000 && t.val == b83 + 5);
	}
}
END_TEST

START_TEST(test_refused_lengths)
{
	const uint8_t indef[] = { 0x30, 0x80, 0x01, 0x00, 0x00, 0x00 };
	const uint8_t l84[] = { 0x53, 0x84, 0x00, 0x00, 0x00, 0x01, 0xAA };
	const uint8_t l85[] = { 0x53, 0x85, 0x00, 0x00, 0x00, 0x00, 0x01, 0xAA };
	tr_tlv t;

	ck_assert_int_eq(read1(indef, sizeof(indef), &t), TR_EPARSE);
	ck_assert_msg(strstr(tr_error_last(), "indefinite") != NULL, "%s", tr_error_last());
	ck_assert_int_eq(read1(l84, sizeof(l84), &t), TR_EPARSE);
	ck_assert_int_eq(read1(l85, sizeof(l85), &t), TR_EPARSE);
}
END_TEST

/* Every proper prefix of a well-formed object is malformed, never read past. */
START_TEST(test_truncated)
{
	const uint8_t objs[][8] = {
		{ 0x53, 0x03, 1, 2, 3 },
		{ 0x53, 0x81, 0x03, 1, 2, 3 },
		{ 0x53, 0x82, 0x00, 0x03, 1, 2, 3 },
		{ 0x53, 0x83, 0x00, 0x00, 0x03, 1, 2, 3 },
		{ 0x7F, 0x49, 0x02, 0x86, 0x00 },
		{ 0x5F, 0xC1, 0x05, 0x01, 0xEE },
	};
	const size_t lens[] = { 5, 6, 7, 8, 5, 5 };
	tr_tlv t;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		ck_assert_int_eq(read1(objs[i], lens[i], &t), 1);
		ck_assert_uint_eq(t.len + (size_t)(t.val - objs[i]), lens[i]);
		for (size_t n = 1; n < lens[i]; n++) {
			uint8_t *copy = malloc(n);

			/* A copy of exactly n bytes: ASan sees a read past it. */
			ck_assert_ptr_nonnull(copy);
			memcpy(copy, objs[i], n);
			ck_assert_msg(read1(copy, n, &t) == TR_EPARSE, "object %zu cut at %zu read",
				      i, n);
			free(copy);
		}
	}
	ck_assert_int_eq(read1(objs[0], 0, &t), 0);
	ck_assert_int_eq(read1(NULL, 0, &t), 0);
}
END_TEST

START_TEST(test_tags)
{
	const uint8_t t1[] = { 0x82, 0x00 };
	const uint8_t t2[] = { 0x7F, 0x49, 0x00 };
	const uint8_t t3[] = { 0x5F, 0xC1, 0x05, 0x01, 0x00 };
	const uint8_t t4[] = { 0x5F, 0xC1, 0x85, 0x01, 0x00, 0x00 };
	tr_tlv t;

	ck_assert_int_eq(read1(t1, sizeof(t1), &t), 1);
	ck_assert(t.tag == 0x82 && t.len == 0);
	ck_assert_int_eq(read1(t2, sizeof(t2), &t), 1);
	ck_assert(t.tag == 0x7F49 && t.constructed);
	ck_assert_int_eq(read1(t3, sizeof(t3), &t), 1);
	ck_assert(t.tag == 0x5FC105 && t.len == 1 && !t.constructed);
	ck_assert_int_eq(read1(t4, sizeof(t4), &t), TR_EPARSE);
	ck_assert_msg(strstr(tr_error_last(), "3 bytes") != NULL, "%s", tr_error_last());
}
END_TEST

START_TEST(test_sequence_one_find)
{
	const uint8_t seq[] = { 0x4F, 0x01, 0xAA, 0x79, 0x03, 0x4F, 0x01, 0xBB, 0x50, 0x00 };
	const uint8_t trail[] = { 0x53, 0x01, 0xAA, 0x00 };
	tr_tlv_reader r;
	tr_tlv t;

	tr_tlv_reader_init(&r, seq, sizeof(seq));
	ck_assert_int_eq(tr_tlv_next(&r, &t), 1);
	ck_assert(t.tag == 0x4F && t.offset == 0);
	ck_assert_int_eq(tr_tlv_next(&r, &t), 1);
	ck_assert(t.tag == 0x79 && t.offset == 3 && t.constructed);
	ck_assert_int_eq(tr_tlv_next(&r, &t), 1);
	ck_assert(t.tag == 0x50 && t.len == 0);
	ck_assert(tr_tlv_reader_done(&r));
	ck_assert_int_eq(tr_tlv_next(&r, &t), 0);

	ck_assert_int_eq(tr_tlv_find(seq, sizeof(seq), 0x79, &t), 1);
	ck_assert(t.len == 3 && t.val[2] == 0xBB);
	ck_assert_int_eq(tr_tlv_find(seq, sizeof(seq), 0x99, &t), 0);
	ck_assert_int_eq(tr_tlv_one(seq, 3, 0x4F, &t), 0);
	ck_assert_int_eq(tr_tlv_one(seq, sizeof(seq), 0x4F, &t), TR_EPARSE); /* more after */
	ck_assert_int_eq(tr_tlv_one(seq, 3, 0x53, &t), TR_EPARSE);          /* another tag */
	ck_assert_int_eq(tr_tlv_one(trail, sizeof(trail), 0x53, &t), TR_EPARSE);
	ck_assert_int_eq(tr_tlv_one(trail, 0, 0x53, &t), TR_EPARSE);
}
END_TEST

/* n constructed 7C levels around an 82 00. */
static size_t nested(uint8_t *buf, size_t cap, unsigned n)
{
	size_t off = 0;

	ck_assert_int_eq(tr_tlv_put(buf, cap, &off, 0x82, NULL, 0), 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t tmp[64];
		size_t o = 0;

		ck_assert_int_eq(tr_tlv_put(tmp, sizeof(tmp), &o, 0x7C, buf, off), 0);
		memcpy(buf, tmp, o);
		off = o;
	}
	return off;
}

START_TEST(test_depth)
{
	uint8_t buf[64];
	const uint8_t bad_inside[] = { 0x7C, 0x03, 0x82, 0x05, 0x00 };
	size_t len;

	len = nested(buf, sizeof(buf), 8);
	ck_assert_int_eq(tr_tlv_check(buf, len, 8), 0);
	ck_assert_int_eq(tr_tlv_check(buf, len, 7), TR_EPARSE);
	ck_assert_msg(strstr(tr_error_last(), "nested") != NULL, "%s", tr_error_last());
	ck_assert_int_eq(tr_tlv_check(buf, len, 0), TR_EPARSE);
	len = nested(buf, sizeof(buf), 0);
	ck_assert_int_eq(tr_tlv_check(buf, len, 0), 0);
	/* Malformed inside a well-formed outside, with its offset from the top. */
	ck_assert_int_eq(tr_tlv_check(bad_inside, sizeof(bad_inside), 8), TR_EPARSE);
	ck_assert_msg(strstr(tr_error_last(), "offset 2") != NULL, "%s", tr_error_last());
}
END_TEST

START_TEST(test_put_roundtrip)
{
	static uint8_t val[0x10000], buf[0x10000 + 64];
	const size_t sizes[] = { 0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000 };
	const unsigned tags[] = { 0x53, 0x7F49, 0x5FC105 };
	const size_t hdr[] = { 2, 2, 2, 3, 3, 4, 4, 5 };

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)i;
	for (size_t ti = 0; ti < 3; ti++)
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t off = 0;
			tr_tlv t;

			ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, tags[ti], val, sizes[si]),
					 0);
			ck_assert_uint_eq(off, hdr[si] + ti + sizes[si]);
			ck_assert_uint_eq(tr_tlv_header_len(tags[ti], sizes[si]), hdr[si] + ti);
			ck_assert_int_eq(tr_tlv_one(buf, off, tags[ti], &t), 0);
			ck_assert(t.len == sizes[si] && !memcmp(t.val, val, t.len));
		}
}
END_TEST

START_TEST(test_put_limits)
{
	uint8_t buf[16];
	size_t off = 0;
	tr_buf b = TR_BUF_INIT;
	tr_tlv t;

	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x53, NULL, 14), 0);
	ck_assert_uint_eq(off, 2);     /* header only */
	off = 0;
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x53, buf, 15), -1);
	ck_assert_uint_eq(off, 0);
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x01020304, NULL, 0), -1);
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x53, NULL, 0x1000000), -1);
	off = 17;
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x53, NULL, 0), -1);

	/* In place: the value already where the header goes. */
	memcpy(buf, "\x82\x01\x07", 3);
	off = 0;
	ck_assert_int_eq(tr_tlv_put(buf, sizeof(buf), &off, 0x7C, buf, 3), 0);
	ck_assert_int_eq(tr_tlv_one(buf, off, 0x7C, &t), 0);
	ck_assert(t.len == 3 && t.val[0] == 0x82 && t.val[2] == 0x07);

	/* 70 is constructed: its value is itself checked. */
	ck_assert_int_eq(tr_tlv_buf_put(&b, 0x70, "\x04\x01\x00", 3), 0);
	ck_assert_int_eq(tr_tlv_buf_put(&b, 0xFE, NULL, 0), 0);
	ck_assert_int_eq(tr_tlv_buf_put(&b, 0x01020304, NULL, 0), TR_EINVAL);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_int_eq(tr_tlv_find(b.data, b.len, 0xFE, &t), 1);
	ck_assert_int_eq(tr_tlv_check(b.data, b.len, 1), 0);
	tr_buf_free(&b);
}
END_TEST

Suite *tlv_suite(void)
{
	Suite *s = suite_create("tlv");
	TCase *tc = tcase_create("ber");

	tcase_add_test(tc, test_lengths);
	tcase_add_test(tc, test_refused_lengths);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_tags);
	tcase_add_test(tc, test_sequence_one_find);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_put_roundtrip);
	tcase_add_test(tc, test_put_limits);
	suite_add_tcase(s, tc);
	return s;
}
