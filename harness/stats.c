#include "harness/stats.h"

#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tr_samples_add(tr_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *p = realloc(s->ns, cap * sizeof(*p));

		if (!p)
			return tr_error_set(TR_ENOMEM, "out of memory");
		s->ns = p;
		s->cap = cap;
	}
	s->ns[s->n++] = ns;
	return 0;
}

void tr_samples_free(tr_samples *s)
{
	free(s->ns);
	memset(s, 0, sizeof(*s));
}

double tr_stats_percentile(const uint64_t *sorted, size_t n, double p)
{
	double rank, frac;
	size_t lo;

	if (n == 0)
		return 0;
	if (p <= 0)
		return (double)sorted[0];
	if (p >= 100)
		return (double)sorted[n - 1];
	rank = p / 100.0 * (double)(n - 1);
	lo = (size_t)rank;
	frac = rank - (double)lo;
	if (lo + 1 >= n)
		return (double)sorted[n - 1];
	return (double)sorted[lo] + frac * ((double)sorted[lo + 1] - (double)sorted[lo]);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int tr_stats_summarize(const tr_samples *s, tr_summary *out)
{
	uint64_t *sorted;
	double sum = 0, sq = 0;

	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return 0;
	sorted = malloc(s->n * sizeof(*sorted));
	if (!sorted)
		return tr_error_set(TR_ENOMEM, "out of memory");
	memcpy(sorted, s->ns, s->n * sizeof(*sorted));
	qsort(sorted, s->n, sizeof(*sorted), cmp_u64);

	out->n = s->n;
	out->min = (double)sorted[0];
	out->max = (double)sorted[s->n - 1];
	out->p50 = tr_stats_percentile(sorted, s->n, 50);
	out->p90 = tr_stats_percentile(sorted, s->n, 90);
	out->p95 = tr_stats_percentile(sorted, s->n, 95);
	out->p99 = tr_stats_percentile(sorted, s->n, 99);
	for (size_t i = 0; i < s->n; i++)
		sum += (double)sorted[i];
	out->mean = sum / (double)s->n;
	for (size_t i = 0; i < s->n; i++)
		sq += ((double)sorted[i] - out->mean) * ((double)sorted[i] - out->mean);
	out->stddev = s->n > 1 ? sqrt(sq / (double)(s->n - 1)) : 0;
	{
		double q3 = tr_stats_percentile(sorted, s->n, 75);
		double fence = q3 + 3 * (q3 - tr_stats_percentile(sorted, s->n, 25));

		for (size_t i = s->n; i > 0 && (double)sorted[i - 1] > fence; i--)
			out->outliers++;
	}
	free(sorted);
	return 0;
}

int tr_stats_histogram(const tr_samples *s, tr_histogram *out)
{
	uint64_t min = UINT64_MAX;

	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->ns[i] < min)
			min = s->ns[i];
	if (min == 0)
		min = 1;
	for (int b = 0; b < TR_HIST_BINS; b++)
		out->lower[b] = (double)min * pow(2.0, b / 2.0);
	for (size_t i = 0; i < s->n; i++) {
		double v = (double)s->ns[i];
		int b = v <= (double)min ? 0 : (int)(2.0 * log2(v / (double)min));

		out->count[b < TR_HIST_BINS ? b : TR_HIST_BINS - 1]++;
	}
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

double tr_stats_median(const double *v, size_t n)
{
	double *sorted, m;

	if (n == 0 || !(sorted = malloc(n * sizeof(*sorted))))
		return 0;
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	free(sorted);
	return m;
}

double tr_stats_median_ns(const uint64_t *v, size_t n)
{
	uint64_t *sorted;
	double m;

	if (n == 0 || !(sorted = malloc(n * sizeof(*sorted))))
		return 0;
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	m = tr_stats_percentile(sorted, n, 50);
	free(sorted);
	return m;
}

typedef struct ranked {
	double v;
	int from_a;
} ranked;

static int cmp_ranked(const void *x, const void *y)
{
	const ranked *a = x, *b = y;

	return a->v < b->v ? -1 : a->v > b->v;
}

/*
 * P(U = k), k = 0..m*n, for samples of m and n without ties, by the
 * recurrence N(i, j, k) = N(i - 1, j, k - j) + N(i, j - 1, k) over the
 * arrangements. Counts are kept as doubles: C(80, 40) is past 2^53, and
 * only ratios matter.
 */
static double *mann_whitney_pmf(size_t m, size_t n)
{
	size_t width = m * n + 1;
	double *prev = calloc((m + 1) * width, sizeof(double));
	double *cur = calloc((m + 1) * width, sizeof(double));
	double *pmf = malloc(width * sizeof(double)), total = 0;

	if (!prev || !cur || !pmf) {
		free(pmf);
		pmf = NULL;
		tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	/* j = 0: one arrangement, U = 0, for every i. */
	for (size_t i = 0; i <= m; i++)
		prev[i * width] = 1;
	for (size_t j = 1; j <= n; j++) {
		memset(cur, 0, (m + 1) * width * sizeof(double));
		cur[0] = 1;
		for (size_t i = 1; i <= m; i++)
			for (size_t k = 0; k <= i * j; k++)
				cur[i * width + k] = (k >= j ? cur[(i - 1) * width + k - j] : 0) +
						     prev[i * width + k];
		memcpy(prev, cur, (m + 1) * width * sizeof(double));
	}
	for (size_t k = 0; k < width; k++)
		total += prev[m * width + k];
	for (size_t k = 0; k < width; k++)
		pmf[k] = prev[m * width + k] / total;
out:
	free(prev);
	free(cur);
	return pmf;
}

static int mann_whitney_cdf(size_t m, size_t n, size_t u, double *cdf)
{
	double *pmf = mann_whitney_pmf(m, n);

	if (!pmf)
		return TR_ENOMEM;
	*cdf = 0;
	for (size_t k = 0; k <= u && k <= m * n; k++)
		*cdf += pmf[k];
	free(pmf);
	return 0;
}

double tr_stats_mann_whitney_min_p(size_t na, size_t nb)
{
	double p;

	if (na == 0 || nb == 0)
		return 1;
	if (na > TR_MW_EXACT_MAX || nb > TR_MW_EXACT_MAX)
		return 0; /* far below any useful alpha */
	if (mann_whitney_cdf(na, nb, 0, &p) < 0)
		return 1;
	return fmin(1, 2 * p);
}

/* z with P(|Z| > z) = alpha for a standard normal Z, by bisection. */
static double normal_two_sided_quantile(double alpha)
{
	double lo = 0, hi = 40;

	for (int i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (erfc(mid / sqrt(2.0)) > alpha)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/*
 * The (1 - alpha) interval of the shift from the U test (Hodges-Lehmann /
 * Moses): the shifts it would not reject are those between the (c+1)-th
 * and (mn-c)-th of the m*n pairwise differences, c the largest U whose two
 * tails together stay within alpha.
 */
int tr_stats_shift_ci(const double *a, size_t na, const double *b, size_t nb, double alpha,
		      double *est, double *lo, double *hi)
{
	size_t mn = na * nb, k = 0;
	double *d, z, c;
	int have_c = 0;

	*est = 0;
	*lo = -INFINITY;
	*hi = INFINITY;
	if (na == 0 || nb == 0)
		return tr_error_set(TR_EINVAL, "a shift needs two non-empty samples");
	if (na <= TR_MW_EXACT_MAX && nb <= TR_MW_EXACT_MAX) {
		double *pmf = mann_whitney_pmf(na, nb), tail = 0;

		if (!pmf)
			return TR_ENOMEM;
		for (k = 0; k < mn; k++) {
			tail += pmf[k];
			if (2 * tail > alpha)
				break;
		}
		free(pmf);
		/* k is the first U whose tails exceed alpha: c = k - 1. */
		have_c = k > 0;
		c = (double)k - 1;
	} else {
		z = normal_two_sided_quantile(alpha);
		c = floor((double)mn / 2 - z * sqrt((double)mn * (double)(na + nb + 1) / 12) - 0.5);
		have_c = c >= 0;
	}
	if (!(d = malloc(mn * sizeof(*d))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			d[i * nb + j] = b[j] - a[i];
	qsort(d, mn, sizeof(*d), cmp_double);
	*est = mn % 2 ? d[mn / 2] : (d[mn / 2 - 1] + d[mn / 2]) / 2;
	if (have_c) {
		*lo = d[(size_t)c];
		*hi = d[mn - 1 - (size_t)c];
	}
	free(d);
	return 0;
}

int tr_stats_mann_whitney(const double *a, size_t na, const double *b, size_t nb,
			  double *z, double *p)
{
	size_t n = na + nb, i = 0;
	ranked *all;
	double rank_sum_a = 0, ties = 0, u, mean, var;

	*z = 0;
	*p = 1;
	if (na == 0 || nb == 0)
		return tr_error_set(TR_EINVAL, "the U test needs two non-empty samples");
	if (!(all = malloc(n * sizeof(*all))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t k = 0; k < na; k++)
		all[k] = (ranked){ a[k], 1 };
	for (size_t k = 0; k < nb; k++)
		all[na + k] = (ranked){ b[k], 0 };
	qsort(all, n, sizeof(*all), cmp_ranked);
	/* Mid-ranks for ties; their sizes correct the variance. */
	while (i < n) {
		size_t j = i;
		double mid;

		while (j + 1 < n && all[j + 1].v == all[i].v)
			j++;
		mid = ((double)i + (double)j) / 2.0 + 1.0;
		for (size_t k = i; k <= j; k++)
			if (all[k].from_a)
				rank_sum_a += mid;
		if (j > i) {
			double t = (double)(j - i + 1);

			ties += t * t * t - t;
		}
		i = j + 1;
	}
	free(all);
	u = rank_sum_a - (double)na * ((double)na + 1) / 2.0;
	mean = (double)na * (double)nb / 2.0;
	var = (double)na * (double)nb / 12.0 *
	      (((double)n + 1) - ties / ((double)n * ((double)n - 1)));
	if (var <= 0)
		return 0; /* all equal: no difference */
	*z = (u - mean) / sqrt(var);
	/* Few values (one per round, say): the normal curve is too kind there. */
	if (ties == 0 && na <= TR_MW_EXACT_MAX && nb <= TR_MW_EXACT_MAX) {
		double cdf, tail = fmin(u, (double)na * (double)nb - u);
		int error = mann_whitney_cdf(na, nb, (size_t)tail, &cdf);

		if (error < 0)
			return error;
		*p = fmin(1, 2 * cdf);
		return 0;
	}
	*p = erfc(fabs(*z) / sqrt(2.0));
	return 0;
}

/* The regularised incomplete beta I_x(a, b), by its continued fraction. */
static double beta_cf(double a, double b, double x)
{
	double c = 1, d = 1 - (a + b) * x / (a + 1), h;

	d = fabs(d) < 1e-300 ? 1e-300 : d;
	d = 1 / d;
	h = d;
	for (int m = 1; m <= 300; m++) {
		double m2 = 2 * m, aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2)), del;

		d = 1 + aa * d;
		d = fabs(d) < 1e-300 ? 1e-300 : d;
		c = 1 + aa / c;
		c = fabs(c) < 1e-300 ? 1e-300 : c;
		d = 1 / d;
		h *= d * c;
		aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
		d = 1 + aa * d;
		d = fabs(d) < 1e-300 ? 1e-300 : d;
		c = 1 + aa / c;
		c = fabs(c) < 1e-300 ? 1e-300 : c;
		d = 1 / d;
		del = d * c;
		h *= del;
		if (fabs(del - 1) < 1e-12)
			break;
	}
	return h;
}

static double incomplete_beta(double a, double b, double x)
{
	double front;

	if (x <= 0)
		return 0;
	if (x >= 1)
		return 1;
	front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x));
	if (x < (a + 1) / (a + b + 2))
		return front * beta_cf(a, b, x) / a;
	return 1 - front * beta_cf(b, a, 1 - x) / b;
}

double tr_stats_t_cdf(double t, double df)
{
	double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));

	return t >= 0 ? 1 - tail : tail;
}

double tr_stats_t_quantile(double p, double df)
{
	double lo = -1e4, hi = 1e4;

	if (df <= 0 || p <= 0 || p >= 1)
		return NAN;
	for (int i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (tr_stats_t_cdf(mid, df) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}
