/* Monotonic time, for latency measurement and for deadlines. */
#ifndef TR_COMMON_CLOCK_H
#define TR_COMMON_CLOCK_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t tr_clock_ns(void);

/* A deadline ms milliseconds from now, as a tr_clock_ns() value. */
uint64_t tr_deadline_after_ms(unsigned ms);

/* 1 once the deadline has passed. */
int tr_deadline_passed(uint64_t deadline);

/* Milliseconds left until the deadline, 0 when passed. */
unsigned tr_deadline_left_ms(uint64_t deadline);

/*
 * Sleeps for the shorter of step_ms and the time left: the pause between two
 * polls of a condition, never a wait in itself.
 */
void tr_poll_pause(uint64_t deadline, unsigned step_ms);

#endif
