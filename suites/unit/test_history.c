/*
 * The run history (harness/history.c) and the nightly report over it:
 * import, idempotence, migration from an older schema, bad input leaving
 * the database unchanged, two importing processes at once, and change /
 * flaky detection on hand-made histories.
 */
#include <check.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/history.h"
#include "harness/nightly.h"

static char dir[] = "/tmp/tokenrig-history-XXXXXX";
static char db[256];

static void setup(void)
{
	strcpy(dir, "/tmp/tokenrig-history-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/history.sqlite", dir);
}

static void teardown(void)
{
	tr_fs_remove_tree(dir);
}

/*
 * A results.json of three cases: SZ-E05 on softhsm with `status5`, SZ-E01
 * failed at a step on opensc (its title needs escaping), SC-W01 skipped on
 * vcard with a warning.
 */
static void write_results(const char *name, const char *started, const char *status5,
			  char *path, size_t len)
{
	json_t *root = json_pack(
		"{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:i, s:{s:i, s:i, s:i, s:i, s:i},"
		" s:[{s:s, s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:f},"
		"    {s:s, s:[s, s], s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:s, s:s},"
		"    {s:s, s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:[{s:s, s:s}]}],"
		" s:[{s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f},"
		"    {s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f}]}",
		"schema", "tokenrig-results/1", "started", started, "finished", started,
		"tool", "version", "0.1.0", "revision", "abc1234", "host", "ci-1", "seed", 7,
		"summary", "passed", !strcmp(status5, "passed"), "failed",
		1 + !strcmp(status5, "failed"), "skipped", 1 + !strcmp(status5, "skipped"), "error", 0,
		"warnings", 1,
		"cases",
		"name", "SZ-E05 twice", "ids", "SZ-E05", "title", "twice",
		"scenario", "suites/suzhou/SZ-E05-twice.scn", "portal", "suzhou", "kind", "softhsm",
		"algorithm", "p256", "status", status5, "duration_ms", 1.5,
		"name", "SZ-E01", "ids", "SZ-E01", "SZ-REG-OK", "title", "<odd> & \"quoted\"",
		"scenario", "suites/suzhou/SZ-E01-unknown.scn", "portal", "suzhou", "kind", "opensc",
		"algorithm", "rsa2048", "status", "failed", "duration_ms", 2.0,
		"message", "b.scn:7: message is 'x'", "step", "hall (ca-login, line 7)",
		"expected", "message = 该证书", "actual", "HTTP 403 {\"code\":\"SZ_NO_UNIT\"}",
		"code", "SZ_NO_UNIT",
		"name", "SC-W01", "ids", "SC-W01", "title", "warn",
		"scenario", "suites/sichuan/SC-W01-warn.scn", "portal", "sichuan", "kind", "vcard",
		"algorithm", "sm2", "status", "skipped", "duration_ms", 0.0,
		"message", "no virtual cards in this run", "warnings", "step", "env",
		"message", "控件-ftsccactrl\xC2\xA0" "V3:未安装",
		"latency",
		"portal", "suzhou", "kind", "softhsm", "algorithm", "p256", "stage", "sign", "n", 10,
		"p50_us", 80.0, "p90_us", 90.0, "p95_us", 95.0, "p99_us", 120.0, "max_us", 130.0,
		"mean_us", 85.0, "stddev_us", 5.0,
		"portal", "suzhou", "kind", "softhsm", "algorithm", "p256", "stage", "login", "n", 4,
		"p50_us", 1900.0, "p90_us", 2000.0, "p95_us", 2100.0, "p99_us", 2200.0, "max_us",
		2300.0, "mean_us", 1950.0, "stddev_us", 50.0);

	ck_assert_ptr_nonnull(root);
	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_int_eq(json_dump_file(root, path, JSON_INDENT(1)), 0);
	json_decref(root);
}

static size_t count_runs(tr_history *h)
{
	tr_history_run *runs;
	size_t n;

	ck_assert_int_eq(tr_history_runs(h, 0, &runs, &n), 0);
	free(runs);
	return n;
}

