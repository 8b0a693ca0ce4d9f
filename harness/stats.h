/* Latency samples and their order statistics. */
#ifndef TR_HARNESS_STATS_H
#define TR_HARNESS_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr_samples {
	uint64_t *ns;
	size_t n, cap;
} tr_samples;

typedef struct tr_summary {
	size_t n;
	double min, p50, p90, p95, p99, max, mean, stddev; /* nanoseconds */
	size_t outliers; /* above Q3 + 3 IQR: kept in every figure, only counted */
} tr_summary;

#define TR_HIST_BINS 16

/*
 * A histogram on a log2 scale from the minimum: bin i holds the samples in
 * [min * 2^(i/2), min * 2^((i+1)/2)), the last bin everything above.
 */
typedef struct tr_histogram {
	double lower[TR_HIST_BINS]; /* each bin's lower edge, ns */
	size_t count[TR_HIST_BINS];
} tr_histogram;

int tr_stats_histogram(const tr_samples *s, tr_histogram *out);

/* Up to this many values a side, and without ties, the U test's p is exact. */
#define TR_MW_EXACT_MAX 40

/*
 * Mann-Whitney U test of two samples, two-sided: *p is the probability of a
 * rank difference at least this large if both come from one distribution.
 * Exact for small samples without ties; otherwise the normal approximation
 * with tie correction. *z is the standardised U either way.
 */
int tr_stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
			  double *z, double *p);

/* The smallest p the U test can give for samples of these sizes. */
double tr_stats_mann_whitney_min_p(size_t na, size_t nb);

/*
 * The shift of b against a (Hodges-Lehmann: the median of all b[j] - a[i])
 * and its (1 - alpha) confidence interval from the U test's distribution,
 * exact for small samples. Too few values for alpha: the interval is
 * (-inf, +inf).
 */
int tr_stats_shift_ci(const double *a, size_t na, const double *b, size_t nb, double alpha,
		      double *est, double *lo, double *hi);

/* The median of n values (their order is left alone). */
double tr_stats_median(const double *v, size_t n);
double tr_stats_median_ns(const uint64_t *v, size_t n);

/*
 * Student's t distribution with df degrees of freedom: P(T <= t), and the
 * t with P(T <= t) = p (NAN for p outside (0, 1) or df <= 0).
 */
double tr_stats_t_cdf(double t, double df);
double tr_stats_t_quantile(double p, double df);

int tr_samples_add(tr_samples *s, uint64_t ns);
void tr_samples_free(tr_samples *s);

/*
 * The p-th percentile (0..100) of n sorted values, interpolated linearly
 * between the closest ranks (Hyndman & Fan type 7, as R and NumPy default).
 */
double tr_stats_percentile(const uint64_t *sorted, size_t n, double p);

/* Summarises the samples (their order is left alone). n == 0 gives zeros. */
int tr_stats_summarize(const tr_samples *s, tr_summary *out);

#endif
