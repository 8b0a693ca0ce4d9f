/*
 * Login challenges: single-use random nonces, each bound to one site and
 * valid for PT_CHALLENGE_TTL seconds of portal time.
 */
#ifndef TR_PORTAL_CHALLENGE_H
#define TR_PORTAL_CHALLENGE_H

#include <stddef.h>
#include <stdint.h>

#define PT_CHALLENGE_TTL 120

/* A per-site store is full of live entries (the portal answers 429). */
#define PT_EFULL (-100)
#define PT_NONCE_HEX 32

typedef struct pt_challenges pt_challenges;

/*
 * A store of at most max outstanding challenges per site: a new one
 * replaces the site's oldest expired one, and is refused (PT_EFULL) while
 * all of them are live.
 */
int pt_challenges_new(pt_challenges **out, size_t max);

/*
 * Issues a challenge for site. nonce receives PT_NONCE_HEX hex digits;
 * *text (borrowed, valid until the challenge is taken or the store cleared)
 * is the string the client signs. PT_EFULL when the site has max live
 * challenges.
 */
int pt_challenge_issue(pt_challenges *c, const char *portal, const char *site,
		       int64_t now, char nonce[PT_NONCE_HEX + 1],
		       const char **text);

/*
 * Takes the challenge nonce of site: it can never be used again. On success
 * *text is a malloc'd copy of the signed text. TR_ENOTFOUND when the nonce
 * was never issued for this site or was used already; TR_ETIMEDOUT when it
 * is older than PT_CHALLENGE_TTL (it is consumed as well).
 */
int pt_challenge_take(pt_challenges *c, const char *site, const char *nonce,
		      int64_t now, char **text);

size_t pt_challenges_count(const pt_challenges *c);

void pt_challenges_clear(pt_challenges *c);
void pt_challenges_free(pt_challenges *c);

/* Fills hex with 2*n random hex digits (n random bytes) and a NUL. */
int pt_random_hex(char *hex, size_t n);

#endif
