/* The certification's verdict and batch statistics: pure functions over JSON. */
#include "harness/certify.h"

#include "harness/kinds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *entry_of(json_t *list, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "id")), id))
			return e;
	return NULL;
}

static int listed(const json_t *list, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (json_is_string(e) && !strcmp(json_string_value(e), id))
			return 1;
	return 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

json_t *tr_certify_verdict(const json_t *cases, const json_t *extra_failed)
{
	json_t *failed = json_array(), *skipped = json_array(), *passed = json_array();
	json_t *not_tested = json_array(), *c, *id, *v;
	size_t i, k;

	/* Failures first: an ID failed anywhere is failed. */
	json_array_foreach(cases, i, c) {
		const char *st = str(c, "status");

		if (strcmp(st, "failed") && strcmp(st, "error"))
			continue;
		json_array_foreach(json_object_get(c, "ids"), k, id) {
			const char *ids = json_string_value(id);

			if (!ids || entry_of(failed, ids))
				continue;
			json_array_append_new(failed, json_pack(
				"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", ids,
				"portal", str(c, "portal"), "algorithm", str(c, "algorithm"),
				"step", str(c, "step"), "expected", str(c, "expected"),
				"actual", str(c, "actual"), "message", str(c, "message"),
				"status", st));
		}
	}
	json_array_foreach(extra_failed, i, c)
		json_array_append(failed, c);
	json_array_foreach(cases, i, c) {
		if (strcmp(str(c, "status"), "passed"))
			continue;
		json_array_foreach(json_object_get(c, "ids"), k, id)
			if (json_is_string(id) && !entry_of(failed, json_string_value(id)) &&
			    !listed(passed, json_string_value(id)))
				json_array_append(passed, id);
	}
	json_array_foreach(cases, i, c) {
		const char *reason = str(c, "message");

		if (strcmp(str(c, "status"), "skipped"))
			continue;
		json_array_foreach(json_object_get(c, "ids"), k, id) {
			const char *ids = json_string_value(id);

			if (!ids || entry_of(failed, ids) || listed(passed, ids) ||
			    entry_of(skipped, ids))
				continue;
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "id", ids,
								 "reason", reason));
			if (!strcmp(reason, TR_DESTRUCTIVE_SKIP) && !listed(not_tested, ids))
				json_array_append(not_tested, id);
		}
	}
	v = json_pack("{s:s, s:o, s:o, s:o, s:o}", "status",
		      json_array_size(failed) ? "NOT CERTIFIED" :
		      json_array_size(passed) == 0 ? "NOT CERTIFIED" :
		      json_array_size(not_tested) ? "CERTIFIED (non-destructive)" : "CERTIFIED",
		      "failed", failed, "skipped", skipped, "not_tested", not_tested,
		      "passed", passed);
	if (!json_array_size(failed) && !json_array_size(passed))
		json_object_set_new(v, "why", json_string("no catalog ID passed: nothing was certified"));
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void tr_certify_outliers(const double *v, size_t n, int *outliers, double *median, double *mad)
{
	double *tmp = n ? malloc(n * sizeof(*tmp)) : NULL;
	double med = 0, dev = 0, floor;

	for (size_t i = 0; i < n; i++)
		outliers[i] = 0;
	if (tmp && n > 0) {
		memcpy(tmp, v, n * sizeof(*tmp));
		med = median_of(tmp, n);
		for (size_t i = 0; i < n; i++)
			tmp[i] = fabs(v[i] - med);
		dev = median_of(tmp, n);
	}
	if (median)
		*median = med;
	if (mad)
		*mad = dev;
	free(tmp);
	if (n < 3)
		return;
	floor = TR_CERTIFY_MAD_FLOOR * fabs(med);
	if (dev < floor)
		dev = floor;
	if (dev <= 0)
		return;
	for (size_t i = 0; i < n; i++)
		outliers[i] = 0.6745 * fabs(v[i] - med) / dev > TR_CERTIFY_Z_THRESHOLD;
}

json_t *tr_certify_inventory_outliers(const json_t *inventories, const char *const *serials,
				      const char *const *fields, size_t n_fields)
{
	json_t *out = json_array();
	size_t n = json_array_size(inventories);

	if (n < 3)
		return out;
	for (size_t f = 0; f < n_fields; f++) {
		const json_t *majority = NULL;
		size_t best = 0;

		for (size_t i = 0; i < n; i++) {
			json_t *vi = json_object_get(json_array_get(inventories, i), fields[f]);
			size_t same = 0;

			for (size_t j = 0; j < n; j++)
				same += json_equal(vi, json_object_get(json_array_get(inventories, j),
								       fields[f]));
			if (same > best) {
				best = same;
				majority = vi;
			}
		}
		if (!majority || best * 2 <= n)
			continue;
		for (size_t i = 0; i < n; i++) {
			json_t *vi = json_object_get(json_array_get(inventories, i), fields[f]);

			if (!json_equal(vi, majority))
				json_array_append_new(out, json_pack(
					"{s:s, s:s, s:O?, s:O}", "serial", serials[i], "field", fields[f],
					"value", vi, "majority", majority));
		}
	}
	return out;
}

void tr_certify_left_line(char *out, size_t len, size_t objects_made, int cert_written,
			  const char *saved_original)
{
	if (cert_written)
		snprintf(out, len, "interrupted twice: LEFT ON THE TOKEN: the certificate the rig "
			 "wrote into key 9A (the original is saved in %s; `tokenrig certify "
			 "--cleanup` with the same --out writes it back)", saved_original);
	else if (objects_made)
		snprintf(out, len, "interrupted twice: LEFT ON THE TOKEN: %zu object(s) labelled "
			 "tokenrig-* (`tokenrig certify --cleanup` removes them)", objects_made);
	else
		snprintf(out, len, "interrupted twice: nothing the rig wrote was left on the token");
}
