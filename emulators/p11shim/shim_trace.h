/*
 * The timing trace: one line per call, buffered in memory and appended to
 * the file in whole lines with one write(2) (O_APPEND), so several
 * processes may share a file. Only names, handles, return values, times and
 * lengths are written: never a PIN, a key or data.
 *
 * Line format (space-separated key=value, after a "# ..." header):
 *   t=START_NS fn=C_Sign slot=1 session=2 rv=CKR_OK us=DURATION in=32 out=64 pid=PID
 * START_NS is CLOCK_MONOTONIC (comparable with the harness's tr_clock_ns()).
 */
#ifndef TR_P11SHIM_TRACE_H
#define TR_P11SHIM_TRACE_H

#include <stdint.h>

typedef struct shim_trace_rec {
	int fn;
	unsigned long slot;      /* (unsigned long)-1 when none */
	unsigned long session;   /* 0 when none */
	unsigned long rv;
	uint64_t start_ns;
	uint64_t dur_ns;
	unsigned long in_len, out_len;
} shim_trace_rec;

/* Opens (appends to) path; path NULL closes the trace. */
int shim_trace_open(const char *path);
int shim_trace_enabled(void);
void shim_trace_record(const shim_trace_rec *r);
/* Writes the buffer out (also done when it fills and every 100 ms). */
void shim_trace_flush(void);
void shim_trace_close(void);

#endif
