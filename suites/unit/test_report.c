/* results.json and junit.xml: complete after every case, escaped, counted. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "harness/report.h"

static char dir[] = "/tmp/tokenrig-report-XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	tr_fs_remove_tree(dir);
}

static char *slurp(const char *name)
{
	char path[256], *text = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(tr_fs_read_all(path, 1 << 20, &text, NULL), 0);
	return text;
}

START_TEST(files_are_complete_after_each_case)
{
	tr_report *rep;
	const char *ids[] = { "SZ-E05" };
	const char *ids2[] = { "SZ-E01", "SZ-REG-OK" };
	tr_case_result ok = { .ids = ids, .n_ids = 1, .title = "twice", .scenario = "a.scn",
			      .portal = "suzhou", .kind = "softhsm", .algorithm = "p256",
			      .status = TR_CASE_PASSED, .duration_ms = 1.5 };
	tr_case_result bad = { .ids = ids2, .n_ids = 2, .title = "<odd> & \"quoted\"",
			       .scenario = "b.scn", .portal = "suzhou", .kind = "softhsm",
			       .algorithm = "rsa2048", .status = TR_CASE_FAILED,
			       .message = "b.scn:7: message is 'x', expected '该证书'",
			       .step = "hall (ca-login, line 7)", .expected = "message = 该证书",
			       .actual = "HTTP 200 {\"ok\":true}" };
	json_t *root;
	char *xml, *json;

	ck_assert_int_eq(tr_report_open(&rep, dir), 0);
	ck_assert_int_eq(tr_report_add(rep, &ok), 0);
	/* A crash here would leave these two files, whole. */
	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "summary"), "passed")), 1);
	json_decref(root);
	free(json);
	xml = slurp("junit.xml");
	ck_assert_ptr_nonnull(strstr(xml, "</testsuites>"));
	ck_assert_ptr_nonnull(strstr(xml, "name=\"SZ-E05 twice [softhsm/p256]\""));
	free(xml);

	ck_assert_int_eq(tr_report_add(rep, &bad), 0);
	ck_assert_int_eq(tr_report_finish(rep, 2.0), 0);
	tr_report_free(rep);

	xml = slurp("junit.xml");
	ck_assert_ptr_nonnull(strstr(xml, "name=\"SZ-E01 SZ-REG-OK &lt;odd&gt; &amp; &quot;quoted&quot; [softhsm/rsa2048]\""));
	ck_assert_ptr_nonnull(strstr(xml, "<failure message=\"b.scn:7: message is &apos;x&apos;, expected &apos;该证书&apos;\">"));
	ck_assert_ptr_nonnull(strstr(xml, "expected: message = 该证书"));
	ck_assert_ptr_nonnull(strstr(xml, "tests=\"2\" failures=\"1\""));
	free(xml);

	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(root);
	json_t *cov = json_object_get(json_object_get(root, "coverage"), "suzhou");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
		json_object_get(cov, "softhsm/rsa2048"), "failed"), 1)), "SZ-REG-OK");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
		json_object_get(cov, "softhsm/p256"), "passed"), 0)), "SZ-E05");
	ck_assert_ptr_nonnull(json_object_get(root, "finished"));
	json_decref(root);
	free(json);
}
END_TEST

