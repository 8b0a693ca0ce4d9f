/*
 * tokenrig merge: shards written by the report's own writer, merged, and
 * compared with the same run written whole.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/merge.h"
#include "harness/report.h"
#include "harness/shard.h"
#include "harness/stats.h"

#define N_CASES 30

static const struct {
	const char *portal, *kind, *algorithm;
} columns[] = {
	{ "suzhou", "softhsm", "p256" },
	{ "suzhou", "vcard", "p256" },
	{ "hebei", "softhsm", "rsa2048" },
};

static char tmp_dir[64];
static char ids[N_CASES][16], titles[N_CASES][32];
static const char *id_ptrs[N_CASES][2];
static char names[N_CASES][1024];
static const char *name_ptrs[N_CASES];
static json_t *warnings;

/* Case i: column i / 10, a status and a duration of its own. */
static tr_case_result case_at(size_t i)
{
	static const tr_case_status st[] = { TR_CASE_PASSED, TR_CASE_PASSED, TR_CASE_FAILED,
					     TR_CASE_SKIPPED, TR_CASE_PASSED, TR_CASE_ERROR };
	size_t c = i / 10;
	tr_case_result r = {
		.ids = id_ptrs[i], .n_ids = i % 7 == 6 ? 2 : 1, .title = titles[i],
		.scenario = "suites/x.scn", .portal = columns[c].portal, .kind = columns[c].kind,
		.algorithm = columns[c].algorithm, .status = st[i % 6],
		.duration_ms = 1.0 + (double)((i * 13) % 17),
	};

	if (r.status == TR_CASE_FAILED) {
		r.message = "refused";
		r.step = "login";
		r.expected = "HTTP 200";
		r.actual = "HTTP 403 {\"code\":\"PIN_LOCKED\"}";
	}
	if (r.status == TR_CASE_SKIPPED)
		r.message = i % 4 ? "no virtual cards in this run" : "the scenario is for kinds vcard";
	if (r.status == TR_CASE_ERROR)
		r.message = "rig fault: the portal process died";
	if (i % 5 == 0)
		r.warnings = warnings;
	return r;
}

static void setup(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/tr-merge-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
	warnings = json_pack("[{s:s, s:s}]", "step", "login", "message", "environment check");
	for (size_t i = 0; i < N_CASES; i++) {
		tr_case_result r;

		snprintf(ids[i], sizeof(ids[i]), "SZ-E%02zu", i);
		snprintf(titles[i], sizeof(titles[i]), "case %zu", i);
		id_ptrs[i][0] = ids[i];
		id_ptrs[i][1] = "TK-E01";
		r = case_at(i);
		tr_case_result_name(&r, names[i], sizeof(names[i]));
		name_ptrs[i] = names[i];
	}
	tr_report_set_invocation(0, NULL, 42);
}

static void teardown(void)
{
	tr_fs_remove_tree(tmp_dir);
	json_decref(warnings);
}

static void path_in(char *buf, size_t len, const char *name)
{
	ck_assert_int_eq(tr_fs_join(buf, len, tmp_dir, name), 0);
}

/* Sign samples of case i, µs-ish values in ns: each case its own spread. */
static void case_samples(size_t i, tr_samples *s)
{
	for (size_t k = 0; k < 8; k++)
		ck_assert_int_eq(tr_samples_add(s, 1000 * (50 + (i * 37 + k * 11) % 90 + 5 * (i / 10))),
				 0);
}

/*
 * A run into tmp/dir of the cases keep[] selects (all when NULL), as the
 * engine writes it: provenance first, the cases in order, latency per column.
 */
static void write_run(const char *dir, const tr_shard *s, const unsigned char *keep)
{
	char path[256];
	tr_report *rep;
	tr_samples sign[3] = { { 0 } };

	path_in(path, sizeof(path), dir);
	ck_assert_int_eq(tr_report_open(&rep, path), 0);
	ck_assert_int_eq(tr_shard_record(rep, s, name_ptrs, N_CASES, NULL), 0);
	for (size_t i = 0; i < N_CASES; i++) {
		tr_case_result r = case_at(i);

		if (keep && !keep[i])
			continue;
		ck_assert_int_eq(tr_report_add(rep, &r), 0);
		if (r.status == TR_CASE_PASSED)
			case_samples(i, &sign[i / 10]);
	}
	for (size_t c = 0; c < 3; c++) {
		tr_summary sum;

		/* like the engine: a row per column, n = 0 where the run measured none */
		tr_stats_summarize(&sign[c], &sum);
		ck_assert_int_eq(tr_report_set_latency_at(rep, columns[c].portal, columns[c].kind,
							  columns[c].algorithm, "sign", &sum), 0);
		tr_samples_free(&sign[c]);
	}
	ck_assert_int_eq(tr_report_finish(rep, 1.5), 0);
	tr_report_free(rep);
}

