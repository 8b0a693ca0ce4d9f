#include "harness/engine.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "harness/kinds.h"
#include "harness/portal_client.h"
#include "harness/report.h"
#include "harness/scenario.h"
#include "harness/steps.h"
#include "harness/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HTTP_TIMEOUT_MS 10000
#define QUIT_MS 10000     /* workers bringing their environments down */
#define START_TRIES 3     /* a worker that fails to start this often in a row is given up */
#define STEAL_MIN 8       /* cases left of a group another worker shows, worth a show (~0.8 s) */

/* A column of the matrix: one token kind and algorithm of one portal. */
typedef struct column {
	char portal[16], kind[16], algorithm[16];
	const char *absent;  /* why this column has no token in the run, else NULL */
	int passed, failed, skipped, errors;
	tr_samples sign_ns, login_ns;
} column;

/* What the run does with an entry of its case list. */
typedef enum entry_what { E_BAD_FILE, E_NO_PORTAL, E_CASE } entry_what;
enum { PENDING, RUNNING, DONE };

typedef struct entry {
	entry_what what;
	size_t file;         /* in the suites' files */
	column *col;         /* E_CASE */
	int group;           /* the cards it needs shown (a column index), -1: none */
	unsigned char keep, state;
} entry;

/*
 * Where a worker is, in a file the run reads after killing it: the phase
 * and, inside the steps, the step (tr_case_run writes fail.step first).
 */
typedef struct case_state {
	char phase[64];
	tr_case_failure fail;
} case_state;

#define PHASE_STEPS "steps"

/* A case's outcome and the storage its strings point into. */
typedef struct case_out {
	tr_case_result res;
	char msg[2600];
	json_t *warnings, *log;
	uint64_t steps_ns;
	int rig_fault;
} case_out;

typedef struct engine {
	tr_env *env;
	const tr_engine_opts *opts;
	tr_report *report;
	column *cols;
	size_t n_cols, cap_cols;
	struct { char name[16]; tr_portal_client *pc; } clients[8];
	tr_token_ctl *shim_ctl;   /* the SoftHSM tokens' interposer */
	size_t n_clients;
	size_t done, total;
	tr_run_totals *totals;
	/* The watchdog's view of the case running (in-process runs). */
	_Atomic uint64_t case_deadline;
	_Atomic int finished;
	pthread_mutex_t name_lock;
	char case_name[512];
	char stopped[1024];  /* why this engine's token must not be touched again, "" */
	/* The case list. */
	tr_paths files;
	tr_scenario **parsed;
	entry *entries;
	size_t n_entries;
	uint64_t cases_start;
	tr_samples fixed_ns;  /* per case: its time outside its own steps */
	uint64_t write_ns;    /* rewriting the result files after each case */
	json_t *restarts;
	json_t *startups;     /* each worker's start-up, phase by phase */
} engine;

/* --- watchdog: no case may hang an in-process run ------------------------ */

static void *watchdog(void *arg)
{
	engine *eng = arg;

	while (!atomic_load(&eng->finished)) {
		uint64_t d = atomic_load(&eng->case_deadline);

		if (d && tr_clock_ns() > d) {
			pthread_mutex_lock(&eng->name_lock);
			fprintf(stderr, "\ntokenrig: case '%s' ran past its deadline; aborting the run "
				"(every finished case is in %s)\n", eng->case_name, eng->opts->out_dir);
			_exit(3);
		}
		tr_poll_pause(tr_deadline_after_ms(100), 100);
	}
	return NULL;
}

/* --- the matrix --------------------------------------------------------- */

static column *column_add(engine *eng, const char *portal, const char *kind, const char *alg)
{
	column *c;

	for (size_t k = 0; k < eng->n_cols; k++)
		if (!strcmp(eng->cols[k].portal, portal) && !strcmp(eng->cols[k].kind, kind) &&
		    !strcmp(eng->cols[k].algorithm, alg))
			return &eng->cols[k];
	if (eng->n_cols == eng->cap_cols) {
		/* Columns are found again by pointer: the array never moves once built. */
		return NULL;
	}
	c = &eng->cols[eng->n_cols++];
	memset(c, 0, sizeof(*c));
	snprintf(c->portal, sizeof(c->portal), "%s", portal);
	snprintf(c->kind, sizeof(c->kind), "%s", kind);
	snprintf(c->algorithm, sizeof(c->algorithm), "%s", alg);
	return c;
}

static int build_columns(engine *eng)
{
	const tr_token_ref *t;
	size_t n;

	t = tr_env_tokens(eng->env, &n);
	/* Room for the card columns of every portal, when there are no cards. */
	eng->cap_cols = n + 64;
	eng->cols = calloc(eng->cap_cols, sizeof(*eng->cols));
	if (!eng->cols)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		column_add(eng, t[i].portal, t[i].kind, t[i].algorithm);
	if (*tr_env_cards_missing(eng->env)) {
		/* Never silently dropped: no cards, their columns are skipped with the reason. */
		size_t portals = eng->n_cols;

		for (size_t p = 0; p < portals; p++) {
			const char *kind, *alg;
			int seen = 0;

			for (size_t q = 0; q < p; q++)
				seen |= !strcmp(eng->cols[q].portal, eng->cols[p].portal);
			for (size_t i = 0; !seen && tr_env_card_column(i, &kind, &alg) == 0 &&
					   eng->n_cols < eng->cap_cols; i++) {
				column *c = column_add(eng, eng->cols[p].portal, kind, alg);

				if (c)
					c->absent = tr_env_cards_missing(eng->env);
			}
		}
	}
	return 0;
}

static tr_portal_client *client_for(engine *eng, const char *portal)
{
	const char *url = tr_env_portal_url(eng->env, portal);
	size_t i;

	for (i = 0; i < eng->n_clients; i++)
		if (!strcmp(eng->clients[i].name, portal))
			return eng->clients[i].pc;
	if (!url || eng->n_clients == 8)
		return NULL;
	if (tr_portal_client_new(&eng->clients[i].pc, url, tr_env_ca_bundle(eng->env),
				 HTTP_TIMEOUT_MS) < 0)
		return NULL;
	snprintf(eng->clients[i].name, sizeof(eng->clients[i].name), "%s", portal);
	eng->n_clients++;
	return eng->clients[i].pc;
}

static size_t matching_columns(engine *eng, const char *portal)
{
	size_t n = 0;

	for (size_t k = 0; k < eng->n_cols; k++)
		n += !strcmp(eng->cols[k].portal, portal);
	return n;
}

/* --- progress ----------------------------------------------------------- */

static void print_warnings(const json_t *warnings)
{
	size_t i;
	json_t *w;

	json_array_foreach(warnings, i, w)
		printf("      WARNING: %s (step: %s)\n",
		       json_string_value(json_object_get(w, "message")),
		       json_string_value(json_object_get(w, "step")));
}

/* The live line on a TTY: counts so far and the time left at this pace. */
static void progress_line(engine *eng, const char *name)
{
	tr_run_totals *t = eng->totals;
	char eta[32] = "";

	if (eng->opts->quiet || !eng->opts->tty)
		return;
	if (eng->done && eng->cases_start) {
		double per = (double)(tr_clock_ns() - eng->cases_start) / 1e9 / (double)eng->done;

		snprintf(eta, sizeof(eta), ", ETA %.0f s", per * (double)(eng->total - eng->done));
	}
	printf("\r\033[K[%zu/%zu] %d passed, %d failed, %d skipped, %d errors%s%s%.60s",
	       eng->done, eng->total, t->passed, t->failed, t->skipped, t->errors, eta,
	       name && *name ? " | " : "", name ? name : "");
	fflush(stdout);
}

