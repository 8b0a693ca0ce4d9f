/*
 * The regression verdict: over runs, "no change" for runs of one
 * distribution however much they wander (at least 99% of repetitions) and
 * a 20% shift detected; one run a side undecided; disturbed rounds found on
 * hand-made round values, a busy machine inconclusive and never slower; a
 * slower machine is not a slower token; different bench parameters a
 * warning; clear errors for files that are not bench files of this schema.
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

static const tr_compare_opts opts = { .threshold = 0.10, .alpha = 0.01 };

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
	tr_compare_summary slower;

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
	ck_assert_int_eq(slower.slower, 0);
}
END_TEST

/*
 * A bench file of 3 runs of 10 rounds of 50 samples: module.c_sign (the
 * baseline) at machine * 80 us, token.sign at machine * token * 80 us,
 * where the machine's speed also swings by `swing` between rounds and each
 * run has its own speed (2% log-normal). busy[r] multiplies round r's
 * baseline and signature both (a CPU hog), 0 meaning 1.
 */
static void write_runs(char *path, size_t len, const char *name, double machine, double token,
		       double swing_by, const double *busy)
{
	json_t *sign = json_array(), *base = json_array(), *rounds = json_array(), *root;
	uint64_t v[50];
	char *text;

	for (int k = 0; k < 3; k++) {
		double g = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
		double run = exp(0.02 * g);

		for (int r = 0; r < 10; r++) {
			double swing = machine * run * (r % 2 ? swing_by : 1) *
				       (busy && busy[k * 10 + r] ? busy[k * 10 + r] : 1);

			draw(v, 50, 80000 * swing);
			for (int i = 0; i < 50; i++)
				json_array_append_new(base, json_integer((json_int_t)v[i]));
			draw(v, 50, 80000 * swing * token);
			for (int i = 0; i < 50; i++)
				json_array_append_new(sign, json_integer((json_int_t)v[i]));
			json_array_append_new(rounds, json_integer(50));
		}
	}
	root = json_pack("{s:s, s:{s:i, s:i}, s:{s:{s:o, s:O, s:[iii]}, s:{s:o, s:o, s:s, s:[iii]}}}",
			 "schema", TR_BENCH_SCHEMA, "params", "count", 500, "runs", 3,
			 "metrics", "softhsm/p256/module.c_sign", "samples_ns", base, "rounds",
			 rounds, "runs", 10, 10, 10, "softhsm/p256/token.sign", "samples_ns", sign,
			 "rounds", rounds, "baseline", "softhsm/p256/module.c_sign", "runs", 10, 10, 10);
	ck_assert_ptr_nonnull(root);
	text = json_dumps(root, JSON_COMPACT);
	write_file(path, len, name, text);
	free(text);
	json_decref(root);
}

static void write_run(char *path, size_t len, const char *name, double machine, double token)
{
	write_runs(path, len, name, machine, token, 1.5, NULL);
}

START_TEST(a_slower_machine_is_not_a_slower_token)
{
	char base[256], machine[256], token[256];
	tr_compare_opts o = opts;
	FILE *sink = fopen("/dev/null", "w");
	tr_compare_summary sum;

	ck_assert_ptr_nonnull(sink);
	write_run(base, sizeof(base), "base.json", 1, 1);
	write_run(machine, sizeof(machine), "machine.json", 2, 1);
	write_run(token, sizeof(token), "token.json", 1, 1.3);
	/* Raw times: the whole machine got twice as slow, and it shows. */
	ck_assert_int_eq(tr_compare_files(base, machine, &o, sink, &sum), 0);
	ck_assert_int_eq(sum.slower, 2);
	/* Against the same round's baseline it cancels out... */
	o.normalize = 1;
	ck_assert_int_eq(tr_compare_files(base, machine, &o, sink, &sum), 0);
	ck_assert_int_eq(sum.slower, 0);
	/* ...and a token 30% slower on an unchanged machine is still caught. */
	ck_assert_int_eq(tr_compare_files(base, token, &o, sink, &sum), 0);
	ck_assert_int_eq(sum.slower, 1);
	ck_assert_int_eq(sum.busy, 0);
	fclose(sink);
}
END_TEST

