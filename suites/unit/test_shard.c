/* Shards: parsing --shard, the slices (by count, by the last run's durations), digests. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/report.h"
#include "harness/shard.h"

static const char *const all_ci_vars[] = {
	"TOKENRIG_SHARD_INDEX", "TOKENRIG_SHARD_TOTAL", "CI_NODE_INDEX", "CI_NODE_TOTAL",
	"BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", "CIRCLE_NODE_INDEX",
	"CIRCLE_NODE_TOTAL",
};

static void clear_ci_vars(void)
{
	for (size_t i = 0; i < sizeof(all_ci_vars) / sizeof(all_ci_vars[0]); i++)
		unsetenv(all_ci_vars[i]);
}

/* n names "case-000" ... in order. */
static char **make_names(size_t n)
{
	char **v = calloc(n ? n : 1, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i] = malloc(32);
		snprintf(v[i], 32, "case-%03zu", i);
	}
	return v;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A results.json whose cases are names[i] with durations ms[i], in file order. */
static void write_results(const char *path, const char *const *names, const double *ms,
			  size_t n)
{
	json_t *cases = json_array();
	json_t *doc;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(cases, json_pack("{s:s, s:s, s:f}", "name", names[i],
						       "status", "passed", "duration_ms", ms[i]));
	doc = json_pack("{s:s, s:o}", "schema", "tokenrig-results/1", "cases", cases);
	ck_assert_int_eq(json_dump_file(doc, path, 0), 0);
	json_decref(doc);
}

static char tmp_dir[64];

