#include "harness/worker.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/proc.h"
#include "harness/env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REAP_MS 5000
/* A line longer than this is no message of ours: the worker is broken. */
#define MAX_LINE (64u << 20)

typedef struct slot {
	pid_t pid;
	int fd;
	char dir[PATH_MAX];
	char log[PATH_MAX];
	tr_buf in;            /* bytes read, not yet a whole line */
	uint64_t deadline;
} slot;

struct tr_pool {
	unsigned jobs;
	slot *slots;          /* [1 .. jobs] */
	char exe[PATH_MAX];
	char run_dir[PATH_MAX];
	unsigned cards_worker;
};

int tr_pool_new(tr_pool **out, const tr_pool_opts *opts)
{
	tr_pool *p;
	ssize_t n;

	*out = NULL;
	if (opts->jobs == 0 || opts->jobs > 256)
		return tr_error_set(TR_EINVAL, "--jobs %u: 1 to 256 workers", opts->jobs);
	if (!(p = calloc(1, sizeof(*p))) || !(p->slots = calloc(opts->jobs + 1, sizeof(*p->slots)))) {
		free(p);
		return tr_error_set(TR_ENOMEM, "out of memory");
	}
	p->jobs = opts->jobs;
	p->cards_worker = opts->cards_worker;
	for (unsigned i = 0; i <= p->jobs; i++)
		p->slots[i].fd = -1; /* before any early free: 0 is stdin */
	n = readlink("/proc/self/exe", p->exe, sizeof(p->exe) - 1);
	if (n <= 0) {
		tr_pool_free(p, 0);
		return tr_error_set(TR_EIO, "readlink /proc/self/exe: %s", strerror(errno));
	}
	p->exe[n] = '\0';
	snprintf(p->run_dir, sizeof(p->run_dir), "%s", opts->run_dir);
	for (unsigned i = 1; i <= p->jobs; i++) {
		char name[32];

		snprintf(name, sizeof(name), "w%u", i);
		if (tr_fs_join(p->slots[i].dir, sizeof(p->slots[i].dir), p->run_dir, name) < 0 ||
		    (snprintf(name, sizeof(name), "w%u.log", i),
		     tr_fs_join(p->slots[i].log, sizeof(p->slots[i].log), p->run_dir, name)) < 0) {
			tr_pool_free(p, 0);
			return TR_EINVAL;
		}
	}
	*out = p;
	return 0;
}

/* In the child before the exec (async-signal-safe): the socket on TR_WORKER_FD. */
static int socket_on_fd(void *arg, const char **step)
{
	int sock = *(const int *)arg;

	*step = "the worker's socket on fd 3";
	if (sock == TR_WORKER_FD)
		return fcntl(sock, F_SETFD, 0) < 0 ? -1 : 0;
	return dup2(sock, TR_WORKER_FD) < 0 ? -1 : 0;
}

int tr_pool_start(tr_pool *p, unsigned i)
{
	slot *s = &p->slots[i];
	char *argv[16];
	size_t argc = 0;
	int sv[2], error;

	if (i == 0 || i > p->jobs)
		return tr_error_set(TR_EINVAL, "no worker %u", i);
	if (s->pid > 0 || s->fd >= 0)
		tr_pool_kill(p, i);
	argv[argc++] = p->exe;
	argv[argc++] = "__worker";
	argv[argc++] = "--master";
	argv[argc++] = p->run_dir;
	argv[argc++] = "--dir";
	argv[argc++] = s->dir;
	if (p->cards_worker && i != p->cards_worker)
		argv[argc++] = "--no-cards";
	argv[argc] = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return tr_error_set(TR_EIO, "socketpair: %s", strerror(errno));
	/* Its own process group: a Ctrl-C reaches the run, which finishes the case in flight. */
	tr_proc_opts po = { .log_path = s->log, .die_with_parent = 1,
			    .pre_exec = socket_on_fd, .pre_exec_arg = &sv[1] };

	if ((error = tr_proc_spawn(&s->pid, argv, &po)) < 0) {
		close(sv[0]);
		close(sv[1]);
		s->pid = 0;
		return error;
	}
	close(sv[1]);
	s->fd = sv[0];
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	s->in.len = 0;
	/* Until it says it is ready (the engine clears it then): a hang is killed. */
	s->deadline = tr_deadline_after_ms(TR_POOL_START_MS);
	return 0;
}

