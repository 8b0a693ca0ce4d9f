/* Child processes the rig starts, stops and waits for, always by PID. */
#ifndef TR_COMMON_PROC_H
#define TR_COMMON_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tr_proc_opts {
	const char *log_path;   /* stdout+stderr go here (NULL: /dev/null) */
	int detach;             /* new session, survives the parent (env up) */
	int die_with_parent;    /* PR_SET_PDEATHSIG, for children of a run */
	char *const *envp;      /* NULL: inherit */
	/*
	 * Run in the child just before the exec (may be NULL). Only
	 * async-signal-safe calls: the parent may have threads whose locks a
	 * forked child must never wait on. 0, or -1 with errno set and *step
	 * naming what failed (a string literal).
	 */
	int (*pre_exec)(void *arg, const char **step);
	void *pre_exec_arg;
} tr_proc_opts;

/*
 * Starts argv[0] (a path) with argv, and knows whether it started: a
 * failed pre_exec is TR_EIO, a failed exec TR_EDEPEND, each with
 * "step: errno's text" (the child reports over a close-on-exec pipe and
 * is reaped).
 */
int tr_proc_spawn(pid_t *out, char *const argv[], const tr_proc_opts *opts);

/*
 * Sends SIGTERM, polls until the process is gone for at most timeout_ms,
 * then SIGKILL. Works for children (reaped) and for processes started by an
 * earlier invocation (polled through kill(pid, 0)).
 */
int tr_proc_stop(pid_t pid, unsigned timeout_ms);

/* The path of a program that lives next to this one's executable. */
int tr_proc_sibling(const char *name, char *buf, size_t len);

/* 1 when pid runs and is not a zombie. */
int tr_proc_alive(pid_t pid);

/* The kernel's start time of pid (field 22 of /proc/PID/stat), 0 if none. */
unsigned long long tr_proc_start_time(pid_t pid);

#endif
