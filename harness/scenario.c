#include "harness/scenario.h"

#include "common/error.h"
#include "common/utf8.h"
#include "common/fsutil.h"
#include "fixtures/provinces.h"
#include "harness/steps.h"

#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scenario_keys[] = {
	"ids", "title", "portal", "token", "algorithms", "kinds", NULL
};

typedef struct parser {
	const char *path;
	int line;
	tr_scenario *sc;
	tr_step *step;    /* current [step], NULL in [scenario] */
	int in_scenario;
	int seen_scenario;
} parser;

static int fail(parser *p, int line, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	return tr_error_set(TR_EPARSE, "%s:%d: %s", p->path, line, msg);
}

int tr_scenario_id_valid(const char *id)
{
	const fx_province *pv;
	size_t i, n = strlen(id);
	int known = n >= 3 && !strncmp(id, "TK-", 3); /* the tokens' own, no province's */

	/* A province's catalog prefixes are its registry row's. */
	for (i = 0; !known && n >= 3 && (pv = fx_province_at(i)) != NULL; i++)
		for (size_t k = 0; !known && k < FX_PROVINCE_ID_PREFIXES && pv->id_prefixes[k]; k++)
			known = strlen(pv->id_prefixes[k]) == 2 &&
				!strncmp(id, pv->id_prefixes[k], 2) && id[2] == '-';
	if (!known || n < 4 || n > 32)
		return 0;
	for (i = 3; i < n; i++)
		if (!isupper((unsigned char)id[i]) && !isdigit((unsigned char)id[i]) &&
		    !(islower((unsigned char)id[i])) && id[i] != '-')
			return 0;
	return id[n - 1] != '-';
}

int tr_scenario_allows(char **list, size_t n, const char *name)
{
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return 1;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Splits a space-separated value into a fresh array of strings. */
static int split_words(const char *value, char ***out, size_t *n)
{
	char *copy = strdup(value), *save = NULL, *w;
	char **list = NULL;
	size_t count = 0;

	if (!copy)
		return TR_ENOMEM;
	for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		char **grown = realloc(list, (count + 1) * sizeof(*list));

		if (!grown || !(grown[count] = strdup(w))) {
			list = grown ? grown : list;
			for (size_t i = 0; i < count; i++)
				free(list[i]);
			free(list);
			free(copy);
			return TR_ENOMEM;
		}
		list = grown;
		count++;
	}
	free(copy);
	*out = list;
	*n = count;
	return 0;
}

