#define _GNU_SOURCE /* pipe2 */
#include "proc.h"

#include "clock.h"
#include "error.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/*
 * The child's report of a failure: kind ('P' pre_exec, 'E' exec), the
 * step, NUL, errno's bytes, in one write the parent reads whole.
 */
static void report_failure(int fd, char kind, const char *step)
{
	char msg[256];
	size_t n = strnlen(step, sizeof(msg) - 2 - sizeof(int));
	int err = errno;

	msg[0] = kind;
	memcpy(msg + 1, step, n);
	msg[n + 1] = '\0';
	memcpy(msg + n + 2, &err, sizeof(err));
	if (write(fd, msg, n + 2 + sizeof(err)) < 0)
		_exit(126);
	_exit(127);
}

/* Runs in the child between fork and exec: only async-signal-safe calls. */
static void child_exec(char *const argv[], const tr_proc_opts *opts,
		       pid_t parent, int report_fd)
{
	const char *step = "pre-exec";
	int fd;

	if (opts && opts->detach)
		setsid();
	if (opts && opts->die_with_parent) {
		/*
		 * Its own process group: a Ctrl-C at the terminal reaches the
		 * run alone, which finishes its case before stopping this child.
		 */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127); /* the parent died before prctl took effect */
	}
	if (opts && opts->pre_exec && opts->pre_exec(opts->pre_exec_arg, &step) != 0)
		report_failure(report_fd, 'P', step);
	fd = open(opts && opts->log_path ? opts->log_path : "/dev/null",
		  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	execve(argv[0], argv, opts && opts->envp ? opts->envp : environ);
	report_failure(report_fd, 'E', "exec");
}

int tr_proc_spawn(pid_t *out, char *const argv[], const tr_proc_opts *opts)
{
	pid_t parent = getpid();
	char msg[256];
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (access(argv[0], X_OK) != 0)
		return tr_error_set(TR_ENOTFOUND, "cannot run %s: %s", argv[0],
				    strerror(errno));
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return tr_error_set(TR_EIO, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return tr_error_set(TR_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0)
		child_exec(argv, opts, parent, pipefd[1]);
	close(pipefd[1]);
	/* EOF without a word: the exec happened (the pipe is close-on-exec). */
	while ((n = read(pipefd[0], msg, sizeof(msg))) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (n > 0) {
		size_t step_len = strnlen(msg + 1, (size_t)n - 1);
		int err = 0;

		if ((size_t)n >= step_len + 2 + sizeof(err))
			memcpy(&err, msg + step_len + 2, sizeof(err));
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (msg[0] == 'P')
			return tr_error_set(TR_EIO, "%.*s: %s", (int)step_len, msg + 1,
					    err ? strerror(err) : "failed");
		return tr_error_set(TR_EDEPEND, "exec %s: %s", argv[0],
				    err ? strerror(err) : "failed");
	}
	*out = pid;
	return 0;
}

static int is_zombie(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 1; /* gone */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

int tr_proc_alive(pid_t pid)
{
	int status;

	if (pid <= 0)
		return 0;
	/* Reaps our own child if it has exited; harmless for other processes. */
	if (waitpid(pid, &status, WNOHANG) == pid)
		return 0;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 0;
	return !is_zombie(pid);
}

unsigned long long tr_proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which may itself hold spaces. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (field = 2; p && *p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

int tr_proc_stop(pid_t pid, unsigned timeout_ms)
{
	uint64_t deadline;

	if (!tr_proc_alive(pid))
		return 0;
	kill(pid, SIGTERM);
	deadline = tr_deadline_after_ms(timeout_ms);
	while (tr_proc_alive(pid)) {
		if (tr_deadline_passed(deadline)) {
			kill(pid, SIGKILL);
			deadline = tr_deadline_after_ms(2000);
			while (tr_proc_alive(pid) && !tr_deadline_passed(deadline))
				tr_poll_pause(deadline, 5);
			return tr_error_set(TR_ETIMEDOUT,
					    "process %ld ignored SIGTERM for %u ms; killed",
					    (long)pid, timeout_ms);
		}
		tr_poll_pause(deadline, 5);
	}
	return 0;
}

int tr_proc_sibling(const char *name, char *buf, size_t len)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return tr_error_set(TR_EIO, "readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return tr_error_set(TR_EIO, "odd executable path %s", self);
	*slash = '\0';
	return tr_fs_join(buf, len, self, name);
}
