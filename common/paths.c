/*
 * Install paths found once (common/paths.h says where each comes from).
 */
#include "common/paths.h"

#include "common/error.h"

#include <errno.h>
#include <limits.h>
#include <p11-kit/p11-kit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TR_BUILD_PCSC_DROPDIR
#error "TR_BUILD_PCSC_DROPDIR: pcsc-lite's driver folder, set by the Makefile"
#endif

/* What to find, and the Debian package (ci/install-deps) that installs it. */
static const struct {
	const char *p11kit_name;  /* NULL: not a PKCS#11 module */
	const char *what;
	const char *package;
} wanted[] = {
	[TR_PATH_SOFTHSM2] = { "softhsm2", "SoftHSM2's PKCS#11 module", "softhsm2" },
	[TR_PATH_OPENSC] = { "opensc-pkcs11", "OpenSC's PKCS#11 module", "opensc" },
	[TR_PATH_VPCD] = { NULL, "the vpcd reader driver " TR_BUILD_PCSC_DROPDIR
			   "/serial/libifdvpcd.so", "vsmartcard-vpcd" },
};

#define N_WANTED (sizeof(wanted) / sizeof(wanted[0]))

/* Each looked up on first use only: a card process never loads a PKCS#11 module. */
static struct {
	pthread_mutex_t lock;
	int done[N_WANTED];
	char path[N_WANTED][PATH_MAX];  /* "" when missing */
} found = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * The registered module named name (exactly, or a unique prefix up to a
 * dash: "opensc" names opensc-pkcs11) as p11-kit resolves it. The modules
 * are loaded, not initialised; p11-kit reads every registry folder.
 */
static int p11kit_lookup(const char *name, char *path, size_t len)
{
	CK_FUNCTION_LIST **mods = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	size_t name_len = strlen(name);
	char real[PATH_MAX];
	int found_it = 0, fits = 1;

	for (size_t i = 0; mods && mods[i] && !found_it; i++) {
		char *mod_name = p11_kit_module_get_name(mods[i]);
		char *file = p11_kit_module_get_filename(mods[i]);

		if (mod_name && file &&
		    (!strcmp(mod_name, name) ||
		     (!strncmp(mod_name, name, name_len) && mod_name[name_len] == '-'))) {
			found_it = 1;
			/* Canonical: the same library is one string for tr_p11mod. */
			fits = (size_t)snprintf(path, len, "%s",
						realpath(file, real) ? real : file) < len;
		}
		free(mod_name);
		free(file);
	}
	if (mods)
		p11_kit_modules_release(mods);
	if (!found_it)
		return TR_ENOTFOUND;
	return fits ? 0 : TR_EINVAL;
}

static void find_one(size_t i)
{
	char path[PATH_MAX];

	if (wanted[i].p11kit_name) {
		if (p11kit_lookup(wanted[i].p11kit_name, path, sizeof(path)) < 0)
			return;
	} else if (!realpath(TR_BUILD_PCSC_DROPDIR "/serial/libifdvpcd.so", path)) {
		return;
	}
	if (access(path, R_OK) == 0)
		snprintf(found.path[i], sizeof(found.path[i]), "%s", path);
}

int tr_paths_find(tr_path_id id, const char **out)
{
	*out = "";
	if ((size_t)id >= N_WANTED)
		return tr_error_set(TR_EINVAL, "tr_paths_find: unknown id %d", (int)id);
	pthread_mutex_lock(&found.lock);
	if (!found.done[id]) {
		find_one(id);
		found.done[id] = 1;
	}
	pthread_mutex_unlock(&found.lock);
	if (!found.path[id][0]) {
		if (wanted[id].p11kit_name)
			return tr_error_set(TR_EDEPEND,
					    "%s is not installed: p11-kit knows no module '%s' "
					    "(/usr/share/p11-kit/modules/%s.module); install the "
					    "package %s (ci/install-deps)",
					    wanted[id].what, wanted[id].p11kit_name,
					    wanted[id].p11kit_name, wanted[id].package);
		return tr_error_set(TR_EDEPEND, "%s is not installed; install the package %s "
				    "(ci/install-deps)", wanted[id].what, wanted[id].package);
	}
	*out = found.path[id];
	return 0;
}

const char *tr_paths_get(tr_path_id id)
{
	static const char *const missing[] = {
		[TR_PATH_SOFTHSM2] = "libsofthsm2.so (not installed: install the package softhsm2)",
		[TR_PATH_OPENSC] = "opensc-pkcs11.so (not installed: install the package opensc)",
		[TR_PATH_VPCD] = "libifdvpcd.so (not installed: install the package vsmartcard-vpcd)",
	};
	const char *path;

	_Static_assert(sizeof(missing) / sizeof(missing[0]) == N_WANTED, "one text per path");
	if (tr_paths_find(id, &path) < 0)
		return (size_t)id < N_WANTED ? missing[id] : "(unknown path id)";
	return path;
}

int tr_paths_module(const char *arg, char *path, size_t len)
{
	char real[PATH_MAX];
	int error;

	if (!arg || !*arg)
		return tr_error_set(TR_EINVAL, "no PKCS#11 module given");
	if (strchr(arg, '/')) {
		if (!realpath(arg, real))
			return tr_error_set(TR_EDEPEND, "module %s: %s", arg, strerror(errno));
		if ((size_t)snprintf(path, len, "%s", real) >= len)
			return tr_error_set(TR_EINVAL, "module path too long: %s", real);
		return 0;
	}
	if ((error = p11kit_lookup(arg, path, len)) == TR_EINVAL)
		return tr_error_set(TR_EINVAL, "module path of '%s' too long", arg);
	if (error < 0)
		return tr_error_set(TR_EDEPEND, "no PKCS#11 module '%s' registered with p11-kit "
				    "(/usr/share/p11-kit/modules/*.module); give a path", arg);
	return 0;
}
