#include "harness/token_ctl.h"

#include "common/error.h"
#include "common/fsutil.h"
#include "common/p11mod.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINES 64

struct tr_token_ctl {
	char shim[PATH_MAX];
	char conf[PATH_MAX];
	char state[PATH_MAX + 32];
	char *base;
	char *lines[MAX_LINES];  /* "key = value" beyond the base */
	size_t n_lines;
	int driver_changed;
	/*
	 * The file holds the base alone, as written (stat then): a reset with
	 * no control set since has nothing to write. Every case resets twice
	 * (before, and when it finishes).
	 */
	int base_written;
	struct stat written;
	/*
	 * Keeps the interposer loaded through a case: a token it pulled lives in
	 * its memory, and unloading (when the case closes its last token) would
	 * plug it back in. Let go only to show a driver change.
	 */
	tr_p11mod *held;
};

static void hold(tr_token_ctl *ctl)
{
	if (!ctl->held && tr_p11mod_load(&ctl->held, ctl->shim) < 0)
		ctl->held = NULL; /* driver missing: nothing to hold */
}

static void let_go(tr_token_ctl *ctl)
{
	tr_p11mod_release(ctl->held);
	ctl->held = NULL;
}

int tr_token_ctl_new(tr_token_ctl **out, const char *shim_path, const char *shim_conf,
		     const char *base)
{
	tr_token_ctl *ctl = calloc(1, sizeof(*ctl));
	char *slash;

	if (!ctl || !(ctl->base = strdup(base))) {
		free(ctl);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	snprintf(ctl->shim, sizeof(ctl->shim), "%s", shim_path);
	snprintf(ctl->conf, sizeof(ctl->conf), "%s", shim_conf);
	/* The base configuration keeps the counters next to itself. */
	snprintf(ctl->state, sizeof(ctl->state), "%s", shim_conf);
	slash = strrchr(ctl->state, '/');
	snprintf(slash ? slash + 1 : ctl->state, sizeof(ctl->state) - (slash ? (size_t)(slash + 1 - ctl->state) : 0),
		 "p11shim.state");
	*out = ctl;
	return 0;
}

static void clear_lines(tr_token_ctl *ctl)
{
	for (size_t i = 0; i < ctl->n_lines; i++)
		free(ctl->lines[i]);
	ctl->n_lines = 0;
}

void tr_token_ctl_free(tr_token_ctl *ctl)
{
	if (!ctl)
		return;
	clear_lines(ctl);
	let_go(ctl);
	free(ctl->base);
	free(ctl);
}

/* Tells an interposer loaded in this process to re-read its file now. */
static void reload_now(tr_token_ctl *ctl)
{
	void *dl = dlopen(ctl->shim, RTLD_NOW | RTLD_NOLOAD);
	void (*reload)(void);

	if (!dl)
		return; /* not loaded: the next load reads the file anyway */
	reload = (void (*)(void))dlsym(dl, "tokenrig_shim_reload");
	if (reload)
		reload();
	dlclose(dl);
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int write_conf(tr_token_ctl *ctl)
{
	size_t len = strlen(ctl->base) + 1;
	char *text, *p;
	int error;

	ctl->base_written = 0;
	for (size_t i = 0; i < ctl->n_lines; i++)
		len += strlen(ctl->lines[i]) + 1;
	if (!(text = malloc(len)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	p = stpcpy(text, ctl->base);
	for (size_t i = 0; i < ctl->n_lines; i++) {
		p = stpcpy(p, ctl->lines[i]);
		*p++ = '\n';
	}
	*p = '\0';
	/* Without fsync: a live control of this run, read back at once, never a
	 * record to survive a crash (an fsync per case cost ~1.5 ms). */
	error = tr_fs_write_replace(ctl->conf, text, (size_t)(p - text), 0644, 0);
	free(text);
	if (error)
		return error;
	if (ctl->n_lines == 0 && stat(ctl->conf, &ctl->written) == 0)
		ctl->base_written = 1;
	reload_now(ctl);
	return 0;
}

/* Replaces the line of the same key, or adds it. */
static int put_line(tr_token_ctl *ctl, const char *key, const char *value)
{
	size_t klen = strlen(key), len = klen + strlen(value) + 4;
	char *line = malloc(len);

	if (!line)
		return tr_error_set(TR_ENOMEM, "out of memory");
	snprintf(line, len, "%s = %s", key, value);
	for (size_t i = 0; i < ctl->n_lines; i++)
		if (!strncmp(ctl->lines[i], key, klen) && ctl->lines[i][klen] == ' ') {
			free(ctl->lines[i]);
			ctl->lines[i] = line;
			return 0;
		}
	if (ctl->n_lines == MAX_LINES) {
		free(line);
		return tr_error_set(TR_EINVAL, "more than %d token controls in one case", MAX_LINES);
	}
	ctl->lines[ctl->n_lines++] = line;
	return 0;
}

static void drop_line(tr_token_ctl *ctl, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < ctl->n_lines; i++)
		if (!strncmp(ctl->lines[i], key, klen) && ctl->lines[i][klen] == ' ') {
			free(ctl->lines[i]);
			ctl->lines[i] = ctl->lines[--ctl->n_lines];
			return;
		}
}

/* "C_Sign fixed 150ms" -> key "latency.C_Sign", value "fixed 150ms". */
static int put_function_line(tr_token_ctl *ctl, const char *prefix, const char *value)
{
	char key[96];
	const char *space = strchr(value, ' ');
	size_t n = space ? (size_t)(space - value) : 0;

	if (!space || n == 0 || n > 48)
		return tr_error_set(TR_EINVAL, "'%s' must be FUNCTION SPEC, e.g. C_Sign ...", value);
	snprintf(key, sizeof(key), "%s.%.*s", prefix, (int)n, value);
	while (*space == ' ')
		space++;
	return put_line(ctl, key, space);
}

int tr_token_ctl_set(tr_token_ctl *ctl, const char *label, const char *key,
		     const char *value)
{
	char k[128], v[256];
	int error;

	if (!strcmp(key, "present")) {
		/* Plugging in or pulling by hand ends a pending pull-during-call. */
		drop_line(ctl, "remove_during");
		snprintf(k, sizeof(k), "token.%s.present", label);
		error = put_line(ctl, k, value);
	} else if (!strcmp(key, "max_tries")) {
		snprintf(k, sizeof(k), "token.%s.max_tries", label);
		error = put_line(ctl, k, value);
	} else if (!strcmp(key, "remove_during")) {
		snprintf(v, sizeof(v), "%s %s", value, label);
		error = put_line(ctl, "remove_during", v);
	} else if (!strcmp(key, "fault")) {
		error = put_function_line(ctl, "fault", value);
	} else if (!strcmp(key, "latency")) {
		error = put_function_line(ctl, "latency", value);
	} else if (!strcmp(key, "driver")) {
		if ((error = put_line(ctl, "driver", value)) < 0 || (error = write_conf(ctl)) < 0)
			return error;
		ctl->driver_changed = 1;
		let_go(ctl);
		if (!strcmp(value, "present"))
			hold(ctl);
		return 0;
	} else {
		return tr_error_set(TR_EINVAL, "unknown token control '%s'", key);
	}
	return error < 0 ? error : write_conf(ctl);
}

int tr_token_ctl_reset(tr_token_ctl *ctl)
{
	struct stat st;
	int error = 0;

	clear_lines(ctl);
	ctl->driver_changed = 0;
	if (unlink(ctl->state) != 0 && access(ctl->state, F_OK) == 0)
		return tr_error_set(TR_EIO, "cannot remove %s", ctl->state);
	/* Unchanged since the base went in (ours, by its stat): only the
	 * counters are new, and the re-read sees the state file gone. */
	if (ctl->base_written && stat(ctl->conf, &st) == 0 && same_file(&st, &ctl->written))
		reload_now(ctl);
	else
		error = write_conf(ctl);
	hold(ctl);
	return error;
}

int tr_token_ctl_driver_changed(const tr_token_ctl *ctl)
{
	return ctl->driver_changed;
}
