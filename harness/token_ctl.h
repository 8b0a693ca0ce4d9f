/*
 * Control of the emulated tokens during a case: pull and insert a token,
 * inject faults and latency, take the driver away. For SoftHSM tokens this
 * is the interposer's configuration, rewritten atomically and re-read at
 * once; every case starts from the base configuration and fresh PIN
 * counters.
 */
#ifndef TR_HARNESS_TOKEN_CTL_H
#define TR_HARNESS_TOKEN_CTL_H

typedef struct tr_token_ctl tr_token_ctl;

/* shim_conf: the interposer's configuration file; base: its base text. */
int tr_token_ctl_new(tr_token_ctl **out, const char *shim_path, const char *shim_conf,
		     const char *base);
void tr_token_ctl_free(tr_token_ctl *ctl);

/*
 * Sets one control of the token labelled label (the scenario's
 * `token-control` keys): present = yes|no, remove_during = FUNCTION,
 * fault = FUNCTION SPEC, latency = FUNCTION SPEC, driver = present|missing|
 * empty, max_tries = N. Takes effect at once. TR_EINVAL for an unknown key.
 */
int tr_token_ctl_set(tr_token_ctl *ctl, const char *label, const char *key,
		     const char *value);

/* Back to the base configuration, PIN counters forgotten. */
int tr_token_ctl_reset(tr_token_ctl *ctl);

/* 1 when the driver is set missing: tokens must be opened anew to see it. */
int tr_token_ctl_driver_changed(const tr_token_ctl *ctl);

#endif
