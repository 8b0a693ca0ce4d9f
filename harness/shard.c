#include "harness/shard.h"

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/scenario.h"

#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Where `--shard auto` finds its shard: one row per CI system, the first
 * row whose variables are set wins. GitHub Actions has no such variables:
 * a workflow sets the rig's own pair from its matrix (ci/examples/).
 */
static const struct ci_vars {
	const char *ci;
	const char *index, *total;
	unsigned base;       /* the index's first value: 0 or 1 */
	int index_optional;  /* the CI leaves the index unset when total is 1 */
} ci_vars[] = {
	{ "tokenrig (GitHub Actions, any CI)", "TOKENRIG_SHARD_INDEX", "TOKENRIG_SHARD_TOTAL", 1, 0 },
	{ "GitLab CI (parallel:)", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1, 1 },
	{ "Buildkite (parallelism:)", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0, 0 },
	{ "CircleCI (parallelism:)", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0, 0 },
};

#define N_CI_VARS (sizeof(ci_vars) / sizeof(ci_vars[0]))

/* A plain decimal number of at most 9 digits: no sign, no spaces, no hex. */
static int parse_uint(const char *s, size_t len, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 9)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static const char *env_value(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int shard_auto(tr_shard *out)
{
	char looked[512] = "";
	size_t off = 0;

	for (size_t r = 0; r < N_CI_VARS; r++) {
		const struct ci_vars *row = &ci_vars[r];
		const char *iv = env_value(row->index), *tv = env_value(row->total);
		unsigned i = 0, t = 0;

		off += (size_t)snprintf(looked + off, sizeof(looked) - off, "%s%s/%s",
					r ? ", " : "", row->index, row->total);
		if (off >= sizeof(looked))
			off = sizeof(looked) - 1;
		if (!iv && !tv)
			continue;
		if (!tv)
			return tr_error_set(TR_EINVAL, "--shard auto: %s is set (%s) but %s is not (%s)",
					    row->index, iv, row->total, row->ci);
		if (parse_uint(tv, strlen(tv), &t) < 0 || t < 1 || t > TR_SHARD_MAX)
			return tr_error_set(TR_EINVAL, "--shard auto: %s='%s' is not a number of "
					    "shards 1..%d (%s)", row->total, tv, TR_SHARD_MAX, row->ci);
		if (!iv) {
			if (row->index_optional && t == 1) {
				out->index = 1;
				out->total = 1;
				return 0;
			}
			return tr_error_set(TR_EINVAL, "--shard auto: %s is set (%s) but %s is not (%s)",
					    row->total, tv, row->index, row->ci);
		}
		if (parse_uint(iv, strlen(iv), &i) < 0 || i < row->base || i - row->base >= t)
			return tr_error_set(TR_EINVAL, "--shard auto: %s='%s' is not a shard index "
					    "%u..%u of %s=%u (%s)", row->index, iv, row->base,
					    t - 1 + row->base, row->total, t, row->ci);
		out->index = i - row->base + 1;
		out->total = t;
		return 0;
	}
	return tr_error_set(TR_EINVAL, "--shard auto: no CI shard variables are set (looked for "
			    "%s); use --shard I/N or set TOKENRIG_SHARD_INDEX (1-based) and "
			    "TOKENRIG_SHARD_TOTAL", looked);
}

int tr_shard_parse(const char *spec, tr_shard *out)
{
	const char *slash;
	unsigned i, n;

	if (!spec || !*spec)
		return tr_error_set(TR_EINVAL, "--shard: empty; expected I/N (e.g. 2/4) or auto");
	if (!strcmp(spec, "auto"))
		return shard_auto(out);
	if (!(slash = strchr(spec, '/')) ||
	    parse_uint(spec, (size_t)(slash - spec), &i) < 0 ||
	    parse_uint(slash + 1, strlen(slash + 1), &n) < 0)
		return tr_error_set(TR_EINVAL, "--shard '%s': expected I/N (e.g. 2/4: the second of "
				    "4 shards) or auto", spec);
	if (n < 1 || n > TR_SHARD_MAX)
		return tr_error_set(TR_EINVAL, "--shard '%s': the number of shards must be 1..%d",
				    spec, TR_SHARD_MAX);
	if (i < 1 || i > n)
		return tr_error_set(TR_EINVAL, "--shard '%s': the shard index must be 1..%u "
				    "(shards count from 1)", spec, n);
	out->index = i;
	out->total = n;
	return 0;
}

/* --- selection ---------------------------------------------------------- */

typedef struct prev_case {
	const char *name;
	int64_t us;    /* duration in whole microseconds: sums are exact */
	size_t order;  /* position in the file, for a stable sort */
} prev_case;

typedef struct weighted {
	const char *name;
	int64_t us;
	size_t index;  /* into names[] */
} weighted;

static int cmp_prev(const void *a, const void *b)
{
	const prev_case *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int cmp_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Longest first; equal durations by name, so every machine sorts alike. */
static int cmp_weighted(const void *a, const void *b)
{
	const weighted *x = a, *y = b;

	if (x->us != y->us)
		return x->us > y->us ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The previous run's durations: sorted by name, first occurrence of a name
 * kept. *median of them all (0 cases: *n_out 0).
 */
static int load_durations(const char *path, json_t **doc_out, prev_case **out, size_t *n_out,
			  int64_t *median)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr), *cases, *c;
	const char *schema;
	prev_case *v = NULL;
	int64_t *sorted = NULL;
	size_t n = 0, i;

	*out = NULL;
	*n_out = 0;
	*median = 0;
	if (!doc && jerr.line < 1)   /* no line: the file could not be read */
		return tr_error_set(TR_EINVAL, "--shard-durations %s: %s", path, jerr.text);
	if (!doc)
		return tr_error_set(TR_EINVAL, "--shard-durations %s:%d: %s", path, jerr.line,
				    jerr.text);
	schema = json_string_value(json_object_get(doc, "schema"));
	cases = json_object_get(doc, "cases");
	if (!schema || strcmp(schema, "tokenrig-results/1") || !json_is_array(cases)) {
		json_decref(doc);
		return tr_error_set(TR_EINVAL, "--shard-durations %s: not a results.json of schema "
				    "tokenrig-results/1", path);
	}
	if (json_array_size(cases) &&
	    (!(v = calloc(json_array_size(cases), sizeof(*v))) ||
	     !(sorted = calloc(json_array_size(cases), sizeof(*sorted))))) {
		free(v);
		json_decref(doc);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	json_array_foreach(cases, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		json_t *d = json_object_get(c, "duration_ms");
		double ms = json_number_value(d);

		/* A case without a usable duration is one the file lacks. */
		if (!name || !json_is_number(d) || !isfinite(ms) || ms < 0 || ms > 1e12)
			continue;
		v[n].name = name;
		v[n].us = (int64_t)llround(ms * 1000.0);
		v[n].order = i;
		sorted[n] = v[n].us;
		n++;
	}
	if (n) {
		size_t k = 0;

		qsort(sorted, n, sizeof(*sorted), cmp_int64);
		*median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
		qsort(v, n, sizeof(*v), cmp_prev);
		for (i = 0; i < n; i++)
			if (!k || strcmp(v[k - 1].name, v[i].name))
				v[k++] = v[i];
		n = k;
	}
	free(sorted);
	*doc_out = doc;
	*out = v;
	*n_out = n;
	return 0;
}

static const prev_case *find_prev(const prev_case *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid].name, name);

		if (!c)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Contiguous slices of the run's order, sizes differing by one at most. */
static void select_by_count(const tr_shard *s, size_t n, unsigned char *keep)
{
	size_t from = (size_t)(((unsigned long long)n * (s->index - 1)) / s->total);
	size_t to = (size_t)(((unsigned long long)n * s->index) / s->total);

	for (size_t i = 0; i < n; i++)
		keep[i] = i >= from && i < to;
}

/*
 * Longest processing time first: each case, longest first, goes to the
 * shard with the least time so far (the lowest index on a tie).
 */
static int select_by_duration(const tr_shard *s, const char *const *names, size_t n,
			      const prev_case *prev, size_t n_prev, int64_t median,
			      unsigned char *keep)
{
	weighted *w = calloc(n ? n : 1, sizeof(*w));
	int64_t *load = calloc(s->total, sizeof(*load));

	if (!w || !load) {
		free(w);
		free(load);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const prev_case *p = find_prev(prev, n_prev, names[i]);

		w[i].name = names[i];
		w[i].us = p ? p->us : median;
		w[i].index = i;
	}
	qsort(w, n, sizeof(*w), cmp_weighted);
	for (size_t i = 0; i < n; i++) {
		unsigned best = 0;

		for (unsigned k = 1; k < s->total; k++)
			if (load[k] < load[best])
				best = k;
		load[best] += w[i].us;
		keep[w[i].index] = best + 1 == s->index;
	}
	free(w);
	free(load);
	return 0;
}

int tr_shard_select(const tr_shard *s, const char *const *names, size_t n,
		    const char *prev_results, unsigned char *keep)
{
	const char **sorted = NULL;
	prev_case *prev = NULL;
	json_t *doc = NULL;
	size_t n_prev = 0;
	int64_t median = 0;
	int error = 0;

	if (s->total == 0) {
		memset(keep, 1, n);
		return 0;
	}
	if (s->total > TR_SHARD_MAX || s->index < 1 || s->index > s->total)
		return tr_error_set(TR_EINVAL, "shard %u/%u: the index must be 1..%u", s->index,
				    s->total, s->total);
	/* Unique names: a name in two places could land in two shards. */
	if (n && !(sorted = malloc(n * sizeof(*sorted))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!names[i]) {
			error = tr_error_set(TR_EINVAL, "shard: case %zu has no name", i);
			goto out;
		}
		sorted[i] = names[i];
	}
	if (n)
		qsort(sorted, n, sizeof(*sorted), cmp_name_ptr);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(sorted[i - 1], sorted[i])) {
			error = tr_error_set(TR_EINVAL, "shard: the case name '%s' is not unique in "
					     "the run", sorted[i]);
			goto out;
		}
	if (prev_results &&
	    (error = load_durations(prev_results, &doc, &prev, &n_prev, &median)) < 0)
		goto out;
	/* A file without durations balances nothing: by count, as without one. */
	if (prev_results && n_prev)
		error = select_by_duration(s, names, n, prev, n_prev, median, keep);
	else
		select_by_count(s, n, keep);
out:
	free(sorted);
	free(prev);
	json_decref(doc);
	return error;
}

