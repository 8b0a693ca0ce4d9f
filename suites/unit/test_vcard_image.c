/*
 * Unit tests of the virtual card's image (persistence, atomic writes,
 * format errors), its provisioning from the fixtures and the control
 * commands of the card process.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/vcard/vc_image.h"
#include "emulators/vcard/vc_provision.h"
#include "emulators/vcard/vc_server.h"
#include "fixtures/pki.h"

static char dir[64];
static char path[128];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tokenrig-vcimg-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/card.img", dir);
}

static void teardown(void)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static vc_image *ec_image(vc_profile profile)
{
	static const uint8_t serial[VC_SERIAL_LEN] = { 0xAA, 0xBB };
	vc_image *img = NULL;
	EVP_PKEY *ec = NULL, *sm2 = NULL;

	ck_assert_int_eq(vc_image_new(&img, profile, serial), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &ec), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_SM2, &sm2), 0);
	ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9A, ec, NULL), 0);
	ck_assert_int_eq(vc_image_set_slot(img, VC_SLOT_9D, sm2, NULL), 0);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(sm2);
	return img;
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

START_TEST(test_roundtrip)
{
	vc_image *img = ec_image(VC_PROFILE_SILVER), *back = NULL;
	unsigned left, max;
	struct stat st;

	ck_assert_int_eq(vc_image_set_limit(img, VC_REF_PIN, 4), 0);
	ck_assert_int_eq(vc_image_set_ref(img, VC_REF_PIN, "24680X"), 0);
	ck_assert_int_eq(vc_image_save(img, path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(count_files(), 1);                /* no temp file left */
	ck_assert_int_eq(vc_image_load(&back, path), 0);
	ck_assert_int_eq(vc_image_profile(back), VC_PROFILE_SILVER);
	ck_assert_mem_eq(vc_image_serial(back), vc_image_serial(img), VC_SERIAL_LEN);
	ck_assert_int_eq(vc_image_slot_alg(back, VC_SLOT_9A), VC_ALG_P256);
	ck_assert_int_eq(vc_image_slot_alg(back, VC_SLOT_9D), VC_ALG_SM2);
	ck_assert_int_eq(vc_image_slot_alg(back, VC_SLOT_9C), VC_ALG_NONE);
	ck_assert_int_eq(EVP_PKEY_eq(vc_image_slot_key(back, VC_SLOT_9D),
				     vc_image_slot_key(img, VC_SLOT_9D)), 1);
	ck_assert(EVP_PKEY_is_a(vc_image_slot_key(back, VC_SLOT_9D), "SM2"));
	vc_image_tries(back, VC_REF_PIN, &left, &max);
	ck_assert_uint_eq(left, 4);
	ck_assert_uint_eq(max, 4);
	vc_image_free(back);
	vc_image_free(img);
}
END_TEST

START_TEST(test_counters_persist)
{
	vc_image *img = ec_image(VC_PROFILE_SILVER), *back = NULL;
	uint8_t wrong[VC_REF_LEN] = { '0', '0', '0', '0', '0', '0', 0xFF, 0xFF };
	uint8_t right[VC_REF_LEN] = { '1', '2', '3', '4', '5', '6', 0xFF, 0xFF };
	unsigned left;

	ck_assert_int_eq(vc_image_save(img, path), 0);
	ck_assert_int_eq(vc_image_check_ref(img, VC_REF_PIN, wrong, &left), VC_CHECK_WRONG);
	ck_assert_uint_eq(left, 5);
	/* A pulled card (new process) sees the decrement. */
	ck_assert_int_eq(vc_image_load(&back, path), 0);
	vc_image_tries(back, VC_REF_PIN, &left, NULL);
	ck_assert_uint_eq(left, 5);
	vc_image_free(back);
	ck_assert_int_eq(vc_image_check_ref(img, VC_REF_PIN, right, &left), VC_CHECK_OK);
	ck_assert_int_eq(vc_image_load(&back, path), 0);
	vc_image_tries(back, VC_REF_PIN, &left, NULL);
	ck_assert_uint_eq(left, 6);
	vc_image_free(back);
	ck_assert_int_eq(count_files(), 1);
	/* A save that cannot happen is reported, not ignored. */
	ck_assert_int_eq(vc_image_save(img, "/nonexistent-dir/x.img"), TR_EIO);
	vc_image_free(img);
}
END_TEST

START_TEST(test_parse_errors)
{
	vc_image *img = ec_image(VC_PROFILE_SILVER);
	vc_image *back = NULL;
	char *text = NULL, *cut;
	size_t len;

	ck_assert_int_eq(vc_image_format(img, &text, &len), 0);
	ck_assert_int_eq(vc_image_parse(&back, text, len), 0);
	vc_image_free(back);
	back = NULL;
	/* Truncations anywhere: never accepted (no 'end' line). */
	for (size_t n = 0; n < len - 1; n += 97)
		ck_assert_int_eq(vc_image_parse(&back, text, n), TR_EPARSE);
	ck_assert_int_eq(vc_image_parse(&back, "garbage\n", 8), TR_EPARSE);
	text[21] = '2';                            /* "tokenrig-vcard-image 2" */
	ck_assert_int_eq(vc_image_parse(&back, text, len), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "version"));
	text[21] = '1';
	cut = strstr(text, "pin-tries");
	cut[10] = '9';                             /* left > max: refused */
	ck_assert_int_eq(vc_image_parse(&back, text, len), TR_EPARSE);
	ck_assert_ptr_null(back);
	free(text);
	ck_assert_int_eq(vc_image_load(&back, "/nonexistent.img"), TR_ENOTFOUND);
	vc_image_free(img);
}
END_TEST

