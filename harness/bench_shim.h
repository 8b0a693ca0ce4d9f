/*
 * The interposer's overhead, measured against the module alone in one run:
 * the module and the shim are loaded side by side (the shim shares the
 * already initialised module), and the same session is driven directly and
 * through the shim, in interleaved rounds so drift (CPU frequency, other
 * load) falls on both sides alike.
 */
#ifndef TR_HARNESS_BENCH_SHIM_H
#define TR_HARNESS_BENCH_SHIM_H

#include <stdio.h>

typedef struct tr_bench_shim_result {
	unsigned iterations;
	double sign_direct_us;    /* median C_SignInit + C_Sign (ECDSA, 32 bytes) */
	double sign_shim_us;
	double cheap_direct_us;   /* median C_GetSessionInfo */
	double cheap_shim_us;
	double cheap_overhead_us; /* shim - direct, per call */
	double sign_overhead_us;  /* per C_SignInit + C_Sign pair */
	double sign_ratio;        /* shim / direct */
} tr_bench_shim_result;

/*
 * Runs the measurement on the token labelled token_label (logged in with
 * pin; it needs an EC P-256 signing key). The shim gets a configuration of
 * its own that names module_path and nothing else.
 */
int tr_bench_shim_run(const char *shim_path, const char *module_path,
		      const char *token_label, const char *pin,
		      unsigned iterations, tr_bench_shim_result *res);

/* The same, printing medians, the per-call overhead and the ratio to out. */
int tr_bench_shim(const char *shim_path, const char *module_path,
		  const char *token_label, const char *pin, unsigned iterations,
		  FILE *out);

#endif
