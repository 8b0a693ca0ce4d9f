/*
 * The Suzhou HR hall's persons and staff changes (portal_suzhou_staff.c,
 * API.md "HR hall: persons and staff changes"; catalog JS-B01..JS-B12,
 * JS-PRE-OK, JS-E15, JS-E16), through pt_portal_handle().
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulators/portal/portal.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"
#include "portal_testkit.h"

/* Catalog texts (failure-paths.md section 1), copied by a tool. */
#define T_NO_PERSON_INFO "未获取到人员基本信息"
#define T_FLEXIBLE "该人员为灵活就业参保人员"
#define T_SEVERAL_PERSONS "根据身份证号码找到多条人员信息，无法办理此业务"
#define T_HUKOU_EMPTY "户籍性质不能为空"
#define T_BENEFIT_PAID "自参保开始日期下一月起，存在失业金发放信息。"
#define T_NO_INSURED_IDENTITY "没有符合该人员的参保身份"
#define T_COLLECTED "人员信息已采集，人员编号为"
#define T_NOT_HR_SERVICE "只有人力资源服务单位才能输入人力资源服务信息"
#define T_LEGAL_REP "该人员为公司法人，不允许停保！"
#define T_ARREARS "该人员在其他统办区存在欠费，"
#define T_ADDRESS "户籍地址格式无法解析"
#define T_TEMPORARY "该人员账户类型为临时缴费账户，不允许办理"
#define T_ROLLBACK_PERIOD "所有业务在同一结算期内均可进行回退操作，跨结算期不允许回退"
#define T_STOP_DATE "停保日期不能大于当前日期（不能提前办理退工）"
#define T_CONTRACT "合同开始日期不得晚于当前结算年月；合同终止日期不得早于当前日期"
#define T_BACK_PAY "其中：6个月以内的提供网报功能"
#define T_PRE_REG_WINDOW "每月 7-10 日暂停申报期间，用人单位可通过此模块进行工伤预登记"
#define T_PRE_REG_NOTICE "等到了申报期（本月11号至次月6号），仍需要给员工做用人单位用工参保登记"
#define T_SETTLEMENT "每月7日至10日为社会保险费结算期，停止受理用人单位申报业务；申报期为每月11日0点至次月6日24点"

static unit_id me;      /* the unit of every test */
static char hr[80];     /* its HR hall session */
static char pno[32];    /* person number of the last admin person */
static char pid[32];    /* its ID number */

/* Dates of the portal's calendar (GET /admin/suzhou/dates). */
static char today[16], yesterday[16], tomorrow[16], sm[16], sm_p1[16];
static char sm_m[8][16];

static void staff_setup(void)
{
	ck_assert_int_eq(pt_portal_new(&portal, "suzhou", pki_dir, 1), 0);
	memset(&me, 0, sizeof(me));
	me.alg = FX_KEY_EC_P256;
	ck_assert_int_eq(fx_unit_generate(&me.unit, SEED, "suzhou", 40), 0);
	ck_assert_int_eq(fx_key_generate(me.alg, &me.key), 0);
	ck_assert_int_eq(fx_pki_issue_unit(pki, "suzhou", me.key, &me.unit,
					   FX_VARIANT_VALID, &me.cert), 0);
}

static void staff_teardown(void)
{
	unit_free(&me);
	portal_teardown();
}

static void copy_str(char *dst, size_t len, const char *key)
{
	snprintf(dst, len, "%s", str(key));
}

/* The calendar of the clock now. */
static void read_dates(void)
{
	char key[32];
	int k;

	ck_ok(get("/admin/suzhou/dates"), 200);
	copy_str(today, sizeof(today), "today");
	copy_str(yesterday, sizeof(yesterday), "yesterday");
	copy_str(tomorrow, sizeof(tomorrow), "tomorrow");
	copy_str(sm, sizeof(sm), "sm");
	copy_str(sm_p1, sizeof(sm_p1), "sm_plus_1");
	for (k = 1; k <= 7; k++) {
		snprintf(key, sizeof(key), "sm_minus_%d", k);
		copy_str(sm_m[k], sizeof(sm_m[k]), key);
	}
}

