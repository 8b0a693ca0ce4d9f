#include "harness/nightly.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "harness/compare.h"
#include "harness/scenario.h"

#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LAST 30
#define TITLE_MAX 110      /* bytes of a catalog title shown in the matrix */
#define MAX_SECTIONS 32

/* --- the catalog: sections and IDs in order, with their titles ---------- */

typedef struct cat_id {
	char id[40];
	char *title;     /* the row's second cell, markdown stripped */
	size_t section;
} cat_id;

typedef struct catalog {
	char *sections[MAX_SECTIONS];
	size_t n_sections;
	cat_id *ids;
	size_t n, cap;
} catalog;

static void catalog_free(catalog *cat)
{
	for (size_t i = 0; i < cat->n_sections; i++)
		free(cat->sections[i]);
	for (size_t i = 0; i < cat->n; i++)
		free(cat->ids[i].title);
	free(cat->ids);
	memset(cat, 0, sizeof(*cat));
}

static const cat_id *catalog_find(const catalog *cat, const char *id)
{
	for (size_t i = 0; i < cat->n; i++)
		if (!strcmp(cat->ids[i].id, id))
			return &cat->ids[i];
	return NULL;
}

/* "## 1. Suzhou (seeds ...)" -> "Suzhou". */
static char *section_name(const char *line)
{
	const char *s = line + 3;
	size_t n;

	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == '.')
		s++;
	while (*s == ' ')
		s++;
	n = strcspn(s, "(");
	while (n && s[n - 1] == ' ')
		n--;
	return strndup(s, n);
}

/* A table cell without markdown emphasis or code marks. */
static char *clean_cell(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '*' && s[i] != '`')
			*o++ = s[i];
	*o = '\0';
	while (o > out && o[-1] == ' ')
		*--o = '\0';
	return out;
}

static int catalog_read(const char *path, catalog *cat)
{
	char *text = NULL, *line, *next;
	int error;

	memset(cat, 0, sizeof(*cat));
	if ((error = tr_fs_read_all(path, 1 << 22, &text, NULL)) < 0)
		return error;
	for (line = text; line; line = next) {
		const char *cell;
		size_t n;
		cat_id *c;

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (!strncmp(line, "## ", 3) && cat->n_sections < MAX_SECTIONS) {
			if (!(cat->sections[cat->n_sections] = section_name(line)))
				goto oom;
			cat->n_sections++;
			continue;
		}
		if (strncmp(line, "| ", 2) || !cat->n_sections)
			continue;
		n = strcspn(line + 2, " |");
		if (n == 0 || n >= sizeof(c->id))
			continue;
		line[2 + n] = '\0';
		if (!tr_scenario_id_valid(line + 2) || catalog_find(cat, line + 2))
			continue;
		if (cat->n == cat->cap) {
			cat_id *p = realloc(cat->ids, (cat->cap = cat->cap ? cat->cap * 2 : 128) *
						      sizeof(*p));
			if (!p)
				goto oom;
			cat->ids = p;
		}
		c = &cat->ids[cat->n];
		snprintf(c->id, sizeof(c->id), "%s", line + 2);
		c->section = cat->n_sections - 1;
		/* The second cell: the flow or the trigger. */
		cell = strchr(line + 3 + n, '|');
		cell = cell ? cell + 1 : "";
		while (*cell == ' ')
			cell++;
		if (!(c->title = clean_cell(cell, strcspn(cell, "|"))))
			goto oom;
		cat->n++;
	}
	free(text);
	return 0;
oom:
	free(text);
	catalog_free(cat);
	return tr_error_set(TR_ENOMEM, "out of memory");
}

/* --- small helpers ------------------------------------------------------ */

