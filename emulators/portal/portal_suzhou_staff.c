/*
 * The HR hall's persons and staff changes (portal_suzhou_staff.h, API.md
 * "HR hall: persons and staff changes"). Every request runs under the
 * portal's lock; persons and changes are plain arrays, indexes stay valid.
 */
#include "portal_suzhou_staff.h"

#include "common/error.h"
#include "fixtures/ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Catalog texts, byte for byte (copied from failure-paths.md by a tool). */
/* JS-B01 */
#define JS_TXT_NO_PERSON_INFO \
	"未获取到人员基本信息"

/* JS-B02 */
#define JS_TXT_FLEXIBLE \
	"该人员为灵活就业参保人员"

/* JS-B03 */
#define JS_TXT_SEVERAL_PERSONS \
	"根据身份证号码找到多条人员信息，无法办理此业务"

/* JS-B04 */
#define JS_TXT_HUKOU_EMPTY \
	"户籍性质不能为空"

/* JS-B05 */
#define JS_TXT_BENEFIT_PAID \
	"自参保开始日期下一月起，存在失业金发放信息。"

/* JS-B06 */
#define JS_TXT_NO_INSURED_IDENTITY \
	"没有符合该人员的参保身份"

/* JS-B07, followed by the person number */
#define JS_TXT_COLLECTED \
	"人员信息已采集，人员编号为"

/* JS-B08 */
#define JS_TXT_NOT_HR_SERVICE \
	"只有人力资源服务单位才能输入人力资源服务信息"

/* JS-B09 */
#define JS_TXT_LEGAL_REP \
	"该人员为公司法人，不允许停保！"

/* JS-B10, followed by the district code */
#define JS_TXT_ARREARS \
	"该人员在其他统办区存在欠费，"

/* JS-B11 */
#define JS_TXT_ADDRESS \
	"户籍地址格式无法解析"

/* JS-B12 */
#define JS_TXT_TEMPORARY \
	"该人员账户类型为临时缴费账户，不允许办理"

/* JS-E15 */
#define JS_TXT_ROLLBACK_PERIOD \
	"所有业务在同一结算期内均可进行回退操作，跨结算期不允许回退"

/* JS-E16 */
#define JS_TXT_STOP_DATE \
	"停保日期不能大于当前日期（不能提前办理退工）"

/* JS-E16 (both halves of the rule) */
#define JS_TXT_CONTRACT \
	"合同开始日期不得晚于当前结算年月；合同终止日期不得早于当前日期"

/* JS-E16 */
#define JS_TXT_BACK_PAY \
	"其中：6个月以内的提供网报功能"

/* JS-PRE-OK: the module is for days 7-10 */
#define JS_TXT_PRE_REG_WINDOW \
	"每月 7-10 日暂停申报期间，用人单位可通过此模块进行工伤预登记"

/* JS-PRE-OK: the enrolment is still needed */
#define JS_TXT_PRE_REG_NOTICE \
	"等到了申报期（本月11号至次月6号），仍需要给员工做用人单位用工参保登记"

/* JS-E12: ordinary declarations and staff changes alike */
#define JS_TXT_SETTLEMENT \
	"每月7日至10日为社会保险费结算期，停止受理用人单位申报业务；申报期为每月11日0点至次月6日24点"

/* The mock's own texts (no seed text; API.md lists them). */
#define JS_TXT_ALREADY_INSURED "该人员已在本单位参保，无需重复登记"
#define JS_TXT_NOT_INSURED_HERE "该人员未在本单位参保，无法办理此业务"
#define JS_TXT_ROLLBACK_UNKNOWN "未查询到可回退的业务"
#define JS_TXT_ROLLBACK_DONE "该业务已回退，请勿重复提交"
#define JS_TXT_ROLLBACK_LATER "该人员在此业务之后已办理其他业务，请先回退后续业务"

#define JS_PERSONS_MAX 4096
#define JS_CHANGES_MAX 4096
#define JS_BENEFIT_MAX 24
#define JS_NAME_MAX 63
#define JS_ADDRESS_MAX 255
#define JS_SS_MAX 32
#define JS_DEFAULT_HUKOU "非农业户口"
#define JS_DEFAULT_ADDRESS "江苏省苏州市姑苏区"
/* 苏州市高新区: the region of the IDs the portal derives. */
#define JS_ID_REGION "320505"

enum {
	CH_COLLECT = 1 << 0,
	CH_ENROL = 1 << 1,
	CH_STOP = 1 << 2,
	CH_ROLLBACK = 1 << 3,
	CH_PRE_REGISTER = 1 << 4,
	CH_RETIRE = 1 << 5,
	CH_TRANSFER_IN = 1 << 6,
};

typedef struct js_person {
	char id[FX_RESIDENT_ID_LEN + 1];
	char no[24];                  /* 人员编号 */
	char name[JS_NAME_MAX + 1];
	int collected;                /* basic information on the platform */
	int flexible;                 /* insured as flexibly employed */
	int temporary;                /* temporary-contribution account */
	char hukou[JS_NAME_MAX + 1];  /* 户籍性质, "" when empty */
	char address[JS_ADDRESS_MAX + 1];
	int benefit[JS_BENEFIT_MAX];  /* months (y*12+m-1) of unemployment benefit */
	size_t nbenefit;
	char insured_unit[JS_SS_MAX + 1]; /* ss number, "" when none */
	char legal_rep_of[JS_SS_MAX + 1];
	char arrears[8];              /* district code, "" when none */
	int retired;
	unsigned long version;        /* bumped by every staff change */
} js_person;

typedef struct js_change {
	char receipt[32];
	char unit[JS_SS_MAX + 1];
	int kind;
	size_t person;
	int period;                   /* settlement month of the change */
	char before[JS_SS_MAX + 1];   /* insured_unit before */
	int retired_before;
	unsigned long version;        /* the person's version after */
	int rolled_back;
} js_change;

typedef struct js_prereg {
	char unit[JS_SS_MAX + 1];
	char id[FX_RESIDENT_ID_LEN + 1];
} js_prereg;

