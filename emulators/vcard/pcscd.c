#define _GNU_SOURCE
#include "emulators/vcard/pcscd.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <winscard.h>

/* vpcd listens on every interface: ports clear of its default 35963. */
#define PORT_LOW 36200
#define PORT_SPAN 20000

/* 1 when nobody listens on port (bound the way vpcd binds it: any address). */
static int port_free(unsigned short port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int vc_pcscd_free_ports(unsigned n, unsigned short *base)
{
	unsigned start = PORT_LOW + ((unsigned)getpid() * 37u) % PORT_SPAN;

	for (unsigned tries = 0; tries < 200; tries++) {
		unsigned b = PORT_LOW + (start - PORT_LOW + tries * 97u) % PORT_SPAN, i;

		for (i = 0; i < n && port_free((unsigned short)(b + i)); i++)
			;
		if (i == n) {
			*base = (unsigned short)b;
			return 0;
		}
	}
	return tr_error_set(TR_EIO, "no %u free TCP ports for the card readers", n);
}

struct vc_pcscd {
	pid_t pid;
	char sock_dir[4096];
	char sock[4200];
};

int vc_pcscd_reader_name(unsigned card, char *buf, size_t len)
{
	int n = snprintf(buf, len, "tokenrig vpcd %u 00 %02u", card / 2, card % 2);

	if (n < 0 || (size_t)n >= len)
		return tr_error_set(TR_EINVAL, "reader name buffer too small");
	return 0;
}

/* A private copy of the vpcd driver: its statics are per loaded file. */
static int copy_driver(const char *dst)
{
	char *data = NULL;
	size_t len = 0;
	int error;

	if ((error = tr_fs_read_all(VC_VPCD_DRIVER, 16 * 1024 * 1024, &data, &len)) < 0)
		return tr_error_set(TR_EDEPEND, "%s (apt-get install vsmartcard-vpcd)",
				    tr_error_last());
	error = tr_fs_write_atomic(dst, data, len, 0755);
	free(data);
	return error;
}

int vc_pcscd_write_conf(const char *run_dir, unsigned short base_port,
			unsigned ncards)
{
	char confdir[4200], libdir[4200], lib[4300], path[4300], text[5000];
	int error, n;

	if (ncards == 0 || ncards > VC_PCSCD_MAX_CARDS)
		return tr_error_set(TR_EINVAL, "%u cards: pcsc-lite handles 1..%d readers",
				    ncards, VC_PCSCD_MAX_CARDS);
	if ((unsigned)base_port + ncards > 65535 || base_port < 1024)
		return tr_error_set(TR_EINVAL, "ports %u..%u out of range", base_port,
				    base_port + ncards - 1);
	if ((error = tr_fs_join(confdir, sizeof(confdir), run_dir, "reader.conf.d")) < 0 ||
	    (error = tr_fs_join(libdir, sizeof(libdir), run_dir, "vpcd")) < 0 ||
	    (error = tr_fs_mkdirs(confdir, 0700)) < 0 ||
	    (error = tr_fs_mkdirs(libdir, 0700)) < 0)
		return error;
	for (unsigned e = 0; e < (ncards + 1) / 2; e++) {
		unsigned port = base_port + 2 * e;

		snprintf(lib, sizeof(lib), "%s/libifdvpcd-%u.so", libdir, e);
		if ((error = copy_driver(lib)) < 0)
			return error;

		/* /dev/null: vpcd listens; the card dials 127.0.0.1:PORT(+1). */
		n = snprintf(text, sizeof(text),
			     "# written by tokenrig: slots on ports %u and %u\n"
			     "FRIENDLYNAME \"tokenrig vpcd %u\"\n"
			     "DEVICENAME   /dev/null:%u\n"
			     "LIBPATH      %s\n"
			     "CHANNELID    %u\n", port, port + 1, e, port, lib, port);
		if (n < 0 || (size_t)n >= sizeof(text))
			return tr_error_set(TR_EINVAL, "reader.conf entry too long");
		snprintf(path, sizeof(path), "%s/tokenrig-vpcd-%u", confdir, e);
		if ((error = tr_fs_write_atomic(path, text, (size_t)n, 0644)) < 0)
			return error;
	}
	return 0;
}

/* In the child: namespace, mounts, exec. Errors go up the pipe. */
static void child(int errfd, const vc_pcscd *p, const vc_pcscd_opts *opts,
		  const char *confdir)
{
	char msg[512];
	int fd, n;
	const char *step;

	if (opts->die_with_parent)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) != 0)
		goto fail;
	step = "mount --make-rprivate /";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		goto fail;
	step = "bind mount over /run/pcscd";
	if (mount(p->sock_dir, "/run/pcscd", NULL, MS_BIND, NULL) != 0)
		goto fail;
	fd = open(opts->log_path ? opts->log_path : "/dev/null",
		  O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	step = "exec " VC_PCSCD_PATH;
	if (opts->debug)
		execl(VC_PCSCD_PATH, "pcscd", "-f", "-d", "-a", "-c", confdir,
		      (char *)NULL);
	else
		execl(VC_PCSCD_PATH, "pcscd", "-f", "-c", confdir, (char *)NULL);
fail:
	n = snprintf(msg, sizeof(msg), "%s: %s", step, strerror(errno));
	if (n > 0 && write(errfd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(127);
}

int vc_pcscd_start(vc_pcscd **out, const vc_pcscd_opts *opts)
{
	vc_pcscd *p = NULL;
	char msg[512], stale[4300], confdir[4200];
	int pipefd[2] = { -1, -1 }, error = 0;
	ssize_t n;

	if (!opts || !opts->run_dir)
		return tr_error_set(TR_EINVAL, "vc_pcscd_start: run_dir needed");
	if ((error = tr_fs_join(confdir, sizeof(confdir), opts->run_dir, "reader.conf.d")) < 0)
		return error;
	if (geteuid() != 0)
		return tr_error_set(TR_EDEPEND,
				    "the rig's pcscd needs root: pcsc-lite 1.9.9 always serves "
				    "/run/pcscd/pcscd.comm, so it runs in a private mount namespace "
				    "(unshare + bind mount). Run as root (or in a container with "
				    "CAP_SYS_ADMIN)");
	if (access(VC_PCSCD_PATH, X_OK) != 0 || access(VC_VPCD_DRIVER, R_OK) != 0)
		return tr_error_set(TR_EDEPEND, "%s or %s missing: apt-get install pcscd "
				    "vsmartcard-vpcd", VC_PCSCD_PATH, VC_VPCD_DRIVER);
	if (!(p = calloc(1, sizeof(*p))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_fs_join(p->sock_dir, sizeof(p->sock_dir), opts->run_dir, "pcscd")) < 0 ||
	    (error = tr_fs_join(p->sock, sizeof(p->sock), p->sock_dir, "pcscd.comm")) < 0 ||
	    (error = tr_fs_mkdirs(p->sock_dir, 0755)) < 0)
		goto out;
	/* A killed daemon leaves its pid file: pcscd would refuse to start. */
	snprintf(stale, sizeof(stale), "%s/pcscd.pid", p->sock_dir);
	unlink(stale);
	unlink(p->sock);
	/* The mount point; pcscd itself creates it on a normal system. */
	if (mkdir("/run/pcscd", 0755) != 0 && errno != EEXIST) {
		error = tr_error_set(TR_EIO, "mkdir /run/pcscd: %s", strerror(errno));
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		error = tr_error_set(TR_EIO, "pipe: %s", strerror(errno));
		goto out;
	}
	p->pid = fork();
	if (p->pid < 0) {
		error = tr_error_set(TR_EIO, "fork: %s", strerror(errno));
		goto out;
	}
	if (p->pid == 0)
		child(pipefd[1], p, opts, confdir);
	close(pipefd[1]);
	pipefd[1] = -1;
	/* EOF without a message: exec succeeded (the pipe is close-on-exec). */
	while ((n = read(pipefd[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
		;
	if (n > 0) {
		msg[n] = '\0';
		tr_proc_stop(p->pid, 1000);
		error = tr_error_set(TR_EDEPEND, "starting the rig's pcscd: %s (needs root "
				     "with CAP_SYS_ADMIN: unshare(CLONE_NEWNS) and mount)", msg);
		goto out;
	}
	setenv("PCSCLITE_CSOCK_NAME", p->sock, 1);
	*out = p;
	p = NULL;
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(p);
	return error;
}

const char *vc_pcscd_socket(const vc_pcscd *pcscd) { return pcscd->sock; }
pid_t vc_pcscd_pid(const vc_pcscd *pcscd) { return pcscd->pid; }

/* Readers listed and cards present right now; -1 when pcscd is not up. */
static int probe(unsigned *readers, unsigned *cards)
{
	SCARDCONTEXT ctx;
	SCARD_READERSTATE states[VC_PCSCD_MAX_CARDS];
	DWORD len = 0;
	char *names = NULL, *p;
	unsigned n = 0;
	LONG rv;

	*readers = *cards = 0;
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS)
		return -1;
	rv = SCardListReaders(ctx, NULL, NULL, &len);
	if (rv == SCARD_S_SUCCESS && len > 0 && (names = malloc(len)) &&
	    SCardListReaders(ctx, NULL, names, &len) == SCARD_S_SUCCESS) {
		for (p = names; *p && n < VC_PCSCD_MAX_CARDS; p += strlen(p) + 1) {
			states[n] = (SCARD_READERSTATE){ .szReader = p,
							 .dwCurrentState = SCARD_STATE_UNAWARE };
			n++;
		}
		*readers = n;
		if (n && SCardGetStatusChange(ctx, 0, states, n) == SCARD_S_SUCCESS)
			for (unsigned i = 0; i < n; i++)
				if (states[i].dwEventState & SCARD_STATE_PRESENT)
					(*cards)++;
	}
	free(names);
	SCardReleaseContext(ctx);
	return 0;
}

int vc_pcscd_wait_ready(unsigned readers, unsigned cards, unsigned timeout_ms)
{
	uint64_t deadline = tr_deadline_after_ms(timeout_ms);
	unsigned r = 0, c = 0;
	int up = -1;

	if (!getenv("PCSCLITE_CSOCK_NAME"))
		return tr_error_set(TR_EINVAL, "PCSCLITE_CSOCK_NAME not set: the rig's pcscd "
				    "would not be the one asked");
	for (;;) {
		up = probe(&r, &c);
		if (up == 0 && r >= readers && c >= cards)
			return 0;
		if (tr_deadline_passed(deadline))
			break;
		tr_poll_pause(deadline, 20);
	}
	if (up < 0)
		return tr_error_set(TR_ETIMEDOUT, "pcscd at %s did not answer within %u ms",
				    getenv("PCSCLITE_CSOCK_NAME"), timeout_ms);
	return tr_error_set(TR_ETIMEDOUT, "after %u ms: %u of %u readers, %u of %u cards",
			    timeout_ms, r, readers, c, cards);
}

void vc_pcscd_release(vc_pcscd *pcscd)
{
	free(pcscd);
}

int vc_pcscd_stop(vc_pcscd *pcscd, unsigned timeout_ms)
{
	int error = 0;

	if (!pcscd)
		return 0;
	if (pcscd->pid > 0)
		error = tr_proc_stop(pcscd->pid, timeout_ms);
	free(pcscd);
	return error;
}
