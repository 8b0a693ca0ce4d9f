#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Shared with error_openssl.c; not part of the interface. */
__thread char tr_error_buf[1024];
#define last_error tr_error_buf

int tr_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

const char *tr_error_last(void)
{
	return last_error;
}

void tr_error_clear(void)
{
	last_error[0] = '\0';
}
