#include "portal_json.h"

#include "common/error.h"

#include <string.h>

int pt_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	unsigned long cp, min;

	while (i < len) {
		unsigned char c = p[i];

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

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
