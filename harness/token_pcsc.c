/*
 * The PC/SC backend of the token layer: a PIV card (NIST SP 800-73-4)
 * driven in APDUs through libpcsclite, behind the same tr_token interface
 * and outcomes as the PKCS#11 backend (token_p11.c).
 *
 * Key: 9A (PIV authentication) and its certificate 5FC105, for every
 * signature. 9A needs the PIN once per card session; 9C would need a VERIFY
 * before every signature (PIN always), which no login/sign split can model.
 *
 * Logout: VERIFY P1=FF P2=80 without data drops the PIN status (SP 800-73-4
 * part 2, 3.2.1; the virtual card implements it) without a card reset.
 *
 * Time bounds. SCardTransmit has no timeout, and pcsc-lite offers no way
 * to abort one (SCardCancel ends SCardGetStatusChange only). Measured
 * with the virtual card's `mute on` (pcsc-lite 1.9.9, vpcd 3.3): a GENERAL
 * AUTHENTICATE was still inside SCardTransmit after 150 s; it returns only
 * once the card answers again (`mute off`: the late answer) or the link to
 * it closes (`remove`: an empty answer, then SCARD_E_NOT_TRANSACTED /
 * SCARD_W_REMOVED_CARD). So every PC/SC call of a token runs on a worker
 * thread of its own (one per open token), and the caller waits for it with a deadline: 10 s, or TOKENRIG_PCSC_TIMEOUT_MS
 * (100..600000). Past it the operation returns TR_ETIMEDOUT; the worker
 * stays in its call, and later operations on the token fail at once with
 * TR_ETIMEDOUT until that call has come back (then the token works again).
 * Closing such a token does not wait: the worker, once its call returns,
 * disconnects, releases the context and frees the link itself. All calls
 * (context, connect, transmit) go through the worker, so a hung daemon is
 * bounded as well. The hand-off costs two thread wake-ups per APDU:
 * within the run-to-run noise (tens of us) of a bare SCardTransmit here.
 *
 * APDUs: extended length (one APDU for an RSA signature or a certificate)
 * on T=1 while the card takes it; a card answering 6700 to an extended APDU
 * is spoken to in short APDUs from then on (so is every card when
 * TOKENRIG_PCSC_SHORT_APDUS is set): data in 255-byte pieces chained with
 * CLA 10, answers collected across 61xx / GET RESPONSE.
 * Answers are checked for shape (TLV lengths, object nesting, signature
 * encoding); anything malformed is TR_EIO naming the APDU, never a crash.
 *
 * What a PIV card cannot tell: the key's public half (no public key object
 * outside of key generation), so a certificate that is not 9A's key is not
 * refused at open as the PKCS#11 backend does; its signatures fail at the
 * portal. Signatures are passed on as the card gives them (not verified).
 */
#include "harness/token.h"

#include "common/clock.h"
#include "common/error.h"
#include "fixtures/pki.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <winscard.h>

#define PCSC_TIMEOUT_MS 10000u
#define PCSC_CLOSE_WAIT_MS 2000u
#define PCSCD_PATH "/usr/sbin/pcscd"
#define SHORT_MAX 255
#define CMD_MAX (4 + 3 + 65535 + 2)
#define RESP_MAX (65536 + 2)
#define ANSWER_MAX (64 * 1024)      /* an answer collected over GET RESPONSE */
#define DATA_MAX (32 * 1024)        /* the card's limit on chained data */
#define PIN_LEN 8
#define KEY_REF 0x9A
#define ALG_RSA2048 0x07
#define ALG_P256 0x11
#define ALG_SM2 0xE8
#define ALG_SM2_MSG 0xE9
#define MGMT_KEY_LEN 24                 /* 3DES */

/* --- the worker: every PC/SC call of a token, with a deadline ---------- */

enum { JOB_NONE, JOB_ESTABLISH, JOB_LIST, JOB_CONNECT, JOB_TRANSMIT };

typedef struct pcsc_link {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* job queued, job done, worker gone */
	pthread_t thread;
	int refs;                   /* the token and the worker */
	int job;                    /* queued, not yet taken */
	int running;                /* taken, inside the PC/SC call */
	unsigned long done;         /* jobs finished */
	int quit, exited;
	LONG rv;
	/* Used by the worker only while a job runs; by the caller otherwise. */
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
	int have_ctx, have_h;
	DWORD proto;
	char *reader;
	char *names;                /* JOB_LIST: multi-string */
	DWORD names_len;
	unsigned char cmd[CMD_MAX];
	DWORD cmd_len;
	unsigned char resp[RESP_MAX];
	DWORD resp_len;
} pcsc_link;

static LONG run_job(pcsc_link *l, int job)
{
	DWORD len = 0;
	LONG rv;

	switch (job) {
	case JOB_ESTABLISH:
		rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &l->ctx);
		l->have_ctx = rv == SCARD_S_SUCCESS;
		return rv;
	case JOB_LIST:
		free(l->names);
		l->names = NULL;
		l->names_len = 0;
		rv = SCardListReaders(l->ctx, NULL, NULL, &len);
		if (rv != SCARD_S_SUCCESS)
			return rv;
		if (!(l->names = malloc(len + 2)))
			return SCARD_E_NO_MEMORY;
		rv = SCardListReaders(l->ctx, NULL, l->names, &len);
		if (rv == SCARD_S_SUCCESS) {
			/* Always a terminated multi-string, whatever came back. */
			l->names[len] = '\0';
			l->names[len + 1] = '\0';
			l->names_len = len;
		}
		return rv;
	case JOB_CONNECT:
		rv = SCardConnect(l->ctx, l->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
				  &l->h, &l->proto);
		if (rv == SCARD_E_PROTO_MISMATCH)
			rv = SCardConnect(l->ctx, l->reader, SCARD_SHARE_SHARED,
					  SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &l->h, &l->proto);
		l->have_h = rv == SCARD_S_SUCCESS;
		return rv;
	case JOB_TRANSMIT:
		l->resp_len = sizeof(l->resp);
		return SCardTransmit(l->h, l->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 :
					   SCARD_PCI_T1, l->cmd, l->cmd_len, NULL, l->resp,
				     &l->resp_len);
	default:
		return SCARD_F_INTERNAL_ERROR;
	}
}

/* Drops one reference; called with l->mu held, returns with it released. */
static void link_unref(pcsc_link *l)
{
	int last = --l->refs == 0;

	pthread_mutex_unlock(&l->mu);
	if (!last)
		return;
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->names);
	free(l->reader);
	free(l);
}

static void *worker(void *arg)
{
	pcsc_link *l = arg;
	int job;
	LONG rv;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (!l->job && !l->quit)
			pthread_cond_wait(&l->cv, &l->mu);
		if (!l->job)
			break;
		job = l->job;
		l->job = JOB_NONE;
		l->running = 1;
		pthread_mutex_unlock(&l->mu);
		rv = run_job(l, job);
		pthread_mutex_lock(&l->mu);
		l->rv = rv;
		l->running = 0;
		l->done++;
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (l->have_h)
		SCardDisconnect(l->h, SCARD_LEAVE_CARD);
	if (l->have_ctx)
		SCardReleaseContext(l->ctx);
	l->have_h = l->have_ctx = 0;
	pthread_mutex_lock(&l->mu);
	l->exited = 1;
	pthread_cond_broadcast(&l->cv);
	link_unref(l);
	return NULL;
}

static int link_new(pcsc_link **out)
{
	pcsc_link *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!l)
		return tr_error_set(TR_ENOMEM, "out of memory");
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	l->refs = 2;
	rc = pthread_create(&l->thread, NULL, worker, l);
	if (rc != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return tr_error_set(TR_ERROR, "starting the PC/SC worker thread: %s", strerror(rc));
	}
	*out = l;
	return 0;
}

/*
 * Ends the worker: joined when it finishes within PCSC_CLOSE_WAIT_MS (it
 * disconnects and releases the context), else left to free the link
 * itself once its PC/SC call comes back.
 */