struct js_staff {
	js_person *persons;
	size_t npersons, cap_persons;
	js_change *changes;
	size_t nchanges, cap_changes;
	js_prereg *preregs;
	size_t npreregs, cap_preregs;
	json_t *hr_service;           /* ss number -> true */
	unsigned long person_seq;
	unsigned long id_seq;
	unsigned long receipts;
};

int js_staff_new(js_staff **out)
{
	js_staff *st = calloc(1, sizeof(*st));

	*out = st;
	if (!st)
		return tr_error_set(TR_ENOMEM, "staff state");
	if (!(st->hr_service = json_object()))
		return tr_error_set(TR_ENOMEM, "staff state");
	return 0;
}

void js_staff_reset(js_staff *st)
{
	if (!st)
		return;
	st->npersons = 0;
	st->nchanges = 0;
	st->npreregs = 0;
	st->person_seq = 0;
	st->id_seq = 0;
	st->receipts = 0;
	json_object_clear(st->hr_service);
}

void js_staff_free(js_staff *st)
{
	if (!st)
		return;
	free(st->persons);
	free(st->changes);
	free(st->preregs);
	json_decref(st->hr_service);
	free(st);
}

/* Grows *arr (of *cap elements of size) to hold one more, up to max. */
static int grow(void **arr, size_t *cap, size_t n, size_t size, size_t max)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	if (n >= max)
		return TR_ERROR;
	ncap = *cap ? 2 * *cap : 16;
	if (ncap > max)
		ncap = max;
	if (!(p = realloc(*arr, ncap * size)))
		return TR_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* ---- calendar (China Standard Time of the portal clock) ---- */

static void cst_tm(int64_t t, struct tm *tm)
{
	time_t local = (time_t)(t + 8 * 3600);

	gmtime_r(&local, tm);
}

/* yyyymmdd of portal time t. */
static int cst_day(int64_t t)
{
	struct tm tm;

	cst_tm(t, &tm);
	return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static int month_of_day(int day)
{
	return day / 10000 * 12 + day / 100 % 100 - 1;
}

/*
 * The settlement month (当前结算年月) of portal time t: a declaration made
 * from the 11th of month M-1 to the 6th of month M counts for month M (seed
 * 001: "上月11日至本月6日前办结...列入当月"); days 7-10 are the
 * settlement period, already counted with the next month.
 */
static int settlement_month(int64_t t)
{
	int day = cst_day(t);

	return month_of_day(day) + (day % 100 >= 7 ? 1 : 0);
}

/* JS-E12's period: the 7th to the 10th (CST) of a month. */
static int in_settlement_period(int64_t t)
{
	int mday, wday;

	pt_cst_day(t, &mday, &wday);
	return mday >= 7 && mday <= 10;
}

int js_staff_settlement_refused(pt_ctx *ctx)
{
	if (!in_settlement_period(ctx->now))
		return 0;
	pt_reply_error(ctx, 403, "JS_SETTLEMENT_PERIOD", 0, "%s", JS_TXT_SETTLEMENT);
	return 1;
}

static int two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static int four_digits(const char *s)
{
	int a = two_digits(s), b = a < 0 ? -1 : two_digits(s + 2);

	return b < 0 ? -1 : a * 100 + b;
}

/* "YYYY-MM" -> y*12+m-1, or -1. */
static int parse_month(const char *s, size_t len)
{
	int y, m;

	if (len != 7 || s[4] != '-' || (y = four_digits(s)) < 1900 ||
	    (m = two_digits(s + 5)) < 1 || m > 12)
		return -1;
	return y * 12 + m - 1;
}

/* "YYYY-MM-DD" (a real date) -> yyyymmdd, or -1. */
static int parse_date(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int mi, y, m, d, leap;

	if (strlen(s) != 10 || s[7] != '-' || (mi = parse_month(s, 7)) < 0 ||
	    (d = two_digits(s + 8)) < 1)
		return -1;
	y = mi / 12;
	m = mi % 12 + 1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return -1;
	return y * 10000 + m * 100 + d;
}

static void fmt_month(char *buf, size_t len, int mi)
{
	snprintf(buf, len, "%04d-%02d", mi / 12, mi % 12 + 1);
}

static void fmt_day(char *buf, size_t len, int day)
{
	snprintf(buf, len, "%04d-%02d-%02d", day / 10000, day / 100 % 100,
		 day % 100);
}

/* ---- persons ---- */

static js_person *person_by_no(js_staff *st, const char *no)
{
	size_t i;

	for (i = 0; i < st->npersons; i++)
		if (strcmp(st->persons[i].no, no) == 0)
			return &st->persons[i];
	return NULL;
}

static int id_known(const js_staff *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->npersons; i++)
		if (strcmp(st->persons[i].id, id) == 0)
			return 1;
	return 0;
}

/* A fresh valid resident ID (GB 11643) no record has yet. */
static int derive_id(js_staff *st, char *out)
{
	char first17[18];
	unsigned long k;

	do {
		k = st->id_seq++;
		snprintf(first17, sizeof(first17), "%s%04lu%02lu%02lu%03lu",
			 JS_ID_REGION, 1970 + k % 30, 1 + k / 30 % 12,
			 1 + k / 360 % 28, k / 10080 % 1000);
		memcpy(out, first17, 17);
		if (fx_resident_id_check_char(first17, &out[17]) < 0)
			return TR_EINVAL;
		out[18] = '\0';
	} while (id_known(st, out));
	return 0;
}

/* A new record (its number assigned); NULL when the registry is full. */
static js_person *person_add(js_staff *st, const char *id, const char *name)
{
	js_person *p;

	if (grow((void **)&st->persons, &st->cap_persons, st->npersons,
		 sizeof(*p), JS_PERSONS_MAX) < 0)
		return NULL;
	p = &st->persons[st->npersons++];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->no, sizeof(p->no), "3205%012lu", ++st->person_seq);
	snprintf(p->hukou, sizeof(p->hukou), "%s", JS_DEFAULT_HUKOU);
	snprintf(p->address, sizeof(p->address), "%s", JS_DEFAULT_ADDRESS);
	p->collected = 1;
	return p;
}

/*
 * "**省**市**区（县）": a province, a city and a district or county, each
 * named (more detail may follow).
 */
