#include "harness/engine.h"

#include "common/clock.h"
#include "common/error.h"
#include "harness/kinds.h"
#include "harness/portal_client.h"
#include "harness/report.h"
#include "harness/scenario.h"
#include "harness/steps.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HTTP_TIMEOUT_MS 10000

/* A column of the matrix: one token kind and algorithm of one portal. */
typedef struct column {
	char portal[16], kind[16], algorithm[16];
	const char *absent;  /* why this column has no token in the run, else NULL */
	int passed, failed, skipped, errors;
	tr_samples sign_ns, login_ns;
} column;

typedef struct engine {
	tr_env *env;
	const tr_engine_opts *opts;
	tr_report *report;
	column *cols;
	size_t n_cols;
	struct { char name[16]; tr_portal_client *pc; } clients[8];
	tr_token_ctl *shim_ctl;   /* the SoftHSM tokens' interposer */
	size_t n_clients;
	size_t done, total;
	tr_run_totals *totals;
	/* The watchdog's view of the case running; one per engine (certify runs several). */
	_Atomic uint64_t case_deadline;
	_Atomic int finished;
	pthread_mutex_t name_lock;
	char case_name[512];
	char stopped[1024];  /* why this engine's token must not be touched again, "" */
} engine;

/* --- watchdog: no case may hang the run --------------------------------- */

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

