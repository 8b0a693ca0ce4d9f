#include "emulators/vcard/vc_bench.h"

#include "common/clock.h"
#include "common/error.h"
#include "emulators/vcard/vc_apdu.h"
#include "fixtures/pki.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <winscard.h>

#define RTT_TARGET_NS 150000ULL

typedef struct card {
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
	int have_ctx, have_h;
} card;

static int xfer(card *c, const uint8_t *cmd, size_t len, uint8_t *resp,
		size_t *rlen, unsigned *sw)
{
	DWORD n = (DWORD)*rlen;
	LONG rv = SCardTransmit(c->h, SCARD_PCI_T1, cmd, (DWORD)len, NULL, resp, &n);

	if (rv != SCARD_S_SUCCESS)
		return tr_error_set(TR_EIO, "SCardTransmit: %s", pcsc_stringify_error(rv));
	if (n < 2)
		return tr_error_set(TR_EIO, "response shorter than a status word");
	*sw = (unsigned)resp[n - 2] << 8 | resp[n - 1];
	*rlen = n - 2;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

typedef struct stats { uint64_t p50, p90, p99; } stats;

static stats summarize(uint64_t *v, unsigned n)
{
	stats s;

	qsort(v, n, sizeof(*v), cmp_u64);
	s.p50 = v[n / 2];
	s.p90 = v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	s.p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	return s;
}

static void report(FILE *out, const char *what, stats s)
{
	fprintf(out, "%-28s p50 %8.1f us  p90 %8.1f us  p99 %8.1f us\n", what,
		s.p50 / 1e3, s.p90 / 1e3, s.p99 / 1e3);
}

/* Times one APDU n times (must answer sw_ok or 63Cx for VERIFY-empty). */
static int time_apdu(card *c, const uint8_t *cmd, size_t len, unsigned n,
		     uint64_t *v)
{
	uint8_t resp[VC_APDU_MAX_RESP];
	unsigned sw;
	int error;

	for (unsigned i = 0; i < n; i++) {
		size_t rlen = sizeof(resp);
		uint64_t t0 = tr_clock_ns();

		if ((error = xfer(c, cmd, len, resp, &rlen, &sw)) < 0)
			return error;
		v[i] = tr_clock_ns() - t0;
		if (sw != 0x9000 && (sw & 0xFFF0) != 0x63C0)
			return tr_error_set(TR_EIO, "card answered %04X", sw);
	}
	return 0;
}

static const uint8_t verify_empty[] = { 0x00, 0x20, 0x00, 0x80 };

/* Connects (shared) to the card in reader and selects the PIV application. */
static int card_connect(card *c, const char *reader)
{
	static const uint8_t select_piv[] = { 0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00,
					      0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00 };
	uint8_t resp[VC_APDU_MAX_RESP];
	size_t rlen = sizeof(resp);
	unsigned sw;
	DWORD proto;
	LONG rv;
	int error;

	if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c->ctx)) !=
	    SCARD_S_SUCCESS)
		return tr_error_set(TR_EDEPEND, "SCardEstablishContext: %s",
				    pcsc_stringify_error(rv));
	c->have_ctx = 1;
	if ((rv = SCardConnect(c->ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
			       &c->h, &proto)) != SCARD_S_SUCCESS)
		return tr_error_set(TR_EIO, "SCardConnect %s: %s", reader,
				    pcsc_stringify_error(rv));
	c->have_h = 1;
	if ((error = xfer(c, select_piv, sizeof(select_piv), resp, &rlen, &sw)) < 0)
		return error;
	if (sw != 0x9000)
		return tr_error_set(TR_EIO, "SELECT PIV answered %04X", sw);
	return 0;
}

static void card_disconnect(card *c)
{
	if (c->have_h)
		SCardDisconnect(c->h, SCARD_LEAVE_CARD);
	if (c->have_ctx)
		SCardReleaseContext(c->ctx);
	c->have_h = c->have_ctx = 0;
}

