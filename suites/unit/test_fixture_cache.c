/* The fixture cache: its key, verified loads, corruption, atomic publishing. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/fixture_cache.h"

static char base[PATH_MAX], src[PATH_MAX], root[PATH_MAX], dst[PATH_MAX];

static const char *const parts[] = { "pki", "softhsm/tokens", "absent", "state", NULL };

/* A path, or the test fails rather than cut it. */
#define fmt(buf, len, ...) ck_assert_int_eq(tr_fs_pathf(buf, len, __VA_ARGS__), 0)

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char path[PATH_MAX], parent[PATH_MAX];

	fmt(path, sizeof(path), "%s/%s", dir, rel);
	fmt(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = '\0';
	ck_assert_int_eq(tr_fs_mkdirs(parent, 0700), 0);
	ck_assert_int_eq(tr_fs_write_atomic(path, text, strlen(text), mode), 0);
}

/* The file's text, "" when absent. */
static char *get(const char *dir, const char *rel)
{
	char path[PATH_MAX], *text = NULL;

	fmt(path, sizeof(path), "%s/%s", dir, rel);
	if (tr_fs_read_all(path, 1 << 20, &text, NULL) < 0)
		return strdup("");
	return text;
}

static int exists(const char *dir, const char *rel)
{
	char path[PATH_MAX];

	fmt(path, sizeof(path), "%s/%s", dir, rel);
	return access(path, F_OK) == 0;
}

