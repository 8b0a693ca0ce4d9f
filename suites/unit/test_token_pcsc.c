/*
 * The PC/SC token backend against virtual PIV cards behind the rig's own
 * pcscd (as suites/system/vcard-opensc.sh does, from C): a P-256, an
 * RSA-2048 and an SM2 card. The images are provisioned once in the parent
 * (unchecked fixture); every test gets fresh copies, its own pcscd and card
 * processes (checked fixture, in the test's process), all stopped by PID.
 * Not root: the rig's pcscd cannot start; those tests are not added to the
 * suite (and so not counted as passed), and a line says so.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <winscard.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/proc.h"
#include "emulators/vcard/pcscd.h"
#include "emulators/vcard/vc_bench.h"
#include "emulators/vcard/vc_provision.h"
#include "emulators/vcard/vc_server.h"
#include "fixtures/ident.h"
#include "fixtures/pki.h"
#include "harness/token.h"

#define NCARDS 3
#define P256 0
#define RSA 1
#define SM2 2

static const struct {
	const char *province;
	fx_key_alg alg;
	const char *pin;
	tr_sign_alg sign_alg;
} cards[NCARDS] = {
	[P256] = { "sichuan", FX_KEY_EC_P256, "12345678", TR_SIGN_ECDSA_SHA256 },
	[RSA] = { "suzhou", FX_KEY_RSA_2048, "246810", TR_SIGN_RSA_PKCS1_SHA256 },
	[SM2] = { "hebei", FX_KEY_SM2, "123456", TR_SIGN_SM2_SM3 },
};
static const char puk[] = "87654321";
static const char data[] = "tokenrig|hebei|login|challenge-0123456789";

static char base_dir[] = "/tmp/tokenrig-pcsc-XXXXXX";
static fx_pki *pki;      /* the cards' CAs, to certify keys the cards generate */
static char run_dir[300];
static char unit_names[NCARDS][128];
static vc_pcscd *pcscd;
static pid_t card_pid[NCARDS];
static char readers[NCARDS + 1][64];

static const char *vcard_bin(char *buf, size_t len)
{
	const char *build = getenv("BUILD");

	snprintf(buf, len, "%s/tokenrig-vcard", build && *build ? build : "build");
	return buf;
}

static void base_setup(void)
{
	char pki_dir[300], img[300];
	fx_unit unit;

	ck_assert_ptr_nonnull(mkdtemp(base_dir));
	snprintf(pki_dir, sizeof(pki_dir), "%s/pki", base_dir);
	ck_assert_msg(fx_pki_create(&pki, pki_dir, time(NULL)) == 0, "%s", tr_error_last());
	for (int i = 0; i < NCARDS; i++) {
		vc_provision_opts o = { .province = cards[i].province, .seed = 1, .alg = cards[i].alg,
					.profile = -1, .pin = cards[i].pin, .puk = puk,
					.tries = i == RSA ? 3 : 0, .variant = FX_VARIANT_VALID };

		snprintf(img, sizeof(img), "%s/card%d.img", base_dir, i);
		o.image_path = img;
		ck_assert_msg(vc_provision(pki, &o, NULL) == 0, "%s", tr_error_last());
		ck_assert_int_eq(fx_unit_generate(&unit, 1, cards[i].province, 0), 0);
		snprintf(unit_names[i], sizeof(unit_names[i]), "%s", unit.unit_name);
	}
}

static void base_teardown(void)
{
	fx_pki_free(pki);
	pki = NULL;
	tr_fs_remove_tree(base_dir);
}

static void ctl(int card, const char *command)
{
	char path[400], reply[2048];

	snprintf(path, sizeof(path), "%s/card%d.ctl", run_dir, card);
	ck_assert_msg(vc_control_send(path, command, reply, sizeof(reply), 5000) == 0, "%s",
		      tr_error_last());
	ck_assert_msg(strncmp(reply, "ok", 2) == 0, "%s: %s", command, reply);
}

