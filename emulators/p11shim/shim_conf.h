/*
 * The interposer's configuration: `key = value` lines of the file named by
 * TOKENRIG_SHIM_CONF (format in README.md). A parsed configuration is never
 * changed after it is published, except for its rule counters (atomics), so
 * the call path reads it without a lock.
 */
#ifndef TR_P11SHIM_CONF_H
#define TR_P11SHIM_CONF_H

#include <p11-kit/pkcs11.h>
#include <stdatomic.h>
#include <stdint.h>

#include "emulators/p11shim/shim_funcs.h"

/* SoftHSM2 as p11-kit's registry named it at build time (common/paths.h). */
#define SHIM_DEFAULT_MODULE TR_BUILD_SOFTHSM2_MODULE
#define SHIM_DEFAULT_TRIES 3
#define SHIM_LABEL_MAX 32

typedef enum shim_driver {
	SHIM_DRIVER_OK = 0,
	SHIM_DRIVER_MISSING,   /* C_Initialize fails as if the driver were absent */
	SHIM_DRIVER_EMPTY,     /* the module loads but lists no slot */
} shim_driver;

typedef enum shim_delay_kind {
	SHIM_DELAY_NONE = 0,
	SHIM_DELAY_FIXED,      /* a */
	SHIM_DELAY_UNIFORM,    /* in [a, b] */
	SHIM_DELAY_NORMAL,     /* mean a, deviation b, clamped to [min, max] */
} shim_delay_kind;

typedef struct shim_delay {
	shim_delay_kind kind;
	uint64_t a_ns, b_ns, min_ns, max_ns;
} shim_delay;

/* fault.FN = nth=N [count=K | once] rv=CKR_... */
typedef struct shim_fault {
	int set;
	unsigned long nth;     /* first failing call, 1-based */
	unsigned long count;   /* how many fail from there; 0 = all */
	CK_RV rv;
	atomic_ulong calls;    /* calls of FN seen under this configuration */
} shim_fault;

/* remove_during = FN [LABEL]: the next such call pulls the token. */
typedef struct shim_pull {
	int fn;
	char label[SHIM_LABEL_MAX + 1];   /* "" = any token */
	atomic_int fired;
	struct shim_pull *next;
} shim_pull;

typedef struct shim_token_rule {
	char label[SHIM_LABEL_MAX + 1];
	int max_tries;   /* 0 = the global limit */
	int present;     /* 1 present (default), 0 pulled out */
	struct shim_token_rule *next;
} shim_token_rule;

typedef struct shim_conf {
	char *path;              /* the file, NULL for built-in defaults */
	char *module;
	char *state;             /* PIN counter file, NULL = this process only */
	char *trace;             /* NULL = no trace */
	int max_tries;
	shim_driver driver;
	int driver_line;
	shim_token_rule *tokens;
	int any_absent;          /* some token rule says present = no */
	shim_pull *pulls;
	/* Per function: anything to do besides forwarding? Read on every call. */
	unsigned char active[SHIM_NFUNCS];
	shim_fault fault[SHIM_NFUNCS];
	shim_delay delay[SHIM_NFUNCS];
	struct shim_conf *older;   /* retired versions, freed at C_Finalize */
} shim_conf;

/*
 * Parses path (NULL: defaults only). On a malformed line returns TR_EPARSE
 * with "FILE:LINE: what" as the error message.
 */
int shim_conf_load(shim_conf **out, const char *path);
void shim_conf_free(shim_conf *conf);

/* The rule of a token label, NULL when none. */
const shim_token_rule *shim_conf_token(const shim_conf *conf, const char *label);

/* The PIN try limit of a token label. */
int shim_conf_max_tries(const shim_conf *conf, const char *label);

/* Index of "C_Sign" and friends, -1 when unknown; and back. */
int shim_fn_index(const char *name);
const char *shim_fn_name(int fn);

/* "CKR_DEVICE_ERROR" or a number (0x30) to a CK_RV; -1 unknown. */
int shim_rv_parse(const char *s, CK_RV *out);
const char *shim_rv_name(CK_RV rv);

#endif
