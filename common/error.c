#include "error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char last_error[1024];

int tr_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

int tr_error_set_openssl(int code, const char *fmt, ...)
{
	va_list ap;
	size_t len;
	unsigned long e;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);

	while ((e = ERR_get_error()) != 0) {
		len = strlen(last_error);
		if (len + 3 >= sizeof(last_error))
			continue; /* keep draining the queue */
		last_error[len++] = ':';
		last_error[len++] = ' ';
		ERR_error_string_n(e, last_error + len, sizeof(last_error) - len);
	}
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