static void link_close(pcsc_link *l)
{
	struct timespec ts;
	int exited;

	if (!l)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += PCSC_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&l->mu);
	l->quit = 1;
	pthread_cond_broadcast(&l->cv);
	/* A call that already missed its deadline is not waited for again. */
	while (!l->exited && !l->running && !l->job)
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
			break;
	exited = l->exited;
	pthread_mutex_unlock(&l->mu);
	if (exited)
		pthread_join(l->thread, NULL);
	else
		pthread_detach(l->thread);
	pthread_mutex_lock(&l->mu);
	link_unref(l);
}

/*
 * Runs one job on the worker and waits at most timeout_ms for it.
 * TR_ETIMEDOUT (message naming what and where) when it does not return in
 * time or an earlier call is still inside the PC/SC library.
 */
static int link_call(pcsc_link *l, int job, unsigned timeout_ms, LONG *rv,
		     const char *what, const char *where)
{
	struct timespec ts;
	unsigned long ticket;
	int late = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	if (l->job || l->running || l->exited) {
		pthread_mutex_unlock(&l->mu);
		return tr_error_set(TR_ETIMEDOUT, "%s on %s: an earlier card exchange has not "
				    "come back yet (card mute or pcscd hung)", what, where);
	}
	l->job = job;
	ticket = l->done + 1;
	pthread_cond_broadcast(&l->cv);
	while (l->done < ticket)
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT && l->done < ticket) {
			late = 1;
			break;
		}
	*rv = l->rv;
	pthread_mutex_unlock(&l->mu);
	if (late)
		return tr_error_set(TR_ETIMEDOUT, "%s on %s: no answer within %u ms (card mute "
				    "or pcscd hung)", what, where, timeout_ms);
	return 0;
}

/* --- the token --------------------------------------------------------- */

typedef struct pcsc_token {
	tr_token base;
	pcsc_link *link;
	char reader[256];           /* for messages */
	unsigned timeout_ms;
	int extended;               /* extended-length APDUs accepted so far */
	int logged_in;
	int pin_tries;              /* last count the card told, -1 unknown */
	/*
	 * The highest count seen: after a right PIN (or a PUK reset) the counter
	 * is back at its maximum, which PIV does not tell, but a fresh card
	 * showed it once.
	 */
	int max_tries_seen;
} pcsc_token;

typedef struct rbuf {
	unsigned char *p;
	size_t len, cap;
} rbuf;