/* Whether the space-separated list holds id. */
static int has_id(const char *ids, const char *id)
{
	size_t n = strlen(id);

	for (const char *p = ids; (p = strstr(p, id)) != NULL; p += n)
		if ((p == ids || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* At most max bytes of s, cut at a UTF-8 character boundary, "…" when cut. */
static void buf_escape_cut(tr_buf *b, const char *s, size_t max)
{
	size_t n = strlen(s);
	char *cut;

	if (n <= max) {
		tr_buf_escape(b, s);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	if (!(cut = strndup(s, max))) {
		tr_buf_escape(b, s);
		return;
	}
	tr_buf_escape(b, cut);
	tr_buf_puts(b, "…");
	free(cut);
}

static int status_rank(const char *status)
{
	return !strcmp(status, "failed") || !strcmp(status, "error") ? 3 :
	       !strcmp(status, "passed") ? 2 : !strcmp(status, "skipped") ? 1 : 0;
}

static const char *status_class(const char *status)
{
	switch (status_rank(status)) {
	case 3: return "fail";
	case 2: return "pass";
	case 1: return "skip";
	default: return "none";
	}
}

/* "2026-11-27T16:43:21Z" -> "11-27 16:43". */
static void short_time(const char *iso, char *out, size_t len)
{
	if (strlen(iso) >= 16)
		snprintf(out, len, "%.5s %.5s", iso + 5, iso + 11);
	else
		snprintf(out, len, "%s", iso);
}

/* How case_why lays out a failure: one line, or a cell with line breaks. */
typedef struct why_style {
	const char *before_step, *before_expected, *before_actual;
	size_t cut;
} why_style;

static const why_style why_line = { "step: ", "; expected: ", "; actual: ", 400 };
static const why_style why_cell = { "<b>", "</b><br>expected: ", "<br>actual: ", 600 };

/* Why a case did not pass: the failure or the skip reason. */
static void case_why(tr_buf *b, const tr_history_case *c, const why_style *st)
{
	if (*c->step) {
		tr_buf_puts(b, st->before_step);
		tr_buf_escape(b, c->step);
		tr_buf_puts(b, st->before_expected);
		tr_buf_escape(b, c->expected);
		tr_buf_puts(b, st->before_actual);
		buf_escape_cut(b, c->actual, st->cut);
	} else {
		buf_escape_cut(b, c->message, st->cut);
	}
}

/* --- the model: what every section of the page reads ------------------- */

typedef struct model {
	tr_history *h;
	const tr_nightly_opts *opts;
	tr_history_run *runs;
	size_t n_runs;
	tr_history_cases *cases;       /* per run */
	tr_history_latency **latency;  /* per run */
	size_t *n_latency;
	tr_history_change *changes;
	size_t n_changes;
	int *flips;                    /* per case of the last run */
	catalog cat;
	int have_catalog;
	char catalog_error[256];
	/* the bench verdict */
	int bench_state;               /* 0: fewer than two runs with a bench, 1: compared, -1: error */
	long long bench_base, bench_new;
	char *bench_table;
	char bench_error[512];
	int bench_slower, bench_faster, bench_busy, bench_undecided;
	/* the newest certification verdict of the report's runs, or NULL */
	json_t *cert;
	long long cert_run;
} model;

static void model_free(model *m)
{
	for (size_t i = 0; m->cases && i < m->n_runs; i++)
		tr_history_cases_free(&m->cases[i]);
	for (size_t i = 0; m->latency && i < m->n_runs; i++)
		free(m->latency[i]);
	free(m->cases);
	free(m->latency);
	free(m->n_latency);
	free(m->changes);
	free(m->flips);
	free(m->runs);
	free(m->bench_table);
	json_decref(m->cert);
	catalog_free(&m->cat);
}

/* Writes a stored bench document to a temporary file, for compare's API. */
static int bench_to_file(tr_history *h, long long run_id, char *path, size_t len)
{
	char *text = NULL;
	int fd, error;

	if ((error = tr_history_run_bench(h, run_id, &text)) < 0)
		return error;
	snprintf(path, len, "%s/tokenrig-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		free(text);
		return tr_error_set(TR_EIO, "%s: cannot create: %s", path, strerror(errno));
	}
	close(fd);
	error = tr_fs_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (error < 0)
		unlink(path);
	return error;
}

/* compare's verdict between the last two runs that had a bench. */
static int compare_benches(model *m)
{
	tr_compare_opts o = { .threshold = 0.10, .alpha = 0.01, .min_us = 1.0, .normalize = 1 };
	char a[4096] = "", b[4096] = "";
	size_t idx[2], found = 0, size = 0;
	FILE *out = NULL;
	tr_compare_summary sum;
	int error;

	for (size_t i = m->n_runs; i-- > 0 && found < 2;)
		if (m->runs[i].has_bench)
			idx[found++] = i;
	if (found < 2)
		return 0;
	m->bench_new = m->runs[idx[0]].id;
	m->bench_base = m->runs[idx[1]].id;
	if ((error = bench_to_file(m->h, m->bench_base, a, sizeof(a))) < 0 ||
	    (error = bench_to_file(m->h, m->bench_new, b, sizeof(b))) < 0)
		goto out;
	if (!(out = open_memstream(&m->bench_table, &size))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	error = tr_compare_files(a, b, &o, out, &sum);
	fclose(out);
	if (error < 0)
		goto out;
	m->bench_slower = sum.slower;
	m->bench_faster = sum.faster;
	m->bench_busy = sum.busy;
	m->bench_undecided = sum.undecided;
	m->bench_state = 1;
out:
	if (error < 0) {
		m->bench_state = -1;
		snprintf(m->bench_error, sizeof(m->bench_error), "%s", tr_error_last());
	}
	if (*a)
		unlink(a);
	if (*b)
		unlink(b);
	return 0;
}

/* The newest run of the report that has a certification verdict. */
static int load_certification(model *m)
{
	char *text = NULL;
	json_error_t jerr;
	int error;

	for (size_t i = m->n_runs; i-- > 0;) {
		if (!m->runs[i].has_certification)
			continue;
		if ((error = tr_history_run_certification(m->h, m->runs[i].id, &text)) < 0)
			return error;
		m->cert = json_loads(text, 0, &jerr);
		free(text);
		if (!m->cert)
			return tr_error_set(TR_EPARSE, "run %lld's certification: %s", m->runs[i].id,
					    jerr.text);
		m->cert_run = m->runs[i].id;
		break;
	}
	return 0;
}

static int model_load(model *m, tr_history *h, const tr_nightly_opts *opts)
{
	size_t last = opts->last ? opts->last : DEFAULT_LAST;
	int error;

	m->h = h;
	m->opts = opts;
	if ((error = tr_history_runs(h, last, &m->runs, &m->n_runs)) < 0)
		return error;
	if (!m->n_runs)
		return tr_error_set(TR_ENOTFOUND, "the history has no runs: `tokenrig history add "
				    "results.json` first");
	m->cases = calloc(m->n_runs, sizeof(*m->cases));
	m->latency = calloc(m->n_runs, sizeof(*m->latency));
	m->n_latency = calloc(m->n_runs, sizeof(*m->n_latency));
	if (!m->cases || !m->latency || !m->n_latency)
		return tr_error_set(TR_ENOMEM, "out of memory");
	for (size_t i = 0; i < m->n_runs; i++)
		if ((error = tr_history_run_cases(h, m->runs[i].id, &m->cases[i])) < 0 ||
		    (error = tr_history_run_latency(h, m->runs[i].id, &m->latency[i],
						    &m->n_latency[i])) < 0)
			return error;
	if (m->n_runs > 1 &&
	    (error = tr_history_changes(&m->cases[m->n_runs - 2], &m->cases[m->n_runs - 1],
					&m->changes, &m->n_changes)) < 0)
		return error;
	if ((error = tr_history_flips(m->cases, m->n_runs, &m->flips)) < 0)
		return error;
	if (opts->catalog_path && catalog_read(opts->catalog_path, &m->cat) == 0)
		m->have_catalog = 1;
	else
		snprintf(m->catalog_error, sizeof(m->catalog_error), "%s",
			 opts->catalog_path ? tr_error_last() : "no catalog given");
	if ((error = load_certification(m)) < 0)
		return error;
	return compare_benches(m);
}

static const tr_history_run *last_run(const model *m)
{
	return &m->runs[m->n_runs - 1];
}

static const tr_history_cases *last_cases(const model *m)
{
	return &m->cases[m->n_runs - 1];
}

/* --- latency trends ------------------------------------------------------ */

/* A kind/algorithm's figure in one run: the portals' columns weighted by n. */
static double latency_figure(const model *m, size_t run, const char *kind, const char *alg,
			     const char *stage, int p99)
{
	double sum = 0;
	long long n = 0;

	for (size_t i = 0; i < m->n_latency[run]; i++) {
		const tr_history_latency *r = &m->latency[run][i];

		if (r->n <= 0 || strcmp(r->kind, kind) || strcmp(r->algorithm, alg) ||
		    strcmp(r->stage, stage))
			continue;
		sum += (double)r->n * (p99 ? r->p99_us : r->p50_us);
		n += r->n;
	}
	return n ? sum / (double)n : NAN;
}

typedef struct kind_alg {
	char kind[32], algorithm[32];
} kind_alg;

/* The kinds/algorithms with latency in any of the runs, in order of appearance. */
static size_t trend_columns(const model *m, kind_alg *out, size_t max)
{
	size_t n = 0;

	for (size_t r = 0; r < m->n_runs; r++)
		for (size_t i = 0; i < m->n_latency[r]; i++) {
			const tr_history_latency *l = &m->latency[r][i];
			size_t k;

			if (l->n <= 0)
				continue;
			for (k = 0; k < n; k++)
				if (!strcmp(out[k].kind, l->kind) && !strcmp(out[k].algorithm, l->algorithm))
					break;
			if (k == n && n < max) {
				snprintf(out[n].kind, sizeof(out[n].kind), "%s", l->kind);
				snprintf(out[n].algorithm, sizeof(out[n].algorithm), "%s", l->algorithm);
				n++;
			}
		}
	return n;
}

/* A round step for an axis of max v in about four ticks: 1, 2, 2.5, 5 x 10^k. */
static double nice_step(double v)
{
	double p, f;

	if (!(v > 0))
		return 1;
	v /= 4;
	p = pow(10, floor(log10(v)));
	f = v / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

typedef struct series {
	const char *name, *color;
	const double *v;  /* per run, NAN: none */
} series;

#define CH_W 300
#define CH_H 180
#define CH_L 56
#define CH_R 12
#define CH_T 12
#define CH_B 40

static void svg_chart(tr_buf *b, const model *m, const char *title, const char *unit,
		      const series *s, size_t n_series)
{
	double max = 0, ymax, step, pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
	int ticks;
	size_t points = 0;
	char t0[32], t1[32];

	for (size_t k = 0; k < n_series; k++)
		for (size_t i = 0; i < m->n_runs; i++)
			if (!isnan(s[k].v[i]) && s[k].v[i] > max)
				max = s[k].v[i];
	for (size_t i = 0; i < m->n_runs; i++)
		points += !isnan(s[0].v[i]);
	step = nice_step(max * 1.05);
	ticks = (int)ceil(max * 1.05 / step);
	ticks = ticks < 1 ? 1 : ticks;
	ymax = step * ticks;
	tr_buf_printf(b, "<figure class=\"chart\"><figcaption>");
	tr_buf_escape(b, title);
	tr_buf_printf(b, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		      "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" data-points=\"%zu\">",
		      CH_W, CH_H, CH_W, CH_H, points);
	/* Axes and a grid line per tick, the unit beside the values. */
	for (int t = 0; t <= ticks; t++) {
		double y = CH_T + ph - ph * t / (double)ticks;

		tr_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"%s\"/>",
			      CH_L, y, CH_W - CH_R, y, t ? "grid" : "axis");
		tr_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.4g</text>",
			      CH_L - 5, y + 4, step * t);
	}
	tr_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\" class=\"axis\"/>", CH_L,
		      CH_T, CH_L, CH_T + ph);
	tr_buf_printf(b, "<text x=\"12\" y=\"%.1f\" class=\"unit\" text-anchor=\"middle\" "
		      "transform=\"rotate(-90 12 %.1f)\">", CH_T + ph / 2, CH_T + ph / 2);
	tr_buf_escape(b, unit);
	tr_buf_puts(b, "</text>");
	short_time(m->runs[0].started, t0, sizeof(t0));
	short_time(last_run(m)->started, t1, sizeof(t1));
	tr_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"%s\">run %lld · ",
		      CH_L, CH_T + ph + 16, m->n_runs > 1 ? "start" : "start", m->runs[0].id);
	tr_buf_escape(b, t0);
	tr_buf_puts(b, "</text>");
	if (m->n_runs > 1) {
		tr_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">run %lld · ",
			      CH_W - CH_R, CH_T + ph + 16, last_run(m)->id);
		tr_buf_escape(b, t1);
		tr_buf_puts(b, "</text>");
	}
	tr_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">runs "
		      "(%zu, oldest left)</text>", CH_L + pw / 2, CH_H - 4, m->n_runs);
	for (size_t k = 0; k < n_series; k++) {
		int open = 0;

		tr_buf_printf(b, "<polyline class=\"line\" stroke=\"%s\" points=\"", s[k].color);
		for (size_t i = 0; i < m->n_runs; i++) {
			double x = CH_L + (m->n_runs > 1 ? pw * (double)i / (double)(m->n_runs - 1) : pw / 2);

			if (isnan(s[k].v[i]))
				continue;
			tr_buf_printf(b, "%s%.1f,%.1f", open++ ? " " : "", x,
				      CH_T + ph - ph * s[k].v[i] / ymax);
		}
		tr_buf_puts(b, "\"/>");
		for (size_t i = 0; i < m->n_runs; i++) {
			double x = CH_L + (m->n_runs > 1 ? pw * (double)i / (double)(m->n_runs - 1) : pw / 2);

			if (isnan(s[k].v[i]))
				continue;
			tr_buf_printf(b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
				      "<title>run %lld, ", x, CH_T + ph - ph * s[k].v[i] / ymax,
				      s[k].color, m->runs[i].id);
			tr_buf_escape(b, m->runs[i].started);
			tr_buf_puts(b, ": ");
			tr_buf_escape(b, s[k].name);
			tr_buf_printf(b, " %.4g ", s[k].v[i]);
			tr_buf_escape(b, unit);
			tr_buf_puts(b, "</title></circle>");
		}
	}
	tr_buf_puts(b, "</svg><div class=\"legend\">");
	for (size_t k = 0; k < n_series; k++) {
		tr_buf_printf(b, "<span><i style=\"background:%s\"></i>", s[k].color);
		tr_buf_escape(b, s[k].name);
		tr_buf_puts(b, "</span>");
	}
	tr_buf_puts(b, "</div></figure>");
}