/* In the test's process: fresh card images, three card processes, a pcscd. */
static void setup(void)
{
	char bin[300], img[400], src[400], ctlp[400], port[16], log[400], *buf = NULL;
	unsigned short base;
	vc_pcscd_opts o = { .die_with_parent = 1 };
	size_t len;

	/* Fixed ports sit in the ephemeral range, where any connection may hold one. */
	ck_assert_msg(vc_pcscd_free_ports(NCARDS + 1, &base) == 0, "%s", tr_error_last());
	snprintf(run_dir, sizeof(run_dir), "%s/run-%ld", base_dir, (long)getpid());
	ck_assert_int_eq(tr_fs_mkdirs(run_dir, 0700), 0);
	for (int i = 0; i < NCARDS; i++) {
		char *argv[] = { bin, "serve", "--image", img, "--port", port, "--control", ctlp,
				 NULL };
		tr_proc_opts po = { .log_path = log, .die_with_parent = 1 };

		vcard_bin(bin, sizeof(bin));
		snprintf(src, sizeof(src), "%s/card%d.img", base_dir, i);
		snprintf(img, sizeof(img), "%s/card%d.img", run_dir, i);
		snprintf(ctlp, sizeof(ctlp), "%s/card%d.ctl", run_dir, i);
		snprintf(log, sizeof(log), "%s/card%d.log", run_dir, i);
		snprintf(port, sizeof(port), "%u", base + i);
		ck_assert_int_eq(tr_fs_read_all(src, 1 << 20, &buf, &len), 0);
		ck_assert_int_eq(tr_fs_write_atomic(img, buf, len, 0600), 0);
		free(buf);
		buf = NULL;
		ck_assert_msg(access(bin, X_OK) == 0, "%s missing: make %s", bin, bin);
		ck_assert_int_eq(tr_proc_spawn(&card_pid[i], argv, &po), 0);
	}
	for (int i = 0; i <= NCARDS; i++)
		ck_assert_int_eq(vc_pcscd_reader_name((unsigned)i, readers[i], sizeof(readers[i])), 0);
	ck_assert_int_eq(vc_pcscd_write_conf(run_dir, base, NCARDS), 0);
	snprintf(log, sizeof(log), "%s/pcscd.log", run_dir);
	o.run_dir = run_dir;
	o.log_path = log;
	ck_assert_msg(vc_pcscd_start(&pcscd, &o) == 0, "%s", tr_error_last());
	ck_assert_msg(vc_pcscd_wait_ready(NCARDS + 1, NCARDS, 10000) == 0, "%s", tr_error_last());
}

static void teardown(void)
{
	for (int i = 0; i < NCARDS; i++)
		if (card_pid[i] > 0)
			tr_proc_stop(card_pid[i], 2000);
	vc_pcscd_stop(pcscd, 3000);
	pcscd = NULL;
}

/* 1 when sig is a valid signature of msg by the token's certificate. */
static int verifies(tr_token *tok, const unsigned char *sig, size_t sig_len,
		    const unsigned char *msg, size_t len)
{
	const unsigned char *der;
	size_t der_len;
	X509 *cert;
	EVP_PKEY *pub;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	ck_assert_int_eq(tr_token_certificate(tok, &der, &der_len), 0);
	cert = d2i_X509(NULL, &der, (long)der_len);
	ck_assert_ptr_nonnull(cert);
	pub = X509_get0_pubkey(cert);
	if (tr_token_sign_alg(tok) == TR_SIGN_SM2_SM3) {
		pctx = EVP_PKEY_CTX_new(pub, NULL);
		ck_assert_ptr_nonnull(pctx);
		ck_assert_int_eq(EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16), 1);
		EVP_MD_CTX_set_pkey_ctx(md, pctx);
		ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, pub), 1);
	} else {
		ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	}
	ok = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	X509_free(cert);
	return ok;
}

static void sign_verifies(tr_token *tok)
{
	unsigned char *sig;
	size_t sig_len;
	uint64_t ns;

	ck_assert_msg(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig, &sig_len,
				    &ns) == 0, "%s", tr_error_last());
	ck_assert_uint_gt(ns, 0);
	ck_assert_msg(verifies(tok, sig, sig_len, (const unsigned char *)data, strlen(data)),
		      "signature does not verify");
	free(sig);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * p50 of the bare GENERAL AUTHENTICATE the backend sends (one extended APDU
 * straight through SCardTransmit, no worker, no hashing), for the overhead.
 */
