/*
 * The interposer's core, shared by the forwarding wrappers: every wrapper
 * calls shim_call_begin() before the real function and shim_call_end()
 * after it. The common case (nothing configured for this function, no trace,
 * no token ever pulled) costs a coarse clock read and two relaxed loads.
 */
#ifndef TR_P11SHIM_SHIM_H
#define TR_P11SHIM_SHIM_H

#include <p11-kit/pkcs11.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "emulators/p11shim/shim_conf.h"

#define SHIM_NO_SLOT ((CK_SLOT_ID)-1)
#define SHIM_EXPORT __attribute__((visibility("default")))

/* shim_flags bits: reasons for the slow path on every call. */
#define SHIM_FL_TRACE 1      /* the trace is on */
#define SHIM_FL_SESSIONS 2   /* a token was pulled: sessions may be dead */

typedef struct shim_call {
	int fn;
	int slow;
	unsigned gen;               /* presence generation at the start */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	uint64_t t0;
	CK_RV override;             /* a fault applied after the real call */
	const shim_conf *conf;
} shim_call;

extern CK_FUNCTION_LIST *shim_real;
extern CK_FUNCTION_LIST shim_function_list;
extern _Atomic(shim_conf *) shim_conf_cur;
extern atomic_uint shim_presence_gen;
extern atomic_int shim_flags;
extern atomic_ullong shim_next_check_ms;
extern int shim_watch;

/* The functions with semantics of their own (shim.c). */
CK_RV shim_C_Initialize(void *args);
CK_RV shim_C_Finalize(void *reserved);
CK_RV shim_C_GetFunctionList(CK_FUNCTION_LIST **list);
CK_RV shim_C_GetFunctionList(CK_FUNCTION_LIST **list);
CK_RV shim_C_GetSlotList(unsigned char present, CK_SLOT_ID *list, unsigned long *count);
CK_RV shim_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO *info);
CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info);
CK_RV shim_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved);
CK_RV shim_C_InitToken(CK_SLOT_ID slot, unsigned char *pin, unsigned long pin_len,
		       unsigned char *label);
CK_RV shim_C_InitPIN(CK_SESSION_HANDLE s, unsigned char *pin, unsigned long pin_len);
CK_RV shim_C_SetPIN(CK_SESSION_HANDLE s, unsigned char *old_pin, unsigned long old_len,
		    unsigned char *new_pin, unsigned long new_len);
CK_RV shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app,
			 CK_NOTIFY notify, CK_SESSION_HANDLE *session);
CK_RV shim_C_CloseSession(CK_SESSION_HANDLE s);
CK_RV shim_C_CloseAllSessions(CK_SLOT_ID slot);
CK_RV shim_C_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user, unsigned char *pin,
		   unsigned long len);

/* Re-reads the configuration (and state) files if they changed. */
void shim_reload_check(uint64_t now_ms);

int shim_call_begin_slow(shim_call *c, int fn, CK_SLOT_ID slot,
			 CK_SESSION_HANDLE session, const shim_conf *conf, CK_RV *rv);
CK_RV shim_call_end_slow(shim_call *c, CK_RV rv, unsigned long in_len,
			 unsigned long out_len);

static inline uint64_t shim_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* At most one stat of the configuration every 20 ms, by whichever thread. */
static inline void shim_tick(void)
{
	uint64_t now;

	if (!shim_watch)
		return;
	now = shim_coarse_ms();
	if (now >= atomic_load_explicit(&shim_next_check_ms, memory_order_relaxed))
		shim_reload_check(now);
}

/* 0: go on and call the real function; 1: return *rv instead. */
static inline int shim_call_begin(shim_call *c, int fn, CK_SLOT_ID slot,
				  CK_SESSION_HANDLE session, CK_RV *rv)
{
	const shim_conf *conf;

	if (__builtin_expect(shim_real == NULL, 0)) {
		*rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		return 1;
	}
	shim_tick();
	conf = atomic_load_explicit(&shim_conf_cur, memory_order_acquire);
	c->slow = 0;
	c->fn = fn;
	c->slot = slot;
	c->session = session;
	c->gen = atomic_load_explicit(&shim_presence_gen, memory_order_acquire);
	if (__builtin_expect(!conf->active[fn] &&
			     !atomic_load_explicit(&shim_flags, memory_order_relaxed), 1))
		return 0;
	return shim_call_begin_slow(c, fn, slot, session, conf, rv);
}

static inline CK_RV shim_call_end(shim_call *c, CK_RV rv, unsigned long in_len,
				  unsigned long out_len)
{
	if (__builtin_expect(!c->slow && c->gen == atomic_load_explicit(
		&shim_presence_gen, memory_order_relaxed), 1))
		return rv;
	return shim_call_end_slow(c, rv, in_len, out_len);
}

#endif
