#include "harness/merge.h"

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/report.h"
#include "harness/shard.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/*
 * What every shard of one run shares, a row each: the value at key (and
 * sub-key) must be equal, absent in all or present in all.
 */
static const struct {
	const char *what, *key, *sub;
} same_run[] = {
	{ "number of shards", "shard", "total" },
	{ "suites (suites_sha256)", "suites_sha256", NULL },
	{ "case list (case_list_sha256)", "case_list_sha256", NULL },
	{ "seed", "seed", NULL },
	{ "tokenrig version", "tool", "version" },
	{ "tokenrig revision", "tool", "revision" },
};

/* The latency figures of a row, as results.json names them. */
static const char *const pct_keys[] = { "p50_us", "p90_us", "p95_us", "p99_us" };
static const double pct_q[] = { 0.50, 0.90, 0.95, 0.99 };
#define N_PCT (sizeof(pct_keys) / sizeof(pct_keys[0]))

static json_t *same_run_value(const json_t *doc, size_t row)
{
	json_t *v = json_object_get(doc, same_run[row].key);

	return same_run[row].sub ? json_object_get(v, same_run[row].sub) : v;
}

/* A value for a message: its JSON text, "absent" for none. */
static void value_text(const json_t *v, char *buf, size_t len)
{
	char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

	snprintf(buf, len, "%s", text ? text : "absent");
	free(text);
}

/* The document is a shard's results: schema, shard {index, total}, case list digest. */
static int check_shard(const json_t *doc, const char *label)
{
	json_t *shard = json_object_get(doc, "shard");
	json_int_t index = json_integer_value(json_object_get(shard, "index"));
	json_int_t total = json_integer_value(json_object_get(shard, "total"));

	if (strcmp(jstr(doc, "schema"), "tokenrig-results/1") ||
	    !json_is_array(json_object_get(doc, "cases")))
		return tr_error_set(TR_EINVAL, "%s: not a results file of schema "
				    "tokenrig-results/1", label);
	if (!shard)
		return tr_error_set(TR_EINVAL, "%s: not a shard (the run had no --shard): "
				    "nothing to merge", label);
	if (!json_is_integer(json_object_get(shard, "index")) ||
	    !json_is_integer(json_object_get(shard, "total")) || total < 1 ||
	    total > TR_SHARD_MAX || index < 1 || index > total)
		return tr_error_set(TR_EINVAL, "%s: \"shard\" is not {\"index\": I, \"total\": N} "
				    "with 1 <= I <= N <= %d", label, TR_SHARD_MAX);
	if (strlen(jstr(doc, "case_list_sha256")) != 64)
		return tr_error_set(TR_EINVAL, "%s: no case_list_sha256: cannot tell which run "
				    "the shard belongs to", label);
	return 0;
}

static unsigned shard_index(const json_t *doc)
{
	return (unsigned)json_integer_value(json_object_get(json_object_get(doc, "shard"),
							    "index"));
}

/* --- cases, summary, coverage --------------------------------------------- */

/*
 * The shards' cases in shard order, each shard's in its own: shards by
 * count are contiguous slices of the case list, so this is the unsharded
 * run's order. (Balanced shards interleave columns; junit.xml groups its
 * testsuites by column whatever the order.)
 */
static int merge_cases(json_t *const *docs, const int *by_index, unsigned total, json_t *cases)
{
	for (unsigned k = 1; k <= total; k++)
		if (by_index[k] >= 0 &&
		    json_array_extend(cases, json_object_get(docs[by_index[k]], "cases")) < 0)
			return tr_error_set(TR_ENOMEM, "out of memory");
	return 0;
}

static void count_up(json_t *obj, const char *key, json_int_t by)
{
	json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) +
						   by));
}