static uint64_t bare_p50(int card, uint64_t *v, int n)
{
	static const unsigned char select_piv[] = { 0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00,
						    0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00 };
	unsigned char cmd[400], resp[600], in[256], verify[13] = { 0x00, 0x20, 0x00, 0x80, 0x08 };
	size_t in_len = 32, off = 0, dlen = strlen(data);
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
	DWORD proto, rl;
	unsigned char p1 = 0x11;

	memset(in, 0x5A, sizeof(in));
	if (card == RSA) {
		in[0] = 0x00, in[1] = 0x01, in_len = 256, p1 = 0x07;
	} else if (card == SM2) {
		memcpy(in, data, dlen), in_len = dlen, p1 = 0xE9;
	}
	memcpy(cmd, (const unsigned char[]){ 0x00, 0x87, p1, 0x9A, 0x00 }, 5);
	{
		size_t inner = 2 + (in_len < 128 ? 2 : 4) + in_len;
		size_t total = 1 + (inner < 128 ? 1 : inner < 256 ? 2 : 3) + inner;
		unsigned char *q = cmd + 7;

		cmd[5] = (unsigned char)(total >> 8), cmd[6] = (unsigned char)total;
		*q++ = 0x7C;
		if (inner >= 256)
			*q++ = 0x82, *q++ = (unsigned char)(inner >> 8);
		else if (inner >= 128)
			*q++ = 0x81;
		*q++ = (unsigned char)inner;
		*q++ = 0x82, *q++ = 0x00, *q++ = 0x81;
		if (in_len >= 128)
			*q++ = 0x82, *q++ = (unsigned char)(in_len >> 8);
		*q++ = (unsigned char)in_len;
		memcpy(q, in, in_len);
		q += in_len;
		*q++ = 0x00, *q++ = 0x00;
		off = (size_t)(q - cmd);
	}
	memset(verify + 5, 0xFF, 8);
	memcpy(verify + 5, cards[card].pin, strlen(cards[card].pin));
	ck_assert_int_eq(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), SCARD_S_SUCCESS);
	ck_assert_int_eq(SCardConnect(ctx, readers[card], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h,
				      &proto), SCARD_S_SUCCESS);
	rl = sizeof(resp);
	ck_assert_int_eq(SCardTransmit(h, SCARD_PCI_T1, select_piv, sizeof(select_piv), NULL, resp,
				       &rl), SCARD_S_SUCCESS);
	rl = sizeof(resp);
	ck_assert_int_eq(SCardTransmit(h, SCARD_PCI_T1, verify, sizeof(verify), NULL, resp, &rl),
			 SCARD_S_SUCCESS);
	for (int k = 0; k < n; k++) {
		uint64_t t0 = tr_clock_ns();

		rl = sizeof(resp);
		ck_assert_int_eq(SCardTransmit(h, SCARD_PCI_T1, cmd, (DWORD)off, NULL, resp, &rl),
				 SCARD_S_SUCCESS);
		v[k] = tr_clock_ns() - t0;
		ck_assert_msg(rl > 2 && resp[rl - 2] == 0x90, "bare GENERAL AUTHENTICATE: %02X%02X",
			      resp[rl - 2], resp[rl - 1]);
	}
	SCardDisconnect(h, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* Every algorithm: open by reader, refuse before login, sign verifiably, p50. */
START_TEST(signs_every_algorithm)
{
	enum { N = 1000 };
	static uint64_t wall[N], tok_ns[N];

	for (int j = 0; j < 2 * NCARDS; j++) {
		int i = j % NCARDS, short_apdus = j >= NCARDS;
		tr_token *tok;
		unsigned char *sig;
		size_t sig_len;
		uint64_t ns, t0;
		const unsigned char *der;
		size_t der_len;

		/* extended-length APDUs, then short ones chained / with GET RESPONSE */
		if (short_apdus)
			setenv("TOKENRIG_PCSC_SHORT_APDUS", "1", 1);
		ck_assert_msg(tr_token_open_pcsc(&tok, readers[i]) == 0, "%s", tr_error_last());
		unsetenv("TOKENRIG_PCSC_SHORT_APDUS");
		ck_assert_str_eq(tr_token_kind(tok), "pcsc");
		ck_assert_int_eq(tr_token_sign_alg(tok), cards[i].sign_alg);
		ck_assert_int_eq(tr_token_certificate(tok, &der, &der_len), 0);
		ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
					       &sig_len, &ns), TR_TOKEN_ENOT_LOGGED_IN);
		ck_assert_int_eq(tr_token_generate_key(tok, TR_KEYGEN_UPGRADE, &sig, &sig_len),
				 TR_TOKEN_ENOT_LOGGED_IN);
		ck_assert_int_eq(tr_token_write_certificate(tok, der, der_len), TR_TOKEN_ENOT_LOGGED_IN);
		ck_assert_int_eq(tr_token_restore(tok, der, der_len), TR_TOKEN_ENOT_LOGGED_IN);
		ck_assert_msg(tr_token_login(tok, cards[i].pin) == 0, "%s", tr_error_last());
		sign_verifies(tok);
		/* an empty message and a long one (chained / extended) */
		ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)"", 0, &sig, &sig_len, &ns), 0);
		ck_assert(verifies(tok, sig, sig_len, (const unsigned char *)"", 0));
		free(sig);
		{
			static unsigned char big[4000];

			memset(big, 'x', sizeof(big));
			ck_assert_msg(tr_token_sign(tok, big, sizeof(big), &sig, &sig_len, &ns) == 0,
				      "%s", tr_error_last());
			ck_assert(verifies(tok, sig, sig_len, big, sizeof(big)));
			free(sig);
		}
		for (int k = 0; k < N; k++) {
			t0 = tr_clock_ns();
			ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data),
						       &sig, &sig_len, &ns), 0);
			wall[k] = tr_clock_ns() - t0;
			tok_ns[k] = ns;
			free(sig);
		}
		qsort(wall, N, sizeof(wall[0]), cmp_u64);
		qsort(tok_ns, N, sizeof(tok_ns[0]), cmp_u64);
		printf("token_pcsc: %-16s %-8s tr_token_sign p50 %7.1f us p90 %7.1f us; token_ns "
		       "p50 %7.1f us (%d)\n", tr_sign_alg_name(cards[i].sign_alg),
		       short_apdus ? "short" : "extended",
		       wall[N / 2] / 1e3, wall[N * 9 / 10] / 1e3, tok_ns[N / 2] / 1e3, N);
		fflush(stdout);
		ck_assert_int_eq(tr_token_logout(tok), 0);
		tr_token_close(tok);
		/* the card's own figures: one bare GENERAL AUTHENTICATE APDU per signature */
		if (!short_apdus) {
			uint64_t bare = bare_p50(i, wall, N);

			printf("token_pcsc: %-16s bare GENERAL AUTHENTICATE p50 %7.1f us\n",
			       tr_sign_alg_name(cards[i].sign_alg), bare / 1e3);
			fflush(stdout);
		}
		if (getenv("TOKENRIG_PCSC_BENCH") && !short_apdus)
			tr_bench_vcard_pin(readers[i], cards[i].pin, stdout, N);
	}
}
END_TEST