int tr_pool_send(tr_pool *p, unsigned i, const json_t *msg)
{
	slot *s = &p->slots[i];
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int error = 0;

	if (!text)
		return tr_error_set(TR_ENOMEM, "out of memory");
	len = strlen(text);
	text[len++] = '\n'; /* json_dumps's NUL becomes the line's end */
	while (off < len && !error) {
		ssize_t n = s->fd < 0 ? -1 : send(s->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

			poll(&pfd, 1, 100);
		} else {
			error = tr_error_set(TR_EIO, "worker %u is gone: %s", i,
					     s->fd < 0 ? "no socket" : strerror(errno));
		}
	}
	free(text);
	return error;
}

void tr_pool_set_deadline(tr_pool *p, unsigned i, uint64_t deadline)
{
	p->slots[i].deadline = deadline;
}

/* Reaps worker i (bounded: SIGKILL after REAP_MS), stops its env's processes. */
static void reap(tr_pool *p, unsigned i, int *status, int *sig)
{
	slot *s = &p->slots[i];
	uint64_t deadline = tr_deadline_after_ms(REAP_MS);
	int st = 0, killed = 0;

	*status = -1;
	*sig = 0;
	while (s->pid > 0) {
		pid_t r = waitpid(s->pid, &st, WNOHANG);

		if (r == s->pid || (r < 0 && errno == ECHILD))
			break;
		if (tr_deadline_passed(deadline) && !killed) {
			kill(s->pid, SIGKILL);
			killed = 1;
			deadline = tr_deadline_after_ms(REAP_MS);
		} else if (tr_deadline_passed(deadline)) {
			break;
		}
		tr_poll_pause(deadline, 5);
	}
	if (WIFEXITED(st))
		*status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		*sig = WTERMSIG(st);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->pid = 0;
	s->deadline = 0;
	s->in.len = 0;
	/* What the worker started and did not stop (it was killed): by the PIDs it recorded. */
	tr_env_down(s->dir);
}

void tr_pool_kill(tr_pool *p, unsigned i)
{
	int status, sig;

	if (p->slots[i].pid > 0)
		kill(p->slots[i].pid, SIGKILL);
	reap(p, i, &status, &sig);
}

/* A whole line buffered from worker i: parsed into ev. */
static int take_line(tr_pool *p, unsigned i, tr_pool_event *ev)
{
	slot *s = &p->slots[i];
	char *nl = s->in.len ? memchr(s->in.data, '\n', s->in.len) : NULL;
	json_error_t jerr;
	size_t n;

	if (!nl)
		return 0;
	n = (size_t)(nl - s->in.data);
	ev->type = TR_POOL_MESSAGE;
	ev->worker = i;
	ev->pid = s->pid;
	ev->msg = json_loadb(s->in.data, n, 0, &jerr);
	memmove(s->in.data, nl + 1, s->in.len - n - 1);
	s->in.len -= n + 1;
	s->in.data[s->in.len] = '\0';
	if (!ev->msg)
		ev->msg = json_pack("{s:s}", "garbled", jerr.text);
	return 1;
}

static void gone(tr_pool *p, unsigned i, int deadline, tr_pool_event *ev)
{
	ev->type = TR_POOL_GONE;
	ev->worker = i;
	ev->pid = p->slots[i].pid;
	ev->deadline = deadline;
	if (deadline)
		kill(p->slots[i].pid, SIGKILL);
	reap(p, i, &ev->status, &ev->signal);
}

int tr_pool_wait(tr_pool *p, unsigned timeout_ms, tr_pool_event *ev)
{
	struct pollfd fds[257];
	unsigned map[257], n = 0;
	uint64_t until = tr_deadline_after_ms(timeout_ms);
	int r;

	memset(ev, 0, sizeof(*ev));
	for (unsigned i = 1; i <= p->jobs; i++)
		if (p->slots[i].fd >= 0 && take_line(p, i, ev))
			return 0;
	for (unsigned i = 1; i <= p->jobs; i++) {
		slot *s = &p->slots[i];

		if (s->fd < 0)
			continue;
		if (s->deadline && tr_deadline_passed(s->deadline)) {
			gone(p, i, 1, ev);
			return 0;
		}
		if (s->deadline && s->deadline < until)
			until = s->deadline;
		fds[n] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
		map[n++] = i;
	}
	r = poll(fds, n, (int)tr_deadline_left_ms(until) + 1);
	if (r < 0 && errno != EINTR)
		return tr_error_set(TR_EIO, "poll: %s", strerror(errno));
	for (unsigned k = 0; r > 0 && k < n; k++) {
		unsigned i = map[k];
		slot *s = &p->slots[i];
		char chunk[65536];
		ssize_t got;

		if (!fds[k].revents)
			continue;
		got = read(s->fd, chunk, sizeof(chunk));
		if (got > 0) {
			tr_buf_put(&s->in, chunk, (size_t)got);
			if (s->in.oom || s->in.len > MAX_LINE) {
				gone(p, i, 1, ev); /* a runaway worker */
				return 0;
			}
			if (take_line(p, i, ev))
				return 0;
		} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
			gone(p, i, 0, ev);
			return 0;
		}
	}
	ev->type = TR_POOL_NOTHING;
	return 0;
}

