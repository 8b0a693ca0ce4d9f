/*
 * Loading PKCS#11 modules. A module is loaded and C_Initialize'd once per
 * process, however many tokens of it are opened, and finalized when the last
 * user releases it.
 */
#ifndef TR_COMMON_P11MOD_H
#define TR_COMMON_P11MOD_H

#include <p11-kit/pkcs11.h>

typedef struct tr_p11mod tr_p11mod;

/* TR_EDEPEND (module missing / no C_GetFunctionList / C_Initialize failed). */
int tr_p11mod_load(tr_p11mod **out, const char *path);
void tr_p11mod_release(tr_p11mod *mod);

CK_FUNCTION_LIST *tr_p11mod_functions(const tr_p11mod *mod);

/* A module's own extra export (e.g. the interposer's), NULL when absent. */
void *tr_p11mod_symbol(const tr_p11mod *mod, const char *name);
const char *tr_p11mod_path(const tr_p11mod *mod);

/*
 * How many slots the rig reads from a module: the four provinces already
 * make 62 SoftHSM tokens, so a fifth needs room (2 KiB on the stack).
 */
#define TR_P11_MAX_SLOTS 256

/*
 * The slots with a token, by the two-call idiom (SoftHSM refreshes its list,
 * adding the next free slot, only on the call that asks for the count).
 * At most *count are returned; *count is set to how many.
 */
int tr_p11mod_slot_list(tr_p11mod *mod, CK_SLOT_ID *slots, CK_ULONG *count);

/*
 * The slots with a token in one call (no count-first round trip: some
 * modules, OpenSC among them, poll every reader on each call).
 */
int tr_p11mod_slot_list_once(tr_p11mod *mod, CK_SLOT_ID *slots, CK_ULONG *count);

/*
 * A slot's description and manufacturer, cached per module: they name the
 * reader and never change for a slot ID (OpenSC takes ~10 ms a call). The
 * flags of *out are the first call's: ask C_GetSlotInfo for presence.
 */
int tr_p11mod_slot_identity(tr_p11mod *mod, CK_SLOT_ID slot, CK_SLOT_INFO *out);

/* Finds the slot whose token label is label (slot IDs move; labels stay). */
int tr_p11mod_find_token(tr_p11mod *mod, const char *label, CK_SLOT_ID *slot);

/* "CKR_PIN_INCORRECT" and friends. */
/*
 * in as an RFC 7512 attribute value (labels and reader names have spaces):
 * unreserved characters kept, the others percent-encoded; cut to fit len.
 */
void tr_p11_uri_escape(const char *in, char *out, size_t len);

const char *tr_p11_rv_name(CK_RV rv);

/* Copies a blank-padded PKCS#11 string field into a C string. */
void tr_p11_string(char *dst, size_t dst_len, const unsigned char *src,
		   size_t src_len);

#endif
