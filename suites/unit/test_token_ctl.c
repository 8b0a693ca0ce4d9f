/*
 * The token controls' file: a reset writes the base once, later resets
 * with nothing set in between leave it alone (only the PIN counters go),
 * and anything else (a control set, the file changed by someone else) is
 * written again.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "harness/token_ctl.h"

#define TEMPLATE "/tmp/tokenrig-ctl-test-XXXXXX"
#define BASE "module = /nonexistent/softhsm.so\nstate = p11shim.state\n"

static char dir[] = TEMPLATE;
static char conf[4096], state[4096];
static tr_token_ctl *ctl;

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/p11shim.conf", dir);
	snprintf(state, sizeof(state), "%s/p11shim.state", dir);
	/* No interposer here: nothing to tell or to hold, the file is all. */
	ck_assert_int_eq(tr_token_ctl_new(&ctl, "/nonexistent/tokenrig-p11shim.so", conf, BASE), 0);
}

static void teardown(void)
{
	tr_token_ctl_free(ctl);
	ctl = NULL;
	tr_fs_remove_tree(dir);
	strcpy(dir, TEMPLATE);
}

static char *text(void)
{
	char *t = NULL;
	size_t len;

	ck_assert_int_eq(tr_fs_read_all(conf, 1 << 16, &t, &len), 0);
	return t;
}

static ino_t inode(void)
{
	struct stat st;

	ck_assert_int_eq(stat(conf, &st), 0);
	return st.st_ino;
}

static void touch_state(void)
{
	ck_assert_int_eq(tr_fs_write_atomic(state, "x 1\n", 4, 0644), 0);
}

START_TEST(reset_writes_base_once)
{
	char *t;
	ino_t first;

	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
	first = inode();
	/* Counters of a case: gone at the next reset, the file untouched. */
	touch_state();
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert_int_eq(access(state, F_OK), -1);
	ck_assert(inode() == first);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert(inode() == first);
}
END_TEST

START_TEST(control_then_reset_writes_base)
{
	char *t;

	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert_int_eq(tr_token_ctl_set(ctl, "suzhou-a-p256", "present", "no"), 0);
	t = text();
	ck_assert_ptr_nonnull(strstr(t, "token.suzhou-a-p256.present = no"));
	free(t);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
	/* A control set and reset in one case, then a case with none. */
	ck_assert_int_eq(tr_token_ctl_set(ctl, "x", "latency", "C_Sign fixed 1ms"), 0);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
}
END_TEST

/* The file changed behind the controls' back: the base goes in again. */
START_TEST(foreign_change_is_overwritten)
{
	char *t;

	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert_int_eq(tr_fs_write_atomic(conf, "module = /other.so\n", 19, 0644), 0);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
	ck_assert_int_eq(unlink(conf), 0);
	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
}
END_TEST

/* A failed control leaves no half-written file (atomic rename). */
START_TEST(unknown_control_changes_nothing)
{
	char *t;

	ck_assert_int_eq(tr_token_ctl_reset(ctl), 0);
	ck_assert_int_lt(tr_token_ctl_set(ctl, "x", "colour", "blue"), 0);
	t = text();
	ck_assert_str_eq(t, BASE);
	free(t);
}
END_TEST

Suite *token_ctl_suite(void)
{
	Suite *s = suite_create("token_ctl");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, reset_writes_base_once);
	tcase_add_test(tc, control_then_reset_writes_base);
	tcase_add_test(tc, foreign_change_is_overwritten);
	tcase_add_test(tc, unknown_control_changes_nothing);
	suite_add_tcase(s, tc);
	return s;
}
