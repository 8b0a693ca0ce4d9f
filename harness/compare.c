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

tr_verdict tr_compare_verdict(const uint64_t *base, size_t nb, const uint64_t *new_s,
			      size_t nn, const tr_compare_opts *opts, double *ratio, double *p)
{
	double mb = tr_stats_median(base, nb), mn = tr_stats_median(new_s, nn), z;

	*ratio = mb > 0 ? mn / mb : 1;
	if (tr_stats_mann_whitney(base, nb, new_s, nn, &z, p) < 0 || *p >= opts->alpha)
		return TR_NO_CHANGE;
	if (!opts->normalize && fabs(mn - mb) < opts->min_us * 1e3)
		return TR_NO_CHANGE;
	if (*ratio > 1 + opts->threshold)
		return TR_SLOWER;
	if (*ratio < 1 - opts->threshold)
		return TR_FASTER;
	return TR_NO_CHANGE;
}

/* A bench file, checked: schema, metrics, every sample a positive integer. */
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
		size_t i;

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
	}
out:
	if (error < 0)
		json_decref(root);
	else
		*out = root;
	return error;
}

/*
 * The samples, divided by the run's baseline median when normalising (in
 * millionths of it: integers keep their order). *scaled says whether they
 * were.
 */
static uint64_t *samples_of(json_t *metrics, const char *name, int normalize, size_t *n,
			    int *scaled)
{
	json_t *m = json_object_get(metrics, name), *arr = json_object_get(m, "samples_ns");
	const char *base = json_string_value(json_object_get(m, "baseline"));
	double scale = 1;
	uint64_t *v;

	*n = json_array_size(arr);
	*scaled = 0;
	if (!(v = malloc(*n * sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < *n; i++)
		v[i] = (uint64_t)json_integer_value(json_array_get(arr, i));
	if (normalize && base && json_object_get(metrics, base)) {
		size_t nb;
		int ignored;
		uint64_t *b = samples_of(metrics, base, 0, &nb, &ignored);

		scale = b ? 1e6 / tr_stats_median(b, nb) : 1;
		free(b);
		for (size_t i = 0; i < *n; i++)
			v[i] = (uint64_t)((double)v[i] * scale);
		*scaled = 1;
	}
	return v;
}

int tr_compare_files(const char *base_path, const char *new_path,
		     const tr_compare_opts *opts, FILE *out, int *slower)
{
	json_t *base = NULL, *new_doc = NULL, *bm, *nm, *m;
	const char *name;
	int error, compared = 0;

	*slower = 0;
	if ((error = load_bench(base_path, &base)) < 0 || (error = load_bench(new_path, &new_doc)) < 0)
		goto out;
	bm = json_object_get(base, "metrics");
	nm = json_object_get(new_doc, "metrics");
	fprintf(out, "%-36s %11s %11s %8s %9s  %s\n", "metric", "base p50", "new p50", "change",
		"p", "verdict");
	json_object_foreach(bm, name, m) {
		size_t nb, nn;
		uint64_t *a, *b;
		double ratio, p;
		int scaled_a, scaled_b, gated;
		tr_compare_opts o = *opts;
		tr_verdict v;

		if (!json_object_get(nm, name)) {
			fprintf(out, "%-36s only in %s\n", name, base_path);
			continue;
		}
		a = samples_of(bm, name, opts->normalize, &nb, &scaled_a);
		b = samples_of(nm, name, opts->normalize, &nn, &scaled_b);
		if (!a || !b) {
			free(a);
			free(b);
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto out;
		}
		/* Normalised: a metric without a baseline measures the machine. */
		gated = !opts->normalize || (scaled_a && scaled_b);
		o.normalize = scaled_a && scaled_b;
		v = tr_compare_verdict(a, nb, b, nn, &o, &ratio, &p);
		fprintf(out, "%-36s %9.2f%s %9.2f%s %+7.1f%% %9.2g  %s%s\n", name,
			tr_stats_median(a, nb) / (o.normalize ? 1e4 : 1e3), o.normalize ? "% " : "us",
			tr_stats_median(b, nn) / (o.normalize ? 1e4 : 1e3), o.normalize ? "% " : "us",
			(ratio - 1) * 100, p, tr_verdict_name(v), gated ? "" : " (baseline, not gated)");
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
	fprintf(out, "\n%d metric(s) compared; %d significantly slower (threshold %.0f%%, alpha %g)\n",
		compared, *slower, opts->threshold * 100, opts->alpha);
out:
	json_decref(base);
	json_decref(new_doc);
	return error;
}
