#include "fsutil.h"

#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tr_fs_pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return tr_error_set(TR_EINVAL, "path too long: %.200s...", buf);
	return 0;
}

int tr_fs_join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return tr_error_set(TR_EINVAL, "path too long: %s/%s", dir, name);
	return 0;
}

int tr_fs_mkdirs(const char *path, unsigned mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return tr_error_set(TR_EINVAL, "bad folder path '%s'", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return tr_error_set(TR_EIO, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return tr_error_set(TR_EIO, "mkdir %s: %s", tmp, strerror(errno));
	return 0;
}

int tr_fs_write_atomic(const char *path, const void *data, size_t len,
		       unsigned mode)
{
	return tr_fs_write_replace(path, data, len, mode, 1);
}

int tr_fs_write_replace(const char *path, const void *data, size_t len,
			unsigned mode, int sync)
{
	char tmp[4096];
	const char *p = data;
	int fd = -1, error = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return tr_error_set(TR_EINVAL, "path too long: %s", path);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return tr_error_set(TR_EIO, "create %s: %s", tmp, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = tr_error_set(TR_EIO, "write %s: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (sync && fsync(fd) != 0) {
		error = tr_error_set(TR_EIO, "fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		error = tr_error_set(TR_EIO, "close %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		error = tr_error_set(TR_EIO, "rename %s: %s", path, strerror(errno));

out:
	if (fd >= 0)
		close(fd);
	if (error)
		unlink(tmp);
	return error;
}

int tr_fs_read_all(const char *path, size_t max, char **out, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int error = 0;

	*out = NULL;
	if (!f)
		return tr_error_set(errno == ENOENT ? TR_ENOTFOUND : TR_EIO,
				    "open %s: %s", path, strerror(errno));
	for (;;) {
		if (len + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *nbuf;

			if (cap > max + 1) {
				error = tr_error_set(TR_EINVAL, "%s: larger than %zu bytes",
						     path, max);
				goto out;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				error = tr_error_set(TR_ENOMEM, "out of memory reading %s", path);
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		error = tr_error_set(TR_EIO, "read %s: %s", path, strerror(errno));
		goto out;
	}
	if (len > max) {
		error = tr_error_set(TR_EINVAL, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	if (out_len)
		*out_len = len;
out:
	free(buf);
	fclose(f);
	return error;
}

int tr_fs_remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char child[4096];
	int error = 0;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 :
		       tr_error_set(TR_EIO, "stat %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0)
			return tr_error_set(TR_EIO, "unlink %s: %s", path, strerror(errno));
		return 0;
	}
	d = opendir(path);
	if (!d)
		return tr_error_set(TR_EIO, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((error = tr_fs_join(child, sizeof(child), path, e->d_name)) < 0 ||
		    (error = tr_fs_remove_tree(child)) < 0)
			break;
	}
	closedir(d);
	if (!error && rmdir(path) != 0)
		error = tr_error_set(TR_EIO, "rmdir %s: %s", path, strerror(errno));
	return error;
}