static int html_trends(tr_buf *b, const model *m)
{
	kind_alg cols[64];
	size_t n = trend_columns(m, cols, 64);
	double *v = calloc(3 * (m->n_runs ? m->n_runs : 1), sizeof(*v));

	if (!v)
		return tr_error_set(TR_ENOMEM, "out of memory");
	tr_buf_printf(b, "<section id=\"trends\"><h2>Latency trends</h2><p class=\"note\">Per token "
		      "kind and algorithm over the last %zu run(s): the token's signature (time inside "
		      "the token, p50 and p99) and the whole portal login (p50), as results.json "
		      "records them; where several portals have the column, their figures are "
		      "weighted by their sample counts.</p>", m->n_runs);
	if (!n)
		tr_buf_puts(b, "<p class=\"none\">No latency recorded in these runs.</p>");
	tr_buf_puts(b, "<div class=\"charts\">");
	for (size_t c = 0; c < n; c++) {
		double *p50 = v, *p99 = v + m->n_runs, *login = v + 2 * m->n_runs;
		char title[96];

		for (size_t r = 0; r < m->n_runs; r++) {
			p50[r] = latency_figure(m, r, cols[c].kind, cols[c].algorithm, "sign", 0);
			p99[r] = latency_figure(m, r, cols[c].kind, cols[c].algorithm, "sign", 1);
			login[r] = latency_figure(m, r, cols[c].kind, cols[c].algorithm, "login", 0) / 1e3;
		}
		tr_buf_puts(b, "<div class=\"trend\" data-column=\"");
		tr_buf_escape(b, cols[c].kind);
		tr_buf_puts(b, "/");
		tr_buf_escape(b, cols[c].algorithm);
		tr_buf_puts(b, "\"><h3>");
		tr_buf_escape(b, cols[c].kind);
		tr_buf_puts(b, "/");
		tr_buf_escape(b, cols[c].algorithm);
		tr_buf_puts(b, "</h3>");
		{
			series s[] = { { "sign p50", "#2563eb", p50 }, { "sign p99", "#d97706", p99 } };

			snprintf(title, sizeof(title), "token signature");
			svg_chart(b, m, title, "µs", s, 2);
		}
		{
			series s[] = { { "login p50", "#7c3aed", login } };

			snprintf(title, sizeof(title), "portal login");
			svg_chart(b, m, title, "ms", s, 1);
		}
		tr_buf_puts(b, "</div>");
	}
	tr_buf_puts(b, "</div></section>\n");
	free(v);
	return 0;
}

/* --- the HTML page -------------------------------------------------------- */

