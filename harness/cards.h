/*
 * The virtual cards of a run: the rig's private pcscd and one card process
 * (tokenrig-vcard) per reader. A column of the matrix (a portal and key
 * algorithm) shows its cards: every reader gets the image of one token
 * profile, pulled and re-inserted so that readers and middleware see new
 * cards. After each case the cards are reloaded from their pristine images.
 */
#ifndef TR_HARNESS_CARDS_H
#define TR_HARNESS_CARDS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tr_cards tr_cards;

/*
 * Starts pcscd with n readers and a card process on each, pulled, starting
 * from a copy of start_image. detach: they outlive this process (env up).
 * TR_EDEPEND when the virtual cards cannot run here (not root, pcscd or
 * vpcd missing), with the reason.
 */
int tr_cards_up(tr_cards **out, const char *run_dir, unsigned n, const char *start_image,
		int detach);

/* Stops the cards and pcscd (unless detached) and frees. */
void tr_cards_free(tr_cards *cards);

/*
 * Puts images[i] (a pristine image file, or NULL: no card) into reader i,
 * as new cards, and waits until pcscd shows them all.
 */
int tr_cards_show(tr_cards *cards, const char *const *images, unsigned n);

/* Every shown card back to its pristine image, inserted, controls cleared. */
int tr_cards_reset(tr_cards *cards);

/* A control command (emulators/vcard/README.md) to the card in reader i. */
int tr_cards_command(tr_cards *cards, unsigned i, const char *command);

/* Waits until pcscd sees card i in (present) or out of its reader. */
int tr_cards_wait(tr_cards *cards, unsigned i, int present);

/* The pcsc-lite name of reader i. */
const char *tr_cards_reader(const tr_cards *cards, unsigned i);

/* "name pid starttime" lines of the processes, for env down. */
int tr_cards_pids(const tr_cards *cards, char *buf, size_t len);

#endif
