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
#include <dirent.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

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
	char sock[4200];    /* what clients connect to (PCSCLITE_CSOCK_NAME) */
	char alias_dir[64]; /* a short name of a deep sock, or "" */
};

/*
 * libpcsclite copies PCSCLITE_CSOCK_NAME into sun_path (108 bytes) and
 * cuts a longer one: a run under a deep --out gets a short symbolic link
 * to its socket, in a private folder of /tmp. The folder's name is kept in
 * RUN/pcscd/alias, so that whoever stops the daemon (vc_pcscd_stop, or
 * `env down` by PID) removes it with vc_pcscd_remove_alias().
 */
#define ALIAS_PREFIX "/tmp/tokenrig-sock-"

static int alias_socket(vc_pcscd *p)
{
	struct sockaddr_un a;
	char link_path[128], record[4200];

	if (strlen(p->sock) < sizeof(a.sun_path))
		return 0;
	snprintf(p->alias_dir, sizeof(p->alias_dir), ALIAS_PREFIX "XXXXXX");
	if (!mkdtemp(p->alias_dir)) {
		p->alias_dir[0] = '\0';
		return tr_error_set(TR_EIO, "pcscd's socket %s is longer than a UNIX socket "
				    "path holds, and no short link can be made in /tmp: %s",
				    p->sock, strerror(errno));
	}
	snprintf(link_path, sizeof(link_path), "%s/pcscd.comm", p->alias_dir);
	if (symlink(p->sock, link_path) != 0 ||
	    tr_fs_join(record, sizeof(record), p->sock_dir, "alias") < 0 ||
	    tr_fs_write_atomic(record, p->alias_dir, strlen(p->alias_dir), 0600) < 0) {
		int e = errno;

		unlink(link_path);
		rmdir(p->alias_dir);
		p->alias_dir[0] = '\0';
		return tr_error_set(TR_EIO, "a short link to %s: %s", p->sock, strerror(e));
	}
	snprintf(p->sock, sizeof(p->sock), "%s", link_path);
	return 0;
}

void vc_pcscd_remove_alias(const char *run_dir)
{
	char record[4200], link_path[128], *dir = NULL;
	size_t len = 0;

	if (tr_fs_join(record, sizeof(record), run_dir, "pcscd/alias") < 0 ||
	    tr_fs_read_all(record, 256, &dir, &len) < 0)
		return;
	/* Only a folder this code made: the record is a file anyone may edit. */
	if (len > strlen(ALIAS_PREFIX) && len < 64 && !strncmp(dir, ALIAS_PREFIX, strlen(ALIAS_PREFIX)) &&
	    !strchr(dir + strlen(ALIAS_PREFIX), '/')) {
		snprintf(link_path, sizeof(link_path), "%s/pcscd.comm", dir);
		unlink(link_path);
		rmdir(dir);
	}
	free(dir);
	unlink(record);
}

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
	int error, n, k;

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

		n = snprintf(lib, sizeof(lib), "%s/libifdvpcd-%u.so", libdir, e);
		if (n < 0 || (size_t)n >= sizeof(lib))
			return tr_error_set(TR_EINVAL, "path too long: %s/libifdvpcd-%u.so", libdir, e);
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
		k = snprintf(path, sizeof(path), "%s/tokenrig-vpcd-%u", confdir, e);
		if (k < 0 || (size_t)k >= sizeof(path))
			return tr_error_set(TR_EINVAL, "path too long: %s/tokenrig-vpcd-%u", confdir, e);
		if ((error = tr_fs_write_atomic(path, text, (size_t)n, 0644)) < 0)
			return error;
	}
	return 0;
}

/* --- where the rig's pcscd may serve ------------------------------------ */