static int rbuf_add(rbuf *b, const unsigned char *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		unsigned char *p;

		while (cap < b->len + len)
			cap *= 2;
		if (!(p = realloc(b->p, cap)))
			return tr_error_set(TR_ENOMEM, "out of memory");
		b->p = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* The PC/SC outcome of a call on an open card: gone, or an I/O failure. */
static int map_io(pcsc_token *t, LONG rv, const char *what)
{
	switch (rv) {
	case SCARD_W_REMOVED_CARD:
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_RESET_CARD:
	case SCARD_W_UNPOWERED_CARD:
	case SCARD_W_UNRESPONSIVE_CARD:
	case SCARD_E_NOT_TRANSACTED:
	case SCARD_F_COMM_ERROR:
	case SCARD_E_COMM_DATA_LOST:
	case SCARD_E_READER_UNAVAILABLE:
	case SCARD_E_UNKNOWN_READER:
	case SCARD_E_INVALID_HANDLE:
	case SCARD_E_NO_SERVICE:
	case SCARD_E_SERVICE_STOPPED:
		return tr_error_set(TR_TOKEN_EREMOVED, "%s on %s: %s (0x%08lX)", what, t->reader,
				    pcsc_stringify_error(rv), (unsigned long)rv);
	default:
		return tr_error_set(TR_EIO, "%s on %s: %s (0x%08lX)", what, t->reader,
				    pcsc_stringify_error(rv), (unsigned long)rv);
	}
}

/* One APDU already in link->cmd; the answer's data stay in link->resp. */
static int xfer(pcsc_token *t, const char *what, size_t cmd_len, size_t *data_len,
		unsigned *sw)
{
	pcsc_link *l = t->link;
	LONG rv;
	int error;

	l->cmd_len = (DWORD)cmd_len;
	if ((error = link_call(l, JOB_TRANSMIT, t->timeout_ms, &rv, what, t->reader)) < 0)
		return error;
	if (rv != SCARD_S_SUCCESS)
		return map_io(t, rv, what);
	/* vpcd answers a card gone mid-command with success and no bytes. */
	if (l->resp_len == 0)
		return tr_error_set(TR_TOKEN_EREMOVED, "%s on %s: no answer at all (the card went "
				    "away during the command)", what, t->reader);
	if (l->resp_len < 2 || l->resp_len > sizeof(l->resp))
		return tr_error_set(TR_EIO, "%s on %s: an answer of %lu bytes, no status word",
				    what, t->reader, (unsigned long)l->resp_len);
	*sw = (unsigned)l->resp[l->resp_len - 2] << 8 | l->resp[l->resp_len - 1];
	*data_len = l->resp_len - 2;
	return 0;
}

enum { LE_NONE, LE_SHORT, LE_LONG };

/*
 * One command and its whole answer. hdr is CLA INS P1 P2; le says whether
 * an answer is expected and whether it may be long. The command goes in
 * one extended-length APDU when the card takes them and it needs one, else
 * in short APDUs chained with CLA 10; the answer is collected across 61xx
 * (GET RESPONSE) and appended to out. *sw is the final status word; a
 * refusal in the middle of a chain ends the exchange with that word.
 */
static int exchange(pcsc_token *t, const char *what, const unsigned char hdr[4],
		    const unsigned char *data, size_t len, int le, rbuf *out, unsigned *sw)
{
	unsigned char *c = t->link->cmd;
	size_t n, dlen = 0, off = 0;
	unsigned rounds = 0;
	int error, ext = t->extended && (len > SHORT_MAX || le == LE_LONG);

	if (len > 65535)
		return tr_error_set(TR_EINVAL, "%s: %zu bytes of data, more than an APDU carries",
				    what, len);
	if (ext) {
		memcpy(c, hdr, 4);
		n = 4;
		c[n++] = 0x00;
		if (len) {
			c[n++] = (unsigned char)(len >> 8);
			c[n++] = (unsigned char)len;
			memcpy(c + n, data, len);
			n += len;
		}
		if (le != LE_NONE || !len) {
			c[n++] = 0x00;
			c[n++] = 0x00;
		}
		if ((error = xfer(t, what, n, &dlen, sw)) < 0)
			return error;
		if (*sw == 0x6700) {
			/* Wrong length: no extended APDUs on this card (or reader). */
			t->extended = 0;
			return exchange(t, what, hdr, data, len, le, out, sw);
		}
	} else {
		do {
			size_t piece = len - off > SHORT_MAX ? SHORT_MAX : len - off;
			int last = off + piece == len;

			c[0] = (unsigned char)(last ? hdr[0] : hdr[0] | 0x10);
			memcpy(c + 1, hdr + 1, 3);
			n = 4;
			if (piece) {
				c[n++] = (unsigned char)piece;
				memcpy(c + n, data + off, piece);
				n += piece;
			}
			if (last && le != LE_NONE)
				c[n++] = 0x00;
			off += piece;
			if ((error = xfer(t, what, n, &dlen, sw)) < 0)
				return error;
			if (!last && *sw != 0x9000)
				return 0;
		} while (off < len);
	}
	for (;;) {
		if ((error = rbuf_add(out, t->link->resp, dlen)) < 0)
			return error;
		if (out->len > ANSWER_MAX)
			return tr_error_set(TR_EIO, "%s on %s: the card answers more than %d bytes",
					    what, t->reader, ANSWER_MAX);
		if ((*sw & 0xFF00) != 0x6100)
			return 0;
		if (++rounds > ANSWER_MAX / 256 + 2)
			return tr_error_set(TR_EIO, "%s on %s: 61xx without end", what, t->reader);
		c[0] = 0x00;
		c[1] = 0xC0;
		c[2] = c[3] = 0x00;
		c[4] = (unsigned char)(*sw & 0xFF);
		if ((error = xfer(t, "GET RESPONSE", 5, &dlen, sw)) < 0)
			return error;
	}
}

static const char *sw_meaning(unsigned sw)
{
	switch (sw) {
	case 0x6700: return "wrong length";
	case 0x6881: return "logical channel not supported";
	case 0x6882: return "secure messaging not supported";
	case 0x6883: return "last command of the chain expected";
	case 0x6884: return "chaining not supported";
	case 0x6982: return "security status not satisfied";
	case 0x6983: return "authentication method blocked";
	case 0x6985: return "conditions of use not satisfied";
	case 0x6A80: return "incorrect data";
	case 0x6A81: return "function not supported";
	case 0x6A82: return "not found";
	case 0x6A86: return "incorrect P1/P2";
	case 0x6A88: return "referenced data not found";
	case 0x6D00: return "instruction not supported";
	case 0x6E00: return "class not supported";
	case 0x6F00: return "no precise diagnosis";
	case 0x6581: return "memory failure";
	default:
		return (sw & 0xFFF0) == 0x63C0 ? "verification failed" : "unexpected status";
	}
}

/* A status word other than 9000 as a token outcome. */
static int map_sw(pcsc_token *t, unsigned sw, const char *what)
{
	int code;

	if (sw == 0x9000)
		return 0;
	if ((sw & 0xFFF0) == 0x63C0)
		code = TR_TOKEN_EPIN_INCORRECT;
	else if (sw == 0x6983)
		code = TR_TOKEN_EPIN_LOCKED;
	else if (sw == 0x6982)
		code = TR_TOKEN_ENOT_LOGGED_IN;
	else if (sw == 0x6A82 || sw == 0x6A88)
		code = TR_ENOTFOUND;
	else
		code = TR_EIO;
	if ((sw & 0xFFF0) == 0x63C0)
		return tr_error_set(code, "%s on %s: %04X (%s, %u tries left)", what, t->reader,
				    sw, sw_meaning(sw), sw & 0x0F);
	return tr_error_set(code, "%s on %s: %04X (%s)", what, t->reader, sw, sw_meaning(sw));
}

/* --- BER-TLV ----------------------------------------------------------- */

/* The next TLV of [*p, end): 0, or -1 when it is malformed or overruns. */
static int tlv_next(const unsigned char **p, const unsigned char *end, unsigned *tag,
		    const unsigned char **val, size_t *len)
{
	const unsigned char *q = *p;
	size_t l, nlen;

	if (q >= end)
		return -1;
	*tag = *q++;
	if ((*tag & 0x1F) == 0x1F) {
		do {
			if (q >= end || *tag > 0xFFFF)
				return -1;
			*tag = *tag << 8 | *q;
		} while (*q++ & 0x80);
	}
	if (q >= end)
		return -1;
	if (*q < 0x80) {
		l = *q++;
	} else {
		nlen = *q++ & 0x7F;
		if (nlen == 0 || nlen > 3 || (size_t)(end - q) < nlen)
			return -1;
		for (l = 0; nlen; nlen--)
			l = l << 8 | *q++;
	}
	if (l > (size_t)(end - q))
		return -1;
	*val = q;
	*len = l;
	*p = q + l;
	return 0;
}

/*
 * 1 when [p, end) is a sequence of TLVs, the constructed ones (bit 6 of the
 * first tag byte) well formed inside as well.
 */
static int tlv_well_formed(const unsigned char *p, const unsigned char *end, int depth)
{
	const unsigned char *val;
	unsigned tag;
	size_t len;

	while (p < end) {
		const unsigned char *first = p;

		if (tlv_next(&p, end, &tag, &val, &len) < 0)
			return 0;
		if ((*first & 0x20) && (depth >= 8 || !tlv_well_formed(val, val + len, depth + 1)))
			return 0;
	}
	return 1;
}

/* Writes tag (1 byte) + length + value into buf at *off; -1 if no room. */
static int tlv_put(unsigned char *buf, size_t cap, size_t *off, unsigned char tag,
		   const unsigned char *val, size_t len)
{
	size_t need = 1 + (len < 0x80 ? 1 : len < 0x100 ? 2 : 3) + len;
	unsigned char *p = buf + *off;

	if (len > 0xFFFF || cap - *off < need)
		return -1;
	*p++ = tag;
	if (len >= 0x100) {
		*p++ = 0x82;
		*p++ = (unsigned char)(len >> 8);
	} else if (len >= 0x80) {
		*p++ = 0x81;
	}
	*p++ = (unsigned char)len;
	if (len)
		memcpy(p, val, len);
	*off += need;
	return 0;
}

/* --- open -------------------------------------------------------------- */

static int alg_of_cert(const unsigned char *der, size_t len, tr_sign_alg *alg)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *pub;
	char group[64];
	int error = 0;

	if (!cert || p != der + len) {
		X509_free(cert);
		return tr_error_set_openssl(TR_EIO, "the card's certificate (5FC105) is not DER X.509");
	}
	pub = X509_get0_pubkey(cert);
	if (pub && EVP_PKEY_is_a(pub, "SM2")) {
		*alg = TR_SIGN_SM2_SM3;
	} else if (pub && EVP_PKEY_is_a(pub, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), NULL) ||
		    strcmp(group, "prime256v1") != 0)
			error = tr_error_set(TR_EINVAL, "the card's 9A certificate has an EC key "
					     "on a curve other than P-256");
		else
			*alg = TR_SIGN_ECDSA_SHA256;
	} else if (pub && EVP_PKEY_is_a(pub, "RSA")) {
		if (EVP_PKEY_get_size(pub) != 256)
			error = tr_error_set(TR_EINVAL, "the card's 9A certificate has an RSA key "
					     "of %d bits; PIV algorithm 07 is RSA-2048",
					     EVP_PKEY_get_bits(pub));
		else
			*alg = TR_SIGN_RSA_PKCS1_SHA256;
	} else {
		error = tr_error_set(TR_EINVAL, "unsupported key type in the card's certificate");
	}
	X509_free(cert);
	return error;
}