/* summary and coverage computed from the cases, as tr_report_add makes them. */
static json_t *summary_of(json_t *cases, json_t *coverage)
{
	json_t *sum = json_pack("{s:i, s:i, s:i, s:i, s:i, s:{}}", "passed", 0, "failed", 0,
				"skipped", 0, "error", 0, "warnings", 0, "skipped_by_reason");
	json_t *by = json_object_get(sum, "skipped_by_reason"), *c;
	size_t i;

	if (!sum)
		return NULL;
	json_array_foreach(cases, i, c) {
		const char *st = jstr(c, "status");
		json_t *portal, *col, *list, *id;
		char column[64];
		size_t k;

		if (json_object_get(sum, st) && strcmp(st, "warnings") &&
		    strcmp(st, "skipped_by_reason"))
			count_up(sum, st, 1);
		count_up(sum, "warnings", (json_int_t)json_array_size(json_object_get(c,
										      "warnings")));
		if (!strcmp(st, "skipped"))
			count_up(by, *jstr(c, "skip_reason") ? jstr(c, "skip_reason") :
				 tr_skip_reason_name(jstr(c, "message")), 1);
		if (!json_array_size(json_object_get(c, "ids")))
			continue;
		snprintf(column, sizeof(column), "%s/%s", jstr(c, "kind"), jstr(c, "algorithm"));
		if (!(portal = json_object_get(coverage, jstr(c, "portal"))))
			json_object_set_new(coverage, jstr(c, "portal"), portal = json_object());
		if (!(col = json_object_get(portal, column)))
			json_object_set_new(portal, column,
					    col = json_pack("{s:[], s:[], s:[], s:[]}", "passed",
							    "failed", "skipped", "error"));
		if (!(list = json_object_get(col, st)))
			continue;
		json_array_foreach(json_object_get(c, "ids"), k, id)
			json_array_append(list, id);
	}
	return sum;
}

/* --- latency -------------------------------------------------------------- */

static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/*
 * A shard's share of samples at or below x: its quantile function taken as
 * linear between the recorded knots min, p50, p90, p95, p99 and max.
 */
static double row_cdf(const json_t *row, double x)
{
	const double qs[] = { 0, 0.50, 0.90, 0.95, 0.99, 1 };
	double xs[6];
	double f = 0;

	xs[0] = num(row, "min_us");
	for (size_t k = 0; k < N_PCT; k++)
		xs[k + 1] = num(row, pct_keys[k]);
	xs[5] = num(row, "max_us");
	for (size_t k = 1; k < 6; k++)
		xs[k] = xs[k] < xs[k - 1] ? xs[k - 1] : xs[k];
	if (x < xs[0])
		return 0;
	for (size_t j = 0; j < 5; j++) {
		if (x >= xs[j + 1]) {
			f = qs[j + 1];
			continue;
		}
		if (x > xs[j])
			f = qs[j] + (qs[j + 1] - qs[j]) * (x - xs[j]) / (xs[j + 1] - xs[j]);
		break;
	}
	return f;
}

/*
 * One row of several shards' rows of a column and stage: n, min, max, mean
 * and the standard deviation exactly; the percentiles from the mixture of
 * the shards' distributions (row_cdf, weighted by n), approximate.
 */
static json_t *merge_rows(json_t *rows)
{
	json_t *first = json_array_get(rows, 0), *out, *r;
	double n = 0, mean = 0, ss = 0, lo = INFINITY, hi = -INFINITY;
	size_t i, used = 0;

	json_array_foreach(rows, i, r) {
		double ni = (double)json_integer_value(json_object_get(r, "n"));

		if (ni <= 0)
			continue;
		used++;
		first = used == 1 ? r : first;
		n += ni;
		mean += ni * num(r, "mean_us");
		lo = fmin(lo, num(r, "min_us"));
		hi = fmax(hi, num(r, "max_us"));
	}
	/* One shard measured it all: its figures are exact. */
	if (used <= 1)
		return json_deep_copy(first);
	mean /= n;
	json_array_foreach(rows, i, r) {
		double ni = (double)json_integer_value(json_object_get(r, "n"));
		double sd = num(r, "stddev_us"), d = num(r, "mean_us") - mean;

		if (ni > 0)
			ss += (ni - 1) * sd * sd + ni * d * d;
	}
	if (!(out = json_deep_copy(first)))
		return NULL;
	json_object_set_new(out, "n", json_integer((json_int_t)n));
	json_object_set_new(out, "min_us", json_real(lo));
	json_object_set_new(out, "max_us", json_real(hi));
	json_object_set_new(out, "mean_us", json_real(mean));
	json_object_set_new(out, "stddev_us", json_real(n > 1 ? sqrt(ss / (n - 1)) : 0));
	for (size_t k = 0; k < N_PCT; k++) {
		double a = lo, b = hi;

		/* The least x with a mixture share >= q. */
		for (int it = 0; it < 100 && b - a > 1e-9 * fmax(1, fabs(b)); it++) {
			double mid = a + (b - a) / 2, f = 0;

			json_array_foreach(rows, i, r) {
				double ni = (double)json_integer_value(json_object_get(r, "n"));

				if (ni > 0)
					f += ni / n * row_cdf(r, mid);
			}
			if (f >= pct_q[k])
				b = mid;
			else
				a = mid;
		}
		json_object_set_new(out, pct_keys[k], json_real(b));
	}
	json_object_set_new(out, "merged_from", json_integer((json_int_t)used));
	json_object_set_new(out, "approximate", json_pack("[s, s, s, s]", pct_keys[0],
							  pct_keys[1], pct_keys[2], pct_keys[3]));
	return out;
}

