#include "portal_session.h"

#include "portal_challenge.h"

#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pt_sessions {
	pt_session **items; /* pointers stay valid while the array moves */
	size_t count;
	size_t cap;         /* of items */
	size_t max;         /* per site */
};

int pt_sessions_new(pt_sessions **out, size_t max)
{
	pt_sessions *s;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return tr_error_set(TR_ENOMEM, "session store");
	s->max = max;
	*out = s;
	return 0;
}

static void drop(pt_sessions *s, size_t i)
{
	X509_free(s->items[i]->cert);
	free(s->items[i]);
	memmove(&s->items[i], &s->items[i + 1],
		(s->count - i - 1) * sizeof(*s->items));
	s->count--;
}

static void purge(pt_sessions *s, int64_t now)
{
	size_t i = 0;

	while (i < s->count) {
		if (now - s->items[i]->last_used > PT_SESSION_IDLE)
			drop(s, i);
		else
			i++;
	}
}

int pt_session_create(pt_sessions *s, const char *site, X509 *cert,
		      const char *unit_name, const char *uscc, int64_t now,
		      const pt_session **out)
{
	return pt_session_create_ex(s, site, cert, unit_name, uscc, "", now,
				    out);
}

int pt_session_create_ex(pt_sessions *s, const char *site, X509 *cert,
			 const char *unit_name, const char *uscc,
			 const char *account, int64_t now,
			 const pt_session **out)
{
	pt_session *n;
	int err;

	*out = NULL;
	purge(s, now);
	/* A live session is never evicted for a new one. */
	if (pt_sessions_site_full(s, site))
		return tr_error_set(PT_EFULL, "%zu sessions of site %s are live",
				    s->max, site);
	if (s->count == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		pt_session **items = realloc(s->items, cap * sizeof(*items));

		if (!items)
			return tr_error_set(TR_ENOMEM, "session store");
		s->items = items;
		s->cap = cap;
	}
	if (!(n = calloc(1, sizeof(*n))))
		return tr_error_set(TR_ENOMEM, "session");
	if ((err = pt_random_hex(n->id, PT_SESSION_HEX / 2)) < 0) {
		free(n);
		return err;
	}
	snprintf(n->site, sizeof(n->site), "%s", site);
	snprintf(n->unit_name, sizeof(n->unit_name), "%s", unit_name);
	snprintf(n->uscc, sizeof(n->uscc), "%s", uscc);
	snprintf(n->account, sizeof(n->account), "%s", account ? account : "");
	if (cert)
		X509_up_ref(cert);
	n->cert = cert;
	n->last_used = now;
	s->items[s->count++] = n;
	*out = n;
	return 0;
}

const pt_session *pt_session_find(pt_sessions *s, const char *id,
				  const char *site, int64_t now)
{
	size_t i;

	for (i = 0; i < s->count; i++) {
		pt_session *n = s->items[i];

		if (strcmp(n->id, id) != 0)
			continue;
		if (now - n->last_used > PT_SESSION_IDLE) {
			drop(s, i);
			return NULL;
		}
		if (strcmp(n->site, site) != 0)
			return NULL;
		/* Keep the latest use when the clock was set back. */
		if (now > n->last_used)
			n->last_used = now;
		return n;
	}
	return NULL;
}

int pt_session_remove(pt_sessions *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->count; i++) {
		if (strcmp(s->items[i]->id, id) == 0) {
			drop(s, i);
			return 0;
		}
	}
	return tr_error_set(TR_ENOTFOUND, "no such session");
}

int pt_sessions_site_full(const pt_sessions *s, const char *site)
{
	size_t i, n = 0;

	for (i = 0; i < s->count; i++)
		n += strcmp(s->items[i]->site, site) == 0;
	return n >= s->max;
}

size_t pt_sessions_count(const pt_sessions *s)
{
	return s->count;
}

void pt_sessions_clear(pt_sessions *s)
{
	while (s->count)
		drop(s, s->count - 1);
}

void pt_sessions_free(pt_sessions *s)
{
	if (!s)
		return;
	pt_sessions_clear(s);
	free(s->items);
	free(s);
}
