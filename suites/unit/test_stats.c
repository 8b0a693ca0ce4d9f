/* Percentiles and summaries of latency samples. */
#include <check.h>
#include <math.h>

#include "harness/stats.h"

START_TEST(percentiles_interpolate_like_numpy)
{
	/* numpy.percentile([1,2,3,4,5,6,7,8,9,10], p) */
	const uint64_t v[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 50), 5.5, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 95), 9.55, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 90), 9.1, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 0), 1, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 100), 10, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 10, 25), 3.25, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 1, 99), 1, 1e-9);
	ck_assert_double_eq_tol(tr_stats_percentile(v, 0, 50), 0, 1e-9);
}
END_TEST

START_TEST(summary_of_unsorted_samples)
{
	tr_samples s = { 0 };
	tr_summary sum;
	const uint64_t v[] = { 900, 100, 500, 300, 700 };

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tr_samples_add(&s, v[i]), 0);
	ck_assert_int_eq(tr_stats_summarize(&s, &sum), 0);
	ck_assert_uint_eq(sum.n, 5);
	ck_assert_double_eq_tol(sum.min, 100, 1e-9);
	ck_assert_double_eq_tol(sum.max, 900, 1e-9);
	ck_assert_double_eq_tol(sum.p50, 500, 1e-9);
	ck_assert_double_eq_tol(sum.mean, 500, 1e-9);
	/* sample standard deviation of 100..900 step 200 */
	ck_assert_double_eq_tol(sum.stddev, sqrt(100000.0), 1e-6);
	/* the samples keep their order: the raw data stays raw */
	ck_assert_uint_eq(s.ns[0], 900);
	tr_samples_free(&s);
	ck_assert_int_eq(tr_stats_summarize(&s, &sum), 0);
	ck_assert_uint_eq(sum.n, 0);
}
END_TEST

START_TEST(many_samples_grow)
{
	tr_samples s = { 0 };
	tr_summary sum;

	for (uint64_t i = 1; i <= 10001; i++)
		ck_assert_int_eq(tr_samples_add(&s, i), 0);
	tr_stats_summarize(&s, &sum);
	ck_assert_double_eq_tol(sum.p50, 5001, 1e-9);
	ck_assert_double_eq_tol(sum.p99, 9901, 1e-9);
	tr_samples_free(&s);
}
END_TEST

Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("percentiles");

	tcase_add_test(tc, percentiles_interpolate_like_numpy);
	tcase_add_test(tc, summary_of_unsorted_samples);
	tcase_add_test(tc, many_samples_grow);
	suite_add_tcase(s, tc);
	return s;
}

/*
 * Known answers. Exact: scipy.stats.mannwhitneyu(a, b, method="exact"):
 * 2/252 for complete separation of 5 and 5, 4/252 with one pair swapped.
 * Normal: 50 and 50 apart, z = -1250 / sqrt(50 * 50 * 101 / 12).
 */
START_TEST(mann_whitney_known_answer)
{
	const double a[] = { 1, 2, 3, 4, 5 }, b[] = { 6, 7, 8, 9, 10 };
	const double c[] = { 1, 2, 3, 4, 6 }, d[] = { 5, 7, 8, 9, 10 };
	double big_a[50], big_b[50], z, p;

	ck_assert_int_eq(tr_stats_mann_whitney(a, 5, b, 5, &z, &p), 0);
	ck_assert_double_eq_tol(p, 2.0 / 252, 1e-12);
	ck_assert_double_eq_tol(z, -2.6111648393354674, 1e-9);
	ck_assert_int_eq(tr_stats_mann_whitney(b, 5, a, 5, &z, &p), 0);
	ck_assert_double_eq_tol(p, 2.0 / 252, 1e-12);
	ck_assert_int_eq(tr_stats_mann_whitney(c, 5, d, 5, &z, &p), 0);
	ck_assert_double_eq_tol(p, 4.0 / 252, 1e-12);
	ck_assert_double_eq_tol(tr_stats_mann_whitney_min_p(5, 5), 2.0 / 252, 1e-12);
	ck_assert_double_eq_tol(tr_stats_mann_whitney_min_p(4, 4), 2.0 / 70, 1e-12);
	/* identical samples: all ties, no difference */
	ck_assert_int_eq(tr_stats_mann_whitney(a, 5, a, 5, &z, &p), 0);
	ck_assert_double_eq_tol(p, 1, 1e-9);
	for (int i = 0; i < 50; i++) {
		big_a[i] = i + 1;
		big_b[i] = i + 51;
	}
	ck_assert_int_eq(tr_stats_mann_whitney(big_a, 50, big_b, 50, &z, &p), 0);
	ck_assert_double_eq_tol(z, -1250 / sqrt(50.0 * 50 * 101 / 12), 1e-9);
	ck_assert_double_eq_tol(p, erfc(fabs(z) / sqrt(2.0)), 1e-20);
}
END_TEST

START_TEST(histogram_and_outliers)
{
	tr_samples s = { 0 };
	tr_histogram h;
	tr_summary sum;
	size_t total = 0;

	for (int i = 0; i < 100; i++)
		tr_samples_add(&s, 1000 + (uint64_t)i);
	tr_samples_add(&s, 1000000); /* one far outlier */
	tr_stats_histogram(&s, &h);
	for (int i = 0; i < TR_HIST_BINS; i++)
		total += h.count[i];
	ck_assert_uint_eq(total, 101);
	ck_assert_uint_eq(h.count[0], 100);
	ck_assert_uint_eq(h.count[TR_HIST_BINS - 1], 1);
	tr_stats_summarize(&s, &sum);
	ck_assert_uint_eq(sum.outliers, 1);
	ck_assert_double_eq_tol(sum.max, 1000000, 1e-9); /* kept, not dropped */
	tr_samples_free(&s);
}
END_TEST

Suite *stats_tests_suite(void)
{
	Suite *s = suite_create("stats_tests");
	TCase *tc = tcase_create("tests");

	tcase_add_test(tc, mann_whitney_known_answer);
	tcase_add_test(tc, histogram_and_outliers);
	suite_add_tcase(s, tc);
	return s;
}