/* Rows of the same portal, kind, algorithm and stage merged, in order of first appearance. */
static int merge_latency(json_t *const *docs, const int *by_index, unsigned total, json_t *out)
{
	json_t *groups = json_object(), *rows, *r;
	const char *key;
	size_t i;
	int error = 0;

	if (!groups)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (unsigned k = 1; k <= total; k++) {
		if (by_index[k] < 0)
			continue;
		json_array_foreach(json_object_get(docs[by_index[k]], "latency"), i, r) {
			char id[256];

			snprintf(id, sizeof(id), "%s|%s|%s|%s", jstr(r, "portal"), jstr(r, "kind"),
				 jstr(r, "algorithm"), jstr(r, "stage"));
			if (!(rows = json_object_get(groups, id)))
				json_object_set_new(groups, id, rows = json_array());
			json_array_append(rows, r);
		}
	}
	json_object_foreach(groups, key, rows) {
		json_t *row = merge_rows(rows);

		if (!row || json_array_append_new(out, row) < 0) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			break;
		}
	}
	json_decref(groups);
	return error;
}

/* --- the merge ------------------------------------------------------------ */

/* Kept per shard under merged.shards[]: what it ran and what it measured of itself. */
static const char *const per_shard[] = {
	"finished", "wall_s", "command_line", "interrupted", "figures", "restarts",
};

/* Every shard of one run: the rows of same_run equal to the first's. */
static int check_same_run(json_t *const *docs, const char *const *labels, size_t n)
{
	for (size_t d = 1; d < n; d++)
		for (size_t row = 0; row < sizeof(same_run) / sizeof(same_run[0]); row++) {
			json_t *a = same_run_value(docs[0], row), *b = same_run_value(docs[d], row);
			char at[160], bt[160];

			if (a == b || (a && b && json_equal(a, b)))
				continue;
			value_text(a, at, sizeof(at));
			value_text(b, bt, sizeof(bt));
			return tr_error_set(TR_EINVAL, "%s and %s are not shards of one run: %s %s "
					    "vs %s", labels[0], labels[d], same_run[row].what, at,
					    bt);
		}
	return 0;
}

/* Each case in one shard only. */
static int check_overlaps(json_t *const *docs, const char *const *labels, const int *by_index,
			  unsigned total)
{
	json_t *seen = json_object(), *c;
	char first[1200] = "";
	size_t overlaps = 0, i;

	if (!seen)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (unsigned k = 1; k <= total; k++) {
		if (by_index[k] < 0)
			continue;
		json_array_foreach(json_object_get(docs[by_index[k]], "cases"), i, c) {
			const char *name = jstr(c, "name");
			json_t *where = json_object_get(seen, name);

			if (!where) {
				json_object_set_new(seen, name, json_integer(k));
				continue;
			}
			if (!overlaps++) {
				unsigned other = (unsigned)json_integer_value(where);

				snprintf(first, sizeof(first), "case '%s' is in both %s (shard %u/%u) "
					 "and %s (shard %u/%u)", name, labels[by_index[other]],
					 other, total, labels[by_index[k]], k, total);
			}
		}
	}
	json_decref(seen);
	if (overlaps)
		return tr_error_set(TR_EINVAL, "%s%s; %zu case%s in more than one shard: the "
				    "shards chose their cases differently (give every shard the "
				    "same --shard-durations file, or none)", first,
				    overlaps > 1 ? " (and more)" : "", overlaps,
				    overlaps > 1 ? "s are" : " is");
	return 0;
}

