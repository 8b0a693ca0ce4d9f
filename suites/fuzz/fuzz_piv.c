/*
 * libFuzzer target over the harness's card driver: the APDU exchange
 * (harness/pcsc/apdu.c: extended or chained commands, 61xx / GET RESPONSE,
 * the 6700 fall-back to short APDUs) against a fake card whose answers are
 * the input, and the PIV driver's answer parsers (harness/pcsc/piv.h).
 *
 * Input: byte 0 picks the command shape (extended or not, Le, data size);
 * the rest is a sequence of answers [length byte][bytes], handed to the
 * exchange in order, then the whole rest to every parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "harness/pcsc/apdu.h"
#include "harness/pcsc/piv.h"

typedef struct fake_card {
	const uint8_t *p, *end;
	uint8_t resp[256];
	unsigned calls;
} fake_card;

static int fake_transmit(void *ctx, const unsigned char *cmd, size_t len,
			 const unsigned char **resp, size_t *resp_len, const char *what)
{
	fake_card *f = ctx;
	size_t n;

	if (len < 4 || len > 4 + 3 + 65535 + 2 || !what)
		abort();
	if (++f->calls > 600 || f->p >= f->end)
		return tr_error_set(TR_EIO, "the fake card has no more answers");
	n = *f->p++;
	if (n > (size_t)(f->end - f->p))
		n = (size_t)(f->end - f->p);
	memcpy(f->resp, f->p, n);
	f->p += n;
	*resp = f->resp;
	*resp_len = n;
	return 0;
}

static void parsers(const uint8_t *d, size_t n)
{
	static const tr_sign_alg algs[] = { TR_SIGN_ECDSA_SHA256, TR_SIGN_RSA_PKCS1_SHA256,
					    TR_SIGN_SM2_SM3 };
	static const unsigned char kalgs[] = { TR_PIV_ALG_RSA2048, TR_PIV_ALG_P256,
					       TR_PIV_ALG_SM2 };
	const unsigned char *p;
	size_t len;
	tr_sign_alg alg;
	EVP_PKEY *key;

	(void)tr_piv_parse_select(d, n, "fuzz");
	if (tr_piv_parse_certificate(d, n, "fuzz", &p, &len) == 0) {
		if (p < d || p + len > d + n)
			abort();
		(void)tr_piv_cert_alg(p, len, &alg);
	}
	for (size_t i = 0; i < 3; i++)
		if (tr_piv_parse_signature(d, n, algs[i], "fuzz", &p, &len) == 0 &&
		    (p < d || p + len > d + n || len == 0))
			abort();
	if (tr_piv_parse_challenge(d, n, "fuzz", &p) == 0 && (p < d || p + 8 > d + n))
		abort();
	for (size_t i = 0; i < 3; i++) {
		key = NULL;
		(void)tr_piv_parse_public_key(d, n, kalgs[i], &key);
		EVP_PKEY_free(key);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char cmd_data[600];
	const unsigned char hdr[4] = { 0x00, 0x87, 0x11, 0x9A };
	fake_card f;
	tr_apdu_chan *c;
	tr_buf out = TR_BUF_INIT;
	unsigned sw = 0;
	size_t len;
	int le;

	if (size < 1)
		return 0;
	memset(cmd_data, 0x5A, sizeof(cmd_data));
	f = (fake_card){ .p = data + 1, .end = data + size };
	len = (size_t)(data[0] >> 3) * 19;      /* 0 .. 589: short, chained, extended */
	le = data[0] % 3;
	if (tr_apdu_chan_new(&c, fake_transmit, &f, "fuzz", data[0] & 4) < 0)
		abort();
	if (tr_apdu_exchange(c, "FUZZ", hdr, len ? cmd_data : NULL, len, (enum tr_apdu_le)le,
			     &out, &sw) == 0 && (sw > 0xFFFF || out.len > 64 * 1024 + 256))
		abort();
	tr_buf_free(&out);
	tr_apdu_chan_free(c);
	(void)tr_apdu_sw_meaning(sw);
	parsers(data + 1, size - 1);
	return 0;
}
