/*
 * tokenrig-vcard: a virtual PIV card for vpcd (see README.md).
 *
 *   tokenrig-vcard provision --image FILE --pki DIR --province P --index N
 *                  --alg rsa2048|p256|sm2 [--profile blue|silver] [--pin P]
 *                  [--puk U] [--tries N] [--seed S]
 *   tokenrig-vcard serve --image FILE --port P [--control PATH] [--removed]
 *                  [--listen]
 *   tokenrig-vcard ctl CONTROL-PATH COMMAND [ARGS...]
 *   tokenrig-vcard pcscd --dir DIR --base-port P --cards N
 *       (the rig's private pcscd in the foreground until SIGTERM; writes
 *        DIR/pcscd.env with PCSCLITE_CSOCK_NAME once it answers)
 *   tokenrig-vcard wait --readers N --cards N [--timeout MS]
 *   tokenrig-vcard bench --reader NAME [--iterations N]  (TOKENRIG_VCARD_PIN)
 *
 * Exit codes: 0 done, 1 failure, 2 usage error.
 */
#include "common/error.h"
#include "common/fsutil.h"
#include "emulators/vcard/vc_bench.h"
#include "emulators/vcard/pcscd.h"
#include "emulators/vcard/vc_provision.h"
#include "emulators/vcard/vc_server.h"
#include "common/proc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

/* Sleeps until any signal arrives (SIGTERM sets stop). */
static void pause_until_signal(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000000L };

	/* Also wakes to notice a pcscd that died on its own. */
	nanosleep(&ts, NULL);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tokenrig-vcard provision --image FILE --pki DIR --province P --index N\n"
		"                      --alg rsa2048|p256|sm2 [--profile blue|silver] [--pin P]\n"
		"                      [--puk U] [--tries N] [--seed S]\n"
		"       tokenrig-vcard serve --image FILE --port P [--control PATH] [--removed]\n                      [--listen]\n"
		"       tokenrig-vcard ctl CONTROL-PATH COMMAND [ARGS...]\n"
		"       tokenrig-vcard pcscd --dir DIR --base-port P --cards N\n"
		"       tokenrig-vcard wait --readers N --cards N [--timeout MS]\n"
		"       tokenrig-vcard bench --reader NAME [--iterations N]\n"
		"       tokenrig-vcard free-ports N     (prints the first of N free vpcd ports)\n");
}

static int parse_ul(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || *out > max ? -1 : 0;
}

static int cmd_provision(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "pki", required_argument, NULL, 'k' },
		{ "province", required_argument, NULL, 'P' },
		{ "index", required_argument, NULL, 'n' },
		{ "alg", required_argument, NULL, 'a' },
		{ "profile", required_argument, NULL, 'f' },
		{ "pin", required_argument, NULL, 'p' },
		{ "puk", required_argument, NULL, 'u' },
		{ "tries", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	vc_provision_opts o = { .seed = 1, .profile = -1, .variant = FX_VARIANT_VALID };
	const char *pki_dir = NULL, *alg = NULL;
	unsigned long long v;
	char probe[4096];
	struct stat st;
	fx_pki *pki = NULL;
	vc_profile profile;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.image_path = optarg; break;
		case 'k': pki_dir = optarg; break;
		case 'P': o.province = optarg; break;
		case 'a': alg = optarg; break;
		case 'p': o.pin = optarg; break;
		case 'u': o.puk = optarg; break;
		case 'n':
			if (parse_ul(optarg, 1000000, &v) < 0)
				goto bad;
			o.index = (unsigned)v;
			break;
		case 't':
			if (parse_ul(optarg, VC_TRIES_MAX, &v) < 0 || v == 0)
				goto bad;
			o.tries = (unsigned)v;
			break;
		case 's':
			if (parse_ul(optarg, (1ULL << 63) - 1, &v) < 0)
				goto bad;
			o.seed = v;
			break;
		case 'f':
			if (vc_profile_from_name(optarg, &profile) < 0)
				goto bad;
			o.profile = (int)profile;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc || !o.image_path || !pki_dir || !o.province || !alg)
		goto bad;
	if (strcmp(alg, "rsa2048") == 0)
		o.alg = FX_KEY_RSA_2048;
	else if (strcmp(alg, "p256") == 0)
		o.alg = FX_KEY_EC_P256;
	else if (strcmp(alg, "sm2") == 0)
		o.alg = FX_KEY_SM2;
	else
		goto bad;

	/* A folder without a PKI gets a fresh one, as tokenrig-fixtures would. */
	snprintf(probe, sizeof(probe), "%s/%s/issuing.pem", pki_dir, o.province);
	if (stat(probe, &st) == 0)
		error = fx_pki_open(&pki, pki_dir);
	else
		error = fx_pki_create(&pki, pki_dir, time(NULL));
	if (error < 0 || (error = vc_provision(pki, &o, NULL)) < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		fx_pki_free(pki);
		return 1;
	}
	fx_pki_free(pki);
	return 0;