static int address_parses(const char *a)
{
	const char *prov = strstr(a, "省"), *city, *qu, *xian, *dist;

	if (!prov || prov == a)
		return 0;
	prov += strlen("省");
	if (!(city = strstr(prov, "市")) || city == prov)
		return 0;
	city += strlen("市");
	qu = strstr(city, "区");
	xian = strstr(city, "县");
	dist = !qu ? xian : !xian ? qu : qu < xian ? qu : xian;
	return dist && dist != city;
}

/* ---- a staff change being checked ---- */

typedef struct staff_req {
	pt_ctx *ctx;
	js_staff *st;
	int change;
	json_t *doc;
	const char *unit;      /* the session's ss number */
	int today;             /* yyyymmdd */
	int sm;                /* settlement month */
	const char *id;        /* id_number, "" when none */
	size_t nmatch;         /* collected records of id (or the chosen one) */
	js_person *person;     /* the one when nmatch == 1 */
	/* enrol */
	int start, end;        /* yyyymmdd, end 0 when open-ended */
	const char *address;
	int dispatch;          /* a dispatch field is filled */
	/* stop */
	int stop;
	/* rollback */
	js_change *target;
	char detail[64];
} staff_req;

static const char *doc_str(const staff_req *r, const char *name)
{
	const char *s = json_string_value(json_object_get(r->doc, name));

	return s ? s : "";
}

static int doc_has(const staff_req *r, const char *name)
{
	return json_object_get(r->doc, name) != NULL;
}

/* ---- the rules: predicates, then the table ---- */

static int r_settlement(staff_req *r)
{
	return in_settlement_period(r->ctx->now);
}

static int r_pre_reg_window(staff_req *r)
{
	return !in_settlement_period(r->ctx->now);
}

static int r_collected(staff_req *r)
{
	size_t i;

	for (i = 0; i < r->st->npersons; i++) {
		const js_person *p = &r->st->persons[i];

		if (p->collected && strcmp(p->id, r->id) == 0) {
			snprintf(r->detail, sizeof(r->detail), "%s", p->no);
			return 1;
		}
	}
	return 0;
}

static int r_no_person(staff_req *r) { return r->nmatch == 0; }
static int r_several(staff_req *r) { return r->nmatch > 1; }
static int r_flexible(staff_req *r) { return r->person->flexible; }
static int r_hukou(staff_req *r) { return r->person->hukou[0] == '\0'; }
static int r_address(staff_req *r) { return !address_parses(r->address); }
static int r_temporary(staff_req *r) { return r->person->temporary; }

static int r_arrears(staff_req *r)
{
	if (!r->person->arrears[0])
		return 0;
	snprintf(r->detail, sizeof(r->detail), "%s", r->person->arrears);
	return 1;
}

static int r_insured_elsewhere(staff_req *r)
{
	return r->person->insured_unit[0] &&
	       strcmp(r->person->insured_unit, r->unit) != 0;
}

static int r_insured_here(staff_req *r)
{
	return strcmp(r->person->insured_unit, r->unit) == 0;
}

static int r_not_insured_here(staff_req *r) { return !r_insured_here(r); }

static int r_not_hr_service(staff_req *r)
{
	return r->dispatch && !json_object_get(r->st->hr_service, r->unit);
}

static int r_contract_start(staff_req *r)
{
	return month_of_day(r->start) > r->sm;
}

static int r_contract_end(staff_req *r)
{
	return r->end && r->end < r->today;
}

/* Back payment: the months from the contract's start to the settlement month. */
static int r_back_pay(staff_req *r)
{
	int months = r->sm - month_of_day(r->start);

	return months > 6;
}

/* "自参保开始日期下一月起": a benefit month after the start month. */
static int r_benefit(staff_req *r)
{
	size_t i;

	for (i = 0; i < r->person->nbenefit; i++)
		if (r->person->benefit[i] > month_of_day(r->start))
			return 1;
	return 0;
}

static int r_legal_rep(staff_req *r)
{
	return strcmp(r->person->legal_rep_of, r->unit) == 0;
}

static int r_stop_date(staff_req *r) { return r->stop > r->today; }
static int r_rollback_unknown(staff_req *r) { return r->target == NULL; }
static int r_rollback_done(staff_req *r) { return r->target->rolled_back; }

static int r_rollback_period(staff_req *r)
{
	return r->target->period != r->sm;
}

static int r_rollback_later(staff_req *r)
{
	return r->st->persons[r->target->person].version != r->target->version;
}

/* How the message continues: nothing, or the predicate's detail. */
enum { TAIL_NONE, TAIL_DETAIL };

typedef struct staff_rule {
	int changes;                /* CH_* the rule applies to */
	int (*hit)(staff_req *r);   /* 1: refused */
	unsigned http;
	const char *code;
	const char *text;
	int tail;
	const char *id;             /* catalog ID, for the reader */
} staff_rule;

#define CH_PERSON (CH_ENROL | CH_STOP | CH_RETIRE | CH_TRANSFER_IN)

/*
 * In order, first hit answers. Rules after the person lookup (r_no_person,
 * r_several) may use r->person.
 */