static void setup(void)
{
	fmt(base, sizeof(base), "/tmp/tr-fxcache-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	fmt(src, sizeof(src), "%s/run", base);
	fmt(root, sizeof(root), "%s/cache", base);
	fmt(dst, sizeof(dst), "%s/run2", base);
	put(src, "pki/suzhou/crl.pem", "CRL v1\n", 0644);
	put(src, "pki/suzhou/root.key", "KEY\n", 0600);
	put(src, "softhsm/tokens/a/token.object", "token a\n", 0600);
	put(src, "softhsm/tokens/b/token.object", "token b\n", 0600);
	put(src, "softhsm/softhsm2.conf", "not cached\n", 0600);
	put(src, "state", "tokens\n", 0600);
}

static void teardown(void)
{
	tr_fs_remove_tree(base);
}

/* Rewrites an entry's manifest with one substitution, resealed like the real one. */
static void reseal(const char *name, const char *from, const char *to)
{
	char path[PATH_MAX], sum[65], *text, *end, *at, fixed[1 << 16];

	fmt(path, sizeof(path), "%s/%s/MANIFEST", root, name);
	ck_assert_int_eq(tr_fs_read_all(path, 1 << 20, &text, NULL), 0);
	end = strstr(text, "\nend ");
	ck_assert_ptr_nonnull(end);
	end[1] = '\0';
	ck_assert_ptr_nonnull(at = strstr(text, from));
	*at = '\0';
	fmt(fixed, sizeof(fixed), "%s%s%s", text, to, at + strlen(from));
	tr_fxcache_sha256_hex(fixed, strlen(fixed), sum);
	fmt(fixed + strlen(fixed), sizeof(fixed) - strlen(fixed), "end %s\n", sum);
	ck_assert_int_eq(tr_fs_write_atomic(path, fixed, strlen(fixed), 0600), 0);
	free(text);
}

START_TEST(root_from_environment)
{
	char buf[PATH_MAX], *old_cache = getenv("TOKENRIG_CACHE") ? strdup(getenv("TOKENRIG_CACHE")) : NULL;
	char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;

	setenv("TOKENRIG_CACHE", "/x/cache", 1);
	setenv("XDG_CACHE_HOME", "/x/xdg", 1);
	ck_assert_int_eq(tr_fxcache_root(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/x/cache");
	unsetenv("TOKENRIG_CACHE");
	ck_assert_int_eq(tr_fxcache_root(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/x/xdg/tokenrig");
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/x/home", 1);
	ck_assert_int_eq(tr_fxcache_root(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/x/home/.cache/tokenrig");
	/* A path that does not fit is an error, never a cut path. */
	ck_assert_int_eq(tr_fxcache_root(buf, 10), TR_EINVAL);
	if (old_cache)
		setenv("TOKENRIG_CACHE", old_cache, 1);
	if (old_xdg)
		setenv("XDG_CACHE_HOME", old_xdg, 1);
	free(old_cache);
	free(old_xdg);
}
END_TEST

START_TEST(key_changes_with_every_input)
{
	char program[PATH_MAX], profiles[PATH_MAX], a[128], b[128];
	tr_fxcache_inputs in;

	fmt(program, sizeof(program), "%s/program", base);
	fmt(profiles, sizeof(profiles), "%s/tokens.conf", base);
	put(base, "program", "program v1\n", 0755);
	put(base, "tokens.conf", "a * 0 valid\n", 0644);
	in = (tr_fxcache_inputs){ .seed = 42, .cards = 1, .profiles = profiles,
				  .program = program, .revision = "abc", .libraries = "OpenSSL 3" };
	ck_assert_int_eq(tr_fxcache_key(&in, a, sizeof(a)), 0);
	ck_assert_int_eq(strncmp(a, "42-", 3), 0);
	ck_assert_uint_eq(strlen(a), 3 + 32);
	ck_assert_int_eq(tr_fxcache_key(&in, b, sizeof(b)), 0);
	ck_assert_str_eq(a, b); /* deterministic */

#define CHANGED(stmt, undo) do { \
		stmt; \
		ck_assert_int_eq(tr_fxcache_key(&in, b, sizeof(b)), 0); \
		ck_assert_str_ne(a, b); \
		undo; \
	} while (0)
	CHANGED(in.seed = 43, in.seed = 42);
	CHANGED(in.cards = 0, in.cards = 1);
	CHANGED(in.revision = "abd", in.revision = "abc");
	CHANGED(in.libraries = "OpenSSL 3.1", in.libraries = "OpenSSL 3");
	CHANGED(put(base, "tokens.conf", "a * 1 valid\n", 0644),
		put(base, "tokens.conf", "a * 0 valid\n", 0644));
#undef CHANGED
	ck_assert_int_eq(tr_fxcache_key(&in, b, sizeof(b)), 0);
	ck_assert_str_eq(a, b);
	/* A name that does not fit is an error. */
	ck_assert_int_eq(tr_fxcache_key(&in, b, 20), TR_EINVAL);
	in.profiles = "/nonexistent/tokens.conf";
	ck_assert_int_lt(tr_fxcache_key(&in, b, sizeof(b)), 0);
}
END_TEST

START_TEST(store_then_load_copies_and_verifies)
{
	char note[1024], *t;
	struct stat st;
	char path[PATH_MAX];

	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
	ck_assert_str_eq(note, "");
	ck_assert_str_eq(t = get(dst, "pki/suzhou/crl.pem"), "CRL v1\n");
	free(t);
	ck_assert_str_eq(t = get(dst, "softhsm/tokens/b/token.object"), "token b\n");
	free(t);
	ck_assert_str_eq(t = get(dst, "state"), "tokens\n");
	free(t);
	/* Only the parts: the config beside the tokens stays out. */
	ck_assert(!exists(dst, "softhsm/softhsm2.conf"));
	ck_assert(!exists(dst, "absent"));
	/* Modes kept: keys stay 0600. */
	fmt(path, sizeof(path), "%s/pki/suzhou/root.key", dst);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* A copy, never the cache in place: changing the run's leaves the cache's. */
	put(dst, "pki/suzhou/crl.pem", "CRL v2 (a case revoked one)\n", 0644);
	tr_fs_remove_tree(dst);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
	ck_assert_str_eq(t = get(dst, "pki/suzhou/crl.pem"), "CRL v1\n");
	free(t);
	/* No entry: a miss, quietly. */
	ck_assert_int_eq(tr_fxcache_load(root, "8-abc", dst, note, sizeof(note)), TR_ENOTFOUND);
	ck_assert_str_eq(note, "");
}
END_TEST

/* Each way an entry can be damaged is found, said, and the entry dropped. */
static void corrupt_case(int how)
{
	char note[2048], path[PATH_MAX];

	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	switch (how) {
	case 0: /* one byte of one file */
		put(root, "7-abc/softhsm/tokens/a/token.object", "token A\n", 0600);
		break;
	case 1: /* a file gone */
		fmt(path, sizeof(path), "%s/7-abc/state", root);
		unlink(path);
		break;
	case 2: /* the manifest cut (a publish that died half-way) */
		fmt(path, sizeof(path), "%s/7-abc/MANIFEST", root);
		ck_assert_int_eq(truncate(path, 60), 0);
		break;
	case 3: /* the manifest edited but not resealed */
		fmt(path, sizeof(path), "%s/7-abc/MANIFEST", root);
		{
			char *text = NULL;

			ck_assert_int_eq(tr_fs_read_all(path, 1 << 20, &text, NULL), 0);
			*strstr(text, "file ") = 'F';
			ck_assert_int_eq(tr_fs_write_atomic(path, text, strlen(text), 0600), 0);
			free(text);
		}
		break;
	case 4: /* no manifest */
		fmt(path, sizeof(path), "%s/7-abc/MANIFEST", root);
		unlink(path);
		break;
	case 5: /* a manifest naming a path outside the run folder */
		reseal("7-abc", " state\n", " ../escaped\n");
		put(root, "escaped", "x\n", 0600);
		break;
	}
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), TR_EPARSE);
	ck_assert_ptr_nonnull(strstr(note, "corrupt"));
	ck_assert_ptr_nonnull(strstr(note, "discarded, regenerating"));
	ck_assert_ptr_null(strchr(note, '\n')); /* one line */
	if (how == 0)
		ck_assert_ptr_nonnull(strstr(note, "softhsm/tokens/a/token.object"));
	if (how == 1)
		ck_assert_ptr_nonnull(strstr(note, "state is missing"));
	ck_assert(!exists(root, "7-abc"));
	ck_assert(!exists(base, "escaped"));
	/* Gone for good: the next run makes and publishes it anew. */
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), TR_ENOTFOUND);
	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	tr_fs_remove_tree(dst);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
}

START_TEST(corrupt_entries_are_detected_and_discarded)
{
	corrupt_case(_i);
}
END_TEST

START_TEST(old_entries_are_regenerated)
{
	char note[1024], old[64];

	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	{
		char path[PATH_MAX], now[64], *text, *p;

		fmt(path, sizeof(path), "%s/7-abc/MANIFEST", root);
		ck_assert_int_eq(tr_fs_read_all(path, 1 << 20, &text, NULL), 0);
		ck_assert_ptr_nonnull(p = strstr(text, "\ncreated "));
		fmt(now, sizeof(now), "%.*s", (int)strcspn(p + 1, "\n"), p + 1);
		fmt(old, sizeof(old), "created %lld",
			 (long long)time(NULL) - TR_FXCACHE_MAX_AGE_S - 60);
		reseal("7-abc", now, old);
		free(text);
	}
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), TR_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(note, "regenerating"));
	/* Replaced by a new one only when asked to. */
	put(src, "state", "tokens, made again\n", 0600);
	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 1), 0);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
}
END_TEST