/* GET DATA of the 9A certificate, following 61xx. */
static int read_cert(card *c, X509 **out)
{
	static const uint8_t get[] = { 0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03,
				       0x5F, 0xC1, 0x05, 0x00 };
	uint8_t *buf = NULL, resp[300], getresp[5] = { 0x00, 0xC0, 0x00, 0x00, 0x00 };
	size_t len = 0, rlen = sizeof(resp);
	unsigned sw;
	int error;
	vc_tlv_reader r;
	const uint8_t *val, *cert;
	size_t vlen, clen;
	unsigned tag;

	if ((error = xfer(c, get, sizeof(get), resp, &rlen, &sw)) < 0)
		return error;
	for (;;) {
		uint8_t *nb = realloc(buf, len + rlen);

		if (!nb) {
			free(buf);
			return tr_error_set(TR_ENOMEM, "out of memory");
		}
		buf = nb;
		memcpy(buf + len, resp, rlen);
		len += rlen;
		if ((sw & 0xFF00) != 0x6100)
			break;
		getresp[4] = (uint8_t)sw;
		rlen = sizeof(resp);
		if ((error = xfer(c, getresp, sizeof(getresp), resp, &rlen, &sw)) < 0) {
			free(buf);
			return error;
		}
	}
	error = tr_error_set(TR_ENOTFOUND, "no 9A certificate (SW %04X)", sw);
	vc_tlv_init(&r, buf, len);
	if (sw == 0x9000 && vc_tlv_next(&r, &tag, &val, &vlen) == 1 && tag == 0x53) {
		vc_tlv_init(&r, val, vlen);
		while (vc_tlv_next(&r, &tag, &cert, &clen) == 1) {
			if (tag != 0x70)
				continue;
			if ((*out = d2i_X509(NULL, &cert, (long)clen)))
				error = 0;
			break;
		}
	}
	free(buf);
	return error;
}

/* Builds the GENERAL AUTHENTICATE (extended length) for a key type. */
static int sign_apdu(EVP_PKEY *pub, uint8_t *cmd, size_t *len, uint8_t *alg,
		     const char **kind)
{
	uint8_t block[256], tmpl[300], inner[290];
	size_t blen, off = 0, ioff = 0;

	if (EVP_PKEY_is_a(pub, "RSA")) {
		/* A PKCS#1 v1.5 block as OpenSC would send it (content is immaterial). */
		blen = 256;
		memset(block, 0xFF, blen);
		block[0] = 0x00;
		block[1] = 0x01;
		block[blen - 52] = 0x00;
		memset(block + blen - 51, 0x5A, 51);
		*alg = 0x07;
		*kind = "rsa2048";
	} else if (EVP_PKEY_is_a(pub, "SM2")) {
		blen = 32;
		memset(block, 0x5A, blen);
		*alg = 0xE8;
		*kind = "sm2";
	} else {
		blen = 32;
		memset(block, 0x5A, blen);
		*alg = 0x11;
		*kind = "p256";
	}
	vc_tlv_put(inner, sizeof(inner), &ioff, 0x82, NULL, 0);
	vc_tlv_put(inner, sizeof(inner), &ioff, 0x81, block, blen);
	vc_tlv_put(tmpl, sizeof(tmpl), &off, 0x7C, inner, ioff);
	cmd[0] = 0x00;
	cmd[1] = 0x87;
	cmd[2] = *alg;
	cmd[3] = 0x9A;
	cmd[4] = 0x00;
	cmd[5] = (uint8_t)(off >> 8);
	cmd[6] = (uint8_t)off;
	memcpy(cmd + 7, tmpl, off);
	cmd[7 + off] = 0x00;
	cmd[8 + off] = 0x00;
	*len = off + 9;
	return 0;
}

/* The raw software operation the card does, on a fresh key of that kind. */
static int time_raw(const char *kind, unsigned n, uint64_t *v)
{
	fx_key_alg alg = strcmp(kind, "rsa2048") == 0 ? FX_KEY_RSA_2048 :
			 strcmp(kind, "sm2") == 0 ? FX_KEY_SM2 : FX_KEY_EC_P256;
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t in[256], sig[512];
	int error = 0, rsa = alg == FX_KEY_RSA_2048;

	if ((error = fx_key_generate(alg, &key)) < 0)
		return error;
	memset(in, 0x5A, sizeof(in));
	in[0] = 0x00;
	if (!(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) ||
	    (rsa ? EVP_PKEY_decrypt_init(ctx) != 1 ||
		   EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1 :
		   EVP_PKEY_sign_init(ctx) != 1)) {
		error = tr_error_set_openssl(TR_ECRYPTO, "raw %s context", kind);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t sl = sizeof(sig);
		uint64_t t0 = tr_clock_ns();
		int ok = rsa ? EVP_PKEY_decrypt(ctx, sig, &sl, in, 256) :
			       EVP_PKEY_sign(ctx, sig, &sl, in, 32);

		v[i] = tr_clock_ns() - t0;
		if (ok != 1) {
			error = tr_error_set_openssl(TR_ECRYPTO, "raw %s", kind);
			goto out;
		}
	}
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	return error;
}

