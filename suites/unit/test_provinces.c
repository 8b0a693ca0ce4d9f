/*
 * The province registry (fixtures/provinces.h): every consumer sees every
 * row. Each loop test runs once per registry row, so a fifth province is
 * checked by the same tests without a line here: the fixture PKI has its
 * CA (and legacy CA), the identity generator makes its units by its rules,
 * the PIN rule gives its PIN, a card of it has the slots its row says, the
 * environment lists it with its legacy CA and encryption flag, the scenario
 * parser accepts it and its catalog IDs, and the portal serves it. Also the
 * install paths found once (common/paths.h).
 */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "common/error.h"
#include "common/paths.h"
#include "emulators/portal/portal.h"
#include "emulators/vcard/vc_image.h"
#include "emulators/vcard/vc_provision.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"
#include "fixtures/provinces.h"
#include "harness/env.h"
#include "harness/scenario.h"

static char base_dir[64];
static char pki_dir[128];
static fx_pki *pki;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* One PKI for the test case, made in the parent (unchecked fixture). */
static void pki_setup(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/tokenrig-provinces-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base_dir));
	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", base_dir);
	ck_assert_msg(fx_pki_create(&pki, pki_dir, time(NULL)) == 0, "%s", tr_error_last());
}

static void pki_teardown(void)
{
	fx_pki_free(pki);
	pki = NULL;
	nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const fx_province *row(int i)
{
	const fx_province *p = fx_province_at((size_t)i);

	ck_assert_ptr_nonnull(p);
	return p;
}

static int in_list(const char *const *list, const char *name)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], name))
			return 1;
	return 0;
}

/* The registry itself: complete rows, names and ID prefixes unique. */
START_TEST(rows_are_whole_and_unique)
{
	const fx_province *p = row(_i);

	ck_assert_ptr_eq(fx_province_find(p->name), p);
	ck_assert_ptr_nonnull(strstr(fx_province_list(), p->name));
	ck_assert_msg(p->display && *p->display, "%s: no display name", p->name);
	ck_assert_msg(p->area && strlen(p->area) == 6, "%s: area must be 6 digits", p->name);
	ck_assert_msg(p->cities[0] && p->cities[1], "%s: two city prefixes", p->name);
	ck_assert_msg(p->id_prefixes[0], "%s: no catalog ID prefix", p->name);
	ck_assert_msg(p->pin != FX_PIN_FIXED || (p->fixed_pin && *p->fixed_pin),
		      "%s: a fixed PIN rule without the PIN", p->name);
	ck_assert_msg(!p->legacy_ca || (p->legacy_display && strcmp(p->legacy_ca, p->name)),
		      "%s: a legacy CA needs its own name and display", p->name);
	for (int j = 0; j < FX_PROVINCE_COUNT; j++) {
		const fx_province *q = row(j);

		if (j == _i)
			continue;
		ck_assert_str_ne(p->name, q->name);
		ck_assert_str_ne(p->area, q->area);
		for (int a = 0; a < FX_PROVINCE_ID_PREFIXES && p->id_prefixes[a]; a++)
			for (int b = 0; b < FX_PROVINCE_ID_PREFIXES && q->id_prefixes[b]; b++)
				ck_assert_str_ne(p->id_prefixes[a], q->id_prefixes[b]);
	}
	ck_assert_ptr_null(fx_province_at(FX_PROVINCE_COUNT));
	ck_assert_ptr_null(fx_province_find("atlantis"));
}
END_TEST

