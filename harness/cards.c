#include "harness/cards.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/proc.h"
#include "emulators/vcard/pcscd.h"
#include "emulators/vcard/vc_server.h"

#include <PCSC/winscard.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READY_MS 20000
#define STOP_MS 5000
#define CONTROL_MS 5000

typedef struct card {
	pid_t pid;
	char reader[64];
	char ctl[PATH_MAX + 32];
	char image[PATH_MAX + 32];     /* the working image the process saves to */
	char *shown;              /* the pristine image it shows, NULL: none */
	struct stat loaded;       /* the working image right after loading */
} card;

struct tr_cards {
	vc_pcscd *pcscd;
	card cards[VC_PCSCD_MAX_CARDS];
	unsigned n;
	int detach;
	char dir[PATH_MAX];
};


int tr_cards_command(tr_cards *cards, unsigned i, const char *command)
{
	char reply[512];
	int error;

	if (i >= cards->n)
		return tr_error_set(TR_EINVAL, "no card reader %u", i);
	if ((error = vc_control_send(cards->cards[i].ctl, command, reply, sizeof(reply), CONTROL_MS)) < 0)
		return error;
	if (strncmp(reply, "ok", 2))
		return tr_error_set(TR_EIO, "card %u: '%s': %s", i, command, reply);
	return 0;
}

/*
 * Polls pcscd until each reader holds a card exactly when want[i] says so:
 * pcscd asks vpcd every ~400 ms, so a pull must be seen before the insert.
 */
static int wait_for(tr_cards *cards, const int *want, unsigned timeout_ms)
{
	uint64_t deadline = tr_deadline_after_ms(timeout_ms);
	SCARDCONTEXT ctx;
	SCARD_READERSTATE st[VC_PCSCD_MAX_CARDS];
	LONG rv;
	int error = 0;

	if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx)) != SCARD_S_SUCCESS)
		return tr_error_set(TR_EIO, "SCardEstablishContext: %s", pcsc_stringify_error(rv));
	memset(st, 0, sizeof(st));
	for (unsigned i = 0; i < cards->n; i++) {
		st[i].szReader = cards->cards[i].reader;
		st[i].dwCurrentState = SCARD_STATE_UNAWARE;
	}
	for (;;) {
		unsigned ok = 0;

		rv = SCardGetStatusChange(ctx, 0, st, cards->n);
		if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) {
			error = tr_error_set(TR_EIO, "SCardGetStatusChange: %s", pcsc_stringify_error(rv));
			break;
		}
		for (unsigned i = 0; i < cards->n; i++) {
			int present = (st[i].dwEventState & SCARD_STATE_PRESENT) != 0;

			ok += present == want[i];
			st[i].dwCurrentState = st[i].dwEventState & ~SCARD_STATE_CHANGED;
		}
		if (ok == cards->n)
			break;
		if (tr_deadline_passed(deadline)) {
			error = tr_error_set(TR_ETIMEDOUT, "pcscd did not see the cards change within %u ms",
					     timeout_ms);
			break;
		}
		/* Blocks until a reader changes or the step ends: no busy loop. */
		SCardGetStatusChange(ctx, tr_deadline_left_ms(deadline) < 100 ?
				     tr_deadline_left_ms(deadline) : 100, st, cards->n);
	}
	SCardReleaseContext(ctx);
	return error;
}

