/* What this tokenrig is: its version and the git revision it was built from. */
#ifndef TR_HARNESS_VERSION_H
#define TR_HARNESS_VERSION_H

#include <stdio.h>

/* "0.1.0": the Makefile's TOKENRIG_VERSION. */
const char *tr_version(void);

/* `git rev-parse --short HEAD` at build time, "unknown" outside a checkout. */
const char *tr_revision(void);

/*
 * `tokenrig --version`: the version and revision, then the libraries found:
 * OpenSSL, libcurl and libmicrohttpd as loaded, pcsc-lite as built with,
 * SoftHSM2 from its module's C_GetInfo.
 */
void tr_version_print(FILE *f);

#endif