/* The certificate of 9A: GET DATA 5FC105 = 53 { 70 cert, 71 info, FE lrc }. */
static int read_certificate(pcsc_token *t)
{
	static const unsigned char hdr[4] = { 0x00, 0xCB, 0x3F, 0xFF };
	static const unsigned char tag[] = { 0x5C, 0x03, 0x5F, 0xC1, 0x05 };
	const unsigned char *p, *end, *val, *cert = NULL;
	size_t vlen, cert_len = 0;
	unsigned sw, tg;
	rbuf ans = { 0 };
	int error, info = 0;

	if ((error = exchange(t, "GET DATA 5FC105", hdr, tag, sizeof(tag), LE_LONG, &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A82) {
		error = tr_error_set(TR_ENOTFOUND, "no certificate for key 9A on the card in %s "
				     "(GET DATA 5FC105: 6A82)", t->reader);
		goto out;
	}
	if ((error = map_sw(t, sw, "GET DATA 5FC105")) < 0)
		goto out;
	p = ans.p;
	end = ans.p + ans.len;
	if (tlv_next(&p, end, &tg, &val, &vlen) < 0 || tg != 0x53 || p != end) {
		error = tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: malformed answer (%zu bytes, "
				     "not one 53 object)", t->reader, ans.len);
		goto out;
	}
	p = val;
	end = val + vlen;
	while (p < end) {
		const unsigned char *v;
		size_t l;

		if (tlv_next(&p, end, &tg, &v, &l) < 0) {
			error = tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: malformed TLV inside "
					     "the certificate object", t->reader);
			goto out;
		}
		if (tg == 0x70 && !cert) {
			cert = v;
			cert_len = l;
		} else if (tg == 0x71 && l >= 1) {
			info = v[0];
		}
	}
	if (!cert || cert_len == 0) {
		error = tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: no certificate (tag 70) in "
				     "the object", t->reader);
		goto out;
	}
	if (info & 0x01) {
		error = tr_error_set(TR_EIO, "GET DATA 5FC105 on %s: compressed certificate "
				     "(CertInfo 01) not supported", t->reader);
		goto out;
	}
	if ((error = alg_of_cert(cert, cert_len, &t->base.alg)) < 0)
		goto out;
	if (!(t->base.cert_der = malloc(cert_len))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(t->base.cert_der, cert, cert_len);
	t->base.cert_len = cert_len;
out:
	free(ans.p);
	return error;
}

static int select_piv(pcsc_token *t)
{
	static const unsigned char hdr[4] = { 0x00, 0xA4, 0x04, 0x00 };
	static const unsigned char aid[] = { 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00,
					     0x10, 0x00 };
	rbuf ans = { 0 };
	unsigned sw;
	int error;

	const unsigned char *p, *end, *val;
	size_t vlen;
	unsigned tag;

	if ((error = exchange(t, "SELECT PIV", hdr, aid, sizeof(aid), LE_SHORT, &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A82) {
		error = tr_error_set(TR_TOKEN_ENOTOKEN, "the card in %s has no PIV application "
				     "(SELECT PIV: 6A82)", t->reader);
		goto out;
	}
	if ((error = map_sw(t, sw, "SELECT PIV")) < 0 || ans.len == 0)
		goto out;
	/* The application property template: 61 { 4F, 79, 50, AC ... }, all well formed. */
	p = ans.p;
	end = ans.p + ans.len;
	if (tlv_next(&p, end, &tag, &val, &vlen) < 0 || tag != 0x61 || p != end) {
		error = tr_error_set(TR_EIO, "SELECT PIV on %s: malformed answer (%zu bytes, not "
				     "one 61 template)", t->reader, ans.len);
		goto out;
	}
	if (!tlv_well_formed(val, val + vlen, 0))
		error = tr_error_set(TR_EIO, "SELECT PIV on %s: malformed TLV in the "
				     "application property template", t->reader);
out:
	free(ans.p);
	return error;
}

static unsigned timeout_from_env(void)
{
	const char *s = getenv("TOKENRIG_PCSC_TIMEOUT_MS");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return PCSC_TIMEOUT_MS;
	v = strtoul(s, &end, 10);
	return *end || v < 100 || v > 600000 ? PCSC_TIMEOUT_MS : (unsigned)v;
}

/* Context on a new worker; PC/SC unreachable is no token, no pcscd no driver. */
static int establish(pcsc_link *l, unsigned timeout_ms)
{
	const char *sock = getenv("PCSCLITE_CSOCK_NAME");
	LONG rv;
	int error;

	if ((error = link_call(l, JOB_ESTABLISH, timeout_ms, &rv, "SCardEstablishContext",
			       sock ? sock : "the system pcscd")) < 0)
		return error;
	if (rv == SCARD_S_SUCCESS)
		return 0;
	if (rv == SCARD_E_NO_SERVICE && access(PCSCD_PATH, X_OK) != 0)
		return tr_error_set(TR_TOKEN_ENODRIVER, "SCardEstablishContext: %s, and %s is "
				    "not installed (apt-get install pcscd)",
				    pcsc_stringify_error(rv), PCSCD_PATH);
	return tr_error_set(TR_TOKEN_ENOTOKEN, "SCardEstablishContext: pcscd unreachable at %s: "
			    "%s (0x%08lX)", sock ? sock : "/run/pcscd/pcscd.comm",
			    pcsc_stringify_error(rv), (unsigned long)rv);
}

/* The readers of the context as a terminated multi-string in l->names. */
static int list_readers(pcsc_link *l, unsigned timeout_ms)
{
	LONG rv;
	int error;

	if ((error = link_call(l, JOB_LIST, timeout_ms, &rv, "SCardListReaders", "pcscd")) < 0)
		return error;
	if (rv == SCARD_E_NO_READERS_AVAILABLE || (rv == SCARD_S_SUCCESS && !l->names_len) ||
	    (rv == SCARD_S_SUCCESS && !l->names[0]))
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no PC/SC readers at all");
	if (rv != SCARD_S_SUCCESS)
		return tr_error_set(rv == SCARD_E_NO_SERVICE || rv == SCARD_E_SERVICE_STOPPED ?
				    TR_TOKEN_ENOTOKEN : TR_EIO, "SCardListReaders: %s (0x%08lX)",
				    pcsc_stringify_error(rv), (unsigned long)rv);
	return 0;
}

/* Connect failures as open outcomes (naming the readers there are). */
static int connect_error(pcsc_token *t, LONG rv)
{
	char list[512] = "";
	size_t off = 0;

	switch (rv) {
	case SCARD_E_UNKNOWN_READER:
		if (list_readers(t->link, t->timeout_ms) == 0)
			for (const char *p = t->link->names; *p && off < sizeof(list) - 1;
			     p += strlen(p) + 1) {
				int n = snprintf(list + off, sizeof(list) - off, "%s'%s'",
						 off ? ", " : "", p);

				if (n < 0)
					break;
				off += (size_t)n;
			}
		else
			return tr_error_set(TR_TOKEN_ENOTOKEN, "no reader named '%s': %s", t->reader,
					    tr_error_last());
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no reader named '%s' (readers: %s)",
				    t->reader, list);
	case SCARD_E_NO_READERS_AVAILABLE:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no PC/SC readers at all (looking for '%s')",
				    t->reader);
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_REMOVED_CARD:
	case SCARD_W_UNPOWERED_CARD:
	case SCARD_W_UNRESPONSIVE_CARD:
	case SCARD_E_READER_UNAVAILABLE:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "no card in reader '%s': %s", t->reader,
				    pcsc_stringify_error(rv));
	case SCARD_E_NO_SERVICE:
	case SCARD_E_SERVICE_STOPPED:
		return tr_error_set(TR_TOKEN_ENOTOKEN, "SCardConnect %s: pcscd unreachable: %s",
				    t->reader, pcsc_stringify_error(rv));
	default:
		return tr_error_set(TR_EIO, "SCardConnect %s: %s (0x%08lX)", t->reader,
				    pcsc_stringify_error(rv), (unsigned long)rv);
	}
}

static void pcsc_close(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;

	link_close(t->link);
	free(t->base.cert_der);
	free(t);
}

static const tr_token_ops pcsc_ops;

/* Connects to reader's card, selects PIV, reads 9A's certificate. */
static int pcsc_pin_tries(tr_token *tok);

/* --- the reader driver model (tr_token_pcsc_set_driver) ----------------- */

enum { DRV_PRESENT, DRV_MISSING, DRV_EMPTY };

#define DRV_MAX 64

static struct {
	char reader[64];
	int state, fault;
} drivers[DRV_MAX];
static pthread_mutex_t drivers_lock = PTHREAD_MUTEX_INITIALIZER;

/* The entry of reader, made when make; with drivers_lock held. */
static int driver_slot(const char *reader, int make)
{
	int free_slot = -1;

	for (int i = 0; i < DRV_MAX; i++) {
		if (drivers[i].reader[0] && !strcmp(drivers[i].reader, reader))
			return i;
		if (!drivers[i].reader[0] && free_slot < 0)
			free_slot = i;
	}
	if (!make || free_slot < 0 || strlen(reader) >= sizeof(drivers[0].reader))
		return -1;
	snprintf(drivers[free_slot].reader, sizeof(drivers[0].reader), "%s", reader);
	drivers[free_slot].state = DRV_PRESENT;
	drivers[free_slot].fault = 0;
	return free_slot;
}

int tr_token_pcsc_set_driver(const char *reader, const char *state)
{
	int st, i;

	if (!reader || !state)
		return tr_error_set(TR_EINVAL, "no reader or driver state");
	st = !strcmp(state, "present") ? DRV_PRESENT : !strcmp(state, "missing") ? DRV_MISSING :
	     !strcmp(state, "empty") ? DRV_EMPTY : -1;
	if (st < 0)
		return tr_error_set(TR_EINVAL, "driver '%s': present, missing or empty", state);
	pthread_mutex_lock(&drivers_lock);
	i = driver_slot(reader, st != DRV_PRESENT);
	if (i >= 0 && st == DRV_PRESENT)
		drivers[i].reader[0] = '\0'; /* as installed, fault gone too */
	else if (i >= 0)
		drivers[i].state = st;
	pthread_mutex_unlock(&drivers_lock);
	return i < 0 && st != DRV_PRESENT ?
	       tr_error_set(TR_EINVAL, "reader '%s': no room for its driver state", reader) : 0;
}

