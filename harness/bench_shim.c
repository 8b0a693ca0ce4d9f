#include "harness/bench_shim.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/p11mod.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 20
#define CHEAP_BATCH 64   /* cheap calls per sample: the clock costs as much */

typedef struct side {
	void *dl;
	CK_FUNCTION_LIST *fn;
	int owned;     /* we C_Initialize'd it */
} side;

static int side_load(side *s, const char *path)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get;
	CK_RV rv;

	memset(s, 0, sizeof(*s));
	if (!(s->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		return tr_error_set(TR_EDEPEND, "cannot load %s: %s", path, dlerror());
	get = (CK_C_GetFunctionList)dlsym(s->dl, "C_GetFunctionList");
	if (!get || get(&s->fn) != CKR_OK)
		return tr_error_set(TR_EDEPEND, "%s: no C_GetFunctionList", path);
	rv = s->fn->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return tr_error_set(TR_EDEPEND, "%s: C_Initialize: %s", path,
				    tr_p11_rv_name(rv));
	s->owned = rv == CKR_OK;
	return 0;
}

static void side_unload(side *s, int close_dl)
{
	if (s->fn && s->owned)
		s->fn->C_Finalize(NULL);
	/* Real modules (SoftHSM, OpenSSL inside) are not unloaded. */
	if (s->dl && close_dl)
		dlclose(s->dl);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

static int find_key(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *key)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE type = CKK_EC;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
	};
	CK_ULONG n = 0;
	CK_RV rv = fn->C_FindObjectsInit(s, tmpl, 2);

	if (rv == CKR_OK)
		rv = fn->C_FindObjects(s, key, 1, &n);
	fn->C_FindObjectsFinal(s);
	if (rv != CKR_OK || n != 1)
		return tr_error_set(TR_ENOTFOUND, "no EC private key on the token (%s)",
				    tr_p11_rv_name(rv));
	return 0;
}

static int sign_once(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
		     double *us)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	unsigned char digest[32], sig[256];
	CK_ULONG sig_len = sizeof(sig);
	uint64_t t0;
	CK_RV rv;

	memset(digest, 0x5a, sizeof(digest));
	t0 = tr_clock_ns();
	rv = fn->C_SignInit(s, &mech, key);
	if (rv == CKR_OK)
		rv = fn->C_Sign(s, digest, sizeof(digest), sig, &sig_len);
	*us = (double)(tr_clock_ns() - t0) / 1000.0;
	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_Sign: %s", tr_p11_rv_name(rv));
	return 0;
}

static int cheap_batch(CK_FUNCTION_LIST *fn, CK_SESSION_HANDLE s, double *us)
{
	CK_SESSION_INFO info;
	uint64_t t0 = tr_clock_ns();
	CK_RV rv = CKR_OK;

	for (int i = 0; i < CHEAP_BATCH && rv == CKR_OK; i++)
		rv = fn->C_GetSessionInfo(s, &info);
	*us = (double)(tr_clock_ns() - t0) / 1000.0 / CHEAP_BATCH;
	if (rv != CKR_OK)
		return tr_error_set(TR_EIO, "C_GetSessionInfo: %s", tr_p11_rv_name(rv));
	return 0;
}

/* A configuration for the shim naming only the module: no faults, no trace. */
static int shim_conf(char *dir, char *conf, size_t len, const char *module_path)
{
	char text[4200];
	int n, error;

	snprintf(dir, 64, "/tmp/tokenrig-bench-XXXXXX");
	if (!mkdtemp(dir))
		return tr_error_set(TR_EIO, "mkdtemp failed");
	n = snprintf(text, sizeof(text), "# tokenrig bench\nmodule = %s\n", module_path);
	if (n < 0 || (size_t)n >= sizeof(text))
		return tr_error_set(TR_EINVAL, "module path too long");
	if ((error = tr_fs_join(conf, len, dir, "shim.conf")) < 0)
		return error;
	return tr_fs_write_atomic(conf, text, (size_t)n, 0600);
}

