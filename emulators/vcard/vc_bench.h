/*
 * Speed of a virtual card through pcscd: the bare APDU round trip and a
 * signature with the card's 9A key, against a raw OpenSSL operation of the
 * same kind (RSA private operation, ECDSA of a digest, SM2 of e).
 */
#ifndef TR_EMULATORS_VCARD_BENCH_H
#define TR_EMULATORS_VCARD_BENCH_H

#include <stdint.h>
#include <stdio.h>

/*
 * Measures on the card in reader (pcsc-lite reader name; the process's
 * PCSCLITE_CSOCK_NAME selects the daemon) and prints a report to out:
 * p50/p90/p99 of VERIFY-empty and GET DATA (discovery) round trips, of a
 * signature, of the raw OpenSSL operation, and whether the targets hold
 * (round trip p50 <= 150 us; signature p50 <= 1.3 x raw + 2 round trips).
 * Signing needs the PIN: TOKENRIG_VCARD_PIN from the environment (no
 * guessing: a wrong PIN costs a try); without it only round trips run.
 * Returns 0 when measured and the targets hold, 1 when measured and a
 * target failed, negative TR_E* when it could not measure.
 */
int tr_bench_vcard(const char *reader, FILE *out, unsigned iterations);

/* The same with the PIN given (NULL: round trips only). */
int tr_bench_vcard_pin(const char *reader, const char *pin, FILE *out,
		       unsigned iterations);

/*
 * The round trip alone, for a caller that keeps its own samples (tokenrig
 * bench): a connection of its own (shared) to the card in reader, the PIV
 * application selected once at open. vc_bench_roundtrips times n bare
 * VERIFY-empty exchanges (no data: the card only tells the PIN status,
 * which it leaves as it is) into ns_out[0..n-1].
 */
typedef struct vc_bench_link vc_bench_link;

int vc_bench_link_open(vc_bench_link **out, const char *reader);
int vc_bench_roundtrips(vc_bench_link *l, unsigned n, uint64_t *ns_out);
void vc_bench_link_close(vc_bench_link *l);

#endif
