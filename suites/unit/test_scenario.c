/* The scenario parser: structure, catalog IDs, actions, file:line errors. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "harness/scenario.h"

static const char good[] =
	"# a comment\n"
	"[scenario]\n"
	"ids    = SZ-E05 SZ-LOGIN-OK\n"
	"title  = twice\n"
	"portal = suzhou\n"
	"algorithms = p256 rsa2048\n"
	"\n"
	"[step first login]\n"
	"do   = ca-login\n"
	"site = reg\n"
	"expect.message = 组织信息已成功注册，无法保存！\n"
	"[step]\n"
	"do     = request\n"
	"method = POST\n"
	"path   = /reg/units\n"
	"json.uscc = ${unit.uscc}\n"
	"save.receipt = receipt\n";

static int parse_error(const char *text, char *msg, size_t len)
{
	tr_scenario *sc = NULL;
	int error = tr_scenario_parse(&sc, "t.scn", text, strlen(text));

	snprintf(msg, len, "%s", tr_error_last());
	tr_scenario_free(sc);
	return error;
}

START_TEST(parses_a_good_file)
{
	tr_scenario *sc;

	ck_assert_int_eq(tr_scenario_parse(&sc, "t.scn", good, strlen(good)), 0);
	ck_assert_uint_eq(sc->n_ids, 2);
	ck_assert_str_eq(sc->ids[0], "SZ-E05");
	ck_assert_str_eq(sc->ids[1], "SZ-LOGIN-OK");
	ck_assert_str_eq(sc->portal, "suzhou");
	ck_assert_str_eq(sc->token, "a");
	ck_assert_uint_eq(sc->n_algorithms, 2);
	ck_assert_uint_eq(sc->n_steps, 2);
	ck_assert_str_eq(sc->steps[0].name, "first login");
	ck_assert_str_eq(sc->steps[0].action, "ca-login");
	ck_assert_int_eq(sc->steps[0].line, 8);
	/* Chinese text comes through byte for byte. */
	ck_assert_str_eq(tr_step_get(&sc->steps[0], "expect.message"),
			 "组织信息已成功注册，无法保存！");
	ck_assert_str_eq(sc->steps[1].name, "step 2");
	ck_assert_str_eq(tr_step_get(&sc->steps[1], "json.uscc"), "${unit.uscc}");
	ck_assert_ptr_null(tr_step_get(&sc->steps[1], "session"));
	ck_assert(tr_scenario_allows(sc->algorithms, sc->n_algorithms, "p256"));
	ck_assert(!tr_scenario_allows(sc->algorithms, sc->n_algorithms, "sm2"));
	ck_assert(tr_scenario_allows(sc->kinds, sc->n_kinds, "anything"));
	tr_scenario_free(sc);
}
END_TEST