START_TEST(disturbed_rounds_are_the_far_ones)
{
	/* Hand-made round medians of one run's baseline (us) and of a metric's own values. */
	static const double steady[8] = { 100, 101, 99, 100, 102, 100, 98, 101 };
	static const double hog[8] = { 100, 101, 99, 100, 140, 100, 98, 101 };
	static const double nudge[8] = { 100, 101, 99, 100, 105, 100, 98, 101 };
	/* A machine that wanders by +-8% round to round: its spread sets "far". */
	static const double wander[8] = { 100, 108, 92, 104, 96, 107, 93, 118 };
	static const double own_jump[8] = { 1, 1.01, 0.99, 1, 1, 1.6, 1, 1.02 };
	unsigned char mark[8];

	ck_assert_uint_eq(tr_compare_disturbed(steady, steady, 8, mark), 0);
	/* +40% on a steady baseline: far beyond 3 robust sd and the 10% floor. */
	ck_assert_uint_eq(tr_compare_disturbed(hog, steady, 8, mark), 1);
	ck_assert(mark[4] && !mark[0] && !mark[7]);
	/* +5% is within the floor: not a disturbance, however steady the rest. */
	ck_assert_uint_eq(tr_compare_disturbed(nudge, steady, 8, mark), 0);
	/* +18% where rounds wander by 8% is within 3 robust sd. */
	ck_assert_uint_eq(tr_compare_disturbed(wander, NULL, 8, mark), 0);
	/* The baseline held but the metric's own round jumped (another process was slow). */
	ck_assert_uint_eq(tr_compare_disturbed(steady, own_jump, 8, mark), 1);
	ck_assert(mark[5]);
	/* Three rounds cannot tell an odd one from the rest. */
	ck_assert_uint_eq(tr_compare_disturbed(hog + 3, steady, 3, mark), 0);
}
END_TEST

START_TEST(a_busy_machine_is_inconclusive_not_slower)
{
	char base[256], busy[256], slow_busy[256], few[256];
	double hog[30] = { 0 }, blip[30] = { 0 };
	tr_compare_opts o = opts;
	tr_compare_summary sum;
	char *text = NULL;
	size_t len = 0;
	FILE *out, *sink = fopen("/dev/null", "w");

	ck_assert_ptr_nonnull(sink);
	o.normalize = 1;
	/*
	 * A CPU hog (+70%) during rounds 2-5 of run 1 and 1-4 of run 2: 8 of 30
	 * rounds, more than 25%, on a machine otherwise steady to 3% round to round.
	 */
	for (int r = 1; r <= 4; r++)
		hog[r] = 1.7;
	for (int r = 10; r <= 13; r++)
		hog[r] = 1.7;
	blip[4] = 1.7;
	write_runs(base, sizeof(base), "base.json", 1, 1, 1.03, NULL);
	write_runs(busy, sizeof(busy), "busy.json", 1, 1, 1.03, hog);
	write_runs(slow_busy, sizeof(slow_busy), "slow-busy.json", 1, 1.3, 1.03, hog);
	write_runs(few, sizeof(few), "blip.json", 1, 1, 1.03, blip);

	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(tr_compare_files(base, busy, &o, out, &sum), 0);
	fclose(out);
	ck_assert_msg(sum.busy == 1, "%s", text);
	ck_assert_int_eq(sum.slower, 0);
	ck_assert_msg(strstr(text, "softhsm/p256/token.sign") &&
		      strstr(text, "inconclusive: the machine was busy (rounds ") &&
		      strstr(text, "new 1.2,1.3,1.4,1.5,2.1,2.2,2.3,2.4)"), "%s", text);
	free(text);
	/* Busy outranks a verdict: a real slowdown measured on a busy machine is not claimed. */
	ck_assert_int_eq(tr_compare_files(base, slow_busy, &o, sink, &sum), 0);
	ck_assert_int_eq(sum.busy, 1);
	ck_assert_int_eq(sum.slower, 0);
	/* One disturbed round (and the odd noisy one of the base) is left out; the verdict stands. */
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(tr_compare_files(base, few, &o, out, &sum), 0);
	fclose(out);
	ck_assert_int_eq(sum.busy, 0);
	ck_assert_int_eq(sum.slower, 0);
	ck_assert_msg(strstr(text, "token.sign") && strstr(text, "disturbed round(s) left out"),
		      "%s", text);
	free(text);
	fclose(sink);
}
END_TEST