static void progress_end(engine *eng, const tr_case_result *res, const char *name)
{
	static const char *const tags[] = { "PASS", "FAIL", "SKIP", "ERROR" };

	eng->done++;
	if (eng->opts->on_case)
		eng->opts->on_case(eng->opts->on_case_arg, eng->done, eng->total);
	if (eng->opts->quiet)
		return;
	if (eng->opts->tty) {
		printf("\r\033[K");
		if (res->status == TR_CASE_FAILED || res->status == TR_CASE_ERROR)
			printf("%-5s %s\n      %s\n", tags[res->status], name,
			       res->message ? res->message : "");
		else if (json_array_size(res->warnings))
			printf("WARN  %s\n", name);
		print_warnings(res->warnings);
		progress_line(eng, NULL);
		return;
	}
	printf("%-5s [%zu/%zu] %s (%.1f ms)\n", tags[res->status], eng->done, eng->total,
	       name, res->duration_ms);
	if ((res->status == TR_CASE_FAILED || res->status == TR_CASE_ERROR) && res->message)
		printf("      %s\n", res->message);
	if (res->status == TR_CASE_FAILED && res->expected && *res->expected)
		printf("      expected: %s\n      actual:   %s\n", res->expected, res->actual);
	print_warnings(res->warnings);
	fflush(stdout);
}

static void count(engine *eng, column *col, tr_case_status st)
{
	int *t = st == TR_CASE_PASSED ? &eng->totals->passed :
		 st == TR_CASE_FAILED ? &eng->totals->failed :
		 st == TR_CASE_SKIPPED ? &eng->totals->skipped : &eng->totals->errors;

	(*t)++;
	if (!col)
		return;
	t = st == TR_CASE_PASSED ? &col->passed : st == TR_CASE_FAILED ? &col->failed :
	    st == TR_CASE_SKIPPED ? &col->skipped : &col->errors;
	(*t)++;
}

/* A finished case: counted, into the files at its place in the case list, said. */
static void record(engine *eng, size_t order, column *col, tr_case_result *res)
{
	char name[1024];

	uint64_t t0 = tr_clock_ns();

	tr_case_result_name(res, name, sizeof(name));
	count(eng, col, res->status);
	if (tr_report_add_at(eng->report, order, res) < 0)
		fprintf(stderr, "tokenrig: writing results: %s\n", tr_error_last());
	eng->write_ns += tr_clock_ns() - t0;
	progress_end(eng, res, name);
}

/* A run (not certify) ends at a signal: no further case starts. */
static int interrupted(const engine *eng)
{
	return eng->opts->interrupt_ends_run && eng->opts->stop && *eng->opts->stop;
}

/* --- one case ----------------------------------------------------------- */

static void phase(case_state *st, const char *what)
{
	snprintf(st->phase, sizeof(st->phase), "%s", what);
}

/* Runs one case in this process against eng->env; out holds its result. */
static void run_case(engine *eng, const tr_scenario *sc, column *col, case_state *st,
		     case_out *out)
{
	tr_case_result *res = &out->res;
	tr_case_timing timing = { &col->sign_ns, &col->login_ns };
	tr_portal_client *pc;
	tr_case_failure *fail = &st->fail;
	tr_http_answer h;
	tr_case *c = NULL;
	tr_token_ctl *ctl;
	char fault[1400];
	uint64_t start = tr_clock_ns(), steps;
	int error;

	memset(out, 0, sizeof(*out));
	memset(fail, 0, sizeof(*fail));
	*res = (tr_case_result){
		.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids, .title = sc->title,
		.scenario = sc->path, .portal = sc->portal, .kind = col->kind,
		.algorithm = col->algorithm,
	};
	phase(st, "setting up the case (portal reset, tokens put back)");
	pthread_mutex_lock(&eng->name_lock);
	snprintf(eng->case_name, sizeof(eng->case_name), "%s %s [%s/%s]", sc->ids[0], sc->title,
		 col->kind, col->algorithm);
	pthread_mutex_unlock(&eng->name_lock);
	atomic_store(&eng->case_deadline, tr_deadline_after_ms(eng->opts->case_timeout_ms));

	/* A card kind: its column's cards in the readers (a no-op when they are). */
	if (tr_kind_has(col->kind, TR_KIND_CARD) &&
	    tr_env_show_cards(eng->env, col->portal, col->algorithm) < 0) {
		snprintf(out->msg, sizeof(out->msg), "showing the cards of %s/%s: %s", col->portal,
			 col->algorithm, tr_error_last());
		res->status = TR_CASE_ERROR;
		res->message = out->msg;
		goto out;
	}
	if (!(pc = client_for(eng, sc->portal))) {
		res->status = TR_CASE_ERROR;
		res->message = "no client for the portal";
		goto out;
	}
	/* Every case starts from a portal that has never seen anyone. */
	error = tr_portal_client_request(pc, "POST", "/admin/reset", NULL, "{}", 2, &h);
	if (error < 0 || h.status != 200) {
		snprintf(out->msg, sizeof(out->msg), "resetting the portal failed: %s",
			 error < 0 ? tr_error_last() : "status not 200");
		res->status = TR_CASE_ERROR;
		res->message = out->msg;
		if (!error)
			tr_http_answer_clear(&h);
		goto out;
	}
	tr_http_answer_clear(&h);

	ctl = tr_kind_has(col->kind, TR_KIND_INTERPOSER) ? eng->shim_ctl : NULL;
	if ((error = tr_env_restore_crls(eng->env)) < 0 ||
	    (tr_kind_has(col->kind, TR_KIND_CARD) && (error = tr_env_reset_cards(eng->env)) < 0) ||
	    (ctl && (error = tr_token_ctl_reset(ctl)) < 0) ||
	    (error = tr_case_new(&c, sc, eng->env, pc, ctl, col->kind, col->algorithm,
				 timing)) < 0) {
		res->status = TR_CASE_ERROR;
		snprintf(out->msg, sizeof(out->msg), "%s", tr_error_last());
		res->message = out->msg;
		goto out;
	}
	phase(st, PHASE_STEPS);
	steps = tr_clock_ns();
	error = tr_case_run(c, fail);
	out->steps_ns = tr_clock_ns() - steps;
	phase(st, "putting the tokens back after the steps");
	res->status = error == TR_CASE_PASS ? TR_CASE_PASSED :
		      error == TR_CASE_SKIP ? TR_CASE_SKIPPED :
		      error == TR_CASE_STOP || error == TR_CASE_RIG_ERROR ? TR_CASE_ERROR :
		      TR_CASE_FAILED;
	if (error != TR_CASE_PASS)
		res->message = fail->message;
	if (error == TR_CASE_STOP) {
		/* Never brick a real key: nothing more touches this token. */
		snprintf(eng->stopped, sizeof(eng->stopped), "%s", fail->message);
		tr_case_free(c);
		c = NULL;
		goto out;
	}
	if (error < 0) {
		res->step = fail->step;
		res->expected = fail->expected;
		res->actual = fail->actual;
	}
	out->warnings = json_incref((json_t *)tr_case_warnings(c));
	res->warnings = out->warnings;
	out->log = json_deep_copy(tr_case_log(c));
	res->log = out->log;
	/* A token the case could not put back would fail the next ones. */
	if (tr_case_finish(c) < 0) {
		snprintf(out->msg, sizeof(out->msg), "%s%safter the case: %s",
			 res->message ? res->message : "", res->message ? "; " : "", tr_error_last());
		res->status = TR_CASE_ERROR;
		res->message = out->msg;
		/* A token not the rig's that cannot be put back (unlock failed) is left alone. */
		if (tr_kind_has(col->kind, TR_KIND_CERTIFY))
			snprintf(eng->stopped, sizeof(eng->stopped), "%s: %.900s", sc->ids[0], out->msg);
	}
out:
	tr_case_free(c);
	/* A dead portal, pcscd or card answers like a broken product: say whose fault it is. */
	if ((res->status == TR_CASE_FAILED || res->status == TR_CASE_ERROR) &&
	    tr_env_rig_fault(eng->env, fault, sizeof(fault)) == 1) {
		size_t off = strlen(fault);

		out->rig_fault = 1;
		if (res->message && off + 2 < sizeof(fault))
			snprintf(fault + off, sizeof(fault) - off, "; %s", res->message);
		snprintf(out->msg, sizeof(out->msg), "%s", fault);
		res->status = TR_CASE_ERROR;
		res->message = out->msg;
	}
	phase(st, "between cases");
	atomic_store(&eng->case_deadline, 0);
	res->duration_ms = (double)(tr_clock_ns() - start) / 1e6;
}