static const staff_rule staff_rules[] = {
	{ CH_ENROL | CH_STOP | CH_ROLLBACK | CH_RETIRE | CH_TRANSFER_IN,
	  r_settlement, 403, "JS_SETTLEMENT_PERIOD", JS_TXT_SETTLEMENT,
	  TAIL_NONE, "JS-E12" },
	{ CH_PRE_REGISTER, r_pre_reg_window, 403, "JS_PRE_REG_WINDOW",
	  JS_TXT_PRE_REG_WINDOW, TAIL_NONE, "JS-PRE-OK" },
	{ CH_COLLECT, r_collected, 409, "JS_PERSON_COLLECTED", JS_TXT_COLLECTED,
	  TAIL_DETAIL, "JS-B07" },
	{ CH_PERSON, r_no_person, 404, "JS_NO_PERSON_INFO",
	  JS_TXT_NO_PERSON_INFO, TAIL_NONE, "JS-B01" },
	{ CH_PERSON, r_several, 409, "JS_SEVERAL_PERSONS",
	  JS_TXT_SEVERAL_PERSONS, TAIL_NONE, "JS-B03" },
	{ CH_ENROL, r_flexible, 403, "JS_FLEXIBLE_INSURED", JS_TXT_FLEXIBLE,
	  TAIL_NONE, "JS-B02" },
	{ CH_ENROL, r_hukou, 403, "JS_HUKOU_EMPTY", JS_TXT_HUKOU_EMPTY,
	  TAIL_NONE, "JS-B04" },
	{ CH_ENROL, r_address, 400, "JS_ADDRESS_UNPARSABLE", JS_TXT_ADDRESS,
	  TAIL_NONE, "JS-B11" },
	{ CH_ENROL, r_arrears, 403, "JS_ARREARS_ELSEWHERE", JS_TXT_ARREARS,
	  TAIL_DETAIL, "JS-B10" },
	{ CH_ENROL, r_insured_elsewhere, 409, "JS_NO_INSURED_IDENTITY",
	  JS_TXT_NO_INSURED_IDENTITY, TAIL_NONE, "JS-B06" },
	{ CH_ENROL, r_insured_here, 409, "JS_ALREADY_INSURED",
	  JS_TXT_ALREADY_INSURED, TAIL_NONE, NULL },
	{ CH_ENROL, r_not_hr_service, 403, "JS_NOT_HR_SERVICE",
	  JS_TXT_NOT_HR_SERVICE, TAIL_NONE, "JS-B08" },
	{ CH_ENROL, r_contract_start, 403, "JS_CONTRACT_START_LATE",
	  JS_TXT_CONTRACT, TAIL_NONE, "JS-E16" },
	{ CH_ENROL, r_contract_end, 403, "JS_CONTRACT_END_EARLY",
	  JS_TXT_CONTRACT, TAIL_NONE, "JS-E16" },
	{ CH_ENROL, r_back_pay, 403, "JS_BACK_PAY_TOO_LONG", JS_TXT_BACK_PAY,
	  TAIL_NONE, "JS-E16" },
	{ CH_ENROL, r_benefit, 403, "JS_BENEFIT_PAID", JS_TXT_BENEFIT_PAID,
	  TAIL_NONE, "JS-B05" },
	{ CH_RETIRE | CH_TRANSFER_IN, r_temporary, 403, "JS_TEMPORARY_ACCOUNT",
	  JS_TXT_TEMPORARY, TAIL_NONE, "JS-B12" },
	{ CH_STOP | CH_RETIRE | CH_TRANSFER_IN, r_not_insured_here, 409,
	  "JS_NOT_INSURED_HERE", JS_TXT_NOT_INSURED_HERE, TAIL_NONE, NULL },
	{ CH_STOP, r_legal_rep, 403, "JS_LEGAL_REPRESENTATIVE",
	  JS_TXT_LEGAL_REP, TAIL_NONE, "JS-B09" },
	{ CH_STOP, r_stop_date, 403, "JS_STOP_DATE_FUTURE", JS_TXT_STOP_DATE,
	  TAIL_NONE, "JS-E16" },
	{ CH_ROLLBACK, r_rollback_unknown, 404, "JS_ROLLBACK_UNKNOWN",
	  JS_TXT_ROLLBACK_UNKNOWN, TAIL_NONE, NULL },
	{ CH_ROLLBACK, r_rollback_done, 409, "JS_ROLLBACK_DONE",
	  JS_TXT_ROLLBACK_DONE, TAIL_NONE, NULL },
	{ CH_ROLLBACK, r_rollback_period, 403, "JS_ROLLBACK_CROSS_PERIOD",
	  JS_TXT_ROLLBACK_PERIOD, TAIL_NONE, "JS-E15" },
	{ CH_ROLLBACK, r_rollback_later, 409, "JS_ROLLBACK_NOT_LATEST",
	  JS_TXT_ROLLBACK_LATER, TAIL_NONE, NULL },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the documents ---- */

static const pt_field collect_doc[] = {
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "name", PT_FIELD_STRING, 0 },
	{ "hukou_type", PT_FIELD_STRING, 1 },
	{ "address", PT_FIELD_STRING, 1 },
};

static const pt_field enrol_doc[] = {
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "person_no", PT_FIELD_STRING, 1 },
	{ "contract_start", PT_FIELD_STRING, 0 },
	{ "contract_end", PT_FIELD_STRING, 1 },
	{ "address", PT_FIELD_STRING, 1 },
	/* The three dispatch fields (劳务派遣信息). */
	{ "employment_type", PT_FIELD_STRING, 1 },
	{ "actual_unit_no", PT_FIELD_STRING, 1 },
	{ "actual_unit_name", PT_FIELD_STRING, 1 },
};

static const pt_field stop_doc[] = {
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "person_no", PT_FIELD_STRING, 1 },
	{ "stop_date", PT_FIELD_STRING, 0 },
	{ "reason", PT_FIELD_STRING, 0 },
};

static const pt_field rollback_doc[] = {
	{ "receipt", PT_FIELD_STRING, 0 },
};

static const pt_field pre_register_doc[] = {
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "name", PT_FIELD_STRING, 0 },
};

static const pt_field person_doc[] = {
	{ "id_number", PT_FIELD_STRING, 0 },
	{ "person_no", PT_FIELD_STRING, 1 },
};

typedef struct change_def {
	int change;
	const pt_field *fields;
	size_t nfields;
} change_def;

static const change_def change_defs[] = {
	{ CH_COLLECT, collect_doc, N(collect_doc) },
	{ CH_ENROL, enrol_doc, N(enrol_doc) },
	{ CH_STOP, stop_doc, N(stop_doc) },
	{ CH_ROLLBACK, rollback_doc, N(rollback_doc) },
	{ CH_PRE_REGISTER, pre_register_doc, N(pre_register_doc) },
	{ CH_RETIRE, person_doc, N(person_doc) },
	{ CH_TRANSFER_IN, person_doc, N(person_doc) },
};

static void bad_doc(pt_ctx *ctx, const char *fmt, const char *field)
{
	pt_reply_error(ctx, 400, "BAD_DOCUMENT", 0, fmt, field);
}

