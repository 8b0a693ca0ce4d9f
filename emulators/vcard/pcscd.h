/*
 * The rig's own pcscd, for the virtual cards.
 *
 * pcsc-lite 1.9.9's daemon always creates /run/pcscd/pcscd.comm (only the
 * client library honours PCSCLITE_CSOCK_NAME). So the rig's pcscd runs in
 * a private mount namespace where a folder of the run is bind-mounted over
 * /run/pcscd; the system's pcscd, if any, is untouched. Clients reach the
 * rig's daemon through PCSCLITE_CSOCK_NAME=<that folder>/pcscd.comm, which
 * must be in the environment before the process's first SCard call (the
 * library reads it once). Needs root (unshare(CLONE_NEWNS) and mount);
 * without CAP_SYS_ADMIN (an unprivileged container) the daemon serves the
 * standard socket itself, only when nobody else has it (vc_pcscd_placement).
 *
 * Readers: vpcd in its listening mode, "DEVICENAME /dev/null:PORT"; each
 * reader.conf entry gives two slots, ports PORT and PORT+1, each waiting
 * for one card (tokenrig-vcard serve --port ...) to dial in. pcsc-lite
 * handles at most 16 readers (slots), so at most 16 cards, 8 entries.
 * vpcd keeps its connections in a static array indexed by slot only, so
 * two entries loading the same driver file share (and fight over) the
 * same sockets: every entry gets its own copy of the driver file
 * (run_dir/vpcd/libifdvpcd-N.so), which the dynamic loader loads apart.
 */
#ifndef TR_EMULATORS_VCARD_PCSCD_H
#define TR_EMULATORS_VCARD_PCSCD_H

#include <stddef.h>
#include <sys/types.h>

#include "common/paths.h"

/* vsmartcard's vpcd in pcsc-lite's driver folder (common/paths.h). */
#define VC_VPCD_DRIVER tr_paths_get(TR_PATH_VPCD)
#define VC_PCSCD_PATH "/usr/sbin/pcscd"
/* Where pcsc-lite 1.9.9's daemon always serves, and clients look by default. */
#define VC_PCSCD_STD_DIR "/run/pcscd"
#define VC_PCSCD_STD_SOCKET VC_PCSCD_STD_DIR "/pcscd.comm"
#define VC_PCSCD_MAX_CARDS 16

typedef struct vc_pcscd vc_pcscd;

/*
 * Writes run_dir/reader.conf.d/tokenrig-vpcd-N and the driver copies
 * run_dir/vpcd/libifdvpcd-N.so for ncards cards on ports base_port ..
 * base_port + ncards - 1 (ceil(ncards / 2) entries). Reader names are
 * "tokenrig vpcd N 00 00" / "... 00 01": card i is on entry i / 2, slot
 * i % 2, port base_port + i.
 */
int vc_pcscd_write_conf(const char *run_dir, unsigned short base_port,
			unsigned ncards);

/*
 * n consecutive free TCP ports for vpcd (which listens on every interface),
 * from a start that differs per process, so that a run, a test and a
 * system vpcd never fight over one.
 */
int vc_pcscd_free_ports(unsigned n, unsigned short *base);

/* The pcsc-lite reader name of card i of vc_pcscd_write_conf. */
int vc_pcscd_reader_name(unsigned card, char *buf, size_t len);

typedef struct vc_pcscd_opts {
	const char *run_dir;    /* as for vc_pcscd_write_conf; run_dir/pcscd
				 * becomes the socket folder */
	const char *log_path;   /* pcscd's output; NULL: /dev/null */
	int die_with_parent;    /* PR_SET_PDEATHSIG for pcscd */
	int debug;              /* pcscd -d -a */
} vc_pcscd_opts;

/*
 * Starts pcscd -f -c run_dir/reader.conf.d in a private mount namespace and sets
 * PCSCLITE_CSOCK_NAME in this process. Where no mount namespace can be made
 * (no CAP_SYS_ADMIN: an unprivileged container), the rig's pcscd serves the
 * standard socket VC_PCSCD_STD_SOCKET instead, if and only if it is free
 * (vc_pcscd_std_free); PCSCLITE_CSOCK_NAME then names it. TR_EDEPEND with a
 * message saying what to do when not root, neither way is open, or pcscd is
 * missing.
 */
int vc_pcscd_start(vc_pcscd **out, const vc_pcscd_opts *opts);

/*
 * Whether the rig may start its own pcscd on the socket sock (normally
 * VC_PCSCD_STD_SOCKET) without touching anyone else's: 1 when free, 0 when
 * taken, with the reason in why. Taken means: a process named proc_name
 * (normally "pcscd") runs in this mount namespace, or the pcscd.pid file
 * beside the socket names a live process, or some socket listens on that
 * file (a daemon, or systemd's pcscd.socket: found through the kernel's
 * socket table, without connecting, so a socket-activated pcscd is not
 * started), or, when the table cannot tell, a connection to it is
 * accepted. A socket file nobody answers is free (pcscd replaces it).
 */
int vc_pcscd_std_free(const char *sock, const char *proc_name, char *why, size_t len);

/*
 * Where the rig's pcscd can run here, decided before anything is made for
 * the cards: VC_PCSCD_PRIVATE (a private mount namespace can be made),
 * VC_PCSCD_STANDARD (none can, and the standard socket is free: why says
 * so, for the run's output), or TR_EDEPEND naming both reasons (the card
 * kinds are skipped with it).
 */
enum { VC_PCSCD_PRIVATE = 1, VC_PCSCD_STANDARD = 2 };
int vc_pcscd_placement(char *why, size_t len);

const char *vc_pcscd_socket(const vc_pcscd *pcscd);
pid_t vc_pcscd_pid(const vc_pcscd *pcscd);

/*
 * Polls (no fixed sleep) until the daemon answers, lists at least readers
 * readers and at least cards of them hold a card; TR_ETIMEDOUT after
 * timeout_ms, naming what was missing.
 */
int vc_pcscd_wait_ready(unsigned readers, unsigned cards, unsigned timeout_ms);

/* Frees the handle and leaves pcscd running (env up: env down stops it). */
void vc_pcscd_release(vc_pcscd *pcscd);

/* Stops pcscd by PID (SIGTERM, then SIGKILL) and frees. NULL is fine. */
int vc_pcscd_stop(vc_pcscd *pcscd, unsigned timeout_ms);

/*
 * Removes the short link a daemon of run_dir was given in /tmp when its
 * socket path was too long for a socket address (nothing when none was):
 * done by vc_pcscd_stop, and by whoever stops a released daemon by PID.
 */
void vc_pcscd_remove_alias(const char *run_dir);

#endif
