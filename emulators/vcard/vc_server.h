/*
 * The card process: plays one virtual PIV card for vpcd and obeys a
 * line-based control socket (insert, remove, latency, ...; README.md).
 *
 * Two ways to meet vpcd:
 * - dial (default): vpcd listens (reader.conf DEVICENAME /dev/null:PORT)
 *   and the card connects to 127.0.0.1:PORT while it is inserted; removal
 *   closes the connection, insertion dials again.
 * - listen (reversed): the card listens on 127.0.0.1:PORT and vpcd
 *   connects (DEVICENAME localhost:PORT). Debian's vpcd 3.3 cannot
 *   reconnect in this mode (vicc_connect calls select() on fd -1 and glibc
 *   aborts pcscd), so a removal there kills the whole pcscd: use it only
 *   for cards that are never removed.
 *
 * One process per card: a card that hangs, sleeps (latency model) or is
 * killed affects nobody else, and stopping one card is a kill of its PID.
 */
#ifndef TR_EMULATORS_VCARD_VC_SERVER_H
#define TR_EMULATORS_VCARD_VC_SERVER_H

#include <signal.h>

typedef struct vc_server vc_server;

typedef struct vc_server_opts {
	const char *image_path;     /* loaded at start, saved on every change */
	unsigned short port;        /* TCP port on 127.0.0.1 */
	int listen_mode;            /* 1: reversed mode (see above) */
	const char *control_path;   /* Unix socket; NULL: no control */
	int start_removed;          /* begin with the card pulled out */
} vc_server_opts;

/*
 * Loads the image, listens on the port (listen mode), then creates the
 * control socket: once the control socket exists the card is ready.
 */
int vc_server_open(vc_server **out, const vc_server_opts *opts);

/* Serves until *stop becomes non-zero (a signal handler sets it). */
int vc_server_run(vc_server *srv, volatile sig_atomic_t *stop);

/* Closes the sockets, removes the control socket file. */
void vc_server_free(vc_server *srv);

/*
 * Executes one control command line (without newline) and writes the
 * one-line answer ("ok ..." or "error ...") into reply. Exposed for tests.
 */
void vc_server_control(vc_server *srv, const char *line, char *reply,
		       size_t len);

/*
 * Client side: sends one command to a card's control socket and copies the
 * answer line. Waits at most timeout_ms.
 */
int vc_control_send(const char *control_path, const char *command,
		    char *reply, size_t len, unsigned timeout_ms);

#endif