/* A process that has exited and waits for its parent holds no socket. */
static int zombie(long pid)
{
	char path[64], text[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 1; /* gone */
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	text[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	return (p = strrchr(text, ')')) && p[1] == ' ' && p[2] == 'Z';
}

/* A process named name in this mount namespace (one it cannot see counts). */
static pid_t process_in_our_ns(const char *name, char *why, size_t len)
{
	char self[128] = "", ns[128], path[64], comm[64];
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	ssize_t n;

	if (!d)
		return 0;
	if ((n = readlink("/proc/self/ns/mnt", self, sizeof(self) - 1)) > 0)
		self[n] = '\0';
	while (!found && (e = readdir(d)) != NULL) {
		long pid = strtol(e->d_name, NULL, 10);
		int fd;

		if (pid <= 0 || pid == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name) || zombie(pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
		n = readlink(path, ns, sizeof(ns) - 1);
		if (n > 0)
			ns[n] = '\0';
		/* Another mount namespace has its own /run/pcscd (a rig's private one). */
		if (n > 0 && self[0] && strcmp(ns, self))
			continue;
		found = (pid_t)pid;
		snprintf(why, len, "a %s process (PID %ld) runs in this mount namespace", name, pid);
	}
	closedir(d);
	return found;
}

/*
 * 1 when a listening socket of this network namespace is bound to the file
 * (dev, ino), 0 when none is, -1 when the kernel's table cannot be read.
 * Asked through NETLINK_SOCK_DIAG, never by connecting: a connection to
 * systemd's pcscd.socket would start the system's pcscd.
 */
static int unix_listener(dev_t dev, ino_t ino)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = 1u << 10 /* TCP_LISTEN */,
			 .udiag_show = UDIAG_SHOW_VFS },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 2 };
	long buf[8192 / sizeof(long)];
	int fd, found = -1;

	if ((fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		goto out;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n <= 0)
			goto out;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a = (struct rtattr *)(m + 1);
			int alen = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

			if (h->nlmsg_type == NLMSG_DONE) {
				found = found == 1 ? 1 : 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
				goto out;
			for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				struct unix_diag_vfs *v = RTA_DATA(a);

				/* The kernel's own dev_t: major above bit 20. */
				if (a->rta_type == UNIX_DIAG_VFS && v->udiag_vfs_ino == ino &&
				    v->udiag_vfs_dev >> 20 == major(dev) &&
				    (v->udiag_vfs_dev & 0xfffff) == minor(dev))
					found = 1;
			}
		}
	}
out:
	close(fd);
	return found;
}

int vc_pcscd_std_free(const char *sock, const char *proc_name, char *why, size_t len)
{
	char dir[4096], pidfile[4200], text[32] = "";
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	long pid;
	int fd, listening;
	ssize_t n;

	why[0] = '\0';
	if (process_in_our_ns(proc_name, why, len))
		return 0;
	if (snprintf(dir, sizeof(dir), "%s", sock) >= (int)sizeof(dir) ||
	    strlen(sock) >= sizeof(a.sun_path)) {
		snprintf(why, len, "socket path too long: %s", sock);
		return 0;
	}
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	if (snprintf(pidfile, sizeof(pidfile), "%s/pcscd.pid", dir) >= (int)sizeof(pidfile)) {
		snprintf(why, len, "path too long: %s/pcscd.pid", dir);
		return 0;
	}
	if ((fd = open(pidfile, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		text[n > 0 ? n : 0] = '\0';
		pid = strtol(text, NULL, 10);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			snprintf(why, len, "%s names PID %ld, which is alive", pidfile, pid);
			return 0;
		}
	}
	if (lstat(sock, &st) != 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(why, len, "%s: %s", sock, strerror(errno));
		return 0;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, len, "%s exists and is not a socket", sock);
		return 0;
	}
	if ((listening = unix_listener(st.st_dev, st.st_ino)) == 1) {
		snprintf(why, len, "something listens on %s (a pcscd, or systemd's pcscd.socket)",
			 sock);
		return 0;
	}
	if (listening == 0)
		return 1; /* a leftover nobody answers: pcscd replaces it */
	/* The table is not readable here: whoever accepts a connection owns it. */
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return 0;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
	    (errno == ECONNREFUSED || errno == ENOENT)) {
		close(fd);
		return 1;
	}
	close(fd);
	snprintf(why, len, "something answers on %s", sock);
	return 0;
}

