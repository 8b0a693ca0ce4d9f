/*
 * Request bodies: UTF-8 check, JSON object parsing and a strict field
 * schema (every field known, present and of the right type).
 */
#ifndef TR_PORTAL_JSON_H
#define TR_PORTAL_JSON_H

#include <jansson.h>
#include <stddef.h>

typedef enum pt_field_type {
	PT_FIELD_STRING,
	PT_FIELD_INTEGER,
} pt_field_type;

typedef struct pt_field {
	const char *name;
	pt_field_type type;
	int optional;
} pt_field;


/*
 * Parses a JSON object. TR_EPARSE with "line:column: reason" for bad JSON
 * (duplicate keys included), TR_EINVAL when the value is not an object.
 */
int pt_json_parse_object(const char *body, size_t len, json_t **out);

/*
 * Checks obj against fields[n]. TR_EINVAL with a message naming the field
 * ("missing field 'x'", "unknown field 'x'", "field 'x' must be a string").
 * *bad_field (may be NULL) receives the name.
 */
int pt_fields_check(json_t *obj, const pt_field *fields, size_t n,
		    const char **bad_field);

#endif
