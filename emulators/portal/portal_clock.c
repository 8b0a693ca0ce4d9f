#include "portal_clock.h"

#include <time.h>

static int64_t real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t pt_clock_now(const pt_clock *c)
{
	return real_now() + c->offset;
}

void pt_clock_set(pt_clock *c, int64_t now)
{
	c->offset = now - real_now();
}

void pt_clock_advance(pt_clock *c, int64_t seconds)
{
	c->offset += seconds;
}

void pt_clock_reset(pt_clock *c)
{
	c->offset = 0;
}