static const char page_style[] =
	"*{box-sizing:border-box}"
	"body{margin:0;padding:24px 32px;color:#1f2937;background:#f8fafc;font:14px/1.5 system-ui,"
	"-apple-system,'Segoe UI',Roboto,'Noto Sans','Helvetica Neue',Arial,'Noto Sans CJK SC',"
	"'Source Han Sans SC','PingFang SC','Hiragino Sans GB','Microsoft YaHei','WenQuanYi Zen Hei',"
	"'WenQuanYi Micro Hei',sans-serif}"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid "
	"#e2e8f0;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}"
	".meta,.note{color:#64748b;margin:4px 0}.none,td.empty{color:#64748b;font-style:italic}"
	"nav a{margin-right:14px;color:#2563eb;text-decoration:none}"
	".headline{display:flex;gap:16px;align-items:stretch;margin:16px 0;flex-wrap:wrap}"
	".verdict{font-size:20px;font-weight:700;padding:14px 22px;border-radius:8px;color:#fff}"
	".verdict.pass{background:#15803d}.verdict.fail{background:#b91c1c}"
	".count{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px 18px;"
	"min-width:110px}.count b{display:block;font-size:22px}.count.passed b{color:#15803d}"
	".count.failed b{color:#b91c1c}"
	".count.skipped b{color:#64748b}"
	"table{border-collapse:collapse;background:#fff;margin:6px 0 12px}"
	"th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}"
	"th{background:#f1f5f9;font-weight:600}"
	"table.list{width:100%}table.list td.why{font-family:ui-monospace,'SFMono-Regular',Menlo,"
	"Consolas,'Noto Sans Mono CJK SC',monospace;font-size:12px;word-break:break-word}"
	".tag{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600}"
	".tag.fail,td.fail{background:#fee2e2;color:#991b1b}.tag.pass,td.pass{background:#dcfce7;"
	"color:#166534}.tag.skip,td.skip{background:#e5e7eb;color:#4b5563}td.none{background:#fff;"
	"color:#94a3b8;font-style:normal}"
	"table.matrix td.cell{text-align:center;min-width:64px;font-weight:600;cursor:default}"
	"table.matrix td.id{white-space:nowrap;font-weight:600}table.matrix td.title{max-width:520px;"
	"color:#334155}table.matrix th.col{text-align:center;font-size:12px;white-space:nowrap}"
	"tr.details td{background:#fafafa;font-size:12px;color:#475569}tr.details summary{cursor:pointer}"
	"tr.details ul{margin:4px 0 4px 18px;padding:0}"
	".strip span{display:inline-block;width:12px;height:12px;margin-right:2px;border-radius:2px}"
	".strip .pass{background:#16a34a}.strip .fail{background:#dc2626}.strip .skip{background:#9ca3af}"
	".strip .none{background:#f1f5f9;border:1px solid #e2e8f0}"
	".charts{display:flex;flex-wrap:wrap;gap:18px}.trend{background:#fff;border:1px solid #e2e8f0;"
	"border-radius:8px;padding:8px 12px}.trend h3{margin:4px 0}.trend figure{display:inline-block;"
	"margin:0 8px 0 0}figcaption{font-size:12px;color:#475569}"
	"svg .axis{stroke:#475569;stroke-width:1}svg .grid{stroke:#e2e8f0;stroke-width:1}"
	"svg .tick{font-size:10px;fill:#475569}svg .unit{font-size:11px;fill:#334155}"
	"svg .line{fill:none;stroke-width:2}.legend{font-size:12px;color:#475569}.legend span{"
	"margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;"
	"border-radius:2px}"
	"pre{background:#fff;border:1px solid #e2e8f0;padding:8px;overflow-x:auto;font-size:12px}"
	".bench-verdict{font-weight:700}.bench-verdict.slower{color:#b91c1c}.bench-verdict.faster{"
	"color:#15803d}.bench-verdict.busy{color:#b45309}footer{margin-top:32px;color:#94a3b8;font-size:12px}";

static void html_head(tr_buf *b, const model *m)
{
	const tr_history_run *r = last_run(m);
	int failing = r->failed + r->errors;

	tr_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		    "<title>tokenrig nightly report: ");
	tr_buf_escape(b, r->started);
	tr_buf_printf(b, "</title><style>%s</style></head><body>\n", page_style);
	tr_buf_puts(b, "<header><h1>tokenrig nightly compatibility report</h1><p class=\"meta\">");
	tr_buf_printf(b, "run %lld, started ", r->id);
	tr_buf_escape(b, r->started);
	if (*r->finished) {
		tr_buf_puts(b, ", finished ");
		tr_buf_escape(b, r->finished);
	}
	tr_buf_puts(b, " · host ");
	tr_buf_escape(b, *r->host ? r->host : "unknown");
	tr_buf_puts(b, " · tokenrig ");
	tr_buf_escape(b, *r->version ? r->version : "unknown");
	tr_buf_puts(b, " (revision ");
	tr_buf_escape(b, r->revision);
	tr_buf_puts(b, ")");
	if (*r->label) {
		tr_buf_puts(b, " · label ");
		tr_buf_escape(b, r->label);
	}
	tr_buf_puts(b, " · token kinds ");
	tr_buf_escape(b, *r->kinds ? r->kinds : "none");
	tr_buf_printf(b, " · %zu run(s) in this report</p></header>\n", m->n_runs);
	tr_buf_printf(b, "<nav><a href=\"#changes\">What changed</a>%s<a href=\"#flaky-cases\">"
		      "Flaky</a><a href=\"#matrix\">Matrix</a><a href=\"#trends\">Latency trends</a>"
		      "<a href=\"#bench\">Bench</a>%s</nav>\n",
		      failing ? "<a href=\"#failing-now\">Failing</a>" : "",
		      m->cert ? "<a href=\"#certification\">Certification</a>" : "");
	tr_buf_printf(b, "<section id=\"headline\" class=\"headline\"><div class=\"verdict %s\">%s</div>",
		      failing ? "fail" : "pass", failing ? "FAIL" : "PASS");
	tr_buf_printf(b, "<div class=\"count passed\"><b>%d</b>passed</div>"
		      "<div class=\"count failed\"><b>%d</b>failed</div>"
		      "<div class=\"count skipped\"><b>%d</b>skipped</div>", r->passed, failing,
		      r->skipped);
	if (r->warnings)
		tr_buf_printf(b, "<div class=\"count\"><b>%d</b>warnings</div>", r->warnings);
	tr_buf_puts(b, "</section>\n<p class=\"meta\">");
	if (failing)
		tr_buf_printf(b, "%d case(s) failed%s in the last run.", failing,
			      r->errors ? " or could not run" : "");
	else
		tr_buf_puts(b, "Every case that ran passed in the last run.");
	tr_buf_puts(b, "</p>\n");
}

static void case_cells(tr_buf *b, const tr_history_case *c)
{
	tr_buf_puts(b, "<td class=\"ids\">");
	tr_buf_escape(b, c->ids);
	tr_buf_puts(b, "</td><td>");
	tr_buf_escape(b, c->portal);
	tr_buf_puts(b, "</td><td>");
	tr_buf_escape(b, c->kind);
	tr_buf_puts(b, "/");
	tr_buf_escape(b, c->algorithm);
	tr_buf_puts(b, "</td><td>");
	tr_buf_escape(b, c->title);
	tr_buf_puts(b, "</td>");
}

static void html_change_table(tr_buf *b, const model *m, tr_history_change_kind kind,
			      const char *id, const char *heading)
{
	size_t count = 0;

	for (size_t i = 0; i < m->n_changes; i++)
		count += m->changes[i].kind == kind;
	tr_buf_printf(b, "<h3>%s (%zu)</h3>", heading, count);
	if (!count) {
		tr_buf_printf(b, "<table class=\"list\" id=\"%s\"><tr><td class=\"empty\">none</td>"
			      "</tr></table>\n", id);
		return;
	}
	tr_buf_printf(b, "<table class=\"list\" id=\"%s\"><tr><th>catalog IDs</th><th>portal</th>"
		      "<th>token</th><th>scenario</th><th>%s</th></tr>", id,
		      kind == TR_CHANGE_NEWLY_FAILING ? "failing step: expected vs actual" :
		      kind == TR_CHANGE_FIXED ? "before" : "skip reason");
	for (size_t i = 0; i < m->n_changes; i++) {
		const tr_history_change *c = &m->changes[i];

		if (c->kind != kind)
			continue;
		tr_buf_printf(b, "<tr class=\"change\" data-key=\"");
		tr_buf_escape(b, c->now->key);
		tr_buf_puts(b, "\">");
		case_cells(b, c->now);
		tr_buf_puts(b, "<td class=\"why\">");
		if (kind == TR_CHANGE_NEWLY_FAILING) {
			case_why(b, c->now, &why_cell);
			tr_buf_puts(b, "<br><span class=\"note\">before: ");
			tr_buf_escape(b, c->before ? c->before->status : "not in the previous run");
			tr_buf_puts(b, "</span>");
		} else if (kind == TR_CHANGE_FIXED) {
			case_why(b, c->before, &why_line);
		} else {
			buf_escape_cut(b, c->now->message, 600);
		}
		tr_buf_puts(b, "</td></tr>");
	}
	tr_buf_puts(b, "</table>\n");
}