/* Shards k of total by tr_shard_select into tmp/<prefix><k>; dirs[] their paths. */
static void write_shards(const char *prefix, unsigned total, const char *durations,
			 char dirs[][256])
{
	for (unsigned k = 1; k <= total; k++) {
		tr_shard s = { k, total };
		unsigned char keep[N_CASES];
		char name[64];

		ck_assert_int_eq(tr_shard_select(&s, name_ptrs, N_CASES, durations, keep), 0);
		snprintf(name, sizeof(name), "%s%u", prefix, k);
		write_run(name, &s, keep);
		path_in(dirs[k - 1], 256, name);
	}
}

static json_t *load(const char *dir)
{
	char path[256], file[300];
	json_t *doc;

	path_in(path, sizeof(path), dir);
	snprintf(file, sizeof(file), "%s/results.json", path);
	ck_assert_ptr_nonnull(doc = json_load_file(file, 0, NULL));
	return doc;
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The testcase lines of a junit.xml, sorted: what a CI page shows of the cases. */
static char *testcase_lines(const char *dir)
{
	char path[256], file[300], *xml, *out, *line, *save = NULL;
	size_t len, n = 0;
	char **lines;

	path_in(path, sizeof(path), dir);
	snprintf(file, sizeof(file), "%s/junit.xml", path);
	ck_assert_int_eq(tr_fs_read_all(file, 1 << 24, &xml, &len), 0);
	lines = calloc(len + 1, sizeof(*lines));
	out = calloc(len + 2, 1);
	for (line = strtok_r(xml, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strstr(line, "<testsuite") && !strstr(line, "</testsuite") &&
		    !strstr(line, "<property name=\"seed\"") &&
		    !strstr(line, "<property name=\"revision\"") &&
		    !strstr(line, "<property name=\"version\"") &&
		    !strstr(line, "properties>"))
			lines[n++] = line;
	qsort(lines, n, sizeof(*lines), cmp_lines);
	for (size_t i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
	}
	free(lines);
	free(xml);
	return out;
}

static void merge_into(char dirs[][256], const unsigned *order, size_t n, const char *out,
		       tr_merge_summary *sum, int want)
{
	const char *v[16];
	char path[256];

	for (size_t i = 0; i < n; i++)
		v[i] = dirs[order[i]];
	path_in(path, sizeof(path), out);
	ck_assert_msg(tr_merge_dirs(v, n, path, sum) == want, "%s", tr_error_last());
}

START_TEST(merge_by_count_equals_the_whole_run)
{
	json_t *whole, *merged;
	char dirs[7][256];
	char *whole_junit;

	write_run("whole", &(tr_shard){ 0, 0 }, NULL);
	whole = load("whole");
	whole_junit = testcase_lines("whole");
	for (unsigned total = 1; total <= 7; total++) {
		unsigned order[7];
		tr_merge_summary sum;
		char prefix[32], out[32], *junit;
		json_t *lat_w, *lat_m, *r;
		size_t i;

		snprintf(prefix, sizeof(prefix), "n%u-", total);
		snprintf(out, sizeof(out), "merged%u", total);
		write_shards(prefix, total, NULL, dirs);
		/* given in reverse: the order of the folders does not matter */
		for (unsigned k = 0; k < total; k++)
			order[k] = total - 1 - k;
		merge_into(dirs, order, total, out, &sum, 0);
		ck_assert_str_eq(sum.incomplete, "");
		ck_assert_uint_eq(sum.total, total);
		ck_assert_uint_eq(sum.missing, 0);
		ck_assert_uint_eq(sum.cases, N_CASES);
		merged = load(out);

		/* the same cases in the same order, the same summary and coverage */
		ck_assert(json_equal(json_object_get(whole, "cases"), json_object_get(merged, "cases")));
		ck_assert(json_equal(json_object_get(whole, "summary"),
				     json_object_get(merged, "summary")));
		ck_assert(json_equal(json_object_get(whole, "coverage"),
				     json_object_get(merged, "coverage")));
		ck_assert_str_eq(json_string_value(json_object_get(merged, "case_list_sha256")),
				 json_string_value(json_object_get(whole, "case_list_sha256")));
		ck_assert_str_eq(json_string_value(json_object_get(merged, "schema")),
				 "tokenrig-results/1");
		ck_assert_ptr_null(json_object_get(merged, "shard"));
		ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(merged, "merged"),
								    "total")), total);
		ck_assert_int_eq(json_integer_value(json_object_get(merged, "seed")), 42);
		ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(merged, "merged"),
								  "shards")), total);

		/* latency: the same rows; n, min, max, mean, stddev exact */
		lat_w = json_object_get(whole, "latency");
		lat_m = json_object_get(merged, "latency");
		ck_assert_uint_eq(json_array_size(lat_m), json_array_size(lat_w));
		json_array_foreach(lat_w, i, r) {
			json_t *m = json_array_get(lat_m, i);
			static const char *const exact[] = { "min_us", "max_us", "mean_us",
							     "stddev_us" };

			ck_assert_str_eq(json_string_value(json_object_get(m, "portal")),
					 json_string_value(json_object_get(r, "portal")));
			ck_assert_int_eq(json_integer_value(json_object_get(m, "n")),
					 json_integer_value(json_object_get(r, "n")));
			for (size_t k = 0; k < 4; k++)
				ck_assert_double_eq_tol(json_number_value(json_object_get(m, exact[k])),
							json_number_value(json_object_get(r, exact[k])),
							1e-6);
			/* percentiles: within 15% of the range of the whole */
			for (size_t k = 0; k < 4; k++) {
				static const char *const p[] = { "p50_us", "p90_us", "p95_us",
								 "p99_us" };
				double range = json_number_value(json_object_get(r, "max_us")) -
					       json_number_value(json_object_get(r, "min_us"));

				ck_assert_double_eq_tol(json_number_value(json_object_get(m, p[k])),
							json_number_value(json_object_get(r, p[k])),
							0.15 * range + 1e-6);
			}
		}
		/* junit.xml: the same testcases */
		junit = testcase_lines(out);
		ck_assert_str_eq(junit, whole_junit);
		free(junit);
		json_decref(merged);
	}
	free(whole_junit);
	json_decref(whole);
}
END_TEST

