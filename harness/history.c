#include "harness/history.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESULTS_SCHEMA "tokenrig-results/1"
#define BENCH_SCHEMA "tokenrig-bench/1"
#define CERT_SCHEMA "tokenrig-certification/1"
#define MAX_INPUT_BYTES (256u << 20)
/* How long an import waits for another one holding the write lock. */
#define BUSY_TIMEOUT_MS 30000

struct tr_history {
	sqlite3 *db;
	char path[4096];
};

/*
 * The schema, as the ordered list of its migrations: migration i brings
 * user_version i to i + 1. Never edit one that was released; append.
 */
static const char *const migrations[] = {
	/* 1: runs, their cases and latency summaries. */
	"CREATE TABLE runs ("
	"  id INTEGER PRIMARY KEY,"
	"  results_sha256 TEXT NOT NULL UNIQUE,"
	"  imported TEXT NOT NULL,"
	"  label TEXT NOT NULL DEFAULT '',"
	"  started TEXT NOT NULL,"
	"  finished TEXT NOT NULL DEFAULT '',"
	"  wall_s REAL,"
	"  host TEXT NOT NULL DEFAULT '',"
	"  tool_version TEXT NOT NULL DEFAULT '',"
	"  revision TEXT NOT NULL DEFAULT '',"
	"  seed INTEGER,"
	"  command_line TEXT NOT NULL DEFAULT '',"
	"  versions TEXT NOT NULL DEFAULT '{}',"
	"  kinds TEXT NOT NULL DEFAULT '',"
	"  passed INTEGER NOT NULL, failed INTEGER NOT NULL,"
	"  skipped INTEGER NOT NULL, errors INTEGER NOT NULL);"
	"CREATE TABLE cases ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  case_key TEXT NOT NULL,"
	"  ids TEXT NOT NULL, title TEXT NOT NULL, scenario TEXT NOT NULL,"
	"  portal TEXT NOT NULL, kind TEXT NOT NULL, algorithm TEXT NOT NULL,"
	"  status TEXT NOT NULL, duration_ms REAL NOT NULL,"
	"  message TEXT, step TEXT, expected TEXT, actual TEXT);"
	"CREATE INDEX cases_by_run ON cases(run_id);"
	"CREATE INDEX cases_by_key ON cases(case_key, run_id);"
	"CREATE TABLE latency ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  portal TEXT NOT NULL, kind TEXT NOT NULL, algorithm TEXT NOT NULL,"
	"  stage TEXT NOT NULL, n INTEGER NOT NULL,"
	"  p50_us REAL, p90_us REAL, p95_us REAL, p99_us REAL, max_us REAL,"
	"  mean_us REAL, stddev_us REAL);"
	"CREATE INDEX latency_by_run ON latency(run_id);",

	/* 2: warnings and answer codes of cases; the run's warning count. */
	"ALTER TABLE cases ADD COLUMN warnings TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE cases ADD COLUMN code TEXT;"
	"ALTER TABLE runs ADD COLUMN warnings INTEGER NOT NULL DEFAULT 0;",

	/* 3: the bench file of a run, whole (compare reads it) and per metric. */
	"CREATE TABLE bench ("
	"  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
	"  sha256 TEXT NOT NULL, created TEXT NOT NULL DEFAULT '', document TEXT NOT NULL);"
	"CREATE TABLE bench_metrics ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, kind TEXT, algorithm TEXT, stage TEXT,"
	"  n INTEGER, p50_us REAL, p90_us REAL, p99_us REAL, mean_us REAL, ratio_p50 REAL,"
	"  PRIMARY KEY (run_id, name));",

	/* 4: the certification verdict of a run (tokenrig certify), whole. */
	"CREATE TABLE certification ("
	"  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
	"  sha256 TEXT NOT NULL, document TEXT NOT NULL);",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int tr_history_latest_version(void)
{
	return N_MIGRATIONS;
}

static int db_error(tr_history *h, const char *what)
{
	return tr_error_set(TR_EIO, "%s: %s: %s", h->path, what, sqlite3_errmsg(h->db));
}

static int exec(tr_history *h, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(h->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int error = tr_error_set(TR_EIO, "%s: %s: %s", h->path, what,
					 msg ? msg : sqlite3_errmsg(h->db));

		sqlite3_free(msg);
		return error;
	}
	return 0;
}

/*
 * Switching to WAL needs a lock SQLite does not wait for (no busy
 * handler): two processes opening a new database at once retry, bounded.
 */
static int set_wal(tr_history *h)
{
	uint64_t deadline = tr_deadline_after_ms(BUSY_TIMEOUT_MS);

	for (;;) {
		int rc = sqlite3_exec(h->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);

		if (rc == SQLITE_OK)
			return 0;
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			return db_error(h, "setting WAL mode");
		if (tr_deadline_passed(deadline))
			return db_error(h, "setting WAL mode (still locked after 30 s)");
		tr_poll_pause(deadline, 5);
	}
}

static int user_version(tr_history *h, int *version)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "reading the schema version");
	*version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