/* A string of the document within min..max bytes, else replies. */
static int doc_len_ok(staff_req *r, const char *field, size_t min, size_t max)
{
	size_t n = strlen(doc_str(r, field));

	if (n < min || n > max) {
		pt_reply_error(r->ctx, 400, "BAD_DOCUMENT",
			       0, "document field '%s' must be %zu to %zu bytes",
			       field, min, max);
		return 0;
	}
	return 1;
}

/* Field formats of the document (400 BAD_DOCUMENT naming the field). */
static int doc_formats(staff_req *r)
{
	static const char *const dispatch[] = { "employment_type",
		"actual_unit_no", "actual_unit_name" };
	size_t i;

	if (doc_has(r, "id_number") && !fx_resident_id_valid(r->id)) {
		bad_doc(r->ctx, "document field '%s' is not a valid resident ID number",
			"id_number");
		return 0;
	}
	if (doc_has(r, "person_no") && !pt_digits(doc_str(r, "person_no"), 1, 23)) {
		bad_doc(r->ctx, "document field '%s' must be 1 to 23 digits",
			"person_no");
		return 0;
	}
	if (doc_has(r, "name") && !doc_len_ok(r, "name", 1, JS_NAME_MAX))
		return 0;
	if ((doc_has(r, "hukou_type") && !doc_len_ok(r, "hukou_type", 0, JS_NAME_MAX)) ||
	    (doc_has(r, "address") && !doc_len_ok(r, "address", 0, JS_ADDRESS_MAX)) ||
	    (doc_has(r, "reason") && !doc_len_ok(r, "reason", 1, 200)) ||
	    (doc_has(r, "receipt") && !doc_len_ok(r, "receipt", 1, 31)))
		return 0;
	for (i = 0; i < N(dispatch); i++) {
		if (!doc_len_ok(r, dispatch[i], 0, 200))
			return 0;
		if (doc_str(r, dispatch[i])[0])
			r->dispatch = 1;
	}
	if (r->change == CH_ENROL) {
		if ((r->start = parse_date(doc_str(r, "contract_start"))) < 0) {
			bad_doc(r->ctx, "document field '%s' must be a date YYYY-MM-DD",
				"contract_start");
			return 0;
		}
		r->end = 0;
		if (doc_str(r, "contract_end")[0] &&
		    (r->end = parse_date(doc_str(r, "contract_end"))) < 0) {
			bad_doc(r->ctx, "document field '%s' must be a date YYYY-MM-DD",
				"contract_end");
			return 0;
		}
		if (r->end && r->end < r->start) {
			bad_doc(r->ctx, "document field '%s' is before contract_start",
				"contract_end");
			return 0;
		}
	}
	if (r->change == CH_STOP &&
	    (r->stop = parse_date(doc_str(r, "stop_date"))) < 0) {
		bad_doc(r->ctx, "document field '%s' must be a date YYYY-MM-DD",
			"stop_date");
		return 0;
	}
	return 1;
}

/* The collected records of the document's person (or the chosen one). */
static void find_person(staff_req *r)
{
	const char *no = doc_str(r, "person_no");
	size_t i;

	r->nmatch = 0;
	r->person = NULL;
	for (i = 0; i < r->st->npersons; i++) {
		js_person *p = &r->st->persons[i];

		if (!p->collected || strcmp(p->id, r->id) != 0 ||
		    (no[0] && strcmp(p->no, no) != 0))
			continue;
		r->nmatch++;
		r->person = p;
	}
	if (r->nmatch != 1)
		r->person = NULL;
}

static js_change *change_by_receipt(staff_req *r, const char *receipt)
{
	size_t i;

	for (i = 0; i < r->st->nchanges; i++)
		if (strcmp(r->st->changes[i].receipt, receipt) == 0 &&
		    strcmp(r->st->changes[i].unit, r->unit) == 0)
			return &r->st->changes[i];
	return NULL;
}

/* "JSRY<YYYYMMDD CST><6 digits>", the business's number. */
static void new_receipt(staff_req *r, char *buf, size_t len)
{
	snprintf(buf, len, "JSRY%08d%06lu", r->today, ++r->st->receipts);
}

/* Records a change of r->person done now; NULL when the log is full. */
static js_change *log_change(staff_req *r, const char *before,
			     int retired_before)
{
	js_change *c;

	if (grow((void **)&r->st->changes, &r->st->cap_changes,
		 r->st->nchanges, sizeof(*c), JS_CHANGES_MAX) < 0)
		return NULL;
	c = &r->st->changes[r->st->nchanges++];
	memset(c, 0, sizeof(*c));
	new_receipt(r, c->receipt, sizeof(c->receipt));
	snprintf(c->unit, sizeof(c->unit), "%s", r->unit);
	snprintf(c->before, sizeof(c->before), "%s", before);
	c->kind = r->change;
	c->person = (size_t)(r->person - r->st->persons);
	c->period = r->sm;
	c->retired_before = retired_before;
	c->version = ++r->person->version;
	return c;
}

static void reply_full(pt_ctx *ctx)
{
	pt_reply_error(ctx, 507, "REGISTRY_FULL", 0,
		       "the mock's registry is full (%d entries)",
		       JS_PERSONS_MAX);
}

