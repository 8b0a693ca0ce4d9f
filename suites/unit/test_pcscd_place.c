/*
 * Where the rig's pcscd may serve without a mount namespace: the standard
 * socket only when nobody has it (vc_pcscd_std_free), tried on a socket in
 * a folder of the test, never on /run/pcscd.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "emulators/vcard/pcscd.h"

static char dir[PATH_MAX], sock[PATH_MAX];
static char name[16]; /* a process name nobody else has: comm holds 15 bytes */

/* A path, or the test fails rather than cut it. */
#define fmt(buf, len, ...) ck_assert_int_eq(tr_fs_pathf(buf, len, __VA_ARGS__), 0)

static void setup(void)
{
	fmt(dir, sizeof(dir), "/tmp/tr-pcscd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	fmt(sock, sizeof(sock), "%s/pcscd.comm", dir);
	fmt(name, sizeof(name), "trpc%ld", (long)getpid() % 100000000);
}

static void teardown(void)
{
	tr_fs_remove_tree(dir);
}

/* A socket listening on path; the fd, to close. */
static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	fmt(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

START_TEST(no_socket_is_free)
{
	char why[512];

	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 1);
}
END_TEST

START_TEST(a_listener_takes_it)
{
	char why[512];
	int fd = listen_on(sock);

	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "something listens on"));
	/* Closed, the file stays: a leftover nobody answers, which pcscd replaces. */
	close(fd);
	ck_assert_int_eq(access(sock, F_OK), 0);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 1);
}
END_TEST

START_TEST(another_file_takes_it)
{
	char why[512];

	ck_assert_int_eq(tr_fs_write_atomic(sock, "x", 1, 0644), 0);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "not a socket"));
}
END_TEST

START_TEST(a_live_pid_file_takes_it)
{
	char why[512], pidfile[PATH_MAX], text[32];

	fmt(pidfile, sizeof(pidfile), "%s/pcscd.pid", dir);
	fmt(text, sizeof(text), "%ld\n", (long)getpid());
	ck_assert_int_eq(tr_fs_write_atomic(pidfile, text, strlen(text), 0644), 0);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "which is alive"));
	/* A dead daemon's pid file is no claim. */
	fmt(text, sizeof(text), "%d\n", 0x3ffffff);
	ck_assert_int_eq(tr_fs_write_atomic(pidfile, text, strlen(text), 0644), 0);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 1);
}
END_TEST

/* A child whose process name is name: a copy of /bin/sleep under that name. */
static pid_t start_named(const char *seconds)
{
	char prog[PATH_MAX], *data = NULL;
	size_t len = 0;
	pid_t pid;

	fmt(prog, sizeof(prog), "%s/%s", dir, name);
	if (access(prog, X_OK) != 0) {
		ck_assert_int_eq(tr_fs_read_all("/bin/sleep", 16 << 20, &data, &len), 0);
		ck_assert_int_eq(tr_fs_write_atomic(prog, data, len, 0755), 0);
		free(data);
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(prog, name, seconds, (char *)NULL);
		_exit(127);
	}
	return pid;
}

START_TEST(a_daemon_process_takes_it)
{
	char why[512], expect[64];
	pid_t pid = start_named("30");
	int status, i;

	/* Polls until the exec has renamed the child (it is our fork until then). */
	for (i = 0; i < 200 && vc_pcscd_std_free(sock, name, why, sizeof(why)); i++)
		usleep(10000);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 0);
	fmt(expect, sizeof(expect), "(PID %ld) runs in this mount namespace", (long)pid);
	ck_assert_ptr_nonnull(strstr(why, expect));
	kill(pid, SIGKILL);
	/* Dead but not reaped, a zombie holds no socket. */
	for (i = 0; i < 200; i++) {
		char path[64], text[256], *p;
		FILE *f;

		fmt(path, sizeof(path), "/proc/%ld/stat", (long)pid);
		if ((f = fopen(path, "r")) && fgets(text, sizeof(text), f) &&
		    (p = strrchr(text, ')')) && p[2] == 'Z') {
			fclose(f);
			break;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	ck_assert_int_lt(i, 200);
	ck_assert_int_eq(vc_pcscd_std_free(sock, name, why, sizeof(why)), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

Suite *pcscd_place_suite(void)
{
	Suite *s = suite_create("pcscd_place");
	TCase *tc = tcase_create("place");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, no_socket_is_free);
	tcase_add_test(tc, a_listener_takes_it);
	tcase_add_test(tc, another_file_takes_it);
	tcase_add_test(tc, a_live_pid_file_takes_it);
	tcase_add_test(tc, a_daemon_process_takes_it);
	suite_add_tcase(s, tc);
	return s;
}