START_TEST(different_parameters_are_a_warning)
{
	char a[256], b[256];
	tr_compare_summary sum;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	write_file(a, sizeof(a), "a.json", "{\"schema\":\"" TR_BENCH_SCHEMA "\",\"params\":"
		   "{\"count\":100,\"rounds\":2,\"latency\":null},\"metrics\":{\"m\":"
		   "{\"samples_ns\":[1,2,3,4]}}}");
	write_file(b, sizeof(b), "b.json", "{\"schema\":\"" TR_BENCH_SCHEMA "\",\"params\":"
		   "{\"count\":200,\"rounds\":2,\"latency\":\"C_Sign fixed 12us\"},\"metrics\":"
		   "{\"m\":{\"samples_ns\":[1,2,3,4]}}}");
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(tr_compare_files(a, b, &opts, out, &sum), 0);
	fclose(out);
	ck_assert_int_eq(sum.params_differ, 2);
	ck_assert_int_eq(sum.slower, 0);
	ck_assert_msg(strstr(text, "warning: the files were made with different bench parameters: "
			     "count 100 vs 200, latency null vs \"C_Sign fixed 12us\""), "%s", text);
	free(text);
	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	ck_assert_int_eq(tr_compare_files(a, a, &opts, out, &sum), 0);
	fclose(out);
	ck_assert_int_eq(sum.params_differ, 0);
	ck_assert(!strstr(text, "warning"));
	free(text);
}
END_TEST

/* Levels of R runs, each drawn with run-to-run spread sd (log-normal) around median. */
static void levels(double *v, size_t n, double median, double sd)
{
	for (size_t i = 0; i < n; i++)
		v[i] = median * exp(sd * sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()));
}

START_TEST(run_to_run_spread_sets_the_interval)
{
	double a[3], b[3];
	tr_compare_result res;
	int no_change = 0, detected = 0, reps = 400;

	ck_assert(fabs(tr_stats_t_quantile(0.995, 4) - 4.604) < 1e-3);
	ck_assert(fabs(tr_stats_t_quantile(0.975, 10) - 2.228) < 1e-3);
	/* Runs whose level wanders by 3%: within-run intervals would call that a change. */
	for (int r = 0; r < reps; r++) {
		levels(a, 3, 1.0, 0.03);
		levels(b, 3, 1.0, 0.03);
		no_change += tr_compare_levels(a, 3, b, 3, &opts, &res) == TR_NO_CHANGE;
		levels(b, 3, 1.2, 0.01);
		levels(a, 3, 1.0, 0.01);
		detected += tr_compare_levels(a, 3, b, 3, &opts, &res) == TR_SLOWER;
	}
	ck_assert_msg(no_change >= reps * 99 / 100, "no change in %d of %d", no_change, reps);
	ck_assert_msg(detected >= reps * 90 / 100, "+20%% detected in %d of %d", detected, reps);
	/* One run a side: nothing to measure the spread between runs with. */
	ck_assert_int_eq(tr_compare_levels(a, 1, b, 1, &opts, &res), TR_UNDECIDED);
	ck_assert(res.change > 0.1 && isinf(res.high));
}
END_TEST

Suite *compare_suite(void)
{
	Suite *s = suite_create("compare");
	TCase *stats = tcase_create("verdict");
	TCase *files = tcase_create("files");

	tcase_set_timeout(stats, 30);
	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, bad_files_are_named_with_the_problem);
	tcase_add_test(files, a_slower_machine_is_not_a_slower_token);
	tcase_add_test(files, a_busy_machine_is_inconclusive_not_slower);
	tcase_add_test(files, different_parameters_are_a_warning);
	tcase_add_test(stats, disturbed_rounds_are_the_far_ones);
	tcase_add_test(stats, run_to_run_spread_sets_the_interval);
	suite_add_tcase(s, stats);
	suite_add_tcase(s, files);
	return s;
}
