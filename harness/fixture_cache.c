#include "harness/fixture_cache.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST "MANIFEST"
#define MAGIC "tokenrig-fixture-cache 1\n"
#define MAX_FILE (16u << 20)
#define MAX_MANIFEST (8u << 20)
/* Leftovers of a run that died while publishing or discarding. */
#define STALE_TEMP_S 3600

/* A path that fits, or an error naming it: a cut path is never used. */
static int path_fmt(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	int n = snprintf(buf, len, fmt, a, b);

	if (n < 0 || (size_t)n >= len)
		return tr_error_set(TR_EINVAL, "path too long: %s/%s", a, b);
	return 0;
}

int tr_fxcache_root(char *buf, size_t len)
{
	const char *v;

	if ((v = getenv("TOKENRIG_CACHE")) && *v)
		return path_fmt(buf, len, "%s%s", v, "");
	if ((v = getenv("XDG_CACHE_HOME")) && *v)
		return path_fmt(buf, len, "%s/%s", v, "tokenrig");
	if ((v = getenv("HOME")) && *v)
		return path_fmt(buf, len, "%s/%s", v, ".cache/tokenrig");
	return tr_error_set(TR_EINVAL, "no fixture cache folder: set TOKENRIG_CACHE or HOME");
}

static void hex(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

void tr_fxcache_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		memset(md, 0, sizeof(md)); /* no match with any real file: a miss */
	hex(md, 32, out);
}

int tr_fxcache_file_sha256(const char *path, char out[65])
{
	char *data = NULL;
	size_t len = 0;
	int error;

	if ((error = tr_fs_read_all(path, 1u << 30, &data, &len)) < 0)
		return error;
	tr_fxcache_sha256_hex(data, len, out);
	free(data);
	return 0;
}

int tr_fxcache_key(const tr_fxcache_inputs *in, char *name, size_t len)
{
	static char memo_path[PATH_MAX], memo[65];
	char program[65], prof[65], sum[65];
	tr_buf b = TR_BUF_INIT;
	int error, n;

	if (!in->program || !in->profiles)
		return tr_error_set(TR_EINVAL, "fixture cache key: program and profiles needed");
	if (memo[0] && !strcmp(memo_path, in->program)) {
		memcpy(program, memo, sizeof(program));
	} else {
		if ((error = tr_fxcache_file_sha256(in->program, program)) < 0)
			return error;
		if (strlen(in->program) < sizeof(memo_path)) {
			memcpy(memo_path, in->program, strlen(in->program) + 1);
			memcpy(memo, program, sizeof(memo));
		}
	}
	if ((error = tr_fxcache_file_sha256(in->profiles, prof)) < 0)
		return error;
	tr_buf_printf(&b, "tokenrig fixtures %d\nseed %llu\ncards %d\nprofiles %s\nprogram %s\n"
		      "revision %s\nlibraries %s\n", TR_FXCACHE_VERSION, in->seed, in->cards, prof,
		      program, in->revision ? in->revision : "", in->libraries ? in->libraries : "");
	if ((error = tr_buf_check(&b, "the fixture cache key")) == 0) {
		tr_fxcache_sha256_hex(b.data, b.len, sum);
		n = snprintf(name, len, "%llu-%.32s", in->seed, sum);
		if (n < 0 || (size_t)n >= len)
			error = tr_error_set(TR_EINVAL, "fixture cache entry name too long");
	}
	tr_buf_free(&b);
	return error;
}

/* Writes a new file (no fsync: the manifest's hashes catch a torn copy). */
static int write_file(const char *path, const char *data, size_t len, unsigned mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), error = 0;

	if (fd < 0)
		return tr_error_set(TR_EIO, "create %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = tr_error_set(TR_EIO, "write %s: %s", path, strerror(errno));
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (!error && fchmod(fd, mode & 07777) != 0)
		error = tr_error_set(TR_EIO, "chmod %s: %s", path, strerror(errno));
	if (close(fd) != 0 && !error)
		error = tr_error_set(TR_EIO, "close %s: %s", path, strerror(errno));
	return error;
}

