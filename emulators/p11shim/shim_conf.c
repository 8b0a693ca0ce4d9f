#include "emulators/p11shim/shim_conf.h"

#include "common/error.h"
#include "common/fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_BYTES (256 * 1024)

static const char *const fn_names[SHIM_NFUNCS] = SHIM_FN_NAMES;

int shim_fn_index(const char *name)
{
	for (int i = 0; i < SHIM_NFUNCS; i++)
		if (!strcmp(fn_names[i], name))
			return i;
	return -1;
}

const char *shim_fn_name(int fn)
{
	return fn >= 0 && fn < SHIM_NFUNCS ? fn_names[fn] : "?";
}

static const struct { const char *name; CK_RV rv; } rv_names[] = {
#define RV(x) { #x, x },
	RV(CKR_OK) RV(CKR_CANCEL) RV(CKR_HOST_MEMORY) RV(CKR_SLOT_ID_INVALID)
	RV(CKR_GENERAL_ERROR) RV(CKR_FUNCTION_FAILED) RV(CKR_ARGUMENTS_BAD)
	RV(CKR_NO_EVENT) RV(CKR_NEED_TO_CREATE_THREADS) RV(CKR_CANT_LOCK)
	RV(CKR_ATTRIBUTE_READ_ONLY) RV(CKR_ATTRIBUTE_SENSITIVE)
	RV(CKR_ATTRIBUTE_TYPE_INVALID) RV(CKR_ATTRIBUTE_VALUE_INVALID)
	RV(CKR_DATA_INVALID) RV(CKR_DATA_LEN_RANGE) RV(CKR_DEVICE_ERROR)
	RV(CKR_DEVICE_MEMORY) RV(CKR_DEVICE_REMOVED) RV(CKR_ENCRYPTED_DATA_INVALID)
	RV(CKR_ENCRYPTED_DATA_LEN_RANGE) RV(CKR_FUNCTION_CANCELED)
	RV(CKR_FUNCTION_NOT_PARALLEL) RV(CKR_FUNCTION_NOT_SUPPORTED)
	RV(CKR_KEY_HANDLE_INVALID) RV(CKR_KEY_SIZE_RANGE) RV(CKR_KEY_TYPE_INCONSISTENT)
	RV(CKR_MECHANISM_INVALID) RV(CKR_MECHANISM_PARAM_INVALID)
	RV(CKR_OBJECT_HANDLE_INVALID) RV(CKR_OPERATION_ACTIVE)
	RV(CKR_OPERATION_NOT_INITIALIZED) RV(CKR_PIN_INCORRECT) RV(CKR_PIN_INVALID)
	RV(CKR_PIN_LEN_RANGE) RV(CKR_PIN_EXPIRED) RV(CKR_PIN_LOCKED)
	RV(CKR_SESSION_CLOSED) RV(CKR_SESSION_COUNT) RV(CKR_SESSION_HANDLE_INVALID)
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED) RV(CKR_SESSION_READ_ONLY)
	RV(CKR_SESSION_EXISTS) RV(CKR_SIGNATURE_INVALID) RV(CKR_SIGNATURE_LEN_RANGE)
	RV(CKR_TEMPLATE_INCOMPLETE) RV(CKR_TEMPLATE_INCONSISTENT)
	RV(CKR_TOKEN_NOT_PRESENT) RV(CKR_TOKEN_NOT_RECOGNIZED)
	RV(CKR_TOKEN_WRITE_PROTECTED) RV(CKR_USER_ALREADY_LOGGED_IN)
	RV(CKR_USER_NOT_LOGGED_IN) RV(CKR_USER_PIN_NOT_INITIALIZED)
	RV(CKR_USER_TYPE_INVALID) RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	RV(CKR_USER_TOO_MANY_TYPES) RV(CKR_RANDOM_NO_RNG) RV(CKR_BUFFER_TOO_SMALL)
	RV(CKR_CRYPTOKI_NOT_INITIALIZED) RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
	RV(CKR_FUNCTION_REJECTED)
#undef RV
};

int shim_rv_parse(const char *s, CK_RV *out)
{
	char *end;
	unsigned long v;

	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
		if (!strcmp(rv_names[i].name, s)) {
			*out = rv_names[i].rv;
			return 0;
		}
	}
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

const char *shim_rv_name(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	return NULL;
}

void shim_conf_free(shim_conf *conf)
{
	while (conf) {
		shim_conf *older = conf->older;

		while (conf->tokens) {
			shim_token_rule *next = conf->tokens->next;
			free(conf->tokens);
			conf->tokens = next;
		}
		while (conf->pulls) {
			shim_pull *next = conf->pulls->next;
			free(conf->pulls);
			conf->pulls = next;
		}
		free(conf->path);
		free(conf->module);
		free(conf->state);
		free(conf->trace);
		free(conf);
		conf = older;
	}
}

