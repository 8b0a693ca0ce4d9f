#include "p11mod.h"

#include "error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_CACHE 32

struct tr_p11mod {
	char *path;
	void *dl;
	CK_FUNCTION_LIST *fn;
	int refs;
	tr_p11mod *next;
	pthread_mutex_t cache_lock;
	struct {
		CK_SLOT_ID id;
		CK_SLOT_INFO info;
	} slots[SLOT_CACHE];
	size_t n_slots;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tr_p11mod *registry;

int tr_p11mod_load(tr_p11mod **out, const char *path)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get_list;
	tr_p11mod *mod;
	CK_RV rv;
	int error = 0;

	pthread_mutex_lock(&registry_lock);
	for (mod = registry; mod; mod = mod->next) {
		if (!strcmp(mod->path, path)) {
			mod->refs++;
			*out = mod;
			goto out;
		}
	}
	mod = calloc(1, sizeof(*mod));
	if (!mod || !(mod->path = strdup(path))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto fail;
	}
	mod->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!mod->dl) {
		error = tr_error_set(TR_EDEPEND, "PKCS#11 module %s cannot be loaded: %s",
				     path, dlerror());
		goto fail;
	}
	get_list = (CK_C_GetFunctionList)dlsym(mod->dl, "C_GetFunctionList");
	if (!get_list || get_list(&mod->fn) != CKR_OK || !mod->fn) {
		error = tr_error_set(TR_EDEPEND, "%s is not a PKCS#11 module (no C_GetFunctionList)",
				     path);
		goto fail;
	}
	rv = mod->fn->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		error = tr_error_set(TR_EDEPEND, "%s: C_Initialize: %s", path,
				     tr_p11_rv_name(rv));
		goto fail;
	}
	mod->refs = 1;
	pthread_mutex_init(&mod->cache_lock, NULL);
	mod->next = registry;
	registry = mod;
	*out = mod;
	goto out;

fail:
	if (mod) {
		if (mod->dl)
			dlclose(mod->dl);
		free(mod->path);
		free(mod);
	}
out:
	pthread_mutex_unlock(&registry_lock);
	return error;
}

void tr_p11mod_release(tr_p11mod *mod)
{
	tr_p11mod **p;

	if (!mod)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--mod->refs == 0) {
		for (p = &registry; *p; p = &(*p)->next) {
			if (*p == mod) {
				*p = mod->next;
				break;
			}
		}
		mod->fn->C_Finalize(NULL);
		dlclose(mod->dl);
		pthread_mutex_destroy(&mod->cache_lock);
		free(mod->path);
		free(mod);
	}
	pthread_mutex_unlock(&registry_lock);
}

CK_FUNCTION_LIST *tr_p11mod_functions(const tr_p11mod *mod)
{
	return mod->fn;
}

void *tr_p11mod_symbol(const tr_p11mod *mod, const char *name)
{
	return dlsym(mod->dl, name);
}

const char *tr_p11mod_path(const tr_p11mod *mod)
{
	return mod->path;
}

void tr_p11_string(char *dst, size_t dst_len, const unsigned char *src,
		   size_t src_len)
{
	size_t n = src_len < dst_len - 1 ? src_len : dst_len - 1;

	memcpy(dst, src, n);
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

int tr_p11mod_slot_list(tr_p11mod *mod, CK_SLOT_ID *slots, CK_ULONG *count)
{
	CK_ULONG n = 0, max = *count;
	CK_RV rv;

	rv = mod->fn->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK && n > max)
		return tr_error_set(TR_EINVAL, "%s has %lu slots, more than %lu", mod->path,
				    (unsigned long)n, (unsigned long)max);
	if (rv == CKR_OK)
		rv = mod->fn->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetSlotList: %s", tr_p11_rv_name(rv));
	*count = n;
	return 0;
}

int tr_p11mod_slot_list_once(tr_p11mod *mod, CK_SLOT_ID *slots, CK_ULONG *count)
{
	CK_RV rv = mod->fn->C_GetSlotList(CK_TRUE, slots, count);

	if (rv == CKR_BUFFER_TOO_SMALL)
		return tr_error_set(TR_EINVAL, "%s has more than %lu slots", mod->path,
				    (unsigned long)*count);
	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetSlotList: %s", tr_p11_rv_name(rv));
	return 0;
}

