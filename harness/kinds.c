#include "harness/kinds.h"

#include "common/error.h"
#include "harness/token.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define RIG_P11 (TR_KIND_RIG | TR_KIND_KEYGEN | TR_KIND_WRITE_CERT)

/*
 * The rows. The foreign ones start with no capability at all: certify sets
 * what the module or card proved to have (tr_kind_set_flags) before any
 * case runs.
 */
static tr_kind kinds[] = {
	{ TR_KIND_SOFTHSM,
	  RIG_P11 | TR_KIND_INTERPOSER | TR_KIND_PUK_RESET | TR_KIND_EXACT_TRIES |
	  TR_KIND_DESTRUCTIVE,
	  "SoftHSM2 tokens through the rig's PKCS#11 interposer", NULL, NULL },
	{ TR_KIND_VCARD,
	  RIG_P11 | TR_KIND_CARD | TR_KIND_APDU | TR_KIND_PUK_RESET | TR_KIND_EXACT_TRIES |
	  TR_KIND_DESTRUCTIVE | TR_KIND_SM2,
	  "the rig's virtual PIV card through its pcscd, in APDUs", NULL, NULL },
	/*
	 * OpenSC's PIV driver refuses an SO login with the PUK; the rig's
	 * opensc.conf sets user_pin_unblock_style = set_pin_in_unlogged_session,
	 * so C_SetPIN(PUK, new PIN) unblocks (token_p11.c's reset).
	 */
	{ TR_KIND_OPENSC,
	  TR_KIND_RIG | TR_KIND_CARD | TR_KIND_DESTRUCTIVE | TR_KIND_MODULE_GONE |
	  TR_KIND_PUK_RESET,
	  "the virtual cards through OpenSC's PKCS#11 module", NULL, NULL },
	{ TR_KIND_MODULE, TR_KIND_FOREIGN | TR_KIND_CERTIFY,
	  "a token of a vendor's PKCS#11 module (tokenrig certify --module)",
	  "no SO PIN given (--so-pin-env): the PIN cannot be reset", TR_KIND_SOFTHSM },
	{ TR_KIND_READER, TR_KIND_FOREIGN | TR_KIND_CERTIFY | TR_KIND_APDU,
	  "a PIV card in a PC/SC reader (tokenrig certify --readers)",
	  "no PUK given (--so-pin-env): the PIN cannot be unblocked", TR_KIND_VCARD },
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const tr_kind *tr_kind_find(const char *name)
{
	for (size_t i = 0; name && i < N_KINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

int tr_kind_has(const char *name, unsigned flags)
{
	const tr_kind *k = tr_kind_find(name);
	unsigned have;

	if (!k)
		return 0;
	pthread_mutex_lock(&lock);
	have = k->flags;
	pthread_mutex_unlock(&lock);
	return (have & flags) == flags;
}

const tr_kind *tr_kind_at(size_t i)
{
	return i < N_KINDS ? &kinds[i] : NULL;
}

int tr_kind_set_flags(const char *name, unsigned flags)
{
	tr_kind *k = (tr_kind *)tr_kind_find(name);

	if (!k || !(k->flags & TR_KIND_FOREIGN))
		return tr_error_set(TR_EINVAL, "'%s' is not a foreign token kind", name ? name : "");
	pthread_mutex_lock(&lock);
	/* A foreign row stays foreign and under certification rules. */
	k->flags = flags | TR_KIND_FOREIGN | TR_KIND_CERTIFY | (k->flags & TR_KIND_APDU);
	k->flags &= ~(unsigned)(TR_KIND_RIG | TR_KIND_INTERPOSER | TR_KIND_CARD);
	pthread_mutex_unlock(&lock);
	return 0;
}

static char rig_names[128];

static void build_rig_names(void)
{
	size_t off = 0;

	for (size_t i = 0; i < N_KINDS && off < sizeof(rig_names); i++)
		if (kinds[i].flags & TR_KIND_RIG)
			off += (size_t)snprintf(rig_names + off, sizeof(rig_names) - off, "%s%s",
						off ? ", " : "", kinds[i].name);
}

const char *tr_kind_rig_names(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, build_rig_names);
	return rig_names;
}

int tr_kind_listed(const char *list, const char *name)
{
	size_t len = strlen(name);

	if (!list)
		return 1;
	for (const char *p = list + strspn(list, ", "); *p;) {
		size_t n = strcspn(p, ", ");

		if (n == len && !strncmp(p, name, len))
			return 1;
		p += n;
		p += strspn(p, ", ");
	}
	return 0;
}

int tr_kind_list_check(const char *list, unsigned need)
{
	int named = 0;

	if (!list)
		return 0;
	for (const char *p = list + strspn(list, ", "); *p;) {
		size_t n = strcspn(p, ", "), k;

		for (k = 0; k < N_KINDS; k++)
			if (strlen(kinds[k].name) == n && !strncmp(p, kinds[k].name, n) &&
			    (kinds[k].flags & need) == need)
				break;
		if (k == N_KINDS)
			return tr_error_set(TR_EINVAL, "unknown token kind '%.*s' (%s)", (int)n, p,
					    tr_kind_rig_names());
		named++;
		p += n;
		p += strspn(p, ", ");
	}
	return named ? 0 : tr_error_set(TR_EINVAL, "no token kind named");
}

/* Catalog IDs whose scenarios lock the PIN (TK-E02: at the limit; the rest: lock and unblock). */
static const char *const lockout_ids[] = { "TK-E02", "SZ-E09", "HB-E08", "SC-E03" };

int tr_kind_destructive_ids(const char *const *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(lockout_ids) / sizeof(lockout_ids[0]); k++)
			if (!strcmp(ids[i], lockout_ids[k]))
				return 1;
	return 0;
}

int tr_kind_guard_wrong_pin(struct tr_token *tok, const char *kind)
{
	int tries;

	if (tr_kind_has(kind, TR_KIND_DESTRUCTIVE) || !tok)
		return 0;
	tries = tr_token_pin_tries(tok);
	if (tries == 0)
		return tr_error_set(TR_KIND_EBRICK, "never brick a real key: the PIN is locked "
				    "already (CKF_USER_PIN_LOCKED); no wrong PIN is tried");
	if (tries == 1)
		return tr_error_set(TR_KIND_EBRICK, "never brick a real key: the next wrong PIN "
				    "would be the last try (CKF_USER_PIN_FINAL_TRY); stopped short");
	return 0;
}

int tr_kind_scenario_allows(char *const *kinds, size_t n, const char *kind)
{
	const tr_kind *k = tr_kind_find(kind);

	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kinds[i], kind) || (k && k->stands_for && !strcmp(kinds[i], k->stands_for)))
			return 1;
	return 0;
}
