/*
 * The regression verdict: "no change" for two samples of one distribution
 * (at least 95% of repetitions), a 20% shift detected, and clear errors for
 * files that are not bench files of this schema.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/bench.h"
#include "harness/compare.h"
#include "harness/stats.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Latency-like: log-normal around median_ns, with a heavy tail. */
static void draw(uint64_t *v, size_t n, double median_ns)
{
	for (size_t i = 0; i < n; i++) {
		double g = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());

		v[i] = (uint64_t)(median_ns * exp(0.25 * g));
		if (uniform() < 0.01)
			v[i] *= 5; /* outliers stay in */
	}
}

/*
 * One bench run as compare sees it: per round, the median of `per` samples
 * taken while the machine ran `drift` (log-normal sd) faster or slower.
 */
static void run(double *round, size_t rounds, size_t per, double median_ns, double drift)
{
	uint64_t v[200];

	for (size_t r = 0; r < rounds; r++) {
		double g = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());

		draw(v, per, median_ns * exp(drift * g));
		round[r] = tr_stats_median_ns(v, per);
	}
}

static const tr_compare_opts opts = { .threshold = 0.10, .alpha = 0.01 };

START_TEST(same_distribution_says_no_change)
{
	double a[10], b[10];
	tr_compare_result res;
	int no_change = 0, reps = 400;

	/* A machine whose speed wanders by 8% between rounds. */
	for (int r = 0; r < reps; r++) {
		run(a, 10, 200, 80000, 0.08);
		run(b, 10, 200, 80000, 0.08);
		no_change += tr_compare_verdict(a, 10, b, 10, &opts, &res) == TR_NO_CHANGE;
	}
	ck_assert_msg(no_change >= reps * 95 / 100, "no change in %d of %d", no_change, reps);
}
END_TEST

START_TEST(a_20_percent_shift_is_detected)
{
	double a[10], b[10];
	tr_compare_result res;
	int detected = 0, faster = 0, reps = 200;

	for (int r = 0; r < reps; r++) {
		run(a, 10, 200, 80000, 0.03);
		run(b, 10, 200, 96000, 0.03);
		detected += tr_compare_verdict(a, 10, b, 10, &opts, &res) == TR_SLOWER;
		run(b, 10, 200, 64000, 0.03);
		faster += tr_compare_verdict(a, 10, b, 10, &opts, &res) == TR_FASTER;
	}
	ck_assert_msg(detected >= reps * 95 / 100, "slower detected %d of %d", detected, reps);
	ck_assert_msg(faster >= reps * 95 / 100, "faster detected %d of %d", faster, reps);
}
END_TEST

START_TEST(a_significant_but_small_shift_is_no_change)
{
	/* 3%: real, the U test sees it on a steady machine, but under the threshold. */
	double a[40], b[40];
	tr_compare_result res;

	run(a, 40, 200, 80000, 0.002);
	run(b, 40, 200, 82400, 0.002);
	ck_assert_int_eq(tr_compare_verdict(a, 40, b, 40, &opts, &res), TR_NO_CHANGE);
	ck_assert(res.p < 0.01);
	ck_assert_msg(res.low > 0 && res.low < 0.03 && res.high > 0.03 && res.high < opts.threshold, "3%% shift in [%g, %g]", res.low, res.high);
}
END_TEST