static void case_out_clear(case_out *out)
{
	json_decref(out->warnings);
	json_decref(out->log);
	out->warnings = out->log = NULL;
}

/* --- the case list ------------------------------------------------------ */

static int matches_filter(const tr_scenario *sc, const char *path, const char *filter)
{
	if (!filter || !*filter)
		return 1;
	if (strstr(path, filter))
		return 1;
	for (size_t i = 0; i < sc->n_ids; i++)
		if (strstr(sc->ids[i], filter))
			return 1;
	return 0;
}

int tr_engine_preflight(const tr_engine_opts *opts, size_t *n)
{
	tr_paths files;
	int error;

	*n = 0;
	if ((error = tr_scenario_find(opts->suites_dir, &files)) < 0)
		return error;
	for (size_t i = 0; i < files.n; i++) {
		tr_scenario *sc;

		if (tr_scenario_load(&sc, files.v[i]) < 0) {
			(*n)++;
			continue;
		}
		*n += matches_filter(sc, files.v[i], opts->filter);
		tr_scenario_free(sc);
	}
	if (!files.n)
		error = tr_error_set(TR_EINVAL, "%s holds no scenario file (*.scn)",
				     opts->suites_dir);
	else if (!*n)
		error = tr_error_set(TR_EINVAL, "--filter '%s' matches none of the %zu scenarios of %s",
				     opts->filter, files.n, opts->suites_dir);
	tr_paths_free(&files);
	if (!error && opts->shard.total && opts->shard_durations) {
		/* An unreadable durations file is bad input, said before the start-up. */
		unsigned char keep_none[1];

		if (tr_shard_select(&opts->shard, NULL, 0, opts->shard_durations, keep_none) < 0)
			error = TR_EINVAL; /* its message names the option and the file */
	}
	return error;
}

/* An entry's name in the files (what shards select by). */
static void entry_name(engine *eng, const entry *e, char *buf, size_t len)
{
	const tr_scenario *sc = eng->parsed[e->file];
	tr_case_result res = { .title = eng->files.v[e->file], .kind = "-", .algorithm = "-" };

	if (sc) {
		res.ids = (const char *const *)sc->ids;
		res.n_ids = sc->n_ids;
		res.title = sc->title;
	}
	if (e->col) {
		res.kind = e->col->kind;
		res.algorithm = e->col->algorithm;
	}
	tr_case_result_name(&res, buf, len);
}

/* --shard: the entries this run keeps; the whole list's digests go into the files. */
static int select_shard(engine *eng)
{
	char **names = calloc(eng->n_entries + 1, sizeof(*names));
	unsigned char *keep = calloc(eng->n_entries + 1, 1);
	int error = 0;

	if (!names || !keep)
		error = tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; !error && i < eng->n_entries; i++) {
		char name[1024];

		entry_name(eng, &eng->entries[i], name, sizeof(name));
		if (!(names[i] = strdup(name)))
			error = tr_error_set(TR_ENOMEM, "out of memory");
	}
	if (!error)
		error = tr_shard_select(&eng->opts->shard, (const char *const *)names,
					eng->n_entries, eng->opts->shard_durations, keep);
	if (!error)
		error = tr_shard_record(eng->report, &eng->opts->shard, (const char *const *)names,
					eng->n_entries, eng->opts->suites_dir);
	eng->total = 0;
	for (size_t i = 0; !error && i < eng->n_entries; i++) {
		eng->entries[i].keep = keep[i];
		eng->total += keep[i];
	}
	for (size_t i = 0; names && i < eng->n_entries; i++)
		free(names[i]);
	free(names);
	free(keep);
	return error;
}

/*
 * The run's case list, in one order whatever runs it: bad files and
 * unknown portals first, then column by column (a column's cards are shown
 * once; the kinds sharing them follow each other), scenario by scenario.
 */
