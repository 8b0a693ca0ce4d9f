#include "harness/report.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fsutil.h"

#include "common/clock.h"
#include "harness/version.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * One case as the files show it, serialised once when it is added: a file
 * is rewritten whole after every case, and re-serialising every earlier
 * case each time made a run's writing quadratic (2.2 s of 672 cases).
 */
typedef struct case_text {
	char *json;   /* its results.json line */
	char *xml;    /* its JUnit <testcase> element */
	size_t suite; /* index into tr_report.suites */
} case_text;

struct tr_report {
	char json_path[4096];
	char junit_path[4096];
	json_t *root;      /* results.json but its case list, written last */
	json_t *cases;     /* results.json's cases */
	case_text *texts;  /* as cases */
	char **suites;     /* JUnit suite names ("portal kind/alg"), as first met */
	size_t n_suites;
	json_t *coverage;  /* root.coverage[portal][kind/alg][status] = [ids] */
	json_t *latency;   /* root.latency */
	uint64_t start_ns; /* for testsuites@time while the run goes on */
	size_t *orders;    /* each case's place in the run's case list, as cases */
	size_t n_orders, cap_orders;
};

/* What main() said about the run (tr_report_set_invocation); process-wide. */
static struct {
	char command_line[4096];
	unsigned long long seed;
	int set;
} invocation;

/*
 * Options whose value is a secret: masked in the recorded command line.
 * None exists today (PINs come from the token profiles, never argv); the
 * list keeps it so if one is added.
 */
static const char *const secret_options[] = {
	"--pin", "--so-pin", "--user-pin", "--puk", "--password", "--secret",
};

/* The packages whose versions a run records: name in results, Debian package. */
static const struct {
	const char *name, *package;
} recorded_packages[] = {
	{ "softhsm2", "softhsm2" },
	{ "opensc", "opensc" },
	{ "pcsc-lite", "libpcsclite1" },
};

const char *tr_case_status_name(tr_case_status st)
{
	switch (st) {
	case TR_CASE_PASSED: return "passed";
	case TR_CASE_FAILED: return "failed";
	case TR_CASE_SKIPPED: return "skipped";
	default: return "error";
	}
}

static void iso_now(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int is_secret_option(const char *arg, size_t *name_len)
{
	for (size_t i = 0; i < sizeof(secret_options) / sizeof(secret_options[0]); i++) {
		size_t n = strlen(secret_options[i]);

		if (!strncmp(arg, secret_options[i], n) && (arg[n] == '\0' || arg[n] == '=')) {
			*name_len = n;
			return 1;
		}
	}
	return 0;
}

/* Appends arg to out, single-quoted when the shell would need it. */
static void quote_arg(char *out, size_t size, const char *arg)
{
	size_t off = strlen(out);
	int plain = *arg != '\0';

	for (const char *p = arg; *p && plain; p++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			       "-_./=:,+@%", *p) != NULL;
	if (off && off + 1 < size)
		out[off++] = ' ', out[off] = '\0';
	if (plain) {
		snprintf(out + off, size - off, "%s", arg);
		return;
	}
	if (off + 1 < size)
		out[off++] = '\'', out[off] = '\0';
	for (const char *p = arg; *p && off + 5 < size; p++) {
		if (*p == '\'') {
			memcpy(out + off, "'\\''", 4);
			off += 4;
		} else {
			out[off++] = *p;
		}
	}
	if (off + 1 < size)
		out[off++] = '\'';
	out[off < size ? off : size - 1] = '\0';
}

void tr_report_set_invocation(int argc, char *const *argv, unsigned long long seed)
{
	char *cl = invocation.command_line;
	int mask_next = 0;

	cl[0] = '\0';
	for (int i = 0; i < argc; i++) {
		size_t n;

		if (mask_next) {
			quote_arg(cl, sizeof(invocation.command_line), "***");
			mask_next = 0;
		} else if (is_secret_option(argv[i], &n)) {
			char masked[64];

			snprintf(masked, sizeof(masked), "%.*s%s", (int)n, argv[i],
				 argv[i][n] == '=' ? "=***" : "");
			quote_arg(cl, sizeof(invocation.command_line), masked);
			mask_next = argv[i][n] == '\0';
		} else {
			quote_arg(cl, sizeof(invocation.command_line), argv[i]);
		}
	}
	invocation.seed = seed;
	invocation.set = 1;
}

/* dpkg's answer, asked once per process: Debian is the rig's platform. */
static pthread_once_t packages_once = PTHREAD_ONCE_INIT;
static char package_versions[sizeof(recorded_packages) / sizeof(recorded_packages[0])][64];

static void read_package_versions(void)
{
	char cmd[512] = "dpkg-query -W -f='${Package} ${Version}\\n'", line[256];
	FILE *f;

	for (size_t i = 0; i < sizeof(recorded_packages) / sizeof(recorded_packages[0]); i++) {
		snprintf(package_versions[i], sizeof(package_versions[i]), "unknown");
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s",
			 recorded_packages[i].package);
	}
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " 2>/dev/null");
	if (!(f = popen(cmd, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' ');

		if (!sp)
			continue;
		*sp++ = '\0';
		sp[strcspn(sp, "\n")] = '\0';
		for (size_t i = 0; i < sizeof(recorded_packages) / sizeof(recorded_packages[0]); i++)
			if (!strcmp(line, recorded_packages[i].package) && *sp)
				snprintf(package_versions[i], sizeof(package_versions[i]), "%s", sp);
	}
	pclose(f);
}