START_TEST(test_provision)
{
	char pki_dir[128], pin[16];
	fx_pki *pki = NULL;
	fx_unit unit;
	vc_image *img = NULL;
	vc_provision_opts o = { .image_path = path, .province = "hunan", .seed = 1,
				.alg = FX_KEY_EC_P256, .profile = -1 };
	const uint8_t *der;
	size_t der_len;

	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", dir);
	ck_assert_int_eq(fx_pki_create(&pki, pki_dir, time(NULL)), 0);
	ck_assert_int_eq(vc_provision(pki, &o, &img), 0);
	ck_assert_int_eq(vc_image_profile(img), VC_PROFILE_SILVER);
	ck_assert_int_eq(vc_image_slot_alg(img, VC_SLOT_9A), VC_ALG_P256);
	ck_assert_int_eq(vc_image_slot_alg(img, VC_SLOT_9C), VC_ALG_P256);
	ck_assert_int_eq(vc_image_slot_alg(img, VC_SLOT_9D), VC_ALG_P256);  /* Hunan */
	vc_image_slot_cert(img, VC_SLOT_9A, &der, &der_len);
	ck_assert_uint_gt(der_len, 100);
	vc_image_free(img);
	img = NULL;
	/* Suzhou's PIN rule; a blue SM2 card is refused. */
	ck_assert_int_eq(fx_unit_generate(&unit, 1, "suzhou", 0), 0);
	ck_assert_int_eq(vc_default_pin("suzhou", &unit, pin, sizeof(pin)), 0);
	ck_assert_str_eq(pin, unit.operator_id + 12);
	ck_assert_int_eq(vc_default_pin("sichuan", &unit, pin, sizeof(pin)), 0);
	ck_assert_str_eq(pin, "12345678");
	o.province = "suzhou";
	o.alg = FX_KEY_SM2;
	o.profile = VC_PROFILE_BLUE;
	ck_assert_int_eq(vc_provision(pki, &o, NULL), TR_EINVAL);
	o.profile = -1;
	o.tries = 3;
	ck_assert_int_eq(vc_provision(pki, &o, &img), 0);
	ck_assert_int_eq(vc_image_slot_alg(img, VC_SLOT_9D), VC_ALG_NONE);
	{
		unsigned left, max;

		vc_image_tries(img, VC_REF_PIN, &left, &max);
		ck_assert_uint_eq(max, 3);
	}
	vc_image_free(img);
	fx_pki_free(pki);
}
END_TEST

START_TEST(test_control_commands)
{
	vc_image *img = ec_image(VC_PROFILE_SILVER);
	vc_server_opts o = { .image_path = path, .port = 9 };   /* dial mode: never run */
	vc_server *srv = NULL;
	char reply[1024];

	ck_assert_int_eq(vc_image_save(img, path), 0);
	vc_image_free(img);
	ck_assert_int_eq(vc_server_open(&srv, &o), 0);
	vc_server_control(srv, "status", reply, sizeof(reply));
	ck_assert_ptr_nonnull(strstr(reply, "ok present=1"));
	ck_assert_ptr_nonnull(strstr(reply, "pin_tries=6/6"));
	vc_server_control(srv, "remove", reply, sizeof(reply));
	ck_assert_str_eq(reply, "ok");
	vc_server_control(srv, "status", reply, sizeof(reply));
	ck_assert_ptr_nonnull(strstr(reply, "present=0"));
	vc_server_control(srv, "insert", reply, sizeof(reply));
	vc_server_control(srv, "latency sign-rsa 150", reply, sizeof(reply));
	ck_assert_str_eq(reply, "ok");
	vc_server_control(srv, "remove-after 3", reply, sizeof(reply));
	vc_server_control(srv, "mute on", reply, sizeof(reply));
	vc_server_control(srv, "remove-during-sign", reply, sizeof(reply));
	vc_server_control(srv, "corrupt-next", reply, sizeof(reply));
	vc_server_control(srv, "status", reply, sizeof(reply));
	ck_assert_ptr_nonnull(strstr(reply, "present=1"));
	ck_assert_ptr_nonnull(strstr(reply, "sign-rsa:150"));
	ck_assert_ptr_nonnull(strstr(reply, "remove_after=3"));
	ck_assert_ptr_nonnull(strstr(reply, "muted=1"));
	ck_assert_ptr_nonnull(strstr(reply, "remove_during_sign=1"));
	ck_assert_ptr_nonnull(strstr(reply, "corrupt_next=1"));
	vc_server_control(srv, "clear", reply, sizeof(reply));
	vc_server_control(srv, "status", reply, sizeof(reply));
	ck_assert_ptr_nonnull(strstr(reply, "muted=0"));
	ck_assert_ptr_nonnull(strstr(reply, "sign-rsa:0"));
	const char *bad[] = { "", "fly", "latency fast 10", "latency any -1",
			      "remove-after x", "mute maybe", "insert now", "status a b c" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vc_server_control(srv, bad[i], reply, sizeof(reply));
		ck_assert_msg(strncmp(reply, "error", 5) == 0, "'%s' gave '%s'", bad[i], reply);
	}
	vc_server_free(srv);
}
END_TEST

Suite *vcard_image_suite(void)
{
	Suite *s = suite_create("vcard_image");
	TCase *tc = tcase_create("image");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_counters_persist);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_provision);
	tcase_add_test(tc, test_control_commands);
	suite_add_tcase(s, tc);
	return s;
}
