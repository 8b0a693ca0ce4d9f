/*
 * tokenrig-portal --portals suzhou[,...] --pki DIR [--admin] [--ready FILE]
 *                 [--port N] [--die-with-parent]
 *
 * Serves the mock portals over HTTPS on 127.0.0.1, one port per portal
 * (API.md). Exit codes: 0 after SIGTERM/SIGINT, 1 failure, 2 usage error.
 */
#include "portal.h"
#include "portal_server.h"

#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define MAX_PORTALS 8

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tokenrig-portal --portals NAME[,NAME...] --pki DIR\n"
		"                       [--admin] [--ready FILE] [--port N]\n"
		"                       [--die-with-parent]\n"
		"portals:");
	for (const char *const *n = pt_portal_names(); *n; n++)
		fprintf(f, " %s", *n);
	fputc('\n', f);
}

/*
 * Room for every portal's connection limit (pt_server_defaults): the soft
 * descriptor limit up to the hard one. Short of it, connections past the
 * limit are refused by accept(), never the process.
 */
static void raise_fd_limit(void)
{
	struct rlimit r;
	rlim_t want = (rlim_t)MAX_PORTALS * pt_server_defaults.connections + 64;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < want) {
		r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max > want ?
			     want : r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

typedef struct options {
	char *names[MAX_PORTALS];
	size_t count;
	const char *pki;
	const char *ready;
	unsigned port;
	int admin;
	int die_with_parent;
} options;

static int parse_portals(options *o, char *list)
{
	char *save = NULL, *name;
	size_t i;

	for (name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (!pt_portal_known(name)) {
			fprintf(stderr, "tokenrig-portal: unknown portal '%s'\n", name);
			return -1;
		}
		for (i = 0; i < o->count; i++)
			if (strcmp(o->names[i], name) == 0)
				break;
		if (i < o->count)
			continue; /* listed twice: one portal */
		if (o->count == MAX_PORTALS) {
			fprintf(stderr, "tokenrig-portal: too many portals\n");
			return -1;
		}
		o->names[o->count++] = name;
	}
	if (o->count == 0) {
		fprintf(stderr, "tokenrig-portal: --portals is empty\n");
		return -1;
	}
	return 0;
}

static int parse_args(options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "portals", required_argument, NULL, 'P' },
		{ "pki", required_argument, NULL, 'k' },
		{ "admin", no_argument, NULL, 'a' },
		{ "ready", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "die-with-parent", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	unsigned long port;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (parse_portals(o, optarg) < 0)
				return -1;
			break;
		case 'k': o->pki = optarg; break;
		case 'a': o->admin = 1; break;
		case 'r': o->ready = optarg; break;
		case 'd': o->die_with_parent = 1; break;
		case 'p':
			errno = 0;
			port = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || port == 0 ||
			    port > 65535) {
				fprintf(stderr, "tokenrig-portal: bad port '%s'\n", optarg);
				return -1;
			}
			o->port = (unsigned)port;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tokenrig-portal: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (!o->count || !o->pki) {
		fprintf(stderr, "tokenrig-portal: --portals and --pki are required\n");
		return -1;
	}
	return 0;
}

/* A readable folder, so that a wrong --pki fails with one clear line. */
static int check_pki(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return tr_error_set(TR_EIO, "PKI folder %s: %s", dir,
				    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tr_error_set(TR_EINVAL, "PKI folder %s is not a folder", dir);
	return 0;
}

static int write_ready(const char *path, options *o, pt_server **servers)
{
	json_t *obj = json_object();
	char url[64], *text = NULL;
	size_t i;
	int err;

	for (i = 0; obj && i < o->count; i++) {
		snprintf(url, sizeof(url), "https://127.0.0.1:%u",
			 pt_server_port(servers[i]));
		json_object_set_new(obj, o->names[i], json_string(url));
	}
	if (!obj || !(text = json_dumps(obj, JSON_COMPACT))) {
		json_decref(obj);
		return tr_error_set(TR_ENOMEM, "ready file");
	}
	json_decref(obj);
	err = tr_fs_write_atomic(path, text, strlen(text), 0644);
	free(text);
	return err;
}

int main(int argc, char **argv)
{
	pt_portal *portals[MAX_PORTALS] = { 0 };
	pt_server *servers[MAX_PORTALS] = { 0 };
	char key[4096], cert[4096], tls[4096];
	options o;
	sigset_t set;
	pid_t parent = getppid();
	size_t i;
	int sig = 0, rc = 1;

	memset(&o, 0, sizeof(o));
	if (parse_args(&o, argc, argv) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}

	if (o.die_with_parent) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
			perror("tokenrig-portal: prctl");
			return 1;
		}
		/* The parent may have died before prctl: nobody would tell. */
		if (getppid() != parent)
			return 0;
	}

	/* Blocked before any thread starts, so that every thread inherits
	 * the mask and only sigwait() below sees these signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	if (check_pki(o.pki) < 0 ||
	    tr_fs_join(tls, sizeof(tls), o.pki, "tls") < 0 ||
	    tr_fs_join(key, sizeof(key), tls, "server.key") < 0 ||
	    tr_fs_join(cert, sizeof(cert), tls, "server.pem") < 0) {
		fprintf(stderr, "tokenrig-portal: %s\n", tr_error_last());
		return 1;
	}

	for (i = 0; i < o.count; i++) {
		unsigned port = o.port ? o.port + (unsigned)i : 0;

		if (pt_portal_new(&portals[i], o.names[i], o.pki, o.admin) < 0 ||
		    pt_server_start(&servers[i], portals[i], port, key, cert) < 0) {
			fprintf(stderr, "tokenrig-portal: %s\n", tr_error_last());
			goto out;
		}
		fprintf(stderr, "tokenrig-portal: %s on https://127.0.0.1:%u%s\n",
			o.names[i], pt_server_port(servers[i]),
			o.admin ? " (admin routes on)" : "");
	}
	if (o.ready && write_ready(o.ready, &o, servers) < 0) {
		fprintf(stderr, "tokenrig-portal: ready file %s: %s\n", o.ready,
			tr_error_last());
		goto out;
	}

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		/* SIGHUP: nothing to reload; keep serving. */
	}
	fprintf(stderr, "tokenrig-portal: signal %d, stopping\n", sig);
	rc = 0;
out:
	for (i = 0; i < o.count; i++) {
		pt_server_stop(servers[i]);
		pt_portal_free(portals[i]);
	}
	return rc;
}
