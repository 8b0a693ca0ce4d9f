#include "emulators/vcard/vc_server.h"

#include "common/clock.h"
#include "common/error.h"
#include "emulators/vcard/vc_apdu.h"
#include "emulators/vcard/vc_image.h"
#include "emulators/vcard/vc_piv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CTL 8
#define CTL_LINE (PATH_MAX + 64) /* "load IMAGE" under any --out */

/* Latency classes of the control socket; "any" adds to every APDU. */
enum { LAT_ANY, LAT_VERIFY, LAT_SIGN_RSA, LAT_SIGN_EC, LAT_SIGN_SM2,
       LAT_GETDATA, LAT_COUNT };
static const char *const lat_names[LAT_COUNT] = {
	"any", "verify", "sign-rsa", "sign-ec", "sign-sm2", "getdata"
};

typedef struct ctl_client {
	int fd;
	size_t len;
	char buf[CTL_LINE];
} ctl_client;

struct vc_server {
	vc_image *img;
	vc_piv *piv;
	int tcp_fd, conn_fd, ctl_fd;
	int listen_mode;
	unsigned short port;
	uint64_t next_dial;          /* dial mode: earliest next connect */
	char *ctl_path;
	ctl_client ctl[MAX_CTL];
	/* Card state the control socket changes. */
	int present, powered, muted, drop_next_sign, corrupt_next;
	long remove_after;           /* APDUs left before removal, -1 off */
	unsigned latency_ms[LAT_COUNT];
	unsigned long apdus, connects;
	/* The vpcd stream: 2-byte length + payload, both ways. */
	size_t rlen;
	uint8_t rbuf[2 + 65535];
	uint8_t wbuf[2 + VC_APDU_MAX_RESP];
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Linux turns quick-ACK off again by itself: re-arm after every recv. */
static void quickack(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void drop_conn(vc_server *srv)
{
	if (srv->conn_fd >= 0)
		close(srv->conn_fd);
	srv->conn_fd = -1;
	srv->rlen = 0;
}

static void card_remove(vc_server *srv)
{
	srv->present = 0;
	srv->powered = 0;
	vc_piv_reset(srv->piv);
	drop_conn(srv);   /* vpcd's next recv fails: the card is gone */
}

/* Writes all of buf; waits for room at most 2 s (vpcd reads promptly). */
static int send_all(int fd, const uint8_t *buf, size_t len)
{
	uint64_t deadline = tr_deadline_after_ms(2000);

	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (tr_deadline_passed(deadline))
				return -1;
			poll(&p, 1, (int)tr_deadline_left_ms(deadline) + 1);
			continue;
		}
		return -1;
	}
	return 0;
}

static int send_msg(vc_server *srv, const uint8_t *payload, size_t len)
{
	if (payload != srv->wbuf + 2)
		memcpy(srv->wbuf + 2, payload, len);
	srv->wbuf[0] = (uint8_t)(len >> 8);
	srv->wbuf[1] = (uint8_t)len;
	if (send_all(srv->conn_fd, srv->wbuf, len + 2) < 0) {
		drop_conn(srv);
		return -1;
	}
	return 0;
}