/* A manifest path stays inside its folder: relative, no "..", no odd bytes. */
static int rel_ok(const char *rel)
{
	if (!*rel || rel[0] == '/' || strstr(rel, "//"))
		return 0;
	for (const char *p = rel; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	for (const char *p = rel; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (!strncmp(p, "..", 2) && (p[2] == '/' || !p[2]))
			return 0;
		if (*p == '.' && (p[1] == '/' || !p[1]))
			return 0;
	}
	return 1;
}

/* --- publishing ---------------------------------------------------------- */

/* Copies src/rel (a file or a folder tree) to dst/rel, adding manifest lines. */
static int add_tree(const char *src, const char *dst, const char *rel, tr_buf *man)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	int error = 0;

	if ((error = path_fmt(from, sizeof(from), "%s/%s", src, rel)) < 0 ||
	    (error = path_fmt(to, sizeof(to), "%s/%s", dst, rel)) < 0)
		return error;
	if (lstat(from, &st) != 0)
		return tr_error_set(TR_EIO, "stat %s: %s", from, strerror(errno));
	if (!rel_ok(rel) || strchr(rel, ' ') || strchr(rel, '\n'))
		return tr_error_set(TR_EINVAL, "fixture cache: cannot keep a file named '%s'", rel);
	if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *e;

		if (mkdir(to, 0700) != 0 && errno != EEXIST)
			return tr_error_set(TR_EIO, "mkdir %s: %s", to, strerror(errno));
		tr_buf_printf(man, "dir %o %s\n", (unsigned)(st.st_mode & 07777), rel);
		if (!(d = opendir(from)))
			return tr_error_set(TR_EIO, "open %s: %s", from, strerror(errno));
		while (!error && (e = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if ((error = path_fmt(sub, sizeof(sub), "%s/%s", rel, e->d_name)) == 0)
				error = add_tree(src, dst, sub, man);
		}
		closedir(d);
		return error;
	}
	if (S_ISREG(st.st_mode)) {
		char *data = NULL, sum[65];
		size_t len = 0;

		if ((error = tr_fs_read_all(from, MAX_FILE, &data, &len)) < 0)
			return error;
		tr_fxcache_sha256_hex(data, len, sum);
		error = write_file(to, data, len, st.st_mode & 07777);
		free(data);
		tr_buf_printf(man, "file %s %o %zu %s\n", sum, (unsigned)(st.st_mode & 07777), len,
			      rel);
		return error;
	}
	return 0; /* sockets, pipes, links: not fixtures */
}

/* The age of an entry from its manifest's "created" line; -1 if unreadable. */
static long entry_created(const char *dir)
{
	char path[PATH_MAX], *text = NULL, *p;
	long created = -1;

	if (path_fmt(path, sizeof(path), "%s/%s", dir, MANIFEST) < 0 ||
	    tr_fs_read_all(path, MAX_MANIFEST, &text, NULL) < 0)
		return -1;
	if ((p = strstr(text, "\ncreated ")))
		created = strtol(p + 9, NULL, 10);
	free(text);
	return created;
}

typedef struct entry_use {
	char name[256];
	time_t used;
} entry_use;