static void html_changes(tr_buf *b, const model *m)
{
	tr_buf_puts(b, "<section id=\"changes\"><h2>What changed since the previous run</h2>");
	if (m->n_runs < 2) {
		tr_buf_puts(b, "<p class=\"none\">This is the first run of the history: nothing to "
			    "compare with yet.</p>");
	} else {
		const tr_history_run *p = &m->runs[m->n_runs - 2];

		tr_buf_printf(b, "<p class=\"meta\">run %lld (", p->id);
		tr_buf_escape(b, p->started);
		tr_buf_printf(b, ", revision ");
		tr_buf_escape(b, p->revision);
		tr_buf_printf(b, ") → run %lld</p>", last_run(m)->id);
	}
	html_change_table(b, m, TR_CHANGE_NEWLY_FAILING, "newly-failing", "Newly failing");
	html_change_table(b, m, TR_CHANGE_FIXED, "fixed", "Fixed");
	html_change_table(b, m, TR_CHANGE_NEWLY_SKIPPED, "newly-skipped", "Newly skipped");
	tr_buf_puts(b, "</section>\n");
}

/* Every failing case of the last run, new or not: what the verdict stands on. */
static void html_failing(tr_buf *b, const model *m)
{
	const tr_history_cases *lc = last_cases(m);
	size_t count = 0, shown = 0;

	for (size_t i = 0; i < lc->n; i++)
		count += status_rank(lc->v[i].status) == 3;
	if (!count)
		return;
	tr_buf_printf(b, "<section id=\"failing-now\"><h2>Failing in the last run (%zu)</h2>",
		      count);
	tr_buf_puts(b, "<table class=\"list\" id=\"failing\"><tr><th>catalog IDs</th><th>portal</th>"
		    "<th>token</th><th>scenario</th><th>failing step: expected vs actual</th></tr>");
	for (size_t i = 0; i < lc->n && shown < 200; i++) {
		const tr_history_case *c = &lc->v[i];

		if (status_rank(c->status) != 3)
			continue;
		shown++;
		tr_buf_puts(b, "<tr>");
		case_cells(b, c);
		tr_buf_puts(b, "<td class=\"why\">");
		if (*c->step) {
			tr_buf_puts(b, "<b>");
			tr_buf_escape(b, c->step);
			tr_buf_puts(b, "</b><br>expected: ");
			tr_buf_escape(b, c->expected);
			tr_buf_puts(b, "<br>actual: ");
			buf_escape_cut(b, c->actual, 600);
		} else {
			buf_escape_cut(b, c->message, 600);
		}
		tr_buf_puts(b, "</td></tr>");
	}
	if (shown < count)
		tr_buf_printf(b, "<tr><td colspan=\"5\" class=\"empty\">… and %zu more (the matrix "
			      "lists them)</td></tr>", count - shown);
	tr_buf_puts(b, "</table></section>\n");
}

static const tr_history_case *case_in(const tr_history_cases *list, const char *key, size_t hint)
{
	if (hint < list->n && !strcmp(list->v[hint].key, key))
		return &list->v[hint];
	for (size_t i = 0; i < list->n; i++)
		if (!strcmp(list->v[i].key, key))
			return &list->v[i];
	return NULL;
}

static void html_flaky(tr_buf *b, const model *m)
{
	const tr_history_cases *lc = last_cases(m);
	size_t count = 0;

	tr_buf_printf(b, "<section id=\"flaky-cases\"><h2>Flaky</h2><p class=\"note\">Cases whose "
		      "outcome (passed vs failed) flipped at least twice in the last %zu run(s); "
		      "skipped runs are left out. Oldest run left.</p>", m->n_runs);
	for (size_t i = 0; i < lc->n; i++)
		count += m->flips[i] >= 2;
	if (!count) {
		tr_buf_puts(b, "<table class=\"list\" id=\"flaky\"><tr><td class=\"empty\">none</td>"
			    "</tr></table></section>\n");
		return;
	}
	tr_buf_puts(b, "<table class=\"list\" id=\"flaky\"><tr><th>catalog IDs</th><th>portal</th>"
		    "<th>token</th><th>scenario</th><th>flips</th><th>runs</th></tr>");
	for (size_t i = 0; i < lc->n; i++) {
		if (m->flips[i] < 2)
			continue;
		tr_buf_puts(b, "<tr class=\"flaky\" data-key=\"");
		tr_buf_escape(b, lc->v[i].key);
		tr_buf_puts(b, "\">");
		case_cells(b, &lc->v[i]);
		tr_buf_printf(b, "<td>%d</td><td class=\"strip\">", m->flips[i]);
		for (size_t r = 0; r < m->n_runs; r++) {
			const tr_history_case *c = case_in(&m->cases[r], lc->v[i].key, i);

			tr_buf_printf(b, "<span class=\"%s\" title=\"run %lld, ",
				      c ? status_class(c->status) : "none", m->runs[r].id);
			tr_buf_escape(b, m->runs[r].started);
			tr_buf_puts(b, ": ");
			tr_buf_escape(b, c ? c->status : "not run");
			tr_buf_puts(b, "\"></span>");
		}
		tr_buf_puts(b, "</td></tr>");
	}
	tr_buf_puts(b, "</table></section>\n");
}

/* --- the matrix ------------------------------------------------------------ */

typedef struct mcol {
	const char *portal, *kind, *algorithm;
} mcol;

static int same_col(const mcol *c, const tr_history_case *k)
{
	return !strcmp(c->portal, k->portal) && !strcmp(c->kind, k->kind) &&
	       !strcmp(c->algorithm, k->algorithm);
}

/* The section of an ID not in the catalog: after the catalog's own. */
static size_t id_section(const model *m, const char *id)
{
	const cat_id *c = m->have_catalog ? catalog_find(&m->cat, id) : NULL;

	return c ? c->section : m->cat.n_sections;
}

/* Every ID the last run names, that the catalog lacks (in order of appearance). */
static int extra_ids(const model *m, char ***out, size_t *n)
{
	const tr_history_cases *lc = last_cases(m);
	char **v = NULL;
	size_t cap = 0;

	*n = 0;
	for (size_t i = 0; i < lc->n; i++) {
		char ids[1024], *save = NULL;

		snprintf(ids, sizeof(ids), "%s", lc->v[i].ids);
		for (char *id = strtok_r(ids, " ", &save); id; id = strtok_r(NULL, " ", &save)) {
			size_t k;

			if (m->have_catalog && catalog_find(&m->cat, id))
				continue;
			for (k = 0; k < *n && strcmp(v[k], id); k++)
				;
			if (k < *n)
				continue;
			if (*n == cap) {
				char **p = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof(*p));

				if (!p)
					goto oom;
				v = p;
			}
			if (!(v[(*n)++] = strdup(id)))
				goto oom;
		}
	}
	*out = v;
	return 0;
