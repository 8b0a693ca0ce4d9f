/*
 * Scenario files (suites/<portal>/NAME.scn; the format is documented in
 * suites/README.md): one flow or failure path as data. Parsing checks the
 * structure, the catalog IDs, the actions and their keys, and names
 * file:line for any error; values (with their ${variables}) are resolved
 * when the scenario runs.
 */
#ifndef TR_HARNESS_SCENARIO_H
#define TR_HARNESS_SCENARIO_H

#include <stddef.h>

#define TR_SCENARIO_MAX_BYTES (256 * 1024)

typedef struct tr_kv {
	char *key;
	char *value;
	int line;
} tr_kv;

typedef struct tr_step {
	char *name;       /* from [step NAME], or "step N" */
	char *action;     /* the `do` value */
	int line;         /* line of the [step] header */
	tr_kv *kv;
	size_t n_kv;
} tr_step;

typedef struct tr_scenario {
	char *path;
	char **ids;        /* catalog IDs, e.g. "SZ-E05" */
	size_t n_ids;
	char *title;
	char *portal;      /* "suzhou", ... */
	char *token;       /* default token role ("a") */
	char **algorithms; /* allowed key algorithms; empty: all */
	size_t n_algorithms;
	char **kinds;      /* allowed token kinds; empty: all */
	size_t n_kinds;
	tr_step *steps;
	size_t n_steps;
} tr_scenario;

/* Parses text; on error returns TR_EPARSE with "path:line: what". */
int tr_scenario_parse(tr_scenario **out, const char *path, const char *text,
		      size_t len);

/* Reads and parses a file. */
int tr_scenario_load(tr_scenario **out, const char *path);

void tr_scenario_free(tr_scenario *sc);

/* The value of key in the step, NULL when absent. */
const char *tr_step_get(const tr_step *step, const char *key);

/* 1 when id has the shape of a catalog ID (SZ-, JS-, HB-, SC-, HN-, TK-). */
int tr_scenario_id_valid(const char *id);

/* A list of file paths. */
typedef struct tr_paths {
	char **v;
	size_t n, cap;
} tr_paths;

/* Every *.scn below dir, sorted. */
int tr_scenario_find(const char *dir, tr_paths *out);
void tr_paths_free(tr_paths *p);

/* 1 when list (of n) is empty or holds name. */
int tr_scenario_allows(char **list, size_t n, const char *name);

#endif