static int more_recent(const void *a, const void *b)
{
	time_t x = ((const entry_use *)a)->used, y = ((const entry_use *)b)->used;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Keeps the cache small: temp folders of dead publishers, entries past
 * twice their age, lock files of gone entries, and all but the
 * TR_FXCACHE_KEEP most recently used entries (every rebuild of the program
 * is a new key) are removed; an entry used in the last minutes stays.
 */
static void prune(const char *root, const char *keep)
{
	DIR *d = opendir(root);
	struct dirent *e;
	time_t now = time(NULL);
	entry_use *uses = NULL;
	size_t n = 0, cap = 0;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX], entry[PATH_MAX];
		struct stat st;
		long created;
		size_t len = strlen(e->d_name);

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, keep) ||
		    path_fmt(path, sizeof(path), "%s/%s", root, e->d_name) < 0 ||
		    lstat(path, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode) && len > 5 && !strcmp(e->d_name + len - 5, ".lock")) {
			if (path_fmt(entry, sizeof(entry), "%s", path, "") == 0 &&
			    (entry[strlen(entry) - 5] = '\0', access(entry, F_OK) != 0) &&
			    now - st.st_mtime > STALE_TEMP_S)
				unlink(path);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (e->d_name[0] == '.') {
			if (now - st.st_mtime > STALE_TEMP_S)
				tr_fs_remove_tree(path);
			continue;
		}
		created = entry_created(path);
		if (created > 0 && now - created > 2 * TR_FXCACHE_MAX_AGE_S) {
			tr_fxcache_discard(root, e->d_name);
			continue;
		}
		if (n == cap) {
			entry_use *grown = realloc(uses, (cap = cap ? 2 * cap : 32) * sizeof(*uses));

			if (!grown)
				break;
			uses = grown;
		}
		if (len < sizeof(uses[n].name)) {
			memcpy(uses[n].name, e->d_name, len + 1);
			uses[n++].used = st.st_mtime;
		}
	}
	closedir(d);
	/* keep is the newest; the others by their last use. */
	if (n > 1)
		qsort(uses, n, sizeof(*uses), more_recent);
	for (size_t i = TR_FXCACHE_KEEP > 0 ? TR_FXCACHE_KEEP - 1 : 0; i < n; i++)
		if (now - uses[i].used > 600)
			tr_fxcache_discard(root, uses[i].name);
	free(uses);
}

/* The folders above a part ("softhsm" of "softhsm/tokens"), made and listed. */
static int add_parents(const char *dst, const char *part, tr_buf *man)
{
	char rel[PATH_MAX], path[PATH_MAX];
	int error;

	if ((error = path_fmt(rel, sizeof(rel), "%s%s", part, "")) < 0)
		return error;
	for (char *c = strchr(rel, '/'); c; c = strchr(c + 1, '/')) {
		*c = '\0';
		if ((error = path_fmt(path, sizeof(path), "%s/%s", dst, rel)) < 0)
			return error;
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return tr_error_set(TR_EIO, "mkdir %s: %s", path, strerror(errno));
		tr_buf_printf(man, "dir 700 %s\n", rel);
		*c = '/';
	}
	return 0;
}

static unsigned temp_counter;

static int temp_name(char *buf, size_t len, const char *root, const char *what, const char *name)
{
	char tail[256];
	int n = snprintf(tail, sizeof(tail), ".%s-%ld-%u-%.64s", what, (long)getpid(),
			 ++temp_counter, name);

	if (n < 0 || (size_t)n >= sizeof(tail))
		return tr_error_set(TR_EINVAL, "cache entry name too long: %s", name);
	return path_fmt(buf, len, "%s/%s", root, tail);
}

int tr_fxcache_discard(const char *root, const char *name)
{
	char path[PATH_MAX], trash[PATH_MAX];
	int error;

	if ((error = path_fmt(path, sizeof(path), "%s/%s", root, name)) < 0 ||
	    (error = temp_name(trash, sizeof(trash), root, "trash", name)) < 0)
		return error;
	if (rename(path, trash) != 0)
		return errno == ENOENT ? 0 : tr_error_set(TR_EIO, "discarding %s: %s", path,
							  strerror(errno));
	return tr_fs_remove_tree(trash);
}