/* root.tool, host, seed, command_line, versions: what the run was made with. */
static json_t *run_facts(json_t *root)
{
	json_t *versions = json_object();
	char host[256] = "unknown";

	pthread_once(&packages_once, read_package_versions);
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	json_object_set_new(versions, "openssl", json_string(OpenSSL_version(OPENSSL_VERSION)));
	for (size_t i = 0; i < sizeof(recorded_packages) / sizeof(recorded_packages[0]); i++)
		json_object_set_new(versions, recorded_packages[i].name,
				    json_string(package_versions[i]));
	json_object_set_new(root, "tool", json_pack("{s:s, s:s, s:s}", "name", "tokenrig",
						    "version", tr_version(),
						    "revision", tr_revision()));
	json_object_set_new(root, "host", json_string(host));
	if (invocation.set) {
		json_object_set_new(root, "seed", json_integer((json_int_t)invocation.seed));
		json_object_set_new(root, "command_line", json_string(invocation.command_line));
	}
	json_object_set_new(root, "versions", versions);
	return root;
}

static int write_all(tr_report *rep, int sync);

int tr_report_open(tr_report **out, const char *out_dir)
{
	tr_report *rep = calloc(1, sizeof(*rep));
	char started[32];
	int error;

	if (!rep)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_fs_mkdirs(out_dir, 0755)) < 0 ||
	    (error = tr_fs_join(rep->json_path, sizeof(rep->json_path), out_dir,
				"results.json")) < 0 ||
	    (error = tr_fs_join(rep->junit_path, sizeof(rep->junit_path), out_dir,
				"junit.xml")) < 0) {
		free(rep);
		return error;
	}
	iso_now(started, sizeof(started));
	rep->start_ns = tr_clock_ns();
	rep->root = json_pack("{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:{}}, s:{}, s:[]}",
			      "schema", "tokenrig-results/1", "started", started,
			      "summary", "passed", 0, "failed", 0, "skipped", 0, "error", 0,
			      "warnings", 0, "skipped_by_reason", "coverage", "latency");
	rep->cases = json_array();
	if (!rep->root || !rep->cases || !run_facts(rep->root)) {
		json_decref(rep->root);
		json_decref(rep->cases);
		free(rep);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	rep->coverage = json_object_get(rep->root, "coverage");
	rep->latency = json_object_get(rep->root, "latency");
	/* Earlier files are replaced at once by complete ones of this run, never deleted. */
	if ((error = write_all(rep, 1)) < 0) {
		tr_report_free(rep);
		return error;
	}
	*out = rep;
	return 0;
}

static void texts_free(tr_report *rep)
{
	size_t i;

	for (i = 0; rep->texts && i < json_array_size(rep->cases); i++) {
		free(rep->texts[i].json);
		free(rep->texts[i].xml);
	}
	free(rep->texts);
	for (i = 0; i < rep->n_suites; i++)
		free(rep->suites[i]);
	free(rep->suites);
}

