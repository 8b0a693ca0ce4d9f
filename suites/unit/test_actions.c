/*
 * The scenario actions' one table (harness/steps.c): the parser's schema
 * and the dispatch come from it, suites/README.md lists the same actions
 * and keys, and a step's return says skip apart from a rig error.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "harness/kinds.h"
#include "harness/scenario.h"
#include "harness/steps.h"

#define MAX_KEYS (TR_ACTION_MAX_REQUIRED + TR_ACTION_MAX_OPTIONAL)

static size_t n_actions(void)
{
	size_t n = 0;

	while (tr_action_at(n))
		n++;
	return n;
}

START_TEST(every_action_runs_its_own_function)
{
	size_t n = n_actions();

	ck_assert_uint_ge(n, 15);
	for (size_t i = 0; i < n; i++) {
		const tr_action *a = tr_action_at(i);

		ck_assert_ptr_nonnull(a->run);
		ck_assert_ptr_eq(tr_action_find(a->name), a);
		for (size_t k = 0; k < i; k++) {
			ck_assert_msg(strcmp(tr_action_at(k)->name, a->name), "%s twice", a->name);
			ck_assert_msg(tr_action_at(k)->run != a->run, "%s and %s share a function",
				      tr_action_at(k)->name, a->name);
		}
	}
	ck_assert_ptr_null(tr_action_find("dance"));
	ck_assert_ptr_null(tr_action_find(NULL));
}
END_TEST

/* A scenario of one step of action a with every key it takes, less one required. */
static int parse_step(const tr_action *a, int drop_required, int extra_key)
{
	char text[2048];
	tr_scenario *sc = NULL;
	size_t off;
	int error;

	off = (size_t)snprintf(text, sizeof(text),
			       "[scenario]\nids = SZ-E05\ntitle = t\nportal = suzhou\n"
			       "[step]\ndo = %s\n", a->name);
	for (int i = 0; i < TR_ACTION_MAX_REQUIRED && a->required[i]; i++)
		if (i != drop_required)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s = x\n",
						a->required[i]);
	for (int i = 0; i < TR_ACTION_MAX_OPTIONAL && a->optional[i]; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s = x\n", a->optional[i]);
	if (a->prefix)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%sfield = x\n", a->prefix);
	off += (size_t)snprintf(text + off, sizeof(text) - off,
				"note = n\nexpect.code = OK\nsave.v = code\n%s",
				extra_key ? "not_a_key_of_any_action = 1\n" : "");
	ck_assert_uint_lt(off, sizeof(text));
	error = tr_scenario_parse(&sc, "t.scn", text, off);
	tr_scenario_free(sc);
	return error;
}

START_TEST(the_parser_takes_its_schema_from_the_table)
{
	for (size_t i = 0; i < n_actions(); i++) {
		const tr_action *a = tr_action_at(i);

		ck_assert_msg(parse_step(a, -1, 0) == 0, "%s: %s", a->name, tr_error_last());
		ck_assert_int_eq(parse_step(a, -1, 1), TR_EPARSE);
		ck_assert_msg(strstr(tr_error_last(), "takes no key 'not_a_key_of_any_action'"),
			      "%s", tr_error_last());
		for (int r = 0; r < TR_ACTION_MAX_REQUIRED && a->required[r]; r++) {
			char want[128];

			ck_assert_int_eq(parse_step(a, r, 0), TR_EPARSE);
			snprintf(want, sizeof(want), "action %s needs '%s ='", a->name, a->required[r]);
			ck_assert_msg(strstr(tr_error_last(), want), "%s", tr_error_last());
		}
	}
}
END_TEST

/* --- suites/README.md's table -------------------------------------------- */

typedef struct doc_action {
	char name[64];
	char required[MAX_KEYS][64];
	char optional[MAX_KEYS][64];
	char prefix[64];
	int n_required, n_optional;
} doc_action;

/* The backticked words of s, in order, with "(required)" marking those before it. */
static void parse_keys(const char *s, doc_action *d)
{
	char pending[MAX_KEYS][64];
	int n_pending = 0;

	while (*s) {
		const char *end;

		if (*s == '`' && (end = strchr(s + 1, '`')) != NULL) {
			char word[64];
			size_t n = (size_t)(end - s - 1);
			char *lt;

			ck_assert_uint_lt(n, sizeof(word));
			memcpy(word, s + 1, n);
			word[n] = '\0';
			/* `json.<field>`: a family of keys. */
			if ((lt = strstr(word, "<")) != NULL) {
				*lt = '\0';
				snprintf(d->prefix, sizeof(d->prefix), "%s", word);
			} else {
				ck_assert_int_lt(n_pending, MAX_KEYS);
				snprintf(pending[n_pending++], sizeof(pending[0]), "%s", word);
			}
			s = end + 1;
			continue;
		}
		if (!strncmp(s, "(required)", 10)) {
			for (int i = 0; i < n_pending; i++)
				memcpy(d->required[d->n_required++], pending[i], sizeof(pending[i]));
			n_pending = 0;
			s += 10;
			continue;
		}
		s++;
	}
	for (int i = 0; i < n_pending; i++)
		memcpy(d->optional[d->n_optional++], pending[i], sizeof(pending[i]));
}