START_TEST(publish_keeps_or_replaces)
{
	char note[1024], *t;

	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	put(src, "state", "other tokens\n", 0600);
	/* Another run's entry for the same key stays (replace = 0)... */
	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 0), 0);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
	ck_assert_str_eq(t = get(dst, "state"), "tokens\n");
	free(t);
	/* ...and --fresh replaces it. */
	tr_fs_remove_tree(dst);
	ck_assert_int_eq(tr_fxcache_store(root, "7-abc", src, parts, 1), 0);
	ck_assert_int_eq(tr_fxcache_load(root, "7-abc", dst, note, sizeof(note)), 0);
	ck_assert_str_eq(t = get(dst, "state"), "other tokens\n");
	free(t);
	/* No temporary folder is left in the root. */
	{
		char cmd[PATH_MAX + 64];

		fmt(cmd, sizeof(cmd), "ls -A %s | grep -q '^\\.'", root);
		ck_assert_int_ne(system(cmd), 0);
	}
	/* A name that could leave the root is refused. */
	ck_assert_int_eq(tr_fxcache_store(root, "../x", src, parts, 0), TR_EINVAL);
}
END_TEST

/*
 * Publishers racing on one key while a reader loads it: every load sees a
 * whole entry (one publisher's, every file from the same one) or none,
 * never half of one and never a corrupt one.
 */
