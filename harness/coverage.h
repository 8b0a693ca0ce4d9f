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
 * Prints a table per ID to out; *problems counts the IDs without scenario,
 * unknown IDs, unparsable scenario files and (with results_path) IDs passed
 * nowhere. A negative return: a file could not be read.
 */
int tr_coverage_check(const char *catalog_path, const char *suites_dir,
		      const char *results_path, FILE *out, int *problems);

#endif
