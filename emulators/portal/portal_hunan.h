/*
 * What the Hunan portal (portal_hunan.c) shows beyond its pt_hunan_def: the
 * working-day clock of its bindings, tested on its own.
 */
#ifndef TR_PORTAL_HUNAN_H
#define TR_PORTAL_HUNAN_H

#include <stdint.h>

/*
 * Hunan's "24小时（工作日）": when a binding submitted at portal time
 * submitted takes effect: after 24 hours counted on working days only, the
 * seconds falling on Monday to Friday in China Standard Time (UTC+8).
 * Weekends do not count; public holidays are not modelled. Submitted on a
 * Friday 10:00, it takes effect on Monday 10:00.
 */
int64_t pt_hunan_effective_at(int64_t submitted);

#endif
