#include "harness/compare.h"

#include "common/error.h"
#include "harness/bench.h"
#include "harness/stats.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *tr_verdict_name(tr_verdict v)
{
	switch (v) {
	case TR_FASTER: return "faster";
	case TR_SLOWER: return "SLOWER";
	case TR_UNDECIDED: return "undecided";
	case TR_BUSY: return "inconclusive: the machine was busy";
	default: return "no change";
	}
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The shorth of n logs: the shortest interval holding n/2 + 1 of them. Its
 * midpoint is the centre, its length / 1.349 the spread (for a normal
 * sample the shortest half spans 1.349 sd). Unlike the median and the MAD it
 * stays on the undisturbed rounds even when nearly half are disturbed.
 */
static int log_shorth(const double *v, size_t n, double *centre, double *sd)
{
	size_t h = n / 2 + 1, best = 0;
	double *l;

	*centre = *sd = 0;
	if (!n || !(l = calloc(n, sizeof(*l))))
		return TR_ENOMEM;
	for (size_t i = 0; i < n; i++)
		l[i] = log(v[i] > 0 ? v[i] : 1e-300);
	qsort(l, n, sizeof(*l), cmp_dbl);
	for (size_t i = 1; i + h <= n; i++)
		if (l[i + h - 1] - l[i] < l[best + h - 1] - l[best])
			best = i;
	*centre = (l[best] + l[best + h - 1]) / 2;
	*sd = (l[best + h - 1] - l[best]) / 1.349;
	free(l);
	return 0;
}

/* Marks the values further from their run's centre than "far" allows. */
static void mark_far(const double *v, size_t n, unsigned char *mark)
{
	double centre, sd, far;

	if (!v || log_shorth(v, n, &centre, &sd) < 0)
		return;
	far = fmax(TR_BUSY_K * sd, log1p(TR_BUSY_FLOOR));
	for (size_t i = 0; i < n; i++)
		if (fabs(log(v[i] > 0 ? v[i] : 1e-300) - centre) > far)
			mark[i] = 1;
}

size_t tr_compare_disturbed(const double *ref, const double *own, size_t n, unsigned char *mark)
{
	size_t marked = 0;

	memset(mark, 0, n);
	if (n < 4)
		return 0; /* too few rounds to tell an odd one from the rest */
	mark_far(ref, n, mark);
	mark_far(own, n, mark);
	for (size_t i = 0; i < n; i++)
		marked += mark[i];
	return marked;
}

tr_verdict tr_compare_levels(const double *base, size_t nb, const double *new_v, size_t nn,
			     const tr_compare_opts *opts, tr_compare_result *res)
{
	double mb = 0, mn = 0, ss = 0, d, se, t;
	size_t df = nb + nn >= 2 ? nb + nn - 2 : 0;

	res->change = 0;
	res->low = -1;
	res->high = INFINITY;
	res->p = 1;
	if (!nb || !nn)
		return TR_UNDECIDED;
	for (size_t i = 0; i < nb; i++)
		mb += log(base[i] > 0 ? base[i] : 1e-300) / (double)nb;
	for (size_t i = 0; i < nn; i++)
		mn += log(new_v[i] > 0 ? new_v[i] : 1e-300) / (double)nn;
	d = mn - mb;
	res->change = exp(d) - 1;
	if (!df)
		return TR_UNDECIDED;
	for (size_t i = 0; i < nb; i++)
		ss += pow(log(base[i] > 0 ? base[i] : 1e-300) - mb, 2);
	for (size_t i = 0; i < nn; i++)
		ss += pow(log(new_v[i] > 0 ? new_v[i] : 1e-300) - mn, 2);
	se = sqrt(ss / (double)df * (1.0 / (double)nb + 1.0 / (double)nn));
	t = tr_stats_t_quantile(1 - opts->alpha / 2, (double)df);
	res->low = exp(d - t * se) - 1;
	res->high = exp(d + t * se) - 1;
	res->p = se > 0 ? 2 * (1 - tr_stats_t_cdf(fabs(d) / se, (double)df)) : (d ? 0 : 1);
	if (!opts->normalize &&
	    fabs(tr_stats_median(new_v, nn) - tr_stats_median(base, nb)) < opts->min_us * 1e3)
		return TR_NO_CHANGE;
	if (res->low > opts->threshold)
		return TR_SLOWER;
	if (res->high < -opts->threshold)
		return TR_FASTER;
	return TR_NO_CHANGE;
}

/*
 * Where a metric's rounds end: its "rounds" (samples per round) or, in files
 * written before that field, params.rounds equal parts. 0 or TR_EPARSE.
 */
static int round_sizes(json_t *root, const char *path, const char *name, json_t *m,
		       size_t **sizes, size_t *n_rounds)
{
	json_t *rounds = json_object_get(m, "rounds"), *v;
	size_t n = json_array_size(json_object_get(m, "samples_ns")), sum = 0, i;

	*sizes = NULL;
	*n_rounds = 0;
	if (rounds) {
		if (!json_is_array(rounds) || json_array_size(rounds) == 0)
			return tr_error_set(TR_EPARSE, "%s: metric %s: \"rounds\" is not a list of "
					    "sample counts", path, name);
		*n_rounds = json_array_size(rounds);
	} else {
		json_int_t r = json_integer_value(json_object_get(json_object_get(root, "params"),
								  "rounds"));

		if (r <= 0 || n % (size_t)r)
			return tr_error_set(TR_EPARSE, "%s: metric %s: no \"rounds\", and params.rounds "
					    "does not divide its %zu samples", path, name, n);
		*n_rounds = (size_t)r;
	}
	if (!(*sizes = malloc(*n_rounds * sizeof(**sizes))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (i = 0; i < *n_rounds; i++) {
		json_int_t k = (json_int_t)(n / *n_rounds);

		if (rounds) {
			v = json_array_get(rounds, i);
			k = json_is_integer(v) ? json_integer_value(v) : 0;
		}
		if (k <= 0) {
			free(*sizes);
			*sizes = NULL;
			return tr_error_set(TR_EPARSE, "%s: metric %s: rounds[%zu] is not a positive "
					    "integer", path, name, i);
		}
		(*sizes)[i] = (size_t)k;
		sum += (size_t)k;
	}
	if (sum != n) {
		free(*sizes);
		*sizes = NULL;
		return tr_error_set(TR_EPARSE, "%s: metric %s: its rounds hold %zu samples, "
				    "\"samples_ns\" %zu", path, name, sum, n);
	}
	return 0;
}

/*
 * How many rounds each run of a metric holds: its "runs" (written by
 * `bench --runs`), else one run of all its rounds. 0 or TR_EPARSE.
 */
static int run_lengths(const char *path, const char *name, json_t *m, size_t n_rounds,
		       size_t **lens, size_t *n_runs)
{
	json_t *runs = json_object_get(m, "runs"), *v;
	size_t i, sum = 0;

	*n_runs = runs ? json_array_size(runs) : 1;
	if (runs && (!json_is_array(runs) || !*n_runs))
		return tr_error_set(TR_EPARSE, "%s: metric %s: \"runs\" is not a list of round "
				    "counts", path, name);
	if (!(*lens = malloc(*n_runs * sizeof(**lens))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (!runs) {
		(*lens)[0] = n_rounds;
		return 0;
	}
	json_array_foreach(runs, i, v) {
		json_int_t k = json_is_integer(v) ? json_integer_value(v) : 0;

		if (k <= 0) {
			free(*lens);
			*lens = NULL;
			return tr_error_set(TR_EPARSE, "%s: metric %s: runs[%zu] is not a positive "
					    "integer", path, name, i);
		}
		(*lens)[i] = (size_t)k;
		sum += (size_t)k;
	}
	if (sum != n_rounds) {
		free(*lens);
		*lens = NULL;
		return tr_error_set(TR_EPARSE, "%s: metric %s: its runs hold %zu rounds, \"rounds\" "
				    "%zu", path, name, sum, n_rounds);
	}
	return 0;
}

/* A bench file, checked: schema, metrics, every sample a positive integer, rounds. */
static int load_bench(const char *path, json_t **out)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr), *metrics, *m;
	const char *schema, *name;
	int error = 0;

	*out = NULL;
	if (!root)
		return tr_error_set(TR_EPARSE, "%s:%d:%d: not a bench file: %s", path, jerr.line,
				    jerr.column, jerr.text);
	schema = json_string_value(json_object_get(root, "schema"));
	if (!schema) {
		error = tr_error_set(TR_EPARSE, "%s: no \"schema\": not a tokenrig bench file", path);
		goto out;
	}
	if (strcmp(schema, TR_BENCH_SCHEMA)) {
		error = tr_error_set(TR_EPARSE, "%s: schema \"%s\", this tokenrig reads \"%s\"",
				     path, schema, TR_BENCH_SCHEMA);
		goto out;
	}
	metrics = json_object_get(root, "metrics");
	if (!json_is_object(metrics) || json_object_size(metrics) == 0) {
		error = tr_error_set(TR_EPARSE, "%s: \"metrics\" is missing or empty", path);
		goto out;
	}
	json_object_foreach(metrics, name, m) {
		json_t *samples = json_object_get(m, "samples_ns"), *v;
		size_t i, *sizes, n_rounds;

		if (!json_is_array(samples) || json_array_size(samples) == 0) {
			error = tr_error_set(TR_EPARSE, "%s: metric %s: \"samples_ns\" is missing or empty",
					     path, name);
			goto out;
		}
		json_array_foreach(samples, i, v)
			if (!json_is_integer(v) || json_integer_value(v) <= 0) {
				error = tr_error_set(TR_EPARSE,
						     "%s: metric %s: samples_ns[%zu] is not a positive integer",
						     path, name, i);
				goto out;
			}
		if ((error = round_sizes(root, path, name, m, &sizes, &n_rounds)) < 0)
			goto out;
		free(sizes);
		if ((error = run_lengths(path, name, m, n_rounds, &sizes, &i)) < 0)
			goto out;
		free(sizes);
	}
out:
	if (error < 0)
		json_decref(root);
	else
		*out = root;
	return error;
}

/* One value per round: the round's median, in ns. NULL only without memory. */
static double *round_medians(json_t *root, const char *name, size_t *n)
{
	json_t *m = json_object_get(json_object_get(root, "metrics"), name);
	json_t *arr = json_object_get(m, "samples_ns");
	size_t *sizes = NULL, at = 0, max = 0;
	uint64_t *buf = NULL;
	double *v = NULL;

	*n = 0;
	/* load_bench checked the rounds: this cannot fail but for memory. */
	if (round_sizes(root, "", name, m, &sizes, n) < 0)
		goto fail;
	for (size_t r = 0; r < *n; r++)
		max = sizes[r] > max ? sizes[r] : max;
	if (!(v = malloc(*n * sizeof(*v))) || !(buf = malloc(max * sizeof(*buf))))
		goto fail;
	for (size_t r = 0; r < *n; r++) {
		for (size_t i = 0; i < sizes[r]; i++)
			buf[i] = (uint64_t)json_integer_value(json_array_get(arr, at + i));
		at += sizes[r];
		v[r] = tr_stats_median_ns(buf, sizes[r]);
	}
	free(sizes);
	free(buf);
	return v;
fail:
	free(v);
	free(sizes);
	free(buf);
	return NULL;
}

/*
 * One side of a metric: its round values (divided by the baseline's median
 * of the same round when normalising: the two were sampled interleaved, so
 * what the machine did then cancels out), its runs, the disturbed rounds
 * and one level per run. Rounds, not samples, are the units within a run
 * (samples a few microseconds apart share the machine's state); runs, not
 * rounds, are the units between two files (rounds of one run share its
 * process, portal and caches).
 */
typedef struct side {
	double *raw, *base, *v, *level;
	size_t n, n_runs, *runs, marked;
	unsigned char *mark;
} side;

static void side_free(side *s)
{
	free(s->raw);
	free(s->base);
	free(s->v);
	free(s->level);
	free(s->runs);
	free(s->mark);
	memset(s, 0, sizeof(*s));
}

static int side_load(json_t *root, const char *name, side *s)
{
	json_t *m = json_object_get(json_object_get(root, "metrics"), name);
	const char *bname = json_string_value(json_object_get(m, "baseline"));
	size_t nb = 0;
	int error;

	memset(s, 0, sizeof(*s));
	if (!(s->raw = round_medians(root, name, &s->n)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if (bname && json_object_get(json_object_get(root, "metrics"), bname)) {
		if (!(s->base = round_medians(root, bname, &nb)))
			return tr_error_set(TR_ENOMEM, "out of memory");
		if (nb != s->n) {
			free(s->base);
			s->base = NULL;
		}
	}
	if ((error = run_lengths("", name, m, s->n, &s->runs, &s->n_runs)) < 0)
		return error;
	if (!(s->v = malloc(s->n * sizeof(*s->v))) || !(s->mark = calloc(s->n, 1)) ||
	    !(s->level = malloc(s->n_runs * sizeof(*s->level))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	return 0;
}

/* The round values, the disturbed rounds of each run and the runs' levels. */
static int side_reduce(side *s, int normalize)
{
	double *keep = malloc(s->n * sizeof(*keep));
	size_t at = 0;

	if (!keep)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t r = 0; r < s->n; r++)
		s->v[r] = normalize ? s->raw[r] / s->base[r] : s->raw[r];
	s->marked = 0;
	for (size_t k = 0; k < s->n_runs; k++) {
		size_t len = s->runs[k], kept = 0;

		s->marked += tr_compare_disturbed(s->base ? s->base + at : NULL, s->v + at, len,
						  s->mark + at);
		for (size_t r = at; r < at + len; r++)
			if (!s->mark[r])
				keep[kept++] = s->v[r];
		s->level[k] = kept ? tr_stats_median(keep, kept) : tr_stats_median(s->v + at, len);
		at += len;
	}
	free(keep);
	return 0;
}

/* The geometric mean of the runs' levels: what the change is the ratio of. */
static double geo_mean(const double *v, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += log(v[i] > 0 ? v[i] : 1e-300);
	return n ? exp(sum / (double)n) : 0;
}

/* "run.round" (or "round" in a one-run file) of the disturbed rounds. */
static void name_marked(const side *s, char *buf, size_t len)
{
	size_t at = 0, used = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < s->n_runs; k++) {
		for (size_t r = 0; r < s->runs[k]; r++)
			if (s->mark[at + r] && used + 16 < len) {
				used += (size_t)(s->n_runs > 1 ?
					snprintf(buf + used, len - used, "%s%zu.%zu", used ? "," : "",
						 k + 1, r + 1) :
					snprintf(buf + used, len - used, "%s%zu", used ? "," : "",
						 r + 1));
			}
		at += s->runs[k];
	}
}

/* A warning line naming each bench parameter that differs between the files. */
static int warn_params(json_t *a, json_t *b, const char *pa, const char *pb, FILE *out)
{
	json_t *pa_o = json_object_get(a, "params"), *pb_o = json_object_get(b, "params"), *v;
	const char *key;
	int differ = 0;

	json_object_foreach(pa_o, key, v) {
		json_t *w = json_object_get(pb_o, key);
		char *x, *y;

		if (w && json_equal(v, w))
			continue;
		x = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		y = w ? json_dumps(w, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		fprintf(out, "%s%s %s vs %s", differ++ ? ", " : "warning: the files were made with "
			"different bench parameters: ", key, x ? x : "?", y ? y : "(none)");
		free(x);
		free(y);
	}
	json_object_foreach(pb_o, key, v)
		if (!json_object_get(pa_o, key)) {
			char *y = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

			fprintf(out, "%s%s (none) vs %s", differ++ ? ", " : "warning: the files were made "
				"with different bench parameters: ", key, y ? y : "?");
			free(y);
		}
	if (differ)
		fprintf(out, " (%s against %s): the comparison may show the difference of setup\n",
			pb, pa);
	return differ;
}

int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, tr_compare_summary *sum)
{
	json_t *base = NULL, *new_doc = NULL, *bm, *nm, *m;
	const char *name;
	int error;

	memset(sum, 0, sizeof(*sum));
	if ((error = load_bench(base_path, &base)) < 0 || (error = load_bench(new_path, &new_doc)) < 0)
		goto out;
	bm = json_object_get(base, "metrics");
	nm = json_object_get(new_doc, "metrics");
	sum->params_differ = warn_params(base, new_doc, base_path, new_path, out);
	fprintf(out, "%-36s %11s %11s %8s %17s %5s  %s\n", "metric", "base", "new", "change",
		"interval", "runs", "verdict");
	json_object_foreach(bm, name, m) {
		side a, b;
		tr_compare_result res;
		tr_compare_opts o = *opts;
		tr_verdict v;
		int norm, gated;
		double scale;
		char runs[24], interval[48], where[2][160], note[400] = "";

		if (!json_object_get(nm, name)) {
			fprintf(out, "%-36s only in %s\n", name, base_path);
			continue;
		}
		if ((error = side_load(base, name, &a)) < 0 || (error = side_load(new_doc, name, &b)) < 0) {
			side_free(&a);
			side_free(&b);
			goto out;
		}
		/* Normalised: a metric without a baseline (on either side) measures the machine. */
		norm = opts->normalize && a.base && b.base;
		gated = !opts->normalize || norm;
		o.normalize = norm;
		if ((error = side_reduce(&a, norm)) < 0 || (error = side_reduce(&b, norm)) < 0) {
			side_free(&a);
			side_free(&b);
			goto out;
		}
		v = tr_compare_levels(a.level, a.n_runs, b.level, b.n_runs, &o, &res);
		/* A machine too busy to trust outranks any verdict, a real one included. */
		if (a.marked > TR_BUSY_SHARE * (double)a.n || b.marked > TR_BUSY_SHARE * (double)b.n) {
			name_marked(&a, where[0], sizeof(where[0]));
			name_marked(&b, where[1], sizeof(where[1]));
			snprintf(note, sizeof(note), " (rounds %s%s%s%s%s)", a.marked ? "base " : "",
				 where[0], a.marked && b.marked ? "; " : "", b.marked ? "new " : "",
				 where[1]);
			v = TR_BUSY;
		} else if (v == TR_UNDECIDED) {
			snprintf(note, sizeof(note), ": one run a side, no run-to-run spread (bench "
				 "--runs 3)");
		} else if (a.marked + b.marked) {
			snprintf(note, sizeof(note), " (%zu disturbed round(s) left out)",
				 a.marked + b.marked);
		}
		scale = norm ? 1e-2 : 1e3;
		snprintf(runs, sizeof(runs), "%zu/%zu", a.n_runs, b.n_runs);
		if (isinf(res.high) || v == TR_BUSY)
			snprintf(interval, sizeof(interval), "-");
		else
			snprintf(interval, sizeof(interval), "[%+.1f, %+.1f]%%", res.low * 100,
				 res.high * 100);
		fprintf(out, "%-36s %9.2f%s %9.2f%s %+7.1f%% %17s %5s  %s%s%s\n", name,
			geo_mean(a.level, a.n_runs) / scale, norm ? "% " : "us",
			geo_mean(b.level, b.n_runs) / scale, norm ? "% " : "us",
			res.change * 100, interval, runs, tr_verdict_name(v), note,
			gated ? "" : " (baseline, not gated)");
		if (gated) {
			sum->slower += v == TR_SLOWER;
			sum->faster += v == TR_FASTER;
			sum->busy += v == TR_BUSY;
			sum->undecided += v == TR_UNDECIDED;
		}
		sum->compared++;
		side_free(&a);
		side_free(&b);
	}
	json_object_foreach(nm, name, m)
		if (!json_object_get(bm, name))
			fprintf(out, "%-36s only in %s\n", name, new_path);
	if (!sum->compared) {
		error = tr_error_set(TR_EPARSE, "%s and %s have no metric in common", base_path,
				     new_path);
		goto out;
	}
	fprintf(out, "\n%d metric(s) compared%s; %d significantly slower by more than %.0f%%, %d "
		"faster (the whole %.0f%% interval of the change past it, over runs)\n",
		sum->compared, opts->normalize ? ", relative to each round's baseline" : ", raw times",
		sum->slower, opts->threshold * 100, sum->faster, (1 - opts->alpha) * 100);
	if (sum->busy)
		fprintf(out, "%d metric(s) inconclusive: the machine was busy (more than %.0f%% of a "
			"side's rounds disturbed); not counted as slower\n", sum->busy,
			TR_BUSY_SHARE * 100);
	if (sum->undecided)
		fprintf(out, "%d metric(s) undecided: one run a side says nothing about the spread "
			"between runs; bench with --runs 3 or more\n", sum->undecided);
out:
	json_decref(base);
	json_decref(new_doc);
	return error;
}