/* SC-W01: a warning is a first-class result, on a passed case too. */
START_TEST(warnings_are_carried_by_the_case)
{
	tr_report *rep;
	const char *ids[] = { "SC-W01" };
	json_t *warnings = json_pack("[{s:s, s:s}]", "step", "env <check>",
				     "message", "控件-ftsccactrl\xC2\xA0" "V3:未安装");
	tr_case_result ok = { .ids = ids, .n_ids = 1, .title = "warn", .scenario = "w.scn",
			      .portal = "sichuan", .kind = "softhsm", .algorithm = "p256",
			      .status = TR_CASE_PASSED, .warnings = warnings };
	tr_case_result quiet = ok;
	json_t *root, *c;
	char *xml, *json;

	quiet.warnings = NULL;
	ck_assert_int_eq(tr_report_open(&rep, dir), 0);
	ck_assert_int_eq(tr_report_add(rep, &ok), 0);
	ck_assert_int_eq(tr_report_add(rep, &quiet), 0);
	json_decref(warnings);  /* the report keeps its own copy */
	ck_assert_int_eq(tr_report_finish(rep, 1.0), 0);
	tr_report_free(rep);

	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(root);
	c = json_array_get(json_object_get(root, "cases"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(c, "warnings"), 0), "message")), "控件-ftsccactrl\xC2\xA0" "V3:未安装");
	ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(root, "cases"), 1),
					   "warnings"));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "summary"),
							    "warnings")), 1);
	json_decref(root);
	free(json);

	xml = slurp("junit.xml");
	ck_assert_ptr_nonnull(strstr(xml, "<property name=\"warning\" value=\"控件-ftsccactrl\xC2\xA0" "V3:未安装\"/>"));
	ck_assert_ptr_nonnull(strstr(xml, "WARNING (step: env &lt;check&gt;): 控件"));
	/* The quiet case stays a one-line testcase. */
	ck_assert_ptr_nonnull(strstr(xml, "name=\"SC-W01 warn [softhsm/p256]\" time=\"0.000\"/>"));
	free(xml);
}
END_TEST

/* Skips are counted by named reason in the summary, each case names its own. */
START_TEST(skips_are_counted_by_reason)
{
	tr_report *rep;
	const char *ids[] = { "JS-UPG-OK" };
	tr_case_result a = { .ids = ids, .n_ids = 1, .title = "up", .scenario = "u.scn",
			     .portal = "suzhou", .kind = "opensc", .algorithm = "p256",
			     .status = TR_CASE_SKIPPED,
			     .message = "step 'keygen': C_GenerateKeyPair: CKR_FUNCTION_NOT_SUPPORTED" };
	tr_case_result b = a, c = a;
	json_t *root, *by;
	char *json;

	b.message = "the scenario is for kinds softhsm, vcard; this is opensc/p256";
	c.message = "something nobody named";
	ck_assert_int_eq(tr_report_open(&rep, dir), 0);
	ck_assert_int_eq(tr_report_add(rep, &a), 0);
	ck_assert_int_eq(tr_report_add(rep, &a), 0);
	ck_assert_int_eq(tr_report_add(rep, &b), 0);
	ck_assert_int_eq(tr_report_add(rep, &c), 0);
	ck_assert_int_eq(tr_report_finish(rep, 1.0), 0);
	tr_report_free(rep);
	ck_assert_str_eq(tr_skip_reason_name("x; algorithms rsa2048; this is vcard/sm2"),
			 "scenario-algorithms");
	ck_assert_str_eq(tr_skip_reason_name(NULL), "other");

	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	ck_assert_ptr_nonnull(root);
	by = json_object_get(json_object_get(root, "summary"), "skipped_by_reason");
	ck_assert_int_eq(json_integer_value(json_object_get(by, "opensc-no-keygen")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(by, "scenario-kinds")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(by, "other")), 1);
	ck_assert_int_eq(json_object_size(by), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(root, "cases"), 2), "skip_reason")), "scenario-kinds");
	json_decref(root);
	free(json);
}
END_TEST

