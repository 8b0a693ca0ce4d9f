/*
 * ISO 7816-4 command/response exchange over any transport (the PC/SC link,
 * or a fake card in the fuzz target and the tests), and what the status
 * words mean as token outcomes. Layers: harness/pcsc/link.h.
 *
 * Extended length (one APDU for an RSA signature or a certificate) while
 * the card takes it; a card answering 6700 to an extended APDU is spoken
 * to in short APDUs from then on: data in 255-byte pieces chained with
 * CLA 10, answers collected across 61xx / GET RESPONSE (at most 64 KiB).
 */
#ifndef TR_HARNESS_PCSC_APDU_H
#define TR_HARNESS_PCSC_APDU_H

#include <stddef.h>

#include "common/buf.h"

/*
 * Sends one command APDU and gives the response APDU (data and status
 * word), valid until the next call; 0 or a negative token outcome.
 */
typedef int (*tr_apdu_transmit_fn)(void *ctx, const unsigned char *cmd, size_t len,
				   const unsigned char **resp, size_t *resp_len,
				   const char *what);

typedef struct tr_apdu_chan tr_apdu_chan;

/* A channel over transmit(ctx); where names the card in messages (copied). */
int tr_apdu_chan_new(tr_apdu_chan **out, tr_apdu_transmit_fn transmit, void *ctx,
		     const char *where, int extended);
void tr_apdu_chan_free(tr_apdu_chan *c);

const char *tr_apdu_where(const tr_apdu_chan *c);

/* 1 while extended-length APDUs are used. */
int tr_apdu_extended(const tr_apdu_chan *c);

enum tr_apdu_le {
	TR_APDU_LE_NONE,    /* no answer data expected */
	TR_APDU_LE_SHORT,   /* up to 256 bytes */
	TR_APDU_LE_LONG,    /* may need an extended Le */
};

/*
 * One command and its whole answer. hdr is CLA INS P1 P2. The answer's
 * data are appended to out and *sw is the final status word; a refusal in
 * the middle of a chain ends the exchange with that word. A response of 0
 * bytes is TR_TOKEN_EREMOVED (vpcd's answer for a card gone mid-command),
 * of 1 byte, or more than 64 KiB collected, TR_EIO.
 */
int tr_apdu_exchange(tr_apdu_chan *c, const char *what, const unsigned char hdr[4],
		     const unsigned char *data, size_t len, enum tr_apdu_le le, tr_buf *out,
		     unsigned *sw);

/* The same without answer data (dropped). */
int tr_apdu_command(tr_apdu_chan *c, const char *what, unsigned char ins, unsigned char p1,
		    unsigned char p2, const unsigned char *data, size_t len, unsigned *sw);

/* ISO 7816-4's name of a status word ("security status not satisfied"). */
const char *tr_apdu_sw_meaning(unsigned sw);

/*
 * A status word as a token outcome, message naming what, where and the
 * word: 9000 is 0; 63Cx TR_TOKEN_EPIN_INCORRECT (x tries left), 6983
 * TR_TOKEN_EPIN_LOCKED, 6982 TR_TOKEN_ENOT_LOGGED_IN, 6A82 / 6A88
 * TR_ENOTFOUND, anything else TR_EIO.
 */
int tr_apdu_sw_error(const tr_apdu_chan *c, unsigned sw, const char *what);

#endif
