/*
 * The run history: results.json files (and bench files) imported into one
 * SQLite database, for the nightly report. The schema is versioned (SQLite's
 * user_version) and brought up to date by an ordered list of migrations when
 * opened. WAL mode and a busy timeout let several imports run at once; each
 * import is one transaction, so bad input leaves the database unchanged.
 */
#ifndef TR_HARNESS_HISTORY_H
#define TR_HARNESS_HISTORY_H

#include <stddef.h>

typedef struct tr_history tr_history;

#define TR_HISTORY_DEFAULT_DB "out/history.sqlite"

/* Opens (creating) the database at path and migrates it to the latest schema. */
int tr_history_open(tr_history **out, const char *path);

/*
 * The same, migrating no further than schema version `version` (tests of
 * migrations build an older database with it).
 */
int tr_history_open_version(tr_history **out, const char *path, int version);

void tr_history_free(tr_history *h);

/* The schema version of the open database; the latest this tokenrig knows. */
int tr_history_schema_version(tr_history *h);
int tr_history_latest_version(void);

typedef struct tr_history_add_opts {
	const char *bench_path;  /* a bench file (tokenrig-bench/1) of the same run, or NULL */
	/* the verdict (tokenrig-certification/1) of a certify run, or NULL */
	const char *certification_path;
	const char *label;       /* e.g. "nightly"; NULL: none */
	const char *revision;    /* overrides the results' tool.revision; NULL: keep */
} tr_history_add_opts;

/*
 * Imports a results.json (schema tokenrig-results/1). A file already
 * imported (the same bytes) is the same run: *added is 0 and nothing is
 * duplicated (its bench is attached if it had none). TR_EPARSE naming the
 * file for input that is not a complete results or bench file; the
 * database is then unchanged. *run_id may be NULL.
 */
int tr_history_add(tr_history *h, const char *results_path, const tr_history_add_opts *opts,
		   long long *run_id, int *added);

/* --- reading ------------------------------------------------------------ */

typedef struct tr_history_run {
	long long id;
	char started[32], finished[32], imported[32];
	char host[128], version[32], revision[64], label[64], kinds[128];
	long long seed;
	int passed, failed, skipped, errors, warnings;
	int has_bench;
	int has_certification;
} tr_history_run;

/* The last `last` runs (0: all), oldest first, by start time. */
int tr_history_runs(tr_history *h, size_t last, tr_history_run **runs, size_t *n);

/* A case's outcome in one run. Strings are owned by the list. */
typedef struct tr_history_case {
	char *key;        /* "portal/file.scn [kind/algorithm]": the same case across runs */
	char *ids;        /* catalog IDs, space-separated */
	char *title, *scenario, *portal, *kind, *algorithm;
	char *status;     /* passed, failed, skipped, error */
	double duration_ms;
	char *message, *step, *expected, *actual, *code;
	char *warnings;   /* JSON array text, "" for none */
} tr_history_case;

typedef struct tr_history_cases {
	tr_history_case *v;
	size_t n;
} tr_history_cases;

int tr_history_run_cases(tr_history *h, long long run_id, tr_history_cases *out);
void tr_history_cases_free(tr_history_cases *cases);

typedef struct tr_history_latency {
	char portal[32], kind[32], algorithm[32], stage[16];
	long long n;
	double p50_us, p90_us, p99_us, max_us, mean_us;
} tr_history_latency;

int tr_history_run_latency(tr_history *h, long long run_id, tr_history_latency **rows,
			   size_t *n);

/* The bench file imported with a run, as text (caller frees); TR_ENOTFOUND if none. */
int tr_history_run_bench(tr_history *h, long long run_id, char **json_text);

/* The certification document of a run (malloc'd), TR_ENOTFOUND without. */
int tr_history_run_certification(tr_history *h, long long run_id, char **json_text);

/* --- what changed ------------------------------------------------------- */

typedef enum tr_history_change_kind {
	TR_CHANGE_NEWLY_FAILING,  /* failed (or error) now; not before */
	TR_CHANGE_FIXED,          /* passed now; failed (or error) before */
	TR_CHANGE_NEWLY_SKIPPED,  /* skipped now; ran before */
} tr_history_change_kind;

typedef struct tr_history_change {
	tr_history_change_kind kind;
	const tr_history_case *now;     /* in the `now` list */
	const tr_history_case *before;  /* in the `before` list; NULL: a new case */
} tr_history_change;

/*
 * The changes between two runs' case lists (keyed by case key); *out in the
 * order of `now`. A case absent from `before` that fails is newly failing.
 */
int tr_history_changes(const tr_history_cases *before, const tr_history_cases *now,
		       tr_history_change **out, size_t *n);

/*
 * Flaky: the outcome (passed vs failed/error; skipped and absent runs are
 * left out) changed at least twice over the given runs, oldest first.
 * flips[i] receives the number of changes of runs[last][i]; the caller
 * frees *flips.
 */
int tr_history_flips(const tr_history_cases *runs, size_t n_runs, int **flips);

const char *tr_history_change_name(tr_history_change_kind kind);

#endif
