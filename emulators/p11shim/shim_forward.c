/*
 * Plain forwarding of the functions without semantics of their own, and the
 * function table: both generated from the one list of shim_funcs.h. Every
 * wrapper goes through the same begin/end pair, so faults, latency, presence
 * and the trace apply to all of them.
 */
#include "emulators/p11shim/shim.h"

#include <stddef.h>

/* What a FWD line's target, in and out expand to (shim_funcs.h). */
#define NONE SHIM_NO_SLOT, CK_INVALID_HANDLE
#define SLOT(slot) (slot), CK_INVALID_HANDLE
#define SESSION(session) SHIM_NO_SLOT, (session)
#define OUT(len) ((len) ? *(len) : 0)

#define WRAP_OWN(name)
#define WRAP_FWD(name, target, params, args, in, out)                 \
	static CK_RV w_##name params                                  \
	{                                                             \
		shim_call c;                                          \
		CK_RV rv;                                             \
                                                                      \
		if (shim_call_begin(&c, SHIM_F_##name, target, &rv))  \
			return rv;                                    \
		rv = shim_real->name args;                            \
		return shim_call_end(&c, rv, in, out);                \
	}

SHIM_FUNCS(WRAP_OWN, WRAP_FWD)

#define ENTRY_OWN(name) .name = shim_##name,
#define ENTRY_FWD(name, ...) .name = w_##name,

CK_FUNCTION_LIST shim_function_list = {
	.version = { 2, 40 },
	SHIM_FUNCS(ENTRY_OWN, ENTRY_FWD)
};

/* The list has every function of the table: a missing one would leave a NULL. */
_Static_assert(offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent) ==
	       offsetof(CK_FUNCTION_LIST, C_Initialize) + (SHIM_NFUNCS - 1) * sizeof(void *),
	       "shim_funcs.h does not list every function of CK_FUNCTION_LIST");
