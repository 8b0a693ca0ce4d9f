#include "harness/report.h"

#include "common/error.h"
#include "common/fsutil.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tr_report {
	char json_path[4096];
	char junit_path[4096];
	json_t *root;      /* the whole results.json document */
	json_t *cases;     /* root.cases */
	json_t *coverage;  /* root.coverage[portal][kind/alg][status] = [ids] */
	json_t *latency;   /* root.latency */
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
	rep->root = json_pack("{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i}, s:[], s:{}, s:[]}",
			      "schema", "tokenrig-results/1", "started", started,
			      "summary", "passed", 0, "failed", 0, "skipped", 0, "error", 0,
			      "warnings", 0,
			      "cases", "coverage", "latency");
	if (!rep->root) {
		free(rep);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	rep->cases = json_object_get(rep->root, "cases");
	rep->coverage = json_object_get(rep->root, "coverage");
	rep->latency = json_object_get(rep->root, "latency");
	*out = rep;
	return 0;
}

void tr_report_free(tr_report *rep)
{
	if (!rep)
		return;
	json_decref(rep->root);
	free(rep);
}

/* --- JUnit ---------------------------------------------------------- */

typedef struct buf {
	char *data;
	size_t len, cap;
	int oom;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->data, cap))) {
			b->oom = 1;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_fmt(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* XML-escapes s; control characters XML 1.0 forbids become '?'. */
static void buf_xml(buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': buf_str(b, "&amp;"); break;
		case '<': buf_str(b, "&lt;"); break;
		case '>': buf_str(b, "&gt;"); break;
		case '"': buf_str(b, "&quot;"); break;
		case '\'': buf_str(b, "&apos;"); break;
		default:
			if (c < 0x20 && c != '\n' && c != '\t' && c != '\r')
				buf_add(b, "?", 1);
			else
				buf_add(b, s, 1);
		}
	}
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/*
 * JUnit has no warning element: a warning is a property of the case (for
 * tools) and a line of its output (what CI pages show), on passed cases too.
 */
static void junit_warnings(buf *b, json_t *warnings)
{
	size_t i;
	json_t *w;

	if (!json_array_size(warnings))
		return;
	buf_str(b, "      <properties>\n");
	json_array_foreach(warnings, i, w) {
		buf_str(b, "        <property name=\"warning\" value=\"");
		buf_xml(b, jstr(w, "message"));
		buf_str(b, "\"/>\n");
	}
	buf_str(b, "      </properties>\n      <system-out>");
	json_array_foreach(warnings, i, w) {
		buf_str(b, "WARNING (step: ");
		buf_xml(b, jstr(w, "step"));
		buf_str(b, "): ");
		buf_xml(b, jstr(w, "message"));
		buf_str(b, "\n");
	}
	buf_str(b, "</system-out>\n");
}

/* One <testsuite> per portal + token kind/algorithm, in order of appearance. */
static int write_junit(tr_report *rep)
{
	json_t *suites = json_object(), *summary = json_object_get(rep->root, "summary");
	const char *suite_name;
	json_t *members;
	size_t i;
	json_t *c;
	buf b = { 0 };
	int error;

	json_array_foreach(rep->cases, i, c) {
		char name[256];

		snprintf(name, sizeof(name), "%s %s/%s", jstr(c, "portal"), jstr(c, "kind"),
			 jstr(c, "algorithm"));
		if (!json_object_get(suites, name))
			json_object_set_new(suites, name, json_array());
		json_array_append(json_object_get(suites, name), c);
	}

	buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	buf_fmt(&b, "<testsuites name=\"tokenrig\" tests=\"%zu\" failures=\"%lld\" errors=\"%lld\" skipped=\"%lld\">\n",
		json_array_size(rep->cases),
		json_integer_value(json_object_get(summary, "failed")),
		json_integer_value(json_object_get(summary, "error")),
		json_integer_value(json_object_get(summary, "skipped")));
	json_object_foreach(suites, suite_name, members) {
		size_t failures = 0, errors = 0, skipped = 0;
		double time_s = 0;

		json_array_foreach(members, i, c) {
			const char *st = jstr(c, "status");

			failures += !strcmp(st, "failed");
			errors += !strcmp(st, "error");
			skipped += !strcmp(st, "skipped");
			time_s += json_real_value(json_object_get(c, "duration_ms")) / 1000.0;
		}
		buf_str(&b, "  <testsuite name=\"");
		buf_xml(&b, suite_name);
		buf_fmt(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
			json_array_size(members), failures, errors, skipped, time_s);
		json_array_foreach(members, i, c) {
			const char *st = jstr(c, "status");

			buf_str(&b, "    <testcase classname=\"");
			buf_xml(&b, jstr(c, "portal"));
			buf_str(&b, ".");
			buf_xml(&b, jstr(c, "kind"));
			buf_str(&b, ".");
			buf_xml(&b, jstr(c, "algorithm"));
			buf_str(&b, "\" name=\"");
			buf_xml(&b, jstr(c, "name"));
			buf_fmt(&b, "\" time=\"%.3f\"",
				json_real_value(json_object_get(c, "duration_ms")) / 1000.0);
			if (!strcmp(st, "passed") && !json_array_size(json_object_get(c, "warnings"))) {
				buf_str(&b, "/>\n");
				continue;
			}
			buf_str(&b, ">\n");
			junit_warnings(&b, json_object_get(c, "warnings"));
			if (!strcmp(st, "passed")) {
				buf_str(&b, "    </testcase>\n");
				continue;
			}
			buf_str(&b, "      <");
			buf_str(&b, !strcmp(st, "skipped") ? "skipped" :
				    !strcmp(st, "failed") ? "failure" : "error");
			buf_str(&b, " message=\"");
			buf_xml(&b, jstr(c, "message"));
			buf_str(&b, "\">");
			if (json_object_get(c, "step")) {
				buf_str(&b, "step: ");
				buf_xml(&b, jstr(c, "step"));
				buf_str(&b, "\nexpected: ");
				buf_xml(&b, jstr(c, "expected"));
				buf_str(&b, "\nactual: ");
				buf_xml(&b, jstr(c, "actual"));
			}
			buf_fmt(&b, "</%s>\n    </testcase>\n",
				!strcmp(st, "skipped") ? "skipped" :
				!strcmp(st, "failed") ? "failure" : "error");
		}
		buf_str(&b, "  </testsuite>\n");
	}
	buf_str(&b, "</testsuites>\n");
	json_decref(suites);
	if (b.oom) {
		free(b.data);
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", rep->junit_path);
	}
	error = tr_fs_write_atomic(rep->junit_path, b.data, b.len, 0644);
	free(b.data);
	return error;
}

static int write_all(tr_report *rep)
{
	char *text = json_dumps(rep->root, JSON_INDENT(1));
	int error;

	if (!text)
		return tr_error_set(TR_ENOMEM, "out of memory writing %s", rep->json_path);
	error = tr_fs_write_atomic(rep->json_path, text, strlen(text), 0644);
	free(text);
	if (error < 0)
		return error;
	return write_junit(rep);
}

static void add_coverage(tr_report *rep, const tr_case_result *res)
{
	char column[64];
	json_t *portal, *col, *list;

	snprintf(column, sizeof(column), "%s/%s", res->kind, res->algorithm);
	if (!(portal = json_object_get(rep->coverage, res->portal)))
		json_object_set_new(rep->coverage, res->portal, portal = json_object());
	if (!(col = json_object_get(portal, column)))
		json_object_set_new(portal, column,
				    col = json_pack("{s:[], s:[], s:[], s:[]}", "passed",
						    "failed", "skipped", "error"));
	list = json_object_get(col, tr_case_status_name(res->status));
	for (size_t i = 0; i < res->n_ids; i++)
		json_array_append_new(list, json_string(res->ids[i]));
}

int tr_report_add(tr_report *rep, const tr_case_result *res)
{
	json_t *c, *ids = json_array(), *summary = json_object_get(rep->root, "summary");
	const char *st = tr_case_status_name(res->status);
	char name[1024];
	size_t off = 0;

	for (size_t i = 0; i < res->n_ids; i++) {
		json_array_append_new(ids, json_string(res->ids[i]));
		off += (size_t)snprintf(name + off, sizeof(name) - off, "%s ", res->ids[i]);
		if (off >= sizeof(name))
			off = sizeof(name) - 1;
	}
	snprintf(name + off, sizeof(name) - off, "%s [%s/%s]", res->title ? res->title : "",
		 res->kind, res->algorithm);

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
	if (json_array_size(res->warnings)) {
		json_object_set_new(c, "warnings", json_deep_copy(res->warnings));
		json_object_set_new(summary, "warnings",
				    json_integer(json_integer_value(json_object_get(summary,
									   "warnings")) +
						 (json_int_t)json_array_size(res->warnings)));
	}
	json_array_append_new(rep->cases, c);
	json_object_set_new(summary, st,
			    json_integer(json_integer_value(json_object_get(summary, st)) + 1));
	if (res->n_ids)
		add_coverage(rep, res);
	return write_all(rep);
}

int tr_report_set_latency(tr_report *rep, const char *kind, const char *algorithm,
			  const char *stage, const tr_summary *s)
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
	return json_array_append_new(rep->latency, row) == 0 ? 0 :
	       tr_error_set(TR_ENOMEM, "out of memory");
}

int tr_report_finish(tr_report *rep, double wall_s)
{
	char finished[32];

	iso_now(finished, sizeof(finished));
	json_object_set_new(rep->root, "finished", json_string(finished));
	json_object_set_new(rep->root, "wall_s", json_real(wall_s));
	return write_all(rep);
}