START_TEST(merge_by_durations_has_the_whole_runs_cases)
{
	json_t *whole, *merged, *c;
	char dirs[3][256], durations[300], whole_dir[256];
	unsigned order[3] = { 0, 1, 2 };
	tr_merge_summary sum;
	size_t i;

	write_run("whole", &(tr_shard){ 0, 0 }, NULL);
	path_in(whole_dir, sizeof(whole_dir), "whole");
	snprintf(durations, sizeof(durations), "%s/results.json", whole_dir);
	write_shards("lpt-", 3, durations, dirs);
	merge_into(dirs, order, 3, "merged", &sum, 0);
	ck_assert_str_eq(sum.incomplete, "");
	whole = load("whole");
	merged = load("merged");
	ck_assert(json_equal(json_object_get(whole, "summary"), json_object_get(merged, "summary")));
	ck_assert_uint_eq(json_array_size(json_object_get(merged, "cases")), N_CASES);
	/* every case of the whole, with its status */
	json_array_foreach(json_object_get(whole, "cases"), i, c) {
		json_t *m;
		size_t k;
		int found = 0;

		json_array_foreach(json_object_get(merged, "cases"), k, m)
			if (json_equal(m, c))
				found++;
		ck_assert_msg(found == 1, "%s found %d times", json_string_value(json_object_get(c,
										  "name")), found);
	}
	json_decref(whole);
	json_decref(merged);
}
END_TEST

