/*
 * tokenrig-p11shim: a PKCS#11 interposer in front of a real module (SoftHSM2
 * by default) that adds what real USB keys do and software tokens do not:
 * PIN retry limits, removal and re-insertion, a missing driver, faults and
 * device latency, plus a timing trace. See README.md for the configuration.
 *
 * Locking: one mutex (lock) guards the session table, the slot cache, the
 * pulled tokens and the slot events; the call path takes it only on the slow
 * path. The configuration is published as an immutable pointer.
 */
#include "emulators/p11shim/shim.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/p11mod.h" /* TR_P11_MAX_SLOTS only: p11mod.c is not linked in */
#include "emulators/p11shim/shim_state.h"
#include "emulators/p11shim/shim_trace.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK_EVERY_MS 20
#define SLICE_NS (20 * 1000000ull)
#define MAX_PULLED 16
#define MAX_EVENTS 64
#define USER_PIN_FLAGS (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | \
			CKF_USER_PIN_LOCKED)

CK_FUNCTION_LIST *shim_real;
_Atomic(shim_conf *) shim_conf_cur;
atomic_uint shim_presence_gen;
atomic_int shim_flags;
atomic_ullong shim_next_check_ms;
int shim_watch;

typedef struct session_ent {
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	int dead;   /* its token was pulled out */
} session_ent;

typedef struct slot_ent {
	CK_SLOT_ID slot;
	char label[SHIM_LABEL_MAX + 1];
	char serial[17];
	int absent;   /* last state seen, to notice changes */
} slot_ent;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t event_cond = PTHREAD_COND_INITIALIZER;

static void *real_dl;           /* kept across C_Finalize: modules dislike dlclose */
static char *real_path;
static int real_owned;          /* we initialised it (not somebody else in-process) */
static struct stat conf_st;
static struct stat state_st;

static session_ent *sessions;
static size_t n_sessions, cap_sessions;
static slot_ent *slots;
static size_t n_slots, cap_slots;
static char pulled[MAX_PULLED][SHIM_LABEL_MAX + 1];
static int n_pulled;
static CK_SLOT_ID events[MAX_EVENTS];
static int n_events;
static int finalizing, waiters;

/* Functions refused with CKR_TOKEN_NOT_PRESENT on a slot without token. */
static int needs_token(int fn)
{
	return fn == SHIM_F_C_GetTokenInfo || fn == SHIM_F_C_GetMechanismList ||
	       fn == SHIM_F_C_GetMechanismInfo || fn == SHIM_F_C_InitToken ||
	       fn == SHIM_F_C_OpenSession;
}

/* Operations that end in the real module even when we fail them. */
static int ends_operation(int fn)
{
	switch (fn) {
	case SHIM_F_C_Sign: case SHIM_F_C_SignFinal: case SHIM_F_C_SignRecover:
	case SHIM_F_C_Verify: case SHIM_F_C_VerifyFinal: case SHIM_F_C_VerifyRecover:
	case SHIM_F_C_Encrypt: case SHIM_F_C_EncryptFinal:
	case SHIM_F_C_Decrypt: case SHIM_F_C_DecryptFinal:
	case SHIM_F_C_Digest: case SHIM_F_C_DigestFinal:
		return 1;
	default:
		return 0;
	}
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tokenrig-p11shim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- sessions (under lock) ---- */

static session_ent *session_find(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < n_sessions; i++)
		if (sessions[i].h == h)
			return &sessions[i];
	return NULL;
}

static void session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
	session_ent *e;

	pthread_mutex_lock(&lock);
	if (!(e = session_find(h))) {
		if (n_sessions == cap_sessions) {
			size_t ncap = cap_sessions ? cap_sessions * 2 : 16;
			session_ent *n = realloc(sessions, ncap * sizeof(*n));

			if (!n)
				goto out; /* untracked: it simply cannot be pulled */
			sessions = n;
			cap_sessions = ncap;
		}
		e = &sessions[n_sessions++];
	}
	e->h = h;
	e->slot = slot;
	e->dead = 0;
out:
	pthread_mutex_unlock(&lock);
}

static void session_drop(CK_SESSION_HANDLE h)
{
	session_ent *e;

	pthread_mutex_lock(&lock);
	if ((e = session_find(h)))
		*e = sessions[--n_sessions];
	pthread_mutex_unlock(&lock);
}

/* ---- slots and presence (under lock) ---- */

static slot_ent *slot_find(CK_SLOT_ID slot)
{
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i].slot == slot)
			return &slots[i];
	return NULL;
}

static int label_absent(const shim_conf *conf, const char *label)
{
	const shim_token_rule *t = shim_conf_token(conf, label);

	if (t && !t->present)
		return 1;
	for (int i = 0; i < n_pulled; i++)
		if (!strcmp(pulled[i], label))
			return 1;
	return 0;
}

