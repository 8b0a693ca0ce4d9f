/*
 * Worker processes of a run (tokenrig run --jobs N): a pool the engine
 * hands cases to. Worker i is this program started again as `tokenrig
 * __worker`, in its own process group, with its own environment in
 * RUN/w<i> (tr_env_worker_up), speaking JSON, one object a line, over a
 * socket on fd 3. A worker that dies or passes its deadline is killed by
 * PID together with every process its environment recorded (RUN/w<i>/pids),
 * and can be started again, fresh.
 */
#ifndef TR_HARNESS_WORKER_H
#define TR_HARNESS_WORKER_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

/* The fd a worker finds its socket on. */
#define TR_WORKER_FD 3

typedef struct tr_pool tr_pool;

typedef struct tr_pool_opts {
	unsigned jobs;           /* workers 1 .. jobs */
	const char *run_dir;     /* the run's env; worker i lives in run_dir/w<i> */
	unsigned cards_worker;   /* 0: every worker shows cards; k: only worker k (the others get --no-cards) */
} tr_pool_opts;

int tr_pool_new(tr_pool **out, const tr_pool_opts *opts);

/* Starts worker i (1-based): what an earlier worker i left running is stopped first. */
int tr_pool_start(tr_pool *pool, unsigned i);

/* How long a worker may take to bring its environment up and say so. */
#define TR_POOL_START_MS 120000

/* Sends msg to worker i; an error when it is gone (the next tr_pool_wait says so). */
int tr_pool_send(tr_pool *pool, unsigned i, const json_t *msg);

/* Worker i's answer is due by deadline (tr_clock_ns; 0: none): passed, it is killed. */
void tr_pool_set_deadline(tr_pool *pool, unsigned i, uint64_t deadline);

typedef enum tr_pool_event_type {
	TR_POOL_NOTHING,   /* the time ran out */
	TR_POOL_MESSAGE,   /* msg from worker */
	TR_POOL_GONE,      /* worker ended: killed at its deadline, by a signal, or exited */
} tr_pool_event_type;

typedef struct tr_pool_event {
	tr_pool_event_type type;
	unsigned worker;
	pid_t pid;          /* GONE: the worker that ended */
	json_t *msg;        /* MESSAGE: the caller's to json_decref */
	int deadline;       /* GONE: killed at its deadline */
	int signal;         /* GONE: the signal that ended it (SIGKILL at the deadline), 0 */
	int status;         /* GONE: its exit status when it exited, else -1 */
} tr_pool_event;

/* The next event, waiting at most timeout_ms; EINTR (a signal) gives NOTHING. */
int tr_pool_wait(tr_pool *pool, unsigned timeout_ms, tr_pool_event *ev);

/* Kills worker i (SIGKILL) and every process of its environment, by PID. */
void tr_pool_kill(tr_pool *pool, unsigned i);

const char *tr_pool_dir(const tr_pool *pool, unsigned i);

/*
 * "name pid starttime" lines of every running worker ("worker<i>") and of
 * its environment's processes: worker 1's under their own names (portal,
 * pcscd, card0 ...), worker i's prefixed "w<i>." — for the run's pids file.
 */
void tr_pool_pids(const tr_pool *pool, tr_buf *out);

/* Asks every worker to end, waits up to timeout_ms, kills what is left; frees. */
void tr_pool_free(tr_pool *pool, unsigned timeout_ms);

/* --- inside a worker ----------------------------------------------------- */

int tr_worker_send(int fd, const json_t *msg);

/* The next message from the run (blocking); *msg NULL at the end (EOF). */
int tr_worker_recv(int fd, tr_buf *pending, json_t **msg);

#endif