int vc_pcscd_placement(char *why, size_t len)
{
	char taken[512];
	int status = 0, err;
	pid_t pid;

	why[0] = '\0';
	/* A child tries what the daemon's start does; its exit code is the errno. */
	if ((pid = fork()) < 0)
		return tr_error_set(TR_EIO, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
			_exit(errno > 0 && errno < 256 ? errno : 255);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return VC_PCSCD_PRIVATE;
	err = WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
	if (vc_pcscd_std_free(VC_PCSCD_STD_SOCKET, "pcscd", taken, sizeof(taken))) {
		snprintf(why, len, "no mount namespace here (unshare(CLONE_NEWNS): %s): the rig's "
			 "pcscd serves the standard socket %s, which is free (no system pcscd)",
			 strerror(err), VC_PCSCD_STD_SOCKET);
		return VC_PCSCD_STANDARD;
	}
	return tr_error_set(TR_EDEPEND, "no mount namespace here (unshare(CLONE_NEWNS): %s: needs "
			    "CAP_SYS_ADMIN) and the standard pcscd socket is taken: %s; the "
			    "system's pcscd is never touched", strerror(err), taken);
}

/* Serialises the choice of the standard socket among runs in one machine. */
static int lock_std_choice(void)
{
	uint64_t deadline = tr_deadline_after_ms(30000);
	int fd = open("/tmp/tokenrig-pcscd-std.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || tr_deadline_passed(deadline)) {
			int e = errno == EWOULDBLOCK ? ETIMEDOUT : errno;

			close(fd);
			errno = e;
			return -1;
		}
		tr_poll_pause(deadline, 20);
	}
	return fd;
}

/* --- starting it ----------------------------------------------------------- */

/*
 * In the child, before the exec (async-signal-safe calls only): the
 * private mount namespace with the run's socket folder over the standard
 * one.
 */
static int private_namespace(void *arg, const char **step)
{
	const vc_pcscd *p = arg;

	*step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) != 0)
		return -1;
	*step = "mount --make-rprivate /";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	*step = "bind mount over " VC_PCSCD_STD_DIR;
	return mount(p->sock_dir, VC_PCSCD_STD_DIR, NULL, MS_BIND, NULL) != 0 ? -1 : 0;
}

/*
 * Starts pcscd (in its private namespace when private_ns) through
 * common/proc. 0 started; TR_EIO the namespace could not be made (msg
 * says why); TR_EDEPEND pcscd could not run.
 */
static int spawn(vc_pcscd *p, const vc_pcscd_opts *opts, const char *confdir, int private_ns,
		 char *msg, size_t len)
{
	char *argv_debug[] = { VC_PCSCD_PATH, "-f", "-d", "-a", "-c", (char *)confdir, NULL };
	char *argv_plain[] = { VC_PCSCD_PATH, "-f", "-c", (char *)confdir, NULL };
	tr_proc_opts po = { .log_path = opts->log_path, .die_with_parent = opts->die_with_parent,
			    .pre_exec = private_ns ? private_namespace : NULL, .pre_exec_arg = p };
	int error;

	msg[0] = '\0';
	error = tr_proc_spawn(&p->pid, opts->debug ? argv_debug : argv_plain, &po);
	if (error < 0) {
		snprintf(msg, len, "%s", tr_error_last());
		p->pid = 0;
	}
	return error;
}

