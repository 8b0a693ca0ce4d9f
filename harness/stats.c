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
	free(sorted);
	return 0;
}