int tr_token_pcsc_fault_once(const char *reader)
{
	int i;

	pthread_mutex_lock(&drivers_lock);
	if ((i = driver_slot(reader ? reader : "", 1)) >= 0)
		drivers[i].fault = 1;
	pthread_mutex_unlock(&drivers_lock);
	return i < 0 ? tr_error_set(TR_EINVAL, "reader '%s': no room for a fault", reader) : 0;
}

/* The driver state of reader; a pending fault is taken (once). */
static int driver_state(const char *reader, int *fault)
{
	int i, st = DRV_PRESENT;

	pthread_mutex_lock(&drivers_lock);
	*fault = 0;
	if ((i = driver_slot(reader, 0)) >= 0) {
		st = drivers[i].state;
		*fault = drivers[i].fault;
		drivers[i].fault = 0;
	}
	pthread_mutex_unlock(&drivers_lock);
	return st;
}

/* pcscd's readers as the installed drivers show them: reader listed or not. */
static int reader_listed(pcsc_token *t)
{
	int error;

	if ((error = list_readers(t->link, t->timeout_ms)) < 0)
		return error;
	for (const char *p = t->link->names; *p; p += strlen(p) + 1)
		if (!strcmp(p, t->reader))
			return 1;
	return 0;
}

static int open_reader(pcsc_token **out, const char *reader)
{
	int fault, drv;
	pcsc_token *t;
	LONG rv;
	int error;

	*out = NULL;
	if (!reader || !*reader)
		return tr_error_set(TR_EINVAL, "no reader name");
	if (!(t = calloc(1, sizeof(*t))))
		return tr_error_set(TR_ENOMEM, "out of memory");
	t->base.ops = &pcsc_ops;
	t->timeout_ms = timeout_from_env();
	t->pin_tries = -1;
	t->max_tries_seen = -1;
	snprintf(t->reader, sizeof(t->reader), "%s", reader);
	if ((error = link_new(&t->link)) < 0) {
		free(t);
		return error;
	}
	if (!(t->link->reader = strdup(reader))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if ((error = establish(t->link, t->timeout_ms)) < 0)
		goto out;
	drv = driver_state(t->reader, &fault);
	if (fault) {
		error = tr_error_set(TR_EIO, "SCardListReaders: %s (0x%08lX): the rig's fault, once",
				     pcsc_stringify_error(SCARD_F_INTERNAL_ERROR),
				     (unsigned long)SCARD_F_INTERNAL_ERROR);
		goto out;
	}
	if (drv == DRV_MISSING) {
		/* pcscd has the reader; without its driver the system would not. */
		if ((error = reader_listed(t)) >= 0)
			error = tr_error_set(TR_TOKEN_ENODRIVER, "reader '%s' %s: its reader driver "
					     "is not installed", t->reader,
					     error ? "hidden" : "not listed either");
		goto out;
	}
	if ((error = link_call(t->link, JOB_CONNECT, t->timeout_ms, &rv, "SCardConnect",
			       t->reader)) < 0)
		goto out;
	if (rv != SCARD_S_SUCCESS) {
		error = connect_error(t, rv);
		goto out;
	}
	if (drv == DRV_EMPTY) {
		/* The card is in (connected), the driver blind to it (JS-E01). */
		error = tr_error_set(TR_TOKEN_ENODRIVER, "a card is in reader '%s' (connected), "
				     "its driver enumerates no token: it does not recognise the key",
				     t->reader);
		goto out;
	}
	t->extended = t->link->proto == SCARD_PROTOCOL_T1 &&
		      !getenv("TOKENRIG_PCSC_SHORT_APDUS");
	if ((error = select_piv(t)) < 0 || (error = read_certificate(t)) < 0)
		goto out;
	/* Learns the counter (the full count, on a card nobody mistyped on). */
	pcsc_pin_tries(&t->base);
out:
	if (error < 0)
		pcsc_close(&t->base);
	else
		*out = t;
	return error;
}

int tr_token_open_pcsc(tr_token **out, const char *reader)
{
	pcsc_token *t;
	int error = open_reader(&t, reader);

	*out = error < 0 ? NULL : &t->base;
	return error;
}

int tr_token_open_pcsc_unit(tr_token **out, const char *unit_name)
{
	pcsc_link *l = NULL;
	pcsc_token *t = NULL;
	unsigned timeout_ms = timeout_from_env(), readers = 0, cards = 0, hidden = 0;
	char other[512] = "";
	int error;

	*out = NULL;
	if (!unit_name || !*unit_name)
		return tr_error_set(TR_EINVAL, "no unit name");
	if ((error = link_new(&l)) < 0)
		return error;
	if ((error = establish(l, timeout_ms)) < 0 || (error = list_readers(l, timeout_ms)) < 0)
		goto out;
	error = TR_ENOTFOUND;
	/* Valid certificates first, as a user picks a usable one by company. */
	for (int valid_only = 1; valid_only >= 0 && error == TR_ENOTFOUND; valid_only--) {
		readers = cards = hidden = 0;
		for (const char *r = l->names; *r && error == TR_ENOTFOUND; r += strlen(r) + 1) {
			int e = open_reader(&t, r);

			readers++;
			if (e == TR_TOKEN_ENOTOKEN || e == TR_TOKEN_ENODRIVER) {
				/* Not listed: no card, or a reader driver that hides it. */
				hidden += e == TR_TOKEN_ENODRIVER;
				continue;
			}
			if (e < 0) {
				/* A card that fails is skipped; its reason is kept for the end. */
				snprintf(other, sizeof(other), "%s: %s", r, tr_error_last());
				continue;
			}
			cards++;
			if (tr_cert_of_unit(t->base.cert_der, t->base.cert_len, unit_name, valid_only)) {
				*out = &t->base;
				error = 0;
			} else {
				pcsc_close(&t->base);
			}
			t = NULL;
		}
	}
	if (error == TR_ENOTFOUND && cards == 0 && !other[0] && hidden)
		error = tr_error_set(TR_TOKEN_ENODRIVER, "no PIV card listed in the %u reader(s): "
				     "%u hidden by a reader driver missing or blind", readers, hidden);
	else if (error == TR_ENOTFOUND && cards == 0 && !other[0])
		error = tr_error_set(TR_TOKEN_ENOTOKEN, "no PIV card in any of the %u reader(s)",
				     readers);
	else if (error == TR_ENOTFOUND)
		error = tr_error_set(TR_ENOTFOUND, "no certificate of '%s' on the %u card(s) in %u "
				     "reader(s)%s%s", unit_name, cards, readers,
				     other[0] ? "; failed: " : "", other);
out:
	link_close(l);
	return error;
}

/* --- operations -------------------------------------------------------- */

static int pad_pin(const char *pin, unsigned char out[PIN_LEN], const char *what)
{
	size_t len = pin ? strlen(pin) : 0;

	if (len == 0 || len > PIN_LEN)
		return tr_error_set(TR_EINVAL, "%s: a PIV PIN/PUK has 1..8 characters, not %zu",
				    what, len);
	memset(out, 0xFF, PIN_LEN);
	memcpy(out, pin, len);
	return 0;
}

/* A command without answer data; *sw its status word. */
static int simple(pcsc_token *t, const char *what, unsigned char ins, unsigned char p1,
		  unsigned char p2, const unsigned char *data, size_t len, unsigned *sw)
{
	const unsigned char hdr[4] = { 0x00, ins, p1, p2 };
	rbuf ans = { 0 };
	int error = exchange(t, what, hdr, data, len, LE_NONE, &ans, sw);

	free(ans.p);
	return error;
}

static int known_max(pcsc_token *t, int seen);

/* Keeps the PIN counter the card told in a status word. */
static void note_tries(pcsc_token *t, unsigned sw)
{
	if ((sw & 0xFFF0) == 0x63C0)
		t->pin_tries = (int)(sw & 0x0F);
	else if (sw == 0x6983)
		t->pin_tries = 0;
	/* Every count is remembered for the card, not only this handle's. */
	t->max_tries_seen = known_max(t, t->pin_tries > t->max_tries_seen ? t->pin_tries :
					 t->max_tries_seen);
}

/*
 * The maximum counts seen, per card (reader and certificate) for the life of
 * the process: every login opens the card anew, and a card first seen after
 * a wrong PIN would otherwise never tell its full count again. A ring: a
 * long run writes many certificates, and the oldest cards are the ones
 * nobody opens again.
 */
#define MAX_KNOWN 64

static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char reader[256];
	unsigned char cert_md[32];
	int max;
} known[MAX_KNOWN];
static size_t n_known, next_known;