START_TEST(too_few_rounds_never_decide)
{
	/* 4 rounds a side: the best p the U test can give is 2/70. */
	double a[4], b[4];
	tr_compare_result res;

	run(a, 4, 200, 80000, 0.01);
	run(b, 4, 200, 160000, 0.01);
	ck_assert_int_eq(tr_compare_verdict(a, 4, b, 4, &opts, &res), TR_NO_CHANGE);
	ck_assert(res.change > 0.5);
	ck_assert(isinf(res.high));
	ck_assert(tr_stats_mann_whitney_min_p(4, 4) >= opts.alpha);
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
	"{\"schema\":\"" TR_BENCH_SCHEMA "\",\"params\":{\"rounds\":1}," \
	"\"metrics\":{\"softhsm/p256/token.sign\":{\"samples_ns\":[" samples "]}}}"
#define ROUNDS(rounds) \
	"{\"schema\":\"" TR_BENCH_SCHEMA "\",\"metrics\":{\"softhsm/p256/token.sign\":" \
	"{\"samples_ns\":[1,2,3,4],\"rounds\":" rounds "}}}"

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
		{ ROUNDS("[1,1]"), "its rounds hold 2 samples, \"samples_ns\" 4" },
		{ ROUNDS("[2,\"x\",2]"), "rounds[1] is not a positive integer" },
		{ ROUNDS("[4,0]"), "rounds[1] is not a positive integer" },
		{ ROUNDS("4"), "\"rounds\" is not a list of sample counts" },
		{ ROUNDS("[]"), "\"rounds\" is not a list of sample counts" },
		{ "{\"schema\":\"" TR_BENCH_SCHEMA "\",\"params\":{\"rounds\":3},\"metrics\":"
		  "{\"m\":{\"samples_ns\":[1,2,3,4]}}}", "params.rounds does not divide its 4 samples" },
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

/*
 * A bench file of 10 rounds of 50 samples: module.c_sign (the baseline) at
 * machine * 80 us, token.sign at machine * token * 80 us, where the
 * machine's speed also swings by half between rounds.
 */
static void write_run(char *path, size_t len, const char *name, double machine, double token)
{
	json_t *sign = json_array(), *base = json_array(), *rounds = json_array(), *root;
	uint64_t v[50];
	char *text;

	for (int r = 0; r < 10; r++) {
		double swing = machine * (r % 2 ? 1.5 : 1);

		draw(v, 50, 80000 * swing);
		for (int i = 0; i < 50; i++)
			json_array_append_new(base, json_integer((json_int_t)v[i]));
		draw(v, 50, 80000 * swing * token);
		for (int i = 0; i < 50; i++)
			json_array_append_new(sign, json_integer((json_int_t)v[i]));
		json_array_append_new(rounds, json_integer(50));
	}
	root = json_pack("{s:s, s:{s:{s:o, s:O}, s:{s:o, s:o, s:s}}}", "schema", TR_BENCH_SCHEMA,
			 "metrics", "softhsm/p256/module.c_sign", "samples_ns", base, "rounds",
			 rounds, "softhsm/p256/token.sign", "samples_ns", sign, "rounds", rounds,
			 "baseline", "softhsm/p256/module.c_sign");
	ck_assert_ptr_nonnull(root);
	text = json_dumps(root, JSON_COMPACT);
	write_file(path, len, name, text);
	free(text);
	json_decref(root);
}

START_TEST(a_slower_machine_is_not_a_slower_token)
{
	char base[256], machine[256], token[256];
	tr_compare_opts o = opts;
	FILE *sink = fopen("/dev/null", "w");
	int slower;

	ck_assert_ptr_nonnull(sink);
	write_run(base, sizeof(base), "base.json", 1, 1);
	write_run(machine, sizeof(machine), "machine.json", 2, 1);
	write_run(token, sizeof(token), "token.json", 1, 1.3);
	/* Raw times: the whole machine got twice as slow, and it shows. */
	ck_assert_int_eq(tr_compare_files(base, machine, &o, sink, &slower), 0);
	ck_assert_int_eq(slower, 2);
	/* Against the same round's baseline it cancels out... */
	o.normalize = 1;
	ck_assert_int_eq(tr_compare_files(base, machine, &o, sink, &slower), 0);
	ck_assert_int_eq(slower, 0);
	/* ...and a token 30% slower on an unchanged machine is still caught. */
	ck_assert_int_eq(tr_compare_files(base, token, &o, sink, &slower), 0);
	ck_assert_int_eq(slower, 1);
	fclose(sink);
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
	tcase_add_test(stats, too_few_rounds_never_decide);
	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, bad_files_are_named_with_the_problem);
	tcase_add_test(files, a_slower_machine_is_not_a_slower_token);
	suite_add_tcase(s, stats);
	suite_add_tcase(s, files);
	return s;
}