void tr_report_free(tr_report *rep)
{
	if (!rep)
		return;
	texts_free(rep);
	json_decref(rep->root);
	json_decref(rep->cases);
	free(rep->orders);
	free(rep);
}

/* --- JUnit ---------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/*
 * JUnit has no warning element: a warning is a property of the case (for
 * tools) and a line of its output (what CI pages show), on passed cases too.
 */
static void junit_properties(tr_buf *b, json_t *warnings)
{
	size_t i;
	json_t *w;

	if (!json_array_size(warnings))
		return;
	tr_buf_puts(b, "      <properties>\n");
	json_array_foreach(warnings, i, w) {
		tr_buf_puts(b, "        <property name=\"warning\" value=\"");
		tr_buf_escape(b, jstr(w, "message"));
		tr_buf_puts(b, "\"/>\n");
	}
	tr_buf_puts(b, "      </properties>\n");
}

/* The case's step log, then its warnings: what a CI page shows under it. */
static void junit_output(tr_buf *b, json_t *log, json_t *warnings)
{
	size_t i;
	json_t *w;

	if (!json_array_size(log) && !json_array_size(warnings))
		return;
	tr_buf_puts(b, "      <system-out>");
	json_array_foreach(log, i, w) {
		tr_buf_escape(b, json_string_value(w));
		tr_buf_puts(b, "\n");
	}
	json_array_foreach(warnings, i, w) {
		tr_buf_puts(b, "WARNING (step: ");
		tr_buf_escape(b, jstr(w, "step"));
		tr_buf_puts(b, "): ");
		tr_buf_escape(b, jstr(w, "message"));
		tr_buf_puts(b, "\n");
	}
	tr_buf_puts(b, "</system-out>\n");
}

/*
 * The answer code of a failure, for JUnit's failure@type: the answer's own
 * "code" of "HTTP 403 {...,"code":"X",...}" (a portal's stable code; "OK"
 * when the answer succeeded but a field differed), or "no-answer" when the
 * step could not be carried out. 0 when the answer carried no code: the
 * failure then has no type.
 */
static int answer_code(const char *actual, char *out, size_t len)
{
	const char *body;
	json_t *doc;
	const char *code;
	int found = 0;

	if (!strncmp(actual, "no answer", 9)) {
		snprintf(out, len, "no-answer");
		return 1;
	}
	if (strncmp(actual, "HTTP ", 5) || !(body = strchr(actual + 5, ' ')))
		return 0;
	doc = json_loads(body + 1, JSON_DISABLE_EOF_CHECK, NULL);
	code = json_string_value(json_object_get(doc, "code"));
	if (code && *code) {
		snprintf(out, len, "%s", code);
		found = 1;
	}
	json_decref(doc);
	return found;
}

/* JUnit's timestamp: ISO 8601 without a zone (the XSD's xs:dateTime); UTC. */
static void junit_timestamp(const char *iso, char *out, size_t len)
{
	snprintf(out, len, "%.19s", iso);
}

/* name="value", escaped, after a space. */
static void xml_attr(tr_buf *b, const char *name, const char *value)
{
	tr_buf_printf(b, " %s=\"", name);
	tr_buf_escape(b, value);
	tr_buf_puts(b, "\"");
}