/* --- names and digests ---------------------------------------------------- */

static void hex_digest(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[32];
	unsigned dl = 0;

	EVP_DigestFinal_ex(md, d, &dl);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int tr_shard_case_list_digest(const char *const *names, size_t n, char out[65])
{
	const char **sorted = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int error = 0;

	if (!md || (n && !(sorted = malloc(n * sizeof(*sorted))))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = names[i] ? names[i] : "";
	if (n)
		qsort(sorted, n, sizeof(*sorted), cmp_name_ptr);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		error = tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		EVP_DigestUpdate(md, sorted[i], strlen(sorted[i]));
		EVP_DigestUpdate(md, "\n", 1);
	}
	hex_digest(md, out);
out:
	EVP_MD_CTX_free(md);
	free(sorted);
	return error;
}

/* One file into the digest: its path relative to the folder, its size, its bytes. */
static int digest_file(EVP_MD_CTX *md, const char *path, const char *rel)
{
	char *data = NULL, len_text[32];
	size_t len = 0;
	int error;

	if ((error = tr_fs_read_all(path, 64u << 20, &data, &len)) < 0)
		return error;
	snprintf(len_text, sizeof(len_text), "%zu", len);
	EVP_DigestUpdate(md, rel, strlen(rel) + 1);
	EVP_DigestUpdate(md, len_text, strlen(len_text) + 1);
	EVP_DigestUpdate(md, data, len);
	free(data);
	return 0;
}

int tr_shard_suites_digest(const char *suites_dir, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	tr_paths files = { 0 };
	size_t dl = strlen(suites_dir);
	char conf[4096];
	struct stat st;
	int error;

	while (dl > 1 && suites_dir[dl - 1] == '/')
		dl--;
	if (!md)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_scenario_find(suites_dir, &files)) < 0)
		goto out;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		error = tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
		goto out;
	}
	for (size_t i = 0; i < files.n; i++) {
		const char *rel = files.v[i];

		/* Relative, so that two checkouts in different places agree. */
		if (!strncmp(rel, suites_dir, dl) && rel[dl] == '/')
			for (rel += dl; *rel == '/'; rel++)
				;
		if ((error = digest_file(md, files.v[i], rel)) < 0)
			goto out;
	}
	if ((error = tr_fs_join(conf, sizeof(conf), suites_dir, "tokens.conf")) < 0)
		goto out;
	if (stat(conf, &st) == 0 && (error = digest_file(md, conf, "tokens.conf")) < 0)
		goto out;
	hex_digest(md, out);
out:
	EVP_MD_CTX_free(md);
	tr_paths_free(&files);
	return error;
}

int tr_shard_record(tr_report *rep, const tr_shard *s, const char *const *names, size_t n,
		    const char *suites_dir)
{
	char list[65], suites[65];
	int error;

	if ((error = tr_shard_case_list_digest(names, n, list)) < 0 ||
	    (suites_dir && (error = tr_shard_suites_digest(suites_dir, suites)) < 0))
		return error;
	if (s && s->total &&
	    (error = tr_report_set(rep, "shard", json_pack("{s:i, s:i}", "index", (int)s->index,
							   "total", (int)s->total))) < 0)
		return error;
	if ((error = tr_report_set(rep, "case_list_sha256", json_string(list))) < 0)
		return error;
	if (suites_dir && (error = tr_report_set(rep, "suites_sha256", json_string(suites))) < 0)
		return error;
	return 0;
}
