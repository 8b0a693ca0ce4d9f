/*
 * The HR hall's persons and staff changes (failure-paths.md section 1,
 * JS-B01..JS-B12, JS-PRE-OK, JS-E15, JS-E16; seed 001 第二部分): a registry
 * of persons with their state, and the signed staff changes of a unit
 * (basic-information collection, enrolment, stop, rollback, work-injury
 * pre-registration, retirement, transfer-in) checked against the hall's
 * business rules, which are a table in portal_suzhou_staff.c.
 *
 * portal_suzhou.c owns one js_staff in its state (new/reset/free), lists
 * the route rows below and gives the handlers their js_staff through
 * js_staff_of().
 */
#ifndef TR_PORTAL_SUZHOU_STAFF_H
#define TR_PORTAL_SUZHOU_STAFF_H

#include "portal_def.h"

typedef struct js_staff js_staff;

int js_staff_new(js_staff **out);
/* POST /admin/reset: forgets every person, change and unit kind. */
void js_staff_reset(js_staff *st);
void js_staff_free(js_staff *st);

/* Provided by portal_suzhou.c: the staff model of ctx's portal. */
js_staff *js_staff_of(pt_ctx *ctx);

/*
 * JS-E12: in the settlement period (the 7th to the 10th, CST) replies 403
 * JS_SETTLEMENT_PERIOD and returns 1; else 0. Every declaration but the
 * work-injury pre-registration (JS-PRE-OK) and the collection is refused.
 */
int js_staff_settlement_refused(pt_ctx *ctx);

/*
 * Signed staff changes: Bearer hr session, body {"document","signature",
 * "algorithm"}, document a JSON object (API.md). The signature is checked
 * first, then the document, then the rules.
 */
void js_staff_h_collect(pt_ctx *ctx);     /* POST /hr/staff/collect */
void js_staff_h_enrol(pt_ctx *ctx);       /* POST /hr/staff/enrol */
void js_staff_h_stop(pt_ctx *ctx);        /* POST /hr/staff/stop */
void js_staff_h_rollback(pt_ctx *ctx);    /* POST /hr/staff/rollback */
void js_staff_h_pre_register(pt_ctx *ctx); /* POST /hr/staff/pre-register */
void js_staff_h_retire(pt_ctx *ctx);      /* POST /hr/staff/retire */
void js_staff_h_transfer_in(pt_ctx *ctx); /* POST /hr/staff/transfer-in */

/* POST /hr/staff/query (Bearer hr) {"id_number"}: the unit's view. */
void js_staff_h_query(pt_ctx *ctx);
#define JS_STAFF_QUERY_NFIELDS 1
extern const pt_field js_staff_query_fields[JS_STAFF_QUERY_NFIELDS];

/* Admin: POST /admin/suzhou/persons (a person record is created). */
void js_staff_h_admin_person(pt_ctx *ctx);
#define JS_STAFF_PERSON_NFIELDS 11
extern const pt_field js_staff_person_fields[JS_STAFF_PERSON_NFIELDS];

/* Admin: POST /admin/suzhou/persons/update (the person's own remedies). */
void js_staff_h_admin_person_update(pt_ctx *ctx);
#define JS_STAFF_UPDATE_NFIELDS 11
extern const pt_field js_staff_update_fields[JS_STAFF_UPDATE_NFIELDS];

/* Admin: POST /admin/suzhou/staff-units {"ss_number","hr_service"}. */
void js_staff_h_admin_unit(pt_ctx *ctx);
#define JS_STAFF_UNIT_NFIELDS 2
extern const pt_field js_staff_unit_fields[JS_STAFF_UNIT_NFIELDS];

/* Admin: GET /admin/suzhou/dates, the portal's calendar (CST). */
void js_staff_h_admin_dates(pt_ctx *ctx);

#endif
