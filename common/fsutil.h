/* Small file-system helpers used by the writers of state and results. */
#ifndef TR_COMMON_FSUTIL_H
#define TR_COMMON_FSUTIL_H

#include <stddef.h>

/* mkdir -p with the given mode. */
int tr_fs_mkdirs(const char *path, unsigned mode);

/*
 * Replaces path with data atomically: a temporary file in the same folder,
 * fsync, rename. A reader (or a crash) sees the old or the new file, never a
 * half-written one.
 */
int tr_fs_write_atomic(const char *path, const void *data, size_t len,
		       unsigned mode);

/*
 * The same, durable only when sync: without it the replacement is still
 * all-or-nothing for readers and survives the writer's crash, not a power
 * cut (a run's per-case rewrites; its last write syncs).
 */
int tr_fs_write_replace(const char *path, const void *data, size_t len,
			unsigned mode, int sync);

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int tr_fs_read_all(const char *path, size_t max, char **out, size_t *out_len);

/* Removes a folder tree (rm -rf); missing is fine. */
int tr_fs_remove_tree(const char *path);

/* Path join into buf; returns TR_EINVAL when it does not fit. */
int tr_fs_join(char *buf, size_t size, const char *dir, const char *name);

/* A formatted path that fits buf, or TR_EINVAL naming it: a cut path is never used. */
int tr_fs_pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
