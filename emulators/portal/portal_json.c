#include "portal_json.h"

#include "common/error.h"

#include <string.h>

int pt_json_parse_object(const char *body, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	v = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return tr_error_set(TR_EPARSE, "%d:%d: %s", jerr.line,
				    jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return tr_error_set(TR_EINVAL, "body is not a JSON object");
	}
	*out = v;
	return 0;
}

static const char *type_name(pt_field_type t)
{
	return t == PT_FIELD_STRING ? "a string" : "an integer";
}

static int type_ok(json_t *v, pt_field_type t)
{
	return t == PT_FIELD_STRING ? json_is_string(v) : json_is_integer(v);
}

int pt_fields_check(json_t *obj, const pt_field *fields, size_t n,
		    const char **bad_field)
{
	const char *key;
	json_t *v;
	size_t i;

	if (bad_field)
		*bad_field = NULL;
	/* Unknown fields first: a misspelt name is the likelier mistake than
	 * the missing field it was meant to be. */
	json_object_foreach(obj, key, v) {
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].name, key) == 0)
				break;
		if (i == n) {
			if (bad_field)
				*bad_field = key;
			return tr_error_set(TR_EINVAL, "unknown field '%s'", key);
		}
	}
	for (i = 0; i < n; i++) {
		v = json_object_get(obj, fields[i].name);
		if (!v) {
			if (fields[i].optional)
				continue;
			if (bad_field)
				*bad_field = fields[i].name;
			return tr_error_set(TR_EINVAL, "missing field '%s'",
					    fields[i].name);
		}
		if (!type_ok(v, fields[i].type)) {
			if (bad_field)
				*bad_field = fields[i].name;
			return tr_error_set(TR_EINVAL, "field '%s' must be %s",
					    fields[i].name,
					    type_name(fields[i].type));
		}
	}
	return 0;
}