static void card_md(const pcsc_token *t, unsigned char md[32])
{
	memset(md, 0, 32);
	if (t->base.cert_der)
		EVP_Digest(t->base.cert_der, t->base.cert_len, md, NULL, EVP_sha256(), NULL);
}

static int known_max(pcsc_token *t, int seen)
{
	unsigned char md[32];
	size_t i;
	int max = seen;

	card_md(t, md);
	pthread_mutex_lock(&known_lock);
	for (i = 0; i < n_known; i++)
		if (!strcmp(known[i].reader, t->reader) && !memcmp(known[i].cert_md, md, 32))
			break;
	if (i == n_known) {
		i = next_known;
		next_known = (next_known + 1) % MAX_KNOWN;
		if (n_known < MAX_KNOWN)
			n_known++;
		snprintf(known[i].reader, sizeof(known[i].reader), "%s", t->reader);
		memcpy(known[i].cert_md, md, 32);
		known[i].max = -1;
	}
	if (seen > known[i].max)
		known[i].max = seen;
	max = known[i].max;
	pthread_mutex_unlock(&known_lock);
	return max;
}

/* After a right PIN or a reset: the maximum, when the card showed it. */
static void tries_full(pcsc_token *t)
{
	int max = known_max(t, t->max_tries_seen);

	t->pin_tries = max > 0 ? max : -1;
}

static int pcsc_login(tr_token *tok, const char *pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned char ref[PIN_LEN];
	unsigned sw;
	int error;

	if ((error = pad_pin(pin, ref, "VERIFY")) < 0)
		return error;
	error = simple(t, "VERIFY", 0x20, 0x00, 0x80, ref, sizeof(ref), &sw);
	OPENSSL_cleanse(ref, sizeof(ref));
	if (error < 0)
		return error;
	note_tries(t, sw);
	if (sw != 0x9000) {
		/* A refused VERIFY drops the PIN status on a PIV card. */
		t->logged_in = 0;
		return map_sw(t, sw, "VERIFY");
	}
	t->logged_in = 1;
	tries_full(t);
	return 0;
}

static int pcsc_logout(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;
	int error;

	if (!t->logged_in)
		return 0;
	t->logged_in = 0;
	if ((error = simple(t, "VERIFY FF (reset PIN status)", 0x20, 0xFF, 0x80, NULL, 0, &sw)) < 0)
		return error;
	return map_sw(t, sw, "VERIFY FF (reset PIN status)");
}

static int pcsc_pin_tries(tr_token *tok)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned sw;

	if (simple(t, "VERIFY (tries)", 0x20, 0x00, 0x80, NULL, 0, &sw) < 0)
		return -1;
	if (sw == 0x9000)
		return t->pin_tries;
	note_tries(t, sw);
	if ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983)
		return t->pin_tries;
	map_sw(t, sw, "VERIFY (tries)");
	return -1;
}

static int pcsc_change_pin(tr_token *tok, const char *old_pin, const char *new_pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned char refs[2 * PIN_LEN];
	unsigned sw;
	int error;

	if ((error = pad_pin(old_pin, refs, "CHANGE REFERENCE DATA")) < 0 ||
	    (error = pad_pin(new_pin, refs + PIN_LEN, "CHANGE REFERENCE DATA")) < 0)
		goto out;
	if ((error = simple(t, "CHANGE REFERENCE DATA", 0x24, 0x00, 0x80, refs, sizeof(refs),
			    &sw)) < 0)
		goto out;
	note_tries(t, sw);
	if ((sw & 0xFFF0) == 0x63C0 || sw == 0x6983)
		t->logged_in = 0;
	if (sw == 0x6A80)
		error = tr_error_set(TR_EINVAL, "CHANGE REFERENCE DATA on %s: 6A80 (the card "
				     "refuses the new PIN: 6-8 characters)", t->reader);
	else
		error = map_sw(t, sw, "CHANGE REFERENCE DATA");
out:
	OPENSSL_cleanse(refs, sizeof(refs));
	return error;
}

static int pcsc_reset_pin(tr_token *tok, const char *puk, const char *new_pin)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned char refs[2 * PIN_LEN];
	unsigned sw;
	int error;

	if ((error = pad_pin(puk, refs, "RESET RETRY COUNTER")) < 0 ||
	    (error = pad_pin(new_pin, refs + PIN_LEN, "RESET RETRY COUNTER")) < 0)
		goto out;
	if ((error = simple(t, "RESET RETRY COUNTER", 0x2C, 0x00, 0x80, refs, sizeof(refs),
			    &sw)) < 0)
		goto out;
	/* 63Cx / 6983 here count the PUK's tries, not the PIN's. */
	if (sw == 0x9000) {
		t->logged_in = 0;
		tries_full(t);
	}
	if (sw == 0x6A80)
		error = tr_error_set(TR_EINVAL, "RESET RETRY COUNTER on %s: 6A80 (the card "
				     "refuses the new PIN: 6-8 characters)", t->reader);
	else
		error = map_sw(t, sw, "RESET RETRY COUNTER (PUK)");
out:
	OPENSSL_cleanse(refs, sizeof(refs));
	return error;
}

/* EMSA-PKCS1-v1_5 of SHA-256(data) in a 256-byte block (RFC 8017, 9.2). */
static int pkcs1_block(const unsigned char *data, size_t len, unsigned char block[256])
{
	static const unsigned char prefix[] = { 0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60,
						0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
						0x01, 0x05, 0x00, 0x04, 0x20 };
	size_t t_len = sizeof(prefix) + 32;

	if (!EVP_Digest(data, len, block + 256 - 32, NULL, EVP_sha256(), NULL))
		return tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
	block[0] = 0x00;
	block[1] = 0x01;
	memset(block + 2, 0xFF, 256 - t_len - 3);
	block[256 - t_len - 1] = 0x00;
	memcpy(block + 256 - t_len, prefix, sizeof(prefix));
	return 0;
}

/* The signature in 7C { 82 sig }, checked for the algorithm's encoding. */
static int parse_signature(pcsc_token *t, const unsigned char *ans, size_t len,
			   unsigned char **sig, size_t *sig_len)
{
	const unsigned char *p = ans, *end = ans + len, *val, *s = NULL;
	size_t vlen, slen = 0;
	unsigned tag;

	if (tlv_next(&p, end, &tag, &val, &vlen) < 0 || tag != 0x7C || p != end)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: malformed answer (%zu "
				    "bytes, not one 7C template)", t->reader, len);
	if (!tlv_well_formed(val, val + vlen, 0))
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: malformed TLV in "
				    "the 7C template", t->reader);
	p = val;
	end = val + vlen;
	while (p < end) {
		tlv_next(&p, end, &tag, &val, &vlen);
		if (tag == 0x82 && !s) {
			s = val;
			slen = vlen;
		}
	}
	if (!s || !slen)
		return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: no signature (82) in "
				    "the answer", t->reader);
	if (t->base.alg == TR_SIGN_RSA_PKCS1_SHA256) {
		if (slen != 256)
			return tr_error_set(TR_EIO, "GENERAL AUTHENTICATE on %s: an RSA-2048 "
					    "signature of %zu bytes", t->reader, slen);
	} else {
		const unsigned char *q = s;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)slen);

		ECDSA_SIG_free(es);
		if (!es || q != s + slen)
			return tr_error_set_openssl(TR_EIO, "GENERAL AUTHENTICATE on %s: the %s "
						    "signature is not one DER SEQUENCE { r, s }",
						    t->reader, tr_sign_alg_name(t->base.alg));
	}
	if (!(*sig = malloc(slen)))
		return tr_error_set(TR_ENOMEM, "out of memory");
	memcpy(*sig, s, slen);
	*sig_len = slen;
	return 0;
}