/* The accepted change: state updated, 201 with the receipt. */
static void apply(staff_req *r)
{
	js_person *p = r->person;
	char receipt[32], before[JS_SS_MAX + 1];
	js_change *c;
	int retired;

	switch (r->change) {
	case CH_COLLECT:
		/* A record the police know but the platform lacked, or a new one. */
		p = NULL;
		for (size_t i = 0; i < r->st->npersons && !p; i++)
			if (strcmp(r->st->persons[i].id, r->id) == 0)
				p = &r->st->persons[i];
		if (!p && !(p = person_add(r->st, r->id, doc_str(r, "name")))) {
			reply_full(r->ctx);
			return;
		}
		p->collected = 1;
		snprintf(p->name, sizeof(p->name), "%s", doc_str(r, "name"));
		if (doc_has(r, "hukou_type"))
			snprintf(p->hukou, sizeof(p->hukou), "%s",
				 doc_str(r, "hukou_type"));
		if (doc_has(r, "address"))
			snprintf(p->address, sizeof(p->address), "%s",
				 doc_str(r, "address"));
		new_receipt(r, receipt, sizeof(receipt));
		pt_reply_ok(r->ctx, 201, json_pack("{s:s, s:b, s:s}", "receipt",
						   receipt, "verified", 1,
						   "person_no", p->no));
		return;
	case CH_PRE_REGISTER:
		if (grow((void **)&r->st->preregs, &r->st->cap_preregs,
			 r->st->npreregs, sizeof(js_prereg), JS_PERSONS_MAX) < 0) {
			reply_full(r->ctx);
			return;
		}
		snprintf(r->st->preregs[r->st->npreregs].unit, JS_SS_MAX + 1,
			 "%s", r->unit);
		snprintf(r->st->preregs[r->st->npreregs].id,
			 FX_RESIDENT_ID_LEN + 1, "%s", r->id);
		r->st->npreregs++;
		new_receipt(r, receipt, sizeof(receipt));
		pt_reply_ok(r->ctx, 201, json_pack("{s:s, s:b, s:s}", "receipt",
						   receipt, "verified", 1,
						   "message",
						   JS_TXT_PRE_REG_NOTICE));
		return;
	case CH_ROLLBACK:
		c = r->target;
		p = &r->st->persons[c->person];
		snprintf(p->insured_unit, sizeof(p->insured_unit), "%s",
			 c->before);
		p->retired = c->retired_before;
		/* The person is as before the change: an earlier change of the
		 * period is the latest again. */
		p->version = c->version - 1;
		c->rolled_back = 1;
		pt_reply_ok(r->ctx, 201, json_pack("{s:s, s:b, s:s}", "receipt",
						   c->receipt, "verified", 1,
						   "person_no", p->no));
		return;
	default:
		break;
	}
	snprintf(before, sizeof(before), "%s", p->insured_unit);
	retired = p->retired;
	if (r->change == CH_ENROL) {
		snprintf(p->insured_unit, sizeof(p->insured_unit), "%s", r->unit);
		/* The declaration's 户籍地址 replaces the registry's. */
		if (doc_str(r, "address")[0])
			snprintf(p->address, sizeof(p->address), "%s",
				 doc_str(r, "address"));
	} else if (r->change == CH_STOP) {
		p->insured_unit[0] = '\0';
	} else if (r->change == CH_RETIRE) {
		p->insured_unit[0] = '\0';
		p->retired = 1;
	}
	if (!(c = log_change(r, before, retired))) {
		/* Undo: the change is not recorded, so not done. */
		snprintf(p->insured_unit, sizeof(p->insured_unit), "%s", before);
		p->retired = retired;
		reply_full(r->ctx);
		return;
	}
	pt_reply_ok(r->ctx, 201, json_pack("{s:s, s:b, s:s}", "receipt",
					   c->receipt, "verified", 1,
					   "person_no", p->no));
}

/* Signature, document, rules, change: the order API.md gives. */
static void staff_change(pt_ctx *ctx, int change)
{
	const char *doc_text = pt_body_str(ctx, "document");
	const change_def *def = NULL;
	staff_req r;
	size_t i;
	int err;

	memset(&r, 0, sizeof(r));
	/* An hr session always has one; without, nothing can verify. */
	if (!ctx->session->cert) {
		pt_reply_ca_failure(ctx, PT_STATUS_SIGNATURE);
		return;
	}
	if (pt_check_signature(ctx, ctx->session->cert,
			       pt_body_str(ctx, "algorithm"), doc_text,
			       strlen(doc_text), pt_body_str(ctx, "signature")) != 0)
		return;
	for (i = 0; i < N(change_defs); i++)
		if (change_defs[i].change == change)
			def = &change_defs[i];
	if ((err = pt_json_parse_object(doc_text, strlen(doc_text), &r.doc)) < 0) {
		pt_reply_error(ctx, 400, "BAD_DOCUMENT", 0,
			       "document is not a JSON object: %s",
			       tr_error_last());
		return;
	}
	if (!def || pt_fields_check(r.doc, def->fields, def->nfields, NULL) < 0) {
		pt_reply_error(ctx, 400, "BAD_DOCUMENT", 0, "document: %s",
			       def ? tr_error_last() : "unknown change");
		goto out;
	}
	r.ctx = ctx;
	r.st = js_staff_of(ctx);
	r.change = change;
	r.unit = ctx->session->account;
	r.today = cst_day(ctx->now);
	r.sm = settlement_month(ctx->now);
	r.id = doc_str(&r, "id_number");
	if (!doc_formats(&r))
		goto out;
	if (change & CH_PERSON)
		find_person(&r);
	if (r.person) {
		r.address = doc_str(&r, "address")[0] ? doc_str(&r, "address")
						       : r.person->address;
	}
	if (change == CH_ROLLBACK)
		r.target = change_by_receipt(&r, doc_str(&r, "receipt"));

	for (i = 0; i < N(staff_rules); i++) {
		const staff_rule *rule = &staff_rules[i];

		if (!(rule->changes & change))
			continue;
		r.detail[0] = '\0';
		if (!rule->hit(&r))
			continue;
		if (rule->tail == TAIL_DETAIL)
			pt_reply_error(ctx, rule->http, rule->code, 0, "%s%s",
				       rule->text, r.detail);
		else
			pt_reply_error(ctx, rule->http, rule->code, 0, "%s",
				       rule->text);
		goto out;
	}
	apply(&r);
out:
	json_decref(r.doc);
}

void js_staff_h_collect(pt_ctx *ctx) { staff_change(ctx, CH_COLLECT); }
void js_staff_h_enrol(pt_ctx *ctx) { staff_change(ctx, CH_ENROL); }
void js_staff_h_stop(pt_ctx *ctx) { staff_change(ctx, CH_STOP); }
void js_staff_h_rollback(pt_ctx *ctx) { staff_change(ctx, CH_ROLLBACK); }
void js_staff_h_pre_register(pt_ctx *ctx) { staff_change(ctx, CH_PRE_REGISTER); }
void js_staff_h_retire(pt_ctx *ctx) { staff_change(ctx, CH_RETIRE); }
void js_staff_h_transfer_in(pt_ctx *ctx) { staff_change(ctx, CH_TRANSFER_IN); }

