/*
 * The portal clock: real time plus an offset that tests set through the
 * admin routes, so expiry rules can be exercised without waiting.
 */
#ifndef TR_PORTAL_CLOCK_H
#define TR_PORTAL_CLOCK_H

#include <stdint.h>

/* Latest portal time (9999-12-31 23:59:59 UTC): /admin/clock refuses more. */
#define PT_CLOCK_MAX INT64_C(253402300799)

typedef struct pt_clock {
	int64_t offset; /* seconds added to real time */
} pt_clock;

/* Unix seconds on the portal clock. */
int64_t pt_clock_now(const pt_clock *c);

/* Makes the clock read now from this moment on. */
void pt_clock_set(pt_clock *c, int64_t now);

/* Moves the clock by seconds (may be negative). */
void pt_clock_advance(pt_clock *c, int64_t seconds);

/* Back to real time. */
void pt_clock_reset(pt_clock *c);

#endif