static int pcsc_sign(tr_token *tok, const unsigned char *data, size_t len,
		     unsigned char **sig, size_t *sig_len, uint64_t *token_ns)
{
	pcsc_token *t = (pcsc_token *)tok;
	unsigned char hdr[4] = { 0x00, 0x87, 0x00, KEY_REF }, block[256];
	unsigned char *inner = NULL, *tmpl = NULL;
	const unsigned char *input;
	size_t input_len, ilen = 0, off = 0, cap;
	rbuf ans = { 0 };
	uint64_t start;
	unsigned sw;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "sign before login");
	switch (t->base.alg) {
	case TR_SIGN_RSA_PKCS1_SHA256:
		/* The card does the raw RSA operation: the host pads. */
		if ((error = pkcs1_block(data, len, block)) < 0)
			return error;
		hdr[2] = ALG_RSA2048;
		input = block;
		input_len = 256;
		break;
	case TR_SIGN_ECDSA_SHA256:
		if (!EVP_Digest(data, len, block, NULL, EVP_sha256(), NULL))
			return tr_error_set_openssl(TR_ECRYPTO, "SHA-256");
		hdr[2] = ALG_P256;
		input = block;
		input_len = 32;
		break;
	case TR_SIGN_SM2_SM3:
		/* E9: the card computes Z (ID 1234567812345678) and SM3(Z || M). */
		if (len > DATA_MAX - 16)
			return tr_error_set(TR_EINVAL, "SM2: a message of %zu bytes; the card "
					    "hashes at most %d", len, DATA_MAX - 16);
		hdr[2] = ALG_SM2_MSG;
		input = data;
		input_len = len;
		break;
	default:
		return tr_error_set(TR_EINVAL, "no signature algorithm for this card");
	}

	/* 7C { 82 00, 81 input } */
	cap = input_len + 16;
	if (!(inner = malloc(cap)) || !(tmpl = malloc(cap))) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if (tlv_put(inner, cap, &ilen, 0x82, NULL, 0) < 0 ||
	    tlv_put(inner, cap, &ilen, 0x81, input, input_len) < 0 ||
	    tlv_put(tmpl, cap, &off, 0x7C, inner, ilen) < 0) {
		error = tr_error_set(TR_EINVAL, "GENERAL AUTHENTICATE: input too long");
		goto out;
	}

	start = tr_clock_ns();
	error = exchange(t, "GENERAL AUTHENTICATE", hdr, tmpl, off, LE_LONG, &ans, &sw);
	*token_ns = tr_clock_ns() - start;
	if (error < 0)
		goto out;
	if (sw == 0x6982)
		t->logged_in = 0;
	if ((error = map_sw(t, sw, "GENERAL AUTHENTICATE 9A")) < 0)
		goto out;
	error = parse_signature(t, ans.p, ans.len, sig, sig_len);
out:
	OPENSSL_cleanse(block, sizeof(block));
	free(inner);
	free(tmpl);
	free(ans.p);
	return error;
}

/* --- keys and certificates (card management key 9B) -------------------- */

/*
 * The management key: TOKENRIG_PIV_MGMT_KEY (48 hex digits) for a vendor's
 * card, else the well-known default of PIV test cards, 01..08 three times.
 */
static int mgmt_key(unsigned char key[MGMT_KEY_LEN])
{
	const char *hex = getenv("TOKENRIG_PIV_MGMT_KEY");

	if (!hex || !*hex) {
		for (int i = 0; i < MGMT_KEY_LEN; i++)
			key[i] = (unsigned char)(i % 8 + 1);
		return 0;
	}
	if (strlen(hex) != 2 * MGMT_KEY_LEN)
		return tr_error_set(TR_EINVAL, "TOKENRIG_PIV_MGMT_KEY: 48 hex digits (3DES) expected");
	for (int i = 0; i < MGMT_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return tr_error_set(TR_EINVAL, "TOKENRIG_PIV_MGMT_KEY: not hex at digit %d",
					    2 * i + 1);
		key[i] = (unsigned char)v;
	}
	return 0;
}

/*
 * SP 800-73-4 external authentication with the management key: ask for a
 * challenge (7C { 81 00 }), answer it encrypted (7C { 82 ... }). Grants
 * GENERATE and PUT DATA until the card is reset.
 */
static int mgmt_authenticate(pcsc_token *t)
{
	static const unsigned char hdr[4] = { 0x00, 0x87, 0x03, 0x9B };
	static const unsigned char ask[] = { 0x7C, 0x02, 0x81, 0x00 };
	unsigned char key[MGMT_KEY_LEN], answer[12] = { 0x7C, 0x0A, 0x82, 0x08 };
	const unsigned char *p, *end, *tmpl, *chal;
	size_t tmpl_len, chal_len;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned sw, tag;
	rbuf ans = { 0 };
	int error, n = 0;

	if ((error = mgmt_key(key)) < 0)
		return error;
	if ((error = exchange(t, "GENERAL AUTHENTICATE 9B (challenge)", hdr, ask, sizeof(ask),
			      LE_SHORT, &ans, &sw)) < 0 ||
	    (error = map_sw(t, sw, "GENERAL AUTHENTICATE 9B (challenge)")) < 0)
		goto out;
	p = ans.p;
	end = ans.p + ans.len;
	if (tlv_next(&p, end, &tag, &tmpl, &tmpl_len) < 0 || tag != 0x7C ||
	    (p = tmpl, tlv_next(&p, tmpl + tmpl_len, &tag, &chal, &chal_len) < 0) ||
	    tag != 0x81 || chal_len != 8) {
		error = tr_error_set(TR_EIO, "GENERAL AUTHENTICATE 9B on %s: no 8-byte challenge "
				     "in the answer", t->reader);
		goto out;
	}
	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, EVP_des_ede3_ecb(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_EncryptUpdate(ctx, answer + 4, &n, chal, 8) != 1 || n != 8) {
		error = tr_error_set_openssl(TR_ECRYPTO, "3DES of the management-key challenge");
		goto out;
	}
	if ((error = simple(t, "GENERAL AUTHENTICATE 9B (response)", 0x87, 0x03, 0x9B, answer,
			    sizeof(answer), &sw)) < 0)
		goto out;
	if (sw == 0x6982)
		error = tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "the card in %s refused the management "
				     "key (set TOKENRIG_PIV_MGMT_KEY for a card with its own)",
				     t->reader);
	else
		error = map_sw(t, sw, "GENERAL AUTHENTICATE 9B (response)");
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(answer, sizeof(answer));
	free(ans.p);
	return error;
}

