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
} tr_summary;

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
