/*
 * The fixture cache: what env up generates for a seed (the fixture PKI,
 * the SoftHSM token folders, the card images and the list of tokens) is
 * kept between runs, so that a run starts from copies instead of ~8 s of
 * RSA key generation.
 *
 * Location: $TOKENRIG_CACHE, else $XDG_CACHE_HOME/tokenrig, else
 * ~/.cache/tokenrig. One entry per key, a folder ROOT/NAME holding the
 * files and a MANIFEST:
 *
 *   tokenrig-fixture-cache 1
 *   key <the key's full hex>
 *   created <unix seconds>
 *   dir <mode, octal> <relative path>
 *   file <sha256 hex> <mode, octal> <size> <relative path>
 *   end <sha256 hex of every line above>
 *
 * An entry is published whole or not at all: built in ROOT/.tmp-*, then
 * renamed to ROOT/NAME. It is verified on every load: each file is read,
 * hashed and compared with the manifest while it is copied into the run
 * folder (the cache itself is never used in place, since cases change
 * tokens, cards and CRLs). A missing, truncated or altered file or manifest
 * makes the entry corrupt: it is discarded, and the caller regenerates.
 */
#ifndef TR_HARNESS_FIXTURE_CACHE_H
#define TR_HARNESS_FIXTURE_CACHE_H

#include <stddef.h>

/*
 * Bump when the fixtures change in a way the key does not see (the key
 * already covers the seed, the token profiles, the program's own bytes, the
 * OpenSSL and SoftHSM2 builds).
 */
#define TR_FXCACHE_VERSION 1

/*
 * An entry older than this is regenerated: certificates and CRLs are dated
 * from their making (a CRL's nextUpdate is 7 days on, scenarios move the
 * portal clock by days), so a run must not start from old ones.
 */
#define TR_FXCACHE_MAX_AGE_S (24 * 3600)

/* What the fixtures are made from: any change is another entry. */
typedef struct tr_fxcache_inputs {
	unsigned long long seed;
	int cards;              /* card images made too */
	const char *profiles;   /* the token profiles file: its bytes */
	const char *program;    /* the program making them (/proc/self/exe): its bytes */
	const char *revision;   /* the program's revision */
	const char *libraries;  /* versions of what it uses (OpenSSL, SoftHSM2) */
} tr_fxcache_inputs;

/*
 * The entry's name for the inputs: "SEED-" and 32 hex digits of the SHA-256
 * of TR_FXCACHE_VERSION and every input. The program's hash is computed
 * once per process per path.
 */
int tr_fxcache_key(const tr_fxcache_inputs *in, char *name, size_t len);

/*
 * Entries kept: publishing removes all but this many most recently used
 * (every rebuild of the program is a new key), besides entries past twice
 * their age; one used in the last 10 minutes is never removed.
 */
#define TR_FXCACHE_KEEP 8

/* The cache's root folder (see above); TR_EINVAL when nothing names one. */
int tr_fxcache_root(char *buf, size_t len);

/* The SHA-256 of data as 64 hex digits (out: 65 bytes). */
void tr_fxcache_sha256_hex(const void *data, size_t len, char out[65]);

/* The SHA-256 of a file's contents; TR_ENOTFOUND / TR_EIO. */
int tr_fxcache_file_sha256(const char *path, char out[65]);

/*
 * Copies entry ROOT/name into dest (folders created), verifying every file
 * against the manifest as it goes. 0: every file copied and verified.
 * TR_ENOTFOUND: no entry, or one too old (note says so; it stays until
 * replaced). TR_EPARSE: the entry was corrupt or partial; it has been
 * discarded and note says what was wrong; dest may hold part of it. note
 * is "" when there is nothing to say.
 */
int tr_fxcache_load(const char *root, const char *name, const char *dest, char *note,
		    size_t note_len);

/*
 * Publishes the files under parts[] (paths relative to src, NULL-ended;
 * a part that does not exist is skipped) as entry ROOT/name, atomically.
 * An existing entry is kept (another run published the same key first)
 * unless replace is set (--fresh, or it was too old).
 */
int tr_fxcache_store(const char *root, const char *name, const char *src,
		     const char *const *parts, int replace);

/*
 * Serialises the generation of one entry among processes: polls an
 * exclusive lock on ROOT/name.lock until timeout_ms. 0 with *fd held,
 * TR_ETIMEDOUT, or TR_EIO when the root cannot be written.
 */
int tr_fxcache_lock(const char *root, const char *name, unsigned timeout_ms, int *fd);
void tr_fxcache_unlock(int fd);

/* Removes entry ROOT/name (renamed away first, so nobody loads half of it). */
int tr_fxcache_discard(const char *root, const char *name);

#endif
