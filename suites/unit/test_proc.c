/*
 * common/proc: a child that could not start is an error naming the step
 * (pre_exec or exec), never a PID of a process that silently exited.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/proc.h"

static int refuse(void *arg, const char **step)
{
	*step = "the test's refusal";
	errno = *(int *)arg;
	return -1;
}

static int accept_it(void *arg, const char **step)
{
	*step = "nothing";
	return 0;
}

START_TEST(pre_exec_failure_is_reported)
{
	char *argv[] = { "/bin/true", NULL };
	int err = EPERM;
	tr_proc_opts o = { .pre_exec = refuse, .pre_exec_arg = &err };
	pid_t pid = 0;

	ck_assert_int_eq(tr_proc_spawn(&pid, argv, &o), TR_EIO);
	ck_assert_int_eq(pid, 0);
	ck_assert_msg(strstr(tr_error_last(), "the test's refusal: Operation not permitted"),
		      "%s", tr_error_last());
	/* Reaped: no child of ours is left. */
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(exec_failure_is_reported)
{
	char path[] = "/tmp/tokenrig-proc-test-XXXXXX";
	int fd = mkstemp(path);
	char *argv[] = { path, NULL };
	pid_t pid = 0;

	/* Executable, but not a program the kernel can run. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "\x7f" "ELF garbage", 12), 12);
	close(fd);
	ck_assert_int_eq(chmod(path, 0700), 0);
	ck_assert_int_eq(tr_proc_spawn(&pid, argv, NULL), TR_EDEPEND);
	ck_assert_msg(strstr(tr_error_last(), "exec ") && strstr(tr_error_last(), path),
		      "%s", tr_error_last());
	unlink(path);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
}
END_TEST

START_TEST(a_started_child_runs)
{
	char *argv[] = { "/bin/sh", "-c", "exit 7", NULL };
	tr_proc_opts o = { .pre_exec = accept_it };
	pid_t pid = 0;
	int status = 0;

	ck_assert_int_eq(tr_proc_spawn(&pid, argv, &o), 0);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}
END_TEST

Suite *proc_suite(void)
{
	Suite *s = suite_create("proc");
	TCase *tc = tcase_create("spawn");

	tcase_add_test(tc, pre_exec_failure_is_reported);
	tcase_add_test(tc, exec_failure_is_reported);
	tcase_add_test(tc, a_started_child_runs);
	suite_add_tcase(s, tc);
	return s;
}