/* Asks the real module who is in slot; NULL when no token (or no slot). */
static slot_ent *slot_learn(const shim_conf *conf, CK_SLOT_ID slot)
{
	CK_TOKEN_INFO info;
	slot_ent *e;
	size_t n;

	if (shim_real->C_GetTokenInfo(slot, &info) != CKR_OK)
		return NULL;
	if (!(e = slot_find(slot))) {
		if (n_slots == cap_slots) {
			size_t ncap = cap_slots ? cap_slots * 2 : 8;
			slot_ent *ns = realloc(slots, ncap * sizeof(*ns));

			if (!ns)
				return NULL;
			slots = ns;
			cap_slots = ncap;
		}
		e = &slots[n_slots++];
		memset(e, 0, sizeof(*e));
		e->slot = slot;
		e->absent = -1;
	}
	for (n = sizeof(info.label); n > 0 && info.label[n - 1] == ' '; n--)
		;
	memcpy(e->label, info.label, n);
	e->label[n] = '\0';
	for (n = sizeof(info.serialNumber); n > 0 && info.serialNumber[n - 1] == ' '; n--)
		;
	memcpy(e->serial, info.serialNumber, n);
	e->serial[n] = '\0';
	if (e->absent < 0)
		e->absent = label_absent(conf, e->label);
	return e;
}

static int slot_absent_locked(const shim_conf *conf, CK_SLOT_ID slot)
{
	slot_ent *e = slot_find(slot);

	if (!e && !(e = slot_learn(conf, slot)))
		return 0;
	return label_absent(conf, e->label);
}

static int slot_absent(const shim_conf *conf, CK_SLOT_ID slot)
{
	int r;

	if (!conf->any_absent && !n_pulled)
		return 0;
	pthread_mutex_lock(&lock);
	r = slot_absent_locked(conf, slot);
	pthread_mutex_unlock(&lock);
	return r;
}

static void event_push(CK_SLOT_ID slot)
{
	for (int i = 0; i < n_events; i++)
		if (events[i] == slot)
			return;
	if (n_events < MAX_EVENTS)
		events[n_events++] = slot;
	pthread_cond_broadcast(&event_cond);
}

/*
 * Brings every known slot in line with conf and the pulled list: a token
 * going away kills its sessions; one coming back gets a clean real state
 * (its old sessions closed, nobody logged in), as after a re-plug.
 */
static void presence_sync_locked(const shim_conf *conf)
{
	CK_SLOT_ID list[TR_P11_MAX_SLOTS];
	CK_ULONG n = TR_P11_MAX_SLOTS;
	int changed = 0;

	if (shim_real->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n <= TR_P11_MAX_SLOTS &&
	    shim_real->C_GetSlotList(CK_TRUE, list, &n) == CKR_OK)
		for (CK_ULONG i = 0; i < n; i++)
			if (!slot_find(list[i]))
				slot_learn(conf, list[i]);
	for (size_t i = 0; i < n_slots; i++) {
		slot_ent *e = &slots[i];
		int now = label_absent(conf, e->label);

		if (now == e->absent)
			continue;
		e->absent = now;
		changed = 1;
		if (now) {
			for (size_t k = 0; k < n_sessions; k++)
				if (sessions[k].slot == e->slot)
					sessions[k].dead = 1;
			atomic_fetch_or(&shim_flags, SHIM_FL_SESSIONS);
		} else {
			shim_real->C_CloseAllSessions(e->slot);
		}
		event_push(e->slot);
	}
	if (changed)
		atomic_fetch_add(&shim_presence_gen, 1);
}

/* remove_during: the token in slot leaves now. */
static void pull_token(const shim_conf *conf, CK_SLOT_ID slot)
{
	slot_ent *e;

	pthread_mutex_lock(&lock);
	e = slot_find(slot);
	if (!e)
		e = slot_learn(conf, slot);
	if (e && !label_absent(conf, e->label) && n_pulled < MAX_PULLED) {
		snprintf(pulled[n_pulled++], sizeof(pulled[0]), "%s", e->label);
		presence_sync_locked(conf);
	}
	pthread_mutex_unlock(&lock);
}