static void model_latency(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	/* A deliberate model of a slow token, not a wait for anything. */
	while (ms && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int class_latency_index(vc_cmd_class cls)
{
	switch (cls) {
	case VC_CLASS_VERIFY: return LAT_VERIFY;
	case VC_CLASS_SIGN_RSA: return LAT_SIGN_RSA;
	case VC_CLASS_SIGN_EC: return LAT_SIGN_EC;
	case VC_CLASS_SIGN_SM2: return LAT_SIGN_SM2;
	case VC_CLASS_GETDATA: return LAT_GETDATA;
	default: return -1;
	}
}

static void handle_apdu(vc_server *srv, const uint8_t *cmd, size_t len)
{
	vc_cmd_class cls = vc_piv_classify(srv->piv, cmd, len);
	int li = class_latency_index(cls);
	unsigned ms = srv->latency_ms[LAT_ANY] + (li >= 0 ? srv->latency_ms[li] : 0);
	size_t n;

	if (srv->drop_next_sign && (cls == VC_CLASS_SIGN_RSA || cls == VC_CLASS_SIGN_EC ||
				    cls == VC_CLASS_SIGN_SM2)) {
		srv->drop_next_sign = 0;
		card_remove(srv);  /* pulled out mid-signature: no answer */
		return;
	}
	n = vc_piv_process(srv->piv, cmd, len, srv->wbuf + 2);
	srv->apdus++;
	model_latency(ms);
	if (srv->corrupt_next) {
		srv->corrupt_next = 0;
		if (n > 2) {
			srv->wbuf[2 + n - 3] ^= 0xFF;   /* last data byte */
		} else {
			srv->wbuf[2] = 0x6F;
			srv->wbuf[3] = 0x00;
		}
	}
	if (send_msg(srv, srv->wbuf + 2, n) < 0)
		return;
	if (srv->remove_after > 0 && --srv->remove_after == 0) {
		srv->remove_after = -1;
		card_remove(srv);
	}
}

static void handle_msg(vc_server *srv, const uint8_t *msg, size_t len)
{
	if (len == 1) {
		switch (msg[0]) {
		case 0x00:      /* power off */
			srv->powered = 0;
			vc_piv_reset(srv->piv);
			return;
		case 0x01:      /* power on */
		case 0x02:      /* reset */
			srv->powered = srv->present;
			vc_piv_reset(srv->piv);
			return;
		case 0x04:      /* ATR; an empty answer tells vpcd "no card" */
			if (srv->present)
				send_msg(srv, vc_piv_atr, vc_piv_atr_len);
			else
				send_msg(srv, NULL, 0);
			return;
		default:
			return;
		}
	}
	if (len < 4)
		return;
	if (!srv->present) {
		drop_conn(srv);
		return;
	}
	handle_apdu(srv, msg, len);
}

static void conn_readable(vc_server *srv)
{
	ssize_t n = recv(srv->conn_fd, srv->rbuf + srv->rlen,
			 sizeof(srv->rbuf) - srv->rlen, 0);
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_conn(srv);
		return;
	}
	quickack(srv->conn_fd);
	srv->rlen += (size_t)n;
	while (srv->conn_fd >= 0 && srv->rlen - off >= 2) {
		size_t len = (size_t)srv->rbuf[off] << 8 | srv->rbuf[off + 1];

		if (srv->rlen - off < 2 + len)
			break;
		handle_msg(srv, srv->rbuf + off + 2, len);
		off += 2 + len;
	}
	if (srv->conn_fd < 0) {
		srv->rlen = 0;
		return;
	}
	memmove(srv->rbuf, srv->rbuf + off, srv->rlen - off);
	srv->rlen -= off;
}

static void take_conn(vc_server *srv, int fd)
{
	int one = 1;

	drop_conn(srv);
	set_nonblock(fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	quickack(fd);
	srv->conn_fd = fd;
	srv->connects++;
}

static void tcp_acceptable(vc_server *srv)
{
	int fd = accept(srv->tcp_fd, NULL, NULL);

	/* vpcd reconnects after every eject: the newest connection wins. */
	if (fd >= 0)
		take_conn(srv, fd);
}

#define DIAL_STEP_MS 50

/* Dial mode: an inserted card without a connection dials vpcd. */
static void dial(vc_server *srv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(srv->port) };
	int fd;

	srv->next_dial = tr_deadline_after_ms(DIAL_STEP_MS);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	/* Loopback connects complete or fail at once: no wait needed. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return;
	}
	take_conn(srv, fd);
}

/* --- control ---------------------------------------------------------- */

static void status_line(vc_server *srv, char *reply, size_t len)
{
	unsigned pl, pm, ul, um;
	const uint8_t *s = vc_image_serial(srv->img);
	char serial[2 * VC_SERIAL_LEN + 1], lat[160];
	size_t off = 0;

	vc_image_tries(srv->img, VC_REF_PIN, &pl, &pm);
	vc_image_tries(srv->img, VC_REF_PUK, &ul, &um);
	for (int i = 0; i < VC_SERIAL_LEN; i++)
		snprintf(serial + 2 * i, 3, "%02x", s[i]);
	lat[0] = '\0';
	for (int i = 0; i < LAT_COUNT; i++)
		off += (size_t)snprintf(lat + off, sizeof(lat) - off, "%s%s:%u",
					i ? "," : "", lat_names[i], srv->latency_ms[i]);
	snprintf(reply, len,
		 "ok present=%d powered=%d connected=%d muted=%d pin_tries=%u/%u "
		 "puk_tries=%u/%u pin_verified=%d profile=%s serial=%s apdus=%lu "
		 "connects=%lu remove_after=%ld remove_during_sign=%d corrupt_next=%d "
		 "latency=%s",
		 srv->present, srv->powered, srv->conn_fd >= 0, srv->muted, pl, pm, ul, um,
		 vc_piv_pin_verified(srv->piv),
		 vc_profile_name(vc_image_profile(srv->img)), serial, srv->apdus,
		 srv->connects, srv->remove_after, srv->drop_next_sign,
		 srv->corrupt_next, lat);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Another card's content in this card: the image at path becomes the card's
 * state, saved from then on where the old one was (the image file given at
 * start). The rig resets a card after a case this way, and changes cards
 * between columns (with a remove before and an insert after, so that
 * readers and middleware see a new card).
 */
static int load_image(vc_server *srv, const char *path, char *reply, size_t len)
{
	vc_image *img = NULL;
	vc_piv *piv = NULL;
	int error;

	if ((error = vc_image_load(&img, path)) < 0 ||
	    (error = vc_image_save(img, vc_image_path(srv->img))) < 0 ||
	    (error = vc_piv_new(&piv, img)) < 0) {
		snprintf(reply, len, "error %s", tr_error_last());
		vc_image_free(img);
		return error;
	}
	vc_piv_free(srv->piv);
	vc_image_free(srv->img);
	srv->img = img;
	srv->piv = piv;
	return 0;
}

void vc_server_control(vc_server *srv, const char *line, char *reply,
		       size_t len)
{
	char copy[CTL_LINE], *save = NULL, *cmd, *a1, *a2, *extra;
	unsigned long v;

	snprintf(copy, sizeof(copy), "%s", line);
	cmd = strtok_r(copy, " \t\r", &save);
	a1 = strtok_r(NULL, " \t\r", &save);
	a2 = strtok_r(NULL, " \t\r", &save);
	extra = strtok_r(NULL, " \t\r", &save);
	if (!cmd) {
		snprintf(reply, len, "error empty command");
		return;
	}
	if (extra)
		goto usage;
	if (strcmp(cmd, "status") == 0 && !a1) {
		status_line(srv, reply, len);
		return;
	}
	if (strcmp(cmd, "insert") == 0 && !a1) {
		if (!srv->present) {
			srv->present = 1;
			vc_piv_reset(srv->piv);
		}
	} else if (strcmp(cmd, "remove") == 0 && !a1) {
		card_remove(srv);
	} else if (strcmp(cmd, "reset") == 0 && !a1) {
		vc_piv_reset(srv->piv);
	} else if (strcmp(cmd, "remove-after") == 0 && a1 && !a2) {
		if (parse_uint(a1, 1000000000UL, &v) < 0)
			goto usage;
		if (v == 0)
			card_remove(srv);
		srv->remove_after = v ? (long)v : -1;
	} else if (strcmp(cmd, "remove-during-sign") == 0 && !a1) {
		srv->drop_next_sign = 1;
	} else if (strcmp(cmd, "latency") == 0 && a1 && a2) {
		int i;

		for (i = 0; i < LAT_COUNT; i++)
			if (strcmp(a1, lat_names[i]) == 0)
				break;
		if (i == LAT_COUNT || parse_uint(a2, 600000UL, &v) < 0)
			goto usage;
		srv->latency_ms[i] = (unsigned)v;
	} else if (strcmp(cmd, "corrupt-next") == 0 && !a1) {
		srv->corrupt_next = 1;
	} else if (strcmp(cmd, "mute") == 0 && a1 && !a2) {
		if (strcmp(a1, "on") == 0)
			srv->muted = 1;
		else if (strcmp(a1, "off") == 0)
			srv->muted = 0;
		else
			goto usage;
	} else if (strcmp(cmd, "load") == 0 && a1 && !a2) {
		if (load_image(srv, a1, reply, len) < 0)
			return;
	} else if (strcmp(cmd, "clear") == 0 && !a1) {
		memset(srv->latency_ms, 0, sizeof(srv->latency_ms));
		srv->muted = srv->drop_next_sign = srv->corrupt_next = 0;
		srv->remove_after = -1;
	} else {
		goto usage;
	}
	snprintf(reply, len, "ok");
	return;
usage:
	snprintf(reply, len, "error usage: insert | remove | reset | remove-after N | "
		 "remove-during-sign | latency any|verify|sign-rsa|sign-ec|sign-sm2|getdata MS"
		 " | corrupt-next | mute on|off | clear | load IMAGE | status");
}

static void ctl_close(ctl_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void ctl_readable(vc_server *srv, ctl_client *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	char *nl, reply[1024];

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ctl_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	while ((nl = strchr(c->buf, '\n'))) {
		size_t used = (size_t)(nl - c->buf) + 1, rl;

		*nl = '\0';
		vc_server_control(srv, c->buf, reply, sizeof(reply) - 1);
		rl = strlen(reply);
		reply[rl++] = '\n';
		if (send_all(c->fd, (const uint8_t *)reply, rl) < 0) {
			ctl_close(c);
			return;
		}
		memmove(c->buf, c->buf + used, c->len - used + 1);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf) - 1)
		ctl_close(c);   /* a line longer than any command */
}

static void ctl_acceptable(vc_server *srv)
{
	int fd = accept(srv->ctl_fd, NULL, NULL);

	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CTL; i++) {
		if (srv->ctl[i].fd < 0) {
			set_nonblock(fd);
			srv->ctl[i].fd = fd;
			srv->ctl[i].len = 0;
			return;
		}
	}
	close(fd);
}

/* --- life cycle ------------------------------------------------------- */

static int listen_tcp(unsigned short port, int *out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return tr_error_set(TR_EIO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		int e = errno;

		close(fd);
		return tr_error_set(TR_EIO, "listen on 127.0.0.1:%u: %s", port, strerror(e));
	}
	*out = fd;
	return 0;
}

/*
 * The address of the socket file path. A path longer than sun_path holds
 * (108 bytes: a run under a deep --out) is reached through its folder,
 * opened here: /proc/self/fd/N/NAME. *dirfd (-1 when unused) stays open
 * until the caller's bind() or connect() is done.
 */
static int unix_addr(const char *path, struct sockaddr_un *sa, int *dirfd)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	size_t dlen;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if (strlen(path) < sizeof(sa->sun_path)) {
		memcpy(sa->sun_path, path, strlen(path) + 1);
		return 0;
	}
	if (!slash || (dlen = (size_t)(slash - path)) >= sizeof(dir))
		return tr_error_set(TR_EINVAL, "socket path too long: %s", path);
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if ((*dirfd = open(dlen ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return tr_error_set(TR_EIO, "%s: %s", dlen ? dir : "/", strerror(errno));
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dirfd,
		     slash + 1) >= (int)sizeof(sa->sun_path)) {
		close(*dirfd);
		*dirfd = -1;
		return tr_error_set(TR_EINVAL, "socket name too long: %s", slash + 1);
	}
	return 0;
}

static int listen_unix(const char *path, int *out)
{
	struct sockaddr_un sa;
	int fd, dirfd, bound, error;

	if ((error = unix_addr(path, &sa, &dirfd)) < 0)
		return error;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		if (dirfd >= 0)
			close(dirfd);
		return tr_error_set(TR_EIO, "socket: %s", strerror(errno));
	}
	unlink(path);   /* a stale socket of a killed card */
	bound = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (dirfd >= 0) {
		int e = errno;

		close(dirfd);
		errno = e;
	}
	if (bound != 0 ||
	    chmod(path, 0600) != 0 || listen(fd, 8) != 0) {
		int e = errno;

		close(fd);
		return tr_error_set(TR_EIO, "control socket %s: %s", path, strerror(e));
	}
	*out = fd;
	return 0;
}

int vc_server_open(vc_server **out, const vc_server_opts *opts)
{
	vc_server *srv;
	int error;

	if (!opts || !opts->image_path || !opts->port)
		return tr_error_set(TR_EINVAL, "card needs an image and a port");
	if (!(srv = calloc(1, sizeof(*srv))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	srv->tcp_fd = srv->conn_fd = srv->ctl_fd = -1;
	for (int i = 0; i < MAX_CTL; i++)
		srv->ctl[i].fd = -1;
	srv->present = !opts->start_removed;
	srv->remove_after = -1;
	srv->listen_mode = opts->listen_mode;
	srv->port = opts->port;
	if ((error = vc_image_load(&srv->img, opts->image_path)) < 0 ||
	    (error = vc_piv_new(&srv->piv, srv->img)) < 0 ||
	    (srv->listen_mode && (error = listen_tcp(opts->port, &srv->tcp_fd)) < 0))
		goto fail;
	if (opts->control_path) {
		if (!(srv->ctl_path = strdup(opts->control_path))) {
			error = tr_error_set(TR_ENOMEM, "out of memory");
			goto fail;
		}
		if ((error = listen_unix(opts->control_path, &srv->ctl_fd)) < 0) {
			free(srv->ctl_path);
			srv->ctl_path = NULL;  /* not ours to unlink */
			goto fail;
		}
	}
	*out = srv;
	return 0;
fail:
	vc_server_free(srv);
	return error;
}

void vc_server_free(vc_server *srv)
{
	if (!srv)
		return;
	drop_conn(srv);
	for (int i = 0; i < MAX_CTL; i++)
		if (srv->ctl[i].fd >= 0)
			close(srv->ctl[i].fd);
	if (srv->tcp_fd >= 0)
		close(srv->tcp_fd);
	if (srv->ctl_fd >= 0) {
		close(srv->ctl_fd);
		if (srv->ctl_path)
			unlink(srv->ctl_path);
	}
	free(srv->ctl_path);
	vc_piv_free(srv->piv);
	vc_image_free(srv->img);
	free(srv);
}

int vc_server_run(vc_server *srv, volatile sig_atomic_t *stop)
{
	struct pollfd fds[3 + MAX_CTL];
	int map[3 + MAX_CTL];

	while (!*stop) {
		nfds_t n = 0;
		int timeout = -1;

		if (!srv->listen_mode && srv->present && srv->conn_fd < 0) {
			if (tr_deadline_passed(srv->next_dial))
				dial(srv);
			if (srv->conn_fd < 0)
				timeout = (int)tr_deadline_left_ms(srv->next_dial) + 1;
		}
		if (srv->conn_fd >= 0 && !srv->muted) {
			fds[n] = (struct pollfd){ .fd = srv->conn_fd, .events = POLLIN };
			map[n++] = -1;
		}
		if (srv->tcp_fd >= 0) {
			fds[n] = (struct pollfd){ .fd = srv->tcp_fd, .events = POLLIN };
			map[n++] = -2;
		}
		if (srv->ctl_fd >= 0) {
			fds[n] = (struct pollfd){ .fd = srv->ctl_fd, .events = POLLIN };
			map[n++] = -3;
		}
		for (int i = 0; i < MAX_CTL; i++) {
			if (srv->ctl[i].fd < 0)
				continue;
			fds[n] = (struct pollfd){ .fd = srv->ctl[i].fd, .events = POLLIN };
			map[n++] = i;
		}
		if (poll(fds, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return tr_error_set(TR_EIO, "poll: %s", strerror(errno));
		}
		for (nfds_t i = 0; i < n; i++) {
			if (!fds[i].revents)
				continue;
			if (map[i] == -1) {
				if (srv->conn_fd == fds[i].fd)
					conn_readable(srv);
			} else if (map[i] == -2) {
				tcp_acceptable(srv);
			} else if (map[i] == -3) {
				ctl_acceptable(srv);
			} else if (srv->ctl[map[i]].fd == fds[i].fd) {
				ctl_readable(srv, &srv->ctl[map[i]]);
			}
		}
	}
	return 0;
}

int vc_control_send(const char *control_path, const char *command,
		    char *reply, size_t len, unsigned timeout_ms)
{
	struct sockaddr_un sa;
	uint64_t deadline = tr_deadline_after_ms(timeout_ms);
	char line[CTL_LINE + 2];
	size_t got = 0;
	int fd, dirfd, error = 0, n, rc;

	n = snprintf(line, sizeof(line), "%s\n", command);
	if (n < 0 || (size_t)n >= sizeof(line) || strchr(command, '\n'))
		return tr_error_set(TR_EINVAL, "bad control command");
	if ((error = unix_addr(control_path, &sa, &dirfd)) < 0)
		return error;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		if (dirfd >= 0)
			close(dirfd);
		return tr_error_set(TR_EIO, "socket: %s", strerror(errno));
	}
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc != 0)
		error = tr_error_set(errno == ENOENT ? TR_ENOTFOUND : TR_EIO,
				     "connect %s: %s", control_path, strerror(errno));
	if (dirfd >= 0)
		close(dirfd);
	if (rc != 0)
		goto out;
	set_nonblock(fd);
	if (send_all(fd, (const uint8_t *)line, (size_t)n) < 0) {
		error = tr_error_set(TR_EIO, "send to %s: %s", control_path, strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (got + 1 >= len) {
			error = tr_error_set(TR_EINVAL, "control reply too long");
			goto out;
		}
		r = recv(fd, reply + got, len - 1 - got, 0);
		if (r > 0) {
			got += (size_t)r;
			reply[got] = '\0';
			if (strchr(reply, '\n')) {
				*strchr(reply, '\n') = '\0';
				break;
			}
			continue;
		}
		if (r == 0) {
			error = tr_error_set(TR_EIO, "card closed the control socket");
			goto out;
		}
		if (errno != EAGAIN && errno != EINTR) {
			error = tr_error_set(TR_EIO, "recv: %s", strerror(errno));
			goto out;
		}
		if (tr_deadline_passed(deadline)) {
			error = tr_error_set(TR_ETIMEDOUT, "no control reply within %u ms",
					     timeout_ms);
			goto out;
		}
		poll(&p, 1, (int)tr_deadline_left_ms(deadline) + 1);
	}
out:
	close(fd);
	return error;
}