/* Fixtures: the PKI made the province's CA, which issues its units. */
START_TEST(pki_has_its_ca)
{
	const fx_province *p = row(_i);
	const char *cas[2] = { p->name, p->legacy_ca };
	char path[PATH_MAX], org[128], want[128];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *root = NULL;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	fx_unit unit;

	ck_assert_int_eq(fx_unit_generate(&unit, 1, p->name, 0), 0);
	ck_assert_int_eq(fx_key_generate(FX_KEY_EC_P256, &key), 0);
	for (int k = 0; k < 2 && cas[k]; k++) {
		ck_assert_msg(in_list(fx_pki_ca_names, cas[k]), "CA %s not listed", cas[k]);
		ck_assert_int_eq(fx_pki_ca_path(pki, cas[k], "root.pem", path, sizeof(path)), 0);
		ck_assert_int_eq(fx_read_cert_pem(path, &root), 0);
		/* The registry's display name is the CA's organisation. */
		ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(root),
							   NID_organizationName, org, sizeof(org)), 0);
		snprintf(want, sizeof(want), "%s CA", k ? p->legacy_display : p->display);
		ck_assert_str_eq(org, want);
		ck_assert_int_eq(fx_pki_ca_path(pki, cas[k], "chain.pem", path, sizeof(path)), 0);
		ck_assert_msg(fx_pki_issue_unit(pki, cas[k], key, &unit, FX_VARIANT_VALID, &cert) == 0,
			      "%s", tr_error_last());
		store = X509_STORE_new();
		ctx = X509_STORE_CTX_new();
		ck_assert_int_eq(X509_STORE_load_file(store, path), 1);
		ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
		ck_assert_msg(X509_verify_cert(ctx) == 1, "%s: %s", cas[k],
			      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
		X509_free(cert);
		X509_free(root);
	}
	EVP_PKEY_free(key);
}
END_TEST

/* Fixtures: units of the province follow its identity rules. */
START_TEST(ident_makes_its_units)
{
	const fx_province *p = row(_i);
	fx_unit u;

	for (unsigned index = 0; index < 3; index++) {
		ck_assert_int_eq(fx_unit_generate(&u, 7, p->name, index), 0);
		ck_assert_str_eq(u.province, p->name);
		ck_assert(fx_uscc_valid(u.uscc));
		ck_assert_int_eq(strncmp(u.uscc + 2, p->area, 6), 0);
		ck_assert(fx_resident_id_valid(u.operator_id));
		ck_assert_int_eq(strncmp(u.operator_id, p->area, 6), 0);
		ck_assert_int_eq(strncmp(u.ss_number, p->area, 4), 0);
		ck_assert_msg(!strncmp(u.unit_name, p->cities[0], strlen(p->cities[0])) ||
			      !strncmp(u.unit_name, p->cities[1], strlen(p->cities[1])),
			      "%s: unit name %s", p->name, u.unit_name);
	}
}
END_TEST

/* The PIN rule, as the cards and the SoftHSM tokens apply it. */
START_TEST(pin_rule_gives_its_pin)
{
	const fx_province *p = row(_i);
	char pin[32], direct[32];
	fx_unit u;

	ck_assert_int_eq(fx_unit_generate(&u, 1, p->name, 0), 0);
	ck_assert_int_eq(vc_default_pin(p->name, &u, pin, sizeof(pin)), 0);
	ck_assert_int_eq(fx_province_default_pin(p, &u, direct, sizeof(direct)), 0);
	ck_assert_str_eq(pin, direct);
	if (p->pin == FX_PIN_FIXED)
		ck_assert_str_eq(pin, p->fixed_pin);
	else
		ck_assert_str_eq(pin, u.operator_id + strlen(u.operator_id) - 6);
	ck_assert_int_eq(vc_default_pin(p->name, &u, pin, 3), TR_EINVAL);
}
END_TEST