/* "1/3 (A), 3/3 (C)": what was given, for the message of a missing shard. */
static void given_text(const char *const *labels, const int *by_index, unsigned total,
		       char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned k = 1; k <= total && off < len; k++) {
		if (by_index[k] < 0)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%u/%u (%s)", off ? ", " : "", k,
					total, labels[by_index[k]]);
	}
}

/* Whether the shards' cases are the whole case list, or what is missing. */
static void completeness(json_t *const *docs, const char *const *labels, const int *by_index,
			 unsigned total, json_t *merged, tr_merge_summary *sum)
{
	json_t *cases = json_object_get(merged, "cases"), *c;
	const char **names;
	char digest[65], given[600];
	size_t i;

	given_text(labels, by_index, total, given, sizeof(given));
	if (sum->missing) {
		char which[256] = "";
		size_t off = 0;
		unsigned shown = 0;

		for (unsigned k = 1; k <= total && off < sizeof(which); k++)
			if (by_index[k] < 0 && shown++ < 20)
				off += (size_t)snprintf(which + off, sizeof(which) - off, "%s%u",
							off ? ", " : "", k);
		snprintf(sum->incomplete, sizeof(sum->incomplete), "shard%s %s of %u %s missing "
			 "(given: %s)", sum->missing > 1 ? "s" : "", which, total,
			 sum->missing > 1 ? "are" : "is", given);
		return;
	}
	for (unsigned k = 1; k <= total; k++) {
		json_t *intr = json_object_get(docs[by_index[k]], "interrupted");

		if (intr) {
			snprintf(sum->incomplete, sizeof(sum->incomplete), "shard %u/%u (%s) was "
				 "interrupted by %s after %lld cases", k, total, labels[by_index[k]],
				 jstr(intr, "signal"),
				 (long long)json_integer_value(json_object_get(intr, "after_cases")));
			return;
		}
	}
	if (!(names = calloc(json_array_size(cases) + 1, sizeof(*names))))
		return;
	json_array_foreach(cases, i, c)
		names[i] = jstr(c, "name");
	if (tr_shard_case_list_digest(names, json_array_size(cases), digest) == 0 &&
	    strcmp(digest, jstr(merged, "case_list_sha256")))
		snprintf(sum->incomplete, sizeof(sum->incomplete), "the shards' %zu cases are not "
			 "the run's case list (case_list_sha256 differs): a shard stopped before "
			 "its last case, or the shards listed their cases differently",
			 json_array_size(cases));
	free(names);
}

