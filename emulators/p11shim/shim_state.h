/*
 * Wrong-PIN counters, keyed by token serial number. With a state file they
 * persist across processes: the file is rewritten atomically, and read-
 * modify-write cycles are serialised by flock on PATH.lock. Without one they
 * live in this process only.
 */
#ifndef TR_P11SHIM_STATE_H
#define TR_P11SHIM_STATE_H

/* Takes the cross-process lock (no-op without a file); 0 or TR_EIO. */
int shim_state_lock(const char *path, int *fd);
void shim_state_unlock(int fd);

/*
 * Wrong tries recorded for serial. fresh = re-read the file first (under the
 * lock, for decisions); otherwise the last read or write is used.
 */
int shim_state_get(const char *path, const char *serial, int fresh, unsigned *wrong);

/* Records wrong tries for serial (0 removes the entry) and saves the file. */
int shim_state_set(const char *path, const char *serial, unsigned wrong);

/* Marks the cached copy stale: the file changed under us. */
void shim_state_invalidate(void);

/* Forgets everything (C_Finalize). */
void shim_state_reset(void);

#endif
