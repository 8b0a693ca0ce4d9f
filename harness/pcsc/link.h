/*
 * The PC/SC link of the card backend: every libpcsclite call of one card
 * (context, reader list, connect, transmit) on a worker thread of its own,
 * the caller waiting with a deadline.
 *
 * harness/pcsc/ is the card backend in three layers, each with one header:
 * link (this: PC/SC, threads, deadlines) <- apdu (ISO 7816-4 exchange,
 * chaining, GET RESPONSE, what a status word means; transport-agnostic) <-
 * piv (the PIV driver: SELECT, certificate, PIN, signature, GENERATE, PUT
 * DATA, management key, and the parsers of its answers). harness/token_pcsc.c
 * glues them to the tr_token interface (harness/token.h).
 *
 * Why a worker. SCardTransmit has no timeout, and pcsc-lite offers no way
 * to abort one (SCardCancel ends SCardGetStatusChange only). Measured with
 * the virtual card's `mute on` (pcsc-lite 1.9.9, vpcd 3.3): a GENERAL
 * AUTHENTICATE was still inside SCardTransmit after 150 s; it returns only
 * once the card answers again (`mute off`: the late answer) or the link to
 * it closes (`remove`: an empty answer, then SCARD_E_NOT_TRANSACTED /
 * SCARD_W_REMOVED_CARD). Past the deadline a call returns TR_ETIMEDOUT;
 * the worker stays in its call, and later calls on the link fail at once
 * with TR_ETIMEDOUT until that call has come back (then the link works
 * again). Closing such a link does not wait: the worker, once its call
 * returns, disconnects, releases the context and frees the link itself.
 * The hand-off costs two thread wake-ups per APDU: within the run-to-run
 * noise (tens of us) of a bare SCardTransmit here.
 */
#ifndef TR_HARNESS_PCSC_LINK_H
#define TR_HARNESS_PCSC_LINK_H

#include <stddef.h>

typedef struct tr_pcsc_link tr_pcsc_link;

/* 10 s, or TOKENRIG_PCSC_TIMEOUT_MS (100..600000). */
unsigned tr_pcsc_timeout_ms(void);

/*
 * A link with its worker; reader (may be NULL: enumeration only) names the
 * card for connect and for messages. Every call waits at most timeout_ms.
 */
int tr_pcsc_link_new(tr_pcsc_link **out, const char *reader, unsigned timeout_ms);

/* Ends the worker (joined within 2 s, else left to free the link itself). */
void tr_pcsc_link_close(tr_pcsc_link *l);

/*
 * The context: PC/SC unreachable is TR_TOKEN_ENOTOKEN, pcscd not installed
 * TR_TOKEN_ENODRIVER (the daemon of PCSCLITE_CSOCK_NAME).
 */
int tr_pcsc_link_establish(tr_pcsc_link *l);

/*
 * The readers as a multi-string (names, each NUL-terminated, then an empty
 * one), valid until the next call on the link. No readers: TR_TOKEN_ENOTOKEN.
 */
int tr_pcsc_link_readers(tr_pcsc_link *l, const char **names);

/*
 * Connects to the reader's card (T=1 preferred, T=0 accepted). Failures as
 * open outcomes: no such reader (naming the readers there are), no card,
 * no pcscd: TR_TOKEN_ENOTOKEN; anything else TR_EIO.
 */
int tr_pcsc_link_connect(tr_pcsc_link *l);

/* 1 when the card was connected with T=1. */
int tr_pcsc_link_t1(const tr_pcsc_link *l);

/* The connected card's ATR (0 bytes when none was read). */
size_t tr_pcsc_link_atr(const tr_pcsc_link *l, const unsigned char **atr);

/* The reader's name, for messages. */
const char *tr_pcsc_link_reader(const tr_pcsc_link *l);

/*
 * One APDU to the connected card (a tr_apdu_transmit_fn, ctx the link):
 * *resp (data and status word) stays valid until the next call. A card
 * gone is TR_TOKEN_EREMOVED, other PC/SC failures TR_EIO, no answer in
 * time TR_ETIMEDOUT; what names the command in messages.
 */
int tr_pcsc_link_transmit(void *link, const unsigned char *cmd, size_t len,
			  const unsigned char **resp, size_t *resp_len, const char *what);

#endif
