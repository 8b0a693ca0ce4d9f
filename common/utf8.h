/*
 * UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing
 * past U+10FFFF. One check for every input the rig reads (scenario files,
 * request bodies, token labels).
 */
#ifndef TR_COMMON_UTF8_H
#define TR_COMMON_UTF8_H

#include <stddef.h>

/* 1 when the len bytes at s are well-formed UTF-8 (NUL bytes included). */
int tr_utf8_valid(const void *s, size_t len);

#endif