/* Slot of a session, and whether its token was pulled; 0 when unknown. */
static int session_state(CK_SESSION_HANDLE h, CK_SLOT_ID *slot, int *dead)
{
	session_ent *e;
	int found = 0;

	pthread_mutex_lock(&lock);
	if ((e = session_find(h))) {
		*slot = e->slot;
		*dead = e->dead;
		found = 1;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

/* Has the thing this call works on gone away? The error to return, or 0. */
static CK_RV target_gone(shim_call *c)
{
	CK_SLOT_ID slot;
	int dead = 0;

	if (c->session != CK_INVALID_HANDLE) {
		if (session_state(c->session, &slot, &dead) && dead)
			return CKR_DEVICE_REMOVED;
		return CKR_OK;
	}
	if (c->slot != SHIM_NO_SLOT && needs_token(c->fn) &&
	    slot_absent(atomic_load(&shim_conf_cur), c->slot))
		return CKR_DEVICE_REMOVED;
	return CKR_OK;
}

/* ---- configuration reload ---- */

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

void shim_reload_check(uint64_t now_ms)
{
	unsigned long long next = atomic_load(&shim_next_check_ms);
	shim_conf *cur, *conf = NULL;
	struct stat st;

	/* One thread checks; the others go on with the current version. */
	if (now_ms < next || !atomic_compare_exchange_strong(&shim_next_check_ms, &next,
							      now_ms + CHECK_EVERY_MS))
		return;
	pthread_mutex_lock(&init_lock);
	cur = atomic_load(&shim_conf_cur);
	if (!shim_real || !cur || !cur->path)
		goto out;
	if (cur->state) {
		memset(&st, 0, sizeof(st));
		stat(cur->state, &st);
		if (!same_file(&st, &state_st)) {
			state_st = st;
			shim_state_invalidate();
		}
	}
	memset(&st, 0, sizeof(st));
	if (stat(cur->path, &st) != 0 || same_file(&st, &conf_st))
		goto out;
	conf_st = st;
	if (shim_conf_load(&conf, cur->path) < 0) {
		/* Keep running on the last good version; say why once per change. */
		say("%s (configuration not reloaded)", tr_error_last());
		goto out;
	}
	if (strcmp(conf->module, cur->module))
		say("%s: module changed; the new module is used after C_Finalize", cur->path);
	if ((conf->trace == NULL) != (cur->trace == NULL) ||
	    (conf->trace && strcmp(conf->trace, cur->trace))) {
		if (shim_trace_open(conf->trace) < 0)
			say("%s", tr_error_last());
		if (shim_trace_enabled())
			atomic_fetch_or(&shim_flags, SHIM_FL_TRACE);
		else
			atomic_fetch_and(&shim_flags, ~SHIM_FL_TRACE);
	}
	pthread_mutex_lock(&lock);
	conf->older = cur;
	n_pulled = 0; /* a new configuration re-inserts what remove_during pulled */
	atomic_store_explicit(&shim_conf_cur, conf, memory_order_release);
	presence_sync_locked(conf);
	pthread_cond_broadcast(&event_cond);
	pthread_mutex_unlock(&lock);
out:
	pthread_mutex_unlock(&init_lock);
}

/* ---- latency ---- */

static __thread uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	if (!x)
		x = tr_clock_ns() ^ ((uint64_t)(uintptr_t)&rng_state << 17) ^ 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(void)   /* (0, 1) */
{
	return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t delay_sample(const shim_delay *d)
{
	double x;

	switch (d->kind) {
	case SHIM_DELAY_FIXED:
		return d->a_ns;
	case SHIM_DELAY_UNIFORM:
		return d->a_ns + (uint64_t)(rng_unit() * (double)(d->b_ns - d->a_ns));
	case SHIM_DELAY_NORMAL:
		x = (double)d->a_ns + (double)d->b_ns *
		    sqrt(-2.0 * log(rng_unit())) * cos(2.0 * M_PI * rng_unit());
		if (x < (double)d->min_ns)
			x = (double)d->min_ns;
		if (x > (double)d->max_ns)
			x = (double)d->max_ns;
		return (uint64_t)x;
	default:
		return 0;
	}
}

/* Below this, the kernel's timer slack (50 us) would swamp a sleep: spin. */
#define SPIN_NS 200000u

/*
 * The modelled device time: nanosleep in slices, checking between them
 * whether the token was pulled meanwhile (then the call fails at once); the
 * last stretch spins on the clock so that a 40 us model costs 40 us.
 */
static CK_RV delay_run(shim_call *c, uint64_t ns)
{
	uint64_t end = tr_clock_ns() + ns, now;
	CK_RV rv;

	while ((now = tr_clock_ns()) < end) {
		uint64_t left = end - now;
		uint64_t step = left - (left > SPIN_NS ? SPIN_NS / 2 : left);
		struct timespec ts;

		if (step > SLICE_NS)
			step = SLICE_NS;
		ts = (struct timespec){ (time_t)(step / 1000000000u), (long)(step % 1000000000u) };
		if (left > SPIN_NS)
			nanosleep(&ts, NULL);
		shim_tick();
		if (atomic_load(&shim_presence_gen) != c->gen && (rv = target_gone(c)))
			return rv;
	}
	return CKR_OK;
}

/* ---- the call path ---- */

static void trace_call(shim_call *c, CK_RV rv, unsigned long in_len,
		       unsigned long out_len)
{
	shim_trace_rec r;
	uint64_t now = tr_clock_ns();

	if (!shim_trace_enabled())
		return;
	r.fn = c->fn;
	r.slot = c->slot;
	r.session = c->session;
	r.rv = rv;
	r.start_ns = c->t0 ? c->t0 : now;
	r.dur_ns = now - r.start_ns;
	r.in_len = in_len;
	r.out_len = out_len;
	shim_trace_record(&r);
}

int shim_call_begin_slow(shim_call *c, int fn, CK_SLOT_ID slot,
			 CK_SESSION_HANDLE session, const shim_conf *conf, CK_RV *rv)
{
	int flags = atomic_load(&shim_flags);
	CK_RV err = CKR_OK;
	CK_SLOT_ID s_slot;
	int dead = 0;

	c->slow = 1;
	c->conf = conf;
	c->override = CKR_OK;
	c->t0 = tr_clock_ns();
	if (session != CK_INVALID_HANDLE &&
	    ((flags & (SHIM_FL_SESSIONS | SHIM_FL_TRACE)) || conf->pulls)) {
		if (session_state(session, &s_slot, &dead)) {
			c->slot = s_slot;
			if (dead) {
				err = slot_absent(conf, s_slot) ? CKR_DEVICE_REMOVED :
				      CKR_SESSION_HANDLE_INVALID;
				goto refuse;
			}
		}
	}
	if (session == CK_INVALID_HANDLE && slot != SHIM_NO_SLOT) {
		if (conf->driver == SHIM_DRIVER_EMPTY) {
			err = CKR_SLOT_ID_INVALID;
			goto refuse;
		}
		if (needs_token(fn) && slot_absent(conf, slot)) {
			err = CKR_TOKEN_NOT_PRESENT;
			goto refuse;
		}
	}
	if (!conf->active[fn])
		return 0;
	if (conf->delay[fn].kind && (err = delay_run(c, delay_sample(&conf->delay[fn]))))
		goto refuse;
	for (shim_pull *p = conf->pulls; p; p = p->next) {
		char label[SHIM_LABEL_MAX + 1] = "";
		slot_ent *e;
		int zero = 0;

		if (p->fn != fn || atomic_load(&p->fired) || c->slot == SHIM_NO_SLOT)
			continue;
		if (p->label[0]) {
			pthread_mutex_lock(&lock);
			if ((e = slot_find(c->slot)) || (e = slot_learn(conf, c->slot)))
				memcpy(label, e->label, sizeof(label));
			pthread_mutex_unlock(&lock);
			if (strcmp(label, p->label))
				continue;
		}
		if (!atomic_compare_exchange_strong(&p->fired, &zero, 1))
			continue;
		pull_token(conf, c->slot);
		err = CKR_DEVICE_REMOVED;
		goto refuse;
	}
	if (conf->fault[fn].set) {
		shim_fault *f = (shim_fault *)&conf->fault[fn];
		unsigned long n = atomic_fetch_add(&f->calls, 1) + 1;

		if (n >= f->nth && (f->count == 0 || n < f->nth + f->count)) {
			if (!ends_operation(fn)) {
				err = f->rv;
				goto refuse;
			}
			c->override = f->rv; /* let the module end the operation */
		}
	}
	return 0;

refuse:
	*rv = err;
	trace_call(c, err, 0, 0);
	return 1;
}

CK_RV shim_call_end_slow(shim_call *c, CK_RV rv, unsigned long in_len,
			 unsigned long out_len)
{
	CK_RV gone;

	if (!c->slow) {
		/* Fast path, but a token moved meanwhile: was it ours? */
		c->t0 = 0;
		c->conf = atomic_load(&shim_conf_cur);
		c->override = CKR_OK;
	}
	if (c->override != CKR_OK)
		rv = c->override;
	if (atomic_load(&shim_presence_gen) != c->gen && (gone = target_gone(c)))
		rv = gone;
	if (c->slow)
		trace_call(c, rv, in_len, out_len);
	return rv;
}

/* ---- PIN counters ---- */

/* The token in slot: its label and serial, from the real module. */
static int token_ident(CK_SLOT_ID slot, char *label, char *serial)
{
	const shim_conf *conf = atomic_load(&shim_conf_cur);
	slot_ent *e;
	int r = -1;

	pthread_mutex_lock(&lock);
	if ((e = slot_learn(conf, slot))) {
		memcpy(label, e->label, sizeof(e->label));
		memcpy(serial, e->serial, sizeof(e->serial));
		r = 0;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/*
 * A user PIN check (C_Login, C_SetPIN): refused while locked, counted when
 * wrong, reset when right. check() is the real call.
 */
typedef CK_RV (*pin_check_fn)(void *arg);

static CK_RV pin_checked(CK_SLOT_ID slot, pin_check_fn check, void *arg)
{
	const shim_conf *conf = atomic_load(&shim_conf_cur);
	char label[SHIM_LABEL_MAX + 1], serial[17];
	unsigned wrong = 0;
	int fd = -1, max;
	CK_RV rv;

	if (token_ident(slot, label, serial) < 0)
		return check(arg);
	max = shim_conf_max_tries(conf, label);
	if (shim_state_lock(conf->state, &fd) < 0 ||
	    shim_state_get(conf->state, serial, 1, &wrong) < 0) {
		say("%s", tr_error_last());
		shim_state_unlock(fd);
		return CKR_DEVICE_ERROR;
	}
	if (wrong >= (unsigned)max) {
		rv = CKR_PIN_LOCKED;
		goto out;
	}
	rv = check(arg);
	if (rv == CKR_PIN_INCORRECT)
		wrong++;
	else if (rv == CKR_OK)
		wrong = 0;
	else
		goto out;
	if (shim_state_set(conf->state, serial, wrong) < 0)
		say("%s", tr_error_last());
out:
	shim_state_unlock(fd);
	return rv;
}

static void pin_reset(CK_SLOT_ID slot)
{
	const shim_conf *conf = atomic_load(&shim_conf_cur);
	char label[SHIM_LABEL_MAX + 1], serial[17];
	int fd;

	if (token_ident(slot, label, serial) < 0)
		return;
	if (shim_state_lock(conf->state, &fd) < 0 ||
	    shim_state_set(conf->state, serial, 0) < 0)
		say("%s", tr_error_last());
	shim_state_unlock(fd);
}

static CK_SLOT_ID session_slot(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO info;
	CK_SLOT_ID slot;
	int dead;

	if (session_state(h, &slot, &dead))
		return slot;
	if (shim_real->C_GetSessionInfo(h, &info) == CKR_OK)
		return info.slotID;
	return SHIM_NO_SLOT;
}

SHIM_EXPORT int tokenrig_shim_pin_tries(CK_SLOT_ID slot);
SHIM_EXPORT void tokenrig_shim_reload(void);
SHIM_EXPORT long tokenrig_shim_keys_inserted(void);

/*
 * Re-reads the configuration at once: a caller in this process that has just
 * rewritten it (the harness pulling a token) must not wait for the periodic
 * check to see it.
 */
SHIM_EXPORT void tokenrig_shim_reload(void)
{
	atomic_store(&shim_next_check_ms, 0);
	shim_reload_check(shim_coarse_ms());
}

SHIM_EXPORT int tokenrig_shim_pin_tries(CK_SLOT_ID slot)
{
	const shim_conf *conf;
	char label[SHIM_LABEL_MAX + 1], serial[17];
	unsigned wrong;
	int max;

	if (!shim_real)
		return -1;
	conf = atomic_load(&shim_conf_cur);
	if (slot_absent(conf, slot) || token_ident(slot, label, serial) < 0 ||
	    shim_state_get(conf->state, serial, 1, &wrong) < 0)
		return -1;
	max = shim_conf_max_tries(conf, label);
	return wrong >= (unsigned)max ? 0 : max - (int)wrong;
}

/*
 * What the operating system sees on USB whatever the driver lists (JS-E01):
 * the real module's initialised tokens that are plugged in (not pulled).
 * With `driver = empty` the slot list shows none of them; a caller
 * comparing the two tells "key in, driver blind" from "no key" (TK-E04).
 */
SHIM_EXPORT long tokenrig_shim_keys_inserted(void)
{
	const shim_conf *conf;
	CK_SLOT_ID *all = NULL;
	CK_ULONG n = 0;
	long kept = 0;

	if (!shim_real)
		return -1;
	conf = atomic_load(&shim_conf_cur);
	if (shim_real->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK)
		return -1;
	if (n == 0)
		return 0;
	if (!(all = calloc(n, sizeof(*all))))
		return -1;
	if (shim_real->C_GetSlotList(CK_TRUE, all, &n) != CKR_OK)
		kept = -1;
	/* An uninitialised token (SoftHSM's spare slot) is no key. */
	for (CK_ULONG i = 0; kept >= 0 && i < n; i++) {
		CK_TOKEN_INFO info;

		if (!slot_absent(conf, all[i]) &&
		    shim_real->C_GetTokenInfo(all[i], &info) == CKR_OK &&
		    (info.flags & CKF_TOKEN_INITIALIZED))
			kept++;
	}
	free(all);
	return kept;
}

/* ---- the functions with semantics of their own ---- */

CK_RV shim_C_Initialize(void *args)
{
	const char *path = getenv("TOKENRIG_SHIM_CONF");
	CK_C_GetFunctionList get_list;
	CK_FUNCTION_LIST *fn = NULL;
	shim_conf *conf = NULL;
	CK_RV rv = CKR_GENERAL_ERROR;

	if (path && !*path)
		path = NULL;
	pthread_mutex_lock(&init_lock);
	if (shim_real) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	memset(&conf_st, 0, sizeof(conf_st));
	if (path)
		stat(path, &conf_st); /* before reading: a later change is seen */
	if (shim_conf_load(&conf, path) < 0) {
		say("%s", tr_error_last());
		goto out;
	}
	if (conf->driver == SHIM_DRIVER_MISSING) {
		say("the token driver is missing (driver = missing, %s:%d): "
		    "no PKCS#11 module to load", conf->path, conf->driver_line);
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	if (real_dl && strcmp(real_path, conf->module)) {
		real_dl = NULL; /* a different module now; the old one stays mapped */
		free(real_path);
		real_path = NULL;
	}
	if (!real_dl) {
		if (!(real_dl = dlopen(conf->module, RTLD_NOW | RTLD_LOCAL))) {
			say("the token driver is missing: PKCS#11 module %s cannot be loaded: %s",
			    conf->module, dlerror());
			goto out;
		}
		if (!(real_path = strdup(conf->module))) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	get_list = (CK_C_GetFunctionList)dlsym(real_dl, "C_GetFunctionList");
	if (!get_list || get_list(&fn) != CKR_OK || !fn) {
		say("%s is not a PKCS#11 module (no C_GetFunctionList)", conf->module);
		goto out;
	}
	rv = fn->C_Initialize(args);
	/* Loaded in-process already (e.g. beside us in a benchmark): share it. */
	real_owned = rv == CKR_OK;
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
		rv = CKR_OK;
	if (rv != CKR_OK) {
		say("%s: C_Initialize failed (0x%lx)", conf->module, (unsigned long)rv);
		goto out;
	}
	if (shim_trace_open(conf->trace) < 0) {
		say("%s", tr_error_last());
		if (real_owned)
			fn->C_Finalize(NULL);
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	memset(&state_st, 0, sizeof(state_st));
	if (conf->state)
		stat(conf->state, &state_st);
	shim_state_reset();
	atomic_store(&shim_flags, shim_trace_enabled() ? SHIM_FL_TRACE : 0);
	atomic_store(&shim_presence_gen, 0);
	atomic_store(&shim_next_check_ms, shim_coarse_ms() + CHECK_EVERY_MS);
	finalizing = 0;
	n_pulled = 0;
	n_events = 0;
	shim_watch = path != NULL;
	atomic_store(&shim_conf_cur, conf);
	conf = NULL;
	pthread_mutex_lock(&lock);
	shim_real = fn;
	presence_sync_locked(atomic_load(&shim_conf_cur));
	n_events = 0; /* the state at start is no event */
	pthread_mutex_unlock(&lock);
out:
	shim_conf_free(conf);
	pthread_mutex_unlock(&init_lock);
	return rv;
}

CK_RV shim_C_Finalize(void *reserved)
{
	CK_FUNCTION_LIST *fn;
	uint64_t deadline;
	CK_RV rv = CKR_OK;

	if (reserved)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&init_lock);
	if (!(fn = shim_real)) {
		pthread_mutex_unlock(&init_lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	/* Blocked C_WaitForSlotEvent callers return before we tear down. */
	pthread_mutex_lock(&lock);
	finalizing = 1;
	pthread_cond_broadcast(&event_cond);
	deadline = tr_deadline_after_ms(2000);
	while (waiters > 0 && !tr_deadline_passed(deadline)) {
		pthread_mutex_unlock(&lock);
		tr_poll_pause(deadline, 1);
		pthread_mutex_lock(&lock);
	}
	shim_real = NULL;
	pthread_mutex_unlock(&lock);
	if (real_owned)
		rv = fn->C_Finalize(NULL);
	shim_trace_close();
	pthread_mutex_lock(&lock);
	free(sessions);
	sessions = NULL;
	n_sessions = cap_sessions = 0;
	free(slots);
	slots = NULL;
	n_slots = cap_slots = 0;
	n_pulled = n_events = 0;
	pthread_mutex_unlock(&lock);
	shim_conf_free(atomic_exchange(&shim_conf_cur, NULL));
	shim_state_reset();
	shim_watch = 0;
	pthread_mutex_unlock(&init_lock);
	return rv;
}

SHIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
	return shim_C_GetFunctionList(list);
}

CK_RV shim_C_GetFunctionList(CK_FUNCTION_LIST **list)
{
	if (!list)
		return CKR_ARGUMENTS_BAD;
	*list = &shim_function_list;
	return CKR_OK;
}

typedef struct labelled_slot {
	CK_SLOT_ID id;
	int later;     /* no initialised token: after the ones that have one */
	size_t index;  /* the real module's order among those */
	unsigned char label[32];
} labelled_slot;

static int cmp_label(const void *a, const void *b)
{
	const labelled_slot *x = a, *y = b;
	int c = x->later - y->later;

	if (!c && !x->later)
		c = memcmp(x->label, y->label, sizeof(x->label));
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/*
 * Slots with a token in the order of their labels: the real module's order
 * (SoftHSM's follows random serials) would make "the first token" differ
 * from one run to the next, and a test rig must not.
 */
static void sort_by_label(CK_SLOT_ID *list, CK_ULONG n)
{
	labelled_slot *ls;
	CK_TOKEN_INFO info;

	if (n < 2 || !(ls = calloc(n, sizeof(*ls))))
		return;
	for (CK_ULONG i = 0; i < n; i++) {
		ls[i].id = list[i];
		ls[i].index = i;
		ls[i].later = 1;
		if (shim_real->C_GetTokenInfo(list[i], &info) == CKR_OK &&
		    (info.flags & CKF_TOKEN_INITIALIZED)) {
			memcpy(ls[i].label, info.label, sizeof(ls[i].label));
			ls[i].later = 0;
		}
	}
	qsort(ls, n, sizeof(*ls), cmp_label);
	for (CK_ULONG i = 0; i < n; i++)
		list[i] = ls[i].id;
	free(ls);
}

CK_RV shim_C_GetSlotList(unsigned char present, CK_SLOT_ID *list,
				unsigned long *count)
{
	const shim_conf *conf;
	CK_SLOT_ID *all = NULL;
	CK_ULONG n = 0, kept = 0;
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetSlotList, SHIM_NO_SLOT, CK_INVALID_HANDLE, &rv))
		return rv;
	conf = atomic_load(&shim_conf_cur);
	if (!count) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (conf->driver == SHIM_DRIVER_EMPTY) {
		*count = 0; /* the reader is there, its driver sees nothing */
		rv = CKR_OK;
	} else if (!present || (!conf->any_absent && !n_pulled)) {
		rv = shim_real->C_GetSlotList(present, list, count);
	} else {
		/* Leave out the slots whose token was pulled. */
		rv = shim_real->C_GetSlotList(present, NULL, &n);
		if (rv == CKR_OK && n > 0 && !(all = calloc(n, sizeof(*all))))
			rv = CKR_HOST_MEMORY;
		if (rv == CKR_OK && n > 0)
			rv = shim_real->C_GetSlotList(present, all, &n);
		for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
			if (!slot_absent(conf, all[i]))
				all[kept++] = all[i];
		if (rv == CKR_OK) {
			if (list && *count < kept)
				rv = CKR_BUFFER_TOO_SMALL;
			else if (list)
				memcpy(list, all, kept * sizeof(*all));
			*count = kept;
		}
		free(all);
	}
	if (rv == CKR_OK && list)
		sort_by_label(list, *count);
	return shim_call_end(&c, rv, 0, count ? *count : 0);
}

CK_RV shim_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
	const shim_conf *conf;
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_GetSlotInfo, slot, CK_INVALID_HANDLE, &rv))
		return rv;
	conf = atomic_load(&shim_conf_cur);
	rv = shim_real->C_GetSlotInfo(slot, info);
	if (rv == CKR_OK && slot_absent(conf, slot))
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return shim_call_end(&c, rv, 0, 0);
}

CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
	const shim_conf *conf;
	char label[SHIM_LABEL_MAX + 1], serial[17];
	unsigned wrong = 0;
	shim_call c;
	CK_RV rv;
	int max;

	if (shim_call_begin(&c, SHIM_F_C_GetTokenInfo, slot, CK_INVALID_HANDLE, &rv))
		return rv;
	conf = atomic_load(&shim_conf_cur);
	rv = shim_real->C_GetTokenInfo(slot, info);
	if (rv == CKR_OK && (info->flags & CKF_TOKEN_INITIALIZED) &&
	    token_ident(slot, label, serial) == 0 &&
	    shim_state_get(conf->state, serial, 0, &wrong) == 0) {
		max = shim_conf_max_tries(conf, label);
		info->flags &= ~(CK_FLAGS)USER_PIN_FLAGS;
		if (wrong > 0)
			info->flags |= CKF_USER_PIN_COUNT_LOW;
		if (wrong >= (unsigned)max)
			info->flags = (info->flags & ~(CK_FLAGS)CKF_USER_PIN_COUNT_LOW) |
				      CKF_USER_PIN_LOCKED;
		else if (wrong + 1 == (unsigned)max)
			info->flags |= CKF_USER_PIN_FINAL_TRY;
	}
	return shim_call_end(&c, rv, 0, 0);
}

CK_RV shim_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
	CK_RV rv = CKR_NO_EVENT;

	if (!shim_real)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!slot)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	waiters++;
	for (;;) {
		struct timespec ts;

		if (finalizing) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			break;
		}
		if (n_events > 0) {
			*slot = events[0];
			memmove(events, events + 1, (size_t)--n_events * sizeof(events[0]));
			rv = CKR_OK;
			break;
		}
		/* The module's own events (a non-blocking look; many have none). */
		pthread_mutex_unlock(&lock);
		rv = shim_real->C_WaitForSlotEvent(CKF_DONT_BLOCK, slot, reserved);
		pthread_mutex_lock(&lock);
		if (rv == CKR_OK)
			break;
		if (flags & CKF_DONT_BLOCK) {
			rv = CKR_NO_EVENT;
			break;
		}
		/* Bounded wait, then look at the configuration again. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CHECK_EVERY_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&event_cond, &lock, &ts);
		pthread_mutex_unlock(&lock);
		shim_tick();
		pthread_mutex_lock(&lock);
	}
	waiters--;
	pthread_mutex_unlock(&lock);
	return rv;
}

CK_RV shim_C_InitToken(CK_SLOT_ID slot, unsigned char *pin,
			      unsigned long pin_len, unsigned char *label)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_InitToken, slot, CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_InitToken(slot, pin, pin_len, label);
	if (rv == CKR_OK) {
		pin_reset(slot);
		/* SoftHSM renumbers slots after C_InitToken: learn them again. */
		pthread_mutex_lock(&lock);
		n_slots = 0;
		pthread_mutex_unlock(&lock);
	}
	return shim_call_end(&c, rv, pin_len, 0);
}