START_TEST(opens_by_unit)
{
	tr_token *tok = NULL;
	const unsigned char *der;
	size_t len;
	X509 *cert;
	char name[256];

	for (int i = NCARDS - 1; i >= 0; i--) {
		ck_assert_msg(tr_token_open_pcsc_unit(&tok, unit_names[i]) == 0, "%s", tr_error_last());
		ck_assert_int_eq(tr_token_sign_alg(tok), cards[i].sign_alg);
		ck_assert_int_eq(tr_token_certificate(tok, &der, &len), 0);
		cert = d2i_X509(NULL, &der, (long)len);
		ck_assert_ptr_nonnull(cert);
		ck_assert_int_eq(fx_cert_unit_identity(cert, name, sizeof(name), NULL, 0), 0);
		ck_assert_str_eq(name, unit_names[i]);
		X509_free(cert);
		ck_assert_int_eq(tr_token_login(tok, cards[i].pin), 0);
		sign_verifies(tok);
		tr_token_close(tok);
	}
	ck_assert_int_eq(tr_token_open_pcsc_unit(&tok, "no such company"), TR_ENOTFOUND);
	ck_assert_ptr_null(tok);
	ck_assert_msg(strstr(tr_error_last(), "3 card(s) in 4 reader(s)"), "%s", tr_error_last());
}
END_TEST

/* A PIV card keeps its PIN verified across connections: close must log out. */
START_TEST(close_logs_out)
{
	tr_token *tok = NULL;

	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), 0);
	tr_token_close(tok);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	/* Verified, the card answers 9000 and the tries are unknown (-1). */
	ck_assert_int_gt(tr_token_pin_tries(tok), 0);
	tr_token_close(tok);
}
END_TEST

