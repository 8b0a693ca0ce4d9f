/*
 * The token kinds: one table, one row a kind, capability flags instead of
 * kind names compared across the code. The rig's own kinds (softhsm, vcard,
 * opensc) and the foreign ones `tokenrig certify` drives (a vendor's PKCS#11
 * module, a card in a real reader) are rows of the same table.
 */
#ifndef TR_HARNESS_KINDS_H
#define TR_HARNESS_KINDS_H

#include <stddef.h>

typedef enum tr_kind_flag {
	TR_KIND_INTERPOSER   = 1u << 0,  /* used through the rig's PKCS#11 interposer: controls */
	TR_KIND_CARD         = 1u << 1,  /* a virtual card of the rig's pcscd: shown per column */
	TR_KIND_APDU         = 1u << 2,  /* spoken to in APDUs (PC/SC backend), else PKCS#11 */
	TR_KIND_PUK_RESET    = 1u << 3,  /* the user PIN can be reset with the SO PIN / PUK */
	TR_KIND_KEYGEN       = 1u << 4,  /* can generate key pairs */
	TR_KIND_WRITE_CERT   = 1u << 5,  /* can take certificates */
	TR_KIND_EXACT_TRIES  = 1u << 6,  /* tells the exact number of PIN tries left */
	TR_KIND_DESTRUCTIVE  = 1u << 7,  /* deliberate PIN lockouts allowed */
	TR_KIND_SM2          = 1u << 8,  /* holds SM2 keys */
	TR_KIND_MODULE_GONE  = 1u << 9,  /* its driver (a PKCS#11 module) can be made absent */
	TR_KIND_RIG          = 1u << 10, /* provisioned by the rig itself (`tokenrig run`) */
	TR_KIND_FOREIGN      = 1u << 11, /* a token the rig did not make (`tokenrig certify`) */
	TR_KIND_CERTIFY      = 1u << 12, /* certification rules: no false green, never brick */
} tr_kind_flag;

typedef struct tr_kind {
	const char *name;       /* the column name in results: "softhsm" */
	unsigned flags;         /* tr_kind_flag */
	const char *what;       /* one line for people */
	const char *no_reset;   /* without TR_KIND_PUK_RESET: why (the skip reason) */
	const char *stands_for; /* a foreign kind runs the scenarios written for this rig kind */
} tr_kind;

/*
 * 1 when a scenario for the kinds listed (none: every kind) runs on kind:
 * listed itself, or the rig kind it stands for (a vendor's module: softhsm's).
 */
int tr_kind_scenario_allows(char *const *kinds, size_t n, const char *kind);

/* The kind named name; NULL when there is no such row. */
const tr_kind *tr_kind_find(const char *name);

/* 1 when the kind named name has every flag of flags (0 for an unknown kind). */
int tr_kind_has(const char *name, unsigned flags);

/* The i-th row, NULL past the last. */
const tr_kind *tr_kind_at(size_t i);

/*
 * Sets the flags of a foreign kind (the certification's module or reader
 * row) from what the run found out and allows; the rig's own rows are
 * fixed. TR_EINVAL for a rig kind or an unknown one.
 */
int tr_kind_set_flags(const char *name, unsigned flags);

/* Names of the rig's own kinds, comma-separated, for messages. */
const char *tr_kind_rig_names(void);

/*
 * Checks a comma-separated list of kind names (--kinds, --require-kinds)
 * against the rows having every flag of need: 0, or TR_EINVAL naming the
 * unknown entry. An empty list is TR_EINVAL too.
 */
int tr_kind_list_check(const char *list, unsigned need);

/* 1 when name is in the comma/space-separated list (a NULL list holds all). */
int tr_kind_listed(const char *list, const char *name);

/*
 * The lockout scenarios: they spend every PIN try on purpose. A kind
 * without TR_KIND_DESTRUCTIVE skips them with TR_DESTRUCTIVE_SKIP.
 */
int tr_kind_destructive_ids(const char *const *ids, size_t n);

/*
 * Never brick a real key: before a deliberate wrong PIN on a kind without
 * TR_KIND_DESTRUCTIVE, the token's own word on its tries (CKF_USER_PIN_
 * FINAL_TRY / _LOCKED, a card's 63Cx) is read. TR_KIND_EBRICK when the
 * wrong PIN would be the last try or the PIN is locked already; 0 when it
 * may be tried (tries unknown or more than one left).
 */
#define TR_KIND_EBRICK (-150)
struct tr_token;
int tr_kind_guard_wrong_pin(struct tr_token *tok, const char *kind);

#define TR_DESTRUCTIVE_SKIP "destructive: needs --destructive and the SO PIN/PUK"

#define TR_KIND_SOFTHSM "softhsm"
#define TR_KIND_VCARD   "vcard"
#define TR_KIND_OPENSC  "opensc"
#define TR_KIND_MODULE  "module"   /* certify --module: a vendor's PKCS#11 module */
#define TR_KIND_READER  "reader"   /* certify --readers: a card through the PC/SC backend */

#endif