/*
 * Under the write lock, so that two openers do not both migrate; an
 * up-to-date database is not locked at all (a report can open it while an
 * import writes).
 */
static int migrate(tr_history *h, int target)
{
	int version, error;
	char sql[64];

	if ((error = user_version(h, &version)) < 0)
		return error;
	if (version >= target && version <= N_MIGRATIONS)
		return 0;
	if ((error = exec(h, "BEGIN IMMEDIATE", "locking for the schema")) < 0)
		return error;
	if ((error = user_version(h, &version)) < 0)
		goto out;
	if (version > N_MIGRATIONS) {
		error = tr_error_set(TR_EINVAL, "%s: schema version %d is newer than this tokenrig's "
				     "(%d): use a newer tokenrig", h->path, version, N_MIGRATIONS);
		goto out;
	}
	for (; version < target; version++) {
		char what[64];

		snprintf(what, sizeof(what), "migration to schema version %d", version + 1);
		if ((error = exec(h, migrations[version], what)) < 0)
			goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	if ((error = exec(h, sql, "setting the schema version")) < 0)
		goto out;
	error = exec(h, "COMMIT", "committing the schema");
out:
	if (error < 0)
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

int tr_history_open_version(tr_history **out, const char *path, int target)
{
	tr_history *h = calloc(1, sizeof(*h));
	int error;

	*out = NULL;
	if (!h)
		return tr_error_set(TR_ENOMEM, "out of memory");
	snprintf(h->path, sizeof(h->path), "%s", path);
	if (target < 1 || target > N_MIGRATIONS)
		target = N_MIGRATIONS;
	if (sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		error = tr_error_set(TR_EIO, "%s: cannot open: %s", path,
				     h->db ? sqlite3_errmsg(h->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
	/* WAL: readers never block the writer; NORMAL sync is safe in WAL. */
	if ((error = set_wal(h)) < 0 ||
	    (error = exec(h, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
			  "setting options")) < 0 ||
	    (error = migrate(h, target)) < 0)
		goto out;
	*out = h;
	return 0;
out:
	tr_history_free(h);
	return error;
}

int tr_history_open(tr_history **out, const char *path)
{
	return tr_history_open_version(out, path, N_MIGRATIONS);
}

void tr_history_free(tr_history *h)
{
	if (!h)
		return;
	sqlite3_close(h->db);
	free(h);
}

int tr_history_schema_version(tr_history *h)
{
	int v = -1;

	user_version(h, &v);
	return v;
}

/* --- import ------------------------------------------------------------- */

static int sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int md_len = 0;

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return tr_error_set(TR_ECRYPTO, "SHA-256 failed");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Reads and parses a whole JSON file of the given schema. */
static int load_doc(const char *path, const char *schema, const char *what, char **text,
		    json_t **root)
{
	json_error_t jerr;
	const char *got;
	int error;

	*root = NULL;
	*text = NULL;
	if ((error = tr_fs_read_all(path, MAX_INPUT_BYTES, text, NULL)) < 0)
		return error;
	if (!(*root = json_loads(*text, 0, &jerr))) {
		error = tr_error_set(TR_EPARSE, "%s:%d:%d: not a complete %s (truncated?): %s", path,
				     jerr.line, jerr.column, what, jerr.text);
		goto fail;
	}
	got = json_string_value(json_object_get(*root, "schema"));
	if (!got) {
		error = tr_error_set(TR_EPARSE, "%s: no \"schema\": not a tokenrig %s", path, what);
		goto fail;
	}
	if (strcmp(got, schema)) {
		error = tr_error_set(TR_EPARSE, "%s: schema \"%s\", the history reads \"%s\"", path,
				     got, schema);
		goto fail;
	}
	return 0;
fail:
	json_decref(*root);
	*root = NULL;
	free(*text);
	*text = NULL;
	return error;
}

/* Every case must say what it is: checked before anything is written. */
static int check_results(const char *path, json_t *root)
{
	json_t *cases = json_object_get(root, "cases"), *c, *lat = json_object_get(root, "latency");
	static const char *const needed[] = { "portal", "kind", "algorithm", "status", "scenario" };
	size_t i;

	if (!json_is_string(json_object_get(root, "started")))
		return tr_error_set(TR_EPARSE, "%s: no \"started\" time", path);
	if (!json_is_array(cases))
		return tr_error_set(TR_EPARSE, "%s: \"cases\" is missing or not a list", path);
	json_array_foreach(cases, i, c) {
		for (size_t k = 0; k < sizeof(needed) / sizeof(needed[0]); k++)
			if (!json_is_string(json_object_get(c, needed[k])))
				return tr_error_set(TR_EPARSE, "%s: cases[%zu] has no \"%s\"", path, i,
						    needed[k]);
		if (!json_is_array(json_object_get(c, "ids")))
			return tr_error_set(TR_EPARSE, "%s: cases[%zu]: \"ids\" is not a list", path, i);
	}
	if (lat && !json_is_array(lat))
		return tr_error_set(TR_EPARSE, "%s: \"latency\" is not a list", path);
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static const char *opt_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int insert_cases(tr_history *h, long long run_id, json_t *cases)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	json_t *c;
	int error = 0;

	if (sqlite3_prepare_v2(h->db,
			       "INSERT INTO cases (run_id, case_key, ids, title, scenario, portal, kind,"
			       " algorithm, status, duration_ms, message, step, expected, actual,"
			       " warnings, code) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "preparing the cases");
	json_array_foreach(cases, i, c) {
		char key[1024], ids[1024] = "", *warnings = NULL;
		json_t *id, *w = json_object_get(c, "warnings");
		size_t k, off = 0;

		json_array_foreach(json_object_get(c, "ids"), k, id)
			if (json_is_string(id) && off < sizeof(ids))
				off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%s",
							off ? " " : "", json_string_value(id));
		/* The file name, not its folder: a suites copy elsewhere is the same case. */
		snprintf(key, sizeof(key), "%s/%s [%s/%s]", jstr(c, "portal"),
			 base_name(jstr(c, "scenario")), jstr(c, "kind"), jstr(c, "algorithm"));
		if (json_array_size(w))
			warnings = json_dumps(w, JSON_COMPACT);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, run_id);
		bind_text(st, 2, key);
		bind_text(st, 3, ids);
		bind_text(st, 4, jstr(c, "title"));
		bind_text(st, 5, jstr(c, "scenario"));
		bind_text(st, 6, jstr(c, "portal"));
		bind_text(st, 7, jstr(c, "kind"));
		bind_text(st, 8, jstr(c, "algorithm"));
		bind_text(st, 9, jstr(c, "status"));
		sqlite3_bind_double(st, 10, json_number_value(json_object_get(c, "duration_ms")));
		bind_text(st, 11, opt_str(c, "message"));
		bind_text(st, 12, opt_str(c, "step"));
		bind_text(st, 13, opt_str(c, "expected"));
		bind_text(st, 14, opt_str(c, "actual"));
		bind_text(st, 15, warnings ? warnings : "");
		bind_text(st, 16, opt_str(c, "code"));
		free(warnings);
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = db_error(h, "inserting a case");
			break;
		}
	}
	sqlite3_finalize(st);
	return error;
}

static int insert_latency(tr_history *h, long long run_id, json_t *rows)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	json_t *r;
	int error = 0;

	if (sqlite3_prepare_v2(h->db,
			       "INSERT INTO latency (run_id, portal, kind, algorithm, stage, n, p50_us,"
			       " p90_us, p95_us, p99_us, max_us, mean_us, stddev_us)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "preparing the latency");
	json_array_foreach(rows, i, r) {
		static const char *const figures[] = { "p50_us", "p90_us", "p95_us", "p99_us",
						       "max_us", "mean_us", "stddev_us" };

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, run_id);
		bind_text(st, 2, jstr(r, "portal"));
		bind_text(st, 3, jstr(r, "kind"));
		bind_text(st, 4, jstr(r, "algorithm"));
		bind_text(st, 5, jstr(r, "stage"));
		sqlite3_bind_int64(st, 6, json_integer_value(json_object_get(r, "n")));
		for (int k = 0; k < 7; k++)
			sqlite3_bind_double(st, 7 + k, json_number_value(json_object_get(r, figures[k])));
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = db_error(h, "inserting a latency summary");
			break;
		}
	}
	sqlite3_finalize(st);
	return error;
}

static int insert_bench(tr_history *h, long long run_id, const char *text, json_t *doc)
{
	sqlite3_stmt *st = NULL;
	char sha[65];
	const char *name;
	json_t *m;
	int error;

	if ((error = sha256_hex(text, strlen(text), sha)) < 0)
		return error;
	if (sqlite3_prepare_v2(h->db, "INSERT INTO bench (run_id, sha256, created, document)"
			       " VALUES (?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "preparing the bench");
	sqlite3_bind_int64(st, 1, run_id);
	bind_text(st, 2, sha);
	bind_text(st, 3, jstr(doc, "created"));
	bind_text(st, 4, text);
	error = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(h, "inserting the bench");
	sqlite3_finalize(st);
	if (error < 0)
		return error;
	if (sqlite3_prepare_v2(h->db, "INSERT INTO bench_metrics (run_id, name, kind, algorithm,"
			       " stage, n, p50_us, p90_us, p99_us, mean_us, ratio_p50)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "preparing the bench metrics");
	json_object_foreach(json_object_get(doc, "metrics"), name, m) {
		json_t *s = json_object_get(m, "summary");

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, run_id);
		bind_text(st, 2, name);
		bind_text(st, 3, opt_str(m, "kind"));
		bind_text(st, 4, opt_str(m, "algorithm"));
		bind_text(st, 5, opt_str(m, "stage"));
		sqlite3_bind_int64(st, 6, json_integer_value(json_object_get(s, "n")));
		sqlite3_bind_double(st, 7, json_number_value(json_object_get(s, "p50_us")));
		sqlite3_bind_double(st, 8, json_number_value(json_object_get(s, "p90_us")));
		sqlite3_bind_double(st, 9, json_number_value(json_object_get(s, "p99_us")));
		sqlite3_bind_double(st, 10, json_number_value(json_object_get(s, "mean_us")));
		if (json_object_get(m, "ratio_p50"))
			sqlite3_bind_double(st, 11, json_number_value(json_object_get(m, "ratio_p50")));
		else
			sqlite3_bind_null(st, 11);
		if (sqlite3_step(st) != SQLITE_DONE) {
			error = db_error(h, "inserting a bench metric");
			break;
		}
	}
	sqlite3_finalize(st);
	return error;
}

/* The certification document, whole: the report reads its token rows. */
static int insert_certification(tr_history *h, long long run_id, const char *text)
{
	sqlite3_stmt *st;
	char sha[65];
	int error;

	if ((error = sha256_hex(text, strlen(text), sha)) < 0)
		return error;
	if (sqlite3_prepare_v2(h->db, "INSERT INTO certification (run_id, sha256, document)"
			       " VALUES (?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "preparing the certification");
	sqlite3_bind_int64(st, 1, run_id);
	bind_text(st, 2, sha);
	bind_text(st, 3, text);
	error = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(h, "inserting the certification");
	sqlite3_finalize(st);
	return error;
}

/*
 * The token kinds a run exercised (some case of the kind ran, not merely
 * skipped), in order of appearance: "softhsm,vcard,opensc".
 */
static void run_kinds(json_t *cases, char *out, size_t len)
{
	size_t i, off = 0;
	json_t *c;

	out[0] = '\0';
	json_array_foreach(cases, i, c) {
		const char *k = jstr(c, "kind");
		char probe[64];

		snprintf(probe, sizeof(probe), ",%s,", k);
		if (!*k || !strcmp(k, "-") || !strcmp(jstr(c, "status"), "skipped"))
			continue;
		/* out is ",a,b," while building, trimmed below. */
		if (off && strstr(out, probe))
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%s,", off ? "" : ",", k);
		if (off >= len) {
			off = len - 1;
			break;
		}
	}
	if (off > 1) {
		memmove(out, out + 1, off - 2);
		out[off - 2] = '\0';
	} else {
		out[0] = '\0';
	}
}

static int find_run(tr_history *h, const char *sha, long long *id, int *has_bench,
		    int *has_cert)
{
	sqlite3_stmt *st;
	int rc;

	*id = 0;
	*has_bench = *has_cert = 0;
	if (sqlite3_prepare_v2(h->db, "SELECT id, (SELECT count(*) FROM bench b WHERE b.run_id ="
			       " runs.id), (SELECT count(*) FROM certification c WHERE c.run_id ="
			       " runs.id) FROM runs WHERE results_sha256 = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_error(h, "looking the run up");
	bind_text(st, 1, sha);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*has_bench = sqlite3_column_int(st, 1) > 0;
		*has_cert = sqlite3_column_int(st, 2) > 0;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(h, "looking the run up");
}

int tr_history_add(tr_history *h, const char *results_path, const tr_history_add_opts *opts,
		   long long *run_id, int *added)
{
	static const tr_history_add_opts none = { 0 };
	char *text = NULL, *bench_text = NULL, *cert_text = NULL, *versions = NULL, sha[65];
	char imported[32], kinds[128];
	json_t *root = NULL, *bench = NULL, *cert = NULL, *summary, *tool;
	sqlite3_stmt *st = NULL;
	long long id;
	int error, has_bench, has_cert, in_tx = 0;
	time_t now = time(NULL);
	struct tm tm;

	if (!opts)
		opts = &none;
	if (added)
		*added = 0;
	/* Everything is read and checked before the transaction starts. */
	if ((error = load_doc(results_path, RESULTS_SCHEMA, "results file", &text, &root)) < 0 ||
	    (error = check_results(results_path, root)) < 0)
		goto out;
	if (opts->bench_path) {
		if ((error = load_doc(opts->bench_path, BENCH_SCHEMA, "bench file", &bench_text,
				      &bench)) < 0)
			goto out;
		if (!json_is_object(json_object_get(bench, "metrics"))) {
			error = tr_error_set(TR_EPARSE, "%s: \"metrics\" is missing", opts->bench_path);
			goto out;
		}
	}
	if (opts->certification_path) {
		if ((error = load_doc(opts->certification_path, CERT_SCHEMA, "certification file",
				      &cert_text, &cert)) < 0)
			goto out;
		if (!json_is_array(json_object_get(cert, "tokens"))) {
			error = tr_error_set(TR_EPARSE, "%s: \"tokens\" is missing",
					     opts->certification_path);
			goto out;
		}
	}
	if ((error = sha256_hex(text, strlen(text), sha)) < 0)
		goto out;

	if ((error = exec(h, "BEGIN IMMEDIATE", "starting the import")) < 0)
		goto out;
	in_tx = 1;
	if ((error = find_run(h, sha, &id, &has_bench, &has_cert)) < 0)
		goto out;
	if (id) {
		/* The same run again: only a bench or verdict it lacked is added. */
		if ((bench && !has_bench && (error = insert_bench(h, id, bench_text, bench)) < 0) ||
		    (cert && !has_cert && (error = insert_certification(h, id, cert_text)) < 0))
			goto out;
		goto commit;
	}
	summary = json_object_get(root, "summary");
	tool = json_object_get(root, "tool");
	if (json_is_object(json_object_get(root, "versions")))
		versions = json_dumps(json_object_get(root, "versions"), JSON_COMPACT | JSON_SORT_KEYS);
	run_kinds(json_object_get(root, "cases"), kinds, sizeof(kinds));
	gmtime_r(&now, &tm);
	strftime(imported, sizeof(imported), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sqlite3_prepare_v2(h->db,
			       "INSERT INTO runs (results_sha256, imported, label, started, finished,"
			       " wall_s, host, tool_version, revision, seed, command_line, versions,"
			       " kinds, passed, failed, skipped, errors, warnings)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) !=
	    SQLITE_OK) {
		error = db_error(h, "preparing the run");
		goto out;
	}
	bind_text(st, 1, sha);
	bind_text(st, 2, imported);
	bind_text(st, 3, opts->label ? opts->label : "");
	bind_text(st, 4, jstr(root, "started"));
	bind_text(st, 5, jstr(root, "finished"));
	if (json_is_number(json_object_get(root, "wall_s")))
		sqlite3_bind_double(st, 6, json_number_value(json_object_get(root, "wall_s")));
	bind_text(st, 7, jstr(root, "host"));
	bind_text(st, 8, jstr(tool, "version"));
	bind_text(st, 9, opts->revision ? opts->revision :
			 *jstr(tool, "revision") ? jstr(tool, "revision") : "unknown");
	if (json_is_integer(json_object_get(root, "seed")))
		sqlite3_bind_int64(st, 10, json_integer_value(json_object_get(root, "seed")));
	bind_text(st, 11, jstr(root, "command_line"));
	bind_text(st, 12, versions ? versions : "{}");
	bind_text(st, 13, kinds);
	sqlite3_bind_int64(st, 14, json_integer_value(json_object_get(summary, "passed")));
	sqlite3_bind_int64(st, 15, json_integer_value(json_object_get(summary, "failed")));
	sqlite3_bind_int64(st, 16, json_integer_value(json_object_get(summary, "skipped")));
	sqlite3_bind_int64(st, 17, json_integer_value(json_object_get(summary, "error")));
	sqlite3_bind_int64(st, 18, json_integer_value(json_object_get(summary, "warnings")));
	if (sqlite3_step(st) != SQLITE_DONE) {
		error = db_error(h, "inserting the run");
		goto out;
	}
	id = sqlite3_last_insert_rowid(h->db);
	if ((error = insert_cases(h, id, json_object_get(root, "cases"))) < 0 ||
	    (error = insert_latency(h, id, json_object_get(root, "latency"))) < 0 ||
	    (bench && (error = insert_bench(h, id, bench_text, bench)) < 0) ||
	    (cert && (error = insert_certification(h, id, cert_text)) < 0))
		goto out;
	if (added)
		*added = 1;
commit:
	if ((error = exec(h, "COMMIT", "committing the import")) < 0)
		goto out;
	in_tx = 0;
	if (run_id)
		*run_id = id;
out:
	if (in_tx)
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(st);
	free(versions);
	json_decref(root);
	json_decref(bench);
	json_decref(cert);
	free(text);
	free(bench_text);
	free(cert_text);
	return error;
}

/* --- reading ------------------------------------------------------------ */

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, len, "%s", s ? (const char *)s : "");
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return strdup(s ? (const char *)s : "");
}

int tr_history_runs(tr_history *h, size_t last, tr_history_run **runs, size_t *n)
{
	sqlite3_stmt *st;
	tr_history_run *v = NULL;
	size_t cap = 0;
	int rc, error = 0;

	*runs = NULL;
	*n = 0;
	/* The newest `last`, then turned oldest first. */
	if (sqlite3_prepare_v2(h->db,
			       "SELECT id, started, finished, imported, host, tool_version, revision,"
			       " label, kinds, coalesce(seed, -1), passed, failed, skipped, errors,"
			       " warnings, (SELECT count(*) FROM bench b WHERE b.run_id = runs.id),"
			       " (SELECT count(*) FROM certification c WHERE c.run_id = runs.id)"
			       " FROM runs ORDER BY started DESC, id DESC LIMIT ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_error(h, "listing the runs");
	sqlite3_bind_int64(st, 1, last ? (sqlite3_int64)last : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		tr_history_run *r;

		if (*n == cap) {
			tr_history_run *p = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof(*v));

			if (!p) {
				error = tr_error_set(TR_ENOMEM, "out of memory");
				goto out;
			}
			v = p;
		}
		r = &v[(*n)++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		col_copy(st, 1, r->started, sizeof(r->started));
		col_copy(st, 2, r->finished, sizeof(r->finished));
		col_copy(st, 3, r->imported, sizeof(r->imported));
		col_copy(st, 4, r->host, sizeof(r->host));
		col_copy(st, 5, r->version, sizeof(r->version));
		col_copy(st, 6, r->revision, sizeof(r->revision));
		col_copy(st, 7, r->label, sizeof(r->label));
		col_copy(st, 8, r->kinds, sizeof(r->kinds));
		r->seed = sqlite3_column_int64(st, 9);
		r->passed = sqlite3_column_int(st, 10);
		r->failed = sqlite3_column_int(st, 11);
		r->skipped = sqlite3_column_int(st, 12);
		r->errors = sqlite3_column_int(st, 13);
		r->warnings = sqlite3_column_int(st, 14);
		r->has_bench = sqlite3_column_int(st, 15) > 0;
		r->has_certification = sqlite3_column_int(st, 16) > 0;
	}
	if (rc != SQLITE_DONE)
		error = db_error(h, "listing the runs");
out:
	sqlite3_finalize(st);
	if (error < 0) {
		free(v);
		*n = 0;
		return error;
	}
	for (size_t i = 0; i < *n / 2; i++) {
		tr_history_run t = v[i];

		v[i] = v[*n - 1 - i];
		v[*n - 1 - i] = t;
	}
	*runs = v;
	return 0;
}

void tr_history_cases_free(tr_history_cases *cases)
{
	for (size_t i = 0; i < cases->n; i++) {
		tr_history_case *c = &cases->v[i];
		char **fields[] = { &c->key, &c->ids, &c->title, &c->scenario, &c->portal, &c->kind,
				    &c->algorithm, &c->status, &c->message, &c->step, &c->expected,
				    &c->actual, &c->code, &c->warnings };

		for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			free(*fields[k]);
	}
	free(cases->v);
	cases->v = NULL;
	cases->n = 0;
}

int tr_history_run_cases(tr_history *h, long long run_id, tr_history_cases *out)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc, error = 0;

	out->v = NULL;
	out->n = 0;
	if (sqlite3_prepare_v2(h->db,
			       "SELECT case_key, ids, title, scenario, portal, kind, algorithm, status,"
			       " duration_ms, message, step, expected, actual, code, warnings"
			       " FROM cases WHERE run_id = ? ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "reading the cases");
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		tr_history_case *c;

		if (out->n == cap) {
			tr_history_case *p = realloc(out->v, (cap = cap ? cap * 2 : 256) * sizeof(*p));

			if (!p) {
				error = tr_error_set(TR_ENOMEM, "out of memory");
				goto out;
			}
			out->v = p;
		}
		c = &out->v[out->n++];
		c->key = col_dup(st, 0);
		c->ids = col_dup(st, 1);
		c->title = col_dup(st, 2);
		c->scenario = col_dup(st, 3);
		c->portal = col_dup(st, 4);
		c->kind = col_dup(st, 5);
		c->algorithm = col_dup(st, 6);
		c->status = col_dup(st, 7);
		c->duration_ms = sqlite3_column_double(st, 8);
		c->message = col_dup(st, 9);
		c->step = col_dup(st, 10);
		c->expected = col_dup(st, 11);
		c->actual = col_dup(st, 12);
		c->code = col_dup(st, 13);
		c->warnings = col_dup(st, 14);
		if (!c->key || !c->ids || !c->title || !c->scenario || !c->portal || !c->kind ||
		    !c->algorithm || !c->status || !c->message || !c->step || !c->expected ||
		    !c->actual || !c->code || !c->warnings) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		error = db_error(h, "reading the cases");
out:
	sqlite3_finalize(st);
	if (error < 0)
		tr_history_cases_free(out);
	return error;
}

int tr_history_run_latency(tr_history *h, long long run_id, tr_history_latency **rows,
			   size_t *n)
{
	sqlite3_stmt *st;
	tr_history_latency *v = NULL;
	size_t cap = 0;
	int rc, error = 0;

	*rows = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(h->db,
			       "SELECT portal, kind, algorithm, stage, n, p50_us, p90_us, p99_us, max_us,"
			       " mean_us FROM latency WHERE run_id = ? ORDER BY rowid", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(h, "reading the latency");
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		tr_history_latency *r;

		if (*n == cap) {
			tr_history_latency *p = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof(*p));

			if (!p) {
				error = tr_error_set(TR_ENOMEM, "out of memory");
				goto out;
			}
			v = p;
		}
		r = &v[(*n)++];
		col_copy(st, 0, r->portal, sizeof(r->portal));
		col_copy(st, 1, r->kind, sizeof(r->kind));
		col_copy(st, 2, r->algorithm, sizeof(r->algorithm));
		col_copy(st, 3, r->stage, sizeof(r->stage));
		r->n = sqlite3_column_int64(st, 4);
		r->p50_us = sqlite3_column_double(st, 5);
		r->p90_us = sqlite3_column_double(st, 6);
		r->p99_us = sqlite3_column_double(st, 7);
		r->max_us = sqlite3_column_double(st, 8);
		r->mean_us = sqlite3_column_double(st, 9);
	}
	if (rc != SQLITE_DONE)
		error = db_error(h, "reading the latency");
out:
	sqlite3_finalize(st);
	if (error < 0) {
		free(v);
		*n = 0;
		return error;
	}
	*rows = v;
	return 0;
}

/* The document a run has in table (bench, certification), whole. */
static int run_document(tr_history *h, const char *table, long long run_id, char **json_text)
{
	sqlite3_stmt *st;
	char sql[128];
	int rc, error = 0;

	*json_text = NULL;
	snprintf(sql, sizeof(sql), "SELECT document FROM %s WHERE run_id = ?", table);
	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(h, "reading a run's document");
	sqlite3_bind_int64(st, 1, run_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (!(*json_text = col_dup(st, 0)))
			error = tr_error_set(TR_ENOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		error = tr_error_set(TR_ENOTFOUND, "run %lld has no %s", run_id, table);
	} else {
		error = db_error(h, "reading a run's document");
	}
	sqlite3_finalize(st);
	return error;
}

int tr_history_run_bench(tr_history *h, long long run_id, char **json_text)
{
	return run_document(h, "bench", run_id, json_text);
}

int tr_history_run_certification(tr_history *h, long long run_id, char **json_text)
{
	return run_document(h, "certification", run_id, json_text);
}

/* --- what changed ------------------------------------------------------- */

const char *tr_history_change_name(tr_history_change_kind kind)
{
	switch (kind) {
	case TR_CHANGE_NEWLY_FAILING: return "newly failing";
	case TR_CHANGE_FIXED: return "fixed";
	default: return "newly skipped";
	}
}

static int is_failure(const char *status)
{
	return !strcmp(status, "failed") || !strcmp(status, "error");
}

/* hint: where it likely is (runs list their cases in the same order). */
static const tr_history_case *find_case(const tr_history_cases *list, const char *key,
					size_t hint)
{
	if (hint < list->n && !strcmp(list->v[hint].key, key))
		return &list->v[hint];
	for (size_t i = 0; i < list->n; i++)
		if (!strcmp(list->v[i].key, key))
			return &list->v[i];
	return NULL;
}

int tr_history_changes(const tr_history_cases *before, const tr_history_cases *now,
		       tr_history_change **out, size_t *n)
{
	tr_history_change *v = calloc(now->n ? now->n : 1, sizeof(*v));

	*out = NULL;
	*n = 0;
	if (!v)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < now->n; i++) {
		const tr_history_case *c = &now->v[i], *b = find_case(before, c->key, i);
		tr_history_change_kind k;

		if (is_failure(c->status) && (!b || !is_failure(b->status)))
			k = TR_CHANGE_NEWLY_FAILING;
		else if (!strcmp(c->status, "passed") && b && is_failure(b->status))
			k = TR_CHANGE_FIXED;
		else if (!strcmp(c->status, "skipped") && b && strcmp(b->status, "skipped"))
			k = TR_CHANGE_NEWLY_SKIPPED;
		else
			continue;
		v[*n].kind = k;
		v[*n].now = c;
		v[*n].before = b;
		(*n)++;
	}
	*out = v;
	return 0;
}

int tr_history_flips(const tr_history_cases *runs, size_t n_runs, int **flips)
{
	const tr_history_cases *last;
	int *v;

	*flips = NULL;
	if (!n_runs)
		return 0;
	last = &runs[n_runs - 1];
	if (!(v = calloc(last->n ? last->n : 1, sizeof(*v))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < last->n; i++) {
		int prev = -1;

		for (size_t r = 0; r < n_runs; r++) {
			const tr_history_case *c = r == n_runs - 1 ? &last->v[i] :
						   find_case(&runs[r], last->v[i].key, i);
			int outcome;

			/* Only outcomes count: a skip says nothing of the token or portal. */
			if (!c || !strcmp(c->status, "skipped"))
				continue;
			outcome = is_failure(c->status);
			if (prev >= 0 && outcome != prev)
				v[i]++;
			prev = outcome;
		}
	}
	*flips = v;
	return 0;
}