static void make_tmp(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/tr-shard-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void remove_tmp(void)
{
	tr_fs_remove_tree(tmp_dir);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	ck_assert_int_eq(tr_fs_join(buf, len, tmp_dir, name), 0);
}

/* --- parsing ---------------------------------------------------------- */

START_TEST(parse_accepts_i_of_n)
{
	tr_shard s;

	ck_assert_int_eq(tr_shard_parse("1/1", &s), 0);
	ck_assert_uint_eq(s.index, 1);
	ck_assert_uint_eq(s.total, 1);
	ck_assert_int_eq(tr_shard_parse("2/4", &s), 0);
	ck_assert_uint_eq(s.index, 2);
	ck_assert_uint_eq(s.total, 4);
	ck_assert_int_eq(tr_shard_parse("7/7", &s), 0);
	ck_assert_uint_eq(s.index, 7);
	ck_assert_int_eq(tr_shard_parse("1000/1000", &s), 0);
	ck_assert_uint_eq(s.total, 1000);
}
END_TEST

START_TEST(parse_rejects_bad_specs)
{
	static const struct { const char *spec, *says; } bad[] = {
		{ "", "empty" },
		{ "0/3", "index must be 1..3" },
		{ "4/3", "index must be 1..3" },
		{ "1/0", "number of shards must be 1..1000" },
		{ "1/1001", "number of shards must be 1..1000" },
		{ "a/3", "expected I/N" },
		{ "1/", "expected I/N" },
		{ "/3", "expected I/N" },
		{ "+1/3", "expected I/N" },
		{ "-1/3", "expected I/N" },
		{ "1/3x", "expected I/N" },
		{ " 1/3", "expected I/N" },
		{ "1//3", "expected I/N" },
		{ "2", "expected I/N" },
		{ "0x1/3", "expected I/N" },
		{ "1/99999999999", "expected I/N" },
		{ "Auto", "expected I/N" },
	};
	tr_shard s = { 9, 9 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(tr_shard_parse(bad[i].spec, &s) == TR_EINVAL, "'%s' accepted",
			      bad[i].spec);
		ck_assert_msg(strstr(tr_error_last(), bad[i].says) != NULL, "'%s': %s",
			      bad[i].spec, tr_error_last());
		if (*bad[i].spec)
			ck_assert_msg(strstr(tr_error_last(), bad[i].spec) != NULL,
				      "the message does not quote '%s': %s", bad[i].spec,
				      tr_error_last());
	}
	/* a refused spec leaves the output alone */
	ck_assert_uint_eq(s.index, 9);
	ck_assert_uint_eq(s.total, 9);
	ck_assert_int_eq(tr_shard_parse(NULL, &s), TR_EINVAL);
}
END_TEST

START_TEST(auto_without_variables_names_them)
{
	tr_shard s;

	clear_ci_vars();
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	for (size_t i = 0; i < sizeof(all_ci_vars) / sizeof(all_ci_vars[0]); i++)
		ck_assert_msg(strstr(tr_error_last(), all_ci_vars[i]) != NULL, "%s not named: %s",
			      all_ci_vars[i], tr_error_last());
	/* an empty value is not set */
	setenv("TOKENRIG_SHARD_INDEX", "", 1);
	setenv("TOKENRIG_SHARD_TOTAL", "", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
}
END_TEST

START_TEST(auto_reads_each_ci)
{
	static const struct {
		const char *index_var, *index, *total_var, *total;
		unsigned want_index, want_total;
	} rows[] = {
		{ "TOKENRIG_SHARD_INDEX", "2", "TOKENRIG_SHARD_TOTAL", "4", 2, 4 },
		{ "CI_NODE_INDEX", "3", "CI_NODE_TOTAL", "4", 3, 4 },
		{ "BUILDKITE_PARALLEL_JOB", "0", "BUILDKITE_PARALLEL_JOB_COUNT", "3", 1, 3 },
		{ "BUILDKITE_PARALLEL_JOB", "2", "BUILDKITE_PARALLEL_JOB_COUNT", "3", 3, 3 },
		{ "CIRCLE_NODE_INDEX", "1", "CIRCLE_NODE_TOTAL", "2", 2, 2 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		tr_shard s = { 0, 0 };

		clear_ci_vars();
		setenv(rows[i].index_var, rows[i].index, 1);
		setenv(rows[i].total_var, rows[i].total, 1);
		ck_assert_msg(tr_shard_parse("auto", &s) == 0, "%s: %s", rows[i].index_var,
			      tr_error_last());
		ck_assert_uint_eq(s.index, rows[i].want_index);
		ck_assert_uint_eq(s.total, rows[i].want_total);
	}
}
END_TEST

START_TEST(auto_prefers_the_rigs_own_pair)
{
	tr_shard s;

	clear_ci_vars();
	setenv("CI_NODE_INDEX", "1", 1);
	setenv("CI_NODE_TOTAL", "2", 1);
	setenv("TOKENRIG_SHARD_INDEX", "3", 1);
	setenv("TOKENRIG_SHARD_TOTAL", "5", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), 0);
	ck_assert_uint_eq(s.index, 3);
	ck_assert_uint_eq(s.total, 5);
}
END_TEST

START_TEST(auto_gitlab_job_without_parallel)
{
	tr_shard s = { 0, 0 };

	/* GitLab sets CI_NODE_TOTAL=1 and no index on a job without parallel: */
	clear_ci_vars();
	setenv("CI_NODE_TOTAL", "1", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), 0);
	ck_assert_uint_eq(s.index, 1);
	ck_assert_uint_eq(s.total, 1);
	/* ... but a total above 1 without an index is an error */
	setenv("CI_NODE_TOTAL", "3", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "CI_NODE_INDEX is not"));
}
END_TEST

START_TEST(auto_rejects_bad_values)
{
	tr_shard s;

	clear_ci_vars();
	setenv("CI_NODE_INDEX", "5", 1);
	setenv("CI_NODE_TOTAL", "4", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "CI_NODE_INDEX='5'"));
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "1..4"));

	clear_ci_vars();
	setenv("BUILDKITE_PARALLEL_JOB", "3", 1);       /* 0-based: 0..2 */
	setenv("BUILDKITE_PARALLEL_JOB_COUNT", "3", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "0..2"));

	clear_ci_vars();
	setenv("TOKENRIG_SHARD_INDEX", "1", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "TOKENRIG_SHARD_TOTAL is not"));

	clear_ci_vars();
	setenv("TOKENRIG_SHARD_INDEX", "1", 1);
	setenv("TOKENRIG_SHARD_TOTAL", "two", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "TOKENRIG_SHARD_TOTAL='two'"));

	clear_ci_vars();
	setenv("CIRCLE_NODE_INDEX", "0", 1);
	setenv("CIRCLE_NODE_TOTAL", "0", 1);
	ck_assert_int_eq(tr_shard_parse("auto", &s), TR_EINVAL);
}
END_TEST