/* Cell k (0-based) of a Markdown table row, trimmed, into out. */
static int cell(const char *row, int k, char *out, size_t len)
{
	const char *p = row, *end;

	for (int i = 0; i <= k; i++) {
		if (!(p = strchr(p, '|')))
			return -1;
		p++;
	}
	if (!(end = strchr(p, '|')))
		return -1;
	while (*p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	snprintf(out, len, "%.*s", (int)(end - p), p);
	return 0;
}

/* The rows of the table under "## Actions": every row up to the first non-row line. */
static size_t read_doc(doc_action *out, size_t max)
{
	FILE *f = fopen("suites/README.md", "r");
	char line[8192], buf[4096];
	int in_section = 0, in_table = 0;
	size_t n = 0;

	ck_assert_msg(f != NULL, "suites/README.md: cannot open (run from the tree's top)");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "## ", 3)) {
			if (in_section)
				break;
			in_section = !strncmp(line, "## Actions", 10);
			continue;
		}
		if (!in_section)
			continue;
		if (line[0] != '|') {
			if (in_table)
				break; /* the table ends at its first line that is not a row */
			continue;
		}
		if (!in_table) {
			in_table = 1; /* the header */
			continue;
		}
		if (!strncmp(line, "|---", 4))
			continue;
		ck_assert_uint_lt(n, max);
		memset(&out[n], 0, sizeof(out[n]));
		ck_assert_int_eq(cell(line, 0, buf, sizeof(buf)), 0);
		ck_assert_msg(buf[0] == '`' && strchr(buf + 1, '`'), "row without `action`: %s", line);
		snprintf(out[n].name, sizeof(out[n].name), "%.*s",
			 (int)(strchr(buf + 1, '`') - buf - 1), buf + 1);
		ck_assert_int_eq(cell(line, 1, buf, sizeof(buf)), 0);
		parse_keys(buf, &out[n]);
		n++;
	}
	fclose(f);
	return n;
}

static int listed(char list[][64], int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], key))
			return 1;
	return 0;
}

static int count_keys(const char *const *keys, int max)
{
	int n = 0;

	while (n < max && keys[n])
		n++;
	return n;
}

START_TEST(the_readme_lists_the_same_actions_and_keys)
{
	doc_action doc[64];
	size_t n = read_doc(doc, 64);

	ck_assert_uint_ge(n, 1);
	/* Every documented action is in the table, with the same keys. */
	for (size_t i = 0; i < n; i++) {
		const tr_action *a = tr_action_find(doc[i].name);

		ck_assert_msg(a != NULL, "suites/README.md documents action '%s', the table has "
			      "none", doc[i].name);
		ck_assert_msg(count_keys(a->required, TR_ACTION_MAX_REQUIRED) == doc[i].n_required,
			      "%s: %d required keys in the table, %d in the README", a->name,
			      count_keys(a->required, TR_ACTION_MAX_REQUIRED), doc[i].n_required);
		ck_assert_msg(count_keys(a->optional, TR_ACTION_MAX_OPTIONAL) == doc[i].n_optional,
			      "%s: %d optional keys in the table, %d in the README", a->name,
			      count_keys(a->optional, TR_ACTION_MAX_OPTIONAL), doc[i].n_optional);
		/* Same counts and each of the table's keys in the row: the same sets. */
		for (int k = 0; k < TR_ACTION_MAX_REQUIRED && a->required[k]; k++)
			ck_assert_msg(listed(doc[i].required, doc[i].n_required, a->required[k]),
				      "%s: required key '%s' not marked (required) in the README",
				      a->name, a->required[k]);
		for (int k = 0; k < TR_ACTION_MAX_OPTIONAL && a->optional[k]; k++)
			ck_assert_msg(listed(doc[i].optional, doc[i].n_optional, a->optional[k]),
				      "%s: optional key '%s' not in the README's row", a->name,
				      a->optional[k]);
		ck_assert_msg(!strcmp(a->prefix ? a->prefix : "", doc[i].prefix),
			      "%s: key family '%s' in the table, '%s' in the README", a->name,
			      a->prefix ? a->prefix : "", doc[i].prefix);
	}
	/* Every action of the table is documented. */
	for (size_t k = 0; tr_action_at(k); k++) {
		size_t i;

		for (i = 0; i < n && strcmp(doc[i].name, tr_action_at(k)->name); i++)
			;
		ck_assert_msg(i < n, "action '%s' is missing from suites/README.md's table",
			      tr_action_at(k)->name);
	}
}
END_TEST

START_TEST(a_skip_is_not_a_rig_error)
{
	ck_assert_int_eq(tr_case_outcome_of(0), TR_CASE_PASS);
	ck_assert_int_eq(tr_case_outcome_of(TR_STEP_ESKIP), TR_CASE_SKIP);
	ck_assert_int_eq(tr_case_outcome_of(TR_KIND_EBRICK), TR_CASE_STOP);
	/* A module or daemon missing is the rig's error, never "the kind cannot". */
	ck_assert_int_eq(tr_case_outcome_of(TR_EDEPEND), TR_CASE_RIG_ERROR);
	ck_assert_int_eq(tr_case_outcome_of(TR_ENOMEM), TR_CASE_RIG_ERROR);
	ck_assert_int_eq(tr_case_outcome_of(TR_EIO), TR_CASE_FAIL);
	ck_assert_int_eq(tr_case_outcome_of(TR_ETIMEDOUT), TR_CASE_FAIL);
	ck_assert_int_eq(tr_case_outcome_of(TR_ERROR), TR_CASE_FAIL);
	/* Distinct from every code of the layers below. */
	for (int code = TR_ERROR; code >= TR_EDEPEND; code--)
		ck_assert_int_ne(code, TR_STEP_ESKIP);
	ck_assert_int_ne(TR_KIND_EBRICK, TR_STEP_ESKIP);
}
END_TEST

Suite *actions_suite(void)
{
	Suite *s = suite_create("actions");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, every_action_runs_its_own_function);
	tcase_add_test(tc, the_parser_takes_its_schema_from_the_table);
	tcase_add_test(tc, the_readme_lists_the_same_actions_and_keys);
	tcase_add_test(tc, a_skip_is_not_a_rig_error);
	suite_add_tcase(s, tc);
	return s;
}