/* The header of the whole run: the shards' shared facts, their span, where each came from. */
static int merge_header(json_t *const *docs, const char *const *labels, const int *by_index,
			unsigned total, json_t *merged)
{
	json_t *first = NULL, *shards = json_array(), *missing = json_array(), *d;
	const char *started = NULL, *finished = NULL;
	double wall = 0;
	int all_finished = 1, same_host = 1;
	char hosts[512] = "";

	if (!shards || !missing) {
		json_decref(shards);
		json_decref(missing);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	for (unsigned k = 1; k <= total; k++) {
		json_t *entry;

		if (by_index[k] < 0) {
			json_array_append_new(missing, json_integer(k));
			continue;
		}
		d = docs[by_index[k]];
		if (!first)
			first = d;
		if (!started || strcmp(jstr(d, "started"), started) < 0)
			started = jstr(d, "started");
		if (!json_is_string(json_object_get(d, "finished")))
			all_finished = 0;
		else if (!finished || strcmp(jstr(d, "finished"), finished) > 0)
			finished = jstr(d, "finished");
		wall = fmax(wall, json_number_value(json_object_get(d, "wall_s")));
		if (strcmp(jstr(d, "host"), jstr(first, "host")))
			same_host = 0;
		if (!strstr(hosts, jstr(d, "host")))
			snprintf(hosts + strlen(hosts), sizeof(hosts) - strlen(hosts), "%s%s",
				 *hosts ? "," : "", jstr(d, "host"));
		entry = json_pack("{s:i, s:s, s:s, s:s, s:I}", "index", (int)k, "from",
				  labels[by_index[k]], "host", jstr(d, "host"), "started",
				  jstr(d, "started"), "cases",
				  (json_int_t)json_array_size(json_object_get(d, "cases")));
		if (!entry)
			continue;
		for (size_t p = 0; p < sizeof(per_shard) / sizeof(per_shard[0]); p++)
			if (json_object_get(d, per_shard[p]))
				json_object_set(entry, per_shard[p], json_object_get(d, per_shard[p]));
		json_array_append_new(shards, entry);
	}
	json_object_set_new(merged, "started", json_string(started ? started : ""));
	json_object_set(merged, "tool", json_object_get(first, "tool"));
	json_object_set_new(merged, "host", json_string(same_host ? jstr(first, "host") : hosts));
	if (json_object_get(first, "seed"))
		json_object_set(merged, "seed", json_object_get(first, "seed"));
	if (json_object_get(first, "command_line"))
		json_object_set(merged, "command_line", json_object_get(first, "command_line"));
	if (json_object_get(first, "versions"))
		json_object_set(merged, "versions", json_object_get(first, "versions"));
	json_object_set(merged, "case_list_sha256", json_object_get(first, "case_list_sha256"));
	if (json_object_get(first, "suites_sha256"))
		json_object_set(merged, "suites_sha256", json_object_get(first, "suites_sha256"));
	json_object_set_new(merged, "merged", json_pack("{s:i, s:o, s:o}", "total", (int)total,
							"shards", shards, "missing", missing));
	/* An interrupted shard interrupts the whole. */
	for (unsigned k = 1; k <= total; k++) {
		json_t *intr;

		if (by_index[k] < 0 || !(intr = json_object_get(docs[by_index[k]], "interrupted")))
			continue;
		json_object_set_new(merged, "interrupted", json_pack(
			"{s:s, s:I, s:i}", "signal", jstr(intr, "signal"), "after_cases",
			(json_int_t)json_array_size(json_object_get(merged, "cases")), "shard",
			(int)k));
		break;
	}
	if (all_finished && finished)
		json_object_set_new(merged, "finished", json_string(finished));
	/* The shards ran side by side: the whole took as long as the longest. */
	json_object_set_new(merged, "wall_s", json_real(wall));
	return 0;
}

int tr_merge_docs(json_t *const *docs, const char *const *labels, size_t n, json_t **out,
		  tr_merge_summary *sum)
{
	json_t *merged = NULL, *cases, *coverage, *latency, *summary;
	int *by_index = NULL;
	unsigned total;
	int error;

	memset(sum, 0, sizeof(*sum));
	*out = NULL;
	if (!n)
		return tr_error_set(TR_EINVAL, "no shard results to merge");
	for (size_t d = 0; d < n; d++)
		if ((error = check_shard(docs[d], labels[d])) < 0)
			return error;
	if ((error = check_same_run(docs, labels, n)) < 0)
		return error;
	total = (unsigned)json_integer_value(json_object_get(json_object_get(docs[0], "shard"),
							     "total"));
	if (!(by_index = malloc((total + 1) * sizeof(*by_index))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (unsigned k = 0; k <= total; k++)
		by_index[k] = -1;
	for (size_t d = 0; d < n; d++) {
		unsigned k = shard_index(docs[d]);

		if (by_index[k] >= 0) {
			error = tr_error_set(TR_EINVAL, "shard %u/%u is given twice: %s and %s", k,
					     total, labels[by_index[k]], labels[d]);
			goto out;
		}
		by_index[k] = (int)d;
	}
	if ((error = check_overlaps(docs, labels, by_index, total)) < 0)
		goto out;

	merged = json_pack("{s:s, s:{}, s:[], s:{}, s:[]}", "schema", "tokenrig-results/1",
			   "summary", "cases", "coverage", "latency");
	if (!merged) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	cases = json_object_get(merged, "cases");
	coverage = json_object_get(merged, "coverage");
	latency = json_object_get(merged, "latency");
	if ((error = merge_cases(docs, by_index, total, cases)) < 0 ||
	    (error = merge_latency(docs, by_index, total, latency)) < 0)
		goto out;
	if (!(summary = summary_of(cases, coverage))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(merged, "summary", summary);
	if ((error = merge_header(docs, labels, by_index, total, merged)) < 0)
		goto out;

	sum->total = total;
	sum->given = (unsigned)n;
	sum->missing = total - (unsigned)n;
	sum->cases = json_array_size(cases);
	sum->passed = (long)json_integer_value(json_object_get(summary, "passed"));
	sum->failed = (long)json_integer_value(json_object_get(summary, "failed"));
	sum->skipped = (long)json_integer_value(json_object_get(summary, "skipped"));
	sum->errors = (long)json_integer_value(json_object_get(summary, "error"));
	completeness(docs, labels, by_index, total, merged, sum);
	*out = merged;
	merged = NULL;
out:
	json_decref(merged);
	free(by_index);
	return error;
}

/* --- files ---------------------------------------------------------------- */

/* testsuites@tests of a junit.xml, -1 when it has none. */
static long junit_tests(const char *xml)
{
	const char *p = strstr(xml, "<testsuites"), *t;
	char *end;
	long v;

	if (!p || !(t = strstr(p, " tests=\"")) || t > strchr(p, '>'))
		return -1;
	v = strtol(t + 8, &end, 10);
	return *end == '"' ? v : -1;
}

/* DIR/results.json, checked against DIR/junit.xml: the same run's two files. */
static int read_shard(const char *dir, json_t **out, char *label, size_t label_len)
{
	char path[PATH_MAX], xml_path[PATH_MAX], *xml = NULL;
	json_error_t jerr;
	json_t *doc;
	size_t len, want;
	long tests;
	int error;

	*out = NULL;
	if ((error = tr_fs_join(path, sizeof(path), dir, "results.json")) < 0 ||
	    (error = tr_fs_join(xml_path, sizeof(xml_path), dir, "junit.xml")) < 0)
		return error;
	snprintf(label, label_len, "%s", path);
	if (!(doc = json_load_file(path, 0, &jerr)))
		return tr_error_set(TR_EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
	if ((error = tr_fs_read_all(xml_path, 256u << 20, &xml, &len)) < 0) {
		json_decref(doc);
		return tr_error_set(TR_EINVAL, "%s: %s", xml_path, tr_error_last());
	}
	tests = junit_tests(xml);
	free(xml);
	want = json_array_size(json_object_get(doc, "cases")) +
	       (json_object_get(doc, "interrupted") ? 1 : 0);
	if (tests < 0 || (size_t)tests != want) {
		json_decref(doc);
		if (tests < 0)
			return tr_error_set(TR_EINVAL, "%s: no <testsuites tests=\"N\">: not a "
					    "tokenrig junit.xml", xml_path);
		return tr_error_set(TR_EINVAL, "%s has %ld tests but %s %zu cases: the two files "
				    "are not of the same run", xml_path, tests, path, want);
	}
	*out = doc;
	return 0;
}

int tr_merge_dirs(const char *const *dirs, size_t n, const char *out_dir,
		  tr_merge_summary *sum)
{
	json_t **docs = calloc(n ? n : 1, sizeof(*docs)), *merged = NULL;
	char **labels = calloc(n ? n : 1, sizeof(*labels));
	char out_real[PATH_MAX];
	int error = 0;

	memset(sum, 0, sizeof(*sum));
	if (!docs || !labels) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t d = 0; d < n && !error; d++) {
		char in_real[PATH_MAX];

		if (!(labels[d] = malloc(PATH_MAX))) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			break;
		}
		/* The merge never overwrites a shard's own files. */
		if (realpath(out_dir, out_real) && realpath(dirs[d], in_real) &&
		    !strcmp(out_real, in_real)) {
			error = tr_error_set(TR_EINVAL, "--out %s is the shard folder %s: the merge "
					     "would overwrite it", out_dir, dirs[d]);
			break;
		}
		error = read_shard(dirs[d], &docs[d], labels[d], PATH_MAX);
	}
	if (error < 0 ||
	    (error = tr_merge_docs(docs, (const char *const *)labels, n, &merged, sum)) < 0)
		goto out;
	error = tr_report_write_doc(merged, out_dir);
out:
	for (size_t d = 0; docs && labels && d < n; d++) {
		json_decref(docs[d]);
		free(labels[d]);
	}
	free(docs);
	free(labels);
	json_decref(merged);
	return error;
}