/* --- slices ----------------------------------------------------------- */

/*
 * Every case in exactly one of the N shards; returns each shard's count
 * in counts[1..N].
 */
static void check_partition(const char *const *names, size_t n, unsigned total,
			    const char *prev, size_t *counts)
{
	unsigned char *keep = malloc(n ? n : 1);
	unsigned *owner = calloc(n ? n : 1, sizeof(*owner));

	for (unsigned k = 1; k <= total; k++) {
		tr_shard s = { k, total };

		counts[k] = 0;
		memset(keep, 7, n);
		ck_assert_msg(tr_shard_select(&s, names, n, prev, keep) == 0, "%s",
			      tr_error_last());
		for (size_t i = 0; i < n; i++) {
			ck_assert_msg(keep[i] == 0 || keep[i] == 1, "keep[%zu] = %d", i, keep[i]);
			if (!keep[i])
				continue;
			ck_assert_msg(owner[i] == 0, "%s in shards %u and %u of %u", names[i],
				      owner[i], k, total);
			owner[i] = k;
			counts[k]++;
		}
	}
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(owner[i] != 0, "%s in no shard of %u", names[i], total);
	free(keep);
	free(owner);
}

START_TEST(by_count_partitions_evenly)
{
	static const size_t sizes[] = { 0, 1, 2, 5, 6, 7, 13, 100, 672 };

	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t n = sizes[z];
		char **names = make_names(n);

		for (unsigned total = 1; total <= 7; total++) {
			size_t counts[8];

			check_partition((const char *const *)names, n, total, NULL, counts);
			for (unsigned k = 1; k <= total; k++)
				ck_assert_msg(counts[k] == n / total || counts[k] == n / total + 1,
					      "n=%zu N=%u: shard %u has %zu", n, total, k, counts[k]);
		}
		free_names(names, n);
	}
}
END_TEST

START_TEST(by_count_keeps_the_run_order_together)
{
	char **names = make_names(10);
	unsigned char keep[10];
	tr_shard s = { 2, 3 };

	/* shard 2 of 3 over 10 cases: cases 3, 4, 5 (0-based), one contiguous run */
	ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, 10, NULL, keep), 0);
	for (size_t i = 0; i < 10; i++)
		ck_assert_int_eq(keep[i], i >= 3 && i < 6);
	free_names(names, 10);
}
END_TEST

START_TEST(no_sharding_keeps_everything)
{
	char **names = make_names(5);
	unsigned char keep[5] = { 0 };
	tr_shard s = { 0, 0 };

	ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, 5, NULL, keep), 0);
	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(keep[i], 1);
	free_names(names, 5);
}
END_TEST

START_TEST(select_rejects_bad_input)
{
	const char *dup[] = { "a", "b", "a" };
	unsigned char keep[3];
	tr_shard s = { 1, 2 }, bad = { 3, 2 };
	char path[256];

	ck_assert_int_eq(tr_shard_select(&s, dup, 3, NULL, keep), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "'a' is not unique"));
	ck_assert_int_eq(tr_shard_select(&bad, dup, 2, NULL, keep), TR_EINVAL);

	make_tmp();
	tmp_path(path, sizeof(path), "missing.json");
	ck_assert_int_eq(tr_shard_select(&s, dup, 2, path, keep), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), path));
	tmp_path(path, sizeof(path), "other.json");
	ck_assert_int_eq(tr_fs_write_atomic(path, "{\"schema\":\"tokenrig-bench/1\"}", 29, 0644), 0);
	ck_assert_int_eq(tr_shard_select(&s, dup, 2, path, keep), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "tokenrig-results/1"));
	tmp_path(path, sizeof(path), "truncated.json");
	ck_assert_int_eq(tr_fs_write_atomic(path, "{\"schema\":\"tokenr", 17, 0644), 0);
	ck_assert_int_eq(tr_shard_select(&s, dup, 2, path, keep), TR_EINVAL);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "truncated.json:1"));
	remove_tmp();
}
END_TEST