int vc_pcscd_start(vc_pcscd **out, const vc_pcscd_opts *opts)
{
	vc_pcscd *p = NULL;
	char msg[512], stale[4300], confdir[4200], why[512];
	int error = 0, lock = -1;

	if (!opts || !opts->run_dir)
		return tr_error_set(TR_EINVAL, "vc_pcscd_start: run_dir needed");
	if ((error = tr_fs_join(confdir, sizeof(confdir), opts->run_dir, "reader.conf.d")) < 0)
		return error;
	if (geteuid() != 0)
		return tr_error_set(TR_EDEPEND,
				    "the rig's pcscd needs root: pcsc-lite 1.9.9 always serves "
				    VC_PCSCD_STD_SOCKET ", so it runs in a private mount namespace "
				    "(unshare + bind mount), or on that socket when it is free. Run as "
				    "root (or in a container)");
	if (access(VC_PCSCD_PATH, X_OK) != 0 || access(VC_VPCD_DRIVER, R_OK) != 0)
		return tr_error_set(TR_EDEPEND, "%s or %s missing: apt-get install pcscd "
				    "vsmartcard-vpcd", VC_PCSCD_PATH, VC_VPCD_DRIVER);
	if (!(p = calloc(1, sizeof(*p))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = tr_fs_join(p->sock_dir, sizeof(p->sock_dir), opts->run_dir, "pcscd")) < 0 ||
	    (error = tr_fs_join(p->sock, sizeof(p->sock), p->sock_dir, "pcscd.comm")) < 0 ||
	    (error = tr_fs_join(stale, sizeof(stale), p->sock_dir, "pcscd.pid")) < 0 ||
	    (error = tr_fs_mkdirs(p->sock_dir, 0755)) < 0)
		goto out;
	/* A killed daemon leaves its pid file: pcscd would refuse to start. */
	unlink(stale);
	unlink(p->sock);
	/* The mount point; pcscd itself creates it on a normal system. */
	if (mkdir(VC_PCSCD_STD_DIR, 0755) != 0 && errno != EEXIST) {
		error = tr_error_set(TR_EIO, "mkdir " VC_PCSCD_STD_DIR ": %s", strerror(errno));
		goto out;
	}
	error = spawn(p, opts, confdir, 1, msg, sizeof(msg));
	if (error < 0 && error != TR_EIO) {
		error = tr_error_set(TR_EDEPEND, "starting the rig's pcscd: %s", msg);
		goto out;
	}
	if (error == TR_EIO) {
		/*
		 * No mount namespace here (an unprivileged container): the
		 * standard socket, if nobody has it. The choice and the start
		 * are one step for runs on this machine.
		 */
		if ((lock = lock_std_choice()) < 0) {
			error = tr_error_set(TR_EDEPEND, "no mount namespace here (%s), and the "
					     "choice of the standard pcscd socket cannot be made alone "
					     "(/tmp/tokenrig-pcscd-std.lock: %s)", msg, strerror(errno));
			goto out;
		}
		if (!vc_pcscd_std_free(VC_PCSCD_STD_SOCKET, "pcscd", why, sizeof(why))) {
			error = tr_error_set(TR_EDEPEND, "no mount namespace here (%s: needs "
					     "CAP_SYS_ADMIN) and the standard pcscd socket is taken: "
					     "%s; the system's pcscd is never touched", msg, why);
			goto out;
		}
		/* Nobody owns what is left there (checked above): pcscd refuses
		 * to start over a socket file without a dead daemon's pid file. */
		unlink(VC_PCSCD_STD_SOCKET);
		unlink(VC_PCSCD_STD_DIR "/pcscd.pid");
		if ((error = spawn(p, opts, confdir, 0, msg, sizeof(msg))) < 0) {
			error = tr_error_set(TR_EDEPEND, "starting the rig's pcscd on %s: %s",
					     VC_PCSCD_STD_SOCKET, msg);
			goto out;
		}
		snprintf(p->sock, sizeof(p->sock), "%s", VC_PCSCD_STD_SOCKET);
	}
	if ((error = alias_socket(p)) < 0) {
		tr_proc_stop(p->pid, 2000);
		goto out;
	}
	setenv("PCSCLITE_CSOCK_NAME", p->sock, 1);
	*out = p;
	p = NULL;
out:
	if (lock >= 0)
		close(lock);
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
	if (pcscd->alias_dir[0]) {
		char run_dir[4096];

		/* sock_dir is RUN/pcscd */
		snprintf(run_dir, sizeof(run_dir), "%s", pcscd->sock_dir);
		if (strrchr(run_dir, '/'))
			*strrchr(run_dir, '/') = '\0';
		vc_pcscd_remove_alias(run_dir);
	}
	free(pcscd);
	return error;
}