/* Clock to day mday (hour 10), the unit known to the HR hall, logged in. */
static void hall_on(int mday)
{
	ck_ok(post("/admin/clock", NULL, "{\"mday\":%d}", mday), 200);
	ck_ok(post("/admin/suzhou/hr-units", NULL,
		   "{\"ss_number\":\"%s\",\"unit_name\":\"%s\",\"uscc\":\"%s\"}",
		   me.unit.ss_number, me.unit.unit_name, me.unit.uscc), 200);
	ck_ok(post("/admin/suzhou/ca-mappings", NULL,
		   "{\"uscc\":\"%s\",\"ss_number\":\"%s\"}", me.unit.uscc,
		   me.unit.ss_number), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	read_dates();
}

/* An admin person (body members after '{'); keeps pid and pno. */
__attribute__((format(printf, 1, 2)))
static void person(const char *fmt, ...)
{
	char members[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(members, sizeof(members), fmt, ap);
	va_end(ap);
	ck_ok(post("/admin/suzhou/persons", NULL, "{%s}", members), 201);
	copy_str(pid, sizeof(pid), "id_number");
	copy_str(pno, sizeof(pno), "person_no");
	ck_assert(fx_resident_id_valid(pid));
}

/*
 * A staff change: doc signed by the unit's key, sent as `sent` (NULL: the
 * signed text) with signature sig (NULL: the real one).
 */
static const answer *change_raw(const char *route, const char *doc,
				const char *sent, const char *sig)
{
	char path[64], auth[128], *real = sign_b64(me.key, me.alg, doc), *text;
	json_t *body = json_pack("{s:s, s:s, s:s}", "document", sent ? sent : doc,
				 "signature", sig ? sig : real, "algorithm",
				 alg_name(me.alg));

	ck_assert_ptr_nonnull(body);
	text = json_dumps(body, JSON_COMPACT);
	snprintf(path, sizeof(path), "/hr/staff/%s", route);
	snprintf(auth, sizeof(auth), "Bearer %s", hr);
	raw(portal, "POST", path, "application/json", auth, text, strlen(text));
	free(text);
	free(real);
	json_decref(body);
	return &last;
}

__attribute__((format(printf, 2, 3)))
static const answer *change(const char *route, const char *fmt, ...)
{
	char doc[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(doc, sizeof(doc), fmt, ap);
	va_end(ap);
	return change_raw(route, doc, NULL, NULL);
}

static const answer *enrol(const char *id, const char *start)
{
	return change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\"}",
		      id, start);
}

static const answer *stop(const char *id, const char *date)
{
	return change("stop", "{\"id_number\":\"%s\",\"stop_date\":\"%s\",\"reason\":\"解除劳动合同\"}",
		      id, date);
}

static void ck_refused(const answer *a, unsigned http, const char *code,
		       const char *text)
{
	ck_error(a, http, code);
	ck_assert_str_eq(str("message"), text);
}

static int insured_here(const char *id)
{
	ck_ok(post("/hr/staff/query", hr, "{\"id_number\":\"%s\"}", id), 200);
	return json_is_true(json_object_get(last.body, "insured_here"));
}

static void update(const char *members)
{
	ck_ok(post("/admin/suzhou/persons/update", NULL,
		   "{\"person_no\":\"%s\",%s}", pno, members), 200);
}

/* The signature first: tampered, foreign or missing before any rule. */
START_TEST(test_staff_signature_first)
{
	char doc[256];

	hall_on(15);
	person("\"name\":\"王小明\",\"collected\":\"no\"");
	snprintf(doc, sizeof(doc),
		 "{\"id_number\":\"%s\",\"contract_start\":\"%s\"}", pid, today);
	ck_error(change_raw("enrol", doc, "{\"id_number\":\"x\"}", NULL), 403,
		 "SIGNATURE_INVALID");
	ck_assert_int_eq(json_integer_value(json_object_get(last.body, "status")), 800);
	ck_error(change_raw("enrol", doc, NULL, "AAAA"), 403, "SIGNATURE_INVALID");
	ck_error(change_raw("enrol", doc, NULL, ""), 400, "BAD_FIELD");
	/* Even the settlement period comes after the signature. */
	ck_ok(post("/admin/clock", NULL, "{\"mday\":8}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_error(change_raw("enrol", doc, NULL, "AAAA"), 403, "SIGNATURE_INVALID");
	ck_refused(change_raw("enrol", doc, NULL, NULL), 403,
		   "JS_SETTLEMENT_PERIOD", T_SETTLEMENT);
	/* Signed, but not a document of the change. */
	ck_ok(post("/admin/clock", NULL, "{\"mday\":15}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_error(change("enrol", "not json"), 400, "BAD_DOCUMENT");
	ck_error(change("enrol", "[1]"), 400, "BAD_DOCUMENT");
	ck_error(change("enrol", "{\"id_number\":\"%s\"}", pid), 400, "BAD_DOCUMENT");
	ck_error(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"zz\":\"1\"}",
			pid, today), 400, "BAD_DOCUMENT");
	ck_error(enrol("110101199003070001", today), 400, "BAD_DOCUMENT");
	ck_error(enrol(pid, "2026-02-30"), 400, "BAD_DOCUMENT");
	ck_error(enrol(pid, "2026-2-01"), 400, "BAD_DOCUMENT");
	ck_error(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"contract_end\":\"%s-01\"}",
			pid, today, sm_m[7]), 400, "BAD_DOCUMENT");
	ck_error(change("stop", "{\"id_number\":\"%s\",\"stop_date\":\"%s\",\"reason\":\"\"}",
			pid, today), 400, "BAD_DOCUMENT");
	ck_error(change("rollback", "{\"receipt\":1}"), 400, "BAD_DOCUMENT");
	/* A session of another site, or none. */
	ck_error(post("/hr/staff/enrol", NULL, "{\"document\":\"{}\",\"signature\":\"AAAA\",\"algorithm\":\"ecdsa-sha256\"}"),
		 401, "NO_SESSION");
	/* Then the rule. */
	ck_refused(enrol(pid, today), 404, "JS_NO_PERSON_INFO", T_NO_PERSON_INFO);
}
END_TEST

/* JS-B01, JS-B07: collection, and a known person's number. */
START_TEST(test_staff_collect)
{
	char want[256], first[32];

	hall_on(15);
	person("\"name\":\"王小明\",\"collected\":\"no\"");
	ck_ok(post("/hr/staff/query", hr, "{\"id_number\":\"%s\"}", pid), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(last.body, "count")), 0);
	ck_refused(enrol(pid, today), 404, "JS_NO_PERSON_INFO", T_NO_PERSON_INFO);
	ck_ok(change("collect", "{\"id_number\":\"%s\",\"name\":\"王小明\"}", pid), 201);
	ck_assert_str_eq(str("person_no"), pno);
	ck_assert(json_is_true(json_object_get(last.body, "verified")));
	ck_assert_int_eq(strncmp(str("receipt"), "JSRY", 4), 0);
	/* JS-B07: the number of the record, appended to the text. */
	snprintf(want, sizeof(want), "%s%s", T_COLLECTED, pno);
	ck_refused(change("collect", "{\"id_number\":\"%s\",\"name\":\"王小明\"}", pid),
		   409, "JS_PERSON_COLLECTED", want);
	ck_ok(enrol(pid, today), 201);
	ck_assert_str_eq(str("person_no"), pno);
	ck_assert(insured_here(pid));
	/* A person unknown to the registry is collected as a new record. */
	ck_ok(change("collect", "{\"id_number\":\"11010519491231002X\",\"name\":\"新人\",\"hukou_type\":\"农业户口\",\"address\":\"北京市\"}"), 201);
	snprintf(first, sizeof(first), "%s", str("person_no"));
	ck_assert_str_ne(first, pno);
	/* ... whose address then fails the enrolment (JS-B11). */
	ck_refused(enrol("11010519491231002X", today), 400,
		   "JS_ADDRESS_UNPARSABLE", T_ADDRESS);
	/* The collection is no declaration: open on the 8th as well. */
	ck_ok(post("/admin/clock", NULL, "{\"mday\":8}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_ok(change("collect", "{\"id_number\":\"110105194912310038\",\"name\":\"八日\"}"), 201);
}
END_TEST

/* JS-B02, B03, B04, B06, B08, B10, B11: the enrolment rules and remedies. */
START_TEST(test_staff_enrol_rules)
{
	char pno2[32], id2[32];

	hall_on(15);
	person("\"name\":\"赵灵活\",\"flexible\":\"yes\"");
	ck_refused(enrol(pid, today), 403, "JS_FLEXIBLE_INSURED", T_FLEXIBLE);
	update("\"flexible\":\"no\"");
	ck_ok(enrol(pid, today), 201);
	ck_refused(enrol(pid, today), 409, "JS_ALREADY_INSURED",
		   "该人员已在本单位参保，无需重复登记");

	person("\"name\":\"钱多多\"");
	snprintf(id2, sizeof(id2), "%s", pid);
	person("\"name\":\"钱多多\",\"id_number\":\"%s\"", id2);
	snprintf(pno2, sizeof(pno2), "%s", pno);
	ck_refused(enrol(id2, today), 409, "JS_SEVERAL_PERSONS", T_SEVERAL_PERSONS);
	ck_error(change("enrol", "{\"id_number\":\"%s\",\"person_no\":\"999\",\"contract_start\":\"%s\"}",
			id2, today), 404, "JS_NO_PERSON_INFO");
	ck_ok(change("enrol", "{\"id_number\":\"%s\",\"person_no\":\"%s\",\"contract_start\":\"%s\"}",
		     id2, pno2, today), 201);
	ck_assert_str_eq(str("person_no"), pno2);

	person("\"name\":\"孙空白\",\"hukou_type\":\"\"");
	ck_refused(enrol(pid, today), 403, "JS_HUKOU_EMPTY", T_HUKOU_EMPTY);
	update("\"hukou_type\":\"农业户口\"");
	ck_ok(enrol(pid, today), 201);

	person("\"name\":\"吴转岗\",\"insured_unit\":\"32059999\"");
	ck_refused(enrol(pid, today), 409, "JS_NO_INSURED_IDENTITY",
		   T_NO_INSURED_IDENTITY);
	update("\"insured_unit\":\"\"");
	ck_ok(enrol(pid, today), 201);

	person("\"name\":\"冯派遣\"");
	ck_refused(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"actual_unit_name\":\"实际用工单位\"}",
			  pid, today), 403, "JS_NOT_HR_SERVICE", T_NOT_HR_SERVICE);
	/* Empty fields are not filled ones. */
	ck_ok(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"employment_type\":\"\"}",
		     pid, today), 201);
	ck_ok(post("/admin/suzhou/staff-units", NULL,
		   "{\"ss_number\":\"%s\",\"hr_service\":\"yes\"}", me.unit.ss_number), 200);
	person("\"name\":\"陈派遣\"");
	ck_ok(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"employment_type\":\"劳务派遣\",\"actual_unit_no\":\"1\",\"actual_unit_name\":\"实际用工单位\"}",
		     pid, today), 201);

	person("\"name\":\"何欠费\",\"arrears_district\":\"320282\"");
	ck_refused(enrol(pid, today), 403, "JS_ARREARS_ELSEWHERE", T_ARREARS "320282");
	update("\"arrears_district\":\"\"");
	ck_ok(enrol(pid, today), 201);

	person("\"name\":\"罗地址\",\"address\":\"苏州市姑苏区\"");
	ck_refused(enrol(pid, today), 400, "JS_ADDRESS_UNPARSABLE", T_ADDRESS);
	ck_refused(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"address\":\"江苏省苏州市\"}",
			  pid, today), 400, "JS_ADDRESS_UNPARSABLE", T_ADDRESS);
	ck_refused(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"address\":\"省苏州市姑苏区\"}",
			  pid, today), 400, "JS_ADDRESS_UNPARSABLE", T_ADDRESS);
	ck_ok(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"address\":\"安徽省六安市金寨县\"}",
		     pid, today), 201);
}
END_TEST

