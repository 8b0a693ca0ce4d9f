#include "harness/coverage.h"

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/scenario.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct id_row {
	char id[40];
	int in_catalog;
	int scenarios;
	int passed, failed, skipped;  /* token columns */
	int pending_line;             /* its line in pending-ids.txt, 0: not pending */
	char pending_why[160];
} id_row;

typedef struct table {
	id_row *rows;
	size_t n, cap;
} table;

static id_row *row(table *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].id, id))
			return &t->rows[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 128;
		id_row *r = realloc(t->rows, cap * sizeof(*r));

		if (!r)
			return NULL;
		t->rows = r;
		t->cap = cap;
	}
	memset(&t->rows[t->n], 0, sizeof(t->rows[0]));
	snprintf(t->rows[t->n].id, sizeof(t->rows[0].id), "%s", id);
	return &t->rows[t->n++];
}

/* The catalog's IDs: the first cell of its table rows ("| SZ-E05 | ..."). */
static int read_catalog(const char *path, table *t)
{
	char *text, *line, *next;
	int error;

	if ((error = tr_fs_read_all(path, 1 << 22, &text, NULL)) < 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", tr_error_last());
		return tr_error_set(error, "the catalog: %s (give --catalog or TOKENRIG_CATALOG)", why);
	}
	for (line = text; line; line = next) {
		char id[40];
		size_t n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "| ", 2))
			continue;
		n = strcspn(line + 2, " |");
		if (n == 0 || n >= sizeof(id))
			continue;
		memcpy(id, line + 2, n);
		id[n] = '\0';
		if (tr_scenario_id_valid(id)) {
			id_row *r = row(t, id);

			if (!r) {
				free(text);
				return tr_error_set(TR_ENOMEM, "out of memory");
			}
			r->in_catalog = 1;
		}
	}
	free(text);
	return 0;
}

int tr_pending_each(const char *suites_dir,
		    int (*fn)(void *arg, int line, const char *id, const char *why),
		    void *arg)
{
	char path[4096], *text, *line, *next;
	int error, lineno = 0;

	if ((error = tr_fs_join(path, sizeof(path), suites_dir, TR_PENDING_FILE)) < 0)
		return error;
	if (access(path, F_OK) != 0)
		return 0;  /* no list: nothing is pending */
	if ((error = tr_fs_read_all(path, 1 << 20, &text, NULL)) < 0)
		return error;
	for (line = text; line; line = next) {
		char *why;
		size_t n;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (*line == '#' || *line == '\0')
			continue;
		n = strcspn(line, " \t");
		why = line + n + strspn(line + n, " \t");
		line[n] = '\0';
		if (!tr_scenario_id_valid(line)) {
			error = tr_error_set(TR_EPARSE, "%s:%d: '%s' is not a catalog ID", path,
					     lineno, line);
			break;
		}
		if (!*why) {
			error = tr_error_set(TR_EPARSE, "%s:%d: %s: say why it is pending", path,
					     lineno, line);
			break;
		}
		if ((error = fn(arg, lineno, line, why)) < 0)
			break;
	}
	free(text);
	return error;
}

static int mark_pending(void *arg, int line, const char *id, const char *why)
{
	id_row *r = row(arg, id);

	if (!r)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (r->pending_line)
		return tr_error_set(TR_EPARSE, TR_PENDING_FILE ":%d: %s is listed twice (line %d)",
				    line, id, r->pending_line);
	r->pending_line = line;
	snprintf(r->pending_why, sizeof(r->pending_why), "%s", why);
	return 0;
}

static void count_results(json_t *coverage, table *t)
{
	const char *portal, *column;
	json_t *cols, *lists;

	json_object_foreach(coverage, portal, cols) {
		json_object_foreach(cols, column, lists) {
			static const char *const kinds[] = { "passed", "failed", "skipped" };

			for (int k = 0; k < 3; k++) {
				size_t i;
				json_t *v;

				json_array_foreach(json_object_get(lists, kinds[k]), i, v) {
					id_row *r = json_string_value(v) ? row(t, json_string_value(v)) : NULL;

					if (r)
						*(k == 0 ? &r->passed : k == 1 ? &r->failed : &r->skipped) += 1;
				}
			}
		}
	}
}

int tr_coverage_check(const char *catalog_path, const char *suites_dir,
		      const char *results_path, FILE *out, int *problems)
{
	table t = { 0 };
	tr_paths files;
	json_t *results = NULL;
	int error, in_catalog = 0, with_scenario = 0, passed = 0, pending = 0;

	*problems = 0;
	if ((error = read_catalog(catalog_path, &t)) < 0)
		goto out;
	if ((error = tr_pending_each(suites_dir, mark_pending, &t)) < 0 ||
	    (error = tr_scenario_find(suites_dir, &files)) < 0)
		goto out;
	for (size_t i = 0; i < files.n; i++) {
		tr_scenario *sc;

		if (tr_scenario_load(&sc, files.v[i]) < 0) {
			fprintf(out, "error: %s\n", tr_error_last());
			(*problems)++;
			continue;
		}
		for (size_t k = 0; k < sc->n_ids; k++) {
			id_row *r = row(&t, sc->ids[k]);

			if (r)
				r->scenarios++;
		}
		tr_scenario_free(sc);
	}
	tr_paths_free(&files);
	if (results_path) {
		json_error_t jerr;

		if (!(results = json_load_file(results_path, 0, &jerr))) {
			error = tr_error_set(TR_EPARSE, "%s:%d: %s", results_path, jerr.line, jerr.text);
			goto out;
		}
		if (!json_is_string(json_object_get(results, "schema")) ||
		    strcmp(json_string_value(json_object_get(results, "schema")),
			   "tokenrig-results/1")) {
			error = tr_error_set(TR_EPARSE, "%s: not a tokenrig-results/1 file",
					     results_path);
			goto out;
		}
		count_results(json_object_get(results, "coverage"), &t);
	}

	fprintf(out, "%-18s %9s %7s %7s %8s\n", "catalog ID", "scenarios", "passed", "failed",
		"skipped");
	for (size_t i = 0; i < t.n; i++) {
		id_row *r = &t.rows[i];
		const char *why = !r->in_catalog ? "  <- not in the catalog" :
				  r->pending_line && r->passed ?
					"  <- pending, yet it passed: remove it from " TR_PENDING_FILE :
				  r->pending_line ? "" :
				  !r->scenarios ? "  <- no scenario" :
				  results && !r->passed ? "  <- passed on no token kind" : "";

		fprintf(out, "%-18s %9d %7d %7d %8d%s%s\n", r->id, r->scenarios, r->passed, r->failed,
			r->skipped, why, r->pending_line && !*why ? "  PENDING" : "");
		*problems += *why != '\0';
		in_catalog += r->in_catalog;
		with_scenario += r->in_catalog && r->scenarios;
		passed += r->in_catalog && r->passed;
		pending += r->pending_line != 0;
	}
	fprintf(out, "\ncatalog: %d IDs, %d with a scenario", in_catalog, with_scenario);
	if (results)
		fprintf(out, ", %d passed on at least one token kind", passed);
	fprintf(out, "; %d pending; %d problem(s)\n", pending, *problems);
	if (pending) {
		fprintf(out, "\nPENDING: %d catalog ID(s) are not covered yet (%s/%s):\n", pending,
			suites_dir, TR_PENDING_FILE);
		for (size_t i = 0; i < t.n; i++)
			if (t.rows[i].pending_line)
				fprintf(out, "PENDING  %-14s %s\n", t.rows[i].id, t.rows[i].pending_why);
	}
out:
	json_decref(results);
	free(t.rows);
	return error;
}