int tr_bench_shim_run(const char *shim_path, const char *module_path,
		      const char *token_label, const char *pin,
		      unsigned iterations, tr_bench_shim_result *res)
{
	side direct = { 0 }, shim = { 0 };
	char dir[64] = "", conf[4096], *saved = NULL;
	const char *old;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key;
	CK_SLOT_ID slot;
	double *sd = NULL, *ss = NULL, *cd = NULL, *cs = NULL;
	unsigned per_round, n = 0;
	tr_p11mod *mod = NULL;
	CK_RV rv;
	int error;

	memset(res, 0, sizeof(*res));
	if (iterations < ROUNDS)
		iterations = ROUNDS;
	per_round = iterations / ROUNDS;
	iterations = per_round * ROUNDS;
	if (!(sd = calloc(iterations, sizeof(double))) || !(ss = calloc(iterations, sizeof(double))) ||
	    !(cd = calloc(iterations, sizeof(double))) || !(cs = calloc(iterations, sizeof(double)))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	/* The module first (the shim then shares it), through p11mod for lookup. */
	if ((error = tr_p11mod_load(&mod, module_path)) < 0 ||
	    (error = tr_p11mod_find_token(mod, token_label, &slot)) < 0 ||
	    (error = side_load(&direct, module_path)) < 0 ||
	    (error = shim_conf(dir, conf, sizeof(conf), module_path)) < 0)
		goto out;
	if ((old = getenv("TOKENRIG_SHIM_CONF")) && !(saved = strdup(old))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	setenv("TOKENRIG_SHIM_CONF", conf, 1);
	error = side_load(&shim, shim_path);
	if (saved)
		setenv("TOKENRIG_SHIM_CONF", saved, 1);
	else
		unsetenv("TOKENRIG_SHIM_CONF");
	if (error < 0)
		goto out;

	rv = direct.fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = direct.fn->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		error = tr_error_set(TR_EIO, "opening %s: %s", token_label, tr_p11_rv_name(rv));
		goto out;
	}
	if ((error = find_key(direct.fn, s, &key)) < 0)
		goto out;
	/* Warm-up: first calls fault in pages and fill caches. */
	for (int i = 0; i < 20; i++) {
		double t;

		if ((error = sign_once(direct.fn, s, key, &t)) < 0 ||
		    (error = sign_once(shim.fn, s, key, &t)) < 0)
			goto out;
	}
	/*
	 * Call by call, alternating who goes first in every round, so drift and
	 * cache effects fall on both sides alike.
	 */
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < per_round; i++, n++) {
			int shim_first = (r + i) % 2;

			for (int pass = 0; pass < 2; pass++) {
				side *x = (pass == 0) == shim_first ? &shim : &direct;
				double *sv = x == &shim ? ss : sd, *cv = x == &shim ? cs : cd;

				if ((error = sign_once(x->fn, s, key, &sv[n])) < 0 ||
				    (error = cheap_batch(x->fn, s, &cv[n])) < 0)
					goto out;
			}
		}
	}
	res->iterations = iterations;
	res->sign_direct_us = median(sd, n);
	res->sign_shim_us = median(ss, n);
	res->cheap_direct_us = median(cd, n);
	res->cheap_shim_us = median(cs, n);
	res->cheap_overhead_us = res->cheap_shim_us - res->cheap_direct_us;
	res->sign_overhead_us = res->sign_shim_us - res->sign_direct_us;
	res->sign_ratio = res->sign_direct_us > 0 ? res->sign_shim_us / res->sign_direct_us : 0;
out:
	if (s != CK_INVALID_HANDLE && direct.fn) {
		direct.fn->C_Logout(s);
		direct.fn->C_CloseSession(s);
	}
	side_unload(&shim, 1);
	side_unload(&direct, 0);
	tr_p11mod_release(mod);
	if (dir[0])
		tr_fs_remove_tree(dir);
	free(saved);
	free(sd);
	free(ss);
	free(cd);
	free(cs);
	return error;
}

int tr_bench_shim(const char *shim_path, const char *module_path,
		  const char *token_label, const char *pin, unsigned iterations,
		  FILE *out)
{
	tr_bench_shim_result r;
	int error = tr_bench_shim_run(shim_path, module_path, token_label, pin,
				      iterations, &r);

	if (error < 0) {
		fprintf(out, "bench-shim: %s\n", tr_error_last());
		return error;
	}
	fprintf(out, "bench-shim: %u iterations, interleaved call by call in %d rounds\n",
		r.iterations, ROUNDS);
	fprintf(out, "  C_GetSessionInfo  direct %8.3f us  shim %8.3f us  overhead %+.3f us/call\n",
		r.cheap_direct_us, r.cheap_shim_us, r.cheap_overhead_us);
	fprintf(out, "  C_SignInit+C_Sign direct %8.2f us  shim %8.2f us  overhead %+.3f us "
		"(%+.2f%%, ratio %.4f)\n", r.sign_direct_us, r.sign_shim_us,
		r.sign_overhead_us, (r.sign_ratio - 1) * 100, r.sign_ratio);
	return 0;
}