/* JS-B05 and JS-E16: the dates of an enrolment and a stop. */
START_TEST(test_staff_dates)
{
	char start[40], end[40], id1[32];

	hall_on(15);
	person("\"name\":\"周失业\",\"benefit_months\":\"%s,%s\"", sm_m[5], sm_m[2]);
	snprintf(start, sizeof(start), "%s-01", sm_m[3]);
	ck_refused(enrol(pid, start), 403, "JS_BENEFIT_PAID", T_BENEFIT_PAID);
	snprintf(start, sizeof(start), "%s-28", sm_m[2]);
	ck_ok(enrol(pid, start), 201);

	person("\"name\":\"许一\"");
	snprintf(id1, sizeof(id1), "%s", pid);
	ck_ok(enrol(id1, today), 201);
	ck_refused(stop(id1, tomorrow), 403, "JS_STOP_DATE_FUTURE", T_STOP_DATE);
	ck_assert(insured_here(id1));
	ck_ok(stop(id1, yesterday), 201);
	ck_assert(!insured_here(id1));
	ck_refused(stop(id1, today), 409, "JS_NOT_INSURED_HERE",
		   "该人员未在本单位参保，无法办理此业务");

	person("\"name\":\"许二\"");
	snprintf(start, sizeof(start), "%s-01", sm_p1);
	ck_refused(enrol(pid, start), 403, "JS_CONTRACT_START_LATE", T_CONTRACT);
	snprintf(start, sizeof(start), "%s-01", sm_m[1]);
	snprintf(end, sizeof(end), "%s", yesterday);
	ck_refused(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"contract_end\":\"%s\"}",
			  pid, start, end), 403, "JS_CONTRACT_END_EARLY", T_CONTRACT);
	snprintf(start, sizeof(start), "%s-28", sm);
	ck_ok(change("enrol", "{\"id_number\":\"%s\",\"contract_start\":\"%s\",\"contract_end\":\"%s-28\"}",
		     pid, start, sm), 201);

	person("\"name\":\"许三\"");
	snprintf(start, sizeof(start), "%s-28", sm_m[7]);
	ck_refused(enrol(pid, start), 403, "JS_BACK_PAY_TOO_LONG", T_BACK_PAY);
	snprintf(start, sizeof(start), "%s-01", sm_m[6]);
	ck_ok(enrol(pid, start), 201);
}
END_TEST

