/*
 * `tokenrig report`: the nightly compatibility report of a run history
 * (harness/history.h). One self-contained HTML page (inline CSS and SVG,
 * nothing fetched) and, optionally, a short Markdown summary for a CI job
 * page: the last run's headline and verdict, what changed since the run
 * before, flaky cases, the compatibility matrix (catalog ID x portal and
 * token kind/algorithm), latency trends and the bench verdict.
 */
#ifndef TR_HARNESS_NIGHTLY_H
#define TR_HARNESS_NIGHTLY_H

#include "harness/history.h"

#include <stddef.h>

typedef struct tr_nightly_opts {
	const char *html_path;      /* required */
	const char *markdown_path;  /* NULL: none */
	size_t last;                /* runs in trends and flaky detection; 0: 30 */
	const char *catalog_path;   /* IDs' order and titles; unreadable: IDs from the runs */
} tr_nightly_opts;

/* Writes the page (and summary), each atomically. TR_ENOTFOUND: no runs. */
int tr_nightly_write(tr_history *h, const tr_nightly_opts *opts);

#endif
