/*
 * Coverage against the catalog (../shared/spec/failure-paths.md): every ID
 * has a scenario, no scenario names an ID the catalog lacks, and (given a
 * results file) every ID passed on at least one token kind.
 */
#ifndef TR_HARNESS_COVERAGE_H
#define TR_HARNESS_COVERAGE_H

#include <stdio.h>

#define TR_DEFAULT_CATALOG "../shared/spec/failure-paths.md"

/*
 * IDs the catalog has that no scenario covers yet, one a line with the
 * reason ("JS-B01 the person registry does not exist yet"), in the suites
 * folder. While an ID is listed it is reported as pending, not as a problem;
 * listed and passing is a problem (the line must go).
 */
#define TR_PENDING_FILE "pending-ids.txt"

/*
 * Calls fn for every ID of SUITES_DIR/pending-ids.txt (none when the file is
 * absent); stops at fn's negative return. A line that is not "ID reason" is
 * an error naming file:line.
 */
int tr_pending_each(const char *suites_dir,
		    int (*fn)(void *arg, int line, const char *id, const char *why),
		    void *arg);

/*
 * Prints a table per ID to out, then the pending IDs each on a line starting
 * "PENDING"; *problems counts the IDs without scenario (and not pending),
 * unknown IDs, unparsable scenario files, (with results_path) IDs passed
 * nowhere, and pending IDs that passed. A negative return: a file could not be read.
 */
int tr_coverage_check(const char *catalog_path, const char *suites_dir,
		      const char *results_path, FILE *out, int *problems);

#endif