START_TEST(no_token_errors)
{
	tr_token *tok = NULL;
	uint64_t t0 = tr_clock_ns();
	int rc = 0;

	ck_assert_int_eq(tr_token_open_pcsc(&tok, "no such reader"), TR_TOKEN_ENOTOKEN);
	ck_assert_ptr_null(tok);
	ck_assert_msg(strstr(tr_error_last(), readers[0]), "%s", tr_error_last());
	/* the fourth slot has no card */
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[NCARDS]), TR_TOKEN_ENOTOKEN);
	ck_assert_msg(strstr(tr_error_last(), "no card"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_open_pcsc(&tok, ""), TR_EINVAL);
	/* a pulled card: no token; back in: opens */
	ctl(P256, "remove");
	/* pcscd sees it within ~0.4 s; until then the card fails mid-open */
	for (int k = 0; k < 100 && (rc = tr_token_open_pcsc(&tok, readers[P256])) != TR_TOKEN_ENOTOKEN;
	     k++) {
		ck_assert(rc == 0 || rc == TR_TOKEN_EREMOVED);
		tr_token_close(tok);
		tok = NULL;
		usleep(50000);
	}
	ck_assert_int_eq(rc, TR_TOKEN_ENOTOKEN);
	ck_assert_msg(strstr(tr_error_last(), "no card"), "%s", tr_error_last());
	ctl(P256, "insert");
	ck_assert_int_eq(vc_pcscd_wait_ready(NCARDS + 1, NCARDS, 10000), 0);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	tr_token_close(tok);
	ck_assert_uint_lt(tr_clock_ns() - t0, 15000000000ull);
}
END_TEST

/*
 * The reader driver model of the card kinds: missing hides the reader,
 * empty is blind to a card that is in (a reader without a card stays no
 * token, TK-E04), a fault breaks one enumeration; present undoes all.
 */
START_TEST(reader_driver_model)
{
	tr_token *tok = NULL;

	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[P256], "sideways"), TR_EINVAL);
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[P256], "missing"), 0);
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[P256]), TR_TOKEN_ENODRIVER);
	ck_assert_msg(strstr(tr_error_last(), "reader driver is not installed"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[P256], "empty"), 0);
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[P256]), TR_TOKEN_ENODRIVER);
	ck_assert_msg(strstr(tr_error_last(), "enumerates no token"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[NCARDS], "empty"), 0);
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[NCARDS]), TR_TOKEN_ENOTOKEN);
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[NCARDS], "present"), 0);
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[P256], "present"), 0);
	ck_assert_int_eq(tr_token_pcsc_fault_once(readers[P256]), 0);
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[P256]), TR_EIO);
	ck_assert_ptr_null(tok);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	tr_token_close(tok);
	/* A fault never set and then undone: present clears it. */
	ck_assert_int_eq(tr_token_pcsc_fault_once(readers[P256]), 0);
	ck_assert_int_eq(tr_token_pcsc_set_driver(readers[P256], "present"), 0);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	ck_assert_str_eq(tr_token_label(tok), "");
	ck_assert_int_eq(tr_token_label_utf8(tok), 1);
	tr_token_close(tok);
}
END_TEST

