/*
 * Error reporting shared by every module.
 *
 * Functions return 0 on success or a negative TR_E* code; the message that
 * explains the failure is kept per thread and read with tr_error_last().
 */
#ifndef TR_COMMON_ERROR_H
#define TR_COMMON_ERROR_H

enum tr_error_code {
	TR_OK = 0,
	TR_ERROR = -1,      /* generic failure */
	TR_ENOMEM = -2,
	TR_EINVAL = -3,     /* bad argument or malformed input */
	TR_EIO = -4,        /* file, socket or device I/O */
	TR_ETIMEDOUT = -5,  /* a deadline passed */
	TR_ENOTFOUND = -6,  /* no such token, object, file, route */
	TR_EPARSE = -7,     /* syntax error in a data file */
	TR_ECRYPTO = -8,    /* OpenSSL or token crypto failure */
	TR_EDEPEND = -9,    /* a dependency (module, daemon, package) is missing */
};

/* Sets the thread's last error to a printf-style message and returns code. */
int tr_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends the OpenSSL error queue (and clears it) to the message. */
int tr_error_set_openssl(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The last message set on this thread, "" when none. Never NULL. */
const char *tr_error_last(void);

void tr_error_clear(void);

#endif