int tr_fxcache_store(const char *root, const char *name, const char *src,
		     const char *const *parts, int replace)
{
	char tmp[PATH_MAX], final[PATH_MAX], path[PATH_MAX], sum[65];
	tr_buf man = TR_BUF_INIT;
	int error;

	if (!rel_ok(name) || strchr(name, '/') || name[0] == '.')
		return tr_error_set(TR_EINVAL, "bad cache entry name '%s'", name);
	if ((error = tr_fs_mkdirs(root, 0700)) < 0 ||
	    (error = path_fmt(final, sizeof(final), "%s/%s", root, name)) < 0 ||
	    (error = temp_name(tmp, sizeof(tmp), root, "tmp", name)) < 0)
		return error;
	if (mkdir(tmp, 0700) != 0)
		return tr_error_set(TR_EIO, "mkdir %s: %s", tmp, strerror(errno));
	tr_buf_puts(&man, MAGIC);
	tr_buf_printf(&man, "key %s\ncreated %lld\n", name, (long long)time(NULL));
	for (size_t i = 0; parts[i] && !error; i++) {
		struct stat st;
		char at[PATH_MAX];

		if ((error = path_fmt(at, sizeof(at), "%s/%s", src, parts[i])) < 0)
			break;
		if (lstat(at, &st) != 0)
			continue;
		error = add_parents(tmp, parts[i], &man);
		if (!error)
			error = add_tree(src, tmp, parts[i], &man);
	}
	if (!error && (error = tr_buf_check(&man, "the cache manifest")) == 0) {
		tr_fxcache_sha256_hex(man.data, man.len, sum);
		tr_buf_printf(&man, "end %s\n", sum);
		if ((error = tr_buf_check(&man, "the cache manifest")) == 0 &&
		    (error = path_fmt(path, sizeof(path), "%s/%s", tmp, MANIFEST)) == 0)
			error = write_file(path, man.data, man.len, 0600);
	}
	tr_buf_free(&man);
	if (error < 0)
		goto fail;
	if (rename(tmp, final) != 0) {
		if ((errno != EEXIST && errno != ENOTEMPTY) || !replace) {
			/* Another run published this key first: theirs is as good. */
			if (errno == EEXIST || errno == ENOTEMPTY) {
				tr_fs_remove_tree(tmp);
				return 0;
			}
			error = tr_error_set(TR_EIO, "publishing %s: %s", final, strerror(errno));
			goto fail;
		}
		if ((error = tr_fxcache_discard(root, name)) < 0)
			goto fail;
		if (rename(tmp, final) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
			error = tr_error_set(TR_EIO, "publishing %s: %s", final, strerror(errno));
			goto fail;
		}
	}
	prune(root, name);
	tr_fs_remove_tree(tmp); /* only left when a racing publisher won */
	return 0;
fail:
	{
		char why[1024];

		snprintf(why, sizeof(why), "%s", tr_error_last());
		tr_fs_remove_tree(tmp);
		return tr_error_set(error, "%s", why);
	}
}

/* --- loading ------------------------------------------------------------- */

/* One manifest line applied: a folder made, or a file checked and copied. */
static int load_line(const char *entry, const char *dest, char *line, char *bad, size_t bad_len)
{
	char sum[65], got[65], from[PATH_MAX], to[PATH_MAX], rel[PATH_MAX];
	unsigned mode;
	size_t size, len = 0;
	char *data = NULL;
	int n = 0, error;

	if (sscanf(line, "dir %o %n", &mode, &n) == 1 && n > 0) {
		if (path_fmt(rel, sizeof(rel), "%s%s", line + n, "") < 0 || !rel_ok(rel) ||
		    path_fmt(to, sizeof(to), "%s/%s", dest, rel) < 0)
			goto malformed;
		if (mkdir(to, 0700) != 0 && errno != EEXIST)
			return tr_error_set(TR_EIO, "mkdir %s: %s", to, strerror(errno));
		chmod(to, mode & 07777);
		return 0;
	}
	if (sscanf(line, "file %64s %o %zu %n", sum, &mode, &size, &n) != 3 || n == 0 ||
	    strlen(sum) != 64)
		goto malformed;
	if (path_fmt(rel, sizeof(rel), "%s%s", line + n, "") < 0 || !rel_ok(rel) ||
	    path_fmt(from, sizeof(from), "%s/%s", entry, rel) < 0 ||
	    path_fmt(to, sizeof(to), "%s/%s", dest, rel) < 0)
		goto malformed;
	if (tr_fs_read_all(from, MAX_FILE, &data, &len) < 0) {
		snprintf(bad, bad_len, "%s is missing or unreadable", rel);
		return TR_EPARSE;
	}
	tr_fxcache_sha256_hex(data, len, got);
	if (len != size || strcmp(got, sum)) {
		free(data);
		snprintf(bad, bad_len, "%s does not match the manifest (%zu bytes, %zu expected)",
			 rel, len, size);
		return TR_EPARSE;
	}
	error = write_file(to, data, len, mode);
	free(data);
	return error;
malformed:
	snprintf(bad, bad_len, "a malformed manifest line");
	return TR_EPARSE;
}