CK_RV shim_C_InitPIN(CK_SESSION_HANDLE s, unsigned char *pin,
			    unsigned long pin_len)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_InitPIN, SHIM_NO_SLOT, s, &rv))
		return rv;
	rv = shim_real->C_InitPIN(s, pin, pin_len);
	if (rv == CKR_OK)
		pin_reset(session_slot(s)); /* the SO unblocks the user PIN */
	return shim_call_end(&c, rv, pin_len, 0);
}

struct setpin_args {
	CK_SESSION_HANDLE s;
	unsigned char *old_pin, *new_pin;
	unsigned long old_len, new_len;
};

static CK_RV setpin_real(void *arg)
{
	struct setpin_args *a = arg;

	return shim_real->C_SetPIN(a->s, a->old_pin, a->old_len, a->new_pin, a->new_len);
}

CK_RV shim_C_SetPIN(CK_SESSION_HANDLE s, unsigned char *old_pin,
			   unsigned long old_len, unsigned char *new_pin,
			   unsigned long new_len)
{
	struct setpin_args a = { s, old_pin, new_pin, old_len, new_len };
	CK_SESSION_INFO info;
	CK_SLOT_ID slot;
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_SetPIN, SHIM_NO_SLOT, s, &rv))
		return rv;
	/* In an SO session C_SetPIN changes the SO PIN: not counted. */
	if (shim_real->C_GetSessionInfo(s, &info) == CKR_OK &&
	    info.state != CKS_RW_SO_FUNCTIONS &&
	    (slot = session_slot(s)) != SHIM_NO_SLOT)
		rv = pin_checked(slot, setpin_real, &a);
	else
		rv = setpin_real(&a);
	return shim_call_end(&c, rv, new_len, 0);
}