/* The settlement month: the 6th counts for its month, the 7th for the next. */
START_TEST(test_staff_settlement_month)
{
	char m6[16];

	ck_ok(post("/admin/clock", NULL, "{\"mday\":6,\"hour\":23}"), 200);
	ck_ok(get("/admin/suzhou/dates"), 200);
	ck_assert(json_is_false(json_object_get(last.body, "settlement_period")));
	ck_assert_int_eq(strncmp(str("today"), str("sm"), 7), 0);
	snprintf(m6, sizeof(m6), "%s", str("sm"));
	advance(3600);
	ck_ok(get("/admin/suzhou/dates"), 200);
	ck_assert(json_is_true(json_object_get(last.body, "settlement_period")));
	ck_assert_str_eq(str("sm_minus_1"), m6);
	ck_ok(post("/admin/clock", NULL, "{\"mday\":11,\"hour\":0}"), 200);
	ck_ok(get("/admin/suzhou/dates"), 200);
	ck_assert(json_is_false(json_object_get(last.body, "settlement_period")));
	ck_assert_str_eq(str("sm_minus_1"), m6);
	ck_assert_int_eq(strlen(str("yesterday")), 10);
}
END_TEST

/* JS-B09, JS-B12: stop, retirement and transfer-in. */
START_TEST(test_staff_stop_retire)
{
	char normal[32], temp[32];

	hall_on(15);
	person("\"name\":\"林法人\",\"legal_rep_of\":\"%s\"", me.unit.ss_number);
	ck_ok(enrol(pid, today), 201);
	ck_refused(stop(pid, today), 403, "JS_LEGAL_REPRESENTATIVE", T_LEGAL_REP);
	ck_assert(insured_here(pid));

	person("\"name\":\"谢临时\",\"account_type\":\"temporary\"");
	snprintf(temp, sizeof(temp), "%s", pid);
	person("\"name\":\"唐正常\"");
	snprintf(normal, sizeof(normal), "%s", pid);
	ck_error(change("retire", "{\"id_number\":\"%s\"}", normal), 409,
		 "JS_NOT_INSURED_HERE");
	ck_ok(enrol(temp, today), 201);
	ck_ok(enrol(normal, today), 201);
	ck_refused(change("retire", "{\"id_number\":\"%s\"}", temp), 403,
		   "JS_TEMPORARY_ACCOUNT", T_TEMPORARY);
	ck_refused(change("transfer-in", "{\"id_number\":\"%s\"}", temp), 403,
		   "JS_TEMPORARY_ACCOUNT", T_TEMPORARY);
	ck_ok(change("transfer-in", "{\"id_number\":\"%s\"}", normal), 201);
	ck_ok(change("retire", "{\"id_number\":\"%s\"}", normal), 201);
	ck_assert(!insured_here(normal));
	ck_assert(json_is_true(json_object_get(json_array_get(
		json_object_get(last.body, "records"), 0), "retired")));
}
END_TEST