int tr_cards_up(tr_cards **out, const char *run_dir, unsigned n, const char *start_image,
		int detach)
{
	unsigned short base_port = 0;
	char *start_text = NULL;
	size_t start_len = 0;
	tr_cards *cards;
	char prog[PATH_MAX], log[PATH_MAX + 32];
	vc_pcscd_opts popts = { .die_with_parent = !detach };
	int error, want[VC_PCSCD_MAX_CARDS] = { 0 };

	*out = NULL;
	if (n == 0 || n > VC_PCSCD_MAX_CARDS)
		return tr_error_set(TR_EINVAL, "1 to %d card readers", VC_PCSCD_MAX_CARDS);
	if (geteuid() != 0)
		return tr_error_set(TR_EDEPEND, "virtual cards need root: the rig's pcscd runs in a "
				    "private mount namespace (run as root, or use SoftHSM tokens only)");
	if (access(VC_PCSCD_PATH, X_OK) != 0 || access(VC_VPCD_DRIVER, R_OK) != 0)
		return tr_error_set(TR_EDEPEND, "virtual cards need pcscd and vsmartcard-vpcd "
				    "(ci/install-deps)");
	if ((error = tr_proc_sibling("tokenrig-vcard", prog, sizeof(prog))) < 0)
		return error;
	if (!(cards = calloc(1, sizeof(*cards))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	cards->n = n;
	cards->detach = detach;
	snprintf(cards->dir, sizeof(cards->dir), "%s/cards", run_dir);
	snprintf(log, sizeof(log), "%s/pcscd.log", run_dir);
	popts.run_dir = run_dir;
	popts.log_path = log;
	if ((error = tr_fs_read_all(start_image, 1 << 20, &start_text, &start_len)) < 0 ||
	    (error = tr_fs_mkdirs(cards->dir, 0700)) < 0 ||
	    (error = vc_pcscd_free_ports(n, &base_port)) < 0 ||
	    (error = vc_pcscd_write_conf(run_dir, base_port, n)) < 0 ||
	    (error = vc_pcscd_start(&cards->pcscd, &popts)) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		card *c = &cards->cards[i];
		char port[16], card_log[PATH_MAX + 32];
		char *argv[] = { prog, "serve", "--image", c->image, "--port", port, "--control",
				 c->ctl, "--removed", NULL };
		tr_proc_opts o = { .log_path = card_log, .detach = detach, .die_with_parent = !detach };
		/* A card must start from some image: a blank one is made below. */
		snprintf(port, sizeof(port), "%u", (unsigned)base_port + i);
		snprintf(c->ctl, sizeof(c->ctl), "%s/card%u.ctl", cards->dir, i);
		snprintf(c->image, sizeof(c->image), "%s/card%u.img", cards->dir, i);
		snprintf(card_log, sizeof(card_log), "%s/card%u.log", cards->dir, i);
		if ((error = vc_pcscd_reader_name(i, c->reader, sizeof(c->reader))) < 0)
			goto out;
		/* Every card starts (pulled) from a copy; columns load their own. */
		if ((error = tr_fs_write_atomic(c->image, start_text, start_len, 0600)) < 0)
			goto out;
		if ((error = tr_proc_spawn(&c->pid, argv, &o)) < 0)
			goto out;
	}
	/* The card processes answer their control sockets once up. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t deadline = tr_deadline_after_ms(READY_MS);

		while (access(cards->cards[i].ctl, F_OK) != 0) {
			if (!tr_proc_alive(cards->cards[i].pid) || tr_deadline_passed(deadline)) {
				error = tr_error_set(TR_EIO, "card %u did not start; see %s/card%u.log",
						     i, cards->dir, i);
				goto out;
			}
			tr_poll_pause(deadline, 5);
		}
	}
	if ((error = vc_pcscd_wait_ready(n, 0, READY_MS)) < 0 ||
	    (error = wait_for(cards, want, READY_MS)) < 0)
		goto out;
out:
	free(start_text);
	if (error < 0) {
		char why[1024];

		snprintf(why, sizeof(why), "%s", tr_error_last());
		cards->detach = 0;
		tr_cards_free(cards);
		return tr_error_set(error, "%s", why);
	}
	*out = cards;
	return 0;
}

void tr_cards_free(tr_cards *cards)
{
	if (!cards)
		return;
	if (!cards->detach) {
		for (unsigned i = 0; i < cards->n; i++)
			if (cards->cards[i].pid > 0)
				tr_proc_stop(cards->cards[i].pid, STOP_MS);
		vc_pcscd_stop(cards->pcscd, STOP_MS);
	} else {
		vc_pcscd_release(cards->pcscd); /* env down stops it, by its PID */
	}
	for (unsigned i = 0; i < cards->n; i++)
		free(cards->cards[i].shown);
	free(cards);
}

int tr_cards_show(tr_cards *cards, const char *const *images, unsigned n)
{
	int none[VC_PCSCD_MAX_CARDS] = { 0 }, want[VC_PCSCD_MAX_CARDS] = { 0 };
	int error;

	if (n > cards->n)
		return tr_error_set(TR_EINVAL, "%u cards for %u readers", n, cards->n);
	/* Out first, and seen out, so that nobody mistakes the next for the same card. */
	for (unsigned i = 0; i < cards->n; i++)
		if ((error = tr_cards_command(cards, i, "remove")) < 0)
			return error;
	if ((error = wait_for(cards, none, READY_MS)) < 0)
		return error;
	for (unsigned i = 0; i < cards->n; i++) {
		card *c = &cards->cards[i];
		char cmd[PATH_MAX + 8];

		free(c->shown);
		c->shown = NULL;
		if (i >= n || !images[i])
			continue;
		if (!(c->shown = strdup(images[i])))
			return tr_error_set(TR_ENOMEM, "out of memory");
		snprintf(cmd, sizeof(cmd), "load %s", images[i]);
		if ((error = tr_cards_command(cards, i, "clear")) < 0 ||
		    (error = tr_cards_command(cards, i, cmd)) < 0 ||
		    (error = tr_cards_command(cards, i, "insert")) < 0)
			return error;
		stat(c->image, &c->loaded);
		want[i] = 1;
	}
	return wait_for(cards, want, READY_MS);
}

int tr_cards_reset(tr_cards *cards)
{
	int want[VC_PCSCD_MAX_CARDS] = { 0 }, pulled = 0;
	int error;

	for (unsigned i = 0; i < cards->n; i++) {
		card *c = &cards->cards[i];
		char reply[512];

		want[i] = c->shown != NULL;
		/* A card a case pulled comes back as the same card, reset... */
		if (c->shown &&
		    vc_control_send(c->ctl, "status", reply, sizeof(reply), CONTROL_MS) == 0 &&
		    (strstr(reply, "present=0") || strstr(reply, "connected=0"))) {
			pulled = 1;
			want[i] = 0;
		}
	}
	/* ...once pcscd has seen it gone. */
	if (pulled && (error = wait_for(cards, want, READY_MS)) < 0)
		return error;
	for (unsigned i = 0; i < cards->n; i++) {
		card *c = &cards->cards[i];
		char cmd[PATH_MAX + 8];
		struct stat now;

		if (!c->shown)
			continue;
		want[i] = 1;
		/* reset: the PIN status of the last case does not carry over. */
		if ((error = tr_cards_command(cards, i, "clear")) < 0 ||
		    (error = tr_cards_command(cards, i, "insert")) < 0 ||
		    (error = tr_cards_command(cards, i, "reset")) < 0)
			return error;
		/* The card saves every change (counters, PINs): unchanged, no reload. */
		if (stat(c->image, &now) == 0 && now.st_ino == c->loaded.st_ino &&
		    now.st_mtim.tv_sec == c->loaded.st_mtim.tv_sec &&
		    now.st_mtim.tv_nsec == c->loaded.st_mtim.tv_nsec)
			continue;
		snprintf(cmd, sizeof(cmd), "load %s", c->shown);
		if ((error = tr_cards_command(cards, i, cmd)) < 0)
			return error;
		stat(c->image, &c->loaded);
	}
	return pulled ? wait_for(cards, want, READY_MS) : 0;
}

const char *tr_cards_reader(const tr_cards *cards, unsigned i)
{
	return i < cards->n ? cards->cards[i].reader : "";
}

int tr_cards_pids(const tr_cards *cards, char *buf, size_t len)
{
	size_t off = 0;

	off += (size_t)snprintf(buf + off, len - off, "pcscd %ld %llu\n",
				(long)vc_pcscd_pid(cards->pcscd),
				tr_proc_start_time(vc_pcscd_pid(cards->pcscd)));
	for (unsigned i = 0; i < cards->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "card%u %ld %llu\n", i,
					(long)cards->cards[i].pid,
					tr_proc_start_time(cards->cards[i].pid));
	return off < len ? 0 : tr_error_set(TR_EINVAL, "pid list too long");
}

int tr_cards_wait(tr_cards *cards, unsigned i, int present)
{
	int want[VC_PCSCD_MAX_CARDS];

	if (i >= cards->n)
		return tr_error_set(TR_EINVAL, "no card reader %u", i);
	/* The others stay as they are: shown ones present, the rest empty. */
	for (unsigned k = 0; k < cards->n; k++)
		want[k] = cards->cards[k].shown != NULL;
	want[i] = present;
	return wait_for(cards, want, READY_MS);
}