oom:
	for (size_t k = 0; k < *n; k++)
		free(v[k]);
	free(v);
	*n = 0;
	return tr_error_set(TR_ENOMEM, "out of memory");
}

static void matrix_row(tr_buf *b, const model *m, const char *id, const char *title,
		       const mcol *cols, size_t n_cols)
{
	const tr_history_cases *lc = last_cases(m);
	int failed = 0, skipped = 0;

	tr_buf_puts(b, "<tr class=\"id-row\" data-id=\"");
	tr_buf_escape(b, id);
	tr_buf_puts(b, "\"><td class=\"id\">");
	tr_buf_escape(b, id);
	tr_buf_puts(b, "</td><td class=\"title\"");
	if (title && strlen(title) > TITLE_MAX) {
		tr_buf_puts(b, " title=\"");
		tr_buf_escape(b, title);
		tr_buf_puts(b, "\"");
	}
	tr_buf_puts(b, ">");
	buf_escape_cut(b, title ? title : "(not in the catalog)", TITLE_MAX);
	tr_buf_puts(b, "</td>");
	for (size_t k = 0; k < n_cols; k++) {
		int rank = 0, n = 0;
		tr_buf tip = TR_BUF_INIT;
		const char *status = "";

		for (size_t i = 0; i < lc->n; i++) {
			const tr_history_case *c = &lc->v[i];

			if (!same_col(&cols[k], c) || !has_id(c->ids, id))
				continue;
			n++;
			if (status_rank(c->status) > rank) {
				rank = status_rank(c->status);
				status = c->status;
			}
			if (tip.len)
				tr_buf_puts(&tip, "\n");
			tr_buf_puts(&tip, c->status);
			tr_buf_puts(&tip, ": ");
			tr_buf_puts(&tip, c->title);
			if (strcmp(c->status, "passed")) {
				tr_buf_puts(&tip, " | ");
				if (*c->step)
					tr_buf_printf(&tip, "step: %s; expected: %s; actual: %.300s",
						      c->step, c->expected, c->actual);
				else
					tr_buf_printf(&tip, "%.400s", c->message);
			}
		}
		failed += rank == 3;
		skipped += rank == 1;
		tr_buf_printf(b, "<td class=\"cell %s\"", status_class(status));
		if (!n)
			tr_buf_puts(b, " title=\"no case of the last run names this ID here\"");
		if (n) {
			tr_buf_puts(b, " title=\"");
			tr_buf_escape(b, tr_buf_cstr(&tip));
			tr_buf_puts(b, "\"");
		}
		tr_buf_printf(b, ">%s</td>", rank == 3 ? "✗ fail" : rank == 2 ? "✓" :
						   rank == 1 ? "skip" : "·");
		tr_buf_free(&tip);
	}
	/* A group none of whose IDs ran has one column saying so. */
	if (!n_cols)
		tr_buf_puts(b, "<td class=\"cell none\" title=\"no case of the last run names this "
			    "ID\">not run</td>");
	tr_buf_puts(b, "</tr>");
	if (!failed && !skipped)
		return;
	/* The details row: what the tooltips say, readable without a mouse. */
	tr_buf_printf(b, "<tr class=\"details\"><td></td><td colspan=\"%zu\">",
		      (n_cols ? n_cols : 1) + 1);
	tr_buf_printf(b, "<details%s><summary>", failed ? " open" : "");
	if (failed)
		tr_buf_printf(b, "%d column(s) failed%s", failed, skipped ? ", " : "");
	if (skipped)
		tr_buf_printf(b, "%d column(s) skipped", skipped);
	tr_buf_puts(b, "</summary><ul>");
	for (size_t k = 0; k < n_cols; k++)
		for (size_t i = 0; i < lc->n; i++) {
			const tr_history_case *c = &lc->v[i];

			if (!same_col(&cols[k], c) || !has_id(c->ids, id) ||
			    !strcmp(c->status, "passed"))
				continue;
			tr_buf_printf(b, "<li><span class=\"tag %s\">", status_class(c->status));
			tr_buf_escape(b, c->status);
			tr_buf_puts(b, "</span> ");
			tr_buf_escape(b, c->portal);
			tr_buf_puts(b, " ");
			tr_buf_escape(b, c->kind);
			tr_buf_puts(b, "/");
			tr_buf_escape(b, c->algorithm);
			tr_buf_puts(b, ": ");
			case_why(b, c, &why_line);
			tr_buf_puts(b, "</li>");
		}
	tr_buf_puts(b, "</ul></details></td></tr>");
}

static int html_matrix(tr_buf *b, const model *m)
{
	const tr_history_cases *lc = last_cases(m);
	char **extra = NULL;
	size_t n_extra = 0, n_groups;
	mcol *cols = malloc((lc->n ? lc->n : 1) * sizeof(*cols));
	int error = 0;

	if (!cols)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = extra_ids(m, &extra, &n_extra)) < 0)
		goto out;
	tr_buf_puts(b, "<section id=\"matrix\"><h2>Compatibility matrix</h2><p class=\"note\">The "
		    "last run: catalog ID by portal and token kind/algorithm. ✓ passed, ✗ failed, "
		    "skip: skipped (the reason on hover and in the row below), · no case. Grouped as "
		    "the catalog is, in its order.</p>");
	if (!m->have_catalog) {
		tr_buf_puts(b, "<p class=\"note\">No catalog (");
		tr_buf_escape(b, m->catalog_error);
		tr_buf_puts(b, "): the IDs are those the run names.</p>");
	}
	n_groups = m->cat.n_sections + 1;
	for (size_t g = 0; g < n_groups; g++) {
		size_t n_cols = 0, rows = 0;

		/* The group's columns: where its IDs' cases ran, in order of appearance. */
		for (size_t i = 0; i < lc->n; i++) {
			const tr_history_case *c = &lc->v[i];
			char ids[1024], *save = NULL;
			int mine = 0;
			size_t k;

			if (!strcmp(c->kind, "-"))
				continue;
			snprintf(ids, sizeof(ids), "%s", c->ids);
			for (char *id = strtok_r(ids, " ", &save); id && !mine;
			     id = strtok_r(NULL, " ", &save))
				mine = id_section(m, id) == g;
			if (!mine)
				continue;
			for (k = 0; k < n_cols && !same_col(&cols[k], c); k++)
				;
			if (k == n_cols)
				cols[n_cols++] = (mcol){ c->portal, c->kind, c->algorithm };
		}
		if (g < m->cat.n_sections) {
			for (size_t i = 0; i < m->cat.n; i++)
				rows += m->cat.ids[i].section == g;
		} else {
			rows = n_extra;
		}
		if (!rows)
			continue;
		tr_buf_puts(b, "<h3>");
		tr_buf_escape(b, g < m->cat.n_sections ? m->cat.sections[g] :
				 m->have_catalog ? "IDs not in the catalog" : "Catalog IDs");
		tr_buf_printf(b, "</h3><table class=\"matrix\" data-group=\"%zu\"><tr><th>ID</th>"
			      "<th>title</th>", g);
		for (size_t k = 0; k < n_cols; k++) {
			tr_buf_puts(b, "<th class=\"col\">");
			tr_buf_escape(b, cols[k].portal);
			tr_buf_puts(b, "<br>");
			tr_buf_escape(b, cols[k].kind);
			tr_buf_puts(b, "/");
			tr_buf_escape(b, cols[k].algorithm);
			tr_buf_puts(b, "</th>");
		}
		if (!n_cols)
			tr_buf_puts(b, "<th class=\"col\">last run</th>");
		tr_buf_puts(b, "</tr>");
		if (g < m->cat.n_sections) {
			for (size_t i = 0; i < m->cat.n; i++)
				if (m->cat.ids[i].section == g)
					matrix_row(b, m, m->cat.ids[i].id, m->cat.ids[i].title, cols,
						   n_cols);
		} else {
			for (size_t i = 0; i < n_extra; i++)
				matrix_row(b, m, extra[i], NULL, cols, n_cols);
		}
		tr_buf_puts(b, "</table>\n");
	}
	tr_buf_puts(b, "</section>\n");