/* One case's <testcase> element. */
static void case_xml(tr_buf *b, json_t *c)
{
	const char *st = jstr(c, "status");
	const char *elem = !strcmp(st, "skipped") ? "skipped" :
			   !strcmp(st, "failed") ? "failure" : "error";
	char classname[256];

	snprintf(classname, sizeof(classname), "%s.%s.%s", jstr(c, "portal"), jstr(c, "kind"),
		 jstr(c, "algorithm"));
	tr_buf_puts(b, "    <testcase");
	xml_attr(b, "classname", classname);
	xml_attr(b, "file", jstr(c, "scenario"));
	xml_attr(b, "name", jstr(c, "name"));
	tr_buf_printf(b, " time=\"%.3f\"",
		      json_real_value(json_object_get(c, "duration_ms")) / 1000.0);
	if (!strcmp(st, "passed") && !json_array_size(json_object_get(c, "warnings"))) {
		tr_buf_puts(b, "/>\n");
		return;
	}
	tr_buf_puts(b, ">\n");
	junit_properties(b, json_object_get(c, "warnings"));
	if (!strcmp(st, "passed")) {
		junit_output(b, NULL, json_object_get(c, "warnings"));
		tr_buf_puts(b, "    </testcase>\n");
		return;
	}
	tr_buf_printf(b, "      <%s", elem);
	if (json_object_get(c, "code"))
		xml_attr(b, "type", jstr(c, "code"));
	xml_attr(b, "message", jstr(c, "message"));
	tr_buf_puts(b, ">");
	if (json_object_get(c, "step")) {
		tr_buf_puts(b, "step: ");
		tr_buf_escape(b, jstr(c, "step"));
		tr_buf_puts(b, "\nexpected: ");
		tr_buf_escape(b, jstr(c, "expected"));
		tr_buf_puts(b, "\nactual: ");
		tr_buf_escape(b, jstr(c, "actual"));
	}
	tr_buf_printf(b, "</%s>\n", elem);
	junit_output(b, json_object_get(c, "log"), json_object_get(c, "warnings"));
	tr_buf_puts(b, "    </testcase>\n");
}

/* The index of a suite name, added when new; -1 out of memory. */
static long suite_index(tr_report *rep, const char *name)
{
	char **grown;
	size_t i;

	for (i = 0; i < rep->n_suites; i++)
		if (!strcmp(rep->suites[i], name))
			return (long)i;
	if (!(grown = realloc(rep->suites, (rep->n_suites + 1) * sizeof(*grown))))
		return -1;
	rep->suites = grown;
	if (!(rep->suites[rep->n_suites] = strdup(name)))
		return -1;
	return (long)rep->n_suites++;
}

