/* The portal client gives up within its timeout, whatever the server does. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "harness/portal_client.h"

/* A listener that accepts (through the backlog) but never answers. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

START_TEST(silent_server_times_out)
{
	tr_portal_client *pc;
	tr_http_answer ans;
	char url[64];
	int port, fd = silent_listener(&port);
	uint64_t start;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	/* any readable CA file: the handshake never gets that far */
	ck_assert_int_eq(tr_portal_client_new(&pc, url, "/etc/ssl/certs/ca-certificates.crt", 300), 0);
	start = tr_clock_ns();
	ck_assert_msg(tr_portal_client_request(pc, "GET", "/", NULL, NULL, 0, &ans) == TR_ETIMEDOUT, "%s", tr_error_last());
	ck_assert_uint_lt(tr_clock_ns() - start, 3000000000ull);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), url));
	tr_portal_client_free(pc);
	close(fd);
}
END_TEST

START_TEST(closed_port_fails_fast)
{
	tr_portal_client *pc;
	tr_http_answer ans;
	char url[64];
	int port, fd = silent_listener(&port);

	close(fd); /* nobody listens there now */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
	ck_assert_int_eq(tr_portal_client_new(&pc, url, "/dev/null", 2000), 0);
	ck_assert_int_eq(tr_portal_client_request(pc, "POST", "/x", "s", "{}", 2, &ans), TR_EIO);
	tr_portal_client_free(pc);
}
END_TEST

Suite *portal_client_suite(void)
{
	Suite *s = suite_create("portal_client");
	TCase *tc = tcase_create("timeouts");

	tcase_add_test(tc, silent_server_times_out);
	tcase_add_test(tc, closed_port_fails_fast);
	suite_add_tcase(s, tc);
	return s;
}