/* A card of the province: 9A and 9C, and 9D when its tokens are dual. */
START_TEST(card_image_has_its_slots)
{
	const fx_province *p = row(_i);
	char path[PATH_MAX];
	vc_image *img = NULL;
	const uint8_t *der;
	size_t len;
	vc_provision_opts o = { .image_path = path, .province = p->name, .seed = 1,
				.alg = FX_KEY_EC_P256, .profile = -1, .variant = FX_VARIANT_VALID };

	snprintf(path, sizeof(path), "%s/%s.img", base_dir, p->name);
	ck_assert_msg(vc_provision(pki, &o, &img) == 0, "%s", tr_error_last());
	vc_image_slot_cert(img, VC_SLOT_9A, &der, &len);
	ck_assert_uint_gt(len, 0);
	vc_image_slot_cert(img, VC_SLOT_9C, &der, &len);
	ck_assert_uint_gt(len, 0);
	vc_image_slot_cert(img, VC_SLOT_9D, &der, &len);
	ck_assert_msg((len > 0) == (p->enc_cert != 0), "%s: 9D %zu bytes, enc_cert %d",
		      p->name, len, p->enc_cert);
	vc_image_free(img);
	unlink(path);
}
END_TEST

/* The harness's environment lists it, with its legacy CA and dual flag. */
START_TEST(env_lists_it)
{
	const fx_province *p = row(_i);
	const char *name, *legacy = "x";
	int dual = -1, seen = 0;

	for (size_t i = 0; (name = tr_env_portal_name(i, &legacy, &dual)) != NULL; i++) {
		if (strcmp(name, p->name))
			continue;
		seen++;
		ck_assert_int_eq(i, _i); /* the registry's order: the first is the default */
		ck_assert_int_eq(dual, p->enc_cert);
		if (p->legacy_ca)
			ck_assert_str_eq(legacy, p->legacy_ca);
		else
			ck_assert_ptr_null(legacy);
	}
	ck_assert_int_eq(seen, 1);
	ck_assert_ptr_null(tr_env_portal_name(FX_PROVINCE_COUNT, NULL, NULL));
}
END_TEST

/* The scenario parser accepts the portal and its catalog IDs. */
START_TEST(scenario_accepts_it)
{
	const fx_province *p = row(_i);
	char text[512], id[32];
	tr_scenario *sc = NULL;

	for (int k = 0; k < FX_PROVINCE_ID_PREFIXES && p->id_prefixes[k]; k++) {
		snprintf(id, sizeof(id), "%s-E01", p->id_prefixes[k]);
		ck_assert_msg(tr_scenario_id_valid(id), "%s", id);
		snprintf(text, sizeof(text),
			 "[scenario]\nids = %s\ntitle = t\nportal = %s\n[step]\ndo = ca-login\nsite = s\n",
			 id, p->name);
		ck_assert_msg(tr_scenario_parse(&sc, "t.scn", text, strlen(text)) == 0, "%s",
			      tr_error_last());
		ck_assert_str_eq(sc->portal, p->name);
		tr_scenario_free(sc);
		sc = NULL;
	}
}
END_TEST

/* A portal or an ID prefix outside the registry is refused, with file:line. */
START_TEST(scenario_refuses_the_unknown)
{
	static const char text[] =
		"[scenario]\nids = TK-E01\ntitle = t\nportal = atlantis\n[step]\ndo = ca-login\nsite = s\n";
	tr_scenario *sc = NULL;

	ck_assert_int_eq(tr_scenario_parse(&sc, "t.scn", text, strlen(text)), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "t.scn:4: unknown portal 'atlantis' (known: "));
	ck_assert_ptr_nonnull(strstr(tr_error_last(), fx_province_list()));
	tr_scenario_free(sc);
	ck_assert(tr_scenario_id_valid("TK-E01"));
	ck_assert(!tr_scenario_id_valid("XQ-E01"));
}
END_TEST