int tr_p11mod_slot_identity(tr_p11mod *mod, CK_SLOT_ID slot, CK_SLOT_INFO *out)
{
	CK_RV rv;

	pthread_mutex_lock(&mod->cache_lock);
	for (size_t i = 0; i < mod->n_slots; i++)
		if (mod->slots[i].id == slot) {
			*out = mod->slots[i].info;
			pthread_mutex_unlock(&mod->cache_lock);
			return 0;
		}
	pthread_mutex_unlock(&mod->cache_lock);
	rv = mod->fn->C_GetSlotInfo(slot, out);
	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetSlotInfo: %s", tr_p11_rv_name(rv));
	pthread_mutex_lock(&mod->cache_lock);
	if (mod->n_slots < SLOT_CACHE) {
		mod->slots[mod->n_slots].id = slot;
		mod->slots[mod->n_slots].info = *out;
		mod->n_slots++;
	}
	pthread_mutex_unlock(&mod->cache_lock);
	return 0;
}

int tr_p11mod_find_token(tr_p11mod *mod, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[TR_P11_MAX_SLOTS];
	CK_ULONG count = TR_P11_MAX_SLOTS;
	CK_TOKEN_INFO info;
	char name[sizeof(info.label) + 1];
	int error;

	if ((error = tr_p11mod_slot_list(mod, slots, &count)) < 0)
		return error;
	for (CK_ULONG i = 0; i < count; i++) {
		if (mod->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		tr_p11_string(name, sizeof(name), info.label, sizeof(info.label));
		if (!strcmp(name, label)) {
			*slot = slots[i];
			return 0;
		}
	}
	return tr_error_set(TR_ENOTFOUND, "no token labelled '%s' in %s", label,
			    mod->path);
}

void tr_p11_uri_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	for (; *in && o + 4 < len; in++) {
		if ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') ||
		    (*in >= '0' && *in <= '9') || strchr("-._~", *in))
			out[o++] = *in;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned char)*in);
	}
	out[o] = '\0';
}

const char *tr_p11_rv_name(CK_RV rv)
{
	switch (rv) {
#define RV(x) case x: return #x;
	RV(CKR_OK) RV(CKR_CANCEL) RV(CKR_HOST_MEMORY) RV(CKR_SLOT_ID_INVALID)
	RV(CKR_GENERAL_ERROR) RV(CKR_FUNCTION_FAILED) RV(CKR_ARGUMENTS_BAD)
	RV(CKR_ATTRIBUTE_TYPE_INVALID) RV(CKR_ATTRIBUTE_VALUE_INVALID)
	RV(CKR_DATA_INVALID) RV(CKR_DATA_LEN_RANGE) RV(CKR_DEVICE_ERROR)
	RV(CKR_DEVICE_MEMORY) RV(CKR_DEVICE_REMOVED) RV(CKR_FUNCTION_CANCELED)
	RV(CKR_FUNCTION_NOT_SUPPORTED) RV(CKR_KEY_HANDLE_INVALID)
	RV(CKR_KEY_TYPE_INCONSISTENT) RV(CKR_MECHANISM_INVALID)
	RV(CKR_MECHANISM_PARAM_INVALID) RV(CKR_OBJECT_HANDLE_INVALID)
	RV(CKR_OPERATION_ACTIVE) RV(CKR_OPERATION_NOT_INITIALIZED)
	RV(CKR_PIN_INCORRECT) RV(CKR_PIN_INVALID) RV(CKR_PIN_LEN_RANGE)
	RV(CKR_PIN_EXPIRED) RV(CKR_PIN_LOCKED) RV(CKR_SESSION_CLOSED)
	RV(CKR_SESSION_COUNT) RV(CKR_SESSION_HANDLE_INVALID)
	RV(CKR_SESSION_READ_ONLY) RV(CKR_SESSION_EXISTS)
	RV(CKR_SIGNATURE_INVALID) RV(CKR_TEMPLATE_INCOMPLETE)
	RV(CKR_TEMPLATE_INCONSISTENT) RV(CKR_TOKEN_NOT_PRESENT)
	RV(CKR_TOKEN_NOT_RECOGNIZED) RV(CKR_TOKEN_WRITE_PROTECTED)
	RV(CKR_USER_ALREADY_LOGGED_IN) RV(CKR_USER_NOT_LOGGED_IN)
	RV(CKR_USER_PIN_NOT_INITIALIZED) RV(CKR_USER_TYPE_INVALID)
	RV(CKR_BUFFER_TOO_SMALL) RV(CKR_CRYPTOKI_NOT_INITIALIZED)
	RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) RV(CKR_SESSION_READ_ONLY_EXISTS)
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) RV(CKR_USER_TOO_MANY_TYPES)
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS) RV(CKR_NO_EVENT)
#undef RV
	default: return "CKR_(vendor or unknown)";
	}
}