const shim_token_rule *shim_conf_token(const shim_conf *conf, const char *label)
{
	for (const shim_token_rule *t = conf->tokens; t; t = t->next)
		if (!strcmp(t->label, label))
			return t;
	return NULL;
}

int shim_conf_max_tries(const shim_conf *conf, const char *label)
{
	const shim_token_rule *t = shim_conf_token(conf, label);

	return t && t->max_tries > 0 ? t->max_tries : conf->max_tries;
}

/* Parsing state: the file, the line, for the messages. */
typedef struct parser {
	const char *file;
	int line;
	char *dir;   /* folder of the file, for relative paths */
} parser;

#define PERR(p, ...) perr(p, __VA_ARGS__)

__attribute__((format(printf, 2, 3)))
static int perr(const parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return tr_error_set(TR_EPARSE, "%s:%d: %s", p->file, p->line, msg);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int set_path(const parser *p, char **dst, const char *value)
{
	size_t n;

	free(*dst);
	*dst = NULL;
	if (value[0] == '/' || !p->dir) {
		*dst = strdup(value);
	} else {
		n = strlen(p->dir) + strlen(value) + 2;
		if ((*dst = malloc(n)))
			snprintf(*dst, n, "%s/%s", p->dir, value);
	}
	return *dst ? 0 : tr_error_set(TR_ENOMEM, "out of memory");
}

static int parse_int(const parser *p, const char *key, const char *v, int lo,
		     int hi, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi)
		return PERR(p, "%s: '%s' is not a number from %d to %d", key, v, lo, hi);
	*out = (int)n;
	return 0;
}

static int parse_bool(const parser *p, const char *key, const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else
		return PERR(p, "%s: '%s' is not yes or no", key, v);
	return 0;
}

/* "150ms", "2.5s", "800us", "1000ns": a unit is required. */
static int parse_duration(const parser *p, const char *key, const char *v,
			  uint64_t *out)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
	};
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || !isfinite(x) || x < 0 || x > 3600)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].unit)) {
			*out = (uint64_t)(x * units[i].ns + 0.5);
			if (*out > 3600ull * 1000000000ull)
				goto bad;
			return 0;
		}
	}
bad:
	return PERR(p, "%s: '%s' is not a duration (e.g. 150ms, 800us, 1.5s)", key, v);
}

/* Splits value into at most max blank-separated words (in place). */
static int words(char *v, char **w, int max)
{
	char *save = NULL;
	int n = 0;

	/* strtok_r: the interposer runs inside multithreaded programs. */
	for (char *s = strtok_r(v, " \t", &save); s; s = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = s;
	}
	return n;
}

static int parse_latency(const parser *p, const char *key, char *v, shim_delay *d)
{
	char *w[8];
	int n = words(v, w, 8), error = 0;

	memset(d, 0, sizeof(*d));
	if (n >= 1 && !strcmp(w[0], "fixed") && n == 2) {
		d->kind = SHIM_DELAY_FIXED;
		return parse_duration(p, key, w[1], &d->a_ns);
	}
	if (n >= 1 && !strcmp(w[0], "uniform") && n == 3) {
		d->kind = SHIM_DELAY_UNIFORM;
		if ((error = parse_duration(p, key, w[1], &d->a_ns)) < 0 ||
		    (error = parse_duration(p, key, w[2], &d->b_ns)) < 0)
			return error;
		if (d->b_ns < d->a_ns)
			return PERR(p, "%s: uniform range ends before it starts", key);
		return 0;
	}
	if (n >= 3 && !strcmp(w[0], "normal") && (n == 3 || n == 5 || n == 7)) {
		d->kind = SHIM_DELAY_NORMAL;
		if ((error = parse_duration(p, key, w[1], &d->a_ns)) < 0 ||
		    (error = parse_duration(p, key, w[2], &d->b_ns)) < 0)
			return error;
		/* Without bounds: mean +- 4 deviations, never below zero. */
		d->min_ns = d->a_ns > 4 * d->b_ns ? d->a_ns - 4 * d->b_ns : 0;
		d->max_ns = d->a_ns + 4 * d->b_ns;
		for (int i = 3; i + 1 < n; i += 2) {
			if (!strcmp(w[i], "min"))
				error = parse_duration(p, key, w[i + 1], &d->min_ns);
			else if (!strcmp(w[i], "max"))
				error = parse_duration(p, key, w[i + 1], &d->max_ns);
			else
				return PERR(p, "%s: expected 'min D' or 'max D', got '%s'", key, w[i]);
			if (error < 0)
				return error;
		}
		if (d->max_ns < d->min_ns)
			return PERR(p, "%s: max is below min", key);
		return 0;
	}
	return PERR(p, "%s: expected 'fixed D', 'uniform D1 D2' or "
		    "'normal MEAN SD [min D] [max D]'", key);
}