START_TEST(merge_refuses_an_overlap)
{
	char dirs[2][256], out[256], file[300];
	unsigned char keep1[N_CASES], keep2[N_CASES];
	unsigned order[2] = { 0, 1 };
	tr_merge_summary sum;

	/* shard 2 also ran case 3 of shard 1 */
	for (size_t i = 0; i < N_CASES; i++) {
		keep1[i] = i < 15;
		keep2[i] = i >= 15 || i == 3;
	}
	write_run("o1", &(tr_shard){ 1, 2 }, keep1);
	write_run("o2", &(tr_shard){ 2, 2 }, keep2);
	path_in(dirs[0], 256, "o1");
	path_in(dirs[1], 256, "o2");
	merge_into(dirs, order, 2, "merged", &sum, TR_EINVAL);
	ck_assert_msg(strstr(tr_error_last(), names[3]) && strstr(tr_error_last(), "is in both") &&
		      strstr(tr_error_last(), "o1/results.json (shard 1/2)") &&
		      strstr(tr_error_last(), "o2/results.json (shard 2/2)") &&
		      strstr(tr_error_last(), "1 case is in more than one shard"),
		      "%s", tr_error_last());
	/* nothing written */
	path_in(out, sizeof(out), "merged");
	snprintf(file, sizeof(file), "%s/results.json", out);
	ck_assert_int_ne(access(file, F_OK), 0);
}
END_TEST

START_TEST(merge_reports_a_missing_shard)
{
	char dirs[3][256];
	unsigned order[2] = { 0, 2 };
	tr_merge_summary sum;
	json_t *merged;

	write_shards("m-", 3, NULL, dirs);
	merge_into(dirs, order, 2, "merged", &sum, 0);
	ck_assert_uint_eq(sum.missing, 1);
	ck_assert_uint_eq(sum.given, 2);
	ck_assert_msg(strstr(sum.incomplete, "shard 2 of 3 is missing") &&
		      strstr(sum.incomplete, "1/3 (") && strstr(sum.incomplete, "3/3 ("),
		      "%s", sum.incomplete);
	merged = load("merged");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(json_object_get(
		merged, "merged"), "missing"), 0)), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(merged, "cases")), N_CASES - 10);
	json_decref(merged);

	/* two missing of four */
	{
		char d4[4][256];
		unsigned o4[2] = { 1, 2 };

		write_shards("m4-", 4, NULL, d4);
		merge_into(d4, o4, 2, "merged4", &sum, 0);
		ck_assert_msg(strstr(sum.incomplete, "shards 1, 4 of 4 are missing"), "%s",
			      sum.incomplete);
	}
}
END_TEST

START_TEST(merge_reports_an_unfinished_shard)
{
	char dirs[2][256];
	unsigned order[2] = { 0, 1 };
	unsigned char keep[N_CASES];
	tr_merge_summary sum;
	tr_report *rep;
	char path[256];

	write_shards("u-", 2, NULL, dirs);
	/* shard 2 again, its last case missing: a run that died */
	ck_assert_int_eq(tr_shard_select(&(tr_shard){ 2, 2 }, name_ptrs, N_CASES, NULL, keep), 0);
	keep[N_CASES - 1] = 0;
	write_run("u-2", &(tr_shard){ 2, 2 }, keep);
	merge_into(dirs, order, 2, "merged", &sum, 0);
	ck_assert_msg(strstr(sum.incomplete, "the shards' 29 cases are not the run's case list"),
		      "%s", sum.incomplete);

	/* an interrupted shard says so */
	path_in(path, sizeof(path), "u-2");
	ck_assert_int_eq(tr_report_open(&rep, path), 0);
	ck_assert_int_eq(tr_shard_record(rep, &(tr_shard){ 2, 2 }, name_ptrs, N_CASES, NULL), 0);
	ck_assert_int_eq(tr_report_interrupted(rep, SIGTERM, 0), 0);
	tr_report_free(rep);
	merge_into(dirs, order, 2, "merged", &sum, 0);
	ck_assert_msg(strstr(sum.incomplete, "shard 2/2 (") &&
		      strstr(sum.incomplete, "interrupted by SIGTERM after 0 cases"), "%s",
		      sum.incomplete);
	{
		json_t *m = load("merged");

		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "interrupted"),
								   "signal")), "SIGTERM");
		json_decref(m);
	}
}
END_TEST

/* docs of shards 1 and 2 of 2, loaded, for the in-memory refusals. */
static void two_docs(json_t **docs)
{
	char dirs[2][256];

	write_shards("d-", 2, NULL, dirs);
	docs[0] = load("d-1");
	docs[1] = load("d-2");
}

