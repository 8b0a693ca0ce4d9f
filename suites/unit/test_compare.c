/*
 * The regression verdict: "no change" for two samples of one distribution
 * (at least 95% of repetitions), a 20% shift detected, and clear errors for
 * files that are not bench files of this schema.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/bench.h"
#include "harness/compare.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Latency-like: log-normal around median us, with a heavy tail. */
static void draw(uint64_t *v, size_t n, double median_ns)
{
	for (size_t i = 0; i < n; i++) {
		double g = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());

		v[i] = (uint64_t)(median_ns * exp(0.25 * g));
		if (uniform() < 0.01)
			v[i] *= 5; /* outliers stay in */
	}
}

static const tr_compare_opts opts = { .threshold = 0.10, .alpha = 0.01 };

START_TEST(same_distribution_says_no_change)
{
	uint64_t a[500], b[500];
	int no_change = 0, reps = 200;
	double ratio, p;

	for (int r = 0; r < reps; r++) {
		draw(a, 500, 80000);
		draw(b, 500, 80000);
		no_change += tr_compare_verdict(a, 500, b, 500, &opts, &ratio, &p) == TR_NO_CHANGE;
	}
	ck_assert_msg(no_change >= reps * 95 / 100, "no change in %d of %d", no_change, reps);
}
END_TEST

START_TEST(a_20_percent_shift_is_detected)
{
	uint64_t a[500], b[500];
	int detected = 0, faster = 0, reps = 100;
	double ratio, p;

	for (int r = 0; r < reps; r++) {
		draw(a, 500, 80000);
		draw(b, 500, 96000);
		detected += tr_compare_verdict(a, 500, b, 500, &opts, &ratio, &p) == TR_SLOWER;
		faster += tr_compare_verdict(b, 500, a, 500, &opts, &ratio, &p) == TR_FASTER;
	}
	ck_assert_msg(detected >= reps * 95 / 100, "slower detected %d of %d", detected, reps);
	ck_assert_msg(faster >= reps * 95 / 100, "faster detected %d of %d", faster, reps);
}
END_TEST

START_TEST(a_significant_but_small_shift_is_no_change)
{
	/* 3%: real, the U test sees it with enough samples, but under the threshold. */
	uint64_t *a = malloc(20000 * sizeof(*a)), *b = malloc(20000 * sizeof(*b));
	double ratio, p;

	draw(a, 20000, 80000);
	draw(b, 20000, 82400);
	ck_assert_int_eq(tr_compare_verdict(a, 20000, b, 20000, &opts, &ratio, &p), TR_NO_CHANGE);
	ck_assert(p < 0.01);
	free(a);
	free(b);
}
END_TEST

static char dir[] = "/tmp/tokenrig-compare-XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	tr_fs_remove_tree(dir);
}

static void write_file(char *path, size_t len, const char *name, const char *text)
{
	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_int_eq(tr_fs_write_atomic(path, text, strlen(text), 0644), 0);
}

#define GOOD(samples) \
	"{\"schema\":\"" TR_BENCH_SCHEMA "\",\"metrics\":{\"softhsm/p256/token.sign\":" \
	"{\"samples_ns\":[" samples "]}}}"

START_TEST(bad_files_are_named_with_the_problem)
{
	static const struct {
		const char *text;
		const char *says;
	} bad[] = {
		{ "{\"schema\":\"tokenrig-bench/0\",\"metrics\":{}}", "schema \"tokenrig-bench/0\"" },
		{ "{\"metrics\":{}}", "no \"schema\"" },
		{ "{\"schema\":\"" TR_BENCH_SCHEMA "\",\"metr", "not a bench file" },
		{ "{\"schema\":\"" TR_BENCH_SCHEMA "\",\"metrics\":{}}", "\"metrics\" is missing or empty" },
		{ GOOD(""), "\"samples_ns\" is missing or empty" },
		{ GOOD("1,2,\"x\""), "samples_ns[2] is not a positive integer" },
		{ GOOD("1,-5"), "samples_ns[1] is not a positive integer" },
	};
	char good[256], path[256];
	tr_compare_opts o = opts;
	int slower;

	write_file(good, sizeof(good), "good.json", GOOD("100,110,120,130"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, sizeof(path), "bad.json", bad[i].text);

		ck_assert_int_eq(tr_compare_files(good, path, &o, stderr, &slower), TR_EPARSE);
		ck_assert_msg(strstr(tr_error_last(), bad[i].says) && strstr(tr_error_last(), "bad.json"),
			      "%zu: %s", i, tr_error_last());
	}
	ck_assert_int_eq(tr_compare_files(good, "/nonexistent.json", &o, stderr, &slower), TR_EPARSE);
	ck_assert_msg(strstr(tr_error_last(), "/nonexistent.json"), "%s", tr_error_last());
	ck_assert_int_eq(tr_compare_files(good, good, &o, stderr, &slower), 0);
	ck_assert_int_eq(slower, 0);
}
END_TEST

Suite *compare_suite(void)
{
	Suite *s = suite_create("compare");
	TCase *stats = tcase_create("verdict");
	TCase *files = tcase_create("files");

	tcase_set_timeout(stats, 30);
	tcase_add_test(stats, same_distribution_says_no_change);
	tcase_add_test(stats, a_20_percent_shift_is_detected);
	tcase_add_test(stats, a_significant_but_small_shift_is_no_change);
	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, bad_files_are_named_with_the_problem);
	suite_add_tcase(s, stats);
	suite_add_tcase(s, files);
	return s;
}
