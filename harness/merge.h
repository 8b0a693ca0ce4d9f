/*
 * tokenrig merge: the result files of the shards of one run (`tokenrig run
 * --shard I/N` on N CI runners) made into one run's results.json and
 * junit.xml, as if one process had run every case.
 */
#ifndef TR_HARNESS_MERGE_H
#define TR_HARNESS_MERGE_H

#include <jansson.h>
#include <stddef.h>

typedef struct tr_merge_summary {
	unsigned total;      /* N: the shards of the run */
	unsigned given;      /* shards merged */
	unsigned missing;    /* shards of the N not given */
	size_t cases;        /* cases in the merge */
	long passed, failed, skipped, errors;
	/*
	 * "" when the merge is the whole run; else what is missing, one line:
	 * "shard 2 of 3 is missing (given: ...)" or "the shards' 40 cases are
	 * not the run's case list (...)".
	 */
	char incomplete[1024];
} tr_merge_summary;

/*
 * Merges the results documents docs[0..n) (labels[i] says where each came
 * from, for the messages) into *out: one tokenrig-results/1 document with
 * the cases of every shard, the summary, coverage and latency computed
 * again for the whole, the shards' provenance under "merged".
 *
 * Refused (TR_EINVAL, one message naming the files): a document that is
 * not a shard, shards of different runs (number of shards, suites, case
 * list, seed, tool version or revision), a shard given twice, a case in
 * two shards. Missing shards and a case list that the merge does not
 * cover are not refused: *out is made, and sum->incomplete says what.
 */
int tr_merge_docs(json_t *const *docs, const char *const *labels, size_t n, json_t **out,
		  tr_merge_summary *sum);

/*
 * Reads DIR/results.json and DIR/junit.xml of every folder (the JUnit
 * file's test count must agree with the results), merges them and writes
 * OUT/results.json and OUT/junit.xml. 0 once written (sum->incomplete may
 * still say shards are missing); an error before anything is written.
 */
int tr_merge_dirs(const char *const *dirs, size_t n, const char *out_dir,
		  tr_merge_summary *sum);

#endif
