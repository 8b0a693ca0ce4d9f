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
	return v == TR_FASTER ? "faster" : v == TR_SLOWER ? "SLOWER" : "no change";
}

tr_verdict tr_compare_verdict(const double *base, size_t nb, const double *new_v, size_t nn,
			      const tr_compare_opts *opts, tr_compare_result *res)
{
	double *la = malloc((nb ? nb : 1) * sizeof(*la)), *ln = malloc((nn ? nn : 1) * sizeof(*ln));
	double z, est, lo, hi;
	tr_verdict v = TR_NO_CHANGE;
	int positive = la && ln && nb && nn;

	res->change = 0;
	res->low = -1;
	res->high = INFINITY;
	res->p = 1;
	/* Latencies compare by ratio: the shift of their logarithms. */
	for (size_t i = 0; positive && i < nb; i++)
		positive = base[i] > 0 && (la[i] = log(base[i]), 1);
	for (size_t i = 0; positive && i < nn; i++)
		positive = new_v[i] > 0 && (ln[i] = log(new_v[i]), 1);
	if (!positive || tr_stats_mann_whitney(base, nb, new_v, nn, &z, &res->p) < 0 ||
	    tr_stats_shift_ci(la, nb, ln, nn, opts->alpha, &est, &lo, &hi) < 0)
		goto out;
	res->change = exp(est) - 1;
	res->low = exp(lo) - 1;
	res->high = exp(hi) - 1;
	if (!opts->normalize &&
	    fabs(tr_stats_median(new_v, nn) - tr_stats_median(base, nb)) < opts->min_us * 1e3)
		goto out;
	if (res->low > opts->threshold)
		v = TR_SLOWER;
	else if (res->high < -opts->threshold)
		v = TR_FASTER;
out:
	free(la);
	free(ln);
	return v;
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
	}
out:
	if (error < 0)
		json_decref(root);
	else
		*out = root;
	return error;
}

/*
 * One value per round: the round's median, in ns, or divided by the
 * median of the baseline's same round when normalising (the two were
 * sampled interleaved, so what the machine did then cancels out). Rounds,
 * not samples, are the independent units: samples within one round share
 * the machine's state of the moment, and treating them as independent
 * makes any drift "significant". *scaled says whether they were divided.
 */
static double *round_values(json_t *root, const char *name, int normalize, size_t *n,
			    int *scaled)
{
	json_t *metrics = json_object_get(root, "metrics"), *m = json_object_get(metrics, name);
	json_t *arr = json_object_get(m, "samples_ns");
	const char *base = json_string_value(json_object_get(m, "baseline"));
	size_t *sizes = NULL, at = 0, max = 0;
	uint64_t *buf = NULL;
	double *v = NULL, *b = NULL;
	size_t nb;
	int ignored;

	*n = 0;
	*scaled = 0;
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
	if (normalize && base && json_object_get(metrics, base)) {
		if (!(b = round_values(root, base, 0, &nb, &ignored)))
			goto fail;
		if (nb == *n) {
			for (size_t r = 0; r < *n; r++)
				v[r] = b[r] > 0 ? v[r] / b[r] : 0;
			*scaled = 1;
		}
	}
	free(b);
	free(sizes);
	free(buf);
	return v;
fail:
	free(b);
	free(v);
	free(sizes);
	free(buf);
	return NULL;
}

int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, int *slower)
{
	json_t *base = NULL, *new_doc = NULL, *bm, *nm, *m;
	const char *name;
	int error, compared = 0, undecided = 0;

	*slower = 0;
	if ((error = load_bench(base_path, &base)) < 0 || (error = load_bench(new_path, &new_doc)) < 0)
		goto out;
	bm = json_object_get(base, "metrics");
	nm = json_object_get(new_doc, "metrics");
	fprintf(out, "%-36s %11s %11s %8s %17s %7s %8s  %s\n", "metric", "base", "new", "change",
		"interval", "rounds", "p", "verdict");
	json_object_foreach(bm, name, m) {
		size_t nb, nn;
		double *a, *b, scale;
		tr_compare_result res;
		int scaled_a, scaled_b, gated, few;
		tr_compare_opts o = *opts;
		tr_verdict v;
		char rounds[24], interval[48];

		if (!json_object_get(nm, name)) {
			fprintf(out, "%-36s only in %s\n", name, base_path);
			continue;
		}
		a = round_values(base, name, opts->normalize, &nb, &scaled_a);
		b = round_values(new_doc, name, opts->normalize, &nn, &scaled_b);
		if (!a || !b) {
			free(a);
			free(b);
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto out;
		}
		/* Normalised: a metric without a baseline measures the machine. */
		gated = !opts->normalize || (scaled_a && scaled_b);
		if (opts->normalize && scaled_a != scaled_b) {
			/* One side has no baseline: compare the raw times, ungated. */
			free(a);
			free(b);
			a = round_values(base, name, 0, &nb, &scaled_a);
			b = round_values(new_doc, name, 0, &nn, &scaled_b);
			if (!a || !b) {
				free(a);
				free(b);
				error = tr_error_set(TR_ENOMEM, "out of memory");
				goto out;
			}
		}
		o.normalize = scaled_a && scaled_b;
		v = tr_compare_verdict(a, nb, b, nn, &o, &res);
		few = tr_stats_mann_whitney_min_p(nb, nn) >= opts->alpha;
		undecided += few;
		scale = o.normalize ? 1e-2 : 1e3;
		snprintf(rounds, sizeof(rounds), "%zu/%zu", nb, nn);
		if (few)
			snprintf(interval, sizeof(interval), "(undecidable)");
		else
			snprintf(interval, sizeof(interval), "[%+.1f, %+.1f]%%", res.low * 100,
				 res.high * 100);
		fprintf(out, "%-36s %9.2f%s %9.2f%s %+7.1f%% %17s %7s %8.2g  %s%s%s\n", name,
			tr_stats_median(a, nb) / scale, o.normalize ? "% " : "us",
			tr_stats_median(b, nn) / scale, o.normalize ? "% " : "us",
			res.change * 100, interval, rounds, res.p, tr_verdict_name(v),
			gated ? "" : " (baseline, not gated)", few ? " (too few rounds)" : "");
		*slower += gated && v == TR_SLOWER;
		compared++;
		free(a);
		free(b);
	}
	json_object_foreach(nm, name, m)
		if (!json_object_get(bm, name))
			fprintf(out, "%-36s only in %s\n", name, new_path);
	if (!compared) {
		error = tr_error_set(TR_EPARSE, "%s and %s have no metric in common", base_path,
				     new_path);
		goto out;
	}
	fprintf(out, "\n%d metric(s) compared; %d significantly slower by more than %.0f%% "
		"(the whole %.0f%% interval of the change past it; one value per round)\n",
		compared, *slower, opts->threshold * 100, (1 - opts->alpha) * 100);
	if (undecided)
		fprintf(out, "%d metric(s) had too few rounds to reach alpha %g: bench with more "
			"--rounds (5 a side at least for 0.01)\n", undecided, opts->alpha);
out:
	json_decref(base);
	json_decref(new_doc);
	return error;
}