/* JS-E15: rollbacks within and across settlement periods. */
START_TEST(test_staff_rollback)
{
	char r1[32], r2[32], r3[32], id1[32], id2[32];

	hall_on(15);
	person("\"name\":\"曹一\"");
	snprintf(id1, sizeof(id1), "%s", pid);
	person("\"name\":\"曹二\"");
	snprintf(id2, sizeof(id2), "%s", pid);
	ck_ok(enrol(id1, today), 201);
	snprintf(r1, sizeof(r1), "%s", str("receipt"));
	ck_ok(enrol(id2, today), 201);
	snprintf(r2, sizeof(r2), "%s", str("receipt"));
	/* A stop after the enrolment: the enrolment is no longer the latest. */
	ck_ok(stop(id2, today), 201);
	snprintf(r3, sizeof(r3), "%s", str("receipt"));
	ck_error(change("rollback", "{\"receipt\":\"%s\"}", r2), 409,
		 "JS_ROLLBACK_NOT_LATEST");
	ck_ok(post("/admin/clock", NULL, "{\"mday\":5}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_ok(change("rollback", "{\"receipt\":\"%s\"}", r3), 201);
	ck_assert(insured_here(id2));
	ck_error(change("rollback", "{\"receipt\":\"%s\"}", r3), 409,
		 "JS_ROLLBACK_DONE");
	ck_ok(change("rollback", "{\"receipt\":\"%s\"}", r2), 201);
	ck_assert(!insured_here(id2));
	ck_error(change("rollback", "{\"receipt\":\"JSRY00000000000099\"}"), 404,
		 "JS_ROLLBACK_UNKNOWN");
	/* Days 7-10: closed like every declaration. */
	ck_ok(post("/admin/clock", NULL, "{\"mday\":8}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_refused(change("rollback", "{\"receipt\":\"%s\"}", r1), 403,
		   "JS_SETTLEMENT_PERIOD", T_SETTLEMENT);
	ck_ok(post("/admin/clock", NULL, "{\"mday\":11}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_refused(change("rollback", "{\"receipt\":\"%s\"}", r1), 403,
		   "JS_ROLLBACK_CROSS_PERIOD", T_ROLLBACK_PERIOD);
	ck_assert(insured_here(id1));
	read_dates();
	ck_ok(enrol(id2, today), 201);
	snprintf(r3, sizeof(r3), "%s", str("receipt"));
	ck_ok(change("rollback", "{\"receipt\":\"%s\"}", r3), 201);
	ck_assert(!insured_here(id2));
}
END_TEST

/* JS-PRE-OK: the pre-registration is for days 7-10 only. */
START_TEST(test_staff_pre_register)
{
	hall_on(8);
	person("\"name\":\"韩新入\"");
	ck_ok(change("pre-register", "{\"id_number\":\"%s\",\"name\":\"韩新入\"}", pid), 201);
	ck_assert_str_eq(str("message"), T_PRE_REG_NOTICE);
	ck_refused(enrol(pid, today), 403, "JS_SETTLEMENT_PERIOD", T_SETTLEMENT);
	ck_ok(post("/hr/staff/query", hr, "{\"id_number\":\"%s\"}", pid), 200);
	ck_assert(json_is_true(json_object_get(last.body, "injury_pre_registered")));
	ck_assert(json_is_false(json_object_get(last.body, "insured_here")));
	ck_ok(post("/admin/clock", NULL, "{\"mday\":11,\"hour\":0}"), 200);
	login_ok("hr", &me, hr, sizeof(hr));
	ck_refused(change("pre-register", "{\"id_number\":\"%s\",\"name\":\"韩新入\"}", pid),
		   403, "JS_PRE_REG_WINDOW", T_PRE_REG_WINDOW);
	ck_assert(!insured_here(pid));
	ck_ok(enrol(pid, today), 201);
	ck_assert(insured_here(pid));
	/* Another unit's query does not see this unit's pre-registration. */
	ck_error(post("/hr/staff/query", hr, "{\"id_number\":\"123\"}"), 400, "BAD_FIELD");
}
END_TEST

/* Admin routes: fields, derived IDs, reset. */
START_TEST(test_staff_admin)
{
	static const char *const paths[] = {
		"/hr/staff/collect", "/hr/staff/enrol", "/hr/staff/stop",
		"/hr/staff/rollback", "/hr/staff/pre-register",
		"/hr/staff/retire", "/hr/staff/transfer-in", "/hr/staff/query",
		"/admin/suzhou/persons", "/admin/suzhou/persons/update",
		"/admin/suzhou/staff-units", NULL,
	};
	char first[32];
	int i;


	for (i = 0; paths[i]; i++) {
		const answer *a = post(paths[i], NULL, "{\"zz_unknown\":\"1\"}");

		ck_assert_msg(a->status == 400 || a->status == 401, "%s", paths[i]);
		a = raw(portal, "POST", paths[i], "text/plain", NULL, "{}", 2);
		ck_assert_uint_eq(a->status, 415);
	}
	person("\"name\":\"甲\"");
	snprintf(first, sizeof(first), "%s", pid);
	person("\"name\":\"乙\"");
	ck_assert_str_ne(first, pid);
	ck_assert_int_eq(strncmp(pid, "320505", 6), 0);
	ck_error(post("/admin/suzhou/persons", NULL, "{\"id_number\":\"320505199001010000\"}"),
		 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"flexible\":\"true\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"arrears_district\":\"110101\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"arrears_district\":\"32028\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"account_type\":\"x\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"benefit_months\":\"2026-13\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"benefit_months\":\"2026-01,\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"insured_unit\":\"abc\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons", NULL, "{\"name\":\"\"}"), 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/persons/update", NULL, "{\"person_no\":\"1\"}"), 404, "NO_PERSON");
	ck_error(post("/admin/suzhou/persons/update", NULL, "{\"person_no\":\"%s\",\"id_number\":\"%s\"}",
		      pno, pid), 400, "BAD_FIELD");
	/* A failed update changes nothing. */
	ck_error(post("/admin/suzhou/persons/update", NULL,
		      "{\"person_no\":\"%s\",\"name\":\"丙\",\"flexible\":\"maybe\"}", pno),
		 400, "BAD_FIELD");
	ck_ok(post("/admin/suzhou/persons/update", NULL, "{\"person_no\":\"%s\"}", pno), 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(last.body, "person"), "name")), "乙");
	ck_error(post("/admin/suzhou/staff-units", NULL, "{\"ss_number\":\"x\",\"hr_service\":\"yes\"}"),
		 400, "BAD_FIELD");
	ck_error(post("/admin/suzhou/staff-units", NULL, "{\"ss_number\":\"1\",\"hr_service\":\"1\"}"),
		 400, "BAD_FIELD");
	/* The reset forgets the registry (numbers start again). */
	ck_ok(post("/admin/reset", NULL, "{}"), 200);
	ck_error(post("/admin/suzhou/persons/update", NULL, "{\"person_no\":\"%s\"}", pno),
		 404, "NO_PERSON");
	person("\"name\":\"甲\"");
	ck_assert_str_eq(pid, first);
}
END_TEST

Suite *portal_staff_suite(void)
{
	Suite *s = suite_create("portal_staff");
	TCase *tc = tcase_create("staff");

	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
	tcase_add_checked_fixture(tc, staff_setup, staff_teardown);
	tcase_add_test(tc, test_staff_signature_first);
	tcase_add_test(tc, test_staff_collect);
	tcase_add_test(tc, test_staff_enrol_rules);
	tcase_add_test(tc, test_staff_dates);
	tcase_add_test(tc, test_staff_settlement_month);
	tcase_add_test(tc, test_staff_stop_retire);
	tcase_add_test(tc, test_staff_rollback);
	tcase_add_test(tc, test_staff_pre_register);
	tcase_add_test(tc, test_staff_admin);
	suite_add_tcase(s, tc);
	return s;
}