out:
	for (size_t i = 0; i < n_extra; i++)
		free(extra[i]);
	free(extra);
	free(cols);
	return error;
}

static void html_bench(tr_buf *b, const model *m)
{
	tr_buf_puts(b, "<section id=\"bench\"><h2>Bench</h2>");
	if (m->bench_state == 0) {
		tr_buf_puts(b, "<p class=\"none\">Fewer than two runs of this report have a bench file "
			    "(`tokenrig history add results.json bench.json`): no verdict.</p>");
	} else if (m->bench_state < 0) {
		tr_buf_printf(b, "<p>The benches of runs %lld and %lld could not be compared: ",
			      m->bench_base, m->bench_new);
		tr_buf_escape(b, m->bench_error);
		tr_buf_puts(b, "</p>");
	} else {
		/* A busy machine is said as such: it is neither a regression nor "no change". */
		const char *v = m->bench_slower ? "slower" :
				m->bench_busy ? "inconclusive: the machine was busy" :
				m->bench_faster ? "faster" :
				m->bench_undecided ? "undecided: one run a side" : "no change";
		const char *cls = m->bench_slower ? "slower" : m->bench_busy ? "busy" :
				  m->bench_faster ? "faster" : m->bench_undecided ? "undecided" : "same";

		tr_buf_printf(b, "<p>Run %lld against run %lld (tokenrig compare): "
			      "<span class=\"bench-verdict %s\" id=\"bench-verdict\">%s</span>: %d "
			      "metric(s) significantly slower, %d faster, %d inconclusive because the "
			      "machine was busy, %d undecided.</p><pre>", m->bench_new, m->bench_base,
			      cls, v, m->bench_slower, m->bench_faster, m->bench_busy,
			      m->bench_undecided);
		tr_buf_escape(b, m->bench_table);
		tr_buf_puts(b, "</pre>");
	}
	tr_buf_puts(b, "</section>\n");
}

/* The IDs of a token's failed or skipped list, joined. */
static void cert_ids(tr_buf *b, json_t *list, const char *member)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		const char *id = json_is_string(v) ? json_string_value(v) :
				 json_string_value(json_object_get(v, member));

		if (i)
			tr_buf_puts(b, ", ");
		tr_buf_escape(b, id ? id : "?");
	}
	if (!json_array_size(list))
		tr_buf_puts(b, "-");
}

/* tokenrig certify's verdict, a row per token (certification.json). */
static void html_certification(tr_buf *b, const model *m)
{
	json_t *batch = json_object_get(m->cert, "batch"), *t;
	size_t i;

	if (!m->cert)
		return;
	tr_buf_printf(b, "<section id=\"certification\"><h2>Certification</h2><p class=\"note\">"
		      "Run %lld, module ", m->cert_run);
	tr_buf_escape(b, json_string_value(json_object_get(m->cert, "module")) ?
			 json_string_value(json_object_get(m->cert, "module")) : "?");
	tr_buf_printf(b, "%s: %lld of %lld token(s) certified.</p><table><tr><th>serial</th>"
		      "<th>label</th><th>verdict</th><th>failed IDs</th><th>skipped IDs</th>"
		      "<th>not tested</th></tr>",
		      json_is_true(json_object_get(m->cert, "destructive")) ? " (destructive)" : "",
		      json_integer_value(json_object_get(batch, "certified")),
		      json_integer_value(json_object_get(batch, "tokens")));
	json_array_foreach(json_object_get(m->cert, "tokens"), i, t) {
		const char *status = json_string_value(json_object_get(t, "status"));
		const char *first = json_string_value(json_object_get(t, "first_line"));

		tr_buf_puts(b, "<tr class=\"cert-token\"><td>");
		tr_buf_escape(b, json_string_value(json_object_get(t, "serial")) ?
				 json_string_value(json_object_get(t, "serial")) : "?");
		tr_buf_puts(b, "</td><td>");
		tr_buf_escape(b, json_string_value(json_object_get(t, "label")) ?
				 json_string_value(json_object_get(t, "label")) : "");
		tr_buf_printf(b, "</td><td class=\"%s\" title=\"",
			      status && !strncmp(status, "CERTIFIED", 9) ? "pass" : "fail");
		tr_buf_escape(b, first ? first : "");
		tr_buf_puts(b, "\">");
		tr_buf_escape(b, status ? status : "?");
		tr_buf_puts(b, "</td><td>");
		cert_ids(b, json_object_get(t, "failed"), "id");
		tr_buf_puts(b, "</td><td>");
		cert_ids(b, json_object_get(t, "skipped"), "id");
		tr_buf_puts(b, "</td><td>");
		cert_ids(b, json_object_get(t, "not_tested"), "id");
		tr_buf_puts(b, "</td></tr>");
	}
	tr_buf_puts(b, "</table></section>\n");
}

static int render_html(tr_buf *b, const model *m)
{
	int error;

	html_head(b, m);
	html_changes(b, m);
	html_failing(b, m);
	html_flaky(b, m);
	if ((error = html_matrix(b, m)) < 0 || (error = html_trends(b, m)) < 0)
		return error;
	html_bench(b, m);
	html_certification(b, m);
	tr_buf_puts(b, "<footer>Written by tokenrig report from ");
	tr_buf_escape(b, m->opts->html_path);
	tr_buf_puts(b, "'s history; self-contained: no scripts, fonts or styles are fetched.</footer>"
		    "\n</body></html>\n");
	return 0;
}

/* --- the Markdown summary ------------------------------------------------- */

/* Markdown table cells and list items: one line, no pipes, no raw HTML. */
static void md_text(tr_buf *b, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max; s++, n++) {
		switch (*s) {
		case '\n': case '\r': case '\t': tr_buf_puts(b, " "); break;
		case '|': tr_buf_puts(b, "\\|"); break;
		case '<': tr_buf_puts(b, "&lt;"); break;
		case '>': tr_buf_puts(b, "&gt;"); break;
		case '&': tr_buf_puts(b, "&amp;"); break;
		case '`': tr_buf_puts(b, "'"); break;
		default: tr_buf_put(b, s, 1);
		}
	}
	/* Finish a UTF-8 character cut in the middle. */
	while (s && *s && ((unsigned char)*s & 0xC0) == 0x80)
		tr_buf_put(b, s++, 1);
	if (s && *s)
		tr_buf_puts(b, "…");
}

typedef struct regression {
	char what[96];
	double before, now, change;
} regression;