/* ---- the unit's query ---- */

const pt_field js_staff_query_fields[JS_STAFF_QUERY_NFIELDS] = {
	{ "id_number", PT_FIELD_STRING, 0 },
};

void js_staff_h_query(pt_ctx *ctx)
{
	js_staff *st = js_staff_of(ctx);
	const char *id = pt_body_str(ctx, "id_number");
	const char *unit = ctx->session->account;
	json_t *records = json_array();
	int here = 0, pre = 0;
	size_t i;

	if (!records) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "out of memory");
		return;
	}
	if (!fx_resident_id_valid(id)) {
		json_decref(records);
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'id_number' is not a valid resident ID number");
		return;
	}
	for (i = 0; i < st->npersons; i++) {
		const js_person *p = &st->persons[i];
		int h = strcmp(p->insured_unit, unit) == 0;

		if (!p->collected || strcmp(p->id, id) != 0)
			continue;
		here |= h;
		json_array_append_new(records,
				      json_pack("{s:s, s:s, s:b, s:b}",
						"person_no", p->no, "name",
						p->name, "insured_here", h,
						"retired", p->retired));
	}
	for (i = 0; i < st->npreregs; i++)
		if (strcmp(st->preregs[i].unit, unit) == 0 &&
		    strcmp(st->preregs[i].id, id) == 0)
			pre = 1;
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:i, s:o, s:b, s:b}",
					"id_number", id, "count",
					(int)json_array_size(records),
					"records", records, "insured_here",
					here, "injury_pre_registered", pre));
}

/* ---- admin: the registry's persons, unit kinds, the calendar ---- */

#define PERSON_STATE_FIELDS                                     \
	{ "name", PT_FIELD_STRING, 1 },                         \
	{ "collected", PT_FIELD_STRING, 1 },                    \
	{ "flexible", PT_FIELD_STRING, 1 },                     \
	{ "hukou_type", PT_FIELD_STRING, 1 },                   \
	{ "address", PT_FIELD_STRING, 1 },                      \
	{ "benefit_months", PT_FIELD_STRING, 1 },               \
	{ "insured_unit", PT_FIELD_STRING, 1 },                 \
	{ "legal_rep_of", PT_FIELD_STRING, 1 },                 \
	{ "arrears_district", PT_FIELD_STRING, 1 },             \
	{ "account_type", PT_FIELD_STRING, 1 }

const pt_field js_staff_person_fields[JS_STAFF_PERSON_NFIELDS] = {
	{ "id_number", PT_FIELD_STRING, 1 },
	PERSON_STATE_FIELDS,
};

const pt_field js_staff_update_fields[JS_STAFF_UPDATE_NFIELDS] = {
	{ "person_no", PT_FIELD_STRING, 0 },
	PERSON_STATE_FIELDS,
};

_Static_assert(N(js_staff_person_fields) == 11 &&
	       N(js_staff_update_fields) == 11, "person fields");

static int yes_no(pt_ctx *ctx, const char *field, int *out)
{
	json_t *v = json_object_get(ctx->body, field);
	const char *s = json_string_value(v);

	if (!v)
		return 0;
	if (strcmp(s, "yes") == 0 || strcmp(s, "no") == 0) {
		*out = strcmp(s, "yes") == 0;
		return 0;
	}
	pt_reply_error(ctx, 400, "BAD_FIELD", 0, "field '%s' must be yes or no",
		       field);
	return TR_EINVAL;
}

/* "YYYY-MM[,YYYY-MM...]" (or "") into months. */
static int benefit_months(pt_ctx *ctx, const char *s, int *out, size_t *n)
{
	const char *p = s;

	*n = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		int m = parse_month(p, len);

		if (m < 0 || *n == JS_BENEFIT_MAX) {
			pt_reply_error(ctx, 400, "BAD_FIELD", 0,
				       "field 'benefit_months' must be up to %d months YYYY-MM, comma-separated",
				       JS_BENEFIT_MAX);
			return TR_EINVAL;
		}
		out[(*n)++] = m;
		p += len;
		if (*p == ',' && *++p == '\0') {
			pt_reply_error(ctx, 400, "BAD_FIELD", 0,
				       "field 'benefit_months' ends with a comma");
			return TR_EINVAL;
		}
	}
	return 0;
}

static int opt_len(pt_ctx *ctx, const char *field, size_t min, size_t max)
{
	return !json_object_get(ctx->body, field) ||
	       pt_text_field(ctx, field, min, max) != NULL;
}

static int opt_ss(pt_ctx *ctx, const char *field)
{
	json_t *v = json_object_get(ctx->body, field);

	if (!v || pt_digits(json_string_value(v), 0, JS_SS_MAX))
		return 1;
	pt_reply_error(ctx, 400, "BAD_FIELD", 0,
		       "field '%s' must be up to %d digits", field, JS_SS_MAX);
	return 0;
}

/*
 * Validates the state fields of the body into *p (a copy: nothing is
 * changed unless every field is right). 0, or replied.
 */
static int person_fields(pt_ctx *ctx, js_person *p)
{
	const char *arrears = pt_body_str(ctx, "arrears_district");
	const char *acct = pt_body_str(ctx, "account_type");
	int flag;

	if (!opt_len(ctx, "name", 1, JS_NAME_MAX) ||
	    !opt_len(ctx, "hukou_type", 0, JS_NAME_MAX) ||
	    !opt_len(ctx, "address", 0, JS_ADDRESS_MAX) ||
	    !opt_ss(ctx, "insured_unit") || !opt_ss(ctx, "legal_rep_of"))
		return TR_EINVAL;
	/* 320...: a district (统办区) code of Jiangsu, six digits. */
	if (arrears[0] && (!pt_digits(arrears, 6, 6) ||
			   strncmp(arrears, "32", 2) != 0)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'arrears_district' must be a Jiangsu district code: 6 digits starting 32");
		return TR_EINVAL;
	}
	if (json_object_get(ctx->body, "account_type") &&
	    strcmp(acct, "normal") && strcmp(acct, "temporary")) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'account_type' must be normal or temporary");
		return TR_EINVAL;
	}
	flag = p->collected;
	if (yes_no(ctx, "collected", &flag) < 0)
		return TR_EINVAL;
	p->collected = flag;
	flag = p->flexible;
	if (yes_no(ctx, "flexible", &flag) < 0)
		return TR_EINVAL;
	p->flexible = flag;
	if (json_object_get(ctx->body, "benefit_months") &&
	    benefit_months(ctx, pt_body_str(ctx, "benefit_months"), p->benefit,
			   &p->nbenefit) < 0)
		return TR_EINVAL;