START_TEST(merge_refuses_shards_of_other_runs)
{
	static const struct { const char *key, *sub, *says; } rows[] = {
		{ "suites_sha256", NULL, "suites (suites_sha256) absent vs \"" },
		{ "case_list_sha256", NULL, "case list (case_list_sha256)" },
		{ "seed", NULL, "seed 42 vs 43" },
		{ "tool", "revision", "tokenrig revision" },
		{ "tool", "version", "tokenrig version" },
		{ "shard", "total", "number of shards 2 vs 3" },
	};
	const char *labels[] = { "A", "B" };
	tr_merge_summary sum;

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		json_t *docs[2], *out = NULL, *target;

		two_docs(docs);
		target = rows[r].sub ? json_object_get(docs[1], rows[r].key) : docs[1];
		if (!strcmp(rows[r].key, "suites_sha256"))
			json_object_set_new(docs[1], "suites_sha256", json_string(
				"0000000000000000000000000000000000000000000000000000000000000000"));
		else if (!strcmp(rows[r].key, "case_list_sha256"))
			json_object_set_new(docs[1], "case_list_sha256", json_string(
				"1111111111111111111111111111111111111111111111111111111111111111"));
		else if (!strcmp(rows[r].key, "seed"))
			json_object_set_new(docs[1], "seed", json_integer(43));
		else if (!strcmp(rows[r].key, "shard"))
			json_object_set_new(target, "total", json_integer(3));
		else
			json_object_set_new(target, rows[r].sub, json_string("other"));
		ck_assert_int_eq(tr_merge_docs(docs, labels, 2, &out, &sum), TR_EINVAL);
		ck_assert_ptr_null(out);
		ck_assert_msg(strstr(tr_error_last(), "A and B are not shards of one run") &&
			      strstr(tr_error_last(), rows[r].says), "%s", tr_error_last());
		json_decref(docs[0]);
		json_decref(docs[1]);
	}
}
END_TEST

START_TEST(merge_refuses_what_is_no_shard)
{
	const char *labels[] = { "A", "B" };
	tr_merge_summary sum;
	json_t *docs[2], *out = NULL, *whole;

	two_docs(docs);
	/* the same shard twice */
	json_decref(docs[1]);
	docs[1] = json_deep_copy(docs[0]);
	ck_assert_int_eq(tr_merge_docs(docs, labels, 2, &out, &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "shard 1/2 is given twice: A and B"));
	/* an unsharded run */
	write_run("whole", &(tr_shard){ 0, 0 }, NULL);
	whole = load("whole");
	ck_assert_int_eq(tr_merge_docs(&whole, labels, 1, &out, &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "A: not a shard"));
	/* another schema, a shard out of range, no case list */
	json_object_set_new(docs[1], "schema", json_string("tokenrig-bench/1"));
	ck_assert_int_eq(tr_merge_docs(docs, labels, 2, &out, &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "B: not a results file"));
	json_object_set_new(docs[1], "schema", json_string("tokenrig-results/1"));
	json_object_set_new(json_object_get(docs[1], "shard"), "index", json_integer(3));
	ck_assert_int_eq(tr_merge_docs(docs, labels, 2, &out, &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "1 <= I <= N"));
	json_object_set_new(json_object_get(docs[1], "shard"), "index", json_integer(2));
	json_object_del(docs[1], "case_list_sha256");
	ck_assert_int_eq(tr_merge_docs(docs, labels, 2, &out, &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "B: no case_list_sha256"));
	ck_assert_int_eq(tr_merge_docs(docs, labels, 0, &out, &sum), TR_EINVAL);
	ck_assert_ptr_null(out);
	json_decref(whole);
	json_decref(docs[0]);
	json_decref(docs[1]);
}
END_TEST

START_TEST(merge_checks_the_files)
{
	char dirs[2][256], xml[300], out[256];
	unsigned order[2] = { 0, 1 };
	const char *v[2];
	tr_merge_summary sum;
	const char *other = "<?xml version=\"1.0\"?>\n<testsuites name=\"tokenrig\" tests=\"3\">\n"
			    "</testsuites>\n";

	write_shards("f-", 2, NULL, dirs);
	/* --out is a shard's own folder */
	v[0] = dirs[0];
	v[1] = dirs[1];
	ck_assert_int_eq(tr_merge_dirs(v, 2, dirs[1], &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "would overwrite it"));
	/* a junit.xml of another run */
	snprintf(xml, sizeof(xml), "%s/junit.xml", dirs[1]);
	ck_assert_int_eq(tr_fs_write_atomic(xml, other, strlen(other), 0644), 0);
	merge_into(dirs, order, 2, "merged", &sum, TR_EINVAL);
	ck_assert_msg(strstr(tr_error_last(), "has 3 tests but") &&
		      strstr(tr_error_last(), "15 cases"), "%s", tr_error_last());
	/* no junit.xml at all, no results.json */
	ck_assert_int_eq(unlink(xml), 0);
	merge_into(dirs, order, 2, "merged", &sum, TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "junit.xml"));
	path_in(out, sizeof(out), "nothing-here");
	v[0] = out;
	ck_assert_int_eq(tr_merge_dirs(v, 1, dirs[0], &sum), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "nothing-here/results.json"));
}
END_TEST