const char *tr_pool_dir(const tr_pool *p, unsigned i)
{
	return i && i <= p->jobs ? p->slots[i].dir : "";
}

void tr_pool_pids(const tr_pool *p, tr_buf *out)
{
	for (unsigned i = 1; i <= p->jobs; i++) {
		const slot *s = &p->slots[i];
		char path[PATH_MAX + 8], *text = NULL, name[32];
		long pid;
		unsigned long long start;

		if (s->pid <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/pids", s->dir);
		if (tr_fs_read_all(path, 65536, &text, NULL) == 0) {
			for (char *line = text, *next; line && *line; line = next) {
				if ((next = strchr(line, '\n')))
					*next++ = '\0';
				if (sscanf(line, "%31s %ld %llu", name, &pid, &start) != 3 ||
				    !strcmp(name, "owner"))
					continue;
				if (i == 1)
					tr_buf_printf(out, "%s %ld %llu\n", name, pid, start);
				else
					tr_buf_printf(out, "w%u.%s %ld %llu\n", i, name, pid, start);
			}
			free(text);
		}
		tr_buf_printf(out, "worker%u %ld %llu\n", i, (long)s->pid, tr_proc_start_time(s->pid));
	}
}

void tr_pool_free(tr_pool *p, unsigned timeout_ms)
{
	uint64_t deadline = tr_deadline_after_ms(timeout_ms);

	if (!p)
		return;
	/* The end of the socket is a worker's cue to bring its env down and exit. */
	for (unsigned i = 1; i <= p->jobs; i++)
		if (p->slots[i].fd >= 0)
			shutdown(p->slots[i].fd, SHUT_WR);
	for (unsigned i = 1; i <= p->jobs; i++) {
		slot *s = &p->slots[i];
		int st;

		/* Reaped here, its PID is forgotten: never a signal to a PID reused since. */
		while (s->pid > 0 && !tr_deadline_passed(deadline)) {
			pid_t r = waitpid(s->pid, &st, WNOHANG);

			if (r == s->pid || (r < 0 && errno == ECHILD))
				s->pid = 0;
			else
				tr_poll_pause(deadline, 5);
		}
		tr_pool_kill(p, i);
		tr_buf_free(&s->in);
	}
	free(p->slots);
	free(p);
}

int tr_worker_send(int fd, const json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;

	if (!text)
		return tr_error_set(TR_ENOMEM, "out of memory");
	len = strlen(text);
	text[len++] = '\n';
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(text);
			return tr_error_set(TR_EIO, "the run is gone: %s", strerror(errno));
		}
		off += (size_t)n;
	}
	free(text);
	return 0;
}

int tr_worker_recv(int fd, tr_buf *pending, json_t **msg)
{
	json_error_t jerr;

	*msg = NULL;
	for (;;) {
		char *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
		char chunk[65536];
		ssize_t got;

		if (nl) {
			size_t n = (size_t)(nl - pending->data);

			*msg = json_loadb(pending->data, n, 0, &jerr);
			memmove(pending->data, nl + 1, pending->len - n - 1);
			pending->len -= n + 1;
			pending->data[pending->len] = '\0';
			if (!*msg)
				return tr_error_set(TR_EPARSE, "a message from the run: %s", jerr.text);
			return 0;
		}
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return tr_error_set(TR_EIO, "reading from the run: %s", strerror(errno));
		if (got == 0)
			return 0;
		tr_buf_put(pending, chunk, (size_t)got);
		if (pending->oom || pending->len > MAX_LINE)
			return tr_error_set(TR_ENOMEM, "a message from the run too long");
	}
}