CK_RV shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app,
				CK_NOTIFY notify, CK_SESSION_HANDLE *session)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_OpenSession, slot, CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_OpenSession(slot, flags, app, notify, session);
	if (rv == CKR_OK) {
		session_add(*session, slot);
		c.session = *session;
	}
	return shim_call_end(&c, rv, 0, 0);
}

CK_RV shim_C_CloseSession(CK_SESSION_HANDLE s)
{
	CK_SLOT_ID slot;
	int dead = 0;
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_CloseSession, SHIM_NO_SLOT, s, &rv)) {
		/* A dead session is gone for good: forget it all the same. */
		if (session_state(s, &slot, &dead) && dead) {
			shim_real->C_CloseSession(s);
			session_drop(s);
		}
		return rv;
	}
	rv = shim_real->C_CloseSession(s);
	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID)
		session_drop(s);
	rv = shim_call_end(&c, rv, 0, 0);
	if (c.slow)
		shim_trace_flush();
	return rv;
}

CK_RV shim_C_CloseAllSessions(CK_SLOT_ID slot)
{
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_CloseAllSessions, slot, CK_INVALID_HANDLE, &rv))
		return rv;
	rv = shim_real->C_CloseAllSessions(slot);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_sessions;) {
		if (sessions[i].slot == slot)
			sessions[i] = sessions[--n_sessions];
		else
			i++;
	}
	pthread_mutex_unlock(&lock);
	return shim_call_end(&c, rv, 0, 0);
}