static long long count_rows(const char *table)
{
	sqlite3 *s;
	sqlite3_stmt *st;
	char sql[128];
	long long n;

	ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	ck_assert_int_eq(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

START_TEST(import_records_everything)
{
	char path[512];
	tr_history *h;
	tr_history_run *runs;
	tr_history_cases cases;
	tr_history_latency *lat;
	size_t n, n_lat;
	long long id;
	int added;

	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", path, sizeof(path));
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_int_eq(tr_history_schema_version(h), tr_history_latest_version());
	tr_history_add_opts o = { .label = "nightly" };
	ck_assert_int_eq(tr_history_add(h, path, &o, &id, &added), 0);
	ck_assert_int_eq(added, 1);

	ck_assert_int_eq(tr_history_runs(h, 0, &runs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(runs[0].host, "ci-1");
	ck_assert_str_eq(runs[0].revision, "abc1234");
	ck_assert_str_eq(runs[0].version, "0.1.0");
	ck_assert_str_eq(runs[0].label, "nightly");
	/* The vcard case was skipped: the run did not exercise that kind. */
	ck_assert_str_eq(runs[0].kinds, "softhsm,opensc");
	ck_assert_int_eq(runs[0].seed, 7);
	ck_assert_int_eq(runs[0].passed, 1);
	ck_assert_int_eq(runs[0].failed, 1);
	ck_assert_int_eq(runs[0].skipped, 1);
	ck_assert_int_eq(runs[0].warnings, 1);
	ck_assert_int_eq(runs[0].has_bench, 0);
	free(runs);

	ck_assert_int_eq(tr_history_run_cases(h, id, &cases), 0);
	ck_assert_uint_eq(cases.n, 3);
	ck_assert_str_eq(cases.v[0].key, "suzhou/SZ-E05-twice.scn [softhsm/p256]");
	ck_assert_str_eq(cases.v[1].ids, "SZ-E01 SZ-REG-OK");
	ck_assert_str_eq(cases.v[1].status, "failed");
	ck_assert_str_eq(cases.v[1].step, "hall (ca-login, line 7)");
	ck_assert_str_eq(cases.v[1].expected, "message = 该证书");
	ck_assert_str_eq(cases.v[1].code, "SZ_NO_UNIT");
	ck_assert_str_eq(cases.v[2].message, "no virtual cards in this run");
	ck_assert_ptr_nonnull(strstr(cases.v[2].warnings, "V3:未安装"));
	ck_assert_double_eq_tol(cases.v[1].duration_ms, 2.0, 1e-9);
	tr_history_cases_free(&cases);

	ck_assert_int_eq(tr_history_run_latency(h, id, &lat, &n_lat), 0);
	ck_assert_uint_eq(n_lat, 2);
	ck_assert_str_eq(lat[1].stage, "login");
	ck_assert_double_eq_tol(lat[0].p99_us, 120.0, 1e-9);
	free(lat);
	tr_history_free(h);
}
END_TEST

START_TEST(same_file_twice_is_one_run)
{
	char path[512], bench[512];
	tr_history *h;
	long long id1, id2;
	int added;
	const char *bench_doc = "{\"schema\":\"tokenrig-bench/1\",\"created\":\"2026-11-01T02:00:00Z\","
				"\"metrics\":{\"softhsm/p256/token.sign\":{\"kind\":\"softhsm\","
				"\"algorithm\":\"p256\",\"stage\":\"token.sign\",\"summary\":{\"n\":5,"
				"\"p50_us\":80.5},\"samples_ns\":[1,2,3,4,5]}}}";

	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", path, sizeof(path));
	snprintf(bench, sizeof(bench), "%s/bench.json", dir);
	ck_assert_int_eq(tr_fs_write_atomic(bench, bench_doc, strlen(bench_doc), 0644), 0);
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_int_eq(tr_history_add(h, path, NULL, &id1, &added), 0);
	ck_assert_int_eq(added, 1);
	ck_assert_int_eq(tr_history_add(h, path, NULL, &id2, &added), 0);
	ck_assert_int_eq(added, 0);
	ck_assert_int_eq(id1, id2);
	ck_assert_uint_eq(count_runs(h), 1);
	ck_assert_int_eq(count_rows("cases"), 3);
	/* The same run with its bench: the bench is attached, the run not doubled. */
	tr_history_add_opts o = { .bench_path = bench };
	ck_assert_int_eq(tr_history_add(h, path, &o, &id2, &added), 0);
	ck_assert_int_eq(added, 0);
	ck_assert_int_eq(id1, id2);
	ck_assert_int_eq(tr_history_add(h, path, &o, &id2, &added), 0);
	ck_assert_int_eq(count_rows("bench"), 1);
	ck_assert_int_eq(count_rows("bench_metrics"), 1);
	ck_assert_int_eq(count_rows("cases"), 3);
	tr_history_free(h);
}
END_TEST

/* A certify verdict rides with its run: attached once, refused whole when broken. */
START_TEST(certification_attached_to_its_run)
{
	char path[512], cert[512], broken[512];
	tr_history *h;
	tr_history_run *runs;
	long long id1, id2;
	size_t n;
	int added;
	char *doc = NULL;
	const char *cert_doc = "{\"schema\":\"tokenrig-certification/1\",\"module\":\"m.so\","
			       "\"batch\":{\"tokens\":1,\"certified\":0},\"tokens\":[{\"serial\":"
			       "\"00ab\",\"status\":\"NOT CERTIFIED\",\"failed\":[{\"id\":\"TK-E02\"}]}]}";

	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", path, sizeof(path));
	snprintf(cert, sizeof(cert), "%s/certification.json", dir);
	snprintf(broken, sizeof(broken), "%s/broken.json", dir);
	ck_assert_int_eq(tr_fs_write_atomic(cert, cert_doc, strlen(cert_doc), 0644), 0);
	ck_assert_int_eq(tr_fs_write_atomic(broken, cert_doc, 40, 0644), 0);
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	/* A truncated verdict: nothing at all is imported. */
	tr_history_add_opts bad = { .certification_path = broken };
	ck_assert_int_lt(tr_history_add(h, path, &bad, &id1, &added), 0);
	ck_assert_uint_eq(count_runs(h), 0);
	tr_history_add_opts o = { .certification_path = cert };
	ck_assert_int_eq(tr_history_add(h, path, &o, &id1, &added), 0);
	ck_assert_int_eq(added, 1);
	ck_assert_int_eq(tr_history_add(h, path, &o, &id2, &added), 0);
	ck_assert_int_eq(added, 0);
	ck_assert_int_eq(id1, id2);
	ck_assert_int_eq(count_rows("certification"), 1);
	ck_assert_int_eq(tr_history_runs(h, 0, &runs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(runs[0].has_certification, 1);
	free(runs);
	ck_assert_int_eq(tr_history_run_certification(h, id1, &doc), 0);
	ck_assert_ptr_nonnull(strstr(doc, "NOT CERTIFIED"));
	free(doc);
	tr_history_free(h);
}
END_TEST

START_TEST(older_schema_is_migrated)
{
	char path[512];
	tr_history *h;
	tr_history_run *runs;
	sqlite3 *s;
	size_t n;
	int added;

	/* A database as the first schema left it, with one run in it. */
	ck_assert_int_eq(tr_history_open_version(&h, db, 1), 0);
	ck_assert_int_eq(tr_history_schema_version(h), 1);
	tr_history_free(h);
	ck_assert_int_eq(sqlite3_open(db, &s), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(s, "INSERT INTO runs (results_sha256, imported, started, host,"
				      " passed, failed, skipped, errors) VALUES ('x', 'now',"
				      " '2026-10-01T00:00:00Z', 'old-host', 5, 0, 1, 0);"
				      "INSERT INTO cases (run_id, case_key, ids, title, scenario,"
				      " portal, kind, algorithm, status, duration_ms) VALUES (1, 'k',"
				      " 'SZ-E05', 't', 's.scn', 'suzhou', 'softhsm', 'p256', 'passed',"
				      " 1.0)", NULL, NULL, NULL), SQLITE_OK);
	/* The old schema has no warnings column: the migration must add it. */
	ck_assert_int_ne(sqlite3_exec(s, "SELECT warnings FROM cases", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);

	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_int_eq(tr_history_schema_version(h), tr_history_latest_version());
	ck_assert_int_gt(tr_history_latest_version(), 1);
	ck_assert_int_eq(tr_history_runs(h, 0, &runs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(runs[0].host, "old-host");
	ck_assert_int_eq(runs[0].warnings, 0);
	free(runs);
	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", path, sizeof(path));
	ck_assert_int_eq(tr_history_add(h, path, NULL, NULL, &added), 0);
	ck_assert_int_eq(added, 1);
	ck_assert_uint_eq(count_runs(h), 2);
	tr_history_free(h);
	/* Opened again: nothing left to migrate, nothing changes. */
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_uint_eq(count_runs(h), 2);
	tr_history_free(h);
}
END_TEST

START_TEST(bad_input_leaves_the_database_unchanged)
{
	char path[512], bad[512], bench[512], *text;
	size_t len;
	tr_history *h;
	int added = 7;

	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", path, sizeof(path));
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_int_eq(tr_history_add(h, path, NULL, NULL, &added), 0);

	/* Truncated: a run killed while copying the file. */
	write_results("r2.json", "2026-11-02T01:00:00Z", "failed", bad, sizeof(bad));
	ck_assert_int_eq(tr_fs_read_all(bad, 1 << 20, &text, &len), 0);
	ck_assert_int_eq(tr_fs_write_atomic(bad, text, len / 2, 0644), 0);
	free(text);
	ck_assert_int_eq(tr_history_add(h, bad, NULL, NULL, &added), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "r2.json"));
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "truncated"));

	/* Another schema. */
	write_results("r3.json", "2026-11-03T01:00:00Z", "failed", bad, sizeof(bad));
	ck_assert_int_eq(tr_fs_read_all(bad, 1 << 20, &text, &len), 0);
	memcpy(strstr(text, "tokenrig-results/1"), "tokenrig-results/9", 18);
	ck_assert_int_eq(tr_fs_write_atomic(bad, text, len, 0644), 0);
	free(text);
	ck_assert_int_eq(tr_history_add(h, bad, NULL, NULL, &added), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "tokenrig-results/9"));

	/* A good results file with a bad bench: neither goes in. */
	write_results("r4.json", "2026-11-04T01:00:00Z", "failed", bad, sizeof(bad));
	snprintf(bench, sizeof(bench), "%s/bench.json", dir);
	ck_assert_int_eq(tr_fs_write_atomic(bench, "{\"schema\":\"tokenrig-bench/1\"", 28, 0644), 0);
	tr_history_add_opts o = { .bench_path = bench };
	ck_assert_int_eq(tr_history_add(h, bad, &o, NULL, &added), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "bench.json"));

	ck_assert_uint_eq(count_runs(h), 1);
	tr_history_free(h);
	ck_assert_int_eq(count_rows("cases"), 3);
	ck_assert_int_eq(count_rows("latency"), 2);
	ck_assert_int_eq(count_rows("bench"), 0);
}
END_TEST

/* Two processes importing into one database at once lose nothing. */
START_TEST(concurrent_imports)
{
	enum { PER_PROCESS = 12 };
	char paths[2][PER_PROCESS][512];
	pid_t pids[2];
	tr_history *h;

	for (int p = 0; p < 2; p++)
		for (int i = 0; i < PER_PROCESS; i++) {
			char name[32], started[32];

			snprintf(name, sizeof(name), "p%d-%d.json", p, i);
			snprintf(started, sizeof(started), "2026-11-%02dT0%d:00:00Z", i + 1, p);
			write_results(name, started, i % 2 ? "failed" : "passed", paths[p][i],
				      sizeof(paths[p][i]));
		}
	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		ck_assert_int_ge(pids[p], 0);
		if (pids[p] == 0) {
			int failures = 0;

			/* Each process opens on its own: the schema is created under the lock. */
			for (int i = 0; i < PER_PROCESS; i++) {
				int added;

				if (tr_history_open(&h, db) < 0) {
					failures++;
					continue;
				}
				if (tr_history_add(h, paths[p][i], NULL, NULL, &added) < 0 || !added) {
					fprintf(stderr, "import %d/%d: %s\n", p, i, tr_error_last());
					failures++;
				}
				tr_history_free(h);
			}
			_exit(failures ? 1 : 0);
		}
	}
	for (int p = 0; p < 2; p++) {
		int status;

		ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
		ck_assert(WIFEXITED(status));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_uint_eq(count_runs(h), 2 * PER_PROCESS);
	tr_history_free(h);
	ck_assert_int_eq(count_rows("cases"), 2 * PER_PROCESS * 3);
}
END_TEST

/* --- change and flaky detection on hand-made histories ------------------ */

static tr_history_case mk(const char *key, const char *status)
{
	tr_history_case c = { 0 };

	c.key = (char *)key;
	c.status = (char *)status;
	return c;
}

START_TEST(changes_between_two_runs)
{
	tr_history_case before_v[] = { mk("a", "passed"), mk("b", "failed"), mk("c", "passed"),
				       mk("d", "failed"), mk("e", "skipped"), mk("f", "error") };
	tr_history_case now_v[] = { mk("a", "failed"), mk("b", "passed"), mk("c", "skipped"),
				    mk("d", "failed"), mk("e", "skipped"), mk("f", "passed"),
				    mk("g", "error") };
	tr_history_cases before = { before_v, 6 }, now = { now_v, 7 };
	tr_history_change *ch;
	size_t n;

	ck_assert_int_eq(tr_history_changes(&before, &now, &ch, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(ch[0].now->key, "a");
	ck_assert_int_eq(ch[0].kind, TR_CHANGE_NEWLY_FAILING);
	ck_assert_str_eq(ch[0].before->status, "passed");
	ck_assert_str_eq(ch[1].now->key, "b");
	ck_assert_int_eq(ch[1].kind, TR_CHANGE_FIXED);
	ck_assert_str_eq(ch[2].now->key, "c");
	ck_assert_int_eq(ch[2].kind, TR_CHANGE_NEWLY_SKIPPED);
	/* d still fails, e still skipped: no change. f: an error that now passes is fixed. */
	ck_assert_str_eq(ch[3].now->key, "f");
	ck_assert_int_eq(ch[3].kind, TR_CHANGE_FIXED);
	/* g is new and fails: newly failing, with nothing before. */
	ck_assert_str_eq(ch[4].now->key, "g");
	ck_assert_int_eq(ch[4].kind, TR_CHANGE_NEWLY_FAILING);
	ck_assert_ptr_null(ch[4].before);
	free(ch);
}
END_TEST

START_TEST(flaky_needs_two_flips)
{
	/* Four runs of five cases, oldest first. */
	tr_history_case r0[] = { mk("fpf", "failed"), mk("steady", "passed"), mk("once", "passed"),
				 mk("skips", "passed"), mk("late", "passed") };
	tr_history_case r1[] = { mk("fpf", "passed"), mk("steady", "passed"), mk("once", "passed"),
				 mk("skips", "skipped"), mk("late", "passed") };
	tr_history_case r2[] = { mk("fpf", "failed"), mk("steady", "passed"), mk("once", "failed"),
				 mk("skips", "passed") };
	/* "late" is missing from r2: a run without the case is left out, as a skip is. */
	tr_history_case r3[] = { mk("fpf", "passed"), mk("steady", "passed"), mk("once", "error"),
				 mk("skips", "skipped"), mk("late", "failed") };
	tr_history_cases runs[] = { { r0, 5 }, { r1, 5 }, { r2, 4 }, { r3, 5 } };
	int *flips;

	ck_assert_int_eq(tr_history_flips(runs, 4, &flips), 0);
	ck_assert_int_eq(flips[0], 3);  /* failed, passed, failed, passed */
	ck_assert_int_eq(flips[1], 0);
	ck_assert_int_eq(flips[2], 1);  /* passed twice, then failed and error: one flip */
	ck_assert_int_eq(flips[3], 0);  /* skips are not outcomes */
	ck_assert_int_eq(flips[4], 1);
	free(flips);
	/* Fewer runs than flips need: nothing is flaky. */
	ck_assert_int_eq(tr_history_flips(&runs[2], 2, &flips), 0);
	ck_assert_int_eq(flips[0], 1);
	free(flips);
}
END_TEST

/* The page from a two-run history: self-contained, escaped, the change listed. */
START_TEST(report_lists_the_change)
{
	char p1[512], p2[512], html_path[512], md_path[512], catalog[512], *html, *md;
	const char *cat_text = "## 1. Suzhou (seeds)\n\n| ID | flow |\n|---|---|\n"
			       "| SZ-REG-OK | register <b>first</b> |\n| SZ-E01 | unknown certificate |\n"
			       "| SZ-E05 | registered twice |\n\n## 3. Sichuan\n\n| ID | trigger |\n"
			       "|---|---|\n| SC-W01 | 控件 warning |\n| SC-E09 | never run |\n";
	tr_history *h;

	write_results("r1.json", "2026-11-01T01:00:00Z", "passed", p1, sizeof(p1));
	write_results("r2.json", "2026-11-02T01:00:00Z", "failed", p2, sizeof(p2));
	snprintf(html_path, sizeof(html_path), "%s/report.html", dir);
	snprintf(md_path, sizeof(md_path), "%s/summary.md", dir);
	snprintf(catalog, sizeof(catalog), "%s/catalog.md", dir);
	ck_assert_int_eq(tr_fs_write_atomic(catalog, cat_text, strlen(cat_text), 0644), 0);
	ck_assert_int_eq(tr_history_open(&h, db), 0);
	ck_assert_int_eq(tr_history_add(h, p2, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tr_history_add(h, p1, NULL, NULL, NULL), 0);
	tr_nightly_opts o = { .html_path = html_path, .markdown_path = md_path, .last = 30,
			      .catalog_path = catalog };
	ck_assert_int_eq(tr_nightly_write(h, &o), 0);
	tr_history_free(h);

	ck_assert_int_eq(tr_fs_read_all(html_path, 1 << 22, &html, NULL), 0);
	ck_assert_ptr_nonnull(strstr(html, "<meta charset=\"utf-8\">"));
	ck_assert_ptr_null(strstr(html, "<script"));
	ck_assert_ptr_null(strstr(html, "<link"));
	ck_assert_ptr_null(strstr(html, "<b>first</b>"));
	ck_assert_ptr_nonnull(strstr(html, "register &lt;b&gt;first&lt;/b&gt;"));
	ck_assert_ptr_nonnull(strstr(html, "&lt;odd&gt; &amp; &quot;quoted&quot;"));
	/* Started later, imported first: run order is by start time. */
	{
		const char *nf = strstr(html, "id=\"newly-failing\""), *end = nf ? strstr(nf, "</table>") : NULL;
		const char *hit = nf ? strstr(nf, "SZ-E05") : NULL;

		ck_assert_ptr_nonnull(end);
		ck_assert_ptr_nonnull(hit);
		ck_assert(hit < end);
	}
	/* One matrix row per catalog ID, the one never run included. */
	{
		int rows = 0;

		for (const char *p = html; (p = strstr(p, "class=\"id-row\"")); p++)
			rows++;
		ck_assert_int_eq(rows, 5);
		ck_assert_ptr_nonnull(strstr(html, "data-id=\"SC-E09\""));
	}
	ck_assert_ptr_nonnull(strstr(html, "data-points=\"2\""));
	free(html);
	ck_assert_int_eq(tr_fs_read_all(md_path, 1 << 20, &md, NULL), 0);
	ck_assert_ptr_nonnull(strstr(md, "## tokenrig nightly: FAIL"));
	ck_assert_ptr_nonnull(strstr(md, "newly failing: 1"));
	ck_assert_ptr_nonnull(strstr(md, "SZ-E05 (suzhou softhsm/p256)"));
	free(md);
}
END_TEST

Suite *history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("store");
	TCase *tc2 = tcase_create("changes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, import_records_everything);
	tcase_add_test(tc, same_file_twice_is_one_run);
	tcase_add_test(tc, certification_attached_to_its_run);
	tcase_add_test(tc, older_schema_is_migrated);
	tcase_add_test(tc, bad_input_leaves_the_database_unchanged);
	tcase_add_test(tc, concurrent_imports);
	tcase_add_test(tc, report_lists_the_change);
	suite_add_tcase(s, tc);
	tcase_add_test(tc2, changes_between_two_runs);
	tcase_add_test(tc2, flaky_needs_two_flips);
	suite_add_tcase(s, tc2);
	return s;
}
