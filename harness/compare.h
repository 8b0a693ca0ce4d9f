/*
 * `tokenrig compare BASE.json NEW.json`: per metric, faster / slower / no
 * change, "inconclusive: the machine was busy" or "undecided". Each round
 * is reduced to its median divided by its baseline's median of the same
 * round (so what the machine did then cancels out); rounds the machine
 * disturbed are left out, or make the metric inconclusive when too many;
 * each run is reduced to the median of its rounds, and the change between
 * the files is judged over runs (Student's t on the logs, the spread pooled
 * from both files' runs), because rounds of one run are not independent of
 * it. A verdict needs the whole interval past the threshold.
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
	TR_UNDECIDED,   /* one run a side: nothing to measure run-to-run spread with */
	TR_BUSY,        /* too many disturbed rounds: "inconclusive: the machine was busy" */
} tr_verdict;

/*
 * A round is disturbed when its baseline's round median, or the metric's
 * own (normalised) round value, lies further from the centre of its run's
 * rounds than TR_BUSY_K robust standard deviations, and at least
 * TR_BUSY_FLOOR (relative) away: the code is the same in every round of a
 * run, so such a move is the machine. Centre and spread are the shorth's
 * (the shortest interval holding half the rounds plus one, on logs: its
 * midpoint, its length / 1.349), which unlike median and MAD still sees
 * the undisturbed rounds when nearly half are disturbed. More than
 * TR_BUSY_SHARE of a side's rounds disturbed makes the metric inconclusive.
 */
#define TR_BUSY_K     3.0
#define TR_BUSY_FLOOR 0.10
#define TR_BUSY_SHARE 0.25

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

/* What a comparison of two files found, for exit codes and reports. */
typedef struct tr_compare_summary {
	int compared;    /* metrics in both files */
	int slower;      /* gated metrics significantly slower by more than the threshold */
	int faster;      /* gated metrics significantly faster */
	int busy;        /* gated metrics inconclusive: the machine was busy */
	int undecided;   /* gated metrics without a verdict: one run a side */
	int params_differ; /* the files were made with different bench parameters */
} tr_compare_summary;

typedef struct tr_compare_result {
	double change;      /* estimated relative change: +0.20 is 20% slower */
	double low, high;   /* its (1 - alpha) interval; -1, +inf when undecidable */
	double p;           /* the t test's p for "no difference at all" over runs */
} tr_compare_result;

const char *tr_verdict_name(tr_verdict v);

/*
 * Marks the disturbed rounds of one run (see TR_BUSY_K): ref holds the
 * baseline's round medians (NULL: none), own the metric's round values,
 * n rounds each. Fewer than 4 rounds are never marked. The number marked.
 */
size_t tr_compare_disturbed(const double *ref, const double *own, size_t n, unsigned char *mark);

/*
 * The run-to-run verdict: one level a run (the median of its round values)
 * on each side. The change is the ratio of the geometric means of the
 * levels; its interval is Student's t on their logs with the spread pooled
 * over both sides' runs (df = nb + nn - 2), so the variation between runs,
 * not only within one, sets the interval's width. TR_UNDECIDED when df is 0.
 */
tr_verdict tr_compare_levels(const double *base, size_t nb, const double *new_v, size_t nn,
			     const tr_compare_opts *opts, tr_compare_result *res);

/*
 * Compares two bench files and prints a table to out, with a warning line
 * when their parameters differ. *sum receives the counts of verdicts.
 * TR_EPARSE (naming the file and the problem) for a file that is not a
 * bench file of this schema.
 */
int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, tr_compare_summary *sum);

#endif
