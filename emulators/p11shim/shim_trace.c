#include "emulators/p11shim/shim_trace.h"

#include "common/clock.h"
#include "common/error.h"
#include "emulators/p11shim/shim_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TRACE_BUF 65536
#define TRACE_LINE 256
#define TRACE_FLUSH_NS (100 * 1000000ull)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fd = -1;
static char buf[TRACE_BUF];
static size_t used;
static uint64_t last_flush;

static void flush_locked(void)
{
	size_t off = 0;
	int f = atomic_load(&fd);

	while (f >= 0 && off < used) {
		ssize_t n = write(f, buf + off, used - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a full disk loses trace lines, never the call */
		off += (size_t)n;
	}
	used = 0;
	last_flush = tr_clock_ns();
}

int shim_trace_open(const char *path)
{
	char head[128];
	int f, n;

	shim_trace_close();
	if (!path)
		return 0;
	f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		return tr_error_set(TR_EIO, "trace %s: %s", path, strerror(errno));
	pthread_mutex_lock(&lock);
	n = snprintf(head, sizeof(head), "# tokenrig p11shim trace v1 pid=%ld\n",
		     (long)getpid());
	memcpy(buf, head, (size_t)n);
	used = (size_t)n;
	last_flush = tr_clock_ns();
	atomic_store(&fd, f);
	pthread_mutex_unlock(&lock);
	return 0;
}

int shim_trace_enabled(void)
{
	return atomic_load_explicit(&fd, memory_order_relaxed) >= 0;
}

void shim_trace_record(const shim_trace_rec *r)
{
	char line[TRACE_LINE], rvbuf[24], slot[24];
	const char *rv = shim_rv_name(r->rv);
	int n;

	if (!rv) {
		snprintf(rvbuf, sizeof(rvbuf), "0x%lx", r->rv);
		rv = rvbuf;
	}
	if (r->slot == (unsigned long)-1)
		snprintf(slot, sizeof(slot), "-");
	else
		snprintf(slot, sizeof(slot), "%lu", r->slot);
	n = snprintf(line, sizeof(line),
		     "t=%llu fn=%s slot=%s session=%lu rv=%s us=%.1f in=%lu out=%lu pid=%ld\n",
		     (unsigned long long)r->start_ns, shim_fn_name(r->fn), slot, r->session,
		     rv, (double)r->dur_ns / 1000.0, r->in_len, r->out_len, (long)getpid());
	if (n <= 0 || n >= (int)sizeof(line))
		return;
	pthread_mutex_lock(&lock);
	if (atomic_load(&fd) >= 0) {
		if (used + (size_t)n > sizeof(buf))
			flush_locked();
		memcpy(buf + used, line, (size_t)n);
		used += (size_t)n;
		/* Cheap enough: the harness reads the file while the caller runs. */
		if (r->start_ns - last_flush > TRACE_FLUSH_NS || r->start_ns < last_flush)
			flush_locked();
	}
	pthread_mutex_unlock(&lock);
}

void shim_trace_flush(void)
{
	pthread_mutex_lock(&lock);
	flush_locked();
	pthread_mutex_unlock(&lock);
}

void shim_trace_close(void)
{
	int f;

	pthread_mutex_lock(&lock);
	flush_locked();
	f = atomic_exchange(&fd, -1);
	if (f >= 0)
		close(f);
	pthread_mutex_unlock(&lock);
}