static int by_change(const void *a, const void *b)
{
	double x = ((const regression *)a)->change, y = ((const regression *)b)->change;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void render_markdown(tr_buf *b, const model *m)
{
	const tr_history_run *r = last_run(m);
	int failing = r->failed + r->errors;
	static const tr_history_change_kind kinds[] = { TR_CHANGE_NEWLY_FAILING, TR_CHANGE_FIXED,
							TR_CHANGE_NEWLY_SKIPPED };
	kind_alg cols[64];
	size_t n_cols = trend_columns(m, cols, 64), n_reg = 0, flaky = 0;
	regression reg[128];

	tr_buf_printf(b, "## tokenrig nightly: %s\n\n", failing ? "FAIL" : "PASS");
	if (m->cert)
		tr_buf_printf(b, "Certification (run %lld): **%lld of %lld token(s) certified**.\n\n",
			      m->cert_run,
			      json_integer_value(json_object_get(json_object_get(m->cert, "batch"),
								 "certified")),
			      json_integer_value(json_object_get(json_object_get(m->cert, "batch"),
								 "tokens")));
	tr_buf_printf(b, "**%d passed, %d failed, %d skipped** (run %lld, ", r->passed, failing,
		      r->skipped, r->id);
	md_text(b, r->started, 40);
	tr_buf_puts(b, ", revision ");
	md_text(b, r->revision, 64);
	tr_buf_puts(b, ", ");
	md_text(b, *r->host ? r->host : "unknown host", 128);
	tr_buf_puts(b, ")\n\n");
	if (m->n_runs < 2) {
		tr_buf_puts(b, "First run of the history: no changes to show.\n\n");
	} else {
		tr_buf_printf(b, "### Since run %lld\n\n", m->runs[m->n_runs - 2].id);
		for (size_t k = 0; k < 3; k++) {
			size_t count = 0, shown = 0;

			for (size_t i = 0; i < m->n_changes; i++)
				count += m->changes[i].kind == kinds[k];
			tr_buf_printf(b, "- %s: %zu\n", tr_history_change_name(kinds[k]), count);
			for (size_t i = 0; i < m->n_changes; i++) {
				const tr_history_change *c = &m->changes[i];

				if (c->kind != kinds[k])
					continue;
				if (++shown > 20) {
					tr_buf_printf(b, "  - … and %zu more (see the HTML report)\n",
						      count - 20);
					break;
				}
				tr_buf_puts(b, "  - ");
				md_text(b, c->now->ids, 200);
				tr_buf_puts(b, " (");
				md_text(b, c->now->portal, 40);
				tr_buf_puts(b, " ");
				md_text(b, c->now->kind, 40);
				tr_buf_puts(b, "/");
				md_text(b, c->now->algorithm, 40);
				tr_buf_puts(b, "): ");
				if (kinds[k] == TR_CHANGE_NEWLY_FAILING && *c->now->step) {
					md_text(b, c->now->step, 120);
					tr_buf_puts(b, ": expected ");
					md_text(b, c->now->expected, 160);
					tr_buf_puts(b, ", actual ");
					md_text(b, c->now->actual, 200);
				} else if (kinds[k] == TR_CHANGE_NEWLY_FAILING ||
					   kinds[k] == TR_CHANGE_NEWLY_SKIPPED) {
					md_text(b, c->now->message, 200);
				} else {
					md_text(b, c->now->title, 160);
				}
				tr_buf_puts(b, "\n");
			}
		}
		tr_buf_puts(b, "\n");
	}
	for (size_t i = 0; i < last_cases(m)->n; i++)
		flaky += m->flips[i] >= 2;
	tr_buf_printf(b, "Flaky over the last %zu run(s): %zu case(s).\n\n", m->n_runs, flaky);

	/* The slowest regressions: latency of the last run against the one before. */
	for (size_t c = 0; m->n_runs > 1 && c < n_cols; c++) {
		static const struct { const char *stage, *name; int p99; } figs[] = {
			{ "sign", "sign p50", 0 }, { "sign", "sign p99", 1 }, { "login", "login p50", 0 },
		};

		for (size_t f = 0; f < 3 && n_reg < 128; f++) {
			double a = latency_figure(m, m->n_runs - 2, cols[c].kind, cols[c].algorithm,
						  figs[f].stage, figs[f].p99);
			double z = latency_figure(m, m->n_runs - 1, cols[c].kind, cols[c].algorithm,
						  figs[f].stage, figs[f].p99);

			if (isnan(a) || isnan(z) || a <= 0 || z <= a)
				continue;
			snprintf(reg[n_reg].what, sizeof(reg[n_reg].what), "%.31s/%.31s %.20s", cols[c].kind,
				 cols[c].algorithm, figs[f].name);
			reg[n_reg].before = a;
			reg[n_reg].now = z;
			reg[n_reg].change = z / a - 1;
			n_reg++;
		}
	}
	qsort(reg, n_reg, sizeof(reg[0]), by_change);
	tr_buf_puts(b, "### Slowest regressions\n\n");
	if (m->bench_state > 0) {
		tr_buf_printf(b, "Bench, run %lld against run %lld: **%s** (%d metric(s) significantly "
			      "slower, %d faster, %d inconclusive: the machine was busy).\n",
			      m->bench_new, m->bench_base,
			      m->bench_slower ? "slower" :
			      m->bench_busy ? "inconclusive: the machine was busy" :
			      m->bench_faster ? "faster" :
			      m->bench_undecided ? "undecided: one run a side" : "no change",
			      m->bench_slower, m->bench_faster, m->bench_busy);
		for (const char *l = m->bench_table; l && *l;
		     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
			size_t n = strcspn(l, "\n");
			char line[512];

			snprintf(line, sizeof(line), "%.*s", (int)(n < 511 ? n : 511), l);
			if (strstr(line, "  SLOWER") && !strstr(line, "not gated")) {
				tr_buf_puts(b, "- `");
				md_text(b, line, 200);
				tr_buf_puts(b, "`\n");
			}
		}
		tr_buf_puts(b, "\n");
	}
	if (!n_reg) {
		tr_buf_puts(b, m->n_runs > 1 ? "No latency figure grew since the previous run.\n" :
			    "One run: no latency to compare.\n");
		return;
	}
	tr_buf_puts(b, "Run latency, last run against the one before (one run's percentiles: a "
		    "hint, the bench verdict is the test):\n\n| figure | before | now | change |\n"
		    "|---|---:|---:|---:|\n");
	for (size_t i = 0; i < n_reg && i < 5; i++) {
		tr_buf_puts(b, "| ");
		md_text(b, reg[i].what, sizeof(reg[i].what));
		tr_buf_printf(b, " | %.1f us | %.1f us | %+.1f%% |\n", reg[i].before, reg[i].now,
			      reg[i].change * 100);
	}
}

int tr_nightly_write(tr_history *h, const tr_nightly_opts *opts)
{
	model m = { 0 };
	tr_buf html = TR_BUF_INIT, md = TR_BUF_INIT;
	int error;

	if (!opts->html_path)
		return tr_error_set(TR_EINVAL, "no --html path");
	if ((error = model_load(&m, h, opts)) < 0 || (error = render_html(&html, &m)) < 0 ||
	    (error = tr_buf_check(&html, opts->html_path)) < 0 ||
	    (error = tr_fs_write_atomic(opts->html_path, html.data, html.len, 0644)) < 0)
		goto out;
	if (opts->markdown_path) {
		render_markdown(&md, &m);
		if ((error = tr_buf_check(&md, opts->markdown_path)) < 0 ||
		    (error = tr_fs_write_atomic(opts->markdown_path, tr_buf_cstr(&md), md.len,
						0644)) < 0)
			goto out;
	}
out:
	tr_buf_free(&html);
	tr_buf_free(&md);
	model_free(&m);
	return error;
}