START_TEST(concurrent_publish_is_atomic)
{
	enum { WRITERS = 3, ROUNDS = 12 };
	pid_t pids[WRITERS];
	int loads = 0;

	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			char mine[PATH_MAX], text[64];
			int bad = 0;

			fmt(mine, sizeof(mine), "%s/w%d", base, w);
			fmt(text, sizeof(text), "writer %d\n", w);
			for (int f = 0; f < 40; f++) {
				char rel[64];

				fmt(rel, sizeof(rel), "softhsm/tokens/t%d/token.object", f);
				put(mine, rel, text, 0600);
			}
			put(mine, "state", text, 0600);
				for (int r = 0; r < ROUNDS; r++)
				bad |= tr_fxcache_store(root, "7-race", mine, parts, 0) < 0;
			_exit(bad);
		}
	}
	for (int r = 0; r < 4 * ROUNDS; r++) {
		char note[1024], out[PATH_MAX];
		int error;

		fmt(out, sizeof(out), "%s/load%d", base, r);
		error = tr_fxcache_load(root, "7-race", out, note, sizeof(note));
		/* Whole or absent: a half-published entry would be TR_EPARSE. */
		ck_assert_msg(error == 0 || error == TR_ENOTFOUND, "load %d: %s", error, note);
		if (error == 0) {
			char *state = get(out, "state");

			for (int f = 0; f < 40; f++) {
				char rel[64], *t;

				fmt(rel, sizeof(rel), "softhsm/tokens/t%d/token.object", f);
				ck_assert_str_eq(t = get(out, rel), state);
				free(t);
			}
			free(state);
			loads++;
		}
		tr_fs_remove_tree(out);
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;

		ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* Once the writers are done, the entry is whole. */
	{
		char note[1024], out[PATH_MAX];

		fmt(out, sizeof(out), "%s/final", base);
		ck_assert_int_eq(tr_fxcache_load(root, "7-race", out, note, sizeof(note)), 0);
	}
	(void)loads;
}
END_TEST

/* Every rebuild is a new key: publishing keeps the most recently used few. */
START_TEST(publish_prunes_to_the_recent_entries)
{
	char name[32], path[PATH_MAX], note[1024];
	time_t now = time(NULL);

	/* Used minutes ago: none goes. */
	for (int i = 0; i < TR_FXCACHE_KEEP + 4; i++) {
		fmt(name, sizeof(name), "%d-old", i);
		ck_assert_int_eq(tr_fxcache_store(root, name, src, parts, 0), 0);
	}
	for (int i = 0; i < TR_FXCACHE_KEEP + 4; i++) {
		struct timeval tv[2];

		fmt(name, sizeof(name), "%d-old", i);
		ck_assert(exists(root, name));
		/* Last used an hour ago and more, entry 0 the longest ago. */
		fmt(path, sizeof(path), "%s/%s", root, name);
		tv[0].tv_sec = tv[1].tv_sec = now - 7200 + 60 * i;
		tv[0].tv_usec = tv[1].tv_usec = 0;
		ck_assert_int_eq(utimes(path, tv), 0);
	}
	/* A load counts as a use: the oldest entry becomes the most recent. */
	ck_assert_int_eq(tr_fxcache_load(root, "0-old", dst, note, sizeof(note)), 0);
	ck_assert_int_eq(tr_fxcache_store(root, "99-new", src, parts, 0), 0);
	ck_assert(exists(root, "99-new"));
	ck_assert(exists(root, "0-old"));
	for (int i = 1; i < TR_FXCACHE_KEEP + 4; i++) {
		fmt(name, sizeof(name), "%d-old", i);
		/* Kept: the newest TR_FXCACHE_KEEP - 2 besides 0-old and 99-new. */
		ck_assert_int_eq(exists(root, name), i >= 4 + 2);
	}
}
END_TEST

START_TEST(generation_lock_excludes)
{
	int a = -1, b = -1;

	ck_assert_int_eq(tr_fxcache_lock(root, "7-abc", 1000, &a), 0);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(tr_fxcache_lock(root, "7-abc", 100, &b), TR_ETIMEDOUT);
	ck_assert_int_eq(b, -1);
	tr_fxcache_unlock(a);
	ck_assert_int_eq(tr_fxcache_lock(root, "7-abc", 1000, &b), 0);
	tr_fxcache_unlock(b);
}
END_TEST

Suite *fixture_cache_suite(void)
{
	Suite *s = suite_create("fixture_cache");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, root_from_environment);
	tcase_add_test(tc, key_changes_with_every_input);
	tcase_add_test(tc, store_then_load_copies_and_verifies);
	tcase_add_loop_test(tc, corrupt_entries_are_detected_and_discarded, 0, 6);
	tcase_add_test(tc, old_entries_are_regenerated);
	tcase_add_test(tc, publish_keeps_or_replaces);
	tcase_add_test(tc, concurrent_publish_is_atomic);
	tcase_add_test(tc, publish_prunes_to_the_recent_entries);
	tcase_add_test(tc, generation_lock_excludes);
	suite_add_tcase(s, tc);
	return s;
}
