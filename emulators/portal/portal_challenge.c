#include "portal_challenge.h"

#include "common/error.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expired entries are kept this long so that they answer "expired", not
 * "unknown"; after that they are forgotten. */
#define PT_CHALLENGE_KEEP (10 * PT_CHALLENGE_TTL)

typedef struct challenge {
	char nonce[PT_NONCE_HEX + 1];
	char site[32];
	int64_t issued;
	char *text;
} challenge;

struct pt_challenges {
	challenge *items; /* oldest first */
	size_t count;
	size_t cap;       /* of items */
	size_t max;       /* per site */
};

int pt_random_hex(char *hex, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char buf[64];
	size_t i;

	if (n > sizeof(buf))
		return tr_error_set(TR_EINVAL, "random: %zu bytes asked", n);
	if (RAND_bytes(buf, (int)n) != 1)
		return tr_error_set_openssl(TR_ECRYPTO, "RAND_bytes");
	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[buf[i] >> 4];
		hex[2 * i + 1] = digits[buf[i] & 15];
	}
	hex[2 * n] = '\0';
	return 0;
}

int pt_challenges_new(pt_challenges **out, size_t max)
{
	pt_challenges *c;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return tr_error_set(TR_ENOMEM, "challenge store");
	c->max = max;
	*out = c;
	return 0;
}

static void drop(pt_challenges *c, size_t i)
{
	free(c->items[i].text);
	memmove(&c->items[i], &c->items[i + 1],
		(c->count - i - 1) * sizeof(*c->items));
	c->count--;
}

static void purge(pt_challenges *c, int64_t now)
{
	size_t i = 0;

	while (i < c->count) {
		if (now - c->items[i].issued > PT_CHALLENGE_KEEP)
			drop(c, i);
		else
			i++;
	}
}

/*
 * Room for one more challenge of site: the site's oldest expired one (kept
 * only to answer "expired") gives way; live ones never do, another site's
 * never count. PT_EFULL when every one of the site's max is live.
 */
static int make_room(pt_challenges *c, const char *site, int64_t now)
{
	size_t i, n = 0, oldest = c->count;

	for (i = 0; i < c->count; i++) {
		if (strcmp(c->items[i].site, site) != 0)
			continue;
		n++;
		if (oldest == c->count && now - c->items[i].issued > PT_CHALLENGE_TTL)
			oldest = i;
	}
	if (n >= c->max) {
		if (oldest == c->count)
			return tr_error_set(PT_EFULL,
					    "%zu login challenges of site %s outstanding",
					    n, site);
		drop(c, oldest);
	}
	if (c->count == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		challenge *items = realloc(c->items, cap * sizeof(*items));

		if (!items)
			return tr_error_set(TR_ENOMEM, "challenge store");
		c->items = items;
		c->cap = cap;
	}
	return 0;
}

int pt_challenge_issue(pt_challenges *c, const char *portal, const char *site,
		       int64_t now, char nonce[PT_NONCE_HEX + 1],
		       const char **text)
{
	challenge *ch;
	char buf[256];
	int err;

	purge(c, now);
	if ((err = make_room(c, site, now)) < 0)
		return err;

	ch = &c->items[c->count];
	memset(ch, 0, sizeof(*ch));
	if ((err = pt_random_hex(ch->nonce, PT_NONCE_HEX / 2)) < 0)
		return err;
	snprintf(ch->site, sizeof(ch->site), "%s", site);
	ch->issued = now;
	snprintf(buf, sizeof(buf), "tokenrig %s/%s login %s %lld", portal,
		 site, ch->nonce, (long long)now);
	if (!(ch->text = strdup(buf)))
		return tr_error_set(TR_ENOMEM, "challenge text");
	c->count++;
	memcpy(nonce, ch->nonce, PT_NONCE_HEX + 1);
	*text = ch->text;
	return 0;
}

int pt_challenge_take(pt_challenges *c, const char *site, const char *nonce,
		      int64_t now, char **text)
{
	size_t i;
	int expired;

	*text = NULL;
	for (i = 0; i < c->count; i++) {
		challenge *ch = &c->items[i];

		if (strcmp(ch->nonce, nonce) != 0)
			continue;
		/* A nonce of another site was never issued for this one: it
		 * stays usable where it belongs. */
		if (strcmp(ch->site, site) != 0)
			break;
		expired = now - ch->issued > PT_CHALLENGE_TTL;
		*text = ch->text;
		ch->text = NULL;
		drop(c, i);
		if (expired) {
			free(*text);
			*text = NULL;
			return tr_error_set(TR_ETIMEDOUT, "challenge expired");
		}
		return 0;
	}
	return tr_error_set(TR_ENOTFOUND, "challenge unknown or used");
}

size_t pt_challenges_count(const pt_challenges *c)
{
	return c->count;
}

void pt_challenges_clear(pt_challenges *c)
{
	while (c->count)
		drop(c, c->count - 1);
}

void pt_challenges_free(pt_challenges *c)
{
	if (!c)
		return;
	pt_challenges_clear(c);
	free(c->items);
	free(c);
}