/* The portal serves it: its flows are bound to its row under its name. */
START_TEST(portal_serves_it)
{
	const fx_province *p = row(_i);
	const char *const *names = pt_portal_names();
	pt_request req = { .method = "GET", .path = "/" };
	pt_response resp = { 0 };
	pt_portal *portal = NULL;
	json_t *body;
	size_t n;

	for (n = 0; names[n]; n++)
		;
	ck_assert_int_eq(n, FX_PROVINCE_COUNT);
	ck_assert_str_eq(names[_i], p->name);
	ck_assert(pt_portal_known(p->name));
	ck_assert_msg(pt_portal_new(&portal, p->name, pki_dir, 0) == 0, "%s", tr_error_last());
	ck_assert_str_eq(pt_portal_name(portal), p->name);
	pt_portal_handle(portal, &req, &resp);
	ck_assert_uint_eq(resp.status, 200);
	body = json_loadb(resp.body, resp.body_len, 0, NULL);
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(json_string_value(json_object_get(body, "portal")), p->name);
	json_decref(body);
	pt_response_clear(&resp);
	pt_portal_free(portal);
	ck_assert(!pt_portal_known("atlantis"));
}
END_TEST

/* Install paths: found through p11-kit and pcsc-lite, canonical, agreeing. */
START_TEST(install_paths_found_once)
{
	const char *softhsm, *opensc, *vpcd;
	char path[PATH_MAX], real[PATH_MAX];

	ck_assert_msg(tr_paths_find(TR_PATH_SOFTHSM2, &softhsm) == 0, "%s", tr_error_last());
	ck_assert_msg(tr_paths_find(TR_PATH_OPENSC, &opensc) == 0, "%s", tr_error_last());
	ck_assert_msg(tr_paths_find(TR_PATH_VPCD, &vpcd) == 0, "%s", tr_error_last());
	ck_assert_ptr_nonnull(strstr(softhsm, "libsofthsm2.so"));
	ck_assert_ptr_nonnull(strstr(opensc, "opensc-pkcs11.so"));
	ck_assert_ptr_nonnull(strstr(vpcd, "/serial/libifdvpcd"));
	/* Found once: the same string every time, and what the macros give. */
	ck_assert_ptr_eq(tr_paths_get(TR_PATH_SOFTHSM2), softhsm);
	ck_assert_ptr_eq(TR_OPENSC_MODULE, opensc);
	/* The interposer's build-time default is what p11-kit says now. */
	ck_assert_ptr_nonnull(realpath(TR_BUILD_SOFTHSM2_MODULE, real));
	ck_assert_str_eq(real, softhsm);
	/* Names registered with p11-kit, the way certify --module takes them. */
	ck_assert_int_eq(tr_paths_module("softhsm2", path, sizeof(path)), 0);
	ck_assert_str_eq(path, softhsm);
	ck_assert_int_eq(tr_paths_module("opensc", path, sizeof(path)), 0);
	ck_assert_str_eq(path, opensc);
	ck_assert_int_eq(tr_paths_module(softhsm, path, sizeof(path)), 0);
	ck_assert_str_eq(path, softhsm);
	ck_assert_int_eq(tr_paths_module("no-such-module", path, sizeof(path)), TR_EDEPEND);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "'no-such-module' registered with p11-kit"));
	ck_assert_int_eq(tr_paths_module("/nonexistent/vendor.so", path, sizeof(path)), TR_EDEPEND);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "/nonexistent/vendor.so"));
	ck_assert_int_eq(tr_paths_module("softhsm2", path, 8), TR_EINVAL);
	ck_assert_int_eq(tr_paths_find(42, &softhsm), TR_EINVAL);
}
END_TEST

Suite *provinces_suite(void)
{
	Suite *s = suite_create("provinces");
	TCase *tc = tcase_create("registry");

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_loop_test(tc, rows_are_whole_and_unique, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, pki_has_its_ca, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, ident_makes_its_units, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, pin_rule_gives_its_pin, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, card_image_has_its_slots, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, env_lists_it, 0, FX_PROVINCE_COUNT);
	tcase_add_loop_test(tc, scenario_accepts_it, 0, FX_PROVINCE_COUNT);
	tcase_add_test(tc, scenario_refuses_the_unknown);
	tcase_add_loop_test(tc, portal_serves_it, 0, FX_PROVINCE_COUNT);
	tcase_add_test(tc, install_paths_found_once);
	suite_add_tcase(s, tc);
	return s;
}