/* Serialises case c into t (its line, its element, its suite). */
static int case_text_make(tr_report *rep, json_t *c, case_text *t)
{
	tr_buf b = TR_BUF_INIT;
	char name[256];
	long suite;

	memset(t, 0, sizeof(*t));
	snprintf(name, sizeof(name), "%s %s/%s", jstr(c, "portal"), jstr(c, "kind"),
		 jstr(c, "algorithm"));
	case_xml(&b, c);
	if ((suite = suite_index(rep, name)) < 0 || tr_buf_check(&b, "a JUnit case") < 0 ||
	    !(t->json = json_dumps(c, 0))) {
		tr_buf_free(&b);
		free(t->json);
		t->json = NULL;
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	t->xml = b.data;
	t->suite = (size_t)suite;
	return 0;
}

/* One <testsuite> per portal + token kind/algorithm, in order of appearance. */
static int write_junit(tr_report *rep, int sync)
{
	json_t *summary = json_object_get(rep->root, "summary");
	json_t *wall = json_object_get(rep->root, "wall_s");
	size_t n = json_array_size(rep->cases), *order = NULL, n_order = 0;
	unsigned char *seen = NULL;
	json_t *intr;
	char stamp[32];
	size_t i, k, suite_id = 0;
	tr_buf b = TR_BUF_INIT;
	int error;

	if (rep->n_suites && (!(order = malloc(rep->n_suites * sizeof(*order))) ||
			      !(seen = calloc(rep->n_suites, 1)))) {
		free(order);
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", rep->junit_path);
	}
	for (i = 0; i < n; i++)
		if (!seen[rep->texts[i].suite]) {
			seen[rep->texts[i].suite] = 1;
			order[n_order++] = rep->texts[i].suite;
		}

	junit_timestamp(jstr(rep->root, "started"), stamp, sizeof(stamp));
	tr_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	tr_buf_printf(&b, "<testsuites name=\"tokenrig\" tests=\"%zu\" failures=\"%lld\" "
		      "errors=\"%lld\" skipped=\"%lld\" time=\"%.3f\" timestamp=\"%s\">\n",
		n + (json_object_get(rep->root, "interrupted") ? 1 : 0),
		json_integer_value(json_object_get(summary, "failed")),
		json_integer_value(json_object_get(summary, "error")) +
		(json_object_get(rep->root, "interrupted") ? 1 : 0),
		json_integer_value(json_object_get(summary, "skipped")),
		wall ? json_real_value(wall) : (double)(tr_clock_ns() - rep->start_ns) / 1e9,
		stamp);
	for (k = 0; k < n_order; k++) {
		size_t members = 0, failures = 0, errors = 0, skipped = 0;
		double time_s = 0;

		for (i = 0; i < n; i++) {
			json_t *c = json_array_get(rep->cases, i);
			const char *st = jstr(c, "status");

			if (rep->texts[i].suite != order[k])
				continue;
			members++;
			failures += !strcmp(st, "failed");
			errors += !strcmp(st, "error");
			skipped += !strcmp(st, "skipped");
			time_s += json_real_value(json_object_get(c, "duration_ms")) / 1000.0;
		}
		tr_buf_puts(&b, "  <testsuite name=\"");
		tr_buf_escape(&b, rep->suites[order[k]]);
		tr_buf_printf(&b, "\" id=\"%zu\" package=\"tokenrig\" tests=\"%zu\" failures=\"%zu\" "
			      "errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\" timestamp=\"%s\" hostname=\"",
			suite_id++, members, failures, errors, skipped, time_s, stamp);
		tr_buf_escape(&b, jstr(rep->root, "host"));
		tr_buf_puts(&b, "\">\n    <properties>\n");
		if (json_object_get(rep->root, "seed"))
			tr_buf_printf(&b, "      <property name=\"seed\" value=\"%lld\"/>\n",
				      (long long)json_integer_value(json_object_get(rep->root, "seed")));
		tr_buf_puts(&b, "      <property name=\"revision\" value=\"");
		tr_buf_escape(&b, jstr(json_object_get(rep->root, "tool"), "revision"));
		tr_buf_puts(&b, "\"/>\n      <property name=\"version\" value=\"");
		tr_buf_escape(&b, jstr(json_object_get(rep->root, "tool"), "version"));
		tr_buf_puts(&b, "\"/>\n    </properties>\n");
		for (i = 0; i < n; i++)
			if (rep->texts[i].suite == order[k])
				tr_buf_puts(&b, rep->texts[i].xml);
		tr_buf_puts(&b, "  </testsuite>\n");
	}
	free(order);
	free(seen);
	/* An interrupted run says so where a CI job page shows it: a last error case. */
	if ((intr = json_object_get(rep->root, "interrupted")) != NULL) {
		char msg[128];

		snprintf(msg, sizeof(msg), "run interrupted by %s after %lld cases",
			 jstr(intr, "signal"),
			 (long long)json_integer_value(json_object_get(intr, "after_cases")));
		tr_buf_printf(&b, "  <testsuite name=\"tokenrig\" id=\"%zu\" package=\"tokenrig\" "
			      "tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\" "
			      "timestamp=\"%s\">\n    <properties>\n"
			      "      <property name=\"interrupted\" value=\"", suite_id++, stamp);
		tr_buf_escape(&b, jstr(intr, "signal"));
		tr_buf_puts(&b, "\"/>\n    </properties>\n"
			    "    <testcase classname=\"tokenrig\" name=\"");
		tr_buf_escape(&b, msg);
		tr_buf_puts(&b, "\" time=\"0\">\n      <error type=\"interrupted\" message=\"");
		tr_buf_escape(&b, msg);
		tr_buf_puts(&b, "\"/>\n    </testcase>\n  </testsuite>\n");
	}
	tr_buf_puts(&b, "</testsuites>\n");
	if ((error = tr_buf_check(&b, rep->junit_path)) == 0)
		error = tr_fs_write_replace(rep->junit_path, b.data, b.len, 0644, sync);
	tr_buf_free(&b);
	return error;
}

/*
 * results.json: the document, then its case list, one line a case (the
 * lines made once, when each case came).
 */
static int write_results(tr_report *rep, int sync)
{
	char *head = json_dumps(rep->root, JSON_INDENT(1));
	size_t n = json_array_size(rep->cases), len, i;
	tr_buf b = TR_BUF_INIT;
	int error;

	if (!head)
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", rep->json_path);
	/* "{ ...\n}": the case list goes in before the last brace. */
	len = strlen(head);
	while (len > 1 && head[len - 1] != '}')
		len--;
	len--;
	while (len > 1 && (head[len - 1] == '\n' || head[len - 1] == ' '))
		len--;
	tr_buf_put(&b, head, len);
	tr_buf_puts(&b, len > 1 ? ",\n \"cases\": [" : "\n \"cases\": [");
	for (i = 0; i < n; i++) {
		tr_buf_puts(&b, i ? ",\n  " : "\n  ");
		tr_buf_puts(&b, rep->texts[i].json);
	}
	tr_buf_puts(&b, n ? "\n ]\n}\n" : "]\n}\n");
	free(head);
	if ((error = tr_buf_check(&b, rep->json_path)) == 0)
		error = tr_fs_write_replace(rep->json_path, b.data, b.len, 0644, sync);
	tr_buf_free(&b);
	return error;
}

/* Both files; sync: durable (the run's first and last writes). */
static int write_all(tr_report *rep, int sync)
{
	int error = write_results(rep, sync);

	return error < 0 ? error : write_junit(rep, sync);
}

/* One case's IDs into root.coverage[portal][kind/alg][status]. */
static void add_coverage(tr_report *rep, json_t *c)
{
	char column[64];
	json_t *portal, *col, *list, *id;
	size_t i;

	if (!json_array_size(json_object_get(c, "ids")))
		return;
	snprintf(column, sizeof(column), "%s/%s", jstr(c, "kind"), jstr(c, "algorithm"));
	if (!(portal = json_object_get(rep->coverage, jstr(c, "portal"))))
		json_object_set_new(rep->coverage, jstr(c, "portal"), portal = json_object());
	if (!(col = json_object_get(portal, column)))
		json_object_set_new(portal, column,
				    col = json_pack("{s:[], s:[], s:[], s:[]}", "passed",
						    "failed", "skipped", "error"));
	list = json_object_get(col, jstr(c, "status"));
	json_array_foreach(json_object_get(c, "ids"), i, id)
		json_array_append(list, id);
}

/* A case inserted before others: coverage and skip counts again, in the cases' order. */
static void rebuild_derived(tr_report *rep)
{
	json_t *by = json_object_get(json_object_get(rep->root, "summary"), "skipped_by_reason");
	json_t *c;
	size_t i;

	json_object_clear(rep->coverage);
	json_object_clear(by);
	json_array_foreach(rep->cases, i, c) {
		add_coverage(rep, c);
		if (!strcmp(jstr(c, "status"), "skipped")) {
			const char *why = jstr(c, "skip_reason");

			json_object_set_new(by, why, json_integer(json_integer_value(
				json_object_get(by, why)) + 1));
		}
	}
}

void tr_case_result_name(const tr_case_result *res, char *name, size_t len)
{
	size_t off = 0;

	name[0] = '\0';
	for (size_t i = 0; i < res->n_ids && off < len; i++) {
		off += (size_t)snprintf(name + off, len - off, "%s ", res->ids[i]);
		if (off >= len)
			off = len - 1;
	}
	snprintf(name + off, len - off, "%s [%s/%s]", res->title ? res->title : "",
		 res->kind, res->algorithm);
}

int tr_report_set(tr_report *rep, const char *key, json_t *value)
{
	if (!value || json_object_set_new(rep->root, key, value) < 0)
		return tr_error_set(TR_ENOMEM, "out of memory");
	return 0;
}

/*
 * Why a case is skipped, by name: the README's table "Why a case is
 * skipped" has one row per name. First match of the skip message wins.
 */
static const struct {
	const char *match, *name;
} skip_reasons[] = {
	{ "C_GenerateKeyPair: CKR_FUNCTION_NOT_SUPPORTED", "opensc-no-keygen" },
	{ "C_CreateObject(certificate): CKR_FUNCTION_NOT_SUPPORTED", "opensc-no-cert-write" },
	{ "takes no SM2 or P-256 key", "card-keeps-its-algorithm" },
	{ "; algorithms ", "scenario-algorithms" },
	{ "the scenario is for kinds ", "scenario-kinds" },
	{ "has no token of profile", "no-token-of-profile" },
	{ "has no control", "card-control-missing" },
	{ "cannot pull, fault or slow a token it did not make", "foreign-no-controls" },
	{ "no virtual cards in this run", "no-cards" },
};

const char *tr_skip_reason_name(const char *message)
{
	for (size_t i = 0; message && i < sizeof(skip_reasons) / sizeof(skip_reasons[0]); i++)
		if (strstr(message, skip_reasons[i].match))
			return skip_reasons[i].name;
	return "other";
}

int tr_report_print_skips(const tr_report *rep, FILE *out)
{
	json_t *by = json_object_get(json_object_get(rep->root, "summary"), "skipped_by_reason");
	const char *name;
	json_t *n;

	if (!json_object_size(by))
		return 0;
	fprintf(out, "\n%-28s %7s\n", "skipped because", "cases");
	json_object_foreach(by, name, n)
		fprintf(out, "%-28s %7lld\n", name, (long long)json_integer_value(n));
	return 0;
}

int tr_report_add(tr_report *rep, const tr_case_result *res)
{
	return tr_report_add_at(rep, rep->n_orders ? rep->orders[rep->n_orders - 1] + 1 : 0, res);
}

int tr_report_add_at(tr_report *rep, size_t order, const tr_case_result *res)
{
	json_t *c, *ids = json_array(), *summary = json_object_get(rep->root, "summary");
	const char *st = tr_case_status_name(res->status);
	case_text text;
	char name[1024];
	size_t at;
	int error;

	for (size_t i = 0; i < res->n_ids; i++)
		json_array_append_new(ids, json_string(res->ids[i]));
	tr_case_result_name(res, name, sizeof(name));
	if (rep->n_orders == rep->cap_orders) {
		size_t cap = rep->cap_orders ? 2 * rep->cap_orders : 256;
		size_t *grown = realloc(rep->orders, cap * sizeof(*grown));
		case_text *texts;

		if (grown)
			rep->orders = grown;
		if (!grown || !(texts = realloc(rep->texts, cap * sizeof(*texts)))) {
			json_decref(ids);
			return tr_error_set(TR_ENOMEM, "out of memory");
		}
		rep->texts = texts;
		rep->cap_orders = cap;
	}

	c = json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:f}",
		      "name", name, "ids", ids, "title", res->title ? res->title : "",
		      "scenario", res->scenario ? res->scenario : "", "portal", res->portal,
		      "kind", res->kind, "algorithm", res->algorithm, "status", st,
		      "duration_ms", res->duration_ms);
	if (!c)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (res->message)
		json_object_set_new(c, "message", json_string(res->message));
	if (res->step) {
		json_object_set_new(c, "step", json_string(res->step));
		json_object_set_new(c, "expected", json_string(res->expected ? res->expected : ""));
		json_object_set_new(c, "actual", json_string(res->actual ? res->actual : ""));
	}
	if (res->status == TR_CASE_FAILED || res->status == TR_CASE_ERROR) {
		char code[128];

		if (answer_code(res->actual ? res->actual : "", code, sizeof(code)))
			json_object_set_new(c, "code", json_string(code));
	}
	/* What a failure or skip did before it: passed cases stay short. */
	if (res->status != TR_CASE_PASSED && json_array_size(res->log))
		json_object_set_new(c, "log", json_deep_copy(res->log));
	if (json_array_size(res->warnings)) {
		json_object_set_new(c, "warnings", json_deep_copy(res->warnings));
		json_object_set_new(summary, "warnings",
				    json_integer(json_integer_value(json_object_get(summary,
									   "warnings")) +
						 (json_int_t)json_array_size(res->warnings)));
	}
	if (res->status == TR_CASE_SKIPPED) {
		json_t *by = json_object_get(summary, "skipped_by_reason");
		const char *why = tr_skip_reason_name(res->message);

		json_object_set_new(c, "skip_reason", json_string(why));
		json_object_set_new(by, why, json_integer(json_integer_value(json_object_get(by,
											    why)) + 1));
	}
	if ((error = case_text_make(rep, c, &text)) < 0) {
		json_decref(c);
		return error;
	}
	/* Its place in the case list: usually the end. */
	for (at = rep->n_orders; at > 0 && rep->orders[at - 1] > order; at--)
		;
	memmove(rep->orders + at + 1, rep->orders + at, (rep->n_orders - at) * sizeof(*rep->orders));
	memmove(rep->texts + at + 1, rep->texts + at, (rep->n_orders - at) * sizeof(*rep->texts));
	rep->orders[at] = order;
	rep->texts[at] = text;
	rep->n_orders++;
	json_array_insert_new(rep->cases, at, c);
	json_object_set_new(summary, st,
			    json_integer(json_integer_value(json_object_get(summary, st)) + 1));
	if (at + 1 < rep->n_orders)
		rebuild_derived(rep);
	else
		add_coverage(rep, c);
	/* Every case, as it comes: crash-safe (rename), fsync'd at the end only. */
	return write_all(rep, 0);
}