#define COPY(member, field)                                              \
	if (json_object_get(ctx->body, field))                           \
		snprintf(p->member, sizeof(p->member), "%s",             \
			 pt_body_str(ctx, field))
	COPY(name, "name");
	COPY(hukou, "hukou_type");
	COPY(address, "address");
	COPY(insured_unit, "insured_unit");
	COPY(legal_rep_of, "legal_rep_of");
	COPY(arrears, "arrears_district");
#undef COPY
	if (json_object_get(ctx->body, "account_type"))
		p->temporary = strcmp(acct, "temporary") == 0;
	return 0;
}

static json_t *person_json(const js_person *p)
{
	return json_pack("{s:s, s:s, s:s, s:b}", "id_number", p->id,
			 "person_no", p->no, "name", p->name, "collected",
			 p->collected);
}

void js_staff_h_admin_person(pt_ctx *ctx)
{
	js_staff *st = js_staff_of(ctx);
	const char *id = pt_body_str(ctx, "id_number");
	char derived[FX_RESIDENT_ID_LEN + 1];
	js_person tmp, *p;

	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.name, sizeof(tmp.name), "%s", "测试人员");
	snprintf(tmp.hukou, sizeof(tmp.hukou), "%s", JS_DEFAULT_HUKOU);
	snprintf(tmp.address, sizeof(tmp.address), "%s", JS_DEFAULT_ADDRESS);
	tmp.collected = 1;
	if (json_object_get(ctx->body, "id_number") && !fx_resident_id_valid(id)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'id_number' is not a valid resident ID number");
		return;
	}
	if (person_fields(ctx, &tmp) < 0)
		return;
	if (!id[0]) {
		if (derive_id(st, derived) < 0) {
			pt_reply_error(ctx, 500, "INTERNAL", 0, "deriving an ID");
			return;
		}
		id = derived;
	}
	if (!(p = person_add(st, id, tmp.name))) {
		reply_full(ctx);
		return;
	}
	snprintf(tmp.id, sizeof(tmp.id), "%s", p->id);
	snprintf(tmp.no, sizeof(tmp.no), "%s", p->no);
	*p = tmp;
	pt_reply_ok(ctx, 201, json_pack("{s:s, s:s, s:o}", "id_number", p->id,
					"person_no", p->no, "person",
					person_json(p)));
}

void js_staff_h_admin_person_update(pt_ctx *ctx)
{
	js_person *p = person_by_no(js_staff_of(ctx),
				    pt_body_str(ctx, "person_no"));
	js_person tmp;

	if (!p) {
		pt_reply_error(ctx, 404, "NO_PERSON", 0,
			       "no person record with this person_no");
		return;
	}
	tmp = *p;
	if (person_fields(ctx, &tmp) < 0)
		return;
	*p = tmp;
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:s, s:o}", "id_number", p->id,
					"person_no", p->no, "person",
					person_json(p)));
}

const pt_field js_staff_unit_fields[JS_STAFF_UNIT_NFIELDS] = {
	{ "ss_number", PT_FIELD_STRING, 0 },
	{ "hr_service", PT_FIELD_STRING, 0 },
};

void js_staff_h_admin_unit(pt_ctx *ctx)
{
	js_staff *st = js_staff_of(ctx);
	const char *ss = pt_body_str(ctx, "ss_number");
	int yes = 0;

	if (!pt_digits(ss, 1, JS_SS_MAX)) {
		pt_reply_error(ctx, 400, "BAD_FIELD", 0,
			       "field 'ss_number' must be 1 to %d digits",
			       JS_SS_MAX);
		return;
	}
	if (yes_no(ctx, "hr_service", &yes) < 0)
		return;
	if (yes)
		json_object_set_new(st->hr_service, ss, json_true());
	else
		json_object_del(st->hr_service, ss);
	pt_reply_ok(ctx, 200, json_pack("{s:s, s:b}", "ss_number", ss,
					"hr_service", yes));
}

/*
 * Scenarios cannot compute dates: the calendar of the portal clock, with
 * the settlement month and the months around it.
 */
void js_staff_h_admin_dates(pt_ctx *ctx)
{
	json_t *o = json_object();
	char buf[16], key[32];
	int sm = settlement_month(ctx->now), k;

	if (!o) {
		pt_reply_error(ctx, 500, "INTERNAL", 0, "out of memory");
		return;
	}
	fmt_day(buf, sizeof(buf), cst_day(ctx->now));
	json_object_set_new(o, "today", json_string(buf));
	fmt_day(buf, sizeof(buf), cst_day(ctx->now - 86400));
	json_object_set_new(o, "yesterday", json_string(buf));
	fmt_day(buf, sizeof(buf), cst_day(ctx->now + 86400));
	json_object_set_new(o, "tomorrow", json_string(buf));
	fmt_month(buf, sizeof(buf), sm);
	json_object_set_new(o, "sm", json_string(buf));
	fmt_month(buf, sizeof(buf), sm + 1);
	json_object_set_new(o, "sm_plus_1", json_string(buf));
	for (k = 1; k <= 7; k++) {
		snprintf(key, sizeof(key), "sm_minus_%d", k);
		fmt_month(buf, sizeof(buf), sm - k);
		json_object_set_new(o, key, json_string(buf));
	}
	json_object_set_new(o, "settlement_period",
			    json_boolean(in_settlement_period(ctx->now)));
	pt_reply_ok(ctx, 200, o);
}