static int build_columns(engine *eng)
{
	const tr_token_ref *t;
	size_t n;

	t = tr_env_tokens(eng->env, &n);
	/* Room for the card columns of every portal, when there are no cards. */
	eng->cols = calloc(n + 64, sizeof(*eng->cols));
	if (!eng->cols)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < eng->n_cols; k++)
			if (!strcmp(eng->cols[k].portal, t[i].portal) &&
			    !strcmp(eng->cols[k].kind, t[i].kind) &&
			    !strcmp(eng->cols[k].algorithm, t[i].algorithm))
				break;
		if (k < eng->n_cols)
			continue;
		column *c = &eng->cols[eng->n_cols++];
		snprintf(c->portal, sizeof(c->portal), "%s", t[i].portal);
		snprintf(c->kind, sizeof(c->kind), "%s", t[i].kind);
		snprintf(c->algorithm, sizeof(c->algorithm), "%s", t[i].algorithm);
	}
	if (*tr_env_cards_missing(eng->env)) {
		/* Never silently dropped: no cards, their columns are skipped with the reason. */
		size_t portals = eng->n_cols;

		for (size_t p = 0; p < portals; p++) {
			const char *kind, *alg;
			int seen = 0;

			for (size_t q = 0; q < p; q++)
				seen |= !strcmp(eng->cols[q].portal, eng->cols[p].portal);
			for (size_t i = 0; !seen && tr_env_card_column(i, &kind, &alg) == 0 &&
					   eng->n_cols < n + 64; i++) {
				column *c = &eng->cols[eng->n_cols++];

				memcpy(c->portal, eng->cols[p].portal, sizeof(c->portal));
				snprintf(c->kind, sizeof(c->kind), "%s", kind);
				snprintf(c->algorithm, sizeof(c->algorithm), "%s", alg);
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

static void progress_start(engine *eng, const char *name)
{
	if (eng->opts->quiet)
		return;
	if (eng->opts->tty) {
		printf("\r\033[K[%zu/%zu] %s", eng->done + 1, eng->total, name);
		fflush(stdout);
	}
}

static void print_warnings(const json_t *warnings)
{
	size_t i;
	json_t *w;

	json_array_foreach(warnings, i, w)
		printf("      WARNING: %s (step: %s)\n",
		       json_string_value(json_object_get(w, "message")),
		       json_string_value(json_object_get(w, "step")));
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
		fflush(stdout);
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

static void record(engine *eng, column *col, tr_case_result *res)
{
	char name[768];

	size_t off = 0;

	name[0] = '\0';
	for (size_t i = 0; i < res->n_ids && off < sizeof(name) / 2; i++)
		off += (size_t)snprintf(name + off, sizeof(name) - off, "%s ", res->ids[i]);
	snprintf(name + off, sizeof(name) - off, "%s [%s/%s]", res->title ? res->title : "",
		 res->kind, res->algorithm);
	count(eng, col, res->status);
	if (tr_report_add(eng->report, res) < 0)
		fprintf(stderr, "tokenrig: writing results: %s\n", tr_error_last());
	progress_end(eng, res, name);
}

/* A run (not certify) ends at a signal: no further case starts. */
static int interrupted(const engine *eng)
{
	return eng->opts->interrupt_ends_run && eng->opts->stop && *eng->opts->stop;
}

/* --- one case ----------------------------------------------------------- */

static void run_case(engine *eng, const tr_scenario *sc, column *col)
{
	tr_case_result res = {
		.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids, .title = sc->title,
		.scenario = sc->path, .portal = sc->portal, .kind = col->kind,
		.algorithm = col->algorithm,
	};
	tr_case_timing timing = { &col->sign_ns, &col->login_ns };
	tr_portal_client *pc = client_for(eng, sc->portal);
	tr_case_failure fail;
	tr_http_answer h;
	tr_case *c = NULL;
	tr_token_ctl *ctl;
	char cleanup[1100], fault[1400];
	json_t *warnings = NULL, *step_log = NULL;
	uint64_t start = tr_clock_ns();
	int error;

	pthread_mutex_lock(&eng->name_lock);
	snprintf(eng->case_name, sizeof(eng->case_name), "%s %s [%s/%s]", sc->ids[0], sc->title,
		 col->kind, col->algorithm);
	pthread_mutex_unlock(&eng->name_lock);
	progress_start(eng, eng->case_name);
	atomic_store(&eng->case_deadline, tr_deadline_after_ms(eng->opts->case_timeout_ms));

	if (!pc) {
		res.status = TR_CASE_ERROR;
		res.message = "no client for the portal";
		goto out;
	}
	/* Every case starts from a portal that has never seen anyone. */
	error = tr_portal_client_request(pc, "POST", "/admin/reset", NULL, "{}", 2, &h);
	if (error < 0 || h.status != 200) {
		snprintf(fail.message, sizeof(fail.message), "resetting the portal failed: %s",
			 error < 0 ? tr_error_last() : "status not 200");
		res.status = TR_CASE_ERROR;
		res.message = fail.message;
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
		res.status = TR_CASE_ERROR;
		snprintf(fail.message, sizeof(fail.message), "%s", tr_error_last());
		res.message = fail.message;
		goto out;
	}
	error = tr_case_run(c, &fail);
	res.status = error == 0 ? TR_CASE_PASSED :
		     error == TR_CASE_SKIP ? TR_CASE_SKIPPED :
		     error == TR_CASE_STOP ? TR_CASE_ERROR : TR_CASE_FAILED;
	if (error == TR_CASE_SKIP || error == TR_CASE_STOP)
		res.message = fail.message;
	if (error == TR_CASE_STOP) {
		/* Never brick a real key: nothing more touches this token. */
		snprintf(eng->stopped, sizeof(eng->stopped), "%s", fail.message);
		tr_case_free(c);
		c = NULL;
		goto out;
	}
	if (error < 0) {
		res.message = fail.message;
		res.step = fail.step;
		res.expected = fail.expected;
		res.actual = fail.actual;
	}
	warnings = json_incref((json_t *)tr_case_warnings(c));
	res.warnings = warnings;
	step_log = json_incref((json_t *)tr_case_log(c));
	res.log = step_log;
	/* A token the case could not put back would fail the next ones. */
	if (tr_case_finish(c) < 0) {
		snprintf(cleanup, sizeof(cleanup), "%s%safter the case: %s",
			 res.message ? res.message : "", res.message ? "; " : "", tr_error_last());
		res.status = TR_CASE_ERROR;
		res.message = cleanup;
		/* A token not the rig's that cannot be put back (unlock failed) is left alone. */
		if (tr_kind_has(col->kind, TR_KIND_CERTIFY))
			snprintf(eng->stopped, sizeof(eng->stopped), "%s: %.900s", sc->ids[0], cleanup);
	}
out:
	tr_case_free(c);
	/* A dead portal, pcscd or card answers like a broken product: say whose fault it is. */
	if ((res.status == TR_CASE_FAILED || res.status == TR_CASE_ERROR) &&
	    tr_env_rig_fault(eng->env, fault, sizeof(fault)) == 1) {
		size_t off = strlen(fault);

		if (res.message && off + 2 < sizeof(fault))
			snprintf(fault + off, sizeof(fault) - off, "; %s", res.message);
		res.status = TR_CASE_ERROR;
		res.message = fault;
	}
	atomic_store(&eng->case_deadline, 0);
	res.duration_ms = (double)(tr_clock_ns() - start) / 1e6;
	record(eng, col, &res);
	json_decref(warnings);
	json_decref(step_log);
}

static void run_column_case(engine *eng, const tr_scenario *sc, column *col)
{
	char reason[256];

	if (!tr_kind_scenario_allows(sc->kinds, sc->n_kinds, col->kind) ||
	    !tr_scenario_allows(sc->algorithms, sc->n_algorithms, col->algorithm)) {
		tr_case_result res = {
			.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids,
			.title = sc->title, .scenario = sc->path, .portal = sc->portal,
			.kind = col->kind, .algorithm = col->algorithm,
			.status = TR_CASE_SKIPPED, .message = reason,
		};

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
		record(eng, col, &res);
		return;
	}
	if (eng->opts->stop && *eng->opts->stop && !eng->stopped[0])
		snprintf(eng->stopped, sizeof(eng->stopped), "interrupted (SIGINT/SIGTERM)");
	if (eng->stopped[0] || (!tr_kind_has(col->kind, TR_KIND_DESTRUCTIVE) &&
				tr_kind_destructive_ids((const char *const *)sc->ids, sc->n_ids))) {
		tr_case_result res = {
			.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids,
			.title = sc->title, .scenario = sc->path, .portal = sc->portal,
			.kind = col->kind, .algorithm = col->algorithm,
			.status = TR_CASE_SKIPPED, .message = reason,
		};

		if (eng->stopped[0])
			snprintf(reason, sizeof(reason), "not run: the rig stopped touching the token: %.200s",
				 eng->stopped);
		else
			snprintf(reason, sizeof(reason), "%s", TR_DESTRUCTIVE_SKIP);
		record(eng, col, &res);
		return;
	}
	if (col->absent) {
		tr_case_result res = {
			.ids = (const char *const *)sc->ids, .n_ids = sc->n_ids,
			.title = sc->title, .scenario = sc->path, .portal = sc->portal,
			.kind = col->kind, .algorithm = col->algorithm,
			.status = TR_CASE_SKIPPED, .message = reason,
		};

		snprintf(reason, sizeof(reason), "no virtual cards in this run: %s", col->absent);
		record(eng, col, &res);
		return;
	}
	run_case(eng, sc, col);
}

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
	return error;
}

/* --- summary ------------------------------------------------------------ */

static void print_summary(engine *eng)
{
	int quiet = eng->opts->quiet;

	if (!quiet)
		printf("\n%-8s %-16s %6s %6s %7s %6s %11s %11s %11s %11s\n", "portal", "token",
		       "passed", "failed", "skipped", "errors", "sign p50", "sign p95", "sign max",
		       "login p50");
	for (size_t k = 0; k < eng->n_cols; k++) {
		column *c = &eng->cols[k];
		tr_summary sign, login;
		char token[40];

		tr_stats_summarize(&c->sign_ns, &sign);
		tr_stats_summarize(&c->login_ns, &login);
		snprintf(token, sizeof(token), "%s/%s", c->kind, c->algorithm);
		if (!quiet)
			printf("%-8s %-16s %6d %6d %7d %6d %8.3f ms %8.3f ms %8.3f ms %8.3f ms\n",
			       c->portal, token, c->passed, c->failed, c->skipped, c->errors,
			       sign.p50 / 1e6, sign.p95 / 1e6, sign.max / 1e6, login.p50 / 1e6);
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

int tr_engine_run(tr_env *env, const tr_engine_opts *opts, tr_run_totals *totals)
{
	engine eng = { .env = env, .opts = opts, .totals = totals };
	tr_scenario **parsed = NULL;
	tr_paths files = { 0 };
	uint64_t start = tr_clock_ns();
	pthread_t watch;
	int error, watching = 0;

	memset(totals, 0, sizeof(*totals));
	pthread_mutex_init(&eng.name_lock, NULL);
	if ((error = tr_report_open(&eng.report, opts->out_dir)) < 0 ||
	    (*tr_env_shim(env) &&
	     (error = tr_token_ctl_new(&eng.shim_ctl, tr_env_shim(env), tr_env_shim_conf(env),
				       tr_env_shim_base(env))) < 0) ||
	    (error = build_columns(&eng)) < 0 ||
	    (error = tr_scenario_find(opts->suites_dir, &files)) < 0)
		goto out;
	if (!(parsed = calloc(files.n ? files.n : 1, sizeof(*parsed)))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}

	/* Parse everything first, so the progress knows the number of cases. */
	for (size_t i = 0; i < files.n; i++) {
		if (tr_scenario_load(&parsed[i], files.v[i]) < 0) {
			parsed[i] = NULL;
			eng.total++;
			continue;
		}
		if (!matches_filter(parsed[i], files.v[i], opts->filter)) {
			tr_scenario_free(parsed[i]);
			parsed[i] = NULL;
			files.v[i][0] = '\0';
			continue;
		}
		eng.total += matching_columns(&eng, parsed[i]->portal) ?
			     matching_columns(&eng, parsed[i]->portal) : 1;
	}
	watching = pthread_create(&watch, NULL, watchdog, &eng) == 0;

	/* Bad files and unknown portals first: they have no column. */
	for (size_t i = 0; i < files.n; i++) {
		tr_scenario *sc = parsed[i];

		if (!files.v[i][0])
			continue;
		if (!sc) {
			/* Re-parse for the message: it names file:line. */
			tr_scenario_load(&sc, files.v[i]);
			char msg[1024];
			tr_case_result res = { .title = files.v[i], .scenario = files.v[i],
					       .portal = "-", .kind = "-", .algorithm = "-",
					       .status = TR_CASE_ERROR, .message = msg };

			snprintf(msg, sizeof(msg), "%s", tr_error_last());
			record(&eng, NULL, &res);
			continue;
		}
		if (!matching_columns(&eng, sc->portal)) {
			char msg[256];
			tr_case_result res = { .ids = (const char *const *)sc->ids, .n_ids = sc->n_ids,
					       .title = sc->title, .scenario = sc->path,
					       .portal = sc->portal, .kind = "-", .algorithm = "-",
					       .status = TR_CASE_ERROR, .message = msg };

			snprintf(msg, sizeof(msg), "%s: portal '%s' is not served by this rig",
				 sc->path, sc->portal);
			record(&eng, NULL, &res);
		}
	}
	/*
	 * Column by column: a column's virtual cards are put in the readers
	 * once, and the kinds sharing them (vcard, opensc) follow each other.
	 */
	for (size_t k = 0; k < eng.n_cols; k++) {
		column *col = &eng.cols[k];
		int cards = tr_kind_has(col->kind, TR_KIND_CARD);

		if (cards && !col->absent && tr_env_show_cards(env, col->portal, col->algorithm) < 0)
			fprintf(stderr, "tokenrig: cards for %s/%s: %s\n", col->portal,
				col->algorithm, tr_error_last());
		for (size_t i = 0; i < files.n && !interrupted(&eng); i++)
			if (parsed[i] && files.v[i][0] && !strcmp(parsed[i]->portal, col->portal))
				run_column_case(&eng, parsed[i], col);
		if (interrupted(&eng))
			break;
	}
	if (interrupted(&eng)) {
		totals->interrupted = *opts->stop;
		if ((error = tr_report_interrupted(eng.report, *opts->stop, eng.done)) < 0)
			goto out;
	}
	totals->wall_s = (double)(tr_clock_ns() - start) / 1e9;
	print_summary(&eng);
	if (!opts->quiet)
		tr_report_print_skips(eng.report, stdout);
	required_kinds(&eng);
	snprintf(totals->stopped, sizeof(totals->stopped), "%s", eng.stopped);
	error = tr_report_finish(eng.report, totals->wall_s);
out:
	if (watching) {
		atomic_store(&eng.finished, 1);
		pthread_join(watch, NULL);
	}
	pthread_mutex_destroy(&eng.name_lock);
	for (size_t i = 0; parsed && i < files.n; i++)
		tr_scenario_free(parsed[i]);
	tr_paths_free(&files);
	free(parsed);
	for (size_t i = 0; i < eng.n_clients; i++)
		tr_portal_client_free(eng.clients[i].pc);
	for (size_t k = 0; k < eng.n_cols; k++) {
		tr_samples_free(&eng.cols[k].sign_ns);
		tr_samples_free(&eng.cols[k].login_ns);
	}
	free(eng.cols);
	tr_token_ctl_free(eng.shim_ctl);
	tr_report_free(eng.report);
	return error;
}
