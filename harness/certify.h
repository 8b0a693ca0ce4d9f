/*
 * `tokenrig certify`: a batch of tokens the rig did not make (every token of
 * a vendor's PKCS#11 module, or those an RFC 7512 URI selects), each
 * certified against the catalog through the same engine as `tokenrig run`,
 * one worker per token. The verdict is DIR/certification.json (schema
 * tokenrig-certification/1, below), DIR/junit.xml and a printed table.
 *
 * certification.json:
 *   schema       "tokenrig-certification/1"
 *   backend      "pkcs11" (--module) or "pcsc" (--readers / --reader)
 *   module       the module's path ("" for pcsc); pcsc_daemon: the
 *                PCSCLITE_CSOCK_NAME reached (pcsc only); trust: the
 *                --trust file when the tokens were certified on their own
 *                certificates; destructive: bool; count: signatures
 *   batch        { tokens, certified, not_certified,
 *                  inventory_outliers: [{serial, field, value, majority}],
 *                  latency: { ALG: { tokens, median_p50_us, mad_us,
 *                             threshold, outliers: [serial] } } }
 *   tokens[]     { serial, label, status ("CERTIFIED", "CERTIFIED
 *                  (non-destructive)", "NOT CERTIFIED"), first_line,
 *                  inventory {...}, failed: [{id, portal, algorithm,
 *                  step, expected, actual, message}], skipped: [{id, reason}],
 *                  not_tested: [ids], passed: [ids], latency: { ALG:
 *                  { token: summary, openssl: summary } } (summaries in
 *                  microseconds: n, p50, p90, p99, max), final_check {ok,
 *                  problems: [], objects_after: []}, results: the path of
 *                  the token's results.json (tokenrig-results/1), relative
 *                  to DIR, absent when its catalog did not run;
 *                  reader: a card's reader name }
 *   A card's inventory: reader, atr, serial (CHUID GUID, else reader-N),
 *   model (= the ATR), mechanisms [its algorithm], pin_policy
 *   {tries_at_start}, certificate {sha256, subject, issuer, key}.
 *   After a second interrupt the file is written at once: every token
 *   NOT CERTIFIED, its first_line naming what is left on it, and
 *   batch.interrupted = "twice: exited without the undo".
 */
#ifndef TR_HARNESS_CERTIFY_H
#define TR_HARNESS_CERTIFY_H

#include <jansson.h>
#include <stddef.h>

#define TR_CERTIFY_SCHEMA "tokenrig-certification/1"

/*
 * Latency outliers: the modified z-score 0.6745 * |x - median| / MAD above
 * this (Iglewicz and Hoaglin's 3.5), with the MAD floored at
 * TR_CERTIFY_MAD_FLOOR of the median so that a batch of near-identical
 * tokens does not flag noise.
 */
#define TR_CERTIFY_Z_THRESHOLD 3.5
#define TR_CERTIFY_MAD_FLOOR 0.10

/* `tokenrig certify ARGS`: 0 every token certified, 1 one is not, 2 usage/env. */
int tr_certify_main(int argc, char **argv);

/*
 * One token's verdict from its results.json cases (array) and the
 * certification's own checks (extra_failed: [{id, message, ...}], may be
 * NULL): a new object {status, failed, skipped, not_tested, passed}.
 * Per catalog ID: failed when any case of it failed or could not run,
 * passed when some passed and none failed, else skipped with the first
 * reason. Lockout IDs skipped as destructive are "not_tested": with none
 * failed, the status is "CERTIFIED (non-destructive)".
 */
json_t *tr_certify_verdict(const json_t *cases, const json_t *extra_failed);

/*
 * Marks outliers[i] = 1 for the values (one per token) whose modified
 * z-score exceeds TR_CERTIFY_Z_THRESHOLD; *median and *mad (may be NULL)
 * get the batch's. Needs 3 values or more (fewer: none is an outlier).
 */
void tr_certify_outliers(const double *v, size_t n, int *outliers, double *median, double *mad);

/*
 * Inventory outliers: for each field of fields present in the inventories
 * (one object per token, same order as serials), the tokens whose value
 * differs from the batch majority (needs a strict majority of 3 tokens or
 * more). A new array of {serial, field, value, majority}.
 */
json_t *tr_certify_inventory_outliers(const json_t *inventories, const char *const *serials,
				      const char *const *fields, size_t n_fields);

/*
 * certify --readers (certify_card.c): the names of the readers of the PC/SC
 * daemon of PCSCLITE_CSOCK_NAME that hold a card, NUL-separated into names
 * (len bytes), *n of them; a card's ATR and CHUID GUID (lower-case hex, ""
 * when the card has none). Bounded: TR_ETIMEDOUT after 10 s.
 */
int tr_certify_readers(char *names, size_t len, size_t *n);
int tr_certify_card_facts(const char *reader, char *atr, size_t atr_len, char *guid,
			  size_t guid_len);

/* The GUID (tag 34) of a CHUID object (53 {...} or its content) as hex. */
int tr_certify_chuid_guid(const unsigned char *obj, size_t len, char *hex, size_t hex_len);

/* 1 when hex is a PIV management key: 48 hex digits (3DES). */
int tr_certify_mgmt_key_valid(const char *hex);

/*
 * What an interrupted certification may have left on a token, for the
 * report's first line: the objects labelled tokenrig-* it made (a PKCS#11
 * token), or the certificate it wrote into a card (the original kept in
 * saved_original). "" when nothing.
 */
void tr_certify_left_line(char *out, size_t len, size_t objects_made, int cert_written,
			  const char *saved_original);

#endif
