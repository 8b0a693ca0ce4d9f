#include "clock.h"

#include <time.h>

uint64_t tr_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tr_deadline_after_ms(unsigned ms)
{
	return tr_clock_ns() + (uint64_t)ms * 1000000u;
}

int tr_deadline_passed(uint64_t deadline)
{
	return tr_clock_ns() >= deadline;
}

unsigned tr_deadline_left_ms(uint64_t deadline)
{
	uint64_t now = tr_clock_ns();

	return now >= deadline ? 0 : (unsigned)((deadline - now) / 1000000u);
}

void tr_poll_pause(uint64_t deadline, unsigned step_ms)
{
	unsigned left = tr_deadline_left_ms(deadline);
	struct timespec ts;

	if (left < step_ms)
		step_ms = left;
	ts.tv_sec = step_ms / 1000;
	ts.tv_nsec = (long)(step_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}
