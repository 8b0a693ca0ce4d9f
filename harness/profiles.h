/*
 * Token profiles (suites/tokens.conf): which tokens the rig provisions for
 * each portal, as data, so a scenario that needs a new kind of certificate
 * adds a line, not code.
 */
#ifndef TR_HARNESS_PROFILES_H
#define TR_HARNESS_PROFILES_H

#include <stddef.h>

typedef enum tr_cert_kind {
	TR_CERT_VALID,
	TR_CERT_EXPIRED,
	TR_CERT_NOT_YET_VALID,
	TR_CERT_REVOKED,
	TR_CERT_WRONG_CHAIN,
	TR_CERT_STALE_NAME,
	TR_CERT_KEY_MISMATCH,
	TR_CERT_LEGACY,       /* issued by the portal's old CA system */
} tr_cert_kind;

typedef struct tr_profile {
	char name[16];
	char portals[128];  /* "*" or "suzhou,hebei" */
	unsigned unit;
	tr_cert_kind cert;
} tr_profile;

/* Reads the file; TR_EPARSE naming file:line on a bad line. */
int tr_profiles_load(const char *path, tr_profile **out, size_t *n);

/* 1 when the profile applies to the portal. */
int tr_profile_for_portal(const tr_profile *p, const char *portal);

#endif