/* A failure carries the steps that led to it; a passed case does not. */
START_TEST(failures_carry_their_step_log)
{
	tr_report *rep;
	const char *ids[] = { "SZ-E01" };
	json_t *log = json_pack("[s, s]", "[1] log in (ca-login, line 9): HTTP 200 ok",
				"[2] declare <x> (request, line 14): HTTP 403 refused SZ_NO_UNIT");
	tr_case_result bad = { .ids = ids, .n_ids = 1, .title = "t", .scenario = "f.scn",
			       .portal = "suzhou", .kind = "softhsm", .algorithm = "p256",
			       .status = TR_CASE_FAILED, .message = "m", .step = "declare",
			       .expected = "status = 200", .actual = "HTTP 403", .log = log };
	tr_case_result ok = bad;
	json_t *root;
	char *xml, *json, *fail_end, *out;

	ok.status = TR_CASE_PASSED;
	ck_assert_int_eq(tr_report_open(&rep, dir), 0);
	ck_assert_int_eq(tr_report_add(rep, &bad), 0);
	ck_assert_int_eq(tr_report_add(rep, &ok), 0);
	json_decref(log);
	tr_report_free(rep);
	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(json_array_get(
		json_object_get(root, "cases"), 0), "log")), 2);
	ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(root, "cases"), 1), "log"));
	json_decref(root);
	free(json);
	xml = slurp("junit.xml");
	/* After the failure element, as JUnit readers expect, escaped. */
	fail_end = strstr(xml, "</failure>");
	out = strstr(xml, "<system-out>[1] log in (ca-login, line 9): HTTP 200 ok\n"
			  "[2] declare &lt;x&gt; (request, line 14): HTTP 403 refused SZ_NO_UNIT\n"
			  "</system-out>");
	ck_assert_ptr_nonnull(fail_end);
	ck_assert_ptr_nonnull(out);
	ck_assert(out > fail_end);
	ck_assert_ptr_null(strstr(out + 1, "<system-out>"));
	free(xml);
}
END_TEST

/*
 * Cases finishing out of order (worker processes) are listed in the case
 * list's order, coverage included, as if they had finished in order.
 */
START_TEST(cases_keep_the_case_list_order)
{
	tr_report *rep;
	const char *ids[3][1] = { { "HB-E01" }, { "HB-E02" }, { "HB-E03" } };
	tr_case_result r[3];
	json_t *root, *cases, *passed;
	char *json;

	for (int i = 0; i < 3; i++)
		r[i] = (tr_case_result){ .ids = ids[i], .n_ids = 1, .title = "t", .scenario = "s.scn",
					 .portal = "hebei", .kind = "softhsm", .algorithm = "p256",
					 .status = i == 1 ? TR_CASE_SKIPPED : TR_CASE_PASSED,
					 .message = i == 1 ? "no virtual cards in this run: x" : NULL };
	ck_assert_int_eq(tr_report_open(&rep, dir), 0);
	ck_assert_int_eq(tr_report_add_at(rep, 2, &r[2]), 0);
	ck_assert_int_eq(tr_report_add_at(rep, 0, &r[0]), 0);
	/* Written as they finish: two cases in the file, in order, before the third. */
	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	free(json);
	cases = json_object_get(root, "cases");
	ck_assert_int_eq(json_array_size(cases), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(cases, 0), "name")),
			 "HB-E01 t [softhsm/p256]");
	json_decref(root);
	ck_assert_int_eq(tr_report_add_at(rep, 1, &r[1]), 0);
	tr_report_free(rep);
	json = slurp("results.json");
	root = json_loads(json, 0, NULL);
	free(json);
	cases = json_object_get(root, "cases");
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(json_string_value(json_array_get(json_object_get(
			json_array_get(cases, (size_t)i), "ids"), 0)), ids[i][0]);
	passed = json_object_get(json_object_get(json_object_get(json_object_get(root, "coverage"),
		"hebei"), "softhsm/p256"), "passed");
	ck_assert_int_eq(json_array_size(passed), 2);
	ck_assert_str_eq(json_string_value(json_array_get(passed, 0)), "HB-E01");
	ck_assert_str_eq(json_string_value(json_array_get(passed, 1)), "HB-E03");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(root,
		"summary"), "skipped_by_reason"), "no-cards")), 1);
	json_decref(root);
}
END_TEST

Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("files");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, files_are_complete_after_each_case);
	tcase_add_test(tc, warnings_are_carried_by_the_case);
	tcase_add_test(tc, failures_carry_their_step_log);
	tcase_add_test(tc, skips_are_counted_by_reason);
	tcase_add_test(tc, cases_keep_the_case_list_order);
	suite_add_tcase(s, tc);
	return s;
}
