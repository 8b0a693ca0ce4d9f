/*
 * `tokenrig bench`: signing latency a vendor can put in a certification
 * report. Every figure is a series of raw samples with its statistics and,
 * where one exists, its ratio to a baseline measured in the same run (raw
 * OpenSSL signing, a direct C_Sign loop), because absolute times are not
 * stable on a shared machine. Output: a table and a JSON document of schema
 * "tokenrig-bench/1" that `tokenrig compare` reads.
 */
#ifndef TR_HARNESS_BENCH_H
#define TR_HARNESS_BENCH_H

#include "harness/env.h"

#include <stdio.h>

#define TR_BENCH_SCHEMA "tokenrig-bench/1"

typedef struct tr_bench_opts {
	const char *json_path;   /* NULL: no JSON */
	unsigned count;          /* timed samples per metric */
	unsigned warmup;         /* untimed calls before */
	unsigned rounds;         /* metrics interleaved in this many rounds */
	unsigned max_threads;    /* concurrency up to this many signers */
	const char *kinds;       /* NULL: all; else e.g. "softhsm" or "vcard,opensc" */
	const char *latency;     /* the interposer latency added (--latency), NULL: none */
} tr_bench_opts;

/*
 * Merges the bench files of n runs of one bench (`bench --runs`, each a
 * process of its own with fresh tokens and portal) into one file at
 * out_path: every metric's samples and rounds one run after the other,
 * "runs" the rounds of each run, the summaries recomputed over all runs,
 * params.runs set to n. Prints the merged table to out.
 */
int tr_bench_merge(const char *const *paths, size_t n, const char *out_path, FILE *out);

/*
 * Measures every token kind asked for (softhsm, vcard, opensc: the
 * profile-"a" token of portal suzhou in each algorithm). Without virtual
 * cards in the env it says why and measures SoftHSM alone, unless card
 * kinds were named in opts->kinds (then TR_EDEPEND).
 */
int tr_bench_run(tr_env *env, const tr_bench_opts *opts);

/* kinds: NULL (every kind) or names separated by commas or spaces. */
int tr_bench_kind_wanted(const char *kinds, const char *kind);
/* TR_EINVAL (error set) when kinds names an unknown kind or none. */
int tr_bench_kinds_check(const char *kinds);
/* Whether kinds asks for a kind on the virtual cards. */
int tr_bench_kinds_cards(const char *kinds);

#endif
