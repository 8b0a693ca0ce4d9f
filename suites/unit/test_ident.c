/* Unit tests of fixtures/ident: check characters and generated identities. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/utf8.h"
#include "common/error.h"
#include "fixtures/ident.h"

#define N_UNITS 600 /* more than the 256 brand x trade names: covers cycling */

static const char *const provinces[] = { "suzhou", "hebei", "sichuan", "hunan" };

/*
 * Published USCCs of listed companies (annual reports, business licences):
 * Huawei Technologies, Tencent Technology (Shenzhen), Alibaba (China),
 * Xiaomi Technology, Kweichow Moutai, Ping An Bank, plus the example many
 * validators quote from Fuzhou. An independent check of the algorithm.
 */
static const char *const published_uscc[] = {
	"914403001922038216",
	"9144030071526726XG",
	"91330100799655058B",
	"91110108551385082Q",
	"91520000214434146R",
	"91440300192185379H",
	"91350100M000100Y43",
};

/* The example of GB 11643-1999 itself. */
static const char *const published_id = "11010519491231002X";

static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

START_TEST(test_uscc_published)
{
	size_t i;
	char check, org[10];

	for (i = 0; i < sizeof(published_uscc) / sizeof(published_uscc[0]); i++) {
		const char *c = published_uscc[i];

		ck_assert_msg(fx_uscc_valid(c), "%s rejected", c);
		ck_assert_int_eq(fx_uscc_check_char(c, &check), 0);
		ck_assert_int_eq(check, c[17]);
		/* The embedded organization code carries its own check. */
		memcpy(org, c + 8, 9);
		org[9] = '\0';
		ck_assert_msg(fx_orgcode_valid(org), "org code %s rejected", org);
	}
}
END_TEST

START_TEST(test_uscc_one_char_changes)
{
	size_t i, pos, k;
	char buf[FX_USCC_LEN + 1];

	/* 31 is prime and no weight is 0 mod 31: every substitution shows. */
	for (i = 0; i < sizeof(published_uscc) / sizeof(published_uscc[0]); i++) {
		for (pos = 0; pos < FX_USCC_LEN; pos++) {
			for (k = 0; uscc_alphabet[k]; k++) {
				strcpy(buf, published_uscc[i]);
				if (buf[pos] == uscc_alphabet[k])
					continue;
				buf[pos] = uscc_alphabet[k];
				ck_assert_msg(!fx_uscc_valid(buf), "%s accepted", buf);
			}
		}
		/* Adjacent transpositions of different characters, too. */
		for (pos = 0; pos + 1 < FX_USCC_LEN; pos++) {
			strcpy(buf, published_uscc[i]);
			if (buf[pos] == buf[pos + 1])
				continue;
			buf[pos] = published_uscc[i][pos + 1];
			buf[pos + 1] = published_uscc[i][pos];
			ck_assert_msg(!fx_uscc_valid(buf), "%s accepted", buf);
		}
	}
}
END_TEST

START_TEST(test_uscc_malformed)
{
	char check;

	ck_assert(!fx_uscc_valid(NULL));
	ck_assert(!fx_uscc_valid(""));
	ck_assert(!fx_uscc_valid("91440300192203821"));   /* 17 */
	ck_assert(!fx_uscc_valid("9144030019220382160")); /* 19 */
	ck_assert(!fx_uscc_valid("9144030071526726xg"));  /* lower case */
	/* I, O, S, V, Z are not in the alphabet. */
	ck_assert_int_eq(fx_uscc_check_char("91440300I92203821", &check), TR_EINVAL);
	ck_assert_int_eq(fx_uscc_check_char("91440300O92203821", &check), TR_EINVAL);
	ck_assert_int_eq(fx_uscc_check_char("9144030S192203821", &check), TR_EINVAL);
	ck_assert_int_eq(fx_uscc_check_char("914403001922038", &check), TR_EINVAL);
	ck_assert_int_eq(fx_uscc_check_char(NULL, &check), TR_EINVAL);
	ck_assert(!fx_orgcode_valid("19220382"));
	ck_assert(!fx_orgcode_valid("192203822"));
	ck_assert(fx_orgcode_valid("192203821"));
}
END_TEST

