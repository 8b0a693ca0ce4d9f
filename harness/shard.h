/*
 * Shards: a deterministic slice of a run's case list, so that N CI runners
 * each run one part and `tokenrig merge` makes one report of them.
 */
#ifndef TR_HARNESS_SHARD_H
#define TR_HARNESS_SHARD_H

#include <stddef.h>

#include "harness/report.h"

typedef struct tr_shard {
	unsigned index; /* 1 .. total */
	unsigned total; /* 0: no sharding, the whole run */
} tr_shard;

/* The most shards a run may be cut into. */
#define TR_SHARD_MAX 1000

/*
 * "I/N" (1 <= I <= N), or "auto": the CI's own variables (documented in
 * shard.c and the README); an error naming what is wrong otherwise.
 */
int tr_shard_parse(const char *spec, tr_shard *out);

/*
 * keep[i] = 1 for the cases of shard s among the n cases names[] (unique
 * case names in the run's deterministic order), 0 for the others. With
 * prev_results (a results.json, may be NULL) the shards are balanced by its
 * per-case duration_ms (cases it lacks count as its median); else by count.
 * The same inputs give the same slices on every machine; the N slices
 * partition the list. s->total == 0 keeps everything.
 *
 * names[] are the cases' results.json "name"s (tr_case_result_name), so
 * that the previous run's durations and `tokenrig merge` find them.
 */
int tr_shard_select(const tr_shard *s, const char *const *names, size_t n,
		    const char *prev_results, unsigned char *keep);

/*
 * SHA-256 (64 hex digits) of the whole case list before sharding: the names
 * sorted, each followed by "\n". Order-free, so that `tokenrig merge` can
 * compute it again from the union of the shards' cases.
 */
int tr_shard_case_list_digest(const char *const *names, size_t n, char out[65]);

/*
 * SHA-256 of a suites folder: every *.scn below it (path relative to the
 * folder, NUL, length, contents, in sorted order) and its tokens.conf when
 * present. Shards of one run give the same digest; an edited scenario not.
 */
int tr_shard_suites_digest(const char *suites_dir, char out[65]);

/*
 * What results.json records for `tokenrig merge` to check that shards
 * belong together, set once the case list is known (before any case is
 * recorded): "shard": {"index", "total"} when s->total > 0,
 * "case_list_sha256" of names[] (the whole list, before sharding) and
 * "suites_sha256" of suites_dir (NULL: left out). Unsharded runs record
 * the digests too, so that a merge can be compared with them.
 */
int tr_shard_record(tr_report *rep, const tr_shard *s, const char *const *names, size_t n,
		    const char *suites_dir);

#endif