static void free_words(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int check_step(parser *p, tr_step *st)
{
	const char *action = tr_step_get(st, "do");
	const tr_action *a;

	/* The schema is the steps' own action table: what parses, runs as itself. */
	if (!action)
		return fail(p, st->line, "step has no 'do =' (the action)%s", NULL);
	if (!(a = tr_action_find(action)))
		return fail(p, st->line, "unknown action '%s'", action);
	for (size_t i = 0; i < st->n_kv; i++)
		if (!tr_action_takes(a, st->kv[i].key)) {
			char msg[300];

			snprintf(msg, sizeof(msg), "action %s takes no key '%s'", action,
				 st->kv[i].key);
			return fail(p, st->kv[i].line, "%s", msg);
		}
	for (int i = 0; i < TR_ACTION_MAX_REQUIRED && a->required[i]; i++)
		if (!tr_step_get(st, a->required[i])) {
			char msg[300];

			snprintf(msg, sizeof(msg), "action %s needs '%s ='", action, a->required[i]);
			return fail(p, st->line, "%s", msg);
		}
	st->action = strdup(action);
	return st->action ? 0 : TR_ENOMEM;
}

static int set_scenario_key(parser *p, const char *key, const char *value)
{
	tr_scenario *sc = p->sc;
	int i, error;

	for (i = 0; scenario_keys[i]; i++)
		if (!strcmp(scenario_keys[i], key))
			break;
	if (!scenario_keys[i])
		return fail(p, p->line, "unknown key '%s' in [scenario]", key);

	if (!strcmp(key, "ids")) {
		if (sc->ids)
			return fail(p, p->line, "'ids' given twice%s", NULL);
		if ((error = split_words(value, &sc->ids, &sc->n_ids)) < 0)
			return tr_error_set(error, "out of memory");
		if (sc->n_ids == 0)
			return fail(p, p->line, "'ids' is empty%s", NULL);
		for (size_t k = 0; k < sc->n_ids; k++)
			if (!tr_scenario_id_valid(sc->ids[k]))
				return fail(p, p->line,
					    "'%s' is not a catalog ID (SZ-, JS-, HB-, SC-, HN-, TK-)",
					    sc->ids[k]);
		return 0;
	}
	if (!strcmp(key, "algorithms") || !strcmp(key, "kinds")) {
		char ***list = key[0] == 'a' ? &sc->algorithms : &sc->kinds;
		size_t *n = key[0] == 'a' ? &sc->n_algorithms : &sc->n_kinds;

		if (*list)
			return fail(p, p->line, "'%s' given twice", key);
		if ((error = split_words(value, list, n)) < 0)
			return tr_error_set(error, "out of memory");
		return 0;
	}

	char **field = !strcmp(key, "title") ? &sc->title :
		       !strcmp(key, "portal") ? &sc->portal : &sc->token;
	if (*field)
		return fail(p, p->line, "'%s' given twice", key);
	/* The portals are the province registry's (fixtures/provinces.h). */
	if (field == &sc->portal && !fx_province_find(value))
		return tr_error_set(TR_EPARSE, "%s:%d: unknown portal '%s' (known: %s)", p->path,
				    p->line, value, fx_province_list());
	*field = strdup(value);
	return *field ? 0 : tr_error_set(TR_ENOMEM, "out of memory");
}

static int add_step_kv(parser *p, const char *key, const char *value)
{
	tr_step *st = p->step;
	tr_kv *grown;

	if (tr_step_get(st, key))
		return fail(p, p->line, "key '%s' given twice in this step", key);
	grown = realloc(st->kv, (st->n_kv + 1) * sizeof(*grown));
	if (!grown)
		return tr_error_set(TR_ENOMEM, "out of memory");
	st->kv = grown;
	grown[st->n_kv].key = strdup(key);
	grown[st->n_kv].value = strdup(value);
	grown[st->n_kv].line = p->line;
	st->n_kv++;
	if (!grown[st->n_kv - 1].key || !grown[st->n_kv - 1].value)
		return tr_error_set(TR_ENOMEM, "out of memory");
	return 0;
}

static int open_section(parser *p, char *header)
{
	tr_scenario *sc = p->sc;
	char *name = trim(header);
	tr_step *grown;
	int error;

	if (!strcmp(name, "scenario")) {
		if (p->seen_scenario)
			return fail(p, p->line, "a second [scenario] section%s", NULL);
		if (sc->n_steps)
			return fail(p, p->line, "[scenario] must come before the steps%s", NULL);
		p->seen_scenario = p->in_scenario = 1;
		return 0;
	}
	if (strncmp(name, "step", 4) || (name[4] && name[4] != ' '))
		return fail(p, p->line, "unknown section [%s] (use [scenario] or [step NAME])",
			    name);
	if (!p->seen_scenario)
		return fail(p, p->line, "the file must start with [scenario]%s", NULL);
	if (p->step && (error = check_step(p, p->step)) < 0)
		return error;
	grown = realloc(sc->steps, (sc->n_steps + 1) * sizeof(*grown));
	if (!grown)
		return tr_error_set(TR_ENOMEM, "out of memory");
	sc->steps = grown;
	p->step = &sc->steps[sc->n_steps++];
	memset(p->step, 0, sizeof(*p->step));
	p->step->line = p->line;
	name = trim(name + 4);
	if (*name) {
		p->step->name = strdup(name);
	} else {
		char buf[32];

		snprintf(buf, sizeof(buf), "step %zu", sc->n_steps);
		p->step->name = strdup(buf);
	}
	p->in_scenario = 0;
	return p->step->name ? 0 : tr_error_set(TR_ENOMEM, "out of memory");
}

static int parse_line(parser *p, char *line)
{
	char *s = trim(line), *eq, *key, *value;

	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || trim(end + 1)[0] != '\0')
			return fail(p, p->line, "malformed section header '%s'", s);
		*end = '\0';
		return open_section(p, s + 1);
	}
	eq = strchr(s, '=');
	if (!eq)
		return fail(p, p->line, "expected 'key = value' or a [section], got '%.60s'", s);
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (!*key)
		return fail(p, p->line, "empty key before '='%s", NULL);
	for (char *k = key; *k; k++)
		if (!isalnum((unsigned char)*k) && !strchr("._-", *k))
			return fail(p, p->line, "bad character in key '%s'", key);
	if (!p->seen_scenario)
		return fail(p, p->line, "the file must start with [scenario]%s", NULL);
	if (p->in_scenario)
		return set_scenario_key(p, key, value);
	return add_step_kv(p, key, value);
}

