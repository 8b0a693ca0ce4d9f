#include "emulators/p11shim/shim_state.h"

#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define STATE_MAX_TOKENS 256
#define SERIAL_MAX 32

typedef struct entry {
	char serial[SERIAL_MAX + 1];
	unsigned wrong;
} entry;

/* The process's copy of the file, guarded by its own lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry entries[STATE_MAX_TOKENS];
static int n_entries;
static int loaded;

int shim_state_lock(const char *path, int *fd)
{
	char lpath[4096];

	*fd = -1;
	if (!path)
		return 0;
	if (snprintf(lpath, sizeof(lpath), "%s.lock", path) >= (int)sizeof(lpath))
		return tr_error_set(TR_EINVAL, "state path too long");
	*fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return tr_error_set(TR_EIO, "open %s: %s", lpath, strerror(errno));
	while (flock(*fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			close(*fd);
			*fd = -1;
			return tr_error_set(TR_EIO, "flock %s: %s", lpath, strerror(errno));
		}
	}
	return 0;
}

void shim_state_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* Serials are blank-padded fields: blanks inside become '_'. */
static void key_of(char *dst, const char *serial)
{
	size_t n = 0;

	for (; serial[n] && n < SERIAL_MAX; n++)
		dst[n] = serial[n] == ' ' || serial[n] == '\t' ? '_' : serial[n];
	dst[n] = '\0';
}

/* Reads the file into entries; a missing file is an empty one. */
static int reload(const char *path)
{
	char *text = NULL, *line, *next;
	int error;

	loaded = 1;
	if (!path)
		return 0; /* this process's counters are the only copy */
	n_entries = 0;
	error = tr_fs_read_all(path, 64 * 1024, &text, NULL);
	if (error == TR_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	for (line = text; line && *line; line = next) {
		char serial[SERIAL_MAX + 1];
		unsigned wrong;

		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (line[0] == '#' || n_entries == STATE_MAX_TOKENS)
			continue;
		if (sscanf(line, "%32s %u", serial, &wrong) == 2) {
			memcpy(entries[n_entries].serial, serial, sizeof(serial));
			entries[n_entries++].wrong = wrong;
		}
	}
	free(text);
	return 0;
}

static int save(const char *path)
{
	char buf[STATE_MAX_TOKENS * (SERIAL_MAX + 16) + 128];
	size_t len;

	if (!path)
		return 0;
	len = (size_t)snprintf(buf, sizeof(buf),
			       "# tokenrig p11shim: wrong user PIN tries per token serial\n");
	for (int i = 0; i < n_entries; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s %u\n",
					entries[i].serial, entries[i].wrong);
	return tr_fs_write_atomic(path, buf, len, 0600);
}

int shim_state_get(const char *path, const char *serial, int fresh, unsigned *wrong)
{
	char key[SERIAL_MAX + 1];
	int error = 0;

	key_of(key, serial);
	*wrong = 0;
	pthread_mutex_lock(&lock);
	if ((fresh || !loaded) && (error = reload(path)) < 0)
		goto out;
	for (int i = 0; i < n_entries; i++)
		if (!strcmp(entries[i].serial, key))
			*wrong = entries[i].wrong;
out:
	pthread_mutex_unlock(&lock);
	return error;
}

int shim_state_set(const char *path, const char *serial, unsigned wrong)
{
	char key[SERIAL_MAX + 1];
	int i, error;

	key_of(key, serial);
	pthread_mutex_lock(&lock);
	/* Callers hold the file lock: what is on disk is current. */
	if ((error = reload(path)) < 0)
		goto out;
	for (i = 0; i < n_entries; i++)
		if (!strcmp(entries[i].serial, key))
			break;
	if (i == n_entries) {
		if (wrong == 0)
			goto out;
		if (n_entries == STATE_MAX_TOKENS) {
			error = tr_error_set(TR_EINVAL, "state file %s: too many tokens", path);
			goto out;
		}
		memcpy(entries[n_entries++].serial, key, sizeof(key));
	}
	if (wrong == 0)
		entries[i] = entries[--n_entries];
	else
		entries[i].wrong = wrong;
	error = save(path);
out:
	pthread_mutex_unlock(&lock);
	return error;
}

void shim_state_invalidate(void)
{
	pthread_mutex_lock(&lock);
	loaded = 0;
	pthread_mutex_unlock(&lock);
}

void shim_state_reset(void)
{
	pthread_mutex_lock(&lock);
	loaded = 0;
	n_entries = 0;
	pthread_mutex_unlock(&lock);
}