START_TEST(durations_partition_and_are_deterministic)
{
	size_t n = 97;
	char **names = make_names(n);
	double *ms = malloc(n * sizeof(*ms));
	char path[256], shuffled_path[256];
	const char **rev = malloc(n * sizeof(*rev));
	double *rev_ms = malloc(n * sizeof(*rev_ms));

	make_tmp();
	/* durations with many ties, some cases missing from the file (the last 10) */
	for (size_t i = 0; i < n; i++)
		ms[i] = (double)((i * 37) % 11) * 1.5;
	tmp_path(path, sizeof(path), "prev.json");
	write_results(path, (const char *const *)names, ms, n - 10);
	/* the same durations in another file order */
	for (size_t i = 0; i < n - 10; i++) {
		rev[i] = names[n - 11 - i];
		rev_ms[i] = ms[n - 11 - i];
	}
	tmp_path(shuffled_path, sizeof(shuffled_path), "shuffled.json");
	write_results(shuffled_path, rev, rev_ms, n - 10);

	for (unsigned total = 1; total <= 7; total++) {
		size_t counts[8];

		check_partition((const char *const *)names, n, total, path, counts);
		for (unsigned k = 1; k <= total; k++) {
			tr_shard s = { k, total };
			unsigned char a[97], b[97], c[97];

			ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, n, path,
							 a), 0);
			ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, n, path,
							 b), 0);
			ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, n,
							 shuffled_path, c), 0);
			ck_assert_mem_eq(a, b, n);
			ck_assert_mem_eq(a, c, n);
		}
	}
	remove_tmp();
	free(rev);
	free(rev_ms);
	free(ms);
	free_names(names, n);
}
END_TEST

/* Each shard's total duration by the file, for the balance checks. */
static void shard_loads(const char *const *names, size_t n, const double *ms, unsigned total,
			const char *prev, double *load)
{
	unsigned char *keep = malloc(n);

	for (unsigned k = 1; k <= total; k++) {
		tr_shard s = { k, total };

		load[k] = 0;
		ck_assert_int_eq(tr_shard_select(&s, names, n, prev, keep), 0);
		for (size_t i = 0; i < n; i++)
			load[k] += keep[i] ? ms[i] : 0;
	}
	free(keep);
}

START_TEST(durations_balance_a_long_case)
{
	/* one 1000 ms case first, twenty of 10 ms: by count 2 shards are 1090 / 110 */
	size_t n = 21;
	char **names = make_names(n);
	double ms[21], load[3];
	char path[256];
	unsigned char keep[21];
	tr_shard first = { 1, 2 };

	for (size_t i = 0; i < n; i++)
		ms[i] = i == 0 ? 1000 : 10;
	make_tmp();
	tmp_path(path, sizeof(path), "prev.json");
	write_results(path, (const char *const *)names, ms, n);

	shard_loads((const char *const *)names, n, ms, 2, NULL, load);
	ck_assert_double_eq_tol(load[1], 1090, 1e-9);
	shard_loads((const char *const *)names, n, ms, 2, path, load);
	ck_assert_double_eq_tol(load[1], 1000, 1e-9);
	ck_assert_double_eq_tol(load[2], 200, 1e-9);
	/* the long case is alone in its shard */
	ck_assert_int_eq(tr_shard_select(&first, (const char *const *)names, n, path, keep), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(keep[i], i == 0);
	remove_tmp();
	free_names(names, n);
}
END_TEST

START_TEST(durations_balance_within_the_longest_case)
{
	/* LPT: no shard exceeds the lightest by more than the longest case */
	size_t n = 60;
	char **names = make_names(n);
	double ms[60], load[8];
	char path[256];

	for (size_t i = 0; i < n; i++)
		ms[i] = (double)(((i * 7919) % 97) + 3);
	make_tmp();
	tmp_path(path, sizeof(path), "prev.json");
	write_results(path, (const char *const *)names, ms, n);
	for (unsigned total = 2; total <= 7; total++) {
		double lo = 1e18, hi = 0;

		shard_loads((const char *const *)names, n, ms, total, path, load);
		for (unsigned k = 1; k <= total; k++) {
			lo = load[k] < lo ? load[k] : lo;
			hi = load[k] > hi ? load[k] : hi;
		}
		ck_assert_msg(hi - lo <= 99 + 1e-9, "N=%u: loads %.0f..%.0f", total, lo, hi);
	}
	remove_tmp();
	free_names(names, n);
}
END_TEST

START_TEST(durations_missing_count_as_the_median)
{
	/*
	 * The file has A 400, B 200, C 100 (median 200); M is new. As 200, LPT
	 * over 2 shards gives {A, C} {B, M}; as 0 it would give {A, M} {B, C}.
	 */
	const char *names[] = { "A", "B", "C", "M" };
	const double ms[] = { 400, 200, 100 };
	unsigned char keep[4];
	tr_shard first = { 1, 2 };
	char path[256];

	make_tmp();
	tmp_path(path, sizeof(path), "prev.json");
	write_results(path, names, ms, 3);
	ck_assert_int_eq(tr_shard_select(&first, names, 4, path, keep), 0);
	ck_assert_int_eq(keep[0], 1);
	ck_assert_int_eq(keep[1], 0);
	ck_assert_int_eq(keep[2], 1);
	ck_assert_int_eq(keep[3], 0);
	remove_tmp();
}
END_TEST

START_TEST(durations_file_without_cases_is_by_count)
{
	char **names = make_names(9);
	unsigned char a[9], b[9];
	tr_shard s = { 2, 3 };
	char path[256];

	make_tmp();
	tmp_path(path, sizeof(path), "empty.json");
	write_results(path, NULL, NULL, 0);
	ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, 9, path, a), 0);
	ck_assert_int_eq(tr_shard_select(&s, (const char *const *)names, 9, NULL, b), 0);
	ck_assert_mem_eq(a, b, 9);
	remove_tmp();
	free_names(names, 9);
}
END_TEST