START_TEST(pin_block_and_puk)
{
	tr_token *tok;
	int rc;

	ck_assert_msg(tr_token_open_pcsc(&tok, readers[RSA]) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_pin_tries(tok), 3);
	ck_assert_int_eq(tr_token_login(tok, "000000"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_msg(strstr(tr_error_last(), "VERIFY") && strstr(tr_error_last(), "63C2"), "%s",
		      tr_error_last());
	ck_assert_int_eq(tr_token_pin_tries(tok), 2);
	ck_assert_int_eq(tr_token_login(tok, "000000"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_token_pin_tries(tok), 1);
	ck_assert_int_eq(tr_token_login(tok, "000000"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_token_pin_tries(tok), 0);
	ck_assert_int_eq(tr_token_login(tok, cards[RSA].pin), TR_TOKEN_EPIN_LOCKED);
	ck_assert_int_eq(tr_token_pin_tries(tok), 0);
	ck_assert_int_eq(tr_token_login(tok, "123456789"), TR_EINVAL);

	/* the PUK unblocks and sets a new PIN */
	ck_assert_int_eq(tr_token_reset_pin(tok, "11111111", "135790"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_msg(strstr(tr_error_last(), "RESET RETRY COUNTER"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_reset_pin(tok, puk, "12"), TR_EINVAL);
	ck_assert_int_eq(tr_token_reset_pin(tok, puk, "135790"), 0);
	ck_assert_int_eq(tr_token_pin_tries(tok), 3);
	ck_assert_int_eq(tr_token_login(tok, cards[RSA].pin), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_token_login(tok, "135790"), 0);
	sign_verifies(tok);
	/* logout really drops the card's PIN status: VERIFY-empty counts again */
	ck_assert_int_eq(tr_token_logout(tok), 0);
	ck_assert_int_eq(tr_token_pin_tries(tok), 3);

	/* change PIN */
	ck_assert_int_eq(tr_token_change_pin(tok, "000000", "246810"), TR_TOKEN_EPIN_INCORRECT);
	ck_assert_int_eq(tr_token_pin_tries(tok), 2);
	ck_assert_int_eq(tr_token_change_pin(tok, "135790", "246810"), 0);
	ck_assert_int_eq(tr_token_login(tok, "246810"), 0);
	sign_verifies(tok);

	/* the PUK blocks at its limit (10) */
	for (int k = 0; k < 12; k++)
		if ((rc = tr_token_reset_pin(tok, "11111111", "135790")) != TR_TOKEN_EPIN_INCORRECT)
			break;
	ck_assert_int_eq(rc, TR_TOKEN_EPIN_LOCKED);
	ck_assert_int_eq(tr_token_reset_pin(tok, puk, "135790"), TR_TOKEN_EPIN_LOCKED);
	tr_token_close(tok);
}
END_TEST

START_TEST(removed_during_signature)
{
	tr_token *tok, *again;
	unsigned char *sig = NULL;
	size_t sig_len;
	uint64_t ns, t0, took;
	int rc;

	for (int i = 0; i < NCARDS; i++) {
		ck_assert_msg(tr_token_open_pcsc(&tok, readers[i]) == 0, "%s", tr_error_last());
		ck_assert_int_eq(tr_token_login(tok, cards[i].pin), 0);
		sign_verifies(tok);
		ctl(i, "remove-during-sign");
		t0 = tr_clock_ns();
		rc = tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig, &sig_len, &ns);
		took = tr_clock_ns() - t0;
		ck_assert_msg(rc == TR_TOKEN_EREMOVED, "%d: %s", rc, tr_error_last());
		ck_assert_ptr_null(sig);
		printf("token_pcsc: %s card pulled mid-signature: TOKEN_REMOVED after %.1f ms (%s)\n",
		       tr_sign_alg_name(cards[i].sign_alg), took / 1e6, tr_error_last());
		fflush(stdout);
		ck_assert_uint_lt(took, 3000000000ull);
		/* the old handle stays dead; the card back in opens anew and signs */
		ck_assert_int_eq(tr_token_login(tok, cards[i].pin), TR_TOKEN_EREMOVED);
		/* pcscd notices within ~0.4 s (vpcd polls): then no token, until back in */
		for (int k = 0; k < 100 && (rc = tr_token_open_pcsc(&again, readers[i])) !=
						   TR_TOKEN_ENOTOKEN; k++) {
			ck_assert_msg(rc == TR_TOKEN_EREMOVED, "%d: %s", rc, tr_error_last());
			usleep(50000);
		}
		ck_assert_int_eq(rc, TR_TOKEN_ENOTOKEN);
		ctl(i, "insert");
		ck_assert_int_eq(vc_pcscd_wait_ready(NCARDS + 1, NCARDS, 10000), 0);
		ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
					       &sig_len, &ns), TR_TOKEN_EREMOVED);
		ck_assert_msg(tr_token_open_pcsc(&again, readers[i]) == 0, "%s", tr_error_last());
		ck_assert_int_eq(tr_token_login(again, cards[i].pin), 0);
		sign_verifies(again);
		tr_token_close(again);
		tr_token_close(tok);
	}
}
END_TEST

START_TEST(corrupt_answers)
{
	tr_token *tok;
	unsigned char *sig = NULL;
	size_t sig_len;
	uint64_t ns;
	int rc;

	/* SELECT's application template with its last byte flipped */
	ctl(P256, "corrupt-next");
	ck_assert_int_eq(tr_token_open_pcsc(&tok, readers[P256]), TR_EIO);
	ck_assert_msg(strstr(tr_error_last(), "SELECT PIV") && strstr(tr_error_last(), "malformed"),
		      "%s", tr_error_last());
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	/* VERIFY's answer has no data: the status word becomes 6F00 */
	ctl(P256, "corrupt-next");
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), TR_EIO);
	ck_assert_msg(strstr(tr_error_last(), "VERIFY") && strstr(tr_error_last(), "6F00"), "%s",
		      tr_error_last());
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), 0);
	/* a signature with its last byte flipped: well-formed, does not verify */
	ctl(P256, "corrupt-next");
	rc = tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig, &sig_len, &ns);
	if (rc == 0)
		ck_assert(!verifies(tok, sig, sig_len, (const unsigned char *)data, strlen(data)));
	else
		ck_assert_int_eq(rc, TR_EIO);
	free(sig);
	sign_verifies(tok);
	tr_token_close(tok);
	/* the RSA card: an answer 7C { 82 <256> } whose last byte is flipped */
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[RSA]) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_login(tok, cards[RSA].pin), 0);
	ctl(RSA, "corrupt-next");
	sig = NULL;
	rc = tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig, &sig_len, &ns);
	if (rc == 0)
		ck_assert(!verifies(tok, sig, sig_len, (const unsigned char *)data, strlen(data)));
	free(sig);
	sign_verifies(tok);
	tr_token_close(tok);
}
END_TEST

