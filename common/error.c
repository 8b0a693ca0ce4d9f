#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Shared with error_openssl.c; not part of the interface. */
__thread char tr_error_buf[1024];
#define last_error tr_error_buf

int tr_error_set(int code, const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;

	/* Through a copy: callers may wrap the last message in a new one. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(msg));
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
