/* What this tokenrig is: its version and the git revision it was built from. */
#ifndef TR_HARNESS_VERSION_H
#define TR_HARNESS_VERSION_H

/* "0.1.0": the Makefile's TOKENRIG_VERSION. */
const char *tr_version(void);

/* `git rev-parse --short HEAD` at build time, "unknown" outside a checkout. */
const char *tr_revision(void);

#endif
