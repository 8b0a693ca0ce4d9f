#include "harness/profiles.h"

#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	tr_cert_kind kind;
} cert_kinds[] = {
	{ "valid", TR_CERT_VALID },
	{ "expired", TR_CERT_EXPIRED },
	{ "not-yet-valid", TR_CERT_NOT_YET_VALID },
	{ "revoked", TR_CERT_REVOKED },
	{ "wrong-chain", TR_CERT_WRONG_CHAIN },
	{ "stale-name", TR_CERT_STALE_NAME },
	{ "key-mismatch", TR_CERT_KEY_MISMATCH },
	{ "legacy", TR_CERT_LEGACY },
};

static int parse_line(const char *path, int line, char *text, tr_profile *p)
{
	char name[64], portals[160], cert[32], extra[8];
	unsigned unit;
	size_t i;

	if (sscanf(text, "%63s %159s %u %31s %7s", name, portals, &unit, cert, extra) != 4)
		return tr_error_set(TR_EPARSE, "%s:%d: expected NAME PORTALS UNIT CERTIFICATE",
				    path, line);
	if (strlen(name) >= sizeof(p->name) || strlen(portals) >= sizeof(p->portals))
		return tr_error_set(TR_EPARSE, "%s:%d: name or portal list too long", path, line);
	for (i = 0; i < sizeof(cert_kinds) / sizeof(cert_kinds[0]); i++)
		if (!strcmp(cert, cert_kinds[i].name))
			break;
	if (i == sizeof(cert_kinds) / sizeof(cert_kinds[0]))
		return tr_error_set(TR_EPARSE, "%s:%d: unknown certificate kind '%s'", path, line,
				    cert);
	if (unit > 99)
		return tr_error_set(TR_EPARSE, "%s:%d: unit index %u out of range", path, line, unit);
	/* Lengths checked above. */
	memcpy(p->name, name, strlen(name) + 1);
	memcpy(p->portals, portals, strlen(portals) + 1);
	p->unit = unit;
	p->cert = cert_kinds[i].kind;
	return 0;
}

int tr_profiles_load(const char *path, tr_profile **out, size_t *n)
{
	char *text = NULL, *line, *next;
	tr_profile *list = NULL;
	size_t count = 0;
	int lineno = 0, error;

	*out = NULL;
	*n = 0;
	if ((error = tr_fs_read_all(path, 1 << 20, &text, NULL)) < 0)
		return error;
	for (line = text; line; line = next) {
		char *s = line;
		tr_profile *grown;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		grown = realloc(list, (count + 1) * sizeof(*list));
		if (!grown) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto out;
		}
		list = grown;
		if ((error = parse_line(path, lineno, s, &list[count])) < 0)
			goto out;
		for (size_t k = 0; k < count; k++)
			if (!strcmp(list[k].name, list[count].name)) {
				error = tr_error_set(TR_EPARSE, "%s:%d: profile '%s' defined twice",
						     path, lineno, list[k].name);
				goto out;
			}
		count++;
	}
out:
	free(text);
	if (error < 0) {
		free(list);
		return error;
	}
	*out = list;
	*n = count;
	return 0;
}

int tr_profile_for_portal(const tr_profile *p, const char *portal)
{
	size_t n = strlen(portal);
	const char *s = p->portals;

	if (!strcmp(s, "*"))
		return 1;
	while (*s) {
		if (!strncmp(s, portal, n) && (s[n] == ',' || s[n] == '\0'))
			return 1;
		s = strchr(s, ',');
		if (!s)
			break;
		s++;
	}
	return 0;
}