START_TEST(test_resident_id_published)
{
	char check;
	char buf[FX_RESIDENT_ID_LEN + 1];
	size_t pos;
	char d;

	ck_assert(fx_resident_id_valid(published_id));
	ck_assert_int_eq(fx_resident_id_check_char(published_id, &check), 0);
	ck_assert_int_eq(check, 'X');
	for (pos = 0; pos < FX_RESIDENT_ID_LEN; pos++) {
		for (d = '0'; d <= '9' + 1; d++) {
			char c = d > '9' ? 'X' : d;

			strcpy(buf, published_id);
			if (buf[pos] == c)
				continue;
			buf[pos] = c;
			ck_assert_msg(!fx_resident_id_valid(buf), "%s accepted", buf);
		}
	}
	ck_assert(!fx_resident_id_valid("11010519491231002x"));
	ck_assert(!fx_resident_id_valid("11010519491231002"));
	ck_assert(!fx_resident_id_valid(NULL));
	ck_assert_int_eq(fx_resident_id_check_char("1101051949123100A", &check),
			 TR_EINVAL);
}
END_TEST

static int utf8_valid(const char *s)
{
	return tr_utf8_valid(s, strlen(s));
}

/* The one UTF-8 check of the rig: what it refuses. */
START_TEST(utf8_check)
{
	ck_assert(tr_utf8_valid("苏州 ftsccactrl\xC2\xA0V3", strlen("苏州 ftsccactrl\xC2\xA0V3")));
	ck_assert(!tr_utf8_valid("\xE8\x8B", 2));             /* cut inside a character */
	ck_assert(!tr_utf8_valid("\xC0\xAF", 2));             /* overlong '/' */
	ck_assert(!tr_utf8_valid("\xED\xA0\x80", 3));         /* a surrogate */
	ck_assert(!tr_utf8_valid("\xF4\x90\x80\x80", 4));     /* past U+10FFFF */
	ck_assert(!tr_utf8_valid("\x80", 1));                 /* a lone continuation */
	ck_assert(tr_utf8_valid("", 0));
}
END_TEST