int tr_bench_vcard_pin(const char *reader, const char *pin, FILE *out,
		       unsigned iterations)
{
	static const uint8_t get_disc[] = { 0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01,
					    0x7E, 0x00 };
	card c = { 0 };
	uint64_t *v = NULL, *raw = NULL;
	uint8_t resp[VC_APDU_MAX_RESP], cmd[400], alg;
	size_t rlen, clen;
	unsigned sw, n = iterations ? iterations : 1000;
	stats rtt, gd, sig, rs;
	X509 *cert = NULL;
	const char *kind = NULL;
	int error = 0, failed = 0;

	if (!(v = calloc(n, sizeof(*v))) || !(raw = calloc(n, sizeof(*raw)))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if ((error = card_connect(&c, reader)) < 0)
		goto out;
	fprintf(out, "vcard bench: %s, %u iterations\n", reader, n);
	if ((error = time_apdu(&c, verify_empty, sizeof(verify_empty), n, v)) < 0)
		goto out;
	rtt = summarize(v, n);
	report(out, "round trip (VERIFY empty)", rtt);
	if ((error = time_apdu(&c, get_disc, sizeof(get_disc), n, v)) < 0)
		goto out;
	gd = summarize(v, n);
	report(out, "round trip (GET DATA 7E)", gd);
	if (rtt.p50 > RTT_TARGET_NS)
		failed = 1;
	fprintf(out, "target round trip p50 <= 150 us: %s\n", rtt.p50 <= RTT_TARGET_NS ?
		"met" : "MISSED");
	if (!pin) {
		fprintf(out, "signature: skipped (no PIN; set TOKENRIG_VCARD_PIN)\n");
		goto out;
	}
	{
		uint8_t vcmd[13] = { 0x00, 0x20, 0x00, 0x80, 0x08 };
		size_t pl = strlen(pin);

		if (pl > 8) {
			error = tr_error_set(TR_EINVAL, "PIN longer than 8");
			goto out;
		}
		memset(vcmd + 5, 0xFF, 8);
		memcpy(vcmd + 5, pin, pl);
		rlen = sizeof(resp);
		if ((error = xfer(&c, vcmd, sizeof(vcmd), resp, &rlen, &sw)) < 0)
			goto out;
		if (sw != 0x9000) {
			error = tr_error_set(TR_EINVAL, "VERIFY answered %04X", sw);
			goto out;
		}
	}
	if ((error = read_cert(&c, &cert)) < 0)
		goto out;
	sign_apdu(X509_get0_pubkey(cert), cmd, &clen, &alg, &kind);
	if ((error = time_apdu(&c, cmd, clen, n, v)) < 0)
		goto out;
	sig = summarize(v, n);
	if ((error = time_raw(kind, n, raw)) < 0)
		goto out;
	rs = summarize(raw, n);
	{
		char label[64];
		double bound = 1.3 * (double)rs.p50 + 2.0 * (double)rtt.p50;

		snprintf(label, sizeof(label), "card sign %s (9A)", kind);
		report(out, label, sig);
		snprintf(label, sizeof(label), "raw OpenSSL %s", kind);
		report(out, label, rs);
		fprintf(out, "target sign p50 <= 1.3 x raw + 2 round trips (%.1f us): %s "
			"(%.2f x raw)\n", bound / 1e3, (double)sig.p50 <= bound ? "met" : "MISSED",
			(double)sig.p50 / (double)rs.p50);
		if ((double)sig.p50 > bound)
			failed = 1;
	}
out:
	card_disconnect(&c);
	X509_free(cert);
	free(v);
	free(raw);
	return error < 0 ? error : failed;
}

int tr_bench_vcard(const char *reader, FILE *out, unsigned iterations)
{
	return tr_bench_vcard_pin(reader, getenv("TOKENRIG_VCARD_PIN"), out, iterations);
}

struct vc_bench_link {
	card c;
};

int vc_bench_link_open(vc_bench_link **out, const char *reader)
{
	vc_bench_link *l = calloc(1, sizeof(*l));
	int error;

	*out = NULL;
	if (!l)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = card_connect(&l->c, reader)) < 0) {
		vc_bench_link_close(l);
		return error;
	}
	*out = l;
	return 0;
}

int vc_bench_roundtrips(vc_bench_link *l, unsigned n, uint64_t *ns_out)
{
	return time_apdu(&l->c, verify_empty, sizeof(verify_empty), n, ns_out);
}

void vc_bench_link_close(vc_bench_link *l)
{
	if (!l)
		return;
	card_disconnect(&l->c);
	free(l);
}