bad:
	usage();
	return 2;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "control", required_argument, NULL, 'c' },
		{ "removed", no_argument, NULL, 'r' },
		{ "listen", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 }
	};
	vc_server_opts o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned long long v;
	vc_server *srv = NULL;
	int c, error;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.image_path = optarg; break;
		case 'c': o.control_path = optarg; break;
		case 'r': o.start_removed = 1; break;
		case 'l': o.listen_mode = 1; break;
		case 'p':
			if (parse_ul(optarg, 65535, &v) < 0 || v == 0)
				goto bad;
			o.port = (unsigned short)v;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc || !o.image_path || !o.port)
		goto bad;
	/* No SA_RESTART: a signal must wake poll() up. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((error = vc_server_open(&srv, &o)) < 0 ||
	    (error = vc_server_run(srv, &stop)) < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		vc_server_free(srv);
		return 1;
	}
	vc_server_free(srv);
	return 0;
bad:
	usage();
	return 2;
}

static int cmd_ctl(int argc, char **argv)
{
	char line[512], reply[2048];
	size_t off = 0;

	if (argc < 3) {
		usage();
		return 2;
	}
	line[0] = '\0';
	for (int i = 2; i < argc; i++) {
		int n = snprintf(line + off, sizeof(line) - off, "%s%s", i > 2 ? " " : "",
				 argv[i]);

		if (n < 0 || (size_t)n >= sizeof(line) - off) {
			fprintf(stderr, "tokenrig-vcard: command too long\n");
			return 2;
		}
		off += (size_t)n;
	}
	if (vc_control_send(argv[1], line, reply, sizeof(reply), 5000) < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		return 1;
	}
	printf("%s\n", reply);
	return strncmp(reply, "ok", 2) == 0 ? 0 : 1;
}

static int cmd_pcscd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "base-port", required_argument, NULL, 'p' },
		{ "cards", required_argument, NULL, 'n' },
		{ "debug", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	const char *dir = NULL;
	char log[4200], envf[4200], line[4400];
	unsigned long long port = 0, cards = 0;
	vc_pcscd_opts o = { .die_with_parent = 1 };
	vc_pcscd *p = NULL;
	int c, error, n;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'D': o.debug = 1; break;
		case 'p':
			if (parse_ul(optarg, 65535, &port) < 0)
				goto bad;
			break;
		case 'n':
			if (parse_ul(optarg, VC_PCSCD_MAX_CARDS, &cards) < 0 || !cards)
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc || !dir || !port || !cards)
		goto bad;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	snprintf(log, sizeof(log), "%s/pcscd.log", dir);
	snprintf(envf, sizeof(envf), "%s/pcscd.env", dir);
	o.run_dir = dir;
	o.log_path = log;
	if ((error = tr_fs_mkdirs(dir, 0700)) < 0 ||
	    (error = vc_pcscd_write_conf(dir, (unsigned short)port, (unsigned)cards)) < 0 ||
	    (error = vc_pcscd_start(&p, &o)) < 0)
		goto fail;
	/* Ready = answers with all readers; cards may come later. */
	if ((error = vc_pcscd_wait_ready((unsigned)((cards + 1) / 2 * 2), 0, 10000)) < 0)
		goto fail;
	n = snprintf(line, sizeof(line), "PCSCLITE_CSOCK_NAME=%s\nPCSCD_PID=%ld\n",
		     vc_pcscd_socket(p), (long)vc_pcscd_pid(p));
	if ((error = tr_fs_write_atomic(envf, line, (size_t)n, 0644)) < 0)
		goto fail;
	/* Foreground until told to stop; pcscd dies with us (PDEATHSIG). */
	while (!stop && tr_proc_alive(vc_pcscd_pid(p)))
		pause_until_signal();
	vc_pcscd_stop(p, 3000);
	unlink(envf);
	return 0;
fail:
	fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
	vc_pcscd_stop(p, 3000);
	return 1;
bad:
	usage();
	return 2;
}

static int cmd_wait(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "readers", required_argument, NULL, 'r' },
		{ "cards", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long readers = 0, cards = 0, timeout = 10000;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		unsigned long long *dst = c == 'r' ? &readers : c == 'c' ? &cards :
					  c == 't' ? &timeout : NULL;

		if (!dst || parse_ul(optarg, 600000, dst) < 0)
			goto bad;
	}
	if (optind != argc)
		goto bad;
	if (vc_pcscd_wait_ready((unsigned)readers, (unsigned)cards, (unsigned)timeout) < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		return 1;
	}
	return 0;
bad:
	usage();
	return 2;
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reader", required_argument, NULL, 'r' },
		{ "iterations", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	const char *reader = NULL;
	unsigned long long n = 1000;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'r')
			reader = optarg;
		else if (c != 'n' || parse_ul(optarg, 10000000, &n) < 0 || !n)
			goto bad;
	}
	if (optind != argc || !reader)
		goto bad;
	rc = tr_bench_vcard(reader, stdout, (unsigned)n);
	if (rc < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		return 1;
	}
	return rc;
bad:
	usage();
	return 2;
}

/* For scripts: fixed ports would sit where any connection may hold one. */
static int cmd_free_ports(int argc, char **argv)
{
	unsigned long long n;
	unsigned short base;

	if (argc != 2 || parse_ul(argv[1], 64, &n) < 0 || !n) {
		usage();
		return 2;
	}
	if (vc_pcscd_free_ports((unsigned)n, &base) < 0) {
		fprintf(stderr, "tokenrig-vcard: %s\n", tr_error_last());
		return 1;
	}
	printf("%u\n", (unsigned)base);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "provision") == 0)
		return cmd_provision(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "ctl") == 0)
		return cmd_ctl(argc - 1, argv + 1);
	if (strcmp(argv[1], "pcscd") == 0)
		return cmd_pcscd(argc - 1, argv + 1);
	if (strcmp(argv[1], "wait") == 0)
		return cmd_wait(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return cmd_bench(argc - 1, argv + 1);
	if (strcmp(argv[1], "free-ports") == 0)
		return cmd_free_ports(argc - 1, argv + 1);
	usage();
	return 2;
}