START_TEST(mute_card_is_bounded)
{
	tr_token *tok;
	unsigned char *sig = NULL;
	size_t sig_len;
	uint64_t ns, t0, took;
	int rc = -1;

	setenv("TOKENRIG_PCSC_TIMEOUT_MS", "1500", 1);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), 0);
	ctl(P256, "mute on");
	t0 = tr_clock_ns();
	ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
				       &sig_len, &ns), TR_ETIMEDOUT);
	took = tr_clock_ns() - t0;
	printf("token_pcsc: mute card: TOKEN_TIMEOUT after %.1f ms (%s)\n", took / 1e6,
	       tr_error_last());
	fflush(stdout);
	ck_assert_uint_ge(took, 1400000000ull);
	ck_assert_uint_lt(took, 3000000000ull);
	/* while the exchange hangs, everything else fails at once */
	t0 = tr_clock_ns();
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), TR_ETIMEDOUT);
	ck_assert_msg(strstr(tr_error_last(), "earlier"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_pin_tries(tok), -1);
	ck_assert_uint_lt(tr_clock_ns() - t0, 100000000ull);
	/* the card answers again: the token works again */
	ctl(P256, "mute off");
	for (int k = 0; k < 100 && (rc = tr_token_login(tok, cards[P256].pin)) == TR_ETIMEDOUT; k++)
		usleep(20000);
	ck_assert_msg(rc == 0, "%s", tr_error_last());
	sign_verifies(tok);
	/* closing a token whose exchange hangs does not wait for it */
	ctl(P256, "mute on");
	ck_assert_int_eq(tr_token_sign(tok, (const unsigned char *)data, strlen(data), &sig,
				       &sig_len, &ns), TR_ETIMEDOUT);
	t0 = tr_clock_ns();
	tr_token_close(tok);
	ck_assert_uint_lt(tr_clock_ns() - t0, 100000000ull);
	/* a pulled mute card ends the hung call; the worker frees itself */
	ctl(P256, "remove");
	/* until pcscd has seen it out (vpcd polls every ~0.4 s), at most 5 s */
	for (int k = 0; k < 100; k++) {
		tr_token *probe = NULL;

		rc = tr_token_open_pcsc(&probe, readers[P256]);
		tr_token_close(probe);
		if (rc == TR_TOKEN_ENOTOKEN)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(rc, TR_TOKEN_ENOTOKEN);
	ctl(P256, "clear");
	ctl(P256, "insert");
	ck_assert_int_eq(vc_pcscd_wait_ready(NCARDS + 1, NCARDS, 10000), 0);
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_login(tok, cards[P256].pin), 0);
	sign_verifies(tok);
	tr_token_close(tok);
	unsetenv("TOKENRIG_PCSC_TIMEOUT_MS");
}
END_TEST

/* No root needed: a daemon that is not there. */
START_TEST(pcscd_unreachable)
{
	tr_token *tok = NULL;
	uint64_t t0 = tr_clock_ns();

	/* Read by libpcsclite at its first call, which happens in this process. */
	setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/tokenrig/pcscd.comm", 1);
	ck_assert_int_eq(tr_token_open_pcsc(&tok, "tokenrig vpcd 0 00 00"), TR_TOKEN_ENOTOKEN);
	ck_assert_msg(strstr(tr_error_last(), "unreachable"), "%s", tr_error_last());
	ck_assert_int_eq(tr_token_open_pcsc_unit(&tok, "any"), TR_TOKEN_ENOTOKEN);
	ck_assert_ptr_null(tok);
	ck_assert_uint_lt(tr_clock_ns() - t0, 2000000000ull);
}
END_TEST

/*
 * A new key pair and its certificate through GENERATE and PUT DATA (with
 * the management key), as an upgrade or a renewal writes them: extended
 * APDUs for the upgrade's SM2 key, short chained ones for a P-256 renewal.
 * A blue (RSA-only) card refuses the upgrade's key.
 */