static int finish(parser *p)
{
	tr_scenario *sc = p->sc;
	int error;

	if (!p->seen_scenario)
		return fail(p, p->line, "no [scenario] section%s", NULL);
	if (p->step && (error = check_step(p, p->step)) < 0)
		return error;
	if (!sc->ids)
		return fail(p, 1, "[scenario] needs 'ids ='%s", NULL);
	if (!sc->title)
		return fail(p, 1, "[scenario] needs 'title ='%s", NULL);
	if (!sc->portal)
		return fail(p, 1, "[scenario] needs 'portal ='%s", NULL);
	if (sc->n_steps == 0)
		return fail(p, p->line, "the scenario has no [step]%s", NULL);
	if (!sc->token && !(sc->token = strdup("a")))
		return tr_error_set(TR_ENOMEM, "out of memory");
	return 0;
}

int tr_scenario_parse(tr_scenario **out, const char *path, const char *text,
		      size_t len)
{
	parser p = { .path = path };
	char *copy = NULL, *line, *next;
	int error = 0;

	*out = NULL;
	if (len > TR_SCENARIO_MAX_BYTES)
		return tr_error_set(TR_EPARSE, "%s: larger than %d bytes", path,
				    TR_SCENARIO_MAX_BYTES);
	if (memchr(text, '\0', len))
		return tr_error_set(TR_EPARSE, "%s: contains a NUL byte", path);
	if (!tr_utf8_valid((const unsigned char *)text, len))
		return tr_error_set(TR_EPARSE, "%s: not valid UTF-8", path);
	p.sc = calloc(1, sizeof(*p.sc));
	copy = malloc(len + 1);
	if (!p.sc || !copy || !(p.sc->path = strdup(path))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p.line++;
		if ((error = parse_line(&p, line)) < 0)
			goto out;
	}
	error = finish(&p);
out:
	free(copy);
	if (error < 0)
		tr_scenario_free(p.sc);
	else
		*out = p.sc;
	return error;
}

int tr_scenario_load(tr_scenario **out, const char *path)
{
	char *text;
	size_t len;
	int error;

	*out = NULL;
	if ((error = tr_fs_read_all(path, TR_SCENARIO_MAX_BYTES, &text, &len)) < 0)
		return error;
	error = tr_scenario_parse(out, path, text, len);
	free(text);
	return error;
}

void tr_scenario_free(tr_scenario *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n_steps; i++) {
		tr_step *st = &sc->steps[i];

		for (size_t k = 0; k < st->n_kv; k++) {
			free(st->kv[k].key);
			free(st->kv[k].value);
		}
		free(st->kv);
		free(st->name);
		free(st->action);
	}
	free(sc->steps);
	free_words(sc->ids, sc->n_ids);
	free_words(sc->algorithms, sc->n_algorithms);
	free_words(sc->kinds, sc->n_kinds);
	free(sc->path);
	free(sc->title);
	free(sc->portal);
	free(sc->token);
	free(sc);
}

const char *tr_step_get(const tr_step *step, const char *key)
{
	for (size_t i = 0; i < step->n_kv; i++)
		if (!strcmp(step->kv[i].key, key))
			return step->kv[i].value;
	return NULL;
}

static int collect(const char *dir, tr_paths *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int error = 0;

	if (!d)
		return tr_error_set(TR_ENOTFOUND, "cannot open suites folder %s", dir);
	while ((e = readdir(d)) != NULL && !error) {
		char path[4096];
		struct stat st;
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			error = collect(path, out);
		} else if (len > 4 && !strcmp(e->d_name + len - 4, ".scn")) {
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 64;
				char **v = realloc(out->v, cap * sizeof(*v));

				if (!v) {
					error = tr_error_set(TR_ENOMEM, "out of memory");
					break;
				}
				out->v = v;
				out->cap = cap;
			}
			if (!(out->v[out->n++] = strdup(path)))
				error = tr_error_set(TR_ENOMEM, "out of memory");
		}
	}
	closedir(d);
	return error;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int tr_scenario_find(const char *dir, tr_paths *out)
{
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = collect(dir, out)) < 0) {
		tr_paths_free(out);
		return error;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return 0;
}

void tr_paths_free(tr_paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}