struct login_args {
	CK_SESSION_HANDLE s;
	CK_USER_TYPE user;
	unsigned char *pin;
	unsigned long len;
};

static CK_RV login_real(void *arg)
{
	struct login_args *a = arg;

	return shim_real->C_Login(a->s, a->user, a->pin, a->len);
}

CK_RV shim_C_Login(CK_SESSION_HANDLE s, CK_USER_TYPE user,
			  unsigned char *pin, unsigned long len)
{
	struct login_args a = { s, user, pin, len };
	CK_SLOT_ID slot;
	shim_call c;
	CK_RV rv;

	if (shim_call_begin(&c, SHIM_F_C_Login, SHIM_NO_SLOT, s, &rv))
		return rv;
	if ((user == CKU_USER || user == CKU_CONTEXT_SPECIFIC) &&
	    (slot = session_slot(s)) != SHIM_NO_SLOT)
		rv = pin_checked(slot, login_real, &a);
	else
		rv = login_real(&a);
	rv = shim_call_end(&c, rv, len, 0);
	if (c.slow)
		shim_trace_flush(); /* the harness reads a login's split right after */
	return rv;
}

/* The trace's tail is not lost when the program exits without C_Finalize. */
__attribute__((destructor)) static void shim_unload(void)
{
	shim_trace_close();
	free(real_path);
	real_path = NULL;
}