int tr_report_set_latency(tr_report *rep, const char *kind, const char *algorithm,
			  const char *stage, const tr_summary *s)
{
	return tr_report_set_latency_at(rep, NULL, kind, algorithm, stage, s);
}

int tr_report_set_latency_at(tr_report *rep, const char *portal, const char *kind,
			     const char *algorithm, const char *stage, const tr_summary *s)
{
	json_t *row = json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
				"kind", kind, "algorithm", algorithm, "stage", stage,
				"n", (json_int_t)s->n, "min_us", s->min / 1e3,
				"p50_us", s->p50 / 1e3, "p90_us", s->p90 / 1e3,
				"p95_us", s->p95 / 1e3, "p99_us", s->p99 / 1e3,
				"max_us", s->max / 1e3, "mean_us", s->mean / 1e3,
				"stddev_us", s->stddev / 1e3);

	if (!row)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (portal)
		json_object_set_new(row, "portal", json_string(portal));
	return json_array_append_new(rep->latency, row) == 0 ? 0 :
	       tr_error_set(TR_ENOMEM, "out of memory");
}

int tr_report_interrupted(tr_report *rep, int sig, size_t after_cases)
{
	char other[32];
	const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" :
			   sig == SIGHUP ? "SIGHUP" : other;

	snprintf(other, sizeof(other), "signal %d", sig);
	if (json_object_set_new(rep->root, "interrupted",
				json_pack("{s:s, s:I}", "signal", name, "after_cases",
					  (json_int_t)after_cases)) < 0)
		return tr_error_set(TR_ENOMEM, "out of memory");
	return write_all(rep, 1);
}

