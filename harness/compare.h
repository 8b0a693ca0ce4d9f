/*
 * `tokenrig compare BASE.json NEW.json`: per metric, faster / slower / no
 * change, from a Mann-Whitney U test on the raw samples plus a minimum
 * effect size on the ratio of medians, so a noisy machine does not cry
 * wolf and a real 20% shift is not missed.
 */
#ifndef TR_HARNESS_COMPARE_H
#define TR_HARNESS_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum tr_verdict {
	TR_NO_CHANGE,
	TR_FASTER,
	TR_SLOWER,
} tr_verdict;

typedef struct tr_compare_opts {
	double threshold;  /* minimum relative effect, e.g. 0.10 for 10% */
	double min_us;     /* minimum absolute effect on the medians, microseconds */
	double alpha;      /* significance level of the U test, e.g. 0.01 */
	/*
	 * Divide each metric by its own run's baseline median first, so a
	 * slower machine is not a slower token; the baselines themselves
	 * (metrics without one) are then shown but not gated.
	 */
	int normalize;
} tr_compare_opts;

/*
 * The verdict for new against base: slower when the U test finds a
 * difference (p < alpha) and the median grew by more than threshold (and by
 * more than opts->min_us when the samples are in nanoseconds).
 */
tr_verdict tr_compare_verdict(const uint64_t *base, size_t nb, const uint64_t *new_s,
			      size_t nn, const tr_compare_opts *opts, double *ratio, double *p);

const char *tr_verdict_name(tr_verdict v);

/*
 * Compares two bench files and prints a table to out. *slower receives the
 * number of metrics that got significantly slower. TR_EPARSE (naming the
 * file and the problem) for a file that is not a bench file of this schema.
 */
int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, int *slower);

#endif