/* --- names and digests ------------------------------------------------ */

static void put(const char *dir, const char *rel, const char *text);

START_TEST(record_writes_the_provenance)
{
	const char *names[] = { "SZ-E01 a [softhsm/p256]", "SZ-E02 b [softhsm/p256]" };
	tr_shard s = { 2, 3 }, none = { 0, 0 };
	char path[256], suites[256], list_digest[65], suites_digest[65];
	tr_report *rep;
	json_t *doc;

	make_tmp();
	tmp_path(suites, sizeof(suites), "suites");
	put(suites, "suzhou/a.scn", "id = SZ-E01\n");
	ck_assert_int_eq(tr_shard_case_list_digest(names, 2, list_digest), 0);
	ck_assert_int_eq(tr_shard_suites_digest(suites, suites_digest), 0);

	ck_assert_int_eq(tr_report_open(&rep, tmp_dir), 0);
	ck_assert_int_eq(tr_shard_record(rep, &s, names, 2, suites), 0);
	ck_assert_int_eq(tr_report_finish(rep, 0.5), 0);
	tr_report_free(rep);
	tmp_path(path, sizeof(path), "results.json");
	ck_assert_ptr_nonnull(doc = json_load_file(path, 0, NULL));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "shard"),
							    "index")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "shard"),
							    "total")), 3);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "case_list_sha256")),
			 list_digest);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "suites_sha256")), suites_digest);
	json_decref(doc);

	/* unsharded: the digests, no shard */
	ck_assert_int_eq(tr_report_open(&rep, tmp_dir), 0);
	ck_assert_int_eq(tr_shard_record(rep, &none, names, 2, NULL), 0);
	ck_assert_int_eq(tr_report_finish(rep, 0.5), 0);
	tr_report_free(rep);
	ck_assert_ptr_nonnull(doc = json_load_file(path, 0, NULL));
	ck_assert_ptr_null(json_object_get(doc, "shard"));
	ck_assert_ptr_null(json_object_get(doc, "suites_sha256"));
	ck_assert_str_eq(json_string_value(json_object_get(doc, "case_list_sha256")),
			 list_digest);
	json_decref(doc);
	remove_tmp();
}
END_TEST

