/*
 * The OpenSSL half of error.h, kept apart so that programs and modules
 * without libcrypto (the PKCS#11 interposer) can use the rest.
 */
#include "error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern __thread char tr_error_buf[1024];
#define last_error tr_error_buf

int tr_error_set_openssl(int code, const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;
	size_t len;
	unsigned long e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(msg));

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