static int all_digits(const char *s, size_t len)
{
	size_t i;

	if (strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Birth date: a real calendar day, the person 18 or older today. */
static void check_birth_date(const char *id)
{
	struct tm tm = { 0 };
	int y, m, d;
	time_t t, now = time(NULL);
	struct tm today;

	ck_assert_int_eq(sscanf(id + 6, "%4d%2d%2d", &y, &m, &d), 3);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = 12;
	t = timegm(&tm);
	ck_assert_msg(tm.tm_year == y - 1900 && tm.tm_mon == m - 1 &&
		      tm.tm_mday == d, "%s: no such date", id);
	(void)t;
	gmtime_r(&now, &today);
	ck_assert_msg(today.tm_year + 1900 - y > 18, "%s: not an adult", id);
	ck_assert_int_ge(y, 1940);
}

static void check_unit(const fx_unit *u, const char *province)
{
	static const struct {
		const char *province, *area, *city1, *city2;
	} expect[] = {
		{ "suzhou", "320505", "苏州", "苏州" },
		{ "hebei", "130102", "河北", "石家庄" },
		{ "sichuan", "510104", "成都", "四川" },
		{ "hunan", "430102", "长沙", "湖南" },
	};
	char org[10];
	size_t i;

	for (i = 0; strcmp(expect[i].province, province) != 0; i++)
		;
	ck_assert_str_eq(u->province, province);

	ck_assert_msg(utf8_valid(u->unit_name), "unit name not UTF-8");
	ck_assert_msg(starts_with(u->unit_name, expect[i].city1) ||
		      starts_with(u->unit_name, expect[i].city2),
		      "%s: wrong city", u->unit_name);
	ck_assert_msg(ends_with(u->unit_name, "有限公司"), "%s", u->unit_name);

	ck_assert_msg(fx_uscc_valid(u->uscc), "%s", u->uscc);
	memcpy(org, u->uscc + 8, 9);
	org[9] = '\0';
	ck_assert_msg(fx_orgcode_valid(org), "%s: org code", u->uscc);
	ck_assert_msg(strncmp(u->uscc + 2, expect[i].area, 6) == 0, "%s", u->uscc);

	ck_assert_msg(fx_resident_id_valid(u->operator_id), "%s", u->operator_id);
	ck_assert_msg(strncmp(u->operator_id, expect[i].area, 6) == 0, "%s",
		      u->operator_id);
	check_birth_date(u->operator_id);

	ck_assert_msg(all_digits(u->operator_phone, 11), "%s", u->operator_phone);
	ck_assert_msg(starts_with(u->operator_phone, "13") ||
		      starts_with(u->operator_phone, "15") ||
		      starts_with(u->operator_phone, "18"), "%s",
		      u->operator_phone);

	ck_assert_msg(all_digits(u->ss_number, strlen(u->ss_number)) &&
		      strlen(u->ss_number) >= 8, "%s", u->ss_number);
	/* The housing-fund number (JS-E14) is digits too, never the ss one. */
	ck_assert_msg(all_digits(u->hf_number, strlen(u->hf_number)) &&
		      strlen(u->hf_number) == 13 && strlen(u->ss_number) == 12,
		      "%s %s", u->hf_number, u->ss_number);
	ck_assert_int_eq(strncmp(u->hf_number, u->ss_number, 4), 0);
	ck_assert_str_ne(u->hf_number, u->ss_number);

	ck_assert_msg(utf8_valid(u->operator_name), "operator not UTF-8");
	/* Two to four Chinese characters, 3 bytes each. */
	ck_assert_int_ge(strlen(u->operator_name), 6);
	ck_assert_int_le(strlen(u->operator_name), 12);
}

START_TEST(test_units_valid_and_distinct)
{
	const char *province = provinces[_i];
	fx_unit *units = calloc(N_UNITS, sizeof(*units));
	unsigned i, j;

	ck_assert_ptr_nonnull(units);
	for (i = 0; i < N_UNITS; i++) {
		ck_assert_int_eq(fx_unit_generate(&units[i], 42, province, i), 0);
		check_unit(&units[i], province);
	}
	for (i = 0; i < N_UNITS; i++) {
		for (j = i + 1; j < N_UNITS; j++) {
			ck_assert_str_ne(units[i].unit_name, units[j].unit_name);
			ck_assert_str_ne(units[i].uscc, units[j].uscc);
			ck_assert_str_ne(units[i].operator_id, units[j].operator_id);
			ck_assert_str_ne(units[i].operator_phone,
					 units[j].operator_phone);
			ck_assert_str_ne(units[i].ss_number, units[j].ss_number);
			ck_assert_str_ne(units[i].hf_number, units[j].hf_number);
		}
	}
	free(units);
}
END_TEST

START_TEST(test_units_deterministic)
{
	fx_unit a, b;
	unsigned p, i;
	int differ = 0;

	for (p = 0; p < 4; p++) {
		for (i = 0; i < 20; i++) {
			ck_assert_int_eq(fx_unit_generate(&a, 7, provinces[p], i), 0);
			ck_assert_int_eq(fx_unit_generate(&b, 7, provinces[p], i), 0);
			ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
			ck_assert_int_eq(fx_unit_generate(&b, 8, provinces[p], i), 0);
			differ += strcmp(a.uscc, b.uscc) != 0;
		}
	}
	/* Another seed gives other units. */
	ck_assert_int_ge(differ, 75);

	/* Pinned: a change of the generator shows here, not in a portal run. */
	ck_assert_int_eq(fx_unit_generate(&a, 1, "hebei", 0), 0);
	ck_assert_str_eq(a.uscc, "91130102MAXGYHBG47");
	ck_assert_str_eq(a.operator_id, "130102196807283983");
	ck_assert_str_eq(a.operator_phone, "15956808343");
}
END_TEST

START_TEST(test_units_bad_arguments)
{
	fx_unit u;

	ck_assert_int_eq(fx_unit_generate(&u, 1, "beijing", 0), TR_EINVAL);
	ck_assert(strstr(tr_error_last(), "beijing") != NULL);
	ck_assert_int_eq(fx_unit_generate(&u, 1, NULL, 0), TR_EINVAL);
	ck_assert_int_eq(fx_unit_generate(NULL, 1, "hunan", 0), TR_EINVAL);
}
END_TEST

Suite *ident_suite(void)
{
	Suite *s = suite_create("ident");
	TCase *tc = tcase_create("check_chars");
	TCase *gen = tcase_create("generate");

	tcase_add_test(tc, utf8_check);
	tcase_add_test(tc, test_uscc_published);
	tcase_add_test(tc, test_uscc_one_char_changes);
	tcase_add_test(tc, test_uscc_malformed);
	tcase_add_test(tc, test_resident_id_published);
	suite_add_tcase(s, tc);

	tcase_set_timeout(gen, 30);
	tcase_add_loop_test(gen, test_units_valid_and_distinct, 0, 4);
	tcase_add_test(gen, test_units_deterministic);
	tcase_add_test(gen, test_units_bad_arguments);
	suite_add_tcase(s, gen);
	return s;
}