static const struct {
	const char *text;
	const char *message; /* what the error must say, with file:line */
} bad[] = {
	{ "", "t.scn:1: no [scenario] section" },
	{ "[step]\ndo = ca-login\n", "t.scn:1: the file must start with [scenario]" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n", "has no [step]" },
	{ "[scenario]\nids = XX-E05\n", "t.scn:2: 'XX-E05' is not a catalog ID" },
	{ "[scenario]\nids =\n", "t.scn:2: 'ids' is empty" },
	{ "[scenario]\ncolour = red\n", "t.scn:2: unknown key 'colour' in [scenario]" },
	{ "[scenario]\nids = SZ-E05\nids = SZ-E01\n", "t.scn:3: 'ids' given twice" },
	{ "[scenario]\nthis line has no equals\n", "t.scn:2: expected 'key = value'" },
	{ "[scenario]\n[stop]\n", "t.scn:2: unknown section [stop]" },
	{ "[scenario]\n[step\n", "t.scn:2: malformed section header" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n[step]\nsite = reg\n",
	  "t.scn:5: step has no 'do ='" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n[step]\ndo = dance\n",
	  "t.scn:5: unknown action 'dance'" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n[step]\ndo = ca-login\n",
	  "t.scn:5: action ca-login needs 'site ='" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n[step]\ndo = ca-login\nsite = r\nmethod = GET\n",
	  "t.scn:8: action ca-login takes no key 'method'" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n[step]\ndo = ca-login\nsite = r\nsite = s\n",
	  "t.scn:8: key 'site' given twice" },
	{ "[scenario]\nids = SZ-E05\ntitle = t\n[step]\ndo = ca-login\nsite = r\n",
	  "t.scn:1: [scenario] needs 'portal ='" },
	{ "[scenario]\nbad key = 1\n", "t.scn:2: bad character in key" },
	{ "[scenario]\nids = SZ-E05\n[step]\ndo = ca-login\nsite = r\n[scenario]\n",
	  "t.scn:6: a second [scenario] section" },
};

START_TEST(rejects_bad_files_with_file_and_line)
{
	char msg[1024];

	ck_assert_int_eq(parse_error(bad[_i].text, msg, sizeof(msg)), TR_EPARSE);
	ck_assert_msg(strstr(msg, bad[_i].message), "case %d: got '%s', want '%s'", _i, msg,
		      bad[_i].message);
}
END_TEST

START_TEST(rejects_binary_and_bad_utf8)
{
	tr_scenario *sc = NULL;
	const char nul[] = "[scenario]\n\0ids = SZ-E05\n";
	const char *bad_utf8[] = {
		"[scenario]\ntitle = \xe4\xb8\n",          /* truncated */
		"[scenario]\ntitle = \xc0\xaf\n",          /* overlong */
		"[scenario]\ntitle = \xed\xa0\x80\n",      /* surrogate */
		"[scenario]\ntitle = \xff\n",
	};

	ck_assert_int_eq(tr_scenario_parse(&sc, "n.scn", nul, sizeof(nul) - 1), TR_EPARSE);
	ck_assert(strstr(tr_error_last(), "NUL"));
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(tr_scenario_parse(&sc, "u.scn", bad_utf8[i], strlen(bad_utf8[i])),
				 TR_EPARSE);
		ck_assert_msg(strstr(tr_error_last(), "UTF-8"), "%zu: %s", i, tr_error_last());
	}
	ck_assert_ptr_null(sc);
}
END_TEST

START_TEST(catalog_id_shapes)
{
	ck_assert(tr_scenario_id_valid("SZ-E02a"));
	ck_assert(tr_scenario_id_valid("HN-DIST-ACT-OK"));
	ck_assert(tr_scenario_id_valid("TK-E01"));
	ck_assert(!tr_scenario_id_valid("SZ-"));
	ck_assert(!tr_scenario_id_valid("SZ-E01-"));
	ck_assert(!tr_scenario_id_valid("XY-E01"));
	ck_assert(!tr_scenario_id_valid("SZ-E0 1"));
	ck_assert(!tr_scenario_id_valid("sz-e01"));
}
END_TEST

START_TEST(every_suite_file_parses)
{
	/* The shipped scenarios are data the whole rig depends on: every one. */
	tr_paths files;

	ck_assert_msg(tr_scenario_find("suites", &files) == 0, "%s", tr_error_last());
	/* Four portals and the token paths: far more than a handful. */
	ck_assert_uint_ge(files.n, 90);
	for (size_t i = 0; i < files.n; i++) {
		tr_scenario *sc;

		ck_assert_msg(tr_scenario_load(&sc, files.v[i]) == 0, "%s", tr_error_last());
		tr_scenario_free(sc);
	}
	tr_paths_free(&files);
}
END_TEST

Suite *scenario_suite(void)
{
	Suite *s = suite_create("scenario");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, parses_a_good_file);
	tcase_add_loop_test(tc, rejects_bad_files_with_file_and_line, 0,
			    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, rejects_binary_and_bad_utf8);
	tcase_add_test(tc, catalog_id_shapes);
	tcase_add_test(tc, every_suite_file_parses);
	suite_add_tcase(s, tc);
	return s;
}