int tr_report_finish(tr_report *rep, double wall_s)
{
	char finished[32];

	iso_now(finished, sizeof(finished));
	json_object_set_new(rep->root, "finished", json_string(finished));
	json_object_set_new(rep->root, "wall_s", json_real(wall_s));
	return write_all(rep, 1);
}

int tr_report_write_doc(json_t *root, const char *out_dir)
{
	tr_report rep = { .root = json_copy(root) };
	size_t i, n;
	int error;

	rep.cases = json_incref(json_object_get(root, "cases"));
	n = json_array_size(rep.cases);
	if (!rep.root || (n && !(rep.texts = calloc(n, sizeof(*rep.texts))))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	json_object_del(rep.root, "cases");
	if ((error = tr_fs_mkdirs(out_dir, 0755)) < 0 ||
	    (error = tr_fs_join(rep.json_path, sizeof(rep.json_path), out_dir,
				"results.json")) < 0 ||
	    (error = tr_fs_join(rep.junit_path, sizeof(rep.junit_path), out_dir,
				"junit.xml")) < 0)
		goto out;
	for (i = 0; i < n; i++)
		if ((error = case_text_make(&rep, json_array_get(rep.cases, i), &rep.texts[i])) < 0)
			goto out;
	rep.start_ns = tr_clock_ns();
	error = write_all(&rep, 1);
out:
	texts_free(&rep);
	json_decref(rep.root);
	json_decref(rep.cases);
	return error;
}