static int parse_fault(const parser *p, const char *key, char *v, shim_fault *f)
{
	char *w[8];
	int n = words(v, w, 8), have_rv = 0;

	f->set = 1;
	f->nth = 1;
	f->count = 0;
	atomic_store(&f->calls, 0);
	if (n > 8)
		return PERR(p, "%s: too many words", key);
	for (int i = 0; i < n; i++) {
		char *end;

		if (!strcmp(w[i], "once")) {
			f->count = 1;
		} else if (!strncmp(w[i], "nth=", 4) || !strncmp(w[i], "count=", 6)) {
			int is_nth = w[i][0] == 'n';
			const char *num = w[i] + (is_nth ? 4 : 6);
			unsigned long x;

			errno = 0;
			x = strtoul(num, &end, 10);
			if (errno || end == num || *end || (is_nth && x == 0))
				return PERR(p, "%s: bad '%s'", key, w[i]);
			if (is_nth)
				f->nth = x;
			else
				f->count = x;
		} else if (!strncmp(w[i], "rv=", 3)) {
			if (shim_rv_parse(w[i] + 3, &f->rv) < 0)
				return PERR(p, "%s: unknown return value '%s'", key, w[i] + 3);
			if (f->rv == CKR_OK)
				return PERR(p, "%s: a fault needs an error, not CKR_OK", key);
			have_rv = 1;
		} else {
			return PERR(p, "%s: unknown word '%s' (nth=N, count=N, once, rv=CKR_...)",
				    key, w[i]);
		}
	}
	if (!have_rv)
		return PERR(p, "%s: rv=CKR_... is required", key);
	return 0;
}

static int fn_key(const parser *p, const char *key, const char *name, int *fn)
{
	if ((*fn = shim_fn_index(name)) < 0)
		return PERR(p, "%s: '%s' is not a PKCS#11 v2.40 function", key, name);
	return 0;
}

static shim_token_rule *token_rule(shim_conf *conf, const char *label)
{
	shim_token_rule *t;

	for (t = conf->tokens; t; t = t->next)
		if (!strcmp(t->label, label))
			return t;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	snprintf(t->label, sizeof(t->label), "%.32s", label);
	t->present = 1;
	t->next = conf->tokens;
	conf->tokens = t;
	return t;
}

static int parse_line(const parser *p, shim_conf *conf, char *key, char *value)
{
	size_t klen = strlen(key);
	int fn, error = 0;

	if (!*value)
		return PERR(p, "%s: empty value", key);
	if (!strcmp(key, "module"))
		return set_path(p, &conf->module, value);
	if (!strcmp(key, "state"))
		return set_path(p, &conf->state, value);
	if (!strcmp(key, "trace"))
		return set_path(p, &conf->trace, value);
	if (!strcmp(key, "max_tries"))
		return parse_int(p, key, value, 1, 1000, &conf->max_tries);
	if (!strcmp(key, "driver")) {
		if (!strcmp(value, "present") || !strcmp(value, "ok"))
			conf->driver = SHIM_DRIVER_OK;
		else if (!strcmp(value, "missing"))
			conf->driver = SHIM_DRIVER_MISSING;
		else if (!strcmp(value, "empty"))
			conf->driver = SHIM_DRIVER_EMPTY;
		else
			return PERR(p, "driver: '%s' is not present, missing or empty", value);
		conf->driver_line = p->line;
		return 0;
	}
	if (!strncmp(key, "token.", 6)) {
		const char *dot = strrchr(key, '.');
		char label[64];
		shim_token_rule *t;
		size_t llen = (size_t)(dot - key) - 6;

		if (dot <= key + 6 || llen > SHIM_LABEL_MAX)
			return PERR(p, "%s: expected token.LABEL.max_tries or token.LABEL.present "
				    "(LABEL of 1 to 32 bytes)", key);
		memcpy(label, key + 6, llen);
		label[llen] = '\0';
		if (strcmp(dot, ".max_tries") && strcmp(dot, ".present"))
			return PERR(p, "unknown key '%s' (token.LABEL.max_tries, token.LABEL.present)",
				    key);
		if (!(t = token_rule(conf, label)))
			return tr_error_set(TR_ENOMEM, "out of memory");
		if (!strcmp(dot, ".max_tries"))
			return parse_int(p, key, value, 1, 1000, &t->max_tries);
		if ((error = parse_bool(p, key, value, &t->present)) < 0)
			return error;
		return 0;
	}
	if (!strncmp(key, "fault.", 6)) {
		if ((error = fn_key(p, key, key + 6, &fn)) < 0 ||
		    (error = parse_fault(p, key, value, &conf->fault[fn])) < 0)
			return error;
		conf->active[fn] = 1;
		return 0;
	}
	if (!strncmp(key, "latency.", 8)) {
		shim_delay d;

		if ((error = parse_latency(p, key, value, &d)) < 0)
			return error;
		if (!strcmp(key + 8, "*")) {
			for (fn = 0; fn < SHIM_NFUNCS; fn++) {
				conf->delay[fn] = d;
				conf->active[fn] = 1;
			}
			return 0;
		}
		if ((error = fn_key(p, key, key + 8, &fn)) < 0)
			return error;
		conf->delay[fn] = d;
		conf->active[fn] = 1;
		return 0;
	}
	if (!strcmp(key, "remove_during")) {
		char *sp = value + strcspn(value, " \t");
		char *label = trim(sp);
		shim_pull *pl;

		if (*sp)
			*sp = '\0', label = trim(sp + 1);
		if ((error = fn_key(p, key, value, &fn)) < 0)
			return error;
		if (strlen(label) > SHIM_LABEL_MAX)
			return PERR(p, "%s: token label longer than 32 bytes", key);
		if (!(pl = calloc(1, sizeof(*pl))))
			return tr_error_set(TR_ENOMEM, "out of memory");
		pl->fn = fn;
		snprintf(pl->label, sizeof(pl->label), "%s", label);
		pl->next = conf->pulls;
		conf->pulls = pl;
		conf->active[fn] = 1;
		return 0;
	}
	(void)klen;
	return PERR(p, "unknown key '%s'", key);
}

