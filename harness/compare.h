/*
 * `tokenrig compare BASE.json NEW.json`: per metric, faster / slower / no
 * change. Each run is reduced to one value per round (the round's median,
 * optionally divided by its baseline's median of the same round). The
 * change is the Hodges-Lehmann shift of their logarithms, with its
 * confidence interval from the Mann-Whitney U distribution (exact for few
 * rounds); a verdict needs the whole interval past the threshold, so a
 * noisy machine does not cry wolf and a real 20% shift is not missed.
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
	double alpha;      /* 1 - the confidence of the interval, e.g. 0.01 */
	/*
	 * Divide each round's median by its baseline's median of the same
	 * round first, so a slower machine is not a slower token; the
	 * baselines themselves (metrics without one) are then shown but not
	 * gated.
	 */
	int normalize;
} tr_compare_opts;

typedef struct tr_compare_result {
	double change;      /* estimated relative change: +0.20 is 20% slower */
	double low, high;   /* its (1 - alpha) interval; -1, +inf when undecidable */
	double p;           /* the U test's p for "no difference at all" */
} tr_compare_result;

/*
 * The verdict for new against base, one value per round each: slower when
 * the whole (1 - alpha) interval of the change lies above +threshold
 * (significantly slower by more than the threshold, not merely different),
 * faster when it lies below -threshold, and in nanoseconds (normalize 0)
 * only when the medians also moved by opts->min_us.
 */
tr_verdict tr_compare_verdict(const double *base, size_t nb, const double *new_v, size_t nn,
			      const tr_compare_opts *opts, tr_compare_result *res);

const char *tr_verdict_name(tr_verdict v);

/*
 * Compares two bench files and prints a table to out. *slower receives the
 * number of metrics that got significantly slower. TR_EPARSE (naming the
 * file and the problem) for a file that is not a bench file of this schema.
 */
int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, int *slower);

#endif