START_TEST(case_list_digest_is_order_free)
{
	const char *ab[] = { "a", "b" }, *ba[] = { "b", "a" }, *abc[] = { "a", "b", "c" };
	char d1[65], d2[65], d3[65];

	ck_assert_int_eq(tr_shard_case_list_digest(ab, 2, d1), 0);
	/* printf 'a\nb\n' | sha256sum */
	ck_assert_str_eq(d1, "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2");
	ck_assert_int_eq(tr_shard_case_list_digest(ba, 2, d2), 0);
	ck_assert_str_eq(d1, d2);
	ck_assert_int_eq(tr_shard_case_list_digest(abc, 3, d3), 0);
	ck_assert_str_ne(d1, d3);
	ck_assert_int_eq(tr_shard_case_list_digest(NULL, 0, d3), 0);
	ck_assert_str_eq(d3, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

static void put(const char *dir, const char *rel, const char *text)
{
	char path[512], sub[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(sub, sizeof(sub), "%s", path);
	*strrchr(sub, '/') = '\0';
	ck_assert_int_eq(tr_fs_mkdirs(sub, 0755), 0);
	ck_assert_int_eq(tr_fs_write_atomic(path, text, strlen(text), 0644), 0);
}

START_TEST(suites_digest_follows_the_files)
{
	char a[256], b[256], slash[260], d1[65], d2[65], d3[65];

	make_tmp();
	tmp_path(a, sizeof(a), "one");
	tmp_path(b, sizeof(b), "two");
	put(a, "suzhou/x.scn", "id = SZ-E01\n");
	put(a, "hebei/y.scn", "id = HB-E01\n");
	put(a, "README", "not a scenario\n");
	put(b, "suzhou/x.scn", "id = SZ-E01\n");
	put(b, "hebei/y.scn", "id = HB-E01\n");

	/* the same files in another folder, or named with a slash: the same digest */
	ck_assert_int_eq(tr_shard_suites_digest(a, d1), 0);
	ck_assert_int_eq(tr_shard_suites_digest(b, d2), 0);
	ck_assert_str_eq(d1, d2);
	snprintf(slash, sizeof(slash), "%s/", a);
	ck_assert_int_eq(tr_shard_suites_digest(slash, d3), 0);
	ck_assert_str_eq(d1, d3);
	/* an edited scenario, a moved one, a tokens.conf: another */
	put(b, "hebei/y.scn", "id = HB-E02\n");
	ck_assert_int_eq(tr_shard_suites_digest(b, d2), 0);
	ck_assert_str_ne(d1, d2);
	put(b, "hebei/y.scn", "id = HB-E01\n");
	put(b, "tokens.conf", "[suzhou]\n");
	ck_assert_int_eq(tr_shard_suites_digest(b, d2), 0);
	ck_assert_str_ne(d1, d2);
	put(a, "sichuan/y.scn", "id = HB-E01\n");
	ck_assert_int_eq(tr_shard_suites_digest(a, d3), 0);
	ck_assert_str_ne(d1, d3);
	tmp_path(a, sizeof(a), "absent");
	ck_assert_int_lt(tr_shard_suites_digest(a, d3), 0);
	remove_tmp();
}
END_TEST

Suite *shard_suite(void)
{
	Suite *s = suite_create("shard");
	TCase *parse = tcase_create("parse");
	TCase *select = tcase_create("select");
	TCase *digest = tcase_create("digest");

	tcase_add_test(parse, parse_accepts_i_of_n);
	tcase_add_test(parse, parse_rejects_bad_specs);
	tcase_add_test(parse, auto_without_variables_names_them);
	tcase_add_test(parse, auto_reads_each_ci);
	tcase_add_test(parse, auto_prefers_the_rigs_own_pair);
	tcase_add_test(parse, auto_gitlab_job_without_parallel);
	tcase_add_test(parse, auto_rejects_bad_values);
	tcase_add_test(select, by_count_partitions_evenly);
	tcase_add_test(select, by_count_keeps_the_run_order_together);
	tcase_add_test(select, no_sharding_keeps_everything);
	tcase_add_test(select, select_rejects_bad_input);
	tcase_add_test(select, durations_partition_and_are_deterministic);
	tcase_add_test(select, durations_balance_a_long_case);
	tcase_add_test(select, durations_balance_within_the_longest_case);
	tcase_add_test(select, durations_missing_count_as_the_median);
	tcase_add_test(select, durations_file_without_cases_is_by_count);
	tcase_add_test(digest, record_writes_the_provenance);
	tcase_add_test(digest, case_list_digest_is_order_free);
	tcase_add_test(digest, suites_digest_follows_the_files);
	suite_add_tcase(s, parse);
	suite_add_tcase(s, select);
	suite_add_tcase(s, digest);
	return s;
}
