#include "common/buf.h"

#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(tr_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 8192;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	while (cap < b->len + need + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	if (!(p = realloc(b->data, cap))) {
		b->oom = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void tr_buf_put(tr_buf *b, const char *s, size_t n)
{
	if (grow(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void tr_buf_puts(tr_buf *b, const char *s)
{
	if (s)
		tr_buf_put(b, s, strlen(s));
}

void tr_buf_printf(tr_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void tr_buf_escape(tr_buf *b, const char *s)
{
	const char *run = s;

	/* Plain runs are copied whole: most text needs no escape. */
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *rep = NULL;

		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default:
			if (c < 0x20 && c != '\n' && c != '\t' && c != '\r')
				rep = "?";
		}
		if (!rep)
			continue;
		tr_buf_put(b, run, (size_t)(s - run));
		tr_buf_puts(b, rep);
		run = s + 1;
	}
	if (s)
		tr_buf_put(b, run, (size_t)(s - run));
}

int tr_buf_check(const tr_buf *b, const char *what)
{
	return b->oom ? tr_error_set(TR_ENOMEM, "out of memory writing %s", what) : 0;
}

const char *tr_buf_cstr(const tr_buf *b)
{
	return b->data ? b->data : "";
}

void tr_buf_free(tr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}