int tr_fxcache_load(const char *root, const char *name, const char *dest, char *note,
		    size_t note_len)
{
	char entry[PATH_MAX], path[PATH_MAX], bad[PATH_MAX + 128] = "", sum[65];
	char *text = NULL, *end, *line, *next;
	size_t len = 0;
	long created;
	int error, files = 0;

	note[0] = '\0';
	if ((error = path_fmt(entry, sizeof(entry), "%s/%s", root, name)) < 0 ||
	    (error = path_fmt(path, sizeof(path), "%s/%s", entry, MANIFEST)) < 0 ||
	    (error = tr_fs_mkdirs(dest, 0755)) < 0)
		return error;
	if (access(entry, F_OK) != 0)
		return TR_ENOTFOUND;
	if (tr_fs_read_all(path, MAX_MANIFEST, &text, &len) < 0) {
		snprintf(bad, sizeof(bad), "its MANIFEST is missing");
		goto corrupt;
	}
	/* The last line seals every line before it: a cut manifest fails here. */
	end = len >= 69 ? text + len - 69 : NULL;
	if (!end || strncmp(end, "end ", 4) || text[len - 1] != '\n' ||
	    (end != text && end[-1] != '\n') || strncmp(text, MAGIC, strlen(MAGIC))) {
		snprintf(bad, sizeof(bad), "its MANIFEST is truncated or not a manifest");
		goto corrupt;
	}
	tr_fxcache_sha256_hex(text, (size_t)(end - text), sum);
	if (strncmp(end + 4, sum, 64)) {
		snprintf(bad, sizeof(bad), "its MANIFEST was altered");
		goto corrupt;
	}
	*end = '\0';
	created = (line = strstr(text, "\ncreated ")) ? strtol(line + 9, NULL, 10) : -1;
	if (created <= 0 || time(NULL) - created > TR_FXCACHE_MAX_AGE_S ||
	    created > time(NULL) + 600) {
		snprintf(note, note_len, "fixture cache entry %s was made %s ago (at most %d h): "
			 "regenerating", name, created > time(NULL) ? "in the future, not" :
			 "more than a day", TR_FXCACHE_MAX_AGE_S / 3600);
		free(text);
		return TR_ENOTFOUND;
	}
	for (line = text + strlen(MAGIC); *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (!strncmp(line, "key ", 4) || !strncmp(line, "created ", 8))
			continue;
		if ((error = load_line(entry, dest, line, bad, sizeof(bad))) == TR_EPARSE)
			goto corrupt;
		if (error < 0) {
			free(text);
			return error; /* the run folder's fault, not the cache's */
		}
		files += !strncmp(line, "file ", 5);
	}
	free(text);
	if (files == 0) {
		snprintf(bad, sizeof(bad), "it lists no file");
		goto corrupt;
	}
	utimes(entry, NULL); /* its last use, for pruning */
	return 0;
corrupt:
	free(text);
	snprintf(note, note_len, "fixture cache entry %s/%s is corrupt (%s): discarded, "
		 "regenerating", root, name, bad);
	tr_fxcache_discard(root, name);
	return tr_error_set(TR_EPARSE, "%s", note);
}

/* --- the generation lock ------------------------------------------------- */

int tr_fxcache_lock(const char *root, const char *name, unsigned timeout_ms, int *fd)
{
	char path[PATH_MAX];
	uint64_t deadline = tr_deadline_after_ms(timeout_ms);
	int error;

	*fd = -1;
	if ((error = tr_fs_mkdirs(root, 0700)) < 0 ||
	    (error = path_fmt(path, sizeof(path), "%s/%s.lock", root, name)) < 0)
		return error;
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return tr_error_set(TR_EIO, "open %s: %s", path, strerror(errno));
	while (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			error = tr_error_set(TR_EIO, "lock %s: %s", path, strerror(errno));
			break;
		}
		if (tr_deadline_passed(deadline)) {
			error = tr_error_set(TR_ETIMEDOUT, "another run held %s for %u ms", path,
					     timeout_ms);
			break;
		}
		tr_poll_pause(deadline, 50);
	}
	if (error < 0) {
		close(*fd);
		*fd = -1;
	}
	return error;
}

void tr_fxcache_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}
