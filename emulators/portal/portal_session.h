/*
 * Sessions: random hex identifiers, each bound to one site and to the
 * certificate that logged in, forgotten after PT_SESSION_IDLE seconds of
 * portal time without use.
 */
#ifndef TR_PORTAL_SESSION_H
#define TR_PORTAL_SESSION_H

#include "portal_challenge.h" /* PT_EFULL */

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define PT_SESSION_IDLE (30 * 60)
#define PT_SESSION_HEX 32

typedef struct pt_sessions pt_sessions;

/* Read-only to everyone but portal_session.c. */
typedef struct pt_session {
	char id[PT_SESSION_HEX + 1];
	char site[32];
	X509 *cert;          /* the certificate that logged in (owned) */
	char unit_name[256]; /* from the certificate */
	char uscc[64];
	char account[64];    /* the province's account, "" when none */
	int64_t last_used;
} pt_session;

/*
 * A store of at most max live sessions per site: creating one more is
 * refused (PT_EFULL) until one ends or idles out; none is evicted.
 */
int pt_sessions_new(pt_sessions **out, size_t max);

/* Creates a session for site; takes its own reference on cert. */
int pt_session_create(pt_sessions *s, const char *site, X509 *cert,
		      const char *unit_name, const char *uscc, int64_t now,
		      const pt_session **out);

/*
 * The same with the province's account name; cert may be NULL (a password
 * login) and account "".
 */
int pt_session_create_ex(pt_sessions *s, const char *site, X509 *cert,
			 const char *unit_name, const char *uscc,
			 const char *account, int64_t now,
			 const pt_session **out);

/*
 * The live session id of site, NULL when unknown, expired (then forgotten)
 * or of another site. A hit counts as use.
 */
const pt_session *pt_session_find(pt_sessions *s, const char *id,
				  const char *site, int64_t now);

/* Forgets a session; TR_ENOTFOUND when there is none. */
int pt_session_remove(pt_sessions *s, const char *id);

size_t pt_sessions_count(const pt_sessions *s);

/* 1 when site has max sessions (call after a purge: pt_session_create). */
int pt_sessions_site_full(const pt_sessions *s, const char *site);

void pt_sessions_clear(pt_sessions *s);
void pt_sessions_free(pt_sessions *s);

#endif