static int build_entries(engine *eng)
{
	size_t cap = eng->files.n * (eng->n_cols + 1) + 1;
	int error;

	if ((error = tr_scenario_find(eng->opts->suites_dir, &eng->files)) < 0)
		return error;
	cap = eng->files.n * (eng->n_cols + 1) + 1;
	if (!(eng->parsed = calloc(eng->files.n + 1, sizeof(*eng->parsed))) ||
	    !(eng->entries = calloc(cap, sizeof(*eng->entries))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < eng->files.n; i++) {
		if (tr_scenario_load(&eng->parsed[i], eng->files.v[i]) < 0) {
			eng->parsed[i] = NULL;
			eng->entries[eng->n_entries++] = (entry){ .what = E_BAD_FILE, .file = i,
								  .group = -1 };
			continue;
		}
		if (!matches_filter(eng->parsed[i], eng->files.v[i], eng->opts->filter)) {
			tr_scenario_free(eng->parsed[i]);
			eng->parsed[i] = NULL;
			eng->files.v[i][0] = '\0';
			continue;
		}
		if (!matching_columns(eng, eng->parsed[i]->portal))
			eng->entries[eng->n_entries++] = (entry){ .what = E_NO_PORTAL, .file = i,
								  .group = -1 };
	}
	for (size_t k = 0; k < eng->n_cols; k++) {
		column *col = &eng->cols[k];
		int group = -1;

		if (tr_kind_has(col->kind, TR_KIND_CARD) && !col->absent) {
			for (size_t g = 0; g <= k && group < 0; g++)
				if (tr_kind_has(eng->cols[g].kind, TR_KIND_CARD) &&
				    !strcmp(eng->cols[g].portal, col->portal) &&
				    !strcmp(eng->cols[g].algorithm, col->algorithm))
					group = (int)g;
		}
		for (size_t i = 0; i < eng->files.n; i++)
			if (eng->parsed[i] && !strcmp(eng->parsed[i]->portal, col->portal))
				eng->entries[eng->n_entries++] = (entry){
					.what = E_CASE, .file = i, .col = col, .group = group };
	}
	return select_shard(eng);
}

/*
 * Records an entry that needs no token: a bad file, an unknown portal, a
 * case its column cannot run (scenario kinds or algorithms, destructive
 * without leave, no cards, a token no longer touched). 1 when recorded.
 */
static int record_static(engine *eng, size_t order)
{
	entry *e = &eng->entries[order];
	const tr_scenario *sc = eng->parsed[e->file];
	column *col = e->col;
	char reason[1024];
	tr_case_result res = { .status = TR_CASE_SKIPPED, .message = reason };

	if (e->what == E_BAD_FILE) {
		tr_scenario *again = NULL;

		/* Parsed again for the message: it names file:line. */
		if (tr_scenario_load(&again, eng->files.v[e->file]) == 0)
			tr_scenario_free(again);
		snprintf(reason, sizeof(reason), "%s", tr_error_last());
		res = (tr_case_result){ .title = eng->files.v[e->file],
					.scenario = eng->files.v[e->file], .portal = "-", .kind = "-",
					.algorithm = "-", .status = TR_CASE_ERROR, .message = reason };
		record(eng, order, NULL, &res);
		return 1;
	}
	res.ids = (const char *const *)sc->ids;
	res.n_ids = sc->n_ids;
	res.title = sc->title;
	res.scenario = sc->path;
	res.portal = sc->portal;
	if (e->what == E_NO_PORTAL) {
		res.kind = res.algorithm = "-";
		res.status = TR_CASE_ERROR;
		snprintf(reason, sizeof(reason), "%s: portal '%s' is not served by this rig",
			 sc->path, sc->portal);
		record(eng, order, NULL, &res);
		return 1;
	}
	res.kind = col->kind;
	res.algorithm = col->algorithm;
	if (!tr_kind_scenario_allows(sc->kinds, sc->n_kinds, col->kind) ||
	    !tr_scenario_allows(sc->algorithms, sc->n_algorithms, col->algorithm)) {
		size_t off = (size_t)snprintf(reason, sizeof(reason), "the scenario is for");

		for (size_t i = 0; i < sc->n_kinds && off < sizeof(reason); i++)
			off += (size_t)snprintf(reason + off, sizeof(reason) - off, "%s%s",
						i ? ", " : " kinds ", sc->kinds[i]);
		for (size_t i = 0; i < sc->n_algorithms && off < sizeof(reason); i++)
			off += (size_t)snprintf(reason + off, sizeof(reason) - off, "%s%s",
						i ? ", " : sc->n_kinds ? "; algorithms " : " algorithms ",
						sc->algorithms[i]);
		if (off < sizeof(reason))
			snprintf(reason + off, sizeof(reason) - off, "; this is %s/%s", col->kind,
				 col->algorithm);
	} else if (eng->stopped[0]) {
		snprintf(reason, sizeof(reason), "not run: the rig stopped touching the token: %.200s",
			 eng->stopped);
	} else if (!tr_kind_has(col->kind, TR_KIND_DESTRUCTIVE) &&
		   tr_kind_destructive_ids((const char *const *)sc->ids, sc->n_ids)) {
		snprintf(reason, sizeof(reason), "%s", TR_DESTRUCTIVE_SKIP);
	} else if (col->absent) {
		snprintf(reason, sizeof(reason), "no virtual cards in this run: %s", col->absent);
	} else {
		return 0;
	}
	record(eng, order, col, &res);
	return 1;
}

/* --- in this process (certify) --------------------------------------------- */

static int run_here(engine *eng)
{
	pthread_t watch;
	int watching = pthread_create(&watch, NULL, watchdog, eng) == 0;

	for (size_t i = 0; i < eng->n_entries && !interrupted(eng); i++) {
		entry *e = &eng->entries[i];
		case_state st;
		case_out out;

		if (!e->keep)
			continue;
		if (e->what == E_CASE && eng->opts->stop && *eng->opts->stop && !eng->stopped[0])
			snprintf(eng->stopped, sizeof(eng->stopped), "interrupted (SIGINT/SIGTERM)");
		if (record_static(eng, i))
			continue;
		progress_line(eng, eng->files.v[e->file]);
		run_case(eng, eng->parsed[e->file], e->col, &st, &out);
		tr_samples_add(&eng->fixed_ns, (uint64_t)(out.res.duration_ms * 1e6) - out.steps_ns);
		record(eng, i, e->col, &out.res);
		case_out_clear(&out);
	}
	if (watching) {
		atomic_store(&eng->finished, 1);
		pthread_join(watch, NULL);
	}
	return 0;
}

/* --- worker processes ------------------------------------------------------ */

typedef struct wstate {
	int ready;           /* answered "ready" */
	long running;        /* the entry in flight, -1 */
	int group;           /* the cards its env shows, -1 */
	int fails;           /* start failures in a row */
	int dead;            /* given up */
	int had_case;        /* ran a case since it started */
	int no_cards;        /* its env shows no cards (one standard pcscd socket) */
	char why[768];       /* why it did not start */
} wstate;

/*
 * The next entry for a worker showing group: the first pending one of its
 * group; else the first whose cards no other worker shows (SoftHSM needs
 * none); else, if another's group still has many, the first of those.
 */
static long pick(engine *eng, const wstate *ws, unsigned jobs, unsigned self)
{
	long first_free = -1, first_any = -1;
	size_t left[1024] = { 0 };

	for (size_t i = 0; i < eng->n_entries; i++) {
		entry *e = &eng->entries[i];
		int claimed = 0;

		if (!e->keep || e->state != PENDING || e->what != E_CASE ||
		    (ws[self].no_cards && e->group >= 0))
			continue;
		if (ws[self].group >= 0 && e->group == ws[self].group)
			return (long)i;
		for (unsigned w = 1; w <= jobs && e->group >= 0; w++)
			claimed |= w != self && ws[w].group == e->group;
		if (!claimed && first_free < 0)
			first_free = (long)i;
		if (e->group >= 0 && e->group < 1024)
			left[e->group]++;
		if (first_any < 0)
			first_any = (long)i;
	}
	if (first_free >= 0)
		return first_free;
	if (first_any >= 0 && eng->entries[first_any].group >= 0 &&
	    eng->entries[first_any].group < 1024 && left[eng->entries[first_any].group] >= STEAL_MIN)
		return first_any;
	return -1;
}

/*
 * Worker w's portal log appended to OUT/run/portal.log (the run's one
 * request log), before a fresh worker wipes its folder and at the end.
 */
static void collect_portal_log(engine *eng, unsigned w)
{
	char from[PATH_MAX], to[PATH_MAX], *text = NULL;
	size_t len = 0;
	int fd;

	if (snprintf(from, sizeof(from), "%s/w%u/portal.log", tr_env_dir(eng->env), w) >=
	    (int)sizeof(from) || tr_fs_join(to, sizeof(to), tr_env_dir(eng->env), "portal.log") < 0 ||
	    tr_fs_read_all(from, 256u << 20, &text, &len) < 0)
		return;
	if ((fd = open(to, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) >= 0) {
		if (len && write(fd, text, len) != (ssize_t)len)
			fprintf(stderr, "tokenrig: appending to %s: %s\n", to, strerror(errno));
		close(fd);
	}
	unlink(from);
	free(text);
}

/* OUT/run/env.sh: worker 1's, the environment to poke by hand while the run goes on. */
static void publish_env_sh(engine *eng)
{
	char from[PATH_MAX], to[PATH_MAX], *text = NULL;
	size_t len = 0;

	if (snprintf(from, sizeof(from), "%s/w1/env.sh", tr_env_dir(eng->env)) < (int)sizeof(from) &&
	    tr_fs_join(to, sizeof(to), tr_env_dir(eng->env), "env.sh") == 0 &&
	    tr_fs_read_all(from, 1 << 20, &text, &len) == 0)
		tr_fs_write_atomic(to, text, len, 0600);
	free(text);
}

static void update_pids(engine *eng, tr_pool *pool)
{
	tr_buf b = TR_BUF_INIT;

	tr_pool_pids(pool, &b);
	if (tr_buf_check(&b, "the run's pids") < 0 ||
	    tr_env_record_pids(eng->env, tr_buf_cstr(&b)) < 0)
		fprintf(stderr, "tokenrig: %s\n", tr_error_last());
	tr_buf_free(&b);
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGKILL: return "SIGKILL";
	case SIGSEGV: return "SIGSEGV";
	case SIGABRT: return "SIGABRT";
	case SIGTERM: return "SIGTERM";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGILL: return "SIGILL";
	default: return "a signal";
	}
}

/* The case a worker had in flight when it was killed or died: an error naming step and cause. */
static void record_lost(engine *eng, long order, const tr_pool_event *ev, const char *dir)
{
	entry *e = &eng->entries[order];
	const tr_scenario *sc = eng->parsed[e->file];
	char path[PATH_MAX + 16], msg[2048], actual[512], step[200] = "";
	case_state st;
	int fd;
	tr_case_result res = {
		.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids, .title = sc->title,
		.scenario = sc->path, .portal = sc->portal, .kind = e->col->kind,
		.algorithm = e->col->algorithm, .status = TR_CASE_ERROR, .message = msg,
	};

	memset(&st, 0, sizeof(st));
	snprintf(path, sizeof(path), "%s/case.state", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		if (read(fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
			memset(&st, 0, sizeof(st));
		close(fd);
	}
	st.phase[sizeof(st.phase) - 1] = st.fail.step[sizeof(st.fail.step) - 1] = '\0';
	if (!strcmp(st.phase, PHASE_STEPS))
		snprintf(step, sizeof(step), "%s", st.fail.step);
	if (ev->deadline)
		snprintf(actual, sizeof(actual), "no answer: the case ran past its deadline (%u ms)",
			 eng->opts->case_timeout_ms);
	else if (ev->signal)
		snprintf(actual, sizeof(actual), "no answer: its worker died of signal %d (%s)",
			 ev->signal, sig_name(ev->signal));
	else
		snprintf(actual, sizeof(actual), "no answer: its worker exited with status %d",
			 ev->status);
	{
		char cause[128];

		if (ev->deadline)
			snprintf(cause, sizeof(cause), "the case ran past its deadline (%u ms)",
				 eng->opts->case_timeout_ms);
		else if (ev->signal)
			snprintf(cause, sizeof(cause), "its worker crashed (signal %d, %s)", ev->signal,
				 sig_name(ev->signal));
		else
			snprintf(cause, sizeof(cause), "its worker exited (status %d)", ev->status);
		snprintf(msg, sizeof(msg), "%s %s %s; the worker (PID %ld) was killed with what it "
			 "started, and the run goes on with a fresh one", cause,
			 step[0] ? "in step" : "while", step[0] ? step : st.phase[0] ? st.phase :
			 "starting the case", (long)ev->pid);
	}
	if (step[0]) {
		res.step = step;
		res.expected = "";
		res.actual = actual;
	}
	res.duration_ms = 0;
	record(eng, (size_t)order, e->col, &res);
}

/* A worker's answer for its case: into the files, its samples into the column. */
static void record_answer(engine *eng, long order, json_t *m)
{
	entry *e = &eng->entries[order];
	const tr_scenario *sc = eng->parsed[e->file];
	size_t i;
	json_t *v;
	tr_case_result res = {
		.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids, .title = sc->title,
		.scenario = sc->path, .portal = sc->portal, .kind = e->col->kind,
		.algorithm = e->col->algorithm,
		.status = (tr_case_status)json_integer_value(json_object_get(m, "status")),
		.duration_ms = json_number_value(json_object_get(m, "duration_ms")),
		.message = json_string_value(json_object_get(m, "message")),
		.step = json_string_value(json_object_get(m, "step")),
		.expected = json_string_value(json_object_get(m, "expected")),
		.actual = json_string_value(json_object_get(m, "actual")),
		.warnings = json_object_get(m, "warnings"),
		.log = json_object_get(m, "log"),
	};

	if (res.status > TR_CASE_ERROR)
		res.status = TR_CASE_ERROR;
	json_array_foreach(json_object_get(m, "sign_ns"), i, v)
		tr_samples_add(&e->col->sign_ns, (uint64_t)json_integer_value(v));
	json_array_foreach(json_object_get(m, "login_ns"), i, v)
		tr_samples_add(&e->col->login_ns, (uint64_t)json_integer_value(v));
	if (json_object_get(m, "fixed_ns"))
		tr_samples_add(&eng->fixed_ns, (uint64_t)json_integer_value(json_object_get(m, "fixed_ns")));
	if (json_string_value(json_object_get(m, "stopped")) && !eng->stopped[0])
		snprintf(eng->stopped, sizeof(eng->stopped), "%s",
			 json_string_value(json_object_get(m, "stopped")));
	record(eng, (size_t)order, e->col, &res);
}

static void note_restart(engine *eng, unsigned w, const char *why)
{
	eng->totals->restarts++;
	json_array_append_new(eng->restarts, json_pack("{s:i, s:s}", "worker", (int)w, "reason", why));
	if (!eng->opts->quiet) {
		if (eng->opts->tty)
			printf("\r\033[K");
		printf("tokenrig: worker %u: %s; starting a fresh one\n", w, why);
		fflush(stdout);
	}
}

static int dispatch(engine *eng, tr_pool *pool, wstate *ws, unsigned w, long order)
{
	entry *e = &eng->entries[order];
	json_t *m = json_pack("{s:I, s:s, s:s, s:s, s:s}", "i", (json_int_t)order,
			      "scenario", eng->files.v[e->file], "portal", e->col->portal,
			      "kind", e->col->kind, "algorithm", e->col->algorithm);
	int error = m ? tr_pool_send(pool, w, m) : tr_error_set(TR_ENOMEM, "out of memory");

	json_decref(m);
	if (error < 0)
		return error; /* the worker is gone: tr_pool_wait says so next */
	e->state = RUNNING;
	ws[w].running = order;
	ws[w].had_case = 1;
	if (e->group >= 0)
		ws[w].group = e->group;
	tr_pool_set_deadline(pool, w, tr_deadline_after_ms(eng->opts->case_timeout_ms));
	return 0;
}

/* What is still pending is an error case each: "not run: what". */
static void record_unrun(engine *eng, const char *what)
{
	for (size_t i = 0; i < eng->n_entries; i++) {
		entry *e = &eng->entries[i];
		const tr_scenario *sc = eng->parsed[e->file];
		char msg[1100];
		tr_case_result res;

		if (!e->keep || e->state != PENDING)
			continue;
		snprintf(msg, sizeof(msg), "not run: %s", what);
		res = (tr_case_result){
			.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids,
			.title = sc->title, .scenario = sc->path, .portal = sc->portal,
			.kind = e->col->kind, .algorithm = e->col->algorithm,
			.status = TR_CASE_ERROR, .message = msg };
		e->state = DONE;
		record(eng, i, e->col, &res);
	}
}

static int run_workers(engine *eng)
{
	unsigned jobs = eng->opts->jobs;
	tr_pool_opts po = { .jobs = jobs, .run_dir = tr_env_dir(eng->env),
			    .cards_worker = tr_env_cards_on_standard_socket(eng->env) ? 1 : 0 };
	wstate *ws = calloc(jobs + 1, sizeof(*ws));
	tr_pool *pool = NULL;
	size_t pending = 0;
	int error, ever_ready = 0, started = 0;
	char why[900] = "";

	if (!ws)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_pool_new(&pool, &po)) < 0)
		goto out;
	for (unsigned w = 1; w <= jobs; w++) {
		ws[w].running = -1;
		ws[w].group = -1;
		if ((error = tr_pool_start(pool, w)) < 0)
			goto out;
	}
	for (size_t i = 0; i < eng->n_entries; i++)
		pending += eng->entries[i].keep;
	for (;;) {
		tr_pool_event ev;
		unsigned alive = 0, running = 0, up = 0, starting = 0;
		int picked = 0;

		for (unsigned w = 1; w <= jobs; w++)
			up += ws[w].ready || ws[w].dead;
		/*
		 * Once every worker is up (its processes in the run's pids file):
		 * what needs no token is recorded at once, the rest is dispatched.
		 */
		if (up == jobs && !started) {
			started = 1;
			for (size_t i = 0; i < eng->n_entries; i++) {
				entry *e = &eng->entries[i];

				if (e->keep && record_static(eng, i)) {
					e->state = DONE;
					pending--;
				}
			}
		}
		for (unsigned w = 1; w <= jobs; w++) {
			long next;

			alive += !ws[w].dead;
			starting += !ws[w].dead && !ws[w].ready;
			if (!started || !ws[w].ready || ws[w].running >= 0 || interrupted(eng))
				continue;
			if ((next = pick(eng, ws, jobs, w)) >= 0)
				picked = 1;
			if (next >= 0 && dispatch(eng, pool, ws, w, next) == 0) {
				pending--;
				progress_line(eng, eng->files.v[eng->entries[next].file]);
			}
		}
		for (unsigned w = 1; w <= jobs; w++)
			running += ws[w].running >= 0;
		if (started && !running && (!pending || interrupted(eng)))
			break;
		if (!started && interrupted(eng))
			break; /* nothing dispatched yet: the files say interrupted */
		if (started && !running && !picked && !starting && !interrupted(eng)) {
			/*
			 * Idle workers and cases none of them may take: the card
			 * cases, when the one worker that shows cards is gone.
			 */
			char what[1024];

			snprintf(what, sizeof(what), "no worker that shows cards is left: %s",
				 why[0] ? why : "it ended");
			record_unrun(eng, what);
			break;
		}
		if (!alive) {
			char what[1024];

			snprintf(what, sizeof(what), "no worker could start: %s", why);
			record_unrun(eng, what);
			if (!ever_ready) {
				error = tr_error_set(TR_EIO, "no worker could start: %s", why);
				goto out;
			}
			break;
		}
		if ((error = tr_pool_wait(pool, eng->opts->tty ? 500 : 2000, &ev)) < 0)
			goto out;
		if (ev.type == TR_POOL_NOTHING) {
			progress_line(eng, NULL);
			continue;
		}
		wstate *s = &ws[ev.worker];

		if (ev.type == TR_POOL_MESSAGE) {
			json_t *m = ev.msg;

			if (json_object_get(m, "ready")) {
				tr_pool_set_deadline(pool, ev.worker, 0);
				if (json_is_true(json_object_get(m, "ready"))) {
					s->ready = 1;
					s->fails = 0;
					s->no_cards = json_is_false(json_object_get(m, "cards"));
					ever_ready = 1;
					json_array_append_new(eng->startups, json_pack(
						"{s:i, s:s}", "worker", (int)ev.worker, "startup",
						json_string_value(json_object_get(m, "startup")) ?
						json_string_value(json_object_get(m, "startup")) : ""));
					update_pids(eng, pool);
					if (ev.worker == 1)
						publish_env_sh(eng);
				} else {
					snprintf(s->why, sizeof(s->why), "%s",
						 json_string_value(json_object_get(m, "error")) ?
						 json_string_value(json_object_get(m, "error")) : "?");
				}
			} else if (json_object_get(m, "i") && s->running >= 0 &&
				   json_integer_value(json_object_get(m, "i")) == s->running) {
				entry *e = &eng->entries[s->running];

				tr_pool_set_deadline(pool, ev.worker, 0);
				e->state = DONE;
				record_answer(eng, s->running, m);
				s->running = -1;
				if (json_string_value(json_object_get(m, "restart"))) {
					/* Its env lost a process: the worker ends; a fresh one follows. */
					s->ready = 0;
					snprintf(s->why, sizeof(s->why), "%s",
						 json_string_value(json_object_get(m, "restart")));
				}
			}
			json_decref(m);
			continue;
		}
		/* TR_POOL_GONE */
		if (s->running >= 0) {
			eng->entries[s->running].state = DONE;
			record_lost(eng, s->running, &ev, tr_pool_dir(pool, ev.worker));
			s->running = -1;
			note_restart(eng, ev.worker, ev.deadline ? "killed at a case's deadline" :
				     ev.signal ? "crashed" : "exited during a case");
		} else if (s->ready || s->had_case) {
			note_restart(eng, ev.worker, s->why[0] ? s->why : "ended between cases");
		} else {
			s->fails++;
			if (s->why[0] || !ev.deadline)
				snprintf(why, sizeof(why), "worker %u: %.760s", ev.worker,
					 s->why[0] ? s->why : "it ended while starting");
			else
				snprintf(why, sizeof(why), "worker %u: not ready within %u s: killed",
					 ev.worker, TR_POOL_START_MS / 1000);
			if (!eng->opts->quiet)
				fprintf(stderr, "tokenrig: %s\n", why);
		}
		s->ready = s->had_case = 0;
		s->group = -1;
		s->why[0] = '\0';
		collect_portal_log(eng, ev.worker);
		if (interrupted(eng) || (!pending && !running))
			s->dead = 1;
		else if (s->fails >= START_TRIES || tr_pool_start(pool, ev.worker) < 0)
			s->dead = 1;
		update_pids(eng, pool);
	}
	error = 0;
out:
	if (error < 0)
		snprintf(why, sizeof(why), "%s", tr_error_last());
	tr_pool_free(pool, QUIT_MS);
	for (unsigned w = 1; w <= jobs; w++)
		collect_portal_log(eng, w);
	free(ws);
	/* The cleanup's own messages (no env left, no portal log) are not the reason. */
	return error < 0 ? tr_error_set(error, "%s", why) : 0;
}

/* --- summary ------------------------------------------------------------ */

static void ms_cell(char *buf, size_t len, size_t n, double ns)
{
	if (n)
		snprintf(buf, len, "%8.3f ms", ns / 1e6);
	else
		snprintf(buf, len, "%11s", "-");
}

static void print_summary(engine *eng)
{
	int quiet = eng->opts->quiet;

	if (!quiet)
		printf("\n%-25s %-29s %-47s\n%-8s %-16s %6s %6s %7s %6s %11s %11s %11s %11s\n", "",
		       "cases", "latency", "portal", "token", "passed", "failed", "skipped",
		       "errors", "sign p50", "sign p95", "sign max", "login p50");
	for (size_t k = 0; k < eng->n_cols; k++) {
		column *c = &eng->cols[k];
		tr_summary sign, login;
		char token[40], s50[16], s95[16], smax[16], l50[16];

		tr_stats_summarize(&c->sign_ns, &sign);
		tr_stats_summarize(&c->login_ns, &login);
		snprintf(token, sizeof(token), "%s/%s", c->kind, c->algorithm);
		ms_cell(s50, sizeof(s50), sign.n, sign.p50);
		ms_cell(s95, sizeof(s95), sign.n, sign.p95);
		ms_cell(smax, sizeof(smax), sign.n, sign.max);
		ms_cell(l50, sizeof(l50), login.n, login.p50);
		if (!quiet)
			printf("%-8s %-16s %6d %6d %7d %6d %s %s %s %s\n", c->portal, token, c->passed,
			       c->failed, c->skipped, c->errors, s50, s95, smax, l50);
		tr_report_set_latency_at(eng->report, c->portal, c->kind, c->algorithm, "sign", &sign);
		tr_report_set_latency_at(eng->report, c->portal, c->kind, c->algorithm, "login", &login);
	}
}

/*
 * --require-kinds: a kind whose every column could not run at all (no
 * token of it in the run, or every case skipped) is named, and the run
 * is not green.
 */
static void required_kinds(engine *eng)
{
	const char *list = eng->opts->require_kinds;

	for (const char *p = list ? list + strspn(list, ", ") : ""; *p;) {
		size_t n = strcspn(p, ", ");
		int ran = 0, seen = 0;
		const char *why = NULL;

		for (size_t k = 0; k < eng->n_cols; k++) {
			column *c = &eng->cols[k];

			if (strlen(c->kind) != n || strncmp(c->kind, p, n))
				continue;
			seen = 1;
			ran |= c->passed + c->failed + c->errors > 0;
			if (c->absent)
				why = c->absent;
		}
		if (!ran) {
			printf("REQUIRED KIND %.*s could not run: %s\n", (int)n, p,
			       why ? why : seen ? "every case was skipped" :
			       "no token of this kind in the run");
			eng->totals->kinds_missing++;
		}
		p += n;
		p += strspn(p, ", ");
	}
}

/* Start-up, wall time, the per-case cost outside the steps, jobs: printed and recorded. */
static void run_figures(engine *eng)
{
	double fixed = eng->fixed_ns.n ?
		       tr_stats_median_ns(eng->fixed_ns.ns, eng->fixed_ns.n) / 1e6 : 0;
	double startup = eng->opts->startup_s;

	tr_report_set(eng->report, "figures", json_pack(
		"{s:i, s:f, s:f, s:f, s:f, s:I, s:i, s:f}", "jobs", (int)eng->opts->jobs,
		"startup_s", startup, "cases_wall_s", eng->totals->wall_s,
		"wall_s", startup + eng->totals->wall_s, "case_fixed_cost_ms_median", fixed,
		"case_fixed_cost_n", (json_int_t)eng->fixed_ns.n, "restarts", eng->totals->restarts,
		"result_files_s", (double)eng->write_ns / 1e9));
	if (json_array_size(eng->restarts))
		tr_report_set(eng->report, "restarts", json_incref(eng->restarts));
	if (json_array_size(eng->startups))
		tr_report_set(eng->report, "worker_startups", json_incref(eng->startups));
	if (!eng->opts->quiet)
		printf("\nrun: %u job%s, start-up %.2f s, cases %.2f s, wall %.2f s; per case "
		       "outside its steps (portal reset, tokens put back, cards shown): median "
		       "%.2f ms over %zu cases; result files rewritten after each case: %.2f s%s\n",
		       eng->opts->jobs ? eng->opts->jobs : 1, eng->opts->jobs > 1 ? "s" : "", startup,
		       eng->totals->wall_s, startup + eng->totals->wall_s, fixed, eng->fixed_ns.n,
		       (double)eng->write_ns / 1e9, eng->totals->restarts ? "; workers restarted (see above)" : "");
}

int tr_engine_run(tr_env *env, const tr_engine_opts *opts, tr_run_totals *totals)
{
	engine eng = { .env = env, .opts = opts, .totals = totals };
	uint64_t start = tr_clock_ns();
	int error;

	memset(totals, 0, sizeof(*totals));
	pthread_mutex_init(&eng.name_lock, NULL);
	eng.restarts = json_array();
	eng.startups = json_array();
	if ((error = tr_report_open(&eng.report, opts->out_dir)) < 0 ||
	    (!opts->jobs && *tr_env_shim(env) &&
	     (error = tr_token_ctl_new(&eng.shim_ctl, tr_env_shim(env), tr_env_shim_conf(env),
				       tr_env_shim_base(env))) < 0) ||
	    (error = build_columns(&eng)) < 0 ||
	    (error = build_entries(&eng)) < 0)
		goto out;
	eng.cases_start = tr_clock_ns();
	if ((error = opts->jobs ? run_workers(&eng) : run_here(&eng)) < 0)
		goto out;
	if (interrupted(&eng)) {
		totals->interrupted = *opts->stop;
		if ((error = tr_report_interrupted(eng.report, *opts->stop, eng.done)) < 0)
			goto out;
	}
	if (!opts->quiet && opts->tty)
		printf("\r\033[K");
	totals->wall_s = (double)(tr_clock_ns() - start) / 1e9;
	print_summary(&eng);
	if (!opts->quiet)
		tr_report_print_skips(eng.report, stdout);
	required_kinds(&eng);
	run_figures(&eng);
	snprintf(totals->stopped, sizeof(totals->stopped), "%s", eng.stopped);
	error = tr_report_finish(eng.report, totals->wall_s);
out:
	pthread_mutex_destroy(&eng.name_lock);
	for (size_t i = 0; eng.parsed && i < eng.files.n; i++)
		tr_scenario_free(eng.parsed[i]);
	tr_paths_free(&eng.files);
	free(eng.parsed);
	free(eng.entries);
	for (size_t i = 0; i < eng.n_clients; i++)
		tr_portal_client_free(eng.clients[i].pc);
	for (size_t k = 0; k < eng.n_cols; k++) {
		tr_samples_free(&eng.cols[k].sign_ns);
		tr_samples_free(&eng.cols[k].login_ns);
	}
	free(eng.cols);
	tr_samples_free(&eng.fixed_ns);
	json_decref(eng.restarts);
	json_decref(eng.startups);
	tr_token_ctl_free(eng.shim_ctl);
	tr_report_free(eng.report);
	return error;
}

/* --- inside a worker ------------------------------------------------------- */

typedef struct worker {
	engine eng;
	case_state *state;     /* mapped from DIR/case.state: the run reads it after a kill */
	char err_path[PATH_MAX + 16];
	int log_fd;            /* the worker's own stderr, between cases */
	struct { char *path; tr_scenario *sc; } scn[1024];
	size_t n_scn;
} worker;

static const tr_scenario *scenario_get(worker *w, const char *path)
{
	for (size_t i = 0; i < w->n_scn; i++)
		if (!strcmp(w->scn[i].path, path))
			return w->scn[i].sc;
	if (w->n_scn == sizeof(w->scn) / sizeof(w->scn[0]))
		return NULL;
	if (tr_scenario_load(&w->scn[w->n_scn].sc, path) < 0)
		return NULL;
	w->scn[w->n_scn].path = strdup(path);
	return w->scn[w->n_scn++].sc;
}

/* The driver's stderr during the case (the interposer's "driver missing") into its log. */
static void stderr_to_case(worker *w)
{
	int fd = open(w->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	fflush(stderr);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

static void stderr_back(worker *w, case_out *out)
{
	char *text = NULL;

	fflush(stderr);
	dup2(w->log_fd, STDERR_FILENO);
	if (tr_fs_read_all(w->err_path, 1 << 20, &text, NULL) < 0)
		return;
	for (char *line = text, *next; line && *line; line = next) {
		char entry[1200];

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (!*line)
			continue;
		if (!out->log)
			out->log = json_array();
		snprintf(entry, sizeof(entry), "stderr: %.1100s", line);
		json_array_append_new(out->log, json_string(entry));
	}
	out->res.log = out->log;
	free(text);
}

static json_t *samples_json(tr_samples *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, json_integer((json_int_t)s->ns[i]));
	s->n = 0;
	return a;
}

static void set_str(json_t *o, const char *key, const char *value)
{
	if (value)
		json_object_set_new(o, key, json_string(value));
}

/* One "run" request: the case, its result, and whether this worker's env lost a process. */
static json_t *serve_case(worker *w, json_t *req)
{
	engine *eng = &w->eng;
	const char *path = json_string_value(json_object_get(req, "scenario"));
	const char *portal = json_string_value(json_object_get(req, "portal"));
	const char *kind = json_string_value(json_object_get(req, "kind"));
	const char *alg = json_string_value(json_object_get(req, "algorithm"));
	const tr_scenario *sc = path ? scenario_get(w, path) : NULL;
	column *col = portal && kind && alg ? column_add(eng, portal, kind, alg) : NULL;
	uint64_t start = tr_clock_ns();
	char fault[1400], before[2600];
	case_out out;
	json_t *r;

	if (!sc || !col)
		return json_pack("{s:O, s:i, s:s, s:f}", "i", json_object_get(req, "i"),
				 "status", TR_CASE_ERROR, "message",
				 sc ? "too many columns" : tr_error_last(), "duration_ms", 0.0);
	/* A rig process that died between cases: this case cannot run on it. */
	if (tr_env_rig_fault(eng->env, fault, sizeof(fault)) == 1) {
		snprintf(before, sizeof(before), "%s before the case; the case did not run", fault);
		r = json_pack("{s:O, s:i, s:s, s:f, s:s}", "i", json_object_get(req, "i"),
			      "status", TR_CASE_ERROR, "message", before, "duration_ms", 0.0,
			      "restart", fault);
		return r;
	}
	stderr_to_case(w);
	run_case(eng, sc, col, w->state, &out);
	stderr_back(w, &out);
	r = json_pack("{s:O, s:i, s:f, s:o, s:o, s:I}", "i", json_object_get(req, "i"),
		      "status", (int)out.res.status, "duration_ms", out.res.duration_ms,
		      "sign_ns", samples_json(&col->sign_ns), "login_ns", samples_json(&col->login_ns),
		      "fixed_ns", (json_int_t)(tr_clock_ns() - start - out.steps_ns));
	set_str(r, "message", out.res.message);
	set_str(r, "step", out.res.step);
	set_str(r, "expected", out.res.expected);
	set_str(r, "actual", out.res.actual);
	if (json_array_size(out.res.warnings))
		json_object_set(r, "warnings", (json_t *)out.res.warnings);
	if (json_array_size(out.res.log))
		json_object_set(r, "log", (json_t *)out.res.log);
	if (eng->stopped[0])
		set_str(r, "stopped", eng->stopped);
	/* Found dead after the case (or its failure blamed on it): a fresh env follows. */
	if (out.rig_fault || tr_env_rig_fault(eng->env, fault, sizeof(fault)) == 1) {
		if (!out.rig_fault) {
			/* The case passed or failed while part of the rig died under it. */
			snprintf(before, sizeof(before), "%s during the case%s%s", fault,
				 out.res.message ? "; " : "", out.res.message ? out.res.message : "");
			json_object_set_new(r, "status", json_integer(TR_CASE_ERROR));
			json_object_set_new(r, "message", json_string(before));
		}
		json_object_set_new(r, "restart", json_string(out.rig_fault ? out.msg : fault));
	}
	case_out_clear(&out);
	return r;
}

int tr_engine_worker_main(int argc, char **argv)
{
	const char *master = NULL, *dir = NULL;
	tr_engine_opts opts = { .quiet = 1, .case_timeout_ms = 0 };
	tr_run_totals totals;
	worker *w = calloc(1, sizeof(*w));
	tr_buf in = TR_BUF_INIT;
	char path[PATH_MAX + 16];
	json_t *msg;
	int fd = -1, error = 0, no_cards = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-cards"))
			no_cards = 1;
		else if (!strcmp(argv[i], "--master") && i + 1 < argc)
			master = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
	}
	if (!w || !master || !dir) {
		fprintf(stderr, "tokenrig __worker: started by tokenrig run only "
			"(--master DIR --dir DIR, socket on fd %d)\n", TR_WORKER_FD);
		free(w);
		return 2;
	}
	memset(&totals, 0, sizeof(totals));
	w->eng.opts = &opts;
	w->eng.totals = &totals;
	pthread_mutex_init(&w->eng.name_lock, NULL);
	/* Neither the run's socket nor this log goes to the processes the env starts:
	 * a portal or card holding the socket would hide this worker's end. */
	fcntl(TR_WORKER_FD, F_SETFD, FD_CLOEXEC);
	w->log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	if ((error = tr_env_worker_up(&w->eng.env, master, dir, no_cards)) < 0 ||
	    (error = tr_token_ctl_new(&w->eng.shim_ctl, tr_env_shim(w->eng.env),
				      tr_env_shim_conf(w->eng.env),
				      tr_env_shim_base(w->eng.env))) < 0) {
		msg = json_pack("{s:b, s:s}", "ready", 0, "error", tr_error_last());
		tr_worker_send(TR_WORKER_FD, msg);
		json_decref(msg);
		goto out;
	}
	w->eng.cap_cols = 64;
	snprintf(path, sizeof(path), "%s/case.state", tr_env_dir(w->eng.env));
	snprintf(w->err_path, sizeof(w->err_path), "%s/case.stderr", tr_env_dir(w->eng.env));
	if (!(w->eng.cols = calloc(w->eng.cap_cols, sizeof(*w->eng.cols))) ||
	    (fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    ftruncate(fd, sizeof(case_state)) != 0 ||
	    (w->state = mmap(NULL, sizeof(case_state), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			     0)) == MAP_FAILED) {
		w->state = NULL;
		error = tr_error_set(TR_EIO, "%s: %s", path, strerror(errno));
		msg = json_pack("{s:b, s:s}", "ready", 0, "error", tr_error_last());
		tr_worker_send(TR_WORKER_FD, msg);
		json_decref(msg);
		goto out;
	}
	msg = json_pack("{s:b, s:s, s:b}", "ready", 1, "startup", tr_env_startup(w->eng.env),
			"cards", !no_cards);
	error = tr_worker_send(TR_WORKER_FD, msg);
	json_decref(msg);
	while (!error && (error = tr_worker_recv(TR_WORKER_FD, &in, &msg)) == 0 && msg) {
		json_t *r = serve_case(w, msg);
		int restart = json_object_get(r, "restart") != NULL;

		json_decref(msg);
		error = r ? tr_worker_send(TR_WORKER_FD, r) : tr_error_set(TR_ENOMEM, "out of memory");
		json_decref(r);
		if (restart)
			break;
	}
	if (error < 0)
		fprintf(stderr, "tokenrig __worker: %s\n", tr_error_last());
out:
	if (w->state)
		munmap(w->state, sizeof(case_state));
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < w->eng.n_clients; i++)
		tr_portal_client_free(w->eng.clients[i].pc);
	for (size_t k = 0; k < w->eng.n_cols; k++) {
		tr_samples_free(&w->eng.cols[k].sign_ns);
		tr_samples_free(&w->eng.cols[k].login_ns);
	}
	free(w->eng.cols);
	for (size_t i = 0; i < w->n_scn; i++) {
		tr_scenario_free(w->scn[i].sc);
		free(w->scn[i].path);
	}
	tr_token_ctl_free(w->eng.shim_ctl);
	tr_env_free(w->eng.env);
	pthread_mutex_destroy(&w->eng.name_lock);
	tr_buf_free(&in);
	if (w->log_fd >= 0)
		close(w->log_fd);
	free(w);
	return error < 0 ? 1 : 0;
}