/* The public key of a 7F49 template: RSA { 81 n, 82 e }, EC { 86 point }. */
static int public_key_of(const unsigned char *der, size_t len, unsigned char alg, EVP_PKEY **out)
{
	const unsigned char *p = der, *end = der + len, *tmpl, *v, *n = NULL, *e = NULL, *pt = NULL;
	size_t tmpl_len, vl, n_len = 0, e_len = 0, pt_len = 0;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	unsigned tag;
	int error = 0;

	*out = NULL;
	if (tlv_next(&p, end, &tag, &tmpl, &tmpl_len) < 0 || tag != 0x7F49) {
		error = tr_error_set(TR_EIO, "GENERATE: the answer is not a 7F49 public key");
		goto out;
	}
	for (p = tmpl; p < tmpl + tmpl_len;) {
		if (tlv_next(&p, tmpl + tmpl_len, &tag, &v, &vl) < 0) {
			error = tr_error_set(TR_EIO, "GENERATE: malformed TLV in the public key");
			goto out;
		}
		if (tag == 0x81)
			n = v, n_len = vl;
		else if (tag == 0x82)
			e = v, e_len = vl;
		else if (tag == 0x86)
			pt = v, pt_len = vl;
	}
	if (!bld) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if (alg == ALG_RSA2048) {
		if (!n || !e) {
			error = tr_error_set(TR_EIO, "GENERATE: RSA key without modulus or exponent");
			goto out;
		}
		bn_n = BN_bin2bn(n, (int)n_len, NULL);
		bn_e = BN_bin2bn(e, (int)e_len, NULL);
		if (!bn_n || !bn_e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
			goto crypto;
	} else {
		if (!pt) {
			error = tr_error_set(TR_EIO, "GENERATE: EC key without its point (86)");
			goto out;
		}
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						     alg == ALG_P256 ? "prime256v1" : "SM2", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len))
			goto crypto;
	}
	if (!(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, alg == ALG_RSA2048 ? "RSA" :
					       alg == ALG_P256 ? "EC" : "SM2", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto crypto;
	goto out;
crypto:
	error = tr_error_set_openssl(TR_EIO, "GENERATE: the card's public key does not decode");
out:
	BN_free(bn_n);
	BN_free(bn_e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return error;
}

/*
 * GENERATE ASYMMETRIC KEY PAIR in 9A; the upgrade's key is SM2 where the
 * card takes it (6A80 otherwise), else P-256. The new key replaces the old
 * one at once, as on a real card; the certificate follows with
 * pcsc_write_certificate.
 */
static int pcsc_generate_key(tr_token *tok, tr_keygen alg, unsigned char **spki,
			     size_t *spki_len)
{
	pcsc_token *t = (pcsc_token *)tok;
	static const unsigned char hdr[4] = { 0x00, 0x47, 0x00, KEY_REF };
	const unsigned char upgrade[] = { ALG_SM2, ALG_P256 }, p256[] = { ALG_P256 };
	const unsigned char rsa2048[] = { ALG_RSA2048 };
	const unsigned char *order = alg == TR_KEYGEN_RSA2048 ? rsa2048 :
				     alg == TR_KEYGEN_P256 ? p256 : upgrade;
	size_t n_order = alg == TR_KEYGEN_UPGRADE ? 2 : 1;
	unsigned char data[5] = { 0xAC, 0x03, 0x80, 0x01, 0 };
	EVP_PKEY *pub = NULL;
	rbuf ans = { 0 };
	unsigned sw = 0x6A80;
	int error, len;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "key generation before login");
	if ((error = mgmt_authenticate(t)) < 0)
		return error;
	for (size_t i = 0; i < n_order && sw == 0x6A80; i++) {
		data[4] = order[i];
		free(ans.p);
		memset(&ans, 0, sizeof(ans));
		if ((error = exchange(t, "GENERATE ASYMMETRIC KEY PAIR 9A", hdr, data, sizeof(data),
				      LE_LONG, &ans, &sw)) < 0)
			goto out;
	}
	if (sw == 0x6A80) {
		error = tr_error_set(TR_EDEPEND, "the card in %s takes no %s key (GENERATE: 6A80)",
				     t->reader, alg == TR_KEYGEN_RSA2048 ? "RSA-2048" :
				     alg == TR_KEYGEN_P256 ? "P-256" : "SM2 or P-256");
		goto out;
	}
	if ((error = map_sw(t, sw, "GENERATE ASYMMETRIC KEY PAIR 9A")) < 0 ||
	    (error = public_key_of(ans.p, ans.len, data[4], &pub)) < 0)
		goto out;
	*spki = NULL;
	if ((len = i2d_PUBKEY(pub, spki)) <= 0) {
		error = tr_error_set_openssl(TR_ECRYPTO, "encoding the new public key");
		goto out;
	}
	*spki_len = (size_t)len;
out:
	EVP_PKEY_free(pub);
	free(ans.p);
	return error;
}

/* PUT DATA 5FC105 = 53 { 70 cert, 71 00, FE }: the certificate of 9A. */
static int put_certificate(pcsc_token *t, const unsigned char *der, size_t len)
{
	static const unsigned char hdr[4] = { 0x00, 0xDB, 0x3F, 0xFF };
	static const unsigned char tag[] = { 0x5F, 0xC1, 0x05 };
	size_t cap = len + 32, ooff = 0, off = 0;
	unsigned char *obj = malloc(cap), *data = malloc(cap + 16);
	unsigned sw;
	rbuf ans = { 0 };
	int error;

	if (!obj || !data) {
		error = tr_error_set(TR_ENOMEM, "out of memory");
		goto out;
	}
	if (tlv_put(obj, cap, &ooff, 0x70, der, len) < 0 ||
	    tlv_put(obj, cap, &ooff, 0x71, (const unsigned char *)"\x00", 1) < 0 ||
	    tlv_put(obj, cap, &ooff, 0xFE, NULL, 0) < 0 ||
	    tlv_put(data, cap + 16, &off, 0x5C, tag, sizeof(tag)) < 0 ||
	    tlv_put(data, cap + 16, &off, 0x53, obj, ooff) < 0) {
		error = tr_error_set(TR_EINVAL, "a certificate of %zu bytes does not fit a PIV object",
				     len);
		goto out;
	}
	if ((error = exchange(t, "PUT DATA 5FC105", hdr, data, off, LE_NONE, &ans, &sw)) < 0)
		goto out;
	if (sw == 0x6A80)
		error = tr_error_set(TR_TOKEN_EKEY_MISMATCH, "PUT DATA 5FC105 on %s: 6A80, the "
				     "certificate does not certify the card's key 9A", t->reader);
	else
		error = map_sw(t, sw, "PUT DATA 5FC105");
out:
	free(obj);
	free(data);
	free(ans.p);
	return error;
}

/* The token's copy of its certificate and algorithm follow the card's. */
static int adopt_certificate(pcsc_token *t, const unsigned char *der, size_t len)
{
	unsigned char *copy = malloc(len);
	tr_sign_alg alg;
	int error;

	if (!copy)
		return tr_error_set(TR_ENOMEM, "out of memory");
	if ((error = alg_of_cert(der, len, &alg)) < 0) {
		free(copy);
		return error;
	}
	memcpy(copy, der, len);
	free(t->base.cert_der);
	t->base.cert_der = copy;
	t->base.cert_len = len;
	t->base.alg = alg;
	return 0;
}

static int pcsc_write_certificate(tr_token *tok, const unsigned char *der, size_t len)
{
	pcsc_token *t = (pcsc_token *)tok;
	tr_sign_alg alg;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "writing a certificate before login");
	/* Refused before anything reaches the card: not a certificate it can use. */
	if ((error = alg_of_cert(der, len, &alg)) < 0)
		return error;
	if ((error = mgmt_authenticate(t)) < 0 || (error = put_certificate(t, der, len)) < 0)
		return error;
	return adopt_certificate(t, der, len);
}

/*
 * Puts the provisioned certificate back. A card cannot take its old key
 * back (PIV has no key import): after a GENERATE only the rig's reload of
 * the card image restores it, and this says so.
 */
static int pcsc_restore(tr_token *tok, const unsigned char *der, size_t len)
{
	pcsc_token *t = (pcsc_token *)tok;
	int error;

	if (!t->logged_in)
		return tr_error_set(TR_TOKEN_ENOT_LOGGED_IN, "restoring before login");
	if (t->base.cert_der && t->base.cert_len == len && !memcmp(t->base.cert_der, der, len))
		return 0;
	if ((error = mgmt_authenticate(t)) < 0)
		return error;
	if ((error = put_certificate(t, der, len)) == TR_TOKEN_EKEY_MISMATCH)
		return tr_error_set(error, "the card in %s holds a new key: a PIV card cannot take "
				    "the old one back (the rig reloads its virtual cards instead)",
				    t->reader);
	if (error < 0)
		return error;
	return adopt_certificate(t, der, len);
}

static const tr_token_ops pcsc_ops = {
	.kind = "pcsc",
	.probe_key_at_login = 1,
	.login = pcsc_login,
	.logout = pcsc_logout,
	.pin_tries = pcsc_pin_tries,
	.change_pin = pcsc_change_pin,
	.reset_pin = pcsc_reset_pin,
	.sign = pcsc_sign,
	.generate_key = pcsc_generate_key,
	.write_certificate = pcsc_write_certificate,
	.restore = pcsc_restore,
	.close = pcsc_close,
};