int shim_conf_load(shim_conf **out, const char *path)
{
	shim_conf *conf = calloc(1, sizeof(*conf));
	parser p = { .file = path, .line = 0 };
	char *text = NULL, *line, *next;
	int error = 0;

	*out = NULL;
	if (!conf)
		return tr_error_set(TR_ENOMEM, "out of memory");
	conf->max_tries = SHIM_DEFAULT_TRIES;
	if (path) {
		const char *slash = strrchr(path, '/');

		if (!(conf->path = strdup(path)) ||
		    !(p.dir = slash ? strndup(path, (size_t)(slash - path)) : strdup("."))) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto out;
		}
		if ((error = tr_fs_read_all(path, CONF_MAX_BYTES, &text, NULL)) < 0) {
			error = tr_error_set(TR_EPARSE, "%s: cannot read: %s", path,
					     tr_error_last());
			goto out;
		}
		for (line = text; line; line = next) {
			char *eq, *key;

			p.line++;
			if ((next = strchr(line, '\n')))
				*next++ = '\0';
			line = trim(line);
			if (!*line || line[0] == '#' || line[0] == ';')
				continue;
			if (!(eq = strchr(line, '='))) {
				error = PERR(&p, "expected 'key = value', got '%.60s'", line);
				goto out;
			}
			*eq = '\0';
			key = trim(line);
			if (!*key) {
				error = PERR(&p, "missing key before '='");
				goto out;
			}
			if ((error = parse_line(&p, conf, key, trim(eq + 1))) < 0)
				goto out;
		}
		/* The PIN counters live next to the configuration unless told. */
		if (!conf->state && (error = set_path(&p, &conf->state, "p11shim.state")) < 0)
			goto out;
	}
	if (!conf->module && !(conf->module = strdup(SHIM_DEFAULT_MODULE))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	for (const shim_token_rule *t = conf->tokens; t; t = t->next)
		if (!t->present)
			conf->any_absent = 1;
	/* Slot calls must look at presence and at the driver: slow path. */
	if (conf->any_absent || conf->driver == SHIM_DRIVER_EMPTY) {
		static const int slot_fns[] = {
			SHIM_F_C_GetSlotList, SHIM_F_C_GetSlotInfo, SHIM_F_C_GetTokenInfo,
			SHIM_F_C_GetMechanismList, SHIM_F_C_GetMechanismInfo,
			SHIM_F_C_InitToken, SHIM_F_C_OpenSession,
		};
		for (size_t i = 0; i < sizeof(slot_fns) / sizeof(slot_fns[0]); i++)
			conf->active[slot_fns[i]] = 1;
	}
	*out = conf;
	conf = NULL;
out:
	free(text);
	free(p.dir);
	shim_conf_free(conf);
	return error;
}
