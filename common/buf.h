/*
 * A growable text buffer for writers of documents (JUnit, HTML, Markdown).
 * Appends never fail on the spot: running out of memory marks the buffer,
 * later appends do nothing, and tr_buf_check() reports it once at the end,
 * so a writer does not check every line.
 */
#ifndef TR_COMMON_BUF_H
#define TR_COMMON_BUF_H

#include <stddef.h>

typedef struct tr_buf {
	char *data;   /* NUL-terminated once anything was added; NULL before */
	size_t len, cap;
	int oom;
} tr_buf;

#define TR_BUF_INIT { 0 }

void tr_buf_put(tr_buf *b, const char *s, size_t n);
void tr_buf_puts(tr_buf *b, const char *s);
void tr_buf_printf(tr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * s escaped for XML and HTML text and attribute values (& < > " ');
 * control characters XML 1.0 forbids become '?'. NULL adds nothing.
 */
void tr_buf_escape(tr_buf *b, const char *s);

/* 0, or TR_ENOMEM (error set, naming what) when an append ran out of memory. */
int tr_buf_check(const tr_buf *b, const char *what);

/* The text so far, "" for an empty buffer. */
const char *tr_buf_cstr(const tr_buf *b);

void tr_buf_free(tr_buf *b);

#endif