START_TEST(generates_keys_and_takes_certificates)
{
	static const struct {
		tr_keygen alg;
		const char *key_type;
		tr_sign_alg sign_alg;
	} rounds[] = {
		{ TR_KEYGEN_UPGRADE, "SM2", TR_SIGN_SM2_SM3 },
		{ TR_KEYGEN_P256, "EC", TR_SIGN_ECDSA_SHA256 },
	};
	unsigned char *original = NULL, *spki = NULL, *der = NULL;
	size_t original_len = 0, cur_len, spki_len;
	const unsigned char *cur, *p;
	tr_token *tok = NULL;
	fx_unit unit;

	ck_assert_int_eq(fx_unit_generate(&unit, 1, cards[P256].province, 0), 0);
	for (size_t i = 0; i < sizeof(rounds) / sizeof(rounds[0]); i++) {
		EVP_PKEY *pub;
		X509 *cert = NULL;
		int len;

		if (i == 1)
			setenv("TOKENRIG_PCSC_SHORT_APDUS", "1", 1);
		ck_assert_msg(tr_token_open_pcsc(&tok, readers[P256]) == 0, "%s", tr_error_last());
		unsetenv("TOKENRIG_PCSC_SHORT_APDUS");
		ck_assert_msg(tr_token_login(tok, cards[P256].pin) == 0, "%s", tr_error_last());
		ck_assert_int_eq(tr_token_certificate(tok, &cur, &cur_len), 0);
		if (!original) {
			original_len = cur_len;
			original = malloc(original_len);
			memcpy(original, cur, original_len);
			/* Its own certificate again: the card takes it. */
			ck_assert_msg(tr_token_write_certificate(tok, original, original_len) == 0, "%s",
				      tr_error_last());
		}
		ck_assert_msg(tr_token_generate_key(tok, rounds[i].alg, &spki, &spki_len) == 0, "%s",
			      tr_error_last());
		p = spki;
		pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
		OPENSSL_free(spki);
		ck_assert_ptr_nonnull(pub);
		ck_assert_msg(EVP_PKEY_is_a(pub, rounds[i].key_type), "not %s", rounds[i].key_type);
		/* The old certificate no longer fits the card's key. */
		ck_assert_msg(tr_token_write_certificate(tok, original, original_len) ==
			      TR_TOKEN_EKEY_MISMATCH, "%s", tr_error_last());
		ck_assert_int_eq(fx_pki_issue_unit(pki, cards[P256].province, pub, &unit,
						   FX_VARIANT_VALID, &cert), 0);
		der = NULL;
		len = i2d_X509(cert, &der);
		ck_assert_int_gt(len, 0);
		ck_assert_msg(tr_token_write_certificate(tok, der, (size_t)len) == 0, "%s",
			      tr_error_last());
		ck_assert_int_eq(tr_token_sign_alg(tok), rounds[i].sign_alg);
		sign_verifies(tok);
		/* A card cannot take its old key back: restore says so. */
		ck_assert_int_eq(tr_token_restore(tok, original, original_len), TR_TOKEN_EKEY_MISMATCH);
		ck_assert_ptr_nonnull(strstr(tr_error_last(), "new key"));
		OPENSSL_free(der);
		X509_free(cert);
		EVP_PKEY_free(pub);
		tr_token_close(tok);
		tok = NULL;
	}
	free(original);

	/* A blue card: RSA-2048 only. */
	ck_assert_msg(tr_token_open_pcsc(&tok, readers[RSA]) == 0, "%s", tr_error_last());
	ck_assert_msg(tr_token_login(tok, cards[RSA].pin) == 0, "%s", tr_error_last());
	ck_assert_int_eq(tr_token_generate_key(tok, TR_KEYGEN_UPGRADE, &spki, &spki_len), TR_EDEPEND);
	ck_assert_ptr_nonnull(strstr(tr_error_last(), "6A80"));
	tr_token_close(tok);
}
END_TEST

Suite *token_pcsc_suite(void)
{
	Suite *s = suite_create("token_pcsc");
	TCase *tc = tcase_create("vcard");
	TCase *none = tcase_create("no-daemon");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, signs_every_algorithm);
	tcase_add_test(tc, opens_by_unit);
	tcase_add_test(tc, close_logs_out);
	tcase_add_test(tc, no_token_errors);
	tcase_add_test(tc, reader_driver_model);
	tcase_add_test(tc, pin_block_and_puk);
	tcase_add_test(tc, removed_during_signature);
	tcase_add_test(tc, corrupt_answers);
	tcase_add_test(tc, mute_card_is_bounded);
	tcase_add_test(tc, generates_keys_and_takes_certificates);
	if (geteuid() == 0)
		suite_add_tcase(s, tc);
	else
		printf("token_pcsc: the card tests not run: the rig's pcscd needs root\n");
	tcase_add_test(none, pcscd_unreachable);
	tcase_set_timeout(none, 10);
	suite_add_tcase(s, none);
	return s;
}