/* Latency rows of three shards of one column's samples against the whole's. */
START_TEST(latency_rows_merge)
{
	tr_samples part[3] = { { 0 } }, all = { 0 };
	json_t *docs[3];
	const char *labels[] = { "A", "B", "C" };
	tr_summary sw;
	tr_merge_summary sum;
	json_t *out, *row;
	unsigned state = 12345;

	for (size_t i = 0; i < 3000; i++) {
		uint64_t v;

		state = state * 1103515245u + 12345u;
		/* three shards of different speeds: a mixture, not three copies */
		v = 20000 + (state >> 16) % 5000 + (i % 3) * 4000;
		tr_samples_add(&part[i % 3], v);
		tr_samples_add(&all, v);
	}
	for (unsigned k = 0; k < 3; k++) {
		tr_summary s;

		tr_stats_summarize(&part[k], &s);
		docs[k] = json_pack("{s:s, s:{s:i, s:i}, s:s, s:[], s:[{s:s, s:s, s:s, s:s, s:I, "
				    "s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}]}",
				    "schema", "tokenrig-results/1", "shard", "index", (int)k + 1,
				    "total", 3, "case_list_sha256",
				    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				    "cases", "latency", "portal", "suzhou", "kind", "softhsm",
				    "algorithm", "p256", "stage", "sign", "n", (json_int_t)s.n,
				    "min_us", s.min / 1e3, "p50_us", s.p50 / 1e3, "p90_us",
				    s.p90 / 1e3, "p95_us", s.p95 / 1e3, "p99_us", s.p99 / 1e3,
				    "max_us", s.max / 1e3, "mean_us", s.mean / 1e3, "stddev_us",
				    s.stddev / 1e3);
		ck_assert_ptr_nonnull(docs[k]);
		tr_samples_free(&part[k]);
	}
	tr_stats_summarize(&all, &sw);
	ck_assert_int_eq(tr_merge_docs(docs, labels, 3, &out, &sum), 0);
	ck_assert_str_eq(sum.incomplete, "");
	ck_assert_uint_eq(json_array_size(json_object_get(out, "latency")), 1);
	row = json_array_get(json_object_get(out, "latency"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(row, "n")), 3000);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "min_us")), sw.min / 1e3, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "max_us")), sw.max / 1e3, 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "mean_us")), sw.mean / 1e3,
				1e-6);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "stddev_us")),
				sw.stddev / 1e3, 1e-6);
	/* the mixture's percentiles: within 2% of the true ones here */
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "p50_us")), sw.p50 / 1e3,
				0.02 * sw.p50 / 1e3);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "p90_us")), sw.p90 / 1e3,
				0.02 * sw.p90 / 1e3);
	ck_assert_double_eq_tol(json_number_value(json_object_get(row, "p99_us")), sw.p99 / 1e3,
				0.02 * sw.p99 / 1e3);
	ck_assert_int_eq(json_integer_value(json_object_get(row, "merged_from")), 3);
	ck_assert_uint_eq(json_array_size(json_object_get(row, "approximate")), 4);
	tr_samples_free(&all);
	json_decref(out);
	for (unsigned k = 0; k < 3; k++)
		json_decref(docs[k]);
}
END_TEST

Suite *merge_suite(void)
{
	Suite *s = suite_create("merge");
	TCase *tc = tcase_create("merge");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, merge_by_count_equals_the_whole_run);
	tcase_add_test(tc, merge_by_durations_has_the_whole_runs_cases);
	tcase_add_test(tc, merge_refuses_an_overlap);
	tcase_add_test(tc, merge_reports_a_missing_shard);
	tcase_add_test(tc, merge_reports_an_unfinished_shard);
	tcase_add_test(tc, merge_refuses_shards_of_other_runs);
	tcase_add_test(tc, merge_refuses_what_is_no_shard);
	tcase_add_test(tc, merge_checks_the_files);
	tcase_add_test(tc, latency_rows_merge);
	suite_add_tcase(s, tc);
	return s;
}
